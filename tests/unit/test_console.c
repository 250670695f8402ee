/*
 * The console's pure parts: command-line quoting (checked against the
 * splitting rules of docs/technicians.md, re-implemented here from the doc),
 * the settings file and environment, known_hosts files (against lines and
 * fingerprints made by OpenSSH's own ssh-keygen), the progress bar's text,
 * and the terminal's raw mode and signal flags on a real pseudo-terminal.
 */
#include "tl_test.h"

#include "console/config.h"
#include "console/known_hosts.h"
#include "console/progress.h"
#include "console/quote.h"
#include "console/term.h"
#include "console/transfer.h"

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* ---- quoting -------------------------------------------------------------------------- */

/*
 * The relay's rules, from docs/technicians.md "Command lines": blanks (space,
 * tab, newline) separate words; '...' is literal; "..." takes \" and \\; a
 * backslash outside quotes makes the next character literal. Returns the
 * number of words, -1 if malformed.
 */
static int doc_split(const char *line, char words[][512], int max_words)
{
    int count = 0;
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (*p == '\0')
            return count;
        if (count == max_words)
            return -1;
        char *out = words[count++];
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n') {
            if (*p == '\'') {
                for (p++; *p != '\'' && *p != '\0'; p++)
                    *out++ = *p;
                if (*p++ == '\0')
                    return -1;
            } else if (*p == '"') {
                for (p++; *p != '"' && *p != '\0'; p++) {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    *out++ = *p;
                }
                if (*p++ == '\0')
                    return -1;
            } else if (*p == '\\') {
                if (*++p == '\0')
                    return -1;
                *out++ = *p++;
            } else {
                *out++ = *p++;
            }
        }
        *out = '\0';
    }
}

static void assert_quoted(int argc, char **argv, const char *expected)
{
    char *line = NULL;
    TL_ASSERT_OK(tl_quote_words(argc, argv, &line, NULL));
    assert_string_equal(line, expected);
    free(line);
}

static void test_quote_plain_words_go_as_they_are(void **state)
{
    (void)state;
    char *argv[] = {"evidence", "get", "T-12", "fbd45efc", "--json", "KEY=va_l/u.e@x:1,2%+"};
    assert_quoted(6, argv, "evidence get T-12 fbd45efc --json KEY=va_l/u.e@x:1,2%+");
}

static void test_quote_other_words_single_quoted(void **state)
{
    (void)state;
    char *argv[] = {"note", "it's", "", "a b", "$HOME", "tab\there", "line\nbreak", "\"\\"};
    assert_quoted(8, argv, "note 'it'\\''s' '' 'a b' '$HOME' 'tab\there' 'line\nbreak' '\"\\'");
}

static void test_quote_refuses_control_characters(void **state)
{
    (void)state;
    char *line = (char *)"unset";
    int bad = -1;
    char *argv[] = {"note", "fine", "bell\a", "esc\x1b"};
    TL_ASSERT_RC(TL_EINVAL, tl_quote_words(4, argv, &line, &bad));
    assert_null(line);
    assert_int_equal(bad, 2);
    char *del[] = {"x\x7f"};
    TL_ASSERT_RC(TL_EINVAL, tl_quote_words(1, del, &line, &bad));
    assert_int_equal(bad, 0);
    TL_ASSERT_RC(TL_EINVAL, tl_quote_words(0, argv, &line, &bad));
}

