/*
 * The SSH front end's session channels (relay/net/ssh_front.h): each one is
 * a tl_exec_t, and this file implements relay/net/exec.h on it. libssh's
 * channel callbacks only record what the client asked (a PTY, a window
 * change, an exec or a shell, input, EOF, CLOSE) and queue the connection;
 * tl__exec_service(), called from the connection's service on the loop,
 * dispatches the command (relay/net/exec_split.c splits its line), offers it
 * the client's input, sends its queued output within the client's window
 * and ends the channel as sshd does. ssh_front.c explains the rules.
 */
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "proto/vocab.h"
#include "relay/net/ssh_front_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output is queued in chunks of at least this size. */
#define CHUNK_MIN (64u * 1024u)
/* Session channels open at once on one connection (OpenSSH multiplexing opens several). */
#define MAX_CHANNELS 8
/* An input buffer larger than this is freed once the command has taken all of it. */
#define INPUT_KEEP (64u * 1024u)
/*
 * libssh keeps data a client sends past its window; more than this held for
 * one channel (two windows and then some) means a client that ignores flow
 * control, and ends its connection.
 */
#define INPUT_HARD_CAP (4u * 1024u * 1024u)
/* Input offered to one command per wake-up, so a fast typist of 10 MiB cannot starve the loop. */
#define INPUT_BUDGET (256u * 1024u)
/* Terminal sizes are clamped to this (docs/protocol.md §7.7 takes 1..1000 columns and rows). */
#define MAX_TERMINAL_SIZE 1000

/* A login the audit log could not record lets nothing run (fail closed). */
static const char LOGIN_NOT_RECORDED[] =
    "refused: your login could not be written to the audit log, so the relay runs nothing for it "
    "(an administrator sees why with `tierline-relay status`)";

static const char USAGE[] = "usage: ssh [-p PORT] NAME@RELAY COMMAND [ARGS...]; the relay has "
                            "no shell of its own: for a shell on a machine use "
                            "`ssh -t NAME@RELAY join T-N` (try: help)";

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* ---- output queue ------------------------------------------------------------------------- */

static int queue_output(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    if (len > TL_EXEC_MAX_BUFFERED - exec->buffered)
        return TL_EFULL;
    struct chunk *tail = exec->tail;
    size_t into_tail = 0;
    if (tail != NULL && tail->stream == stream)
        into_tail = len < tail->size - tail->end ? len : tail->size - tail->end;
    size_t rest = len - into_tail;
    struct chunk *fresh = NULL;
    if (rest > 0) {
        size_t size = rest > CHUNK_MIN ? rest : CHUNK_MIN;
        if (exec->spare != NULL && exec->spare->size >= size) {
            fresh = exec->spare;
            exec->spare = NULL;
        } else {
            fresh = malloc(sizeof *fresh + size);
            if (fresh == NULL)
                return TL_ENOMEM;
            fresh->size = size;
        }
        fresh->next = NULL;
        fresh->start = 0;
        fresh->end = rest;
        fresh->stream = stream;
        memcpy(fresh->data, bytes + into_tail, rest);
    }
    if (into_tail > 0) {
        memcpy(tail->data + tail->end, bytes, into_tail);
        tail->end += into_tail;
    }
    if (fresh != NULL) {
        if (exec->tail != NULL)
            exec->tail->next = fresh;
        else
            exec->head = fresh;
        exec->tail = fresh;
    }
    exec->buffered += len;
    if (exec->buffered >= TL_EXEC_HIGH_WATER)
        exec->above_high_water = 1;
    return 0;
}

/*
 * What a terminal's ONLCR does, for commands that print lines to a client
 * that asked for a PTY: every "\n" goes out as "\r\n". All or nothing, like
 * queue_output: the cap applies to the bytes as sent.
 */
