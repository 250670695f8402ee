/*
 * The evidence store: immutable, content-addressed, zlib-compressed objects.
 *
 * An item is named by the lowercase hex SHA-256 of its *uncompressed*
 * content and kept at ROOT/<first two hex digits>/<all 64 hex digits> (ROOT
 * is normally DATA/evidence), compressed as a zlib stream (RFC 1950). Storing
 * the same content twice stores it once. Temporary files live in ROOT/tmp/.
 *
 * Durability (DESIGN §8): a commit writes a temporary file, fsyncs it, renames
 * it into place and fsyncs the directory before it returns 0; only then may
 * the caller record the item and acknowledge it. The temporary file is in
 * ROOT/tmp rather than beside the object because a streamed item's name (and
 * so its directory) is known only at the end; it is the same filesystem, so
 * the rename is still atomic. Everything here blocks on
 * disk, so the relay calls it from its storage worker, not the event loop.
 *
 * Ownership and threads: the store holds the root directory open and its
 * settings; after tl_evidence_store_open() it is read-only, so any number of
 * writers and readers may run on different threads at once. A writer or a
 * reader belongs to one thread at a time.
 *
 * Names that come from outside (a request for an item) are checked to be
 * exactly 64 lowercase hex digits before they touch a path: TL_EINVAL
 * otherwise.
 */
#ifndef TL_EVIDENCE_H
#define TL_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lowercase hex SHA-256 plus a NUL. */
#define TL_EVIDENCE_HASH_HEX 65
/* Default per-item limit on uncompressed size. */
#define TL_EVIDENCE_DEFAULT_MAX_ITEM (256ull * 1024 * 1024)

typedef struct tl_evidence_store tl_evidence_store_t;
typedef struct tl_evidence_writer tl_evidence_writer_t;
typedef struct tl_evidence_reader tl_evidence_reader_t;

typedef struct tl_evidence_options {
    uint64_t max_item_bytes; /* uncompressed; 0 means TL_EVIDENCE_DEFAULT_MAX_ITEM */
    int compression_level;   /* zlib 1..9; 0 means zlib's default (6) */
} tl_evidence_options_t;

/*
 * Opens the store rooted at dir, creating dir, dir/tmp and the 256 fan-out
 * directories (0700) if missing. options may be NULL for the defaults. Temporary files older than
 * an hour are what a crash mid-upload leaves behind; they were never acknowledged and are removed
 * here.
 */
int tl_evidence_store_open(const char *dir, const tl_evidence_options_t *options,
                           tl_evidence_store_t **out);
/* NULL is a no-op. Writers and readers must be finished first. */
void tl_evidence_store_close(tl_evidence_store_t *store);

/* Is hash exactly 64 lowercase hex digits (and so safe to use in a path)? */
bool tl_evidence_hash_valid(const char *hash);

/* Starts a streamed item (a temporary file in ROOT/tmp/). */
int tl_evidence_writer_new(tl_evidence_store_t *store, tl_evidence_writer_t **out);
/*
 * Adds content. Past the store's item limit: TL_EFULL, and the temporary file
 * is already gone. After any error the writer only accepts _abort (later
 * calls repeat the error).
 */
int tl_evidence_writer_write(tl_evidence_writer_t *writer, const void *data, size_t len);
/*
 * Finishes the item, makes it durable and frees the writer, whatever the
 * result. On success hash_out holds its name and size_out (may be NULL) its
 * uncompressed size. If the item already existed the new copy is dropped and
 * the call still succeeds.
 */
int tl_evidence_writer_commit(tl_evidence_writer_t *writer, char hash_out[TL_EVIDENCE_HASH_HEX],
                              uint64_t *size_out);
/*
 * As tl_evidence_writer_commit, for content announced in advance: if its
 * hash or size differ from what was announced, nothing is stored and the
 * result is TL_EMISMATCH.
 */
int tl_evidence_writer_commit_expected(tl_evidence_writer_t *writer, const char *expect_hash,
                                       uint64_t expect_size, char hash_out[TL_EVIDENCE_HASH_HEX]);
/* Drops the item and its temporary file and frees the writer. NULL is a no-op. */
void tl_evidence_writer_abort(tl_evidence_writer_t *writer);

/* A whole item at once: writer_new + write + commit. */
int tl_evidence_put(tl_evidence_store_t *store, const void *data, size_t len,
                    char hash_out[TL_EVIDENCE_HASH_HEX]);

/* 1 if the item is stored, 0 if not, negative on error (TL_EINVAL for a bad name). */
int tl_evidence_exists(tl_evidence_store_t *store, const char *hash);

/*
 * Removes the item, durably (its directory is synced). Only the retention prune calls it, after
 * the item's tombstones are durable in the audit log (docs/audit-format.md §22): evidence is
 * otherwise never removed. TL_ENOTFOUND if there is none by that name.
 */
int tl_evidence_remove(tl_evidence_store_t *store, const char *hash);

/*
 * Opens an item for reading its uncompressed content. TL_ENOTFOUND if there
 * is none by that name.
 */
int tl_evidence_open(tl_evidence_store_t *store, const char *hash, tl_evidence_reader_t **out);
/*
 * Reads up to cap bytes into buf; *got is 0 only at the end. The content's
 * hash is checked when the end is reached: if it does not match the name
 * (or the stored file is damaged anywhere) the read that would have reached
 * the end fails with TL_EDAMAGED instead, so a caller who reads to the end
 * never gets a clean end for damaged evidence. Bytes handed out before that
 * are unverified unless the reader was verified first (below).
 */
int tl_evidence_read(tl_evidence_reader_t *reader, void *buf, size_t cap, size_t *got);
/*
 * Verifies the item before any of it is handed out: reads ahead through up
 * to budget more bytes of its content with the reader's own buffers (bounded
 * memory whatever the size), hashing them. Once the whole item has been read
 * and matches its name, the reader goes back to the first byte and *verified
 * is set; reads then hand out content known to be whole (the end is checked
 * again, in case the file changes in between). Call until *verified, so a
 * large item can be spread over several calls; TL_EDAMAGED if it does not
 * match (tl_evidence_reader_problem() says how).
 */
int tl_evidence_verify_step(tl_evidence_reader_t *reader, uint64_t budget, bool *verified);
/*
 * A reader that hands out content it has not checked, damaged or not (a recording replayed
 * with --force, after its owner was told it does not match): the read that reaches the end hands
 * out its bytes, and the next read fails with TL_EDAMAGED if the content did not match its name.
 * Content that cannot be inflated fails at once, as always.
 */
void tl_evidence_reader_hand_out_damaged(tl_evidence_reader_t *reader);
/* How the item was found damaged ("content does not match its name"), "" if it was not. */
const char *tl_evidence_reader_problem(const tl_evidence_reader_t *reader);
/*
 * Frees the reader. Returns TL_EDAMAGED if damage was detected, 0
 * otherwise (including when the caller stopped before the end, where nothing
 * was verified). NULL is a no-op returning 0.
 */
int tl_evidence_close(tl_evidence_reader_t *reader);

/* The whole item checked against its name: 0, TL_EDAMAGED or TL_ENOTFOUND; reason (may be
 * NULL) says how it is damaged. */
int tl_evidence_verify(tl_evidence_store_t *store, const char *hash, char *reason, size_t size);
/* Calls fn with the name of every item stored (files named like an item, in the directory their
 * name says); stops at fn's first non-zero result and returns it. */
int tl_evidence_foreach(tl_evidence_store_t *store, int (*fn)(const char *hash, void *arg),
                        void *arg);

#endif
