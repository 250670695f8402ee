/* Self-help's deflections on SQLite: the deflections table (relay/store/store.h). */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 48
#define ARGS_MAX_LEN 8192
#define OUTCOME_MAX_LEN 32

static int deflection_ok(const tl_deflection_new_t *d)
{
    return d->device_id > 0 && tl__store_text_ok(d->request_id, 64) && d->request_id[0] != '\0' &&
           tl__store_text_ok(d->article, NAME_MAX_LEN) && d->article[0] != '\0' &&
           tl__store_text_ok(d->runbook, NAME_MAX_LEN) && d->runbook[0] != '\0' &&
           tl__store_text_ok(d->args, ARGS_MAX_LEN) && tl__store_json_object(d->args) &&
           (d->fingerprint == NULL || tl__store_hex64(d->fingerprint)) &&
           tl__store_text_ok(d->outcome, OUTCOME_MAX_LEN) && d->outcome[0] != '\0' &&
           d->shown_ms >= 0 && d->shown_ms <= d->applied_ms && d->applied_ms <= d->rechecked_ms;
}

static int deflection_lookup(tl_store_t *store, int64_t device_id, const char *request_id,
                             int64_t *id)
{
    return tl__sqlite_id_by_request(
        store, "SELECT id FROM deflections WHERE device_id = ? AND request_id = ?", device_id,
        request_id, id, "deflection_lookup");
}

int tl_store_deflection_add(tl_store_t *store, const tl_deflection_new_t *d, int64_t now_ms,
                            int64_t *id, int *created)
{
    *created = 0;
    if (!deflection_ok(d))
        return TL_EINVAL;
    int rc = deflection_lookup(store, d->device_id, d->request_id, id);
    if (rc != TL_ENOTFOUND)
        return rc;
    sqlite3_stmt *stmt;
    rc = tl__sqlite_prepare(store,
                            "INSERT INTO deflections (device_id, request_id, article, runbook, "
                            "args, fingerprint, shown, applied, rechecked, outcome, created) "
                            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, d->device_id);
    sqlite3_bind_text(stmt, 2, d->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, d->article, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, d->runbook, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, d->args, -1, SQLITE_STATIC);
    if (d->fingerprint != NULL)
        sqlite3_bind_text(stmt, 6, d->fingerprint, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 6);
    sqlite3_bind_int64(stmt, 7, d->shown_ms);
    sqlite3_bind_int64(stmt, 8, d->applied_ms);
    sqlite3_bind_int64(stmt, 9, d->rechecked_ms);
    sqlite3_bind_text(stmt, 10, d->outcome, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 11, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "deflection_add");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        return TL_ENOTFOUND; /* foreign key: no such device */
    if (rc != 0)
        return rc;
    *id = sqlite3_last_insert_rowid(store->db);
    *created = 1;
    return 0;
}

static int deflection_row(sqlite3_stmt *stmt, void *out)
{
    tl_deflection_row_t *row = out;
    row->id = sqlite3_column_int64(stmt, 0);
    row->device_id = sqlite3_column_int64(stmt, 1);
    row->shown_ms = sqlite3_column_int64(stmt, 7);
    row->applied_ms = sqlite3_column_int64(stmt, 8);
    row->rechecked_ms = sqlite3_column_int64(stmt, 9);
    row->created_ms = sqlite3_column_int64(stmt, 11);
    int rc = tl__sqlite_text(stmt, 2, &row->request_id);
    if (rc == 0)
        rc = tl__sqlite_text(stmt, 3, &row->article);
    if (rc == 0)
        rc = tl__sqlite_text(stmt, 4, &row->runbook);
    if (rc == 0)
        rc = tl__sqlite_text(stmt, 5, &row->args);
    if (rc == 0)
        rc = tl__sqlite_text(stmt, 6, &row->fingerprint);
    if (rc == 0)
        rc = tl__sqlite_text(stmt, 10, &row->outcome);
    return rc;
}

int tl_store_deflections_between(tl_store_t *store, int64_t since_ms, int64_t until_ms,
                                 size_t max_rows, tl_deflection_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT id, device_id, request_id, article, runbook, args, "
                                "fingerprint, shown, applied, rechecked, outcome, created "
                                "FROM deflections WHERE rechecked >= ? AND rechecked < ? "
                                "ORDER BY rechecked, id LIMIT ?",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, since_ms);
    sqlite3_bind_int64(stmt, 2, until_ms);
    sqlite3_bind_int64(stmt, 3, (sqlite3_int64)max_rows + 1);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, deflection_row, &rows, &out->count,
                         "deflections_between");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc == 0 && out->count > max_rows)
        rc = TL_EFULL;
    if (rc != 0)
        tl_deflection_rows_free(out);
    return rc;
}

/* The same for every backend; here so that this part of the store stays in one file. */
void tl_deflection_rows_free(tl_deflection_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        tl_deflection_row_t *row = &list->rows[i];
        free((void *)row->request_id);
        free((void *)row->article);
        free((void *)row->runbook);
        free((void *)row->args);
        free((void *)row->fingerprint);
        free((void *)row->outcome);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}