static int queue_output_onlcr(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    size_t newlines = 0;
    for (const uint8_t *p = bytes; (p = memchr(p, '\n', len - (size_t)(p - bytes))) != NULL; p++)
        newlines++;
    if (newlines == 0)
        return queue_output(exec, stream, data, len);
    size_t expanded = len + newlines;
    if (expanded > TL_EXEC_MAX_BUFFERED - exec->buffered)
        return TL_EFULL;
    uint8_t *out = malloc(expanded);
    if (out == NULL)
        return TL_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == '\n')
            out[used++] = '\r';
        out[used++] = bytes[i];
    }
    int rc = queue_output(exec, stream, out, used);
    free(out);
    return rc;
}

static void consume_output(tl_exec_t *exec, size_t len)
{
    struct chunk *head = exec->head;
    head->start += len;
    exec->buffered -= len;
    exec->bytes_sent += len;
    exec->conn->last_activity = uv_now(exec->conn->front->loop);
    if (head->start < head->end)
        return;
    exec->head = head->next;
    if (exec->head == NULL)
        exec->tail = NULL;
    if (exec->spare == NULL && head->size == CHUNK_MIN)
        exec->spare = head; /* a streaming command reuses it: no malloc per chunk */
    else
        free(head);
}

static void free_output(tl_exec_t *exec)
{
    while (exec->head != NULL) {
        struct chunk *next = exec->head->next;
        free(exec->head);
        exec->head = next;
    }
    exec->tail = NULL;
    free(exec->spare);
    exec->spare = NULL;
    exec->buffered = 0;
}

/* ---- captured output, for the web view (tl_exec_capture_new) --------------------------------- */

struct tl__exec_capture {
    tl_buf_t *out, *err; /* each capped at max_output; their sum is checked on write */
    size_t max_output;
    tl_exec_captured_fn done;
    void *data;
};

tl_exec_t *tl_exec_capture_new(const tl_technician_t *technician, size_t max_output,
                               tl_exec_captured_fn done, void *data)
{
    tl_exec_t *exec = calloc(1, sizeof *exec);
    struct tl__exec_capture *capture = calloc(1, sizeof *capture);
    if (exec == NULL || capture == NULL)
        goto fail;
    capture->out = tl_buf_new(max_output);
    capture->err = tl_buf_new(max_output);
    if (capture->out == NULL || capture->err == NULL)
        goto fail;
    capture->max_output = max_output;
    capture->done = done;
    capture->data = data;
    exec->capture = capture;
    exec->technician = *technician;
    exec->state = EXEC_RUNNING;
    exec->dispatched = 1;
    return exec;
fail:
    if (capture != NULL) {
        tl_buf_free(capture->out);
        tl_buf_free(capture->err);
    }
    free(capture);
    free(exec);
    return NULL;
}

static int capture_write(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    struct tl__exec_capture *capture = exec->capture;
    if (exec->finished)
        return TL_EINVAL;
    if (tl_buf_len(capture->out) + tl_buf_len(capture->err) + len > capture->max_output)
        return TL_EFULL;
    return tl_buf_put(stream == TL_EXEC_STDOUT ? capture->out : capture->err, data, len);
}

static void capture_finish(tl_exec_t *exec, int exit_status)
{
    struct tl__exec_capture *capture = exec->capture;
    if (exec->finished)
        return;
    exec->finished = 1;
    capture->done(capture->data, exit_status, capture->out, capture->err);
    tl_buf_free(capture->out);
    tl_buf_free(capture->err);
    free(capture);
    free(exec);
}

/* ---- the exec API (relay/net/exec.h) ----------------------------------------------------------
 */

const tl_technician_t *tl_exec_technician(const tl_exec_t *exec)
{
    return &exec->technician;
}

int tl_exec_write(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    if (stream != TL_EXEC_STDOUT && stream != TL_EXEC_STDERR)
        return TL_EINVAL;
    if (exec->capture != NULL)
        return capture_write(exec, stream, data, len);
    if (exec->aborted || exec->channel_gone || exec->conn->closing)
        return TL_ECLOSED;
    if (exec->finished)
        return TL_EINVAL;
    if (len == 0)
        return 0;
    int rc = exec->pty.requested && !exec->raw ? queue_output_onlcr(exec, stream, data, len)
                                               : queue_output(exec, stream, data, len);
    if (rc == 0)
        tl__ssh_queue_service(exec->conn);
    return rc;
}

