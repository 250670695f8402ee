#include "relay/store/store.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tl_store {
    sqlite3 *db;
};

/*
 * Migrations, applied in order; entry i takes the schema from version i to
 * i + 1. Never edit a released entry: add a new one.
 */
static const char *const migrations[] = {
    "CREATE TABLE devices ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  hostname TEXT NOT NULL,"
    "  os TEXT NOT NULL,"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  online INTEGER NOT NULL DEFAULT 0,"
    "  enroll_code_id INTEGER);"
    "CREATE TABLE enroll_codes ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  code_hash TEXT NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  used INTEGER,"
    "  note TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE tickets ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  device_id INTEGER NOT NULL REFERENCES devices(id),"
    "  title TEXT NOT NULL,"
    "  description TEXT NOT NULL,"
    "  tier INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  assignee TEXT,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  request_id TEXT,"
    "  UNIQUE (device_id, request_id));"
    "CREATE TABLE ticket_events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  details TEXT NOT NULL);"
    "CREATE INDEX ticket_events_by_ticket ON ticket_events(ticket_id, id);"
    "CREATE TABLE evidence ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  hash TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (ticket_id, hash));",
    /* 1 -> 2: technicians and auditors, and what they may see. */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL,"
    "  public_key TEXT NOT NULL,"
    "  fingerprint TEXT NOT NULL UNIQUE,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL);"
    "CREATE INDEX tickets_by_assignee ON tickets(assignee);",
    /* 2 -> 3: audit entries committed with their change, until the audit log has them. */
    "CREATE TABLE audit_pending ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  details TEXT NOT NULL);"
    /* which device uploaded which evidence: a ticket may name only its own */
    "CREATE TABLE uploads ("
    "  device_id INTEGER NOT NULL REFERENCES devices(id),"
    "  hash TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  PRIMARY KEY (device_id, hash));",
    /* 3 -> 4: the audit chain's head and the lines the log does not hold yet
     * (relay/store/audit_chain.h); audit_pending stays for what older relays left. */
    "CREATE TABLE audit_head ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  seq INTEGER NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE TABLE audit_outbox ("
    "  seq INTEGER PRIMARY KEY,"
    "  hash TEXT NOT NULL,"
    "  line TEXT NOT NULL,"
    "  created INTEGER NOT NULL);",
};

#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

static int db_error(tl_store_t *store, const char *what)
{
    tl_log_error("store failure op=%s reason=\"%s\"", what, sqlite3_errmsg(store->db));
    return TL_ESTORE;
}

static int exec_sql(tl_store_t *store, const char *sql)
{
    char *message = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        tl_log_error("store failure op=exec reason=\"%s\"", message ? message : "?");
        sqlite3_free(message);
        return TL_ESTORE;
    }
    return 0;
}

static int prepare(tl_store_t *store, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return db_error(store, "prepare");
    return 0;
}

static int user_version(tl_store_t *store, int *version)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, "PRAGMA user_version", &stmt);
    if (rc != 0)
        return rc;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        *version = sqlite3_column_int(stmt, 0);
    else
        rc = db_error(store, "user_version");
    sqlite3_finalize(stmt);
    return rc;
}

