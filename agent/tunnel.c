#include "agent/tunnel.h"
#include "agent/outbox.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "tl_version.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TL_TUNNEL_MAX_EVIDENCE (64u * 1024 * 1024)
/* Channels the relay may have open at once: the mux's own limit. */
#define TL_TUNNEL_MAX_SESSIONS TL_MUX_DEFAULT_MAX_CHANNELS
/* session.ended notices kept while the relay is unreachable. */
#define TL_TUNNEL_MAX_ENDED 64

/* One outbox request being delivered on the current connection. */
struct delivery {
    char request[TL_OUTBOX_ID_LEN];
    json_t *body;       /* request.json */
    size_t evidence_at; /* index of the item being uploaded */
    uint8_t *content;   /* that item's bytes */
    size_t content_len;
    size_t sent;
    uint32_t channel;
    uint32_t request_id; /* of the ticket.create, once sent */
    unsigned uploading : 1;
    unsigned eof_sent : 1;
};

struct tl_tunnel {
    uv_loop_t *loop;
    tl_tunnel_options_t options;
    const tl_tunnel_events_t *events;
    void *data;
    tl_tls_ctx_t *tls;
    tl_peer_t *peer;
    uv_timer_t retry;
    uv_timer_t next; /* runs deliver_next from the loop, never recursively */
    uv_getaddrinfo_t resolver;
    struct delivery *delivery;
    json_t *skipped; /* requests that failed on this connection */
    char software[64];
    char device[32];
    unsigned attempt;
    uint32_t next_request_id;
    uint32_t generation; /* of the current connection: answers to older ones are dropped */
    int last_error;      /* why the relay could not be reached; 0 once welcomed */
    /* Channels the relay opened that the sessions module owns (agent/session.h). */
    uint32_t session_channels[TL_TUNNEL_MAX_SESSIONS];
    size_t session_count;
    json_t *ended_queue; /* session.ended bodies waiting for a connection */
    unsigned welcomed : 1;
    unsigned resolving : 1;
    unsigned stopping : 1;
    unsigned finished : 1;
    tl_peer_config_t peer_config;
};

