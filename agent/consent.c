#include "agent/consent.h"
#include "proto/array.h"
#include "proto/buf.h"
#include "proto/cli.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* docs/consent.md; docs/protocol.md §7.6-7.8. */

static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* Scope names and bits are the shared vocabulary's (proto/vocab.h). */
json_t *tl_scope_names(unsigned scopes)
{
    json_t *names = json_array();
    for (unsigned i = 0; names != NULL && i < TL_SCOPE_COUNT; i++)
        if (scopes & (1u << i))
            json_array_append_new(names, json_string(tl_scope_name(1u << i)));
    return names;
}

void tl_scope_text(unsigned scopes, char *out, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    out[0] = '\0';
    for (unsigned i = 0; i < TL_SCOPE_COUNT; i++)
        if ((scopes & (1u << i)) && tl_format_append(out, size, &used, "%s%s", used ? ", " : "",
                                                     tl_scope_name(1u << i)) != 0)
            return;
    if (used == 0)
        tl_format(out, size, "nothing");
}

unsigned tl_scope_for_channel(const char *type)
{
    /* Which scope a channel type needs is in the one channel table (proto/vocab.h). */
    return tl_channel_type_scope(tl_channel_type_lookup(type));
}

void tl_consent_duration_text(uint64_t seconds, char *out, size_t size)
{
    if (seconds >= 3600)
        snprintf(out, size, "%lluh%llum", (unsigned long long)(seconds / 3600),
                 (unsigned long long)(seconds % 3600 / 60));
    else if (seconds >= 60)
        snprintf(out, size, "%llum%llus", (unsigned long long)(seconds / 60),
                 (unsigned long long)(seconds % 60));
    else
        snprintf(out, size, "%llus", (unsigned long long)seconds);
}

static int day_index(const char *name)
{
    for (int i = 0; name != NULL && i < 7; i++)
        if (strcmp(day_names[i], name) == 0)
            return i;
    return -1;
}

/* The role of a session (proto/roles.h), or -1: unknown, or a role that never gets one. */
static int session_role(const char *role)
{
    int at = tl_role_parse(role);
    return tl_role_has_sessions(at) ? at : -1;
}

/*
 * At most max bytes, no NUL. A name (ticket, technician, role, id) is not
 * empty and has no control characters. Free text (a reason) may be empty and
 * hold anything: it is kept as it came and shown escaped (proto/text.h).
 */
static int text_ok(const char *text, size_t len, size_t max, int free_text)
{
    if (len > max || (len == 0 && !free_text))
        return 0;
    for (size_t i = 0; i < len && !free_text; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* ---- session.request ---------------------------------------------------------- */

static int copy_text_member(json_t *body, const char *key, char *out, size_t max, int free_text,
                            char *message, size_t size)
{
    json_t *value = json_object_get(body, key);
    if (!json_is_string(value)) {
        tl_format(message, size, "session.request needs \"%s\" (a string)", key);
        return TL_EINVAL;
    }
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (strlen(text) != len || !text_ok(text, len, max, free_text)) {
        if (free_text)
            tl_format(message, size, "\"%s\" must be at most %zu bytes without NUL", key, max);
        else
            tl_format(message, size, "\"%s\" must be 1..%zu bytes without control characters", key,
                      max);
        return TL_EINVAL;
    }
    memcpy(out, text, len + 1);
    return 0;
}

int tl_consent_request_parse(json_t *body, tl_consent_request_t *out, char *message, size_t size)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (!json_is_object(body)) {
        tl_format(message, size, "session.request must be a JSON object");
        return TL_EINVAL;
    }
    if ((rc = copy_text_member(body, "ticket", out->ticket, TL_CONSENT_MAX_NAME, 0, message,
                               size)) != 0 ||
        (rc = copy_text_member(body, "technician", out->technician, TL_CONSENT_MAX_NAME, 0, message,
                               size)) != 0 ||
        (rc = copy_text_member(body, "reason", out->reason, TL_CONSENT_MAX_REASON, 1, message,
                               size)) != 0)
        return rc;
    const char *role = json_string_value(json_object_get(body, "role"));
    if (tl_role_parse(role) < 0) {
        char roles[96];
        tl_roles_names(roles, sizeof roles);
        tl_format(message, size, "\"role\" must be one of %s", roles);
        return TL_EINVAL;
    }
    snprintf(out->role, sizeof out->role, "%s", role);
    json_t *scopes = json_object_get(body, "scopes");
    if (!json_is_array(scopes) || json_array_size(scopes) == 0 ||
        json_array_size(scopes) > TL_SCOPE_COUNT) {
        tl_format(message, size, "\"scopes\" must be a non-empty array of distinct scope names");
        return TL_EINVAL;
    }
    size_t i;
    json_t *scope;
    json_array_foreach(scopes, i, scope) {
        unsigned bit = tl_scope_bit(json_string_value(scope));
        if (bit == 0) {
            tl_format(message, size,
                      "\"scopes\"[%zu] is not a scope (diag, fix, exec, shell, files, observe)", i);
            return TL_EINVAL;
        }
        if (out->scopes & bit) {
            tl_format(message, size, "\"scopes\" names %s twice", json_string_value(scope));
            return TL_EINVAL;
        }
        out->scopes |= bit;
    }
    json_t *duration = json_object_get(body, "duration_s");
    if (!json_is_integer(duration) || json_integer_value(duration) < TL_CONSENT_MIN_DURATION_S ||
        json_integer_value(duration) > TL_CONSENT_MAX_DURATION_S) {
        tl_format(message, size, "\"duration_s\" must be an integer from %u to %u",
                  TL_CONSENT_MIN_DURATION_S, TL_CONSENT_MAX_DURATION_S);
        return TL_EINVAL;
    }
    out->duration_s = (uint32_t)json_integer_value(duration);
    json_t *runbook = json_object_get(body, "runbook");
    if (runbook != NULL) {
        json_t *args = json_object_get(runbook, "args");
        if (!(out->scopes & TL_SCOPE_FIX) || !json_is_object(runbook) ||
            !json_is_string(json_object_get(runbook, "name")) ||
            (args != NULL && !json_is_object(args))) {
            tl_format(message, size,
                      "\"runbook\" must be {\"name\":NAME,\"args\":{...}} in a request for fix");
            return TL_EINVAL;
        }
        out->runbook = json_incref(runbook);
    }
    json_t *push = json_object_get(body, "push");
    if (push != NULL && (!json_is_boolean(push) || !(out->scopes & TL_SCOPE_FILES))) {
        tl_format(message, size, "\"push\" must be true or false in a request for files");
        return TL_EINVAL;
    }
    out->push = json_is_true(push);
    return 0;
}

void tl_consent_request_clear(tl_consent_request_t *request)
{
    json_decref(request->runbook);
    request->runbook = NULL;
}

/* ---- policy --------------------------------------------------------------------- */

struct rule {
    unsigned roles; /* bit per role (proto/roles.h) */
    unsigned scopes;
    unsigned days;   /* bit per tm_wday */
    int from_minute; /* -1: no window */
    int to_minute;
    uint32_t max_duration_s;
    char **commands; /* NULL: the rule grants for its time; else what it allows one by one */
    size_t command_count;
};

struct tl_policy {
    struct rule rules[TL_POLICY_MAX_RULES];
    size_t count;
    uint64_t consent_timeout_ms;
};

/* A duration member: "2h", "90s" or a whole number of seconds, within [min_s, max_s]. */
static int policy_duration(json_t *value, uint64_t min_s, uint64_t max_s, uint64_t *seconds)
{
    uint64_t ms = 0, whole = 0;
    if (json_is_integer(value) && json_integer_value(value) > 0)
        whole = (uint64_t)json_integer_value(value); /* seconds: never scaled, so never wraps */
    else if (!json_is_string(value) || tl_cli_parse_duration(json_string_value(value), &ms) != 0)
        return TL_EINVAL;
    else
        whole = ms / 1000;
    if (whole < min_s || whole > max_s)
        return TL_EINVAL;
    *seconds = whole;
    return 0;
}

static int parse_clock(const char *text, int *minute)
{
    if (text == NULL || strlen(text) != 5 || text[2] != ':')
        return TL_EINVAL;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text[i] < '0' || text[i] > '9'))
            return TL_EINVAL;
    int hours = (text[0] - '0') * 10 + (text[1] - '0');
    int minutes = (text[3] - '0') * 10 + (text[4] - '0');
    if (hours > 23 || minutes > 59)
        return TL_EINVAL;
    *minute = hours * 60 + minutes;
    return 0;
}

/*
 * A rule's "commands": what it allows one command at a time. Each entry is
 * an exact argv[0] ("df", "/usr/bin/journalctl") or "runbook:NAME". A shell
 * cannot be allowed command by command, so such a rule may not list it.
 */