static int migrate(tl_store_t *store)
{
    int version = 0;
    int rc = user_version(store, &version);
    if (rc != 0)
        return rc;
    if (version > MIGRATION_COUNT)
        return TL_ESCHEMA;
    if (version == MIGRATION_COUNT)
        return 0;
    if ((rc = exec_sql(store, "BEGIN IMMEDIATE")) != 0)
        return rc;
    for (int i = version; i < MIGRATION_COUNT; i++) {
        if ((rc = exec_sql(store, migrations[i])) != 0)
            goto out;
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", MIGRATION_COUNT);
    if ((rc = exec_sql(store, pragma)) != 0)
        goto out;
    rc = exec_sql(store, "COMMIT");
    if (rc == 0 && version > 0)
        tl_log_info("store migrated from=%d to=%d", version, MIGRATION_COUNT);
out:
    if (rc != 0)
        exec_sql(store, "ROLLBACK");
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
        rc = db_error(store, "open");
        goto out;
    }
    sqlite3_busy_timeout(store->db, 5000);
    sqlite3_extended_result_codes(store->db, 1);
    /* WAL with FULL sync: a commit that returned is on disk (DESIGN.md §8). */
    if ((rc = exec_sql(store, "PRAGMA journal_mode = WAL")) != 0 ||
        (rc = exec_sql(store, "PRAGMA synchronous = FULL")) != 0 ||
        (rc = exec_sql(store, "PRAGMA foreign_keys = ON")) != 0)
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

int tl_store_begin(tl_store_t *store)
{
    return exec_sql(store, "BEGIN IMMEDIATE");
}

int tl_store_commit(tl_store_t *store)
{
    return exec_sql(store, "COMMIT");
}

void tl_store_rollback(tl_store_t *store)
{
    if (!sqlite3_get_autocommit(store->db))
        exec_sql(store, "ROLLBACK");
}

int tl_store_savepoint(tl_store_t *store)
{
    return exec_sql(store, "SAVEPOINT job");
}

int tl_store_release(tl_store_t *store)
{
    return exec_sql(store, "RELEASE job");
}

void tl_store_rollback_savepoint(tl_store_t *store)
{
    exec_sql(store, "ROLLBACK TO job");
    exec_sql(store, "RELEASE job");
}

/* ---- small helpers ----------------------------------------------------------- */

static int text_ok(const char *text, size_t max_len)
{
    return text != NULL && strlen(text) <= max_len;
}

static int is_hex64(const char *text)
{
    if (text == NULL || strlen(text) != 64)
        return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static void format_id(char *out, size_t size, char prefix, int64_t id)
{
    snprintf(out, size, "%c-%" PRId64, prefix, id);
}

int tl_store_parse_id(const char *text, char prefix, int64_t *out)
{
    if (text == NULL || text[0] != prefix || text[1] != '-' || text[2] < '1' || text[2] > '9')
        return TL_EINVAL;
    int64_t value = 0;
    for (const char *p = text + 2; *p; p++) {
        if (*p < '0' || *p > '9' || p - text > 17)
            return TL_EINVAL;
        value = value * 10 + (*p - '0');
    }
    *out = value;
    return 0;
}

/* Steps a statement that returns no rows. */
static int step_done(tl_store_t *store, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return TL_EEXIST;
    return db_error(store, what);
}

/* ---- enrollment codes ----------------------------------------------------- */

int tl_store_code_add(tl_store_t *store, const char *code_hash, int64_t now_ms, int64_t expires_ms,
                      const char *note, int64_t *code_id)
{
    if (!is_hex64(code_hash) || expires_ms <= now_ms ||
        !text_ok(note ? note : "", TL_STORE_MAX_NOTE))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(
        store, "INSERT INTO enroll_codes (code_hash, created, expires, note) VALUES (?,?,?,?)",
        &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, code_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now_ms);
    sqlite3_bind_int64(stmt, 3, expires_ms);
    sqlite3_bind_text(stmt, 4, note ? note : "", -1, SQLITE_STATIC);
    rc = step_done(store, stmt, "code_add");
    if (rc == 0 && code_id != NULL)
        *code_id = sqlite3_last_insert_rowid(store->db);
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_enroll(tl_store_t *store, const char *code_hash, int64_t now_ms,
                    const tl_device_info_t *device, int64_t *device_id)
{
    if (!is_hex64(code_hash) || !text_ok(device->fingerprint, 64) ||
        !text_ok(device->hostname, 255) || !text_ok(device->os, 255))
        return TL_EINVAL;
    sqlite3_stmt *stmt = NULL;
    int own_txn = sqlite3_get_autocommit(store->db);
    int rc = own_txn ? tl_store_begin(store) : 0;
    if (rc != 0)
        return rc;

    if ((rc = prepare(store, "SELECT id, expires, used FROM enroll_codes WHERE code_hash = ?",
                      &stmt)) != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, code_hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : db_error(store, "enroll");
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
        if (prepare(store, "SELECT id FROM devices WHERE fingerprint = ? AND enroll_code_id = ?",
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

    if ((rc = prepare(store,
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
    if ((rc = step_done(store, stmt, "enroll_device")) != 0)
        goto out;
    *device_id = sqlite3_last_insert_rowid(store->db);
    sqlite3_finalize(stmt);

    if ((rc = prepare(store, "UPDATE enroll_codes SET used = ? WHERE id = ?", &stmt)) != 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, code_id);
    rc = step_done(store, stmt, "enroll_code_used");
out:
    sqlite3_finalize(stmt);
    if (own_txn) {
        if (rc == 0)
            rc = tl_store_commit(store);
        if (rc != 0)
            tl_store_rollback(store);
    }
    return rc;
}

/* ---- devices ------------------------------------------------------------------- */

int tl_store_device_find(tl_store_t *store, const char *fingerprint, int64_t *device_id)
{
    if (!text_ok(fingerprint, 64))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store, "SELECT id FROM devices WHERE fingerprint = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, fingerprint, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *device_id = sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : db_error(store, "device_find");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_device_seen(tl_store_t *store, int64_t device_id, int64_t now_ms, int online)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, "UPDATE devices SET last_seen = ?, online = ? WHERE id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int(stmt, 2, online ? 1 : 0);
    sqlite3_bind_int64(stmt, 3, device_id);
    rc = step_done(store, stmt, "device_seen");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_devices_all_offline(tl_store_t *store)
{
    return exec_sql(store, "UPDATE devices SET online = 0 WHERE online != 0");
}

/* Builds a JSON object from the current row: column names become keys. */
static json_t *row_object(sqlite3_stmt *stmt)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    int columns = sqlite3_column_count(stmt);
    for (int i = 0; i < columns; i++) {
        const char *name = sqlite3_column_name(stmt, i);
        json_t *value;
        switch (sqlite3_column_type(stmt, i)) {
        case SQLITE_INTEGER:
            value = json_integer(sqlite3_column_int64(stmt, i));
            break;
        case SQLITE_NULL:
            value = json_null();
            break;
        default:
            value = json_string((const char *)sqlite3_column_text(stmt, i));
            if (value == NULL && sqlite3_column_text(stmt, i) != NULL) {
                /* Text stored before it was checked: shown with its stray bytes as \xHH. */
                char *text = tl_text_utf8_dup(sqlite3_column_text(stmt, i),
                                              (size_t)sqlite3_column_bytes(stmt, i));
                value = text != NULL ? json_string(text) : NULL;
                free(text);
            }
            break;
        }
        if (value == NULL || json_object_set_new(object, name, value) != 0) {
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

/* Runs a query and collects its rows; fix_row may rewrite each object. */
static int query_rows(tl_store_t *store, sqlite3_stmt *stmt, void (*fix_row)(json_t *),
                      json_t **out)
{
    json_t *rows = json_array();
    if (rows == NULL)
        return TL_ENOMEM;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        json_t *row = row_object(stmt);
        if (row == NULL) {
            json_decref(rows);
            return TL_ENOMEM;
        }
        if (fix_row != NULL)
            fix_row(row);
        json_array_append_new(rows, row);
    }
    if (step != SQLITE_DONE) {
        json_decref(rows);
        return db_error(store, "query");
    }
    *out = rows;
    return 0;
}

/* Replaces the integer member key with its display form ("D-7"). */
static void display_id(json_t *row, const char *key, char prefix)
{
    json_t *value = json_object_get(row, key);
    if (!json_is_integer(value))
        return;
    char text[32];
    format_id(text, sizeof text, prefix, json_integer_value(value));
    json_object_set_new(row, key, json_string(text));
}

static void fix_device(json_t *row)
{
    display_id(row, "id", 'D');
    json_object_set_new(row, "online",
                        json_boolean(json_integer_value(json_object_get(row, "online"))));
}

int tl_store_devices_list(tl_store_t *store, json_t **out)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "SELECT id, fingerprint, hostname, os, first_seen, last_seen, online "
                     "FROM devices ORDER BY id",
                     &stmt);
    if (rc != 0)
        return rc;
    rc = query_rows(store, stmt, fix_device, out);
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- tickets ------------------------------------------------------------------- */

static int ticket_lookup_request(tl_store_t *store, int64_t device_id, const char *request_id,
                                 int64_t *ticket_id)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, "SELECT id FROM tickets WHERE device_id = ? AND request_id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, request_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *ticket_id = sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : db_error(store, "ticket_lookup");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                           int64_t *ticket_id, int *created)
{
    if (!text_ok(ticket->title, TL_STORE_MAX_TITLE) || ticket->title[0] == '\0' ||
        !text_ok(ticket->description ? ticket->description : "", TL_STORE_MAX_DESCRIPTION) ||
        ticket->tier < 0 || ticket->tier > 4 ||
        (ticket->request_id != NULL && !text_ok(ticket->request_id, 64)))
        return TL_EINVAL;
    *created = 0;
    if (ticket->request_id != NULL) {
        int rc = ticket_lookup_request(store, ticket->device_id, ticket->request_id, ticket_id);
        if (rc != TL_ENOTFOUND)
            return rc;
    }
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "INSERT INTO tickets (device_id, title, description, tier, status, created, "
                     "updated, request_id) VALUES (?,?,?,?,'new',?,?,?)",
                     &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket->device_id);
    sqlite3_bind_text(stmt, 2, ticket->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, ticket->description ? ticket->description : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, ticket->tier);
    sqlite3_bind_int64(stmt, 5, now_ms);
    sqlite3_bind_int64(stmt, 6, now_ms);
    if (ticket->request_id != NULL)
        sqlite3_bind_text(stmt, 7, ticket->request_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, 7);
    rc = step_done(store, stmt, "ticket_create");
    sqlite3_finalize(stmt);
    if (rc == TL_EEXIST)
        return TL_ENOTFOUND; /* foreign key: no such device */
    if (rc != 0)
        return rc;
    *ticket_id = sqlite3_last_insert_rowid(store->db);
    *created = 1;
    return 0;
}

static int touch_ticket(tl_store_t *store, int64_t ticket_id, int64_t now_ms)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, "UPDATE tickets SET updated = ? WHERE id = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, now_ms);
    sqlite3_bind_int64(stmt, 2, ticket_id);
    rc = step_done(store, stmt, "ticket_touch");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_event(tl_store_t *store, int64_t ticket_id, int64_t now_ms, const char *actor,
                          const char *kind, json_t *details)
{
    if (!text_ok(actor, 128) || !text_ok(kind, 64) || (details && !json_is_object(details)))
        return TL_EINVAL;
    int rc = touch_ticket(store, ticket_id, now_ms);
    if (rc != 0)
        return rc;
    char *text = details ? json_dumps(details, JSON_COMPACT) : strdup("{}");
    if (text == NULL)
        return TL_ENOMEM;
    sqlite3_stmt *stmt;
    rc = prepare(store,
                 "INSERT INTO ticket_events (ticket_id, time, actor, kind, details) "
                 "VALUES (?,?,?,?,?)",
                 &stmt);
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, ticket_id);
        sqlite3_bind_int64(stmt, 2, now_ms);
        sqlite3_bind_text(stmt, 3, actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, text, -1, SQLITE_STATIC);
        rc = step_done(store, stmt, "ticket_event");
        sqlite3_finalize(stmt);
    }
    free(text);
    return rc;
}

int tl_store_evidence_add(tl_store_t *store, int64_t ticket_id, const char *hash, const char *kind,
                          const char *name, uint64_t size, int64_t now_ms, int *added)
{
    if (!is_hex64(hash) || !text_ok(kind, 32) || !text_ok(name, 255) || size > INT64_MAX)
        return TL_EINVAL;
    *added = 0;
    int rc = touch_ticket(store, ticket_id, now_ms);
    if (rc != 0)
        return rc;
    sqlite3_stmt *stmt;
    rc = prepare(store,
                 "INSERT OR IGNORE INTO evidence (ticket_id, hash, kind, name, size, created) "
                 "VALUES (?,?,?,?,?,?)",
                 &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 5, (int64_t)size);
    sqlite3_bind_int64(stmt, 6, now_ms);
    rc = step_done(store, stmt, "evidence_add");
    if (rc == 0)
        *added = sqlite3_changes(store->db) > 0;
    sqlite3_finalize(stmt);
    return rc;
}

static void fix_ticket(json_t *row)
{
    display_id(row, "id", 'T');
    display_id(row, "device", 'D');
}

static void fix_evidence_row(json_t *row)
{
    display_id(row, "ticket", 'T');
}

static const char ticket_columns[] =
    "SELECT t.id AS id, t.device_id AS device, d.hostname AS hostname, t.title AS title, "
    "t.description AS description, t.tier AS tier, t.status AS status, t.assignee AS assignee, "
    "t.created AS created, t.updated AS updated FROM tickets t JOIN devices d ON d.id = "
    "t.device_id ";

int tl_store_tickets_list(tl_store_t *store, json_t **out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%s ORDER BY t.id", ticket_columns);
    sqlite3_stmt *stmt;
    int rc = prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    rc = query_rows(store, stmt, fix_ticket, out);
    sqlite3_finalize(stmt);
    return rc;
}

static void fix_event(json_t *row)
{
    /* details is stored as JSON text; hand it back as an object. */
    json_t *text = json_object_get(row, "details");
    json_t *parsed = json_is_string(text) ? json_loads(json_string_value(text), 0, NULL) : NULL;
    json_object_set_new(row, "details", parsed ? parsed : json_object());
}

static int ticket_children(tl_store_t *store, const char *sql, int64_t ticket_id,
                           void (*fix_row)(json_t *), json_t **out)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, ticket_id);
    rc = query_rows(store, stmt, fix_row, out);
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_ticket_fields(tl_store_t *store, int64_t ticket_id, json_t **out)
{
    char sql[512];
    snprintf(sql, sizeof sql, "%s WHERE t.id = ?", ticket_columns);
    json_t *rows = NULL;
    int rc = ticket_children(store, sql, ticket_id, fix_ticket, &rows);
    if (rc == 0 && json_array_size(rows) != 1)
        rc = TL_ENOTFOUND;
    if (rc == 0)
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

int tl_store_ticket_get(tl_store_t *store, int64_t ticket_id, json_t **out)
{
    json_t *ticket = NULL, *events = NULL, *evidence = NULL;
    int rc = tl_store_ticket_fields(store, ticket_id, &ticket);
    if (rc != 0)
        return rc;
    if ((rc = ticket_children(store,
                              "SELECT time, actor, kind, details FROM ticket_events "
                              "WHERE ticket_id = ? ORDER BY id",
                              ticket_id, fix_event, &events)) != 0 ||
        (rc = ticket_children(store,
                              "SELECT hash, kind, name, size, created FROM evidence "
                              "WHERE ticket_id = ? ORDER BY id",
                              ticket_id, NULL, &evidence)) != 0)
        goto out;
    json_object_set_new(ticket, "events", events);
    json_object_set_new(ticket, "evidence", evidence);
    events = evidence = NULL;
    *out = ticket;
    ticket = NULL;
out:
    json_decref(ticket);
    json_decref(events);
    json_decref(evidence);
    return rc;
}

/* ---- technicians ------------------------------------------------------------------ */

static int name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > TL_STORE_MAX_USER || !((name[0] >= 'a' && name[0] <= 'z')))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int tl_store_user_name_valid(const char *name)
{
    return name_ok(name);
}

int tl_store_user_add(tl_store_t *store, const char *name, const char *role, const char *public_key,
                      const char *fingerprint, int64_t now_ms)
{
    if (!name_ok(name) || !text_ok(role, 15) || !text_ok(public_key, 4096) ||
        !text_ok(fingerprint, 64))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store,
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
    rc = step_done(store, stmt, "user_add");
    sqlite3_finalize(stmt);
    return rc;
}

static int user_change(tl_store_t *store, const char *sql, const char *name)
{
    if (!name_ok(name))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = step_done(store, stmt, "user_change");
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

static void fix_user(json_t *row)
{
    json_object_set_new(row, "disabled",
                        json_boolean(json_integer_value(json_object_get(row, "disabled"))));
}

int tl_store_users_list(tl_store_t *store, json_t **out)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "SELECT id, name, role, public_key, fingerprint, disabled, created FROM users "
                     "ORDER BY name",
                     &stmt);
    if (rc != 0)
        return rc;
    rc = query_rows(store, stmt, fix_user, out);
    sqlite3_finalize(stmt);
    return rc;
}

int64_t tl_store_change_counter(tl_store_t *store)
{
    sqlite3_stmt *stmt;
    int64_t version = -1;
    if (prepare(store, "PRAGMA data_version", &stmt) != 0)
        return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return version;
}

/* ---- ticket queries and changes ------------------------------------------------------- */

int tl_store_tickets_query(tl_store_t *store, const tl_ticket_filter_t *filter, json_t **out)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "%s WHERE (?1 < 0 OR t.tier = ?1) AND (?2 IS NULL OR t.status = ?2) AND "
             "(?3 IS NULL OR t.assignee = ?3) ORDER BY t.id",
             ticket_columns);
    sqlite3_stmt *stmt;
    int rc = prepare(store, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int(stmt, 1, filter->tier);
    if (filter->status != NULL)
        sqlite3_bind_text(stmt, 2, filter->status, -1, SQLITE_STATIC);
    if (filter->assignee != NULL)
        sqlite3_bind_text(stmt, 3, filter->assignee, -1, SQLITE_STATIC);
    rc = query_rows(store, stmt, fix_ticket, out);
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_status_valid(const char *status)
{
    static const char *const statuses[] = {"new",      "open",  "waiting-user", "waiting-vendor",
                                           "resolved", "closed"};
    for (size_t i = 0; status != NULL && i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(status, statuses[i]) == 0)
            return 1;
    return 0;
}

int tl_store_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee,
                           const char *status, int64_t now_ms)
{
    if ((assignee != NULL && !name_ok(assignee)) ||
        (status != NULL && !tl_store_status_valid(status)))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store,
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
    rc = step_done(store, stmt, "ticket_update");
    if (rc == 0 && sqlite3_changes(store->db) == 0)
        rc = TL_ENOTFOUND;
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- audit entries waiting for the audit log --------------------------------------- */

int tl_store_audit_pending_list(tl_store_t *store, json_t **out)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "SELECT id, time, actor, action, subject, details FROM audit_pending "
                     "ORDER BY id",
                     &stmt);
    if (rc != 0)
        return rc;
    rc = query_rows(store, stmt, fix_event, out);
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_pending_clear(tl_store_t *store, int64_t up_to_id)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, "DELETE FROM audit_pending WHERE id <= ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, up_to_id);
    rc = step_done(store, stmt, "audit_pending_clear");
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- the audit chain's head and outbox (relay/store/audit_chain.h) ------------------------- */

int tl_store_audit_head_get(tl_store_t *store, tl_store_audit_head_t *head)
{
    sqlite3_stmt *stmt;
    memset(head, 0, sizeof *head);
    int rc = prepare(store, "SELECT seq, hash FROM audit_head WHERE id = 1", &stmt);
    if (rc != 0)
        return rc;
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW) {
        const char *hash = (const char *)sqlite3_column_text(stmt, 1);
        int64_t seq = sqlite3_column_int64(stmt, 0);
        if (seq < 0 || !is_hex64(hash)) {
            tl_log_error("store failure op=audit_head_get reason=\"malformed head row\"");
            rc = TL_ESTORE;
        } else {
            head->known = 1;
            head->seq = (uint64_t)seq;
            memcpy(head->hash, hash, 65);
        }
    } else if (step != SQLITE_DONE) {
        rc = db_error(store, "audit_head_get");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_head_set(tl_store_t *store, uint64_t seq, const char *hash, int64_t now_ms)
{
    if (seq > INT64_MAX || !is_hex64(hash))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "INSERT INTO audit_head (id, seq, hash, updated) VALUES (1, ?1, ?2, ?3) "
                     "ON CONFLICT (id) DO UPDATE SET seq = ?1, hash = ?2, updated = ?3",
                     &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, (int64_t)seq);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, now_ms);
    rc = step_done(store, stmt, "audit_head_set");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_outbox_add(tl_store_t *store, uint64_t seq, const char *hash, const char *line,
                              int64_t now_ms)
{
    if (seq == 0 || seq > INT64_MAX || !is_hex64(hash) || line == NULL)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store, "INSERT INTO audit_outbox (seq, hash, line, created) VALUES (?,?,?,?)",
                     &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, (int64_t)seq);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, line, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now_ms);
    rc = step_done(store, stmt, "audit_outbox_add");
    sqlite3_finalize(stmt);
    return rc;
}

/* Outside a transaction, one read transaction makes head and rows one snapshot. */
int tl_store_audit_outbox_list(tl_store_t *store, size_t max_rows, tl_store_audit_head_t *head,
                               json_t **rows)
{
    int own = sqlite3_get_autocommit(store->db);
    sqlite3_stmt *stmt = NULL;
    *rows = NULL;
    int rc = own ? exec_sql(store, "BEGIN") : 0;
    if (rc != 0)
        return rc;
    if ((rc = tl_store_audit_head_get(store, head)) != 0)
        goto out;
    if ((rc = prepare(store,
                      "SELECT seq, hash, line, created FROM audit_outbox ORDER BY seq LIMIT ?",
                      &stmt)) != 0)
        goto out;
    sqlite3_bind_int64(stmt, 1, max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows);
    rc = query_rows(store, stmt, NULL, rows);
out:
    sqlite3_finalize(stmt);
    if (own)
        exec_sql(store, rc == 0 ? "COMMIT" : "ROLLBACK");
    return rc;
}

int tl_store_audit_outbox_delete(tl_store_t *store, uint64_t up_to_seq)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store, "DELETE FROM audit_outbox WHERE seq <= ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, up_to_seq > INT64_MAX ? INT64_MAX : (int64_t)up_to_seq);
    rc = step_done(store, stmt, "audit_outbox_delete");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_audit_outbox_count(tl_store_t *store, uint64_t *count, int64_t *oldest_ms)
{
    sqlite3_stmt *stmt;
    *count = 0;
    if (oldest_ms != NULL)
        *oldest_ms = 0;
    int rc = prepare(store, "SELECT COUNT(*), COALESCE(MIN(created), 0) FROM audit_outbox", &stmt);
    if (rc != 0)
        return rc;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *count = (uint64_t)sqlite3_column_int64(stmt, 0);
        if (oldest_ms != NULL)
            *oldest_ms = sqlite3_column_int64(stmt, 1);
    } else {
        rc = db_error(store, "audit_outbox_count");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_evidence_all(tl_store_t *store, json_t **out)
{
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "SELECT hash, ticket_id AS ticket, name, kind FROM evidence "
                     "ORDER BY hash, ticket_id",
                     &stmt);
    if (rc != 0)
        return rc;
    rc = query_rows(store, stmt, fix_evidence_row, out);
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_upload_record(tl_store_t *store, int64_t device_id, const char *hash, uint64_t size,
                           int64_t now_ms)
{
    if (!is_hex64(hash) || size > INT64_MAX)
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store,
                     "INSERT OR IGNORE INTO uploads (device_id, hash, size, created) "
                     "VALUES (?,?,?,?)",
                     &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, (int64_t)size);
    sqlite3_bind_int64(stmt, 4, now_ms);
    rc = step_done(store, stmt, "upload_record");
    sqlite3_finalize(stmt);
    return rc;
}

int tl_store_upload_find(tl_store_t *store, int64_t device_id, const char *hash, uint64_t *size)
{
    if (!is_hex64(hash))
        return TL_EINVAL;
    sqlite3_stmt *stmt;
    int rc = prepare(store, "SELECT size FROM uploads WHERE device_id = ? AND hash = ?", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, device_id);
    sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
    int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW)
        *size = (uint64_t)sqlite3_column_int64(stmt, 0);
    else
        rc = step == SQLITE_DONE ? TL_ENOTFOUND : db_error(store, "upload_find");
    sqlite3_finalize(stmt);
    return rc;
}
