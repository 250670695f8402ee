/*
 * ticket escalate, and what ticket show puts first (docs/technicians.md "Escalation and known
 * problems"; docs/desk.md "Escalation"): a ticket moves between tiers with its "already tried"
 * summary frozen (relay/desk/summary.h), and ticket show begins with the known problem it is
 * linked to or offered (relay/desk/problems.h) and the latest summary.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/desk/problems.h"
#include "relay/desk/summary.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"

#include <stdlib.h>
#include <string.h>

/* The reason of a move, as the audit entry holds it: bounded, so the entry stays small. */
#define REASON_MAX 1024

/* ---- who may move a ticket (docs/roles.md "Escalation") -------------------------------------- */

/* Whether name is a lead (users.lead). */
static int user_is_lead(tl_store_t *store, const char *name, int *lead)
{
    tl_user_rows_t users;
    int rc = tl_store_users_read(store, &users);
    if (rc != 0)
        return rc;
    *lead = 0;
    for (size_t i = 0; i < users.count; i++)
        if (strcmp(users.rows[i].name, name) == 0)
            *lead = users.rows[i].lead && !users.rows[i].disabled;
    tl_user_rows_free(&users);
    return 0;
}

/*
 * Refuses the command as an authorization matter: access.denied in the audit log with why,
 * "permission denied: why" on err, exit status 77. 0 once the refusal is recorded.
 */
static int deny(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, const char *why)
{
    char actor[96];
    tl__cmd_actor(cmd, actor);
    json_t *details =
        json_pack("{s:s, s:s, s:s, s:s}", "command", cmd->command->name, "role", cmd->tech.role,
                  "needs", tl_capability_name(cmd->capability), "reason", why);
    int rc = details != NULL
                 ? tl_worker_audit(ctx, actor, "access.denied", cmd->ticket.text, details)
                 : TL_ENOMEM;
    json_decref(details);
    if (rc != 0)
        return rc;
    fprintf(err, "tierline: permission denied: %s\n", why);
    cmd->refused = cmd->denied = 1;
    return 0;
}

/*
 * Whether the technician may move ticket to to_tier; why says who may when not. Up: a tier-N
 * technician from tier N's queue (tier 1 also from tier 0, the queue it takes in), the ticket's
 * assignee, a lead, an admin. Down: the assignee, a lead, an admin.
 */
static int may_move(const struct cmd *cmd, const tl_ticket_row_t *ticket, int to_tier, int lead,
                    char *why, size_t why_size)
{
    int assignee = ticket->assignee != NULL && strcmp(ticket->assignee, cmd->tech.name) == 0;
    if (lead || assignee || cmd->role == TL_ROLE_ADMIN)
        return 1;
    int own_tier = cmd->role >= TL_ROLE_TIER1 && cmd->role <= TL_ROLE_TIER3
                       ? cmd->role - TL_ROLE_TIER1 + 1
                       : -1;
    if (to_tier > ticket->tier &&
        (own_tier == ticket->tier || (own_tier == 1 && ticket->tier == 0)))
        return 1;
    char holder[96];
    snprintf(holder, sizeof holder, "%s%s%s", ticket->assignee ? "its assignee (" : "",
             ticket->assignee ? ticket->assignee : "", ticket->assignee ? "), " : "");
    if (to_tier > ticket->tier)
        snprintf(why, why_size,
                 "%s is in tier %d's queue: a %s account escalates tickets of its own tier's "
                 "queue; %sa lead or an admin may escalate it",
                 cmd->ticket.text, ticket->tier, cmd->tech.role, holder);
    else
        snprintf(why, why_size, "only %sa lead or an admin may give %s back to tier %d", holder,
                 cmd->ticket.text, to_tier);
    return 0;
}

/* ---- ticket escalate ------------------------------------------------------------------------ */

