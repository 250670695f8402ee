/*
 * Consent on the agent (docs/consent.md): what a relay's session.request
 * must look like, what the unattended policy grants and when, and how
 * questions, grants, channel checks, ends and expiry behave.
 */
#include "tl_test.h"

#include "agent/consent.h"
#include "agent/files_requests.h"
#include "fake_writer.h"
#include "proto/text.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------------- */

static json_t *good_request(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:i}", "type", "session.request", "ticket",
                     "T-42", "technician", "alice", "role", "tier2", "scopes", "shell", "reason",
                     "join T-42", "duration_s", 3600);
}

static tl_consent_request_t request_for(const char *technician, const char *role, unsigned scopes,
                                        uint32_t duration_s)
{
    tl_consent_request_t request = {.scopes = scopes, .duration_s = duration_s};
    snprintf(request.ticket, sizeof request.ticket, "T-42");
    snprintf(request.technician, sizeof request.technician, "%s", technician);
    snprintf(request.role, sizeof request.role, "%s", role);
    snprintf(request.reason, sizeof request.reason, "join T-42");
    return request;
}

static struct tm local_time(int wday, int hour, int minute)
{
    struct tm tm = {.tm_wday = wday, .tm_hour = hour, .tm_min = minute, .tm_mday = 1};
    return tm;
}

static const char example_policy[] =
    "{\"unattended\":[{\"roles\":[\"tier2\",\"tier3\"],\"scopes\":[\"diag\",\"exec\",\"shell\","
    "\"fix\"],\"max_duration\":\"2h\",\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],"
    "\"from\":\"08:00\",\"to\":\"18:00\"}],\"consent_timeout\":\"2m\"}";

static tl_policy_t *parse_policy(const char *text, char *problem, size_t size)
{
    int err = 0;
    tl_policy_t *policy = tl_policy_parse(text, strlen(text), &err, problem, size);
    if (policy == NULL)
        assert_int_equal(err, TL_EINVAL);
    return policy;
}

/* A consent object on its own loop, recording what it tells its owner. */
struct fixture {
    char dir[64];
    uv_loop_t loop;
    tl_consent_t *consent;
    tl_storage_t *storage; /* a lane with the fake writer, when the test needs one */
    int answers;
    int last_error;
    char last_by[16];
    char last_grant[24];
    char last_message[256];
    int ended;
    char ended_grant[24];
    char ended_reason[64];
    int questions;
    char last_question[24];
    int denied_events;
    int approvals; /* tl_consent_approve's done callbacks */
    int approved_error;
    tl_grant_t approved;
    int commands; /* on_command answers */
    int command_error;
    uint64_t command_token;
    char command_message[256];
    char command_by[16];
    char command_line[512];    /* of the last command question */
    char command_decision[16]; /* of the last "command" event */
};

static int64_t fake_now_ms;

static int64_t fake_clock(void)
{
    return fake_now_ms;
}

static void on_answer(void *data, uint64_t token, const tl_consent_answer_t *answer)
{
    struct fixture *f = data;
    f->answers++;
    f->last_error = answer->error;
    snprintf(f->last_by, sizeof f->last_by, "%s", answer->by ? answer->by : "");
    snprintf(f->last_grant, sizeof f->last_grant, "%s", answer->grant ? answer->grant->id : "");
    snprintf(f->last_message, sizeof f->last_message, "%s", answer->message ? answer->message : "");
}

static void on_ended(void *data, const tl_grant_t *grant, const char *reason)
{
    struct fixture *f = data;
    f->ended++;
    snprintf(f->ended_grant, sizeof f->ended_grant, "%s", grant->id);
    snprintf(f->ended_reason, sizeof f->ended_reason, "%s", reason);
}

static void on_event(void *data, json_t *event)
{
    struct fixture *f = data;
    const char *kind = json_string_value(json_object_get(event, "event"));
    if (strcmp(kind, "question") == 0) {
        f->questions++;
        snprintf(f->last_question, sizeof f->last_question, "%s",
                 json_string_value(json_object_get(event, "id")));
        const char *line = json_string_value(json_object_get(event, "command_line"));
        snprintf(f->command_line, sizeof f->command_line, "%s", line ? line : "");
    } else if (strcmp(kind, "denied") == 0) {
        f->denied_events++;
    } else if (strcmp(kind, "command") == 0) {
        snprintf(f->command_decision, sizeof f->command_decision, "%s",
                 json_string_value(json_object_get(event, "decision")));
    }
}

static void on_command(void *data, uint64_t token, const tl_consent_answer_t *answer)
{
    struct fixture *f = data;
    f->commands++;
    f->command_error = answer->error;
    f->command_token = token;
    snprintf(f->command_message, sizeof f->command_message, "%s",
             answer->message ? answer->message : "");
    snprintf(f->command_by, sizeof f->command_by, "%s", answer->by ? answer->by : "");
}

static const tl_consent_events_t events = {on_answer, on_ended, on_event, on_command};

static void on_approved(void *data, int error, const tl_grant_t *grant, const char *message)
{
    struct fixture *f = data;
    (void)message;
    f->approvals++;
    f->approved_error = error;
    if (grant != NULL)
        f->approved = *grant;
}

static void tick(uv_timer_t *timer)
{
    (void)timer;
}

/*
 * Runs the loop until *count reaches want: grants are answered once their
 * write is done, off the loop. Bounded: a ticking timer wakes the loop, and
 * after 3,000 turns (about 30 s) the test fails naming what it waited for.
 */
