#include "proto/msg.h"
#include "proto/err.h"

#include <string.h>

/* docs/protocol.md §3. */

tl_str_t tl_str_from(const char *text)
{
    tl_str_t view = {(const uint8_t *)(text == NULL ? "" : text), text == NULL ? 0 : strlen(text)};
    return view;
}

int tl_str_eq(tl_str_t view, const char *text)
{
    size_t len = strlen(text);
    return view.len == len && (len == 0 || memcmp(view.ptr, text, len) == 0);
}

const char *tl_msg_type_name(uint8_t type)
{
    switch (type) {
    case TL_MSG_HELLO:
        return "HELLO";
    case TL_MSG_PING:
        return "PING";
    case TL_MSG_PONG:
        return "PONG";
    case TL_MSG_GOODBYE:
        return "GOODBYE";
    case TL_MSG_ENROLL:
        return "ENROLL";
    case TL_MSG_ENROLL_RESULT:
        return "ENROLL_RESULT";
    case TL_MSG_CHANNEL_OPEN:
        return "CHANNEL_OPEN";
    case TL_MSG_CHANNEL_CONFIRM:
        return "CHANNEL_CONFIRM";
    case TL_MSG_CHANNEL_REFUSE:
        return "CHANNEL_REFUSE";
    case TL_MSG_CHANNEL_DATA:
        return "CHANNEL_DATA";
    case TL_MSG_CHANNEL_WINDOW_ADJUST:
        return "CHANNEL_WINDOW_ADJUST";
    case TL_MSG_CHANNEL_EOF:
        return "CHANNEL_EOF";
    case TL_MSG_CHANNEL_CLOSE:
        return "CHANNEL_CLOSE";
    case TL_MSG_CHANNEL_INPUT_ACK:
        return "CHANNEL_INPUT_ACK";
    case TL_MSG_CONTROL:
        return "CONTROL";
    default:
        return "UNKNOWN";
    }
}

/* ---- decoding ---------------------------------------------------------- */

static int get_str(tl_reader_t *r, size_t max_len, tl_str_t *out)
{
    return tl_reader_string(r, max_len, &out->ptr, &out->len);
}

/* Text fields must be free of NUL bytes, so they are safe to print and store. */
static int get_text(tl_reader_t *r, size_t max_len, tl_str_t *out)
{
    int rc = get_str(r, max_len, out);
    if (rc == 0 && out->len > 0 && memchr(out->ptr, 0, out->len) != NULL)
        return TL_EMSG_MALFORMED;
    return rc;
}

/* A length-prefixed JSON text that must hold one object. */
static int get_json_object(tl_reader_t *r, json_t **out)
{
    tl_str_t text;
    int rc = get_str(r, TL_FRAME_MAX_PAYLOAD, &text);
    if (rc != 0)
        return rc;
    json_error_t error;
    json_t *value = json_loadb((const char *)text.ptr, text.len, JSON_REJECT_DUPLICATES, &error);
    if (value == NULL)
        return TL_EMSG_JSON;
    if (!json_is_object(value)) {
        json_decref(value);
        return TL_EMSG_JSON;
    }
    *out = value;
    return 0;
}

