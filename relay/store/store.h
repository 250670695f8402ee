/*
 * The relay's store: devices, enrollment codes, tickets and their timelines, evidence records,
 * technicians, uploads, and the audit chain's head and outbox. This header is the whole
 * interface: typed rows in and out, no SQL, no JSON values, no transactions beyond the "unit of
 * work" below. One backend fills it today, SQLite (relay/store/store_sqlite.c, one file, WAL);
 * a shared database (PostgreSQL, DESIGN.md §8) would be a second file beside it that fills the
 * same functions, and no caller would change (docs/architecture.md "The store interface").
 *
 * Calls are synchronous and must not run on the event loop: the relay calls them from its
 * storage worker (relay/store/worker.h), the admin commands call them directly. A tl_store_t is
 * used by one thread at a time. Identifiers (device and ticket numbers) come from the store,
 * never from a relay's memory; they are int64 here and in every row, and take their text form
 * ("T-42", "D-7") only at the edges (proto/ids.h). Times are milliseconds since the Unix epoch,
 * UTC.
 *
 * The store checks what it must to keep its data sound (lengths, hashes, names used as keys,
 * references); what a ticket may be (its statuses, tiers, a title) is the desk's rule
 * (relay/desk/tickets.h), checked before the store is asked.
 *
 * Rows that come out of the store own their strings: a list is freed with its one free
 * function, a single row with its clear function. Rows that go in are borrowed for the call.
 */
#ifndef TL_STORE_H
#define TL_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_store tl_store_t;

/* The schema version this program writes; older files are migrated on open. */
#define TL_STORE_SCHEMA_VERSION 8

/* Field limits, enforced by the store (TL_EINVAL past them). */
#define TL_STORE_MAX_TITLE 200
#define TL_STORE_MAX_DESCRIPTION 8192
#define TL_STORE_MAX_NOTE 1024
#define TL_STORE_MAX_USER 64

enum tl_store_mode { TL_STORE_OPEN_EXISTING = 0, TL_STORE_CREATE_NEW = 1 };

/*
 * Opens the store at path. TL_STORE_CREATE_NEW makes a new file (TL_EEXIST if
 * one is there); TL_STORE_OPEN_EXISTING needs it to exist. Applies pending
 * migrations in one transaction; TL_ESCHEMA if the file is newer than us.
 */
int tl_store_open(const char *path, enum tl_store_mode mode, tl_store_t **out);
void tl_store_close(tl_store_t *store);
int tl_store_schema_version(tl_store_t *store);

/* ---- units of work --------------------------------------------------------------------------
 *
 * A unit of work is what commits together: tl_store_unit_run() runs body and then makes all of
 * its changes durable at once (one commit, one fsync), or none of them if body fails (its
 * non-zero result is returned) or the commit does. Inside body, tl_store_unit_step() runs one
 * piece of work isolated: if it fails, its own changes are undone and the unit goes on. This is
 * how the storage worker commits a batch of jobs (relay/store/worker.h): one unit, each job a
 * step. A unit run inside another becomes a step of it.
 *
 * A call made outside any unit is a unit of its own. tl_store_enroll() and
 * tl_store_audit_outbox_read() are atomic either way.
 */
typedef int (*tl_store_work_fn)(tl_store_t *store, void *arg);

int tl_store_unit_run(tl_store_t *store, tl_store_work_fn body, void *arg);
/* Inside a unit only (TL_ESTORE otherwise): work's result; its changes undone if it failed. */
int tl_store_unit_step(tl_store_t *store, tl_store_work_fn work, void *arg);

/* ---- enrollment codes (only their SHA-256, hex, is stored) ---------------- */

/* code_id may be NULL. */
int tl_store_code_add(tl_store_t *store, const char *code_hash, int64_t now_ms, int64_t expires_ms,
                      const char *note, int64_t *code_id);

typedef struct tl_device_info {
    const char *fingerprint;
    const char *hostname;
    const char *os;
} tl_device_info_t;

/*
 * Uses a code to register a device, atomically: TL_ENOTFOUND (no such code),
 * TL_EEXPIRED, TL_EUSED, TL_EEXIST (the key is already a device). On success
 * the code is spent and *device_id is the new device. The same key presenting
 * the code it already used succeeds again with its device (a lost answer).
 */
int tl_store_enroll(tl_store_t *store, const char *code_hash, int64_t now_ms,
                    const tl_device_info_t *device, int64_t *device_id);

/* ---- devices --------------------------------------------------------------- */

typedef struct tl_device_row {
    int64_t id;
    const char *fingerprint;
    const char *hostname;
    const char *os;
    int64_t first_seen;
    int64_t last_seen;
    int online;
} tl_device_row_t;

