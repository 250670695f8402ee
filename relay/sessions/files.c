/*
 * A technician's "sftp" subsystem channel (docs/protocol.md §7.16): the
 * exec's input feeds the SFTP server (relay/sessions/sftp_server.h), its
 * replies go out on the exec's stdout, and flow control holds both ways: the
 * server's input is taken only while it is not blocked, and its replies are
 * written only while the exec's buffer is under TL_EXEC_HIGH_WATER.
 *
 * The root lists the active tickets the technician may act on (read on the
 * storage worker, as a session's lookup does). The machines are not reached
 * yet: every request on a ticket's machine is answered FAILURE saying so.
 */
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "relay/desk/tickets.h"
#include "relay/desk/vendor.h"
#include "relay/store/metrics.h"
#include "relay/store/store.h"
#include "relay/sessions/files_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Replies handed to the exec per write. */
#define WRITE_CHUNK (256u * 1024u)

/* The root's listing, read on the worker: "T-42" directories, at most the server's limit. */
struct list_job {
    tl_job_t job;
    struct files *files;
    uint32_t op;
    size_t count;
    char names[TL_SFTP_SERVER_MAX_ENTRIES][24];
    int over; /* more tickets than a listing holds */
    tl_sftp_entry_t entries[TL_SFTP_SERVER_MAX_ENTRIES];
};

static int list_job_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct list_job *job = (struct list_job *)base;
    const tl_technician_t *tech = &job->files->tech;
    int role = tl_role_parse(tech->role);
    int64_t now = tl_wall_ms();
    tl_ticket_rows_t rows = {0};
    int rc = tl_store_tickets_read(ctx->store, NULL, &rows);
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
        const tl_ticket_row_t *row = &rows.rows[i];
        if (!tl_ticket_status_active(row->status) ||
            tl_vendor_ticket_access(ctx->store, role, tech->name, row->id, now, NULL) != 0)
            continue;
        if (job->count == TL_SFTP_SERVER_MAX_ENTRIES) {
            job->over = 1;
            break;
        }
        tl_format(job->names[job->count++], sizeof job->names[0], "T-%lld", (long long)row->id);
    }
    tl_ticket_rows_free(&rows);
    return rc;
}

static void list_job_done(tl_job_t *base, int status)
{
    struct list_job *job = (struct list_job *)base;
    struct files *files = job->files;
    files->jobs--;
    if (!files->gone) {
        if (status != 0) {
            tl_sftp_server_answer_status(files->server, job->op, TL_SFTP_FAILURE,
                                         tl_strerror(status));
        } else {
            for (size_t i = 0; i < job->count; i++)
                job->entries[i] = (tl_sftp_entry_t){
                    .name = job->names[i],
                    .attrs = {.flags = TL_SFTP_ATTR_PERMISSIONS, .permissions = 040555},
                };
            if (job->over)
                tl_log_warn("sftp tickets listing cut tech=%s at=%u", files->tech.name,
                            TL_SFTP_SERVER_MAX_ENTRIES);
            tl_sftp_server_answer_entries(files->server, job->op, job->entries, job->count);
        }
    }
    free(job);
    tl__files_settle(files);
}

static void b_list_tickets(void *ctx, uint32_t op)
{
    struct files *files = ctx;
    struct list_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, "out of memory");
        return;
    }
    job->job.run = list_job_run;
    job->job.done = list_job_done;
    job->files = files;
    job->op = op;
    files->jobs++;
    tl_worker_submit(files->sessions->worker, &job->job);
}

/* ---- the grant of a ticket's machine -----------------------------------------------------------
 */

/* The consent question's reason, as the user reads it. */
static void grant_reason(const struct machine *m, char *out, size_t size)
{
    snprintf(out, size, "files %s: copy files %s", m->ticket,
             m->want_push ? "from and to this machine" : "from this machine");
}

static const char *direction_text(int push)
{
    return push ? "pull and push" : "pull only";
}

