/*
 * `tierline-agent help`: a ticket request with this machine's diagnostics
 * attached, saved in the outbox first (agent/outbox.c), then delivered by the
 * running agent through its control socket or, when none runs, once by this
 * process (docs/architecture.md "help and an unreachable relay"). From a
 * terminal it stays in attended mode (attend.c) to answer the technician.
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "agent/diag.h"
#include "agent/outbox.h"
#include "agent/tunnel.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct help_run {
    int status;
    char ticket[64];
    tl_tunnel_t *tunnel;
    uv_timer_t deadline;
    /* How the control socket answered (help_deliver). */
    int through_agent; /* the running agent took the request */
    int agent_running; /* it did, or it did not answer in time: it keeps the request */
    char why[256];     /* the agent's own words on why the request is queued */
};

static void help_deadline(uv_timer_t *timer)
{
    struct help_run *run = timer->data;
    if (run->status == 0)
        run->status = TL_ETIMEOUT;
    if (run->tunnel != NULL)
        tl_tunnel_stop(run->tunnel);
    run->tunnel = NULL;
    uv_close((uv_handle_t *)timer, NULL);
}

static void help_delivered(tl_tunnel_t *tunnel, const char *request, const char *ticket)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    snprintf(run->ticket, sizeof run->ticket, "%s", ticket);
}

static void help_rejected(tl_tunnel_t *tunnel, const char *request, int error)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    run->status = error;
}

static void help_stopped(tl_tunnel_t *tunnel, int status)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    if (run->status == 0)
        run->status = status;
    run->tunnel = NULL;
    uv_timer_stop(&run->deadline);
    uv_close((uv_handle_t *)&run->deadline, NULL);
    tl_tunnel_stop(tunnel);
}

static const tl_tunnel_events_t help_events = {
    .on_delivered = help_delivered,
    .on_rejected = help_rejected,
    .on_stopped = help_stopped,
};

static void title_from(const char *description, char *title, size_t size)
{
    size_t len = strcspn(description, "\r\n");
    if (len >= size)
        len = size - 1;
    memcpy(title, description, len);
    title[len] = '\0';
    if (strlen(description) > len && len > 3 && len == size - 1)
        memcpy(title + len - 3, "...", 3);
}

static int collect_diagnostics(const tl_agent_state_t *state, char **text)
{
    tl_diag_t *diag = tl_diag_new();
    json_t *report = NULL;
    if (diag == NULL)
        return TL_ENOMEM;
    char relay[300];
    snprintf(relay, sizeof relay, "%s:%u", state->relay_host, state->relay_port);
    tl_diag_set_relay(diag, relay);
    int rc = tl_diag_run(diag, &report);
    tl_diag_free(diag);
    if (rc != 0)
        return rc;
    *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(report);
    return *text != NULL ? 0 : TL_ENOMEM;
}

#define HELP_USAGE "help \"DESCRIPTION\" [--title TEXT] [--state DIR] [--wait-ms N] [--no-wait]"

struct help_options {
    const char *dir;
    const char *title_option;
    int no_wait;
    uint64_t wait_ms;
    char description[8193], title_typed[201];
};

/* The description and options, checked; non-zero: the exit status, the reason printed. */
static int help_parse(int argc, char **argv, struct help_options *help)
{
    const char *wait = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &help->dir, NULL},
                                 {"title", &help->title_option, NULL},
                                 {"wait-ms", &wait, NULL},
                                 {"no-wait", NULL, &help->no_wait},
                                 {0}};
    int status =
        tl_cli_parse(PROGRAM, "help", HELP_USAGE, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        return status;
    if (count != 1 || positional[0][0] == '\0') {
        fprintf(stderr,
                PROGRAM " help: describe the problem in a few words\nusage: " PROGRAM " %s\n",
                HELP_USAGE);
        return TL_EXIT_USAGE;
    }
    /*
     * Kept as typed, but as text: a byte that is not UTF-8 cannot travel in JSON, so it
     * becomes the four characters \xHH, as it would be shown anyway (docs/technicians.md
     * "Text from others"). Control characters stay; whoever shows the text escapes them.
     */
    const char *title_option = help->title_option;
    char *converted = tl_text_utf8_dup(positional[0], strlen(positional[0]));
    char *converted_title =
        title_option ? tl_text_utf8_dup(title_option, strlen(title_option)) : NULL;
    int too_long = converted == NULL || strlen(converted) >= sizeof help->description ||
                   (title_option != NULL && (converted_title == NULL ||
                                             strlen(converted_title) >= sizeof help->title_typed));
    if (!too_long) {
        snprintf(help->description, sizeof help->description, "%s", converted);
        if (converted_title != NULL)
            snprintf(help->title_typed, sizeof help->title_typed, "%s", converted_title);
    }
    free(converted);
    free(converted_title);
    if (too_long) {
        fprintf(stderr, PROGRAM " help: the description is limited to 8192 bytes and the title "
                                "to 200\n");
        return TL_EXIT_USAGE;
    }
    help->wait_ms = 30000;
    if (wait != NULL && tl_cli_parse_uint(wait, 100, 600000, &help->wait_ms) != 0) {
        fprintf(stderr, PROGRAM " help: --wait-ms wants 100..600000\n");
        return TL_EXIT_USAGE;
    }
    return 0;
}

