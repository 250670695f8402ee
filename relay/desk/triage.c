/* Classification wired into the desk (relay/desk/triage.h). */
#include "relay/desk/triage.h"

#include "proto/err.h"
#include "relay/desk/timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The relay itself proposes; anything else in the history is someone's choice. */
#define RELAY_ACTOR "relay"

/* The whole item, when it is at most TL_CLASSIFY_DIAGNOSTICS_MAX bytes and whole. */
static int read_item(tl_evidence_store_t *evidence, const char *hash, char **data, size_t *length,
                     char *problem, size_t problem_size)
{
    tl_evidence_reader_t *reader = NULL;
    size_t cap = TL_CLASSIFY_DIAGNOSTICS_MAX + 1, used = 0, got = 0;
    char *buffer = NULL;
    int rc = evidence != NULL ? tl_evidence_open(evidence, hash, &reader) : TL_ENOTFOUND;
    if (rc == 0 && (buffer = malloc(cap)) == NULL)
        rc = TL_ENOMEM;
    while (rc == 0 && used < cap) {
        rc = tl_evidence_read(reader, buffer + used, cap - used, &got);
        if (rc != 0 || got == 0)
            break;
        used += got;
    }
    int closed = tl_evidence_close(reader);
    if (rc == 0 && closed != 0)
        rc = closed;
    if (rc == 0 && used == cap) {
        snprintf(problem, problem_size,
                 "the diagnostics are more than the %d bytes a classification reads",
                 TL_CLASSIFY_DIAGNOSTICS_MAX);
        rc = TL_EFULL;
    } else if (rc == TL_ENOTFOUND) {
        snprintf(problem, problem_size, "the diagnostics %.12s… are not in the evidence store",
                 hash);
    } else if (rc != 0 && rc != TL_ENOMEM) {
        snprintf(problem, problem_size, "the diagnostics %.12s… could not be read: %s", hash,
                 tl_strerror(rc));
    }
    if (rc != 0) {
        free(buffer);
        return rc;
    }
    *data = buffer;
    *length = used;
    return 0;
}

int tl_triage_read_diagnostics(tl_evidence_store_t *evidence, const char *hash, char **data,
                               size_t *length, char *problem, size_t problem_size)
{
    return read_item(evidence, hash, data, length, problem, problem_size);
}

int tl_triage_propose(tl_evidence_store_t *evidence, const char *title, const char *description,
                      const char *diagnostics_hash, tl_triage_proposal_t *out)
{
    char *document = NULL;
    size_t length = 0;
    tl_classify_findings_t *findings = NULL;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (diagnostics_hash != NULL && diagnostics_hash[0] != '\0') {
        snprintf(out->diagnostics, sizeof out->diagnostics, "%s", diagnostics_hash);
        rc = read_item(evidence, diagnostics_hash, &document, &length, out->problem,
                       sizeof out->problem);
        if (rc == 0)
            rc = tl_classify_findings_read(document, length, &findings, out->problem,
                                           sizeof out->problem);
        if (rc == TL_ENOMEM)
            goto out;
        if (rc != 0) {
            /* Unreadable diagnostics: the words alone decide, and the event says why. */
            out->diagnostics[0] = '\0';
            rc = 0;
        }
    }
    tl_classify_ticket_t ticket = {
        .title = title,
        .description = description,
        .findings = findings,
        .evidence_hash = findings != NULL ? diagnostics_hash : NULL,
    };
    char why[TL_CLASSIFY_LINE_SIZE];
    rc = tl_classify_propose(&ticket, &out->classification, why, sizeof why);
    if (rc == 0)
        rc = tl_fingerprint_compute(findings, &out->fingerprint);
out:
    tl_classify_findings_free(findings);
    free(document);
    return rc;
}

/* "S2" for 2. */
static const char *severity_text(int severity, char out[4])
{
    snprintf(out, 4, "S%d", severity >= 1 && severity <= 4 ? severity : 0);
    return out;
}

