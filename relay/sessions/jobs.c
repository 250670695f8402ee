/*
 * A session's storage jobs (relay/sessions/sessions_int.h): each runs its own
 * work on the worker, then writes the entries it carries to the ticket's
 * timeline and the audit log, and continues on the loop. Also what those
 * entries say about a session: what ran, bounded, and how it ended.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/desk/timeline.h"
#include "relay/store/store.h"

#include <stdlib.h>
#include <string.h>

/* Longest argv or argument list written to the timeline and audit log; the
 * whole of it is in the transcript evidence. */
#define AUDIT_ARGS_MAX 8192
#define AUDIT_WORD_MAX 512

/* ---- storage jobs ---------------------------------------------------------------------------- */

static void sjob_done(tl_job_t *base, int status);

static int sjob_run(tl_job_t *base, tl_job_ctx_t *ctx);

struct sjob *tl__sjob_new(struct session *s, int (*work)(struct sjob *, tl_job_ctx_t *),
                          void (*then)(struct session *, struct sjob *, int))
{
    struct sjob *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->job.run = sjob_run;
    job->job.done = sjob_done;
    job->session = s;
    job->work = work;
    job->then = then;
    job->records = json_array();
    if (job->records == NULL) {
        free(job);
        return NULL;
    }
    return job;
}

void tl__sjob_free(struct sjob *job)
{
    json_decref(job->records);
    free(job->data);
    free(job);
}

/* Adds an entry for the ticket's timeline (event) and the audit log (action). details is taken. */
void tl__sjob_record(struct sjob *job, const char *event, const char *action, json_t *details)
{
    json_t *entry = json_object();
    if (entry == NULL) {
        json_decref(details);
        return;
    }
    if (event != NULL)
        json_object_set_new(entry, "event", json_string(event));
    if (action != NULL)
        json_object_set_new(entry, "audit", json_string(action));
    json_object_set_new(entry, "details", details ? details : json_object());
    json_array_append_new(job->records, entry);
}

void tl__sjob_submit(struct session *s, struct sjob *job)
{
    s->jobs++;
    tl_worker_submit(s->sessions->worker, &job->job);
}

