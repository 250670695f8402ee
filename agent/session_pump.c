/*
 * The bytes of a session (docs/protocol.md §4, §7.7).
 *
 * Output. The process's output is read only while the channel has send
 * window: each read asks for at most what the window takes now, and at most
 * one read chunk per stream is held back when the window runs short; reading
 * pauses until the relay's credit returns (tl_sessions_writable). A relay
 * that stops reading stops only that process's output, and the agent's
 * memory per channel stays bounded. A shell's output is offered to the
 * ticket's observers as it is read (session_observe.c).
 *
 * Input. Channel data is written to the process (exec: its stdin; a shell
 * or an exec with a terminal: the terminal's master) and reported consumed only once written.
 *
 * Hidden input (docs/protocol.md §4.7). When the relay takes
 * CHANNEL_INPUT_ACK, a session with a terminal tells it, for every byte of input, in order,
 * whether the terminal took it in no-echo line mode (ECHO off, ICANON on: how
 * getpass, PAM, sudo, ssh and `read -s` read a secret) so that the relay
 * records a count instead of the bytes. The mode is read from the master
 * (tcgetattr there reports the terminal's settings on Linux) right before the
 * bytes are written; a write the kernel did not take at once is checked again
 * when it completes, and is hidden if either check says so. Programs that
 * read in raw mode and echo for themselves (shells' line editors, editors)
 * leave ECHO and ICANON off: their input is visible. Hidden bytes are wiped
 * once written and never logged.
 */
#include "agent/session_int.h"

#include "proto/err.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>
#include <termios.h>

static void on_output_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_output_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- output to the channel ------------------------------------------------------------------- */

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

bool tl__pump_holding(const struct session *s)
{
    return s->out[0].held_len > 0 || s->out[1].held_len > 0;
}

void tl__pump_resume_reading(struct session *s)
{
    if (tl__pump_holding(s) || tl__session_window(s) == 0)
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
bool tl__pump_flush_held(struct session *s)
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
            tl__output_drop_held(o);
    }
    if (!tl__pump_holding(s) && s->notice_len > 0 && tl__session_window(s) >= s->notice_len) {
        size_t written = 0;
        tl_mux_write(s->mux, s->channel, TL_STREAM_STDERR, s->notice, s->notice_len, &written);
        s->notice_len = 0;
    }
    return !tl__pump_holding(s) && s->notice_len == 0;
}

static void on_output_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct output *o = handle->data;
    struct session *s = o->session;
    size_t room = tl__pump_holding(s) ? 0 : tl__session_window(s);
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
        if (s->terminal && s->running) {
            /* Closing the master hangs the terminal up: a process that closed its
             * descriptors and is still on its way out would die of SIGHUP and its
             * real exit status be lost. Stop reading; close once it is reaped. */
            uv_read_stop(stream);
            o->reading = false;
            o->done = true;
            tl__session_maybe_finish(s);
            return;
        }
        tl__output_close(o);
        tl__session_maybe_finish(s);
        return;
    }
    const uint8_t *bytes = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    if (s->kind == KIND_SHELL)
        tl__observe_feed(s, bytes, len);
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
    if (tl__pump_holding(s) || tl__session_window(s) == 0)
        pause_reading(s);
}

/* ---- input from the channel ------------------------------------------------------------------ */

uv_stream_t *tl__pump_input_stream(struct session *s)
{
    if (s->kind == KIND_EXEC && s->input_open)
        return (uv_stream_t *)&s->input;
    if (s->terminal && s->out[0].open)
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
        tl__input_close(s);
    if (s->input_eof && s->input_writes == 0)
        tl__input_close(s);
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

/* Channel data: written to the process, or dropped when nothing takes input. */
void tl__pump_input(struct session *s, uint8_t stream, const uint8_t *data, size_t len)
{
    /* Only the main stream is input; the relay sends nothing else to acknowledge. */
    bool hidden = stream == TL_STREAM_MAIN && s->ack_input && terminal_hides_input(s);
    uv_stream_t *input =
        stream == TL_STREAM_MAIN && !s->input_eof ? tl__pump_input_stream(s) : NULL;
    struct input_write *w = input != NULL ? calloc(1, sizeof *w + len) : NULL;
    if (w == NULL) {
        /* No process input (or no memory): the bytes are handled by dropping them. */
        tl_mux_consumed(s->mux, s->channel, len);
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
        tl_mux_consumed(s->mux, s->channel, len);
        input_dropped(s, len, hidden);
        if (s->kind == KIND_EXEC)
            tl__input_close(s);
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
