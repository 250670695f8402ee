/*
 * Channel multiplexer: two muxes wired back to back through real frame and
 * message encoding. Covers the channel lifecycle, windows, bad peer input,
 * callbacks that call back into the mux, and a randomized flow-control run.
 */
#include "tl_test.h"

#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/mux.h"

#include <inttypes.h>
#include <stdlib.h>

#define PIPE_MAX (64u * 1024u * 1024u)
#define MAX_CH 8
#define DATA_HEAD (TL_FRAME_HEADER_LEN + TL_MSG_DATA_HEADER)
#define NO_CHANNEL UINT32_MAX

/* ---- two muxes and the pipes between them -------------------------------- */

typedef struct side side_t;

struct side {
    tl_mux_t *mux;
    tl_buf_t *out;           /* frames this side sent, not yet delivered */
    tl_frame_decoder_t *dec; /* decodes frames arriving at this side */
    side_t *peer;
    void *user;
    /* Sees each message arriving at this side before the mux does. */
    void (*observe)(side_t *to, const tl_msg_t *msg);

    /* What this side sent. */
    size_t frames_sent;
    size_t sent_by_type[256];
    size_t last_head_len, last_body_len;
    int fail_send_after; /* frames to let through before send fails; -1: never */

    /* How this side's owner behaves. */
    int auto_confirm;
    int refuse_on_open; /* how many of the next open requests to refuse */
    uint32_t refuse_reason;
    const char *refuse_text;
    int auto_consume;
    uint32_t stalled_channel; /* never consumed, even with auto_consume */
    int close_on_data;
    int open_on_close;
    int open_on_refuse;
    const uint8_t *pending; /* written from on_writable */
    size_t pending_len;
    uint32_t pending_channel;

    /* What this side's owner saw. */
    int opens, confirms, refuses, eofs, closes, writables, data_calls, acks;
    uint32_t acked_visible, acked_hidden; /* bytes, by kind, from CHANNEL_INPUT_ACK */
    uint32_t open_channel, confirm_channel, refuse_channel, eof_channel, close_channel;
    char open_type[TL_MSG_MAX_NAME + 1];
    json_t *open_params;
    uint32_t open_window, open_max_packet;
    uint32_t refuse_reason_got;
    char refuse_message[TL_MSG_MAX_TEXT + 1];
    struct tl_msg_channel_close close_got;
    char close_signal[TL_MSG_MAX_NAME + 1];
    void *data_in_callback;
    int reentry_rc;
    uint32_t reopened_channel;
    tl_buf_t *rx[MAX_CH][2]; /* bytes received per channel and stream */
};

static void copy_str(char *dst, size_t size, tl_str_t s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static int pipe_send(void *ctx, const uint8_t *head, size_t head_len, const uint8_t *body,
                     size_t body_len)
{
    side_t *s = ctx;
    /* The frame's length field covers head and body together. */
    assert_true(head_len >= TL_FRAME_HEADER_LEN);
    assert_int_equal(tl_load_u32(head), head_len + body_len - 4);
    if (s->fail_send_after == 0)
        return TL_EIO;
    if (s->fail_send_after > 0)
        s->fail_send_after--;
    s->frames_sent++;
    s->sent_by_type[head[5]]++;
    s->last_head_len = head_len;
    s->last_body_len = body_len;
    TL_ASSERT_OK(tl_buf_put(s->out, head, head_len));
    TL_ASSERT_OK(tl_buf_put(s->out, body, body_len));
    return 0;
}

static tl_buf_t *rx(side_t *s, uint32_t channel, uint8_t stream)
{
    assert_true(channel < MAX_CH && stream < 2);
    if (s->rx[channel][stream] == NULL)
        s->rx[channel][stream] = tl_buf_new(PIPE_MAX);
    return s->rx[channel][stream];
}

static void on_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    side_t *s = ctx;
    s->opens++;
    s->open_channel = channel;
    copy_str(s->open_type, sizeof s->open_type, request->channel_type);
    json_decref(s->open_params);
    s->open_params = json_incref(request->params);
    s->open_window = request->initial_window;
    s->open_max_packet = request->max_packet;
    if (s->refuse_on_open > 0 && s->refuse_on_open--)
        TL_ASSERT_OK(tl_mux_refuse(s->mux, channel, s->refuse_reason, s->refuse_text));
    else if (s->auto_confirm)
        TL_ASSERT_OK(tl_mux_confirm(s->mux, channel));
}

static void on_confirm(void *ctx, uint32_t channel)
{
    side_t *s = ctx;
    s->confirms++;
    s->confirm_channel = channel;
}

static void on_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    side_t *s = ctx;
    s->refuses++;
    s->refuse_channel = channel;
    s->refuse_reason_got = reason;
    copy_str(s->refuse_message, sizeof s->refuse_message, message);
    s->data_in_callback = tl_mux_get_data(s->mux, channel);
    if (s->open_on_refuse)
        s->reentry_rc = tl_mux_open(s->mux, "again", NULL, &s->reopened_channel);
}

static void on_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data, size_t len)
{
    side_t *s = ctx;
    s->data_calls++;
    TL_ASSERT_OK(tl_buf_put(rx(s, channel, stream), data, len));
    if (s->auto_consume && channel != s->stalled_channel)
        TL_ASSERT_OK(tl_mux_consumed(s->mux, channel, len));
    if (s->close_on_data) {
        s->close_on_data = 0;
        s->reentry_rc = tl_mux_close(s->mux, channel, NULL);
    }
}

static void on_writable(void *ctx, uint32_t channel)
{
    side_t *s = ctx;
    s->writables++;
    if (s->pending_len > 0 && channel == s->pending_channel) {
        size_t written;
        TL_ASSERT_OK(
            tl_mux_write(s->mux, channel, TL_STREAM_MAIN, s->pending, s->pending_len, &written));
        s->pending += written;
        s->pending_len -= written;
    }
}

static void on_eof(void *ctx, uint32_t channel)
{
    side_t *s = ctx;
    s->eofs++;
    s->eof_channel = channel;
}

static void on_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    side_t *s = ctx;
    s->closes++;
    s->close_channel = channel;
    s->close_got = *close;
    copy_str(s->close_signal, sizeof s->close_signal, close->exit_signal);
    s->close_got.exit_signal = tl_str_from(s->close_signal);
    s->data_in_callback = tl_mux_get_data(s->mux, channel);
    if (s->open_on_close)
        s->reentry_rc = tl_mux_open(s->mux, "again", NULL, &s->reopened_channel);
}

static void on_input_ack(void *ctx, uint32_t channel, uint32_t bytes, int hidden)
{
    side_t *s = ctx;
    (void)channel;
    s->acks++;
    if (hidden)
        s->acked_hidden += bytes;
    else
        s->acked_visible += bytes;
}

static const tl_mux_callbacks_t side_callbacks = {
    .send = pipe_send,
    .on_open = on_open,
    .on_confirm = on_confirm,
    .on_refuse = on_refuse,
    .on_data = on_data,
    .on_writable = on_writable,
    .on_eof = on_eof,
    .on_close = on_close,
    .on_input_ack = on_input_ack,
};

static void side_init(side_t *s, const tl_mux_config_t *cfg, const tl_mux_callbacks_t *callbacks)
{
    memset(s, 0, sizeof *s);
    s->mux = tl_mux_new(cfg, callbacks, s);
    s->out = tl_buf_new(PIPE_MAX);
    s->dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    assert_non_null(s->mux);
    assert_non_null(s->out);
    assert_non_null(s->dec);
    s->fail_send_after = -1;
    s->stalled_channel = NO_CHANNEL;
}

static void pair_init(side_t *a, side_t *b, const tl_mux_config_t *cfg_a,
                      const tl_mux_config_t *cfg_b)
{
    side_init(a, cfg_a, &side_callbacks);
    side_init(b, cfg_b, &side_callbacks);
    a->peer = b;
    b->peer = a;
    b->auto_confirm = 1;
}

static void side_free(side_t *s)
{
    tl_mux_free(s->mux);
    tl_buf_free(s->out);
    tl_frame_decoder_free(s->dec);
    json_decref(s->open_params);
    for (int i = 0; i < MAX_CH; i++)
        for (int j = 0; j < 2; j++)
            tl_buf_free(s->rx[i][j]);
}

/*
 * Delivers up to max_frames of the frames `from` sent to its peer, through the
 * frame decoder and the message decoder. Returns the first error the peer's
 * mux reports. Each frame is copied out first, because the receiver's
 * callbacks may send more.
 */
