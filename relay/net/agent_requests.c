/*
 * Requests from enrolled agents (docs/protocol.md §7.5, §7.11, §7.13): ticket.create, with
 * the evidence it names and what self-help showed and tried, checked on the loop and recorded
 * by a storage job; the answer goes out only once the job is durable. selfhelp.deflected, a
 * problem self-help solved, recorded and audited the same way. tickets.list, read by a
 * storage job for the connection's own device. Requests waiting for the disk are bounded per
 * connection (TL_RELAY_MAX_REQUESTS).
 */
#include "proto/catalogue.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "proto/note.h"
#include "proto/witness.h"
#include "proto/selfhelp.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/desk/user_tickets.h"
#include "relay/desk/triage.h"
#include "relay/net/agent_server_int.h"
#include "relay/store/audit_query.h"
#include "relay/store/catalogue_files.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_result(struct tl_agent_link *agent, uint32_t request_id, int status, json_t *extra)
{
    if (agent->closed)
        return;
    json_t *body =
        status == 0
            ? json_pack("{s:s, s:b}", "type", tl_control_type_name(TL_CONTROL_RESULT), "ok", 1)
            : json_pack("{s:s, s:b, s:s, s:s}", "type", tl_control_type_name(TL_CONTROL_RESULT),
                        "ok", 0, "error", tl_err_name(status), "message", tl_strerror(status));
    if (body == NULL)
        return;
    if (status == 0 && extra != NULL)
        json_object_update(body, extra);
    tl_peer_send_control(agent->peer, request_id, body);
    json_decref(body);
}

#define TL_TICKET_MAX_EVIDENCE 16

static int check_evidence_list(json_t *list)
{
    if (list == NULL)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > TL_TICKET_MAX_EVIDENCE)
        return TL_EINVAL;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        json_t *size = json_object_get(item, "size");
        if (!tl_sha256_hex_valid(tl__json_text(item, "sha256", 64, 0)) ||
            tl__json_text(item, "kind", 32, 0) == NULL ||
            tl__json_text(item, "name", 255, 0) == NULL || !json_is_integer(size) ||
            json_integer_value(size) < 0)
            return TL_EINVAL;
    }
    return 0;
}

/* The self-help rows of a request, checked (NULL member: none); TL_EINVAL when they break a
 * limit, TL_ENOMEM. *rows is the caller's to free. */
static int selfhelp_rows(json_t *request, tl_selfhelp_row_t **rows, size_t *count)
{
    *count = 0;
    *rows = calloc(TL_SELFHELP_ROWS_MAX, sizeof **rows);
    if (*rows == NULL)
        return TL_ENOMEM;
    return tl_selfhelp_rows_decode(json_object_get(request, "selfhelp"), *rows, count) == 0
               ? 0
               : TL_EINVAL;
}

/* One self-help outcome for the report and the article's counts (docs/kb.md "Self-help"). An
 * article id the knowledge base could not hold is left out of the counts, not the ticket. */
static int record_outcome(tl_job_ctx_t *ctx, const tl_kb_outcome_row_t *row)
{
    int rc = tl_store_kb_outcome_add(ctx->store, row);
    if (rc == TL_EINVAL) {
        tl_log_warn("self-help outcome not counted article=%.48s reason=\"not an article id\"",
                    row->article_id);
        return 0;
    }
    return rc;
}

/* What self-help showed and tried, on the new ticket's timeline and in the audit log, and
 * counted as outcomes on the ticket's device with its fingerprint (NULL: none). */
static int record_selfhelp(tl_job_ctx_t *ctx, json_t *request, int64_t ticket_id, const char *actor,
                           int64_t device_id, const char *fingerprint, int64_t now)
{
    tl_selfhelp_row_t *rows = NULL;
    size_t count = 0;
    int rc = selfhelp_rows(request, &rows, &count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        json_t *details = tl_selfhelp_event_details(&rows[i]);
        const char *kind = tl_selfhelp_event_kind(&rows[i]);
        tl_timeline_entry_t entry = {ticket_id, now, actor, kind, kind, details, NULL};
        rc = details != NULL ? tl_timeline_record(ctx, &entry) : TL_ENOMEM;
        json_decref(details);
        tl_kb_outcome_row_t outcome = {.article_id = rows[i].article,
                                       .device_id = device_id,
                                       .time = now,
                                       .stage = rows[i].applied ? TL_KB_APPLIED : TL_KB_SUGGESTED,
                                       .runbook = rows[i].applied ? rows[i].fix.runbook : NULL,
                                       .fingerprint = fingerprint,
                                       .ticket_id = ticket_id};
        if (rc == 0)
            rc = record_outcome(ctx, &outcome);
        /* Applied, and the re-check found the problem still there. */
        if (rc == 0 && rows[i].applied && strncmp(rows[i].outcome, "not solved", 10) == 0) {
            outcome.stage = TL_KB_RECHECK_FAILED;
            rc = record_outcome(ctx, &outcome);
        }
    }
    free(rows);
    return rc;
}

