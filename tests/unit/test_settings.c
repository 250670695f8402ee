/*
 * Configuration files (proto/conffile.h) and settings tables
 * (proto/settings.h), and the relay's table (relay/cmd/admin_config.c):
 * every fault is named FILE:LINE with its reason and changes nothing; the
 * command line beats the file, which beats the defaults; a reload takes only
 * what may change at run time.
 */
#include "tl_test.h"

#include "proto/conffile.h"
#include "proto/log.h"
#include "proto/settings.h"
#include "relay/cmd/admin.h"
#include "relay/net/ssh_front.h"
#include "relay/serve.h"

#include <stdlib.h>
#include <unistd.h>

/* ---- the line parser ------------------------------------------------------------------ */

static const char *const KEYS[] = {"alpha", "beta", "web.port", NULL};
static const char *const SECTIONS[] = {"web", NULL};

struct seen {
    char text[1024];
    size_t used;
};

static int record_line(void *ctx, const tl_conffile_line_t *line, char *why, size_t why_size)
{
    struct seen *seen = ctx;
    (void)why;
    (void)why_size;
    if (line->key != NULL)
        seen->used += (size_t)snprintf(seen->text + seen->used, sizeof seen->text - seen->used,
                                       "%d:%s=%s;", line->number, line->key, line->value);
    return 0;
}

static int walk(unsigned flags, const char *text, struct seen *seen, char *why, size_t why_size)
{
    tl_conffile_t file = {
        .keys = KEYS, .known_text = "alpha, beta", .sections = SECTIONS, .flags = flags};
    memset(seen, 0, sizeof *seen);
    why[0] = '\0';
    return tl_conffile_walk(&file, "/etc/x.conf", text, strlen(text), record_line, seen, why,
                            why_size);
}

static void test_conffile_reads_keys_comments_blanks_and_sections(void **state)
{
    (void)state;
    struct seen seen;
    char why[512];
    const char text[] = "# a comment\n"
                        "\n"
                        "  alpha =  one two  \r\n"
                        "\t# indented comment\n"
                        "beta=2\n"
                        "[web]\n"
                        "port = 8443"; /* no newline at the end */
    TL_ASSERT_OK(walk(TL_CONFFILE_SECTIONS, text, &seen, why, sizeof why));
    assert_string_equal(seen.text, "3:alpha=one two;5:beta=2;7:web.port=8443;");
}