static int deliver(side_t *from, size_t max_frames)
{
    side_t *to = from->peer;
    for (size_t n = 0; n < max_frames && tl_buf_len(from->out) > 0; n++) {
        size_t frame_len = 4 + tl_load_u32(tl_buf_data(from->out));
        assert_true(frame_len <= tl_buf_len(from->out));
        uint8_t *copy = malloc(frame_len);
        assert_non_null(copy);
        memcpy(copy, tl_buf_data(from->out), frame_len);
        TL_ASSERT_OK(tl_buf_consume(from->out, frame_len));

        const uint8_t *cursor = copy;
        size_t left = frame_len;
        tl_frame_t frame;
        assert_int_equal(tl_frame_decoder_next(to->dec, &cursor, &left, &frame), 1);
        assert_int_equal(left, 0);
        tl_msg_t msg;
        TL_ASSERT_OK(tl_msg_decode(&frame, &msg));
        if (to->observe != NULL)
            to->observe(to, &msg);
        int rc = tl_mux_input(to->mux, &msg);
        tl_msg_clear(&msg);
        free(copy);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Runs both directions until neither side has anything left to say. */
static int pump(side_t *a, side_t *b)
{
    while (tl_buf_len(a->out) > 0 || tl_buf_len(b->out) > 0) {
        int rc = deliver(a, SIZE_MAX);
        if (rc == 0)
            rc = deliver(b, SIZE_MAX);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* a opens a channel that b confirms; returns a's id and sets b's. */
static uint32_t open_pair(side_t *a, side_t *b, uint32_t *b_channel)
{
    uint32_t channel;
    int confirms = a->confirms;
    TL_ASSERT_OK(tl_mux_open(a->mux, "shell", NULL, &channel));
    TL_ASSERT_OK(pump(a, b));
    assert_int_equal(a->confirms, confirms + 1);
    assert_int_equal(a->confirm_channel, channel);
    *b_channel = b->open_channel;
    return channel;
}

static void write_all(side_t *s, uint32_t channel, uint8_t stream, const char *text)
{
    size_t written;
    TL_ASSERT_OK(tl_mux_write(s->mux, channel, stream, text, strlen(text), &written));
    assert_int_equal(written, strlen(text));
}

static void assert_rx(side_t *s, uint32_t channel, uint8_t stream, const void *bytes, size_t len)
{
    tl_buf_t *got = rx(s, channel, stream);
    assert_int_equal(tl_buf_len(got), len);
    assert_memory_equal(tl_buf_data(got), bytes, len);
}

static tl_msg_t data_msg(uint32_t channel, const uint8_t *bytes, size_t len)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_DATA};
    msg.u.data.recipient_channel = channel;
    msg.u.data.stream = TL_STREAM_MAIN;
    msg.u.data.data.ptr = bytes;
    msg.u.data.data.len = len;
    return msg;
}

static tl_msg_t adjust_msg(uint32_t channel, uint32_t bytes)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_WINDOW_ADJUST};
    msg.u.window_adjust.recipient_channel = channel;
    msg.u.window_adjust.bytes = bytes;
    return msg;
}

static tl_msg_t eof_msg(uint32_t channel)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_EOF};
    msg.u.eof.recipient_channel = channel;
    return msg;
}

static tl_msg_t close_msg(uint32_t channel)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_CLOSE};
    msg.u.close.recipient_channel = channel;
    msg.u.close.exit_signal = TL_STR("");
    return msg;
}

static tl_msg_t open_msg(uint32_t sender, uint32_t window, uint32_t max_packet)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_OPEN};
    msg.u.open.sender_channel = sender;
    msg.u.open.initial_window = window;
    msg.u.open.max_packet = max_packet;
    msg.u.open.channel_type = TL_STR("exec");
    return msg;
}

static tl_msg_t confirm_msg(uint32_t recipient, uint32_t sender, uint32_t window,
                            uint32_t max_packet)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_CONFIRM};
    msg.u.confirm.recipient_channel = recipient;
    msg.u.confirm.sender_channel = sender;
    msg.u.confirm.initial_window = window;
    msg.u.confirm.max_packet = max_packet;
    return msg;
}

static tl_msg_t ack_msg(uint32_t channel, uint32_t bytes, uint8_t flags)
{
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_INPUT_ACK};
    msg.u.input_ack.recipient_channel = channel;
    msg.u.input_ack.bytes = bytes;
    msg.u.input_ack.flags = flags;
    return msg;
}

/* Takes the oldest frame s sent (not delivered) and decodes it into *msg; its
 * strings point into frame, which must hold it. */
static void take_sent(side_t *s, uint8_t *frame, size_t size, tl_msg_t *msg)
{
    assert_true(tl_buf_len(s->out) >= 4);
    size_t frame_len = 4 + tl_load_u32(tl_buf_data(s->out));
    assert_true(frame_len <= size && frame_len <= tl_buf_len(s->out));
    memcpy(frame, tl_buf_data(s->out), frame_len);
    TL_ASSERT_OK(tl_buf_consume(s->out, frame_len));
    tl_frame_t decoded = {frame[4], frame[5], frame + TL_FRAME_HEADER_LEN,
                          frame_len - TL_FRAME_HEADER_LEN};
    TL_ASSERT_OK(tl_msg_decode(&decoded, msg));
}

static void fill_pattern(uint8_t *bytes, size_t len, uint32_t salt)
{
    for (size_t i = 0; i < len; i++)
        bytes[i] = (uint8_t)((i * 131u + salt) ^ (i >> 8));
}

/* ---- lifecycle ------------------------------------------------------------ */

static void test_round_trip_open_data_eof_close(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);

    json_t *params = json_pack("{s:s}", "ticket", "T-42");
    uint32_t ca;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", params, &ca));
    json_decref(params);
    assert_int_equal(ca, 0);
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_OPEN], 1);
    assert_int_equal(tl_mux_channel_count(a.mux), 1);
    /* No data before the peer confirms. */
    size_t written = 99;
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_write(a.mux, ca, 0, "x", 1, &written));
    assert_int_equal(written, 0);

    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.opens, 1);
    assert_string_equal(b.open_type, "shell");
    assert_string_equal(json_string_value(json_object_get(b.open_params, "ticket")), "T-42");
    assert_int_equal(b.open_window, TL_MUX_DEFAULT_WINDOW);
    assert_int_equal(b.open_max_packet, TL_MUX_DEFAULT_MAX_PACKET);
    uint32_t cb = b.open_channel;
    assert_int_equal(cb, 0);
    assert_int_equal(a.confirms, 1);
    assert_int_equal(tl_mux_send_window(a.mux, ca), TL_MUX_DEFAULT_WINDOW);
    assert_int_equal(tl_mux_send_window(b.mux, cb), TL_MUX_DEFAULT_WINDOW);

    /* Data: one frame each, an 11-byte head and the caller's bytes as body. */
    write_all(&a, ca, TL_STREAM_MAIN, "hello");
    assert_int_equal(a.last_head_len, DATA_HEAD);
    assert_int_equal(a.last_body_len, 5);
    assert_int_equal(tl_buf_len(a.out), DATA_HEAD + 5);
    write_all(&a, ca, TL_STREAM_STDERR, "oops");
    assert_int_equal(tl_mux_send_window(a.mux, ca), TL_MUX_DEFAULT_WINDOW - 9);
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&b, cb, TL_STREAM_MAIN, "hello", 5);
    assert_rx(&b, cb, TL_STREAM_STDERR, "oops", 4);
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 9);
    /* Far below half the window: consuming sends no adjust yet. */
    TL_ASSERT_OK(tl_mux_consumed(b.mux, cb, 9));
    TL_ASSERT_RC(TL_EINVAL, tl_mux_consumed(b.mux, cb, 1));
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 0);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_WINDOW_ADJUST], 0);

    write_all(&b, cb, TL_STREAM_MAIN, "world\n");
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&a, ca, TL_STREAM_MAIN, "world\n", 6);

    /* Half-close: a is done writing, b still may. */
    TL_ASSERT_OK(tl_mux_eof(a.mux, ca));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_write(a.mux, ca, 0, "x", 1, &written));
    assert_int_equal(tl_mux_send_window(a.mux, ca), 0);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.eofs, 1);
    assert_int_equal(b.eof_channel, cb);
    write_all(&b, cb, TL_STREAM_MAIN, "bye");
    TL_ASSERT_OK(tl_mux_eof(b.mux, cb));

    /* b ends with an exit status; a answers CLOSE by itself. */
    struct tl_msg_channel_close status = {
        .flags = TL_CLOSE_HAS_EXIT_STATUS, .exit_status = 3, .exit_signal = TL_STR("")};
    TL_ASSERT_OK(tl_mux_close(b.mux, cb, &status));
    assert_int_equal(tl_mux_channel_count(b.mux), 1);
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&a, ca, TL_STREAM_MAIN, "world\nbye", 9);
    assert_int_equal(a.eofs, 1);
    assert_int_equal(a.closes, 1);
    assert_int_equal(a.close_channel, ca);
    assert_int_equal(a.close_got.flags, TL_CLOSE_HAS_EXIT_STATUS);
    assert_int_equal(a.close_got.exit_status, 3);
    assert_int_equal(b.closes, 1);
    assert_int_equal(b.close_channel, cb);
    assert_int_equal(b.close_got.flags, 0);
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_CLOSE], 1);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_CLOSE], 1);
    assert_int_equal(tl_mux_channel_count(a.mux), 0);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);
    /* The ids are gone. */
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_write(a.mux, ca, 0, "x", 1, &written));
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_close(b.mux, cb, NULL));
    side_free(&a);
    side_free(&b);
}

