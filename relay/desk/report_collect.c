/* The report's input from the store, as it stood at the end of the period (report_collect.h). */
#include "relay/desk/report_collect.h"

#include "proto/err.h"
#include "proto/format.h"
#include "relay/desk/clocks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int field_is(const tl_ticket_change_row_t *row, const char *field)
{
    return row->field != NULL && strcmp(row->field, field) == 0;
}

/* "1".."4" (severity) or "0".."4" (tier) as the history writes them; -1 otherwise. */
static int digit(const char *value, int low, int high)
{
    if (value == NULL || value[0] < '0' + low || value[0] > '0' + high || value[1] != '\0')
        return -1;
    return value[0] - '0';
}

static int terminal(const char *status)
{
    return status != NULL && (strcmp(status, "resolved") == 0 || strcmp(status, "closed") == 0);
}

int tl_report_severity_at(const tl_ticket_change_row_t *changes, size_t count, int current,
                          int64_t time_ms)
{
    int first = 0, at = 0;
    for (size_t i = 0; i < count; i++) {
        int value = field_is(&changes[i], "severity") ? digit(changes[i].value, 1, 4) : -1;
        if (value < 0)
            continue;
        if (first == 0)
            first = value;
        if (changes[i].time <= time_ms)
            at = value;
    }
    return at != 0 ? at : first != 0 ? first : current;
}

int tl_report_ticket_from(const tl_ticket_row_t *row, const tl_ticket_change_row_t *changes,
                          size_t count, const tl_sla_config_t *config, int64_t until_ms,
                          tl_report_ticket_t *out, char *why, size_t why_size)
{
    tl_ticket_change_row_t *kept = NULL;
    tl_sla_event_t *events = NULL;
    tl_sla_ticket_t ticket;
    size_t used = 0;
    int rc = 0, severity = 0, tier = -1, active = 1;
    memset(out, 0, sizeof *out);
    out->id = row->id;
    out->device_id = row->device_id;
    out->created_ms = row->created;
    if (count > 0 && (kept = calloc(count, sizeof *kept)) == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const tl_ticket_change_row_t *change = &changes[i];
        if (change->time >= until_ms)
            continue;
        kept[used++] = *change;
        int value;
        if (field_is(change, "severity") && (value = digit(change->value, 1, 4)) > 0) {
            severity = value;
        } else if (field_is(change, "tier") && (value = digit(change->value, 0, 4)) >= 0) {
            tier = value;
        } else if (field_is(change, "response")) {
            if (out->first_response_ms == 0)
                out->first_response_ms = change->time;
        } else if (field_is(change, "status")) {
            int now_terminal = terminal(change->value);
            if (now_terminal && active)
                out->resolved_ms = change->time;
            else if (!now_terminal)
                out->resolved_ms = 0;
            active = !now_terminal;
        }
    }
    out->severity = severity != 0 ? severity : row->severity;
    out->tier = tier >= 0 ? tier : row->tier;
    /* A store from before the history kept responses has the column only. */
    if (out->first_response_ms == 0 && row->first_response != 0 && row->first_response < until_ms) {
        int named = 0;
        for (size_t i = 0; i < count && !named; i++)
            named = field_is(&changes[i], "response");
        if (!named)
            out->first_response_ms = row->first_response;
    }
    rc = tl_clocks_events(kept, used, row->created, row->severity, row->tier, until_ms, &ticket,
                          &events, why, why_size);
    if (rc == 0)
        rc = tl_sla_evaluate(config, &ticket, until_ms, out->clocks, why, why_size);
    free(events);
    free(kept);
    return rc;
}

int tl_report_came_back(const tl_ticket_rows_t *tickets, int64_t device_id, const char *fingerprint,
                        int64_t time_ms, int64_t until_ms)
{
    for (size_t i = 0; i < tickets->count; i++) {
        const tl_ticket_row_t *t = &tickets->rows[i];
        if (t->device_id != device_id || t->created <= time_ms || t->created >= until_ms ||
            t->created - time_ms > TL_REPORT_COME_BACK_MS)
            continue;
        if (fingerprint == NULL ||
            (t->fingerprint != NULL && strcmp(t->fingerprint, fingerprint) == 0))
            return 1;
    }
    return 0;
}

static const tl_report_stage_t stage_of[] = {
    [TL_KB_SUGGESTED] = TL_REPORT_SUGGESTED,
    [TL_KB_APPLIED] = TL_REPORT_APPLIED,
    [TL_KB_RECHECK_PASSED] = TL_REPORT_PASSED,
    [TL_KB_RECHECK_FAILED] = TL_REPORT_FAILED,
};

static int by_ticket(const void *a, const void *b)
{
    const tl_escalation_row_t *x = a, *y = b;
    if (x->ticket_id != y->ticket_id)
        return x->ticket_id < y->ticket_id ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The escalations of one ticket in rows (sorted by ticket): the first index and how many. */
static size_t escalations_of(const tl_escalation_rows_t *rows, int64_t ticket_id, size_t *first)
{
    size_t low = 0, high = rows->count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (rows->rows[mid].ticket_id < ticket_id)
            low = mid + 1;
        else
            high = mid;
    }
    size_t end = low;
    while (end < rows->count && rows->rows[end].ticket_id == ticket_id)
        end++;
    *first = low;
    return end - low;
}

