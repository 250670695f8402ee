/*
 * The relay's storage worker: the one thread that touches the disk.
 *
 * The event loop never blocks on disk (DESIGN.md §8, STYLE.md "Event loop
 * rules"). Work that must be durable — store rows, audit entries, evidence
 * files — is packaged as a job and submitted here. The worker takes every
 * job that is waiting (group commit): it runs them as one unit of work of
 * the store (relay/store/store.h), each job a step of it (a failing job
 * undoes only itself), commits, writes the batch's audit entries to the log
 * with one write and one fsync (relay/store/audit_chain.h: each entry was
 * staged in the store with its change), and only then hands each job back to
 * the loop, where its done callback acknowledges whatever the job recorded.
 * A job that changes nothing in the store (writing evidence bytes) runs the
 * same way; its step is empty. Jobs never begin or commit anything
 * themselves.
 *
 * Fail closed. When the audit log cannot be written, nothing is
 * acknowledged: the batch whose write failed fails (TL_EAUDIT; its changes
 * are committed and its entries wait in the store's outbox), and every
 * later batch first writes what waits; while that fails, each of its jobs
 * still runs (so it can let go of what it holds) but is undone and fails
 * with TL_EAUDIT. The worker retries on its own every few seconds, logs each
 * change of state, and keeps it in the state file (relay/store/status.h) for
 * `tierline-relay status`.
 *
 * Ownership: the job is the submitter's; the worker holds it from submit
 * until done runs on the loop. The store, audit chain and evidence store are
 * the worker's while it runs.
 */
#ifndef TL_WORKER_H
#define TL_WORKER_H

#include "relay/store/audit_chain.h"
#include "relay/store/evidence.h"
#include "relay/store/store.h"

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
    /* Runs on the worker thread, as a step of the batch's unit of work; 0 or a negative code
     * (its store changes and staged audit entries are undone). */
    int (*run)(tl_job_t *job, tl_job_ctx_t *ctx);
    /* Runs on the loop once the batch is durable, with run's result or a commit failure. */
    void (*done)(tl_job_t *job, int status);
    /* The worker's own. */
    tl_job_t *next;
    int status;
    json_t *published; /* what the job published (tl_worker_publish), until it is acknowledged */
    uint64_t submitted_ns; /* for the store latency metric (relay/store/metrics.h) */
};

/*
 * state_path (may be NULL): where the relay's state file is kept (relay/store/status.h); the worker
 * writes it now and whenever the audit log's health changes.
 */
tl_worker_t *tl_worker_new(uv_loop_t *loop, tl_store_t *store, tl_audit_chain_t *chain,
                           tl_evidence_store_t *evidence, const char *state_path, int *err);
void tl_worker_submit(tl_worker_t *worker, tl_job_t *job);
/*
 * From a job's run: stages an audit entry in the job's step of the unit; it is
 * written to the log with the batch, before any job of the batch is
 * acknowledged, and undone with the job if the job fails. details is
 * borrowed. TL_EINVAL for an entry the log would refuse.
 */
int tl_worker_audit(tl_job_ctx_t *ctx, const char *actor, const char *action, const char *subject,
                    json_t *details);
/*
 * Publishing: what a job learns that others on the loop should hear of once it is durable (a
 * ticket changed: the device's agent is told), like a database's NOTIFY. From a job's run,
 * tl_worker_publish() stages message (borrowed; a copy is kept) on channel, at most
 * TL_WORKER_MAX_PUBLISHED per job (TL_EFULL past that). After the job's batch is durable, and
 * only if the job succeeded, each listener of the channel gets each message on the loop, in
 * order, right after the job's done callback; a job that fails, or whose batch does not
 * commit, publishes nothing. Listeners are added from the loop (at most TL_WORKER_MAX_LISTENERS;
 * TL_EFULL past that); message is borrowed for the call.
 */
#define TL_WORKER_MAX_PUBLISHED 16
#define TL_WORKER_MAX_LISTENERS 4
typedef void (*tl_worker_listen_fn)(void *data, const char *channel, json_t *message);
int tl_worker_publish(tl_job_ctx_t *ctx, const char *channel, json_t *message);
int tl_worker_listen(tl_worker_t *worker, const char *channel, tl_worker_listen_fn listen,
                     void *data);

/*
 * Called on the worker thread after each batch whose audit entries are durable in the log, with
 * how many the batch wrote (relay/store/audit_checkpoint.h counts them). One hook per worker, set
 * or removed (fn NULL) from the loop; it may submit jobs.
 */
typedef void (*tl_worker_written_fn)(void *data, uint64_t entries);
void tl_worker_on_written(tl_worker_t *worker, tl_worker_written_fn fn, void *data);

/*
 * Finishes what was submitted, stops the thread and releases the worker;
 * done callbacks of the last jobs run before it returns. Call from the loop
 * thread, with the loop not running (after uv_run returned) or from a
 * callback; it runs the loop briefly itself if needed.
 */
void tl_worker_free(tl_worker_t *worker);

/* Is the audit log failing now (as of the last batch)? For logs and tests. */
int tl_worker_audit_failing(const tl_worker_t *worker);

/* Jobs run and batches committed, for logs and tests. */
uint64_t tl_worker_jobs_done(const tl_worker_t *worker);
uint64_t tl_worker_batches(const tl_worker_t *worker);

#endif
