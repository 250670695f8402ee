/*
 * Desktop notifications (agent/notify.h): which environments are a graphical session, how the
 * notifier is run (no shell, texts never taken as options or markup), and that a burst of notices
 * is one notification — checked without a desktop, through a session that is not there.
 */
#include "tl_test.h"

#include "agent/notify.h"

#include <stdlib.h>
#include <time.h>

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
    cmocka_unit_test(test_an_interval_over_an_hour_is_refused),
};

TL_TEST_MAIN(tests)
