/*
 * The relay's agent side, its connections (relay/net/agent_server.h): accept,
 * TLS handshake and HELLO (proto/peer.h), who a key is (the registry),
 * heartbeats, presence in the store, and routing what arrives: ENROLL to
 * agent_enroll.c, control requests to agent_requests.c, answers to
 * agent_link.c, channels to agent_uploads.c or, for the channels the layer
 * above opened, to its hooks. docs/protocol.md §7.
 */
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "relay/desk/user_tickets.h"
#include "relay/net/agent_server_int.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/datadir.h"
#include "tl_version.h"
#include "relay/store/metrics.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void tl__agent_actor(const struct tl_agent_link *agent, char out[96])
{
    if (agent->device_id > 0)
        snprintf(out, 96, "agent:D-%" PRId64, agent->device_id);
    else
        snprintf(out, 96, "agent:%s", agent->fingerprint);
}

void tl__agent_unref(struct tl_agent_link *agent)
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
    tl__agent_unref(agent);
}

void tl__agent_stop_enroll_deadline(struct tl_agent_link *agent)
{
    if (agent->enroll_deadline != NULL && !uv_is_closing((uv_handle_t *)agent->enroll_deadline))
        uv_close((uv_handle_t *)agent->enroll_deadline, deadline_closed);
}

/* ---- jobs ------------------------------------------------------------------- */

struct agent_job *tl__agent_job_new(struct tl_agent_link *agent,
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

void tl__agent_job_free(struct agent_job *job)
{
    json_decref(job->request);
    json_decref(job->reply);
    free(job->data);
    free((char *)job->device.hostname);
    free((char *)job->device.os);
    tl__agent_unref(job->agent);
    free(job);
}

/* Text member of at most max bytes, non-empty unless empty_ok. */
const char *tl__json_text(json_t *object, const char *key, size_t max, int empty_ok)
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

/* ---- device presence ------------------------------------------------------ */

static int run_presence(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    char subject[TL_ID_TEXT], actor[96];
    tl_id_format(subject, TL_ID_DEVICE, job->device_id);
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
    tl__agent_job_free(job);
}

static void submit_presence(struct tl_agent_link *agent, int online)
{
    struct agent_job *job = tl__agent_job_new(agent, run_presence, presence_done);
    if (job == NULL)
        return;
    job->device_id = agent->device_id;
    job->online = online;
    tl_worker_submit(agent->server->worker, &job->job);
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
    if (tl_channel_type_lookup_n((const char *)request->channel_type.ptr,
                                 request->channel_type.len) == TL_CHANNEL_UPLOAD)
        rc = tl__upload_open(agent, channel, request->params);
    if (rc != 0) {
        tl_mux_refuse(mux, channel, (uint32_t)-rc, tl_strerror(rc));
        return;
    }
    tl_mux_confirm(mux, channel);
}

/*
 * Channels the relay opened belong to the layer above (a session,
 * relay/sessions/), which marked them: their events go to its hooks.
 */
static void *session_of(tl_peer_t *peer, uint32_t channel)
{
    return tl_mux_get_data(tl_peer_mux(peer), channel);
}

static const tl_agent_hooks_t *hooks_of(tl_peer_t *peer)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    return &agent->server->config.hooks;
}

static void on_channel_confirm(void *ctx, uint32_t channel)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        hooks_of(ctx)->channel_confirm(session);
}

static void on_channel_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        hooks_of(ctx)->channel_refuse(session, reason, message);
}

static void on_channel_writable(void *ctx, uint32_t channel)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        hooks_of(ctx)->channel_writable(session);
}

static void on_channel_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                            size_t len)
{
    tl_peer_t *peer = ctx;
    void *session = session_of(peer, channel);
    if (session != NULL) {
        hooks_of(peer)->channel_data(session, stream, data, len);
        return;
    }
    tl__upload_data(tl_peer_get_data(peer), channel, stream, data, len);
}

static void on_channel_eof(void *ctx, uint32_t channel)
{
    tl_peer_t *peer = ctx;
    void *session = session_of(peer, channel);
    if (session != NULL) {
        hooks_of(peer)->channel_eof(session);
        return;
    }
    tl__upload_eof(tl_peer_get_data(peer), channel);
}

static void on_channel_input_ack(void *ctx, uint32_t channel, uint32_t bytes, int hidden)
{
    void *session = session_of(ctx, channel);
    if (session != NULL)
        hooks_of(ctx)->channel_input_ack(session, bytes, hidden);
}

