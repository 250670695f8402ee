#include "proto/clock.h"
#include "relay/net/server.h"
#include "proto/addr.h"
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "proto/text.h"
#include "relay/store/datadir.h"
#include "relay/net/listener.h"
#include "relay/net/log_limit.h"
#include "relay/net/login_tally.h"
#include "relay/net/registry.h"
#include "relay/store/audit_chain.h"
#include "relay/cmd/commands.h"
#include "relay/sessions/sessions.h"
#include "relay/net/ssh_front.h"
#include "relay/store/status.h"
#include "relay/desk/users.h"
#include "relay/store/worker.h"
#include "tl_version.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* docs/protocol.md §7. */

struct relay;

/* One connected agent (or a key that came to enroll). */
struct tl_agent_link {
    struct relay *relay;
    tl_peer_t *peer;
    struct tl_agent_link *prev, *next;
    struct upload *uploads;
    int64_t device_id; /* 0 while unknown: enrollment only */
    char fingerprint[TL_FINGERPRINT_LEN];
    char address[TL_ADDR_TEXT_MAX];
    uv_timer_t *enroll_deadline; /* unknown keys only: enroll in time or go */
    int refs;                    /* the connection itself, plus each job in flight */
    unsigned uploads_open;       /* upload channels open now */
    unsigned requests_in_flight;
    /* Requests the relay sent (sessions), allocated on first use. */
    struct pending_request *pending;
    uv_timer_t *request_timer;
    uint32_t next_request_id;
    unsigned pending_count;
    unsigned closed : 1;
    unsigned enrolling : 1;
    unsigned counted_online : 1;
};

/* An evidence item arriving on an "upload" channel (docs/protocol.md §7.4). */
struct upload {
    struct tl_agent_link *agent;
    struct upload *next;
    uint32_t channel;
    tl_evidence_writer_t *writer; /* worker thread only */
    char expect_hash[TL_SHA256_HEX_LEN];
    char kind[33];
    char name[256];
    uint64_t expect_size;
    uint64_t received;
    /* Worker thread only: the item is committed, failed or aborted. */
    int worker_finished;
    /* Loop only (never in the same memory as the worker's field). */
    unsigned jobs; /* in flight */
    unsigned channel_open : 1;
    unsigned stopped : 1; /* no more jobs will be queued */
};

/* A control request the relay sent and the agent has not answered yet. */
struct pending_request {
    uint32_t id; /* 0: a free slot */
    uint64_t deadline;
    tl_agent_answer_fn answer;
    void *data;
};

struct enroll_limit {
    char address[TL_ADDR_TEXT_MAX];
    uint64_t window_start;
    unsigned failures;
};

#define ENROLL_LIMIT_SLOTS 256

struct relay {
    uv_loop_t *loop;
    tl_listener_t *listener; /* agents' TLS */
    uv_signal_t sigterm, sigint;
    tl_tls_ctx_t *tls;
    tl_store_t *store;
    tl_audit_chain_t *chain;
    tl_evidence_store_t *evidence;
    tl_worker_t *worker;
    int lock_fd; /* DATA/relay.lock, held while serving (relay/store/status.h) */
    tl_registry_t *registry;
    struct tl_agent_link *agents;
    uint32_t agent_count;
    tl_relay_config_t config;
    tl_peer_config_t peer_config;
    tl_mux_config_t mux_config;
    struct enroll_limit limits[ENROLL_LIMIT_SLOTS];
    /* technicians */
    tl_ssh_front_t *ssh;
    tl_users_t *users;
    uv_timer_t users_timer;
    int64_t users_version;
    int users_loading;
    tl_commands_ctx_t commands;
    tl_sessions_t *sessions;
    /* Refused logins, counted per address and minute (relay/net/login_tally.h). */
    tl_login_tally_t *login_tally;
    uv_timer_t login_tally_timer;
    char software[64];
    int stopping;
};

static void device_name(int64_t id, char out[32])
{
    snprintf(out, 32, "D-%" PRId64, id);
}

static void agent_actor(const struct tl_agent_link *agent, char out[96])
{
    if (agent->device_id > 0)
        snprintf(out, 96, "agent:D-%" PRId64, agent->device_id);
    else
        snprintf(out, 96, "agent:%s", agent->fingerprint);
}

static void agent_unref(struct tl_agent_link *agent)
{
    if (--agent->refs > 0)
        return;
    while (agent->uploads != NULL) {
        struct upload *next = agent->uploads->next;
        free(agent->uploads);
        agent->uploads = next;
    }
    free(agent->pending);
    free(agent);
}

static void deadline_closed(uv_handle_t *handle)
{
    struct tl_agent_link *agent = handle->data;
    free(handle);
    agent->enroll_deadline = NULL;
    agent_unref(agent);
}

static void stop_enroll_deadline(struct tl_agent_link *agent)
{
    if (agent->enroll_deadline != NULL && !uv_is_closing((uv_handle_t *)agent->enroll_deadline))
        uv_close((uv_handle_t *)agent->enroll_deadline, deadline_closed);
}

/* ---- jobs ------------------------------------------------------------------- */

/* A job bound to an agent: holds a reference so the agent outlives it. */
struct agent_job {
    tl_job_t job;
    struct tl_agent_link *agent;
    int result;            /* the outcome the agent is told */
    uint32_t request_id;   /* for control requests */
    json_t *request;       /* the request body (owned) */
    json_t *reply;         /* extra members for the result (owned) */
    struct upload *upload; /* for upload jobs */
    uint8_t *data;         /* for upload writes */
    size_t len;
    tl_device_info_t device; /* for enrollment (strings owned) */
    char code_hash[TL_SHA256_HEX_LEN];
    int64_t device_id;
    int online;
};

static struct agent_job *job_new(struct tl_agent_link *agent,
                                 int (*run)(tl_job_t *, tl_job_ctx_t *),
                                 void (*done)(tl_job_t *, int))
{
    struct agent_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->job.run = run;
    job->job.done = done;
    job->agent = agent;
    agent->refs++;
    return job;
}

static void job_free(struct agent_job *job)
{
    json_decref(job->request);
    json_decref(job->reply);
    free(job->data);
    free((char *)job->device.hostname);
    free((char *)job->device.os);
    agent_unref(job->agent);
    free(job);
}

/* ---- device presence ------------------------------------------------------ */

static int run_presence(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    char subject[32], actor[96];
    device_name(job->device_id, subject);
    snprintf(actor, sizeof actor, "agent:%s", subject);
    int rc = tl_store_device_seen(ctx->store, job->device_id, tl_wall_ms(), job->online);
    if (rc != 0)
        return rc;
    json_t *details = json_pack("{s:s, s:s}", "fingerprint", job->agent->fingerprint, "address",
                                job->agent->address);
    rc = tl_worker_audit(ctx, actor, job->online ? "agent.connect" : "agent.disconnect", subject,
                         details);
    json_decref(details);
    return rc;
}

static void presence_done(tl_job_t *base, int status)
{
    struct agent_job *job = (struct agent_job *)base;
    if (status != 0)
        tl_log_error("presence not recorded device=D-%" PRId64 " reason=%s", job->device_id,
                     tl_strerror(status));
    job_free(job);
}

static void submit_presence(struct tl_agent_link *agent, int online)
{
    struct agent_job *job = job_new(agent, run_presence, presence_done);
    if (job == NULL)
        return;
    job->device_id = agent->device_id;
    job->online = online;
    tl_worker_submit(agent->relay->worker, &job->job);
}

/* ---- enrollment ------------------------------------------------------------- */

