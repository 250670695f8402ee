/*
 * The bridge (relay/sessions/sessions_int.h): the session channel on the
 * agent's connection and the technician's exec (relay/net/exec.h), with flow
 * control both ways. The agent is credited only for what the technician's
 * side can take; the technician's input is read only while the channel takes
 * it (and, for a shell on an agent that acknowledges input, while the
 * recording can hold it). join passes the terminal through raw and records
 * it; observe sends nothing and leaves on Ctrl-C or Ctrl-D.
 *
 * Channel events arrive from relay/net/agent_server.c through the
 * tl_sessions_channel_* functions; the exec's through tl__session_exec_callbacks.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/store/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the channel ----------------------------------------------------------------------------- */

/* The client's TERM if it is a terminal name ([A-Za-z0-9._+-], 1..63 bytes), else the default. */
static const char *terminal_name(const tl_exec_pty_t *pty)
{
    size_t len = strnlen(pty->term, sizeof pty->term);
    int fine = len > 0 && len < sizeof pty->term;
    for (size_t i = 0; fine && i < len; i++) {
        char c = pty->term[i];
        fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '+' || c == '-';
    }
    return fine ? pty->term : "xterm-256color";
}

/* {"term", "cols", "rows"} of the technician's terminal, sizes outside 1..1000 defaulted. */
static json_t *terminal_params(const tl_exec_pty_t *pty)
{
    unsigned cols = pty->cols >= 1 && pty->cols <= 1000 ? pty->cols : 80;
    unsigned rows = pty->rows >= 1 && pty->rows <= 1000 ? pty->rows : 24;
    return json_pack("{s:s, s:i, s:i}", "term", terminal_name(pty), "cols", (int)cols, "rows",
                     (int)rows);
}

void tl__session_open_channel(struct session *s)
{
    tl_mux_t *mux = tl_agent_mux(s->agent);
    s->started_ms = tl_wall_ms();
    s->phase = PHASE_CHANNEL;
    if (s->take) {
        tl__session_take_attach(s); /* no channel of its own: it joins a live shell */
        return;
    }
    if (s->kind == TL_SESSION_JOIN) {
        s->line_start = 1;
        tl__session_recording_open(s);
        if (s->recording == NULL) {
            tl__session_conclude(s);
            return;
        }
    }
    json_t *params = json_pack("{s:s, s:s}", "grant", s->grant, "technician", s->tech.name);
    if (params == NULL) {
        tl__session_set_end(s, "relay", "out of memory");
        tl__session_conclude(s);
        return;
    }
    if (s->kind == TL_SESSION_RUN) {
        json_object_set(params, "argv", s->argv);
        /* ssh -t: the command gets a terminal on the machine (docs/protocol.md §7.7 "pty"). */
        if (s->exec != NULL && tl_exec_pty(s->exec)->requested) {
            json_object_set_new(params, "pty", terminal_params(tl_exec_pty(s->exec)));
            s->terminal = 1;
        }
    } else if (s->kind == TL_SESSION_FIX) {
        json_object_set_new(params, "name", json_string(s->runbook));
        json_object_set(params, "args", s->runbook_args);
    } else if (s->kind == TL_SESSION_JOIN && !s->observe) {
        json_t *terminal = terminal_params(tl_exec_pty(s->exec));
        json_object_update(params, terminal);
        json_decref(terminal);
        s->terminal = 1;
    }
    int rc = mux ? tl_mux_open(mux, tl__session_kind_name(s->kind, s->observe), params, &s->channel)
                 : TL_ECLOSED;
    json_decref(params);
    if (rc != 0) {
        tl__session_set_end(s, "relay", "cannot open the session on the machine: %s",
                            tl_strerror(rc));
        tl__session_conclude(s);
        return;
    }
    tl_mux_set_data(mux, s->channel, s);
    s->channel_state = CHANNEL_OPENING;
    s->hold_input = s->kind == TL_SESSION_JOIN && !s->observe &&
                    (tl_mux_features(mux) & TL_FEATURE_INPUT_ACK) != 0;
    tl_log_info("session opening tech=%s ticket=%s device=%s grant=%s type=%s", s->tech.name,
                s->ticket, s->device, s->grant, tl__session_kind_name(s->kind, s->observe));
}

