/*
 * Refused logins, counted per client address and minute for the audit log
 * (docs/audit-format.md §11), so that unauthenticated traffic cannot grow
 * the log without bound: connect-and-close in a loop would otherwise write
 * one entry per connection.
 *
 * The tally counts every refusal by its address, its minute (UTC, by the
 * wall clock) and its kind (the refusal reason, relay/net/ssh_front.h). When a
 * minute is over its owner flushes it, and each address's count comes out as
 * one summary. Memory and output are bounded: at most
 * TL_LOGIN_TALLY_ADDRESSES addresses are counted on their own per minute,
 * the rest fold into one "other" summary; and a refusal with a key gets an
 * entry of its own only the first time that address offers that key
 * (remembered for the last TL_LOGIN_TALLY_KEYS_REMEMBERED pairs), at most
 * TL_LOGIN_TALLY_KEYS_PER_ADDRESS per address and TL_LOGIN_TALLY_KEY_ENTRIES
 * in all per minute. So a minute of refusals makes at most
 * TL_LOGIN_TALLY_ADDRESSES + 1 + TL_LOGIN_TALLY_KEY_ENTRIES audit entries.
 *
 * Pure: no I/O, no loop, no clock of its own (times are passed in); the
 * owner calls it from one thread.
 */
#ifndef TL_LOGIN_TALLY_H
#define TL_LOGIN_TALLY_H

#include <stddef.h>
#include <stdint.h>

#define TL_LOGIN_TALLY_ADDRESSES 64
#define TL_LOGIN_TALLY_KEY_ENTRIES 32
#define TL_LOGIN_TALLY_KEYS_PER_ADDRESS 4
#define TL_LOGIN_TALLY_KEYS_REMEMBERED 1024
/* The address of the summary that folds the addresses past TL_LOGIN_TALLY_ADDRESSES. */
#define TL_LOGIN_TALLY_OTHER "other"
#define TL_LOGIN_TALLY_MINUTE_MS 60000

/* The kinds counted: refusal reasons; anything else counts as "other". */
#define TL_LOGIN_TALLY_KINDS 13

typedef struct tl_login_tally tl_login_tally_t;

typedef struct tl_login_summary {
    const char *address; /* or TL_LOGIN_TALLY_OTHER */
    uint32_t addresses;  /* 1, or how many addresses the "other" summary folds */
    int64_t minute_ms;   /* the minute's first millisecond, since the Unix epoch */
    uint64_t count;      /* refusals: the sum of kinds[] */
    /* Refusals per kind: kinds[i] is tl_login_tally_kind_name(i)'s count. */
    const uint64_t *kinds;
} tl_login_summary_t;

/* Receives each summary; the summary and its strings live only for the call. */
typedef void (*tl_login_summary_fn)(void *ctx, const tl_login_summary_t *summary);

tl_login_tally_t *tl_login_tally_new(tl_login_summary_fn emit, void *ctx);
/* Frees without emitting: flush first. NULL is a no-op. */
void tl_login_tally_free(tl_login_tally_t *tally);

/*
 * Counts one refusal at now_ms. If now_ms is in another minute than what is
 * counted, that is emitted first. Returns 1 if this refusal should also be
 * written as an entry of its own (its address offers this key fingerprint
 * for the first time, within the bounds above), else 0. fingerprint may be
 * NULL or "" (no key: never an entry of its own).
 */
int tl_login_tally_add(tl_login_tally_t *tally, int64_t now_ms, const char *address,
                       const char *reason, const char *fingerprint);
/* Emits and forgets the counted minute if it is over at now_ms; INT64_MAX emits it whatever. */
void tl_login_tally_flush(tl_login_tally_t *tally, int64_t now_ms);
/* "unknown-key", "timeout", ...; NULL past the last kind. */
const char *tl_login_tally_kind_name(size_t kind);

#endif
