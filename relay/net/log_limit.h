/*
 * The bound on the relay's own log lines (stderr, proto/log.h) that
 * unauthenticated peers cause: refused SSH logins and pre-auth closes, failed
 * TLS handshakes, garbage on an agent connection, refused enrollments.
 * Without it, connect-and-close in a loop from one address grows the log
 * without bound (docs/architecture.md "Backpressure and limits",
 * docs/technicians.md "Limits").
 *
 * Per client address, the first TL_LOG_LIMIT_LINES such lines of each window
 * of TL_LOG_LIMIT_WINDOW_MS are written and the rest only counted. An
 * address's window starts with its first line; once it is over, one line
 * says how many were held back:
 *
 *     log lines over the per-address budget suppressed=N peer=ADDR
 *
 * written when the window ends (by the owner's flush) or, sooner, with the
 * address's next line. Memory is fixed: TL_LOG_LIMIT_ADDRESSES addresses
 * have windows of their own; while all of those windows are running, other
 * addresses share one more, TL_LOG_LIMIT_OTHER ("peer=other"), with the same
 * budget. So per address (and for "other") at most TL_LOG_LIMIT_LINES lines
 * and one summary a window, whatever the rate; in all, at most
 * (TL_LOG_LIMIT_ADDRESSES + 1) x (TL_LOG_LIMIT_LINES + 1) lines a window on
 * average. Lines about authenticated technicians and agents, and about the
 * relay itself, are not counted (their writers pass no address).
 *
 * Two layers. The counter (tl_log_limit_new .. tl_log_limit_next_due) is
 * pure: no I/O, no clock of its own (times are passed in), summaries go to a
 * callback. tl_log_limit_start() makes the relay's: a counter on its loop's
 * clock, installed as proto/log.h's gate, writing its summaries to the log
 * from a timer. Loop thread only.
 */
#ifndef TL_LOG_LIMIT_H
#define TL_LOG_LIMIT_H

#include "proto/log.h"

#include <stdint.h>
#include <uv.h>

#define TL_LOG_LIMIT_LINES 10
#define TL_LOG_LIMIT_WINDOW_MS 60000
#define TL_LOG_LIMIT_ADDRESSES 256
/* The address of the window shared by addresses that found no room of their own. */
#define TL_LOG_LIMIT_OTHER "other"

typedef struct tl_log_limit tl_log_limit_t;

typedef struct tl_log_limit_summary {
    const char *address;     /* or TL_LOG_LIMIT_OTHER */
    uint64_t suppressed;     /* lines held back in the window */
    enum tl_log_level level; /* the highest level among them */
} tl_log_limit_summary_t;

/* Receives each summary; the summary and its strings live only for the call. */
typedef void (*tl_log_limit_summary_fn)(void *ctx, const tl_log_limit_summary_t *summary);

tl_log_limit_t *tl_log_limit_new(tl_log_limit_summary_fn emit, void *ctx);
/* Frees without emitting: flush first. NULL is a no-op. Not for tl_log_limit_start()'s. */
void tl_log_limit_free(tl_log_limit_t *limit);

/*
 * One line about address at now_ms: 1 if it is to be written, 0 if it is
 * held back (counted for the summary). If address's window is over, its
 * summary is emitted first and a new window starts.
 */
int tl_log_limit_admit(tl_log_limit_t *limit, int64_t now_ms, const char *address,
                       enum tl_log_level level);
/* Ends the windows that are over at now_ms, emitting their summaries; INT64_MAX ends all. */
void tl_log_limit_flush(tl_log_limit_t *limit, int64_t now_ms);
/*
 * No summary is due before this time (INT64_MAX: none is owed). It is never
 * later than the end of the first window holding lines back; it may be
 * earlier (a window already ended by its address's next line), and a flush
 * then finds nothing and makes it exact.
 */
int64_t tl_log_limit_next_due(const tl_log_limit_t *limit);

/*
 * The relay's: installs the gate and returns its counter, or NULL and *err.
 * Summaries are written at the held-back lines' highest level.
 */
tl_log_limit_t *tl_log_limit_start(uv_loop_t *loop, int *err);
/*
 * Writes the summaries still pending and removes the gate (later lines are
 * written unbounded); the memory goes when the loop has run its close
 * callbacks. NULL is a no-op.
 */
void tl_log_limit_stop(tl_log_limit_t *limit);

#endif
