/* The storage worker: the one thread that touches the disk, in group commits (store/worker.h). */
#include "relay/store/worker.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/store/metrics.h"
#include "relay/store/status.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Jobs taken in one batch at most, so one burst cannot starve the acks. */
#define TL_WORKER_MAX_BATCH 256
/* While the audit log fails and no job comes, the worker tries it again after this long,
 * doubling up to the maximum (so an outage of hours logs little). */
#define TL_WORKER_AUDIT_RETRY_MS 2000
#define TL_WORKER_AUDIT_RETRY_MAX_MS 30000

struct tl_worker {
    uv_loop_t *loop;
    tl_store_t *store;
    tl_audit_chain_t *chain;
    tl_evidence_store_t *evidence;
    char *state_path;
    int64_t started_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    tl_job_t *queue_head, *queue_tail; /* submitted, waiting */
    tl_job_t *done_head, *done_tail;   /* finished, waiting for the loop */
    int stopping;
    tl_worker_written_fn written; /* under lock */
    void *written_data;
    uv_async_t async;
    /* Loop thread only: who hears what jobs publish. */
    struct {
        char channel[64];
        tl_worker_listen_fn listen;
        void *data;
    } listeners[TL_WORKER_MAX_LISTENERS];
    size_t listener_count;
    /* Worker thread only. */
    int in_txn;
    tl_job_t *running;     /* the job whose step runs now: what it publishes is its own */
    int64_t failing_since; /* 0 while the audit log is written */
    uint64_t refused_batches;
    unsigned retry_ms;
    /* Read from any thread. */
    int audit_failing;
    uint64_t jobs_done, batches;
};

