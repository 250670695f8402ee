/*
 * tierline: the technician's and auditor's console (docs/technicians.md,
 * "The console"). A client of the relay's SSH front end: every relay command
 * is one SSH exec request, its output passed through and its exit status
 * returned; the console adds its settings (console/config.h), host-key
 * pinning (console/trust.h), downloads with a progress bar and a hash check
 * (console/download.h) and interactive sessions in a raw terminal (join).
 *
 * The table below is the one place commands are named; --help is built from
 * it, and a word it does not hold is an unknown command (exit 2), as in the
 * other programs (proto/cli.h). COMMAND --help is answered from the table
 * too, before any setting is read or any connection made.
 */
#include "console/client.h"
#include "console/config.h"
#include "console/download.h"
#include "console/quote.h"
#include "console/setup.h"
#include "console/term.h"
#include "console/trust.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "tl_version.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "tierline"
#define EXIT_SSH TL_CLIENT_EXIT_SSH

struct console {
    tl_config_t config;
    tl_client_t *client;
    int signal; /* the signal that stopped a command */
    int raw;    /* join: the terminal is raw; size changes go to the relay */
    int escape; /* the command lists text from others: its output is shown escaped */
};

struct command {
    const char *name;
    const char *usage;
    const char *summary;
    int (*run)(struct console *console, int argc, char **argv); /* argv[0]: the command */
    const char *options; /* for --help: "--name VALUE<TAB>what it does\n" lines */
    const char *example; /* for --help: whole command lines */
    /*
     * 1: the relay's answer is a listing of text from others (titles, notes, names), so it
     * is shown escaped here too (proto/text.h), whatever the relay sends. 0: the output of a
     * command on the machine, passed through as ssh does.
     */
    int escape;
};

/* ---- connecting and running ------------------------------------------------------------ */

/* 0 once signed in; otherwise the exit status, after saying why. */
static int connect_relay(struct console *console)
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

/* Any relay command: stdin forwarded, output passed through, the exit status returned. */
static int cmd_relay(struct console *console, int argc, char **argv)
{
    char *line = NULL;
    int status = command_line(argc, argv, &line);
    if (status == 0)
        status = connect_relay(console);
    if (status == 0) {
        tl_exec_io_t io = base_io(console);
        io.escape = console->escape;
        tl_exec_result_t result;
        int rc = tl_client_exec(console->client, line, &io, &result);
        status = exec_status(console, rc, &result);
    }
    free(line);
    return status;
}

