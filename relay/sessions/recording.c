/*
 * Terminal recordings (relay/sessions/recording.h): asciicast v2 lines, deflated in
 * gzip form on the loop, written to PATH.part by uv_fs_write one request at
 * a time, and made durable and renamed by tl_recording_finish().
 *
 * Memory. Compressed bytes collect in fixed blocks; a block is handed to
 * the disk when it is full or when the once-a-second flush seals it (a
 * sealed block takes no more bytes, so a write never covers bytes that may
 * still change). At most one write is in flight, so the file is written in
 * order and the SHA-256 of the file is the hash of what was written, in
 * that order. An event whose compressed form could take the bytes waiting
 * for the disk past TL_RECORDING_MAX_PENDING is dropped and counted
 * (deflateBound() gives the worst case for the event; deflate may add what
 * it held back from earlier ones, tens of KiB at most).
 *
 * Text. Event text is UTF-8 in JSON strings. Each stream ("o", "i") keeps
 * an incomplete trailing sequence (at most 3 bytes) for its next chunk;
 * bytes that cannot be UTF-8 become U+FFFD, one for each maximal invalid
 * subpart (as Unicode recommends and Python's "replace" does), and control
 * characters are escaped, so every event stays on its one line.
 *
 * Hidden input. Held input waits in one buffer (capped) until the agent
 * settles it; bytes settled as hidden only add to the current run's count,
 * and the run's marker is written before the next event of any kind (or at
 * the end), with the time of the run's first byte, so events stay in time
 * order. A trailing incomplete character of visible input is closed off
 * before a hidden run, so no hidden byte can complete it.
 *
 * The end. The last event is a marker, [t, "m", "end dropped_events=N
 * dropped_bytes=M"], so a reader can tell a complete recording from one cut
 * short by a crash, and how much the cap cost. After a write error the
 * recording stops taking events (they are counted as dropped), the .part
 * file is left where it is for whoever wants what reached the disk, and
 * finish reports the error.
 *
 * The .part file is created synchronously in tl_recording_open() (a stat
 * and an open when a session starts), so the caller learns at once whether it
 * can record at all (and may refuse the session) rather than at its end.
 * Everything after that is asynchronous.
 */
#include "relay/sessions/recording.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Compressed bytes are collected in blocks of this size. */
#define BLOCK_SIZE (64u * 1024u)
/* The deflate stream is flushed and written at least this often. */
#define FLUSH_INTERVAL_MS 1000
/* A header needs a size; this is what a terminal that did not say gets. */
#define DEFAULT_COLS 80
#define DEFAULT_ROWS 24
/* Longest title and TERM kept in the header. */
#define MAX_TITLE 512
#define MAX_TERM 64
/* The scratch line is kept between events only up to this size. */
#define SCRATCH_KEEP (64u * 1024u)

struct block {
    struct block *next;
    size_t len;     /* bytes deflate put here */
    size_t written; /* of those, bytes on disk */
    bool sealed;    /* takes no more bytes */
    uint8_t data[BLOCK_SIZE];
};

/* An incomplete UTF-8 sequence at the end of a stream's last chunk. */
struct carry {
    uint8_t bytes[4];
    size_t len;
};

/* Growing text for one event line: as long as its event, so no cap of its own. */
struct line {
    tl_buf_t *text; /* NULL until the first byte */
    bool failed;    /* out of memory */
};

enum finish_step {
    STEP_NONE,
    STEP_FSYNC,
    STEP_CLOSE,
    STEP_RENAME,
    STEP_DIR_OPEN,
    STEP_DIR_FSYNC,
    STEP_DIR_CLOSE,
    STEP_DONE,
};

