/*
 * Desktop notifications (agent/notify.h): which environments are a graphical session, how the
 * notifier is run (no shell, texts never taken as options or markup), and that a burst of notices
 * is one notification — checked without a desktop, through a session that is not there.
 */
#include "tl_test.h"

#include "agent/notify.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void detect(const char *display, const char *wayland, const char *dbus, const char *runtime,
                   int bus, tl_notify_session_t *out)
{
    tl_notify_env_t env = {display, wayland, dbus, runtime, bus};
    tl_notify_session_detect(&env, out);
}

static void test_a_graphical_session_needs_a_display_and_a_bus(void **state)
{
    (void)state;
    tl_notify_session_t s;
    detect(":0", NULL, "unix:path=/run/user/1000/bus", NULL, 0, &s);
    assert_true(s.graphical);
    assert_string_equal(s.bus, ""); /* the environment has it: nothing to add */
    detect(NULL, "wayland-0", NULL, "/run/user/1000", 1, &s);
    assert_true(s.graphical);
    assert_string_equal(s.bus, "unix:path=/run/user/1000/bus");
    /* A bus without a display: a login over SSH, not a desktop. */
    detect(NULL, NULL, "unix:path=/run/user/1000/bus", "/run/user/1000", 1, &s);
    assert_false(s.graphical);
    assert_string_equal(s.why, "no graphical session: neither DISPLAY nor WAYLAND_DISPLAY is set");
    detect("", "", NULL, NULL, 0, &s);
    assert_false(s.graphical);
    /* A display but no bus to reach the notification server. */
    detect(":0", NULL, NULL, "/run/user/1000", 0, &s);
    assert_false(s.graphical);
    assert_non_null(strstr(s.why, "no session bus"));
    detect(":0", NULL, "", "", 1, &s);
    assert_false(s.graphical);
}

static void test_markup_in_a_body_is_text(void **state)
{
    (void)state;
    char out[64];
    tl_notify_markup_escape(out, sizeof out, "<a href=\"x\">click</a> & <b>");
    assert_string_equal(out, "&lt;a href=\"x\"&gt;click&lt;/a&gt; &amp; &lt;b&gt;");
    /* Clipped at a whole character or entity, never inside one. */
    char small[8];
    tl_notify_markup_escape(small, sizeof small, "\xc3\xa9\xc3\xa9<x");
    assert_string_equal(small, "\xc3\xa9\xc3\xa9");
    tl_notify_markup_escape(small, sizeof small, NULL);
    assert_string_equal(small, "");
}

static void test_notify_send_takes_no_text_as_an_option(void **state)
{
    (void)state;
    char *argv[TL_NOTIFY_MAX_ARGS], *storage = malloc(TL_NOTIFY_ARGV_STORAGE);
    TL_ASSERT_OK(tl_notify_argv(TL_NOTIFIER_NOTIFY_SEND, "--help", "-x <i>&", 1, argv, storage,
                                TL_NOTIFY_ARGV_STORAGE));
    const char *want[] = {"notify-send",
                          "--app-name=Tierline",
                          "--urgency=critical",
                          "--icon=dialog-question",
                          "--",
                          "--help",
                          "-x &lt;i&gt;&amp;",
                          NULL};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (want[i] == NULL)
            assert_null(argv[i]);
        else
            assert_string_equal(argv[i], want[i]);
    }
    TL_ASSERT_OK(tl_notify_argv(TL_NOTIFIER_NOTIFY_SEND, "s", "b", 0, argv, storage,
                                TL_NOTIFY_ARGV_STORAGE));
    assert_string_equal(argv[2], "--urgency=normal");
    char tiny[16];
    TL_ASSERT_RC(TL_EFULL,
                 tl_notify_argv(TL_NOTIFIER_NOTIFY_SEND, "s", "b", 0, argv, tiny, sizeof tiny));
    free(storage);
}

