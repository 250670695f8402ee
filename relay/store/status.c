/* `tierline-relay status` and what a serving relay leaves for it (relay/store/status.h). */
#include "relay/store/status.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/text.h"
#include "relay/store/audit.h"
#include "relay/store/datadir.h"
#include "relay/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int tl_status_lock(const char *data_dir, int *fd_out)
{
    char path[4096];
    *fd_out = -1;
    int rc = tl_datadir_path(data_dir, TL_DATADIR_LOCK, path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? TL_EEXIST : -errno;
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int tl_status_serving(const char *data_dir)
{
    char path[4096];
    int rc = tl_datadir_path(data_dir, TL_DATADIR_LOCK, path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
        rc = 0; /* nobody holds it; closing lets go of ours */
    else
        rc = errno == EWOULDBLOCK ? 1 : -errno;
    close(fd);
    return rc;
}

int tl_status_write(const char *path, json_t *state)
{
    size_t len = 0;
    char *text = tl_text_json_line(state, JSON_COMPACT, &len);
    if (text == NULL)
        return TL_ENOMEM;
    /* No fsync: the file describes a live process and is rewritten when that changes. */
    int rc = tl_fs_write_atomic(path, text, len, TL_FS_NOFOLLOW, NULL);
    free(text);
    return rc;
}

/* ---- the report ----------------------------------------------------------------------------
 */

struct findings {
    int serving;
    json_t *state; /* the serving relay's state file, if any */
    tl_store_audit_head_t head;
    uint64_t waiting;
    int64_t oldest_ms;
    size_t legacy;
    int log_rc;
    uint64_t log_seq, tail_bytes;
    char log_hash[TL_AUDIT_HASH_HEX];
    char log_why[256];
    tl_audit_problem_t check; /* the log judged against the store, as serve would at start */
    int healthy;
    const char *problem;
    int64_t since_ms;
};

/* The log against the store's head and outbox: what `serve` would say at start. */
static int judge_log(tl_store_t *store, const char *log_path, struct findings *f)
{
    tl_audit_outbox_rows_t rows;
    tl_audit_line_t *lines = NULL;
    /* The log first, then the store: a writer stages (head) before it writes (log), so a log
     * read first can only be behind the head it is compared with, never ahead. */
    f->log_rc = tl_audit_peek(log_path, &f->log_seq, f->log_hash, &f->tail_bytes, f->log_why,
                              sizeof f->log_why);
    int rc = tl_store_audit_outbox_read(store, SIZE_MAX, &f->head, &rows);
    if (rc != 0)
        return rc;
    size_t count = rows.count;
    f->waiting = count;
    f->oldest_ms = 0;
    if (count > 0 && (lines = calloc(count, sizeof *lines)) == NULL) {
        tl_audit_outbox_rows_free(&rows);
        return TL_ENOMEM;
    }
    for (size_t i = 0; i < rows.count; i++) {
        const tl_audit_outbox_row_t *row = &rows.rows[i];
        lines[i].seq = row->seq;
        lines[i].text = row->line;
        lines[i].len = row->line != NULL ? strlen(row->line) : 0;
        if (lines[i].text == NULL ||
            tl_audit_line_links(lines[i].text, lines[i].len, lines[i].hash, lines[i].prev) != 0)
            count = 0; /* a damaged outbox: judge by the head alone */
        if (i == 0)
            f->oldest_ms = row->created;
    }
    memset(&f->check, 0, sizeof f->check);
    if (f->log_rc == -ENOENT) {
        f->check.verdict = TL_AUDIT_MISSING;
        snprintf(f->check.text, sizeof f->check.text,
                 "audit log %.300s is missing but the database head is seq %" PRIu64
                 " (hash %.16s...): %" PRIu64 " entries missing",
                 log_path, f->head.seq, f->head.hash, f->head.seq);
    } else if (f->log_rc != 0) {
        f->check.verdict = f->log_rc == TL_EPROTO ? TL_AUDIT_DAMAGED : TL_AUDIT_UNREADABLE;
        snprintf(f->check.text, sizeof f->check.text,
                 "audit log %.200s cannot be continued: %.250s", log_path, f->log_why);
    } else if (f->head.known) {
        if (count > 0 && lines[count - 1].seq != f->head.seq)
            count = 0;
        tl_audit_target_t target = {f->head.seq, f->head.hash, lines, count};
        tl_audit_compare(f->log_seq, f->log_hash, &target, &f->check);
    }
    free(lines);
    tl_audit_outbox_rows_free(&rows);
    return 0;
}

static json_t *read_state(const char *data_dir)
{
    char path[4096];
    if (tl_datadir_path(data_dir, TL_DATADIR_STATE, path, sizeof path) != 0)
        return NULL;
    json_t *state = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(state)) {
        json_decref(state);
        return NULL;
    }
    return state;
}

static int gather(const char *data_dir, struct findings *f, FILE *err)
{
    char db_path[4096], log_path[4096];
    tl_store_t *store = NULL;
    tl_audit_pending_rows_t legacy = {0};
    int rc;
    if ((rc = tl_datadir_path(data_dir, TL_DATADIR_DB, db_path, sizeof db_path)) != 0 ||
        (rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path)) != 0)
        goto out;
    f->serving = tl_status_serving(data_dir);
    if (f->serving < 0) {
        fprintf(err, "tierline-relay status: cannot tell whether a relay serves %s: %s\n", data_dir,
                tl_strerror(f->serving));
        rc = f->serving;
        goto out;
    }
    if (f->serving)
        f->state = read_state(data_dir);
    if ((rc = tl_store_open(db_path, TL_STORE_OPEN_EXISTING, &store)) != 0) {
        fprintf(err, "tierline-relay status: cannot open the store %s: %s\n", db_path,
                tl_strerror(rc));
        goto out;
    }
    if ((rc = judge_log(store, log_path, f)) != 0 ||
        (rc = tl_store_audit_pending_read(store, &legacy)) != 0) {
        fprintf(err, "tierline-relay status: cannot read the audit chain: %s\n", tl_strerror(rc));
        goto out;
    }
    f->legacy = legacy.count;

    json_t *audit = json_object_get(f->state, "audit");
    if (f->serving && json_is_true(json_object_get(audit, "failing"))) {
        /* The relay's own word: it failed to write and refuses audited actions. */
        f->healthy = 0;
        f->problem = json_string_value(json_object_get(audit, "problem"));
        f->since_ms = json_integer_value(json_object_get(audit, "since"));
    } else if (f->check.verdict != TL_AUDIT_IN_STEP) {
        f->healthy = 0;
        f->problem = f->check.text;
    } else if (!f->head.known) {
        f->healthy = 0;
        f->problem = "the database records no audit chain head yet (a relay from before it was "
                     "kept): serve takes it from the log at start";
    } else {
        f->healthy = 1;
    }
    if (f->problem == NULL)
        f->problem = "";
out:
    tl_audit_pending_rows_free(&legacy);
    tl_store_close(store);
    return rc;
}

static void print_text(const struct findings *f, FILE *out)
{
    char when[TL_UTC_TEXT];
    if (f->serving) {
        json_t *pid = json_object_get(f->state, "pid");
        tl_format_utc(json_integer_value(json_object_get(f->state, "started")), when);
        if (json_is_integer(pid))
            fprintf(out, "relay:       serving (pid %" JSON_INTEGER_FORMAT ", since %s)\n",
                    json_integer_value(pid), when);
        else
            fprintf(out, "relay:       serving\n");
    } else {
        fprintf(out, "relay:       not serving\n");
    }
    if (f->healthy) {
        fprintf(out, "audit log:   healthy\n");
    } else if (f->serving && f->since_ms > 0) {
        tl_format_utc(f->since_ms, when);
        fprintf(out, "audit log:   FAILING since %s: %s\n", when, f->problem);
        fprintf(out, "             audited actions are refused until it can be written\n");
    } else if (f->serving) {
        fprintf(out, "audit log:   FAILING: %s\n", f->problem);
        fprintf(out, "             audited actions are refused until it can be written\n");
    } else {
        fprintf(out, "audit log:   FAILING: %s\n", f->problem);
        fprintf(out, "             serve and enroll-code refuse to start until it is fixed "
                     "(see tierline-relay audit-recover)\n");
    }
    if (f->head.known)
        fprintf(out, "chain head:  seq %" PRIu64 ", hash %s (database)\n", f->head.seq,
                f->head.hash);
    else
        fprintf(out, "chain head:  not recorded\n");
    if (f->log_rc == 0)
        fprintf(out, "log ends at: seq %" PRIu64 ", hash %s\n", f->log_seq, f->log_hash);
    else
        fprintf(out, "log ends at: unknown: %s\n", f->log_why);
    if (f->waiting > 0) {
        tl_format_utc(f->oldest_ms, when);
        fprintf(out,
                "waiting:     %" PRIu64 " entries staged in the database, not yet in the log "
                "(oldest %s)\n",
                f->waiting, when);
    } else {
        fprintf(out, "waiting:     0 entries staged in the database, not yet in the log\n");
    }
    if (f->legacy > 0)
        fprintf(out,
                "             %zu entries left by an older relay (written at the next start)\n",
                f->legacy);
}

static json_t *as_json(const struct findings *f)
{
    json_t *audit = json_pack("{s:b, s:s, s:s}", "healthy", f->healthy, "problem", f->problem,
                              "source", f->serving && f->since_ms > 0 ? "relay" : "check");
    json_object_set_new(audit, "since", f->since_ms > 0 ? json_integer(f->since_ms) : json_null());
    json_t *head = f->head.known ? json_pack("{s:I, s:s}", "seq", (json_int_t)f->head.seq, "hash",
                                             f->head.hash)
                                 : json_null();
    json_t *log = f->log_rc == 0
                      ? json_pack("{s:I, s:s, s:I}", "seq", (json_int_t)f->log_seq, "hash",
                                  f->log_hash, "tail_bytes", (json_int_t)f->tail_bytes)
                      : json_pack("{s:s}", "error", f->log_why);
    json_t *report = json_pack(
        "{s:b, s:o, s:o, s:o, s:{s:I, s:o, s:I}}", "serving", f->serving, "audit", audit, "head",
        head, "log", log, "pending", "outbox", (json_int_t)f->waiting, "oldest",
        f->waiting > 0 ? json_integer(f->oldest_ms) : json_null(), "legacy", (json_int_t)f->legacy);
    if (report != NULL && f->serving) {
        json_t *pid = json_object_get(f->state, "pid"),
               *started = json_object_get(f->state, "started");
        json_object_set_new(report, "pid", pid != NULL ? json_incref(pid) : json_null());
        json_object_set_new(report, "started",
                            started != NULL ? json_incref(started) : json_null());
    }
    return report;
}

int tl_status_report(const char *data_dir, int json, FILE *out, FILE *err)
{
    struct findings f;
    memset(&f, 0, sizeof f);
    int status = 2;
    if (gather(data_dir, &f, err) != 0)
        goto out;
    if (json) {
        json_t *report = as_json(&f);
        char *text =
            report != NULL ? json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(report);
        if (text == NULL) {
            fprintf(err, "tierline-relay status: out of memory\n");
            goto out;
        }
        fprintf(out, "%s\n", text);
        free(text);
    } else {
        print_text(&f, out);
    }
    status = f.healthy ? 0 : 1;
out:
    json_decref(f.state);
    return status;
}