/* Random words of every byte the relay accepts split back to exactly themselves. */
static void test_quote_round_trips_through_the_documented_split(void **state)
{
    (void)state;
    static char storage[8][256];
    static char words[8][512];
    char *argv[8];
    srand(20261123);
    for (int round = 0; round < 2000; round++) {
        int argc = 1 + rand() % 8;
        for (int i = 0; i < argc; i++) {
            int len = rand() % 40;
            for (int j = 0; j < len; j++) {
                int c;
                do {
                    c = rand() % 256;
                } while (c == 0 || (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f);
                if (rand() % 4 == 0) /* plenty of the characters that matter */
                    c = "'\"\\ \t\n$*"[rand() % 9];
                storage[i][j] = (char)c;
            }
            storage[i][len] = '\0';
            argv[i] = storage[i];
        }
        char *line = NULL;
        TL_ASSERT_OK(tl_quote_words(argc, argv, &line, NULL));
        int count = doc_split(line, words, 8);
        if (count != argc)
            fail_msg("round %d: %d words became %d: %s", round, argc, count, line);
        for (int i = 0; i < argc; i++)
            if (strcmp(words[i], argv[i]) != 0)
                fail_msg("round %d word %d: sent '%s', split back '%s' from %s", round, i, argv[i],
                         words[i], line);
        free(line);
    }
}

/* ---- settings ----------------------------------------------------------------------------- */

static char dir_template[] = "/tmp/tl-console-test-XXXXXX";

static char *work_dir;

static const char *temp_dir(void)
{
    if (work_dir == NULL)
        work_dir = mkdtemp(dir_template);
    assert_non_null(work_dir);
    return work_dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Each case runs in its own process; this removes the directory it made. */
static int remove_temp_dir(void **state)
{
    (void)state;
    if (work_dir != NULL)
        nftw(work_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    strcpy(dir_template + strlen(dir_template) - 6, "XXXXXX");
    work_dir = NULL;
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path)
{
    static char text[8192];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static const char *const KEY = "SHA256:WFDEVqdOBYfLIx391LYoWty9fXKmUaq/Wmyk+u3z39Q";

static void clear_env(void)
{
    unsetenv("TIERLINE_RELAY");
    unsetenv("TIERLINE_PORT");
    unsetenv("TIERLINE_USER");
    unsetenv("TIERLINE_IDENTITY");
    unsetenv("TIERLINE_HOST_KEY");
}

static void test_config_defaults_and_file(void **state)
{
    (void)state;
    char path[512], why[1024];
    snprintf(path, sizeof path, "%s/config", temp_dir());
    setenv("HOME", temp_dir(), 1);
    setenv("USER", "dana", 1);
    tl_config_t config;
    tl_config_defaults(&config);
    assert_int_equal(config.port, 2222);
    assert_string_equal(config.user, "dana");
    assert_true(strstr(config.identity, "/.ssh/id_ed25519") != NULL);
    assert_string_equal(config.host_key, "");

    int exists = 1;
    TL_ASSERT_OK(
        tl_config_load_file(&config, "/nonexistent/tierline/config", &exists, why, sizeof why));
    assert_int_equal(exists, 0);

    char text[1024];
    snprintf(text, sizeof text,
             "# comment\n\n   relay = relay.example.com:2200  \nuser=alice\r\n"
             "identity = ~/keys/tech\nhost_key = %s\n\t# indented comment\n",
             KEY);
    write_file(path, text);
    TL_ASSERT_OK(tl_config_load_file(&config, path, &exists, why, sizeof why));
    assert_int_equal(exists, 1);
    assert_string_equal(config.relay, "relay.example.com");
    assert_int_equal(config.port, 2200);
    assert_string_equal(config.user, "alice");
    char identity[600];
    snprintf(identity, sizeof identity, "%s/keys/tech", temp_dir());
    assert_string_equal(config.identity, identity);
    assert_string_equal(config.host_key, KEY);
    assert_int_equal(config.relay_from, TL_CONFIG_FROM_FILE);
    assert_int_equal(config.port_from, TL_CONFIG_FROM_FILE);
}

static void test_config_bad_lines_named_and_change_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *line, *needle;
    } cases[] = {
        {"relay example.com", "expected 'key = value'"},
        {"= value", "the key is missing"},
        {"colour = blue", "unknown setting 'colour'"},
        {"port = 0", "not a port"},
        {"port = 65536", "not a port"},
        {"port = 22x", "not a port"},
        {"relay = bad host", "not HOST or HOST:PORT"},
        {"relay = [::1", "not HOST or HOST:PORT"},
        {"relay = host:", "not HOST or HOST:PORT"},
        {"user = two words", "not a user name"},
        {"host_key = SHA256:abc", "not a host key fingerprint"},
        {"host_key = MD5:aa:bb", "not a host key fingerprint"},
        {"identity =", "no value for 'identity'"},
        {"user = a\nuser = b", "'user' is set twice"},
    };
    char path[512], why[1024], text[256], where[600];
    snprintf(path, sizeof path, "%s/bad", temp_dir());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "# first\nidentity = /first\n%s\n", cases[i].line);
        write_file(path, text);
        tl_config_t config;
        tl_config_defaults(&config);
        int exists = 0;
        why[0] = '\0';
        TL_ASSERT_RC(TL_EINVAL, tl_config_load_file(&config, path, &exists, why, sizeof why));
        int line = strchr(cases[i].line, '\n') != NULL ? 4 : 3;
        snprintf(where, sizeof where, "%s:%d: ", path, line);
        if (strncmp(why, where, strlen(where)) != 0 || strstr(why, cases[i].needle) == NULL)
            fail_msg("line '%s': got '%s', want '%s...%s'", cases[i].line, why, where,
                     cases[i].needle);
        /* The good line before was not applied either. */
        assert_string_not_equal(config.identity, "/first");
    }
    char *big = malloc(TL_CONFIG_LINE_MAX + 100);
    memset(big, 'x', TL_CONFIG_LINE_MAX + 50);
    strcpy(big + TL_CONFIG_LINE_MAX + 50, "\n");
    write_file(path, big);
    free(big);
    tl_config_t config;
    tl_config_defaults(&config);
    int exists = 0;
    TL_ASSERT_RC(TL_EINVAL, tl_config_load_file(&config, path, &exists, why, sizeof why));
    assert_true(strstr(why, ":1: line longer than") != NULL);

    /* A file over the cap is refused whole, before any line is read. */
    char *huge = malloc(TL_CONFIG_FILE_MAX + 2);
    memset(huge, '#', TL_CONFIG_FILE_MAX + 1);
    huge[TL_CONFIG_FILE_MAX + 1] = '\0';
    write_file(path, huge);
    free(huge);
    tl_config_defaults(&config);
    TL_ASSERT_RC(TL_EFULL, tl_config_load_file(&config, path, &exists, why, sizeof why));
    assert_true(strstr(why, "larger than 65536 bytes") != NULL);
    assert_int_equal(exists, 0);
}

