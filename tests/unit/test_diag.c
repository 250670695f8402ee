/*
 * Diagnostics: the runner's isolation (with fake probes), the command
 * helper, the probes' parsers on fixed text, and one real run of every
 * built-in probe on this machine, which must not assume systemd, journald
 * or any particular network.
 */
#include "tl_test.h"

#include "agent/diag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Fake probes (each runs in its own child) ----------------------------------------- */

static int probe_ok(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    return json_object_set_new(section, "answer", json_integer(42)) == 0 ? 0 : TL_ENOMEM;
}

static int probe_sleeps(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    (void)section;
    sleep(30);
    return 0;
}

static int probe_crashes(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    (void)section;
    /* The default action, so sanitizers' handlers do not turn it into an exit status. */
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    return 0;
}

static int probe_writes_garbage(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    (void)section;
    fputs("this is not JSON", stdout);
    return 0;
}

static int probe_exits(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    (void)section;
    _exit(3);
}

static int probe_fails_with_message(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    return tl__diag_fail(section, TL_EIO, "disk on fire");
}

static int probe_fails_with_code(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    (void)section;
    return TL_ENOTFOUND;
}

static int probe_too_big(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    static char big[200 * 1024];
    memset(big, 'x', sizeof big - 1);
    return json_object_set_new(section, "big", json_string(big)) == 0 ? 0 : TL_ENOMEM;
}

/* Puts a secret straight into the section, skipping the text helper. */
static int probe_leaks_secret(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    json_t *list = json_pack("[s]", "Authorization: Bearer abc123");
    if (!list || json_object_set_new(section, "nested", list) != 0)
        return TL_ENOMEM;
    return json_object_set_new(section, "line", json_string("db password=hunter2")) == 0
               ? 0
               : TL_ENOMEM;
}

static char grandchild_file[64];

/* Starts a long sleep in its process group, records its pid, then hangs. */
static int probe_leaves_grandchild(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    (void)section;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    FILE *f = fopen(grandchild_file, "w");
    if (f) {
        fprintf(f, "%ld\n", (long)pid);
        fclose(f);
    }
    sleep(30);
    return 0;
}

/* Returns normally but leaves a child behind that holds the section's pipe open. */
static int probe_leaves_background_child(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    FILE *f = fopen(grandchild_file, "w");
    if (f) {
        fprintf(f, "%ld\n", (long)pid);
        fclose(f);
    }
    return json_object_set_new(section, "answer", json_integer(42)) == 0 ? 0 : TL_ENOMEM;
}

static int probe_reports_time_left(const tl_diag_t *diag, json_t *section)
{
    return json_object_set_new(section, "left", json_integer(tl_diag_time_left_ms(diag))) == 0
               ? 0
               : TL_ENOMEM;
}

/* ---- Helpers ---------------------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *run_table(const struct tl_diag_probe *probes, size_t count, long long *elapsed_ms)
{
    tl_diag_t *diag = tl_diag_new();
    assert_non_null(diag);
    TL_ASSERT_OK(tl_diag_set_probes(diag, probes, count));
    json_t *report = NULL;
    long long start = now_ms();
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    if (elapsed_ms)
        *elapsed_ms = now_ms() - start;
    tl_diag_free(diag);
    assert_non_null(report);
    return report;
}

static json_t *section_of(json_t *report, const char *name)
{
    json_t *section = json_object_get(json_object_get(report, "sections"), name);
    if (!json_is_object(section))
        fail_msg("report has no section '%s'", name);
    return section;
}

static const char *error_of(json_t *report, const char *name)
{
    return json_string_value(json_object_get(section_of(report, name), "error"));
}

static void assert_error_starts(json_t *report, const char *name, const char *prefix)
{
    const char *error = error_of(report, name);
    if (!error || strncmp(error, prefix, strlen(prefix)) != 0)
        fail_msg("section '%s': expected an error starting \"%s\", got %s", name, prefix,
                 error ? error : "no error");
    /* An error section holds the error and nothing else. */
    assert_int_equal(json_object_size(section_of(report, name)), 1);
}

/* ---- The runner ------------------------------------------------------------------------- */