static int parse_commands(json_t *commands, size_t index, struct rule *rule, char *problem,
                          size_t size)
{
    if (commands == NULL)
        return 0;
    if (!json_is_array(commands) || json_array_size(commands) == 0 ||
        json_array_size(commands) > TL_POLICY_MAX_COMMANDS) {
        tl_format(problem, size, "unattended[%zu]: \"commands\" must be an array of 1..%d commands",
                  index, TL_POLICY_MAX_COMMANDS);
        return TL_EINVAL;
    }
    if (rule->scopes & TL_SCOPE_SHELL) {
        tl_format(problem, size,
                  "unattended[%zu]: a rule with \"commands\" cannot allow shell (a shell "
                  "cannot be asked command by command)",
                  index);
        return TL_EINVAL;
    }
    if (!(rule->scopes & (TL_SCOPE_EXEC | TL_SCOPE_FIX))) {
        tl_format(problem, size, "unattended[%zu]: a rule with \"commands\" must allow exec or fix",
                  index);
        return TL_EINVAL;
    }
    rule->commands = calloc(json_array_size(commands), sizeof *rule->commands);
    if (rule->commands == NULL) {
        tl_format(problem, size, "%s", tl_strerror(TL_ENOMEM));
        return TL_ENOMEM;
    }
    size_t i;
    json_t *value;
    json_array_foreach(commands, i, value) {
        const char *text = json_string_value(value);
        size_t len = json_is_string(value) ? json_string_length(value) : 0;
        const char *name = len > 8 && strncmp(text, "runbook:", 8) == 0 ? text + 8 : NULL;
        if (text == NULL || strlen(text) != len ||
            !text_ok(text, len, TL_POLICY_MAX_COMMAND_BYTES, 0) ||
            (name == NULL && strchr(text, '/') != NULL && text[0] != '/') ||
            (name == NULL && text[len - 1] == '/') || (name != NULL && strchr(name, '/') != NULL)) {
            tl_format(problem, size,
                      "unattended[%zu].commands[%zu]: want a program name (\"df\"), an "
                      "absolute path (\"/usr/bin/df\") or \"runbook:NAME\", 1..%d bytes "
                      "without control characters",
                      index, i, TL_POLICY_MAX_COMMAND_BYTES);
            return TL_EINVAL;
        }
        rule->commands[i] = strdup(text);
        if (rule->commands[i] == NULL) {
            tl_format(problem, size, "%s", tl_strerror(TL_ENOMEM));
            return TL_ENOMEM;
        }
        rule->command_count++;
    }
    return 0;
}

static void rule_clear(struct rule *rule)
{
    for (size_t i = 0; i < rule->command_count; i++)
        free(rule->commands[i]);
    free(rule->commands);
    rule->commands = NULL;
    rule->command_count = 0;
}

static int parse_rule(json_t *item, size_t index, struct rule *rule, char *problem, size_t size)
{
    const char *key;
    json_t *value;
    memset(rule, 0, sizeof *rule);
    rule->days = 0x7f;
    rule->from_minute = rule->to_minute = -1;
    rule->max_duration_s = TL_CONSENT_DEFAULT_MAX_DURATION_S;
    if (!json_is_object(item)) {
        tl_format(problem, size, "unattended[%zu]: a rule must be an object", index);
        return TL_EINVAL;
    }
    json_object_foreach(item, key, value) {
        if (strcmp(key, "roles") != 0 && strcmp(key, "scopes") != 0 &&
            strcmp(key, "max_duration") != 0 && strcmp(key, "days") != 0 &&
            strcmp(key, "from") != 0 && strcmp(key, "to") != 0 && strcmp(key, "commands") != 0) {
            tl_format(problem, size, "unattended[%zu]: unknown member \"%s\"", index, key);
            return TL_EINVAL;
        }
    }
    json_t *roles = json_object_get(item, "roles");
    json_t *scopes = json_object_get(item, "scopes");
    if (!json_is_array(roles) || json_array_size(roles) == 0) {
        tl_format(problem, size, "unattended[%zu]: \"roles\" must be a non-empty array", index);
        return TL_EINVAL;
    }
    if (!json_is_array(scopes) || json_array_size(scopes) == 0) {
        tl_format(problem, size, "unattended[%zu]: \"scopes\" must be a non-empty array", index);
        return TL_EINVAL;
    }
    size_t i;
    json_array_foreach(roles, i, value) {
        const char *role = json_string_value(value);
        int at = session_role(role);
        if (at < 0) {
            if (tl_role_parse(role) >= 0)
                tl_format(problem, size,
                          "unattended[%zu].roles[%zu]: role '%s' never gets a session", index, i,
                          role);
            else
                tl_format(problem, size,
                          "unattended[%zu].roles[%zu]: unknown role '%s' (want tier1..tier4)",
                          index, i, role ? role : "(not a string)");
            return TL_EINVAL;
        }
        rule->roles |= 1u << at;
    }
    json_array_foreach(scopes, i, value) {
        unsigned bit = tl_scope_bit(json_string_value(value));
        if (bit == 0) {
            tl_format(problem, size,
                      "unattended[%zu].scopes[%zu]: unknown scope '%s' (want diag, fix, exec, "
                      "shell, files, observe)",
                      index, i,
                      json_is_string(value) ? json_string_value(value) : "(not a string)");
            return TL_EINVAL;
        }
        rule->scopes |= bit;
    }
    json_t *days = json_object_get(item, "days");
    if (days != NULL) {
        if (!json_is_array(days) || json_array_size(days) == 0) {
            tl_format(problem, size, "unattended[%zu]: \"days\" must be a non-empty array", index);
            return TL_EINVAL;
        }
        rule->days = 0;
        json_array_foreach(days, i, value) {
            int day = day_index(json_string_value(value));
            if (day < 0) {
                tl_format(
                    problem, size,
                    "unattended[%zu].days[%zu]: unknown day '%s' (want mon, tue, wed, thu, fri, "
                    "sat, sun)",
                    index, i, json_is_string(value) ? json_string_value(value) : "(not a string)");
                return TL_EINVAL;
            }
            rule->days |= 1u << day;
        }
    }
    json_t *from = json_object_get(item, "from"), *to = json_object_get(item, "to");
    if ((from == NULL) != (to == NULL)) {
        tl_format(problem, size, "unattended[%zu]: \"from\" and \"to\" go together", index);
        return TL_EINVAL;
    }
    if (from != NULL) {
        if (parse_clock(json_string_value(from), &rule->from_minute) != 0 ||
            parse_clock(json_string_value(to), &rule->to_minute) != 0) {
            tl_format(problem, size,
                      "unattended[%zu]: \"from\" and \"to\" must be times like \"08:00\"", index);
            return TL_EINVAL;
        }
        if (rule->from_minute == rule->to_minute) {
            tl_format(problem, size, "unattended[%zu]: \"from\" and \"to\" are the same time",
                      index);
            return TL_EINVAL;
        }
    }
    json_t *max = json_object_get(item, "max_duration");
    if (max != NULL) {
        uint64_t seconds;
        if (policy_duration(max, 1, TL_CONSENT_MAX_DURATION_S, &seconds) != 0) {
            tl_format(
                problem, size,
                "unattended[%zu]: \"max_duration\" must be a duration like \"2h\" (at most 1d)",
                index);
            return TL_EINVAL;
        }
        rule->max_duration_s = (uint32_t)seconds;
    }
    return parse_commands(json_object_get(item, "commands"), index, rule, problem, size);
}

