/*
 * TLS 1.3 connections on libuv, with peers pinned by key fingerprint.
 *
 * The one I/O module in proto/. OpenSSL never touches the socket: a small
 * BIO hands it the bytes libuv read and collects the records it writes, which
 * go out with uv_try_write and, for what the kernel does not take at once,
 * uv_write. Both sides present an Ed25519 key in a self-signed certificate
 * and both require the other's; a peer is trusted because its key's
 * fingerprint (proto/keys.h) matches a pin, or because the owner's
 * check_peer callback says so (the relay looks agents up in its registry).
 * No sessions are resumed and no tickets are issued.
 *
 * Memory. An idle connection holds its SSL object, a uv_tcp_t and a timer,
 * nothing else: socket reads land in one 64 KiB buffer per context, plaintext
 * is decrypted into another and handed to on_read, and OpenSSL releases its
 * record buffers while idle. Only ciphertext the kernel has not taken yet is
 * held per connection, and it is counted (tl_tls_write_queue_size). OpenSSL
 * 3.0's own state is what remains: about 17 KiB per idle connection end,
 * measured (9.5 KiB of it is SSL_new alone); ours is about 0.5 KiB.
 *
 * Backpressure. When the write queue reaches the high-water mark the
 * connection is congested: it stops reading from its socket (a peer that does
 * not read cannot make us buffer its requests' answers without bound) and
 * producers should stop writing. When the queue falls under the low-water
 * mark, reading resumes and on_drain tells producers to go on. A write that
 * would take the queue past the hard limit is refused with TL_EFULL.
 *
 * Lifetime, as in libuv. A connection lives on the loop of the context's
 * owner; tl_tls_close() may be called at any time, from any of the
 * connection's own callbacks too, and the memory is released only after the
 * close callback has run, from the loop. After a handshake failure or an
 * error the connection is dead but still allocated: the owner closes it.
 * A context is reference-counted by its connections, so tl_tls_ctx_free() may
 * be called while some are still closing. A context and its connections
 * belong to one loop and thread.
 *
 * libuv writes with write(2): the process must ignore SIGPIPE, or a peer that
 * resets the connection kills it.
 */
#ifndef TL_TLS_H
#define TL_TLS_H

#include "proto/keys.h"

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tl_tls_ctx tl_tls_ctx_t;
typedef struct tl_tls tl_tls_t;

enum tl_tls_role { TL_TLS_CLIENT = 1, TL_TLS_SERVER = 2 };

#define TL_TLS_DEFAULT_HIGH_WATER (1024u * 1024u)
#define TL_TLS_DEFAULT_LOW_WATER (256u * 1024u)
#define TL_TLS_DEFAULT_QUEUE_LIMIT (16u * 1024u * 1024u)
#define TL_TLS_DEFAULT_HANDSHAKE_TIMEOUT_MS 15000u
#define TL_TLS_DEFAULT_CLOSE_TIMEOUT_MS 5000u

/*
 * Decides whether a peer may connect, during the handshake. peer_fingerprint
 * is the fingerprint of the key the peer proved it holds. Return 0 to accept,
 * a negative code (TL_EPIN, TL_ENOTFOUND...) to refuse: the handshake fails
 * with that code on our side and a bad_certificate alert on the peer's. It
 * runs inside OpenSSL: it must not call tl_tls_* functions.
 */
typedef int (*tl_tls_check_peer_fn)(void *data, const char *peer_fingerprint);

typedef struct tl_tls_config {
    enum tl_tls_role role;
    EVP_PKEY *key; /* our Ed25519 key; the context takes its own reference */
    X509 *cert;    /* a certificate for key; NULL: a fresh self-signed one */
    /*
     * Who the peer may be: pin is the fingerprint its key must have (copied);
     * check_peer decides instead, or also, when set. One of them is required.
     */
    const char *pin;
    tl_tls_check_peer_fn check_peer;
    void *check_peer_data;
    /* 0 for the defaults above. low_water must be below high_water. */
    size_t high_water;
    size_t low_water;
    size_t queue_limit;
    uint32_t handshake_timeout_ms; /* from accept, or from connect (TCP included) */
    uint32_t close_timeout_ms;     /* how long tl_tls_close waits for queued data */
} tl_tls_config_t;

/*
 * Creates a context. NULL with *err: TL_EINVAL (bad role, no pin and no
 * check_peer, a malformed pin, low water not below high water), TL_EKEY (key
 * not Ed25519, certificate not for key), TL_ETLS, TL_ENOMEM.
 */
tl_tls_ctx_t *tl_tls_ctx_new(const tl_tls_config_t *config, int *err);
/* Drops the owner's reference; NULL is a no-op. */
void tl_tls_ctx_free(tl_tls_ctx_t *ctx);

