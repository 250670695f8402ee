/* Signed checkpoints of the audit log (relay/store/audit_checkpoint.h). */
#include "relay/store/audit_checkpoint.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/keys.h"
#include "proto/clock.h"
#include "proto/log.h"
#include "relay/store/audit_key.h"
#include "relay/store/audit_tree.h"
#include "relay/store/datadir.h"
#include "relay/store/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EM_DASH "\xe2\x80\x94"
/* A record: a note and its empty line. */
#define RECORD_MAX (TL_SIGNED_NOTE_MAX + 1)
#define CHUNK 65536

/* ---- the checkpoints file ------------------------------------------------------------------ */

static const char *find_pair(const char *from, const char *end)
{
    for (const char *p = from; p + 1 < end; p++)
        if (p[0] == '\n' && p[1] == '\n')
            return p;
    return NULL;
}

/*
 * The length of the note at buf (n bytes) and of its record: 1 when a whole record is there, 0
 * when it is not (yet). A note is its text up to a blank line, then signature lines up to the
 * next blank line, which ends the record.
 */
static int split_record(const char *buf, size_t n, size_t *note_len, size_t *record_len)
{
    const char *end = buf + n;
    const char *text_end = find_pair(buf, end);
    if (text_end == NULL)
        return 0;
    const char *sigs_end = find_pair(text_end + 1, end);
    if (sigs_end == NULL)
        return 0;
    *note_len = (size_t)(sigs_end - buf) + 1;
    *record_len = *note_len + 1;
    return 1;
}

