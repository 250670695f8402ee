#include "relay/worker.h"
#include "proto/err.h"
#include "proto/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Jobs taken in one batch at most, so one burst cannot starve the acks. */
#define TL_WORKER_MAX_BATCH 256

struct tl_worker {
    uv_loop_t *loop;
    tl_store_t *store;
    tl_audit_t *audit;
    tl_evidence_store_t *evidence;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    tl_job_t *queue_head, *queue_tail; /* submitted, waiting */
    tl_job_t *done_head, *done_tail;   /* finished, waiting for the loop */
    int stopping;
    uv_async_t async;
    /* Worker thread only: the batch's audit entries. */
    tl_audit_entry_t *entries;
    size_t entry_count, entry_alloc;
    int64_t pending_max; /* the batch's newest audit_pending row */
    int in_txn;
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
    if (worker->entry_count == worker->entry_alloc) {
        size_t alloc = worker->entry_alloc ? worker->entry_alloc * 2 : 16;
        tl_audit_entry_t *grown = realloc(worker->entries, alloc * sizeof *grown);
        if (grown == NULL)
            return TL_ENOMEM;
        worker->entries = grown;
        worker->entry_alloc = alloc;
    }
    /* A bad entry would fail the whole batch's single write: refuse it here. */
    tl_audit_entry_t check = {actor, action, subject ? subject : "", details, 0};
    int rc = tl_audit_check_entry(&check);
    if (rc != 0)
        return rc;
    char *actor_copy = strdup(actor), *action_copy = strdup(action),
         *subject_copy = strdup(subject ? subject : "");
    if (actor_copy == NULL || action_copy == NULL || subject_copy == NULL) {
        free(actor_copy);
        free(action_copy);
        free(subject_copy);
        return TL_ENOMEM;
    }
    /* The entry is also committed with the change it records, so that a crash
     * between commit and audit append cannot lose it (docs/architecture.md). */
    if (worker->in_txn) {
        int64_t id = 0;
        rc = tl_store_audit_pending_add(ctx->store, 0, actor, action, subject, details, &id);
        if (rc != 0) {
            free(actor_copy);
            free(action_copy);
            free(subject_copy);
            return rc;
        }
        if (id > worker->pending_max)
            worker->pending_max = id;
    }
    tl_audit_entry_t *entry = &worker->entries[worker->entry_count++];
    *entry = (tl_audit_entry_t){actor_copy, action_copy, subject_copy,
                                details ? json_incref(details) : NULL, 0};
    return 0;
}

static void drop_entries(tl_worker_t *worker, size_t from)
{
    for (size_t i = from; i < worker->entry_count; i++) {
        free((char *)worker->entries[i].actor);
        free((char *)worker->entries[i].action);
        free((char *)worker->entries[i].subject);
        json_decref(worker->entries[i].details);
    }
    worker->entry_count = from;
}

static int run_savepoint(tl_worker_t *worker, tl_job_t *job, tl_job_ctx_t *ctx, int in_txn)
{
    size_t first = worker->entry_count;
    if (in_txn && tl_store_savepoint(worker->store) != 0)
        return TL_ESTORE;
    int rc = job->run(job, ctx);
    if (in_txn) {
        if (rc == 0)
            rc = tl_store_release(worker->store);
        else
            tl_store_rollback_savepoint(worker->store);
    }
    if (rc != 0)
        drop_entries(worker, first);
    job->audit_first = first;
    job->audit_count = worker->entry_count - first;
    return rc;
}

