/*
 * Escalations and known problems on SQLite (relay/store/store.h, "escalations and known
 * problems"): the frozen summaries of a ticket's moves between tiers, the problems tickets are
 * linked to, and the evidence of a device that a new diagnostics run would repeat.
 */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest summary kept: far more than a ticket's timeline makes (relay/desk/summary.h). */
#define SUMMARY_MAX (16u * 1024u * 1024u)
#define PROBLEM_TEXT_MAX TL_STORE_MAX_DESCRIPTION

/* ---- escalations ---------------------------------------------------------------------------- */

int tl_store_escalation_add(tl_store_t *store, const tl_escalation_row_t *row, int64_t *id)
{
    if (row->from_tier < 0 || row->from_tier > 4 || row->to_tier < 0 || row->to_tier > 4 ||
        !tl__store_text_ok(row->actor, 128) || row->actor[0] == '\0' ||
        !tl__store_text_ok(row->reason, TL_STORE_MAX_DESCRIPTION) || row->reason[0] == '\0' ||
        !tl__store_text_ok(row->summary, SUMMARY_MAX) || !tl__store_hex64(row->summary_hash))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO escalations (ticket_id, time, actor, from_tier, "
                                "to_tier, reason, summary, summary_hash) VALUES (?,?,?,?,?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, row->ticket_id);
    sqlite3_bind_int64(stmt, 2, row->time);
    sqlite3_bind_text(stmt, 3, row->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, row->from_tier);
    sqlite3_bind_int(stmt, 5, row->to_tier);
    sqlite3_bind_text(stmt, 6, row->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, row->summary, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 8, row->summary_hash, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "escalation_add");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        return TL_ENOTFOUND; /* foreign key: no such ticket */
    if (rc == 0 && id != NULL)
        *id = sqlite3_last_insert_rowid(store->db);
    return rc;
}

int tl_store_escalation_latest(tl_store_t *store, int64_t ticket_id, tl_escalation_row_t *out,
                               int64_t *count)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(
        store,
        "SELECT id, ticket_id, time, actor, from_tier, to_tier, reason, summary, summary_hash, "
        "(SELECT COUNT(*) FROM escalations WHERE ticket_id = ?1) FROM escalations "
        "WHERE ticket_id = ?1 ORDER BY id DESC LIMIT 1",
        &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        out->id = sqlite3_column_int64(stmt, 0);
        out->ticket_id = sqlite3_column_int64(stmt, 1);
        out->time = sqlite3_column_int64(stmt, 2);
        out->from_tier = sqlite3_column_int(stmt, 4);
        out->to_tier = sqlite3_column_int(stmt, 5);
        if (count != NULL)
            *count = sqlite3_column_int64(stmt, 9);
        if ((rc = tl__sqlite_text(stmt, 3, &out->actor)) == 0 &&
            (rc = tl__sqlite_text(stmt, 6, &out->reason)) == 0 &&
            (rc = tl__sqlite_text(stmt, 7, &out->summary)) == 0)
            rc = tl__sqlite_text(stmt, 8, &out->summary_hash);
    } else {
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "escalation_latest");
    }
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_escalation_row_clear(out);
    return rc;
}

void tl_escalation_row_clear(tl_escalation_row_t *row)
{
    free((void *)row->actor);
    free((void *)row->reason);
    free((void *)row->summary);
    free((void *)row->summary_hash);
    memset(row, 0, sizeof *row);
}

/* 0 if the ticket exists, TL_ENOTFOUND if not. */
static int ticket_exists(tl_store_t *store, int64_t ticket_id)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "SELECT 1 FROM tickets WHERE id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    int step = sqlite3_step(stmt);
    rc = step == SQLITE_ROW    ? 0
         : step == SQLITE_DONE ? TL_ENOTFOUND
                               : tl__sqlite_error(store, "ticket_exists");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_unassign(tl_store_t *store, int64_t ticket_id, const char *actor,
                             const char *reason, int64_t now_ms)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "UPDATE tickets SET assignee = NULL, updated = ?1 "
                                "WHERE id = ?2 AND assignee IS NOT NULL",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "ticket_unassign");
    int changed = rc == 0 && sqlite3_changes(store->db) > 0;
    sqlite3_finalize(stmt);
    if (rc != 0)
        return rc;
    if (!changed)
        return ticket_exists(store, ticket_id); /* nobody held it, or there is no such ticket */
    tl_ticket_change_row_t change = {ticket_id, now_ms, "assignee", "", actor ? actor : "relay",
                                     reason};
    return tl_store_ticket_change_add(store, &change);
}

/* ---- known problems ------------------------------------------------------------------------- */

static const char problem_columns[] =
    "SELECT p.id, p.title, p.fingerprint, p.workaround, p.state, p.fix, p.opened_by, p.created, "
    "p.updated, (SELECT COUNT(*) FROM tickets t WHERE t.problem_id = p.id), "
    "(SELECT COUNT(DISTINCT t.device_id) FROM tickets t WHERE t.problem_id = p.id) "
    "FROM problems p ";

static int problem_row(sqlite3_stmt *stmt, void *out)
{
    tl_problem_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->created = sqlite3_column_int64(stmt, 7);
    row->updated = sqlite3_column_int64(stmt, 8);
    row->tickets = sqlite3_column_int64(stmt, 9);
    row->devices = sqlite3_column_int64(stmt, 10);
    if ((rc = tl__sqlite_text(stmt, 1, &row->title)) == 0 &&
        (rc = tl__sqlite_text(stmt, 2, &row->fingerprint)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->workaround)) == 0 &&
        (rc = tl__sqlite_text(stmt, 4, &row->state)) == 0 &&
        (rc = tl__sqlite_text(stmt, 5, &row->fix)) == 0)
        rc = tl__sqlite_text(stmt, 6, &row->opened_by);
    return rc;
}

