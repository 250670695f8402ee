/*
 * Technicians' sessions on users' machines (relay/sessions/sessions.h): the
 * table of sessions, how one starts, its phases and how it ends.
 * docs/protocol.md §7.6-7.9 is the wire contract with the agent;
 * docs/technicians.md describes the commands. The other concerns have files
 * of their own in this folder (relay/sessions/sessions_int.h lists them).
 *
 * A session walks through phases, each ended by a storage job or an answer
 * from the agent:
 *
 *   LOOKUP      job: the ticket (visible to this technician?) and its device
 *   CATALOGUE   runbooks.list (fix, runbooks; catalogue.c)
 *   ASK         job: "consent asked" on the timeline and in the audit log (consent.c)
 *   CONSENT     session.request waiting for the user
 *   GRANTED     job: "consent granted" and "session started" recorded
 *   CHANNEL     the session channel is open: bytes flow (bridge.c)
 *   FINAL       job: evidence stored, "session ended" recorded
 *   DONE        the technician has been told; freed once no job is in flight
 *
 * Whatever happens meanwhile (the technician leaves, the user ends the grant,
 * the agent disconnects) is noted on the session and acted on when the
 * current phase ends, so no step ever runs twice or under another's feet.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/desk/tickets.h"
#include "relay/desk/vendor.h"
#include "relay/store/store.h"
#include "relay/store/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RECORDINGS_DIR "recordings"

/* ---- text ------------------------------------------------------------------------------------ */

static int utf8_valid(const char *text)
{
    return tl_text_utf8_valid(text, strlen(text));
}

/*
 * Text from the agent, as the technician is shown it (proto/text.h): one
 * line, every control character and byte that is not UTF-8 escaped
 * visibly, bounded by size, always terminated.
 */
void tl__sessions_clean_line(char *out, size_t size, const uint8_t *in, size_t len)
{
    /* As text first (a NUL or a stray byte becomes \xHH), then escaped and clipped. */
    char *text = tl_text_utf8_dup(in, len);
    tl_text_clip(out, size, text != NULL ? text : "", 0, TL_TEXT_LINE);
    free(text);
}

void tl__sessions_clean_text(char *out, size_t size, const char *text)
{
    tl__sessions_clean_line(out, size, (const uint8_t *)(text ? text : ""),
                            text ? strlen(text) : 0);
}

/* "2026-11-23T19:04:05.123Z" */
void tl__sessions_iso_time(int64_t ms, char out[32])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    char base[24];
    if (gmtime_r(&seconds, &utc) == NULL ||
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &utc) == 0)
        base[0] = '\0';
    snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

enum tl_channel_type tl__session_channel(enum tl_session_kind kind, int observe)
{
    switch (kind) {
    case TL_SESSION_DIAG:
        return TL_CHANNEL_DIAG;
    case TL_SESSION_RUN:
        return TL_CHANNEL_EXEC;
    case TL_SESSION_JOIN:
        return observe ? TL_CHANNEL_OBSERVE : TL_CHANNEL_SHELL;
    case TL_SESSION_FIX:
        return TL_CHANNEL_RUNBOOK;
    default:
        return TL_CHANNEL_UNKNOWN;
    }
}

const char *tl__session_kind_name(enum tl_session_kind kind, int observe)
{
    enum tl_channel_type channel = tl__session_channel(kind, observe);
    return channel != TL_CHANNEL_UNKNOWN ? tl_channel_type_name(channel) : "runbooks";
}