static struct enroll_limit *limit_slot(struct relay *relay, const char *address, uint64_t now)
{
    struct enroll_limit *free_slot = NULL, *oldest = &relay->limits[0];
    for (int i = 0; i < ENROLL_LIMIT_SLOTS; i++) {
        struct enroll_limit *slot = &relay->limits[i];
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

static int enroll_limited(struct relay *relay, const char *address)
{
    uint64_t now = uv_now(relay->loop);
    struct enroll_limit *slot = limit_slot(relay, address, now);
    if (now - slot->window_start >= TL_RELAY_ENROLL_WINDOW_MS) {
        slot->window_start = now;
        slot->failures = 0;
    }
    return slot->failures >= TL_RELAY_ENROLL_FAILURES;
}

static void enroll_failed(struct relay *relay, const char *address)
{
    struct enroll_limit *slot = limit_slot(relay, address, uv_now(relay->loop));
    slot->failures++;
}

static void enroll_succeeded(struct relay *relay, const char *address)
{
    struct enroll_limit *slot = limit_slot(relay, address, uv_now(relay->loop));
    if (slot->failures > 0)
        slot->failures--;
}

static int run_enroll(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    struct tl_agent_link *agent = job->agent;
    char actor[96];
    agent_actor(agent, actor);
    if (job->result == 0) {
        job->result = tl_store_enroll(ctx->store, job->code_hash, tl_wall_ms(), &job->device,
                                      &job->device_id);
    }
    json_t *details;
    int rc;
    if (job->result == 0) {
        char subject[32];
        device_name(job->device_id, subject);
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
    if (result == 0) {
        enroll_succeeded(agent->relay, agent->address);
        tl_registry_add(agent->relay->registry, agent->fingerprint, job->device_id);
        tl_log_info("agent enrolled device=D-%" PRId64 " fingerprint=%s address=%s", job->device_id,
                    agent->fingerprint, agent->address);
    } else {
        tl_log_peer_warn(agent->address, "enrollment refused fingerprint=%s address=%s reason=%s",
                         agent->fingerprint, agent->address, tl_err_name(result));
    }
    if (!agent->closed) {
        char device[32] = "";
        if (result == 0)
            device_name(job->device_id, device);
        tl_msg_t reply = {.type = TL_MSG_ENROLL_RESULT};
        reply.u.enroll_result.status = (uint32_t)-result;
        reply.u.enroll_result.device_id = tl_str_from(device);
        reply.u.enroll_result.message = tl_str_from(enroll_message(result));
        tl_peer_send(agent->peer, &reply);
        tl_peer_close(agent->peer, 0, NULL);
    }
    job_free(job);
}

static int handle_enroll(struct tl_agent_link *agent, const struct tl_msg_enroll *enroll)
{
    if (agent->enrolling)
        return TL_EPROTO;
    if (agent->device_id > 0) {
        /* An enrolled key asking again lost its state: tell it who it is. */
        char device[32];
        device_name(agent->device_id, device);
        tl_msg_t reply = {.type = TL_MSG_ENROLL_RESULT};
        reply.u.enroll_result.status = (uint32_t)-TL_EEXIST;
        reply.u.enroll_result.device_id = tl_str_from(device);
        reply.u.enroll_result.message = tl_str_from(enroll_message(TL_EEXIST));
        tl_peer_send(agent->peer, &reply);
        tl_peer_close(agent->peer, 0, NULL);
        return 0;
    }
    agent->enrolling = 1;
    stop_enroll_deadline(agent);
    struct agent_job *job = job_new(agent, run_enroll, enroll_done);
    if (job == NULL)
        return TL_ENOMEM;
    job->device.fingerprint = agent->fingerprint;
    /* Kept as sent, but as text (docs/technicians.md "Text from others"): bytes that are
     * not UTF-8 become \xHH, or no listing or JSON could carry them. */
    job->device.hostname = tl_text_utf8_dup(enroll->hostname.ptr, enroll->hostname.len);
    job->device.os = tl_text_utf8_dup(enroll->os.ptr, enroll->os.len);
    if (job->device.hostname == NULL || job->device.os == NULL) {
        job_free(job);
        return TL_ENOMEM;
    }
    char typed[TL_MSG_MAX_CODE + 1];
    memcpy(typed, enroll->code.ptr, enroll->code.len);
    typed[enroll->code.len] = '\0';
    if (enroll_limited(agent->relay, agent->address))
        job->result = TL_ERATELIMITED;
    else if (tl_enroll_code_hash(typed, job->code_hash) != 0)
        job->result = TL_EINVAL;
    /* Counted now, so parallel attempts cannot all slip under the limit;
     * a success gives the attempt back. */
    if (job->result != TL_ERATELIMITED)
        enroll_failed(agent->relay, agent->address);
    /* Even a refusal goes through the worker: every attempt is audited first. */
    tl_worker_submit(agent->relay->worker, &job->job);
    return 0;
}

/* ---- control requests ------------------------------------------------------- */

static void send_result(struct tl_agent_link *agent, uint32_t request_id, int status, json_t *extra)
{
    if (agent->closed)
        return;
    json_t *body = status == 0
                       ? json_pack("{s:s, s:b}", "type", "result", "ok", 1)
                       : json_pack("{s:s, s:b, s:s, s:s}", "type", "result", "ok", 0, "error",
                                   tl_err_name(status), "message", tl_strerror(status));
    if (body == NULL)
        return;
    if (status == 0 && extra != NULL)
        json_object_update(body, extra);
    tl_peer_send_control(agent->peer, request_id, body);
    json_decref(body);
}

/* Text member of at most max bytes, non-empty unless empty_ok. */
static const char *get_text(json_t *object, const char *key, size_t max, int empty_ok)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_string(value))
        return NULL;
    size_t len = json_string_length(value);
    const char *text = json_string_value(value);
    if (len > max || (!empty_ok && len == 0) || strlen(text) != len)
        return NULL;
    return text;
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
    json_array_foreach(list, i, item)
    {
        json_t *size = json_object_get(item, "size");
        if (!tl_sha256_hex_valid(get_text(item, "sha256", 64, 0)) ||
            get_text(item, "kind", 32, 0) == NULL || get_text(item, "name", 255, 0) == NULL ||
            !json_is_integer(size) || json_integer_value(size) < 0)
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
        .title = get_text(request, "title", TL_STORE_MAX_TITLE, 0),
        .description = get_text(request, "description", TL_STORE_MAX_DESCRIPTION, 1),
        .tier = json_is_integer(tier_value) ? (int)json_integer_value(tier_value) : 1,
        .request_id = get_text(request, "request", 64, 0),
    };
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item)
    {
        /* Only evidence this device uploaded, at the size it really has. */
        uint64_t size = 0;
        const char *hash = json_string_value(json_object_get(item, "sha256"));
        int found = tl_store_upload_find(ctx->store, job->agent->device_id, hash, &size);
        if (found != 0)
            return found;
        if (tl_evidence_exists(ctx->evidence, hash) != 1)
            return TL_ENOTFOUND;
        json_object_set_new(item, "size", json_integer((json_int_t)size));
    }
    int64_t ticket_id = 0, now = tl_wall_ms();
    int created = 0, added = 0;
    int rc = tl_store_ticket_create(ctx->store, &ticket, now, &ticket_id, &created);
    if (rc != 0)
        return rc;
    char subject[32], actor[96];
    snprintf(subject, sizeof subject, "T-%" PRId64, ticket_id);
    agent_actor(job->agent, actor);
    if (created) {
        json_t *event = json_pack("{s:s, s:i}", "title", ticket.title, "tier", ticket.tier);
        rc = tl_store_ticket_event(ctx->store, ticket_id, now, actor, "ticket.created", event);
        json_decref(event);
        if (rc != 0)
            return rc;
    }
    json_t *hashes = json_array();
    json_array_foreach(evidence, i, item)
    {
        const char *hash = json_string_value(json_object_get(item, "sha256"));
        rc = tl_store_evidence_add(
            ctx->store, ticket_id, hash, json_string_value(json_object_get(item, "kind")),
            json_string_value(json_object_get(item, "name")),
            (uint64_t)json_integer_value(json_object_get(item, "size")), now, &added);
        if (rc != 0)
            goto out;
        json_array_append_new(hashes, json_string(hash));
        if (added) {
            json_t *details =
                json_pack("{s:s, s:O}", "sha256", hash, "kind", json_object_get(item, "kind"));
            rc =
                tl_store_ticket_event(ctx->store, ticket_id, now, actor, "evidence.added", details);
            json_decref(details);
            if (rc != 0)
                goto out;
        }
    }
    if (created) {
        char device[32];
        device_name(job->agent->device_id, device);
        json_t *details =
            json_pack("{s:s, s:s, s:i, s:O, s:s}", "device", device, "title", ticket.title, "tier",
                      ticket.tier, "evidence", hashes, "request", ticket.request_id);
        rc = tl_worker_audit(ctx, actor, "ticket.create", subject, details);
        json_decref(details);
    }
    if (rc == 0)
        job->reply = json_pack("{s:s, s:b}", "ticket", subject, "created", created);
out:
    json_decref(hashes);
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
    job_free(job);
}

