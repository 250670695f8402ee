/*
 * The desk's report (relay/desk/report.h): what it counts in which row, its medians and 90th
 * percentiles, the same bytes whatever order the input comes in, CSV and text that keep other
 * parties' text harmless, and input it refuses.
 */
#include "tl_test.h"

#include "relay/desk/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE 60000LL
#define HOUR 3600000LL
#define SINCE (1000 * HOUR)
#define UNTIL (2000 * HOUR)

/* A ticket opened at created, answered after respond (0: not), resolved after resolve (0: not),
 * with business times equal to real ones and the first response target given. */
static tl_report_ticket_t ticket(int64_t id, int64_t device, int tier, int severity,
                                 int64_t created, int64_t respond, int64_t resolve,
                                 int64_t response_target)
{
    tl_report_ticket_t t;
    memset(&t, 0, sizeof t);
    t.id = id;
    t.device_id = device;
    t.created_ms = created;
    t.tier = tier;
    t.severity = severity;
    tl_sla_clock_t *first = &t.clocks[TL_SLA_FIRST_RESPONSE];
    first->target_ms = response_target;
    first->due_ms = created + response_target;
    if (respond > 0) {
        t.first_response_ms = created + respond;
        first->elapsed_ms = respond;
        first->stopped = 1;
        first->state = respond <= response_target ? TL_SLA_MET : TL_SLA_BREACHED;
    } else {
        first->state = TL_SLA_RUNNING;
    }
    tl_sla_clock_t *resolution = &t.clocks[TL_SLA_RESOLUTION];
    resolution->target_ms = 40 * HOUR;
    resolution->due_ms = created + 40 * HOUR;
    resolution->state = TL_SLA_RUNNING;
    if (resolve > 0) {
        t.resolved_ms = created + resolve;
        resolution->elapsed_ms = resolve;
        resolution->stopped = 1;
        resolution->state = TL_SLA_MET;
    }
    t.clocks[TL_SLA_VENDOR].state = TL_SLA_IDLE;
    return t;
}

static json_t *build(const tl_report_input_t *in)
{
    json_t *report = NULL;
    char why[200] = "";
    int rc = tl_report_build(in, &report, why, sizeof why);
    if (rc != 0)
        fail_msg("tl_report_build: %d %s", rc, why);
    return report;
}

static const json_t *row_of(const json_t *report, int tier, const char *severity)
{
    size_t i;
    const json_t *row;
    json_array_foreach(json_object_get(report, "rows"), i, row) {
        if (json_integer_value(json_object_get(row, "tier")) == tier &&
            strcmp(json_string_value(json_object_get(row, "severity")), severity) == 0)
            return row;
    }
    fail_msg("no row for tier %d %s", tier, severity);
    return NULL;
}

static long long member(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return (long long)json_integer_value(v);
}

