/*
 * The relay's store: devices, enrollment codes, tickets and their timelines,
 * evidence records. SQLite today (one file, WAL), behind this one interface
 * so that a shared database can replace it (DESIGN.md §8); nothing outside
 * relay/store/store.c knows it is SQL.
 *
 * Calls are synchronous and must not run on the event loop: the relay calls
 * them from its storage worker, the admin commands call them directly. A
 * tl_store_t is used by one thread at a time. Identifiers (device and ticket
 * numbers) come from the store, never from a relay's memory. Times are
 * milliseconds since the Unix epoch, UTC.
 */
#ifndef TL_STORE_H
#define TL_STORE_H

#include <jansson.h>
#include <stdint.h>

typedef struct tl_store tl_store_t;

/* The schema version this program writes; older files are migrated on open. */
#define TL_STORE_SCHEMA_VERSION 4

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

/* Group commit: wrap several calls in one transaction, one fsync. */
int tl_store_begin(tl_store_t *store);
int tl_store_commit(tl_store_t *store);
void tl_store_rollback(tl_store_t *store);
/* Nested units inside a transaction: one job's changes, undone alone if it fails. */
int tl_store_savepoint(tl_store_t *store);
int tl_store_release(tl_store_t *store);
void tl_store_rollback_savepoint(tl_store_t *store);

/* ---- enrollment codes (only their SHA-256, hex, is stored) ---------------- */

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

/* TL_ENOTFOUND if the fingerprint belongs to no device. */
int tl_store_device_find(tl_store_t *store, const char *fingerprint, int64_t *device_id);
int tl_store_device_seen(tl_store_t *store, int64_t device_id, int64_t now_ms, int online);
/* At relay start: nobody is connected yet. */
int tl_store_devices_all_offline(tl_store_t *store);
/* A JSON array of device objects (id "D-n", fingerprint, hostname, os, ...). */
int tl_store_devices_list(tl_store_t *store, json_t **out);

/* ---- tickets --------------------------------------------------------------- */

typedef struct tl_ticket_new {
    int64_t device_id;
    const char *title;
    const char *description;
    int tier;
    /* The requester's idempotency key: the same (device, request_id) always
     * names the same ticket, so a re-sent request creates nothing new. */
    const char *request_id;
} tl_ticket_new_t;

/* *created is 1 for a new ticket, 0 when request_id named an existing one. */
int tl_store_ticket_create(tl_store_t *store, const tl_ticket_new_t *ticket, int64_t now_ms,
                           int64_t *ticket_id, int *created);
int tl_store_ticket_event(tl_store_t *store, int64_t ticket_id, int64_t now_ms, const char *actor,
                          const char *kind, json_t *details);
/*
 * Records an evidence item on a ticket. The content must already be durable
 * in the evidence store. Adding the same hash twice to a ticket is a no-op
 * (*added = 0).
 */
int tl_store_evidence_add(tl_store_t *store, int64_t ticket_id, const char *hash, const char *kind,
                          const char *name, uint64_t size, int64_t now_ms, int *added);
int tl_store_tickets_list(tl_store_t *store, json_t **out);
/* One ticket with "events" and "evidence" arrays; TL_ENOTFOUND if absent. */
int tl_store_ticket_get(tl_store_t *store, int64_t ticket_id, json_t **out);
/*
 * One ticket's own fields (device, assignee, status, ...) without its events
 * and evidence, which grow with every session: for callers that need only
 * those fields, so their cost stays the same however long the ticket's
 * history is. TL_ENOTFOUND if absent.
 */
int tl_store_ticket_fields(tl_store_t *store, int64_t ticket_id, json_t **out);

typedef struct tl_ticket_filter {
    int tier;             /* -1: any */
    const char *status;   /* NULL: any */
    const char *assignee; /* NULL: any */
} tl_ticket_filter_t;

int tl_store_tickets_query(tl_store_t *store, const tl_ticket_filter_t *filter, json_t **out);
/* Sets the assignee and/or status (NULL leaves it); TL_ENOTFOUND, TL_EINVAL. */
int tl_store_ticket_update(tl_store_t *store, int64_t ticket_id, const char *assignee,
                           const char *status, int64_t now_ms);
/* new, open, waiting-user, waiting-vendor, resolved, closed */
int tl_store_status_valid(const char *status);

/* ---- technicians and auditors -------------------------------------------------- */

/* Names: 1..64 of [a-z0-9._-], starting with a letter. */
int tl_store_user_name_valid(const char *name);
/* TL_EEXIST if the name or the key is taken. */
int tl_store_user_add(tl_store_t *store, const char *name, const char *role, const char *public_key,
                      const char *fingerprint, int64_t now_ms);
int tl_store_user_disable(tl_store_t *store, const char *name);
int tl_store_user_remove(tl_store_t *store, const char *name);
/* [{id, name, role, public_key, fingerprint, disabled, created}] by name. */
int tl_store_users_list(tl_store_t *store, json_t **out);
/* Changes when another connection commits (PRAGMA data_version): cheap reload checks. */
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

int tl_store_audit_head_get(tl_store_t *store, tl_store_audit_head_t *head);
int tl_store_audit_head_set(tl_store_t *store, uint64_t seq, const char *hash, int64_t now_ms);
/* One line of the chain that the log may not hold yet; line is the whole line, newline included. */
int tl_store_audit_outbox_add(tl_store_t *store, uint64_t seq, const char *hash, const char *line,
                              int64_t now_ms);
/*
 * The head and the first max_rows outbox rows [{seq, hash, line, created}] by seq, read as one
 * snapshot (in a read transaction of its own unless one is open).
 */
int tl_store_audit_outbox_list(tl_store_t *store, size_t max_rows, tl_store_audit_head_t *head,
                               json_t **rows);
int tl_store_audit_outbox_delete(tl_store_t *store, uint64_t up_to_seq);
/* How many rows wait, and when the oldest was staged (0 if none). oldest_ms may be NULL. */
int tl_store_audit_outbox_count(tl_store_t *store, uint64_t *count, int64_t *oldest_ms);

/*
 * Audit entries an older relay (schema 3) committed with their change and had not yet written:
 * [{id, time, actor, action, subject, details}] oldest first. The chain takes them over at start.
 */
int tl_store_audit_pending_list(tl_store_t *store, json_t **out);
int tl_store_audit_pending_clear(tl_store_t *store, int64_t up_to_id);

/* Every evidence row [{hash, ticket: "T-n", name, kind}], by hash. */
int tl_store_evidence_all(tl_store_t *store, json_t **out);

/* "T-42" <-> 42 and "D-7" <-> 7; parsing is strict (TL_EINVAL). */
int tl_store_parse_id(const char *text, char prefix, int64_t *out);

#endif
