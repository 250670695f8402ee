/*
 * Consent (relay/sessions/sessions_int.h; docs/protocol.md §7.6-7.8): the
 * request recorded, session.request sent to the agent, its answer checked
 * and recorded (granted, declined, refused, unanswered), and session.ended,
 * the agent's word that a grant ended, recorded on the ticket and passed to
 * the sessions under that grant.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "relay/store/store.h"
#include "relay/store/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* session.ended notifications being recorded at once, relay-wide. */
#define GRANT_JOBS_MAX 64

/* ---- consent --------------------------------------------------------------------------------- */

static void consent_answer(void *data, int status, json_t *result);

/* The scope a session asks for (docs/protocol.md §7.7). */
static const char *scope_of(const struct session *s)
{
    /* The catalogue asks for nothing of its own; it is listed under fix. */
    const char *scope = tl_channel_type_grant_scope(tl__session_channel(s->kind, s->observe));
    return scope != NULL ? scope : tl_scope_name(TL_SCOPE_FIX);
}

void tl__consent_send_cancel(tl_agent_link_t *agent, uint32_t request_id)
{
    json_t *cancel =
        json_pack("{s:s, s:I}", "type", tl_control_type_name(TL_CONTROL_SESSION_CANCEL),
                  "request_id", (json_int_t)request_id);
    if (cancel != NULL && agent != NULL)
        tl_agent_notify(agent, cancel);
    json_decref(cancel);
}

static void send_cancel(struct session *s, uint32_t request_id)
{
    tl__consent_send_cancel(s->agent, request_id);
}

/* The technician left before the user answered: said so on the record, nothing else happens. */
static void record_cancelled(struct session *s)
{
    s->phase = PHASE_DONE;
    tl__session_record(
        s, "consent.cancelled", "consent.cancel",
        json_pack("{s:s, s:s}", "scope", scope_of(s), "reason", "the technician left"), NULL);
}

/* The technician left while the user was being asked: withdraw the question, and say so. */
void tl__session_withdraw_consent(struct session *s)
{
    send_cancel(s, s->request_id);
    if (s->agent != NULL)
        tl_agent_request_cancel(s->agent, s->request_id);
    s->request_id = 0;
    record_cancelled(s);
}

static void told_and_failed(struct session *s, struct sjob *job, int status)
{
    tl__session_say(s, "%s", s->end_message);
    tl__session_finish(s, 1);
}

/* Consent did not come: recorded, then told (exit 1). message is for the technician. */
static void consent_failed(struct session *s, const char *error, const char *message)
{
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "scope", scope_of(s), "error", error, "message", message);
    tl__session_set_end(s, "consent", "%s", message);
    s->phase = PHASE_DONE;
    tl__session_record(s, "consent.denied", "consent.denied", details, told_and_failed);
}

static void asked_done(struct session *s, struct sjob *job, int status)
{
    if (status != 0) {
        tl__session_fail(s, "cannot record the consent request: %s", tl_strerror(status));
        return;
    }
    if (s->exec == NULL) {
        /* The technician left before the question went out. */
        record_cancelled(s);
        return;
    }
    if (s->agent == NULL) {
        consent_failed(s, "ECLOSED", "the machine went offline");
        return;
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:i}", "type",
                  tl_control_type_name(TL_CONTROL_SESSION_REQUEST), "ticket", s->ticket,
                  "technician", s->tech.name, "role", s->tech.role, "scopes", scope_of(s), "reason",
                  s->reason, "duration_s", (json_int_t)s->duration_s);
    /* A fix names its runbook and values: the agent checks them against its catalogue
     * and shows them in the question, or refuses before anyone is asked (§7.6). */
    if (body != NULL && s->kind == TL_SESSION_FIX)
        json_object_set_new(body, "runbook",
                            json_pack("{s:s, s:O}", "name", s->runbook, "args", s->runbook_args));
    int rc = body ? tl_agent_request(s->agent, body, TL_SESSIONS_CONSENT_WAIT_MS, consent_answer, s,
                                     &s->request_id)
                  : TL_ENOMEM;
    json_decref(body);
    if (rc != 0) {
        consent_failed(s, tl_err_name(rc),
                       rc == TL_EFULL
                           ? "the machine has too many questions waiting; try again later"
                           : "the machine went offline");
        return;
    }
    s->phase = PHASE_CONSENT;
    tl__session_say(s, "waiting for the user's consent (%s) ...", scope_of(s));
}