static int run_ticket_create(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    json_t *request = job->request, *evidence = json_object_get(request, "evidence");
    json_t *tier_value = json_object_get(request, "tier");
    tl_ticket_new_t ticket = {
        .device_id = job->agent->device_id,
        .title = tl__json_text(request, "title", TL_STORE_MAX_TITLE, 0),
        .description = tl__json_text(request, "description", TL_STORE_MAX_DESCRIPTION, 1),
        .tier = json_is_integer(tier_value) ? (int)json_integer_value(tier_value) : 1,
        .request_id = tl__json_text(request, "request", 64, 0),
    };
    size_t i;
    json_t *item;
    const char *diagnostics = NULL;
    json_array_foreach(evidence, i, item) {
        /* Only evidence this device uploaded, at the size it really has. */
        uint64_t size = 0;
        const char *hash = json_string_value(json_object_get(item, "sha256"));
        int found = tl_store_upload_find(ctx->store, job->agent->device_id, hash, &size);
        if (found != 0)
            return found;
        if (tl_evidence_exists(ctx->evidence, hash) != 1)
            return TL_ENOTFOUND;
        json_object_set_new(item, "size", json_integer((json_int_t)size));
        if (strcmp(json_string_value(json_object_get(item, "kind")), "diagnostics") == 0)
            diagnostics = hash;
    }
    /* Its category and severity, proposed from the user's words and the diagnostics. */
    tl_triage_proposal_t *proposal = malloc(sizeof *proposal);
    int rc = proposal != NULL ? tl_triage_propose(ctx->evidence, ticket.title, ticket.description,
                                                  diagnostics, proposal)
                              : TL_ENOMEM;
    if (rc != 0) {
        free(proposal);
        return rc;
    }
    ticket.severity = proposal->classification.severity;
    ticket.category = tl_classify_category_name(proposal->classification.category);
    int64_t ticket_id = 0, now = tl_wall_ms();
    int created = 0, added = 0;
    rc = tl_ticket_create(ctx->store, &ticket, now, &ticket_id, &created);
    if (rc != 0) {
        free(proposal);
        return rc;
    }
    char subject[TL_ID_TEXT], actor[96];
    tl_id_format(subject, TL_ID_TICKET, ticket_id);
    tl__agent_actor(job->agent, actor);
    json_t *hashes = json_array(), *event = NULL, *audit = NULL;
    json_array_foreach(evidence, i, item)
        json_array_append_new(hashes,
                              json_string(json_string_value(json_object_get(item, "sha256"))));
    if (created) {
        char device[TL_ID_TEXT];
        event = json_pack("{s:s, s:i}", "title", ticket.title, "tier", ticket.tier);
        audit = json_pack("{s:s, s:s, s:i, s:O, s:s}", "device",
                          tl_id_format(device, TL_ID_DEVICE, job->agent->device_id), "title",
                          ticket.title, "tier", ticket.tier, "evidence", hashes, "request",
                          ticket.request_id);
        tl_timeline_entry_t opened = {ticket_id,       now,   actor, "ticket.created",
                                      "ticket.create", event, audit};
        rc = event != NULL && audit != NULL ? tl_timeline_record(ctx, &opened) : TL_ENOMEM;
        if (rc == 0)
            rc = record_selfhelp(ctx, request, ticket_id, actor, job->agent->device_id,
                                 proposal->fingerprint.hex[0] ? proposal->fingerprint.hex : NULL,
                                 now);
        if (rc != 0)
            goto out;
    }
    json_array_foreach(evidence, i, item) {
        const char *hash = json_string_value(json_object_get(item, "sha256"));
        rc = tl_store_evidence_add(
            ctx->store, ticket_id, hash, json_string_value(json_object_get(item, "kind")),
            json_string_value(json_object_get(item, "name")),
            (uint64_t)json_integer_value(json_object_get(item, "size")), now, &added);
        if (rc != 0)
            goto out;
        if (added) {
            json_t *details =
                json_pack("{s:s, s:O}", "sha256", hash, "kind", json_object_get(item, "kind"));
            tl_timeline_entry_t item_added = {ticket_id, now,     actor, "evidence.added",
                                              NULL,      details, NULL};
            rc = details != NULL ? tl_timeline_record(ctx, &item_added) : TL_ENOMEM;
            json_decref(details);
            if (rc != 0)
                goto out;
        }
    }
    if (created && (rc = tl_triage_record_new(ctx, ticket_id, proposal, "relay", now)) != 0)
        goto out;
    job->reply = json_pack("{s:s, s:b}", "ticket", subject, "created", created);
out:
    free(proposal);
    json_decref(hashes);
    json_decref(event);
    json_decref(audit);
    return rc;
}