int tl_audit_checkpoints_each(const char *path, tl_audit_note_fn fn, void *arg,
                              uint64_t *tail_bytes)
{
    if (tail_bytes != NULL)
        *tail_bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = RECORD_MAX + CHUNK, have = 0;
    char *buf = malloc(cap);
    uint64_t index = 0;
    int rc = buf != NULL ? 0 : TL_ENOMEM, eof = 0;
    while (rc == 0) {
        size_t note_len, record_len, start = 0;
        while (rc == 0 && split_record(buf + start, have - start, &note_len, &record_len)) {
            rc = fn(arg, ++index, buf + start, note_len);
            start += record_len;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (rc != 0)
            break;
        if (eof) {
            /* A last note without its empty line is whole all the same. */
            const char *text_end = find_pair(buf, buf + have);
            if (have > 0 && buf[have - 1] == '\n' && text_end != NULL &&
                text_end + 2 < buf + have) {
                rc = fn(arg, ++index, buf, have);
                have = 0;
            }
            break;
        }
        if (have >= RECORD_MAX) {
            rc = TL_EPROTO;
            break;
        }
        ssize_t got = read(fd, buf + have, cap - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        else if (got == 0)
            eof = 1;
        else
            have += (size_t)got;
    }
    if (tail_bytes != NULL)
        *tail_bytes = have;
    free(buf);
    close(fd);
    return rc;
}

struct last_note {
    char *note;
    size_t len;
};

static int keep_last(void *arg, uint64_t index, const char *note, size_t len)
{
    struct last_note *last = arg;
    (void)index;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return TL_ENOMEM;
    memcpy(copy, note, len);
    copy[len] = '\0';
    free(last->note);
    last->note = copy;
    last->len = len;
    return 0;
}

int tl_audit_checkpoints_last(const char *path, char **note, size_t *len)
{
    struct last_note last = {NULL, 0};
    int rc = tl_audit_checkpoints_each(path, keep_last, &last, NULL);
    if (rc != 0) {
        free(last.note);
        last.note = NULL;
        last.len = 0;
    }
    *note = last.note;
    *len = last.len;
    return rc;
}

/* Appends a record and syncs it. */
static int append_record(const char *path, const char *note, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int rc = tl_write_all(fd, note, len);
    if (rc == 0)
        rc = tl_write_all(fd, "\n", 1);
    if (rc == 0 && fdatasync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int tl_audit_checkpoint_details(const char *note, size_t len, json_t **out)
{
    *out = NULL;
    const char *end = note + len;
    const char *text_end = find_pair(note, end);
    tl_checkpoint_t checkpoint;
    if (text_end == NULL || tl_checkpoint_parse(note, (size_t)(text_end - note) + 1, &checkpoint))
        return TL_EINVAL;
    /* The signature line by the origin's name: "— NAME BASE64". */
    char prefix[TL_NOTE_NAME_MAX + 8];
    int n = snprintf(prefix, sizeof prefix, EM_DASH " %s ", checkpoint.origin);
    const char *line = text_end + 2, *signature = NULL;
    size_t signature_len = 0;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            break;
        if (n > 0 && (size_t)(eol - line) > (size_t)n && memcmp(line, prefix, (size_t)n) == 0) {
            signature = line + n;
            signature_len = (size_t)(eol - signature);
            break;
        }
        line = eol + 1;
    }
    if (signature == NULL)
        return TL_EINVAL;
    char root[48];
    EVP_EncodeBlock((unsigned char *)root, checkpoint.root, TL_MERKLE_HASH_LEN);
    *out =
        json_pack("{s:s, s:I, s:s, s:s%}", "origin", checkpoint.origin, "size",
                  (json_int_t)checkpoint.size, "root", root, "signature", signature, signature_len);
    return *out != NULL ? 0 : TL_ENOMEM;
}

int tl_audit_checkpoints_signer(const char *data_dir, char *key_path, size_t key_path_size,
                                char name[TL_NOTE_NAME_MAX + 1])
{
    char fingerprint[TL_FINGERPRINT_LEN];
    int rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_KEY, key_path, key_path_size);
    if (rc == 0)
        rc = tl_datadir_fingerprint(data_dir, fingerprint);
    if (rc == 0)
        rc = tl_audit_key_name(fingerprint, name);
    return rc;
}

/* ---- the relay's checkpoints ---------------------------------------------------------------- */

enum rule {
    IF_GREW,  /* timed, counted, shutdown: only if the tree holds more than the last checkpoint
                 and its own entry */
    IF_OTHER, /* asked for: a new one unless the last one is of this very tree */
};

struct tl_audit_checkpoints {
    uv_loop_t *loop;
    tl_worker_t *worker;
    uv_timer_t timer;
    int timer_started;
    char *path; /* DATA/audit.checkpoints */
    char name[TL_NOTE_NAME_MAX + 1];
    /* The worker's. */
    EVP_PKEY *key;
    char *log_path;
    tl_audit_tree_t *tree;
    int have_last;
    tl_checkpoint_t last;
    char *last_note;
    int foreign; /* the last update found lines past the store's head */
    uint64_t written_since;
    /* Any thread. */
    int periodic_pending;
    int stopped;
};

struct checkpoint_job {
    tl_job_t job; /* first */
    tl_audit_checkpoints_t *owner;
    enum rule rule;
    tl_audit_checkpoint_fn done;
    void *data;
    int64_t ticket_id; /* > 0: the checkpoint is put on this ticket's timeline */
    tl_checkpoint_t checkpoint;
    char *note;
};

static void hex_of(const tl_merkle_hash_t hash, char out[65])
{
    for (int i = 0; i < TL_MERKLE_HASH_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", hash[i]);
}

/*
 * How far a checkpoint may reach: no further than the chain's head in the store (which holds
 * every line any writer of the relay appended, as it commits before it appends), so a line
 * appended to the file by anyone else is never signed. When the tree reaches the head, its line
 * there must carry the head's hash; else the file holds another chain: TL_EAUDIT.
 */
static int signable_size(tl_audit_checkpoints_t *cps, tl_store_t *store, uint64_t *size)
{
    tl_store_audit_head_t head;
    char tail[TL_AUDIT_HASH_HEX + 2];
    uint64_t end = 0;
    *size = tl_audit_tree_size(cps->tree);
    cps->foreign = 0;
    if (tl_store_audit_head_get(store, &head) != 0 || !head.known) {
        tl_log_error("audit checkpoint not made: the store's audit head cannot be read");
        return TL_EAUDIT;
    }
    if (head.seq < *size) {
        tl_log_error("audit log holds lines the relay did not write: entries %" PRIu64 "..%" PRIu64
                     " are past the store's head and not signed (run "
                     "tierline-relay audit-verify)",
                     head.seq + 1, *size);
        *size = head.seq;
        cps->foreign = 1;
    }
    if (*size == 0 || *size != head.seq)
        return 0;
    /* The line ends `"hash":"<64 hex>"}` and its line feed. */
    int fd = -1;
    int ok = tl_audit_tree_line_end(cps->tree, *size - 1, &end) == 0 && end >= sizeof tail &&
             (fd = open(cps->log_path, O_RDONLY | O_CLOEXEC)) >= 0 &&
             pread(fd, tail, sizeof tail, (off_t)(end - sizeof tail)) == (ssize_t)sizeof tail &&
             memcmp(tail, head.hash, TL_AUDIT_HASH_HEX - 1) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        tl_log_error("audit checkpoint not made: the log's entry %" PRIu64
                     " is not the one the store's head names",
                     *size);
        return TL_EAUDIT;
    }
    return 0;
}

/*
 * A checkpoint of the tree as the log holds it now, up to what the relay wrote, by rule: *made 1
 * and a new one signed and stored (it is then the last), or *made 0 and the last. TL_EAUDIT when
 * the log cannot be read or the checkpoint cannot be stored.
 */
static int make_checkpoint(tl_audit_checkpoints_t *cps, tl_store_t *store, enum rule rule,
                           int *made)
{
    char text[TL_NOTE_NAME_MAX + 64], root_hex[65];
    char *note = NULL;
    size_t note_len = 0;
    uint64_t size = 0;
    *made = 0;
    if (tl_audit_tree_update(cps->tree) != 0) {
        tl_log_error("audit checkpoint not made: the log cannot be read problem=\"%s\"",
                     tl_audit_tree_problem(cps->tree));
        return TL_EAUDIT;
    }
    if (signable_size(cps, store, &size) != 0)
        return TL_EAUDIT;
    if (cps->have_last && size < cps->last.size) {
        tl_log_error("audit checkpoint not made: the relay wrote %" PRIu64
                     " entries, fewer than its last checkpoint's %" PRIu64,
                     size, cps->last.size);
        return TL_EAUDIT;
    }
    int wanted =
        !cps->have_last || (rule == IF_GREW ? size > cps->last.size + 1 : size != cps->last.size);
    if (!wanted)
        return 0;
    tl_checkpoint_t checkpoint;
    memset(&checkpoint, 0, sizeof checkpoint);
    memcpy(checkpoint.origin, cps->name, sizeof checkpoint.origin);
    checkpoint.size = size;
    int rc = tl_audit_tree_root_at(cps->tree, size, checkpoint.root);
    if (rc == 0)
        rc = tl_checkpoint_format(&checkpoint, text, sizeof text);
    if (rc == 0)
        rc = tl_note_sign(text, strlen(text), cps->name, cps->key, &note, &note_len);
    if (rc != 0) {
        tl_log_error("audit checkpoint not signed size=%" PRIu64 " reason=%s", size,
                     tl_strerror(rc));
        return TL_EAUDIT;
    }
    if ((rc = append_record(cps->path, note, note_len)) != 0) {
        tl_log_error("audit checkpoint not stored path=%s size=%" PRIu64 " reason=%s", cps->path,
                     size, tl_strerror(rc));
        free(note);
        return TL_EAUDIT;
    }
    free(cps->last_note);
    cps->last_note = note;
    cps->last = checkpoint;
    cps->have_last = 1;
    cps->written_since = 0;
    tl_metrics_checkpoint_made(tl_wall_ms());
    *made = 1;
    hex_of(checkpoint.root, root_hex);
    tl_log_info("audit checkpoint size=%" PRIu64 " root=%s", size, root_hex);
    return 0;
}

/* The "audit.checkpoint" entry of the last checkpoint, through stage. */
static int record_last(tl_audit_checkpoints_t *cps, json_t **details)
{
    return tl_audit_checkpoint_details(cps->last_note, strlen(cps->last_note), details);
}

/* The checkpoint that covers a ticket's close, on its timeline ("checkpoint": size, root, origin).
 * Not audited: the checkpoint's own entry is. A failure is logged; the checkpoint stands. */
static void record_on_ticket(tl_job_ctx_t *ctx, int64_t ticket_id, const tl_checkpoint_t *cp)
{
    char root[4 * ((TL_MERKLE_HASH_LEN + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)root, cp->root, TL_MERKLE_HASH_LEN);
    json_t *details = json_pack("{s:I, s:s, s:s}", "size", (json_int_t)cp->size, "root", root,
                                "origin", cp->origin);
    char *text = details != NULL ? json_dumps(details, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    tl_ticket_event_row_t event = {.ticket_id = ticket_id,
                                   .time = tl_wall_ms(),
                                   .actor = "relay",
                                   .kind = "checkpoint",
                                   .details = text};
    int rc = text != NULL ? tl_store_ticket_event_add(ctx->store, &event) : TL_ENOMEM;
    if (rc != 0)
        tl_log_warn("audit checkpoint not put on the ticket ticket=T-%" PRId64 " size=%" PRIu64
                    " reason=%s",
                    ticket_id, cp->size, tl_strerror(rc));
    free(text);
    json_decref(details);
}

/* On the worker, inside a job's run: a checkpoint by rule, and its entry staged. */
static int checkpoint_in_job(tl_audit_checkpoints_t *cps, enum rule rule, tl_job_ctx_t *ctx)
{
    int made = 0;
    json_t *details = NULL;
    /* While the log fails nothing new is made: the note would outrun its entry. */
    if (tl_worker_audit_failing(ctx->worker))
        return TL_EAUDIT;
    int rc = make_checkpoint(cps, ctx->store, rule, &made);
    if (rc == 0 && made && cps->foreign) {
        /* Its entry could not follow the foreign lines: the log refuses it (§7). The note is
         * kept, as a crash between note and entry would leave it. */
        tl_log_error("audit checkpoint size=%" PRIu64 " not put on the record: the log holds "
                     "lines the relay did not write",
                     cps->last.size);
        made = 0;
    }
    if (rc == 0 && made) {
        rc = record_last(cps, &details);
        if (rc == 0)
            rc = tl_worker_audit(ctx, "relay", "audit.checkpoint", "", details);
        json_decref(details);
        /* Witnesses hear of it once it is durable; if they cannot, they ask on their own. */
        json_t *news = json_pack("{s:I}", "size", (json_int_t)cps->last.size);
        if (rc == 0 && news != NULL &&
            tl_worker_publish(ctx, TL_AUDIT_CHECKPOINT_CHANNEL, news) != 0)
            tl_log_warn("audit checkpoint not announced to agents size=%" PRIu64, cps->last.size);
        json_decref(news);
    }
    return rc;
}

int tl_audit_checkpoints_sign_now(tl_audit_checkpoints_t *checkpoints, tl_job_ctx_t *ctx)
{
    return checkpoint_in_job(checkpoints, IF_OTHER, ctx);
}

static int run_checkpoint(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct checkpoint_job *cj = (struct checkpoint_job *)job;
    tl_audit_checkpoints_t *cps = cj->owner;
    int rc = checkpoint_in_job(cps, cj->rule, ctx);
    if (rc == 0 && cps->have_last && cj->rule == IF_OTHER) {
        cj->checkpoint = cps->last;
        if ((cj->note = strdup(cps->last_note)) == NULL)
            rc = TL_ENOMEM;
    }
    if (rc == 0 && cps->have_last && cj->ticket_id > 0)
        record_on_ticket(ctx, cj->ticket_id, &cps->last);
    return rc;
}

static void checkpoint_done(tl_job_t *job, int status)
{
    struct checkpoint_job *cj = (struct checkpoint_job *)job;
    if (cj->rule == IF_GREW)
        __atomic_store_n(&cj->owner->periodic_pending, 0, __ATOMIC_RELEASE);
    if (cj->done != NULL) {
        if (status == 0 && cj->note == NULL)
            status = TL_EAUDIT; /* an empty log and no checkpoint yet */
        cj->done(cj->data, status, status == 0 ? &cj->checkpoint : NULL,
                 status == 0 ? cj->note : NULL);
    }
    free(cj->note);
    free(cj);
}

static int submit(tl_audit_checkpoints_t *cps, enum rule rule, int64_t ticket_id,
                  tl_audit_checkpoint_fn done, void *data)
{
    struct checkpoint_job *cj = calloc(1, sizeof *cj);
    if (cj == NULL)
        return TL_ENOMEM;
    cj->job.run = run_checkpoint;
    cj->job.done = checkpoint_done;
    cj->owner = cps;
    cj->rule = rule;
    cj->done = done;
    cj->data = data;
    cj->ticket_id = ticket_id;
    tl_worker_submit(cps->worker, &cj->job);
    return 0;
}

/* One timed or counted checkpoint job at a time. */
static void submit_periodic(tl_audit_checkpoints_t *cps)
{
    int idle = 0;
    if (__atomic_load_n(&cps->stopped, __ATOMIC_ACQUIRE) ||
        !__atomic_compare_exchange_n(&cps->periodic_pending, &idle, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    if (submit(cps, IF_GREW, 0, NULL, NULL) != 0)
        __atomic_store_n(&cps->periodic_pending, 0, __ATOMIC_RELEASE);
}

/* On the worker, after a batch's entries are in the log. */
static void on_written(void *data, uint64_t entries)
{
    tl_audit_checkpoints_t *cps = data;
    cps->written_since += entries;
    tl_metrics_checkpoint_lag(cps->written_since);
    if (cps->written_since >= TL_AUDIT_CHECKPOINT_EVERY)
        submit_periodic(cps);
}

static void on_timer(uv_timer_t *timer)
{
    submit_periodic(timer->data);
}

void tl_audit_checkpoints_interval_elapsed(tl_audit_checkpoints_t *checkpoints)
{
    on_timer(&checkpoints->timer);
}

void tl_audit_checkpoints_timer(const tl_audit_checkpoints_t *checkpoints, uint64_t *repeat_ms,
                                uint64_t *due_in_ms)
{
    int running =
        checkpoints->timer_started && uv_is_active((const uv_handle_t *)&checkpoints->timer);
    *repeat_ms = running ? uv_timer_get_repeat(&checkpoints->timer) : 0;
    *due_in_ms = running ? uv_timer_get_due_in(&checkpoints->timer) : 0;
}

void tl_audit_checkpoint_logged(void *data, int status, const tl_checkpoint_t *checkpoint,
                                const char *note)
{
    (void)checkpoint;
    (void)note;
    if (status != 0)
        tl_log_error("audit checkpoint not made when=\"%s\" error=\"%s\"",
                     data != NULL ? (const char *)data : "asked", tl_strerror(status));
}

int tl_audit_checkpoints_request(tl_audit_checkpoints_t *checkpoints, tl_audit_checkpoint_fn done,
                                 void *data)
{
    /* Shutting down: the worker may be going; the shutdown checkpoint covers what was asked. */
    if (__atomic_load_n(&checkpoints->stopped, __ATOMIC_ACQUIRE))
        return TL_ECLOSED;
    return submit(checkpoints, IF_OTHER, 0, done, data);
}

int tl_audit_checkpoints_request_for_ticket(tl_audit_checkpoints_t *checkpoints, int64_t ticket_id,
                                            tl_audit_checkpoint_fn done, void *data)
{
    if (__atomic_load_n(&checkpoints->stopped, __ATOMIC_ACQUIRE))
        return TL_ECLOSED;
    return submit(checkpoints, IF_OTHER, ticket_id, done, data);
}

/* The last stored checkpoint, if this key signed it; a torn record after it is cut. */
static int load_last(tl_audit_checkpoints_t *cps, const char *data_dir)
{
    uint64_t tail = 0;
    struct last_note last = {NULL, 0};
    int rc = tl_audit_checkpoints_each(cps->path, keep_last, &last, &tail);
    if (rc == -ENOENT) {
        rc = 0;
    } else if (rc == 0 && tail > 0) {
        struct stat st;
        int fd = open(cps->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) < 0 || ftruncate(fd, st.st_size - (off_t)tail) < 0 ||
            fdatasync(fd) < 0)
            rc = -errno;
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            tl_log_warn("audit checkpoints: a torn last record was cut path=%s bytes=%" PRIu64,
                        cps->path, tail);
    }
    if (rc != 0 || last.note == NULL) {
        free(last.note);
        return rc;
    }
    tl_note_verifier_t verifier;
    size_t text_len = 0;
    char key_path[4096], name[TL_NOTE_NAME_MAX + 1];
    if ((rc = tl_audit_checkpoints_signer(data_dir, key_path, sizeof key_path, name)) == 0 &&
        (rc = tl_audit_key_verifier(key_path, name, &verifier, NULL)) == 0 &&
        tl_note_open(last.note, last.len, &verifier, &text_len) == 0 &&
        tl_checkpoint_parse(last.note, text_len, &cps->last) == 0) {
        cps->have_last = 1;
        cps->last_note = last.note;
        return 0;
    }
    tl_log_warn("audit checkpoints: the last stored one is not signed by the audit key path=%s",
                cps->path);
    free(last.note);
    return rc;
}

/* The tree at the last checkpoint's size must have its root: else the leaves are rebuilt once,
 * and a log that still differs is reported (audit-verify says where). */
static void check_last(tl_audit_checkpoints_t *cps, const char *log_path, const char *leaves_path)
{
    tl_merkle_hash_t root;
    if (!cps->have_last)
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (cps->last.size > tl_audit_tree_size(cps->tree)) {
            tl_log_error("audit log is shorter than its last checkpoint entries=%" PRIu64
                         " checkpoint_size=%" PRIu64 " (run tierline-relay audit-verify)",
                         tl_audit_tree_size(cps->tree), cps->last.size);
            return;
        }
        if (tl_audit_tree_root_at(cps->tree, cps->last.size, root) == 0 &&
            memcmp(root, cps->last.root, TL_MERKLE_HASH_LEN) == 0)
            return;
        if (attempt == 1)
            break;
        char why[512];
        tl_audit_tree_t *fresh = NULL;
        unlink(leaves_path);
        if (tl_audit_tree_open(log_path, leaves_path, &fresh, why, sizeof why) != 0)
            return;
        tl_audit_tree_close(cps->tree);
        cps->tree = fresh;
    }
    tl_log_error("audit log does not match its last checkpoint size=%" PRIu64
                 " (run tierline-relay audit-verify)",
                 cps->last.size);
}

tl_audit_checkpoints_t *tl_audit_checkpoints_start(uv_loop_t *loop, tl_worker_t *worker,
                                                   const char *data_dir, int *err, char *problem,
                                                   size_t problem_size)
{
    char path[4096], log_path[4096], leaves_path[4096];
    int rc = TL_ENOMEM;
    problem[0] = '\0';
    tl_audit_checkpoints_t *cps = calloc(1, sizeof *cps);
    if (cps == NULL)
        goto out;
    cps->loop = loop;
    cps->worker = worker;
    if ((rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_CHECKPOINTS, path, sizeof path)) != 0 ||
        (rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT, log_path, sizeof log_path)) != 0 ||
        (rc = tl_datadir_path(data_dir, TL_DATADIR_AUDIT_LEAVES, leaves_path,
                              sizeof leaves_path)) != 0)
        goto out;
    if ((cps->path = strdup(path)) == NULL || (cps->log_path = strdup(log_path)) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    char key_path[4096];
    if ((rc = tl_audit_checkpoints_signer(data_dir, key_path, sizeof key_path, cps->name)) != 0 ||
        (rc = tl_key_load(key_path, &cps->key)) != 0) {
        snprintf(problem, problem_size, "the audit key cannot be used: %s", tl_strerror(rc));
        goto out;
    }
    if ((rc = tl_audit_tree_open(log_path, leaves_path, &cps->tree, problem, problem_size)) != 0)
        goto out;
    if ((rc = load_last(cps, data_dir)) != 0) {
        snprintf(problem, problem_size, "the audit checkpoints %s cannot be read: %s", path,
                 tl_strerror(rc));
        goto out;
    }
    check_last(cps, log_path, leaves_path);
    if ((rc = uv_timer_init(loop, &cps->timer)) != 0)
        goto out;
    cps->timer.data = cps;
    cps->timer_started = 1;
    uv_unref((uv_handle_t *)&cps->timer);
    uv_timer_start(&cps->timer, on_timer, TL_AUDIT_CHECKPOINT_INTERVAL_MS,
                   TL_AUDIT_CHECKPOINT_INTERVAL_MS);
    tl_worker_on_written(worker, on_written, cps);
    /* What a relay stopped without its shutdown checkpoint (SIGKILL, a crash) or admin commands
     * run while it was stopped left unsigned is signed now (docs/audit-format.md §14). A log
     * never signed yet waits for the first timed, counted or shutdown one. */
    if (cps->have_last)
        submit_periodic(cps);
out:
    if (rc != 0) {
        if (problem[0] == '\0')
            snprintf(problem, problem_size, "%s", tl_strerror(rc));
        *err = rc;
        tl_audit_checkpoints_free(cps);
        return NULL;
    }
    return cps;
}

void tl_audit_checkpoints_stop(tl_audit_checkpoints_t *checkpoints)
{
    if (checkpoints == NULL)
        return;
    __atomic_store_n(&checkpoints->stopped, 1, __ATOMIC_RELEASE);
    tl_worker_on_written(checkpoints->worker, NULL, NULL);
    if (checkpoints->timer_started) {
        uv_timer_stop(&checkpoints->timer);
        uv_close((uv_handle_t *)&checkpoints->timer, NULL);
        checkpoints->timer_started = 0; /* once: a second stop is a no-op */
    }
}

struct final_entry {
    tl_audit_chain_t *chain;
    json_t *details;
};

static int stage_final(tl_store_t *store, void *arg)
{
    const struct final_entry *final = arg;
    (void)store;
    tl_audit_entry_t entry = {
        .actor = "relay", .action = "audit.checkpoint", .subject = "", .details = final->details};
    return tl_audit_chain_stage(final->chain, &entry, NULL);
}

void tl_audit_checkpoints_final(tl_audit_checkpoints_t *checkpoints, tl_store_t *store,
                                tl_audit_chain_t *chain)
{
    if (checkpoints == NULL)
        return;
    int made = 0;
    struct final_entry final = {chain, NULL};
    /* Nothing waits for the log: a failing one would not take the entry. */
    int rc = tl_audit_chain_waiting(chain) != 0 ? TL_EAUDIT : 0;
    if (rc == 0)
        rc = make_checkpoint(checkpoints, store, IF_GREW, &made);
    if (rc == 0 && made && (rc = record_last(checkpoints, &final.details)) == 0 &&
        (rc = tl_store_unit_run(store, stage_final, &final)) == 0)
        rc = tl_audit_chain_flush(chain);
    if (rc != 0)
        tl_log_error("audit checkpoint at shutdown not made reason=%s", tl_strerror(rc));
    json_decref(final.details);
}

void tl_audit_checkpoints_free(tl_audit_checkpoints_t *checkpoints)
{
    if (checkpoints == NULL)
        return;
    tl_audit_tree_close(checkpoints->tree);
    EVP_PKEY_free(checkpoints->key);
    free(checkpoints->last_note);
    free(checkpoints->path);
    free(checkpoints->log_path);
    free(checkpoints);
}
