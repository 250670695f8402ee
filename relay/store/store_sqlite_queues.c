/* The desk's queues on SQLite: notices for technicians (relay/store/store.h, "the desk's
 * queues"). */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

int tl_store_notice_add(tl_store_t *store, const char *user, int64_t ticket_id, int64_t time_ms,
                        const char *text)
{
    if (!tl_store_user_name_valid(user) || !tl__store_text_ok(text, TL_STORE_MAX_NOTICE) ||
        text[0] == '\0')
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(
        store, "INSERT INTO notices (user, ticket_id, time, text) VALUES (?,?,?,?)", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, ticket_id);
    sqlite3_bind_int64(stmt, 3, time_ms);
    sqlite3_bind_text(stmt, 4, text, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "notice_add");
    sqlite3_finalize(stmt);
    return rc == TL_EEXIST ? TL_ENOTFOUND : rc; /* foreign key: no such ticket */
}

static int notice_row(sqlite3_stmt *stmt, void *out)
{
    tl_notice_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->ticket_id = sqlite3_column_int64(stmt, 2);
    row->time = sqlite3_column_int64(stmt, 3);
    row->seen = sqlite3_column_int(stmt, 5);
    if ((rc = tl__sqlite_text(stmt, 1, &row->user)) == 0)
        rc = tl__sqlite_text(stmt, 4, &row->text);
    return rc;
}

int tl_store_notices_unseen(tl_store_t *store, const char *user, size_t max_rows,
                            tl_notice_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    if (user == NULL)
        return TL_EINVAL;
    int rc = tl__sqlite_prepare(store,
                                "SELECT id, user, ticket_id, time, text, seen FROM notices "
                                "WHERE user = ? AND seen = 0 ORDER BY id LIMIT ?",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, notice_row, &rows, &out->count,
                         "notices_unseen");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_notice_rows_free(out);
    return rc;
}

int tl_store_notices_seen(tl_store_t *store, const char *user, int64_t up_to_id)
{
    if (user == NULL)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(
        store, "UPDATE notices SET seen = 1 WHERE user = ? AND id <= ? AND seen = 0", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, up_to_id);
    rc = tl__sqlite_step_done(store, stmt, "notices_seen");
    sqlite3_finalize(stmt);
    return rc;
}

void tl_notice_rows_free(tl_notice_rows_t *list)
{
    for (size_t i = 0; list != NULL && i < list->count; i++) {
        free((void *)list->rows[i].user);
        free((void *)list->rows[i].text);
    }
    if (list != NULL) {
        free(list->rows);
        memset(list, 0, sizeof *list);
    }
}
