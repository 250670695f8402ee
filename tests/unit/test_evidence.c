/* The evidence store: round trips, dedup, corruption, bad names, limits, no leftovers. */
#include "tl_test.h"

#include "relay/store/evidence.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define HELLO_HASH "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct fixture {
    char dir[64];
    char root[96];
    tl_evidence_store_t *store;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tl-evidence-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->root, sizeof fx->root, "%s/evidence", fx->dir);
    if (tl_evidence_store_open(fx->root, NULL, &fx->store) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    tl_evidence_store_close(fx->store);
    nftw(fx->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void sha256_hex(const void *data, size_t len, char out[TL_EVIDENCE_HASH_HEX])
{
    unsigned char digest[32];
    unsigned int digest_len;
    assert_int_equal(EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* Entries in a directory, not counting . and .. */
static int count_entries(const char *path)
{
    DIR *dir = opendir(path);
    assert_non_null(dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        count += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
    closedir(dir);
    return count;
}

static int count_temp_files(struct fixture *fx)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tmp", fx->root);
    return count_entries(path);
}

/* Stored objects, across all fan-out directories. */
static int count_objects(struct fixture *fx)
{
    int count = 0;
    for (int i = 0; i < 256; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%02x", fx->root, i);
        count += count_entries(path);
    }
    return count;
}

static void object_file(struct fixture *fx, const char *hash, char *out, size_t size)
{
    snprintf(out, size, "%s/%.2s/%s", fx->root, hash, hash);
}

/* Reads the whole item with reads of at most `step` bytes; returns the read result. */
static int read_item(tl_evidence_store_t *store, const char *hash, size_t step, char **data_out,
                     size_t *len_out)
{
    tl_evidence_reader_t *reader;
    int rc = tl_evidence_open(store, hash, &reader);
    if (rc < 0)
        return rc;
    size_t cap = 1 << 20, len = 0;
    char *data = malloc(cap);
    assert_non_null(data);
    size_t got;
    while ((rc = tl_evidence_read(reader, data + len, step, &got)) == 0 && got > 0) {
        len += got;
        if (cap - len < step) {
            cap *= 2;
            data = realloc(data, cap);
            assert_non_null(data);
        }
    }
    int close_rc = tl_evidence_close(reader);
    if (rc == 0)
        rc = close_rc;
    *data_out = data;
    *len_out = len;
    return rc;
}

/* Content that compresses somewhat but not trivially. */
static char *sample_content(size_t len)
{
    char *data = malloc(len);
    assert_non_null(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245 + 12345;
        data[i] = (i / 4096) % 2 ? (char)('a' + i % 26) : (char)(x >> 24);
    }
    return data;
}

static void test_small_item_round_trip(void **state)
{
    struct fixture *fx = *state;
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, hash));
    assert_string_equal(hash, HELLO_HASH);
    assert_int_equal(tl_evidence_exists(fx->store, HELLO_HASH), 1);

    /* Laid out as ROOT/2c/2cf2..., read-only. */
    char path[256];
    object_file(fx, hash, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0400);

    char *data;
    size_t len;
    TL_ASSERT_OK(read_item(fx->store, hash, 4096, &data, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(data, "hello", 5);
    free(data);
    assert_int_equal(count_temp_files(fx), 0);
}

static void test_empty_item_round_trip(void **state)
{
    struct fixture *fx = *state;
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, NULL, 0, hash));
    assert_string_equal(hash, EMPTY_HASH);
    char *data;
    size_t len;
    TL_ASSERT_OK(read_item(fx->store, hash, 1, &data, &len));
    assert_int_equal(len, 0);
    free(data);
}

static void test_multi_mib_item_streamed_in_odd_chunks(void **state)
{
    struct fixture *fx = *state;
    size_t total = 5 * 1024 * 1024 + 333;
    char *content = sample_content(total);
    char expected[TL_EVIDENCE_HASH_HEX];
    sha256_hex(content, total, expected);

    static const size_t chunks[] = {1, 7, 4093, 65537, 1000003, 3};
    tl_evidence_writer_t *writer;
    TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &writer));
    for (size_t off = 0, i = 0; off < total; i++) {
        size_t n = chunks[i % 6] < total - off ? chunks[i % 6] : total - off;
        TL_ASSERT_OK(tl_evidence_writer_write(writer, content + off, n));
        off += n;
    }
    char hash[TL_EVIDENCE_HASH_HEX];
    uint64_t size = 0;
    TL_ASSERT_OK(tl_evidence_writer_commit(writer, hash, &size));
    assert_string_equal(hash, expected);
    assert_int_equal(size, total);

    static const size_t steps[] = {13, 8191, 100000, 1 << 20};
    for (size_t i = 0; i < 4; i++) {
        char *data;
        size_t len;
        TL_ASSERT_OK(read_item(fx->store, hash, steps[i], &data, &len));
        assert_int_equal(len, total);
        assert_memory_equal(data, content, total);
        free(data);
    }
    free(content);
}