/* A storage job of a machine: its access check (lookup), then the entries it records. */
struct fjob {
    struct sjob base; /* records; device_id, access_until and message of a lookup */
    struct machine *machine;
    int lookup;
    void (*then)(struct machine *m, struct fjob *job, int status);
};

static int fjob_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct fjob *job = (struct fjob *)base;
    struct machine *m = job->machine;
    struct files *files = m->files;
    int rc = 0;
    if (job->lookup) {
        struct ticket_access access = {&files->tech, files->actor, m->ticket_id,
                                       m->ticket,    "files",      1};
        rc = tl__ticket_access(ctx, &access, &job->base.device_id, &job->base.access_until,
                               job->base.message, sizeof job->base.message);
    }
    if (rc == 0)
        rc = tl__sjob_write_records(&job->base, ctx, files->actor, files->tech.role, m->ticket_id);
    return rc;
}

static void fjob_done(tl_job_t *base, int status)
{
    struct fjob *job = (struct fjob *)base;
    struct files *files = job->machine->files;
    files->jobs--;
    if (status != 0)
        tl_log_warn("files job failed tech=%s ticket=%s reason=%s", files->tech.name,
                    job->machine->ticket, tl_err_name(status));
    if (job->then != NULL)
        job->then(job->machine, job, status);
    tl__sjob_free(&job->base);
    tl__files_settle(files);
}

/* Records one entry on the ticket (details taken), then continues with then (may be NULL). */
static void machine_record(struct machine *m, int lookup, const char *event, const char *action,
                           json_t *details, void (*then)(struct machine *, struct fjob *, int))
{
    struct fjob *job = calloc(1, sizeof *job);
    if (job == NULL || (job->base.records = json_array()) == NULL) {
        free(job);
        json_decref(details);
        if (then != NULL)
            then(m, NULL, TL_ENOMEM);
        return;
    }
    job->base.job.run = fjob_run;
    job->base.job.done = fjob_done;
    job->machine = m;
    job->lookup = lookup;
    job->then = then;
    if (event != NULL)
        tl__sjob_record(&job->base, event, action, details);
    m->files->jobs++;
    tl_worker_submit(m->files->sessions->worker, &job->base.job);
}