tl_policy_t *tl_policy_parse(const char *text, size_t len, int *err, char *problem, size_t size)
{
    json_error_t error;
    tl_policy_t *policy = NULL;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    *err = TL_EINVAL;
    if (doc == NULL) {
        tl_format(problem, size, "not JSON: %s (line %d)", error.text, error.line);
        goto out;
    }
    if (!json_is_object(doc)) {
        tl_format(problem, size, "the policy must be a JSON object");
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(doc, key, value) {
        if (strcmp(key, "unattended") != 0 && strcmp(key, "consent_timeout") != 0) {
            tl_format(problem, size, "unknown member \"%s\" (want unattended, consent_timeout)",
                      key);
            goto out;
        }
    }
    policy = calloc(1, sizeof *policy);
    if (policy == NULL) {
        *err = TL_ENOMEM;
        tl_format(problem, size, "%s", tl_strerror(TL_ENOMEM));
        goto out;
    }
    json_t *rules = json_object_get(doc, "unattended");
    if (rules != NULL && (!json_is_array(rules) || json_array_size(rules) > TL_POLICY_MAX_RULES)) {
        tl_format(problem, size, "\"unattended\" must be an array of at most %d rules",
                  TL_POLICY_MAX_RULES);
        goto fail;
    }
    size_t i;
    json_array_foreach(rules, i, value) {
        int rc = parse_rule(value, i, &policy->rules[i], problem, size);
        if (rc != 0) {
            rule_clear(&policy->rules[i]);
            *err = rc;
            goto fail;
        }
        policy->count++;
    }
    json_t *timeout = json_object_get(doc, "consent_timeout");
    if (timeout != NULL) {
        uint64_t seconds;
        if (policy_duration(timeout, TL_CONSENT_MIN_TIMEOUT_MS / 1000,
                            TL_CONSENT_MAX_TIMEOUT_MS / 1000, &seconds) != 0) {
            tl_format(problem, size,
                      "\"consent_timeout\" must be a duration like \"2m\" (1s to 1d)");
            goto fail;
        }
        policy->consent_timeout_ms = seconds * 1000;
    }
    *err = 0;
    goto out;
fail:
    tl_policy_free(policy);
    policy = NULL;
out:
    json_decref(doc);
    return policy;
}

#define POLICY_FILE_MAX (1024 * 1024)

static int check_policy_file(const struct stat *st, void *arg)
{
    *(int *)arg = 1;
    return !S_ISREG(st->st_mode) || st->st_size > POLICY_FILE_MAX ? TL_EINVAL : 0;
}

tl_policy_t *tl_policy_load(const char *path, int *err, char *problem, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    int opened = 0;
    tl_policy_t *policy = NULL;
    int rc = tl_fs_read_file(path, POLICY_FILE_MAX, 0, check_policy_file, &opened, &text, &len);
    if (rc == 0) {
        policy = tl_policy_parse(text, len, err, problem, size);
    } else {
        *err = rc;
        if (!opened)
            tl_format(problem, size, "%s", strerror(-rc));
        else if (rc == TL_EINVAL)
            tl_format(problem, size, "not a regular file of at most 1 MiB");
        else if (rc == TL_ENOMEM)
            tl_format(problem, size, "%s", tl_strerror(rc));
        else
            tl_format(problem, size, "cannot read it: %s", tl_strerror(rc));
    }
    free(text);
    return policy;
}

void tl_policy_free(tl_policy_t *policy)
{
    for (size_t i = 0; policy != NULL && i < policy->count; i++)
        rule_clear(&policy->rules[i]);
    free(policy);
}

static int rule_window_holds(const struct rule *rule, const struct tm *local)
{
    int day = local->tm_wday;
    if (day < 0 || day > 6)
        return 0;
    if (rule->from_minute < 0)
        return (rule->days >> day) & 1u;
    int minute = local->tm_hour * 60 + local->tm_min;
    if (rule->from_minute < rule->to_minute)
        return ((rule->days >> day) & 1u) && minute >= rule->from_minute &&
               minute < rule->to_minute;
    /* Spans midnight: the hours after midnight belong to the day the window opened. */
    if (minute >= rule->from_minute)
        return (rule->days >> day) & 1u;
    if (minute < rule->to_minute)
        return (rule->days >> ((day + 6) % 7)) & 1u;
    return 0;
}

/* The first rule that matches decides; NULL when none does. */
static const struct rule *matching_rule(const tl_policy_t *policy, const char *role,
                                        unsigned scopes, const struct tm *local)
{
    int at = session_role(role);
    if (policy == NULL || at < 0 || scopes == 0)
        return NULL;
    for (size_t i = 0; i < policy->count; i++) {
        const struct rule *rule = &policy->rules[i];
        if (((rule->roles >> at) & 1u) && (scopes & ~rule->scopes) == 0 &&
            rule_window_holds(rule, local))
            return rule;
    }
    return NULL;
}

int tl_policy_decide(const tl_policy_t *policy, const char *role, unsigned scopes,
                     const struct tm *local, uint32_t asked_s, uint32_t *granted_s, int *each)
{
    const struct rule *rule = matching_rule(policy, role, scopes, local);
    if (rule == NULL)
        return TL_EDENIED;
    *granted_s = asked_s < rule->max_duration_s ? asked_s : rule->max_duration_s;
    if (each != NULL)
        *each = rule->commands != NULL;
    return 0;
}

int tl_policy_match(const tl_policy_t *policy, const char *role, unsigned scopes,
                    const struct tm *local, uint32_t asked_s, uint32_t *granted_s)
{
    return tl_policy_decide(policy, role, scopes, local, asked_s, granted_s, NULL);
}

int tl_policy_command_allowed(const tl_policy_t *policy, const char *role, unsigned scopes,
                              const struct tm *local, const char *command)
{
    const struct rule *rule = matching_rule(policy, role, scopes, local);
    for (size_t i = 0; rule != NULL && command != NULL && i < rule->command_count; i++)
        if (strcmp(rule->commands[i], command) == 0)
            return 0;
    return TL_EDENIED;
}

uint64_t tl_policy_consent_timeout_ms(const tl_policy_t *policy)
{
    return policy != NULL ? policy->consent_timeout_ms : 0;
}

/* ---- the consent object ------------------------------------------------------------ */

struct record {
    tl_grant_t grant;
    unsigned expiry_seen : 1; /* its expiry was acted on (or had passed at start) */
    unsigned recorded : 1;    /* on disk: only then does it count */
};

/* A new grant waiting for the write that records it. */
struct recording {
    struct recording *next;
    tl_consent_t *consent;
    char grant[24];
    char question[24]; /* "" for the policy */
    char by[8];
    uint64_t token;
    tl_consent_request_t request;
    tl_consent_approved_fn done;
    void *done_data;
};

struct question {
    struct question *next;
    tl_consent_t *consent;
    uv_timer_t timer;
    char id[24];
    uint64_t token;
    tl_consent_request_t request;
    int64_t asked_ms;
    int64_t deadline_ms;
    /* A command under a grant that asks for each one, not a session.request. */
    bool command;
    char grant[24];
    json_t *what; /* the exec's argv, or the runbook's {"name","args"} */
    char command_line[TL_CONSENT_MAX_COMMAND_TEXT];
};

struct tl_consent {
    uv_loop_t *loop;
    tl_consent_events_t events;
    void *data;
    char path[4096 + 32];
    char dir[4096];
    tl_policy_t *policy;
    uint64_t timeout_ms;
    int64_t (*now_ms)(void);
    struct record *records;
    size_t count;
    size_t capacity;
    uint64_t next_grant;
    uint64_t next_question;
    struct question *questions;
    size_t pending;
    uv_timer_t expiry;
    tl_storage_t *storage;
    tl_storage_t *own_storage;    /* made here when the owner gave none */
    tl_storage_file_t *file;      /* grants.json */
    struct recording *recordings; /* new grants waiting for their write */
    size_t open_handles;          /* released when this reaches 0 after free (the file counts) */
    unsigned freeing : 1;
};

static int64_t now(const tl_consent_t *consent)
{
    return consent->now_ms != NULL ? consent->now_ms() : tl_wall_ms();
}

static int grant_live(const tl_grant_t *grant, int64_t at)
{
    return grant->ended_ms == 0 && at < grant->expires_ms;
}

/* A grant counts once it is on disk. */
static int record_live(const struct record *record, int64_t at)
{
    return record->recorded && grant_live(&record->grant, at);
}

json_t *tl_grant_json(const tl_grant_t *grant, int64_t now_ms)
{
    const char *state = grant->ended_ms != 0          ? "ended"
                        : now_ms >= grant->expires_ms ? "expired"
                                                      : "live";
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:b, s:s}", "id", grant->id,
                  "ticket", grant->ticket, "technician", grant->technician, "role", grant->role,
                  "scopes", tl_scope_names(grant->scopes), "reason", grant->reason, "by", grant->by,
                  "granted_ms", (json_int_t)grant->granted_ms, "expires_ms",
                  (json_int_t)grant->expires_ms, "live", grant_live(grant, now_ms), "state", state);
    if (out != NULL && grant->ended_ms != 0) {
        json_object_set_new(out, "ended_ms", json_integer(grant->ended_ms));
        json_object_set_new(out, "end_reason", json_string(grant->end_reason));
    }
    if (out != NULL && grant->each_command)
        json_object_set_new(out, "each_command", json_true());
    if (out != NULL && grant->ends_with_shell)
        json_object_set_new(out, "ends_with_shell", json_true());
    if (out != NULL && grant->push)
        json_object_set_new(out, "push", json_true());
    return out;
}

/* The grant as stored in grants.json: the fields of docs/consent.md, nothing derived. */
static json_t *grant_record_json(const tl_grant_t *grant)
{
    json_t *out = tl_grant_json(grant, 0);
    if (out != NULL) {
        json_object_del(out, "live");
        json_object_del(out, "state");
    }
    return out;
}

static int copy_field(json_t *item, const char *key, char *out, size_t max, int free_text)
{
    json_t *value = json_object_get(item, key);
    if (!json_is_string(value))
        return TL_EINVAL;
    size_t len = json_string_length(value);
    const char *text = json_string_value(value);
    if (strlen(text) != len || !text_ok(text, len, max, free_text))
        return TL_EINVAL;
    memcpy(out, text, len + 1);
    return 0;
}

static int time_field(json_t *item, const char *key, int64_t *out)
{
    json_t *value = json_object_get(item, key);
    if (!json_is_integer(value) || json_integer_value(value) < 0)
        return TL_EINVAL;
    *out = json_integer_value(value);
    return 0;
}

/* One record of grants.json; every field checked, since it decides what a relay may do. */
static int grant_from_json(json_t *item, tl_grant_t *grant, uint64_t *number)
{
    memset(grant, 0, sizeof *grant);
    if (!json_is_object(item) || copy_field(item, "id", grant->id, sizeof grant->id - 1, 0) ||
        copy_field(item, "ticket", grant->ticket, TL_CONSENT_MAX_NAME, 0) ||
        copy_field(item, "technician", grant->technician, TL_CONSENT_MAX_NAME, 0) ||
        copy_field(item, "role", grant->role, sizeof grant->role - 1, 0) ||
        copy_field(item, "reason", grant->reason, TL_CONSENT_MAX_REASON, 1) ||
        copy_field(item, "by", grant->by, sizeof grant->by - 1, 0) ||
        time_field(item, "granted_ms", &grant->granted_ms) ||
        time_field(item, "expires_ms", &grant->expires_ms))
        return TL_EINVAL;
    char *end;
    if (strncmp(grant->id, "G-", 2) != 0 || grant->id[2] < '1' || grant->id[2] > '9')
        return TL_EINVAL;
    errno = 0;
    unsigned long long n = strtoull(grant->id + 2, &end, 10);
    if (errno != 0 || *end != '\0')
        return TL_EINVAL;
    *number = n;
    if (session_role(grant->role) < 0 ||
        (strcmp(grant->by, "user") != 0 && strcmp(grant->by, "policy") != 0))
        return TL_EINVAL;
    json_t *scopes = json_object_get(item, "scopes");
    size_t i;
    json_t *scope;
    if (!json_is_array(scopes) || json_array_size(scopes) == 0)
        return TL_EINVAL;
    json_array_foreach(scopes, i, scope) {
        unsigned bit = tl_scope_bit(json_string_value(scope));
        if (bit == 0)
            return TL_EINVAL;
        grant->scopes |= bit;
    }
    if (json_object_get(item, "ended_ms") != NULL) {
        if (time_field(item, "ended_ms", &grant->ended_ms) != 0 || grant->ended_ms == 0 ||
            copy_field(item, "end_reason", grant->end_reason, sizeof grant->end_reason - 1, 1))
            return TL_EINVAL;
    }
    json_t *each = json_object_get(item, "each_command");
    json_t *shell_bound = json_object_get(item, "ends_with_shell");
    json_t *push = json_object_get(item, "push");
    if ((each != NULL && !json_is_boolean(each)) ||
        (shell_bound != NULL && !json_is_boolean(shell_bound)) ||
        (push != NULL && !json_is_boolean(push)))
        return TL_EINVAL;
    grant->each_command = json_is_true(each);
    grant->ends_with_shell = json_is_true(shell_bound);
    grant->push = json_is_true(push) && (grant->scopes & TL_SCOPE_FILES);
    return 0;
}

