/*
 * Technicians' sessions on users' machines (relay/sessions/sessions.h): consent,
 * channel bridging with flow control both ways, transcripts, diagnostics
 * and recordings kept as evidence. docs/protocol.md §7.6-7.9 is the wire
 * contract with the agent; docs/technicians.md describes the commands.
 *
 * A session walks through phases, each ended by a storage job or an answer
 * from the agent:
 *
 *   LOOKUP      job: the ticket (visible to this technician?) and its device
 *   CATALOGUE   runbooks.list (fix, runbooks)
 *   ASK         job: "consent asked" on the timeline and in the audit log
 *   CONSENT     session.request waiting for the user
 *   GRANTED     job: "consent granted" and "session started" recorded
 *   CHANNEL     the session channel is open: bytes flow
 *   FINAL       job: evidence stored, "session ended" recorded
 *   DONE        the technician has been told; freed once no job is in flight
 *
 * Whatever happens meanwhile (the technician leaves, the user ends the grant,
 * the agent disconnects) is noted on the session and acted on when the
 * current phase ends, so no step ever runs twice or under another's feet.
 */
#include "relay/sessions/sessions.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/names.h"
#include "proto/text.h"
#include "relay/sessions/recording.h"
#include "proto/roles.h"
#include "relay/store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RECORDINGS_DIR "recordings"
/* Evidence copied from a recording file in pieces of this size (worker). */
#define COPY_CHUNK (256u * 1024u)
/* Longest argv or argument list written to the timeline and audit log; the
 * whole of it is in the transcript evidence. */
#define AUDIT_ARGS_MAX 8192
#define AUDIT_WORD_MAX 512
/* Entries of an agent's runbook catalogue we look at, and parameters per runbook. */
#define CATALOGUE_MAX 256
#define CATALOGUE_PARAMS_MAX 64
/* The latest grant expiry the relay takes (9999-12-31T23:59:59.999Z): a date it can write. */
#define EXPIRES_MS_MAX INT64_C(253402300799999)
/* session.ended notifications being recorded at once, relay-wide. */
#define GRANT_JOBS_MAX 64

enum phase {
    PHASE_LOOKUP,
    PHASE_CATALOGUE,
    PHASE_ASK,
    PHASE_CONSENT,
    PHASE_GRANTED,
    PHASE_CHANNEL,
    PHASE_FINAL,
    PHASE_DONE,
};

enum channel_state {
    CHANNEL_NONE,    /* never opened */
    CHANNEL_OPENING, /* OPEN sent, no CONFIRM yet */
    CHANNEL_OPEN,
    CHANNEL_CLOSING, /* our CLOSE sent, waiting for the agent's */
    CHANNEL_GONE,    /* both CLOSEs, refused, or the connection ended */
};

/* One output stream kept for a transcript: the first bytes, and the hash and size of all. */
struct capture {
    uint8_t *kept;
    size_t kept_len, kept_alloc;
    uint64_t total;
    tl_sha256_t *hash;
};

struct tl_sessions {
    uv_loop_t *loop;
    tl_worker_t *worker;
    char recordings_dir[4096];
    tl_sessions_find_agent_fn find_agent;
    void *find_ctx;
    uv_async_t keepalive; /* referenced while sessions exist */
    struct session *head;
    uint32_t count;
    uint32_t recording_serial;
    unsigned grant_jobs;
};

struct session {
    tl_sessions_t *sessions;
    struct session *prev, *next;
    uv_timer_t timer; /* the agent's CLOSE deadline; the session is freed in its close callback */
    tl_exec_t *exec;  /* NULL once the technician has left or been answered */
    tl_agent_link_t *agent; /* NULL until found, and once the connection is gone */
    enum tl_session_kind kind;
    enum phase phase;
    int observe, json, role;
    tl_technician_t tech;
    char actor[96];
    int64_t ticket_id, device_id;
    char ticket[32], device[32];
    char reason[TL_SESSIONS_MAX_REASON + 1];
    uint32_t duration_s;
    json_t *argv;         /* run: the command */
    char runbook[64];     /* fix */
    json_t *runbook_args; /* fix: {NAME: VALUE} */
    unsigned jobs;        /* storage jobs in flight */
    /* consent */
    uint32_t request_id; /* a request waiting on the agent, 0 if none */
    char grant[40];
    int64_t expires_ms;
    char granted_by[16];
    /* channel */
    enum channel_state channel_state;
    uint32_t channel;
    uint32_t agent_channel;
    size_t held; /* agent bytes handed to the exec and not yet reported consumed */
    unsigned input_blocked : 1;
    unsigned input_eof : 1;
    unsigned eof_sent : 1;
    unsigned raw : 1;
    unsigned started : 1; /* session.start recorded */
    unsigned recording_pending : 1;
    unsigned resize_pending : 1;
    /* The agent acknowledges what its terminal took (CHANNEL_INPUT_ACK): the
     * technician's input is held by the recording until it says, hidden or not. */
    unsigned hold_input : 1;
    /*
     * The outcome. The final job reads these on the worker thread, so from
     * conclude() on the loop leaves them alone (and they are no bit-fields,
     * which would share memory with fields the loop still writes).
     */
    int finished; /* the agent's CLOSE carried an exit status or signal */
    int left_by_technician;
    int exit_status;
    char exit_signal[65];
    char end_message[1200]; /* why it ended early, for the technician; "" if it did not */
    char end_cause[32];     /* the same, for the record: "machine", "offline", ... */
    /* The grant ended while the final job ran: told, not recorded (loop only). */
    char late_end_message[1200];
    int late_unfinished;
    int64_t started_ms, ended_ms;
    /* run, fix */
    struct capture out, err;
    /* diag */
    tl_evidence_writer_t *writer; /* worker thread only */
    int writer_failed;            /* worker thread only until the final job is done */
    uint64_t diag_bytes;
    int diag_error; /* why the report was not kept; 0 if it is fine */
    /* join */
    tl_recording_t *recording;
    char recording_name[160];
    char recording_path[4400];
    int recording_status;
    char recording_hash[TL_SHA256_HEX_LEN];
    uint64_t recording_size;
    /* the evidence the session produced */
    char evidence_hash[TL_SHA256_HEX_LEN];
    char evidence_name[160];
    uint64_t evidence_size;
};

/* A storage job for a session: its own work, then the entries it records. */
struct sjob {
    tl_job_t job;
    struct session *session;
    int (*work)(struct sjob *job, tl_job_ctx_t *ctx); /* may be NULL */
    void (*then)(struct session *session, struct sjob *job, int status);
    json_t *records; /* [{"event":..., "audit":..., "actor":..., "details":{...}}] */
    /* lookup */
    int64_t device_id;
    char message[256];
    /* diag chunks */
    uint8_t *data;
    size_t len;
    int keep; /* diag final: commit (1) or drop (0) */
    /* grant ended (no session) */
    tl_sessions_t *sessions;
    int64_t agent_device;
    int64_t ticket_id;
    char ticket[32];
};

static void conclude(struct session *s);
static void maybe_release(struct session *s);
static void end_channel(struct session *s);

/* ---- text --------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one. */
static size_t utf8_sequence(const uint8_t *p, size_t left)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    uint8_t low = 0x80, high = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            low = 0xa0;
        else if (c == 0xed)
            high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            low = 0x90;
        else if (c == 0xf4)
            high = 0x8f;
    } else
        return 0;
    if (left < need || p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return need;
}

/* Bytes as UTF-8 text, each byte that is not part of a valid sequence as U+FFFD. */
static char *utf8_clean(const uint8_t *in, size_t len, size_t *out_len)
{
    char *out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence(in + i, len - i);
        if (n == 0) {
            memcpy(out + used, "\xef\xbf\xbd", 3);
            used += 3;
            i++;
        } else {
            memcpy(out + used, in + i, n);
            used += n;
            i += n;
        }
    }
    out[used] = '\0';
    *out_len = used;
    return out;
}

static int utf8_valid(const char *text)
{
    return tl_text_utf8_valid(text, strlen(text));
}

/*
 * Text from the agent, as the technician is shown it (proto/text.h): one
 * line, every control character and byte that is not UTF-8 escaped
 * visibly, bounded by size, always terminated.
 */
