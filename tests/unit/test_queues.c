/*
 * The desk wired into the relay, on a real SQLite file, a real evidence store and a real audit
 * log, in jobs of the storage worker as the relay runs them: a ticket's first response recorded
 * from what a technician did (relay/desk/timeline.h), its category and severity proposed from
 * its diagnostics and kept when a technician chose them (relay/desk/triage.h), and the notices
 * technicians find in their listing (relay/store/store.h).
 */
#include "tl_test.h"

#include "proto/hash.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/desk/triage.h"
#include "relay/store/audit.h"
#include "relay/store/audit_chain.h"
#include "relay/store/worker.h"

#include <stdlib.h>
#include <time.h>

#define CODE_HASH "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define FP "SHA256:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
#define OPENED_MS 3000

/* /var 97% full: disk-full, S2; its fingerprint's canonical text is "disk-full /var". */
#define VAR_FULL                                                                                   \
    "{\"schema\":1,\"sections\":{\"disks\":{\"mounts\":[{\"mount\":\"/var\",\"used_percent\":97,"  \
    "\"read_only\":false}]}}}"
#define VAR_FULL_CONDITIONS "tierline-fingerprint 1\ndisk-full /var\n"

struct fixture {
    char dir[64];
    char db[96];
    char log[96];
    char evidence_dir[96];
    tl_store_t *store;  /* the worker's while it runs */
    tl_store_t *reader; /* the test's own connection */
    tl_audit_chain_t *chain;
    tl_evidence_store_t *evidence;
    uv_loop_t loop;
    uv_timer_t tick;
    tl_worker_t *worker;
    int64_t device_id;
    int64_t ticket_id; /* T-1, "printer offline", S3 other, opened at OPENED_MS */
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
    strcpy(f->dir, "/tmp/tl-queues-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/relay.db", f->dir);
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->dir);
    snprintf(f->evidence_dir, sizeof f->evidence_dir, "%s/evidence", f->dir);
    tl_device_info_t device = {FP, "laptop-7", "Debian GNU/Linux 12"};
    tl_ticket_new_t ticket = {.title = "printer offline", .description = "since Monday", .tier = 1};
    int created = 0, rc = 0;
    if (tl_store_open(f->db, TL_STORE_CREATE_NEW, &f->store) != 0 ||
        tl_store_open(f->db, TL_STORE_OPEN_EXISTING, &f->reader) != 0 ||
        tl_audit_chain_open(f->store, f->log, TL_AUDIT_CHAIN_CREATE, &f->chain, NULL, 0) != 0 ||
        tl_evidence_store_open(f->evidence_dir, NULL, &f->evidence) != 0 ||
        tl_store_code_add(f->store, CODE_HASH, 1000, 100000, "", NULL) != 0 ||
        tl_store_enroll(f->store, CODE_HASH, 2000, &device, &f->device_id) != 0)
        return -1;
    ticket.device_id = f->device_id;
    if (tl_ticket_create(f->store, &ticket, OPENED_MS, &f->ticket_id, &created) != 0 ||
        created != 1 || uv_loop_init(&f->loop) != 0 || uv_timer_init(&f->loop, &f->tick) != 0 ||
        uv_timer_start(&f->tick, on_tick, 5, 5) != 0)
        return -1;
    f->worker = tl_worker_new(&f->loop, f->store, f->chain, f->evidence, NULL, &rc);
    if (f->worker == NULL)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_worker_free(f->worker);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&f->loop) != 0)
        return -1;
    tl_evidence_store_close(f->evidence);
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

/* ---- running work on the worker --------------------------------------------------------- */

typedef int (*work_fn)(tl_job_ctx_t *ctx, void *arg);

struct fn_job {
    tl_job_t job;
    work_fn fn;
    void *arg;
    int result, status, done;
};

static int run_fn(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct fn_job *job = (struct fn_job *)base;
    job->result = job->fn(ctx, job->arg);
    return 0; /* the job commits what the work kept */
}

static void fn_done(tl_job_t *base, int status)
{
    struct fn_job *job = (struct fn_job *)base;
    job->status = status;
    job->done = 1;
}