static int signal_number(const char *name)
{
    static const char *const names[] = {NULL,   "HUP",  "INT",  "QUIT", "ILL",  "TRAP",
                                        "ABRT", "BUS",  "FPE",  "KILL", "USR1", "SEGV",
                                        "USR2", "PIPE", "ALRM", "TERM"};
    if (strncmp(name, "SIG", 3) == 0)
        name += 3;
    for (int i = 1; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return 0;
}

/* ---- telling the technician ------------------------------------------------------------------ */

/* One line on the technician's stderr, "tierline: ..."; \r\n once the terminal is raw. */
void tl__session_say(struct session *s, const char *fmt, ...)
{
    if (s->exec == NULL)
        return;
    char line[1400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    tl_exec_printf(s->exec, TL_EXEC_STDERR, "%stierline: %s%s", s->raw ? "\r\n" : "", line,
                   s->raw ? "\r\n" : "\n");
}

/* The session is answered: the exec ends with code, and the session goes once idle. */
void tl__session_finish(struct session *s, int code)
{
    if (s->exec != NULL)
        tl_exec_finish(s->exec, code);
    s->exec = NULL;
    s->phase = PHASE_DONE;
    tl__session_maybe_release(s);
}

void tl__session_fail(struct session *s, const char *fmt, ...)
{
    char line[1200];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    tl__session_say(s, "%s", line);
    tl__session_finish(s, 1);
}

/* Ends early, for a reason that is told when the session is concluded. */
void tl__session_set_end(struct session *s, const char *cause, const char *fmt, ...)
{
    if (s->end_message[0] != '\0')
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(s->end_message, sizeof s->end_message, fmt, args);
    va_end(args);
    snprintf(s->end_cause, sizeof s->end_cause, "%s", cause);
}

/* ---- lifetime -------------------------------------------------------------------------------- */

static void session_closed(uv_handle_t *handle)
{
    struct session *s = handle->data;
    tl_sessions_t *sessions = s->sessions;
    json_decref(s->argv);
    json_decref(s->runbook_args);
    tl__capture_free(&s->out);
    tl__capture_free(&s->err);
    json_decref(s->signals);
    tl_metrics_session_ended(tl__session_kind_name(s->kind, s->observe));
    free(s);
    if (--sessions->count == 0)
        uv_unref((uv_handle_t *)&sessions->keepalive);
}

/* Frees the session once it has answered and nothing of it is in flight. */
void tl__session_maybe_release(struct session *s)
{
    if (s->phase != PHASE_DONE || s->jobs > 0 || s->exec != NULL || s->recording_pending ||
        uv_is_closing((uv_handle_t *)&s->timer))
        return;
    if (s->request_id != 0 && s->agent != NULL)
        tl_agent_request_cancel(s->agent, s->request_id);
    s->request_id = 0;
    /* A channel still open when we give up on it is forgotten: later events are dropped. */
    if (s->channel_state != CHANNEL_NONE && s->channel_state != CHANNEL_GONE && s->agent != NULL &&
        tl_agent_mux(s->agent) != NULL)
        tl_mux_set_data(tl_agent_mux(s->agent), s->channel, NULL);
    tl_sessions_t *sessions = s->sessions;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        sessions->head = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, session_closed);
}

/* ---- flow: lookup ---------------------------------------------------------------------------- */

int tl__ticket_access(tl_job_ctx_t *ctx, const struct ticket_access *access, int64_t *device_id,
                      int64_t *access_until, char *message, size_t size)
{
    tl_ticket_row_t ticket = {0};
    int role = tl_role_parse(access->tech->role);
    message[0] = '\0';
    /* Vendors work only on tickets bound to them; others do not exist for them, and trying is
     * audited (relay/desk/vendor.h). */
    int rc = tl_vendor_ticket_access(ctx->store, role, access->tech->name, access->ticket_id,
                                     tl_wall_ms(), access_until);
    if (rc == TL_ENOTFOUND) {
        json_t *details =
            json_pack("{s:s, s:s, s:s}", "command", access->command, "role", access->tech->role,
                      "reason", "ticket not bound to the account");
        int audit_rc =
            tl_worker_audit(ctx, access->actor, "access.denied", access->ticket, details);
        json_decref(details);
        if (audit_rc != 0)
            return audit_rc;
    }
    if (rc == 0)
        rc = tl_store_ticket_read(ctx->store, access->ticket_id, &ticket);
    if (rc == 0) {
        if (access->active && !tl_ticket_status_active(ticket.status))
            /* A resolved or closed ticket takes no sessions until it is reopened. */
            snprintf(message, size, "%s is %s; reopen it first (ticket reopen %s)", access->ticket,
                     ticket.status, access->ticket);
        else
            *device_id = ticket.device_id;
        tl_ticket_row_clear(&ticket);
    }
    if (rc == TL_ENOTFOUND)
        snprintf(message, size, "no ticket %s", access->ticket);
    else if (rc != 0)
        return rc;
    return 0;
}

static int work_lookup(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    /* Listing the catalogue is no session: it needs no active ticket. */
    struct ticket_access access = {&s->tech,
                                   s->actor,
                                   s->ticket_id,
                                   s->ticket,
                                   tl__session_kind_name(s->kind, s->observe),
                                   s->kind != TL_SESSION_RUNBOOKS};
    int rc = tl__ticket_access(ctx, &access, &job->device_id, &job->access_until, job->message,
                               sizeof job->message);
    /* diag: has the machine given these diagnostics within the day? (repeat.c) */
    if (rc == 0 && job->message[0] == '\0' && s->kind == TL_SESSION_DIAG)
        rc = tl__session_find_repeat(s, ctx, job->device_id);
    if (rc != 0)
        snprintf(job->message, sizeof job->message, "%s", tl_strerror(rc));
    /* Reading is not a change: the ticket is answered, not the job failed. */
    return 0;
}

static unsigned sessions_on_agent(const tl_sessions_t *sessions, const tl_agent_link_t *agent)
{
    unsigned count = 0;
    for (const struct session *s = sessions->head; s != NULL; s = s->next)
        if (s->agent == agent)
            count++;
    return count;
}

static void lookup_done(struct session *s, struct sjob *job, int status)
{
    if (s->exec == NULL) {
        tl__session_finish(s, 1);
        return;
    }
    if (status != 0 || job->message[0] != '\0') {
        tl__session_fail(s, "%s", status != 0 ? tl_strerror(status) : job->message);
        return;
    }
    /* A vendor's session ends when its binding to the ticket or its account does: the machine
     * is asked for a grant no longer than that, and ends the session itself. */
    int64_t until = job->access_until;
    if (s->tech.expires != 0 && (until == 0 || s->tech.expires < until))
        until = s->tech.expires;
    if (until != 0) {
        int64_t left_s = (until - tl_wall_ms()) / 1000;
        char when[TL_UTC_TEXT];
        tl_format_utc(until, when);
        if (left_s < 60) {
            tl__session_fail(s, "your access to %s ends at %s, too soon for a session", s->ticket,
                             when);
            return;
        }
        if ((int64_t)s->duration_s > left_s)
            s->duration_s = (uint32_t)left_s;
    }
    s->device_id = job->device_id;
    tl_id_format(s->device, TL_ID_DEVICE, s->device_id);
    tl_agent_link_t *agent = s->sessions->find_agent(s->sessions->find_ctx, s->device_id);
    if (agent == NULL) {
        tl__session_fail(s, "device %s is offline; the request can be retried when it connects",
                         s->device);
        return;
    }
    if (sessions_on_agent(s->sessions, agent) >= TL_SESSIONS_PER_AGENT) {
        tl__session_fail(s, "%s has %d sessions already; try again when one ends", s->device,
                         TL_SESSIONS_PER_AGENT);
        return;
    }
    char why[400];
    if (s->take && tl__session_take_refusal(s, why, sizeof why) != NULL) {
        tl__session_fail(s, "%s", why); /* nobody is asked for a shell that is not there */
        return;
    }
    s->agent = agent;
    if (s->kind == TL_SESSION_FIX || s->kind == TL_SESSION_RUNBOOKS)
        tl__session_request_catalogue(s);
    else {
        tl__session_warn_repeat(s);
        tl__session_ask_consent(s);
    }
}

/* ---- the end --------------------------------------------------------------------------------- */

/* diag: the report was kept; the technician is told what it is called. */
static void print_diag_evidence(struct session *s)
{
    if (s->json) {
        json_t *doc =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "ticket", s->ticket, "grant", s->grant,
                      "kind", "diagnostics", "sha256", s->evidence_hash, "name", s->evidence_name,
                      "size", (json_int_t)s->evidence_size, "repeats", tl__session_repeat_json(s));
        char *text = doc ? tl_text_json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text != NULL)
            tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%s\n", text);
        free(text);
        json_decref(doc);
    } else {
        tl_exec_printf(s->exec, TL_EXEC_STDOUT, "evidence %s %s (%" PRIu64 " bytes) added to %s\n",
                       s->evidence_hash, s->evidence_name, s->evidence_size, s->ticket);
    }
}

