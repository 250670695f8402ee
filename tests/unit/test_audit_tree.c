/*
 * The audit log as a Merkle tree (relay/store/audit_tree.h), its checkpoints file
 * (relay/store/audit_checkpoint.h) and the log checked against signed checkpoints
 * (relay/store/audit_anchors.h): the tree is the log's lines, whatever the leaves cache holds;
 * each kind of tampering is named with the checkpoint and the entries it concerns.
 */
#include "tl_test.h"

#include "proto/keys.h"
#include "proto/note.h"
#include "relay/store/audit_anchors.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_tree.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define ORIGIN "tierline.relay/test"

struct fixture {
    char dir[64];
    char log[96];
    char leaves[96];
    char checkpoints[96];
    EVP_PKEY *key;
    tl_note_verifier_t verifier;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char vkey[TL_NOTE_VKEY_MAX];
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/tl-tree-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->dir);
    snprintf(f->leaves, sizeof f->leaves, "%s/audit.leaves", f->dir);
    snprintf(f->checkpoints, sizeof f->checkpoints, "%s/audit.checkpoints", f->dir);
    if (tl_key_generate(&f->key) != 0 || tl_note_vkey_format(ORIGIN, f->key, vkey) != 0 ||
        tl_note_vkey_parse(vkey, &f->verifier) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    EVP_PKEY_free(f->key);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

/* Line n of the test logs (1-based), without its line feed. */
static void line_text(int n, char *out, size_t size)
{
    snprintf(out, size, "{\"seq\":%d,\"what\":\"entry %d\"}", n, n);
}

static void write_file(const char *path, const char *data, size_t len, int append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Appends lines from..to to the log. */
static void append_lines(const char *path, int from, int to)
{
    for (int n = from; n <= to; n++) {
        char line[128];
        line_text(n, line, sizeof line);
        strcat(line, "\n");
        write_file(path, line, strlen(line), 1);
    }
}

static int expected_leaf(void *arg, uint64_t index, tl_merkle_hash_t out)
{
    (void)arg;
    char line[128];
    line_text((int)index + 1, line, sizeof line);
    return tl_merkle_leaf_hash(line, strlen(line), out);
}

/* The root of lines 1..size as the test computes it. */
static void expected_root(uint64_t size, tl_merkle_hash_t out)
{
    TL_ASSERT_OK(tl_merkle_root(expected_leaf, NULL, size, out));
}

static void assert_root(tl_audit_tree_t *tree, uint64_t size)
{
    tl_merkle_hash_t want, got;
    assert_int_equal(tl_audit_tree_size(tree), size);
    expected_root(size, want);
    tl_audit_tree_root(tree, got);
    assert_memory_equal(want, got, TL_MERKLE_HASH_LEN);
}

static void test_leaves_are_the_log_lines_without_their_line_feed(void **state)
{
    struct fixture *f = *state;
    tl_audit_tree_t *tree = NULL;
    char why[256];
    append_lines(f->log, 1, 37);
    write_file(f->log, "{\"seq\":38,\"torn", 15, 1); /* a torn tail is no leaf */
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    assert_root(tree, 37);
    tl_merkle_hash_t leaf, want;
    TL_ASSERT_OK(tl_audit_tree_leaf(tree, 36, leaf));
    expected_leaf(NULL, 36, want);
    assert_memory_equal(leaf, want, TL_MERKLE_HASH_LEN);
    TL_ASSERT_RC(TL_EINVAL, tl_audit_tree_leaf(tree, 37, leaf));
    struct stat st;
    assert_int_equal(stat(f->leaves, &st), 0);
    assert_int_equal(st.st_size, 37 * TL_AUDIT_LEAF_RECORD);
    tl_audit_tree_close(tree);
}

static void test_tree_takes_in_what_is_appended(void **state)
{
    struct fixture *f = *state;
    tl_audit_tree_t *tree = NULL;
    char why[256];
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why)); /* no log yet */
    assert_root(tree, 0);
    append_lines(f->log, 1, 5);
    TL_ASSERT_OK(tl_audit_tree_update(tree));
    assert_root(tree, 5);
    append_lines(f->log, 6, 1030);
    TL_ASSERT_OK(tl_audit_tree_update(tree));
    assert_root(tree, 1030);
    tl_merkle_hash_t at, want;
    TL_ASSERT_OK(tl_audit_tree_root_at(tree, 600, at));
    expected_root(600, want);
    assert_memory_equal(at, want, TL_MERKLE_HASH_LEN);
    TL_ASSERT_RC(TL_EINVAL, tl_audit_tree_root_at(tree, 1031, at));
    tl_audit_tree_close(tree);
    /* Opened again, it starts from its leaves and the log agrees. */
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    assert_root(tree, 1030);
    tl_audit_tree_close(tree);
}

