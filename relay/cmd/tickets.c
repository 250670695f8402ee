/*
 * The technicians' ticket commands: tickets (the queues), ticket show, ticket note, ticket
 * resolve, ticket reopen, ticket close (docs/technicians.md "Commands"). Taking and assigning
 * are in assign.c, classifying in classify.c.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/rows.h"
#include "relay/cmd/show.h"
#include "relay/desk/clocks.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/desk/triage.h"

#include <inttypes.h>
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

/* ---- tickets: the queues --------------------------------------------------------------- */

/* Values of --tier and --status that widen the listing to every tier or status. */
#define ALL_TIERS (-2)
#define ALL_STATUSES "all"
/* Notices shown at the top of one listing; the rest wait for the next. */
#define NOTICES_MAX 50

/* --tier N (0..4) or all. */
static int kind_queue_tier(const char *word, void *out, const char **problem)
{
    if (strcmp(word, "all") == 0) {
        if (out != NULL)
            *(int *)out = ALL_TIERS;
        return 0;
    }
    return tl__kind_tier(word, out, problem);
}

/* --status S (one of the statuses) or all. */
static int kind_queue_status(const char *word, void *out, const char **problem)
{
    if (strcmp(word, ALL_STATUSES) == 0) {
        if (out != NULL)
            snprintf(out, 16, "%s", ALL_STATUSES);
        return 0;
    }
    return tl__kind_status(word, out, problem);
}

/*
 * The filters as given: --assignee and --mine, whichever came last; vendors see only what was
 * handed to them. What is not given is the caller's queue, decided in the work.
 */
static int tickets_prepare(struct cmd *cmd)
{
    if (cmd->status[0] != '\0' && strcmp(cmd->status, ALL_STATUSES) != 0)
        cmd->filter.status = cmd->status;
    if (cmd->assignee.mine)
        cmd->filter.assignee = cmd->tech.name;
    else if (cmd->assignee.name[0] != '\0')
        cmd->filter.assignee = cmd->assignee.name;
    if (cmd->unassigned && cmd->filter.assignee != NULL) {
        cmd->usage_error = "--unassigned and --mine or --assignee exclude each other";
        return TL_EINVAL;
    }
    return 0;
}

/*
 * The tiers a listing shows, a bit each: --tier N, --tier all, or the caller's queue (docs/desk.md
 * "Queues"): tier 1 works its own queue and the self-help tickets of tier 0; tiers 2 and 3 their
 * own; a vendor (tier 4) what was handed to it, whatever its tier; auditors and admins every
 * queue. A technician's own tickets (--mine, --assignee) follow them through every queue.
 */
static unsigned listed_tiers(const struct cmd *cmd)
{
    unsigned every = (1u << (TL_TICKET_TIER_MAX + 1)) - 1;
    if (cmd->filter.tier >= 0)
        return 1u << cmd->filter.tier;
    if (cmd->filter.tier == ALL_TIERS || cmd->filter.assignee != NULL)
        return every;
    switch (cmd->role) {
    case TL_ROLE_TIER1:
        return 1u << 0 | 1u << 1;
    case TL_ROLE_TIER2:
        return 1u << 2;
    case TL_ROLE_TIER3:
        return 1u << 3;
    default:
        return every;
    }
}

/* One ticket of a listing, with what it is sorted by. */
struct listed {
    json_t *object;
    int severity;
    int64_t due, id;
};