typedef struct tl_device_rows {
    tl_device_row_t *rows;
    size_t count;
} tl_device_rows_t;

/* TL_ENOTFOUND if the fingerprint belongs to no device. */
int tl_store_device_find(tl_store_t *store, const char *fingerprint, int64_t *device_id);
int tl_store_device_seen(tl_store_t *store, int64_t device_id, int64_t now_ms, int online);
/* At relay start: nobody is connected yet. */
int tl_store_devices_all_offline(tl_store_t *store);
/* Every device, by id. */
int tl_store_devices_read(tl_store_t *store, tl_device_rows_t *out);
void tl_device_rows_free(tl_device_rows_t *list);

/* ---- tickets, their timelines and evidence ------------------------------------------------ */

typedef struct tl_ticket_new {
    int64_t device_id;
    const char *title;
    const char *description; /* NULL: "" */
    int tier;
    /* The requester's idempotency key: the same (device, request_id) always
     * names the same ticket, so a re-sent request creates nothing new. */
    const char *request_id;
    /* The status it starts in; the desk chooses it (relay/desk/tickets.h). */
    const char *status;
    int severity;         /* 1 (S1) .. 4 (S4); 0: 3 */
    const char *category; /* NULL: "other" */
} tl_ticket_new_t;

typedef struct tl_ticket_row {
    int64_t id;
    int64_t device_id;
    const char *hostname; /* the device's */
    const char *title;
    const char *description;
    int tier;
    const char *status;
    const char *assignee; /* NULL: nobody */
    int64_t created;
    int64_t updated;
    int severity;            /* 1 (S1) .. 4 (S4) */
    const char *category;    /* "network", ... (relay/desk/classify.h) */
    const char *fingerprint; /* the diagnostic fingerprint (relay/desk/fingerprint.h); NULL */
    int64_t problem_id;      /* the known problem it is linked to; 0: none */
    const char *vendor;      /* the tier-4 vendor and its case reference; NULL: none */
    const char *vendor_case;
    int64_t follow_up;      /* when to chase the vendor (ms); 0: not set */
    int64_t first_response; /* when it had its first response (ms); 0: not yet */
} tl_ticket_row_t;

/*
 * One change of a ticket's own fields, in the typed history the SLA clocks replay
 * (relay/desk/sla.h): field is "status", "severity", "tier", "assignee", "category" or
 * "response" (a first response), value its new value as text ("S2" is "2").
 */
typedef struct tl_ticket_change_row {
    int64_t ticket_id;
    int64_t time;
    const char *field;
    const char *value;
    const char *actor;  /* "tech:alice", "relay" */
    const char *reason; /* "" if none was given */
} tl_ticket_change_row_t;

typedef struct tl_ticket_change_rows {
    tl_ticket_change_row_t *rows;
    size_t count;
} tl_ticket_change_rows_t;

/* A ticket's own columns beyond assignee and status, set one at a time. */
typedef enum tl_ticket_column {
    TL_TICKET_SEVERITY,       /* number 1..4 */
    TL_TICKET_CATEGORY,       /* text */
    TL_TICKET_TIER,           /* number 0..4 */
    TL_TICKET_FINGERPRINT,    /* text or NULL */
    TL_TICKET_PROBLEM,        /* number: a problem's id, 0 for none */
    TL_TICKET_VENDOR,         /* text or NULL */
    TL_TICKET_VENDOR_CASE,    /* text or NULL */
    TL_TICKET_FOLLOW_UP,      /* number: ms, 0 for none */
    TL_TICKET_FIRST_RESPONSE, /* number: ms, 0 for none */
    TL_TICKET_COLUMNS
} tl_ticket_column_t;

typedef struct tl_ticket_rows {
    tl_ticket_row_t *rows;
    size_t count;
} tl_ticket_rows_t;

/* One entry of a ticket's timeline. */
typedef struct tl_ticket_event_row {
    int64_t ticket_id;
    int64_t time;
    const char *actor;
    const char *kind;
    const char *details; /* a JSON object, as text */
} tl_ticket_event_row_t;

typedef struct tl_ticket_event_rows {
    tl_ticket_event_row_t *rows;
    size_t count;
} tl_ticket_event_rows_t;

/* An evidence item as a ticket holds it (the content is in the evidence store). */
typedef struct tl_evidence_row {
    int64_t ticket_id;
    const char *hash; /* SHA-256, hex */
    const char *kind;
    const char *name;
    uint64_t size;
    int64_t created;
} tl_evidence_row_t;

typedef struct tl_evidence_rows {
    tl_evidence_row_t *rows;
    size_t count;
} tl_evidence_rows_t;

typedef struct tl_ticket_filter {
    int tier;             /* -1: any */
    const char *status;   /* NULL: any */
    const char *assignee; /* NULL: any */
} tl_ticket_filter_t;