uint64_t tl_tunnel_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned attempt, uint32_t random)
{
    uint64_t delay = min_ms;
    for (unsigned i = 0; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    /* Full jitter over the upper half: never 0, never in lockstep. */
    uint64_t half = delay / 2;
    uint64_t jittered = half + random % (delay - half + 1);
    return jittered > 0 ? jittered : 1;
}

static void connect_now(tl_tunnel_t *tunnel);
static void deliver_next(tl_tunnel_t *tunnel);

static void on_retry(uv_timer_t *timer)
{
    connect_now(timer->data);
}

static void delivery_free(struct delivery *delivery)
{
    if (delivery == NULL)
        return;
    json_decref(delivery->body);
    free(delivery->content);
    free(delivery);
}

static void handles_closed(uv_handle_t *handle)
{
    tl_tunnel_t *tunnel = handle->data;
    tl_tls_ctx_free(tunnel->tls);
    json_decref(tunnel->skipped);
    json_decref(tunnel->ended_queue);
    free(tunnel);
}

static void retry_closed(uv_handle_t *handle)
{
    tl_tunnel_t *tunnel = handle->data;
    uv_close((uv_handle_t *)&tunnel->next, handles_closed);
}

/* Frees the tunnel once nothing of it is in flight. */
static void maybe_release(tl_tunnel_t *tunnel)
{
    if (!tunnel->stopping || tunnel->peer != NULL || tunnel->resolving)
        return;
    if (!uv_is_closing((uv_handle_t *)&tunnel->retry))
        uv_close((uv_handle_t *)&tunnel->retry, retry_closed);
}

static void on_next(uv_timer_t *timer)
{
    deliver_next(timer->data);
}

/* The next request goes from a fresh loop turn, however many fail in a row. */
static void schedule_next(tl_tunnel_t *tunnel)
{
    if (!tunnel->stopping)
        uv_timer_start(&tunnel->next, on_next, 0, 0);
}

static void finish_once(tl_tunnel_t *tunnel, int status)
{
    if (!tunnel->options.once || tunnel->finished)
        return;
    tunnel->finished = 1;
    if (tunnel->events->on_stopped != NULL)
        tunnel->events->on_stopped(tunnel, status);
}

static void schedule_retry(tl_tunnel_t *tunnel)
{
    if (tunnel->stopping)
        return;
    uint32_t random = 0;
    RAND_bytes((unsigned char *)&random, sizeof random);
    uint64_t delay = tl_tunnel_backoff_ms(tunnel->options.backoff_min_ms,
                                          tunnel->options.backoff_max_ms, tunnel->attempt, random);
    tunnel->attempt++;
    tl_log_info("relay unreachable, retrying in_ms=%llu attempt=%u", (unsigned long long)delay,
                tunnel->attempt);
    uv_timer_start(&tunnel->retry, on_retry, delay, 0);
}

/* ---- delivery ---------------------------------------------------------------- */

static int is_skipped(tl_tunnel_t *tunnel, const char *request)
{
    size_t i;
    json_t *value;
    json_array_foreach(tunnel->skipped, i, value)
    {
        if (strcmp(json_string_value(value), request) == 0)
            return 1;
    }
    return 0;
}

/* This request cannot go now; try the others, and it again on the next connection. */
static void delivery_failed(tl_tunnel_t *tunnel, int error)
{
    struct delivery *delivery = tunnel->delivery;
    tl_log_warn("request not delivered request=%s reason=%s", delivery->request,
                tl_err_name(error));
    json_array_append_new(tunnel->skipped, json_string(delivery->request));
    tunnel->delivery = NULL;
    delivery_free(delivery);
    schedule_next(tunnel);
}

static void reject(tl_tunnel_t *tunnel, int error)
{
    struct delivery *delivery = tunnel->delivery;
    char from[TL_STATE_FILE_MAX], to[TL_STATE_FILE_MAX];
    snprintf(from, sizeof from, "%s/%s/%s", tunnel->options.state->dir, TL_STATE_OUTBOX,
             delivery->request);
    snprintf(to, sizeof to, "%s/%s/rejected-%s", tunnel->options.state->dir, TL_STATE_OUTBOX,
             delivery->request);
    if (rename(from, to) != 0)
        tl_log_error("cannot set aside request=%s reason=%s", delivery->request, strerror(errno));
    tl_log_error("request set aside request=%s reason=%s kept=%s", delivery->request,
                 tl_err_name(error), to);
    /* Even if the rename failed it is not picked again on this connection. */
    json_array_append_new(tunnel->skipped, json_string(delivery->request));
    if (tunnel->events->on_rejected != NULL)
        tunnel->events->on_rejected(tunnel, delivery->request, error);
    tunnel->delivery = NULL;
    delivery_free(delivery);
    schedule_next(tunnel);
}

static int load_evidence(tl_tunnel_t *tunnel, struct delivery *delivery, json_t *item)
{
    const char *name = json_string_value(json_object_get(item, "path"));
    const char *hash = json_string_value(json_object_get(item, "sha256"));
    if (name == NULL || strchr(name, '/') != NULL || name[0] == '.' || !tl_sha256_hex_valid(hash))
        return TL_EINVAL;
    char path[TL_STATE_FILE_MAX];
    snprintf(path, sizeof path, "%s/%s/%s/%s", tunnel->options.state->dir, TL_STATE_OUTBOX,
             delivery->request, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && (st.st_size < 0 || (uint64_t)st.st_size > TL_TUNNEL_MAX_EVIDENCE))
        rc = TL_EFULL;
    if (rc == 0) {
        delivery->content_len = (size_t)st.st_size;
        delivery->content = malloc(delivery->content_len ? delivery->content_len : 1);
        if (delivery->content == NULL)
            rc = TL_ENOMEM;
    }
    size_t got = 0;
    while (rc == 0 && got < delivery->content_len) {
        ssize_t n = read(fd, delivery->content + got, delivery->content_len - got);
        if (n <= 0)
            rc = n == 0 ? TL_ETRUNCATED : -errno;
        else
            got += (size_t)n;
    }
    close(fd);
    char actual[TL_SHA256_HEX_LEN];
    if (rc == 0 && (rc = tl_sha256_hex(delivery->content, delivery->content_len, actual)) == 0 &&
        strcmp(actual, hash) != 0)
        rc = TL_EINVAL; /* the queued file changed: never send something else */
    return rc;
}

static void send_ticket_request(tl_tunnel_t *tunnel)
{
    struct delivery *delivery = tunnel->delivery;
    json_t *body = json_deep_copy(delivery->body);
    json_t *evidence = json_object_get(body, "evidence");
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item)
    {
        json_object_del(item, "path"); /* local detail */
    }
    json_object_set_new(body, "type", json_string("ticket.create"));
    json_object_del(body, "created");
    delivery->request_id = ++tunnel->next_request_id;
    int rc = tl_peer_send_control(tunnel->peer, delivery->request_id, body);
    json_decref(body);
    if (rc != 0)
        delivery_failed(tunnel, rc);
}