static void test_same_content_is_stored_once(void **state)
{
    struct fixture *fx = *state;
    char first[TL_EVIDENCE_HASH_HEX], second[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "diagnostics", 11, first));
    char path[256];
    object_file(fx, first, path, sizeof path);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    TL_ASSERT_OK(tl_evidence_put(fx->store, "diagnostics", 11, second));
    assert_string_equal(first, second);
    assert_int_equal(stat(path, &after), 0);
    /* Not rewritten: the same file, not an identical replacement. */
    assert_int_equal(after.st_ino, before.st_ino);
    char fanout[128];
    snprintf(fanout, sizeof fanout, "%s/%.2s", fx->root, first);
    assert_int_equal(count_entries(fanout), 1);
    assert_int_equal(count_temp_files(fx), 0);
}

static void flip_byte(const char *path, long offset)
{
    assert_int_equal(chmod(path, 0600), 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
    int c = fgetc(f);
    fseek(f, -1, SEEK_CUR);
    fputc(c ^ 0x20, f);
    fclose(f);
}

static void test_flipped_byte_detected_on_read(void **state)
{
    struct fixture *fx = *state;
    size_t total = 300000;
    char *content = sample_content(total);
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, total, hash));
    char path[256];
    object_file(fx, hash, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    flip_byte(path, st.st_size / 2);

    char *data;
    size_t len;
    TL_ASSERT_RC(TL_EDAMAGED, read_item(fx->store, hash, 4096, &data, &len));
    free(data);
    free(content);
}

static void test_flipped_checksum_byte_detected_on_read(void **state)
{
    struct fixture *fx = *state;
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, hash));
    char path[256];
    object_file(fx, hash, path, sizeof path);
    flip_byte(path, -1);
    char *data;
    size_t len;
    TL_ASSERT_RC(TL_EDAMAGED, read_item(fx->store, hash, 4096, &data, &len));
    free(data);
}

/* A well-formed stream under the wrong name: only the hash check can tell. */
static void test_content_not_matching_its_name_detected(void **state)
{
    struct fixture *fx = *state;
    char hello[TL_EVIDENCE_HASH_HEX], other[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, hello));
    TL_ASSERT_OK(tl_evidence_put(fx->store, "jello", 5, other));
    char hello_path[256], other_path[256];
    object_file(fx, hello, hello_path, sizeof hello_path);
    object_file(fx, other, other_path, sizeof other_path);
    assert_int_equal(rename(other_path, hello_path), 0);

    tl_evidence_reader_t *reader;
    TL_ASSERT_OK(tl_evidence_open(fx->store, hello, &reader));
    char buf[64];
    size_t got = 99;
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_read(reader, buf, sizeof buf, &got));
    assert_int_equal(got, 0);
    /* The failure sticks: no later read reports a clean end. */
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_read(reader, buf, sizeof buf, &got));
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_close(reader));
}

/* A reader told to hand out damaged content (replay --force) gives every byte, then the
 * mismatch: the caller can hash what is stored and name it. */
