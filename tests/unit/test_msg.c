/* Messages: every type round-trips; every malformed payload gets its error. */
#include "tl_test.h"

#include "proto/msg.h"

#include <stdlib.h>

/* Encodes msg, checks the frame header, decodes it again into *out. */
static void round_trip(const tl_msg_t *msg, tl_buf_t *buf, tl_msg_t *out)
{
    tl_buf_reset(buf);
    TL_ASSERT_OK(tl_msg_encode(buf, msg));
    const uint8_t *bytes = tl_buf_data(buf);
    assert_true(tl_buf_len(buf) >= TL_FRAME_HEADER_LEN);
    assert_int_equal(tl_load_u32(bytes), tl_buf_len(buf) - 4);
    assert_int_equal(bytes[4], TL_FRAME_VERSION);
    assert_int_equal(bytes[5], msg->type);
    tl_frame_t frame = {bytes[4], bytes[5], bytes + TL_FRAME_HEADER_LEN,
                        tl_buf_len(buf) - TL_FRAME_HEADER_LEN};
    TL_ASSERT_OK(tl_msg_decode(&frame, out));
    assert_int_equal(out->type, msg->type);
}

static void assert_str(tl_str_t view, const char *expected)
{
    if (!tl_str_eq(view, expected))
        fail_msg("expected \"%s\", got \"%.*s\"", expected, (int)view.len, (const char *)view.ptr);
}

static int decode_raw(uint8_t type, const void *payload, size_t len)
{
    tl_frame_t frame = {TL_FRAME_VERSION, type, payload, len};
    tl_msg_t msg;
    int rc = tl_msg_decode(&frame, &msg);
    tl_msg_clear(&msg);
    return rc;
}

static void test_connection_messages_round_trip(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD + TL_FRAME_HEADER_LEN);
    tl_msg_t in = {.type = TL_MSG_HELLO}, out;
    in.u.hello = (struct tl_msg_hello){1, 3, 0x5, TL_STR("tierline-agent/0.1.0")};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.hello.min_version, 1);
    assert_int_equal(out.u.hello.max_version, 3);
    assert_int_equal(out.u.hello.features, 5);
    assert_str(out.u.hello.software, "tierline-agent/0.1.0");

    in = (tl_msg_t){.type = TL_MSG_PING, .u.ping.nonce = 0x1122334455667788ull};
    round_trip(&in, buf, &out);
    assert_true(out.u.ping.nonce == 0x1122334455667788ull);
    in.type = TL_MSG_PONG;
    round_trip(&in, buf, &out);
    assert_true(out.u.ping.nonce == 0x1122334455667788ull);

    in = (tl_msg_t){.type = TL_MSG_GOODBYE};
    in.u.goodbye = (struct tl_msg_goodbye){(uint32_t)-TL_EFRAME_SIZE, TL_STR("too big")};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.goodbye.code, 30005);
    assert_str(out.u.goodbye.reason, "too big");
    tl_buf_free(buf);
}

static void test_enrollment_messages_round_trip(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(4096);
    tl_msg_t in = {.type = TL_MSG_ENROLL}, out;
    in.u.enroll =
        (struct tl_msg_enroll){TL_STR("K7QX-2M9P"), TL_STR("laptop"), TL_STR("Debian 12")};
    round_trip(&in, buf, &out);
    assert_str(out.u.enroll.code, "K7QX-2M9P");
    assert_str(out.u.enroll.hostname, "laptop");
    assert_str(out.u.enroll.os, "Debian 12");

    in = (tl_msg_t){.type = TL_MSG_ENROLL_RESULT};
    in.u.enroll_result = (struct tl_msg_enroll_result){0, TL_STR("D-12"), TL_STR("")};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.enroll_result.status, 0);
    assert_str(out.u.enroll_result.device_id, "D-12");
    assert_int_equal(out.u.enroll_result.message.len, 0);
    tl_buf_free(buf);
}

