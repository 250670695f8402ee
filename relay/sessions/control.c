/*
 * Hand-over of control of a shell (relay/sessions/sessions_int.h;
 * docs/technicians.md "Hand-over of control").
 *
 * A shell on the machine belongs to the join session that opened its
 * channel (the owner): the channel, its recording and its grant stay with it
 * to the end. `join T-N --take` makes a session that opens no channel of its
 * own: once the user granted it a shell, it attaches to the ticket's live
 * shell, sees its output, and asks whoever is in control. That one answers
 * by typing `~y` (hand over) or `~n` (keep it) at the start of a line; with
 * no answer within the take-over wait, a taker that gave --reason takes
 * control anyway, one that did not gives up. The relay routes the keystrokes
 * of the one in control, and only theirs, into the shell; everyone else
 * attached watches. Each change is on the audit log (session.control) before
 * it takes effect, and a marker in the recording; when the log cannot be
 * written, control stays where it was.
 *
 * Notices go to everyone attached as one line of their own on stderr,
 * "\r\n[tierline] ...\r\n", between the shell's output; names and reasons in
 * them are escaped (proto/text.h).
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A name or reason as shown in a notice or a marker: one line, escaped, clipped. */
static void shown(char *out, size_t size, const char *text, size_t width)
{
    tl_text_clip(out, size, text, width, TL_TEXT_LINE);
}

/* A notice line to one technician's terminal. */
static void notice(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void notice(struct session *s, const char *fmt, ...)
{
    if (s == NULL || s->exec == NULL)
        return;
    char line[1400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    tl_exec_printf(s->exec, TL_EXEC_STDERR, "\r\n[tierline] %s\r\n", line);
}

/* The same notice to the owner and every session attached to its shell. */
static void notice_all(struct session *owner, const char *line)
{
    notice(owner, "%s", line);
    for (struct session *a = owner->attached; a != NULL; a = a->attached_next)
        notice(a, "%s", line);
}

struct session *tl__session_controller(struct session *owner)
{
    return owner->control != NULL ? owner->control : owner;
}

/* The ticket's live shell a taker may ask for: the newest one whose channel is open. */
static struct session *live_shell(struct session *taker)
{
    for (struct session *s = taker->sessions->head; s != NULL; s = s->next)
        if (s != taker && s->kind == TL_SESSION_JOIN && !s->observe && !s->take &&
            s->ticket_id == taker->ticket_id && s->phase == PHASE_CHANNEL &&
            s->channel_state == CHANNEL_OPEN)
            return s;
    return NULL;
}

const char *tl__session_take_refusal(struct session *taker, char *why, size_t size)
{
    struct session *owner = live_shell(taker);
    if (owner == NULL) {
        snprintf(why, size, "%s has no live shell to take over (join %s opens one)", taker->ticket,
                 taker->ticket);
        return why;
    }
    struct session *ctl = tl__session_controller(owner);
    char name[200];
    if (strcmp(ctl->tech.name, taker->tech.name) == 0) {
        snprintf(why, size, "you are in control of the shell on %s already", taker->ticket);
        return why;
    }
    if (owner->asking != NULL && owner->asking != taker) {
        shown(name, sizeof name, owner->asking->tech.name, 64);
        snprintf(why, size,
                 "%s is asking for control of the shell on %s already; try again when "
                 "that is settled",
                 name, taker->ticket);
        return why;
    }
    return NULL;
}

/* ---- the record ------------------------------------------------------------------------------ */

/* session.control: who has control of which shell now, and how it came to them. */
static json_t *control_details(struct session *taker, const char *outcome)
{
    struct session *owner = taker->owner;
    json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:s}", "shell_grant", owner->grant, "grant",
                                taker->grant, "from", tl__session_controller(owner)->tech.name,
                                "to", taker->tech.name, "outcome", outcome);
    if (details != NULL && taker->reason_given)
        json_object_set_new(details, "reason", json_string(taker->reason));
    return details;
}

/* [t, "m", "control bob from alice (handed)"], the reason escaped; the recording escapes the
 * rest for JSON. */
static void mark(struct session *owner, struct session *taker, const char *from, const char *how,
                 int with_reason)
{
    if (owner->recording == NULL)
        return;
    char to_name[200], from_name[200], reason[1100], text[1600];
    shown(to_name, sizeof to_name, taker->tech.name, 64);
    shown(from_name, sizeof from_name, from, 64);
    if (with_reason && taker->reason_given) {
        shown(reason, sizeof reason, taker->reason, 256);
        snprintf(text, sizeof text, "control %s from %s (%s): %s", to_name, from_name, how, reason);
    } else {
        snprintf(text, sizeof text, "control %s from %s (%s)", to_name, from_name, how);
    }
    tl_recording_marker(owner->recording, text);
}

