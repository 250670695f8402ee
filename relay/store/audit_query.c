/* The audit log read for auditors: search, proofs, checkpoints, verification
 * (relay/store/audit_query.h, docs/audit-format.md §18). */
#include "relay/store/audit_query.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/merkle.h"
#include "proto/note.h"
#include "relay/store/audit.h"
#include "relay/store/audit_anchors.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_key.h"
#include "relay/store/audit_tree.h"
#include "relay/store/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define TIME_LEN 24 /* "2026-11-23T19:04:05.123Z" */
#define PATH_MAX_LEN 4096

/* ---- patterns ------------------------------------------------------------------------------- */

int tl_audit_pattern_compile(const char *pattern, regex_t *out, char *why, size_t why_size)
{
    size_t len = strnlen(pattern, TL_AUDIT_PATTERN_MAX + 1);
    if (len > TL_AUDIT_PATTERN_MAX) {
        snprintf(why, why_size, "--command: a pattern is at most %d bytes", TL_AUDIT_PATTERN_MAX);
        return TL_EINVAL;
    }
    for (size_t i = 0; i + 1 < len; i++) {
        if (pattern[i] == '\\' && pattern[i + 1] >= '1' && pattern[i + 1] <= '9') {
            snprintf(why, why_size, "--command: back-references (\\%c) are not allowed",
                     pattern[i + 1]);
            return TL_EINVAL;
        }
        if (pattern[i] == '\\')
            i++; /* an escaped backslash is not the start of another escape */
    }
    int rc = regcomp(out, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char text[128];
        regerror(rc, out, text, sizeof text);
        snprintf(why, why_size, "--command: not a POSIX extended regular expression: %s", text);
        return TL_EINVAL;
    }
    return 0;
}

/* ---- reading the log a line at a time ------------------------------------------------------- */

struct lines {
    int fd;
    char *buf;
    size_t start, have;
    int eof;
};

static int lines_open(struct lines *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return -errno;
    r->buf = malloc(TL_AUDIT_LINE_MAX + CHUNK);
    if (r->buf == NULL) {
        close(r->fd);
        return TL_ENOMEM;
    }
    return 0;
}

static void lines_close(struct lines *r)
{
    free(r->buf);
    if (r->fd >= 0)
        close(r->fd);
}

/* 1 and the next complete line (without its line feed), 0 at the end, negative on error. Bytes
 * after the last line feed are a torn write, not a line (audit-format §7). */
static int lines_next(struct lines *r, const char **line, size_t *len)
{
    for (;;) {
        char *at = r->have > 0 ? memchr(r->buf + r->start, '\n', r->have) : NULL;
        if (at != NULL) {
            size_t n = (size_t)(at - (r->buf + r->start));
            *line = r->buf + r->start;
            *len = n;
            r->start += n + 1;
            r->have -= n + 1;
            return 1;
        }
        if (r->have >= TL_AUDIT_LINE_MAX)
            return TL_EPROTO;
        if (r->eof)
            return 0;
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->have);
            r->start = 0;
        }
        ssize_t got = read(r->fd, r->buf + r->have, TL_AUDIT_LINE_MAX + CHUNK - r->have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            r->eof = 1;
        r->have += (size_t)got;
    }
}

/* ---- search --------------------------------------------------------------------------------- */

static void time_text(int64_t ms, char out[TIME_LEN + 1])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    size_t used = strftime(out, TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + used, TIME_LEN + 1 - used, ".%03dZ", (int)(ms % 1000));
}

static const char *member(json_t *object, const char *name)
{
    return json_string_value(json_object_get(object, name));
}

static int same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* The entry's command text: argv's words joined by spaces, else runbook, else command. */
static int command_text(json_t *details, char *out, size_t size)
{
    json_t *argv = json_object_get(details, "argv");
    size_t used = 0;
    out[0] = '\0';
    if (json_is_array(argv)) {
        size_t i;
        json_t *word;
        json_array_foreach(argv, i, word) {
            const char *text = json_string_value(word);
            if (text == NULL)
                continue;
            int n = snprintf(out + used, size - used, "%s%s", used > 0 ? " " : "", text);
            if (n < 0 || (size_t)n >= size - used) {
                used = size - 1;
                break;
            }
            used += (size_t)n;
        }
        return 1;
    }
    const char *text = member(details, "runbook");
    if (text == NULL)
        text = member(details, "command");
    if (text == NULL)
        return 0;
    snprintf(out, size, "%s", text);
    return 1;
}

static int actor_matches(const char *actor, const char *wanted)
{
    if (actor == NULL)
        return 0;
    if (strcmp(actor, wanted) == 0)
        return 1;
    const char *colon = strchr(actor, ':');
    return colon != NULL && strcmp(colon + 1, wanted) == 0;
}

static int action_matches(const char *action, const char *wanted)
{
    size_t len = strlen(wanted);
    if (action == NULL)
        return 0;
    if (len > 0 && wanted[len - 1] == '.')
        return strncmp(action, wanted, len) == 0;
    return strcmp(action, wanted) == 0;
}