static void test_refuse_delivers_reason_and_message_and_frees_id(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    b.refuse_on_open = 1;
    b.refuse_reason = 7;
    b.refuse_text = "user denied the session";

    int marker;
    uint32_t ca;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &ca));
    tl_mux_set_data(a.mux, ca, &marker);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.opens, 1);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_REFUSE], 1);
    assert_int_equal(a.refuses, 1);
    assert_int_equal(a.confirms, 0);
    assert_int_equal(a.refuse_channel, ca);
    assert_int_equal(a.refuse_reason_got, 7);
    assert_string_equal(a.refuse_message, "user denied the session");
    /* The owner's data is still there inside on_refuse, and gone after. */
    assert_ptr_equal(a.data_in_callback, &marker);
    assert_null(tl_mux_get_data(a.mux, ca));
    assert_int_equal(tl_mux_channel_count(a.mux), 0);

    /* The id is free again on both sides. */
    uint32_t again;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &again));
    assert_int_equal(again, ca);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.confirms, 1);
    assert_int_equal(b.open_channel, 0);
    side_free(&a);
    side_free(&b);
}

static void test_channel_id_reused_only_after_both_closes(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t b0, b1;
    uint32_t a0 = open_pair(&a, &b, &b0);
    uint32_t a1 = open_pair(&a, &b, &b1);
    assert_int_equal(a0, 0);
    assert_int_equal(a1, 1);

    struct tl_msg_channel_close status = {.flags = TL_CLOSE_HAS_EXIT_SIGNAL,
                                          .exit_signal = TL_STR("TERM")};
    TL_ASSERT_OK(tl_mux_close(a.mux, a0, &status));
    /* Half closed: a's id 0 stays taken until the peer's CLOSE. */
    uint32_t a2;
    TL_ASSERT_OK(tl_mux_open(a.mux, "exec", NULL, &a2));
    assert_int_equal(a2, 2);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.closes, 1);
    assert_int_equal(b.close_channel, b0);
    assert_int_equal(b.close_got.flags, TL_CLOSE_HAS_EXIT_SIGNAL);
    assert_string_equal(b.close_signal, "TERM");
    assert_int_equal(a.closes, 1);
    assert_int_equal(a.close_channel, a0);
    /* b had answered the CLOSE, so both sides were done and b reused id 0 at once. */
    uint32_t b2 = b.open_channel;
    assert_int_equal(b2, b0);
    assert_int_equal(tl_mux_channel_count(a.mux), 2);
    assert_int_equal(tl_mux_channel_count(b.mux), 2);

    /* a got b's CLOSE, so a's id 0 is free again too. */
    uint32_t b3;
    uint32_t a3 = open_pair(&a, &b, &b3);
    assert_int_equal(a3, a0);
    assert_int_equal(b3, 2);
    write_all(&a, a3, TL_STREAM_MAIN, "new");
    write_all(&a, a1, TL_STREAM_MAIN, "old");
    write_all(&a, a2, TL_STREAM_MAIN, "two");
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&b, b3, TL_STREAM_MAIN, "new", 3);
    assert_rx(&b, b1, TL_STREAM_MAIN, "old", 3);
    assert_rx(&b, b2, TL_STREAM_MAIN, "two", 3);
    side_free(&a);
    side_free(&b);
}

static void test_close_before_confirm_waits_for_confirm(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    b.auto_confirm = 0;
    uint32_t ca;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &ca));
    TL_ASSERT_OK(pump(&a, &b));
    uint32_t cb = b.open_channel;
    /* A pending request is answered with refuse, not close. */
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_close(b.mux, cb, NULL));

    TL_ASSERT_OK(tl_mux_close(a.mux, ca, NULL));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_close(a.mux, ca, NULL));
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_CLOSE], 0);
    TL_ASSERT_OK(tl_mux_confirm(b.mux, cb));
    TL_ASSERT_OK(pump(&a, &b));
    /* The confirm was answered with CLOSE at once; the owner saw no confirm. */
    assert_int_equal(a.confirms, 0);
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_CLOSE], 1);
    assert_int_equal(b.closes, 1);
    assert_int_equal(a.closes, 1);
    assert_int_equal(a.close_channel, ca);
    assert_int_equal(tl_mux_channel_count(a.mux), 0);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);
    side_free(&a);
    side_free(&b);
}

/* ---- flow control --------------------------------------------------------- */

static void test_write_larger_than_window_takes_exactly_the_window(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t small = {.max_channels = 8, .window = 1000, .max_packet = 300};
    pair_init(&a, &b, NULL, &small);
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    uint8_t bytes[5000];
    fill_pattern(bytes, sizeof bytes, 1);

    assert_int_equal(tl_mux_send_window(a.mux, ca), 1000);
    size_t written;
    TL_ASSERT_OK(tl_mux_write(a.mux, ca, TL_STREAM_MAIN, bytes, sizeof bytes, &written));
    assert_int_equal(written, 1000);
    /* 300 + 300 + 300 + 100: the peer's max packet, then what is left of the window. */
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_DATA], 4);
    assert_int_equal(a.last_body_len, 100);
    assert_int_equal(tl_buf_len(a.out), 4 * DATA_HEAD + 1000);
    assert_int_equal(tl_mux_send_window(a.mux, ca), 0);
    TL_ASSERT_OK(tl_mux_write(a.mux, ca, TL_STREAM_MAIN, bytes + 1000, 4000, &written));
    assert_int_equal(written, 0);
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_DATA], 4);

    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&b, cb, TL_STREAM_MAIN, bytes, 1000);
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 1000);

    /* Half the window (500) consumed is the point where b re-grants it. */
    TL_ASSERT_OK(tl_mux_consumed(b.mux, cb, 499));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_WINDOW_ADJUST], 0);
    assert_int_equal(a.writables, 0);
    TL_ASSERT_OK(tl_mux_consumed(b.mux, cb, 1));
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_WINDOW_ADJUST], 1);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.writables, 1);
    assert_int_equal(tl_mux_send_window(a.mux, ca), 500);
    TL_ASSERT_OK(tl_mux_write(a.mux, ca, TL_STREAM_MAIN, bytes + 1000, 4000, &written));
    assert_int_equal(written, 500);
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&b, cb, TL_STREAM_MAIN, bytes, 1500);
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 1000);
    side_free(&a);
    side_free(&b);
}

static void test_write_from_on_writable_moves_everything(void **state)
{
    (void)state;
    side_t a, b;
    /* Packets of 250 so every adjust is exactly half the window. */
    tl_mux_config_t small = {.max_channels = 8, .window = 1000, .max_packet = 250};
    pair_init(&a, &b, NULL, &small);
    b.auto_consume = 1;
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    static uint8_t bytes[100000];
    fill_pattern(bytes, sizeof bytes, 2);

    /* One write; every later one happens inside on_writable. */
    size_t written;
    TL_ASSERT_OK(tl_mux_write(a.mux, ca, TL_STREAM_MAIN, bytes, sizeof bytes, &written));
    assert_int_equal(written, 1000);
    a.pending = bytes + written;
    a.pending_len = sizeof bytes - written;
    a.pending_channel = ca;
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.pending_len, 0);
    assert_rx(&b, cb, TL_STREAM_MAIN, bytes, sizeof bytes);
    /* One adjust per 500 bytes consumed; each one woke the writer. */
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_WINDOW_ADJUST], sizeof bytes / 500);
    assert_int_equal(a.writables, sizeof bytes / 500);
    assert_int_equal(tl_mux_send_window(a.mux, ca), 1000);
    side_free(&a);
    side_free(&b);
}

static void test_stalled_channel_does_not_block_another(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t small = {.max_channels = 8, .window = 4096, .max_packet = 1024};
    pair_init(&a, &b, NULL, &small);
    b.auto_consume = 1;
    uint32_t stalled_b, moving_b;
    uint32_t stalled_a = open_pair(&a, &b, &stalled_b);
    uint32_t moving_a = open_pair(&a, &b, &moving_b);
    b.stalled_channel = stalled_b;

    size_t total = 1024 * 1024;
    uint8_t *bytes = malloc(total);
    assert_non_null(bytes);
    fill_pattern(bytes, total, 3);
    size_t stalled_sent = 0, moving_sent = 0;
    for (int round = 0; round < 10000 && moving_sent < total; round++) {
        size_t written;
        TL_ASSERT_OK(tl_mux_write(a.mux, stalled_a, TL_STREAM_MAIN, bytes + stalled_sent,
                                  total - stalled_sent, &written));
        stalled_sent += written;
        TL_ASSERT_OK(tl_mux_write(a.mux, moving_a, TL_STREAM_MAIN, bytes + moving_sent,
                                  total - moving_sent, &written));
        moving_sent += written;
        TL_ASSERT_OK(pump(&a, &b));
    }
    assert_int_equal(moving_sent, total);
    assert_rx(&b, moving_b, TL_STREAM_MAIN, bytes, total);
    /* The stalled one got exactly its window and is held there. */
    assert_int_equal(stalled_sent, 4096);
    assert_rx(&b, stalled_b, TL_STREAM_MAIN, bytes, 4096);
    assert_int_equal(tl_mux_unconsumed(b.mux, stalled_b), 4096);
    assert_int_equal(tl_mux_send_window(a.mux, stalled_a), 0);

    /* Once its reader catches up, it moves again. */
    TL_ASSERT_OK(tl_mux_consumed(b.mux, stalled_b, 4096));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(tl_mux_send_window(a.mux, stalled_a), 4096);
    free(bytes);
    side_free(&a);
    side_free(&b);
}

