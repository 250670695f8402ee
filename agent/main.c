/*
 * tierline-agent: entry point and command table. Each command is one entry
 * { name, usage, summary, run_fn }; the help text is built from the table so
 * the two cannot drift apart.
 */
#include "agent/commands.h"
#include "agent/diag.h"
#include "proto/cli.h"
#include "proto/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "tierline-agent"

struct command {
    const char *name;
    const char *usage;
    const char *summary;
    int (*run_fn)(int argc, char **argv); /* argv[0] is the command name */
};

static int cmd_diag(int argc, char **argv);

static const struct command commands[] = {
    {"enroll", "enroll ENROLLMENT-STRING [--state DIR]",
     "Enroll this machine with a relay, using the string from your help desk.",
     tl_agent_cmd_enroll},
    {"run",
     "run [--state DIR] [--policy FILE] [--consent-timeout DURATION] [--runbooks DIR] [--shell "
     "PATH] "
     "[--backoff-max-ms N] [--log-level LEVEL]",
     "Keep the tunnel up, deliver queued requests, serve the sessions the user allows.",
     tl_agent_cmd_run},
    {"help", "help \"DESCRIPTION\" [--title TEXT] [--state DIR] [--wait-ms N] [--no-wait]",
     "Open a ticket with diagnostics attached; print its id, then (on a terminal) attend.",
     tl_agent_cmd_help},
    {"status", "status [--state DIR] [--json]",
     "Show enrollment, whether the agent runs and is connected, and queued requests.",
     tl_agent_cmd_status},
    {"attend", "attend [--state DIR]",
     "Ask yes or no for each technician's request; show what they do (Ctrl-C leaves).",
     tl_agent_cmd_attend},
    {"pending", "pending [--state DIR] [--json]", "List the requests waiting for an answer.",
     tl_agent_cmd_pending},
    {"approve", "approve QUESTION [--for DURATION] [--state DIR]",
     "Allow a waiting request (Q-N), optionally for less time than asked.", tl_agent_cmd_approve},
    {"deny", "deny QUESTION [--state DIR]", "Decline a waiting request (Q-N).", tl_agent_cmd_deny},
    {"sessions", "sessions [--state DIR] [--json]",
     "List the grants (live ones first), their scopes, expiry and open channels.",
     tl_agent_cmd_sessions},
    {"end", "end [GRANT] [--state DIR]",
     "End one grant (G-N), or every live grant, closing its sessions at once.", tl_agent_cmd_end},
    {"diag", "diag [--json] [--timeout-ms N] [--relay HOST:PORT]",
     "Gather diagnostics of this machine (docs/diagnostics.md); JSON with --json.", cmd_diag},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const char help_intro[] =
    "usage: " PROGRAM " --help | --version | COMMAND [OPTIONS]\n"
    "\n"
    "The Tierline agent: runs on the user's machine, gathers diagnostics and keeps an\n"
    "authenticated outbound tunnel to the relay, within what the user consents to.\n"
    "\n"
    "Commands:\n";

/* The help text: the introduction, then each command's usage and summary. */
static char *build_help(void)
{
    size_t size = sizeof help_intro;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        size += strlen(commands[i].usage) + strlen(commands[i].summary) + 16;
    char *text = malloc(size);
    if (!text)
        return NULL;
    size_t used = (size_t)snprintf(text, size, "%s", help_intro);
    for (size_t i = 0; i < COMMAND_COUNT && used < size; i++)
        used += (size_t)snprintf(text + used, size - used, "  %s\n      %s\n", commands[i].usage,
                                 commands[i].summary);
    return text;
}

/* "tierline-agent diag: <message>" and the hint to --help on stderr; exit status 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s diag: ", PROGRAM);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", PROGRAM);
    return TL_EXIT_USAGE;
}

static int parse_timeout(const char *text, int *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 1 || value > TL_DIAG_MAX_TIMEOUT_MS)
        return TL_EINVAL;
    *out = (int)value;
    return 0;
}

static int cmd_diag(int argc, char **argv)
{
    int status = TL_EXIT_FAILURE;
    bool json = false;
    int timeout_ms = 0;
    const char *relay = NULL;
    json_t *report = NULL;
    tl_diag_t *diag = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--json") == 0) {
            json = true;
        } else if (strcmp(arg, "--timeout-ms") == 0 || strcmp(arg, "--relay") == 0) {
            if (i + 1 >= argc)
                return usage_error("option '%s' needs a value", arg);
            const char *value = argv[++i];
            if (strcmp(arg, "--relay") == 0)
                relay = value;
            else if (parse_timeout(value, &timeout_ms) < 0)
                return usage_error("--timeout-ms wants 1..600000 milliseconds, not '%s'", value);
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            for (size_t c = 0; c < COMMAND_COUNT; c++)
                if (strcmp(commands[c].name, "diag") == 0)
                    printf("usage: %s %s\n", PROGRAM, commands[c].usage);
            return TL_EXIT_OK;
        } else {
            return usage_error("unknown option '%s'", arg);
        }
    }
    diag = tl_diag_new();
    if (!diag) {
        fprintf(stderr, "%s diag: %s\n", PROGRAM, tl_strerror(TL_ENOMEM));
        goto out;
    }
    if (relay && tl_diag_set_relay(diag, relay) < 0) {
        tl_diag_free(diag);
        return usage_error("--relay wants HOST:PORT or [IPV6]:PORT, not '%s'", relay);
    }
    if (timeout_ms > 0)
        tl_diag_set_timeout_ms(diag, timeout_ms);
    int rc = tl_diag_run(diag, &report);
    if (rc < 0) {
        fprintf(stderr, "%s diag: %s\n", PROGRAM, tl_strerror(rc));
        goto out;
    }
    if (json) {
        rc = json_dumpf(report, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) == 0 &&
                     fputc('\n', stdout) != EOF
                 ? 0
                 : TL_EIO;
        fflush(stdout);
    } else {
        rc = tl_diag_write_text(report, stdout);
    }
    if (rc < 0 || ferror(stdout)) {
        fprintf(stderr, "%s diag: cannot write the report: %s\n", PROGRAM, tl_strerror(TL_EIO));
        goto out;
    }
    status = TL_EXIT_OK;
out:
    json_decref(report);
    tl_diag_free(diag);
    return status;
}

int main(int argc, char **argv)
{
    char *help_text = build_help();
    int status = tl_cli_common(argc, argv, PROGRAM, help_text ? help_text : help_intro);
    free(help_text);
    if (status >= 0)
        return status;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run_fn(argc - 1, argv + 1);
    return tl_cli_unknown(PROGRAM, argv[1]);
}
