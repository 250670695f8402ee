/*
 * Refused logins per address and minute: what comes out, when, and the
 * bounds on memory and on entries (docs/audit-format.md §11).
 */
#include "tl_test.h"

#include "relay/net/login_tally.h"

#include <stdlib.h>

/* 2026-12-02T14:42:00Z */
#define MINUTE 1796222520000ll

struct emitted {
    char address[64];
    uint32_t addresses;
    int64_t minute_ms;
    uint64_t count;
    uint64_t kinds[TL_LOGIN_TALLY_KINDS];
};

struct sink {
    struct emitted items[1024];
    size_t count;
};

static void collect(void *ctx, const tl_login_summary_t *summary)
{
    struct sink *sink = ctx;
    assert_true(sink->count < 1024);
    struct emitted *item = &sink->items[sink->count++];
    snprintf(item->address, sizeof item->address, "%s", summary->address);
    item->addresses = summary->addresses;
    item->minute_ms = summary->minute_ms;
    item->count = summary->count;
    memcpy(item->kinds, summary->kinds, sizeof item->kinds);
}

static size_t kind(const char *name)
{
    for (size_t i = 0; tl_login_tally_kind_name(i) != NULL; i++)
        if (strcmp(tl_login_tally_kind_name(i), name) == 0)
            return i;
    fail_msg("no kind %s", name);
    return 0;
}

static const struct emitted *find(const struct sink *sink, const char *address)
{
    for (size_t i = 0; i < sink->count; i++)
        if (strcmp(sink->items[i].address, address) == 0)
            return &sink->items[i];
    return NULL;
}

static void test_one_summary_per_address_with_counts_by_kind(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_login_tally_t *tally = tl_login_tally_new(collect, &sink);
    assert_non_null(tally);
    for (int i = 0; i < 3000; i++)
        tl_login_tally_add(tally, MINUTE + i * 10, "192.0.2.7", "handshake-failed", "");
    tl_login_tally_add(tally, MINUTE + 100, "192.0.2.7", "timeout", NULL);
    tl_login_tally_add(tally, MINUTE + 200, "192.0.2.8", "unknown-key", "SHA256:a");
    tl_login_tally_add(tally, MINUTE + 300, "192.0.2.8", "no-such-reason", "");
    tl_login_tally_flush(tally, MINUTE + 59999); /* the minute is not over: nothing yet */
    assert_int_equal(0, sink.count);
    tl_login_tally_flush(tally, MINUTE + 60000);
    assert_int_equal(2, sink.count);
    const struct emitted *seven = find(&sink, "192.0.2.7");
    assert_non_null(seven);
    assert_int_equal(MINUTE, seven->minute_ms);
    assert_int_equal(3001, seven->count);
    assert_int_equal(3000, seven->kinds[kind("handshake-failed")]);
    assert_int_equal(1, seven->kinds[kind("timeout")]);
    assert_int_equal(1, seven->addresses);
    const struct emitted *eight = find(&sink, "192.0.2.8");
    assert_non_null(eight);
    assert_int_equal(2, eight->count);
    assert_int_equal(1, eight->kinds[kind("unknown-key")]);
    assert_int_equal(1, eight->kinds[kind("other")]);
    /* Emitted once: a second flush has nothing. */
    tl_login_tally_flush(tally, INT64_MAX);
    assert_int_equal(2, sink.count);
    tl_login_tally_free(tally);
}

static void test_a_new_minute_emits_the_last_one_first(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_login_tally_t *tally = tl_login_tally_new(collect, &sink);
    tl_login_tally_add(tally, MINUTE + 5, "192.0.2.7", "timeout", "");
    tl_login_tally_add(tally, MINUTE + 59999, "192.0.2.7", "timeout", "");
    assert_int_equal(0, sink.count);
    tl_login_tally_add(tally, MINUTE + 60000, "192.0.2.7", "busy", "");
    assert_int_equal(1, sink.count);
    assert_int_equal(MINUTE, sink.items[0].minute_ms);
    assert_int_equal(2, sink.items[0].count);
    /* At shutdown (INT64_MAX) the current minute goes out though it is not over. */
    tl_login_tally_flush(tally, INT64_MAX);
    assert_int_equal(2, sink.count);
    assert_int_equal(MINUTE + 60000, sink.items[1].minute_ms);
    assert_int_equal(1, sink.items[1].kinds[kind("busy")]);
    /* A clock stepped back is just another minute. */
    tl_login_tally_add(tally, MINUTE - 1, "192.0.2.7", "timeout", "");
    tl_login_tally_flush(tally, INT64_MAX);
    assert_int_equal(3, sink.count);
    assert_int_equal(MINUTE - 60000, sink.items[2].minute_ms);
    tl_login_tally_free(tally);
}

