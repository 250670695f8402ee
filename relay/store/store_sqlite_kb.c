/*
 * The knowledge base on SQLite (relay/store/store.h, "the knowledge base"): articles with their
 * source text, and the self-help outcomes that are counted on them.
 */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARTICLE_ID_MAX 48
#define KB_NAME_MAX 128 /* a category, a runbook, an actor, a fingerprint */

/* 1..48 of a-z, 0-9 and '-', not starting with '-' (docs/kb.md "Articles"). */
static int article_id_ok(const char *id)
{
    size_t len = id != NULL ? strnlen(id, ARTICLE_ID_MAX + 1) : 0;
    if (len == 0 || len > ARTICLE_ID_MAX || id[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return 0;
    return 1;
}

static int state_ok(const char *state)
{
    return state != NULL &&
           (strcmp(state, TL_KB_DRAFT) == 0 || strcmp(state, TL_KB_PUBLISHED) == 0);
}

static int optional_text_ok(const char *text, size_t max)
{
    return text == NULL || tl__store_text_ok(text, max);
}

static void bind_optional_text(sqlite3_stmt *stmt, int column, const char *text)
{
    if (text != NULL && text[0] != '\0')
        sqlite3_bind_text(stmt, column, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, column);
}

static void bind_optional_id(sqlite3_stmt *stmt, int column, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(stmt, column, id);
    else
        sqlite3_bind_null(stmt, column);
}

/* 1 if an article of that id is stored, 0 if not, negative on failure. */
static int article_exists(tl_store_t *store, const char *id)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "SELECT 1 FROM kb_articles WHERE id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : tl__sqlite_error(store, "kb_exists");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_kb_article_add(tl_store_t *store, const tl_kb_article_row_t *row, int replace,
                            int64_t now_ms, int *replaced)
{
    const char *state = row->state != NULL ? row->state : TL_KB_PUBLISHED;
    if (replaced != NULL)
        *replaced = 0;
    if (!article_id_ok(row->id) || !tl__store_text_ok(row->title, TL_STORE_MAX_TITLE * 4) ||
        row->title[0] == '\0' || !tl__store_text_ok(row->category, KB_NAME_MAX) ||
        row->category[0] == '\0' || !optional_text_ok(row->runbook, KB_NAME_MAX) ||
        !tl__store_text_ok(row->source, TL_STORE_MAX_ARTICLE) || !tl__store_hex64(row->sha256) ||
        !state_ok(state) || !tl__store_text_ok(row->added_by, KB_NAME_MAX) ||
        row->added_by[0] == '\0' || row->ticket_id < 0 ||
        !optional_text_ok(row->needs_editing, TL_STORE_MAX_ARTICLE))
        return TL_EINVAL;
    int exists = article_exists(store, row->id);
    if (exists < 0)
        return exists;
    if (exists && !replace)
        return TL_EEXIST;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(
        store,
        exists ? "UPDATE kb_articles SET title = ?2, category = ?3, runbook = ?4, source = ?5, "
                 "sha256 = ?6, state = ?7, revision = revision + 1, updated = ?9, ticket_id = ?10, "
                 "needs_editing = ?11, "
                 "published_by = CASE WHEN ?7 = 'published' THEN ?8 END, "
                 "published = CASE WHEN ?7 = 'published' THEN ?9 END WHERE id = ?1"
               : "INSERT INTO kb_articles (id, title, category, runbook, source, sha256, state, "
                 "added_by, added, updated, ticket_id, needs_editing, published_by, published) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, "
                 "CASE WHEN ?7 = 'published' THEN ?8 END, CASE WHEN ?7 = 'published' THEN ?9 END)",
        &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, row->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, row->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, row->category, -1, SQLITE_STATIC);
    bind_optional_text(stmt, 4, row->runbook);
    sqlite3_bind_text(stmt, 5, row->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, row->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 7, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 8, row->added_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 9, now_ms);
    bind_optional_id(stmt, 10, row->ticket_id);
    bind_optional_text(stmt, 11, row->needs_editing);
    rc = tl__sqlite_step_done(store, stmt, exists ? "kb_article_replace" : "kb_article_add");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        rc = TL_ENOTFOUND; /* a foreign key: no such ticket */
    if (rc == 0 && replaced != NULL)
        *replaced = exists;
    return rc;
}

static const char article_columns[] =
    "SELECT id, title, category, runbook, %s, sha256, state, revision, added_by, added, "
    "updated, ticket_id, published_by, published, suggested, applied, recheck_passed, "
    "needs_editing "
    "FROM kb_articles ";

static int article_row(sqlite3_stmt *stmt, void *out)
{
    tl_kb_article_row_t *row = out;
    int rc;
    row->revision = sqlite3_column_int64(stmt, 7);
    row->added = sqlite3_column_int64(stmt, 9);
    row->updated = sqlite3_column_int64(stmt, 10);
    row->ticket_id = sqlite3_column_int64(stmt, 11);
    row->published = sqlite3_column_int64(stmt, 13);
    row->suggested = sqlite3_column_int64(stmt, 14);
    row->applied = sqlite3_column_int64(stmt, 15);
    row->recheck_passed = sqlite3_column_int64(stmt, 16);
    if ((rc = tl__sqlite_text(stmt, 0, &row->id)) == 0 &&
        (rc = tl__sqlite_text(stmt, 1, &row->title)) == 0 &&
        (rc = tl__sqlite_text(stmt, 2, &row->category)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->runbook)) == 0 &&
        (rc = tl__sqlite_text(stmt, 4, &row->source)) == 0 &&
        (rc = tl__sqlite_text(stmt, 5, &row->sha256)) == 0 &&
        (rc = tl__sqlite_text(stmt, 6, &row->state)) == 0 &&
        (rc = tl__sqlite_text(stmt, 8, &row->added_by)) == 0 &&
        (rc = tl__sqlite_text(stmt, 12, &row->published_by)) == 0)
        rc = tl__sqlite_text(stmt, 17, &row->needs_editing);
    return rc;
}