void tl__session_ask_consent(struct session *s)
{
    s->phase = PHASE_ASK;
    tl_metrics_consent_asked();
    json_t *details =
        json_pack("{s:s, s:[s], s:s, s:i}", "device", s->device, "scopes", scope_of(s), "reason",
                  s->reason, "duration_s", (json_int_t)s->duration_s);
    tl__session_record(s, "consent.requested", "consent.request", details, asked_done);
}

static void granted_done(struct session *s, struct sjob *job, int status)
{
    if (status != 0) {
        tl__session_fail(s, "cannot record the grant: %s", tl_strerror(status));
        return;
    }
    s->started = 1;
    char until[16] = "?";
    time_t seconds = (time_t)(s->expires_ms / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) != NULL)
        strftime(until, sizeof until, "%H:%MZ", &utc);
    tl__session_say(s, "granted %s until %s (by %s)", s->grant, until, s->granted_by);
    if (s->each_command && s->kind != TL_SESSION_DIAG)
        tl__session_say(s, "the machine asks for each command: waiting for the answer ...");
    if (s->exec == NULL)
        s->left_by_technician = 1;
    else if (s->agent == NULL)
        tl__session_set_end(s, "offline", "the machine went offline");
    if (s->exec == NULL || s->end_message[0] != '\0') {
        tl__session_conclude(s);
        return;
    }
    tl__session_open_channel(s);
}