int tl_exec_printf(tl_exec_t *exec, int stream, const char *fmt, ...)
{
    char small[512];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (len < 0)
        return TL_EINVAL;
    if ((size_t)len < sizeof small)
        return tl_exec_write(exec, stream, small, (size_t)len);
    char *big = malloc((size_t)len + 1);
    if (big == NULL)
        return TL_ENOMEM;
    va_start(args, fmt);
    vsnprintf(big, (size_t)len + 1, fmt, args);
    va_end(args);
    int rc = tl_exec_write(exec, stream, big, (size_t)len);
    free(big);
    return rc;
}

size_t tl_exec_buffered(const tl_exec_t *exec)
{
    /* Captured output is kept whole: its producer never waits. */
    if (exec->capture != NULL)
        return 0;
    return exec->buffered;
}

void tl_exec_finish(tl_exec_t *exec, int exit_status)
{
    if (exec->capture != NULL) {
        capture_finish(exec, exit_status);
        return;
    }
    if (exec->aborted)
        return;
    if (exec->finished) {
        tl_log_warn("ssh exec finished twice user=%s command=%.64s", exec->technician.name,
                    exec->argv[0] ? exec->argv[0] : "-");
        return;
    }
    exec->finished = 1;
    exec->exit_status = exit_status;
    if (exec->state == EXEC_RUNNING)
        exec->state = EXEC_FINISHING;
    tl__ssh_queue_service(exec->conn);
}

void tl_exec_resume_input(tl_exec_t *exec)
{
    if (exec->capture != NULL)
        return; /* no input */
    exec->input_paused = 0;
    exec->input_resumed = 1;
    tl__ssh_queue_service(exec->conn);
}

const tl_exec_pty_t *tl_exec_pty(const tl_exec_t *exec)
{
    return &exec->pty;
}

void tl_exec_set_raw(tl_exec_t *exec)
{
    exec->raw = 1;
}

void tl_exec_set_callbacks(tl_exec_t *exec, const tl_exec_callbacks_t *callbacks, void *data)
{
    exec->callbacks = callbacks;
    exec->callbacks_data = data;
}

/* ---- channel callbacks (libssh; record and queue only) ------------------------------------ */

/* 1 while client input must be kept for the command (or until we know whether it reads). */
static int exec_keeps_input(const tl_exec_t *exec)
{
    if (exec->channel_gone || exec->aborted || exec->finished)
        return 0;
    if (exec->state == EXEC_IDLE || exec->state == EXEC_PENDING)
        return 1; /* not dispatched yet: the command may want it */
    return exec->state == EXEC_RUNNING && exec->callbacks != NULL &&
           exec->callbacks->on_input != NULL;
}

/*
 * libssh hands over the whole channel buffer each time data arrives and
 * drops from it what the return value says was consumed; the client's
 * window grows only for consumed bytes. Input for a command is left there
 * (return 0) and taken out from conn_service(), so on_input never runs
 * inside libssh and held input costs at most one window. Input nobody
 * reads (and stderr, which clients do not send) is consumed and dropped.
 */
static int on_channel_data(ssh_session session, ssh_channel channel, void *data, uint32_t len,
                           int is_stderr, void *userdata)
{
    tl_exec_t *exec = userdata;
    exec->conn->last_activity = uv_now(exec->conn->front->loop);
    if (is_stderr)
        return (int)len;
    if (!exec_keeps_input(exec)) {
        exec->in_libssh = 0;
        return (int)len;
    }
    if (len > INPUT_HARD_CAP) {
        tl_log_warn("ssh client ignored flow control user=%s addr=%s held=%u",
                    exec->technician.name, exec->conn->address, len);
        exec->in_libssh = 0;
        exec->conn->closing = 1;
        tl__ssh_queue_service(exec->conn);
        return (int)len;
    }
    exec->in_libssh = len;
    tl__ssh_queue_service(exec->conn);
    return 0;
}

static void on_channel_eof(ssh_session session, ssh_channel channel, void *userdata)
{
    tl_exec_t *exec = userdata;
    exec->eof_received = 1;
    tl__ssh_queue_service(exec->conn);
}

