/*
 * The store on SQLite (relay/store/store.h): one file, WAL, FULL sync. This file holds the
 * connection, its schema migrations and units of work, enrollment, devices, technicians and
 * uploads; tickets are in store_sqlite_tickets.c, the audit chain's rows in
 * store_sqlite_audit.c, the tables in store_sqlite_schema.c. Nothing outside relay/store/ knows
 * it is SQL.
 */
#include "relay/store/store_sqlite.h"
#include "proto/array.h"
#include "proto/err.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tl__sqlite_error(tl_store_t *store, const char *what)
{
    tl_log_error("store failure op=%s reason=\"%s\"", what, sqlite3_errmsg(store->db));
    return TL_ESTORE;
}

int tl__sqlite_exec(tl_store_t *store, const char *sql)
{
    char *message = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        tl_log_error("store failure op=exec reason=\"%s\"", message ? message : "?");
        sqlite3_free(message);
        return TL_ESTORE;
    }
    return 0;
}

int tl__sqlite_prepare(tl_store_t *store, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return tl__sqlite_error(store, "prepare");
    return 0;
}

int tl__sqlite_step_done(tl_store_t *store, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return TL_EEXIST;
    return tl__sqlite_error(store, what);
}

int tl__sqlite_text(sqlite3_stmt *stmt, int column, const char **out)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    *out = NULL;
    if (text == NULL)
        return sqlite3_column_type(stmt, column) == SQLITE_NULL ? 0 : TL_ENOMEM;
    size_t len = (size_t)sqlite3_column_bytes(stmt, column);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return TL_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    *out = copy;
    return 0;
}

int tl__sqlite_rows(tl_store_t *store, sqlite3_stmt *stmt, size_t row_size, tl__sqlite_row_fn fill,
                    void **rows, size_t *count, const char *what)
{
    size_t capacity = 0;
    int step, rc = 0;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if ((rc = tl_array_grow(rows, &capacity, *count + 1, row_size, 16, SIZE_MAX)) != 0)
            return rc;
        void *row = (char *)*rows + *count * row_size;
        memset(row, 0, row_size);
        (*count)++;
        if ((rc = fill(stmt, row)) != 0)
            return rc;
    }
    return step == SQLITE_DONE ? 0 : tl__sqlite_error(store, what);
}

static int user_version(tl_store_t *store, int *version)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "PRAGMA user_version", &stmt);
    if (rc != 0)
        return rc;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        *version = sqlite3_column_int(stmt, 0);
    else
        rc = tl__sqlite_error(store, "user_version");
    sqlite3_finalize(stmt);
    return rc;
}