void tl_sessions_set_checkpoints(tl_sessions_t *sessions, tl_audit_checkpoints_t *checkpoints)
{
    sessions->checkpoints = checkpoints;
}

void tl__session_final_done(struct session *s, struct sjob *job, int status)
{
    /* Its end is on the record: a checkpoint covers it (docs/audit-format.md §14). */
    if (status == 0 && s->sessions->checkpoints != NULL) {
        int asked = tl_audit_checkpoints_request(
            s->sessions->checkpoints, tl_audit_checkpoint_logged, (void *)"at a session's end");
        if (asked != 0 && asked != TL_ECLOSED)
            tl_log_error("audit checkpoint at a session's end not asked for error=\"%s\"",
                         tl_strerror(asked));
    }
    if (s->exec == NULL) {
        tl__session_finish(s, 1);
        return;
    }
    int code;
    if (s->kind == TL_SESSION_DIAG && s->diag_error == 0)
        s->diag_error = s->writer_failed;
    if (s->late_end_message[0] != '\0' && s->end_message[0] == '\0' &&
        (s->late_unfinished || !s->finished)) {
        /* The worker is done with the outcome: the loop may change it now. */
        snprintf(s->end_message, sizeof s->end_message, "%s", s->late_end_message);
        s->finished = 0;
    }
    if (status != 0) {
        tl__session_say(s, "cannot keep the session's record: %s", tl_strerror(status));
        code = 1;
    } else if (s->kind == TL_SESSION_DIAG && s->evidence_hash[0] != '\0') {
        print_diag_evidence(s);
        code = 0;
    } else if (s->end_message[0] != '\0') {
        tl__session_say(s, "%s", s->end_message);
        code = 1;
    } else if (s->kind == TL_SESSION_DIAG) {
        if (s->diag_error == TL_EFULL)
            tl__session_say(s, "the diagnostics report is larger than %u MiB; nothing was kept",
                            TL_SESSIONS_MAX_DIAG >> 20);
        else if (s->diag_error != 0)
            tl__session_say(s, "the diagnostics report could not be kept: %s",
                            tl_strerror(s->diag_error));
        else if (s->finished && s->exit_signal[0] != '\0')
            tl__session_say(s, "diagnostics stopped on the machine (signal %s)", s->exit_signal);
        else
            tl__session_say(s, "the machine could not collect diagnostics (exit status %d)",
                            s->exit_status);
        code = 1;
    } else if (s->finished && s->exit_signal[0] != '\0') {
        int number = signal_number(s->exit_signal);
        code = number > 0 ? 128 + number : 1;
    } else if (s->finished) {
        code = s->exit_status >= 0 && s->exit_status <= 255 ? s->exit_status : 1;
    } else if (s->left_by_technician) {
        code = 0; /* an observer who pressed Ctrl-C */
    } else {
        tl__session_say(s, "the machine ended the session without an exit status");
        code = 1;
    }
    if (s->kind == TL_SESSION_JOIN && s->recording_status != 0) {
        tl__session_say(s, "the session's recording could not be stored: %s",
                        tl_strerror(s->recording_status));
        code = 1;
    }
    tl__session_finish(s, code);
}

