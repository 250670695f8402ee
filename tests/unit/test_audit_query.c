/*
 * audit search as the store runs it (relay/store/audit_query.h), over a log written line by line:
 * each filter finds exactly its entries with their leaf index, a limit says there is more, a
 * damaged line is counted and skipped, and a pattern is refused when it is too long, uses a
 * back-reference or does not compile.
 */
#include "tl_test.h"

#include "relay/store/audit.h"
#include "relay/store/audit_query.h"

#include <stdlib.h>
#include <unistd.h>

struct fixture {
    char tmp[64];
    char log[128];
};

/* One line of the log; prev is not chained (a search does not check the chain). */
static void append(FILE *log, uint64_t seq, const char *time, const char *actor, const char *action,
                   const char *subject, const char *details_json)
{
    json_t *details = json_loads(details_json, 0, NULL);
    char *line = NULL;
    size_t len = 0;
    assert_non_null(details);
    TL_ASSERT_OK(tl_audit_format_line(seq, time, actor, action, subject, details,
                                      "0000000000000000000000000000000000000000000000000000000000"
                                      "000000",
                                      &line, &len));
    assert_int_equal(fwrite(line, 1, len, log), len);
    free(line);
    json_decref(details);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->tmp, "/tmp/tl-query-XXXXXX");
    if (mkdtemp(f->tmp) == NULL)
        return -1;
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->tmp);
    FILE *log = fopen(f->log, "w");
    if (log == NULL)
        return -1;
    append(log, 1, "2026-11-01T10:00:00.000Z", "relay", "relay.init", "", "{}");
    append(log, 2, "2026-11-02T10:00:00.000Z", "agent:D-1", "ticket.create", "T-1",
           "{\"device\":\"D-1\"}");
    append(log, 3, "2026-11-03T10:00:00.000Z", "tech:alice", "session.start", "T-1",
           "{\"type\":\"run\",\"device\":\"D-1\",\"grant\":\"G-7\",\"argv\":[\"rm\",\"-rf\","
           "\"/tmp/x\"]}");
    append(log, 4, "2026-11-04T10:00:00.000Z", "tech:bob", "ticket.note", "T-10",
           "{\"ticket\":\"T-10\"}");
    fputs("{not an entry}\n", log);
    append(log, 6, "2026-11-05T10:00:00.000Z", "tech:alice", "ticket.resolve", "T-1",
           "{\"runbook\":\"clean-temp\"}");
    fputs("{\"seq\":7,\"torn", log); /* a torn write: not a line */
    fclose(log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/audit.log", f->tmp);
    unlink(path);
    rmdir(f->tmp);
    free(f);
    return 0;
}

/* The leaf indexes of a search's hits. */
static void search(struct fixture *f, const tl_audit_query_t *query, const char *expected,
                   tl_audit_search_report_t *report)
{
    json_t *hits = NULL;
    TL_ASSERT_OK(tl_audit_search(f->log, query, &hits, report));
    char got[64] = "";
    size_t used = 0, i;
    json_t *hit;
    json_array_foreach(hits, i, hit) {
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%lld", i > 0 ? "," : "",
                                 (long long)json_integer_value(json_object_get(hit, "index")));
    }
    assert_string_equal(got, expected);
    json_decref(hits);
}

