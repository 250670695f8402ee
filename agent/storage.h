/*
 * The agent's disk work, off its loop (docs/architecture.md "The agent").
 *
 * The agent's loop serves the relay connection, the control socket and the
 * technicians' sessions; it never waits for the disk. A storage lane
 * (tl_storage_t) runs jobs on libuv's thread pool one at a time, in the
 * order they were submitted, and runs each job's done callback back on the
 * loop before it starts the next job. What needs order gets a lane:
 * grants.json (agent/consent.c) has one, the outbox (agent/outbox.c, driven
 * by agent/tunnel.c) another, so a large evidence read never delays a grant.
 *
 * A storage file (tl_storage_file_t) is a whole file that holds its owner's
 * latest state. A save asks for it to be written; the state is rendered on
 * the loop just before the write goes to the thread; at most one write is in
 * flight, and saves made meanwhile are folded into the one next write. So
 * writes of one file never reorder, an older state is never written after a
 * newer one, and a burst of changes costs at most two writes. The done
 * callback of a save runs once a write rendered after that save is durable
 * (0), or failed (its error); durability promises are kept by answering from
 * there.
 *
 * Ownership: a job's data is the submitter's; the lane holds it from submit
 * until done returns. A work function runs on a pool thread: it may touch
 * only its data and the file system, never the loop or what the loop owns.
 */
#ifndef TL_STORAGE_H
#define TL_STORAGE_H

#include <stddef.h>
#include <uv.h>

typedef struct tl_storage tl_storage_t;
typedef struct tl_storage_file tl_storage_file_t;

/* Writes a whole file durably: 0 or a negative code. Runs on a pool thread. */
typedef int (*tl_storage_write_fn)(const char *path, const void *data, size_t len);

typedef struct tl_storage_config {
    /* How storage files are written; NULL: tl_storage_write_file. Tests slow it down. */
    tl_storage_write_fn write_file;
} tl_storage_config_t;

/* config may be NULL. */
tl_storage_t *tl_storage_new(uv_loop_t *loop, const tl_storage_config_t *config, int *err);
/*
 * Released once idle: every job submitted has run, its done callback
 * returned, and none was queued meanwhile (at once if idle now). After this
 * call, only the done callbacks of its jobs may submit more: a last write
 * asked for while stopping still happens. NULL is a no-op.
 */
void tl_storage_free(tl_storage_t *storage);

/* Runs on a pool thread; its result goes to done. */
typedef int (*tl_storage_work_fn)(void *data);
/* Runs on the loop with work's result (UV_ECANCELED if the loop cancelled it). */
typedef void (*tl_storage_done_fn)(void *data, int result);

/* Queues a job behind the lane's others; TL_ENOMEM. */
int tl_storage_submit(tl_storage_t *storage, tl_storage_work_fn work, tl_storage_done_fn done,
                      void *data);
/* Jobs submitted whose done has not run yet. */
size_t tl_storage_pending(const tl_storage_t *storage);

/*
 * The default durable write: PATH.tmp (mode 0600) written and fsynced,
 * renamed over path, and the directory fsynced.
 */
int tl_storage_write_file(const char *path, const void *data, size_t len);

/* The owner's state as the file's text: a malloc'd buffer and *len; NULL on failure. */
typedef char *(*tl_storage_render_fn)(void *owner, size_t *len);

/* A file written on storage's lane with render's text; render runs on the loop. */
tl_storage_file_t *tl_storage_file_new(tl_storage_t *storage, const char *path,
                                       tl_storage_render_fn render, void *owner, int *err);
/*
 * The owner's state changed: write it. done (may be NULL) gets 0 once a
 * write rendered after this call is durable, or that write's error.
 * TL_EINVAL once closing; TL_ENOMEM.
 */
int tl_storage_file_save(tl_storage_file_t *file, tl_storage_done_fn done, void *data);
/* 1 while a write is in flight or due. */
int tl_storage_file_busy(const tl_storage_file_t *file);
/*
 * Takes no more saves, finishes the writes already asked for (their done
 * callbacks still run), then calls closed(owner) from the loop and frees
 * the file. The owner must stay valid until then: render may still run.
 */
void tl_storage_file_close(tl_storage_file_t *file, void (*closed)(void *owner));

#endif