static void on_channel_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    tl_peer_t *peer = ctx;
    void *session = session_of(peer, channel);
    if (session != NULL) {
        hooks_of(peer)->channel_close(session, close);
        return;
    }
    tl__upload_closed(tl_peer_get_data(peer), channel);
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
    tl__agent_stop_enroll_deadline(agent);
    if (!agent->closed && !agent->enrolling) {
        tl_log_peer_info(agent->address,
                         "unknown key did not enroll, closing fingerprint=%s address=%s",
                         agent->fingerprint, agent->address);
        tl_peer_close(agent->peer, TL_ENOT_ENROLLED, "unknown agent key: enroll first");
    }
}

/* Who the key is, the registry holding every enrolled device: welcome it, or ask it to enroll. */
static void identify(struct tl_agent_link *agent)
{
    tl_agent_server_t *server = agent->server;
    tl_peer_t *peer = agent->peer;
    agent->device_id = tl_registry_find(server->registry, agent->fingerprint);
    if (agent->device_id <= 0) {
        tl_log_peer_info(agent->address, "unknown key connected fingerprint=%s address=%s",
                         agent->fingerprint, agent->address);
        /* It may only enroll (docs/protocol.md §7.2): say so, and wait only so long. */
        json_t *notice =
            json_pack("{s:s}", "type", tl_control_type_name(TL_CONTROL_ENROLL_REQUIRED));
        tl_peer_send_control(peer, 0, notice);
        json_decref(notice);
        agent->enroll_deadline = malloc(sizeof *agent->enroll_deadline);
        if (agent->enroll_deadline != NULL) {
            uv_timer_init(server->loop, agent->enroll_deadline);
            agent->enroll_deadline->data = agent;
            agent->refs++;
            uv_timer_start(agent->enroll_deadline, enroll_deadline_passed,
                           server->config.handshake_timeout_ms, 0);
        }
        return;
    }
    tl_peer_set_authenticated(peer);
    /* A device has one live connection: a new one replaces a stale one. */
    struct tl_agent_link *other = tl_device_index_get(server->live, agent->device_id);
    if (other != NULL && other != agent && !other->closed) {
        tl_log_info("agent reconnected, closing old connection device=D-%" PRId64,
                    agent->device_id);
        tl_peer_close(other->peer, 0, "replaced by a newer connection");
    }
    int rc = tl_device_index_set(server->live, agent->device_id, agent);
    if (rc != 0) {
        tl_peer_close(peer, rc, tl_strerror(rc));
        return;
    }
    char device[TL_ID_TEXT];
    tl_id_format(device, TL_ID_DEVICE, agent->device_id);
    json_t *welcome =
        json_pack("{s:s, s:s, s:i}", "type", tl_control_type_name(TL_CONTROL_WELCOME), "device",
                  device, "heartbeat_ms", (json_int_t)server->config.heartbeat_ms);
    tl_peer_send_control(peer, 0, welcome);
    json_decref(welcome);
    /* The agent pings at that interval and the relay answers; it sends none of its own and
     * keeps no timer per connection: one sweep finds the silent (docs/protocol.md §7.1). */
    agent->counted_online = 1;
    tl_metrics_agent_online(1);
    submit_presence(agent, 1);
    tl_log_info("agent connected device=%s address=%s", device, agent->address);
}

/* Its handshake and HELLO are over (or it closed): room for one more at the listener. */
static void handshake_over(struct tl_agent_link *agent)
{
    tl_agent_server_t *server = agent->server;
    if (!agent->handshaking)
        return;
    agent->handshaking = 0;
    if (server->handshakes-- == TL_RELAY_MAX_HANDSHAKES)
        tl_listener_hold(server->listener, 0);
}

static void on_peer_ready(tl_peer_t *peer)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    tl_agent_server_t *server = agent->server;
    handshake_over(agent);
    const char *fingerprint = tl_peer_fingerprint(peer);
    snprintf(agent->fingerprint, sizeof agent->fingerprint, "%s", fingerprint ? fingerprint : "");
    /* Until the store's devices are in, only a key enrolled since start is known for sure: the
     * others wait (about a second at 100,000 devices) rather than be told to enroll. */
    if (!server->registry_loaded && tl_registry_find(server->registry, agent->fingerprint) <= 0) {
        agent->parked = 1;
        return;
    }
    identify(agent);
}

