/*
 * The audit log: an append-only file of hash-chained JSON lines.
 *
 * Every security-relevant event the relay handles (enrollments, agent
 * connects, tickets, evidence, ...) becomes one line in DATA/audit.log. Each
 * line carries the SHA-256 of the line before it, so editing, removing or
 * reordering entries breaks the chain at a point a verifier can name. The
 * format, including the exact bytes that are hashed, is specified in
 * docs/audit-format.md; this module is its reference implementation and
 * tl_audit_verify() is the verifier behind `tierline-relay audit-verify`.
 *
 * Durability (DESIGN §8): an entry counts as recorded only once
 * tl_audit_append()/tl_audit_append_batch() has returned 0, which happens
 * after fsync returned. Callers acknowledge the action an entry records only
 * after that. The calls block on disk, so the relay makes them from its
 * storage worker, never from the event loop; batching several entries into
 * one call is the group commit (one write, one fsync).
 *
 * Ownership: a tl_audit_t holds the open file and the chain head (last seq
 * and hash) as it last saw them. It is not thread-safe: one thread owns it.
 * Any number of handles, in any number of processes, may append to one file
 * and still extend one chain: the serving relay's storage worker and the
 * short admin commands run beside it (`enroll-code`, ...). Each open and each
 * append takes an exclusive flock on the file for that call alone, catches up
 * with what other writers appended, writes, syncs and unlocks; so a writer
 * waits at most for the appends queued before it, one write and fsync each.
 * Writers are serialized, not coordinated: a process stopped while holding
 * the lock stops the others. A handle is not for a fork()ed child, which
 * would share its open file and so its lock.
 */
#ifndef TL_AUDIT_H
#define TL_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Limits on what a writer accepts (docs/audit-format.md §3). */
#define TL_AUDIT_ACTOR_MAX 256     /* bytes of UTF-8 */
#define TL_AUDIT_ACTION_MAX 64     /* bytes, [a-z0-9._-], starting with [a-z0-9] */
#define TL_AUDIT_SUBJECT_MAX 256   /* bytes of UTF-8; may be empty */
#define TL_AUDIT_DETAILS_MAX 65536 /* bytes of details as written (compact, ASCII-escaped) */
#define TL_AUDIT_DETAILS_DEPTH 32  /* nesting levels; details itself is level 1 */
/* Longest line a verifier accepts, counting its newline. */
#define TL_AUDIT_LINE_MAX (1024 * 1024)
/* Lowercase hex SHA-256 plus a NUL. */
#define TL_AUDIT_HASH_HEX 65

typedef struct tl_audit tl_audit_t;

/*
 * Opens (or creates, mode 0600) the log at path for appending and recovers
 * the chain head from its last line. A last line without its newline is what
 * a crash in the middle of a write leaves; it was never acknowledged, so it
 * is cut off (with a warning in the operator log and an "audit.repair" entry)
 * and the chain continues from the line before it. Anything else wrong with
 * the last line (bad hash, bad JSON) is not repaired: TL_EPROTO, and the file
 * is left untouched for a human to look at. Holds the file's lock while it
 * reads, so it waits for another writer's append in progress.
 */
int tl_audit_open(const char *path, tl_audit_t **out);
/* tl_audit_open_ex flags. */
#define TL_AUDIT_OPEN_EXISTING 1u        /* a missing log is -ENOENT, never created */
#define TL_AUDIT_OPEN_EXTERNAL_REPAIR 2u /* a cut torn tail is for tl_audit_take_repair() */
/*
 * tl_audit_open with flags. With TL_AUDIT_OPEN_EXTERNAL_REPAIR this handle never appends an
 * "audit.repair" entry of its own: it cuts the torn tail (durably) and leaves the record of it to
 * the caller, whose sequence numbers come from elsewhere (relay/store/audit_chain.h). On failure, why
 * (may be NULL) says what is wrong with the file in words for an operator.
 */
int tl_audit_open_ex(const char *path, unsigned flags, tl_audit_t **out, char *why,
                     size_t why_size);
/*
 * A torn tail this handle cut (at open or when it found the file changed) and has not reported:
 * 1 with its size and SHA-256, once; 0 if none.
 */
