/*
 * Session executors: exec, shell, observe, diag and runbook channels
 * (docs/protocol.md §7.7, docs/consent.md).
 *
 * One struct session per channel handed over by the tunnel. Its life:
 *
 *   started   the process runs; its output is read only while the channel
 *             has send window, at most one read chunk per stream is held
 *             back when the window runs short, and channel data is written
 *             to the process and reported consumed only once written.
 *   finished  the process was reaped and its output drained (or abandoned
 *             LINGER_MS after the exit, when something else keeps the pipe
 *             or terminal open): EOF, then CLOSE with the exit status or
 *             signal. The session waits for the relay's CLOSE.
 *   stopped   the relay closed the channel, the grant ended or the
 *             connection went: the process group gets SIGHUP and, if it is
 *             still there STOP_GRACE_MS later, SIGKILL.
 *   released  the channel is gone and the process reaped: every handle is
 *             closed and the memory freed in the last close callback.
 *
 * Processes are started with fork and execve. Between the two the child
 * makes only async-signal-safe calls (the agent has libuv's threadpool),
 * with every signal blocked across the fork so no handler of the agent's
 * runs in the child. Each child is the leader of a new session, so its
 * process group is its pid and it has no controlling terminal but its own
 * pseudo-terminal (shell). Children are reaped on SIGCHLD with waitpid on
 * each known pid, never waitpid(-1), so other modules' children are left
 * alone.
 *
 * Hidden input (docs/protocol.md §4.7). When the relay takes
 * CHANNEL_INPUT_ACK, a shell tells it, for every byte of input, in order,
 * whether the terminal took it in no-echo line mode (ECHO off, ICANON on: how
 * getpass, PAM, sudo, ssh and `read -s` read a secret) so that the relay
 * records a count instead of the bytes. The mode is read from the master
 * (tcgetattr there reports the terminal's settings on Linux) right before the
 * bytes are written; a write the kernel did not take at once is checked again
 * when it completes, and is hidden if either check says so. Programs that
 * read in raw mode and echo for themselves (shells' line editors, editors)
 * leave ECHO and ICANON off: their input is visible. Hidden bytes are wiped
 * once written and never logged.
 *
 * Observers. An observe channel has no process: each chunk read from a
 * shell of the same ticket is offered to it, as much as its window takes at
 * that moment; the rest is dropped for that observer alone. An observer
 * stays open, watching every shell the ticket opens later too, until its
 * grant ends, the relay closes it or the connection goes.
 */
#include "agent/session.h"

#include "agent/runbooks.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Before SIGKILL follows SIGHUP (or a runbook's SIGTERM). */
#define STOP_GRACE_MS 2000
/* After the process exits, how long its output may stay open without news. */
#define LINGER_MS 2000
/* A diagnostics run that takes longer is stopped. */
#define DIAG_TIMEOUT_MS (5u * 60u * 1000u)

#define FIXED_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ARGV 64
#define MAX_ARG_BYTES 4096
#define MAX_TERM 64
#define MAX_WHAT 256
#define MAX_NOTICE 200

enum kind { KIND_EXEC, KIND_SHELL, KIND_OBSERVE, KIND_DIAG, KIND_RUNBOOK };

static const char *const kind_names[] = {"exec", "shell", "observe", "diag", "runbook"};

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
    bool ack_input; /* a shell whose relay takes CHANNEL_INPUT_ACK */

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
    uint8_t read_buf[TL_SESSION_CHUNK]; /* every read lands here first */
};

/* ---- small helpers ----------------------------------------------------------------------- */

static const struct {
    int number;
    const char *name;
} signal_names[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},   {SIGQUIT, "QUIT"}, {SIGILL, "ILL"},   {SIGTRAP, "TRAP"},
    {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},   {SIGFPE, "FPE"},   {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},
    {SIGSEGV, "SEGV"}, {SIGUSR2, "USR2"}, {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"}, {SIGTERM, "TERM"},
    {SIGXCPU, "XCPU"}, {SIGXFSZ, "XFSZ"}, {SIGSYS, "SYS"},
};

static const char *signal_name(int number)
{
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
        if (signal_names[i].number == number)
            return signal_names[i].name;
    return "UNKNOWN";
}

