/*
 * tierline: the technician's and auditor's console (docs/technicians.md "The
 * console"; where it learns the relay's commands: docs/console.md). A
 * client of the relay's SSH front end: every relay command is one SSH exec
 * request, its output passed through and its exit status returned; the
 * console adds its settings (console/config.h), host-key pinning
 * (console/trust.h), downloads with a progress bar and a hash check
 * (console/download.h) and interactive sessions in a raw terminal (join).
 *
 * The table below holds only the console's own commands (setup, help,
 * evidence get -o). The relay's commands, their usage, summaries, options
 * and examples come from the relay's `help --json`: the answer of the
 * configured relay for this user, cached on disk (console/command_cache.h),
 * or else the list the console was built with (console/command_list.h).
 * Either way COMMAND --help and a group's listing are answered without a
 * connection. A word no list knows is refused as an unknown command (exit
 * 2) until the console has the relay's own list; after that the relay
 * judges it.
 */
#include "console/bundle.h"
#include "console/client.h"
#include "console/command_cache.h"
#include "console/command_list.h"
#include "console/complete.h"
#include "console/config.h"
#include "console/download.h"
#include "console/quote.h"
#include "console/setup.h"
#include "console/term.h"
#include "console/transfer.h"
#include "console/trust.h"
#include "proto/buf.h"
#include "proto/bundle.h"
#include "proto/cli.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/keys.h"
#include "proto/text.h"
#include "tl_version.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "tierline"
#define EXIT_SSH TL_CLIENT_EXIT_SSH

struct console {
    tl_config_t config;
    int settings_status;     /* 0, or the usage status of a bad setting ... */
    char settings_why[1100]; /* ... and what is wrong, said when a command needs them */
    tl_client_t *client;
    int signal; /* the signal that stopped a command */
    int raw;    /* join: the terminal is raw; size changes go to the relay */
    int escape; /* the command lists text from others: its output is shown escaped */
    /* The relay's commands: this relay's answer for this user, from the cache ... */
    int cache_looked;
    char cache_path[TL_CONFIG_PATH_MAX + 64];
    tl_command_list_t *cached;
    int64_t cached_ms; /* when the relay gave it */
    /* ... and the list the console was built with. */
    int built_in_looked;
    tl_command_list_t *built_in;
};

/* One of the console's own commands: their help is the console's, not the relay's. */
struct command {
    const char *name;
    const char *usage;
    const char *summary;
    int (*run)(struct console *console, int argc, char **argv); /* argv[0]: the command */
    const char *options; /* for --help: "--name VALUE<TAB>what it does\n" lines */
    const char *example; /* for --help: whole command lines */
};

/* ---- connecting and running ------------------------------------------------------------ */

/* 0 once connected to a relay whose host key is trusted; otherwise the exit status, after saying
 * why. */
static int connect_trusted(struct console *console)
{
    tl_config_t *config = &console->config;
    if (config->relay[0] == '\0') {
        fprintf(stderr, PROGRAM ": no relay configured; run '" PROGRAM " setup --relay HOST[:PORT] "
                                "--user NAME' (or give --relay, or set TIERLINE_RELAY)\n");
        return TL_EXIT_USAGE;
    }
    if (config->user[0] == '\0') {
        fprintf(stderr, PROGRAM ": no user name; give --user or set 'user' in %s\n", config->path);
        return TL_EXIT_USAGE;
    }
    console->client = tl_client_new(config->relay, config->port, config->user);
    if (console->client != NULL)
        tl_client_set_keepalive(console->client, config->keepalive);
    if (console->client == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return TL_EXIT_FAILURE;
    }
    if (tl_client_connect(console->client) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", tl_client_error(console->client));
        return EXIT_SSH;
    }
    /* From here on a signal is a flag the code looks at: prompts and the terminal are restored. */
    tl_term_signals_install();
    int interactive = isatty(STDIN_FILENO);
    if (tl_trust_host_key(config, tl_client_host_key(console->client), interactive) != 0) {
        if ((console->signal = tl_term_pending_signal()) != 0)
            return 128 + console->signal;
        return EXIT_SSH;
    }
    return 0;
}

/* 0 once signed in; otherwise the exit status, after saying why. */
static int connect_relay(struct console *console)
{
    int status = connect_trusted(console);
    if (status != 0)
        return status;
    tl_config_t *config = &console->config;
    int interactive = isatty(STDIN_FILENO);
    if (config->identity[0] == '\0') {
        fprintf(stderr, PROGRAM ": no identity; give --identity FILE or set 'identity' in %s\n",
                config->path);
        return EXIT_SSH;
    }
    if (tl_client_authenticate(console->client, config->identity, interactive) != 0) {
        if ((console->signal = tl_term_pending_signal()) != 0)
            return 128 + console->signal;
        fprintf(stderr, PROGRAM ": %s\n", tl_client_error(console->client));
        return EXIT_SSH;
    }
    return 0;
}

static int on_wake(void *wake_data, tl_client_t *client)
{
    struct console *console = wake_data;
    if (tl_term_take_resize() && console->raw) {
        int cols, rows;
        if (tl_term_size(STDOUT_FILENO, &cols, &rows) == 0)
            tl_client_resize(client, cols, rows);
    }
    int signo = tl_term_take_signal();
    if (signo != 0) {
        console->signal = signo;
        return -EINTR;
    }
    return 0;
}

static tl_exec_io_t base_io(struct console *console)
{
    tl_exec_io_t io;
    memset(&io, 0, sizeof io);
    io.in_fd = STDIN_FILENO;
    io.out_fd = STDOUT_FILENO;
    io.err_fd = STDERR_FILENO;
    io.wake_fd = tl_term_wake_fd();
    io.on_wake = on_wake;
    io.wake_data = console;
    return io;
}

/* The exit status for how a command ended; says why when it is not the relay's own status. */
static int exec_status(struct console *console, int rc, const tl_exec_result_t *result)
{
    tl_term_restore(); /* before any message, so it is not printed in raw mode */
    if (rc == -EINTR && console->signal != 0) {
        fprintf(stderr, PROGRAM ": interrupted by %s\n", strsignal(console->signal));
        return 128 + console->signal;
    }
    if (rc == -EPIPE)
        return 128 + SIGPIPE; /* the reader of our output left: quietly, as `cat | head` */
    if (rc != 0) {
        fprintf(stderr, PROGRAM ": %s\n", tl_client_error(console->client));
        /* Our own output failed (a negated errno): a plain failure. The relay or link: as ssh. */
        int local = rc == TL_EIO || (rc < 0 && rc > TL_ERR_FIRST);
        return local ? TL_EXIT_FAILURE : EXIT_SSH;
    }
    if (result->exit_signal[0] != '\0') {
        fprintf(stderr, PROGRAM ": the command was ended by signal %s\n", result->exit_signal);
        return EXIT_SSH;
    }
    if (result->exit_status < 0) {
        fprintf(stderr, PROGRAM ": the relay ended the command without an exit status\n");
        return EXIT_SSH;
    }
    return result->exit_status > 255 ? 255 : result->exit_status;
}