/* ---- requests the relay sends (relay/sessions/sessions.c) ------------------------------------------ */

int64_t tl_agent_device(const tl_agent_link_t *agent)
{
    return agent->device_id;
}

tl_mux_t *tl_agent_mux(tl_agent_link_t *agent)
{
    return agent->closed ? NULL : tl_peer_mux(agent->peer);
}

int tl_agent_notify(tl_agent_link_t *agent, json_t *body)
{
    if (agent->closed)
        return TL_ECLOSED;
    return tl_peer_send_control(agent->peer, 0, body);
}

static void arm_request_timer(struct tl_agent_link *agent);

static void request_timer_closed(uv_handle_t *handle)
{
    struct tl_agent_link *agent = handle->data;
    free(handle);
    agent_unref(agent);
}

static void on_request_timer(uv_timer_t *timer)
{
    struct tl_agent_link *agent = timer->data;
    uint64_t now = uv_now(agent->relay->loop);
    /* A callback may send or cancel requests: take one expired slot at a time. */
    for (unsigned i = 0; i < TL_AGENT_MAX_PENDING && !agent->closed; i++) {
        struct pending_request *slot = &agent->pending[i];
        if (slot->id == 0 || slot->deadline > now)
            continue;
        struct pending_request expired = *slot;
        slot->id = 0;
        agent->pending_count--;
        tl_log_info("agent request timed out device=D-%" PRId64 " request=%" PRIu32,
                    agent->device_id, expired.id);
        expired.answer(expired.data, TL_ETIMEOUT, NULL);
    }
    if (!agent->closed)
        arm_request_timer(agent);
}

static void arm_request_timer(struct tl_agent_link *agent)
{
    uint64_t earliest = UINT64_MAX;
    for (unsigned i = 0; i < TL_AGENT_MAX_PENDING; i++)
        if (agent->pending[i].id != 0 && agent->pending[i].deadline < earliest)
            earliest = agent->pending[i].deadline;
    if (earliest == UINT64_MAX) {
        uv_timer_stop(agent->request_timer);
        return;
    }
    uint64_t now = uv_now(agent->relay->loop);
    uv_timer_start(agent->request_timer, on_request_timer, earliest > now ? earliest - now : 0, 0);
}

int tl_agent_request(tl_agent_link_t *agent, json_t *body, uint32_t timeout_ms,
                     tl_agent_answer_fn answer, void *data, uint32_t *request_id)
{
    if (agent->closed)
        return TL_ECLOSED;
    if (agent->pending_count >= TL_AGENT_MAX_PENDING)
        return TL_EFULL;
    if (agent->pending == NULL &&
        (agent->pending = calloc(TL_AGENT_MAX_PENDING, sizeof *agent->pending)) == NULL)
        return TL_ENOMEM;
    if (agent->request_timer == NULL) {
        agent->request_timer = malloc(sizeof *agent->request_timer);
        if (agent->request_timer == NULL)
            return TL_ENOMEM;
        uv_timer_init(agent->relay->loop, agent->request_timer);
        agent->request_timer->data = agent;
        agent->refs++;
    }
    struct pending_request *slot = NULL;
    for (unsigned i = 0; i < TL_AGENT_MAX_PENDING && slot == NULL; i++)
        if (agent->pending[i].id == 0)
            slot = &agent->pending[i];
    /* Ids count up per connection and skip 0 and any still waiting. */
    uint32_t id;
    int taken;
    do {
        id = ++agent->next_request_id;
        taken = id == 0;
        for (unsigned i = 0; i < TL_AGENT_MAX_PENDING && !taken; i++)
            taken = agent->pending[i].id == id;
    } while (taken);
    int rc = tl_peer_send_control(agent->peer, id, body);
    if (rc != 0)
        return rc;
    *slot = (struct pending_request){id, uv_now(agent->relay->loop) + timeout_ms, answer, data};
    agent->pending_count++;
    arm_request_timer(agent);
    *request_id = id;
    return 0;
}

void tl_agent_request_cancel(tl_agent_link_t *agent, uint32_t request_id)
{
    for (unsigned i = 0; agent->pending != NULL && i < TL_AGENT_MAX_PENDING; i++) {
        if (request_id != 0 && agent->pending[i].id == request_id) {
            agent->pending[i].id = 0;
            agent->pending_count--;
            if (!agent->closed)
                arm_request_timer(agent);
            return;
        }
    }
}

/* An answer to one of our requests: its slot is freed before the callback runs. */
static void handle_answer(struct tl_agent_link *agent, const struct tl_msg_control *control)
{
    for (unsigned i = 0; agent->pending != NULL && i < TL_AGENT_MAX_PENDING; i++) {
        struct pending_request *slot = &agent->pending[i];
        if (slot->id != control->request_id)
            continue;
        struct pending_request answered = *slot;
        slot->id = 0;
        agent->pending_count--;
        arm_request_timer(agent);
        answered.answer(answered.data, 0, control->body);
        return;
    }
    /* Late (timed out or cancelled) or invented: nobody waits for it. */
    tl_log_debug("answer to no pending request device=D-%" PRId64 " request=%" PRIu32,
                 agent->device_id, control->request_id);
}

/* The connection is gone: every request still waiting fails. */
static void fail_pending_requests(struct tl_agent_link *agent)
{
    for (unsigned i = 0; agent->pending != NULL && i < TL_AGENT_MAX_PENDING; i++) {
        struct pending_request *slot = &agent->pending[i];
        if (slot->id == 0)
            continue;
        struct pending_request failed = *slot;
        slot->id = 0;
        agent->pending_count--;
        failed.answer(failed.data, TL_ECLOSED, NULL);
    }
    if (agent->request_timer != NULL && !uv_is_closing((uv_handle_t *)agent->request_timer))
        uv_close((uv_handle_t *)agent->request_timer, request_timer_closed);
}