static void set_message(char *message, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_message(char *message, size_t size, const char *fmt, ...)
{
    if (message == NULL || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, size, fmt, ap);
    va_end(ap);
}

/* Text from the network made safe for the user's terminal: no control bytes, bounded. */
static void append_shown(char *out, size_t out_size, size_t *len, const char *text, size_t max)
{
    size_t i = 0;
    for (; text[i] != '\0' && i < max && *len + 1 < out_size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[(*len)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (text[i] != '\0')
        for (int k = 0; k < 3 && *len + 1 < out_size; k++)
            out[(*len)++] = '.';
    out[*len] = '\0';
}

static char *shown_copy(const char *text, size_t max)
{
    char buf[MAX_WHAT + 8];
    size_t len = 0;
    buf[0] = '\0';
    append_shown(buf, sizeof buf, &len, text, max);
    return strdup(buf);
}

/* "cmd arg 'two words'", for the activity display. */
static char *describe_argv(json_t *argv)
{
    char buf[MAX_WHAT + 8];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(argv) && len < MAX_WHAT; i++) {
        const char *arg = json_string_value(json_array_get(argv, i));
        bool quote = arg[0] == '\0' || strpbrk(arg, " \t\n'\"\\$`;&|<>*?()") != NULL;
        if (i > 0)
            append_shown(buf, sizeof buf, &len, " ", 1);
        if (quote)
            append_shown(buf, sizeof buf, &len, "'", 1);
        append_shown(buf, MAX_WHAT, &len, arg, MAX_WHAT);
        if (quote)
            append_shown(buf, sizeof buf, &len, "'", 1);
    }
    return strdup(buf);
}

static void activity(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void activity(struct session *s, const char *fmt, ...)
{
    tl_sessions_t *owner = s->owner;
    if (owner->events.on_activity == NULL)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    owner->events.on_activity(owner->data, s->grant, text);
}

/* "exit 0", "signal KILL", "timed out, signal TERM". */
static void outcome_text(const struct session *s, char *out, size_t size)
{
    if (WIFSIGNALED(s->wait_status))
        snprintf(out, size, "%ssignal %s", s->timed_out ? "timed out, " : "",
                 signal_name(WTERMSIG(s->wait_status)));
    else
        snprintf(out, size, "%sexit %d", s->timed_out ? "timed out, " : "",
                 WEXITSTATUS(s->wait_status));
}

/* The line the user sees when a session ends; why is the outcome or the reason it stopped. */
static void tell_ended(struct session *s, const char *why)
{
    if (s->ended_told)
        return;
    s->ended_told = true;
    switch (s->kind) {
    case KIND_EXEC:
        activity(s, "%s ran: %s (%s)", s->technician, s->what, why);
        break;
    case KIND_SHELL:
        activity(s, "%s's shell ended (%s)", s->technician, why);
        break;
    case KIND_OBSERVE:
        activity(s, "%s stopped observing (%s)", s->technician, why);
        break;
    case KIND_DIAG:
        activity(s, "%s fetched diagnostics (%s)", s->technician, why);
        break;
    case KIND_RUNBOOK:
        activity(s, "%s ran runbook %s (%s)", s->technician, s->what, why);
        break;
    }
}

static struct session *find_session(const tl_sessions_t *owner, uint32_t channel)
{
    for (struct session *s = owner->list; s != NULL; s = s->next)
        if (s->mux != NULL && s->channel == channel)
            return s;
    return NULL;
}

/* Bytes the channel takes now; 0 once it is closing or gone. */
static size_t window_of(const struct session *s)
{
    if (s->mux == NULL || s->close_sent)
        return 0;
    return tl_mux_send_window(s->mux, s->channel);
}

/* ---- processes ----------------------------------------------------------------------------- */

/* Signals the process group, or the process itself before it made its group. */
static void signal_process(struct session *s, int sig)
{
    if (!s->running || s->pid <= 0)
        return; /* once reaped, the pid may belong to someone else */
    if (kill(-s->pid, sig) != 0 && errno == ESRCH)
        kill(s->pid, sig);
}

static void on_kill_timer(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (s->running)
        tl_log_info("session process killed channel=%u pid=%d", s->channel, (int)s->pid);
    signal_process(s, SIGKILL);
}

/* SIGHUP (or TERM) now, SIGKILL after the grace period. */
static void stop_process(struct session *s, int sig)
{
    if (!s->running || s->stopping)
        return;
    s->stopping = true;
    signal_process(s, sig);
    uv_timer_start(&s->kill_timer, on_kill_timer, STOP_GRACE_MS, 0);
}

/* ---- releasing ----------------------------------------------------------------------------- */

static void on_owner_closed(uv_handle_t *handle);

static void session_destroy(struct session *s)
{
    tl_sessions_t *owner = s->owner;
    for (struct session **p = &owner->list; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    for (int i = 0; i < 2; i++)
        free(s->out[i].held);
    free(s->grant);
    free(s->ticket);
    free(s->technician);
    free(s->what);
    free(s);
    if (owner->freeing && owner->list == NULL)
        uv_close((uv_handle_t *)&owner->sigchld, on_owner_closed);
}

static void handle_closed(struct session *s)
{
    if (--s->handles == 0 && s->releasing)
        session_destroy(s);
}

/* Timers and the input pipe carry the session; output pipes carry their output. */
static void on_handle_closed(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void on_output_closed(uv_handle_t *handle)
{
    struct output *o = handle->data;
    handle_closed(o->session);
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_handle_closed);
}

static void output_close(struct output *o)
{
    o->done = true;
    o->reading = false;
    if (o->open) {
        o->open = false;
        if (!uv_is_closing((uv_handle_t *)&o->pipe))
            uv_close((uv_handle_t *)&o->pipe, on_output_closed);
    }
}

static void output_drop_held(struct output *o)
{
    free(o->held);
    o->held = NULL;
    o->held_len = 0;
    o->held_off = 0;
}

static void input_close(struct session *s)
{
    if (s->input_open) {
        s->input_open = false;
        close_handle((uv_handle_t *)&s->input);
    }
}

/* Closes the process's pipes and drops output not yet sent. */
static void close_streams(struct session *s)
{
    for (int i = 0; i < 2; i++) {
        output_close(&s->out[i]);
        output_drop_held(&s->out[i]);
    }
    input_close(s);
}

/* Frees the session once its channel is gone and its process reaped. */
static void maybe_release(struct session *s)
{
    if (s->releasing || s->mux != NULL || s->running)
        return;
    s->releasing = true;
    close_streams(s);
    close_handle((uv_handle_t *)&s->kill_timer);
    close_handle((uv_handle_t *)&s->deadline_timer);
    close_handle((uv_handle_t *)&s->linger_timer);
}

/* The channel is no longer ours to use: stop the process and drop its pipes. */
static void forget_channel(struct session *s, const char *why)
{
    tell_ended(s, why);
    s->mux = NULL;
    close_streams(s);
    stop_process(s, SIGHUP);
    maybe_release(s);
}

/* ---- output to the channel --------------------------------------------------------------- */

static void on_output_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_output_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void pause_reading(struct session *s)
{
    for (int i = 0; i < 2; i++) {
        struct output *o = &s->out[i];
        if (o->reading) {
            uv_read_stop((uv_stream_t *)&o->pipe);
            o->reading = false;
        }
    }
}

static bool holding(const struct session *s)
{
    return s->out[0].held_len > 0 || s->out[1].held_len > 0;
}

static void resume_reading(struct session *s)
{
    if (holding(s) || window_of(s) == 0)
        return;
    for (int i = 0; i < 2; i++) {
        struct output *o = &s->out[i];
        if (o->open && !o->done && !o->reading) {
            int rc = uv_read_start((uv_stream_t *)&o->pipe, on_output_alloc, on_output_read);
            if (rc == 0)
                o->reading = true;
            else
                tl_log_warn("session read failed channel=%u reason=%s", s->channel,
                            tl_strerror(rc));
        }
    }
}

/* Writes what the window takes; true when nothing is held back any more. */
static bool flush_held(struct session *s)
{
    for (int i = 0; i < 2; i++) {
        struct output *o = &s->out[i];
        if (o->held_len == 0)
            continue;
        size_t written = 0;
        int rc = tl_mux_write(s->mux, s->channel, o->stream, o->held + o->held_off, o->held_len,
                              &written);
        o->held_off += written;
        o->held_len -= written;
        if (rc != 0) {
            tl_log_debug("session output dropped channel=%u reason=%s", s->channel,
                         tl_strerror(rc));
            o->held_len = 0;
        }
        if (o->held_len == 0)
            output_drop_held(o);
    }
    if (!holding(s) && s->notice_len > 0 && window_of(s) >= s->notice_len) {
        size_t written = 0;
        tl_mux_write(s->mux, s->channel, TL_STREAM_STDERR, s->notice, s->notice_len, &written);
        s->notice_len = 0;
    }
    return !holding(s) && s->notice_len == 0;
}

static void on_linger_timer(uv_timer_t *timer);

/* The process is gone and its output drained: EOF and CLOSE with the outcome. */
static void maybe_finish(struct session *s)
{
    if (s->mux == NULL || s->close_sent || s->kind == KIND_OBSERVE || s->running)
        return;
    if (!s->out[0].done || !s->out[1].done) {
        /* Something else (a background job) may hold the output open: give it a while. */
        if (!uv_is_active((uv_handle_t *)&s->linger_timer))
            uv_timer_start(&s->linger_timer, on_linger_timer, LINGER_MS, 0);
        return;
    }
    if (!flush_held(s))
        return; /* on writable */
    uv_timer_stop(&s->linger_timer);
    struct tl_msg_channel_close status = {0};
    if (WIFSIGNALED(s->wait_status)) {
        status.flags = TL_CLOSE_HAS_EXIT_SIGNAL;
        status.exit_signal = tl_str_from(signal_name(WTERMSIG(s->wait_status)));
    } else {
        status.flags = TL_CLOSE_HAS_EXIT_STATUS;
        status.exit_status = WEXITSTATUS(s->wait_status);
    }
    s->close_sent = true;
    input_close(s);
    tl_mux_eof(s->mux, s->channel);
    int rc = tl_mux_close(s->mux, s->channel, &status);
    if (rc != 0)
        tl_log_warn("session close failed channel=%u reason=%s", s->channel, tl_strerror(rc));
    char outcome[64];
    outcome_text(s, outcome, sizeof outcome);
    tl_log_info("session ended channel=%u type=%s outcome=\"%s\"", s->channel, kind_names[s->kind],
                outcome);
    tell_ended(s, outcome);
}

static void on_linger_timer(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (holding(s) || (window_of(s) == 0 && s->mux != NULL && !s->close_sent)) {
        /* The relay is still taking what was there: wait for it, not for the pipe. */
        uv_timer_start(&s->linger_timer, on_linger_timer, LINGER_MS, 0);
        return;
    }
    for (int i = 0; i < 2; i++)
        output_close(&s->out[i]);
    maybe_finish(s);
}

/* Offers a shell's output to the observers of its ticket: what fits now, or nothing. */
static void feed_observers(struct session *shell, const uint8_t *bytes, size_t len)
{
    for (struct session *o = shell->owner->list; o != NULL; o = o->next) {
        if (o->kind != KIND_OBSERVE || o->mux == NULL || o->close_sent ||
            strcmp(o->ticket, shell->ticket) != 0)
            continue;
        size_t room = tl_mux_send_window(o->mux, o->channel);
        size_t take = len < room ? len : room;
        size_t written = 0;
        if (take > 0)
            tl_mux_write(o->mux, o->channel, TL_STREAM_MAIN, bytes, take, &written);
        if (written < len)
            tl_log_debug("observer dropped output channel=%u bytes=%zu", o->channel, len - written);
    }
}

static void on_output_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct output *o = handle->data;
    struct session *s = o->session;
    size_t room = holding(s) ? 0 : window_of(s);
    if (room > TL_SESSION_CHUNK)
        room = TL_SESSION_CHUNK;
    /* A zero-length buffer makes libuv report UV_ENOBUFS: reading pauses there. */
    *buf = uv_buf_init((char *)s->owner->read_buf, (unsigned)room);
}

static void on_output_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct output *o = stream->data;
    struct session *s = o->session;
    if (nread == UV_ENOBUFS) {
        pause_reading(s);
        return;
    }
    if (nread == 0)
        return;
    if (nread < 0) {
        /* A terminal's master reads EIO once every slave side is closed: its EOF. */
        if (nread != UV_EOF && nread != UV_EIO)
            tl_log_warn("session output failed channel=%u reason=%s", s->channel,
                        tl_strerror((int)nread));
        if (s->kind == KIND_SHELL && s->running) {
            /* Closing the master hangs the terminal up: a process that closed its
             * descriptors and is still on its way out would die of SIGHUP and its
             * real exit status be lost. Stop reading; close once it is reaped. */
            uv_read_stop(stream);
            o->reading = false;
            o->done = true;
            maybe_finish(s);
            return;
        }
        output_close(o);
        maybe_finish(s);
        return;
    }
    const uint8_t *bytes = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    if (s->kind == KIND_SHELL)
        feed_observers(s, bytes, len);
    size_t written = 0;
    int rc = s->mux != NULL && !s->close_sent
                 ? tl_mux_write(s->mux, s->channel, o->stream, bytes, len, &written)
                 : TL_ECLOSED;
    if (rc != 0) {
        tl_log_debug("session output dropped channel=%u reason=%s", s->channel, tl_strerror(rc));
        return;
    }
    if (written < len) {
        o->held = malloc(len - written);
        if (o->held == NULL) {
            tl_log_error("session output dropped channel=%u reason=%s", s->channel,
                         tl_strerror(TL_ENOMEM));
        } else {
            memcpy(o->held, bytes + written, len - written);
            o->held_len = len - written;
            o->held_off = 0;
        }
    }
    if (holding(s) || window_of(s) == 0)
        pause_reading(s);
}

/* ---- input from the channel ------------------------------------------------------------- */

static uv_stream_t *input_stream(struct session *s)
{
    if (s->kind == KIND_EXEC && s->input_open)
        return (uv_stream_t *)&s->input;
    if (s->kind == KIND_SHELL && s->out[0].open)
        return (uv_stream_t *)&s->out[0].pipe;
    return NULL;
}

/* Would the terminal take input without echoing it, as a password prompt does? */
static bool terminal_hides_input(struct session *s)
{
    uv_os_fd_t fd;
    struct termios mode;
    if (!s->out[0].open || uv_fileno((uv_handle_t *)&s->out[0].pipe, &fd) != 0 ||
        tcgetattr(fd, &mode) != 0)
        return true; /* cannot tell: never let it be shown */
    return (mode.c_lflag & ICANON) && !(mode.c_lflag & ECHO);
}

/* Tells the relay its next len bytes of input reached the terminal, hidden or not. */
static void ack_input(struct session *s, size_t len, bool hidden)
{
    if (!s->ack_input || s->mux == NULL || s->close_sent || len == 0)
        return;
    int rc = tl_mux_input_ack(s->mux, s->channel, (uint32_t)len, hidden);
    if (rc != 0)
        tl_log_debug("input ack not sent channel=%u reason=%s", s->channel, tl_strerror(rc));
}

/* Input that reaches no process: acknowledged in its turn, after the writes before it. */
static void input_dropped(struct session *s, size_t len, bool hidden)
{
    if (!s->ack_input)
        return;
    if (s->writes_tail != NULL) {
        s->writes_tail->dropped_after += len;
        s->writes_tail->dropped_hidden = s->writes_tail->dropped_hidden || hidden;
        return;
    }
    ack_input(s, len, hidden);
}

static void on_input_written(uv_write_t *req, int status)
{
    struct input_write *w = (struct input_write *)req;
    struct session *s = w->session;
    s->input_writes--;
    w->done = true;
    if (w->recheck && status == 0 && !w->hidden)
        w->hidden = terminal_hides_input(s);
    /* Written or not (the process closed its input), the bytes are handled. */
    if (s->mux != NULL)
        tl_mux_consumed(s->mux, s->channel, w->len);
    if (status < 0 && status != UV_ECANCELED && s->kind == KIND_EXEC)
        input_close(s);
    if (s->input_eof && s->input_writes == 0)
        input_close(s);
    /* Writes on one stream complete in order; acks follow the same order. */
    while (s->writes_head != NULL && s->writes_head->done) {
        struct input_write *head = s->writes_head;
        s->writes_head = head->next;
        if (s->writes_head == NULL)
            s->writes_tail = NULL;
        ack_input(s, head->len, head->hidden);
        ack_input(s, head->dropped_after, head->dropped_hidden);
        if (head->hidden)
            explicit_bzero(head->bytes, head->len);
        free(head);
    }
}

/* ---- starting processes ----------------------------------------------------------------- */

struct strvec {
    char **items;
    size_t count;
    size_t cap;
    bool failed;
};

static void strvec_add(struct strvec *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void strvec_add(struct strvec *v, const char *fmt, ...)
{
    if (v->failed)
        return;
    if (v->count + 2 > v->cap) {
        size_t cap = v->cap == 0 ? 16 : v->cap * 2;
        char **grown = realloc(v->items, cap * sizeof *grown);
        if (grown == NULL) {
            v->failed = true;
            return;
        }
        v->items = grown;
        v->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *item = NULL;
    if (vasprintf(&item, fmt, ap) < 0)
        item = NULL;
    va_end(ap);
    if (item == NULL) {
        v->failed = true;
        return;
    }
    v->items[v->count++] = item;
    v->items[v->count] = NULL;
}

static void strvec_free(struct strvec *v)
{
    for (size_t i = 0; i < v->count; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

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

/* Collects the open descriptors now: the child may not read directories. */
static int collect_fds(struct spawn *sp)
{
    int rc = 0;
    size_t cap = 64;
    sp->fds = malloc(cap * sizeof *sp->fds);
    if (sp->fds == NULL)
        return TL_ENOMEM;
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -errno;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        if (sp->fd_count == cap) {
            int *grown = realloc(sp->fds, cap * 2 * sizeof *grown);
            if (grown == NULL) {
                rc = TL_ENOMEM;
                break;
            }
            sp->fds = grown;
            cap *= 2;
        }
        sp->fds[sp->fd_count++] = atoi(entry->d_name);
    }
    closedir(dir);
    return rc;
}

static void child_write(const char *text)
{
    size_t len = 0;
    while (text[len] != '\0')
        len++;
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

/* In the child: async-signal-safe calls only, then execve. Never returns. */
static void child_run(const struct spawn *sp, bool use_close_range)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    setsid();
    if (sp->terminal)
        ioctl(sp->stdio[0], TIOCSCTTY, 0);
    /* Move the sources above 2 first, so no dup2 lands on a source still needed. */
    int source[3];
    for (int i = 0; i < 3; i++) {
        source[i] = sp->stdio[i];
        if (source[i] < 3)
            source[i] = fcntl(source[i], F_DUPFD_CLOEXEC, 3);
    }
    for (int i = 0; i < 3; i++)
        if (source[i] < 0 || dup2(source[i], i) < 0)
            _exit(126);
    bool closed = false;
#ifdef SYS_close_range
    if (use_close_range)
        closed = syscall(SYS_close_range, 3u, ~0u, 0u) == 0;
#endif
    if (!closed)
        for (size_t i = 0; i < sp->fd_count; i++)
            if (sp->fds[i] >= 3)
                close(sp->fds[i]);
    if (sp->cwd == NULL || chdir(sp->cwd) != 0)
        (void)!chdir("/");
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int error = ENOENT;
    for (size_t i = 0; i < sp->candidates.count; i++) {
        execve(sp->candidates.items[i], sp->argv.items, sp->env.items);
        if (errno != ENOENT && errno != ENOTDIR)
            error = errno;
    }
    child_write("tierline-agent: cannot run ");
    child_write(sp->shown);
    child_write(error == ENOENT    ? ": command not found\n"
                : error == EACCES  ? ": permission denied\n"
                : error == ENOEXEC ? ": not an executable format\n"
                                   : ": cannot be executed\n");
    _exit(error == ENOENT ? 127 : 126);
}

/* Forks and execs; the child's ends in sp->stdio stay open for the caller to close. */
static int spawn_process(tl_sessions_t *owner, struct spawn *sp, pid_t *pid_out)
{
    if (!owner->close_range_works) {
        int rc = collect_fds(sp);
        if (rc != 0)
            return rc;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_run(sp, owner->close_range_works);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -saved;
    *pid_out = pid;
    return 0;
}

static void spawn_clear(struct spawn *sp)
{
    strvec_free(&sp->candidates);
    strvec_free(&sp->argv);
    strvec_free(&sp->env);
    free(sp->fds);
}

/* ---- the session object ----------------------------------------------------------------- */

static struct session *session_new(tl_sessions_t *owner, enum kind kind, tl_mux_t *mux,
                                   uint32_t channel, const tl_session_grant_t *grant)
{
    struct session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->owner = owner;
    s->kind = kind;
    s->mux = mux;
    s->channel = channel;
    s->started_ms = tl_wall_ms();
    s->grant = strdup(grant->id);
    s->ticket = strdup(grant->ticket);
    s->technician = shown_copy(grant->technician, 64);
    if (s->grant == NULL || s->ticket == NULL || s->technician == NULL) {
        free(s->grant);
        free(s->ticket);
        free(s->technician);
        free(s);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        s->out[i].session = s;
        s->out[i].stream = (uint8_t)i;
        s->out[i].done = true; /* until a pipe is attached */
    }
    uv_timer_t *timers[] = {&s->kill_timer, &s->deadline_timer, &s->linger_timer};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(owner->loop, timers[i]);
        timers[i]->data = s;
        s->handles++;
    }
    s->next = owner->list;
    owner->list = s;
    return s;
}

/* Wraps fd (ours, non-blocking from here on) in pipe, one more of s's
 * handles; *open is set once the handle must be closed. Closes fd on failure. */
static int wrap_fd(struct session *s, uv_pipe_t *pipe, void *data, bool *open, int fd)
{
    int rc = uv_pipe_init(s->owner->loop, pipe, 0);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    pipe->data = data;
    s->handles++;
    *open = true;
    rc = uv_pipe_open(pipe, fd);
    if (rc != 0)
        close(fd);
    return rc;
}

/* fd as output stream i of s. */
static int attach_output(struct session *s, int i, int fd)
{
    struct output *o = &s->out[i];
    int rc = wrap_fd(s, &o->pipe, o, &o->open, fd);
    if (rc != 0) {
        output_close(o);
        return rc;
    }
    o->done = false;
    return 0;
}

static int attach_input(struct session *s, int fd)
{
    int rc = wrap_fd(s, &s->input, s, &s->input_open, fd);
    if (rc != 0)
        input_close(s);
    return rc;
}

static void common_env(tl_sessions_t *owner, struct strvec *env, const char *lang)
{
    strvec_add(env, "PATH=%s", FIXED_PATH);
    strvec_add(env, "HOME=%s", owner->home);
    strvec_add(env, "LANG=%s", lang);
}

static void user_env(tl_sessions_t *owner, struct strvec *env)
{
    common_env(owner, env, owner->lang);
    strvec_add(env, "USER=%s", owner->user);
    strvec_add(env, "LOGNAME=%s", owner->user);
    strvec_add(env, "SHELL=%s", owner->shell);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * Starts sp with pipes (exec: stdin too; others read /dev/null) and attaches
 * our ends to s. TL_EIO with a message when the process cannot start.
 */
static int start_with_pipes(struct session *s, struct spawn *sp, bool with_stdin, char *message,
                            size_t message_size)
{
    int rc = 0;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (with_stdin) {
        if (pipe2(in, O_CLOEXEC) != 0) {
            rc = -errno;
            goto out;
        }
    } else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        rc = -errno;
        goto out;
    }
    sp->stdio[0] = in[0];
    sp->stdio[1] = out[1];
    sp->stdio[2] = err[1];
    rc = spawn_process(s->owner, sp, &s->pid);
    if (rc != 0)
        goto out;
    s->running = true;
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    int fd = out[0];
    out[0] = -1;
    int attach = attach_output(s, 0, fd);
    fd = err[0];
    err[0] = -1;
    if (attach == 0)
        attach = attach_output(s, 1, fd);
    else
        close(fd);
    if (with_stdin) {
        fd = in[1];
        in[1] = -1;
        if (attach == 0)
            attach = attach_input(s, fd);
        else
            close(fd);
    }
    if (attach != 0) {
        rc = attach;
        stop_process(s, SIGKILL);
    }
out:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    if (rc != 0) {
        set_message(message, message_size, "the process could not start: %s", tl_strerror(rc));
        rc = rc == TL_ENOMEM ? rc : TL_EIO; /* the reason is in the message */
    }
    return rc;
}

/* ---- the session types -------------------------------------------------------------------- */

static int prepare_exec(tl_sessions_t *owner, json_t *params, struct spawn *sp, char **what,
                        char *message, size_t message_size)
{
    json_t *argv = json_object_get(params, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > MAX_ARGV) {
        set_message(message, message_size, "exec needs \"argv\": an array of 1..%d strings",
                    MAX_ARGV);
        return TL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(argv); i++) {
        json_t *arg = json_array_get(argv, i);
        if (!json_is_string(arg) || json_string_length(arg) > MAX_ARG_BYTES ||
            strlen(json_string_value(arg)) != json_string_length(arg)) {
            set_message(message, message_size,
                        "argv[%zu] must be a string of at most %d bytes without NUL", i,
                        MAX_ARG_BYTES);
            return TL_EINVAL;
        }
    }
    const char *command = json_string_value(json_array_get(argv, 0));
    if (command[0] == '\0') {
        set_message(message, message_size, "argv[0] is empty");
        return TL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(argv); i++)
        strvec_add(&sp->argv, "%s", json_string_value(json_array_get(argv, i)));
    /* The PATH search happens in the child, with execve over these candidates. */
    if (strchr(command, '/') != NULL) {
        strvec_add(&sp->candidates, "%s", command);
    } else {
        const char *dir = FIXED_PATH;
        while (*dir != '\0') {
            size_t len = strcspn(dir, ":");
            strvec_add(&sp->candidates, "%.*s/%s", (int)len, dir, command);
            dir += len + (dir[len] == ':');
        }
    }
    user_env(owner, &sp->env);
    sp->cwd = owner->home;
    *what = describe_argv(argv);
    return *what == NULL ? TL_ENOMEM : 0;
}

static bool valid_term(const char *term)
{
    size_t len = strlen(term);
    if (len == 0 || len > MAX_TERM)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = term[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '+'))
            return false;
    }
    return true;
}

static int size_param(json_t *params, const char *key, unsigned fallback, unsigned *out,
                      char *message, size_t message_size)
{
    json_t *value = json_object_get(params, key);
    *out = fallback;
    if (value == NULL)
        return 0;
    if (!json_is_integer(value) || json_integer_value(value) < 1 ||
        json_integer_value(value) > 1000) {
        set_message(message, message_size, "\"%s\" must be a whole number from 1 to 1000", key);
        return TL_EINVAL;
    }
    *out = (unsigned)json_integer_value(value);
    return 0;
}

static int start_shell(struct session *s, json_t *params, char *message, size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    struct spawn sp = {.stdio = {-1, -1, -1}};
    int master = -1, slave = -1;
    int rc = 0;
    json_t *term = json_object_get(params, "term");
    const char *term_name = "xterm-256color";
    if (term != NULL) {
        if (!json_is_string(term) || !valid_term(json_string_value(term))) {
            set_message(message, message_size,
                        "\"term\" must be a terminal name of 1..%d letters, digits or -_.+",
                        MAX_TERM);
            rc = TL_EINVAL;
            goto out;
        }
        term_name = json_string_value(term);
    }
    unsigned cols, rows;
    if ((rc = size_param(params, "cols", 80, &cols, message, message_size)) != 0 ||
        (rc = size_param(params, "rows", 24, &rows, message, message_size)) != 0)
        goto out;

    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char slave_name[128];
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
        ptsname_r(master, slave_name, sizeof slave_name) != 0 ||
        (slave = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
        rc = -errno;
        set_message(message, message_size, "no pseudo-terminal: %s", tl_strerror(rc));
        goto out;
    }
    struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(master, TIOCSWINSZ, &size);

    const char *base = strrchr(owner->shell, '/');
    base = base != NULL ? base + 1 : owner->shell;
    strvec_add(&sp.candidates, "%s", owner->shell);
    strvec_add(&sp.argv, "-%s", base); /* a login shell, as login(1) starts it */
    user_env(owner, &sp.env);
    strvec_add(&sp.env, "TERM=%s", term_name);
    if (sp.candidates.failed || sp.argv.failed || sp.env.failed) {
        rc = TL_ENOMEM;
        goto out;
    }
    sp.cwd = owner->home;
    sp.shown = owner->shell;
    sp.stdio[0] = sp.stdio[1] = sp.stdio[2] = slave;
    sp.terminal = true;
    rc = spawn_process(owner, &sp, &s->pid);
    if (rc != 0) {
        set_message(message, message_size, "the shell could not start: %s", tl_strerror(rc));
        goto out;
    }
    s->running = true;
    close_fd(&slave);
    int fd = master;
    master = -1;
    rc = attach_output(s, 0, fd);
    if (rc != 0) {
        set_message(message, message_size, "the shell could not start: %s", tl_strerror(rc));
        stop_process(s, SIGKILL);
    }
out:
    close_fd(&master);
    close_fd(&slave);
    spawn_clear(&sp);
    if (rc != 0 && rc != TL_EINVAL && rc != TL_ENOMEM)
        rc = TL_EIO; /* the reason is in the message */
    return rc;
}

static int start_piped(struct session *s, json_t *params, const tl_session_grant_t *grant,
                       char *message, size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    struct spawn sp = {.stdio = {-1, -1, -1}};
    tl_runbook_run_t run = {0};
    int rc = 0;
    bool with_stdin = false;
    switch (s->kind) {
    case KIND_EXEC:
        rc = prepare_exec(owner, params, &sp, &s->what, message, message_size);
        with_stdin = true;
        break;
    case KIND_DIAG:
        if (owner->self_exe == NULL) {
            set_message(message, message_size, "the agent does not know its own program");
            rc = TL_EIO;
            break;
        }
        strvec_add(&sp.candidates, "%s", owner->self_exe);
        strvec_add(&sp.argv, "%s", owner->self_exe);
        strvec_add(&sp.argv, "diag");
        strvec_add(&sp.argv, "--json");
        if (owner->relay != NULL) {
            strvec_add(&sp.argv, "--relay");
            strvec_add(&sp.argv, "%s", owner->relay);
        }
        user_env(owner, &sp.env);
        sp.cwd = owner->home;
        s->timeout_ms = DIAG_TIMEOUT_MS;
        s->what = strdup("diagnostics");
        rc = s->what == NULL ? TL_ENOMEM : 0;
        break;
    case KIND_RUNBOOK: {
        json_t *name = json_object_get(params, "name");
        if (!json_is_string(name)) {
            set_message(message, message_size, "runbook needs \"name\": a runbook's name");
            rc = TL_EINVAL;
            break;
        }
        rc = tl_runbooks_check(owner->catalogue, json_string_value(name),
                               json_object_get(params, "args"), grant->role, geteuid() == 0, &run,
                               message, message_size);
        if (rc != 0)
            break;
        strvec_add(&sp.candidates, "%s", run.path);
        strvec_add(&sp.argv, "%s", run.path);
        /* Nothing from the agent's environment: the fixed four, then the parameters. */
        common_env(owner, &sp.env, "C.UTF-8");
        strvec_add(&sp.env, "TL_AGENT_PID=%d", (int)getpid());
        for (size_t i = 0; i < run.env_count; i++)
            strvec_add(&sp.env, "%s", run.env[i]);
        sp.cwd = owner->home;
        s->timeout_ms = run.timeout_ms;
        s->what = strdup(run.summary);
        rc = s->what == NULL ? TL_ENOMEM : 0;
        break;
    }
    default:
        rc = TL_EINVAL;
        break;
    }
    if (rc == 0 && (sp.candidates.failed || sp.argv.failed || sp.env.failed))
        rc = TL_ENOMEM;
    if (rc == TL_ENOMEM)
        set_message(message, message_size, "%s", tl_strerror(rc));
    if (rc != 0)
        goto out;
    sp.shown = sp.argv.items[0];
    rc = start_with_pipes(s, &sp, with_stdin, message, message_size);
out:
    tl_runbooks_run_release(&run);
    spawn_clear(&sp);
    return rc;
}

static void on_deadline(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (!s->running || s->stopping)
        return;
    s->timed_out = true;
    unsigned seconds = (unsigned)(s->timeout_ms / 1000);
    int len = snprintf(s->notice, sizeof s->notice,
                       "tierline-agent: %s %s timed out after %um%02us; stopping it\n",
                       s->kind == KIND_RUNBOOK ? "runbook" : "session", s->what, seconds / 60,
                       seconds % 60);
    s->notice_len = len < 0                          ? 0
                    : (size_t)len < sizeof s->notice ? (size_t)len
                                                     : sizeof s->notice - 1;
    tl_log_warn("session timed out channel=%u type=%s", s->channel, kind_names[s->kind]);
    if (s->mux != NULL && !s->close_sent)
        flush_held(s);
    stop_process(s, SIGTERM);
}

/* ---- public API ------------------------------------------------------------------------- */

static void on_sigchld(uv_signal_t *handle, int signum)
{
    tl_sessions_t *owner = handle->data;
    struct session *next;
    for (struct session *s = owner->list; s != NULL; s = next) {
        next = s->next;
        if (!s->running)
            continue;
        int status;
        pid_t got = waitpid(s->pid, &status, WNOHANG);
        if (got != s->pid)
            continue;
        s->running = false;
        s->wait_status = status;
        uv_timer_stop(&s->kill_timer);
        uv_timer_stop(&s->deadline_timer);
        if (input_stream(s) == (uv_stream_t *)&s->input)
            input_close(s);
        if (s->kind == KIND_SHELL && s->out[0].done)
            output_close(&s->out[0]); /* the terminal's end, kept open until now */
        maybe_finish(s);
        maybe_release(s);
    }
}

static char *dup_or_null(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

/* The agent's own user: home, login shell and name, looked up once. */
static int load_user(tl_sessions_t *owner, const char *shell_override)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found);
    const char *home = found != NULL && found->pw_dir[0] == '/' ? found->pw_dir : getenv("HOME");
    if (home == NULL || home[0] != '/')
        home = "/";
    const char *shell =
        found != NULL && found->pw_shell[0] == '/' && access(found->pw_shell, X_OK) == 0
            ? found->pw_shell
            : "/bin/sh";
    if (shell_override != NULL)
        shell = shell_override;
    char uid_text[32];
    snprintf(uid_text, sizeof uid_text, "%u", (unsigned)geteuid());
    const char *lang = getenv("LANG");
    if (lang == NULL || lang[0] == '\0' || strlen(lang) > 64 || strpbrk(lang, "\n=") != NULL)
        lang = "C.UTF-8";
    owner->home = strdup(home);
    owner->shell = strdup(shell);
    owner->user = strdup(found != NULL ? found->pw_name : uid_text);
    owner->lang = strdup(lang);
    return owner->home && owner->shell && owner->user && owner->lang ? 0 : TL_ENOMEM;
}

static void owner_free(tl_sessions_t *owner)
{
    tl_runbooks_free(owner->catalogue);
    free(owner->self_exe);
    free(owner->relay);
    free(owner->home);
    free(owner->shell);
    free(owner->user);
    free(owner->lang);
    free(owner);
}

tl_sessions_t *tl_sessions_new(uv_loop_t *loop, const tl_sessions_config_t *config,
                               const tl_sessions_events_t *events, void *data, int *err)
{
    int rc = 0;
    tl_sessions_t *owner = NULL;
    if (loop == NULL) {
        rc = TL_EINVAL;
        goto out;
    }
    owner = calloc(1, sizeof *owner);
    if (owner == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    owner->loop = loop;
    owner->data = data;
    if (events != NULL)
        owner->events = *events;
    rc = load_user(owner, config != NULL ? config->shell : NULL);
    if (rc != 0)
        goto out;
    const char *runbooks_dir = config != NULL ? config->runbooks_dir : NULL;
    char found_dir[PATH_MAX];
    if (runbooks_dir == NULL && tl_runbooks_default_dir(found_dir, sizeof found_dir) == 0)
        runbooks_dir = found_dir;
    if (runbooks_dir != NULL) {
        owner->catalogue = tl_runbooks_load(runbooks_dir, &rc);
        if (owner->catalogue == NULL)
            goto out;
    } else {
        tl_log_warn("no runbook catalogue found; runbooks are unavailable");
    }
    if (config != NULL && config->self_exe != NULL) {
        owner->self_exe = strdup(config->self_exe);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            owner->self_exe = strdup(exe);
        }
    }
    owner->relay = dup_or_null(config != NULL ? config->relay : NULL);
    if ((config != NULL && config->relay != NULL && owner->relay == NULL)) {
        rc = TL_ENOMEM;
        goto out;
    }
#ifdef SYS_close_range
    /* Closing an empty range succeeds exactly when the kernel knows the call. */
    owner->close_range_works = syscall(SYS_close_range, ~0u - 1, ~0u - 1, 0u) == 0;
#endif
    rc = uv_signal_init(loop, &owner->sigchld);
    if (rc != 0)
        goto out;
    owner->sigchld.data = owner;
    rc = uv_signal_start(&owner->sigchld, on_sigchld, SIGCHLD);
    if (rc != 0) {
        /* The handle's memory is the owner's: it goes in the close callback. */
        uv_close((uv_handle_t *)&owner->sigchld, on_owner_closed);
        owner = NULL;
        goto out;
    }
    uv_unref((uv_handle_t *)&owner->sigchld);
out:
    if (rc != 0 && owner != NULL) {
        owner_free(owner);
        owner = NULL;
    }
    if (err != NULL)
        *err = rc;
    return owner;
}

static void on_owner_closed(uv_handle_t *handle)
{
    owner_free(handle->data);
}

void tl_sessions_free(tl_sessions_t *owner)
{
    if (owner == NULL || owner->freeing)
        return;
    owner->freeing = true;
    /* Reaping still needs SIGCHLD: keep the loop running until every child is gone. */
    uv_ref((uv_handle_t *)&owner->sigchld);
    struct session *next;
    for (struct session *s = owner->list; s != NULL; s = next) {
        next = s->next;
        s->mux = NULL;
        signal_process(s, SIGKILL);
        s->stopping = true;
        close_streams(s);
        maybe_release(s);
    }
    /* Otherwise the last session_destroy closes it. */
    if (owner->list == NULL)
        uv_close((uv_handle_t *)&owner->sigchld, on_owner_closed);
}

int tl_sessions_open(tl_sessions_t *owner, tl_mux_t *mux, uint32_t channel, const char *type,
                     json_t *params, const tl_session_grant_t *grant, char *message,
                     size_t message_size)
{
    int rc = 0;
    struct session *s = NULL;
    set_message(message, message_size, "%s", "");
    if (owner == NULL || owner->freeing || mux == NULL || type == NULL || grant == NULL ||
        grant->id == NULL || grant->ticket == NULL || grant->technician == NULL ||
        grant->role == NULL || (params != NULL && !json_is_object(params))) {
        set_message(message, message_size, "bad session request");
        return TL_EINVAL;
    }
    enum kind kind;
    size_t k = 0;
    while (k < sizeof kind_names / sizeof kind_names[0] && strcmp(kind_names[k], type) != 0)
        k++;
    if (k == sizeof kind_names / sizeof kind_names[0]) {
        char shown[80];
        size_t len = 0;
        shown[0] = '\0';
        append_shown(shown, sizeof shown, &len, type, 32);
        set_message(message, message_size, "unknown session type '%s'", shown);
        return TL_EINVAL;
    }
    kind = (enum kind)k;
    if (find_session(owner, channel) != NULL) {
        set_message(message, message_size, "channel %u already has a session", channel);
        return TL_EINVAL;
    }
    s = session_new(owner, kind, mux, channel, grant);
    if (s == NULL) {
        set_message(message, message_size, "%s", tl_strerror(TL_ENOMEM));
        return TL_ENOMEM;
    }
    switch (kind) {
    case KIND_SHELL:
        s->what = strdup("shell");
        rc = s->what == NULL ? TL_ENOMEM : start_shell(s, params, message, message_size);
        break;
    case KIND_OBSERVE:
        s->what = strdup("observe");
        rc = s->what == NULL ? TL_ENOMEM : 0;
        break;
    default:
        rc = start_piped(s, params, grant, message, message_size);
        break;
    }
    s->ack_input = kind == KIND_SHELL && (tl_mux_features(mux) & TL_FEATURE_INPUT_ACK) != 0;
    if (rc == 0) {
        rc = tl_mux_confirm(mux, channel);
        if (rc != 0) {
            set_message(message, message_size, "the channel could not be confirmed: %s",
                        tl_strerror(rc));
            stop_process(s, SIGKILL);
        }
    }
    if (rc != 0) {
        if (rc == TL_ENOMEM && message != NULL && message_size > 0 && message[0] == '\0')
            set_message(message, message_size, "%s", tl_strerror(rc));
        /* Refused: the caller answers; nothing of this session may touch the channel. */
        s->ended_told = true;
        s->mux = NULL;
        maybe_release(s);
        return rc;
    }
    tl_log_info("session started channel=%u type=%s grant=%s pid=%d", channel, type, s->grant,
                (int)s->pid);
    switch (kind) {
    case KIND_EXEC:
        activity(s, "%s is running: %s", s->technician, s->what);
        break;
    case KIND_SHELL:
        activity(s, "%s opened a shell", s->technician);
        break;
    case KIND_OBSERVE:
        activity(s, "%s is observing", s->technician);
        break;
    case KIND_DIAG:
        activity(s, "%s is fetching diagnostics", s->technician);
        break;
    case KIND_RUNBOOK:
        activity(s, "%s is running runbook %s", s->technician, s->what);
        break;
    }
    if (s->timeout_ms > 0)
        uv_timer_start(&s->deadline_timer, on_deadline, s->timeout_ms, 0);
    resume_reading(s);
    return 0;
}

void tl_sessions_data(tl_sessions_t *owner, uint32_t channel, uint8_t stream, const uint8_t *data,
                      size_t len)
{
    struct session *s = find_session(owner, channel);
    if (s == NULL || len == 0)
        return;
    /* Only the main stream is input; the relay sends nothing else to acknowledge. */
    bool hidden = stream == TL_STREAM_MAIN && s->ack_input && terminal_hides_input(s);
    uv_stream_t *input = stream == TL_STREAM_MAIN && !s->input_eof ? input_stream(s) : NULL;
    struct input_write *w = input != NULL ? calloc(1, sizeof *w + len) : NULL;
    if (w == NULL) {
        /* No process input (or no memory): the bytes are handled by dropping them. */
        tl_mux_consumed(s->mux, channel, len);
        if (stream == TL_STREAM_MAIN)
            input_dropped(s, len, hidden);
        return;
    }
    w->session = s;
    w->len = len;
    w->hidden = hidden;
    memcpy(w->bytes, data, len);
    uv_buf_t buf = uv_buf_init((char *)w->bytes, (unsigned)len);
    int rc = uv_write(&w->req, input, &buf, 1, on_input_written);
    if (rc != 0) {
        if (hidden)
            explicit_bzero(w->bytes, len);
        free(w);
        tl_mux_consumed(s->mux, channel, len);
        input_dropped(s, len, hidden);
        if (s->kind == KIND_EXEC)
            input_close(s);
        return;
    }
    /* libuv writes at once when nothing is queued; what the kernel did not take
     * yet goes out later, in whatever mode the terminal is in then. */
    w->recheck = uv_stream_get_write_queue_size(input) > 0;
    if (s->writes_tail != NULL)
        s->writes_tail->next = w;
    else
        s->writes_head = w;
    s->writes_tail = w;
    s->input_writes++;
}

void tl_sessions_eof(tl_sessions_t *owner, uint32_t channel)
{
    struct session *s = find_session(owner, channel);
    if (s == NULL || s->kind != KIND_EXEC)
        return; /* a terminal has no end of input; the shell ends with exit */
    s->input_eof = true;
    if (s->input_writes == 0)
        input_close(s);
}

void tl_sessions_writable(tl_sessions_t *owner, uint32_t channel)
{
    struct session *s = find_session(owner, channel);
    if (s == NULL || s->close_sent)
        return;
    if (flush_held(s))
        resume_reading(s);
    maybe_finish(s);
}

void tl_sessions_closed(tl_sessions_t *owner, uint32_t channel)
{
    struct session *s = find_session(owner, channel);
    if (s == NULL)
        return;
    if (!s->close_sent)
        tl_log_info("session closed by the relay channel=%u type=%s", channel, kind_names[s->kind]);
    forget_channel(s, "closed by the technician");
}

void tl_sessions_resize(tl_sessions_t *owner, uint32_t channel, unsigned cols, unsigned rows)
{
    struct session *s = find_session(owner, channel);
    if (s == NULL || s->kind != KIND_SHELL || !s->out[0].open || cols < 1 || cols > 1000 ||
        rows < 1 || rows > 1000)
        return;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->out[0].pipe, &fd) != 0)
        return;
    struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(fd, TIOCSWINSZ, &size) != 0)
        tl_log_warn("terminal resize failed channel=%u reason=\"%s\"", channel, strerror(errno));
}

