/*
 * Who holds a ticket: ticket take (for oneself; another's ticket only with --steal REASON) and
 * ticket assign (to someone, by a lead, an admin or the ticket's assignee). docs/technicians.md
 * "Assignment", docs/desk.md "Queues, assignment and SLA wiring". A holder who loses a ticket to
 * someone else, and a technician given one, find a notice at the top of their next listing.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/desk/tickets.h"

#include <stdlib.h>
#include <string.h>

/* A reason as typed: 1..TL_NOTE_MAX bytes of UTF-8 (it goes into JSON records). */
#define REASON_PROBLEM "a reason is 1 to 4000 bytes of text"

static int reason_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->reason != NULL && !tl_text_utf8_valid(cmd->reason, strlen(cmd->reason))) {
        *problem = "the reason is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

/* Taking or assigning a new or reopened ticket opens it. */
static const char *opened_status(json_t *ticket)
{
    const char *status = tl__cmd_member(ticket, "status");
    return strcmp(status, TL_TICKET_STATUS_NEW) == 0 ||
                   strcmp(status, TL_TICKET_STATUS_REOPENED) == 0
               ? TL_TICKET_STATUS_OPEN
               : NULL;
}

/* Leaves user a notice about the command's ticket: "T-3: TEXT". */
static int notify(struct cmd *cmd, tl_job_ctx_t *ctx, const char *user, const char *text)
{
    return tl_store_notice_add(ctx->store, user, cmd->ticket.id, tl_wall_ms(), text);
}

/* "what by NAME[: REASON]" as a notice says it. */
static char *notice_text(const char *what, const char *by, const char *reason)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL)
        return NULL;
    fprintf(out, "%s by %s", what, by);
    if (reason != NULL)
        fprintf(out, ": %s", reason);
    if (fclose(out) != 0 || size > TL_STORE_MAX_NOTICE) {
        free(text);
        return NULL;
    }
    return text;
}

/* ---- ticket take ------------------------------------------------------------------------- */

static int work_ticket_take(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL, *details = NULL;
    char *notice = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    if ((rc = tl__cmd_still_active(cmd, t, err)) != 0)
        goto out;
    const char *holder = json_string_value(json_object_get(t, "assignee"));
    int taken_over = holder != NULL && strcmp(holder, cmd->tech.name) != 0;
    if (taken_over && cmd->reason == NULL) {
        char shown[300];
        fprintf(err,
                "tierline: %s is held by %s; take it over with --steal REASON, which tells "
                "them why\n",
                cmd->ticket.text, tl__cmd_shown(shown, sizeof shown, t, "assignee"));
        rc = TL_ESTATE;
        goto out;
    }
    details = json_pack("{s:s, s:s}", "assignee", cmd->tech.name, "previous",
                        tl__cmd_member(t, "assignee"));
    if (details != NULL && cmd->reason != NULL)
        json_object_set_new(details, "steal", json_string(cmd->reason));
    if (details == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    char actor[96];
    tl__cmd_actor(cmd, actor);
    rc = tl_ticket_update(ctx->store, cmd->ticket.id, cmd->tech.name, opened_status(t), actor,
                          tl_wall_ms());
    if (rc == 0)
        rc = tl__cmd_record(cmd, ctx, "ticket.taken", "ticket.take", details);
    if (rc == 0 && taken_over) {
        char what[96];
        snprintf(what, sizeof what, "%s was taken over from you", cmd->ticket.text);
        notice = notice_text(what, cmd->tech.name, cmd->reason);
        rc = notice != NULL ? notify(cmd, ctx, holder, notice) : TL_ENOMEM;
    }
    if (rc == 0 && taken_over)
        fprintf(out, "%s taken over from %s; assigned to %s\n", cmd->ticket.text, holder,
                cmd->tech.name);
    else if (rc == 0)
        fprintf(out, "%s assigned to %s\n", cmd->ticket.text, cmd->tech.name);
out:
    free(notice);
    json_decref(details);
    json_decref(t);
    return rc;
}

/* One ticket, and --steal REASON. */
const struct tl__command tl__cmd_ticket_take = {
    .name = "ticket take",
    .usage = "ticket take T-N [--steal REASON]",
    .summary = "assign a ticket to yourself; another's only with --steal and a reason",
    .capability = TL_CAP_TICKET_TAKE,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "steal",
                      .metavar = "REASON",
                      .help = "take over a ticket someone else holds, saying why (recorded, and "
                              "they are told)",
                      .kind = TL_CLI_TEXT,
                      .min = 1,
                      .max = TL_NOTE_MAX,
                      .out = TL_CLI_AT(struct cmd, reason),
                      .problem = "--steal needs a reason: " REASON_PROBLEM},
                     TL__CMD_JSON(NULL),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .finish = reason_finish},
    .work = work_ticket_take,
    .example = "ticket take T-1 --steal \"bob is away until Monday\"\n",
};

/* ---- ticket assign ----------------------------------------------------------------------- */

/* The account named name, copied into row (its strings the caller's to free with the list). */
static int find_user(tl_user_rows_t *users, const char *name, const tl_user_row_t **found)
{
    for (size_t i = 0; i < users->count; i++)
        if (strcmp(users->rows[i].name, name) == 0) {
            *found = &users->rows[i];
            return 0;
        }
    *found = NULL;
    return TL_ENOTFOUND;
}