static int compare_listed(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    if (x->severity != y->severity)
        return x->severity < y->severity ? -1 : 1;
    /* Due soonest first; tickets without a due time after those with one. */
    if (x->due != y->due) {
        if (x->due == 0 || y->due == 0)
            return x->due == 0 ? 1 : -1;
        return x->due < y->due ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The clocks as a listing shows them: {clock: {state, warning, due}}, and those breaching. */
static int put_clocks(json_t *object, const tl_sla_clock_t clocks[TL_SLA_CLOCKS])
{
    json_t *sla = json_object(), *breaching = json_array();
    unsigned which = tl_clocks_breaching(clocks);
    int rc = sla != NULL && breaching != NULL ? 0 : TL_ENOMEM;
    for (int i = 0; rc == 0 && i < TL_SLA_CLOCKS; i++) {
        json_t *clock =
            json_pack("{s:s, s:b, s:o}", "state", tl_sla_state_name(clocks[i].state), "warning",
                      clocks[i].warning, "due",
                      clocks[i].due_ms > 0 ? json_integer(clocks[i].due_ms) : json_null());
        if (clock == NULL ||
            json_object_set_new(sla, tl_sla_clock_name((tl_sla_clock_kind_t)i), clock) != 0)
            rc = TL_ENOMEM;
        if (rc == 0 && (which & (1u << i)) != 0 &&
            json_array_append_new(
                breaching,
                json_pack("{s:s, s:s}", "clock", tl_sla_clock_name((tl_sla_clock_kind_t)i), "state",
                          clocks[i].state == TL_SLA_BREACHED ? "breached" : "warning")) != 0)
            rc = TL_ENOMEM;
    }
    int64_t due = tl_clocks_next_due(clocks);
    if (rc == 0 &&
        (json_object_set_new(object, "due", due > 0 ? json_integer(due) : json_null()) ||
         json_object_set(object, "sla", sla) || json_object_set(object, "breaching", breaching)))
        rc = TL_ENOMEM;
    json_decref(sla);
    json_decref(breaching);
    return rc;
}

/* What the SLA column says: the worst clock, "breached:first_response", "warning:resolution",
 * or the state of the one due next ("running:resolution", "paused:first_response"). */
static void sla_word(json_t *object, char *out, size_t size)
{
    json_t *sla = json_object_get(object, "sla");
    json_t *breaching = json_object_get(object, "breaching");
    snprintf(out, size, "-");
    if (json_array_size(breaching) > 0) {
        json_t *first = json_array_get(breaching, 0);
        snprintf(out, size, "%s:%s", tl__cmd_member(first, "state"),
                 tl__cmd_member(first, "clock"));
        return;
    }
    json_t *due = json_object_get(object, "due");
    const char *name;
    json_t *clock;
    json_object_foreach(sla, name, clock) {
        json_t *clock_due = json_object_get(clock, "due");
        const char *state = tl__cmd_member(clock, "state");
        if (json_is_integer(due) && json_is_integer(clock_due) &&
            json_integer_value(clock_due) == json_integer_value(due) &&
            (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0)) {
            snprintf(out, size, "%s:%s", state, name);
            return;
        }
    }
}

/* A device's online flag by its id, from the rows of every device. */
static int device_online(const tl_device_rows_t *devices, int64_t id)
{
    for (size_t i = 0; i < devices->count; i++)
        if (devices->rows[i].id == id)
            return devices->rows[i].online;
    return 0;
}

/* Whether row belongs in the listing, before its clocks are known. */
static int listed_before_clocks(const struct cmd *cmd, const tl_ticket_row_t *row, unsigned tiers,
                                int64_t now)
{
    if (row->tier < 0 || row->tier > TL_TICKET_TIER_MAX || !(tiers & (1u << row->tier)))
        return 0;
    /* Without --status, the work still to do: every status but resolved and closed. */
    if (cmd->status[0] == '\0' && !tl_ticket_status_active(row->status))
        return 0;
    if (cmd->unassigned && row->assignee != NULL)
        return 0;
    /* A vendor follow-up that is due: the ticket still waits on the vendor. */
    if (cmd->follow_up_due &&
        (row->follow_up == 0 || row->follow_up > now || strcmp(row->status, "waiting-vendor") != 0))
        return 0;
    return 1;
}

/* The ticket's object for the listing, its clocks evaluated; *keep 0 when --breaching drops
 * it. A ticket whose history does not add up is listed without clocks, and the log says why. */
static int listed_ticket(struct cmd *cmd, tl_job_ctx_t *ctx, const tl_ticket_row_t *row,
                         const tl_device_rows_t *devices, int64_t now, struct listed *out,
                         int *keep)
{
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    char why[256] = "";
    json_t *object = tl_rows_ticket_object(row);
    int rc = object != NULL ? 0 : TL_ENOMEM, evaluated = 0;
    *keep = 1;
    if (rc == 0 && json_object_set_new(object, "online",
                                       json_boolean(device_online(devices, row->device_id))) != 0)
        rc = TL_ENOMEM;
    if (rc == 0 &&
        json_object_set_new(object, "follow_up",
                            row->follow_up > 0 ? json_integer(row->follow_up) : json_null()) != 0)
        rc = TL_ENOMEM;
    if (rc == 0 && cmd->ctx->sla != NULL) {
        int clocks_rc =
            tl_clocks_evaluate(ctx->store, cmd->ctx->sla, row, now, clocks, why, sizeof why);
        if (clocks_rc == TL_ENOMEM || clocks_rc == TL_ESTORE)
            rc = clocks_rc;
        else if (clocks_rc != 0)
            tl_log_warn("clocks not evaluated ticket=T-%" PRId64 " reason=\"%s\"", row->id, why);
        else
            evaluated = 1;
    }
    if (rc == 0 && evaluated)
        rc = put_clocks(object, clocks);
    else if (rc == 0 && (json_object_set_new(object, "due", json_null()) ||
                         json_object_set_new(object, "sla", json_null()) ||
                         json_object_set_new(object, "breaching", json_array())))
        rc = TL_ENOMEM;
    if (rc != 0) {
        json_decref(object);
        return rc;
    }
    if (cmd->breaching && (!evaluated || tl_clocks_breaching(clocks) == 0))
        *keep = 0;
    out->object = object;
    out->severity = row->severity;
    out->due = evaluated ? tl_clocks_next_due(clocks) : 0;
    out->id = row->id;
    return 0;
}

/* The technician's notices not yet seen, as objects; marked seen, since this listing shows
 * them. */
static int take_notices(struct cmd *cmd, tl_job_ctx_t *ctx, json_t **out)
{
    tl_notice_rows_t rows;
    json_t *notices = json_array();
    int rc = notices != NULL
                 ? tl_store_notices_unseen(ctx->store, cmd->tech.name, NOTICES_MAX, &rows)
                 : TL_ENOMEM;
    if (rc != 0) {
        json_decref(notices);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
        char ticket[TL_ID_TEXT];
        json_t *item = json_pack("{s:s, s:I, s:s}", "ticket",
                                 tl_id_format(ticket, TL_ID_TICKET, rows.rows[i].ticket_id), "time",
                                 (json_int_t)rows.rows[i].time, "text", rows.rows[i].text);
        if (item == NULL || json_array_append_new(notices, item) != 0)
            rc = TL_ENOMEM;
    }
    if (rc == 0 && rows.count > 0)
        rc = tl_store_notices_seen(ctx->store, cmd->tech.name, rows.rows[rows.count - 1].id);
    tl_notice_rows_free(&rows);
    if (rc != 0) {
        json_decref(notices);
        return rc;
    }
    *out = notices;
    return 0;
}

static void print_notices(FILE *out, json_t *notices)
{
    size_t i;
    json_t *notice;
    json_array_foreach(notices, i, notice) {
        char when[TL_UTC_TEXT], text[TL_STORE_MAX_NOTICE * 4 + 8];
        tl_format_utc(json_integer_value(json_object_get(notice, "time")), when);
        fprintf(out, "notice %s %s: %s\n", when, tl__cmd_member(notice, "ticket"),
                tl__cmd_shown(text, sizeof text, notice, "text"));
    }
    if (json_array_size(notices) > 0)
        fprintf(out, "\n");
}

static void print_queue(FILE *out, const struct cmd *cmd, json_t *tickets)
{
    fprintf(out, "%-7s %-3s %-4s %-14s %-12s %-6s %-6s %-16s %-22s %-24s %s\n", "ID", "SEV", "TIER",
            "STATUS", "ASSIGNEE", "DEVICE", "ONLINE", "HOSTNAME", "DUE", "SLA", "TITLE");
    size_t i;
    json_t *t;
    json_array_foreach(tickets, i, t) {
        char assignee[52], hostname[52], title[1024], due[TL_CLOCKS_TIME_SIZE], sla[64];
        json_t *due_value = json_object_get(t, "due");
        tl_clocks_format_time(cmd->ctx->sla,
                              json_is_integer(due_value) ? json_integer_value(due_value) : 0, due);
        sla_word(t, sla, sizeof sla);
        fprintf(out, "%-7s %-3s %-4" JSON_INTEGER_FORMAT " %-14s %s %-6s %-6s %s %-22s %-24s %s\n",
                tl__cmd_member(t, "id"), tl__cmd_member(t, "severity"),
                json_integer_value(json_object_get(t, "tier")), tl__cmd_member(t, "status"),
                tl__cmd_cell(assignee, sizeof assignee, t, "assignee", 12),
                tl__cmd_member(t, "device"),
                json_is_true(json_object_get(t, "online")) ? "yes" : "no",
                tl__cmd_cell(hostname, sizeof hostname, t, "hostname", 16), due, sla,
                tl__cmd_shown(title, sizeof title, t, "title"));
    }
    if (json_array_size(tickets) == 0)
        fprintf(out, "(no tickets)\n");
}

static int work_tickets(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_ticket_rows_t rows = {0};
    tl_device_rows_t devices = {0};
    struct listed *listed = NULL;
    size_t count = 0;
    json_t *notices = NULL, *tickets = NULL, *answer = NULL;
    int64_t now = tl_wall_ms();
    unsigned tiers = listed_tiers(cmd);
    tl_ticket_filter_t filter = cmd->filter;
    if (filter.tier < 0)
        filter.tier = -1;
    int rc = take_notices(cmd, ctx, &notices);
    if (rc == 0)
        rc = tl_store_tickets_read(ctx->store, &filter, &rows);
    if (rc == 0)
        rc = tl_store_devices_read(ctx->store, &devices);
    if (rc == 0 && rows.count > 0 && (listed = calloc(rows.count, sizeof *listed)) == NULL)
        rc = TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
        int keep = 0;
        if (!listed_before_clocks(cmd, &rows.rows[i], tiers, now))
            continue;
        rc = listed_ticket(cmd, ctx, &rows.rows[i], &devices, now, &listed[count], &keep);
        if (rc == 0 && keep)
            count++;
        else if (rc == 0)
            json_decref(listed[count].object);
    }
    if (rc == 0 && count > 1)
        qsort(listed, count, sizeof *listed, compare_listed);
    if (rc == 0 && (tickets = json_array()) == NULL)
        rc = TL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        if (rc == 0 && json_array_append(tickets, listed[i].object) != 0)
            rc = TL_ENOMEM;
        json_decref(listed[i].object);
    }
    if (rc == 0) /* vendors see only the tickets bound to them */
        rc = tl__cmd_ticket_list_access(cmd, ctx, tickets);
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        answer = json_pack("{s:O, s:O}", "notices", notices, "tickets", tickets);
        rc = answer != NULL ? tl__cmd_print_json(out, answer) : TL_ENOMEM;
    } else {
        print_notices(out, notices);
        print_queue(out, cmd, tickets);
    }
