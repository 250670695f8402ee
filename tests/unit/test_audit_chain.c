/*
 * The audit chain with its head in the store (relay/store/audit_chain.h), and the storage worker
 * that writes it (relay/store/worker.h): what a crash or a failing log can leave, and that nothing
 * staged is ever lost, written twice, or acknowledged before it is in the log.
 */
#include "tl_test.h"

#include "relay/store/audit_chain.h"
#include "relay/store/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char db[96];
    char log[96];
    char moved[96];
    tl_store_t *store;
    tl_audit_chain_t *chain;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/tl-chain-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/relay.db", f->dir);
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->dir);
    snprintf(f->moved, sizeof f->moved, "%s/audit.log.moved", f->dir);
    if (tl_store_open(f->db, TL_STORE_CREATE_NEW, &f->store) != 0 ||
        tl_audit_chain_open(f->store, f->log, TL_AUDIT_CHAIN_CREATE, &f->chain, NULL, 0) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_audit_chain_close(f->chain);
    tl_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

struct staging {
    tl_audit_chain_t *chain;
    tl_audit_entry_t entry;
    int fail_after; /* the unit's work fails after staging: all of it is undone */
};

static int stage_entry(tl_store_t *store, void *arg)
{
    struct staging *staging = arg;
    (void)store;
    TL_ASSERT_OK(tl_audit_chain_stage(staging->chain, &staging->entry, NULL));
    return staging->fail_after ? TL_EIO : 0;
}

/* Stages one entry (details {"n": n}) in a unit of work of its own and commits; no flush. */
static void stage_committed(struct fixture *f, int n)
{
    json_t *details = json_pack("{s:i}", "n", n);
    struct staging staging = {f->chain, {"admin", "test.entry", "", details, 0}, 0};
    TL_ASSERT_OK(tl_store_unit_run(f->store, stage_entry, &staging));
    json_decref(details);
}

static void record(struct fixture *f, int n)
{
    stage_committed(f, n);
    TL_ASSERT_OK(tl_audit_chain_flush(f->chain));
}

static uint64_t waiting_in(tl_store_t *store)
{
    uint64_t count = 0;
    TL_ASSERT_OK(tl_store_audit_outbox_count(store, &count, NULL));
    return count;
}

static uint64_t waiting(struct fixture *f)
{
    return waiting_in(f->store);
}

/* The log's entries' "n" members, in file order, as a string like "1 2 3"; checks the chain. */
static void expect_log(struct fixture *f, const char *expected)
{
    tl_audit_report_t report;
    int rc = tl_audit_verify(f->log, &report);
    if (rc != 0)
        fail_msg("audit log does not verify: %s", report.reason);
    FILE *in = fopen(f->log, "r");
    assert_non_null(in);
    char line[4096], seen[512] = "";
    while (fgets(line, sizeof line, in) != NULL) {
        json_t *entry = json_loads(line, 0, NULL);
        assert_non_null(entry);
        const char *action = json_string_value(json_object_get(entry, "action"));
        json_t *n = json_object_get(json_object_get(entry, "details"), "n");
        char word[64];
        if (json_is_integer(n))
            snprintf(word, sizeof word, "%" JSON_INTEGER_FORMAT, json_integer_value(n));
        else
            snprintf(word, sizeof word, "%s", action);
        if (seen[0] != '\0')
            strcat(seen, " ");
        strcat(seen, word);
        json_decref(entry);
    }
    fclose(in);
    if (strcmp(seen, expected) != 0)
        fail_msg("audit log holds [%s], expected [%s]", seen, expected);
}

static void expect_problem(const char *problem, const char *needle)
{
    if (strstr(problem, needle) == NULL)
        fail_msg("problem \"%s\" does not say \"%s\"", problem, needle);
}

/* Closes and opens the chain again; the problem must say each needle given. */
static void reopen_expecting(struct fixture *f, int expected_rc, const char *needle,
                             const char *needle2)
{
    char problem[768] = "";
    tl_audit_chain_close(f->chain);
    f->chain = NULL;
    TL_ASSERT_RC(expected_rc,
                 tl_audit_chain_open(f->store, f->log, 0, &f->chain, problem, sizeof problem));
    if (needle != NULL)
        expect_problem(problem, needle);
    if (needle2 != NULL)
        expect_problem(problem, needle2);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    char *data = malloc(1 << 20);
    assert_non_null(data);
    *len = fread(data, 1, (1 << 20) - 1, in);
    data[*len] = '\0';
    fclose(in);
    return data;
}

static void write_all(const char *path, const char *data, size_t len)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(data, 1, len, out), len);
    fclose(out);
}