/* Control messages: notifications, answers to the relay's requests, the agent's own requests. */
static int handle_control(struct tl_agent_link *agent, const struct tl_msg_control *control)
{
    const char *type = tl__json_text(control->body, "type", 64, 0);
    if (control->request_id == 0) {
        /* Notifications from agents (docs/protocol.md §7.8); others are ignored. */
        if (tl_control_type_lookup(type) == TL_CONTROL_SESSION_ENDED ||
            tl_control_type_lookup(type) == TL_CONTROL_SESSION_COMMAND)
            agent->server->config.hooks.grant_ended(agent->server->config.hooks.ctx, agent,
                                                    control->body);
        return 0;
    }
    if (tl_control_type_lookup(type) == TL_CONTROL_RESULT) {
        tl__agent_link_answer(agent, control);
        return 0;
    }
    return tl__request_handle(agent, type, control);
}

static int on_peer_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    if (msg->type == TL_MSG_ENROLL) {
        agent->parked = 0; /* it came to enroll: the registry's answer is not waited for */
        return tl__enroll_handle(agent, &msg->u.enroll);
    }
    if (agent->device_id <= 0)
        return TL_ENOT_ENROLLED; /* an unknown key may only enroll */
    if (msg->type == TL_MSG_CONTROL)
        return handle_control(agent, &msg->u.control);
    return TL_EPROTO;
}

static void on_peer_closed(tl_peer_t *peer, int reason)
{
    struct tl_agent_link *agent = tl_peer_get_data(peer);
    tl_agent_server_t *server = agent->server;
    agent->closed = 1;
    handshake_over(agent);
    if (agent->prev != NULL)
        agent->prev->next = agent->next;
    else
        server->agents = agent->next;
    if (agent->next != NULL)
        agent->next->prev = agent->prev;
    server->agent_count--;
    tl__agent_stop_enroll_deadline(agent);
    tl__agent_link_fail_pending(agent);
    server->config.hooks.agent_closed(server->config.hooks.ctx, agent);
    tl__uploads_abort(agent);
    int replaced = 0;
    struct tl_agent_link *live = tl_device_index_get(server->live, agent->device_id);
    if (live == agent)
        tl_device_index_remove(server->live, agent->device_id);
    else if (live != NULL && live->counted_online && !live->closed)
        replaced = 1;
    if (agent->counted_online) {
        tl_metrics_agent_online(-1);
        tl_log_info("agent disconnected device=D-%" PRId64 " reason=%s", agent->device_id,
                    reason ? tl_err_name(reason) : "closed");
        /* A newer connection of the same device keeps it online. */
        if (!replaced)
            submit_presence(agent, 0);
    } else {
        tl_log_peer_debug(agent->address, "connection closed address=%s reason=%s", agent->address,
                          tl_strerror(reason));
    }
    tl__agent_unref(agent);
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
    tl_agent_server_t *server = ctx;
    struct tl_agent_link *agent = calloc(1, sizeof *agent);
    if (agent == NULL) {
        close(fd);
        tl_listener_dropped(server->listener, TL_ENOMEM);
        return;
    }
    agent->server = server;
    agent->refs = 1;
    int err = 0;
    agent->peer = tl_peer_accept_fd(server->loop, fd, server->tls, &server->peer_config,
                                    &peer_callbacks, &channel_callbacks, agent, &err);
    if (agent->peer == NULL) {
        tl_listener_dropped(server->listener, err);
        free(agent);
        return;
    }
    tl_addr_format(peer, 0, agent->address);
    tl_peer_set_address(agent->peer, agent->address);
    agent->next = server->agents;
    if (server->agents != NULL)
        server->agents->prev = agent;
    server->agents = agent;
    server->agent_count++;
    agent->handshaking = 1;
    if (++server->handshakes == TL_RELAY_MAX_HANDSHAKES)
        tl_listener_hold(server->listener, 1);
    if (server->stopping || server->agent_count > server->config.max_agents) {
        tl_log_peer_warn(agent->address, "too many connections, refusing address=%s",
                         agent->address);
        tl_peer_close(agent->peer, TL_EFULL, "relay is at its connection limit");
    }
}

static int open_tls(tl_agent_server_t *server)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc;
    if ((rc = tl_datadir_path(server->config.data_dir, TL_DATADIR_KEY, path, sizeof path)) != 0 ||
        (rc = tl_key_load(path, &key)) != 0)
        goto out;
    if ((rc = tl_datadir_path(server->config.data_dir, TL_DATADIR_CERT, path, sizeof path)) != 0 ||
        (rc = tl_cert_load(path, &cert)) != 0)
        goto out;
    tl_tls_config_t tls = {
        .role = TL_TLS_SERVER,
        .key = key,
        .cert = cert,
        .check_peer = check_peer,
        .handshake_timeout_ms = server->config.handshake_timeout_ms,
    };
    server->tls = tl_tls_ctx_new(&tls, &rc);
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    return server->tls != NULL ? 0 : rc;
}

