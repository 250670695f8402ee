/*
 * The user's side of the ticket (docs/desk.md "The user's side of the ticket"): what the person
 * at a device sees of its tickets, and what they are told when one changes.
 *
 * A ticket as its user sees it is a summary (proto/msg_tickets.h): id, title, status, and the
 * latest text a technician wrote for the user — a note (`ticket note`, `ticket ask`) or the
 * resolution (`ticket resolve TEXT`). Internal records (evidence, sessions, assignments) are not
 * part of it. A device sees its own tickets and no other's: every function here takes the device
 * from the caller (the connection that authenticated it), never from a request.
 *
 * News: when a timeline event is recorded (relay/desk/timeline.h) that the user may need to hear
 * of — a technician's note, or a ticket event that may change the status — the ticket's
 * ticket.update notice (docs/protocol.md §7.12) is published on the storage worker
 * (tl_worker_publish, channel TL_USER_TICKETS_CHANNEL) for the network side to send to the
 * device once the change is durable. The agent decides what the user is told.
 *
 * Like the store, these run on the storage worker (inside a job) or in an admin command.
 */
#ifndef TL_USER_TICKETS_H
#define TL_USER_TICKETS_H

#include "proto/msg_tickets.h"
#include "relay/store/store.h"
#include "relay/store/worker.h"

#include <stdint.h>

/*
 * The worker channel ticket.update notices are published on. Each message is
 * {"device": DEVICE_ID, "body": {...the notice...}}: send body to that device's connection.
 */
#define TL_USER_TICKETS_CHANNEL "ticket.update"

/* One ticket as its user sees it, into out, and the device it belongs to; TL_ENOTFOUND. */
int tl_user_ticket_summary(tl_store_t *store, int64_t ticket_id, tl_ticket_summary_t *out,
                           int64_t *device_id);
/*
 * The device's tickets, most recently updated first, at most TL_TICKETS_LIST_MAX into items;
 * *more is 1 when it has others.
 */
int tl_user_tickets_read(tl_store_t *store, int64_t device_id, tl_ticket_summary_t *items,
                         size_t *count, int *more);
/* 1 if a timeline event of kind by actor is news for the ticket's user (docs/desk.md). */
int tl_user_tickets_is_news(const char *kind, const char *actor);
/*
 * From a job, after a timeline event of kind by actor was recorded on the ticket
 * (relay/desk/timeline.c): publishes the ticket's notice when the event is news. 0 when there
 * was nothing to publish; an error only says the notice was not published (the recorded change
 * stands: the agent catches up when it next lists the tickets).
 */
int tl_user_tickets_publish(tl_job_ctx_t *ctx, int64_t ticket_id, const char *kind,
                            const char *actor);

#endif