static void on_close_deadline(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (s->channel_state != CHANNEL_CLOSING)
        return;
    tl_log_warn("agent did not close a session channel device=%s grant=%s", s->device, s->grant);
    if (s->agent != NULL && tl_agent_mux(s->agent) != NULL)
        tl_mux_set_data(tl_agent_mux(s->agent), s->channel, NULL);
    s->channel_state = CHANNEL_GONE;
    tl__session_set_end(s, "relay", "the machine did not end the session in time");
    tl__session_conclude(s);
}

/* Asks the agent to end the channel (it stops the process); its CLOSE concludes. */
void tl__session_end_channel(struct session *s)
{
    if (s->take) {
        /* No channel of its own: it leaves the shell it joined (control.c). */
        if (s->phase == PHASE_CHANNEL)
            tl__session_conclude(s);
        return;
    }
    if (s->channel_state != CHANNEL_OPENING && s->channel_state != CHANNEL_OPEN)
        return;
    tl_mux_t *mux = s->agent ? tl_agent_mux(s->agent) : NULL;
    if (mux != NULL && s->channel_state == CHANNEL_OPENING &&
        (s->kind == TL_SESSION_RUN || s->kind == TL_SESSION_FIX)) {
        /* The machine may be asking its user about this command: withdraw the question
         * (docs/protocol.md §7.7), or a yes would still run it. */
        json_t *cancel =
            json_pack("{s:s, s:I}", "type", tl_control_type_name(TL_CONTROL_SESSION_CANCEL),
                      "channel", (json_int_t)s->channel);
        if (cancel != NULL)
            tl_agent_notify(s->agent, cancel);
        json_decref(cancel);
    }
    if (mux == NULL || tl_mux_close(mux, s->channel, NULL) != 0) {
        s->channel_state = CHANNEL_GONE;
        if (mux != NULL)
            tl_mux_set_data(mux, s->channel, NULL);
        tl__session_conclude(s);
        return;
    }
    s->channel_state = CHANNEL_CLOSING;
    uv_timer_start(&s->timer, on_close_deadline, TL_SESSIONS_CLOSE_WAIT_MS, 0);
}

/* The size of the terminal of whoever is in control (control.c). */
void tl__session_send_resize(struct session *s)
{
    struct session *ctl = tl__session_controller(s);
    if (!s->terminal || s->channel_state != CHANNEL_OPEN || ctl->exec == NULL || s->agent == NULL)
        return;
    const tl_exec_pty_t *pty = tl_exec_pty(ctl->exec);
    if (pty->cols < 1 || pty->cols > 1000 || pty->rows < 1 || pty->rows > 1000)
        return;
    json_t *body = json_pack(
        "{s:s, s:I, s:i, s:i}", "type", tl_control_type_name(TL_CONTROL_SESSION_RESIZE), "channel",
        (json_int_t)s->agent_channel, "cols", (int)pty->cols, "rows", (int)pty->rows);
    if (body != NULL)
        tl_agent_notify(s->agent, body);
    json_decref(body);
}

/* A channel of a file being moved (files_transfer.c), not of a session. */
static int file_owner(const void *owner)
{
    return *(const enum tl__owner_kind *)owner == TL__OWNER_FILE;
}

void tl_sessions_channel_confirm(void *owner)
{
    if (file_owner(owner)) {
        tl__transfer_confirm(owner);
        return;
    }
    struct session *s = owner;
    s->channel_state = CHANNEL_OPEN;
    tl_mux_peer_channel(tl_agent_mux(s->agent), s->channel, &s->agent_channel);
    tl_log_info("session started tech=%s ticket=%s device=%s grant=%s type=%s", s->tech.name,
                s->ticket, s->device, s->grant, tl__session_kind_name(s->kind, s->observe));
    if (s->terminal && s->exec != NULL) {
        /* From here the agent's terminal is passed through as it is. */
        tl_exec_set_raw(s->exec);
        s->raw = 1;
        if (s->resize_pending)
            tl__session_send_resize(s);
        s->resize_pending = 0;
    }
    if (s->input_eof && !s->eof_sent && (s->kind == TL_SESSION_RUN || s->kind == TL_SESSION_JOIN)) {
        tl_mux_eof(tl_agent_mux(s->agent), s->channel);
        s->eof_sent = 1;
    }
    if (s->input_blocked && s->exec != NULL) {
        s->input_blocked = 0;
        tl_exec_resume_input(s->exec);
    }
    if (s->exec == NULL || s->end_message[0] != '\0')
        tl__session_end_channel(s);
}

