/*
 * Files moved between a technician's SFTP client and a machine
 * (docs/protocol.md §7.16): each file the client opens is a `file` channel
 * of the machine's grant, its bytes the channel's data.
 *
 * Pull: the agent sends the file in order; the bytes wait here until the
 * client's READs, which come in order (the server checks), take them. The
 * agent's window is credited only for bytes both handed to the client and
 * written into the evidence store, so a client that stops reading (or a slow
 * disk) stops the agent, and what is held is bounded by the window. The end
 * of the file (a short READ or EOF) is answered only once the file is on the
 * record: a pull whose record fails fails (the client's last READ and CLOSE
 * get FAILURE).
 *
 * Push: each WRITE goes to the agent as channel data within the window and
 * into the evidence store; it is answered once both took it. At the
 * client's CLOSE the file is put on the record (evidence and the audit entry
 * files.push) before the channel's EOF tells the agent to commit it, so a
 * file whose record fails is never committed on the machine; the agent's
 * CLOSE status answers the client's CLOSE.
 *
 * Every byte is hashed (SHA-256) here as it passes and the store checks its
 * copy against that hash.
 */
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/hash.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "proto/text.h"
#include "relay/desk/timeline.h"
#include "relay/sessions/files_int.h"
#include "relay/store/store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

enum transfer_state {
    T_OPENING, /* OPEN sent, the client's OPEN waits */
    T_OPEN,
    T_GONE, /* the channel is gone (both CLOSEs, refused, the connection ended) */
};

/* A WRITE on its way: answered once sent to the agent and stored. */
struct push_write {
    uint32_t op;
    uint8_t *data;
    size_t len, sent;
    int stored;
};

struct transfer {
    enum tl__owner_kind owner_kind; /* TL__OWNER_FILE: first (sessions_int.h) */
    struct transfer *next;
    struct files *files;
    struct machine *machine;
    uint32_t index; /* the server's handle */
    int push;
    char path[TL_SFTP_MAX_PATH + 1];
    tl_agent_link_t *agent; /* NULL once the connection is gone */
    uint32_t channel;
    enum transfer_state state;
    int detached; /* the client is done with it (closed, or gone): freed after its jobs */
    uint32_t open_op;
    /* the agent's CLOSE: ended, and its status (0: the whole file, or committed) */
    int ended;
    int end_error;
    int close_sent;     /* our CLOSE of the channel went (the agent's answers it) */
    char failure[1200]; /* why it failed, for the client; "" while it has not */
    /* pull: bytes received and not yet handed out; READs waiting, in order */
    uint8_t *buf;
    size_t buf_start, buf_len, buf_cap;
    struct {
        uint32_t op, len;
    } reads[TL_SFTP_SERVER_MAX_PENDING];
    unsigned read_head, read_count;
    uint64_t given, credited;
    /* push */
    struct push_write writes[TL_SFTP_SERVER_MAX_PENDING];
    unsigned write_head, write_count;
    int eof_sent;
    /* the client's CLOSE: answered at the end */
    int close_asked;
    uint32_t close_op;
    /* the record */
    tl_sha256_t *hash;
    uint64_t size, stored;
    char sha256[TL_SHA256_HEX_LEN];
    tl_evidence_writer_t *writer; /* worker thread only */
    int store_error;              /* the first storage failure (loop) */
    unsigned jobs;
    int recording; /* the final job runs */
    int recorded;  /* 1: on the record; <0: its failure */
    /* a pull closed, or left, before its end with bytes given out: recorded all the same */
    int partial;
    int stopped; /* ... and the agent's further bytes are dropped */
};

/* ---- helpers --------------------------------------------------------------------------------- */

static struct transfer *find(struct files *files, uint32_t index)
{
    for (struct transfer *t = files->transfers; t != NULL; t = t->next)
        if (!t->detached && t->index == index)
            return t;
    return NULL;
}

static tl_mux_t *mux_of(struct transfer *t)
{
    return t->agent != NULL ? tl_agent_mux(t->agent) : NULL;
}

