/* The audit log's Merkle tree and its leaves file (relay/store/audit_tree.h). */
#include "relay/store/audit_tree.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "relay/store/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536
/* Records written to the leaves file at once. */
#define RECORDS_AT_ONCE 256

struct tl_audit_tree {
    char *log_path;
    int leaves_fd;
    tl_merkle_state_t state;
    uint64_t log_offset; /* just past the last line taken in */
    char problem[512];
};

/* ---- reading lines ---------------------------------------------------------------------------
 */

/* Complete lines of a file from an offset on; a line longer than the format allows is an error. */
struct line_reader {
    int fd;
    char *buf; /* TL_AUDIT_LINE_MAX + CHUNK */
    size_t start, have;
    uint64_t offset; /* of buf[start] in the file */
    int eof;
};

static int reader_init(struct line_reader *r, int fd, uint64_t offset)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->offset = offset;
    r->buf = malloc(TL_AUDIT_LINE_MAX + CHUNK);
    return r->buf != NULL ? 0 : TL_ENOMEM;
}

static void reader_free(struct line_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/*
 * 1 and the next line (*line, *len without its line feed, *end the offset past it), 0 at the end
 * of the complete lines, TL_EPROTO for an over-long line, -errno on a read error.
 */
static int reader_next(struct line_reader *r, const char **line, size_t *len, uint64_t *end)
{
    for (;;) {
        char *at = r->have > 0 ? memchr(r->buf + r->start, '\n', r->have) : NULL;
        if (at != NULL) {
            size_t n = (size_t)(at - (r->buf + r->start));
            if (n + 1 > TL_AUDIT_LINE_MAX)
                return TL_EPROTO;
            *line = r->buf + r->start;
            *len = n;
            r->start += n + 1;
            r->have -= n + 1;
            r->offset += n + 1;
            *end = r->offset;
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

/* ---- the leaves file -------------------------------------------------------------------------
 */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int read_record(int fd, uint64_t index, tl_merkle_hash_t hash, uint64_t *end)
{
    uint8_t record[TL_AUDIT_LEAF_RECORD];
    ssize_t got = pread(fd, record, sizeof record, (off_t)(index * TL_AUDIT_LEAF_RECORD));
    if (got < 0)
        return -errno;
    if (got != (ssize_t)sizeof record)
        return TL_ETRUNCATED;
    memcpy(hash, record, TL_MERKLE_HASH_LEN);
    if (end != NULL)
        *end = get_u64(record + TL_MERKLE_HASH_LEN);
    return 0;
}

static void set_problem(tl_audit_tree_t *tree, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_problem(tl_audit_tree_t *tree, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    tl_format_v(tree->problem, sizeof tree->problem, fmt, args);
    va_end(args);
}

/* Does the log's line [start, end) hash to leaf? */
static int line_matches(int log_fd, uint64_t start, uint64_t end, const tl_merkle_hash_t leaf)
{
    if (end <= start || end - start > TL_AUDIT_LINE_MAX)
        return 0;
    size_t n = (size_t)(end - start);
    char *line = malloc(n);
    tl_merkle_hash_t hash;
    int match = line != NULL && pread(log_fd, line, n, (off_t)start) == (ssize_t)n &&
                line[n - 1] == '\n' && memchr(line, '\n', n - 1) == NULL &&
                tl_merkle_leaf_hash(line, n - 1, hash) == 0 &&
                memcmp(hash, leaf, TL_MERKLE_HASH_LEN) == 0;
    free(line);
    return match;
}

/*
 * The leaves the file holds, if its last one is the log's line at that place: the state is built
 * from them. Otherwise the file starts again from nothing (the caller takes the log in).
 */
static int load_leaves(tl_audit_tree_t *tree, int log_fd)
{
    struct stat st;
    if (fstat(tree->leaves_fd, &st) < 0)
        return -errno;
    uint64_t count = (uint64_t)st.st_size / TL_AUDIT_LEAF_RECORD;
    uint64_t last_end = 0, prev_end = 0;
    tl_merkle_hash_t last;
    int usable = count > 0;
    if (usable && read_record(tree->leaves_fd, count - 1, last, &last_end) != 0)
        usable = 0;
    if (usable && count > 1) {
        tl_merkle_hash_t ignored;
        usable = read_record(tree->leaves_fd, count - 2, ignored, &prev_end) == 0;
    }
    if (usable)
        usable = log_fd >= 0 && line_matches(log_fd, prev_end, last_end, last);
    if (!usable)
        count = 0;
    if ((uint64_t)st.st_size != count * TL_AUDIT_LEAF_RECORD &&
        ftruncate(tree->leaves_fd, (off_t)(count * TL_AUDIT_LEAF_RECORD)) < 0)
        return -errno;
    uint8_t *buf = malloc(TL_AUDIT_LEAF_RECORD * RECORDS_AT_ONCE);
    if (buf == NULL)
        return TL_ENOMEM;
    int rc = 0;
    uint64_t done = 0, end = 0;
    while (done < count && rc == 0) {
        uint64_t want = count - done < RECORDS_AT_ONCE ? count - done : RECORDS_AT_ONCE;
        size_t bytes = (size_t)want * TL_AUDIT_LEAF_RECORD;
        ssize_t got = pread(tree->leaves_fd, buf, bytes, (off_t)(done * TL_AUDIT_LEAF_RECORD));
        if (got != (ssize_t)bytes) {
            rc = got < 0 ? -errno : TL_ETRUNCATED;
            break;
        }
        for (uint64_t i = 0; i < want && rc == 0; i++) {
            const uint8_t *record = buf + i * TL_AUDIT_LEAF_RECORD;
            uint64_t next = get_u64(record + TL_MERKLE_HASH_LEN);
            if (next <= end) {
                rc = TL_EPROTO; /* offsets must grow: the file is not what it should be */
                break;
            }
            end = next;
            rc = tl_merkle_state_append(&tree->state, record);
        }
        done += want;
    }
    free(buf);
    if (rc == TL_EPROTO || rc == TL_ETRUNCATED) {
        /* Damaged in the middle: start again from the log. */
        tl_merkle_state_init(&tree->state);
        end = 0;
        rc = ftruncate(tree->leaves_fd, 0) < 0 ? -errno : 0;
    }
    tree->log_offset = end;
    return rc;
}

/* Appends records to the leaves file; count leaves from the tree's size before they were added. */
static int write_records(tl_audit_tree_t *tree, const uint8_t *records, size_t count,
                         uint64_t first_index)
{
    size_t bytes = count * TL_AUDIT_LEAF_RECORD;
    off_t at = (off_t)(first_index * TL_AUDIT_LEAF_RECORD);
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = pwrite(tree->leaves_fd, records + done, bytes - done, at + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : TL_EIO;
        done += (size_t)n;
    }
    return 0;
}

/* Takes in the complete lines from tree->log_offset on. The log is open as log_fd. */
static int take_in(tl_audit_tree_t *tree, int log_fd)
{
    struct line_reader reader;
    uint8_t *records = malloc(TL_AUDIT_LEAF_RECORD * RECORDS_AT_ONCE);
    int rc = records != NULL ? reader_init(&reader, log_fd, tree->log_offset) : TL_ENOMEM;
    if (rc != 0) {
        free(records);
        return rc;
    }
    size_t pending = 0;
    uint64_t first = tree->state.size;
    if (lseek(log_fd, (off_t)tree->log_offset, SEEK_SET) < 0)
        rc = -errno;
    for (;;) {
        const char *line;
        size_t len;
        uint64_t end;
        if (rc != 0 || (rc = reader_next(&reader, &line, &len, &end)) <= 0)
            break;
        rc = 0;
        uint8_t *record = records + pending * TL_AUDIT_LEAF_RECORD;
        if ((rc = tl_merkle_leaf_hash(line, len, record)) != 0 ||
            (rc = tl_merkle_state_append(&tree->state, record)) != 0)
            break;
        put_u64(record + TL_MERKLE_HASH_LEN, end);
        tree->log_offset = end;
        if (++pending == RECORDS_AT_ONCE) {
            if ((rc = write_records(tree, records, pending, first)) != 0)
                break;
            first += pending;
            pending = 0;
        }
    }
    if (rc == TL_EPROTO)
        set_problem(tree, "audit log %s: line %" PRIu64 " is longer than %d bytes", tree->log_path,
                    tree->state.size + 1, TL_AUDIT_LINE_MAX);
    else if (rc < 0)
        set_problem(tree, "audit log %s cannot be read: %s", tree->log_path, tl_strerror(rc));
    if (pending > 0) {
        int wrc = write_records(tree, records, pending, first);
        if (wrc != 0 && rc == 0) {
            rc = wrc;
            set_problem(tree, "audit leaves cannot be written: %s", tl_strerror(rc));
        }
    }
    reader_free(&reader);
    free(records);
    return rc;
}

/* Opens the log read-only and takes the writers' lock shared: -ENOENT when there is none. */
static int open_log_shared(const char *path, int *fd_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    *fd_out = -1;
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_SH) < 0) {
        if (errno != EINTR) {
            int rc = -errno;
            close(fd);
            return rc;
        }
    }
    *fd_out = fd;
    return 0;
}

int tl_audit_tree_update(tl_audit_tree_t *tree)
{
    int fd = -1;
    int rc = open_log_shared(tree->log_path, &fd);
    tree->problem[0] = '\0';
    if (rc == -ENOENT && tree->log_offset == 0)
        return 0; /* no log yet: an empty tree */
    if (rc != 0) {
        set_problem(tree, "audit log %s cannot be read: %s", tree->log_path, tl_strerror(rc));
        return TL_EAUDIT;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        set_problem(tree, "audit log %s cannot be read: %s", tree->log_path, tl_strerror(rc));
    } else if ((uint64_t)st.st_size < tree->log_offset) {
        rc = TL_EAUDIT;
        set_problem(tree,
                    "audit log %s is shorter (%lld bytes) than the %" PRIu64
                    " entries already in its tree (%" PRIu64 " bytes)",
                    tree->log_path, (long long)st.st_size, tree->state.size, tree->log_offset);
    } else if ((uint64_t)st.st_size > tree->log_offset) {
        rc = take_in(tree, fd);
    }
    close(fd); /* and its lock */
    return rc == 0 ? 0 : TL_EAUDIT;
}

int tl_audit_tree_open(const char *log_path, const char *leaves_path, tl_audit_tree_t **out,
                       char *why, size_t why_size)
{
    int log_fd = -1;
    int rc = TL_ENOMEM;
    *out = NULL;
    tl_audit_tree_t *tree = calloc(1, sizeof *tree);
    if (tree == NULL || (tree->log_path = strdup(log_path)) == NULL) {
        snprintf(why, why_size, "%s", tl_strerror(rc));
        goto out;
    }
    tl_merkle_state_init(&tree->state);
    tree->leaves_fd = open(leaves_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (tree->leaves_fd < 0) {
        rc = -errno;
        snprintf(why, why_size, "audit leaves %s cannot be opened: %s", leaves_path,
                 tl_strerror(rc));
        goto out;
    }
    rc = open_log_shared(log_path, &log_fd);
    if (rc != 0 && rc != -ENOENT) {
        snprintf(why, why_size, "audit log %s cannot be read: %s", log_path, tl_strerror(rc));
        rc = TL_EAUDIT;
        goto out;
    }
    if ((rc = load_leaves(tree, log_fd)) != 0) {
        snprintf(why, why_size, "audit leaves %s cannot be read: %s", leaves_path, tl_strerror(rc));
        goto out;
    }
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    if ((rc = tl_audit_tree_update(tree)) != 0) {
        snprintf(why, why_size, "%s", tree->problem);
        goto out;
    }
out:
    if (log_fd >= 0)
        close(log_fd);
    if (rc != 0) {
        tl_audit_tree_close(tree);
        return rc;
    }
    *out = tree;
    return 0;
}

void tl_audit_tree_close(tl_audit_tree_t *tree)
{
    if (tree == NULL)
        return;
    if (tree->leaves_fd >= 0)
        close(tree->leaves_fd);
    free(tree->log_path);
    free(tree);
}

const char *tl_audit_tree_problem(const tl_audit_tree_t *tree)
{
    return tree->problem;
}

uint64_t tl_audit_tree_size(const tl_audit_tree_t *tree)
{
    return tree->state.size;
}

void tl_audit_tree_root(const tl_audit_tree_t *tree, tl_merkle_hash_t out)
{
    tl_merkle_state_root(&tree->state, out);
}

static int leaf_of_file(void *arg, uint64_t index, tl_merkle_hash_t out)
{
    const tl_audit_tree_t *tree = arg;
    return read_record(tree->leaves_fd, index, out, NULL);
}

int tl_audit_tree_leaf(tl_audit_tree_t *tree, uint64_t index, tl_merkle_hash_t out)
{
    if (index >= tree->state.size)
        return TL_EINVAL;
    return leaf_of_file(tree, index, out);
}

int tl_audit_tree_line_end(tl_audit_tree_t *tree, uint64_t index, uint64_t *end)
{
    tl_merkle_hash_t hash;
    if (index >= tree->state.size)
        return TL_EINVAL;
    return read_record(tree->leaves_fd, index, hash, end);
}

int tl_audit_tree_root_at(tl_audit_tree_t *tree, uint64_t size, tl_merkle_hash_t out)
{
    if (size > tree->state.size)
        return TL_EINVAL;
    if (size == tree->state.size) {
        tl_merkle_state_root(&tree->state, out);
        return 0;
    }
    return tl_merkle_root(leaf_of_file, tree, size, out);
}

int tl_audit_tree_inclusion_proof(tl_audit_tree_t *tree, uint64_t index, uint64_t size,
                                  tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count)
{
    *count = 0;
    if (size > tree->state.size)
        return TL_EINVAL;
    return tl_merkle_inclusion_proof(leaf_of_file, tree, index, size, proof, count);
}

int tl_audit_tree_consistency_proof(tl_audit_tree_t *tree, uint64_t old_size, uint64_t new_size,
                                    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count)
{
    *count = 0;
    if (new_size > tree->state.size)
        return TL_EINVAL;
    return tl_merkle_consistency_proof(leaf_of_file, tree, old_size, new_size, proof, count);
}

/* ---- for verifiers ---------------------------------------------------------------------------
 */

int tl_audit_tree_roots_of_log(const char *log_path, const uint64_t *sizes, size_t count,
                               tl_merkle_hash_t *roots, uint64_t *lines_out)
{
    struct line_reader reader;
    tl_merkle_state_t state;
    tl_merkle_state_init(&state);
    *lines_out = 0;
    for (size_t i = 0; i < count; i++)
        memset(roots[i], 0, TL_MERKLE_HASH_LEN);
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = reader_init(&reader, fd, 0);
    for (;;) {
        /* The empty tree's root, and every size reached so far. */
        for (size_t i = 0; i < count && rc == 0; i++)
            if (sizes[i] == state.size)
                tl_merkle_state_root(&state, roots[i]);
        const char *line;
        size_t len;
        uint64_t end;
        tl_merkle_hash_t leaf;
        if (rc != 0)
            break;
        int more = reader_next(&reader, &line, &len, &end);
        if (more <= 0) {
            rc = more;
            break;
        }
        if ((rc = tl_merkle_leaf_hash(line, len, leaf)) != 0 ||
            (rc = tl_merkle_state_append(&state, leaf)) != 0)
            break;
    }
    *lines_out = state.size + (rc == TL_EPROTO);
    reader_free(&reader);
    close(fd);
    return rc;
}
