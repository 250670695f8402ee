/*
 * Tier 4 (relay/desk/vendor.h): when a follow-up or an expiry falls, what a vendor's name may
 * be, and which tickets a vendor account sees, on a real SQLite file.
 */
#include "tl_test.h"

#include "proto/roles.h"
#include "relay/desk/tickets.h"
#include "relay/desk/vendor.h"

#include <stdlib.h>

/* 2026-12-03T14:00:00Z */
#define NOW 1796306400000LL
#define MINUTE 60000LL
#define DAY 86400000LL

static int64_t when(const char *text, enum tl_vendor_day day)
{
    int64_t ms = 0;
    const char *problem = NULL;
    int rc = tl_vendor_when_parse(text, NOW, day, &ms, &problem);
    if (rc != 0)
        fail_msg("'%s' refused: %s", text, problem);
    return ms;
}

static void test_durations_count_from_now(void **state)
{
    (void)state;
    assert_int_equal(when("2d", TL_VENDOR_DAY_START), NOW + 2 * DAY);
    assert_int_equal(when("36h", TL_VENDOR_DAY_START), NOW + 36 * 60 * MINUTE);
    assert_int_equal(when("90m", TL_VENDOR_DAY_START), NOW + 90 * MINUTE);
    assert_int_equal(when("1w", TL_VENDOR_DAY_START), NOW + 7 * DAY);
    assert_int_equal(when("1d12h", TL_VENDOR_DAY_START), NOW + DAY + 12 * 60 * MINUTE);
}

static void test_a_date_is_its_start_for_a_follow_up_and_its_end_for_an_expiry(void **state)
{
    (void)state;
    /* 2026-12-31T00:00:00Z is 1798675200 s. */
    assert_int_equal(when("2026-12-31", TL_VENDOR_DAY_START), 1798675200000LL);
    assert_int_equal(when("2026-12-31", TL_VENDOR_DAY_END), 1798675200000LL + DAY);
    assert_int_equal(when("2026-12-31T17:30Z", TL_VENDOR_DAY_END), 1798675200000LL + 63000000LL);
    assert_int_equal(when("2026-12-31T17:30:15Z", TL_VENDOR_DAY_START),
                     1798675200000LL + 63015000LL);
    /* A leap day, and the day after a February of 28. */
    assert_int_equal(when("2028-02-29", TL_VENDOR_DAY_START), 1835395200000LL);
    assert_int_equal(when("2027-03-01", TL_VENDOR_DAY_START), 1803859200000LL);
}

static void test_bad_times_are_refused_with_the_reason(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *words;
    } cases[] = {
        {"", "is not a duration"},
        {"3x", "is not a duration"},
        {"2", "is not a duration"},
        {"d", "is not a duration"},
        {"-2d", "is not a duration"},
        {"30s", "is not a duration"},
        {"0m", "less than a minute"},
        {"99999w", "more than ten years"},
        {"2026-02-30", "is not a date"},
        {"2026-13-01", "is not a date"},
        {"2026-12-3", "is not a date"},
        {"2026-12-31T25:00Z", "is not a date"},
        {"2026-12-31T17:00", "is not a date"},
        {"2026-12-03", "in the past"}, /* its start, for a follow-up, is before now */
        {"2020-01-01", "in the past"},
        {"2026-12-03T14:00Z", "in the past"},
        {"2099-01-01", "more than ten years"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 42;
        const char *problem = "";
        int rc = tl_vendor_when_parse(cases[i].text, NOW, TL_VENDOR_DAY_START, &ms, &problem);
        if (rc != TL_EINVAL || strstr(problem, cases[i].words) == NULL || ms != 42)
            fail_msg("'%s': %s '%s', expected '%s'", cases[i].text, tl_err_name(rc), problem,
                     cases[i].words);
    }
    /* Today, as an expiry, lasts until midnight. */
    assert_int_equal(when("2026-12-03", TL_VENDOR_DAY_END), 1796342400000LL);
}