/* ---- the answer ------------------------------------------------------------------------------ */

static void settle_wait(struct session *taker)
{
    uv_timer_stop(&taker->timer);
    if (taker->owner != NULL && taker->owner->asking == taker)
        taker->owner->asking = NULL;
}

/* The taker does not get control: it is told why and ends (exit status 1). */
static void refused(struct session *taker, const char *cause, const char *message)
{
    tl__session_set_end(taker, cause, "%s", message);
    tl__session_conclude(taker);
}

/* The refusal is on the record (or could not be: nothing changes either way). */
static void refusal_recorded(struct session *taker, struct sjob *job, int status)
{
    if (status != 0)
        tl_log_error("take-over refusal not recorded ticket=%s tech=%s reason=%s", taker->ticket,
                     taker->tech.name, tl_strerror(status));
}

/* session.control is on the record: the roles swap, or nothing changes if it is not. */
static void handed_recorded(struct session *taker, struct sjob *job, int status)
{
    struct session *owner = taker->owner;
    taker->handing = 0;
    if (owner != NULL && owner->asking == taker)
        owner->asking = NULL;
    if (owner == NULL || taker->phase != PHASE_CHANNEL || owner->channel_state != CHANNEL_OPEN) {
        if (taker->phase == PHASE_CHANNEL)
            refused(taker, "ended", "the shell ended before control was handed over");
        return;
    }
    if (status != 0) {
        char line[300];
        snprintf(line, sizeof line,
                 "control was not handed over: the audit log could not record it (%s)",
                 tl_strerror(status));
        notice(tl__session_controller(owner), "%s", line);
        refused(taker, "relay", line);
        return;
    }
    struct session *previous = tl__session_controller(owner);
    char from[65];
    snprintf(from, sizeof from, "%s", previous->tech.name);
    int forced = job != NULL && job->forced;
    /* What the previous one typed and the agent has not taken stays theirs: they resume as a
     * watcher (their held input is dropped with their next keystroke). */
    owner->control = taker;
    if (owner->held > 0 && owner->agent != NULL) {
        /* Output the previous one had not taken yet: no longer held against the shell. */
        tl_mux_consumed(tl_agent_mux(owner->agent), owner->channel, owner->held);
        owner->held = 0;
    }
    if (previous->input_blocked && previous->exec != NULL) {
        previous->input_blocked = 0;
        tl_exec_resume_input(previous->exec); /* it watches now: its keys are read, not sent */
    }
    owner->escape_held = 0;
    owner->line_start = 1;
    taker->input_blocked = 0;
    if (taker->exec != NULL)
        tl_exec_resume_input(taker->exec);
    mark(owner, taker, from, forced ? "forced" : "handed over", 1);
    tl__session_send_resize(owner);
    if (owner->recording != NULL && taker->exec != NULL) {
        const tl_exec_pty_t *pty = tl_exec_pty(taker->exec);
        if (pty->cols >= 1 && pty->cols <= 1000 && pty->rows >= 1 && pty->rows <= 1000)
            tl_recording_resize(owner->recording, pty->cols, pty->rows);
    }
    char to_name[200], from_name[200], line[600];
    shown(to_name, sizeof to_name, taker->tech.name, 64);
    shown(from_name, sizeof from_name, from, 64);
    snprintf(line, sizeof line, "%s is in control of the shell on %s now (%s %s)", to_name,
             owner->ticket, forced ? "taken from" : "handed over by", from_name);
    notice_all(owner, line);
    tl_log_info("shell control ticket=%s grant=%s from=%s to=%s how=%s", owner->ticket,
                owner->grant, from, taker->tech.name, forced ? "forced" : "handed");
}

/* Control goes to the taker once the record says so (fail closed). */
static void hand_over(struct session *taker, int forced)
{
    settle_wait(taker);
    taker->owner->asking = taker; /* no second answer while it is recorded */
    taker->handing = 1;
    struct sjob *job = tl__sjob_new(taker, NULL, handed_recorded);
    if (job == NULL) {
        handed_recorded(taker, NULL, TL_ENOMEM);
        return;
    }
    job->forced = forced;
    tl__sjob_record(job, "session.control", "session.control",
                    control_details(taker, forced ? "forced" : "handed"));
    tl__sjob_submit(taker, job);
}

