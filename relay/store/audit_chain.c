/* The audit chain's head and outbox in the store, and the log kept in step with them. */
#include "relay/store/audit_chain.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
/* Outbox lines written per round of a flush: bounds memory whatever waits. */
#define FLUSH_ROWS 512
/* Rounds of one flush: 512 x 4096 lines is more than any backlog the relay can build. */
#define FLUSH_ROUNDS 4096

struct tl_audit_chain {
    tl_store_t *store;
    tl_audit_t *audit; /* NULL while the log cannot be opened */
    char *path;
    int healthy;
    uint64_t staged;
    char problem[768];
};

static void set_problem(tl_audit_chain_t *chain, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_problem(tl_audit_chain_t *chain, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    tl_format_v(chain->problem, sizeof chain->problem, fmt, args);
    va_end(args);
}

const char *tl_audit_chain_problem(const tl_audit_chain_t *chain)
{
    return chain->problem;
}

uint64_t tl_audit_chain_staged(const tl_audit_chain_t *chain)
{
    return chain->staged;
}

void tl_audit_chain_forget_staged(tl_audit_chain_t *chain)
{
    chain->staged = 0;
}

int tl_audit_chain_stage(tl_audit_chain_t *chain, const tl_audit_entry_t *entry, uint64_t *seq_out)
{
    tl_store_audit_head_t head;
    char *line = NULL;
    size_t len = 0;
    char hash[TL_AUDIT_HASH_HEX], prev[TL_AUDIT_HASH_HEX];
    int rc = tl_store_audit_head_get(chain->store, &head);
    if (rc != 0)
        goto out;
    if (!head.known) {
        rc = TL_ESTORE; /* tl_audit_chain_open records one before anything is staged */
        goto out;
    }
    if ((rc = tl_audit_format_entry(entry, head.seq + 1, head.hash, &line, &len)) != 0 ||
        (rc = tl_audit_line_links(line, len, hash, prev)) != 0)
        goto out;
    int64_t now = tl_wall_ms();
    if ((rc = tl_store_audit_outbox_add(chain->store, head.seq + 1, hash, line, now)) != 0 ||
        (rc = tl_store_audit_head_set(chain->store, head.seq + 1, hash, now)) != 0)
        goto out;
    chain->staged++;
    if (seq_out != NULL)
        *seq_out = head.seq + 1;
out:
    free(line);
    return rc;
}

/* The outbox rows as lines for tl_audit_sync; *lines_out is freed by the caller (rows own the
 * text). */
static int rows_to_lines(const tl_audit_outbox_rows_t *rows, tl_audit_line_t **lines_out)
{
    size_t count = rows->count;
    *lines_out = NULL;
    if (count == 0)
        return 0;
    tl_audit_line_t *lines = calloc(count, sizeof *lines);
    if (lines == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const tl_audit_outbox_row_t *row = &rows->rows[i];
        lines[i].seq = row->seq;
        lines[i].text = row->line;
        lines[i].len = row->line != NULL ? strlen(row->line) : 0;
        if (lines[i].text == NULL ||
            tl_audit_line_links(lines[i].text, lines[i].len, lines[i].hash, lines[i].prev) != 0 ||
            row->hash == NULL || strcmp(lines[i].hash, row->hash) != 0) {
            tl_log_error("audit outbox row is malformed seq=%" PRIu64, lines[i].seq);
            free(lines);
            return TL_ESTORE;
        }
    }
    *lines_out = lines;
    return 0;
}

/* Opens the log if the chain has none open (it was missing or unreadable before). */
static int ensure_log(tl_audit_chain_t *chain, const tl_store_audit_head_t *head)
{
    if (chain->audit != NULL)
        return 0;
    char why[256];
    int rc = tl_audit_open_ex(chain->path, TL_AUDIT_OPEN_EXISTING | TL_AUDIT_OPEN_EXTERNAL_REPAIR,
                              &chain->audit, why, sizeof why);
    if (rc == -ENOENT)
        set_problem(chain,
                    "audit log %s is missing but the database head is seq %" PRIu64
                    " (hash %.16s...): %" PRIu64 " entries missing",
                    chain->path, head->seq, head->hash, head->seq);
    else if (rc == TL_EPROTO)
        set_problem(chain,
                    "audit log %s cannot be continued: %s; the database head is seq %" PRIu64
                    " (hash %.16s...)",
                    chain->path, why, head->seq, head->hash);
    else if (rc != 0)
        set_problem(chain, "audit log %s: %s", chain->path, why);
    return rc;
}

/* One round: up to FLUSH_ROWS outbox lines into the log. *more when rows were left. */
static int flush_round(tl_audit_chain_t *chain, int *more)
{
    tl_store_audit_head_t head;
    tl_audit_outbox_rows_t rows;
    tl_audit_line_t *lines = NULL;
    tl_audit_problem_t problem;
    *more = 0;
    int rc = tl_store_audit_outbox_read(chain->store, FLUSH_ROWS, &head, &rows);
    if (rc != 0) {
        set_problem(chain, "cannot read the audit chain from the database: %s", tl_strerror(rc));
        goto out;
    }
    if (!head.known) {
        rc = TL_ESTORE;
        set_problem(chain, "the database records no audit chain head");
        goto out;
    }
    if ((rc = rows_to_lines(&rows, &lines)) != 0) {
        set_problem(chain, "the database's audit outbox is damaged: %s", tl_strerror(rc));
        goto out;
    }
    size_t count = rows.count;
    *more = count == FLUSH_ROWS;
    if (count > 0 && !*more && lines[count - 1].seq != head.seq) {
        rc = TL_ESTORE;
        set_problem(chain,
                    "the database's audit chain is inconsistent: head seq %" PRIu64
                    " but the last waiting line is seq %" PRIu64,
                    head.seq, lines[count - 1].seq);
        goto out;
    }
    tl_audit_target_t target = {
        .head_seq = count > 0 ? lines[count - 1].seq : head.seq,
        .head_hash = count > 0 ? lines[count - 1].hash : head.hash,
        .lines = lines,
        .count = count,
    };
    if ((rc = ensure_log(chain, &head)) != 0)
        goto out;
    rc = tl_audit_sync(chain->audit, &target, &problem);
    if (rc != 0) {
        if (problem.verdict == TL_AUDIT_MISSING)
            set_problem(chain,
                        "audit log %s is missing (replaced or removed while in use) but the "
                        "database head is seq %" PRIu64 " (hash %.16s...)",
                        chain->path, head.seq, head.hash);
        else
            set_problem(chain, "%s", problem.text);
        goto out;
    }
    if (!*more && problem.log_seq > target.head_seq) {
        /* The log went on past what was read: fine only if the store knows those entries
         * (another writer staged them, committed, then wrote them). */
        tl_store_audit_head_t now;
        if ((rc = tl_store_audit_head_get(chain->store, &now)) != 0) {
            set_problem(chain, "cannot read the audit chain from the database: %s",
                        tl_strerror(rc));
            goto out;
        }
        if (problem.log_seq > now.seq) {
            rc = TL_EAUDIT;
            set_problem(chain,
                        "audit log goes on past the database's head: it ends at seq %" PRIu64
                        " but the database head is seq %" PRIu64 " (hash %.16s...): %" PRIu64
                        " entries the database does not know",
                        problem.log_seq, now.seq, now.hash, problem.log_seq - now.seq);
            goto out;
        }
    }
    if (count > 0 && (rc = tl_store_audit_outbox_delete(chain->store, target.head_seq)) != 0)
        set_problem(chain, "cannot clear written lines from the database: %s", tl_strerror(rc));
out:
    free(lines);
    tl_audit_outbox_rows_free(&rows);
    return rc;
}

/* What a unit of work of the chain's own needs. */
struct stage_call {
    tl_audit_chain_t *chain;
    const tl_audit_entry_t *entry;
    const tl_audit_pending_rows_t *rows;
    uint64_t seq;
    const char *hash;
};

/* One entry staged as a unit of work of its own. */
static int stage_one(tl_store_t *store, void *arg)
{
    const struct stage_call *call = arg;
    (void)store;
    return tl_audit_chain_stage(call->chain, call->entry, NULL);
}

/* A torn tail the log cut is itself on the record: staged and written like any entry. */
static int record_repair(tl_audit_chain_t *chain, int *recorded)
{
    uint64_t bytes = 0;
    char sha[TL_AUDIT_HASH_HEX];
    *recorded = 0;
    if (chain->audit == NULL || !tl_audit_take_repair(chain->audit, &bytes, sha))
        return 0;
    json_t *details =
        json_pack("{s:I, s:s}", "removed_bytes", (json_int_t)bytes, "removed_sha256", sha);
    tl_audit_entry_t entry = {
        .actor = "relay", .action = "audit.repair", .subject = "", .details = details};
    struct stage_call call = {.chain = chain, .entry = &entry};
    int rc = details != NULL ? tl_store_unit_run(chain->store, stage_one, &call) : TL_ENOMEM;
    json_decref(details);
    if (rc != 0)
        tl_log_error("audit log repair not recorded removed_bytes=%" PRIu64 " sha256=%s reason=%s",
                     bytes, sha, tl_strerror(rc));
    *recorded = rc == 0;
    return rc;
}

int tl_audit_chain_flush(tl_audit_chain_t *chain)
{
    int rc = 0, more = 1, recorded = 0;
    /* Twice at most: a repair found on the way is recorded and written in a second pass. */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        more = 1;
        for (int round = 0; round < FLUSH_ROUNDS && more && rc == 0; round++)
            rc = flush_round(chain, &more);
        if (rc == 0 && more) {
            rc = TL_EAUDIT;
            set_problem(chain, "the audit outbox holds more lines than one flush writes");
        }
        if (rc == 0 && (rc = record_repair(chain, &recorded)) != 0)
            set_problem(chain, "cannot record the repair of the audit log: %s", tl_strerror(rc));
        if (!recorded)
            break;
    }
    chain->staged = 0;
    chain->healthy = rc == 0;
    if (rc == 0)
        chain->problem[0] = '\0';
    return rc == 0 ? 0 : TL_EAUDIT;
}