void tl__files_say(struct files *files, const char *fmt, ...)
{
    if (files->gone || files->finished)
        return;
    char line[1400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    tl_exec_printf(files->exec, TL_EXEC_STDERR, "tierline: %s\n", line);
}

static void machine_serve(struct machine *m, struct waiting *w);

/* The grant is live or refused: every request that waited for it goes on. */
static void machine_settle(struct machine *m)
{
    while (m->waiting != NULL) {
        struct waiting *w = m->waiting;
        m->waiting = w->next;
        if (!m->files->gone)
            machine_serve(m, w);
        else
            free(w);
    }
    m->tail = &m->waiting;
}

/* No files on this machine in this session: told once, every request answered FAILURE. */
static void machine_refuse(struct machine *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void machine_refuse(struct machine *m, const char *fmt, ...)
{
    char line[sizeof m->refusal]; /* fmt's arguments may be the refusal itself */
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    memcpy(m->refusal, line, sizeof line);
    m->state = GRANT_REFUSED;
    tl__files_say(m->files, "%s: %s", m->ticket, m->refusal);
    machine_settle(m);
}

static void refused_recorded(struct machine *m, struct fjob *job, int status)
{
    machine_refuse(m, "%s", m->refusal);
}

/* Consent did not come: recorded (consent.denied), then told. */
static void consent_failed(struct machine *m, const char *error, const char *message)
{
    snprintf(m->refusal, sizeof m->refusal, "%s", message);
    m->state = GRANT_ASKING; /* until it is on the record */
    machine_record(
        m, 0, "consent.denied", "consent.denied",
        json_pack("{s:s, s:s, s:s}", "scope", "files", "error", error, "message", message),
        refused_recorded);
}

static void granted_recorded(struct machine *m, struct fjob *job, int status)
{
    if (status != 0) {
        machine_refuse(m, "cannot record the grant: %s", tl_strerror(status));
        return;
    }
    char until[16] = "?";
    time_t seconds = (time_t)(m->expires_ms / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) != NULL)
        strftime(until, sizeof until, "%H:%MZ", &utc);
    m->state = GRANT_LIVE;
    tl__files_say(m->files, "%s: granted %s until %s (by %s), files %s", m->ticket, m->grant, until,
                  m->granted_by, direction_text(m->push));
    machine_settle(m);
}

static void consent_answer(void *data, int status, json_t *result)
{
    struct machine *m = data;
    uint32_t request_id = m->request_id;
    tl_agent_link_t *agent = m->agent;
    m->request_id = 0;
    m->agent = NULL;
    tl_metrics_consent_answer(status, result);
    if (status == TL_ETIMEOUT) {
        tl__consent_send_cancel(agent, request_id);
        consent_failed(m, "ETIMEOUT", "nobody answered on the machine");
        return;
    }
    if (status != 0) {
        consent_failed(m, tl_err_name(status), "the machine went offline");
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        char error[32], line[1300];
        tl__consent_refusal(result, error, sizeof error, line, sizeof line);
        consent_failed(m, error, line);
        return;
    }
    if (tl__grant_answer_parse(result, m->grant, sizeof m->grant, &m->expires_ms, m->granted_by,
                               sizeof m->granted_by) != 0) {
        consent_failed(m, "EPROTO", "the machine answered with a malformed grant");
        return;
    }
    /* Pushing needs both: the role's files.push (asked only then) and the user's yes to it. */
    m->push = m->want_push && json_is_true(json_object_get(result, "push"));
    char expires_text[32];
    tl__sessions_iso_time(m->expires_ms, expires_text);
    machine_record(m, 0, "consent.granted", "consent.granted",
                   json_pack("{s:s, s:[s], s:s, s:s, s:b}", "grant", m->grant, "scopes", "files",
                             "expires", expires_text, "by", m->granted_by, "push", m->push),
                   granted_recorded);
}

static void asked_recorded(struct machine *m, struct fjob *job, int status)
{
    if (status != 0) {
        machine_refuse(m, "cannot record the consent request: %s", tl_strerror(status));
        return;
    }
    if (m->files->gone) {
        machine_record(m, 0, "consent.cancelled", "consent.cancel",
                       json_pack("{s:s, s:s}", "scope", "files", "reason", "the technician left"),
                       NULL);
        return;
    }
    tl_sessions_t *sessions = m->files->sessions;
    tl_agent_link_t *agent = sessions->find_agent(sessions->find_ctx, m->device_id);
    if (agent == NULL) {
        consent_failed(m, "ECLOSED", "the machine went offline");
        return;
    }
    char reason[128];
    grant_reason(m, reason, sizeof reason);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:i, s:b}", "type",
                  tl_control_type_name(TL_CONTROL_SESSION_REQUEST), "ticket", m->ticket,
                  "technician", m->files->tech.name, "role", m->files->tech.role, "scopes", "files",
                  "reason", reason, "duration_s", (json_int_t)m->duration_s, "push", m->want_push);
    int rc = body ? tl_agent_request(agent, body, TL_SESSIONS_CONSENT_WAIT_MS, consent_answer, m,
                                     &m->request_id)
                  : TL_ENOMEM;
    json_decref(body);
    if (rc != 0) {
        consent_failed(m, tl_err_name(rc),
                       rc == TL_EFULL
                           ? "the machine has too many questions waiting; try again later"
                           : "the machine went offline");
        return;
    }
    m->agent = agent;
    tl__files_say(m->files, "%s: waiting for the user's consent (files, %s) ...", m->ticket,
                  direction_text(m->want_push));
}