static int decode_fields(tl_reader_t *r, tl_msg_t *m)
{
    int rc = 0;
    switch (m->type) {
    case TL_MSG_HELLO: {
        struct tl_msg_hello *h = &m->u.hello;
        if ((rc = tl_reader_u16(r, &h->min_version)) || (rc = tl_reader_u16(r, &h->max_version)) ||
            (rc = tl_reader_u32(r, &h->features)) ||
            (rc = get_text(r, TL_MSG_MAX_NAME, &h->software)))
            return rc;
        if (h->min_version == 0 || h->min_version > h->max_version)
            return TL_EMSG_MALFORMED;
        return 0;
    }
    case TL_MSG_PING:
    case TL_MSG_PONG:
        return tl_reader_u64(r, &m->u.ping.nonce);
    case TL_MSG_GOODBYE:
        if ((rc = tl_reader_u32(r, &m->u.goodbye.code)))
            return rc;
        return get_text(r, TL_MSG_MAX_TEXT, &m->u.goodbye.reason);
    case TL_MSG_ENROLL: {
        struct tl_msg_enroll *e = &m->u.enroll;
        if ((rc = get_text(r, TL_MSG_MAX_CODE, &e->code)) ||
            (rc = get_text(r, TL_MSG_MAX_HOST, &e->hostname)) ||
            (rc = get_text(r, TL_MSG_MAX_HOST, &e->os)))
            return rc;
        return 0;
    }
    case TL_MSG_ENROLL_RESULT: {
        struct tl_msg_enroll_result *e = &m->u.enroll_result;
        if ((rc = tl_reader_u32(r, &e->status)) ||
            (rc = get_text(r, TL_MSG_MAX_ID, &e->device_id)) ||
            (rc = get_text(r, TL_MSG_MAX_TEXT, &e->message)))
            return rc;
        return 0;
    }
    case TL_MSG_CHANNEL_OPEN: {
        struct tl_msg_channel_open *o = &m->u.open;
        if ((rc = tl_reader_u32(r, &o->sender_channel)) ||
            (rc = tl_reader_u32(r, &o->initial_window)) ||
            (rc = tl_reader_u32(r, &o->max_packet)) ||
            (rc = get_text(r, TL_MSG_MAX_NAME, &o->channel_type)))
            return rc;
        if (o->channel_type.len == 0)
            return TL_EMSG_MALFORMED;
        return get_json_object(r, &o->params);
    }
    case TL_MSG_CHANNEL_CONFIRM: {
        struct tl_msg_channel_confirm *c = &m->u.confirm;
        if ((rc = tl_reader_u32(r, &c->recipient_channel)) ||
            (rc = tl_reader_u32(r, &c->sender_channel)) ||
            (rc = tl_reader_u32(r, &c->initial_window)) || (rc = tl_reader_u32(r, &c->max_packet)))
            return rc;
        return 0;
    }
    case TL_MSG_CHANNEL_REFUSE:
        if ((rc = tl_reader_u32(r, &m->u.refuse.recipient_channel)) ||
            (rc = tl_reader_u32(r, &m->u.refuse.reason)))
            return rc;
        return get_text(r, TL_MSG_MAX_TEXT, &m->u.refuse.message);
    case TL_MSG_CHANNEL_DATA:
        if ((rc = tl_reader_u32(r, &m->u.data.recipient_channel)) ||
            (rc = tl_reader_u8(r, &m->u.data.stream)))
            return rc;
        if (m->u.data.stream > TL_STREAM_STDERR)
            return TL_EMSG_MALFORMED;
        tl_reader_rest(r, &m->u.data.data.ptr, &m->u.data.data.len);
        return 0;
    case TL_MSG_CHANNEL_WINDOW_ADJUST:
        if ((rc = tl_reader_u32(r, &m->u.window_adjust.recipient_channel)) ||
            (rc = tl_reader_u32(r, &m->u.window_adjust.bytes)))
            return rc;
        return 0;
    case TL_MSG_CHANNEL_EOF:
        return tl_reader_u32(r, &m->u.eof.recipient_channel);
    case TL_MSG_CHANNEL_CLOSE: {
        struct tl_msg_channel_close *c = &m->u.close;
        uint32_t status;
        if ((rc = tl_reader_u32(r, &c->recipient_channel)) || (rc = tl_reader_u8(r, &c->flags)) ||
            (rc = tl_reader_u32(r, &status)) ||
            (rc = get_text(r, TL_MSG_MAX_NAME, &c->exit_signal)))
            return rc;
        c->exit_status = (int32_t)status;
        if (c->flags & ~(TL_CLOSE_HAS_EXIT_STATUS | TL_CLOSE_HAS_EXIT_SIGNAL))
            return TL_EMSG_MALFORMED;
        if (!(c->flags & TL_CLOSE_HAS_EXIT_SIGNAL) != (c->exit_signal.len == 0))
            return TL_EMSG_MALFORMED;
        return 0;
    }
    case TL_MSG_CHANNEL_INPUT_ACK: {
        struct tl_msg_input_ack *a = &m->u.input_ack;
        if ((rc = tl_reader_u32(r, &a->recipient_channel)) || (rc = tl_reader_u32(r, &a->bytes)) ||
            (rc = tl_reader_u8(r, &a->flags)))
            return rc;
        if (a->bytes == 0 || (a->flags & ~TL_INPUT_ACK_HIDDEN))
            return TL_EMSG_MALFORMED;
        return 0;
    }
    case TL_MSG_CONTROL:
        if ((rc = tl_reader_u32(r, &m->u.control.request_id)))
            return rc;
        return get_json_object(r, &m->u.control.body);
    default:
        return TL_EMSG_TYPE;
    }
}

int tl_msg_decode(const tl_frame_t *frame, tl_msg_t *out)
{
    tl_reader_t reader;
    memset(out, 0, sizeof *out);
    out->type = frame->type;
    tl_reader_init(&reader, frame->payload, frame->payload_len);
    int rc = decode_fields(&reader, out);
    /* A field that ran off the end means the payload was cut short. */
    if (rc == TL_ETRUNCATED)
        rc = TL_EMSG_MALFORMED;
    if (rc == 0 && tl_reader_left(&reader) != 0)
        rc = TL_EMSG_MALFORMED;
    if (rc != 0)
        tl_msg_clear(out);
    return rc;
}