/* ---- the registry, loaded off the loop ------------------------------------------ */

/* The registry is read by the storage worker while the relay already listens. */
struct registry_load {
    tl_job_t job;
    tl_agent_server_t *server;
    tl_registry_t *loaded;
    uint64_t started_ms;
};

#define REGISTRY_RETRY_MS 1000u

static void on_load_retry(uv_timer_t *timer);

/* Nobody is told to enroll meanwhile: waiting keys wait on (or time out and come back). */
static void retry_load(tl_agent_server_t *server, int rc)
{
    tl_log_error("enrolled devices not loaded, retrying reason=%s", tl_strerror(rc));
    if (!server->stopping && server->load_retry != NULL)
        uv_timer_start(server->load_retry, on_load_retry, REGISTRY_RETRY_MS, 0);
}

static int run_registry_load(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct registry_load *load = (struct registry_load *)base;
    tl_device_rows_t devices;
    int rc = tl_store_devices_read(ctx->store, &devices);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < devices.count; i++) {
        rc = tl_registry_add(load->loaded, devices.rows[i].fingerprint, devices.rows[i].id);
        if (rc == TL_EINVAL)
            rc = 0; /* a row no key can match: as if absent */
    }
    tl_device_rows_free(&devices);
    return rc;
}

static void registry_load_done(tl_job_t *base, int status)
{
    struct registry_load *load = (struct registry_load *)base;
    tl_agent_server_t *server = load->server;
    uint64_t took_ms = uv_now(server->loop) - load->started_ms;
    if (status == 0)
        status = tl_registry_adopt(server->registry, load->loaded);
    if (status != 0)
        tl_registry_free(load->loaded);
    free(load);
    if (status != 0) {
        retry_load(server, status);
        return;
    }
    server->registry_loaded = 1;
    tl_log_info("enrolled devices loaded devices=%zu ms=%llu", tl_registry_count(server->registry),
                (unsigned long long)took_ms);
    for (struct tl_agent_link *agent = server->agents; agent != NULL; agent = agent->next) {
        if (agent->parked && !agent->closed) {
            agent->parked = 0;
            identify(agent);
        }
    }
}

static void submit_registry_load(tl_agent_server_t *server)
{
    struct registry_load *load = calloc(1, sizeof *load);
    if (load != NULL && (load->loaded = tl_registry_new()) == NULL) {
        free(load);
        load = NULL;
    }
    if (load == NULL) {
        retry_load(server, TL_ENOMEM);
        return;
    }
    load->job.run = run_registry_load;
    load->job.done = registry_load_done;
    load->server = server;
    load->started_ms = uv_now(server->loop);
    tl_worker_submit(server->worker, &load->job);
}

static void on_load_retry(uv_timer_t *timer)
{
    tl_agent_server_t *server = timer->data;
    if (!server->stopping)
        submit_registry_load(server);
}

/* ---- dead agents ------------------------------------------------------------------ */

/*
 * One timer for every connection: each heartbeat interval, a welcomed agent from which nothing
 * came for TL_PEER_DEAD_INTERVALS intervals is closed, so a dead one goes within one interval
 * more than that. Agents ping every interval (any frame counts), and the relay only answers.
 */
static void on_sweep(uv_timer_t *timer)
{
    tl_agent_server_t *server = timer->data;
    uint64_t silent_ms = (uint64_t)server->config.heartbeat_ms * TL_PEER_DEAD_INTERVALS;
    for (struct tl_agent_link *agent = server->agents; agent != NULL; agent = agent->next)
        if (agent->counted_online && !agent->closed)
            tl_peer_close_if_silent(agent->peer, silent_ms);
}

static void handle_closed(uv_handle_t *handle)
{
    free(handle);
}

/* ---- start and stop ----------------------------------------------------------- */

