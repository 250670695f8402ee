/*
 * The SQLite backend's schema (relay/store/store_sqlite.h): its tables as migrations, applied in
 * order when a store opens (relay/store/store_sqlite.c). PRAGMA user_version is the number
 * applied, TL_STORE_SCHEMA_VERSION the number this program writes.
 */
#include "relay/store/store_sqlite.h"

/*
 * Migrations, applied in order; entry i takes the schema from version i to
 * i + 1. Never edit a released entry: add a new one.
 */
const char *const tl__sqlite_migrations[] = {
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
    /* 4 -> 5: the help desk (docs/desk.md): a ticket's severity, category, vendor case and known
     * problem; its typed history of changes, which the SLA clocks replay; known problems;
     * frozen escalation summaries; notices for technicians; leads; vendor accounts bound to
     * tickets until an expiry. Tickets kept before get their tier and status as history. */
    "ALTER TABLE tickets ADD COLUMN severity INTEGER NOT NULL DEFAULT 3;"
    "ALTER TABLE tickets ADD COLUMN category TEXT NOT NULL DEFAULT 'other';"
    "ALTER TABLE tickets ADD COLUMN fingerprint TEXT;"
    "ALTER TABLE tickets ADD COLUMN problem_id INTEGER REFERENCES problems(id);"
    "ALTER TABLE tickets ADD COLUMN vendor TEXT;"
    "ALTER TABLE tickets ADD COLUMN vendor_case TEXT;"
    "ALTER TABLE tickets ADD COLUMN follow_up INTEGER;"
    "ALTER TABLE tickets ADD COLUMN first_response INTEGER;"
    "CREATE INDEX tickets_by_tier ON tickets(tier, status);"
    "CREATE TABLE ticket_changes ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  time INTEGER NOT NULL,"
    "  field TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX ticket_changes_by_ticket ON ticket_changes(ticket_id, id);"
    "INSERT INTO ticket_changes (ticket_id, time, field, value, actor) "
    "  SELECT id, created, 'tier', CAST(tier AS TEXT), 'relay' FROM tickets ORDER BY id;"
    "INSERT INTO ticket_changes (ticket_id, time, field, value, actor) "
    "  SELECT id, created, 'severity', '3', 'relay' FROM tickets ORDER BY id;"
    "INSERT INTO ticket_changes (ticket_id, time, field, value, actor) "
    "  SELECT id, updated, 'status', status, 'relay' FROM tickets WHERE status <> 'new' "
    "  ORDER BY id;"
    "CREATE TABLE problems ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  title TEXT NOT NULL,"
    "  fingerprint TEXT,"
    "  workaround TEXT NOT NULL DEFAULT '',"
    "  state TEXT NOT NULL,"
    "  fix TEXT,"
    "  opened_by TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    "CREATE INDEX problems_by_fingerprint ON problems(fingerprint);"
    "CREATE INDEX tickets_by_problem ON tickets(problem_id);"
    "CREATE TABLE escalations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  from_tier INTEGER NOT NULL,"
    "  to_tier INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  summary TEXT NOT NULL,"
    "  summary_hash TEXT NOT NULL);"
    "CREATE INDEX escalations_by_ticket ON escalations(ticket_id, id);"
    "CREATE TABLE notices ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user TEXT NOT NULL,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  time INTEGER NOT NULL,"
    "  text TEXT NOT NULL,"
    "  seen INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX notices_by_user ON notices(user, seen);"
    "CREATE TABLE ticket_grants ("
    "  user TEXT NOT NULL,"
    "  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
    "  expires INTEGER NOT NULL,"
    "  PRIMARY KEY (user, ticket_id));"
    "ALTER TABLE users ADD COLUMN lead INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN expires INTEGER;",
    /* 5 -> 6: self-help's deflections (docs/kb.md "Self-help"): problems solved on the machine
     * without a ticket, each with the fix applied and the re-check that passed. Self-contained:
     * it touches no other table. */
    "CREATE TABLE deflections ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  device_id INTEGER NOT NULL REFERENCES devices(id),"
    "  request_id TEXT NOT NULL,"
    "  article TEXT NOT NULL,"
    "  runbook TEXT NOT NULL,"
    "  args TEXT NOT NULL,"
    "  fingerprint TEXT,"
    "  shown INTEGER NOT NULL,"
    "  applied INTEGER NOT NULL,"
    "  rechecked INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (device_id, request_id));"
    "CREATE INDEX deflections_by_time ON deflections(rechecked);"
    "CREATE INDEX deflections_by_device ON deflections(device_id, fingerprint);",
};

const int tl__sqlite_migration_count =
    (int)(sizeof tl__sqlite_migrations / sizeof tl__sqlite_migrations[0]);

_Static_assert(sizeof tl__sqlite_migrations / sizeof tl__sqlite_migrations[0] ==
                   TL_STORE_SCHEMA_VERSION,
               "one migration per schema version");
