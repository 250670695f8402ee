/* The agent as a witness of the relay's audit log: its file and its judgement (agent/witness.h). */
#include "agent/witness.h"

#include "agent/state.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/keys.h"
#include "proto/witness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int witness_path(const char *state_dir, char *out, size_t size)
{
    return tl_state_path(state_dir, TL_STATE_WITNESS, out, size);
}

json_t *tl_agent_witness_load(const char *state_dir, int *err)
{
    char path[TL_STATE_FILE_MAX];
    char *text = NULL;
    size_t len = 0;
    json_t *witness = NULL;
    int rc = witness_path(state_dir, path, sizeof path);
    if (rc == 0)
        rc = tl_fs_read_file(path, TL_WITNESS_FILE_MAX, TL_FS_READ_NOFOLLOW, NULL, NULL, &text,
                             &len);
    if (rc == -ENOENT) {
        witness = json_object();
        rc = witness != NULL ? 0 : TL_ENOMEM;
    } else if (rc == 0) {
        witness = json_loadb(text, len, 0, NULL);
        if (!json_is_object(witness)) {
            json_decref(witness);
            witness = NULL;
            rc = TL_EINVAL;
        }
    }
    free(text);
    if (err != NULL)
        *err = rc;
    return witness;
}

int tl_agent_witness_save(const char *state_dir, json_t *witness)
{
    char path[TL_STATE_FILE_MAX];
    int rc = witness_path(state_dir, path, sizeof path);
    char *text = rc == 0 ? json_dumps(witness, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (rc == 0 && text == NULL)
        rc = TL_ENOMEM;
    if (rc == 0)
        rc = tl_fs_write_atomic(path, text, strlen(text),
                                TL_FS_SYNC | TL_FS_SYNC_DIR | TL_FS_NOFOLLOW, NULL);
    free(text);
    return rc;
}

uint64_t tl_agent_witness_size(json_t *witness)
{
    json_t *size = json_object_get(witness, "size");
    return json_is_integer(size) && json_integer_value(size) > 0
               ? (uint64_t)json_integer_value(size)
               : 0;
}

json_t *tl_agent_witness_unreported(json_t *witness)
{
    size_t i;
    json_t *conflict;
    json_array_foreach(json_object_get(witness, "conflicts"), i, conflict) {
        if (!json_is_true(json_object_get(conflict, "reported")))
            return conflict;
    }
    return NULL;
}

/* A conflict on the record, once per note shown (and kind), at most TL_WITNESS_CONFLICTS_MAX. */
static int add_conflict(json_t *witness, const char *kind, const char *why, const char *shown,
                        int64_t now_ms)
{
    json_t *conflicts = json_object_get(witness, "conflicts");
    if (!json_is_array(conflicts)) {
        conflicts = json_array();
        if (conflicts == NULL || json_object_set_new(witness, "conflicts", conflicts) != 0)
            return TL_ENOMEM;
    }
    size_t i;
    json_t *old;
    json_array_foreach(conflicts, i, old) {
        const char *old_kind = json_string_value(json_object_get(old, "kind"));
        const char *old_shown = json_string_value(json_object_get(old, "shown"));
        if (old_kind != NULL && old_shown != NULL && strcmp(old_kind, kind) == 0 &&
            strcmp(old_shown, shown) == 0)
            return 0;
    }
    if (json_array_size(conflicts) >= TL_WITNESS_CONFLICTS_MAX)
        return 0;
    const char *kept = json_string_value(json_object_get(witness, "checkpoint"));
    json_t *conflict = json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "kind", kind, "reason", why,
                                 "kept", kept != NULL ? kept : "", "shown", shown, "time",
                                 (json_int_t)now_ms, "reported", 0);
    return conflict != NULL && json_array_append_new(conflicts, conflict) == 0 ? 0 : TL_ENOMEM;
}

/* The proof's hashes: base64 each, TL_MERKLE_HASH_LEN bytes; TL_EINVAL otherwise. */
static int read_proof(json_t *list, tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX], size_t *count)
{
    size_t i;
    json_t *item;
    *count = 0;
    if (list == NULL)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > TL_MERKLE_PROOF_MAX)
        return TL_EINVAL;
    json_array_foreach(list, i, item) {
        const char *text = json_string_value(item);
        size_t got = 0;
        uint8_t hash[TL_MERKLE_HASH_LEN + 3];
        if (text == NULL || strlen(text) > 44 ||
            tl_base64_decode(text, strlen(text), hash, sizeof hash, &got) != 0 ||
            got != TL_MERKLE_HASH_LEN)
            return TL_EINVAL;
        memcpy(proof[i], hash, TL_MERKLE_HASH_LEN);
    }
    *count = json_array_size(list);
    return 0;
}