static void lookup_done(struct machine *m, struct fjob *job, int status)
{
    if (m->files->gone)
        return;
    if (status != 0 || job->base.message[0] != '\0') {
        machine_refuse(m, "%s", status != 0 ? tl_strerror(status) : job->base.message);
        return;
    }
    /* As for a session: no grant longer than the technician's access to the ticket. */
    int64_t until = job->base.access_until;
    const tl_technician_t *tech = &m->files->tech;
    if (tech->expires != 0 && (until == 0 || tech->expires < until))
        until = tech->expires;
    m->duration_s = FILES_GRANT_S;
    if (until != 0) {
        int64_t left_s = (until - tl_wall_ms()) / 1000;
        if (left_s < 60) {
            machine_refuse(m, "your access to %s ends too soon for a grant", m->ticket);
            return;
        }
        if ((int64_t)m->duration_s > left_s)
            m->duration_s = (uint32_t)left_s;
    }
    m->device_id = job->base.device_id;
    tl_id_format(m->device, TL_ID_DEVICE, m->device_id);
    tl_sessions_t *sessions = m->files->sessions;
    if (sessions->find_agent(sessions->find_ctx, m->device_id) == NULL) {
        machine_refuse(m, "device %s is offline; try again when it connects", m->device);
        return;
    }
    char reason[128];
    grant_reason(m, reason, sizeof reason);
    tl_metrics_consent_asked();
    machine_record(m, 0, "consent.requested", "consent.request",
                   json_pack("{s:s, s:[s], s:s, s:i, s:b}", "device", m->device, "scopes", "files",
                             "reason", reason, "duration_s", (json_int_t)m->duration_s, "push",
                             m->want_push),
                   asked_recorded);
}

/*
 * The machine of a request's ticket, with its grant asked for on first use. w is served now
 * when the grant is live or refused, or later once it is; NULL and w answered when this
 * session reaches too many machines.
 */
static void machine_request(struct files *files, struct waiting *w, const tl_sftp_vpath_t *path)
{
    struct machine *m = files->machines;
    while (m != NULL && m->ticket_id != path->ticket_id)
        m = m->next;
    if (m == NULL) {
        if (files->machine_count >= FILES_MAX_MACHINES || (m = calloc(1, sizeof *m)) == NULL) {
            tl_sftp_server_answer_status(files->server, w->op, TL_SFTP_FAILURE,
                                         m == NULL && files->machine_count < FILES_MAX_MACHINES
                                             ? "out of memory"
                                             : "too many tickets in one session");
            free(w);
            return;
        }
        m->files = files;
        m->ticket_id = path->ticket_id;
        snprintf(m->ticket, sizeof m->ticket, "%s", path->ticket);
        m->want_push = tl_role_can(tl_role_parse(files->tech.role), TL_CAP_FILES_PUSH);
        m->tail = &m->waiting;
        m->queued_tail = &m->queued;
        m->next = files->machines;
        files->machines = m;
        files->machine_count++;
        machine_record(m, 1, NULL, NULL, NULL, lookup_done);
    }
    if (m->state == GRANT_LIVE && tl_wall_ms() >= m->expires_ms)
        machine_refuse(m, "grant %s has ended", m->grant);
    if (m->state == GRANT_LIVE || m->state == GRANT_REFUSED) {
        machine_serve(m, w);
        return;
    }
    w->next = NULL;
    *m->tail = w;
    m->tail = &w->next;
}

/* ---- requests ----------------------------------------------------------------------------------
 */

/* A request on a machine; the server holds at most TL_SFTP_SERVER_MAX_PENDING at once. */
static struct waiting *waiting_new(struct files *files, uint32_t op, enum request_kind kind,
                                   const tl_sftp_vpath_t *path)
{
    struct waiting *w = calloc(1, sizeof *w);
    if (w == NULL) {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, "out of memory");
        return NULL;
    }
    w->op = op;
    w->kind = kind;
    snprintf(w->path, sizeof w->path, "%s", path->path);
    return w;
}

/* An attribute from the agent: an integer of min..max. */
static int attr_member(json_t *attrs, const char *key, json_int_t max, uint64_t *out)
{
    json_t *value = json_object_get(attrs, key);
    if (!json_is_integer(value) || json_integer_value(value) < 0 || json_integer_value(value) > max)
        return 0;
    *out = (uint64_t)json_integer_value(value);
    return 1;
}