static int entry_matches(json_t *entry, const tl_audit_query_t *q, const char *since,
                         const char *until, char *scratch)
{
    json_t *details = json_object_get(entry, "details");
    const char *subject = member(entry, "subject");
    const char *time = member(entry, "time");
    if (q->ticket != NULL && !same(subject, q->ticket) &&
        !same(member(details, "ticket"), q->ticket))
        return 0;
    if (q->session != NULL && !same(member(details, "grant"), q->session))
        return 0;
    if (q->actor != NULL && !actor_matches(member(entry, "actor"), q->actor))
        return 0;
    if (q->device != NULL && !same(member(details, "device"), q->device))
        return 0;
    if (q->action != NULL && !action_matches(member(entry, "action"), q->action))
        return 0;
    /* The times have one fixed form, so they compare as text. */
    if (since != NULL && (time == NULL || strcmp(time, since) < 0))
        return 0;
    if (until != NULL && (time == NULL || strcmp(time, until) > 0))
        return 0;
    if (q->command != NULL) {
        if (!command_text(details, scratch, TL_AUDIT_SUBJECT_TEXT_MAX + 1) ||
            regexec(q->command, scratch, 0, NULL, 0) != 0)
            return 0;
    }
    return 1;
}

/*
 * A text every matching line must hold as it is written, if the filter is one (plain ASCII: the
 * log escapes everything else, and quotes and backslashes): most lines are then passed over
 * without being parsed. NULL when the filter gives none.
 */
static const char *literal(const char *filter)
{
    if (filter == NULL || filter[0] == '\0')
        return NULL;
    for (const char *c = filter; *c != '\0'; c++)
        if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
            return NULL;
    return filter;
}

int tl_audit_search(const char *log_path, const tl_audit_query_t *query, json_t **hits_out,
                    tl_audit_search_report_t *report)
{
    struct lines reader;
    char since[TIME_LEN + 1], until[TIME_LEN + 1];
    char *scratch = NULL;
    json_t *hits = json_array();
    memset(report, 0, sizeof *report);
    *hits_out = NULL;
    if (query->since_ms > 0)
        time_text(query->since_ms, since);
    if (query->until_ms > 0)
        time_text(query->until_ms, until);
    int rc =
        hits != NULL && (scratch = malloc(TL_AUDIT_SUBJECT_TEXT_MAX + 1)) != NULL ? 0 : TL_ENOMEM;
    if (rc == 0)
        rc = lines_open(&reader, log_path);
    if (rc != 0) {
        if (rc == -ENOENT)
            rc = 0; /* no log yet: nothing to find */
        goto out;
    }
    const char *since_text = query->since_ms > 0 ? since : NULL;
    const char *until_text = query->until_ms > 0 ? until : NULL;
    const char *needles[] = {literal(query->ticket), literal(query->session), literal(query->actor),
                             literal(query->device), literal(query->action)};
    size_t needle_len[sizeof needles / sizeof needles[0]];
    for (size_t n = 0; n < sizeof needles / sizeof needles[0]; n++)
        needle_len[n] = needles[n] != NULL ? strlen(needles[n]) : 0;
    for (uint64_t index = 0;; index++) {
        const char *line;
        size_t len;
        if (report->scanned == TL_AUDIT_SEARCH_SCAN_MAX) {
            const char *ignored;
            size_t ignored_len;
            report->scan_capped = lines_next(&reader, &ignored, &ignored_len) == 1;
            break;
        }
        int more = lines_next(&reader, &line, &len);
        if (more <= 0) {
            rc = more;
            break;
        }
        report->scanned++;
        int passed_over = 0;
        for (size_t n = 0; n < sizeof needles / sizeof needles[0] && !passed_over; n++)
            passed_over =
                needles[n] != NULL && memmem(line, len, needles[n], needle_len[n]) == NULL;
        /* The time is compared as written, without parsing the line (the check after the
         * parse is the one that counts). */
        const char *at = passed_over || (since_text == NULL && until_text == NULL)
                             ? NULL
                             : memmem(line, len, "\"time\":\"", 8);
        if (at != NULL && (size_t)(line + len - at) > 8 + TIME_LEN)
            passed_over = (since_text != NULL && memcmp(at + 8, since_text, TIME_LEN) < 0) ||
                          (until_text != NULL && memcmp(at + 8, until_text, TIME_LEN) > 0);
        /* A command is in argv, runbook or command: a line with none of them has none. */
        if (!passed_over && query->command != NULL)
            passed_over = memmem(line, len, "\"argv\":[", 8) == NULL &&
                          memmem(line, len, "\"runbook\":\"", 11) == NULL &&
                          memmem(line, len, "\"command\":\"", 11) == NULL;
        if (passed_over)
            continue;
        json_t *entry = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(entry)) {
            report->unreadable++;
            json_decref(entry);
            continue;
        }
        if (entry_matches(entry, query, query->since_ms > 0 ? since : NULL,
                          query->until_ms > 0 ? until : NULL, scratch)) {
            if (report->matched == query->limit) {
                report->more = 1;
                json_decref(entry);
                break;
            }
            json_object_set_new(entry, "index", json_integer((json_int_t)index));
            if (json_array_append(hits, entry) != 0)
                rc = TL_ENOMEM;
            report->matched++;
        }
        json_decref(entry);
        if (rc != 0)
            break;
    }
    lines_close(&reader);
out:
    free(scratch);
    if (rc == 0)
        *hits_out = hits;
    else
        json_decref(hits);
    return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

int tl_audit_query_checkpoint(const char *data_dir, char **note, size_t *len, json_t **details)
{
    char path[PATH_MAX_LEN];
    *note = NULL;
    *len = 0;
    if (details != NULL)
        *details = NULL;
    int rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_CHECKPOINTS, path, sizeof path);
    if (rc == 0)
        rc = tl_audit_checkpoints_last(path, note, len);
    if (rc == 0 && *note == NULL)
        rc = -ENOENT;
    if (rc == 0 && details != NULL)
        rc = tl_audit_checkpoint_details(*note, *len, details);
    if (rc != 0) {
        free(*note);
        *note = NULL;
        *len = 0;
    }
    return rc;
}