out:
    free(listed);
    json_decref(answer);
    json_decref(tickets);
    json_decref(notices);
    tl_device_rows_free(&devices);
    tl_ticket_rows_free(&rows);
    return rc;
}

/* tickets: the caller's queue by default (docs/desk.md "Queues"), and the filters of
 * tierline-relay tickets besides. */
const struct tl__command tl__cmd_tickets = {
    .name = "tickets",
    .usage = "tickets [--tier N] [--status S] [--assignee NAME] [--mine] [--unassigned] "
             "[--breaching] [--follow-up-due] [--json]",
    .summary = "your queue: tickets by severity, then the SLA due time",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "tier",
                      .metavar = "N",
                      .help = "only tickets at tier N, 0..4, or all (default: your queue)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_queue_tier,
                      .out = TL_CLI_AT(struct cmd, filter.tier),
                      .problem = "--tier wants 0, 1, 2, 3 or 4, or all"},
                     {.name = "status",
                      .metavar = "S",
                      .help = "only tickets with status S: " TL_TICKET_STATUS_LIST
                              ", or all (default: all but resolved and closed)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_queue_status,
                      .out = TL_CLI_AT(struct cmd, status),
                      .problem = "--status wants " TL_TICKET_STATUS_CHOICE ", or all"},
                     {.name = "assignee",
                      .metavar = "NAME",
                      .help = "only tickets assigned to the account NAME, in every tier",
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_assignee,
                      .out = TL_CLI_AT(struct cmd, assignee),
                      .problem = "--assignee wants an account name (1-64 of a-z 0-9 . _ -, "
                                 "starting with a letter)"},
                     {.name = "mine",
                      .help = "only tickets assigned to you, in every tier",
                      .out = TL_CLI_AT(struct cmd, assignee.mine)},
                     {.name = "unassigned",
                      .help = "only tickets nobody holds",
                      .out = TL_CLI_AT(struct cmd, unassigned)},
                     {.name = "breaching",
                      .help = "only tickets with an SLA clock past 75% of its target (warning) or "
                              "past its due time (breached)",
                      .out = TL_CLI_AT(struct cmd, breaching)},
                     {.name = "follow-up-due",
                      .help = "only tickets waiting on a vendor whose follow-up time has passed",
                      .out = TL_CLI_AT(struct cmd, follow_up_due)},
                     TL__CMD_JSON("an object: notices (each: ticket, time, text), tickets (each: "
                                  "id, device, hostname, title, description, tier, status, "
                                  "assignee, created, updated, severity, category, vendor, "
                                  "vendor_case, online, follow_up, due, sla, breaching)"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = tickets_prepare,
    .work = work_tickets,
    .example = "tickets --breaching --tier all\n",
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

/*
 * Why the ticket has its severity and category: the latest "ticket.classified" event that set
 * each (relay/desk/triage.h), as {"severity": {value, by, why, time}, "category": {...}}; a
 * member is null when no event says (a ticket from before the desk classified).
 */
static json_t *classification_of(json_t *events)
{
    json_t *why = json_pack("{s:n, s:n}", "severity", "category");
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event) {
        if (strcmp(tl__cmd_member(event, "kind"), TL_TRIAGE_EVENT) != 0)
            continue;
        json_t *details = json_object_get(event, "details");
        int by_technician = strcmp(tl__cmd_member(details, "by"), "technician") == 0;
        static const char *const fields[] = {"severity", "category"};
        for (size_t f = 0; f < 2; f++) {
            const char *field = fields[f];
            char key[32];
            size_t k;
            json_t *name;
            int touched = 0;
            /* A technician's choice names the fields it set; a proposal those it did not keep. */
            json_array_foreach(json_object_get(details, by_technician ? "set" : "kept"), k, name)
                touched |=
                    strcmp(json_string_value(name) ? json_string_value(name) : "", field) == 0;
            if (by_technician != touched)
                continue;
            snprintf(key, sizeof key, "%s_why", field);
            json_t *item =
                json_pack("{s:O?, s:s, s:O?, s:O?}", "value", json_object_get(details, field), "by",
                          tl__cmd_member(event, "actor"), "why",
                          json_object_get(details, by_technician ? "reason" : key), "time",
                          json_object_get(event, "time"));
            if (item != NULL)
                json_object_set_new(why, field, item);
        }
    }
    return why;
}