/*
 * A new ticket with created = updated = now_ms. *created is 1 for a new ticket, 0 when
 * request_id named an existing one (*ticket_id is then that one). TL_ENOTFOUND: no such device.
 */
int tl_store_ticket_insert(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                           int64_t *ticket_id, int *created);
/*
 * Sets the assignee (a user name) and/or the status (NULL leaves it), and adds each to the
 * ticket's history of changes with actor (NULL: "relay"); TL_ENOTFOUND, TL_EINVAL.
 */
int tl_store_ticket_set(tl_store_t *store, int64_t ticket_id, const char *assignee,
                        const char *status, const char *actor, int64_t now_ms);
/*
 * Sets one column (text for text columns, NULL clearing those that may be empty; number for
 * the others) and makes now_ms the ticket's last update. It adds nothing to the history: the
 * desk does (tl_store_ticket_change_add) for the columns the SLA clocks follow.
 * TL_ENOTFOUND (no such ticket or problem), TL_EINVAL (a value the column cannot hold).
 */
int tl_store_ticket_column_set(tl_store_t *store, int64_t ticket_id, tl_ticket_column_t column,
                               const char *text, int64_t number, int64_t now_ms);
/* Adds a change to a ticket's history; TL_ENOTFOUND, TL_EINVAL. */
int tl_store_ticket_change_add(tl_store_t *store, const tl_ticket_change_row_t *change);
/* A ticket's history of changes, oldest first. */
int tl_store_ticket_changes_read(tl_store_t *store, int64_t ticket_id,
                                 tl_ticket_change_rows_t *out);
void tl_ticket_change_rows_free(tl_ticket_change_rows_t *list);
/* Adds event to its ticket's timeline (and makes it the ticket's last update); TL_ENOTFOUND. */
int tl_store_ticket_event_add(tl_store_t *store, const tl_ticket_event_row_t *event);
/*
 * Records an evidence item on a ticket. The content must already be durable
 * in the evidence store. Adding the same hash twice to a ticket is a no-op
 * (*added = 0).
 */
int tl_store_evidence_add(tl_store_t *store, int64_t ticket_id, const char *hash, const char *kind,
                          const char *name, uint64_t size, int64_t now_ms, int *added);

/* The tickets filter lets through (NULL: all), by id. */
int tl_store_tickets_read(tl_store_t *store, const tl_ticket_filter_t *filter,
                          tl_ticket_rows_t *out);
/*
 * One ticket's own fields, without its timeline and evidence (which grow with every session):
 * what it costs is the same however long the ticket's history is. TL_ENOTFOUND if absent.
 */
int tl_store_ticket_read(tl_store_t *store, int64_t ticket_id, tl_ticket_row_t *out);
void tl_ticket_row_clear(tl_ticket_row_t *row);
/* A ticket's timeline, oldest first, and its evidence, in the order added (empty if none). */
int tl_store_ticket_events_read(tl_store_t *store, int64_t ticket_id, tl_ticket_event_rows_t *out);
int tl_store_ticket_evidence_read(tl_store_t *store, int64_t ticket_id, tl_evidence_rows_t *out);
/* Every evidence row of every ticket, by hash, then ticket. */
int tl_store_evidence_read(tl_store_t *store, tl_evidence_rows_t *out);
void tl_ticket_rows_free(tl_ticket_rows_t *list);
void tl_ticket_event_rows_free(tl_ticket_event_rows_t *list);
void tl_evidence_rows_free(tl_evidence_rows_t *list);

/* ---- technicians and auditors -------------------------------------------------- */

typedef struct tl_user_row {
    int64_t id;
    const char *name;
    const char *role;
    const char *public_key; /* "TYPE BASE64" */
    const char *fingerprint;
    int disabled;
    int64_t created;
    int lead;        /* 1: a lead, who may assign tickets to others (docs/desk.md) */
    int64_t expires; /* when the account stops working (ms); 0: never */
} tl_user_row_t;

typedef struct tl_user_rows {
    tl_user_row_t *rows;
    size_t count;
} tl_user_rows_t;

/* Names: 1..64 of [a-z0-9._-], starting with a letter. */
int tl_store_user_name_valid(const char *name);
/* TL_EEXIST if the name or the key is taken. */
int tl_store_user_add(tl_store_t *store, const char *name, const char *role, const char *public_key,
                      const char *fingerprint, int64_t now_ms);