static int handle_control(struct tl_agent_link *agent, const struct tl_msg_control *control)
{
    const char *type = get_text(control->body, "type", 64, 0);
    if (control->request_id == 0) {
        /* Notifications from agents (docs/protocol.md §7.8); others are ignored. */
        if (type != NULL && strcmp(type, "session.ended") == 0 && agent->relay->sessions != NULL)
            tl_sessions_grant_ended(agent->relay->sessions, agent, control->body);
        return 0;
    }
    if (type != NULL && strcmp(type, "result") == 0) {
        handle_answer(agent, control);
        return 0;
    }
    if (type != NULL && strcmp(type, "ticket.create") == 0) {
        json_t *body = control->body;
        json_t *tier = json_object_get(body, "tier");
        if (get_text(body, "title", TL_STORE_MAX_TITLE, 0) == NULL ||
            get_text(body, "request", 64, 0) == NULL ||
            (json_object_get(body, "description") &&
             get_text(body, "description", TL_STORE_MAX_DESCRIPTION, 1) == NULL) ||
            (tier != NULL && (!json_is_integer(tier) || json_integer_value(tier) < 0 ||
                              json_integer_value(tier) > 4)) ||
            check_evidence_list(json_object_get(body, "evidence")) != 0) {
            send_result(agent, control->request_id, TL_EINVAL, NULL);
            return 0;
        }
        if (agent->requests_in_flight >= TL_RELAY_MAX_REQUESTS) {
            /* A flood from one agent waits on that agent alone. */
            send_result(agent, control->request_id, TL_EFULL, NULL);
            return 0;
        }
        struct agent_job *job = job_new(agent, run_ticket_create, control_done);
        if (job == NULL)
            return TL_ENOMEM;
        agent->requests_in_flight++;
        job->request_id = control->request_id;
        job->request = json_deep_copy(body); /* the worker owns its own copy */
        tl_worker_submit(agent->relay->worker, &job->job);
        return 0;
    }
    send_result(agent, control->request_id, TL_EINVAL, NULL);
    return 0;
}

/* ---- uploads ------------------------------------------------------------------ */

enum upload_step { UPLOAD_WRITE, UPLOAD_COMMIT, UPLOAD_ABORT };

static int run_upload(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    struct upload *up = job->upload;
    int step = job->online; /* reused as the step */
    if (up->worker_finished)
        return TL_ECLOSED;
    if (step == UPLOAD_ABORT) {
        tl_evidence_writer_abort(up->writer);
        up->writer = NULL;
        up->worker_finished = 1;
        return 0;
    }
    if (up->writer == NULL) {
        int rc = tl_evidence_writer_new(ctx->evidence, &up->writer);
        if (rc != 0) {
            up->worker_finished = 1;
            return rc;
        }
    }
    if (step == UPLOAD_WRITE) {
        int rc = tl_evidence_writer_write(up->writer, job->data, job->len);
        if (rc != 0) {
            tl_evidence_writer_abort(up->writer);
            up->writer = NULL;
            up->worker_finished = 1;
        }
        return rc;
    }
    char hash[TL_EVIDENCE_HASH_HEX];
    uint64_t size = up->expect_size;
    int rc = tl_evidence_writer_commit_expected(up->writer, up->expect_hash, up->expect_size, hash);
    up->writer = NULL;
    up->worker_finished = 1;
    if (rc != 0)
        return rc; /* TL_EMISMATCH: not what the agent announced, and nothing stored */
    rc = tl_store_upload_record(ctx->store, job->agent->device_id, hash, size, tl_wall_ms());
    if (rc != 0)
        return rc;
    char actor[96];
    agent_actor(job->agent, actor);
    json_t *details = json_pack("{s:s, s:I, s:s, s:s}", "sha256", hash, "size", (json_int_t)size,
                                "kind", up->kind, "name", up->name);
    rc = tl_worker_audit(ctx, actor, "evidence.store", hash, details);
    json_decref(details);
    return rc;
}

/* An upload whose channel is gone and whose jobs are done leaves the agent. */
static void upload_release_if_done(struct upload *up)
{
    if (up->channel_open || up->jobs > 0 || up->agent->closed)
        return; /* a closed agent frees its list itself */
    struct tl_agent_link *agent = up->agent;
    for (struct upload **at = &agent->uploads; *at != NULL; at = &(*at)->next) {
        if (*at == up) {
            *at = up->next;
            break;
        }
    }
    free(up);
}

static void upload_close_channel(struct upload *up, int status)
{
    if (!up->channel_open || up->agent->closed)
        return;
    struct tl_msg_channel_close close = {0};
    close.flags = TL_CLOSE_HAS_EXIT_STATUS;
    close.exit_status = -status;
    tl_mux_close(tl_peer_mux(up->agent->peer), up->channel, &close);
}

static void upload_done(tl_job_t *base, int status)
{
    struct agent_job *job = (struct agent_job *)base;
    struct upload *up = job->upload;
    int step = job->online;
    up->jobs--;
    if (step == UPLOAD_WRITE) {
        if (status == 0 && up->channel_open && !job->agent->closed)
            tl_mux_consumed(tl_peer_mux(job->agent->peer), up->channel, job->len);
        else if (status != 0 && !up->stopped) {
            up->stopped = 1;
            upload_close_channel(up, status);
        }
    } else if (step == UPLOAD_COMMIT) {
        if (status == 0)
            tl_log_info("evidence stored device=D-%" PRId64 " sha256=%s size=%" PRIu64,
                        job->agent->device_id, up->expect_hash, up->expect_size);
        else
            tl_log_warn("evidence refused device=D-%" PRId64 " reason=%s", job->agent->device_id,
                        tl_err_name(status));
        upload_close_channel(up, status);
    }
    /* job_free may drop the last reference to the agent, which frees its uploads. */
    if (!job->agent->closed)
        upload_release_if_done(up);
    job_free(job);
}

static int submit_upload_step(struct upload *up, int step, const uint8_t *data, size_t len)
{
    struct agent_job *job = job_new(up->agent, run_upload, upload_done);
    if (job == NULL)
        return TL_ENOMEM;
    job->upload = up;
    job->online = step;
    up->jobs++;
    if (len > 0) {
        job->data = malloc(len);
        if (job->data == NULL) {
            up->jobs--;
            job_free(job);
            return TL_ENOMEM;
        }
        memcpy(job->data, data, len);
        job->len = len;
    }
    tl_worker_submit(up->agent->relay->worker, &job->job);
    return 0;
}

static struct upload *find_upload(struct tl_agent_link *agent, uint32_t channel)
{
    for (struct upload *up = agent->uploads; up != NULL; up = up->next)
        if (up->channel_open && up->channel == channel)
            return up;
    return NULL;
}

static int open_upload(struct tl_agent_link *agent, uint32_t channel, json_t *params)
{
    const char *hash = get_text(params, "sha256", 64, 0);
    const char *kind = get_text(params, "kind", 32, 0);
    const char *name = get_text(params, "name", 255, 0);
    json_t *size = json_object_get(params, "size");
    if (!tl_sha256_hex_valid(hash) || kind == NULL || name == NULL || !json_is_integer(size) ||
        json_integer_value(size) < 0)
        return TL_EINVAL;
    if ((uint64_t)json_integer_value(size) > agent->relay->config.max_upload_bytes)
        return TL_EFULL;
    if (agent->uploads_open >= TL_RELAY_MAX_UPLOADS)
        return TL_ECHANNEL_LIMIT;
    struct upload *up = calloc(1, sizeof *up);
    if (up == NULL)
        return TL_ENOMEM;
    up->agent = agent;
    up->channel = channel;
    up->channel_open = 1;
    up->expect_size = (uint64_t)json_integer_value(size);
    snprintf(up->expect_hash, sizeof up->expect_hash, "%s", hash);
    snprintf(up->kind, sizeof up->kind, "%s", kind);
    snprintf(up->name, sizeof up->name, "%s", name);
    up->next = agent->uploads;
    agent->uploads = up;
    agent->uploads_open++;
    return 0;
}