static void on_channel_close(ssh_session session, ssh_channel channel, void *userdata)
{
    tl_exec_t *exec = userdata;
    exec->channel_gone = 1;
    tl__ssh_queue_service(exec->conn);
}

static int on_channel_writable(ssh_session session, ssh_channel channel, uint32_t bytes,
                               void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->head != NULL)
        tl__ssh_queue_service(exec->conn);
    return 0;
}

/* A terminal size from the wire (a u32 that libssh passes as int), clamped to 0..1000. */
static unsigned terminal_size(int value)
{
    if (value < 0 || value > (int)MAX_TERMINAL_SIZE)
        return MAX_TERMINAL_SIZE; /* u32 values past INT_MAX arrive negative: huge too */
    return (unsigned)value;
}

/* Only before the exec, once. A size of 0 is what OpenSSH sends when it has no terminal itself. */
static int on_pty_request(ssh_session session, ssh_channel channel, const char *term, int width,
                          int height, int pxwidth, int pxheight, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->state != EXEC_IDLE || exec->pty.requested)
        return -1;
    exec->pty.requested = 1;
    /* A name cut short would name another terminal: one too long is no name (the default). */
    if (term != NULL && strlen(term) < sizeof exec->pty.term)
        tl__ssh_printable(exec->pty.term, sizeof exec->pty.term, term);
    exec->pty.cols = terminal_size(width);
    exec->pty.rows = terminal_size(height);
    return 0;
}

/* Ignored without a PTY and for a size of 0; the command hears of it from conn_service(). */
static int on_window_change(ssh_session session, ssh_channel channel, int width, int height,
                            int pxwidth, int pxheight, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (!exec->pty.requested || width == 0 || height == 0) {
        tl_log_debug("ssh window-change ignored user=%s addr=%s cols=%d rows=%d pty=%d",
                     exec->technician.name, exec->conn->address, width, height,
                     exec->pty.requested);
        return -1;
    }
    exec->pty.cols = terminal_size(width);
    exec->pty.rows = terminal_size(height);
    exec->resize_pending = 1;
    tl__ssh_queue_service(exec->conn);
    return 0;
}

/* Dropped signal requests logged per channel; the rest are dropped silently. */
#define SIGNALS_LOGGED 4

/* Kept until the command runs (and hears of it from conn_service()); bounded, never a crash. */
static void on_signal_request(ssh_session session, ssh_channel channel, const char *signal,
                              void *userdata)
{
    tl_exec_t *exec = userdata;
    const char *name = tl_session_signal_name(tl_session_signal_number(signal));
    const char *reason = name == NULL                                          ? "unknown-signal"
                         : exec->state >= EXEC_FINISHING || exec->channel_gone ? "command-ended"
                         : exec->signals_taken >= TL_EXEC_MAX_SIGNALS          ? "too-many"
                         : exec->signals_pending >= TL_EXEC_PENDING_SIGNALS    ? "too-many-pending"
                                                                               : NULL;
    if (reason != NULL) {
        if (exec->signals_logged < SIGNALS_LOGGED) {
            exec->signals_logged++;
            char shown[17];
            tl__ssh_printable(shown, sizeof shown, signal != NULL ? signal : "");
            tl_log_info("ssh signal ignored user=%s addr=%s signal=\"%s\" reason=%s",
                        exec->technician.name, exec->conn->address, shown, reason);
        }
        return;
    }
    exec->signals[exec->signals_pending++] = name;
    exec->signals_taken++;
    tl__ssh_queue_service(exec->conn);
}

static int on_shell_request(ssh_session session, ssh_channel channel, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->state != EXEC_IDLE)
        return -1;
    /* Interactive sessions come later; the reply must still be success so the usage arrives. */
    exec->refusal = USAGE;
    exec->state = EXEC_PENDING;
    tl__ssh_queue_service(exec->conn);
    return 0;
}

