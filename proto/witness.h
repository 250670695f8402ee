/*
 * A witness of the audit log (docs/audit-format.md "Checkpoints"): whoever keeps the latest
 * checkpoint it has seen — the agent, an auditor — checks each new one against it, so a relay
 * that shows two different histories is caught: two roots for one size, a tree that does not
 * extend the one seen before, or a tree that shrank.
 *
 * Pure: the caller keeps the state (the last checkpoint's size and root) and saves it.
 */
#ifndef TL_WITNESS_H
#define TL_WITNESS_H

#include "proto/merkle.h"
#include "proto/note.h"

#include <stddef.h>
#include <stdint.h>

typedef enum tl_witness_verdict {
    TL_WITNESS_ACCEPTED,     /* it extends (or equals) what was seen: the state moves to it */
    TL_WITNESS_FIRST,        /* nothing seen before: accepted as the first */
    TL_WITNESS_BAD_NOTE,     /* not a checkpoint signed by the trusted key */
    TL_WITNESS_OTHER_LOG,    /* a checkpoint of another origin */
    TL_WITNESS_SHRANK,       /* a smaller tree than one seen before */
    TL_WITNESS_FORK,         /* the same size with another root */
    TL_WITNESS_INCONSISTENT, /* a larger tree whose proof does not show it extends the one seen */
} tl_witness_verdict_t;

/* Tree sizes a witness names in the protocol (docs/protocol.md §7.15): JSON's exact integers. */
#define TL_AUDIT_WITNESS_SIZE_MAX 9007199254740991ull /* 2^53 - 1 */

/* What the verdict means, for logs and reports ("two roots for one size"). */
const char *tl_witness_verdict_text(tl_witness_verdict_t verdict);
/* Its short name in reports and audit entries: "two-roots", "shrank", "not-extended",
 * "bad-note", "other-log"; "accepted", "first". */
const char *tl_witness_verdict_name(tl_witness_verdict_t verdict);

typedef struct tl_witness_state {
    int seen; /* 0 until the first checkpoint */
    tl_checkpoint_t last;
} tl_witness_state_t;

/*
 * Checks a signed checkpoint note from the log whose origin is origin and whose key is
 * verifier, with the consistency proof from state->last's size to its size. An accepted
 * checkpoint replaces state->last; any other verdict leaves the state as it was. *checkpoint
 * (if not NULL) gets the checkpoint read from the note, when it could be read.
 */
tl_witness_verdict_t tl_witness_check(tl_witness_state_t *state, const char *origin,
                                      const tl_note_verifier_t *verifier, const char *note,
                                      size_t note_len, const tl_merkle_hash_t *proof,
                                      size_t proof_count, tl_checkpoint_t *checkpoint);

#endif