static void on_channel_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    tl_peer_t *peer = ctx;
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    tl_mux_t *mux = tl_peer_mux(peer);
    if (agent->device_id <= 0) {
        /* An unknown key may only enroll (docs/protocol.md §7.2). */
        tl_mux_refuse(mux, channel, (uint32_t)-TL_ENOT_ENROLLED, "enroll first");
        tl_peer_close(peer, TL_ENOT_ENROLLED, "unknown agent key: enroll first");
        return;
    }
    int rc = TL_EINVAL;
    if (tl_str_eq(request->channel_type, "upload"))
        rc = open_upload(agent, channel, request->params);
    if (rc != 0) {
        tl_mux_refuse(mux, channel, (uint32_t)-rc, tl_strerror(rc));
        return;
    }
    tl_mux_confirm(mux, channel);
}

/* Channels the relay opened belong to a session (relay/sessions/sessions.c), which marked them. */
static void *session_of(tl_peer_t *peer, uint32_t channel)
{
    return tl_mux_get_data(tl_peer_mux(peer), channel);
}

static void on_channel_confirm(void *ctx, uint32_t channel)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        tl_sessions_channel_confirm(session);
}

static void on_channel_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        tl_sessions_channel_refuse(session, reason, message);
}

static void on_channel_writable(void *ctx, uint32_t channel)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        tl_sessions_channel_writable(session);
}

static void on_channel_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                            size_t len)
{
    tl_peer_t *peer = ctx;
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    void *session = session_of(peer, channel);
    if (session != NULL) {
        tl_sessions_channel_data(session, stream, data, len);
        return;
    }
    struct upload *up = find_upload(agent, channel);
    if (up == NULL || up->stopped)
        return;
    if (stream != TL_STREAM_MAIN || up->received + len > up->expect_size) {
        up->stopped = 1;
        submit_upload_step(up, UPLOAD_ABORT, NULL, 0);
        upload_close_channel(up, TL_EMSG_MALFORMED);
        return;
    }
    up->received += len;
    if (submit_upload_step(up, UPLOAD_WRITE, data, len) != 0)
        upload_close_channel(up, TL_ENOMEM);
}

static void on_channel_eof(void *ctx, uint32_t channel)
{
    tl_peer_t *peer = ctx;
    void *session = session_of(peer, channel);
    if (session != NULL) {
        tl_sessions_channel_eof(session);
        return;
    }
    struct upload *up = find_upload(tl_peer_get_data(peer), channel);
    if (up != NULL && !up->stopped) {
        up->stopped = 1;
        submit_upload_step(up, UPLOAD_COMMIT, NULL, 0);
    }
}

static void on_channel_input_ack(void *ctx, uint32_t channel, uint32_t bytes, int hidden)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        tl_sessions_channel_input_ack(session, bytes, hidden);
}

static void on_channel_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    tl_peer_t *peer = ctx;
    void *session = session_of(peer, channel);
    if (session != NULL) {
        tl_sessions_channel_close(session, close);
        return;
    }
    struct upload *up = find_upload(tl_peer_get_data(peer), channel);
    if (up == NULL)
        return;
    up->channel_open = 0;
    up->agent->uploads_open--;
    /* Ended early by the agent: whatever arrived is dropped (the worker ignores
     * this if the item was already committed). */
    up->stopped = 1;
    submit_upload_step(up, UPLOAD_ABORT, NULL, 0);
    upload_release_if_done(up);
}

static const tl_mux_callbacks_t channel_callbacks = {
    .on_open = on_channel_open,
    .on_confirm = on_channel_confirm,
    .on_refuse = on_channel_refuse,
    .on_writable = on_channel_writable,
    .on_data = on_channel_data,
    .on_eof = on_channel_eof,
    .on_close = on_channel_close,
    .on_input_ack = on_channel_input_ack,
};

/* ---- connections -------------------------------------------------------------- */

static void enroll_deadline_passed(uv_timer_t *timer)
{
    struct tl_agent_link *agent = timer->data;
    stop_enroll_deadline(agent);
    if (!agent->closed && !agent->enrolling) {
        tl_log_peer_info(agent->address,
                         "unknown key did not enroll, closing fingerprint=%s address=%s",
                         agent->fingerprint, agent->address);
        tl_peer_close(agent->peer, TL_ENOT_ENROLLED, "unknown agent key: enroll first");
    }
}

static void on_peer_ready(tl_peer_t *peer)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    struct relay *relay = agent->relay;
    const char *fingerprint = tl_peer_fingerprint(peer);
    snprintf(agent->fingerprint, sizeof agent->fingerprint, "%s", fingerprint ? fingerprint : "");
    agent->device_id = tl_registry_find(relay->registry, agent->fingerprint);
    if (agent->device_id <= 0) {
        tl_log_peer_info(agent->address, "unknown key connected fingerprint=%s address=%s",
                         agent->fingerprint, agent->address);
        /* It may only enroll (docs/protocol.md §7.2): say so, and wait only so long. */
        json_t *notice = json_pack("{s:s}", "type", "enroll-required");
        tl_peer_send_control(peer, 0, notice);
        json_decref(notice);
        agent->enroll_deadline = malloc(sizeof *agent->enroll_deadline);
        if (agent->enroll_deadline != NULL) {
            uv_timer_init(relay->loop, agent->enroll_deadline);
            agent->enroll_deadline->data = agent;
            agent->refs++;
            uv_timer_start(agent->enroll_deadline, enroll_deadline_passed,
                           relay->config.handshake_timeout_ms, 0);
        }
        return;
    }
    tl_peer_set_authenticated(peer);
    /* A device has one live connection: a new one replaces a stale one. */
    for (struct tl_agent_link *other = relay->agents; other != NULL; other = other->next) {
        if (other != agent && other->device_id == agent->device_id && !other->closed) {
            tl_log_info("agent reconnected, closing old connection device=D-%" PRId64,
                        agent->device_id);
            tl_peer_close(other->peer, 0, "replaced by a newer connection");
        }
    }
    char device[32];
    device_name(agent->device_id, device);
    json_t *welcome = json_pack("{s:s, s:s, s:i}", "type", "welcome", "device", device,
                                "heartbeat_ms", (json_int_t)relay->config.heartbeat_ms);
    tl_peer_send_control(peer, 0, welcome);
    json_decref(welcome);
    tl_peer_set_heartbeat(peer, relay->config.heartbeat_ms);
    agent->counted_online = 1;
    submit_presence(agent, 1);
    tl_log_info("agent connected device=%s address=%s", device, agent->address);
}

static int on_peer_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    if (msg->type == TL_MSG_ENROLL)
        return handle_enroll(agent, &msg->u.enroll);
    if (agent->device_id <= 0)
        return TL_ENOT_ENROLLED; /* an unknown key may only enroll */
    if (msg->type == TL_MSG_CONTROL)
        return handle_control(agent, &msg->u.control);
    return TL_EPROTO;
}

