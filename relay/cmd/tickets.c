/*
 * The technicians' ticket commands: tickets, ticket show, ticket take,
 * ticket note, ticket resolve (docs/technicians.md "Commands").
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/rows.h"
#include "relay/cmd/show.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"

#include <stdlib.h>
#include <string.h>

int tl__cmd_load_visible_ticket(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, json_t **ticket)
{
    /* A vendor's other tickets do not exist for it (relay/cmd/vendor.c). */
    int rc = tl__cmd_ticket_access(cmd, ctx);
    if (rc == 0)
        rc = tl_rows_ticket(ctx->store, cmd->ticket.id, ticket);
    if (rc == TL_ENOTFOUND)
        fprintf(err, "tierline: no ticket %s\n", cmd->ticket.text);
    else if (rc != 0)
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    return rc;
}

/* ---- tickets ---------------------------------------------------------------------------- */

/* The filters as given: --assignee and --mine, whichever came last. */
static int tickets_prepare(struct cmd *cmd)
{
    if (cmd->status[0] != '\0')
        cmd->filter.status = cmd->status;
    if (cmd->assignee.mine)
        cmd->filter.assignee = cmd->tech.name;
    else if (cmd->assignee.name[0] != '\0')
        cmd->filter.assignee = cmd->assignee.name;
    return 0;
}

static int work_tickets(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *tickets = NULL;
    int rc = tl_rows_tickets(ctx->store, &cmd->filter, &tickets);
    if (rc == 0) /* vendors see only the tickets bound to them */
        rc = tl__cmd_ticket_list_access(cmd, ctx, tickets);
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        return rc;
    }
    if (cmd->json) {
        tl__cmd_print_json(out, tickets);
    } else {
        tl__cmd_print_tickets(out, tickets);
    }
    json_decref(tickets);
    return 0;
}

/* tickets [--tier N] [--status S] [--assignee NAME] [--mine]: the same filters as
 * tierline-relay tickets, and --mine. */
const struct tl__command tl__cmd_tickets = {
    .name = "tickets",
    .usage = "tickets [--tier N] [--status S] [--assignee NAME] [--mine] [--json]",
    .summary = "list tickets",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "tier",
                      .metavar = "N",
                      .help = "only tickets at tier N, 0..4",
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_tier,
                      .out = TL_CLI_AT(struct cmd, filter.tier),
                      .problem = "--tier wants 0, 1, 2, 3 or 4"},
                     {.name = "status",
                      .metavar = "S",
                      .help = "only tickets with status S: new, open, waiting-user, "
                              "waiting-vendor, resolved, closed",
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_status,
                      .out = TL_CLI_AT(struct cmd, status),
                      .problem = "--status wants new, open, waiting-user, waiting-vendor, "
                                 "resolved or closed"},
                     {.name = "assignee",
                      .metavar = "NAME",
                      .help = "only tickets assigned to the account NAME",
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_assignee,
                      .out = TL_CLI_AT(struct cmd, assignee),
                      .problem = "--assignee wants an account name (1-64 of a-z 0-9 . _ -, "
                                 "starting with a letter)"},
                     {.name = "mine",
                      .help = "only tickets assigned to you",
                      .out = TL_CLI_AT(struct cmd, assignee.mine)},
                     TL__CMD_JSON("a JSON array of objects: id, device, hostname, title, "
                                  "description, tier, status, assignee (null if none), created, "
                                  "updated, vendor, vendor_case, follow_up (null if none)"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = tickets_prepare,
    .work = work_tickets,
    .example = "tickets --status open --tier 2\n",
};

/* ---- ticket show ------------------------------------------------------------------------- */

/* What the earlier tiers tried: fixes, commands and self-help in the timeline. */
static json_t *already_tried(json_t *events)
{
    json_t *tried = json_array();
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event) {
        const char *kind = tl__cmd_member(event, "kind");
        if (strncmp(kind, "fix.", 4) == 0 || strncmp(kind, "exec.", 5) == 0 ||
            strncmp(kind, "selfhelp.", 9) == 0)
            json_array_append(tried, event);
    }
    return tried;
}

