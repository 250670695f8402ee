/*
 * The desk on a real SQLite file and a real audit log: tickets' own rules (relay/desk/tickets.h)
 * and the one call that records a ticket's timeline event with its audit entry
 * (relay/desk/timeline.h), run as the relay runs it, in a job of the storage worker.
 */
#include "tl_test.h"

#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/store/audit_chain.h"
#include "relay/store/worker.h"

#include <stdlib.h>
#include <time.h>

#define CODE_HASH "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define FP "SHA256:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
#define OPENED_MS 3000

struct fixture {
    char dir[64];
    char db[96];
    char log[96];
    tl_store_t *store;  /* the worker's while it runs */
    tl_store_t *reader; /* the test's own connection */
    tl_audit_chain_t *chain;
    uv_loop_t loop;
    uv_timer_t tick; /* keeps the loop alive: the worker's own handle does not */
    tl_worker_t *worker;
    int64_t device_id;
    int64_t ticket_id; /* T-1, opened at OPENED_MS */
};

static void on_tick(uv_timer_t *timer)
{
    (void)timer;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/tl-desk-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/relay.db", f->dir);
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->dir);
    tl_device_info_t device = {FP, "laptop-7", "Debian GNU/Linux 12"};
    tl_ticket_new_t ticket = {.title = "printer offline", .description = "since Monday", .tier = 1};
    int created = 0;
    if (tl_store_open(f->db, TL_STORE_CREATE_NEW, &f->store) != 0 ||
        tl_store_open(f->db, TL_STORE_OPEN_EXISTING, &f->reader) != 0 ||
        tl_audit_chain_open(f->store, f->log, TL_AUDIT_CHAIN_CREATE, &f->chain, NULL, 0) != 0 ||
        tl_store_code_add(f->store, CODE_HASH, 1000, 100000, "", NULL) != 0 ||
        tl_store_enroll(f->store, CODE_HASH, 2000, &device, &f->device_id) != 0)
        return -1;
    ticket.device_id = f->device_id;
    if (tl_ticket_create(f->store, &ticket, OPENED_MS, &f->ticket_id, &created) != 0 ||
        created != 1 || uv_loop_init(&f->loop) != 0 || uv_timer_init(&f->loop, &f->tick) != 0 ||
        uv_timer_start(&f->tick, on_tick, 5, 5) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->worker != NULL)
        tl_worker_free(f->worker);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&f->loop) != 0)
        return -1;
    tl_audit_chain_close(f->chain);
    tl_store_close(f->reader);
    tl_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* ---- tickets' own rules -------------------------------------------------------------------- */

static void test_ticket_starts_new_whatever_it_asks(void **state)
{
    struct fixture *f = *state;
    tl_ticket_new_t ticket = {f->device_id, "disk full", "", 2, "req-9", "resolved", 0, NULL};
    int64_t id = 0, again = 0;
    int created = 0;
    TL_ASSERT_OK(tl_ticket_create(f->reader, &ticket, 5000, &id, &created));
    assert_int_equal(created, 1);
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, id, &row));
    assert_string_equal(row.status, "new");
    assert_int_equal(row.tier, 2);
    tl_ticket_row_clear(&row);
    /* The same request names the same ticket. */
    TL_ASSERT_OK(tl_ticket_create(f->reader, &ticket, 6000, &again, &created));
    assert_int_equal(created, 0);
    assert_int_equal(again, id);
}