/* A refusal that is an authorization matter: said, audited as access.denied, exit 77. */
static int refuse_assign(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, const char *holder)
{
    char actor[96], shown[300] = "nobody";
    tl__cmd_actor(cmd, actor);
    if (holder != NULL)
        tl_text_clip(shown, sizeof shown, holder, 0, TL_TEXT_LINE);
    fprintf(err,
            "tierline: permission denied: only a lead, an admin or the ticket's assignee (%s) may "
            "assign %s\n",
            shown, cmd->ticket.text);
    json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "command", cmd->command->name, "role",
                                cmd->tech.role, "needs", "lead or assignee", "to", cmd->account,
                                "assignee", holder);
    int rc = details != NULL
                 ? tl_worker_audit(ctx, actor, "access.denied", cmd->ticket.text, details)
                 : TL_ENOMEM;
    json_decref(details);
    if (rc == 0)
        cmd->refused = TL_EXIT_DENIED;
    return rc;
}

/* Whether the account may be given tickets: a name, enabled, not expired, a role that works
 * tickets. Says why not on err. */
static int check_assignee(struct cmd *cmd, const tl_user_row_t *user, FILE *err, int64_t now)
{
    char shown[300];
    tl_text_clip(shown, sizeof shown, cmd->account, 0, TL_TEXT_LINE);
    if (user == NULL) {
        fprintf(err, "tierline: no account named '%s'\n", shown);
        return TL_ENOTFOUND;
    }
    if (user->disabled) {
        fprintf(err, "tierline: the account '%s' is disabled\n", shown);
        return TL_EDISABLED;
    }
    if (user->expires > 0 && user->expires <= now) {
        char when[TL_UTC_TEXT];
        tl_format_utc(user->expires, when);
        fprintf(err, "tierline: the account '%s' expired on %s\n", shown, when);
        return TL_EEXPIRED;
    }
    if (!tl_role_can(tl_role_parse(user->role), TL_CAP_TICKET_TAKE)) {
        fprintf(err, "tierline: '%s' is an %s account, which works no tickets\n", shown,
                user->role);
        return TL_EINVAL;
    }
    return 0;
}

static int work_ticket_assign(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL, *details = NULL;
    tl_user_rows_t users = {0};
    const tl_user_row_t *me = NULL, *target = NULL;
    char *notice = NULL;
    int64_t now = tl_wall_ms();
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    if ((rc = tl_store_users_read(ctx->store, &users)) != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        goto out;
    }
    const char *holder = json_string_value(json_object_get(t, "assignee"));
    find_user(&users, cmd->tech.name, &me);
    int lead = (me != NULL && me->lead) || cmd->role == TL_ROLE_ADMIN;
    if (!lead && (holder == NULL || strcmp(holder, cmd->tech.name) != 0)) {
        rc = refuse_assign(cmd, ctx, err, holder);
        goto out;
    }
    if ((rc = tl__cmd_still_active(cmd, t, err)) != 0)
        goto out;
    find_user(&users, cmd->account, &target);
    if ((rc = check_assignee(cmd, target, err, now)) != 0)
        goto out;
    if (holder != NULL && strcmp(holder, cmd->account) == 0) {
        fprintf(err, "tierline: %s is already assigned to %s\n", cmd->ticket.text, cmd->account);
        rc = TL_EEXIST;
        goto out;
    }
    details = json_pack("{s:s, s:s}", "assignee", cmd->account, "previous",
                        tl__cmd_member(t, "assignee"));
    if (details != NULL && cmd->reason != NULL)
        json_object_set_new(details, "reason", json_string(cmd->reason));
    if (details == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    char actor[96], what[128];
    tl__cmd_actor(cmd, actor);
    rc = tl_ticket_update(ctx->store, cmd->ticket.id, cmd->account, opened_status(t), actor, now);
    if (rc == 0)
        rc = tl__cmd_record(cmd, ctx, "ticket.assigned", "ticket.assign", details);
    /* The new holder is told, and a holder who lost it to someone else. */
    if (rc == 0 && strcmp(cmd->account, cmd->tech.name) != 0) {
        snprintf(what, sizeof what, "%s was assigned to you", cmd->ticket.text);
        notice = notice_text(what, cmd->tech.name, cmd->reason);
        rc = notice != NULL ? notify(cmd, ctx, cmd->account, notice) : TL_ENOMEM;
        free(notice);
        notice = NULL;
    }
    if (rc == 0 && holder != NULL && strcmp(holder, cmd->tech.name) != 0) {
        snprintf(what, sizeof what, "%s was reassigned from you to %s", cmd->ticket.text,
                 cmd->account);
        notice = notice_text(what, cmd->tech.name, cmd->reason);
        rc = notice != NULL ? notify(cmd, ctx, holder, notice) : TL_ENOMEM;
    }
    if (rc == 0)
        fprintf(out, "%s assigned to %s\n", cmd->ticket.text, cmd->account);
out:
    free(notice);
    json_decref(details);
    json_decref(t);
    tl_user_rows_free(&users);
    return rc;
}

const struct tl__command tl__cmd_ticket_assign = {
    .name = "ticket assign",
    .usage = "ticket assign T-N USER [--reason TEXT]",
    .summary = "assign a ticket to someone (a lead, an admin, or the ticket's assignee)",
    .capability = TL_CAP_TICKET_ASSIGN,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "reason",
                      .metavar = "TEXT",
                      .help = "why, recorded and told to whoever gets or loses the ticket",
                      .kind = TL_CLI_TEXT,
                      .min = 1,
                      .max = TL_NOTE_MAX,
                      .out = TL_CLI_AT(struct cmd, reason),
                      .problem = "--reason needs a text of 1 to 4000 bytes"},
                     TL__CMD_JSON(NULL),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {.name = "USER",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_account,
                                                    .out = TL_CLI_AT(struct cmd, account),
                                                    .problem = "USER wants an account name (1-64 "
                                                               "of a-z 0-9 . _ -, starting with "
                                                               "a letter)"},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER,
             .options_after = 1,
             .finish = reason_finish},
    .work = work_ticket_assign,
    .example = "ticket assign T-1 bob --reason \"printer expert\"\n",
};
