/*
 * The relay's checkpoints (relay/store/audit_checkpoint.h) with a real data directory, store,
 * chain and storage worker: a request signs the log as written, a thousand entries make one on
 * their own, so does each 5-minute period if the tree grew, the shutdown makes the last, and none
 * is made while the log cannot be written.
 */
#include "tl_test.h"

#include "proto/note.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_key.h"
#include "relay/store/audit_query.h"
#include "relay/store/datadir.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char tmp[64];
    char data[96];
    char log[128];
    char moved[128];
    char checkpoints[128];
    tl_store_t *store;
    tl_audit_chain_t *chain;
    uv_loop_t loop;
    uv_timer_t tick;
    tl_worker_t *worker;
    tl_audit_checkpoints_t *cps;
};

static void on_tick(uv_timer_t *timer)
{
    (void)timer;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char fingerprint[TL_FINGERPRINT_LEN], db[128], problem[768];
    int rc;
    if (f == NULL)
        return -1;
    strcpy(f->tmp, "/tmp/tl-checkpoint-XXXXXX");
    if (mkdtemp(f->tmp) == NULL)
        return -1;
    snprintf(f->data, sizeof f->data, "%s/data", f->tmp);
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->data);
    snprintf(f->moved, sizeof f->moved, "%s/audit.log.moved", f->data);
    snprintf(f->checkpoints, sizeof f->checkpoints, "%s/audit.checkpoints", f->data);
    snprintf(db, sizeof db, "%s/relay.db", f->data);
    if (tl_datadir_init(f->data, "127.0.0.1:7443", NULL, fingerprint) != 0 ||
        tl_store_open(db, TL_STORE_OPEN_EXISTING, &f->store) != 0 ||
        tl_audit_chain_open(f->store, f->log, 0, &f->chain, NULL, 0) != 0 ||
        uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 5, 5);
    f->worker = tl_worker_new(&f->loop, f->store, f->chain, NULL, NULL, &rc);
    if (f->worker == NULL)
        return -1;
    f->cps = tl_audit_checkpoints_start(&f->loop, f->worker, f->data, &rc, problem, sizeof problem);
    if (f->cps == NULL) {
        fprintf(stderr, "checkpoints: %s\n", problem);
        return -1;
    }
    *state = f;
    return 0;
}

/* Stops everything (with the shutdown checkpoint) unless a test did. */
static void shut_down(struct fixture *f)
{
    if (f->worker == NULL)
        return;
    tl_audit_checkpoints_stop(f->cps);
    tl_worker_free(f->worker);
    f->worker = NULL;
    tl_audit_checkpoints_final(f->cps, f->store, f->chain);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    tl_audit_checkpoints_free(f->cps);
    f->cps = NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    shut_down(f);
    int rc = uv_loop_close(&f->loop);
    tl_audit_chain_close(f->chain);
    tl_store_close(f->store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->tmp);
    rc |= system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Runs the loop until flag is set (bounded: 30 s). */
static void run_until(uv_loop_t *loop, const int *flag)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!*flag) {
        uv_run(loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("the worker did not finish in 30 s");
    }
}

struct entries_job {
    tl_job_t job;
    int count;
    const char *action, *subject; /* NULL: test.entry, "" */
    int done;
    int status;
};

static int run_entries(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct entries_job *ej = (struct entries_job *)job;
    int rc = 0;
    for (int i = 0; i < ej->count && rc == 0; i++) {
        json_t *details = json_pack("{s:i}", "n", i);
        if (ej->action != NULL) /* an item's store names its hash, the subject */
            json_object_set_new(details, "sha256", json_string(ej->subject));
        rc = tl_worker_audit(ctx, "admin", ej->action != NULL ? ej->action : "test.entry",
                             ej->subject != NULL ? ej->subject : "", details);
        json_decref(details);
    }
    return rc;
}

static void entries_done(tl_job_t *job, int status)
{
    struct entries_job *ej = (struct entries_job *)job;
    ej->status = status;
    ej->done = 1;
}

/* count entries written through the worker, in one job. */
static int write_entries_as(struct fixture *f, int count, const char *action, const char *subject)
{
    struct entries_job job = {.job = {.run = run_entries, .done = entries_done},
                              .count = count,
                              .action = action,
                              .subject = subject};
    tl_worker_submit(f->worker, &job.job);
    run_until(&f->loop, &job.done);
    return job.status;
}

static int write_entries(struct fixture *f, int count)
{
    struct entries_job job = {.job = {.run = run_entries, .done = entries_done}, .count = count};
    tl_worker_submit(f->worker, &job.job);
    run_until(&f->loop, &job.done);
    return job.status;
}

struct answer {
    int done;
    int status;
    tl_checkpoint_t checkpoint;
    char note[1024];
};

static void answered(void *data, int status, const tl_checkpoint_t *checkpoint, const char *note)
{
    struct answer *a = data;
    a->status = status;
    if (status == 0) {
        a->checkpoint = *checkpoint;
        snprintf(a->note, sizeof a->note, "%s", note);
    }
    a->done = 1;
}