/* A grant id names a file (recordings): short, and nothing but [A-Za-z0-9._-]. */
int tl__grant_id_valid(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > 32 || id[0] == '.' || id[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void tl__consent_refusal(json_t *result, char *error, size_t error_size, char *line, size_t size)
{
    const char *code = json_string_value(json_object_get(result, "error"));
    char message[1100];
    tl__sessions_clean_text(message, sizeof message,
                            json_string_value(json_object_get(result, "message")));
    if (code != NULL && strcmp(code, "EDENIED") == 0 &&
        (message[0] == '\0' || strcmp(message, "the user declined") == 0)) {
        snprintf(error, error_size, "EDENIED");
        snprintf(line, size, "the user declined");
    } else if (code != NULL && strcmp(code, "ETIMEOUT") == 0) {
        snprintf(error, error_size, "ETIMEOUT");
        snprintf(line, size, "nobody answered on the machine");
    } else {
        char name[32];
        tl__sessions_clean_text(name, sizeof name, code ? code : "?");
        snprintf(error, error_size, "%s", name[0] ? name : "EPROTO");
        snprintf(line, size, "the machine refused the request (%s): %s", name, message);
    }
}

/* The agent said no: the user declined, its own checks refused a fix, or another error. */
static void consent_refused(struct session *s, json_t *result)
{
    const char *error = json_string_value(json_object_get(result, "error"));
    char message[1100], line[1300], code[32];
    tl__sessions_clean_text(message, sizeof message,
                            json_string_value(json_object_get(result, "message")));
    tl__consent_refusal(result, code, sizeof code, line, sizeof line);
    if (strcmp(line, "the user declined") != 0 && s->kind == TL_SESSION_FIX && error != NULL &&
        (strcmp(error, "EINVAL") == 0 || strcmp(error, "ENOTFOUND") == 0 ||
         strcmp(error, "EDENIED") == 0)) {
        /* The machine checked the runbook and its values against its catalogue first. */
        snprintf(line, sizeof line, "the machine refused runbook '%s': %s; the user was not asked",
                 s->runbook, message);
        consent_failed(s, error, line);
        return;
    }
    consent_failed(s, code, line);
}

int tl__grant_answer_parse(json_t *result, char *grant, size_t grant_size, int64_t *expires_ms,
                           char *by, size_t by_size)
{
    const char *id = json_string_value(json_object_get(result, "grant"));
    json_t *expires = json_object_get(result, "expires_ms");
    const char *who = json_string_value(json_object_get(result, "by"));
    if (!tl__grant_id_valid(id) || !json_is_integer(expires) || json_integer_value(expires) <= 0 ||
        json_integer_value(expires) > TL__EXPIRES_MS_MAX)
        return TL_EPROTO;
    snprintf(grant, grant_size, "%s", id);
    *expires_ms = json_integer_value(expires);
    snprintf(by, by_size, "%s",
             who != NULL && (strcmp(who, "user") == 0 || strcmp(who, "policy") == 0 ||
                             strcmp(who, "existing") == 0)
                 ? who
                 : "?");
    return 0;
}

static void consent_answer(void *data, int status, json_t *result)
{
    struct session *s = data;
    uint32_t request_id = s->request_id;
    tl_metrics_consent_answer(status, result);
    s->request_id = 0;
    if (status == TL_ETIMEOUT) {
        /* Our patience ran out before the agent's: withdraw the question. */
        send_cancel(s, request_id);
        consent_failed(s, "ETIMEOUT", "nobody answered on the machine");
        return;
    }
    if (status != 0) {
        consent_failed(s, tl_err_name(status), "the machine went offline");
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        consent_refused(s, result);
        return;
    }
    if (tl__grant_answer_parse(result, s->grant, sizeof s->grant, &s->expires_ms, s->granted_by,
                               sizeof s->granted_by) != 0) {
        consent_failed(s, "EPROTO", "the machine answered with a malformed grant");
        return;
    }
    s->each_command = json_is_true(json_object_get(result, "each_command"));
    char expires_text[32];
    tl__sessions_iso_time(s->expires_ms, expires_text);
    s->phase = PHASE_GRANTED;
    struct sjob *job = tl__sjob_new(s, NULL, granted_done);
    if (job == NULL) {
        tl__session_fail(s, "out of memory");
        return;
    }
    tl__sjob_record(job, "consent.granted", "consent.granted",
                    json_pack("{s:s, s:[s], s:s, s:s}", "grant", s->grant, "scopes", scope_of(s),
                              "expires", expires_text, "by", s->granted_by));
    tl__sjob_record(job, "session.started", "session.start", tl__session_details(s));
    tl__sjob_submit(s, job);
}

/* ---- from the agent: the end of a grant ------------------------------------------------------ */

static int work_grant_ended(struct sjob *job, tl_job_ctx_t *ctx)
{
    /* Only a ticket of the agent's own device gets the event. */
    tl_ticket_row_t ticket;
    int rc = tl_store_ticket_read(ctx->store, job->ticket_id, &ticket);
    if (rc != 0)
        return rc;
    int64_t device = ticket.device_id;
    tl_ticket_row_clear(&ticket);
    if (device != job->agent_device)
        return TL_ENOTFOUND;
    char actor[96];
    snprintf(actor, sizeof actor, "agent:D-%" PRId64, job->agent_device);
    return tl__sjob_write_records(job, ctx, actor, NULL, job->ticket_id);
}

static int grant_job_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct sjob *job = (struct sjob *)base;
    return work_grant_ended(job, ctx);
}

static void grant_job_done(tl_job_t *base, int status)
{
    struct sjob *job = (struct sjob *)base;
    job->sessions->grant_jobs--;
    if (status != 0 && !job->command)
        tl_log_warn("grant end not recorded ticket=%s device=D-%" PRId64 " reason=%s", job->ticket,
                    job->agent_device, tl_err_name(status));
    if (status != 0 && job->command) {
        tl_log_warn("command consent not recorded ticket=%s device=D-%" PRId64 " reason=%s",
                    job->ticket, job->agent_device, tl_err_name(status));
        /* What cannot be audited does not go on: a command allowed unrecorded is stopped. */
        for (struct session *s = job->sessions->head; s != NULL && job->allowed; s = s->next) {
            if (s->agent == NULL || tl_agent_device(s->agent) != job->agent_device ||
                s->channel != job->channel || strcmp(s->grant, job->grant) != 0 ||
                s->phase != PHASE_CHANNEL)
                continue;
            tl__session_set_end(s, "relay", "cannot record the user's consent to this command: %s",
                                tl_err_name(status));
            tl__session_end_channel(s);
        }
    }
    tl__sjob_free(job);
}

static struct sjob *grant_job_new(tl_sessions_t *sessions, tl_agent_link_t *agent,
                                  int64_t ticket_id)
{
    if (sessions->grant_jobs >= GRANT_JOBS_MAX) {
        tl_log_warn("agent notice not recorded, too many at once device=D-%" PRId64,
                    tl_agent_device(agent));
        return NULL;
    }
    struct sjob *job = calloc(1, sizeof *job);
    if (job == NULL || (job->records = json_array()) == NULL) {
        free(job);
        return NULL;
    }
    job->job.run = grant_job_run;
    job->job.done = grant_job_done;
    job->sessions = sessions;
    job->agent_device = tl_agent_device(agent);
    job->ticket_id = ticket_id;
    tl_id_format(job->ticket, TL_ID_TICKET, ticket_id);
    return job;
}

/* A list of at most 64 strings of at most 4096 bytes each, as an exec's argv may be. */
static int argv_valid(json_t *argv)
{
    size_t i;
    json_t *word;
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > 64)
        return 0;
    json_array_foreach(argv, i, word) {
        if (!json_is_string(word) || json_string_length(word) > 4096)
            return 0;
    }
    return 1;
}