/*
 * The request changed nothing (outcome "refused" or "unanswered"): on the record, the one in
 * control told (told_controller), the taker told why (after the controller's name).
 */
static void decline(struct session *taker, const char *outcome, const char *told_controller,
                    const char *why)
{
    struct session *ctl = tl__session_controller(taker->owner);
    char name[200], line[600];
    shown(name, sizeof name, ctl->tech.name, 64);
    tl__session_record(taker, "session.control", "session.control", control_details(taker, outcome),
                       refusal_recorded);
    settle_wait(taker);
    notice(ctl, "%s", told_controller);
    snprintf(line, sizeof line, "%s %s", name, why);
    refused(taker, outcome, line);
}

/* The one in control typed ~y or ~n. */
static void answer(struct session *owner, int yes)
{
    struct session *taker = owner->asking;
    if (taker == NULL || taker->handing)
        return;
    if (yes) {
        hand_over(taker, 0);
        return;
    }
    char why[200];
    snprintf(why, sizeof why, "refused to hand over control of the shell on %s", owner->ticket);
    decline(taker, "refused", "you keep control of the shell", why);
}

static void on_take_wait(uv_timer_t *timer)
{
    struct session *taker = timer->data;
    struct session *owner = taker->owner;
    if (owner == NULL || owner->asking != taker || taker->handing)
        return;
    if (taker->reason_given) {
        hand_over(taker, 1);
        return;
    }
    char why[200];
    snprintf(why, sizeof why,
             "did not answer within %u s; join --take with --reason takes control without an "
             "answer",
             taker->sessions->take_wait_ms / 1000);
    decline(taker, "unanswered", "the request for control was withdrawn (no answer)", why);
}

/* ---- attach, detach ------------------------------------------------------------------------- */

void tl__session_take_attach(struct session *taker)
{
    char why[400];
    if (taker->exec == NULL) {
        tl__session_conclude(taker); /* left while the user was asked */
        return;
    }
    if (tl__session_take_refusal(taker, why, sizeof why) != NULL) {
        refused(taker, "no-shell", why);
        return;
    }
    struct session *owner = live_shell(taker);
    taker->owner = owner;
    taker->attached_next = owner->attached;
    owner->attached = taker;
    owner->asking = taker;
    taker->raw = 1;
    if (taker->exec != NULL)
        tl_exec_set_raw(taker->exec);
    struct session *ctl = tl__session_controller(owner);
    char to_name[200], from_name[200], reason[1100], when[32];
    shown(to_name, sizeof to_name, taker->tech.name, 64);
    shown(from_name, sizeof from_name, ctl->tech.name, 64);
    uint32_t wait_ms = taker->sessions->take_wait_ms;
    tl__sessions_iso_time(tl_wall_ms() + wait_ms, when);
    notice(taker, "asking %s for control of the shell on %s; %s", from_name, taker->ticket,
           taker->reason_given ? "without an answer you take it at the deadline"
                               : "without an answer (or --reason) nothing changes");
    if (taker->reason_given) {
        shown(reason, sizeof reason, taker->reason, 256);
        notice(ctl,
               "%s asks for control of this shell (%s): type ~y to hand over, ~n to keep it, at "
               "the start of a line; %s takes it at %s without an answer",
               to_name, reason, to_name, when);
    } else {
        notice(ctl,
               "%s asks for control of this shell: type ~y to hand over, ~n to keep it, at the "
               "start of a line; no answer by %s keeps it",
               to_name, when);
    }
    for (struct session *a = owner->attached; a != NULL; a = a->attached_next)
        if (a != taker && a != ctl)
            notice(a, "%s asks %s for control of the shell", to_name, from_name);
    if (owner != ctl)
        notice(owner, "%s asks %s for control of the shell", to_name, from_name);
    uv_timer_start(&taker->timer, on_take_wait, wait_ms, 0);
    tl_log_info("shell control asked ticket=%s grant=%s from=%s to=%s", owner->ticket, owner->grant,
                ctl->tech.name, taker->tech.name);
}