static void test_probe_past_its_timeout_is_killed_and_others_complete(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {
        {"before", "", probe_ok, 5000},
        {"slow", "", probe_sleeps, 300},
        {"after", "", probe_ok, 5000},
    };
    long long elapsed;
    json_t *report = run_table(probes, 3, &elapsed);
    assert_string_equal(error_of(report, "slow"), "timed out after 300 ms");
    assert_int_equal(json_object_size(section_of(report, "slow")), 1);
    assert_int_equal(json_integer_value(json_object_get(section_of(report, "before"), "answer")),
                     42);
    assert_int_equal(json_integer_value(json_object_get(section_of(report, "after"), "answer")),
                     42);
    if (elapsed > 10000)
        fail_msg("collection took %lld ms; the slow probe was not cut off", elapsed);
    json_decref(report);
}

static void test_timeout_override_applies_to_every_probe(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {{"slow", "", probe_sleeps, 60000}};
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_probes(diag, probes, 1));
    TL_ASSERT_OK(tl_diag_set_timeout_ms(diag, 200));
    json_t *report = NULL;
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    assert_string_equal(error_of(report, "slow"), "timed out after 200 ms");
    json_decref(report);
    tl_diag_free(diag);
}

static void test_crashing_probe_is_an_error(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {
        {"crash", "", probe_crashes, 5000},
        {"fine", "", probe_ok, 5000},
    };
    json_t *report = run_table(probes, 2, NULL);
    assert_error_starts(report, "crash", "probe crashed with signal 11");
    assert_null(error_of(report, "fine"));
    json_decref(report);
}

static void test_garbage_output_is_an_error(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {
        {"garbage", "", probe_writes_garbage, 5000},
        {"fine", "", probe_ok, 5000},
    };
    json_t *report = run_table(probes, 2, NULL);
    assert_error_starts(report, "garbage", "probe wrote invalid JSON");
    assert_null(error_of(report, "fine"));
    json_decref(report);
}

static void test_nonzero_exit_is_an_error(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {{"exits", "", probe_exits, 5000}};
    json_t *report = run_table(probes, 1, NULL);
    assert_string_equal(error_of(report, "exits"), "probe exited with status 3");
    json_decref(report);
}

static void test_probe_failure_becomes_its_error_section(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {
        {"message", "", probe_fails_with_message, 5000},
        {"code", "", probe_fails_with_code, 5000},
    };
    json_t *report = run_table(probes, 2, NULL);
    assert_string_equal(error_of(report, "message"), "disk on fire");
    assert_string_equal(error_of(report, "code"), tl_strerror(TL_ENOTFOUND));
    json_decref(report);
}

static void test_oversized_section_is_an_error(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {{"big", "", probe_too_big, 5000}};
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_probes(diag, probes, 1));
    TL_ASSERT_OK(tl_diag_set_max_section_bytes(diag, 64 * 1024));
    json_t *report = NULL;
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    assert_error_starts(report, "big", "section too large");
    json_decref(report);
    tl_diag_free(diag);
}

static void test_every_string_is_redacted_before_it_leaves_the_probe(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {{"leaky", "", probe_leaks_secret, 5000}};
    json_t *report = run_table(probes, 1, NULL);
    json_t *section = section_of(report, "leaky");
    assert_string_equal(json_string_value(json_object_get(section, "line")),
                        "db password=[REDACTED]");
    assert_string_equal(json_string_value(json_array_get(json_object_get(section, "nested"), 0)),
                        "Authorization: Bearer [REDACTED]");
    json_decref(report);
}

