/* Frames: round trips, incremental decoding at every split point, and bad input. */
#include "tl_test.h"

#include "proto/frame.h"

#include <stdlib.h>

struct collected {
    size_t count;
    uint8_t types[64];
    size_t lens[64];
    uint8_t payload[8192];
    size_t payload_used;
};

/* Feeds bytes in pieces of the given sizes and collects every frame. */
static int feed(tl_frame_decoder_t *dec, const uint8_t *bytes, size_t len, size_t split,
                struct collected *out)
{
    size_t offsets[2] = {split, len - split};
    const uint8_t *p = bytes;
    for (int part = 0; part < 2; part++) {
        size_t left = offsets[part];
        tl_frame_t frame;
        int rc;
        while ((rc = tl_frame_decoder_next(dec, &p, &left, &frame)) == 1) {
            assert_true(out->count < 64);
            out->types[out->count] = frame.type;
            out->lens[out->count] = frame.payload_len;
            memcpy(out->payload + out->payload_used, frame.payload, frame.payload_len);
            out->payload_used += frame.payload_len;
            out->count++;
        }
        if (rc < 0)
            return rc;
        assert_int_equal(left, 0);
    }
    return tl_frame_decoder_finish(dec);
}

static tl_buf_t *sample_stream(void)
{
    tl_buf_t *buf = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_frame_encode(buf, 2, "\0\0\0\0\0\0\0\1", 8));
    TL_ASSERT_OK(tl_frame_encode(buf, 37, NULL, 0));
    TL_ASSERT_OK(tl_frame_encode(buf, 35, "0123456789abcdefghij", 20));
    TL_ASSERT_OK(tl_frame_encode(buf, 64, "x", 1));
    return buf;
}

static void test_encode_layout(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(64);
    TL_ASSERT_OK(tl_frame_encode(buf, 35, "abc", 3));
    const uint8_t expected[] = {0, 0, 0, 5, TL_FRAME_VERSION, 35, 'a', 'b', 'c'};
    assert_int_equal(tl_buf_len(buf), sizeof expected);
    assert_memory_equal(tl_buf_data(buf), expected, sizeof expected);
    tl_buf_free(buf);
}

static void test_begin_end_patches_length(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(64);
    size_t mark;
    TL_ASSERT_OK(tl_buf_put(buf, "zz", 2));
    TL_ASSERT_OK(tl_frame_begin(buf, 4, &mark));
    assert_int_equal(mark, 2);
    TL_ASSERT_OK(tl_buf_put(buf, "hello", 5));
    TL_ASSERT_OK(tl_frame_end(buf, mark));
    const uint8_t expected[] = {'z', 'z', 0, 0, 0, 7, 1, 4, 'h', 'e', 'l', 'l', 'o'};
    assert_memory_equal(tl_buf_data(buf), expected, sizeof expected);
    TL_ASSERT_OK(tl_frame_begin(buf, 5, &mark));
    tl_frame_abort(buf, mark);
    assert_int_equal(tl_buf_len(buf), sizeof expected);
    tl_buf_free(buf);
}

static void test_round_trip_whole_stream(void **state)
{
    (void)state;
    tl_buf_t *buf = sample_stream();
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    struct collected got = {0};
    TL_ASSERT_OK(feed(dec, tl_buf_data(buf), tl_buf_len(buf), tl_buf_len(buf), &got));
    assert_int_equal(got.count, 4);
    assert_int_equal(got.types[0], 2);
    assert_int_equal(got.types[1], 37);
    assert_int_equal(got.lens[1], 0);
    assert_int_equal(got.types[2], 35);
    assert_int_equal(got.lens[2], 20);
    assert_memory_equal(got.payload + 8, "0123456789abcdefghij", 20);
    assert_int_equal(got.types[3], 64);
    tl_frame_decoder_free(dec);
    tl_buf_free(buf);
}

static void test_every_split_point_gives_same_frames(void **state)
{
    (void)state;
    tl_buf_t *buf = sample_stream();
    size_t len = tl_buf_len(buf);
    struct collected reference = {0};
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    TL_ASSERT_OK(feed(dec, tl_buf_data(buf), len, len, &reference));
    tl_frame_decoder_free(dec);

    for (size_t split = 0; split <= len; split++) {
        struct collected got = {0};
        dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
        TL_ASSERT_OK(feed(dec, tl_buf_data(buf), len, split, &got));
        assert_int_equal(got.count, reference.count);
        assert_memory_equal(got.types, reference.types, reference.count);
        assert_memory_equal(got.lens, reference.lens, reference.count * sizeof(size_t));
        assert_int_equal(got.payload_used, reference.payload_used);
        assert_memory_equal(got.payload, reference.payload, reference.payload_used);
        tl_frame_decoder_free(dec);
    }
    tl_buf_free(buf);
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    tl_buf_t *buf = sample_stream();
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    const uint8_t *bytes = tl_buf_data(buf);
    size_t frames = 0;
    for (size_t i = 0; i < tl_buf_len(buf); i++) {
        const uint8_t *p = bytes + i;
        size_t left = 1;
        tl_frame_t frame;
        int rc;
        while ((rc = tl_frame_decoder_next(dec, &p, &left, &frame)) == 1)
            frames++;
        TL_ASSERT_OK(rc);
    }
    assert_int_equal(frames, 4);
    TL_ASSERT_OK(tl_frame_decoder_finish(dec));
    tl_frame_decoder_free(dec);
    tl_buf_free(buf);
}