size_t tl_sessions_end_grant(tl_sessions_t *owner, const char *grant)
{
    size_t ended = 0;
    if (owner == NULL || grant == NULL)
        return 0;
    for (struct session *s = owner->list; s != NULL; s = s->next) {
        if (s->mux == NULL || s->close_sent || strcmp(s->grant, grant) != 0)
            continue;
        stop_process(s, SIGHUP);
        close_streams(s);
        s->notice_len = 0;
        s->close_sent = true;
        tl_mux_eof(s->mux, s->channel);
        struct tl_msg_channel_close status = {.flags = TL_CLOSE_HAS_EXIT_SIGNAL,
                                              .exit_signal = TL_STR("HUP")};
        int rc = tl_mux_close(s->mux, s->channel, &status);
        if (rc != 0)
            tl_log_warn("session close failed channel=%u reason=%s", s->channel, tl_strerror(rc));
        tell_ended(s, "the grant ended");
        ended++;
    }
    return ended;
}

void tl_sessions_disconnected(tl_sessions_t *owner)
{
    if (owner == NULL)
        return;
    struct session *next;
    for (struct session *s = owner->list; s != NULL; s = next) {
        next = s->next;
        if (s->mux != NULL)
            forget_channel(s, "the connection to the relay was lost");
    }
}

