/*
 * Retention (relay/desk/retention.h): the classes evidence kinds fall in, the configuration's
 * member and what it refuses, and which payloads a prune removes: past their class's retention,
 * never a held ticket's, and a payload shared by several tickets only when all of them let it go.
 */
#include "tl_test.h"

#include "relay/desk/retention.h"

#include <jansson.h>

/* 2026-12-03T14:00:00Z */
#define NOW 1796306400000LL
#define DAY TL_RETENTION_DAY_MS

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

static int parse(const char *text, tl_retention_t *out, char *why, size_t size)
{
    json_error_t error;
    json_t *member = json_loads(text, JSON_DECODE_ANY, &error);
    if (member == NULL)
        fail_msg("test JSON does not parse: %s", text);
    int rc = tl_retention_parse(member, out, why, size);
    json_decref(member);
    return rc;
}

static void test_kinds_fall_in_their_classes(void **state)
{
    (void)state;
    assert_int_equal(tl_retention_class_of("recording"), TL_RETENTION_RECORDINGS);
    assert_int_equal(tl_retention_class_of("command"), TL_RETENTION_TRANSCRIPTS);
    assert_int_equal(tl_retention_class_of("runbook"), TL_RETENTION_TRANSCRIPTS);
    assert_int_equal(tl_retention_class_of("diagnostics"), TL_RETENTION_EVENTS);
    assert_int_equal(tl_retention_class_of("file"), TL_RETENTION_EVENTS);
    assert_int_equal(tl_retention_class_of(NULL), TL_RETENTION_EVENTS);
    assert_string_equal(tl_retention_class_name(TL_RETENTION_TRANSCRIPTS), "transcripts");
    assert_null(tl_retention_class_name(TL_RETENTION_CLASS_COUNT));
}

static void test_the_default_keeps_everything_forever(void **state)
{
    (void)state;
    tl_retention_t policy;
    char why[256] = "";
    TL_ASSERT_OK(tl_retention_parse(NULL, &policy, why, sizeof why));
    for (int i = 0; i < TL_RETENTION_CLASS_COUNT; i++)
        assert_int_equal(policy.days[i], TL_RETENTION_FOREVER);
    TL_ASSERT_OK(parse("{\"recordings\": 30, \"events\": \"forever\"}", &policy, why, sizeof why));
    assert_int_equal(policy.days[TL_RETENTION_RECORDINGS], 30);
    assert_int_equal(policy.days[TL_RETENTION_TRANSCRIPTS], TL_RETENTION_FOREVER);
    assert_int_equal(policy.days[TL_RETENTION_EVENTS], TL_RETENTION_FOREVER);
}

static void test_bad_values_are_refused_naming_the_member(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"[]", "retention: wants an object of classes"},
        {"{\"recordings\": 0}", "retention.recordings: wants a whole number of days 1..36500 or "
                                "\"forever\", not 0"},
        {"{\"transcripts\": -3}", "retention.transcripts: wants a whole number of days"},
        {"{\"events\": 36501}", "retention.events: wants a whole number of days"},
        {"{\"events\": 1.5}", "not a fraction"},
        {"{\"events\": \"never\"}", "not other text"},
        {"{\"events\": null}", "not true, false or null"},
        {"{\"logs\": 3}", "retention.logs: unknown class"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_retention_t policy = {{7, 7, 7}};
        char why[256] = "";
        TL_ASSERT_RC(TL_EINVAL, parse(bad[i].text, &policy, why, sizeof why));
        if (strstr(why, bad[i].why) == NULL)
            fail_msg("%s: said '%s', wanted '%s'", bad[i].text, why, bad[i].why);
        assert_int_equal(policy.days[0], 7); /* nothing written */
    }
}

