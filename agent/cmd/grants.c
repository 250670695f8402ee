/*
 * The user's side of consent on the running agent (docs/consent.md):
 * `pending` lists the questions waiting, `approve` and `deny` answer one,
 * `sessions` lists the grants with their channels (from grants.json when no
 * agent runs), `end` ends one grant or all. Each is one request on the
 * control socket (agent/control.c); `attend` is attend.c.
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* One request to the running agent; prints the failure and returns non-zero on one. */
static int consent_call(const char *command, const char *path, json_t *request, json_t **answer)
{
    int rc = tl_control_call(path, request, 10000, answer);
    json_decref(request);
    if (rc == -ENOENT || rc == -ECONNREFUSED) {
        fprintf(stderr, PROGRAM " %s: the agent is not running (start it with: " PROGRAM " run)\n",
                command);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return tl__cmd_fail(command, "talking to the agent", rc);
    if (!json_is_true(json_object_get(*answer, "ok"))) {
        const char *message = json_string_value(json_object_get(*answer, "message"));
        char why[SHOWN_MAX], error[64];
        tl_text_clip(why, sizeof why, message ? message : "refused", 0, TL_TEXT_LINE);
        tl_text_clip(error, sizeof error, json_string_value(json_object_get(*answer, "error")), 0,
                     TL_TEXT_LINE);
        fprintf(stderr, PROGRAM " %s: %s (%s)\n", command, why, error[0] ? error : "?");
        json_decref(*answer);
        *answer = NULL;
        return TL_EXIT_FAILURE;
    }
    return 0;
}

static void print_json(json_t *value)
{
    char *text = tl_text_json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "null");
    free(text);
}

static void print_grant_line(json_t *grant)
{
    char scopes[128], until[64];
    tl__cmd_scopes_text(json_object_get(grant, "scopes"), scopes, sizeof scopes);
    tl__cmd_local_time_text(tl__cmd_int_of(grant, "expires_ms"), until, sizeof until);
    char id[SHOWN_MAX], state[SHOWN_MAX], technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX],
        by[SHOWN_MAX], text[SHOWN_MAX];
    tl_text_pad(id, sizeof id, tl__cmd_member(grant, "id"), 6);
    tl_text_pad(state, sizeof state, tl__cmd_member(grant, "state"), 8);
    printf("%s %s %s (%s) for %s: %s; by %s, until %s\n", id, state,
           tl__cmd_shown(technician, sizeof technician, grant, "technician"),
           tl__cmd_shown(role, sizeof role, grant, "role"),
           tl__cmd_shown(ticket, sizeof ticket, grant, "ticket"), scopes,
           tl__cmd_shown(by, sizeof by, grant, "by"), until);
    if (json_object_get(grant, "end_reason") != NULL) {
        tl__cmd_local_time_text(tl__cmd_int_of(grant, "ended_ms"), until, sizeof until);
        printf("       ended %s: %s\n", until,
               tl__cmd_shown(text, sizeof text, grant, "end_reason"));
    }
    size_t i;
    json_t *channel;
    json_array_foreach(json_object_get(grant, "channels"), i, channel) {
        char type[SHOWN_MAX];
        printf("       channel %lld %s: %s\n", (long long)tl__cmd_int_of(channel, "channel"),
               tl__cmd_shown(type, sizeof type, channel, "type"),
               tl__cmd_shown(text, sizeof text, channel, "what"));
    }
}

int tl_agent_cmd_pending(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    int status = tl_cli_parse(PROGRAM, "pending", "pending [--state DIR] [--json]", argc, argv, 1,
                              options, positional, 0, &count);
    char path[TL_STATE_PATH_MAX];
    json_t *answer = NULL;
    if (status != 0 || (status = tl__cmd_control_socket("pending", dir, path, sizeof path)) != 0 ||
        (status = consent_call("pending", path,
                               json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_PENDING)),
                               &answer)) != 0)
        goto out;
    json_t *questions = json_object_get(answer, "questions");
    if (json_out) {
        print_json(questions);
    } else if (json_array_size(questions) == 0) {
        printf("No questions waiting.\n");
    } else {
        size_t i;
        json_t *question;
        json_array_foreach(questions, i, question) {
            char id[SHOWN_MAX];
            tl__cmd_print_question(question);
            tl__cmd_shown(id, sizeof id, question, "id");
            printf("  answer: " PROGRAM " approve %s  |  " PROGRAM " deny %s\n", id, id);
        }
    }
    status = TL_EXIT_OK;
