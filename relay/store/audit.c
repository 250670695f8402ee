/* The audit log; the format it writes and checks is docs/audit-format.md. */
#include "relay/store/audit.h"
#include "proto/fsutil.h"

#include "proto/buf.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Every line ends with these 75 bytes: `,"hash":"` + 64 hex + `"}` (format §4). */
#define HASH_PREFIX ",\"hash\":\""
#define HASH_PREFIX_LEN 9
#define HASH_SUFFIX_LEN (HASH_PREFIX_LEN + 64 + 2)
#define GENESIS_PREV "0000000000000000000000000000000000000000000000000000000000000000"
#define TIME_LEN 24 /* "2026-11-23T19:04:05.123Z" */

static const char *const member_names[] = {"seq",     "time",    "actor", "action",
                                           "subject", "details", "prev",  "hash"};
#define MEMBER_COUNT (sizeof member_names / sizeof member_names[0])

/* A handle's size before it has read the file's head: equal to no real size. */
#define SIZE_UNKNOWN UINT64_MAX

struct tl_audit {
    int fd;
    char *path;
    /* Which file fd is, to notice when the path names another one. */
    dev_t dev;
    ino_t ino;
    /* The file's size when this handle last wrote or read it (all complete
     * lines), and the chain head it read or wrote then. Other writers may
     * have appended since: appends compare the size under the lock. */
    uint64_t size;
    uint64_t last_seq;
    char last_hash[TL_AUDIT_HASH_HEX];
    /* Set when a failed fsync or an unrepairable failed write leaves the
     * file's state unknown: appending more would build on sand. */
    bool failed;
    /* TL_AUDIT_OPEN_EXTERNAL_REPAIR: a cut torn tail waits here for the
     * caller to record (tl_audit_take_repair), instead of being appended. */
    bool external_repair;
    bool repair_waiting;
    uint64_t repair_bytes;
    char repair_hash[TL_AUDIT_HASH_HEX];
    /* Why the last open, refresh or read of the head failed, for the caller. */
    char why[256];
};

/* What the stateless line check extracts for the chain checks. */
struct line_info {
    uint64_t seq;
    char prev[TL_AUDIT_HASH_HEX];
    char hash[TL_AUDIT_HASH_HEX];
};

static bool is_hash_hex(const char *text, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static bool is_time(const char *text)
{
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(text) != TIME_LEN)
        return false;
    for (size_t i = 0; i < TIME_LEN; i++) {
        if (pattern[i] == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != pattern[i])
            return false;
    }
    return true;
}

/* Nesting depth of containers under value, where value itself is at depth. */
static bool depth_within(const json_t *value, int depth)
{
    if (!json_is_object(value) && !json_is_array(value))
        return true;
    if (depth > TL_AUDIT_DETAILS_DEPTH)
        return false;
    /* jansson has no const iteration; nothing here modifies the value. */
    json_t *container = (json_t *)value;
    if (json_is_array(container)) {
        for (size_t i = 0; i < json_array_size(container); i++) {
            if (!depth_within(json_array_get(container, i), depth + 1))
                return false;
        }
        return true;
    }
    const char *key;
    json_t *member;
    json_object_foreach(container, key, member) {
        if (!depth_within(member, depth + 1))
            return false;
    }
    return true;
}

/*
 * The seq a failure report names: read from the line's first bytes, so it is
 * available even when the line is not JSON. Format §6.
 */
static uint64_t reported_seq(const char *line, size_t len)
{
    static const char prefix[] = "{\"seq\":";
    size_t at = sizeof prefix - 1;
    if (len < at || memcmp(line, prefix, at) != 0)
        return 0;
    uint64_t seq = 0;
    size_t digits = 0;
    while (at < len && line[at] >= '0' && line[at] <= '9') {
        if (++digits > 19)
            return 0;
        seq = seq * 10 + (uint64_t)(line[at] - '0');
        at++;
    }
    if (digits == 0 || at >= len || line[at] != ',' || seq > INT64_MAX)
        return 0;
    return seq;
}

/*
 * The checks on one line that need no context (format §5, steps 2–5). line
 * excludes the newline. reason gets "category: explanation" on failure.
 */
static int check_line(const char *line, size_t len, struct line_info *info, char *reason,
                      size_t reason_size)
{
    int rc = TL_EPROTO;
    json_t *root = NULL;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c > 0x7e) {
            snprintf(reason, reason_size, "not-ascii: byte 0x%02x at column %zu", c, i + 1);
            goto out;
        }
    }
    if (len < 1 + HASH_SUFFIX_LEN || line[0] != '{' ||
        memcmp(line + len - HASH_SUFFIX_LEN, HASH_PREFIX, HASH_PREFIX_LEN) != 0 ||
        !is_hash_hex(line + len - 66, 64) || memcmp(line + len - 2, "\"}", 2) != 0) {
        snprintf(reason, reason_size,
                 "no-hash-suffix: line does not end with ,\"hash\":\"<64 lowercase hex>\"}");
        goto out;
    }

    json_error_t error;
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
    if (!root || !json_is_object(root)) {
        /* jansson's text fills up to 160 bytes; the reason has room for less. */
        snprintf(reason, reason_size, "bad-json: %.100s at column %d",
                 root ? "not an object" : error.text, root ? 1 : error.column);
        goto out;
    }

    size_t index = 0;
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it), index++) {
        if (index >= MEMBER_COUNT || strcmp(json_object_iter_key(it), member_names[index]) != 0) {
            snprintf(reason, reason_size,
                     "bad-members: member %zu is not \"%s\" (required order: seq, time, actor, "
                     "action, subject, details, prev, hash)",
                     index + 1, index < MEMBER_COUNT ? member_names[index] : "(none)");
            goto out;
        }
    }
    if (index != MEMBER_COUNT) {
        snprintf(reason, reason_size, "bad-members: %zu members where 8 are required", index);
        goto out;
    }

    json_t *seq = json_object_get(root, "seq");
    json_t *time = json_object_get(root, "time");
    json_t *prev = json_object_get(root, "prev");
    json_t *hash = json_object_get(root, "hash");
    json_t *details = json_object_get(root, "details");
    const char *bad = NULL;
    if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        bad = "seq is not an integer from 1 to 2^63-1";
    else if (!json_is_string(time) || !is_time(json_string_value(time)))
        bad = "time is not YYYY-MM-DDTHH:MM:SS.mmmZ";
    else if (!json_is_string(json_object_get(root, "actor")) ||
             !json_is_string(json_object_get(root, "action")) ||
             !json_is_string(json_object_get(root, "subject")))
        bad = "actor, action and subject must be strings";
    else if (!json_is_object(details))
        bad = "details is not an object";
    else if (!depth_within(details, 1))
        bad = "details nests deeper than 32 levels";
    else if (!json_is_string(prev) ||
             !is_hash_hex(json_string_value(prev), json_string_length(prev)))
        bad = "prev is not 64 lowercase hex digits";
    else if (!json_is_string(hash) || json_string_length(hash) != 64 ||
             memcmp(json_string_value(hash), line + len - 66, 64) != 0)
        bad = "hash member differs from the line's last 64 hex digits";
    if (bad) {
        snprintf(reason, reason_size, "bad-type: %s", bad);
        goto out;
    }

    info->seq = (uint64_t)json_integer_value(seq);
    memcpy(info->prev, json_string_value(prev), TL_AUDIT_HASH_HEX);
    memcpy(info->hash, json_string_value(hash), TL_AUDIT_HASH_HEX);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Step 8 of format §5: the stored hash is SHA-256 of the line's BODY. */