static void transfer_free(struct transfer *t)
{
    struct transfer **at = &t->files->transfers;
    while (*at != t)
        at = &(*at)->next;
    *at = t->next;
    for (unsigned i = 0; i < t->write_count; i++)
        free(t->writes[(t->write_head + i) % TL_SFTP_SERVER_MAX_PENDING].data);
    /* No job of t runs now (jobs is 0): the worker's writer of a file never recorded goes. */
    tl_evidence_writer_abort(t->writer);
    tl_sha256_free(t->hash);
    free(t->buf);
    free(t);
}

/* Frees t once the client is done with it, its channel is gone or let go, and no job runs. */
static void maybe_free(struct transfer *t)
{
    if (t->detached && t->jobs == 0 && (t->state == T_GONE || t->agent == NULL))
        transfer_free(t);
}

/* Our CLOSE of the channel, once; its events are dropped from then on when detached. */
static void close_channel(struct transfer *t)
{
    tl_mux_t *mux = mux_of(t);
    if (t->state == T_GONE || mux == NULL)
        return;
    /* Sent once: a second call waits for the agent's CLOSE as the first did (a failed push's
     * answer to the client waits for it), unless the client is gone. */
    int rc = 0;
    if (!t->close_sent) {
        t->close_sent = 1;
        rc = tl_mux_close(mux, t->channel, NULL);
    }
    if (rc != 0 || t->detached) {
        /* Nothing more of this channel reaches the transfer: the agent drops it at our CLOSE. */
        tl_mux_set_data(mux, t->channel, NULL);
        t->state = T_GONE;
    }
}

/* The transfer failed: why, for the client; the channel ends (a pushed file is dropped). */
static void fail(struct transfer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct transfer *t, const char *fmt, ...)
{
    if (t->failure[0] == '\0') {
        va_list args;
        va_start(args, fmt);
        vsnprintf(t->failure, sizeof t->failure, fmt, args);
        va_end(args);
        tl__files_say(t->files, "%s: %s", t->machine->ticket, t->failure);
        tl_log_warn("file transfer failed tech=%s ticket=%s direction=%s reason=\"%s\"",
                    t->files->tech.name, t->machine->ticket, t->push ? "push" : "pull", t->failure);
    }
    close_channel(t);
}

/* An agent's error code as the client reads it. */
static const char *error_text(int error)
{
    switch (error) {
    case TL_EFULL:
        return "over the limits of the grant on the machine (bytes per file, files per grant)";
    case TL_EDENIED:
        return "refused on the machine";
    case TL_ECLOSED:
        return "the transfer ended on the machine (the grant ended, or the machine went offline)";
    default:
        return tl_strerror(error);
    }
}

/* ---- the record (worker) --------------------------------------------------------------------- */

struct tjob {
    tl_job_t job;
    struct transfer *t;
    uint8_t *data; /* a chunk to store; NULL for the final job */
    size_t len;
    int final;
    /* final: what the loop knew */
    struct files *files;
    int64_t ticket_id;
    char grant[40], device[32], sha256[TL_SHA256_HEX_LEN], name[200];
    uint64_t size;
    int partial;    /* a pull that ended before the end of its file */
    uint64_t given; /* ... and the bytes the client had by then */
};

static int tjob_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct tjob *job = (struct tjob *)base;
    struct transfer *t = job->t;
    if (!job->final) {
        int rc = 0;
        if (t->writer == NULL)
            rc = tl_evidence_writer_new(ctx->evidence, &t->writer);
        if (rc == 0 && (rc = tl_evidence_writer_write(t->writer, job->data, job->len)) != 0)
            t->writer = NULL; /* already gone */
        return rc;
    }
    int rc = 0;
    if (t->writer == NULL)
        rc = tl_evidence_writer_new(ctx->evidence, &t->writer);
    char stored[TL_SHA256_HEX_LEN];
    if (rc == 0)
        rc = tl_evidence_writer_commit_expected(t->writer, job->sha256, job->size, stored);
    t->writer = NULL;
    int added = 0;
    if (rc == 0)
        rc = tl_store_evidence_add(ctx->store, job->ticket_id, job->sha256, "file", job->name,
                                   job->size, tl_wall_ms(), &added);
    if (rc != 0)
        return rc;
    json_t *details =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "grant", job->grant, "device",
                  job->device, "path", t->path, "direction", t->push ? "push" : "pull", "size",
                  (json_int_t)job->size, "sha256", job->sha256, "kind", "file", "name", job->name);
    if (details != NULL && job->partial &&
        (json_object_set_new(details, "complete", json_false()) != 0 ||
         json_object_set_new(details, "given", json_integer((json_int_t)job->given)) != 0)) {
        json_decref(details);
        details = NULL;
    }
    if (details == NULL)
        return TL_ENOMEM;
    tl_timeline_entry_t record = {
        .ticket_id = job->ticket_id,
        .time_ms = tl_wall_ms(),
        .actor = job->files->actor,
        .event = added ? "evidence.added" : NULL,
        .action = t->push ? "files.push" : "files.pull",
        .details = details,
    };
    rc = tl_timeline_record_by(ctx, &record, job->files->tech.role);
    json_decref(details);
    return rc;
}