static void test_bad_ticket_input_rejected(void **state)
{
    struct fixture *f = *state;
    int64_t id;
    int created;
    char long_title[TL_STORE_MAX_TITLE + 2];
    memset(long_title, 't', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = 0;
    tl_ticket_new_t bad[] = {
        {f->device_id, "", "", 1, NULL, NULL, 0, NULL},         {f->device_id, NULL, "", 1, NULL, NULL, 0, NULL},
        {f->device_id, long_title, "", 1, NULL, NULL, 0, NULL}, {f->device_id, "ok", "", 5, NULL, NULL, 0, NULL},
        {f->device_id, "ok", "", -1, NULL, NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_ticket_create(f->reader, &bad[i], 1, &id, &created));
    tl_ticket_new_t orphan = {999, "ok", "", 1, NULL, NULL, 0, NULL};
    TL_ASSERT_RC(TL_ENOTFOUND, tl_ticket_create(f->reader, &orphan, 1, &id, &created));
    /* Nothing was added: only the fixture's ticket is there. */
    tl_ticket_rows_t tickets;
    TL_ASSERT_OK(tl_store_tickets_read(f->reader, NULL, &tickets));
    assert_int_equal(tickets.count, 1);
    tl_ticket_rows_free(&tickets);
}

/* Every pair of statuses, against the rules as docs/technicians.md "Statuses" states them. */
static void test_status_transitions_follow_the_rules(void **state)
{
    (void)state;
    static const char *const all[] = {"new",      "open",   "waiting-user", "waiting-vendor",
                                      "resolved", "closed", "reopened"};
    static const char *const allowed[] = {
        "new>open",
        "new>waiting-user",
        "new>waiting-vendor",
        "new>resolved",
        "new>closed",
        "open>waiting-user",
        "open>waiting-vendor",
        "open>resolved",
        "open>closed",
        "waiting-user>open",
        "waiting-user>waiting-vendor",
        "waiting-user>resolved",
        "waiting-user>closed",
        "waiting-vendor>open",
        "waiting-vendor>waiting-user",
        "waiting-vendor>resolved",
        "waiting-vendor>closed",
        "resolved>reopened",
        "resolved>closed",
        "closed>reopened",
        "reopened>open",
        "reopened>waiting-user",
        "reopened>waiting-vendor",
        "reopened>resolved",
        "reopened>closed",
    };
    size_t seen = 0;
    for (size_t a = 0; a < 7; a++) {
        for (size_t b = 0; b < 7; b++) {
            char pair[64];
            snprintf(pair, sizeof pair, "%s>%s", all[a], all[b]);
            int expected = 0;
            for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++)
                expected |= strcmp(allowed[k], pair) == 0;
            seen += (size_t)expected;
            if (tl_ticket_transition_allowed(all[a], all[b]) != expected)
                fail_msg("%s: expected %s", pair, expected ? "allowed" : "refused");
        }
    }
    assert_int_equal(seen, sizeof allowed / sizeof allowed[0]);
    assert_false(tl_ticket_transition_allowed(NULL, "open"));
    assert_false(tl_ticket_transition_allowed("open", NULL));
    assert_false(tl_ticket_transition_allowed("done", "open"));
    /* Notes and sessions: any status but resolved and closed. */
    for (size_t a = 0; a < 7; a++)
        assert_int_equal(tl_ticket_status_active(all[a]),
                         strcmp(all[a], "resolved") != 0 && strcmp(all[a], "closed") != 0);
    assert_false(tl_ticket_status_active(NULL));
    assert_false(tl_ticket_status_active("done"));
}

/* The store refuses a change the rules refuse, and keeps the ticket as it was. */
static void test_a_refused_transition_changes_nothing(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_OK(tl_ticket_update(f->reader, f->ticket_id, "alice", "resolved", NULL, 4000));
    TL_ASSERT_RC(TL_ESTATE,
                 tl_ticket_update(f->reader, f->ticket_id, "bob", "resolved", NULL, 5000));
    TL_ASSERT_RC(TL_ESTATE, tl_ticket_update(f->reader, f->ticket_id, NULL, "open", NULL, 5000));
    TL_ASSERT_RC(TL_ESTATE, tl_ticket_update(f->reader, f->ticket_id, NULL, "new", NULL, 5000));
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, f->ticket_id, &row));
    assert_string_equal(row.status, "resolved");
    assert_string_equal(row.assignee, "alice");
    assert_int_equal(row.updated, 4000);
    tl_ticket_row_clear(&row);
    TL_ASSERT_OK(tl_ticket_update(f->reader, f->ticket_id, NULL, "reopened", NULL, 6000));
    TL_ASSERT_OK(tl_ticket_update(f->reader, f->ticket_id, NULL, "open", NULL, 7000));
}

