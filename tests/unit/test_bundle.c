/* Evidence bundles (proto/bundle.h): names, MANIFEST, the signature, and the check that names
 * the file a tampered or truncated bundle fails on. */
#include "tl_test.h"

#include "proto/bundle.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/tar.h"

#include <openssl/evp.h>
#include <stdlib.h>

/* ---- a bundle made here, as the relay makes one ---- */

struct item {
    const char *path;
    const char *content;
};

static const struct item items[] = {
    {"timeline.json", "{\"format\": \"tierline-bundle 1\"}\n"},
    {"evidence/0001-diagnostics.json", "{\"sections\": {}}"},
    {"recordings/0002-recording-shell.cast.gz", "not really gzip, but bytes"},
};
#define ITEMS (sizeof items / sizeof items[0])

static void put_entry(tl_buf_t *out, const char *name, tl_tar_type_t type, const void *data,
                      size_t len)
{
    uint8_t block[TL_TAR_BLOCK] = {0};
    tl_tar_entry_t entry = {.type = type, .size = len, .mtime = 1764795780, .mode = 0644};
    snprintf(entry.name, sizeof entry.name, "%s", name);
    TL_ASSERT_OK(tl_tar_header_write(&entry, block));
    TL_ASSERT_OK(tl_buf_put(out, block, sizeof block));
    TL_ASSERT_OK(tl_buf_put(out, data, len));
    memset(block, 0, sizeof block);
    TL_ASSERT_OK(tl_buf_put(out, block, tl_tar_padding(len)));
}

struct options {
    EVP_PKEY *sign_with;       /* NULL: the key in relay.pem */
    const char *changed_path;  /* this file's content differs from what MANIFEST lists */
    const char *extra_path;    /* a file MANIFEST does not list */
    const char *unlisted_path; /* a file of items left out of MANIFEST */
    const char *missing_path;  /* a file of items left out of the archive */
};

/* The archive, T-4/ and the files of items, signed by key. */
static tl_buf_t *make_bundle(EVP_PKEY *key, const struct options *options)
{
    tl_buf_t *out = tl_buf_new(1 << 20), *manifest = tl_buf_new(1 << 16);
    assert_non_null(out);
    assert_non_null(manifest);
    for (size_t i = 0; i < ITEMS; i++) {
        char hash[TL_SHA256_HEX_LEN];
        TL_ASSERT_OK(tl_sha256_hex(items[i].content, strlen(items[i].content), hash));
        if (options->unlisted_path == NULL || strcmp(options->unlisted_path, items[i].path) != 0)
            TL_ASSERT_OK(tl_bundle_manifest_add(manifest, hash, items[i].path));
    }
    uint8_t sig[TL_BUNDLE_SIGNATURE_LEN];
    TL_ASSERT_OK(tl_bundle_sign(options->sign_with ? options->sign_with : key,
                                tl_buf_data(manifest), tl_buf_len(manifest), sig));
    char *pem;
    size_t pem_len;
    TL_ASSERT_OK(tl_bundle_key_pem(key, &pem, &pem_len));
    put_entry(out, "T-4/", TL_TAR_DIRECTORY, "", 0);
    put_entry(out, "T-4/MANIFEST", TL_TAR_FILE, tl_buf_data(manifest), tl_buf_len(manifest));
    put_entry(out, "T-4/MANIFEST.sig", TL_TAR_FILE, sig, sizeof sig);
    put_entry(out, "T-4/relay.pem", TL_TAR_FILE, pem, pem_len);
    put_entry(out, "T-4/evidence/", TL_TAR_DIRECTORY, "", 0);
    for (size_t i = 0; i < ITEMS; i++) {
        char name[128];
        snprintf(name, sizeof name, "T-4/%s", items[i].path);
        if (options->missing_path != NULL && strcmp(options->missing_path, items[i].path) == 0)
            continue;
        const char *content = items[i].content;
        if (options->changed_path != NULL && strcmp(options->changed_path, items[i].path) == 0)
            content = "something else";
        put_entry(out, name, TL_TAR_FILE, content, strlen(content));
    }
    if (options->extra_path != NULL) {
        char name[128];
        snprintf(name, sizeof name, "T-4/%s", options->extra_path);
        put_entry(out, name, TL_TAR_FILE, "planted", 7);
    }
    uint8_t end[TL_TAR_END_LEN] = {0};
    TL_ASSERT_OK(tl_buf_put(out, end, sizeof end));
    free(pem);
    tl_buf_free(manifest);
    return out;
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    return key;
}