void tl_sessions_channel_refuse(void *owner, uint32_t reason, tl_str_t message)
{
    if (file_owner(owner)) {
        tl__transfer_refuse(owner, reason, message);
        return;
    }
    struct session *s = owner;
    int was_closing = s->channel_state == CHANNEL_CLOSING;
    s->channel_state = CHANNEL_GONE;
    uv_timer_stop(&s->timer);
    if (!was_closing) {
        char text[1100];
        tl__sessions_clean_line(text, sizeof text, message.ptr, message.len);
        tl__session_set_end(s, "refused", "the machine refused the session: %s",
                            text[0] ? text : tl_strerror(-(int)reason));
    }
    tl__session_conclude(s);
}

void tl_sessions_channel_data(void *owner, uint8_t stream, const uint8_t *data, size_t len)
{
    if (file_owner(owner)) {
        tl__transfer_data(owner, data, len);
        return;
    }
    struct session *s = owner;
    tl_metrics_bytes_to_technician(len);
    tl_mux_t *mux = tl_agent_mux(s->agent);
    if (s->kind == TL_SESSION_DIAG) {
        tl__session_diag_data(s, data, len);
        return;
    }
    if (s->kind == TL_SESSION_JOIN && s->recording != NULL)
        tl_recording_output(s->recording, data, len);
    else if (s->kind != TL_SESSION_JOIN)
        tl__capture(stream == TL_STREAM_STDERR ? &s->err : &s->out, data, len);
    if (s->attached != NULL)
        tl__session_control_output(s, stream, data, len);
    if (s->control != NULL) {
        /* Handed over: the owner watches, and a slow terminal holds back no one. */
        if (s->exec != NULL && tl_exec_buffered(s->exec) < TL_EXEC_HIGH_WATER)
            tl_exec_write(s->exec, TL_EXEC_STDOUT, data, len);
        else
            s->dropped += len;
        tl_mux_consumed(mux, s->channel, len);
        return;
    }
    if (s->exec == NULL ||
        tl_exec_write(s->exec, stream == TL_STREAM_STDERR ? TL_EXEC_STDERR : TL_EXEC_STDOUT, data,
                      len) != 0) {
        tl_mux_consumed(mux, s->channel, len);
        return;
    }
    /* Credit the agent only for what the technician's side can take: past the
     * high-water mark the bytes wait in the exec and the window stays closed. */
    if (s->held == 0 && tl_exec_buffered(s->exec) < TL_EXEC_HIGH_WATER)
        tl_mux_consumed(mux, s->channel, len);
    else
        s->held += len;
}

void tl_sessions_channel_writable(void *owner)
{
    if (file_owner(owner)) {
        tl__transfer_writable(owner);
        return;
    }
    struct session *s = tl__session_controller(owner);
    if (s->input_blocked && s->exec != NULL) {
        s->input_blocked = 0;
        tl_exec_resume_input(s->exec);
    }
}

void tl_sessions_channel_input_ack(void *owner, uint32_t bytes, int hidden)
{
    if (file_owner(owner))
        return;
    struct session *s = owner;
    if (!s->hold_input || s->recording == NULL)
        return;
    /* The mux checked the agent acknowledges no more than was sent; only a hold that
     * failed (out of memory) leaves fewer bytes here, and those go unrecorded. */
    size_t held = tl_recording_input_held(s->recording);
    size_t settle = bytes < held ? bytes : held;
    if (settle > 0)
        tl_recording_input_settle(s->recording, settle, hidden);
    struct session *recording_owner = s;
    s = tl__session_controller(s);
    if (s->input_blocked && s->exec != NULL &&
        tl_recording_input_held(recording_owner->recording) < TL_RECORDING_MAX_HELD) {
        s->input_blocked = 0;
        tl_exec_resume_input(s->exec);
    }
}

void tl_sessions_channel_eof(void *owner)
{
    /* The CLOSE with the exit status follows; nothing to do before it. */
}

