/* Signed catalogue packages (proto/catalogue.h, docs/catalogue.md): what is taken and why
 * anything else is not. */
#include "tl_test.h"

#include "proto/catalogue.h"
#include "proto/keys.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char metadata[] =
    "{\"name\":\"say-word\",\"description\":\"Print a word\",\"min_role\":\"tier1\","
    "\"privileged\":false,\"params\":[{\"name\":\"WORD\",\"pattern\":\"^[a-z]{1,8}$\","
    "\"description\":\"a word\"}]}";
static const char script[] = "#!/bin/sh\necho \"$TL_PARAM_WORD\"\n";
static const char article[] = "---\nid: always\ntitle: Always\ncategory: other\n"
                              "when: memory.used_percent >= 0\nrunbook: say-word\n"
                              "param: WORD=hello\n---\n# Always\n";

struct fixture {
    EVP_PKEY *key, *other;
    char fingerprint[TL_FINGERPRINT_LEN];
    uint8_t *package;
    size_t len;
};

static void files(tl_catalogue_file_t out[3])
{
    out[0] = (tl_catalogue_file_t){"kb/always.md", (const uint8_t *)article, strlen(article), 0};
    out[1] = (tl_catalogue_file_t){"runbooks/say-word.json", (const uint8_t *)metadata,
                                   strlen(metadata), 0};
    out[2] = (tl_catalogue_file_t){"runbooks/say-word", (const uint8_t *)script, strlen(script), 1};
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    tl_catalogue_file_t list[3];
    char why[256];
    files(list);
    if (f == NULL || tl_key_generate(&f->key) != 0 || tl_key_generate(&f->other) != 0 ||
        tl_fingerprint(f->key, f->fingerprint) != 0 ||
        tl_catalogue_build(list, 3, 7, 1767261600000, f->key, &f->package, &f->len, why,
                           sizeof why) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY_free(f->key);
    EVP_PKEY_free(f->other);
    free(f->package);
    free(f);
    return 0;
}

/* Refused with code and a reason that says needle; nothing returned. */
static void expect_refused(const uint8_t *data, size_t len, const char *trusted, uint64_t newer,
                           int code, const char *needle)
{
    tl_catalogue_t *c = (tl_catalogue_t *)1;
    char why[512] = "";
    int rc = tl_catalogue_verify(data, len, trusted, newer, &c, why, sizeof why);
    if (rc != code)
        fail_msg("expected %s, got %s (%s)", tl_err_name(code), tl_err_name(rc), why);
    assert_null(c);
    if (strstr(why, needle) == NULL)
        fail_msg("the reason \"%s\" does not say \"%s\"", why, needle);
}

static void test_a_signed_package_verifies_with_its_files(void **state)
{
    struct fixture *f = *state;
    tl_catalogue_t *c = NULL;
    char why[256];
    TL_ASSERT_OK(tl_catalogue_verify(f->package, f->len, f->fingerprint, 6, &c, why, sizeof why));
    assert_int_equal(tl_catalogue_version(c), 7);
    assert_int_equal(tl_catalogue_created(c), 1767261600000);
    assert_string_equal(tl_catalogue_signer(c), f->fingerprint);
    assert_int_equal(tl_catalogue_file_count(c), 3);
    assert_int_equal(tl_catalogue_runbook_count(c), 1);
    assert_int_equal(tl_catalogue_article_count(c), 1);
    /* Sorted by path; each file's bytes and mode as given. */
    const tl_catalogue_file_t *first = tl_catalogue_file(c, 0), *exe = tl_catalogue_file(c, 1);
    assert_string_equal(first->path, "kb/always.md");
    assert_memory_equal(first->data, article, strlen(article));
    assert_string_equal(exe->path, "runbooks/say-word");
    assert_true(exe->executable);
    assert_false(tl_catalogue_file(c, 2)->executable);
    assert_null(tl_catalogue_file(c, 3));
    tl_catalogue_free(c);
    /* The manifest starts right after the header, as docs/catalogue.md says. */
    assert_memory_equal(f->package, "TLCAT01\n", 8);
    assert_memory_equal(f->package + TL_CATALOGUE_HEADER_LEN, "{\"format\":", 10);
}

static void test_only_the_trusted_key_is_taken(void **state)
{
    struct fixture *f = *state;
    char other[TL_FINGERPRINT_LEN];
    TL_ASSERT_OK(tl_fingerprint(f->other, other));
    expect_refused(f->package, f->len, NULL, 0, TL_ENOTRUST, "enrolled without one");
    expect_refused(f->package, f->len, "", 0, TL_ENOTRUST, "every package is refused");
    expect_refused(f->package, f->len, other, 0, TL_EUNTRUSTED, "not by the trusted");
    /* The trusted key's bytes in front of another key's signature. */
    uint8_t *copy = malloc(f->len), sig[64];
    memcpy(copy, f->package, f->len);
    uint32_t manifest_len = (uint32_t)copy[104] << 24 | (uint32_t)copy[105] << 16 |
                            (uint32_t)copy[106] << 8 | copy[107];
    TL_ASSERT_OK(tl_key_sign(f->other, copy + TL_CATALOGUE_HEADER_LEN, manifest_len, sig));
    memcpy(copy + 40, sig, 64);
    expect_refused(copy, f->len, f->fingerprint, 0, TL_ESIGNATURE, "does not verify");
    free(copy);
}

static void test_one_changed_byte_anywhere_is_refused(void **state)
{
    struct fixture *f = *state;
    uint8_t *copy = malloc(f->len);
    for (size_t at = 0; at < f->len; at++) {
        memcpy(copy, f->package, f->len);
        copy[at] ^= 0x20;
        tl_catalogue_t *c = NULL;
        char why[512] = "";
        int rc = tl_catalogue_verify(copy, f->len, f->fingerprint, 0, &c, why, sizeof why);
        if (rc == 0)
            fail_msg("byte %zu changed and still taken", at);
        if (why[0] == '\0')
            fail_msg("byte %zu: refused (%s) without a reason", at, tl_err_name(rc));
        /* A changed file is named by its hash; a changed manifest by the signature. */
        size_t files_at = f->len - strlen(article) - strlen(metadata) - strlen(script);
        if (at >= files_at && rc != TL_EMISMATCH)
            fail_msg("byte %zu of a file: %s (%s)", at, tl_err_name(rc), why);
        if (at >= TL_CATALOGUE_HEADER_LEN && at < files_at && rc != TL_ESIGNATURE)
            fail_msg("byte %zu of the manifest: %s (%s)", at, tl_err_name(rc), why);
    }
    free(copy);
    expect_refused(f->package, f->len - 1, f->fingerprint, 0, TL_EINVAL, "ends inside");
    uint8_t *longer = malloc(f->len + 1);
    memcpy(longer, f->package, f->len);
    longer[f->len] = 0;
    expect_refused(longer, f->len + 1, f->fingerprint, 0, TL_EINVAL, "follow the last file");
    free(longer);
    expect_refused(f->package, 50, f->fingerprint, 0, TL_EINVAL, "not a catalogue package");
}

static void test_no_downgrade_and_no_replay(void **state)
{
    struct fixture *f = *state;
    expect_refused(f->package, f->len, f->fingerprint, 7, TL_EOLDER,
                   "version 7 is not newer than the installed version 7");
    expect_refused(f->package, f->len, f->fingerprint, 9, TL_EOLDER, "not newer");
}

static void test_paths_stay_inside(void **state)
{
    (void)state;
    const char *good[] = {"runbooks/a", "runbooks/clean-temp.json", "kb/var_full.md", "kb/A1.md"};
    const char *bad[] = {"runbooks/../x", "/etc/passwd",   "runbooks/..", "kb/../../x.md",
                         "runbooks/a/b",  "runbooks/",     "kb/x.txt",    "other/x",
                         "runbooks/.x",   "runbooks/a..b", "kb/.md",      "runbooks/a b",
                         "runbooks/-x",   "kb/x\n.md",     "RUNBOOKS/x",  NULL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!tl_catalogue_path_valid(good[i]))
            fail_msg("refused %s", good[i]);
    for (size_t i = 0; bad[i] != NULL; i++)
        if (tl_catalogue_path_valid(bad[i]))
            fail_msg("took %s", bad[i]);
}

static void test_a_catalogue_that_does_not_parse_is_not_built(void **state)
{
    struct fixture *f = *state;
    tl_catalogue_file_t list[4];
    uint8_t *out = NULL;
    size_t len = 0;
    char why[512];
    files(list);
    /* A runbook without its metadata, metadata without its program, a bad article, a path out. */
    TL_ASSERT_RC(TL_EINVAL, tl_catalogue_build(list, 1, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "article always suggests runbook say-word, which the package "
                                "does not hold"));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_catalogue_build(&list[1], 1, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "has no executable runbooks/say-word"));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_catalogue_build(&list[2], 1, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "has no metadata"));
    list[3] = (tl_catalogue_file_t){"kb/bad.md", (const uint8_t *)"---\nid: x\n---\n", 14, 0};
    TL_ASSERT_RC(TL_EINVAL, tl_catalogue_build(list, 4, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "the catalogue does not parse: kb/bad.md"));
    list[3] = (tl_catalogue_file_t){"kb/../x.md", (const uint8_t *)"", 0, 0};
    TL_ASSERT_RC(TL_EINVAL, tl_catalogue_build(list, 4, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "not a path a catalogue may hold"));
    list[3] = (tl_catalogue_file_t){"kb/always2.md", (const uint8_t *)article, strlen(article), 0};
    TL_ASSERT_RC(TL_EINVAL, tl_catalogue_build(list, 4, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "id always is taken twice"));
    /* An article's parameters break its runbook's rules. */
    static const char bad_param[] = "---\nid: other\ntitle: Other\ncategory: other\n"
                                    "when: memory.used_percent >= 0\nrunbook: say-word\n"
                                    "param: WORD=../etc\n---\n# Other\n";
    list[3] =
        (tl_catalogue_file_t){"kb/other.md", (const uint8_t *)bad_param, strlen(bad_param), 0};
    TL_ASSERT_RC(TL_EINVAL, tl_catalogue_build(list, 4, 1, 0, f->key, &out, &len, why, sizeof why));
    assert_non_null(strstr(why, "article other: runbook say-word:"));
    TL_ASSERT_RC(TL_EINVAL, tl_catalogue_build(list, 3, 0, 0, f->key, &out, &len, why, sizeof why));
    assert_null(out);
}