static int migrate(tl_store_t *store)
{
    int version = 0;
    int rc = user_version(store, &version);
    if (rc != 0)
        return rc;
    if (version > tl__sqlite_migration_count)
        return TL_ESCHEMA;
    if (version == tl__sqlite_migration_count)
        return 0;
    if ((rc = tl__sqlite_exec(store, "BEGIN IMMEDIATE")) != 0)
        return rc;
    for (int i = version; i < tl__sqlite_migration_count; i++) {
        if ((rc = tl__sqlite_exec(store, tl__sqlite_migrations[i])) != 0)
            goto out;
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", tl__sqlite_migration_count);
    if ((rc = tl__sqlite_exec(store, pragma)) != 0)
        goto out;
    rc = tl__sqlite_exec(store, "COMMIT");
    if (rc == 0 && version > 0)
        tl_log_info("store migrated from=%d to=%d", version, tl__sqlite_migration_count);
out:
    if (rc != 0)
        tl__sqlite_exec(store, "ROLLBACK");
    return rc;
}

int tl_store_open(const char *path, enum tl_store_mode mode, tl_store_t **out)
{
    *out = NULL;
    int exists = access(path, F_OK) == 0;
    if (mode == TL_STORE_CREATE_NEW && exists)
        return TL_EEXIST;
    if (mode == TL_STORE_OPEN_EXISTING && !exists)
        return -ENOENT;
    if (mode == TL_STORE_CREATE_NEW) {
        /* Create the file ourselves so it is 0600 from its first byte. */
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        close(fd);
    }

    tl_store_t *store = calloc(1, sizeof *store);
    if (store == NULL)
        return TL_ENOMEM;
    int rc = 0;
    if (sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = tl__sqlite_error(store, "open");
        goto out;
    }
    sqlite3_busy_timeout(store->db, 5000);
    sqlite3_extended_result_codes(store->db, 1);
    /* WAL with FULL sync: a commit that returned is on disk (DESIGN.md §8). */
    if ((rc = tl__sqlite_exec(store, "PRAGMA journal_mode = WAL")) != 0 ||
        (rc = tl__sqlite_exec(store, "PRAGMA synchronous = FULL")) != 0 ||
        (rc = tl__sqlite_exec(store, "PRAGMA foreign_keys = ON")) != 0)
        goto out;
    rc = migrate(store);
out:
    if (rc != 0) {
        tl_store_close(store);
        return rc;
    }
    *out = store;
    return 0;
}

void tl_store_close(tl_store_t *store)
{
    if (store == NULL)
        return;
    sqlite3_close(store->db);
    free(store);
}

int tl_store_schema_version(tl_store_t *store)
{
    int version = -1;
    user_version(store, &version);
    return version;
}

/* ---- units of work: a transaction, and a savepoint for each step --------------------------- */

static int unit_begin(tl_store_t *store)
{
    int rc = tl__sqlite_exec(store, "BEGIN IMMEDIATE");
    if (rc == 0)
        store->depth = 1;
    return rc;
}

static int unit_commit(tl_store_t *store)
{
    int rc = tl__sqlite_exec(store, "COMMIT");
    if (rc == 0)
        store->depth = 0;
    return rc;
}

static void unit_abort(tl_store_t *store)
{
    if (!sqlite3_get_autocommit(store->db))
        tl__sqlite_exec(store, "ROLLBACK");
    store->depth = 0;
}

int tl_store_unit_step(tl_store_t *store, tl_store_work_fn work, void *arg)
{
    if (store->depth == 0 || tl__sqlite_exec(store, "SAVEPOINT step") != 0)
        return TL_ESTORE;
    store->depth++;
    int rc = work(store, arg);
    store->depth--;
    if (rc == 0 && (rc = tl__sqlite_exec(store, "RELEASE step")) == 0)
        return 0;
    /* Undone alone: the unit and the steps before it go on. */
    tl__sqlite_exec(store, "ROLLBACK TO step");
    tl__sqlite_exec(store, "RELEASE step");
    return rc;
}

int tl_store_unit_run(tl_store_t *store, tl_store_work_fn body, void *arg)
{
    if (store->depth > 0)
        return tl_store_unit_step(store, body, arg);
    int rc = unit_begin(store);
    if (rc != 0)
        return rc;
    rc = body(store, arg);
    if (rc == 0)
        rc = unit_commit(store);
    if (rc != 0)
        unit_abort(store);
    return rc;
}

/* ---- enrollment codes ----------------------------------------------------- */

int tl_store_code_add(tl_store_t *store, const char *code_hash, int64_t now_ms, int64_t expires_ms,
                      const char *note, int64_t *code_id)
{
    if (!tl__store_hex64(code_hash) || expires_ms <= now_ms ||
        !tl__store_text_ok(note ? note : "", TL_STORE_MAX_NOTE))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(
        store, "INSERT INTO enroll_codes (code_hash, created, expires, note) VALUES (?,?,?,?)",
        &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, code_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now_ms);
    sqlite3_bind_int64(stmt, 3, expires_ms);
    sqlite3_bind_text(stmt, 4, note ? note : "", -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "code_add");
    if (rc == 0 && code_id != NULL)
        *code_id = sqlite3_last_insert_rowid(store->db);
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_enroll(tl_store_t *store, const char *code_hash, int64_t now_ms,
                    const tl_device_info_t *device, int64_t *device_id)
{
    if (!tl__store_hex64(code_hash) || !tl__store_text_ok(device->fingerprint, 64) ||
        !tl__store_text_ok(device->hostname, 255) || !tl__store_text_ok(device->os, 255))
        return TL_EINVAL;
    sqlite3_stmt *stmt = NULL;
    int own_txn = sqlite3_get_autocommit(store->db);
    int rc = own_txn ? unit_begin(store) : 0;
    if (rc != 0)
        return rc;

    if ((rc = tl__sqlite_prepare(
             store, "SELECT id, expires, used FROM enroll_codes WHERE code_hash = ?", &stmt)) != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, code_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "enroll");
        goto out;
    }
    int64_t code_id = sqlite3_column_int64(stmt, 0);
    int64_t expires = sqlite3_column_int64(stmt, 1);
    int used = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
    sqlite3_finalize(stmt);
    stmt = NULL;
    if (used) {
        /* The same key using the same code again is a retry whose answer was lost. */
        rc = TL_EUSED;
        sqlite3_stmt *again = NULL;
        if (tl__sqlite_prepare(
                store, "SELECT id FROM devices WHERE fingerprint = ? AND enroll_code_id = ?",
                &again) == 0) {
            sqlite3_bind_text(again, 1, device->fingerprint, -1, SQLITE_STATIC);
            sqlite3_bind_int64(again, 2, code_id);
            if (sqlite3_step(again) == SQLITE_ROW) {
                *device_id = sqlite3_column_int64(again, 0);
                rc = 0;
            }
            sqlite3_finalize(again);
        }
        goto out;
    }
    if (now_ms >= expires) {
        rc = TL_EEXPIRED;
        goto out;
    }

    if ((rc = tl__sqlite_prepare(
             store,
             "INSERT INTO devices (fingerprint, hostname, os, first_seen, last_seen, "
             "enroll_code_id) VALUES (?,?,?,?,?,?)",
             &stmt)) != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, device->fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, device->hostname, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, device->os, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now_ms);
    sqlite3_bind_int64(stmt, 5, now_ms);
    sqlite3_bind_int64(stmt, 6, code_id);
    if ((rc = tl__sqlite_step_done(store, stmt, "enroll_device")) != 0)
        goto out;
    *device_id = sqlite3_last_insert_rowid(store->db);
    sqlite3_finalize(stmt);

    if ((rc = tl__sqlite_prepare(store, "UPDATE enroll_codes SET used = ? WHERE id = ?", &stmt)) !=
        0)
        goto out;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, code_id);
    rc = tl__sqlite_step_done(store, stmt, "enroll_code_used");
out:
    sqlite3_finalize(stmt);
    if (own_txn) {
        if (rc == 0)
            rc = unit_commit(store);
        if (rc != 0)
            unit_abort(store);
    }
    return rc;
}

