/*
 * Tier 4 in the technicians' commands (docs/desk.md "Vendor hand-off and evidence bundles"):
 * `ticket vendor`, which hands a ticket to an outside vendor, and what a vendor account may see:
 * only the tickets bound to it (relay/desk/vendor.h), every other ticket answered as if it did
 * not exist, and the attempt audited.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/desk/vendor.h"

#include <stdlib.h>
#include <string.h>

/* ---- what a vendor account may see ------------------------------------------------------------
 */

int tl__cmd_ticket_access(struct cmd *cmd, tl_job_ctx_t *ctx)
{
    int rc = tl_vendor_ticket_access(ctx->store, cmd->role, cmd->tech.name, cmd->ticket.id,
                                     tl_wall_ms(), NULL);
    if (rc != TL_ENOTFOUND)
        return rc;
    /* The same answer as for a ticket that does not exist; the audit log says which it was. */
    char actor[96];
    tl__cmd_actor(cmd, actor);
    json_t *details = json_pack("{s:s, s:s, s:s}", "command", cmd->command->name, "role",
                                cmd->tech.role, "reason", "ticket not bound to the account");
    int audit_rc = details != NULL
                       ? tl_worker_audit(ctx, actor, "access.denied", cmd->ticket.text, details)
                       : TL_ENOMEM;
    json_decref(details);
    if (audit_rc != 0)
        return audit_rc;
    cmd->refused = 1;
    return TL_ENOTFOUND;
}

int tl__cmd_ticket_list_access(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *tickets)
{
    if (!tl_role_ticket_bound(cmd->role))
        return 0;
    tl_ticket_grant_rows_t grants;
    int rc = tl_store_grants_read(ctx->store, cmd->tech.name, &grants);
    if (rc != 0)
        return rc;
    int64_t now = tl_wall_ms();
    for (size_t i = json_array_size(tickets); i-- > 0;) {
        int64_t id = 0;
        int bound = 0;
        tl_id_parse(tl__cmd_member(json_array_get(tickets, i), "id"), TL_ID_TICKET, &id);
        for (size_t g = 0; g < grants.count && !bound; g++)
            bound = grants.rows[g].ticket_id == id && grants.rows[g].expires > now;
        if (!bound)
            json_array_remove(tickets, i);
    }
    tl_ticket_grant_rows_free(&grants);
    return 0;
}

void tl__cmd_print_vendor(FILE *out, json_t *ticket)
{
    char vendor[600], reference[600], when[TL_UTC_TEXT];
    if (!json_is_string(json_object_get(ticket, "vendor")))
        return;
    fprintf(out, "  vendor:   %s, case %s", tl__cmd_shown(vendor, sizeof vendor, ticket, "vendor"),
            tl__cmd_shown(reference, sizeof reference, ticket, "vendor_case"));
    json_t *follow_up = json_object_get(ticket, "follow_up");
    if (json_is_integer(follow_up)) {
        tl_format_utc(json_integer_value(follow_up), when);
        fprintf(out, "; follow up by %s%s", when,
                json_integer_value(follow_up) <= tl_wall_ms() ? " (due)" : "");
    }
    fprintf(out, "\n");
}

/* ---- ticket vendor ----------------------------------------------------------------------------
 */

/* --vendor NAME, --case REF: one line of text. */
static int kind_vendor_text(const char *word, void *out, const char **problem)
{
    if (!tl_vendor_text_valid(word))
        return TL_EINVAL;
    if (out != NULL)
        *(const char **)out = word;
    return 0;
}

/* --follow-up WHEN: a duration from now or a date, the start of that day (UTC). */
static int kind_follow_up(const char *word, void *out, const char **problem)
{
    /* The option's name before the desk's reason; words are parsed on the loop thread only. */
    static char named[200];
    int64_t when = 0;
    const char *why = NULL;
    int rc = tl_vendor_when_parse(word, tl_wall_ms(), TL_VENDOR_DAY_START, &when, &why);
    if (rc != 0 && why != NULL && snprintf(named, sizeof named, "--follow-up: %s", why) > 0)
        *problem = named;
    if (rc == 0 && out != NULL)
        *(int64_t *)out = when;
    return rc;
}

static void print_handoff(FILE *out, struct cmd *cmd, const char *previous)
{
    char vendor[600], reference[600], when[TL_UTC_TEXT];
    tl_text_clip(vendor, sizeof vendor, cmd->vendor_name, 0, TL_TEXT_LINE);
    tl_text_clip(reference, sizeof reference, cmd->vendor_case, 0, TL_TEXT_LINE);
    fprintf(out, "%s waiting-vendor (was %s): %s, case %s", cmd->ticket.text, previous, vendor,
            reference);
    if (cmd->follow_up_ms != 0) {
        tl_format_utc(cmd->follow_up_ms, when);
        fprintf(out, "; follow up by %s", when);
    }
    fprintf(out, "\n");
}