/* Feeds len bytes in pieces of step, then finishes; the check's result. */
static int check_bytes(tl_bundle_check_t *check, const uint8_t *data, size_t len, size_t step)
{
    for (size_t at = 0; at < len; at += step) {
        int rc = tl_bundle_check_feed(check, data + at, len - at < step ? len - at : step);
        if (rc != 0)
            return rc;
    }
    return tl_bundle_check_finish(check);
}

static void expect_problem(const uint8_t *data, size_t len, int code, const char *path,
                           const char *words)
{
    tl_bundle_check_t *check = tl_bundle_check_new();
    assert_non_null(check);
    int rc = check_bytes(check, data, len, 1000);
    if (rc != code || strcmp(tl_bundle_check_path(check), path) != 0 ||
        strstr(tl_bundle_check_problem(check), words) == NULL)
        fail_msg("expected %s about '%s' saying '%s'; got %s: %s", tl_err_name(code), path, words,
                 tl_err_name(rc), tl_bundle_check_problem(check));
    /* The problem line names the file first. */
    if (path[0] != '\0' && strncmp(tl_bundle_check_problem(check), path, strlen(path)) != 0)
        fail_msg("the problem does not start with %s: %s", path, tl_bundle_check_problem(check));
    tl_bundle_check_free(check);
}

/* ---- cases ---- */