tl_agent_server_t *tl_agent_server_new(uv_loop_t *loop, const tl_agent_server_config_t *config,
                                       int *err)
{
    const tl_agent_hooks_t *hooks = &config->hooks;
    tl_agent_server_t *server = NULL;
    int rc = TL_EINVAL;
    if (config->data_dir == NULL || config->registry == NULL || hooks->agent_closed == NULL ||
        hooks->grant_ended == NULL || hooks->channel_confirm == NULL ||
        hooks->channel_refuse == NULL || hooks->channel_data == NULL ||
        hooks->channel_writable == NULL || hooks->channel_eof == NULL ||
        hooks->channel_input_ack == NULL || hooks->channel_close == NULL)
        goto out;
    rc = TL_ENOMEM;
    server = calloc(1, sizeof *server);
    if (server == NULL)
        goto out;
    server->loop = loop;
    server->config = *config;
    server->registry = config->registry;
    snprintf(server->software, sizeof server->software, "tierline-relay/%s", TL_VERSION_STRING);
    server->mux_config = (tl_mux_config_t){TL_MUX_DEFAULT_MAX_CHANNELS, TL_MUX_DEFAULT_WINDOW,
                                           TL_MUX_DEFAULT_MAX_PACKET};
    server->peer_config = (tl_peer_config_t){server->software, server->config.handshake_timeout_ms,
                                             0, &server->mux_config, NULL};
    rc = TL_ENOMEM;
    if ((server->live = tl_device_index_new()) != NULL)
        rc = open_tls(server);
out:
    if (rc != 0) {
        if (server != NULL)
            tl_device_index_free(server->live);
        free(server);
        server = NULL;
    }
    if (err != NULL)
        *err = rc;
    return server;
}

int tl_agent_server_listen(tl_agent_server_t *server, tl_worker_t *worker, const char *listen)
{
    server->worker = worker;
    /* The desk's ticket updates go to the devices' connections (docs/protocol.md §7.12). */
    int rc = tl_worker_listen(worker, TL_USER_TICKETS_CHANNEL, tl__agent_ticket_update, server);
    /* ... and so do the audit log's new checkpoints, for the agents that witness it (§7.15). */
    if (rc == 0)
        rc = tl_worker_listen(worker, TL_AUDIT_CHECKPOINT_CHANNEL, tl__agent_checkpoint_news,
                              server);
    if (rc != 0)
        return rc;
    if ((server->sweep = malloc(sizeof *server->sweep)) == NULL)
        return TL_ENOMEM;
    uv_timer_init(server->loop, server->sweep);
    server->sweep->data = server;
    uv_timer_start(server->sweep, on_sweep, server->config.heartbeat_ms,
                   server->config.heartbeat_ms);
    /* Listening does not wait for the enrolled devices: the worker reads them meanwhile. */
    if ((server->load_retry = malloc(sizeof *server->load_retry)) == NULL)
        return TL_ENOMEM;
    uv_timer_init(server->loop, server->load_retry);
    server->load_retry->data = server;
    submit_registry_load(server);
    tl_listener_config_t config = {.address = listen,
                                   .name = "agents",
                                   /* Room to wait in while over the accept rate: a full
                                    * backlog drops SYNs, which clients retry only after 1, 3, 7
                                    * s. The kernel caps it at net.core.somaxconn. */
                                   .backlog = 4096,
                                   .rate = server->config.accept_rate,
                                   .on_accept = on_connection,
                                   .ctx = server};
    server->listener = tl_listener_start(server->loop, &config, &rc);
    return server->listener != NULL ? 0 : rc;
}

/* The device's live connection: the newest one, as on_peer_ready closes older ones. */
tl_agent_link_t *tl_agent_server_find(tl_agent_server_t *server, int64_t device_id)
{
    struct tl_agent_link *agent = tl_device_index_get(server->live, device_id);
    return agent != NULL && agent->counted_online && !agent->closed ? agent : NULL;
}

uint32_t tl_agent_server_count(const tl_agent_server_t *server)
{
    return server->agent_count;
}

void tl_agent_server_stop(tl_agent_server_t *server)
{
    if (server == NULL || server->stopping)
        return;
    server->stopping = 1;
    tl_listener_stop(server->listener);
    server->listener = NULL;
    if (server->load_retry != NULL)
        uv_close((uv_handle_t *)server->load_retry, handle_closed);
    server->load_retry = NULL;
    if (server->sweep != NULL)
        uv_close((uv_handle_t *)server->sweep, handle_closed);
    server->sweep = NULL;
    for (struct tl_agent_link *agent = server->agents; agent != NULL; agent = agent->next)
        tl_peer_close(agent->peer, 0, "relay shutting down");
}

void tl_agent_server_free(tl_agent_server_t *server)
{
    if (server == NULL)
        return;
    tl_tls_ctx_free(server->tls);
    tl_device_index_free(server->live);
    free(server);
}