static int64_t record_over_ms(const tl_grant_t *grant)
{
    return grant->ended_ms != 0 && grant->ended_ms < grant->expires_ms ? grant->ended_ms
                                                                       : grant->expires_ms;
}

/* Drops ended and expired records older than the keeping time, and the oldest past the cap. */
static void prune(tl_consent_t *consent, size_t room_for)
{
    int64_t at = now(consent);
    size_t kept = 0;
    for (size_t i = 0; i < consent->count; i++) {
        const tl_grant_t *grant = &consent->records[i].grant;
        if (!grant_live(grant, at) && record_over_ms(grant) + TL_CONSENT_KEEP_MS < at)
            continue;
        consent->records[kept++] = consent->records[i];
    }
    consent->count = kept;
    while (consent->count + room_for > TL_CONSENT_MAX_RECORDS) {
        /* Records are in grant order: the first one not live is the oldest to let go. */
        size_t victim = consent->count;
        for (size_t i = 0; i < consent->count; i++) {
            if (!grant_live(&consent->records[i].grant, at)) {
                victim = i;
                break;
            }
        }
        if (victim == consent->count)
            return;
        memmove(&consent->records[victim], &consent->records[victim + 1],
                (consent->count - victim - 1) * sizeof *consent->records);
        consent->count--;
    }
}

/* grants.json as it should be now: rendered on the loop, written on the storage lane. */
static char *render_grants(void *owner, size_t *len)
{
    tl_consent_t *consent = owner;
    json_t *grants = json_array();
    json_t *doc = json_pack("{s:i, s:I, s:o}", "version", 1, "next_id",
                            (json_int_t)consent->next_grant, "grants", grants);
    if (doc == NULL)
        return NULL;
    for (size_t i = 0; i < consent->count; i++)
        json_array_append_new(grants, grant_record_json(&consent->records[i].grant));
    char *text = tl_text_json_line(doc, JSON_INDENT(2), len);
    json_decref(doc);
    return text;
}

static void save_logged(void *data, int rc)
{
    tl_consent_t *consent = data;
    if (rc != 0)
        tl_log_error("cannot write grants file=%s reason=\"%s\"", consent->path, tl_strerror(rc));
}

/* Writes the current state, off the loop; a failure is logged. */
static void save(tl_consent_t *consent)
{
    int rc = tl_storage_file_save(consent->file, save_logged, consent);
    if (rc != 0)
        save_logged(consent, rc);
}

static int load(tl_consent_t *consent, char *problem, size_t size)
{
    json_error_t error;
    if (access(consent->path, F_OK) != 0) {
        consent->next_grant = 1;
        return 0;
    }
    json_t *doc = json_load_file(consent->path, JSON_REJECT_DUPLICATES, &error);
    int rc = TL_EINVAL;
    if (doc == NULL) {
        tl_format(problem, size, "%s: not JSON: %s", consent->path, error.text);
        return rc;
    }
    json_t *grants = json_object_get(doc, "grants");
    json_t *next = json_object_get(doc, "next_id");
    if (!json_is_array(grants) || !json_is_integer(next) || json_integer_value(next) < 1 ||
        json_array_size(grants) > TL_CONSENT_MAX_RECORDS) {
        tl_format(problem, size, "%s: want {\"next_id\":N,\"grants\":[...]} with at most %d grants",
                  consent->path, TL_CONSENT_MAX_RECORDS);
        goto out;
    }
    consent->next_grant = (uint64_t)json_integer_value(next);
    consent->records = calloc(json_array_size(grants) + 1, sizeof *consent->records);
    if (consent->records == NULL) {
        rc = TL_ENOMEM;
        tl_format(problem, size, "%s: %s", consent->path, tl_strerror(rc));
        goto out;
    }
    consent->capacity = json_array_size(grants) + 1;
    int64_t at = now(consent);
    size_t i;
    json_t *item;
    json_array_foreach(grants, i, item) {
        struct record *record = &consent->records[consent->count];
        uint64_t number = 0;
        if (grant_from_json(item, &record->grant, &number) != 0) {
            tl_format(problem, size, "%s: grants[%zu] is damaged", consent->path, i);
            goto out;
        }
        if (number >= consent->next_grant)
            consent->next_grant = number + 1; /* ids are never reused */
        record->expiry_seen = !grant_live(&record->grant, at);
        record->recorded = 1;
        consent->count++;
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static void release_if_done(tl_consent_t *consent)
{
    if (!consent->freeing || consent->open_handles > 0)
        return;
    tl_storage_free(consent->own_storage);
    tl_policy_free(consent->policy);
    free(consent->records);
    free(consent);
}

static void file_closed(void *owner)
{
    tl_consent_t *consent = owner;
    consent->open_handles--;
    release_if_done(consent);
}

static void expiry_closed(uv_handle_t *handle)
{
    tl_consent_t *consent = handle->data;
    consent->open_handles--;
    release_if_done(consent);
}

static void question_closed(uv_handle_t *handle)
{
    struct question *question = handle->data;
    tl_consent_t *consent = question->consent;
    tl_consent_request_clear(&question->request);
    json_decref(question->what);
    free(question);
    consent->open_handles--;
    release_if_done(consent);
}

static void emit(tl_consent_t *consent, json_t *event)
{
    if (event != NULL && consent->events.on_event != NULL && !consent->freeing)
        consent->events.on_event(consent->data, event);
    json_decref(event);
}

static void answer(tl_consent_t *consent, uint64_t token, int error, const char *message,
                   const tl_grant_t *grant, const char *by)
{
    tl_consent_answer_t result = {error, message, grant, by};
    if (consent->events.on_answer != NULL && !consent->freeing)
        consent->events.on_answer(consent->data, token, &result);
}

static json_t *question_json(const struct question *question)
{
    const tl_consent_request_t *request = &question->request;
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:I, s:I}", "id", question->id, "ticket",
                  request->ticket, "technician", request->technician, "role", request->role,
                  "scopes", tl_scope_names(request->scopes), "reason", request->reason,
                  "duration_s", (json_int_t)request->duration_s, "asked_ms",
                  (json_int_t)question->asked_ms, "deadline_ms", (json_int_t)question->deadline_ms);
    if (out != NULL && request->runbook != NULL)
        json_object_set(out, "runbook", request->runbook);
    if (out != NULL && question->command) {
        /* One command: the grant it runs under and the exact command line. */
        json_object_del(out, "duration_s");
        json_object_set_new(out, "grant", json_string(question->grant));
        json_object_set_new(out, "command_line", json_string(question->command_line));
        json_object_set(out, json_is_array(question->what) ? "command" : "runbook", question->what);
    } else if (out != NULL) {
        /* What the user may answer besides yes and no (docs/consent.md). */
        json_object_set_new(out, "each_possible",
                            json_boolean((request->scopes & (TL_SCOPE_EXEC | TL_SCOPE_FIX)) &&
                                         !(request->scopes & TL_SCOPE_SHELL)));
        json_object_set_new(out, "ends_with_shell",
                            json_boolean((request->scopes & TL_SCOPE_SHELL) != 0));
        if (request->scopes & TL_SCOPE_FILES)
            json_object_set_new(out, "push", json_boolean(request->push));
    }
    return out;
}

/* What was decided on one command, for the user's terminal. */
static void emit_command(tl_consent_t *consent, const char *question, const tl_grant_t *grant,
                         const char *command_line, const char *decision, const char *by)
{
    emit(consent,
         json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s, s:s}", "event",
                   tl_control_type_name(TL_CONTROL_EVENT_COMMAND), "question", question, "grant",
                   grant->id, "ticket", grant->ticket, "technician", grant->technician,
                   "command_line", command_line, "decision", decision, "by", by));
}

static void answer_command(tl_consent_t *consent, uint64_t token, int error, const char *message,
                           const char *by)
{
    tl_consent_answer_t result = {error, message, NULL, by};
    if (consent->events.on_command != NULL && !consent->freeing)
        consent->events.on_command(consent->data, token, &result);
}