static void pull_serve(struct transfer *t);
static void push_pump(struct transfer *t);
static void record_done(struct transfer *t, int status);

static void tjob_done(tl_job_t *base, int status)
{
    struct tjob *job = (struct tjob *)base;
    struct transfer *t = job->t;
    struct files *files = t->files;
    files->jobs--;
    t->jobs--;
    if (job->final) {
        record_done(t, status);
    } else {
        if (status != 0 && t->store_error == 0)
            t->store_error = status;
        t->stored += job->len;
        if (status != 0)
            fail(t, "cannot keep the file as evidence: %s", tl_strerror(status));
        if (t->push) {
            for (unsigned i = 0; i < t->write_count; i++) {
                struct push_write *w = &t->writes[(t->write_head + i) % TL_SFTP_SERVER_MAX_PENDING];
                if (!w->stored) {
                    w->stored = 1;
                    break;
                }
            }
            push_pump(t);
        } else {
            pull_serve(t);
        }
    }
    free(job->data);
    free(job);
    maybe_free(t);
    tl__files_settle(files);
}

static void submit(struct transfer *t, struct tjob *job)
{
    job->job.run = tjob_run;
    job->job.done = tjob_done;
    job->t = t;
    t->jobs++;
    t->files->jobs++;
    tl_worker_submit(t->files->sessions->worker, &job->job);
}

/* A chunk into the evidence store; 0 or TL_ENOMEM. */
static int store_chunk(struct transfer *t, const uint8_t *data, size_t len)
{
    struct tjob *job = calloc(1, sizeof *job);
    if (job == NULL || (job->data = malloc(len ? len : 1)) == NULL) {
        free(job);
        return TL_ENOMEM;
    }
    memcpy(job->data, data, len);
    job->len = len;
    submit(t, job);
    return 0;
}

/* "file-hostname-20261204T221500Z-0123456789ab": the evidence's name. */
static void evidence_name(const struct transfer *t, char *out, size_t size)
{
    const char *base = strrchr(t->path, '/');
    char part[64] = "", when[24] = "unknown";
    tl_text_name_part(part, sizeof part, base != NULL ? base + 1 : t->path, 48, NULL);
    time_t seconds = (time_t)(tl_wall_ms() / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) != NULL)
        strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &utc);
    tl_format(out, size, "file-%s%s%s-%s-%.12s", t->push ? "pushed" : "pulled", part[0] ? "-" : "",
              part, when, t->sha256);
}

/* The whole file passed: it goes on the record (evidence, timeline, audit). */
static void record(struct transfer *t)
{
    if (t->recording || t->recorded != 0)
        return;
    t->recording = 1;
    struct tjob *job = calloc(1, sizeof *job);
    if (job == NULL || tl_sha256_final(t->hash, t->sha256) != 0) {
        free(job);
        t->recording = 0;
        record_done(t, TL_ENOMEM);
        return;
    }
    struct machine *m = t->machine;
    job->final = 1;
    job->files = t->files;
    job->ticket_id = m->ticket_id;
    job->size = t->size;
    job->partial = t->partial;
    job->given = t->given;
    tl_format(job->grant, sizeof job->grant, "%s", m->grant);
    tl_format(job->device, sizeof job->device, "%s", m->device);
    memcpy(job->sha256, t->sha256, sizeof job->sha256);
    evidence_name(t, job->name, sizeof job->name);
    submit(t, job);
}

/*
 * A pull that ends before the end of its file after bytes reached the client (closed early, or
 * the client left) goes on the record all the same: what reached the relay, kept as evidence,
 * with how much of it the client had. The agent's further bytes are dropped.
 */
