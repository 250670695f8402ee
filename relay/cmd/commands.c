#include "proto/clock.h"
#include "relay/cmd/commands.h"

#include "proto/names.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/text.h"
#include "proto/roles.h"
#include "relay/store/store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Evidence is streamed to the technician in pieces of this size. */
#define TL_EVIDENCE_CHUNK (256u * 1024u)
/* ... after it was read through and checked, this much of it per storage job. */
#define TL_EVIDENCE_VERIFY_STEP (8u * 1024u * 1024u)
#define TL_NOTE_MAX 4000

struct command;

/* One command's state across its storage jobs. */
struct cmd {
    tl_job_t job;
    const struct command *command;
    tl_commands_ctx_t *ctx;
    tl_exec_t *exec; /* NULL once the client went away */
    tl_technician_t tech;
    int role;
    int json;
    int exit_status;
    /* arguments */
    int64_t ticket_id;
    char ticket_text[32];
    tl_ticket_filter_t filter;
    char status[16];
    char assignee[65];
    char text[TL_NOTE_MAX + 1];
    char hash[65];
    /* session commands (relay/sessions/sessions.h) */
    tl_session_request_t session;
    char *runbook_args[TL_SESSIONS_MAX_ARGS];
    int capability;          /* what the command needs, with its flags (join --observe) */
    const char *usage_error; /* a line to print before the usage line */
    char usage_text[96];     /* room for a usage_error that names a word */
    int usage_error_only;    /* ... and no usage line after it */
    /* output built on the worker */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
    /* evidence streaming */
    tl_evidence_reader_t *reader; /* worker thread only */
    uint8_t *chunk;
    size_t chunk_len;
    int reading_done;  /* worker writes, loop reads after the job */
    int close_reader;  /* loop writes before submitting; worker reads */
    int verifying;     /* worker writes: the item is not checked through yet */
    int refused;       /* worker writes: refused, with its audit entry kept (exit 1) */
    int job_in_flight; /* loop only */
};

typedef int (*cmd_parse_fn)(struct cmd *cmd, int argc, char **argv);
typedef int (*cmd_work_fn)(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err);

struct command {
    const char *name;
    const char *usage;
    const char *summary;
    int capability;
    cmd_parse_fn parse;
    cmd_work_fn work; /* on the storage thread; NULL for session commands */
    /* Session commands only: what relay/sessions/sessions.c runs, and whether --observe
     * asks for the observe capability instead (join). */
    int session_kind;
    int observe_flag;
    /* For COMMAND --help (proto/cli.h): "--name VALUE<TAB>what it does\n" lines, and an example. */
    const char *options;
    const char *example;
};

static const char *str(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value ? value : "-";
}

/*
 * Text from others as printed here (docs/technicians.md "Text from others"):
 * escaped, and in columns padded and clipped by display width. Each helper
 * writes into the caller's buffer and returns it, for printf.
 */
static const char *shown(char *buf, size_t size, json_t *object, const char *key)
{
    tl_text_clip(buf, size, str(object, key), 0, TL_TEXT_LINE);
    return buf;
}

static const char *cell(char *buf, size_t size, json_t *object, const char *key, size_t width)
{
    tl_text_cell(buf, size, str(object, key), width);
    return buf;
}

static const char *padded(char *buf, size_t size, json_t *object, const char *key, size_t width)
{
    tl_text_pad(buf, size, str(object, key), width);
    return buf;
}

/* An event's details as one line: compact JSON (control characters already \u escaped),
 * with what JSON leaves raw escaped too. */
static char *details_line(json_t *event)
{
    char *json = json_dumps(json_object_get(event, "details"), JSON_COMPACT);
    char *line = tl_text_escape_dup(json != NULL ? json : "", TL_TEXT_LINE);
    free(json);
    return line;
}

static void actor_of(const struct cmd *cmd, char out[96])
{
    snprintf(out, 96, "tech:%s", cmd->tech.name);
}

/* ---- argument parsing ------------------------------------------------------------ */

/* Flags common to every command: --json. Removes them from argv, up to a "--"
 * (what follows it is someone else's command line: run T-N -- CMD --json). */
static int take_json_flag(struct cmd *cmd, int *argc, char **argv)
{
    int kept = 0, passed_separator = 0;
    for (int i = 0; i < *argc; i++) {
        if (!passed_separator && strcmp(argv[i], "--") == 0)
            passed_separator = 1;
        if (!passed_separator && strcmp(argv[i], "--json") == 0)
            cmd->json = 1;
        else
            argv[kept++] = argv[i];
    }
    *argc = kept;
    return 0;
}

static int parse_ticket_id(struct cmd *cmd, const char *text)
{
    if (tl_store_parse_id(text, 'T', &cmd->ticket_id) != 0)
        return TL_EINVAL;
    snprintf(cmd->ticket_text, sizeof cmd->ticket_text, "%s", text);
    return 0;
}

static int join_words(char *out, size_t size, int argc, char **argv)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (used + len + 2 > size)
            return TL_EINVAL;
        if (i > 0)
            out[used++] = ' ';
        memcpy(out + used, argv[i], len + 1);
        used += len;
    }
    return used > 0 ? 0 : TL_EINVAL;
}

/* tickets [--tier N] [--status S] [--assignee NAME] [--mine]: the same filters as
 * tierline-relay tickets, and --mine. */