int tl_audit_chain_waiting(tl_audit_chain_t *chain)
{
    if (!chain->healthy || chain->staged > 0)
        return 1;
    uint64_t count = 0;
    int rc = tl_store_audit_outbox_count(chain->store, &count, NULL);
    if (rc != 0)
        return rc;
    return count > 0;
}

/* Entries an older relay committed with their change but had not written (schema 3). */
static int adopt_rows(tl_store_t *store, void *arg)
{
    tl_audit_chain_t *chain = ((struct stage_call *)arg)->chain;
    const tl_audit_pending_rows_t *rows = ((struct stage_call *)arg)->rows;
    int64_t max_id = 0;
    int rc = 0;
    for (size_t i = 0; i < rows->count && rc == 0; i++) {
        const tl_audit_pending_row_t *row = &rows->rows[i];
        json_t *details = row->details != NULL ? json_loads(row->details, 0, NULL) : NULL;
        if (details == NULL)
            details = json_object();
        json_object_set_new(details, "recovered", json_true());
        tl_audit_entry_t entry = {row->actor, row->action, row->subject, details, 0};
        if (entry.actor == NULL || entry.action == NULL)
            rc = TL_ESTORE;
        if (rc == 0)
            rc = tl_audit_chain_stage(chain, &entry, NULL);
        json_decref(details);
        if (rc == 0)
            max_id = row->id;
    }
    if (rc == 0)
        rc = tl_store_audit_pending_clear(store, max_id);
    return rc;
}