/* A file's attributes as the agent gives them (docs/protocol.md §7.16); 0 when malformed. */
static int attrs_parse(json_t *attrs, tl_sftp_attrs_t *out)
{
    uint64_t size, mode, mtime, uid, gid;
    if (!json_is_object(attrs) || !attr_member(attrs, "size", INT64_MAX, &size) ||
        !attr_member(attrs, "mode", UINT32_MAX, &mode) ||
        !attr_member(attrs, "mtime", UINT32_MAX, &mtime) ||
        !attr_member(attrs, "uid", UINT32_MAX, &uid) ||
        !attr_member(attrs, "gid", UINT32_MAX, &gid))
        return 0;
    *out = (tl_sftp_attrs_t){
        .flags = TL_SFTP_ATTR_SIZE | TL_SFTP_ATTR_UIDGID | TL_SFTP_ATTR_PERMISSIONS |
                 TL_SFTP_ATTR_ACMODTIME,
        .size = size,
        .uid = (uint32_t)uid,
        .gid = (uint32_t)gid,
        .permissions = (uint32_t)mode,
        .atime = (uint32_t)mtime,
        .mtime = (uint32_t)mtime,
    };
    return 1;
}

/* A listing as the agent gives it, answered; 0 (nothing answered) when malformed. */
static int answer_entries(struct files *files, uint32_t op, json_t *entries)
{
    size_t count = json_array_size(entries);
    if (!json_is_array(entries) || count > TL_SFTP_SERVER_MAX_ENTRIES)
        return 0;
    tl_sftp_entry_t *list = calloc(count ? count : 1, sizeof *list);
    if (list == NULL)
        return 0;
    size_t i;
    json_t *entry;
    int ok = 1;
    json_array_foreach(entries, i, entry) {
        const char *name = json_string_value(json_object_get(entry, "name"));
        size_t len = name ? strlen(name) : 0;
        if (len == 0 || len > 255 || !attrs_parse(entry, &list[i].attrs)) {
            ok = 0;
            break;
        }
        list[i].name = name; /* the server leaves out names nobody could name back */
    }
    if (ok)
        tl_sftp_server_answer_entries(files->server, op, list, count);
    free(list);
    return ok;
}

/* The agent's refusal: the SFTP status that fits it, and a line on stderr but for "not found". */
static void answer_refusal(struct machine *m, struct waiting *w, json_t *result)
{
    const char *error = json_string_value(json_object_get(result, "error"));
    char message[1100];
    tl__sessions_clean_text(message, sizeof message,
                            json_string_value(json_object_get(result, "message")));
    uint32_t status = TL_SFTP_FAILURE;
    if (error != NULL && strcmp(error, "ENOTFOUND") == 0)
        status = TL_SFTP_NO_SUCH_FILE;
    else if (error != NULL && strcmp(error, "EDENIED") == 0)
        status = TL_SFTP_PERMISSION_DENIED;
    if (status != TL_SFTP_NO_SUCH_FILE)
        tl__files_say(m->files, "%s: %s", m->ticket, message[0] ? message : "the machine refused");
    tl_sftp_server_answer_status(m->files->server, w->op, status, message);
}

static void machine_ask(struct machine *m, struct waiting *w);