static int work_ticket_show(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    json_t *tried = already_tried(json_object_get(t, "events"));
    json_object_set_new(t, "already_tried", tried);
    /* First: the known problem, and what the earlier tiers tried (escalate.c). */
    if ((rc = tl__cmd_show_desk(cmd, ctx, t, cmd->json ? NULL : out, err)) != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        json_decref(t);
        return rc;
    }
    if (cmd->json) {
        tl__cmd_print_json(out, t);
        json_decref(t);
        return 0;
    }
    char created[32], updated[32], title[1024], hostname[1100], assignee[300];
    tl_format_utc(json_integer_value(json_object_get(t, "created")), created);
    tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
    fprintf(out, "%s  %s\n", tl__cmd_member(t, "id"),
            tl__cmd_shown(title, sizeof title, t, "title"));
    fprintf(out, "  device:   %s (%s)\n  tier:     %" JSON_INTEGER_FORMAT "\n",
            tl__cmd_member(t, "device"), tl__cmd_shown(hostname, sizeof hostname, t, "hostname"),
            json_integer_value(json_object_get(t, "tier")));
    fprintf(out, "  status:   %s\n  assignee: %s\n  created:  %s\n  updated:  %s\n",
            tl__cmd_member(t, "status"), tl__cmd_shown(assignee, sizeof assignee, t, "assignee"),
            created, updated);
    tl__cmd_print_vendor(out, t);
    const char *description = tl__cmd_member(t, "description");
    if (strcmp(description, "-") != 0 && description[0] != '\0') {
        char *body = tl_text_escape_dup(description, TL_TEXT_BODY);
        fprintf(out, "\n  %s\n", body != NULL ? body : "");
        free(body);
    }
    fprintf(out, "\nAlready tried:\n");
    size_t i;
    json_t *item;
    json_array_foreach(tried, i, item) {
        char when[32], kind[80];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        char *details = tl__cmd_details_line(item);
        fprintf(out, "  %s  %s %s\n", when, tl__cmd_padded(kind, sizeof kind, item, "kind", 18),
                details ? details : "");
        free(details);
    }
    if (json_array_size(tried) == 0)
        fprintf(out, "  (nothing yet)\n");
    fprintf(out, "\nEvidence:\n");
    json_array_foreach(json_object_get(t, "evidence"), i, item) {
        char kind[80], name[1100];
        fprintf(out, "  %s %s %10" JSON_INTEGER_FORMAT " bytes  %s\n",
                tl__cmd_padded(kind, sizeof kind, item, "kind", 12),
                tl__cmd_padded(name, sizeof name, item, "name", 24),
                json_integer_value(json_object_get(item, "size")), tl__cmd_member(item, "hash"));
    }
    fprintf(out, "\nTimeline:\n");
    json_array_foreach(json_object_get(t, "events"), i, item) {
        char when[32], actor[300], kind[80];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        char *details = tl__cmd_details_line(item);
        fprintf(out, "  %s  %s %s %s\n", when,
                tl__cmd_padded(actor, sizeof actor, item, "actor", 16),
                tl__cmd_padded(kind, sizeof kind, item, "kind", 18), details ? details : "");
        free(details);
    }
    json_decref(t);
    return 0;
}

/* One ticket, T-N, and nothing else: a word out of place gets the usage line. */
#define ONE_TICKET                                                                                 \
    (const tl_cli_arg_t[])                                                                         \
    {                                                                                              \
        {.name = "T-N",                                                                            \
         .kind = TL_CLI_CHECK,                                                                     \
         .check = tl__kind_ticket,                                                                 \
         .out = TL_CLI_AT(struct cmd, ticket)},                                                    \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

const struct tl__command tl__cmd_ticket_show = {
    .name = "ticket show",
    .usage = "ticket show T-N [--json]",
    .summary = "a ticket: what was already tried, evidence, timeline",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("the ticket as a JSON object, with "
                                                            "already_tried, evidence and events"),
                                               {0}},
             .positionals = ONE_TICKET,
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_ticket_show,
    .example = "ticket show T-1\n",
};

/* ---- ticket take, note, resolve ---------------------------------------------------------- */

/* Records a change on a ticket: its event, and the audit entry. */
static int record(struct cmd *cmd, tl_job_ctx_t *ctx, const char *event_kind,
                  const char *audit_action, json_t *details)
{
    char actor[96];
    tl__cmd_actor(cmd, actor);
    tl_timeline_entry_t entry = {
        .ticket_id = cmd->ticket.id,
        .time_ms = tl_wall_ms(),
        .actor = actor,
        .event = event_kind,
        .action = audit_action,
        .details = details,
    };
    return tl_timeline_record(ctx, &entry);
}