/* The pid the fake probe recorded is no longer running (gone, or a zombie for init). */
static void assert_grandchild_gone(void)
{
    FILE *f = fopen(grandchild_file, "r");
    assert_non_null(f);
    long pid = 0;
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    unlink(grandchild_file);
    char path[64], *text = NULL;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    for (int tries = 0; tries < 100; tries++) {
        free(text);
        text = NULL;
        if (tl__diag_read_file(path, 1024, &text, NULL) < 0)
            break;
        const char *close = strrchr(text, ')');
        if (close && (close[2] == 'Z' || close[2] == 'X'))
            break;
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
    if (text) {
        const char *close = strrchr(text, ')');
        if (!close || (close[2] != 'Z' && close[2] != 'X'))
            fail_msg("the probe's child %ld still runs: %s", pid, text);
    }
    free(text);
}

static void test_timeout_kills_what_the_probe_started(void **state)
{
    (void)state;
    snprintf(grandchild_file, sizeof grandchild_file, "/tmp/tl-diag-test-%ld", (long)getpid());
    unlink(grandchild_file);
    static const struct tl_diag_probe probes[] = {{"spawner", "", probe_leaves_grandchild, 500}};
    json_t *report = run_table(probes, 1, NULL);
    assert_string_equal(error_of(report, "spawner"), "timed out after 500 ms");
    json_decref(report);
    assert_grandchild_gone();
}

static void test_leftover_child_does_not_hold_up_the_section(void **state)
{
    (void)state;
    snprintf(grandchild_file, sizeof grandchild_file, "/tmp/tl-diag-test-%ld", (long)getpid());
    unlink(grandchild_file);
    static const struct tl_diag_probe probes[] = {
        {"leaver", "", probe_leaves_background_child, 20000}};
    long long elapsed;
    json_t *report = run_table(probes, 1, &elapsed);
    assert_int_equal(json_integer_value(json_object_get(section_of(report, "leaver"), "answer")),
                     42);
    if (elapsed > 5000)
        fail_msg("the section waited %lld ms for the leftover child", elapsed);
    json_decref(report);
    assert_grandchild_gone();
}

static void test_probe_sees_its_own_deadline(void **state)
{
    (void)state;
    static const struct tl_diag_probe probes[] = {{"clock", "", probe_reports_time_left, 4000}};
    json_t *report = run_table(probes, 1, NULL);
    long long left = json_integer_value(json_object_get(section_of(report, "clock"), "left"));
    if (left <= 2000 || left > 4000)
        fail_msg("expected between 2000 and 4000 ms left, got %lld", left);
    json_decref(report);
}

static void test_bad_probe_tables_are_refused(void **state)
{
    (void)state;
    tl_diag_t *diag = tl_diag_new();
    static const struct tl_diag_probe duplicate[] = {{"a", "", probe_ok, 100},
                                                     {"a", "", probe_ok, 100}};
    static const struct tl_diag_probe no_function[] = {{"a", "", NULL, 100}};
    static const struct tl_diag_probe no_name[] = {{"", "", probe_ok, 100}};
    static const struct tl_diag_probe zero_timeout[] = {{"a", "", probe_ok, 0}};
    static const struct tl_diag_probe huge_timeout[] = {
        {"a", "", probe_ok, TL_DIAG_MAX_TIMEOUT_MS + 1}};
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_probes(diag, duplicate, 2));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_probes(diag, no_function, 1));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_probes(diag, no_name, 1));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_probes(diag, zero_timeout, 1));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_probes(diag, huge_timeout, 1));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_probes(diag, duplicate, 0));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_timeout_ms(diag, -1));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_timeout_ms(diag, TL_DIAG_MAX_TIMEOUT_MS + 1));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_max_section_bytes(diag, 0));
    tl_diag_free(diag);
    tl_diag_free(NULL);
}

static void test_probes_left_out_are_not_run_and_say_so(void **state)
{
    (void)state;
    /* Built-in names (only those may be left out), fake probes: a crash would show if run. */
    static const struct tl_diag_probe probes[] = {{"cpu", "", probe_ok, 5000},
                                                  {"packages", "", probe_crashes, 5000},
                                                  {"printers", "", probe_crashes, 5000}};
    tl_diag_t *diag = tl_diag_new();
    assert_non_null(diag);
    TL_ASSERT_OK(tl_diag_set_probes(diag, probes, 3));
    TL_ASSERT_OK(tl_diag_set_skip(diag, " packages,,printers "));
    assert_null(tl_diag_skip_why(diag));
    json_t *report = NULL;
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    assert_int_equal(json_integer_value(json_object_get(section_of(report, "cpu"), "answer")), 42);
    for (int i = 1; i < 3; i++) {
        json_t *left_out = section_of(report, probes[i].name);
        assert_true(json_is_true(json_object_get(left_out, "skipped")));
        assert_string_equal(json_string_value(json_object_get(left_out, "note")),
                            "left out (TIERLINE_DIAG_SKIP)");
        assert_int_equal(json_object_size(left_out), 2);
    }
    json_decref(report);
    /* A name that is no probe, a prefix of one, or a list too long: nothing is left out. */
    static const char *const bad[] = {"packages,pakages", "pack", "cpu;packages", "packages/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TL_ASSERT_RC(TL_EINVAL, tl_diag_set_skip(diag, bad[i]));
        TL_ASSERT_OK(tl_diag_run(diag, &report));
        assert_non_null(error_of(report, "packages"));
        json_decref(report);
    }
    char longest[400] = "";
    for (int i = 0; i < 40; i++)
        strcat(longest, "packages,");
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_skip(diag, longest));
    TL_ASSERT_RC(TL_EINVAL, tl_diag_set_skip(diag, NULL));
    /* An empty list leaves nothing out. */
    TL_ASSERT_OK(tl_diag_set_skip(diag, ""));
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    assert_error_starts(report, "printers", "probe crashed with signal");
    json_decref(report);
    tl_diag_free(diag);
}

