/*
 * The audit chain as the relay keeps it: the log (relay/store/audit.c) plus its head in the store.
 *
 * The store holds the chain's head (the last sequence number and hash) and, in an outbox, the
 * lines the log may not hold yet. An audited change stages its entry in the same unit of work of
 * the store (relay/store/store.h) as the change itself: the entry is numbered and chained from the
 * stored head, formatted into its final line, put in the outbox, and the head moves on; all of it
 * commits or none. After the commit the outbox is flushed: the log receives exactly those lines
 * (one write, one fdatasync), and only then are they deleted from the outbox. docs/audit-format.md
 * §7 has the crash-point reasoning; in short, after any crash the log holds a prefix of the stored
 * chain and the outbox holds the rest, so the next flush completes it and nothing is written twice.
 *
 * Because the head is in the store, a log that is missing, shorter than the head (beyond what
 * the outbox can rewrite), or different from it is noticed when the chain opens, and refused: a
 * new chain is never started silently. tl_audit_chain_recover() is the operator's explicit way
 * out, and it leaves a permanent record of the loss in the log.
 *
 * Every writer of a data directory's log goes through here (the serving relay's storage worker,
 * and the admin commands beside it); the store's units of work (one writer at a time) and the
 * log's lock keep them in one chain.
 *
 * Ownership: a chain belongs to one thread, like its store; it does not own the store.
 */
#ifndef TL_AUDIT_CHAIN_H
#define TL_AUDIT_CHAIN_H

#include "relay/store/audit.h"
#include "relay/store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tl_audit_chain tl_audit_chain_t;

/* A new data directory: no head is recorded yet and the log is absent or empty. */
#define TL_AUDIT_CHAIN_CREATE 1u

/*
 * Opens the log at path for the chain in store and checks that they agree: the log must hold
 * the stored chain up to where the outbox takes over. Lines waiting in the outbox are written
 * now (a crash between a commit and its log write), a torn last line is cut and recorded, and
 * entries left by an older relay (schema 3's audit_pending) are taken over. On refusal the
 * result is TL_EAUDIT and problem names what is missing or different ("audit log ends at seq 41
 * but the database head is seq 57 (hash ...): 16 entries missing"); other negative codes are
 * store or I/O failures, also described in problem.
 */
int tl_audit_chain_open(tl_store_t *store, const char *path, unsigned flags, tl_audit_chain_t **out,
                        char *problem, size_t problem_size);
/* Closes the log. Lines still in the outbox stay there for the next writer. NULL is a no-op. */
void tl_audit_chain_close(tl_audit_chain_t *chain);

/*
 * Inside the caller's unit of work: makes entry the chain's next line (outbox and head).
 * Undone with the unit (or the step of it) it is in. TL_EINVAL for an entry the log would
 * refuse (audit-format §3 writer limits). seq_out may be NULL.
 */
int tl_audit_chain_stage(tl_audit_chain_t *chain, const tl_audit_entry_t *entry, uint64_t *seq_out);
/* Lines staged since the last flush (including any a rollback undid). */
uint64_t tl_audit_chain_staged(const tl_audit_chain_t *chain);
/* After a rollback of everything staged: nothing to flush for it. */
void tl_audit_chain_forget_staged(tl_audit_chain_t *chain);

/*
 * Outside any unit of work: writes every outbox line the log lacks, in order, syncs, then
 * deletes them from the outbox. 0 when the outbox is empty and the log agrees with the head;
 * TL_EAUDIT otherwise (tl_audit_chain_problem() says why: disk full, the log replaced or
 * removed, ...). Nothing is deleted from the outbox unless it is durable in the log.
 */
int tl_audit_chain_flush(tl_audit_chain_t *chain);
/* 1 if a flush is needed before anything new may be acknowledged (lines wait in the outbox, or
 * the last flush failed), 0 if not, negative on a store failure. */
int tl_audit_chain_waiting(tl_audit_chain_t *chain);
/* Why the last open or flush failed, "" if it did not. */
const char *tl_audit_chain_problem(const tl_audit_chain_t *chain);

/*
 * For one-shot writers (the admin commands): opens the chain (refusing as above), runs change
 * as one unit of work of the store (it stages its entries with tl_audit_chain_stage), commits and
 * flushes. A change that fails is rolled back. If the flush fails the change is committed but
 * the caller must not report success: its entries wait in the outbox and the next writer writes
 * them; problem says why. change may be NULL (then the chain is only checked and flushed).
 */
int tl_audit_chain_record(tl_store_t *store, const char *path,
                          int (*change)(tl_store_t *store, tl_audit_chain_t *chain, void *arg),
                          void *arg, char *problem, size_t problem_size);

/*
 * The operator's way out when the log and the store disagree (`tierline-relay audit-recover`).
 * Keeps the longest prefix of the log that verifies (a damaged original is kept beside it as
 * PATH.damaged-TIMESTAMP), appends an "audit.recover" entry that continues that prefix's chain
 * and states what was found (the stored head, where the log ended, how many entries are lost,
 * who ran it: by), re-stages after it whatever the outbox held that the log lacks (marked
 * "recovered"), and makes the result the stored head. The relay must not be serving. *report
 * describes what was done (for --json); *recovered is 0 when the log and the store already
 * agreed and nothing was written.
 */
int tl_audit_chain_recover(tl_store_t *store, const char *path, json_t *by, json_t **report,
                           int *recovered, char *problem, size_t problem_size);

#endif