/* The ticket's clocks at now, as ticket show --json gives them; NULL and why on err's log. */
static json_t *clocks_object(const tl_sla_config_t *config, const tl_sla_clock_t *clocks)
{
    static const char *const pauses[TL_SLA_PAUSES] = {"waiting-user", "waiting-vendor", "resolved"};
    json_t *all = json_object();
    for (int i = 0; all != NULL && i < TL_SLA_CLOCKS; i++) {
        const tl_sla_clock_t *c = &clocks[i];
        json_t *paused = json_object();
        for (int p = 0; paused != NULL && p < TL_SLA_PAUSES; p++)
            json_object_set_new(paused, pauses[p], json_integer(c->paused_ms[p]));
#define MS_OR_NULL(ms) ((ms) > 0 ? json_integer(ms) : json_null())
        json_t *clock = json_pack(
            "{s:s, s:b, s:b, s:s?, s:o, s:I, s:o?, s:o, s:o, s:o, s:o}", "state",
            tl_sla_state_name(c->state), "warning", c->warning, "stopped", c->stopped, "paused_by",
            c->paused_by >= 0 ? pauses[c->paused_by] : NULL, "target_ms", MS_OR_NULL(c->target_ms),
            "elapsed_ms", (json_int_t)c->elapsed_ms, "paused_ms", paused, "started",
            MS_OR_NULL(c->started_ms), "stopped_at", MS_OR_NULL(c->stopped_ms), "due",
            MS_OR_NULL(c->due_ms), "warn_at", MS_OR_NULL(c->warn_ms));
#undef MS_OR_NULL
        if (clock == NULL ||
            json_object_set_new(all, tl_sla_clock_name((tl_sla_clock_kind_t)i), clock) != 0) {
            json_decref(all);
            return NULL;
        }
    }
    json_t *sla = json_pack("{s:s, s:o?}", "zone", tl_clocks_zone_name(config), "clocks", all);
    return sla;
}

