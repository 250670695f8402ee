/*
 * Unauthenticated peers' log lines bounded per address: which lines are
 * written, which summaries come out and when, and the bounds on memory
 * (relay/net/log_limit.h).
 */
#include "tl_test.h"

#include "relay/net/log_limit.h"

#include <stdlib.h>

#define T0 1000000ll /* any start: the counter has no clock of its own */
#define WINDOW TL_LOG_LIMIT_WINDOW_MS

struct emitted {
    char address[64];
    uint64_t suppressed;
    enum tl_log_level level;
};

struct sink {
    struct emitted items[512];
    size_t count;
};

static void collect(void *ctx, const tl_log_limit_summary_t *summary)
{
    struct sink *sink = ctx;
    assert_true(sink->count < 512);
    struct emitted *item = &sink->items[sink->count++];
    snprintf(item->address, sizeof item->address, "%s", summary->address);
    item->suppressed = summary->suppressed;
    item->level = summary->level;
}

/* Feeds count lines from address at times start, start + step, ...: how many may be written. */
static unsigned feed(tl_log_limit_t *limit, const char *address, unsigned count, int64_t start,
                     int64_t step, enum tl_log_level level)
{
    unsigned written = 0;
    for (unsigned i = 0; i < count; i++)
        written += (unsigned)tl_log_limit_admit(limit, start + (int64_t)i * step, address, level);
    return written;
}

static const struct emitted *find(const struct sink *sink, const char *address)
{
    for (size_t i = 0; i < sink->count; i++)
        if (strcmp(sink->items[i].address, address) == 0)
            return &sink->items[i];
    return NULL;
}

static void test_first_lines_of_a_minute_written_the_rest_counted(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    /* 2,000 lines in 20 s from one address: the budget is written, nothing else yet. */
    assert_int_equal(TL_LOG_LIMIT_LINES, feed(limit, "192.0.2.7", 2000, T0, 10, TL_LOG_INFO));
    assert_int_equal(0, sink.count);
    assert_int_equal(T0 + WINDOW, tl_log_limit_next_due(limit));
    /* The window is not over a millisecond before its end. */
    tl_log_limit_flush(limit, T0 + WINDOW - 1);
    assert_int_equal(0, sink.count);
    /* At its end, one summary with the count held back. */
    tl_log_limit_flush(limit, T0 + WINDOW);
    assert_int_equal(1, sink.count);
    assert_string_equal("192.0.2.7", sink.items[0].address);
    assert_int_equal(2000 - TL_LOG_LIMIT_LINES, sink.items[0].suppressed);
    assert_int_equal(TL_LOG_INFO, sink.items[0].level);
    assert_int_equal(INT64_MAX, tl_log_limit_next_due(limit));
    /* Once: flushing again says nothing. */
    tl_log_limit_flush(limit, T0 + 10 * WINDOW);
    assert_int_equal(1, sink.count);
    /* And the next minute has a fresh budget. */
    assert_int_equal(TL_LOG_LIMIT_LINES,
                     feed(limit, "192.0.2.7", 50, T0 + 2 * WINDOW, 1, TL_LOG_INFO));
    tl_log_limit_free(limit);
}

static void test_next_line_after_the_minute_brings_the_summary(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    assert_int_equal(TL_LOG_LIMIT_LINES, feed(limit, "192.0.2.7", 15, T0, 1, TL_LOG_DEBUG));
    tl_log_limit_admit(limit, T0 + 20, "192.0.2.7", TL_LOG_WARN);
    /* No flush: the address's next line, a minute later, ends its window first. */
    assert_int_equal(1, tl_log_limit_admit(limit, T0 + WINDOW + 5, "192.0.2.7", TL_LOG_INFO));
    assert_int_equal(1, sink.count);
    assert_string_equal("192.0.2.7", sink.items[0].address);
    assert_int_equal(6, sink.items[0].suppressed);
    /* Written at the highest level held back, so it shows wherever those lines would have. */
    assert_int_equal(TL_LOG_WARN, sink.items[0].level);
    tl_log_limit_free(limit);
}