static int check_hash(const char *line, size_t len, const struct line_info *info, char *reason,
                      size_t reason_size)
{
    char computed[TL_AUDIT_HASH_HEX];
    int rc = tl_sha256_hex(line, len - HASH_SUFFIX_LEN, computed);
    if (rc < 0)
        return rc;
    if (strcmp(computed, info->hash) != 0) {
        snprintf(reason, reason_size, "bad-hash: stored %.16s..., SHA-256 of the body is %.16s...",
                 info->hash, computed);
        return TL_EPROTO;
    }
    return 0;
}

/* Identifiers: bounded, UTF-8 (checked by jansson), no control characters. */
static bool is_field_text(const char *text, size_t max, bool may_be_empty)
{
    size_t len = strlen(text);
    if (len > max || (len == 0 && !may_be_empty))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool is_action(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > TL_AUDIT_ACTION_MAX || text[0] == '.' || text[0] == '_' || text[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)

/*
 * json_dumps with the writer's flags, plus one fix: JSON_ENSURE_ASCII leaves
 * DEL (0x7f) raw, and a line must be printable ASCII only (format §4). Raw
 * 0x7f can only occur inside a string, where \u007F means the same.
 */
static char *dump_ascii(const json_t *value)
{
    char *text = json_dumps(value, DUMP_FLAGS);
    if (!text)
        return NULL;
    size_t dels = 0, len = strlen(text);
    for (size_t i = 0; i < len; i++)
        dels += text[i] == 0x7f;
    if (dels == 0)
        return text;
    char *escaped = malloc(len + dels * 5 + 1);
    if (escaped) {
        char *at = escaped;
        for (size_t i = 0; i < len; i++) {
            if (text[i] == 0x7f) {
                memcpy(at, "\\u007F", 6);
                at += 6;
            } else {
                *at++ = text[i];
            }
        }
        *at = '\0';
    }
    free(text);
    return escaped;
}

/* Appends ,"name":<value as compact ASCII JSON>. */
static int put_member(tl_buf_t *body, const char *name, const json_t *value)
{
    int rc = 0;
    char *text = dump_ascii(value);
    if (!text)
        return TL_EINVAL;
    if (tl_buf_put(body, ",\"", 2) < 0 || tl_buf_put(body, name, strlen(name)) < 0 ||
        tl_buf_put(body, "\":", 2) < 0 || tl_buf_put(body, text, strlen(text)) < 0)
        rc = TL_EFULL;
    free(text);
    return rc;
}

static int put_string_member(tl_buf_t *body, const char *name, const char *value)
{
    /* json_string refuses invalid UTF-8, which makes it our UTF-8 check. */
    json_t *string = json_string(value);
    if (!string)
        return TL_EINVAL;
    int rc = put_member(body, name, string);
    json_decref(string);
    return rc;
}

int tl_audit_format_line(uint64_t seq, const char *time, const char *actor, const char *action,
                         const char *subject, const json_t *details, const char *prev,
                         char **line_out, size_t *len_out)
{
    int rc = TL_EINVAL;
    tl_buf_t *body = NULL;
    json_t *empty = NULL;
    char *details_text = NULL;
    char *line = NULL;
    *line_out = NULL;

    if (!subject)
        subject = "";
    if (seq < 1 || seq > INT64_MAX || !time || !is_time(time) || !actor ||
        !is_field_text(actor, TL_AUDIT_ACTOR_MAX, false) || !action || !is_action(action) ||
        !is_field_text(subject, TL_AUDIT_SUBJECT_MAX, true) || !prev ||
        !is_hash_hex(prev, strlen(prev)))
        goto out;
    if (!details) {
        details = empty = json_object();
        if (!empty) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    if (!json_is_object(details) || !depth_within(details, 1))
        goto out;
    /* Measured as written: escaping for ASCII can make text six times longer. */
    details_text = dump_ascii(details);
    if (!details_text || strlen(details_text) > TL_AUDIT_DETAILS_MAX)
        goto out;

    rc = TL_ENOMEM;
    body = tl_buf_new(TL_AUDIT_LINE_MAX);
    if (!body)
        goto out;
    char number[32];
    int number_len = snprintf(number, sizeof number, "{\"seq\":%" PRIu64, seq);
    if (tl_buf_put(body, number, (size_t)number_len) < 0)
        goto out;
    rc = put_string_member(body, "time", time);
    if (rc == 0)
        rc = put_string_member(body, "actor", actor);
    if (rc == 0)
        rc = put_string_member(body, "action", action);
    if (rc == 0)
        rc = put_string_member(body, "subject", subject);
    if (rc < 0)
        goto out;
    rc = TL_ENOMEM;
    if (tl_buf_put(body, ",\"details\":", 11) < 0 ||
        tl_buf_put(body, details_text, strlen(details_text)) < 0 ||
        tl_buf_put(body, ",\"prev\":\"", 9) < 0 || tl_buf_put(body, prev, 64) < 0 ||
        tl_buf_put(body, "\"", 1) < 0)
        goto out;

    size_t body_len = tl_buf_len(body);
    size_t line_len = body_len + HASH_SUFFIX_LEN + 1;
    line = malloc(line_len + 1);
    if (!line)
        goto out;
    memcpy(line, tl_buf_data(body), body_len);
    memcpy(line + body_len, HASH_PREFIX, HASH_PREFIX_LEN);
    rc = tl_sha256_hex(line, body_len, line + body_len + HASH_PREFIX_LEN);
    if (rc < 0)
        goto out;
    memcpy(line + body_len + HASH_PREFIX_LEN + 64, "\"}\n", 4);

    /* What we write must pass our own verifier: this catches what the field
     * checks cannot see, such as a NUL inside a details string, which jansson
     * writes as \u0000 but refuses to read back. */
    struct line_info info;
    char reason[160];
    if (check_line(line, line_len - 1, &info, reason, sizeof reason) < 0) {
        rc = TL_EINVAL;
        goto out;
    }
    *line_out = line;
    *len_out = line_len;
    line = NULL;
    rc = 0;
out:
    free(line);
    free(details_text);
    json_decref(empty);
    tl_buf_free(body);
    return rc;
}

static void format_now(char out[TIME_LEN + 1])
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t used = strftime(out, TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(out + used, TIME_LEN + 1 - used, ".%03ldZ", now.tv_nsec / 1000000);
}

static int fsync_parent_dir(const char *path)
{
    int rc = 0;
    char *dir = strdup(path);
    if (!dir)
        return TL_ENOMEM;
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) < 0)
        rc = -errno;
    if (dir_fd >= 0)
        close(dir_fd);
    free(dir);
    return rc;
}

static int read_exact_at(int fd, void *buf, size_t len, uint64_t offset)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return TL_ETRUNCATED;
        done += (size_t)n;
    }
    return 0;
}

