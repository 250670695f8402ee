/*
 * The known-problem commands (docs/technicians.md "Escalation and known problems"; docs/desk.md
 * "Known problems"): problems, problem open, problem link, problem show, problem workaround,
 * problem state. A problem's changes are in the audit log with the problem as subject ("P-3");
 * what a ticket learns (linked, the problem fixed) is on its timeline too.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/desk/problems.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"

#include <stdlib.h>
#include <string.h>

/* Tickets a problem.state entry names; the count is always whole. */
#define TOLD_LISTED_MAX 100

/* ---- reading arguments ---------------------------------------------------------------------- */

static int kind_problem(const char *word, void *out, const char **problem)
{
    int64_t id;
    if (tl_id_parse(word, TL_ID_PROBLEM, &id) != 0)
        return TL_EINVAL;
    tl__ticket_arg_t *arg = out;
    if (arg != NULL) {
        arg->id = id;
        snprintf(arg->text, sizeof arg->text, "%s", word);
    }
    return 0;
}

static int kind_state(const char *word, void *out, const char **problem)
{
    if (!tl_problem_state_valid(word))
        return TL_EINVAL;
    if (out != NULL)
        snprintf(out, 16, "%s", word);
    return 0;
}

/* problem state P-N STATE: only forward, so investigating is not one to set. */
static int kind_new_state(const char *word, void *out, const char **problem)
{
    if (strcmp(word, TL_PROBLEM_KNOWN_ERROR) != 0 && strcmp(word, TL_PROBLEM_FIXED) != 0)
        return TL_EINVAL;
    return kind_state(word, out, problem);
}

#define PROBLEM_ARG                                                                                \
    {                                                                                              \
        .name = "P-N", .kind = TL_CLI_CHECK, .check = kind_problem,                                \
        .out = TL_CLI_AT(struct cmd, problem), .problem = "a problem is named P-N, e.g. P-3"       \
    }

/* ---- shared ------------------------------------------------------------------------------------
 */

static void problem_id_text(int64_t id, char out[TL_ID_TEXT])
{
    tl_id_format(out, TL_ID_PROBLEM, id);
}

/* The problem named on the command line; "no problem P-N" on err otherwise. */
static int load_problem(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, tl_problem_row_t *problem)
{
    int rc = tl_store_problem_read(ctx->store, cmd->problem.id, problem);
    if (rc == TL_ENOTFOUND)
        fprintf(err, "tierline: no problem %s\n", cmd->problem.text);
    else if (rc != 0)
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    return rc;
}

/* An audit entry about a problem, its subject "P-N". */
static int audit_problem(struct cmd *cmd, tl_job_ctx_t *ctx, const char *action, int64_t id,
                         json_t *details)
{
    char actor[96], subject[TL_ID_TEXT];
    tl__cmd_actor(cmd, actor);
    problem_id_text(id, subject);
    return details != NULL ? tl_worker_audit(ctx, actor, action, subject, details) : TL_ENOMEM;
}

/* Links ticket to problem: the column, then problem.linked on its timeline with its audit entry. */
static int link_ticket(struct cmd *cmd, tl_job_ctx_t *ctx, const tl_ticket_row_t *ticket,
                       const tl_problem_row_t *problem, int64_t now)
{
    char actor[96], id[TL_ID_TEXT], previous[TL_ID_TEXT];
    tl__cmd_actor(cmd, actor);
    problem_id_text(problem->id, id);
    if (ticket->problem_id > 0)
        problem_id_text(ticket->problem_id, previous);
    json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "problem", id, "title",
                                problem->title, "state", problem->state, "workaround",
                                problem->workaround != NULL ? problem->workaround : "", "previous",
                                ticket->problem_id > 0 ? previous : NULL);
    if (details == NULL)
        return TL_ENOMEM;
    tl_timeline_entry_t entry = {
        .ticket_id = ticket->id,
        .time_ms = now,
        .actor = actor,
        .event = "problem.linked",
        .action = "problem.link",
        .details = details,
    };
    int rc = tl_store_ticket_column_set(ctx->store, ticket->id, TL_TICKET_PROBLEM, NULL,
                                        problem->id, now);
    if (rc == 0)
        rc = tl_timeline_record(ctx, &entry);
    json_decref(details);
    return rc;
}