static void settle(struct fixture *f, const int *count, int want, const char *what)
{
    uv_timer_t ticker;
    uv_timer_init(&f->loop, &ticker);
    uv_timer_start(&ticker, tick, 10, 10);
    for (int turn = 0; *count < want && turn < 3000; turn++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (*count < want)
        fail_msg("waited for %s: %d of %d", what, *count, want);
}

/* Runs the loop until grants.json holds what the consent knows (bounded like settle). */
static void settle_writes(struct fixture *f)
{
    int written = 0;
    uv_timer_t ticker;
    uv_timer_init(&f->loop, &ticker);
    uv_timer_start(&ticker, tick, 10, 10);
    for (int turn = 0; (written = !tl_consent_writing(f->consent)) == 0 && turn < 3000; turn++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!written)
        fail_msg("grants.json was still being written after 3000 loop turns");
}

/* approve, answering yes with how (TL_CONSENT_EACH, TL_CONSENT_KEEP). */
static int approve_how(struct fixture *f, const char *id, uint32_t duration_s, unsigned how,
                       char *message, size_t size)
{
    int before = f->approvals;
    int rc = tl_consent_approve(f->consent, id, duration_s, how, on_approved, f, message, size);
    if (rc != 0)
        return rc;
    settle(f, &f->approvals, before + 1, "the approval to be recorded");
    return f->approved_error;
}

/* What `tierline-agent approve` does: approve, then wait until the grant is on disk. */
static int approve(struct fixture *f, const char *id, uint32_t duration_s, char *message,
                   size_t size)
{
    int before = f->approvals;
    int rc = tl_consent_approve(f->consent, id, duration_s, 0, on_approved, f, message, size);
    if (rc != 0)
        return rc;
    settle(f, &f->approvals, before + 1, "the approval to be recorded");
    return f->approved_error;
}

static void fixture_open(struct fixture *f, tl_policy_t *policy, uint64_t timeout_ms,
                         int64_t (*clock)(void))
{
    char problem[256] = "";
    int err = 0;
    tl_consent_config_t config = {f->dir, policy, timeout_ms, clock, f->storage};
    f->consent = tl_consent_new(&f->loop, &config, &events, f, &err, problem, sizeof problem);
    if (f->consent == NULL)
        fail_msg("tl_consent_new: %s (%s)", problem, tl_strerror(err));
}

static void fixture_close(struct fixture *f)
{
    tl_consent_free(f->consent);
    f->consent = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static struct fixture *fixture_new_with(tl_policy_t *policy, uint64_t timeout_ms,
                                        int64_t (*clock)(void), const tl_storage_config_t *writer)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tl-consent-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (writer != NULL) {
        int err = 0;
        fake_reset();
        f->storage = tl_storage_new(&f->loop, writer, &err);
        assert_non_null(f->storage);
    }
    fixture_open(f, policy, timeout_ms, clock);
    return f;
}

static struct fixture *fixture_new(tl_policy_t *policy, uint64_t timeout_ms, int64_t (*clock)(void))
{
    return fixture_new_with(policy, timeout_ms, clock, NULL);
}

static void fixture_free(struct fixture *f)
{
    char path[128];
    fake_set_hold(0);
    if (f->consent != NULL)
        fixture_close(f);
    tl_storage_free(f->storage);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    fake_reset();
    assert_int_equal(uv_loop_close(&f->loop), 0);
    snprintf(path, sizeof path, "%s/%s", f->dir, TL_CONSENT_GRANTS_FILE);
    unlink(path);
    rmdir(f->dir);
    free(f);
}

static json_t *grants_file(const struct fixture *f)
{
    char path[128];
    json_error_t error;
    snprintf(path, sizeof path, "%s/%s", f->dir, TL_CONSENT_GRANTS_FILE);
    return json_load_file(path, 0, &error);
}

/* ---- session.request ------------------------------------------------------------- */

static void test_request_parse_accepts_the_documented_request(void **state)
{
    (void)state;
    json_t *body = good_request();
    tl_consent_request_t request;
    char message[256] = "";
    TL_ASSERT_OK(tl_consent_request_parse(body, &request, message, sizeof message));
    assert_string_equal(request.ticket, "T-42");
    assert_string_equal(request.technician, "alice");
    assert_string_equal(request.role, "tier2");
    assert_int_equal(request.scopes, TL_SCOPE_SHELL);
    assert_int_equal(request.duration_s, 3600);
    json_decref(body);
}

static void test_request_parse_names_each_bad_member(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        const char *json; /* NULL: delete the member */
        const char *needle;
    } cases[] = {
        {"ticket", NULL, "\"ticket\""},
        {"ticket", "\"\"", "\"ticket\""},
        {"technician", "\"al\\u001bice\"", "\"technician\""},
        {"technician", "7", "\"technician\""},
        {"role", "\"boss\"", "\"role\""},
        {"scopes", "[]", "\"scopes\""},
        {"scopes", "\"shell\"", "\"scopes\""},
        {"scopes", "[\"shell\",\"shell\"]", "twice"},
        {"scopes", "[\"root\"]", "not a scope"},
        {"duration_s", "59", "\"duration_s\""},
        {"duration_s", "86401", "\"duration_s\""},
        {"duration_s", "\"1h\"", "\"duration_s\""},
        {"reason", NULL, "\"reason\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = good_request();
        if (cases[i].json == NULL) {
            json_object_del(body, cases[i].key);
        } else {
            json_error_t error;
            json_object_set_new(body, cases[i].key,
                                json_loads(cases[i].json, JSON_DECODE_ANY, &error));
        }
        tl_consent_request_t request;
        char message[256] = "";
        int rc = tl_consent_request_parse(body, &request, message, sizeof message);
        if (rc != TL_EINVAL || strstr(message, cases[i].needle) == NULL)
            fail_msg("case %zu (%s=%s): rc %d, message '%s', expected EINVAL naming '%s'", i,
                     cases[i].key, cases[i].json ? cases[i].json : "(missing)", rc, message,
                     cases[i].needle);
        json_decref(body);
    }
    char long_reason[1100];
    memset(long_reason, 'x', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = '\0';
    json_t *body = good_request();
    json_object_set_new(body, "reason", json_string(long_reason));
    tl_consent_request_t request;
    char message[256];
    TL_ASSERT_RC(TL_EINVAL, tl_consent_request_parse(body, &request, message, sizeof message));
    json_decref(body);
    TL_ASSERT_RC(TL_EINVAL, tl_consent_request_parse(NULL, &request, message, sizeof message));
}

/* ---- policy ------------------------------------------------------------------------ */

static void test_policy_example_grants_inside_its_window_only(void **state)
{
    (void)state;
    char problem[256] = "";
    tl_policy_t *policy = parse_policy(example_policy, problem, sizeof problem);
    if (policy == NULL)
        fail_msg("the documented example does not parse: %s", problem);
    uint32_t granted = 0;
    struct tm tuesday_noon = local_time(2, 12, 0);
    TL_ASSERT_OK(tl_policy_match(policy, "tier2", TL_SCOPE_SHELL | TL_SCOPE_EXEC, &tuesday_noon,
                                 3600, &granted));
    assert_int_equal(granted, 3600);
    /* The duration asked is capped at max_duration. */
    TL_ASSERT_OK(tl_policy_match(policy, "tier3", TL_SCOPE_DIAG, &tuesday_noon, 86400, &granted));
    assert_int_equal(granted, 7200);
    /* from is inclusive, to is not. */
    struct tm at_eight = local_time(2, 8, 0), at_six = local_time(2, 18, 0);
    TL_ASSERT_OK(tl_policy_match(policy, "tier2", TL_SCOPE_DIAG, &at_eight, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier2", TL_SCOPE_DIAG, &at_six, 600, &granted));
    /* Outside the hours, on a weekend, another role, a scope the rule lacks. */
    struct tm tuesday_night = local_time(2, 22, 0), sunday_noon = local_time(0, 12, 0);
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier2", TL_SCOPE_SHELL, &tuesday_night, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier2", TL_SCOPE_SHELL, &sunday_noon, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &tuesday_noon, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED, tl_policy_match(policy, "tier2", TL_SCOPE_SHELL | TL_SCOPE_OBSERVE,
                                             &tuesday_noon, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "auditor", TL_SCOPE_DIAG, &tuesday_noon, 600, &granted));
    assert_int_equal(tl_policy_consent_timeout_ms(policy), 120000);
    tl_policy_free(policy);
}

static void test_policy_window_spanning_midnight_belongs_to_its_first_day(void **state)
{
    (void)state;
    char problem[256] = "";
    tl_policy_t *policy =
        parse_policy("{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],"
                     "\"days\":[\"fri\"],\"from\":\"22:00\",\"to\":\"06:00\"}]}",
                     problem, sizeof problem);
    assert_non_null(policy);
    uint32_t granted = 0;
    struct tm friday_late = local_time(5, 23, 30), saturday_early = local_time(6, 3, 0);
    struct tm friday_early = local_time(5, 3, 0), saturday_late = local_time(6, 23, 0);
    struct tm friday_noon = local_time(5, 12, 0);
    TL_ASSERT_OK(tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &friday_late, 600, &granted));
    TL_ASSERT_OK(tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &saturday_early, 600, &granted));
    assert_int_equal(granted, 600);
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &friday_early, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &saturday_late, 600, &granted));
    TL_ASSERT_RC(TL_EDENIED,
                 tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &friday_noon, 600, &granted));
    /* Without a window, every hour of the listed days; default max_duration 1h. */
    tl_policy_free(policy);
    policy = parse_policy("{\"unattended\":[{\"roles\":[\"tier4\"],\"scopes\":[\"observe\"]}]}",
                          problem, sizeof problem);
    assert_non_null(policy);
    struct tm sunday_night = local_time(0, 2, 0);
    TL_ASSERT_OK(
        tl_policy_match(policy, "tier4", TL_SCOPE_OBSERVE, &sunday_night, 86400, &granted));
    assert_int_equal(granted, 3600);
    assert_int_equal(tl_policy_consent_timeout_ms(policy), 0);
    tl_policy_free(policy);
}