static void test_relay_addresses_are_validated(void **state)
{
    (void)state;
    static const char *const good[] = {"relay.example.com:443", "127.0.0.1:1", "[::1]:8443",
                                       "relay-1_a:65535"};
    static const char *const bad[] = {"relay", "relay:",    "relay:0",     "relay:65536",
                                      ":443",  "::1:443",   "re lay:1",    "[::1]443",
                                      "[]:1",  "relay:12a", "relay:-1",    "[::1:443",
                                      "a;b:1", "relay:+80", "relay:000443"};
    tl_diag_t *diag = tl_diag_new();
    const char *host, *port;
    assert_false(tl_diag_relay(diag, &host, &port));
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (tl_diag_set_relay(diag, good[i]) != 0)
            fail_msg("refused a good relay address '%s'", good[i]);
    assert_true(tl_diag_relay(diag, &host, &port));
    assert_string_equal(host, "relay-1_a");
    assert_string_equal(port, "65535");
    TL_ASSERT_OK(tl_diag_set_relay(diag, "[::1]:8443"));
    assert_true(tl_diag_relay(diag, &host, &port));
    assert_string_equal(host, "::1");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tl_diag_set_relay(diag, bad[i]) != TL_EINVAL)
            fail_msg("accepted a bad relay address '%s'", bad[i]);
    TL_ASSERT_OK(tl_diag_set_relay(diag, NULL));
    assert_false(tl_diag_relay(diag, &host, &port));
    tl_diag_free(diag);
}

/* ---- Every built-in probe, for real ---------------------------------------------------- */

static void test_real_run_has_every_section(void **state)
{
    (void)state;
    size_t count;
    const struct tl_diag_probe *probes = tl_diag_probes(&count);
    assert_int_equal(count, 18);
    /* The internet probe reaches beyond the machine by default: here, only loopback. */
    setenv(TL_DIAG_LOOKUP_ENV, "localhost", 1);
    setenv(TL_DIAG_CONNECT_ENV, "127.0.0.1:9", 1);
    tl_diag_t *diag = tl_diag_new();
    json_t *report = NULL;
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    tl_diag_free(diag);

    assert_int_equal(json_integer_value(json_object_get(report, "schema")), TL_DIAG_SCHEMA);
    const char *when = json_string_value(json_object_get(report, "collected_at"));
    assert_non_null(when);
    assert_int_equal(strlen(when), 20);
    assert_int_equal(when[10], 'T');
    assert_int_equal(when[19], 'Z');
    assert_true(json_is_string(json_object_get(report, "host")));
    json_t *sections = json_object_get(report, "sections");
    assert_int_equal(json_object_size(sections), count);
    for (size_t i = 0; i < count; i++) {
        json_t *section = section_of(report, probes[i].name);
        json_t *error = json_object_get(section, "error");
        if (error) {
            /* Allowed on an odd machine, but it must be a message and nothing else. */
            assert_true(json_is_string(error));
            assert_int_equal(json_object_size(section), 1);
            print_message("section %s: error: %s\n", probes[i].name, json_string_value(error));
        } else {
            assert_true(json_object_size(section) > 0);
        }
    }
    /* Sources every Linux has: these must be data here. */
    static const char *const always[] = {"system", "cpu",   "memory",   "processes", "sockets",
                                         "users",  "agent", "hardware", "internet"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (error_of(report, always[i]))
            fail_msg("section %s: %s", always[i], error_of(report, always[i]));
    assert_non_null(json_object_get(section_of(report, "system"), "hostname"));
    assert_true(json_integer_value(json_object_get(section_of(report, "memory"), "total_bytes")) >
                0);
    const char *status = json_string_value(
        json_object_get(json_object_get(section_of(report, "network"), "relay"), "status"));
    if (!error_of(report, "network"))
        assert_string_equal(status, "not configured");
    json_t *services = section_of(report, "services");
    if (access("/run/systemd/system", F_OK) != 0)
        assert_string_equal(json_string_value(json_object_get(services, "status")),
                            "systemd not running");
    json_t *internet = section_of(report, "internet");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(internet, "connect"), "address")),
        "127.0.0.1:9");
    json_decref(report);
}