static struct answer request(struct fixture *f)
{
    struct answer a = {0};
    TL_ASSERT_OK(tl_audit_checkpoints_request(f->cps, answered, &a));
    run_until(&f->loop, &a.done);
    return a;
}

static int count_note(void *arg, uint64_t index, const char *note, size_t len)
{
    (void)note;
    (void)len;
    *(uint64_t *)arg = index;
    return 0;
}

static uint64_t stored_notes(struct fixture *f)
{
    uint64_t count = 0;
    int rc = tl_audit_checkpoints_each(f->checkpoints, count_note, &count, NULL);
    return rc == 0 ? count : 0;
}

/* The log's lines, and the last one's action and details. */
static int log_lines(struct fixture *f, json_t **last)
{
    FILE *in = fopen(f->log, "r");
    char line[8192];
    int count = 0;
    assert_non_null(in);
    *last = NULL;
    while (fgets(line, sizeof line, in) != NULL) {
        json_decref(*last);
        *last = json_loads(line, 0, NULL);
        count++;
    }
    fclose(in);
    return count;
}

static void test_a_request_signs_the_log_as_written(void **state)
{
    struct fixture *f = *state;
    json_t *last = NULL;
    TL_ASSERT_OK(write_entries(f, 3));
    struct answer a = request(f);
    TL_ASSERT_OK(a.status);
    assert_int_equal(a.checkpoint.size, 4); /* relay.init and the three */
    /* The note is signed by the data directory's audit key. */
    tl_note_verifier_t verifier;
    size_t text_len = 0;
    char key_path[4096], name[TL_NOTE_NAME_MAX + 1];
    TL_ASSERT_OK(tl_audit_checkpoints_signer(f->data, key_path, sizeof key_path, name));
    TL_ASSERT_OK(tl_audit_key_verifier(key_path, name, &verifier, NULL));
    TL_ASSERT_OK(tl_note_open(a.note, strlen(a.note), &verifier, &text_len));
    assert_string_equal(a.checkpoint.origin, verifier.name);
    /* Stored, and on the record as the next entry. */
    assert_int_equal(stored_notes(f), 1);
    assert_int_equal(log_lines(f, &last), 5);
    assert_string_equal(json_string_value(json_object_get(last, "action")), "audit.checkpoint");
    json_t *details = json_object_get(last, "details");
    assert_int_equal(json_integer_value(json_object_get(details, "size")), 4);
    assert_string_equal(json_string_value(json_object_get(details, "origin")), verifier.name);
    json_decref(last);
}

/*
 * The timed checkpoint: the timer runs every 5 minutes from the start; each time it fires it makes
 * one if the tree grew past the last checkpoint and its entry, and none if not. The test fires it
 * itself (no waiting, no timing), and finishes each round with a job behind it on the worker.
 */
static void test_every_five_minutes_a_checkpoint_if_the_tree_grew(void **state)
{
    struct fixture *f = *state;
    uint64_t repeat = 0, due = 0;
    tl_audit_checkpoints_timer(f->cps, &repeat, &due);
    assert_int_equal(repeat, 5 * 60 * 1000);
    assert_true(due > 0 && due <= 5 * 60 * 1000);
    /* Nothing signed yet: the first period signs the log (relay.init). */
    tl_audit_checkpoints_interval_elapsed(f->cps);
    TL_ASSERT_OK(write_entries(f, 0));
    assert_int_equal(stored_notes(f), 1);
    /* Only its own entry since: nothing new. */
    tl_audit_checkpoints_interval_elapsed(f->cps);
    TL_ASSERT_OK(write_entries(f, 0));
    assert_int_equal(stored_notes(f), 1);
    /* Grown: the next period signs it all (1 + its entry + 3). */
    TL_ASSERT_OK(write_entries(f, 3));
    tl_audit_checkpoints_interval_elapsed(f->cps);
    TL_ASSERT_OK(write_entries(f, 0));
    assert_int_equal(stored_notes(f), 2);
    char *note = NULL;
    size_t len = 0;
    json_t *details = NULL;
    TL_ASSERT_OK(tl_audit_checkpoints_last(f->checkpoints, &note, &len));
    TL_ASSERT_OK(tl_audit_checkpoint_details(note, len, &details));
    assert_int_equal(json_integer_value(json_object_get(details, "size")), 5);
    json_decref(details);
    free(note);
    /* Stopped (shutting down): the timer is gone and a late period asks nothing. */
    tl_audit_checkpoints_stop(f->cps);
    tl_audit_checkpoints_timer(f->cps, &repeat, &due);
    assert_int_equal(repeat, 0);
    TL_ASSERT_OK(write_entries(f, 2));
    tl_audit_checkpoints_interval_elapsed(f->cps);
    TL_ASSERT_OK(write_entries(f, 0));
    assert_int_equal(stored_notes(f), 2);
}