int tl_audit_take_repair(tl_audit_t *audit, uint64_t *bytes, char sha256[TL_AUDIT_HASH_HEX]);
/* Closes the file. Every appended entry was already synced. NULL is a no-op. */
void tl_audit_close(tl_audit_t *audit);

/* One entry to append. details is borrowed (NULL means {}); seq is set on success. */
typedef struct tl_audit_entry {
    const char *actor;
    const char *action;
    const char *subject; /* NULL means "" */
    json_t *details;
    uint64_t seq;
} tl_audit_entry_t;

/*
 * Appends count entries with one write and one fsync, and fills in their
 * sequence numbers. All entries are checked before anything is written: one
 * invalid entry gives TL_EINVAL and nothing is written. On an I/O failure
 * nothing may be acknowledged; after a failed fsync the on-disk state is
 * unknown, so the log refuses further appends (TL_EIO) until it is reopened.
 *
 * Under the file's lock, if the file changed since this handle last wrote or
 * read it (another writer appended, or the path now names another file), the
 * head is first read again from the last line, with the same checks and
 * repair as tl_audit_open (a repair entry goes in before the batch, and a bad
 * last line gives TL_EPROTO). A log whose path no longer names a file is not
 * recreated: the error (-ENOENT) repeats until someone restores it.
 */
int tl_audit_append_batch(tl_audit_t *audit, tl_audit_entry_t *entries, size_t count);
/*
 * Would this entry be accepted? 0 or TL_EINVAL, the same checks append makes,
 * without writing. For callers that gather entries from several jobs into one
 * batch: checking each as it arrives keeps one job's bad entry from failing
 * everyone's batch.
 */
int tl_audit_check_entry(const tl_audit_entry_t *entry);
/* One entry: a batch of one. seq_out may be NULL. */
int tl_audit_append(tl_audit_t *audit, const char *actor, const char *action, const char *subject,
                    json_t *details, uint64_t *seq_out);

/*
 * The chain head as this handle last saw it (at open or its own last
 * append): the last sequence number (0 for an empty log) and its hash (64
 * zeros if empty). Other writers may have appended since.
 */
uint64_t tl_audit_last_seq(const tl_audit_t *audit);
const char *tl_audit_last_hash(const tl_audit_t *audit);

/*
 * Formats one complete line (with its hash and trailing newline) into a
 * malloc'd NUL-terminated string. Pure: no clock, no file. time must be an
 * RFC 3339 UTC time with milliseconds ("2026-11-23T19:04:05.123Z"), prev the
 * previous line's hash. TL_EINVAL if any field breaks the writer's limits.
 * Exposed so tests and docs can pin the exact bytes.
 */
int tl_audit_format_line(uint64_t seq, const char *time, const char *actor, const char *action,
                         const char *subject, const json_t *details, const char *prev,
                         char **line_out, size_t *len_out);

/*
 * The log kept in step with a chain head recorded elsewhere (the relay's database, see
 * relay/store/audit_chain.h): the entries are formatted, numbered and chained when the change they
 * record commits, and the log receives those exact lines later.
 */

/* entry as the line with this seq after prev, timed now; as tl_audit_format_line. */
int tl_audit_format_entry(const tl_audit_entry_t *entry, uint64_t seq, const char *prev,
                          char **line_out, size_t *len_out);
/* The hash and prev of a formatted line (newline included); TL_EINVAL if it has not that form. */
int tl_audit_line_links(const char *line, size_t len, char hash[TL_AUDIT_HASH_HEX],
                        char prev[TL_AUDIT_HASH_HEX]);

typedef struct tl_audit_line {
    uint64_t seq;
    const char *text; /* the whole line, newline included */
    size_t len;
    char hash[TL_AUDIT_HASH_HEX];
    char prev[TL_AUDIT_HASH_HEX];
} tl_audit_line_t;

/* Where the log must get to: a head, and the lines it may still lack (consecutive, ending at the
 * head; possibly none). */
typedef struct tl_audit_target {
    uint64_t head_seq;
    const char *head_hash; /* 64 zeros for an empty chain */
    const tl_audit_line_t *lines;
    size_t count;
} tl_audit_target_t;