/* ---- the chain -------------------------------------------------------------------------- */

static void test_staged_lines_reach_the_log_only_at_flush(void **state)
{
    struct fixture *f = *state;
    stage_committed(f, 1);
    stage_committed(f, 2);
    assert_int_equal(waiting(f), 2);
    expect_log(f, ""); /* nothing yet */
    TL_ASSERT_OK(tl_audit_chain_flush(f->chain));
    assert_int_equal(waiting(f), 0);
    expect_log(f, "1 2");
    tl_store_audit_head_t head;
    TL_ASSERT_OK(tl_store_audit_head_get(f->store, &head));
    tl_audit_report_t report;
    TL_ASSERT_OK(tl_audit_verify(f->log, &report));
    assert_int_equal(head.seq, 2);
    assert_string_equal(head.hash, report.last_hash);
}

static void test_rolled_back_stage_leaves_no_trace(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    json_t *details = json_pack("{s:i}", "n", 2);
    struct staging staging = {f->chain, {"admin", "test.entry", "", details, 0}, 1};
    TL_ASSERT_RC(TL_EIO, tl_store_unit_run(f->store, stage_entry, &staging));
    json_decref(details);
    record(f, 3);
    expect_log(f, "1 3");
}

/* The defect of the old worker: a failed write's entries were deleted by the next success. */
static void test_lines_of_a_failed_write_are_written_first_and_in_order(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    stage_committed(f, 2);
    assert_int_equal(rename(f->log, f->moved), 0);
    TL_ASSERT_RC(TL_EAUDIT, tl_audit_chain_flush(f->chain));
    expect_problem(tl_audit_chain_problem(f->chain), "missing");
    assert_int_equal(waiting(f), 1);
    assert_int_equal(tl_audit_chain_waiting(f->chain), 1);
    struct stat st;
    assert_int_equal(stat(f->log, &st), -1); /* never recreated behind the operator's back */
    assert_int_equal(rename(f->moved, f->log), 0);
    stage_committed(f, 3);
    TL_ASSERT_OK(tl_audit_chain_flush(f->chain));
    assert_int_equal(waiting(f), 0);
    assert_int_equal(tl_audit_chain_waiting(f->chain), 0);
    expect_log(f, "1 2 3");
}

static void test_log_replaced_underneath_is_refused_until_restored(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    record(f, 2);
    assert_int_equal(rename(f->log, f->moved), 0);
    write_all(f->log, "", 0);
    assert_int_equal(chmod(f->log, 0600), 0);
    stage_committed(f, 3);
    TL_ASSERT_RC(TL_EAUDIT, tl_audit_chain_flush(f->chain));
    expect_problem(tl_audit_chain_problem(f->chain), "but the database head is seq 3");
    size_t len;
    free(read_all(f->log, &len));
    assert_int_equal(len, 0); /* no new chain started in the replacement */
    assert_int_equal(rename(f->moved, f->log), 0);
    TL_ASSERT_OK(tl_audit_chain_flush(f->chain));
    expect_log(f, "1 2 3");
}

