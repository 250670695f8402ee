/*
 * The relay's SFTP server (relay/sessions/sftp_server.h): requests decoded
 * by proto/sftp.c, the virtual tree, handles, the order of reads and writes,
 * the limits, and the answers of the backend turned into replies.
 */
#include "relay/sessions/sftp_server.h"

#include "proto/err.h"
#include "proto/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries per READDIR reply (OpenSSH's own server sends 100). */
#define ENTRIES_PER_REPLY 100u
#define NO_EOF UINT64_MAX

enum handle_kind { HANDLE_FREE, HANDLE_DIR, HANDLE_READ, HANDLE_WRITE };

struct entry {
    char *name;
    tl_sftp_attrs_t attrs;
};

struct handle {
    enum handle_kind kind;
    uint32_t generation;
    int open;   /* the backend said yes (files), or the listing arrived (directories) */
    int failed; /* a write went over the limit: the close drops the file */
    /* files */
    uint64_t next_offset; /* the offset the next READ or WRITE must name */
    uint64_t eof_at;      /* where the file ended, once a read came short */
    /* directories */
    struct entry *entries;
    size_t count, next_entry;
};

struct pending {
    int in_use;
    uint32_t generation;
    uint32_t id;                      /* the client's request id */
    uint8_t type;                     /* the request */
    uint32_t handle;                  /* its handle slot, for OPEN*, READ, WRITE, CLOSE */
    uint32_t handle_generation;       /* and that slot's generation then */
    uint64_t offset;                  /* READ: where it started */
    uint32_t length;                  /* READ: bytes asked */
    char path[TL_SFTP_MAX_PATH + 32]; /* REALPATH of a ticket root: the canonical name */
};

struct tl_sftp_server {
    const tl_sftp_backend_t *backend;
    void *ctx;
    tl_sftp_server_limits_t limits;
    tl_buf_t *input;  /* at most one packet */
    tl_buf_t *output; /* replies for the client */
    const char *failed;
    int initialised;
    uint32_t files_opened;
    uint32_t pending_count;
    struct pending pending[TL_SFTP_SERVER_MAX_PENDING];
    struct handle handles[TL_SFTP_SERVER_MAX_HANDLES];
};

tl_sftp_server_t *tl_sftp_server_new(const tl_sftp_backend_t *backend, void *ctx,
                                     const tl_sftp_server_limits_t *limits)
{
    tl_sftp_server_t *server = calloc(1, sizeof *server);
    if (server == NULL)
        return NULL;
    server->backend = backend;
    server->ctx = ctx;
    if (limits != NULL)
        server->limits = *limits;
    server->input = tl_buf_new(4 + TL_SFTP_MAX_PACKET);
    server->output = tl_buf_new(TL_SFTP_SERVER_MAX_OUTPUT);
    if (server->input == NULL || server->output == NULL) {
        tl_sftp_server_free(server);
        return NULL;
    }
    return server;
}

static void free_entries(struct handle *h)
{
    for (size_t i = 0; i < h->count; i++)
        free(h->entries[i].name);
    free(h->entries);
    h->entries = NULL;
    h->count = h->next_entry = 0;
}

void tl_sftp_server_free(tl_sftp_server_t *server)
{
    if (server == NULL)
        return;
    for (uint32_t i = 0; i < TL_SFTP_SERVER_MAX_HANDLES; i++)
        free_entries(&server->handles[i]);
    tl_buf_free(server->input);
    tl_buf_free(server->output);
    free(server);
}

const char *tl_sftp_server_failed(const tl_sftp_server_t *server)
{
    return server->failed;
}

const uint8_t *tl_sftp_server_output(const tl_sftp_server_t *server, size_t *len)
{
    *len = tl_buf_len(server->output);
    return tl_buf_data(server->output);
}

void tl_sftp_server_consume(tl_sftp_server_t *server, size_t len)
{
    tl_buf_consume(server->output, len);
}

int tl_sftp_server_blocked(const tl_sftp_server_t *server)
{
    return server->pending_count >= TL_SFTP_SERVER_MAX_PENDING ||
           tl_buf_len(server->output) >= TL_SFTP_SERVER_HIGH_WATER;
}

/* ---- replies ------------------------------------------------------------------------------- */

