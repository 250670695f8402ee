/*
 * The agent as a witness of the relay's audit log (docs/protocol.md §7.15, docs/audit-format.md
 * §20). The agent keeps the latest checkpoint it accepted in STATE/witness.json and judges each
 * one the relay shows next against it (proto/witness.h): a relay that shows two histories is
 * caught by the machines it serves, not only by auditors who ask.
 *
 * STATE/witness.json (0600, replaced whole, synced):
 *
 *     {"key": the relay's audit verifier key, pinned the first time one is shown,
 *      "checkpoint": the signed note accepted last, "size": its tree size,
 *      "checked": when a checkpoint was last judged (ms since 1970),
 *      "conflicts": [{"kind", "reason", "kept", "shown", "time", "reported"}, ...]}
 *
 * A conflict keeps both signed notes: two roots for one size, or a smaller tree, are proved by
 * them alone to anyone holding the audit key. At most TL_WITNESS_CONFLICTS_MAX are kept (the
 * first ones; the same note shown again is not counted twice); the kept checkpoint does not move
 * on a conflict. "reported" says whether the relay took the report (audit.conflict).
 *
 * Everything here blocks on the disk: the running agent calls it off the loop
 * (agent/witness_sync.h); `tierline-agent status` calls it directly.
 */
#ifndef TL_AGENT_WITNESS_H
#define TL_AGENT_WITNESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TL_STATE_WITNESS "witness.json"
#define TL_WITNESS_CONFLICTS_MAX 16
/* The file at most: 16 conflicts of two notes each, the checkpoint and the key, with room. */
#define TL_WITNESS_FILE_MAX (1024u * 1024u)

/* STATE/witness.json, or an empty object when there is none yet; NULL with *err when it cannot
 * be read or is not an object (TL_EINVAL). */
json_t *tl_agent_witness_load(const char *state_dir, int *err);
/* Replaces STATE/witness.json with witness. 0 or the error. */
int tl_agent_witness_save(const char *state_dir, json_t *witness);

/* What the kept checkpoint's size is (0 when none), for the request. */
uint64_t tl_agent_witness_size(json_t *witness);

/*
 * Judges the relay's answer to audit.witness against witness and updates it in memory: pins the
 * key the first time, moves the checkpoint on when accepted, adds a conflict otherwise. Returns
 * 0 with *verdict a name ("first", "accepted", "same", "none" for nothing signed yet, or a
 * conflict's kind: "two-roots", "shrank", "not-extended", "bad-note", "other-log",
 * "other-key") and why in words; TL_EINVAL when the answer is malformed (nothing changes).
 * *is_conflict says whether it was a conflict. now_ms stamps what changed.
 */
int tl_agent_witness_judge(json_t *witness, json_t *answer, int64_t now_ms, const char **verdict,
                           int *is_conflict, char *why, size_t why_size);

/* The first conflict the relay has not taken yet (borrowed), or NULL. */
json_t *tl_agent_witness_unreported(json_t *witness);

#endif
