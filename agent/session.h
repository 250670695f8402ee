/*
 * What runs on the user's machine for a technician: the agent's end of the
 * session channels the relay opens (docs/protocol.md §7.7) — exec, shell,
 * observe, diag and runbook — and the `file` channels, which
 * agent/files_channel.h serves (tl_sessions_open hands them over and routes
 * their events).
 *
 * Division of labour. The tunnel (agent/tunnel.c) receives the channel
 * open, and the consent module (agent/consent.h) decides whether the grant
 * allows it: live, same technician, scope granted. Only then does the
 * tunnel hand the channel to tl_sessions_open(), which validates the
 * type-specific parameters (argv, terminal size, runbook name and
 * arguments), starts the process, confirms the channel and from then on
 * owns it: it pumps the process's output into the channel within the
 * relay's window, feeds channel data to the process, and closes the channel
 * with the exit status or signal. The tunnel forwards the channel's events
 * (data, eof, writable, close) for channels it handed over, which it marks
 * with tl_mux_set_data(mux, channel, sessions-owned pointer).
 *
 * Processes are started with fork+exec (shell: on a new pseudo-terminal,
 * its own session and controlling terminal) and reaped through libuv; the
 * child closes every descriptor but its stdio. Output is read only while
 * the channel has window, so a relay that stops reading stops only that
 * process's output, and the agent's memory per channel stays bounded.
 * agent/session_int.h lists the module's files and what each holds.
 */
#ifndef TL_SESSION_H
#define TL_SESSION_H

#include "agent/files_channel.h"
#include "proto/mux.h"
#include "proto/runbooks.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tl_sessions tl_sessions_t;

/* The part of a grant a session needs (agent/consent.h owns the record). */
typedef struct tl_session_grant {
    const char *id;         /* "G-3" */
    const char *ticket;     /* "T-42" */
    const char *technician; /* "alice" */
    const char *role;       /* "tier1".."tier4" */
    bool push;              /* files: the user allowed copying to the machine too */
} tl_session_grant_t;

typedef struct tl_sessions_config {
    const char *runbooks_dir; /* the catalogue (docs/consent.md "Runbooks"); NULL: the
                                 default one (tl_runbooks_default_dir), or none */
    const char *self_exe;     /* this program, run as `SELF diag --json` for diag channels */
    const char *relay;        /* "host:port", passed as `diag --relay` (NULL: no relay check) */
    const char *shell;        /* shell channels' program; NULL: the agent user's login shell */
    tl_file_limits_t files;   /* file channels' limits (agent/files_channel.h); 0: defaults */
} tl_sessions_config_t;

typedef struct tl_sessions_events {
    /*
     * Something happened that the user should see in attended mode: "alice
     * opened a shell", "alice ran: systemctl status cups (exit 0)". grant is
     * the grant's id.
     */
    void (*on_activity)(void *data, const char *grant, const char *text);
} tl_sessions_events_t;

/* NULL with *err set (TL_ENOMEM, or the catalogue's error: see tl_runbooks_load). */
tl_sessions_t *tl_sessions_new(uv_loop_t *loop, const tl_sessions_config_t *config,
                               const tl_sessions_events_t *events, void *data, int *err);
/*
 * Kills every process (SIGKILL), closes nothing on the wire; frees from the
 * loop: the memory goes once every child is reaped, so keep running the loop.
 */
void tl_sessions_free(tl_sessions_t *sessions);
/*
 * Runbooks come from catalogue from now on (taken over). The one before is kept until the
 * sessions are freed: a runbook running now keeps what it was started with.
 */
void tl_sessions_replace_runbooks(tl_sessions_t *sessions, tl_runbooks_t *catalogue);