static int adopt_pending(tl_audit_chain_t *chain)
{
    tl_audit_pending_rows_t rows;
    int rc = tl_store_audit_pending_read(chain->store, &rows);
    if (rc != 0 || rows.count == 0) {
        tl_audit_pending_rows_free(&rows);
        return rc;
    }
    struct stage_call call = {.chain = chain, .rows = &rows};
    rc = tl_store_unit_run(chain->store, adopt_rows, &call);
    if (rc == 0)
        tl_log_warn("audit entries an older relay left unwritten are written now count=%zu",
                    rows.count);
    tl_audit_pending_rows_free(&rows);
    return rc;
}

static int set_head(tl_store_t *store, void *arg)
{
    const struct stage_call *call = arg;
    return tl_store_audit_head_set(store, call->seq, call->hash, tl_wall_ms());
}

static int set_head_now(tl_store_t *store, uint64_t seq, const char *hash)
{
    struct stage_call call = {.seq = seq, .hash = hash};
    return tl_store_unit_run(store, set_head, &call);
}

/* Opens the log for a chain whose head the store does not know yet. */
static int open_without_head(tl_audit_chain_t *chain, unsigned flags)
{
    char why[256];
    int rc;
    if (flags & TL_AUDIT_CHAIN_CREATE) {
        rc = tl_audit_open_ex(chain->path, TL_AUDIT_OPEN_EXTERNAL_REPAIR, &chain->audit, why,
                              sizeof why);
        if (rc != 0) {
            set_problem(chain, "audit log %s: %s", chain->path, why);
            return rc;
        }
        if (tl_audit_last_seq(chain->audit) != 0) {
            set_problem(chain, "audit log %s already holds entries", chain->path);
            return TL_EEXIST;
        }
        rc = set_head_now(chain->store, 0, GENESIS);
    } else {
        /* A store from before the head was kept: the log as it is becomes the head. */
        rc = tl_audit_open_ex(chain->path, TL_AUDIT_OPEN_EXISTING | TL_AUDIT_OPEN_EXTERNAL_REPAIR,
                              &chain->audit, why, sizeof why);
        if (rc != 0) {
            set_problem(chain,
                        "audit log %s: %s; the database records no chain head to say what it held "
                        "(it comes from an older relay): run `tierline-relay audit-recover` to "
                        "start a new segment that records this",
                        chain->path, why);
            return rc == 0 ? TL_EAUDIT : rc;
        }
        rc = set_head_now(chain->store, tl_audit_last_seq(chain->audit),
                          tl_audit_last_hash(chain->audit));
        if (rc == 0)
            tl_log_info("audit chain head taken from the log seq=%" PRIu64 " hash=%s",
                        tl_audit_last_seq(chain->audit), tl_audit_last_hash(chain->audit));
    }
    if (rc != 0)
        set_problem(chain, "cannot record the audit chain head: %s", tl_strerror(rc));
    return rc;
}