static void test_config_relay_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text, *host;
        unsigned port;
    } good[] = {{"relay.example.com", "relay.example.com", 2222},
                {"10.0.0.1:7000", "10.0.0.1", 7000},
                {"[::1]:2200", "::1", 2200},
                {"[fe80::1%eth0]", "fe80::1%eth0", 2222},
                {"::1", "::1", 2222}};
    char why[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tl_config_t config;
        tl_config_defaults(&config);
        TL_ASSERT_OK(tl_config_set(&config, "relay", good[i].text, TL_CONFIG_FROM_COMMAND_LINE,
                                   "--relay", why, sizeof why));
        assert_string_equal(config.relay, good[i].host);
        assert_int_equal(config.port, good[i].port);
    }
    static const char *const bad[] = {"",       ":2222", "host:0",   "host:99999",
                                      "[::1]x", "a/b",   "user@host"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_config_t config;
        tl_config_defaults(&config);
        if (tl_config_set(&config, "relay", bad[i], TL_CONFIG_FROM_COMMAND_LINE, "--relay", why,
                          sizeof why) != TL_EINVAL)
            fail_msg("'%s' accepted as a relay", bad[i]);
        assert_string_equal(config.relay, "");
    }
    char address[64];
    tl_config_format_address("::1", 22, address, sizeof address);
    assert_string_equal(address, "[::1]:22");
    tl_config_format_address("relay", 22, address, sizeof address);
    assert_string_equal(address, "relay:22");
}

static void test_config_environment_overrides_file(void **state)
{
    (void)state;
    char why[512];
    clear_env();
    tl_config_t config;
    tl_config_defaults(&config);
    TL_ASSERT_OK(tl_config_set(&config, "relay", "file.example:1000", TL_CONFIG_FROM_FILE, NULL,
                               why, sizeof why));
    setenv("TIERLINE_PORT", "3000", 1);
    setenv("TIERLINE_USER", "erin", 1);
    setenv("TIERLINE_HOST_KEY", "", 1); /* empty: ignored */
    TL_ASSERT_OK(tl_config_apply_env(&config, why, sizeof why));
    assert_string_equal(config.relay, "file.example");
    assert_int_equal(config.port, 3000);
    assert_int_equal(config.port_from, TL_CONFIG_FROM_ENV);
    assert_string_equal(config.user, "erin");
    assert_string_equal(config.host_key, "");
    setenv("TIERLINE_PORT", "nope", 1);
    TL_ASSERT_RC(TL_EINVAL, tl_config_apply_env(&config, why, sizeof why));
    assert_true(strncmp(why, "TIERLINE_PORT: ", 15) == 0);
    clear_env();
}

