#include "agent/storage.h"
#include "proto/err.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
    uv_work_t req;
    tl_storage_t *storage;
    struct job *next;
    tl_storage_work_fn work;
    tl_storage_done_fn done;
    void *data;
    int result;
};

struct tl_storage {
    uv_loop_t *loop;
    tl_storage_write_fn write_file;
    struct job *head; /* head is the running job while running is set */
    struct job *tail;
    size_t pending;
    unsigned running : 1;
    unsigned in_done : 1; /* a done callback is on the stack */
    unsigned freeing : 1;
};

struct waiter {
    struct waiter *next;
    tl_storage_done_fn done;
    void *data;
};

struct tl_storage_file {
    tl_storage_t *storage;
    char *path;
    tl_storage_render_fn render;
    void *owner;
    void (*closed)(void *owner);
    struct waiter *due;      /* saves the next write covers, oldest first */
    struct waiter *in_write; /* saves the write in flight covers */
    char *text;              /* what the write in flight writes */
    size_t len;
    unsigned dirty : 1;   /* a save arrived since the last render */
    unsigned writing : 1; /* a write is in flight */
    unsigned closing : 1;
};

/* ---- the lane -------------------------------------------------------------------- */

tl_storage_t *tl_storage_new(uv_loop_t *loop, const tl_storage_config_t *config, int *err)
{
    tl_storage_t *storage = calloc(1, sizeof *storage);
    if (storage == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    storage->loop = loop;
    storage->write_file =
        config != NULL && config->write_file != NULL ? config->write_file : tl_storage_write_file;
    return storage;
}

static void release_if_idle(tl_storage_t *storage)
{
    if (storage->freeing && !storage->running && !storage->in_done && storage->head == NULL)
        free(storage);
}

static void on_work(uv_work_t *req)
{
    struct job *job = req->data;
    job->result = job->work != NULL ? job->work(job->data) : 0;
}

static void start_next(tl_storage_t *storage);

static void on_after_work(uv_work_t *req, int status)
{
    struct job *job = req->data;
    tl_storage_t *storage = job->storage;
    storage->head = job->next;
    if (storage->head == NULL)
        storage->tail = NULL;
    storage->running = 0;
    storage->pending--;
    if (status != 0)
        job->result = status;
    storage->in_done = 1;
    if (job->done != NULL)
        job->done(job->data, job->result);
    storage->in_done = 0;
    free(job);
    start_next(storage);
}

static void start_next(tl_storage_t *storage)
{
    while (!storage->running && storage->head != NULL) {
        struct job *job = storage->head;
        job->req.data = job;
        int rc = uv_queue_work(storage->loop, &job->req, on_work, on_after_work);
        if (rc == 0) {
            storage->running = 1;
            return;
        }
        /* libuv refuses only bad arguments; report it through done rather than lose the job. */
        storage->head = job->next;
        if (storage->head == NULL)
            storage->tail = NULL;
        storage->pending--;
        storage->in_done = 1;
        if (job->done != NULL)
            job->done(job->data, rc);
        storage->in_done = 0;
        free(job);
    }
    release_if_idle(storage);
}

int tl_storage_submit(tl_storage_t *storage, tl_storage_work_fn work, tl_storage_done_fn done,
                      void *data)
{
    struct job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return TL_ENOMEM;
    job->storage = storage;
    job->work = work;
    job->done = done;
    job->data = data;
    if (storage->tail != NULL)
        storage->tail->next = job;
    else
        storage->head = job;
    storage->tail = job;
    storage->pending++;
    if (!storage->in_done)
        start_next(storage);
    return 0;
}

size_t tl_storage_pending(const tl_storage_t *storage)
{
    return storage->pending;
}

void tl_storage_free(tl_storage_t *storage)
{
    if (storage == NULL || storage->freeing)
        return;
    storage->freeing = 1;
    release_if_idle(storage);
}

int tl_storage_write_file(const char *path, const void *data, size_t len)
{
    return tl_fs_write_atomic(path, data, len, TL_FS_SYNC | TL_FS_SYNC_DIR, NULL);
}

/* ---- files written whole, latest state wins -------------------------------------------- */

tl_storage_file_t *tl_storage_file_new(tl_storage_t *storage, const char *path,
                                       tl_storage_render_fn render, void *owner, int *err)
{
    tl_storage_file_t *file = calloc(1, sizeof *file);
    if (file == NULL || (file->path = strdup(path)) == NULL) {
        free(file);
        *err = TL_ENOMEM;
        return NULL;
    }
    file->storage = storage;
    file->render = render;
    file->owner = owner;
    return file;
}

static int file_write_work(void *data)
{
    tl_storage_file_t *file = data;
    return file->storage->write_file(file->path, file->text, file->len);
}

static void file_dispatch(tl_storage_file_t *file);

/* Calls and frees a list of waiters with one result. */
static void settle(struct waiter *waiters, int result)
{
    while (waiters != NULL) {
        struct waiter *next = waiters->next;
        if (waiters->done != NULL)
            waiters->done(waiters->data, result);
        free(waiters);
        waiters = next;
    }
}

static void file_closed(void *data, int result)
{
    (void)result;
    tl_storage_file_t *file = data;
    if (file->closed != NULL)
        file->closed(file->owner);
    free(file->path);
    free(file);
}

/* Nothing due and nothing in flight: a closing file goes, from the lane so it is never re-entrant.
 */
static void file_maybe_close(tl_storage_file_t *file)
{
    if (!file->closing || file->writing || file->dirty)
        return;
    file->writing = 1; /* nothing else may start now */
    if (tl_storage_submit(file->storage, NULL, file_closed, file) != 0)
        file_closed(file, 0);
}

static void file_write_done(void *data, int result)
{
    tl_storage_file_t *file = data;
    struct waiter *covered = file->in_write;
    file->in_write = NULL;
    free(file->text);
    file->text = NULL;
    file->writing = 0;
    /* The owner may save again from here: such a save starts the next write itself. */
    settle(covered, result);
    if (!file->writing && file->dirty)
        file_dispatch(file);
    file_maybe_close(file);
}

/* Renders the latest state and hands it to the lane; the saves due so far ride on it. */
static void file_dispatch(tl_storage_file_t *file)
{
    file->dirty = 0;
    struct waiter *covered = file->due;
    file->due = NULL;
    file->text = file->render(file->owner, &file->len);
    int rc = file->text != NULL ? 0 : TL_ENOMEM;
    if (rc == 0) {
        file->in_write = covered;
        file->writing = 1;
        rc = tl_storage_submit(file->storage, file_write_work, file_write_done, file);
        if (rc == 0)
            return;
        file->in_write = NULL;
        file->writing = 0;
        free(file->text);
        file->text = NULL;
    }
    settle(covered, rc);
}

int tl_storage_file_save(tl_storage_file_t *file, tl_storage_done_fn done, void *data)
{
    if (file->closing)
        return TL_EINVAL;
    if (done != NULL) {
        struct waiter *waiter = calloc(1, sizeof *waiter);
        if (waiter == NULL)
            return TL_ENOMEM;
        waiter->done = done;
        waiter->data = data;
        struct waiter **at = &file->due;
        while (*at != NULL)
            at = &(*at)->next;
        *at = waiter;
    }
    file->dirty = 1;
    if (!file->writing)
        file_dispatch(file);
    return 0;
}

int tl_storage_file_busy(const tl_storage_file_t *file)
{
    return file->writing || file->dirty;
}

void tl_storage_file_close(tl_storage_file_t *file, void (*closed)(void *owner))
{
    if (file == NULL || file->closing)
        return;
    file->closing = 1;
    file->closed = closed;
    file_maybe_close(file);
}
