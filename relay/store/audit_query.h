/*
 * The audit log read for auditors (docs/audit-format.md §18): searching its entries, proving one
 * of them is in the tree a signed checkpoint covers, the latest checkpoint, and the relay's own
 * verification of its log and checkpoints, with a checkpoint the auditor kept. What the SSH
 * commands `audit search|prove|checkpoint|verify` (relay/cmd/audit.c) run on the storage worker.
 *
 * Everything here reads files and changes none: the log (DATA/audit.log), its checkpoints
 * (DATA/audit.checkpoints), its leaves (DATA/audit.leaves, only for proofs, each of which is
 * checked against the signed root before it is given) and the audit key. Nothing here does
 * network I/O or keeps global state; the calls block on disk, so the relay makes them from its
 * storage worker, where checkpoints are also made (so the leaves file does not move under them).
 */
#ifndef TL_AUDIT_QUERY_H
#define TL_AUDIT_QUERY_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most hits one search gives (--limit), and the default. */
#define TL_AUDIT_SEARCH_LIMIT_MAX 10000
#define TL_AUDIT_SEARCH_LIMIT_DEFAULT 100
/* Most entries one search reads: past it, it stops and says so (scan_capped). */
#define TL_AUDIT_SEARCH_SCAN_MAX 2000000
/* Longest --command pattern, in bytes; and the most bytes of an entry's command text it is
 * matched against (a command line is at most 8 KiB, docs/technicians.md). */
#define TL_AUDIT_PATTERN_MAX 256
#define TL_AUDIT_SUBJECT_TEXT_MAX 8192
/* Most bytes of kept checkpoints an auditor may give `audit verify --from-checkpoint -`. */
#define TL_AUDIT_KEPT_MAX (64 * 1024)

/* What a search looks for; NULL (or 0) fields match every entry. */
typedef struct tl_audit_query {
    const char *ticket;     /* the subject, or details.ticket */
    const char *session;    /* details.grant: a session is named by its grant */
    const char *actor;      /* the actor, or what follows its "KIND:" ("alice" for tech:alice) */
    const char *device;     /* details.device */
    const char *action;     /* the action; "ticket." ending in a dot: every ticket.* action */
    const regex_t *command; /* details.argv (its words joined by spaces), .runbook, .command */
    int64_t since_ms;       /* entries timed at or after; 0: from the first */
    int64_t until_ms;       /* entries timed at or before; 0: to the last */
    uint64_t limit;         /* most hits, 1..TL_AUDIT_SEARCH_LIMIT_MAX */
} tl_audit_query_t;

typedef struct tl_audit_search_report {
    uint64_t scanned;    /* entries read */
    uint64_t matched;    /* hits given */
    int more;            /* the limit was reached before the end of the log */
    int scan_capped;     /* TL_AUDIT_SEARCH_SCAN_MAX entries were read before the end */
    uint64_t unreadable; /* lines that are not entries (a damaged log: audit verify names them) */
} tl_audit_search_report_t;

/*
 * 0 and the pattern compiled into out (POSIX ERE, REG_NOSUB), or TL_EINVAL with why: longer than
 * TL_AUDIT_PATTERN_MAX, a back-reference (the one feature whose matching is not bounded by a
 * polynomial), or what regcomp says. regfree(out) after a 0.
 */
int tl_audit_pattern_compile(const char *pattern, regex_t *out, char *why, size_t why_size);

/*
 * The log's entries that match query, in log order, from the first: *hits a JSON array of the
 * entries (objects as the log holds them) each with "index", its leaf index. -errno when the log
 * cannot be read.
 */
int tl_audit_search(const char *log_path, const tl_audit_query_t *query, json_t **hits,
                    tl_audit_search_report_t *report);

/* The latest stored checkpoint of data_dir: its note (malloc'd) and, if details is not NULL, its
 * members (origin, size, root, signature). -ENOENT when there is none yet. */
int tl_audit_query_checkpoint(const char *data_dir, char **note, size_t *len, json_t **details);