/* ---- devices ------------------------------------------------------------------- */

int tl_store_device_find(tl_store_t *store, const char *fingerprint, int64_t *device_id)
{
    if (!tl__store_text_ok(fingerprint, 64))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "SELECT id FROM devices WHERE fingerprint = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, fingerprint, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *device_id = sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "device_find");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_device_seen(tl_store_t *store, int64_t device_id, int64_t now_ms, int online)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "UPDATE devices SET last_seen = ?, online = ? WHERE id = ?",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int(stmt, 2, online ? 1 : 0);
    sqlite3_bind_int64(stmt, 3, device_id);
    rc = tl__sqlite_step_done(store, stmt, "device_seen");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_devices_all_offline(tl_store_t *store)
{
    return tl__sqlite_exec(store, "UPDATE devices SET online = 0 WHERE online != 0");
}

static int device_row(sqlite3_stmt *stmt, void *out)
{
    tl_device_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->first_seen = sqlite3_column_int64(stmt, 4);
    row->last_seen = sqlite3_column_int64(stmt, 5);
    row->online = sqlite3_column_int64(stmt, 6) != 0;
    if ((rc = tl__sqlite_text(stmt, 1, &row->fingerprint)) == 0 &&
        (rc = tl__sqlite_text(stmt, 2, &row->hostname)) == 0)
        rc = tl__sqlite_text(stmt, 3, &row->os);
    return rc;
}

int tl_store_devices_read(tl_store_t *store, tl_device_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc =
        tl__sqlite_prepare(store,
                           "SELECT id, fingerprint, hostname, os, first_seen, last_seen, online "
                           "FROM devices ORDER BY id",
                           &stmt);
    if (rc != 0)
        return rc;
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, device_row, &rows, &out->count,
                         "devices_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_device_rows_free(out);
    return rc;
}

/* ---- technicians and auditors ------------------------------------------------------------- */

int tl_store_user_add(tl_store_t *store, const char *name, const char *role, const char *public_key,
                      const char *fingerprint, int64_t now_ms)
{
    if (!tl_store_user_name_valid(name) || !tl__store_text_ok(role, 15) ||
        !tl__store_text_ok(public_key, 4096) || !tl__store_text_ok(fingerprint, 64))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO users (name, role, public_key, fingerprint, created) "
                                "VALUES (?,?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, public_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, fingerprint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "user_add");
    sqlite3_finalize(stmt);
    return rc;
}

static int user_change(tl_store_t *store, const char *sql, const char *name)
{
    if (!tl_store_user_name_valid(name))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "user_change");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_user_disable(tl_store_t *store, const char *name)
{
    return user_change(store, "UPDATE users SET disabled = 1 WHERE name = ?", name);
}

int tl_store_user_remove(tl_store_t *store, const char *name)
{
    return user_change(store, "DELETE FROM users WHERE name = ?", name);
}

int tl_store_user_set_lead(tl_store_t *store, const char *name, int lead)
{
    return user_change(store,
                       lead ? "UPDATE users SET lead = 1 WHERE name = ?"
                            : "UPDATE users SET lead = 0 WHERE name = ?",
                       name);
}

int tl_store_user_set_expires(tl_store_t *store, const char *name, int64_t expires_ms)
{
    if (!tl_store_user_name_valid(name) || expires_ms < 0)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "UPDATE users SET expires = ?1 WHERE name = ?2", &stmt);
    if (rc != 0)
        return rc;
    if (expires_ms > 0)
        sqlite3_bind_int64(stmt, 1, expires_ms);
    sqlite3_bind_text(stmt, 2, name, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "user_expires");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

static int user_row(sqlite3_stmt *stmt, void *out)
{
    tl_user_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->disabled = sqlite3_column_int64(stmt, 5) != 0;
    row->created = sqlite3_column_int64(stmt, 6);
    row->lead = sqlite3_column_int64(stmt, 7) != 0;
    row->expires = sqlite3_column_int64(stmt, 8);
    if ((rc = tl__sqlite_text(stmt, 1, &row->name)) == 0 &&
        (rc = tl__sqlite_text(stmt, 2, &row->role)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->public_key)) == 0)
        rc = tl__sqlite_text(stmt, 4, &row->fingerprint);
    return rc;
}