static void run_batch(tl_worker_t *worker, tl_job_t *batch)
{
    tl_job_ctx_t ctx = {worker->store, worker->evidence, worker};
    int in_txn = tl_store_begin(worker->store) == 0;
    int failed = in_txn ? 0 : TL_ESTORE;
    worker->in_txn = in_txn;
    worker->pending_max = 0;

    for (tl_job_t *job = batch; job != NULL; job = job->next)
        job->status = failed ? failed : run_savepoint(worker, job, &ctx, in_txn);

    int commit_rc = in_txn ? tl_store_commit(worker->store) : 0;
    if (commit_rc != 0)
        tl_store_rollback(worker->store);
    int audit_rc = 0;
    worker->in_txn = 0;
    if (commit_rc == 0 && worker->entry_count > 0)
        audit_rc = tl_audit_append_batch(worker->audit, worker->entries, worker->entry_count);
    /* In the log now: the store's copies can go (a crash before this line
     * appends them again at start, marked recovered). */
    if (commit_rc == 0 && audit_rc == 0 && worker->pending_max > 0)
        tl_store_audit_pending_clear(worker->store, worker->pending_max);
    if (commit_rc != 0 || audit_rc != 0) {
        tl_log_error("storage batch failed commit=%s audit=%s", tl_strerror(commit_rc),
                     tl_strerror(audit_rc));
        for (tl_job_t *job = batch; job != NULL; job = job->next) {
            /* Nothing of a failed batch may be acknowledged. */
            if (job->status == 0)
                job->status = commit_rc != 0 ? commit_rc : audit_rc;
        }
    }
    drop_entries(worker, 0);
    __atomic_add_fetch(&worker->batches, 1, __ATOMIC_RELAXED);
}

static void *worker_main(void *arg)
{
    tl_worker_t *worker = arg;
    pthread_mutex_lock(&worker->lock);
    for (;;) {
        while (worker->queue_head == NULL && !worker->stopping)
            pthread_cond_wait(&worker->wake, &worker->lock);
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
        done->done(done, done->status);
        done = next;
    }
}

static void async_closed(uv_handle_t *handle);

tl_worker_t *tl_worker_new(uv_loop_t *loop, tl_store_t *store, tl_audit_t *audit,
                           tl_evidence_store_t *evidence, int *err)
{
    tl_worker_t *worker = calloc(1, sizeof *worker);
    if (worker == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    worker->loop = loop;
    worker->store = store;
    worker->audit = audit;
    worker->evidence = evidence;
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
        if (worker->async.loop == NULL)
            free(worker); /* else freed by the async handle's close callback */
        return NULL;
    }
    return worker;
}

void tl_worker_submit(tl_worker_t *worker, tl_job_t *job)
{
    pthread_mutex_lock(&worker->lock);
    push(&worker->queue_head, &worker->queue_tail, job);
    pthread_cond_signal(&worker->wake);
    pthread_mutex_unlock(&worker->lock);
}

static void async_closed(uv_handle_t *handle)
{
    free(handle->data);
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
    free(worker->entries);
    pthread_mutex_destroy(&worker->lock);
    pthread_cond_destroy(&worker->wake);
    uv_close((uv_handle_t *)&worker->async, async_closed);
}

uint64_t tl_worker_jobs_done(const tl_worker_t *worker)
{
    return __atomic_load_n(&worker->jobs_done, __ATOMIC_RELAXED);
}

uint64_t tl_worker_batches(const tl_worker_t *worker)
{
    return __atomic_load_n(&worker->batches, __ATOMIC_RELAXED);
}

int tl_worker_recover_audit(tl_store_t *store, tl_audit_t *audit)
{
    json_t *rows = NULL;
    int rc = tl_store_audit_pending_list(store, &rows);
    if (rc != 0 || json_array_size(rows) == 0) {
        json_decref(rows);
        return rc;
    }
    size_t count = json_array_size(rows), i;
    tl_audit_entry_t *entries = calloc(count, sizeof *entries);
    json_t *row;
    int64_t max_id = 0;
    if (entries == NULL) {
        json_decref(rows);
        return TL_ENOMEM;
    }
    json_array_foreach(rows, i, row)
    {
        json_t *details = json_object_get(row, "details");
        json_object_set_new(details, "recovered", json_true());
        entries[i] =
            (tl_audit_entry_t){json_string_value(json_object_get(row, "actor")),
                               json_string_value(json_object_get(row, "action")),
                               json_string_value(json_object_get(row, "subject")), details, 0};
        max_id = json_integer_value(json_object_get(row, "id"));
    }
    rc = tl_audit_append_batch(audit, entries, count);
    if (rc == 0)
        rc = tl_store_audit_pending_clear(store, max_id);
    if (rc == 0)
        tl_log_warn("audit entries recovered after a crash count=%zu", count);
    free(entries);
    json_decref(rows);
    return rc;
}