int tl__cmd_load_ticket_row(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, tl_ticket_row_t *ticket)
{
    int rc = tl_store_ticket_read(ctx->store, cmd->ticket.id, ticket);
    /* A vendor account never gets here (no capability); were it to, it would see nothing. */
    if (rc == 0 && tl_role_ticket_bound(cmd->role)) {
        tl_ticket_row_clear(ticket);
        rc = TL_ENOTFOUND;
    }
    if (rc == TL_ENOTFOUND)
        fprintf(err, "tierline: no ticket %s\n", cmd->ticket.text);
    else if (rc != 0)
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
    return rc;
}

/* The ticket's summary now, frozen for move. */
static int build_summary(struct cmd *cmd, tl_job_ctx_t *ctx, const tl_ticket_row_t *ticket,
                         const tl_summary_move_t *move, tl_summary_t **summary)
{
    tl_ticket_event_rows_t events = {0};
    tl_evidence_rows_t evidence = {0};
    int rc = tl_store_ticket_events_read(ctx->store, ticket->id, &events);
    if (rc == 0)
        rc = tl_store_ticket_evidence_read(ctx->store, ticket->id, &evidence);
    if (rc == 0) {
        tl_summary_input_t input = {
            .ticket = cmd->ticket.text,
            .title = ticket->title,
            .description = ticket->description,
            .events = events.rows,
            .event_count = events.count,
            .evidence = evidence.rows,
            .evidence_count = evidence.count,
        };
        rc = tl_summary_build(&input, move, summary);
    }
    tl_ticket_event_rows_free(&events);
    tl_evidence_rows_free(&evidence);
    return rc;
}

/* Moves the ticket and keeps the move: the tier, its history, the summary, the timeline. */
static int record_move(struct cmd *cmd, tl_job_ctx_t *ctx, const tl_ticket_row_t *ticket,
                       const tl_summary_move_t *move, const tl_summary_t *summary,
                       const char *canonical, const char *sha256)
{
    char tier[16];
    snprintf(tier, sizeof tier, "%d", move->to_tier);
    tl_ticket_change_row_t change = {ticket->id, move->time_ms, "tier",
                                     tier,       move->by,      move->reason};
    tl_escalation_row_t escalation = {
        .ticket_id = ticket->id,
        .time = move->time_ms,
        .actor = move->by,
        .from_tier = move->from_tier,
        .to_tier = move->to_tier,
        .reason = move->reason,
        .summary = canonical,
        .summary_hash = sha256,
    };
    int up = move->to_tier > move->from_tier;
    json_t *details =
        json_pack("{s:i, s:i, s:s, s:s, s:I, s:s?}", "from_tier", move->from_tier, "to_tier",
                  move->to_tier, "reason", move->reason, "summary_sha256", sha256, "tried",
                  (json_int_t)tl_summary_tried(summary), "previous_assignee", ticket->assignee);
    if (details == NULL)
        return TL_ENOMEM;
    tl_timeline_entry_t entry = {
        .ticket_id = ticket->id,
        .time_ms = move->time_ms,
        .actor = move->by,
        .event = up ? "ticket.escalated" : "ticket.deescalated",
        .action = up ? "ticket.escalate" : "ticket.deescalate",
        .details = details,
    };
    int rc = tl_store_ticket_column_set(ctx->store, ticket->id, TL_TICKET_TIER, NULL, move->to_tier,
                                        move->time_ms);
    if (rc == 0)
        rc = tl_store_ticket_change_add(ctx->store, &change);
    /* The ticket waits in its new queue for someone of that tier to take it. */
    if (rc == 0 && ticket->assignee != NULL)
        rc =
            tl_store_ticket_unassign(ctx->store, ticket->id, move->by, move->reason, move->time_ms);
    if (rc == 0)
        rc = tl_store_escalation_add(ctx->store, &escalation, NULL);
    if (rc == 0)
        rc = tl_timeline_record(ctx, &entry);
    json_decref(details);
    return rc;
}

