/*
 * Merkle trees as RFC 9162 (Certificate Transparency 2.0, §2.1) defines them, for the audit
 * log (docs/audit-format.md): the hash of a leaf and of a node, the root of a tree, inclusion
 * proofs (an entry is in the tree) and consistency proofs (a tree extends an older one), and
 * a compact state that gives the root as entries are appended without reading them again.
 *
 *     leaf hash  = SHA-256(0x00 || entry bytes)
 *     node hash  = SHA-256(0x01 || left || right)
 *     root of 0  = SHA-256("")
 *
 * Proofs are made from the leaf hashes of the tree, which a caller hands out one at a time (a
 * store reads them, a test keeps them in memory); verification needs only the proof, the
 * sizes and the roots, so an agent or an auditor checks without the log. Both sides fail
 * closed: a proof of the wrong length, a leaf index outside the tree, or a size of 0 where one
 * is needed is refused, never taken as valid.
 *
 * Pure: no I/O, no global state.
 */
#ifndef TL_MERKLE_H
#define TL_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define TL_MERKLE_HASH_LEN 32
/* The longest proof: one hash per level of a tree of 2^63 leaves, and a consistency proof's
 * extra one. */
#define TL_MERKLE_PROOF_MAX 65

typedef uint8_t tl_merkle_hash_t[TL_MERKLE_HASH_LEN];

/* TL_ENOMEM when the digest cannot be set up. */
int tl_merkle_leaf_hash(const void *entry, size_t len, tl_merkle_hash_t out);
void tl_merkle_node_hash(const tl_merkle_hash_t left, const tl_merkle_hash_t right,
                         tl_merkle_hash_t out);

/* Gives the leaf hash of leaf index; 0, or an error that the caller's function returns. */
typedef int (*tl_merkle_leaf_fn)(void *arg, uint64_t index, tl_merkle_hash_t out);

/* The root of the tree of the first size leaves. */
int tl_merkle_root(tl_merkle_leaf_fn leaf, void *arg, uint64_t size, tl_merkle_hash_t out);

/*
 * The inclusion proof of leaf index in the tree of size leaves: *count hashes into proof
 * (room for TL_MERKLE_PROOF_MAX). TL_EINVAL when index >= size.
 */
int tl_merkle_inclusion_proof(tl_merkle_leaf_fn leaf, void *arg, uint64_t index, uint64_t size,
                              tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count);
/* 0 when leaf_hash is leaf index of the tree of size leaves whose root is root; TL_EVERIFY. */
int tl_merkle_inclusion_verify(uint64_t index, uint64_t size, const tl_merkle_hash_t leaf_hash,
                               const tl_merkle_hash_t *proof, size_t count,
                               const tl_merkle_hash_t root);

/*
 * The consistency proof from the tree of old_size leaves to the tree of new_size leaves
 * (0 < old_size <= new_size): *count hashes into proof. TL_EINVAL otherwise.
 */
int tl_merkle_consistency_proof(tl_merkle_leaf_fn leaf, void *arg, uint64_t old_size,
                                uint64_t new_size, tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX],
                                size_t *count);
/*
 * 0 when the tree of new_size leaves with root new_root extends the one of old_size leaves
 * with root old_root (equal sizes: equal roots and no proof); TL_EVERIFY otherwise, also for
 * old_size 0 or old_size > new_size.
 */
int tl_merkle_consistency_verify(uint64_t old_size, uint64_t new_size,
                                 const tl_merkle_hash_t old_root, const tl_merkle_hash_t new_root,
                                 const tl_merkle_hash_t *proof, size_t count);

/*
 * A tree as it grows: the roots of its perfect subtrees, one per bit of its size. Appending
 * and the root are O(log size); the state is kept beside the log and saved with it.
 */
typedef struct tl_merkle_state {
    uint64_t size;
    tl_merkle_hash_t subtrees[64]; /* largest first, one per set bit of size */
} tl_merkle_state_t;

void tl_merkle_state_init(tl_merkle_state_t *state);
/* Appends a leaf by its hash; TL_EFULL at 2^63 leaves. */
int tl_merkle_state_append(tl_merkle_state_t *state, const tl_merkle_hash_t leaf_hash);
void tl_merkle_state_root(const tl_merkle_state_t *state, tl_merkle_hash_t out);

#endif