/* A reply that does not fit the output cap ends the session: the client would wait forever. */
static void check_put(tl_sftp_server_t *server, int rc)
{
    if (rc != 0 && server->failed == NULL)
        server->failed = "the replies for the client outgrew their limit";
}

static void reply_status(tl_sftp_server_t *server, uint32_t id, uint32_t status,
                         const char *message)
{
    static const char *const plain[] = {
        "OK",          "end of file",   "no such file",    "permission denied",    "failure",
        "bad message", "no connection", "connection lost", "operation unsupported"};
    if (message == NULL)
        message = status < sizeof plain / sizeof plain[0] ? plain[status] : "failure";
    check_put(server, tl_sftp_put_status(server->output, id, status, message));
}

/* "drwxr-xr-x" and the rest of an `ls -l` line, which sftp shows for `ls -l`. */
static void long_name(char *out, size_t size, const char *name, const tl_sftp_attrs_t *attrs)
{
    uint32_t mode = attrs->flags & TL_SFTP_ATTR_PERMISSIONS ? attrs->permissions : 0;
    char kind = (mode & 0170000) == 0040000   ? 'd'
                : (mode & 0170000) == 0120000 ? 'l'
                : (mode & 0170000) == 0100000 ? '-'
                                              : '?';
    const char bits[] = "rwxrwxrwx";
    char perms[11];
    perms[0] = kind;
    for (int i = 0; i < 9; i++)
        perms[i + 1] = mode & (0400u >> i) ? bits[i] : '-';
    perms[10] = '\0';
    unsigned long long bytes = attrs->flags & TL_SFTP_ATTR_SIZE ? attrs->size : 0;
    tl_format(out, size, "%s 1 %u %u %12llu %s", perms,
              attrs->flags & TL_SFTP_ATTR_UIDGID ? attrs->uid : 0,
              attrs->flags & TL_SFTP_ATTR_UIDGID ? attrs->gid : 0, bytes, name);
}

/* ---- handles and waiting requests ------------------------------------------------------------ */

static int new_handle(tl_sftp_server_t *server, enum handle_kind kind, uint32_t *index)
{
    for (uint32_t i = 0; i < TL_SFTP_SERVER_MAX_HANDLES; i++) {
        struct handle *h = &server->handles[i];
        if (h->kind == HANDLE_FREE) {
            uint32_t generation = h->generation + 1;
            memset(h, 0, sizeof *h);
            h->kind = kind;
            h->generation = generation;
            h->eof_at = NO_EOF;
            *index = i;
            return 0;
        }
    }
    return TL_EFULL;
}

static void drop_handle(tl_sftp_server_t *server, uint32_t index)
{
    struct handle *h = &server->handles[index];
    free_entries(h);
    h->kind = HANDLE_FREE;
}

/* The wire form of a handle: its slot and generation, 8 bytes. */
static void put_handle(tl_sftp_server_t *server, uint32_t id, uint32_t index)
{
    uint8_t bytes[8];
    tl_store_u32(bytes, index);
    tl_store_u32(bytes + 4, server->handles[index].generation);
    check_put(server, tl_sftp_put_handle(server->output, id, bytes, sizeof bytes));
}

/* The open handle a request names, or NULL (a handle not ours, stale, or not yet open). */
static struct handle *find_handle(tl_sftp_server_t *server, const tl_sftp_request_t *req,
                                  uint32_t *index)
{
    if (req->handle_len != 8)
        return NULL;
    uint32_t slot = tl_load_u32(req->handle);
    uint32_t generation = tl_load_u32(req->handle + 4);
    if (slot >= TL_SFTP_SERVER_MAX_HANDLES)
        return NULL;
    struct handle *h = &server->handles[slot];
    if (h->kind == HANDLE_FREE || h->generation != generation || !h->open)
        return NULL;
    *index = slot;
    return h;
}

/* A slot for a request the backend will answer; its op. The caller checked pending_count. */
static uint32_t new_pending(tl_sftp_server_t *server, const tl_sftp_request_t *req, uint32_t handle)
{
    for (uint32_t i = 0; i < TL_SFTP_SERVER_MAX_PENDING; i++) {
        struct pending *p = &server->pending[i];
        if (!p->in_use) {
            uint32_t generation = p->generation + 1;
            memset(p, 0, sizeof *p);
            p->in_use = 1;
            p->generation = generation;
            p->id = req->id;
            p->type = req->type;
            p->handle = handle;
            p->handle_generation = server->handles[handle].generation;
            server->pending_count++;
            return (generation << 8) | i;
        }
    }
    return 0; /* not reached: input is not taken while every slot is in use */
}