static void test_damaged_content_handed_out_when_asked_then_refused(void **state)
{
    struct fixture *fx = *state;
    char hello[TL_EVIDENCE_HASH_HEX], other[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, hello));
    TL_ASSERT_OK(tl_evidence_put(fx->store, "jello", 5, other));
    char hello_path[256], other_path[256];
    object_file(fx, hello, hello_path, sizeof hello_path);
    object_file(fx, other, other_path, sizeof other_path);
    assert_int_equal(rename(other_path, hello_path), 0);

    tl_evidence_reader_t *reader;
    TL_ASSERT_OK(tl_evidence_open(fx->store, hello, &reader));
    tl_evidence_reader_hand_out_damaged(reader);
    char buf[64];
    size_t got = 0;
    TL_ASSERT_OK(tl_evidence_read(reader, buf, sizeof buf, &got));
    assert_int_equal(got, 5);
    assert_memory_equal(buf, "jello", 5);
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_read(reader, buf, sizeof buf, &got));
    assert_int_equal(got, 0);
    assert_string_equal(tl_evidence_reader_problem(reader), "content does not match its name");
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_close(reader));
}

static void test_truncated_or_extended_object_detected(void **state)
{
    struct fixture *fx = *state;
    size_t total = 100000;
    char *content = sample_content(total);
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, total, hash));
    char path[256];
    object_file(fx, hash, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(chmod(path, 0600), 0);

    assert_int_equal(truncate(path, st.st_size - 10), 0);
    char *data;
    size_t len;
    TL_ASSERT_RC(TL_EDAMAGED, read_item(fx->store, hash, 4096, &data, &len));
    free(data);

    /* Put it back whole, then add bytes after the stream's end. */
    assert_int_equal(unlink(path), 0);
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, total, hash));
    assert_int_equal(chmod(path, 0600), 0);
    FILE *f = fopen(path, "ab");
    fputs("trailing", f);
    fclose(f);
    TL_ASSERT_RC(TL_EDAMAGED, read_item(fx->store, hash, 4096, &data, &len));
    free(data);
    free(content);
}

/* A damaged item is refused by the check, before a single byte of it has been handed out. */
static void test_damaged_item_refused_before_any_byte(void **state)
{
    struct fixture *fx = *state;
    size_t total = 1000000;
    char *content = sample_content(total);
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, total, hash));
    char path[256];
    object_file(fx, hash, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    flip_byte(path, st.st_size - 100); /* near the end: a streaming reader finds it last */

    tl_evidence_reader_t *reader;
    TL_ASSERT_OK(tl_evidence_open(fx->store, hash, &reader));
    bool verified = false;
    int rc = 0, steps = 0;
    while (rc == 0 && !verified && steps < 1000) {
        rc = tl_evidence_verify_step(reader, 64 * 1024, &verified);
        steps++;
    }
    TL_ASSERT_RC(TL_EDAMAGED, rc);
    assert_false(verified);
    assert_true(steps > 1); /* the check was spread over several steps */
    assert_true(strlen(tl_evidence_reader_problem(reader)) > 0);
    /* Nothing can be read from it afterwards either. */
    char buf[64];
    size_t got = 99;
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_read(reader, buf, sizeof buf, &got));
    assert_int_equal(got, 0);
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_close(reader));
    free(content);
}

/* A whole item, once checked, reads from its first byte to its last. */
static void test_checked_item_reads_from_its_first_byte(void **state)
{
    struct fixture *fx = *state;
    size_t total = 700000;
    char *content = sample_content(total);
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, total, hash));
    tl_evidence_reader_t *reader;
    TL_ASSERT_OK(tl_evidence_open(fx->store, hash, &reader));
    bool verified = false;
    for (int steps = 0; !verified; steps++) {
        assert_true(steps < 1000);
        TL_ASSERT_OK(tl_evidence_verify_step(reader, 100 * 1000, &verified));
    }
    char *data = malloc(total + 1);
    size_t len = 0, got;
    do {
        TL_ASSERT_OK(tl_evidence_read(reader, data + len, total + 1 - len, &got));
        len += got;
    } while (got > 0 && len <= total);
    assert_int_equal(len, total);
    assert_int_equal(memcmp(data, content, total), 0);
    TL_ASSERT_OK(tl_evidence_close(reader));
    free(data);
    free(content);
}