static void on_peer_closed(tl_peer_t *peer, int reason)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    struct relay *relay = agent->relay;
    agent->closed = 1;
    if (agent->prev != NULL)
        agent->prev->next = agent->next;
    else
        relay->agents = agent->next;
    if (agent->next != NULL)
        agent->next->prev = agent->prev;
    relay->agent_count--;
    stop_enroll_deadline(agent);
    fail_pending_requests(agent);
    if (relay->sessions != NULL)
        tl_sessions_agent_closed(relay->sessions, agent);
    for (struct upload *up = agent->uploads; up != NULL; up = up->next) {
        if (up->channel_open) {
            up->channel_open = 0;
            submit_upload_step(up, UPLOAD_ABORT, NULL, 0);
        }
    }
    int replaced = 0;
    for (struct tl_agent_link *other = relay->agents; other != NULL; other = other->next)
        if (other->device_id == agent->device_id && other->counted_online && !other->closed)
            replaced = 1;
    if (agent->counted_online) {
        tl_log_info("agent disconnected device=D-%" PRId64 " reason=%s", agent->device_id,
                    reason ? tl_err_name(reason) : "closed");
        /* A newer connection of the same device keeps it online. */
        if (!replaced)
            submit_presence(agent, 0);
    } else {
        tl_log_peer_debug(agent->address, "connection closed address=%s reason=%s", agent->address,
                          tl_strerror(reason));
    }
    agent_unref(agent);
}

static const tl_peer_callbacks_t peer_callbacks = {
    .on_ready = on_peer_ready,
    .on_message = on_peer_message,
    .on_closed = on_peer_closed,
};

/* Any Ed25519 key may complete TLS: unknown ones may only enroll (§7.2). */
static int check_peer(void *data, const char *fingerprint)
{
    return 0;
}

/* A new agent connection (relay/net/listener.c logs accept failures, rate-limited). */
static void on_connection(void *ctx, int fd, const struct sockaddr *peer)
{
    struct relay *relay = ctx;
    struct tl_agent_link *agent = calloc(1, sizeof *agent);
    if (agent == NULL) {
        close(fd);
        tl_listener_dropped(relay->listener, TL_ENOMEM);
        return;
    }
    agent->relay = relay;
    agent->refs = 1;
    int err = 0;
    agent->peer = tl_peer_accept_fd(relay->loop, fd, relay->tls, &relay->peer_config,
                                    &peer_callbacks, &channel_callbacks, agent, &err);
    if (agent->peer == NULL) {
        tl_listener_dropped(relay->listener, err);
        free(agent);
        return;
    }
    tl_addr_format(peer, 0, agent->address);
    tl_peer_set_address(agent->peer, agent->address);
    agent->next = relay->agents;
    if (relay->agents != NULL)
        relay->agents->prev = agent;
    relay->agents = agent;
    relay->agent_count++;
    if (relay->stopping || relay->agent_count > relay->config.max_agents) {
        tl_log_peer_warn(agent->address, "too many connections, refusing address=%s",
                         agent->address);
        tl_peer_close(agent->peer, TL_EFULL, "relay is at its connection limit");
    }
}

/* ---- technicians ------------------------------------------------------------------ */

struct users_job {
    tl_job_t job;
    struct relay *relay;
    int64_t seen_version;
    json_t *list; /* NULL when nothing changed */
};

static int run_users_load(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct users_job *job = (struct users_job *)base;
    int64_t version = tl_store_change_counter(ctx->store);
    /* Our own connection's commits do not move data_version; users are only
     * ever changed by the admin commands, on their own connections. */
    if (version == job->seen_version && job->seen_version != -2)
        return 0;
    job->seen_version = version;
    return tl_store_users_list(ctx->store, &job->list);
}

static void users_load_done(tl_job_t *base, int status)
{
    struct users_job *job = (struct users_job *)base;
    struct relay *relay = job->relay;
    relay->users_loading = 0;
    if (status == 0 && job->list != NULL) {
        tl_users_load(relay->users, job->list);
        relay->users_version = job->seen_version;
        tl_log_debug("technicians loaded count=%zu", tl_users_count(relay->users));
    }
    json_decref(job->list);
    free(job);
}

static void reload_users(struct relay *relay)
{
    if (relay->users_loading || relay->stopping)
        return;
    struct users_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    job->job.run = run_users_load;
    job->job.done = users_load_done;
    job->relay = relay;
    job->seen_version = relay->users_version;
    relay->users_loading = 1;
    tl_worker_submit(relay->worker, &job->job);
}

static void on_users_timer(uv_timer_t *timer)
{
    reload_users(timer->data);
}

static int ssh_authorize(void *ctx, const char *user, ssh_key key, tl_technician_t *out)
{
    struct relay *relay = ctx;
    return tl_users_authorize(relay->users, user, key, out);
}

struct login_job {
    tl_job_t job;
    struct relay *relay;
    uint64_t login_id; /* a successful login whose commands wait for this job */
    char user[65], address[64], fingerprint[64], reason[32];
    int ok;
};

static int run_login_audit(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct login_job *job = (struct login_job *)base;
    char actor[96];
    snprintf(actor, sizeof actor, "tech:%s", job->user[0] ? job->user : "-");
    json_t *details = json_pack("{s:s, s:s, s:s}", "address", job->address, "key", job->fingerprint,
                                "reason", job->reason);
    int rc = tl_worker_audit(ctx, actor, job->ok ? "login.ok" : "login.failed", "", details);
    json_decref(details);
    return rc;
}

static void login_audit_done(tl_job_t *base, int status)
{
    struct login_job *job = (struct login_job *)base;
    if (status != 0)
        tl_log_error("login not audited reason=%s", tl_strerror(status));
    /* Fail closed: a login the audit log does not hold runs nothing. */
    if (job->login_id != 0 && job->relay->ssh != NULL)
        tl_ssh_front_login_recorded(job->relay->ssh, job->login_id, status);
    free(base);
}

/* ---- refused logins: one audit entry per address and minute (docs/audit-format.md §11) ---- */

struct login_summary_job {
    tl_job_t job;
    json_t *details;
};

static int run_login_summary(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct login_summary_job *job = (struct login_summary_job *)base;
    return tl_worker_audit(ctx, "relay", "login.failures", "", job->details);
}

static void login_summary_done(tl_job_t *base, int status)
{
    struct login_summary_job *job = (struct login_summary_job *)base;
    if (status != 0)
        tl_log_error("login failures not audited address=%s count=%" PRId64 " reason=%s",
                     json_string_value(json_object_get(job->details, "address")),
                     (int64_t)json_integer_value(json_object_get(job->details, "count")),
                     tl_strerror(status));
    json_decref(job->details);
    free(job);
}

