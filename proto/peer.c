#include "proto/peer.h"
#include "proto/addr.h"
#include "proto/err.h"
#include "proto/frame.h"
#include "proto/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* docs/protocol.md §3.1, §3.2 and §7.1. */

struct tl_peer {
    tl_tls_t *tls;
    tl_frame_decoder_t *decoder;
    tl_mux_t *mux;
    tl_mux_callbacks_t channel_callbacks; /* the owner's, with our send */
    const tl_peer_callbacks_t *callbacks;
    void *data;
    uv_timer_t timer;
    const char *software;
    uint64_t last_rx;
    uint64_t last_tx;
    uint64_t hello_deadline;
    uint64_t ping_nonce;
    uint32_t heartbeat_ms;
    uint32_t hello_timeout_ms;
    uint16_t version;
    unsigned ready : 1;
    unsigned closing : 1;
    unsigned authenticated : 1; /* the owner said so: lines no longer bounded */
    int reason;
    char address[TL_ADDR_TEXT_MAX]; /* for log lines; "" if not given */
};

/*
 * Frames are assembled here before they go to TLS: one scratch buffer per
 * thread, reused for every send, so an idle peer holds no send buffer.
 */
static _Thread_local tl_buf_t *scratch;

static tl_buf_t *scratch_buf(void)
{
    if (scratch == NULL)
        scratch = tl_buf_new(TL_FRAME_HEADER_LEN + TL_FRAME_MAX_PAYLOAD);
    if (scratch != NULL)
        tl_buf_reset(scratch);
    return scratch;
}

static const char *peer_name(const tl_peer_t *peer)
{
    const char *fingerprint = tl_peer_fingerprint(peer);
    return fingerprint ? fingerprint : "unauthenticated";
}

/* The address its lines are bounded by (proto/log.h), or NULL once authenticated. */
static const char *gated_address(const tl_peer_t *peer)
{
    return peer->address[0] != '\0' && !peer->authenticated ? peer->address : NULL;
}

/* " address=ADDR" at the end of a line, when the owner gave one. */
#define ADDRESS_FMT "%s%s"
#define ADDRESS_ARGS(peer) (peer)->address[0] != '\0' ? " address=" : "", (peer)->address

static void timer_closed(uv_handle_t *handle)
{
    tl_peer_t *peer = handle->data;
    if (peer->callbacks->on_closed != NULL)
        peer->callbacks->on_closed(peer, peer->reason);
    tl_mux_free(peer->mux);
    tl_frame_decoder_free(peer->decoder);
    free(peer);
}

static void tls_closed(tl_tls_t *conn)
{
    tl_peer_t *peer = tl_tls_get_data(conn);
    peer->tls = NULL;
    uv_timer_stop(&peer->timer);
    uv_close((uv_handle_t *)&peer->timer, timer_closed);
}

/* Ends the connection once; reason is what on_closed will report. */
static void finish(tl_peer_t *peer, int reason)
{
    if (peer->closing)
        return;
    peer->closing = 1;
    peer->reason = reason;
    tl_tls_close(peer->tls, tls_closed);
}

static int write_bytes(tl_peer_t *peer, const uint8_t *bytes, size_t len)
{
    if (peer->closing)
        return TL_ECLOSED;
    int rc = tl_tls_write(peer->tls, bytes, len);
    if (rc == TL_EFULL) {
        /* The peer stopped reading long ago: it holds back only itself. */
        tl_log_peer_warn(gated_address(peer),
                         "peer not reading, closing peer=%s queued=%zu" ADDRESS_FMT,
                         peer_name(peer), tl_tls_write_queue_size(peer->tls), ADDRESS_ARGS(peer));
        finish(peer, TL_EFULL);
    }
    if (rc == 0)
        peer->last_tx = uv_now(peer->timer.loop);
    return rc;
}