/* argv as one command line; 0, or the usage exit status after saying why. */
static int command_line(int argc, char **argv, char **line)
{
    int bad_word = -1;
    int rc = tl_quote_words(argc, argv, line, &bad_word);
    if (rc == TL_EINVAL && bad_word >= 0) {
        fprintf(stderr,
                PROGRAM ": argument %d holds a control character; the relay accepts tabs and "
                        "newlines only\n",
                bad_word + 1);
        return TL_EXIT_USAGE;
    }
    if (rc != 0) {
        fprintf(stderr, PROGRAM ": %s\n", tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    return 0;
}

/* A relay command with in_fd as its stdin and out_fd as its stdout; its exit status. */
static int relay_exec(struct console *console, int argc, char **argv, int in_fd, int out_fd)
{
    char *line = NULL;
    int status = command_line(argc, argv, &line);
    if (status == 0)
        status = connect_relay(console);
    if (status == 0) {
        tl_exec_io_t io = base_io(console);
        io.in_fd = in_fd;
        io.out_fd = out_fd;
        io.escape = console->escape;
        tl_exec_result_t result;
        int rc = tl_client_exec(console->client, line, &io, &result);
        status = exec_status(console, rc, &result);
    }
    free(line);
    return status;
}

/* Any relay command: stdin forwarded, output passed through, the exit status returned. */
static int cmd_relay(struct console *console, int argc, char **argv)
{
    return relay_exec(console, argc, argv, STDIN_FILENO, STDOUT_FILENO);
}

/* The relay's output for the machine's own commands (run, fix): passed through as ssh does. */
static int cmd_relay_raw(struct console *console, int argc, char **argv)
{
    console->escape = 0;
    return cmd_relay(console, argc, argv);
}

/*
 * run, with a terminal on stdin and stdout, asks for one on the machine as
 * `ssh -t` does: the terminal goes raw here, so Ctrl-C and the window's size
 * reach the command there (docs/technicians.md "Signals and terminals").
 */
static int cmd_run(struct console *console, int argc, char **argv)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return cmd_relay_raw(console, argc, argv);
    console->escape = 0;
    char *line = NULL;
    int status = command_line(argc, argv, &line);
    if (status == 0)
        status = connect_relay(console);
    if (status != 0) {
        free(line);
        return status;
    }
    int cols = 80, rows = 24;
    tl_term_size(STDOUT_FILENO, &cols, &rows);
    const char *term = getenv("TERM");
    tl_exec_io_t io = base_io(console);
    io.pty_term = term != NULL && term[0] != '\0' ? term : "xterm";
    io.pty_cols = cols;
    io.pty_rows = rows;
    tl_exec_result_t result;
    int rc = tl_term_raw_enter(STDIN_FILENO);
    if (rc != 0) {
        /* No raw mode: the command still runs, as it would without a terminal. */
        rc = tl_client_exec(console->client, line, &io, &result);
    } else {
        console->raw = 1;
        rc = tl_client_exec(console->client, line, &io, &result);
        console->raw = 0;
    }
    free(line);
    return exec_status(console, rc, &result); /* restores the terminal first */
}

static int cmd_evidence_get(struct console *console, int argc, char **argv)
{
    static const char usage[] = "usage: " PROGRAM " evidence get T-N SHA256 [-o FILE]\n";
    const char *positional[2], *output = NULL;
    int count = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc || output != NULL) {
                fprintf(stderr, PROGRAM " evidence get: %s needs one FILE\n%s", argv[i], usage);
                return TL_EXIT_USAGE;
            }
            output = argv[++i];
            if (output[0] == '\0') {
                fprintf(stderr, PROGRAM " evidence get: the output file name is empty\n%s", usage);
                return TL_EXIT_USAGE;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, PROGRAM " evidence get: unknown option '%s'\n%s", argv[i], usage);
            return TL_EXIT_USAGE;
        } else if (count < 2) {
            positional[count++] = argv[i];
        } else {
            fprintf(stderr, PROGRAM " evidence get: unexpected argument '%s'\n%s", argv[i], usage);
            return TL_EXIT_USAGE;
        }
    }
    if (count != 2) {
        fprintf(stderr, "%s", usage);
        return TL_EXIT_USAGE;
    }
    int status = connect_relay(console);
    if (status != 0)
        return status;
    tl_exec_io_t io = base_io(console);
    status = tl_download_evidence(console->client, &io, positional[0], positional[1], output,
                                  isatty(STDERR_FILENO));
    if (status < 0) {
        tl_exec_result_t none = {.exit_status = -1};
        status = exec_status(console, status, &none);
    }
    return status;
}

/*
 * pull T-N MACHINE_PATH [LOCAL], push T-N LOCAL MACHINE_PATH: the stock scp to the relay the
 * console has checked (console/transfer.h); scp's own exit status.
 */