/* The checkpoint in a note's text (everything up to its last empty line). */
static int note_checkpoint(const char *note, size_t len, tl_checkpoint_t *out)
{
    for (size_t i = len; i >= 2; i--)
        if (note[i - 2] == '\n' && note[i - 1] == '\n')
            return tl_checkpoint_parse(note, i - 1, out);
    return TL_EINVAL;
}

/* ---- proofs --------------------------------------------------------------------------------- */

struct leaves {
    int fd;
};

static int leaf_of(void *arg, uint64_t index, tl_merkle_hash_t out)
{
    const struct leaves *leaves = arg;
    uint8_t record[TL_AUDIT_LEAF_RECORD];
    ssize_t got = pread(leaves->fd, record, sizeof record, (off_t)(index * TL_AUDIT_LEAF_RECORD));
    if (got != (ssize_t)sizeof record)
        return got < 0 ? -errno : TL_ETRUNCATED;
    memcpy(out, record, TL_MERKLE_HASH_LEN);
    return 0;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static json_t *b64_json(const uint8_t *bytes, size_t len)
{
    char text[4 * ((TL_MERKLE_HASH_LEN + 2) / 3) + 1];
    if (len != TL_MERKLE_HASH_LEN)
        return NULL;
    EVP_EncodeBlock((unsigned char *)text, bytes, (int)len);
    return json_string(text);
}

/* The log's line at leaf index: where the leaves file says it is. */
static int read_line(const char *log_path, int leaves_fd, uint64_t index, char **line, size_t *len)
{
    uint8_t record[TL_AUDIT_LEAF_RECORD];
    uint64_t start = 0, end;
    *line = NULL;
    if (index > 0) {
        if (pread(leaves_fd, record, sizeof record, (off_t)((index - 1) * TL_AUDIT_LEAF_RECORD)) !=
            (ssize_t)sizeof record)
            return TL_ETRUNCATED;
        start = get_u64(record + TL_MERKLE_HASH_LEN);
    }
    if (pread(leaves_fd, record, sizeof record, (off_t)(index * TL_AUDIT_LEAF_RECORD)) !=
        (ssize_t)sizeof record)
        return TL_ETRUNCATED;
    end = get_u64(record + TL_MERKLE_HASH_LEN);
    if (end <= start || end - start > TL_AUDIT_LINE_MAX)
        return TL_EPROTO;
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = (size_t)(end - start);
    char *bytes = malloc(n + 1);
    int rc = bytes == NULL                                        ? TL_ENOMEM
             : pread(fd, bytes, n, (off_t)start) != (ssize_t)n    ? TL_ETRUNCATED
             : bytes[n - 1] != '\n' || memchr(bytes, '\n', n - 1) ? TL_EPROTO
                                                                  : 0;
    close(fd);
    if (rc != 0) {
        free(bytes);
        return rc;
    }
    bytes[n - 1] = '\0';
    *line = bytes;
    *len = n - 1;
    return 0;
}

int tl_audit_prove(const char *data_dir, int by_seq, uint64_t which, json_t **proof_out, char *why,
                   size_t why_size)
{
    char log_path[PATH_MAX_LEN], leaves_path[PATH_MAX_LEN];
    char *note = NULL, *line = NULL;
    size_t note_len = 0, line_len = 0, count = 0;
    tl_checkpoint_t checkpoint;
    tl_merkle_hash_t path[TL_MERKLE_PROOF_MAX], leaf;
    struct leaves leaves = {-1};
    json_t *entry = NULL;
    *proof_out = NULL;
    why[0] = '\0';
    int rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc == 0)
        rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_LEAVES, leaves_path, sizeof leaves_path);
    if (rc != 0)
        goto out;
    rc = tl_audit_query_checkpoint(data_dir, &note, &note_len, NULL);
    if (rc == -ENOENT) {
        rc = TL_ESTATE;
        snprintf(why, why_size,
                 "no checkpoint yet: the relay makes one every 1000 entries or 5 "
                 "minutes");
        goto out;
    }
    if (rc == 0 && note_checkpoint(note, note_len, &checkpoint) != 0)
        rc = TL_EVERIFY;
    if (rc != 0) {
        snprintf(why, why_size, "the latest checkpoint cannot be read: %s", tl_strerror(rc));
        goto out;
    }
    leaves.fd = open(leaves_path, O_RDONLY | O_CLOEXEC);
    if (leaves.fd < 0) {
        rc = -errno;
        snprintf(why, why_size, "the audit leaves cannot be read: %s", tl_strerror(rc));
        goto out;
    }
    uint64_t index = by_seq ? which - 1 : which;
    if ((by_seq && which == 0) || index >= checkpoint.size) {
        /* Past the checkpoint: past the log, or not yet covered? The log's last seq is its
         * count of entries (audit-format §12). */
        uint64_t last_seq = 0, tail = 0;
        char hash[TL_AUDIT_HASH_HEX];
        if (tl_audit_peek(log_path, &last_seq, hash, &tail, NULL, 0) != 0 || index >= last_seq ||
            (by_seq && which == 0)) {
            rc = TL_ENOTFOUND;
            snprintf(why, why_size, "no entry %s%" PRIu64 ": the log holds %" PRIu64 " entries",
                     by_seq ? "seq:" : "", which, last_seq);
            goto out;
        }
        rc = TL_ESTATE;
        snprintf(why, why_size,
                 "entry %" PRIu64 " is newer than the latest checkpoint (size %" PRIu64
                 "): ask again after the next one (every 1000 entries or 5 minutes)",
                 index, checkpoint.size);
        goto out;
    }
    if ((rc = read_line(log_path, leaves.fd, index, &line, &line_len)) != 0 ||
        (rc = tl_merkle_leaf_hash(line, line_len, leaf)) != 0) {
        snprintf(why, why_size, "entry %" PRIu64 " cannot be read: %s", index, tl_strerror(rc));
        rc = TL_EVERIFY;
        goto out;
    }
    entry = json_loadb(line, line_len, 0, NULL);
    json_int_t seq = json_integer_value(json_object_get(entry, "seq"));
    if (by_seq && (uint64_t)seq != which) {
        rc = TL_ENOTFOUND;
        snprintf(why, why_size,
                 "entry seq %" PRIu64 " is not leaf %" PRIu64 " (the log was recovered, "
                 "audit-format §8): name it by its leaf index (audit search shows it)",
                 which, index);
        goto out;
    }
    tl_merkle_hash_t root;
    rc = tl_merkle_inclusion_proof(leaf_of, &leaves, index, checkpoint.size, path, &count);
    if (rc == 0)
        rc = leaf_of(&leaves, index, root); /* the cache's leaf must be the line's */
    if (rc == 0 && memcmp(root, leaf, TL_MERKLE_HASH_LEN) != 0)
        rc = TL_EVERIFY;
    if (rc == 0)
        rc = tl_merkle_inclusion_verify(index, checkpoint.size, leaf,
                                        (const tl_merkle_hash_t *)path, count, checkpoint.root);
    if (rc != 0) {
        snprintf(why, why_size,
                 "entry %" PRIu64 " cannot be proved against the checkpoint of size %" PRIu64
                 ": the log does not give its root (audit verify says where it differs)",
                 index, checkpoint.size);
        rc = TL_EVERIFY;
        goto out;
    }
    json_t *audit_path = json_array();
    for (size_t i = 0; audit_path != NULL && i < count; i++)
        json_array_append_new(audit_path, b64_json(path[i], TL_MERKLE_HASH_LEN));
    *proof_out = json_pack(
        "{s:I, s:I, s:s%, s:o, s:I, s:o, s:o, s:s%}", "index", (json_int_t)index, "seq", seq,
        "entry", line, line_len, "leaf_hash", b64_json(leaf, TL_MERKLE_HASH_LEN), "tree_size",
        (json_int_t)checkpoint.size, "root", b64_json(checkpoint.root, TL_MERKLE_HASH_LEN),
        "audit_path", audit_path, "checkpoint", note, note_len);
    rc = *proof_out != NULL ? 0 : TL_ENOMEM;
