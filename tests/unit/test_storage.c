/*
 * The agent's storage lane (agent/storage.h): jobs run off the loop in the
 * order they were given; a file always receives its owner's latest state,
 * one write at a time, and the loop keeps serving while a write is slow.
 */
#include "tl_test.h"

#include "fake_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char path[128];
    uv_loop_t loop;
    tl_storage_t *storage;
    int state; /* the owner's state: rendered as "state N" */
    int renders;
    int done;               /* done callbacks run */
    int errors;             /* ... with an error */
    int done_after_release; /* done callbacks that ran once the writer was released */
    int released;
    int ticks;      /* timer ticks */
    int ticks_held; /* ... seen while a write was held in the writer */
    int closed;
};

static struct fixture *fixture_new(const tl_storage_config_t *config)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fake_reset();
    snprintf(f->dir, sizeof f->dir, "/tmp/tl-storage-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/state.json", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    int err = 0;
    f->storage = tl_storage_new(&f->loop, config, &err);
    TL_ASSERT_OK(err);
    assert_non_null(f->storage);
    return f;
}

static void fixture_free(struct fixture *f)
{
    tl_storage_free(f->storage);
    fake_set_hold(0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->path);
    rmdir(f->dir);
    fake_reset();
    free(f);
}

static void on_tick(uv_timer_t *timer)
{
    struct fixture *f = timer->data;
    f->ticks++;
    if (fake_get(&fake.started) > fake_get(&fake.finished) && fake_get(&fake.hold))
        f->ticks_held++;
}

/* Runs the loop until *count reaches want, a ticking timer keeping it awake; bounded. */
static void run_until(struct fixture *f, const int *count, int want, const char *what)
{
    uv_timer_t ticker;
    uv_timer_init(&f->loop, &ticker);
    ticker.data = f;
    uv_timer_start(&ticker, on_tick, 5, 5);
    for (int turn = 0; *count < want && turn < 6000; turn++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (*count < want)
        fail_msg("waited for %s: %d of %d", what, *count, want);
}

/* ---- jobs ---------------------------------------------------------------------- */

struct order {
    int *log;
    int *logged;
    int index;
    pthread_t thread;
    struct fixture *f;
};

static int order_work(void *data)
{
    struct order *job = data;
    job->thread = pthread_self();
    /* Jobs run one at a time: no two ever touch the log together. */
    job->log[(*job->logged)++] = job->index;
    return job->index;
}

static void order_done(void *data, int result)
{
    struct order *job = data;
    assert_int_equal(result, job->index);
    if (pthread_equal(job->thread, pthread_self()))
        fail_msg("job %d ran on the loop's thread", job->index);
    job->f->done++;
}

static void test_jobs_run_in_order_off_the_loop(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL);
    int log[40], logged = 0;
    struct order jobs[40];
    for (int i = 0; i < 40; i++) {
        jobs[i] = (struct order){log, &logged, i, pthread_self(), f};
        TL_ASSERT_OK(tl_storage_submit(f->storage, order_work, order_done, &jobs[i]));
    }
    assert_int_equal(tl_storage_pending(f->storage), 40);
    run_until(f, &f->done, 40, "forty jobs");
    assert_int_equal(logged, 40);
    for (int i = 0; i < 40; i++)
        if (log[i] != i)
            fail_msg("job %d ran in place %d", log[i], i);
    assert_int_equal(tl_storage_pending(f->storage), 0);
    fixture_free(f);
}

/* ---- files ---------------------------------------------------------------------- */

static char *render(void *owner, size_t *len)
{
    struct fixture *f = owner;
    f->renders++;
    char *text = malloc(32);
    if (text != NULL)
        *len = (size_t)snprintf(text, 32, "state %d\n", f->state);
    return text;
}

static void saved(void *data, int result)
{
    struct fixture *f = data;
    f->done++;
    f->errors += result != 0;
    f->done_after_release += f->released;
}

static void closed(void *owner)
{
    struct fixture *f = owner;
    f->closed++;
}

static tl_storage_file_t *file_new(struct fixture *f)
{
    int err = 0;
    tl_storage_file_t *file = tl_storage_file_new(f->storage, f->path, render, f, &err);
    TL_ASSERT_OK(err);
    assert_non_null(file);
    return file;
}

/* Waits (bounded, on the loop) until the fake writer has begun n writes. */
static void wait_write_started(struct fixture *f, int n)
{
    uv_timer_t ticker;
    uv_timer_init(&f->loop, &ticker);
    ticker.data = f;
    uv_timer_start(&ticker, on_tick, 5, 5);
    for (int turn = 0; fake_get(&fake.started) < n && turn < 6000; turn++)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (fake_get(&fake.started) < n)
        fail_msg("the writer began %d writes, expected %d", fake_get(&fake.started), n);
}

