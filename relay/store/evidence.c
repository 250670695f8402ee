/* The evidence store (DESIGN §7, §8): see relay/store/evidence.h for the layout and rules. */
#include "relay/store/evidence.h"
#include "proto/fsutil.h"

#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#define IO_CHUNK 65536
#define TEMP_PREFIX "w-"
/* A temporary file untouched this long belongs to no live writer. */
#define TEMP_MAX_AGE_SECONDS 3600
/* "ab/" + 64 hex digits + NUL */
#define OBJECT_PATH_LEN (3 + 64 + 1)

struct tl_evidence_store {
    int root_fd;
    int tmp_fd;
    uint64_t max_item_bytes;
    int compression_level;
};

struct tl_evidence_writer {
    tl_evidence_store_t *store;
    int fd; /* the temporary file; -1 once it is gone */
    char temp_name[32];
    tl_sha256_t *sha;
    z_stream zs;
    bool zs_ready;
    uint64_t size;
    int error; /* sticky: after a failure only abort is useful */
    unsigned char out[IO_CHUNK];
};

struct tl_evidence_reader {
    int fd;
    z_stream zs;
    bool zs_ready;
    tl_sha256_t *sha;
    char expected[TL_EVIDENCE_HASH_HEX];
    bool input_ended;
    bool done;
    bool verified; /* read through once and found whole (tl_evidence_verify_step) */
    bool lenient;  /* a mismatch at the end fails the read after the last bytes */
    int error;
    char problem[96];
    unsigned char *scratch; /* where the verifying pass inflates to */
    unsigned char in[IO_CHUNK];
};

bool tl_evidence_hash_valid(const char *hash)
{
    return tl_sha256_hex_valid(hash) == 1;
}

static void object_path(const char *hash, char out[OBJECT_PATH_LEN])
{
    out[0] = hash[0];
    out[1] = hash[1];
    out[2] = '/';
    memcpy(out + 3, hash, 64);
    out[OBJECT_PATH_LEN - 1] = '\0';
}

static void to_hex(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static int fsync_dir_at(int parent_fd, const char *name)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/*
 * mkdir that also makes the new name durable: a directory whose entry is lost
 * in a crash takes every object inside it along.
 */
static int make_dir_at(int parent_fd, const char *name)
{
    if (mkdirat(parent_fd, name, 0700) < 0)
        return errno == EEXIST ? 0 : -errno;
    return fsync_dir_at(parent_fd, ".");
}

/* make_dir_at for the root, which is named by a path rather than under an open directory. */
static int make_root_dir(const char *dir)
{
    if (mkdir(dir, 0700) < 0)
        return errno == EEXIST ? 0 : -errno;
    char *parent = strdup(dir);
    if (!parent)
        return TL_ENOMEM;
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    if (!slash)
        strcpy(parent, ".");
    else if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    int rc = fsync_dir_at(AT_FDCWD, parent);
    free(parent);
    return rc;
}

/*
 * All 256 fan-out directories, made (and synced) once here rather than on
 * first use: two writers committing into a new directory at once could
 * otherwise see one acknowledge before the other's sync of the parent.
 */
static int make_fanout_dirs(int root_fd)
{
    static const char digits[] = "0123456789abcdef";
    bool created = false;
    for (int i = 0; i < 256; i++) {
        char name[3] = {digits[i >> 4], digits[i & 15], '\0'};
        if (mkdirat(root_fd, name, 0700) == 0)
            created = true;
        else if (errno != EEXIST)
            return -errno;
    }
    return created ? fsync_dir_at(root_fd, ".") : 0;
}

/* Removes temporary files a crash left behind; a live writer keeps its mtime fresh. */
static void sweep_temp(tl_evidence_store_t *store)
{
    int fd = dup(store->tmp_fd);
    if (fd < 0)
        return;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return;
    }
    /* fdopendir shares the offset with tmp_fd's description: start from the top. */
    rewinddir(dir);
    time_t now = time(NULL);
    unsigned removed = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        struct stat st;
        if (strncmp(entry->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) != 0)
            continue;
        if (fstatat(store->tmp_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode) || now - st.st_mtime < TEMP_MAX_AGE_SECONDS)
            continue;
        if (unlinkat(store->tmp_fd, entry->d_name, 0) == 0)
            removed++;
    }
    closedir(dir);
    if (removed > 0)
        tl_log_info("evidence store removed stale temporary files count=%u", removed);
}

