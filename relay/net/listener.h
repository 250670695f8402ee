/*
 * A listening TCP socket on the loop: the relay's two front doors (agents'
 * TLS, technicians' SSH) accept their connections through it.
 *
 * It accepts by itself instead of through uv_listen(), because of what
 * happens when the process runs out of file descriptors: libuv then accepts
 * and closes the pending connections without telling its caller, so the
 * relay could not say that it was turning clients away. Here the same trick
 * is kept (a spare descriptor is held; on EMFILE or ENFILE it is closed, the
 * pending connection is accepted and closed at once, so its client gets a
 * quick refusal instead of a hang, and the spare is opened again) and every
 * such failure is counted and logged, rate-limited: the first failure after
 * a quiet spell is logged at once, later ones are counted, and at most one
 * line per TL_LISTENER_LOG_INTERVAL_MS says how many there were since the
 * line before ("suppressed=N"). Other accept errors (ENOBUFS, ENOMEM, ...),
 * and EMFILE when no spare could be kept, pause accepting for
 * TL_LISTENER_PAUSE_MS rather than spin on a listener that stays readable.
 * Accepting resumes by itself: nothing needs a restart.
 *
 * An accept rate (a token bucket holding a tenth of a second's connections,
 * at least one) and the owner's hold (tl_listener_hold(), e.g. while too many
 * handshakes are under way) stop it from taking connections faster than the
 * loop can serve them: those over the rate wait in the kernel's backlog,
 * where a full backlog makes clients retry their SYN, and nothing is closed.
 *
 * Ownership: the listener is its own; tl_listener_stop() ends it and its
 * memory goes when the loop has run its close callbacks. Loop thread only.
 */
#ifndef TL_LISTENER_H
#define TL_LISTENER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct tl_listener tl_listener_t;

/*
 * A new connection: fd is a connected, non-blocking, close-on-exec socket
 * and now the callback's to keep or close; peer is its address.
 */
typedef void (*tl_listener_accept_fn)(void *ctx, int fd, const struct sockaddr *peer);

typedef struct tl_listener_config {
    const char *address; /* "ADDR:PORT", numeric (proto/addr.h) */
    const char *name;    /* for logs: listener=NAME */
    int backlog;         /* 0: 128 */
    uint32_t rate;       /* connections accepted per second at most; 0: no limit */
    tl_listener_accept_fn on_accept;
    void *ctx;
} tl_listener_config_t;

/* At most one "accept failed" line per listener in this long. */
#define TL_LISTENER_LOG_INTERVAL_MS 10000u
/* Accepting stops this long after an error that a retry cannot clear at once. */
#define TL_LISTENER_PAUSE_MS 250u
/* Connections accepted per wake-up, so one burst cannot starve the loop. */
#define TL_LISTENER_BATCH 32

/* Binds and listens; NULL and *err (a negative code) if the address cannot be had. */
tl_listener_t *tl_listener_start(uv_loop_t *loop, const tl_listener_config_t *config, int *err);
/* Closes the socket; on_accept is not called again. NULL is a no-op. */
void tl_listener_stop(tl_listener_t *listener);
/*
 * A connection its owner accepted but then had to drop for want of a
 * resource (error: a negative errno or TL_E* code): counted and logged with
 * the listener's own failures, under the same rate limit.
 */
void tl_listener_dropped(tl_listener_t *listener, int error);
/* held 1: accept nothing until called again with 0 (the rate still applies then). */
void tl_listener_hold(tl_listener_t *listener, int held);
/* Connections turned away since start, for tests and status. */
uint64_t tl_listener_failures(const tl_listener_t *listener);

#endif
