/* audit-recover (relay/integrity.h). */
#include "relay/integrity.h"
#include "proto/err.h"
#include "relay/audit_chain.h"
#include "relay/datadir.h"
#include "relay/status.h"
#include "relay/store.h"

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