static void test_each_filter_finds_its_entries_with_their_leaf_index(void **state)
{
    struct fixture *f = *state;
    tl_audit_search_report_t report;
    regex_t rm;
    char why[256];
    TL_ASSERT_OK(tl_audit_pattern_compile("^rm ", &rm, why, sizeof why));
    /* unread: whether the line that is no entry was parsed (and counted) or passed over as one
     * that cannot hold what a filter asks for. */
    struct {
        tl_audit_query_t query;
        const char *expected;
        int unread;
    } cases[] = {
        {{.limit = 100}, "0,1,2,3,5", 1},
        /* T-1 is the subject or details.ticket, never T-10. */
        {{.ticket = "T-1", .limit = 100}, "1,2,5", 0},
        {{.ticket = "T-10", .limit = 100}, "3", 0},
        {{.actor = "alice", .limit = 100}, "2,5", 0},
        {{.actor = "tech:bob", .limit = 100}, "3", 0},
        {{.device = "D-1", .limit = 100}, "1,2", 0},
        {{.session = "G-7", .limit = 100}, "2", 0},
        {{.action = "ticket.", .limit = 100}, "1,3,5", 0},
        {{.action = "ticket", .limit = 100}, "", 0},
        {{.since_ms = 1793786400000, .limit = 100}, "3,5", 1}, /* 2026-11-04T10:00:00Z */
        {{.until_ms = 1793613600000, .limit = 100}, "0,1", 1}, /* 2026-11-02T10:00:00Z */
        {{.command = &rm, .limit = 100}, "2", 0},
        {{.command = &rm, .since_ms = 1793786400000, .limit = 100}, "", 0},
        {{.ticket = "T-1", .actor = "alice", .limit = 100}, "2,5", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        search(f, &cases[i].query, cases[i].expected, &report);
        assert_int_equal(report.scanned, 6);
        assert_int_equal(report.unreadable, cases[i].unread);
        assert_false(report.more);
    }
    regfree(&rm);
}

static void test_a_limit_says_there_is_more(void **state)
{
    struct fixture *f = *state;
    tl_audit_search_report_t report;
    tl_audit_query_t query = {.ticket = "T-1", .limit = 2};
    search(f, &query, "1,2", &report);
    assert_true(report.more);
    assert_int_equal(report.matched, 2);
    query.limit = 3;
    search(f, &query, "1,2,5", &report);
    assert_false(report.more);
}

static void test_hits_are_the_entries_as_the_log_holds_them(void **state)
{
    struct fixture *f = *state;
    tl_audit_search_report_t report;
    tl_audit_query_t query = {.session = "G-7", .limit = 1};
    json_t *hits = NULL;
    TL_ASSERT_OK(tl_audit_search(f->log, &query, &hits, &report));
    json_t *hit = json_array_get(hits, 0);
    assert_string_equal(json_string_value(json_object_get(hit, "action")), "session.start");
    assert_int_equal(json_integer_value(json_object_get(hit, "seq")), 3);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(hit, "details"), "argv"), 2)),
                        "/tmp/x");
    assert_non_null(json_object_get(hit, "hash"));
    json_decref(hits);
}

static void test_patterns_are_bounded(void **state)
{
    (void)state;
    regex_t pattern;
    char why[256], longest[TL_AUDIT_PATTERN_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[TL_AUDIT_PATTERN_MAX] = '\0';
    TL_ASSERT_OK(tl_audit_pattern_compile(longest, &pattern, why, sizeof why));
    regfree(&pattern);
    longest[TL_AUDIT_PATTERN_MAX] = 'a';
    longest[TL_AUDIT_PATTERN_MAX + 1] = '\0';
    TL_ASSERT_RC(TL_EINVAL, tl_audit_pattern_compile(longest, &pattern, why, sizeof why));
    assert_non_null(strstr(why, "at most 256 bytes"));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_pattern_compile("(a)\\1", &pattern, why, sizeof why));
    assert_non_null(strstr(why, "back-references"));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_pattern_compile("(unclosed", &pattern, why, sizeof why));
    assert_non_null(strstr(why, "not a POSIX extended regular expression"));
    /* An escaped backslash before a digit is a backslash and a digit, not a back-reference. */
    TL_ASSERT_OK(tl_audit_pattern_compile("a\\\\1", &pattern, why, sizeof why));
    assert_int_equal(regexec(&pattern, "a\\1", 0, NULL, 0), 0);
    regfree(&pattern);
}

static void test_no_log_finds_nothing(void **state)
{
    (void)state;
    tl_audit_search_report_t report;
    tl_audit_query_t query = {.limit = 10};
    json_t *hits = NULL;
    TL_ASSERT_OK(tl_audit_search("/nonexistent/audit.log", &query, &hits, &report));
    assert_int_equal(json_array_size(hits), 0);
    assert_int_equal(report.scanned, 0);
    json_decref(hits);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_filter_finds_its_entries_with_their_leaf_index,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_limit_says_there_is_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hits_are_the_entries_as_the_log_holds_them, setup,
                                        teardown),
        cmocka_unit_test(test_patterns_are_bounded),
        cmocka_unit_test(test_no_log_finds_nothing),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
