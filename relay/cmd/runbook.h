/*
 * Runbook proposals (docs/kb.md "Runbook proposals"), shared by the technicians' commands
 * (relay/cmd/runbook.c: runbook propose, runbook proposals, runbook proposal) and the admin's on
 * the relay host (relay/cmd/admin_runbook.c): whether a name is taken, and how a proposal is
 * shown. A proposal's script is text from another party: it is only ever shown escaped.
 * Internal to relay/cmd.
 */
#ifndef TL_CMD_RUNBOOK_H
#define TL_CMD_RUNBOOK_H

#include "relay/store/store.h"

#include <jansson.h>
#include <stdio.h>

/*
 * Whether name is a runbook already, other than proposal except_id (0: none): in the runbooks
 * installed with the relay, in the catalogue published from data (may be NULL), or a proposal
 * still pending or accepted. 0 (free), 1 (taken: where says which, e.g. "the published
 * catalogue (version 3)"), or a negative TL_E* code. Blocking: the storage thread, or the admin's
 * command.
 */
int tl__runbook_name_taken(tl_store_t *store, const char *data, const char *name, int64_t except_id,
                           char *where, size_t where_size);

/* "pending", "accepted", "rejected" (the store keeps "proposed" for pending). */
const char *tl__runbook_state_shown(const char *state);
/* The store's state for a --state word: pending, accepted, rejected; NULL for all. -1: unknown. */
int tl__runbook_state_word(const char *word, const char **state);

/* A listing, as a table or (json) an array of objects. */
int tl__runbook_proposals_print(FILE *out, const tl_runbook_proposal_rows_t *list, int json);
/* One proposal with its metadata and its script, escaped (json: the exact text). */
int tl__runbook_proposal_print(FILE *out, const tl_runbook_proposal_row_t *row, int json);

#endif
