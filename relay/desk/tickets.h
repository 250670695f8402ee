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
/* The status every ticket starts in. */
#define TL_TICKET_STATUS_NEW "new"

/* new, open, waiting-user, waiting-vendor, resolved, closed. */
int tl_ticket_status_valid(const char *status);

/*
 * Opens a ticket in status "new" (ticket->status is not used), or finds the one its request_id
 * already opened (*created 0). TL_EINVAL for an empty or too long title, a tier outside
 * TL_TICKET_TIER_MIN..MAX or fields too long to store; TL_ENOTFOUND for no such device.
 */
int tl_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                     int64_t *ticket_id, int *created);
/*
 * Sets the assignee and/or the status (NULL leaves it). TL_EINVAL for a status that is not one
 * of the words above or an assignee that is not a user name; TL_ENOTFOUND for no such ticket.
 */
int tl_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee, const char *status,
                     int64_t now_ms);

#endif