/* ---- bad input from the peer ---------------------------------------------- */

static void test_input_unknown_channel(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    tl_msg_t msg = data_msg(0, (const uint8_t *)"x", 1);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    msg = data_msg(UINT32_MAX, (const uint8_t *)"x", 1);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));

    uint32_t cb;
    open_pair(&a, &b, &cb);
    msg = data_msg(cb + 1, (const uint8_t *)"x", 1);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    msg = adjust_msg(1000, 1);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    msg = eof_msg(1000);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    msg = close_msg(1000);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    msg = confirm_msg(1000, 0, 100, 100);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(a.mux, &msg));
    msg = (tl_msg_t){.type = TL_MSG_CHANNEL_REFUSE};
    msg.u.refuse.recipient_channel = 1000;
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(a.mux, &msg));

    /* After the peer's CLOSE the id is gone: anything more on it is unknown. */
    msg = close_msg(cb);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(b.closes, 1);
    msg = data_msg(cb, (const uint8_t *)"x", 1);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    msg = close_msg(cb);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input(b.mux, &msg));
    side_free(&a);
    side_free(&b);
}

static void test_input_data_past_window(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t cfg = {.max_channels = 8, .window = 100, .max_packet = 1000};
    pair_init(&a, &b, NULL, &cfg);
    uint32_t cb;
    open_pair(&a, &b, &cb);
    uint8_t bytes[200] = {0};

    tl_msg_t msg = data_msg(cb, bytes, 60);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    msg = data_msg(cb, bytes, 41);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(b.mux, &msg));
    msg = data_msg(cb, bytes, 40);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    msg = data_msg(cb, bytes, 1);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(b.mux, &msg));
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 100);

    /* Only what was re-granted may come: 50 consumed -> 50 more allowed. */
    TL_ASSERT_OK(tl_mux_consumed(b.mux, cb, 50));
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_WINDOW_ADJUST], 1);
    msg = data_msg(cb, bytes, 51);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(b.mux, &msg));
    msg = data_msg(cb, bytes, 50);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 100);
    side_free(&a);
    side_free(&b);
}

static void test_input_data_over_max_packet(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t cfg = {.max_channels = 8, .window = 1 << 20, .max_packet = 1024};
    pair_init(&a, &b, NULL, &cfg);
    uint32_t cb;
    open_pair(&a, &b, &cb);
    static uint8_t bytes[1025];
    tl_msg_t msg = data_msg(cb, bytes, 1025);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(b.mux, &msg));
    msg = data_msg(cb, bytes, 1024);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 1024);
    side_free(&a);
    side_free(&b);
}

static void test_input_window_adjust_overflow(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    uint32_t room = TL_MUX_MAX_WINDOW - TL_MUX_DEFAULT_WINDOW;

    tl_msg_t msg = adjust_msg(ca, room + 1);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(a.mux, &msg));
    msg = adjust_msg(ca, UINT32_MAX);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(a.mux, &msg));
    assert_int_equal(tl_mux_send_window(a.mux, ca), TL_MUX_DEFAULT_WINDOW);
    assert_int_equal(a.writables, 0);
    msg = adjust_msg(ca, room);
    TL_ASSERT_OK(tl_mux_input(a.mux, &msg));
    assert_int_equal(tl_mux_send_window(a.mux, ca), TL_MUX_MAX_WINDOW);
    assert_int_equal(a.writables, 1);
    msg = adjust_msg(ca, 1);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(a.mux, &msg));
    /* A zero grant is legal and wakes nobody. */
    msg = adjust_msg(ca, 0);
    TL_ASSERT_OK(tl_mux_input(a.mux, &msg));
    assert_int_equal(a.writables, 1);
    side_free(&a);
    side_free(&b);
}

static void test_input_data_after_eof(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t cb;
    open_pair(&a, &b, &cb);
    tl_msg_t msg = eof_msg(cb);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(b.eofs, 1);
    msg = data_msg(cb, (const uint8_t *)"late", 4);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(b.mux, &msg));
    msg = eof_msg(cb);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(b.mux, &msg));
    assert_int_equal(b.data_calls, 0);
    assert_int_equal(b.eofs, 1);
    /* The peer still reads: b may write, and grants to b are fine. */
    write_all(&b, cb, TL_STREAM_MAIN, "still here");
    msg = adjust_msg(cb, 10);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    side_free(&a);
    side_free(&b);
}

static void test_input_confirm_for_channel_not_opening(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    b.auto_confirm = 0;
    uint32_t ca;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &ca));
    TL_ASSERT_OK(pump(&a, &b));
    uint32_t cb = b.open_channel;

    /* b's channel is pending (the peer's request): confirm, data, close are all wrong. */
    tl_msg_t msg = confirm_msg(cb, ca, 100, 100);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(b.mux, &msg));
    msg = data_msg(cb, (const uint8_t *)"x", 1);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(b.mux, &msg));
    msg = close_msg(cb);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(b.mux, &msg));
    /* a's channel is opening: no data, EOF or adjust before the confirm. */
    msg = data_msg(ca, (const uint8_t *)"x", 1);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(a.mux, &msg));
    msg = eof_msg(ca);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(a.mux, &msg));
    msg = adjust_msg(ca, 1);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(a.mux, &msg));

    TL_ASSERT_OK(tl_mux_confirm(b.mux, cb));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_confirm(b.mux, cb));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.confirms, 1);
    /* A second confirm, or a refuse, for a channel already open. */
    msg = confirm_msg(ca, cb, 100, 100);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(a.mux, &msg));
    msg = (tl_msg_t){.type = TL_MSG_CHANNEL_REFUSE};
    msg.u.refuse.recipient_channel = ca;
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(a.mux, &msg));
    assert_int_equal(a.confirms, 1);
    assert_int_equal(a.refuses, 0);
    side_free(&a);
    side_free(&b);
}

static void test_input_bad_open_parameters(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    b.auto_confirm = 0;
    tl_msg_t msg = open_msg(5, TL_MUX_MAX_WINDOW + 1, 1024);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(b.mux, &msg));
    msg = open_msg(5, 1024, 0);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(b.mux, &msg));
    assert_int_equal(b.opens, 0);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);

    /* The largest window is fine; a huge max packet is capped to what a frame holds. */
    msg = open_msg(5, TL_MUX_MAX_WINDOW, UINT32_MAX);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(b.opens, 1);
    uint32_t cb = b.open_channel;
    assert_int_equal(tl_mux_send_window(b.mux, cb), 0); /* not confirmed yet */
    TL_ASSERT_OK(tl_mux_confirm(b.mux, cb));
    assert_int_equal(tl_mux_send_window(b.mux, cb), TL_MUX_MAX_WINDOW);
    size_t total = 2 * TL_MSG_MAX_DATA + 10;
    uint8_t *bytes = calloc(1, total);
    assert_non_null(bytes);
    size_t written;
    TL_ASSERT_OK(tl_mux_write(b.mux, cb, TL_STREAM_MAIN, bytes, total, &written));
    assert_int_equal(written, total);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_DATA], 3);
    assert_int_equal(b.last_body_len, 10);
    free(bytes);

    /* The same rules for CONFIRM. */
    uint32_t ca;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &ca));
    msg = confirm_msg(ca, 9, TL_MUX_MAX_WINDOW + 1, 1024);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(a.mux, &msg));
    msg = confirm_msg(ca, 9, 1024, 0);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(a.mux, &msg));
    assert_int_equal(a.confirms, 0);
    msg = confirm_msg(ca, 9, 1024, 1);
    TL_ASSERT_OK(tl_mux_input(a.mux, &msg));
    assert_int_equal(a.confirms, 1);
    side_free(&a);
    side_free(&b);
}

static void test_input_channel_limit_refuses_the_peer(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t two = {.max_channels = 2, .window = 4096, .max_packet = 1024};
    pair_init(&a, &b, NULL, &two);
    uint32_t c0, c1, c2;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &c0));
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &c1));
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &c2));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.opens, 2);
    assert_int_equal(tl_mux_channel_count(b.mux), 2);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_REFUSE], 1);
    assert_int_equal(a.confirms, 2);
    assert_int_equal(a.refuses, 1);
    assert_int_equal(a.refuse_channel, c2);
    assert_int_equal(a.refuse_reason_got, -TL_ECHANNEL_LIMIT);
    assert_string_equal(a.refuse_message, tl_strerror(TL_ECHANNEL_LIMIT));
    assert_int_equal(tl_mux_channel_count(a.mux), 2);
    /* Our own opens hit the same limit. */
    uint32_t c3;
    TL_ASSERT_RC(TL_ECHANNEL_LIMIT, tl_mux_open(b.mux, "shell", NULL, &c3));
    side_free(&a);
    side_free(&b);
}

