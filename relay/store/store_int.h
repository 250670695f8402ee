/*
 * Inside the store module only: what its files share (relay/store/store.c for every backend,
 * and the SQLite backend's store_sqlite*.c). Nothing
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

#endif