static int send_msg(tl_peer_t *peer, const tl_msg_t *msg)
{
    tl_buf_t *buf = scratch_buf();
    if (buf == NULL)
        return TL_ENOMEM;
    int rc = tl_msg_encode(buf, msg);
    if (rc == 0)
        rc = write_bytes(peer, tl_buf_data(buf), tl_buf_len(buf));
    return rc;
}

/* Protocol failure: tell the peer why when we can, log it, end the connection. */
static void fail(tl_peer_t *peer, int code, const char *what)
{
    if (peer->closing)
        return;
    tl_log_peer_warn(gated_address(peer),
                     "peer rejected peer=%s reason=%s detail=\"%s\"" ADDRESS_FMT, peer_name(peer),
                     tl_err_name(code), what, ADDRESS_ARGS(peer));
    tl_peer_close(peer, code, tl_strerror(code));
}

static int mux_send(void *ctx, const uint8_t *head, size_t head_len, const uint8_t *body,
                    size_t body_len)
{
    tl_peer_t *peer = ctx;
    tl_buf_t *buf = scratch_buf();
    if (buf == NULL)
        return TL_ENOMEM;
    /* One write per frame: TLS then makes full-size records of it. */
    int rc = tl_buf_put(buf, head, head_len);
    if (rc == 0 && body_len > 0)
        rc = tl_buf_put(buf, body, body_len);
    if (rc == 0)
        rc = write_bytes(peer, tl_buf_data(buf), tl_buf_len(buf));
    return rc;
}

static void arm_timer(tl_peer_t *peer);

static void on_timer(uv_timer_t *timer)
{
    tl_peer_t *peer = timer->data;
    uint64_t now = uv_now(timer->loop);
    if (peer->closing)
        return;
    if (!peer->ready) {
        if (now >= peer->hello_deadline)
            fail(peer, TL_ETIMEOUT, "no HELLO in time");
        return;
    }
    if (peer->heartbeat_ms == 0)
        return;
    if (tl_peer_close_if_silent(peer, (uint64_t)peer->heartbeat_ms * TL_PEER_DEAD_INTERVALS))
        return;
    if (now - peer->last_tx >= peer->heartbeat_ms) {
        tl_msg_t ping = {.type = TL_MSG_PING, .u.ping.nonce = ++peer->ping_nonce};
        send_msg(peer, &ping);
    }
}

static void arm_timer(tl_peer_t *peer)
{
    uint64_t interval;
    if (!peer->ready)
        interval = peer->hello_timeout_ms;
    else if (peer->heartbeat_ms == 0) {
        uv_timer_stop(&peer->timer);
        return;
    } else
        interval = peer->heartbeat_ms / 2 > 0 ? peer->heartbeat_ms / 2 : 1;
    uv_timer_start(&peer->timer, on_timer, interval, interval);
}

static void handle_hello(tl_peer_t *peer, const struct tl_msg_hello *hello)
{
    if (peer->ready) {
        fail(peer, TL_EPROTO, "second HELLO");
        return;
    }
    struct tl_msg_hello local = {TL_PROTO_VERSION_MIN, TL_PROTO_VERSION_MAX, TL_FEATURES_SUPPORTED,
                                 tl_str_from(peer->software)};
    uint16_t chosen = 0;
    if (tl_msg_negotiate(&local, hello, &chosen) != 0) {
        fail(peer, TL_EVERSION, "no common protocol version");
        return;
    }
    peer->version = chosen;
    peer->ready = 1;
    /* A feature is used only when both sides announced it; unknown bits are ignored. */
    tl_mux_set_features(peer->mux, local.features & hello->features);
    arm_timer(peer);
    tl_log_peer_debug(gated_address(peer),
                      "peer ready peer=%s version=%u features=%#x software=\"%.*s\"" ADDRESS_FMT,
                      peer_name(peer), chosen, local.features & hello->features,
                      (int)hello->software.len, (const char *)hello->software.ptr,
                      ADDRESS_ARGS(peer));
    if (peer->callbacks->on_ready != NULL)
        peer->callbacks->on_ready(peer);
}