/*
 * A problem self-help solved (§7.13): the deflection row, with the fingerprint of the
 * diagnostics it was found on when they hold one, and its audit entry, in one step; a repeat of
 * the same request finds the row and writes nothing.
 */
static int run_deflection(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    json_t *request = job->request, *evidence = json_object_get(request, "evidence");
    tl_selfhelp_deflection_t *d = malloc(sizeof *d);
    tl_triage_proposal_t *proposal = malloc(sizeof *proposal);
    json_t *args = NULL, *hashes = json_array(), *audit = NULL;
    char *args_text = NULL;
    const char *diagnostics = NULL;
    int rc = d != NULL && proposal != NULL && hashes != NULL ? 0 : TL_ENOMEM;
    if (rc == 0 && tl_selfhelp_deflection_decode(request, d) != 0)
        rc = TL_EINVAL; /* checked on the loop; kept exact all the same */
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item) {
        uint64_t size = 0;
        const char *hash = json_string_value(json_object_get(item, "sha256"));
        if (rc == 0)
            rc = tl_store_upload_find(ctx->store, job->agent->device_id, hash, &size);
        if (rc == 0 && tl_evidence_exists(ctx->evidence, hash) != 1)
            rc = TL_ENOTFOUND;
        if (rc == 0 && json_array_append_new(hashes, json_string(hash)) != 0)
            rc = TL_ENOMEM;
        if (rc == 0 && strcmp(json_string_value(json_object_get(item, "kind")), "diagnostics") == 0)
            diagnostics = hash;
    }
    /* The fingerprint as a ticket with these diagnostics would get it (relay/desk/triage.h). */
    if (rc == 0)
        rc = tl_triage_propose(ctx->evidence, d->title, "", diagnostics, proposal);
    if (rc == 0 && ((args = tl_selfhelp_fix_args(&d->fix)) == NULL ||
                    (args_text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS)) == NULL))
        rc = TL_ENOMEM;
    if (rc != 0)
        goto out;
    const char *fingerprint = proposal->fingerprint.hex[0] ? proposal->fingerprint.hex : NULL;
    tl_deflection_new_t row = {
        .device_id = job->agent->device_id,
        .request_id = d->request,
        .article = d->article,
        .runbook = d->fix.runbook,
        .args = args_text,
        .fingerprint = fingerprint,
        .shown_ms = d->shown_ms,
        .applied_ms = d->applied_ms,
        .rechecked_ms = d->rechecked_ms,
        .outcome = d->outcome,
    };
    int64_t id = 0, now = tl_wall_ms();
    int created = 0;
    if ((rc = tl_store_deflection_add(ctx->store, &row, now, &id, &created)) != 0)
        goto out;
    char subject[TL_ID_TEXT], deflection[TL_ID_TEXT], actor[96];
    tl_id_format(subject, TL_ID_DEVICE, job->agent->device_id);
    tl_id_format(deflection, TL_ID_DEFLECTION, id);
    tl__agent_actor(job->agent, actor);
    if (created) {
        audit = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s?, s:I, s:I, s:I, s:s, s:O, s:s}",
                          "deflection", deflection, "article", d->article, "title", d->title,
                          "runbook", d->fix.runbook, "args", args, "fingerprint", fingerprint,
                          "shown", (json_int_t)d->shown_ms, "applied", (json_int_t)d->applied_ms,
                          "rechecked", (json_int_t)d->rechecked_ms, "outcome", d->outcome,
                          "evidence", hashes, "request", d->request);
        rc = audit != NULL ? tl_worker_audit(ctx, actor, "selfhelp.deflected", subject, audit)
                           : TL_ENOMEM;
        /* The funnel's three stages, as the machine stamped them. */
        const tl_kb_stage_t stages[] = {TL_KB_SUGGESTED, TL_KB_APPLIED, TL_KB_RECHECK_PASSED};
        const int64_t times[] = {d->shown_ms, d->applied_ms, d->rechecked_ms};
        for (size_t s = 0; rc == 0 && s < 3; s++) {
            tl_kb_outcome_row_t outcome = {.article_id = d->article,
                                           .device_id = job->agent->device_id,
                                           .time = times[s],
                                           .stage = stages[s],
                                           .runbook = s > 0 ? d->fix.runbook : NULL,
                                           .fingerprint = fingerprint};
            rc = record_outcome(ctx, &outcome);
        }
        if (rc != 0)
            goto out;
    }
    job->reply = json_pack("{s:s, s:b}", "deflection", deflection, "created", created);
    rc = job->reply != NULL ? 0 : TL_ENOMEM;