int tl_store_user_disable(tl_store_t *store, const char *name);
int tl_store_user_remove(tl_store_t *store, const char *name);
/* Makes a user a lead (1) or not (0); sets or clears (0) an account's expiry. TL_ENOTFOUND. */
int tl_store_user_set_lead(tl_store_t *store, const char *name, int lead);
int tl_store_user_set_expires(tl_store_t *store, const char *name, int64_t expires_ms);
/* Every user, by name. */
int tl_store_users_read(tl_store_t *store, tl_user_rows_t *out);
void tl_user_rows_free(tl_user_rows_t *list);
/* Changes when another connection commits: cheap reload checks. -1 on failure. */
int64_t tl_store_change_counter(tl_store_t *store);

/* ---- uploads: which device sent which evidence ------------------------------------ */

int tl_store_upload_record(tl_store_t *store, int64_t device_id, const char *hash, uint64_t size,
                           int64_t now_ms);
/* The size this device uploaded under hash; TL_ENOTFOUND if it never did. */
int tl_store_upload_find(tl_store_t *store, int64_t device_id, const char *hash, uint64_t *size);

/* ---- the audit chain's head and outbox (relay/store/audit_chain.h) ------------------------ */

typedef struct tl_store_audit_head {
    int known; /* 0: no head recorded yet (a new store, or one from before schema 4) */
    uint64_t seq;
    char hash[65];
} tl_store_audit_head_t;

/* One line of the chain that the log may not hold yet. */
typedef struct tl_audit_outbox_row {
    uint64_t seq;
    const char *hash;
    const char *line; /* the whole line, newline included */
    int64_t created;
} tl_audit_outbox_row_t;

typedef struct tl_audit_outbox_rows {
    tl_audit_outbox_row_t *rows;
    size_t count;
} tl_audit_outbox_rows_t;

/* An audit entry an older relay (schema 3) committed with its change and had not yet written. */
typedef struct tl_audit_pending_row {
    int64_t id;
    int64_t time;
    const char *actor;
    const char *action;
    const char *subject;
    const char *details; /* a JSON object, as text */
} tl_audit_pending_row_t;

typedef struct tl_audit_pending_rows {
    tl_audit_pending_row_t *rows;
    size_t count;
} tl_audit_pending_rows_t;

int tl_store_audit_head_get(tl_store_t *store, tl_store_audit_head_t *head);
int tl_store_audit_head_set(tl_store_t *store, uint64_t seq, const char *hash, int64_t now_ms);
/* line is the whole line, newline included. */
int tl_store_audit_outbox_add(tl_store_t *store, uint64_t seq, const char *hash, const char *line,
                              int64_t now_ms);
/* The head and the first max_rows outbox rows by seq, read as one snapshot. */
int tl_store_audit_outbox_read(tl_store_t *store, size_t max_rows, tl_store_audit_head_t *head,
                               tl_audit_outbox_rows_t *out);
int tl_store_audit_outbox_delete(tl_store_t *store, uint64_t up_to_seq);
/* How many rows wait, and when the oldest was staged (0 if none). oldest_ms may be NULL. */
int tl_store_audit_outbox_count(tl_store_t *store, uint64_t *count, int64_t *oldest_ms);
void tl_audit_outbox_rows_free(tl_audit_outbox_rows_t *list);

/* Oldest first. The chain takes them over at start. */
int tl_store_audit_pending_read(tl_store_t *store, tl_audit_pending_rows_t *out);
int tl_store_audit_pending_clear(tl_store_t *store, int64_t up_to_id);
void tl_audit_pending_rows_free(tl_audit_pending_rows_t *list);

/* ---- escalations and known problems (docs/desk.md "Escalation", "Known problems") ---------- */

/* One move of a ticket between tiers, with the "already tried" summary frozen at that moment. */
typedef struct tl_escalation_row {
    int64_t id;
    int64_t ticket_id;
    int64_t time;
    const char *actor; /* "tech:alice" */
    int from_tier;
    int to_tier; /* lower than from_tier: a de-escalation */
    const char *reason;
    const char *summary;      /* the summary as canonical JSON (relay/desk/summary.h) */
    const char *summary_hash; /* its SHA-256, hex */
} tl_escalation_row_t;

/* Adds an escalation (row->id is not read); *id may be NULL. TL_ENOTFOUND (no such ticket),
 * TL_EINVAL (tiers outside 0..4, an empty reason, a hash that is not 64 hex digits). */
int tl_store_escalation_add(tl_store_t *store, const tl_escalation_row_t *row, int64_t *id);
/* A ticket's latest escalation, and how many it had (count may be NULL); TL_ENOTFOUND if none. */
int tl_store_escalation_latest(tl_store_t *store, int64_t ticket_id, tl_escalation_row_t *out,
                               int64_t *count);
void tl_escalation_row_clear(tl_escalation_row_t *row);

/*
 * Takes a ticket from its assignee (an escalated ticket waits in its new queue for someone to
 * take it), adding the change ("assignee" to "") to its history with actor and reason.
 * TL_ENOTFOUND for no such ticket; nothing happens to a ticket nobody holds.
 */