static void test_input_not_a_channel_message(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    tl_msg_t msg = {.type = TL_MSG_PING};
    TL_ASSERT_RC(TL_EINVAL, tl_mux_input(b.mux, &msg));
    msg.type = 63;
    TL_ASSERT_RC(TL_EINVAL, tl_mux_input(b.mux, &msg));
    side_free(&a);
    side_free(&b);
}

/* ---- one id, one channel (docs/protocol.md §4.1) ------------------------------ */

static void test_open_naming_a_live_id_is_refused_and_the_live_channel_stays(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t b0;
    uint32_t a0 = open_pair(&a, &b, &b0);
    write_all(&a, a0, TL_STREAM_MAIN, "before ");
    TL_ASSERT_OK(pump(&a, &b));

    /* A second OPEN from a that names its live channel's id again. */
    json_t *params = json_object();
    tl_msg_t again = open_msg(a0, 4096, 1024);
    again.u.open.params = params;
    TL_ASSERT_OK(tl_mux_input(b.mux, &again));
    /* b's owner never hears of it; b answers CHANNEL_REFUSE with the defined reason. */
    assert_int_equal(b.opens, 1);
    assert_int_equal(tl_mux_channel_count(b.mux), 1);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_REFUSE], 1);
    uint8_t frame[4096];
    tl_msg_t refuse;
    take_sent(&b, frame, sizeof frame, &refuse);
    assert_int_equal(refuse.type, TL_MSG_CHANNEL_REFUSE);
    assert_int_equal(refuse.u.refuse.recipient_channel, a0);
    assert_int_equal(refuse.u.refuse.reason, (uint32_t)-TL_ECHANNEL_IN_USE);
    assert_true(tl_str_eq(refuse.u.refuse.message, tl_strerror(TL_ECHANNEL_IN_USE)));

    /* The live channel is as it was: bytes both ways, then a normal close. */
    write_all(&a, a0, TL_STREAM_MAIN, "after");
    write_all(&b, b0, TL_STREAM_MAIN, "answer");
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&b, b0, TL_STREAM_MAIN, "before after", 12);
    assert_rx(&a, a0, TL_STREAM_MAIN, "answer", 6);
    TL_ASSERT_OK(tl_mux_close(a.mux, a0, NULL));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.closes, 1);
    assert_int_equal(b.closes, 1);

    /* Fully closed, the id is free: the same OPEN is now asked of the owner. */
    TL_ASSERT_OK(tl_mux_input(b.mux, &again));
    assert_int_equal(b.opens, 2);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_REFUSE], 1);
    json_decref(params);
    side_free(&a);
    side_free(&b);
}

static void test_open_naming_an_unanswered_id_is_refused_too(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    b.auto_confirm = 0;
    uint32_t a0;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &a0));
    TL_ASSERT_OK(pump(&a, &b));
    uint32_t b0 = b.open_channel;

    /* b has not answered a's first request when the same id comes again. */
    json_t *params = json_object();
    tl_msg_t again = open_msg(a0, 4096, 1024);
    again.u.open.params = params;
    TL_ASSERT_OK(tl_mux_input(b.mux, &again));
    json_decref(params);
    assert_int_equal(b.opens, 1);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_REFUSE], 1);
    uint8_t frame[4096];
    tl_msg_t refuse;
    take_sent(&b, frame, sizeof frame, &refuse);
    assert_int_equal(refuse.u.refuse.reason, (uint32_t)-TL_ECHANNEL_IN_USE);

    /* The first request is still b's to answer, and works. */
    TL_ASSERT_OK(tl_mux_confirm(b.mux, b0));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.confirms, 1);
    assert_int_equal(a.refuses, 0);
    write_all(&a, a0, TL_STREAM_MAIN, "ok");
    TL_ASSERT_OK(pump(&a, &b));
    assert_rx(&b, b0, TL_STREAM_MAIN, "ok", 2);
    side_free(&a);
    side_free(&b);
}

static void test_confirm_giving_a_live_id_to_a_second_channel_is_an_error(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    b.auto_confirm = 0;
    uint32_t a0, a1;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &a0));
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &a1));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(b.opens, 2);
    TL_ASSERT_OK(tl_mux_confirm(b.mux, 0));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.confirms, 1);

    /* A confirm cannot be refused: giving b's id 0 to a's second channel ends it all. */
    tl_msg_t twice = confirm_msg(a1, 0, 4096, 1024);
    TL_ASSERT_RC(TL_ECHANNEL_IN_USE, tl_mux_input(a.mux, &twice));
    assert_int_equal(a.confirms, 1);
    size_t written = 0;
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_write(a.mux, a1, TL_STREAM_MAIN, "x", 1, &written));
    side_free(&a);
    side_free(&b);
}

/* ---- CHANNEL_INPUT_ACK (docs/protocol.md §4.7) ------------------------------- */

static void test_input_ack_needs_the_feature_on_both_sides(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t b0;
    uint32_t a0 = open_pair(&a, &b, &b0);
    write_all(&a, a0, TL_STREAM_MAIN, "secret");
    TL_ASSERT_OK(pump(&a, &b));
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input_ack(b.mux, b0, 6, 1));
    assert_int_equal(b.frames_sent, 1); /* its confirm only */
    tl_msg_t ack = ack_msg(a0, 6, TL_INPUT_ACK_HIDDEN);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(a.mux, &ack));
    assert_int_equal(a.acks, 0);
    side_free(&a);
    side_free(&b);
}

static void test_input_ack_reports_hidden_and_visible_main_stream_bytes(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    tl_mux_set_features(a.mux, TL_FEATURE_INPUT_ACK);
    tl_mux_set_features(b.mux, TL_FEATURE_INPUT_ACK);
    assert_int_equal(tl_mux_features(a.mux), TL_FEATURE_INPUT_ACK);
    uint32_t b0;
    uint32_t a0 = open_pair(&a, &b, &b0);
    write_all(&a, a0, TL_STREAM_MAIN, "ls\nhunter2\n");
    TL_ASSERT_OK(pump(&a, &b));

    TL_ASSERT_OK(tl_mux_input_ack(b.mux, b0, 3, 0));
    TL_ASSERT_OK(tl_mux_input_ack(b.mux, b0, 8, 1));
    TL_ASSERT_RC(TL_EINVAL, tl_mux_input_ack(b.mux, b0, 0, 0));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.acks, 2);
    assert_int_equal(a.acked_visible, 3);
    assert_int_equal(a.acked_hidden, 8);

    /* An ack for more than a sent on the main stream is a violation... */
    tl_msg_t ack = ack_msg(a0, 1, 0);
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(a.mux, &ack));
    /* ...and stderr bytes are no one's input. */
    write_all(&a, a0, TL_STREAM_STDERR, "e");
    TL_ASSERT_OK(pump(&a, &b));
    TL_ASSERT_RC(TL_EPROTO, tl_mux_input(a.mux, &ack));
    write_all(&a, a0, TL_STREAM_MAIN, "q");
    TL_ASSERT_OK(pump(&a, &b));
    TL_ASSERT_OK(tl_mux_input(a.mux, &ack));
    assert_int_equal(a.acked_visible, 4);

    /* After its own CLOSE, a still hears acks for what it sent before. */
    write_all(&a, a0, TL_STREAM_MAIN, "z");
    TL_ASSERT_OK(tl_mux_close(a.mux, a0, NULL));
    TL_ASSERT_OK(deliver(&a, 1)); /* the data; the CLOSE waits */
    TL_ASSERT_OK(tl_mux_input_ack(b.mux, b0, 1, 1));
    TL_ASSERT_OK(deliver(&b, SIZE_MAX));
    assert_int_equal(a.acked_hidden, 9);
    /* Once b has answered the CLOSE, b sends no more. */
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.closes, 1);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_input_ack(b.mux, b0, 1, 0));
    side_free(&a);
    side_free(&b);
}

static void test_data_after_our_close_is_dropped_but_counted(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t cfg = {.max_channels = 8, .window = 100, .max_packet = 1000};
    pair_init(&a, &b, NULL, &cfg);
    uint32_t cb;
    open_pair(&a, &b, &cb);
    TL_ASSERT_OK(tl_mux_close(b.mux, cb, NULL));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_close(b.mux, cb, NULL));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_eof(b.mux, cb));

    /* The peer had not seen our CLOSE yet: its data is dropped, within the window. */
    uint8_t bytes[100] = {0};
    tl_msg_t msg = data_msg(cb, bytes, 60);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(b.data_calls, 0);
    assert_int_equal(tl_mux_unconsumed(b.mux, cb), 0);
    msg = data_msg(cb, bytes, 41);
    TL_ASSERT_RC(TL_EWINDOW, tl_mux_input(b.mux, &msg));
    msg = eof_msg(cb);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(b.eofs, 0);
    msg = data_msg(cb, bytes, 1);
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_input(b.mux, &msg));
    msg = close_msg(cb);
    TL_ASSERT_OK(tl_mux_input(b.mux, &msg));
    assert_int_equal(b.closes, 1);
    /* b had closed already: it does not send a second CLOSE. */
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_CLOSE], 1);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);
    side_free(&a);
    side_free(&b);
}

