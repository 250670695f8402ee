/*
 * `tierline-agent tickets`: this machine's tickets as the relay keeps them (docs/protocol.md
 * §7.11), each with its status in words ("waiting for you") and the latest note a technician
 * wrote. Asked through the running agent's control socket (agent/control.h) or, when none
 * runs, once by this process on a connection of its own, as `help` delivers. What the relay
 * sends is checked against the protocol's limits and shown escaped: the titles and notes are
 * other people's words.
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "agent/ticket_news.h"
#include "agent/tunnel.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/msg_tickets.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICKETS_USAGE "tickets [--state DIR] [--json] [--wait-ms N]"

/* ---- asking without a running agent ------------------------------------------------------ */

struct tickets_once {
    tl_tunnel_t *tunnel;
    uv_timer_t deadline;
    uint64_t wait_ms;
    int status;     /* why there is no answer */
    json_t *result; /* the relay's answer */
    int over;
};

static void once_over(struct tickets_once *once, int status)
{
    if (once->over)
        return;
    once->over = 1;
    if (once->result == NULL && once->status == 0)
        once->status = status != 0 ? status : TL_ECLOSED;
    uv_timer_stop(&once->deadline);
    uv_close((uv_handle_t *)&once->deadline, NULL);
    tl_tunnel_t *tunnel = once->tunnel;
    once->tunnel = NULL;
    if (tunnel != NULL)
        tl_tunnel_stop(tunnel);
}

static void once_answered(void *data, int status, json_t *result)
{
    struct tickets_once *once = data;
    if (status == 0)
        once->result = json_incref(result);
    once_over(once, status);
}

static void once_connected(tl_tunnel_t *tunnel, const char *device)
{
    struct tickets_once *once = tl_tunnel_data(tunnel);
    json_t *body = json_pack("{s:s}", "type", tl_control_type_name(TL_CONTROL_TICKETS_LIST));
    int rc = body != NULL
                 ? tl_tunnel_request(tunnel, body, (uint32_t)once->wait_ms, once_answered, once)
                 : TL_ENOMEM;
    json_decref(body);
    if (rc != 0)
        once_over(once, rc);
}

static void once_stopped(tl_tunnel_t *tunnel, int status)
{
    once_over(tl_tunnel_data(tunnel), status);
}

static void once_deadline(uv_timer_t *timer)
{
    once_over(timer->data, TL_ETIMEOUT);
}

static const tl_tunnel_events_t once_events = {
    .on_connected = once_connected,
    .on_stopped = once_stopped,
};

/* Connects once, asks, and waits at most wait_ms; the relay's answer, or NULL and *status. */
static json_t *ask_once(const tl_agent_state_t *state, uint64_t wait_ms, int *status)
{
    struct tickets_once once = {.wait_ms = wait_ms};
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    tl_tunnel_options_t options = {.state = state, .once = 1, .requests_only = 1};
    int rc = 0;
    uv_timer_init(loop, &once.deadline);
    once.deadline.data = &once;
    once.tunnel = tl_tunnel_start(loop, &options, &once_events, &once, &rc);
    if (once.tunnel == NULL)
        once_over(&once, rc);
    else if (!once.over)
        uv_timer_start(&once.deadline, once_deadline, wait_ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    *status = once.status;
    return once.result;
}

/* ---- showing them ------------------------------------------------------------------------ */

/* The status in words, escaped: the desk's own, or the relay's word as it came. */
static void status_text(const tl_ticket_summary_t *ticket, char *out, size_t size)
{
    const char *words = tl_ticket_status_words(ticket->status);
    tl_text_clip(out, size, words != NULL ? words : ticket->status, 0, TL_TEXT_LINE);
}

static void print_json(const tl_ticket_summary_t *items, size_t count, int more)
{
    json_t *list = json_array();
    for (size_t i = 0; i < count; i++) {
        const tl_ticket_summary_t *t = &items[i];
        const char *words = tl_ticket_status_words(t->status);
        json_t *item =
            json_pack("{s:s, s:s, s:s, s:s, s:I}", "ticket", t->ticket, "title", t->title, "status",
                      t->status, "status_text", words != NULL ? words : t->status, "updated",
                      (json_int_t)t->updated_ms);
        json_object_set_new(item, "note",
                            t->has_note ? json_pack("{s:s, s:s, s:I}", "text", t->note, "by",
                                                    t->note_by, "time", (json_int_t)t->note_ms)
                                        : json_null());
        json_array_append_new(list, item);
    }
    json_t *out = json_pack("{s:o, s:b}", "tickets", list, "more", more);
    char *text = tl_text_json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text != NULL ? text : "{}");
    free(text);
    json_decref(out);
}

/* Where the user must act or has an answer, the note is what the status line says. */
static int note_in_status_line(const tl_ticket_summary_t *ticket)
{
    return ticket->has_note &&
           (strcmp(ticket->status, "waiting-user") == 0 || strcmp(ticket->status, "resolved") == 0);
}

