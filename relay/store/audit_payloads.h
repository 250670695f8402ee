/*
 * The payloads the audit log names, checked against the evidence store (docs/audit-format.md
 * §22): every recording (session.recorded) and evidence item (evidence.add, evidence.store) by
 * the SHA-256 its entry gives in details.sha256, and the retention's tombstones
 * (evidence.prune). A payload present must hash to its name, tombstone or not (a tombstone is a
 * claim, not a licence: one whose payload is still there is said, and counted); a payload missing
 * passes only when a tombstone names it ("pruned by retention"), and fails otherwise.
 *
 * What `audit verify` (relay/cmd/audit.c, on the storage worker) and `tierline-relay
 * audit-verify` (relay/cmd/admin_audit.c) both run after the chain and checkpoints. Reads the log
 * and every payload through; changes nothing.
 */
#ifndef TL_AUDIT_PAYLOADS_H
#define TL_AUDIT_PAYLOADS_H

#include "relay/store/evidence.h"

#include <jansson.h>
#include <stdio.h>

/* The action of a tombstone: retention removed the payload its details.sha256 names. */
#define TL_AUDIT_ACTION_TOMBSTONE "evidence.prune"

/*
 * Checks the payloads log_path names against store (NULL: none is stored). Adds to verdict
 * "recordings" (ok, checked, pruned, bad: each index, seq, sha256, reason) and "payloads" (the same
 * for every payload, with still_present: tombstoned but there, and each bad one's action); and to
 * text (may be NULL) a line per failure ("recording BROKEN: entry I (seq S, session.recorded) names
 * sha256 H: why", "evidence BROKEN: ..."), per payload tombstoned yet present, and a summary
 * ("payloads OK: N checked against their entries (R recordings), P payloads pruned by
 * retention"). When one fails,
 * verdict's "ok" becomes false and "verdict" "broken". 0, TL_EVERIFY when one is missing without a
 * tombstone or does not match, or another negative code when the log cannot be read.
 */
int tl_audit_payloads_verify(const char *log_path, tl_evidence_store_t *store, json_t *verdict,
                             FILE *text);

/*
 * The tombstone of payload hash in the log at log_path, for ticket (NULL: any): 0 and *entry the
 * entry as tl_audit_search gives it (with "index"), TL_ENOTFOUND when there is none, or the
 * search's error.
 */
int tl_audit_payload_tombstone(const char *log_path, const char *ticket, const char *hash,
                               json_t **entry);

#endif