int tl_audit_chain_open(tl_store_t *store, const char *path, unsigned flags, tl_audit_chain_t **out,
                        char *problem, size_t problem_size)
{
    tl_store_audit_head_t head;
    int rc = TL_ENOMEM;
    *out = NULL;
    tl_audit_chain_t *chain = calloc(1, sizeof *chain);
    if (chain == NULL || (chain->path = strdup(path)) == NULL)
        goto out;
    chain->store = store;
    if ((rc = tl_store_audit_head_get(store, &head)) != 0) {
        set_problem(chain, "cannot read the audit chain from the database: %s", tl_strerror(rc));
        goto out;
    }
    if (!head.known) {
        rc = open_without_head(chain, flags);
    } else {
        rc = ensure_log(chain, &head);
        if (rc == -ENOENT && head.seq == 0) {
            /* No entry was ever written: a log made now hides nothing. */
            char why[256];
            rc = tl_audit_open_ex(path, TL_AUDIT_OPEN_EXTERNAL_REPAIR, &chain->audit, why,
                                  sizeof why);
            if (rc != 0)
                set_problem(chain, "audit log %s: %s", path, why);
        }
    }
    if (rc == 0 && (rc = adopt_pending(chain)) != 0)
        set_problem(chain, "cannot take over the audit entries an older relay left: %s",
                    tl_strerror(rc));
    if (rc == 0)
        rc = tl_audit_chain_flush(chain);
    if (rc != 0 && rc != TL_ENOMEM && rc != TL_EEXIST && rc != TL_ESTORE)
        rc = TL_EAUDIT;
out:
    if (rc != 0) {
        if (problem != NULL && problem_size > 0)
            snprintf(problem, problem_size, "%s",
                     chain != NULL && chain->problem[0] ? chain->problem : tl_strerror(rc));
        tl_audit_chain_close(chain);
        return rc;
    }
    chain->healthy = 1;
    *out = chain;
    return 0;
}