struct tl_recording {
    uv_loop_t *loop;
    char *path, *part_path, *dir_path;
    uv_file fd, dir_fd;
    uint64_t opened_at; /* uv_now() at open: event times count from here */
    z_stream zs;
    bool zs_ready;
    struct block *head, *tail;
    size_t pending; /* compressed bytes not on disk yet */
    bool dirty;     /* deflated since the last flush */
    bool seal_wanted;
    uv_timer_t timer;
    uv_fs_t write_req, fs_req;
    bool writing;
    uint64_t offset; /* bytes on disk */
    tl_sha256_t *hash;
    struct carry carry_output, carry_input;
    struct line line;
    tl_buf_t *held;         /* input waiting for the agent's word (secret; NULL until some) */
    uint64_t hidden_run;    /* hidden bytes not yet in a marker */
    uint64_t hidden_run_at; /* uv_now() of the run's first byte */
    uint64_t dropped_events, dropped_bytes;
    int error; /* the first failure; nothing is recorded after it */
    bool finishing, done_called, timer_closed;
    enum finish_step step;
    tl_recording_done_fn done;
    void *done_data;
};

static void kick_write(tl_recording_t *rec);
static void continue_finish(tl_recording_t *rec);

/* ---- UTF-8 ----------------------------------------------------------------------------- */

/*
 * The sequence at p (n bytes there): its length if it is valid UTF-8; 0 if
 * the n bytes are a valid start that needs more; or minus the number of
 * bytes (1..3) to replace with one U+FFFD: the lead byte and the
 * continuation bytes that fitted it before the one that did not.
 */
static int utf8_sequence(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t need;
    uint8_t low = 0x80, high = 0xbf; /* the second byte's range */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c == 0xe0)
        need = 3, low = 0xa0; /* no overlong forms */
    else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
        need = 3;
    else if (c == 0xed)
        need = 3, high = 0x9f; /* no surrogates */
    else if (c == 0xf0)
        need = 4, low = 0x90;
    else if (c >= 0xf1 && c <= 0xf3)
        need = 4;
    else if (c == 0xf4)
        need = 4, high = 0x8f; /* nothing past U+10FFFF */
    else
        return -1;
    for (size_t i = 1; i < need; i++) {
        if (i >= n)
            return 0;
        uint8_t lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xbf;
        if (p[i] < lo || p[i] > hi)
            return -(int)i;
    }
    return (int)need;
}

/* ---- lines ----------------------------------------------------------------------------- */

static size_t line_len(const struct line *line)
{
    return line->text != NULL ? tl_buf_len(line->text) : 0;
}

static const void *line_data(const struct line *line)
{
    return line->text != NULL ? tl_buf_data(line->text) : (const uint8_t *)"";
}

/* Empties the line for the next event; the memory stays. */
static void line_clear(struct line *line)
{
    if (line->text != NULL)
        tl_buf_reset(line->text);
    line->failed = false;
}

static void line_put(struct line *line, const void *bytes, size_t len)
{
    if (line->failed)
        return;
    if ((line->text == NULL && (line->text = tl_buf_new(SIZE_MAX)) == NULL) ||
        tl_buf_put(line->text, bytes, len) != 0)
        line->failed = true;
}

static void line_put_text(struct line *line, const char *text)
{
    line_put(line, text, strlen(text));
}

/* The JSON escapes with a short form: the byte, then the letter after '\\'. */
static const char SHORT_ESCAPES[][2] = {
    {'"', '"'}, {'\\', '\\'}, {'\n', 'n'}, {'\r', 'r'}, {'\t', 't'}, {'\b', 'b'}, {'\f', 'f'},
};

/* One valid UTF-8 sequence (or ASCII byte) as JSON string content. */
static void line_put_escaped(struct line *line, const uint8_t *bytes, size_t len)
{
    if (len > 1) {
        line_put(line, bytes, len);
        return;
    }
    for (size_t i = 0; i < sizeof SHORT_ESCAPES / sizeof SHORT_ESCAPES[0]; i++) {
        if (bytes[0] == (uint8_t)SHORT_ESCAPES[i][0]) {
            char escaped[2] = {'\\', SHORT_ESCAPES[i][1]};
            line_put(line, escaped, sizeof escaped);
            return;
        }
    }
    if (bytes[0] < 0x20 || bytes[0] == 0x7f) {
        char escaped[8];
        snprintf(escaped, sizeof escaped, "\\u%04x", bytes[0]);
        line_put_text(line, escaped);
    } else {
        line_put(line, bytes, 1);
    }
}

