/* What the desk's report reads from SQLite beyond tickets and problems (relay/store/store.h,
 * "the desk's report"): the escalations of a period. */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int escalation_row(sqlite3_stmt *stmt, void *out)
{
    tl_escalation_row_t *row = out;
    row->id = sqlite3_column_int64(stmt, 0);
    row->ticket_id = sqlite3_column_int64(stmt, 1);
    row->time = sqlite3_column_int64(stmt, 2);
    row->from_tier = sqlite3_column_int(stmt, 4);
    row->to_tier = sqlite3_column_int(stmt, 5);
    return tl__sqlite_text(stmt, 3, &row->actor);
}

int tl_store_escalations_between(tl_store_t *store, int64_t since_ms, int64_t until_ms,
                                 size_t max_rows, tl_escalation_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT id, ticket_id, time, actor, from_tier, to_tier "
                                "FROM escalations WHERE time >= ? AND time < ? "
                                "ORDER BY time, id LIMIT ?",
                                &stmt);
    if (rc != 0)
        return rc;
    /* One more than asked for tells a period with too many from one with just enough. */
    int64_t limit = max_rows >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)max_rows + 1;
    sqlite3_bind_int64(stmt, 1, since_ms);
    sqlite3_bind_int64(stmt, 2, until_ms);
    sqlite3_bind_int64(stmt, 3, limit);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, escalation_row, &rows, &out->count,
                         "escalations_between");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc == 0 && out->count > max_rows)
        rc = TL_EFULL;
    if (rc != 0)
        tl_escalation_rows_free(out);
    return rc;
}

void tl_escalation_rows_free(tl_escalation_rows_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++)
        tl_escalation_row_clear(&list->rows[i]);
    free(list->rows);
    memset(list, 0, sizeof *list);
}