static int parse_tickets(struct cmd *cmd, int argc, char **argv)
{
    cmd->filter.tier = -1;
    for (int i = 1; i < argc; i++) {
        const char *word = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(word, "--tier") == 0) {
            const char *t = has_value ? argv[++i] : "";
            if (strlen(t) != 1 || t[0] < '0' || t[0] > '4') {
                cmd->usage_error = "--tier wants 0, 1, 2, 3 or 4";
                return TL_EINVAL;
            }
            cmd->filter.tier = t[0] - '0';
        } else if (strcmp(word, "--status") == 0) {
            if (!has_value || !tl_store_status_valid(argv[++i])) {
                cmd->usage_error = "--status wants new, open, waiting-user, waiting-vendor, "
                                   "resolved or closed";
                return TL_EINVAL;
            }
            snprintf(cmd->status, sizeof cmd->status, "%s", argv[i]);
            cmd->filter.status = cmd->status;
        } else if (strcmp(word, "--assignee") == 0) {
            if (!has_value || !tl_store_user_name_valid(argv[++i])) {
                cmd->usage_error = "--assignee wants an account name (1-64 of a-z 0-9 . _ -, "
                                   "starting with a letter)";
                return TL_EINVAL;
            }
            snprintf(cmd->assignee, sizeof cmd->assignee, "%s", argv[i]);
            cmd->filter.assignee = cmd->assignee;
        } else if (strcmp(word, "--mine") == 0) {
            cmd->filter.assignee = cmd->tech.name;
        } else {
            snprintf(cmd->usage_text, sizeof cmd->usage_text, "%s '%.60s'",
                     word[0] == '-' ? "unknown option" : "unexpected argument", word);
            cmd->usage_error = cmd->usage_text;
            return TL_EINVAL;
        }
    }
    /* Vendors see only what was handed to them. */
    if (tl_role_assigned_only(cmd->role))
        cmd->filter.assignee = cmd->tech.name;
    return 0;
}

static int parse_one_ticket(struct cmd *cmd, int argc, char **argv)
{
    return argc == 2 ? parse_ticket_id(cmd, argv[1]) : TL_EINVAL;
}

static int parse_ticket_text(struct cmd *cmd, int argc, char **argv)
{
    if (argc < 3 || parse_ticket_id(cmd, argv[1]) != 0)
        return TL_EINVAL;
    if (join_words(cmd->text, sizeof cmd->text, argc - 2, argv + 2) != 0)
        return TL_EINVAL;
    /* Kept as typed and shown escaped; but the record is JSON, which holds UTF-8 only. */
    if (!tl_text_utf8_valid(cmd->text, strlen(cmd->text))) {
        cmd->usage_error = "the text is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

static int parse_evidence_get(struct cmd *cmd, int argc, char **argv)
{
    if (argc != 3 || parse_ticket_id(cmd, argv[1]) != 0)
        return TL_EINVAL;
    size_t len = strlen(argv[2]);
    if (len < 8 || len > 64)
        return TL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = argv[2][i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return TL_EINVAL;
    }
    memcpy(cmd->hash, argv[2], len + 1);
    return 0;
}

static int parse_nothing(struct cmd *cmd, int argc, char **argv)
{
    return argc == 1 ? 0 : TL_EINVAL;
}

/* ---- session commands: arguments only; relay/sessions/sessions.c does the rest
 * ------------------- */

/* "90s", "15m", "1h", "1h30m"; a bare number is seconds. 60 s .. 24 h. */
static int parse_duration(const char *text, uint32_t *seconds)
{
    uint64_t total = 0, number = 0;
    int digits = 0;
    if (*text == '\0')
        return TL_EINVAL;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 6)
                return TL_EINVAL;
            number = number * 10 + (uint64_t)(*p - '0');
            continue;
        }
        uint64_t unit = *p == 's' ? 1 : *p == 'm' ? 60 : *p == 'h' ? 3600 : *p == 'd' ? 86400 : 0;
        if (unit == 0 || digits == 0)
            return TL_EINVAL;
        total += number * unit;
        number = 0;
        digits = 0;
    }
    total += number;
    if (total < 60 || total > 86400)
        return TL_EINVAL;
    *seconds = (uint32_t)total;
    return 0;
}

/*
 * Options every session command takes: --reason TEXT, --for DURATION (and
 * --observe for join). Returns 1 if argv[*i] was one (consuming its value),
 * 0 if not, TL_EINVAL for a bad value.
 */
static int take_session_option(struct cmd *cmd, int argc, char **argv, int *i)
{
    const char *word = argv[*i];
    if (strcmp(word, "--reason") == 0) {
        if (*i + 1 >= argc || argv[*i + 1][0] == '\0' ||
            strlen(argv[*i + 1]) > TL_SESSIONS_MAX_REASON) {
            cmd->usage_error = "--reason needs a text of 1 to 1024 bytes";
            return TL_EINVAL;
        }
        cmd->session.reason = argv[++*i];
        return 1;
    }
    if (strcmp(word, "--for") == 0) {
        if (*i + 1 >= argc || parse_duration(argv[*i + 1], &cmd->session.duration_s) != 0) {
            cmd->usage_error = "--for needs a duration from 1m to 24h, e.g. 15m, 1h, 1h30m";
            return TL_EINVAL;
        }
        ++*i;
        return 1;
    }
    if (strcmp(word, "--observe") == 0 && cmd->session.kind == TL_SESSION_JOIN) {
        cmd->session.observe = 1;
        return 1;
    }
    return 0;
}

static int parse_session_ticket(struct cmd *cmd, int argc, char **argv)
{
    cmd->session.kind = cmd->command->session_kind;
    if (argc < 2 || parse_ticket_id(cmd, argv[1]) != 0)
        return TL_EINVAL;
    cmd->session.ticket_id = cmd->ticket_id;
    snprintf(cmd->session.ticket, sizeof cmd->session.ticket, "%s", cmd->ticket_text);
    cmd->session.json = cmd->json;
    return 0;
}

/* diag T-N, join T-N, runbooks T-N: options only after the ticket. */
static int parse_session_plain(struct cmd *cmd, int argc, char **argv)
{
    if (parse_session_ticket(cmd, argc, argv) != 0)
        return TL_EINVAL;
    for (int i = 2; i < argc; i++) {
        int taken =
            cmd->session.kind == TL_SESSION_RUNBOOKS ? 0 : take_session_option(cmd, argc, argv, &i);
        if (taken <= 0)
            return TL_EINVAL;
    }
    return 0;
}

