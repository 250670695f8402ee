/*
 * The sessions module's insides, shared by its files and by nothing else
 * (agent/session.h is its interface):
 *
 *   session.c          the session table: tl_sessions_new/free, opening a
 *                      channel's session, its end (EOF and CLOSE with the
 *                      outcome, stopping the process, releasing), reaping on
 *                      SIGCHLD, and the channel events the tunnel forwards
 *   session_start.c    what each session type runs: parameters checked, the
 *                      command, environment and pipes or pseudo-terminal made
 *                      ready, the runbook catalogue asked
 *   session_spawn.c    fork and execve; the code between them is
 *                      async-signal-safe
 *   session_pump.c     the bytes: process output into the channel within its
 *                      window, channel input into the process, hidden input
 *   session_observe.c  observers: a ticket's shells' output offered to them
 */
#ifndef TL_SESSION_INT_H
#define TL_SESSION_INT_H

#include "proto/runbooks.h"
#include "agent/session.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes kept of a command line or a name as the user is shown it. */
#define MAX_WHAT 256
/* Bytes of the notice said on stderr before a close (a runbook's timeout). */
#define MAX_NOTICE 200

enum kind { KIND_EXEC, KIND_SHELL, KIND_OBSERVE, KIND_DIAG, KIND_RUNBOOK };

struct session;

/* One output of the process: stdout, stderr, or the terminal's master side. */
struct output {
    struct session *session;
    uv_pipe_t pipe;
    uint8_t stream;
    bool open;     /* the handle is initialised and not yet closing */
    bool reading;  /* uv_read_start is in effect */
    bool done;     /* EOF, an error, or abandoned: nothing more comes */
    uint8_t *held; /* read but not yet taken by the channel (at most one chunk) */
    size_t held_off;
    size_t held_len;
};

struct input_write {
    uv_write_t req;
    struct session *session;
    struct input_write *next; /* writes in the order made: acks go out in that order */
    size_t len;
    bool hidden;  /* the terminal took them with echo off */
    bool recheck; /* not all written at once: the mode is read again at the end */
    bool done;
    size_t dropped_after; /* input dropped behind this write, acknowledged after it */
    bool dropped_hidden;
    uint8_t bytes[];
};

struct session {
    tl_sessions_t *owner;
    struct session *next;
    enum kind kind;
    uint32_t channel;
    tl_mux_t *mux;   /* NULL once the channel is gone or the connection went */
    bool close_sent; /* our EOF and CLOSE are out */
    bool ended_told; /* the user saw the "... ended" line */
    bool releasing;
    char *grant;
    char *ticket;
    char *technician; /* as shown to the user */
    char *what;       /* "systemctl status cups", "restart-service SERVICE=cups" */
    int64_t started_ms;
    uint64_t timeout_ms; /* runbook and diag: stopped after this long */

    pid_t pid;
    bool running; /* started and not yet reaped */
    int wait_status;
    bool stopping; /* a stop signal went out; SIGKILL follows */
    bool timed_out;

    struct output out[2];
    uv_pipe_t input; /* exec: the child's stdin */
    bool input_open;
    bool input_eof; /* the relay sent EOF: close stdin once the writes are done */
    size_t input_writes;
    struct input_write *writes_head, *writes_tail;
    bool terminal;  /* runs on a pseudo-terminal (a shell, an exec with "pty"): out[0] is its master
                     */
    bool ack_input; /* a terminal whose relay takes CHANNEL_INPUT_ACK */

    char notice[MAX_NOTICE]; /* said on stderr before the close (a runbook's timeout) */
    size_t notice_len;

    uv_timer_t kill_timer;
    uv_timer_t deadline_timer;
    uv_timer_t linger_timer;
    int handles; /* initialised handles not yet through their close callback */
};