static void record_partial(struct transfer *t)
{
    if (t->push || t->given == 0 || t->recording || t->recorded != 0)
        return;
    t->partial = 1;
    t->stopped = 1;
    tl_log_info("file pull ended early tech=%s ticket=%s given=%llu received=%llu",
                t->files->tech.name, t->machine->ticket, (unsigned long long)t->given,
                (unsigned long long)t->size);
    record(t);
}

/* ---- the client's side ----------------------------------------------------------------------- */

static void answer_close(struct transfer *t)
{
    if (!t->close_asked)
        return;
    if (t->push && t->failure[0] != '\0' && t->state != T_GONE) {
        /* Answered once the agent has dropped what it wrote (its CLOSE), so that a client told
         * of the failure finds nothing left on the machine. */
        close_channel(t);
        if (t->state != T_GONE)
            return;
    }
    tl_sftp_server_t *server = t->files->server;
    t->close_asked = 0;
    if (t->failure[0] != '\0')
        tl_sftp_server_answer_status(server, t->close_op, TL_SFTP_FAILURE, t->failure);
    else
        tl_sftp_server_answer_status(server, t->close_op, TL_SFTP_OK, NULL);
    t->detached = 1;
    if (t->state != T_GONE)
        close_channel(t);
}

/* Credits the agent for bytes handed to the client and stored. */
static void pull_credit(struct transfer *t)
{
    uint64_t done = t->given < t->stored ? t->given : t->stored;
    tl_mux_t *mux = mux_of(t);
    if (done > t->credited && mux != NULL && t->state == T_OPEN) {
        tl_mux_consumed(mux, t->channel, (size_t)(done - t->credited));
        t->credited = done;
    }
}

/* Answers the READs waiting, in order, from what arrived. */
static void pull_serve(struct transfer *t)
{
    tl_sftp_server_t *server = t->files->server;
    while (t->read_count > 0) {
        uint32_t op = t->reads[t->read_head].op, len = t->reads[t->read_head].len;
        if (t->failure[0] != '\0') {
            tl_sftp_server_answer_status(server, op, TL_SFTP_FAILURE, t->failure);
        } else if (t->buf_len >= len) {
            tl_sftp_server_answer_data(server, op, t->buf + t->buf_start, len);
            t->buf_start += len;
            t->buf_len -= len;
            t->given += len;
        } else if (t->ended && t->recorded == 1) {
            /* The end of the file: a short read, then EOF. */
            tl_sftp_server_answer_data(server, op, t->buf + t->buf_start, t->buf_len);
            t->given += t->buf_len;
            t->buf_start += t->buf_len;
            t->buf_len = 0;
        } else {
            break;
        }
        t->read_head = (t->read_head + 1) % TL_SFTP_SERVER_MAX_PENDING;
        t->read_count--;
    }
    if (t->buf_len == 0)
        t->buf_start = 0;
    pull_credit(t);
    /* The CLOSE waits for a record being written, a failed pull's partial one too. */
    if (t->read_count == 0 && !t->recording &&
        (t->failure[0] != '\0' || ((t->ended || t->partial) && t->recorded == 1)))
        answer_close(t);
}

void tl__transfer_read(struct files *files, uint32_t op, uint32_t file, uint32_t len)
{
    struct transfer *t = find(files, file);
    if (t == NULL || t->push || t->read_count == TL_SFTP_SERVER_MAX_PENDING) {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, "not a file being read");
        return;
    }
    unsigned at = (t->read_head + t->read_count++) % TL_SFTP_SERVER_MAX_PENDING;
    t->reads[at].op = op;
    t->reads[at].len = len;
    pull_serve(t);
}