static void test_loop_serves_timers_while_a_write_is_in_flight(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(&fake_config);
    tl_storage_file_t *file = file_new(f);
    fake_set_hold(1);
    f->state = 1;
    TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    wait_write_started(f, 1);
    /* The write is stuck in the writer; the loop must still run timers. */
    int want = f->ticks + 20;
    run_until(f, &f->ticks, want, "timer ticks while the write is held");
    if (f->ticks_held < 20 || fake_get(&fake.timed_out))
        fail_msg("the loop ran %d ticks while the write was held (expected 20); the writer %s",
                 f->ticks_held, fake_get(&fake.timed_out) ? "gave up waiting" : "waited");
    assert_int_equal(f->done, 0); /* not durable yet: no answer */
    assert_true(tl_storage_file_busy(file));
    f->released = 1;
    fake_set_hold(0);
    run_until(f, &f->done, 1, "the save to complete");
    assert_int_equal(f->errors, 0);
    if (pthread_equal(fake.threads[0], pthread_self()))
        fail_msg("the file was written on the loop's thread");
    /* Really on disk, 0600. */
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    tl_storage_file_close(file, closed);
    run_until(f, &f->closed, 1, "the file to close");
    fixture_free(f);
}

static void test_saves_during_a_write_fold_into_one_write_of_the_latest_state(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(&fake_config);
    tl_storage_file_t *file = file_new(f);
    fake_set_hold(1);
    f->state = 1;
    TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    wait_write_started(f, 1);
    /* Three changes while the first write is stuck. */
    for (int version = 2; version <= 4; version++) {
        f->state = version;
        TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    }
    assert_int_equal(fake_get(&fake.started), 1); /* one write in flight, never two */
    f->released = 1;
    fake_set_hold(0);
    run_until(f, &f->done, 4, "four saves to complete");
    assert_int_equal(f->errors, 0);
    assert_int_equal(f->done_after_release, 4);
    /* Exactly two writes: the first state, then the latest; never an older one after it. */
    assert_int_equal(fake_get(&fake.started), 2);
    assert_string_equal(fake.texts[0], "state 1\n");
    assert_string_equal(fake.texts[1], "state 4\n");
    char text[32] = "";
    FILE *disk = fopen(f->path, "r");
    assert_non_null(disk);
    assert_non_null(fgets(text, sizeof text, disk));
    fclose(disk);
    assert_string_equal(text, "state 4\n");
    tl_storage_file_close(file, closed);
    run_until(f, &f->closed, 1, "the file to close");
    fixture_free(f);
}

static void test_a_failed_write_reports_its_error_to_every_save_it_covers(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(&fake_config);
    tl_storage_file_t *file = file_new(f);
    fake.fail = -ENOSPC;
    TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    run_until(f, &f->done, 1, "the failed save");
    assert_int_equal(f->errors, 1);
    assert_int_equal(access(f->path, F_OK), -1);
    /* The next save writes again, with the latest state. */
    fake.fail = 0;
    f->state = 9;
    TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    run_until(f, &f->done, 2, "the next save");
    assert_int_equal(f->errors, 1);
    assert_int_equal(access(f->path, F_OK), 0);
    tl_storage_file_close(file, closed);
    run_until(f, &f->closed, 1, "the file to close");
    fixture_free(f);
}

static void test_close_finishes_the_writes_asked_for_first(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(&fake_config);
    tl_storage_file_t *file = file_new(f);
    fake_set_hold(1);
    TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    wait_write_started(f, 1);
    f->state = 2;
    TL_ASSERT_OK(tl_storage_file_save(file, saved, f));
    tl_storage_file_close(file, closed);
    TL_ASSERT_RC(TL_EINVAL, tl_storage_file_save(file, saved, f));
    /* The owner frees the lane too: it goes only once idle. */
    tl_storage_free(f->storage);
    f->storage = NULL;
    fake_set_hold(0);
    run_until(f, &f->closed, 1, "the file to close");
    assert_int_equal(f->done, 2);
    assert_int_equal(fake_get(&fake.started), 2);
    assert_string_equal(fake.texts[1], "state 2\n");
    fixture_free(f);
}

static void test_write_file_replaces_the_file_whole(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL);
    TL_ASSERT_OK(tl_storage_write_file(f->path, "first\n", 6));
    TL_ASSERT_OK(tl_storage_write_file(f->path, "second\n", 7));
    char text[32] = "", tmp[160];
    FILE *disk = fopen(f->path, "r");
    assert_non_null(disk);
    assert_non_null(fgets(text, sizeof text, disk));
    fclose(disk);
    assert_string_equal(text, "second\n");
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    assert_int_equal(access(tmp, F_OK), -1);
    /* A directory that does not exist: an error, nothing written. */
    TL_ASSERT_RC(-ENOENT, tl_storage_write_file("/nonexistent-tierline/x.json", "x", 1));
    fixture_free(f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_jobs_run_in_order_off_the_loop),
    cmocka_unit_test(test_loop_serves_timers_while_a_write_is_in_flight),
    cmocka_unit_test(test_saves_during_a_write_fold_into_one_write_of_the_latest_state),
    cmocka_unit_test(test_a_failed_write_reports_its_error_to_every_save_it_covers),
    cmocka_unit_test(test_close_finishes_the_writes_asked_for_first),
    cmocka_unit_test(test_write_file_replaces_the_file_whole),
};

TL_TEST_MAIN(tests)