out:
    json_decref(answer);
    return status;
}

int tl_agent_cmd_approve(int argc, char **argv)
{
    const char *dir = NULL, *duration = NULL, *positional[1];
    int count, each = 0, keep = 0, pull_only = 0;
    const char *usage =
        "approve QUESTION [--for DURATION] [--each | --keep | --pull-only] [--state DIR]";
    tl_cli_option_t options[] = {{"state", &dir, NULL},           {"for", &duration, NULL},
                                 {"each", NULL, &each},           {"keep", NULL, &keep},
                                 {"pull-only", NULL, &pull_only}, {0}};
    char path[TL_STATE_PATH_MAX];
    json_t *request = NULL, *answer = NULL;
    int status =
        tl_cli_parse(PROGRAM, "approve", usage, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        goto out;
    uint64_t ms = 0;
    if (count != 1) {
        fprintf(stderr,
                PROGRAM " approve: name the question (Q-N, see " PROGRAM
                        " pending)\nusage: " PROGRAM " %s\n",
                usage);
        status = TL_EXIT_USAGE;
        goto out;
    }
    if (duration != NULL && (tl_cli_parse_duration(duration, &ms) != 0 ||
                             ms > (uint64_t)TL_CONSENT_MAX_DURATION_S * 1000)) {
        fprintf(stderr, PROGRAM " approve: --for wants a duration like 30m or 2h (at most 1d)\n");
        status = TL_EXIT_USAGE;
        goto out;
    }
    request = json_pack("{s:s, s:s}", "cmd", tl_control_type_name(TL_CONTROL_APPROVE), "id",
                        positional[0]);
    if (duration != NULL)
        json_object_set_new(request, "duration_s", json_integer((json_int_t)(ms / 1000)));
    /* --each: ask again before every command; --keep: a shell grant outlives its shell. */
    if (each)
        json_object_set_new(request, "each", json_true());
    if (keep)
        json_object_set_new(request, "keep", json_true());
    /* --pull-only: files asked with push, allowed for copying from the machine only. */
    if (pull_only)
        json_object_set_new(request, "pull_only", json_true());
    if ((status = tl__cmd_control_socket("approve", dir, path, sizeof path)) != 0)
        goto out;
    status = consent_call("approve", path, request, &answer);
    request = NULL; /* consent_call took it */
    if (status != 0)
        goto out;
    json_t *grant = json_object_get(answer, "grant");
    char scopes[128], until[64];
    tl__cmd_scopes_text(json_object_get(grant, "scopes"), scopes, sizeof scopes);
    tl__cmd_local_time_text(tl__cmd_int_of(grant, "expires_ms"), until, sizeof until);
    char id[SHOWN_MAX], technician[SHOWN_MAX], ticket[SHOWN_MAX];
    printf("Granted %s: %s may use %s on ticket %s until %s\n",
           tl__cmd_shown(id, sizeof id, grant, "id"),
           tl__cmd_shown(technician, sizeof technician, grant, "technician"), scopes,
           tl__cmd_shown(ticket, sizeof ticket, grant, "ticket"), until);
    status = TL_EXIT_OK;
out:
    json_decref(request);
    json_decref(answer);
    return status;
}

int tl_agent_cmd_deny(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    const char *usage = "deny QUESTION [--state DIR]";
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    char path[TL_STATE_PATH_MAX];
    json_t *answer = NULL;
    int status =
        tl_cli_parse(PROGRAM, "deny", usage, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        goto out;
    if (count != 1) {
        fprintf(stderr,
                PROGRAM " deny: name the question (Q-N, see " PROGRAM " pending)\nusage: " PROGRAM
                        " %s\n",
                usage);
        status = TL_EXIT_USAGE;
        goto out;
    }
    if ((status = tl__cmd_control_socket("deny", dir, path, sizeof path)) != 0 ||
        (status = consent_call("deny", path,
                               json_pack("{s:s, s:s}", "cmd", tl_control_type_name(TL_CONTROL_DENY),
                                         "id", positional[0]),
                               &answer)) != 0)
        goto out;
    printf("Declined %s.\n", positional[0]);
    status = TL_EXIT_OK;
out:
    json_decref(answer);
    return status;
}

/* The grants from grants.json when no agent runs (nothing live can have channels then). */
static json_t *grants_from_file(const char *state_dir)
{
    uv_loop_t loop;
    char problem[512];
    int rc;
    json_t *grants = NULL;
    if (uv_loop_init(&loop) != 0)
        return NULL;
    tl_consent_config_t config = {.state_dir = state_dir};
    tl_consent_t *consent =
        tl_consent_new(&loop, &config, NULL, NULL, &rc, problem, sizeof problem);
    if (consent == NULL) {
        fprintf(stderr, PROGRAM " sessions: %s\n", problem);
    } else {
        grants = tl_consent_grants(consent);
        size_t i;
        json_t *grant;
        json_array_foreach(grants, i, grant) {
            json_object_set_new(grant, "channels", json_array());
        }
        tl_consent_free(consent);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return grants;
}

static void print_grants(json_t *grants, int running, const char *state_dir)
{
    if (!running)
        printf("(the agent is not running: grants as recorded in %s/%s)\n", state_dir,
               TL_CONSENT_GRANTS_FILE);
    if (json_array_size(grants) == 0)
        printf("No grants.\n");
    size_t i;
    json_t *grant;
    json_array_foreach(grants, i, grant) {
        print_grant_line(grant);
    }
}

int tl_agent_cmd_sessions(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    tl_agent_state_t state;
    json_t *answer = NULL, *grants = NULL;
    int status = tl_cli_parse(PROGRAM, "sessions", "sessions [--state DIR] [--json]", argc, argv, 1,
                              options, positional, 0, &count);
    if (status != 0 || (status = tl__cmd_open_state("sessions", dir, 0, &state)) != 0)
        goto out;
    char path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, path, sizeof path);
    json_t *request = json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_SESSIONS));
    int rc = tl_control_call(path, request, 10000, &answer);
    json_decref(request);
    int running = rc == 0;
    if (running && json_is_true(json_object_get(answer, "ok")))
        grants = json_incref(json_object_get(answer, "grants"));
    else if (!running && (rc == -ENOENT || rc == -ECONNREFUSED))
        grants = grants_from_file(state.dir);
    if (grants == NULL) {
        if (running || (rc != -ENOENT && rc != -ECONNREFUSED))
            fprintf(stderr, PROGRAM " sessions: the agent did not answer: %s\n",
                    tl_strerror(rc ? rc : TL_EPROTO));
        status = TL_EXIT_FAILURE;
        goto out;
    }
    if (json_out) {
        json_t *shown = json_pack("{s:b, s:O}", "running", running, "grants", grants);
        print_json(shown);
        json_decref(shown);
    } else {
        print_grants(grants, running, state.dir);
    }
    status = TL_EXIT_OK;
out:
    json_decref(answer);
    json_decref(grants);
    return status;
}

int tl_agent_cmd_end(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    char path[TL_STATE_PATH_MAX];
    json_t *request = NULL, *answer = NULL;
    int status = tl_cli_parse(PROGRAM, "end", "end [GRANT] [--state DIR]", argc, argv, 1, options,
                              positional, 1, &count);
    if (status != 0)
        goto out;
    request = json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_END));
    if (count == 1)
        json_object_set_new(request, "grant", json_string(positional[0]));
    if ((status = tl__cmd_control_socket("end", dir, path, sizeof path)) != 0)
        goto out;
    status = consent_call("end", path, request, &answer);
    request = NULL; /* consent_call took it */
    if (status != 0)
        goto out;
    json_int_t ended = json_integer_value(json_object_get(answer, "ended"));
    if (count == 1)
        printf("Ended %s: its sessions are closed.\n", positional[0]);
    else if (ended == 0)
        printf("No live grants.\n");
    else
        printf("Ended %lld grant(s): their sessions are closed.\n", (long long)ended);
    status = TL_EXIT_OK;
out:
    json_decref(request);
    json_decref(answer);
    return status;
}