static int parse_join(struct cmd *cmd, int argc, char **argv)
{
    if (parse_session_plain(cmd, argc, argv) != 0)
        return TL_EINVAL;
    if (!tl_exec_pty(cmd->exec)->requested) {
        cmd->usage_error = "join needs a terminal: use ssh -t";
        cmd->usage_error_only = 1;
        return TL_EINVAL;
    }
    return 0;
}

/* run T-N [options] [--] COMMAND [ARGS...]: the command starts after "--", or at
 * the first word that is not one of ours. */
static int parse_run(struct cmd *cmd, int argc, char **argv)
{
    if (parse_session_ticket(cmd, argc, argv) != 0)
        return TL_EINVAL;
    int i = 2;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        int taken = take_session_option(cmd, argc, argv, &i);
        if (taken < 0)
            return TL_EINVAL;
        if (taken == 0)
            break;
    }
    if (i >= argc) {
        cmd->usage_error = "run needs a command after the ticket: run T-N -- COMMAND [ARGS...]";
        return TL_EINVAL;
    }
    if (argc - i > TL_SESSIONS_MAX_ARGS) {
        cmd->usage_error = "at most 64 words in a command";
        return TL_EINVAL;
    }
    for (int j = i; j < argc; j++) {
        if (strlen(argv[j]) > 4096) {
            cmd->usage_error = "a word of the command is longer than 4096 bytes";
            return TL_EINVAL;
        }
    }
    cmd->session.argc = argc - i;
    cmd->session.argv = argv + i;
    return 0;
}

/* NAME=VALUE with NAME as docs/consent.md allows and VALUE at most 1024 bytes. */
static int runbook_arg_valid(const char *word)
{
    const char *equals = strchr(word, '=');
    return equals != NULL && tl_runbook_param_name_valid(word, (size_t)(equals - word)) &&
           strlen(equals + 1) <= 1024;
}

/* fix T-N RUNBOOK [NAME=VALUE...], options anywhere after the ticket. */
static int parse_fix(struct cmd *cmd, int argc, char **argv)
{
    if (parse_session_ticket(cmd, argc, argv) != 0)
        return TL_EINVAL;
    int args = 0;
    for (int i = 2; i < argc; i++) {
        int taken = take_session_option(cmd, argc, argv, &i);
        if (taken < 0)
            return TL_EINVAL;
        if (taken > 0)
            continue;
        if (cmd->session.runbook == NULL) {
            if (!tl_runbook_name_valid(argv[i])) {
                cmd->usage_error = "a runbook name is 1 to 48 of a-z, 0-9 and -";
                return TL_EINVAL;
            }
            cmd->session.runbook = argv[i];
            continue;
        }
        if (!runbook_arg_valid(argv[i])) {
            cmd->usage_error = "runbook arguments are NAME=VALUE, NAME in A-Z, 0-9 and _";
            return TL_EINVAL;
        }
        size_t name_len = (size_t)(strchr(argv[i], '=') - argv[i]);
        for (int j = 0; j < args; j++) {
            if (strncmp(cmd->runbook_args[j], argv[i], name_len + 1) == 0) {
                cmd->usage_error = "a runbook argument is given twice";
                return TL_EINVAL;
            }
        }
        if (args >= TL_SESSIONS_MAX_ARGS) {
            cmd->usage_error = "at most 64 runbook arguments";
            return TL_EINVAL;
        }
        cmd->runbook_args[args++] = argv[i];
    }
    if (cmd->session.runbook == NULL)
        return TL_EINVAL;
    cmd->session.argc = args;
    cmd->session.argv = cmd->runbook_args;
    return 0;
}

/* ---- storage work (worker thread) ----------------------------------------------------- */

static int print_json_to(FILE *out, json_t *value)
{
    char *text = tl_text_json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return TL_ENOMEM;
    fprintf(out, "%s\n", text);
    free(text);
    return 0;
}

/* Loads a ticket the technician may see; "no such ticket" otherwise, either way. */
static int load_visible_ticket(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, json_t **ticket)
{
    int rc = tl_store_ticket_get(ctx->store, cmd->ticket_id, ticket);
    if (rc == 0 && tl_role_assigned_only(cmd->role)) {
        const char *assignee = json_string_value(json_object_get(*ticket, "assignee"));
        if (assignee == NULL || strcmp(assignee, cmd->tech.name) != 0) {
            json_decref(*ticket);
            *ticket = NULL;
            rc = TL_ENOTFOUND;
        }
    }
    if (rc == TL_ENOTFOUND)
        fprintf(err, "tierline: no ticket %s\n", cmd->ticket_text);
    else if (rc != 0)
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    return rc;
}

static int work_tickets(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *tickets = NULL;
    int rc = tl_store_tickets_query(ctx->store, &cmd->filter, &tickets);
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        return rc;
    }
    if (cmd->json) {
        print_json_to(out, tickets);
    } else {
        fprintf(out, "%-7s %-4s %-14s %-12s %-6s %-16s %-20s %s\n", "ID", "TIER", "STATUS",
                "ASSIGNEE", "DEVICE", "HOSTNAME", "UPDATED", "TITLE");
        size_t i;
        json_t *t;
        json_array_foreach(tickets, i, t)
        {
            char updated[32], assignee[40], hostname[52], title[1024];
            tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
            fprintf(out, "%-7s %-4" JSON_INTEGER_FORMAT " %-14s %s %-6s %s %-20s %s\n",
                    str(t, "id"), json_integer_value(json_object_get(t, "tier")), str(t, "status"),
                    cell(assignee, sizeof assignee, t, "assignee", 12), str(t, "device"),
                    cell(hostname, sizeof hostname, t, "hostname", 16), updated,
                    shown(title, sizeof title, t, "title"));
        }
        if (json_array_size(tickets) == 0)
            fprintf(out, "(no tickets)\n");
    }
    json_decref(tickets);
    return 0;
}