static void test_a_payload_goes_once_past_its_class_retention(void **state)
{
    (void)state;
    tl_retention_t policy = {{30, 90, TL_RETENTION_FOREVER}};
    tl_retention_ref_t refs[] = {
        {1, H1, "recording", NOW - 30 * DAY, 0, 0},     /* exactly 30 days: goes */
        {1, H2, "recording", NOW - 30 * DAY + 1, 0, 0}, /* a millisecond short: stays */
        {1, H3, "command", NOW - 31 * DAY, 0, 0},       /* transcripts keep 90 days */
        {2, "4444444444444444444444444444444444444444444444444444444444444444", "diagnostics",
         NOW - 3650 * DAY, 0, 0}, /* events: forever */
    };
    int prune[4];
    TL_ASSERT_OK(tl_retention_decide(&policy, refs, 4, NOW, prune));
    assert_int_equal(prune[0], 1);
    assert_int_equal(prune[1], 0);
    assert_int_equal(prune[2], 0);
    assert_int_equal(prune[3], 0);
    TL_ASSERT_OK(tl_retention_decide(&policy, refs, 4, NOW + 60 * DAY, prune));
    assert_int_equal(prune[1], 1);
    assert_int_equal(prune[2], 1);
    assert_int_equal(prune[3], 0);
}

static void test_a_held_ticket_keeps_its_payloads(void **state)
{
    (void)state;
    tl_retention_t policy = {{1, 1, 1}};
    tl_retention_ref_t refs[] = {
        {1, H1, "recording", NOW - 400 * DAY, 1, 0},
        {2, H2, "recording", NOW - 400 * DAY, 0, 0},
    };
    int prune[2];
    TL_ASSERT_OK(tl_retention_decide(&policy, refs, 2, NOW, prune));
    assert_int_equal(prune[0], 0);
    assert_int_equal(prune[1], 1);
}

static void test_a_shared_payload_goes_only_when_every_reference_lets_it(void **state)
{
    (void)state;
    tl_retention_t policy = {{TL_RETENTION_FOREVER, TL_RETENTION_FOREVER, 10}};
    /* One diagnostics report on three tickets: an old one, a recent one, a held one. */
    tl_retention_ref_t refs[] = {
        {1, H1, "diagnostics", NOW - 20 * DAY, 0, 0},
        {2, H2, "diagnostics", NOW - 20 * DAY, 0, 0},
        {3, H1, "diagnostics", NOW - 2 * DAY, 0, 0},
        {4, H2, "diagnostics", NOW - 20 * DAY, 1, 0},
        {5, H3, "diagnostics", NOW - 20 * DAY, 0, 0},
        {6, H3, "recording", NOW - 20 * DAY, 0, 0}, /* the same bytes as a recording: forever */
    };
    int prune[6];
    TL_ASSERT_OK(tl_retention_decide(&policy, refs, 6, NOW, prune));
    for (int i = 0; i < 6; i++)
        assert_int_equal(prune[i], 0);
    /* Once the recent one is old enough too, both references of H1 are tombstoned. */
    TL_ASSERT_OK(tl_retention_decide(&policy, refs, 6, NOW + 9 * DAY, prune));
    assert_int_equal(prune[0], 1);
    assert_int_equal(prune[2], 1);
    assert_int_equal(prune[1], 0);
    assert_int_equal(prune[3], 0);
    assert_int_equal(prune[5], 0);
}

static void test_a_reference_already_tombstoned_is_not_tombstoned_again(void **state)
{
    (void)state;
    tl_retention_t policy = {{1, 1, 1}};
    tl_retention_ref_t refs[] = {
        {1, H1, "recording", NOW - 5 * DAY, 0, 1},
        {2, H1, "recording", NOW - 5 * DAY, 0, 0},
    };
    int prune[2];
    TL_ASSERT_OK(tl_retention_decide(&policy, refs, 2, NOW, prune));
    assert_int_equal(prune[0], 0);
    assert_int_equal(prune[1], 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_kinds_fall_in_their_classes),
    cmocka_unit_test(test_the_default_keeps_everything_forever),
    cmocka_unit_test(test_bad_values_are_refused_naming_the_member),
    cmocka_unit_test(test_a_payload_goes_once_past_its_class_retention),
    cmocka_unit_test(test_a_held_ticket_keeps_its_payloads),
    cmocka_unit_test(test_a_shared_payload_goes_only_when_every_reference_lets_it),
    cmocka_unit_test(test_a_reference_already_tombstoned_is_not_tombstoned_again),
};

TL_TEST_MAIN(tests)