out:
    if (leaves.fd >= 0)
        close(leaves.fd);
    json_decref(entry);
    free(line);
    free(note);
    return rc;
}

/* ---- what a witness asks (docs/protocol.md §7.15) ---------------------------------------------
 */

int tl_audit_witness(const char *data_dir, uint64_t old_size, json_t **answer, char *why,
                     size_t why_size)
{
    char leaves_path[PATH_MAX_LEN], key_path[PATH_MAX_LEN], name[TL_NOTE_NAME_MAX + 1];
    char vkey[TL_NOTE_VKEY_MAX];
    char *note = NULL;
    size_t note_len = 0, count = 0;
    tl_checkpoint_t checkpoint;
    tl_note_verifier_t verifier;
    tl_merkle_hash_t path[TL_MERKLE_PROOF_MAX];
    struct leaves leaves = {-1};
    json_t *proof = NULL;
    *answer = NULL;
    why[0] = '\0';
    int rc = tl_audit_query_checkpoint(data_dir, &note, &note_len, NULL);
    if (rc == -ENOENT) {
        /* Nothing signed yet: nothing to witness. */
        *answer = json_object();
        return *answer != NULL ? 0 : TL_ENOMEM;
    }
    if (rc == 0 && note_checkpoint(note, note_len, &checkpoint) != 0)
        rc = TL_EVERIFY;
    if (rc == 0)
        rc = tl_audit_checkpoints_signer(data_dir, key_path, sizeof key_path, name);
    if (rc == 0)
        rc = tl_audit_key_verifier(key_path, name, &verifier, vkey);
    if (rc != 0) {
        snprintf(why, why_size, "the latest checkpoint or the audit key cannot be read: %s",
                 tl_strerror(rc));
        goto out;
    }
    proof = json_array();
    if (proof == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (old_size > 0 && old_size < checkpoint.size) {
        rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_LEAVES, leaves_path, sizeof leaves_path);
        if (rc == 0 && (leaves.fd = open(leaves_path, O_RDONLY | O_CLOEXEC)) < 0)
            rc = -errno;
        if (rc == 0)
            rc = tl_merkle_consistency_proof(leaf_of, &leaves, old_size, checkpoint.size, path,
                                             &count);
        if (rc != 0) {
            snprintf(why, why_size, "no consistency proof from size %" PRIu64 " to %" PRIu64 ": %s",
                     old_size, checkpoint.size, tl_strerror(rc));
            goto out;
        }
        for (size_t i = 0; i < count; i++)
            if (json_array_append_new(proof, b64_json(path[i], TL_MERKLE_HASH_LEN)) != 0) {
                rc = TL_ENOMEM;
                goto out;
            }
    }
    *answer =
        json_pack("{s:s%, s:s, s:O}", "checkpoint", note, note_len, "key", vkey, "proof", proof);
    rc = *answer != NULL ? 0 : TL_ENOMEM;
out:
    if (leaves.fd >= 0)
        close(leaves.fd);
    json_decref(proof);
    free(note);
    return rc;
}

