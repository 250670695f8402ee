/* Byte buffers and readers: round trips, the hard cap, and reads past the end. */
#include "tl_test.h"

#include "proto/buf.h"

#include <stdlib.h>

static void test_put_get_round_trip(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(1024);
    TL_ASSERT_OK(tl_buf_put_u8(buf, 0xab));
    TL_ASSERT_OK(tl_buf_put_u16(buf, 0x1234));
    TL_ASSERT_OK(tl_buf_put_u32(buf, 0xdeadbeef));
    TL_ASSERT_OK(tl_buf_put_u64(buf, 0x0102030405060708ull));
    TL_ASSERT_OK(tl_buf_put_cstring(buf, "hi"));
    assert_int_equal(tl_buf_len(buf), 1 + 2 + 4 + 8 + 4 + 2);
    /* Big-endian on the wire. */
    const uint8_t *d = tl_buf_data(buf);
    assert_int_equal(d[1], 0x12);
    assert_int_equal(d[3], 0xde);

    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    TL_ASSERT_OK(tl_buf_get_u8(buf, &u8));
    TL_ASSERT_OK(tl_buf_get_u16(buf, &u16));
    TL_ASSERT_OK(tl_buf_get_u32(buf, &u32));
    TL_ASSERT_OK(tl_buf_get_u64(buf, &u64));
    assert_int_equal(u8, 0xab);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0102030405060708ull);
    TL_ASSERT_OK(tl_buf_get_u32(buf, &u32));
    assert_int_equal(u32, 2);
    char text[2];
    TL_ASSERT_OK(tl_buf_get(buf, text, 2));
    assert_memory_equal(text, "hi", 2);
    assert_int_equal(tl_buf_len(buf), 0);
    tl_buf_free(buf);
}

static void test_cap_is_hard_and_failed_put_changes_nothing(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(10);
    TL_ASSERT_OK(tl_buf_put(buf, "12345678", 8));
    TL_ASSERT_RC(TL_EFULL, tl_buf_put_u32(buf, 7));
    TL_ASSERT_RC(TL_EFULL, tl_buf_put_string(buf, "x", 1));
    assert_int_equal(tl_buf_len(buf), 8);
    assert_memory_equal(tl_buf_data(buf), "12345678", 8);
    TL_ASSERT_OK(tl_buf_put_u16(buf, 0x3939));
    assert_int_equal(tl_buf_len(buf), 10);
    TL_ASSERT_RC(TL_EFULL, tl_buf_put_u8(buf, 1));
    assert_true(tl_buf_capacity(buf) <= 10);
    /* Consuming frees room under the cap again. */
    TL_ASSERT_OK(tl_buf_consume(buf, 4));
    TL_ASSERT_OK(tl_buf_put(buf, "abcd", 4));
    assert_memory_equal(tl_buf_data(buf),
                        "5678"
                        "99"
                        "abcd",
                        10);
    tl_buf_free(buf);
}

static void test_huge_length_does_not_overflow(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(64);
    uint8_t *dst;
    TL_ASSERT_OK(tl_buf_put(buf, "ab", 2));
    TL_ASSERT_RC(TL_EFULL, tl_buf_reserve(buf, SIZE_MAX, &dst));
    TL_ASSERT_RC(TL_EFULL, tl_buf_reserve(buf, SIZE_MAX - 1, &dst));
    assert_int_equal(tl_buf_len(buf), 2);
    tl_buf_free(buf);
}

static void test_get_from_short_buffer_consumes_nothing(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(64);
    TL_ASSERT_OK(tl_buf_put(buf, "\x01\x02\x03", 3));
    uint32_t u32;
    uint64_t u64;
    TL_ASSERT_RC(TL_ETRUNCATED, tl_buf_get_u32(buf, &u32));
    TL_ASSERT_RC(TL_ETRUNCATED, tl_buf_get_u64(buf, &u64));
    TL_ASSERT_RC(TL_ETRUNCATED, tl_buf_consume(buf, 4));
    assert_int_equal(tl_buf_len(buf), 3);
    tl_buf_free(buf);
}