static void test_a_new_key_from_an_address_gets_its_own_entry_once(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_login_tally_t *tally = tl_login_tally_new(collect, &sink);
    assert_int_equal(1, tl_login_tally_add(tally, MINUTE, "192.0.2.7", "unknown-key", "SHA256:k"));
    assert_int_equal(0, tl_login_tally_add(tally, MINUTE, "192.0.2.7", "unknown-key", "SHA256:k"));
    /* The same key from another address is new there. */
    assert_int_equal(1, tl_login_tally_add(tally, MINUTE, "192.0.2.8", "unknown-key", "SHA256:k"));
    /* No key, no entry of its own. */
    assert_int_equal(0, tl_login_tally_add(tally, MINUTE, "192.0.2.9", "timeout", ""));
    assert_int_equal(0, tl_login_tally_add(tally, MINUTE, "192.0.2.9", "timeout", NULL));
    /* Remembered across minutes. */
    assert_int_equal(
        0, tl_login_tally_add(tally, MINUTE + 60000, "192.0.2.7", "bad-signature", "SHA256:k"));
    /* ... but its account's expiry is said once, beside the key's other refusals. */
    assert_int_equal(1,
                     tl_login_tally_add(tally, MINUTE + 60000, "192.0.2.7", "expired", "SHA256:k"));
    assert_int_equal(0,
                     tl_login_tally_add(tally, MINUTE + 60000, "192.0.2.7", "expired", "SHA256:k"));
    tl_login_tally_flush(tally, INT64_MAX);
    /* Counted in the summaries all the same. */
    assert_int_equal(2, find(&sink, "192.0.2.7")->count);
    tl_login_tally_free(tally);
}

static void test_own_entries_are_bounded_per_address_and_per_minute(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_login_tally_t *tally = tl_login_tally_new(collect, &sink);
    char key[32], address[32];
    int own = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "SHA256:key%d", i);
        own += tl_login_tally_add(tally, MINUTE, "192.0.2.7", "unknown-key", key);
    }
    assert_int_equal(TL_LOGIN_TALLY_KEYS_PER_ADDRESS, own);
    own = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(address, sizeof address, "198.51.100.%d", i % 50);
        snprintf(key, sizeof key, "SHA256:key%d", i);
        own += tl_login_tally_add(tally, MINUTE, address, "unknown-key", key);
    }
    assert_int_equal(TL_LOGIN_TALLY_KEY_ENTRIES - TL_LOGIN_TALLY_KEYS_PER_ADDRESS, own);
    /* A new minute has room again, for keys not yet listed. */
    assert_int_equal(
        1, tl_login_tally_add(tally, MINUTE + 60000, "192.0.2.7", "unknown-key", "SHA256:key99"));
    tl_login_tally_free(tally);
}

static void test_addresses_past_the_bound_fold_into_other(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_login_tally_t *tally = tl_login_tally_new(collect, &sink);
    char address[32];
    int own = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < TL_LOGIN_TALLY_ADDRESSES + 36; i++) {
            snprintf(address, sizeof address, "203.0.113.%d", i);
            own += tl_login_tally_add(tally, MINUTE, address, "disconnected", "");
        }
    }
    /* A key from a folded address is counted only. */
    own += tl_login_tally_add(tally, MINUTE, "203.0.113.99", "unknown-key", "SHA256:folded");
    assert_int_equal(0, own);
    tl_login_tally_flush(tally, INT64_MAX);
    assert_int_equal(TL_LOGIN_TALLY_ADDRESSES + 1, sink.count);
    const struct emitted *other = find(&sink, TL_LOGIN_TALLY_OTHER);
    assert_non_null(other);
    assert_int_equal(36, other->addresses);
    assert_int_equal(36 * 3 + 1, other->count);
    assert_int_equal(36 * 3, other->kinds[kind("disconnected")]);
    assert_int_equal(1, other->kinds[kind("unknown-key")]);
    uint64_t total = 0;
    for (size_t i = 0; i < sink.count; i++)
        total += sink.items[i].count;
    assert_int_equal((TL_LOGIN_TALLY_ADDRESSES + 36) * 3 + 1, total);
    tl_login_tally_free(tally);
}

static void test_remembered_keys_are_bounded(void **state)
{
    (void)state;
    struct sink sink = {0};
    tl_login_tally_t *tally = tl_login_tally_new(collect, &sink);
    char key[32];
    int64_t now = MINUTE;
    assert_int_equal(1, tl_login_tally_add(tally, now, "192.0.2.7", "unknown-key", "SHA256:first"));
    /* Enough other keys, a few per minute so that each is listed, push the first one out. */
    for (int i = 0; i < TL_LOGIN_TALLY_KEYS_REMEMBERED; i++) {
        if (i % TL_LOGIN_TALLY_KEYS_PER_ADDRESS == 0)
            now += 60000;
        snprintf(key, sizeof key, "SHA256:other%d", i);
        assert_int_equal(1, tl_login_tally_add(tally, now, "192.0.2.7", "unknown-key", key));
    }
    assert_int_equal(
        1, tl_login_tally_add(tally, now + 60000, "192.0.2.7", "unknown-key", "SHA256:first"));
    tl_login_tally_free(tally);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_one_summary_per_address_with_counts_by_kind),
    cmocka_unit_test(test_a_new_minute_emits_the_last_one_first),
    cmocka_unit_test(test_a_new_key_from_an_address_gets_its_own_entry_once),
    cmocka_unit_test(test_own_entries_are_bounded_per_address_and_per_minute),
    cmocka_unit_test(test_addresses_past_the_bound_fold_into_other),
    cmocka_unit_test(test_remembered_keys_are_bounded),
};

TL_TEST_MAIN(tests)