static int cmd_transfer(struct console *console, int argc, char **argv)
{
    int push = strcmp(argv[0], "push") == 0;
    const char *usage = push ? "usage: " PROGRAM " push T-N LOCAL MACHINE_PATH\n"
                             : "usage: " PROGRAM " pull T-N MACHINE_PATH [LOCAL]\n";
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, PROGRAM " %s: unknown option '%s'\n%s", argv[0], argv[i], usage);
            return TL_EXIT_USAGE;
        }
    if (argc < (push ? 4 : 3) || argc > 4) {
        fprintf(stderr, "%s", usage);
        return TL_EXIT_USAGE;
    }
    tl_transfer_t t = {
        .push = push,
        .ticket = argv[1],
        .machine_path = push ? argv[3] : argv[2],
        .local_path = push ? argv[2] : (argc == 4 ? argv[3] : NULL),
    };
    char why[256];
    if (tl_transfer_check(&t, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM " %s: %s\n%s", argv[0], why, usage);
        return TL_EXIT_USAGE;
    }
    if (push && access(t.local_path, R_OK) != 0) {
        fprintf(stderr, PROGRAM " push: %s: %s\n", t.local_path, strerror(errno));
        return TL_EXIT_FAILURE;
    }
    tl_config_t *config = &console->config;
    if (config->relay[0] != '\0' && config->identity[0] == '\0') {
        fprintf(stderr, PROGRAM ": no identity; give --identity FILE or set 'identity' in %s\n",
                config->path);
        return EXIT_SSH;
    }
    int status = connect_trusted(console);
    if (status != 0)
        return status;
    const char *key_line = tl_client_host_key_line(console->client);
    char known_hosts[512];
    int rc = key_line[0] != '\0'
                 ? tl_transfer_known_hosts(key_line, known_hosts, sizeof known_hosts)
                 : -EINVAL;
    /* scp makes its own connection; this one has done its part. */
    tl_client_free(console->client);
    console->client = NULL;
    if (rc != 0) {
        fprintf(stderr, PROGRAM " %s: cannot write the relay's key for scp: %s\n", argv[0],
                tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    t.host = config->relay;
    t.port = config->port;
    t.user = config->user;
    t.identity = config->identity;
    t.known_hosts = known_hosts;
    t.keepalive = config->keepalive;
    tl_transfer_argv_t words;
    rc = tl_transfer_argv(&t, &words);
    if (rc == 0) {
        rc = tl_transfer_spawn(words.argv);
        tl_transfer_argv_free(&words);
    }
    unlink(known_hosts);
    if (rc == -ENOENT) {
        fprintf(stderr,
                PROGRAM " %s: scp is not installed (Debian: apt-get install "
                        "openssh-client)\n",
                argv[0]);
        return TL_EXIT_FAILURE;
    }
    if (rc < 0) {
        fprintf(stderr, PROGRAM " %s: cannot run scp: %s\n", argv[0], tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    return rc;
}

/*
 * ticket export T-N [-o FILE], audit export --ticket T-N [-o FILE]: without -o the archive passes
 * to stdout untouched, as ssh.
 */
static int export_bundle(struct console *console, int argc, char **argv, int audit)
{
    const char *name = audit ? PROGRAM " audit export" : PROGRAM " ticket export";
    const char *usage = audit ? "usage: " PROGRAM " audit export --ticket T-N [-o FILE | --json]\n"
                              : "usage: " PROGRAM " ticket export T-N [-o FILE | --json]\n";
    const char *ticket = NULL, *output = NULL;
    int json_out = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0 ||
            (audit && strcmp(argv[i], "--ticket") == 0)) {
            const char **into = argv[i][1] == 'o' || argv[i][2] == 'o' ? &output : &ticket;
            if (i + 1 >= argc || *into != NULL || argv[i + 1][0] == '\0') {
                fprintf(stderr, "%s: %s needs one %s\n%s", name, argv[i],
                        into == &output ? "FILE" : "T-N", usage);
                return TL_EXIT_USAGE;
            }
            *into = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json_out = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "%s: unknown option '%s'\n%s", name, argv[i], usage);
            return TL_EXIT_USAGE;
        } else if (ticket == NULL && !audit) {
            ticket = argv[i];
        } else {
            fprintf(stderr, "%s: unexpected argument '%s'\n%s", name, argv[i], usage);
            return TL_EXIT_USAGE;
        }
    }
    if (ticket == NULL || (output != NULL && json_out)) {
        if (output != NULL && json_out)
            fprintf(stderr, "%s: -o or --json, not both\n", name);
        fputs(usage, stderr);
        return TL_EXIT_USAGE;
    }
    if (output == NULL) {
        /* The relay's own answer: an archive (never escaped), or with --json a listing. */
        console->escape = json_out;
        return cmd_relay(console, argc, argv);
    }
    int status = connect_relay(console);
    if (status != 0)
        return status;
    tl_exec_io_t io = base_io(console);
    status = tl_download_bundle(console->client, &io, audit, ticket, output, isatty(STDERR_FILENO));
    if (status < 0) {
        tl_exec_result_t none = {.exit_status = -1};
        status = exec_status(console, status, &none);
    }
    return status;
}

static int cmd_ticket_export(struct console *console, int argc, char **argv)
{
    return export_bundle(console, argc, argv, 0);
}

static int cmd_audit_export(struct console *console, int argc, char **argv)
{
    return export_bundle(console, argc, argv, 1);
}

/*
 * audit verify [--from-checkpoint FILE|-] [--json]: the relay cannot read the auditor's files,
 * so the console opens FILE and sends it as the command's stdin with `--from-checkpoint -`.
 */
static int cmd_audit_verify(struct console *console, int argc, char **argv)
{
    static const char usage[] = "usage: " PROGRAM " audit verify [--from-checkpoint FILE|-] "
                                "[--json]\n";
    const char *from = NULL;
    char **words = calloc((size_t)argc + 1, sizeof *words);
    int count = 0, status = 0, fd = -1;
    if (words == NULL)
        return TL_EXIT_FAILURE;
    for (int i = 0; i < argc; i++) {
        if (i >= 2 && strcmp(argv[i], "--from-checkpoint") == 0) {
            if (i + 1 >= argc || from != NULL || argv[i + 1][0] == '\0') {
                fprintf(stderr, PROGRAM " audit verify: --from-checkpoint needs one FILE\n%s",
                        usage);
                status = TL_EXIT_USAGE;
                goto out;
            }
            from = argv[++i];
            words[count++] = "--from-checkpoint";
            words[count++] = "-";
        } else {
            words[count++] = argv[i];
        }
    }
    if (from == NULL || strcmp(from, "-") == 0) {
        status = cmd_relay(console, count, words);
        goto out;
    }
    fd = open(from, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, PROGRAM " audit verify: cannot read %s: %s\n", from, strerror(errno));
        status = TL_EXIT_USAGE;
        goto out;
    }
    status = relay_exec(console, count, words, fd, STDOUT_FILENO);
out:
    if (fd >= 0)
        close(fd);
    free(words);
    return status;
}

/*
 * replay SESSION [...] [-o FILE.cast]: without -o the relay's replay passes through to the
 * terminal untouched (a session's own terminal bytes; the relay escapes what it adds). With -o the
 * relay sends the cast (replay --cast) and it is kept in FILE only when the command succeeded.
 */
static int cmd_replay(struct console *console, int argc, char **argv)
{
    static const char usage[] = "usage: " PROGRAM " replay SESSION [--speed X] [--idle-limit S] "
                                "[--from MARKER] [--search TEXT [--json]] [--cast] [--force] "
                                "[-o FILE.cast]\n";
    const char *output = NULL;
    char **words = calloc((size_t)argc + 2, sizeof *words);
    char partial[4096];
    int count = 0, status = 0, fd = -1;
    if (words == NULL)
        return TL_EXIT_FAILURE;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0)) {
            if (i + 1 >= argc || output != NULL || argv[i + 1][0] == '\0') {
                fprintf(stderr, PROGRAM " replay: %s needs one FILE\n%s", argv[i], usage);
                status = TL_EXIT_USAGE;
                goto out;
            }
            output = argv[++i];
        } else {
            words[count++] = argv[i];
        }
    }
    console->escape = 0;
    if (output == NULL) {
        status = cmd_relay(console, count, words);
        goto out;
    }
    int cast = 0;
    for (int i = 1; i < count; i++)
        cast |= strcmp(words[i], "--cast") == 0;
    if (!cast)
        words[count++] = "--cast";
    if (tl_format(partial, sizeof partial, "%s.part", output) != 0) {
        fprintf(stderr, PROGRAM " replay: the file name is too long\n");
        status = TL_EXIT_USAGE;
        goto out;
    }
    fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, PROGRAM " replay: cannot write %s: %s\n", partial, strerror(errno));
        status = TL_EXIT_FAILURE;
        goto out;
    }
    status = relay_exec(console, count, words, STDIN_FILENO, fd);
    if (status == 0 && fsync(fd) != 0)
        status = TL_EXIT_FAILURE;
    close(fd);
    fd = -1;
    if (status == 0 && rename(partial, output) != 0) {
        fprintf(stderr, PROGRAM " replay: cannot write %s: %s\n", output, strerror(errno));
        status = TL_EXIT_FAILURE;
    }
    if (status != 0)
        unlink(partial);
