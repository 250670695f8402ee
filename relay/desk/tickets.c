/* Tickets' own rules (relay/desk/tickets.h). */
#include "relay/desk/tickets.h"
#include "proto/err.h"

#include <string.h>

enum status { NEW, OPEN, WAITING_USER, WAITING_VENDOR, RESOLVED, CLOSED, REOPENED, STATUSES };

static const char *const status_names[STATUSES] = {
    [NEW] = TL_TICKET_STATUS_NEW,           [OPEN] = TL_TICKET_STATUS_OPEN,
    [WAITING_USER] = "waiting-user",        [WAITING_VENDOR] = "waiting-vendor",
    [RESOLVED] = TL_TICKET_STATUS_RESOLVED, [CLOSED] = TL_TICKET_STATUS_CLOSED,
    [REOPENED] = TL_TICKET_STATUS_REOPENED,
};

/* Where each status may go: a bit per status it may become. */
#define TO(s) (1u << (s))
#define WORKING (TO(OPEN) | TO(WAITING_USER) | TO(WAITING_VENDOR) | TO(RESOLVED) | TO(CLOSED))
static const unsigned next_statuses[STATUSES] = {
    [NEW] = WORKING,
    [OPEN] = WORKING & ~TO(OPEN),
    [WAITING_USER] = WORKING & ~TO(WAITING_USER),
    [WAITING_VENDOR] = WORKING & ~TO(WAITING_VENDOR),
    [RESOLVED] = TO(REOPENED) | TO(CLOSED),
    [CLOSED] = TO(REOPENED),
    [REOPENED] = WORKING,
};

static int status_index(const char *status)
{
    for (int i = 0; status != NULL && i < STATUSES; i++)
        if (strcmp(status, status_names[i]) == 0)
            return i;
    return -1;
}

int tl_ticket_status_valid(const char *status)
{
    return status_index(status) >= 0;
}

int tl_ticket_transition_allowed(const char *from, const char *to)
{
    int a = status_index(from), b = status_index(to);
    return a >= 0 && b >= 0 && (next_statuses[a] & TO(b)) != 0;
}

int tl_ticket_status_active(const char *status)
{
    int i = status_index(status);
    return i >= 0 && i != RESOLVED && i != CLOSED;
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