void tl_sessions_channel_close(void *owner, const struct tl_msg_channel_close *close)
{
    if (file_owner(owner)) {
        tl__transfer_channel_close(owner, close);
        return;
    }
    struct session *s = owner;
    s->channel_state = CHANNEL_GONE;
    uv_timer_stop(&s->timer);
    if (close->flags & (TL_CLOSE_HAS_EXIT_STATUS | TL_CLOSE_HAS_EXIT_SIGNAL))
        s->finished = 1;
    if (close->flags & TL_CLOSE_HAS_EXIT_SIGNAL) {
        tl__sessions_clean_line(s->exit_signal, sizeof s->exit_signal, close->exit_signal.ptr,
                                close->exit_signal.len);
        if (s->exit_signal[0] == '\0')
            snprintf(s->exit_signal, sizeof s->exit_signal, "?");
    }
    s->exit_status = close->exit_status;
    tl__session_conclude(s);
}

/* ---- the technician's side ------------------------------------------------------------------- */

/* Ctrl-C or Ctrl-D: how a technician who only watches leaves. */
static int leaves(const uint8_t *bytes, size_t len)
{
    return memchr(bytes, 0x03, len) != NULL || memchr(bytes, 0x04, len) != NULL;
}

static size_t on_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct session *s = data;
    if (s->kind == TL_SESSION_JOIN && s->observe) {
        /* Observers send nothing; Ctrl-C or Ctrl-D leaves. */
        if (leaves(bytes, len)) {
            s->left_by_technician = 1;
            tl__session_end_channel(s);
        }
        return len;
    }
    if (s->take) {
        /* In control: to the owner's shell. Waiting or handed back: it watches. */
        if (s->owner != NULL && s->owner->control == s)
            return tl__session_control_input(s->owner, s, bytes, len);
        if (s->phase == PHASE_CHANNEL && !s->handing && leaves(bytes, len)) {
            s->left_by_technician = 1;
            tl__session_conclude(s);
        }
        return len;
    }
    if (s->kind == TL_SESSION_JOIN && s->control != NULL) {
        /* Handed over: the shell's owner watches it, and leaves with Ctrl-C or Ctrl-D;
         * the shell goes on for the one in control. */
        if (leaves(bytes, len) && s->exec != NULL) {
            tl_exec_finish(s->exec, 0);
            s->exec = NULL;
        }
        return len;
    }
    if (s->kind != TL_SESSION_RUN && s->kind != TL_SESSION_JOIN)
        return len; /* nothing to feed */
    if (s->channel_state == CHANNEL_NONE || s->channel_state == CHANNEL_OPENING) {
        /* Held by the front end (and out of the technician's window) until the channel is up. */
        if (s->phase <= PHASE_CHANNEL && s->end_message[0] == '\0') {
            s->input_blocked = 1;
            return 0;
        }
        return len;
    }
    if (s->channel_state != CHANNEL_OPEN || s->eof_sent)
        return len;
    if (s->kind == TL_SESSION_JOIN)
        return tl__session_control_input(s, s, bytes, len);
    return tl__session_shell_write(s, s, bytes, len);
}

/* Keystrokes into the channel of s on behalf of writer (the one in control of a shell). */
size_t tl__session_shell_write(struct session *s, struct session *writer, const uint8_t *bytes,
                               size_t len)
{
    if (s->channel_state != CHANNEL_OPEN || s->eof_sent || s->agent == NULL)
        return len;
    size_t offer = len;
    if (s->hold_input && s->recording != NULL) {
        /* Input waits in the recording until the agent says how it was taken: no
         * more goes out than it can hold (the agent's acks resume it). */
        size_t room = TL_RECORDING_MAX_HELD - tl_recording_input_held(s->recording);
        offer = len < room ? len : room;
    }
    size_t written = 0;
    if (offer > 0)
        tl_mux_write(tl_agent_mux(s->agent), s->channel, TL_STREAM_MAIN, bytes, offer, &written);
    if (written > 0 && s->recording != NULL) {
        int rc = s->hold_input ? tl_recording_input_hold(s->recording, bytes, written)
                               : tl_recording_input(s->recording, bytes, written);
        if (rc != 0 && s->hold_input)
            tl_log_warn("typed input not held for the recording ticket=%s grant=%s reason=%s",
                        s->ticket, s->grant, tl_err_name(rc));
    }
    tl_metrics_bytes_to_agent(written);
    if (written < len)
        writer->input_blocked = 1; /* on_writable or the agent's input ack resumes */
    return written;
}

