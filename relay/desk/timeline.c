/* A ticket's timeline event and its audit entry, recorded together (relay/desk/timeline.h). */
#include "relay/desk/timeline.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "relay/desk/user_tickets.h"
#include "relay/desk/sla.h"

#include <stdlib.h>

struct record_call {
    tl_job_ctx_t *ctx;
    const tl_timeline_entry_t *entry;
    const char *role;
};

/* The ticket's first response, if it has none yet: when, and a change the clocks replay. */
static int record_response(tl_store_t *store, const tl_timeline_entry_t *entry)
{
    tl_ticket_row_t row;
    int rc = tl_store_ticket_read(store, entry->ticket_id, &row);
    if (rc != 0)
        return rc;
    int answered = row.first_response != 0;
    tl_ticket_row_clear(&row);
    if (answered)
        return 0;
    int64_t when = entry->time_ms > 0 ? entry->time_ms : 1;
    tl_ticket_change_row_t change = {entry->ticket_id, when,         "response",
                                     entry->event,     entry->actor, ""};
    rc = tl_store_ticket_column_set(store, entry->ticket_id, TL_TICKET_FIRST_RESPONSE, NULL, when,
                                    when);
    if (rc == 0)
        rc = tl_store_ticket_change_add(store, &change);
    return rc;
}

/* Both records, as one step of the job's unit: undone together if either fails. */
static int record_both(tl_store_t *store, void *arg)
{
    const struct record_call *call = arg;
    const tl_timeline_entry_t *entry = call->entry;
    char *details = NULL, subject[TL_ID_TEXT];
    int rc = 0;
    if (entry->event != NULL) {
        if (entry->details != NULL && !json_is_object(entry->details))
            return TL_EINVAL;
        if (entry->details != NULL && (details = json_dumps(entry->details, JSON_COMPACT)) == NULL)
            return TL_ENOMEM;
        tl_ticket_event_row_t event = {entry->ticket_id, entry->time_ms, entry->actor, entry->event,
                                       details};
        rc = tl_store_ticket_event_add(store, &event);
        if (rc == 0 && tl_sla_counts_as_response(entry->event, call->role))
            rc = record_response(store, entry);
    }
    if (rc == 0 && entry->action != NULL)
        rc = tl_worker_audit(call->ctx, entry->actor, entry->action,
                             tl_id_format(subject, TL_ID_TICKET, entry->ticket_id),
                             entry->audit_details != NULL ? entry->audit_details : entry->details);
    free(details);
    return rc;
}

int tl_timeline_record_by(tl_job_ctx_t *ctx, const tl_timeline_entry_t *entry, const char *role)
{
    if (entry->event == NULL && entry->action == NULL)
        return TL_EINVAL;
    struct record_call call = {ctx, entry, role};
    int rc = tl_store_unit_step(ctx->store, record_both, &call);
    /* The ticket's user hears of it once it is durable (docs/desk.md "The user's side"). */
    if (rc == 0)
        tl_user_tickets_publish(ctx, entry->ticket_id, entry->event, entry->actor);
    return rc;
}

int tl_timeline_record(tl_job_ctx_t *ctx, const tl_timeline_entry_t *entry)
{
    return tl_timeline_record_by(ctx, entry, NULL);
}