out:
    if (fd >= 0)
        close(fd);
    free(words);
    return status;
}

/* verify-bundle FILE [--fingerprint SHA256:... | --key FILE] [--json]: needs no relay. */
static int cmd_verify_bundle(struct console *console, int argc, char **argv)
{
    static const char usage[] =
        "usage: " PROGRAM " verify-bundle FILE [--fingerprint SHA256:... | --key FILE] [--json]\n";
    const char *file = NULL, *fingerprint = NULL, *key_file = NULL;
    int json_out = 0;
    for (int i = 1; i < argc; i++) {
        int takes_value = strcmp(argv[i], "--fingerprint") == 0 || strcmp(argv[i], "--key") == 0;
        if (takes_value && (i + 1 >= argc || fingerprint != NULL || key_file != NULL)) {
            fprintf(stderr,
                    PROGRAM " verify-bundle: %s needs a value, and one trusted key only\n%s",
                    argv[i], usage);
            return TL_EXIT_USAGE;
        }
        if (strcmp(argv[i], "--fingerprint") == 0) {
            fingerprint = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0) {
            key_file = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json_out = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, PROGRAM " verify-bundle: unknown option '%s'\n%s", argv[i], usage);
            return TL_EXIT_USAGE;
        } else if (file == NULL) {
            file = argv[i];
        } else {
            fprintf(stderr, PROGRAM " verify-bundle: unexpected argument '%s'\n%s", argv[i], usage);
            return TL_EXIT_USAGE;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "%s", usage);
        return TL_EXIT_USAGE;
    }
    char trusted[TL_FINGERPRINT_LEN] = "", source[200] = "--fingerprint";
    if (fingerprint != NULL && !tl_fingerprint_valid(fingerprint)) {
        fprintf(stderr,
                PROGRAM " verify-bundle: --fingerprint wants SHA256: and 43 base64 characters, as "
                        "ssh-keygen -l prints them\n%s",
                usage);
        return TL_EXIT_USAGE;
    }
    if (fingerprint != NULL)
        snprintf(trusted, sizeof trusted, "%s", fingerprint);
    if (key_file != NULL) {
        char *pem = NULL;
        size_t pem_len = 0;
        EVP_PKEY *key = NULL;
        int rc = tl_fs_read_file(key_file, TL_BUNDLE_KEY_MAX, 0, NULL, NULL, &pem, &pem_len);
        if (rc == 0)
            rc = tl_bundle_key_read(pem, pem_len, &key);
        if (rc == 0)
            rc = tl_fingerprint(key, trusted);
        EVP_PKEY_free(key);
        free(pem);
        if (rc != 0) {
            fprintf(stderr,
                    PROGRAM " verify-bundle: --key %s: not an Ed25519 public key in PEM "
                            "form (%s)\n",
                    key_file, tl_strerror(rc));
            return TL_EXIT_FAILURE;
        }
        tl_format(source, sizeof source, "--key %s", key_file);
    }
    /* Without either, the relay this console is set up for: its pinned host key. */
    if (trusted[0] == '\0' && console->settings_status == 0 && console->config.host_key[0]) {
        snprintf(trusted, sizeof trusted, "%s", console->config.host_key);
        tl_format(source, sizeof source, "the console's pin for %s", console->config.relay);
    }
    return tl_bundle_verify_file(file, trusted[0] ? trusted : NULL, source, json_out);
}

static int cmd_join(struct console *console, int argc, char **argv)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, PROGRAM " join: needs a terminal on stdin and stdout (for commands "
                                "without one: " PROGRAM " run T-N -- COMMAND)\n");
        return TL_EXIT_USAGE;
    }
    char *line = NULL;
    int status = command_line(argc, argv, &line);
    if (status == 0)
        status = connect_relay(console);
    if (status != 0) {
        free(line);
        return status;
    }
    int cols = 80, rows = 24;
    tl_term_size(STDOUT_FILENO, &cols, &rows);
    const char *term = getenv("TERM");
    tl_exec_io_t io = base_io(console);
    io.pty_term = term != NULL && term[0] != '\0' ? term : "xterm";
    io.pty_cols = cols;
    io.pty_rows = rows;
    tl_exec_result_t result;
    int rc = tl_term_raw_enter(STDIN_FILENO);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " join: cannot put the terminal in raw mode: %s\n",
                tl_strerror(rc));
        free(line);
        return TL_EXIT_FAILURE;
    }
    console->raw = 1;
    rc = tl_client_exec(console->client, line, &io, &result);
    console->raw = 0;
    free(line);
    return exec_status(console, rc, &result); /* restores the terminal first */
}

/* ---- setup ------------------------------------------------------------------------------- */

static int cmd_setup(struct console *console, int argc, char **argv)
{
    return tl_setup_run(console->config.path, argc, argv);
}

/* ---- the relay's commands ------------------------------------------------------------------ */

/* The list the console was built with; NULL (said once) if it cannot be read. */
static const tl_command_list_t *built_in_list(struct console *console)
{
    if (!console->built_in_looked) {
        char why[512];
        console->built_in_looked = 1;
        if (tl_command_list_parse(tl_command_list_built_in, strlen(tl_command_list_built_in),
                                  &console->built_in, why, sizeof why) != 0)
            fprintf(stderr, PROGRAM ": the command list this console was built with: %s\n", why);
    }
    return console->built_in;
}

/*
 * This relay's list for this user, from the cache; NULL if there is none. A
 * cache file that cannot be used is named, with the reason, and ignored.
 */
static const tl_command_list_t *cached_list(struct console *console)
{
    const tl_config_t *config = &console->config;
    if (console->cache_looked)
        return console->cached;
    console->cache_looked = 1;
    if (console->settings_status != 0 || config->relay[0] == '\0' || config->user[0] == '\0' ||
        tl_command_cache_path(config->relay, config->port, config->user, console->cache_path,
                              sizeof console->cache_path) != 0) {
        console->cache_path[0] = '\0';
        return NULL;
    }
    char why[1024];
    int rc = tl_command_cache_load(console->cache_path, config->relay, config->port, config->user,
                                   &console->cached, &console->cached_ms, why, sizeof why);
    if (rc != 0 && rc != -ENOENT) {
        char *path = tl_text_escape_dup(console->cache_path, TL_TEXT_LINE);
        fprintf(stderr, PROGRAM ": ignoring the cached command list %s: %s\n",
                path != NULL ? path : "", why);
        free(path);
    }
    return console->cached;
}

/* The list to show: the relay's answer when the console has one, else the built-in one. */
static const tl_command_list_t *shown_list(struct console *console)
{
    const tl_command_list_t *list = cached_list(console);
    return list != NULL ? list : built_in_list(console);
}