static void upload_pump(tl_tunnel_t *tunnel)
{
    struct delivery *delivery = tunnel->delivery;
    tl_mux_t *mux = tl_peer_mux(tunnel->peer);
    while (delivery->sent < delivery->content_len) {
        size_t written = 0;
        int rc =
            tl_mux_write(mux, delivery->channel, TL_STREAM_MAIN, delivery->content + delivery->sent,
                         delivery->content_len - delivery->sent, &written);
        if (rc != 0) {
            delivery_failed(tunnel, rc);
            return;
        }
        if (written == 0)
            return; /* window shut: on_writable resumes */
        delivery->sent += written;
    }
    if (!delivery->eof_sent) {
        delivery->eof_sent = 1;
        tl_mux_eof(mux, delivery->channel);
    }
}

/* Starts the next evidence upload of the current delivery, or the ticket request. */
static void delivery_step(tl_tunnel_t *tunnel)
{
    struct delivery *delivery = tunnel->delivery;
    json_t *evidence = json_object_get(delivery->body, "evidence");
    free(delivery->content);
    delivery->content = NULL;
    delivery->sent = 0;
    delivery->eof_sent = 0;
    if (delivery->evidence_at >= json_array_size(evidence)) {
        send_ticket_request(tunnel);
        return;
    }
    json_t *item = json_array_get(evidence, delivery->evidence_at);
    int rc = load_evidence(tunnel, delivery, item);
    if (rc == TL_EINVAL) {
        /* The queued request is damaged (bad entry, or its file changed): never send it. */
        tl_log_error("queued evidence damaged request=%s", delivery->request);
        reject(tunnel, rc);
        return;
    }
    if (rc != 0) {
        /* Out of memory, descriptors, a read error: try again later. */
        delivery_failed(tunnel, rc);
        return;
    }
    json_t *params =
        json_pack("{s:O, s:O, s:O, s:O}", "sha256", json_object_get(item, "sha256"), "size",
                  json_object_get(item, "size"), "kind", json_object_get(item, "kind"), "name",
                  json_object_get(item, "name"));
    rc = tl_mux_open(tl_peer_mux(tunnel->peer), "upload", params, &delivery->channel);
    json_decref(params);
    if (rc != 0) {
        delivery_failed(tunnel, rc);
        return;
    }
    delivery->uploading = 1;
}

static void deliver_next(tl_tunnel_t *tunnel)
{
    if (tunnel->delivery != NULL || tunnel->peer == NULL || !tunnel->welcomed)
        return;
    json_t *ids = NULL;
    if (tl_outbox_list(tunnel->options.state->dir, &ids) != 0) {
        json_decref(ids);
        return;
    }
    const char *next = NULL;
    size_t i;
    json_t *value;
    json_array_foreach(ids, i, value)
    {
        const char *id = json_string_value(value);
        if (is_skipped(tunnel, id))
            continue;
        if (tunnel->options.only_request != NULL && strcmp(id, tunnel->options.only_request) != 0)
            continue;
        next = id;
        break;
    }
    if (next == NULL) {
        json_decref(ids);
        if (tunnel->options.once) {
            int status = json_array_size(tunnel->skipped) > 0 ? TL_EIO : 0;
            finish_once(tunnel, status);
        }
        return;
    }
    struct delivery *delivery = calloc(1, sizeof *delivery);
    if (delivery == NULL) {
        json_decref(ids);
        return;
    }
    snprintf(delivery->request, sizeof delivery->request, "%s", next);
    json_decref(ids);
    int rc = tl_outbox_load(tunnel->options.state->dir, delivery->request, &delivery->body);
    tunnel->delivery = delivery;
    if (rc != 0) {
        reject(tunnel, rc);
        return;
    }
    tl_log_info("delivering request=%s", delivery->request);
    delivery_step(tunnel);
}

/* ---- channel events ------------------------------------------------------------ */

static struct delivery *channel_delivery(tl_tunnel_t *tunnel, uint32_t channel)
{
    struct delivery *delivery = tunnel->delivery;
    return delivery != NULL && delivery->uploading && delivery->channel == channel ? delivery
                                                                                   : NULL;
}

static int is_session(const tl_tunnel_t *tunnel, uint32_t channel)
{
    for (size_t i = 0; i < tunnel->session_count; i++)
        if (tunnel->session_channels[i] == channel)
            return 1;
    return 0;
}