static void push(tl_job_t **head, tl_job_t **tail, tl_job_t *job)
{
    job->next = NULL;
    if (*tail != NULL)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

int tl_worker_audit(tl_job_ctx_t *ctx, const char *actor, const char *action, const char *subject,
                    json_t *details)
{
    tl_worker_t *worker = ctx->worker;
    /* Staged with the change it records, in the same unit of work (relay/store/audit_chain.h). */
    if (!worker->in_txn)
        return TL_ESTORE;
    tl_audit_entry_t entry = {actor, action, subject ? subject : "", details, 0};
    return tl_audit_chain_stage(worker->chain, &entry, NULL);
}

int tl_worker_publish(tl_job_ctx_t *ctx, const char *channel, json_t *message)
{
    tl_worker_t *worker = ctx->worker;
    tl_job_t *job = worker->running;
    if (job == NULL || channel == NULL || strlen(channel) >= sizeof worker->listeners[0].channel ||
        !json_is_object(message))
        return job == NULL ? TL_ESTORE : TL_EINVAL;
    if (job->published == NULL && (job->published = json_array()) == NULL)
        return TL_ENOMEM;
    if (json_array_size(job->published) >= TL_WORKER_MAX_PUBLISHED)
        return TL_EFULL;
    json_t *item = json_pack("{s:s, s:O}", "channel", channel, "message", message);
    if (item == NULL || json_array_append_new(job->published, item) != 0)
        return TL_ENOMEM;
    return 0;
}

int tl_worker_listen(tl_worker_t *worker, const char *channel, tl_worker_listen_fn listen,
                     void *data)
{
    if (worker->listener_count == TL_WORKER_MAX_LISTENERS)
        return TL_EFULL;
    if (channel == NULL || listen == NULL || strlen(channel) >= sizeof worker->listeners[0].channel)
        return TL_EINVAL;
    size_t at = worker->listener_count++;
    snprintf(worker->listeners[at].channel, sizeof worker->listeners[at].channel, "%s", channel);
    worker->listeners[at].listen = listen;
    worker->listeners[at].data = data;
    return 0;
}

/* On the loop, after a job was acknowledged: what it published reaches the listeners. */
static void deliver_published(tl_worker_t *worker, json_t *published)
{
    size_t i;
    json_t *item;
    json_array_foreach(published, i, item) {
        const char *channel = json_string_value(json_object_get(item, "channel"));
        for (size_t l = 0; l < worker->listener_count; l++)
            if (strcmp(worker->listeners[l].channel, channel) == 0)
                worker->listeners[l].listen(worker->listeners[l].data, channel,
                                            json_object_get(item, "message"));
    }
}

/* The state file says what `tierline-relay status` needs from a live relay. */
static void write_state(tl_worker_t *worker)
{
    if (worker->state_path == NULL)
        return;
    int failing = worker->failing_since != 0;
    json_t *state = json_pack("{s:I, s:I, s:I, s:{s:b, s:s, s:I}}", "pid", (json_int_t)getpid(),
                              "started", (json_int_t)worker->started_ms, "updated",
                              (json_int_t)tl_wall_ms(), "audit", "failing", failing, "problem",
                              failing ? tl_audit_chain_problem(worker->chain) : "", "since",
                              (json_int_t)worker->failing_since);
    int rc = state != NULL ? tl_status_write(worker->state_path, state) : TL_ENOMEM;
    if (rc != 0)
        tl_log_warn("state file not written path=%s reason=%s", worker->state_path,
                    tl_strerror(rc));
    json_decref(state);
}

/* After a flush: logs and records a change between written and failing. */
static void note_audit(tl_worker_t *worker, int flush_rc)
{
    uint64_t waiting = 0;
    if (flush_rc != 0 && worker->failing_since == 0) {
        worker->failing_since = tl_wall_ms();
        worker->refused_batches = 0;
        worker->retry_ms = TL_WORKER_AUDIT_RETRY_MS;
        tl_store_audit_outbox_count(worker->store, &waiting, NULL);
        tl_log_error("audit log cannot be written: audited actions are refused until it can "
                     "problem=\"%s\" waiting=%llu",
                     tl_audit_chain_problem(worker->chain), (unsigned long long)waiting);
        __atomic_store_n(&worker->audit_failing, 1, __ATOMIC_RELAXED);
        write_state(worker);
    } else if (flush_rc == 0 && worker->failing_since != 0) {
        tl_log_warn("audit log written again: audited actions are accepted failed_for_ms=%lld "
                    "refused_batches=%llu",
                    (long long)(tl_wall_ms() - worker->failing_since),
                    (unsigned long long)worker->refused_batches);
        worker->failing_since = 0;
        __atomic_store_n(&worker->audit_failing, 0, __ATOMIC_RELAXED);
        write_state(worker);
    }
}

/* One job, as one step of the batch's unit of work. */
struct job_step {
    tl_job_t *job;
    tl_job_ctx_t *ctx;
    int keep;
};

/*
 * With keep 0 (the audit log is failing) the job still runs, so it can let go of what it holds,
 * but whatever it changed is undone and it fails.
 */
static int run_step(tl_store_t *store, void *arg)
{
    struct job_step *step = arg;
    (void)store;
    tl_worker_t *worker = step->ctx->worker;
    worker->running = step->job;
    int rc = step->job->run(step->job, step->ctx);
    worker->running = NULL;
    if (rc == 0 && !step->keep)
        rc = TL_EAUDIT;
    if (rc != 0) {
        /* Undone: nothing of it is heard of. */
        json_decref(step->job->published);
        step->job->published = NULL;
    }
    return rc;
}

struct batch {
    tl_worker_t *worker;
    tl_job_t *jobs;
    int refused;
    int ran;
};

/* The batch's unit of work: each job a step of it (a failing job undoes only itself). */
static int run_jobs(tl_store_t *store, void *arg)
{
    struct batch *batch = arg;
    tl_worker_t *worker = batch->worker;
    tl_job_ctx_t ctx = {store, worker->evidence, worker};
    batch->ran = 1;
    worker->in_txn = 1;
    for (tl_job_t *job = batch->jobs; job != NULL; job = job->next) {
        struct job_step step = {job, &ctx, !batch->refused};
        job->status = tl_store_unit_step(store, run_step, &step);
    }
    worker->in_txn = 0;
    /* While the log fails, the whole unit is undone too. */
    return batch->refused ? TL_EAUDIT : 0;
}

static void run_batch(tl_worker_t *worker, tl_job_t *jobs)
{
    struct batch batch = {worker, jobs, 0, 0};
    uint64_t written = 0;
    /* Whatever waits for the log goes first: nothing new is acknowledged before it. */
    if (tl_audit_chain_waiting(worker->chain) != 0) {
        batch.refused = tl_audit_chain_flush(worker->chain) != 0;
        note_audit(worker, batch.refused);
    }
    int unit_rc = tl_store_unit_run(worker->store, run_jobs, &batch);
    int commit_rc = batch.ran && !batch.refused ? unit_rc : 0;
    if (!batch.ran) {
        /* The unit could not even begin: nothing ran. */
        for (tl_job_t *job = jobs; job != NULL; job = job->next)
            job->status = TL_ESTORE;
    }
    int audit_rc = 0;
    if (batch.refused || commit_rc != 0) {
        tl_audit_chain_forget_staged(worker->chain);
    } else if (tl_audit_chain_staged(worker->chain) > 0) {
        /* Committed: the entries are in the outbox; durable in the log before any ack. */
        written = tl_audit_chain_staged(worker->chain);
        audit_rc = tl_audit_chain_flush(worker->chain);
        note_audit(worker, audit_rc);
    }
    if (written > 0 && audit_rc == 0) {
        tl_metrics_audit_written(written);
        pthread_mutex_lock(&worker->lock);
        tl_worker_written_fn fn = worker->written;
        void *data = worker->written_data;
        pthread_mutex_unlock(&worker->lock);
        if (fn != NULL)
            fn(data, written);
    }
    if (batch.refused)
        worker->refused_batches++;
    if (commit_rc != 0)
        tl_log_error("storage batch failed commit=%s", tl_strerror(commit_rc));
    if (commit_rc != 0 || audit_rc != 0) {
        for (tl_job_t *job = jobs; job != NULL; job = job->next) {
            /* Nothing of a failed batch may be acknowledged. */
            if (job->status == 0)
                job->status = commit_rc != 0 ? commit_rc : TL_EAUDIT;
        }
    }
    __atomic_add_fetch(&worker->batches, 1, __ATOMIC_RELAXED);
}

/* With no job waiting while the log fails: try it again, so health is known without traffic. */
static void retry_audit(tl_worker_t *worker)
{
    note_audit(worker, tl_audit_chain_flush(worker->chain));
    if (worker->failing_since != 0 && worker->retry_ms < TL_WORKER_AUDIT_RETRY_MAX_MS)
        worker->retry_ms *= 2;
}

static void *worker_main(void *arg)
{
    tl_worker_t *worker = arg;
    pthread_mutex_lock(&worker->lock);
    for (;;) {
        while (worker->queue_head == NULL && !worker->stopping) {
            if (worker->failing_since == 0) {
                pthread_cond_wait(&worker->wake, &worker->lock);
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += worker->retry_ms / 1000;
            until.tv_nsec += (long)(worker->retry_ms % 1000) * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&worker->wake, &worker->lock, &until) == ETIMEDOUT &&
                worker->queue_head == NULL && !worker->stopping) {
                pthread_mutex_unlock(&worker->lock);
                retry_audit(worker);
                pthread_mutex_lock(&worker->lock);
            }
        }
        if (worker->queue_head == NULL && worker->stopping)
            break;
        /* Take up to a batch's worth. */
        tl_job_t *batch = worker->queue_head, *last = batch;
        int count = 1;
        while (last->next != NULL && count < TL_WORKER_MAX_BATCH) {
            last = last->next;
            count++;
        }
        worker->queue_head = last->next;
        if (worker->queue_head == NULL)
            worker->queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&worker->lock);

        run_batch(worker, batch);

        pthread_mutex_lock(&worker->lock);
        while (batch != NULL) {
            tl_job_t *next = batch->next;
            push(&worker->done_head, &worker->done_tail, batch);
            batch = next;
            __atomic_add_fetch(&worker->jobs_done, 1, __ATOMIC_RELAXED);
        }
        uv_async_send(&worker->async);
    }
    pthread_mutex_unlock(&worker->lock);
    return NULL;
}