/*
 * An inclusion proof (RFC 9162 §2.1.3) of one entry against the latest checkpoint: by_seq 0
 * names it by leaf index, 1 by seq. *proof is an object: index, seq, entry (the line without its
 * line feed), leaf_hash, tree_size, root, audit_path (base64 each) and checkpoint (the note).
 * The proof is checked against the signed root before it is given. TL_ENOTFOUND: no such entry
 * in the log; TL_ESTATE: the entry is newer than the latest checkpoint (or there is none yet);
 * TL_EVERIFY: the log or its leaves do not give the checkpoint's root (audit verify says why).
 * why says each in words.
 */
int tl_audit_prove(const char *data_dir, int by_seq, uint64_t which, json_t **proof, char *why,
                   size_t why_size);

/*
 * What an agent witnessing the log asks (docs/protocol.md §7.15): *answer is {"checkpoint": the
 * latest signed note, "key": the audit key's verifier key, "proof": a consistency proof (RFC
 * 9162 §2.1.4, base64 each) from a tree of old_size leaves to the checkpoint's} — the proof is
 * empty when old_size is 0 or not smaller than the checkpoint's size (the witness judges those);
 * {} when no checkpoint is signed yet. On failure, why says what could not be read.
 */
int tl_audit_witness(const char *data_dir, uint64_t old_size, json_t **answer, char *why,
                     size_t why_size);

/* A checkpoint the auditor kept, as it arrived (`audit verify --from-checkpoint -`). */
typedef struct tl_audit_kept {
    const char *bytes;
    size_t len;
} tl_audit_kept_t;

/*
 * The relay's own check of data_dir's log: the hash chain, the stored checkpoints against its
 * audit key (relay/store/audit_anchors.h), then the kept checkpoint if any: a note signed by the
 * audit key, whose tree the log's extends. *verdict is an object (docs/audit-format.md §18);
 * text (may be NULL) gets the same in words, a line per check. 0 ok, TL_EVERIFY tampered (or
 * unreadable), TL_EINVAL when the kept bytes are not one signed checkpoint note of this log (a
 * usage error).
 */
int tl_audit_self_verify(const char *data_dir, const tl_audit_kept_t *kept, json_t **verdict,
                         FILE *text);

/* ---- a ticket's audit part of its bundle ---------------------------------------------------- */

/* Most bytes of entries one bundle holds (audit/entries.log). */
#define TL_AUDIT_EXPORT_ENTRIES_MAX (64u * 1024u * 1024u)

/* The audit part of a ticket's evidence bundle (docs/audit-format.md §19), each file's bytes. */
typedef struct tl_audit_export {
    char *entries;    /* audit/entries.log: the log's lines about the ticket, each with its LF */
    char *proofs;     /* audit/proofs.json: an inclusion proof of each line, in the same order */
    char *checkpoint; /* audit/checkpoint: the signed note the proofs lead to */
    char *vkey;       /* audit/audit.vkey: the audit key's verifier key and a line feed */
    size_t entries_len, proofs_len, checkpoint_len, vkey_len;
    uint64_t count;     /* entries */
    uint64_t tree_size; /* the checkpoint's */
} tl_audit_export_t;

/*
 * Every entry of data_dir's log about ticket ("T-4": its subject, or details.ticket) or about one
 * of its evidence items (an "evidence.store" whose details.sha256 is one of the hash_count
 * hashes, lowercase hex), within the tree of the latest checkpoint, each with its inclusion proof
 * against that checkpoint, checked before it is given. TL_ESTATE: no checkpoint yet;
 * TL_EVERIFY: the log or its leaves do not give the checkpoint's root; TL_EFULL: more entries
 * than a bundle holds. why says each in words. tl_audit_export_release frees out's bytes.
 */
int tl_audit_export_ticket(const char *data_dir, const char *ticket, const char *const *hashes,
                           size_t hash_count, tl_audit_export_t *out, char *why, size_t why_size);
void tl_audit_export_release(tl_audit_export_t *out);

#endif