static void forget_session(tl_tunnel_t *tunnel, uint32_t channel)
{
    for (size_t i = 0; i < tunnel->session_count; i++) {
        if (tunnel->session_channels[i] == channel) {
            tunnel->session_channels[i] = tunnel->session_channels[--tunnel->session_count];
            return;
        }
    }
}

static void on_channel_confirm(void *ctx, uint32_t channel)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (channel_delivery(tunnel, channel) != NULL)
        upload_pump(tunnel);
}

static void on_channel_writable(void *ctx, uint32_t channel)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (channel_delivery(tunnel, channel) != NULL)
        upload_pump(tunnel);
    else if (is_session(tunnel, channel))
        tl_sessions_writable(tunnel->options.sessions, channel);
}

static void on_channel_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    struct delivery *delivery = channel_delivery(tunnel, channel);
    if (delivery == NULL)
        return;
    delivery->uploading = 0;
    int error = reason > 0 && reason < 30100 ? -(int)reason : TL_EPROTO;
    if (error == TL_EINVAL || error == TL_EFULL)
        reject(tunnel, error);
    else
        delivery_failed(tunnel, error);
}

static void on_channel_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (is_session(tunnel, channel)) {
        forget_session(tunnel, channel);
        tl_sessions_closed(tunnel->options.sessions, channel);
        return;
    }
    struct delivery *delivery = channel_delivery(tunnel, channel);
    if (delivery == NULL)
        return;
    delivery->uploading = 0;
    int ok = (close->flags & TL_CLOSE_HAS_EXIT_STATUS) && close->exit_status == 0 &&
             delivery->sent == delivery->content_len;
    if (!ok) {
        int error = (close->flags & TL_CLOSE_HAS_EXIT_STATUS) && close->exit_status > 0
                        ? -close->exit_status
                        : TL_ECLOSED;
        delivery_failed(tunnel, error);
        return;
    }
    delivery->evidence_at++;
    delivery_step(tunnel);
}

/* A refusal's reason on the wire: our code, or EIO for anything else. */
static uint32_t wire_code(int rc)
{
    return rc <= TL_ERR_FIRST && rc >= TL_ERR_LAST ? (uint32_t)-rc : (uint32_t)-TL_EIO;
}

/*
 * The relay opens a session channel (docs/protocol.md §7.7). The grant is
 * checked here, for every channel, whatever the relay claims: a relay that
 * is wrong or compromised gets no more than the user allowed.
 */
static void on_channel_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    tl_mux_t *mux = tl_peer_mux(ctx);
    char type[TL_MSG_MAX_NAME + 1], message[TL_MSG_MAX_TEXT + 1];
    snprintf(type, sizeof type, "%.*s", (int)request->channel_type.len,
             (const char *)request->channel_type.ptr);
    if (tunnel->options.consent == NULL || tunnel->options.sessions == NULL) {
        tl_mux_refuse(mux, channel, (uint32_t)-TL_EDENIED,
                      "this agent takes no sessions now (it is not running)");
        return;
    }
    const char *grant_id = json_string_value(json_object_get(request->params, "grant"));
    const char *technician = json_string_value(json_object_get(request->params, "technician"));
    const tl_grant_t *checked = NULL;
    int rc = tl_consent_check(tunnel->options.consent, grant_id, technician, type, &checked,
                              message, sizeof message);
    if (rc == 0 && tunnel->session_count >= TL_TUNNEL_MAX_SESSIONS) {
        rc = TL_ECHANNEL_LIMIT;
        snprintf(message, sizeof message, "too many session channels open");
    }
    if (rc != 0) {
        tl_log_warn("channel refused type=%s grant=%.64s technician=%.64s reason=%s detail=\"%s\"",
                    type, grant_id ? grant_id : "-", technician ? technician : "-", tl_err_name(rc),
                    message);
        tl_mux_refuse(mux, channel, wire_code(rc), message);
        return;
    }
    tl_grant_t grant = *checked; /* the sessions module may outlive this record's slot */
    tl_session_grant_t session_grant = {grant.id, grant.ticket, grant.technician, grant.role};
    message[0] = '\0';
    rc = tl_sessions_open(tunnel->options.sessions, mux, channel, type, request->params,
                          &session_grant, message, sizeof message);
    if (rc != 0) {
        tl_log_warn("session not started type=%s grant=%s reason=%s detail=\"%s\"", type,
                    session_grant.id, tl_err_name(rc), message);
        tl_mux_refuse(mux, channel, wire_code(rc), message[0] ? message : tl_strerror(rc));
        return;
    }
    tunnel->session_channels[tunnel->session_count++] = channel;
    tl_log_info("session opened channel=%u type=%s grant=%s technician=%s", channel, type,
                session_grant.id, session_grant.technician);
}

