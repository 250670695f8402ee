/*
 * The user's side of the ticket on the relay (relay/desk/user_tickets.h), on a real SQLite file
 * and a real storage worker: a device sees its own tickets with the latest text a technician
 * wrote for it, and a technician's note or a change of status is published for the device's
 * agent only once the job that made it is durable.
 */
#include "tl_test.h"

#include "proto/text.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/desk/user_tickets.h"
#include "relay/store/audit_chain.h"
#include "relay/store/worker.h"

#include <stdlib.h>
#include <time.h>

#define CODE_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define CODE_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define FP_A "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define FP_B "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

struct fixture {
    char dir[64];
    tl_store_t *store;  /* the worker's while it runs */
    tl_store_t *reader; /* the test's own connection */
    tl_audit_chain_t *chain;
    uv_loop_t loop;
    uv_timer_t tick; /* keeps the loop alive: the worker's own handle does not */
    tl_worker_t *worker;
    int64_t device_a, device_b;
    /* What the listener heard, in order, as "device event status note" lines. */
    char heard[4096];
    int done_seen; /* the job's done ran before the listener heard anything */
};

static void on_tick(uv_timer_t *timer)
{
    (void)timer;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char db[96], log[96];
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/tl-user-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(db, sizeof db, "%s/relay.db", f->dir);
    snprintf(log, sizeof log, "%s/audit.log", f->dir);
    tl_device_info_t a = {FP_A, "laptop-a", "Debian"}, b = {FP_B, "laptop-b", "Debian"};
    if (tl_store_open(db, TL_STORE_CREATE_NEW, &f->store) != 0 ||
        tl_store_open(db, TL_STORE_OPEN_EXISTING, &f->reader) != 0 ||
        tl_audit_chain_open(f->store, log, TL_AUDIT_CHAIN_CREATE, &f->chain, NULL, 0) != 0 ||
        tl_store_code_add(f->store, CODE_A, 1000, 100000, "", NULL) != 0 ||
        tl_store_code_add(f->store, CODE_B, 1000, 100000, "", NULL) != 0 ||
        tl_store_enroll(f->store, CODE_A, 2000, &a, &f->device_a) != 0 ||
        tl_store_enroll(f->store, CODE_B, 2000, &b, &f->device_b) != 0 ||
        uv_loop_init(&f->loop) != 0 || uv_timer_init(&f->loop, &f->tick) != 0 ||
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

static int64_t open_ticket(struct fixture *f, int64_t device, const char *title, int64_t at)
{
    tl_ticket_new_t ticket = {.device_id = device, .title = title, .tier = 1};
    int64_t id = 0;
    int created = 0;
    TL_ASSERT_OK(tl_ticket_create(f->reader, &ticket, at, &id, &created));
    return id;
}

static void add_event(struct fixture *f, int64_t ticket, int64_t at, const char *actor,
                      const char *kind, const char *details)
{
    tl_ticket_event_row_t event = {ticket, at, actor, kind, details};
    TL_ASSERT_OK(tl_store_ticket_event_add(f->reader, &event));
}

/* ---- what a device sees --------------------------------------------------------------------- */

static void test_a_device_sees_its_own_tickets_newest_first(void **state)
{
    struct fixture *f = *state;
    int64_t first = open_ticket(f, f->device_a, "printer offline", 3000);
    int64_t other = open_ticket(f, f->device_b, "someone else's VPN", 3500);
    int64_t second = open_ticket(f, f->device_a, "disk full", 4000);
    add_event(f, other, 4500, "tech:bob", "note", "{\"text\":\"for device B only\"}");
    /* A note makes the first the most recently updated. */
    add_event(f, first, 5000, "tech:alice", "note", "{\"text\":\"switch it on, please\"}");

    tl_ticket_summary_t items[TL_TICKETS_LIST_MAX];
    size_t count = 0;
    int more = 1;
    TL_ASSERT_OK(tl_user_tickets_read(f->reader, f->device_a, items, &count, &more));
    assert_int_equal(count, 2);
    assert_false(more);
    char first_id[32], second_id[32];
    snprintf(first_id, sizeof first_id, "T-%lld", (long long)first);
    snprintf(second_id, sizeof second_id, "T-%lld", (long long)second);
    assert_string_equal(items[0].ticket, first_id);
    assert_string_equal(items[0].title, "printer offline");
    assert_string_equal(items[0].status, "new");
    assert_true(items[0].has_note);
    assert_string_equal(items[0].note, "switch it on, please");
    assert_string_equal(items[0].note_by, "alice");
    assert_int_equal(items[0].note_ms, 5000);
    assert_string_equal(items[1].ticket, second_id);
    assert_false(items[1].has_note);
    /* Device B sees B's ticket alone. */
    TL_ASSERT_OK(tl_user_tickets_read(f->reader, f->device_b, items, &count, &more));
    assert_int_equal(count, 1);
    assert_string_equal(items[0].title, "someone else's VPN");
    assert_string_equal(items[0].note, "for device B only");
    /* A device with no ticket sees none. */
    TL_ASSERT_OK(tl_user_tickets_read(f->reader, 999, items, &count, &more));
    assert_int_equal(count, 0);
}

static void test_the_latest_note_is_what_a_technician_wrote_for_the_user(void **state)
{
    struct fixture *f = *state;
    int64_t ticket = open_ticket(f, f->device_a, "printer offline", 3000);
    add_event(f, ticket, 4000, "tech:alice", "note", "{\"text\":\"first note\"}");
    /* Not written for the user: the agent's own records, evidence, a take. */
    add_event(f, ticket, 5000, "agent:D-1", "note", "{\"text\":\"the agent wrote this\"}");
    add_event(f, ticket, 5001, "tech:bob", "ticket.taken", "{\"assignee\":\"bob\"}");
    add_event(f, ticket, 5002, "tech:bob", "evidence.added", "{\"sha256\":\"00\"}");
    tl_ticket_summary_t summary;
    int64_t device = 0;
    TL_ASSERT_OK(tl_user_ticket_summary(f->reader, ticket, &summary, &device));
    assert_int_equal(device, f->device_a);
    assert_string_equal(summary.note, "first note");
    /* A resolution is the latest text when it comes last. */
    add_event(f, ticket, 6000, "tech:bob", "ticket.resolved",
              "{\"previous\":\"open\",\"resolution\":\"restarted cups\"}");
    TL_ASSERT_OK(tl_user_ticket_summary(f->reader, ticket, &summary, NULL));
    assert_string_equal(summary.note, "restarted cups");
    assert_string_equal(summary.note_by, "bob");
    TL_ASSERT_RC(TL_ENOTFOUND, tl_user_ticket_summary(f->reader, 999, &summary, NULL));
}

static void test_a_long_note_is_clipped_to_the_wire_limit(void **state)
{
    struct fixture *f = *state;
    int64_t ticket = open_ticket(f, f->device_a, "printer offline", 3000);
    /* 700 two-byte characters: 1400 bytes, over the limit, cut between characters. */
    char details[2048] = "{\"text\":\"";
    for (int i = 0; i < 700; i++)
        strcat(details, "\xc3\xa9");
    strcat(details, "\"}");
    add_event(f, ticket, 4000, "tech:alice", "note", details);
    tl_ticket_summary_t summary;
    TL_ASSERT_OK(tl_user_ticket_summary(f->reader, ticket, &summary, NULL));
    size_t len = strlen(summary.note);
    assert_true(len <= TL_TICKET_NOTE_MAX);
    assert_true(len >= TL_TICKET_NOTE_MAX - 4);
    assert_string_equal(summary.note + len - 3, "\xe2\x80\xa6");
    assert_true(tl_text_utf8_valid(summary.note, len));
}

static void test_more_than_a_list_holds_says_so(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < TL_TICKETS_LIST_MAX + 2; i++)
        open_ticket(f, f->device_a, "one of many", 3000 + i);
    tl_ticket_summary_t items[TL_TICKETS_LIST_MAX];
    size_t count = 0;
    int more = 0;
    TL_ASSERT_OK(tl_user_tickets_read(f->reader, f->device_a, items, &count, &more));
    assert_int_equal(count, TL_TICKETS_LIST_MAX);
    assert_true(more);
    /* Newest first: the last opened leads. */
    char last[32];
    snprintf(last, sizeof last, "T-%d", TL_TICKETS_LIST_MAX + 2);
    assert_string_equal(items[0].ticket, last);
}

/* ---- what is published, and when ---------------------------------------------------------- */

struct record_job {
    tl_job_t job;
    struct fixture *f;
    tl_timeline_entry_t entry;
    const char *status; /* a change of status first; NULL: none */
    int fail;           /* the job fails after recording */
    int done;
};

static int run_record(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct record_job *job = (struct record_job *)base;
    if (job->status != NULL) {
        int rc = tl_ticket_update(ctx->store, job->entry.ticket_id, NULL, job->status,
                                  job->entry.actor, job->entry.time_ms);
        if (rc != 0)
            return rc;
    }
    int rc = tl_timeline_record(ctx, &job->entry);
    return rc != 0 ? rc : job->fail ? TL_EIO : 0;
}

static void record_done(tl_job_t *base, int status)
{
    struct record_job *job = (struct record_job *)base;
    job->done = 1;
    job->f->done_seen = 1;
}

static void on_heard(void *data, const char *channel, json_t *message)
{
    struct fixture *f = data;
    if (!f->done_seen)
        fail_msg("published before the job was acknowledged");
    tl_ticket_update_t update;
    TL_ASSERT_OK(tl_msg_ticket_update_decode(json_object_get(message, "body"), &update));
    size_t used = strlen(f->heard);
    snprintf(f->heard + used, sizeof f->heard - used, "%sD-%lld %s %s %s %s", used > 0 ? "\n" : "",
             (long long)json_integer_value(json_object_get(message, "device")), channel,
             update.event, update.summary.status,
             update.summary.has_note ? update.summary.note : "-");
}

static void run_job(struct fixture *f, struct record_job *job)
{
    int rc = 0;
    if (f->worker == NULL) {
        f->worker = tl_worker_new(&f->loop, f->store, f->chain, NULL, NULL, &rc);
        assert_non_null(f->worker);
        TL_ASSERT_OK(tl_worker_listen(f->worker, TL_USER_TICKETS_CHANNEL, on_heard, f));
    }
    job->f = f;
    job->job.run = run_record;
    job->job.done = record_done;
    f->done_seen = 0;
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

static void test_a_note_and_a_change_of_status_reach_the_device_once_durable(void **state)
{
    struct fixture *f = *state;
    int64_t ticket = open_ticket(f, f->device_a, "printer offline", 3000);
    json_t *note = json_pack("{s:s}", "text", "Could you switch it on?");
    struct record_job asked = {
        .entry = {ticket, 4000, "tech:alice", "note", "ticket.note", note, NULL},
        .status = "waiting-user"};
    run_job(f, &asked);
    json_t *resolution =
        json_pack("{s:s, s:s}", "previous", "waiting-user", "resolution", "it was off");
    struct record_job resolved = {.entry = {ticket, 5000, "tech:alice", "ticket.resolved",
                                            "ticket.resolve", resolution, NULL},
                                  .status = "resolved"};
    run_job(f, &resolved);
    char expected[256];
    snprintf(expected, sizeof expected,
             "D-%lld ticket.update note waiting-user Could you switch it on?\n"
             "D-%lld ticket.update ticket.resolved resolved it was off",
             (long long)f->device_a, (long long)f->device_a);
    assert_string_equal(f->heard, expected);
    json_decref(note);
    json_decref(resolution);
}

static void test_nothing_is_published_for_an_undone_job_or_what_is_not_news(void **state)
{
    struct fixture *f = *state;
    int64_t ticket = open_ticket(f, f->device_a, "printer offline", 3000);
    json_t *note = json_pack("{s:s}", "text", "never kept");
    /* Recorded, then the job failed: undone, and nobody hears of it. */
    struct record_job failed = {
        .entry = {ticket, 4000, "tech:alice", "note", "ticket.note", note, NULL}, .fail = 1};
    run_job(f, &failed);
    /* Kept, but not news for the user. */
    struct record_job taken = {
        .entry = {ticket, 4100, "tech:bob", "ticket.taken", "ticket.take", NULL, NULL}};
    run_job(f, &taken);
    struct record_job evidence = {
        .entry = {ticket, 4200, "agent:D-1", "evidence.added", NULL, NULL, NULL}};
    run_job(f, &evidence);
    struct record_job agent_note = {.entry = {ticket, 4300, "agent:D-1", "note", NULL, note, NULL}};
    run_job(f, &agent_note);
    assert_string_equal(f->heard, "");
    /* The failed job's note was undone with it. */
    tl_ticket_summary_t summary;
    TL_ASSERT_OK(tl_user_ticket_summary(f->reader, ticket, &summary, NULL));
    assert_false(summary.has_note);
    json_decref(note);
}

static void test_which_events_are_news_for_the_user(void **state)
{
    (void)state;
    assert_true(tl_user_tickets_is_news("note", "tech:alice"));
    assert_true(tl_user_tickets_is_news("ticket.resolved", "tech:alice"));
    assert_true(tl_user_tickets_is_news("ticket.reopened", "tech:alice"));
    assert_true(tl_user_tickets_is_news("ticket.closed", "relay"));
    assert_false(tl_user_tickets_is_news("note", "agent:D-1"));
    assert_false(tl_user_tickets_is_news("note", "technician:alice"));
    assert_false(tl_user_tickets_is_news("ticket.created", "agent:D-1"));
    assert_false(tl_user_tickets_is_news("ticket.taken", "tech:alice"));
    assert_false(tl_user_tickets_is_news("evidence.added", "agent:D-1"));
    assert_false(tl_user_tickets_is_news("session.started", "tech:alice"));
    assert_false(tl_user_tickets_is_news(NULL, "tech:alice"));
    assert_false(tl_user_tickets_is_news("note", NULL));
}

/* The worker's publishing on its own: bounded per job, only from a job's run. */
static int run_flood(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct record_job *job = (struct record_job *)base;
    json_t *message = json_pack("{s:I, s:{}}", "device", (json_int_t)1, "body");
    int rc = 0;
    for (int i = 0; i < TL_WORKER_MAX_PUBLISHED && rc == 0; i++)
        rc = tl_worker_publish(ctx, "other", message);
    if (rc == 0 && tl_worker_publish(ctx, "other", message) != TL_EFULL)
        rc = TL_EPROTO;
    json_decref(message);
    job->fail = rc;
    return 0;
}

static void on_other(void *data, const char *channel, json_t *message)
{
    int *count = data;
    (*count)++;
}

static void test_publishing_is_bounded_per_job_and_only_from_a_job(void **state)
{
    struct fixture *f = *state;
    int rc = 0, heard = 0;
    f->worker = tl_worker_new(&f->loop, f->store, f->chain, NULL, NULL, &rc);
    assert_non_null(f->worker);
    TL_ASSERT_OK(tl_worker_listen(f->worker, "other", on_other, &heard));
    json_t *message = json_object();
    tl_job_ctx_t outside = {f->reader, NULL, f->worker};
    TL_ASSERT_RC(TL_ESTORE, tl_worker_publish(&outside, "other", message));
    json_decref(message);
    struct record_job job = {.f = f};
    job.job.run = run_flood;
    job.job.done = record_done;
    tl_worker_submit(f->worker, &job.job);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!job.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("the worker did not finish a job in 30 s");
    }
    TL_ASSERT_OK(job.fail);
    assert_int_equal(heard, TL_WORKER_MAX_PUBLISHED);
    for (int i = 1; i < TL_WORKER_MAX_LISTENERS; i++)
        TL_ASSERT_OK(tl_worker_listen(f->worker, "more", on_other, &heard));
    TL_ASSERT_RC(TL_EFULL, tl_worker_listen(f->worker, "more", on_other, &heard));
}

#define USER_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
    USER_TEST(test_a_device_sees_its_own_tickets_newest_first),
    USER_TEST(test_the_latest_note_is_what_a_technician_wrote_for_the_user),
    USER_TEST(test_a_long_note_is_clipped_to_the_wire_limit),
    USER_TEST(test_more_than_a_list_holds_says_so),
    USER_TEST(test_a_note_and_a_change_of_status_reach_the_device_once_durable),
    USER_TEST(test_nothing_is_published_for_an_undone_job_or_what_is_not_news),
    cmocka_unit_test(test_which_events_are_news_for_the_user),
    USER_TEST(test_publishing_is_bounded_per_job_and_only_from_a_job),
};

TL_TEST_MAIN(tests)
