/* Tickets' own rules (relay/desk/tickets.h). */
#include "relay/desk/tickets.h"
#include "proto/err.h"
#include "relay/desk/sla.h"

#include <string.h>

/*
 * The words are the SLA clocks' (tl_sla_status_name, relay/desk/sla.h): one list for the rules
 * and the clocks. Where each status may go: a bit per status it may become.
 */
#define TO(s) (1u << (TL_SLA_STATUS_##s))
#define WORKING (TO(OPEN) | TO(WAITING_USER) | TO(WAITING_VENDOR) | TO(RESOLVED) | TO(CLOSED))
_Static_assert(TL_SLA_STATUSES <= 8 * sizeof(unsigned), "a bit per status");
static const unsigned next_statuses[TL_SLA_STATUSES] = {
    [TL_SLA_STATUS_NEW] = WORKING,
    [TL_SLA_STATUS_OPEN] = WORKING & ~TO(OPEN),
    [TL_SLA_STATUS_WAITING_USER] = WORKING & ~TO(WAITING_USER),
    [TL_SLA_STATUS_WAITING_VENDOR] = WORKING & ~TO(WAITING_VENDOR),
    [TL_SLA_STATUS_RESOLVED] = TO(REOPENED) | TO(CLOSED),
    [TL_SLA_STATUS_CLOSED] = TO(REOPENED),
    [TL_SLA_STATUS_REOPENED] = WORKING,
};

static int status_index(const char *status)
{
    tl_sla_status_t index;
    return tl_sla_status_from_name(status, &index) == 0 ? (int)index : -1;
}

int tl_ticket_status_valid(const char *status)
{
    return status_index(status) >= 0;
}

int tl_ticket_transition_allowed(const char *from, const char *to)
{
    int a = status_index(from), b = status_index(to);
    return a >= 0 && b >= 0 && (next_statuses[a] & (1u << b)) != 0;
}

int tl_ticket_status_active(const char *status)
{
    int i = status_index(status);
    return i >= 0 && i != TL_SLA_STATUS_RESOLVED && i != TL_SLA_STATUS_CLOSED;
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
                     const char *actor, int64_t now_ms)
{
    if (status != NULL && !tl_ticket_status_valid(status))
        return TL_EINVAL;
    if (status != NULL) {
        tl_ticket_row_t row;
        int rc = tl_store_ticket_read(store, ticket_id, &row);
        if (rc != 0)
            return rc;
        int allowed = tl_ticket_transition_allowed(row.status, status);
        tl_ticket_row_clear(&row);
        if (!allowed)
            return TL_ESTATE;
    }
    return tl_store_ticket_set(store, ticket_id, assignee, status, actor, now_ms);
}