void tl_msg_clear(tl_msg_t *msg)
{
    if (msg->type == TL_MSG_CHANNEL_OPEN) {
        json_decref(msg->u.open.params);
        msg->u.open.params = NULL;
    } else if (msg->type == TL_MSG_CONTROL) {
        json_decref(msg->u.control.body);
        msg->u.control.body = NULL;
    }
}

/* ---- encoding ---------------------------------------------------------- */

static int put_str(tl_buf_t *out, tl_str_t value, size_t max_len)
{
    if (value.len > max_len)
        return TL_EINVAL;
    return tl_buf_put_string(out, value.ptr, value.len);
}

static int put_text(tl_buf_t *out, tl_str_t value, size_t max_len)
{
    if (value.len > 0 && memchr(value.ptr, 0, value.len) != NULL)
        return TL_EINVAL;
    return put_str(out, value, max_len);
}

/* JSON objects only; NULL encodes as the empty object. */
static int put_json_object(tl_buf_t *out, const json_t *value)
{
    if (value == NULL)
        return tl_buf_put_cstring(out, "{}");
    if (!json_is_object(value))
        return TL_EINVAL;
    size_t len = json_dumpb(value, NULL, 0, JSON_COMPACT);
    if (len == 0 || len > TL_FRAME_MAX_PAYLOAD)
        return len == 0 ? TL_EINVAL : TL_EFRAME_SIZE;
    uint8_t *dst;
    int rc = tl_buf_reserve(out, 4 + len, &dst);
    if (rc != 0)
        return rc;
    tl_store_u32(dst, (uint32_t)len);
    if (json_dumpb(value, (char *)dst + 4, len, JSON_COMPACT) != len) {
        tl_buf_unreserve(out, 4 + len);
        return TL_EINVAL;
    }
    return 0;
}