static void emit_login_summary(void *ctx, const tl_login_summary_t *summary)
{
    struct relay *relay = ctx;
    char minute[32];
    time_t seconds = (time_t)(summary->minute_ms / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    strftime(minute, sizeof minute, "%Y-%m-%dT%H:%M:%SZ", &utc);
    json_t *kinds = json_object();
    for (size_t i = 0; kinds != NULL && tl_login_tally_kind_name(i) != NULL; i++)
        if (summary->kinds[i] > 0)
            json_object_set_new(kinds, tl_login_tally_kind_name(i),
                                json_integer((json_int_t)summary->kinds[i]));
    json_t *details = json_pack("{s:s, s:s, s:I, s:o*}", "address", summary->address, "minute",
                                minute, "count", (json_int_t)summary->count, "kinds", kinds);
    if (details != NULL && strcmp(summary->address, TL_LOGIN_TALLY_OTHER) == 0)
        json_object_set_new(details, "addresses", json_integer(summary->addresses));
    struct login_summary_job *job = details != NULL ? calloc(1, sizeof *job) : NULL;
    if (job == NULL) {
        /* Not silently: the operator learns what the audit log lacks. */
        tl_log_error("login failures not audited address=%s count=%" PRIu64 " reason=%s",
                     summary->address, summary->count, tl_strerror(TL_ENOMEM));
        json_decref(details);
        return;
    }
    job->job.run = run_login_summary;
    job->job.done = login_summary_done;
    job->details = details;
    tl_worker_submit(relay->worker, &job->job);
}

/* Fires just after each minute ends, by the wall clock. */
static void on_login_tally_timer(uv_timer_t *timer)
{
    struct relay *relay = timer->data;
    int64_t now = tl_wall_ms();
    tl_login_tally_flush(relay->login_tally, now);
    uv_timer_start(timer, on_login_tally_timer,
                   (uint64_t)(TL_LOGIN_TALLY_MINUTE_MS - now % TL_LOGIN_TALLY_MINUTE_MS + 50), 0);
}

static void ssh_on_login(void *ctx, const char *user, const char *address, const char *fingerprint,
                         int ok, const char *reason)
{
    struct relay *relay = ctx;
    /* A refusal is counted for its address's minute; a new key gets its own entry as well. */
    if (!ok && !tl_login_tally_add(relay->login_tally, tl_wall_ms(), address, reason, fingerprint))
        return;
    struct login_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    job->job.run = run_login_audit;
    job->job.done = login_audit_done;
    /* Names from the network are bounded and made printable before they are kept. */
    snprintf(job->user, sizeof job->user, "%s", user ? user : "");
    for (char *p = job->user; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    snprintf(job->address, sizeof job->address, "%s", address ? address : "");
    snprintf(job->fingerprint, sizeof job->fingerprint, "%s", fingerprint ? fingerprint : "");
    snprintf(job->reason, sizeof job->reason, "%s", reason ? reason : "");
    job->ok = ok;
    job->relay = relay;
    tl_worker_submit(relay->worker, &job->job);
}

static void ssh_on_login_ok(void *ctx, uint64_t login_id, const tl_technician_t *technician)
{
    struct relay *relay = ctx;
    struct login_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        tl_ssh_front_login_recorded(relay->ssh, login_id, TL_ENOMEM);
        return;
    }
    job->job.run = run_login_audit;
    job->job.done = login_audit_done;
    job->relay = relay;
    job->login_id = login_id;
    job->ok = 1;
    snprintf(job->user, sizeof job->user, "%s", technician->name);
    snprintf(job->address, sizeof job->address, "%s", technician->address);
    snprintf(job->fingerprint, sizeof job->fingerprint, "%s", technician->key_fingerprint);
    snprintf(job->reason, sizeof job->reason, "publickey");
    tl_worker_submit(relay->worker, &job->job);
}

/* The device's live connection: the newest one, as on_peer_ready closes older ones. */
static tl_agent_link_t *find_agent(void *ctx, int64_t device_id)
{
    struct relay *relay = ctx;
    for (struct tl_agent_link *agent = relay->agents; agent != NULL; agent = agent->next)
        if (agent->device_id == device_id && agent->counted_online && !agent->closed)
            return agent;
    return NULL;
}

static void relay_dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv)
{
    struct relay *relay = ctx;
    tl_commands_dispatch(&relay->commands, exec, argc, argv);
}

static int start_technicians(struct relay *relay)
{
    char key_path[4096];
    int rc = tl_datadir_path(relay->config.data_dir, TL_DATADIR_KEY, key_path, sizeof key_path);
    if (rc != 0)
        return rc;
    relay->users = tl_users_new();
    if (relay->users == NULL)
        return TL_ENOMEM;
    relay->users_version = -2; /* load on the first pass whatever the counter says */
    relay->sessions =
        tl_sessions_new(relay->loop, relay->worker, relay->config.data_dir, find_agent, relay, &rc);
    if (relay->sessions == NULL) {
        fprintf(stderr, "tierline-relay: cannot prepare sessions: %s\n", tl_strerror(rc));
        return rc;
    }
    relay->commands.worker = relay->worker;
    relay->commands.sessions = relay->sessions;
    uv_timer_init(relay->loop, &relay->users_timer);
    relay->users_timer.data = relay;
    reload_users(relay);
    uv_timer_start(&relay->users_timer, on_users_timer, TL_USERS_RELOAD_MS, TL_USERS_RELOAD_MS);
    relay->login_tally = tl_login_tally_new(emit_login_summary, relay);
    if (relay->login_tally == NULL)
        return TL_ENOMEM;
    uv_timer_init(relay->loop, &relay->login_tally_timer);
    relay->login_tally_timer.data = relay;
    /* It does not keep the loop running; closed after the loop (tl_relay_serve). */
    uv_unref((uv_handle_t *)&relay->login_tally_timer);
    on_login_tally_timer(&relay->login_tally_timer);
    tl_ssh_front_config_t config = {
        .listen = relay->config.ssh_listen,
        .host_key_path = key_path,
        .dispatch = relay_dispatch,
        .authorize = ssh_authorize,
        .on_login = ssh_on_login,
        .on_login_ok = ssh_on_login_ok,
        .ctx = relay,
        .max_sessions = relay->config.ssh_max_connections,
        .max_preauth_per_address = relay->config.ssh_preauth_per_address,
        .auth_timeout_ms = relay->config.ssh_auth_timeout_ms,
    };
    relay->ssh = tl_ssh_front_start(relay->loop, &config, &rc);
    if (relay->ssh == NULL) {
        uv_close((uv_handle_t *)&relay->users_timer, NULL);
        relay->users_loading = 1; /* no more reloads */
        fprintf(stderr, "tierline-relay: cannot start the SSH front end on %s: %s\n",
                relay->config.ssh_listen, tl_strerror(rc));
        return rc;
    }
    tl_log_info("technicians' SSH listening addr=%s", relay->config.ssh_listen);
    return 0;
}

/* ---- start and stop ------------------------------------------------------------- */

static void on_signal(uv_signal_t *handle, int signum)
{
    struct relay *relay = handle->data;
    if (relay->stopping)
        return;
    relay->stopping = 1;
    tl_log_info("shutting down signal=%d agents=%u", signum, relay->agent_count);
    tl_listener_stop(relay->listener);
    relay->listener = NULL;
    uv_close((uv_handle_t *)&relay->sigterm, NULL);
    uv_close((uv_handle_t *)&relay->sigint, NULL);
    for (struct tl_agent_link *agent = relay->agents; agent != NULL; agent = agent->next)
        tl_peer_close(agent->peer, 0, "relay shutting down");
    if (relay->ssh != NULL) {
        tl_ssh_front_stop(relay->ssh);
        relay->ssh = NULL;
    }
    if (relay->users != NULL)
        uv_close((uv_handle_t *)&relay->users_timer, NULL);
}

static int open_storage(struct relay *relay)
{
    char path[4096];
    const char *dir = relay->config.data_dir;
    tl_evidence_options_t evidence_options = {.max_item_bytes = relay->config.max_upload_bytes};
    int rc;
    if ((rc = tl_datadir_path(dir, TL_DATADIR_DB, path, sizeof path)) != 0 ||
        (rc = tl_store_open(path, TL_STORE_OPEN_EXISTING, &relay->store)) != 0)
        return rc;
    /* The log must hold the chain the store records: a missing, shortened or different log
     * stops the relay here (docs/audit-format.md §7); lines a crash left unwritten go in now. */
    char problem[768];
    if ((rc = tl_datadir_path(dir, TL_DATADIR_AUDIT, path, sizeof path)) != 0)
        return rc;
    if ((rc = tl_audit_chain_open(relay->store, path, 0, &relay->chain, problem, sizeof problem)) !=
        0) {
        fprintf(stderr, "tierline-relay: refusing to serve: %s\n", problem);
        tl_log_error("refusing to serve: the audit log does not match the database problem=\"%s\"",
                     problem);
        return rc;
    }
    if ((rc = tl_datadir_path(dir, TL_DATADIR_EVIDENCE, path, sizeof path)) != 0 ||
        (rc = tl_evidence_store_open(path, &evidence_options, &relay->evidence)) != 0)
        return rc;
    if ((rc = tl_store_devices_all_offline(relay->store)) != 0)
        return rc;
    json_t *devices = NULL;
    if ((rc = tl_store_devices_list(relay->store, &devices)) != 0)
        return rc;
    size_t i;
    json_t *device;
    json_array_foreach(devices, i, device)
    {
        int64_t id = 0;
        tl_store_parse_id(json_string_value(json_object_get(device, "id")), 'D', &id);
        tl_registry_add(relay->registry, json_string_value(json_object_get(device, "fingerprint")),
                        id);
    }
    json_decref(devices);
    return 0;
}