static void test_open_refuses_a_deleted_log(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    record(f, 2);
    assert_int_equal(unlink(f->log), 0);
    reopen_expecting(f, TL_EAUDIT, "is missing but the database head is seq 2",
                     "2 entries missing");
    struct stat st;
    assert_int_equal(stat(f->log, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_open_refuses_a_shortened_log(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    record(f, 2);
    record(f, 3);
    size_t len;
    char *data = read_all(f->log, &len);
    char *last = data + len - 1;
    while (last > data && last[-1] != '\n')
        last--;
    write_all(f->log, data, (size_t)(last - data));
    free(data);
    reopen_expecting(f, TL_EAUDIT, "audit log ends at seq 2 but the database head is seq 3 (hash ",
                     "1 entry missing");
}

static void test_open_refuses_a_log_that_diverges(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    /* Another chain of the same length in its place: every line valid, the wrong history. */
    assert_int_equal(unlink(f->log), 0);
    tl_audit_t *other;
    TL_ASSERT_OK(tl_audit_open(f->log, &other));
    TL_ASSERT_OK(tl_audit_append(other, "admin", "forged", "", NULL, NULL));
    tl_audit_close(other);
    reopen_expecting(f, TL_EAUDIT, "diverges from the database at seq 1", NULL);
}

static void test_open_refuses_an_edited_last_line(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    size_t len;
    char *data = read_all(f->log, &len);
    char *n = strstr(data + len - 200, "\"n\":1");
    assert_non_null(n);
    n[4] = '7';
    write_all(f->log, data, len);
    free(data);
    reopen_expecting(f, TL_EAUDIT, "its last entry (seq 1) fails its own check: bad-hash", NULL);
}

static void test_open_writes_what_a_crash_left_in_the_outbox(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    stage_committed(f, 2); /* committed, then the process died before the write */
    reopen_expecting(f, 0, NULL, NULL);
    assert_int_equal(waiting(f), 0);
    expect_log(f, "1 2");
}

static void test_crash_between_write_and_clear_writes_nothing_twice(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    stage_committed(f, 2);
    /* The write happened, the clear did not: the line is in both places. */
    tl_audit_outbox_rows_t rows;
    tl_store_audit_head_t head;
    TL_ASSERT_OK(tl_store_audit_outbox_read(f->store, 10, &head, &rows));
    assert_int_equal(rows.count, 1);
    const char *line = rows.rows[0].line;
    FILE *out = fopen(f->log, "ab");
    fputs(line, out);
    fclose(out);
    tl_audit_outbox_rows_free(&rows);
    reopen_expecting(f, 0, NULL, NULL);
    assert_int_equal(waiting(f), 0);
    expect_log(f, "1 2");
}

static void test_torn_write_is_completed_and_recorded(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    stage_committed(f, 2);
    tl_audit_outbox_rows_t rows;
    tl_store_audit_head_t head;
    TL_ASSERT_OK(tl_store_audit_outbox_read(f->store, 10, &head, &rows));
    const char *line = rows.rows[0].line;
    FILE *out = fopen(f->log, "ab");
    fwrite(line, 1, 50, out); /* what a crash in the middle of the write leaves */
    fclose(out);
    tl_audit_outbox_rows_free(&rows);
    reopen_expecting(f, 0, NULL, NULL);
    expect_log(f, "1 2 audit.repair");
    size_t len;
    char *data = read_all(f->log, &len);
    assert_non_null(strstr(data, "\"removed_bytes\":50"));
    free(data);
}

static void test_recover_after_a_deleted_log_records_the_loss(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    record(f, 2);
    assert_int_equal(unlink(f->log), 0);
    tl_audit_chain_close(f->chain);
    f->chain = NULL;
    json_t *by = json_pack("{s:s}", "user", "operator"), *report = NULL;
    int recovered = 0;
    char problem[768];
    TL_ASSERT_OK(
        tl_audit_chain_recover(f->store, f->log, by, &report, &recovered, problem, sizeof problem));
    assert_int_equal(recovered, 1);
    json_t *entry = json_object_get(report, "entry");
    assert_string_equal(json_string_value(json_object_get(entry, "found")), "missing");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(entry, "database_head"), "seq")), 2);
    assert_int_equal(json_integer_value(json_object_get(entry, "entries_lost")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(entry, "by"), "user")),
                        "operator");
    json_decref(report);
    json_decref(by);
    expect_log(f, "audit.recover");
    reopen_expecting(f, 0, NULL, NULL);
    record(f, 3);
    expect_log(f, "audit.recover 3");
}

static void test_recover_keeps_what_verifies_and_the_damaged_original(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    record(f, 2);
    size_t len;
    char *original = read_all(f->log, &len);
    char *edited = strdup(original);
    char *n = strstr(edited + len - 200, "\"n\":2");
    assert_non_null(n);
    n[4] = '9';
    write_all(f->log, edited, len);
    tl_audit_chain_close(f->chain);
    f->chain = NULL;
    json_t *by = json_pack("{s:s}", "user", "operator"), *report = NULL;
    int recovered = 0;
    char problem[768];
    TL_ASSERT_OK(
        tl_audit_chain_recover(f->store, f->log, by, &report, &recovered, problem, sizeof problem));
    assert_int_equal(recovered, 1);
    json_t *entry = json_object_get(report, "entry");
    const char *copy = json_string_value(json_object_get(entry, "damaged_copy"));
    assert_non_null(copy);
    size_t copy_len;
    char *kept = read_all(copy, &copy_len);
    /* The copy is the damaged log exactly as it was found. */
    assert_int_equal(copy_len, len);
    assert_int_equal(memcmp(kept, edited, len), 0);
    free(kept);
    free(edited);
    free(original);
    json_decref(report);
    json_decref(by);
    expect_log(f, "1 audit.recover");
    reopen_expecting(f, 0, NULL, NULL);
}

