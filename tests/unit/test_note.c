/*
 * Signed notes and checkpoints (proto/note.h): the reference note of Go's sumdb/note (key,
 * text and signature), which an Ed25519 signer must reproduce byte for byte; notes refused
 * for every way they can be wrong; checkpoints written and read.
 */
#include "tl_test.h"

#include "proto/note.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define PETER_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define PETER_SEED_B64 "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
#define PETER_TEXT                                                                                 \
    "If you think cryptography is the answer to your problem,\n"                                   \
    "then you don't know what your problem is.\n"
#define PETER_NOTE                                                                                 \
    PETER_TEXT                                                                                     \
        "\n\xe2\x80\x94 PeterNeumann "                                                             \
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6"       \
        "RyyBwJnAM=\n"

static EVP_PKEY *peter_key(void)
{
    uint8_t typed[40];
    size_t n;
    TL_ASSERT_OK(tl_base64_decode(PETER_SEED_B64, strlen(PETER_SEED_B64), typed, sizeof typed, &n));
    assert_int_equal(n, 33);
    assert_int_equal(typed[0], 1);
    EVP_PKEY *key = NULL;
    TL_ASSERT_OK(tl_key_from_raw_private(typed + 1, &key));
    return key;
}

static int open_with(const char *note, const char *vkey)
{
    tl_note_verifier_t v;
    TL_ASSERT_OK(tl_note_vkey_parse(vkey, &v));
    size_t text_len;
    return tl_note_open(note, strlen(note), &v, &text_len);
}

static void test_the_reference_note_is_reproduced_and_opens(void **state)
{
    (void)state;
    EVP_PKEY *key = peter_key();
    char vkey[TL_NOTE_VKEY_MAX];
    TL_ASSERT_OK(tl_note_vkey_format("PeterNeumann", key, vkey));
    assert_string_equal(vkey, PETER_VKEY);
    char *note;
    size_t len;
    TL_ASSERT_OK(tl_note_sign(PETER_TEXT, strlen(PETER_TEXT), "PeterNeumann", key, &note, &len));
    assert_int_equal(len, strlen(PETER_NOTE));
    assert_memory_equal(note, PETER_NOTE, len);
    free(note);
    tl_note_verifier_t v;
    TL_ASSERT_OK(tl_note_vkey_parse(PETER_VKEY, &v));
    size_t text_len = 0;
    TL_ASSERT_OK(tl_note_open(PETER_NOTE, strlen(PETER_NOTE), &v, &text_len));
    assert_int_equal(text_len, strlen(PETER_TEXT));
    EVP_PKEY_free(key);
}

static void test_notes_that_must_not_open(void **state)
{
    (void)state;
    /* Another key, the same name: its id differs, so the note has no signature by it. */
    EVP_PKEY *other = NULL;
    TL_ASSERT_OK(tl_key_generate(&other));
    char other_vkey[TL_NOTE_VKEY_MAX];
    TL_ASSERT_OK(tl_note_vkey_format("PeterNeumann", other, other_vkey));
    TL_ASSERT_RC(TL_EVERIFY, open_with(PETER_NOTE, other_vkey));
    /* Signed by the other key under the trusted name and the trusted key's id: a bad
     * signature by the trusted key, which refuses the note even beside a good one. */
    char *forged;
    size_t forged_len;
    TL_ASSERT_OK(
        tl_note_sign(PETER_TEXT, strlen(PETER_TEXT), "PeterNeumann", other, &forged, &forged_len));
    tl_note_verifier_t peter;
    TL_ASSERT_OK(tl_note_vkey_parse(PETER_VKEY, &peter));
    char *sig = strstr(forged, "\xe2\x80\x94 PeterNeumann ") + strlen("\xe2\x80\x94 PeterNeumann ");
    uint8_t blob[68];
    size_t n;
    TL_ASSERT_OK(tl_base64_decode(sig, strlen(sig) - 1, blob, sizeof blob, &n));
    memcpy(blob, peter.key_id, 4);
    EVP_EncodeBlock((unsigned char *)sig, blob, 68);
    strcat(sig, "\n");
    TL_ASSERT_RC(TL_EVERIFY, open_with(forged, PETER_VKEY));
    char both[1024];
    snprintf(both, sizeof both, "%s%s", forged, strstr(PETER_NOTE, "\n\xe2\x80\x94") + 1);
    TL_ASSERT_RC(TL_EVERIFY, open_with(both, PETER_VKEY));
    free(forged);
    EVP_PKEY_free(other);

    /* One byte of the text changed. */
    char changed[] = PETER_NOTE;
    changed[3] = 'X';
    TL_ASSERT_RC(TL_EVERIFY, open_with(changed, PETER_VKEY));
    /* Not a signed note at all. */
    const char *malformed[] = {
        "",
        PETER_TEXT,
        PETER_TEXT "\n",
        PETER_TEXT "\n-- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
                   "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        PETER_TEXT
        "\n\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
        "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM",
        PETER_TEXT "\n\xe2\x80\x94 PeterNeumann not!base64\n",
        PETER_TEXT "\n\xe2\x80\x94 PeterNeumann\n",
        "a\x01"
        "b\n\n\xe2\x80\x94 PeterNeumann "
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
        "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        int rc = open_with(malformed[i], PETER_VKEY);
        if (rc != TL_EINVAL)
            fail_msg("malformed note %zu: %d", i, rc);
    }
    /* More than 100 signature lines. */
    size_t one = strlen(strstr(PETER_NOTE, "\n\xe2\x80\x94") + 1);
    char *many = malloc(strlen(PETER_TEXT) + 1 + 101 * one + 1);
    strcpy(many, PETER_TEXT "\n");
    for (int i = 0; i < 101; i++)
        strcat(many, strstr(PETER_NOTE, "\n\xe2\x80\x94") + 1);
    TL_ASSERT_RC(TL_EINVAL, open_with(many, PETER_VKEY));
    free(many);
}

