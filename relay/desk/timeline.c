/* A ticket's timeline event and its audit entry, recorded together (relay/desk/timeline.h). */
#include "relay/desk/timeline.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "relay/desk/user_tickets.h"

#include <stdlib.h>

struct record_call {
    tl_job_ctx_t *ctx;
    const tl_timeline_entry_t *entry;
};

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
    }
    if (rc == 0 && entry->action != NULL)
        rc = tl_worker_audit(call->ctx, entry->actor, entry->action,
                             tl_id_format(subject, TL_ID_TICKET, entry->ticket_id),
                             entry->audit_details != NULL ? entry->audit_details : entry->details);
    free(details);
    return rc;
}

int tl_timeline_record(tl_job_ctx_t *ctx, const tl_timeline_entry_t *entry)
{
    if (entry->event == NULL && entry->action == NULL)
        return TL_EINVAL;
    struct record_call call = {ctx, entry};
    int rc = tl_store_unit_step(ctx->store, record_both, &call);
    /* The ticket's user hears of it once it is durable (docs/desk.md "The user's side"). */
    if (rc == 0)
        tl_user_tickets_publish(ctx, entry->ticket_id, entry->event, entry->actor);
    return rc;
}
