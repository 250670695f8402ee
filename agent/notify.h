/*
 * Desktop notifications: a consent question or a ticket update reaches a user who is not at a
 * terminal (docs/desk.md "The user's side of the ticket").
 *
 * The running agent hands each notice here (a summary line and a body); this module shows it
 * through the desktop's notification server (freedesktop.org Desktop Notifications) by running a
 * notifier program, without a shell: `notify-send` when it is installed, else `gdbus call` to
 * org.freedesktop.Notifications. The program is the boundary: nothing here talks D-Bus itself.
 *
 * A graphical session is detected, each time a notification is due, from the agent's own
 * environment: DISPLAY or WAYLAND_DISPLAY must be set, and a session bus must be reachable,
 * through DBUS_SESSION_BUS_ADDRESS or, when that is unset, the socket $XDG_RUNTIME_DIR/bus
 * (given to the notifier as DBUS_SESSION_BUS_ADDRESS). Without one the notice is dropped, counted
 * and logged once per change of state: the user still answers with `tierline-agent attend`, and
 * `tierline-agent status` says why nothing is shown.
 *
 * Rate: a burst of notices is one notification. A notice waits a short gathering delay
 * (TL_NOTIFY_GATHER_MS); notices arriving meanwhile, while a notifier still runs, or within the
 * interval since the last notification started (config.interval_ms) are merged into the next one.
 * A notifier that has not exited after TL_NOTIFY_TIMEOUT_MS is killed.
 *
 * Texts: every notice must already be escaped by the caller (proto/text.h: what other parties
 * wrote, shown as one line or a body without control characters); the body is made safe here for
 * servers that read markup in it (& < > are written as entities).
 *
 * Loop thread only.
 */
#ifndef TL_NOTIFY_H
#define TL_NOTIFY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TL_NOTIFY_GATHER_MS 500u
#define TL_NOTIFY_TIMEOUT_MS 30000u
#define TL_NOTIFY_DEFAULT_INTERVAL_MS 10000u
#define TL_NOTIFY_MAX_INTERVAL_MS 3600000u
/* Notices kept for the next notification; more are only counted ("and 3 more"). */
#define TL_NOTIFY_MAX_PENDING 8
/* Bytes of one notice's summary and body, escaped, and of the notification made of several. */
#define TL_NOTIFY_MAX_SUMMARY 256
#define TL_NOTIFY_MAX_BODY 2048

/* ---- the graphical session --------------------------------------------------------------- */

/* What the environment says (NULL or "" for a variable that is not set). */
typedef struct tl_notify_env {
    const char *display;
    const char *wayland_display;
    const char *dbus_address;
    const char *runtime_dir;
    int runtime_bus; /* 1 if $XDG_RUNTIME_DIR/bus is a socket */
} tl_notify_env_t;

typedef struct tl_notify_session {
    int graphical;
    /* DBUS_SESSION_BUS_ADDRESS to give the notifier when the environment lacks it; "" if none. */
    char bus[300];
    /* Why there is no session, for the log and `status`; "" when there is one. */
    char why[200];
} tl_notify_session_t;

/* Decides from env alone (pure). */
void tl_notify_session_detect(const tl_notify_env_t *env, tl_notify_session_t *out);
/* The process's own environment (getenv, and a stat of $XDG_RUNTIME_DIR/bus). */
void tl_notify_env_read(tl_notify_env_t *env);

/* ---- texts and argv (pure) ---------------------------------------------------------------- */

/* text with & < > as &amp; &lt; &gt;, into out (clipped at a character boundary to size). */
void tl_notify_markup_escape(char *out, size_t size, const char *text);

/* The notifier programs, in the order they are tried. */
enum tl_notifier { TL_NOTIFIER_NOTIFY_SEND, TL_NOTIFIER_GDBUS, TL_NOTIFIERS };

/*
 * The argv (NULL-terminated, at most TL_NOTIFY_MAX_ARGS entries with the NULL) that shows
 * summary and body with notifier; strings are pointers into storage (size bytes).
 * urgent: a question (critical urgency, stays until dismissed where the server allows).
 * TL_EFULL when storage is too small.
 */
#define TL_NOTIFY_MAX_ARGS 24
/* Storage that always suffices for the longest summary and body. */
#define TL_NOTIFY_ARGV_STORAGE (64 * 1024)
int tl_notify_argv(enum tl_notifier notifier, const char *summary, const char *body, int urgent,
                   char **argv, char *storage, size_t size);

/* ---- the notifier ----------------------------------------------------------------------- */

typedef struct tl_notify tl_notify_t;

typedef struct tl_notify_config {
    uint64_t interval_ms; /* least time between two notifications; 0: none (the gathering only) */
    /* The environment to detect from; NULL: the process's own (read at each notification). */
    const tl_notify_env_t *env;
} tl_notify_config_t;

tl_notify_t *tl_notify_new(uv_loop_t *loop, const tl_notify_config_t *config, int *err);
/*
 * A notice: summary (one line), body and hint (the command that answers it or shows more:
 * "Answer with: tierline-agent attend"), all already escaped (see above); the hint ends the
 * body. urgent: a question that waits for an answer. Merged with others as the rate says: the
 * notification then lists the summaries and each distinct hint once.
 */
void tl_notify_post(tl_notify_t *notify, const char *summary, const char *body, const char *hint,
                    int urgent);
/*
 * How it stands, for `status`: {"session":B,"why":"..."?,"notifier":"notify-send"|"gdbus"|null,
 * "shown":N,"merged":N,"skipped":N,"failed":N,"pending":N,"running":B}.
 */
json_t *tl_notify_state(tl_notify_t *notify);
/* Drops what is pending and stops a notifier still running (released from the loop). NULL is a
 * no-op. */
void tl_notify_free(tl_notify_t *notify);

#endif
