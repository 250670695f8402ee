/*
 * The audit log as a Merkle tree (docs/audit-format.md §12): each complete line of DATA/audit.log,
 * its bytes without the final line feed, is a leaf of an RFC 9162 tree (proto/merkle.h), in file
 * order. Checkpoints (relay/store/audit_checkpoint.h) sign its root.
 *
 * The tree is derived from the log, never the other way round. The relay keeps its leaf hashes in
 * DATA/audit.leaves so it computes roots and proofs without reading the log again: one 40-byte
 * record per leaf, the leaf hash (32 bytes) then the offset in the log just past the line's line
 * feed (8 bytes, big-endian). The file is a cache: it is not synced, a torn last record is cut,
 * and when it is missing, holds more leaves than the log, or its last record does not match the
 * log's line at that place, it is rebuilt from the log. No verifier trusts it.
 *
 * A tree reads the log under a shared lock (the writers take an exclusive one for each append and
 * its fdatasync), so it only takes in lines that are durable, and only complete ones: a torn tail
 * waits until a writer repairs or completes it.
 *
 * Ownership: one thread owns a tree (the relay's storage worker); it blocks on disk.
 */
#ifndef TL_AUDIT_TREE_H
#define TL_AUDIT_TREE_H

#include "proto/merkle.h"

#include <stddef.h>
#include <stdint.h>

/* One record of DATA/audit.leaves. */
#define TL_AUDIT_LEAF_RECORD 40

typedef struct tl_audit_tree tl_audit_tree_t;

/*
 * Opens the tree of the log at log_path, its leaves kept at leaves_path (created 0600 if
 * missing), and catches up with the log. A missing log is an empty tree. TL_EAUDIT when the log
 * cannot be read or holds a line longer than the format allows; why says what.
 */
int tl_audit_tree_open(const char *log_path, const char *leaves_path, tl_audit_tree_t **out,
                       char *why, size_t why_size);
void tl_audit_tree_close(tl_audit_tree_t *tree);

/* Takes in the complete lines appended to the log since the last call. TL_EAUDIT as above, or
 * when the log got shorter than what the tree holds (tl_audit_tree_problem says why). */
int tl_audit_tree_update(tl_audit_tree_t *tree);
const char *tl_audit_tree_problem(const tl_audit_tree_t *tree);

uint64_t tl_audit_tree_size(const tl_audit_tree_t *tree);
void tl_audit_tree_root(const tl_audit_tree_t *tree, tl_merkle_hash_t out);
/* The root of the first size leaves (size <= the tree's size; TL_EINVAL otherwise). */
int tl_audit_tree_root_at(tl_audit_tree_t *tree, uint64_t size, tl_merkle_hash_t out);
/* Leaf index's hash; TL_EINVAL outside the tree. */
int tl_audit_tree_leaf(tl_audit_tree_t *tree, uint64_t index, tl_merkle_hash_t out);
/* The log offset just past leaf index's line feed; TL_EINVAL outside the tree. */
int tl_audit_tree_line_end(tl_audit_tree_t *tree, uint64_t index, uint64_t *end);
/* proto/merkle.h's proofs over this tree's leaves. */
int tl_audit_tree_inclusion_proof(tl_audit_tree_t *tree, uint64_t index, uint64_t size,
                                  tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count);
int tl_audit_tree_consistency_proof(tl_audit_tree_t *tree, uint64_t old_size, uint64_t new_size,
                                    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count);

/*
 * For verifiers: reads the log at log_path once, from its first byte, and gives the root of the
 * tree of its first sizes[i] lines in roots[i], for each of count sizes (any order; a size past
 * the log's lines leaves its root zeroed). *lines_out: the complete lines the log holds. Trusts
 * no leaves file. -errno when the log cannot be read, TL_EPROTO for a line over the format's
 * limit (its number in *lines_out).
 */
int tl_audit_tree_roots_of_log(const char *log_path, const uint64_t *sizes, size_t count,
                               tl_merkle_hash_t *roots, uint64_t *lines_out);

#endif