static json_t *problem_json(const tl_problem_row_t *problem)
{
    char id[TL_ID_TEXT];
    problem_id_text(problem->id, id);
    return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:I, s:I, s:I, s:I}", "id", id, "title",
                     problem->title, "fingerprint", problem->fingerprint, "workaround",
                     problem->workaround != NULL ? problem->workaround : "", "state",
                     problem->state, "fix", problem->fix, "opened_by", problem->opened_by,
                     "created", (json_int_t)problem->created, "updated",
                     (json_int_t)problem->updated, "tickets", (json_int_t)problem->tickets,
                     "devices", (json_int_t)problem->devices);
}

/* A text from others on one line, escaped; "-" for none. */
static void print_text(FILE *out, const char *label, const char *text)
{
    char *shown = text != NULL && text[0] != '\0' ? tl_text_escape_dup(text, TL_TEXT_LINE) : NULL;
    fprintf(out, "%s%s\n", label, shown != NULL ? shown : "-");
    free(shown);
}

/* ---- problems ------------------------------------------------------------------------------- */

static int work_problems(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_problem_rows_t problems;
    int rc = tl_store_problems_read(ctx->store, cmd->problem_state[0] ? cmd->problem_state : NULL,
                                    &problems);
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        return rc;
    }
    if (cmd->json) {
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < problems.count; i++)
            if (json_array_append_new(list, problem_json(&problems.rows[i])) != 0)
                rc = TL_ENOMEM;
        rc = list != NULL && rc == 0 ? tl__cmd_print_json(out, list) : TL_ENOMEM;
        json_decref(list);
    } else {
        fprintf(out, "%-7s %-13s %7s %7s %-20s %s\n", "ID", "STATE", "TICKETS", "DEVICES",
                "UPDATED", "TITLE");
        for (size_t i = 0; i < problems.count; i++) {
            const tl_problem_row_t *p = &problems.rows[i];
            char id[TL_ID_TEXT], updated[32], title[1024];
            problem_id_text(p->id, id);
            tl_format_utc(p->updated, updated);
            tl_text_clip(title, sizeof title, p->title, 0, TL_TEXT_LINE);
            fprintf(out, "%-7s %-13s %7lld %7lld %-20s %s\n", id, p->state, (long long)p->tickets,
                    (long long)p->devices, updated, title);
        }
        if (problems.count == 0)
            fprintf(out, "(no problems)\n");
    }
    tl_problem_rows_free(&problems);
    return rc;
}

const struct tl__command tl__cmd_problems = {
    .name = "problems",
    .usage = "problems [--state S] [--json]",
    .summary = "list known problems, with how many tickets and devices each has",
    .capability = TL_CAP_PROBLEMS_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "state",
                      .metavar = "S",
                      .help = "only problems in state S: investigating, known-error, fixed",
                      .kind = TL_CLI_CHECK,
                      .check = kind_state,
                      .out = TL_CLI_AT(struct cmd, problem_state),
                      .problem = "--state wants investigating, known-error or fixed"},
                     TL__CMD_JSON("a JSON array of objects: id, title, fingerprint (null if "
                                  "none), workaround, state, fix (null until fixed), opened_by, "
                                  "created, updated, tickets, devices"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .work = work_problems,
    .example = "problems --state known-error\n",
};

/* ---- problem open --------------------------------------------------------------------------- */

