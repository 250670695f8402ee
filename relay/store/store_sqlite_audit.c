/* The audit chain's head and outbox on SQLite (relay/store/store.h, relay/store/audit_chain.h). */
#include "proto/err.h"
#include "proto/log.h"
#include "relay/store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

int tl_store_audit_head_get(tl_store_t *store, tl_store_audit_head_t *head)
{
    sqlite3_stmt *stmt;
    memset(head, 0, sizeof *head);
    int rc = tl__sqlite_prepare(store, "SELECT seq, hash FROM audit_head WHERE id = 1", &stmt);
    if (rc != 0)
        return rc;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        const char *hash = (const char *)sqlite3_column_text(stmt, 1);
        int64_t seq = sqlite3_column_int64(stmt, 0);
        if (seq < 0 || !tl__store_hex64(hash)) {
            tl_log_error("store failure op=audit_head_get reason=\"malformed head row\"");
            rc = TL_ESTORE;
        } else {
            head->known = 1;
            head->seq = (uint64_t)seq;
            memcpy(head->hash, hash, 65);
        }
    } else if (step != SQLITE_DONE) {
        rc = tl__sqlite_error(store, "audit_head_get");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_head_set(tl_store_t *store, uint64_t seq, const char *hash, int64_t now_ms)
{
    if (seq > INT64_MAX || !tl__store_hex64(hash))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc =
        tl__sqlite_prepare(store,
                           "INSERT INTO audit_head (id, seq, hash, updated) VALUES (1, ?1, ?2, ?3) "
                           "ON CONFLICT (id) DO UPDATE SET seq = ?1, hash = ?2, updated = ?3",
                           &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, (int64_t)seq);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "audit_head_set");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_outbox_add(tl_store_t *store, uint64_t seq, const char *hash, const char *line,
                              int64_t now_ms)
{
    if (seq == 0 || seq > INT64_MAX || !tl__store_hex64(hash) || line == NULL)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(
        store, "INSERT INTO audit_outbox (seq, hash, line, created) VALUES (?,?,?,?)", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, (int64_t)seq);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, line, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "audit_outbox_add");
    sqlite3_finalize(stmt);
    return rc;
}

/* Outside a unit of work, one read transaction makes head and rows one snapshot. */
static int outbox_row(sqlite3_stmt *stmt, void *out)
{
    tl_audit_outbox_row_t *row = out;
    int64_t seq = sqlite3_column_int64(stmt, 0);
    int rc;
    row->seq = seq > 0 ? (uint64_t)seq : 0;
    row->created = sqlite3_column_int64(stmt, 3);
    if ((rc = tl__sqlite_text(stmt, 1, &row->hash)) == 0)
        rc = tl__sqlite_text(stmt, 2, &row->line);
    return rc;
}

/* Outside a unit of work, one read transaction makes head and rows one snapshot. */
int tl_store_audit_outbox_read(tl_store_t *store, size_t max_rows, tl_store_audit_head_t *head,
                               tl_audit_outbox_rows_t *out)
{
    int own = sqlite3_get_autocommit(store->db);
    sqlite3_stmt *stmt = NULL;
    memset(out, 0, sizeof *out);
    int rc = own ? tl__sqlite_exec(store, "BEGIN") : 0;
    if (rc != 0)
        return rc;
    if ((rc = tl_store_audit_head_get(store, head)) != 0)
        goto out;
    if ((rc = tl__sqlite_prepare(
             store, "SELECT seq, hash, line, created FROM audit_outbox ORDER BY seq LIMIT ?",
             &stmt)) != 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, outbox_row, &rows, &out->count,
                         "audit_outbox_read");
    out->rows = rows;
out:
    sqlite3_finalize(stmt);
    if (own)
        tl__sqlite_exec(store, rc == 0 ? "COMMIT" : "ROLLBACK");
    if (rc != 0)
        tl_audit_outbox_rows_free(out);
    return rc;
}

int tl_store_audit_outbox_delete(tl_store_t *store, uint64_t up_to_seq)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "DELETE FROM audit_outbox WHERE seq <= ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, up_to_seq > INT64_MAX ? INT64_MAX : (int64_t)up_to_seq);
    rc = tl__sqlite_step_done(store, stmt, "audit_outbox_delete");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_outbox_count(tl_store_t *store, uint64_t *count, int64_t *oldest_ms)
{
    sqlite3_stmt *stmt;
    *count = 0;
    if (oldest_ms != NULL)
        *oldest_ms = 0;
    int rc = tl__sqlite_prepare(
        store, "SELECT COUNT(*), COALESCE(MIN(created), 0) FROM audit_outbox", &stmt);
    if (rc != 0)
        return rc;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *count = (uint64_t)sqlite3_column_int64(stmt, 0);
        if (oldest_ms != NULL)
            *oldest_ms = sqlite3_column_int64(stmt, 1);
    } else {
        rc = tl__sqlite_error(store, "audit_outbox_count");
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- audit entries waiting for the audit log (schema 3) ------------------------------------ */

static int pending_row(sqlite3_stmt *stmt, void *out)
{
    tl_audit_pending_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->time = sqlite3_column_int64(stmt, 1);
    if ((rc = tl__sqlite_text(stmt, 2, &row->actor)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->action)) == 0 &&
        (rc = tl__sqlite_text(stmt, 4, &row->subject)) == 0)
        rc = tl__sqlite_text(stmt, 5, &row->details);
    return rc;
}

int tl_store_audit_pending_read(tl_store_t *store, tl_audit_pending_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(
        store, "SELECT id, time, actor, action, subject, details FROM audit_pending ORDER BY id",
        &stmt);
    if (rc != 0)
        return rc;
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, pending_row, &rows, &out->count,
                         "audit_pending_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_audit_pending_rows_free(out);
    return rc;
}

int tl_store_audit_pending_clear(tl_store_t *store, int64_t up_to_id)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "DELETE FROM audit_pending WHERE id <= ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, up_to_id);
    rc = tl__sqlite_step_done(store, stmt, "audit_pending_clear");
    sqlite3_finalize(stmt);
    return rc;
}