static int on_exec_request(ssh_session session, ssh_channel channel, const char *command,
                           void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->state != EXEC_IDLE)
        return -1;
    exec->state = EXEC_PENDING;
    tl__ssh_queue_service(exec->conn);
    size_t len = strlen(command);
    if (len > TL_EXEC_MAX_LINE) {
        exec->refusal = "command line longer than " STRINGIFY(TL_EXEC_MAX_LINE) " bytes";
        return 0;
    }
    exec->words = malloc(len + 1);
    if (exec->words == NULL) {
        exec->refusal = "out of memory";
        return 0;
    }
    exec->refusal = tl__exec_split_line(command, exec->words, exec->argv, &exec->argc);
    if (exec->refusal == NULL && exec->argc == 0)
        exec->refusal = USAGE;
    return 0;
}

static int on_env_request(ssh_session session, ssh_channel channel, const char *name,
                          const char *value, void *userdata)
{
    return -1; /* ignored: commands take no environment */
}

/*
 * The one subsystem is "sftp" (docs/protocol.md §7.16), for a technician whose role may pull
 * files at all; the channel then goes to the dispatcher like a command, with argv {"sftp"} and
 * tl_exec_subsystem() set, so a typed `sftp` command never reaches the SFTP server.
 */
static int on_subsystem_request(ssh_session session, ssh_channel channel, const char *subsystem,
                                void *userdata)
{
    tl_exec_t *exec = userdata;
    char name[33];
    tl__ssh_printable(name, sizeof name, subsystem);
    const char *reason = NULL;
    if (exec->state != EXEC_IDLE)
        reason = "not-first";
    else if (subsystem == NULL || strcmp(subsystem, "sftp") != 0)
        reason = "unknown";
    else if (!tl_role_can(tl_role_parse(exec->technician.role), TL_CAP_FILES_PULL))
        reason = "role";
    if (reason != NULL) {
        tl_log_info("ssh request refused user=%s addr=%s request=subsystem name=%s reason=%s",
                    exec->technician.name, exec->conn->address, name, reason);
        return -1;
    }
    exec->words = strdup("sftp");
    if (exec->words == NULL)
        return -1;
    exec->argv[0] = exec->words;
    exec->argv[1] = NULL;
    exec->argc = 1;
    exec->subsystem = 1;
    exec->raw = 1; /* a binary stream: no ONLCR, whatever the client asked */
    exec->state = EXEC_PENDING;
    tl__ssh_queue_service(exec->conn);
    return 0;
}

int tl_exec_subsystem(const tl_exec_t *exec)
{
    return exec->subsystem;
}

/* ---- opening a channel (libssh's server callback) ------------------------------------------ */

ssh_channel tl__ssh_channel_open(ssh_session session, void *userdata)
{
    struct conn *conn = userdata;
    if (!conn->authenticated || conn->closing)
        return NULL;
    if (conn->exec_count >= MAX_CHANNELS) {
        tl_log_warn("ssh channel refused user=%s addr=%s reason=too-many-channels",
                    conn->technician.name, conn->address);
        return NULL;
    }
    tl_exec_t *exec = calloc(1, sizeof *exec);
    if (exec == NULL)
        return NULL;
    exec->channel = ssh_channel_new(session);
    if (exec->channel == NULL) {
        free(exec);
        return NULL;
    }
    exec->conn = conn;
    exec->technician = conn->technician;
    struct ssh_channel_callbacks_struct *cb = &exec->channel_callbacks;
    ssh_callbacks_init(cb);
    cb->userdata = exec;
    cb->channel_data_function = on_channel_data;
    cb->channel_close_function = on_channel_close;
    cb->channel_eof_function = on_channel_eof;
    cb->channel_write_wontblock_function = on_channel_writable;
    cb->channel_pty_request_function = on_pty_request;
    cb->channel_pty_window_change_function = on_window_change;
    cb->channel_signal_function = on_signal_request;
    cb->channel_shell_request_function = on_shell_request;
    cb->channel_exec_request_function = on_exec_request;
    cb->channel_env_request_function = on_env_request;
    cb->channel_subsystem_request_function = on_subsystem_request;
    /* No x11 or agent callbacks: libssh refuses (or ignores) those requests. */
    if (ssh_set_channel_callbacks(exec->channel, cb) != SSH_OK) {
        ssh_channel_free(exec->channel);
        free(exec);
        return NULL;
    }
    exec->next = conn->execs;
    conn->execs = exec;
    conn->exec_count++;
    return exec->channel;
}