static void test_text_output_has_headings_and_tables(void **state)
{
    (void)state;
    json_t *report = json_pack(
        "{s:i, s:s, s:s, s:{s:{s:s, s:I, s:f}, s:{s:[{s:s, s:I}, {s:s, s:I}]}, s:{s:s}}}", "schema",
        1, "collected_at", "2026-01-02T03:04:05Z", "host", "box", "sections", "system", "hostname",
        "box\x1b[31m", "uptime_seconds", (json_int_t)5, "used_percent", 12.5, "disks", "mounts",
        "mount", "/", "size_bytes", (json_int_t)2147483648LL, "mount", "/home", "size_bytes",
        (json_int_t)512, "time", "error", "timed out after 5 ms");
    assert_non_null(report);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    TL_ASSERT_OK(tl_diag_write_text(report, out));
    fclose(out);
    static const char *const expected[] = {
        "Tierline diagnostics for box, collected 2026-01-02T03:04:05Z\n",
        "== system: Host name, OS release",
        "  hostname:       box?[31m\n",
        "  used%:          12.5%\n",
        "  mounts:\n    mount  size\n    /      2.0 GiB\n    /home  512 B\n",
        "== time: Clock synchronisation state ==\n  error: timed out after 5 ms\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        if (!strstr(text, expected[i]))
            fail_msg("text output lacks \"%s\":\n%s", expected[i], text);
    free(text);
    json_decref(report);
}

/* ---- External commands ------------------------------------------------------------------ */

static void test_command_output_is_captured(void **state)
{
    (void)state;
    static const char *const argv[] = {"echo", "hello", NULL};
    struct tl__diag_command result;
    TL_ASSERT_OK(tl__diag_command_run(argv, 5000, 1024, &result));
    assert_string_equal(result.output, "hello\n");
    assert_int_equal(result.exit_status, 0);
    assert_false(result.timed_out);
    tl__diag_command_clear(&result);
}

static void test_command_stdin_is_dev_null(void **state)
{
    (void)state;
    /* cat would wait forever on an inherited terminal or pipe. */
    static const char *const argv[] = {"cat", NULL};
    struct tl__diag_command result;
    TL_ASSERT_OK(tl__diag_command_run(argv, 5000, 1024, &result));
    assert_false(result.timed_out);
    assert_int_equal(result.exit_status, 0);
    assert_int_equal(result.output_len, 0);
    tl__diag_command_clear(&result);
}

static void test_command_past_its_timeout_is_killed(void **state)
{
    (void)state;
    static const char *const argv[] = {"sleep", "30", NULL};
    struct tl__diag_command result;
    long long start = now_ms();
    TL_ASSERT_OK(tl__diag_command_run(argv, 200, 1024, &result));
    assert_true(result.timed_out);
    assert_int_equal(result.signal, SIGKILL);
    if (now_ms() - start > 5000)
        fail_msg("the command was not cut off after 200 ms");
    tl__diag_command_clear(&result);
}

static void test_command_output_is_bounded(void **state)
{
    (void)state;
    static const char *const argv[] = {"seq", "1", "200000", NULL};
    struct tl__diag_command result;
    TL_ASSERT_OK(tl__diag_command_run(argv, 10000, 1000, &result));
    assert_true(result.output_truncated);
    assert_int_equal(result.output_len, 1000);
    assert_int_equal(strlen(result.output), 1000);
    assert_int_equal(result.exit_status, 0);
    tl__diag_command_clear(&result);
}

static void test_command_tail_keeps_the_last_bytes(void **state)
{
    (void)state;
    /* 1..200000 is about 1.3 MB: the output is read whole, and only its end is kept. */
    static const char *const argv[] = {"seq", "1", "200000", NULL};
    struct tl__diag_command result;
    TL_ASSERT_OK(tl__diag_command_run_tail(argv, 10000, 1000, &result));
    assert_true(result.output_truncated);
    assert_int_equal(result.output_len, 1000);
    assert_int_equal(strlen(result.output), 1000);
    const char *last = result.output + result.output_len - strlen("199999\n200000\n");
    assert_string_equal(last, "199999\n200000\n");
    tl__diag_command_clear(&result);

    /* Output within the bound is kept whole and not marked. */
    static const char *const short_argv[] = {"seq", "1", "3", NULL};
    TL_ASSERT_OK(tl__diag_command_run_tail(short_argv, 10000, 1000, &result));
    assert_false(result.output_truncated);
    assert_string_equal(result.output, "1\n2\n3\n");
    tl__diag_command_clear(&result);
}

static void test_command_failure_is_described(void **state)
{
    (void)state;
    static const char *const argv[] = {"ls", "/no/such/path/for/tierline", NULL};
    struct tl__diag_command result;
    TL_ASSERT_OK(tl__diag_command_run(argv, 5000, 1024, &result));
    char why[300];
    tl__diag_command_describe(&result, why, sizeof why);
    if (strncmp(why, "exit status 2: ", 15) != 0 || !strstr(why, "/no/such/path"))
        fail_msg("unexpected description: %s", why);
    tl__diag_command_clear(&result);
    static const char *const missing[] = {"no-such-program-for-tierline", NULL};
    TL_ASSERT_RC(TL_ENOTFOUND, tl__diag_command_run(missing, 1000, 1024, &result));
}

/* ---- Parsers on fixed text ---------------------------------------------------------------- */

static void test_os_release_values_are_unquoted(void **state)
{
    (void)state;
    json_t *os = json_object();
    TL_ASSERT_OK(
        tl__probe_system_parse_os_release("# comment\n"
                                          "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
                                          "ID=debian\n"
                                          "VERSION_ID='12'\n"
                                          "NAME=\"ignored\"\n"
                                          "VERSION_CODENAME=\"say \\\"hi\\\"\"\n"
                                          "garbage line\n",
                                          os));
    assert_string_equal(json_string_value(json_object_get(os, "pretty_name")),
                        "Debian GNU/Linux 12 (bookworm)");
    assert_string_equal(json_string_value(json_object_get(os, "id")), "debian");
    assert_string_equal(json_string_value(json_object_get(os, "version_id")), "12");
    assert_string_equal(json_string_value(json_object_get(os, "version_codename")), "say \"hi\"");
    assert_int_equal(json_object_size(os), 4);
    json_decref(os);
}

static void test_default_routes_are_found(void **state)
{
    (void)state;
    static const char ipv4[] =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "wg0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n";
    static const char ipv6[] =
        "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
    json_t *routes = json_array();
    TL_ASSERT_OK(tl__probe_network_parse_routes(ipv4, ipv6, routes));
    char *dump = json_dumps(routes, JSON_COMPACT);
    assert_string_equal(
        dump, "[{\"family\":\"ipv4\",\"gateway\":\"192.0.2.1\",\"interface\":\"eth0\",\"metric\":"
              "100},{\"family\":\"ipv4\",\"gateway\":null,\"interface\":\"wg0\",\"metric\":50},{"
              "\"family\":\"ipv6\",\"gateway\":\"fd00::1\",\"interface\":\"eth0\",\"metric\":"
              "1024}]");
    free(dump);
    json_decref(routes);
}

static void test_resolv_conf_is_read(void **state)
{
    (void)state;
    json_t *dns = json_object();
    TL_ASSERT_OK(tl__probe_network_parse_resolv_conf("# generated\n"
                                                     "nameserver 10.0.0.53\n"
                                                     "nameserver\t2001:db8::53 # primary\n"
                                                     "search corp.example lab.example\n"
                                                     "options edns0 timeout:2\n"
                                                     "nameserver\n"
                                                     "; comment\n",
                                                     dns));
    char *dump = json_dumps(dns, JSON_COMPACT);
    assert_string_equal(dump, "{\"nameservers\":[\"10.0.0.53\",\"2001:db8::53\"],\"search\":["
                              "\"corp.example\",\"lab.example\"],\"options\":[\"edns0\","
                              "\"timeout:2\"]}");
    free(dump);
    json_decref(dns);
}

static void test_failed_units_are_parsed(void **state)
{
    (void)state;
    json_t *units = json_array();
    TL_ASSERT_OK(tl__probe_services_parse_failed(
        "cups.service loaded failed failed CUPS Scheduler\n"
        "\xe2\x97\x8f nfs.mount    loaded failed failed   /mnt/nfs\n"
        "short line\n",
        units));
    assert_int_equal(json_array_size(units), 2);
    json_t *first = json_array_get(units, 0), *second = json_array_get(units, 1);
    assert_string_equal(json_string_value(json_object_get(first, "unit")), "cups.service");
    assert_string_equal(json_string_value(json_object_get(first, "sub")), "failed");
    assert_string_equal(json_string_value(json_object_get(first, "description")), "CUPS Scheduler");
    assert_string_equal(json_string_value(json_object_get(second, "unit")), "nfs.mount");
    assert_string_equal(json_string_value(json_object_get(second, "description")), "/mnt/nfs");
    json_decref(units);
}

static void test_listening_sockets_are_parsed(void **state)
{
    (void)state;
    /* Words as a little-endian kernel prints them; the test follows the host's order. */
    uint32_t loopback = htonl(0x7f000001), any = 0;
    char tcp[1024], tcp6[1024];
    snprintf(tcp, sizeof tcp,
             "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
             "timeout inode\n"
             "   0: %08X:0016 %08X:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
             "1111 1 0000000000000000 100 0 0 10 0\n"
             "   1: %08X:1F90 %08X:D431 01 00000000:00000000 00:00000000 00000000  1000        0 "
             "2222 1 0000000000000000 20 4 30 10 -1\n",
             any, any, loopback, loopback);
    uint32_t words[4] = {0, 0, 0, htonl(1)}; /* ::1 */
    snprintf(tcp6, sizeof tcp6,
             "  sl  local_address                         remote_address                        "
             "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
             "   0: %08X%08X%08X%08X:0277 00000000000000000000000000000000:0000 0A "
             "00000000:00000000 00:00000000 00000000   105        0 3333 1 0000000000000000 100 0 "
             "0 10 0\n",
             words[0], words[1], words[2], words[3]);
    json_t *sockets = json_array();
    TL_ASSERT_OK(tl__probe_sockets_parse(tcp, "tcp", sockets, 10));
    TL_ASSERT_OK(tl__probe_sockets_parse(tcp6, "tcp6", sockets, 10));
    char *dump = json_dumps(sockets, JSON_COMPACT);
    assert_string_equal(dump, "[{\"protocol\":\"tcp\",\"address\":\"0.0.0.0\",\"port\":22,\"uid\":"
                              "0,\"inode\":1111},{\"protocol\":\"tcp6\",\"address\":\"::1\","
                              "\"port\":631,\"uid\":105,\"inode\":3333}]");
    free(dump);
    TL_ASSERT_RC(TL_EFULL, tl__probe_sockets_parse(tcp, "tcp", sockets, 2));
    json_decref(sockets);
}

static void test_log_lines_are_bounded_and_redacted_whole(void **state)
{
    (void)state;
    char *text = malloc(64 * 1024);
    size_t len = 0;
    len += (size_t)sprintf(text + len, "partial tail of an earlier line\n");
    for (int i = 0; i < 60; i++)
        len += (size_t)sprintf(text + len, "line %d\n", i);
    len += (size_t)sprintf(text + len, "-- Boot 1234 --\nkey:\n-----BEGIN PRIVATE KEY-----\n"
                                       "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                                       "-----END PRIVATE KEY-----\n");
    memset(text + len, 'y', 3000);
    len += 3000;
    json_t *section = json_object();
    bool truncated = false;
    int kept = tl__probe_logs_parse(text, len, true, true, section, &truncated);
    assert_int_equal(kept, 50);
    assert_true(truncated);
    json_t *lines = json_object_get(section, "lines");
    assert_int_equal(json_array_size(lines), 50);
    /* 60 numbered lines, then "key:", the key as one line, and the long one: the last 50. */
    assert_string_equal(json_string_value(json_array_get(lines, 0)), "line 13");
    assert_string_equal(json_string_value(json_array_get(lines, 47)), "key:");
    assert_string_equal(json_string_value(json_array_get(lines, 48)), "[REDACTED PRIVATE KEY]");
    const char *longest = json_string_value(json_array_get(lines, 49));
    assert_int_equal(strlen(longest), 1024 + 3);
    assert_string_equal(longest + 1024, "...");
    json_decref(section);

    /* Without the partial first line or markers to drop, all of a short log is kept. */
    section = json_object();
    truncated = false;
    assert_int_equal(tl__probe_logs_parse("a\n\nb", 4, false, false, section, &truncated), 2);
    assert_false(truncated);
    json_decref(section);
    free(text);
}

/* ---- Relay reachability, through the real network probe --------------------------------- */

static json_t *relay_section(const char *relay)
{
    static const struct tl_diag_probe probes[] = {{"network", "", tl__probe_network_run, 10000}};
    tl_diag_t *diag = tl_diag_new();
    TL_ASSERT_OK(tl_diag_set_probes(diag, probes, 1));
    TL_ASSERT_OK(tl_diag_set_relay(diag, relay));
    json_t *report = NULL;
    TL_ASSERT_OK(tl_diag_run(diag, &report));
    tl_diag_free(diag);
    json_t *relay_facts = json_object_get(section_of(report, "network"), "relay");
    if (!relay_facts)
        fail_msg("no relay facts; network section: %s",
                 json_dumps(section_of(report, "network"), JSON_COMPACT));
    json_incref(relay_facts);
    json_decref(report);
    return relay_facts;
}

static int listen_on_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof address;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &len), 0);
    *port = ntohs(address.sin_port);
    return fd;
}