static void test_write_refused_after_eof_or_close(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    size_t written = 99;
    TL_ASSERT_RC(TL_EINVAL, tl_mux_write(a.mux, ca, 2, "x", 1, &written));
    assert_int_equal(written, 0);
    TL_ASSERT_RC(TL_ECHANNEL, tl_mux_write(a.mux, 5, 0, "x", 1, &written));
    TL_ASSERT_OK(tl_mux_eof(a.mux, ca));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_eof(a.mux, ca));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_write(a.mux, ca, 0, "x", 1, &written));
    /* b has not sent EOF: it still writes until it closes. */
    write_all(&b, cb, TL_STREAM_MAIN, "ok");
    TL_ASSERT_OK(tl_mux_close(b.mux, cb, NULL));
    TL_ASSERT_RC(TL_ECHANNEL_STATE, tl_mux_write(b.mux, cb, 0, "x", 1, &written));
    assert_int_equal(tl_mux_send_window(b.mux, cb), 0);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(tl_mux_channel_count(a.mux), 0);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);
    side_free(&a);
    side_free(&b);
}

static void test_send_failure_reaches_the_caller(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t cfg = {.max_channels = 8, .window = 1000, .max_packet = 100};
    pair_init(&a, &b, NULL, &cfg);
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    uint8_t bytes[1000] = {0};
    a.fail_send_after = 2;
    size_t written;
    TL_ASSERT_RC(TL_EIO, tl_mux_write(a.mux, ca, TL_STREAM_MAIN, bytes, 1000, &written));
    /* Two frames went out and only they were charged to the window. */
    assert_int_equal(written, 200);
    assert_int_equal(tl_mux_send_window(a.mux, ca), 800);
    TL_ASSERT_RC(TL_EIO, tl_mux_eof(a.mux, ca));
    uint32_t another;
    TL_ASSERT_RC(TL_EIO, tl_mux_open(a.mux, "shell", NULL, &another));
    assert_int_equal(tl_mux_channel_count(a.mux), 1);
    side_free(&a);
    side_free(&b);
}

/* ---- callbacks that call back into the mux -------------------------------- */

static void test_close_from_on_data(void **state)
{
    (void)state;
    side_t a, b;
    tl_mux_config_t cfg = {.max_channels = 8, .window = 4096, .max_packet = 100};
    pair_init(&a, &b, NULL, &cfg);
    b.auto_consume = 1;
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    uint8_t bytes[250];
    fill_pattern(bytes, sizeof bytes, 4);
    size_t written;
    TL_ASSERT_OK(tl_mux_write(a.mux, ca, TL_STREAM_MAIN, bytes, sizeof bytes, &written));
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_DATA], 3);

    b.close_on_data = 1;
    TL_ASSERT_OK(pump(&a, &b));
    TL_ASSERT_OK(b.reentry_rc);
    /* The first frame arrived; the two behind it came after b's CLOSE and were dropped. */
    assert_int_equal(b.data_calls, 1);
    assert_rx(&b, cb, TL_STREAM_MAIN, bytes, 100);
    assert_int_equal(a.closes, 1);
    assert_int_equal(b.closes, 1);
    assert_int_equal(a.sent_by_type[TL_MSG_CHANNEL_CLOSE], 1);
    assert_int_equal(b.sent_by_type[TL_MSG_CHANNEL_CLOSE], 1);
    assert_int_equal(tl_mux_channel_count(a.mux), 0);
    assert_int_equal(tl_mux_channel_count(b.mux), 0);
    side_free(&a);
    side_free(&b);
}

static void test_open_from_on_close_and_on_refuse(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    int marker;
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    tl_mux_set_data(a.mux, ca, &marker);

    /* The closing channel still holds its id while on_close runs. */
    a.open_on_close = 1;
    TL_ASSERT_OK(tl_mux_close(b.mux, cb, NULL));
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.closes, 1);
    assert_ptr_equal(a.data_in_callback, &marker);
    TL_ASSERT_OK(a.reentry_rc);
    assert_int_equal(a.reopened_channel, ca + 1);
    assert_int_equal(tl_mux_channel_count(a.mux), 1);
    assert_int_equal(a.confirms, 2);
    assert_null(tl_mux_get_data(a.mux, ca));

    /* The same from on_refuse. */
    a.open_on_close = 0;
    a.open_on_refuse = 1;
    b.refuse_on_open = 1;
    b.refuse_reason = 1;
    b.refuse_text = "no";
    uint32_t refused;
    TL_ASSERT_OK(tl_mux_open(a.mux, "shell", NULL, &refused));
    assert_int_equal(refused, 0);
    TL_ASSERT_OK(pump(&a, &b));
    assert_int_equal(a.refuses, 1);
    TL_ASSERT_OK(a.reentry_rc);
    assert_int_equal(a.reopened_channel, 2);
    assert_int_equal(a.confirms, 3);
    assert_int_equal(tl_mux_channel_count(a.mux), 2);
    side_free(&a);
    side_free(&b);
}

/* ---- wire format and memory ---------------------------------------------- */

static void test_data_frame_matches_the_encoder(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    write_all(&a, ca, TL_STREAM_STDERR, "abc");
    tl_buf_t *expected = tl_buf_new(1024);
    TL_ASSERT_OK(tl_msg_encode_data(expected, cb, TL_STREAM_STDERR, "abc", 3));
    assert_int_equal(tl_buf_len(a.out), tl_buf_len(expected));
    assert_memory_equal(tl_buf_data(a.out), tl_buf_data(expected), tl_buf_len(expected));
    tl_buf_free(expected);
    side_free(&a);
    side_free(&b);
}

static void test_idle_mux_holds_little_memory(void **state)
{
    (void)state;
    side_t a, b;
    pair_init(&a, &b, NULL, NULL);
    size_t idle = tl_mux_memory(a.mux);
    assert_true(idle <= 128);
    uint32_t cb;
    uint32_t ca = open_pair(&a, &b, &cb);
    size_t busy = tl_mux_memory(a.mux);
    assert_true(busy > idle);
    assert_true(busy < 2048);
    TL_ASSERT_OK(tl_mux_close(a.mux, ca, NULL));
    TL_ASSERT_OK(pump(&a, &b));
    /* With its last channel gone the mux gives back table and scratch bytes. */
    assert_int_equal(tl_mux_memory(a.mux), idle);
    assert_int_equal(tl_mux_memory(b.mux), idle);
    side_free(&a);
    side_free(&b);
}

static void test_bad_config_is_rejected(void **state)
{
    (void)state;
    tl_mux_config_t cfg = {.max_channels = 1, .window = 1, .max_packet = 1};
    tl_mux_t *mux = tl_mux_new(&cfg, &side_callbacks, NULL);
    assert_non_null(mux);
    tl_mux_free(mux);
    tl_mux_free(NULL);
    tl_mux_config_t bad[] = {
        {.max_channels = 0, .window = 1, .max_packet = 1},
        {.max_channels = 1, .window = 0, .max_packet = 1},
        {.max_channels = 1, .window = TL_MUX_MAX_WINDOW + 1, .max_packet = 1},
        {.max_channels = 1, .window = 1, .max_packet = 0},
        {.max_channels = 1, .window = 1, .max_packet = TL_MSG_MAX_DATA + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(tl_mux_new(&bad[i], &side_callbacks, NULL));
    tl_mux_callbacks_t no_send = side_callbacks;
    no_send.send = NULL;
    assert_null(tl_mux_new(NULL, &no_send, NULL));
}

/* ---- randomized flow control ---------------------------------------------- */

/*
 * Channels opened from both sides, data in both directions on each, written
 * in random chunks and consumed at random, with readers that stall for long
 * stretches. After every step: no receiver holds more than the window it
 * granted, and no sender has more in flight than it was granted. At the end
 * every byte arrived, in order, and every channel closed on both sides.
 *
 * Every fifth channel is aborted instead: one end closes at a random moment
 * (half of them at once, often before the confirm), while the other may still
 * be sending. Its bytes
 * must stop at a correct prefix, and both ends must still see on_close.
 */
#define FLOW_LINKS_PER_SIDE 20
#define FLOW_LINKS (2 * FLOW_LINKS_PER_SIDE)
#define FLOW_STALL_STEPS 200000
#define FLOW_MAX_STEPS 2000000
#define FLOW_MAX_CHUNK 5000

static uint64_t flow_seed;
static size_t flow_step;

#define FLOW_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char flow_msg_[256];                                                                   \
            snprintf(flow_msg_, sizeof flow_msg_, __VA_ARGS__);                                    \
            fail_msg("seed=%" PRIu64 " step=%zu: %s (%s)", flow_seed, flow_step, flow_msg_,        \
                     #cond);                                                                       \
        }                                                                                          \
    } while (0)

#define FLOW_RC(expected, actual)                                                                  \
    do {                                                                                           \
        int flow_expected_ = (expected), flow_actual_ = (actual);                                  \
        FLOW_CHECK(flow_expected_ == flow_actual_, "expected %d (%s), got %d (%s)",                \
                   flow_expected_, tl_strerror(flow_expected_), flow_actual_,                      \
                   tl_strerror(flow_actual_));                                                     \
    } while (0)

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t bound)
{
    return bound == 0 ? 0 : (uint32_t)(splitmix64(&rng_state) % bound);
}

