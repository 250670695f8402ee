/*
 * The store's rows as the commands show them: each call reads typed rows (relay/store/store.h)
 * and makes them the JSON objects that --json prints and the tables are drawn from. Ids take
 * their text form here ("T-42", "D-7", proto/ids.h); text that is not valid UTF-8 is shown with
 * its stray bytes as \xHH; a timeline event's details are an object ({} if they do not parse).
 * This is the commands' view, not the store's: the store hands out rows, never JSON.
 */
#ifndef TL_CMD_ROWS_H
#define TL_CMD_ROWS_H

#include "relay/store/store.h"

#include <jansson.h>
#include <stdint.h>

/* [{id: "D-n", fingerprint, hostname, os, first_seen, last_seen, online: bool}] by id. */
int tl_rows_devices(tl_store_t *store, json_t **out);
/* [{id: "T-n", device: "D-n", hostname, title, description, tier, status, assignee|null,
 *   created, updated, severity: "S1".."S4", category, vendor|null, vendor_case|null,
 *   follow_up|null}] by id, those filter lets through (NULL: all). */
int tl_rows_tickets(tl_store_t *store, const tl_ticket_filter_t *filter, json_t **out);
/* One ticket row as an object of that list; NULL without memory. */
json_t *tl_rows_ticket_object(const tl_ticket_row_t *row);
/* One ticket as above, with "events" [{time, actor, kind, details}] and "evidence"
 * [{hash, kind, name, size, created}]; TL_ENOTFOUND if there is none. */
int tl_rows_ticket(tl_store_t *store, int64_t ticket_id, json_t **out);
/* [{id, name, role, public_key, fingerprint, disabled: bool, created, lead: bool,
 * expires|null}] by name. */
int tl_rows_users(tl_store_t *store, json_t **out);

#endif