static void agent_answer(void *data, int status, json_t *result)
{
    struct waiting *w = data;
    struct machine *m = w->machine;
    struct files *files = m->files;
    struct waiting **at = &m->asked;
    while (*at != w)
        at = &(*at)->next;
    *at = w->next;
    m->asked_count--;
    tl_sftp_server_t *server = files->server;
    if (status != 0) {
        tl__files_say(files, "%s: %s", m->ticket,
                      status == TL_ETIMEOUT ? "the machine did not answer"
                                            : "the machine went offline");
        tl_sftp_server_answer_status(server, w->op, TL_SFTP_FAILURE, tl_strerror(status));
    } else if (!json_is_true(json_object_get(result, "ok"))) {
        answer_refusal(m, w, result);
    } else {
        tl_sftp_attrs_t attrs;
        int ok = w->kind == REQUEST_STAT
                     ? attrs_parse(json_object_get(result, "attrs"), &attrs)
                     : answer_entries(files, w->op, json_object_get(result, "entries"));
        if (ok && w->kind == REQUEST_STAT)
            tl_sftp_server_answer_attrs(server, w->op, &attrs);
        if (!ok) {
            tl_log_warn("files answer malformed tech=%s ticket=%s", files->tech.name, m->ticket);
            tl_sftp_server_answer_status(server, w->op, TL_SFTP_FAILURE,
                                         "the machine answered with a malformed result");
        }
        if (ok && w->kind == REQUEST_LIST && json_is_true(json_object_get(result, "more")))
            tl__files_say(files, "%s: %s: the listing is cut at what one answer holds", m->ticket,
                          w->path);
    }
    free(w);
    /* The next queued request takes its place. */
    while (m->queued != NULL && m->asked_count < MACHINE_MAX_ASKED) {
        struct waiting *next = m->queued;
        m->queued = next->next;
        if (m->queued == NULL)
            m->queued_tail = &m->queued;
        machine_ask(m, next);
    }
    tl__files_settle(files);
}

/* Asks the agent (files.stat, files.list), or queues the request while enough are asked. */
static void machine_ask(struct machine *m, struct waiting *w)
{
    tl_sessions_t *sessions = m->files->sessions;
    if (m->asked_count >= MACHINE_MAX_ASKED) {
        w->next = NULL;
        *m->queued_tail = w;
        m->queued_tail = &w->next;
        return;
    }
    tl_agent_link_t *agent = sessions->find_agent(sessions->find_ctx, m->device_id);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "type",
                             tl_control_type_name(w->kind == REQUEST_STAT ? TL_CONTROL_FILES_STAT
                                                                          : TL_CONTROL_FILES_LIST),
                             "grant", m->grant, "technician", m->files->tech.name, "path", w->path);
    int rc = agent == NULL  ? TL_ECLOSED
             : body == NULL ? TL_ENOMEM
                            : tl_agent_request(agent, body, TL_SESSIONS_REQUEST_WAIT_MS,
                                               agent_answer, w, &w->request_id);
    json_decref(body);
    if (rc == TL_EFULL && m->asked_count > 0) {
        /* The agent's bound, with others' requests: this one goes when one of ours is answered. */
        w->next = m->queued;
        m->queued = w;
        if (m->queued_tail == &m->queued)
            m->queued_tail = &w->next;
        return;
    }
    if (rc != 0) {
        const char *why = rc == TL_EFULL ? "the machine has too many requests waiting; try again"
                          : rc == TL_ECLOSED ? "the machine went offline"
                                             : tl_strerror(rc);
        tl__files_say(m->files, "%s: %s", m->ticket, why);
        tl_sftp_server_answer_status(m->files->server, w->op, TL_SFTP_FAILURE, why);
        free(w);
        return;
    }
    w->machine = m;
    w->agent = agent;
    w->next = m->asked;
    m->asked = w;
    m->asked_count++;
}

/* A request under the machine's grant, or its refusal; w is taken. */
static void machine_serve(struct machine *m, struct waiting *w)
{
    tl_sftp_server_t *server = m->files->server;
    if (m->state == GRANT_REFUSED)
        tl_sftp_server_answer_status(server, w->op, TL_SFTP_FAILURE, m->refusal);
    else if (w->kind == REQUEST_STAT || w->kind == REQUEST_LIST) {
        machine_ask(m, w);
        return;
    } else if (w->kind == REQUEST_OPEN_WRITE && !m->push) {
        tl__files_say(m->files, "%s: %s: the grant allows copying from the machine only", m->ticket,
                      w->path);
        tl_sftp_server_answer_status(server, w->op, TL_SFTP_PERMISSION_DENIED,
                                     "the grant allows copying from the machine only");
    } else
        tl__transfer_open(m, w->op, w->file, w->path, w->kind == REQUEST_OPEN_WRITE);
    free(w);
}

