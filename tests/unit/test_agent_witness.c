/*
 * The agent's witness record (agent/witness.h): the relay's answers judged against what the
 * machine kept, the key pinned the first time, conflicts kept with both signed notes, malformed
 * answers refused with nothing changed, and the file read back as written.
 */
#include "tl_test.h"

#include "agent/witness.h"
#include "proto/keys.h"
#include "proto/witness.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ORIGIN "tierline.relay/test"

/* The relay's log: leaf i is the index as 8 bytes; one may be changed (another history). */
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

struct fixture {
    EVP_PKEY *key, *other;
    char vkey[TL_NOTE_VKEY_MAX], other_vkey[TL_NOTE_VKEY_MAX];
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tl-witness-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL || tl_key_generate(&f->key) != 0 ||
        tl_key_generate(&f->other) != 0 || tl_note_vkey_format(ORIGIN, f->key, f->vkey) != 0 ||
        tl_note_vkey_format(ORIGIN, f->other, f->other_vkey) != 0)
        return -1;
    changed_leaf = UINT64_MAX;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/witness.json", f->dir);
    unlink(path);
    rmdir(f->dir);
    EVP_PKEY_free(f->key);
    EVP_PKEY_free(f->other);
    free(f);
    return 0;
}

/* The relay's answer: a checkpoint of size leaves signed by key, and the proof from have. */
static json_t *answer(EVP_PKEY *key, uint64_t size, uint64_t have, const char *vkey)
{
    tl_checkpoint_t cp = {"", size, {0}};
    snprintf(cp.origin, sizeof cp.origin, "%s", ORIGIN);
    TL_ASSERT_OK(tl_merkle_root(leaf, NULL, size, cp.root));
    char text[256], *note;
    size_t len, count = 0;
    TL_ASSERT_OK(tl_checkpoint_format(&cp, text, sizeof text));
    TL_ASSERT_OK(tl_note_sign(text, strlen(text), ORIGIN, key, &note, &len));
    json_t *proof = json_array();
    if (have > 0 && have < size) {
        tl_merkle_hash_t path[TL_MERKLE_PROOF_MAX];
        TL_ASSERT_OK(tl_merkle_consistency_proof(leaf, NULL, have, size, path, &count));
        for (size_t i = 0; i < count; i++) {
            char b64[64];
            EVP_EncodeBlock((unsigned char *)b64, path[i], TL_MERKLE_HASH_LEN);
            json_array_append_new(proof, json_string(b64));
        }
    }
    json_t *out = json_pack("{s:s, s:s, s:o}", "checkpoint", note, "key", vkey, "proof", proof);
    free(note);
    return out;
}

/* Judges an answer; returns the verdict's name (static) and whether it was a conflict. */
static const char *judge(json_t *witness, json_t *shown, int *conflict)
{
    const char *verdict = NULL;
    char why[512];
    TL_ASSERT_OK(tl_agent_witness_judge(witness, shown, 1000, &verdict, conflict, why, sizeof why));
    assert_true(why[0] != '\0');
    json_decref(shown);
    return verdict;
}

static void test_an_honest_relay_is_followed_and_its_key_pinned(void **state)
{
    struct fixture *f = *state;
    json_t *w = json_object();
    int conflict = -1;
    json_t *none = json_object();
    const char *verdict = NULL;
    char why[256];
    TL_ASSERT_OK(tl_agent_witness_judge(w, none, 1, &verdict, &conflict, why, sizeof why));
    json_decref(none);
    assert_string_equal(verdict, "none");
    assert_null(json_object_get(w, "key"));

    assert_string_equal(judge(w, answer(f->key, 5, 0, f->vkey), &conflict), "first");
    assert_int_equal(conflict, 0);
    assert_string_equal(json_string_value(json_object_get(w, "key")), f->vkey);
    assert_int_equal(tl_agent_witness_size(w), 5);
    assert_string_equal(judge(w, answer(f->key, 5, 5, f->vkey), &conflict), "same");
    assert_string_equal(judge(w, answer(f->key, 13, 5, f->vkey), &conflict), "accepted");
    assert_int_equal(tl_agent_witness_size(w), 13);
    assert_null(tl_agent_witness_unreported(w));
    json_decref(w);
}

