/* audit-recover and evidence verify (relay/store/integrity.h). */
#include "relay/store/integrity.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "relay/store/audit_chain.h"
#include "relay/store/datadir.h"
#include "relay/store/evidence.h"
#include "relay/store/status.h"
#include "relay/store/store.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "tierline-relay"

static int print_json(json_t *value, FILE *out)
{
    char *text = value != NULL ? json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text == NULL)
        return TL_ENOMEM;
    fprintf(out, "%s\n", text);
    free(text);
    return 0;
}

/* Who ran the command, for the record: the login behind sudo too. */
static json_t *who_ran_it(void)
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    json_t *by =
        json_pack("{s:s, s:I}", "user", pw != NULL ? pw->pw_name : "?", "uid", (json_int_t)uid);
    const char *sudo_user = getenv("SUDO_USER");
    if (by != NULL && sudo_user != NULL && sudo_user[0] != '\0' && strlen(sudo_user) <= 64) {
        json_t *name = json_string(sudo_user); /* NULL for text that is not UTF-8 */
        if (name != NULL)
            json_object_set_new(by, "sudo_user", name);
    }
    return by;
}

int tl_integrity_audit_recover(const char *data_dir, int json, FILE *out, FILE *err)
{
    char db_path[4096], log_path[4096], problem[768];
    tl_store_t *store = NULL;
    json_t *by = NULL, *report = NULL;
    int lock_fd = -1, recovered = 0, status = 1;
    int rc = tl_datadir_path(data_dir, TL_DATADIR_DB, db_path, sizeof db_path);
    if (rc == 0)
        rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path);
    if (rc != 0) {
        fprintf(err, PROGRAM " audit-recover: bad --data: %s\n", tl_strerror(rc));
        goto out;
    }
    /* Holding the serve lock: no relay may start (or run) while the log's end is rewritten. */
    if ((rc = tl_status_lock(data_dir, &lock_fd)) != 0) {
        if (rc == TL_EEXIST)
            fprintf(err, PROGRAM " audit-recover: a relay is serving %s: stop it first\n",
                    data_dir);
        else
            fprintf(err, PROGRAM " audit-recover: cannot lock %s: %s\n", data_dir, tl_strerror(rc));
        goto out;
    }
    if ((rc = tl_store_open(db_path, TL_STORE_OPEN_EXISTING, &store)) != 0) {
        fprintf(err, PROGRAM " audit-recover: cannot open the store %s: %s\n", db_path,
                tl_strerror(rc));
        goto out;
    }
    if ((by = who_ran_it()) == NULL) {
        fprintf(err, PROGRAM " audit-recover: out of memory\n");
        goto out;
    }
    rc = tl_audit_chain_recover(store, log_path, by, &report, &recovered, problem, sizeof problem);
    if (rc != 0) {
        fprintf(err, PROGRAM " audit-recover: %s\n", problem[0] ? problem : tl_strerror(rc));
        goto out;
    }
    status = 0;
    if (json) {
        print_json(report, out);
        goto out;
    }
    if (!recovered) {
        fprintf(out, "The audit log and the database agree: nothing to recover.\n");
        goto out;
    }
    json_t *entry = json_object_get(report, "entry");
    json_t *kept = json_object_get(entry, "log_kept");
    json_t *head = json_object_get(entry, "database_head");
    json_t *copy = json_object_get(entry, "damaged_copy");
    fprintf(out, "Found: %s\n", json_string_value(json_object_get(entry, "problem")));
    fprintf(out,
            "Recovered: the log keeps its entries up to seq %" JSON_INTEGER_FORMAT
            "; a new segment starts after them with an audit.recover entry that records the "
            "database head (seq %" JSON_INTEGER_FORMAT ") and %" JSON_INTEGER_FORMAT
            " lost entries.\n",
            json_integer_value(json_object_get(kept, "seq")),
            json_integer_value(json_object_get(head, "seq")),
            json_integer_value(json_object_get(entry, "entries_lost")));
    if (json_is_string(copy))
        fprintf(out, "The damaged log is kept whole as %s.\n", json_string_value(copy));
    if (json_integer_value(json_object_get(entry, "outbox_rewritten")) > 0)
        fprintf(out,
                "%" JSON_INTEGER_FORMAT " entries that waited in the database were written after "
                "it, marked \"recovered\".\n",
                json_integer_value(json_object_get(entry, "outbox_rewritten")));
    fprintf(out, "Check the chain with: " PROGRAM " audit-verify --data %s\n", data_dir);
out:
    json_decref(report);
    json_decref(by);
    tl_store_close(store);
    if (lock_fd >= 0)
        close(lock_fd);
    return status;
}

/* ---- evidence verify ---------------------------------------------------------------------- */

struct evidence_check {
    tl_evidence_store_t *evidence;
    json_t *tickets; /* hash -> ["T-1", ...] from the store */
    json_t *damaged; /* [{sha256, tickets, reason}] */
    uint64_t checked;
};

