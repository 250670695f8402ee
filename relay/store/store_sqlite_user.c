/*
 * The user's side of tickets on SQLite (relay/store/store.h, the last section): a device's
 * tickets, and the latest thing a technician wrote on one.
 */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdio.h>
#include <string.h>

int tl_store_device_ticket_ids(tl_store_t *store, int64_t device_id, size_t max, int64_t *ids,
                               size_t *count, int *more)
{
    *count = 0;
    *more = 0;
    if (max == 0 || max > INT32_MAX)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "SELECT id FROM tickets WHERE device_id = ? "
                                "ORDER BY updated DESC, id DESC LIMIT ?",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_int64(stmt, 2, (int64_t)max + 1); /* one more says whether there are others */
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (*count == max) {
            *more = 1;
            continue;
        }
        ids[(*count)++] = sqlite3_column_int64(stmt, 0);
    }
    if (step != SQLITE_DONE)
        rc = tl__sqlite_error(store, "device_ticket_ids");
    sqlite3_finalize(stmt);
    return rc;
}

static int event_row(sqlite3_stmt *stmt, void *out)
{
    tl_ticket_event_row_t *row = out;
    int rc;
    row->ticket_id = sqlite3_column_int64(stmt, 0);
    row->time = sqlite3_column_int64(stmt, 1);
    if ((rc = tl__sqlite_text(stmt, 2, &row->actor)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->kind)) == 0)
        rc = tl__sqlite_text(stmt, 4, &row->details);
    return rc;
}

int tl_store_ticket_event_latest(tl_store_t *store, int64_t ticket_id, const char *actor_prefix,
                                 const char *const *kinds, size_t kind_count,
                                 tl_ticket_event_rows_t *out)
{
    memset(out, 0, sizeof *out);
    if (actor_prefix == NULL || kind_count == 0 || kind_count > TL_STORE_MAX_KINDS)
        return TL_EINVAL;
    /* A prefix compared as bytes: LIKE would fold case and treat '_' as a wildcard. */
    char sql[512];
    size_t used = (size_t)snprintf(sql, sizeof sql,
                                   "SELECT ticket_id, time, actor, kind, details FROM "
                                   "ticket_events WHERE ticket_id = ?1 AND "
                                   "substr(actor, 1, length(?2)) = ?2 AND kind IN (");
    for (size_t i = 0; i < kind_count; i++)
        used += (size_t)snprintf(sql + used, sizeof sql - used, "%s?%zu", i ? "," : "", i + 3);
    snprintf(sql + used, sizeof sql - used, ") ORDER BY id DESC LIMIT 1");
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    sqlite3_bind_text(stmt, 2, actor_prefix, -1, SQLITE_STATIC);
    for (size_t i = 0; i < kind_count; i++)
        sqlite3_bind_text(stmt, (int)i + 3, kinds[i] != NULL ? kinds[i] : "", -1, SQLITE_STATIC);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, event_row, &rows, &out->count,
                         "ticket_event_latest");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_ticket_event_rows_free(out);
    return rc;
}