static int work_problem_open(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_ticket_row_t ticket = {0};
    tl_problem_row_t problem = {0};
    char actor[96], id[TL_ID_TEXT];
    int64_t now = tl_wall_ms(), problem_id = 0;
    int rc = cmd->ticket.id > 0 ? tl__cmd_load_ticket_row(cmd, ctx, err, &ticket) : 0;
    if (rc != 0)
        return rc;
    tl__cmd_actor(cmd, actor);
    tl_problem_row_t opened = {
        .title = cmd->text.text,
        .fingerprint = ticket.fingerprint,
        .workaround = cmd->workaround,
        .state = TL_PROBLEM_INVESTIGATING,
        .opened_by = actor,
    };
    if ((rc = tl_store_problem_add(ctx->store, &opened, now, &problem_id)) != 0 ||
        (rc = tl_store_problem_read(ctx->store, problem_id, &problem)) != 0)
        goto out;
    json_t *details = json_pack("{s:s, s:s?, s:s, s:s?}", "title", problem.title, "fingerprint",
                                problem.fingerprint, "workaround", problem.workaround, "from",
                                cmd->ticket.id > 0 ? cmd->ticket.text : NULL);
    rc = audit_problem(cmd, ctx, "problem.open", problem_id, details);
    json_decref(details);
    if (rc == 0 && cmd->ticket.id > 0)
        rc = link_ticket(cmd, ctx, &ticket, &problem, now);
    if (rc != 0) {
        fprintf(err, "tierline: the problem was not opened: %s\n", tl_strerror(rc));
        goto out;
    }
    problem_id_text(problem_id, id);
    if (cmd->json) {
        json_t *doc = problem_json(&problem);
        if (doc != NULL && cmd->ticket.id > 0)
            json_object_set_new(doc, "linked", json_string(cmd->ticket.text));
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
        goto out;
    }
    char *title = tl_text_escape_dup(problem.title, TL_TEXT_LINE);
    fprintf(out, "%s opened (%s): %s\n", id, problem.state, title != NULL ? title : "");
    free(title);
    if (cmd->ticket.id > 0) {
        if (problem.fingerprint != NULL)
            fprintf(out, "  fingerprint %s, from %s\n", problem.fingerprint, cmd->ticket.text);
        else
            fprintf(out,
                    "  no fingerprint (%s has no diagnostic conditions); matched by its "
                    "title's words\n",
                    cmd->ticket.text);
        fprintf(out, "%s linked to %s\n", cmd->ticket.text, id);
    }
out:
    tl_problem_row_clear(&problem);
    tl_ticket_row_clear(&ticket);
    return rc;
}

/* The title is the words; a workaround, if given, is valid UTF-8 too. */
static int open_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->text.len == 0) {
        *problem = "problem open needs a title";
        return TL_EINVAL;
    }
    if (cmd->text.len > TL_PROBLEM_TITLE_MAX) {
        *problem = "a problem's title is at most 200 bytes";
        return TL_EINVAL;
    }
    if (!tl_text_utf8_valid(cmd->text.text, cmd->text.len) ||
        (cmd->workaround != NULL &&
         !tl_text_utf8_valid(cmd->workaround, strlen(cmd->workaround)))) {
        *problem = "the text is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

#define WORKAROUND_PROBLEM "--workaround needs a text of 1 to 4000 bytes"

const struct tl__command tl__cmd_problem_open = {
    .name = "problem open",
    .usage = "problem open TITLE... [--from T-N] [--workaround TEXT] [--json]",
    .summary = "open a known problem, from a ticket whose fingerprint it takes",
    .capability = TL_CAP_PROBLEMS_MANAGE,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "from",
                      .metavar = "T-N",
                      .help = "the ticket it was found on: its diagnostic fingerprint becomes "
                              "the problem's, and it is linked",
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_ticket,
                      .out = TL_CLI_AT(struct cmd, ticket),
                      .problem = "--from wants a ticket, T-N"},
                     {.name = "workaround",
                      .metavar = "TEXT",
                      .help = "what users can do meanwhile",
                      .kind = TL_CLI_TEXT,
                      .min = 1,
                      .max = TL_PROBLEM_TEXT_MAX,
                      .out = TL_CLI_AT(struct cmd, workaround),
                      .problem = WORKAROUND_PROBLEM},
                     TL__CMD_JSON("the problem as problems --json lists it, with linked (the "
                                  "ticket, if --from)"),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "TITLE",
                                                    .most = TL_CLI_MANY,
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_text_word,
                                                    .out = TL_CLI_AT(struct cmd, text),
                                                    .problem = "problem open needs a title"},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .finish = open_finish},
    .work = work_problem_open,
    .example = "problem open Printers offline after CUPS update --from T-4 --workaround \"restart "
               "cups\"\n",
};

/* ---- problem link --------------------------------------------------------------------------- */

