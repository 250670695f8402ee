/*
 * SFTP v3 packets and the relay's virtual tree (proto/sftp.h). The layout of
 * each request is draft-ietf-secsh-filexfer-02 §6; every field is read with
 * proto/buf.h's checked readers, so nothing reads past the packet.
 */
#include "proto/sftp.h"

#include "proto/err.h"
#include "proto/ids.h"
#include "proto/text.h"

#include <string.h>

/* Longest extended attribute name or value read past (v3 leaves them unbounded). */
#define MAX_EXTENDED_STRING 4096u

int tl_sftp_next_packet(const uint8_t *in, size_t in_len, const uint8_t **payload, size_t *len)
{
    if (in_len < 4)
        return 0;
    uint32_t length = tl_load_u32(in);
    if (length == 0 || length > TL_SFTP_MAX_PACKET)
        return TL_EFRAME_SIZE;
    if (in_len - 4 < length)
        return 0;
    *payload = in + 4;
    *len = length;
    return 1;
}

/* Every reader error is one answer: the packet is malformed. */
static int malformed(int rc)
{
    return rc == 0 ? 0 : TL_EMSG_MALFORMED;
}

static int read_string(tl_reader_t *reader, size_t max, const uint8_t **out, size_t *out_len)
{
    return malformed(tl_reader_string(reader, max, out, out_len));
}

static int read_attrs(tl_reader_t *reader, tl_sftp_attrs_t *attrs)
{
    int rc = malformed(tl_reader_u32(reader, &attrs->flags));
    if (rc == 0 && (attrs->flags & TL_SFTP_ATTR_SIZE))
        rc = malformed(tl_reader_u64(reader, &attrs->size));
    if (rc == 0 && (attrs->flags & TL_SFTP_ATTR_UIDGID)) {
        rc = malformed(tl_reader_u32(reader, &attrs->uid));
        if (rc == 0)
            rc = malformed(tl_reader_u32(reader, &attrs->gid));
    }
    if (rc == 0 && (attrs->flags & TL_SFTP_ATTR_PERMISSIONS))
        rc = malformed(tl_reader_u32(reader, &attrs->permissions));
    if (rc == 0 && (attrs->flags & TL_SFTP_ATTR_ACMODTIME)) {
        rc = malformed(tl_reader_u32(reader, &attrs->atime));
        if (rc == 0)
            rc = malformed(tl_reader_u32(reader, &attrs->mtime));
    }
    if (rc == 0 && (attrs->flags & TL_SFTP_ATTR_EXTENDED)) {
        uint32_t count = 0;
        rc = malformed(tl_reader_u32(reader, &count));
        if (rc == 0 && count > TL_SFTP_MAX_EXTENDED)
            rc = TL_EMSG_MALFORMED;
        for (uint32_t i = 0; rc == 0 && i < 2 * count; i++) {
            const uint8_t *skipped;
            size_t skipped_len;
            rc = read_string(reader, MAX_EXTENDED_STRING, &skipped, &skipped_len);
        }
    }
    /* Only what we know is kept; unknown flag bits are read past as v3 has nothing for them. */
    attrs->flags &=
        TL_SFTP_ATTR_SIZE | TL_SFTP_ATTR_UIDGID | TL_SFTP_ATTR_PERMISSIONS | TL_SFTP_ATTR_ACMODTIME;
    return rc;
}

