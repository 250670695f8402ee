/* A witness of the audit log (proto/witness.h). */
#include "proto/witness.h"

#include <string.h>

const char *tl_witness_verdict_text(tl_witness_verdict_t verdict)
{
    switch (verdict) {
    case TL_WITNESS_ACCEPTED:
        return "extends the last checkpoint seen";
    case TL_WITNESS_FIRST:
        return "the first checkpoint seen";
    case TL_WITNESS_BAD_NOTE:
        return "not a checkpoint signed by the log's key";
    case TL_WITNESS_OTHER_LOG:
        return "a checkpoint of another log";
    case TL_WITNESS_SHRANK:
        return "a smaller tree than one seen before";
    case TL_WITNESS_FORK:
        return "two roots for one size";
    case TL_WITNESS_INCONSISTENT:
        return "does not extend the tree seen before";
    }
    return "unknown";
}

const char *tl_witness_verdict_name(tl_witness_verdict_t verdict)
{
    switch (verdict) {
    case TL_WITNESS_ACCEPTED:
        return "accepted";
    case TL_WITNESS_FIRST:
        return "first";
    case TL_WITNESS_BAD_NOTE:
        return "bad-note";
    case TL_WITNESS_OTHER_LOG:
        return "other-log";
    case TL_WITNESS_SHRANK:
        return "shrank";
    case TL_WITNESS_FORK:
        return "two-roots";
    case TL_WITNESS_INCONSISTENT:
        return "not-extended";
    }
    return "unknown";
}

tl_witness_verdict_t tl_witness_check(tl_witness_state_t *state, const char *origin,
                                      const tl_note_verifier_t *verifier, const char *note,
                                      size_t note_len, const tl_merkle_hash_t *proof,
                                      size_t proof_count, tl_checkpoint_t *checkpoint)
{
    tl_checkpoint_t cp;
    size_t text_len;
    if (checkpoint != NULL)
        memset(checkpoint, 0, sizeof *checkpoint);
    if (tl_note_open(note, note_len, verifier, &text_len) != 0 ||
        tl_checkpoint_parse(note, text_len, &cp) != 0)
        return TL_WITNESS_BAD_NOTE;
    if (checkpoint != NULL)
        *checkpoint = cp;
    if (strcmp(cp.origin, origin) != 0)
        return TL_WITNESS_OTHER_LOG;
    if (!state->seen) {
        state->seen = 1;
        state->last = cp;
        return TL_WITNESS_FIRST;
    }
    const tl_checkpoint_t *old = &state->last;
    if (cp.size < old->size)
        return TL_WITNESS_SHRANK;
    if (cp.size == old->size)
        return memcmp(cp.root, old->root, TL_MERKLE_HASH_LEN) == 0 ? TL_WITNESS_ACCEPTED
                                                                   : TL_WITNESS_FORK;
    /* From an empty tree every tree extends; otherwise the proof must show it. */
    if (old->size > 0 && tl_merkle_consistency_verify(old->size, cp.size, old->root, cp.root, proof,
                                                      proof_count) != 0)
        return TL_WITNESS_INCONSISTENT;
    state->last = cp;
    return TL_WITNESS_ACCEPTED;
}
