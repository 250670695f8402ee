/*
 * Fuzz target for the SFTP v3 request parser and the virtual tree
 * (proto/sftp.c): the bytes a technician's sftp or scp client sends.
 *
 * The input is a stream of packets, cut as a client would. Each decoded
 * request must hold only pointers inside its packet and lengths within their
 * caps; every path it names is resolved, and a resolved machine path must be
 * one the agent accepts (tl_sftp_machine_path_check). Replies built from the
 * request's fields must carry their own length. The same bytes then drive
 * the relay's SFTP server (relay/sessions/sftp_server.c) against a backend
 * that answers at once: every reply it queues is a whole packet, its output
 * stays under its cap, and it never takes more than it was offered. Any
 * crash, sanitizer report or broken property is a bug.
 */
#include "proto/err.h"
#include "proto/sftp.h"
#include "relay/sessions/sftp_server.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PACKETS 1024

static void inside(const uint8_t *field, size_t field_len, const uint8_t *payload, size_t len,
                   size_t cap)
{
    if (field_len == 0)
        return;
    if (field_len > cap || field < payload || field + field_len > payload + len)
        abort();
}

static void check_path(const uint8_t *path, size_t len)
{
    tl_sftp_vpath_t v;
    const char *why = NULL;
    int rc = tl_sftp_resolve(path, len, &v, &why);
    if (rc != 0) {
        if (why == NULL || v.root || v.path[0] != '\0')
            abort();
        return;
    }
    if (v.root)
        return;
    if (tl_sftp_machine_path_check(v.path) != 0 || v.ticket_id <= 0)
        abort();
}

static void check_reply(tl_buf_t *out, const tl_sftp_request_t *req)
{
    tl_buf_reset(out);
    tl_sftp_attrs_t attrs = req->attrs;
    attrs.flags |= TL_SFTP_ATTR_SIZE;
    if (tl_sftp_put_attrs(out, req->id, &attrs) != 0)
        abort();
    if (req->handle_len > 0 && tl_sftp_put_handle(out, req->id, req->handle, req->handle_len) != 0)
        abort();
    if (tl_sftp_put_data(out, req->id, req->data, req->data_len) != 0)
        abort();
    const uint8_t *bytes = tl_buf_data(out);
    size_t left = tl_buf_len(out);
    while (left > 0) {
        const uint8_t *payload;
        size_t len;
        if (tl_sftp_next_packet(bytes, left, &payload, &len) != 1)
            abort();
        bytes += 4 + len;
        left -= 4 + len;
    }
}

/* ---- the server, with a backend that answers every call at once ---- */

static tl_sftp_server_t *current;
static uint8_t zeros[TL_SFTP_MAX_READ];
static uint32_t reads;

static void fz_tickets(void *ctx, uint32_t op)
{
    tl_sftp_entry_t entries[] = {
        {"T-1", {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040555}}};
    tl_sftp_server_answer_entries(current, op, entries, 1);
}

static void fz_stat(void *ctx, uint32_t op, const tl_sftp_vpath_t *path, int follow)
{
    if (tl_sftp_machine_path_check(path->path) != 0)
        abort();
    tl_sftp_attrs_t attrs = {.flags = TL_SFTP_ATTR_SIZE, .size = 10};
    tl_sftp_server_answer_attrs(current, op, &attrs);
}

static void fz_list(void *ctx, uint32_t op, const tl_sftp_vpath_t *path)
{
    tl_sftp_entry_t entries[] = {{"a", {0}}, {"b\n", {0}}};
    tl_sftp_server_answer_entries(current, op, entries, 2);
}

static void fz_open_read(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path)
{
    tl_sftp_server_answer_status(current, op, path->path[1] == 'x' ? TL_SFTP_NO_SUCH_FILE : 0,
                                 NULL);
}

static void fz_open_write(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path,
                          uint32_t mode)
{
    tl_sftp_server_answer_status(current, op, TL_SFTP_OK, NULL);
}

