/*
 * Enrollment (docs/protocol.md §7.2): an unknown key sends ENROLL with a
 * one-time code; the attempt is audited and, when the code is good, the
 * device stored, both on the worker, before the agent hears the outcome.
 * Failed attempts are counted per address (TL_RELAY_ENROLL_FAILURES per
 * TL_RELAY_ENROLL_WINDOW_MS) as they start.
 */
#include "proto/clock.h"
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "proto/text.h"
#include "relay/net/agent_server_int.h"
#include "relay/store/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct enroll_limit *limit_slot(tl_agent_server_t *server, const char *address, uint64_t now)
{
    struct enroll_limit *free_slot = NULL, *oldest = &server->limits[0];
    for (int i = 0; i < ENROLL_LIMIT_SLOTS; i++) {
        struct enroll_limit *slot = &server->limits[i];
        if (strcmp(slot->address, address) == 0)
            return slot;
        if (slot->address[0] == '\0' || now - slot->window_start >= TL_RELAY_ENROLL_WINDOW_MS) {
            if (free_slot == NULL)
                free_slot = slot;
        } else if (slot->window_start < oldest->window_start) {
            oldest = slot;
        }
    }
    struct enroll_limit *slot = free_slot ? free_slot : oldest;
    snprintf(slot->address, sizeof slot->address, "%s", address);
    slot->window_start = now;
    slot->failures = 0;
    return slot;
}

static int enroll_limited(tl_agent_server_t *server, const char *address)
{
    uint64_t now = uv_now(server->loop);
    struct enroll_limit *slot = limit_slot(server, address, now);
    if (now - slot->window_start >= TL_RELAY_ENROLL_WINDOW_MS) {
        slot->window_start = now;
        slot->failures = 0;
    }
    return slot->failures >= TL_RELAY_ENROLL_FAILURES;
}

static void enroll_failed(tl_agent_server_t *server, const char *address)
{
    struct enroll_limit *slot = limit_slot(server, address, uv_now(server->loop));
    slot->failures++;
}

static void enroll_succeeded(tl_agent_server_t *server, const char *address)
{
    struct enroll_limit *slot = limit_slot(server, address, uv_now(server->loop));
    if (slot->failures > 0)
        slot->failures--;
}

static int run_enroll(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    struct tl_agent_link *agent = job->agent;
    char actor[96];
    tl__agent_actor(agent, actor);
    if (job->result == 0) {
        job->result = tl_store_enroll(ctx->store, job->code_hash, tl_wall_ms(), &job->device,
                                      &job->device_id);
    }
    json_t *details;
    int rc;
    if (job->result == 0) {
        char subject[TL_ID_TEXT];
        tl_id_format(subject, TL_ID_DEVICE, job->device_id);
        details = json_pack("{s:s, s:s, s:s, s:s}", "fingerprint", agent->fingerprint, "hostname",
                            job->device.hostname, "os", job->device.os, "address", agent->address);
        rc = tl_worker_audit(ctx, actor, "enroll.ok", subject, details);
    } else {
        details = json_pack("{s:s, s:s, s:s}", "reason", tl_err_name(tl_err_compat(job->result)),
                            "fingerprint", agent->fingerprint, "address", agent->address);
        rc = tl_worker_audit(ctx, actor, "enroll.failed", "", details);
    }
    json_decref(details);
    /* The outcome travels in job->result; the job itself succeeded if audited. */
    return rc;
}

static const char *enroll_message(int result)
{
    switch (result) {
    case 0:
        return "enrolled";
    case TL_ENOTFOUND:
        return "unknown enrollment code";
    case TL_EEXPIRED:
        return "enrollment code expired: ask for a new one";
    case TL_EUSED:
        return "enrollment code already used: ask for a new one";
    case TL_EEXIST:
        return "this agent key is already enrolled";
    case TL_ETIMEOUT:
        return "too many failed attempts from this address: try again later";
    case TL_EINVAL:
        return "malformed enrollment code";
    default:
        return "enrollment failed on the relay";
    }
}

