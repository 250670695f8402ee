/*
 * `tierline-agent status`: enrollment, whether the agent runs and is
 * connected (asked on its control socket), whether its desktop notifications
 * can be shown (agent/notify.h), and the outbox's queued, delivered and
 * set-aside requests (agent/outbox.h), as text or JSON.
 */
#include "agent/catalogue.h"
#include "agent/witness.h"
#include "proto/err.h"
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "agent/outbox.h"
#include "proto/cli.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text the user typed, shown with control bytes made visible. */
static void print_visible(const char *text, size_t max)
{
    for (size_t i = 0; text[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

/* The queued requests with what each waits for; [{"request","title","missing"?}]. */
static json_t *queued_details(const char *state_dir, json_t *ids)
{
    json_t *list = json_array();
    size_t i;
    json_t *value;
    json_array_foreach(ids, i, value) {
        const char *id = json_string_value(value);
        json_t *request = NULL, *item = json_pack("{s:s}", "request", id);
        char missing[64];
        if (tl_outbox_load(state_dir, id, &request) == 0) {
            json_object_set(item, "title", json_object_get(request, "title"));
            if (tl_outbox_missing(state_dir, id, request, missing, sizeof missing) == 1)
                json_object_set_new(item, "missing", json_string(missing));
        }
        json_decref(request);
        json_array_append_new(list, item);
    }
    return list;
}

/* What status shows: the running agent's answer and the outbox's lists. */
struct status_view {
    json_t *answer; /* the running agent's, or NULL */
    json_t *queued, *details, *delivered, *set_aside;
    int running, connected;
    const char *link, *last_error;
    /* Why the running agent is not connected, when it says (a pin mismatch...). */
    const char *relay_error, *relay_error_text;
    json_t *notifications; /* the running agent's, borrowed from answer; NULL */
};

static void status_gather(const tl_agent_state_t *state, struct status_view *view)
{
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state->dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    json_t *call = json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_STATUS));
    view->running = tl_control_call(socket_path, call, 2000, &view->answer) == 0;
    json_decref(call);
    tl_outbox_list(state->dir, &view->queued);
    tl_outbox_delivered(state->dir, &view->delivered);
    tl_outbox_set_aside_list(state->dir, &view->set_aside);
    view->details = queued_details(state->dir, view->queued);
    json_t *answer = view->answer;
    view->connected = view->running && json_is_true(json_object_get(answer, "connected"));
    view->link = json_string_value(json_object_get(answer, "link"));
    view->last_error = json_string_value(json_object_get(answer, "last_error"));
    view->relay_error = json_string_value(json_object_get(answer, "relay_error"));
    view->relay_error_text = json_string_value(json_object_get(answer, "relay_error_text"));
    view->notifications = json_object_get(answer, "notifications");
}

/* What this machine witnessed of the relay's audit log (agent/witness.h): the size kept, when
 * last checked, and the conflicts, without the notes themselves. */
static json_t *witness_json(const tl_agent_state_t *state)
{
    int err = 0;
    json_t *witness = tl_agent_witness_load(state->dir, &err);
    if (witness == NULL)
        return json_pack("{s:s}", "error", tl_strerror(err));
    json_t *conflicts = json_array(), *item;
    size_t i;
    json_array_foreach(json_object_get(witness, "conflicts"), i, item) {
        json_array_append_new(conflicts, json_pack("{s:O?, s:O?, s:O?, s:O?}", "kind",
                                                   json_object_get(item, "kind"), "reason",
                                                   json_object_get(item, "reason"), "time",
                                                   json_object_get(item, "time"), "reported",
                                                   json_object_get(item, "reported")));
    }
    json_t *out =
        json_pack("{s:I, s:O?, s:O?, s:o}", "size", (json_int_t)tl_agent_witness_size(witness),
                  "checked", json_object_get(witness, "checked"), "key",
                  json_object_get(witness, "key"), "conflicts", conflicts);
    json_decref(witness);
    return out;
}

static void witness_print(const tl_agent_state_t *state)
{
    int err = 0;
    json_t *witness = tl_agent_witness_load(state->dir, &err);
    if (witness == NULL) {
        printf("audit:     the witness file cannot be read (%s)\n", tl_strerror(err));
        return;
    }
    json_t *checked = json_object_get(witness, "checked");
    if (tl_agent_witness_size(witness) == 0) {
        printf("audit:     no checkpoint of the relay's audit log witnessed yet\n");
    } else {
        char when[64] = "";
        if (json_is_integer(checked))
            tl__cmd_local_time_text(json_integer_value(checked), when, sizeof when);
        printf("audit:     the relay's audit log witnessed up to %llu entries (checked %s)\n",
               (unsigned long long)tl_agent_witness_size(witness), when);
    }
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(witness, "conflicts"), i, item) {
        printf("  CONFLICT %s: ", tl__cmd_member(item, "kind"));
        print_visible(tl__cmd_member(item, "reason"), 200);
        printf("%s\n", json_is_true(json_object_get(item, "reported"))
                           ? " (reported to the relay)"
                           : " (not yet reported to the relay)");
    }
    json_decref(witness);
}