static void test_conffile_names_each_fault_with_file_and_line(void **state)
{
    (void)state;
    static const struct {
        unsigned flags;
        const char *text, *expected;
    } cases[] = {
        {0, "alpha = 1\nno equals here\n",
         "/etc/x.conf:2: expected 'key = value', got 'no equals here'"},
        {0, " = 3\n", "/etc/x.conf:1: expected 'key = value': the key is missing"},
        {0, "gamma = 1\n", "/etc/x.conf:1: unknown setting 'gamma' (known: alpha, beta)"},
        {0, "alpha =   \n", "/etc/x.conf:1: no value for 'alpha'"},
        {0, "alpha = 1\n# between\nalpha = 2\n", "/etc/x.conf:3: 'alpha' is set twice"},
        {TL_CONFFILE_SECTIONS, "[mail]\n", "/etc/x.conf:1: unknown section '[mail]'"},
        {TL_CONFFILE_SECTIONS, "[web\n", "/etc/x.conf:1: expected '[section]', got '[web'"},
        {TL_CONFFILE_SECTIONS, "[web]\nalpha = 1\n",
         "/etc/x.conf:2: unknown setting 'web.alpha' (known: alpha, beta)"},
        /* What the file says is shown escaped: no terminal escape gets through. */
        {0, "\x1b]0;owned\x07 here\n",
         "/etc/x.conf:1: expected 'key = value', got '\\x1b]0;owned\\x07 here'"},
        {0, "\x1b[2J = 1\n", "/etc/x.conf:1: unknown setting '\\x1b[2J' (known: alpha, beta)"},
        {TL_CONFFILE_SECTIONS, "[\x1b[31m]\n", "/etc/x.conf:1: unknown section '[\\x1b[31m]'"},
        /* Without sections, a header is just a line without '='. */
        {0, "[web]\n", "/etc/x.conf:1: expected 'key = value', got '[web]'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct seen seen;
        char why[512];
        TL_ASSERT_RC(TL_EINVAL, walk(cases[i].flags, cases[i].text, &seen, why, sizeof why));
        assert_string_equal(why, cases[i].expected);
    }
}

static void test_conffile_refuses_long_lines_and_nul_bytes(void **state)
{
    (void)state;
    struct seen seen;
    char why[512];
    size_t len = TL_CONFFILE_LINE_MAX + 10;
    char *text = malloc(len + 32);
    memcpy(text, "alpha = 1\nbeta = ", 17);
    memset(text + 17, 'x', len);
    text[17 + len] = '\0';
    TL_ASSERT_RC(TL_EINVAL, walk(0, text, &seen, why, sizeof why));
    assert_string_equal(why, "/etc/x.conf:2: line longer than 4096 bytes");
    free(text);

    tl_conffile_t file = {.keys = KEYS};
    const char with_nul[] = "alpha = 1\nbeta = a\0b\n";
    TL_ASSERT_RC(TL_EINVAL, tl_conffile_walk(&file, "f", with_nul, sizeof with_nul - 1, record_line,
                                             &seen, why, sizeof why));
    assert_string_equal(why, "f:2: NUL byte in the line");
}

/* ---- settings -------------------------------------------------------------------------- */

struct fake_args {
    const char *name, *where;
    uint64_t count;
    int flag;
};

static const tl_setting_def_t DEFS[] = {
    {"name", "name", TL_SETTING_TEXT, 1, 8, "first", TL_SETTING_RELOAD, "a name", NULL},
    {"count", "count", TL_SETTING_UINT, 1, 100, "10", TL_SETTING_RELOAD, "a count", NULL},
    {"where", "where", TL_SETTING_ADDRESS, 0, 0, NULL, TL_SETTING_OFF, "an address", NULL},
    {"dir", NULL, TL_SETTING_PATH, 0, 0, "/var/lib/x", 0, "a folder", NULL},
    {"level", NULL, TL_SETTING_LEVEL, 0, 0, "info", TL_SETTING_RELOAD, "a level", NULL},
    {"flag", "flag", TL_SETTING_BOOL, 0, 0, "no", 0, "a flag", NULL},
    {"wait", NULL, TL_SETTING_DURATION, 1000, 3600000, "2m", 0, "a wait", NULL},
    {0},
};

static const tl_cli_spec_t SPEC = {
    .options = (const tl_cli_arg_t[]){
        {.name = "name", .metavar = "N", .word = TL_CLI_AT(struct fake_args, name)},
        {.name = "where", .metavar = "A", .word = TL_CLI_AT(struct fake_args, where)},
        {.name = "count",
         .metavar = "N",
         .kind = TL_CLI_UINT,
         .min = 1,
         .max = 100,
         .out = TL_CLI_AT(struct fake_args, count)},
        {.name = "flag", .out = TL_CLI_AT(struct fake_args, flag)},
        {0}}};

static int parse_text(tl_settings_t *settings, const char *text, char *why, size_t why_size)
{
    why[0] = '\0';
    return tl_settings_parse(settings, "/etc/t.conf", text, strlen(text), why, why_size);
}

static void test_settings_defaults_file_then_command_line(void **state)
{
    (void)state;
    tl_settings_t *settings = malloc(sizeof *settings);
    char why[512], origin[64];
    TL_ASSERT_OK(tl_settings_init(settings, DEFS));
    assert_string_equal(tl_settings_text(settings, "name"), "first");
    assert_int_equal(tl_settings_number(settings, "count"), 10);
    assert_null(tl_settings_text(settings, "where"));
    assert_int_equal(tl_settings_number(settings, "wait"), 120000);
    assert_int_equal(tl_settings_number(settings, "level"), TL_LOG_INFO);

    TL_ASSERT_OK(parse_text(settings,
                            "name = second\ncount = 20\nwhere = 127.0.0.1:9\nlevel = debug\n"
                            "flag = yes\nwait = 90s\n",
                            why, sizeof why));
    assert_string_equal(tl_settings_text(settings, "name"), "second");
    assert_int_equal(tl_settings_number(settings, "count"), 20);
    assert_int_equal(tl_settings_number(settings, "flag"), 1);
    assert_int_equal(tl_settings_number(settings, "wait"), 90000);
    assert_int_equal(tl_settings_number(settings, "level"), TL_LOG_DEBUG);
    tl_settings_origin(settings, tl_settings_index(settings, "count"), origin, sizeof origin);
    assert_string_equal(origin, "/etc/t.conf:2");
    tl_settings_origin(settings, tl_settings_index(settings, "dir"), origin, sizeof origin);
    assert_string_equal(origin, "default");

    /* The command line: what was given wins; what was not keeps the file's value. */
    struct fake_args args = {.count = 30};
    TL_ASSERT_OK(tl_settings_from_args(settings, &SPEC, &args, why, sizeof why));
    assert_int_equal(tl_settings_number(settings, "count"), 30);
    assert_string_equal(tl_settings_text(settings, "name"), "second");
    tl_settings_origin(settings, tl_settings_index(settings, "count"), origin, sizeof origin);
    assert_string_equal(origin, "command line");

    /* "off" unsets a setting that allows it. */
    TL_ASSERT_OK(parse_text(settings, "where = off\n", why, sizeof why));
    assert_null(tl_settings_text(settings, "where"));
    free(settings);
}

static void test_settings_bad_values_named_and_change_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *text, *expected;
    } cases[] = {
        {"count = 0\n", "/etc/t.conf:1: 'count' wants a number 1..100, got '0'"},
        {"count = many\n", "/etc/t.conf:1: 'count' wants a number 1..100, got 'many'"},
        {"count = 101\n", "/etc/t.conf:1: 'count' wants a number 1..100, got '101'"},
        {"name = ninechars\n", "/etc/t.conf:1: 'name' wants 1..8 bytes"},
        {"name = a\tb\n",
         "/etc/t.conf:1: the value of 'name' holds a control character or is not UTF-8 text"},
        {"name = a\xc2\x9b\n",
         "/etc/t.conf:1: the value of 'name' holds a control character or is not UTF-8 text"},
        {"name = \xff\n",
         "/etc/t.conf:1: the value of 'name' holds a control character or is not UTF-8 text"},
        {"where = nowhere\n",
         "/etc/t.conf:1: 'where' wants ADDR:PORT (an IP address and a port, or off), got "
         "'nowhere'"},
        {"dir = relative/path\n",
         "/etc/t.conf:1: 'dir' wants an absolute path, got 'relative/path'"},
        {"level = loud\n", "/etc/t.conf:1: 'level' wants debug, info, warn or error, got 'loud'"},
        {"flag = maybe\n", "/etc/t.conf:1: 'flag' wants yes or no, got 'maybe'"},
        {"wait = 2d\n",
         "/etc/t.conf:1: 'wait' wants a duration from 1s to 3600s, like 90s, 15m or 2h; got "
         "'2d'"},
        {"name = fine\ncount = 5\ncount = 6\n", "/etc/t.conf:3: 'count' is set twice"},
        {"name = fine\nunknown = 1\n",
         "/etc/t.conf:2: unknown setting 'unknown' (known: name, count, where, dir, level, "
         "flag, wait)"},
        {"[web]\n", "/etc/t.conf:1: unknown section '[web]'"},
    };
    tl_settings_t *settings = malloc(sizeof *settings);
    tl_settings_t *before = malloc(sizeof *before);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[512];
        TL_ASSERT_OK(tl_settings_init(settings, DEFS));
        *before = *settings;
        TL_ASSERT_RC(TL_EINVAL, parse_text(settings, cases[i].text, why, sizeof why));
        assert_string_equal(why, cases[i].expected);
        /* A good line before the bad one changed nothing either. */
        assert_memory_equal(settings->value, before->value, sizeof settings->value);
    }
    free(before);
    free(settings);
}