static void test_ticket_status_is_one_of_the_desk_words(void **state)
{
    struct fixture *f = *state;
    const char *words[] = {"new",      "open",   "waiting-user", "waiting-vendor",
                           "resolved", "closed", "reopened"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!tl_ticket_status_valid(words[i]))
            fail_msg("status '%s' refused", words[i]);
    /* A path the rules allow, from new to closed. */
    for (size_t i = 1; i < 6; i++)
        TL_ASSERT_OK(tl_ticket_update(f->reader, f->ticket_id, NULL, words[i], NULL, 4000));
    const char *not_words[] = {"done", "", "Open", "open ", "closed\n"};
    for (size_t i = 0; i < sizeof not_words / sizeof not_words[0]; i++) {
        if (tl_ticket_status_valid(not_words[i]))
            fail_msg("status '%s' accepted", not_words[i]);
        TL_ASSERT_RC(TL_EINVAL,
                     tl_ticket_update(f->reader, f->ticket_id, "alice", not_words[i], NULL, 5000));
    }
    assert_false(tl_ticket_status_valid(NULL));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_ticket_update(f->reader, f->ticket_id, "Bad Name", NULL, NULL, 5000));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_ticket_update(f->reader, 99, "alice", "open", NULL, 5000));
    /* The refused changes left the ticket as the last good one made it. */
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, f->ticket_id, &row));
    assert_string_equal(row.status, "closed");
    assert_null(row.assignee);
    assert_int_equal(row.updated, 4000);
    tl_ticket_row_clear(&row);
}

/* ---- the timeline and the audit log, from a worker's job ------------------------------------ */

/* A job that records entries one after the other, and goes on past a failed one. */
struct record_job {
    tl_job_t job;
    tl_timeline_entry_t entries[3];
    size_t count;
    int results[3];
    int status;
    int done;
};

static int run_records(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct record_job *job = (struct record_job *)base;
    for (size_t i = 0; i < job->count; i++)
        job->results[i] = tl_timeline_record(ctx, &job->entries[i]);
    return 0;
}

static void records_done(tl_job_t *base, int status)
{
    struct record_job *job = (struct record_job *)base;
    job->status = status;
    job->done = 1;
}

/* Runs job on a worker and the loop until it is done (bounded: 30 s). */
static void run_job(struct fixture *f, struct record_job *job)
{
    int rc = 0;
    if (f->worker == NULL) {
        f->worker = tl_worker_new(&f->loop, f->store, f->chain, NULL, NULL, &rc);
        assert_non_null(f->worker);
    }
    job->job.run = run_records;
    job->job.done = records_done;
    tl_worker_submit(f->worker, &job->job);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!job->done) {
        uv_run(&f->loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("the worker did not finish a job in 30 s");
    }
}

/* The audit log's entries as "action subject actor details" lines; the chain must verify. */
static void expect_log(struct fixture *f, const char *expected)
{
    tl_audit_report_t report;
    if (tl_audit_verify(f->log, &report) != 0)
        fail_msg("audit log does not verify: %s", report.reason);
    FILE *in = fopen(f->log, "r");
    assert_non_null(in);
    char line[4096], seen[2048] = "";
    while (fgets(line, sizeof line, in) != NULL) {
        json_t *entry = json_loads(line, 0, NULL);
        assert_non_null(entry);
        char *details = json_dumps(json_object_get(entry, "details"), JSON_COMPACT);
        size_t used = strlen(seen);
        snprintf(seen + used, sizeof seen - used, "%s%s %s %s %s", used > 0 ? "\n" : "",
                 json_string_value(json_object_get(entry, "action")),
                 json_string_value(json_object_get(entry, "subject")),
                 json_string_value(json_object_get(entry, "actor")), details);
        free(details);
        json_decref(entry);
    }
    fclose(in);
    if (strcmp(seen, expected) != 0)
        fail_msg("audit log holds:\n%s\nexpected:\n%s", seen, expected);
}