static int cmd_evidence(struct console *console, int argc, char **argv)
{
    static const char usage[] = "usage: " PROGRAM " evidence get T-N SHA256 [-o FILE]\n";
    if (argc < 2 || strcmp(argv[1], "get") != 0)
        return cmd_relay(console, argc, argv);
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

/* ---- the table --------------------------------------------------------------------------- */

/* The relay's commands (relay/cmd/commands.c) with the same words, usage and options. */
#define SESSION_OPTIONS                                                                            \
    "--reason TEXT\twhat the user is shown as the reason (default: the command itself)\n"          \
    "--for DURATION\thow long the grant should last, 1m..24h: 90s, 15m, 1h30m\n"

static const struct command commands[] = {
    {"setup", tl_setup_usage, "write the console's settings to its config file", cmd_setup,
     "--relay HOST[:PORT]\tthe relay's SSH address (port 2222 if none)\n"
     "--user NAME\tyour account on the relay\n"
     "--identity FILE\tyour private key (default ~/.ssh/id_ed25519)\n"
     "--host-key SHA256:...\tpin the relay's host key (tierline-relay init prints it)\n"
     "--json\twhat the file now says, an object: path, relay, port, user, identity, "
     "identity_readable, host_key (null if none), dropped_pin\n",
     "tierline setup --relay relay.example.com:2222 --user bob\n", 0},
    {"tickets", "tickets [--tier N] [--status S] [--assignee NAME] [--mine] [--json]",
     "list tickets", cmd_relay,
     "--tier N\tonly tickets at tier N, 0..4\n"
     "--status S\tonly tickets with status S: new, open, waiting-user, waiting-vendor, "
     "resolved, closed\n"
     "--assignee NAME\tonly tickets assigned to the account NAME\n"
     "--mine\tonly tickets assigned to you\n"
     "--json\ta JSON array of objects: id, device, hostname, title, description, tier, status, "
     "assignee (null if none), created, updated\n",
     "tierline tickets --status open --tier 2\n", 1},
    {"ticket show", "ticket show T-N [--json]",
     "a ticket: what was already tried, evidence, timeline", cmd_relay,
     "--json\tthe ticket as a JSON object, with already_tried, evidence and events\n",
     "tierline ticket show T-1\n", 1},
    {"ticket take", "ticket take T-N", "assign a ticket to yourself", cmd_relay, NULL,
     "tierline ticket take T-1\n", 1},
    {"ticket note", "ticket note T-N TEXT...", "add a note to a ticket", cmd_relay, NULL,
     "tierline ticket note T-1 the print queue was stuck\n", 1},
    {"ticket resolve", "ticket resolve T-N TEXT...", "resolve a ticket, saying how", cmd_relay,
     NULL, "tierline ticket resolve T-1 restarted cups\n", 1},
    {"evidence", "evidence T-N [--json]", "list a ticket's evidence", cmd_evidence,
     "--json\ta JSON array of objects: hash, kind, name, size, created\n",
     "tierline evidence T-1\n", 1},
    {"evidence get", "evidence get T-N SHA256 [-o FILE]",
     "download an item (progress bar on a terminal; the hash is checked)", cmd_evidence,
     "-o, --output FILE\twrite it to FILE (kept only when whole and its hash checks out)\n",
     "tierline evidence get T-1 fbd45efc -o diagnostics.json\n", 0},
    {"diag", "diag T-N [--reason TEXT] [--for DURATION] [--json]",
     "fresh diagnostics from the ticket's machine, kept as evidence", cmd_relay,
     SESSION_OPTIONS "--json\twhat was stored, as a JSON object\n",
     "tierline diag T-1 --reason \"checking the network\"\n", 1},
    {"join", "join T-N [--observe] [--reason TEXT] [--for DURATION]",
     "a shell on the machine in this terminal, or watch its shells", cmd_join,
     "--observe\tonly watch the machine's shells (needs observe)\n" SESSION_OPTIONS,
     "tierline join T-1\n", 0},
    {"run", "run T-N [--reason TEXT] [--for DURATION] -- COMMAND [ARGS...]",
     "run a command on the machine (stdin is forwarded)", cmd_relay,
     SESSION_OPTIONS "--\tthe end of run's options: what follows is the command\n",
     "tierline run T-1 -- systemctl status cups\n", 0},
    {"fix", "fix T-N RUNBOOK [NAME=VALUE...] [--reason TEXT] [--for DURATION]",
     "run a runbook from the machine's catalogue", cmd_relay, SESSION_OPTIONS,
     "tierline fix T-1 flush-dns\n", 0},
    {"runbooks", "runbooks T-N [--json]", "the runbooks the machine offers", cmd_relay,
     "--json\ta JSON array of objects: name, description, min_role, privileged, params\n",
     "tierline runbooks T-1\n", 1},
    {"whoami", "whoami [--json]", "your name, role, key and capabilities", cmd_relay,
     "--json\tan object: name, role, key, capabilities\n", "tierline whoami\n", 1},
    {"help", "help [--json]", "the commands your role may use (the relay's answer)", cmd_relay,
     "--json\tan object: name, role, commands (each: name, usage, summary)\n", "tierline help\n",
     1},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const char *help_text(void)
{
    static char text[8192];
    size_t used = (size_t)snprintf(
        text, sizeof text,
        "usage: " PROGRAM " [--relay HOST[:PORT]] [--user NAME] [--identity FILE] "
        "[--host-key SHA256:...] COMMAND [ARGS...]\n\n"
        "The Tierline console: the technician's and auditor's client for the relay's SSH\n"
        "front end. Every command runs on the relay; its output and exit status come back.\n\n"
        "Commands ('" PROGRAM " COMMAND --help' explains one):\n");
    for (size_t i = 0; i < COMMAND_COUNT && used < sizeof text; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "  %s\n      %s\n",
                                 commands[i].usage, commands[i].summary);
    if (used < sizeof text)
        snprintf(text + used, sizeof text - used,
                 "\n"
                 "Settings, each overriding the one before: the config file\n"
                 "($XDG_CONFIG_HOME/tierline/config or ~/.config/tierline/config: 'key = value'\n"
                 "lines with keys relay, port, user, identity, host_key), the environment\n"
                 "(TIERLINE_RELAY, TIERLINE_PORT, TIERLINE_USER, TIERLINE_IDENTITY,\n"
                 "TIERLINE_HOST_KEY), then the options before COMMAND. Defaults: port 2222, user\n"
                 "$USER, identity ~/.ssh/id_ed25519.\n\n"
                 "Exit status: the relay command's own (0 ok, 1 failed, 2 usage, 77 permission\n"
                 "denied); 255 when the relay cannot be reached, its host key is not trusted or\n"
                 "it refuses the key; 2 for the console's own usage errors.\n");
    return text;
}

/* Finds the entry for argv: two-word names ("ticket show") first, as the relay does. */
static const struct command *lookup(int argc, char **argv, int *words)
{
    for (size_t i = 0; argc >= 2 && i < COMMAND_COUNT; i++) {
        size_t len = strlen(argv[0]);
        if (strncmp(commands[i].name, argv[0], len) == 0 && commands[i].name[len] == ' ' &&
            strcmp(commands[i].name + len + 1, argv[1]) == 0) {
            *words = 2;
            return &commands[i];
        }
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].name, argv[0]) == 0) {
            *words = 1;
            return &commands[i];
        }
    }
    return NULL;
}

