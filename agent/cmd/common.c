/*
 * Helpers the agent's commands share (agent/cmd/cmd_int.h): opening the
 * state directory, finding the running agent's control socket, and showing
 * what the relay and technicians sent, escaped.
 */
#include "agent/cmd/cmd_int.h"

#include "proto/cli.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/text.h"

#include <stdio.h>
#include <time.h>

int tl__cmd_fail(const char *command, const char *what, int rc)
{
    fprintf(stderr, PROGRAM " %s: %s: %s\n", command, what, tl_strerror(rc));
    return TL_EXIT_FAILURE;
}

/* Resolves the state directory and loads it; prints why not on failure. */
int tl__cmd_open_state(const char *command, const char *dir, int must_be_enrolled,
                       tl_agent_state_t *state)
{
    char path[TL_STATE_PATH_MAX];
    int rc = tl_state_dir(dir, path, sizeof path);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " %s: no state directory: give --state DIR (or set HOME)\n",
                command);
        return TL_EXIT_USAGE;
    }
    if ((rc = tl_state_prepare(path)) != 0)
        return tl__cmd_fail(command, path, rc);
    if ((rc = tl_state_load(path, state)) != 0)
        return tl__cmd_fail(command, "reading the agent state (relay.json is damaged)", rc);
    if (must_be_enrolled && !state->enrolled) {
        fprintf(stderr,
                PROGRAM " %s: this agent is not enrolled yet (state %s)\n"
                        "Ask your help desk for an enrollment string, then run: " PROGRAM
                        " enroll 'tl1:…'\n",
                command, path);
        return TL_EXIT_FAILURE;
    }
    return 0;
}

/* The running agent's control socket; prints why not and returns non-zero when there is none. */
int tl__cmd_control_socket(const char *command, const char *dir, char *path, size_t size)
{
    tl_agent_state_t state;
    int status = tl__cmd_open_state(command, dir, 0, &state);
    if (status != 0)
        return status;
    tl_state_path(state.dir, TL_STATE_SOCKET, path, size);
    return 0;
}

void tl__cmd_local_time_text(int64_t ms, char *out, size_t size)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm local;
    if (localtime_r(&seconds, &local) == NULL ||
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &local) == 0)
        snprintf(out, size, "?");
}

void tl__cmd_scopes_text(json_t *scopes, char *out, size_t size)
{
    unsigned bits = 0;
    size_t i;
    json_t *scope;
    json_array_foreach(scopes, i, scope) {
        bits |= tl_scope_bit(json_string_value(scope));
    }
    tl_scope_text(bits, out, size);
}

const char *tl__cmd_member(json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text != NULL ? text : "?";
}

/*
 * A member as the user is shown it: escaped as one line (docs/consent.md
 * "Asking the user"). The texts come from the relay and from technicians;
 * buf holds the escaped form, clipped with "…" only if it would not fit.
 */
const char *tl__cmd_shown(char *buf, size_t size, json_t *object, const char *key)
{
    tl_text_clip(buf, size, tl__cmd_member(object, key), 0, TL_TEXT_LINE);
    return buf;
}

int64_t tl__cmd_int_of(json_t *object, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(object, key));
}

/* The question as the user sees it (docs/consent.md "Asking the user"). */
void tl__cmd_print_question(json_t *question)
{
    char scopes[128], duration[32];
    tl__cmd_scopes_text(json_object_get(question, "scopes"), scopes, sizeof scopes);
    tl_consent_duration_text((uint64_t)tl__cmd_int_of(question, "duration_s"), duration,
                             sizeof duration);
    char technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX], reason[SHOWN_MAX],
        id[SHOWN_MAX];
    const char *command_line = json_string_value(json_object_get(question, "command_line"));
    if (command_line != NULL) {
        /* One command under a grant that asks for each: exactly what will run, escaped. */
        char line[TL_CONSENT_MAX_COMMAND_TEXT], grant[SHOWN_MAX];
        tl_text_clip(line, sizeof line, command_line, 0, TL_TEXT_LINE);
        printf("Technician %s (%s) asks to run, under grant %s:\n",
               tl__cmd_shown(technician, sizeof technician, question, "technician"),
               tl__cmd_shown(role, sizeof role, question, "role"),
               tl__cmd_shown(grant, sizeof grant, question, "grant"));
        printf("  %s%s\n", json_is_object(json_object_get(question, "runbook")) ? "runbook " : "",
               line);
        printf("  ticket %s: %s\n", tl__cmd_shown(ticket, sizeof ticket, question, "ticket"),
               tl__cmd_shown(reason, sizeof reason, question, "reason"));
        int64_t left = (tl__cmd_int_of(question, "deadline_ms") - tl_wall_ms()) / 1000;
        tl_consent_duration_text(left > 0 ? (uint64_t)left : 0, duration, sizeof duration);
        printf("  question %s, open for %s (no answer: not run)\n",
               tl__cmd_shown(id, sizeof id, question, "id"), duration);
        return;
    }
    printf("Technician %s (%s) asks for: %s\n",
           tl__cmd_shown(technician, sizeof technician, question, "technician"),
           tl__cmd_shown(role, sizeof role, question, "role"), scopes);
    printf("  ticket %s, for %s: %s\n", tl__cmd_shown(ticket, sizeof ticket, question, "ticket"),
           duration, tl__cmd_shown(reason, sizeof reason, question, "reason"));
    json_t *runbook = json_object_get(question, "runbook");
    if (json_is_object(runbook)) {
        /* A fix: which runbook, what it does (this machine's catalogue) and every value. */
        char name[SHOWN_MAX], what[SHOWN_MAX], value[SHOWN_MAX];
        printf("  runbook %s%s: %s\n", tl__cmd_shown(name, sizeof name, runbook, "name"),
               json_is_true(json_object_get(runbook, "privileged")) ? " (privileged, as root)" : "",
               tl__cmd_shown(what, sizeof what, runbook, "description"));
        const char *key;
        json_t *arg;
        json_object_foreach(json_object_get(runbook, "args"), key, arg) {
            tl_text_clip(name, sizeof name, key, 0, TL_TEXT_LINE);
            tl_text_clip(value, sizeof value, json_string_value(arg), 0, TL_TEXT_LINE);
            printf("    %s=%s\n", name, value);
        }
    }
    if (json_is_true(json_object_get(question, "ends_with_shell")))
        printf("  the grant ends when the shell ends (answer k to keep it for its time)\n");
    else if (json_is_true(json_object_get(question, "each_possible")))
        printf("  answer e to be asked again before each command\n");
    /* files: whether the technician may also copy files to this machine. */
    if (json_is_true(json_object_get(question, "push")))
        printf("  files: copying from and to this machine (answer p to allow copying from it "
               "only)\n");
    else if (json_is_boolean(json_object_get(question, "push")))
        printf("  files: copying from this machine only\n");
    int64_t left = (tl__cmd_int_of(question, "deadline_ms") - tl_wall_ms()) / 1000;
    tl_consent_duration_text(left > 0 ? (uint64_t)left : 0, duration, sizeof duration);
    printf("  question %s, open for %s\n", tl__cmd_shown(id, sizeof id, question, "id"), duration);
}
