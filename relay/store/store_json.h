/*
 * TRANSITIONAL — delete this file, relay/store/store_json.c and relay/desk/store_compat.c once
 * their last callers use the typed interface (relay/store/store.h). Nothing new may call them.
 *
 * Today's JSON-shaped store calls, rebuilt on the typed interface with the same results they
 * always had ("D-7" and "T-42" ids, booleans, details as objects), plus the explicit
 * begin/commit/rollback of one admin command. Callers left (file: function):
 *   relay/main.c:           cmd_enroll_code (tl_store_begin, _commit, _rollback),
 *                           cmd_devices (tl_store_devices_list), cmd_tickets
 *                           (tl_store_status_valid, tl_store_tickets_query), cmd_ticket
 *                           (tl_store_parse_id, tl_store_ticket_get), user_list
 *                           (tl_store_users_list)
 *   relay/net/server.c:     run_ticket_create (tl_store_ticket_create, tl_store_ticket_event),
 *                           run_users_load (tl_store_users_list, then tl_users_load),
 *                           open_storage (tl_store_devices_list, tl_store_parse_id)
 *   relay/sessions/sessions.c: write_records, add_evidence (tl_store_ticket_event),
 *                           work_lookup, work_grant_ended (tl_store_ticket_fields,
 *                           tl_store_parse_id), tl_sessions_grant_ended (tl_store_parse_id)
 *   relay/cmd/commands.c:   parse_ticket_id (tl_store_parse_id), parse_tickets
 *                           (tl_store_status_valid), load_visible_ticket (tl_store_ticket_get),
 *                           work_tickets (tl_store_tickets_query), record
 *                           (tl_store_ticket_event), work_ticket_take, work_ticket_resolve
 *                           (tl_store_ticket_update)
 * Their typed replacements: tl_store_devices_read, tl_store_tickets_read, tl_store_ticket_read
 * with tl_store_ticket_events_read and tl_store_ticket_evidence_read, tl_store_users_read with
 * tl_users_load_rows (relay/desk/users.h),
 * tl_id_parse/tl_id_format (proto/ids.h), and the desk's tl_ticket_create, tl_ticket_update,
 * tl_ticket_status_valid and tl_timeline_record (relay/desk/tickets.h, relay/desk/timeline.h);
 * begin/commit becomes tl_store_unit_run.
 */
#ifndef TL_STORE_JSON_H
#define TL_STORE_JSON_H

#include "relay/store/store.h"

#include <jansson.h>
#include <stdint.h>

/* Group commit by hand: one transaction around several calls. */
int tl_store_begin(tl_store_t *store);
int tl_store_commit(tl_store_t *store);
void tl_store_rollback(tl_store_t *store);

/* [{id: "D-n", fingerprint, hostname, os, first_seen, last_seen, online: bool}] by id. */
int tl_store_devices_list(tl_store_t *store, json_t **out);
/* [{id: "T-n", device: "D-n", hostname, title, description, tier, status, assignee|null,
 *   created, updated}] by id. */
int tl_store_tickets_query(tl_store_t *store, const tl_ticket_filter_t *filter, json_t **out);
/* One ticket as above, without "events" and "evidence"; TL_ENOTFOUND. */
int tl_store_ticket_fields(tl_store_t *store, int64_t ticket_id, json_t **out);
/* One ticket with "events" [{time, actor, kind, details}] and "evidence"
 * [{hash, kind, name, size, created}]; TL_ENOTFOUND. */
int tl_store_ticket_get(tl_store_t *store, int64_t ticket_id, json_t **out);
/* A timeline event; details (borrowed) must be an object or NULL. */
int tl_store_ticket_event(tl_store_t *store, int64_t ticket_id, int64_t now_ms, const char *actor,
                          const char *kind, json_t *details);
/* [{id, name, role, public_key, fingerprint, disabled: bool, created}] by name. */
int tl_store_users_list(tl_store_t *store, json_t **out);
/* tl_id_parse (proto/ids.h). */
int tl_store_parse_id(const char *text, char prefix, int64_t *out);

/* These three carry the desk's ticket rules, which the store below it may not know: they are
 * defined in relay/desk/store_compat.c as tl_ticket_create, tl_ticket_update and
 * tl_ticket_status_valid (relay/desk/tickets.h). */
int tl_store_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                           int64_t *ticket_id, int *created);
int tl_store_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee,
                           const char *status, int64_t now_ms);
int tl_store_status_valid(const char *status);

#endif