/*
 * Whether the ticket's status lets the command go on: resolved and closed tickets take no
 * changes but reopen (and close, for a resolved one). Says why not on err.
 */
static int still_active(struct cmd *cmd, json_t *ticket, FILE *err)
{
    const char *status = tl__cmd_member(ticket, "status");
    if (tl_ticket_status_active(status))
        return 0;
    fprintf(err, "tierline: %s is %s; reopen it first (ticket reopen %s)\n", cmd->ticket.text,
            status, cmd->ticket.text);
    return TL_ESTATE;
}

static int work_ticket_take(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    const char *status = tl__cmd_member(t, "status");
    /* Taking a new or reopened ticket opens it. */
    const char *new_status =
        strcmp(status, TL_TICKET_STATUS_NEW) == 0 || strcmp(status, TL_TICKET_STATUS_REOPENED) == 0
            ? TL_TICKET_STATUS_OPEN
            : NULL;
    if ((rc = still_active(cmd, t, err)) != 0) {
        json_decref(t);
        return rc;
    }
    json_t *details = json_pack("{s:s, s:s}", "assignee", cmd->tech.name, "previous",
                                tl__cmd_member(t, "assignee"));
    json_decref(t);
    char actor[96];
    tl__cmd_actor(cmd, actor);
    rc = tl_ticket_update(ctx->store, cmd->ticket.id, cmd->tech.name, new_status, actor,
                          tl_wall_ms());
    if (rc == 0)
        rc = record(cmd, ctx, "ticket.taken", "ticket.take", details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "%s assigned to %s\n", cmd->ticket.text, cmd->tech.name);
    return rc;
}

static int work_ticket_note(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc == 0)
        rc = still_active(cmd, t, err);
    /* A vendor's answer that came another way, recorded by the desk (docs/desk.md). */
    json_t *vendor = json_object_get(t, "vendor");
    if (rc == 0 && cmd->from_vendor && !json_is_string(vendor)) {
        fprintf(err,
                "tierline: %s waits on no vendor (ticket vendor %s --vendor NAME --case REF)\n",
                cmd->ticket.text, cmd->ticket.text);
        rc = TL_ESTATE;
    }
    json_t *details = rc == 0 ? json_pack("{s:s}", "text", cmd->text.text) : NULL;
    if (details != NULL && cmd->from_vendor)
        json_object_set(details, "vendor", vendor);
    json_decref(t);
    if (rc != 0)
        return rc;
    rc = record(cmd, ctx, cmd->from_vendor ? "vendor.note" : "note", "ticket.note", details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "Note added to %s\n", cmd->ticket.text);
    return rc;
}

/*
 * Moves the ticket to status, recording event and action with the command's text under key
 * (no text: no key). A move the rules refuse names the ticket's status.
 */
static int change_status(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err,
                         const char *status, const char *event, const char *action, const char *key)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    const char *from = tl__cmd_member(t, "status");
    if (!tl_ticket_transition_allowed(from, status)) {
        if (strcmp(from, status) == 0)
            fprintf(err, "tierline: %s is already %s\n", cmd->ticket.text, status);
        else
            fprintf(err, "tierline: %s is %s and cannot become %s\n", cmd->ticket.text, from,
                    status);
        json_decref(t);
        return TL_ESTATE;
    }
    json_t *details = json_pack("{s:s}", "previous", from);
    json_decref(t);
    if (details != NULL && cmd->text.len > 0)
        json_object_set_new(details, key, json_string(cmd->text.text));
    char actor[96];
    tl__cmd_actor(cmd, actor);
    rc = details != NULL
             ? tl_ticket_update(ctx->store, cmd->ticket.id, NULL, status, actor, tl_wall_ms())
             : TL_ENOMEM;
    if (rc == 0)
        rc = record(cmd, ctx, event, action, details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "%s %s\n", cmd->ticket.text, status);
    return rc;
}

static int work_ticket_resolve(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    return change_status(cmd, ctx, out, err, TL_TICKET_STATUS_RESOLVED, "ticket.resolved",
                         "ticket.resolve", "resolution");
}

static int work_ticket_reopen(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    return change_status(cmd, ctx, out, err, TL_TICKET_STATUS_REOPENED, "ticket.reopened",
                         "ticket.reopen", "reason");
}

static int work_ticket_close(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    return change_status(cmd, ctx, out, err, TL_TICKET_STATUS_CLOSED, "ticket.closed",
                         "ticket.close", "reason");
}