/* ---- channels: service, end, free --------------------------------------------------------- */

void tl__exec_abort(tl_exec_t *exec)
{
    if (exec->aborted || !exec->dispatched || exec->finished)
        return;
    exec->aborted = 1;
    tl_log_info("ssh exec aborted user=%s addr=%s command=%.64s sent=%llu received=%llu",
                exec->technician.name, exec->conn->address, exec->argv[0],
                (unsigned long long)exec->bytes_sent, (unsigned long long)exec->bytes_received);
    if (exec->callbacks != NULL && exec->callbacks->on_abort != NULL)
        exec->callbacks->on_abort(exec, exec->callbacks_data);
}

/* Forgets the exec; the channel goes with it unless free_channel is 0 (ssh_free will do it). */
void tl__exec_free(tl_exec_t *exec, int free_channel)
{
    struct conn *conn = exec->conn;
    for (tl_exec_t **link = &conn->execs; *link != NULL; link = &(*link)->next) {
        if (*link == exec) {
            *link = exec->next;
            break;
        }
    }
    conn->exec_count--;
    /* The channel may outlive this (libssh frees it at the client's CLOSE): no callbacks into us.
     */
    ssh_remove_channel_callbacks(exec->channel, &exec->channel_callbacks);
    if (free_channel) {
        ssh_channel_close(exec->channel); /* a no-op when our CLOSE is already out */
        ssh_channel_free(exec->channel);
    }
    free_output(exec);
    tl_buf_free(exec->input);
    free(exec->words);
    free(exec);
}

/*
 * Hands queued output to libssh while the client's window is open, libssh's
 * socket buffer is empty and this wake-up's budget lasts. *more is set when
 * the budget ran out with output still sendable (the socket is writable, so
 * the next wake-up comes at once).
 */
static void exec_flush(tl_exec_t *exec, size_t *budget, int *more)
{
    struct conn *conn = exec->conn;
    while (exec->head != NULL && !exec->channel_gone && !conn->closing) {
        if (ssh_get_poll_flags(conn->session) & SSH_WRITE_PENDING)
            return; /* UV_WRITABLE is armed below */
        uint32_t window = ssh_channel_window_size(exec->channel);
        if (window == 0)
            return; /* the client's WINDOW_ADJUST arrives as readable */
        if (*budget == 0) {
            *more = 1;
            return;
        }
        struct chunk *head = exec->head;
        size_t len = head->end - head->start;
        if (len > window)
            len = window;
        if (len > *budget)
            len = *budget;
        const void *data = head->data + head->start;
        int rc = head->stream == TL_EXEC_STDERR ? ssh_channel_write_stderr(exec->channel, data, len)
                                                : ssh_channel_write(exec->channel, data, len);
        if (rc < 0) {
            if (tl__ssh_session_gone(conn))
                conn->closing = 1;
            else
                exec->channel_gone = 1;
            tl_log_debug("ssh write failed addr=%s error=%s", conn->address,
                         ssh_get_error(conn->session));
            return;
        }
        if (rc == 0)
            return;
        consume_output(exec, (size_t)rc);
        *budget -= (size_t)rc;
        if (exec->above_high_water && exec->buffered < TL_EXEC_HIGH_WATER) {
            exec->above_high_water = 0;
            if (exec->state == EXEC_RUNNING && !exec->aborted && exec->callbacks != NULL &&
                exec->callbacks->on_drain != NULL)
                exec->callbacks->on_drain(exec, exec->callbacks_data);
        }
    }
}

/*
 * Offers the client's input to a running command: first what is left in
 * input, then more out of libssh's buffer (which lets libssh grow the
 * client's window again). Stops when the command takes less than offered
 * (until tl_exec_resume_input()), when nothing is held, or when this
 * wake-up's budget is spent. Input for a command without on_input is read
 * and dropped. The client's EOF reaches the command after the last byte.
 */