static void test_recover_writes_what_waited_after_its_entry(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    record(f, 2);
    stage_committed(f, 3); /* waits in the outbox */
    /* Then the log loses its last entry: seq 2 (n=2) is gone for good, seq 3 (n=3) is not. */
    size_t len;
    char *data = read_all(f->log, &len);
    char *last = data + len - 1;
    while (last > data && last[-1] != '\n')
        last--;
    write_all(f->log, data, (size_t)(last - data));
    free(data);
    reopen_expecting(f, TL_EAUDIT, "audit log ends at seq 1 but the database head is seq 3",
                     "1 entry missing");
    json_t *by = json_pack("{s:s}", "user", "operator"), *report = NULL;
    int recovered = 0;
    char problem[768];
    TL_ASSERT_OK(
        tl_audit_chain_recover(f->store, f->log, by, &report, &recovered, problem, sizeof problem));
    assert_int_equal(recovered, 1);
    json_t *entry = json_object_get(report, "entry");
    assert_int_equal(json_integer_value(json_object_get(entry, "outbox_rewritten")), 1);
    assert_int_equal(json_integer_value(json_object_get(entry, "entries_lost")), 1);
    json_decref(report);
    json_decref(by);
    expect_log(f, "1 audit.recover 3");
    data = read_all(f->log, &len);
    assert_non_null(strstr(data, "\"recovered\":{\"seq\":3,"));
    free(data);
    assert_int_equal(waiting(f), 0);
    reopen_expecting(f, 0, NULL, NULL);
}

static void test_recover_does_nothing_when_log_and_store_agree(void **state)
{
    struct fixture *f = *state;
    record(f, 1);
    size_t before, after;
    free(read_all(f->log, &before));
    json_t *by = json_pack("{s:s}", "user", "operator"), *report = NULL;
    int recovered = 1;
    char problem[768];
    TL_ASSERT_OK(
        tl_audit_chain_recover(f->store, f->log, by, &report, &recovered, problem, sizeof problem));
    assert_int_equal(recovered, 0);
    free(read_all(f->log, &after));
    assert_int_equal(before, after);
    json_decref(report);
    json_decref(by);
}

/* ---- the worker --------------------------------------------------------------------------- */

struct user_job {
    tl_job_t job;
    const char *name;
    int status;
    int done;
};

static int run_user_add(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct user_job *job = (struct user_job *)base;
    char fingerprint[64];
    snprintf(fingerprint, sizeof fingerprint, "SHA256:%s", job->name);
    int rc = tl_store_user_add(ctx->store, job->name, "tier1", "ssh-ed25519 AAAA", fingerprint, 1);
    json_t *details = json_pack("{s:s}", "who", job->name);
    if (rc == 0)
        rc = tl_worker_audit(ctx, "admin", "user.add", job->name, details);
    json_decref(details);
    return rc;
}

static void user_added(tl_job_t *base, int status)
{
    struct user_job *job = (struct user_job *)base;
    job->status = status;
    job->done = 1;
}

static void on_tick(uv_timer_t *timer)
{
    (void)timer;
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
            fail_msg("the worker did not finish a job in 30 s");
    }
}

static int add_user(uv_loop_t *loop, tl_worker_t *worker, const char *name)
{
    struct user_job job = {.job = {.run = run_user_add, .done = user_added}, .name = name};
    tl_worker_submit(worker, &job.job);
    run_until(loop, &job.done);
    return job.status;
}

/* Through a connection of its own: the worker's belongs to its thread. */
static int user_exists(tl_store_t *store, const char *name)
{
    tl_user_rows_t users;
    TL_ASSERT_OK(tl_store_users_read(store, &users));
    int found = 0;
    for (size_t i = 0; i < users.count; i++)
        found |= strcmp(users.rows[i].name, name) == 0;
    tl_user_rows_free(&users);
    return found;
}

static void expect_users_in_log(struct fixture *f, const char *expected)
{
    FILE *in = fopen(f->log, "r");
    assert_non_null(in);
    char line[4096], seen[256] = "";
    while (fgets(line, sizeof line, in) != NULL) {
        json_t *entry = json_loads(line, 0, NULL);
        const char *who =
            json_string_value(json_object_get(json_object_get(entry, "details"), "who"));
        if (who != NULL) {
            if (seen[0] != '\0')
                strcat(seen, " ");
            strcat(seen, who);
        }
        json_decref(entry);
    }
    fclose(in);
    if (strcmp(seen, expected) != 0)
        fail_msg("user entries in the log: [%s], expected [%s]", seen, expected);
    tl_audit_report_t report;
    if (tl_audit_verify(f->log, &report) != 0)
        fail_msg("audit log does not verify: %s", report.reason);
}