static void test_config_update_keeps_other_lines(void **state)
{
    (void)state;
    char dir[600], path[700], why[1024];
    snprintf(dir, sizeof dir, "%s/xdg/tierline", temp_dir());
    snprintf(path, sizeof path, "%s/config", dir);
    const char *keys[] = {"relay", "port", "host_key"};
    const char *values[] = {"relay.example", "2200", KEY};
    /* A new file, and the directories above it. */
    TL_ASSERT_OK(tl_config_update_file(path, keys, values, 3, why, sizeof why));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char expected[512];
    snprintf(expected, sizeof expected, "relay = relay.example\nport = 2200\nhost_key = %s\n", KEY);
    assert_non_null(strstr(read_file(path), expected));

    /* Replace one, remove one, keep the rest and the comments, append a new one. */
    write_file(path, "# mine\nuser = alice\nrelay = old.example\n# also mine\nhost_key = "
                     "SHA256:WFDEVqdOBYfLIx391LYoWty9fXKmUaq/Wmyk+u3z39Q");
    const char *keys2[] = {"relay", "host_key", "identity"};
    const char *values2[] = {"new.example", NULL, "/keys/id"};
    TL_ASSERT_OK(tl_config_update_file(path, keys2, values2, 3, why, sizeof why));
    assert_string_equal(read_file(path), "# mine\nuser = alice\nrelay = new.example\n# also "
                                         "mine\nidentity = /keys/id\n");

    /* Bad values and malformed files are refused and change nothing. */
    const char *bad_values[] = {"bad host", NULL, NULL};
    TL_ASSERT_RC(TL_EINVAL, tl_config_update_file(path, keys2, bad_values, 1, why, sizeof why));
    write_file(path, "nonsense\n");
    TL_ASSERT_RC(TL_EINVAL, tl_config_update_file(path, keys, values, 3, why, sizeof why));
    assert_string_equal(read_file(path), "nonsense\n");
    assert_true(strstr(why, ":1: expected 'key = value'") != NULL);
}

static void test_config_default_path_follows_xdg(void **state)
{
    (void)state;
    char path[512];
    setenv("HOME", "/home/tech", 1);
    setenv("XDG_CONFIG_HOME", "/xdg", 1);
    TL_ASSERT_OK(tl_config_default_path(path, sizeof path));
    assert_string_equal(path, "/xdg/tierline/config");
    setenv("XDG_CONFIG_HOME", "relative", 1); /* not absolute: ignored, as the spec says */
    TL_ASSERT_OK(tl_config_default_path(path, sizeof path));
    assert_string_equal(path, "/home/tech/.config/tierline/config");
    unsetenv("XDG_CONFIG_HOME");
    TL_ASSERT_OK(tl_config_default_path(path, sizeof path));
    assert_string_equal(path, "/home/tech/.config/tierline/config");
    TL_ASSERT_RC(TL_EFULL, tl_config_default_path(path, 10));
}

/* ---- progress ---------------------------------------------------------------------------- */

static void test_progress_text(void **state)
{
    (void)state;
    char text[256];
    tl_progress_format(text, sizeof text, 1536 * 1024, 4 * 1024 * 1024, 0, 80);
    /* A 50-cell bar, 37% of it (18 cells) done. */
    assert_string_equal(text, "  1.5 MiB / 4.0 MiB  37% [==================>"
                              "                               ]");
    tl_progress_format(text, sizeof text, 4 * 1024 * 1024, 4 * 1024 * 1024, 2000, 80);
    assert_string_equal(text, "  4.0 MiB / 4.0 MiB 100% [========================================="
                              "]  2.0 MiB/s");
    assert_true(strlen(text) <= 80);
    /* Narrow terminals lose the bar, not the numbers; an unknown total shows bytes and rate. */
    tl_progress_format(text, sizeof text, 100, 1000, 1000, 30);
    assert_string_equal(text, "  100 B / 1000 B  10%   100 B/s");
    tl_progress_format(text, sizeof text, 5, 0, 1000, 80);
    assert_string_equal(text, "  5 B  5 B/s");
    /* More than announced never shows more than 100%. */
    tl_progress_format(text, sizeof text, 2000, 1000, 0, 80);
    assert_non_null(strstr(text, " 100% "));
}

/* ---- the terminal --------------------------------------------------------------------------- */

static int same_modes(const struct termios *a, const struct termios *b)
{
    return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
           a->c_lflag == b->c_lflag && memcmp(a->c_cc, b->c_cc, sizeof a->c_cc) == 0;
}