static void on_channel_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                            size_t len)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (is_session(tunnel, channel)) {
        tl_sessions_data(tunnel->options.sessions, channel, stream, data, len);
        return;
    }
    /* Upload channels carry nothing back; account for it anyway. */
    tl_mux_consumed(tl_peer_mux(ctx), channel, len);
}

static void on_channel_eof(void *ctx, uint32_t channel)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (is_session(tunnel, channel))
        tl_sessions_eof(tunnel->options.sessions, channel);
}

static const tl_mux_callbacks_t channel_callbacks = {
    .on_open = on_channel_open,
    .on_confirm = on_channel_confirm,
    .on_refuse = on_channel_refuse,
    .on_data = on_channel_data,
    .on_writable = on_channel_writable,
    .on_eof = on_channel_eof,
    .on_close = on_channel_close,
};

/* ---- connection --------------------------------------------------------------------- */

static void handle_result(tl_tunnel_t *tunnel, uint32_t request_id, json_t *body)
{
    struct delivery *delivery = tunnel->delivery;
    if (delivery == NULL || delivery->request_id != request_id)
        return;
    if (json_is_true(json_object_get(body, "ok"))) {
        const char *ticket = json_string_value(json_object_get(body, "ticket"));
        char request[TL_OUTBOX_ID_LEN];
        snprintf(request, sizeof request, "%s", delivery->request);
        int rc = tl_outbox_remove(tunnel->options.state->dir, request);
        if (rc != 0) {
            tl_log_warn("delivered request not removed request=%s reason=%s", request,
                        tl_strerror(rc));
            json_array_append_new(tunnel->skipped, json_string(request));
        }
        tl_log_info("request delivered request=%s ticket=%s", request, ticket ? ticket : "?");
        tunnel->delivery = NULL;
        delivery_free(delivery);
        if (tunnel->events->on_delivered != NULL)
            tunnel->events->on_delivered(tunnel, request, ticket ? ticket : "");
        schedule_next(tunnel);
        return;
    }
    const char *error = json_string_value(json_object_get(body, "error"));
    if (error != NULL && strcmp(error, "EINVAL") == 0)
        reject(tunnel, TL_EINVAL);
    else
        delivery_failed(tunnel, TL_EIO);
}

static uint64_t token_of(const tl_tunnel_t *tunnel, uint32_t request_id)
{
    return (uint64_t)tunnel->generation << 32 | request_id;
}

static void send_error(tl_tunnel_t *tunnel, uint32_t request_id, int error, const char *message)
{
    json_t *body = json_pack("{s:s, s:b, s:s, s:s}", "type", "result", "ok", 0, "error",
                             tl_err_name(error), "message", message);
    if (body != NULL && tunnel->peer != NULL)
        tl_peer_send_control(tunnel->peer, request_id, body);
    json_decref(body);
}

static void send_queued_ended(tl_tunnel_t *tunnel)
{
    size_t i;
    json_t *body;
    json_array_foreach(tunnel->ended_queue, i, body)
    {
        tl_peer_send_control(tunnel->peer, 0, body);
    }
    json_array_clear(tunnel->ended_queue);
}

/* A request from the relay (docs/protocol.md §7.6, §7.9). */
static void handle_request(tl_tunnel_t *tunnel, uint32_t request_id, const char *type, json_t *body)
{
    char message[TL_MSG_MAX_TEXT + 1];
    if (type != NULL && strcmp(type, "session.request") == 0) {
        if (tunnel->options.consent == NULL) {
            send_error(tunnel, request_id, TL_EDENIED,
                       "this agent takes no sessions now (it is not running)");
            return;
        }
        tl_consent_request_t request;
        int rc = tl_consent_request_parse(body, &request, message, sizeof message);
        if (rc != 0) {
            tl_log_warn("session.request rejected request_id=%u reason=%s detail=\"%s\"",
                        request_id, tl_err_name(rc), message);
            send_error(tunnel, request_id, rc, message);
            return;
        }
        tl_consent_request(tunnel->options.consent, &request, token_of(tunnel, request_id));
        return;
    }
    if (type != NULL && strcmp(type, "runbooks.list") == 0) {
        json_t *runbooks = tunnel->options.sessions != NULL
                               ? tl_sessions_runbooks(tunnel->options.sessions)
                               : json_array();
        json_t *answer =
            json_pack("{s:s, s:b, s:o}", "type", "result", "ok", 1, "runbooks", runbooks);
        if (answer != NULL)
            tl_peer_send_control(tunnel->peer, request_id, answer);
        json_decref(answer);
        return;
    }
    snprintf(message, sizeof message, "unknown request type '%.64s'", type ? type : "");
    send_error(tunnel, request_id, TL_EINVAL, message);
}