static void test_settings_load_missing_default_is_fine_explicit_is_not(void **state)
{
    (void)state;
    tl_settings_t *settings = malloc(sizeof *settings);
    char why[512] = "";
    TL_ASSERT_OK(tl_settings_init(settings, DEFS));
    TL_ASSERT_OK(tl_settings_load(settings, "/nonexistent/t.conf", 0, why, sizeof why));
    assert_int_equal(settings->file_read, 0);
    assert_int_not_equal(tl_settings_load(settings, "/nonexistent/t.conf", 1, why, sizeof why), 0);
    assert_string_equal(why, "/nonexistent/t.conf: no such file or directory");

    char path[] = "/tmp/tl-settings-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *big = malloc(TL_SETTINGS_FILE_MAX + 2);
    memset(big, '#', TL_SETTINGS_FILE_MAX + 1);
    assert_int_equal(write(fd, big, TL_SETTINGS_FILE_MAX + 1), TL_SETTINGS_FILE_MAX + 1);
    close(fd);
    free(big);
    assert_int_not_equal(tl_settings_load(settings, path, 1, why, sizeof why), 0);
    assert_non_null(strstr(why, "larger than 65536 bytes"));
    unlink(path);
    free(settings);
}

static void test_settings_file_choice(void **state)
{
    (void)state;
    char path[256];
    int must_exist = -1;
    unsetenv("TL_TEST_CONFIG");
    TL_ASSERT_OK(
        tl_settings_file(NULL, "TL_TEST_CONFIG", "/etc/d.conf", path, sizeof path, &must_exist));
    assert_string_equal(path, "/etc/d.conf");
    assert_int_equal(must_exist, 0);
    setenv("TL_TEST_CONFIG", "/etc/env.conf", 1);
    TL_ASSERT_OK(
        tl_settings_file(NULL, "TL_TEST_CONFIG", "/etc/d.conf", path, sizeof path, &must_exist));
    assert_string_equal(path, "/etc/env.conf");
    assert_int_equal(must_exist, 1);
    TL_ASSERT_OK(tl_settings_file("/etc/given.conf", "TL_TEST_CONFIG", "/etc/d.conf", path,
                                  sizeof path, &must_exist));
    assert_string_equal(path, "/etc/given.conf");
    assert_int_equal(must_exist, 1);
    unsetenv("TL_TEST_CONFIG");
}