static void test_a_vendor_name_is_one_line_of_text(void **state)
{
    (void)state;
    assert_true(tl_vendor_text_valid("ACME Printers"));
    assert_true(tl_vendor_text_valid("Müller GmbH"));
    assert_false(tl_vendor_text_valid(""));
    assert_false(tl_vendor_text_valid("ACME\nPrinters"));
    assert_false(tl_vendor_text_valid("ACME\x1b[2J"));
    assert_false(tl_vendor_text_valid("ACME\xc2\x9b"));
    assert_false(tl_vendor_text_valid("ACME \xff"));
    char longest[TL_VENDOR_TEXT_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[TL_VENDOR_TEXT_MAX] = '\0';
    assert_true(tl_vendor_text_valid(longest));
    longest[TL_VENDOR_TEXT_MAX] = 'a';
    longest[TL_VENDOR_TEXT_MAX + 1] = '\0';
    assert_false(tl_vendor_text_valid(longest));
}

/* ---- on a store ---- */

struct fixture {
    char dir[64];
    tl_store_t *store;
    int64_t tickets[2];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char db[96];
    int64_t device = 0;
    int created = 0;
    tl_device_info_t info = {"SHA256:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", "laptop-7",
                             "os"};
    const char *hash = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/tl-vendor-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(db, sizeof db, "%s/relay.db", f->dir);
    if (tl_store_open(db, TL_STORE_CREATE_NEW, &f->store) != 0 ||
        tl_store_code_add(f->store, hash, 1000, 100000, "", NULL) != 0 ||
        tl_store_enroll(f->store, hash, 2000, &info, &device) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        tl_ticket_new_t ticket = {.device_id = device, .title = i ? "second" : "first", .tier = 1};
        if (tl_ticket_create(f->store, &ticket, 3000, &f->tickets[i], &created) != 0)
            return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    tl_store_close(f->store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_a_vendor_sees_a_bound_ticket_until_its_binding_ends(void **state)
{
    struct fixture *f = *state;
    int64_t until = -1;
    /* Nothing bound: no ticket exists for the vendor, every one for the desk. */
    TL_ASSERT_RC(TL_ENOTFOUND, tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "acme",
                                                       f->tickets[0], NOW, &until));
    TL_ASSERT_OK(
        tl_vendor_ticket_access(f->store, TL_ROLE_TIER2, "bob", f->tickets[0], NOW, &until));
    assert_int_equal(until, 0);
    TL_ASSERT_OK(tl_store_grant_set(f->store, "acme", f->tickets[0], NOW + DAY));
    TL_ASSERT_OK(
        tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "acme", f->tickets[0], NOW, &until));
    assert_int_equal(until, NOW + DAY);
    /* Another ticket, another vendor, and the same one once the binding has run out. */
    TL_ASSERT_RC(TL_ENOTFOUND, tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "acme",
                                                       f->tickets[1], NOW, NULL));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "globex",
                                                       f->tickets[0], NOW, NULL));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "acme",
                                                       f->tickets[0], NOW + DAY, NULL));
    /* Binding again moves the expiry; unbinding ends it. */
    TL_ASSERT_OK(tl_store_grant_set(f->store, "acme", f->tickets[0], NOW + 2 * DAY));
    TL_ASSERT_OK(
        tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "acme", f->tickets[0], NOW + DAY, NULL));
    TL_ASSERT_OK(tl_store_grant_remove(f->store, "acme", f->tickets[0]));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_grant_remove(f->store, "acme", f->tickets[0]));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_vendor_ticket_access(f->store, TL_ROLE_TIER4, "acme",
                                                       f->tickets[0], NOW, NULL));
}

static void test_bindings_are_listed_and_go_with_their_account(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_OK(tl_store_grant_set(f->store, "acme", f->tickets[1], NOW + DAY));
    TL_ASSERT_OK(tl_store_grant_set(f->store, "acme", f->tickets[0], NOW + DAY));
    TL_ASSERT_OK(tl_store_grant_set(f->store, "globex", f->tickets[0], NOW + 2 * DAY));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_grant_set(f->store, "acme", 999, NOW + DAY));
    TL_ASSERT_RC(TL_EINVAL, tl_store_grant_set(f->store, "Not A Name", f->tickets[0], NOW));
    TL_ASSERT_RC(TL_EINVAL, tl_store_grant_set(f->store, "acme", f->tickets[0], 0));
    tl_ticket_grant_rows_t rows;
    TL_ASSERT_OK(tl_store_grants_read(f->store, "acme", &rows));
    assert_int_equal(rows.count, 2);
    assert_int_equal(rows.rows[0].ticket_id, f->tickets[0]);
    assert_string_equal(rows.rows[1].user, "acme");
    tl_ticket_grant_rows_free(&rows);
    TL_ASSERT_OK(tl_store_grants_read(f->store, NULL, &rows));
    assert_int_equal(rows.count, 3);
    assert_string_equal(rows.rows[2].user, "globex");
    tl_ticket_grant_rows_free(&rows);
    TL_ASSERT_OK(tl_store_grants_remove_user(f->store, "acme"));
    TL_ASSERT_OK(tl_store_grants_read(f->store, NULL, &rows));
    assert_int_equal(rows.count, 1);
    tl_ticket_grant_rows_free(&rows);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_durations_count_from_now),
    cmocka_unit_test(test_a_date_is_its_start_for_a_follow_up_and_its_end_for_an_expiry),
    cmocka_unit_test(test_bad_times_are_refused_with_the_reason),
    cmocka_unit_test(test_a_vendor_name_is_one_line_of_text),
    cmocka_unit_test_setup_teardown(test_a_vendor_sees_a_bound_ticket_until_its_binding_ends, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_bindings_are_listed_and_go_with_their_account, setup,
                                    teardown),
};

TL_TEST_MAIN(tests)
