/* Merkle trees of RFC 9162 §2.1 (proto/merkle.h). */
#include "proto/merkle.h"
#include "proto/err.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

int tl_merkle_leaf_hash(const void *entry, size_t len, tl_merkle_hash_t out)
{
    static const uint8_t prefix = 0x00;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, &prefix, 1) == 1 && EVP_DigestUpdate(ctx, entry, len) == 1 &&
             EVP_DigestFinal_ex(ctx, out, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : TL_ENOMEM;
}

void tl_merkle_node_hash(const tl_merkle_hash_t left, const tl_merkle_hash_t right,
                         tl_merkle_hash_t out)
{
    uint8_t buf[1 + 2 * TL_MERKLE_HASH_LEN];
    buf[0] = 0x01;
    memcpy(buf + 1, left, TL_MERKLE_HASH_LEN);
    memcpy(buf + 1 + TL_MERKLE_HASH_LEN, right, TL_MERKLE_HASH_LEN);
    SHA256(buf, sizeof buf, out);
}

/* The largest power of two below n (n > 1). */
static uint64_t split(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* The root of the leaves [from, from + n), n > 0. */
static int subtree(tl_merkle_leaf_fn leaf, void *arg, uint64_t from, uint64_t n,
                   tl_merkle_hash_t out)
{
    if (n == 1)
        return leaf(arg, from, out);
    uint64_t k = split(n);
    tl_merkle_hash_t left, right;
    int rc = subtree(leaf, arg, from, k, left);
    if (rc == 0)
        rc = subtree(leaf, arg, from + k, n - k, right);
    if (rc == 0)
        tl_merkle_node_hash(left, right, out);
    return rc;
}

int tl_merkle_root(tl_merkle_leaf_fn leaf, void *arg, uint64_t size, tl_merkle_hash_t out)
{
    if (size == 0) {
        SHA256(NULL, 0, out);
        return 0;
    }
    return subtree(leaf, arg, 0, size, out);
}

/* PATH(m, D[from : from + n]) of RFC 9162 §2.1.3.1, appended to proof. */
static int path(tl_merkle_leaf_fn leaf, void *arg, uint64_t m, uint64_t from, uint64_t n,
                tl_merkle_hash_t *proof, size_t *count)
{
    if (n <= 1)
        return 0;
    uint64_t k = split(n);
    int rc = m < k ? path(leaf, arg, m, from, k, proof, count)
                   : path(leaf, arg, m - k, from + k, n - k, proof, count);
    if (rc != 0)
        return rc;
    if (*count >= TL_MERKLE_PROOF_MAX)
        return TL_EFULL;
    rc = m < k ? subtree(leaf, arg, from + k, n - k, proof[*count])
               : subtree(leaf, arg, from, k, proof[*count]);
    if (rc == 0)
        (*count)++;
    return rc;
}

int tl_merkle_inclusion_proof(tl_merkle_leaf_fn leaf, void *arg, uint64_t index, uint64_t size,
                              tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count)
{
    *count = 0;
    if (index >= size)
        return TL_EINVAL;
    return path(leaf, arg, index, 0, size, proof, count);
}

int tl_merkle_inclusion_verify(uint64_t index, uint64_t size, const tl_merkle_hash_t leaf_hash,
                               const tl_merkle_hash_t *proof, size_t count,
                               const tl_merkle_hash_t root)
{
    if (index >= size || count > TL_MERKLE_PROOF_MAX)
        return TL_EVERIFY;
    uint64_t fn = index, sn = size - 1;
    tl_merkle_hash_t r;
    memcpy(r, leaf_hash, TL_MERKLE_HASH_LEN);
    for (size_t i = 0; i < count; i++) {
        if (sn == 0)
            return TL_EVERIFY;
        if ((fn & 1) || fn == sn) {
            tl_merkle_node_hash(proof[i], r, r);
            if (!(fn & 1)) {
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            tl_merkle_node_hash(r, proof[i], r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, TL_MERKLE_HASH_LEN) == 0 ? 0 : TL_EVERIFY;
}

/* SUBPROOF(m, D[from : from + n], whole) of RFC 9162 §2.1.4.1, appended to proof. */
static int subproof(tl_merkle_leaf_fn leaf, void *arg, uint64_t m, uint64_t from, uint64_t n,
                    int whole, tl_merkle_hash_t *proof, size_t *count)
{
    int rc;
    if (m == n) {
        if (whole)
            return 0;
        if (*count >= TL_MERKLE_PROOF_MAX)
            return TL_EFULL;
        rc = subtree(leaf, arg, from, n, proof[*count]);
        if (rc == 0)
            (*count)++;
        return rc;
    }
    uint64_t k = split(n);
    if (m <= k) {
        rc = subproof(leaf, arg, m, from, k, whole, proof, count);
        if (rc == 0 && *count >= TL_MERKLE_PROOF_MAX)
            rc = TL_EFULL;
        if (rc == 0 && (rc = subtree(leaf, arg, from + k, n - k, proof[*count])) == 0)
            (*count)++;
    } else {
        rc = subproof(leaf, arg, m - k, from + k, n - k, 0, proof, count);
        if (rc == 0 && *count >= TL_MERKLE_PROOF_MAX)
            rc = TL_EFULL;
        if (rc == 0 && (rc = subtree(leaf, arg, from, k, proof[*count])) == 0)
            (*count)++;
    }
    return rc;
}

int tl_merkle_consistency_proof(tl_merkle_leaf_fn leaf, void *arg, uint64_t old_size,
                                uint64_t new_size, tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX],
                                size_t *count)
{
    *count = 0;
    if (old_size == 0 || old_size > new_size)
        return TL_EINVAL;
    if (old_size == new_size)
        return 0;
    return subproof(leaf, arg, old_size, 0, new_size, 1, proof, count);
}

int tl_merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
                                 const tl_merkle_hash_t old_root, const tl_merkle_hash_t new_root,
                                 const tl_merkle_hash_t *proof, size_t count)
{
    if (old_size == 0 || old_size > new_size || count > TL_MERKLE_PROOF_MAX)
        return TL_EVERIFY;
    if (old_size == new_size)
        return count == 0 && memcmp(old_root, new_root, TL_MERKLE_HASH_LEN) == 0 ? 0 : TL_EVERIFY;
    if (count == 0)
        return TL_EVERIFY;
    /* A tree whose size is a power of two is a subtree of the new one: its root starts the
     * path. */
    const uint8_t *path[TL_MERKLE_PROOF_MAX + 1];
    size_t n = 0;
    if ((old_size & (old_size - 1)) == 0)
        path[n++] = old_root;
    for (size_t i = 0; i < count; i++)
        path[n++] = proof[i];
    uint64_t fn = old_size - 1, sn = new_size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    tl_merkle_hash_t fr, sr;
    memcpy(fr, path[0], TL_MERKLE_HASH_LEN);
    memcpy(sr, path[0], TL_MERKLE_HASH_LEN);
    for (size_t i = 1; i < n; i++) {
        if (sn == 0)
            return TL_EVERIFY;
        if ((fn & 1) || fn == sn) {
            tl_merkle_node_hash(path[i], fr, fr);
            tl_merkle_node_hash(path[i], sr, sr);
            if (!(fn & 1)) {
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            tl_merkle_node_hash(sr, path[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && memcmp(fr, old_root, TL_MERKLE_HASH_LEN) == 0 &&
                   memcmp(sr, new_root, TL_MERKLE_HASH_LEN) == 0
               ? 0
               : TL_EVERIFY;
}

/* ---- the growing tree --------------------------------------------------------------------- */

static size_t bits(uint64_t v)
{
    size_t n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

void tl_merkle_state_init(tl_merkle_state_t *state)
{
    memset(state, 0, sizeof *state);
}

int tl_merkle_state_append(tl_merkle_state_t *state, const tl_merkle_hash_t leaf_hash)
{
    if (state->size >= (UINT64_C(1) << 63))
        return TL_EFULL;
    /* The new leaf is a subtree of one; it merges with the smallest subtrees while they are as
     * large as it, as binary addition carries. */
    size_t top = bits(state->size);
    tl_merkle_hash_t carry;
    memcpy(carry, leaf_hash, TL_MERKLE_HASH_LEN);
    for (uint64_t size = state->size; size & 1; size >>= 1) {
        top--;
        tl_merkle_node_hash(state->subtrees[top], carry, carry);
    }
    memcpy(state->subtrees[top], carry, TL_MERKLE_HASH_LEN);
    state->size++;
    return 0;
}

void tl_merkle_state_root(const tl_merkle_state_t *state, tl_merkle_hash_t out)
{
    size_t n = bits(state->size);
    if (n == 0) {
        SHA256(NULL, 0, out);
        return;
    }
    tl_merkle_hash_t r;
    memcpy(r, state->subtrees[n - 1], TL_MERKLE_HASH_LEN);
    for (size_t i = n - 1; i-- > 0;)
        tl_merkle_node_hash(state->subtrees[i], r, r);
    memcpy(out, r, TL_MERKLE_HASH_LEN);
}