/*
 * Finds where the last '\n' before end is (the start of the text after it),
 * looking back at most TL_AUDIT_LINE_MAX bytes. *found is false if there is
 * none in that window.
 */
static int find_line_start(int fd, char *window, uint64_t end, uint64_t *start, bool *found)
{
    uint64_t window_len = end < TL_AUDIT_LINE_MAX ? end : TL_AUDIT_LINE_MAX;
    int rc = read_exact_at(fd, window, (size_t)window_len, end - window_len);
    if (rc < 0)
        return rc;
    char *newline = memrchr(window, '\n', (size_t)window_len);
    *found = newline != NULL;
    *start = newline ? end - window_len + (uint64_t)(newline - window) + 1 : end - window_len;
    return 0;
}

/*
 * Cuts off an unterminated last line (format §7). *removed is how many bytes
 * went, removed_hash their SHA-256 (for the repair entry).
 */
static int repair_tail(tl_audit_t *audit, char *window, uint64_t *removed,
                       char removed_hash[TL_AUDIT_HASH_HEX])
{
    uint64_t tail_start;
    bool found;
    *removed = 0;
    int rc = find_line_start(audit->fd, window, audit->size, &tail_start, &found);
    if (rc < 0)
        return rc;
    uint64_t tail_len = audit->size - tail_start;
    if (tail_len == 0)
        return 0;
    if (tail_len >= TL_AUDIT_LINE_MAX) {
        /* Longer than any line we write: not a torn write of ours. */
        tl_log_error("audit log ends in an overlong unterminated line path=%s", audit->path);
        snprintf(audit->why, sizeof audit->why,
                 "it ends in %" PRIu64 " bytes without a line feed, too many to be a write "
                 "interrupted by a crash",
                 tail_len);
        return TL_EPROTO;
    }
    rc = read_exact_at(audit->fd, window, (size_t)tail_len, tail_start);
    if (rc == 0)
        rc = tl_sha256_hex(window, (size_t)tail_len, removed_hash);
    if (rc < 0)
        return rc;
    if (ftruncate(audit->fd, (off_t)tail_start) < 0 || fdatasync(audit->fd) < 0)
        return -errno;
    tl_log_warn("audit log ended in a partial line, removed it path=%s bytes=%" PRIu64 " sha256=%s",
                audit->path, tail_len, removed_hash);
    audit->size = tail_start;
    *removed = tail_len;
    return 0;
}

/* Reads the last complete line and takes the chain head from it. */
static int load_head(tl_audit_t *audit, char *window, uint64_t size)
{
    if (size == 0) {
        audit->last_seq = 0;
        memcpy(audit->last_hash, GENESIS_PREV, TL_AUDIT_HASH_HEX);
        return 0;
    }
    uint64_t start;
    bool found;
    /* size - 1 skips the last line's own newline. */
    int rc = find_line_start(audit->fd, window, size - 1, &start, &found);
    if (rc < 0)
        return rc;
    if (!found && start != 0) {
        tl_log_error("audit log's last line is too long path=%s", audit->path);
        snprintf(audit->why, sizeof audit->why, "its last line is longer than %d bytes",
                 TL_AUDIT_LINE_MAX);
        return TL_EPROTO;
    }
    size_t line_len = (size_t)(size - 1 - start);
    rc = read_exact_at(audit->fd, window, line_len, start);
    if (rc < 0)
        return rc;
    struct line_info info;
    char reason[160];
    rc = check_line(window, line_len, &info, reason, sizeof reason);
    if (rc == 0)
        rc = check_hash(window, line_len, &info, reason, sizeof reason);
    if (rc == TL_EPROTO) {
        tl_log_error("audit log's last line fails its check, not appending path=%s reason=%s",
                     audit->path, reason);
        uint64_t seq = reported_seq(window, line_len);
        if (seq > 0)
            snprintf(audit->why, sizeof audit->why,
                     "its last entry (seq %" PRIu64 ") fails its own check: %s", seq, reason);
        else
            snprintf(audit->why, sizeof audit->why, "its last line fails its check: %s", reason);
        return rc;
    }
    if (rc < 0)
        return rc;
    audit->last_seq = info.seq;
    memcpy(audit->last_hash, info.hash, TL_AUDIT_HASH_HEX);
    return 0;
}

/*
 * Formats count entries as the lines that follow seq and prev_hash, appended
 * to batch (one buffer: one write). last_hash gets the hash of the last line.
 */