static int print_move(struct cmd *cmd, FILE *out, const tl_ticket_row_t *ticket,
                      const tl_summary_move_t *move, const tl_summary_t *summary,
                      const char *sha256)
{
    int up = move->to_tier > move->from_tier;
    if (cmd->json) {
        json_t *doc =
            json_pack("{s:s, s:s, s:i, s:i, s:s, s:s?, s:s, s:I, s:O}", "ticket", cmd->ticket.text,
                      "direction", up ? "escalated" : "de-escalated", "from_tier", move->from_tier,
                      "to_tier", move->to_tier, "reason", move->reason, "previous_assignee",
                      ticket->assignee, "summary_sha256", sha256, "tried",
                      (json_int_t)tl_summary_tried(summary), "summary", tl_summary_json(summary));
        int rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
        return rc;
    }
    fprintf(out, "%s %s from tier %d to tier %d; %zu already tried (summary sha256:%s)\n",
            cmd->ticket.text, up ? "escalated" : "de-escalated", move->from_tier, move->to_tier,
            tl_summary_tried(summary), sha256);
    if (ticket->assignee != NULL) {
        char holder[300];
        tl_text_clip(holder, sizeof holder, ticket->assignee, 0, TL_TEXT_LINE);
        fprintf(out, "%s no longer assigned to %s: it waits in tier %d's queue\n", cmd->ticket.text,
                holder, move->to_tier);
    }
    return 0;
}

static int work_ticket_escalate(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_ticket_row_t ticket;
    tl_summary_t *summary = NULL;
    char *canonical = NULL, sha256[TL_SHA256_HEX_LEN], why[512], actor[96];
    size_t canonical_len = 0;
    int lead = 0;
    int rc = tl__cmd_load_ticket_row(cmd, ctx, err, &ticket);
    if (rc != 0)
        return rc;
    if (!tl_ticket_status_active(ticket.status)) {
        fprintf(err, "tierline: %s is %s; reopen it first (ticket reopen %s)\n", cmd->ticket.text,
                ticket.status, cmd->ticket.text);
        rc = TL_ESTATE;
        goto out;
    }
    if (ticket.tier == cmd->to_tier) {
        fprintf(err, "tierline: %s is already in tier %d\n", cmd->ticket.text, ticket.tier);
        rc = TL_ESTATE;
        goto out;
    }
    if ((rc = user_is_lead(ctx->store, cmd->tech.name, &lead)) != 0)
        goto out;
    if (!may_move(cmd, &ticket, cmd->to_tier, lead, why, sizeof why)) {
        rc = deny(cmd, ctx, err, why);
        goto out;
    }
    tl__cmd_actor(cmd, actor);
    tl_summary_move_t move = {
        .time_ms = tl_wall_ms(),
        .by = actor,
        .from_tier = ticket.tier,
        .to_tier = cmd->to_tier,
        .reason = cmd->reason,
    };
    if ((rc = build_summary(cmd, ctx, &ticket, &move, &summary)) != 0 ||
        (rc = tl_summary_canonical(summary, &canonical, &canonical_len, sha256)) != 0 ||
        (rc = record_move(cmd, ctx, &ticket, &move, summary, canonical, sha256)) != 0) {
        fprintf(err, "tierline: %s was not moved: %s\n", cmd->ticket.text, tl_strerror(rc));
        goto out;
    }
    rc = print_move(cmd, out, &ticket, &move, summary, sha256);
out:
    free(canonical);
    tl_summary_free(summary);
    tl_ticket_row_clear(&ticket);
    return rc;
}

/* --to tier1 .. tier4 (or the digit alone). */
static int kind_to_tier(const char *word, void *out, const char **problem)
{
    if (strncmp(word, "tier", 4) == 0)
        word += 4;
    if (strlen(word) != 1 || word[0] < '1' || word[0] > '4')
        return TL_EINVAL;
    if (out != NULL)
        *(int *)out = word[0] - '0';
    return 0;
}