static void fz_read(void *ctx, uint32_t op, uint32_t file, uint32_t len)
{
    if (len > TL_SFTP_MAX_READ)
        abort();
    /* Every third read is the end of the file. */
    tl_sftp_server_answer_data(current, op, zeros, ++reads % 3 == 0 ? len / 2 : len);
}

static void fz_write(void *ctx, uint32_t op, uint32_t file, const uint8_t *data, size_t len)
{
    tl_sftp_server_answer_status(current, op, TL_SFTP_OK, NULL);
}

static void fz_close(void *ctx, uint32_t op, uint32_t file, int aborted)
{
    tl_sftp_server_answer_status(current, op, TL_SFTP_OK, NULL);
}

static const tl_sftp_backend_t fz_backend = {
    fz_tickets, fz_stat, fz_list, fz_open_read, fz_open_write, fz_read, fz_write, fz_close, NULL,
};

static void drain(tl_sftp_server_t *server)
{
    size_t len;
    const uint8_t *out = tl_sftp_server_output(server, &len);
    if (len > TL_SFTP_SERVER_MAX_OUTPUT)
        abort();
    size_t off = 0;
    while (off < len) {
        const uint8_t *payload;
        size_t payload_len;
        if (tl_sftp_next_packet(out + off, len - off, &payload, &payload_len) != 1)
            abort();
        off += 4 + payload_len;
    }
    tl_sftp_server_consume(server, len);
}

static void run_server(const uint8_t *data, size_t size)
{
    tl_sftp_server_limits_t limits = {.max_file_bytes = 100000, .max_files = 8};
    tl_sftp_server_t *server = tl_sftp_server_new(&fz_backend, NULL, &limits);
    if (server == NULL)
        abort();
    current = server;
    reads = 0;
    /* In pieces of 1..64 bytes, so packets are cut everywhere. */
    size_t off = 0, piece = 1;
    while (off < size && tl_sftp_server_failed(server) == NULL) {
        size_t n = size - off < piece ? size - off : piece;
        size_t taken = tl_sftp_server_input(server, data + off, n);
        if (taken > n)
            abort();
        off += taken;
        drain(server);
        if (taken == 0 && !tl_sftp_server_blocked(server) && tl_sftp_server_failed(server) == NULL)
            abort(); /* nothing taken, nothing to wait for */
        piece = piece % 64 + 1;
    }
    tl_sftp_server_free(server);
    current = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_server(data, size);
    tl_buf_t *out = tl_buf_new(4 * TL_SFTP_MAX_PACKET);
    if (out == NULL)
        abort();
    size_t packets = 0;
    while (size > 0 && packets++ < MAX_PACKETS) {
        const uint8_t *payload;
        size_t len;
        int rc = tl_sftp_next_packet(data, size, &payload, &len);
        if (rc <= 0)
            break;
        if (len == 0 || len > TL_SFTP_MAX_PACKET || payload != data + 4)
            abort();
        tl_sftp_request_t req;
        rc = tl_sftp_parse_request(payload, len, &req);
        if (rc == 0) {
            inside(req.path, req.path_len, payload, len, TL_SFTP_MAX_PATH);
            inside(req.path2, req.path2_len, payload, len, TL_SFTP_MAX_PATH);
            inside(req.handle, req.handle_len, payload, len, TL_SFTP_MAX_HANDLE);
            inside(req.data, req.data_len, payload, len, TL_SFTP_MAX_PACKET);
            inside(req.extension, req.extension_len, payload, len, TL_SFTP_MAX_PATH);
            if (req.path != NULL)
                check_path(req.path, req.path_len);
            if (req.path2 != NULL)
                check_path(req.path2, req.path2_len);
            check_reply(out, &req);
        } else if (rc != TL_EMSG_MALFORMED && rc != TL_EMSG_TYPE) {
            abort();
        }
        data += 4 + len;
        size -= 4 + len;
    }
    tl_buf_free(out);
    return 0;
}