/* On the loop: hand finished jobs back to their owners. */
static void on_async(uv_async_t *async)
{
    tl_worker_t *worker = async->data;
    pthread_mutex_lock(&worker->lock);
    tl_job_t *done = worker->done_head;
    worker->done_head = worker->done_tail = NULL;
    pthread_mutex_unlock(&worker->lock);
    while (done != NULL) {
        tl_job_t *next = done->next;
        /* The job may be freed by its done callback: take what it published first. */
        json_t *published = done->published;
        int status = done->status;
        done->published = NULL;
        tl_metrics_job_done(done->submitted_ns);
        done->done(done, status);
        if (status == 0)
            deliver_published(worker, published);
        json_decref(published);
        done = next;
    }
}

static void async_closed(uv_handle_t *handle);

tl_worker_t *tl_worker_new(uv_loop_t *loop, tl_store_t *store, tl_audit_chain_t *chain,
                           tl_evidence_store_t *evidence, const char *state_path, int *err)
{
    tl_worker_t *worker = calloc(1, sizeof *worker);
    if (worker == NULL ||
        (state_path != NULL && (worker->state_path = strdup(state_path)) == NULL)) {
        free(worker);
        *err = TL_ENOMEM;
        return NULL;
    }
    worker->loop = loop;
    worker->store = store;
    worker->chain = chain;
    worker->evidence = evidence;
    worker->started_ms = tl_wall_ms();
    write_state(worker); /* before the thread: it owns the file from then on */
    pthread_mutex_init(&worker->lock, NULL);
    pthread_cond_init(&worker->wake, NULL);
    int rc = uv_async_init(loop, &worker->async, on_async);
    if (rc == 0) {
        worker->async.data = worker;
        /* Acks keep flowing while anything else is alive; the worker alone
         * does not keep the loop running (shutdown ends the loop). */
        uv_unref((uv_handle_t *)&worker->async);
        rc = -pthread_create(&worker->thread, NULL, worker_main, worker);
        if (rc != 0)
            uv_close((uv_handle_t *)&worker->async, async_closed);
    }
    if (rc != 0) {
        *err = rc;
        pthread_mutex_destroy(&worker->lock);
        pthread_cond_destroy(&worker->wake);
        if (worker->async.loop == NULL) {
            free(worker->state_path);
            free(worker); /* else freed by the async handle's close callback */
        }
        return NULL;
    }
    return worker;
}