static void test_policy_rejects_what_it_does_not_understand(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {"{", "not JSON"},
        {"[]", "object"},
        {"{\"unatended\":[]}", "unknown member \"unatended\""},
        {"{\"unattended\":{}}", "\"unattended\""},
        {"{\"unattended\":[{\"roles\":[\"tier9\"],\"scopes\":[\"diag\"]}]}",
         "unknown role 'tier9'"},
        {"{\"unattended\":[{\"roles\":[\"auditor\"],\"scopes\":[\"diag\"]}]}", "never gets"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"root\"]}]}",
         "unknown scope 'root'"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[]}]}", "\"scopes\""},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"days\":[\"fr\"]}]}",
         "unknown day 'fr'"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"from\":\"08:00\"}]}",
         "go together"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"from\":\"8am\","
         "\"to\":\"18:00\"}]}",
         "times like"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"from\":\"24:00\","
         "\"to\":\"18:00\"}]}",
         "times like"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"from\":\"08:00\","
         "\"to\":\"08:00\"}]}",
         "same time"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"max_duration\":\"2y\"}]}",
         "max_duration"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"max_duration\":\"2d\"}]}",
         "max_duration"},
        {"{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"hours\":1}]}",
         "unknown member \"hours\""},
        {"{\"consent_timeout\":\"0s\"}", "consent_timeout"},
        {"{\"consent_timeout\":true}", "consent_timeout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char problem[256] = "";
        tl_policy_t *policy = parse_policy(cases[i].text, problem, sizeof problem);
        if (policy != NULL || strstr(problem, cases[i].needle) == NULL)
            fail_msg("case %zu (%s): %s, problem '%s', expected one naming '%s'", i, cases[i].text,
                     policy ? "accepted" : "refused", problem, cases[i].needle);
    }
}

/*
 * An integer duration is seconds, bounded before it is used: 18446744073709553
 * seconds, counted in milliseconds, wrapped past 2^64 to about 1 s and was
 * accepted (found with fuzz_consent).
 */
static void test_policy_integer_durations_are_bounded(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],"
        "\"max_duration\":18446744073709553}]}",
        "{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],"
        "\"max_duration\":9223372036854775807}]}",
        "{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],\"max_duration\":86401}]}",
        "{\"consent_timeout\":18446744073709553}",
        "{\"consent_timeout\":86401}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char problem[256] = "";
        tl_policy_t *policy = parse_policy(refused[i], problem, sizeof problem);
        if (policy != NULL)
            fail_msg("accepted %s (consent timeout %llu ms)", refused[i],
                     (unsigned long long)tl_policy_consent_timeout_ms(policy));
        if (strstr(problem, "max_duration") == NULL && strstr(problem, "consent_timeout") == NULL)
            fail_msg("%s: problem '%s' names neither duration", refused[i], problem);
    }
    /* A whole day is the most either may be, and is granted as such. */
    char problem[256] = "";
    tl_policy_t *policy =
        parse_policy("{\"unattended\":[{\"roles\":[\"tier1\"],\"scopes\":[\"diag\"],"
                     "\"max_duration\":86400}],\"consent_timeout\":86400}",
                     problem, sizeof problem);
    assert_non_null(policy);
    assert_int_equal(tl_policy_consent_timeout_ms(policy), 86400u * 1000u);
    struct tm monday_noon = {.tm_wday = 1, .tm_hour = 12};
    uint32_t granted = 0;
    TL_ASSERT_OK(tl_policy_match(policy, "tier1", TL_SCOPE_DIAG, &monday_noon, 86400, &granted));
    assert_int_equal(granted, 86400);
    tl_policy_free(policy);
}

static void test_policy_load_names_a_missing_file(void **state)
{
    (void)state;
    char problem[256] = "";
    int err = 0;
    assert_null(tl_policy_load("/nonexistent/policy.json", &err, problem, sizeof problem));
    assert_int_equal(err, -ENOENT);
}

/* ---- questions and grants -------------------------------------------------------------- */

static void test_auditor_and_admin_are_refused_without_a_question(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("eve", "auditor", TL_SCOPE_DIAG, 600);
    tl_consent_request(f->consent, &request, 1);
    assert_int_equal(f->answers, 1);
    TL_ASSERT_RC(TL_EDENIED, f->last_error);
    assert_non_null(strstr(f->last_message, "auditor"));
    request = request_for("root", "admin", TL_SCOPE_SHELL, 600);
    tl_consent_request(f->consent, &request, 2);
    assert_int_equal(f->answers, 2);
    TL_ASSERT_RC(TL_EDENIED, f->last_error);
    assert_int_equal(f->questions, 0);
    json_t *pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 0);
    json_decref(pending);
    fixture_free(f);
}

static void test_approved_question_becomes_a_durable_grant(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 7);
    assert_int_equal(f->answers, 0);
    assert_int_equal(f->questions, 1);
    assert_string_equal(f->last_question, "Q-1");
    json_t *pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pending, 0), "id")),
                        "Q-1");
    json_decref(pending);

    char message[256] = "";
    /* The user may shorten what was asked, never lengthen it. */
    TL_ASSERT_RC(TL_EINVAL, approve(f, "Q-1", 7200, message, sizeof message));
    assert_non_null(strstr(message, "1h0m"));
    TL_ASSERT_RC(TL_ENOTFOUND, approve(f, "Q-9", 0, message, sizeof message));
    TL_ASSERT_OK(approve(f, "Q-1", 600, message, sizeof message));
    assert_int_equal(f->answers, 1);
    TL_ASSERT_OK(f->last_error);
    assert_string_equal(f->last_by, "user");
    assert_string_equal(f->last_grant, "G-1");
    assert_int_equal(f->approved.expires_ms - f->approved.granted_ms, 600 * 1000);

    /* On disk before the answer, and still there for the next run, with the next id. */
    json_t *file = grants_file(f);
    assert_non_null(file);
    assert_int_equal(json_array_size(json_object_get(file, "grants")), 1);
    json_decref(file);
    struct stat st;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, TL_CONSENT_GRANTS_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    fixture_close(f);
    fixture_open(f, NULL, 0, NULL);
    assert_non_null(tl_consent_find(f->consent, "G-1"));
    request = request_for("bob", "tier2", TL_SCOPE_EXEC, 600);
    tl_consent_request(f->consent, &request, 8);
    TL_ASSERT_OK(approve(f, f->last_question, 0, message, sizeof message));
    assert_string_equal(f->approved.id, "G-2");
    fixture_free(f);
}

static void test_denied_question_answers_edenied(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 3);
    char message[256];
    TL_ASSERT_OK(tl_consent_deny(f->consent, "Q-1", message, sizeof message));
    assert_int_equal(f->answers, 1);
    TL_ASSERT_RC(TL_EDENIED, f->last_error);
    assert_int_equal(f->denied_events, 1);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_consent_deny(f->consent, "Q-1", message, sizeof message));
    json_t *grants = tl_consent_grants(f->consent);
    assert_int_equal(json_array_size(grants), 0);
    json_decref(grants);
    fixture_free(f);
}

static void test_unanswered_question_times_out(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 20, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 3);
    while (f->answers == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    TL_ASSERT_RC(TL_ETIMEOUT, f->last_error);
    json_t *pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 0);
    json_decref(pending);
    fixture_free(f);
}

static void test_cancelled_question_gets_no_answer(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 11);
    tl_consent_request(f->consent, &request, 12);
    TL_ASSERT_OK(tl_consent_cancel(f->consent, 11, "withdrawn"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_consent_cancel(f->consent, 11, "withdrawn"));
    json_t *pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 1);
    json_decref(pending);
    tl_consent_cancel_all(f->consent, "connection dropped");
    pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 0);
    json_decref(pending);
    assert_int_equal(f->answers, 0);
    char message[256];
    TL_ASSERT_RC(TL_ENOTFOUND, approve(f, "Q-1", 0, message, sizeof message));
    fixture_free(f);
}

static void test_too_many_questions_are_refused(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    for (uint64_t i = 1; i <= TL_CONSENT_MAX_PENDING; i++)
        tl_consent_request(f->consent, &request, i);
    assert_int_equal(f->answers, 0);
    tl_consent_request(f->consent, &request, 999);
    assert_int_equal(f->answers, 1);
    TL_ASSERT_RC(TL_EFULL, f->last_error);
    fixture_free(f);
}