static char *written(int (*write)(const json_t *, FILE *), const json_t *report)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    TL_ASSERT_OK(write(report, f));
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_counts_each_ticket_in_its_row_and_period(void **state)
{
    (void)state;
    tl_report_ticket_t tickets[] = {
        /* tier 1 S3: answered in 30 min and 2 h (met, 4 h target), 7 h (not met, over 6 h) */
        ticket(1, 10, 1, 3, SINCE + HOUR, 30 * MINUTE, 5 * HOUR, 4 * HOUR),
        ticket(2, 11, 1, 3, SINCE + 2 * HOUR, 2 * HOUR, 0, 4 * HOUR),
        ticket(3, 12, 1, 3, SINCE + 3 * HOUR, 7 * HOUR, 9 * HOUR, 4 * HOUR),
        /* tier 2 S1: answered late, still open */
        ticket(4, 10, 2, 1, SINCE + 4 * HOUR, 90 * MINUTE, 0, 30 * MINUTE),
        /* before the period: opened and answered then, resolved inside it */
        ticket(5, 13, 1, 3, SINCE - 10 * HOUR, HOUR, 12 * HOUR, 4 * HOUR),
        /* after the period: not counted at all */
        ticket(6, 13, 1, 3, UNTIL + HOUR, HOUR, 2 * HOUR, 4 * HOUR),
    };
    tickets[4].clocks[TL_SLA_RESOLUTION].paused_ms[TL_SLA_PAUSE_WAITING_USER] = 2 * HOUR;
    tickets[3].clocks[TL_SLA_RESOLUTION].paused_ms[TL_SLA_PAUSE_WAITING_VENDOR] = 3 * HOUR;
    tl_report_escalation_t escalations[] = {
        {4, SINCE + 5 * HOUR, 1, 2, 1}, /* out of tier 1, as S1 */
        {4, SINCE + 6 * HOUR, 2, 1, 1}, /* back down: a de-escalation, not counted */
        {2, SINCE - HOUR, 1, 2, 3},     /* before the period */
    };
    tl_report_problem_t problems[] = {
        {3, "VPN drops after resume", "known-error", 2, 2},
        {1, "Printer queue stuck", "investigating", 5, 1},
        {2, "Disk fills with logs", "fixed", 5, 3},
    };
    tl_report_input_t in = {SINCE, UNTIL, tickets, 6, escalations, 3, problems, 3, NULL, 0};
    json_t *report = build(&in);

    const json_t *t1 = row_of(report, 1, "S3");
    assert_int_equal(member(t1, "opened"), 3);
    assert_int_equal(member(t1, "resolved"), 3); /* 1, 3 and 5 */
    assert_int_equal(member(t1, "first_responses"), 3);
    assert_int_equal(member(t1, "first_responses_within_target"), 2);
    assert_true(fabs(json_real_value(json_object_get(t1, "first_responses_within_target_pct")) -
                     66.7) < 0.001);
    assert_int_equal(member(t1, "first_responses_within_6h"), 2);
    /* nearest rank: median of 30m, 2h, 7h is 2h; the 90th percentile is 7h */
    assert_int_equal(member(t1, "first_response_median_ms"), 2 * HOUR);
    assert_int_equal(member(t1, "first_response_p90_ms"), 7 * HOUR);
    /* resolutions 5h, 9h, 12h */
    assert_int_equal(member(t1, "resolution_median_ms"), 9 * HOUR);
    assert_int_equal(member(t1, "resolution_p90_ms"), 12 * HOUR);
    assert_int_equal(member(json_object_get(t1, "paused_ms"), "waiting-user"), 2 * HOUR);
    assert_int_equal(member(t1, "escalated"), 0);
    /* The escalation is counted where it left, with the severity it had. */
    const json_t *t1s1 = row_of(report, 1, "S1");
    assert_int_equal(member(t1s1, "escalated"), 1);
    assert_int_equal(member(t1s1, "opened"), 0);

    const json_t *t2 = row_of(report, 2, "S1");
    assert_int_equal(member(t2, "opened"), 1);
    assert_int_equal(member(t2, "resolved"), 0);
    assert_int_equal(member(t2, "first_responses_within_target"), 0);
    assert_int_equal(member(json_object_get(t2, "breaches"), "first_response"), 1);
    assert_int_equal(member(json_object_get(t2, "paused_ms"), "waiting-vendor"), 3 * HOUR);
    assert_true(json_is_null(json_object_get(t2, "resolution_median_ms")));

    const json_t *total = json_object_get(report, "total");
    assert_int_equal(member(total, "opened"), 4);
    assert_int_equal(member(total, "resolved"), 3);
    assert_int_equal(member(total, "escalated"), 1);
    assert_int_equal(member(total, "first_responses"), 4);
    assert_true(fabs(json_real_value(json_object_get(total, "first_responses_within_6h_pct")) -
                     75.0) < 0.001);
    assert_int_equal(json_array_size(json_object_get(report, "rows")), 3);

    /* Problems: most tickets first, then most devices, then the oldest. */
    const json_t *list = json_object_get(report, "problems");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "P-2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "id")), "P-1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "id")), "P-3");
    json_decref(report);
}