static void emit_denied(tl_consent_t *consent, const char *question,
                        const tl_consent_request_t *request, const char *why)
{
    json_t *event =
        json_pack("{s:s, s:s?, s:s, s:s, s:s}", "event",
                  tl_control_type_name(TL_CONTROL_EVENT_DENIED), "question", question, "ticket",
                  request->ticket, "technician", request->technician, "reason", why);
    emit(consent, event);
}

static void emit_granted(tl_consent_t *consent, const char *question, const tl_grant_t *grant,
                         const char *by)
{
    json_t *event =
        json_pack("{s:s, s:s?, s:o, s:s}", "event", tl_control_type_name(TL_CONTROL_EVENT_GRANTED),
                  "question", question, "grant", tl_grant_json(grant, now(consent)), "by", by);
    emit(consent, event);
}

static void arm_expiry(tl_consent_t *consent);
static void settle_commands_of(tl_consent_t *consent, const tl_grant_t *grant);

static void on_expiry(uv_timer_t *timer)
{
    tl_consent_t *consent = timer->data;
    int64_t at = now(consent);
    /* on_ended may end other grants through tl_consent_end: walk by index, re-checking. */
    for (size_t i = 0; i < consent->count; i++) {
        struct record *record = &consent->records[i];
        if (!record->recorded || record->expiry_seen || record->grant.ended_ms != 0 ||
            record->grant.expires_ms > at)
            continue;
        record->expiry_seen = 1;
        tl_grant_t grant = record->grant;
        tl_log_info("grant expired grant=%s ticket=%s technician=%s", grant.id, grant.ticket,
                    grant.technician);
        settle_commands_of(consent, &grant);
        if (consent->events.on_ended != NULL)
            consent->events.on_ended(consent->data, &grant, "expired");
        emit(consent,
             json_pack("{s:s, s:s, s:s, s:s, s:s}", "event",
                       tl_control_type_name(TL_CONTROL_EVENT_ENDED), "grant", grant.id, "ticket",
                       grant.ticket, "technician", grant.technician, "reason", "expired"));
    }
    arm_expiry(consent);
}

static void arm_expiry(tl_consent_t *consent)
{
    if (consent->freeing)
        return;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < consent->count; i++) {
        const struct record *record = &consent->records[i];
        if (record->recorded && !record->expiry_seen && record->grant.ended_ms == 0 &&
            record->grant.expires_ms < next)
            next = record->grant.expires_ms;
    }
    uv_timer_stop(&consent->expiry);
    if (next == INT64_MAX)
        return;
    int64_t delay = next - now(consent);
    /* The wall clock and the loop's clock differ a little: never spin, never fire early twice. */
    uv_timer_start(&consent->expiry, on_expiry, delay > 0 ? (uint64_t)delay + 1 : 1, 0);
}

tl_consent_t *tl_consent_new(uv_loop_t *loop, const tl_consent_config_t *config,
                             const tl_consent_events_t *events, void *data, int *err, char *problem,
                             size_t size)
{
    tl_consent_t *consent = calloc(1, sizeof *consent);
    if (consent == NULL) {
        tl_policy_free(config->policy);
        *err = TL_ENOMEM;
        tl_format(problem, size, "%s", tl_strerror(TL_ENOMEM));
        return NULL;
    }
    consent->loop = loop;
    if (events != NULL)
        consent->events = *events;
    consent->data = data;
    consent->policy = config->policy;
    consent->now_ms = config->now_ms;
    consent->next_question = 1;
    consent->timeout_ms = config->timeout_ms;
    if (consent->timeout_ms == 0)
        consent->timeout_ms = tl_policy_consent_timeout_ms(config->policy);
    if (consent->timeout_ms == 0)
        consent->timeout_ms = TL_CONSENT_DEFAULT_TIMEOUT_MS;
    if (tl_format(consent->dir, sizeof consent->dir, "%s", config->state_dir) != 0) {
        *err = TL_EINVAL;
        tl_format(problem, size, "state directory name too long");
        goto fail;
    }
    snprintf(consent->path, sizeof consent->path, "%s/%s", config->state_dir,
             TL_CONSENT_GRANTS_FILE);
    if ((*err = load(consent, problem, size)) != 0)
        goto fail;
    prune(consent, 0);
    consent->storage = config->storage;
    if (consent->storage == NULL)
        consent->storage = consent->own_storage = tl_storage_new(loop, NULL, err);
    if (consent->storage != NULL)
        consent->file =
            tl_storage_file_new(consent->storage, consent->path, render_grants, consent, err);
    if (consent->file == NULL) {
        tl_format(problem, size, "%s", tl_strerror(*err));
        goto fail;
    }
    uv_timer_init(loop, &consent->expiry);
    consent->expiry.data = consent;
    consent->open_handles = 2; /* the expiry timer and the grants file */
    arm_expiry(consent);
    return consent;
fail:
    tl_storage_free(consent->own_storage);
    tl_policy_free(consent->policy);
    free(consent->records);
    free(consent);
    return NULL;
}

uint64_t tl_consent_timeout_ms(const tl_consent_t *consent)
{
    return consent->timeout_ms;
}

int tl_consent_writing(const tl_consent_t *consent)
{
    return tl_storage_file_busy(consent->file);
}

static void question_drop(tl_consent_t *consent, struct question *question)
{
    for (struct question **at = &consent->questions; *at != NULL; at = &(*at)->next) {
        if (*at == question) {
            *at = question->next;
            break;
        }
    }
    consent->pending--;
    uv_timer_stop(&question->timer);
    uv_close((uv_handle_t *)&question->timer, question_closed);
}

void tl_consent_free(tl_consent_t *consent)
{
    if (consent == NULL || consent->freeing)
        return;
    consent->freeing = 1;
    while (consent->questions != NULL)
        question_drop(consent, consent->questions);
    /* Approvals still being recorded hear of the end now; their writes still finish. */
    for (struct recording *recording = consent->recordings; recording != NULL;
         recording = recording->next) {
        tl_consent_approved_fn done = recording->done;
        recording->done = NULL;
        if (done != NULL)
            done(recording->done_data, TL_ECLOSED, NULL, "the agent is stopping");
    }
    uv_timer_stop(&consent->expiry);
    uv_close((uv_handle_t *)&consent->expiry, expiry_closed);
    tl_storage_file_close(consent->file, file_closed);
}

/* A new record, not yet on disk (it counts once recorded). */
static tl_grant_t *add_grant(tl_consent_t *consent, const tl_consent_request_t *request,
                             uint32_t duration_s, const char *by, unsigned how, int *err)
{
    prune(consent, 1);
    int rc = tl_array_grow(&consent->records, &consent->capacity, consent->count + 1,
                           sizeof *consent->records, 8, SIZE_MAX);
    if (rc != 0) {
        *err = rc;
        return NULL;
    }
    struct record *record = &consent->records[consent->count];
    memset(record, 0, sizeof *record);
    tl_grant_t *grant = &record->grant;
    snprintf(grant->id, sizeof grant->id, "G-%llu", (unsigned long long)consent->next_grant);
    memcpy(grant->ticket, request->ticket, sizeof grant->ticket);
    memcpy(grant->technician, request->technician, sizeof grant->technician);
    memcpy(grant->role, request->role, sizeof grant->role);
    memcpy(grant->reason, request->reason, sizeof grant->reason);
    grant->scopes = request->scopes;
    snprintf(grant->by, sizeof grant->by, "%s", by);
    grant->granted_ms = now(consent);
    grant->expires_ms = grant->granted_ms + (int64_t)duration_s * 1000;
    grant->each_command = (how & TL_CONSENT_EACH) != 0;
    /* A shell the user allowed is allowed for that shell (docs/consent.md). */
    grant->ends_with_shell =
        strcmp(by, "user") == 0 && (grant->scopes & TL_SCOPE_SHELL) && !(how & TL_CONSENT_KEEP);
    /* Copying to the machine needs the user's own yes to it: a policy grant only pulls. */
    grant->push = request->push && strcmp(by, "user") == 0 && !(how & TL_CONSENT_PULL_ONLY);
    consent->count++;
    consent->next_grant++; /* never given back: a later grant may already hold the next id */
    return grant;
}

static struct record *record_by_id(tl_consent_t *consent, const char *id)
{
    for (size_t i = 0; i < consent->count; i++)
        if (strcmp(consent->records[i].grant.id, id) == 0)
            return &consent->records[i];
    return NULL;
}

static size_t live_count(const tl_consent_t *consent, int64_t at)
{
    size_t live = 0;
    for (size_t i = 0; i < consent->count; i++)
        live += grant_live(&consent->records[i].grant, at); /* those being recorded too */
    return live;
}

/*
 * The write that holds a new grant finished. Only now is the grant given:
 * a crash before this point must not leave the relay or the user believing
 * in a grant the agent would not remember.
 */
