/*
 * Fuzz target for the message parser.
 *
 * The first input byte is the message type, the rest its payload. A payload
 * that decodes is encoded again and must decode to the same thing; for types
 * without JSON the re-encoded payload must equal the input byte for byte
 * (the encoding is canonical).
 */
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/msg.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size - 1 > TL_FRAME_MAX_PAYLOAD)
        return 0;
    tl_frame_t frame = {TL_FRAME_VERSION, data[0], data + 1, size - 1};
    tl_msg_t msg;
    int rc = tl_msg_decode(&frame, &msg);
    if (rc != 0) {
        if (rc != TL_EMSG_TYPE && rc != TL_EMSG_MALFORMED && rc != TL_EMSG_JSON && rc != TL_ENOMEM)
            abort();
        return 0;
    }

    tl_buf_t *out = tl_buf_new(TL_FRAME_HEADER_LEN + TL_FRAME_MAX_PAYLOAD);
    if (out == NULL || tl_msg_encode(out, &msg) != 0)
        abort();
    const uint8_t *bytes = tl_buf_data(out);
    tl_frame_t again = {bytes[4], bytes[5], bytes + TL_FRAME_HEADER_LEN,
                        tl_buf_len(out) - TL_FRAME_HEADER_LEN};
    int has_json = msg.type == TL_MSG_CHANNEL_OPEN || msg.type == TL_MSG_CONTROL;
    if (!has_json && (again.payload_len != frame.payload_len ||
                      memcmp(again.payload, frame.payload, frame.payload_len) != 0))
        abort();
    tl_msg_t second;
    if (tl_msg_decode(&again, &second) != 0 || second.type != msg.type)
        abort();
    if (has_json) {
        json_t *a = msg.type == TL_MSG_CONTROL ? msg.u.control.body : msg.u.open.params;
        json_t *b = msg.type == TL_MSG_CONTROL ? second.u.control.body : second.u.open.params;
        if (!json_equal(a, b))
            abort();
    }
    tl_msg_clear(&second);
    tl_msg_clear(&msg);
    tl_buf_free(out);
    return 0;
}
