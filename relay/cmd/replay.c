/*
 * replay SESSION: a session's terminal recording played back to the caller's terminal, with its
 * timing (docs/technicians.md "Replaying a session", docs/audit-format.md §21). The recording is
 * evidence named by the SHA-256 its audit entries give (session.end's "recording",
 * session.recorded's "sha256"); it is read on the storage worker, never on the loop, in four
 * phases of jobs:
 *
 *   find    the session's entries in the audit log (by its grant): its ticket, the recording's
 *           hash, and the consent decisions and grant ends that become markers;
 *   scan    the recording read through once, a step per job: its SHA-256 compared with the
 *           entry's, its markers numbered (for --from), --search's matches found;
 *   record  session.replay in the audit log, which must hold it before anything is shown
 *           (fail closed); a refusal (a recording that does not match) is recorded too;
 *   fill    the recording read again, a batch of events per job, for the loop to play: each
 *           event waits its gap (capped by --idle-limit, divided by --speed) on a libuv timer,
 *           and a batch is read ahead while the one before plays. Memory is bounded by two
 *           batches, whatever the recording's length.
 *
 * What the recording holds is the session's own terminal output: replaying it to the caller's
 * terminal is the point, so it passes through raw. Markers and everything else the relay adds
 * are escaped.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/buf.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/cmd/show.h"
#include "relay/store/audit_payloads.h"
#include "relay/store/audit_query.h"
#include "relay/store/datadir.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <zlib.h>

/* Longest line of a recording (an event whose text is escaped JSON). */
#define LINE_MAX_BYTES (4u * 1024u * 1024u)
#define IO_BYTES (64u * 1024u)
/* Stored bytes one scan job reads before it yields the worker. */
#define SCAN_STEP (8u * 1024u * 1024u)
/* One batch for the loop: at most so many events, or so many bytes of their text. */
#define BATCH_EVENTS 1024
#define BATCH_BYTES (256u * 1024u)
/* Markers numbered for --from, and matches --search lists: past these, not kept. */
#define MARKERS_MAX 10000
#define MATCHES_MAX 1000
#define SEARCH_MAX 256
#define CONTEXT_BYTES 48

enum phase { FIND, SCAN, RECORD, FILL };
enum mode { PLAY, SEARCH, CAST };

struct marker {
    double time; /* seconds since the recording started */
    char *text;  /* as the recording or the audit log has it: escaped when shown */
    int from_log;
};

struct match {
    double time;
    char context[CONTEXT_BYTES * 6 + 8]; /* escaped */
};

/* The recording read on the worker: stored bytes in, asciicast lines out. */
struct cast_in {
    tl_evidence_reader_t *reader;
    tl_sha256_t *sha; /* of the stored bytes, as read */
    z_stream gz;
    int gz_ready, gz_end;
    int stored_end;    /* the evidence reader has nothing more */
    int damaged;       /* the stored item is not what its name says */
    int unreadable;    /* ... and cannot even be read whole */
    char problem[160]; /* how */
    uint8_t raw[IO_BYTES];
    uint8_t text[IO_BYTES];
    size_t text_len, text_pos;
    tl_buf_t *line;
    uint64_t stored_bytes;
};

struct event {
    double time;
    size_t offset, len; /* in the batch's bytes */
    char type;          /* 'o' output, 'm' a marker (already formatted) */
};

struct batch {
    struct event *events;
    size_t count, capacity, played;
    tl_buf_t *bytes;
    int last;
};

struct replay {
    tl_job_t job; /* first: the job is the replay */
    struct cmd *cmd;
    enum phase phase, ran; /* the next job's phase; the phase of the job that ran */
    enum mode mode;
    int in_flight, timer_ready, timer_armed, waiting_batch, delay_served, gone;
    uv_timer_t timer;
    /* find */
    char ticket[32], recording[TL_SHA256_HEX_LEN], actual[TL_SHA256_HEX_LEN];
    json_t *entries;
    struct marker *log_markers; /* from the audit log, in time order */
    size_t log_marker_count;
    /* scan */
    struct cast_in *in;
    int header_seen;
    int64_t started_ms; /* the header's timestamp */
    double duration;
    uint64_t events, bad_lines;
    struct marker *markers; /* every marker, numbered from 1 in the order they play */
    size_t marker_count, log_next;
    uint64_t marker_serial;
    struct match *matches;
    size_t match_count;
    uint64_t matches_more;
    tl_buf_t *window; /* --search: the last bytes of output, for matches across events */
    int refused_mismatch;
    uint64_t from_index; /* 0: from the start */
    /* fill */
    struct batch *current, *filling, *ready;
    int started; /* fill: the --from marker was reached */
    double prev_time, owed_ms;
    int have_prev;
    /* what a job tells the loop */
    char *err;
    size_t err_len;
    int exit_status, finished;
};

/* ---- arguments ------------------------------------------------------------------------------ */

static int kind_session(const char *word, void *out, const char **problem)
{
    (void)problem;
    size_t len = strlen(word);
    if (len == 0 || len > 64)
        return TL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = word[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return TL_EINVAL;
    }
    if (out != NULL)
        *(const char **)out = word;
    return 0;
}

/* A decimal number in (0, max]: no sign, no exponent, no nan. */
static int positive_number(const char *word, double max, double *out)
{
    size_t len = strlen(word);
    if (len == 0 || len > 16 || strspn(word, "0123456789.") != len || word[0] == '.')
        return TL_EINVAL;
    char *end = NULL;
    double value = strtod(word, &end);
    if (end == NULL || *end != '\0' || !isfinite(value) || value <= 0 || value > max)
        return TL_EINVAL;
    *out = value;
    return 0;
}

static int kind_speed(const char *word, void *out, const char **problem)
{
    (void)problem;
    double value;
    int rc = positive_number(word, 100.0, &value);
    if (rc == 0 && out != NULL)
        *(double *)out = value;
    return rc;
}