/* Help words among the command's own: run's stop where the machine's command starts. */
static int relay_command_wants_help(const tl_command_info_t *info, int argc, char **argv, int words)
{
    if (info->positionals_before_rest >= 0)
        return tl_cli_wants_help(argc, argv, words, info->positionals_before_rest,
                                 info->value_options);
    return tl_cli_wants_help(argc, argv, words, -1, NULL);
}

/* COMMAND --help for one of the relay's commands, as the relay writes it, with our name. */
static void write_relay_help(struct console *console, FILE *out, const tl_command_info_t *info)
{
    tl_buf_t *example = tl_buf_new(64 * 1024); /* the escaped lines and our name */
    int rc = example != NULL ? 0 : TL_ENOMEM;
    for (const char *line = info->example; rc == 0 && *line != '\0';) {
        const char *end = strchr(line, '\n'); /* each line of it ends with one */
        if ((rc = tl_buf_put(example, PROGRAM " ", strlen(PROGRAM " "))) == 0)
            rc = tl_buf_put(example, line, (size_t)(end - line + 1));
        line = end + 1;
    }
    if (rc == 0)
        rc = tl_buf_put_u8(example, '\0');
    tl_cli_help_t help = {info->usage, info->summary, info->options,
                          rc == 0 ? (const char *)tl_buf_data(example) : NULL};
    tl_cli_help_write(out, PROGRAM, &help);
    const tl_command_list_t *cached = cached_list(console);
    if (cached != NULL && tl_command_list_get(cached, info->name) == NULL)
        fprintf(out, "\nThe relay does not list it for %s (%s): the role may not use it.\n",
                tl_command_list_user(cached), tl_command_list_role(cached));
    tl_buf_free(example);
}

/* What the relay prints, kept whole up to its cap. */
struct capture {
    tl_buf_t *bytes;
    int error;
};

static int capture_bytes(void *data, const void *bytes, size_t len)
{
    struct capture *capture = data;
    int rc = tl_buf_put(capture->bytes, bytes, len);
    return rc != 0 ? (capture->error = rc) : 0;
}

/* Asks the relay for its list (help --json): 0 and *list, or the exit status after saying why. */
static int fetch_list(struct console *console, tl_command_list_t **list)
{
    tl_buf_t *bytes = tl_buf_new(TL_COMMAND_LIST_MAX_BYTES);
    struct capture capture = {bytes, 0};
    char why[1024];
    *list = NULL;
    int status = bytes != NULL ? connect_relay(console) : TL_EXIT_FAILURE;
    if (status != 0)
        goto out;
    tl_exec_io_t io = base_io(console);
    io.in_fd = -1;
    io.out_fd = -1;
    io.on_stdout = capture_bytes;
    io.data = &capture;
    io.escape = 1;
    tl_exec_result_t result;
    int rc = tl_client_exec(console->client, "help --json", &io, &result);
    if (capture.error != 0) {
        fprintf(stderr, PROGRAM ": the relay's command list is larger than %u KiB\n",
                TL_COMMAND_LIST_MAX_BYTES / 1024);
        status = TL_EXIT_FAILURE;
        goto out;
    }
    if ((status = exec_status(console, rc, &result)) != 0)
        goto out;
    if (tl_command_list_parse(tl_buf_data(bytes), tl_buf_len(bytes), list, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM ": the relay's command list is not valid: %s\n", why);
        status = TL_EXIT_FAILURE;
        goto out;
    }
    /* Without the cache the list is still good for this once. */
    const tl_config_t *config = &console->config;
    if (console->cache_path[0] != '\0' &&
        tl_command_cache_store(console->cache_path, config->relay, config->port, config->user,
                               *list, tl_wall_ms(), why, sizeof why) != 0)
        fprintf(stderr, PROGRAM ": cannot keep the relay's command list: %s\n", why);
out:
    tl_buf_free(bytes);
    return status;
}

/* ---- help ------------------------------------------------------------------------------------ */

static const struct command *own_command(const char *name);
static void write_own_help(FILE *out, const struct command *command);

/* help COMMAND: what COMMAND --help says, without a connection. */
static int explain(struct console *console, int count, const char **words)
{
    char name[2 * 64];
    if (tl_format(name, sizeof name, "%s%s%s", words[0], count > 1 ? " " : "",
                  count > 1 ? words[1] : "") != 0)
        name[0] = '\0';
    const struct command *own = own_command(name);
    if (own != NULL) {
        write_own_help(stdout, own);
        return TL_EXIT_OK;
    }
    const tl_command_info_t *info = tl_command_list_get(cached_list(console), name);
    if (info == NULL)
        info = tl_command_list_get(built_in_list(console), name);
    if (info == NULL) {
        char *shown = tl_text_escape_dup(name, TL_TEXT_LINE);
        fprintf(stderr,
                PROGRAM " help: no command '%s' in the relay's list ('" PROGRAM
                        " help' lists them)\n",
                shown != NULL ? shown : "");
        free(shown);
        return TL_EXIT_USAGE;
    }
    write_relay_help(console, stdout, info);
    return TL_EXIT_OK;
}

/* The relay's list as its own `help` and `help --json` print it. */
static int write_listing(const tl_command_list_t *list, int json_out)
{
    if (json_out) {
        char *text =
            tl_text_json_dumps(tl_command_list_json(list), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
            fprintf(stderr, PROGRAM ": out of memory\n");
            return TL_EXIT_FAILURE;
        }
        printf("%s\n", text);
        free(text);
        return TL_EXIT_OK;
    }
    printf("Commands for %s (%s):\n", tl_command_list_user(list), tl_command_list_role(list));
    for (size_t i = 0; i < tl_command_list_count(list); i++) {
        const tl_command_info_t *info = tl_command_list_at(list, i);
        printf("  %-44s %s\n", info->usage, info->summary);
    }
    printf("'COMMAND --help' explains one.\n");
    return TL_EXIT_OK;
}

static const char help_usage[] = "help [--json] [--refresh] [COMMAND]";

/*
 * help: the relay's list for this user. A cached list younger than
 * TL_COMMAND_CACHE_FRESH_MS answers without a connection; otherwise (or with
 * --refresh) the relay is asked and its answer cached. An older list answers
 * when the relay cannot be asked, saying so; with no list at all the console
 * says it cannot list the relay's commands.
 */