/* Gathers the diagnostics and saves the request in the outbox, its id in request. */
static int help_save(const tl_agent_state_t *state, const struct help_options *help,
                     char request[TL_OUTBOX_ID_LEN])
{
    fprintf(stderr, "Gathering diagnostics...\n");
    char *diagnostics = NULL;
    int rc = collect_diagnostics(state, &diagnostics);
    if (rc != 0)
        return tl__cmd_fail("help", "gathering diagnostics", rc);
    char title[201];
    if (help->title_option != NULL)
        snprintf(title, sizeof title, "%s", help->title_typed);
    else
        title_from(help->description, title, 81);
    char hash[TL_SHA256_HEX_LEN];
    size_t diagnostics_len = strlen(diagnostics);
    rc = tl_sha256_hex(diagnostics, diagnostics_len, hash);
    if (rc == 0)
        rc = tl_outbox_add(state->dir, title, help->description, "diagnostics.json", "diagnostics",
                           diagnostics, diagnostics_len, request);
    free(diagnostics);
    if (rc != 0)
        return tl__cmd_fail("help", "saving the request", rc);
    fprintf(stderr, "Attached diagnostics.json (%zu bytes, sha256 %s) as request %s\n",
            diagnostics_len, hash, request);
    return 0;
}

/* No agent runs: this process connects once and delivers the request, within wait_ms. */
static void help_deliver_once(tl_agent_state_t *state, const char *request, uint64_t wait_ms,
                              struct help_run *run)
{
    int rc;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    tl_tunnel_options_t tunnel_options = {.state = state, .once = 1, .only_request = request};
    /* --wait-ms bounds this path too: a stuck relay leaves the request queued. */
    uv_timer_init(loop, &run->deadline);
    run->deadline.data = run;
    run->tunnel = tl_tunnel_start(loop, &tunnel_options, &help_events, run, &rc);
    if (run->tunnel == NULL) {
        run->status = rc;
        uv_close((uv_handle_t *)&run->deadline, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
    } else {
        if (!uv_is_closing((uv_handle_t *)&run->deadline))
            uv_timer_start(&run->deadline, help_deadline, wait_ms, 0);
        uv_run(loop, UV_RUN_DEFAULT);
    }
}

/* A running agent delivers it; otherwise this process does, once. */
static void help_deliver(tl_agent_state_t *state, const char *socket_path, const char *request,
                         uint64_t wait_ms, struct help_run *run)
{
    json_t *call = json_pack("{s:s, s:s}", "cmd", tl_control_type_name(TL_CONTROL_DELIVER),
                             "request", request);
    json_t *answer = NULL;
    int rc = tl_control_call(socket_path, call, (int)wait_ms, &answer);
    json_decref(call);
    run->through_agent = rc == 0;
    /* An agent that did not answer in time is running all the same: it keeps the request. */
    run->agent_running = rc == 0 || rc == TL_ETIMEOUT;
    if (rc == 0) {
        const char *error = json_string_value(json_object_get(answer, "error"));
        const char *message = json_string_value(json_object_get(answer, "message"));
        if (json_is_true(json_object_get(answer, "ok")))
            snprintf(run->ticket, sizeof run->ticket, "%s",
                     json_string_value(json_object_get(answer, "ticket")));
        else if (json_is_true(json_object_get(answer, "queued")))
            run->status = error != NULL && strcmp(error, "EPIN") == 0 ? TL_EPIN : TL_ECLOSED;
        else
            run->status = TL_EINVAL;
        /* The agent's own words: "the relay is unreachable (connection refused)". */
        if (run->status == TL_ECLOSED && message != NULL)
            snprintf(run->why, sizeof run->why, "%s", message);
        json_decref(answer);
    } else if (rc == -ENOENT || rc == -ECONNREFUSED) {
        help_deliver_once(state, request, wait_ms, run);
    } else {
        run->status = rc;
    }
}

/* The ticket is open: its id on stdout; from a terminal, stay to answer the technician. */
static int help_opened(struct help_run *run, int interactive, const char *socket_path)
{
    char ticket_shown[4 * sizeof run->ticket];
    tl_text_clip(ticket_shown, sizeof ticket_shown, run->ticket, 0, TL_TEXT_LINE);
    printf("%s\n", ticket_shown);
    fprintf(stderr, "Ticket %s opened with this machine's diagnostics attached.\n", ticket_shown);
    fflush(stdout);
    /* From a terminal, stay to answer the technician's requests (docs/consent.md). */
    if (!interactive)
        return TL_EXIT_OK;
    if (!run->through_agent) {
        fprintf(stderr, "No agent is running, so no technician can connect yet; start one "
                        "with: " PROGRAM " run\n");
        return TL_EXIT_OK;
    }
    tl__cmd_attend_loop("help", socket_path, NULL, NULL, 0);
    return TL_EXIT_OK;
}

/* Not delivered: why, and where it waits; from a terminal, stay for its ticket id. */
static int help_not_delivered(const tl_agent_state_t *state, struct help_run *run,
                              const char *request, int interactive, const char *socket_path)
{
    if (run->status == TL_EINVAL) {
        fprintf(stderr, PROGRAM " help: the relay refused the request (kept in %s/%s)\n",
                state->dir, TL_STATE_OUTBOX);
        return TL_EXIT_FAILURE;
    }
    if (run->status == TL_ENOT_ENROLLED)
        fprintf(stderr, PROGRAM " help: the relay does not recognise this agent's key; ask your "
                                "help desk to enroll it again\n");
    else if (run->status == TL_EPIN)
        fprintf(stderr, PROGRAM " help: %s; tell your help desk before trusting it\n",
                tl_tunnel_error_text(TL_EPIN));
    if (run->why[0] == '\0')
        snprintf(run->why, sizeof run->why, "the relay is unreachable (%s)",
                 tl_strerror(run->status));
    fprintf(stderr, "queued: %s\n", run->why);
    if (!run->agent_running) {
        fprintf(stderr,
                "Your request %s is saved in %s/%s\n"
                "and will be sent when the agent reconnects (" PROGRAM " run).\n",
                request, state->dir, TL_STATE_OUTBOX);
        return TL_EXIT_QUEUED;
    }
    fprintf(stderr,
            "Your request %s is saved in %s/%s;\n"
            "the running agent sends it as soon as the relay answers (" PROGRAM
            " status shows its ticket then).\n",
            request, state->dir, TL_STATE_OUTBOX);
    if (!interactive || !run->through_agent)
        return TL_EXIT_QUEUED;
    /* Stay: print the ticket id when it is delivered, and ask the technician's requests. */
    fprintf(stderr,
            "Waiting here for the ticket id (Ctrl-C to leave; the request stays queued).\n");
    tl__cmd_attend_loop("help", socket_path, request, run->ticket, sizeof run->ticket);
    return run->ticket[0] != '\0' ? TL_EXIT_OK : TL_EXIT_QUEUED;
}

int tl_agent_cmd_help(int argc, char **argv)
{
    struct help_options help = {0};
    tl_agent_state_t state;
    struct help_run run = {0};
    char request[TL_OUTBOX_ID_LEN], socket_path[TL_STATE_PATH_MAX];
    int status = help_parse(argc, argv, &help);
    if (status != 0 || (status = tl__cmd_open_state("help", help.dir, 1, &state)) != 0 ||
        (status = help_save(&state, &help, request)) != 0)
        goto out;
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    help_deliver(&state, socket_path, request, help.wait_ms, &run);
    int interactive = !help.no_wait && isatty(STDIN_FILENO);
    if (run.ticket[0] != '\0')
        status = help_opened(&run, interactive, socket_path);
    else
        status = help_not_delivered(&state, &run, request, interactive, socket_path);
out:
    return status;
}