static void test_channel_messages_round_trip(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD + TL_FRAME_HEADER_LEN);
    tl_msg_t in = {.type = TL_MSG_CHANNEL_OPEN}, out;
    json_t *params = json_pack("{s:[s,s], s:b}", "argv", "uname", "-a", "pty", 0);
    in.u.open = (struct tl_msg_channel_open){7, 1 << 20, 32768, TL_STR("exec"), params};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.open.sender_channel, 7);
    assert_int_equal(out.u.open.initial_window, 1 << 20);
    assert_int_equal(out.u.open.max_packet, 32768);
    assert_str(out.u.open.channel_type, "exec");
    assert_true(json_equal(out.u.open.params, params));
    tl_msg_clear(&out);
    assert_null(out.u.open.params);
    json_decref(params);

    in = (tl_msg_t){.type = TL_MSG_CHANNEL_CONFIRM};
    in.u.confirm = (struct tl_msg_channel_confirm){7, 9, 4096, 1024};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.confirm.recipient_channel, 7);
    assert_int_equal(out.u.confirm.sender_channel, 9);
    assert_int_equal(out.u.confirm.initial_window, 4096);
    assert_int_equal(out.u.confirm.max_packet, 1024);

    in = (tl_msg_t){.type = TL_MSG_CHANNEL_REFUSE};
    in.u.refuse = (struct tl_msg_channel_refuse){7, 30013, TL_STR("too many channels")};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.refuse.reason, 30013);
    assert_str(out.u.refuse.message, "too many channels");

    /* Data: both the generic encoder and the fast path give the same bytes. */
    in = (tl_msg_t){.type = TL_MSG_CHANNEL_DATA};
    in.u.data = (struct tl_msg_channel_data){9, TL_STREAM_STDERR, TL_STR("oops\n")};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.data.recipient_channel, 9);
    assert_int_equal(out.u.data.stream, TL_STREAM_STDERR);
    assert_str(out.u.data.data, "oops\n");
    tl_buf_t *fast = tl_buf_new(64);
    TL_ASSERT_OK(tl_msg_encode_data(fast, 9, TL_STREAM_STDERR, "oops\n", 5));
    assert_int_equal(tl_buf_len(fast), tl_buf_len(buf));
    assert_memory_equal(tl_buf_data(fast), tl_buf_data(buf), tl_buf_len(buf));
    tl_buf_free(fast);

    in = (tl_msg_t){.type = TL_MSG_CHANNEL_WINDOW_ADJUST};
    in.u.window_adjust = (struct tl_msg_window_adjust){9, 65536};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.window_adjust.bytes, 65536);

    in = (tl_msg_t){.type = TL_MSG_CHANNEL_EOF, .u.eof.recipient_channel = 9};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.eof.recipient_channel, 9);

    in = (tl_msg_t){.type = TL_MSG_CHANNEL_CLOSE};
    in.u.close = (struct tl_msg_channel_close){9, TL_CLOSE_HAS_EXIT_STATUS, -2, TL_STR("")};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.close.flags, TL_CLOSE_HAS_EXIT_STATUS);
    assert_int_equal(out.u.close.exit_status, -2);
    in.u.close = (struct tl_msg_channel_close){9, TL_CLOSE_HAS_EXIT_SIGNAL, 0, TL_STR("TERM")};
    round_trip(&in, buf, &out);
    assert_str(out.u.close.exit_signal, "TERM");
    tl_buf_free(buf);
}

static void test_control_message_round_trip(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD + TL_FRAME_HEADER_LEN);
    json_t *body = json_pack("{s:s, s:i, s:{s:s}}", "type", "ticket.create", "tier", 1, "device",
                             "name", "caf\xc3\xa9");
    tl_msg_t in = {.type = TL_MSG_CONTROL}, out;
    in.u.control = (struct tl_msg_control){42, body};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.control.request_id, 42);
    assert_true(json_equal(out.u.control.body, body));
    tl_msg_clear(&out);
    /* A missing body encodes as the empty object. */
    in.u.control.body = NULL;
    round_trip(&in, buf, &out);
    assert_int_equal(json_object_size(out.u.control.body), 0);
    tl_msg_clear(&out);
    json_decref(body);
    tl_buf_free(buf);
}

static void test_unknown_type_rejected(void **state)
{
    (void)state;
    TL_ASSERT_RC(TL_EMSG_TYPE, decode_raw(0, NULL, 0));
    TL_ASSERT_RC(TL_EMSG_TYPE, decode_raw(5, "abc", 3));
    TL_ASSERT_RC(TL_EMSG_TYPE, decode_raw(255, NULL, 0));
    tl_buf_t *buf = tl_buf_new(64);
    tl_msg_t msg = {.type = 99};
    TL_ASSERT_RC(TL_EMSG_TYPE, tl_msg_encode(buf, &msg));
    assert_int_equal(tl_buf_len(buf), 0);
    assert_string_equal(tl_msg_type_name(99), "UNKNOWN");
    assert_string_equal(tl_msg_type_name(TL_MSG_CHANNEL_DATA), "CHANNEL_DATA");
    tl_buf_free(buf);
}