void tl_worker_submit(tl_worker_t *worker, tl_job_t *job)
{
    job->published = NULL;
    job->submitted_ns = tl_metrics_now_ns();
    tl_metrics_job_submitted();
    pthread_mutex_lock(&worker->lock);
    push(&worker->queue_head, &worker->queue_tail, job);
    pthread_cond_signal(&worker->wake);
    pthread_mutex_unlock(&worker->lock);
}

static void async_closed(uv_handle_t *handle)
{
    tl_worker_t *worker = handle->data;
    free(worker->state_path);
    free(worker);
}

void tl_worker_free(tl_worker_t *worker)
{
    if (worker == NULL)
        return;
    pthread_mutex_lock(&worker->lock);
    worker->stopping = 1;
    pthread_cond_signal(&worker->wake);
    pthread_mutex_unlock(&worker->lock);
    pthread_join(worker->thread, NULL);
    on_async(&worker->async); /* the last acks */
    pthread_mutex_destroy(&worker->lock);
    pthread_cond_destroy(&worker->wake);
    uv_close((uv_handle_t *)&worker->async, async_closed);
}

void tl_worker_on_written(tl_worker_t *worker, tl_worker_written_fn fn, void *data)
{
    pthread_mutex_lock(&worker->lock);
    worker->written = fn;
    worker->written_data = data;
    pthread_mutex_unlock(&worker->lock);
}

uint64_t tl_worker_jobs_done(const tl_worker_t *worker)
{
    return __atomic_load_n(&worker->jobs_done, __ATOMIC_RELAXED);
}

uint64_t tl_worker_batches(const tl_worker_t *worker)
{
    return __atomic_load_n(&worker->batches, __ATOMIC_RELAXED);
}

int tl_worker_audit_failing(const tl_worker_t *worker)
{
    return __atomic_load_n(&worker->audit_failing, __ATOMIC_RELAXED);
}