static int collect_name(const char *hash, void *arg)
{
    char *names = arg;
    strcat(names, hash);
    strcat(names, " ");
    return 0;
}

static void test_verify_every_item_names_the_damaged_one(void **state)
{
    struct fixture *fx = *state;
    char hello[TL_EVIDENCE_HASH_HEX], jello[TL_EVIDENCE_HASH_HEX], empty[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, hello));
    TL_ASSERT_OK(tl_evidence_put(fx->store, "jello", 5, jello));
    TL_ASSERT_OK(tl_evidence_put(fx->store, "", 0, empty));
    char path[256];
    object_file(fx, jello, path, sizeof path);
    flip_byte(path, -1);

    char names[4 * TL_EVIDENCE_HASH_HEX + 8] = "";
    TL_ASSERT_OK(tl_evidence_foreach(fx->store, collect_name, names));
    assert_non_null(strstr(names, hello));
    assert_non_null(strstr(names, jello));
    assert_non_null(strstr(names, empty));
    assert_int_equal(strlen(names), 3 * 65);

    char reason[128];
    TL_ASSERT_OK(tl_evidence_verify(fx->store, hello, reason, sizeof reason));
    TL_ASSERT_OK(tl_evidence_verify(fx->store, empty, reason, sizeof reason));
    TL_ASSERT_RC(TL_EDAMAGED, tl_evidence_verify(fx->store, jello, reason, sizeof reason));
    assert_true(strlen(reason) > 0);
    static const char absent[] = "0000000000000000000000000000000000000000000000000000000000000000";
    TL_ASSERT_RC(TL_ENOTFOUND, tl_evidence_verify(fx->store, absent, reason, sizeof reason));
}

static void test_bad_names_rejected_before_use(void **state)
{
    struct fixture *fx = *state;
    static const char *const bad[] = {
        "../../etc/passwd",
        "",
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982",   /* 63 */
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b98244", /* 65 */
        "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",  /* uppercase */
        "2c/24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "../24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982g",
        " 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982",
    };
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, (char[TL_EVIDENCE_HASH_HEX]){0}));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_evidence_reader_t *reader = (tl_evidence_reader_t *)1;
        assert_false(tl_evidence_hash_valid(bad[i]));
        TL_ASSERT_RC(TL_EINVAL, tl_evidence_exists(fx->store, bad[i]));
        TL_ASSERT_RC(TL_EINVAL, tl_evidence_open(fx->store, bad[i], &reader));
        assert_null(reader);
    }
    assert_false(tl_evidence_hash_valid(NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_evidence_exists(fx->store, NULL));
    assert_true(tl_evidence_hash_valid(HELLO_HASH));
}

static void test_missing_item_is_not_found(void **state)
{
    struct fixture *fx = *state;
    tl_evidence_reader_t *reader;
    assert_int_equal(tl_evidence_exists(fx->store, HELLO_HASH), 0);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_evidence_open(fx->store, HELLO_HASH, &reader));
}

static void test_item_over_size_limit_refused_and_nothing_left(void **state)
{
    struct fixture *fx = *state;
    tl_evidence_store_close(fx->store);
    tl_evidence_options_t options = {.max_item_bytes = 1000};
    TL_ASSERT_OK(tl_evidence_store_open(fx->root, &options, &fx->store));
    char *content = sample_content(2000);

    tl_evidence_writer_t *writer;
    TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &writer));
    TL_ASSERT_OK(tl_evidence_writer_write(writer, content, 600));
    assert_int_equal(count_temp_files(fx), 1);
    TL_ASSERT_RC(TL_EFULL, tl_evidence_writer_write(writer, content + 600, 401));
    /* Gone at once, not only after the caller aborts. */
    assert_int_equal(count_temp_files(fx), 0);
    TL_ASSERT_RC(TL_EFULL, tl_evidence_writer_write(writer, content, 1));
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_RC(TL_EFULL, tl_evidence_writer_commit(writer, hash, NULL));

    TL_ASSERT_RC(TL_EFULL, tl_evidence_put(fx->store, content, 1001, hash));
    assert_int_equal(count_temp_files(fx), 0);
    assert_int_equal(count_objects(fx), 0);

    /* The limit itself is allowed. */
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, 1000, hash));
    free(content);
}