static void exec_input(tl_exec_t *exec)
{
    struct conn *conn = exec->conn;
    size_t budget = INPUT_BUDGET;
    while (exec->state == EXEC_RUNNING && !exec->channel_gone && !conn->closing) {
        const tl_exec_callbacks_t *callbacks = exec->callbacks;
        int reads = callbacks != NULL && callbacks->on_input != NULL;
        size_t offered = exec->input != NULL ? tl_buf_len(exec->input) : 0;
        if (offered > 0) {
            size_t took = offered;
            if (reads) {
                if (exec->input_paused)
                    return;
                if (budget == 0) {
                    tl__ssh_queue_service(conn); /* the rest on the next turn */
                    return;
                }
                exec->input_resumed = 0;
                took = callbacks->on_input(exec, tl_buf_data(exec->input), offered,
                                           exec->callbacks_data);
                if (took > offered) {
                    tl_log_warn("ssh exec input over-taken user=%s command=%.64s took=%zu "
                                "offered=%zu",
                                exec->technician.name, exec->argv[0], took, offered);
                    took = offered;
                }
                exec->bytes_received += took;
                budget = took < budget ? budget - took : 0;
            }
            tl_buf_consume(exec->input, took);
            if (tl_buf_len(exec->input) == 0 && tl_buf_capacity(exec->input) > INPUT_KEEP &&
                exec->in_libssh == 0)
                tl_buf_release(exec->input); /* a paste went through: not kept while idle */
            if (took < offered) {
                /* Held until the command resumes; a resume from inside on_input waits a turn. */
                if (exec->input_resumed)
                    tl__ssh_queue_service(conn);
                else
                    exec->input_paused = 1;
                return;
            }
            continue;
        }
        if (exec->in_libssh == 0)
            break;
        uint32_t want = exec->in_libssh;
        /* Exactly what libssh holds (input is empty here), within INPUT_HARD_CAP. */
        uint8_t *dst = NULL;
        int room = TL_ENOMEM;
        if (exec->input != NULL || (exec->input = tl_buf_new(INPUT_HARD_CAP)) != NULL)
            room = tl_buf_allocate(exec->input, want);
        if (room == 0)
            room = tl_buf_reserve(exec->input, want, &dst);
        if (room != 0) {
            tl_log_warn("ssh exec input dropped user=%s addr=%s reason=%s", exec->technician.name,
                        conn->address, tl_strerror(room));
            exec->channel_gone = 1; /* the command ends rather than lose input silently */
            return;
        }
        /*
         * libssh's buffer holds in_libssh > 0 bytes, so this copies from it
         * without reading the socket (no callbacks run from here).
         */
        int rc = ssh_channel_read_nonblocking(exec->channel, dst, want, 0);
        size_t got = rc <= 0 ? 0 : (uint32_t)rc < want ? (size_t)rc : want;
        tl_buf_unreserve(exec->input, want - got);
        if (rc < 0) {
            tl_log_debug("ssh read failed addr=%s error=%s", conn->address,
                         ssh_get_error(conn->session));
            if (tl__ssh_session_gone(conn))
                conn->closing = 1;
            else
                exec->channel_gone = 1;
            return;
        }
        if (rc == 0 || (uint32_t)rc > exec->in_libssh) {
            exec->in_libssh = 0; /* not what we counted: trust libssh, which has no more */
            if (rc == 0)
                break;
        } else {
            exec->in_libssh -= (uint32_t)rc;
        }
    }
    if (exec->state == EXEC_RUNNING && exec->eof_received && !exec->eof_delivered &&
        (exec->input == NULL || tl_buf_len(exec->input) == 0) && exec->in_libssh == 0 &&
        !exec->channel_gone && !conn->closing) {
        exec->eof_delivered = 1;
        if (exec->callbacks != NULL && exec->callbacks->on_input_eof != NULL)
            exec->callbacks->on_input_eof(exec, exec->callbacks_data);
    }
}

static void exec_resize(tl_exec_t *exec)
{
    if (!exec->resize_pending || exec->state != EXEC_RUNNING || exec->channel_gone)
        return;
    exec->resize_pending = 0;
    if (exec->callbacks != NULL && exec->callbacks->on_resize != NULL)
        exec->callbacks->on_resize(exec, exec->pty.cols, exec->pty.rows, exec->callbacks_data);
}