/* Runs fn in a job and the loop until it is done (bounded: 30 s); fn's result. */
static int on_worker(struct fixture *f, work_fn fn, void *arg)
{
    struct fn_job job = {.job = {.run = run_fn, .done = fn_done}, .fn = fn, .arg = arg};
    tl_worker_submit(f->worker, &job.job);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!job.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("the worker did not finish a job in 30 s");
    }
    TL_ASSERT_OK(job.status);
    return job.result;
}

static tl_ticket_row_t ticket_row(struct fixture *f, int64_t id)
{
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, id, &row));
    return row;
}

/* The ticket's history as "field=value by actor" lines, from the first one at or after from. */
static void expect_changes(struct fixture *f, int64_t id, size_t from, const char *expected)
{
    tl_ticket_change_rows_t changes;
    char seen[2048] = "";
    TL_ASSERT_OK(tl_store_ticket_changes_read(f->reader, id, &changes));
    for (size_t i = from; i < changes.count; i++) {
        size_t used = strlen(seen);
        snprintf(seen + used, sizeof seen - used, "%s%s=%s by %s", used > 0 ? "\n" : "",
                 changes.rows[i].field, changes.rows[i].value, changes.rows[i].actor);
    }
    tl_ticket_change_rows_free(&changes);
    if (strcmp(seen, expected) != 0)
        fail_msg("history holds:\n%s\nexpected:\n%s", seen, expected);
}

/* The details of the ticket's last event of kind, parsed (the caller frees them). */
static json_t *last_event(struct fixture *f, int64_t id, const char *kind, size_t *count)
{
    tl_ticket_event_rows_t events;
    json_t *details = NULL;
    *count = 0;
    TL_ASSERT_OK(tl_store_ticket_events_read(f->reader, id, &events));
    for (size_t i = 0; i < events.count; i++)
        if (strcmp(events.rows[i].kind, kind) == 0) {
            json_decref(details);
            details = json_loads(events.rows[i].details, 0, NULL);
            (*count)++;
        }
    tl_ticket_event_rows_free(&events);
    return details;
}

/* ---- first responses ---------------------------------------------------------------------- */

struct record_by {
    int64_t ticket_id, time;
    const char *actor, *event, *action, *role;
};

static int record_by(tl_job_ctx_t *ctx, void *arg)
{
    const struct record_by *r = arg;
    json_t *details = json_pack("{s:s}", "text", "hello");
    tl_timeline_entry_t entry = {r->ticket_id, r->time, r->actor, r->event,
                                 r->action,    details, NULL};
    int rc = tl_timeline_record_by(ctx, &entry, r->role);
    json_decref(details);
    return rc;
}

/* A take is silent and a vendor's note is not the desk's answer; the desk's first note is the
 * first response, recorded once, with a change the clocks replay. */
static void test_first_response_is_what_the_desk_did_for_the_user(void **state)
{
    struct fixture *f = *state;
    struct record_by steps[] = {
        {f->ticket_id, 5000, "tech:alice", "ticket.taken", "ticket.take", "tier1"},
        {f->ticket_id, 6000, "tech:vera", "note", "ticket.note", "tier4"},
        {f->ticket_id, 7000, "agent:D-1", "note", NULL, NULL},
        {f->ticket_id, 8000, "tech:bob", "note", "ticket.note", "tier2"},
        {f->ticket_id, 9000, "tech:alice", "session.started", "session.start", "tier1"},
    };
    for (size_t i = 0; i < 3; i++) {
        TL_ASSERT_OK(on_worker(f, record_by, &steps[i]));
        tl_ticket_row_t row = ticket_row(f, f->ticket_id);
        assert_int_equal(row.first_response, 0);
        tl_ticket_row_clear(&row);
    }
    TL_ASSERT_OK(on_worker(f, record_by, &steps[3]));
    TL_ASSERT_OK(on_worker(f, record_by, &steps[4]));
    tl_ticket_row_t row = ticket_row(f, f->ticket_id);
    assert_int_equal(row.first_response, 8000);
    tl_ticket_row_clear(&row);
    /* The creation's three rows, then the one response. */
    expect_changes(f, f->ticket_id, 3, "response=note by tech:bob");
}