int tl_evidence_store_open(const char *dir, const tl_evidence_options_t *options,
                           tl_evidence_store_t **out)
{
    int rc = TL_EINVAL;
    tl_evidence_store_t *store = NULL;
    *out = NULL;

    if (!dir || !*dir)
        goto out;
    if (options && (options->compression_level < 0 || options->compression_level > 9))
        goto out;
    rc = TL_ENOMEM;
    store = calloc(1, sizeof *store);
    if (!store)
        goto out;
    store->root_fd = store->tmp_fd = -1;
    store->max_item_bytes =
        options && options->max_item_bytes ? options->max_item_bytes : TL_EVIDENCE_DEFAULT_MAX_ITEM;
    store->compression_level =
        options && options->compression_level ? options->compression_level : Z_DEFAULT_COMPRESSION;

    rc = make_root_dir(dir);
    if (rc < 0)
        goto out;
    store->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (store->root_fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = make_dir_at(store->root_fd, "tmp");
    if (rc < 0)
        goto out;
    rc = make_fanout_dirs(store->root_fd);
    if (rc < 0)
        goto out;
    store->tmp_fd = openat(store->root_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (store->tmp_fd < 0) {
        rc = -errno;
        goto out;
    }
    sweep_temp(store);
    *out = store;
    store = NULL;
    rc = 0;
out:
    tl_evidence_store_close(store);
    return rc;
}

void tl_evidence_store_close(tl_evidence_store_t *store)
{
    if (!store)
        return;
    if (store->tmp_fd >= 0)
        close(store->tmp_fd);
    if (store->root_fd >= 0)
        close(store->root_fd);
    free(store);
}

/* Closes and unlinks the temporary file; nothing of the item is left behind. */
static void drop_temp(tl_evidence_writer_t *writer)
{
    if (writer->fd < 0)
        return;
    close(writer->fd);
    writer->fd = -1;
    unlinkat(writer->store->tmp_fd, writer->temp_name, 0);
}

/* Records the first failure; the writer is dead from here on. */
static int fail_writer(tl_evidence_writer_t *writer, int rc)
{
    if (writer->error == 0)
        writer->error = rc;
    drop_temp(writer);
    return writer->error;
}

int tl_evidence_writer_new(tl_evidence_store_t *store, tl_evidence_writer_t **out)
{
    int rc = TL_ENOMEM;
    tl_evidence_writer_t *writer = NULL;
    *out = NULL;

    if (!store)
        return TL_EINVAL;
    writer = calloc(1, sizeof *writer);
    if (!writer)
        goto out;
    writer->store = store;
    writer->fd = -1;
    writer->sha = tl_sha256_new();
    if (!writer->sha)
        goto out;
    if (deflateInit(&writer->zs, store->compression_level) != Z_OK)
        goto out;
    writer->zs_ready = true;

    /* Random names, so concurrent writers (and relays) never collide. */
    for (int attempt = 0; attempt < 8 && writer->fd < 0; attempt++) {
        unsigned char random_bytes[8];
        if (getrandom(random_bytes, sizeof random_bytes, 0) != sizeof random_bytes) {
            rc = -errno;
            goto out;
        }
        char hex[17];
        to_hex(random_bytes, sizeof random_bytes, hex);
        snprintf(writer->temp_name, sizeof writer->temp_name, TEMP_PREFIX "%s", hex);
        writer->fd = openat(store->tmp_fd, writer->temp_name,
                            O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (writer->fd < 0 && errno != EEXIST) {
            rc = -errno;
            goto out;
        }
    }
    if (writer->fd < 0) {
        rc = TL_EEXIST;
        goto out;
    }
    *out = writer;
    writer = NULL;
    rc = 0;
out:
    tl_evidence_writer_abort(writer);
    return rc;
}

/* Runs deflate over the pending input with flush, writing out full buffers. */
static int deflate_pending(tl_evidence_writer_t *writer, int flush)
{
    for (;;) {
        writer->zs.next_out = writer->out;
        writer->zs.avail_out = sizeof writer->out;
        int zrc = deflate(&writer->zs, flush);
        if (zrc == Z_STREAM_ERROR)
            return TL_EIO;
        size_t produced = sizeof writer->out - writer->zs.avail_out;
        if (produced > 0) {
            int rc = tl_write_all(writer->fd, writer->out, produced);
            if (rc < 0)
                return rc;
        }
        if (flush == Z_FINISH ? zrc == Z_STREAM_END
                              : writer->zs.avail_in == 0 && writer->zs.avail_out != 0)
            return 0;
    }
}

int tl_evidence_writer_write(tl_evidence_writer_t *writer, const void *data, size_t len)
{
    if (!writer || (!data && len > 0))
        return TL_EINVAL;
    if (writer->error)
        return writer->error;
    if (len > writer->store->max_item_bytes - writer->size)
        return fail_writer(writer, TL_EFULL);
    int rc = tl_sha256_update(writer->sha, data, len);
    if (rc < 0)
        return fail_writer(writer, rc);
    const unsigned char *next = data;
    while (len > 0) {
        /* zlib counts in uInt. */
        uInt piece = len > UINT_MAX ? UINT_MAX : (uInt)len;
        writer->zs.next_in = (unsigned char *)next;
        writer->zs.avail_in = piece;
        rc = deflate_pending(writer, Z_NO_FLUSH);
        if (rc < 0)
            return fail_writer(writer, rc);
        next += piece;
        len -= piece;
        writer->size += piece;
    }
    return 0;
}

/* Puts the finished temporary file in place as ab/HASH, or drops it if the item exists. */
static int publish(tl_evidence_writer_t *writer, const char *hash)
{
    tl_evidence_store_t *store = writer->store;
    char path[OBJECT_PATH_LEN];
    char fanout[3] = {hash[0], hash[1], '\0'};
    object_path(hash, path);

    /* Normally made at open; an operator may have removed an empty one since. */
    int rc = make_dir_at(store->root_fd, fanout);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstatat(store->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* Dedup. The other copy's writer may not have synced the directory
         * yet, and we are about to acknowledge: sync it ourselves. */
        drop_temp(writer);
        return fsync_dir_at(store->root_fd, fanout);
    }
    if (errno != ENOENT)
        return -errno;
    /* Read-only on disk: stored evidence is never edited in place. */
    if (fchmod(writer->fd, 0400) < 0 || fsync(writer->fd) < 0)
        return -errno;
    if (close(writer->fd) < 0) {
        writer->fd = -1;
        unlinkat(store->tmp_fd, writer->temp_name, 0);
        return -errno;
    }
    writer->fd = -1;
    /* A racing writer of the same content may rename first; replacing its
     * file with identical content is harmless. */
    if (renameat(store->tmp_fd, writer->temp_name, store->root_fd, path) < 0) {
        rc = -errno;
        unlinkat(store->tmp_fd, writer->temp_name, 0);
        return rc;
    }
    return fsync_dir_at(store->root_fd, fanout);
}

static int commit(tl_evidence_writer_t *writer, const char *expect_hash, uint64_t expect_size,
                  char hash_out[TL_EVIDENCE_HASH_HEX], uint64_t *size_out)
{
    int rc = TL_EINVAL;
    char hash[TL_EVIDENCE_HASH_HEX];

    if (!writer || !hash_out)
        goto out;
    rc = writer->error;
    if (rc < 0)
        goto out;
    writer->zs.next_in = NULL;
    writer->zs.avail_in = 0;
    rc = deflate_pending(writer, Z_FINISH);
    if (rc == 0)
        rc = tl_sha256_final(writer->sha, hash);
    /* Checked before the object is published: a mismatch leaves nothing behind. */
    if (rc == 0 && expect_hash != NULL &&
        (strcmp(hash, expect_hash) != 0 || writer->size != expect_size))
        rc = TL_EMISMATCH;
    if (rc == 0)
        rc = publish(writer, hash);
    if (rc < 0)
        goto out;
    memcpy(hash_out, hash, TL_EVIDENCE_HASH_HEX);
    if (size_out)
        *size_out = writer->size;
out:
    tl_evidence_writer_abort(writer);
    return rc;
}

int tl_evidence_writer_commit(tl_evidence_writer_t *writer, char hash_out[TL_EVIDENCE_HASH_HEX],
                              uint64_t *size_out)
{
    return commit(writer, NULL, 0, hash_out, size_out);
}

int tl_evidence_writer_commit_expected(tl_evidence_writer_t *writer, const char *expect_hash,
                                       uint64_t expect_size, char hash_out[TL_EVIDENCE_HASH_HEX])
{
    if (!tl_evidence_hash_valid(expect_hash)) {
        tl_evidence_writer_abort(writer);
        return TL_EINVAL;
    }
    return commit(writer, expect_hash, expect_size, hash_out, NULL);
}

void tl_evidence_writer_abort(tl_evidence_writer_t *writer)
{
    if (!writer)
        return;
    drop_temp(writer);
    if (writer->zs_ready)
        deflateEnd(&writer->zs);
    tl_sha256_free(writer->sha);
    free(writer);
}

int tl_evidence_put(tl_evidence_store_t *store, const void *data, size_t len,
                    char hash_out[TL_EVIDENCE_HASH_HEX])
{
    tl_evidence_writer_t *writer;
    int rc = tl_evidence_writer_new(store, &writer);
    if (rc < 0)
        return rc;
    rc = tl_evidence_writer_write(writer, data, len);
    if (rc < 0) {
        tl_evidence_writer_abort(writer);
        return rc;
    }
    return tl_evidence_writer_commit(writer, hash_out, NULL);
}

int tl_evidence_exists(tl_evidence_store_t *store, const char *hash)
{
    if (!store || !tl_evidence_hash_valid(hash))
        return TL_EINVAL;
    char path[OBJECT_PATH_LEN];
    object_path(hash, path);
    struct stat st;
    if (fstatat(store->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    return S_ISREG(st.st_mode) ? 1 : 0;
}

int tl_evidence_remove(tl_evidence_store_t *store, const char *hash)
{
    if (!store || !tl_evidence_hash_valid(hash))
        return TL_EINVAL;
    char path[OBJECT_PATH_LEN];
    char fanout[3] = {hash[0], hash[1], '\0'};
    object_path(hash, path);
    if (unlinkat(store->root_fd, path, 0) < 0)
        return errno == ENOENT ? TL_ENOTFOUND : -errno;
    return fsync_dir_at(store->root_fd, fanout);
}

int tl_evidence_open(tl_evidence_store_t *store, const char *hash, tl_evidence_reader_t **out)
{
    int rc = TL_EINVAL;
    tl_evidence_reader_t *reader = NULL;
    *out = NULL;

    if (!store || !tl_evidence_hash_valid(hash))
        goto out;
    rc = TL_ENOMEM;
    reader = calloc(1, sizeof *reader);
    if (!reader)
        goto out;
    reader->fd = -1;
    memcpy(reader->expected, hash, TL_EVIDENCE_HASH_HEX);
    reader->sha = tl_sha256_new();
    if (!reader->sha)
        goto out;
    if (inflateInit(&reader->zs) != Z_OK)
        goto out;
    reader->zs_ready = true;
    char path[OBJECT_PATH_LEN];
    object_path(hash, path);
    reader->fd = openat(store->root_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (reader->fd < 0) {
        rc = errno == ENOENT ? TL_ENOTFOUND : -errno;
        goto out;
    }
    *out = reader;
    reader = NULL;
    rc = 0;
out:
    tl_evidence_close(reader);
    return rc;
}

static int fail_reader(tl_evidence_reader_t *reader, int rc, const char *why)
{
    if (reader->error == 0) {
        reader->error = rc;
        snprintf(reader->problem, sizeof reader->problem, "%s", why);
        if (rc == TL_EDAMAGED)
            tl_log_error("evidence item is damaged hash=%s reason=\"%s\"", reader->expected, why);
    }
    return reader->error;
}

/* Refills the input buffer; sets input_ended at the end of the file. */
static int fill_input(tl_evidence_reader_t *reader)
{
    for (;;) {
        ssize_t n = read(reader->fd, reader->in, sizeof reader->in);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        reader->zs.next_in = reader->in;
        reader->zs.avail_in = (uInt)n;
        reader->input_ended = n == 0;
        return 0;
    }
}

/* At the end of the zlib stream: nothing may follow it, and the name must match. */
static int finish_reading(tl_evidence_reader_t *reader)
{
    if (reader->zs.avail_in == 0 && !reader->input_ended) {
        int rc = fill_input(reader);
        if (rc < 0)
            return fail_reader(reader, rc, "read failed");
    }
    if (reader->zs.avail_in > 0)
        return fail_reader(reader, TL_EDAMAGED, "bytes after the compressed stream");
    char actual[TL_EVIDENCE_HASH_HEX];
    int rc = tl_sha256_final(reader->sha, actual);
    if (rc < 0)
        return fail_reader(reader, rc, "hash failed");
    if (strcmp(actual, reader->expected) != 0)
        return fail_reader(reader, TL_EDAMAGED, "content does not match its name");
    reader->done = true;
    return 0;
}

int tl_evidence_read(tl_evidence_reader_t *reader, void *buf, size_t cap, size_t *got)
{
    if (!reader || !buf || cap == 0 || !got)
        return TL_EINVAL;
    *got = 0;
    if (reader->error)
        return reader->error;
    if (reader->done)
        return 0;

    uInt room = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
    size_t produced = 0;
    while (produced == 0) {
        if (reader->zs.avail_in == 0 && !reader->input_ended) {
            int rc = fill_input(reader);
            if (rc < 0)
                return fail_reader(reader, rc, "read failed");
        }
        reader->zs.next_out = buf;
        reader->zs.avail_out = room;
        int zrc = inflate(&reader->zs, Z_NO_FLUSH);
        produced = room - reader->zs.avail_out;
        if (produced > 0 && tl_sha256_update(reader->sha, buf, produced) < 0)
            return fail_reader(reader, TL_ENOMEM, "hash failed");
        if (zrc == Z_STREAM_END) {
            int rc = finish_reading(reader);
            if (rc < 0 && !(reader->lenient && produced > 0))
                return rc;
            break;
        }
        if (zrc == Z_MEM_ERROR)
            return fail_reader(reader, TL_ENOMEM, "out of memory");
        if (zrc == Z_BUF_ERROR && reader->input_ended && reader->zs.avail_in == 0)
            return fail_reader(reader, TL_EDAMAGED, "compressed stream ends early");
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return fail_reader(reader, TL_EDAMAGED, reader->zs.msg ? reader->zs.msg : "bad data");
        if (produced == 0 && reader->input_ended && reader->zs.avail_in == 0)
            return fail_reader(reader, TL_EDAMAGED, "compressed stream ends early");
    }
    *got = produced;
    return 0;
}

int tl_evidence_close(tl_evidence_reader_t *reader)
{
    if (!reader)
        return 0;
    int rc = reader->error == TL_EDAMAGED ? TL_EDAMAGED : 0;
    if (reader->fd >= 0)
        close(reader->fd);
    if (reader->zs_ready)
        inflateEnd(&reader->zs);
    tl_sha256_free(reader->sha);
    free(reader->scratch);
    free(reader);
    return rc;
}

void tl_evidence_reader_hand_out_damaged(tl_evidence_reader_t *reader)
{
    reader->lenient = true;
}

const char *tl_evidence_reader_problem(const tl_evidence_reader_t *reader)
{
    return reader->problem;
}

/* Back to the first byte, for the pass that hands the content out. */
static int rewind_reader(tl_evidence_reader_t *reader)
{
    if (lseek(reader->fd, 0, SEEK_SET) < 0)
        return fail_reader(reader, -errno, "seek failed");
    if (inflateReset(&reader->zs) != Z_OK)
        return fail_reader(reader, TL_EIO, "inflate reset failed");
    tl_sha256_free(reader->sha);
    reader->sha = tl_sha256_new();
    if (!reader->sha)
        return fail_reader(reader, TL_ENOMEM, "out of memory");
    reader->zs.next_in = NULL;
    reader->zs.avail_in = 0;
    reader->input_ended = false;
    reader->done = false;
    return 0;
}

int tl_evidence_verify_step(tl_evidence_reader_t *reader, uint64_t budget, bool *verified)
{
    if (!reader || !verified)
        return TL_EINVAL;
    *verified = reader->verified;
    if (reader->verified)
        return 0;
    if (reader->error)
        return reader->error;
    if (!reader->scratch && !(reader->scratch = malloc(IO_CHUNK)))
        return TL_ENOMEM;
    uint64_t seen = 0;
    for (;;) {
        size_t got = 0;
        int rc = tl_evidence_read(reader, reader->scratch, IO_CHUNK, &got);
        if (rc < 0)
            return rc;
        if (got == 0)
            break; /* the end, and the content matched its name */
        seen += got;
        if (seen >= budget)
            return 0;
    }
    int rc = rewind_reader(reader);
    if (rc < 0)
        return rc;
    free(reader->scratch);
    reader->scratch = NULL;
    reader->verified = true;
    *verified = true;
    return 0;
}

int tl_evidence_verify(tl_evidence_store_t *store, const char *hash, char *reason, size_t size)
{
    tl_evidence_reader_t *reader = NULL;
    bool verified = false;
    if (reason != NULL && size > 0)
        reason[0] = '\0';
    int rc = tl_evidence_open(store, hash, &reader);
    if (rc == 0)
        rc = tl_evidence_verify_step(reader, UINT64_MAX, &verified);
    if (rc != 0 && reason != NULL && size > 0)
        snprintf(reason, size, "%s",
                 reader != NULL && reader->problem[0] ? reader->problem : tl_strerror(rc));
    tl_evidence_close(reader);
    return rc;
}

int tl_evidence_foreach(tl_evidence_store_t *store, int (*fn)(const char *hash, void *arg),
                        void *arg)
{
    static const char digits[] = "0123456789abcdef";
    int rc = 0;
    for (int i = 0; i < 256 && rc == 0; i++) {
        char name[3] = {digits[i >> 4], digits[i & 15], '\0'};
        int fd = openat(store->root_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return -errno;
        }
        DIR *dir = fdopendir(fd);
        if (!dir) {
            rc = -errno;
            close(fd);
            return rc;
        }
        struct dirent *entry;
        while (rc == 0 && (entry = readdir(dir)) != NULL) {
            /* Only names an item can have, in the directory its name says. */
            if (tl_evidence_hash_valid(entry->d_name) && entry->d_name[0] == name[0] &&
                entry->d_name[1] == name[1])
                rc = fn(entry->d_name, arg);
        }
        closedir(dir);
    }
    return rc;
}