static void grant_recorded(void *data, int rc)
{
    struct recording *recording = data;
    tl_consent_t *consent = recording->consent;
    const char *question = recording->question[0] ? recording->question : NULL;
    for (struct recording **at = &consent->recordings; *at != NULL; at = &(*at)->next) {
        if (*at == recording) {
            *at = recording->next;
            break;
        }
    }
    struct record *record = record_by_id(consent, recording->grant);
    if (rc == 0 && record == NULL)
        rc = TL_EIO; /* cannot happen: only a failed write drops a record */
    if (rc != 0) {
        tl_log_error("grant not given: it could not be recorded grant=%s ticket=%s reason=\"%s\"",
                     recording->grant, recording->request.ticket, tl_strerror(rc));
        if (record != NULL) {
            size_t at = (size_t)(record - consent->records);
            memmove(record, record + 1, (consent->count - at - 1) * sizeof *record);
            consent->count--;
        }
        if (!consent->freeing) {
            answer(consent, recording->token, TL_EIO, "the agent could not record the grant", NULL,
                   NULL);
            emit_denied(consent, question, &recording->request, "the grant could not be recorded");
            if (recording->done != NULL)
                recording->done(recording->done_data, TL_EIO, NULL,
                                "the grant could not be recorded (see the agent's log)");
        }
        free(recording);
        return;
    }
    record->recorded = 1;
    /* Callbacks may change the records: hand them a copy. */
    tl_grant_t copy = record->grant;
    tl_log_info("grant given grant=%s ticket=%s technician=%s role=%s by=%s duration_s=%lld",
                copy.id, copy.ticket, copy.technician, copy.role, copy.by,
                (long long)((copy.expires_ms - copy.granted_ms) / 1000));
    if (!consent->freeing) {
        arm_expiry(consent);
        answer(consent, recording->token, 0, NULL, &copy, recording->by);
        emit_granted(consent, question, &copy, recording->by);
        if (recording->done != NULL)
            recording->done(recording->done_data, 0, &copy, NULL);
    }
    free(recording);
}

/*
 * Adds the grant and has it written; the answer comes from grant_recorded.
 * On an immediate failure answers the error at once and returns it.
 */
static int grant_and_answer(tl_consent_t *consent, const char *question,
                            const tl_consent_request_t *request, uint32_t duration_s,
                            const char *by, unsigned how, uint64_t token,
                            tl_consent_approved_fn done, void *done_data)
{
    int err = 0;
    if (live_count(consent, now(consent)) >= TL_CONSENT_MAX_LIVE) {
        answer(consent, token, TL_EFULL, "too many live grants on this machine", NULL, NULL);
        emit_denied(consent, question, request, "too many live grants");
        return TL_EFULL;
    }
    struct recording *recording = calloc(1, sizeof *recording);
    tl_grant_t *grant =
        recording != NULL ? add_grant(consent, request, duration_s, by, how, &err) : NULL;
    if (grant != NULL) {
        recording->consent = consent;
        snprintf(recording->grant, sizeof recording->grant, "%s", grant->id);
        snprintf(recording->question, sizeof recording->question, "%s", question ? question : "");
        snprintf(recording->by, sizeof recording->by, "%s", by);
        recording->token = token;
        recording->request = *request;
        recording->done = done;
        recording->done_data = done_data;
        recording->next = consent->recordings;
        consent->recordings = recording;
        err = tl_storage_file_save(consent->file, grant_recorded, recording);
        if (err == 0)
            return 0;
        consent->recordings = recording->next;
        consent->count--; /* the record just added */
    }
    free(recording);
    tl_log_error("grant not given: it could not be recorded ticket=%s reason=\"%s\"",
                 request->ticket, tl_strerror(err ? err : TL_ENOMEM));
    answer(consent, token, TL_EIO, "the agent could not record the grant", NULL, NULL);
    emit_denied(consent, question, request, "the grant could not be recorded");
    return TL_EIO;
}

/* Requests and commands have tokens of their own: a token names one of each kind. */
static struct question *question_by_token(tl_consent_t *consent, uint64_t token, bool command)
{
    for (struct question *q = consent->questions; q != NULL; q = q->next)
        if (q->token == token && q->command == command)
            return q;
    return NULL;
}

static struct question *question_by_id(tl_consent_t *consent, const char *id)
{
    for (struct question *q = consent->questions; id != NULL && q != NULL; q = q->next)
        if (strcmp(q->id, id) == 0)
            return q;
    return NULL;
}

static void on_question_timeout(uv_timer_t *timer)
{
    struct question *question = timer->data;
    tl_consent_t *consent = question->consent;
    tl_log_info("question timed out question=%s ticket=%s technician=%s", question->id,
                question->request.ticket, question->request.technician);
    uint64_t token = question->token;
    char id[sizeof question->id];
    tl_consent_request_t request = question->request;
    snprintf(id, sizeof id, "%s", question->id);
    if (question->command) {
        const tl_grant_t *grant = tl_consent_find(consent, question->grant);
        tl_grant_t copy = {0};
        if (grant != NULL)
            copy = *grant;
        char line[TL_CONSENT_MAX_COMMAND_TEXT];
        snprintf(line, sizeof line, "%s", question->command_line);
        question_drop(consent, question);
        answer_command(consent, token, TL_ETIMEOUT,
                       "nobody answered on the machine; the command was not run", "user");
        if (grant != NULL)
            emit_command(consent, id, &copy, line, "unanswered", "user");
        return;
    }
    question_drop(consent, question);
    answer(consent, token, TL_ETIMEOUT, "nobody answered the question on the machine", NULL, NULL);
    emit_denied(consent, id, &request, "nobody answered in time");
}

void tl_consent_request(tl_consent_t *consent, const tl_consent_request_t *request, uint64_t token)
{
    if (consent->freeing)
        return;
    char scopes[96];
    tl_scope_text(request->scopes, scopes, sizeof scopes);
    if (session_role(request->role) < 0) {
        char message[96];
        snprintf(message, sizeof message, "the role %s never gets a session", request->role);
        tl_log_warn("session refused ticket=%s technician=%s role=%s reason=role", request->ticket,
                    request->technician, request->role);
        answer(consent, token, TL_EDENIED, message, NULL, NULL);
        emit_denied(consent, NULL, request, message);
        return;
    }
    if (question_by_token(consent, token, false) != NULL) {
        answer(consent, token, TL_EINVAL, "a request with this id is already waiting", NULL, NULL);
        return;
    }
    int64_t at = now(consent);
    /* A live grant that already covers it: the technician re-attaches without a new question. */
    for (size_t i = consent->count; i-- > 0;) {
        const tl_grant_t *grant = &consent->records[i].grant;
        if (record_live(&consent->records[i], at) && strcmp(grant->ticket, request->ticket) == 0 &&
            strcmp(grant->technician, request->technician) == 0 &&
            strcmp(grant->role, request->role) == 0 && (request->scopes & ~grant->scopes) == 0) {
            tl_grant_t copy = *grant;
            tl_log_info("grant reused grant=%s ticket=%s technician=%s", copy.id, copy.ticket,
                        copy.technician);
            answer(consent, token, 0, NULL, &copy, "existing");
            emit_granted(consent, NULL, &copy, "existing");
            return;
        }
    }
    struct tm local;
    time_t seconds = (time_t)(at / 1000);
    uint32_t granted_s = 0;
    int each = 0;
    if (consent->policy != NULL && localtime_r(&seconds, &local) != NULL &&
        tl_policy_decide(consent->policy, request->role, request->scopes, &local,
                         request->duration_s, &granted_s, &each) == 0) {
        grant_and_answer(consent, NULL, request, granted_s, "policy", each ? TL_CONSENT_EACH : 0,
                         token, NULL, NULL);
        return;
    }
    if (consent->pending >= TL_CONSENT_MAX_PENDING) {
        answer(consent, token, TL_EFULL, "too many questions are waiting for the user", NULL, NULL);
        emit_denied(consent, NULL, request, "too many questions waiting");
        return;
    }
    struct question *question = calloc(1, sizeof *question);
    if (question == NULL) {
        answer(consent, token, TL_EIO, tl_strerror(TL_ENOMEM), NULL, NULL);
        return;
    }
    question->consent = consent;
    question->token = token;
    question->request = *request;
    json_incref(question->request.runbook);
    question->asked_ms = at;
    question->deadline_ms = at + (int64_t)consent->timeout_ms;
    snprintf(question->id, sizeof question->id, "Q-%llu",
             (unsigned long long)consent->next_question++);
    uv_timer_init(consent->loop, &question->timer);
    question->timer.data = question;
    consent->open_handles++;
    uv_timer_start(&question->timer, on_question_timeout, consent->timeout_ms, 0);
    question->next = consent->questions;
    consent->questions = question;
    consent->pending++;
    tl_log_info("question asked question=%s ticket=%s technician=%s role=%s scopes=\"%s\"",
                question->id, request->ticket, request->technician, request->role, scopes);
    json_t *event = question_json(question);
    json_object_set_new(event, "event",
                        json_string(tl_control_type_name(TL_CONTROL_EVENT_QUESTION)));
    emit(consent, event);
}

int tl_consent_cancel(tl_consent_t *consent, uint64_t token, const char *why)
{
    struct question *question = question_by_token(consent, token, false);
    if (question == NULL)
        return TL_ENOTFOUND;
    char id[sizeof question->id];
    tl_consent_request_t request = question->request;
    snprintf(id, sizeof id, "%s", question->id);
    tl_log_info("question withdrawn question=%s reason=\"%s\"", id, why);
    question_drop(consent, question);
    emit_denied(consent, id, &request, why);
    return 0;
}

int tl_consent_cancel_command(tl_consent_t *consent, uint64_t token, const char *why)
{
    struct question *question = question_by_token(consent, token, true);
    if (question == NULL)
        return TL_ENOTFOUND;
    const tl_grant_t *grant = tl_consent_find(consent, question->grant);
    tl_grant_t copy = {0};
    if (grant != NULL)
        copy = *grant;
    char id[sizeof question->id], line[TL_CONSENT_MAX_COMMAND_TEXT];
    snprintf(id, sizeof id, "%s", question->id);
    snprintf(line, sizeof line, "%s", question->command_line);
    tl_log_info("command question withdrawn question=%s reason=\"%s\"", id, why);
    question_drop(consent, question);
    if (grant != NULL)
        emit_command(consent, id, &copy, line, "withdrawn", "user");
    return 0;
}