/*
 * The handle an answer is about, or a slot nobody uses (when the handle was
 * closed and its slot reused meanwhile), so a late answer changes nothing.
 */
static struct handle *handle_of(tl_sftp_server_t *server, const struct pending *p)
{
    static struct handle nobody;
    struct handle *h = &server->handles[p->handle];
    if (h->kind == HANDLE_FREE || h->generation != p->handle_generation) {
        memset(&nobody, 0, sizeof nobody);
        nobody.eof_at = NO_EOF;
        return &nobody;
    }
    return h;
}

static void drop_if_ours(tl_sftp_server_t *server, const struct pending *p)
{
    struct handle *h = &server->handles[p->handle];
    if (h->kind != HANDLE_FREE && h->generation == p->handle_generation)
        drop_handle(server, p->handle);
}

static struct pending *take_pending(tl_sftp_server_t *server, uint32_t op)
{
    uint32_t slot = op & 0xffu;
    if (slot >= TL_SFTP_SERVER_MAX_PENDING)
        return NULL;
    struct pending *p = &server->pending[slot];
    if (!p->in_use || p->generation != op >> 8)
        return NULL;
    p->in_use = 0;
    server->pending_count--;
    return p;
}

/* ---- requests ---------------------------------------------------------------------------------
 */

static int resolve(tl_sftp_server_t *server, const tl_sftp_request_t *req, tl_sftp_vpath_t *path)
{
    const char *why = NULL;
    int rc = tl_sftp_resolve(req->path, req->path_len, path, &why);
    if (rc == 0)
        return 0;
    uint32_t status = rc == TL_ENOTFOUND ? TL_SFTP_NO_SUCH_FILE
                      : rc == TL_EDENIED ? TL_SFTP_PERMISSION_DENIED
                                         : TL_SFTP_FAILURE;
    /* Clients show the status alone; the backend may say why (not for "no such ticket"). */
    if (status != TL_SFTP_NO_SUCH_FILE && server->backend->refused != NULL && why != NULL)
        server->backend->refused(server->ctx, why);
    reply_status(server, req->id, status, why);
    return rc;
}

static void do_realpath(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    tl_sftp_vpath_t path;
    if (resolve(server, req, &path) != 0)
        return;
    char name[TL_SFTP_MAX_PATH + 32];
    if (path.root)
        tl_format(name, sizeof name, "/");
    else
        tl_format(name, sizeof name, "/%s%s", path.ticket, strcmp(path.path, "/") ? path.path : "");
    tl_sftp_name_reply_t reply;
    tl_sftp_attrs_t none = {0};
    int rc = tl_sftp_name_begin(server->output, &reply, req->id, 1);
    if (rc == 0)
        rc = tl_sftp_name_put(server->output, &reply, name, name, &none);
    if (rc == 0)
        rc = tl_sftp_name_end(server->output, &reply);
    check_put(server, rc);
}

static void do_stat(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    tl_sftp_vpath_t path;
    if (resolve(server, req, &path) != 0)
        return;
    if (path.root) {
        tl_sftp_attrs_t attrs = {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040555};
        check_put(server, tl_sftp_put_attrs(server->output, req->id, &attrs));
        return;
    }
    uint32_t op = new_pending(server, req, 0);
    server->backend->stat(server->ctx, op, &path, req->type == TL_SFTP_STAT);
}

static void do_opendir(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    tl_sftp_vpath_t path;
    if (resolve(server, req, &path) != 0)
        return;
    uint32_t index;
    if (new_handle(server, HANDLE_DIR, &index) != 0) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "too many handles open");
        return;
    }
    uint32_t op = new_pending(server, req, index);
    if (path.root)
        server->backend->list_tickets(server->ctx, op);
    else
        server->backend->list(server->ctx, op, &path);
}