static const uint8_t REPLACEMENT[3] = {0xef, 0xbf, 0xbd}; /* U+FFFD */

/*
 * Appends carry + bytes to the line as JSON string content (or as raw
 * sanitized UTF-8 when escape is false), leaving a trailing incomplete
 * sequence in carry (when carry is NULL such a tail is replaced too).
 */
static void line_put_utf8(struct line *line, struct carry *carry, const uint8_t *bytes, size_t len,
                          bool escape)
{
    size_t at = 0;
    if (carry != NULL && carry->len > 0) {
        /* The carried start of a character, completed from the new bytes if they can. */
        uint8_t joined[8];
        size_t from_new = len < 4 - carry->len ? len : 4 - carry->len;
        memcpy(joined, carry->bytes, carry->len);
        memcpy(joined + carry->len, bytes, from_new);
        size_t joined_len = carry->len + from_new;
        int rc = utf8_sequence(joined, joined_len);
        if (rc == 0) {
            memcpy(carry->bytes, joined, joined_len); /* still short: all of it waits */
            carry->len = joined_len;
            return;
        }
        size_t used = rc > 0 ? (size_t)rc : (size_t)-rc;
        if (rc > 0)
            escape ? line_put_escaped(line, joined, used) : line_put(line, joined, used);
        else
            line_put(line, REPLACEMENT, sizeof REPLACEMENT);
        at = used - carry->len; /* the sequence always reaches past the carried bytes */
        carry->len = 0;
    }
    while (at < len) {
        int rc = utf8_sequence(bytes + at, len - at);
        if (rc == 0) {
            if (carry != NULL) {
                memcpy(carry->bytes, bytes + at, len - at);
                carry->len = len - at;
            } else {
                line_put(line, REPLACEMENT, sizeof REPLACEMENT);
            }
            return;
        }
        if (rc > 0) {
            escape ? line_put_escaped(line, bytes + at, (size_t)rc)
                   : line_put(line, bytes + at, (size_t)rc);
            at += (size_t)rc;
        } else {
            line_put(line, REPLACEMENT, sizeof REPLACEMENT);
            at += (size_t)-rc;
        }
    }
}

/* "[12.345000, \"" with the time since open of the loop time `at`. */
static void line_start_event_at(tl_recording_t *rec, const char *code, uint64_t at)
{
    uint64_t elapsed = at - rec->opened_at;
    char start[64];
    snprintf(start, sizeof start, "[%" PRIu64 ".%03u000, \"%s\", \"", elapsed / 1000,
             (unsigned)(elapsed % 1000), code);
    line_clear(&rec->line);
    line_put_text(&rec->line, start);
}

static void line_start_event(tl_recording_t *rec, const char *code)
{
    line_start_event_at(rec, code, uv_now(rec->loop));
}

/* ---- compression and blocks ------------------------------------------------------------ */

static struct block *writable_tail(tl_recording_t *rec)
{
    struct block *tail = rec->tail;
    if (tail != NULL && !tail->sealed && tail->len < BLOCK_SIZE)
        return tail;
    struct block *fresh = malloc(sizeof *fresh);
    if (fresh == NULL)
        return NULL;
    fresh->next = NULL;
    fresh->len = fresh->written = 0;
    fresh->sealed = false;
    if (tail != NULL)
        tail->next = fresh;
    else
        rec->head = fresh;
    rec->tail = fresh;
    return fresh;
}

static void free_blocks(tl_recording_t *rec)
{
    while (rec->head != NULL) {
        struct block *next = rec->head->next;
        free(rec->head);
        rec->head = next;
    }
    rec->tail = NULL;
    rec->pending = 0;
}

/* The first failure stops the recording; what is waiting for the disk is let go. */
static void fail(tl_recording_t *rec, int error)
{
    if (rec->error != 0)
        return;
    rec->error = error;
    tl_log_warn("recording failed path=%s reason=\"%s\"", rec->part_path, tl_strerror(error));
    if (!rec->writing)
        free_blocks(rec);
}