static int cmd_help(struct console *console, int argc, char **argv)
{
    const char *words[2];
    int json_out = 0, refresh = 0, count = 0;
    tl_cli_option_t options[] = {{"json", NULL, &json_out}, {"refresh", NULL, &refresh}, {0}};
    int status =
        tl_cli_parse(PROGRAM, "help", help_usage, argc, argv, 1, options, words, 2, &count);
    if (status != 0)
        return status;
    if (count > 0 && json_out) {
        fprintf(stderr,
                PROGRAM " help: --json lists every command; give no COMMAND with it\n"
                        "usage: " PROGRAM " %s\n",
                help_usage);
        return TL_EXIT_USAGE;
    }
    if (count > 0 && !refresh)
        return explain(console, count, words);
    if (console->settings_status != 0) {
        fprintf(stderr, PROGRAM ": %s\n", console->settings_why);
        return console->settings_status;
    }
    const tl_command_list_t *cached = cached_list(console);
    int64_t age = tl_wall_ms() - console->cached_ms;
    if (cached == NULL || refresh || age < 0 || age >= TL_COMMAND_CACHE_FRESH_MS) {
        tl_command_list_t *fetched = NULL;
        status = fetch_list(console, &fetched);
        if (status == 0) {
            /* From here on the relay's new answer is the list (COMMAND's help too). */
            tl_command_list_free(console->cached);
            console->cached = fetched;
            console->cached_ms = tl_wall_ms();
        } else if (cached != NULL && !refresh) {
            char when[TL_UTC_TEXT];
            tl_format_utc(console->cached_ms, when);
            fprintf(stderr, PROGRAM ": the relay could not be asked again; its list of %s:\n",
                    when);
            status = TL_EXIT_OK;
        } else {
            fprintf(stderr,
                    PROGRAM ": cannot list the relay's commands: %s (the console's own commands "
                            "work without it: '" PROGRAM " --help')\n",
                    cached == NULL ? "none are cached and the relay could not be asked"
                                   : "the relay could not be asked again");
            return status;
        }
    }
    return count > 0 ? explain(console, count, words) : write_listing(console->cached, json_out);
}

static const char completion_usage[] = "completion bash";