/* Signals in the order sent, once the command runs; a command without on_signal drops them. */
static void exec_signals(tl_exec_t *exec)
{
    if (exec->signals_pending == 0 || exec->state != EXEC_RUNNING || exec->channel_gone)
        return;
    unsigned count = exec->signals_pending;
    const char *names[TL_EXEC_PENDING_SIGNALS];
    memcpy(names, exec->signals, count * sizeof names[0]);
    exec->signals_pending = 0;
    for (unsigned i = 0; i < count && exec->state == EXEC_RUNNING && !exec->aborted; i++)
        if (exec->callbacks != NULL && exec->callbacks->on_signal != NULL)
            exec->callbacks->on_signal(exec, names[i], exec->callbacks_data);
}

void tl__exec_service(tl_exec_t *exec, size_t *budget, int *more)
{
    struct conn *conn = exec->conn;
    tl_ssh_front_t *front = conn->front;

    if (exec->state == EXEC_PENDING && conn->login_refused && exec->refusal == NULL)
        exec->refusal = LOGIN_NOT_RECORDED;
    /* A command waits (its input kept) while its login is not on the record yet. */
    if (exec->state == EXEC_PENDING && !(conn->login_held && exec->refusal == NULL)) {
        if (exec->refusal != NULL) {
            const char *eol = exec->pty.requested ? "\r\n" : "\n";
            const char *prefix = exec->refusal == USAGE ? "" : "tierline: ";
            char line[512];
            tl_format(line, sizeof line, "%s%s%s", prefix, exec->refusal, eol);
            tl_log_info("ssh exec refused user=%s addr=%s reason=\"%s\"", exec->technician.name,
                        conn->address, exec->refusal);
            queue_output(exec, TL_EXEC_STDERR, line, strlen(line));
            exec->finished = 1;
            exec->exit_status = exec->refusal == LOGIN_NOT_RECORDED ? 1 : 2;
            exec->state = EXEC_FINISHING;
        } else {
            exec->state = EXEC_RUNNING;
            exec->dispatched = 1;
            exec->resize_pending = 0; /* tl_exec_pty() has the size the command starts with */
            tl_log_info("ssh exec user=%s role=%s addr=%s command=%.64s words=%d",
                        exec->technician.name, exec->technician.role, conn->address, exec->argv[0],
                        exec->argc);
            if (front->dispatch != NULL) {
                front->dispatch(front->ctx, exec, exec->argc, exec->argv);
            } else {
                tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: no commands here\n");
                tl_exec_finish(exec, 1);
            }
        }
    }

    if (exec->channel_gone && exec->state != EXEC_CLOSING) {
        /* The client closed the channel (or it broke) before the end: the command stops. */
        tl__exec_abort(exec);
        tl__exec_free(exec, 1);
        return;
    }
    exec_resize(exec);
    exec_signals(exec);
    exec_input(exec); /* before the flush: an echo goes out in the same wake-up */
    if (exec->state == EXEC_RUNNING || exec->state == EXEC_FINISHING)
        exec_flush(exec, budget, more);
    if (exec->state == EXEC_FINISHING && exec->buffered == 0 && !exec->channel_gone &&
        !conn->closing) {
        /* As sshd: EOF, exit-status, CLOSE; the exec stays until the client's CLOSE. */
        ssh_channel_send_eof(exec->channel);
        ssh_channel_request_send_exit_status(exec->channel, exec->exit_status);
        ssh_channel_close(exec->channel);
        exec->state = EXEC_CLOSING;
        tl_log_info("ssh exec done user=%s addr=%s command=%.64s status=%d sent=%llu received=%llu",
                    exec->technician.name, conn->address, exec->argv[0] ? exec->argv[0] : "-",
                    exec->exit_status, (unsigned long long)exec->bytes_sent,
                    (unsigned long long)exec->bytes_received);
    }
    if (exec->state == EXEC_CLOSING && exec->channel_gone)
        tl__exec_free(exec, 1);
}