/* What ticket show adds to the stored fields: the device online, why the severity and category,
 * the fingerprint, the first response and the SLA clocks at now. */
static int show_fields(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *t, tl_sla_clock_t *clocks,
                       int *evaluated)
{
    tl_ticket_row_t row;
    tl_device_rows_t devices = {0};
    char why[256] = "";
    *evaluated = 0;
    int rc = tl_store_ticket_read(ctx->store, cmd->ticket.id, &row);
    if (rc != 0)
        return rc;
    if ((rc = tl_store_devices_read(ctx->store, &devices)) != 0)
        goto out;
    json_object_set_new(t, "online", json_boolean(device_online(&devices, row.device_id)));
    json_object_set_new(t, "classification", classification_of(json_object_get(t, "events")));
    json_object_set_new(t, "fingerprint",
                        row.fingerprint != NULL ? json_string(row.fingerprint) : json_null());
    json_object_set_new(t, "first_response",
                        row.first_response > 0 ? json_integer(row.first_response) : json_null());
    json_object_set_new(t, "follow_up",
                        row.follow_up > 0 ? json_integer(row.follow_up) : json_null());
    json_t *sla = NULL;
    if (cmd->ctx->sla != NULL) {
        rc = tl_clocks_evaluate(ctx->store, cmd->ctx->sla, &row, tl_wall_ms(), clocks, why,
                                sizeof why);
        if (rc == 0) {
            *evaluated = 1;
            sla = clocks_object(cmd->ctx->sla, clocks);
        } else if (rc != TL_ENOMEM && rc != TL_ESTORE) {
            sla = json_pack("{s:s, s:n, s:s}", "zone", tl_clocks_zone_name(cmd->ctx->sla), "clocks",
                            "error", why);
            rc = 0;
        }
    }
    json_object_set_new(t, "sla", sla != NULL ? sla : json_null());
out:
    tl_device_rows_free(&devices);
    tl_ticket_row_clear(&row);
    return rc;
}