static void status_print_json(const tl_agent_state_t *state, const struct status_view *view)
{
    json_t *out =
        json_pack("{s:b, s:s, s:s, s:b, s:b, s:O, s:O, s:O, s:O}", "enrolled", state->enrolled,
                  "device", state->device, "state", state->dir, "running", view->running,
                  "connected", view->connected, "queued", view->queued, "queued_details",
                  view->details, "delivered", view->delivered, "set_aside", view->set_aside);
    if (out != NULL) {
        /* The pinned catalogue signing key, and the catalogue in use (docs/catalogue.md). */
        tl_agent_catalogue_state_t installed;
        int damaged = tl_agent_catalogue_state(state->dir, &installed) != 0;
        json_object_set_new(out, "catalogue_key",
                            state->catalogue_key[0] ? json_string(state->catalogue_key)
                                                    : json_null());
        json_object_set_new(out, "catalogue",
                            json_pack("{s:I, s:I, s:I, s:s}", "version",
                                      (json_int_t)installed.current, "previous",
                                      (json_int_t)installed.previous, "highest",
                                      (json_int_t)installed.highest, "source",
                                      damaged                 ? "damaged"
                                      : installed.current > 0 ? "installed"
                                                              : "shipped"));
    }
    if (out != NULL && state->enrolled)
        json_object_set_new(out, "audit_witness", witness_json(state));
    if (out != NULL && view->running && view->link != NULL)
        json_object_set_new(out, "link", json_string(view->link));
    if (out != NULL && view->running && view->last_error != NULL)
        json_object_set_new(out, "last_error", json_string(view->last_error));
    if (out != NULL && view->running && json_is_object(view->notifications))
        json_object_set(out, "notifications", view->notifications);
    if (out != NULL && !view->connected && view->relay_error != NULL) {
        json_object_set_new(out, "relay_error", json_string(view->relay_error));
        json_object_set_new(out, "relay_error_text",
                            json_string(view->relay_error_text ? view->relay_error_text : ""));
    }
    char *text = tl_text_json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(out);
}

/* The outbox's lists as text: queued, delivered lately, set aside. */
static void status_print_requests(const struct status_view *view)
{
    printf("queued:    %zu request(s)\n", json_array_size(view->details));
    size_t i;
    json_t *item;
    json_array_foreach(view->details, i, item) {
        printf("  %s \"", tl__cmd_member(item, "request"));
        print_visible(tl__cmd_member(item, "title"), 80);
        if (json_object_get(item, "missing") != NULL)
            printf("\": its evidence file %s is missing here; the relay will be asked "
                   "whether it has it\n",
                   tl__cmd_member(item, "missing"));
        else
            printf("\": waiting for the relay\n");
    }
    if (json_array_size(view->delivered) > 0)
        printf("delivered: %zu request(s) lately\n", json_array_size(view->delivered));
    json_array_foreach(view->delivered, i, item) {
        char when[64];
        tl__cmd_local_time_text(tl__cmd_int_of(item, "delivered_ms"), when, sizeof when);
        printf("  %s -> ticket ", tl__cmd_member(item, "request"));
        print_visible(tl__cmd_member(item, "ticket"), 32);
        printf(" \"");
        print_visible(tl__cmd_member(item, "title"), 80);
        printf("\" (%s)\n", when);
    }
    if (json_array_size(view->set_aside) > 0)
        printf("set aside: %zu request(s), never sent again\n", json_array_size(view->set_aside));
    json_array_foreach(view->set_aside, i, item) {
        printf("  %s %s: %s (kept in %s)\n", tl__cmd_member(item, "request"),
               tl__cmd_member(item, "why"), tl__cmd_member(item, "detail"),
               tl__cmd_member(item, "path"));
    }
}

static void status_print_text(const tl_agent_state_t *state, const struct status_view *view)
{
    printf("state:     %s\n", state->dir);
    if (state->enrolled)
        printf("enrolled:  %s with relay %s:%u\n", state->device, state->relay_host,
               state->relay_port);
    else
        printf("enrolled:  no\n");
    if (state->enrolled) {
        tl_agent_catalogue_state_t installed;
        if (tl_agent_catalogue_state(state->dir, &installed) != 0 || installed.current == 0)
            printf("catalogue: the shipped one");
        else
            printf("catalogue: version %llu installed", (unsigned long long)installed.current);
        printf(state->catalogue_key[0] ? " (signing key %s)\n"
                                       : " (no signing key: catalogue updates are refused)%s\n",
               state->catalogue_key);
    }
    if (state->enrolled)
        witness_print(state);
    if (!view->running)
        printf("agent:     not running\n");
    else if (view->connected)
        printf("agent:     running, connected\n");
    else if (view->link != NULL && strcmp(view->link, "unreachable") == 0)
        printf("agent:     running, the relay is unreachable (%s); retrying\n",
               view->last_error != NULL ? view->last_error : "no answer");
    else
        printf("agent:     running, connecting\n");
    if (view->running && !view->connected && view->relay_error_text != NULL)
        printf("relay:     %s\n", view->relay_error_text);
    json_t *notifications = view->notifications;
    if (view->running && json_is_object(notifications)) {
        if (json_is_true(json_object_get(notifications, "session")))
            printf("desktop:   notifications on, %lld shown\n",
                   (long long)tl__cmd_int_of(notifications, "shown"));
        else
            printf("desktop:   no notifications (%s); questions wait for " PROGRAM " attend\n",
                   tl__cmd_member(notifications, "why"));
    }
    status_print_requests(view);
}

int tl_agent_cmd_status(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    tl_agent_state_t state;
    struct status_view view = {0};
    int status = tl_cli_parse(PROGRAM, "status", "status [--state DIR] [--json]", argc, argv, 1,
                              options, positional, 0, &count);
    if (status != 0 || (status = tl__cmd_open_state("status", dir, 0, &state)) != 0)
        goto out;
    status_gather(&state, &view);
    if (json_out)
        status_print_json(&state, &view);
    else
        status_print_text(&state, &view);
    status = TL_EXIT_OK;
out:
    json_decref(view.answer);
    json_decref(view.queued);
    json_decref(view.details);
    json_decref(view.delivered);
    json_decref(view.set_aside);
    return status;
}