static void test_live_grant_is_reused_without_a_question(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request =
        request_for("alice", "tier2", TL_SCOPE_SHELL | TL_SCOPE_EXEC, 3600);
    tl_consent_request(f->consent, &request, 1);
    char message[256];
    TL_ASSERT_OK(approve(f, "Q-1", 0, message, sizeof message));
    /* A subset of the scopes, same ticket and technician: at once. */
    request = request_for("alice", "tier2", TL_SCOPE_EXEC, 600);
    tl_consent_request(f->consent, &request, 2);
    assert_int_equal(f->answers, 2);
    TL_ASSERT_OK(f->last_error);
    assert_string_equal(f->last_by, "existing");
    assert_string_equal(f->last_grant, "G-1");
    assert_int_equal(f->questions, 1);
    /* Another technician, or a scope the grant lacks: a new question. */
    request = request_for("mallory", "tier2", TL_SCOPE_EXEC, 600);
    tl_consent_request(f->consent, &request, 3);
    request = request_for("alice", "tier2", TL_SCOPE_DIAG, 600);
    tl_consent_request(f->consent, &request, 4);
    assert_int_equal(f->answers, 2);
    assert_int_equal(f->questions, 3);
    fixture_free(f);
}

static void test_policy_grants_without_asking(void **state)
{
    (void)state;
    char problem[256];
    tl_policy_t *policy =
        parse_policy("{\"unattended\":[{\"roles\":[\"tier2\"],\"scopes\":[\"diag\",\"exec\"],"
                     "\"max_duration\":\"10m\"}]}",
                     problem, sizeof problem);
    assert_non_null(policy);
    struct fixture *f = fixture_new(policy, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_EXEC, 3600);
    tl_consent_request(f->consent, &request, 1);
    settle(f, &f->answers, 1, "the policy's grant to be recorded");
    assert_int_equal(f->answers, 1);
    TL_ASSERT_OK(f->last_error);
    assert_string_equal(f->last_by, "policy");
    const tl_grant_t *grant = tl_consent_find(f->consent, f->last_grant);
    assert_non_null(grant);
    assert_int_equal(grant->expires_ms - grant->granted_ms, 600 * 1000);
    /* Not covered by the policy: asked. */
    request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 2);
    assert_int_equal(f->answers, 1);
    assert_int_equal(f->questions, 1);
    fixture_free(f);
}

static void test_channel_check_names_the_failed_check(void **state)
{
    (void)state;
    fake_now_ms = 1700000000000;
    struct fixture *f = fixture_new(NULL, 0, fake_clock);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_DIAG, 600);
    tl_consent_request(f->consent, &request, 1);
    char message[256];
    TL_ASSERT_OK(approve(f, "Q-1", 0, message, sizeof message));
    const tl_grant_t *grant = NULL;
    TL_ASSERT_OK(
        tl_consent_check(f->consent, "G-1", "alice", "diag", &grant, message, sizeof message));
    assert_string_equal(grant->ticket, "T-42");
    static const struct {
        const char *grant, *technician, *type;
        int rc;
        const char *needle;
    } cases[] = {
        {"G-1", "alice", "exec", TL_EDENIED, "does not allow exec"},
        {"G-1", "alice", "runbook", TL_EDENIED, "does not allow runbook"},
        {"G-1", "mallory", "diag", TL_EDENIED, "technician alice, not 'mallory'"},
        {"G-1", NULL, "diag", TL_EDENIED, "technician"},
        {"G-9", "alice", "diag", TL_EDENIED, "no grant 'G-9'"},
        {NULL, "alice", "diag", TL_EDENIED, "names no grant"},
        {"G-1", "alice", "upload", TL_EINVAL, "unknown channel type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        message[0] = '\0';
        int rc = tl_consent_check(f->consent, cases[i].grant, cases[i].technician, cases[i].type,
                                  &grant, message, sizeof message);
        if (rc != cases[i].rc || strstr(message, cases[i].needle) == NULL)
            fail_msg("case %zu: rc %s, message '%s'; expected %s naming '%s'", i, tl_err_name(rc),
                     message, tl_err_name(cases[i].rc), cases[i].needle);
    }
    /* After its expiry the grant is refused, and a fresh question would be needed. */
    fake_now_ms += 600 * 1000;
    TL_ASSERT_RC(TL_EDENIED, tl_consent_check(f->consent, "G-1", "alice", "diag", &grant, message,
                                              sizeof message));
    assert_non_null(strstr(message, "expired"));
    assert_null(tl_consent_find(f->consent, "G-1"));
    fixture_free(f);
}

static void test_scopes_map_to_channel_types(void **state)
{
    (void)state;
    assert_int_equal(tl_scope_for_channel("exec"), TL_SCOPE_EXEC);
    assert_int_equal(tl_scope_for_channel("shell"), TL_SCOPE_SHELL);
    assert_int_equal(tl_scope_for_channel("observe"), TL_SCOPE_OBSERVE);
    assert_int_equal(tl_scope_for_channel("diag"), TL_SCOPE_DIAG);
    assert_int_equal(tl_scope_for_channel("runbook"), TL_SCOPE_FIX);
    assert_int_equal(tl_scope_for_channel("fix"), 0);
    assert_int_equal(tl_scope_for_channel("files"), 0);
    assert_int_equal(tl_scope_for_channel(NULL), 0);
    char text[64];
    tl_scope_text(TL_SCOPE_DIAG | TL_SCOPE_SHELL, text, sizeof text);
    assert_string_equal(text, "diag, shell");
    tl_consent_duration_text(3600, text, sizeof text);
    assert_string_equal(text, "1h0m");
    tl_consent_duration_text(125, text, sizeof text);
    assert_string_equal(text, "2m5s");
    tl_consent_duration_text(45, text, sizeof text);
    assert_string_equal(text, "45s");
}

static void test_ended_grant_refuses_channels_and_is_recorded(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    char message[256];
    size_t count = 0;
    tl_consent_request(f->consent, &request, 1);
    TL_ASSERT_OK(approve(f, "Q-1", 0, message, sizeof message));
    request = request_for("bob", "tier3", TL_SCOPE_EXEC, 3600);
    tl_consent_request(f->consent, &request, 2);
    TL_ASSERT_OK(approve(f, "Q-2", 0, message, sizeof message));

    TL_ASSERT_RC(TL_ENOTFOUND, tl_consent_end(f->consent, "G-7", "ended by the user", &count,
                                              message, sizeof message));
    TL_ASSERT_OK(
        tl_consent_end(f->consent, "G-1", "ended by the user", &count, message, sizeof message));
    assert_int_equal(count, 1);
    assert_int_equal(f->ended, 1);
    assert_string_equal(f->ended_grant, "G-1");
    assert_string_equal(f->ended_reason, "ended by the user");
    TL_ASSERT_RC(TL_EDENIED, tl_consent_check(f->consent, "G-1", "alice", "shell", NULL, message,
                                              sizeof message));
    assert_non_null(strstr(message, "was ended"));
    /* A repeat finds nothing live; ending all takes the rest. */
    TL_ASSERT_RC(TL_ENOTFOUND,
                 tl_consent_end(f->consent, "G-1", "again", &count, message, sizeof message));
    TL_ASSERT_OK(
        tl_consent_end(f->consent, NULL, "ended by the user", &count, message, sizeof message));
    assert_int_equal(count, 1);
    assert_int_equal(f->ended, 2);
    TL_ASSERT_OK(
        tl_consent_end(f->consent, NULL, "ended by the user", &count, message, sizeof message));
    assert_int_equal(count, 0);

    /* The record keeps who, what, and how it ended; the same ticket must be asked again. */
    settle_writes(f);
    json_t *file = grants_file(f);
    json_t *first = json_array_get(json_object_get(file, "grants"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "end_reason")),
                        "ended by the user");
    assert_true(json_integer_value(json_object_get(first, "ended_ms")) > 0);
    json_decref(file);
    request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 3);
    assert_int_equal(f->questions, 3);
    json_t *grants = tl_consent_grants(f->consent);
    assert_int_equal(json_array_size(grants), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(grants, 0), "state")),
                        "ended");
    json_decref(grants);
    fixture_free(f);
}