static void test_bad_json_in_control_rejected(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"type\":",          /* truncated */
        "[1,2,3]",             /* not an object */
        "\"text\"",            /* not an object */
        "{\"a\":1,\"a\":2}",   /* duplicate key */
        "{\"a\":1} trailing",  /* garbage after the value */
        "{\"a\":\"\\u0000\"}", /* NUL inside a string */
        "",                    /* empty */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t payload[128];
        size_t len = strlen(bad[i]);
        tl_store_u32(payload, 1);
        tl_store_u32(payload + 4, (uint32_t)len);
        memcpy(payload + 8, bad[i], len);
        int rc = decode_raw(TL_MSG_CONTROL, payload, 8 + len);
        if (rc != TL_EMSG_JSON)
            fail_msg("JSON %s: expected EMSG_JSON, got %s", bad[i], tl_err_name(rc));
        /* The same text as channel-open parameters is refused too. */
        uint8_t open[160];
        tl_store_u32(open, 1);
        tl_store_u32(open + 4, 1024);
        tl_store_u32(open + 8, 1024);
        tl_store_u32(open + 12, 4);
        memcpy(open + 16, "exec", 4);
        tl_store_u32(open + 20, (uint32_t)len);
        memcpy(open + 24, bad[i], len);
        TL_ASSERT_RC(TL_EMSG_JSON, decode_raw(TL_MSG_CHANNEL_OPEN, open, 24 + len));
    }
}

static void test_truncated_payloads_rejected(void **state)
{
    (void)state;
    /* Every proper prefix of a valid payload is malformed. */
    tl_buf_t *buf = tl_buf_new(4096);
    tl_msg_t in = {.type = TL_MSG_CHANNEL_CLOSE};
    in.u.close = (struct tl_msg_channel_close){9, TL_CLOSE_HAS_EXIT_SIGNAL, 0, TL_STR("KILL")};
    TL_ASSERT_OK(tl_msg_encode(buf, &in));
    const uint8_t *payload = tl_buf_data(buf) + TL_FRAME_HEADER_LEN;
    size_t len = tl_buf_len(buf) - TL_FRAME_HEADER_LEN;
    for (size_t cut = 0; cut < len; cut++)
        TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_CLOSE, payload, cut));
    TL_ASSERT_OK(decode_raw(TL_MSG_CHANNEL_CLOSE, payload, len));
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_PING, "1234567", 7));
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_EOF, NULL, 0));
    tl_buf_free(buf);
}

static void test_trailing_bytes_rejected(void **state)
{
    (void)state;
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_PING, "123456789", 9));
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_EOF, "\0\0\0\1\0", 5));
}

static void test_field_limits_enforced(void **state)
{
    (void)state;
    /* A software name one byte over its limit. */
    uint8_t payload[256] = {0, 1, 0, 1, 0, 0, 0, 0};
    tl_store_u32(payload + 8, TL_MSG_MAX_NAME + 1);
    memset(payload + 12, 'a', TL_MSG_MAX_NAME + 1);
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_HELLO, payload, 12 + TL_MSG_MAX_NAME + 1));
    tl_store_u32(payload + 8, TL_MSG_MAX_NAME);
    TL_ASSERT_OK(decode_raw(TL_MSG_HELLO, payload, 12 + TL_MSG_MAX_NAME));
    /* min_version above max_version, and version 0, are malformed. */
    payload[1] = 2;
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_HELLO, payload, 12 + TL_MSG_MAX_NAME));
    payload[1] = 0;
    payload[3] = 0;
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_HELLO, payload, 12 + TL_MSG_MAX_NAME));

    /* A string length far past the payload. */
    uint8_t goodbye[] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_GOODBYE, goodbye, sizeof goodbye));
    /* NUL inside a text field. */
    uint8_t nul[] = {0, 0, 0, 0, 0, 0, 0, 3, 'a', 0, 'b'};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_GOODBYE, nul, sizeof nul));
    /* Unknown data stream. */
    uint8_t data[] = {0, 0, 0, 1, 2, 'x'};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_DATA, data, sizeof data));
    /* Close: unknown flag bits, or a signal name without its flag. */
    uint8_t close_bad_flags[] = {0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0, 0};
    TL_ASSERT_RC(TL_EMSG_MALFORMED,
                 decode_raw(TL_MSG_CHANNEL_CLOSE, close_bad_flags, sizeof close_bad_flags));
    uint8_t close_signal[] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'K'};
    TL_ASSERT_RC(TL_EMSG_MALFORMED,
                 decode_raw(TL_MSG_CHANNEL_CLOSE, close_signal, sizeof close_signal));
    /* An empty channel type. */
    uint8_t open[] = {0, 0, 0, 1, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2, '{', '}'};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_OPEN, open, sizeof open));
}