static int int_member(json_t *body, const char *key, json_int_t min, json_int_t max,
                      json_int_t *out)
{
    json_t *value = json_object_get(body, key);
    if (!json_is_integer(value) || json_integer_value(value) < min ||
        json_integer_value(value) > max)
        return TL_EINVAL;
    *out = json_integer_value(value);
    return 0;
}

/* A notification from the relay; ones that do not apply are ignored. */
static void handle_notification(tl_tunnel_t *tunnel, const char *type, json_t *body)
{
    json_int_t id, cols, rows;
    if (strcmp(type, "session.cancel") == 0) {
        if (tunnel->options.consent == NULL ||
            int_member(body, "request_id", 1, UINT32_MAX, &id) != 0)
            return;
        tl_consent_cancel(tunnel->options.consent, token_of(tunnel, (uint32_t)id),
                          "withdrawn by the relay");
        return;
    }
    if (strcmp(type, "session.resize") == 0) {
        if (int_member(body, "channel", 0, UINT32_MAX, &id) != 0 ||
            int_member(body, "cols", 1, 1000, &cols) != 0 ||
            int_member(body, "rows", 1, 1000, &rows) != 0 || !is_session(tunnel, (uint32_t)id)) {
            tl_log_debug("session.resize ignored");
            return;
        }
        tl_sessions_resize(tunnel->options.sessions, (uint32_t)id, (unsigned)cols, (unsigned)rows);
        return;
    }
    tl_log_debug("notification ignored type=%.64s", type);
}

void tl_tunnel_consent_answer(tl_tunnel_t *tunnel, uint64_t token,
                              const tl_consent_answer_t *answer)
{
    uint32_t request_id = (uint32_t)token;
    if (tunnel->peer == NULL || !tunnel->welcomed ||
        (uint32_t)(token >> 32) != tunnel->generation) {
        tl_log_info("session answer dropped: its connection is gone request_id=%u", request_id);
        return;
    }
    if (answer->error != 0) {
        send_error(tunnel, request_id, answer->error,
                   answer->message ? answer->message : tl_strerror(answer->error));
        return;
    }
    json_t *body = json_pack("{s:s, s:b, s:s, s:o, s:I, s:s}", "type", "result", "ok", 1, "grant",
                             answer->grant->id, "scopes", tl_scope_names(answer->grant->scopes),
                             "expires_ms", (json_int_t)answer->grant->expires_ms, "by", answer->by);
    if (body != NULL)
        tl_peer_send_control(tunnel->peer, request_id, body);
    json_decref(body);
}

void tl_tunnel_grant_ended(tl_tunnel_t *tunnel, const tl_grant_t *grant, const char *reason)
{
    size_t stopped = 0;
    if (tunnel->options.sessions != NULL)
        stopped = tl_sessions_end_grant(tunnel->options.sessions, grant->id);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "type", "session.ended", "grant", grant->id,
                             "ticket", grant->ticket, "reason", reason);
    if (body == NULL)
        return;
    tl_log_info("grant ended, sessions stopped grant=%s sessions=%zu", grant->id, stopped);
    if (tunnel->peer != NULL && tunnel->welcomed) {
        tl_peer_send_control(tunnel->peer, 0, body);
    } else {
        if (json_array_size(tunnel->ended_queue) >= TL_TUNNEL_MAX_ENDED)
            json_array_remove(tunnel->ended_queue, 0);
        json_array_append(tunnel->ended_queue, body);
    }
    json_decref(body);
}