/* Runs deflate over bytes with flush until it has taken them all and said everything. */
static int deflate_into(tl_recording_t *rec, const void *bytes, size_t len, int flush)
{
    rec->zs.next_in = (Bytef *)bytes;
    rec->zs.avail_in = (uInt)len;
    for (;;) {
        struct block *tail = writable_tail(rec);
        if (tail == NULL)
            return TL_ENOMEM;
        size_t room = BLOCK_SIZE - tail->len;
        rec->zs.next_out = tail->data + tail->len;
        rec->zs.avail_out = (uInt)room;
        int rc = deflate(&rec->zs, flush);
        size_t produced = room - rec->zs.avail_out;
        tail->len += produced;
        rec->pending += produced;
        if (rc == Z_STREAM_ERROR)
            return TL_EIO;
        if (flush == Z_FINISH ? rc == Z_STREAM_END
                              : rec->zs.avail_in == 0 && rec->zs.avail_out != 0)
            break;
    }
    if (len > 0)
        rec->dirty = true;
    return 0;
}

/* Compresses the line as one event, unless the cap says drop (force: the closing marker). */
static int record_line(tl_recording_t *rec, size_t raw_len, bool force)
{
    int rc = 0;
    if (rec->line.failed) {
        rc = TL_ENOMEM;
        goto drop;
    }
    if (rec->error != 0)
        goto drop;
    if (!force &&
        rec->pending + deflateBound(&rec->zs, line_len(&rec->line)) > TL_RECORDING_MAX_PENDING)
        goto drop;
    rc = deflate_into(rec, line_data(&rec->line), line_len(&rec->line), Z_NO_FLUSH);
    if (rc != 0) {
        fail(rec, rc);
        goto drop;
    }
    kick_write(rec);
    goto out;
drop:
    rec->dropped_events++;
    rec->dropped_bytes += raw_len;
out:
    if (rec->line.text != NULL && tl_buf_capacity(rec->line.text) > SCRATCH_KEEP)
        tl_buf_release(rec->line.text);
    return rc;
}

/* ---- the disk -------------------------------------------------------------------------- */

static void on_written(uv_fs_t *req)
{
    tl_recording_t *rec = req->data;
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    rec->writing = false;
    if (result < 0) {
        fail(rec, (int)result);
        free_blocks(rec);
    } else if (rec->error != 0) {
        free_blocks(rec); /* failed meanwhile (out of memory): nothing more goes out */
    } else {
        struct block *head = rec->head;
        tl_sha256_update(rec->hash, head->data + head->written, (size_t)result);
        head->written += (size_t)result;
        rec->offset += (uint64_t)result;
        rec->pending -= (size_t)result;
        if (rec->seal_wanted && rec->tail != NULL && rec->tail->len > 0) {
            rec->tail->sealed = true;
            rec->seal_wanted = false;
        }
    }
    if (rec->finishing)
        continue_finish(rec);
    else
        kick_write(rec);
}

/* Starts the next write if none is in flight and a block (or the rest of one) is ready. */
static void kick_write(tl_recording_t *rec)
{
    while (!rec->writing && rec->error == 0 && rec->head != NULL) {
        struct block *head = rec->head;
        bool complete = head->sealed || head->len == BLOCK_SIZE;
        if (head->written == head->len) {
            if (!complete)
                return; /* the tail, still filling */
            rec->head = head->next;
            if (rec->head == NULL)
                rec->tail = NULL;
            free(head);
            continue;
        }
        if (!complete)
            return;
        uv_buf_t buf =
            uv_buf_init((char *)head->data + head->written, (unsigned)(head->len - head->written));
        rec->write_req.data = rec;
        int rc = uv_fs_write(rec->loop, &rec->write_req, rec->fd, &buf, 1, (int64_t)rec->offset,
                             on_written);
        if (rc < 0) {
            fail(rec, rc);
            return;
        }
        rec->writing = true;
    }
}