static void test_grant_ends_at_its_expiry(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    char message[256];
    tl_consent_request(f->consent, &request, 1);
    TL_ASSERT_OK(approve(f, "Q-1", 1, message, sizeof message));
    /* The loop has the expiry timer; it fires once the second is over. */
    while (f->ended == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_string_equal(f->ended_grant, "G-1");
    assert_string_equal(f->ended_reason, "expired");
    assert_null(tl_consent_find(f->consent, "G-1"));
    json_t *grants = tl_consent_grants(f->consent);
    assert_string_equal(json_string_value(json_object_get(json_array_get(grants, 0), "state")),
                        "expired");
    json_decref(grants);
    fixture_free(f);
}

static void test_old_records_are_dropped_after_a_week(void **state)
{
    (void)state;
    fake_now_ms = 1700000000000;
    struct fixture *f = fixture_new(NULL, 0, fake_clock);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    char message[256];
    tl_consent_request(f->consent, &request, 1);
    TL_ASSERT_OK(approve(f, "Q-1", 0, message, sizeof message));
    fixture_close(f);
    fake_now_ms += 3600 * 1000 + TL_CONSENT_KEEP_MS - 1000;
    fixture_open(f, NULL, 0, fake_clock);
    json_t *grants = tl_consent_grants(f->consent);
    assert_int_equal(json_array_size(grants), 1);
    json_decref(grants);
    fixture_close(f);
    fake_now_ms += 2000;
    fixture_open(f, NULL, 0, fake_clock);
    grants = tl_consent_grants(f->consent);
    assert_int_equal(json_array_size(grants), 0);
    json_decref(grants);
    /* Ids are never reused, even once the records are gone. */
    tl_consent_request(f->consent, &request, 2);
    TL_ASSERT_OK(approve(f, "Q-1", 0, message, sizeof message));
    assert_string_equal(f->last_grant, "G-2");
    fixture_free(f);
}

static void test_damaged_grants_file_is_a_startup_error(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{not json",
        "{\"grants\":[]}",
        "{\"next_id\":1,\"grants\":[{\"id\":\"G-1\"}]}",
        "{\"next_id\":2,\"grants\":[{\"id\":\"G-1\",\"ticket\":\"T-1\",\"technician\":\"a\","
        "\"role\":\"admin\",\"scopes\":[\"shell\"],\"reason\":\"\",\"by\":\"user\","
        "\"granted_ms\":1,\"expires_ms\":2}]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct fixture *f = fixture_new(NULL, 0, NULL);
        fixture_close(f);
        char path[128], problem[512] = "";
        snprintf(path, sizeof path, "%s/%s", f->dir, TL_CONSENT_GRANTS_FILE);
        FILE *file = fopen(path, "w");
        assert_non_null(file);
        fputs(bodies[i], file);
        fclose(file);
        int err = 0;
        tl_consent_config_t config = {f->dir, NULL, 0, NULL, NULL};
        assert_null(tl_consent_new(&f->loop, &config, &events, f, &err, problem, sizeof problem));
        if (err != TL_EINVAL || strstr(problem, path) == NULL)
            fail_msg("body %zu: err %s, problem '%s'; expected EINVAL naming %s", i,
                     tl_err_name(err), problem, path);
        fixture_free(f);
    }
}

/* ---- grants.json is written off the loop -------------------------------------------- */

static int ticks, ticks_held;

static void count_tick(uv_timer_t *timer)
{
    (void)timer;
    ticks++;
    if (fake_get(&fake.hold) && fake_get(&fake.started) > fake_get(&fake.finished))
        ticks_held++;
}

/* Turns the loop (bounded) until the fake writer has begun n writes. */
static void wait_writes_started(struct fixture *f, int n)
{
    uv_timer_t ticker;
    uv_timer_init(&f->loop, &ticker);
    uv_timer_start(&ticker, count_tick, 5, 5);
    for (int turn = 0; fake_get(&fake.started) < n && turn < 6000; turn++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (fake_get(&fake.started) < n)
        fail_msg("grants.json writes begun: %d, expected %d", fake_get(&fake.started), n);
}

static void test_grant_is_answered_once_on_disk_and_the_loop_runs_meanwhile(void **state)
{
    (void)state;
    struct fixture *f = fixture_new_with(NULL, 0, NULL, &fake_config);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 7);
    fake_set_hold(1);
    char message[256] = "";
    TL_ASSERT_OK(
        tl_consent_approve(f->consent, "Q-1", 0, 0, on_approved, f, message, sizeof message));
    wait_writes_started(f, 1);
    /* The write is stuck in the writer: timers still fire, and nothing is granted yet. */
    ticks = ticks_held = 0;
    uv_timer_t ticker;
    uv_timer_init(&f->loop, &ticker);
    uv_timer_start(&ticker, count_tick, 5, 5);
    for (int turn = 0; ticks_held < 20 && turn < 6000 && !fake_get(&fake.timed_out); turn++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (ticks_held < 20)
        fail_msg("the loop ran %d timer ticks while grants.json was being written (expected 20)",
                 ticks_held);
    assert_int_equal(f->answers, 0);
    assert_int_equal(f->approvals, 0);
    assert_true(tl_consent_writing(f->consent));
    TL_ASSERT_RC(TL_EDENIED, tl_consent_check(f->consent, "G-1", "alice", "shell", NULL, message,
                                              sizeof message));
    assert_non_null(strstr(message, "being recorded"));
    assert_null(tl_consent_find(f->consent, "G-1"));
    json_t *grants = tl_consent_grants(f->consent);
    assert_int_equal(json_array_size(grants), 0);
    json_decref(grants);
    /* Released: the relay and the user hear "granted", and the grant is on disk. */
    fake_set_hold(0);
    settle(f, &f->answers, 1, "the answer");
    TL_ASSERT_OK(f->last_error);
    assert_string_equal(f->last_grant, "G-1");
    settle(f, &f->approvals, 1, "the approval");
    if (pthread_equal(fake.threads[0], pthread_self()))
        fail_msg("grants.json was written on the loop's thread");
    json_t *file = grants_file(f);
    assert_int_equal(json_array_size(json_object_get(file, "grants")), 1);
    json_decref(file);
    TL_ASSERT_OK(
        tl_consent_check(f->consent, "G-1", "alice", "shell", NULL, message, sizeof message));
    fixture_free(f);
}

static void test_grants_file_writes_keep_order_and_the_latest_state_wins(void **state)
{
    (void)state;
    struct fixture *f = fixture_new_with(NULL, 0, NULL, &fake_config);
    char message[256] = "";
    size_t count = 0;
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 1);
    request = request_for("bob", "tier2", TL_SCOPE_EXEC, 3600);
    tl_consent_request(f->consent, &request, 2);
    request = request_for("carol", "tier3", TL_SCOPE_DIAG, 3600);
    tl_consent_request(f->consent, &request, 3);
    TL_ASSERT_OK(approve(f, "Q-1", 0, message, sizeof message)); /* G-1, written */
    fake_set_hold(1);
    /* While one write is stuck: a grant, an end, another grant. */
    TL_ASSERT_OK(
        tl_consent_approve(f->consent, "Q-2", 0, 0, on_approved, f, message, sizeof message));
    wait_writes_started(f, 2);
    TL_ASSERT_OK(
        tl_consent_end(f->consent, "G-1", "ended by the user", &count, message, sizeof message));
    TL_ASSERT_OK(
        tl_consent_approve(f->consent, "Q-3", 0, 0, on_approved, f, message, sizeof message));
    assert_int_equal(fake_get(&fake.started), 2); /* one write at a time */
    fake_set_hold(0);
    settle(f, &f->approvals, 3, "both approvals");
    settle_writes(f);
    /* Writes: G-1; G-1 and G-2; then the latest state, once. */
    assert_int_equal(fake_get(&fake.started), 3);
    json_int_t last_next_id = 0;
    for (int i = 0; i < 3; i++) {
        json_error_t error;
        json_t *doc = json_loads(fake.texts[i], 0, &error);
        assert_non_null(doc);
        json_int_t next_id = json_integer_value(json_object_get(doc, "next_id"));
        if (next_id < last_next_id)
            fail_msg("write %d holds next_id %lld after one with %lld: an older state was "
                     "written after a newer one",
                     i, (long long)next_id, (long long)last_next_id);
        last_next_id = next_id;
        json_decref(doc);
    }
    json_t *file = grants_file(f);
    json_t *grants = json_object_get(file, "grants");
    assert_int_equal(json_integer_value(json_object_get(file, "next_id")), 4);
    assert_int_equal(json_array_size(grants), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(grants, 0), "end_reason")),
                        "ended by the user");
    assert_string_equal(json_string_value(json_object_get(json_array_get(grants, 2), "id")), "G-3");
    json_decref(file);
    fixture_free(f);
}