static void handle_goodbye(tl_peer_t *peer, const struct tl_msg_goodbye *goodbye)
{
    int code = goodbye->code == 0 || goodbye->code > 30099 ? 0 : -(int)goodbye->code;
    tl_log_peer_info(gated_address(peer),
                     "peer said goodbye peer=%s code=%s reason=\"%.*s\"" ADDRESS_FMT,
                     peer_name(peer), code ? tl_err_name(code) : "none", (int)goodbye->reason.len,
                     (const char *)goodbye->reason.ptr, ADDRESS_ARGS(peer));
    finish(peer, code);
}

static void handle_frame(tl_peer_t *peer, const tl_frame_t *frame)
{
    tl_msg_t msg;
    int rc = tl_msg_decode(frame, &msg);
    if (rc != 0) {
        fail(peer, rc, tl_msg_type_name(frame->type));
        return;
    }
    if (msg.type == TL_MSG_HELLO) {
        handle_hello(peer, &msg.u.hello);
    } else if (!peer->ready) {
        fail(peer, TL_EPROTO, "message before HELLO");
    } else if (msg.type == TL_MSG_PING) {
        tl_msg_t pong = {.type = TL_MSG_PONG, .u.ping.nonce = msg.u.ping.nonce};
        send_msg(peer, &pong);
    } else if (msg.type == TL_MSG_PONG) {
        /* Arrival already counted as life. */
    } else if (msg.type == TL_MSG_GOODBYE) {
        handle_goodbye(peer, &msg.u.goodbye);
    } else if (msg.type >= TL_MSG_CHANNEL_OPEN && msg.type <= 63) {
        rc = peer->callbacks->on_channel_message != NULL
                 ? peer->callbacks->on_channel_message(peer, &msg)
                 : 0;
        if (rc == 0)
            rc = tl_mux_input(peer->mux, &msg);
        else if (rc > 0)
            rc = 0;
        if (rc != 0)
            fail(peer, rc, tl_msg_type_name(msg.type));
    } else {
        rc = peer->callbacks->on_message ? peer->callbacks->on_message(peer, &msg) : TL_EPROTO;
        if (rc < 0)
            fail(peer, rc, tl_msg_type_name(msg.type));
    }
    tl_msg_clear(&msg);
}

static void on_tls_read(tl_tls_t *conn, const uint8_t *data, size_t len)
{
    tl_peer_t *peer = tl_tls_get_data(conn);
    peer->last_rx = uv_now(peer->timer.loop);
    tl_frame_t frame;
    int rc;
    while (!peer->closing && (rc = tl_frame_decoder_next(peer->decoder, &data, &len, &frame)) == 1)
        handle_frame(peer, &frame);
    if (!peer->closing && rc < 0)
        fail(peer, rc, "framing");
}

static void on_tls_handshake(tl_tls_t *conn, int status)
{
    tl_peer_t *peer = tl_tls_get_data(conn);
    if (status != 0) {
        tl_log_peer_info(gated_address(peer), "handshake failed peer=%s reason=%s" ADDRESS_FMT,
                         peer_name(peer), tl_strerror(status), ADDRESS_ARGS(peer));
        finish(peer, status);
        return;
    }
    peer->last_rx = peer->last_tx = uv_now(peer->timer.loop);
    peer->hello_deadline = peer->last_rx + peer->hello_timeout_ms;
    arm_timer(peer);
    tl_msg_t hello = {.type = TL_MSG_HELLO};
    hello.u.hello = (struct tl_msg_hello){TL_PROTO_VERSION_MIN, TL_PROTO_VERSION_MAX,
                                          TL_FEATURES_SUPPORTED, tl_str_from(peer->software)};
    send_msg(peer, &hello);
}

static void on_tls_error(tl_tls_t *conn, int status)
{
    tl_peer_t *peer = tl_tls_get_data(conn);
    if (!peer->closing)
        tl_log_peer_debug(gated_address(peer), "connection ended peer=%s reason=%s" ADDRESS_FMT,
                          peer_name(peer), tl_strerror(status), ADDRESS_ARGS(peer));
    /* A clean close_notify after the owner's own close is not an error. */
    finish(peer, status == TL_ECLOSED && tl_frame_decoder_finish(peer->decoder) == 0 ? TL_ECLOSED
                                                                                     : status);
}