static void test_paths_stay_inside_and_read_as_written(void **state)
{
    (void)state;
    assert_true(tl_bundle_path_valid("timeline.json"));
    assert_true(tl_bundle_path_valid("evidence/0001-diagnostics.json"));
    static const char *const bad[] = {"",    "/x",   "a//b", "../x", "evidence/../x", ".hidden",
                                      "a b", "a\\b", "a\nb", "x/",   "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tl_bundle_path_valid(bad[i]))
            fail_msg("path '%s' accepted", bad[i]);
}

static void test_evidence_paths_are_clean_and_bounded(void **state)
{
    (void)state;
    char path[TL_BUNDLE_PATH_MAX + 1];
    TL_ASSERT_OK(tl_bundle_evidence_path(1, "diagnostics", "diagnostics.json", path, sizeof path));
    assert_string_equal(path, "evidence/0001-diagnostics.json");
    TL_ASSERT_OK(tl_bundle_evidence_path(12, "recording",
                                         "recording-shell-20261203T131500Z-0d6a3e8c9b12.cast.gz",
                                         path, sizeof path));
    assert_string_equal(path,
                        "recordings/0012-recording-shell-20261203T131500Z-0d6a3e8c9b12.cast.gz");
    /* A machine's own name: anything in it becomes a dash, nothing escapes the folder. */
    TL_ASSERT_OK(
        tl_bundle_evidence_path(3, "diagnostics", "../../etc/passwd\n\x1b[2J", path, sizeof path));
    assert_string_equal(path, "evidence/0003-..-..-etc-passwd-2J");
    assert_true(tl_bundle_path_valid(path));
    char name[300];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    memcpy(name + sizeof name - 13, "-abcdef.json", 12);
    TL_ASSERT_OK(tl_bundle_evidence_path(TL_BUNDLE_MAX_ITEMS, "command", name, path, sizeof path));
    assert_true(tl_bundle_path_valid(path));
    assert_non_null(strstr(path, "-abcdef.json"));
    TL_ASSERT_OK(tl_bundle_evidence_path(5, "command", "", path, sizeof path));
    assert_string_equal(path, "evidence/0005-item");
    TL_ASSERT_RC(TL_EINVAL, tl_bundle_evidence_path(0, "command", "a", path, sizeof path));
    TL_ASSERT_RC(TL_EINVAL, tl_bundle_evidence_path(TL_BUNDLE_MAX_ITEMS + 1, "command", "a", path,
                                                    sizeof path));
}

static void test_manifest_is_what_sha256sum_writes_and_reads_back(void **state)
{
    (void)state;
    tl_buf_t *manifest = tl_buf_new(4096);
    const char *hash = "5f1d2c3b00000000000000000000000000000000000000000000000000000000";
    TL_ASSERT_OK(tl_bundle_manifest_add(manifest, hash, "timeline.json"));
    TL_ASSERT_OK(tl_bundle_manifest_add(manifest, hash, "evidence/0001-a.json"));
    TL_ASSERT_RC(TL_EINVAL, tl_bundle_manifest_add(manifest, "ABC", "x"));
    TL_ASSERT_RC(TL_EINVAL, tl_bundle_manifest_add(manifest, hash, "../x"));
    const char *expected = "5f1d2c3b00000000000000000000000000000000000000000000000000000000  "
                           "timeline.json\n"
                           "5f1d2c3b00000000000000000000000000000000000000000000000000000000  "
                           "evidence/0001-a.json\n";
    assert_int_equal(tl_buf_len(manifest), strlen(expected));
    assert_memory_equal(tl_buf_data(manifest), expected, strlen(expected));
    tl_bundle_file_t *files = NULL;
    size_t count = 0;
    char problem[300];
    TL_ASSERT_OK(tl_bundle_manifest_parse(expected, strlen(expected), &files, &count, problem,
                                          sizeof problem));
    assert_int_equal(count, 2);
    assert_string_equal(files[0].path, "evidence/0001-a.json"); /* sorted by path */
    assert_string_equal(files[1].hash, hash);
    free(files);
    tl_buf_free(manifest);
}

static void test_a_malformed_manifest_names_its_line(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *words;
    } cases[] = {
        {"5f1d2c3b00000000000000000000000000000000000000000000000000000000  a", "newline"},
        {"5f1d2c3b00000000000000000000000000000000000000000000000000000000 *a\n", "line 1 is not"},
        {"5F1D2C3B00000000000000000000000000000000000000000000000000000000  a\n",
         "line 1: not 64 lowercase hex"},
        {"5f1d2c3b00000000000000000000000000000000000000000000000000000000  a\n"
         "5f1d2c3b00000000000000000000000000000000000000000000000000000000  ../b\n",
         "line 2: '../b' cannot be"},
        {"5f1d2c3b00000000000000000000000000000000000000000000000000000000  MANIFEST\n",
         "cannot be a file"},
        {"5f1d2c3b00000000000000000000000000000000000000000000000000000000  a\n"
         "6f1d2c3b00000000000000000000000000000000000000000000000000000000  a\n",
         "a is listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_bundle_file_t *files = NULL;
        size_t count = 0;
        char problem[300] = "";
        int rc = tl_bundle_manifest_parse(cases[i].text, strlen(cases[i].text), &files, &count,
                                          problem, sizeof problem);
        if (rc != TL_EINVAL || strstr(problem, cases[i].words) == NULL)
            fail_msg("case %zu: %s '%s', expected '%s'", i, tl_err_name(rc), problem,
                     cases[i].words);
        assert_null(files);
    }
}

static void test_signature_holds_for_the_bytes_and_the_key(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(), *other = new_key(), *public_key = NULL;
    uint8_t sig[TL_BUNDLE_SIGNATURE_LEN];
    TL_ASSERT_OK(tl_bundle_sign(key, "manifest", 8, sig));
    char *pem;
    size_t len;
    TL_ASSERT_OK(tl_bundle_key_pem(key, &pem, &len));
    assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
    assert_null(strstr(pem, "PRIVATE"));
    TL_ASSERT_OK(tl_bundle_key_read(pem, len, &public_key));
    TL_ASSERT_OK(tl_bundle_signature_check(public_key, "manifest", 8, sig, sizeof sig));
    TL_ASSERT_RC(TL_ESIGNATURE, tl_bundle_signature_check(public_key, "manifesT", 8, sig, 64));
    TL_ASSERT_RC(TL_ESIGNATURE, tl_bundle_signature_check(public_key, "manifest", 8, sig, 63));
    TL_ASSERT_RC(TL_ESIGNATURE, tl_bundle_signature_check(other, "manifest", 8, sig, 64));
    EVP_PKEY *none = NULL;
    TL_ASSERT_RC(TL_EKEY, tl_bundle_key_read("not a key", 9, &none));
    assert_null(none);
    /* The fingerprint is the key's, whichever half is read. */
    char a[TL_FINGERPRINT_LEN], b[TL_FINGERPRINT_LEN];
    TL_ASSERT_OK(tl_fingerprint(key, a));
    EVP_PKEY *again = NULL;
    TL_ASSERT_OK(tl_bundle_key_read(pem, len, &again));
    TL_ASSERT_OK(tl_fingerprint(again, b));
    assert_string_equal(a, b);
    free(pem);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    EVP_PKEY_free(public_key);
    EVP_PKEY_free(again);
}

static void test_a_whole_bundle_checks_out_however_it_arrives(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key();
    struct options none = {0};
    tl_buf_t *bundle = make_bundle(key, &none);
    static const size_t steps[] = {1, 7, 511, 512, 513, 100000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        tl_bundle_check_t *check = tl_bundle_check_new();
        int rc = check_bytes(check, tl_buf_data(bundle), tl_buf_len(bundle), steps[i]);
        if (rc != 0)
            fail_msg("in pieces of %zu: %s", steps[i], tl_bundle_check_problem(check));
        assert_string_equal(tl_bundle_check_ticket(check), "T-4");
        assert_int_equal(tl_bundle_check_files(check), ITEMS);
        char fingerprint[TL_FINGERPRINT_LEN];
        TL_ASSERT_OK(tl_fingerprint(key, fingerprint));
        assert_string_equal(tl_bundle_check_key(check), fingerprint);
        tl_bundle_check_free(check);
    }
    /* A record's zero padding after the end is allowed; anything else is not. */
    uint8_t zeros[2048] = {0};
    TL_ASSERT_OK(tl_buf_put(bundle, zeros, sizeof zeros));
    tl_bundle_check_t *check = tl_bundle_check_new();
    TL_ASSERT_OK(check_bytes(check, tl_buf_data(bundle), tl_buf_len(bundle), 4096));
    tl_bundle_check_free(check);
    TL_ASSERT_OK(tl_buf_put_u8(bundle, 'x'));
    expect_problem(tl_buf_data(bundle), tl_buf_len(bundle), TL_EINVAL, "",
                   "bytes after the end of the archive");
    tl_buf_free(bundle);
    EVP_PKEY_free(key);
}

static void test_a_changed_file_is_named(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key();
    struct options changed = {.changed_path = "evidence/0001-diagnostics.json"};
    tl_buf_t *bundle = make_bundle(key, &changed);
    expect_problem(tl_buf_data(bundle), tl_buf_len(bundle), TL_EMISMATCH,
                   "evidence/0001-diagnostics.json", "the file was changed");
    tl_buf_free(bundle);
    EVP_PKEY_free(key);
}

static void test_a_changed_manifest_or_another_key_fails_the_signature(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key(), *other = new_key();
    struct options none = {0}, signed_by_other = {.sign_with = other};
    /* One hex digit of MANIFEST changed in place. */
    tl_buf_t *bundle = make_bundle(key, &none);
    uint8_t *bytes = (uint8_t *)tl_buf_data(bundle);
    size_t manifest_at = 2 * TL_TAR_BLOCK; /* the folder's header, then MANIFEST's */
    bytes[manifest_at] = bytes[manifest_at] == 'a' ? 'b' : 'a';
    expect_problem(bytes, tl_buf_len(bundle), TL_ESIGNATURE, "MANIFEST.sig",
                   "MANIFEST was changed");
    tl_buf_free(bundle);
    /* relay.pem is not the key that signed. */
    bundle = make_bundle(key, &signed_by_other);
    expect_problem(tl_buf_data(bundle), tl_buf_len(bundle), TL_ESIGNATURE, "MANIFEST.sig",
                   "does not verify");
    tl_buf_free(bundle);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_files_missing_or_unlisted_are_named(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key();
    struct options missing = {.missing_path = "recordings/0002-recording-shell.cast.gz"};
    tl_buf_t *bundle = make_bundle(key, &missing);
    expect_problem(tl_buf_data(bundle), tl_buf_len(bundle), TL_EINVAL,
                   "recordings/0002-recording-shell.cast.gz", "listed in MANIFEST but not");
    tl_buf_free(bundle);
    struct options extra = {.extra_path = "evidence/0003-planted.sh"};
    bundle = make_bundle(key, &extra);
    expect_problem(tl_buf_data(bundle), tl_buf_len(bundle), TL_EINVAL, "evidence/0003-planted.sh",
                   "in the bundle but not in MANIFEST");
    tl_buf_free(bundle);
    struct options unlisted = {.unlisted_path = "timeline.json"};
    bundle = make_bundle(key, &unlisted);
    expect_problem(tl_buf_data(bundle), tl_buf_len(bundle), TL_EINVAL, "timeline.json",
                   "not in MANIFEST");
    tl_buf_free(bundle);
    EVP_PKEY_free(key);
}

static void test_a_truncated_bundle_is_refused_wherever_it_stops(void **state)
{
    (void)state;
    EVP_PKEY *key = new_key();
    struct options none = {0};
    tl_buf_t *bundle = make_bundle(key, &none);
    size_t len = tl_buf_len(bundle);
    /* Every cut, at block boundaries and inside blocks, up to the last end block. */
    for (size_t cut = 0; cut < len; cut += cut < len - 2048 ? 97 : 1) {
        tl_bundle_check_t *check = tl_bundle_check_new();
        int rc = check_bytes(check, tl_buf_data(bundle), cut, 4096);
        if (rc != TL_ETRUNCATED)
            fail_msg("cut at %zu of %zu: %s %s", cut, len, tl_err_name(rc),
                     tl_bundle_check_problem(check));
        tl_bundle_check_free(check);
    }
    /* Inside a file: the file is named. */
    expect_problem(tl_buf_data(bundle), 2 * TL_TAR_BLOCK + 10, TL_ETRUNCATED, "MANIFEST",
                   "ends inside this file");
    tl_buf_free(bundle);
    EVP_PKEY_free(key);
}

static void test_an_archive_that_is_no_bundle_is_refused(void **state)
{
    (void)state;
    tl_buf_t *out = tl_buf_new(1 << 16);
    put_entry(out, "etc/", TL_TAR_DIRECTORY, "", 0);
    expect_problem(tl_buf_data(out), tl_buf_len(out), TL_EINVAL, "", "is not a folder T-N/");
    tl_buf_reset(out);
    put_entry(out, "T-4/", TL_TAR_DIRECTORY, "", 0);
    put_entry(out, "T-5/x", TL_TAR_FILE, "x", 1);
    expect_problem(tl_buf_data(out), tl_buf_len(out), TL_EINVAL, "T-5/x", "outside the bundle");
    tl_buf_reset(out);
    put_entry(out, "T-4/", TL_TAR_DIRECTORY, "", 0);
    put_entry(out, "T-4/MANIFEST.sig", TL_TAR_FILE, "short", 5);
    expect_problem(tl_buf_data(out), tl_buf_len(out), TL_EINVAL, "MANIFEST.sig",
                   "not the 64 of an Ed25519 signature");
    tl_buf_reset(out);
    uint8_t end[TL_TAR_END_LEN] = {0};
    put_entry(out, "T-4/", TL_TAR_DIRECTORY, "", 0);
    TL_ASSERT_OK(tl_buf_put(out, end, sizeof end));
    expect_problem(tl_buf_data(out), tl_buf_len(out), TL_EINVAL, "MANIFEST", "not in the bundle");
    tl_buf_free(out);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_paths_stay_inside_and_read_as_written),
    cmocka_unit_test(test_evidence_paths_are_clean_and_bounded),
    cmocka_unit_test(test_manifest_is_what_sha256sum_writes_and_reads_back),
    cmocka_unit_test(test_a_malformed_manifest_names_its_line),
    cmocka_unit_test(test_signature_holds_for_the_bytes_and_the_key),
    cmocka_unit_test(test_a_whole_bundle_checks_out_however_it_arrives),
    cmocka_unit_test(test_a_changed_file_is_named),
    cmocka_unit_test(test_a_changed_manifest_or_another_key_fails_the_signature),
    cmocka_unit_test(test_files_missing_or_unlisted_are_named),
    cmocka_unit_test(test_a_truncated_bundle_is_refused_wherever_it_stops),
    cmocka_unit_test(test_an_archive_that_is_no_bundle_is_refused),
};

TL_TEST_MAIN(tests)
