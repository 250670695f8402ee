/*
 * A witness of the audit log (proto/witness.h): a log that grows honestly is accepted
 * checkpoint after checkpoint; each way a relay could show two histories is caught and leaves
 * the witness's state as it was.
 */
#include "tl_test.h"

#include "proto/witness.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define ORIGIN "relay.example/audit"

/* The log: leaves are the index as 8 bytes, or with one changed (a rewritten history). */
static uint64_t changed_leaf = UINT64_MAX;

static int leaf(void *arg, uint64_t index, tl_merkle_hash_t out)
{
    (void)arg;
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(index >> (8 * i));
    if (index == changed_leaf)
        bytes[7] ^= 0x80;
    return tl_merkle_leaf_hash(bytes, sizeof bytes, out);
}

/* A signed checkpoint of the first size leaves, malloc'd. */
static char *checkpoint_note(EVP_PKEY *key, const char *origin, uint64_t size, size_t *len)
{
    tl_checkpoint_t cp = {"", size, {0}};
    snprintf(cp.origin, sizeof cp.origin, "%s", origin);
    TL_ASSERT_OK(tl_merkle_root(leaf, NULL, size, cp.root));
    char text[256];
    TL_ASSERT_OK(tl_checkpoint_format(&cp, text, sizeof text));
    char *note;
    TL_ASSERT_OK(tl_note_sign(text, strlen(text), origin, key, &note, len));
    return note;
}

static tl_witness_verdict_t offer(tl_witness_state_t *w, const tl_note_verifier_t *v, EVP_PKEY *key,
                                  const char *origin, uint64_t size)
{
    size_t len, count = 0;
    char *note = checkpoint_note(key, origin, size, &len);
    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX];
    if (w->seen && w->last.size > 0 && w->last.size <= size) {
        /* the proof comes from the log as the relay holds it now */
        TL_ASSERT_OK(tl_merkle_consistency_proof(leaf, NULL, w->last.size, size, proof, &count));
    }
    tl_witness_verdict_t verdict = tl_witness_check(w, ORIGIN, v, note, len, proof, count, NULL);
    free(note);
    return verdict;
}

static void test_an_honest_log_is_followed_and_forks_are_caught(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL, *other = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_key_generate(&other));
    char vkey[TL_NOTE_VKEY_MAX];
    TL_ASSERT_OK(tl_note_vkey_format(ORIGIN, key, vkey));
    tl_note_verifier_t v;
    TL_ASSERT_OK(tl_note_vkey_parse(vkey, &v));
    tl_witness_state_t w = {0};

    assert_int_equal(offer(&w, &v, key, ORIGIN, 5), TL_WITNESS_FIRST);
    assert_int_equal(offer(&w, &v, key, ORIGIN, 5), TL_WITNESS_ACCEPTED);
    assert_int_equal(offer(&w, &v, key, ORIGIN, 13), TL_WITNESS_ACCEPTED);
    assert_int_equal(w.last.size, 13);
    tl_checkpoint_t seen = w.last;

    /* Each of these leaves the state at 13. */
    assert_int_equal(offer(&w, &v, key, ORIGIN, 12), TL_WITNESS_SHRANK);
    assert_int_equal(offer(&w, &v, other, ORIGIN, 20), TL_WITNESS_BAD_NOTE);
    assert_int_equal(offer(&w, &v, key, "other.example/audit", 20), TL_WITNESS_BAD_NOTE);
    changed_leaf = 3; /* history rewritten before the checkpoint seen */
    assert_int_equal(offer(&w, &v, key, ORIGIN, 13), TL_WITNESS_FORK);
    assert_int_equal(offer(&w, &v, key, ORIGIN, 21), TL_WITNESS_INCONSISTENT);
    changed_leaf = UINT64_MAX;
    assert_int_equal(w.last.size, seen.size);
    assert_memory_equal(w.last.root, seen.root, TL_MERKLE_HASH_LEN);

    /* A checkpoint whose proof is missing is not taken on trust. */
    size_t len;
    char *note = checkpoint_note(key, ORIGIN, 30, &len);
    assert_int_equal(tl_witness_check(&w, ORIGIN, &v, note, len, NULL, 0, NULL),
                     TL_WITNESS_INCONSISTENT);
    free(note);
    /* The honest log goes on. */
    assert_int_equal(offer(&w, &v, key, ORIGIN, 30), TL_WITNESS_ACCEPTED);
    assert_int_equal(w.last.size, 30);
    assert_string_equal(tl_witness_verdict_text(TL_WITNESS_FORK), "two roots for one size");
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_a_checkpoint_of_another_origin_signed_by_the_key_is_refused(void **state)
{
    (void)state;
    EVP_PKEY *key = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    /* The same key signs under the log's name, but the text names another log. */
    tl_checkpoint_t cp = {"elsewhere.example/audit", 3, {0}};
    TL_ASSERT_OK(tl_merkle_root(leaf, NULL, 3, cp.root));
    char text[256], vkey[TL_NOTE_VKEY_MAX];
    TL_ASSERT_OK(tl_checkpoint_format(&cp, text, sizeof text));
    char *note;
    size_t len;
    TL_ASSERT_OK(tl_note_sign(text, strlen(text), ORIGIN, key, &note, &len));
    TL_ASSERT_OK(tl_note_vkey_format(ORIGIN, key, vkey));
    tl_note_verifier_t v;
    TL_ASSERT_OK(tl_note_vkey_parse(vkey, &v));
    tl_witness_state_t w = {0};
    tl_checkpoint_t read;
    assert_int_equal(tl_witness_check(&w, ORIGIN, &v, note, len, NULL, 0, &read),
                     TL_WITNESS_OTHER_LOG);
    assert_string_equal(read.origin, "elsewhere.example/audit");
    assert_false(w.seen);
    free(note);
    EVP_PKEY_free(key);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_honest_log_is_followed_and_forks_are_caught),
        cmocka_unit_test(test_a_checkpoint_of_another_origin_signed_by_the_key_is_refused),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