static void test_aborted_writer_leaves_no_temp_files(void **state)
{
    struct fixture *fx = *state;
    char *content = sample_content(100000);
    tl_evidence_writer_t *writer;
    TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &writer));
    TL_ASSERT_OK(tl_evidence_writer_write(writer, content, 100000));
    assert_int_equal(count_temp_files(fx), 1);
    tl_evidence_writer_abort(writer);
    assert_int_equal(count_temp_files(fx), 0);
    assert_int_equal(count_objects(fx), 0);
    tl_evidence_writer_abort(NULL);
    free(content);
}

/* Content announced in advance: a different hash or size stores nothing. */
static void test_announced_hash_or_size_mismatch_stores_nothing(void **state)
{
    struct fixture *fx = *state;
    char *content = sample_content(50000);
    char right[TL_EVIDENCE_HASH_HEX], got[TL_EVIDENCE_HASH_HEX];
    sha256_hex(content, 50000, right);
    char wrong[TL_EVIDENCE_HASH_HEX];
    memcpy(wrong, right, sizeof wrong);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    struct {
        const char *hash;
        uint64_t size;
        int expected;
    } cases[] = {{wrong, 50000, TL_EMISMATCH},
                 {right, 49999, TL_EMISMATCH},
                 {"../../etc/passwd", 50000, TL_EINVAL},
                 {right, 50000, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_evidence_writer_t *writer;
        TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &writer));
        TL_ASSERT_OK(tl_evidence_writer_write(writer, content, 50000));
        TL_ASSERT_RC(cases[i].expected,
                     tl_evidence_writer_commit_expected(writer, cases[i].hash, cases[i].size, got));
        assert_int_equal(count_temp_files(fx), 0);
        assert_int_equal(count_objects(fx), cases[i].expected == 0 ? 1 : 0);
    }
    assert_string_equal(got, right);
    free(content);
}

/* The disk refusing a write (here: the file size limit) fails the item cleanly. */
static void test_disk_error_leaves_nothing_behind(void **state)
{
    struct fixture *fx = *state;
    size_t total = 2 * 1024 * 1024;
    char *content = sample_content(total);
    struct rlimit old_limit, limit;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    limit = old_limit;
    limit.rlim_cur = 100000;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);

    tl_evidence_writer_t *writer;
    TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &writer));
    int rc = tl_evidence_writer_write(writer, content, total);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    TL_ASSERT_RC(-EFBIG, rc);
    assert_int_equal(count_temp_files(fx), 0);
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_RC(-EFBIG, tl_evidence_writer_commit(writer, hash, NULL));
    assert_int_equal(count_objects(fx), 0);
    free(content);
}

static void test_stored_file_is_compressed(void **state)
{
    struct fixture *fx = *state;
    size_t total = 1 << 20;
    char *content = malloc(total);
    for (size_t i = 0; i < total; i++)
        content[i] = "load average: 0.42 0.37 0.30\n"[i % 29];
    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, content, total, hash));
    char path[256];
    object_file(fx, hash, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if ((size_t)st.st_size * 20 > total)
        fail_msg("stored %lld bytes for %zu bytes of repetitive text", (long long)st.st_size,
                 total);
    /* A zlib stream (RFC 1950): CMF 0x78 is deflate with a 32 KiB window. */
    FILE *f = fopen(path, "rb");
    assert_int_equal(fgetc(f), 0x78);
    fclose(f);
    free(content);
}