/* The kept checkpoint, read back with the pinned key: a state for proto/witness.h. */
static void kept_state(json_t *witness, const tl_note_verifier_t *verifier,
                       tl_witness_state_t *state)
{
    const char *kept = json_string_value(json_object_get(witness, "checkpoint"));
    size_t text_len = 0;
    memset(state, 0, sizeof *state);
    if (kept != NULL && tl_note_open(kept, strlen(kept), verifier, &text_len) == 0 &&
        tl_checkpoint_parse(kept, text_len, &state->last) == 0)
        state->seen = 1;
}

int tl_agent_witness_judge(json_t *witness, json_t *answer, int64_t now_ms, const char **verdict,
                           int *is_conflict, char *why, size_t why_size)
{
    tl_merkle_hash_t proof[TL_MERKLE_PROOF_MAX];
    size_t proof_count = 0;
    tl_note_verifier_t verifier;
    tl_checkpoint_t shown;
    *verdict = "none";
    *is_conflict = 0;
    why[0] = '\0';
    if (!json_is_object(answer))
        return TL_EINVAL;
    const char *note = json_string_value(json_object_get(answer, "checkpoint"));
    const char *key = json_string_value(json_object_get(answer, "key"));
    const char *pinned = json_string_value(json_object_get(witness, "key"));
    uint64_t kept_size = tl_agent_witness_size(witness);
    if (note == NULL) {
        if (json_object_get(answer, "checkpoint") != NULL)
            return TL_EINVAL;
        if (json_object_get(witness, "checkpoint") == NULL) {
            snprintf(why, why_size, "the relay has signed no checkpoint yet");
            return 0;
        }
        /* It signed one before: now it shows none. */
        *verdict = "shrank";
        *is_conflict = 1;
        snprintf(why, why_size, "the relay shows no checkpoint, but signed one of size %llu before",
                 (unsigned long long)kept_size);
        return add_conflict(witness, *verdict, why, "", now_ms);
    }
    if (key == NULL || strlen(note) > TL_SIGNED_NOTE_MAX ||
        tl_note_vkey_parse(key, &verifier) != 0 ||
        read_proof(json_object_get(answer, "proof"), proof, &proof_count) != 0)
        return TL_EINVAL;
    if (pinned != NULL && strcmp(pinned, key) != 0) {
        *verdict = "other-key";
        *is_conflict = 1;
        snprintf(why, why_size, "the relay's audit key is now %.120s, not the one pinned", key);
        return add_conflict(witness, *verdict, why, note, now_ms);
    }
    tl_witness_state_t state;
    kept_state(witness, &verifier, &state);
    if (!state.seen)
        kept_size = 0; /* nothing kept, or what is kept no longer reads: start again */
    tl_witness_verdict_t result =
        tl_witness_check(&state, verifier.name, &verifier, note, strlen(note),
                         (const tl_merkle_hash_t *)proof, proof_count, &shown);
    json_object_set_new(witness, "checked", json_integer((json_int_t)now_ms));
    if (result == TL_WITNESS_FIRST || result == TL_WITNESS_ACCEPTED) {
        int same = result == TL_WITNESS_ACCEPTED && shown.size == kept_size;
        *verdict = same ? "same" : tl_witness_verdict_name(result);
        snprintf(why, why_size, "checkpoint of size %llu %s", (unsigned long long)shown.size,
                 same ? "seen again" : tl_witness_verdict_text(result));
        if (pinned == NULL && json_object_set_new(witness, "key", json_string(key)) != 0)
            return TL_ENOMEM;
        if (same)
            return 0;
        if (json_object_set_new(witness, "checkpoint", json_string(note)) != 0 ||
            json_object_set_new(witness, "size", json_integer((json_int_t)shown.size)) != 0)
            return TL_ENOMEM;
        return 0;
    }
    *verdict = tl_witness_verdict_name(result);
    *is_conflict = 1;
    snprintf(why, why_size, "%s: the relay shows size %llu, this machine kept size %llu",
             tl_witness_verdict_text(result), (unsigned long long)shown.size,
             (unsigned long long)kept_size);
    return add_conflict(witness, *verdict, why, note, now_ms);
}