int tl_report_collect(tl_store_t *store, const tl_sla_config_t *config, int64_t since_ms,
                      int64_t until_ms, tl_report_data_t *data, char *why, size_t why_size)
{
    tl_ticket_change_rows_t changes = {0};
    memset(data, 0, sizeof *data);
    if (until_ms <= since_ms) {
        (void)tl_format(why, why_size, "the period ends before it starts");
        return TL_EINVAL;
    }
    int rc = tl_store_escalations_between(store, since_ms, until_ms, TL_REPORT_ITEMS_MAX,
                                          &data->escalation_rows);
    if (rc == 0)
        rc = tl_store_tickets_read(store, NULL, &data->ticket_rows);
    if (rc == 0)
        rc = tl_store_problems_read(store, NULL, &data->problem_rows);
    if (rc == 0)
        rc = tl_store_kb_outcomes_between(store, since_ms, until_ms, TL_REPORT_ITEMS_MAX,
                                          &data->outcome_rows);
    if (rc == 0 && (data->ticket_rows.count > TL_REPORT_ITEMS_MAX ||
                    data->problem_rows.count > TL_REPORT_ITEMS_MAX))
        rc = TL_EFULL;
    if (rc == TL_EFULL)
        (void)tl_format(why, why_size, "more than %d tickets, escalations or problems",
                        TL_REPORT_ITEMS_MAX);
    if (rc != 0)
        goto out;
    tl_escalation_rows_t *escalations = &data->escalation_rows;
    if (escalations->count > 1)
        qsort(escalations->rows, escalations->count, sizeof *escalations->rows, by_ticket);
    size_t tickets = data->ticket_rows.count, moves = escalations->count;
    size_t problems = data->problem_rows.count;
    if ((tickets > 0 && (data->tickets = calloc(tickets, sizeof *data->tickets)) == NULL) ||
        (moves > 0 && (data->escalations = calloc(moves, sizeof *data->escalations)) == NULL) ||
        (problems > 0 && (data->problems = calloc(problems, sizeof *data->problems)) == NULL) ||
        (data->outcome_rows.count > 0 &&
         (data->selfhelp = calloc(data->outcome_rows.count, sizeof *data->selfhelp)) == NULL)) {
        rc = TL_ENOMEM;
        goto out;
    }
    size_t counted = 0, moved = 0;
    for (size_t i = 0; i < tickets; i++) {
        const tl_ticket_row_t *row = &data->ticket_rows.rows[i];
        if (row->created >= until_ms)
            continue;
        size_t first, many = escalations_of(escalations, row->id, &first);
        if ((rc = tl_store_ticket_changes_read(store, row->id, &changes)) != 0)
            goto out;
        char reason[200] = "";
        rc = tl_report_ticket_from(row, changes.rows, changes.count, config, until_ms,
                                   &data->tickets[counted], reason, sizeof reason);
        if (rc != 0) {
            (void)tl_format(why, why_size, "T-%lld: %s", (long long)row->id, reason);
            goto out;
        }
        counted++;
        for (size_t k = first; k < first + many; k++) {
            const tl_escalation_row_t *move = &escalations->rows[k];
            tl_report_escalation_t *e = &data->escalations[moved++];
            e->ticket_id = move->ticket_id;
            e->time_ms = move->time;
            e->from_tier = move->from_tier;
            e->to_tier = move->to_tier;
            e->severity =
                tl_report_severity_at(changes.rows, changes.count, row->severity, move->time);
        }
        tl_ticket_change_rows_free(&changes);
    }
    size_t listed = 0;
    for (size_t i = 0; i < problems; i++) {
        const tl_problem_row_t *row = &data->problem_rows.rows[i];
        if (row->created >= until_ms)
            continue;
        tl_report_problem_t *p = &data->problems[listed++];
        p->id = row->id;
        p->title = row->title;
        p->state = row->state;
        p->tickets = row->tickets > 0 ? (size_t)row->tickets : 0;
        p->devices = row->devices > 0 ? (size_t)row->devices : 0;
    }
    for (size_t i = 0; i < data->outcome_rows.count; i++) {
        const tl_kb_outcome_row_t *o = &data->outcome_rows.rows[i];
        tl_report_selfhelp_t *h = &data->selfhelp[i];
        h->article = o->article_id;
        h->runbook = o->runbook;
        h->stage = stage_of[o->stage];
        h->time_ms = o->time;
        h->came_back = o->stage == TL_KB_RECHECK_PASSED &&
                       tl_report_came_back(&data->ticket_rows, o->device_id, o->fingerprint,
                                           o->time, until_ms);
    }
    data->input = (tl_report_input_t){.since_ms = since_ms,
                                      .until_ms = until_ms,
                                      .tickets = data->tickets,
                                      .ticket_count = counted,
                                      .escalations = data->escalations,
                                      .escalation_count = moved,
                                      .problems = data->problems,
                                      .problem_count = listed,
                                      .selfhelp = data->selfhelp,
                                      .selfhelp_count = data->outcome_rows.count};
out:
    tl_ticket_change_rows_free(&changes);
    if (rc != 0)
        tl_report_data_free(data);
    return rc;
}

void tl_report_data_free(tl_report_data_t *data)
{
    free(data->tickets);
    free(data->escalations);
    free(data->problems);
    free(data->selfhelp);
    tl_kb_outcome_rows_free(&data->outcome_rows);
    tl_ticket_rows_free(&data->ticket_rows);
    tl_problem_rows_free(&data->problem_rows);
    tl_escalation_rows_free(&data->escalation_rows);
    memset(data, 0, sizeof *data);
}