static int escalate_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->to_tier == 0) {
        *problem = "ticket escalate needs --to: the tier it goes to, tier1 .. tier4";
        return TL_EINVAL;
    }
    if (cmd->reason == NULL) {
        *problem = "ticket escalate needs --reason TEXT: why it goes to that tier";
        return TL_EINVAL;
    }
    if (!tl_text_utf8_valid(cmd->reason, strlen(cmd->reason))) {
        *problem = "the reason is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

const struct tl__command tl__cmd_ticket_escalate = {
    .name = "ticket escalate",
    .usage = "ticket escalate T-N --to tier1|tier2|tier3|tier4 --reason TEXT [--json]",
    .summary = "move a ticket to another tier's queue, freezing what was already tried",
    .capability = TL_CAP_TICKET_ESCALATE,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "to",
                      .metavar = "TIER",
                      .help = "the tier's queue it goes to: higher escalates, lower gives it back",
                      .kind = TL_CLI_CHECK,
                      .check = kind_to_tier,
                      .out = TL_CLI_AT(struct cmd, to_tier),
                      .problem = "--to wants tier1, tier2, tier3 or tier4"},
                     {.name = "reason",
                      .metavar = "TEXT",
                      .help = "why it goes there (required; the next tier reads it)",
                      .kind = TL_CLI_TEXT,
                      .min = 1,
                      .max = REASON_MAX,
                      .out = TL_CLI_AT(struct cmd, reason),
                      .problem = "--reason needs a text of 1 to 1024 bytes"},
                     TL__CMD_JSON("an object: ticket, direction, from_tier, to_tier, reason, "
                                  "previous_assignee, summary_sha256, tried, summary"),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .finish = escalate_finish},
    .work = work_ticket_escalate,
    .example = "ticket escalate T-1 --to tier2 --reason \"cups restarted twice, still offline\"\n",
};

/* ---- what ticket show puts first ------------------------------------------------------------ */

static json_t *problem_object(const tl_problem_row_t *problem)
{
    char id[TL_ID_TEXT];
    return json_pack("{s:s, s:s, s:s, s:s, s:s?}", "id",
                     tl_id_format(id, TL_ID_PROBLEM, problem->id), "title", problem->title, "state",
                     problem->state, "workaround",
                     problem->workaround != NULL ? problem->workaround : "", "fix", problem->fix);
}

/* "Known problem P-3, workaround: ..." for a linked ticket. */
static void print_linked(FILE *out, const tl_problem_row_t *problem)
{
    char id[TL_ID_TEXT];
    char *title = tl_text_escape_dup(problem->title, TL_TEXT_LINE);
    char *workaround = tl_text_escape_dup(problem->workaround, TL_TEXT_LINE);
    char *fix = tl_text_escape_dup(problem->fix, TL_TEXT_LINE);
    tl_id_format(id, TL_ID_PROBLEM, problem->id);
    if (strcmp(problem->state, TL_PROBLEM_FIXED) == 0)
        fprintf(out, "Known problem %s, fixed: %s\n", id, fix ? fix : "");
    else if (problem->workaround != NULL && problem->workaround[0] != '\0')
        fprintf(out, "Known problem %s, workaround: %s\n", id, workaround ? workaround : "");
    else
        fprintf(out, "Known problem %s, no workaround yet\n", id);
    fprintf(out, "  %s (%s): %s\n", id, problem->state, title ? title : "");
    free(title);
    free(workaround);
    free(fix);
}