static void test_queue_use_reuses_memory(void **state)
{
    (void)state;
    /* Appending and consuming forever must not grow the allocation. */
    tl_buf_t *buf = tl_buf_new(4096);
    uint8_t chunk[100];
    memset(chunk, 'q', sizeof chunk);
    for (int i = 0; i < 10000; i++) {
        TL_ASSERT_OK(tl_buf_put(buf, chunk, sizeof chunk));
        TL_ASSERT_OK(tl_buf_consume(buf, i % 2 ? 150 : 50));
    }
    assert_true(tl_buf_capacity(buf) <= 512);
    tl_buf_release(buf);
    assert_int_equal(tl_buf_capacity(buf), 0);
    assert_int_equal(tl_buf_len(buf), 0);
    tl_buf_free(buf);
    tl_buf_free(NULL);
}

static void test_poke_and_unreserve_check_bounds(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(64);
    TL_ASSERT_OK(tl_buf_put(buf, "abcdef", 6));
    TL_ASSERT_OK(tl_buf_poke_u32(buf, 2, 0x41424344));
    assert_memory_equal(tl_buf_data(buf), "abABCD", 6);
    TL_ASSERT_RC(TL_EINVAL, tl_buf_poke_u32(buf, 3, 0));
    TL_ASSERT_RC(TL_EINVAL, tl_buf_poke_u32(buf, SIZE_MAX, 0));
    TL_ASSERT_RC(TL_EINVAL, tl_buf_unreserve(buf, 7));
    TL_ASSERT_OK(tl_buf_unreserve(buf, 2));
    assert_int_equal(tl_buf_len(buf), 4);
    tl_buf_free(buf);
}

static void test_allocate_takes_exactly_what_is_asked_within_the_cap(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(10000);
    TL_ASSERT_OK(tl_buf_allocate(buf, 5000));
    assert_int_equal(tl_buf_capacity(buf), 5000);
    assert_int_equal(tl_buf_len(buf), 0);
    uint8_t *dst;
    TL_ASSERT_OK(tl_buf_reserve(buf, 5000, &dst));
    assert_int_equal(tl_buf_capacity(buf), 5000);
    TL_ASSERT_RC(TL_EFULL, tl_buf_allocate(buf, 5001));
    assert_int_equal(tl_buf_len(buf), 5000);
    tl_buf_free(buf);
}

static void test_take_string_hands_over_the_unconsumed_bytes(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(8);
    TL_ASSERT_OK(tl_buf_put(buf, "xxabcdef", 8));
    TL_ASSERT_OK(tl_buf_consume(buf, 2));
    char *text = NULL;
    size_t len = 0;
    /* A full buffer still gets its terminator: it is not content. */
    TL_ASSERT_OK(tl_buf_put(buf, "gh", 2));
    TL_ASSERT_OK(tl_buf_take_string(buf, &text, &len));
    assert_string_equal(text, "abcdefgh");
    assert_int_equal(len, 8);
    free(text);
    /* Afterwards the buffer is empty and usable; an empty one gives "". */
    assert_int_equal(tl_buf_len(buf), 0);
    TL_ASSERT_OK(tl_buf_take_string(buf, &text, &len));
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
    TL_ASSERT_OK(tl_buf_put(buf, "ok", 2));
    assert_memory_equal(tl_buf_data(buf), "ok", 2);
    tl_buf_wipe(buf);
    assert_int_equal(tl_buf_capacity(buf), 0);
    tl_buf_free(buf);
}

/* True when none of the len bytes at p is the byte c (no copy of a secret is left there). */
static int none_left(const uint8_t *p, size_t len, uint8_t c)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == c)
            return 0;
    return 1;
}