/* A package around a manifest of our own, signed: what the manifest's rules refuse. */
static void test_manifests_outside_the_format_are_refused(void **state)
{
    struct fixture *f = *state;
    struct {
        const char *manifest, *needle;
    } cases[] = {
        {"[]", "not a tierline-catalogue-1 manifest"},
        {"{\"format\":\"tierline-catalogue-2\",\"version\":1,\"created\":0,\"files\":[]}",
         "not a tierline-catalogue-1 manifest"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":1,\"created\":0,\"files\":[],"
         "\"extra\":1}",
         "no others"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":0,\"created\":0,\"files\":[]}",
         "out of range"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":1.5,\"created\":0,\"files\":[]}",
         "out of range"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":1,\"version\":2,\"created\":0,"
         "\"files\":[]}",
         "not JSON"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":1,\"created\":0,\"files\":[{\"path\":"
         "\"runbooks/../../x\",\"size\":0,\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649"
         "b934ca495991b7852b855\",\"mode\":\"0755\"}]}",
         "a path a catalogue may not hold"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":1,\"created\":0,\"files\":[{\"path\":"
         "\"kb/a.md\",\"size\":0,\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca49"
         "5991b7852b855\",\"mode\":\"4755\"}]}",
         "a bad sha256 or mode"},
        {"{\"format\":\"tierline-catalogue-1\",\"version\":1,\"created\":0,\"files\":[{\"path\":"
         "\"kb/a.md\",\"size\":99,\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
         "95991b7852b855\",\"mode\":\"0644\"}]}",
         "ends inside kb/a.md"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t manifest_len = strlen(cases[i].manifest);
        size_t len = TL_CATALOGUE_HEADER_LEN + manifest_len;
        uint8_t *data = malloc(len);
        memcpy(data, TL_CATALOGUE_MAGIC, 8);
        TL_ASSERT_OK(tl_key_raw_public(f->key, data + 8));
        TL_ASSERT_OK(tl_key_sign(f->key, cases[i].manifest, manifest_len, data + 40));
        data[104] = data[105] = 0;
        data[106] = (uint8_t)(manifest_len >> 8);
        data[107] = (uint8_t)manifest_len;
        memcpy(data + TL_CATALOGUE_HEADER_LEN, cases[i].manifest, manifest_len);
        expect_refused(data, len, f->fingerprint, 0, TL_EINVAL, cases[i].needle);
        free(data);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_a_signed_package_verifies_with_its_files, setup, teardown),
    cmocka_unit_test_setup_teardown(test_only_the_trusted_key_is_taken, setup, teardown),
    cmocka_unit_test_setup_teardown(test_one_changed_byte_anywhere_is_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(test_no_downgrade_and_no_replay, setup, teardown),
    cmocka_unit_test(test_paths_stay_inside),
    cmocka_unit_test_setup_teardown(test_a_catalogue_that_does_not_parse_is_not_built, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_manifests_outside_the_format_are_refused, setup, teardown),
};

TL_TEST_MAIN(tests)