/* The leaves file is a cache: damaged, short, long or stale, the tree is still the log's. */
static void test_damaged_leaves_are_rebuilt_from_the_log(void **state)
{
    struct fixture *f = *state;
    tl_audit_tree_t *tree = NULL;
    char why[256];
    append_lines(f->log, 1, 20);
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    tl_audit_tree_close(tree);
    /* The last record's hash flipped. */
    int fd = open(f->leaves, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte = 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, 19 * TL_AUDIT_LEAF_RECORD), 1);
    close(fd);
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    assert_root(tree, 20);
    tl_audit_tree_close(tree);
    /* Cut short, with a torn record. */
    assert_int_equal(truncate(f->leaves, 7 * TL_AUDIT_LEAF_RECORD + 13), 0);
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    assert_root(tree, 20);
    tl_audit_tree_close(tree);
    /* The log replaced by a shorter one (a recovery): more leaves than lines. */
    unlink(f->log);
    append_lines(f->log, 1, 12);
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    assert_root(tree, 12);
    tl_audit_tree_close(tree);
}

static void test_a_log_shorter_than_its_tree_is_refused(void **state)
{
    struct fixture *f = *state;
    tl_audit_tree_t *tree = NULL;
    char why[256];
    append_lines(f->log, 1, 10);
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    assert_int_equal(truncate(f->log, 30), 0);
    TL_ASSERT_RC(TL_EAUDIT, tl_audit_tree_update(tree));
    assert_non_null(strstr(tl_audit_tree_problem(tree), "shorter"));
    assert_root(tree, 10); /* what it held stays */
    tl_audit_tree_close(tree);
}

static void test_proofs_of_the_tree_verify(void **state)
{
    struct fixture *f = *state;
    tl_audit_tree_t *tree = NULL;
    char why[256];
    append_lines(f->log, 1, 77);
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], root, old_root, leaf;
    size_t count = 0;
    tl_audit_tree_root(tree, root);
    TL_ASSERT_OK(tl_audit_tree_inclusion_proof(tree, 40, 77, proof, &count));
    TL_ASSERT_OK(tl_audit_tree_leaf(tree, 40, leaf));
    TL_ASSERT_OK(tl_merkle_inclusion_verify(40, 77, leaf, proof, count, root));
    TL_ASSERT_OK(tl_audit_tree_consistency_proof(tree, 50, 77, proof, &count));
    TL_ASSERT_OK(tl_audit_tree_root_at(tree, 50, old_root));
    TL_ASSERT_OK(tl_merkle_consistency_verify(50, 77, old_root, root, proof, count));
    TL_ASSERT_RC(TL_EINVAL, tl_audit_tree_inclusion_proof(tree, 1, 78, proof, &count));
    tl_audit_tree_close(tree);
}

static void test_roots_of_a_log_read_once(void **state)
{
    struct fixture *f = *state;
    append_lines(f->log, 1, 33);
    uint64_t sizes[4] = {33, 0, 5, 40}, lines = 0;
    tl_merkle_hash_t roots[4], want, zero = {0};
    TL_ASSERT_OK(tl_audit_tree_roots_of_log(f->log, sizes, 4, roots, &lines));
    assert_int_equal(lines, 33);
    for (int i = 0; i < 3; i++) {
        expected_root(sizes[i], want);
        assert_memory_equal(roots[i], want, TL_MERKLE_HASH_LEN);
    }
    assert_memory_equal(roots[3], zero, TL_MERKLE_HASH_LEN);
}

/* ---- checkpoints ---- */

