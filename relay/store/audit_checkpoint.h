/*
 * Signed checkpoints of the audit log (docs/audit-format.md §14): the relay signs the root of the
 * log's Merkle tree (relay/store/audit_tree.h) with its audit key (relay/store/audit_key.h), as a
 * C2SP tlog-checkpoint in a C2SP signed note, keeps each in DATA/audit.checkpoints and puts each
 * on the record with an "audit.checkpoint" entry, which is itself a later leaf of the tree.
 *
 * When: every TL_AUDIT_CHECKPOINT_EVERY entries the relay writes or every
 * TL_AUDIT_CHECKPOINT_INTERVAL_MS, whichever comes first, only if the tree grew beyond the last
 * checkpoint and its own entry; at shutdown (same rule); and whenever a caller asks
 * (tl_audit_checkpoints_request: the end of a session, the close of a ticket).
 *
 * Where: the signing, the file's fdatasync and the entry run on the storage worker
 * (relay/store/worker.h) as a job like any other, never on the loop. They fail closed like any
 * audited action: while the log cannot be written, or when the checkpoint cannot be stored, no
 * checkpoint is made, the caller gets TL_EAUDIT and the relay logs it.
 *
 * DATA/audit.checkpoints is append-only: each record is one signed note followed by one empty
 * line. A torn last record (a crash mid-write) is cut when the relay starts.
 *
 * Ownership: the checkpoints object is made and freed on the loop; its tree, key and last
 * checkpoint belong to the worker's jobs (and, after the worker has stopped, to
 * tl_audit_checkpoints_final).
 */
#ifndef TL_AUDIT_CHECKPOINT_H
#define TL_AUDIT_CHECKPOINT_H

#include "proto/note.h"
#include "relay/store/audit_chain.h"
#include "relay/store/store.h"
#include "relay/store/worker.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TL_AUDIT_CHECKPOINT_EVERY 1000
#define TL_AUDIT_CHECKPOINT_INTERVAL_MS (5 * 60 * 1000)

/* ---- the checkpoints file ---- */

/* For each complete note of the file at path, in order (index from 1); fn's non-zero result stops
 * the walk and is returned. */
typedef int (*tl_audit_note_fn)(void *arg, uint64_t index, const char *note, size_t len);
/*
 * Walks the checkpoints file: *tail_bytes (may be NULL) gets the bytes after its last complete
 * record (a last note without its empty line counts as complete). -ENOENT when there is no file,
 * TL_EPROTO when a record is longer than a note may be.
 */
int tl_audit_checkpoints_each(const char *path, tl_audit_note_fn fn, void *arg,
                              uint64_t *tail_bytes);
/* The last complete note of the file, malloc'd into *note (NULL and 0 if it holds none). */
int tl_audit_checkpoints_last(const char *path, char **note, size_t *len);

/*
 * The details of the "audit.checkpoint" entry of a signed checkpoint note: origin, size, root
 * (base64, as in the note) and signature (the base64 of the note's signature line by name).
 */
int tl_audit_checkpoint_details(const char *note, size_t len, json_t **out);

/* The audit key's path in data_dir and its name there (from the relay key, audit_key.h). */
int tl_audit_checkpoints_signer(const char *data_dir, char *key_path, size_t key_path_size,
                                char name[TL_NOTE_NAME_MAX + 1]);

/* Each new checkpoint signed while the relay serves is published on this channel of the storage
 * worker (relay/store/worker.h) as {"size": N}, once durable: agents are told (docs/protocol.md
 * §7.15). */
#define TL_AUDIT_CHECKPOINT_CHANNEL "audit.checkpoint"

/* ---- the relay's checkpoints ---- */

typedef struct tl_audit_checkpoints tl_audit_checkpoints_t;

