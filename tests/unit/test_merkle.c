/*
 * Merkle trees (proto/merkle.h) against the reference vectors of RFC 6962's test data (the
 * roots of its eight leaves; proofs as the RFC's algorithms give them), then every inclusion
 * and consistency proof of small trees, each verified, and each damaged proof refused.
 */
#include "tl_test.h"

#include "proto/merkle.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *bytes;
    size_t len;
} leaves[8] = {
    {"", 0},
    {"\x00", 1},
    {"\x10", 1},
    {"\x20\x21", 2},
    {"\x30\x31", 2},
    {"\x40\x41\x42\x43", 4},
    {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
    {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};

static const char *const roots[8] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void hex(const tl_merkle_hash_t h, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int rfc_leaf(void *arg, uint64_t index, tl_merkle_hash_t out)
{
    (void)arg;
    return tl_merkle_leaf_hash(leaves[index].bytes, leaves[index].len, out);
}

/* Leaves of larger trees: the index as 8 bytes. */
static int counted_leaf(void *arg, uint64_t index, tl_merkle_hash_t out)
{
    (void)arg;
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(index >> (8 * i));
    return tl_merkle_leaf_hash(bytes, sizeof bytes, out);
}

static void assert_proof(const tl_merkle_hash_t *proof, size_t count, const char *const *want,
                         size_t want_count)
{
    assert_int_equal(count, want_count);
    for (size_t i = 0; i < count; i++) {
        char text[65];
        hex(proof[i], text);
        assert_string_equal(text, want[i]);
    }
}

static void test_roots_match_the_reference_vectors(void **state)
{
    (void)state;
    tl_merkle_state_t tree;
    tl_merkle_state_init(&tree);
    tl_merkle_hash_t root;
    char text[65];
    tl_merkle_state_root(&tree, root);
    hex(root, text);
    assert_string_equal(text, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (uint64_t size = 1; size <= 8; size++) {
        TL_ASSERT_OK(tl_merkle_root(rfc_leaf, NULL, size, root));
        hex(root, text);
        assert_string_equal(text, roots[size - 1]);
        tl_merkle_hash_t leaf;
        TL_ASSERT_OK(rfc_leaf(NULL, size - 1, leaf));
        TL_ASSERT_OK(tl_merkle_state_append(&tree, leaf));
        tl_merkle_state_root(&tree, root);
        hex(root, text);
        assert_string_equal(text, roots[size - 1]);
    }
}

static void test_proofs_match_the_reference_algorithms(void **state)
{
    (void)state;
    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX];
    size_t count;
    TL_ASSERT_OK(tl_merkle_inclusion_proof(rfc_leaf, NULL, 2, 7, proof, &count));
    const char *const inclusion[] = {
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"};
    assert_proof(proof, count, inclusion, 3);
    TL_ASSERT_OK(tl_merkle_consistency_proof(rfc_leaf, NULL, 3, 7, proof, &count));
    const char *const three_seven[] = {
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"};
    assert_proof(proof, count, three_seven, 4);
    TL_ASSERT_OK(tl_merkle_consistency_proof(rfc_leaf, NULL, 4, 8, proof, &count));
    const char *const four_eight[] = {
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"};
    assert_proof(proof, count, four_eight, 1);
    TL_ASSERT_OK(tl_merkle_consistency_proof(rfc_leaf, NULL, 6, 8, proof, &count));
    const char *const six_eight[] = {
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"};
    assert_proof(proof, count, six_eight, 3);
}

static void test_every_inclusion_proof_verifies_and_damage_is_refused(void **state)
{
    (void)state;
    for (uint64_t size = 1; size <= 70; size++) {
        tl_merkle_hash_t root, other_root;
        TL_ASSERT_OK(tl_merkle_root(counted_leaf, NULL, size, root));
        TL_ASSERT_OK(tl_merkle_root(counted_leaf, NULL, size + 1, other_root));
        for (uint64_t index = 0; index < size; index++) {
            tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], leaf;
            size_t count;
            TL_ASSERT_OK(counted_leaf(NULL, index, leaf));
            TL_ASSERT_OK(tl_merkle_inclusion_proof(counted_leaf, NULL, index, size, proof, &count));
            TL_ASSERT_OK(tl_merkle_inclusion_verify(index, size, leaf, proof, count, root));
            /* another leaf, index or root; a proof one hash short or one too long */
            tl_merkle_hash_t wrong;
            TL_ASSERT_OK(counted_leaf(NULL, index + 1, wrong));
            TL_ASSERT_RC(TL_EVERIFY,
                         tl_merkle_inclusion_verify(index, size, wrong, proof, count, root));
            if (size > 1)
                TL_ASSERT_RC(TL_EVERIFY, tl_merkle_inclusion_verify((index + 1) % size, size, leaf,
                                                                    proof, count, root));
            /* (A size one more with this size's root may verify: a checkpoint's signature binds
             * its size to its root, and a verifier takes them together.) */
            TL_ASSERT_RC(TL_EVERIFY,
                         tl_merkle_inclusion_verify(index, size, leaf, proof, count, other_root));
            if (count > 0) {
                TL_ASSERT_RC(TL_EVERIFY,
                             tl_merkle_inclusion_verify(index, size, leaf, proof, count - 1, root));
                proof[count - 1][7] ^= 0x40;
                TL_ASSERT_RC(TL_EVERIFY,
                             tl_merkle_inclusion_verify(index, size, leaf, proof, count, root));
                proof[count - 1][7] ^= 0x40;
            }
            memcpy(proof[count], leaf, sizeof leaf);
            TL_ASSERT_RC(TL_EVERIFY,
                         tl_merkle_inclusion_verify(index, size, leaf, proof, count + 1, root));
        }
        tl_merkle_hash_t leaf, proof[TL_MERKLE_PROOF_MAX];
        size_t count = 9;
        TL_ASSERT_OK(counted_leaf(NULL, size, leaf));
        TL_ASSERT_RC(TL_EINVAL,
                     tl_merkle_inclusion_proof(counted_leaf, NULL, size, size, proof, &count));
        assert_int_equal(count, 0);
        TL_ASSERT_RC(TL_EVERIFY, tl_merkle_inclusion_verify(size, size, leaf, proof, 0, root));
    }
}

static void test_every_consistency_proof_verifies_and_damage_is_refused(void **state)
{
    (void)state;
    tl_merkle_hash_t roots_of[41];
    for (uint64_t size = 1; size <= 40; size++)
        TL_ASSERT_OK(tl_merkle_root(counted_leaf, NULL, size, roots_of[size]));
    for (uint64_t n = 1; n <= 40; n++) {
        for (uint64_t m = 1; m <= n; m++) {
            tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX];
            size_t count;
            TL_ASSERT_OK(tl_merkle_consistency_proof(counted_leaf, NULL, m, n, proof, &count));
            TL_ASSERT_OK(
                tl_merkle_consistency_verify(m, n, roots_of[m], roots_of[n], proof, count));
            if (m == n) {
                assert_int_equal(count, 0);
                continue;
            }
            /* A forked history: the old root is not this tree's, or the new one is not. */
            uint64_t other = m > 1 ? m - 1 : m + 1;
            TL_ASSERT_RC(TL_EVERIFY, tl_merkle_consistency_verify(m, n, roots_of[other],
                                                                  roots_of[n], proof, count));
            TL_ASSERT_RC(TL_EVERIFY, tl_merkle_consistency_verify(m, n, roots_of[m],
                                                                  roots_of[n - 1], proof, count));
            TL_ASSERT_RC(TL_EVERIFY, tl_merkle_consistency_verify(m, n, roots_of[m], roots_of[n],
                                                                  proof, count - 1));
            TL_ASSERT_RC(TL_EVERIFY,
                         tl_merkle_consistency_verify(m, n, roots_of[m], roots_of[n], proof, 0));
            proof[0][0] ^= 1;
            TL_ASSERT_RC(TL_EVERIFY, tl_merkle_consistency_verify(m, n, roots_of[m], roots_of[n],
                                                                  proof, count));
            proof[0][0] ^= 1;
        }
    }
    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX];
    size_t count;
    TL_ASSERT_RC(TL_EINVAL, tl_merkle_consistency_proof(counted_leaf, NULL, 0, 5, proof, &count));
    TL_ASSERT_RC(TL_EINVAL, tl_merkle_consistency_proof(counted_leaf, NULL, 6, 5, proof, &count));
    TL_ASSERT_RC(TL_EVERIFY,
                 tl_merkle_consistency_verify(0, 5, roots_of[1], roots_of[5], proof, 0));
    TL_ASSERT_RC(TL_EVERIFY,
                 tl_merkle_consistency_verify(3, 3, roots_of[3], roots_of[4], proof, 0));
}

static void test_the_growing_tree_agrees_with_the_whole(void **state)
{
    (void)state;
    tl_merkle_state_t tree;
    tl_merkle_state_init(&tree);
    for (uint64_t size = 1; size <= 300; size++) {
        tl_merkle_hash_t leaf, grown, whole;
        TL_ASSERT_OK(counted_leaf(NULL, size - 1, leaf));
        TL_ASSERT_OK(tl_merkle_state_append(&tree, leaf));
        assert_int_equal(tree.size, size);
        tl_merkle_state_root(&tree, grown);
        TL_ASSERT_OK(tl_merkle_root(counted_leaf, NULL, size, whole));
        assert_memory_equal(grown, whole, TL_MERKLE_HASH_LEN);
    }
    tree.size = UINT64_C(1) << 63;
    tl_merkle_hash_t leaf = {0};
    TL_ASSERT_RC(TL_EFULL, tl_merkle_state_append(&tree, leaf));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots_match_the_reference_vectors),
        cmocka_unit_test(test_proofs_match_the_reference_algorithms),
        cmocka_unit_test(test_every_inclusion_proof_verifies_and_damage_is_refused),
        cmocka_unit_test(test_every_consistency_proof_verifies_and_damage_is_refused),
        cmocka_unit_test(test_the_growing_tree_agrees_with_the_whole),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