out:
    free(d);
    free(proposal);
    free(args_text);
    json_decref(args);
    json_decref(hashes);
    json_decref(audit);
    return rc;
}

static void control_done(tl_job_t *base, int status)
{
    struct agent_job *job = (struct agent_job *)base;
    job->agent->requests_in_flight--;
    if (status != 0)
        tl_log_warn("request failed device=D-%" PRId64 " reason=%s", job->agent->device_id,
                    tl_err_name(status));
    send_result(job->agent, job->request_id, status, job->reply);
    tl__agent_job_free(job);
}

/* The device's own tickets (§7.11): the device is the connection's, never the request's. */
static int run_tickets_list(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    tl_ticket_summary_t *items = calloc(TL_TICKETS_LIST_MAX, sizeof *items);
    size_t count = 0;
    int more = 0;
    int rc = items != NULL ? tl_user_tickets_read(ctx->store, job->device_id, items, &count, &more)
                           : TL_ENOMEM;
    if (rc == 0)
        rc = tl_msg_tickets_encode(items, count, more, &job->reply);
    free(items);
    return rc;
}

/*
 * A chunk of the published catalogue package (§7.14): what is published, and up to
 * TL_RELAY_CATALOGUE_CHUNK bytes of it from offset, as base64. Nothing published: version 0.
 */
static int run_catalogue_get(tl_job_t *base, tl_job_ctx_t *ctx)
{
    (void)ctx;
    struct agent_job *job = (struct agent_job *)base;
    const char *data = job->agent->server->config.data_dir;
    tl_published_catalogue_t published;
    json_t *offset_value = json_object_get(job->request, "offset");
    uint64_t offset = (uint64_t)json_integer_value(offset_value);
    int rc = data != NULL ? tl_catalogue_files_published(data, &published) : TL_ENOTFOUND;
    if (rc == TL_ENOTFOUND || (rc == 0 && published.version == 0)) {
        job->reply = json_pack("{s:i, s:i, s:i}", "version", 0, "size", 0, "offset", 0);
        return job->reply != NULL ? 0 : TL_ENOMEM;
    }
    if (rc != 0)
        return TL_EIO;
    if (offset > published.size)
        return TL_EINVAL;
    uint8_t *chunk = malloc(TL_RELAY_CATALOGUE_CHUNK);
    char *text = malloc(4 * (TL_RELAY_CATALOGUE_CHUNK / 3 + 1) + 1);
    size_t got = 0;
    rc = chunk != NULL && text != NULL ? 0 : TL_ENOMEM;
    if (rc == 0) {
        size_t want = published.size - offset < TL_RELAY_CATALOGUE_CHUNK
                          ? (size_t)(published.size - offset)
                          : TL_RELAY_CATALOGUE_CHUNK;
        rc = tl_catalogue_files_read(data, published.version, offset, chunk, want, &got);
        if (rc == 0 && got != want)
            rc = TL_EIO; /* the file is not the size published.json says */
    }
    if (rc == 0) {
        EVP_EncodeBlock((unsigned char *)text, chunk, (int)got);
        job->reply =
            json_pack("{s:I, s:I, s:s, s:I, s:s}", "version", (json_int_t)published.version, "size",
                      (json_int_t)published.size, "sha256", published.sha256, "offset",
                      (json_int_t)offset, "data", text);
        rc = job->reply != NULL ? 0 : TL_ENOMEM;
    }
    free(chunk);
    free(text);
    return rc;
}

static const char *const catalogue_events[] = {"installed", "refused", "rollback", NULL};