static void b_stat(void *ctx, uint32_t op, const tl_sftp_vpath_t *path, int follow)
{
    struct files *files = ctx;
    struct waiting *w = waiting_new(files, op, REQUEST_STAT, path);
    if (w != NULL) {
        w->follow = follow;
        machine_request(files, w, path);
    }
}

static void b_list(void *ctx, uint32_t op, const tl_sftp_vpath_t *path)
{
    struct files *files = ctx;
    struct waiting *w = waiting_new(files, op, REQUEST_LIST, path);
    if (w != NULL)
        machine_request(files, w, path);
}

static void b_open_read(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path)
{
    struct files *files = ctx;
    struct waiting *w = waiting_new(files, op, REQUEST_OPEN_READ, path);
    if (w != NULL) {
        w->file = file;
        machine_request(files, w, path);
    }
}

static void b_open_write(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path,
                         uint32_t mode)
{
    struct files *files = ctx;
    struct waiting *w = waiting_new(files, op, REQUEST_OPEN_WRITE, path);
    if (w != NULL) {
        w->file = file;
        w->mode = mode;
        machine_request(files, w, path);
    }
}

static void b_read(void *ctx, uint32_t op, uint32_t file, uint32_t len)
{
    tl__transfer_read(ctx, op, file, len);
}

static void b_write(void *ctx, uint32_t op, uint32_t file, const uint8_t *data, size_t len)
{
    tl__transfer_write(ctx, op, file, data, len);
}

static void b_close(void *ctx, uint32_t op, uint32_t file, int aborted)
{
    tl__transfer_close(ctx, op, file, aborted);
}

static void b_refused(void *ctx, const char *why)
{
    tl__files_say(ctx, "%s", why);
}

static const tl_sftp_backend_t backend = {
    .refused = b_refused,
    .list_tickets = b_list_tickets,
    .stat = b_stat,
    .list = b_list,
    .open_read = b_open_read,
    .open_write = b_open_write,
    .read = b_read,
    .write = b_write,
    .close = b_close,
};

static void waiting_free_all(struct waiting *w)
{
    while (w != NULL) {
        struct waiting *next = w->next;
        free(w);
        w = next;
    }
}

static void files_free(struct files *files)
{
    struct files **at = &files->sessions->files;
    while (*at != NULL && *at != files)
        at = &(*at)->next;
    if (*at == files)
        *at = files->next;
    while (files->machines != NULL) {
        struct machine *m = files->machines;
        files->machines = m->next;
        waiting_free_all(m->waiting);
        waiting_free_all(m->queued);
        free(m);
    }
    tl_sftp_server_free(files->server);
    free(files);
}

/* The client went away: questions still asked are withdrawn, and that is recorded. */
static void files_withdraw(struct files *files)
{
    tl__transfer_abandon_all(files);
    for (struct machine *m = files->machines; m != NULL; m = m->next) {
        while (m->asked != NULL) {
            struct waiting *w = m->asked;
            m->asked = w->next;
            tl_agent_request_cancel(w->agent, w->request_id);
            free(w);
        }
        m->asked_count = 0;
        if (m->request_id == 0)
            continue;
        tl__consent_send_cancel(m->agent, m->request_id);
        tl_agent_request_cancel(m->agent, m->request_id);
        m->request_id = 0;
        m->agent = NULL;
        machine_record(m, 0, "consent.cancelled", "consent.cancel",
                       json_pack("{s:s, s:s}", "scope", "files", "reason", "the technician left"),
                       NULL);
    }
}

/* Ends the channel once: status 0 after the client's EOF, 1 when the stream was broken. */
static void files_finish(struct files *files, int status)
{
    if (files->finished)
        return;
    files->finished = 1;
    tl_exec_finish(files->exec, status);
}

