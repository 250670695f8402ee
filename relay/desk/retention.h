/*
 * Retention (docs/desk.md "Retention", docs/audit-format.md §22): how long each class of evidence
 * payload is kept, and which payloads a prune removes. Pure: no store, no clock, no file; the
 * prune itself (relay/cmd/admin_retention.c) reads the rows, asks here, writes the tombstones and
 * only then removes what was decided.
 *
 * Classes, from the evidence kind a ticket's row holds (relay/store/store.h tl_evidence_row_t):
 *   recordings   kind "recording": terminal recordings of joined sessions;
 *   transcripts  kinds "command" and "runbook": the captured output of run and fix;
 *   events       every other kind: diagnostics reports, files a machine uploaded.
 * Each class is kept for a number of whole days after the item was added to its ticket, or
 * forever (the default: nothing is pruned unless the configuration says so).
 */
#ifndef TL_RETENTION_H
#define TL_RETENTION_H

#include "relay/store/audit_payloads.h"
#include "relay/store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum tl_retention_class {
    TL_RETENTION_RECORDINGS,
    TL_RETENTION_TRANSCRIPTS,
    TL_RETENTION_EVENTS,
    TL_RETENTION_CLASS_COUNT
};

/* Most days a class may be kept for (a hundred years); more is "forever". */
#define TL_RETENTION_DAYS_MAX 36500
#define TL_RETENTION_FOREVER (-1)
#define TL_RETENTION_DAY_MS 86400000LL

typedef struct tl_retention {
    int days[TL_RETENTION_CLASS_COUNT]; /* 1..TL_RETENTION_DAYS_MAX, or TL_RETENTION_FOREVER */
} tl_retention_t;

/* "recordings", "transcripts", "events"; NULL past the last. */
const char *tl_retention_class_name(int cls);
/* The class of an evidence kind (NULL: events). */
int tl_retention_class_of(const char *kind);
/* Every class kept forever. */
void tl_retention_default(tl_retention_t *out);

/*
 * The "retention" member of the desk's configuration: NULL (absent) gives the default; else an
 * object whose members are class names, each a whole number of days 1..TL_RETENTION_DAYS_MAX or
 * "forever"; a class not named is kept forever. TL_EINVAL and why ("retention.recordings: wants
 * a whole number of days 1..36500 or \"forever\", not -3") for anything else: an unknown class, a
 * value of another type or out of range. Nothing is written to out on error.
 */
int tl_retention_parse(const json_t *member, tl_retention_t *out, char *why, size_t why_size);

/* One reference to a payload: an evidence row of a ticket, with what the ticket says of it. */
typedef struct tl_retention_ref {
    int64_t ticket_id;
    const char *hash;   /* the payload's SHA-256, hex */
    const char *kind;   /* the evidence kind */
    int64_t created_ms; /* when the item was added to the ticket */
    int held;           /* the ticket is under legal hold */
    int pruned;         /* a tombstone for this ticket's reference is already written */
} tl_retention_ref_t;

/*
 * Which references a prune at now_ms tombstones: prune[i] is set to 1 for each reference i whose
 * payload goes, and that has no tombstone yet; 0 otherwise. A payload goes only when every one of
 * its references (the same hash, on any ticket, of any kind) is past its class's retention
 * (created_ms + days <= now_ms) and none is held: payloads are stored once by content, so one
 * reference kept keeps the payload for all. refs may be in any order.
 * 0, or TL_ENOMEM.
 */
int tl_retention_decide(const tl_retention_t *policy, const tl_retention_ref_t *refs, size_t count,
                        int64_t now_ms, int *prune);

/* The payload of ref is past its class's retention at now_ms (not counting holds or sharing). */
int tl_retention_expired(const tl_retention_t *policy, const tl_retention_ref_t *ref,
                         int64_t now_ms);

/* Timeline event kinds: a legal hold set or lifted (details "hold": "on"|"off", "reason"), and a
 * payload pruned (details "sha256", "class", "kind", "policy", "pruned"). */
#define TL_RETENTION_EVENT_HOLD "hold"
#define TL_RETENTION_EVENT_PRUNED "evidence.pruned"
/* The audit actions: a hold set or lifted, and the tombstone of a pruned payload. */
#define TL_RETENTION_ACTION_HOLD "ticket.hold"
#define TL_RETENTION_ACTION_PRUNE TL_AUDIT_ACTION_TOMBSTONE

/* From a ticket's timeline: 1 if its last hold event set the hold, 0 if there is none or it was
 * lifted; *which (may be NULL) is that event's index, untouched when there is none. */
int tl_retention_held(const tl_ticket_event_rows_t *events, size_t *which);
/* From a ticket's timeline: 1 if the payload hash was pruned from it. */
int tl_retention_pruned(const tl_ticket_event_rows_t *events, const char *hash);

#endif