int tl_store_kb_article_read(tl_store_t *store, const char *id, tl_kb_article_row_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    if (!article_id_ok(id))
        return TL_ENOTFOUND;
    snprintf(sql, sizeof sql, article_columns, "source");
    strncat(sql, "WHERE id = ?", sizeof sql - strlen(sql) - 1);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = article_row(stmt, out);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "kb_article_read");
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_kb_article_row_clear(out);
    return rc;
}

int tl_store_kb_articles_read(tl_store_t *store, const char *category, const char *state,
                              tl_kb_article_rows_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, article_columns, "NULL");
    strncat(sql, "WHERE (?1 IS NULL OR category = ?1) AND (?2 IS NULL OR state = ?2) ORDER BY id",
            sizeof sql - strlen(sql) - 1);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    if (category != NULL)
        sqlite3_bind_text(stmt, 1, category, -1, SQLITE_STATIC);
    if (state != NULL)
        sqlite3_bind_text(stmt, 2, state, -1, SQLITE_STATIC);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, article_row, &rows, &out->count,
                         "kb_articles_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_kb_article_rows_free(out);
    return rc;
}

int tl_store_kb_article_remove(tl_store_t *store, const char *id)
{
    if (!article_id_ok(id))
        return TL_ENOTFOUND;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "DELETE FROM kb_articles WHERE id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "kb_article_remove");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_kb_article_publish(tl_store_t *store, const char *id,
                                const tl_kb_article_row_t *edited, const char *by, int64_t now_ms)
{
    tl_kb_article_row_t row;
    sqlite3_stmt *stmt = NULL;
    if (!tl__store_text_ok(by, KB_NAME_MAX) || by[0] == '\0')
        return TL_EINVAL;
    if (edited != NULL &&
        (!tl__store_text_ok(edited->title, TL_STORE_MAX_TITLE * 4) || edited->title[0] == '\0' ||
         !tl__store_text_ok(edited->category, KB_NAME_MAX) || edited->category[0] == '\0' ||
         !optional_text_ok(edited->runbook, KB_NAME_MAX) ||
         !tl__store_text_ok(edited->source, TL_STORE_MAX_ARTICLE) ||
         !tl__store_hex64(edited->sha256)))
        return TL_EINVAL;
    int rc = tl_store_kb_article_read(store, id, &row);
    if (rc != 0)
        return rc;
    int published = strcmp(row.state, TL_KB_PUBLISHED) == 0;
    tl_kb_article_row_clear(&row);
    if (published)
        return TL_ESTATE;
    rc = tl__sqlite_prepare(
        store,
        edited != NULL
            ? "UPDATE kb_articles SET state = 'published', published_by = ?2, published = ?3, "
              "updated = ?3, needs_editing = NULL, title = ?4, category = ?5, runbook = ?6, "
              "source = ?7, sha256 = ?8, revision = revision + 1 WHERE id = ?1"
            : "UPDATE kb_articles SET state = 'published', published_by = ?2, published = ?3, "
              "needs_editing = NULL WHERE id = ?1",
        &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now_ms);
    if (edited != NULL) {
        sqlite3_bind_text(stmt, 4, edited->title, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, edited->category, -1, SQLITE_STATIC);
        bind_optional_text(stmt, 6, edited->runbook);
        sqlite3_bind_text(stmt, 7, edited->source, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 8, edited->sha256, -1, SQLITE_STATIC);
    }
    rc = tl__sqlite_step_done(store, stmt, "kb_article_publish");
    sqlite3_finalize(stmt);
    return rc;
}