static void test_a_window_that_held_nothing_back_says_nothing(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    assert_int_equal(TL_LOG_LIMIT_LINES,
                     feed(limit, "192.0.2.7", TL_LOG_LIMIT_LINES, T0, 100, TL_LOG_INFO));
    assert_int_equal(INT64_MAX, tl_log_limit_next_due(limit));
    tl_log_limit_flush(limit, INT64_MAX);
    assert_int_equal(0, sink.count);
    tl_log_limit_free(limit);
}

static void test_one_address_does_not_spend_anothers_budget(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    assert_int_equal(TL_LOG_LIMIT_LINES, feed(limit, "192.0.2.2", 5000, T0, 1, TL_LOG_WARN));
    /* A technician's address in the middle of the flood: its lines are all written. */
    assert_int_equal(3, feed(limit, "192.0.2.3", 3, T0 + 100, 1, TL_LOG_INFO));
    /* Addresses are compared whole: a longer one sharing a prefix is another. */
    assert_int_equal(TL_LOG_LIMIT_LINES,
                     feed(limit, "192.0.2.22", TL_LOG_LIMIT_LINES, T0 + 200, 1, TL_LOG_INFO));
    tl_log_limit_flush(limit, INT64_MAX);
    assert_int_equal(1, sink.count);
    assert_string_equal("192.0.2.2", sink.items[0].address);
    assert_int_equal(5000 - TL_LOG_LIMIT_LINES, sink.items[0].suppressed);
    tl_log_limit_free(limit);
}

static void test_shutdown_flush_emits_every_pending_summary(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    feed(limit, "192.0.2.1", 30, T0, 1, TL_LOG_INFO);
    feed(limit, "2001:db8::1", 12, T0 + 30000, 1, TL_LOG_DEBUG);
    /* The first window's end comes first. */
    assert_int_equal(T0 + WINDOW, tl_log_limit_next_due(limit));
    tl_log_limit_flush(limit, INT64_MAX);
    assert_int_equal(2, sink.count);
    const struct emitted *v4 = find(&sink, "192.0.2.1");
    const struct emitted *v6 = find(&sink, "2001:db8::1");
    assert_non_null(v4);
    assert_non_null(v6);
    assert_int_equal(20, v4->suppressed);
    assert_int_equal(2, v6->suppressed);
    assert_int_equal(TL_LOG_DEBUG, v6->level);
    assert_int_equal(INT64_MAX, tl_log_limit_next_due(limit));
    tl_log_limit_free(limit);
}

static void test_past_the_table_addresses_share_one_bounded_window(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    /* 1,000 addresses, 5 lines each, within one minute. */
    unsigned written = 0;
    char address[64];
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(address, sizeof address, "10.0.%u.%u", i / 256, i % 256);
        written += feed(limit, address, 5, T0 + i, 0, TL_LOG_INFO);
    }
    /* The first 256 have windows of their own (5 lines fit); the other 744 share one budget. */
    assert_int_equal(TL_LOG_LIMIT_ADDRESSES * 5 + TL_LOG_LIMIT_LINES, written);
    tl_log_limit_flush(limit, T0 + 1000 + WINDOW);
    assert_int_equal(1, sink.count);
    assert_string_equal(TL_LOG_LIMIT_OTHER, sink.items[0].address);
    assert_int_equal((1000 - TL_LOG_LIMIT_ADDRESSES) * 5 - TL_LOG_LIMIT_LINES,
                     sink.items[0].suppressed);
    /* A minute later the table is free again: a new address has a window of its own. */
    sink.count = 0;
    assert_int_equal(TL_LOG_LIMIT_LINES,
                     feed(limit, "192.0.2.9", 20, T0 + 3 * WINDOW, 1, TL_LOG_INFO));
    tl_log_limit_flush(limit, INT64_MAX);
    assert_int_equal(1, sink.count);
    assert_string_equal("192.0.2.9", sink.items[0].address);
    tl_log_limit_free(limit);
}