static void test_verifier_keys_and_texts_that_are_refused(void **state)
{
    (void)state;
    tl_note_verifier_t v;
    const char *bad_vkeys[] = {
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", /* wrong id */
        "PeterNeumann+c74f20a3+AhpjZHEC+FQ4TEHoMMW84SqogX7FZJqqvywxOIs1stdE", /* wrong type */
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  /* short */
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann",
        "",
    };
    for (size_t i = 0; i < sizeof bad_vkeys / sizeof bad_vkeys[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_note_vkey_parse(bad_vkeys[i], &v));
    EVP_PKEY *key = peter_key();
    char *note;
    size_t len;
    const char *bad_texts[] = {"", "no newline", "blank\n\nline\n", "\n", "tab\there\n"};
    for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++)
        TL_ASSERT_RC(TL_EINVAL,
                     tl_note_sign(bad_texts[i], strlen(bad_texts[i]), "n", key, &note, &len));
    TL_ASSERT_RC(TL_EINVAL, tl_note_sign("ok\n", 3, "has space", key, &note, &len));
    TL_ASSERT_RC(TL_EINVAL, tl_note_sign("ok\n", 3, "has+plus", key, &note, &len));
    EVP_PKEY_free(key);
}

static void test_checkpoints_round_trip_and_bad_ones_are_refused(void **state)
{
    (void)state;
    tl_checkpoint_t c = {"tierline.example/audit", 1234567, {0}};
    for (int i = 0; i < 32; i++)
        c.root[i] = (uint8_t)i;
    char text[512];
    TL_ASSERT_OK(tl_checkpoint_format(&c, text, sizeof text));
    assert_string_equal(text, "tierline.example/audit\n1234567\n"
                              "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    tl_checkpoint_t back;
    TL_ASSERT_OK(tl_checkpoint_parse(text, strlen(text), &back));
    assert_string_equal(back.origin, c.origin);
    assert_int_equal(back.size, c.size);
    assert_memory_equal(back.root, c.root, 32);
    /* extension lines are allowed */
    const char *extended = "o\n0\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\nextra line\n";
    TL_ASSERT_OK(tl_checkpoint_parse(extended, strlen(extended), &back));
    assert_int_equal(back.size, 0);
    const char *bad[] = {
        "o\n01\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n18446744073709551616\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n",
        "o\n5\n",
        "\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "o\n5\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (tl_checkpoint_parse(bad[i], strlen(bad[i]), &back) != TL_EINVAL)
            fail_msg("bad checkpoint %zu was read", i);
    }
    tl_checkpoint_t unnamed = {"has space", 1, {0}};
    TL_ASSERT_RC(TL_EINVAL, tl_checkpoint_format(&unnamed, text, sizeof text));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_reference_note_is_reproduced_and_opens),
        cmocka_unit_test(test_notes_that_must_not_open),
        cmocka_unit_test(test_verifier_keys_and_texts_that_are_refused),
        cmocka_unit_test(test_checkpoints_round_trip_and_bad_ones_are_refused),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