static void clean_line(char *out, size_t size, const uint8_t *in, size_t len)
{
    /* As text first (a NUL or a stray byte becomes \xHH), then escaped and clipped. */
    char *text = tl_text_utf8_dup(in, len);
    tl_text_clip(out, size, text != NULL ? text : "", 0, TL_TEXT_LINE);
    free(text);
}

static void clean_text(char *out, size_t size, const char *text)
{
    clean_line(out, size, (const uint8_t *)(text ? text : ""), text ? strlen(text) : 0);
}

/* "2026-11-23T19:04:05.123Z" */
static void iso_time(int64_t ms, char out[32])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    char base[24];
    if (gmtime_r(&seconds, &utc) == NULL ||
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &utc) == 0)
        base[0] = '\0';
    snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

/* "20261123T190405Z", for file names */
static void stamp(int64_t ms, char out[24])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) == NULL || strftime(out, 24, "%Y%m%dT%H%M%SZ", &utc) == 0)
        snprintf(out, 24, "unknown");
}

static const char *kind_name(enum tl_session_kind kind, int observe)
{
    switch (kind) {
    case TL_SESSION_DIAG:
        return "diag";
    case TL_SESSION_RUN:
        return "exec";
    case TL_SESSION_JOIN:
        return observe ? "observe" : "shell";
    case TL_SESSION_FIX:
        return "runbook";
    default:
        return "runbooks";
    }
}