/* Makes what is compressed so far decodable and sends it to the disk. */
static void flush_now(tl_recording_t *rec)
{
    if (rec->error != 0)
        return;
    if (rec->dirty) {
        int rc = deflate_into(rec, NULL, 0, Z_SYNC_FLUSH);
        rec->dirty = false;
        if (rc != 0) {
            fail(rec, rc);
            return;
        }
    }
    if (rec->tail != NULL && !rec->tail->sealed && rec->tail->len > rec->tail->written) {
        if (rec->writing)
            rec->seal_wanted = true; /* sealed when the write in flight is done */
        else
            rec->tail->sealed = true;
    }
    kick_write(rec);
}

static void on_tick(uv_timer_t *timer)
{
    flush_now(timer->data);
}

/* ---- the end --------------------------------------------------------------------------- */

static void free_recording(tl_recording_t *rec)
{
    if (rec->zs_ready)
        deflateEnd(&rec->zs);
    free_blocks(rec);
    tl_sha256_free(rec->hash);
    tl_buf_free(rec->line.text);
    tl_buf_free(rec->held); /* zeroed first: it is a secret buffer */
    free(rec->path);
    free(rec->part_path);
    free(rec->dir_path);
    free(rec);
}

static void maybe_free(tl_recording_t *rec)
{
    if (!rec->done_called || !rec->timer_closed)
        return;
    free_recording(rec);
}

static void on_timer_closed(uv_handle_t *handle)
{
    tl_recording_t *rec = handle->data;
    rec->timer_closed = true;
    maybe_free(rec);
}

static void report(tl_recording_t *rec)
{
    char hex[TL_SHA256_HEX_LEN];
    int status = rec->error;
    if (status == 0)
        status = tl_sha256_final(rec->hash, hex);
    if (status == 0)
        tl_log_info("recording done path=%s size=%" PRIu64 " sha256=%s dropped_events=%" PRIu64
                    " dropped_bytes=%" PRIu64,
                    rec->path, rec->offset, hex, rec->dropped_events, rec->dropped_bytes);
    rec->done_called = true;
    if (rec->done != NULL)
        rec->done(rec->done_data, status, status == 0 ? hex : NULL, status == 0 ? rec->offset : 0);
    maybe_free(rec);
}

/* What comes after rec->step, given whether the recording has failed. */
static enum finish_step next_step(const tl_recording_t *rec)
{
    bool ok = rec->error == 0;
    switch (rec->step) {
    case STEP_NONE:
        return ok ? STEP_FSYNC : STEP_CLOSE;
    case STEP_FSYNC:
        return STEP_CLOSE; /* closed whatever the fsync said */
    case STEP_CLOSE:
        return ok ? STEP_RENAME : STEP_DONE;
    case STEP_RENAME:
        return ok ? STEP_DIR_OPEN : STEP_DONE;
    case STEP_DIR_OPEN:
        return ok ? STEP_DIR_FSYNC : STEP_DONE;
    case STEP_DIR_FSYNC:
        return STEP_DIR_CLOSE;
    case STEP_DIR_CLOSE:
    case STEP_DONE:
        break;
    }
    return STEP_DONE;
}

static void on_finish_step(uv_fs_t *req);

/* Starts the next step of the end; reports when there is none left. */
static void finish_next(tl_recording_t *rec)
{
    for (;;) {
        rec->step = next_step(rec);
        uv_fs_t *req = &rec->fs_req;
        req->data = rec;
        int rc = 0;
        switch (rec->step) {
        case STEP_FSYNC:
            rc = uv_fs_fsync(rec->loop, req, rec->fd, on_finish_step);
            break;
        case STEP_CLOSE:
            rc = uv_fs_close(rec->loop, req, rec->fd, on_finish_step);
            break;
        case STEP_RENAME:
            rc = uv_fs_rename(rec->loop, req, rec->part_path, rec->path, on_finish_step);
            break;
        case STEP_DIR_OPEN:
            rc = uv_fs_open(rec->loop, req, rec->dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0,
                            on_finish_step);
            break;
        case STEP_DIR_FSYNC:
            rc = uv_fs_fsync(rec->loop, req, rec->dir_fd, on_finish_step);
            break;
        case STEP_DIR_CLOSE:
            rc = uv_fs_close(rec->loop, req, rec->dir_fd, on_finish_step);
            break;
        case STEP_NONE:
        case STEP_DONE:
            report(rec);
            return;
        }
        if (rc == 0)
            return; /* on_finish_step continues */
        fail(rec, rc);
        if (rec->step == STEP_CLOSE)
            rec->fd = -1;
        if (rec->step == STEP_DIR_CLOSE)
            rec->dir_fd = -1;
    }
}