/* Moves queued replies to the exec while it is under its high-water mark. */
static void files_flush(struct files *files)
{
    size_t len = 0;
    const uint8_t *out = tl_sftp_server_output(files->server, &len);
    while (len > 0 && !files->finished && tl_exec_buffered(files->exec) < TL_EXEC_HIGH_WATER) {
        size_t n = len < WRITE_CHUNK ? len : WRITE_CHUNK;
        if (tl_exec_write(files->exec, TL_EXEC_STDOUT, out, n) != 0) {
            files_finish(files, 1);
            return;
        }
        tl_sftp_server_consume(files->server, n);
        out = tl_sftp_server_output(files->server, &len);
    }
    const char *failed = tl_sftp_server_failed(files->server);
    if (failed != NULL && !files->finished) {
        tl_log_info("sftp ended tech=%s reason=\"%s\"", files->tech.name, failed);
        files_finish(files, 1);
    }
}

/*
 * At the end of each callback and job: sends what an answer queued, resumes held input, ends the
 * channel after EOF, and frees the files once nothing refers to them.
 */
void tl__files_settle(struct files *files)
{
    if (!files->gone) {
        files_flush(files);
        if (files->held && !files->finished && !tl_sftp_server_blocked(files->server)) {
            files->held = 0;
            tl_exec_resume_input(files->exec);
        }
        size_t queued = 0;
        tl_sftp_server_output(files->server, &queued);
        if (files->eof && queued == 0 && files->jobs == 0)
            files_finish(files, 0);
        if (files->finished) {
            /* The front end calls nothing more once finished (exec.h); forget it all the same. */
            tl_exec_set_callbacks(files->exec, NULL, NULL);
            files->gone = 1;
        }
    }
    if (files->gone)
        files_withdraw(files);
    if (files->gone && files->jobs == 0)
        files_free(files);
}

static size_t on_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct files *files = data;
    size_t taken = tl_sftp_server_input(files->server, bytes, len);
    files_flush(files);
    if (files->finished)
        taken = len;
    files->held = taken < len;
    tl__files_settle(files); /* resumes input held back by what has been answered since */
    return taken;
}

static void on_drain(tl_exec_t *exec, void *data)
{
    tl__files_settle(data);
}

static void on_input_eof(tl_exec_t *exec, void *data)
{
    struct files *files = data;
    files->eof = 1;
    tl__files_settle(files);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct files *files = data;
    files->gone = 1;
    tl__files_settle(files);
}

static const tl_exec_callbacks_t files_callbacks = {
    .on_drain = on_drain,
    .on_abort = on_abort,
    .on_input = on_input,
    .on_input_eof = on_input_eof,
};

void tl_sessions_files_start(tl_sessions_t *sessions, tl_exec_t *exec)
{
    struct files *files = calloc(1, sizeof *files);
    tl_sftp_server_limits_t limits = {
        .max_file_bytes =
            sessions->file_max_bytes ? sessions->file_max_bytes : TL_SESSIONS_FILE_MAX_BYTES,
        .max_files =
            sessions->file_max_count ? sessions->file_max_count : TL_SESSIONS_FILE_MAX_COUNT,
    };
    if (files != NULL)
        files->server = tl_sftp_server_new(&backend, files, &limits);
    if (files == NULL || files->server == NULL) {
        free(files);
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(exec, 1);
        return;
    }
    files->sessions = sessions;
    files->exec = exec;
    files->tech = *tl_exec_technician(exec);
    files->next = sessions->files;
    sessions->files = files;
    snprintf(files->actor, sizeof files->actor, "tech:%s", files->tech.name);
    tl_exec_set_callbacks(exec, &files_callbacks, files);
    tl_log_info("sftp started tech=%s", tl_exec_technician(exec)->name);
}

void tl__files_agent_closed(tl_sessions_t *sessions, tl_agent_link_t *agent)
{
    for (struct files *files = sessions->files; files != NULL; files = files->next)
        tl__transfer_agent_closed(files, agent);
}

void tl_sessions_set_file_limits(tl_sessions_t *sessions, uint64_t max_bytes, uint32_t max_count)
{
    sessions->file_max_bytes = max_bytes;
    sessions->file_max_count = max_count;
}