/* Byte `offset` of the stream named by key: the same for sender and checker. */
static uint8_t stream_byte(uint64_t key, uint64_t offset)
{
    uint64_t s = key ^ ((offset >> 3) * 0xd1b54a32d192ed03ull);
    return (uint8_t)(splitmix64(&s) >> (8 * (offset & 7)));
}

struct flow_link;

struct flow_end {
    struct flow_link *link;
    int side; /* 0: A, 1: B */
    uint32_t id;
    int has_id;
    int pending; /* acceptor: request seen, confirm still to do */
    int can_send;
    /* sending */
    uint64_t key;
    size_t total, sent;
    uint64_t granted; /* initial window plus every adjust that reached us */
    int blocked;      /* waiting for on_writable */
    int eof_sent, close_sent;
    int close_deferred; /* closed before the confirm: CLOSE goes out without status */
    /* receiving */
    size_t received, held;
    size_t stalled_until;
    int eof_received, closed;
};

struct flow_link {
    int index;
    int opener;          /* side that opened it */
    int abort_side;      /* side that closes early; -1 for none */
    uint32_t abort_odds; /* 1 in abort_odds chance per visit */
    struct flow_end end[2];
};

struct flow {
    side_t side[2];
    tl_mux_config_t cfg[2];
    struct flow_link links[FLOW_LINKS];
    int closed_ends;
};

static struct flow_end *flow_end_of(side_t *s, uint32_t channel)
{
    return tl_mux_get_data(s->mux, channel);
}

static struct flow_end *flow_peer_end(struct flow_end *e)
{
    return &e->link->end[1 - e->side];
}

static void flow_observe(side_t *to, const tl_msg_t *msg)
{
    /* Track what the peer granted, independently of the mux's own count. */
    if (msg->type == TL_MSG_CHANNEL_WINDOW_ADJUST) {
        struct flow_end *e = flow_end_of(to, msg->u.window_adjust.recipient_channel);
        FLOW_CHECK(e != NULL, "adjust for unknown channel");
        e->granted += msg->u.window_adjust.bytes;
    } else if (msg->type == TL_MSG_CHANNEL_CONFIRM) {
        struct flow_end *e = flow_end_of(to, msg->u.confirm.recipient_channel);
        FLOW_CHECK(e != NULL, "confirm for unknown channel");
        e->granted = msg->u.confirm.initial_window;
    }
}

static void flow_on_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    side_t *s = ctx;
    struct flow *f = s->user;
    int side = s == &f->side[0] ? 0 : 1;
    json_t *index = json_object_get(request->params, "link");
    FLOW_CHECK(json_is_integer(index) && json_integer_value(index) >= 0 &&
                   json_integer_value(index) < FLOW_LINKS,
               "open without a good link index");
    struct flow_link *link = &f->links[json_integer_value(index)];
    struct flow_end *e = &link->end[side];
    FLOW_CHECK(link->opener != side && !e->has_id, "unexpected open");
    e->id = channel;
    e->has_id = 1;
    e->pending = 1;
    e->granted = request->initial_window;
    tl_mux_set_data(s->mux, channel, e);
}

static void flow_on_confirm(void *ctx, uint32_t channel)
{
    struct flow_end *e = flow_end_of(ctx, channel);
    FLOW_CHECK(e != NULL && !e->can_send, "unexpected confirm");
    e->can_send = 1;
}

static void flow_on_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    FLOW_CHECK(0, "channel %" PRIu32 " refused, reason %" PRIu32, channel, reason);
}

static void flow_on_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                         size_t len)
{
    side_t *s = ctx;
    struct flow *f = s->user;
    struct flow_end *e = flow_end_of(s, channel);
    FLOW_CHECK(e != NULL, "data for unknown channel");
    struct flow_end *from = flow_peer_end(e);
    FLOW_CHECK(stream == TL_STREAM_MAIN, "wrong stream");
    FLOW_CHECK(!e->eof_received, "data after EOF");
    FLOW_CHECK(!e->close_sent, "data after our CLOSE");
    FLOW_CHECK(e->received + len <= from->total, "more data than the sender has");
    for (size_t i = 0; i < len; i++)
        FLOW_CHECK(data[i] == stream_byte(from->key, e->received + i),
                   "link %d side %d byte %zu differs", e->link->index, e->side, e->received + i);
    e->received += len;
    e->held += len;
    FLOW_CHECK(e->held <= f->cfg[e->side].window, "receiver holds %zu, window %" PRIu32, e->held,
               f->cfg[e->side].window);
}

static void flow_on_writable(void *ctx, uint32_t channel)
{
    struct flow_end *e = flow_end_of(ctx, channel);
    FLOW_CHECK(e != NULL && e->can_send && !e->eof_sent, "writable when it cannot write");
    e->blocked = 0;
}

static void flow_on_eof(void *ctx, uint32_t channel)
{
    struct flow_end *e = flow_end_of(ctx, channel);
    FLOW_CHECK(e != NULL && !e->eof_received, "unexpected EOF");
    FLOW_CHECK(e->received == flow_peer_end(e)->total, "EOF after %zu of %zu bytes", e->received,
               flow_peer_end(e)->total);
    e->eof_received = 1;
}

static void flow_on_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    side_t *s = ctx;
    struct flow *f = s->user;
    struct flow_end *e = flow_end_of(s, channel);
    FLOW_CHECK(e != NULL && !e->closed, "unexpected close");
    if (e->link->abort_side < 0)
        FLOW_CHECK(e->eof_received && e->received == flow_peer_end(e)->total,
                   "closed after %zu of %zu bytes", e->received, flow_peer_end(e)->total);
    /* The peer closed with its link index as exit status, or its mux answered
     * ours, or it closed before its channel was confirmed. */
    if (close->flags & TL_CLOSE_HAS_EXIT_STATUS)
        FLOW_CHECK(close->exit_status == e->link->index, "exit status %" PRId32,
                   close->exit_status);
    else
        FLOW_CHECK(close->flags == 0 && (e->close_sent || flow_peer_end(e)->close_deferred),
                   "CLOSE without status before ours");
    e->closed = 1;
    e->has_id = 0;
    f->closed_ends++;
}

static const tl_mux_callbacks_t flow_callbacks = {
    .send = pipe_send,
    .on_open = flow_on_open,
    .on_confirm = flow_on_confirm,
    .on_refuse = flow_on_refuse,
    .on_data = flow_on_data,
    .on_writable = flow_on_writable,
    .on_eof = flow_on_eof,
    .on_close = flow_on_close,
};

/* After every step: the windows hold, as seen from outside the mux. */
static void flow_check_invariants(struct flow *f)
{
    for (int l = 0; l < FLOW_LINKS; l++) {
        for (int side = 0; side < 2; side++) {
            struct flow_end *e = &f->links[l].end[side];
            if (!e->has_id)
                continue;
            tl_mux_t *mux = f->side[side].mux;
            FLOW_CHECK(tl_mux_unconsumed(mux, e->id) == e->held, "unconsumed %zu, held %zu",
                       tl_mux_unconsumed(mux, e->id), e->held);
            FLOW_CHECK(e->held <= f->cfg[side].window, "receiver over its window");
            if (!e->can_send)
                continue;
            FLOW_CHECK(e->sent <= e->granted, "link %d side %d sent %zu, granted %" PRIu64, l, side,
                       e->sent, e->granted);
            if (!e->eof_sent && !e->close_sent)
                FLOW_CHECK(tl_mux_send_window(mux, e->id) == e->granted - e->sent,
                           "send window %zu, expected %" PRIu64, tl_mux_send_window(mux, e->id),
                           e->granted - e->sent);
        }
    }
}