/* The ticket's timeline as "time actor kind details" lines. */
static void expect_timeline(struct fixture *f, int64_t ticket_id, const char *expected)
{
    tl_ticket_event_rows_t events;
    char seen[2048] = "";
    TL_ASSERT_OK(tl_store_ticket_events_read(f->reader, ticket_id, &events));
    for (size_t i = 0; i < events.count; i++) {
        size_t used = strlen(seen);
        snprintf(seen + used, sizeof seen - used, "%s%lld %s %s %s", used > 0 ? "\n" : "",
                 (long long)events.rows[i].time, events.rows[i].actor, events.rows[i].kind,
                 events.rows[i].details);
    }
    tl_ticket_event_rows_free(&events);
    if (strcmp(seen, expected) != 0)
        fail_msg("timeline holds:\n%s\nexpected:\n%s", seen, expected);
}

static int64_t ticket_updated(struct fixture *f)
{
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, f->ticket_id, &row));
    int64_t updated = row.updated;
    tl_ticket_row_clear(&row);
    return updated;
}

static void test_timeline_records_event_and_audit_entry(void **state)
{
    struct fixture *f = *state;
    json_t *details = json_pack("{s:s}", "text", "printer is back");
    struct record_job job = {.count = 1};
    job.entries[0] = (tl_timeline_entry_t){f->ticket_id,  5000,    "tech:alice", "note",
                                           "ticket.note", details, NULL};
    run_job(f, &job);
    TL_ASSERT_OK(job.status);
    TL_ASSERT_OK(job.results[0]);
    expect_timeline(f, f->ticket_id, "5000 tech:alice note {\"text\":\"printer is back\"}");
    expect_log(f, "ticket.note T-1 tech:alice {\"text\":\"printer is back\"}");
    assert_int_equal(ticket_updated(f), 5000);
    json_decref(details);
}

static void test_timeline_event_and_entry_may_differ_or_stand_alone(void **state)
{
    struct fixture *f = *state;
    json_t *event = json_pack("{s:s, s:i}", "title", "printer offline", "tier", 1);
    json_t *audit = json_pack("{s:s, s:s}", "title", "printer offline", "request", "req-1");
    json_t *seen = json_pack("{s:s}", "by", "alice");
    struct record_job job = {.count = 3};
    /* The entry says more than the event; an event alone; an entry alone. */
    job.entries[0] = (tl_timeline_entry_t){f->ticket_id,    5000,  "agent:D-1", "ticket.created",
                                           "ticket.create", event, audit};
    job.entries[1] =
        (tl_timeline_entry_t){f->ticket_id, 5001, "tech:alice", "viewed", NULL, seen, NULL};
    job.entries[2] =
        (tl_timeline_entry_t){f->ticket_id, 5002, "tech:alice", NULL, "ticket.show", seen, NULL};
    run_job(f, &job);
    TL_ASSERT_OK(job.status);
    for (size_t i = 0; i < job.count; i++)
        TL_ASSERT_OK(job.results[i]);
    expect_timeline(f, f->ticket_id,
                    "5000 agent:D-1 ticket.created {\"title\":\"printer offline\",\"tier\":1}\n"
                    "5001 tech:alice viewed {\"by\":\"alice\"}");
    expect_log(f,
               "ticket.create T-1 agent:D-1 {\"title\":\"printer offline\",\"request\":\"req-1\"}\n"
               "ticket.show T-1 tech:alice {\"by\":\"alice\"}");
    assert_int_equal(ticket_updated(f), 5001);
    json_decref(event);
    json_decref(audit);
    json_decref(seen);
}

/*
 * An entry the log refuses (its action is not a word the log takes) must not leave its event on
 * the timeline, even when the job goes on and commits what else it did.
 */