static void print_text(const tl_ticket_summary_t *items, size_t count, int more)
{
    if (count == 0)
        printf("No tickets for this machine yet (open one with: " PROGRAM
               " help \"what is wrong\").\n");
    for (size_t i = 0; i < count; i++) {
        const tl_ticket_summary_t *t = &items[i];
        char id[4 * TL_TICKET_ID_MAX + 8], status[4 * 64], title[4 * 100 + 8], by[4 * 64 + 8];
        char note[4 * 200 + 8], updated[64], written[64];
        tl_text_pad(id, sizeof id, t->ticket, 5);
        status_text(t, status, sizeof status);
        tl_text_clip(title, sizeof title, t->title, 100, TL_TEXT_LINE);
        tl_text_clip(by, sizeof by, t->note_by, 0, TL_TEXT_LINE);
        tl_text_clip(note, sizeof note, t->note, 200, TL_TEXT_LINE);
        tl__cmd_local_time_text(t->updated_ms, updated, sizeof updated);
        tl__cmd_local_time_text(t->note_ms, written, sizeof written);
        if (note_in_status_line(t))
            printf("%s  %s: %s\n", id, status, note);
        else
            printf("%s  %s\n", id, status);
        printf("       \"%s\", updated %s\n", title, updated);
        if (note_in_status_line(t))
            printf("       from %s, %s\n", by, written);
        else if (t->has_note)
            printf("       latest note from %s, %s: %s\n", by, written, note);
        else
            printf("       no note from a technician yet\n");
    }
    if (more)
        printf("(the %d most recently updated are shown; this machine has more)\n",
               TL_TICKETS_LIST_MAX);
}

int tl_agent_cmd_tickets(int argc, char **argv)
{
    const char *dir = NULL, *wait = NULL, *positional[1];
    int count_words, json_out = 0;
    tl_cli_option_t options[] = {
        {"state", &dir, NULL}, {"json", NULL, &json_out}, {"wait-ms", &wait, NULL}, {0}};
    tl_agent_state_t state;
    json_t *answer = NULL;
    tl_ticket_summary_t *items = NULL;
    uint64_t wait_ms = 30000;
    int status = tl_cli_parse(PROGRAM, "tickets", TICKETS_USAGE, argc, argv, 1, options, positional,
                              0, &count_words);
    if (status != 0)
        goto out;
    if (wait != NULL && tl_cli_parse_uint(wait, 100, 600000, &wait_ms) != 0) {
        fprintf(stderr, PROGRAM " tickets: --wait-ms wants 100..600000\n");
        status = TL_EXIT_USAGE;
        goto out;
    }
    if ((status = tl__cmd_open_state("tickets", dir, 1, &state)) != 0)
        goto out;
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    json_t *call = json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_TICKETS));
    int rc = tl_control_call(socket_path, call, (int)wait_ms + 1000, &answer);
    json_decref(call);
    if (rc == -ENOENT || rc == -ECONNREFUSED) {
        /* No agent runs: this process asks, once. */
        answer = ask_once(&state, wait_ms, &rc);
    }
    if (rc == 0 && answer != NULL && !json_is_true(json_object_get(answer, "ok"))) {
        /* The running agent's own words, or the relay's refusal. */
        char why[SHOWN_MAX];
        const char *message = json_string_value(json_object_get(answer, "message"));
        tl_text_clip(why, sizeof why,
                     message != NULL ? message : "the relay could not list the tickets", 0,
                     TL_TEXT_LINE);
        fprintf(stderr, PROGRAM " tickets: %s\n", why);
        status = TL_EXIT_FAILURE;
        goto out;
    }
    if (rc != 0 || answer == NULL) {
        const char *why = rc != 0 ? tl_tunnel_error_text(rc) : NULL;
        fprintf(stderr, PROGRAM " tickets: the relay did not answer: %s\n",
                why != NULL ? why : tl_strerror(rc != 0 ? rc : TL_ECLOSED));
        status = TL_EXIT_FAILURE;
        goto out;
    }
    items = calloc(TL_TICKETS_LIST_MAX, sizeof *items);
    size_t count = 0;
    int more = 0;
    rc = items != NULL ? tl_msg_tickets_decode(answer, items, &count, &more) : TL_ENOMEM;
    if (rc != 0) {
        fprintf(stderr, PROGRAM " tickets: %s\n",
                rc == TL_EMSG_MALFORMED ? "the relay sent a malformed answer" : tl_strerror(rc));
        status = TL_EXIT_FAILURE;
        goto out;
    }
    if (json_out)
        print_json(items, count, more);
    else
        print_text(items, count, more);
    status = TL_EXIT_OK;
out:
    free(items);
    json_decref(answer);
    return status;
}
