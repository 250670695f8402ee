/* The agent's reconnect schedule: exponential, capped, jittered, never zero. */
#include "tl_test.h"

#include "agent/tunnel.h"

static void test_backoff_grows_exponentially_until_the_cap(void **state)
{
    (void)state;
    /* With the largest random value the delay is the full step. */
    uint64_t expected[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (unsigned attempt = 0; attempt < 9; attempt++) {
        uint64_t top = tl_tunnel_backoff_ms(500, 30000, attempt, UINT32_MAX);
        uint64_t low = tl_tunnel_backoff_ms(500, 30000, attempt, 0);
        if (low != expected[attempt] / 2)
            fail_msg("attempt %u: lowest delay %llu, expected %llu", attempt,
                     (unsigned long long)low, (unsigned long long)expected[attempt] / 2);
        assert_true(top >= low && top <= expected[attempt]);
    }
}

static void test_backoff_jitter_spreads_over_the_upper_half(void **state)
{
    (void)state;
    /* Every delay lies in [step/2, step], and different random values spread out. */
    uint64_t seen_min = UINT64_MAX, seen_max = 0;
    for (uint32_t r = 0; r < 20000; r += 7) {
        uint64_t d = tl_tunnel_backoff_ms(500, 60000, 4, r);
        assert_true(d >= 4000 && d <= 8000);
        seen_min = d < seen_min ? d : seen_min;
        seen_max = d > seen_max ? d : seen_max;
    }
    assert_true(seen_max - seen_min > 3000);
}

static void test_backoff_survives_huge_attempt_counts(void **state)
{
    (void)state;
    uint64_t d = tl_tunnel_backoff_ms(500, 60000, 1000000, 12345);
    assert_true(d >= 30000 && d <= 60000);
    assert_int_equal(tl_tunnel_backoff_ms(1, 1, 0, 0), 1);
    assert_int_equal(tl_tunnel_backoff_ms(0, 0, 3, 99), 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_backoff_grows_exponentially_until_the_cap),
    cmocka_unit_test(test_backoff_jitter_spreads_over_the_upper_half),
    cmocka_unit_test(test_backoff_survives_huge_attempt_counts),
};

TL_TEST_MAIN(tests)