/*
 * A channel the relay opened on mux, of a session type ("exec", "shell",
 * "observe", "diag", "runbook"), already allowed by grant. Returns 0 when
 * the session started and the channel was confirmed; otherwise a negative
 * error (TL_EINVAL bad parameters or unknown type, TL_EDENIED a runbook
 * above the grant's role or privileged where the agent is not root,
 * TL_ENOTFOUND no such runbook, TL_EIO the process could not start,
 * TL_ENOMEM) with a one-line reason in message, and the caller refuses the
 * channel with them. The child is started without waiting for its exec: an
 * exec whose command is missing is accepted and ends with exit status 127
 * and the reason on stderr, as a shell would.
 */
int tl_sessions_open(tl_sessions_t *sessions, tl_mux_t *mux, uint32_t channel, const char *type,
                     json_t *params, const tl_session_grant_t *grant, char *message,
                     size_t message_size);

/* Channel events for channels tl_sessions_open() accepted. */
void tl_sessions_data(tl_sessions_t *sessions, uint32_t channel, uint8_t stream,
                      const uint8_t *data, size_t len);
void tl_sessions_eof(tl_sessions_t *sessions, uint32_t channel);
void tl_sessions_writable(tl_sessions_t *sessions, uint32_t channel);
/* The channel is gone (both CLOSEs); the process, if still running, gets SIGHUP then SIGKILL. */
void tl_sessions_closed(tl_sessions_t *sessions, uint32_t channel);
/* session.resize for a channel with a terminal (a shell, an exec with "pty"); others ignored. */
void tl_sessions_resize(tl_sessions_t *sessions, uint32_t channel, unsigned cols, unsigned rows);
/*
 * session.signal: sig (one of tl_session_signal_number()'s) to the process
 * group of the session on channel, if it is one with a process still
 * running (exec, shell, runbook). Returns 0 when it was sent, TL_ENOTFOUND
 * for no such session or no process, TL_EINVAL for another signal.
 */
int tl_sessions_signal(tl_sessions_t *sessions, uint32_t channel, int sig);

/*
 * The grant ended: every session under it is stopped (SIGHUP, SIGKILL after
 * 2 s) and its channel closed with exit signal "HUP". Returns how many
 * sessions it ended.
 */
size_t tl_sessions_end_grant(tl_sessions_t *sessions, const char *grant);
/* The connection is gone (mux about to be freed): stop every process, forget every channel. */
void tl_sessions_disconnected(tl_sessions_t *sessions);

/* Open sessions under a grant, for `tierline-agent sessions`: a JSON array of
 * {"channel":N,"type":"shell","started_ms":...,"what":"..."}; new reference. */
json_t *tl_sessions_list(const tl_sessions_t *sessions, const char *grant);

/*
 * The catalogue as the runbooks.list answer's "runbooks" array
 * (protocol.md §7.9); new reference.
 */
json_t *tl_sessions_runbooks(const tl_sessions_t *sessions);

/*
 * A fix asked for with its runbook (protocol.md §7.6): *runbook is the
 * request's {"name":..., "args":{...}}, checked against the catalogue for a
 * technician of role exactly as the runbook channel will be, before anyone
 * is asked. On success *runbook is replaced by what the question shows:
 * {"name", "description", "privileged", "args": {NAME: VALUE, ...} in the
 * catalogue's order}. Otherwise the error and message of tl_runbooks_check
 * (TL_ENOTFOUND, TL_EDENIED, TL_EINVAL), and *runbook is left as it was.
 */
int tl_sessions_runbook_preview(const tl_sessions_t *sessions, json_t **runbook, const char *role,
                                char *message, size_t message_size);

/*
 * Output bytes one stream may hold back while its channel has no window: one
 * read. A session never holds more than two of these (stdout and stderr).
 */
#define TL_SESSION_CHUNK (64u * 1024u)

/* Sessions alive: with a channel, or still stopping a process. */
size_t tl_sessions_count(const tl_sessions_t *sessions);
/* Process output read and waiting for window, over every session. */
size_t tl_sessions_held_bytes(const tl_sessions_t *sessions);

#endif