static int open_tls(struct relay *relay)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc;
    if ((rc = tl_datadir_path(relay->config.data_dir, TL_DATADIR_KEY, path, sizeof path)) != 0 ||
        (rc = tl_key_load(path, &key)) != 0)
        goto out;
    if ((rc = tl_datadir_path(relay->config.data_dir, TL_DATADIR_CERT, path, sizeof path)) != 0 ||
        (rc = tl_cert_load(path, &cert)) != 0)
        goto out;
    tl_tls_config_t tls = {
        .role = TL_TLS_SERVER,
        .key = key,
        .cert = cert,
        .check_peer = check_peer,
        .handshake_timeout_ms = relay->config.handshake_timeout_ms,
    };
    relay->tls = tl_tls_ctx_new(&tls, &rc);
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return relay->tls != NULL ? 0 : rc;
}

static int start_listener(struct relay *relay, const char *listen)
{
    struct sockaddr_storage address;
    int rc = tl_addr_parse(listen, &address);
    if (rc != 0) {
        fprintf(stderr, "tierline-relay: bad listen address '%s' (want ADDR:PORT)\n", listen);
        return rc;
    }
    tl_listener_config_t config = {.address = listen,
                                   .name = "agents",
                                   .backlog = 1024,
                                   .on_accept = on_connection,
                                   .ctx = relay};
    relay->listener = tl_listener_start(relay->loop, &config, &rc);
    if (relay->listener == NULL) {
        fprintf(stderr, "tierline-relay: cannot listen on %s: %s\n", listen, tl_strerror(rc));
        return rc;
    }
    return 0;
}

int tl_relay_serve(const tl_relay_config_t *config)
{
    struct relay *relay = calloc(1, sizeof *relay);
    if (relay == NULL)
        return TL_ENOMEM;
    relay->config = *config;
    relay->lock_fd = -1;
    if (relay->config.heartbeat_ms == 0)
        relay->config.heartbeat_ms = TL_RELAY_DEFAULT_HEARTBEAT_MS;
    if (relay->config.handshake_timeout_ms == 0)
        relay->config.handshake_timeout_ms = TL_RELAY_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    if (relay->config.max_agents == 0)
        relay->config.max_agents = TL_RELAY_DEFAULT_MAX_AGENTS;
    if (relay->config.max_upload_bytes == 0)
        relay->config.max_upload_bytes = TL_RELAY_DEFAULT_MAX_UPLOAD;
    snprintf(relay->software, sizeof relay->software, "tierline-relay/%s", TL_VERSION_STRING);
    relay->mux_config = (tl_mux_config_t){TL_MUX_DEFAULT_MAX_CHANNELS, TL_MUX_DEFAULT_WINDOW,
                                          TL_MUX_DEFAULT_MAX_PACKET};
    relay->peer_config = (tl_peer_config_t){relay->software, relay->config.handshake_timeout_ms, 0,
                                            &relay->mux_config};

    char listen[128];
    int rc = 0;
    tl_log_limit_t *log_limit = NULL;
    relay->loop = uv_default_loop();
    /* From here on, unauthenticated peers' lines are bounded per address (relay/net/log_limit.h). */
    if ((log_limit = tl_log_limit_start(relay->loop, &rc)) == NULL)
        goto out;
    signal(SIGPIPE, SIG_IGN);
    relay->registry = tl_registry_new();
    if (relay->registry == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (config->listen != NULL)
        snprintf(listen, sizeof listen, "%s", config->listen);
    else if ((rc = tl_datadir_listen(config->data_dir, listen, sizeof listen)) != 0)
        goto out;
    if ((rc = tl_status_lock(config->data_dir, &relay->lock_fd)) != 0) {
        if (rc == TL_EEXIST)
            fprintf(stderr, "tierline-relay: another tierline-relay is serving %s\n",
                    config->data_dir);
        else
            fprintf(stderr, "tierline-relay: cannot lock the data directory %s: %s\n",
                    config->data_dir, tl_strerror(rc));
        goto out;
    }
    if ((rc = open_storage(relay)) != 0) {
        if (rc != TL_EAUDIT)
            fprintf(stderr, "tierline-relay: cannot open the data directory %s: %s\n",
                    config->data_dir, tl_strerror(rc));
        goto out;
    }
    if ((rc = open_tls(relay)) != 0) {
        fprintf(stderr, "tierline-relay: cannot load the relay key: %s\n", tl_strerror(rc));
        goto out;
    }
    char state_path[4096];
    if ((rc = tl_datadir_path(config->data_dir, TL_DATADIR_STATE, state_path, sizeof state_path)) !=
        0)
        goto out;
    relay->worker =
        tl_worker_new(relay->loop, relay->store, relay->chain, relay->evidence, state_path, &rc);
    if (relay->worker == NULL)
        goto out;
    if ((rc = start_listener(relay, listen)) != 0)
        goto out;
    if (config->ssh_listen != NULL && (rc = start_technicians(relay)) != 0)
        goto out;
    uv_signal_init(relay->loop, &relay->sigterm);
    uv_signal_init(relay->loop, &relay->sigint);
    relay->sigterm.data = relay->sigint.data = relay;
    uv_signal_start(&relay->sigterm, on_signal, SIGTERM);
    uv_signal_start(&relay->sigint, on_signal, SIGINT);

    char fingerprint[TL_FINGERPRINT_LEN] = "";
    tl_datadir_fingerprint(config->data_dir, fingerprint);
    tl_log_info("relay listening addr=%s fingerprint=%s devices=%zu version=%s", listen,
                fingerprint, tl_registry_count(relay->registry), TL_VERSION_STRING);
    uv_run(relay->loop, UV_RUN_DEFAULT);
    tl_log_limit_stop(log_limit); /* the summaries still due */
    log_limit = NULL;
    tl_log_info("relay stopped");
out:
    tl_log_limit_stop(log_limit);
    /* The last minute's refused logins (those of the shutdown too), before the worker ends. */
    if (relay->worker != NULL)
        tl_login_tally_flush(relay->login_tally, INT64_MAX);
    tl_worker_free(relay->worker); /* runs the last acknowledgements */
    tl_sessions_free(relay->sessions);
    if (relay->loop != NULL) {
        tl_listener_stop(relay->listener);
        if (relay->login_tally != NULL)
            uv_close((uv_handle_t *)&relay->login_tally_timer, NULL);
        uv_run(relay->loop, UV_RUN_DEFAULT);
    }
    tl_tls_ctx_free(relay->tls);
    tl_evidence_store_close(relay->evidence);
    tl_audit_chain_close(relay->chain);
    if (relay->lock_fd >= 0)
        close(relay->lock_fd);
    tl_store_close(relay->store);
    tl_registry_free(relay->registry);
    tl_users_free(relay->users);
    tl_login_tally_free(relay->login_tally);
    free(relay);
    return rc;
}