int tl_store_ticket_unassign(tl_store_t *store, int64_t ticket_id, const char *actor,
                             const char *reason, int64_t now_ms);

/* A known problem, with how many tickets are linked to it and on how many devices. */
typedef struct tl_problem_row {
    int64_t id;
    const char *title;
    const char *fingerprint; /* a diagnostic fingerprint (relay/desk/fingerprint.h); NULL: none */
    const char *workaround;  /* "" when none is known */
    const char *state;       /* investigating, known-error, fixed (relay/desk/problems.h) */
    const char *fix;         /* "note:...", "kb:...", "runbook:..."; NULL until fixed */
    const char *opened_by;   /* "tech:bob" */
    int64_t created;
    int64_t updated;
    int64_t tickets; /* linked tickets */
    int64_t devices; /* distinct devices among them */
} tl_problem_row_t;

typedef struct tl_problem_rows {
    tl_problem_row_t *rows;
    size_t count;
} tl_problem_rows_t;

/* A new problem (row->id, fix, counts and times are not read); TL_EINVAL for fields too long
 * to store or an empty title or state. */
int tl_store_problem_add(tl_store_t *store, const tl_problem_row_t *row, int64_t now_ms,
                         int64_t *problem_id);
/* TL_ENOTFOUND if there is none. */
int tl_store_problem_read(tl_store_t *store, int64_t problem_id, tl_problem_row_t *out);
/* The problems in state (NULL: all), by id. */
int tl_store_problems_read(tl_store_t *store, const char *state, tl_problem_rows_t *out);
/* Sets the workaround, the state and the fix (NULL leaves each as it is); TL_ENOTFOUND. */
int tl_store_problem_set(tl_store_t *store, int64_t problem_id, const char *workaround,
                         const char *state, const char *fix, int64_t now_ms);
void tl_problem_row_clear(tl_problem_row_t *row);
void tl_problem_rows_free(tl_problem_rows_t *list);

/* A ticket linked to a problem, as the problem lists it. */
typedef struct tl_problem_ticket_row {
    int64_t ticket_id;
    int64_t device_id;
    int tier;
    const char *status;
    const char *title;
} tl_problem_ticket_row_t;

typedef struct tl_problem_ticket_rows {
    tl_problem_ticket_row_t *rows;
    size_t count;
} tl_problem_ticket_rows_t;

/* The tickets linked to a problem, by id (empty if none). */
int tl_store_problem_tickets_read(tl_store_t *store, int64_t problem_id,
                                  tl_problem_ticket_rows_t *out);
void tl_problem_ticket_rows_free(tl_problem_ticket_rows_t *list);

/* Evidence of kind on every ticket of a device, added at or after since_ms, oldest first: what
 * a new diagnostics run would repeat (relay/desk/repeats.h). */
int tl_store_device_evidence_read(tl_store_t *store, int64_t device_id, const char *kind,
                                  int64_t since_ms, tl_evidence_rows_t *out);
/* ---- vendor accounts' tickets (docs/desk.md "Vendor accounts") -----------------------------
 *
 * A tier-4 account sees only the tickets bound to it here, each until an expiry. The rows are
 * the store's; what they allow is the desk's rule (relay/desk/vendor.h).
 */

typedef struct tl_ticket_grant_row {
    const char *user;
    int64_t ticket_id;
    int64_t expires; /* ms */
} tl_ticket_grant_row_t;

typedef struct tl_ticket_grant_rows {
    tl_ticket_grant_row_t *rows;
    size_t count;
} tl_ticket_grant_rows_t;

/*
 * Binds user to a ticket until expires_ms, or moves the expiry of the binding it has.
 * TL_ENOTFOUND for no such ticket; TL_EINVAL for a name that is not a user name or an expiry
 * of 0 or less.
 */
int tl_store_grant_set(tl_store_t *store, const char *user, int64_t ticket_id, int64_t expires_ms);
/* Unbinds them; TL_ENOTFOUND if they were not bound. */
int tl_store_grant_remove(tl_store_t *store, const char *user, int64_t ticket_id);
/* Unbinds user from every ticket (an account removed); 0 when there was none. */
int tl_store_grants_remove_user(tl_store_t *store, const char *user);
/* When user's binding to the ticket expires; TL_ENOTFOUND if there is none. */
int tl_store_grant_find(tl_store_t *store, const char *user, int64_t ticket_id,
                        int64_t *expires_ms);
/* user's bindings (NULL: everyone's), by user, then ticket; expired ones too. */
int tl_store_grants_read(tl_store_t *store, const char *user, tl_ticket_grant_rows_t *out);
void tl_ticket_grant_rows_free(tl_ticket_grant_rows_t *list);
/* ---- the user's side of tickets (docs/desk.md "The user's side of the ticket") ------------ */