static void on_tls_drain(tl_tls_t *conn)
{
    tl_peer_t *peer = tl_tls_get_data(conn);
    if (!peer->closing && peer->callbacks->on_drain != NULL)
        peer->callbacks->on_drain(peer);
}

static const tl_tls_callbacks_t tls_callbacks = {
    .on_handshake = on_tls_handshake,
    .on_read = on_tls_read,
    .on_error = on_tls_error,
    .on_drain = on_tls_drain,
};

static tl_peer_t *peer_new(uv_loop_t *loop, const tl_peer_config_t *config,
                           const tl_peer_callbacks_t *callbacks,
                           const tl_mux_callbacks_t *channel_callbacks, void *data, int *err)
{
    tl_peer_t *peer = calloc(1, sizeof *peer);
    if (peer == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    peer->callbacks = callbacks;
    peer->data = data;
    peer->software = config->software ? config->software : "tierline";
    peer->heartbeat_ms = config->heartbeat_ms;
    peer->hello_timeout_ms =
        config->hello_timeout_ms ? config->hello_timeout_ms : TL_PEER_DEFAULT_HELLO_TIMEOUT_MS;
    if (channel_callbacks != NULL)
        peer->channel_callbacks = *channel_callbacks;
    peer->channel_callbacks.send = mux_send;
    peer->decoder = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
    peer->mux = tl_mux_new(config->mux, &peer->channel_callbacks, peer);
    if (peer->decoder == NULL || peer->mux == NULL) {
        *err = peer->decoder == NULL ? TL_ENOMEM : TL_EINVAL;
        tl_frame_decoder_free(peer->decoder);
        tl_mux_free(peer->mux);
        free(peer);
        return NULL;
    }
    uv_timer_init(loop, &peer->timer);
    peer->timer.data = peer;
    return peer;
}

/* Releases a peer whose TLS connection never came to be. */
static void peer_abandon(tl_peer_t *peer)
{
    tl_mux_free(peer->mux);
    peer->mux = NULL;
    static const tl_peer_callbacks_t none;
    peer->callbacks = &none;
    uv_close((uv_handle_t *)&peer->timer, timer_closed);
}

tl_peer_t *tl_peer_accept(uv_stream_t *server, tl_tls_ctx_t *ctx, const tl_peer_config_t *config,
                          const tl_peer_callbacks_t *callbacks,
                          const tl_mux_callbacks_t *channel_callbacks, void *data, int *err)
{
    tl_peer_t *peer = peer_new(server->loop, config, callbacks, channel_callbacks, data, err);
    if (peer == NULL)
        return NULL;
    peer->tls = tl_tls_accept(server, ctx, &tls_callbacks, peer, err);
    if (peer->tls == NULL) {
        peer_abandon(peer);
        return NULL;
    }
    return peer;
}

tl_peer_t *tl_peer_accept_fd(uv_loop_t *loop, int fd, tl_tls_ctx_t *ctx,
                             const tl_peer_config_t *config, const tl_peer_callbacks_t *callbacks,
                             const tl_mux_callbacks_t *channel_callbacks, void *data, int *err)
{
    tl_peer_t *peer = peer_new(loop, config, callbacks, channel_callbacks, data, err);
    if (peer == NULL) {
        close(fd);
        return NULL;
    }
    peer->tls = tl_tls_accept_fd(loop, fd, ctx, &tls_callbacks, peer, err);
    if (peer->tls == NULL) {
        peer_abandon(peer);
        return NULL;
    }
    return peer;
}

tl_peer_t *tl_peer_connect(uv_loop_t *loop, tl_tls_ctx_t *ctx, const struct sockaddr *addr,
                           const tl_peer_config_t *config, const tl_peer_callbacks_t *callbacks,
                           const tl_mux_callbacks_t *channel_callbacks, void *data, int *err)
{
    tl_peer_t *peer = peer_new(loop, config, callbacks, channel_callbacks, data, err);
    if (peer == NULL)
        return NULL;
    peer->tls = tl_tls_connect_from(loop, ctx, addr, config->source, &tls_callbacks, peer, err);
    if (peer->tls == NULL) {
        peer_abandon(peer);
        return NULL;
    }
    return peer;
}

int tl_peer_send(tl_peer_t *peer, const tl_msg_t *msg)
{
    if (!peer->ready)
        return peer->closing ? TL_ECLOSED : TL_EINVAL;
    return send_msg(peer, msg);
}

int tl_peer_send_control(tl_peer_t *peer, uint32_t request_id, json_t *body)
{
    tl_msg_t msg = {.type = TL_MSG_CONTROL};
    msg.u.control.request_id = request_id;
    msg.u.control.body = body;
    return tl_peer_send(peer, &msg);
}

void tl_peer_close(tl_peer_t *peer, int code, const char *reason)
{
    if (peer->closing)
        return;
    if ((code != 0 || reason != NULL) && peer->tls != NULL) {
        tl_msg_t goodbye = {.type = TL_MSG_GOODBYE};
        goodbye.u.goodbye.code = (uint32_t)-code;
        char text[TL_MSG_MAX_TEXT + 1];
        snprintf(text, sizeof text, "%s", reason ? reason : "");
        goodbye.u.goodbye.reason = tl_str_from(text);
        /* Best effort: the connection may already be unusable. */
        send_msg(peer, &goodbye);
    }
    finish(peer, code);
}

void tl_peer_set_heartbeat(tl_peer_t *peer, uint32_t heartbeat_ms)
{
    peer->heartbeat_ms = heartbeat_ms;
    if (peer->ready && !peer->closing)
        arm_timer(peer);
}

int tl_peer_close_if_silent(tl_peer_t *peer, uint64_t silent_ms)
{
    uint64_t now = uv_now(peer->timer.loop);
    if (peer->closing || !peer->ready || now - peer->last_rx < silent_ms)
        return 0;
    tl_log_peer_info(gated_address(peer), "peer silent, closing peer=%s silent_ms=%llu" ADDRESS_FMT,
                     peer_name(peer), (unsigned long long)(now - peer->last_rx),
                     ADDRESS_ARGS(peer));
    finish(peer, TL_ETIMEOUT);
    return 1;
}

tl_mux_t *tl_peer_mux(tl_peer_t *peer)
{
    return peer->mux;
}

tl_tls_t *tl_peer_tls(tl_peer_t *peer)
{
    return peer->tls;
}

const char *tl_peer_fingerprint(const tl_peer_t *peer)
{
    return peer->tls ? tl_tls_peer_fingerprint(peer->tls) : NULL;
}

uint16_t tl_peer_version(const tl_peer_t *peer)
{
    return peer->ready ? peer->version : 0;
}

int tl_peer_congested(const tl_peer_t *peer)
{
    return peer->tls ? tl_tls_congested(peer->tls) : 1;
}

size_t tl_peer_memory(const tl_peer_t *peer)
{
    return sizeof *peer + tl_frame_decoder_memory(peer->decoder) + tl_mux_memory(peer->mux) +
           (peer->tls ? tl_tls_memory(peer->tls) : 0);
}

void tl_peer_set_address(tl_peer_t *peer, const char *address)
{
    snprintf(peer->address, sizeof peer->address, "%s", address != NULL ? address : "");
    if (peer->tls != NULL)
        tl_tls_set_log_address(peer->tls, gated_address(peer));
}

void tl_peer_set_authenticated(tl_peer_t *peer)
{
    peer->authenticated = 1;
    if (peer->tls != NULL)
        tl_tls_set_log_address(peer->tls, NULL);
}

void tl_peer_set_data(tl_peer_t *peer, void *data)
{
    peer->data = data;
}

void *tl_peer_get_data(const tl_peer_t *peer)
{
    return peer->data;
}