static void test_failed_grant_write_answers_eio_and_grants_nothing(void **state)
{
    (void)state;
    struct fixture *f = fixture_new_with(NULL, 0, NULL, &fake_config);
    char message[256] = "";
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 1);
    fake.fail = -ENOSPC;
    TL_ASSERT_RC(TL_EIO, approve(f, "Q-1", 0, message, sizeof message));
    assert_int_equal(f->answers, 1);
    TL_ASSERT_RC(TL_EIO, f->last_error);
    assert_int_equal(f->denied_events, 1);
    TL_ASSERT_RC(TL_EDENIED, tl_consent_check(f->consent, "G-1", "alice", "shell", NULL, message,
                                              sizeof message));
    json_t *grants = tl_consent_grants(f->consent);
    assert_int_equal(json_array_size(grants), 0);
    json_decref(grants);
    /* The disk is back: the next grant is given, under a new id. */
    fake.fail = 0;
    tl_consent_request(f->consent, &request, 2);
    TL_ASSERT_OK(approve(f, f->last_question, 0, message, sizeof message));
    assert_string_equal(f->approved.id, "G-2");
    json_t *file = grants_file(f);
    assert_int_equal(json_array_size(json_object_get(file, "grants")), 1);
    json_decref(file);
    fixture_free(f);
}

/* ---- one command at a time ------------------------------------------------------------ */

/* A grant for scopes, given by the user with how; the grant is f->approved. */
static void user_grant(struct fixture *f, unsigned scopes, unsigned how)
{
    char message[256] = "";
    tl_consent_request_t request = request_for("alice", "tier2", scopes, 3600);
    tl_consent_request(f->consent, &request, 1);
    TL_ASSERT_OK(approve_how(f, f->last_question, 0, how, message, sizeof message));
}

static void test_command_line_shows_hostile_arguments_escaped(void **state)
{
    (void)state;
    json_t *argv = json_pack("[s, s, s, s, s, s, s]", "echo", "a b", "\x1b]0;owned\x07",
                             "line\nbreak", "say \"hi\"", "back\\slash", "\\x1b");
    char shown[512];
    tl_consent_command_text(argv, shown, sizeof shown);
    assert_string_equal(shown, "\"echo\" \"a b\" \"\\x1b]0;owned\\x07\" \"line\\nbreak\" "
                               "\"say \\\"hi\\\"\" \"back\\\\slash\" \"\\\\x1b\"");
    for (const char *c = shown; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            fail_msg("a control byte 0x%02x reached the shown line: %s", (unsigned char)*c, shown);
    /* An empty argument is still visible, and a long line is cut, never split. */
    json_decref(argv);
    argv = json_pack("[s, s]", "true", "");
    tl_consent_command_text(argv, shown, sizeof shown);
    assert_string_equal(shown, "\"true\" \"\"");
    json_decref(argv);
    char small[16];
    argv = json_pack("[s, s]", "printf", "0123456789abcdef");
    tl_consent_command_text(argv, small, sizeof small);
    assert_string_equal(small, "\"printf\" \"01" TL_TEXT_ELLIPSIS);
    json_decref(argv);
}

static void test_each_command_grant_asks_for_every_command(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    user_grant(f, TL_SCOPE_EXEC, TL_CONSENT_EACH);
    assert_true(f->approved.each_command);
    assert_false(f->approved.ends_with_shell);
    const tl_grant_t *grant = tl_consent_find(f->consent, "G-1");
    assert_non_null(grant);
    char message[256] = "";
    int asked = 0, allowed = 0;
    json_t *argv = json_pack("[s, s]", "echo", "hi there");
    TL_ASSERT_OK(tl_consent_ask_command(f->consent, grant, "exec", argv, 77, &asked, &allowed,
                                        message, sizeof message));
    assert_int_equal(asked, 1);
    assert_int_equal(f->commands, 0);
    assert_string_equal(f->command_line, "\"echo\" \"hi there\"");
    json_t *pending = tl_consent_pending(f->consent);
    json_t *question = json_array_get(pending, 0);
    assert_string_equal(json_string_value(json_object_get(question, "grant")), "G-1");
    assert_string_equal(json_string_value(json_object_get(question, "ticket")), "T-42");
    assert_string_equal(json_string_value(json_object_get(question, "reason")), "join T-42");
    assert_true(json_equal(json_object_get(question, "command"), argv));
    json_decref(pending);
    /* Yes runs it. A command is answered yes or no, nothing more. */
    TL_ASSERT_RC(TL_EINVAL, tl_consent_approve(f->consent, f->last_question, 0, TL_CONSENT_EACH,
                                               NULL, NULL, message, sizeof message));
    TL_ASSERT_OK(approve(f, f->last_question, 0, message, sizeof message));
    assert_int_equal(f->commands, 1);
    TL_ASSERT_OK(f->command_error);
    assert_int_equal(f->command_token, 77);
    assert_string_equal(f->command_decision, "allowed");
    /* The next one is asked again; no refuses it with the message the technician reads. */
    grant = tl_consent_find(f->consent, "G-1");
    TL_ASSERT_OK(tl_consent_ask_command(f->consent, grant, "exec", argv, 78, &asked, &allowed,
                                        message, sizeof message));
    assert_int_equal(asked, 1);
    TL_ASSERT_OK(tl_consent_deny(f->consent, f->last_question, message, sizeof message));
    assert_int_equal(f->commands, 2);
    TL_ASSERT_RC(TL_EDENIED, f->command_error);
    assert_string_equal(f->command_message, "the user declined this command");
    assert_string_equal(f->command_decision, "declined");
    /* The choice is kept with the grant. */
    settle_writes(f);
    json_t *file = grants_file(f);
    json_t *stored = json_array_get(json_object_get(file, "grants"), 0);
    assert_true(json_is_true(json_object_get(stored, "each_command")));
    json_decref(file);
    json_decref(argv);
    /* Ending the grant answers a waiting command no. */
    grant = tl_consent_find(f->consent, "G-1");
    json_t *runbook =
        json_pack("{s:s, s:{s:s}}", "name", "restart-service", "args", "SERVICE", "cups");
    TL_ASSERT_OK(tl_consent_ask_command(f->consent, grant, "runbook", runbook, 79, &asked, &allowed,
                                        message, sizeof message));
    assert_string_equal(f->command_line, "\"restart-service\" \"SERVICE=cups\"");
    TL_ASSERT_OK(
        tl_consent_end(f->consent, "G-1", "ended by the user", NULL, message, sizeof message));
    assert_int_equal(f->commands, 3);
    TL_ASSERT_RC(TL_EDENIED, f->command_error);
    json_decref(runbook);
    fixture_free(f);
}

static void test_a_long_program_name_is_still_asked_about(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    user_grant(f, TL_SCOPE_EXEC, TL_CONSENT_EACH);
    char program[1024], message[256] = "";
    memset(program, 'a', sizeof program - 1);
    program[0] = '/';
    program[sizeof program - 1] = '\0';
    json_t *argv = json_pack("[s]", program);
    int asked = 0, allowed = 0;
    TL_ASSERT_OK(tl_consent_ask_command(f->consent, tl_consent_find(f->consent, "G-1"), "exec",
                                        argv, 9, &asked, &allowed, message, sizeof message));
    if (asked != 1)
        fail_msg("a 1 KiB program name was not put to the user: %s", message);
    json_decref(argv);
    fixture_free(f);
}

static void test_unanswered_command_is_declined(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 50, NULL);
    user_grant(f, TL_SCOPE_EXEC, TL_CONSENT_EACH);
    char message[256] = "";
    int asked = 0, allowed = 0;
    json_t *argv = json_pack("[s, s]", "touch", "/tmp/x");
    TL_ASSERT_OK(tl_consent_ask_command(f->consent, tl_consent_find(f->consent, "G-1"), "exec",
                                        argv, 5, &asked, &allowed, message, sizeof message));
    settle(f, &f->commands, 1, "the command question to time out");
    TL_ASSERT_RC(TL_ETIMEOUT, f->command_error);
    assert_string_equal(f->command_decision, "unanswered");
    json_t *pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 0);
    json_decref(pending);
    json_decref(argv);
    fixture_free(f);
}