/* The fields each request type carries after its id. */
static int read_fields(tl_reader_t *reader, tl_sftp_request_t *req)
{
    switch (req->type) {
    case TL_SFTP_OPEN: {
        int rc = read_string(reader, TL_SFTP_MAX_PATH, &req->path, &req->path_len);
        if (rc == 0)
            rc = malformed(tl_reader_u32(reader, &req->pflags));
        return rc == 0 ? read_attrs(reader, &req->attrs) : rc;
    }
    case TL_SFTP_CLOSE:
    case TL_SFTP_FSTAT:
    case TL_SFTP_READDIR:
        return read_string(reader, TL_SFTP_MAX_HANDLE, &req->handle, &req->handle_len);
    case TL_SFTP_READ: {
        int rc = read_string(reader, TL_SFTP_MAX_HANDLE, &req->handle, &req->handle_len);
        if (rc == 0)
            rc = malformed(tl_reader_u64(reader, &req->offset));
        return rc == 0 ? malformed(tl_reader_u32(reader, &req->length)) : rc;
    }
    case TL_SFTP_WRITE: {
        int rc = read_string(reader, TL_SFTP_MAX_HANDLE, &req->handle, &req->handle_len);
        if (rc == 0)
            rc = malformed(tl_reader_u64(reader, &req->offset));
        return rc == 0 ? read_string(reader, TL_SFTP_MAX_PACKET, &req->data, &req->data_len) : rc;
    }
    case TL_SFTP_FSETSTAT: {
        int rc = read_string(reader, TL_SFTP_MAX_HANDLE, &req->handle, &req->handle_len);
        return rc == 0 ? read_attrs(reader, &req->attrs) : rc;
    }
    case TL_SFTP_LSTAT:
    case TL_SFTP_STAT:
    case TL_SFTP_OPENDIR:
    case TL_SFTP_REALPATH:
    case TL_SFTP_REMOVE:
    case TL_SFTP_RMDIR:
    case TL_SFTP_READLINK:
        return read_string(reader, TL_SFTP_MAX_PATH, &req->path, &req->path_len);
    case TL_SFTP_SETSTAT:
    case TL_SFTP_MKDIR: {
        int rc = read_string(reader, TL_SFTP_MAX_PATH, &req->path, &req->path_len);
        return rc == 0 ? read_attrs(reader, &req->attrs) : rc;
    }
    case TL_SFTP_RENAME:
    case TL_SFTP_SYMLINK: {
        int rc = read_string(reader, TL_SFTP_MAX_PATH, &req->path, &req->path_len);
        return rc == 0 ? read_string(reader, TL_SFTP_MAX_PATH, &req->path2, &req->path2_len) : rc;
    }
    default:
        return TL_EMSG_TYPE;
    }
}

int tl_sftp_parse_request(const uint8_t *payload, size_t len, tl_sftp_request_t *req)
{
    memset(req, 0, sizeof *req);
    tl_reader_t reader;
    tl_reader_init(&reader, payload, len);
    if (tl_reader_u8(&reader, &req->type) != 0)
        return TL_EMSG_MALFORMED;
    if (req->type == TL_SFTP_INIT) {
        /* INIT has a version where others have an id; extension pairs may follow (v3: none). */
        return malformed(tl_reader_u32(&reader, &req->version));
    }
    if (tl_reader_u32(&reader, &req->id) != 0)
        return TL_EMSG_MALFORMED;
    if (req->type == TL_SFTP_EXTENDED)
        return read_string(&reader, TL_SFTP_MAX_PATH, &req->extension, &req->extension_len);
    int rc = read_fields(&reader, req);
    if (rc == 0 && tl_reader_left(&reader) != 0)
        rc = TL_EMSG_MALFORMED;
    return rc;
}

/* ---- replies ---------------------------------------------------------------------------------
 */

/*
 * Every reply is built in place: a length placeholder, then the fields, then
 * the length poked in. On failure the bytes put so far are taken back, so a
 * reply is appended whole or not at all.
 */
static int reply_begin(tl_buf_t *out, uint8_t type, uint32_t id, size_t *start)
{
    *start = tl_buf_len(out);
    int rc = tl_buf_put_u32(out, 0);
    if (rc == 0)
        rc = tl_buf_put_u8(out, type);
    if (rc == 0)
        rc = tl_buf_put_u32(out, id);
    return rc;
}

static int reply_end(tl_buf_t *out, size_t start, int rc)
{
    if (rc == 0) {
        size_t length = tl_buf_len(out) - start - 4;
        if (length > TL_SFTP_MAX_PACKET)
            rc = TL_EFULL; /* a client would drop the connection: never sent */
        else
            rc = tl_buf_poke_u32(out, start, (uint32_t)length);
    }
    if (rc != 0 && tl_buf_len(out) > start)
        tl_buf_unreserve(out, tl_buf_len(out) - start);
    return rc;
}