static int format_batch(const tl_audit_entry_t *entries, size_t count, uint64_t seq,
                        const char *prev_hash, tl_buf_t *batch, char last_hash[TL_AUDIT_HASH_HEX])
{
    int rc = 0;
    char *line = NULL;
    char prev[TL_AUDIT_HASH_HEX];

    memcpy(prev, prev_hash, TL_AUDIT_HASH_HEX);
    for (size_t i = 0; i < count; i++) {
        char now[TIME_LEN + 1];
        size_t line_len;
        format_now(now);
        rc = tl_audit_format_line(seq + 1 + i, now, entries[i].actor, entries[i].action,
                                  entries[i].subject, entries[i].details, prev, &line, &line_len);
        if (rc < 0)
            goto out;
        /* tl_buf doubles: a batch of thousands of lines is not copied once per line. */
        if (tl_buf_put(batch, line, line_len) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
        /* The new line's hash sits just before its closing `"}\n`. */
        memcpy(prev, line + line_len - 67, 64);
        prev[64] = '\0';
        free(line);
        line = NULL;
    }
    memcpy(last_hash, prev, TL_AUDIT_HASH_HEX);
out:
    free(line);
    return rc;
}

/*
 * With the lock held and the handle's head current: appends a formatted
 * batch with one write and one fsync (format §7), and moves the head.
 */
static int write_locked(tl_audit_t *audit, const char *batch, size_t batch_len,
                        tl_audit_entry_t *entries, size_t count, const char *batch_last_hash)
{
    if (audit->failed)
        return TL_EIO;
    /* One write per batch (normally one syscall), so a crash tears at most
     * the last line, which the next writer to take the lock removes. */
    int rc = tl_write_all(audit->fd, batch, batch_len);
    if (rc < 0) {
        /* The lock is held and the size was read under it, so audit->size is
         * where this write began: cutting back to it removes only our bytes. */
        if (ftruncate(audit->fd, (off_t)audit->size) < 0) {
            audit->failed = true;
            tl_log_error("audit log write failed and could not be undone path=%s reason=%s",
                         audit->path, tl_strerror(rc));
        }
        return rc;
    }
    if (fdatasync(audit->fd) < 0) {
        /* After a failed fsync the kernel may have dropped the pages: what is
         * on disk is unknown until the file is read again (reopen). */
        rc = -errno;
        audit->failed = true;
        tl_log_error("audit log fsync failed, refusing further appends path=%s reason=%s",
                     audit->path, tl_strerror(rc));
        return rc;
    }
    audit->size += batch_len;
    for (size_t i = 0; i < count; i++)
        entries[i].seq = audit->last_seq + 1 + i;
    audit->last_seq += count;
    memcpy(audit->last_hash, batch_last_hash, TL_AUDIT_HASH_HEX);
    return 0;
}

/* With the lock held and the head current: formats and writes. */
static int append_locked(tl_audit_t *audit, tl_audit_entry_t *entries, size_t count)
{
    char batch_last_hash[TL_AUDIT_HASH_HEX];
    /* No cap but memory: the batch is what the caller handed over. */
    tl_buf_t *batch = tl_buf_new(SIZE_MAX);
    int rc = batch == NULL ? TL_ENOMEM
                           : format_batch(entries, count, audit->last_seq, audit->last_hash, batch,
                                          batch_last_hash);
    if (rc == 0)
        rc = write_locked(audit, (const char *)tl_buf_data(batch), tl_buf_len(batch), entries,
                          count, batch_last_hash);
    tl_buf_free(batch);
    return rc;
}

/*
 * With the lock held: takes the chain head from the file, which is size bytes
 * long, after cutting off a torn write (format §7), and records any such cut.
 * This is what open does, and what an append does when the file changed under
 * it. If it fails the size stays unknown, so the next append tries again
 * instead of chaining onto a stale head.
 */
static int catch_up(tl_audit_t *audit, uint64_t size)
{
    uint64_t removed = 0;
    char removed_hash[TL_AUDIT_HASH_HEX];
    int rc = TL_ENOMEM;
    char *window = malloc(TL_AUDIT_LINE_MAX);
    audit->size = size;
    if (window) {
        rc = repair_tail(audit, window, &removed, removed_hash);
        if (rc == 0)
            rc = load_head(audit, window, audit->size);
        free(window);
    }
    if (rc < 0) {
        audit->size = SIZE_UNKNOWN;
        return rc;
    }
    if (removed > 0 && audit->external_repair) {
        /* The caller records it, in its own order (relay/store/audit_chain.c). */
        audit->repair_bytes += removed;
        memcpy(audit->repair_hash, removed_hash, TL_AUDIT_HASH_HEX);
        audit->repair_waiting = true;
    } else if (removed > 0) {
        /* A repair changes the file, so it is itself on the record. */
        json_t *details = json_pack("{s:I,s:s}", "removed_bytes", (json_int_t)removed,
                                    "removed_sha256", removed_hash);
        tl_audit_entry_t entry = {
            .actor = "relay", .action = "audit.repair", .subject = "", .details = details};
        rc = details ? append_locked(audit, &entry, 1) : TL_ENOMEM;
        json_decref(details);
    }
    return rc;
}

/*
 * Every writer, in every process, takes this lock for one open or one
 * append and releases it before returning, so a writer waits at most for
 * the appends already queued on it: one write and fsync each.
 */
static int lock_log(int fd)
{
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

static void unlock_log(int fd)
{
    /* It cannot fail on an open descriptor, and closing it unlocks anyway. */
    (void)flock(fd, LOCK_UN);
}

/* Does path (not following a symlink) name the file dev/ino? */
static bool path_names(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/*
 * Opens the log at path (creating it, mode 0600, if may_create) and locks it.
 * The lock only counts once the file is confirmed to be still the one the
 * path names: a file replaced between open and lock is dropped and the path
 * opened again. On success *fd_out is locked and *st_out describes it.
 */
static int open_log(const char *path, bool may_create, int *fd_out, struct stat *st_out)
{
    int rc = 0;
    int fd = -1;
    bool created = false;
    *fd_out = -1;

    for (int attempt = 1;; attempt++) {
        if (attempt > 8) {
            /* Only something replacing or removing the file in a loop gets here. */
            rc = -EAGAIN;
            goto out;
        }
        created = false;
        fd = -1;
        if (may_create) {
            fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            created = fd >= 0;
        }
        if (fd < 0 && (!may_create || errno == EEXIST))
            fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            rc = -errno;
            if (rc == -ENOENT && may_create)
                continue; /* removed between the two opens */
            goto out;
        }
        rc = lock_log(fd);
        if (rc < 0)
            goto out;
        if (fstat(fd, st_out) < 0) {
            rc = -errno;
            goto out;
        }
        if (path_names(path, st_out->st_dev, st_out->st_ino))
            break;
        close(fd);
        fd = -1;
    }
    if (!S_ISREG(st_out->st_mode)) {
        rc = TL_EINVAL;
        goto out;
    }
    if ((st_out->st_mode & 077) != 0) {
        tl_log_warn("audit log was readable by others, tightening to 0600 path=%s", path);
        if (fchmod(fd, 0600) < 0) {
            rc = -errno;
            goto out;
        }
    }
    if (created) {
        /* The first entry is only durable if the file's name is. */
        rc = fsync_parent_dir(path);
        if (rc < 0)
            goto out;
    }
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd); /* and with it the lock */
    return rc;
}

/*
 * With the lock held: makes the handle's view of the file current. Since
 * this handle last looked, other writers may have appended (the size grew),
 * died in the middle of a write (a torn line to cut), or the path may name
 * another file (replaced or removed by hand). Writers only ever append, so
 * an unchanged size on the same file means unchanged contents.
 */
static int refresh(tl_audit_t *audit)
{
    struct stat st;
    int rc;
    if (!path_names(audit->path, audit->dev, audit->ino)) {
        tl_log_warn("audit log is not the file this writer had open, reopening path=%s",
                    audit->path);
        int fd;
        /* Never hold two of these locks: let go of the old file first. */
        unlock_log(audit->fd);
        rc = open_log(audit->path, false, &fd, &st);
        if (rc < 0) {
            /* A vanished log is not recreated behind the operator's back: a
             * new chain from seq 1 would hide that the old one is gone. */
            tl_log_error("audit log cannot be reopened, not appending path=%s reason=%s",
                         audit->path, tl_strerror(rc));
            snprintf(audit->why, sizeof audit->why,
                     "%s was replaced or removed, and cannot be opened again: %s", audit->path,
                     tl_strerror(rc));
            return rc;
        }
        close(audit->fd);
        audit->fd = fd;
        audit->dev = st.st_dev;
        audit->ino = st.st_ino;
        audit->size = SIZE_UNKNOWN;
    } else if (fstat(audit->fd, &st) < 0) {
        rc = -errno;
        snprintf(audit->why, sizeof audit->why, "cannot read %s: %s", audit->path, tl_strerror(rc));
        return rc;
    }

    uint64_t size = (uint64_t)st.st_size;
    if (size == audit->size)
        return 0;
    if (audit->size != SIZE_UNKNOWN && size < audit->size)
        tl_log_error("audit log shrank since this writer last saw it path=%s was=%" PRIu64
                     " now=%" PRIu64,
                     audit->path, audit->size, size);
    return catch_up(audit, size);
}

int tl_audit_open(const char *path, tl_audit_t **out)
{
    return tl_audit_open_ex(path, 0, out, NULL, 0);
}

int tl_audit_open_ex(const char *path, unsigned flags, tl_audit_t **out, char *why, size_t why_size)
{
    int rc = TL_ENOMEM;
    tl_audit_t *audit = NULL;
    *out = NULL;
    if (why != NULL && why_size > 0)
        why[0] = '\0';

    if (!path || !*path)
        return TL_EINVAL;
    audit = calloc(1, sizeof *audit);
    if (!audit)
        goto out;
    audit->fd = -1;
    audit->external_repair = (flags & TL_AUDIT_OPEN_EXTERNAL_REPAIR) != 0;
    audit->path = strdup(path);
    if (!audit->path)
        goto out;

    struct stat st;
    rc = open_log(path, (flags & TL_AUDIT_OPEN_EXISTING) == 0, &audit->fd, &st);
    if (rc < 0) {
        snprintf(audit->why, sizeof audit->why, "cannot open %s: %s", path, tl_strerror(rc));
        goto out;
    }
    audit->dev = st.st_dev;
    audit->ino = st.st_ino;
    rc = catch_up(audit, (uint64_t)st.st_size);
    unlock_log(audit->fd);
    if (rc < 0)
        goto out;
    *out = audit;
    audit = NULL;
out:
    if (audit != NULL && why != NULL && why_size > 0)
        snprintf(why, why_size, "%s", audit->why[0] ? audit->why : tl_strerror(rc));
    tl_audit_close(audit);
    return rc;
}

void tl_audit_close(tl_audit_t *audit)
{
    if (!audit)
        return;
    if (audit->fd >= 0)
        close(audit->fd);
    free(audit->path);
    free(audit);
}

uint64_t tl_audit_last_seq(const tl_audit_t *audit)
{
    return audit->last_seq;
}

const char *tl_audit_last_hash(const tl_audit_t *audit)
{
    return audit->last_hash;
}

int tl_audit_append_batch(tl_audit_t *audit, tl_audit_entry_t *entries, size_t count)
{
    int rc = 0;
    tl_buf_t *batch = NULL;
    char batch_last_hash[TL_AUDIT_HASH_HEX];

    if (!audit || (!entries && count > 0))
        return TL_EINVAL;
    if (audit->failed)
        return TL_EIO;
    if (count == 0)
        return 0;
    /* No cap but memory: the batch is what the caller handed over. */
    if ((batch = tl_buf_new(SIZE_MAX)) == NULL)
        return TL_ENOMEM;

    /* Format everything before taking the lock, against the head this handle
     * last saw: one bad entry means nothing is written and no other writer
     * waits for it. If another writer moved the head meanwhile, the batch is
     * formatted again under the lock. */
    uint64_t formatted_seq = audit->last_seq;
    char formatted_prev[TL_AUDIT_HASH_HEX];
    memcpy(formatted_prev, audit->last_hash, TL_AUDIT_HASH_HEX);
    rc = format_batch(entries, count, formatted_seq, formatted_prev, batch, batch_last_hash);
    if (rc < 0)
        goto out;

    rc = lock_log(audit->fd);
    if (rc < 0)
        goto out;
    rc = refresh(audit);
    if (rc == 0 &&
        (audit->last_seq != formatted_seq || strcmp(audit->last_hash, formatted_prev) != 0)) {
        tl_buf_reset(batch);
        rc =
            format_batch(entries, count, audit->last_seq, audit->last_hash, batch, batch_last_hash);
    }
    if (rc == 0)
        rc = write_locked(audit, (const char *)tl_buf_data(batch), tl_buf_len(batch), entries,
                          count, batch_last_hash);
    unlock_log(audit->fd);
out:
    tl_buf_free(batch);
    return rc;
}

int tl_audit_check_entry(const tl_audit_entry_t *entry)
{
    if (!entry)
        return TL_EINVAL;
    char *line;
    size_t line_len;
    /* The seq, time and prev the writer adds are always valid: only the
     * caller's fields can fail, whatever values those take. */
    int rc = tl_audit_format_line(1, "2000-01-01T00:00:00.000Z", entry->actor, entry->action,
                                  entry->subject, entry->details, GENESIS_PREV, &line, &line_len);
    if (rc == 0)
        free(line);
    return rc;
}

int tl_audit_append(tl_audit_t *audit, const char *actor, const char *action, const char *subject,
                    json_t *details, uint64_t *seq_out)
{
    tl_audit_entry_t entry = {
        .actor = actor, .action = action, .subject = subject, .details = details};
    int rc = tl_audit_append_batch(audit, &entry, 1);
    if (rc == 0 && seq_out)
        *seq_out = entry.seq;
    return rc;
}

/* ---- keeping the log in step with a head recorded elsewhere (relay/store/audit_chain.h)
 * ---------- */

int tl_audit_take_repair(tl_audit_t *audit, uint64_t *bytes, char sha256[TL_AUDIT_HASH_HEX])
{
    if (!audit || !audit->repair_waiting)
        return 0;
    *bytes = audit->repair_bytes;
    memcpy(sha256, audit->repair_hash, TL_AUDIT_HASH_HEX);
    audit->repair_waiting = false;
    audit->repair_bytes = 0;
    return 1;
}

int tl_audit_format_entry(const tl_audit_entry_t *entry, uint64_t seq, const char *prev,
                          char **line_out, size_t *len_out)
{
    char now[TIME_LEN + 1];
    format_now(now);
    return tl_audit_format_line(seq, now, entry->actor, entry->action, entry->subject,
                                entry->details, prev, line_out, len_out);
}

int tl_audit_line_links(const char *line, size_t len, char hash[TL_AUDIT_HASH_HEX],
                        char prev[TL_AUDIT_HASH_HEX])
{
    /* BODY ends with `"prev":"<64 hex>"`; the line ends with the hash suffix and a newline. */
    static const char prev_member[] = "\"prev\":\"";
    size_t prev_len = sizeof prev_member - 1;
    if (len < 2 + HASH_SUFFIX_LEN + prev_len + 65 || line[len - 1] != '\n')
        return TL_EINVAL;
    size_t body_len = len - 1 - HASH_SUFFIX_LEN;
    const char *suffix = line + body_len;
    const char *prev_at = line + body_len - 65;
    if (memcmp(suffix, HASH_PREFIX, HASH_PREFIX_LEN) != 0 ||
        !is_hash_hex(suffix + HASH_PREFIX_LEN, 64) || !is_hash_hex(prev_at, 64) ||
        prev_at[64] != '"' || memcmp(prev_at - prev_len, prev_member, prev_len) != 0)
        return TL_EINVAL;
    memcpy(hash, suffix + HASH_PREFIX_LEN, 64);
    hash[64] = '\0';
    memcpy(prev, prev_at, 64);
    prev[64] = '\0';
    return 0;
}

/* How far back a check may look for an entry another writer appended over: 64 MiB. */
#define LOOK_BACK_MAX (64ull * 1024 * 1024)

/*
 * With the lock held and the head current: the hash of the entry with this seq, found by
 * walking back from the end (the log is in order: seq n is the (last_seq - n + 1)th line from
 * the end). TL_ENOTFOUND if that line is not there or is not seq, or lies too far back.
 */
static int hash_at_locked(tl_audit_t *audit, uint64_t seq, char hash[TL_AUDIT_HASH_HEX])
{
    int rc = 0;
    char *window = NULL;
    if (seq == 0 || seq > audit->last_seq)
        return TL_ENOTFOUND;
    if (seq == audit->last_seq) {
        memcpy(hash, audit->last_hash, TL_AUDIT_HASH_HEX);
        return 0;
    }
    window = malloc(TL_AUDIT_LINE_MAX);
    if (!window)
        return TL_ENOMEM;
    /* Line k from the end ends at the k-th newline from the end. */
    uint64_t want = audit->last_seq - seq + 1, newlines = 0, pos = audit->size;
    uint64_t line_end = 0, line_start = 0;
    bool have_end = false, have_start = false;
    while (pos > 0 && !have_start) {
        if (audit->size - pos > LOOK_BACK_MAX) {
            rc = TL_ENOTFOUND;
            goto out;
        }
        size_t chunk = pos < 65536 ? (size_t)pos : 65536;
        rc = read_exact_at(audit->fd, window, chunk, pos - chunk);
        if (rc < 0)
            goto out;
        for (size_t i = chunk; i-- > 0;) {
            if (window[i] != '\n')
                continue;
            newlines++;
            if (newlines == want) {
                line_end = pos - chunk + i; /* the newline itself */
                have_end = true;
            } else if (newlines == want + 1) {
                line_start = pos - chunk + i + 1;
                have_start = true;
                break;
            }
        }
        pos -= chunk;
    }
    if (!have_end) {
        rc = TL_ENOTFOUND;
        goto out;
    }
    if (!have_start)
        line_start = 0;
    size_t line_len = (size_t)(line_end - line_start);
    if (line_len + 1 > TL_AUDIT_LINE_MAX) {
        rc = TL_ENOTFOUND;
        goto out;
    }
    rc = read_exact_at(audit->fd, window, line_len, line_start);
    if (rc < 0)
        goto out;
    struct line_info info;
    char reason[160];
    rc = check_line(window, line_len, &info, reason, sizeof reason);
    if (rc == 0)
        rc = check_hash(window, line_len, &info, reason, sizeof reason);
    if (rc == TL_EPROTO || (rc == 0 && info.seq != seq)) {
        rc = TL_ENOTFOUND;
        goto out;
    }
    if (rc == 0)
        memcpy(hash, info.hash, TL_AUDIT_HASH_HEX);
out:
    free(window);
    return rc;
}

int tl_audit_hash_at(tl_audit_t *audit, uint64_t seq, char hash[TL_AUDIT_HASH_HEX])
{
    if (!audit)
        return TL_EINVAL;
    int rc = lock_log(audit->fd);
    if (rc < 0)
        return rc;
    rc = refresh(audit);
    if (rc == 0)
        rc = hash_at_locked(audit, seq, hash);
    unlock_log(audit->fd);
    return rc;
}

static void short_hash(const char *hash, char out[17])
{
    snprintf(out, 17, "%.16s", hash);
}

int tl_audit_compare(uint64_t log_seq, const char *log_hash, const tl_audit_target_t *target,
                     tl_audit_problem_t *problem)
{
    char head_short[17], expect_short[17], log_short[17];
    const char *expect = NULL;
    uint64_t first = target->count > 0 ? target->lines[0].seq : target->head_seq + 1;
    short_hash(target->head_hash, head_short);
    short_hash(log_hash, log_short);
    problem->verdict = TL_AUDIT_IN_STEP;
    problem->log_seq = log_seq;
    if (problem->log_hash != log_hash) /* callers may pass the problem's own copy */
        snprintf(problem->log_hash, sizeof problem->log_hash, "%s", log_hash);
    problem->text[0] = '\0';

    if (log_seq > target->head_seq) {
        problem->verdict = TL_AUDIT_AHEAD;
        snprintf(problem->text, sizeof problem->text,
                 "audit log goes on past the database's head: it ends at seq %" PRIu64
                 " (hash %s...) but the database head is seq %" PRIu64 " (hash %s...): %" PRIu64
                 " entries the database does not know",
                 log_seq, log_short, target->head_seq, head_short, log_seq - target->head_seq);
        return TL_EAUDIT;
    }
    if (log_seq + 1 < first) {
        problem->verdict = TL_AUDIT_SHORT;
        if (log_seq == 0)
            snprintf(problem->text, sizeof problem->text,
                     "audit log is empty but the database head is seq %" PRIu64
                     " (hash %s...): %" PRIu64 " %s missing",
                     target->head_seq, head_short, first - 1, first - 1 == 1 ? "entry" : "entries");
        else
            snprintf(problem->text, sizeof problem->text,
                     "audit log ends at seq %" PRIu64 " but the database head is seq %" PRIu64
                     " (hash %s...): %" PRIu64 " %s missing",
                     log_seq, target->head_seq, head_short, first - 1 - log_seq,
                     first - 1 - log_seq == 1 ? "entry" : "entries");
        return TL_EAUDIT;
    }
    if (log_seq == 0)
        expect = GENESIS_PREV;
    else if (log_seq >= first)
        expect = target->lines[log_seq - first].hash;
    else if (target->count > 0)
        expect = target->lines[0].prev; /* log_seq == first - 1 */
    else
        expect = target->head_hash; /* log_seq == head_seq */
    if (log_seq > 0 && strcmp(expect, log_hash) != 0) {
        problem->verdict = TL_AUDIT_DIVERGES;
        short_hash(expect, expect_short);
        snprintf(problem->text, sizeof problem->text,
                 "audit log diverges from the database at seq %" PRIu64
                 ": the log's entry has hash %s..., the database recorded %s... (database head "
                 "seq %" PRIu64 ", hash %s...)",
                 log_seq, log_short, expect_short, target->head_seq, head_short);
        return TL_EAUDIT;
    }
    return 0;
}

/* The target's lines must themselves be one piece of chain ending at its head. */
static int target_valid(const tl_audit_target_t *target)
{
    if (target->head_hash == NULL || !is_hash_hex(target->head_hash, strlen(target->head_hash)))
        return 0;
    for (size_t i = 0; i < target->count; i++) {
        const tl_audit_line_t *line = &target->lines[i];
        if (line->seq == 0 || line->text == NULL || line->len < 2 ||
            line->text[line->len - 1] != '\n')
            return 0;
        if (i > 0 && (line->seq != target->lines[i - 1].seq + 1 ||
                      strcmp(line->prev, target->lines[i - 1].hash) != 0))
            return 0;
    }
    if (target->count > 0 &&
        (target->lines[target->count - 1].seq != target->head_seq ||
         strcmp(target->lines[target->count - 1].hash, target->head_hash) != 0))
        return 0;
    return 1;
}

int tl_audit_sync(tl_audit_t *audit, const tl_audit_target_t *target, tl_audit_problem_t *problem)
{
    int rc;
    char *batch = NULL;
    memset(problem, 0, sizeof *problem);
    if (!audit || !target || !target_valid(target))
        return TL_EINVAL;

    rc = lock_log(audit->fd);
    if (rc < 0)
        goto unreadable;
    if (audit->failed) {
        /* After a failed fsync only the file can say what it holds: read it again. The lines
         * it lacks are still in the target, so nothing is lost by starting over. */
        audit->failed = false;
        audit->size = SIZE_UNKNOWN;
    }
    audit->why[0] = '\0';
    rc = refresh(audit);
    if (rc < 0) {
        unlock_log(audit->fd);
        if (rc == TL_EPROTO) {
            problem->verdict = TL_AUDIT_DAMAGED;
            snprintf(problem->text, sizeof problem->text,
                     "audit log %s cannot be continued: %s; the database head is seq %" PRIu64
                     " (hash %.16s...)",
                     audit->path, audit->why[0] ? audit->why : "its last line is damaged",
                     target->head_seq, target->head_hash);
            return TL_EAUDIT;
        }
        goto unreadable;
    }
    problem->log_seq = audit->last_seq;
    memcpy(problem->log_hash, audit->last_hash, TL_AUDIT_HASH_HEX);

    if (audit->last_seq > target->head_seq) {
        /* Someone appended past this target: fine if the target's head is in the log. */
        char hash[TL_AUDIT_HASH_HEX];
        rc = target->head_seq == 0 ? 0 : hash_at_locked(audit, target->head_seq, hash);
        unlock_log(audit->fd);
        if (rc == 0 && target->head_seq > 0 && strcmp(hash, target->head_hash) != 0) {
            problem->verdict = TL_AUDIT_DIVERGES;
            snprintf(problem->text, sizeof problem->text,
                     "audit log diverges from the database at seq %" PRIu64
                     ": the log's entry has hash %.16s..., the database recorded %.16s...",
                     target->head_seq, hash, target->head_hash);
            return TL_EAUDIT;
        }
        if (rc == TL_ENOTFOUND) {
            problem->verdict = TL_AUDIT_DIVERGES;
            snprintf(problem->text, sizeof problem->text,
                     "audit log ends at seq %" PRIu64 " but its entry for the database head, seq "
                     "%" PRIu64 ", cannot be found",
                     audit->last_seq, target->head_seq);
            return TL_EAUDIT;
        }
        if (rc < 0)
            goto unreadable_unlocked;
        return 0;
    }
    rc = tl_audit_compare(audit->last_seq, audit->last_hash, target, problem);
    if (rc < 0) {
        unlock_log(audit->fd);
        return rc;
    }

    /* What the log lacks: the target's lines after its last entry, in one write. */
    size_t from = target->count > 0 ? (size_t)(audit->last_seq + 1 - target->lines[0].seq) : 0;
    size_t total = 0;
    for (size_t i = from; i < target->count; i++)
        total += target->lines[i].len;
    if (total > 0) {
        batch = malloc(total);
        if (!batch) {
            unlock_log(audit->fd);
            rc = TL_ENOMEM;
            goto unreadable_unlocked;
        }
        size_t at = 0;
        for (size_t i = from; i < target->count; i++) {
            memcpy(batch + at, target->lines[i].text, target->lines[i].len);
            at += target->lines[i].len;
        }
        rc = tl_write_all(audit->fd, batch, total);
        if (rc < 0 && ftruncate(audit->fd, (off_t)audit->size) < 0)
            audit->failed = true; /* cannot say what is on disk: read it again next time */
        if (rc == 0 && fdatasync(audit->fd) < 0) {
            rc = -errno;
            audit->failed = true;
        }
        if (rc == 0) {
            audit->size += total;
            audit->last_seq = target->head_seq;
            memcpy(audit->last_hash, target->head_hash, TL_AUDIT_HASH_HEX);
            problem->log_seq = audit->last_seq;
            memcpy(problem->log_hash, audit->last_hash, TL_AUDIT_HASH_HEX);
        } else {
            /* The caller reports it (once per outage, not once per attempt). */
            snprintf(audit->why, sizeof audit->why, "cannot write %s: %s", audit->path,
                     tl_strerror(rc));
        }
    }
    unlock_log(audit->fd);
    free(batch);
    if (rc < 0)
        goto unreadable_unlocked;
    return 0;

unreadable:
    if (audit->why[0] == '\0')
        snprintf(audit->why, sizeof audit->why, "cannot use %s: %s", audit->path, tl_strerror(rc));
unreadable_unlocked:
    problem->verdict = rc == -ENOENT ? TL_AUDIT_MISSING : TL_AUDIT_UNREADABLE;
    if (audit->why[0] == '\0')
        snprintf(audit->why, sizeof audit->why, "cannot use %s: %s", audit->path, tl_strerror(rc));
    snprintf(problem->text, sizeof problem->text, "%s", audit->why);
    return rc;
}

int tl_audit_peek(const char *path, uint64_t *seq, char hash[TL_AUDIT_HASH_HEX],
                  uint64_t *tail_bytes, char *why, size_t why_size)
{
    int rc = TL_ENOMEM;
    tl_audit_t peek = {.fd = -1, .path = (char *)path};
    char *window = malloc(TL_AUDIT_LINE_MAX);
    struct stat st;
    *seq = 0;
    *tail_bytes = 0;
    memcpy(hash, GENESIS_PREV, TL_AUDIT_HASH_HEX);
    if (!window)
        goto out;
    peek.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (peek.fd < 0 || fstat(peek.fd, &st) < 0) {
        rc = -errno;
        snprintf(peek.why, sizeof peek.why, "cannot open %s: %s", path, tl_strerror(rc));
        goto out;
    }
    uint64_t tail_start;
    bool found;
    rc = find_line_start(peek.fd, window, (uint64_t)st.st_size, &tail_start, &found);
    if (rc < 0)
        goto out;
    *tail_bytes = (uint64_t)st.st_size - tail_start;
    if (*tail_bytes >= TL_AUDIT_LINE_MAX) {
        snprintf(peek.why, sizeof peek.why,
                 "it ends in %" PRIu64 " bytes without a line feed, too many to be a write "
                 "interrupted by a crash",
                 *tail_bytes);
        rc = TL_EPROTO;
        goto out;
    }
    rc = load_head(&peek, window, tail_start);
    if (rc == 0) {
        *seq = peek.last_seq;
        memcpy(hash, peek.last_hash, TL_AUDIT_HASH_HEX);
    }
out:
    if (rc < 0 && why != NULL && why_size > 0)
        snprintf(why, why_size, "%s", peek.why[0] ? peek.why : tl_strerror(rc));
    if (peek.fd >= 0)
        close(peek.fd);
    free(window);
    return rc;
}

/* Stops verification at the line that failed. */
static void report_failure(tl_audit_report_t *report, uint64_t line_no, const char *line,
                           size_t len, const char *reason)
{
    report->bad_line = line_no;
    report->bad_seq = reported_seq(line, len);
    snprintf(report->reason, sizeof report->reason, "%s", reason);
}

/* Steps 2–8 of format §5 for one complete line (without its newline). */
static int verify_line(tl_audit_report_t *report, uint64_t line_no, const char *line, size_t len)
{
    struct line_info info;
    char reason[sizeof report->reason];
    int rc = check_line(line, len, &info, reason, sizeof reason);
    if (rc == 0 && info.seq != report->entries + 1) {
        snprintf(reason, sizeof reason, "bad-seq: seq %" PRIu64 " where %" PRIu64 " was expected",
                 info.seq, report->entries + 1);
        rc = TL_EPROTO;
    }
    if (rc == 0 && strcmp(info.prev, report->last_hash) != 0) {
        snprintf(reason, sizeof reason,
                 "bad-prev: prev %.16s... is not the previous entry's hash %.16s...", info.prev,
                 report->last_hash);
        rc = TL_EPROTO;
    }
    if (rc == 0)
        rc = check_hash(line, len, &info, reason, sizeof reason);
    if (rc == TL_EPROTO) {
        report_failure(report, line_no, line, len, reason);
        return rc;
    }
    if (rc < 0)
        return rc;
    report->entries++;
    memcpy(report->last_hash, info.hash, TL_AUDIT_HASH_HEX);
    return 0;
}

int tl_audit_verify_line(tl_audit_report_t *report, const char *line, size_t len)
{
    if (len >= TL_AUDIT_LINE_MAX) {
        report_failure(report, report->entries + 1, line, len,
                       "too-long: line longer than 1048576 bytes");
        return TL_EPROTO;
    }
    return verify_line(report, report->entries + 1, line, len);
}

int tl_audit_verify(const char *path, tl_audit_report_t *report)
{
    int rc = 0;
    int fd = -1;
    char *line = NULL;
    char *chunk = NULL;
    size_t have = 0; /* bytes of the current, unterminated line in `line` */
    uint64_t line_no = 0;

    memset(report, 0, sizeof *report);
    memcpy(report->last_hash, GENESIS_PREV, TL_AUDIT_HASH_HEX);
    line = malloc(TL_AUDIT_LINE_MAX);
    chunk = malloc(65536);
    if (!line || !chunk) {
        rc = TL_ENOMEM;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }

    for (;;) {
        ssize_t n = read(fd, chunk, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        size_t pos = 0;
        while (pos < (size_t)n) {
            char *newline = memchr(chunk + pos, '\n', (size_t)n - pos);
            size_t piece = newline ? (size_t)(newline - (chunk + pos)) : (size_t)n - pos;
            /* A line, newline included, is at most TL_AUDIT_LINE_MAX bytes,
             * so TL_AUDIT_LINE_MAX bytes without a newline can never be one. */
            if (have + piece >= TL_AUDIT_LINE_MAX) {
                size_t fits = TL_AUDIT_LINE_MAX - have < piece ? TL_AUDIT_LINE_MAX - have : piece;
                memcpy(line + have, chunk + pos, fits);
                report_failure(report, line_no + 1, line, have + fits,
                               "too-long: line longer than 1048576 bytes");
                rc = TL_EPROTO;
                goto out;
            }
            memcpy(line + have, chunk + pos, piece);
            have += piece;
            pos += piece;
            if (!newline)
                break;
            pos++;
            line_no++;
            rc = verify_line(report, line_no, line, have);
            if (rc < 0)
                goto out;
            have = 0;
        }
    }
    report->partial_tail_bytes = have;
out:
    if (rc < 0 && rc != TL_EPROTO)
        snprintf(report->reason, sizeof report->reason, "cannot read %s: %s", path,
                 tl_strerror(rc));
    if (fd >= 0)
        close(fd);
    free(chunk);
    free(line);
    return rc;
}

void tl_audit_report_print(const tl_audit_report_t *report, int rc, FILE *out)
{
    if (rc == 0) {
        fprintf(out, "audit log OK: %" PRIu64 " entries, last hash %s\n", report->entries,
                report->last_hash);
        if (report->partial_tail_bytes > 0)
            fprintf(out,
                    "note: %" PRIu64 " bytes after the last newline are a write interrupted by a "
                    "crash, not an entry; the relay removes them before its next append\n",
                    report->partial_tail_bytes);
        return;
    }
    if (rc != TL_EPROTO) {
        fprintf(out, "audit log not verified: %s\n", report->reason);
        return;
    }
    if (report->bad_seq > 0)
        fprintf(out, "audit log BROKEN at seq %" PRIu64 " (line %" PRIu64 "): %s\n",
                report->bad_seq, report->bad_line, report->reason);
    else
        fprintf(out, "audit log BROKEN at line %" PRIu64 " (seq unreadable): %s\n",
                report->bad_line, report->reason);
    fprintf(out, "%" PRIu64 " entries before it verified; the last of them has hash %s\n",
            report->entries, report->last_hash);
}