/* A record that fails (the log refuses its entry) leaves no response behind. */
static void test_a_refused_record_answers_nothing(void **state)
{
    struct fixture *f = *state;
    struct record_by bad = {f->ticket_id, 5000, "tech:bob", "note", "Bad Action", "tier2"};
    TL_ASSERT_RC(TL_EINVAL, on_worker(f, record_by, &bad));
    struct record_by missing = {99, 5000, "tech:bob", "note", "ticket.note", "tier2"};
    TL_ASSERT_RC(TL_ENOTFOUND, on_worker(f, record_by, &missing));
    tl_ticket_row_t row = ticket_row(f, f->ticket_id);
    assert_int_equal(row.first_response, 0);
    tl_ticket_row_clear(&row);
    expect_changes(f, f->ticket_id, 3, "");
}

/* ---- classification ------------------------------------------------------------------------ */

static void put_evidence(struct fixture *f, const char *text, char hash[TL_EVIDENCE_HASH_HEX])
{
    TL_ASSERT_OK(tl_evidence_put(f->evidence, text, strlen(text), hash));
}

static void sha256_hex(const char *text, char out[TL_SHA256_HEX_LEN])
{
    TL_ASSERT_OK(tl_sha256_hex(text, strlen(text), out));
}

static void test_a_proposal_cites_the_diagnostics_it_read(void **state)
{
    struct fixture *f = *state;
    char hash[TL_EVIDENCE_HASH_HEX], expected_fp[TL_SHA256_HEX_LEN], line[256];
    put_evidence(f, VAR_FULL, hash);
    sha256_hex(VAR_FULL_CONDITIONS, expected_fp);
    tl_triage_proposal_t *p = malloc(sizeof *p);
    assert_non_null(p);
    TL_ASSERT_OK(tl_triage_propose(f->evidence, "cannot save files", "", hash, p));
    assert_int_equal(p->classification.severity, 2);
    assert_int_equal(p->classification.category, TL_CATEGORY_DISK);
    snprintf(line, sizeof line, "S2: /var 97%% full, diagnostics sha256:%s", hash);
    assert_string_equal(p->classification.severity_line, line);
    assert_string_equal(p->fingerprint.hex, expected_fp);
    assert_string_equal(p->diagnostics, hash);
    assert_string_equal(p->problem, "");
    free(p);
}

static void test_unreadable_diagnostics_leave_the_words_to_decide(void **state)
{
    struct fixture *f = *state;
    char hash[TL_EVIDENCE_HASH_HEX];
    tl_triage_proposal_t *p = malloc(sizeof *p);
    assert_non_null(p);
    /* Not in the store. */
    TL_ASSERT_OK(
        tl_triage_propose(f->evidence, "I can't log in", "",
                          "abababababababababababababababababababababababababababababababab", p));
    assert_int_equal(p->classification.category, TL_CATEGORY_ACCOUNT);
    assert_string_equal(p->diagnostics, "");
    assert_string_equal(p->fingerprint.hex, "");
    assert_non_null(strstr(p->problem, "are not in the evidence store"));
    /* Not a diagnostics document. */
    put_evidence(f, "[1, 2, 3]", hash);
    TL_ASSERT_OK(tl_triage_propose(f->evidence, "I can't log in", "", hash, p));
    assert_int_equal(p->classification.category, TL_CATEGORY_ACCOUNT);
    assert_string_equal(p->problem, "the diagnostics are not a JSON object");
    assert_null(strstr(p->classification.severity_line, "diagnostics"));
    free(p);
}

struct record_new {
    int64_t ticket_id;
    const tl_triage_proposal_t *proposal;
};

static int record_new(tl_job_ctx_t *ctx, void *arg)
{
    const struct record_new *r = arg;
    return tl_triage_record_new(ctx, r->ticket_id, r->proposal, "relay", 4000);
}