/* What the earlier tiers tried: fixes, commands and self-help in the timeline. */
static json_t *already_tried(json_t *events)
{
    json_t *tried = json_array();
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event)
    {
        const char *kind = str(event, "kind");
        if (strncmp(kind, "fix.", 4) == 0 || strncmp(kind, "exec.", 5) == 0 ||
            strncmp(kind, "selfhelp.", 9) == 0)
            json_array_append(tried, event);
    }
    return tried;
}

static int work_ticket_show(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    json_t *tried = already_tried(json_object_get(t, "events"));
    json_object_set_new(t, "already_tried", tried);
    if (cmd->json) {
        print_json_to(out, t);
        json_decref(t);
        return 0;
    }
    char created[32], updated[32], title[1024], hostname[1100], assignee[300];
    tl_format_utc(json_integer_value(json_object_get(t, "created")), created);
    tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
    fprintf(out, "%s  %s\n", str(t, "id"), shown(title, sizeof title, t, "title"));
    fprintf(out, "  device:   %s (%s)\n  tier:     %" JSON_INTEGER_FORMAT "\n", str(t, "device"),
            shown(hostname, sizeof hostname, t, "hostname"),
            json_integer_value(json_object_get(t, "tier")));
    fprintf(out, "  status:   %s\n  assignee: %s\n  created:  %s\n  updated:  %s\n",
            str(t, "status"), shown(assignee, sizeof assignee, t, "assignee"), created, updated);
    const char *description = str(t, "description");
    if (strcmp(description, "-") != 0 && description[0] != '\0') {
        char *body = tl_text_escape_dup(description, TL_TEXT_BODY);
        fprintf(out, "\n  %s\n", body != NULL ? body : "");
        free(body);
    }
    fprintf(out, "\nAlready tried:\n");
    size_t i;
    json_t *item;
    json_array_foreach(tried, i, item)
    {
        char when[32], kind[80];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        char *details = details_line(item);
        fprintf(out, "  %s  %s %s\n", when, padded(kind, sizeof kind, item, "kind", 18),
                details ? details : "");
        free(details);
    }
    if (json_array_size(tried) == 0)
        fprintf(out, "  (nothing yet)\n");
    fprintf(out, "\nEvidence:\n");
    json_array_foreach(json_object_get(t, "evidence"), i, item)
    {
        char kind[80], name[1100];
        fprintf(out, "  %s %s %10" JSON_INTEGER_FORMAT " bytes  %s\n",
                padded(kind, sizeof kind, item, "kind", 12),
                padded(name, sizeof name, item, "name", 24),
                json_integer_value(json_object_get(item, "size")), str(item, "hash"));
    }
    fprintf(out, "\nTimeline:\n");
    json_array_foreach(json_object_get(t, "events"), i, item)
    {
        char when[32], actor[300], kind[80];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        char *details = details_line(item);
        fprintf(out, "  %s  %s %s %s\n", when, padded(actor, sizeof actor, item, "actor", 16),
                padded(kind, sizeof kind, item, "kind", 18), details ? details : "");
        free(details);
    }
    json_decref(t);
    return 0;
}

/* Records a change on a ticket: its event, and the audit entry. */
static int record(struct cmd *cmd, tl_job_ctx_t *ctx, const char *event_kind,
                  const char *audit_action, json_t *details)
{
    char actor[96];
    actor_of(cmd, actor);
    int rc =
        tl_store_ticket_event(ctx->store, cmd->ticket_id, tl_wall_ms(), actor, event_kind, details);
    if (rc == 0)
        rc = tl_worker_audit(ctx, actor, audit_action, cmd->ticket_text, details);
    return rc;
}

static int work_ticket_take(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    const char *status = str(t, "status");
    const char *new_status = strcmp(status, "new") == 0 ? "open" : NULL;
    if (strcmp(status, "resolved") == 0 || strcmp(status, "closed") == 0) {
        fprintf(err, "tierline: %s is %s\n", cmd->ticket_text, status);
        json_decref(t);
        return TL_EINVAL;
    }
    json_t *details =
        json_pack("{s:s, s:s}", "assignee", cmd->tech.name, "previous", str(t, "assignee"));
    json_decref(t);
    rc = tl_store_ticket_update(ctx->store, cmd->ticket_id, cmd->tech.name, new_status,
                                tl_wall_ms());
    if (rc == 0)
        rc = record(cmd, ctx, "ticket.taken", "ticket.take", details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "%s assigned to %s\n", cmd->ticket_text, cmd->tech.name);
    return rc;
}

static int work_ticket_note(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = load_visible_ticket(cmd, ctx, err, &t);
    json_decref(t);
    if (rc != 0)
        return rc;
    json_t *details = json_pack("{s:s}", "text", cmd->text);
    rc = record(cmd, ctx, "note", "ticket.note", details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "Note added to %s\n", cmd->ticket_text);
    return rc;
}

static int work_ticket_resolve(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = load_visible_ticket(cmd, ctx, err, &t);
    json_decref(t);
    if (rc != 0)
        return rc;
    json_t *details = json_pack("{s:s}", "resolution", cmd->text);
    rc = tl_store_ticket_update(ctx->store, cmd->ticket_id, NULL, "resolved", tl_wall_ms());
    if (rc == 0)
        rc = record(cmd, ctx, "ticket.resolved", "ticket.resolve", details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "%s resolved\n", cmd->ticket_text);
    return rc;
}