static int encode_fields(tl_buf_t *out, const tl_msg_t *m)
{
    int rc;
    switch (m->type) {
    case TL_MSG_HELLO: {
        const struct tl_msg_hello *h = &m->u.hello;
        if (h->min_version == 0 || h->min_version > h->max_version)
            return TL_EINVAL;
        if ((rc = tl_buf_put_u16(out, h->min_version)) ||
            (rc = tl_buf_put_u16(out, h->max_version)) || (rc = tl_buf_put_u32(out, h->features)))
            return rc;
        return put_text(out, h->software, TL_MSG_MAX_NAME);
    }
    case TL_MSG_PING:
    case TL_MSG_PONG:
        return tl_buf_put_u64(out, m->u.ping.nonce);
    case TL_MSG_GOODBYE:
        if ((rc = tl_buf_put_u32(out, m->u.goodbye.code)))
            return rc;
        return put_text(out, m->u.goodbye.reason, TL_MSG_MAX_TEXT);
    case TL_MSG_ENROLL:
        if ((rc = put_text(out, m->u.enroll.code, TL_MSG_MAX_CODE)) ||
            (rc = put_text(out, m->u.enroll.hostname, TL_MSG_MAX_HOST)))
            return rc;
        return put_text(out, m->u.enroll.os, TL_MSG_MAX_HOST);
    case TL_MSG_ENROLL_RESULT:
        if ((rc = tl_buf_put_u32(out, m->u.enroll_result.status)) ||
            (rc = put_text(out, m->u.enroll_result.device_id, TL_MSG_MAX_ID)))
            return rc;
        return put_text(out, m->u.enroll_result.message, TL_MSG_MAX_TEXT);
    case TL_MSG_CHANNEL_OPEN: {
        const struct tl_msg_channel_open *o = &m->u.open;
        if (o->channel_type.len == 0)
            return TL_EINVAL;
        if ((rc = tl_buf_put_u32(out, o->sender_channel)) ||
            (rc = tl_buf_put_u32(out, o->initial_window)) ||
            (rc = tl_buf_put_u32(out, o->max_packet)) ||
            (rc = put_text(out, o->channel_type, TL_MSG_MAX_NAME)))
            return rc;
        return put_json_object(out, o->params);
    }
    case TL_MSG_CHANNEL_CONFIRM:
        if ((rc = tl_buf_put_u32(out, m->u.confirm.recipient_channel)) ||
            (rc = tl_buf_put_u32(out, m->u.confirm.sender_channel)) ||
            (rc = tl_buf_put_u32(out, m->u.confirm.initial_window)))
            return rc;
        return tl_buf_put_u32(out, m->u.confirm.max_packet);
    case TL_MSG_CHANNEL_REFUSE:
        if ((rc = tl_buf_put_u32(out, m->u.refuse.recipient_channel)) ||
            (rc = tl_buf_put_u32(out, m->u.refuse.reason)))
            return rc;
        return put_text(out, m->u.refuse.message, TL_MSG_MAX_TEXT);
    case TL_MSG_CHANNEL_DATA:
        if (m->u.data.stream > TL_STREAM_STDERR || m->u.data.data.len > TL_MSG_MAX_DATA)
            return TL_EINVAL;
        if ((rc = tl_buf_put_u32(out, m->u.data.recipient_channel)) ||
            (rc = tl_buf_put_u8(out, m->u.data.stream)))
            return rc;
        return tl_buf_put(out, m->u.data.data.ptr, m->u.data.data.len);
    case TL_MSG_CHANNEL_WINDOW_ADJUST:
        if ((rc = tl_buf_put_u32(out, m->u.window_adjust.recipient_channel)))
            return rc;
        return tl_buf_put_u32(out, m->u.window_adjust.bytes);
    case TL_MSG_CHANNEL_EOF:
        return tl_buf_put_u32(out, m->u.eof.recipient_channel);
    case TL_MSG_CHANNEL_CLOSE: {
        const struct tl_msg_channel_close *c = &m->u.close;
        if (c->flags & ~(TL_CLOSE_HAS_EXIT_STATUS | TL_CLOSE_HAS_EXIT_SIGNAL))
            return TL_EINVAL;
        if (!(c->flags & TL_CLOSE_HAS_EXIT_SIGNAL) != (c->exit_signal.len == 0))
            return TL_EINVAL;
        if ((rc = tl_buf_put_u32(out, c->recipient_channel)) ||
            (rc = tl_buf_put_u8(out, c->flags)) ||
            (rc = tl_buf_put_u32(out, (uint32_t)c->exit_status)))
            return rc;
        return put_text(out, c->exit_signal, TL_MSG_MAX_NAME);
    }
    case TL_MSG_CHANNEL_INPUT_ACK: {
        const struct tl_msg_input_ack *a = &m->u.input_ack;
        if (a->bytes == 0 || (a->flags & ~TL_INPUT_ACK_HIDDEN))
            return TL_EINVAL;
        if ((rc = tl_buf_put_u32(out, a->recipient_channel)) ||
            (rc = tl_buf_put_u32(out, a->bytes)))
            return rc;
        return tl_buf_put_u8(out, a->flags);
    }
    case TL_MSG_CONTROL:
        if ((rc = tl_buf_put_u32(out, m->u.control.request_id)))
            return rc;
        return put_json_object(out, m->u.control.body);
    default:
        return TL_EMSG_TYPE;
    }
}

int tl_msg_encode(tl_buf_t *out, const tl_msg_t *msg)
{
    size_t mark;
    int rc = tl_frame_begin(out, msg->type, &mark);
    if (rc != 0)
        return rc;
    rc = encode_fields(out, msg);
    if (rc == 0)
        rc = tl_frame_end(out, mark);
    else
        tl_frame_abort(out, mark);
    return rc;
}

int tl_msg_encode_data(tl_buf_t *out, uint32_t recipient_channel, uint8_t stream, const void *data,
                       size_t len)
{
    if (stream > TL_STREAM_STDERR || len > TL_MSG_MAX_DATA)
        return TL_EINVAL;
    uint8_t *dst;
    int rc = tl_buf_reserve(out, TL_FRAME_HEADER_LEN + TL_MSG_DATA_HEADER + len, &dst);
    if (rc != 0)
        return rc;
    tl_store_u32(dst, (uint32_t)(2 + TL_MSG_DATA_HEADER + len));
    dst[4] = TL_FRAME_VERSION;
    dst[5] = TL_MSG_CHANNEL_DATA;
    tl_store_u32(dst + 6, recipient_channel);
    dst[10] = stream;
    if (len > 0)
        memcpy(dst + 11, data, len);
    return 0;
}

int tl_msg_negotiate(const struct tl_msg_hello *local, const struct tl_msg_hello *peer,
                     uint16_t *chosen)
{
    uint16_t high = local->max_version < peer->max_version ? local->max_version : peer->max_version;
    uint16_t low = local->min_version > peer->min_version ? local->min_version : peer->min_version;
    if (high < low || high == 0)
        return TL_EVERSION;
    *chosen = high;
    return 0;
}