/*
 * The agent's decision on one command under a grant that asks for each
 * (docs/protocol.md §7.7): audited on the ticket as consent.command, and
 * marked on the session so its transcript says how it was allowed.
 */
static void command_decided(tl_sessions_t *sessions, tl_agent_link_t *agent, json_t *body)
{
    const char *grant = json_string_value(json_object_get(body, "grant"));
    const char *ticket = json_string_value(json_object_get(body, "ticket"));
    const char *decision = json_string_value(json_object_get(body, "decision"));
    const char *by = json_string_value(json_object_get(body, "by"));
    json_t *channel = json_object_get(body, "channel");
    json_t *argv = json_object_get(body, "argv");
    json_t *runbook = json_object_get(body, "runbook");
    int64_t ticket_id = 0;
    if (!tl__grant_id_valid(grant) || ticket == NULL ||
        tl_id_parse(ticket, TL_ID_TICKET, &ticket_id) != 0 || !json_is_integer(channel) ||
        json_integer_value(channel) < 0 || json_integer_value(channel) > UINT32_MAX ||
        decision == NULL ||
        (strcmp(decision, "allowed") != 0 && strcmp(decision, "declined") != 0 &&
         strcmp(decision, "unanswered") != 0) ||
        by == NULL || (strcmp(by, "user") != 0 && strcmp(by, "policy") != 0) ||
        (argv != NULL && !argv_valid(argv)) ||
        (runbook != NULL &&
         (!json_is_object(runbook) || !json_is_string(json_object_get(runbook, "name")) ||
          json_string_length(json_object_get(runbook, "name")) > 64))) {
        tl_log_warn("malformed session.command device=D-%" PRId64, tl_agent_device(agent));
        return;
    }
    uint32_t id = (uint32_t)json_integer_value(channel);
    struct session *found = NULL;
    for (struct session *s = sessions->head; s != NULL; s = s->next)
        if (s->agent == agent && s->channel == id && strcmp(s->grant, grant) == 0 &&
            s->phase == PHASE_CHANNEL)
            found = s;
    json_t *details = json_pack("{s:s, s:s, s:s}", "grant", grant, "decision", decision, "by", by);
    if (details == NULL)
        return;
    if (found != NULL) {
        /* What the relay itself sent is what is kept; the session's details bound it. */
        snprintf(found->command_decision, sizeof found->command_decision, "%s", decision);
        snprintf(found->command_by, sizeof found->command_by, "%s", by);
        json_t *what = tl__session_details(found);
        json_object_update(details, what);
        json_decref(what);
        json_object_set_new(details, "technician", json_string(found->tech.name));
    } else if (argv != NULL) {
        json_object_set(details, "argv", argv);
    } else if (runbook != NULL) {
        json_object_set(details, "runbook", json_object_get(runbook, "name"));
    }
    tl_log_info("command consent device=D-%" PRId64 " grant=%s ticket=%s decision=%s by=%s",
                tl_agent_device(agent), grant, ticket, decision, by);
    struct sjob *job = grant_job_new(sessions, agent, ticket_id);
    if (job == NULL) {
        json_decref(details);
        if (found != NULL && strcmp(decision, "allowed") == 0) {
            tl__session_set_end(found, "relay", "cannot record the user's consent to this command");
            tl__session_end_channel(found);
        }
        return;
    }
    snprintf(job->grant, sizeof job->grant, "%s", grant);
    job->channel = id;
    job->command = 1;
    job->allowed = strcmp(decision, "allowed") == 0;
    tl__sjob_record(job, "consent.command", "consent.command", details);
    sessions->grant_jobs++;
    tl_worker_submit(sessions->worker, &job->job);
}