/* The signed checkpoint of the log's first size lines as it is now, by key under name. */
static char *sign_checkpoint(struct fixture *f, EVP_PKEY *key, const char *name, uint64_t size,
                             const tl_merkle_hash_t *root_override)
{
    tl_checkpoint_t checkpoint;
    memset(&checkpoint, 0, sizeof checkpoint);
    snprintf(checkpoint.origin, sizeof checkpoint.origin, "%s", name);
    checkpoint.size = size;
    if (root_override != NULL) {
        memcpy(checkpoint.root, *root_override, TL_MERKLE_HASH_LEN);
    } else {
        uint64_t lines;
        TL_ASSERT_OK(tl_audit_tree_roots_of_log(f->log, &size, 1, &checkpoint.root, &lines));
    }
    char text[256], *note = NULL;
    size_t len;
    TL_ASSERT_OK(tl_checkpoint_format(&checkpoint, text, sizeof text));
    TL_ASSERT_OK(tl_note_sign(text, strlen(text), name, key, &note, &len));
    return note;
}

/* Appends a checkpoint as the relay stores it: the note and an empty line. */
static void store_note(const char *path, char *note)
{
    write_file(path, note, strlen(note), 1);
    write_file(path, "\n", 1, 1);
    free(note);
}

static int count_note(void *arg, uint64_t index, const char *note, size_t len)
{
    (void)note;
    (void)len;
    *(uint64_t *)arg = index;
    return 0;
}

static void test_checkpoints_file_reads_whole_records_only(void **state)
{
    struct fixture *f = *state;
    append_lines(f->log, 1, 4);
    store_note(f->checkpoints, sign_checkpoint(f, f->key, ORIGIN, 2, NULL));
    store_note(f->checkpoints, sign_checkpoint(f, f->key, ORIGIN, 4, NULL));
    write_file(f->checkpoints, ORIGIN "\n4\n", strlen(ORIGIN) + 3, 1); /* torn */
    uint64_t seen = 0, tail = 0;
    TL_ASSERT_OK(tl_audit_checkpoints_each(f->checkpoints, count_note, &seen, &tail));
    assert_int_equal(seen, 2);
    assert_int_equal(tail, strlen(ORIGIN) + 3);
    char *last = NULL;
    size_t len = 0;
    TL_ASSERT_OK(tl_audit_checkpoints_last(f->checkpoints, &last, &len));
    json_t *details = NULL;
    TL_ASSERT_OK(tl_audit_checkpoint_details(last, len, &details));
    assert_int_equal(json_integer_value(json_object_get(details, "size")), 4);
    assert_string_equal(json_string_value(json_object_get(details, "origin")), ORIGIN);
    assert_int_equal(strlen(json_string_value(json_object_get(details, "signature"))), 92);
    json_decref(details);
    free(last);
}

/* Verifies the log against the stored checkpoints (and extra, if not NULL). */
static int anchors(struct fixture *f, const char *extra, tl_audit_anchor_report_t *report)
{
    const char *files[2] = {f->checkpoints, extra};
    const int optional[2] = {1, 0};
    return tl_audit_anchors_verify(f->log, files, optional, extra ? 2 : 1, &f->verifier, report);
}

/* A log of 30 entries with checkpoints at 10, 20 and 30. */
static void checkpointed_log(struct fixture *f)
{
    append_lines(f->log, 1, 30);
    for (uint64_t size = 10; size <= 30; size += 10)
        store_note(f->checkpoints, sign_checkpoint(f, f->key, ORIGIN, size, NULL));
}

static void rewrite_log(struct fixture *f, int lines, int changed)
{
    unlink(f->log);
    for (int n = 1; n <= lines; n++) {
        char line[128];
        line_text(n, line, sizeof line);
        if (n == changed)
            line[strlen(line) - 3] ^= 1;
        strcat(line, "\n");
        write_file(f->log, line, strlen(line), 1);
    }
}

static void test_a_log_that_matches_its_checkpoints_verifies(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    checkpointed_log(f);
    TL_ASSERT_OK(anchors(f, NULL, &report));
    assert_int_equal(report.checked, 3);
    assert_int_equal(report.last_size, 30);
    assert_int_equal(report.covered, 30);
    assert_int_equal(report.log_entries, 30);
}