/* Most kinds tl_store_ticket_event_latest takes at once. */
#define TL_STORE_MAX_KINDS 8

/*
 * The ids of one device's tickets, most recently updated first (then the newest id), at most
 * max of them into ids; *more is 1 when the device has others. Only that device's.
 */
int tl_store_device_ticket_ids(tl_store_t *store, int64_t device_id, size_t max, int64_t *ids,
                               size_t *count, int *more);
/*
 * The latest event of a ticket (by the order recorded) whose actor starts with actor_prefix
 * ("tech:") and whose kind is one of kinds (1..TL_STORE_MAX_KINDS of them): out holds it, or
 * nothing (count 0) when there is none. Free with tl_ticket_event_rows_free.
 */
int tl_store_ticket_event_latest(tl_store_t *store, int64_t ticket_id, const char *actor_prefix,
                                 const char *const *kinds, size_t kind_count,
                                 tl_ticket_event_rows_t *out);
/* ---- the desk's queues: notices for technicians (relay/store/store_sqlite_queues.c) -------- */

/* A notice's text, at most this many bytes. */
#define TL_STORE_MAX_NOTICE 8192

/* A message for one technician about a ticket, shown at the top of their next listing. */
typedef struct tl_notice_row {
    int64_t id;
    const char *user;
    int64_t ticket_id;
    int64_t time;
    const char *text;
    int seen;
} tl_notice_row_t;

typedef struct tl_notice_rows {
    tl_notice_row_t *rows;
    size_t count;
} tl_notice_rows_t;

/* Leaves a notice for user (a user name) about a ticket; TL_ENOTFOUND (no such ticket),
 * TL_EINVAL. */
int tl_store_notice_add(tl_store_t *store, const char *user, int64_t ticket_id, int64_t time_ms,
                        const char *text);
/* The user's notices not yet seen, oldest first, at most max_rows of them. */
int tl_store_notices_unseen(tl_store_t *store, const char *user, size_t max_rows,
                            tl_notice_rows_t *out);
/* Marks the user's notices up to and including id seen. */
int tl_store_notices_seen(tl_store_t *store, const char *user, int64_t up_to_id);
void tl_notice_rows_free(tl_notice_rows_t *list);

/* ---- the desk's report (docs/desk.md "Report") ------------------------------------------- */

typedef struct tl_escalation_rows {
    tl_escalation_row_t *rows;
    size_t count;
} tl_escalation_rows_t;

/* The escalations and de-escalations stamped in [since_ms, until_ms), oldest first, with their
 * ticket, time, actor and tiers (reason, summary and hash are left NULL); at most max_rows of
 * them, TL_EFULL beyond. */
int tl_store_escalations_between(tl_store_t *store, int64_t since_ms, int64_t until_ms,
                                 size_t max_rows, tl_escalation_rows_t *out);
void tl_escalation_rows_free(tl_escalation_rows_t *list);

/* ---- self-help's deflections (docs/kb.md "Self-help"; relay/store/store_sqlite_selfhelp.c) - */

/* A problem self-help solved on a device: the fix applied and the re-check that passed. */
typedef struct tl_deflection_new {
    int64_t device_id;
    const char *request_id;  /* the agent's request id (1..64 bytes): a repeat is the same row */
    const char *article;     /* the article's id (1..48 bytes) */
    const char *runbook;     /* the runbook applied (1..48 bytes) */
    const char *args;        /* its parameters, a JSON object's text */
    const char *fingerprint; /* the diagnostic fingerprint (64 hex), NULL when there is none */
    int64_t shown_ms, applied_ms, rechecked_ms;
    const char *outcome; /* "solved" */
} tl_deflection_new_t;

typedef struct tl_deflection_row {
    int64_t id;
    int64_t device_id;
    const char *request_id;
    const char *article;
    const char *runbook;
    const char *args;
    const char *fingerprint; /* NULL: none */
    int64_t shown_ms, applied_ms, rechecked_ms, created_ms;
    const char *outcome;
} tl_deflection_row_t;

typedef struct tl_deflection_rows {
    tl_deflection_row_t *rows;
    size_t count;
} tl_deflection_rows_t;

/*
 * Records a deflection, or finds the one the same device recorded with the same request id
 * (*created 0). TL_EINVAL for a field out of its bounds, TL_ENOTFOUND for no such device.
 */
int tl_store_deflection_add(tl_store_t *store, const tl_deflection_new_t *deflection,
                            int64_t now_ms, int64_t *id, int *created);
/* Deflections re-checked in [since_ms, until_ms), oldest first; at most max_rows of them,
 * TL_EFULL beyond. */
