/*
 * A protocol peer: one agent <-> relay connection above TLS.
 *
 * Both programs speak the same connection protocol, so it lives here once:
 * the TLS connection (proto/tls.h), the frame decoder, the HELLO exchange and
 * version negotiation, PING/PONG heartbeats with dead-peer detection,
 * GOODBYE on errors, and the channel multiplexer (proto/mux.h). What the
 * messages mean is the owner's: ENROLL, ENROLL_RESULT and CONTROL messages
 * are handed to on_message, channel events to the mux callbacks the owner
 * supplies. docs/protocol.md §3 and §7.1 are the specification.
 *
 * Lifetime. A peer is created by tl_peer_accept() or tl_peer_connect() and
 * ends exactly once: on_closed runs when the connection is gone (refused,
 * failed, closed by either side), after which the memory is released. The
 * owner ends it with tl_peer_close(), which is safe from any callback; after
 * that no callback but on_closed runs. A peer belongs to one loop and thread.
 */
#ifndef TL_PEER_H
#define TL_PEER_H

#include "proto/msg.h"
#include "proto/mux.h"
#include "proto/tls.h"

#include <stdint.h>
#include <uv.h>

typedef struct tl_peer tl_peer_t;

typedef struct tl_peer_config {
    const char *software;       /* sent in HELLO, e.g. "tierline-relay/0.1.0" */
    uint32_t hello_timeout_ms;  /* from the TLS handshake to the peer's HELLO */
    uint32_t heartbeat_ms;      /* PING after this much silence; 0: no heartbeats */
    const tl_mux_config_t *mux; /* NULL for the defaults */
    /* tl_peer_connect() only: the local address to connect from; NULL: any. */
    const struct sockaddr *source;
} tl_peer_config_t;

#define TL_PEER_DEFAULT_HELLO_TIMEOUT_MS 10000u
/* A peer that sent nothing for this many heartbeat intervals is dead. */
#define TL_PEER_DEAD_INTERVALS 3

typedef struct tl_peer_callbacks {
    /* HELLOs exchanged and a version agreed: the connection is usable. */
    void (*on_ready)(tl_peer_t *peer);
    /*
     * ENROLL, ENROLL_RESULT or CONTROL from the peer; the message is valid
     * during the call. A negative return ends the connection with GOODBYE
     * carrying that code.
     */
    int (*on_message)(tl_peer_t *peer, const tl_msg_t *msg);
    /* The peer's queue drained after congestion: channels may write again. */
    void (*on_drain)(tl_peer_t *peer);
    /*
     * Optional: each channel message (types 32-63) before the multiplexer
     * sees it. 1 keeps it from the multiplexer, 0 passes it on, a negative
     * code ends the connection. For a test peer that breaks the channel
     * rules on purpose and must take the answers (tests/integ/rogue_relay.c);
     * the agent and the relay leave it NULL.
     */
    int (*on_channel_message)(tl_peer_t *peer, const tl_msg_t *msg);
    /*
     * The connection is gone; reason is 0 for a close we asked for, the
     * peer's GOODBYE code as a negative TL_E* value, or the error that ended
     * it. The peer is freed when this returns.
     */
    void (*on_closed)(tl_peer_t *peer, int reason);
} tl_peer_callbacks_t;

/*
 * Accepts a pending connection on server, or connects to addr. callbacks and
 * channel_callbacks must outlive the peer; channel_callbacks' send member is
 * ignored (the peer sends) and their ctx is the peer (tl_peer_t *). data is
 * the owner's. NULL with *err on failure; nothing to close then.
 */
tl_peer_t *tl_peer_accept(uv_stream_t *server, tl_tls_ctx_t *ctx, const tl_peer_config_t *config,
                          const tl_peer_callbacks_t *callbacks,
                          const tl_mux_callbacks_t *channel_callbacks, void *data, int *err);
/* A connection the caller accepted itself; the peer owns fd, on failure too. */
tl_peer_t *tl_peer_accept_fd(uv_loop_t *loop, int fd, tl_tls_ctx_t *ctx,
                             const tl_peer_config_t *config, const tl_peer_callbacks_t *callbacks,
                             const tl_mux_callbacks_t *channel_callbacks, void *data, int *err);
tl_peer_t *tl_peer_connect(uv_loop_t *loop, tl_tls_ctx_t *ctx, const struct sockaddr *addr,
                           const tl_peer_config_t *config, const tl_peer_callbacks_t *callbacks,
                           const tl_mux_callbacks_t *channel_callbacks, void *data, int *err);

/* Sends one message (after on_ready; HELLO and heartbeats are the peer's). */
int tl_peer_send(tl_peer_t *peer, const tl_msg_t *msg);
/* Sends CONTROL {request_id, body}. */
int tl_peer_send_control(tl_peer_t *peer, uint32_t request_id, json_t *body);

/*
 * Ends the connection: with a code or a reason, a GOODBYE carrying them goes
 * first. on_closed follows from the loop with reason = code.
 */
void tl_peer_close(tl_peer_t *peer, int code, const char *reason);

/* Changes the heartbeat interval (0 turns heartbeats off). */
void tl_peer_set_heartbeat(tl_peer_t *peer, uint32_t heartbeat_ms);
/*
 * For an owner that keeps the peer's heartbeat off and watches many peers with one timer
 * (the relay, docs/protocol.md §7.1): a ready peer from which nothing has arrived for
 * silent_ms or longer is closed as dead (TL_ETIMEOUT, logged) and 1 returned; otherwise 0.
 * PINGs from the other side are answered either way.
 */
int tl_peer_close_if_silent(tl_peer_t *peer, uint64_t silent_ms);

tl_mux_t *tl_peer_mux(tl_peer_t *peer);
tl_tls_t *tl_peer_tls(tl_peer_t *peer);
/* The peer's key fingerprint once TLS has seen it, else NULL. */
const char *tl_peer_fingerprint(const tl_peer_t *peer);
/* Agreed protocol version, 0 before on_ready. */
uint16_t tl_peer_version(const tl_peer_t *peer);
/* 1 while the TLS write queue is over its high-water mark. */
int tl_peer_congested(const tl_peer_t *peer);
/* Approximate bytes held for this peer (excluding OpenSSL's). */
size_t tl_peer_memory(const tl_peer_t *peer);

/*
 * Names the peer's address (text) in its log lines. Until
 * tl_peer_set_authenticated(), they are the lines of an unauthenticated peer
 * at that address (proto/log.h tl_log_peer_write), which a program serving
 * such peers bounds per address.
 */
void tl_peer_set_address(tl_peer_t *peer, const char *address);
/* The owner knows who the peer is: its lines are ordinary lines from now on. */
void tl_peer_set_authenticated(tl_peer_t *peer);

void tl_peer_set_data(tl_peer_t *peer, void *data);
void *tl_peer_get_data(const tl_peer_t *peer);

#endif
