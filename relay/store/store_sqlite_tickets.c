/* Tickets, their timelines and evidence on SQLite (relay/store/store.h, store_sqlite.h). */
#include "proto/err.h"
#include "relay/store/store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ticket_lookup_request(tl_store_t *store, int64_t device_id, const char *request_id,
                                 int64_t *ticket_id)
{
    return tl__sqlite_id_by_request(store,
                                    "SELECT id FROM tickets WHERE device_id = ? AND request_id = ?",
                                    device_id, request_id, ticket_id, "ticket_lookup");
}

int tl_store_ticket_insert(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                           int64_t *ticket_id, int *created)
{
    if (!tl__store_text_ok(ticket->title, TL_STORE_MAX_TITLE) ||
        !tl__store_text_ok(ticket->description ? ticket->description : "",
                           TL_STORE_MAX_DESCRIPTION) ||
        !tl__store_text_ok(ticket->status, 32) ||
        (ticket->request_id != NULL && !tl__store_text_ok(ticket->request_id, 64)))
        return TL_EINVAL;
    *created = 0;
    if (ticket->request_id != NULL) {
        int rc = ticket_lookup_request(store, ticket->device_id, ticket->request_id, ticket_id);
        if (rc != TL_ENOTFOUND)
            return rc;
    }
    int severity = ticket->severity == 0 ? 3 : ticket->severity;
    const char *category = ticket->category != NULL ? ticket->category : "other";
    if (severity < 1 || severity > 4 || !tl__store_text_ok(category, 32))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO tickets (device_id, title, description, tier, status, "
                                "created, updated, request_id, severity, category) "
                                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket->device_id);
    sqlite3_bind_text(stmt, 2, ticket->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, ticket->description ? ticket->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, ticket->tier);
    sqlite3_bind_text(stmt, 5, ticket->status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 6, now_ms);
    sqlite3_bind_int64(stmt, 7, now_ms);
    if (ticket->request_id != NULL)
        sqlite3_bind_text(stmt, 8, ticket->request_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 8);
    sqlite3_bind_int(stmt, 9, severity);
    sqlite3_bind_text(stmt, 10, category, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "ticket_create");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        return TL_ENOTFOUND; /* foreign key: no such device */
    if (rc != 0)
        return rc;
    *ticket_id = sqlite3_last_insert_rowid(store->db);
    /* The history starts with what the clocks need to know of the start. */
    char tier[16], sev[16];
    snprintf(tier, sizeof tier, "%d", ticket->tier);
    snprintf(sev, sizeof sev, "%d", severity);
    tl_ticket_change_row_t start[] = {
        {*ticket_id, now_ms, "tier", tier, "relay", ""},
        {*ticket_id, now_ms, "severity", sev, "relay", ""},
        {*ticket_id, now_ms, "category", category, "relay", ""},
    };
    for (size_t i = 0; i < sizeof start / sizeof start[0] && rc == 0; i++)
        rc = tl_store_ticket_change_add(store, &start[i]);
    if (rc != 0)
        return rc;
    *created = 1;
    return 0;
}