static void do_readdir(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    uint32_t index;
    struct handle *h = find_handle(server, req, &index);
    if (h == NULL || h->kind != HANDLE_DIR) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "not an open directory");
        return;
    }
    if (h->next_entry >= h->count) {
        reply_status(server, req->id, TL_SFTP_EOF, NULL);
        return;
    }
    size_t count = h->count - h->next_entry;
    if (count > ENTRIES_PER_REPLY)
        count = ENTRIES_PER_REPLY;
    tl_sftp_name_reply_t reply;
    int rc = tl_sftp_name_begin(server->output, &reply, req->id, (uint32_t)count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const struct entry *e = &h->entries[h->next_entry + i];
        char line[512];
        long_name(line, sizeof line, e->name, &e->attrs);
        rc = tl_sftp_name_put(server->output, &reply, e->name, line, &e->attrs);
    }
    if (rc == 0)
        rc = tl_sftp_name_end(server->output, &reply);
    check_put(server, rc);
    if (rc == 0)
        h->next_entry += count;
}

static void do_open(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    tl_sftp_vpath_t path;
    uint32_t flags = req->pflags;
    int reading = flags == TL_SFTP_FXF_READ;
    int writing = (flags & TL_SFTP_FXF_WRITE) && !(flags & TL_SFTP_FXF_READ) &&
                  !(flags & (TL_SFTP_FXF_APPEND | TL_SFTP_FXF_EXCL)) && (flags & TL_SFTP_FXF_CREAT);
    /* Without TRUNC too (scp's own way): the file is replaced whole at the end either way. */
    if (!reading && !writing) {
        reply_status(server, req->id, TL_SFTP_OP_UNSUPPORTED,
                     "files are opened to read them whole or to write them anew");
        return;
    }
    if (resolve(server, req, &path) != 0)
        return;
    if (path.root) {
        reply_status(server, req->id, TL_SFTP_PERMISSION_DENIED, "the top lists tickets only");
        return;
    }
    if (server->limits.max_files != 0 && server->files_opened >= server->limits.max_files) {
        char message[128];
        tl_format(message, sizeof message, "the limit of %u files in one session is reached",
                  server->limits.max_files);
        reply_status(server, req->id, TL_SFTP_FAILURE, message);
        if (server->backend->refused != NULL) /* the clients show the status alone, if at all */
            server->backend->refused(server->ctx, message);
        return;
    }
    uint32_t index;
    if (new_handle(server, reading ? HANDLE_READ : HANDLE_WRITE, &index) != 0) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "too many handles open");
        return;
    }
    server->files_opened++;
    uint32_t op = new_pending(server, req, index);
    if (reading) {
        server->backend->open_read(server->ctx, op, index, &path);
    } else {
        uint32_t mode =
            req->attrs.flags & TL_SFTP_ATTR_PERMISSIONS ? req->attrs.permissions & 0777u : 0644u;
        server->backend->open_write(server->ctx, op, index, &path, mode);
    }
}

static void over_limit(tl_sftp_server_t *server, uint32_t id)
{
    char message[128];
    tl_format(message, sizeof message, "the file is larger than the limit of %llu bytes",
              (unsigned long long)server->limits.max_file_bytes);
    reply_status(server, id, TL_SFTP_FAILURE, message);
    /* The clients show the status alone, if at all: said on stderr too. */
    if (server->backend->refused != NULL)
        server->backend->refused(server->ctx, message);
}

static void do_read(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    uint32_t index;
    struct handle *h = find_handle(server, req, &index);
    if (h == NULL || h->kind != HANDLE_READ) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "not a file open for reading");
        return;
    }
    if (req->offset >= h->eof_at) {
        reply_status(server, req->id, TL_SFTP_EOF, NULL);
        return;
    }
    if (req->offset != h->next_offset) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "files are read in order, from the start");
        return;
    }
    uint32_t length = req->length < TL_SFTP_MAX_READ ? req->length : TL_SFTP_MAX_READ;
    if (length == 0) {
        check_put(server, tl_sftp_put_data(server->output, req->id, "", 0));
        return;
    }
    if (h->failed) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "the transfer of this file failed");
        return;
    }
    h->next_offset += length;
    uint32_t op = new_pending(server, req, index);
    struct pending *p = &server->pending[op & 0xffu];
    p->offset = req->offset;
    p->length = length;
    server->backend->read(server->ctx, op, index, length);
}

