/*
 * Requests from enrolled agents (docs/protocol.md §7.5, §7.11): ticket.create, with
 * the evidence it names, checked on the loop and recorded by a storage job;
 * the answer goes out only once the job is durable. tickets.list, read by a
 * storage job for the connection's own device. Requests waiting for the
 * disk are bounded per connection (TL_RELAY_MAX_REQUESTS).
 */
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "relay/desk/tickets.h"
#include "relay/desk/timeline.h"
#include "relay/desk/user_tickets.h"
#include "relay/desk/triage.h"
#include "relay/net/agent_server_int.h"

#include <inttypes.h>
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
        if (tl__json_text(body, "title", TL_STORE_MAX_TITLE, 0) == NULL ||
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
    if (tl_control_type_lookup(type) == TL_CONTROL_TICKETS_LIST)
        return submit_request(agent, control, run_tickets_list);
    send_result(agent, control->request_id, TL_EINVAL, NULL);
    return 0;
}