static int rate_row(sqlite3_stmt *stmt, void *out)
{
    tl_kb_runbook_rate_t *row = out;
    row->applied = sqlite3_column_int64(stmt, 1);
    row->recheck_passed = sqlite3_column_int64(stmt, 2);
    return tl__sqlite_text(stmt, 0, &row->runbook);
}

int tl_store_kb_runbook_rates(tl_store_t *store, tl_kb_runbook_rates_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc =
        tl__sqlite_prepare(store,
                           "SELECT runbook, SUM(stage = 'applied'), SUM(stage = "
                           "'recheck-passed') FROM kb_outcomes WHERE runbook IS NOT NULL "
                           "GROUP BY runbook HAVING SUM(stage = 'applied') > 0 ORDER BY runbook",
                           &stmt);
    if (rc != 0)
        return rc;
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, rate_row, &rows, &out->count,
                         "kb_runbook_rates");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_kb_runbook_rates_free(out);
    return rc;
}

void tl_kb_runbook_rates_free(tl_kb_runbook_rates_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++)
        free((void *)list->rows[i].runbook);
    free(list->rows);
    list->rows = NULL;
    list->count = 0;
}

/* ---- runbook proposals ---------------------------------------------------------------------- */

/* A runbook's name as the catalogue allows it (docs/catalogue.md): 1..100 of A-Z a-z 0-9 . _ -,
 * starting with a letter or a digit, no "..". */