/* A new ticket as the relay opens one: stored with the proposal, which its timeline explains. */
static void test_a_new_ticket_keeps_its_proposal_and_why(void **state)
{
    struct fixture *f = *state;
    char hash[TL_EVIDENCE_HASH_HEX], expected_fp[TL_SHA256_HEX_LEN];
    put_evidence(f, VAR_FULL, hash);
    sha256_hex(VAR_FULL_CONDITIONS, expected_fp);
    tl_triage_proposal_t *p = malloc(sizeof *p);
    assert_non_null(p);
    TL_ASSERT_OK(tl_triage_propose(f->evidence, "cannot save files", "", hash, p));
    tl_ticket_new_t ticket = {.device_id = f->device_id,
                              .title = "cannot save files",
                              .tier = 1,
                              .severity = p->classification.severity,
                              .category = tl_classify_category_name(p->classification.category)};
    int64_t id = 0;
    int created = 0;
    TL_ASSERT_OK(tl_ticket_create(f->reader, &ticket, 4000, &id, &created));
    struct record_new r = {id, p};
    TL_ASSERT_OK(on_worker(f, record_new, &r));
    tl_ticket_row_t row = ticket_row(f, id);
    assert_int_equal(row.severity, 2);
    assert_string_equal(row.category, "disk");
    assert_string_equal(row.fingerprint, expected_fp);
    tl_ticket_row_clear(&row);
    size_t count;
    json_t *details = last_event(f, id, TL_TRIAGE_EVENT, &count);
    assert_int_equal(count, 1);
    assert_string_equal(json_string_value(json_object_get(details, "by")), "proposal");
    assert_string_equal(json_string_value(json_object_get(details, "severity")), "S2");
    assert_string_equal(json_string_value(json_object_get(details, "diagnostics")), hash);
    json_t *first = json_array_get(json_object_get(details, "reasons"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "rule")), "disk-full");
    json_decref(details);
    free(p);
}

struct set_args {
    int64_t ticket_id;
    int severity;
    const char *category, *reason, *actor;
};

static int set_fields(tl_job_ctx_t *ctx, void *arg)
{
    const struct set_args *a = arg;
    return tl_triage_set(ctx, a->ticket_id, a->severity, a->category, a->reason, a->actor, 5000);
}

struct diagnostics_args {
    int64_t ticket_id;
    const char *hash;
};

static int new_diagnostics(tl_job_ctx_t *ctx, void *arg)
{
    const struct diagnostics_args *a = arg;
    return tl_triage_diagnostics(ctx, a->ticket_id, a->hash, 6000);
}

/* A technician's severity stays when diagnostics arrive; the category they left follows the
 * new proposal, and the fingerprint is set. */
static void test_new_diagnostics_keep_what_a_technician_chose(void **state)
{
    struct fixture *f = *state;
    struct set_args set = {f->ticket_id, 1, NULL, "the whole floor cannot print", "tech:carol"};
    TL_ASSERT_OK(on_worker(f, set_fields, &set));
    char hash[TL_EVIDENCE_HASH_HEX], expected_fp[TL_SHA256_HEX_LEN];
    put_evidence(f, VAR_FULL, hash);
    sha256_hex(VAR_FULL_CONDITIONS, expected_fp);
    struct diagnostics_args arrived = {f->ticket_id, hash};
    TL_ASSERT_OK(on_worker(f, new_diagnostics, &arrived));
    tl_ticket_row_t row = ticket_row(f, f->ticket_id);
    assert_int_equal(row.severity, 1);
    assert_string_equal(row.category, "disk");
    assert_string_equal(row.fingerprint, expected_fp);
    tl_ticket_row_clear(&row);
    expect_changes(f, f->ticket_id, 3, "severity=1 by tech:carol\ncategory=disk by relay");
    size_t count;
    json_t *details = last_event(f, f->ticket_id, TL_TRIAGE_EVENT, &count);
    assert_int_equal(count, 2);
    json_t *kept = json_object_get(details, "kept");
    assert_int_equal(json_array_size(kept), 1);
    assert_string_equal(json_string_value(json_array_get(kept, 0)), "severity");
    /* The proposal changed the category, not the severity the technician chose. */
    json_t *previous = json_object_get(details, "previous");
    assert_string_equal(json_string_value(json_object_get(previous, "category")), "other");
    assert_null(json_object_get(previous, "severity"));
    json_decref(details);
    /* The technician's choice is in the audit log too. */
    tl_audit_report_t report;
    TL_ASSERT_OK(tl_audit_verify(f->log, &report));
    FILE *in = fopen(f->log, "r");
    char line[4096];
    int classify_entries = 0;
    while (in != NULL && fgets(line, sizeof line, in) != NULL)
        classify_entries += strstr(line, "\"action\":\"ticket.classify\"") != NULL;
    if (in != NULL)
        fclose(in);
    assert_int_equal(classify_entries, 1);
}