static int work_evidence_list(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    json_t *evidence = json_object_get(t, "evidence");
    if (cmd->json) {
        print_json_to(out, evidence);
    } else {
        fprintf(out, "%-64s %-12s %10s  %s\n", "SHA256", "KIND", "BYTES", "NAME");
        size_t i;
        json_t *item;
        json_array_foreach(evidence, i, item)
        {
            char kind[80], name[1100];
            fprintf(out, "%-64s %s %10" JSON_INTEGER_FORMAT "  %s\n", str(item, "hash"),
                    padded(kind, sizeof kind, item, "kind", 12),
                    json_integer_value(json_object_get(item, "size")),
                    shown(name, sizeof name, item, "name"));
        }
        if (json_array_size(evidence) == 0)
            fprintf(out, "(no evidence)\n");
    }
    json_decref(t);
    return 0;
}

/*
 * Reads the opened item on ahead, a step at a time, before any of it is sent: damaged content
 * is refused whole (nothing reaches the technician) and the refusal is audited as a failed get.
 */
static int verify_evidence(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err)
{
    bool verified = false;
    int rc = tl_evidence_verify_step(cmd->reader, TL_EVIDENCE_VERIFY_STEP, &verified);
    if (rc == 0 && !verified) {
        cmd->verifying = 1;
        return 0;
    }
    cmd->verifying = 0;
    char actor[96];
    actor_of(cmd, actor);
    json_t *details = json_pack("{s:s, s:s, s:s}", "ticket", cmd->ticket_text, "sha256", cmd->hash,
                                "outcome", rc == 0 ? "ok" : "failed");
    if (details == NULL)
        return TL_ENOMEM;
    if (rc != 0) {
        const char *why = tl_evidence_reader_problem(cmd->reader);
        json_object_set_new(details, "reason", json_string(why[0] ? why : tl_strerror(rc)));
        fprintf(err,
                "tierline: evidence %s on %s is %s (%s): nothing was sent; an administrator can "
                "list damaged items with `tierline-relay evidence verify`\n",
                cmd->hash, cmd->ticket_text, rc == TL_EDAMAGED ? "damaged" : "unreadable",
                why[0] ? why : tl_strerror(rc));
        tl_evidence_close(cmd->reader);
        cmd->reader = NULL;
        cmd->refused = 1;
    }
    int audit_rc = tl_worker_audit(ctx, actor, "evidence.get", cmd->hash, details);
    json_decref(details);
    return audit_rc;
}

/* Finds the item on the ticket by full hash or unique prefix, then opens and checks it. */
static int work_evidence_open(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    if (cmd->reader != NULL)
        return verify_evidence(cmd, ctx, err); /* the next step of a large item */
    json_t *t = NULL;
    int rc = load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    const char *found = NULL;
    int matches = 0;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(t, "evidence"), i, item)
    {
        const char *hash = str(item, "hash");
        if (strncmp(hash, cmd->hash, strlen(cmd->hash)) == 0) {
            found = hash;
            matches++;
        }
    }
    if (matches != 1) {
        fprintf(err, "tierline: %s on %s\n",
                matches == 0 ? "no such evidence" : "ambiguous evidence id", cmd->ticket_text);
        json_decref(t);
        return matches == 0 ? TL_ENOTFOUND : TL_EINVAL;
    }
    snprintf(cmd->hash, sizeof cmd->hash, "%s", found);
    json_decref(t);
    rc = tl_evidence_open(ctx->evidence, cmd->hash, &cmd->reader);
    if (rc != 0) {
        fprintf(err, "tierline: evidence %s cannot be read: %s\n", cmd->hash, tl_strerror(rc));
        return rc;
    }
    return verify_evidence(cmd, ctx, err);
}

/* ---- running commands ---------------------------------------------------------------- */

static void cmd_free(struct cmd *cmd)
{
    free(cmd->out);
    free(cmd->err);
    free(cmd->chunk);
    free(cmd);
}

static void on_abort(tl_exec_t *exec, void *data);
static void on_drain(tl_exec_t *exec, void *data);

static const tl_exec_callbacks_t exec_callbacks = {.on_drain = on_drain, .on_abort = on_abort};

static int run_work(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = (struct cmd *)job;
    FILE *out = open_memstream(&cmd->out, &cmd->out_len);
    FILE *err = open_memstream(&cmd->err, &cmd->err_len);
    int rc = TL_ENOMEM;
    if (out != NULL && err != NULL)
        rc = cmd->command->work(cmd, ctx, out, err);
    if (out != NULL)
        fclose(out);
    if (err != NULL)
        fclose(err);
    cmd->exit_status = rc == 0 && !cmd->refused ? 0 : 1;
    /* A failed command is answered, not retried: its store changes are undone. */
    return rc == TL_ENOMEM || rc == TL_ESTORE ? rc : (rc == 0 ? 0 : TL_EINVAL);
}

static void stream_next(struct cmd *cmd);

static void work_done(tl_job_t *job, int status)
{
    struct cmd *cmd = (struct cmd *)job;
    cmd->job_in_flight = 0;
    if (cmd->exec == NULL) {
        /* The client is gone; an open reader is closed by one more job. */
        if (cmd->reader != NULL) {
            stream_next(cmd);
            return;
        }
        cmd_free(cmd);
        return;
    }
    /* Refused because the audit log cannot be written: whatever the command produced is
     * withheld, as what it did was undone (or is not acknowledged). */
    if (status == TL_EAUDIT)
        cmd->out_len = cmd->err_len = 0;
    if (cmd->out_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDOUT, cmd->out, cmd->out_len);
    if (cmd->err_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDERR, cmd->err, cmd->err_len);
    if (status != 0 && cmd->err_len == 0)
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", tl_strerror(status));
    if (status == 0 && cmd->reader != NULL && cmd->verifying) {
        /* Checked a step at a time, so a large item does not hold the storage thread. */
        free(cmd->out);
        free(cmd->err);
        cmd->out = cmd->err = NULL;
        cmd->out_len = cmd->err_len = 0;
        cmd->job.run = run_work;
        cmd->job.done = work_done;
        cmd->job_in_flight = 1;
        tl_worker_submit(cmd->ctx->worker, &cmd->job);
        return;
    }
    if (status == 0 && cmd->reader != NULL) {
        stream_next(cmd);
        return;
    }
    tl_exec_finish(cmd->exec, status == 0 ? cmd->exit_status : 1);
    if (cmd->reader != NULL) {
        /* Failed with an item open: the reader is closed on the worker, then cmd is freed. */
        cmd->exec = NULL;
        stream_next(cmd);
        return;
    }
    cmd_free(cmd);
}