static int kind_idle(const char *word, void *out, const char **problem)
{
    (void)problem;
    double value;
    int rc = positive_number(word, 86400.0, &value);
    if (rc == 0 && out != NULL)
        *(double *)out = value;
    return rc;
}

static int replay_prepare(struct cmd *cmd)
{
    int modes = (cmd->replay_search != NULL) + cmd->replay_cast;
    if (modes > 1) {
        cmd->usage_error = "--search and --cast: one or the other";
        return TL_EINVAL;
    }
    if (cmd->replay_search != NULL &&
        (cmd->replay_search[0] == '\0' || strlen(cmd->replay_search) > SEARCH_MAX)) {
        cmd->usage_error = "--search wants 1 to 256 bytes of text";
        return TL_EINVAL;
    }
    if (cmd->replay_from != NULL &&
        (cmd->replay_from[0] == '\0' || strlen(cmd->replay_from) > SEARCH_MAX)) {
        cmd->usage_error = "--from wants a marker's number or 1 to 256 bytes of its text";
        return TL_EINVAL;
    }
    if (cmd->json && cmd->replay_search == NULL) {
        cmd->usage_error = "--json goes with --search (a replay is a terminal's bytes)";
        return TL_EINVAL;
    }
    if (cmd->replay_speed == 0)
        cmd->replay_speed = 1.0;
    return 0;
}

/* ---- the recording, read on the worker ------------------------------------------------------ */

static void cast_in_free(struct cast_in *in)
{
    if (in == NULL)
        return;
    tl_evidence_close(in->reader);
    tl_sha256_free(in->sha);
    if (in->gz_ready)
        inflateEnd(&in->gz);
    tl_buf_free(in->line);
    free(in);
}

static int cast_in_open(tl_job_ctx_t *ctx, const char *hash, struct cast_in **out)
{
    struct cast_in *in = calloc(1, sizeof *in);
    int rc = TL_ENOMEM;
    if (in == NULL)
        goto out;
    if ((in->sha = tl_sha256_new()) == NULL || (in->line = tl_buf_new(LINE_MAX_BYTES)) == NULL)
        goto out;
    if (inflateInit2(&in->gz, 16 + MAX_WBITS) != Z_OK)
        goto out;
    in->gz_ready = 1;
    rc = tl_evidence_open(ctx->evidence, hash, &in->reader);
    if (rc != 0)
        goto out;
    /* Every byte is handed out, so a mismatch can name the hash of what is stored; whether it
     * may be played is decided after the scan. */
    tl_evidence_reader_hand_out_damaged(in->reader);
    *out = in;
    in = NULL;
out:
    cast_in_free(in);
    return rc;
}

static void cast_in_damaged(struct cast_in *in, int unreadable, const char *why)
{
    if (!in->damaged)
        snprintf(in->problem, sizeof in->problem, "%s", why);
    in->damaged = 1;
    in->unreadable |= unreadable;
}