int tl_store_deflections_between(tl_store_t *store, int64_t since_ms, int64_t until_ms,
                                 size_t max_rows, tl_deflection_rows_t *out);
void tl_deflection_rows_free(tl_deflection_rows_t *list);
/* ---- the knowledge base (relay/store/store_sqlite_kb.c; docs/kb.md "The relay's knowledge
 * base") ------------------------------------------------------------------------------------
 *
 * Articles as an admin added them: the source text whole (the article is parsed again from it
 * wherever it is shown or sent), its SHA-256, and the columns a listing needs without parsing.
 * Whether an article parses, and whether its runbook is in the catalogue, is checked before
 * the store is asked.
 */

/* An article's source is at most this many bytes (proto/article.h TL_ARTICLE_TEXT_MAX). */
#define TL_STORE_MAX_ARTICLE (64 * 1024)
#define TL_KB_DRAFT "draft"
#define TL_KB_PUBLISHED "published"

typedef struct tl_kb_article_row {
    const char *id; /* 1..48 of a-z 0-9 -, not starting with - */
    const char *title;
    const char *category;      /* proto/vocab.h */
    const char *runbook;       /* NULL: it suggests none */
    const char *source;        /* the file as added; NULL in listings (tl_store_kb_articles_read) */
    const char *sha256;        /* of source, hex */
    const char *state;         /* TL_KB_DRAFT or TL_KB_PUBLISHED */
    int64_t revision;          /* 1, and one more each time it is replaced */
    const char *added_by;      /* "admin", "tech:carol" */
    int64_t added;             /* when the id was first added (ms) */
    int64_t updated;           /* when its text last changed */
    int64_t ticket_id;         /* the resolved ticket it was drafted from; 0: none */
    const char *published_by;  /* NULL until published */
    int64_t published;         /* ms; 0 until published */
    const char *needs_editing; /* a draft that cannot be published as it is: why; NULL */
    /* What self-help did with it on users' machines (filled by the agents' reports). */
    int64_t suggested;
    int64_t applied;
    int64_t recheck_passed;
} tl_kb_article_row_t;

typedef struct tl_kb_article_rows {
    tl_kb_article_row_t *rows;
    size_t count;
} tl_kb_article_rows_t;

/*
 * Adds an article (row->revision, the counts and the times are not read; state NULL is
 * published, and then published_by is added_by). TL_EEXIST when the id is taken, unless
 * replace: then its text columns, state and ticket become row's, its revision goes up by one,
 * and when it was first added, by whom, and its counts stay. *replaced (may be NULL) says which
 * happened. TL_EINVAL for an id, text or hash the store cannot hold.
 */
int tl_store_kb_article_add(tl_store_t *store, const tl_kb_article_row_t *row, int replace,
                            int64_t now_ms, int *replaced);
/* One article with its source; TL_ENOTFOUND. */
int tl_store_kb_article_read(tl_store_t *store, const char *id, tl_kb_article_row_t *out);
/* Articles in category and state (NULL: any), by id, without their source. */
int tl_store_kb_articles_read(tl_store_t *store, const char *category, const char *state,
                              tl_kb_article_rows_t *out);
/* Removes an article (its outcomes stay, for the report); TL_ENOTFOUND. */
int tl_store_kb_article_remove(tl_store_t *store, const char *id);
/*
 * Publishes a draft, as by ("admin") at now_ms. edited (NULL: the draft as it is) replaces its
 * title, category, runbook, source and sha256, and raises its revision; needs_editing is
 * cleared. TL_ENOTFOUND for no such article, TL_ESTATE for one published already, TL_EINVAL.
 */
int tl_store_kb_article_publish(tl_store_t *store, const char *id,
                                const tl_kb_article_row_t *edited, const char *by, int64_t now_ms);

/* What self-help did with a runbook, over every article that suggested it: its outcomes. */
typedef struct tl_kb_runbook_rate {
    const char *runbook;
    int64_t applied;
    int64_t recheck_passed;
} tl_kb_runbook_rate_t;

typedef struct tl_kb_runbook_rates {
    tl_kb_runbook_rate_t *rows;
    size_t count;
} tl_kb_runbook_rates_t;

/* Every runbook self-help applied, by name, with its applied and recheck-passed outcomes. */
int tl_store_kb_runbook_rates(tl_store_t *store, tl_kb_runbook_rates_t *out);
void tl_kb_runbook_rates_free(tl_kb_runbook_rates_t *list);

/* ---- runbook proposals (relay/store/store_sqlite_kb.c; docs/kb.md "Runbook proposals") ---- */