/*
 * The channel is gone (or never opened): keep what the session produced and
 * record its end, then tell the technician (tl__session_final_done).
 */
void tl__session_conclude(struct session *s)
{
    if (s->phase == PHASE_FINAL || s->phase == PHASE_DONE)
        return;
    s->phase = PHASE_FINAL;
    tl__session_control_detach(s); /* a shell's takers end with it; a taker leaves it */
    s->ended_ms = tl_wall_ms();
    if (!s->started) {
        tl__session_finish(s, 1);
        return;
    }
    if (s->kind == TL_SESSION_JOIN && s->recording != NULL) {
        tl_recording_t *recording = s->recording;
        s->recording = NULL;
        s->recording_pending = 1;
        tl_recording_finish(recording, tl__session_recording_done, s);
        return;
    }
    struct sjob *job;
    if (s->kind == TL_SESSION_DIAG) {
        job = tl__sjob_new(s, tl__session_work_diag_final, tl__session_final_done);
        if (job != NULL)
            job->keep = s->diag_error == 0 && s->end_message[0] == '\0' && s->finished &&
                        s->exit_signal[0] == '\0' && s->exit_status == 0;
    } else if ((s->kind == TL_SESSION_RUN || s->kind == TL_SESSION_FIX) &&
               s->channel_state == CHANNEL_GONE && s->started_ms > 0) {
        /* The evidence is named on the worker, once its hash is known (tl__session_name_evidence).
         */
        job = tl__sjob_new(s, tl__session_work_transcript, tl__session_final_done);
    } else {
        job = tl__sjob_new(s, NULL, tl__session_final_done);
    }
    if (job == NULL) {
        tl__session_fail(s, "out of memory");
        return;
    }
    tl__sjob_record(job, tl__session_end_event(s), "session.end", tl__session_end_details(s));
    tl__sjob_submit(s, job);
}

/* ---- from the agent: the end of the connection ----------------------------------------------- */