/* ---- the relay's own verification ----------------------------------------------------------- */

static json_t *anchors_json(const tl_audit_anchor_report_t *report, int rc)
{
    json_t *bad = json_null();
    if (rc == TL_EVERIFY)
        bad = json_pack("{s:I, s:I, s:s, s:I, s:I, s:s}", "index", (json_int_t)report->index,
                        "size", (json_int_t)report->size, "category", report->category,
                        "first_entry", (json_int_t)report->first_entry, "last_entry",
                        (json_int_t)report->last_entry, "reason", report->reason);
    else if (rc != 0)
        bad = json_pack("{s:s, s:s}", "category", "unreadable", "reason", report->reason);
    json_t *tail =
        strcmp(report->category, "unsigned") != 0
            ? json_null()
            : json_pack("{s:I, s:I, s:b}", "first_entry", (json_int_t)report->first_entry,
                        "last_entry", (json_int_t)report->last_entry, "serving", 0);
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:o, s:o}", "ok", rc == 0, "checked",
                     (json_int_t)report->checked, "log_entries", (json_int_t)report->log_entries,
                     "last_size", (json_int_t)report->last_size, "covered",
                     (json_int_t)report->covered, "unsigned", tail, "bad", bad);
}

/* The kept checkpoint against the key and the log: 0, or TL_EVERIFY with its category and
 * reason; TL_EINVAL when the bytes are no signed note of a checkpoint. */
static int check_kept(const char *log_path, const tl_note_verifier_t *verifier,
                      const tl_audit_kept_t *kept, tl_checkpoint_t *checkpoint,
                      const char **category, char *reason, size_t reason_size,
                      uint64_t *first_entry, uint64_t *last_entry)
{
    size_t text_len = 0;
    *category = "";
    *first_entry = *last_entry = 0;
    memset(checkpoint, 0, sizeof *checkpoint);
    if (kept->len == 0 || memchr(kept->bytes, '\0', kept->len) != NULL ||
        note_checkpoint(kept->bytes, kept->len, checkpoint) != 0) {
        snprintf(reason, reason_size,
                 "not a checkpoint note (save `audit checkpoint` output and give it on stdin)");
        return TL_EINVAL;
    }
    if (verifier == NULL) {
        *category = "no-key";
        snprintf(reason, reason_size, "the relay has no audit key to check it with");
        return TL_EVERIFY;
    }
    int rc = tl_note_open(kept->bytes, kept->len, verifier, &text_len);
    if (rc == TL_EINVAL) {
        snprintf(reason, reason_size, "not a signed note (C2SP signed-note format)");
        return TL_EINVAL;
    }
    if (rc != 0) {
        *category = "bad-signature";
        snprintf(reason, reason_size,
                 "it carries no good signature by this relay's audit key %s (signed by another "
                 "key, or altered)",
                 verifier->name);
        return TL_EVERIFY;
    }
    if (tl_checkpoint_parse(kept->bytes, text_len, checkpoint) != 0 ||
        strcmp(checkpoint->origin, verifier->name) != 0) {
        *category = "bad-note";
        snprintf(reason, reason_size, "it is not a checkpoint of the log %s", verifier->name);
        return TL_EVERIFY;
    }
    tl_merkle_hash_t root;
    uint64_t lines = 0;
    rc = tl_audit_tree_roots_of_log(log_path, &checkpoint->size, 1, &root, &lines);
    if (rc != 0) {
        *category = "unreadable";
        snprintf(reason, reason_size, "the audit log cannot be read: %s", tl_strerror(rc));
        return TL_EVERIFY;
    }
    if (checkpoint->size > lines) {
        *category = "log-short";
        *first_entry = lines + 1;
        *last_entry = checkpoint->size;
        snprintf(reason, reason_size,
                 "the log holds %" PRIu64 " entries but your checkpoint covers %" PRIu64
                 ": entries %" PRIu64 "..%" PRIu64 " were cut",
                 lines, checkpoint->size, *first_entry, *last_entry);
        return TL_EVERIFY;
    }
    if (memcmp(root, checkpoint->root, TL_MERKLE_HASH_LEN) != 0) {
        *category = "root-mismatch";
        *first_entry = 1;
        *last_entry = checkpoint->size;
        snprintf(reason, reason_size,
                 "the log's first %" PRIu64 " entries do not have the root your checkpoint "
                 "signed: an entry in 1..%" PRIu64 " was changed (the stored checkpoints narrow "
                 "it down)",
                 checkpoint->size, checkpoint->size);
        return TL_EVERIFY;
    }
    return 0;
}