/* Sends what the window takes of the WRITEs, in order; answers those sent and stored. */
static void push_pump(struct transfer *t)
{
    tl_sftp_server_t *server = t->files->server;
    tl_mux_t *mux = mux_of(t);
    for (unsigned i = 0;
         mux != NULL && t->state == T_OPEN && t->failure[0] == '\0' && i < t->write_count; i++) {
        struct push_write *w = &t->writes[(t->write_head + i) % TL_SFTP_SERVER_MAX_PENDING];
        while (w->sent < w->len) {
            size_t written = 0;
            if (tl_mux_write(mux, t->channel, TL_STREAM_MAIN, w->data + w->sent, w->len - w->sent,
                             &written) != 0) {
                fail(t, "cannot send the file to the machine");
                break;
            }
            if (written == 0)
                break;
            w->sent += written;
        }
        if (w->sent < w->len)
            break;
    }
    while (t->write_count > 0) {
        struct push_write *w = &t->writes[t->write_head];
        if (t->failure[0] != '\0') {
            tl_sftp_server_answer_status(server, w->op, TL_SFTP_FAILURE, t->failure);
        } else if (w->sent == w->len && w->stored) {
            tl_sftp_server_answer_status(server, w->op, TL_SFTP_OK, NULL);
        } else {
            break;
        }
        free(w->data);
        w->data = NULL;
        t->write_head = (t->write_head + 1) % TL_SFTP_SERVER_MAX_PENDING;
        t->write_count--;
    }
    if (t->write_count > 0 || !t->close_asked || t->detached)
        return;
    if (t->failure[0] != '\0') {
        answer_close(t);
        return;
    }
    /* Everything is sent and stored: on the record first, then the machine commits it. */
    if (t->recorded == 0)
        record(t);
    else if (t->recorded == 1 && !t->eof_sent && mux != NULL && t->state == T_OPEN) {
        t->eof_sent = 1;
        tl_mux_eof(mux, t->channel);
    }
}

void tl__transfer_write(struct files *files, uint32_t op, uint32_t file, const uint8_t *data,
                        size_t len)
{
    struct transfer *t = find(files, file);
    if (t == NULL || !t->push || t->write_count == TL_SFTP_SERVER_MAX_PENDING) {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE,
                                     "not a file being written");
        return;
    }
    if (t->failure[0] != '\0') {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, t->failure);
        return;
    }
    struct push_write *w =
        &t->writes[(t->write_head + t->write_count) % TL_SFTP_SERVER_MAX_PENDING];
    *w = (struct push_write){.op = op, .len = len, .data = malloc(len ? len : 1)};
    if (w->data == NULL || store_chunk(t, data, len) != 0) {
        free(w->data);
        w->data = NULL;
        fail(t, "out of memory");
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, t->failure);
        return;
    }
    memcpy(w->data, data, len);
    t->write_count++;
    tl_sha256_update(t->hash, data, len);
    t->size += len;
    push_pump(t);
}

void tl__transfer_close(struct files *files, uint32_t op, uint32_t file, int aborted)
{
    struct transfer *t = find(files, file);
    if (t == NULL) {
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_OK, NULL);
        return;
    }
    t->close_asked = 1;
    t->close_op = op;
    if (aborted && t->failure[0] == '\0')
        fail(t, "%s: the file was not %s", t->path, t->push ? "written" : "read whole");
    if (t->push) {
        push_pump(t);
        return;
    }
    if (t->failure[0] != '\0' && t->given > 0 && t->recorded == 0) {
        /* A pull that failed after bytes reached the client: those are on the record too. */
        record_partial(t);
        pull_serve(t);
        maybe_free(t);
        return;
    }
    if (t->failure[0] == '\0' && !(t->ended && t->recorded == 1)) {
        if (t->ended || t->recording) /* its record is being written: the answer waits for it */
            return;
        if (t->given > 0) {
            /* Closed before the end with bytes given out: on the record before the answer. */
            close_channel(t);
            record_partial(t);
            return;
        }
        /* Closed before any byte reached the client: nothing moved, the agent stops reading. */
        tl_log_info("file pull closed early tech=%s ticket=%s given=0", files->tech.name,
                    t->machine->ticket);
        t->close_asked = 0;
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_OK, NULL);
        t->detached = 1;
        close_channel(t);
        maybe_free(t);
        return;
    }
    pull_serve(t);
    maybe_free(t);
}

/* ---- the record's end ------------------------------------------------------------------------ */