static int on_peer_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(peer);
    if (msg->type != TL_MSG_CONTROL)
        return TL_EPROTO;
    json_t *body = msg->u.control.body;
    const char *type = json_string_value(json_object_get(body, "type"));
    if (msg->u.control.request_id == 0 && type != NULL && strcmp(type, "welcome") == 0) {
        const char *device = json_string_value(json_object_get(body, "device"));
        json_t *heartbeat = json_object_get(body, "heartbeat_ms");
        if (!json_is_integer(heartbeat) || json_integer_value(heartbeat) < 50 ||
            json_integer_value(heartbeat) > 3600000) {
            /* Without it the agent could not tell a dead relay (protocol.md §7.1). */
            tl_log_warn("relay's welcome refused: heartbeat_ms is not a whole number 50..3600000");
            return TL_EPROTO;
        }
        snprintf(tunnel->device, sizeof tunnel->device, "%s", device ? device : "?");
        tl_peer_set_heartbeat(peer, (uint32_t)json_integer_value(heartbeat));
        tunnel->welcomed = 1;
        tunnel->attempt = 0;
        tunnel->last_error = 0;
        tl_log_info("connected to relay device=%s", tunnel->device);
        send_queued_ended(tunnel);
        if (tunnel->events->on_connected != NULL)
            tunnel->events->on_connected(tunnel, tunnel->device);
        deliver_next(tunnel);
        return 0;
    }
    if (msg->u.control.request_id == 0 && type != NULL && strcmp(type, "enroll-required") == 0)
        return TL_ENOT_ENROLLED; /* the relay does not know our key: nothing to do but say so */
    if (msg->u.control.request_id != 0 && type != NULL && strcmp(type, "result") == 0) {
        handle_result(tunnel, msg->u.control.request_id, body);
        return 0;
    }
    if (!tunnel->welcomed)
        return 0; /* nothing is served before the welcome */
    if (msg->u.control.request_id != 0)
        handle_request(tunnel, msg->u.control.request_id, type, body);
    else if (type != NULL)
        handle_notification(tunnel, type, body);
    return 0;
}

static void on_peer_closed(tl_peer_t *peer, int reason)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(peer);
    int was_up = tunnel->welcomed;
    tunnel->peer = NULL;
    tunnel->welcomed = 0;
    delivery_free(tunnel->delivery);
    tunnel->delivery = NULL;
    json_array_clear(tunnel->skipped);
    /* The processes of this connection's channels stop; the grants stay (protocol.md §7.8). */
    if (tunnel->options.sessions != NULL)
        tl_sessions_disconnected(tunnel->options.sessions);
    tunnel->session_count = 0;
    if (tunnel->options.consent != NULL)
        tl_consent_cancel_all(tunnel->options.consent, "the connection to the relay dropped");
    tunnel->last_error = reason != 0 ? reason : TL_ECLOSED;
    if (reason == TL_EPIN) {
        const char *presented = tl_peer_fingerprint(peer);
        tl_log_error("%s pinned=%s presented=%s reason=EPIN", tl_tunnel_error_text(reason),
                     tunnel->options.state->relay_fingerprint, presented ? presented : "none");
    } else if (reason == TL_ENOT_ENROLLED) {
        tl_log_error("%s reason=ENOT_ENROLLED", tl_tunnel_error_text(reason));
    } else if (reason == TL_ETLS && !was_up) {
        tl_log_warn("%s reason=ETLS", tl_tunnel_error_text(reason));
    } else
        tl_log_info("relay connection ended reason=\"%s\"",
                    reason ? tl_strerror(reason) : "closed");
    if (was_up && tunnel->events->on_disconnected != NULL)
        tunnel->events->on_disconnected(tunnel, reason);
    if (tunnel->stopping) {
        maybe_release(tunnel);
        return;
    }
    if (tunnel->options.once) {
        finish_once(tunnel, reason != 0 ? reason : TL_ECLOSED);
        return;
    }
    schedule_retry(tunnel);
}

static const tl_peer_callbacks_t peer_callbacks = {
    .on_message = on_peer_message,
    .on_closed = on_peer_closed,
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tl_tunnel_t *tunnel = req->data;
    tunnel->resolving = 0;
    if (tunnel->stopping) {
        uv_freeaddrinfo(res);
        maybe_release(tunnel);
        return;
    }
    int err = status;
    if (status == 0) {
        tunnel->generation++;
        tunnel->peer =
            tl_peer_connect(tunnel->loop, tunnel->tls, res->ai_addr, &tunnel->peer_config,
                            &peer_callbacks, &channel_callbacks, tunnel, &err);
    }
    uv_freeaddrinfo(res);
    if (tunnel->peer == NULL) {
        tunnel->last_error = err;
        tl_log_warn("cannot reach relay host=%s reason=%s", tunnel->options.state->relay_host,
                    tl_strerror(err));
        if (tunnel->options.once)
            finish_once(tunnel, err);
        else
            schedule_retry(tunnel);
    }
}