static int cast_in_fill(struct cast_in *in)
{
    size_t got = 0;
    int rc = tl_evidence_read(in->reader, in->raw, sizeof in->raw, &got);
    if (rc == TL_EDAMAGED) {
        const char *why = tl_evidence_reader_problem(in->reader);
        /* The content read whole but is not what its name says; anything else is unreadable. */
        cast_in_damaged(in, strcmp(why, "content does not match its name") != 0, why);
        in->stored_end = 1;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (got == 0) {
        in->stored_end = 1;
        return 0;
    }
    in->stored_bytes += got;
    if (tl_sha256_update(in->sha, in->raw, got) < 0)
        return TL_ENOMEM;
    in->gz.next_in = in->raw;
    in->gz.avail_in = (uInt)got;
    return 0;
}

/* The next line (without its line feed) in *line: 1, 0 at the end, or a negative code. */
static int cast_in_line(struct cast_in *in, const uint8_t **line, size_t *len)
{
    tl_buf_reset(in->line);
    for (;;) {
        if (in->text_pos < in->text_len) {
            const uint8_t *start = in->text + in->text_pos;
            const uint8_t *feed = memchr(start, '\n', in->text_len - in->text_pos);
            size_t take = feed != NULL ? (size_t)(feed - start) : in->text_len - in->text_pos;
            if (tl_buf_put(in->line, start, take) != 0) {
                cast_in_damaged(in, 1, "a line longer than 4 MiB");
                return 0;
            }
            in->text_pos += take + (feed != NULL);
            if (feed != NULL)
                goto line;
            continue;
        }
        if (in->gz_end || in->unreadable)
            break;
        if (in->gz.avail_in == 0) {
            if (in->stored_end) {
                cast_in_damaged(in, 1, "the gzip stream ends early");
                break;
            }
            int rc = cast_in_fill(in);
            if (rc != 0)
                return rc;
            continue;
        }
        in->gz.next_out = in->text;
        in->gz.avail_out = sizeof in->text;
        int zrc = inflate(&in->gz, Z_NO_FLUSH);
        in->text_len = sizeof in->text - in->gz.avail_out;
        in->text_pos = 0;
        if (zrc == Z_STREAM_END)
            in->gz_end = 1;
        else if (zrc == Z_MEM_ERROR)
            return TL_ENOMEM;
        else if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            cast_in_damaged(in, 1, in->gz.msg != NULL ? in->gz.msg : "the gzip stream is damaged");
    }
    if (tl_buf_len(in->line) == 0)
        return 0;
line:
    *line = tl_buf_data(in->line);
    *len = tl_buf_len(in->line);
    return 1;
}

/* After the last line: the rest of the stored bytes, for their hash. */
static int cast_in_drain(struct cast_in *in)
{
    while (!in->stored_end) {
        in->gz.avail_in = 0;
        int rc = cast_in_fill(in);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One event line: 1 and its parts, or 0 for a line that is not one. */
static int parse_event(const uint8_t *line, size_t len, json_t **doc, double *time, char *type,
                       const char **text, size_t *text_len)
{
    *doc = json_loadb((const char *)line, len, 0, NULL);
    json_t *t = json_array_get(*doc, 0), *k = json_array_get(*doc, 1), *x = json_array_get(*doc, 2);
    if (!json_is_array(*doc) || json_array_size(*doc) != 3 || !json_is_number(t) ||
        !json_is_string(k) || json_string_length(k) != 1 || !json_is_string(x))
        return 0;
    *time = json_number_value(t);
    if (!isfinite(*time) || *time < 0)
        return 0;
    *type = json_string_value(k)[0];
    *text = json_string_value(x);
    *text_len = json_string_length(x);
    return 1;
}

/* ---- find ----------------------------------------------------------------------------------- */

static int64_t utc_ms(const char *text)
{
    struct tm tm = {0};
    int millis = 0, used = 0;
    if (text == NULL || sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    if (text[used] == '.')
        sscanf(text + used + 1, "%3d", &millis);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t seconds = timegm(&tm);
    return seconds < 0 ? -1 : (int64_t)seconds * 1000 + millis;
}

static int is_marker_action(const char *action)
{
    return action != NULL &&
           (strncmp(action, "consent.", 8) == 0 || strncmp(action, "grant.", 6) == 0);
}

static int work_find(struct replay *r, tl_job_ctx_t *ctx, FILE *err)
{
    struct cmd *cmd = r->cmd;
    char log_path[4096];
    tl_audit_search_report_t report;
    tl_audit_query_t query = {.session = cmd->replay_session, .limit = TL_AUDIT_SEARCH_LIMIT_MAX};
    int rc = tl_datadir_path(cmd->ctx->data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc == 0)
        rc = tl_audit_search(log_path, &query, &r->entries, &report);
    if (rc != 0) {
        fprintf(err, "tierline: the audit log cannot be searched: %s\n", tl_strerror(rc));
        return rc;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(r->entries, i, entry) {
        const char *action = json_string_value(json_object_get(entry, "action"));
        const char *subject = json_string_value(json_object_get(entry, "subject"));
        json_t *details = json_object_get(entry, "details");
        if (action == NULL)
            continue;
        if (subject != NULL && strncmp(subject, "T-", 2) == 0 && r->ticket[0] == '\0')
            snprintf(r->ticket, sizeof r->ticket, "%s", subject);
        const char *hash = NULL;
        if (strcmp(action, "session.end") == 0)
            hash = json_string_value(json_object_get(details, "recording"));
        else if (strcmp(action, "session.recorded") == 0)
            hash = json_string_value(json_object_get(details, "sha256"));
        if (hash != NULL && tl_sha256_hex_valid(hash) == 1)
            snprintf(r->recording, sizeof r->recording, "%s", hash);
    }
    if (json_array_size(r->entries) == 0 || r->ticket[0] == '\0') {
        fprintf(err,
                "tierline: no session %s in the audit log (audit search --ticket T-N lists "
                "a ticket's sessions)\n",
                cmd->replay_session);
        cmd->refused = 1;
        return TL_ENOTFOUND;
    }
    const char *problem = NULL;
    if (tl__kind_ticket(r->ticket, &cmd->ticket, &problem) != 0)
        return TL_EINVAL;
    rc = tl__cmd_ticket_access(cmd, ctx);
    if (rc == TL_ENOTFOUND) {
        fprintf(err, "tierline: no session %s in the audit log\n", cmd->replay_session);
        return rc;
    }
    if (rc != 0)
        return rc;
    if (r->recording[0] == '\0') {
        fprintf(err,
                "tierline: session %s on %s has no recording: only joined sessions (a shell, "
                "or observing one) are recorded; `evidence %s` lists what it kept\n",
                cmd->replay_session, r->ticket, r->ticket);
        cmd->refused = 1;
        return TL_ENOTFOUND;
    }
    return 0;
}

/* The audit log's consent decisions and grant ends, as markers, once the start is known. */
static int log_markers_make(struct replay *r)
{
    /* The header's timestamp is in whole seconds: session.start's time, to the millisecond, is
     * the better zero (the recording opens as the session starts). */
    size_t i;
    json_t *entry;
    json_array_foreach(r->entries, i, entry) {
        const char *action = json_string_value(json_object_get(entry, "action"));
        int64_t when = utc_ms(json_string_value(json_object_get(entry, "time")));
        if (action != NULL && strcmp(action, "session.start") == 0 && when >= r->started_ms &&
            when < r->started_ms + 1000) {
            r->started_ms = when;
            break;
        }
    }
    size_t count = json_array_size(r->entries);
    r->log_markers = calloc(count > 0 ? count : 1, sizeof *r->log_markers);
    if (r->log_markers == NULL)
        return TL_ENOMEM;
    json_array_foreach(r->entries, i, entry) {
        const char *action = json_string_value(json_object_get(entry, "action"));
        if (!is_marker_action(action))
            continue;
        int64_t when = utc_ms(json_string_value(json_object_get(entry, "time")));
        double time = when < 0 || when < r->started_ms ? 0 : (double)(when - r->started_ms) / 1000;
        const char *actor = json_string_value(json_object_get(entry, "actor"));
        char text[512];
        snprintf(text, sizeof text, "audit: %s by %s (seq %" JSON_INTEGER_FORMAT ")", action,
                 actor != NULL ? actor : "?", json_integer_value(json_object_get(entry, "seq")));
        struct marker *m = &r->log_markers[r->log_marker_count];
        if ((m->text = strdup(text)) == NULL)
            return TL_ENOMEM;
        m->time = time;
        m->from_log = 1;
        r->log_marker_count++;
    }
    return 0;
}

/* ---- scan ----------------------------------------------------------------------------------- */

static void add_marker(struct replay *r, double time, const char *text, int from_log)
{
    r->marker_serial++;
    if (r->marker_count >= MARKERS_MAX)
        return;
    char *copy = strdup(text);
    if (copy == NULL)
        return;
    r->markers[r->marker_count++] =
        (struct marker){.time = time, .text = copy, .from_log = from_log};
}

static void log_markers_before(struct replay *r, double time, int all)
{
    while (r->log_next < r->log_marker_count && (all || r->log_markers[r->log_next].time < time)) {
        struct marker *m = &r->log_markers[r->log_next++];
        add_marker(r, all && m->time > r->duration ? r->duration : m->time, m->text, 1);
    }
}

static void search_output(struct replay *r, double time, const char *text, size_t len)
{
    const char *needle = r->cmd->replay_search;
    size_t needle_len = strlen(needle), kept = tl_buf_len(r->window);
    if (tl_buf_put(r->window, text, len) != 0)
        return;
    const uint8_t *hay = tl_buf_data(r->window);
    size_t hay_len = tl_buf_len(r->window);
    for (size_t at = 0; at + needle_len <= hay_len; at++) {
        const uint8_t *found = memmem(hay + at, hay_len - at, needle, needle_len);
        if (found == NULL)
            break;
        at = (size_t)(found - hay);
        if (at + needle_len <= kept)
            continue; /* found in the bytes before, already */
        if (r->match_count >= MATCHES_MAX) {
            r->matches_more++;
            continue;
        }
        struct match *m = &r->matches[r->match_count++];
        m->time = time;
        size_t from = at > CONTEXT_BYTES / 2 ? at - CONTEXT_BYTES / 2 : 0;
        size_t take = hay_len - from < CONTEXT_BYTES ? hay_len - from : CONTEXT_BYTES;
        char raw[CONTEXT_BYTES + 1];
        memcpy(raw, hay + from, take);
        raw[take] = '\0';
        tl_text_clip(m->context, sizeof m->context, raw, 0, TL_TEXT_LINE);
    }
    /* Keep what a match could start in. */
    size_t keep = needle_len - 1;
    if (hay_len > keep)
        tl_buf_consume(r->window, hay_len - keep);
}

static int work_scan(struct replay *r, tl_job_ctx_t *ctx, FILE *err)
{
    struct cmd *cmd = r->cmd;
    int rc = 0;
    if (r->in == NULL) {
        rc = cast_in_open(ctx, r->recording, &r->in);
        if (rc == TL_ENOTFOUND) {
            json_t *tombstone = NULL;
            char log_path[4096];
            if (tl_datadir_path(cmd->ctx->data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path) ==
                0)
                tl_audit_payload_tombstone(log_path, r->ticket, r->recording, &tombstone);
            json_t *details = json_object_get(tombstone, "details");
            json_t *policy = json_object_get(details, "policy");
            if (tombstone != NULL)
                fprintf(err,
                        "tierline: the recording of session %s (sha256 %s) was pruned by "
                        "retention on %s (policy: %s kept %" JSON_INTEGER_FORMAT
                        " days, from %s; tombstone: audit entry %" JSON_INTEGER_FORMAT
                        ", seq %" JSON_INTEGER_FORMAT "): nothing to play\n",
                        cmd->replay_session, r->recording, tl__cmd_member(details, "pruned"),
                        tl__cmd_member(policy, "class"),
                        json_integer_value(json_object_get(policy, "days")),
                        tl__cmd_member(policy, "file"),
                        json_integer_value(json_object_get(tombstone, "index")),
                        json_integer_value(json_object_get(tombstone, "seq")));
            else
                fprintf(err,
                        "tierline: the recording of session %s (sha256 %s) is missing from the "
                        "evidence store, and no tombstone says it was pruned: nothing was "
                        "played; `audit verify` reports it\n",
                        cmd->replay_session, r->recording);
            cmd->refused = 1;
            r->refused_mismatch = 1;
            snprintf(r->actual, sizeof r->actual, "%s", tombstone != NULL ? "pruned" : "missing");
            json_decref(tombstone);
            r->phase = RECORD;
            return 0;
        }
        if (rc != 0)
            return rc;
        r->markers = calloc(MARKERS_MAX, sizeof *r->markers);
        if (r->markers == NULL)
            return TL_ENOMEM;
        if (cmd->replay_search != NULL &&
            ((r->matches = calloc(MATCHES_MAX, sizeof *r->matches)) == NULL ||
             (r->window = tl_buf_new(LINE_MAX_BYTES + SEARCH_MAX)) == NULL))
            return TL_ENOMEM;
    }
    struct cast_in *in = r->in;
    uint64_t until = in->stored_bytes + SCAN_STEP;
    const uint8_t *line;
    size_t len;
    while (in->stored_bytes < until && (rc = cast_in_line(in, &line, &len)) == 1) {
        json_t *doc = NULL;
        if (!r->header_seen) {
            r->header_seen = 1;
            doc = json_loadb((const char *)line, len, 0, NULL);
            json_t *stamp = json_object_get(doc, "timestamp");
            if (json_integer_value(json_object_get(doc, "version")) != 2) {
                cast_in_damaged(in, 1, "not an asciicast v2 recording");
                json_decref(doc);
                break;
            }
            r->started_ms = (int64_t)(json_number_value(stamp) * 1000);
            json_decref(doc);
            if ((rc = log_markers_make(r)) != 0)
                return rc;
            continue;
        }
        double time;
        char type;
        const char *text;
        size_t text_len;
        if (!parse_event(line, len, &doc, &time, &type, &text, &text_len)) {
            r->bad_lines++;
            json_decref(doc);
            continue;
        }
        r->events++;
        if (time > r->duration)
            r->duration = time;
        log_markers_before(r, time, 0);
        if (type == 'm')
            add_marker(r, time, text, 0);
        else if (type == 'o' && r->window != NULL)
            search_output(r, time, text, text_len);
        json_decref(doc);
    }
    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0; /* more next job */
    rc = cast_in_drain(in);
    if (rc != 0)
        return rc;
    log_markers_before(r, 0, 1);
    if (!r->header_seen)
        cast_in_damaged(in, 1, "an empty recording");
    if (!in->unreadable) {
        rc = tl_sha256_final(in->sha, r->actual);
        if (rc < 0)
            return rc;
    } else {
        snprintf(r->actual, sizeof r->actual, "unreadable");
    }
    if (in->damaged || strcmp(r->actual, r->recording) != 0) {
        if (!cmd->replay_force) {
            fprintf(err,
                    "tierline: the recording of session %s does not match its audit entry: the "
                    "entry says sha256 %s, the stored bytes %s %s (%s); not played (replay %s "
                    "--force plays it anyway, on the record)\n",
                    cmd->replay_session, r->recording, in->unreadable ? "are" : "hash to",
                    r->actual, in->problem, cmd->replay_session);
            cmd->refused = 1;
            r->refused_mismatch = 1;
        } else {
            fprintf(err,
                    "tierline: WARNING: the recording of session %s does not match its audit "
                    "entry: the entry says sha256 %s, the stored bytes %s %s (%s); played anyway "
                    "(--force), and the audit log says so\n",
                    cmd->replay_session, r->recording, in->unreadable ? "are" : "hash to",
                    r->actual, in->problem);
        }
    }
    cast_in_free(in);
    r->in = NULL;
    r->phase = RECORD;
    if (cmd->refused || cmd->replay_from == NULL)
        return 0;
    /* --from: a marker's number, or the first whose text holds the words. */
    const char *from = cmd->replay_from;
    if (strspn(from, "0123456789") == strlen(from) && strlen(from) < 10) {
        uint64_t index = strtoull(from, NULL, 10);
        if (index >= 1 && index <= r->marker_count)
            r->from_index = index;
    } else {
        for (size_t i = 0; i < r->marker_count && r->from_index == 0; i++)
            if (strstr(r->markers[i].text, from) != NULL)
                r->from_index = i + 1;
    }
    if (r->from_index == 0) {
        char shown[SEARCH_MAX * 6 + 8];
        tl_text_clip(shown, sizeof shown, from, 0, TL_TEXT_LINE);
        fprintf(err, "tierline: --from: no marker '%s' in the recording of %s; its markers:\n",
                shown, cmd->replay_session);
        for (size_t i = 0; i < r->marker_count && i < 50; i++) {
            char text[1024];
            tl_text_clip(text, sizeof text, r->markers[i].text, 0, TL_TEXT_LINE);
            fprintf(err, "  %zu  %.1fs  %s\n", i + 1, r->markers[i].time, text);
        }
        if (r->marker_count == 0)
            fprintf(err, "  (none)\n");
        r->exit_status = TL_EXIT_USAGE;
        r->finished = 1;
    }
    return 0;
}

/* ---- record --------------------------------------------------------------------------------- */

static const char *mode_name(enum mode mode)
{
    return mode == SEARCH ? "search" : mode == CAST ? "cast" : "play";
}

static int work_record(struct replay *r, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = r->cmd;
    char actor[96];
    tl__cmd_actor(cmd, actor);
    int mismatch = strcmp(r->actual, r->recording) != 0;
    json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:b}", "session", cmd->replay_session,
                                "recording", r->recording, "mode", mode_name(r->mode), "outcome",
                                r->refused_mismatch ? "refused"
                                : mismatch          ? "forced"
                                                    : "played",
                                "force", cmd->replay_force);
    if (details == NULL)
        return TL_ENOMEM;
    if (mismatch)
        json_object_set_new(details, "stored_sha256", json_string(r->actual));
    if (r->mode == PLAY) {
        json_object_set_new(details, "speed", json_real(cmd->replay_speed));
        if (cmd->replay_idle > 0)
            json_object_set_new(details, "idle_limit", json_real(cmd->replay_idle));
        if (r->from_index > 0)
            json_object_set_new(details, "from_marker", json_integer((json_int_t)r->from_index));
    }
    if (r->mode == SEARCH)
        json_object_set_new(details, "search", json_string(cmd->replay_search));
    int rc = tl_worker_audit(ctx, actor, "session.replay", r->ticket, details);
    json_decref(details);
    if (rc != 0)
        return rc;
    if (r->refused_mismatch) {
        r->exit_status = 1;
        r->finished = 1;
    }
    return 0;
}

/* ---- fill ----------------------------------------------------------------------------------- */

static void batch_free(struct batch *batch)
{
    if (batch == NULL)
        return;
    free(batch->events);
    tl_buf_free(batch->bytes);
    free(batch);
}

/* Room for a batch's events, and for every marker the audit log adds (they may all fall
 * between two of the recording's events). */
static struct batch *batch_new(size_t log_markers)
{
    struct batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL)
        return NULL;
    batch->capacity = BATCH_EVENTS + log_markers + 1;
    batch->events = calloc(batch->capacity, sizeof *batch->events);
    batch->bytes = tl_buf_new(BATCH_BYTES * 8 + LINE_MAX_BYTES);
    if (batch->events == NULL || batch->bytes == NULL) {
        batch_free(batch);
        return NULL;
    }
    return batch;
}

static int batch_put(struct batch *batch, char type, double time, const void *bytes, size_t len)
{
    size_t offset = tl_buf_len(batch->bytes);
    int rc = tl_buf_put(batch->bytes, bytes, len);
    if (rc != 0)
        return rc;
    if (type != 0 && batch->count >= batch->capacity) {
        tl_buf_unreserve(batch->bytes, len);
        return TL_EFULL;
    }
    if (type != 0)
        batch->events[batch->count++] =
            (struct event){.time = time, .offset = offset, .len = len, .type = type};
    return 0;
}

/* A marker as the terminal shows it: on a line of its own, its text escaped. */
static int put_marker(struct replay *r, struct batch *batch, double time, const char *text)
{
    uint64_t index = ++r->marker_serial;
    if (r->from_index > 0 && index == r->from_index)
        r->started = 1;
    if (!r->started)
        return 0;
    char shown[1024], line[1200];
    tl_text_clip(shown, sizeof shown, text, 0, TL_TEXT_LINE);
    int len = snprintf(line, sizeof line, "\r\n[marker %" PRIu64 " at %d:%04.1f: %s]\r\n", index,
                       (int)(time / 60), time - 60.0 * (int)(time / 60), shown);
    return batch_put(batch, 'm', time, line,
                     len > 0 && (size_t)len < sizeof line ? (size_t)len : 0);
}

/* The same marker in a .cast file: an "m" event. */
static int put_cast_marker(struct batch *batch, double time, const char *text)
{
    json_t *value = json_string(text);
    char *quoted = value != NULL ? json_dumps(value, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    json_decref(value);
    if (quoted == NULL)
        return TL_ENOMEM;
    char head[64];
    int len = snprintf(head, sizeof head, "[%.6f, \"m\", ", time);
    int rc = batch_put(batch, 0, 0, head, (size_t)len);
    if (rc == 0)
        rc = batch_put(batch, 0, 0, quoted, strlen(quoted));
    if (rc == 0)
        rc = batch_put(batch, 0, 0, "]\n", 2);
    free(quoted);
    return rc;
}

static int fill_log_markers(struct replay *r, struct batch *batch, double time, int all)
{
    int rc = 0;
    while (rc == 0 && r->log_next < r->log_marker_count &&
           (all || r->log_markers[r->log_next].time < time)) {
        struct marker *m = &r->log_markers[r->log_next++];
        double at = all && m->time > r->duration ? r->duration : m->time;
        if (r->mode == CAST)
            rc = put_cast_marker(batch, at, m->text);
        else
            rc = put_marker(r, batch, at, m->text);
    }
    return rc;
}

static int work_fill(struct replay *r, tl_job_ctx_t *ctx)
{
    struct batch *batch = r->filling;
    int rc = 0;
    if (r->in == NULL) {
        rc = cast_in_open(ctx, r->recording, &r->in);
        if (rc != 0)
            return rc;
        r->header_seen = 0;
        r->log_next = 0;
        r->marker_serial = 0;
        r->started = r->from_index == 0;
    }
    const uint8_t *line;
    size_t len;
    while (batch->count < BATCH_EVENTS && tl_buf_len(batch->bytes) < BATCH_BYTES &&
           (rc = cast_in_line(r->in, &line, &len)) == 1) {
        if (!r->header_seen) {
            r->header_seen = 1;
            rc = 0;
            if (r->mode == CAST && (rc = batch_put(batch, 0, 0, line, len)) == 0)
                rc = batch_put(batch, 0, 0, "\n", 1);
            if (rc != 0)
                return rc;
            continue;
        }
        json_t *doc = NULL;
        double time;
        char type;
        const char *text;
        size_t text_len;
        int good = parse_event(line, len, &doc, &time, &type, &text, &text_len);
        rc = 0;
        if (good)
            rc = fill_log_markers(r, batch, time, 0);
        if (rc == 0 && r->mode == CAST) {
            if ((rc = batch_put(batch, 0, 0, line, len)) == 0)
                rc = batch_put(batch, 0, 0, "\n", 1);
        } else if (rc == 0 && good && type == 'm') {
            rc = put_marker(r, batch, time, text);
        } else if (rc == 0 && good && type == 'o' && r->started) {
            rc = batch_put(batch, 'o', time, text, text_len);
        }
        json_decref(doc);
        if (rc != 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0; /* the batch is full */
    batch->last = 1;
    return fill_log_markers(r, batch, 0, 1);
}

/* ---- the jobs ------------------------------------------------------------------------------- */

static int run_job(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct replay *r = (struct replay *)job;
    r->ran = r->phase;
    if (r->gone)
        return 0;
    if (r->phase == FILL)
        return work_fill(r, ctx);
    free(r->err);
    r->err = NULL;
    r->err_len = 0;
    FILE *err = open_memstream(&r->err, &r->err_len);
    if (err == NULL)
        return TL_ENOMEM;
    int rc = 0;
    switch (r->phase) {
    case FIND:
        rc = work_find(r, ctx, err);
        if (rc == 0)
            r->phase = SCAN;
        break;
    case SCAN:
        rc = work_scan(r, ctx, err);
        break;
    case RECORD:
        rc = work_record(r, ctx);
        if (rc != 0)
            fprintf(err, "tierline: the replay cannot be recorded: %s; nothing is shown\n",
                    tl_strerror(rc));
        break;
    default:
        break;
    }
    fclose(err);
    if (rc == TL_ENOMEM || rc == TL_ESTORE)
        return rc;
    /* A refusal keeps its audit entry (access.denied); any other failure writes nothing. */
    if (rc != 0 && r->cmd->refused) {
        r->finished = 1;
        r->exit_status = 1;
        return 0;
    }
    return rc;
}

static void submit(struct replay *r);
static void play_next(struct replay *r);

static void timer_closed(uv_handle_t *handle)
{
    struct replay *r = handle->data;
    free(r);
}

static void replay_free(struct replay *r)
{
    tl__cmd_free(r->cmd);
    cast_in_free(r->in);
    json_decref(r->entries);
    for (size_t i = 0; i < r->log_marker_count; i++)
        free(r->log_markers[i].text);
    for (size_t i = 0; i < r->marker_count; i++)
        free(r->markers[i].text);
    free(r->log_markers);
    free(r->markers);
    free(r->matches);
    tl_buf_free(r->window);
    batch_free(r->current);
    batch_free(r->filling);
    batch_free(r->ready);
    free(r->err);
    if (r->timer_ready) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, timer_closed);
        return;
    }
    free(r);
}

/* The client is gone or answered: freed now, or when the job in flight comes back. */
static void release(struct replay *r)
{
    r->gone = 1;
    if (!r->in_flight)
        replay_free(r);
}

static void finish(struct replay *r, int status)
{
    if (r->cmd->exec != NULL)
        tl_exec_finish(r->cmd->exec, status);
    r->cmd->exec = NULL;
    release(r);
}

static void print_search(struct replay *r)
{
    tl_exec_t *exec = r->cmd->exec;
    if (r->cmd->json) {
        json_t *matches = json_array(), *markers = json_array();
        for (size_t i = 0; i < r->match_count; i++)
            json_array_append_new(matches, json_pack("{s:f, s:s}", "time", r->matches[i].time,
                                                     "context", r->matches[i].context));
        for (size_t i = 0; i < r->marker_count; i++)
            json_array_append_new(
                markers, json_pack("{s:I, s:f, s:s, s:s}", "index", (json_int_t)i + 1, "time",
                                   r->markers[i].time, "text", r->markers[i].text, "source",
                                   r->markers[i].from_log ? "audit" : "recording"));
        json_t *doc = json_pack(
            "{s:s, s:s, s:s, s:o, s:I, s:o, s:f}", "session", r->cmd->replay_session, "ticket",
            r->ticket, "recording", r->recording, "matches", matches, "more_matches",
            (json_int_t)r->matches_more, "markers", markers, "duration", r->duration);
        char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
        if (text != NULL)
            tl_exec_printf(exec, TL_EXEC_STDOUT, "%s\n", text);
        free(text);
        json_decref(doc);
        return;
    }
    tl_exec_printf(exec, TL_EXEC_STDOUT, "TIME     OUTPUT\n");
    for (size_t i = 0; i < r->match_count; i++) {
        double t = r->matches[i].time;
        tl_exec_printf(exec, TL_EXEC_STDOUT, "%d:%06.3f  %s\n", (int)(t / 60),
                       t - 60.0 * (int)(t / 60), r->matches[i].context);
    }
    tl_exec_printf(exec, TL_EXEC_STDOUT, "%zu matches%s in the recording of %s (%.1fs)\n",
                   r->match_count, r->matches_more > 0 ? " (and more, not listed)" : "",
                   r->cmd->replay_session, r->duration);
}

static void job_done(tl_job_t *job, int status)
{
    struct replay *r = (struct replay *)job;
    struct cmd *cmd = r->cmd;
    r->in_flight = 0;
    if (r->gone || cmd->exec == NULL) {
        replay_free(r);
        return;
    }
    if (r->ran != FILL && r->err_len > 0 && status != TL_EAUDIT)
        tl_exec_write(cmd->exec, TL_EXEC_STDERR, r->err, r->err_len);
    if (status != 0) {
        if (r->ran == FILL || r->err_len == 0 || status == TL_EAUDIT)
            tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: replay %s: %s\n",
                           status == TL_EAUDIT ? "cannot be recorded, nothing is shown" : "stopped",
                           tl_strerror(status));
        finish(r, 1);
        return;
    }
    if (r->finished) {
        finish(r, r->exit_status);
        return;
    }
    if (r->ran == FIND || r->ran == SCAN) {
        submit(r); /* the scan's next step, or the record */
        return;
    }
    if (r->ran == RECORD) {
        /* On the record: now the answer. */
        if (r->mode == SEARCH) {
            print_search(r);
            finish(r, 0);
            return;
        }
        if (r->mode == PLAY && r->marker_count > 0)
            tl_exec_printf(cmd->exec, TL_EXEC_STDERR,
                           "replay %s on %s: %.1fs, %zu markers; speed %g%s\n", cmd->replay_session,
                           r->ticket, r->duration, r->marker_count, cmd->replay_speed,
                           cmd->replay_idle > 0 ? ", pauses capped" : "");
        /* The recording's bytes are the session's own terminal: passed through as they are. */
        tl_exec_set_raw(cmd->exec);
        r->phase = FILL;
        submit(r);
        return;
    }
    /* A batch is ready: the first plays at once and the next is read meanwhile; a later one
     * waits its turn, unless the one before ran out first. */
    int first = r->current == NULL;
    if (first)
        r->current = r->filling;
    else
        r->ready = r->filling;
    r->filling = NULL;
    if (first && !r->current->last)
        submit(r);
    if (first || r->waiting_batch) {
        r->waiting_batch = 0;
        play_next(r);
    }
}

static void submit(struct replay *r)
{
    if (r->phase == FILL && r->filling == NULL &&
        (r->filling = batch_new(r->log_marker_count)) == NULL) {
        tl_exec_printf(r->cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", tl_strerror(TL_ENOMEM));
        finish(r, 1);
        return;
    }
    r->job.run = run_job;
    r->job.done = job_done;
    r->in_flight = 1;
    tl_worker_submit(r->cmd->ctx->worker, &r->job);
}

/* ---- playing, on the loop ------------------------------------------------------------------- */

static void on_timer(uv_timer_t *timer)
{
    struct replay *r = timer->data;
    r->timer_armed = 0;
    r->delay_served = 1;
    play_next(r);
}

static void play_next(struct replay *r)
{
    tl_exec_t *exec = r->cmd->exec;
    while (exec != NULL && !r->gone) {
        struct batch *batch = r->current;
        int consumed =
            batch == NULL || (r->mode == CAST ? batch->played > 0 : batch->played >= batch->count);
        if (consumed) {
            if (batch != NULL && batch->last) {
                finish(r, 0);
                return;
            }
            if (r->ready == NULL) {
                r->waiting_batch = 1; /* the worker is on it */
                return;
            }
            batch_free(batch);
            r->current = r->ready;
            r->ready = NULL;
            if (!r->current->last && !r->in_flight)
                submit(r);
            continue;
        }
        if (r->mode == CAST) {
            tl_exec_write(exec, TL_EXEC_STDOUT, tl_buf_data(batch->bytes),
                          tl_buf_len(batch->bytes));
            batch->played = 1;
            if (tl_exec_buffered(exec) >= TL_EXEC_HIGH_WATER)
                return; /* on_drain */
            continue;
        }
        struct event *event = &batch->events[batch->played];
        if (!r->delay_served) {
            double gap = r->have_prev ? event->time - r->prev_time : 0;
            if (gap < 0)
                gap = 0;
            if (r->cmd->replay_idle > 0 && gap > r->cmd->replay_idle)
                gap = r->cmd->replay_idle;
            r->owed_ms += gap * 1000.0 / r->cmd->replay_speed;
            if (r->owed_ms >= 1.0 && r->timer_ready) {
                uint64_t wait = (uint64_t)r->owed_ms;
                r->owed_ms -= (double)wait;
                r->timer_armed = 1;
                uv_timer_start(&r->timer, on_timer, wait, 0);
                return;
            }
        }
        r->delay_served = 0;
        tl_exec_write(exec, TL_EXEC_STDOUT, tl_buf_data(batch->bytes) + event->offset, event->len);
        r->prev_time = event->time;
        r->have_prev = 1;
        batch->played++;
        if (tl_exec_buffered(exec) >= TL_EXEC_HIGH_WATER)
            return; /* on_drain */
    }
}

static void on_drain(tl_exec_t *exec, void *data)
{
    struct replay *r = data;
    (void)exec;
    if (r->phase == FILL && !r->timer_armed && !r->waiting_batch)
        play_next(r);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct replay *r = data;
    (void)exec;
    r->cmd->exec = NULL;
    release(r);
}

/* At a terminal, q or Ctrl-C stops the replay (a terminal's keys reach us as its input). */
static size_t on_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct replay *r = data;
    const tl_exec_pty_t *pty = tl_exec_pty(exec);
    if (pty != NULL && pty->requested &&
        (memchr(bytes, 'q', len) != NULL || memchr(bytes, 0x03, len) != NULL)) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "\r\n[replay stopped]\r\n");
        finish(r, 0);
    }
    return len;
}