static int work_ticket_vendor(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL, *details = NULL;
    char actor[96], previous[32];
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    snprintf(previous, sizeof previous, "%s", tl__cmd_member(t, "status"));
    json_decref(t);
    if (!tl_ticket_status_active(previous)) {
        fprintf(err, "tierline: %s is %s; reopen it first (ticket reopen %s)\n", cmd->ticket.text,
                previous, cmd->ticket.text);
        return TL_ESTATE;
    }
    int64_t now = tl_wall_ms();
    tl__cmd_actor(cmd, actor);
    /* A ticket already waiting on a vendor keeps its status (and its vendor clock): the hand-off
     * is updated. Otherwise the change of status is in its history, which the clocks replay. */
    if (strcmp(previous, "waiting-vendor") != 0)
        rc = tl_ticket_update(ctx->store, cmd->ticket.id, NULL, "waiting-vendor", actor, now);
    if (rc == 0)
        rc = tl_store_ticket_column_set(ctx->store, cmd->ticket.id, TL_TICKET_VENDOR,
                                        cmd->vendor_name, 0, now);
    if (rc == 0)
        rc = tl_store_ticket_column_set(ctx->store, cmd->ticket.id, TL_TICKET_VENDOR_CASE,
                                        cmd->vendor_case, 0, now);
    if (rc == 0)
        rc = tl_store_ticket_column_set(ctx->store, cmd->ticket.id, TL_TICKET_FOLLOW_UP, NULL,
                                        cmd->follow_up_ms, now);
    if (rc == 0) {
        details = json_pack("{s:s, s:s, s:s, s:s}", "vendor", cmd->vendor_name, "case",
                            cmd->vendor_case, "previous", previous, "status", "waiting-vendor");
        if (details == NULL)
            rc = TL_ENOMEM;
        else
            json_object_set_new(details, "follow_up",
                                cmd->follow_up_ms != 0 ? json_integer(cmd->follow_up_ms)
                                                       : json_null());
    }
    if (rc == 0) {
        tl_timeline_entry_t entry = {.ticket_id = cmd->ticket.id,
                                     .time_ms = now,
                                     .actor = actor,
                                     .event = "vendor.handoff",
                                     .action = "ticket.vendor",
                                     .details = details};
        rc = tl_timeline_record(ctx, &entry);
    }
    if (rc == 0 && cmd->json) {
        json_object_set_new(details, "ticket", json_string(cmd->ticket.text));
        tl__cmd_print_json(out, details);
    } else if (rc == 0) {
        print_handoff(out, cmd, previous);
    } else {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    }
    json_decref(details);
    return rc;
}

const struct tl__command tl__cmd_ticket_vendor = {
    .name = "ticket vendor",
    .usage = "ticket vendor T-N --vendor NAME --case REF [--follow-up WHEN] [--json]",
    .summary = "hand a ticket to an outside vendor: it waits on the vendor's case",
    .capability = TL_CAP_TICKET_VENDOR,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "vendor",
                      .metavar = "NAME",
                      .help = "who the ticket waits on (one line, at most 128 bytes)",
                      .flags = TL_CLI_REQUIRED,
                      .kind = TL_CLI_CHECK,
                      .check = kind_vendor_text,
                      .out = TL_CLI_AT(struct cmd, vendor_name),
                      .problem = "--vendor needs a name of 1 to 128 bytes on one line"},
                     {.name = "case",
                      .metavar = "REF",
                      .help = "the vendor's case or ticket reference (one line, at most 128 "
                              "bytes)",
                      .flags = TL_CLI_REQUIRED,
                      .kind = TL_CLI_CHECK,
                      .check = kind_vendor_text,
                      .out = TL_CLI_AT(struct cmd, vendor_case),
                      .problem = "--case needs a reference of 1 to 128 bytes on one line"},
                     {.name = "follow-up",
                      .metavar = "WHEN",
                      .help = "when to chase the vendor: 2d, 36h, 90m from now, or a date "
                              "YYYY-MM-DD or time YYYY-MM-DDTHH:MMZ (UTC); none if left out",
                      .kind = TL_CLI_CHECK,
                      .check = kind_follow_up,
                      .out = TL_CLI_AT(struct cmd, follow_up_ms),
                      .problem = "--follow-up: '%s' is not a duration like 2d or 36h, nor a "
                                 "date YYYY-MM-DD"},
                     TL__CMD_JSON("the hand-off as a JSON object: ticket, vendor, case, "
                                  "follow_up (ms since the epoch, or null), previous, status"),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER},
    .work = work_ticket_vendor,
    .example = "ticket vendor T-4 --vendor \"ACME Printers\" --case CS-20931 --follow-up 2d\n",
};