static void test_windows_over_make_room_without_a_flush(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    char address[64];
    /* The table filled, one address over its budget. */
    for (unsigned i = 0; i < TL_LOG_LIMIT_ADDRESSES; i++) {
        snprintf(address, sizeof address, "10.1.%u.%u", i / 256, i % 256);
        feed(limit, address, i == 0 ? 12 : 1, T0, 0, TL_LOG_INFO);
    }
    /* A minute on, a new address takes a window that is over; the summary owed comes out. */
    assert_int_equal(TL_LOG_LIMIT_LINES,
                     feed(limit, "192.0.2.50", 40, T0 + WINDOW, 1, TL_LOG_INFO));
    assert_int_equal(1, sink.count);
    assert_string_equal("10.1.0.0", sink.items[0].address);
    assert_int_equal(2, sink.items[0].suppressed);
    tl_log_limit_flush(limit, INT64_MAX);
    assert_int_equal(2, sink.count);
    assert_string_equal("192.0.2.50", sink.items[1].address);
    assert_int_equal(40 - TL_LOG_LIMIT_LINES, sink.items[1].suppressed);
    tl_log_limit_free(limit);
}

static void test_an_hour_of_flooding_stays_within_the_stated_bound(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    /* 300 addresses, each a line every 500 ms for an hour: 2.16 million lines offered. */
    uint64_t written = 0, summaries = 0, offered = 0;
    char address[64];
    for (int64_t now = T0; now < T0 + 60 * WINDOW; now += 500) {
        for (unsigned i = 0; i < 300; i++) {
            snprintf(address, sizeof address, "10.2.%u.%u", i / 256, i % 256);
            written += (uint64_t)tl_log_limit_admit(limit, now, address, TL_LOG_INFO);
            offered++;
        }
        if (now % 1000 == 0) {
            tl_log_limit_flush(limit, now);
            summaries += sink.count;
            sink.count = 0;
        }
    }
    tl_log_limit_flush(limit, INT64_MAX);
    summaries += sink.count;
    /* At most (addresses + other) x (budget + summary) per window, over 60 windows and a last. */
    uint64_t bound = (TL_LOG_LIMIT_ADDRESSES + 1ull) * (TL_LOG_LIMIT_LINES + 1ull) * 61;
    print_message("%llu lines offered, %llu written, %llu summaries, bound %llu\n",
                  (unsigned long long)offered, (unsigned long long)written,
                  (unsigned long long)summaries, (unsigned long long)bound);
    assert_true(written + summaries <= bound);
    assert_true(written >= TL_LOG_LIMIT_LINES);
    tl_log_limit_free(limit);
}

static void test_null_and_bad_arguments_are_harmless(void **state)
{
    (void)state;
    assert_null(tl_log_limit_new(NULL, NULL));
    tl_log_limit_free(NULL);
    /* Without a counter every line is written. */
    assert_int_equal(1, tl_log_limit_admit(NULL, T0, "192.0.2.1", TL_LOG_INFO));
    tl_log_limit_flush(NULL, INT64_MAX);
    assert_int_equal(INT64_MAX, tl_log_limit_next_due(NULL));
    struct sink sink = {0};
    tl_log_limit_t *limit = tl_log_limit_new(collect, &sink);
    assert_non_null(limit);
    /* An address longer than any real one is cut, and still bounded as one address. */
    char long_address[200];
    memset(long_address, 'a', sizeof long_address - 1);
    long_address[sizeof long_address - 1] = '\0';
    assert_int_equal(TL_LOG_LIMIT_LINES, feed(limit, long_address, 100, T0, 1, TL_LOG_INFO));
    assert_int_equal(TL_LOG_LIMIT_LINES, feed(limit, NULL, 100, T0, 1, TL_LOG_INFO));
    tl_log_limit_flush(limit, INT64_MAX);
    assert_int_equal(2, sink.count);
    tl_log_limit_free(limit);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_lines_of_a_minute_written_the_rest_counted),
        cmocka_unit_test(test_next_line_after_the_minute_brings_the_summary),
        cmocka_unit_test(test_a_window_that_held_nothing_back_says_nothing),
        cmocka_unit_test(test_one_address_does_not_spend_anothers_budget),
        cmocka_unit_test(test_shutdown_flush_emits_every_pending_summary),
        cmocka_unit_test(test_past_the_table_addresses_share_one_bounded_window),
        cmocka_unit_test(test_windows_over_make_room_without_a_flush),
        cmocka_unit_test(test_an_hour_of_flooding_stays_within_the_stated_bound),
        cmocka_unit_test(test_null_and_bad_arguments_are_harmless),
    };
    return tl_test_run("log_limit", tests, sizeof tests / sizeof tests[0], argc, argv);
}
