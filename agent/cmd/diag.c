/*
 * `tierline-agent diag`: the diagnostics of this machine (docs/diagnostics.md,
 * agent/diag.c) as text or JSON, on its own; the diag session channel runs
 * this same command (agent/session_start.c).
 */
#include "agent/catalogue.h"
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/diag.h"
#include "agent/kb.h"
#include "proto/cli.h"
#include "proto/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct diag_options {
    bool json;
    int timeout_ms;
    const char *relay, *state, *kb, *lookup, *connect;
};

/* The options; non-zero: the exit status, the reason printed. */
static int diag_parse(int argc, char **argv, struct diag_options *options)
{
    static const char *const valued[] = {"--timeout-ms", "--relay",  "--state",
                                         "--kb",         "--lookup", "--connect"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        size_t which = sizeof valued / sizeof valued[0];
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            if (strcmp(arg, valued[k]) == 0)
                which = k;
        if (strcmp(arg, "--json") == 0) {
            options->json = true;
            continue;
        }
        if (which == sizeof valued / sizeof valued[0])
            return usage_error("unknown option '%s'", arg);
        if (i + 1 >= argc)
            return usage_error("option '%s' needs a value", arg);
        const char *value = argv[++i];
        const char **targets[] = {NULL,         &options->relay,  &options->state,
                                  &options->kb, &options->lookup, &options->connect};
        if (which == 0 && parse_timeout(value, &options->timeout_ms) < 0)
            return usage_error("--timeout-ms wants 1..600000 milliseconds, not '%s'", value);
        if (which > 0 && value[0] == '\0')
            return usage_error("option '%s' needs a value", arg);
        if (which > 0)
            *targets[which] = value;
    }
    return 0;
}

/* The runner with the options applied; non-zero: the exit status, the reason printed. */
static int diag_configure(tl_diag_t *diag, const struct diag_options *options)
{
    if (options->relay && tl_diag_set_relay(diag, options->relay) < 0)
        return usage_error("--relay wants HOST:PORT or [IPV6]:PORT, not '%s'", options->relay);
    if (options->lookup && tl_diag_set_lookup(diag, options->lookup) < 0)
        return usage_error("--lookup wants a host name or 'off', not '%s'", options->lookup);
    if (options->connect && tl_diag_set_connect(diag, options->connect) < 0)
        return usage_error("--connect wants HOST:PORT, [IPV6]:PORT or 'off', not '%s'",
                           options->connect);
    if (options->state && tl_diag_set_state_dir(diag, options->state) < 0) {
        fprintf(stderr, "%s diag: %s\n", PROGRAM, tl_strerror(TL_ENOMEM));
        return TL_EXIT_FAILURE;
    }
    if (options->timeout_ms > 0)
        tl_diag_set_timeout_ms(diag, options->timeout_ms);
    return 0;
}

int tl_agent_cmd_diag(int argc, char **argv)
{
    struct diag_options options = {0};
    json_t *report = NULL;
    tl_diag_t *diag = NULL;
    int status = diag_parse(argc, argv, &options);
    if (status != 0)
        goto out;
    status = TL_EXIT_FAILURE;
    diag = tl_diag_new();
    if (!diag) {
        fprintf(stderr, "%s diag: %s\n", PROGRAM, tl_strerror(TL_ENOMEM));
        goto out;
    }
    if ((status = diag_configure(diag, &options)) != 0)
        goto out;
    if (tl_diag_skip_why(diag) != NULL)
        fprintf(stderr, "%s diag: %s\n", PROGRAM, tl_diag_skip_why(diag));
    status = TL_EXIT_FAILURE;
    int rc = tl_diag_run(diag, &report);
    /* The known problems the knowledge base finds go first (agent/kb.h). */
    /* The articles: --kb, else the installed signed catalogue's, else the shipped ones. */
    char state_dir[TL_STATE_PATH_MAX], installed[TL_STATE_FILE_MAX];
    const char *kb_dir = options.kb;
    if (kb_dir == NULL && tl_state_dir(options.state, state_dir, sizeof state_dir) == 0 &&
        tl_agent_catalogue_dirs(state_dir, NULL, 0, installed, sizeof installed, NULL) == 0)
        kb_dir = installed;
    if (rc == 0)
        rc = tl_kb_add_problems(report, kb_dir);
    if (rc < 0) {
        fprintf(stderr, "%s diag: %s\n", PROGRAM, tl_strerror(rc));
        goto out;
    }
    if (options.json) {
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