enum tl_audit_verdict {
    TL_AUDIT_IN_STEP = 0, /* the log holds the chain up to the head */
    TL_AUDIT_UNREADABLE,  /* it cannot be opened, read or written now (disk full, ...) */
    TL_AUDIT_MISSING,     /* no file where the log should be */
    TL_AUDIT_SHORT,       /* it ends before the head, short of entries nobody can rewrite */
    TL_AUDIT_DIVERGES,    /* its entry at some seq is not the one the database recorded */
    TL_AUDIT_DAMAGED,     /* its last line fails its own checks */
    TL_AUDIT_AHEAD,       /* it holds entries past the database's head */
};

typedef struct tl_audit_problem {
    int verdict;                      /* enum tl_audit_verdict */
    uint64_t log_seq;                 /* the log's last entry, when it could be read */
    char log_hash[TL_AUDIT_HASH_HEX]; /* ... and its hash */
    char text[512];                   /* what is wrong, for an operator; "" when in step */
} tl_audit_problem_t;

/*
 * Does a log ending at log_seq/log_hash hold a prefix of the target's chain that the target's
 * lines complete? 0, or TL_EAUDIT with problem saying what is missing or different
 * ("audit log ends at seq 41 but the database head is seq 57 (hash ...): 16 entries missing").
 * Pure: no file.
 */
int tl_audit_compare(uint64_t log_seq, const char *log_hash, const tl_audit_target_t *target,
                     tl_audit_problem_t *problem);
/*
 * Brings the log to the target: under the file's lock, reads what it holds now (following a
 * replaced file, cutting a torn tail), checks it with tl_audit_compare, then writes the lines it
 * lacks with one write and one fdatasync. The log may go on past the target (another writer
 * appended later lines of the same chain): then the target's head must be in it. 0 when the log
 * holds the target's head (problem->log_seq says where the log ends); TL_EAUDIT when the log does
 * not match; another negative code when it cannot be opened, read or written (-ENOSPC, -ENOENT,
 * ...). problem says which, in words. A handle whose fsync failed reads the file again here
 * instead of refusing: the target still holds what may be lost.
 */
int tl_audit_sync(tl_audit_t *audit, const tl_audit_target_t *target, tl_audit_problem_t *problem);
/* The hash of the entry with this seq, looking back from the end (at most 64 MiB); TL_ENOTFOUND
 * if the log does not hold it there. Takes the lock. */
int tl_audit_hash_at(tl_audit_t *audit, uint64_t seq, char hash[TL_AUDIT_HASH_HEX]);
/*
 * Reads the last complete entry of the log at path without changing or locking anything: its
 * seq (0 if none) and hash, and how many bytes follow the last line feed. TL_EPROTO if the last
 * line fails its checks, -ENOENT if there is no file; why (may be NULL) says what.
 */
int tl_audit_peek(const char *path, uint64_t *seq, char hash[TL_AUDIT_HASH_HEX],
                  uint64_t *tail_bytes, char *why, size_t why_size);

typedef struct tl_audit_report {
    uint64_t entries;                  /* valid entries before the first failure */
    char last_hash[TL_AUDIT_HASH_HEX]; /* hash of the last valid entry; 64 zeros if none */
    uint64_t bad_line;                 /* 1-based line of the first failure; 0 if none */
    uint64_t bad_seq;                  /* its "seq" if it could be read, else 0 */
    uint64_t partial_tail_bytes;       /* bytes after the last newline (ignored, see docs) */
    char reason[160];                  /* why it failed; "" if it did not */
} tl_audit_report_t;

/*
 * Verifies the whole file at path, streaming it with bounded memory. Returns
 * 0 if every line checks out, TL_EPROTO at the first line that does not
 * (report names it and says why), or another negative code if the file
 * cannot be read (report->reason says so). Bytes after the last newline are
 * an interrupted write, not an entry: they are counted in
 * partial_tail_bytes and do not fail verification.
 */
int tl_audit_verify(const char *path, tl_audit_report_t *report);

/*
 * The same checks on one line (without its newline), bytes in: report holds
 * the chain so far (zeroed, with 64 zeros as last_hash, before the first
 * line) and is updated as tl_audit_verify updates it. For tests and fuzzing.
 */
int tl_audit_verify_line(tl_audit_report_t *report, const char *line, size_t len);

/* Prints a human-readable verdict for the result of tl_audit_verify(). */
void tl_audit_report_print(const tl_audit_report_t *report, int rc, FILE *out);

#endif