static void test_other_histories_are_conflicts_the_kept_one_stays(void **state)
{
    struct fixture *f = *state;
    json_t *w = json_object();
    int conflict = 0;
    assert_string_equal(judge(w, answer(f->key, 13, 0, f->vkey), &conflict), "first");
    char *kept = strdup(json_string_value(json_object_get(w, "checkpoint")));

    assert_string_equal(judge(w, answer(f->key, 12, 13, f->vkey), &conflict), "shrank");
    assert_int_equal(conflict, 1);
    changed_leaf = 3; /* the same size, another history */
    assert_string_equal(judge(w, answer(f->key, 13, 13, f->vkey), &conflict), "two-roots");
    assert_string_equal(judge(w, answer(f->key, 20, 13, f->vkey), &conflict), "not-extended");
    changed_leaf = UINT64_MAX;
    assert_string_equal(judge(w, answer(f->other, 20, 13, f->vkey), &conflict), "bad-note");
    assert_string_equal(judge(w, answer(f->other, 20, 13, f->other_vkey), &conflict), "other-key");
    json_t *empty = json_object();
    assert_string_equal(judge(w, empty, &conflict), "shrank");

    /* The kept checkpoint never moved; each conflict keeps both notes, none reported yet. */
    assert_int_equal(tl_agent_witness_size(w), 13);
    assert_string_equal(json_string_value(json_object_get(w, "checkpoint")), kept);
    json_t *conflicts = json_object_get(w, "conflicts");
    assert_int_equal(json_array_size(conflicts), 6);
    json_t *two = json_array_get(conflicts, 1);
    assert_string_equal(json_string_value(json_object_get(two, "kind")), "two-roots");
    assert_string_equal(json_string_value(json_object_get(two, "kept")), kept);
    assert_true(strstr(json_string_value(json_object_get(two, "shown")), "\n13\n") != NULL);
    assert_ptr_equal(tl_agent_witness_unreported(w), json_array_get(conflicts, 0));

    /* The same note shown again is not counted twice; an honest tree still extends the kept. */
    changed_leaf = 3;
    assert_string_equal(judge(w, answer(f->key, 13, 13, f->vkey), &conflict), "two-roots");
    assert_int_equal(json_array_size(conflicts), 6);
    changed_leaf = UINT64_MAX;
    assert_string_equal(judge(w, answer(f->key, 21, 13, f->vkey), &conflict), "accepted");
    assert_int_equal(tl_agent_witness_size(w), 21);
    free(kept);
    json_decref(w);
}

static void test_conflicts_are_bounded(void **state)
{
    struct fixture *f = *state;
    json_t *w = json_object();
    int conflict = 0;
    assert_string_equal(judge(w, answer(f->key, 40, 0, f->vkey), &conflict), "first");
    for (uint64_t size = 1; size <= TL_WITNESS_CONFLICTS_MAX + 5; size++)
        assert_string_equal(judge(w, answer(f->key, size, 40, f->vkey), &conflict), "shrank");
    assert_int_equal(json_array_size(json_object_get(w, "conflicts")), TL_WITNESS_CONFLICTS_MAX);
    json_decref(w);
}

static void test_malformed_answers_change_nothing(void **state)
{
    struct fixture *f = *state;
    json_t *w = json_object();
    int conflict = 0;
    assert_string_equal(judge(w, answer(f->key, 13, 0, f->vkey), &conflict), "first");
    char *before = json_dumps(w, JSON_SORT_KEYS);
    const char *bad[] = {
        "[]", "{\"checkpoint\":7}", "{\"checkpoint\":\"x\"}", /* no key */
        "{\"checkpoint\":\"x\",\"key\":\"nope\"}",            /* not a verifier key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *shown = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        const char *verdict;
        char why[256];
        TL_ASSERT_RC(TL_EINVAL,
                     tl_agent_witness_judge(w, shown, 2, &verdict, &conflict, why, sizeof why));
        json_decref(shown);
    }
    /* A proof that is not base64 hashes, or too long. */
    json_t *shown = answer(f->key, 20, 13, f->vkey);
    json_object_set_new(shown, "proof", json_pack("[s]", "not base64!"));
    const char *verdict;
    char why[256];
    TL_ASSERT_RC(TL_EINVAL,
                 tl_agent_witness_judge(w, shown, 2, &verdict, &conflict, why, sizeof why));
    json_t *many = json_array();
    for (int i = 0; i < TL_MERKLE_PROOF_MAX + 1; i++)
        json_array_append_new(many, json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
    json_object_set_new(shown, "proof", many);
    TL_ASSERT_RC(TL_EINVAL,
                 tl_agent_witness_judge(w, shown, 2, &verdict, &conflict, why, sizeof why));
    json_decref(shown);
    char *after = json_dumps(w, JSON_SORT_KEYS);
    assert_string_equal(before, after);
    free(before);
    free(after);
    json_decref(w);
}

static void test_the_file_reads_back_as_written(void **state)
{
    struct fixture *f = *state;
    int err = -1;
    json_t *w = tl_agent_witness_load(f->dir, &err);
    TL_ASSERT_OK(err);
    assert_int_equal(json_object_size(w), 0); /* none yet */
    int conflict = 0;
    assert_string_equal(judge(w, answer(f->key, 9, 0, f->vkey), &conflict), "first");
    TL_ASSERT_OK(tl_agent_witness_save(f->dir, w));
    json_t *back = tl_agent_witness_load(f->dir, &err);
    TL_ASSERT_OK(err);
    assert_true(json_equal(w, back));
    json_decref(back);
    json_decref(w);
    /* A damaged file is an error, not an empty record. */
    char path[128];
    snprintf(path, sizeof path, "%s/witness.json", f->dir);
    FILE *file = fopen(path, "w");
    fputs("{not json", file);
    fclose(file);
    assert_null(tl_agent_witness_load(f->dir, &err));
    assert_int_equal(err, TL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_an_honest_relay_is_followed_and_its_key_pinned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_histories_are_conflicts_the_kept_one_stays,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_answers_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_file_reads_back_as_written, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