static void print_classified(FILE *out, const char *label, json_t *t, const char *field)
{
    json_t *why = json_object_get(json_object_get(t, "classification"), field);
    char value[64], text[2200] = "";
    tl__cmd_shown(value, sizeof value, t, field);
    if (json_is_object(why)) {
        char by[300];
        tl__cmd_shown(by, sizeof by, why, "by");
        if (strncmp(by, "tech:", 5) == 0) {
            char reason[2000];
            snprintf(text, sizeof text, "set by %s: %s", by + 5,
                     tl__cmd_shown(reason, sizeof reason, why, "why"));
        } else {
            tl__cmd_shown(text, sizeof text, why, "why");
        }
    }
    fprintf(out, "  %-9s %-12s %s\n", label, value, text);
}

/* The three clocks: state, elapsed of target, due time in the calendar's zone. */
static void print_clocks(FILE *out, const tl_sla_config_t *config, json_t *t,
                         const tl_sla_clock_t *clocks, int evaluated)
{
    static const char *const labels[TL_SLA_CLOCKS] = {"first response", "resolution", "vendor"};
    static const char *const pauses[TL_SLA_PAUSES] = {"waiting-user", "waiting-vendor", "resolved"};
    if (config == NULL)
        return;
    fprintf(out, "\nSLA clocks (%s):\n", tl_clocks_zone_name(config));
    if (!evaluated) {
        char why[600];
        fprintf(out, "  cannot be worked out: %s\n",
                tl__cmd_shown(why, sizeof why, json_object_get(t, "sla"), "error"));
        return;
    }
    for (int i = 0; i < TL_SLA_CLOCKS; i++) {
        const tl_sla_clock_t *c = &clocks[i];
        char elapsed[TL_CLOCKS_DURATION_SIZE], target[TL_CLOCKS_DURATION_SIZE];
        char due[TL_CLOCKS_TIME_SIZE], used[80] = "", state[48];
        if (c->state == TL_SLA_IDLE) {
            fprintf(out, "  %-15s %s\n", labels[i], "idle");
            continue;
        }
        tl_clocks_format_duration(c->elapsed_ms, elapsed);
        tl_clocks_format_duration(c->target_ms, target);
        tl_clocks_format_time(config, c->due_ms, due);
        if (c->target_ms > 0)
            snprintf(used, sizeof used, "%s of %s", elapsed, target);
        else
            snprintf(used, sizeof used, "%s, no target", elapsed);
        snprintf(state, sizeof state, "%s%s%s%s", tl_sla_state_name(c->state),
                 c->paused_by >= 0 ? " (" : "", c->paused_by >= 0 ? pauses[c->paused_by] : "",
                 c->paused_by >= 0 ? ")" : "");
        fprintf(out, "  %-15s %-24s %-16s due %s%s\n", labels[i], state, used, due,
                c->warning && c->state != TL_SLA_BREACHED ? "  warning: 75% of the target used"
                                                          : "");
    }
}