static void flow_write(struct flow *f, struct flow_end *e)
{
    static uint8_t chunk[FLOW_MAX_CHUNK];
    tl_mux_t *mux = f->side[e->side].mux;
    size_t written;
    if (e->closed)
        return;
    if (e->close_sent) {
        if (e->has_id)
            FLOW_RC(TL_ECHANNEL_STATE, tl_mux_write(mux, e->id, 0, "x", 1, &written));
        return;
    }
    if (!e->can_send) {
        /* Not confirmed yet: the mux must refuse. */
        if (e->has_id)
            FLOW_RC(TL_ECHANNEL_STATE, tl_mux_write(mux, e->id, 0, "x", 1, &written));
        return;
    }
    if (e->blocked || e->eof_sent)
        return;
    size_t len = 1 + rnd(FLOW_MAX_CHUNK);
    if (len > e->total - e->sent)
        len = e->total - e->sent;
    for (size_t i = 0; i < len; i++)
        chunk[i] = stream_byte(e->key, e->sent + i);
    size_t window = tl_mux_send_window(mux, e->id);
    FLOW_RC(0, tl_mux_write(mux, e->id, TL_STREAM_MAIN, chunk, len, &written));
    FLOW_CHECK(written == (len < window ? len : window), "wrote %zu of %zu, window %zu", written,
               len, window);
    e->sent += written;
    if (written < len)
        e->blocked = 1;
    if (e->sent == e->total) {
        FLOW_RC(0, tl_mux_eof(mux, e->id));
        e->eof_sent = 1;
    }
}

static void flow_consume(struct flow *f, struct flow_end *e)
{
    if (!e->has_id || e->held == 0 || flow_step < e->stalled_until)
        return;
    size_t n = rnd(2) ? e->held : 1 + rnd((uint32_t)e->held);
    e->held -= n;
    FLOW_RC(0, tl_mux_consumed(f->side[e->side].mux, e->id, n));
}

static void flow_maybe_finish(struct flow *f, struct flow_end *e)
{
    if (e->has_id && e->pending) {
        e->pending = 0;
        e->can_send = 1;
        FLOW_RC(0, tl_mux_confirm(f->side[e->side].mux, e->id));
        return;
    }
    if (!e->has_id || e->close_sent)
        return;
    int abort = e->link->abort_side == e->side && (e->can_send || e->link->opener == e->side);
    if (abort ? rnd(e->link->abort_odds) != 0 : !e->eof_sent || !e->eof_received || e->held > 0)
        return;
    struct tl_msg_channel_close status = {.flags = TL_CLOSE_HAS_EXIT_STATUS,
                                          .exit_status = e->link->index,
                                          .exit_signal = TL_STR("")};
    FLOW_RC(0, tl_mux_close(f->side[e->side].mux, e->id, &status));
    e->close_sent = 1;
    e->close_deferred = !e->can_send;
}

static void run_flow(uint64_t seed)
{
    const char *override = getenv("TL_MUX_SEED");
    flow_seed = override != NULL ? strtoull(override, NULL, 0) : seed;
    flow_step = 0;
    rng_state = flow_seed;
    struct flow *f = calloc(1, sizeof *f);
    assert_non_null(f);
    for (int side = 0; side < 2; side++) {
        f->cfg[side].max_channels = 64;
        f->cfg[side].window = 512 + rnd(16384);
        f->cfg[side].max_packet = 64 + rnd(4096);
        side_init(&f->side[side], &f->cfg[side], &flow_callbacks);
        f->side[side].user = f;
        f->side[side].observe = flow_observe;
    }
    f->side[0].peer = &f->side[1];
    f->side[1].peer = &f->side[0];

    for (int l = 0; l < FLOW_LINKS; l++) {
        struct flow_link *link = &f->links[l];
        link->index = l;
        link->opener = l < FLOW_LINKS_PER_SIDE ? 0 : 1;
        link->abort_side = l % 5 == 4 ? (int)rnd(2) : -1;
        link->abort_odds = 20;
        if (l % 10 == 9) {
            /* The opener gives up at once, often before the confirm arrives. */
            link->abort_side = link->opener;
            link->abort_odds = 1;
        }
        for (int side = 0; side < 2; side++) {
            struct flow_end *e = &link->end[side];
            e->link = link;
            e->side = side;
            e->key = splitmix64(&rng_state);
            /* Some streams are empty, some span many windows. */
            e->total = rnd(8) == 0 ? 0 : rnd(150000);
        }
        struct flow_end *e = &link->end[link->opener];
        json_t *params = json_pack("{s:i}", "link", l);
        FLOW_RC(0, tl_mux_open(f->side[link->opener].mux, "stream", params, &e->id));
        json_decref(params);
        e->has_id = 1;
        tl_mux_set_data(f->side[link->opener].mux, e->id, e);
    }

    int all_ends = 2 * FLOW_LINKS;
    for (flow_step = 0; flow_step < FLOW_MAX_STEPS && f->closed_ends < all_ends; flow_step++) {
        struct flow_link *link = &f->links[rnd(FLOW_LINKS)];
        struct flow_end *e = &link->end[rnd(2)];
        switch (rnd(8)) {
        case 0:
        case 1:
            flow_write(f, e);
            break;
        case 2:
        case 3:
            flow_consume(f, e);
            break;
        case 4:
        case 5:
            FLOW_RC(0, deliver(&f->side[rnd(2)], 1 + rnd(20)));
            break;
        case 6:
            flow_maybe_finish(f, e);
            break;
        case 7:
            /* A reader stops for a long stretch, but only in the first part of the run. */
            if (rnd(64) == 0 && flow_step < FLOW_STALL_STEPS)
                e->stalled_until = flow_step + 1000 + rnd(30000);
            break;
        }
        flow_check_invariants(f);
    }

    FLOW_CHECK(f->closed_ends == all_ends, "%d of %d channel ends closed", f->closed_ends,
               all_ends);
    for (int l = 0; l < FLOW_LINKS; l++)
        for (int side = 0; side < 2; side++) {
            struct flow_end *e = &f->links[l].end[side];
            if (f->links[l].abort_side >= 0) {
                /* Cut short: what arrived was checked byte by byte on arrival. */
                FLOW_CHECK(e->received <= flow_peer_end(e)->total && e->sent <= e->total,
                           "link %d side %d overran", l, side);
                continue;
            }
            FLOW_CHECK(e->received == flow_peer_end(e)->total, "link %d side %d got %zu of %zu", l,
                       side, e->received, flow_peer_end(e)->total);
            FLOW_CHECK(e->sent == e->total, "link %d side %d sent %zu of %zu", l, side, e->sent,
                       e->total);
        }
    for (int side = 0; side < 2; side++) {
        FLOW_CHECK(tl_mux_channel_count(f->side[side].mux) == 0, "channels left");
        FLOW_CHECK(tl_buf_len(f->side[side].out) == 0, "frames left in a pipe");
        side_free(&f->side[side]);
    }
    free(f);
}

static void test_random_flow_seed_1(void **state)
{
    (void)state;
    run_flow(1);
}

static void test_random_flow_seed_2(void **state)
{
    (void)state;
    run_flow(0x5eed0002);
}

static void test_random_flow_seed_3(void **state)
{
    (void)state;
    run_flow(20261123);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_round_trip_open_data_eof_close),
    cmocka_unit_test(test_refuse_delivers_reason_and_message_and_frees_id),
    cmocka_unit_test(test_channel_id_reused_only_after_both_closes),
    cmocka_unit_test(test_close_before_confirm_waits_for_confirm),
    cmocka_unit_test(test_write_larger_than_window_takes_exactly_the_window),
    cmocka_unit_test(test_write_from_on_writable_moves_everything),
    cmocka_unit_test(test_stalled_channel_does_not_block_another),
    cmocka_unit_test(test_input_unknown_channel),
    cmocka_unit_test(test_input_data_past_window),
    cmocka_unit_test(test_input_data_over_max_packet),
    cmocka_unit_test(test_input_window_adjust_overflow),
    cmocka_unit_test(test_input_data_after_eof),
    cmocka_unit_test(test_input_confirm_for_channel_not_opening),
    cmocka_unit_test(test_input_bad_open_parameters),
    cmocka_unit_test(test_input_channel_limit_refuses_the_peer),
    cmocka_unit_test(test_input_not_a_channel_message),
    cmocka_unit_test(test_open_naming_a_live_id_is_refused_and_the_live_channel_stays),
    cmocka_unit_test(test_open_naming_an_unanswered_id_is_refused_too),
    cmocka_unit_test(test_confirm_giving_a_live_id_to_a_second_channel_is_an_error),
    cmocka_unit_test(test_input_ack_needs_the_feature_on_both_sides),
    cmocka_unit_test(test_input_ack_reports_hidden_and_visible_main_stream_bytes),
    cmocka_unit_test(test_data_after_our_close_is_dropped_but_counted),
    cmocka_unit_test(test_write_refused_after_eof_or_close),
    cmocka_unit_test(test_send_failure_reaches_the_caller),
    cmocka_unit_test(test_close_from_on_data),
    cmocka_unit_test(test_open_from_on_close_and_on_refuse),
    cmocka_unit_test(test_data_frame_matches_the_encoder),
    cmocka_unit_test(test_idle_mux_holds_little_memory),
    cmocka_unit_test(test_bad_config_is_rejected),
    cmocka_unit_test(test_random_flow_seed_1),
    cmocka_unit_test(test_random_flow_seed_2),
    cmocka_unit_test(test_random_flow_seed_3),
};

TL_TEST_MAIN(tests)
