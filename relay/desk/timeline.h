/*
 * A ticket's timeline and the audit log, written together: what happened to a ticket (a
 * session, a note, evidence, a change of assignee or status) is both an event on its timeline,
 * which technicians read, and an entry in the audit log, which auditors verify. One call
 * records both, in the storage worker's unit of work (relay/store/worker.h): both are kept or
 * neither is, and the entry reaches the log before the job is acknowledged.
 */
#ifndef TL_TIMELINE_H
#define TL_TIMELINE_H

#include "relay/store/worker.h"

#include <jansson.h>
#include <stdint.h>

typedef struct tl_timeline_entry {
    int64_t ticket_id;
    int64_t time_ms;
    const char *actor;     /* "tech:alice", "agent:D-7", ... */
    const char *event;     /* the timeline event's kind ("note"); NULL: no event */
    const char *action;    /* the audit entry's action ("ticket.note"); NULL: no entry */
    json_t *details;       /* an object or NULL ({}), borrowed: the event's and the entry's */
    json_t *audit_details; /* the entry's when they differ from the event's; NULL: details */
} tl_timeline_entry_t;

/*
 * From a job's run: records entry's event on its ticket's timeline and its audit entry, whose
 * subject is the ticket ("T-42"). If either cannot be recorded, neither is (the job may go on)
 * and the reason is returned: TL_ENOTFOUND for no such ticket, TL_EINVAL for what the timeline
 * or the log would refuse, TL_ESTORE outside a job. An event the ticket's user should hear of
 * (relay/desk/user_tickets.h) is also published for their agent, sent once the job is durable.
 */
int tl_timeline_record(tl_job_ctx_t *ctx, const tl_timeline_entry_t *entry);
/*
 * The same for what a technician of role ("tier1", ...; NULL: none) did: an event that counts as
 * the ticket's first response for that role (tl_sla_counts_as_response, relay/desk/sla.h) also
 * records the response, once per ticket: TL_TICKET_FIRST_RESPONSE and a "response" change the
 * SLA clocks replay (docs/desk.md "What counts as a first response"). All or nothing, as above.
 */
int tl_timeline_record_by(tl_job_ctx_t *ctx, const tl_timeline_entry_t *entry, const char *role);

#endif