static void test_relay_that_listens_is_reachable(void **state)
{
    (void)state;
    int port;
    int fd = listen_on_loopback(&port);
    char relay[64];
    snprintf(relay, sizeof relay, "127.0.0.1:%d", port);
    json_t *facts = relay_section(relay);
    assert_true(json_is_true(json_object_get(facts, "reachable")));
    assert_string_equal(json_string_value(json_object_get(facts, "status")), "reachable");
    assert_string_equal(json_string_value(json_object_get(facts, "address")), relay);
    json_decref(facts);
    close(fd);
}

static void test_relay_that_refuses_is_unreachable(void **state)
{
    (void)state;
    int port;
    int fd = listen_on_loopback(&port);
    close(fd); /* nothing listens there now */
    char relay[64];
    snprintf(relay, sizeof relay, "127.0.0.1:%d", port);
    json_t *facts = relay_section(relay);
    assert_true(json_is_false(json_object_get(facts, "reachable")));
    assert_string_equal(json_string_value(json_object_get(facts, "status")), "unreachable");
    assert_string_equal(json_string_value(json_object_get(facts, "reason")),
                        strerror(ECONNREFUSED));
    json_decref(facts);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_probe_past_its_timeout_is_killed_and_others_complete),
    cmocka_unit_test(test_timeout_override_applies_to_every_probe),
    cmocka_unit_test(test_crashing_probe_is_an_error),
    cmocka_unit_test(test_garbage_output_is_an_error),
    cmocka_unit_test(test_nonzero_exit_is_an_error),
    cmocka_unit_test(test_probe_failure_becomes_its_error_section),
    cmocka_unit_test(test_oversized_section_is_an_error),
    cmocka_unit_test(test_every_string_is_redacted_before_it_leaves_the_probe),
    cmocka_unit_test(test_timeout_kills_what_the_probe_started),
    cmocka_unit_test(test_leftover_child_does_not_hold_up_the_section),
    cmocka_unit_test(test_probe_sees_its_own_deadline),
    cmocka_unit_test(test_bad_probe_tables_are_refused),
    cmocka_unit_test(test_probes_left_out_are_not_run_and_say_so),
    cmocka_unit_test(test_relay_addresses_are_validated),
    cmocka_unit_test(test_real_run_has_every_section),
    cmocka_unit_test(test_text_output_has_headings_and_tables),
    cmocka_unit_test(test_command_output_is_captured),
    cmocka_unit_test(test_command_stdin_is_dev_null),
    cmocka_unit_test(test_command_past_its_timeout_is_killed),
    cmocka_unit_test(test_command_output_is_bounded),
    cmocka_unit_test(test_command_tail_keeps_the_last_bytes),
    cmocka_unit_test(test_command_failure_is_described),
    cmocka_unit_test(test_os_release_values_are_unquoted),
    cmocka_unit_test(test_default_routes_are_found),
    cmocka_unit_test(test_resolv_conf_is_read),
    cmocka_unit_test(test_failed_units_are_parsed),
    cmocka_unit_test(test_listening_sockets_are_parsed),
    cmocka_unit_test(test_log_lines_are_bounded_and_redacted_whole),
    cmocka_unit_test(test_relay_that_listens_is_reachable),
    cmocka_unit_test(test_relay_that_refuses_is_unreachable),
};

TL_TEST_MAIN(tests)
