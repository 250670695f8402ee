/*
 * Inside the SQLite backend only (relay/store/store_sqlite*.c): the connection, the helpers its
 * files share, and the schema (relay/store/store_sqlite_schema.c). Another backend has its own.
 */
#ifndef TL_STORE_SQLITE_H
#define TL_STORE_SQLITE_H

#include "relay/store/store_int.h"

#include <sqlite3.h>

struct tl_store {
    sqlite3 *db;
    /* 0 outside a unit of work; 1 inside one; one more for each step it is running. */
    int depth;
};

/* Migrations, applied in order; entry i takes the schema from version i to i + 1. */
extern const char *const tl__sqlite_migrations[];
extern const int tl__sqlite_migration_count;

/* Logs SQLite's message for what failed; TL_ESTORE. */
int tl__sqlite_error(tl_store_t *store, const char *what);
int tl__sqlite_exec(tl_store_t *store, const char *sql);
int tl__sqlite_prepare(tl_store_t *store, const char *sql, sqlite3_stmt **stmt);
/* Steps a statement that returns no rows; a constraint it breaks is TL_EEXIST. */
int tl__sqlite_step_done(tl_store_t *store, sqlite3_stmt *stmt, const char *what);
/* A copy of a text column for a row (*out NULL for SQL NULL); TL_ENOMEM. */
int tl__sqlite_text(sqlite3_stmt *stmt, int column, const char **out);
/* Fills a row from the current result row of stmt; the row is zeroed before. */
typedef int (*tl__sqlite_row_fn)(sqlite3_stmt *stmt, void *row);
/*
 * Steps stmt to its end, adding a row of row_size bytes to *rows (*count of them) for each
 * result row and filling it with fill. On failure the rows so far stay for the caller to free
 * with its list's free function. what names the query in the log.
 */
int tl__sqlite_rows(tl_store_t *store, sqlite3_stmt *stmt, size_t row_size, tl__sqlite_row_fn fill,
                    void **rows, size_t *count, const char *what);
/* Fills a tl_evidence_row_t from a row of (ticket_id, hash, kind, name, size, created). */
int tl__sqlite_evidence_row(sqlite3_stmt *stmt, void *row);
/* The id of the row sql selects (one column, parameters device_id and request_id): a request an
 * agent sent before, found again. TL_ENOTFOUND if there is none; what names it in the log. */
int tl__sqlite_id_by_request(tl_store_t *store, const char *sql, int64_t device_id,
                             const char *request_id, int64_t *id, const char *what);
/* Sets updated on a ticket: TL_ENOTFOUND if there is none. */
int tl__sqlite_touch_ticket(tl_store_t *store, int64_t ticket_id, int64_t now_ms);

#endif