int tl_audit_self_verify(const char *data_dir, const tl_audit_kept_t *kept, json_t **verdict,
                         FILE *text)
{
    char log_path[PATH_MAX_LEN], stored[PATH_MAX_LEN], key_path[PATH_MAX_LEN];
    char name[TL_NOTE_NAME_MAX + 1], reason[512] = "";
    tl_note_verifier_t verifier_buf;
    const tl_note_verifier_t *verifier = NULL;
    tl_audit_report_t report;
    tl_audit_anchor_report_t anchors;
    tl_checkpoint_t checkpoint;
    const char *category = "";
    uint64_t first = 0, last = 0;
    *verdict = NULL;
    int rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc == 0)
        rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_CHECKPOINTS, stored, sizeof stored);
    if (rc != 0)
        return rc;
    if (tl_audit_checkpoints_signer(data_dir, key_path, sizeof key_path, name) == 0 &&
        tl_audit_key_verifier(key_path, name, &verifier_buf, NULL) == 0)
        verifier = &verifier_buf;
    /* The kept bytes first: a note that does not parse is a usage error, and nothing is read. */
    int kept_rc = 0;
    if (kept != NULL) {
        kept_rc = check_kept(log_path, verifier, kept, &checkpoint, &category, reason,
                             sizeof reason, &first, &last);
        if (kept_rc == TL_EINVAL) {
            if (text != NULL)
                fprintf(text, "your checkpoint: %s\n", reason);
            return TL_EINVAL;
        }
    }
    int chain_rc = tl_audit_verify(log_path, &report);
    const char *files[1] = {stored};
    const int optional[1] = {1};
    int anchors_rc = tl_audit_anchors_verify(log_path, files, optional, 1, verifier, &anchors);
    int ok = chain_rc == 0 && anchors_rc == 0 && kept_rc == 0;
    json_t *kept_json = json_null();
    if (kept != NULL)
        kept_json =
            json_pack("{s:b, s:I, s:s?, s:I, s:I, s:s?}", "ok", kept_rc == 0, "size",
                      (json_int_t)checkpoint.size, "category", kept_rc == 0 ? NULL : category,
                      "first_entry", (json_int_t)first, "last_entry", (json_int_t)last, "reason",
                      kept_rc == 0 ? NULL : reason);
    *verdict =
        json_pack("{s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:s?, s:o, s:o}", "ok", ok, "verdict",
                  ok                                       ? "ok"
                  : chain_rc != 0 && chain_rc != TL_EPROTO ? "unreadable"
                                                           : "broken",
                  "entries", (json_int_t)report.entries, "last_hash", report.last_hash, "bad_line",
                  (json_int_t)report.bad_line, "bad_seq", (json_int_t)report.bad_seq,
                  "partial_tail_bytes", (json_int_t)report.partial_tail_bytes, "reason",
                  report.reason[0] != '\0' ? report.reason : NULL, "checkpoints",
                  anchors_json(&anchors, anchors_rc), "from_checkpoint", kept_json);
    if (*verdict == NULL)
        return TL_ENOMEM;
    if (text != NULL) {
        tl_audit_report_print(&report, chain_rc, text);
        if (anchors_rc == 0 && anchors.checked == 0)
            fprintf(text, "audit checkpoints: none to check\n");
        else if (anchors_rc == 0)
            fprintf(text,
                    "audit checkpoints OK: %" PRIu64 " checked against %" PRIu64
                    " entries, the largest of size %" PRIu64 "\n",
                    anchors.checked, anchors.log_entries, anchors.last_size);
        else if (anchors_rc == TL_EVERIFY && anchors.index == 0)
            fprintf(text, "audit checkpoints BROKEN: %s: %s\n", anchors.category, anchors.reason);
        else if (anchors_rc == TL_EVERIFY)
            fprintf(text,
                    "audit checkpoints BROKEN at checkpoint %" PRIu64 " (size %" PRIu64
                    "): %s: %s\n",
                    anchors.index, anchors.size, anchors.category, anchors.reason);
        else
            fprintf(text, "audit checkpoints not checked: %s\n", anchors.reason);
        if (kept != NULL && kept_rc == 0)
            fprintf(text,
                    "your checkpoint OK: the log of %" PRIu64 " entries extends it (size "
                    "%" PRIu64 ")\n",
                    anchors.log_entries, checkpoint.size);
        else if (kept != NULL)
            fprintf(text, "your checkpoint BROKEN (size %" PRIu64 "): %s: %s\n", checkpoint.size,
                    category, reason);
    }
    return ok ? 0 : TL_EVERIFY;
}

/* ---- a ticket's audit part of its bundle ---------------------------------------------------- */

/*
 * The tree of the checkpoint, every perfect subtree kept: level l holds the roots of the aligned
 * subtrees of 2^l leaves. Built once from the leaf hashes (about 2 hashes per leaf), it gives each
 * proof in O(log² size) instead of reading every leaf again for each.
 */
struct levels {
    tl_merkle_hash_t *level[64];
    uint64_t count[64];
};

static void levels_free(struct levels *lv)
{
    for (int l = 0; l < 64; l++)
        free(lv->level[l]);
}

static int levels_build(struct levels *lv, int leaves_fd, uint64_t size)
{
    memset(lv, 0, sizeof *lv);
    if (size == 0 || size > SIZE_MAX / TL_MERKLE_HASH_LEN)
        return TL_EINVAL;
    lv->level[0] = malloc((size_t)size * TL_MERKLE_HASH_LEN);
    if (lv->level[0] == NULL)
        return TL_ENOMEM;
    lv->count[0] = size;
    uint8_t *records = malloc(1024 * TL_AUDIT_LEAF_RECORD);
    if (records == NULL)
        return TL_ENOMEM;
    int rc = 0;
    for (uint64_t at = 0; at < size && rc == 0;) {
        uint64_t want = size - at < 1024 ? size - at : 1024;
        ssize_t got = pread(leaves_fd, records, (size_t)want * TL_AUDIT_LEAF_RECORD,
                            (off_t)(at * TL_AUDIT_LEAF_RECORD));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < TL_AUDIT_LEAF_RECORD) {
            rc = got < 0 ? -errno : TL_ETRUNCATED;
            break;
        }
        uint64_t n = (uint64_t)got / TL_AUDIT_LEAF_RECORD;
        for (uint64_t i = 0; i < n; i++)
            memcpy(lv->level[0][at + i], records + i * TL_AUDIT_LEAF_RECORD, TL_MERKLE_HASH_LEN);
        at += n;
    }
    free(records);
    for (int l = 1; rc == 0 && l < 64 && lv->count[l - 1] >= 2; l++) {
        lv->count[l] = lv->count[l - 1] / 2;
        if ((lv->level[l] = malloc((size_t)lv->count[l] * TL_MERKLE_HASH_LEN)) == NULL)
            return TL_ENOMEM;
        for (uint64_t i = 0; i < lv->count[l]; i++)
            tl_merkle_node_hash(lv->level[l - 1][2 * i], lv->level[l - 1][2 * i + 1],
                                lv->level[l][i]);
    }
    return rc;
}