static void test_entries_after_the_last_checkpoint_are_unsigned(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    checkpointed_log(f);
    append_lines(f->log, 31, 34); /* no checkpoint covers them: not proven */
    TL_ASSERT_RC(TL_EVERIFY, anchors(f, NULL, &report));
    assert_string_equal(report.category, "unsigned");
    assert_int_equal(report.index, 3);
    assert_int_equal(report.size, 30);
    assert_int_equal(report.covered, 30);
    assert_int_equal(report.first_entry, 31);
    assert_int_equal(report.last_entry, 34);
    assert_non_null(strstr(report.reason, "not covered by a signed checkpoint"));
}

static void test_an_edit_under_a_checkpoint_is_placed_between_checkpoints(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    checkpointed_log(f);
    rewrite_log(f, 30, 15); /* entry 15 changed (its hash chain redone: the tree sees it) */
    TL_ASSERT_RC(TL_EVERIFY, anchors(f, NULL, &report));
    assert_string_equal(report.category, "root-mismatch");
    assert_int_equal(report.index, 2);
    assert_int_equal(report.size, 20);
    assert_int_equal(report.first_entry, 11);
    assert_int_equal(report.last_entry, 20);
}

static void test_entries_cut_after_a_checkpoint_are_named(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    checkpointed_log(f);
    rewrite_log(f, 26, 0);
    TL_ASSERT_RC(TL_EVERIFY, anchors(f, NULL, &report));
    assert_string_equal(report.category, "log-short");
    assert_int_equal(report.index, 3);
    assert_int_equal(report.first_entry, 27);
    assert_int_equal(report.last_entry, 30);
    assert_int_equal(report.log_entries, 26);
}

static void test_a_checkpoint_signed_by_another_key_is_refused(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    EVP_PKEY *other = NULL;
    char kept[128];
    checkpointed_log(f);
    TL_ASSERT_OK(tl_key_generate(&other));
    snprintf(kept, sizeof kept, "%s/kept.note", f->dir);
    store_note(kept, sign_checkpoint(f, other, ORIGIN, 30, NULL));
    TL_ASSERT_RC(TL_EVERIFY, anchors(f, kept, &report));
    assert_string_equal(report.category, "bad-signature");
    assert_int_equal(report.file, 1);
    assert_int_equal(report.index, 1);
    assert_int_equal(report.size, 30);
    EVP_PKEY_free(other);
}

static void test_two_roots_for_one_size_are_a_fork(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    tl_merkle_hash_t other_root;
    char kept[128];
    checkpointed_log(f);
    memset(other_root, 0x5a, sizeof other_root);
    snprintf(kept, sizeof kept, "%s/kept.note", f->dir);
    store_note(kept, sign_checkpoint(f, f->key, ORIGIN, 20, &other_root));
    TL_ASSERT_RC(TL_EVERIFY, anchors(f, kept, &report));
    assert_string_equal(report.category, "fork");
    assert_int_equal(report.file, 1);
    assert_int_equal(report.index, 1);
    assert_int_equal(report.other_file, 0);
    assert_int_equal(report.other_index, 2);
}

static void test_an_auditors_file_that_is_missing_is_an_error(void **state)
{
    struct fixture *f = *state;
    tl_audit_anchor_report_t report;
    char kept[128];
    checkpointed_log(f);
    snprintf(kept, sizeof kept, "%s/nowhere.note", f->dir);
    int rc = anchors(f, kept, &report);
    assert_true(rc != 0 && rc != TL_EVERIFY);
    assert_non_null(strstr(report.reason, "nowhere.note"));
}

