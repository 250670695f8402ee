/*
 * The relay's storage worker: the one thread that touches the disk.
 *
 * The event loop never blocks on disk (DESIGN.md §8, STYLE.md "Event loop
 * rules"). Work that must be durable — store rows, audit entries, evidence
 * files — is packaged as a job and submitted here. The worker takes every
 * job that is waiting (group commit): it opens one store transaction, runs
 * each job inside its own savepoint (a failing job rolls back only itself),
 * commits, appends the batch's audit entries with one write and one fsync,
 * and only then hands each job back to the loop, where its done callback
 * acknowledges whatever the job recorded. A job that needs no transaction
 * (writing evidence bytes) runs the same way; its savepoint is empty.
 *
 * Ownership: the job is the submitter's; the worker holds it from submit
 * until done runs on the loop. The store, audit log and evidence store are
 * the worker's while it runs.
 */
#ifndef TL_WORKER_H
#define TL_WORKER_H

#include "relay/audit.h"
#include "relay/evidence.h"
#include "relay/store.h"

#include <jansson.h>
#include <uv.h>

typedef struct tl_worker tl_worker_t;
typedef struct tl_job tl_job_t;

/* What a job sees while it runs on the worker thread. */
typedef struct tl_job_ctx {
    tl_store_t *store;
    tl_evidence_store_t *evidence;
    tl_worker_t *worker;
} tl_job_ctx_t;

struct tl_job {
    /* Runs on the worker thread; 0 or a negative code (its store changes are undone). */
    int (*run)(tl_job_t *job, tl_job_ctx_t *ctx);
    /* Runs on the loop once the batch is durable, with run's result or a commit failure. */
    void (*done)(tl_job_t *job, int status);
    /* The worker's own. */
    tl_job_t *next;
    int status;
    size_t audit_first; /* this job's entries in the batch */
    size_t audit_count;
};

tl_worker_t *tl_worker_new(uv_loop_t *loop, tl_store_t *store, tl_audit_t *audit,
                           tl_evidence_store_t *evidence, int *err);
void tl_worker_submit(tl_worker_t *worker, tl_job_t *job);
/*
 * From a job's run: records an audit entry that is written with the batch,
 * before any job of the batch is acknowledged. Dropped if the job fails.
 * details is borrowed (a reference is taken).
 */
int tl_worker_audit(tl_job_ctx_t *ctx, const char *actor, const char *action, const char *subject,
                    json_t *details);
/*
 * Finishes what was submitted, stops the thread and releases the worker;
 * done callbacks of the last jobs run before it returns. Call from the loop
 * thread, with the loop not running (after uv_run returned) or from a
 * callback; it runs the loop briefly itself if needed.
 */
void tl_worker_free(tl_worker_t *worker);

/*
 * At start, before the worker runs: audit entries whose change committed but
 * which never reached the audit log (a crash in between) are appended now,
 * marked "recovered": true.
 */
int tl_worker_recover_audit(tl_store_t *store, tl_audit_t *audit);

/* Jobs run and batches committed, for logs and tests. */
uint64_t tl_worker_jobs_done(const tl_worker_t *worker);
uint64_t tl_worker_batches(const tl_worker_t *worker);

#endif