int tl__sqlite_touch_ticket(tl_store_t *store, int64_t ticket_id, int64_t now_ms)
{
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, "UPDATE tickets SET updated = ? WHERE id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "ticket_touch");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_event_add(tl_store_t *store, const tl_ticket_event_row_t *event)
{
    const char *details = event->details != NULL ? event->details : "{}";
    if (!tl__store_text_ok(event->actor, 128) || !tl__store_text_ok(event->kind, 64) ||
        !tl__store_json_object(details))
        return TL_EINVAL;
    int rc = tl__sqlite_touch_ticket(store, event->ticket_id, event->time);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stmt;
    rc = tl__sqlite_prepare(store,
                            "INSERT INTO ticket_events (ticket_id, time, actor, kind, details) "
                            "VALUES (?,?,?,?,?)",
                            &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, event->ticket_id);
    sqlite3_bind_int64(stmt, 2, event->time);
    sqlite3_bind_text(stmt, 3, event->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, event->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, details, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "ticket_event");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_evidence_add(tl_store_t *store, int64_t ticket_id, const char *hash, const char *kind,
                          const char *name, uint64_t size, int64_t now_ms, int *added)
{
    if (!tl__store_hex64(hash) || !tl__store_text_ok(kind, 32) || !tl__store_text_ok(name, 255) ||
        size > INT64_MAX)
        return TL_EINVAL;
    *added = 0;
    int rc = tl__sqlite_touch_ticket(store, ticket_id, now_ms);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stmt;
    rc = tl__sqlite_prepare(store,
                            "INSERT OR IGNORE INTO evidence (ticket_id, hash, kind, name, size, "
                            "created) VALUES (?,?,?,?,?,?)",
                            &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, (int64_t)size);
    sqlite3_bind_int64(stmt, 6, now_ms);
    rc = tl__sqlite_step_done(store, stmt, "evidence_add");
    if (rc == 0)
        *added = sqlite3_changes(store->db) > 0;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_set(tl_store_t *store, int64_t ticket_id, const char *assignee,
                        const char *status, const char *actor, int64_t now_ms)
{
    if (actor == NULL)
        actor = "relay";
    if ((assignee != NULL && !tl_store_user_name_valid(assignee)) ||
        (status != NULL && !tl__store_text_ok(status, 32)))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "UPDATE tickets SET assignee = COALESCE(?1, assignee), "
                                "status = COALESCE(?2, status), updated = ?3 WHERE id = ?4",
                                &stmt);
    if (rc != 0)
        return rc;
    if (assignee != NULL)
        sqlite3_bind_text(stmt, 1, assignee, -1, SQLITE_STATIC);
    if (status != NULL)
        sqlite3_bind_text(stmt, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now_ms);
    sqlite3_bind_int64(stmt, 4, ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "ticket_update");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    tl_ticket_change_row_t change = {ticket_id, now_ms, "assignee", assignee, actor, ""};
    if (rc == 0 && assignee != NULL)
        rc = tl_store_ticket_change_add(store, &change);
    change.field = "status";
    change.value = status;
    if (rc == 0 && status != NULL)
        rc = tl_store_ticket_change_add(store, &change);
    return rc;
}

/* ---- the desk's columns and the history of changes ----------------------------------------- */

static const struct {
    const char *name;
    int is_text;
    int nullable;
    int64_t min, max; /* numbers: the range; text: max is the length */
} ticket_column[TL_TICKET_COLUMNS] = {
    [TL_TICKET_SEVERITY] = {"severity", 0, 0, 1, 4},
    [TL_TICKET_CATEGORY] = {"category", 1, 0, 0, 32},
    [TL_TICKET_TIER] = {"tier", 0, 0, 0, 4},
    [TL_TICKET_FINGERPRINT] = {"fingerprint", 1, 1, 0, 128},
    [TL_TICKET_PROBLEM] = {"problem_id", 0, 1, 1, INT64_MAX},
    [TL_TICKET_VENDOR] = {"vendor", 1, 1, 0, 128},
    [TL_TICKET_VENDOR_CASE] = {"vendor_case", 1, 1, 0, 128},
    [TL_TICKET_FOLLOW_UP] = {"follow_up", 0, 1, 1, INT64_MAX},
    [TL_TICKET_FIRST_RESPONSE] = {"first_response", 0, 1, 1, INT64_MAX},
};

int tl_store_ticket_column_set(tl_store_t *store, int64_t ticket_id, tl_ticket_column_t column,
                               const char *text, int64_t number, int64_t now_ms)
{
    if ((unsigned)column >= TL_TICKET_COLUMNS)
        return TL_EINVAL;
    int is_null = ticket_column[column].is_text ? text == NULL : number == 0;
    if (is_null && !ticket_column[column].nullable)
        return TL_EINVAL;
    if (!is_null && ticket_column[column].is_text &&
        (text[0] == '\0' || !tl__store_text_ok(text, (size_t)ticket_column[column].max)))
        return TL_EINVAL;
    if (!is_null && !ticket_column[column].is_text &&
        (number < ticket_column[column].min || number > ticket_column[column].max))
        return TL_EINVAL;
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE tickets SET %s = ?1, updated = ?2 WHERE id = ?3",
             ticket_column[column].name);
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    if (is_null)
        sqlite3_bind_null(stmt, 1);
    else if (ticket_column[column].is_text)
        sqlite3_bind_text(stmt, 1, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(stmt, 1, number);
    sqlite3_bind_int64(stmt, 2, now_ms);
    sqlite3_bind_int64(stmt, 3, ticket_id);
    rc = tl__sqlite_step_done(store, stmt, "ticket_column");
    if (rc == TL_EEXIST)
        rc = TL_ENOTFOUND; /* foreign key: no such problem */
    else if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_change_add(tl_store_t *store, const tl_ticket_change_row_t *change)
{
    const char *reason = change->reason != NULL ? change->reason : "";
    if (!tl__store_text_ok(change->field, 16) || !tl__store_text_ok(change->value, 128) ||
        !tl__store_text_ok(change->actor, 128) ||
        !tl__store_text_ok(reason, TL_STORE_MAX_DESCRIPTION))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = tl__sqlite_prepare(store,
                                "INSERT INTO ticket_changes (ticket_id, time, field, value, actor, "
                                "reason) VALUES (?,?,?,?,?,?)",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, change->ticket_id);
    sqlite3_bind_int64(stmt, 2, change->time);
    sqlite3_bind_text(stmt, 3, change->field, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, change->value, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 5, change->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, reason, -1, SQLITE_STATIC);
    rc = tl__sqlite_step_done(store, stmt, "ticket_change");
    sqlite3_finalize(stmt);
    return rc == TL_EEXIST ? TL_ENOTFOUND : rc; /* foreign key: no such ticket */
}

static int change_row(sqlite3_stmt *stmt, void *out)
{
    tl_ticket_change_row_t *row = out;
    int rc;
    row->ticket_id = sqlite3_column_int64(stmt, 0);
    row->time = sqlite3_column_int64(stmt, 1);
    if ((rc = tl__sqlite_text(stmt, 2, &row->field)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->value)) == 0 &&
        (rc = tl__sqlite_text(stmt, 4, &row->actor)) == 0)
        rc = tl__sqlite_text(stmt, 5, &row->reason);
    return rc;
}

int tl_store_ticket_changes_read(tl_store_t *store, int64_t ticket_id, tl_ticket_change_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT ticket_id, time, field, value, actor, reason FROM "
                                "ticket_changes WHERE ticket_id = ? ORDER BY id",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, change_row, &rows, &out->count,
                         "ticket_changes_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_ticket_change_rows_free(out);
    return rc;
}

/* ---- reading tickets ------------------------------------------------------------------------ */

static const char ticket_columns[] =
    "SELECT t.id, t.device_id, d.hostname, t.title, t.description, t.tier, t.status, t.assignee, "
    "t.created, t.updated, t.severity, t.category, t.fingerprint, t.problem_id, t.vendor, "
    "t.vendor_case, t.follow_up, t.first_response "
    "FROM tickets t JOIN devices d ON d.id = t.device_id ";

/* The current row of a ticket_columns query into row (zeroed). */
static int ticket_row(sqlite3_stmt *stmt, void *out)
{
    tl_ticket_row_t *row = out;
    int rc;
    row->id = sqlite3_column_int64(stmt, 0);
    row->device_id = sqlite3_column_int64(stmt, 1);
    row->tier = sqlite3_column_int(stmt, 5);
    row->created = sqlite3_column_int64(stmt, 8);
    row->updated = sqlite3_column_int64(stmt, 9);
    row->severity = sqlite3_column_int(stmt, 10);
    row->problem_id = sqlite3_column_int64(stmt, 13);
    row->follow_up = sqlite3_column_int64(stmt, 16);
    row->first_response = sqlite3_column_int64(stmt, 17);
    if ((rc = tl__sqlite_text(stmt, 2, &row->hostname)) == 0 &&
        (rc = tl__sqlite_text(stmt, 3, &row->title)) == 0 &&
        (rc = tl__sqlite_text(stmt, 4, &row->description)) == 0 &&
        (rc = tl__sqlite_text(stmt, 6, &row->status)) == 0 &&
        (rc = tl__sqlite_text(stmt, 7, &row->assignee)) == 0 &&
        (rc = tl__sqlite_text(stmt, 11, &row->category)) == 0 &&
        (rc = tl__sqlite_text(stmt, 12, &row->fingerprint)) == 0 &&
        (rc = tl__sqlite_text(stmt, 14, &row->vendor)) == 0)
        rc = tl__sqlite_text(stmt, 15, &row->vendor_case);
    return rc;
}

int tl_store_tickets_read(tl_store_t *store, const tl_ticket_filter_t *filter,
                          tl_ticket_rows_t *out)
{
    static const tl_ticket_filter_t all = {-1, NULL, NULL};
    char sql[1024];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    if (filter == NULL)
        filter = &all;
    snprintf(sql, sizeof sql,
             "%s WHERE (?1 < 0 OR t.tier = ?1) AND (?2 IS NULL OR t.status = ?2) AND "
             "(?3 IS NULL OR t.assignee = ?3) ORDER BY t.id",
             ticket_columns);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(stmt, 1, filter->tier);
    if (filter->status != NULL)
        sqlite3_bind_text(stmt, 2, filter->status, -1, SQLITE_STATIC);
    if (filter->assignee != NULL)
        sqlite3_bind_text(stmt, 3, filter->assignee, -1, SQLITE_STATIC);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, ticket_row, &rows, &out->count,
                         "tickets_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_ticket_rows_free(out);
    return rc;
}

int tl_store_ticket_read(tl_store_t *store, int64_t ticket_id, tl_ticket_row_t *out)
{
    char sql[512];
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, "%s WHERE t.id = ?", ticket_columns);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        rc = ticket_row(stmt, out); /* out is zeroed above */
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : tl__sqlite_error(store, "ticket_read");
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_ticket_row_clear(out);
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

int tl_store_ticket_events_read(tl_store_t *store, int64_t ticket_id, tl_ticket_event_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store,
                                "SELECT ticket_id, time, actor, kind, details FROM ticket_events "
                                "WHERE ticket_id = ? ORDER BY id",
                                &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, event_row, &rows, &out->count,
                         "ticket_events_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_ticket_event_rows_free(out);
    return rc;
}

int tl__sqlite_evidence_row(sqlite3_stmt *stmt, void *out)
{
    tl_evidence_row_t *row = out;
    int rc;
    int64_t size = sqlite3_column_int64(stmt, 4);
    row->ticket_id = sqlite3_column_int64(stmt, 0);
    row->size = size > 0 ? (uint64_t)size : 0;
    row->created = sqlite3_column_int64(stmt, 5);
    if ((rc = tl__sqlite_text(stmt, 1, &row->hash)) == 0 &&
        (rc = tl__sqlite_text(stmt, 2, &row->kind)) == 0)
        rc = tl__sqlite_text(stmt, 3, &row->name);
    return rc;
}

/* Evidence rows of the query in sql (ticket_id, hash, kind, name, size, created), with
 * ticket_id bound as its parameter when it is positive. */
static int evidence_rows(tl_store_t *store, const char *sql, int64_t ticket_id,
                         tl_evidence_rows_t *out)
{
    sqlite3_stmt *stmt;
    memset(out, 0, sizeof *out);
    int rc = tl__sqlite_prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    if (ticket_id > 0)
        sqlite3_bind_int64(stmt, 1, ticket_id);
    void *rows = NULL;
    rc = tl__sqlite_rows(store, stmt, sizeof *out->rows, tl__sqlite_evidence_row, &rows,
                         &out->count, "evidence_read");
    out->rows = rows;
    sqlite3_finalize(stmt);
    if (rc != 0)
        tl_evidence_rows_free(out);
    return rc;
}

int tl_store_ticket_evidence_read(tl_store_t *store, int64_t ticket_id, tl_evidence_rows_t *out)
{
    if (ticket_id <= 0) {
        memset(out, 0, sizeof *out);
        return 0; /* no such ticket: nothing on it */
    }
    return evidence_rows(store,
                         "SELECT ticket_id, hash, kind, name, size, created FROM evidence "
                         "WHERE ticket_id = ? ORDER BY id",
                         ticket_id, out);
}

int tl_store_evidence_read(tl_store_t *store, tl_evidence_rows_t *out)
{
    return evidence_rows(store,
                         "SELECT ticket_id, hash, kind, name, size, created FROM evidence "
                         "ORDER BY hash, ticket_id",
                         0, out);
}