static void do_write(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    uint32_t index;
    struct handle *h = find_handle(server, req, &index);
    if (h == NULL || h->kind != HANDLE_WRITE) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "not a file open for writing");
        return;
    }
    if (h->failed) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "the transfer of this file failed");
        return;
    }
    if (req->offset != h->next_offset) {
        reply_status(server, req->id, TL_SFTP_FAILURE,
                     "files are written in order, from the start");
        return;
    }
    if (server->limits.max_file_bytes != 0 &&
        req->data_len > server->limits.max_file_bytes - h->next_offset) {
        h->failed = 1; /* the close drops what was written */
        over_limit(server, req->id);
        return;
    }
    h->next_offset += req->data_len;
    uint32_t op = new_pending(server, req, index);
    server->backend->write(server->ctx, op, index, req->data, req->data_len);
}

static void do_close(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    uint32_t index;
    struct handle *h = find_handle(server, req, &index);
    if (h == NULL) {
        reply_status(server, req->id, TL_SFTP_FAILURE, "not an open handle");
        return;
    }
    if (h->kind == HANDLE_DIR) {
        drop_handle(server, index);
        reply_status(server, req->id, TL_SFTP_OK, NULL);
        return;
    }
    h->open = 0; /* no more reads or writes on it; the slot is freed by the answer */
    uint32_t op = new_pending(server, req, index);
    server->backend->close(server->ctx, op, index, h->failed);
}

static void handle_request(tl_sftp_server_t *server, const tl_sftp_request_t *req)
{
    switch (req->type) {
    case TL_SFTP_REALPATH:
        do_realpath(server, req);
        break;
    case TL_SFTP_STAT:
    case TL_SFTP_LSTAT:
        do_stat(server, req);
        break;
    case TL_SFTP_OPENDIR:
        do_opendir(server, req);
        break;
    case TL_SFTP_READDIR:
        do_readdir(server, req);
        break;
    case TL_SFTP_OPEN:
        do_open(server, req);
        break;
    case TL_SFTP_READ:
        do_read(server, req);
        break;
    case TL_SFTP_WRITE:
        do_write(server, req);
        break;
    case TL_SFTP_CLOSE:
        do_close(server, req);
        break;
    default:
        reply_status(server, req->id, TL_SFTP_OP_UNSUPPORTED, NULL);
        break;
    }
}

/* One whole packet. */
static void handle_packet(tl_sftp_server_t *server, const uint8_t *payload, size_t len)
{
    tl_sftp_request_t req;
    int rc = tl_sftp_parse_request(payload, len, &req);
    if (!server->initialised) {
        if (rc != 0 || req.type != TL_SFTP_INIT) {
            server->failed = "the client did not start with INIT";
            return;
        }
        server->initialised = 1;
        check_put(server, tl_sftp_put_version(server->output));
        return;
    }
    if (rc == TL_EMSG_TYPE || (rc == 0 && req.type == TL_SFTP_EXTENDED)) {
        reply_status(server, req.id, TL_SFTP_OP_UNSUPPORTED, NULL);
        return;
    }
    if (rc != 0 || req.type == TL_SFTP_INIT) {
        server->failed = "the client sent a malformed request";
        return;
    }
    handle_request(server, &req);
}

size_t tl_sftp_server_input(tl_sftp_server_t *server, const uint8_t *bytes, size_t len)
{
    size_t taken = 0;
    while (server->failed == NULL && !tl_sftp_server_blocked(server)) {
        /* The next packet, whole, in input: its length first, then exactly what it says. */
        size_t have = tl_buf_len(server->input);
        size_t want = 4;
        if (have >= 4) {
            uint32_t length = tl_load_u32(tl_buf_data(server->input));
            if (length == 0 || length > TL_SFTP_MAX_PACKET) {
                server->failed = "the client sent a packet of a length out of bounds";
                break;
            }
            want = 4 + (size_t)length;
        }
        if (have < want) {
            size_t n = want - have < len - taken ? want - have : len - taken;
            if (n == 0)
                break;
            if (tl_buf_put(server->input, bytes + taken, n) != 0) {
                server->failed = "out of memory";
                break;
            }
            taken += n;
            continue;
        }
        const uint8_t *payload;
        size_t payload_len;
        if (tl_sftp_next_packet(tl_buf_data(server->input), have, &payload, &payload_len) == 1)
            handle_packet(server, payload, payload_len);
        tl_buf_reset(server->input);
    }
    return taken;
}

/* ---- answers --------------------------------------------------------------------------------- */