void tl_audit_chain_close(tl_audit_chain_t *chain)
{
    if (chain == NULL)
        return;
    tl_audit_close(chain->audit);
    free(chain->path);
    free(chain);
}

struct change_call {
    int (*change)(tl_store_t *store, tl_audit_chain_t *chain, void *arg);
    tl_audit_chain_t *chain;
    void *arg;
};

static int run_change(tl_store_t *store, void *arg)
{
    const struct change_call *call = arg;
    return call->change(store, call->chain, call->arg);
}

int tl_audit_chain_record(tl_store_t *store, const char *path,
                          int (*change)(tl_store_t *store, tl_audit_chain_t *chain, void *arg),
                          void *arg, char *problem, size_t problem_size)
{
    tl_audit_chain_t *chain = NULL;
    int rc = tl_audit_chain_open(store, path, 0, &chain, problem, problem_size);
    if (rc != 0)
        return rc;
    if (change != NULL) {
        struct change_call call = {change, chain, arg};
        if ((rc = tl_store_unit_run(store, run_change, &call)) != 0) {
            snprintf(problem, problem_size, "%s", tl_strerror(rc));
            goto out;
        }
    }
    if ((rc = tl_audit_chain_flush(chain)) != 0)
        snprintf(problem, problem_size, "%s", tl_audit_chain_problem(chain));
out:
    tl_audit_chain_close(chain);
    return rc;
}

/* ---- recovery --------------------------------------------------------------------------------
 */

/* Copies the first len bytes of the file at from into a new file at to (0600), synced. */
static int copy_prefix(const char *from, const char *to, uint64_t len)
{
    int rc = 0;
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    char *buf = malloc(65536);
    if (in < 0 || out < 0 || buf == NULL) {
        rc = buf == NULL ? TL_ENOMEM : -errno;
        goto out;
    }
    uint64_t done = 0;
    while (done < len) {
        size_t want = len - done < 65536 ? (size_t)(len - done) : 65536;
        ssize_t n = read(in, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : TL_ETRUNCATED;
            goto out;
        }
        if ((rc = tl_write_all(out, buf, (size_t)n)) != 0)
            goto out;
        done += (uint64_t)n;
    }
    if (fsync(out) < 0)
        rc = -errno;
out:
    free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(to);
    return rc;
}