static void test_worker_fails_closed_and_loses_no_entry(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_timer_t tick;
    char state_path[128];
    int rc;
    snprintf(state_path, sizeof state_path, "%s/relay.state", f->dir);
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    tl_worker_t *worker = tl_worker_new(&loop, f->store, f->chain, NULL, state_path, &rc);
    assert_non_null(worker);
    tl_store_t *reader;
    TL_ASSERT_OK(tl_store_open(f->db, TL_STORE_OPEN_EXISTING, &reader));

    TL_ASSERT_OK(add_user(&loop, worker, "ann"));
    assert_int_equal(rename(f->log, f->moved), 0);
    /* Committed but not written: not acknowledged, its entry kept for later. */
    TL_ASSERT_RC(TL_EAUDIT, add_user(&loop, worker, "bob"));
    assert_true(user_exists(reader, "bob"));
    assert_int_equal(tl_worker_audit_failing(worker), 1);
    /* While the log fails, new work is refused and undone. */
    TL_ASSERT_RC(TL_EAUDIT, add_user(&loop, worker, "cid"));
    assert_false(user_exists(reader, "cid"));
    json_t *saved = json_load_file(state_path, 0, NULL);
    assert_non_null(saved);
    assert_true(json_is_true(json_object_get(json_object_get(saved, "audit"), "failing")));
    expect_problem(json_string_value(json_object_get(json_object_get(saved, "audit"), "problem")),
                   "missing");
    json_decref(saved);

    assert_int_equal(rename(f->moved, f->log), 0);
    TL_ASSERT_OK(add_user(&loop, worker, "dee"));
    assert_int_equal(tl_worker_audit_failing(worker), 0);
    expect_users_in_log(f, "ann bob dee");
    assert_int_equal(waiting_in(reader), 0);
    saved = json_load_file(state_path, 0, NULL);
    assert_false(json_is_true(json_object_get(json_object_get(saved, "audit"), "failing")));
    json_decref(saved);

    tl_store_close(reader);
    tl_worker_free(worker);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_worker_notices_a_restored_log_by_itself(void **state)
{
    struct fixture *f = *state;
    uv_loop_t loop;
    uv_timer_t tick;
    int rc;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    tl_worker_t *worker = tl_worker_new(&loop, f->store, f->chain, NULL, NULL, &rc);
    assert_non_null(worker);
    assert_int_equal(rename(f->log, f->moved), 0);
    TL_ASSERT_RC(TL_EAUDIT, add_user(&loop, worker, "bob"));
    assert_int_equal(rename(f->moved, f->log), 0);
    /* No job comes: the worker tries again on its own (bounded wait). */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (tl_worker_audit_failing(worker)) {
        uv_run(&loop, UV_RUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("the worker did not notice the restored log in 30 s");
    }
    expect_users_in_log(f, "bob");
    tl_worker_free(worker);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_staged_lines_reach_the_log_only_at_flush, setup, teardown),
    cmocka_unit_test_setup_teardown(test_rolled_back_stage_leaves_no_trace, setup, teardown),
    cmocka_unit_test_setup_teardown(test_lines_of_a_failed_write_are_written_first_and_in_order,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_log_replaced_underneath_is_refused_until_restored, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_open_refuses_a_deleted_log, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_refuses_a_shortened_log, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_refuses_a_log_that_diverges, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_refuses_an_edited_last_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_open_writes_what_a_crash_left_in_the_outbox, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_crash_between_write_and_clear_writes_nothing_twice, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_torn_write_is_completed_and_recorded, setup, teardown),
    cmocka_unit_test_setup_teardown(test_recover_after_a_deleted_log_records_the_loss, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_recover_keeps_what_verifies_and_the_damaged_original,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_recover_writes_what_waited_after_its_entry, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_recover_does_nothing_when_log_and_store_agree, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_worker_fails_closed_and_loses_no_entry, setup, teardown),
    cmocka_unit_test_setup_teardown(test_worker_notices_a_restored_log_by_itself, setup, teardown),
};

TL_TEST_MAIN(tests)