void tl_consent_cancel_all(tl_consent_t *consent, const char *why)
{
    while (consent->questions != NULL) {
        if (consent->questions->command)
            tl_consent_cancel_command(consent, consent->questions->token, why);
        else
            tl_consent_cancel(consent, consent->questions->token, why);
    }
}

/* The grant of these questions ended: each is answered no (its channel is refused). */
static void settle_commands_of(tl_consent_t *consent, const tl_grant_t *grant)
{
    struct question *next;
    for (struct question *q = consent->questions; q != NULL; q = next) {
        next = q->next;
        if (!q->command || strcmp(q->grant, grant->id) != 0)
            continue;
        uint64_t token = q->token;
        char id[sizeof q->id], line[TL_CONSENT_MAX_COMMAND_TEXT];
        snprintf(id, sizeof id, "%s", q->id);
        snprintf(line, sizeof line, "%s", q->command_line);
        question_drop(consent, q);
        answer_command(consent, token, TL_EDENIED, "the grant ended; the command was not run",
                       "user");
        emit_command(consent, id, grant, line, "withdrawn", "user");
        next = consent->questions; /* callbacks may have changed the list */
    }
}

/* Whose yes a command needs: the exec's argv[0], or "runbook:NAME". */
static int command_key(const char *type, json_t *what, char *out, size_t size)
{
    if (strcmp(type, "exec") == 0 && json_is_string(json_array_get(what, 0)))
        return tl_format(out, size, "%s", json_string_value(json_array_get(what, 0)));
    if (strcmp(type, "runbook") == 0 && json_is_string(json_object_get(what, "name")))
        return tl_format(out, size, "runbook:%s", json_string_value(json_object_get(what, "name")));
    return TL_EINVAL;
}

/* "restart-service" SERVICE="cups": a runbook run as a question shows it. */
static void runbook_text(json_t *what, char *out, size_t size)
{
    json_t *words = json_array();
    json_array_append(words, json_object_get(what, "name"));
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(what, "args"), key, value) {
        char *word = NULL;
        if (json_is_string(value) && asprintf(&word, "%s=%s", key, json_string_value(value)) >= 0)
            json_array_append_new(words, json_string(word));
        free(word);
    }
    tl_consent_command_text(words, out, size);
    json_decref(words);
}

int tl_consent_ask_command(tl_consent_t *consent, const tl_grant_t *grant, const char *type,
                           json_t *what, uint64_t token, int *asked, int *allowed, char *message,
                           size_t size)
{
    *asked = 0;
    *allowed = 0;
    char key[TL_POLICY_MAX_COMMAND_BYTES + 16], line[TL_CONSENT_MAX_COMMAND_TEXT];
    if (consent->freeing || type == NULL ||
        (strcmp(type, "exec") == 0 ? !json_is_string(json_array_get(what, 0))
                                   : !json_is_string(json_object_get(what, "name")))) {
        tl_format(message, size, "refused: a command under grant %s must name what it runs",
                  grant->id);
        return 0;
    }
    bool runbook = strcmp(type, "runbook") == 0;
    if (runbook)
        runbook_text(what, line, sizeof line);
    else
        tl_consent_command_text(what, line, sizeof line);
    if (strcmp(grant->by, "policy") == 0) {
        /* No one to ask: the policy's list, as it is now, decides; anything else is no. */
        int64_t at = now(consent);
        time_t seconds = (time_t)(at / 1000);
        struct tm local;
        /* A program name longer than any entry can be is in no list. */
        *allowed = command_key(type, what, key, sizeof key) == 0 &&
                   localtime_r(&seconds, &local) != NULL &&
                   tl_policy_command_allowed(consent->policy, grant->role, grant->scopes, &local,
                                             key) == 0;
        tl_log_info("command %s by the policy grant=%s ticket=%s", *allowed ? "allowed" : "refused",
                    grant->id, grant->ticket);
        if (!*allowed)
            tl_format(message, size,
                      "the unattended policy on this machine does not allow this command");
        emit_command(consent, NULL, grant, line, *allowed ? "allowed" : "declined", "policy");
        return 0;
    }
    if (consent->pending >= TL_CONSENT_MAX_PENDING) {
        tl_format(message, size, "too many questions are waiting for the user");
        return TL_EFULL;
    }
    struct question *question = calloc(1, sizeof *question);
    if (question == NULL) {
        tl_format(message, size, "%s", tl_strerror(TL_ENOMEM));
        return TL_ENOMEM;
    }
    int64_t at = now(consent);
    question->consent = consent;
    question->token = token;
    question->command = true;
    question->what = json_deep_copy(what);
    snprintf(question->grant, sizeof question->grant, "%s", grant->id);
    snprintf(question->command_line, sizeof question->command_line, "%s", line);
    tl_consent_request_t *request = &question->request;
    memcpy(request->ticket, grant->ticket, sizeof request->ticket);
    memcpy(request->technician, grant->technician, sizeof request->technician);
    memcpy(request->role, grant->role, sizeof request->role);
    memcpy(request->reason, grant->reason, sizeof request->reason);
    request->scopes = runbook ? TL_SCOPE_FIX : TL_SCOPE_EXEC;
    question->asked_ms = at;
    question->deadline_ms = at + (int64_t)consent->timeout_ms;
    snprintf(question->id, sizeof question->id, "Q-%llu",
             (unsigned long long)consent->next_question++);
    uv_timer_init(consent->loop, &question->timer);
    question->timer.data = question;
    consent->open_handles++;
    uv_timer_start(&question->timer, on_question_timeout, consent->timeout_ms, 0);
    question->next = consent->questions;
    consent->questions = question;
    consent->pending++;
    *asked = 1;
    tl_log_info("command question asked question=%s grant=%s ticket=%s technician=%s", question->id,
                grant->id, grant->ticket, grant->technician);
    json_t *event = question_json(question);
    json_object_set_new(event, "event",
                        json_string(tl_control_type_name(TL_CONTROL_EVENT_QUESTION)));
    emit(consent, event);
    return 0;
}

/* The user said yes or no to one command. */
static int settle_command(tl_consent_t *consent, struct question *question, bool yes,
                          tl_consent_approved_fn done, void *done_data, char *message, size_t size)
{
    uint64_t token = question->token;
    char id[sizeof question->id], line[TL_CONSENT_MAX_COMMAND_TEXT];
    snprintf(id, sizeof id, "%s", question->id);
    snprintf(line, sizeof line, "%s", question->command_line);
    const tl_grant_t *live = tl_consent_find(consent, question->grant);
    question_drop(consent, question);
    if (live == NULL) {
        answer_command(consent, token, TL_EDENIED, "the grant ended; the command was not run",
                       "user");
        tl_format(message, size, "the grant of this command has ended");
        return TL_ENOTFOUND;
    }
    tl_grant_t copy = *live;
    tl_log_info("command %s question=%s grant=%s ticket=%s", yes ? "allowed" : "declined", id,
                copy.id, copy.ticket);
    answer_command(consent, token, yes ? 0 : TL_EDENIED,
                   yes ? NULL : "the user declined this command", "user");
    emit_command(consent, id, &copy, line, yes ? "allowed" : "declined", "user");
    if (yes && done != NULL)
        done(done_data, 0, &copy, NULL);
    return 0;
}

int tl_consent_approve(tl_consent_t *consent, const char *id, uint32_t duration_s, unsigned how,
                       tl_consent_approved_fn done, void *done_data, char *message, size_t size)
{
    struct question *question = question_by_id(consent, id);
    if (question == NULL) {
        tl_format(message, size, "no open question %s", id ? id : "");
        return TL_ENOTFOUND;
    }
    unsigned scopes = question->request.scopes;
    if (question->command && (how != 0 || duration_s != 0)) {
        tl_format(message, size, "%s asks about one command: answer it yes or no", id);
        return TL_EINVAL;
    }
    if (question->command)
        return settle_command(consent, question, true, done, done_data, message, size);
    if ((how & TL_CONSENT_EACH) && (scopes & TL_SCOPE_SHELL)) {
        tl_format(message, size,
                  "a shell cannot be asked command by command: answer yes (for the shell) or no");
        return TL_EINVAL;
    }
    if ((how & TL_CONSENT_EACH) && !(scopes & (TL_SCOPE_EXEC | TL_SCOPE_FIX))) {
        tl_format(message, size, "only commands and runbooks can be asked one by one");
        return TL_EINVAL;
    }
    if ((how & TL_CONSENT_KEEP) && !(scopes & TL_SCOPE_SHELL)) {
        tl_format(message, size,
                  "only a shell grant ends with its shell; there is nothing to keep");
        return TL_EINVAL;
    }
    if ((how & TL_CONSENT_PULL_ONLY) && !question->request.push) {
        tl_format(message, size, "the technician asked for no copying to this machine");
        return TL_EINVAL;
    }
    if (duration_s > question->request.duration_s) {
        char asked[32];
        tl_consent_duration_text(question->request.duration_s, asked, sizeof asked);
        tl_format(message, size, "the technician asked for %s; the answer may only shorten it",
                  asked);
        return TL_EINVAL;
    }
    if (duration_s == 0)
        duration_s = question->request.duration_s;
    uint64_t token = question->token;
    tl_consent_request_t request = question->request;
    char question_id[sizeof question->id];
    snprintf(question_id, sizeof question_id, "%s", question->id);
    question_drop(consent, question);
    int rc = grant_and_answer(consent, question_id, &request, duration_s, "user", how, token, done,
                              done_data);
    if (rc == TL_EFULL)
        tl_format(message, size, "too many live grants on this machine");
    else if (rc != 0)
        tl_format(message, size, "the grant could not be recorded (see the agent's log)");
    return rc;
}

