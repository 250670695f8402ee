/*
 * The runbook catalogue of a device (relay/sessions/sessions_int.h):
 * runbooks.list asked of the agent (docs/protocol.md §7.9), its answer
 * checked and rebuilt, then printed (runbooks) or used to check a fix before
 * consent is asked: the runbook exists, the technician's role may run it, the
 * arguments fit its parameters.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/names.h"
#include "proto/roles.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries of an agent's runbook catalogue we look at, and parameters per runbook. */
#define CATALOGUE_MAX 256
#define CATALOGUE_PARAMS_MAX 64

/* ---- the catalogue --------------------------------------------------------------------------- */

static int role_rank(const char *role)
{
    if (strcmp(role, "tier1") == 0)
        return 1;
    if (strcmp(role, "tier2") == 0)
        return 2; /* vendors (tier4) run none (docs/roles.md) */
    if (strcmp(role, "tier3") == 0)
        return 3;
    return 0;
}

/* A text of the catalogue as the agent sent it, at most max bytes (never a split character). */
static json_t *bounded_string(json_t *value, size_t max)
{
    const char *text = json_string_value(value);
    if (text == NULL)
        return json_string("");
    size_t len = strnlen(text, max + 1);
    if (len > max) {
        len = max;
        while (len > 0 && ((uint8_t)text[len] & 0xc0) == 0x80)
            len--;
    }
    return json_stringn(text, len);
}

/*
 * The agent's catalogue (docs/protocol.md §7.9), checked and rebuilt with
 * only what we understand: entries with bad names are skipped, texts are
 * bounded (and escaped when printed). NULL if the answer is not a catalogue at all.
 */
static json_t *catalogue_from(json_t *result)
{
    json_t *list = json_object_get(result, "runbooks");
    if (!json_is_array(list))
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry) {
        if (i >= CATALOGUE_MAX)
            break;
        const char *name = json_string_value(json_object_get(entry, "name"));
        const char *min_role = json_string_value(json_object_get(entry, "min_role"));
        if (!tl_runbook_name_valid(name))
            continue;
        if (min_role == NULL || role_rank(min_role) == 0)
            min_role = "tier1";
        json_t *params = json_array();
        size_t j;
        json_t *param;
        json_array_foreach(json_object_get(entry, "params"), j, param) {
            const char *pname = json_string_value(json_object_get(param, "name"));
            if (j >= CATALOGUE_PARAMS_MAX || pname == NULL ||
                !tl_runbook_param_name_valid(pname, strlen(pname)))
                continue;
            json_array_append_new(
                params, json_pack("{s:s, s:b, s:o}", "name", pname, "required",
                                  json_is_true(json_object_get(param, "required")), "description",
                                  bounded_string(json_object_get(param, "description"), 200)));
        }
        json_array_append_new(
            out, json_pack("{s:s, s:o, s:s, s:b, s:o}", "name", name, "description",
                           bounded_string(json_object_get(entry, "description"), 300), "min_role",
                           min_role, "privileged",
                           json_is_true(json_object_get(entry, "privileged")), "params", params));
    }
    return out;
}

static void print_catalogue(struct session *s, json_t *catalogue)
{
    if (s->json) {
        char *text = tl_text_json_dumps(catalogue, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text != NULL)
            tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%s\n", text);
        free(text);
        return;
    }
    tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%-24s %-4s %-8s %-28s %s\n", "NAME", "PRIV",
                   "MIN-ROLE", "PARAMS", "DESCRIPTION");
    size_t i;
    json_t *entry;
    json_array_foreach(catalogue, i, entry) {
        char params[512] = "";
        size_t used = 0, j;
        json_t *param;
        json_array_foreach(json_object_get(entry, "params"), j, param) {
            int required = json_is_true(json_object_get(param, "required"));
            if (tl_format_append(
                    params, sizeof params, &used, "%s%s%s%s", j ? "," : "", required ? "" : "[",
                    json_string_value(json_object_get(param, "name")), required ? "" : "]") != 0)
                break;
        }
        char *description = tl_text_escape_dup(
            json_string_value(json_object_get(entry, "description")), TL_TEXT_LINE);
        tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%-24s %-4s %-8s %-28s %s\n",
                       json_string_value(json_object_get(entry, "name")),
                       json_is_true(json_object_get(entry, "privileged")) ? "yes" : "no",
                       json_string_value(json_object_get(entry, "min_role")), used ? params : "-",
                       description != NULL ? description : "");
        free(description);
    }
    if (json_array_size(catalogue) == 0)
        tl_exec_printf(s->exec, TL_EXEC_STDOUT, "(no runbooks on %s)\n", s->device);
}

/* ---- fix: the checks ------------------------------------------------------------------------- */

static void unknown_runbook(struct session *s, json_t *catalogue)
{
    char close_names[512] = "", all[512] = "";
    size_t close_used = 0, all_used = 0, i;
    json_t *entry;
    json_array_foreach(catalogue, i, entry) {
        const char *name = json_string_value(json_object_get(entry, "name"));
        int near = tl_name_distance(name, s->runbook) <= 3 || strstr(name, s->runbook) != NULL ||
                   strstr(s->runbook, name) != NULL;
        char *list = near ? close_names : all;
        size_t *used = near ? &close_used : &all_used;
        tl_format_append(list, 512, used, "%s%s", *used ? ", " : "", name);
    }
    if (close_used > 0)
        tl__session_fail(s, "no runbook '%s' on %s; did you mean: %s", s->runbook, s->device,
                         close_names);
    else if (all_used > 0)
        tl__session_fail(s, "no runbook '%s' on %s; it has: %s", s->runbook, s->device, all);
    else
        tl__session_fail(s, "no runbook '%s' on %s: it has no runbooks", s->runbook, s->device);
}