static void connect_now(tl_tunnel_t *tunnel)
{
    if (tunnel->stopping || tunnel->peer != NULL || tunnel->resolving)
        return;
    char port[8];
    snprintf(port, sizeof port, "%u", tunnel->options.state->relay_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    tunnel->resolver.data = tunnel;
    int rc = uv_getaddrinfo(tunnel->loop, &tunnel->resolver, on_resolved,
                            tunnel->options.state->relay_host, port, &hints);
    if (rc != 0) {
        if (tunnel->options.once)
            finish_once(tunnel, rc);
        else
            schedule_retry(tunnel);
        return;
    }
    tunnel->resolving = 1;
}

tl_tunnel_t *tl_tunnel_start(uv_loop_t *loop, const tl_tunnel_options_t *options,
                             const tl_tunnel_events_t *events, void *data, int *err)
{
    tl_tunnel_t *tunnel = calloc(1, sizeof *tunnel);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    if (tunnel == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    tunnel->loop = loop;
    tunnel->options = *options;
    if (tunnel->options.backoff_min_ms == 0)
        tunnel->options.backoff_min_ms = 500;
    if (tunnel->options.backoff_max_ms == 0)
        tunnel->options.backoff_max_ms = 60000;
    tunnel->events = events;
    tunnel->data = data;
    tunnel->skipped = json_array();
    tunnel->ended_queue = json_array();
    snprintf(tunnel->software, sizeof tunnel->software, "tierline-agent/%s", TL_VERSION_STRING);
    tunnel->peer_config = (tl_peer_config_t){tunnel->software, 0, 0, NULL};
    *err = tl_state_identity(options->state->dir, 0, &key, &cert);
    if (*err == 0) {
        tl_tls_config_t tls = {
            .role = TL_TLS_CLIENT,
            .key = key,
            .cert = cert,
            .pin = options->state->relay_fingerprint,
        };
        tunnel->tls = tl_tls_ctx_new(&tls, err);
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    if (tunnel->tls == NULL || tunnel->skipped == NULL || tunnel->ended_queue == NULL) {
        json_decref(tunnel->skipped);
        json_decref(tunnel->ended_queue);
        tl_tls_ctx_free(tunnel->tls);
        free(tunnel);
        if (*err == 0)
            *err = TL_ENOMEM;
        return NULL;
    }
    uv_timer_init(loop, &tunnel->retry);
    tunnel->retry.data = tunnel;
    uv_timer_init(loop, &tunnel->next);
    tunnel->next.data = tunnel;
    connect_now(tunnel);
    return tunnel;
}

void tl_tunnel_kick(tl_tunnel_t *tunnel)
{
    json_array_clear(tunnel->skipped);
    if (tunnel->peer == NULL && !tunnel->resolving && !tunnel->stopping) {
        /* Someone is waiting: try now rather than at the end of the backoff. */
        uv_timer_stop(&tunnel->retry);
        connect_now(tunnel);
        return;
    }
    deliver_next(tunnel);
}

void tl_tunnel_stop(tl_tunnel_t *tunnel)
{
    if (tunnel->stopping)
        return;
    tunnel->stopping = 1;
    /* From here on the consent and sessions modules are the caller's to free. */
    if (tunnel->options.sessions != NULL)
        tl_sessions_disconnected(tunnel->options.sessions);
    if (tunnel->options.consent != NULL)
        tl_consent_cancel_all(tunnel->options.consent, "the agent is stopping");
    tunnel->options.sessions = NULL;
    tunnel->options.consent = NULL;
    tunnel->session_count = 0;
    uv_timer_stop(&tunnel->retry);
    uv_timer_stop(&tunnel->next);
    if (tunnel->peer != NULL)
        tl_peer_close(tunnel->peer, 0, "agent stopping");
    if (tunnel->resolving)
        uv_cancel((uv_req_t *)&tunnel->resolver);
    maybe_release(tunnel);
}

int tl_tunnel_connected(const tl_tunnel_t *tunnel)
{
    return tunnel->welcomed;
}

int tl_tunnel_last_error(const tl_tunnel_t *tunnel)
{
    return tunnel->welcomed ? 0 : tunnel->last_error;
}

const char *tl_tunnel_error_text(int error)
{
    switch (error) {
    case TL_EPIN:
        return "the relay's key does not match the pinned key: possible impersonation";
    case TL_ENOT_ENROLLED:
        return "the relay does not know this agent's key (enrolled elsewhere, or removed from the "
               "relay?)";
    case TL_ETLS:
        return "the TLS handshake with the relay failed: it refused this agent, or it is not a "
               "Tierline relay";
    default:
        return NULL;
    }
}

void *tl_tunnel_data(const tl_tunnel_t *tunnel)
{
    return tunnel->data;
}