static void test_interleaved_writers_do_not_mix(void **state)
{
    struct fixture *fx = *state;
    tl_evidence_writer_t *a, *b;
    TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &a));
    TL_ASSERT_OK(tl_evidence_writer_new(fx->store, &b));
    assert_int_equal(count_temp_files(fx), 2);
    TL_ASSERT_OK(tl_evidence_writer_write(a, "hel", 3));
    TL_ASSERT_OK(tl_evidence_writer_write(b, "jel", 3));
    TL_ASSERT_OK(tl_evidence_writer_write(a, "lo", 2));
    TL_ASSERT_OK(tl_evidence_writer_write(b, "lo", 2));
    char hash_a[TL_EVIDENCE_HASH_HEX], hash_b[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_writer_commit(b, hash_b, NULL));
    TL_ASSERT_OK(tl_evidence_writer_commit(a, hash_a, NULL));
    assert_string_equal(hash_a, HELLO_HASH);
    char expected_b[TL_EVIDENCE_HASH_HEX];
    sha256_hex("jello", 5, expected_b);
    assert_string_equal(hash_b, expected_b);
    assert_int_equal(count_temp_files(fx), 0);
}

static void test_stale_temp_files_removed_on_open(void **state)
{
    struct fixture *fx = *state;
    char stale[160], fresh[160];
    snprintf(stale, sizeof stale, "%s/tmp/w-0123456789abcdef", fx->root);
    snprintf(fresh, sizeof fresh, "%s/tmp/w-fedcba9876543210", fx->root);
    fclose(fopen(stale, "wb"));
    fclose(fopen(fresh, "wb"));
    struct timeval two_hours_ago[2];
    gettimeofday(&two_hours_ago[0], NULL);
    two_hours_ago[0].tv_sec -= 7200;
    two_hours_ago[1] = two_hours_ago[0];
    assert_int_equal(utimes(stale, two_hours_ago), 0);

    tl_evidence_store_close(fx->store);
    TL_ASSERT_OK(tl_evidence_store_open(fx->root, NULL, &fx->store));
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(fresh, F_OK), 0);
}

static void test_bad_arguments_rejected(void **state)
{
    struct fixture *fx = *state;
    tl_evidence_store_t *store = NULL;
    tl_evidence_options_t options = {.compression_level = 12};
    TL_ASSERT_RC(TL_EINVAL, tl_evidence_store_open(fx->root, &options, &store));
    assert_null(store);
    TL_ASSERT_RC(TL_EINVAL, tl_evidence_store_open("", NULL, &store));

    char hash[TL_EVIDENCE_HASH_HEX];
    TL_ASSERT_OK(tl_evidence_put(fx->store, "hello", 5, hash));
    tl_evidence_reader_t *reader;
    TL_ASSERT_OK(tl_evidence_open(fx->store, hash, &reader));
    char buf[8];
    size_t got;
    TL_ASSERT_RC(TL_EINVAL, tl_evidence_read(reader, buf, 0, &got));
    TL_ASSERT_OK(tl_evidence_close(reader));
    TL_ASSERT_OK(tl_evidence_close(NULL));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_small_item_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_announced_hash_or_size_mismatch_stores_nothing, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_empty_item_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_multi_mib_item_streamed_in_odd_chunks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_same_content_is_stored_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_flipped_byte_detected_on_read, setup, teardown),
    cmocka_unit_test_setup_teardown(test_flipped_checksum_byte_detected_on_read, setup, teardown),
    cmocka_unit_test_setup_teardown(test_content_not_matching_its_name_detected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_damaged_content_handed_out_when_asked_then_refused, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_truncated_or_extended_object_detected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_names_rejected_before_use, setup, teardown),
    cmocka_unit_test_setup_teardown(test_missing_item_is_not_found, setup, teardown),
    cmocka_unit_test_setup_teardown(test_item_over_size_limit_refused_and_nothing_left, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_aborted_writer_leaves_no_temp_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_disk_error_leaves_nothing_behind, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stored_file_is_compressed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_interleaved_writers_do_not_mix, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stale_temp_files_removed_on_open, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_arguments_rejected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_damaged_item_refused_before_any_byte, setup, teardown),
    cmocka_unit_test_setup_teardown(test_checked_item_reads_from_its_first_byte, setup, teardown),
    cmocka_unit_test_setup_teardown(test_verify_every_item_names_the_damaged_one, setup, teardown),
};

TL_TEST_MAIN(tests)