static void record_done(struct transfer *t, int status)
{
    t->recording = 0;
    t->recorded = status == 0 ? 1 : status;
    if (status != 0) {
        tl_log_error("file transfer not recorded tech=%s ticket=%s reason=%s", t->files->tech.name,
                     t->machine->ticket, tl_err_name(status));
        fail(t, "%s: cannot record the file (%s); %s", t->path, tl_strerror(status),
             t->push ? "nothing was written on the machine" : "the copy is not finished");
    } else {
        tl_log_info("file %s tech=%s ticket=%s size=%llu sha256=%s", t->push ? "pushed" : "pulled",
                    t->files->tech.name, t->machine->ticket, (unsigned long long)t->size,
                    t->sha256);
    }
    if (t->push)
        push_pump(t);
    else
        pull_serve(t);
}

/* ---- the agent's side ------------------------------------------------------------------------ */

void tl__transfer_open(struct machine *m, uint32_t op, uint32_t file, const char *path, int push)
{
    struct files *files = m->files;
    tl_sessions_t *sessions = files->sessions;
    tl_agent_link_t *agent = sessions->find_agent(sessions->find_ctx, m->device_id);
    tl_mux_t *mux = agent != NULL ? tl_agent_mux(agent) : NULL;
    struct transfer *t = calloc(1, sizeof *t);
    json_t *params = json_pack("{s:s, s:s, s:s, s:s}", "grant", m->grant, "technician",
                               files->tech.name, "path", path, "direction", push ? "push" : "pull");
    int rc = t == NULL || params == NULL || (t->hash = tl_sha256_new()) == NULL ? TL_ENOMEM
             : mux == NULL                                                      ? TL_ECLOSED
                                                                                : 0;
    if (rc == 0)
        rc = tl_mux_open(mux, tl_channel_type_name(TL_CHANNEL_FILE), params, &t->channel);
    json_decref(params);
    if (rc != 0) {
        const char *why = rc == TL_ECLOSED ? "the machine went offline" : tl_strerror(rc);
        tl__files_say(files, "%s: %s", m->ticket, why);
        tl_sftp_server_answer_status(files->server, op, TL_SFTP_FAILURE, why);
        if (t != NULL)
            tl_sha256_free(t->hash);
        free(t);
        return;
    }
    t->owner_kind = TL__OWNER_FILE;
    t->files = files;
    t->machine = m;
    t->index = file;
    t->push = push;
    t->agent = agent;
    t->open_op = op;
    t->state = T_OPENING;
    tl_format(t->path, sizeof t->path, "%s", path);
    tl_mux_set_data(mux, t->channel, t);
    t->next = files->transfers;
    files->transfers = t;
}

void tl__transfer_confirm(void *owner)
{
    struct transfer *t = owner;
    t->state = T_OPEN;
    if (t->detached) {
        close_channel(t);
        return;
    }
    tl_sftp_server_answer_status(t->files->server, t->open_op, TL_SFTP_OK, NULL);
    tl__files_settle(t->files);
}

void tl__transfer_refuse(void *owner, uint32_t reason, tl_str_t message)
{
    struct transfer *t = owner;
    struct files *files = t->files;
    t->state = T_GONE;
    t->detached = 1;
    char text[1100];
    tl__sessions_clean_line(text, sizeof text, message.ptr, message.len);
    int error = -(int)reason;
    uint32_t status = error == TL_ENOTFOUND ? TL_SFTP_NO_SUCH_FILE
                      : error == TL_EDENIED ? TL_SFTP_PERMISSION_DENIED
                                            : TL_SFTP_FAILURE;
    if (status != TL_SFTP_NO_SUCH_FILE)
        tl__files_say(files, "%s: %s", t->machine->ticket, text[0] ? text : error_text(error));
    tl_sftp_server_answer_status(files->server, t->open_op, status,
                                 text[0] ? text : error_text(error));
    maybe_free(t);
    tl__files_settle(files);
}