int tl_sftp_put_version(tl_buf_t *out)
{
    /* VERSION carries the version where other replies have an id. */
    size_t start;
    int rc = reply_begin(out, TL_SFTP_VERSION_REPLY, TL_SFTP_VERSION, &start);
    return reply_end(out, start, rc);
}

int tl_sftp_put_status(tl_buf_t *out, uint32_t id, uint32_t status, const char *message)
{
    size_t start;
    int rc = reply_begin(out, TL_SFTP_STATUS, id, &start);
    if (rc == 0)
        rc = tl_buf_put_u32(out, status);
    if (rc == 0)
        rc = tl_buf_put_cstring(out, message != NULL ? message : "");
    if (rc == 0)
        rc = tl_buf_put_cstring(out, "en");
    return reply_end(out, start, rc);
}

int tl_sftp_put_handle(tl_buf_t *out, uint32_t id, const void *handle, size_t len)
{
    if (len > TL_SFTP_MAX_HANDLE)
        return TL_EINVAL;
    size_t start;
    int rc = reply_begin(out, TL_SFTP_HANDLE, id, &start);
    if (rc == 0)
        rc = tl_buf_put_string(out, handle, len);
    return reply_end(out, start, rc);
}

int tl_sftp_put_data(tl_buf_t *out, uint32_t id, const void *data, size_t len)
{
    size_t start;
    int rc = reply_begin(out, TL_SFTP_DATA, id, &start);
    if (rc == 0)
        rc = tl_buf_put_string(out, data, len);
    return reply_end(out, start, rc);
}

static int put_attrs(tl_buf_t *out, const tl_sftp_attrs_t *attrs)
{
    uint32_t flags = attrs->flags & (TL_SFTP_ATTR_SIZE | TL_SFTP_ATTR_UIDGID |
                                     TL_SFTP_ATTR_PERMISSIONS | TL_SFTP_ATTR_ACMODTIME);
    int rc = tl_buf_put_u32(out, flags);
    if (rc == 0 && (flags & TL_SFTP_ATTR_SIZE))
        rc = tl_buf_put_u64(out, attrs->size);
    if (rc == 0 && (flags & TL_SFTP_ATTR_UIDGID)) {
        rc = tl_buf_put_u32(out, attrs->uid);
        if (rc == 0)
            rc = tl_buf_put_u32(out, attrs->gid);
    }
    if (rc == 0 && (flags & TL_SFTP_ATTR_PERMISSIONS))
        rc = tl_buf_put_u32(out, attrs->permissions);
    if (rc == 0 && (flags & TL_SFTP_ATTR_ACMODTIME)) {
        rc = tl_buf_put_u32(out, attrs->atime);
        if (rc == 0)
            rc = tl_buf_put_u32(out, attrs->mtime);
    }
    return rc;
}

int tl_sftp_put_attrs(tl_buf_t *out, uint32_t id, const tl_sftp_attrs_t *attrs)
{
    size_t start;
    int rc = reply_begin(out, TL_SFTP_ATTRS, id, &start);
    if (rc == 0)
        rc = put_attrs(out, attrs);
    return reply_end(out, start, rc);
}

int tl_sftp_name_begin(tl_buf_t *out, tl_sftp_name_reply_t *reply, uint32_t id, uint32_t count)
{
    reply->count = count;
    reply->put = 0;
    int rc = reply_begin(out, TL_SFTP_NAME, id, &reply->start);
    if (rc == 0)
        rc = tl_buf_put_u32(out, count);
    if (rc != 0)
        reply_end(out, reply->start, rc);
    return rc;
}