/* Offset of the start of line number `line` (1-based): the bytes before it. */
static int offset_of_line(const char *path, uint64_t line, uint64_t *offset)
{
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char *buf = malloc(65536);
    uint64_t seen = 1, at = 0;
    *offset = 0;
    if (fd < 0 || buf == NULL) {
        rc = buf == NULL ? TL_ENOMEM : -errno;
        goto out;
    }
    while (seen < line) {
        ssize_t n = read(fd, buf, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : TL_ETRUNCATED;
            goto out;
        }
        for (ssize_t i = 0; i < n && seen < line; i++) {
            if (buf[i] == '\n') {
                seen++;
                *offset = at + (uint64_t)i + 1;
            }
        }
        at += (uint64_t)n;
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/*
 * Makes the log at path the longest prefix of itself that verifies, keeping the whole original
 * as path.damaged-TIMESTAMP when anything is dropped: *aside is its name ("" if none). A log that
 * verifies loses only a torn tail after its last line (*cut_bytes).
 */
static int keep_verified_prefix(const char *path, const tl_audit_report_t *report, int verify_rc,
                                char *aside, size_t aside_size, uint64_t *cut_bytes)
{
    int rc = 0;
    char dir[4096], temp[4200];
    aside[0] = '\0';
    *cut_bytes = 0;
    struct stat st;
    if (verify_rc == 0) {
        /* It verifies: only a torn tail (a crash's leftover) may follow its last line. */
        if (report->partial_tail_bytes == 0)
            return 0;
        if (stat(path, &st) < 0)
            return -errno;
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return -errno;
        uint64_t keep = (uint64_t)st.st_size - report->partial_tail_bytes;
        if (ftruncate(fd, (off_t)keep) < 0 || fdatasync(fd) < 0)
            rc = -errno;
        close(fd);
        *cut_bytes = report->partial_tail_bytes;
        return rc;
    }
    uint64_t keep = 0;
    if ((rc = offset_of_line(path, report->bad_line, &keep)) != 0 ||
        (rc = tl_fs_parent_dir(path, dir, sizeof dir)) != 0)
        return rc;
    char stamp[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
    snprintf(aside, aside_size, "%s.damaged-%s", path, stamp);
    snprintf(temp, sizeof temp, "%s.recover-tmp", path);
    unlink(temp);
    /* The original stays whole under its new name; the path gets the verified prefix. */
    if ((rc = copy_prefix(path, temp, keep)) != 0)
        return rc;
    if (link(path, aside) < 0 || tl_fsync_dir(dir) != 0 || rename(temp, path) < 0) {
        rc = errno != 0 ? -errno : TL_EIO;
        unlink(temp);
        return rc;
    }
    return tl_fsync_dir(dir);
}

static const char *verdict_name(int verdict)
{
    switch (verdict) {
    case TL_AUDIT_MISSING:
        return "missing";
    case TL_AUDIT_SHORT:
        return "short";
    case TL_AUDIT_DIVERGES:
        return "diverges";
    case TL_AUDIT_DAMAGED:
        return "damaged";
    case TL_AUDIT_AHEAD:
        return "ahead";
    case TL_AUDIT_UNREADABLE:
        return "unreadable";
    default:
        return "in-step";
    }
}

/* What is wrong, as tl_audit_chain_open would see it, without changing anything. */
static int diagnose(tl_store_t *store, const char *path, tl_store_audit_head_t *head,
                    tl_audit_outbox_rows_t *rows, tl_audit_problem_t *problem)
{
    uint64_t tail = 0;
    char why[256];
    memset(problem, 0, sizeof *problem);
    int rc = tl_store_audit_outbox_read(store, SIZE_MAX, head, rows);
    if (rc != 0)
        return rc;
    rc = tl_audit_peek(path, &problem->log_seq, problem->log_hash, &tail, why, sizeof why);
    if (rc == -ENOENT) {
        problem->verdict = TL_AUDIT_MISSING;
        snprintf(problem->text, sizeof problem->text,
                 "audit log %s is missing but the database head is seq %" PRIu64
                 " (hash %.16s...): %" PRIu64 " entries missing",
                 path, head->seq, head->hash, head->seq);
        return 0;
    }
    if (rc != 0) {
        problem->verdict = rc == TL_EPROTO ? TL_AUDIT_DAMAGED : TL_AUDIT_UNREADABLE;
        snprintf(problem->text, sizeof problem->text, "audit log %s cannot be continued: %s", path,
                 why);
        return 0;
    }
    if (!head->known) {
        problem->verdict = TL_AUDIT_IN_STEP;
        return 0;
    }
    tl_audit_line_t *lines = NULL;
    if ((rc = rows_to_lines(rows, &lines)) != 0)
        return rc;
    size_t count = rows->count;
    tl_audit_target_t target = {head->seq, head->hash, lines, count};
    if (count > 0 && lines[count - 1].seq != head->seq)
        target.count = 0; /* inconsistent outbox: judge by the head alone */
    tl_audit_compare(problem->log_seq, problem->log_hash, &target, problem);
    free(lines);
    return 0;
}

/* What the recovery's unit of work needs. */
struct recovery {
    tl_audit_chain_t *chain;
    const tl_store_audit_head_t *head;
    const tl_audit_outbox_rows_t *rows;
    const tl_audit_outbox_row_t **again; /* room for every row */
    uint64_t kept_seq;
    json_t *details;
};

/* Which outbox lines the kept log lacks: re-staged after the recovery entry. */
static size_t lines_to_stage_again(const struct recovery *r)
{
    size_t count = 0;
    for (size_t i = 0; i < r->rows->count; i++) {
        const tl_audit_outbox_row_t *row = &r->rows->rows[i];
        char there[TL_AUDIT_HASH_HEX];
        if (row->seq <= r->kept_seq && tl_audit_hash_at(r->chain->audit, row->seq, there) == 0 &&
            row->hash != NULL && strcmp(there, row->hash) == 0)
            continue;
        r->again[count++] = row;
    }
    return count;
}

/* A line the outbox held, staged again after the recovery entry and marked "recovered". */
static int stage_again(tl_audit_chain_t *chain, const tl_audit_outbox_row_t *row)
{
    json_error_t error;
    json_t *old = row->line != NULL ? json_loads(row->line, 0, &error) : NULL;
    int rc = json_is_object(old) ? 0 : TL_ESTORE;
    if (rc == 0) {
        json_t *old_details = json_deep_copy(json_object_get(old, "details"));
        json_object_set_new(old_details, "recovered",
                            json_pack("{s:O, s:O}", "seq", json_object_get(old, "seq"), "time",
                                      json_object_get(old, "time")));
        tl_audit_entry_t again = {json_string_value(json_object_get(old, "actor")),
                                  json_string_value(json_object_get(old, "action")),
                                  json_string_value(json_object_get(old, "subject")), old_details,
                                  0};
        rc = tl_audit_chain_stage(chain, &again, NULL);
        json_decref(old_details);
    }
    json_decref(old);
    return rc;
}

/* The kept log's end becomes the head; the recovery entry follows it, then what waited. */
static int stage_recovery(tl_store_t *store, void *arg)
{
    const struct recovery *r = arg;
    size_t count = 0;
    int rc = tl_store_audit_head_set(store, r->kept_seq, tl_audit_last_hash(r->chain->audit),
                                     tl_wall_ms());
    if (rc == 0)
        rc = tl_store_audit_outbox_delete(store, UINT64_MAX);
    if (rc == 0) {
        count = lines_to_stage_again(r);
        /* Lost: what the store's head says was written, less what the kept log and the
         * outbox still hold. */
        uint64_t still = r->kept_seq + count;
        json_object_set_new(r->details, "outbox_rewritten", json_integer((json_int_t)count));
        json_object_set_new(r->details, "entries_lost",
                            json_integer(r->head->known && r->head->seq > still
                                             ? (json_int_t)(r->head->seq - still)
                                             : 0));
    }
    tl_audit_entry_t entry = {
        .actor = "admin", .action = "audit.recover", .subject = "", .details = r->details};
    if (rc == 0)
        rc = tl_audit_chain_stage(r->chain, &entry, NULL);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = stage_again(r->chain, r->again[i]);
    return rc;
}

int tl_audit_chain_recover(tl_store_t *store, const char *path, json_t *by, json_t **report,
                           int *recovered, char *problem_text, size_t problem_size)
{
    tl_store_audit_head_t head;
    tl_audit_problem_t found;
    tl_audit_outbox_rows_t rows = {0};
    const tl_audit_outbox_row_t **again = NULL;
    json_t *details = NULL;
    tl_audit_chain_t *chain = NULL;
    tl_audit_report_t verified;
    char aside[4200] = "";
    uint64_t cut_bytes = 0;
    *report = NULL;
    *recovered = 0;
    problem_text[0] = '\0';

    int rc = diagnose(store, path, &head, &rows, &found);
    if (rc != 0) {
        snprintf(problem_text, problem_size, "cannot read the audit chain from the database: %s",
                 tl_strerror(rc));
        goto out;
    }
    if (found.verdict == TL_AUDIT_IN_STEP || found.verdict == TL_AUDIT_UNREADABLE) {
        /* Nothing lost, or nothing a new segment would fix (a full disk): the normal way. */
        char why[768];
        rc = tl_audit_chain_record(store, path, NULL, NULL, why, sizeof why);
        if (rc != 0) {
            snprintf(problem_text, problem_size, "%s", why);
            goto out;
        }
        *report = json_pack("{s:b, s:s}", "recovered", 0, "found", "in-step");
        goto out;
    }

    /* Keep what verifies of the log; set the damaged rest aside, whole. */
    int verify_rc = found.verdict == TL_AUDIT_MISSING ? -ENOENT : tl_audit_verify(path, &verified);
    if (found.verdict == TL_AUDIT_MISSING) {
        memset(&verified, 0, sizeof verified);
        memcpy(verified.last_hash, GENESIS, sizeof verified.last_hash);
    } else if (verify_rc != 0 && verify_rc != TL_EPROTO) {
        rc = verify_rc;
        snprintf(problem_text, problem_size, "cannot read %s: %s", path, tl_strerror(rc));
        goto out;
    } else if ((rc = keep_verified_prefix(path, &verified, verify_rc, aside, sizeof aside,
                                          &cut_bytes)) != 0) {
        snprintf(problem_text, problem_size, "cannot set the damaged audit log aside: %s",
                 tl_strerror(rc));
        goto out;
    }
    if (found.verdict == TL_AUDIT_MISSING) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        char dir[4096];
        if (fd < 0 || tl_fs_parent_dir(path, dir, sizeof dir) != 0 || tl_fsync_dir(dir) != 0) {
            rc = fd < 0 ? -errno : TL_EIO;
            snprintf(problem_text, problem_size, "cannot start a new audit log at %s: %s", path,
                     tl_strerror(rc));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
    }

    /* The recovery entry continues the kept prefix; the outbox's lines the log lacks follow. */
    chain = calloc(1, sizeof *chain);
    if (chain == NULL || (chain->path = strdup(path)) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    chain->store = store;
    char why[256];
    if ((rc = tl_audit_open_ex(path, TL_AUDIT_OPEN_EXISTING | TL_AUDIT_OPEN_EXTERNAL_REPAIR,
                               &chain->audit, why, sizeof why)) != 0) {
        snprintf(problem_text, problem_size, "audit log %s: %s", path, why);
        goto out;
    }
    uint64_t kept_seq = tl_audit_last_seq(chain->audit);
    again = calloc(rows.count > 0 ? rows.count : 1, sizeof *again);
    details = json_pack("{s:s, s:s, s:{s:I, s:s}, s:{s:I, s:s}, s:I, s:O}", "found",
                        verdict_name(found.verdict), "problem", found.text, "database_head", "seq",
                        (json_int_t)head.seq, "hash", head.hash, "log_kept", "seq",
                        (json_int_t)kept_seq, "hash", tl_audit_last_hash(chain->audit),
                        "entries_lost", (json_int_t)0, "by", by);
    if (details == NULL || again == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (aside[0] != '\0')
        json_object_set_new(details, "damaged_copy", json_string(aside));
    if (cut_bytes > 0)
        json_object_set_new(details, "removed_tail_bytes", json_integer((json_int_t)cut_bytes));

    struct recovery recovery = {chain, &head, &rows, again, kept_seq, details};
    if ((rc = tl_store_unit_run(store, stage_recovery, &recovery)) != 0)
        goto store_failed;
    if ((rc = tl_audit_chain_flush(chain)) != 0) {
        snprintf(problem_text, problem_size, "%s", tl_audit_chain_problem(chain));
        goto out;
    }
    *recovered = 1;
    *report = json_pack("{s:b, s:O}", "recovered", 1, "entry", details);
    tl_log_warn("audit log recovered: a new segment records the loss found=%s problem=\"%s\"",
                verdict_name(found.verdict), found.text);
    goto out;
store_failed:
    snprintf(problem_text, problem_size, "cannot record the recovery in the database: %s",
             tl_strerror(rc));
out:
    tl_audit_outbox_rows_free(&rows);
    free(again);
    json_decref(details);
    tl_audit_chain_close(chain);
    return rc;
}