/* Evidence streaming: one chunk per job, paced by the client's reading. */
static int run_read_chunk(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = (struct cmd *)job;
    if (cmd->close_reader) {
        tl_evidence_close(cmd->reader);
        cmd->reader = NULL;
        return 0;
    }
    cmd->chunk_len = 0;
    int rc = tl_evidence_read(cmd->reader, cmd->chunk, TL_EVIDENCE_CHUNK, &cmd->chunk_len);
    if (rc != 0 || cmd->chunk_len == 0) {
        int close_rc = tl_evidence_close(cmd->reader);
        cmd->reader = NULL;
        cmd->reading_done = 1;
        return rc != 0 ? rc : close_rc;
    }
    return 0;
}

static void chunk_done(tl_job_t *job, int status)
{
    struct cmd *cmd = (struct cmd *)job;
    cmd->job_in_flight = 0;
    if (cmd->exec == NULL) {
        if (cmd->reader != NULL)
            stream_next(cmd);
        else
            cmd_free(cmd);
        return;
    }
    if (status != 0) {
        /* Changed since it was checked, or unreadable: the technician must not take partial
         * bytes for whole. */
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: evidence %s %s: %s\n", cmd->hash,
                       status == TL_EDAMAGED ? "is damaged" : "could not be sent",
                       tl_strerror(status));
        tl_exec_finish(cmd->exec, 1);
        cmd_free(cmd);
        return;
    }
    if (cmd->chunk_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDOUT, cmd->chunk, cmd->chunk_len);
    if (cmd->reading_done) {
        tl_exec_finish(cmd->exec, 0);
        cmd_free(cmd);
        return;
    }
    if (tl_exec_buffered(cmd->exec) < TL_EXEC_HIGH_WATER)
        stream_next(cmd);
    /* else on_drain continues */
}

static void stream_next(struct cmd *cmd)
{
    if (cmd->job_in_flight)
        return;
    if (cmd->exec == NULL)
        cmd->close_reader = 1; /* the client went away: the worker closes the reader */
    if (cmd->chunk == NULL && !cmd->close_reader &&
        (cmd->chunk = malloc(TL_EVIDENCE_CHUNK)) == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(cmd->exec, 1);
        cmd->exec = NULL;
        cmd->close_reader = 1;
    }
    cmd->job.run = run_read_chunk;
    cmd->job.done = chunk_done;
    cmd->job_in_flight = 1;
    tl_worker_submit(cmd->ctx->worker, &cmd->job);
}

static void on_drain(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    if (!cmd->job_in_flight && cmd->reader != NULL && !cmd->reading_done)
        stream_next(cmd);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    cmd->exec = NULL;
    if (cmd->job_in_flight)
        return; /* its done callback sees the exec is gone */
    if (cmd->reader != NULL)
        stream_next(cmd); /* closes the reader on the worker */
    else
        cmd_free(cmd);
}

/* ---- the table --------------------------------------------------------------------------- */

static int work_whoami(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err);
static int work_help(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err);

#define SESSION_OPTIONS                                                                            \
    "--reason TEXT\twhat the user is shown as the reason (default: the command itself)\n"          \
    "--for DURATION\thow long the grant should last, 1m..24h: 90s, 15m, 1h30m\n"