/* The scope a session asks for (docs/protocol.md §7.7). */
static const char *scope_of(const struct session *s)
{
    switch (s->kind) {
    case TL_SESSION_DIAG:
        return "diag";
    case TL_SESSION_RUN:
        return "exec";
    case TL_SESSION_JOIN:
        return s->observe ? "observe" : "shell";
    default:
        return "fix";
    }
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

/* ---- telling the technician ----------------------------------------------------------------- */

/* One line on the technician's stderr, "tierline: ..."; \r\n once the terminal is raw. */
static void say(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct session *s, const char *fmt, ...)
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
static void finish(struct session *s, int code)
{
    if (s->exec != NULL)
        tl_exec_finish(s->exec, code);
    s->exec = NULL;
    s->phase = PHASE_DONE;
    maybe_release(s);
}

static void fail(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct session *s, const char *fmt, ...)
{
    char line[1200];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    say(s, "%s", line);
    finish(s, 1);
}

/* Ends early, for a reason that is told when the session is concluded. */
static void set_end(struct session *s, const char *cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_end(struct session *s, const char *cause, const char *fmt, ...)
{
    if (s->end_message[0] != '\0')
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(s->end_message, sizeof s->end_message, fmt, args);
    va_end(args);
    snprintf(s->end_cause, sizeof s->end_cause, "%s", cause);
}

/* ---- lifetime ------------------------------------------------------------------------------- */

static void capture_free(struct capture *c)
{
    free(c->kept);
    tl_sha256_free(c->hash);
    memset(c, 0, sizeof *c);
}

static void session_closed(uv_handle_t *handle)
{
    struct session *s = handle->data;
    tl_sessions_t *sessions = s->sessions;
    json_decref(s->argv);
    json_decref(s->runbook_args);
    capture_free(&s->out);
    capture_free(&s->err);
    free(s);
    if (--sessions->count == 0)
        uv_unref((uv_handle_t *)&sessions->keepalive);
}

/* Frees the session once it has answered and nothing of it is in flight. */
static void maybe_release(struct session *s)
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

/* ---- storage jobs -----------------------------------------------------------------------------
 */

static void sjob_done(tl_job_t *base, int status);

static int sjob_run(tl_job_t *base, tl_job_ctx_t *ctx);

static struct sjob *sjob_new(struct session *s, int (*work)(struct sjob *, tl_job_ctx_t *),
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

static void sjob_free(struct sjob *job)
{
    json_decref(job->records);
    free(job->data);
    free(job);
}

/* Adds an entry for the ticket's timeline (event) and the audit log (action). details is taken. */
static void sjob_record(struct sjob *job, const char *event, const char *action, json_t *details)
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

static void submit(struct session *s, struct sjob *job)
{
    s->jobs++;
    tl_worker_submit(s->sessions->worker, &job->job);
}

static int write_records(struct sjob *job, tl_job_ctx_t *ctx, const char *actor, int64_t ticket_id,
                         const char *ticket)
{
    int64_t now = tl_wall_ms();
    size_t i;
    json_t *entry;
    json_array_foreach(job->records, i, entry)
    {
        const char *event = json_string_value(json_object_get(entry, "event"));
        const char *action = json_string_value(json_object_get(entry, "audit"));
        json_t *details = json_object_get(entry, "details");
        int rc = 0;
        if (event != NULL)
            rc = tl_store_ticket_event(ctx->store, ticket_id, now, actor, event, details);
        if (rc == 0 && action != NULL)
            rc = tl_worker_audit(ctx, actor, action, ticket, details);
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
        rc = write_records(job, ctx, s->actor, s->ticket_id, s->ticket);
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
    sjob_free(job);
    maybe_release(s);
}

/* Records entries and then continues with then (NULL: nothing but the record). */
static void record(struct session *s, const char *event, const char *action, json_t *details,
                   void (*then)(struct session *, struct sjob *, int))
{
    struct sjob *job = sjob_new(s, NULL, then);
    if (job == NULL) {
        json_decref(details);
        if (then != NULL)
            then(s, NULL, TL_ENOMEM);
        return;
    }
    sjob_record(job, event, action, details);
    submit(s, job);
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
    json_array_foreach(words, i, word)
    {
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
    json_object_foreach(args, name, value)
    {
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
static json_t *session_details(const struct session *s)
{
    json_t *details = json_pack("{s:s, s:s, s:s}", "type", kind_name(s->kind, s->observe), "device",
                                s->device, "grant", s->grant);
    if (details == NULL)
        return NULL;
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
static json_t *end_details(const struct session *s)
{
    json_t *details = session_details(s);
    if (details == NULL)
        return NULL;
    if (s->finished && s->exit_signal[0] != '\0')
        json_object_set_new(details, "exit_signal", json_string(s->exit_signal));
    else if (s->finished)
        json_object_set_new(details, "exit_status", json_integer(s->exit_status));
    if (s->end_cause[0] != '\0') {
        char text[1200];
        clean_text(text, sizeof text, s->end_message);
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
static const char *end_event(const struct session *s)
{
    if (s->kind == TL_SESSION_RUN)
        return "exec.finished";
    if (s->kind == TL_SESSION_FIX)
        return "fix.finished";
    return "session.ended";
}

/* ---- evidence on the worker --------------------------------------------------------------------
 */

/*
 * The name of the evidence the session produced (docs/technicians.md, "What
 * is kept"): the kind, what ran (clipped, only A-Z a-z 0-9 . _ -), when it
 * started, and the first 12 hex digits of the content's SHA-256. A ticket
 * holds each hash once, so two items on one ticket never share a name, even
 * from the same second. The record of the session's end names it too.
 * Worker thread, once the hash is known.
 */
static void name_evidence(struct sjob *job, const char *kind, const char *what,
                          const char *extension)
{
    struct session *s = job->session;
    char when[24], part[64] = "";
    stamp(s->started_ms, when);
    if (what != NULL)
        tl_text_name_part(part, sizeof part, what, 48, NULL);
    snprintf(s->evidence_name, sizeof s->evidence_name, "%s%s%s-%s-%.12s%s", kind,
             part[0] != '\0' ? "-" : "", part, when, s->evidence_hash, extension);
    size_t i;
    json_t *entry;
    json_array_foreach(job->records, i, entry)
    {
        const char *action = json_string_value(json_object_get(entry, "audit"));
        json_t *details = json_object_get(entry, "details");
        if (action != NULL && strcmp(action, "session.end") == 0 && json_is_object(details))
            json_object_set_new(details, "evidence_name", json_string(s->evidence_name));
    }
}

/* What a command ran, for its name: the program's base name and its arguments. */
static void command_words(const struct session *s, char *out, size_t size)
{
    size_t used = 0, i;
    json_t *word;
    out[0] = '\0';
    json_array_foreach(s->argv, i, word)
    {
        const char *text = json_string_value(word);
        const char *slash = i == 0 ? strrchr(text, '/') : NULL;
        int n = snprintf(out + used, size - used, "%s%s", i > 0 ? " " : "",
                         slash != NULL ? slash + 1 : text);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/* A fix, for its name: the runbook and its values. */
static void runbook_words(const struct session *s, char *out, size_t size)
{
    size_t used = 0;
    const char *name;
    json_t *value;
    int n = snprintf(out, size, "%s", s->runbook);
    used = n > 0 && (size_t)n < size ? (size_t)n : 0;
    json_object_foreach(s->runbook_args, name, value)
    {
        n = snprintf(out + used, size - used, " %s", json_string_value(value));
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/* Records an evidence item on the ticket, with its timeline event and audit line. */
static int add_evidence(struct sjob *job, tl_job_ctx_t *ctx, const char *kind, const char *action)
{
    struct session *s = job->session;
    int added = 0;
    int rc = tl_store_evidence_add(ctx->store, s->ticket_id, s->evidence_hash, kind,
                                   s->evidence_name, s->evidence_size, tl_wall_ms(), &added);
    if (rc != 0)
        return rc;
    json_t *details =
        json_pack("{s:s, s:s, s:s, s:I, s:s}", "sha256", s->evidence_hash, "kind", kind, "name",
                  s->evidence_name, "size", (json_int_t)s->evidence_size, "grant", s->grant);
    if (details == NULL)
        return TL_ENOMEM;
    if (added)
        rc = tl_store_ticket_event(ctx->store, s->ticket_id, tl_wall_ms(), s->actor,
                                   "evidence.added", details);
    if (rc == 0)
        rc = tl_worker_audit(ctx, s->actor, action, s->ticket, details);
    json_decref(details);
    return rc;
}

static int work_diag_chunk(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    if (s->writer_failed != 0)
        return s->writer_failed;
    int rc = 0;
    if (s->writer == NULL)
        rc = tl_evidence_writer_new(ctx->evidence, &s->writer);
    if (rc == 0)
        rc = tl_evidence_writer_write(s->writer, job->data, job->len);
    if (rc != 0) {
        tl_evidence_writer_abort(s->writer);
        s->writer = NULL;
        s->writer_failed = rc;
    }
    return rc;
}

static int work_diag_final(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    if (!job->keep || s->writer_failed != 0) {
        /* Nothing is kept; the session's end is still recorded. */
        tl_evidence_writer_abort(s->writer);
        s->writer = NULL;
        return 0;
    }
    int rc = 0;
    if (s->writer == NULL && (rc = tl_evidence_writer_new(ctx->evidence, &s->writer)) != 0)
        return rc;
    rc = tl_evidence_writer_commit(s->writer, s->evidence_hash, &s->evidence_size);
    s->writer = NULL;
    if (rc != 0)
        return rc;
    name_evidence(job, "diagnostics", NULL, ".json");
    return add_evidence(job, ctx, "diagnostics", "evidence.add");
}

static json_t *capture_json(const struct capture *c)
{
    char hex[TL_SHA256_HEX_LEN] = "";
    if (c->hash != NULL)
        tl_sha256_final(c->hash, hex);
    else
        tl_sha256_hex("", 0, hex);
    size_t text_len = 0;
    char *text = utf8_clean(c->kept ? c->kept : (const uint8_t *)"", c->kept_len, &text_len);
    if (text == NULL)
        return NULL;
    json_t *out =
        json_pack("{s:s%, s:I, s:s, s:b}", "text", text, text_len, "bytes", (json_int_t)c->total,
                  "sha256", hex, "truncated", c->total > c->kept_len);
    free(text);
    return out;
}

/* The transcript of run and fix: what ran and what it printed (worker). */
static int work_transcript(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    char started[32], ended[32];
    iso_time(s->started_ms, started);
    iso_time(s->ended_ms, ended);
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "type",
                  s->kind == TL_SESSION_RUN ? "command" : "runbook", "ticket", s->ticket, "device",
                  s->device, "technician", s->tech.name, "role", s->tech.role, "grant", s->grant,
                  "reason", s->reason, "started", started, "started_ms", (json_int_t)s->started_ms,
                  "ended", ended, "ended_ms", (json_int_t)s->ended_ms);
    if (doc == NULL)
        return TL_ENOMEM;
    if (s->argv != NULL)
        json_object_set(doc, "argv", s->argv);
    if (s->runbook[0] != '\0') {
        json_object_set_new(doc, "runbook", json_string(s->runbook));
        json_object_set(doc, "args", s->runbook_args);
    }
    json_object_set_new(doc, "exit_status",
                        s->finished && s->exit_signal[0] == '\0' ? json_integer(s->exit_status)
                                                                 : json_null());
    json_object_set_new(doc, "exit_signal",
                        s->finished && s->exit_signal[0] != '\0' ? json_string(s->exit_signal)
                                                                 : json_null());
    if (s->end_cause[0] != '\0')
        json_object_set_new(doc, "ended_by", json_string(s->end_cause));
    else if (s->left_by_technician)
        json_object_set_new(doc, "ended_by", json_string("technician"));
    else
        json_object_set_new(doc, "ended_by", json_null());
    json_object_set_new(doc, "stdout", capture_json(&s->out));
    json_object_set_new(doc, "stderr", capture_json(&s->err));
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (text == NULL)
        return TL_ENOMEM;
    size_t len = strlen(text);
    int rc = tl_evidence_put(ctx->evidence, text, len, s->evidence_hash);
    free(text);
    if (rc != 0)
        return rc;
    s->evidence_size = len;
    char what[256];
    if (s->kind == TL_SESSION_RUN)
        command_words(s, what, sizeof what);
    else
        runbook_words(s, what, sizeof what);
    const char *kind = s->kind == TL_SESSION_RUN ? "command" : "runbook";
    name_evidence(job, kind, what, ".json");
    return add_evidence(job, ctx, kind, "evidence.add");
}

/* The finished recording file, copied into the evidence store (worker). */
static int work_recording(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    FILE *file = fopen(s->recording_path, "rb");
    if (file == NULL)
        return -errno;
    tl_evidence_writer_t *writer = NULL;
    uint8_t *chunk = malloc(COPY_CHUNK);
    int rc = chunk == NULL ? TL_ENOMEM : tl_evidence_writer_new(ctx->evidence, &writer);
    while (rc == 0) {
        size_t got = fread(chunk, 1, COPY_CHUNK, file);
        if (got == 0) {
            rc = ferror(file) ? TL_EIO : 0;
            break;
        }
        rc = tl_evidence_writer_write(writer, chunk, got);
        if (rc != 0)
            writer = NULL; /* already gone */
    }
    fclose(file);
    free(chunk);
    if (rc != 0) {
        tl_evidence_writer_abort(writer);
        return rc;
    }
    /* What is stored must be exactly what the recorder wrote and hashed. */
    rc = tl_evidence_writer_commit_expected(writer, s->recording_hash, s->recording_size,
                                            s->evidence_hash);
    if (rc != 0)
        return rc;
    s->evidence_size = s->recording_size;
    name_evidence(job, "recording", s->observe ? "observe" : "shell", ".cast.gz");
    return add_evidence(job, ctx, "recording", "session.recorded");
}

/* ---- flow: lookup ------------------------------------------------------------------------------
 */

static void ask_consent(struct session *s);
static void request_catalogue(struct session *s);

static int work_lookup(struct sjob *job, tl_job_ctx_t *ctx)
{
    struct session *s = job->session;
    json_t *ticket = NULL;
    int rc = tl_store_ticket_fields(ctx->store, s->ticket_id, &ticket);
    if (rc == 0 && tl_role_assigned_only(s->role)) {
        /* Vendors work only on tickets handed to them; others do not exist for them. */
        const char *assignee = json_string_value(json_object_get(ticket, "assignee"));
        if (assignee == NULL || strcmp(assignee, s->tech.name) != 0)
            rc = TL_ENOTFOUND;
    }
    if (rc == 0)
        rc = tl_store_parse_id(json_string_value(json_object_get(ticket, "device")), 'D',
                               &job->device_id);
    json_decref(ticket);
    if (rc == TL_ENOTFOUND)
        snprintf(job->message, sizeof job->message, "no ticket %s", s->ticket);
    else if (rc != 0)
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
        finish(s, 1);
        return;
    }
    if (status != 0 || job->message[0] != '\0') {
        fail(s, "%s", status != 0 ? tl_strerror(status) : job->message);
        return;
    }
    s->device_id = job->device_id;
    snprintf(s->device, sizeof s->device, "D-%" PRId64, s->device_id);
    tl_agent_link_t *agent = s->sessions->find_agent(s->sessions->find_ctx, s->device_id);
    if (agent == NULL) {
        fail(s, "device %s is offline; the request can be retried when it connects", s->device);
        return;
    }
    if (sessions_on_agent(s->sessions, agent) >= TL_SESSIONS_PER_AGENT) {
        fail(s, "%s has %d sessions already; try again when one ends", s->device,
             TL_SESSIONS_PER_AGENT);
        return;
    }
    s->agent = agent;
    if (s->kind == TL_SESSION_FIX || s->kind == TL_SESSION_RUNBOOKS)
        request_catalogue(s);
    else
        ask_consent(s);
}

/* ---- flow: the runbook catalogue ----------------------------------------------------------------
 */

static int role_rank(const char *role)
{
    if (strcmp(role, "tier1") == 0)
        return 1;
    if (strcmp(role, "tier2") == 0 || strcmp(role, "tier4") == 0)
        return 2; /* vendors count as tier2 (docs/consent.md) */
    if (strcmp(role, "tier3") == 0)
        return 3;
    return 0;
}

/* A text of the catalogue as the agent sent it, at most max bytes (never a split character). */
static json_t *bounded_string(json_t *value, size_t max)
{
    const char *text = json_string_value(value);
    if (text == NULL)
        return json_string("");
    size_t len = strnlen(text, max + 1);
    if (len > max) {
        len = max;
        while (len > 0 && ((uint8_t)text[len] & 0xc0) == 0x80)
            len--;
    }
    return json_stringn(text, len);
}

/*
 * The agent's catalogue (docs/protocol.md §7.9), checked and rebuilt with
 * only what we understand: entries with bad names are skipped, texts are
 * bounded (and escaped when printed). NULL if the answer is not a catalogue at all.
 */
static json_t *catalogue_from(json_t *result)
{
    json_t *list = json_object_get(result, "runbooks");
    if (!json_is_array(list))
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        if (i >= CATALOGUE_MAX)
            break;
        const char *name = json_string_value(json_object_get(entry, "name"));
        const char *min_role = json_string_value(json_object_get(entry, "min_role"));
        if (!tl_runbook_name_valid(name))
            continue;
        if (min_role == NULL || role_rank(min_role) == 0)
            min_role = "tier1";
        json_t *params = json_array();
        size_t j;
        json_t *param;
        json_array_foreach(json_object_get(entry, "params"), j, param)
        {
            const char *pname = json_string_value(json_object_get(param, "name"));
            if (j >= CATALOGUE_PARAMS_MAX || pname == NULL ||
                !tl_runbook_param_name_valid(pname, strlen(pname)))
                continue;
            json_array_append_new(
                params, json_pack("{s:s, s:b, s:o}", "name", pname, "required",
                                  json_is_true(json_object_get(param, "required")), "description",
                                  bounded_string(json_object_get(param, "description"), 200)));
        }
        json_array_append_new(
            out, json_pack("{s:s, s:o, s:s, s:b, s:o}", "name", name, "description",
                           bounded_string(json_object_get(entry, "description"), 300), "min_role",
                           min_role, "privileged",
                           json_is_true(json_object_get(entry, "privileged")), "params", params));
    }
    return out;
}

static void print_catalogue(struct session *s, json_t *catalogue)
{
    if (s->json) {
        char *text = tl_text_json_dumps(catalogue, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text != NULL)
            tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%s\n", text);
        free(text);
        return;
    }
    tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%-24s %-4s %-8s %-28s %s\n", "NAME", "PRIV",
                   "MIN-ROLE", "PARAMS", "DESCRIPTION");
    size_t i;
    json_t *entry;
    json_array_foreach(catalogue, i, entry)
    {
        char params[512] = "";
        size_t used = 0, j;
        json_t *param;
        json_array_foreach(json_object_get(entry, "params"), j, param)
        {
            int required = json_is_true(json_object_get(param, "required"));
            int n = snprintf(params + used, sizeof params - used, "%s%s%s%s", j ? "," : "",
                             required ? "" : "[", json_string_value(json_object_get(param, "name")),
                             required ? "" : "]");
            if (n < 0 || (size_t)n >= sizeof params - used)
                break;
            used += (size_t)n;
        }
        char *description = tl_text_escape_dup(
            json_string_value(json_object_get(entry, "description")), TL_TEXT_LINE);
        tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%-24s %-4s %-8s %-28s %s\n",
                       json_string_value(json_object_get(entry, "name")),
                       json_is_true(json_object_get(entry, "privileged")) ? "yes" : "no",
                       json_string_value(json_object_get(entry, "min_role")), used ? params : "-",
                       description != NULL ? description : "");
        free(description);
    }
    if (json_array_size(catalogue) == 0)
        tl_exec_printf(s->exec, TL_EXEC_STDOUT, "(no runbooks on %s)\n", s->device);
}

/* Edit distance, for "did you mean"; names are at most 48 bytes. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la > 63 || lb > 63)
        return 64;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

static void unknown_runbook(struct session *s, json_t *catalogue)
{
    char close_names[512] = "", all[512] = "";
    size_t close_used = 0, all_used = 0, i;
    json_t *entry;
    json_array_foreach(catalogue, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        int near = distance(name, s->runbook) <= 3 || strstr(name, s->runbook) != NULL ||
                   strstr(s->runbook, name) != NULL;
        char *list = near ? close_names : all;
        size_t *used = near ? &close_used : &all_used;
        int n = snprintf(list + *used, 512 - *used, "%s%s", *used ? ", " : "", name);
        if (n > 0 && (size_t)n < 512 - *used)
            *used += (size_t)n;
    }
    if (close_used > 0)
        fail(s, "no runbook '%s' on %s; did you mean: %s", s->runbook, s->device, close_names);
    else if (all_used > 0)
        fail(s, "no runbook '%s' on %s; it has: %s", s->runbook, s->device, all);
    else
        fail(s, "no runbook '%s' on %s: it has no runbooks", s->runbook, s->device);
}

static void denied_done(struct session *s, struct sjob *job, int status)
{
    say(s, "%s", s->end_message);
    finish(s, TL_EXIT_DENIED);
}

/* A refusal by the relay's own rules: audited, then told (exit 77). */
static void deny(struct session *s, const char *needs, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void deny(struct session *s, const char *needs, const char *fmt, ...)
{
    char line[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    set_end(s, "denied", "permission denied: %s", line);
    json_t *details = json_pack("{s:s, s:s, s:s, s:s}", "command", "fix", "role", s->tech.role,
                                "needs", needs, "runbook", s->runbook);
    s->phase = PHASE_DONE; /* nothing else happens; the exec ends after the audit */
    record(s, NULL, "access.denied", details, denied_done);
}

/* fix: the runbook exists, the technician may run it, the arguments fit it. */
static int check_runbook(struct session *s, json_t *catalogue)
{
    json_t *found = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(catalogue, i,
                       entry) if (strcmp(json_string_value(json_object_get(entry, "name")),
                                         s->runbook) == 0) found = entry;
    if (found == NULL) {
        unknown_runbook(s, catalogue);
        return -1;
    }
    if (json_is_true(json_object_get(found, "privileged")) &&
        !tl_role_can(s->role, TL_CAP_FIX_PRIVILEGED)) {
        deny(s, tl_capability_name(TL_CAP_FIX_PRIVILEGED),
             "role %s may not run the privileged runbook '%s' (needs %s)", s->tech.role, s->runbook,
             tl_capability_name(TL_CAP_FIX_PRIVILEGED));
        return -1;
    }
    const char *min_role = json_string_value(json_object_get(found, "min_role"));
    if (role_rank(s->tech.role) < role_rank(min_role)) {
        deny(s, min_role, "runbook '%s' needs role %s or above; you are %s", s->runbook, min_role,
             s->tech.role);
        return -1;
    }
    json_t *params = json_object_get(found, "params");
    char names[512] = "";
    size_t used = 0;
    json_t *param;
    json_array_foreach(params, i, param)
    {
        int n = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                         json_string_value(json_object_get(param, "name")));
        if (n > 0 && (size_t)n < sizeof names - used)
            used += (size_t)n;
    }
    const char *name;
    json_t *value;
    json_object_foreach(s->runbook_args, name, value)
    {
        int known = 0;
        json_array_foreach(params, i, param) known |=
            strcmp(json_string_value(json_object_get(param, "name")), name) == 0;
        if (!known) {
            fail(s, "runbook '%s' has no parameter %s (it takes: %s)", s->runbook, name,
                 used ? names : "none");
            return -1;
        }
    }
    json_array_foreach(params, i, param)
    {
        const char *pname = json_string_value(json_object_get(param, "name"));
        if (json_is_true(json_object_get(param, "required")) &&
            json_object_get(s->runbook_args, pname) == NULL) {
            char description[1000];
            clean_text(description, sizeof description,
                       json_string_value(json_object_get(param, "description")));
            fail(s, "runbook '%s' needs %s=VALUE: %s", s->runbook, pname, description);
            return -1;
        }
    }
    return 0;
}

static void catalogue_answer(void *data, int status, json_t *result)
{
    struct session *s = data;
    s->request_id = 0;
    if (s->exec == NULL) {
        finish(s, 1);
        return;
    }
    if (status == TL_ECLOSED) {
        fail(s, "the machine went offline");
        return;
    }
    if (status != 0) {
        fail(s, "the machine did not send its runbooks: %s", tl_strerror(status));
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        char message[256];
        clean_text(message, sizeof message, json_string_value(json_object_get(result, "message")));
        fail(s, "the machine did not send its runbooks: %s", message);
        return;
    }
    json_t *catalogue = catalogue_from(result);
    if (catalogue == NULL) {
        fail(s, "the machine sent a malformed runbook catalogue");
        return;
    }
    if (s->kind == TL_SESSION_RUNBOOKS) {
        print_catalogue(s, catalogue);
        json_decref(catalogue);
        finish(s, 0);
        return;
    }
    int rc = check_runbook(s, catalogue);
    json_decref(catalogue);
    if (rc == 0)
        ask_consent(s);
}

static void request_catalogue(struct session *s)
{
    json_t *body = json_pack("{s:s}", "type", "runbooks.list");
    s->phase = PHASE_CATALOGUE;
    int rc = body ? tl_agent_request(s->agent, body, TL_SESSIONS_REQUEST_WAIT_MS, catalogue_answer,
                                     s, &s->request_id)
                  : TL_ENOMEM;
    json_decref(body);
    if (rc != 0)
        fail(s, "cannot ask %s for its runbooks: %s", s->device, tl_strerror(rc));
}

/* ---- flow: consent --------------------------------------------------------------------------- */

static void consent_answer(void *data, int status, json_t *result);

static void told_and_failed(struct session *s, struct sjob *job, int status)
{
    say(s, "%s", s->end_message);
    finish(s, 1);
}

/* Consent did not come: recorded, then told (exit 1). message is for the technician. */
static void consent_failed(struct session *s, const char *error, const char *message)
{
    json_t *details =
        json_pack("{s:s, s:s, s:s}", "scope", scope_of(s), "error", error, "message", message);
    set_end(s, "consent", "%s", message);
    s->phase = PHASE_DONE;
    record(s, "consent.denied", "consent.denied", details, told_and_failed);
}

static void asked_done(struct session *s, struct sjob *job, int status)
{
    if (status != 0) {
        fail(s, "cannot record the consent request: %s", tl_strerror(status));
        return;
    }
    if (s->exec == NULL) {
        /* The technician left before the question went out. */
        s->phase = PHASE_DONE;
        record(s, "consent.cancelled", "consent.cancel",
               json_pack("{s:s, s:s}", "scope", scope_of(s), "reason", "the technician left"),
               NULL);
        return;
    }
    if (s->agent == NULL) {
        consent_failed(s, "ECLOSED", "the machine went offline");
        return;
    }
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:[s], s:s, s:i}", "type", "session.request", "ticket",
                  s->ticket, "technician", s->tech.name, "role", s->tech.role, "scopes",
                  scope_of(s), "reason", s->reason, "duration_s", (json_int_t)s->duration_s);
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
    say(s, "waiting for the user's consent (%s) ...", scope_of(s));
}

static void ask_consent(struct session *s)
{
    s->phase = PHASE_ASK;
    json_t *details =
        json_pack("{s:s, s:[s], s:s, s:i}", "device", s->device, "scopes", scope_of(s), "reason",
                  s->reason, "duration_s", (json_int_t)s->duration_s);
    record(s, "consent.requested", "consent.request", details, asked_done);
}

static void open_channel(struct session *s);

static void granted_done(struct session *s, struct sjob *job, int status)
{
    if (status != 0) {
        fail(s, "cannot record the grant: %s", tl_strerror(status));
        return;
    }
    s->started = 1;
    char until[16] = "?";
    time_t seconds = (time_t)(s->expires_ms / 1000);
    struct tm utc;
    if (gmtime_r(&seconds, &utc) != NULL)
        strftime(until, sizeof until, "%H:%MZ", &utc);
    say(s, "granted %s until %s (by %s)", s->grant, until, s->granted_by);
    if (s->exec == NULL)
        s->left_by_technician = 1;
    else if (s->agent == NULL)
        set_end(s, "offline", "the machine went offline");
    if (s->exec == NULL || s->end_message[0] != '\0') {
        conclude(s);
        return;
    }
    open_channel(s);
}

/* A grant id names a file (recordings): short, and nothing but [A-Za-z0-9._-]. */
static int grant_id_valid(const char *id)
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

static void consent_answer(void *data, int status, json_t *result)
{
    struct session *s = data;
    uint32_t request_id = s->request_id;
    s->request_id = 0;
    if (status == TL_ETIMEOUT) {
        /* Our patience ran out before the agent's: withdraw the question. */
        json_t *cancel =
            json_pack("{s:s, s:I}", "type", "session.cancel", "request_id", (json_int_t)request_id);
        if (cancel != NULL && s->agent != NULL)
            tl_agent_notify(s->agent, cancel);
        json_decref(cancel);
        consent_failed(s, "ETIMEOUT", "nobody answered on the machine");
        return;
    }
    if (status != 0) {
        consent_failed(s, tl_err_name(status), "the machine went offline");
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        const char *error = json_string_value(json_object_get(result, "error"));
        char message[1100], line[1300];
        clean_text(message, sizeof message, json_string_value(json_object_get(result, "message")));
        int declined = error != NULL && strcmp(error, "EDENIED") == 0 &&
                       (message[0] == '\0' || strcmp(message, "the user declined") == 0);
        if (declined) {
            consent_failed(s, "EDENIED", "the user declined");
        } else if (s->kind == TL_SESSION_FIX && error != NULL &&
                   (strcmp(error, "EINVAL") == 0 || strcmp(error, "ENOTFOUND") == 0 ||
                    strcmp(error, "EDENIED") == 0)) {
            /* The machine checked the runbook and its values against its catalogue first. */
            snprintf(line, sizeof line,
                     "the machine refused runbook '%s': %s; the user was not asked", s->runbook,
                     message);
            consent_failed(s, error, line);
        } else if (error != NULL && strcmp(error, "ETIMEOUT") == 0) {
            consent_failed(s, "ETIMEOUT", "nobody answered on the machine");
        } else {
            char name[32];
            clean_text(name, sizeof name, error ? error : "?");
            snprintf(line, sizeof line, "the machine refused the request (%s): %s", name, message);
            consent_failed(s, name[0] ? name : "EPROTO", line);
        }
        return;
    }
    const char *grant = json_string_value(json_object_get(result, "grant"));
    json_t *expires = json_object_get(result, "expires_ms");
    const char *by = json_string_value(json_object_get(result, "by"));
    if (!grant_id_valid(grant) || !json_is_integer(expires) || json_integer_value(expires) <= 0 ||
        json_integer_value(expires) > EXPIRES_MS_MAX) {
        consent_failed(s, "EPROTO", "the machine answered with a malformed grant");
        return;
    }
    snprintf(s->grant, sizeof s->grant, "%s", grant);
    s->expires_ms = json_integer_value(expires);
    snprintf(s->granted_by, sizeof s->granted_by, "%s",
             by != NULL && (strcmp(by, "user") == 0 || strcmp(by, "policy") == 0 ||
                            strcmp(by, "existing") == 0)
                 ? by
                 : "?");
    char expires_text[32];
    iso_time(s->expires_ms, expires_text);
    s->phase = PHASE_GRANTED;
    struct sjob *job = sjob_new(s, NULL, granted_done);
    if (job == NULL) {
        fail(s, "out of memory");
        return;
    }
    sjob_record(job, "consent.granted", "consent.granted",
                json_pack("{s:s, s:[s], s:s, s:s}", "grant", s->grant, "scopes", scope_of(s),
                          "expires", expires_text, "by", s->granted_by));
    sjob_record(job, "session.started", "session.start", session_details(s));
    submit(s, job);
}

/* ---- flow: the channel ------------------------------------------------------------------------
 */

static void recording_open(struct session *s)
{
    char when[24];
    stamp(s->started_ms, when);
    snprintf(s->recording_name, sizeof s->recording_name, "%s-%s-%s-%" PRIu32 ".cast.gz", s->ticket,
             s->grant, when, ++s->sessions->recording_serial);
    snprintf(s->recording_path, sizeof s->recording_path, "%s/%s", s->sessions->recordings_dir,
             s->recording_name);
    const tl_exec_pty_t *pty = s->exec ? tl_exec_pty(s->exec) : NULL;
    char title[160];
    snprintf(title, sizeof title, "%s %s %s %s", s->ticket, s->tech.name,
             s->observe ? "observe" : "shell", s->grant);
    tl_recording_info_t info = {
        .cols = pty && pty->cols ? pty->cols : 80,
        .rows = pty && pty->rows ? pty->rows : 24,
        .term = pty && pty->term[0] ? pty->term : NULL,
        .title = title,
        .start_ms = s->started_ms,
    };
    int err = 0;
    s->recording = tl_recording_open(s->sessions->loop, s->recording_path, &info, &err);
    if (s->recording == NULL)
        set_end(s, "relay", "cannot record the session: %s", tl_strerror(err));
}

static void open_channel(struct session *s)
{
    tl_mux_t *mux = tl_agent_mux(s->agent);
    s->started_ms = tl_wall_ms();
    s->phase = PHASE_CHANNEL;
    if (s->kind == TL_SESSION_JOIN) {
        recording_open(s);
        if (s->recording == NULL) {
            conclude(s);
            return;
        }
    }
    json_t *params = json_pack("{s:s, s:s}", "grant", s->grant, "technician", s->tech.name);
    if (params == NULL) {
        set_end(s, "relay", "out of memory");
        conclude(s);
        return;
    }
    if (s->kind == TL_SESSION_RUN) {
        json_object_set(params, "argv", s->argv);
    } else if (s->kind == TL_SESSION_FIX) {
        json_object_set_new(params, "name", json_string(s->runbook));
        json_object_set(params, "args", s->runbook_args);
    } else if (s->kind == TL_SESSION_JOIN && !s->observe) {
        const tl_exec_pty_t *pty = tl_exec_pty(s->exec);
        unsigned cols = pty->cols >= 1 && pty->cols <= 1000 ? pty->cols : 80;
        unsigned rows = pty->rows >= 1 && pty->rows <= 1000 ? pty->rows : 24;
        json_object_set_new(params, "term",
                            json_string(pty->term[0] ? pty->term : "xterm-256color"));
        json_object_set_new(params, "cols", json_integer(cols));
        json_object_set_new(params, "rows", json_integer(rows));
    }
    int rc =
        mux ? tl_mux_open(mux, kind_name(s->kind, s->observe), params, &s->channel) : TL_ECLOSED;
    json_decref(params);
    if (rc != 0) {
        set_end(s, "relay", "cannot open the session on the machine: %s", tl_strerror(rc));
        conclude(s);
        return;
    }
    tl_mux_set_data(mux, s->channel, s);
    s->channel_state = CHANNEL_OPENING;
    s->hold_input = s->kind == TL_SESSION_JOIN && !s->observe &&
                    (tl_mux_features(mux) & TL_FEATURE_INPUT_ACK) != 0;
    tl_log_info("session opening tech=%s ticket=%s device=%s grant=%s type=%s", s->tech.name,
                s->ticket, s->device, s->grant, kind_name(s->kind, s->observe));
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
    set_end(s, "relay", "the machine did not end the session in time");
    conclude(s);
}

/* Asks the agent to end the channel (it stops the process); its CLOSE concludes. */
static void end_channel(struct session *s)
{
    if (s->channel_state != CHANNEL_OPENING && s->channel_state != CHANNEL_OPEN)
        return;
    tl_mux_t *mux = s->agent ? tl_agent_mux(s->agent) : NULL;
    if (mux == NULL || tl_mux_close(mux, s->channel, NULL) != 0) {
        s->channel_state = CHANNEL_GONE;
        if (mux != NULL)
            tl_mux_set_data(mux, s->channel, NULL);
        conclude(s);
        return;
    }
    s->channel_state = CHANNEL_CLOSING;
    uv_timer_start(&s->timer, on_close_deadline, TL_SESSIONS_CLOSE_WAIT_MS, 0);
}

static void send_resize(struct session *s)
{
    if (s->kind != TL_SESSION_JOIN || s->observe || s->channel_state != CHANNEL_OPEN ||
        s->exec == NULL || s->agent == NULL)
        return;
    const tl_exec_pty_t *pty = tl_exec_pty(s->exec);
    if (pty->cols < 1 || pty->cols > 1000 || pty->rows < 1 || pty->rows > 1000)
        return;
    json_t *body =
        json_pack("{s:s, s:I, s:i, s:i}", "type", "session.resize", "channel",
                  (json_int_t)s->agent_channel, "cols", (int)pty->cols, "rows", (int)pty->rows);
    if (body != NULL)
        tl_agent_notify(s->agent, body);
    json_decref(body);
}

void tl_sessions_channel_confirm(void *owner)
{
    struct session *s = owner;
    s->channel_state = CHANNEL_OPEN;
    tl_mux_peer_channel(tl_agent_mux(s->agent), s->channel, &s->agent_channel);
    tl_log_info("session started tech=%s ticket=%s device=%s grant=%s type=%s", s->tech.name,
                s->ticket, s->device, s->grant, kind_name(s->kind, s->observe));
    if (s->kind == TL_SESSION_JOIN && s->exec != NULL) {
        /* From here the agent's terminal is passed through as it is. */
        tl_exec_set_raw(s->exec);
        s->raw = 1;
        if (s->resize_pending)
            send_resize(s);
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
        end_channel(s);
}

void tl_sessions_channel_refuse(void *owner, uint32_t reason, tl_str_t message)
{
    struct session *s = owner;
    int was_closing = s->channel_state == CHANNEL_CLOSING;
    s->channel_state = CHANNEL_GONE;
    uv_timer_stop(&s->timer);
    if (!was_closing) {
        char text[1100];
        clean_line(text, sizeof text, message.ptr, message.len);
        set_end(s, "refused", "the machine refused the session: %s",
                text[0] ? text : tl_strerror(-(int)reason));
    }
    conclude(s);
}

static void capture(struct capture *c, const uint8_t *data, size_t len)
{
    if (c->hash == NULL && (c->hash = tl_sha256_new()) == NULL)
        return;
    tl_sha256_update(c->hash, data, len);
    c->total += len;
    size_t room = TL_SESSIONS_TRANSCRIPT_KEEP - c->kept_len;
    size_t take = len < room ? len : room;
    if (take == 0)
        return;
    if (c->kept_len + take > c->kept_alloc) {
        size_t alloc = c->kept_alloc ? c->kept_alloc : 16384;
        while (alloc < c->kept_len + take)
            alloc *= 2;
        if (alloc > TL_SESSIONS_TRANSCRIPT_KEEP)
            alloc = TL_SESSIONS_TRANSCRIPT_KEEP;
        uint8_t *grown = realloc(c->kept, alloc);
        if (grown == NULL)
            return;
        c->kept = grown;
        c->kept_alloc = alloc;
    }
    memcpy(c->kept + c->kept_len, data, take);
    c->kept_len += take;
}

static void diag_chunk_done(struct session *s, struct sjob *job, int status)
{
    if (status != 0) {
        if (s->diag_error == 0)
            s->diag_error = status;
        end_channel(s);
        return;
    }
    /* Written: the agent may send the next bytes. */
    if (s->channel_state == CHANNEL_OPEN && s->agent != NULL)
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, job->len);
}

static void diag_data(struct session *s, const uint8_t *data, size_t len)
{
    if (s->diag_error != 0) {
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, len);
        return;
    }
    if (s->diag_bytes + len > TL_SESSIONS_MAX_DIAG) {
        s->diag_error = TL_EFULL;
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, len);
        end_channel(s);
        return;
    }
    s->diag_bytes += len;
    struct sjob *job = sjob_new(s, work_diag_chunk, diag_chunk_done);
    if (job != NULL && (job->data = malloc(len)) == NULL) {
        sjob_free(job);
        job = NULL;
    }
    if (job == NULL) {
        s->diag_error = TL_ENOMEM;
        tl_mux_consumed(tl_agent_mux(s->agent), s->channel, len);
        end_channel(s);
        return;
    }
    memcpy(job->data, data, len);
    job->len = len;
    submit(s, job);
}

void tl_sessions_channel_data(void *owner, uint8_t stream, const uint8_t *data, size_t len)
{
    struct session *s = owner;
    tl_mux_t *mux = tl_agent_mux(s->agent);
    if (s->kind == TL_SESSION_DIAG) {
        diag_data(s, data, len);
        return;
    }
    if (s->kind == TL_SESSION_JOIN && s->recording != NULL)
        tl_recording_output(s->recording, data, len);
    else if (s->kind != TL_SESSION_JOIN)
        capture(stream == TL_STREAM_STDERR ? &s->err : &s->out, data, len);
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
    struct session *s = owner;
    if (s->input_blocked && s->exec != NULL) {
        s->input_blocked = 0;
        tl_exec_resume_input(s->exec);
    }
}

void tl_sessions_channel_input_ack(void *owner, uint32_t bytes, int hidden)
{
    struct session *s = owner;
    if (!s->hold_input || s->recording == NULL)
        return;
    /* The mux checked the agent acknowledges no more than was sent; only a hold that
     * failed (out of memory) leaves fewer bytes here, and those go unrecorded. */
    size_t held = tl_recording_input_held(s->recording);
    size_t settle = bytes < held ? bytes : held;
    if (settle > 0)
        tl_recording_input_settle(s->recording, settle, hidden);
    if (s->input_blocked && s->exec != NULL &&
        tl_recording_input_held(s->recording) < TL_RECORDING_MAX_HELD) {
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
    struct session *s = owner;
    s->channel_state = CHANNEL_GONE;
    uv_timer_stop(&s->timer);
    if (close->flags & (TL_CLOSE_HAS_EXIT_STATUS | TL_CLOSE_HAS_EXIT_SIGNAL))
        s->finished = 1;
    if (close->flags & TL_CLOSE_HAS_EXIT_SIGNAL) {
        clean_line(s->exit_signal, sizeof s->exit_signal, close->exit_signal.ptr,
                   close->exit_signal.len);
        if (s->exit_signal[0] == '\0')
            snprintf(s->exit_signal, sizeof s->exit_signal, "?");
    }
    s->exit_status = close->exit_status;
    conclude(s);
}

/* ---- the technician's side ---------------------------------------------------------------- */

static size_t on_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct session *s = data;
    if (s->kind == TL_SESSION_JOIN && s->observe) {
        /* Observers send nothing; Ctrl-C or Ctrl-D leaves. */
        if (memchr(bytes, 0x03, len) != NULL || memchr(bytes, 0x04, len) != NULL) {
            s->left_by_technician = 1;
            end_channel(s);
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
    if (written < len)
        s->input_blocked = 1; /* on_writable or the agent's input ack resumes */
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
    if (s->kind != TL_SESSION_JOIN || cols < 1 || cols > 1000 || rows < 1 || rows > 1000)
        return;
    if (s->recording != NULL)
        tl_recording_resize(s->recording, cols, rows);
    if (s->channel_state == CHANNEL_OPEN)
        send_resize(s);
    else
        s->resize_pending = 1;
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
    case PHASE_CONSENT: {
        /* Withdraw the question (docs/protocol.md §7.6), and say so on the record. */
        json_t *cancel = json_pack("{s:s, s:I}", "type", "session.cancel", "request_id",
                                   (json_int_t)s->request_id);
        if (s->agent != NULL) {
            if (cancel != NULL)
                tl_agent_notify(s->agent, cancel);
            tl_agent_request_cancel(s->agent, s->request_id);
        }
        json_decref(cancel);
        s->request_id = 0;
        s->phase = PHASE_DONE;
        record(s, "consent.cancelled", "consent.cancel",
               json_pack("{s:s, s:s}", "scope", scope_of(s), "reason", "the technician left"),
               NULL);
        break;
    }
    case PHASE_CHANNEL:
        end_channel(s);
        break;
    default:
        break; /* a job is in flight; its end sees the exec is gone */
    }
    maybe_release(s);
}

static const tl_exec_callbacks_t exec_callbacks = {
    .on_drain = on_drain,
    .on_abort = on_abort,
    .on_input = on_input,
    .on_input_eof = on_input_eof,
    .on_resize = on_resize,
};

/* ---- the end -----------------------------------------------------------------------------------
 */

static void final_done(struct session *s, struct sjob *job, int status)
{
    if (s->exec == NULL) {
        finish(s, 1);
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
        say(s, "cannot keep the session's record: %s", tl_strerror(status));
        code = 1;
    } else if (s->kind == TL_SESSION_DIAG && s->evidence_hash[0] != '\0') {
        if (s->json) {
            json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "ticket", s->ticket, "grant",
                                    s->grant, "kind", "diagnostics", "sha256", s->evidence_hash,
                                    "name", s->evidence_name, "size", (json_int_t)s->evidence_size);
            char *text = doc ? tl_text_json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            if (text != NULL)
                tl_exec_printf(s->exec, TL_EXEC_STDOUT, "%s\n", text);
            free(text);
            json_decref(doc);
        } else {
            tl_exec_printf(s->exec, TL_EXEC_STDOUT,
                           "evidence %s %s (%" PRIu64 " bytes) added to %s\n", s->evidence_hash,
                           s->evidence_name, s->evidence_size, s->ticket);
        }
        code = 0;
    } else if (s->end_message[0] != '\0') {
        say(s, "%s", s->end_message);
        code = 1;
    } else if (s->kind == TL_SESSION_DIAG) {
        if (s->diag_error == TL_EFULL)
            say(s, "the diagnostics report is larger than %u MiB; nothing was kept",
                TL_SESSIONS_MAX_DIAG >> 20);
        else if (s->diag_error != 0)
            say(s, "the diagnostics report could not be kept: %s", tl_strerror(s->diag_error));
        else if (s->finished && s->exit_signal[0] != '\0')
            say(s, "diagnostics stopped on the machine (signal %s)", s->exit_signal);
        else
            say(s, "the machine could not collect diagnostics (exit status %d)", s->exit_status);
        code = 1;
    } else if (s->finished && s->exit_signal[0] != '\0') {
        int number = signal_number(s->exit_signal);
        code = number > 0 ? 128 + number : 1;
    } else if (s->finished) {
        code = s->exit_status >= 0 && s->exit_status <= 255 ? s->exit_status : 1;
    } else if (s->left_by_technician) {
        code = 0; /* an observer who pressed Ctrl-C */
    } else {
        say(s, "the machine ended the session without an exit status");
        code = 1;
    }
    if (s->kind == TL_SESSION_JOIN && s->recording_status != 0) {
        say(s, "the session's recording could not be stored: %s", tl_strerror(s->recording_status));
        code = 1;
    }
    finish(s, code);
}

static void recording_done(void *data, int status, const char *sha256, uint64_t size)
{
    struct session *s = data;
    s->recording_pending = 0;
    s->recording_status = status;
    struct sjob *job = sjob_new(s, status == 0 ? work_recording : NULL, final_done);
    if (job == NULL) {
        s->recording_status = TL_ENOMEM;
        final_done(s, NULL, TL_ENOMEM);
        return;
    }
    if (status == 0) {
        snprintf(s->recording_hash, sizeof s->recording_hash, "%s", sha256);
        s->recording_size = size;
    } else {
        tl_log_error("recording failed ticket=%s grant=%s reason=%s", s->ticket, s->grant,
                     tl_strerror(status));
    }
    json_t *details = end_details(s);
    if (status == 0 && details != NULL)
        json_object_set_new(details, "recording", json_string(s->recording_hash));
    sjob_record(job, end_event(s), "session.end", details);
    submit(s, job);
}

/*
 * The channel is gone (or never opened): keep what the session produced and
 * record its end, then tell the technician (final_done).
 */
static void conclude(struct session *s)
{
    if (s->phase == PHASE_FINAL || s->phase == PHASE_DONE)
        return;
    s->phase = PHASE_FINAL;
    s->ended_ms = tl_wall_ms();
    if (!s->started) {
        finish(s, 1);
        return;
    }
    if (s->kind == TL_SESSION_JOIN && s->recording != NULL) {
        tl_recording_t *recording = s->recording;
        s->recording = NULL;
        s->recording_pending = 1;
        tl_recording_finish(recording, recording_done, s);
        return;
    }
    struct sjob *job;
    if (s->kind == TL_SESSION_DIAG) {
        job = sjob_new(s, work_diag_final, final_done);
        if (job != NULL)
            job->keep = s->diag_error == 0 && s->end_message[0] == '\0' && s->finished &&
                        s->exit_signal[0] == '\0' && s->exit_status == 0;
    } else if ((s->kind == TL_SESSION_RUN || s->kind == TL_SESSION_FIX) &&
               s->channel_state == CHANNEL_GONE && s->started_ms > 0) {
        /* The evidence is named on the worker, once its hash is known (name_evidence). */
        job = sjob_new(s, work_transcript, final_done);
    } else {
        job = sjob_new(s, NULL, final_done);
    }
    if (job == NULL) {
        fail(s, "out of memory");
        return;
    }
    sjob_record(job, end_event(s), "session.end", end_details(s));
    submit(s, job);
}

/* ---- from the agent: the end of a grant, the end of the connection -------------------------- */

void tl_sessions_agent_closed(tl_sessions_t *sessions, tl_agent_link_t *agent)
{
    /* conclude() may free nothing here (jobs are submitted), but take next first anyway. */
    for (struct session *s = sessions->head, *next; s != NULL; s = next) {
        next = s->next;
        if (s->agent != agent)
            continue;
        s->agent = NULL;
        if (s->phase >= PHASE_FINAL)
            continue; /* it ended already; the record is being written */
        set_end(s, "offline", "the machine went offline");
        if (s->phase == PHASE_CHANNEL) {
            /* The mux goes with the connection: the channel is gone without callbacks. */
            s->channel_state = CHANNEL_GONE;
            uv_timer_stop(&s->timer);
            conclude(s);
        }
    }
}

static int work_grant_ended(struct sjob *job, tl_job_ctx_t *ctx)
{
    /* Only a ticket of the agent's own device gets the event. */
    json_t *ticket = NULL;
    int rc = tl_store_ticket_fields(ctx->store, job->ticket_id, &ticket);
    if (rc != 0)
        return rc;
    int64_t device = 0;
    tl_store_parse_id(json_string_value(json_object_get(ticket, "device")), 'D', &device);
    json_decref(ticket);
    if (device != job->agent_device)
        return TL_ENOTFOUND;
    char actor[96];
    snprintf(actor, sizeof actor, "agent:D-%" PRId64, job->agent_device);
    return write_records(job, ctx, actor, job->ticket_id, job->ticket);
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
    if (status != 0)
        tl_log_warn("grant end not recorded ticket=%s device=D-%" PRId64 " reason=%s", job->ticket,
                    job->agent_device, tl_err_name(status));
    sjob_free(job);
}

void tl_sessions_grant_ended(tl_sessions_t *sessions, tl_agent_link_t *agent, json_t *body)
{
    json_t *grant_value = json_object_get(body, "grant");
    const char *grant = json_string_value(grant_value);
    const char *ticket = json_string_value(json_object_get(body, "ticket"));
    const char *reason_text = json_string_value(json_object_get(body, "reason"));
    int64_t ticket_id = 0;
    if (!grant_id_valid(grant) || ticket == NULL ||
        tl_store_parse_id(ticket, 'T', &ticket_id) != 0) {
        tl_log_warn("malformed session.ended device=D-%" PRId64, tl_agent_device(agent));
        return;
    }
    char reason[TL_SESSIONS_MAX_REASON + 1];
    clean_text(reason, sizeof reason, reason_text ? reason_text : "the grant ended");
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
        set_end(s, "machine", "session ended on the machine: %s", reason);
        if (s->phase == PHASE_CHANNEL)
            end_channel(s);
    }
    if (sessions->grant_jobs >= GRANT_JOBS_MAX) {
        tl_log_warn("grant end not recorded, too many at once device=D-%" PRId64,
                    tl_agent_device(agent));
        return;
    }
    struct sjob *job = calloc(1, sizeof *job);
    if (job == NULL || (job->records = json_array()) == NULL) {
        free(job);
        return;
    }
    job->job.run = grant_job_run;
    job->job.done = grant_job_done;
    job->sessions = sessions;
    job->agent_device = tl_agent_device(agent);
    job->ticket_id = ticket_id;
    snprintf(job->ticket, sizeof job->ticket, "T-%" PRId64, ticket_id);
    sjob_record(job, "grant.ended", "grant.end",
                json_pack("{s:s, s:s}", "grant", grant, "reason", reason));
    sessions->grant_jobs++;
    tl_worker_submit(sessions->worker, &job->job);
}

/* ---- start --------------------------------------------------------------------------------------
 */

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

/* Copies the request's words; TL_EINVAL (usage) for text that is not UTF-8. */
static int take_request(struct session *s, const tl_session_request_t *request)
{
    s->kind = request->kind;
    s->observe = request->observe;
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
    if (s->reason[0] == '\0') {
        /* The user sees the reason: say what is asked for. */
        if (s->kind == TL_SESSION_RUN) {
            int used = snprintf(s->reason, sizeof s->reason, "run %s:", s->ticket);
            size_t i;
            json_t *word;
            json_array_foreach(s->argv, i, word)
            {
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
            snprintf(s->reason, sizeof s->reason, "%s %s", s->observe ? "observe" : "join",
                     s->ticket);
        } else {
            snprintf(s->reason, sizeof s->reason, "diag %s", s->ticket);
        }
    }
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
    tl_exec_set_callbacks(exec, &exec_callbacks, s);
    tl_log_info("session requested tech=%s ticket=%s type=%s", s->tech.name, s->ticket,
                kind_name(s->kind, s->observe));
    struct sjob *job = sjob_new(s, work_lookup, lookup_done);
    if (job == NULL) {
        fail(s, "out of memory");
        return;
    }
    submit(s, job);
}

/* ---- the module
 * ------------------------------------------------------------------------------------ */

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
    int n = snprintf(sessions->recordings_dir, sizeof sessions->recordings_dir, "%s/%s", data_dir,
                     RECORDINGS_DIR);
    if (n < 0 || (size_t)n >= sizeof sessions->recordings_dir) {
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
