/* Tickets' own rules (relay/desk/tickets.h). */
#include "relay/desk/tickets.h"
#include "proto/err.h"

#include <string.h>

int tl_ticket_status_valid(const char *status)
{
    static const char *const statuses[] = {"new",      "open",  "waiting-user", "waiting-vendor",
                                           "resolved", "closed"};
    for (size_t i = 0; status != NULL && i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(status, statuses[i]) == 0)
            return 1;
    return 0;
}

int tl_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                     int64_t *ticket_id, int *created)
{
    if (ticket->title == NULL || ticket->title[0] == '\0' || ticket->tier < TL_TICKET_TIER_MIN ||
        ticket->tier > TL_TICKET_TIER_MAX)
        return TL_EINVAL;
    tl_ticket_new_t opened = *ticket;
    opened.status = TL_TICKET_STATUS_NEW;
    return tl_store_ticket_insert(store, &opened, now_ms, ticket_id, created);
}

int tl_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee, const char *status,
                     int64_t now_ms)
{
    if (status != NULL && !tl_ticket_status_valid(status))
        return TL_EINVAL;
    return tl_store_ticket_set(store, ticket_id, assignee, status, now_ms);
}