/* "Existing issue P-3, workaround: ..." for an offer. */
static void print_offer(FILE *out, const char *ticket, const tl_problem_row_t *problem,
                        const tl_problem_offer_t *offer)
{
    char id[TL_ID_TEXT];
    char *title = tl_text_escape_dup(problem->title, TL_TEXT_LINE);
    char *workaround = tl_text_escape_dup(problem->workaround, TL_TEXT_LINE);
    tl_id_format(id, TL_ID_PROBLEM, problem->id);
    if (problem->workaround != NULL && problem->workaround[0] != '\0')
        fprintf(out, "Existing issue %s, workaround: %s\n", id, workaround ? workaround : "");
    else
        fprintf(out, "Existing issue %s, no workaround yet\n", id);
    fprintf(out, "  %s (%s): %s\n  matched by ", id, problem->state, title ? title : "");
    if (offer->by_fingerprint)
        fprintf(out, "its diagnostic fingerprint%s", offer->words.matches ? " and " : "");
    if (offer->words.matches)
        fprintf(out, "%zu of its title's %zu words", offer->words.shared_words,
                offer->words.title_words);
    fprintf(out, "\n  to link it: problem link %s %s\n", ticket, id);
    free(title);
    free(workaround);
}

/* The known problem a ticket is linked to: "problem" on ticket, and its lines on first. */
static int show_linked(tl_job_ctx_t *ctx, json_t *ticket, int64_t problem_id, FILE *first)
{
    tl_problem_row_t problem;
    int rc =
        problem_id > 0 ? tl_store_problem_read(ctx->store, problem_id, &problem) : TL_ENOTFOUND;
    if (rc == TL_ENOTFOUND)
        return json_object_set_new(ticket, "problem", json_null()) == 0 ? 0 : TL_ENOMEM;
    if (rc != 0)
        return rc;
    json_t *value = problem_object(&problem);
    rc = value != NULL && json_object_set_new(ticket, "problem", value) == 0 ? 0 : TL_ENOMEM;
    if (rc == 0 && first != NULL)
        print_linked(first, &problem);
    tl_problem_row_clear(&problem);
    return rc;
}

/* The open problems a ticket is offered: "problem_offers" on ticket, and their lines on first. */
static int show_offers(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *ticket,
                       const tl_ticket_row_t *row, FILE *first, FILE *err)
{
    json_t *offers_json = json_array();
    tl_problem_rows_t problems = {0};
    tl_problem_offer_t offers[TL_PROBLEM_OFFERS_MAX];
    size_t count = 0;
    char why[256] = "";
    int rc = offers_json != NULL ? 0 : TL_ENOMEM;
    int active = tl_ticket_status_active(row->status);
    /* Offered to those who may read problems, while the ticket is worked on. */
    if (rc == 0 && active && tl_role_can(cmd->role, TL_CAP_PROBLEMS_READ))
        rc = tl_store_problems_read(ctx->store, NULL, &problems);
    /* The most recently opened open problems, when there are more than a match compares. */
    size_t from = problems.count, open_count = 0;
    while (from > 0 && open_count < TL_PROBLEM_MATCH_CANDIDATES_MAX)
        open_count += tl_problem_state_open(problems.rows[--from].state);
    if (rc == 0 && problems.count > 0) {
        tl_problem_ticket_t words = {row->title, row->description, row->fingerprint};
        rc = tl_problem_match(&words, problems.rows + from, problems.count - from, offers,
                              TL_PROBLEM_OFFERS_MAX, &count, why, sizeof why);
        if (rc == TL_EINVAL) {
            /* A text too long to match is not an error of ticket show. */
            fprintf(err, "tierline: no known problem offered: %s\n", why);
            rc = 0;
            count = 0;
        }
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const tl_problem_row_t *problem = &problems.rows[from + offers[i].index];
        char id[TL_ID_TEXT], link[96];
        tl_id_format(id, TL_ID_PROBLEM, problem->id);
        snprintf(link, sizeof link, "problem link %s %s", cmd->ticket.text, id);
        json_t *offer = problem_object(problem);
        if (offer == NULL ||
            json_object_set_new(offer, "by_fingerprint", json_boolean(offers[i].by_fingerprint)) ||
            json_object_set_new(offer, "title_words",
                                json_integer((json_int_t)offers[i].words.title_words)) ||
            json_object_set_new(offer, "shared_words",
                                json_integer((json_int_t)offers[i].words.shared_words)) ||
            json_object_set_new(offer, "link", json_string(link)) ||
            json_array_append_new(offers_json, offer) != 0) {
            rc = TL_ENOMEM;
            break;
        }
        if (first != NULL)
            print_offer(first, cmd->ticket.text, problem, &offers[i]);
    }
    if (rc == 0 && json_object_set_new(ticket, "problem_offers", offers_json) != 0)
        rc = TL_ENOMEM;
    else if (rc != 0)
        json_decref(offers_json);
    tl_problem_rows_free(&problems);
    return rc;
}