void tl_sftp_server_answer_status(tl_sftp_server_t *server, uint32_t op, uint32_t status,
                                  const char *message)
{
    struct pending *p = take_pending(server, op);
    if (p == NULL)
        return;
    struct handle *h = handle_of(server, p);
    switch (p->type) {
    case TL_SFTP_OPEN:
        if (status == TL_SFTP_OK) {
            h->open = 1;
            put_handle(server, p->id, p->handle);
            return;
        }
        drop_if_ours(server, p);
        break;
    case TL_SFTP_OPENDIR:
        drop_if_ours(server, p);
        break;
    case TL_SFTP_WRITE:
        if (status != TL_SFTP_OK)
            h->failed = 1;
        break;
    case TL_SFTP_READ:
        if (status == TL_SFTP_EOF && p->offset < h->eof_at)
            h->eof_at = p->offset;
        else if (status != TL_SFTP_EOF)
            h->failed = 1;
        break;
    case TL_SFTP_CLOSE:
        drop_if_ours(server, p);
        break;
    default:
        break;
    }
    reply_status(server, p->id, status, message);
}

void tl_sftp_server_answer_attrs(tl_sftp_server_t *server, uint32_t op,
                                 const tl_sftp_attrs_t *attrs)
{
    struct pending *p = take_pending(server, op);
    if (p == NULL)
        return;
    if (p->type != TL_SFTP_STAT && p->type != TL_SFTP_LSTAT) {
        reply_status(server, p->id, TL_SFTP_FAILURE, NULL);
        return;
    }
    check_put(server, tl_sftp_put_attrs(server->output, p->id, attrs));
}

/* A name the client may be given: one component, printable, UTF-8. */
static int entry_name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 255 || strchr(name, '/') != NULL)
        return 0;
    char path[300];
    tl_format(path, sizeof path, "/T-1/%s", name);
    tl_sftp_vpath_t resolved;
    return tl_sftp_resolve((const uint8_t *)path, strlen(path), &resolved, NULL) == 0 &&
           strcmp(resolved.path + 1, name) == 0;
}

void tl_sftp_server_answer_entries(tl_sftp_server_t *server, uint32_t op,
                                   const tl_sftp_entry_t *entries, size_t count)
{
    struct pending *p = take_pending(server, op);
    if (p == NULL)
        return;
    struct handle *h = handle_of(server, p);
    if (p->type != TL_SFTP_OPENDIR || count > TL_SFTP_SERVER_MAX_ENTRIES) {
        drop_if_ours(server, p);
        reply_status(server, p->id, TL_SFTP_FAILURE,
                     count > TL_SFTP_SERVER_MAX_ENTRIES ? "the directory holds too many entries"
                                                        : NULL);
        return;
    }
    h->entries = calloc(count > 0 ? count : 1, sizeof *h->entries);
    if (h->entries == NULL) {
        drop_if_ours(server, p);
        reply_status(server, p->id, TL_SFTP_FAILURE, "out of memory");
        return;
    }
    /* Names with control characters or "/" are left out: nobody could name them back. */
    for (size_t i = 0; i < count; i++) {
        if (!entry_name_ok(entries[i].name))
            continue;
        struct entry *e = &h->entries[h->count];
        e->name = strdup(entries[i].name);
        if (e->name == NULL)
            break;
        e->attrs = entries[i].attrs;
        h->count++;
    }
    h->open = 1;
    put_handle(server, p->id, p->handle);
}

void tl_sftp_server_answer_data(tl_sftp_server_t *server, uint32_t op, const uint8_t *data,
                                size_t len)
{
    struct pending *p = take_pending(server, op);
    if (p == NULL)
        return;
    struct handle *h = handle_of(server, p);
    if (p->type != TL_SFTP_READ || len > p->length) {
        h->failed = 1;
        reply_status(server, p->id, TL_SFTP_FAILURE, NULL);
        return;
    }
    if (server->limits.max_file_bytes != 0 &&
        len > server->limits.max_file_bytes - (p->offset < server->limits.max_file_bytes
                                                   ? p->offset
                                                   : server->limits.max_file_bytes)) {
        h->failed = 1; /* the bytes past the limit never reach the client */
        over_limit(server, p->id);
        return;
    }
    if (len < p->length && p->offset + len < h->eof_at)
        h->eof_at = p->offset + len; /* a short read is the end of the file */
    if (len == 0) {
        reply_status(server, p->id, TL_SFTP_EOF, NULL);
        return;
    }
    check_put(server, tl_sftp_put_data(server->output, p->id, data, len));
}