void tl__session_control_detach(struct session *s)
{
    if (s->owner != NULL) {
        struct session *owner = s->owner;
        settle_wait(s);
        for (struct session **link = &owner->attached; *link != NULL;
             link = &(*link)->attached_next) {
            if (*link == s) {
                *link = s->attached_next;
                break;
            }
        }
        s->owner = NULL;
        s->attached_next = NULL;
        if (owner->control == s) {
            /* The one in control left: control goes back to the shell's owner, or, when
             * the owner has left too, the shell ends. */
            owner->control = NULL;
            owner->escape_held = 0;
            owner->line_start = 1;
            if (owner->exec == NULL) {
                tl__session_set_end(owner, "left", "the technician in control left");
                tl__session_end_channel(owner);
            } else {
                char name[200], line[400];
                shown(name, sizeof name, s->tech.name, 64);
                snprintf(line, sizeof line, "%s left; control of the shell is back with you", name);
                notice(owner, "%s", line);
                mark(owner, owner, s->tech.name, "returned", 0);
                tl__session_send_resize(owner);
                if (owner->input_blocked) {
                    owner->input_blocked = 0;
                    tl_exec_resume_input(owner->exec);
                }
            }
        }
        return;
    }
    /* An owner whose shell ended: those attached end with it, with its status. */
    while (s->attached != NULL) {
        struct session *a = s->attached;
        a->finished = s->finished;
        a->exit_status = s->exit_status;
        snprintf(a->exit_signal, sizeof a->exit_signal, "%s", s->exit_signal);
        if (s->end_message[0] != '\0')
            tl__session_set_end(a, s->end_cause, "%s", s->end_message);
        else if (!s->finished)
            tl__session_set_end(a, "ended", "the shell ended");
        tl__session_conclude(a); /* detaches it */
        if (s->attached == a) {
            /* It had concluded already (its record is being written): let go here. */
            s->attached = a->attached_next;
            a->owner = NULL;
            a->attached_next = NULL;
        }
    }
    s->control = NULL;
    s->asking = NULL;
}

/* ---- input and output ------------------------------------------------------------------------ */

/* The last byte of what went into the shell: at a line's start next? */
static void track_line(struct session *owner, const uint8_t *bytes, size_t written)
{
    if (written > 0)
        owner->line_start = bytes[written - 1] == '\r' || bytes[written - 1] == '\n';
}

/* Took some of the input on purpose (not for want of room): the rest is offered again at once. */
static size_t took_part(struct session *ctl, size_t took, size_t len)
{
    if (took < len && ctl->exec != NULL)
        tl_exec_resume_input(ctl->exec);
    return took;
}

size_t tl__session_control_input(struct session *owner, struct session *ctl, const uint8_t *bytes,
                                 size_t len)
{
    if (len == 0)
        return 0;
    if (owner->escape_held) {
        /* A '~' at a line's start was held: ~y or ~n answers, anything else goes on. */
        if (owner->asking != NULL && (bytes[0] == 'y' || bytes[0] == 'n')) {
            owner->escape_held = 0;
            owner->line_start = 0;
            answer(owner, bytes[0] == 'y');
            return took_part(ctl, 1, len);
        }
        if (tl__session_shell_write(owner, ctl, (const uint8_t *)"~", 1) == 0)
            return 0;
        owner->escape_held = 0;
        owner->line_start = 0;
    }
    size_t offer = len;
    if (owner->asking != NULL) {
        for (size_t i = 0; i < len; i++) {
            int at_start =
                i == 0 ? owner->line_start : bytes[i - 1] == '\r' || bytes[i - 1] == '\n';
            if (bytes[i] != '~' || !at_start)
                continue;
            if (i == 0) {
                owner->escape_held = 1;
                return took_part(ctl, 1, len);
            }
            offer = i; /* up to the '~'; the rest comes back at once */
            break;
        }
    }
    size_t written = tl__session_shell_write(owner, ctl, bytes, offer);
    track_line(owner, bytes, written);
    return written == offer ? took_part(ctl, offer, len) : written;
}

void tl__session_control_output(struct session *owner, uint8_t stream, const uint8_t *data,
                                size_t len)
{
    for (struct session *a = owner->attached; a != NULL; a = a->attached_next) {
        /* A copy: whoever has no room loses it, and holds back no one (as observers do). */
        if (a->exec != NULL && tl_exec_buffered(a->exec) < TL_EXEC_HIGH_WATER)
            tl_exec_write(a->exec, stream == TL_STREAM_STDERR ? TL_EXEC_STDERR : TL_EXEC_STDOUT,
                          data, len);
        else
            a->dropped += len;
    }
}

void tl_sessions_set_take_wait(tl_sessions_t *sessions, uint32_t wait_ms)
{
    sessions->take_wait_ms = wait_ms != 0 ? wait_ms : TL_SESSIONS_TAKE_WAIT_MS;
}