/*
 * On the loop, once the worker runs: loads the audit key, the tree and the last checkpoint of
 * data_dir, cuts a torn record off the checkpoints file, starts the timer and the count of
 * entries, and asks for a first checkpoint (if the tree grew past the last one and its entry:
 * entries a killed relay or admin commands left unsigned). NULL with *err (and problem) on
 * failure: the relay does not serve without it.
 *
 * No checkpoint reaches past what the worker's chain wrote (tl_audit_chain_written): a line
 * appended to the log by anyone else is never signed.
 */
tl_audit_checkpoints_t *tl_audit_checkpoints_start(uv_loop_t *loop, tl_worker_t *worker,
                                                   const char *data_dir, int *err, char *problem,
                                                   size_t problem_size);

/* What tl_audit_checkpoints_request gives back, on the loop. status 0: checkpoint is the one
 * that now covers every entry written before the request, note its signed text. */
typedef void (*tl_audit_checkpoint_fn)(void *data, int status, const tl_checkpoint_t *checkpoint,
                                       const char *note);
/*
 * From the loop: a checkpoint of the log as it is once the entries already submitted are written
 * (a new one if the tree grew since the last, else the last), then done. For the end of a session
 * or the close of a ticket: call it after that action's own job is done, so its entry is in the
 * tree. done gets TL_EAUDIT if the checkpoint cannot be made; TL_ENOMEM is returned at once, and
 * TL_ECLOSED once tl_audit_checkpoints_stop ran (the shutdown checkpoint then covers it).
 */
int tl_audit_checkpoints_request(tl_audit_checkpoints_t *checkpoints, tl_audit_checkpoint_fn done,
                                 void *data);

/* The same for a ticket's close: the checkpoint is also put on that ticket's timeline (an event
 * "checkpoint": size, root, origin), so the ticket says which signed tree covers its close. */
int tl_audit_checkpoints_request_for_ticket(tl_audit_checkpoints_t *checkpoints,
                                            int64_t ticket_id, tl_audit_checkpoint_fn done,
                                            void *data);
/*
 * On the worker, inside a job's run (ctx its context): a checkpoint of the tree as the chain wrote
 * it, now (a new one unless the last is of exactly this tree), its entry staged in the job's unit.
 * For `audit verify` over SSH, so that every entry the relay wrote is signed before the log is
 * checked. TL_EAUDIT when it cannot be made (the log fails, or holds what the relay did not
 * write up to that point).
 */
int tl_audit_checkpoints_sign_now(tl_audit_checkpoints_t *checkpoints, tl_job_ctx_t *ctx);

/* A tl_audit_checkpoint_fn for callers that only need a failure logged: data is a static text
 * saying when it was asked for ("at a session's end"). */
void tl_audit_checkpoint_logged(void *data, int status, const tl_checkpoint_t *checkpoint,
                                const char *note);

/*
 * The timed checkpoint, for tests (libuv's timer takes no injected clock): *repeat_ms is the
 * timer's period and *due_in_ms the time until it fires next (0 and 0 when it is not running);
 * tl_audit_checkpoints_interval_elapsed is what the timer runs each period, from the loop.
 */
void tl_audit_checkpoints_timer(const tl_audit_checkpoints_t *checkpoints, uint64_t *repeat_ms,
                                uint64_t *due_in_ms);
void tl_audit_checkpoints_interval_elapsed(tl_audit_checkpoints_t *checkpoints);

/* From the loop, before the worker stops: no more timed or counted checkpoints. */
void tl_audit_checkpoints_stop(tl_audit_checkpoints_t *checkpoints);
/*
 * After the worker has stopped: the shutdown checkpoint (if the tree grew), signed, stored and
 * recorded through store and chain on the calling thread. Failures are logged.
 */
void tl_audit_checkpoints_final(tl_audit_checkpoints_t *checkpoints, tl_store_t *store,
                                tl_audit_chain_t *chain);
/* After the loop ran the timer's close (or if it never started). NULL is a no-op. */
void tl_audit_checkpoints_free(tl_audit_checkpoints_t *checkpoints);

#endif