static void test_gdbus_gets_every_text_quoted(void **state)
{
    (void)state;
    char *argv[TL_NOTIFY_MAX_ARGS], *storage = malloc(TL_NOTIFY_ARGV_STORAGE);
    TL_ASSERT_OK(tl_notify_argv(TL_NOTIFIER_GDBUS, "it's -1", "a\\b\nc'd <e>", 0, argv, storage,
                                TL_NOTIFY_ARGV_STORAGE));
    assert_string_equal(argv[0], "gdbus");
    assert_string_equal(argv[8], "org.freedesktop.Notifications.Notify");
    assert_string_equal(argv[12], "'it\\'s -1'");
    assert_string_equal(argv[13], "'a\\\\b\\nc\\'d &lt;e&gt;'");
    assert_string_equal(argv[15], "{'urgency': <byte 1>}");
    size_t argc = 0;
    while (argv[argc] != NULL)
        argc++;
    assert_int_equal(argc, 17);
    /* After the method, nothing gdbus could read as an option of its own. */
    for (size_t i = 9; i < argc; i++)
        if (argv[i][0] == '-')
            fail_msg("argument %zu starts with '-': %s", i, argv[i]);
    free(storage);
}

/* ---- the rate, on a real loop, with no session to show anything on -------------------- */

static void test_a_burst_is_one_attempt_and_nothing_runs_without_a_session(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    tl_notify_env_t env = {NULL, NULL, "unix:path=/nowhere", NULL, 0};
    tl_notify_config_t config = {.interval_ms = 0, .env = &env};
    int rc = 0;
    tl_notify_t *notify = tl_notify_new(&loop, &config, &rc);
    assert_non_null(notify);
    for (int i = 0; i < TL_NOTIFY_MAX_PENDING + 3; i++)
        tl_notify_post(notify, "T-1 is resolved", "body", "See: tierline-agent tickets", i == 0);
    json_t *before = tl_notify_state(notify);
    assert_int_equal(json_integer_value(json_object_get(before, "pending")),
                     TL_NOTIFY_MAX_PENDING + 3);
    json_decref(before);
    /* The gathering delay passes once: everything goes at once, and nowhere. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    json_t *after = NULL;
    for (;;) {
        uv_run(&loop, UV_RUN_ONCE);
        json_decref(after);
        after = tl_notify_state(notify);
        if (json_integer_value(json_object_get(after, "pending")) == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("the notices were never handled");
    }
    assert_int_equal(json_integer_value(json_object_get(after, "skipped")),
                     TL_NOTIFY_MAX_PENDING + 3);
    assert_int_equal(json_integer_value(json_object_get(after, "shown")), 0);
    assert_false(json_is_true(json_object_get(after, "session")));
    assert_non_null(strstr(json_string_value(json_object_get(after, "why")), "DISPLAY"));
    json_decref(after);
    tl_notify_free(notify);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the rate, with a notifier that runs: a fake notify-send first on PATH --------------- */

struct rig {
    char dir[64], runs[96], hold[96];
    uv_loop_t loop;
    tl_notify_t *notify;
};

static int count_runs(struct rig *rig)
{
    FILE *f = fopen(rig->runs, "r");
    int lines = 0, c;
    while (f != NULL && (c = fgetc(f)) != EOF)
        lines += c == '\n';
    if (f != NULL)
        fclose(f);
    return lines;
}

static int64_t state_of(struct rig *rig, const char *key)
{
    json_t *state = tl_notify_state(rig->notify);
    json_t *value = json_object_get(state, key);
    int64_t out = json_is_boolean(value) ? json_is_true(value) : json_integer_value(value);
    json_decref(state);
    return out;
}

/* Runs the loop until key has the value in the notifier's state (bounded: 30 s). */
static void run_until(struct rig *rig, const char *key, int64_t value)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (state_of(rig, key) != value) {
        uv_run(&rig->loop, UV_RUN_NOWAIT);
        usleep(10000);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 30)
            fail_msg("%s never became %lld (is %lld)", key, (long long)value,
                     (long long)state_of(rig, key));
    }
}

static void on_waited(uv_timer_t *timer)
{
    (void)timer;
}

/* Runs the loop for ms of its own time: the notifier's timers due before then all fire first. */
static void run_for(struct rig *rig, uint64_t ms)
{
    uv_timer_t timer;
    uv_timer_init(&rig->loop, &timer);
    uv_timer_start(&timer, on_waited, ms, 0);
    while (uv_is_active((uv_handle_t *)&timer))
        uv_run(&rig->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&rig->loop, UV_RUN_NOWAIT);
}

