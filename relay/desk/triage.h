/*
 * Classification wired into the desk (docs/desk.md "Queues, assignment and SLA wiring"): a new
 * ticket's category and severity proposed from the user's words and its diagnostics
 * (relay/desk/classify.h) and stored with it; proposed again when new diagnostics arrive, with
 * the diagnostic fingerprint (relay/desk/fingerprint.h) set; and a technician's own choice,
 * with a reason, which later proposals never overwrite.
 *
 * Every change of severity or category goes into the ticket's history of changes (the SLA
 * clocks follow the severity) and onto its timeline as a "ticket.classified" event that says
 * why: the rule and the evidence each value came from, or the technician and their reason.
 * Runs on the storage worker, inside a job (relay/store/worker.h).
 */
#ifndef TL_TRIAGE_H
#define TL_TRIAGE_H

#include "relay/desk/classify.h"
#include "relay/desk/fingerprint.h"
#include "relay/store/evidence.h"
#include "relay/store/worker.h"

#include <stdint.h>

/* The timeline event of every classification, and the audit action of a technician's. */
#define TL_TRIAGE_EVENT "ticket.classified"
#define TL_TRIAGE_ACTION "ticket.classify"

/* A proposal for a ticket, and what it was made from. */
typedef struct tl_triage_proposal {
    tl_classification_t classification;
    tl_fingerprint_t fingerprint;        /* "" without diagnostics, or with none that count */
    char diagnostics[65];                /* the diagnostics' evidence hash, "" for none */
    char problem[TL_CLASSIFY_LINE_SIZE]; /* why they were not read, "" if they were */
} tl_triage_proposal_t;

/*
 * Proposes a category and severity from the title, the description and, when
 * diagnostics_hash names one (NULL or "": none), the diagnostics item in evidence. Diagnostics
 * that cannot be read (missing, damaged, too large, not a diagnostics document) are left out,
 * and problem says why: the proposal is then from the words alone. TL_ENOMEM.
 */
int tl_triage_propose(tl_evidence_store_t *evidence, const char *title, const char *description,
                      const char *diagnostics_hash, tl_triage_proposal_t *out);

/*
 * The whole diagnostics item hash (at most TL_CLASSIFY_DIAGNOSTICS_MAX bytes), malloc'd in
 * *data; problem says why not (missing, damaged, too large). The evidence store's codes.
 */
int tl_triage_read_diagnostics(tl_evidence_store_t *evidence, const char *hash, char **data,
                               size_t *length, char *problem, size_t problem_size);

/*
 * For a ticket just created with the proposal's severity and category: sets its fingerprint
 * and records the proposal on its timeline, as actor. The store's or the timeline's errors.
 */
int tl_triage_record_new(tl_job_ctx_t *ctx, int64_t ticket_id, const tl_triage_proposal_t *proposal,
                         const char *actor, int64_t now_ms);

/*
 * New diagnostics (the evidence item hash) on a ticket: proposes again with them, sets the
 * fingerprint, and changes the severity and the category to the proposal's, except those a
 * technician chose (tl_triage_set); records the proposal. TL_ENOTFOUND, the store's errors.
 */
int tl_triage_diagnostics(tl_job_ctx_t *ctx, int64_t ticket_id, const char *hash, int64_t now_ms);

/*
 * A technician's choice: severity 1..4 (0: keep it), category (NULL: keep it), with a reason
 * (required), as actor ("tech:bob"). Recorded on the timeline and in the audit log
 * (TL_TRIAGE_ACTION), with a change for each field in the history, even when its value stays:
 * from then on, proposals leave that field alone. TL_EINVAL for no field, no reason or values
 * out of range; TL_ENOTFOUND; the store's or the audit's errors.
 */
int tl_triage_set(tl_job_ctx_t *ctx, int64_t ticket_id, int severity, const char *category,
                  const char *reason, const char *actor, int64_t now_ms);

#endif