/* The members of a catalogue.report, checked: 0 or TL_EINVAL. */
static int catalogue_report_check(json_t *body, const char **event)
{
    json_t *version = json_object_get(body, "version"), *from = json_object_get(body, "from");
    json_t *time = json_object_get(body, "time");
    const char *name = json_string_value(json_object_get(body, "event"));
    *event = NULL;
    for (size_t i = 0; name != NULL && catalogue_events[i] != NULL; i++)
        if (strcmp(name, catalogue_events[i]) == 0)
            *event = catalogue_events[i];
    if (*event == NULL || !json_is_integer(version) || json_integer_value(version) < 0 ||
        (uint64_t)json_integer_value(version) > TL_CATALOGUE_VERSION_MAX ||
        (from != NULL && (!json_is_integer(from) || json_integer_value(from) < 0 ||
                          (uint64_t)json_integer_value(from) > TL_CATALOGUE_VERSION_MAX)) ||
        !json_is_integer(time) || json_integer_value(time) < 0 ||
        json_integer_value(time) > TL_CATALOGUE_CREATED_MAX ||
        (json_object_get(body, "sha256") != NULL &&
         !tl_sha256_hex_valid(json_string_value(json_object_get(body, "sha256")))) ||
        (json_object_get(body, "reason") != NULL &&
         tl__json_text(body, "reason", TL_MSG_MAX_TEXT, 1) == NULL))
        return TL_EINVAL;
    return 0;
}

/* What an agent did with a catalogue (§7.14): catalogue.installed, .refused or .rollback. */
static int run_catalogue_report(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    const char *event = NULL;
    if (catalogue_report_check(job->request, &event) != 0)
        return TL_EINVAL;
    char action[64], subject[TL_ID_TEXT], actor[96];
    snprintf(action, sizeof action, "catalogue.%s", event);
    tl_id_format(subject, TL_ID_DEVICE, job->agent->device_id);
    tl__agent_actor(job->agent, actor);
    json_t *details = json_deep_copy(job->request);
    if (details == NULL)
        return TL_ENOMEM;
    json_object_del(details, "type");
    json_object_del(details, "event");
    int rc = tl_worker_audit(ctx, actor, action, subject, details);
    json_decref(details);
    return rc;
}

/* The witness's request (§7.15): the latest checkpoint and a proof that it extends `have`. */
static int run_audit_witness(tl_job_t *base, tl_job_ctx_t *ctx)
{
    (void)ctx;
    struct agent_job *job = (struct agent_job *)base;
    const char *data = job->agent->server->config.data_dir;
    char why[256];
    uint64_t have = (uint64_t)json_integer_value(json_object_get(job->request, "have"));
    if (data == NULL) {
        job->reply = json_object(); /* no data directory: nothing is signed */
        return job->reply != NULL ? 0 : TL_ENOMEM;
    }
    int rc = tl_audit_witness(data, have, &job->reply, why, sizeof why);
    if (rc != 0) {
        tl_log_error("audit witness not answered device=D-%" PRId64 " have=%" PRIu64
                     " reason=\"%s\"",
                     job->device_id, have, why);
        return rc == TL_ENOMEM ? rc : TL_EIO;
    }
    return 0;
}

/* proto/witness.h's verdicts, and "other-key" for an audit key other than the one pinned. */
static const char *const conflict_kinds[] = {"bad-note",  "other-log",    "other-key", "shrank",
                                             "two-roots", "not-extended", NULL};

/* The members of an audit.conflict, checked: 0 or TL_EINVAL. */
static int audit_conflict_check(json_t *body)
{
    const char *kind = json_string_value(json_object_get(body, "kind"));
    int known = 0;
    for (size_t i = 0; kind != NULL && conflict_kinds[i] != NULL; i++)
        known |= strcmp(kind, conflict_kinds[i]) == 0;
    json_t *time = json_object_get(body, "time");
    if (!known || tl__json_text(body, "kept", TL_SIGNED_NOTE_MAX, 0) == NULL ||
        tl__json_text(body, "shown", TL_SIGNED_NOTE_MAX, 1) == NULL ||
        tl__json_text(body, "reason", TL_MSG_MAX_TEXT, 0) == NULL || !json_is_integer(time) ||
        json_integer_value(time) < 0 || json_integer_value(time) > TL_CATALOGUE_CREATED_MAX)
        return TL_EINVAL;
    return 0;
}