static int cmd_completion(struct console *console, int argc, char **argv)
{
    (void)console;
    const char *shell[1];
    int count = 0;
    tl_cli_option_t options[] = {{0}};
    int status = tl_cli_parse(PROGRAM, "completion", completion_usage, argc, argv, 1, options,
                              shell, 1, &count);
    if (status != 0)
        return status;
    if (count != 1 || strcmp(shell[0], "bash") != 0) {
        fprintf(stderr, PROGRAM " completion: only bash is supported\nusage: " PROGRAM " %s\n",
                completion_usage);
        return TL_EXIT_USAGE;
    }
    return tl_complete_bash_script(stdout, PROGRAM) == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

/* ---- the console's own commands ------------------------------------------------------------ */

static const struct command own_commands[] = {
    {"setup", tl_setup_usage, "write the console's settings to its config file", cmd_setup,
     "--relay HOST[:PORT]\tthe relay's SSH address (port 2222 if none)\n"
     "--user NAME\tyour account on the relay\n"
     "--identity FILE\tyour private key (default ~/.ssh/id_ed25519)\n"
     "--host-key SHA256:...\tpin the relay's host key (tierline-relay init prints it)\n"
     "--json\twhat the file now says, an object: path, relay, port, user, identity, "
     "identity_readable, host_key (null if none), dropped_pin\n",
     "tierline setup --relay relay.example.com:2222 --user bob\n"},
    {"evidence get", "evidence get T-N SHA256 [-o FILE]",
     "download an item (progress bar on a terminal; the hash is checked)", cmd_evidence_get,
     "-o, --output FILE\twrite it to FILE (kept only when whole and its hash checks out)\n",
     "tierline evidence get T-1 fbd45efc -o diagnostics.json\n"},
    {"pull", "pull T-N MACHINE_PATH [LOCAL]",
     "copy a file from a ticket's machine (the stock scp, its progress meter on a terminal; "
     "needs a files grant)",
     cmd_transfer, NULL,
     "tierline pull T-1 /etc/cups/printers.conf\ntierline pull T-1 /var/log/syslog T-1-syslog\n"},
    {"push", "push T-N LOCAL MACHINE_PATH",
     "copy a file to a ticket's machine (the stock scp; needs a files grant the user allowed "
     "push on; a MACHINE_PATH ending in / is a directory)",
     cmd_transfer, NULL, "tierline push T-1 fix.conf /tmp/\n"},
    {"ticket export", "ticket export T-N [-o FILE | --json]",
     "a ticket's evidence bundle, signed by the relay (-o: saved only when it checks out)",
     cmd_ticket_export,
     "-o, --output FILE\twrite it to FILE, kept only when whole, every hash right and signed by "
     "the relay's host key\n"
     "--json\twithout -o: what the bundle would hold, as the relay says it\n",
     "tierline ticket export T-4 -o T-4.tar\n"},
    {"audit export", "audit export --ticket T-N [-o FILE | --json]",
     "a ticket's bundle for auditors: its audit entries with inclusion proofs, the checkpoint, "
     "the audit key and verify_bundle.py (-o: saved only when it checks out)",
     cmd_audit_export,
     "--ticket T-N\tthe ticket\n"
     "-o, --output FILE\twrite it to FILE, kept only when whole, every hash right and signed by "
     "the relay's host key\n"
     "--json\twithout -o: what the bundle would hold, as the relay says it\n",
     "tierline audit export --ticket T-4 -o T-4.tar\n"},
    {"audit verify", "audit verify [--from-checkpoint FILE|-] [--json]",
     "verify the audit log's chain and checkpoints, and that it extends the checkpoint you kept",
     cmd_audit_verify,
     "--from-checkpoint FILE|-\ta checkpoint you kept (audit checkpoint's output), read here "
     "and sent to the relay on stdin (-: this stdin); the log must extend it\n"
     "--json\tthe verdict as an object, as the relay says it (tierline-commands(7))\n",
     "tierline audit verify --from-checkpoint kept.note\n"},
    {"replay",
     "replay SESSION [--speed X] [--idle-limit S] [--from MARKER] [--search TEXT [--json]] "
     "[--cast] [--force] [-o FILE.cast]",
     "play a session's recording with its timing and markers (-o: save it as a .cast file)",
     cmd_replay,
     "--speed X\tplay X times as fast (more than 0, at most 100)\n"
     "--idle-limit S\tno pause longer than S seconds\n"
     "--from MARKER\tstart at a marker: its number, or text it holds\n"
     "--search TEXT\tplay nothing: the times at which TEXT appears in the output\n"
     "--json\twith --search: the matches and the markers as an object, as the relay says\n"
     "--cast\tplay nothing: the recording as an asciicast v2 file on stdout\n"
     "--force\tplay a recording that does not match its audit entry (warned, and audited)\n"
     "-o, --output FILE.cast\tsave the recording as an asciicast v2 file, kept only when whole\n",
     "tierline replay G-3f9a --speed 2 --idle-limit 1\ntierline replay G-3f9a -o session.cast\n"},
    {"verify-bundle", "verify-bundle FILE [--fingerprint SHA256:... | --key FILE] [--json]",
     "check an evidence bundle: whole, every file's SHA-256, signed by the relay's key "
     "(exit 0 ok, 1 it fails, naming the file, 2 usage, 3 no trusted key given)",
     cmd_verify_bundle,
     "--fingerprint SHA256:...\tthe relay's key as tierline-relay init printed it (default: "
     "the console's host_key pin)\n"
     "--key FILE\tthe relay's key as tierline-relay host-key --pem printed it\n"
     "--json\tthe outcome as an object: file, ok, ticket, files, key, trusted_key, trusted, "
     "problem, path\n",
     "tierline verify-bundle T-4.tar --fingerprint SHA256:...\n"},
    {"help", help_usage, "the commands your role may use, as the relay lists them (cached)",
     cmd_help,
     "--json\tthe relay's list as data, an object: name, role, commands (each: name, usage, "
     "summary, options, example, capability)\n"
     "--refresh\task the relay again, however recent the cached list is\n",
     "tierline help\ntierline help --refresh run\n"},
    {"completion", completion_usage,
     "print the bash completion for the console (commands and their options, offline)",
     cmd_completion, NULL, "tierline completion bash > /etc/bash_completion.d/tierline\n"},
};

#define OWN_COUNT (sizeof own_commands / sizeof own_commands[0])

/*
 * How the console runs some of the relay's commands (their words and help are
 * the relay's): join in a raw terminal; run and fix pass the machine's output
 * through untouched. Any other command's output is shown escaped.
 */
static const struct runner {
    const char *name;
    int (*run)(struct console *console, int argc, char **argv);
} runners[] = {{"join", cmd_join}, {"run", cmd_run}, {"fix", cmd_relay_raw}};

static const struct command *own_command(const char *name)
{
    for (size_t i = 0; i < OWN_COUNT; i++)
        if (strcmp(own_commands[i].name, name) == 0)
            return &own_commands[i];
    return NULL;
}

/* The own command argv starts with, two-word names first. */
static const struct command *own_lookup(int argc, char **argv, int *words)
{
    for (size_t i = 0; argc >= 2 && i < OWN_COUNT; i++) {
        size_t len = strlen(argv[0]);
        if (strncmp(own_commands[i].name, argv[0], len) == 0 && own_commands[i].name[len] == ' ' &&
            strcmp(own_commands[i].name + len + 1, argv[1]) == 0) {
            *words = 2;
            return &own_commands[i];
        }
    }
    const struct command *command = own_command(argv[0]);
    if (command != NULL)
        *words = 1;
    return command;
}

static void write_own_help(FILE *out, const struct command *command)
{
    tl_cli_help_t help = {command->usage, command->summary, command->options, command->example};
    tl_cli_help_write(out, PROGRAM, &help);
}

/* A command's usage and summary as listings show it: the console's own where it has one. */
static void listed(const tl_command_info_t *info, const char **usage, const char **summary)
{
    const struct command *own = own_command(info->name);
    *usage = own != NULL ? own->usage : info->usage;
    *summary = own != NULL ? own->summary : info->summary;
}

/* ---- usage ------------------------------------------------------------------------------- */

static void write_usage(struct console *console, FILE *out)
{
    const tl_command_list_t *list = shown_list(console);
    int shown[OWN_COUNT] = {0};
    fprintf(out,
            "usage: " PROGRAM " [--relay HOST[:PORT]] [--user NAME] [--identity FILE] "
            "[--host-key SHA256:...] COMMAND [ARGS...]\n\n"
            "The Tierline console: the technician's and auditor's client for the relay's SSH\n"
            "front end. Every command runs on the relay; its output and exit status come back.\n\n"
            "Commands ('" PROGRAM " COMMAND --help' explains one):\n");
    /* The console's own first, then the relay's in its order, then any own one it lacks. */
    for (size_t pass = 0; pass < 3; pass++) {
        size_t count = pass == 1 ? tl_command_list_count(list) : OWN_COUNT;
        for (size_t i = 0; i < count; i++) {
            const char *usage, *summary;
            if (pass == 1) {
                const tl_command_info_t *info = tl_command_list_at(list, i);
                const struct command *own = own_command(info->name);
                if (own != NULL)
                    shown[own - own_commands] = 1;
                listed(info, &usage, &summary);
            } else {
                int overlay = tl_command_list_get(list, own_commands[i].name) != NULL;
                if (shown[i] || (pass == 0 && overlay))
                    continue;
                shown[i] = 1;
                usage = own_commands[i].usage;
                summary = own_commands[i].summary;
            }
            fprintf(out, "  %s\n      %s\n", usage, summary);
        }
    }
    if (list != NULL && list == console->cached) {
        char when[TL_UTC_TEXT];
        tl_format_utc(console->cached_ms, when);
        fprintf(out,
                "\nThe relay's commands above are those it listed for %s (%s) at %s\n"
                "('" PROGRAM " help --refresh' asks again).\n",
                tl_command_list_user(list), tl_command_list_role(list), when);
    } else if (list != NULL) {
        fprintf(out, "\nThe relay's commands above are those of the relay this console was built\n"
                     "with; '" PROGRAM " help' asks yours which ones your role may use.\n");
    }
    fprintf(out, "\n"
                 "--help and --version print this text and the version.\n\n"
                 "Settings, each overriding the one before: the config file\n"
                 "($XDG_CONFIG_HOME/tierline/config or ~/.config/tierline/config: 'key = value'\n"
                 "lines with keys relay, port, user, identity, host_key, keepalive), the\n"
                 "environment (TIERLINE_RELAY, TIERLINE_PORT, TIERLINE_USER, TIERLINE_IDENTITY,\n"
                 "TIERLINE_HOST_KEY, TIERLINE_KEEPALIVE), then the options before COMMAND.\n"
                 "Defaults: port 2222, user $USER, identity ~/.ssh/id_ed25519, keepalive 15 s.\n\n"
                 "Exit status: the relay command's own (0 ok, 1 failed, 2 usage, 77 permission\n"
                 "denied); 255 when the relay cannot be reached, its host key is not trusted or\n"
                 "it refuses the key; 2 for the console's own usage errors.\n");
}

static int in_group(const char *name, const char *group)
{
    size_t len = strlen(group);
    return strncmp(name, group, len) == 0 && name[len] == ' ';
}

/* "ticket --help" lists the group's commands (exit 0); "ticket" alone or "ticket bogus" is a
 * usage error (exit 2). */
static int group_listing(struct console *console, int argc, char **argv)
{
    const tl_command_list_t *list = shown_list(console);
    if (!tl_command_list_is_group(list, argv[0]))
        list = built_in_list(console);
    int help = tl_cli_wants_help(argc, argv, 1, -1, NULL);
    FILE *out = help ? stdout : stderr;
    if (!help && argc > 1)
        fprintf(out, PROGRAM ": unknown command '%s %s'\n", argv[0], argv[1]);
    else if (!help)
        fprintf(out, PROGRAM ": '%s' needs one of its commands:\n", argv[0]);
    for (size_t i = 0; i < tl_command_list_count(list); i++) {
        const tl_command_info_t *info = tl_command_list_at(list, i);
        const char *usage, *summary;
        if (!in_group(info->name, argv[0]))
            continue;
        listed(info, &usage, &summary);
        fprintf(out, "usage: " PROGRAM " %-40s %s\n", usage, summary);
    }
    fprintf(out, "'" PROGRAM " %s COMMAND --help' explains one.\n", argv[0]);
    return help ? TL_EXIT_OK : TL_EXIT_USAGE;
}

/* ---- completion ---------------------------------------------------------------------------- */

/* __complete CWORD WORD...: the candidates for COMP_WORDS[CWORD], from the lists the console
 * has without connecting (console/complete.h). Prints nothing on bad input: a shell is asking. */
static int complete_words(struct console *console, int argc, char **argv)
{
    uint64_t cword = 0;
    if (argc < 1 || tl_cli_parse_uint(argv[0], 1, (uint64_t)argc - 1, &cword) != 0)
        return TL_EXIT_USAGE;
    const tl_command_list_t *list = cached_list(console);
    if (list == NULL)
        list = built_in_list(console);
    tl_complete_own_t own[OWN_COUNT];
    for (size_t i = 0; i < OWN_COUNT; i++)
        own[i] = (tl_complete_own_t){own_commands[i].name, own_commands[i].options};
    return tl_complete_write(stdout, list, own, OWN_COUNT, (int)cword, argc - 1, argv + 1) == 0
               ? TL_EXIT_OK
               : TL_EXIT_FAILURE;
}

/* ---- main -------------------------------------------------------------------------------- */

struct override {
    const char *key, *flag, *value;
};

/* Defaults, then the file, then the environment, then the command line; what is wrong with a
 * bad one is kept for when a command needs them. */
static void load_settings(struct console *console, const struct override *overrides, size_t count)
{
    tl_config_t *config = &console->config;
    char why[1024];
    int exists = 0, rc = 0;
    if (config->path[0] != '\0')
        rc = tl_config_load_file(config, config->path, &exists, why, sizeof why);
    if (rc == 0)
        rc = tl_config_apply_env(config, why, sizeof why);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char detail[sizeof why - 64];
        if (overrides[i].value != NULL &&
            (rc = tl_config_set(config, overrides[i].key, overrides[i].value,
                                TL_CONFIG_FROM_COMMAND_LINE, overrides[i].flag, detail,
                                sizeof detail)) != 0)
            tl_format(why, sizeof why, "%s: %s", overrides[i].flag, detail);
    }
    if (rc != 0) {
        tl_format(console->settings_why, sizeof console->settings_why, "%s", why);
        console->settings_status = TL_EXIT_USAGE;
    }
}