static void enroll_done(tl_job_t *base, int status)
{
    struct agent_job *job = (struct agent_job *)base;
    struct tl_agent_link *agent = job->agent;
    int result = tl_err_compat(status != 0 ? status : job->result);
    tl_metrics_enrollment(result);
    if (result == 0) {
        enroll_succeeded(agent->server, agent->address);
        tl_registry_add(agent->server->registry, agent->fingerprint, job->device_id);
        tl_log_info("agent enrolled device=D-%" PRId64 " fingerprint=%s address=%s", job->device_id,
                    agent->fingerprint, agent->address);
    } else {
        tl_log_peer_warn(agent->address, "enrollment refused fingerprint=%s address=%s reason=%s",
                         agent->fingerprint, agent->address, tl_err_name(result));
    }
    if (!agent->closed) {
        char device[TL_ID_TEXT] = "";
        if (result == 0)
            tl_id_format(device, TL_ID_DEVICE, job->device_id);
        tl_msg_t reply = {.type = TL_MSG_ENROLL_RESULT};
        reply.u.enroll_result.status = (uint32_t)-result;
        reply.u.enroll_result.device_id = tl_str_from(device);
        reply.u.enroll_result.message = tl_str_from(enroll_message(result));
        tl_peer_send(agent->peer, &reply);
        tl_peer_close(agent->peer, 0, NULL);
    }
    tl__agent_job_free(job);
}

int tl__enroll_handle(struct tl_agent_link *agent, const struct tl_msg_enroll *enroll)
{
    if (agent->enrolling)
        return TL_EPROTO;
    if (agent->device_id > 0) {
        /* An enrolled key asking again lost its state: tell it who it is. */
        char device[TL_ID_TEXT];
        tl_id_format(device, TL_ID_DEVICE, agent->device_id);
        tl_msg_t reply = {.type = TL_MSG_ENROLL_RESULT};
        reply.u.enroll_result.status = (uint32_t)-TL_EEXIST;
        reply.u.enroll_result.device_id = tl_str_from(device);
        reply.u.enroll_result.message = tl_str_from(enroll_message(TL_EEXIST));
        tl_peer_send(agent->peer, &reply);
        tl_peer_close(agent->peer, 0, NULL);
        return 0;
    }
    agent->enrolling = 1;
    tl__agent_stop_enroll_deadline(agent);
    struct agent_job *job = tl__agent_job_new(agent, run_enroll, enroll_done);
    if (job == NULL)
        return TL_ENOMEM;
    job->device.fingerprint = agent->fingerprint;
    /* Kept as sent, but as text (docs/technicians.md "Text from others"): bytes that are
     * not UTF-8 become \xHH, or no listing or JSON could carry them. */
    job->device.hostname = tl_text_utf8_dup(enroll->hostname.ptr, enroll->hostname.len);
    job->device.os = tl_text_utf8_dup(enroll->os.ptr, enroll->os.len);
    if (job->device.hostname == NULL || job->device.os == NULL) {
        tl__agent_job_free(job);
        return TL_ENOMEM;
    }
    char typed[TL_MSG_MAX_CODE + 1];
    memcpy(typed, enroll->code.ptr, enroll->code.len);
    typed[enroll->code.len] = '\0';
    if (enroll_limited(agent->server, agent->address))
        job->result = TL_ERATELIMITED;
    else if (tl_enroll_code_hash(typed, job->code_hash) != 0)
        job->result = TL_EINVAL;
    /* Counted now, so parallel attempts cannot all slip under the limit;
     * a success gives the attempt back. */
    if (job->result != TL_ERATELIMITED)
        enroll_failed(agent->server, agent->address);
    /* Even a refusal goes through the worker: every attempt is audited first. */
    tl_worker_submit(agent->server->worker, &job->job);
    return 0;
}