static void test_truncated_frame_reported_at_end(void **state)
{
    (void)state;
    tl_buf_t *buf = sample_stream();
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    struct collected got = {0};
    /* Drop the last 1 byte: the final frame is incomplete. */
    size_t len = tl_buf_len(buf) - 1;
    TL_ASSERT_RC(TL_ETRUNCATED, feed(dec, tl_buf_data(buf), len, len / 2, &got));
    assert_int_equal(got.count, 3);
    assert_int_equal(tl_frame_decoder_buffered(dec), 6);
    tl_frame_decoder_free(dec);

    /* A header cut short is truncated too. */
    dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    memset(&got, 0, sizeof got);
    TL_ASSERT_RC(TL_ETRUNCATED, feed(dec, tl_buf_data(buf), 3, 1, &got));
    assert_int_equal(got.count, 0);
    tl_frame_decoder_free(dec);
    tl_buf_free(buf);
}

static void test_length_over_maximum_rejected_before_buffering(void **state)
{
    (void)state;
    tl_frame_decoder_t *dec = tl_frame_decoder_new(1024);
    uint8_t header[TL_FRAME_HEADER_LEN] = {0, 0, 4, 3, TL_FRAME_VERSION, 35}; /* 1025 + 2 */
    const uint8_t *p = header;
    size_t left = sizeof header;
    tl_frame_t frame;
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_frame_decoder_next(dec, &p, &left, &frame));
    /* Nothing was kept for the oversized frame, and the error is sticky. */
    assert_true(tl_frame_decoder_memory(dec) < 512);
    p = header;
    left = sizeof header;
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_frame_decoder_next(dec, &p, &left, &frame));
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_frame_decoder_finish(dec));
    tl_frame_decoder_free(dec);

    /* The protocol maximum itself: 4 GiB - 1 in the length field. */
    dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    uint8_t huge[TL_FRAME_HEADER_LEN] = {0xff, 0xff, 0xff, 0xff, TL_FRAME_VERSION, 35};
    p = huge;
    left = 2; /* split inside the header */
    TL_ASSERT_OK(tl_frame_decoder_next(dec, &p, &left, &frame));
    left = 4;
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_frame_decoder_next(dec, &p, &left, &frame));
    tl_frame_decoder_free(dec);

    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD * 2);
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_frame_encode(buf, 35, "", TL_FRAME_MAX_PAYLOAD + 1));
    assert_int_equal(tl_buf_len(buf), 0);
    tl_buf_free(buf);
}

static void test_length_under_minimum_rejected(void **state)
{
    (void)state;
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    uint8_t header[TL_FRAME_HEADER_LEN] = {0, 0, 0, 1, TL_FRAME_VERSION, 35};
    const uint8_t *p = header;
    size_t left = sizeof header;
    tl_frame_t frame;
    TL_ASSERT_RC(TL_EFRAME_SIZE, tl_frame_decoder_next(dec, &p, &left, &frame));
    tl_frame_decoder_free(dec);
}

static void test_unsupported_version_rejected(void **state)
{
    (void)state;
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    uint8_t bytes[] = {0, 0, 0, 3, 2, 35, 'x'};
    const uint8_t *p = bytes;
    size_t left = sizeof bytes;
    tl_frame_t frame;
    TL_ASSERT_RC(TL_EFRAME_VERSION, tl_frame_decoder_next(dec, &p, &left, &frame));
    tl_frame_decoder_free(dec);
}

static void test_large_partial_frame_memory_released(void **state)
{
    (void)state;
    size_t payload_len = 100000;
    tl_buf_t *buf = tl_buf_new(TL_FRAME_MAX_PAYLOAD + 16);
    uint8_t *payload = malloc(payload_len);
    for (size_t i = 0; i < payload_len; i++)
        payload[i] = (uint8_t)(i * 7);
    TL_ASSERT_OK(tl_frame_encode(buf, 35, payload, payload_len));
    tl_frame_decoder_t *dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    const uint8_t *p = tl_buf_data(buf);
    size_t left = 1000;
    tl_frame_t frame;
    TL_ASSERT_OK(tl_frame_decoder_next(dec, &p, &left, &frame));
    left = tl_buf_len(buf) - 1000;
    assert_int_equal(tl_frame_decoder_next(dec, &p, &left, &frame), 1);
    assert_int_equal(frame.payload_len, payload_len);
    assert_memory_equal(frame.payload, payload, payload_len);
    /* Asking for more after a large assembled frame gives its memory back. */
    assert_int_equal(tl_frame_decoder_next(dec, &p, &left, &frame), 0);
    assert_true(tl_frame_decoder_memory(dec) < 1024);
    free(payload);
    tl_frame_decoder_free(dec);
    tl_buf_free(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_encode_layout),
    cmocka_unit_test(test_begin_end_patches_length),
    cmocka_unit_test(test_round_trip_whole_stream),
    cmocka_unit_test(test_every_split_point_gives_same_frames),
    cmocka_unit_test(test_byte_at_a_time),
    cmocka_unit_test(test_truncated_frame_reported_at_end),
    cmocka_unit_test(test_length_over_maximum_rejected_before_buffering),
    cmocka_unit_test(test_length_under_minimum_rejected),
    cmocka_unit_test(test_unsupported_version_rejected),
    cmocka_unit_test(test_large_partial_frame_memory_released),
};

TL_TEST_MAIN(tests)