static void rig_start(struct rig *rig, uint64_t interval_ms)
{
    static const tl_notify_env_t desktop = {":99", NULL, "unix:path=/nonexistent", NULL, 0};
    strcpy(rig->dir, "/tmp/tl-notify-XXXXXX");
    assert_non_null(mkdtemp(rig->dir));
    snprintf(rig->runs, sizeof rig->runs, "%s/runs", rig->dir);
    snprintf(rig->hold, sizeof rig->hold, "%s/hold", rig->dir);
    char path[128], script[512], search[256];
    snprintf(path, sizeof path, "%s/notify-send", rig->dir);
    /* Records each run; while the hold file is there it is still on its way (at most 60 s). */
    snprintf(script, sizeof script,
             "#!/bin/sh\necho run >> %s\nn=0\nwhile [ -e %s ] && [ $n -lt 1200 ]; do "
             "sleep 0.05; n=$((n+1)); done\n",
             rig->runs, rig->hold);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(script, f);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(search, sizeof search, "%s:/usr/bin:/bin", rig->dir);
    assert_int_equal(setenv("PATH", search, 1), 0);
    assert_int_equal(uv_loop_init(&rig->loop), 0);
    tl_notify_config_t config = {.interval_ms = interval_ms, .env = &desktop};
    int rc = 0;
    rig->notify = tl_notify_new(&rig->loop, &config, &rc);
    assert_non_null(rig->notify);
}

static void rig_stop(struct rig *rig)
{
    unlink(rig->hold);
    tl_notify_free(rig->notify);
    uv_run(&rig->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&rig->loop), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", rig->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_while_a_notifier_runs_the_next_notices_wait_merged(void **state)
{
    (void)state;
    struct rig rig;
    rig_start(&rig, 0);
    FILE *hold = fopen(rig.hold, "w");
    assert_non_null(hold);
    fclose(hold);
    tl_notify_post(rig.notify, "first", "", "", 0);
    run_until(&rig, "running", 1);
    tl_notify_post(rig.notify, "second", "", "", 0);
    tl_notify_post(rig.notify, "third", "", "", 1);
    /* Well past the gathering delay, by the loop's own clock: still the one notifier. */
    run_for(&rig, 4 * TL_NOTIFY_GATHER_MS);
    assert_int_equal(state_of(&rig, "pending"), 2);
    assert_int_equal(count_runs(&rig), 1);
    unlink(rig.hold);
    run_until(&rig, "shown", 2);
    run_until(&rig, "running", 0);
    assert_int_equal(count_runs(&rig), 2);
    assert_int_equal(state_of(&rig, "merged"), 1);
    assert_int_equal(state_of(&rig, "pending"), 0);
    rig_stop(&rig);
}

static void test_two_notifications_start_an_interval_apart(void **state)
{
    (void)state;
    struct rig rig;
    rig_start(&rig, TL_NOTIFY_MAX_INTERVAL_MS);
    tl_notify_post(rig.notify, "first", "", "", 0);
    run_until(&rig, "shown", 1);
    run_until(&rig, "running", 0);
    tl_notify_post(rig.notify, "second", "", "", 1);
    /* The gathering delay passes; the interval (an hour) does not. */
    run_for(&rig, 4 * TL_NOTIFY_GATHER_MS);
    assert_int_equal(count_runs(&rig), 1);
    assert_int_equal(state_of(&rig, "pending"), 1);
    rig_stop(&rig);
}

static void test_an_interval_over_an_hour_is_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    tl_notify_config_t config = {.interval_ms = TL_NOTIFY_MAX_INTERVAL_MS + 1};
    int rc = 0;
    assert_null(tl_notify_new(&loop, &config, &rc));
    TL_ASSERT_RC(TL_EINVAL, rc);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_graphical_session_needs_a_display_and_a_bus),
    cmocka_unit_test(test_markup_in_a_body_is_text),
    cmocka_unit_test(test_notify_send_takes_no_text_as_an_option),
    cmocka_unit_test(test_gdbus_gets_every_text_quoted),
    cmocka_unit_test(test_a_burst_is_one_attempt_and_nothing_runs_without_a_session),
    cmocka_unit_test(test_while_a_notifier_runs_the_next_notices_wait_merged),
    cmocka_unit_test(test_two_notifications_start_an_interval_apart),
    cmocka_unit_test(test_an_interval_over_an_hour_is_refused),
};

TL_TEST_MAIN(tests)