int tl_sftp_name_put(tl_buf_t *out, tl_sftp_name_reply_t *reply, const char *filename,
                     const char *longname, const tl_sftp_attrs_t *attrs)
{
    if (reply->put >= reply->count)
        return TL_EINVAL;
    size_t before = tl_buf_len(out);
    int rc = tl_buf_put_cstring(out, filename);
    if (rc == 0)
        rc = tl_buf_put_cstring(out, longname != NULL ? longname : filename);
    if (rc == 0)
        rc = put_attrs(out, attrs);
    if (rc != 0) {
        tl_buf_unreserve(out, tl_buf_len(out) - before);
        return rc;
    }
    reply->put++;
    return 0;
}

int tl_sftp_name_end(tl_buf_t *out, tl_sftp_name_reply_t *reply)
{
    return reply_end(out, reply->start, reply->put == reply->count ? 0 : TL_EINVAL);
}

/* ---- paths ----------------------------------------------------------------------------------- */

/* No NUL, no C0 control, no DEL, valid UTF-8: what a name on a terminal and in the audit may be. */
static int path_bytes_ok(const uint8_t *path, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (path[i] < 0x20 || path[i] == 0x7f)
            return 0;
    return tl_text_utf8_valid(path, len);
}

int tl_sftp_resolve(const uint8_t *path, size_t len, tl_sftp_vpath_t *out, const char **why)
{
    const char *reason = NULL;
    int rc = 0;
    memset(out, 0, sizeof *out);
    /* Component starts and lengths after "." and ".." are applied: at most one per two bytes. */
    size_t starts[TL_SFTP_MAX_PATH / 2 + 1], lens[TL_SFTP_MAX_PATH / 2 + 1];
    size_t depth = 0;
    if (len > TL_SFTP_MAX_PATH) {
        reason = "the path is too long";
        rc = TL_EINVAL;
        goto out;
    }
    if (!path_bytes_ok(path, len)) {
        reason = "the path holds control characters or is not UTF-8";
        rc = TL_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < len;) {
        while (i < len && path[i] == '/')
            i++;
        size_t start = i;
        while (i < len && path[i] != '/')
            i++;
        size_t n = i - start;
        if (n == 0 || (n == 1 && path[start] == '.'))
            continue;
        if (n == 2 && path[start] == '.' && path[start + 1] == '.') {
            if (depth == 0) {
                reason = "the path climbs above the top of the tree";
                rc = TL_EDENIED;
                goto out;
            }
            depth--;
            continue;
        }
        starts[depth] = start;
        lens[depth] = n;
        depth++;
    }
    if (depth == 0) {
        out->root = 1;
        goto out;
    }
    if (lens[0] >= sizeof out->ticket) {
        reason = "no such ticket";
        rc = TL_ENOTFOUND;
        goto out;
    }
    memcpy(out->ticket, path + starts[0], lens[0]);
    out->ticket[lens[0]] = '\0';
    if (tl_id_parse(out->ticket, TL_ID_TICKET, &out->ticket_id) != 0) {
        reason = "no such ticket";
        rc = TL_ENOTFOUND;
        goto out;
    }
    size_t used = 0;
    out->path[0] = '/';
    out->path[1] = '\0';
    for (size_t c = 1; c < depth; c++) {
        if (used + 1 + lens[c] > TL_SFTP_MAX_PATH) {
            reason = "the path is too long";
            rc = TL_EINVAL;
            goto out;
        }
        out->path[used++] = '/';
        memcpy(out->path + used, path + starts[c], lens[c]);
        used += lens[c];
        out->path[used] = '\0';
    }
out:
    if (rc != 0) {
        memset(out, 0, sizeof *out);
        if (why != NULL)
            *why = reason;
    }
    return rc;
}

int tl_sftp_machine_path_check(const char *path)
{
    size_t len = strlen(path);
    if (len == 0 || len > TL_SFTP_MAX_PATH || path[0] != '/')
        return TL_EINVAL;
    if (!path_bytes_ok((const uint8_t *)path, len))
        return TL_EINVAL;
    if (len == 1)
        return 0;
    const char *p = path + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return TL_EINVAL;
        if (slash == NULL)
            return 0;
        p = slash + 1;
    }
}