static void test_term_raw_mode_and_exact_restore(void **state)
{
    (void)state;
    int master, slave;
    assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
    struct termios before, during, after;
    /* An unusual starting point, which must come back as it was. */
    assert_int_equal(tcgetattr(slave, &before), 0);
    before.c_lflag &= ~(tcflag_t)ECHO;
    before.c_cc[VERASE] = 8;
    assert_int_equal(tcsetattr(slave, TCSANOW, &before), 0);
    assert_int_equal(tcgetattr(slave, &before), 0);

    TL_ASSERT_OK(tl_term_raw_enter(slave));
    TL_ASSERT_RC(TL_EINVAL, tl_term_raw_enter(slave)); /* one saved state at a time */
    assert_int_equal(tcgetattr(slave, &during), 0);
    assert_false(during.c_lflag & (ICANON | ISIG | IEXTEN));
    assert_false(during.c_oflag & OPOST);
    tl_term_restore();
    tl_term_restore(); /* idempotent */
    assert_int_equal(tcgetattr(slave, &after), 0);
    assert_true(same_modes(&before, &after));

    int cols = 0, rows = 0;
    struct winsize size = {.ws_row = 43, .ws_col = 132};
    assert_int_equal(ioctl(slave, TIOCSWINSZ, &size), 0);
    TL_ASSERT_OK(tl_term_size(slave, &cols, &rows));
    assert_int_equal(cols, 132);
    assert_int_equal(rows, 43);
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    assert_true(tl_term_size(pipe_fds[0], &cols, &rows) < 0);
    assert_true(tl_term_raw_enter(pipe_fds[0]) < 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    close(slave);
    close(master);
}

static int wake_readable(void)
{
    struct pollfd fd = {.fd = tl_term_wake_fd(), .events = POLLIN};
    return poll(&fd, 1, 0) == 1;
}

static void test_term_signals_set_flags_and_wake(void **state)
{
    (void)state;
    TL_ASSERT_OK(tl_term_signals_install());
    TL_ASSERT_OK(tl_term_signals_install());
    assert_true(tl_term_wake_fd() >= 0);
    assert_false(wake_readable());
    raise(SIGWINCH);
    assert_true(wake_readable());
    assert_int_equal(tl_term_take_resize(), 1);
    assert_int_equal(tl_term_take_resize(), 0);
    assert_false(wake_readable());
    raise(SIGTERM); /* handled: the test goes on */
    assert_true(wake_readable());
    assert_int_equal(tl_term_pending_signal(), SIGTERM);
    assert_int_equal(tl_term_take_signal(), SIGTERM);
    assert_int_equal(tl_term_take_signal(), 0);
    raise(SIGHUP);
    raise(SIGINT);
    assert_int_equal(tl_term_take_signal(), SIGINT);
    raise(SIGPIPE); /* ignored */
    assert_int_equal(tl_term_take_signal(), 0);
}

/* ---- known_hosts ------------------------------------------------------------------------ */

/* Two keys and their fingerprints as ssh-keygen -l printed them; a line ssh-keygen -H hashed. */
#define KEY_ONE "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOCx//o3N0w5eGmAix4F51diqiAvly0WaFwW1/CUsSnm"
#define FP_ONE "SHA256:wicS2n+oxl+VKMyItiZwNv3MRbJXjwnM/BYNOv7W/Tw"
#define KEY_TWO "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINsPqNKY9UGwaQb4AeFkBjJonp8iPKmTLQMic17acw5V"
#define FP_TWO "SHA256:F/vVN8u+GqPR4cyh2w+JBC2rrioBcTPjTqDcS4qQztE"
#define HASHED_ONE_AT_RELAY_2222                                                                   \
    "|1|88SbXWTXyzUrKUmw/qLrXOLCPbk=|/FttJ/ueTCn6MJmsAbJI4c4iKX4= " KEY_ONE

static tl_known_hosts_verdict_t judge(const char *text, const char *host, unsigned port,
                                      const char *fingerprint, int *line)
{
    return tl_known_hosts_check(text, strlen(text), host, port, fingerprint, line);
}

static void test_known_hosts_plain_bracketed_and_hashed_entries(void **state)
{
    (void)state;
    int line = -1;
    const char *file = "# a comment\n"
                       "\n"
                       "other.example.com " KEY_TWO "\n"
                       "[relay.example.com]:2222 " KEY_ONE " relay\n"
                       "relay.example.com " KEY_TWO "\n";
    assert_int_equal(judge(file, "relay.example.com", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(line, 4);
    /* Port 22 is the plain name, any other port only the bracketed form. */
    assert_int_equal(judge(file, "relay.example.com", 22, FP_TWO, &line), TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(line, 5);
    assert_int_equal(judge(file, "relay.example.com", 2223, FP_ONE, &line), TL_KNOWN_HOSTS_NONE);
    assert_int_equal(line, 0);
    /* Host names are compared without regard to case. */
    assert_int_equal(judge(file, "RELAY.example.COM", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(judge(HASHED_ONE_AT_RELAY_2222 "\n", "relay.example.com", 2222, FP_ONE, &line),
                     TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(judge(HASHED_ONE_AT_RELAY_2222, "relay.example.com", 2222, FP_TWO, &line),
                     TL_KNOWN_HOSTS_MISMATCH);
    assert_int_equal(judge(HASHED_ONE_AT_RELAY_2222, "relay.example.net", 2222, FP_ONE, &line),
                     TL_KNOWN_HOSTS_NONE);
}

static void test_known_hosts_other_key_is_a_mismatch_and_revoked_wins(void **state)
{
    (void)state;
    int line = 0;
    const char *file = "[127.0.0.1]:2222 " KEY_TWO "\n";
    assert_int_equal(judge(file, "127.0.0.1", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_MISMATCH);
    assert_int_equal(line, 1);
    /* Two keys listed for a host (a key being replaced): either one is trusted, as by ssh. */
    const char *both = "[127.0.0.1]:2222 " KEY_TWO "\n[127.0.0.1]:2222 " KEY_ONE "\n";
    assert_int_equal(judge(both, "127.0.0.1", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(line, 2);
    const char *revoked = "[127.0.0.1]:2222 " KEY_ONE "\n@revoked * " KEY_ONE "\n";
    assert_int_equal(judge(revoked, "127.0.0.1", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_REVOKED);
    assert_int_equal(line, 2);
    /* A CA line is not a host key; a broken line is skipped, not fatal. */
    const char *ignored = "@cert-authority * " KEY_TWO "\n[127.0.0.1]:2222 ssh-ed25519 !!!\n"
                          "[127.0.0.1]:2222\n";
    assert_int_equal(judge(ignored, "127.0.0.1", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_NONE);
    assert_int_equal(tl_known_hosts_combine(TL_KNOWN_HOSTS_MISMATCH, TL_KNOWN_HOSTS_MATCH),
                     TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(tl_known_hosts_combine(TL_KNOWN_HOSTS_MATCH, TL_KNOWN_HOSTS_REVOKED),
                     TL_KNOWN_HOSTS_REVOKED);
    assert_int_equal(tl_known_hosts_combine(TL_KNOWN_HOSTS_NONE, TL_KNOWN_HOSTS_MISMATCH),
                     TL_KNOWN_HOSTS_MISMATCH);
}

static void test_known_hosts_patterns_wildcards_and_negation(void **state)
{
    (void)state;
    int line = 0;
    const char *file = "*.example.com,!bad.example.com " KEY_ONE "\n"
                       "10.0.0.? " KEY_ONE "\n";
    assert_int_equal(judge(file, "relay.example.com", 22, FP_ONE, &line), TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(judge(file, "bad.example.com", 22, FP_ONE, &line), TL_KNOWN_HOSTS_NONE);
    assert_int_equal(judge(file, "10.0.0.7", 22, FP_ONE, &line), TL_KNOWN_HOSTS_MATCH);
    assert_int_equal(judge(file, "10.0.0.17", 22, FP_ONE, &line), TL_KNOWN_HOSTS_NONE);
    /* No character classes: brackets are literal, as in "[host]:port". */
    assert_int_equal(judge("[relay]:2222 " KEY_ONE, "r", 2222, FP_ONE, &line), TL_KNOWN_HOSTS_NONE);
}

static void test_known_hosts_files_from_ssh_config(void **state)
{
    (void)state;
    char files[TL_KNOWN_HOSTS_FILES_MAX][TL_KNOWN_HOSTS_PATH_MAX];
    size_t count = 0;
    tl_known_hosts_files(NULL, 0, "relay", "/home/bob", "bob", files, &count);
    assert_int_equal(count, 4);
    assert_string_equal(files[0], "/home/bob/.ssh/known_hosts");
    assert_string_equal(files[1], "/home/bob/.ssh/known_hosts2");
    assert_string_equal(files[2], "/etc/ssh/ssh_known_hosts");
    assert_string_equal(files[3], "/etc/ssh/ssh_known_hosts2");

    /* The first value that applies wins; Host blocks apply by pattern; Match is not followed. */
    const char *config = "# mine\n"
                         "Host other\n"
                         "  UserKnownHostsFile /nowhere\n"
                         "Match host relay\n"
                         "  UserKnownHostsFile /neither\n"
                         "Host rel* !relay.bad\n"
                         "  UserKnownHostsFile=~/.ssh/tl_known \"/srv/%u/known hosts\" %d/x\n"
                         "  GlobalKnownHostsFile none\n"
                         "Host *\n"
                         "  UserKnownHostsFile /later\n";
    tl_known_hosts_files(config, strlen(config), "relay", "/home/bob", "bob", files, &count);
    assert_int_equal(count, 3);
    assert_string_equal(files[0], "/home/bob/.ssh/tl_known");
    assert_string_equal(files[1], "/srv/bob/known hosts");
    assert_string_equal(files[2], "/home/bob/x");
    tl_known_hosts_files(config, strlen(config), "relay.bad", "/home/bob", "bob", files, &count);
    assert_int_equal(count, 3);
    assert_string_equal(files[0], "/later");
    assert_string_equal(files[1], "/etc/ssh/ssh_known_hosts");
    /* What cannot be expanded (a relative name, an unknown %-token) is left out. */
    const char *odd = "UserKnownHostsFile relative %h/known ~/.ssh/ok\n";
    tl_known_hosts_files(odd, strlen(odd), "relay", "/home/bob", "bob", files, &count);
    assert_int_equal(count, 3);
    assert_string_equal(files[0], "/home/bob/.ssh/ok");
}

/* ---- pull and push: the scp command line ---------------------------------------------------- */

static const char *word_after(const tl_transfer_argv_t *argv, const char *word)
{
    for (size_t i = 0; i + 1 < argv->count; i++)
        if (strcmp(argv->argv[i], word) == 0)
            return argv->argv[i + 1];
    return NULL;
}

static int has_word(const tl_transfer_argv_t *argv, const char *word)
{
    for (size_t i = 0; i < argv->count; i++)
        if (strcmp(argv->argv[i], word) == 0)
            return 1;
    return 0;
}

static void test_transfer_argv_trusts_one_key_and_names_the_ticket(void **state)
{
    (void)state;
    tl_transfer_t t = {.ticket = "T-12",
                       .machine_path = "//etc/cups/printers.conf",
                       .host = "relay.example",
                       .port = 2222,
                       .user = "bob",
                       .identity = "/home/bob/.ssh/id_ed25519",
                       .known_hosts = "/tmp/kh",
                       .keepalive = 15};
    char why[128];
    assert_int_equal(tl_transfer_check(&t, why, sizeof why), 0);
    tl_transfer_argv_t argv;
    assert_int_equal(tl_transfer_argv(&t, &argv), 0);
    assert_string_equal(argv.argv[0], "scp");
    assert_string_equal(word_after(&argv, "-F"), "/dev/null");
    assert_string_equal(word_after(&argv, "-i"), "/home/bob/.ssh/id_ed25519");
    assert_true(has_word(&argv, "-oUserKnownHostsFile=/tmp/kh"));
    assert_true(has_word(&argv, "GlobalKnownHostsFile=/dev/null"));
    assert_true(has_word(&argv, "StrictHostKeyChecking=yes"));
    assert_true(has_word(&argv, "IdentitiesOnly=yes"));
    assert_true(has_word(&argv, "-oHostKeyAlias=tierline-relay"));
    assert_true(has_word(&argv, "-oUser=bob"));
    assert_true(has_word(&argv, "-P2222"));
    assert_true(has_word(&argv, "-oServerAliveInterval=15"));
    /* Pull: the remote first, then the current directory, after "--". */
    assert_string_equal(argv.argv[argv.count - 3], "--");
    assert_string_equal(argv.argv[argv.count - 2], "relay.example:T-12/etc/cups/printers.conf");
    assert_string_equal(argv.argv[argv.count - 1], "./.");
    assert_null(argv.argv[argv.count]);
    tl_transfer_argv_free(&argv);

    /* Push: a relative local name never reads as a host; an IPv6 relay is bracketed. */
    t.push = 1;
    t.local_path = "fix:1.conf";
    t.machine_path = "tmp/";
    t.host = "::1";
    t.keepalive = 0;
    assert_int_equal(tl_transfer_check(&t, why, sizeof why), 0);
    assert_int_equal(tl_transfer_argv(&t, &argv), 0);
    assert_false(has_word(&argv, "-oServerAliveInterval=15"));
    assert_string_equal(argv.argv[argv.count - 2], "./fix:1.conf");
    assert_string_equal(argv.argv[argv.count - 1], "[::1]:T-12/tmp/");
    tl_transfer_argv_free(&argv);
}

static void test_transfer_check_refuses_bad_words(void **state)
{
    (void)state;
    char long_path[TL_TRANSFER_PATH_MAX + 2];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    const struct {
        const char *ticket, *machine, *local;
        int push;
        const char *why;
    } cases[] = {
        {"T-1", "/etc/x", NULL, 0, NULL},
        {"t-1", "/etc/x", NULL, 0, "is not a ticket"},
        {"T-", "/etc/x", NULL, 0, "is not a ticket"},
        {"T-0", "/etc/x", NULL, 0, "is not a ticket"},
        {"T-1x", "/etc/x", NULL, 0, "is not a ticket"},
        {"T-1", "", NULL, 0, "is empty"},
        {"T-1", "/etc/\x7f", NULL, 0, "control character"},
        {"T-1", "/etc/a\nb", NULL, 0, "control character"},
        {"T-1", long_path, NULL, 0, "longer than 4096 bytes"},
        {"T-1", "/etc/x", "", 0, "local path is empty"},
        {"T-1", "/tmp/", NULL, 1, "local path is empty"},
        {"T-1", "/tmp/", "fix.conf", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_transfer_t t = {.ticket = cases[i].ticket,
                           .machine_path = cases[i].machine,
                           .local_path = cases[i].local,
                           .push = cases[i].push};
        char why[256] = "";
        int rc = tl_transfer_check(&t, why, sizeof why);
        if (cases[i].why == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, TL_EINVAL);
            assert_non_null(strstr(why, cases[i].why));
        }
    }
}

static void test_transfer_known_hosts_file_is_one_private_line(void **state)
{
    (void)state;
    char dir[] = "/tmp/tl-test-kh-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("TMPDIR", dir, 1);
    char path[512];
    assert_int_equal(tl_transfer_known_hosts("ssh-ed25519 AAAAC3Nza", path, sizeof path), 0);
    unsetenv("TMPDIR");
    assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char text[128] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_string_equal(text, TL_TRANSFER_HOST_ALIAS " ssh-ed25519 AAAAC3Nza\n");
    unlink(path);
    rmdir(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_quote_plain_words_go_as_they_are),
    cmocka_unit_test(test_quote_other_words_single_quoted),
    cmocka_unit_test(test_quote_refuses_control_characters),
    cmocka_unit_test(test_quote_round_trips_through_the_documented_split),
    cmocka_unit_test_teardown(test_config_defaults_and_file, remove_temp_dir),
    cmocka_unit_test_teardown(test_config_bad_lines_named_and_change_nothing, remove_temp_dir),
    cmocka_unit_test(test_config_relay_forms),
    cmocka_unit_test(test_config_environment_overrides_file),
    cmocka_unit_test_teardown(test_config_update_keeps_other_lines, remove_temp_dir),
    cmocka_unit_test(test_config_default_path_follows_xdg),
    cmocka_unit_test(test_known_hosts_plain_bracketed_and_hashed_entries),
    cmocka_unit_test(test_known_hosts_other_key_is_a_mismatch_and_revoked_wins),
    cmocka_unit_test(test_known_hosts_patterns_wildcards_and_negation),
    cmocka_unit_test(test_known_hosts_files_from_ssh_config),
    cmocka_unit_test(test_progress_text),
    cmocka_unit_test(test_term_raw_mode_and_exact_restore),
    cmocka_unit_test(test_term_signals_set_flags_and_wake),
    cmocka_unit_test(test_transfer_argv_trusts_one_key_and_names_the_ticket),
    cmocka_unit_test(test_transfer_check_refuses_bad_words),
    cmocka_unit_test(test_transfer_known_hosts_file_is_one_private_line),
};

TL_TEST_MAIN(tests)
