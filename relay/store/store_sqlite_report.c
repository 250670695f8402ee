/* What the desk's report reads from SQLite beyond tickets and problems (relay/store/store.h,
 * "the desk's report"): the escalations and the self-help outcomes of a period. */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The rows sql selects for [since_ms, until_ms), at most max_rows (its LIMIT is the third
 * parameter): TL_EFULL beyond, the rows so far left for the caller's free either way. */
static int rows_between(tl_store_t *store, const char *sql, const char *what, int64_t since_ms,
                        int64_t until_ms, size_t max_rows, size_t row_size, tl__sqlite_row_fn fill,
                        void **rows, size_t *count)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    /* One more than asked for tells a period with too many from one with just enough. */
    int64_t limit = max_rows >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)max_rows + 1;
    sqlite3_bind_int64(stmt, 1, since_ms);
    sqlite3_bind_int64(stmt, 2, until_ms);
    sqlite3_bind_int64(stmt, 3, limit);
    rc = tl__sqlite_rows(store, stmt, row_size, fill, rows, count, what);
    sqlite3_finalize(stmt);
    return rc == 0 && *count > max_rows ? TL_EFULL : rc;
}

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
    void *rows = NULL;
    memset(out, 0, sizeof *out);
    int rc = rows_between(store,
                          "SELECT id, ticket_id, time, actor, from_tier, to_tier FROM escalations "
                          "WHERE time >= ? AND time < ? ORDER BY time, id LIMIT ?",
                          "escalations_between", since_ms, until_ms, max_rows, sizeof *out->rows,
                          escalation_row, &rows, &out->count);
    out->rows = rows;
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

static int outcome_row(sqlite3_stmt *stmt, void *out)
{
    tl_kb_outcome_row_t *row = out;
    row->id = sqlite3_column_int64(stmt, 0);
    row->device_id = sqlite3_column_int64(stmt, 2);
    row->time = sqlite3_column_int64(stmt, 3);
    row->ticket_id = sqlite3_column_int64(stmt, 7);
    const char *stage = (const char *)sqlite3_column_text(stmt, 4);
    int known = 0;
    for (int s = TL_KB_SUGGESTED; s <= TL_KB_RECHECK_FAILED && !known; s++)
        if (stage != NULL && strcmp(stage, tl_kb_stage_name((tl_kb_stage_t)s)) == 0) {
            row->stage = (tl_kb_stage_t)s;
            known = 1;
        }
    if (!known)
        return TL_ESTORE;
    int rc = tl__sqlite_text(stmt, 1, &row->article_id);
    if (rc == 0 && sqlite3_column_type(stmt, 5) != SQLITE_NULL)
        rc = tl__sqlite_text(stmt, 5, &row->runbook);
    if (rc == 0 && sqlite3_column_type(stmt, 6) != SQLITE_NULL)
        rc = tl__sqlite_text(stmt, 6, &row->fingerprint);
    return rc;
}

int tl_store_kb_outcomes_between(tl_store_t *store, int64_t since_ms, int64_t until_ms,
                                 size_t max_rows, tl_kb_outcome_rows_t *out)
{
    void *rows = NULL;
    memset(out, 0, sizeof *out);
    int rc = rows_between(store,
                          "SELECT id, article_id, IFNULL(device_id, 0), time, stage, runbook, "
                          "fingerprint, IFNULL(ticket_id, 0) FROM kb_outcomes "
                          "WHERE time >= ? AND time < ? ORDER BY time, id LIMIT ?",
                          "kb_outcomes_between", since_ms, until_ms, max_rows, sizeof *out->rows,
                          outcome_row, &rows, &out->count);
    out->rows = rows;
    if (rc != 0)
        tl_kb_outcome_rows_free(out);
    return rc;
}

void tl_kb_outcome_rows_free(tl_kb_outcome_rows_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++) {
        free((void *)list->rows[i].article_id);
        free((void *)list->rows[i].runbook);
        free((void *)list->rows[i].fingerprint);
    }
    free(list->rows);
    memset(list, 0, sizeof *list);
}