static int runbook_name_ok(const char *name)
{
    size_t len = name != NULL ? strnlen(name, 101) : 0;
    if (len == 0 || len > 100 || strstr(name, "..") != NULL)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

int tl_store_runbook_proposal_add(tl_store_t *store, const tl_runbook_proposal_row_t *row,
                                  int64_t now_ms, int64_t *id)
{
    sqlite3_stmt *stmt;
    if (!runbook_name_ok(row->name) || row->metadata == NULL || row->script == NULL ||
        strlen(row->metadata) > TL_STORE_MAX_PROPOSAL ||
        strlen(row->script) > TL_STORE_MAX_PROPOSAL || !tl__store_hex64(row->sha256) ||
        !tl__store_text_ok(row->proposed_by, KB_NAME_MAX) || row->proposed_by[0] == '\0' ||
        row->ticket_id < 0)
        return TL_EINVAL;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO runbook_proposals (name, metadata, script, sha256, "
                                "state, proposed_by, proposed, ticket_id) "
                                "VALUES (?, ?, ?, ?, 'proposed', ?, ?, ?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, row->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, row->metadata, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, row->script, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, row->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, row->proposed_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, now_ms);
    bind_optional_id(stmt, 7, row->ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "runbook_proposal_add");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        return TL_ENOTFOUND; /* a foreign key: no such ticket */
    if (rc == 0 && id != NULL)
        *id = sqlite3_last_insert_rowid(store->db);
    return rc;
}

static const char proposal_columns[] =
    "SELECT id, name, %s, %s, sha256, state, proposed_by, proposed, ticket_id, decided_by, "
    "decided, reason FROM runbook_proposals ";

static int proposal_row(sqlite3_stmt *stmt, void *out)
{
    tl_runbook_proposal_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->proposed = sqlite3_column_int64(stmt, 7);
    row->ticket_id = sqlite3_column_int64(stmt, 8);
    row->decided = sqlite3_column_int64(stmt, 10);
    if ((rc = tl__sqlite_text(stmt, 1, &row->name)) == 0 &&
        (rc = tl__sqlite_text(stmt, 2, &row->metadata)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->script)) == 0 &&
        (rc = tl__sqlite_text(stmt, 4, &row->sha256)) == 0 &&
        (rc = tl__sqlite_text(stmt, 5, &row->state)) == 0 &&
        (rc = tl__sqlite_text(stmt, 6, &row->proposed_by)) == 0 &&
        (rc = tl__sqlite_text(stmt, 9, &row->decided_by)) == 0)
        rc = tl__sqlite_text(stmt, 11, &row->reason);
    return rc;
}

int tl_store_runbook_proposal_read(tl_store_t *store, int64_t id, tl_runbook_proposal_row_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, proposal_columns, "metadata", "script");
    strncat(sql, "WHERE id = ?", sizeof sql - strlen(sql) - 1);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = proposal_row(stmt, out);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "runbook_proposal_read");
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_runbook_proposal_row_clear(out);
    return rc;
}

int tl_store_runbook_proposals_read(tl_store_t *store, const char *state,
                                    tl_runbook_proposal_rows_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, proposal_columns, "NULL", "NULL");
    strncat(sql, "WHERE (?1 IS NULL OR state = ?1) ORDER BY id", sizeof sql - strlen(sql) - 1);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    if (state != NULL)
        sqlite3_bind_text(stmt, 1, state, -1, SQLITE_STATIC);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, proposal_row, &rows, &out->count,
                         "runbook_proposals_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_runbook_proposal_rows_free(out);
    return rc;
}

int tl_store_runbook_proposal_name_taken(tl_store_t *store, const char *name, int64_t except_id)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "SELECT 1 FROM runbook_proposals WHERE name = ? AND id <> ? AND "
                                "state IN ('proposed', 'accepted')",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, except_id);
    int step = sqlite3_step(stmt);
    rc = step == SQLITE_ROW    ? 1
         : step == SQLITE_DONE ? 0
                               : tl__sqlite_error(store, "runbook_proposal_name_taken");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_runbook_proposal_decide(tl_store_t *store, int64_t id, const char *state,
                                     const char *by, const char *reason, int64_t now_ms)
{
    sqlite3_stmt *stmt;
    if (state == NULL ||
        (strcmp(state, TL_RUNBOOK_ACCEPTED) != 0 && strcmp(state, TL_RUNBOOK_REJECTED) != 0) ||
        !tl__store_text_ok(by, KB_NAME_MAX) || by[0] == '\0' || !optional_text_ok(reason, 4096))
        return TL_EINVAL;
    tl_runbook_proposal_row_t row;
    int rc = tl_store_runbook_proposal_read(store, id, &row);
    if (rc != 0)
        return rc;
    int open = strcmp(row.state, TL_RUNBOOK_PROPOSED) == 0;
    tl_runbook_proposal_row_clear(&row);
    if (!open)
        return TL_ESTATE;
    rc = tl__sqlite_prepare(store,
                            "UPDATE runbook_proposals SET state = ?2, decided_by = ?3, "
                            "decided = ?4, reason = ?5 WHERE id = ?1",
                            &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_text(stmt, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now_ms);
    bind_optional_text(stmt, 5, reason);
    rc = tl__sqlite_step_done(store, stmt, "runbook_proposal_decide");
    sqlite3_finalize(stmt);
    return rc;
}

void tl_runbook_proposal_row_clear(tl_runbook_proposal_row_t *row)
{
    free((void *)row->name);
    free((void *)row->metadata);
    free((void *)row->script);
    free((void *)row->sha256);
    free((void *)row->state);
    free((void *)row->proposed_by);
    free((void *)row->decided_by);
    free((void *)row->reason);
    memset(row, 0, sizeof *row);
}

void tl_runbook_proposal_rows_free(tl_runbook_proposal_rows_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++)
        tl_runbook_proposal_row_clear(&list->rows[i]);
    free(list->rows);
    list->rows = NULL;
    list->count = 0;
}