static const struct command commands[] = {
    {"tickets", "tickets [--tier N] [--status S] [--assignee NAME] [--mine] [--json]",
     "list tickets", TL_CAP_TICKETS_READ, parse_tickets, work_tickets, 0, 0,
     "--tier N\tonly tickets at tier N, 0..4\n"
     "--status S\tonly tickets with status S: new, open, waiting-user, waiting-vendor, "
     "resolved, closed\n"
     "--assignee NAME\tonly tickets assigned to the account NAME\n"
     "--mine\tonly tickets assigned to you\n"
     "--json\ta JSON array of objects: id, device, hostname, title, description, tier, status, "
     "assignee (null if none), created, updated\n",
     "tickets --status open --tier 2\n"},
    {"ticket show", "ticket show T-N [--json]",
     "a ticket: what was already tried, evidence, timeline", TL_CAP_TICKETS_READ, parse_one_ticket,
     work_ticket_show, 0, 0,
     "--json\tthe ticket as a JSON object, with already_tried, evidence and events\n",
     "ticket show T-1\n"},
    {"ticket take", "ticket take T-N", "assign a ticket to yourself", TL_CAP_TICKET_TAKE,
     parse_one_ticket, work_ticket_take, 0, 0, NULL, "ticket take T-1\n"},
    {"ticket note", "ticket note T-N TEXT...", "add a note to a ticket", TL_CAP_TICKET_NOTE,
     parse_ticket_text, work_ticket_note, 0, 0, NULL,
     "ticket note T-1 the print queue was stuck\n"},
    {"ticket resolve", "ticket resolve T-N TEXT...", "resolve a ticket, saying how",
     TL_CAP_TICKET_RESOLVE, parse_ticket_text, work_ticket_resolve, 0, 0, NULL,
     "ticket resolve T-1 restarted cups\n"},
    {"evidence", "evidence T-N [--json]", "list a ticket's evidence", TL_CAP_TICKETS_READ,
     parse_one_ticket, work_evidence_list, 0, 0,
     "--json\ta JSON array of objects: hash, kind, name, size, created\n", "evidence T-1\n"},
    {"evidence get", "evidence get T-N SHA256-OR-PREFIX", "stream an evidence item to stdout",
     TL_CAP_EVIDENCE_GET, parse_evidence_get, work_evidence_open, 0, 0, NULL,
     "evidence get T-1 fbd45efc > diagnostics.json\n"},
    {"whoami", "whoami [--json]", "who you are and what your role allows", TL_CAP_TICKETS_READ,
     parse_nothing, work_whoami, 0, 0, "--json\tan object: name, role, key, capabilities\n",
     "whoami\n"},
    {"help", "help [--json]", "the commands your role may use", TL_CAP_TICKETS_READ, parse_nothing,
     work_help, 0, 0, "--json\tan object: name, role, commands (each: name, usage, summary)\n",
     "help\n"},
    /* Sessions on the ticket's machine, with the user's consent (relay/sessions/sessions.h). */
    {"diag", "diag T-N [--reason TEXT] [--for DURATION] [--json]",
     "fresh diagnostics from the machine, kept as evidence", TL_CAP_DIAG, parse_session_plain, NULL,
     TL_SESSION_DIAG, 0, SESSION_OPTIONS "--json\twhat was stored, as a JSON object\n",
     "diag T-1 --reason \"checking the network\"\n"},
    {"run", "run T-N [--reason TEXT] [--for DURATION] -- COMMAND [ARGS...]",
     "run a command on the machine", TL_CAP_RUN, parse_run, NULL, TL_SESSION_RUN, 0,
     SESSION_OPTIONS "--\tthe end of run's options: what follows is the command\n",
     "run T-1 -- systemctl status cups\n"},
    {"join", "join T-N [--observe] [--reason TEXT] [--for DURATION]",
     "a shell on the machine (ssh -t), or watch its shells", TL_CAP_SHELL, parse_join, NULL,
     TL_SESSION_JOIN, 1,
     "--observe\tonly watch the machine's shells (needs observe)\n" SESSION_OPTIONS, "join T-1\n"},
    {"fix", "fix T-N RUNBOOK [NAME=VALUE...] [--reason TEXT] [--for DURATION]",
     "run a runbook from the machine's catalogue", TL_CAP_FIX, parse_fix, NULL, TL_SESSION_FIX, 0,
     SESSION_OPTIONS, "fix T-1 flush-dns\n"},
    {"runbooks", "runbooks T-N [--json]", "the runbooks the machine offers", TL_CAP_FIX,
     parse_session_plain, NULL, TL_SESSION_RUNBOOKS, 0,
     "--json\ta JSON array of objects: name, description, min_role, privileged, params\n",
     "runbooks T-1\n"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static int work_whoami(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *caps = json_array();
    for (int c = 0; c < TL_CAP_COUNT; c++)
        if (tl_role_can(cmd->role, c))
            json_array_append_new(caps, json_string(tl_capability_name(c)));
    if (cmd->json) {
        json_t *me =
            json_pack("{s:s, s:s, s:s, s:O}", "name", cmd->tech.name, "role", cmd->tech.role, "key",
                      cmd->tech.key_fingerprint, "capabilities", caps);
        print_json_to(out, me);
        json_decref(me);
    } else {
        fprintf(out, "%s (%s)\nkey: %s\nmay:", cmd->tech.name, cmd->tech.role,
                cmd->tech.key_fingerprint);
        size_t i;
        json_t *c;
        json_array_foreach(caps, i, c) fprintf(out, " %s", json_string_value(c));
        fprintf(out, "\n");
    }
    json_decref(caps);
    return 0;
}

static int may_use(const struct cmd *cmd, const struct command *command)
{
    return tl_role_can(cmd->role, command->capability) ||
           (command->observe_flag && tl_role_can(cmd->role, TL_CAP_OBSERVE));
}

static int work_help(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    if (cmd->json) {
        json_t *listing = json_array();
        for (size_t i = 0; listing != NULL && i < COMMAND_COUNT; i++)
            if (may_use(cmd, &commands[i]))
                json_array_append_new(
                    listing, json_pack("{s:s, s:s, s:s}", "name", commands[i].name, "usage",
                                       commands[i].usage, "summary", commands[i].summary));
        json_t *help = json_pack("{s:s, s:s, s:o?}", "name", cmd->tech.name, "role", cmd->tech.role,
                                 "commands", listing);
        int rc = help != NULL ? print_json_to(out, help) : TL_ENOMEM;
        json_decref(help);
        return rc;
    }
    fprintf(out, "Commands for %s (%s):\n", cmd->tech.name, cmd->tech.role);
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (may_use(cmd, &commands[i]))
            fprintf(out, "  %-44s %s\n", commands[i].usage, commands[i].summary);
    }
    fprintf(out, "'COMMAND --help' explains one.\n");
    return 0;
}

/* Finds the entry for argv: two-word names ("ticket show") first. */
static const struct command *lookup(int argc, char **argv, int *words)
{
    char two[64];
    if (argc >= 2 && snprintf(two, sizeof two, "%s %s", argv[0], argv[1]) < (int)sizeof two) {
        for (size_t i = 0; i < COMMAND_COUNT; i++) {
            if (strcmp(commands[i].name, two) == 0) {
                *words = 2;
                return &commands[i];
            }
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

static int run_denial(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = (struct cmd *)job;
    char actor[96];
    actor_of(cmd, actor);
    json_t *details = json_pack("{s:s, s:s, s:s}", "command", cmd->command->name, "role",
                                cmd->tech.role, "needs", tl_capability_name(cmd->capability));
    int rc = tl_worker_audit(ctx, actor, "access.denied", cmd->ticket_text, details);
    json_decref(details);
    return rc;
}

static void denial_done(tl_job_t *job, int status)
{
    struct cmd *cmd = (struct cmd *)job;
    if (cmd->exec != NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR,
                       "tierline: permission denied: role %s may not use '%s' (needs %s)\n",
                       cmd->tech.role, cmd->command->name, tl_capability_name(cmd->capability));
        tl_exec_finish(cmd->exec, TL_EXIT_DENIED);
    }
    cmd_free(cmd);
}

/* Words that end run's options and take a value: help stops where run's command starts. */
static const char *const session_value_options[] = {"--reason", "--for", NULL};

static int asks_for_help(const struct command *command, int argc, char **argv, int words)
{
    if (command->session_kind == TL_SESSION_RUN)
        return tl_cli_wants_help(argc, argv, words, 1, session_value_options);
    return tl_cli_wants_help(argc, argv, words, -1, NULL);
}

/* Ends a command with what text holds (open_memstream over *bytes): stdout if status is 0. */
static void finish_with(tl_exec_t *exec, FILE *text, char **bytes, size_t *len, int status)
{
    if (text != NULL && fclose(text) == 0 && *len > 0)
        tl_exec_write(exec, status == 0 ? TL_EXEC_STDOUT : TL_EXEC_STDERR, *bytes, *len);
    free(*bytes);
    tl_exec_finish(exec, status);
}

/*
 * COMMAND --help: the command's help from the table, and nothing else happens:
 * no storage job, no audit entry, nothing reaches the machine. A command the
 * role may not use still has its help, with a line saying so.
 */
static void answer_help(tl_exec_t *exec, const struct command *command, int role)
{
    char *bytes = NULL;
    size_t len = 0;
    FILE *text = open_memstream(&bytes, &len);
    if (text != NULL) {
        tl_cli_help_t help = {command->usage, command->summary, command->options, command->example};
        tl_cli_help_write(text, NULL, &help);
        int capability = command->capability;
        if (!tl_role_can(role, capability) &&
            !(command->observe_flag && tl_role_can(role, TL_CAP_OBSERVE)))
            fprintf(text, "\nYour role (%s) may not use it: it needs %s.\n", tl_role_name(role),
                    tl_capability_name(capability));
    }
    finish_with(exec, text, &bytes, &len, 0);
}

/* "ticket" alone, or "ticket --help": the group's commands. */
static int answer_group(tl_exec_t *exec, int argc, char **argv)
{
    size_t prefix = strlen(argv[0]);
    int members = 0;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strncmp(commands[i].name, argv[0], prefix) == 0 && commands[i].name[prefix] == ' ')
            members++;
    if (members == 0)
        return 0;
    int help = tl_cli_wants_help(argc, argv, 1, -1, NULL);
    if (!help && argc > 1)
        return 0; /* "ticket bogus": an unknown command */
    char *bytes = NULL;
    size_t len = 0;
    FILE *text = open_memstream(&bytes, &len);
    if (text != NULL) {
        if (!help)
            fprintf(text, "tierline: '%s' needs one of its commands:\n", argv[0]);
        for (size_t i = 0; i < COMMAND_COUNT; i++)
            if (strncmp(commands[i].name, argv[0], prefix) == 0 && commands[i].name[prefix] == ' ')
                fprintf(text, "usage: %-40s %s\n", commands[i].usage, commands[i].summary);
        fprintf(text, "'%s COMMAND --help' explains one.\n", argv[0]);
    }
    finish_with(exec, text, &bytes, &len, help ? 0 : 2);
    return 1;
}

void tl_commands_dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv)
{
    const tl_technician_t *tech = tl_exec_technician(exec);
    int words = 0;
    const struct command *command = argc > 0 ? lookup(argc, argv, &words) : NULL;
    if (command == NULL && argc > 0 && answer_group(exec, argc, argv))
        return;
    if (command != NULL && asks_for_help(command, argc, argv, words)) {
        answer_help(exec, command, tl_role_parse(tech->role));
        return;
    }
    if (command == NULL) {
        tl_exec_printf(exec, TL_EXEC_STDERR,
                       "tierline: unknown command '%s'\nusage: COMMAND [ARGS]; 'help' lists the "
                       "commands your role may use\n",
                       argc > 0 ? argv[0] : "");
        tl_exec_finish(exec, 2);
        return;
    }
    struct cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(exec, 1);
        return;
    }
    cmd->command = command;
    cmd->ctx = ctx;
    cmd->exec = exec;
    cmd->tech = *tech;
    cmd->role = tl_role_parse(tech->role);
    tl_exec_set_callbacks(exec, &exec_callbacks, cmd);
    tl_log_info("command tech=%s role=%s command=\"%s\"", tech->name, tech->role, command->name);

    /* join --observe needs only the observe capability. */
    cmd->capability = command->capability;
    for (int i = words; command->observe_flag && i < argc; i++)
        if (strcmp(argv[i], "--observe") == 0)
            cmd->capability = TL_CAP_OBSERVE;
    if (!tl_role_can(cmd->role, cmd->capability)) {
        /* The ticket, when the words name one, is the denial's subject. */
        if (argc > words)
            parse_ticket_id(cmd, argv[words]);
        cmd->job.run = run_denial;
        cmd->job.done = denial_done;
        cmd->job_in_flight = 1;
        tl_worker_submit(cmd->ctx->worker, &cmd->job);
        return;
    }
    /* Arguments after the command's own words; argv[0] stays the command name. */
    int rest = argc - words + 1;
    char **rest_argv = argv + words - 1;
    take_json_flag(cmd, &rest, rest_argv);
    if (command->parse(cmd, rest, rest_argv) != 0) {
        if (cmd->usage_error != NULL)
            tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: %s\n", cmd->usage_error);
        if (!cmd->usage_error_only)
            tl_exec_printf(exec, TL_EXEC_STDERR, "usage: %s\n", command->usage);
        tl_exec_finish(exec, 2);
        cmd_free(cmd);
        return;
    }
    if (command->work == NULL) {
        /* The session module takes the exec over, callbacks included. */
        tl_sessions_start(cmd->ctx->sessions, exec, &cmd->session);
        cmd_free(cmd);
        return;
    }
    cmd->job.run = run_work;
    cmd->job.done = work_done;
    cmd->job_in_flight = 1;
    tl_worker_submit(cmd->ctx->worker, &cmd->job);
}