static void on_finish_step(uv_fs_t *req)
{
    tl_recording_t *rec = req->data;
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    if (rec->step == STEP_CLOSE)
        rec->fd = -1;
    else if (rec->step == STEP_DIR_CLOSE)
        rec->dir_fd = -1;
    else if (rec->step == STEP_DIR_OPEN && result >= 0)
        rec->dir_fd = (uv_file)result;
    if (result < 0)
        fail(rec, (int)result);
    finish_next(rec);
}

/* Once everything compressed is on disk (or the recording failed): the steps above. */
static void continue_finish(tl_recording_t *rec)
{
    if (rec->writing || rec->step != STEP_NONE)
        return;
    if (rec->error == 0 && rec->head != NULL) {
        kick_write(rec);
        if (rec->writing)
            return;
    }
    finish_next(rec);
}

/* ---- the API --------------------------------------------------------------------------- */

/* Raw text made valid UTF-8 (for jansson), bounded. */
static json_t *sanitized_string(const char *text, size_t max)
{
    struct line raw = {0};
    size_t len = strnlen(text, max);
    line_put_utf8(&raw, NULL, (const uint8_t *)text, len, false);
    json_t *value = raw.failed ? NULL : json_stringn(line_data(&raw), line_len(&raw));
    tl_buf_free(raw.text);
    return value;
}

static char *header_line(const tl_recording_info_t *info)
{
    json_t *header = json_object();
    json_t *env = json_object();
    char *text = NULL;
    if (header == NULL || env == NULL)
        goto out;
    unsigned cols = info->cols ? info->cols : DEFAULT_COLS;
    unsigned rows = info->rows ? info->rows : DEFAULT_ROWS;
    if (json_object_set_new(header, "version", json_integer(2)) != 0 ||
        json_object_set_new(header, "width", json_integer(cols)) != 0 ||
        json_object_set_new(header, "height", json_integer(rows)) != 0 ||
        json_object_set_new(header, "timestamp", json_integer(info->start_ms / 1000)) != 0)
        goto out;
    if (info->title != NULL &&
        json_object_set_new(header, "title", sanitized_string(info->title, MAX_TITLE)) != 0)
        goto out;
    if (info->term != NULL) {
        if (json_object_set_new(env, "TERM", sanitized_string(info->term, MAX_TERM)) != 0 ||
            json_object_set(header, "env", env) != 0)
            goto out;
    }
    text = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(env);
    json_decref(header);
    return text;
}

static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

