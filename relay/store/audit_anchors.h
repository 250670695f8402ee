/*
 * The audit log checked against its signed checkpoints (docs/audit-format.md §15): what
 * `tierline-relay audit-verify` adds to the hash chain's check. The tree is recomputed from the
 * log itself (relay/store/audit_tree.h, no leaves file trusted); each checkpoint must be a note
 * signed by the audit key whose origin is the key's name, no two may give one size two roots,
 * and each root must be the root of the log's first SIZE entries.
 *
 * The checks, in this order; the first failure is the one reported:
 *   1. each checkpoint, in file order: bad-note (not a signed checkpoint of this log's origin),
 *      bad-signature (no good signature by the audit key: another key signed it, or it was
 *      altered), no-key (there are checkpoints and no key to check them with);
 *   2. fork: a checkpoint of the same size as an earlier one, with another root;
 *   3. each checkpoint, in file order: log-short (the log holds fewer entries than its size:
 *      entries were cut), root-mismatch (the log's first SIZE entries have another root: one of
 *      them was changed, after the largest smaller checkpoint that matches);
 *   4. unsigned: entries after the largest checkpoint (S) that no checkpoint covers. The entry
 *      right after it may be that checkpoint's own "audit.checkpoint" entry (its details name
 *      size S and the signed root): it is covered, as its content is the signed note. Any other
 *      entry past S is not proven: the report names the first (first_entry) and the checkpoint
 *      it follows (file, index, size).
 */
#ifndef TL_AUDIT_ANCHORS_H
#define TL_AUDIT_ANCHORS_H

#include "proto/note.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tl_audit_anchor_report {
    uint64_t log_entries; /* complete lines of the log: the leaves of its tree */
    uint64_t checked;     /* checkpoints read */
    uint64_t last_size;   /* the largest checkpoint size that verified (0 if none) */
    uint64_t covered;     /* entries proven: last_size, plus its own entry right after it */
    int failed;           /* 1 when a check failed */
    /* The failure: */
    size_t file;          /* which of the files (0 = the first) */
    uint64_t index;       /* its place in that file, from 1 */
    uint64_t size;        /* its tree size, when it could be read */
    char category[24];    /* one of the words above */
    uint64_t first_entry; /* where the damage lies: entries first..last (1-based); 0 if n/a */
    uint64_t last_entry;
    uint64_t other_index; /* fork: the earlier checkpoint (its place in its file) */
    size_t other_file;
    char reason[512];
} tl_audit_anchor_report_t;

/*
 * Checks the log at log_path against every checkpoint of the files (each a sequence of signed
 * notes as DATA/audit.checkpoints holds them; a missing file holds none when optional is set for
 * it, else it is an error), with verifier the auditor's key (NULL: none known). 0 when all hold,
 * TL_EVERIFY at the first failure (report says which), another negative code when the log or a
 * file cannot be read (report->reason says so).
 */
int tl_audit_anchors_verify(const char *log_path, const char *const *files, const int *optional,
                            size_t file_count, const tl_note_verifier_t *verifier,
                            tl_audit_anchor_report_t *report);

#endif