/* The proposal as a timeline event's details: what it says, why, and from what. */
static json_t *proposal_details(const tl_triage_proposal_t *proposal, json_t *kept,
                                const char *previous_severity, const char *previous_category)
{
    const tl_classification_t *c = &proposal->classification;
    char severity[4];
    json_t *reasons = json_array();
    json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o?, s:I}", "by", "proposal",
                                "severity", severity_text(c->severity, severity), "category",
                                tl_classify_category_name(c->category), "severity_why",
                                c->severity_line, "category_why", c->category_line, "severity_rule",
                                c->severity_rule, "category_rule", c->category_rule, "reasons",
                                reasons, "reasons_left_out", (json_int_t)c->reasons_left_out);
    if (details == NULL)
        return NULL;
    for (size_t i = 0; i < c->reason_count; i++) {
        const tl_classify_reason_t *r = &c->reasons[i];
        char level[4];
        json_t *item = json_pack("{s:s, s:s?, s:s?, s:s}", "rule", r->rule, "category",
                                 tl_classify_category_name(r->category), "severity",
                                 r->severity > 0 ? severity_text(r->severity, level) : NULL,
                                 "evidence", r->evidence);
        if (item == NULL || json_array_append_new(reasons, item) != 0) {
            json_decref(details);
            return NULL;
        }
    }
    json_object_set_new(details, "diagnostics",
                        proposal->diagnostics[0] ? json_string(proposal->diagnostics)
                                                 : json_null());
    if (proposal->problem[0] != '\0')
        json_object_set_new(details, "diagnostics_problem", json_string(proposal->problem));
    json_object_set_new(details, "fingerprint",
                        proposal->fingerprint.hex[0] ? json_string(proposal->fingerprint.hex)
                                                     : json_null());
    if (previous_severity != NULL || previous_category != NULL) {
        /* What the proposal changed, and from what; a field it left has no member. */
        json_t *previous = json_object();
        if (previous != NULL && previous_severity != NULL)
            json_object_set_new(previous, "severity", json_string(previous_severity));
        if (previous != NULL && previous_category != NULL)
            json_object_set_new(previous, "category", json_string(previous_category));
        json_object_set_new(details, "previous", previous);
    }
    if (kept != NULL)
        json_object_set(details, "kept", kept);
    return details;
}

/* The fingerprint column: the proposal's, or none when its diagnostics show no condition. */
static int set_fingerprint(tl_store_t *store, int64_t ticket_id,
                           const tl_triage_proposal_t *proposal, int64_t now_ms)
{
    const char *hex = proposal->fingerprint.hex[0] != '\0' ? proposal->fingerprint.hex : NULL;
    return tl_store_ticket_column_set(store, ticket_id, TL_TICKET_FINGERPRINT, hex, 0, now_ms);
}

int tl_triage_record_new(tl_job_ctx_t *ctx, int64_t ticket_id, const tl_triage_proposal_t *proposal,
                         const char *actor, int64_t now_ms)
{
    int rc = 0;
    if (proposal->fingerprint.hex[0] != '\0')
        rc = set_fingerprint(ctx->store, ticket_id, proposal, now_ms);
    if (rc != 0)
        return rc;
    json_t *details = proposal_details(proposal, NULL, NULL, NULL);
    if (details == NULL)
        return TL_ENOMEM;
    tl_timeline_entry_t entry = {.ticket_id = ticket_id,
                                 .time_ms = now_ms,
                                 .actor = actor,
                                 .event = TL_TRIAGE_EVENT,
                                 .details = details};
    rc = tl_timeline_record(ctx, &entry);
    json_decref(details);
    return rc;
}

/* Which fields a technician chose: a severity or category change by anyone but the relay. */
static int chosen_fields(tl_store_t *store, int64_t ticket_id, int *severity, int *category)
{
    tl_ticket_change_rows_t changes;
    *severity = *category = 0;
    int rc = tl_store_ticket_changes_read(store, ticket_id, &changes);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < changes.count; i++) {
        const tl_ticket_change_row_t *row = &changes.rows[i];
        if (strcmp(row->actor, RELAY_ACTOR) == 0)
            continue;
        *severity |= strcmp(row->field, "severity") == 0;
        *category |= strcmp(row->field, "category") == 0;
    }
    tl_ticket_change_rows_free(&changes);
    return 0;
}

/* Sets severity (1..4, 0: leave it) and category (NULL: leave it), each with its change row. */
static int set_fields(tl_store_t *store, int64_t ticket_id, int severity, const char *category,
                      const char *actor, const char *severity_reason, const char *category_reason,
                      int64_t now_ms)
{
    int rc = 0;
    char value[4];
    if (severity != 0) {
        snprintf(value, sizeof value, "%d", severity);
        tl_ticket_change_row_t change = {ticket_id, now_ms, "severity",
                                         value,     actor,  severity_reason};
        rc = tl_store_ticket_column_set(store, ticket_id, TL_TICKET_SEVERITY, NULL, severity,
                                        now_ms);
        if (rc == 0)
            rc = tl_store_ticket_change_add(store, &change);
    }
    if (rc == 0 && category != NULL) {
        tl_ticket_change_row_t change = {ticket_id, now_ms, "category",
                                         category,  actor,  category_reason};
        rc = tl_store_ticket_column_set(store, ticket_id, TL_TICKET_CATEGORY, category, 0, now_ms);
        if (rc == 0)
            rc = tl_store_ticket_change_add(store, &change);
    }
    return rc;
}

struct diagnostics_call {
    tl_job_ctx_t *ctx;
    int64_t ticket_id;
    const char *hash;
    int64_t now_ms;
};

