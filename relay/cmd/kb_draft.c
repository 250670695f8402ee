/*
 * ticket resolve T-N --kb (docs/kb.md "Drafts from resolved tickets"): after the resolution, in
 * the same storage job, a draft article made from the ticket (relay/desk/kbdraft.h) is stored
 * with its audit entry, kb.draft. A draft is never sent to agents nor matched by self-help: only
 * published articles are signed into a catalogue (tierline-relay kb publish, catalogue sign).
 */
#include "relay/cmd/cmd_int.h"

#include "proto/article.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/ids.h"
#include "proto/text.h"
#include "relay/desk/kbdraft.h"
#include "relay/desk/summary.h"
#include "relay/desk/triage.h"
#include "relay/store/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Other ids tried when ticket-N is taken by an article that is not this ticket's draft. */
#define DRAFT_ID_TRIES 9

/*
 * The id for the ticket's draft: ticket-N, or the draft of this ticket already kept under
 * ticket-N[-K] (a ticket resolved again replaces its draft), or the first ticket-N-K free.
 */
static int draft_id(tl_store_t *store, int64_t ticket_id, char *id, size_t size, int *replace)
{
    *replace = 0;
    for (int k = 1; k <= DRAFT_ID_TRIES; k++) {
        if (k == 1)
            snprintf(id, size, "ticket-%lld", (long long)ticket_id);
        else
            snprintf(id, size, "ticket-%lld-%d", (long long)ticket_id, k);
        tl_kb_article_row_t row;
        int rc = tl_store_kb_article_read(store, id, &row);
        if (rc == TL_ENOTFOUND)
            return 0;
        if (rc != 0)
            return rc;
        int mine = row.ticket_id == ticket_id && strcmp(row.state, TL_KB_DRAFT) == 0;
        tl_kb_article_row_clear(&row);
        if (mine) {
            *replace = 1;
            return 0;
        }
    }
    return TL_EEXIST;
}

/* The newest diagnostics of the ticket, if it has any that can be read. */
static int latest_diagnostics(tl_job_ctx_t *ctx, const tl_evidence_rows_t *evidence, char **data,
                              size_t *len)
{
    char problem[256];
    for (size_t i = evidence->count; i-- > 0;) {
        if (strcmp(evidence->rows[i].kind, "diagnostics") != 0)
            continue;
        int rc = tl_triage_read_diagnostics(ctx->evidence, evidence->rows[i].hash, data, len,
                                            problem, sizeof problem);
        if (rc != TL_ENOMEM && rc != 0)
            continue; /* an unreadable item: an older one may still say what was wrong */
        return rc;
    }
    return 0;
}

int tl__cmd_kb_draft(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_ticket_row_t ticket = {0};
    tl_ticket_event_rows_t events = {0};
    tl_evidence_rows_t evidence = {0};
    tl_summary_t *summary = NULL;
    tl_kbdraft_t draft = {0};
    json_t *details = NULL;
    char *diagnostics = NULL, id[TL_ARTICLE_ID_MAX + 1], sha256[TL_SHA256_HEX_LEN], actor[96];
    size_t diagnostics_len = 0;
    int replace = 0;
    int rc = tl_store_ticket_read(ctx->store, cmd->ticket.id, &ticket);
    if (rc == 0)
        rc = tl_store_ticket_events_read(ctx->store, ticket.id, &events);
    if (rc == 0)
        rc = tl_store_ticket_evidence_read(ctx->store, ticket.id, &evidence);
    if (rc == 0) {
        tl_summary_input_t input = {
            .ticket = cmd->ticket.text,
            .title = ticket.title,
            .description = ticket.description,
            .events = events.rows,
            .event_count = events.count,
            .evidence = evidence.rows,
            .evidence_count = evidence.count,
        };
        rc = tl_summary_build(&input, NULL, &summary);
    }
    if (rc == 0)
        rc = latest_diagnostics(ctx, &evidence, &diagnostics, &diagnostics_len);
    if (rc == 0)
        rc = draft_id(ctx->store, ticket.id, id, sizeof id, &replace);
    if (rc == TL_EEXIST) {
        fprintf(err,
                "tierline: articles ticket-%lld to ticket-%lld-%d are all taken; nothing was "
                "resolved\n",
                (long long)ticket.id, (long long)ticket.id, DRAFT_ID_TRIES);
        goto out;
    }
    if (rc == 0) {
        tl_kbdraft_input_t input = {
            .id = id,
            .ticket = cmd->ticket.text,
            .title = ticket.title,
            .category = ticket.category,
            .resolution = cmd->text.text,
            .diagnostics = diagnostics,
            .diagnostics_len = diagnostics_len,
            .summary = summary,
        };
        rc = tl_kbdraft_build(&input, &draft);
    }
    if (rc == 0)
        rc = tl_sha256_hex(draft.source, draft.len, sha256);
    tl__cmd_actor(cmd, actor);
    if (rc == 0) {
        tl_kb_article_row_t row = {
            .id = id,
            .title = draft.title,
            .category = ticket.category,
            .runbook = draft.runbook[0] != '\0' ? draft.runbook : NULL,
            .source = draft.source,
            .sha256 = sha256,
            .state = TL_KB_DRAFT,
            .added_by = actor,
            .ticket_id = ticket.id,
            .needs_editing = draft.needs_editing,
        };
        rc = tl_store_kb_article_add(ctx->store, &row, replace, tl_wall_ms(), NULL);
    }
    if (rc == 0) {
        details = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s?}", "ticket", cmd->ticket.text, "title",
                            draft.title, "category", ticket.category, "runbook",
                            draft.runbook[0] != '\0' ? draft.runbook : NULL, "sha256", sha256,
                            "needs_editing", draft.needs_editing);
        rc = details != NULL ? tl_worker_audit(ctx, actor, "kb.draft", id, details) : TL_ENOMEM;
    }
    if (rc != 0) {
        fprintf(err, "tierline: the draft article cannot be stored: %s; nothing was resolved\n",
                tl_strerror(rc));
        goto out;
    }
    fprintf(out,
            "Draft article %s %s (kb show %s; an admin publishes it: tierline-relay kb "
            "publish %s)\n",
            id, replace ? "replaced" : "stored", id, id);
    if (draft.needs_editing != NULL) {
        char shown[600];
        tl_text_clip(shown, sizeof shown, draft.needs_editing, 0, TL_TEXT_LINE);
        fprintf(out, "  needs editing: %s\n", shown);
    }
out:
    json_decref(details);
    tl_kbdraft_clear(&draft);
    free(diagnostics);
    tl_summary_free(summary);
    tl_ticket_event_rows_free(&events);
    tl_evidence_rows_free(&evidence);
    tl_ticket_row_clear(&ticket);
    return rc;
}
