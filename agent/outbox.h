/*
 * The outbox: requests for the relay that must not be lost.
 *
 * `tierline-agent help` writes its request here before it tries the relay;
 * the request leaves only when the relay has acknowledged it (its answer
 * comes after the ticket and evidence are on the relay's disk). A relay that
 * cannot be reached, a dropped connection or a crash leaves the request in
 * place, and the running agent sends it again on its next connection; the
 * request id makes the repeat harmless (docs/protocol.md §7.5).
 *
 * Layout: STATE/outbox/<request-id>/request.json and the evidence files it
 * names, written into a temporary directory, fsynced, then renamed into
 * place, so a request is either whole or absent.
 */
#ifndef TL_OUTBOX_H
#define TL_OUTBOX_H

#include <jansson.h>
#include <stddef.h>

#define TL_OUTBOX_ID_LEN 40 /* "R-" + 32 hex digits + NUL, with room */
#define TL_OUTBOX_MAX_ITEMS 1000

/* Queues a ticket request with one evidence file; *id receives the request id. */
int tl_outbox_add(const char *state_dir, const char *title, const char *description,
                  const char *evidence_name, const char *evidence_kind, const void *evidence,
                  size_t evidence_len, char id[TL_OUTBOX_ID_LEN]);
/* Ids waiting, oldest first: a JSON array of strings. */
int tl_outbox_list(const char *state_dir, json_t **ids);
/*
 * The request: {"request", "title", "description", "tier", "created",
 * "evidence":[{"name","kind","sha256","size","path"}]}.
 */
int tl_outbox_load(const char *state_dir, const char *id, json_t **request);
/* Marks it delivered: the directory goes away. */
int tl_outbox_remove(const char *state_dir, const char *id);
/* 1 if id has the shape of a request id (safe in a path). */
int tl_outbox_id_valid(const char *id);

#endif