json_t *tl_sessions_list(const tl_sessions_t *owner, const char *grant)
{
    json_t *list = json_array();
    if (list == NULL || owner == NULL)
        return list;
    for (const struct session *s = owner->list; s != NULL; s = s->next) {
        if (s->mux == NULL || (grant != NULL && strcmp(s->grant, grant) != 0))
            continue;
        json_t *item = json_pack("{s:I, s:s, s:I, s:s}", "channel", (json_int_t)s->channel, "type",
                                 kind_names[s->kind], "started_ms", (json_int_t)s->started_ms,
                                 "what", s->what);
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *tl_sessions_runbooks(const tl_sessions_t *owner)
{
    return tl_runbooks_list(owner != NULL ? owner->catalogue : NULL);
}

int tl_sessions_runbook_preview(const tl_sessions_t *owner, json_t **runbook, const char *role,
                                char *message, size_t message_size)
{
    tl_runbook_run_t run = {0};
    json_t *shown = NULL, *args = NULL;
    int rc = tl_runbooks_check(owner != NULL ? owner->catalogue : NULL,
                               json_string_value(json_object_get(*runbook, "name")),
                               json_object_get(*runbook, "args"), role, geteuid() == 0, &run,
                               message, message_size);
    if (rc != 0)
        goto out;
    /* The values as they will be passed: TL_PARAM_NAME=VALUE, in the catalogue's order. */
    args = json_object();
    for (size_t i = 0; args != NULL && i < run.env_count; i++) {
        const char *entry = run.env[i] + strlen("TL_PARAM_");
        const char *equals = strchr(entry, '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(equals - entry), entry);
        if (json_object_set_new(args, name, json_string(equals + 1)) != 0) {
            json_decref(args);
            args = NULL;
        }
    }
    shown = args == NULL ? NULL
                         : json_pack("{s:s, s:s, s:b, s:o}", "name", run.name, "description",
                                     tl_runbook_description(run.runbook), "privileged",
                                     run.privileged, "args", args);
    if (shown == NULL) {
        rc = TL_ENOMEM;
        set_message(message, message_size, "%s", tl_strerror(rc));
        goto out;
    }
    json_decref(*runbook);
    *runbook = shown;
out:
    tl_runbooks_run_release(&run);
    return rc;
}

size_t tl_sessions_count(const tl_sessions_t *owner)
{
    size_t count = 0;
    for (const struct session *s = owner != NULL ? owner->list : NULL; s != NULL; s = s->next)
        count++;
    return count;
}

size_t tl_sessions_held_bytes(const tl_sessions_t *owner)
{
    size_t bytes = 0;
    for (const struct session *s = owner != NULL ? owner->list : NULL; s != NULL; s = s->next)
        bytes += s->out[0].held_len + s->out[1].held_len + s->notice_len;
    return bytes;
}