tl_recording_t *tl_recording_open(uv_loop_t *loop, const char *path,
                                  const tl_recording_info_t *info, int *err)
{
    tl_recording_t *rec = NULL;
    char *header = NULL;
    int rc = TL_EINVAL;
    if (loop == NULL || path == NULL || path[0] == '\0' || info == NULL)
        goto out;
    rc = TL_ENOMEM;
    rec = calloc(1, sizeof *rec);
    if (rec == NULL)
        goto out;
    rec->loop = loop;
    rec->fd = rec->dir_fd = -1;
    rec->path = strdup(path);
    rec->dir_path = directory_of(path);
    rec->hash = tl_sha256_new();
    size_t part_size = strlen(path) + sizeof ".part";
    rec->part_path = malloc(part_size);
    header = header_line(info);
    if (rec->path == NULL || rec->dir_path == NULL || rec->hash == NULL || rec->part_path == NULL ||
        header == NULL)
        goto out;
    snprintf(rec->part_path, part_size, "%s.part", path);
    if (deflateInit2(&rec->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        goto out;
    rec->zs_ready = true;

    /* Never over a finished recording, nor over a .part a crash left behind. */
    struct stat st;
    if (stat(path, &st) == 0) {
        rc = TL_EEXIST;
        goto out;
    }
    uv_fs_t req;
    int fd =
        uv_fs_open(loop, &req, rec->part_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, NULL);
    uv_fs_req_cleanup(&req);
    if (fd < 0) {
        rc = fd;
        goto out;
    }
    rec->fd = fd;
    rec->opened_at = uv_now(loop);

    line_clear(&rec->line);
    line_put_text(&rec->line, header);
    line_put_text(&rec->line, "\n");
    rc = rec->line.failed
             ? TL_ENOMEM
             : deflate_into(rec, line_data(&rec->line), line_len(&rec->line), Z_NO_FLUSH);
    if (rc != 0) {
        uv_fs_close(loop, &req, fd, NULL);
        uv_fs_req_cleanup(&req);
        unlink(rec->part_path);
        goto out;
    }
    uv_timer_init(loop, &rec->timer);
    rec->timer.data = rec;
    uv_timer_start(&rec->timer, on_tick, FLUSH_INTERVAL_MS, FLUSH_INTERVAL_MS);
    tl_log_debug("recording open path=%s", rec->part_path);
    rc = 0;

out:
    free(header);
    if (rc != 0 && rec != NULL) {
        free_recording(rec);
        rec = NULL;
    }
    if (err != NULL)
        *err = rc;
    return rec;
}

/* The marker of the hidden run so far, before any later event. */
static void flush_hidden(tl_recording_t *rec)
{
    if (rec->hidden_run == 0)
        return;
    char marker[64];
    snprintf(marker, sizeof marker, "input hidden: %" PRIu64 " bytes", rec->hidden_run);
    rec->hidden_run = 0;
    line_start_event_at(rec, "m", rec->hidden_run_at);
    line_put_text(&rec->line, marker);
    line_put_text(&rec->line, "\"]\n");
    record_line(rec, 0, false);
}

static int record_text(tl_recording_t *rec, const char *code, struct carry *carry,
                       const void *bytes, size_t len)
{
    if (rec == NULL || (bytes == NULL && len > 0) || rec->finishing)
        return TL_EINVAL;
    if (len == 0)
        return 0;
    flush_hidden(rec);
    line_start_event(rec, code);
    size_t before = line_len(&rec->line);
    line_put_utf8(&rec->line, carry, bytes, len, true);
    if (line_len(&rec->line) == before && !rec->line.failed)
        return 0; /* all of it is the start of a character still to come */
    line_put_text(&rec->line, "\"]\n");
    return record_line(rec, len, false);
}

int tl_recording_output(tl_recording_t *rec, const void *bytes, size_t len)
{
    return record_text(rec, "o", rec != NULL ? &rec->carry_output : NULL, bytes, len);
}

int tl_recording_input(tl_recording_t *rec, const void *bytes, size_t len)
{
    return record_text(rec, "i", rec != NULL ? &rec->carry_input : NULL, bytes, len);
}

int tl_recording_resize(tl_recording_t *rec, unsigned cols, unsigned rows)
{
    if (rec == NULL || rec->finishing)
        return TL_EINVAL;
    char size[32];
    snprintf(size, sizeof size, "%ux%u", cols, rows);
    flush_hidden(rec);
    line_start_event(rec, "r");
    line_put_text(&rec->line, size);
    line_put_text(&rec->line, "\"]\n");
    return record_line(rec, strlen(size), false);
}

int tl_recording_marker(tl_recording_t *rec, const char *text)
{
    if (rec == NULL || text == NULL || rec->finishing)
        return TL_EINVAL;
    flush_hidden(rec);
    line_start_event(rec, "m");
    /* Bytes of UTF-8 sequences as they are; ASCII with JSON's escapes. */
    for (const uint8_t *p = (const uint8_t *)text; *p != '\0'; p++) {
        if (*p < 0x80)
            line_put_escaped(&rec->line, p, 1);
        else
            line_put(&rec->line, p, 1);
    }
    line_put_text(&rec->line, "\"]\n");
    return record_line(rec, strlen(text), false);
}

/* A character cut off by the end of the session: recorded as what it is, not UTF-8. */
static void flush_carry(tl_recording_t *rec, const char *code, struct carry *carry)
{
    if (carry->len == 0)
        return;
    size_t len = carry->len;
    carry->len = 0;
    line_start_event(rec, code);
    line_put(&rec->line, REPLACEMENT, sizeof REPLACEMENT);
    line_put_text(&rec->line, "\"]\n");
    record_line(rec, len, false);
}

int tl_recording_input_hold(tl_recording_t *rec, const void *bytes, size_t len)
{
    if (rec == NULL || (bytes == NULL && len > 0) || rec->finishing)
        return TL_EINVAL;
    if (len > TL_RECORDING_MAX_HELD - tl_recording_input_held(rec))
        return TL_EFULL;
    if (len == 0)
        return 0;
    /* Never past the cap; as it grows, no copy of a byte is left behind (a secret buffer). */
    if (rec->held == NULL && (rec->held = tl_buf_new_secret(TL_RECORDING_MAX_HELD)) == NULL)
        return TL_ENOMEM;
    return tl_buf_put(rec->held, bytes, len);
}

/* Counts n bytes into the hidden run (a run starts now if none is open). */
static void count_hidden(tl_recording_t *rec, uint64_t n)
{
    if (n == 0)
        return;
    if (rec->hidden_run == 0) {
        flush_carry(rec, "i", &rec->carry_input);
        rec->hidden_run_at = uv_now(rec->loop);
    }
    rec->hidden_run += n;
}

int tl_recording_input_settle(tl_recording_t *rec, size_t len, int hidden)
{
    if (rec == NULL || rec->finishing || len == 0 || len > tl_recording_input_held(rec))
        return TL_EINVAL;
    int rc = 0;
    if (hidden)
        count_hidden(rec, len);
    else
        rc = record_text(rec, "i", &rec->carry_input, tl_buf_data(rec->held), len);
    /* The settled bytes are wiped as they are consumed, so no copy of a hidden
     * byte outlives its settling; an empty buffer lets its memory go. */
    tl_buf_consume(rec->held, len);
    if (tl_buf_len(rec->held) == 0)
        tl_buf_release(rec->held);
    return rc;
}

size_t tl_recording_input_held(const tl_recording_t *rec)
{
    return rec != NULL && rec->held != NULL ? tl_buf_len(rec->held) : 0;
}

void tl_recording_finish(tl_recording_t *rec, tl_recording_done_fn done, void *data)
{
    if (rec == NULL)
        return;
    if (rec->finishing) {
        tl_log_warn("recording finished twice path=%s", rec->path);
        return;
    }
    /* Input the agent never settled may have been a password: counted, never shown. */
    if (tl_recording_input_held(rec) > 0) {
        count_hidden(rec, tl_recording_input_held(rec));
        tl_buf_release(rec->held); /* zeroed first */
    }
    flush_hidden(rec);
    flush_carry(rec, "o", &rec->carry_output);
    flush_carry(rec, "i", &rec->carry_input);
    rec->finishing = true;
    rec->done = done;
    rec->done_data = data;
    uv_close((uv_handle_t *)&rec->timer, on_timer_closed);
    if (rec->error == 0) {
        char marker[96];
        snprintf(marker, sizeof marker, "end dropped_events=%" PRIu64 " dropped_bytes=%" PRIu64,
                 rec->dropped_events, rec->dropped_bytes);
        line_start_event(rec, "m");
        line_put_text(&rec->line, marker);
        line_put_text(&rec->line, "\"]\n");
        record_line(rec, 0, true);
    }
    if (rec->error == 0) {
        int rc = deflate_into(rec, NULL, 0, Z_FINISH);
        if (rc != 0)
            fail(rec, rc);
        else if (rec->tail != NULL)
            rec->tail->sealed = true;
    }
    kick_write(rec);
    continue_finish(rec);
}
