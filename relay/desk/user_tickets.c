/* The user's side of the ticket (relay/desk/user_tickets.h, docs/desk.md). */
#include "relay/desk/user_tickets.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/log.h"

#include <stdio.h>
#include <string.h>

/* Actors of the desk's people; "agent:D-7" and "relay" write nothing for the user. */
#define TECH_PREFIX "tech:"
#define KIND_NOTE "note"
#define KIND_RESOLVED "ticket.resolved"

/* The events whose text a technician wrote for the user, and the member holding it. */
static const struct {
    const char *kind;
    const char *member;
} user_texts[] = {
    {KIND_NOTE, "text"},
    {KIND_RESOLVED, "resolution"},
};
#define USER_TEXTS (sizeof user_texts / sizeof user_texts[0])

/* Events that never concern the user: the opening (the user did it) and a silent claim. */
static const char *const quiet_ticket_events[] = {"ticket.created", "ticket.taken"};

int tl_user_tickets_is_news(const char *kind, const char *actor)
{
    if (kind == NULL || actor == NULL)
        return 0;
    if (strcmp(kind, KIND_NOTE) == 0)
        return strncmp(actor, TECH_PREFIX, strlen(TECH_PREFIX)) == 0;
    if (strncmp(kind, "ticket.", 7) != 0)
        return 0;
    for (size_t i = 0; i < sizeof quiet_ticket_events / sizeof quiet_ticket_events[0]; i++)
        if (strcmp(kind, quiet_ticket_events[i]) == 0)
            return 0;
    return 1;
}

/* The latest text a technician wrote for the user on the ticket, into out (has_note 0: none). */
static int latest_note(tl_store_t *store, int64_t ticket_id, tl_ticket_summary_t *out)
{
    const char *kinds[USER_TEXTS];
    for (size_t i = 0; i < USER_TEXTS; i++)
        kinds[i] = user_texts[i].kind;
    tl_ticket_event_rows_t latest;
    int rc =
        tl_store_ticket_event_latest(store, ticket_id, TECH_PREFIX, kinds, USER_TEXTS, &latest);
    if (rc != 0 || latest.count == 0)
        goto out;
    const tl_ticket_event_row_t *event = &latest.rows[0];
    const char *member = NULL;
    for (size_t i = 0; i < USER_TEXTS; i++)
        if (strcmp(event->kind, user_texts[i].kind) == 0)
            member = user_texts[i].member;
    json_t *details = json_loads(event->details, 0, NULL);
    const char *text = json_string_value(json_object_get(details, member));
    const char *by = event->actor + strlen(TECH_PREFIX);
    /* An account name as the wire takes it; anything else the store would not hold anyway. */
    if (text != NULL && strlen(by) >= 1 && strlen(by) <= TL_TICKET_BY_MAX &&
        strspn(by, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
            strlen(by)) {
        out->has_note = 1;
        tl_msg_tickets_clip(out->note, sizeof out->note, TL_TICKET_NOTE_MAX, text);
        snprintf(out->note_by, sizeof out->note_by, "%s", by);
        out->note_ms = event->time > 0 ? event->time : 0;
    }
    json_decref(details);
out:
    tl_ticket_event_rows_free(&latest);
    return rc;
}

int tl_user_ticket_summary(tl_store_t *store, int64_t ticket_id, tl_ticket_summary_t *out,
                           int64_t *device_id)
{
    memset(out, 0, sizeof *out);
    tl_ticket_row_t row;
    int rc = tl_store_ticket_read(store, ticket_id, &row);
    if (rc != 0)
        return rc;
    char id[TL_ID_TEXT];
    snprintf(out->ticket, sizeof out->ticket, "%s", tl_id_format(id, TL_ID_TICKET, row.id));
    tl_msg_tickets_clip(out->title, sizeof out->title, TL_TICKET_TITLE_MAX, row.title);
    tl_msg_tickets_clip(out->status, sizeof out->status, TL_TICKET_STATUS_MAX, row.status);
    out->updated_ms = row.updated > 0 ? row.updated : 0;
    if (device_id != NULL)
        *device_id = row.device_id;
    tl_ticket_row_clear(&row);
    return latest_note(store, ticket_id, out);
}

int tl_user_tickets_read(tl_store_t *store, int64_t device_id, tl_ticket_summary_t *items,
                         size_t *count, int *more)
{
    int64_t ids[TL_TICKETS_LIST_MAX];
    size_t found = 0;
    *count = 0;
    int rc = tl_store_device_ticket_ids(store, device_id, TL_TICKETS_LIST_MAX, ids, &found, more);
    for (size_t i = 0; rc == 0 && i < found; i++)
        rc = tl_user_ticket_summary(store, ids[i], &items[i], NULL);
    if (rc == 0)
        *count = found;
    return rc;
}

int tl_user_tickets_publish(tl_job_ctx_t *ctx, int64_t ticket_id, const char *kind,
                            const char *actor)
{
    if (!tl_user_tickets_is_news(kind, actor))
        return 0;
    tl_ticket_update_t update;
    int64_t device_id = 0;
    int rc = tl_user_ticket_summary(ctx->store, ticket_id, &update.summary, &device_id);
    json_t *body = NULL, *message = NULL;
    snprintf(update.event, sizeof update.event, "%s", kind);
    if (rc == 0)
        rc = tl_msg_ticket_update_encode(&update, &body);
    if (rc == 0)
        rc = (message = json_pack("{s:I, s:O}", "device", (json_int_t)device_id, "body", body)) !=
                     NULL
                 ? tl_worker_publish(ctx, TL_USER_TICKETS_CHANNEL, message)
                 : TL_ENOMEM;
    if (rc != 0)
        tl_log_warn("ticket update not published ticket=%s event=%s reason=%s",
                    update.summary.ticket, kind, tl_err_name(rc));
    json_decref(body);
    json_decref(message);
    return rc;
}