int tl_store_users_read(tl_store_t *store, tl_user_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc =
        tl__sqlite_prepare(store,
                           "SELECT id, name, role, public_key, fingerprint, disabled, created, "
                           "lead, expires FROM users ORDER BY name",
                           &stmt);
    if (rc != 0)
        return rc;
    void *rows = NULL;
    rc =
        tl__sqlite_rows(store, stmt, sizeof *out->rows, user_row, &rows, &out->count, "users_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_user_rows_free(out);
    return rc;
}

int64_t tl_store_change_counter(tl_store_t *store)
{
    sqlite3_stmt *stmt;
    int64_t version = -1;
    if (tl__sqlite_prepare(store, "PRAGMA data_version", &stmt) != 0)
        return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return version;
}

/* ---- uploads: which device sent which evidence -------------------------------------- */

int tl_store_upload_record(tl_store_t *store, int64_t device_id, const char *hash, uint64_t size,
                           int64_t now_ms)
{
    if (!tl__store_hex64(hash) || size > INT64_MAX)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT OR IGNORE INTO uploads (device_id, hash, size, created) "
                                "VALUES (?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (int64_t)size);
    sqlite3_bind_int64(stmt, 4, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "upload_record");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_upload_find(tl_store_t *store, int64_t device_id, const char *hash, uint64_t *size)
{
    if (!tl__store_hex64(hash))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "SELECT size FROM uploads WHERE device_id = ? AND hash = ?",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *size = (uint64_t)sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "upload_find");
    sqlite3_finalize(stmt);
    return rc;
}

int tl__sqlite_id_by_request(tl_store_t *store, const char *sql, int64_t device_id,
                             const char *request_id, int64_t *id, const char *what)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, request_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *id = sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, what);
    sqlite3_finalize(stmt);
    return rc;
}