int tl_store_problem_add(tl_store_t *store, const tl_problem_row_t *row, int64_t now_ms,
                         int64_t *problem_id)
{
    const char *workaround = row->workaround != NULL ? row->workaround : "";
    if (!tl__store_text_ok(row->title, TL_STORE_MAX_TITLE) || row->title[0] == '\0' ||
        (row->fingerprint != NULL && !tl__store_text_ok(row->fingerprint, 128)) ||
        !tl__store_text_ok(workaround, PROBLEM_TEXT_MAX) || !tl__store_text_ok(row->state, 32) ||
        row->state[0] == '\0' || !tl__store_text_ok(row->opened_by, 128))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO problems (title, fingerprint, workaround, state, "
                                "opened_by, created, updated) VALUES (?,?,?,?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, row->title, -1, SQLITE_STATIC);
    if (row->fingerprint != NULL && row->fingerprint[0] != '\0')
        sqlite3_bind_text(stmt, 2, row->fingerprint, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 2);
    sqlite3_bind_text(stmt, 3, workaround, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, row->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, row->opened_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, now_ms);
    sqlite3_bind_int64(stmt, 7, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "problem_add");
    sqlite3_finalize(stmt);
    if (rc == 0)
        *problem_id = sqlite3_last_insert_rowid(store->db);
    return rc;
}

int tl_store_problem_read(tl_store_t *store, int64_t problem_id, tl_problem_row_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, "%s WHERE p.id = ?", problem_columns);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, problem_id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = problem_row(stmt, out);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "problem_read");
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_problem_row_clear(out);
    return rc;
}

int tl_store_problems_read(tl_store_t *store, const char *state, tl_problem_rows_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, "%s WHERE (?1 IS NULL OR p.state = ?1) ORDER BY p.id",
             problem_columns);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    if (state != NULL)
        sqlite3_bind_text(stmt, 1, state, -1, SQLITE_STATIC);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, problem_row, &rows, &out->count,
                         "problems_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_problem_rows_free(out);
    return rc;
}

int tl_store_problem_set(tl_store_t *store, int64_t problem_id, const char *workaround,
                         const char *state, const char *fix, int64_t now_ms)
{
    if ((workaround != NULL && !tl__store_text_ok(workaround, PROBLEM_TEXT_MAX)) ||
        (state != NULL && (!tl__store_text_ok(state, 32) || state[0] == '\0')) ||
        (fix != NULL && (!tl__store_text_ok(fix, PROBLEM_TEXT_MAX) || fix[0] == '\0')))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "UPDATE problems SET workaround = COALESCE(?1, workaround), "
                                "state = COALESCE(?2, state), fix = COALESCE(?3, fix), "
                                "updated = ?4 WHERE id = ?5",
                                &stmt);
    if (rc != 0)
        return rc;
    if (workaround != NULL)
        sqlite3_bind_text(stmt, 1, workaround, -1, SQLITE_STATIC);
    if (state != NULL)
        sqlite3_bind_text(stmt, 2, state, -1, SQLITE_STATIC);
    if (fix != NULL)
        sqlite3_bind_text(stmt, 3, fix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now_ms);
    sqlite3_bind_int64(stmt, 5, problem_id);
    rc = tl__sqlite_step_done(store, stmt, "problem_set");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

static int problem_ticket_row(sqlite3_stmt *stmt, void *out)
{
    tl_problem_ticket_row_t *row = out;
    int rc;
    row->ticket_id = sqlite3_column_int64(stmt, 0);
    row->device_id = sqlite3_column_int64(stmt, 1);
    row->tier = sqlite3_column_int(stmt, 2);
    if ((rc = tl__sqlite_text(stmt, 3, &row->status)) == 0)
        rc = tl__sqlite_text(stmt, 4, &row->title);
    return rc;
}

int tl_store_problem_tickets_read(tl_store_t *store, int64_t problem_id,
                                  tl_problem_ticket_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT id, device_id, tier, status, title FROM tickets "
                                "WHERE problem_id = ? ORDER BY id",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, problem_id);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, problem_ticket_row, &rows, &out->count,
                         "problem_tickets_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_problem_ticket_rows_free(out);
    return rc;
}

/* ---- a device's evidence -------------------------------------------------------------------- */

int tl_store_device_evidence_read(tl_store_t *store, int64_t device_id, const char *kind,
                                  int64_t since_ms, tl_evidence_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT e.ticket_id, e.hash, e.kind, e.name, e.size, e.created "
                                "FROM evidence e JOIN tickets t ON t.id = e.ticket_id "
                                "WHERE t.device_id = ? AND e.kind = ? AND e.created >= ? "
                                "ORDER BY e.created, e.id",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, since_ms);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, tl__sqlite_evidence_row, &rows,
                         &out->count, "device_evidence_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_evidence_rows_free(out);
    return rc;
}

/* ---- freeing what these hand out: rows own their strings ------------------------------------ */

void tl_problem_row_clear(tl_problem_row_t *row)
{
    free((void *)row->title);
    free((void *)row->fingerprint);
    free((void *)row->workaround);
    free((void *)row->state);
    free((void *)row->fix);
    free((void *)row->opened_by);
    memset(row, 0, sizeof *row);
}

void tl_problem_rows_free(tl_problem_rows_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++)
        tl_problem_row_clear(&list->rows[i]);
    free(list->rows);
    list->rows = NULL;
    list->count = 0;
}

void tl_problem_ticket_rows_free(tl_problem_ticket_rows_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++) {
        free((void *)list->rows[i].status);
        free((void *)list->rows[i].title);
    }
    free(list->rows);
    list->rows = NULL;
    list->count = 0;
}