const struct tl__command tl__cmd_ticket_take = {
    .name = "ticket take",
    .usage = "ticket take T-N",
    .summary = "assign a ticket to yourself",
    .capability = TL_CAP_TICKET_TAKE,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON(NULL), {0}},
             .positionals = ONE_TICKET,
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_ticket_take,
    .example = "ticket take T-1\n",
};

/* Kept as typed and shown escaped; but the record is JSON, which holds UTF-8 only. */
static int text_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->text.len == 0)
        return TL_EINVAL;
    if (!tl_text_utf8_valid(cmd->text.text, cmd->text.len)) {
        *problem = "the text is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

/* An optional text: none at all, or valid UTF-8. */
static int reason_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->text.len > 0 && !tl_text_utf8_valid(cmd->text.text, cmd->text.len)) {
        *problem = "the text is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

/* T-N TEXT...: every word after the ticket is the text, "--" and "--words" too; text_flags
 * TL_CLI_OPTIONAL when there may be none. */
#define TICKET_AND_TEXT(text_flags, finish_fn)                                                     \
    {                                                                                              \
        .options = (const tl_cli_arg_t[]){TL__CMD_JSON(NULL), {0}},                                \
        .positionals = (const tl_cli_arg_t[]){{.name = "T-N",                                      \
                                               .kind = TL_CLI_CHECK,                               \
                                               .check = tl__kind_ticket,                           \
                                               .out = TL_CLI_AT(struct cmd, ticket)},              \
                                              {.name = "TEXT",                                     \
                                               .flags = (text_flags),                              \
                                               .most = TL_CLI_MANY,                                \
                                               .kind = TL_CLI_CHECK,                               \
                                               .check = tl__kind_text_word,                        \
                                               .out = TL_CLI_AT(struct cmd, text)},                \
                                              {0}},                                                \
        .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE | TL_CLI_DASH_WORDS, .finish = (finish_fn)         \
    }
#define TICKET_TEXT TICKET_AND_TEXT(0, text_finish)
#define TICKET_REASON TICKET_AND_TEXT(TL_CLI_OPTIONAL, reason_finish)

/* ticket note T-N [--from-vendor] TEXT...: every other word after the ticket is the text. */
const struct tl__command tl__cmd_ticket_note = {
    .name = "ticket note",
    .usage = "ticket note T-N [--from-vendor] TEXT...",
    .summary = "add a note to a ticket",
    .capability = TL_CAP_TICKET_NOTE,
    .args = {.options = (const tl_cli_arg_t[]){{.name = "from-vendor",
                                                .help = "the text is the vendor's answer, "
                                                        "recorded by you (vendor.note)",
                                                .out = TL_CLI_AT(struct cmd, from_vendor)},
                                               TL__CMD_JSON(NULL),
                                               {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {.name = "TEXT",
                                                    .most = TL_CLI_MANY,
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_text_word,
                                                    .out = TL_CLI_AT(struct cmd, text)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE | TL_CLI_DASH_WORDS,
             .finish = text_finish},
    .work = work_ticket_note,
    .example = "ticket note T-1 the print queue was stuck\n",
};

const struct tl__command tl__cmd_ticket_resolve = {
    .name = "ticket resolve",
    .usage = "ticket resolve T-N TEXT...",
    .summary = "resolve a ticket, saying how",
    .capability = TL_CAP_TICKET_RESOLVE,
    .args = TICKET_TEXT,
    .work = work_ticket_resolve,
    .example = "ticket resolve T-1 restarted cups\n",
};

const struct tl__command tl__cmd_ticket_reopen = {
    .name = "ticket reopen",
    .usage = "ticket reopen T-N [TEXT...]",
    .summary = "reopen a resolved or closed ticket, optionally saying why",
    .capability = TL_CAP_TICKET_RESOLVE,
    .args = TICKET_REASON,
    .work = work_ticket_reopen,
    .example = "ticket reopen T-1 the printer jams again\n",
};

const struct tl__command tl__cmd_ticket_close = {
    .name = "ticket close",
    .usage = "ticket close T-N [TEXT...]",
    .summary = "close a ticket for good (a closed ticket can still be reopened)",
    .capability = TL_CAP_TICKET_RESOLVE,
    .args = TICKET_REASON,
    .work = work_ticket_close,
    .example = "ticket close T-1 confirmed by the user\n",
};
