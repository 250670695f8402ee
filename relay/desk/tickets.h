/*
 * Tickets as the help desk sees them: what a ticket may be — its statuses, its tier, a title —
 * checked here, before the store is asked to keep it. The store (relay/store/store.h) checks
 * only what storage needs (lengths, references); the words and ranges are the desk's
 * (DESIGN.md §6). Queues, escalation, SLA clocks and known problems will live beside this.
 *
 * Like the store, these run where the store may be used: on the storage worker (inside a job's
 * unit of work) or in an admin command.
 */
#ifndef TL_TICKETS_H
#define TL_TICKETS_H

#include "relay/store/store.h"

#include <stdint.h>

/* Tiers a ticket can be queued for: 0 (self-help on the machine) to 4. */
#define TL_TICKET_TIER_MIN 0
#define TL_TICKET_TIER_MAX 4
/* The statuses (docs/technicians.md "Statuses"); every ticket starts new. */
#define TL_TICKET_STATUS_NEW "new"
#define TL_TICKET_STATUS_OPEN "open"
#define TL_TICKET_STATUS_RESOLVED "resolved"
#define TL_TICKET_STATUS_CLOSED "closed"
#define TL_TICKET_STATUS_REOPENED "reopened"

/*
 * The statuses as help texts and errors list them: the one list of relay/desk/sla.h
 * (tl_sla_status_name), in its order; a unit test keeps these texts and that list equal.
 */
#define TL_TICKET_STATUS_LIST "new, open, waiting-user, waiting-vendor, resolved, closed, reopened"
#define TL_TICKET_STATUS_CHOICE                                                                    \
    "new, open, waiting-user, waiting-vendor, resolved, closed or reopened"

/* One of the statuses (TL_TICKET_STATUS_LIST). */
int tl_ticket_status_valid(const char *status);
/*
 * Whether a ticket may go from status from to status to: 1 or 0. A resolved ticket goes only to
 * reopened or closed, a closed one only to reopened; nothing goes back to new, nor to the status
 * it has (resolving twice is refused).
 */
int tl_ticket_transition_allowed(const char *from, const char *to);
/* 1 if a ticket in status takes notes and sessions: any status but resolved and closed. */
int tl_ticket_status_active(const char *status);

/*
 * Opens a ticket in status "new" (ticket->status is not used), or finds the one its request_id
 * already opened (*created 0). TL_EINVAL for an empty or too long title, a tier outside
 * TL_TICKET_TIER_MIN..MAX or fields too long to store; TL_ENOTFOUND for no such device.
 */
int tl_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                     int64_t *ticket_id, int *created);
/*
 * Sets the assignee and/or the status (NULL leaves it); the ticket's history of changes names
 * actor ("tech:alice"; NULL: "relay"). TL_EINVAL for a status that is not one
 * of the words above or an assignee that is not a user name; TL_ESTATE for a change of status
 * tl_ticket_transition_allowed refuses; TL_ENOTFOUND for no such ticket.
 */
int tl_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee, const char *status,
                     const char *actor, int64_t now_ms);

#endif