static json_t *tickets_of(struct evidence_check *check, const char *hash)
{
    json_t *list = json_object_get(check->tickets, hash);
    return list != NULL ? json_incref(list) : json_array();
}

static int check_item(const char *hash, void *arg)
{
    struct evidence_check *check = arg;
    char reason[128];
    check->checked++;
    int rc = tl_evidence_verify(check->evidence, hash, reason, sizeof reason);
    if (rc == 0)
        return 0;
    if (rc != TL_EDAMAGED) /* cannot be read (I/O, permissions): as bad for a download */
        snprintf(reason, sizeof reason, "cannot be read: %s", tl_strerror(rc));
    json_array_append_new(check->damaged, json_pack("{s:s, s:o, s:s}", "sha256", hash, "tickets",
                                                    tickets_of(check, hash), "reason", reason));
    return 0;
}

static void print_list(FILE *out, const char *label, json_t *items)
{
    size_t i, j;
    json_t *item, *ticket;
    json_array_foreach(items, i, item)
    {
        fprintf(out, "%-8s %s  tickets:", label,
                json_string_value(json_object_get(item, "sha256")));
        json_t *tickets = json_object_get(item, "tickets");
        json_array_foreach(tickets, j, ticket) fprintf(out, " %s", json_string_value(ticket));
        if (json_array_size(tickets) == 0)
            fprintf(out, " (none)");
        const char *reason = json_string_value(json_object_get(item, "reason"));
        fprintf(out, "  (%s)\n", reason != NULL ? reason : "");
    }
}

int tl_integrity_evidence_verify(const char *data_dir, int json, FILE *out, FILE *err)
{
    char db_path[4096], evidence_path[4096];
    tl_store_t *store = NULL;
    tl_evidence_rows_t rows = {0};
    json_t *missing = json_array();
    struct evidence_check check = {.tickets = json_object(), .damaged = json_array()};
    int status = 1;
    int rc = tl_datadir_path(data_dir, TL_DATADIR_DB, db_path, sizeof db_path);
    if (rc == 0)
        rc = tl_datadir_path(data_dir, TL_DATADIR_EVIDENCE, evidence_path, sizeof evidence_path);
    if (rc != 0 || missing == NULL || check.tickets == NULL || check.damaged == NULL) {
        fprintf(err, PROGRAM " evidence verify: %s\n", tl_strerror(rc != 0 ? rc : TL_ENOMEM));
        goto out;
    }
    if ((rc = tl_store_open(db_path, TL_STORE_OPEN_EXISTING, &store)) != 0 ||
        (rc = tl_store_evidence_read(store, &rows)) != 0) {
        fprintf(err, PROGRAM " evidence verify: cannot read the store %s: %s\n", db_path,
                tl_strerror(rc));
        goto out;
    }
    if ((rc = tl_evidence_store_open(evidence_path, NULL, &check.evidence)) != 0) {
        fprintf(err, PROGRAM " evidence verify: cannot open the evidence store %s: %s\n",
                evidence_path, tl_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < rows.count; i++) {
        const char *hash = rows.rows[i].hash;
        char ticket[TL_ID_TEXT];
        json_t *list = json_object_get(check.tickets, hash);
        if (list == NULL) {
            list = json_array();
            json_object_set_new(check.tickets, hash, list);
        }
        json_array_append_new(
            list, json_string(tl_id_format(ticket, TL_ID_TICKET, rows.rows[i].ticket_id)));
    }
    /* Every stored item, re-hashed; then what the tickets name but the disk lacks. */
    if ((rc = tl_evidence_foreach(check.evidence, check_item, &check)) != 0) {
        fprintf(err, PROGRAM " evidence verify: cannot list %s: %s\n", evidence_path,
                tl_strerror(rc));
        goto out;
    }
    const char *hash;
    json_t *list;
    json_object_foreach(check.tickets, hash, list)
    {
        if (tl_evidence_exists(check.evidence, hash) != 1)
            json_array_append_new(missing, json_pack("{s:s, s:O, s:s}", "sha256", hash, "tickets",
                                                     list, "reason", "not in the evidence store"));
    }
    size_t bad = json_array_size(check.damaged) + json_array_size(missing);
    if (json) {
        json_t *report = json_pack("{s:I, s:O, s:O}", "checked", (json_int_t)check.checked,
                                   "damaged", check.damaged, "missing", missing);
        print_json(report, out);
        json_decref(report);
    } else {
        print_list(out, "DAMAGED", check.damaged);
        print_list(out, "MISSING", missing);
        fprintf(out, "evidence: %" PRIu64 " items checked, %zu damaged, %zu missing\n",
                check.checked, json_array_size(check.damaged), json_array_size(missing));
    }
    status = bad > 0 ? 1 : 0;
out:
    tl_evidence_store_close(check.evidence);
    tl_store_close(store);
    tl_evidence_rows_free(&rows);
    json_decref(missing);
    json_decref(check.tickets);
    json_decref(check.damaged);
    return status;
}