void tl_sessions_grant_ended(tl_sessions_t *sessions, tl_agent_link_t *agent, json_t *body)
{
    if (tl_control_type_lookup(json_string_value(json_object_get(body, "type"))) ==
        TL_CONTROL_SESSION_COMMAND) {
        command_decided(sessions, agent, body);
        return;
    }
    json_t *grant_value = json_object_get(body, "grant");
    const char *grant = json_string_value(grant_value);
    const char *ticket = json_string_value(json_object_get(body, "ticket"));
    const char *reason_text = json_string_value(json_object_get(body, "reason"));
    int64_t ticket_id = 0;
    if (!tl__grant_id_valid(grant) || ticket == NULL ||
        tl_id_parse(ticket, TL_ID_TICKET, &ticket_id) != 0) {
        tl_log_warn("malformed session.ended device=D-%" PRId64, tl_agent_device(agent));
        return;
    }
    char reason[TL_SESSIONS_MAX_REASON + 1];
    tl__sessions_clean_text(reason, sizeof reason, reason_text ? reason_text : "the grant ended");
    if (reason[0] == '\0')
        snprintf(reason, sizeof reason, "the grant ended");
    tl_log_info("grant ended on the machine device=D-%" PRId64 " grant=%s ticket=%s",
                tl_agent_device(agent), grant, ticket);
    for (struct session *s = sessions->head, *next; s != NULL; s = next) {
        next = s->next;
        if (s->agent != agent || strcmp(s->grant, grant) != 0 || s->phase == PHASE_DONE)
            continue;
        if (s->phase == PHASE_FINAL) {
            /* Its CLOSE came first; the worker is recording it. Tell, when it is done:
             * a command the agent stopped with HUP for this did not finish on its own. */
            snprintf(s->late_end_message, sizeof s->late_end_message,
                     "session ended on the machine: %s", reason);
            s->late_unfinished = s->finished && strcmp(s->exit_signal, "HUP") == 0;
            continue;
        }
        tl__session_set_end(s, "machine", "session ended on the machine: %s", reason);
        if (s->phase == PHASE_CHANNEL)
            tl__session_end_channel(s);
    }
    struct sjob *job = grant_job_new(sessions, agent, ticket_id);
    if (job == NULL)
        return;
    tl__sjob_record(job, "grant.ended", "grant.end",
                    json_pack("{s:s, s:s}", "grant", grant, "reason", reason));
    sessions->grant_jobs++;
    tl_worker_submit(sessions->worker, &job->job);
}