static void denied_done(struct session *s, struct sjob *job, int status)
{
    tl__session_say(s, "%s", s->end_message);
    tl__session_finish(s, TL_EXIT_DENIED);
}

/* A refusal by the relay's own rules: audited, then told (exit 77). */
static void deny(struct session *s, const char *needs, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void deny(struct session *s, const char *needs, const char *fmt, ...)
{
    char line[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    tl__session_set_end(s, "denied", "permission denied: %s", line);
    json_t *details = json_pack("{s:s, s:s, s:s, s:s}", "command", "fix", "role", s->tech.role,
                                "needs", needs, "runbook", s->runbook);
    s->phase = PHASE_DONE; /* nothing else happens; the exec ends after the audit */
    tl__session_record(s, NULL, "access.denied", details, denied_done);
}

/* fix: every value names a parameter of the runbook, and every required one has a value. */
static int check_args(struct session *s, json_t *params)
{
    size_t i;
    char names[512] = "";
    size_t used = 0;
    json_t *param;
    json_array_foreach(params, i, param) {
        tl_format_append(names, sizeof names, &used, "%s%s", used ? ", " : "",
                         json_string_value(json_object_get(param, "name")));
    }
    const char *name;
    json_t *value;
    json_object_foreach(s->runbook_args, name, value) {
        int known = 0;
        json_array_foreach(params, i, param)
            known |= strcmp(json_string_value(json_object_get(param, "name")), name) == 0;
        if (!known) {
            tl__session_fail(s, "runbook '%s' has no parameter %s (it takes: %s)", s->runbook, name,
                             used ? names : "none");
            return -1;
        }
    }
    json_array_foreach(params, i, param) {
        const char *pname = json_string_value(json_object_get(param, "name"));
        if (json_is_true(json_object_get(param, "required")) &&
            json_object_get(s->runbook_args, pname) == NULL) {
            char description[1000];
            tl__sessions_clean_text(description, sizeof description,
                                    json_string_value(json_object_get(param, "description")));
            tl__session_fail(s, "runbook '%s' needs %s=VALUE: %s", s->runbook, pname, description);
            return -1;
        }
    }
    return 0;
}

/* fix: the runbook exists, the technician may run it, the arguments fit it. */
static int check_runbook(struct session *s, json_t *catalogue)
{
    json_t *found = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(catalogue, i, entry)
        if (strcmp(json_string_value(json_object_get(entry, "name")), s->runbook) == 0)
            found = entry;
    if (found == NULL) {
        unknown_runbook(s, catalogue);
        return -1;
    }
    if (json_is_true(json_object_get(found, "privileged")) &&
        !tl_role_can(s->role, TL_CAP_FIX_PRIVILEGED)) {
        deny(s, tl_capability_name(TL_CAP_FIX_PRIVILEGED),
             "role %s may not run the privileged runbook '%s' (needs %s)", s->tech.role, s->runbook,
             tl_capability_name(TL_CAP_FIX_PRIVILEGED));
        return -1;
    }
    const char *min_role = json_string_value(json_object_get(found, "min_role"));
    if (role_rank(s->tech.role) < role_rank(min_role)) {
        deny(s, min_role, "runbook '%s' needs role %s or above; you are %s", s->runbook, min_role,
             s->tech.role);
        return -1;
    }
    return check_args(s, json_object_get(found, "params"));
}

/* ---- the request ----------------------------------------------------------------------------- */

static void catalogue_answer(void *data, int status, json_t *result)
{
    struct session *s = data;
    s->request_id = 0;
    if (s->exec == NULL) {
        tl__session_finish(s, 1);
        return;
    }
    if (status == TL_ECLOSED) {
        tl__session_fail(s, "the machine went offline");
        return;
    }
    if (status != 0) {
        tl__session_fail(s, "the machine did not send its runbooks: %s", tl_strerror(status));
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        char message[256];
        tl__sessions_clean_text(message, sizeof message,
                                json_string_value(json_object_get(result, "message")));
        tl__session_fail(s, "the machine did not send its runbooks: %s", message);
        return;
    }
    json_t *catalogue = catalogue_from(result);
    if (catalogue == NULL) {
        tl__session_fail(s, "the machine sent a malformed runbook catalogue");
        return;
    }
    if (s->kind == TL_SESSION_RUNBOOKS) {
        print_catalogue(s, catalogue);
        json_decref(catalogue);
        tl__session_finish(s, 0);
        return;
    }
    int rc = check_runbook(s, catalogue);
    json_decref(catalogue);
    if (rc == 0)
        tl__session_ask_consent(s);
}

void tl__session_request_catalogue(struct session *s)
{
    json_t *body = json_pack("{s:s}", "type", tl_control_type_name(TL_CONTROL_RUNBOOKS_LIST));
    s->phase = PHASE_CATALOGUE;
    int rc = body ? tl_agent_request(s->agent, body, TL_SESSIONS_REQUEST_WAIT_MS, catalogue_answer,
                                     s, &s->request_id)
                  : TL_ENOMEM;
    json_decref(body);
    if (rc != 0)
        tl__session_fail(s, "cannot ask %s for its runbooks: %s", s->device, tl_strerror(rc));
}
