/*
 * Fuzz target for the SFTP v3 request parser and the virtual tree
 * (proto/sftp.c): the bytes a technician's sftp or scp client sends.
 *
 * The input is a stream of packets, cut as a client would. Each decoded
 * request must hold only pointers inside its packet and lengths within their
 * caps; every path it names is resolved, and a resolved machine path must be
 * one the agent accepts (tl_sftp_machine_path_check). Replies built from the
 * request's fields must carry their own length. Any crash, sanitizer report
 * or broken property is a bug.
 */
#include "proto/err.h"
#include "proto/sftp.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