struct tl_sessions {
    uv_loop_t *loop;
    tl_sessions_events_t events;
    void *data;
    tl_runbooks_t *catalogue;
    tl_runbooks_t **retired; /* catalogues replaced, freed with the sessions */
    size_t retired_count;
    char *self_exe;
    char *relay;
    char *home;
    char *shell;
    char *user;
    char *lang;
    uv_signal_t sigchld;
    bool freeing;
    bool close_range_works;
    struct session *list;
    tl_file_channels_t *files;          /* `file` channels (agent/files_channel.h) */
    uint8_t read_buf[TL_SESSION_CHUNK]; /* every read lands here first */
};

/* ---- session.c ---------------------------------------------------------------------------- */

/* Text from the network made safe for the user's terminal: no control bytes, bounded. */
void tl__session_append_shown(char *out, size_t out_size, size_t *len, const char *text,
                              size_t max);
/* Bytes the channel takes now; 0 once it is closing or gone. */
size_t tl__session_window(const struct session *s);
/* SIGHUP (or TERM) now, SIGKILL after the grace period. */
void tl__session_stop_process(struct session *s, int sig);
/* The process is gone and its output drained: EOF and CLOSE with the outcome. */
void tl__session_maybe_finish(struct session *s);
void tl__output_close(struct output *o);
void tl__output_drop_held(struct output *o);
void tl__input_close(struct session *s);

/* ---- session_start.c ---------------------------------------------------------------------- */

/* The agent's own user: home, login shell and name, looked up once. */
int tl__session_load_user(tl_sessions_t *owner, const char *shell_override);
/* A shell on a new pseudo-terminal; TL_EINVAL, TL_ENOMEM or TL_EIO with message. */
int tl__start_shell(struct session *s, json_t *params, char *message, size_t message_size);
/* exec (on a pseudo-terminal when its params hold "pty"), diag or runbook on pipes; errors as
 * tl_sessions_open() names them, with message. */
int tl__start_piped(struct session *s, json_t *params, const tl_session_grant_t *grant,
                    char *message, size_t message_size);

/* ---- session_spawn.c ---------------------------------------------------------------------- */

/* A NULL-terminated array of strings built with printf formats; failed once memory ran out. */
struct strvec {
    char **items;
    size_t count;
    size_t cap;
    bool failed;
};

void tl__strvec_add(struct strvec *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl__strvec_free(struct strvec *v);

/* What one child needs; everything is prepared before fork. */
struct spawn {
    struct strvec candidates; /* paths tried with execve, in order (a PATH search) */
    struct strvec argv;
    struct strvec env;
    const char *cwd;
    const char *shown; /* the command as named, for the child's error line */
    int stdio[3];      /* the child's ends (pty: the slave three times) */
    bool terminal;     /* stdio is a terminal to make the controlling one */
    int *fds;          /* open descriptors, when close_range is missing */
    size_t fd_count;
};

/* Whether this kernel has close_range(2); asked once, at tl_sessions_new. */
bool tl__spawn_close_range_works(void);
/* Forks and execs; the child's ends in sp->stdio stay open for the caller to close. */
int tl__spawn_process(struct spawn *sp, bool use_close_range, pid_t *pid_out);
void tl__spawn_clear(struct spawn *sp);

/* ---- session_pump.c ----------------------------------------------------------------------- */

/* Output read and not yet taken by the channel. */
bool tl__pump_holding(const struct session *s);
/* Starts reading the process's output again if the channel has window and nothing is held. */
void tl__pump_resume_reading(struct session *s);
/* Writes what the window takes; true when nothing is held back any more. */
bool tl__pump_flush_held(struct session *s);
/* Where channel input goes: exec's stdin, a shell's terminal, or nowhere (NULL). */
uv_stream_t *tl__pump_input_stream(struct session *s);
/* Channel data for the process (tl_sessions_data). */
void tl__pump_input(struct session *s, uint8_t stream, const uint8_t *data, size_t len);

/* ---- session_observe.c -------------------------------------------------------------------- */

/* An observe channel: no process; it watches its ticket's shells. */
int tl__observe_start(struct session *s);
/* Offers a shell's output to the observers of its ticket: what fits now, or nothing. */
void tl__observe_feed(struct session *shell, const uint8_t *bytes, size_t len);

#endif
