/*
 * ticket hold T-N on|off --reason TEXT: a legal hold on a ticket (docs/desk.md "Retention"). A
 * held ticket's evidence payloads are never pruned, whatever the retention. Set or lifted by
 * admins and desk leads only (the ticket.assign capability, then the lead check, as for
 * assigning a ticket to someone else); auditors change nothing. Each change is a timeline event
 * "hold" and an audit entry "ticket.hold", written together or not at all; a refusal is audited
 * as access.denied.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/desk/retention.h"

#include <stdlib.h>
#include <string.h>

static const char *const hold_words[] = {"on", "off", NULL};

static int hold_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->reason != NULL && !tl_text_utf8_valid(cmd->reason, strlen(cmd->reason))) {
        *problem = "the reason is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

/* Whether the technician is a lead (or an admin): only they hold tickets. */
static int may_hold(struct cmd *cmd, tl_job_ctx_t *ctx, int *lead)
{
    *lead = cmd->role == TL_ROLE_ADMIN;
    if (*lead)
        return 0;
    tl_user_rows_t users = {0};
    int rc = tl_store_users_read(ctx->store, &users);
    for (size_t i = 0; rc == 0 && i < users.count; i++)
        if (strcmp(users.rows[i].name, cmd->tech.name) == 0)
            *lead = users.rows[i].lead;
    tl_user_rows_free(&users);
    return rc;
}

static int refuse_hold(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err)
{
    char actor[96];
    tl__cmd_actor(cmd, actor);
    fprintf(err, "tierline: permission denied: only a lead or an admin may hold %s\n",
            cmd->ticket.text);
    json_t *details =
        json_pack("{s:s, s:s, s:s, s:s}", "command", cmd->command->name, "role", cmd->tech.role,
                  "needs", "lead", "hold", cmd->hold_off ? "off" : "on");
    int rc = details != NULL
                 ? tl_worker_audit(ctx, actor, "access.denied", cmd->ticket.text, details)
                 : TL_ENOMEM;
    json_decref(details);
    if (rc == 0)
        cmd->refused = TL_EXIT_DENIED;
    return rc;
}

static int work_ticket_hold(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *ticket = NULL, *details = NULL;
    tl_ticket_event_rows_t events = {0};
    int lead = 0;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &ticket);
    if (rc != 0)
        return rc;
    if ((rc = may_hold(cmd, ctx, &lead)) != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        goto out;
    }
    if (!lead) {
        rc = refuse_hold(cmd, ctx, err);
        goto out;
    }
    if ((rc = tl_store_ticket_events_read(ctx->store, cmd->ticket.id, &events)) != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        goto out;
    }
    int held = tl_retention_held(&events, NULL);
    if (held == !cmd->hold_off) {
        fprintf(err, "tierline: %s is %s\n", cmd->ticket.text,
                held ? "already on legal hold" : "not on legal hold");
        rc = TL_EEXIST;
        goto out;
    }
    details = json_pack("{s:s, s:s}", "hold", cmd->hold_off ? "off" : "on", "reason", cmd->reason);
    rc = details != NULL
             ? tl__cmd_record(cmd, ctx, TL_RETENTION_EVENT_HOLD, TL_RETENTION_ACTION_HOLD, details)
             : TL_ENOMEM;
    if (rc == 0)
        fprintf(out, "%s %s\n", cmd->ticket.text,
                cmd->hold_off ? "is no longer on legal hold"
                              : "is on legal hold: its evidence is kept whatever the retention");
    else
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
out:
    json_decref(details);
    json_decref(ticket);
    tl_ticket_event_rows_free(&events);
    return rc;
}

const struct tl__command tl__cmd_ticket_hold = {
    .name = "ticket hold",
    .usage = "ticket hold T-N on|off --reason TEXT",
    .summary = "set or lift a legal hold: a held ticket's evidence is never pruned (leads, admins)",
    .capability = TL_CAP_TICKET_ASSIGN,
    .args = {.options =
                 (const tl_cli_arg_t[]){{.name = "reason",
                                         .metavar = "TEXT",
                                         .help = "why, recorded with the hold",
                                         .flags = TL_CLI_REQUIRED,
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
                                                   {.name = "on|off",
                                                    .kind = TL_CLI_WORD,
                                                    .words = hold_words,
                                                    .out = TL_CLI_AT(struct cmd, hold_off)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER,
             .options_after = 1,
             .finish = hold_finish},
    .work = work_ticket_hold,
    .example = "ticket hold T-1 on --reason \"litigation 2026-114\"\n",
};

void tl__cmd_show_hold(json_t *ticket, FILE *out)
{
    json_t *events = json_object_get(ticket, "events"), *last = NULL, *event;
    size_t i;
    json_array_foreach(events, i, event) {
        if (strcmp(tl__cmd_member(event, "kind"), TL_RETENTION_EVENT_HOLD) == 0)
            last = event;
    }
    json_t *details = json_object_get(last, "details");
    const char *hold = json_string_value(json_object_get(details, "hold"));
    if (last == NULL || hold == NULL || strcmp(hold, "on") != 0) {
        json_object_set_new(ticket, "hold", json_null());
        return;
    }
    json_object_set_new(ticket, "hold",
                        json_pack("{s:O, s:O, s:O}", "since", json_object_get(last, "time"), "by",
                                  json_object_get(last, "actor"), "reason",
                                  json_object_get(details, "reason")));
    if (out == NULL)
        return;
    char since[TL_UTC_TEXT], by[300], reason[1024];
    tl_format_utc(json_integer_value(json_object_get(last, "time")), since);
    fprintf(out, "  hold:     on legal hold since %s by %s: %s\n", since,
            tl__cmd_shown(by, sizeof by, last, "actor"),
            tl__cmd_shown(reason, sizeof reason, details, "reason"));
}