static void on_input_eof(tl_exec_t *exec, void *data)
{
    struct session *s = data;
    s->input_eof = 1;
    if (s->channel_state == CHANNEL_OPEN && !s->eof_sent &&
        (s->kind == TL_SESSION_RUN || (s->kind == TL_SESSION_JOIN && !s->observe))) {
        tl_mux_eof(tl_agent_mux(s->agent), s->channel);
        s->eof_sent = 1;
    }
}

static void on_resize(tl_exec_t *exec, unsigned cols, unsigned rows, void *data)
{
    struct session *s = data;
    if (s->take && s->owner != NULL && s->owner->control == s)
        s = s->owner; /* the one in control sizes the shell */
    else if (s->take || s->control != NULL)
        return; /* the others only watch */
    if (!s->terminal || cols < 1 || cols > 1000 || rows < 1 || rows > 1000)
        return;
    if (s->recording != NULL)
        tl_recording_resize(s->recording, cols, rows);
    if (s->channel_state == CHANNEL_OPEN)
        tl__session_send_resize(s);
    else
        s->resize_pending = 1;
}

/*
 * An SSH "signal" request (the front end passes only known names): to the
 * process group on the machine as session.signal, and into the record (a
 * marker in a shell's recording, the transcript's "signals" for run and fix).
 */
static void on_signal(tl_exec_t *exec, const char *name, void *data)
{
    struct session *s = data;
    if (s->take && s->owner != NULL && s->owner->control == s)
        s = s->owner; /* the one in control signals the shell */
    else if (s->take || s->control != NULL)
        return;
    if ((s->kind != TL_SESSION_RUN && s->kind != TL_SESSION_FIX && s->kind != TL_SESSION_JOIN) ||
        s->observe || s->channel_state != CHANNEL_OPEN || s->agent == NULL)
        return;
    json_t *body =
        json_pack("{s:s, s:I, s:s}", "type", tl_control_type_name(TL_CONTROL_SESSION_SIGNAL),
                  "channel", (json_int_t)s->agent_channel, "signal", name);
    if (body == NULL)
        return;
    tl_log_info("session signal tech=%s ticket=%s grant=%s signal=%s", s->tech.name, s->ticket,
                s->grant, name);
    if (s->recording != NULL) {
        char marker[32];
        snprintf(marker, sizeof marker, "signal %s", name);
        tl_recording_marker(s->recording, marker);
    } else {
        if (s->signals == NULL)
            s->signals = json_array();
        json_array_append_new(
            s->signals, json_pack("{s:I, s:s}", "at_ms", (json_int_t)tl_wall_ms(), "signal", name));
    }
    tl_agent_notify(s->agent, body);
    json_decref(body);
}

static void on_drain(tl_exec_t *exec, void *data)
{
    struct session *s = data;
    if (s->held == 0)
        return;
    size_t held = s->held;
    s->held = 0;
    if ((s->channel_state == CHANNEL_OPEN || s->channel_state == CHANNEL_CLOSING) &&
        s->agent != NULL)
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, held);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct session *s = data;
    s->exec = NULL;
    if (s->phase < PHASE_FINAL)
        s->left_by_technician = 1;
    tl_log_info("technician left a session tech=%s ticket=%s phase=%d", s->tech.name, s->ticket,
                (int)s->phase);
    switch (s->phase) {
    case PHASE_CATALOGUE:
        if (s->agent != NULL)
            tl_agent_request_cancel(s->agent, s->request_id);
        s->request_id = 0;
        s->phase = PHASE_DONE;
        break;
    case PHASE_CONSENT:
        tl__session_withdraw_consent(s);
        break;
    case PHASE_CHANNEL:
        if (s->take || s->control == NULL)
            tl__session_end_channel(s); /* a taker leaves the shell; control.c says what follows */
        /* else handed over: the shell goes on for the one in control */
        break;
    default:
        break; /* a job is in flight; its end sees the exec is gone */
    }
    tl__session_maybe_release(s);
}

const tl_exec_callbacks_t tl__session_exec_callbacks = {
    .on_drain = on_drain,
    .on_abort = on_abort,
    .on_input = on_input,
    .on_input_eof = on_input_eof,
    .on_resize = on_resize,
    .on_signal = on_signal,
};
