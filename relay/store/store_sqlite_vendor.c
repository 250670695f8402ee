/* Vendor accounts' tickets on SQLite: the ticket_grants table (relay/store/store.h). */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

int tl_store_grant_set(tl_store_t *store, const char *user, int64_t ticket_id, int64_t expires_ms)
{
    if (!tl_store_user_name_valid(user) || expires_ms <= 0)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO ticket_grants (user, ticket_id, expires) "
                                "VALUES (?1, ?2, ?3) ON CONFLICT (user, ticket_id) "
                                "DO UPDATE SET expires = ?3",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, ticket_id);
    sqlite3_bind_int64(stmt, 3, expires_ms);
    rc = tl__sqlite_step_done(store, stmt, "grant_set");
    sqlite3_finalize(stmt);
    return rc == TL_EEXIST ? TL_ENOTFOUND : rc; /* foreign key: no such ticket */
}

/* Runs a statement with the user bound as ?1 and, when positive, the ticket as ?2; how many
 * rows it changed in *changed. */
static int grants_change(tl_store_t *store, const char *sql, const char *user, int64_t ticket_id,
                         int *changed)
{
    if (!tl_store_user_name_valid(user))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    if (ticket_id > 0)
        sqlite3_bind_int64(stmt, 2, ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "grant_change");
    *changed = rc == 0 ? sqlite3_changes(store->db) : 0;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_grant_remove(tl_store_t *store, const char *user, int64_t ticket_id)
{
    int changed = 0;
    int rc = grants_change(store, "DELETE FROM ticket_grants WHERE user = ?1 AND ticket_id = ?2",
                           user, ticket_id, &changed);
    return rc == 0 && changed == 0 ? TL_ENOTFOUND : rc;
}

int tl_store_grants_remove_user(tl_store_t *store, const char *user)
{
    int changed = 0;
    return grants_change(store, "DELETE FROM ticket_grants WHERE user = ?1", user, 0, &changed);
}

int tl_store_grant_find(tl_store_t *store, const char *user, int64_t ticket_id, int64_t *expires_ms)
{
    if (!tl_store_user_name_valid(user))
        return TL_ENOTFOUND; /* no such user can hold one */
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(
        store, "SELECT expires FROM ticket_grants WHERE user = ? AND ticket_id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, ticket_id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *expires_ms = sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "grant_find");
    sqlite3_finalize(stmt);
    return rc;
}

static int grant_row(sqlite3_stmt *stmt, void *out)
{
    tl_ticket_grant_row_t *row = out;
    row->ticket_id = sqlite3_column_int64(stmt, 1);
    row->expires = sqlite3_column_int64(stmt, 2);
    return tl__sqlite_text(stmt, 0, &row->user);
}

int tl_store_grants_read(tl_store_t *store, const char *user, tl_ticket_grant_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT user, ticket_id, expires FROM ticket_grants "
                                "WHERE ?1 IS NULL OR user = ?1 ORDER BY user, ticket_id",
                                &stmt);
    if (rc != 0)
        return rc;
    if (user != NULL)
        sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, grant_row, &rows, &out->count,
                         "grants_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_ticket_grant_rows_free(out);
    return rc;
}

/* The same for every backend; here so that this part of the store stays in one file. */
void tl_ticket_grant_rows_free(tl_ticket_grant_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++)
        free((void *)list->rows[i].user);
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}