void tl__transfer_data(void *owner, const uint8_t *data, size_t len)
{
    struct transfer *t = owner;
    struct files *files = t->files;
    tl_mux_t *mux = mux_of(t);
    if (t->push || t->detached || t->stopped || t->failure[0] != '\0') {
        if (mux != NULL)
            tl_mux_consumed(mux, t->channel, len);
        return;
    }
    uint64_t limit = files->sessions->file_max_bytes ? files->sessions->file_max_bytes
                                                     : TL_SESSIONS_FILE_MAX_BYTES;
    if (len > limit - t->size) {
        tl_mux_consumed(mux, t->channel, len);
        fail(t, "%s: the file is larger than the limit of %llu bytes", t->path,
             (unsigned long long)limit);
        pull_serve(t);
        tl__files_settle(files);
        return;
    }
    /* The agent keeps within its window, so what waits here stays within it too. */
    if (t->buf_start + t->buf_len + len > t->buf_cap) {
        if (t->buf_start > 0) {
            memmove(t->buf, t->buf + t->buf_start, t->buf_len);
            t->buf_start = 0;
        }
        if (t->buf_len + len > t->buf_cap) {
            size_t cap = t->buf_cap ? t->buf_cap : 64u * 1024u;
            while (cap < t->buf_len + len)
                cap *= 2;
            uint8_t *grown = realloc(t->buf, cap);
            if (grown == NULL) {
                tl_mux_consumed(mux, t->channel, len);
                fail(t, "out of memory");
                pull_serve(t);
                tl__files_settle(files);
                return;
            }
            t->buf = grown;
            t->buf_cap = cap;
        }
    }
    if (store_chunk(t, data, len) != 0) {
        tl_mux_consumed(mux, t->channel, len);
        fail(t, "out of memory");
        pull_serve(t);
        tl__files_settle(files);
        return;
    }
    memcpy(t->buf + t->buf_start + t->buf_len, data, len);
    t->buf_len += len;
    t->size += len;
    tl_sha256_update(t->hash, data, len);
    pull_serve(t);
    tl__files_settle(files);
}

void tl__transfer_writable(void *owner)
{
    struct transfer *t = owner;
    if (!t->push || t->detached)
        return;
    push_pump(t);
    tl__files_settle(t->files);
}

/* The channel is gone with status error (0: the whole file read, or committed). */
static void transfer_ended(struct transfer *t, int error)
{
    struct files *files = t->files;
    t->state = T_GONE;
    t->ended = 1;
    t->end_error = error;
    if (t->detached || t->stopped) {
        /* Let go, or stopped by us after a partial pull: its record (if any) answers. */
        maybe_free(t);
        tl__files_settle(files);
        return;
    }
    if (error != 0)
        fail(t, "%s: %s", t->path, error_text(error));
    else if (t->push && !t->eof_sent)
        fail(t, "%s: the machine ended the transfer early", t->path);
    if (t->push) {
        push_pump(t);
        answer_close(t);
    } else {
        if (error == 0 && t->failure[0] == '\0')
            record(t);
        pull_serve(t);
    }
    maybe_free(t);
    tl__files_settle(files);
}

void tl__transfer_channel_close(void *owner, const struct tl_msg_channel_close *close)
{
    struct transfer *t = owner;
    int error = TL_ECLOSED;
    if (close->flags & TL_CLOSE_HAS_EXIT_STATUS)
        error = close->exit_status == 0                                ? 0
                : close->exit_status > 0 && close->exit_status < 40000 ? -close->exit_status
                                                                       : TL_EIO;
    transfer_ended(t, error);
}

void tl__transfer_agent_closed(struct files *files, tl_agent_link_t *agent)
{
    for (struct transfer *t = files->transfers, *next; t != NULL; t = next) {
        next = t->next;
        if (t->agent != agent)
            continue;
        t->agent = NULL;
        if (t->state == T_OPENING && !t->detached) {
            t->state = T_GONE;
            t->detached = 1;
            tl_sftp_server_answer_status(files->server, t->open_op, TL_SFTP_FAILURE,
                                         "the machine went offline");
            maybe_free(t);
            continue;
        }
        if (t->state != T_GONE)
            transfer_ended(t, TL_ECLOSED);
    }
}

void tl__transfer_abandon_all(struct files *files)
{
    for (struct transfer *t = files->transfers, *next; t != NULL; t = next) {
        next = t->next;
        /* The client left inside a pull: what it had is on the record all the same. */
        if (!t->detached && !(t->ended && t->recorded != 0))
            record_partial(t);
        t->detached = 1;
        t->close_asked = 0;
        t->read_count = 0;
        tl_mux_t *mux = mux_of(t);
        if (t->state != T_GONE && mux != NULL) {
            /* An unconfirmed channel is closed at its confirm; nothing of it comes here. */
            tl_mux_close(mux, t->channel, NULL);
            tl_mux_set_data(mux, t->channel, NULL);
        }
        t->state = T_GONE;
        maybe_free(t);
    }
}