/* A choice without a reason or a field, or with values out of range, changes nothing. */
static void test_a_choice_needs_a_field_and_a_reason(void **state)
{
    struct fixture *f = *state;
    struct set_args bad[] = {
        {f->ticket_id, 1, NULL, NULL, "tech:carol"},
        {f->ticket_id, 1, NULL, "", "tech:carol"},
        {f->ticket_id, 0, NULL, "why", "tech:carol"},
        {f->ticket_id, 5, NULL, "why", "tech:carol"},
        {f->ticket_id, 0, "floppy", "why", "tech:carol"},
        {f->ticket_id, 2, NULL, "why", "relay"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, on_worker(f, set_fields, &bad[i]));
    struct set_args missing = {99, 2, NULL, "why", "tech:carol"};
    TL_ASSERT_RC(TL_ENOTFOUND, on_worker(f, set_fields, &missing));
    tl_ticket_row_t row = ticket_row(f, f->ticket_id);
    assert_int_equal(row.severity, 3);
    assert_string_equal(row.category, "other");
    tl_ticket_row_clear(&row);
    expect_changes(f, f->ticket_id, 3, "");
}

/* ---- notices ------------------------------------------------------------------------------ */

static void test_notices_wait_for_their_technician_until_seen(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_OK(tl_store_notice_add(f->reader, "bob", f->ticket_id, 5000, "T-1 was taken"));
    TL_ASSERT_OK(tl_store_notice_add(f->reader, "alice", f->ticket_id, 5500, "for alice"));
    TL_ASSERT_OK(tl_store_notice_add(f->reader, "bob", f->ticket_id, 6000, "T-1 again"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_notice_add(f->reader, "bob", 99, 6000, "no ticket"));
    TL_ASSERT_RC(TL_EINVAL, tl_store_notice_add(f->reader, "Bob Smith", f->ticket_id, 6000, "x"));
    TL_ASSERT_RC(TL_EINVAL, tl_store_notice_add(f->reader, "bob", f->ticket_id, 6000, ""));
    tl_notice_rows_t rows;
    TL_ASSERT_OK(tl_store_notices_unseen(f->reader, "bob", 10, &rows));
    assert_int_equal(rows.count, 2);
    assert_string_equal(rows.rows[0].text, "T-1 was taken");
    assert_int_equal(rows.rows[1].time, 6000);
    int64_t first = rows.rows[0].id;
    tl_notice_rows_free(&rows);
    /* Seen up to the first: the second still waits, and alice's are hers. */
    TL_ASSERT_OK(tl_store_notices_seen(f->reader, "bob", first));
    TL_ASSERT_OK(tl_store_notices_unseen(f->reader, "bob", 10, &rows));
    assert_int_equal(rows.count, 1);
    assert_string_equal(rows.rows[0].text, "T-1 again");
    tl_notice_rows_free(&rows);
    TL_ASSERT_OK(tl_store_notices_unseen(f->reader, "alice", 1, &rows));
    assert_int_equal(rows.count, 1);
    tl_notice_rows_free(&rows);
}

#define QUEUES_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
    QUEUES_TEST(test_first_response_is_what_the_desk_did_for_the_user),
    QUEUES_TEST(test_a_refused_record_answers_nothing),
    QUEUES_TEST(test_a_proposal_cites_the_diagnostics_it_read),
    QUEUES_TEST(test_unreadable_diagnostics_leave_the_words_to_decide),
    QUEUES_TEST(test_a_new_ticket_keeps_its_proposal_and_why),
    QUEUES_TEST(test_new_diagnostics_keep_what_a_technician_chose),
    QUEUES_TEST(test_a_choice_needs_a_field_and_a_reason),
    QUEUES_TEST(test_notices_wait_for_their_technician_until_seen),
};

int main(int argc, char **argv)
{
    return tl_test_run("queues", tests, sizeof tests / sizeof tests[0], argc, argv);
}