int tl__sjob_write_records(struct sjob *job, tl_job_ctx_t *ctx, const char *actor, const char *role,
                           int64_t ticket_id)
{
    int64_t now = tl_wall_ms();
    size_t i;
    json_t *entry;
    json_array_foreach(job->records, i, entry) {
        tl_timeline_entry_t record = {
            .ticket_id = ticket_id,
            .time_ms = now,
            .actor = actor,
            .event = json_string_value(json_object_get(entry, "event")),
            .action = json_string_value(json_object_get(entry, "audit")),
            .details = json_object_get(entry, "details"),
        };
        int rc = record.event != NULL || record.action != NULL
                     ? tl_timeline_record_by(ctx, &record, role)
                     : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int sjob_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct sjob *job = (struct sjob *)base;
    struct session *s = job->session;
    int rc = job->work != NULL ? job->work(job, ctx) : 0;
    if (rc == 0 && s != NULL)
        rc = tl__sjob_write_records(job, ctx, s->actor, s->tech.role, s->ticket_id);
    return rc;
}

static void sjob_done(tl_job_t *base, int status)
{
    struct sjob *job = (struct sjob *)base;
    struct session *s = job->session;
    s->jobs--;
    if (status != 0)
        tl_log_warn("session job failed tech=%s ticket=%s reason=%s", s->tech.name, s->ticket,
                    tl_err_name(status));
    if (job->then != NULL)
        job->then(s, job, status);
    tl__sjob_free(job);
    tl__session_maybe_release(s);
}

/* Records entries and then continues with then (NULL: nothing but the record). */
void tl__session_record(struct session *s, const char *event, const char *action, json_t *details,
                        void (*then)(struct session *, struct sjob *, int))
{
    struct sjob *job = tl__sjob_new(s, NULL, then);
    if (job == NULL) {
        json_decref(details);
        if (then != NULL)
            then(s, NULL, TL_ENOMEM);
        return;
    }
    tl__sjob_record(job, event, action, details);
    tl__sjob_submit(s, job);
}

/* ---- what the records say -------------------------------------------------------------------- */

/* The length of text kept for the records: at most AUDIT_WORD_MAX, never a split character. */
static size_t word_len(const char *text, int *truncated)
{
    size_t len = strlen(text);
    if (len > AUDIT_WORD_MAX) {
        len = AUDIT_WORD_MAX;
        while (len > 0 && ((uint8_t)text[len] & 0xc0) == 0x80)
            len--;
        *truncated = 1;
    }
    return len;
}

/* A list of words for the timeline and audit log: bounded, valid UTF-8. */
static json_t *bounded_words(json_t *words, int *truncated)
{
    json_t *out = json_array();
    size_t total = 0, i;
    json_t *word;
    *truncated = 0;
    json_array_foreach(words, i, word) {
        const char *text = json_string_value(word);
        size_t len = word_len(text, truncated);
        if (total + len > AUDIT_ARGS_MAX) {
            *truncated = 1;
            break;
        }
        total += len;
        json_array_append_new(out, json_stringn(text, len));
    }
    return out;
}

static json_t *bounded_args(json_t *args, int *truncated)
{
    json_t *out = json_object();
    size_t total = 0;
    const char *name;
    json_t *value;
    *truncated = 0;
    json_object_foreach(args, name, value) {
        const char *text = json_string_value(value);
        size_t len = word_len(text, truncated);
        if (total + len + strlen(name) > AUDIT_ARGS_MAX) {
            *truncated = 1;
            break;
        }
        total += len + strlen(name);
        json_object_set_new(out, name, json_stringn(text, len));
    }
    return out;
}

/* What the session does, for session.start and session.end. */
json_t *tl__session_details(const struct session *s)
{
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "type", tl__session_kind_name(s->kind, s->observe), "device",
                  s->device, "grant", s->grant);
    if (details == NULL)
        return NULL;
    if (s->take)
        json_object_set_new(details, "take", json_true()); /* join --take: control.c */
    int truncated = 0;
    if (s->argv != NULL) {
        json_object_set_new(details, "argv", bounded_words(s->argv, &truncated));
        if (truncated)
            json_object_set_new(details, "argv_truncated", json_true());
    }
    if (s->runbook[0] != '\0') {
        json_object_set_new(details, "runbook", json_string(s->runbook));
        json_object_set_new(details, "args", bounded_args(s->runbook_args, &truncated));
        if (truncated)
            json_object_set_new(details, "args_truncated", json_true());
    }
    return details;
}

/* session.end's details: what ran, and how it ended. */
json_t *tl__session_end_details(const struct session *s)
{
    json_t *details = tl__session_details(s);
    if (details == NULL)
        return NULL;
    if (s->finished && s->exit_signal[0] != '\0')
        json_object_set_new(details, "exit_signal", json_string(s->exit_signal));
    else if (s->finished)
        json_object_set_new(details, "exit_status", json_integer(s->exit_status));
    if (s->end_cause[0] != '\0') {
        char text[1200];
        tl__sessions_clean_text(text, sizeof text, s->end_message);
        json_object_set_new(details, "ended_by", json_string(s->end_cause));
        json_object_set_new(details, "end_reason", json_string(text));
    } else if (s->left_by_technician) {
        json_object_set_new(details, "ended_by", json_string("technician"));
    }
    if (s->started_ms > 0)
        json_object_set_new(
            details, "duration_ms",
            json_integer(s->ended_ms > s->started_ms ? s->ended_ms - s->started_ms : 0));
    return details;
}

/* The timeline kind of a session's end: fixes and commands are "already tried". */
const char *tl__session_end_event(const struct session *s)
{
    if (s->kind == TL_SESSION_RUN)
        return "exec.finished";
    if (s->kind == TL_SESSION_FIX)
        return "fix.finished";
    return "session.ended";
}