static const tl_exec_callbacks_t replay_callbacks = {
    .on_drain = on_drain, .on_abort = on_abort, .on_input = on_input};

static void start_replay(struct cmd *cmd)
{
    struct replay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", tl_strerror(TL_ENOMEM));
        tl_exec_finish(cmd->exec, 1);
        tl__cmd_free(cmd);
        return;
    }
    r->cmd = cmd;
    r->phase = FIND;
    r->mode = cmd->replay_search != NULL ? SEARCH : cmd->replay_cast ? CAST : PLAY;
    if (cmd->ctx->loop != NULL && uv_timer_init(cmd->ctx->loop, &r->timer) == 0) {
        r->timer.data = r;
        r->timer_ready = 1;
    }
    tl_exec_set_callbacks(cmd->exec, &replay_callbacks, r);
    submit(r);
}

const struct tl__command tl__cmd_replay = {
    .name = "replay",
    .usage = "replay SESSION [--speed X] [--idle-limit S] [--from MARKER] [--search TEXT [--json]] "
             "[--cast] [--force]",
    .summary = "play a session's recording to your terminal, with its timing and markers",
    .capability = TL_CAP_EVIDENCE_GET,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "speed",
                      .metavar = "X",
                      .help = "play X times as fast (more than 0, at most 100; default 1)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_speed,
                      .out = TL_CLI_AT(struct cmd, replay_speed),
                      .problem = "--speed wants a number more than 0 and at most 100, such as "
                                 "2 or 0.5, not '%s'"},
                     {.name = "idle-limit",
                      .metavar = "S",
                      .help = "no pause longer than S seconds (more than 0, at most 86400)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_idle,
                      .out = TL_CLI_AT(struct cmd, replay_idle),
                      .problem = "--idle-limit wants seconds, more than 0 and at most 86400, "
                                 "such as 2 or 0.5, not '%s'"},
                     {.name = "from",
                      .metavar = "MARKER",
                      .help = "start at a marker: its number (as --search --json lists them), or "
                              "text it holds (\"consent.granted\", \"input hidden\")",
                      .word = TL_CLI_AT(struct cmd, replay_from)},
                     {.name = "search",
                      .metavar = "TEXT",
                      .help = "play nothing: list the times at which TEXT appears in the output",
                      .word = TL_CLI_AT(struct cmd, replay_search)},
                     {.name = "cast",
                      .help = "play nothing: send the recording as an uncompressed asciicast v2 "
                              "file, with the audit log's markers, for any player",
                      .out = TL_CLI_AT(struct cmd, replay_cast)},
                     {.name = "force",
                      .help = "play a recording that does not match its audit entry (warned, "
                              "and recorded in the audit log)",
                      .out = TL_CLI_AT(struct cmd, replay_force)},
                     TL__CMD_JSON("with --search, an object: session, ticket, recording, "
                                  "matches (time, context), more_matches, markers (index, time, "
                                  "text, source), duration"),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "SESSION",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = kind_session,
                                                    .out = TL_CLI_AT(struct cmd, replay_session),
                                                    .problem = "SESSION is a session's grant, as "
                                                               "audit search shows it, not '%s'"},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = replay_prepare,
    .start = start_replay,
    .example = "replay G-3f9a --speed 2 --idle-limit 1\n",
};