typedef struct tl_tls_callbacks {
    /*
     * The handshake finished: status 0, and data may flow; or it failed:
     * TL_EPIN (pin or check_peer refused the peer), TL_ETLS (protocol
     * failure, an alert from the peer, not TLS at all), TL_ETIMEOUT,
     * TL_ECLOSED or UV_EOF (the peer went away), other uv codes (connect or
     * socket errors). Required.
     *
     * In TLS 1.3 a client finishes before the server has judged the client's
     * key: a server's refusal reaches the client as on_error(TL_ETLS) after
     * on_handshake(0).
     */
    void (*on_handshake)(tl_tls_t *conn, int status);
    /* Plaintext from the peer, valid only during the call. Required. */
    void (*on_read)(tl_tls_t *conn, const uint8_t *data, size_t len);
    /*
     * The established connection ended: TL_ECLOSED (the peer's close_notify),
     * UV_EOF (the peer closed TCP without close_notify, so data may be
     * missing), TL_ETLS, or a uv code. Called once, never during a call the
     * owner made (an error found by tl_tls_write is reported from the loop).
     * Required.
     */
    void (*on_error)(tl_tls_t *conn, int status);
    /* The write queue fell below low water after reaching high water. Optional. */
    void (*on_drain)(tl_tls_t *conn);
} tl_tls_callbacks_t;

/* Called when the connection is gone, just before its memory is released. */
typedef void (*tl_tls_close_cb)(tl_tls_t *conn);

/*
 * Accepts a connection pending on server (call from its connection
 * callback) and starts the server side of the handshake. callbacks must
 * outlive the connection; data is the owner's (tl_tls_get_data). NULL with
 * *err on failure (nothing to close then).
 */
tl_tls_t *tl_tls_accept(uv_stream_t *server, tl_tls_ctx_t *ctx, const tl_tls_callbacks_t *callbacks,
                        void *data, int *err);

/*
 * The same for a connection the caller accepted itself (fd: a connected TCP
 * socket). The connection owns fd from the call on: it is closed on failure
 * too.
 */
tl_tls_t *tl_tls_accept_fd(uv_loop_t *loop, int fd, tl_tls_ctx_t *ctx,
                           const tl_tls_callbacks_t *callbacks, void *data, int *err);

/* Connects to addr and runs the client side of the handshake; as tl_tls_accept. */
tl_tls_t *tl_tls_connect(uv_loop_t *loop, tl_tls_ctx_t *ctx, const struct sockaddr *addr,
                         const tl_tls_callbacks_t *callbacks, void *data, int *err);
/*
 * The same from the local address source (its port 0: chosen at connect
 * time, so many connections to one server can share a source address; the
 * load generator spreads agents over 127.0.0.x this way). NULL: any.
 */
tl_tls_t *tl_tls_connect_from(uv_loop_t *loop, tl_tls_ctx_t *ctx, const struct sockaddr *addr,
                              const struct sockaddr *source, const tl_tls_callbacks_t *callbacks,
                              void *data, int *err);

/*
 * Encrypts and queues len bytes (all of them, or none on error), after
 * on_handshake reported success. TL_EINVAL before that, TL_ECLOSED once the
 * connection failed or is closing, TL_EFULL if the queue would pass its hard
 * limit (the connection stays usable). A socket error found here is returned
 * and also reported by on_error from the loop.
 */
int tl_tls_write(tl_tls_t *conn, const void *data, size_t len);

/*
 * Sends close_notify after whatever is queued, waits up to the close timeout
 * for the queue to drain, closes the socket, calls close_cb (may be NULL)
 * and frees the connection. No callback but close_cb runs after this.
 * Call it once.
 */
void tl_tls_close(tl_tls_t *conn, tl_tls_close_cb close_cb);

/*
 * The owner's own pause: stop or resume reading from the socket. Bytes read
 * from the socket before the pause are still delivered.
 */
void tl_tls_read_stop(tl_tls_t *conn);
void tl_tls_read_start(tl_tls_t *conn);

/*
 * Fingerprint of the key the peer presented, once its certificate was seen
 * (so a refused peer can be logged), else NULL.
 */
const char *tl_tls_peer_fingerprint(const tl_tls_t *conn);

/* Ciphertext bytes handed to the socket and not yet written. */
size_t tl_tls_write_queue_size(const tl_tls_t *conn);
/* 1 from reaching high water until falling under low water. */
int tl_tls_congested(const tl_tls_t *conn);
/* This connection's own memory, excluding OpenSSL's SSL object. */
size_t tl_tls_memory(const tl_tls_t *conn);

/* The peer's address; a uv error if the socket has none. */
int tl_tls_peer_address(const tl_tls_t *conn, struct sockaddr_storage *out);
/*
 * The connection's log lines are an unauthenticated peer's at address
 * (proto/log.h tl_log_peer_write) and name it; NULL (the default) makes them
 * ordinary lines again. address must stay valid while it is set.
 */
void tl_tls_set_log_address(tl_tls_t *conn, const char *address);

void tl_tls_set_data(tl_tls_t *conn, void *data);
void *tl_tls_get_data(const tl_tls_t *conn);

#endif