static int work_ticket_show(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int evaluated = 0;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc != 0)
        return rc;
    if ((rc = show_fields(cmd, ctx, t, clocks, &evaluated)) != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        json_decref(t);
        return rc;
    }
    json_t *tried = already_tried(json_object_get(t, "events"));
    json_object_set_new(t, "already_tried", tried);
    tl__cmd_show_hold(t, NULL);
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
    fprintf(out, "  device:   %s (%s), %s\n  tier:     %" JSON_INTEGER_FORMAT "\n",
            tl__cmd_member(t, "device"), tl__cmd_shown(hostname, sizeof hostname, t, "hostname"),
            json_is_true(json_object_get(t, "online")) ? "online" : "offline",
            json_integer_value(json_object_get(t, "tier")));
    fprintf(out, "  status:   %s\n  assignee: %s\n", tl__cmd_member(t, "status"),
            tl__cmd_shown(assignee, sizeof assignee, t, "assignee"));
    print_classified(out, "severity:", t, "severity");
    print_classified(out, "category:", t, "category");
    fprintf(out, "  created:  %s\n  updated:  %s\n", created, updated);
    tl__cmd_print_vendor(out, t);
    tl__cmd_show_hold(t, out);
    print_clocks(out, cmd->ctx->sla, t, clocks, evaluated);
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
    .summary = "a ticket: severity and why, SLA clocks, what was already tried, evidence, "
               "timeline",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){TL__CMD_JSON("the ticket as a JSON object, with online, "
                                                     "classification, fingerprint, first_response, "
                                                     "follow_up, sla, already_tried, evidence and "
                                                     "events"),
                                        {0}},
             .positionals = ONE_TICKET,
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_ticket_show,
    .example = "ticket show T-1\n",
};

/* ---- ticket note, resolve, reopen, close
 * ---------------------------------------------------------- */

int tl__cmd_record(struct cmd *cmd, tl_job_ctx_t *ctx, const char *event_kind,
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
    return tl_timeline_record_by(ctx, &entry, cmd->tech.role);
}

/*
 * Whether the ticket's status lets the command go on: resolved and closed tickets take no
 * changes but reopen (and close, for a resolved one). Says why not on err.
 */
int tl__cmd_still_active(struct cmd *cmd, json_t *ticket, FILE *err)
{
    const char *status = tl__cmd_member(ticket, "status");
    if (tl_ticket_status_active(status))
        return 0;
    fprintf(err, "tierline: %s is %s; reopen it first (ticket reopen %s)\n", cmd->ticket.text,
            status, cmd->ticket.text);
    return TL_ESTATE;
}

static int work_ticket_note(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc == 0)
        rc = tl__cmd_still_active(cmd, t, err);
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
    rc =
        tl__cmd_record(cmd, ctx, cmd->from_vendor ? "vendor.note" : "note", "ticket.note", details);
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
        rc = tl__cmd_record(cmd, ctx, event, action, details);
    json_decref(details);
    if (rc == 0)
        fprintf(out, "%s %s\n", cmd->ticket.text, status);
    return rc;
}

static int work_ticket_resolve(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    int rc = change_status(cmd, ctx, out, err, TL_TICKET_STATUS_RESOLVED, "ticket.resolved",
                           "ticket.resolve", "resolution");
    /* The draft in the same job: when it cannot be stored, the resolution is undone with it. */
    if (rc == 0 && cmd->kb_draft)
        rc = tl__cmd_kb_draft(cmd, ctx, out, err);
    return rc;
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
    .usage = "ticket resolve T-N [--kb] TEXT...",
    .summary = "resolve a ticket, saying how; --kb also drafts a knowledge-base article from it",
    .capability = TL_CAP_TICKET_RESOLVE,
    .capability_flag = "--kb",
    .flag_capability = TL_CAP_KB_DRAFT,
    .args = {.options = (const tl_cli_arg_t[]){{.name = "kb",
                                                .help = "also store a draft article made from "
                                                        "the ticket (docs/kb.md), for an admin "
                                                        "to publish; needs kb.draft",
                                                .out = TL_CLI_AT(struct cmd, kb_draft)},
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
    .work = work_ticket_resolve,
    .example = "ticket resolve T-1 --kb restarted cups with restart-service SERVICE=cups\n",
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
    .checkpoint_after = 1,
    .example = "ticket close T-1 confirmed by the user\n",
};