static void test_a_secret_buffer_zeroes_what_it_lets_go_of(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new_secret(4096);
    uint8_t secret[200];
    memset(secret, 's', sizeof secret);
    TL_ASSERT_OK(tl_buf_put(buf, secret, sizeof secret));
    assert_int_equal(tl_buf_capacity(buf), 256);
    const uint8_t *memory = tl_buf_data(buf); /* the start of the allocation, for now */

    /* Consumed: the bytes are gone from memory, not only from the buffer. */
    uint8_t first[150];
    TL_ASSERT_OK(tl_buf_get(buf, first, sizeof first));
    assert_true(none_left(memory, 150, 's'));
    assert_memory_equal(tl_buf_data(buf), secret, 50);

    /* Room made by moving the 50 live bytes down: where they were is zeroed. */
    uint8_t more[100];
    memset(more, 'm', sizeof more);
    TL_ASSERT_OK(tl_buf_put(buf, more, sizeof more));
    assert_int_equal(tl_buf_capacity(buf), 256);
    assert_ptr_equal(tl_buf_data(buf), memory);
    assert_memory_equal(memory, secret, 50);
    assert_memory_equal(memory + 50, more, 100);
    assert_true(none_left(memory + 150, 50, 's'));

    /* Unreserved and reset: zeroed too. */
    TL_ASSERT_OK(tl_buf_unreserve(buf, 40));
    assert_true(none_left(memory + 110, 40, 'm'));
    tl_buf_reset(buf);
    assert_true(none_left(memory, 200, 's'));
    assert_true(none_left(memory, 200, 'm'));

    /* Growing, and the rest of the life of a secret buffer, work as for any other. */
    uint8_t big[1000];
    memset(big, 'b', sizeof big);
    TL_ASSERT_OK(tl_buf_put(buf, "ab", 2));
    TL_ASSERT_OK(tl_buf_put(buf, big, sizeof big));
    assert_int_equal(tl_buf_len(buf), 1002);
    assert_memory_equal(tl_buf_data(buf), "ab", 2);
    assert_memory_equal(tl_buf_data(buf) + 2, big, sizeof big);
    uint8_t *dst;
    TL_ASSERT_RC(TL_EFULL, tl_buf_reserve(buf, 4096, &dst));
    assert_int_equal(tl_buf_len(buf), 1002);
    char *text = NULL;
    size_t len = 0;
    TL_ASSERT_OK(tl_buf_consume(buf, 1000));
    TL_ASSERT_OK(tl_buf_take_string(buf, &text, &len));
    assert_string_equal(text, "bb");
    free(text);
    TL_ASSERT_OK(tl_buf_put(buf, "left", 4));
    tl_buf_release(buf);
    assert_int_equal(tl_buf_capacity(buf), 0);
    TL_ASSERT_OK(tl_buf_put(buf, "freed", 5));
    tl_buf_free(buf);
}

static void test_reader_never_reads_past_end(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0, 0, 0, 5, 'a', 'b', 'c'};
    tl_reader_t r;
    tl_reader_init(&r, bytes, sizeof bytes);
    const uint8_t *s;
    size_t len;
    /* Declared length 5 but only 3 bytes follow: refused, cursor unmoved. */
    TL_ASSERT_RC(TL_ETRUNCATED, tl_reader_string(&r, 100, &s, &len));
    assert_int_equal(tl_reader_left(&r), sizeof bytes);
    /* A length over the field's limit is malformed, even if the bytes exist. */
    TL_ASSERT_RC(TL_EMSG_MALFORMED, tl_reader_string(&r, 4, &s, &len));
    assert_int_equal(tl_reader_left(&r), sizeof bytes);

    uint32_t u32;
    uint64_t u64;
    TL_ASSERT_OK(tl_reader_u32(&r, &u32));
    assert_int_equal(u32, 5);
    TL_ASSERT_RC(TL_ETRUNCATED, tl_reader_u64(&r, &u64));
    TL_ASSERT_RC(TL_ETRUNCATED, tl_reader_u32(&r, &u32));
    TL_ASSERT_RC(TL_ETRUNCATED, tl_reader_bytes(&r, SIZE_MAX, &s));
    tl_reader_rest(&r, &s, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "abc", 3);
    uint8_t u8;
    TL_ASSERT_RC(TL_ETRUNCATED, tl_reader_u8(&r, &u8));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_put_get_round_trip),
    cmocka_unit_test(test_cap_is_hard_and_failed_put_changes_nothing),
    cmocka_unit_test(test_huge_length_does_not_overflow),
    cmocka_unit_test(test_get_from_short_buffer_consumes_nothing),
    cmocka_unit_test(test_queue_use_reuses_memory),
    cmocka_unit_test(test_poke_and_unreserve_check_bounds),
    cmocka_unit_test(test_allocate_takes_exactly_what_is_asked_within_the_cap),
    cmocka_unit_test(test_take_string_hands_over_the_unconsumed_bytes),
    cmocka_unit_test(test_a_secret_buffer_zeroes_what_it_lets_go_of),
    cmocka_unit_test(test_reader_never_reads_past_end),
};

TL_TEST_MAIN(tests)