/* The command argv names, run or answered; its exit status. */
static int dispatch(struct console *console, int argc, char **argv)
{
    int words = 0;
    const struct command *own = own_lookup(argc, argv, &words);
    if (own != NULL && tl_cli_wants_help(argc, argv, words, -1, NULL)) {
        write_own_help(stdout, own);
        return TL_EXIT_OK;
    }
    if (own != NULL && own->run == cmd_help)
        return cmd_help(console, argc, argv); /* needs the settings only to ask the relay */
    if (own != NULL && own->run == cmd_verify_bundle)
        return cmd_verify_bundle(console, argc, argv); /* offline: a bad setting is no matter */
    if (own != NULL && own->run == cmd_completion)
        return cmd_completion(console, argc, argv);
    const tl_command_info_t *info = NULL;
    if (own == NULL) {
        /* Running a command the built-in list knows needs no cache; its help prefers it. */
        info = tl_command_list_find(built_in_list(console), argc, argv, &words);
        if (info == NULL)
            info = tl_command_list_find(cached_list(console), argc, argv, &words);
    }
    if (info != NULL && relay_command_wants_help(info, argc, argv, words)) {
        const tl_command_info_t *relays = tl_command_list_get(cached_list(console), info->name);
        write_relay_help(console, stdout, relays != NULL ? relays : info);
        return TL_EXIT_OK;
    }
    if (own == NULL && info == NULL) {
        /* No list knows the word: the relay judges it once the console has its list. */
        int group = tl_command_list_is_group(built_in_list(console), argv[0]) ||
                    tl_command_list_is_group(cached_list(console), argv[0]);
        int has_list = cached_list(console) != NULL;
        if (group && (argc == 1 || !has_list || tl_cli_wants_help(argc, argv, 1, -1, NULL)))
            return group_listing(console, argc, argv);
        if (!has_list)
            return tl_cli_unknown(PROGRAM, argv[0]);
    }
    if (console->settings_status != 0) {
        fprintf(stderr, PROGRAM ": %s\n", console->settings_why);
        return console->settings_status;
    }
    if (own != NULL)
        return own->run(console, argc, argv);
    console->escape = 1;
    for (size_t i = 0; info != NULL && i < sizeof runners / sizeof runners[0]; i++)
        if (strcmp(runners[i].name, info->name) == 0)
            return runners[i].run(console, argc, argv);
    return cmd_relay(console, argc, argv);
}

int main(int argc, char **argv)
{
    struct console console;
    struct override overrides[] = {{"relay", "--relay", NULL},
                                   {"user", "--user", NULL},
                                   {"identity", "--identity", NULL},
                                   {"host_key", "--host-key", NULL}};
    const size_t override_count = sizeof overrides / sizeof overrides[0];
    int status = TL_EXIT_USAGE, first = 1, usage = 0;

    memset(&console, 0, sizeof console);
    tl_config_defaults(&console.config);
    if (argc >= 2 && strcmp(argv[1], "__complete") == 0) {
        load_settings(&console, overrides, 0);
        status = complete_words(&console, argc - 2, argv + 2);
        tl_command_list_free(console.cached);
        tl_command_list_free(console.built_in);
        return status;
    }
    for (; first < argc; first++) {
        const char *arg = argv[first];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage = 1;
            break;
        }
        if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
            printf(PROGRAM " %s\n", TL_VERSION_STRING);
            return TL_EXIT_OK;
        }
        if (arg[0] != '-')
            break;
        size_t i = 0;
        const char *value = NULL;
        for (; i < override_count; i++) {
            size_t len = strlen(overrides[i].flag);
            if (strncmp(arg, overrides[i].flag, len) == 0 && arg[len] == '=') {
                value = arg + len + 1;
                break;
            }
            if (strcmp(arg, overrides[i].flag) == 0) {
                if (first + 1 >= argc) {
                    fprintf(stderr, PROGRAM ": %s needs a value\nTry '" PROGRAM " --help'.\n", arg);
                    return TL_EXIT_USAGE;
                }
                value = argv[++first];
                break;
            }
        }
        if (i == override_count) {
            fprintf(stderr, PROGRAM ": unknown option '%s'\nTry '" PROGRAM " --help'.\n", arg);
            return TL_EXIT_USAGE;
        }
        overrides[i].value = value;
    }
    /* Read now, so the relay's cached list can be found; a bad setting is said only when a
     * command needs the settings. */
    load_settings(&console, overrides, override_count);
    if (usage || first >= argc) {
        write_usage(&console, usage ? stdout : stderr);
        status = usage ? TL_EXIT_OK : TL_EXIT_USAGE;
    } else {
        status = dispatch(&console, argc - first, argv + first);
    }

    tl_term_restore();
    tl_client_free(console.client);
    tl_command_list_free(console.cached);
    tl_command_list_free(console.built_in);
    return status;
}