/* docs/audit-format.md §16: the example's leaves, root and signed note, byte for byte. */
static void test_documented_checkpoint_example(void **state)
{
    struct fixture *f = *state;
    static const char log_text[] =
        "{\"seq\":1,\"time\":\"2026-11-23T19:04:05.123Z\",\"actor\":\"relay\",\"action\":\"enroll."
        "ok\","
        "\"subject\":\"D-7\",\"details\":{\"agent\":\"SHA256:Jm8QK1lK0bM1cYkq3wEoV0DHRPWZ0jp7h8x2C"
        "q1yFmo\",\"hostname\":\"caf\\u00E9-laptop\"},\"prev\":\"000000000000000000000000000000000"
        "0000000000000000000000000000000\",\"hash\":\"a06d15214683142df10f6838bddc075e37a2089"
        "ad0c686e24e7b0e5862da0fd9\"}\n"
        "{\"seq\":2,\"time\":\"2026-11-23T19:04:06.007Z\",\"actor\":\"agent:SHA256:Jm8QK1lK0bM1cYk"
        "q3wEoV0DHRPWZ0jp7h8x2Cq1yFmo\",\"action\":\"ticket.create\",\"subject\":\"T-42\",\"details"
        "\":{\"tier\":1,\"title\":\"printer won't print\"},\"prev\":\"a06d15214683142df10f6838bddc0"
        "75e37a2089ad0c686e24e7b0e5862da0fd9\",\"hash\":\"442290e80d7e0fe66750c35a4f0fa48894b"
        "8de5ac335b770b0effa82fa8d1d83\"}\n";
    static const uint8_t seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60,
                                     0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
                                     0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
                                     0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const char expected_note[] =
        "tierline.relay/example\n2\nIWZOxx8l/yDppP2bNzbtg3C4q3/UO5UP7l+Z/YJqwf0=\n\n"
        "\xe2\x80\x94 tierline.relay/example "
        "1dnCDVTHc4doftIaJ/"
        "OVR65jQ2pPqFWuD7YGKFIENEgSRPIFE0F9D4D1K+A58Ubzz4g05c8evkU0m7gb6qkLlZu4JAo=\n";
    write_file(f->log, log_text, strlen(log_text), 0);
    tl_audit_tree_t *tree = NULL;
    char why[256], hex[65], vkey[TL_NOTE_VKEY_MAX], text[256], *note = NULL;
    size_t len = 0;
    TL_ASSERT_OK(tl_audit_tree_open(f->log, f->leaves, &tree, why, sizeof why));
    tl_checkpoint_t checkpoint = {.origin = "tierline.relay/example", .size = 2};
    tl_merkle_hash_t leaf;
    TL_ASSERT_OK(tl_audit_tree_leaf(tree, 1, leaf));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", leaf[i]);
    assert_string_equal(hex, "8c5d81873376619c5f981ed193e3f4eccec280792a967c4e1b4cc8c4500d2d6b");
    tl_audit_tree_root(tree, checkpoint.root);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", checkpoint.root[i]);
    assert_string_equal(hex, "21664ec71f25ff20e9a4fd9b3736ed8370b8ab7fd43b950fee5f99fd826ac1fd");
    EVP_PKEY *key = NULL;
    TL_ASSERT_OK(tl_key_from_raw_private(seed, &key));
    TL_ASSERT_OK(tl_note_vkey_format("tierline.relay/example", key, vkey));
    assert_string_equal(
        vkey, "tierline.relay/example+d5d9c20d+AddamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea");
    TL_ASSERT_OK(tl_checkpoint_format(&checkpoint, text, sizeof text));
    assert_int_equal(strlen(text), 70);
    TL_ASSERT_OK(tl_note_sign(text, strlen(text), checkpoint.origin, key, &note, &len));
    assert_int_equal(len, strlen(expected_note));
    assert_memory_equal(note, expected_note, len);
    free(note);
    EVP_PKEY_free(key);
    tl_audit_tree_close(tree);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_leaves_are_the_log_lines_without_their_line_feed, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_tree_takes_in_what_is_appended, setup, teardown),
    cmocka_unit_test_setup_teardown(test_damaged_leaves_are_rebuilt_from_the_log, setup, teardown),
    cmocka_unit_test_setup_teardown(test_a_log_shorter_than_its_tree_is_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_proofs_of_the_tree_verify, setup, teardown),
    cmocka_unit_test_setup_teardown(test_roots_of_a_log_read_once, setup, teardown),
    cmocka_unit_test_setup_teardown(test_checkpoints_file_reads_whole_records_only, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_a_log_that_matches_its_checkpoints_verifies, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_entries_after_the_last_checkpoint_are_unsigned, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_an_edit_under_a_checkpoint_is_placed_between_checkpoints,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_entries_cut_after_a_checkpoint_are_named, setup, teardown),
    cmocka_unit_test_setup_teardown(test_a_checkpoint_signed_by_another_key_is_refused, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_two_roots_for_one_size_are_a_fork, setup, teardown),
    cmocka_unit_test_setup_teardown(test_an_auditors_file_that_is_missing_is_an_error, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_documented_checkpoint_example, setup, teardown),
};

TL_TEST_MAIN(tests)