void tl_sessions_agent_closed(tl_sessions_t *sessions, tl_agent_link_t *agent)
{
    tl__files_agent_closed(sessions, agent);
    /* tl__session_conclude() may free nothing here (jobs are submitted), but take next first
     * anyway. */
    for (struct session *s = sessions->head, *next; s != NULL; s = next) {
        next = s->next;
        if (s->agent != agent)
            continue;
        s->agent = NULL;
        if (s->phase >= PHASE_FINAL)
            continue; /* it ended already; the record is being written */
        tl__session_set_end(s, "offline", "the machine went offline");
        if (s->phase == PHASE_CHANNEL) {
            /* The mux goes with the connection: the channel is gone without callbacks. */
            s->channel_state = CHANNEL_GONE;
            uv_timer_stop(&s->timer);
            tl__session_conclude(s);
        }
    }
}

/* ---- start ----------------------------------------------------------------------------------- */

static unsigned sessions_of_technician(const tl_sessions_t *sessions, const char *name)
{
    unsigned count = 0;
    for (const struct session *s = sessions->head; s != NULL; s = s->next)
        if (strcmp(s->tech.name, name) == 0 && s->phase != PHASE_DONE)
            count++;
    return count;
}

static uint32_t default_duration(enum tl_session_kind kind)
{
    switch (kind) {
    case TL_SESSION_DIAG:
        return 15 * 60;
    case TL_SESSION_FIX:
        return 30 * 60;
    default:
        return 60 * 60;
    }
}

/* No --reason: the user sees the reason, so it says what is asked for. */
static void default_reason(struct session *s)
{
    if (s->kind == TL_SESSION_RUN) {
        int used = snprintf(s->reason, sizeof s->reason, "run %s:", s->ticket);
        size_t i;
        json_t *word;
        json_array_foreach(s->argv, i, word) {
            int n = snprintf(s->reason + used, sizeof s->reason - (size_t)used, " %s",
                             json_string_value(word));
            if (n < 0 || (size_t)(used + n) >= sizeof s->reason) {
                /* Cut at a character boundary, and say it was cut. */
                size_t end = sizeof s->reason - 4;
                while (end > 0 && ((uint8_t)s->reason[end] & 0xc0) == 0x80)
                    end--;
                memcpy(s->reason + end, "...", 4);
                break;
            }
            used += n;
        }
    } else if (s->kind == TL_SESSION_FIX) {
        snprintf(s->reason, sizeof s->reason, "fix %s: %s", s->ticket, s->runbook);
    } else if (s->kind == TL_SESSION_JOIN) {
        snprintf(s->reason, sizeof s->reason, "%s %s",
                 s->observe ? "observe"
                 : s->take  ? "take"
                            : "join",
                 s->ticket);
    } else {
        snprintf(s->reason, sizeof s->reason, "diag %s", s->ticket);
    }
}

/* Copies the request's words; TL_EINVAL (usage) for text that is not UTF-8. */
static int take_request(struct session *s, const tl_session_request_t *request)
{
    s->kind = request->kind;
    s->observe = request->observe;
    s->take = request->take;
    s->reason_given = request->reason != NULL;
    s->json = request->json;
    s->ticket_id = request->ticket_id;
    snprintf(s->ticket, sizeof s->ticket, "%s", request->ticket);
    s->duration_s = request->duration_s ? request->duration_s : default_duration(request->kind);
    if (request->reason != NULL) {
        if (!utf8_valid(request->reason) || strlen(request->reason) > TL_SESSIONS_MAX_REASON)
            return TL_EINVAL;
        snprintf(s->reason, sizeof s->reason, "%s", request->reason);
    }
    if (request->kind == TL_SESSION_RUN) {
        if ((s->argv = json_array()) == NULL)
            return TL_ENOMEM;
        for (int i = 0; i < request->argc; i++) {
            if (!utf8_valid(request->argv[i]))
                return TL_EINVAL;
            json_array_append_new(s->argv, json_string(request->argv[i]));
        }
    }
    if (request->kind == TL_SESSION_FIX) {
        snprintf(s->runbook, sizeof s->runbook, "%s", request->runbook ? request->runbook : "");
        if ((s->runbook_args = json_object()) == NULL)
            return TL_ENOMEM;
        for (int i = 0; i < request->argc; i++) {
            const char *equals = strchr(request->argv[i], '=');
            if (equals == NULL || !utf8_valid(equals + 1))
                return TL_EINVAL;
            char name[40];
            snprintf(name, sizeof name, "%.*s", (int)(equals - request->argv[i]), request->argv[i]);
            json_object_set_new(s->runbook_args, name, json_string(equals + 1));
        }
    }
    if (s->reason[0] == '\0')
        default_reason(s);
    return 0;
}