#define TL_RUNBOOK_PROPOSED "proposed"
#define TL_RUNBOOK_ACCEPTED "accepted"
#define TL_RUNBOOK_REJECTED "rejected"
/* A proposal's script and its metadata are at most this many bytes each. */
#define TL_STORE_MAX_PROPOSAL (1024 * 1024)

typedef struct tl_runbook_proposal_row {
    int64_t id;
    const char *name;     /* the runbook's name */
    const char *metadata; /* NAME.json as proposed; NULL in listings */
    const char *script;   /* the executable as proposed; NULL in listings */
    const char *sha256;   /* of the script */
    const char *state;    /* TL_RUNBOOK_PROPOSED, _ACCEPTED or _REJECTED */
    const char *proposed_by;
    int64_t proposed;
    int64_t ticket_id;      /* 0: none */
    const char *decided_by; /* NULL until accepted or rejected */
    int64_t decided;
    const char *reason; /* a rejection's; NULL */
} tl_runbook_proposal_row_t;

typedef struct tl_runbook_proposal_rows {
    tl_runbook_proposal_row_t *rows;
    size_t count;
} tl_runbook_proposal_rows_t;

/* Stores a proposal (state, id and decision are not read); *id its number. TL_EINVAL,
 * TL_ENOTFOUND (no such ticket). */
int tl_store_runbook_proposal_add(tl_store_t *store, const tl_runbook_proposal_row_t *row,
                                  int64_t now_ms, int64_t *id);
/* One proposal, with its metadata and script; TL_ENOTFOUND. */
int tl_store_runbook_proposal_read(tl_store_t *store, int64_t id, tl_runbook_proposal_row_t *out);
/* Proposals in state (NULL: any), by number, without metadata and script. */
int tl_store_runbook_proposals_read(tl_store_t *store, const char *state,
                                    tl_runbook_proposal_rows_t *out);
/* 1 if a proposal of that name is accepted or still proposed (other than except_id), 0 if not. */
int tl_store_runbook_proposal_name_taken(tl_store_t *store, const char *name, int64_t except_id);
/* Accepts or rejects a proposed one; TL_ENOTFOUND, TL_ESTATE (decided already). */
int tl_store_runbook_proposal_decide(tl_store_t *store, int64_t id, const char *state,
                                     const char *by, const char *reason, int64_t now_ms);
void tl_runbook_proposal_row_clear(tl_runbook_proposal_row_t *row);
void tl_runbook_proposal_rows_free(tl_runbook_proposal_rows_t *list);

/* The stages of self-help a device reports for an article (docs/kb.md), in funnel order. */
typedef enum tl_kb_stage {
    TL_KB_SUGGESTED,      /* shown to the user as a match */
    TL_KB_APPLIED,        /* its runbook was run with the user's consent */
    TL_KB_RECHECK_PASSED, /* the re-check found the problem gone */
    TL_KB_RECHECK_FAILED, /* ... or still there */
} tl_kb_stage_t;

/* An outcome of self-help (row->id is not read). */
typedef struct tl_kb_outcome_row {
    int64_t id;
    const char *article_id;
    int64_t device_id; /* 0: not known */
    int64_t time;
    tl_kb_stage_t stage;
    const char *runbook;     /* the runbook run; NULL */
    const char *fingerprint; /* the diagnostic fingerprint of the problem (relay/desk); NULL */
    int64_t ticket_id;       /* the ticket it ended in; 0: none */
} tl_kb_outcome_row_t;

/*
 * Records an outcome and counts it on its article, when the article is still there (suggested,
 * applied, recheck_passed; a failed re-check is counted by the funnel only). TL_EINVAL for a
 * stage or text the store cannot hold; TL_ENOTFOUND for a device or ticket that does not exist.
 */
int tl_store_kb_outcome_add(tl_store_t *store, const tl_kb_outcome_row_t *row);
/* "suggested", "applied", "recheck-passed", "recheck-failed"; NULL past them. */
const char *tl_kb_stage_name(tl_kb_stage_t stage);

void tl_kb_article_row_clear(tl_kb_article_row_t *row);
void tl_kb_article_rows_free(tl_kb_article_rows_t *list);

/* ---- the desk's report: self-help (docs/desk.md "Report") -------------------------------- */

typedef struct tl_kb_outcome_rows {
    tl_kb_outcome_row_t *rows;
    size_t count;
} tl_kb_outcome_rows_t;

/* The self-help outcomes stamped in [since_ms, until_ms), oldest first (strings owned by the
 * rows); at most max_rows, TL_EFULL beyond. relay/store/store_sqlite_report.c. */
int tl_store_kb_outcomes_between(tl_store_t *store, int64_t since_ms, int64_t until_ms,
                                 size_t max_rows, tl_kb_outcome_rows_t *out);
void tl_kb_outcome_rows_free(tl_kb_outcome_rows_t *list);

#endif