static int work_problem_link(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_ticket_row_t ticket = {0};
    tl_problem_row_t problem = {0};
    int rc = tl__cmd_load_ticket_row(cmd, ctx, err, &ticket);
    if (rc != 0)
        return rc;
    if ((rc = load_problem(cmd, ctx, err, &problem)) != 0)
        goto out;
    if (ticket.problem_id == problem.id) {
        fprintf(err, "tierline: %s is already linked to %s\n", cmd->ticket.text, cmd->problem.text);
        rc = TL_ESTATE;
        goto out;
    }
    if ((rc = link_ticket(cmd, ctx, &ticket, &problem, tl_wall_ms())) != 0) {
        fprintf(err, "tierline: %s was not linked: %s\n", cmd->ticket.text, tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        json_t *doc =
            json_pack("{s:s, s:o}", "ticket", cmd->ticket.text, "problem", problem_json(&problem));
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
        goto out;
    }
    char *title = tl_text_escape_dup(problem.title, TL_TEXT_LINE);
    fprintf(out, "%s linked to %s (%s): %s\n", cmd->ticket.text, cmd->problem.text, problem.state,
            title != NULL ? title : "");
    free(title);
    if (strcmp(problem.state, TL_PROBLEM_FIXED) == 0)
        print_text(out, "fixed: ", problem.fix);
    else
        print_text(out, "workaround: ", problem.workaround);
out:
    tl_problem_row_clear(&problem);
    tl_ticket_row_clear(&ticket);
    return rc;
}

const struct tl__command tl__cmd_problem_link = {
    .name = "problem link",
    .usage = "problem link T-N P-N [--json]",
    .summary = "link a ticket to a known problem",
    .capability = TL_CAP_PROBLEM_LINK,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("an object: ticket, problem"), {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   PROBLEM_ARG,
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_problem_link,
    .example = "problem link T-7 P-3\n",
};

/* ---- problem show --------------------------------------------------------------------------- */

static int work_problem_show(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_problem_row_t problem = {0};
    tl_problem_ticket_rows_t tickets = {0};
    int rc = load_problem(cmd, ctx, err, &problem);
    if (rc != 0)
        return rc;
    if ((rc = tl_store_problem_tickets_read(ctx->store, problem.id, &tickets)) != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        json_t *doc = problem_json(&problem), *linked = json_array();
        for (size_t i = 0; doc != NULL && linked != NULL && i < tickets.count; i++) {
            const tl_problem_ticket_row_t *t = &tickets.rows[i];
            char id[TL_ID_TEXT], device[TL_ID_TEXT];
            json_t *item = json_pack("{s:s, s:s, s:s, s:i, s:s}", "id",
                                     tl_id_format(id, TL_ID_TICKET, t->ticket_id), "device",
                                     tl_id_format(device, TL_ID_DEVICE, t->device_id), "status",
                                     t->status, "tier", t->tier, "title", t->title);
            if (json_array_append_new(linked, item) != 0)
                rc = TL_ENOMEM;
        }
        if (doc == NULL || linked == NULL || json_object_set_new(doc, "linked", linked) != 0)
            rc = TL_ENOMEM;
        else if (rc == 0)
            rc = tl__cmd_print_json(out, doc);
        json_decref(doc);
        goto out;
    }
    char id[TL_ID_TEXT], created[32], updated[32], title[1024], by[300];
    problem_id_text(problem.id, id);
    tl_format_utc(problem.created, created);
    tl_format_utc(problem.updated, updated);
    tl_text_clip(title, sizeof title, problem.title, 0, TL_TEXT_LINE);
    tl_text_clip(by, sizeof by,
                 strncmp(problem.opened_by, "tech:", 5) == 0 ? problem.opened_by + 5
                                                             : problem.opened_by,
                 0, TL_TEXT_LINE);
    fprintf(out, "%s  %s\n  state:       %s\n", id, title, problem.state);
    fprintf(out, "  fingerprint: %s\n",
            problem.fingerprint != NULL ? problem.fingerprint : "none (matched by its title)");
    print_text(out, "  workaround:  ", problem.workaround);
    print_text(out, "  fix:         ", problem.fix);
    fprintf(out, "  opened:      %s by %s\n  updated:     %s\n", created, by, updated);
    fprintf(out, "  instances:   %lld ticket%s on %lld device%s\n", (long long)problem.tickets,
            problem.tickets == 1 ? "" : "s", (long long)problem.devices,
            problem.devices == 1 ? "" : "s");
    fprintf(out, "\nTickets:\n");
    for (size_t i = 0; i < tickets.count; i++) {
        const tl_problem_ticket_row_t *t = &tickets.rows[i];
        char ticket_id[TL_ID_TEXT], device[TL_ID_TEXT], ticket_title[1024];
        tl_text_clip(ticket_title, sizeof ticket_title, t->title, 0, TL_TEXT_LINE);
        fprintf(out, "  %-7s %-14s tier %d  %-6s %s\n",
                tl_id_format(ticket_id, TL_ID_TICKET, t->ticket_id), t->status, t->tier,
                tl_id_format(device, TL_ID_DEVICE, t->device_id), ticket_title);
    }
    if (tickets.count == 0)
        fprintf(out, "  (none linked)\n");
out:
    tl_problem_ticket_rows_free(&tickets);
    tl_problem_row_clear(&problem);
    return rc;
}

const struct tl__command tl__cmd_problem_show = {
    .name = "problem show",
    .usage = "problem show P-N [--json]",
    .summary = "a known problem: its workaround, state, fix and linked tickets",
    .capability = TL_CAP_PROBLEMS_READ,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("the problem as problems --json lists "
                                                            "it, with linked: [{id, device, "
                                                            "status, tier, title}]"),
                                               {0}},
             .positionals = (const tl_cli_arg_t[]){PROBLEM_ARG, {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_problem_show,
    .example = "problem show P-3\n",
};

/* ---- problem workaround --------------------------------------------------------------------- */

static int work_problem_workaround(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_problem_row_t problem = {0};
    int rc = load_problem(cmd, ctx, err, &problem);
    if (rc != 0)
        return rc;
    json_t *details = json_pack("{s:s, s:s}", "workaround", cmd->text.text, "previous",
                                problem.workaround != NULL ? problem.workaround : "");
    rc = tl_store_problem_set(ctx->store, problem.id, cmd->text.text, NULL, NULL, tl_wall_ms());
    if (rc == 0)
        rc = audit_problem(cmd, ctx, "problem.workaround", problem.id, details);
    json_decref(details);
    if (rc != 0)
        fprintf(err, "tierline: the workaround was not kept: %s\n", tl_strerror(rc));
    else if (cmd->json) {
        json_t *doc =
            json_pack("{s:s, s:s}", "problem", cmd->problem.text, "workaround", cmd->text.text);
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
    } else
        fprintf(out, "Workaround of %s set\n", cmd->problem.text);
    tl_problem_row_clear(&problem);
    return rc;
}

static int workaround_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->text.len == 0 || cmd->text.len > TL_PROBLEM_TEXT_MAX) {
        *problem = "problem workaround needs a text of 1 to 4000 bytes";
        return TL_EINVAL;
    }
    if (!tl_text_utf8_valid(cmd->text.text, cmd->text.len)) {
        *problem = "the text is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

const struct tl__command tl__cmd_problem_workaround = {
    .name = "problem workaround",
    .usage = "problem workaround P-N TEXT... [--json]",
    .summary = "set what users can do meanwhile about a known problem",
    .capability = TL_CAP_PROBLEMS_MANAGE,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("an object: problem, workaround"), {0}},
             .positionals = (const tl_cli_arg_t[]){PROBLEM_ARG,
                                                   {.name = "TEXT",
                                                    .most = TL_CLI_MANY,
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_text_word,
                                                    .out = TL_CLI_AT(struct cmd, text)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE | TL_CLI_DASH_WORDS,
             .finish = workaround_finish},
    .work = work_problem_workaround,
    .example = "problem workaround P-3 restart cups, then print again\n",
};

/* ---- problem state -------------------------------------------------------------------------- */

/* problem.fixed on the timeline of every linked ticket still being worked on: how many. */
static int tell_linked(struct cmd *cmd, tl_job_ctx_t *ctx, const tl_problem_row_t *problem,
                       int64_t now, json_t *told)
{
    tl_problem_ticket_rows_t tickets;
    char actor[96], id[TL_ID_TEXT];
    int rc = tl_store_problem_tickets_read(ctx->store, problem->id, &tickets);
    if (rc != 0)
        return rc;
    tl__cmd_actor(cmd, actor);
    problem_id_text(problem->id, id);
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "problem", id, "title", problem->title, "fix", cmd->fix);
    rc = details != NULL ? 0 : TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < tickets.count; i++) {
        if (!tl_ticket_status_active(tickets.rows[i].status))
            continue;
        tl_timeline_entry_t entry = {
            .ticket_id = tickets.rows[i].ticket_id,
            .time_ms = now,
            .actor = actor,
            .event = "problem.fixed",
            .details = details,
        };
        char ticket[TL_ID_TEXT];
        rc = tl_timeline_record(ctx, &entry);
        if (rc == 0 &&
            json_array_append_new(told, json_string(tl_id_format(ticket, TL_ID_TICKET,
                                                                 tickets.rows[i].ticket_id))) != 0)
            rc = TL_ENOMEM;
    }
    json_decref(details);
    tl_problem_ticket_rows_free(&tickets);
    return rc;
}

static int work_problem_state(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_problem_row_t problem = {0};
    json_t *told = NULL;
    int64_t now = tl_wall_ms();
    int rc = load_problem(cmd, ctx, err, &problem);
    if (rc != 0)
        return rc;
    if (!tl_problem_transition_allowed(problem.state, cmd->problem_state)) {
        if (strcmp(problem.state, cmd->problem_state) == 0)
            fprintf(err, "tierline: %s is already %s\n", cmd->problem.text, problem.state);
        else
            fprintf(err,
                    "tierline: %s is %s and cannot become %s (investigating, known-error, "
                    "fixed: only forward)\n",
                    cmd->problem.text, problem.state, cmd->problem_state);
        rc = TL_ESTATE;
        goto out;
    }
    int fixed = strcmp(cmd->problem_state, TL_PROBLEM_FIXED) == 0;
    if ((told = json_array()) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    rc = tl_store_problem_set(ctx->store, problem.id, NULL, cmd->problem_state, cmd->fix, now);
    if (rc == 0 && fixed)
        rc = tell_linked(cmd, ctx, &problem, now, told);
    if (rc == 0) {
        size_t told_count = json_array_size(told);
        while (json_array_size(told) > TOLD_LISTED_MAX)
            json_array_remove(told, json_array_size(told) - 1);
        json_t *details = json_pack("{s:s, s:s, s:s?, s:O, s:I}", "previous", problem.state,
                                    "state", cmd->problem_state, "fix", cmd->fix, "told", told,
                                    "told_count", (json_int_t)told_count);
        rc = audit_problem(cmd, ctx, "problem.state", problem.id, details);
        json_decref(details);
        if (rc == 0 && cmd->json) {
            json_t *doc = json_pack("{s:s, s:s, s:s, s:s?, s:O, s:I}", "problem", cmd->problem.text,
                                    "previous", problem.state, "state", cmd->problem_state, "fix",
                                    cmd->fix, "told", told, "told_count", (json_int_t)told_count);
            rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
            json_decref(doc);
        } else if (rc == 0) {
            fprintf(out, "%s %s\n", cmd->problem.text, cmd->problem_state);
            if (fixed)
                fprintf(out, "%zu linked open ticket%s told\n", told_count,
                        told_count == 1 ? "" : "s");
        }
    }
    if (rc != 0 && rc != TL_ESTATE)
        fprintf(err, "tierline: %s was not changed: %s\n", cmd->problem.text, tl_strerror(rc));
out:
    json_decref(told);
    tl_problem_row_clear(&problem);
    return rc;
}

/* fixed needs the fix named; known-error takes none. */
static int state_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (strcmp(cmd->problem_state, TL_PROBLEM_FIXED) == 0) {
        if (cmd->fix == NULL) {
            *problem = "a problem is fixed only with its fix named: --fix note:TEXT, kb:REF or "
                       "runbook:NAME";
            return TL_EINVAL;
        }
        return tl_problem_fix_valid(cmd->fix, problem);
    }
    if (cmd->fix != NULL) {
        *problem = "--fix goes with fixed";
        return TL_EINVAL;
    }
    return 0;
}

const struct tl__command tl__cmd_problem_state = {
    .name = "problem state",
    .usage = "problem state P-N known-error|fixed [--fix note:TEXT|kb:REF|runbook:NAME] [--json]",
    .summary = "move a known problem on: known-error, or fixed with its fix named",
    .capability = TL_CAP_PROBLEMS_MANAGE,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "fix",
                      .metavar = "FIX",
                      .help = "what fixed it (required with fixed): note:TEXT, kb:REF or "
                              "runbook:NAME; linked open tickets are told",
                      .kind = TL_CLI_TEXT,
                      .min = 1,
                      .max = TL_PROBLEM_TEXT_MAX + 8,
                      .out = TL_CLI_AT(struct cmd, fix),
                      .problem = "--fix names the fix: note:TEXT, kb:REF or runbook:NAME"},
                     TL__CMD_JSON("an object: problem, previous, state, fix, told (the tickets "
                                  "told, at most 100), told_count"),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){PROBLEM_ARG,
                                                   {.name = "STATE",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = kind_new_state,
                                                    .out = TL_CLI_AT(struct cmd, problem_state),
                                                    .problem = "a problem's state moves to "
                                                               "known-error or fixed"},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .finish = state_finish},
    .work = work_problem_state,
    .example =
        "problem state P-3 known-error\nproblem state P-3 fixed --fix runbook:restart-cups\n",
};