void tl_sessions_start(tl_sessions_t *sessions, tl_exec_t *exec,
                       const tl_session_request_t *request)
{
    const tl_technician_t *tech = tl_exec_technician(exec);
    if (sessions == NULL) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: sessions are not available here\n");
        tl_exec_finish(exec, 1);
        return;
    }
    if (sessions->count >= TL_SESSIONS_MAX ||
        sessions_of_technician(sessions, tech->name) >= TL_SESSIONS_PER_TECHNICIAN) {
        tl_exec_printf(exec, TL_EXEC_STDERR,
                       "tierline: you have %d sessions open already; end one first\n",
                       TL_SESSIONS_PER_TECHNICIAN);
        tl_exec_finish(exec, 1);
        return;
    }
    struct session *s = calloc(1, sizeof *s);
    int rc = s == NULL ? TL_ENOMEM : take_request(s, request);
    if (rc != 0) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: %s\n",
                       rc == TL_EINVAL ? "the command line is not valid UTF-8" : tl_strerror(rc));
        tl_exec_finish(exec, rc == TL_EINVAL ? 2 : 1);
        if (s != NULL) {
            json_decref(s->argv);
            json_decref(s->runbook_args);
            free(s);
        }
        return;
    }
    s->sessions = sessions;
    tl_metrics_session_started(tl__session_kind_name(s->kind, s->observe));
    s->exec = exec;
    s->tech = *tech;
    s->role = tl_role_parse(tech->role);
    snprintf(s->actor, sizeof s->actor, "tech:%s", tech->name);
    s->phase = PHASE_LOOKUP;
    uv_timer_init(sessions->loop, &s->timer);
    s->timer.data = s;
    s->next = sessions->head;
    if (sessions->head != NULL)
        sessions->head->prev = s;
    sessions->head = s;
    if (sessions->count++ == 0)
        uv_ref((uv_handle_t *)&sessions->keepalive);
    tl_exec_set_callbacks(exec, &tl__session_exec_callbacks, s);
    tl_log_info("session requested tech=%s ticket=%s type=%s", s->tech.name, s->ticket,
                tl__session_kind_name(s->kind, s->observe));
    struct sjob *job = tl__sjob_new(s, work_lookup, lookup_done);
    if (job == NULL) {
        tl__session_fail(s, "out of memory");
        return;
    }
    tl__sjob_submit(s, job);
}

/* ---- the module ------------------------------------------------------------------------------ */

static void keepalive_noop(uv_async_t *handle) {}

tl_sessions_t *tl_sessions_new(uv_loop_t *loop, tl_worker_t *worker, const char *data_dir,
                               tl_sessions_find_agent_fn find_agent, void *find_ctx, int *err)
{
    tl_sessions_t *sessions = calloc(1, sizeof *sessions);
    if (sessions == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    sessions->loop = loop;
    sessions->worker = worker;
    sessions->find_agent = find_agent;
    sessions->find_ctx = find_ctx;
    sessions->take_wait_ms = TL_SESSIONS_TAKE_WAIT_MS;
    if (tl_format(sessions->recordings_dir, sizeof sessions->recordings_dir, "%s/%s", data_dir,
                  RECORDINGS_DIR) != 0) {
        free(sessions);
        *err = TL_EINVAL;
        return NULL;
    }
    /* At start-up, before the loop runs: the one directory sessions write in. */
    if (mkdir(sessions->recordings_dir, 0700) != 0 && errno != EEXIST) {
        *err = -errno;
        free(sessions);
        return NULL;
    }
    int rc = uv_async_init(loop, &sessions->keepalive, keepalive_noop);
    if (rc != 0) {
        *err = rc;
        free(sessions);
        return NULL;
    }
    sessions->keepalive.data = sessions;
    uv_unref((uv_handle_t *)&sessions->keepalive);
    return sessions;
}

uint32_t tl_sessions_count(const tl_sessions_t *sessions)
{
    return sessions->count;
}

static void sessions_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void tl_sessions_free(tl_sessions_t *sessions)
{
    if (sessions == NULL)
        return;
    if (sessions->count > 0)
        tl_log_error("sessions left at exit count=%" PRIu32, sessions->count);
    uv_close((uv_handle_t *)&sessions->keepalive, sessions_closed);
}