static void test_settings_reload_takes_only_what_may_change(void **state)
{
    (void)state;
    tl_settings_t *running = malloc(sizeof *running);
    tl_settings_t *fresh = malloc(sizeof *fresh);
    char why[512];
    TL_ASSERT_OK(tl_settings_init(running, DEFS));
    TL_ASSERT_OK(tl_settings_init(fresh, DEFS));
    TL_ASSERT_OK(
        parse_text(fresh, "count = 50\ndir = /srv/other\nlevel = warn\n", why, sizeof why));
    unsigned kept = 0;
    unsigned changed = tl_settings_take(running, fresh, &kept);
    assert_int_equal(changed, 2);
    assert_int_equal(kept, 1);
    assert_int_equal(tl_settings_number(running, "count"), 50);
    assert_int_equal(tl_settings_number(running, "level"), TL_LOG_WARN);
    assert_string_equal(tl_settings_text(running, "dir"), "/var/lib/x");
    free(fresh);
    free(running);
}

static void test_settings_show_lists_every_key_with_its_origin(void **state)
{
    (void)state;
    tl_settings_t *settings = malloc(sizeof *settings);
    char why[512], *text = NULL;
    size_t len = 0;
    TL_ASSERT_OK(tl_settings_init(settings, DEFS));
    TL_ASSERT_OK(parse_text(settings, "count = 7\n", why, sizeof why));
    FILE *out = open_memstream(&text, &len);
    tl_settings_show(settings, out);
    fclose(out);
    assert_non_null(strstr(text, "count = 7"));
    assert_non_null(strstr(text, "# /etc/t.conf:1\n"));
    assert_non_null(strstr(text, "where = off"));
    assert_non_null(strstr(text, "dir = /var/lib/x"));
    free(text);
    free(settings);
}

/* ---- the relay's table ------------------------------------------------------------------ */

static void test_relay_settings_defaults_are_the_codes(void **state)
{
    (void)state;
    tl_settings_t *settings = malloc(sizeof *settings);
    TL_ASSERT_OK(tl_settings_init(settings, tl_admin_relay_settings));
    assert_string_equal(tl_settings_text(settings, "data_dir"), TL_ADMIN_DATA_DEFAULT);
    assert_int_equal(tl_settings_number(settings, "heartbeat_ms"), TL_RELAY_DEFAULT_HEARTBEAT_MS);
    assert_int_equal(tl_settings_number(settings, "handshake_timeout_ms"),
                     TL_RELAY_DEFAULT_HANDSHAKE_TIMEOUT_MS);
    assert_int_equal(tl_settings_number(settings, "ssh_max_connections"),
                     TL_SSH_DEFAULT_MAX_SESSIONS);
    assert_int_equal(tl_settings_number(settings, "ssh_preauth_per_address"),
                     TL_SSH_DEFAULT_PREAUTH_PER_ADDRESS);
    assert_int_equal(tl_settings_number(settings, "ssh_auth_timeout_ms"),
                     TL_SSH_DEFAULT_AUTH_TIMEOUT_MS);
    assert_int_equal(tl_settings_number(settings, "ssh_keepalive_ms"), TL_SSH_DEFAULT_KEEPALIVE_MS);
    assert_int_equal(tl_settings_number(settings, "ssh_idle_timeout_ms"),
                     TL_SSH_DEFAULT_IDLE_TIMEOUT_MS);
    assert_int_equal(tl_settings_number(settings, "log_level"), TL_LOG_INFO);
    assert_null(tl_settings_text(settings, "metrics_listen"));
    free(settings);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_conffile_reads_keys_comments_blanks_and_sections),
    cmocka_unit_test(test_conffile_names_each_fault_with_file_and_line),
    cmocka_unit_test(test_conffile_refuses_long_lines_and_nul_bytes),
    cmocka_unit_test(test_settings_defaults_file_then_command_line),
    cmocka_unit_test(test_settings_bad_values_named_and_change_nothing),
    cmocka_unit_test(test_settings_load_missing_default_is_fine_explicit_is_not),
    cmocka_unit_test(test_settings_file_choice),
    cmocka_unit_test(test_settings_reload_takes_only_what_may_change),
    cmocka_unit_test(test_settings_show_lists_every_key_with_its_origin),
    cmocka_unit_test(test_relay_settings_defaults_are_the_codes),
};

TL_TEST_MAIN(tests)
