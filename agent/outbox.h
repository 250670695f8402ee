/*
 * The outbox: requests for the relay that must not be lost
 * (docs/architecture.md "The outbox").
 *
 * `tierline-agent help` writes its request here before it tries the relay;
 * the request leaves only when the relay has acknowledged it (its answer
 * comes after the ticket and evidence are on the relay's disk). A relay that
 * cannot be reached, a dropped connection or a crash leaves the request in
 * place, and the running agent sends it again on its next connection; the
 * request id makes the repeat harmless (docs/protocol.md §7.5).
 *
 * Layout, in STATE/outbox/:
 *   R-<32 hex>/      a queued request: request.json and the evidence files
 *                    it names (evidence-0, ...)
 *   .tmp-R-…/        a request being written: its files are written and
 *                    fsynced, then the folder is renamed to R-… and the
 *                    outbox fsynced, so a request is either whole or absent
 *   .trash-R-…/      a delivered request being removed: renamed out first
 *                    (outbox fsynced), then deleted, so a removal never
 *                    leaves a request without its files
 *   rejected-R-…/    refused by the relay for good; kept, never sent again
 *   damaged-R-…/     found damaged here (set-aside.json says why); kept,
 *                    never sent again
 *   .lock            writers hold it shared while they write; start-up
 *                    recovery holds it exclusively while it removes the
 *                    temporary folders, so it never removes one being written
 * and STATE/delivered/R-….json: the requests delivered lately, each with its
 * ticket id (the newest TL_OUTBOX_KEEP_DELIVERED, for a week).
 *
 * tl_outbox_recover() finishes every partial state a crash can leave; see
 * there. Everything here does blocking file I/O: the running agent calls it
 * from its storage lane (agent/storage.h), never from its loop.
 */
#ifndef TL_OUTBOX_H
#define TL_OUTBOX_H

#include <jansson.h>
#include <stddef.h>

#define TL_OUTBOX_ID_LEN 40 /* "R-" + 32 hex digits + NUL, with room */
#define TL_OUTBOX_MAX_ITEMS 1000
/* Delivered requests remembered for `status`, and for how long. */
#define TL_OUTBOX_KEEP_DELIVERED 32
#define TL_OUTBOX_KEEP_DELIVERED_S (7 * 86400)

/* Queues a ticket request with one evidence file; *id receives the request id. */
int tl_outbox_add(const char *state_dir, const char *title, const char *description,
                  const char *evidence_name, const char *evidence_kind, const void *evidence,
                  size_t evidence_len, char id[TL_OUTBOX_ID_LEN]);
/*
 * The same with more members for request.json (an object, borrowed; NULL: none), and what the
 * request is: TL_OUTBOX_TICKET (a ticket.create; fields may hold "selfhelp" rows) or
 * TL_OUTBOX_DEFLECTION (a selfhelp.deflected: fields hold its members, proto/selfhelp.h;
 * request.json then says "kind":"deflection"). Members the outbox writes itself ("request",
 * "title", "description", "tier", "created", "evidence", "kind") are not taken from fields.
 */
enum tl_outbox_kind { TL_OUTBOX_TICKET = 0, TL_OUTBOX_DEFLECTION = 1 };
int tl_outbox_add_request(const char *state_dir, enum tl_outbox_kind kind, const char *title,
                          const char *description, json_t *fields, const char *evidence_name,
                          const char *evidence_kind, const void *evidence, size_t evidence_len,
                          char id[TL_OUTBOX_ID_LEN]);
/* What a loaded request is: its "kind", TL_OUTBOX_TICKET when it has none (older entries). */
enum tl_outbox_kind tl_outbox_kind_of(json_t *request);
/* Ids waiting (whole entries named R-…), oldest first: a JSON array of strings. */
int tl_outbox_list(const char *state_dir, json_t **ids);
/*
 * The request: {"request", "title", "description", "tier", "created",
 * "evidence":[{"name","kind","sha256","size","path"}], "kind"?, ...}, checked: TL_EINVAL
 * when it does not parse or lacks a member, TL_ENOTFOUND without request.json.
 */
int tl_outbox_load(const char *state_dir, const char *id, json_t **request);
/*
 * 1 when a file the loaded request names is missing from its folder (its
 * name goes to missing), 0 when all are there, or a negative code.
 */
int tl_outbox_missing(const char *state_dir, const char *id, json_t *request, char *missing,
                      size_t size);
/* Removes an entry: renamed out to .trash-ID, the outbox fsynced, then deleted. */
int tl_outbox_remove(const char *state_dir, const char *id);
/*
 * The relay acknowledged id with ticket: records the delivery in
 * STATE/delivered/ (fsynced), then removes the entry (tl_outbox_remove).
 */
int tl_outbox_finish(const char *state_dir, const char *id, const char *ticket, const char *title);
/*
 * Sets an entry aside for good as rejected-ID ("rejected": the relay
 * refused it) or damaged-ID ("damaged"), with detail in set-aside.json.
 */
int tl_outbox_set_aside(const char *state_dir, const char *id, const char *why, const char *detail);
/*
 * At start, before anything is delivered: removes temporary folders left by
 * an interrupted write (unless a writer still holds the lock), finishes
 * removals that were renamed out, removes empty entries, and sets aside as
 * damaged every entry without a readable request.json. An entry whose
 * request.json names a missing evidence file is left queued: the tunnel
 * asks the relay whether it already holds it (agent/tunnel.h). *actions gets
 * [{"request","action","detail"}] for the log ("removed", "finished",
 * "set-aside", "incomplete", "skipped").
 */
int tl_outbox_recover(const char *state_dir, json_t **actions);
/* Delivered lately, newest first: [{"request","ticket","title","delivered_ms"}]. */
int tl_outbox_delivered(const char *state_dir, json_t **list);
/* Set aside: [{"request","why","detail","path"}]. */
int tl_outbox_set_aside_list(const char *state_dir, json_t **list);
/* 1 if id has the shape of a request id (safe in a path). */
int tl_outbox_id_valid(const char *id);

#endif