static void test_a_thousand_entries_make_a_checkpoint(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 9; i++)
        TL_ASSERT_OK(write_entries(f, 100));
    assert_int_equal(stored_notes(f), 0);
    TL_ASSERT_OK(write_entries(f, 100));
    /* The count reached: the worker makes one by itself (bounded wait, no timing). */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (stored_notes(f) == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("no checkpoint after 1,000 entries");
    }
    char *note = NULL;
    size_t len = 0;
    TL_ASSERT_OK(tl_audit_checkpoints_last(f->checkpoints, &note, &len));
    json_t *details = NULL;
    TL_ASSERT_OK(tl_audit_checkpoint_details(note, len, &details));
    assert_int_equal(json_integer_value(json_object_get(details, "size")), 1001);
    json_decref(details);
    free(note);
}

/*
 * A ticket's bundle (audit_query.h): every entry about the ticket, each proved against the latest
 * checkpoint, at every tree size from 3 to 81 (the sizes that are no power of two too).
 */
static void test_an_export_proves_each_entry_about_a_ticket_at_every_size(void **state)
{
    struct fixture *f = *state;
    tl_audit_export_t ex;
    char why[512];
    const char *hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_int_equal(tl_audit_export_ticket(f->data, "T-1", NULL, 0, &ex, why, sizeof why),
                     TL_ESTATE); /* no checkpoint yet */
    uint64_t about = 0;
    for (int step = 1; step <= 40; step++) {
        /* T-1's entries, T-10's (which holds "T-1" as text) and an item's store. */
        const char *subject = step % 3 == 0 ? "T-1" : step % 3 == 1 ? "T-10" : hash;
        TL_ASSERT_OK(write_entries_as(f, 1, step % 3 == 2 ? "evidence.store" : NULL, subject));
        about += step % 3 == 0;
        struct answer a = request(f);
        TL_ASSERT_OK(a.status);
        TL_ASSERT_OK(tl_audit_export_ticket(f->data, "T-1", NULL, 0, &ex, why, sizeof why));
        assert_int_equal(ex.tree_size, a.checkpoint.size);
        assert_int_equal(ex.count, about);
        json_t *proofs = json_loadb(ex.proofs, ex.proofs_len, 0, NULL);
        assert_int_equal(json_array_size(json_object_get(proofs, "proofs")), about);
        assert_int_equal(json_integer_value(json_object_get(proofs, "tree_size")), ex.tree_size);
        json_decref(proofs);
        for (const char *line = ex.entries; line < ex.entries + ex.entries_len;
             line = strchr(line, '\n') + 1)
            assert_true(strncmp(strstr(line, "\"subject\":"), "\"subject\":\"T-1\"", 15) == 0);
        assert_string_equal(ex.checkpoint, a.note);
        tl_audit_export_release(&ex);
    }
    /* The items' evidence.store entries come with the ticket's when their hashes are given. */
    const char *hashes[] = {hash};
    TL_ASSERT_OK(tl_audit_export_ticket(f->data, "T-1", hashes, 1, &ex, why, sizeof why));
    assert_int_equal(ex.count, about + 13);
    tl_audit_export_release(&ex);
}

static void test_shutdown_makes_the_last_checkpoint(void **state)
{
    struct fixture *f = *state;
    json_t *last = NULL;
    TL_ASSERT_OK(write_entries(f, 2));
    shut_down(f);
    assert_int_equal(stored_notes(f), 1);
    assert_int_equal(log_lines(f, &last), 4);
    assert_string_equal(json_string_value(json_object_get(last, "action")), "audit.checkpoint");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "details"), "size")),
                     3);
    json_decref(last);
}

static void test_no_checkpoint_while_the_log_cannot_be_written(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_OK(write_entries(f, 1));
    assert_int_equal(rename(f->log, f->moved), 0);
    TL_ASSERT_RC(TL_EAUDIT, write_entries(f, 1));
    struct answer a = request(f);
    TL_ASSERT_RC(TL_EAUDIT, a.status);
    assert_int_equal(stored_notes(f), 0);
    /* Back: the next request covers everything, the entry that waited included. */
    assert_int_equal(rename(f->moved, f->log), 0);
    TL_ASSERT_OK(write_entries(f, 1));
    a = request(f);
    TL_ASSERT_OK(a.status);
    assert_int_equal(a.checkpoint.size, 4);
    assert_int_equal(stored_notes(f), 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_a_request_signs_the_log_as_written, setup, teardown),
    cmocka_unit_test_setup_teardown(test_an_export_proves_each_entry_about_a_ticket_at_every_size,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_a_thousand_entries_make_a_checkpoint, setup, teardown),
    cmocka_unit_test_setup_teardown(test_every_five_minutes_a_checkpoint_if_the_tree_grew, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_shutdown_makes_the_last_checkpoint, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_checkpoint_while_the_log_cannot_be_written, setup,
                                    teardown),
};

TL_TEST_MAIN(tests)