static uint64_t split_of(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

/* RFC 9162 MTH(D[lo:hi]); lo is aligned as the recursion of §2.1.1 makes it. */
static void subtree(const struct levels *lv, uint64_t lo, uint64_t hi, tl_merkle_hash_t out)
{
    uint64_t n = hi - lo;
    if ((n & (n - 1)) == 0) {
        int l = __builtin_ctzll(n);
        memcpy(out, lv->level[l][lo >> l], TL_MERKLE_HASH_LEN);
        return;
    }
    uint64_t k = split_of(n);
    tl_merkle_hash_t left, right;
    subtree(lv, lo, lo + k, left);
    subtree(lv, lo + k, hi, right);
    tl_merkle_node_hash(left, right, out);
}

/* RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]), appended to path. */
static void audit_path(const struct levels *lv, uint64_t m, uint64_t lo, uint64_t hi,
                       tl_merkle_hash_t *path, size_t *count)
{
    if (hi - lo <= 1)
        return;
    uint64_t k = split_of(hi - lo);
    if (m < lo + k) {
        audit_path(lv, m, lo, lo + k, path, count);
        subtree(lv, lo + k, hi, path[(*count)++]);
    } else {
        audit_path(lv, m, lo + k, hi, path, count);
        subtree(lv, lo, lo + k, path[(*count)++]);
    }
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if entry is about the ticket or one of its items (hashes sorted). */
static int about_ticket(json_t *entry, const char *ticket, const char **hashes, size_t count)
{
    json_t *details = json_object_get(entry, "details");
    if (same(member(entry, "subject"), ticket) || same(member(details, "ticket"), ticket))
        return 1;
    const char *sha = member(details, "sha256");
    return count > 0 && sha != NULL && same(member(entry, "action"), "evidence.store") &&
           bsearch(&sha, hashes, count, sizeof *hashes, by_text) != NULL;
}

void tl_audit_export_release(tl_audit_export_t *out)
{
    if (out == NULL)
        return;
    free(out->entries);
    free(out->proofs);
    free(out->checkpoint);
    free(out->vkey);
    memset(out, 0, sizeof *out);
}

int tl_audit_export_ticket(const char *data_dir, const char *ticket, const char *const *hashes,
                           size_t hash_count, tl_audit_export_t *out, char *why, size_t why_size)
{
    char log_path[PATH_MAX_LEN], leaves_path[PATH_MAX_LEN], key_path[PATH_MAX_LEN],
        name[TL_NOTE_NAME_MAX + 1], vkey[TL_NOTE_VKEY_MAX], needle[64];
    tl_checkpoint_t checkpoint;
    tl_note_verifier_t verifier;
    struct levels lv = {0};
    struct lines reader = {.fd = -1};
    int leaves_fd = -1, reading = 0;
    const char **sorted = NULL;
    tl_buf_t *entries = tl_buf_new(TL_AUDIT_EXPORT_ENTRIES_MAX);
    json_t *list = json_array(), *doc = NULL;
    memset(out, 0, sizeof *out);
    why[0] = '\0';
    int rc = entries != NULL && list != NULL ? 0 : TL_ENOMEM;
    if (rc == 0 && hash_count > 0) {
        if ((sorted = malloc(hash_count * sizeof *sorted)) == NULL)
            rc = TL_ENOMEM;
        else {
            memcpy(sorted, hashes, hash_count * sizeof *sorted);
            qsort(sorted, hash_count, sizeof *sorted, by_text);
        }
    }
    if (rc == 0)
        rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc == 0)
        rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_LEAVES, leaves_path, sizeof leaves_path);
    if (rc == 0 && tl_format(needle, sizeof needle, "\"%s\"", ticket) != 0)
        rc = TL_EINVAL;
    if (rc != 0)
        goto out;
    /* The checkpoint, checked with the relay's own audit key: what the bundle names is signed. */
    rc = tl_audit_query_checkpoint(data_dir, &out->checkpoint, &out->checkpoint_len, NULL);
    if (rc == -ENOENT) {
        rc = TL_ESTATE;
        snprintf(why, why_size,
                 "no checkpoint yet: the relay makes one every 1000 entries or 5 "
                 "minutes");
        goto out;
    }
    size_t text_len = 0;
    if (rc == 0)
        rc = tl_audit_checkpoints_signer(data_dir, key_path, sizeof key_path, name);
    if (rc == 0)
        rc = tl_audit_key_verifier(key_path, name, &verifier, vkey);
    if (rc == 0 && (tl_note_open(out->checkpoint, out->checkpoint_len, &verifier, &text_len) != 0 ||
                    tl_checkpoint_parse(out->checkpoint, text_len, &checkpoint) != 0 ||
                    strcmp(checkpoint.origin, name) != 0 || checkpoint.size == 0))
        rc = TL_EVERIFY;
    if (rc != 0) {
        snprintf(why, why_size,
                 "the latest checkpoint cannot be read or is not signed by the "
                 "audit key (audit verify says more)");
        goto out;
    }
    size_t vkey_len = strlen(vkey);
    if ((out->vkey = malloc(vkey_len + 1)) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    memcpy(out->vkey, vkey, vkey_len);
    out->vkey[vkey_len] = '\n';
    out->vkey_len = vkey_len + 1;
    leaves_fd = open(leaves_path, O_RDONLY | O_CLOEXEC);
    rc = leaves_fd < 0 ? -errno : levels_build(&lv, leaves_fd, checkpoint.size);
    tl_merkle_hash_t root;
    if (rc == 0) {
        subtree(&lv, 0, checkpoint.size, root);
        if (memcmp(root, checkpoint.root, TL_MERKLE_HASH_LEN) != 0)
            rc = TL_EVERIFY;
    }
    if (rc == TL_ENOMEM)
        goto out;
    if (rc != 0) {
        snprintf(why, why_size,
                 "the audit leaves do not give the root of the checkpoint of size %" PRIu64
                 " (audit verify says where the log differs)",
                 checkpoint.size);
        rc = TL_EVERIFY;
        goto out;
    }
    if ((rc = lines_open(&reader, log_path)) != 0)
        goto out;
    reading = 1;
    for (uint64_t index = 0; index < checkpoint.size; index++) {
        const char *line;
        size_t len;
        int more = lines_next(&reader, &line, &len);
        if (more <= 0) {
            rc = more < 0 ? more : TL_EVERIFY;
            snprintf(why, why_size,
                     "the audit log holds %" PRIu64 " entries, fewer than the checkpoint's %" PRIu64
                     " (audit verify says more)",
                     index, checkpoint.size);
            goto out;
        }
        if (memmem(line, len, needle, strlen(needle)) == NULL &&
            (hash_count == 0 || memmem(line, len, "\"evidence.store\"", 16) == NULL))
            continue;
        json_t *entry = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
        int wanted = json_is_object(entry) && about_ticket(entry, ticket, sorted, hash_count);
        json_int_t seq = json_integer_value(json_object_get(entry, "seq"));
        json_decref(entry);
        if (!wanted)
            continue;
        tl_merkle_hash_t leaf, path[TL_MERKLE_PROOF_MAX];
        size_t count = 0;
        rc = tl_merkle_leaf_hash(line, len, leaf);
        if (rc != 0)
            goto out;
        audit_path(&lv, index, 0, checkpoint.size, path, &count);
        if (memcmp(leaf, lv.level[0][index], TL_MERKLE_HASH_LEN) != 0 ||
            tl_merkle_inclusion_verify(index, checkpoint.size, leaf, (const tl_merkle_hash_t *)path,
                                       count, checkpoint.root) != 0) {
            rc = TL_EVERIFY;
            snprintf(why, why_size,
                     "entry %" PRIu64 " cannot be proved against the checkpoint of size %" PRIu64
                     ": the log does not give its root (audit verify says where it differs)",
                     index, checkpoint.size);
            goto out;
        }
        if ((rc = tl_buf_put(entries, line, len)) != 0 ||
            (rc = tl_buf_put(entries, "\n", 1)) != 0) {
            if (rc == TL_EFULL)
                snprintf(why, why_size,
                         "the entries about %s are more than a bundle holds (%u bytes)", ticket,
                         TL_AUDIT_EXPORT_ENTRIES_MAX);
            goto out;
        }
        json_t *steps = json_array();
        for (size_t i = 0; steps != NULL && i < count; i++)
            json_array_append_new(steps, b64_json(path[i], TL_MERKLE_HASH_LEN));
        json_t *proof =
            json_pack("{s:I, s:I, s:o, s:o}", "index", (json_int_t)index, "seq", seq, "leaf_hash",
                      b64_json(leaf, TL_MERKLE_HASH_LEN), "audit_path", steps);
        if (proof == NULL || json_array_append_new(list, proof) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
        out->count++;
    }
    doc = json_pack("{s:s, s:s, s:s, s:I, s:o, s:O}", "format", "tierline-audit-proofs 1", "ticket",
                    ticket, "origin", checkpoint.origin, "tree_size", (json_int_t)checkpoint.size,
                    "root", b64_json(checkpoint.root, TL_MERKLE_HASH_LEN), "proofs", list);
    char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    out->proofs_len = strlen(text) + 1;
    char *grown = realloc(text, out->proofs_len + 1);
    if (grown == NULL) {
        free(text);
        rc = TL_ENOMEM;
        goto out;
    }
    out->proofs = grown;
    out->proofs[out->proofs_len - 1] = '\n';
    out->proofs[out->proofs_len] = '\0';
    out->tree_size = checkpoint.size;
    rc = tl_buf_take_string(entries, &out->entries, &out->entries_len);
out:
    if (reading)
        lines_close(&reader);
    if (leaves_fd >= 0)
        close(leaves_fd);
    levels_free(&lv);
    free(sorted);
    tl_buf_free(entries);
    json_decref(list);
    json_decref(doc);
    if (rc != 0) {
        if (why[0] == '\0')
            snprintf(why, why_size, "the audit log cannot be read: %s", tl_strerror(rc));
        tl_audit_export_release(out);
    }
    return rc;
}