static void test_timeline_keeps_neither_when_the_log_refuses_the_entry(void **state)
{
    struct fixture *f = *state;
    json_t *details = json_pack("{s:s}", "text", "x");
    struct record_job job = {.count = 3};
    job.entries[0] = (tl_timeline_entry_t){f->ticket_id,  5000,    "tech:alice", "note",
                                           "ticket.note", details, NULL};
    job.entries[1] = (tl_timeline_entry_t){f->ticket_id, 6000,    "tech:alice", "note",
                                           "Bad Action", details, NULL};
    job.entries[2] =
        (tl_timeline_entry_t){f->ticket_id, 5500, "tech:bob", "note", "ticket.note", details, NULL};
    run_job(f, &job);
    TL_ASSERT_OK(job.status);
    TL_ASSERT_OK(job.results[0]);
    TL_ASSERT_RC(TL_EINVAL, job.results[1]);
    TL_ASSERT_OK(job.results[2]);
    expect_timeline(f, f->ticket_id,
                    "5000 tech:alice note {\"text\":\"x\"}\n5500 tech:bob note {\"text\":\"x\"}");
    expect_log(f, "ticket.note T-1 tech:alice {\"text\":\"x\"}\n"
                  "ticket.note T-1 tech:bob {\"text\":\"x\"}");
    /* The refused event did not touch the ticket either. */
    assert_int_equal(ticket_updated(f), 5500);
    json_decref(details);
}

static void test_timeline_keeps_neither_for_a_missing_ticket(void **state)
{
    struct fixture *f = *state;
    json_t *details = json_pack("{s:s}", "text", "x");
    json_t *list = json_pack("[s]", "not an object");
    struct record_job job = {.count = 2};
    job.entries[0] =
        (tl_timeline_entry_t){99, 5000, "tech:alice", "note", "ticket.note", details, NULL};
    job.entries[1] =
        (tl_timeline_entry_t){f->ticket_id, 5000, "tech:alice", "note", "ticket.note", list, NULL};
    run_job(f, &job);
    TL_ASSERT_OK(job.status);
    TL_ASSERT_RC(TL_ENOTFOUND, job.results[0]);
    TL_ASSERT_RC(TL_EINVAL, job.results[1]);
    expect_timeline(f, 99, "");
    expect_timeline(f, f->ticket_id, "");
    expect_log(f, "");
    assert_int_equal(ticket_updated(f), OPENED_MS);
    json_decref(details);
    json_decref(list);
}

static void test_timeline_records_only_inside_a_job(void **state)
{
    struct fixture *f = *state;
    int rc = 0;
    f->worker = tl_worker_new(&f->loop, f->store, f->chain, NULL, NULL, &rc);
    assert_non_null(f->worker);
    tl_job_ctx_t outside = {f->reader, NULL, f->worker};
    tl_timeline_entry_t entry = {f->ticket_id,  5000, "tech:alice", "note",
                                 "ticket.note", NULL, NULL};
    TL_ASSERT_RC(TL_ESTORE, tl_timeline_record(&outside, &entry));
    /* Nothing to record at all is a mistake too. */
    tl_timeline_entry_t empty = {f->ticket_id, 5000, "tech:alice", NULL, NULL, NULL, NULL};
    TL_ASSERT_RC(TL_EINVAL, tl_timeline_record(&outside, &empty));
    expect_timeline(f, f->ticket_id, "");
    expect_log(f, "");
}

#define DESK_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
    DESK_TEST(test_ticket_starts_new_whatever_it_asks),
    DESK_TEST(test_bad_ticket_input_rejected),
    cmocka_unit_test(test_status_transitions_follow_the_rules),
    DESK_TEST(test_a_refused_transition_changes_nothing),
    DESK_TEST(test_ticket_status_is_one_of_the_desk_words),
    DESK_TEST(test_timeline_records_event_and_audit_entry),
    DESK_TEST(test_timeline_event_and_entry_may_differ_or_stand_alone),
    DESK_TEST(test_timeline_keeps_neither_when_the_log_refuses_the_entry),
    DESK_TEST(test_timeline_keeps_neither_for_a_missing_ticket),
    DESK_TEST(test_timeline_records_only_inside_a_job),
};

TL_TEST_MAIN(tests)