static void test_same_data_gives_the_same_bytes(void **state)
{
    (void)state;
    tl_report_ticket_t a[40];
    for (int i = 0; i < 40; i++)
        a[i] = ticket(i + 1, i % 7, i % 5, i % 4 + 1, SINCE + i * HOUR, (i % 9 + 1) * 20 * MINUTE,
                      i % 3 ? (i % 11 + 1) * HOUR : 0, 2 * HOUR);
    tl_report_ticket_t b[40];
    for (int i = 0; i < 40; i++)
        b[i] = a[(i * 17) % 40]; /* the same tickets in another order */
    tl_report_problem_t pa[] = {{1, "one", "fixed", 3, 1}, {2, "two", "fixed", 3, 1}};
    tl_report_problem_t pb[] = {pa[1], pa[0]};
    tl_report_selfhelp_t ha[] = {
        {"tmp-full", NULL, TL_REPORT_SUGGESTED, SINCE + HOUR, 0},
        {"cups-stopped", "fix-cups-stopped", TL_REPORT_PASSED, SINCE + 2 * HOUR, 0},
        {"tmp-full", "fix-tmp-full", TL_REPORT_APPLIED, SINCE + 3 * HOUR, 0},
        {"cups-stopped", "fix-cups-stopped", TL_REPORT_PASSED, SINCE + 4 * HOUR, 1}};
    tl_report_selfhelp_t hb[] = {ha[3], ha[1], ha[0], ha[2]};
    tl_report_input_t in_a = {SINCE, UNTIL, a, 40, NULL, 0, pa, 2, ha, 4};
    tl_report_input_t in_b = {SINCE, UNTIL, b, 40, NULL, 0, pb, 2, hb, 4};
    json_t *ra = build(&in_a), *rb = build(&in_b);
    int (*writers[])(const json_t *, FILE *) = {tl_report_write_json, tl_report_write_csv,
                                                tl_report_write_text};
    for (size_t w = 0; w < 3; w++) {
        char *x = written(writers[w], ra), *y = written(writers[w], rb);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    /* Percentages are written with one decimal, never as binary fractions. */
    char *json = written(tl_report_write_json, ra);
    assert_null(strstr(json, "99999"));
    assert_null(strstr(json, "00001"));
    free(json);
    json_decref(ra);
    json_decref(rb);
}

static void test_other_parties_text_is_made_harmless(void **state)
{
    (void)state;
    tl_report_problem_t problems[] = {
        {1, "=HYPERLINK(\"http://x\"),\"evil\"", "investigating", 2, 1},
        {2, "title\x1b]0;owned\x07 with escape", "known-error", 1, 1},
    };
    tl_report_input_t in = {SINCE, UNTIL, NULL, 0, NULL, 0, problems, 2, NULL, 0};
    json_t *report = build(&in);
    char *csv = written(tl_report_write_csv, report);
    assert_non_null(
        strstr(csv, "P-1,investigating,2,1,\"'=HYPERLINK(\"\"http://x\"\"),\"\"evil\"\"\"\r\n"));
    assert_non_null(strstr(csv, "P-2,known-error,1,1,title\\x1b]0;owned\\x07 with escape\r\n"));
    char *text = written(tl_report_write_text, report);
    for (const char *s = text; *s != '\0'; s++)
        assert_false((*s >= 0 && *s < 0x20 && *s != '\n') || *s == 0x7f);
    for (const char *s = csv; *s != '\0'; s++)
        assert_false((*s >= 0 && *s < 0x20 && *s != '\n' && *s != '\r') || *s == 0x7f);
    /* JSON keeps the exact characters, escaped as JSON does. */
    char *json = written(tl_report_write_json, report);
    assert_non_null(strstr(json, "title\\u001B]0;owned\\u0007 with escape"));
    free(csv);
    free(text);
    free(json);
    json_decref(report);
}

static void test_an_empty_period_reports_zeros_and_no_times(void **state)
{
    (void)state;
    tl_report_input_t in = {SINCE, UNTIL, NULL, 0, NULL, 0, NULL, 0, NULL, 0};
    json_t *report = build(&in);
    assert_int_equal(json_array_size(json_object_get(report, "rows")), 0);
    const json_t *total = json_object_get(report, "total");
    assert_int_equal(member(total, "opened"), 0);
    assert_true(json_is_null(json_object_get(total, "first_responses_within_target_pct")));
    assert_true(json_is_null(json_object_get(total, "first_response_median_ms")));
    char *text = written(tl_report_write_text, report);
    assert_non_null(strstr(text, "Report from 1970-02-11 16:00 UTC to 1970-03-25 08:00 UTC\n"));
    assert_non_null(strstr(text, "No known problems."));
    free(text);
    char *csv = written(tl_report_write_csv, report);
    assert_non_null(strstr(csv, "all,all,0,0,0,0,0,,0,,,,,,0,0,0,0,0,0\r\n"));
    free(csv);
    json_decref(report);
}

/* The funnel counts each stage, and a passed re-check is deflected only once 72 hours passed
 * without the problem coming back to the desk. */
static void test_self_help_funnel_counts_only_what_held(void **state)
{
    (void)state;
    tl_report_selfhelp_t stages[] = {
        {"var-full", NULL, TL_REPORT_SUGGESTED, SINCE + HOUR, 0},
        {"var-full", "fix-var-full", TL_REPORT_APPLIED, SINCE + HOUR, 0},
        {"var-full", "fix-var-full", TL_REPORT_PASSED, SINCE + HOUR, 0}, /* held: deflected */
        {"var-full", NULL, TL_REPORT_SUGGESTED, SINCE + 2 * HOUR, 0},
        {"var-full", "fix-var-full", TL_REPORT_APPLIED, SINCE + 2 * HOUR, 0},
        {"var-full", "fix-var-full", TL_REPORT_PASSED, SINCE + 2 * HOUR,
         1}, /* a ticket came: not deflected */
        {"cups-stopped", NULL, TL_REPORT_SUGGESTED, UNTIL - 10 * HOUR, 0},
        {"cups-stopped", "fix-cups-stopped", TL_REPORT_APPLIED, UNTIL - 10 * HOUR, 0},
        {"cups-stopped", "fix-cups-stopped", TL_REPORT_PASSED, UNTIL - 10 * HOUR,
         0}, /* its 72 h run on */
        {"dns-down", NULL, TL_REPORT_SUGGESTED, SINCE + 3 * HOUR, 0},
        {"dns-down", "fix-dns-down", TL_REPORT_APPLIED, SINCE + 3 * HOUR, 0},
        {"dns-down", "fix-dns-down", TL_REPORT_FAILED, SINCE + 3 * HOUR, 0},
    };
    tl_report_input_t in = {SINCE, UNTIL, NULL, 0, NULL, 0, NULL, 0, stages, 12};
    json_t *report = build(&in);
    const json_t *selfhelp = json_object_get(report, "self_help");
    const json_t *total = json_object_get(selfhelp, "total");
    assert_int_equal(member(total, "suggested"), 4);
    assert_int_equal(member(total, "applied"), 4);
    assert_int_equal(member(total, "recheck_passed"), 3);
    assert_int_equal(member(total, "recheck_failed"), 1);
    assert_int_equal(member(total, "deflected"), 1);
    assert_int_equal(member(total, "came_back"), 1);
    assert_int_equal(member(total, "watching"), 1);
    /* Per article, by id. */
    const json_t *articles = json_object_get(selfhelp, "articles");
    assert_int_equal(json_array_size(articles), 3);
    const char *ids[] = {"cups-stopped", "dns-down", "var-full"};
    const json_int_t deflected[] = {0, 0, 1}, watching[] = {1, 0, 0};
    for (size_t i = 0; i < 3; i++) {
        const json_t *row = json_array_get(articles, i);
        assert_string_equal(json_string_value(json_object_get(row, "article")), ids[i]);
        assert_int_equal(member(row, "deflected"), deflected[i]);
        assert_int_equal(member(row, "watching"), watching[i]);
    }
    /* Each runbook's record as a fix: applied, passed, failed (suggestions are the article's). */
    const json_t *runbooks = json_object_get(selfhelp, "runbooks");
    assert_int_equal(json_array_size(runbooks), 3);
    const json_t *var = json_array_get(runbooks, 2);
    assert_string_equal(json_string_value(json_object_get(var, "runbook")), "fix-var-full");
    assert_int_equal(member(var, "applied"), 2);
    assert_int_equal(member(var, "recheck_passed"), 2);
    assert_int_equal(member(var, "recheck_failed"), 0);
    assert_int_equal(member(json_array_get(runbooks, 1), "recheck_failed"), 1);
    /* The text and CSV carry it too. */
    char *text = written(tl_report_write_text, report);
    assert_non_null(strstr(text, "Self-help: 4 suggested, 4 applied, 3 re-checks passed (1 "
                                 "failed); 1 deflected, 1 came back within 72 h, 1 within their "
                                 "72 h\n"));
    char *csv = written(tl_report_write_csv, report);
    assert_non_null(strstr(csv, "\r\narticle,suggested,applied,recheck_passed,recheck_failed,"
                                "deflected,came_back,watching\r\ncups-stopped,1,1,1,0,0,0,1\r\n"));
    assert_non_null(strstr(csv, "\r\nall,4,4,3,1,1,1,1\r\n"));
    assert_non_null(strstr(csv, "\r\n\r\nrunbook,applied,recheck_passed,recheck_failed\r\n"
                                "fix-cups-stopped,1,1,0\r\nfix-dns-down,1,0,1\r\n"
                                "fix-var-full,2,2,0\r\n"));
    assert_non_null(strstr(text, "\nRUNBOOK "));
    free(text);
    free(csv);
    json_decref(report);
}

static void test_bad_input_is_refused_with_its_reason(void **state)
{
    (void)state;
    tl_report_ticket_t good = ticket(1, 1, 1, 3, SINCE, HOUR, 0, 4 * HOUR);
    tl_report_ticket_t bad_tier = ticket(2, 1, 5, 3, SINCE, HOUR, 0, 4 * HOUR);
    tl_report_ticket_t bad_severity = ticket(3, 1, 1, 0, SINCE, HOUR, 0, 4 * HOUR);
    tl_report_escalation_t bad_escalation = {1, SINCE, 1, 7, 2};
    tl_report_problem_t untitled = {4, NULL, "fixed", 1, 1};
    tl_report_selfhelp_t bad_article = {"Tmp Full\x1b", NULL, TL_REPORT_APPLIED, SINCE, 0};
    tl_report_selfhelp_t bad_stage = {"tmp-full", "fix-tmp-full", TL_REPORT_STAGES, SINCE, 0};
    struct {
        tl_report_input_t in;
        const char *why;
    } cases[] = {
        {{UNTIL, SINCE, &good, 1, NULL, 0, NULL, 0, NULL, 0}, "the period ends before it starts"},
        {{SINCE, SINCE, &good, 1, NULL, 0, NULL, 0, NULL, 0}, "the period ends before it starts"},
        {{SINCE, UNTIL, &bad_tier, 1, NULL, 0, NULL, 0, NULL, 0}, "ticket 2: id, tier or severity"},
        {{SINCE, UNTIL, &bad_severity, 1, NULL, 0, NULL, 0, NULL, 0},
         "ticket 3: id, tier or severity"},
        {{SINCE, UNTIL, &good, 1, &bad_escalation, 1, NULL, 0, NULL, 0}, "escalation of ticket 1"},
        {{SINCE, UNTIL, &good, 1, NULL, 0, &untitled, 1, NULL, 0},
         "problem 4: no id, title or state"},
        {{SINCE, UNTIL, &good, TL_REPORT_ITEMS_MAX + 1, NULL, 0, NULL, 0, NULL, 0},
         "too many items"},
        {{SINCE, UNTIL, &good, 1, NULL, 0, NULL, 0, &bad_article, 1}, "self-help outcome 0"},
        {{SINCE, UNTIL, &good, 1, NULL, 0, NULL, 0, &bad_stage, 1}, "self-help outcome 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *report = (json_t *)1;
        char why[200] = "";
        TL_ASSERT_RC(TL_EINVAL, tl_report_build(&cases[i].in, &report, why, sizeof why));
        assert_null(report);
        if (strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].why);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_each_ticket_in_its_row_and_period),
        cmocka_unit_test(test_same_data_gives_the_same_bytes),
        cmocka_unit_test(test_other_parties_text_is_made_harmless),
        cmocka_unit_test(test_an_empty_period_reports_zeros_and_no_times),
        cmocka_unit_test(test_self_help_funnel_counts_only_what_held),
        cmocka_unit_test(test_bad_input_is_refused_with_its_reason),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