static void test_each_and_keep_only_where_they_mean_something(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    char message[256] = "";
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 1);
    TL_ASSERT_RC(TL_EINVAL, tl_consent_approve(f->consent, f->last_question, 0, TL_CONSENT_EACH,
                                               NULL, NULL, message, sizeof message));
    assert_non_null(strstr(message, "a shell cannot be asked command by command"));
    request = request_for("bob", "tier2", TL_SCOPE_EXEC, 3600);
    tl_consent_request(f->consent, &request, 2);
    TL_ASSERT_RC(TL_EINVAL, tl_consent_approve(f->consent, f->last_question, 0, TL_CONSENT_KEEP,
                                               NULL, NULL, message, sizeof message));
    request = request_for("carol", "tier2", TL_SCOPE_DIAG, 3600);
    tl_consent_request(f->consent, &request, 3);
    TL_ASSERT_RC(TL_EINVAL, tl_consent_approve(f->consent, f->last_question, 0, TL_CONSENT_EACH,
                                               NULL, NULL, message, sizeof message));
    /* Refused answers leave the questions open. */
    json_t *pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 3);
    assert_true(json_is_true(json_object_get(json_array_get(pending, 1), "each_possible")));
    assert_true(json_is_true(json_object_get(json_array_get(pending, 0), "ends_with_shell")));
    json_decref(pending);
    assert_int_equal(f->answers, 0);
    fixture_free(f);
}

static void test_a_users_shell_grant_ends_with_its_shell_unless_kept(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    user_grant(f, TL_SCOPE_SHELL, 0);
    assert_true(f->approved.ends_with_shell);
    assert_false(f->approved.each_command);
    tl_consent_request_t request = request_for("bob", "tier2", TL_SCOPE_SHELL, 3600);
    tl_consent_request(f->consent, &request, 2);
    char message[256] = "";
    TL_ASSERT_OK(approve_how(f, f->last_question, 0, TL_CONSENT_KEEP, message, sizeof message));
    assert_false(f->approved.ends_with_shell);
    settle_writes(f);
    /* What was chosen survives a restart of the agent. */
    fixture_close(f);
    fixture_open(f, NULL, 0, NULL);
    assert_true(tl_consent_find(f->consent, "G-1")->ends_with_shell);
    assert_false(tl_consent_find(f->consent, "G-2")->ends_with_shell);
    fixture_free(f);
}

static void test_files_push_needs_the_users_yes_to_it(void **state)
{
    (void)state;
    char message[256] = "";
    tl_consent_request_t parsed = {0};
    /* push is a boolean of a request for files, and nothing else. */
    json_t *body = good_request();
    json_object_set_new(body, "push", json_true());
    TL_ASSERT_RC(TL_EINVAL, tl_consent_request_parse(body, &parsed, message, sizeof message));
    assert_non_null(strstr(message, "\"push\""));
    json_object_set_new(body, "scopes", json_pack("[s]", "files"));
    json_object_set_new(body, "push", json_string("yes"));
    TL_ASSERT_RC(TL_EINVAL, tl_consent_request_parse(body, &parsed, message, sizeof message));
    json_object_set_new(body, "push", json_true());
    TL_ASSERT_OK(tl_consent_request_parse(body, &parsed, message, sizeof message));
    assert_true(parsed.push);
    tl_consent_request_clear(&parsed);
    json_decref(body);

    struct fixture *f = fixture_new(NULL, 0, NULL);
    /* Asked with push: the question says so; p (pull only) is an answer to it alone. */
    tl_consent_request_t request = request_for("carol", "tier3", TL_SCOPE_FILES, 3600);
    request.push = true;
    tl_consent_request(f->consent, &request, 1);
    json_t *pending = tl_consent_pending(f->consent);
    assert_true(json_is_true(json_object_get(json_array_get(pending, 0), "push")));
    json_decref(pending);
    TL_ASSERT_OK(
        approve_how(f, f->last_question, 0, TL_CONSENT_PULL_ONLY, message, sizeof message));
    assert_false(f->approved.push);
    request = request_for("dave", "tier3", TL_SCOPE_FILES, 3600);
    request.push = true;
    tl_consent_request(f->consent, &request, 2);
    TL_ASSERT_OK(approve_how(f, f->last_question, 0, 0, message, sizeof message));
    assert_true(f->approved.push);
    /* Without push, --pull-only means nothing and is refused; the question stays open. */
    request = request_for("bob", "tier2", TL_SCOPE_FILES, 3600);
    tl_consent_request(f->consent, &request, 3);
    TL_ASSERT_RC(TL_EINVAL,
                 tl_consent_approve(f->consent, f->last_question, 0, TL_CONSENT_PULL_ONLY, NULL,
                                    NULL, message, sizeof message));
    pending = tl_consent_pending(f->consent);
    assert_int_equal(json_array_size(pending), 1);
    assert_true(json_is_false(json_object_get(json_array_get(pending, 0), "push")));
    json_decref(pending);
    settle_writes(f);
    /* The answer survives a restart of the agent. */
    fixture_close(f);
    fixture_open(f, NULL, 0, NULL);
    assert_false(tl_consent_find(f->consent, "G-1")->push);
    assert_true(tl_consent_find(f->consent, "G-2")->push);
    fixture_free(f);
}

static json_t *files_request(const char *type, const char *grant, const char *technician,
                             const char *path)
{
    return json_pack("{s:s, s:s?, s:s?, s:s?}", "type", type, "grant", grant, "technician",
                     technician, "path", path);
}

/* The answer's error name, or "ok". */
static const char *files_outcome(struct fixture *f, enum tl_control_type type, json_t *body)
{
    static char outcome[32];
    json_t *answer = tl_files_request_answer(f->consent, type, body);
    assert_non_null(answer);
    const char *error = json_string_value(json_object_get(answer, "error"));
    snprintf(outcome, sizeof outcome, "%s",
             json_is_true(json_object_get(answer, "ok")) ? "ok"
             : error                                     ? error
                                                         : "?");
    json_decref(answer);
    json_decref(body);
    return outcome;
}

static void test_files_requests_need_a_live_files_grant_of_the_technician(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0, NULL);
    user_grant(f, TL_SCOPE_SHELL, 0); /* G-1: alice's shell */
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_FILES, 3600);
    tl_consent_request(f->consent, &request, 2);
    char message[256] = "";
    TL_ASSERT_OK(approve_how(f, f->last_question, 0, 0, message, sizeof message)); /* G-2 */
    settle_writes(f);
    const enum tl_control_type stat = TL_CONTROL_FILES_STAT, list = TL_CONTROL_FILES_LIST;
    assert_string_equal(files_outcome(f, stat, files_request("files.stat", "G-2", "alice", "/")),
                        "ok");
    assert_string_equal(files_outcome(f, list, files_request("files.list", "G-2", "alice", "/")),
                        "ok");
    /* Another's grant, one without files, none at all: refused; so is a path not normalised. */
    assert_string_equal(files_outcome(f, stat, files_request("files.stat", "G-2", "bob", "/")),
                        "EDENIED");
    assert_string_equal(files_outcome(f, stat, files_request("files.stat", "G-1", "alice", "/")),
                        "EDENIED");
    assert_string_equal(files_outcome(f, stat, files_request("files.stat", "G-9", "alice", "/")),
                        "EDENIED");
    assert_string_equal(
        files_outcome(f, stat, files_request("files.stat", "G-2", "alice", "/etc/../etc")),
        "EINVAL");
    assert_string_equal(files_outcome(f, list, files_request("files.list", "G-2", "alice", NULL)),
                        "EINVAL");
    assert_string_equal(
        files_outcome(f, stat, files_request("files.stat", "G-2", "alice", "/no/such/file")),
        "ENOTFOUND");
    /* A listing of the root holds entries with their attributes. */
    json_t *body = files_request("files.list", "G-2", "alice", "/");
    json_t *answer = tl_files_request_answer(f->consent, list, body);
    json_t *entries = json_object_get(answer, "entries");
    assert_true(json_array_size(entries) > 0);
    assert_true(json_is_integer(json_object_get(json_array_get(entries, 0), "mode")));
    assert_true(json_is_false(json_object_get(answer, "more")));
    json_decref(answer);
    json_decref(body);
    fixture_free(f);
}

