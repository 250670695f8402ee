/*
 * Inside the store module only: what its files share (relay/store/store.c for every backend,
 * the SQLite backend's store_sqlite*.c, and the transitional relay/store/store_json.c). Nothing
 * outside relay/store/ includes this.
 */
#ifndef TL_STORE_INT_H
#define TL_STORE_INT_H

#include "relay/store/store.h"

#include <stddef.h>

/* ---- relay/store/store.c: checks and row lists, the same for every backend ---------------- */

/* Non-NULL and at most max_len bytes. */
int tl__store_text_ok(const char *text, size_t max_len);
/* 64 lower-case hex digits: a SHA-256. */
int tl__store_hex64(const char *text);
/* The text of a JSON object (details of timeline events and audit entries). */
int tl__store_json_object(const char *text);
/* Makes room for one more row in a list being read: *rows grows (doubling) when count has
 * reached *capacity. TL_ENOMEM leaves it as it was. */
int tl__store_rows_grow(void **rows, size_t *capacity, size_t count, size_t row_size);

/* ---- the backend's units of work, opened and ended explicitly ----------------------------
 *
 * What tl_store_unit_run() is made of. Only relay/store/store_json.c calls them from outside a
 * backend, to keep today's begin/commit callers working; they go with it. */
int tl__store_unit_begin(tl_store_t *store);
int tl__store_unit_commit(tl_store_t *store);
/* Undoes the open unit; a no-op without one. */
void tl__store_unit_abort(tl_store_t *store);

#endif