static void test_encoder_refuses_what_decoder_would(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD * 2);
    char long_name[TL_MSG_MAX_NAME + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    tl_msg_t msg = {.type = TL_MSG_HELLO};
    msg.u.hello = (struct tl_msg_hello){1, 1, 0, tl_str_from(long_name)};
    TL_ASSERT_RC(TL_EINVAL, tl_msg_encode(buf, &msg));
    msg.u.hello = (struct tl_msg_hello){2, 1, 0, TL_STR("x")};
    TL_ASSERT_RC(TL_EINVAL, tl_msg_encode(buf, &msg));
    json_t *array = json_array();
    msg = (tl_msg_t){.type = TL_MSG_CONTROL};
    msg.u.control.body = array;
    TL_ASSERT_RC(TL_EINVAL, tl_msg_encode(buf, &msg));
    json_decref(array);
    static uint8_t big[TL_MSG_MAX_DATA + 1];
    TL_ASSERT_RC(TL_EINVAL, tl_msg_encode_data(buf, 1, 0, big, sizeof big));
    TL_ASSERT_OK(tl_msg_encode_data(buf, 1, 0, big, TL_MSG_MAX_DATA));
    assert_int_equal(tl_buf_len(buf), TL_FRAME_HEADER_LEN + TL_FRAME_MAX_PAYLOAD);
    tl_buf_free(buf);
}

static void test_input_ack_round_trips_and_rejects_bad_fields(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(4096);
    tl_msg_t in = {.type = TL_MSG_CHANNEL_INPUT_ACK}, out;
    in.u.input_ack = (struct tl_msg_input_ack){5, 17, TL_INPUT_ACK_HIDDEN};
    round_trip(&in, buf, &out);
    assert_int_equal(out.u.input_ack.recipient_channel, 5);
    assert_int_equal(out.u.input_ack.bytes, 17);
    assert_int_equal(out.u.input_ack.flags, TL_INPUT_ACK_HIDDEN);
    assert_string_equal(tl_msg_type_name(TL_MSG_CHANNEL_INPUT_ACK), "CHANNEL_INPUT_ACK");
    /* Layout: u32 recipient_channel, u32 bytes, u8 flags. */
    uint8_t ok[] = {0, 0, 0, 5, 0, 0, 0, 1, 0};
    TL_ASSERT_OK(decode_raw(TL_MSG_CHANNEL_INPUT_ACK, ok, sizeof ok));
    /* No bytes acknowledged, an unknown flag, a short or a long payload. */
    uint8_t zero[] = {0, 0, 0, 5, 0, 0, 0, 0, 1};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_INPUT_ACK, zero, sizeof zero));
    uint8_t flags[] = {0, 0, 0, 5, 0, 0, 0, 1, 2};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_INPUT_ACK, flags, sizeof flags));
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_INPUT_ACK, ok, sizeof ok - 1));
    uint8_t longer[] = {0, 0, 0, 5, 0, 0, 0, 1, 0, 0};
    TL_ASSERT_RC(TL_EMSG_MALFORMED, decode_raw(TL_MSG_CHANNEL_INPUT_ACK, longer, sizeof longer));
    /* The encoder refuses the same. */
    in.u.input_ack = (struct tl_msg_input_ack){5, 0, 0};
    TL_ASSERT_RC(TL_EINVAL, tl_msg_encode(buf, &in));
    in.u.input_ack = (struct tl_msg_input_ack){5, 1, 0x80};
    TL_ASSERT_RC(TL_EINVAL, tl_msg_encode(buf, &in));
    tl_buf_free(buf);
}

static void test_version_negotiation(void **state)
{
    (void)state;
    struct tl_msg_hello relay = {1, 3, 0, TL_STR("relay")};
    struct tl_msg_hello old_agent = {1, 1, 0, TL_STR("agent")};
    struct tl_msg_hello new_agent = {2, 5, 0, TL_STR("agent")};
    struct tl_msg_hello future = {4, 6, 0, TL_STR("agent")};
    uint16_t chosen = 0;
    TL_ASSERT_OK(tl_msg_negotiate(&relay, &old_agent, &chosen));
    assert_int_equal(chosen, 1);
    TL_ASSERT_OK(tl_msg_negotiate(&relay, &new_agent, &chosen));
    assert_int_equal(chosen, 3);
    TL_ASSERT_OK(tl_msg_negotiate(&new_agent, &relay, &chosen));
    assert_int_equal(chosen, 3);
    TL_ASSERT_RC(TL_EVERSION, tl_msg_negotiate(&relay, &future, &chosen));
    TL_ASSERT_RC(TL_EVERSION, tl_msg_negotiate(&future, &old_agent, &chosen));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_connection_messages_round_trip),
    cmocka_unit_test(test_enrollment_messages_round_trip),
    cmocka_unit_test(test_channel_messages_round_trip),
    cmocka_unit_test(test_control_message_round_trip),
    cmocka_unit_test(test_unknown_type_rejected),
    cmocka_unit_test(test_bad_json_in_control_rejected),
    cmocka_unit_test(test_truncated_payloads_rejected),
    cmocka_unit_test(test_trailing_bytes_rejected),
    cmocka_unit_test(test_field_limits_enforced),
    cmocka_unit_test(test_encoder_refuses_what_decoder_would),
    cmocka_unit_test(test_input_ack_round_trips_and_rejects_bad_fields),
    cmocka_unit_test(test_version_negotiation),
};

TL_TEST_MAIN(tests)