/* ---- outcomes ------------------------------------------------------------------------------- */

static const char *const stage_names[] = {
    [TL_KB_SUGGESTED] = "suggested",
    [TL_KB_APPLIED] = "applied",
    [TL_KB_RECHECK_PASSED] = "recheck-passed",
    [TL_KB_RECHECK_FAILED] = "recheck-failed",
};

const char *tl_kb_stage_name(tl_kb_stage_t stage)
{
    return (unsigned)stage < sizeof stage_names / sizeof stage_names[0] ? stage_names[stage] : NULL;
}

int tl_store_kb_outcome_add(tl_store_t *store, const tl_kb_outcome_row_t *row)
{
    static const char *const counters[] = {
        [TL_KB_SUGGESTED] = "UPDATE kb_articles SET suggested = suggested + 1 WHERE id = ?",
        [TL_KB_APPLIED] = "UPDATE kb_articles SET applied = applied + 1 WHERE id = ?",
        [TL_KB_RECHECK_PASSED] =
            "UPDATE kb_articles SET recheck_passed = recheck_passed + 1 WHERE id = ?",
        [TL_KB_RECHECK_FAILED] = NULL,
    };
    const char *stage = tl_kb_stage_name(row->stage);
    if (stage == NULL || !article_id_ok(row->article_id) ||
        !optional_text_ok(row->runbook, KB_NAME_MAX) ||
        !optional_text_ok(row->fingerprint, KB_NAME_MAX) || row->device_id < 0 ||
        row->ticket_id < 0)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO kb_outcomes (article_id, device_id, time, stage, "
                                "runbook, fingerprint, ticket_id) VALUES (?,?,?,?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, row->article_id, -1, SQLITE_STATIC);
    bind_optional_id(stmt, 2, row->device_id);
    sqlite3_bind_int64(stmt, 3, row->time);
    sqlite3_bind_text(stmt, 4, stage, -1, SQLITE_STATIC);
    bind_optional_text(stmt, 5, row->runbook);
    bind_optional_text(stmt, 6, row->fingerprint);
    bind_optional_id(stmt, 7, row->ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "kb_outcome_add");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        return TL_ENOTFOUND; /* a foreign key: no such device or ticket */
    if (rc != 0 || counters[row->stage] == NULL)
        return rc;
    if ((rc = tl__sqlite_prepare(store, counters[row->stage], &stmt)) != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, row->article_id, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "kb_outcome_count");
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- freeing what these hand out: rows own their strings ------------------------------------ */

void tl_kb_article_row_clear(tl_kb_article_row_t *row)
{
    free((void *)row->id);
    free((void *)row->title);
    free((void *)row->category);
    free((void *)row->runbook);
    free((void *)row->source);
    free((void *)row->sha256);
    free((void *)row->state);
    free((void *)row->added_by);
    free((void *)row->published_by);
    free((void *)row->needs_editing);
    memset(row, 0, sizeof *row);
}

void tl_kb_article_rows_free(tl_kb_article_rows_t *list)
{
    for (size_t i = 0; list->rows != NULL && i < list->count; i++)
        tl_kb_article_row_clear(&list->rows[i]);
    free(list->rows);
    list->rows = NULL;
    list->count = 0;
}