/* A witness found the log's history rewritten (§7.15): on the record, for whoever audits it. */
static int run_audit_conflict(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    char subject[TL_ID_TEXT], actor[96];
    tl_id_format(subject, TL_ID_DEVICE, job->agent->device_id);
    tl__agent_actor(job->agent, actor);
    json_t *details = json_deep_copy(job->request);
    if (details == NULL)
        return TL_ENOMEM;
    json_object_del(details, "type");
    tl_log_error("audit log conflict reported device=%s kind=%s", subject,
                 json_string_value(json_object_get(details, "kind")));
    int rc = tl_worker_audit(ctx, actor, "audit.conflict", subject, details);
    json_decref(details);
    return rc;
}

/* A request that waits for the disk: bounded per connection, answered by control_done. */
static int submit_request(struct tl_agent_link *agent, const struct tl_msg_control *control,
                          int (*run)(tl_job_t *, tl_job_ctx_t *))
{
    if (agent->requests_in_flight >= TL_RELAY_MAX_REQUESTS) {
        /* A flood from one agent waits on that agent alone. */
        send_result(agent, control->request_id, TL_EFULL, NULL);
        return 0;
    }
    struct agent_job *job = tl__agent_job_new(agent, run, control_done);
    if (job == NULL)
        return TL_ENOMEM;
    agent->requests_in_flight++;
    job->request_id = control->request_id;
    job->device_id = agent->device_id;
    job->request = json_deep_copy(control->body); /* the worker owns its own copy */
    tl_worker_submit(agent->server->worker, &job->job);
    return 0;
}

/* Requests the relay does not know are answered TL_EINVAL. */
int tl__request_handle(struct tl_agent_link *agent, const char *type,
                       const struct tl_msg_control *control)
{
    if (tl_control_type_lookup(type) == TL_CONTROL_TICKET_CREATE) {
        json_t *body = control->body;
        json_t *tier = json_object_get(body, "tier");
        tl_selfhelp_row_t *rows = NULL;
        size_t row_count = 0;
        int rows_rc = selfhelp_rows(body, &rows, &row_count);
        free(rows);
        if (rows_rc == TL_ENOMEM)
            return rows_rc;
        if (rows_rc != 0 || tl__json_text(body, "title", TL_STORE_MAX_TITLE, 0) == NULL ||
            tl__json_text(body, "request", 64, 0) == NULL ||
            (json_object_get(body, "description") &&
             tl__json_text(body, "description", TL_STORE_MAX_DESCRIPTION, 1) == NULL) ||
            (tier != NULL && (!json_is_integer(tier) || json_integer_value(tier) < 0 ||
                              json_integer_value(tier) > 4)) ||
            check_evidence_list(json_object_get(body, "evidence")) != 0) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        return submit_request(agent, control, run_ticket_create);
    }
    if (tl_control_type_lookup(type) == TL_CONTROL_SELFHELP_DEFLECTED) {
        tl_selfhelp_deflection_t *deflection = malloc(sizeof *deflection);
        if (deflection == NULL)
            return TL_ENOMEM;
        int ok = tl_selfhelp_deflection_decode(control->body, deflection) == 0 &&
                 check_evidence_list(json_object_get(control->body, "evidence")) == 0;
        free(deflection);
        if (!ok) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        return submit_request(agent, control, run_deflection);
    }
    if (tl_control_type_lookup(type) == TL_CONTROL_TICKETS_LIST)
        return submit_request(agent, control, run_tickets_list);
    if (tl_control_type_lookup(type) == TL_CONTROL_CATALOGUE_GET) {
        json_t *offset = json_object_get(control->body, "offset");
        if (!json_is_integer(offset) || json_integer_value(offset) < 0 ||
            json_integer_value(offset) > TL_CATALOGUE_MAX) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        return submit_request(agent, control, run_catalogue_get);
    }
    if (tl_control_type_lookup(type) == TL_CONTROL_CATALOGUE_REPORT) {
        const char *event;
        if (catalogue_report_check(control->body, &event) != 0) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        return submit_request(agent, control, run_catalogue_report);
    }
    if (tl_control_type_lookup(type) == TL_CONTROL_AUDIT_WITNESS) {
        json_t *have = json_object_get(control->body, "have");
        if (!json_is_integer(have) || json_integer_value(have) < 0 ||
            (uint64_t)json_integer_value(have) > TL_AUDIT_WITNESS_SIZE_MAX) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        return submit_request(agent, control, run_audit_witness);
    }
    if (tl_control_type_lookup(type) == TL_CONTROL_AUDIT_CONFLICT) {
        if (audit_conflict_check(control->body) != 0) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        return submit_request(agent, control, run_audit_conflict);
    }
    send_result(agent, control->request_id, TL_EINVAL, NULL);
    return 0;
}