/* The latest escalation: "escalation" on ticket, its summary rendered on first. */
static int show_escalation(tl_job_ctx_t *ctx, json_t *ticket, int64_t ticket_id, FILE *first)
{
    tl_escalation_row_t escalation;
    int64_t count = 0;
    tl_summary_t *summary = NULL;
    tl_buf_t *text = NULL;
    char why[256];
    int rc = tl_store_escalation_latest(ctx->store, ticket_id, &escalation, &count);
    if (rc == TL_ENOTFOUND)
        return json_object_set_new(ticket, "escalation", json_null()) == 0 ? 0 : TL_ENOMEM;
    if (rc != 0)
        return rc;
    /* A summary that cannot be read is said so; the rest of the ticket is still shown. */
    int readable = tl_summary_from_text(escalation.summary, strlen(escalation.summary), &summary,
                                        why, sizeof why) == 0;
    json_t *value = json_pack(
        "{s:I, s:s, s:i, s:i, s:s, s:s, s:I, s:O}", "time", (json_int_t)escalation.time, "by",
        escalation.actor, "from_tier", escalation.from_tier, "to_tier", escalation.to_tier,
        "reason", escalation.reason, "summary_sha256", escalation.summary_hash, "escalations",
        (json_int_t)count, "summary", readable ? (json_t *)tl_summary_json(summary) : json_null());
    rc = value != NULL && json_object_set_new(ticket, "escalation", value) == 0 ? 0 : TL_ENOMEM;
    if (rc == 0 && first != NULL && !readable)
        fprintf(first, "The summary of the latest escalation cannot be read: %s\n\n", why);
    if (rc == 0 && first != NULL && readable) {
        text = tl_buf_new(TL_SUMMARY_TEXT_MAX * 2);
        rc = text != NULL ? tl_summary_render(summary, escalation.summary_hash, text) : TL_ENOMEM;
        if (rc == 0)
            fprintf(first, "%.*s\n", (int)tl_buf_len(text), (const char *)tl_buf_data(text));
    }
    tl_buf_free(text);
    tl_summary_free(summary);
    tl_escalation_row_clear(&escalation);
    return rc;
}

int tl__cmd_show_desk(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *ticket, FILE *first, FILE *err)
{
    tl_ticket_row_t row;
    int rc = tl_store_ticket_read(ctx->store, cmd->ticket.id, &row);
    if (rc != 0)
        return rc;
    rc = show_linked(ctx, ticket, row.problem_id, first);
    int linked = json_is_object(json_object_get(ticket, "problem"));
    if (rc == 0 && linked)
        rc = json_object_set_new(ticket, "problem_offers", json_array()) == 0 ? 0 : TL_ENOMEM;
    else if (rc == 0)
        rc = show_offers(cmd, ctx, ticket, &row, first, err);
    int offered = json_array_size(json_object_get(ticket, "problem_offers")) > 0;
    if (rc == 0 && first != NULL && (linked || offered))
        fputc('\n', first);
    if (rc == 0)
        rc = show_escalation(ctx, ticket, row.id, first);
    tl_ticket_row_clear(&row);
    return rc;
}