int tl_consent_deny(tl_consent_t *consent, const char *id, char *message, size_t size)
{
    struct question *question = question_by_id(consent, id);
    if (question == NULL) {
        tl_format(message, size, "no open question %s", id ? id : "");
        return TL_ENOTFOUND;
    }
    if (question->command) {
        /* Declined either way (a grant that ended declines it too): nothing runs. */
        settle_command(consent, question, false, NULL, NULL, message, size);
        return 0;
    }
    uint64_t token = question->token;
    tl_consent_request_t request = question->request;
    char question_id[sizeof question->id];
    snprintf(question_id, sizeof question_id, "%s", question->id);
    tl_log_info("question declined question=%s ticket=%s technician=%s", question_id,
                request.ticket, request.technician);
    question_drop(consent, question);
    answer(consent, token, TL_EDENIED, "the user declined", NULL, NULL);
    emit_denied(consent, question_id, &request, "declined by the user");
    return 0;
}

int tl_consent_end(tl_consent_t *consent, const char *id, const char *reason, size_t *count,
                   char *message, size_t size)
{
    int64_t at = now(consent);
    size_t live = live_count(consent, at), ended = 0;
    if (count != NULL)
        *count = 0;
    /* Callbacks may change the records: they are handed copies. */
    tl_grant_t *copies = calloc(live ? live : 1, sizeof *copies);
    if (copies == NULL) {
        tl_format(message, size, "%s", tl_strerror(TL_ENOMEM));
        return TL_ENOMEM;
    }
    for (size_t i = 0; i < consent->count && ended < live; i++) {
        tl_grant_t *grant = &consent->records[i].grant;
        if (!record_live(&consent->records[i], at) || (id != NULL && strcmp(grant->id, id) != 0))
            continue;
        grant->ended_ms = at;
        snprintf(grant->end_reason, sizeof grant->end_reason, "%s", reason);
        consent->records[i].expiry_seen = 1;
        copies[ended++] = *grant;
    }
    if (count != NULL)
        *count = ended;
    if (id != NULL && ended == 0) {
        free(copies);
        tl_format(message, size, "no live grant %s", id);
        return TL_ENOTFOUND;
    }
    if (ended > 0) {
        /* Ended in memory at once, whatever the disk says: ending only takes rights away. */
        save(consent);
        arm_expiry(consent);
    }
    for (size_t i = 0; i < ended; i++) {
        tl_log_info("grant ended grant=%s ticket=%s reason=\"%s\"", copies[i].id, copies[i].ticket,
                    reason);
        settle_commands_of(consent, &copies[i]);
        if (consent->events.on_ended != NULL)
            consent->events.on_ended(consent->data, &copies[i], reason);
        emit(consent, json_pack("{s:s, s:s, s:s, s:s, s:s}", "event",
                                tl_control_type_name(TL_CONTROL_EVENT_ENDED), "grant", copies[i].id,
                                "ticket", copies[i].ticket, "technician", copies[i].technician,
                                "reason", reason));
    }
    free(copies);
    return 0;
}

void tl_consent_command_text(json_t *argv, char *out, size_t size)
{
    tl_buf_t *quoted = tl_buf_new((size_t)2 * 64 * 4100 + 1024);
    size_t i;
    json_t *arg;
    if (size == 0)
        goto out;
    out[0] = '\0';
    if (quoted == NULL)
        goto out;
    json_array_foreach(argv, i, arg) {
        const char *text = json_string_value(arg);
        size_t len = json_string_length(arg);
        if (text == NULL)
            continue;
        /* Quotes and backslashes first, so the escapes below cannot be forged. */
        tl_buf_t *word = tl_buf_new(2 * len + 1);
        int rc = word != NULL ? 0 : TL_ENOMEM;
        for (size_t k = 0; rc == 0 && k < len; k++) {
            if (text[k] == '"' || text[k] == '\\')
                rc = tl_buf_put(word, "\\", 1);
            if (rc == 0)
                rc = tl_buf_put(word, &text[k], 1);
        }
        if (rc == 0 && i > 0)
            rc = tl_buf_put(quoted, " ", 1);
        if (rc == 0)
            rc = tl_buf_put(quoted, "\"", 1);
        if (rc == 0)
            rc = tl_text_escape(quoted, tl_buf_data(word), tl_buf_len(word), TL_TEXT_LINE);
        if (rc == 0)
            rc = tl_buf_put(quoted, "\"", 1);
        tl_buf_free(word);
        if (rc != 0)
            break;
    }
    if (tl_buf_put(quoted, "", 1) == 0)
        tl_text_clip(out, size, (const char *)tl_buf_data(quoted), 0, TL_TEXT_LINE);
out:
    tl_buf_free(quoted);
}

const tl_grant_t *tl_consent_find(const tl_consent_t *consent, const char *id)
{
    int64_t at = now(consent);
    for (size_t i = 0; id != NULL && i < consent->count; i++)
        if (strcmp(consent->records[i].grant.id, id) == 0 && record_live(&consent->records[i], at))
            return &consent->records[i].grant;
    return NULL;
}

static int check_grant(const tl_consent_t *consent, const char *id, const char *technician,
                       unsigned scope, const char *type, const tl_grant_t **out, char *message,
                       size_t size);

int tl_consent_check(const tl_consent_t *consent, const char *id, const char *technician,
                     const char *type, const tl_grant_t **out, char *message, size_t size)
{
    unsigned scope = tl_scope_for_channel(type);
    if (scope == 0) {
        tl_format(message, size, "unknown channel type '%.64s'", type ? type : "");
        return TL_EINVAL;
    }
    return check_grant(consent, id, technician, scope, type, out, message, size);
}

int tl_consent_check_scope(const tl_consent_t *consent, const char *id, const char *technician,
                           unsigned scope, const tl_grant_t **out, char *message, size_t size)
{
    return check_grant(consent, id, technician, scope, tl_scope_name(scope), out, message, size);
}

/* The grant exists, is recorded and live, is the technician's and holds scope (named type). */
static int check_grant(const tl_consent_t *consent, const char *id, const char *technician,
                       unsigned scope, const char *type, const tl_grant_t **out, char *message,
                       size_t size)
{
    if (id == NULL) {
        tl_format(message, size, "refused: the channel names no grant");
        return TL_EDENIED;
    }
    const tl_grant_t *grant = NULL;
    int recorded = 0;
    for (size_t i = 0; i < consent->count; i++) {
        if (strcmp(consent->records[i].grant.id, id) == 0) {
            grant = &consent->records[i].grant;
            recorded = consent->records[i].recorded;
        }
    }
    if (grant == NULL) {
        tl_format(message, size, "refused: no grant '%.64s' on this machine", id);
        return TL_EDENIED;
    }
    if (!recorded) {
        tl_format(message, size, "refused: grant %s is not given yet (it is being recorded)",
                  grant->id);
        return TL_EDENIED;
    }
    if (grant->ended_ms != 0) {
        tl_format(message, size, "refused: grant %s was ended (%s)", grant->id, grant->end_reason);
        return TL_EDENIED;
    }
    if (now(consent) >= grant->expires_ms) {
        tl_format(message, size, "refused: grant %s has expired", grant->id);
        return TL_EDENIED;
    }
    if (technician == NULL || strcmp(technician, grant->technician) != 0) {
        tl_format(message, size, "refused: grant %s is for technician %s, not '%.64s'", grant->id,
                  grant->technician, technician ? technician : "");
        return TL_EDENIED;
    }
    if (!(grant->scopes & scope)) {
        char scopes[96];
        tl_scope_text(grant->scopes, scopes, sizeof scopes);
        tl_format(message, size, "refused: grant %s does not allow %s (it allows: %s)", grant->id,
                  type, scopes);
        return TL_EDENIED;
    }
    if (out != NULL)
        *out = grant;
    return 0;
}

json_t *tl_consent_pending(const tl_consent_t *consent)
{
    json_t *list = json_array();
    /* Oldest first, as they were asked. */
    size_t n = 0;
    for (const struct question *q = consent->questions; q != NULL; q = q->next)
        n++;
    for (size_t i = n; list != NULL && i-- > 0;) {
        const struct question *q = consent->questions;
        for (size_t j = 0; j < i; j++)
            q = q->next;
        json_array_append_new(list, question_json(q));
    }
    return list;
}

json_t *tl_consent_grants(const tl_consent_t *consent)
{
    json_t *list = json_array();
    int64_t at = now(consent);
    for (int pass = 0; list != NULL && pass < 2; pass++) {
        for (size_t i = consent->count; i-- > 0;) {
            const tl_grant_t *grant = &consent->records[i].grant;
            if (consent->records[i].recorded && grant_live(grant, at) == (pass == 0))
                json_array_append_new(list, tl_grant_json(grant, at));
        }
    }
    return list;
}