static const char commands_policy[] =
    "{\"unattended\":[{\"roles\":[\"tier2\"],\"scopes\":[\"exec\",\"fix\"],"
    "\"commands\":[\"df\",\"/usr/bin/journalctl\",\"runbook:flush-dns\"]}]}";

static void test_policy_commands_allow_only_what_they_list(void **state)
{
    (void)state;
    char problem[256] = "";
    tl_policy_t *policy = parse_policy(commands_policy, problem, sizeof problem);
    assert_non_null(policy);
    struct fixture *f = fixture_new(policy, 0, NULL);
    tl_consent_request_t request = request_for("alice", "tier2", TL_SCOPE_EXEC, 3600);
    tl_consent_request(f->consent, &request, 1);
    settle(f, &f->answers, 1, "the policy grant");
    TL_ASSERT_OK(f->last_error);
    assert_string_equal(f->last_by, "policy");
    const tl_grant_t *grant = tl_consent_find(f->consent, "G-1");
    assert_true(grant->each_command);
    assert_false(grant->ends_with_shell);
    struct {
        const char *type;
        json_t *what;
        int allowed;
    } cases[] = {
        {"exec", json_pack("[s, s]", "df", "-h"), 1},
        {"exec", json_pack("[s, s]", "/usr/bin/journalctl", "-b"), 1},
        {"exec", json_pack("[s]", "journalctl"), 0},  /* not the path listed */
        {"exec", json_pack("[s]", "/usr/bin/df"), 0}, /* not the name listed */
        {"exec", json_pack("[s, s]", "rm", "-rf"), 0},
        {"exec", json_pack("[s]", "df "), 0},
        {"runbook", json_pack("{s:s}", "name", "flush-dns"), 1},
        {"runbook", json_pack("{s:s}", "name", "clean-temp"), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char message[256] = "";
        int asked = -1, allowed = -1;
        TL_ASSERT_OK(tl_consent_ask_command(f->consent, grant, cases[i].type, cases[i].what, i,
                                            &asked, &allowed, message, sizeof message));
        if (asked != 0 || allowed != cases[i].allowed)
            fail_msg("case %zu: want asked 0 allowed %d, got asked %d allowed %d", i,
                     cases[i].allowed, asked, allowed);
        if (!allowed)
            assert_non_null(strstr(message, "policy"));
        json_decref(cases[i].what);
    }
    assert_int_equal(f->questions, 0);
    fixture_free(f);
}

static void test_policy_commands_grammar_names_each_mistake(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        const char *problem;
    } bad[] = {
        {"\"scopes\":[\"exec\",\"shell\"],\"commands\":[\"df\"]", "cannot allow shell"},
        {"\"scopes\":[\"diag\"],\"commands\":[\"df\"]", "must allow exec or fix"},
        {"\"scopes\":[\"exec\"],\"commands\":[]", "array of 1..64"},
        {"\"scopes\":[\"exec\"],\"commands\":\"df\"", "array of 1..64"},
        {"\"scopes\":[\"exec\"],\"commands\":[\"bin/df\"]", "commands[0]"},
        {"\"scopes\":[\"exec\"],\"commands\":[\"df\",\"\"]", "commands[1]"},
        {"\"scopes\":[\"exec\"],\"commands\":[\"d\\u001bf\"]", "commands[0]"},
        {"\"scopes\":[\"exec\"],\"commands\":[7]", "commands[0]"},
        {"\"scopes\":[\"exec\"],\"commands\":[\"/usr/bin/\"]", "commands[0]"},
        {"\"scopes\":[\"fix\"],\"commands\":[\"runbook:a/b\"]", "commands[0]"},
        {"\"scopes\":[\"exec\"],\"comands\":[\"df\"]", "unknown member \"comands\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], problem[256] = "";
        snprintf(text, sizeof text, "{\"unattended\":[{\"roles\":[\"tier2\"],%s}]}", bad[i].rule);
        tl_policy_t *policy = parse_policy(text, problem, sizeof problem);
        if (policy != NULL || strstr(problem, bad[i].problem) == NULL)
            fail_msg("case %zu (%s): want an error naming '%s', got '%s'", i, bad[i].rule,
                     bad[i].problem, policy ? "(accepted)" : problem);
    }
    /* 65 commands is one too many; 64 is fine. */
    char text[4096] =
        "{\"unattended\":[{\"roles\":[\"tier2\"],\"scopes\":[\"exec\"],\"commands\":[";
    for (int i = 0; i < 65; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s\"c%d\"", i ? "," : "", i);
    strcat(text, "]}]}");
    char problem[256] = "";
    assert_null(parse_policy(text, problem, sizeof problem));
    char *cut = strstr(text, ",\"c64\"");
    memmove(cut, cut + strlen(",\"c64\""), strlen(cut + strlen(",\"c64\"")) + 1);
    tl_policy_t *policy = parse_policy(text, problem, sizeof problem);
    assert_non_null(policy);
    tl_policy_free(policy);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_request_parse_accepts_the_documented_request),
    cmocka_unit_test(test_request_parse_names_each_bad_member),
    cmocka_unit_test(test_policy_example_grants_inside_its_window_only),
    cmocka_unit_test(test_policy_window_spanning_midnight_belongs_to_its_first_day),
    cmocka_unit_test(test_policy_rejects_what_it_does_not_understand),
    cmocka_unit_test(test_policy_integer_durations_are_bounded),
    cmocka_unit_test(test_policy_load_names_a_missing_file),
    cmocka_unit_test(test_auditor_and_admin_are_refused_without_a_question),
    cmocka_unit_test(test_approved_question_becomes_a_durable_grant),
    cmocka_unit_test(test_denied_question_answers_edenied),
    cmocka_unit_test(test_unanswered_question_times_out),
    cmocka_unit_test(test_cancelled_question_gets_no_answer),
    cmocka_unit_test(test_too_many_questions_are_refused),
    cmocka_unit_test(test_live_grant_is_reused_without_a_question),
    cmocka_unit_test(test_policy_grants_without_asking),
    cmocka_unit_test(test_channel_check_names_the_failed_check),
    cmocka_unit_test(test_scopes_map_to_channel_types),
    cmocka_unit_test(test_ended_grant_refuses_channels_and_is_recorded),
    cmocka_unit_test(test_grant_ends_at_its_expiry),
    cmocka_unit_test(test_old_records_are_dropped_after_a_week),
    cmocka_unit_test(test_damaged_grants_file_is_a_startup_error),
    cmocka_unit_test(test_grant_is_answered_once_on_disk_and_the_loop_runs_meanwhile),
    cmocka_unit_test(test_grants_file_writes_keep_order_and_the_latest_state_wins),
    cmocka_unit_test(test_failed_grant_write_answers_eio_and_grants_nothing),
    cmocka_unit_test(test_command_line_shows_hostile_arguments_escaped),
    cmocka_unit_test(test_each_command_grant_asks_for_every_command),
    cmocka_unit_test(test_a_long_program_name_is_still_asked_about),
    cmocka_unit_test(test_unanswered_command_is_declined),
    cmocka_unit_test(test_each_and_keep_only_where_they_mean_something),
    cmocka_unit_test(test_a_users_shell_grant_ends_with_its_shell_unless_kept),
    cmocka_unit_test(test_files_push_needs_the_users_yes_to_it),
    cmocka_unit_test(test_files_requests_need_a_live_files_grant_of_the_technician),
    cmocka_unit_test(test_policy_commands_allow_only_what_they_list),
    cmocka_unit_test(test_policy_commands_grammar_names_each_mistake),
};

TL_TEST_MAIN(tests)