static int diagnostics_step(tl_store_t *store, void *arg)
{
    const struct diagnostics_call *call = arg;
    tl_ticket_row_t row;
    tl_triage_proposal_t *proposal = NULL;
    json_t *kept = NULL, *details = NULL;
    int chosen_severity = 0, chosen_category = 0;
    int rc = tl_store_ticket_read(store, call->ticket_id, &row);
    if (rc != 0)
        return rc;
    if ((proposal = malloc(sizeof *proposal)) == NULL || (kept = json_array()) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    if ((rc = tl_triage_propose(call->ctx->evidence, row.title, row.description, call->hash,
                                proposal)) != 0 ||
        (rc = chosen_fields(store, call->ticket_id, &chosen_severity, &chosen_category)) != 0 ||
        (rc = set_fingerprint(store, call->ticket_id, proposal, call->now_ms)) != 0)
        goto out;
    const tl_classification_t *c = &proposal->classification;
    const char *category = tl_classify_category_name(c->category);
    int new_severity = !chosen_severity && c->severity != row.severity ? c->severity : 0;
    const char *new_category =
        !chosen_category && strcmp(category, row.category) != 0 ? category : NULL;
    if (chosen_severity)
        json_array_append_new(kept, json_string("severity"));
    if (chosen_category)
        json_array_append_new(kept, json_string("category"));
    rc = set_fields(store, call->ticket_id, new_severity, new_category, RELAY_ACTOR,
                    c->severity_line, c->category_line, call->now_ms);
    if (rc != 0)
        goto out;
    char previous[4];
    details = proposal_details(proposal, kept,
                               new_severity ? severity_text(row.severity, previous) : NULL,
                               new_category ? row.category : NULL);
    if (details == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    tl_timeline_entry_t entry = {.ticket_id = call->ticket_id,
                                 .time_ms = call->now_ms,
                                 .actor = RELAY_ACTOR,
                                 .event = TL_TRIAGE_EVENT,
                                 .details = details};
    rc = tl_timeline_record(call->ctx, &entry);
out:
    json_decref(details);
    json_decref(kept);
    free(proposal);
    tl_ticket_row_clear(&row);
    return rc;
}

int tl_triage_diagnostics(tl_job_ctx_t *ctx, int64_t ticket_id, const char *hash, int64_t now_ms)
{
    struct diagnostics_call call = {ctx, ticket_id, hash, now_ms};
    /* One step: the fields, the history and the event are kept together or not at all. */
    return tl_store_unit_step(ctx->store, diagnostics_step, &call);
}

struct set_call {
    tl_job_ctx_t *ctx;
    int64_t ticket_id;
    int severity;
    const char *category, *reason, *actor;
    int64_t now_ms;
};

static int set_step(tl_store_t *store, void *arg)
{
    const struct set_call *call = arg;
    tl_ticket_row_t row;
    json_t *details = NULL;
    int rc = tl_store_ticket_read(store, call->ticket_id, &row);
    if (rc != 0)
        return rc;
    char severity[4], previous[4];
    details = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "by", "technician", "severity",
                        severity_text(call->severity ? call->severity : row.severity, severity),
                        "category", call->category ? call->category : row.category, "reason",
                        call->reason, "previous", "severity", severity_text(row.severity, previous),
                        "category", row.category);
    if (details == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    json_t *changed = json_array();
    if (call->severity != 0)
        json_array_append_new(changed, json_string("severity"));
    if (call->category != NULL)
        json_array_append_new(changed, json_string("category"));
    json_object_set_new(details, "set", changed);
    rc = set_fields(store, call->ticket_id, call->severity, call->category, call->actor,
                    call->reason, call->reason, call->now_ms);
    if (rc != 0)
        goto out;
    tl_timeline_entry_t entry = {.ticket_id = call->ticket_id,
                                 .time_ms = call->now_ms,
                                 .actor = call->actor,
                                 .event = TL_TRIAGE_EVENT,
                                 .action = TL_TRIAGE_ACTION,
                                 .details = details};
    rc = tl_timeline_record(call->ctx, &entry);
out:
    json_decref(details);
    tl_ticket_row_clear(&row);
    return rc;
}

int tl_triage_set(tl_job_ctx_t *ctx, int64_t ticket_id, int severity, const char *category,
                  const char *reason, const char *actor, int64_t now_ms)
{
    enum tl_category parsed;
    if ((severity == 0 && category == NULL) || severity < 0 || severity > TL_SEVERITY_MAX ||
        (category != NULL && tl_classify_category_parse(category, &parsed) != 0) ||
        reason == NULL || reason[0] == '\0' || actor == NULL || strcmp(actor, RELAY_ACTOR) == 0)
        return TL_EINVAL;
    struct set_call call = {ctx, ticket_id, severity, category, reason, actor, now_ms};
    return tl_store_unit_step(ctx->store, set_step, &call);
}