static int in_group(const struct command *command, const char *group)
{
    size_t len = strlen(group);
    return strncmp(command->name, group, len) == 0 && command->name[len] == ' ';
}

/* "ticket --help" lists the group's commands (exit 0); "ticket" alone or "ticket bogus" is a
 * usage error (exit 2); any other word is an unknown command. */
static int group_or_unknown(int argc, char **argv)
{
    int members = 0;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        members += in_group(&commands[i], argv[0]);
    if (members == 0)
        return tl_cli_unknown(PROGRAM, argv[0]);
    int help = tl_cli_wants_help(argc, argv, 1, -1, NULL);
    FILE *out = help ? stdout : stderr;
    if (!help && argc > 1)
        fprintf(out, PROGRAM ": unknown command '%s %s'\n", argv[0], argv[1]);
    else if (!help)
        fprintf(out, PROGRAM ": '%s' needs one of its commands:\n", argv[0]);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (in_group(&commands[i], argv[0]))
            fprintf(out, "usage: " PROGRAM " %-40s %s\n", commands[i].usage, commands[i].summary);
    fprintf(out, "'" PROGRAM " %s COMMAND --help' explains one.\n", argv[0]);
    return help ? TL_EXIT_OK : TL_EXIT_USAGE;
}

/* Help words among the command's own: run's stop where the remote command starts. */
static int asks_for_help(const struct command *command, int argc, char **argv, int words)
{
    static const char *const session_value_options[] = {"--reason", "--for", NULL};
    if (command->run == cmd_relay && strcmp(command->name, "run") == 0)
        return tl_cli_wants_help(argc, argv, words, 1, session_value_options);
    return tl_cli_wants_help(argc, argv, words, -1, NULL);
}

/* ---- main -------------------------------------------------------------------------------- */

struct override {
    const char *key, *flag, *value;
};

int main(int argc, char **argv)
{
    struct console console;
    struct override overrides[] = {{"relay", "--relay", NULL},
                                   {"user", "--user", NULL},
                                   {"identity", "--identity", NULL},
                                   {"host_key", "--host-key", NULL}};
    const size_t override_count = sizeof overrides / sizeof overrides[0];
    char why[1024];
    int status = TL_EXIT_USAGE, first = 1;

    memset(&console, 0, sizeof console);
    tl_config_defaults(&console.config);
    for (; first < argc; first++) {
        const char *arg = argv[first];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(help_text(), stdout);
            return TL_EXIT_OK;
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
    if (first >= argc) {
        fputs(help_text(), stderr);
        return TL_EXIT_USAGE;
    }
    int command_argc = argc - first;
    char **command_argv = argv + first;
    int words = 0;
    const struct command *command = lookup(command_argc, command_argv, &words);
    if (command == NULL)
        return group_or_unknown(command_argc, command_argv);
    /* Help from the table, before any setting is read or the relay is reached. */
    if (asks_for_help(command, command_argc, command_argv, words)) {
        tl_cli_help_t help = {command->usage, command->summary, command->options, command->example};
        tl_cli_help_write(stdout, PROGRAM, &help);
        return TL_EXIT_OK;
    }

    /* Defaults, then the file, then the environment, then the command line. */
    int exists = 0;
    if (console.config.path[0] != '\0' &&
        tl_config_load_file(&console.config, console.config.path, &exists, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", why);
        return TL_EXIT_USAGE;
    }
    if (tl_config_apply_env(&console.config, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", why);
        return TL_EXIT_USAGE;
    }
    for (size_t i = 0; i < override_count; i++) {
        if (overrides[i].value != NULL &&
            tl_config_set(&console.config, overrides[i].key, overrides[i].value,
                          TL_CONFIG_FROM_COMMAND_LINE, overrides[i].flag, why, sizeof why) != 0) {
            fprintf(stderr, PROGRAM ": %s: %s\n", overrides[i].flag, why);
            return TL_EXIT_USAGE;
        }
    }

    console.escape = command->escape;
    status = command->run(&console, command_argc, command_argv);

    tl_term_restore();
    tl_client_free(console.client);
    return status;
}
