/*
 * ticket ask: a technician asks the ticket's user something (docs/technicians.md "Commands",
 * docs/desk.md "The user's side of the ticket"). The question is a note, which the user reads
 * in `tierline-agent tickets` and as a desktop notification, and the ticket waits for the user
 * (waiting-user, which pauses its SLA clocks) until a technician moves it on.
 */
#include "relay/cmd/cmd_int.h"
#include "relay/cmd/show.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"

#include <string.h>

#define WAITING_USER "waiting-user"

static int work_ticket_ask(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    char status[32];
    snprintf(status, sizeof status, "%s", tl__cmd_member(t, "status"));
    json_decref(t);
    if (!tl_ticket_status_active(status)) {
        fprintf(err, "tierline: %s is %s; reopen it first (ticket reopen %s)\n", cmd->ticket.text,
                status, cmd->ticket.text);
        return TL_ESTATE;
    }
    char actor[96];
    tl__cmd_actor(cmd, actor);
    int64_t now = tl_wall_ms();
    /* Asking again while the ticket waits for the user is one more note, nothing else. */
    int moved = strcmp(status, WAITING_USER) != 0;
    if (moved &&
        (rc = tl_ticket_update(ctx->store, cmd->ticket.id, NULL, WAITING_USER, actor, now)) != 0) {
        fprintf(err, "tierline: %s is %s and cannot wait for the user\n", cmd->ticket.text, status);
        return rc;
    }
    json_t *details =
        json_pack("{s:s, s:b, s:s}", "text", cmd->text.text, "asks_user", 1, "previous", status);
    tl_timeline_entry_t entry = {
        .ticket_id = cmd->ticket.id,
        .time_ms = now,
        .actor = actor,
        .event = "note",
        .action = "ticket.ask",
        .details = details,
    };
    rc = details != NULL ? tl_timeline_record(ctx, &entry) : TL_ENOMEM;
    json_decref(details);
    if (rc == 0)
        fprintf(out, "%s waits for the user: the question is on the ticket\n", cmd->ticket.text);
    return rc;
}

/* Kept as typed and shown escaped; but the record is JSON, which holds UTF-8 only. */
static int question_finish(void *result, const char **problem)
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

const struct tl__command tl__cmd_ticket_ask = {
    .name = "ticket ask",
    .usage = "ticket ask T-N TEXT...",
    .summary = "ask the ticket's user something; the ticket waits for them",
    .capability = TL_CAP_TICKET_NOTE,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON(NULL), {0}},
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
             .finish = question_finish},
    .work = work_ticket_ask,
    .example = "ticket ask T-1 is the printer switched on? Please try printing again\n",
};
