/*
 * Refused logins per address and minute (relay/net/login_tally.h).
 */
#include "relay/net/login_tally.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const KIND_NAMES[TL_LOGIN_TALLY_KINDS] = {
    "unknown-key",  "bad-signature", "method-refused", "rate-limited",     "timeout",
    "disconnected", "address-limit", "busy",           "handshake-failed", "evicted",
    "shutdown",     "expired",       "other",
};

struct address_count {
    char address[64];
    uint64_t kinds[TL_LOGIN_TALLY_KINDS];
    uint64_t count;
    unsigned keys_listed; /* entries of their own this minute */
};

struct tl_login_tally {
    tl_login_summary_fn emit;
    void *ctx;
    bool counting;     /* something is counted for minute_ms */
    int64_t minute_ms; /* the minute counted */
    struct address_count addresses[TL_LOGIN_TALLY_ADDRESSES];
    size_t address_count;
    struct address_count other; /* the addresses that did not fit */
    uint32_t other_addresses;
    /* Addresses folded into other this minute, by hash, so each is counted once. */
    uint64_t other_seen[TL_LOGIN_TALLY_KEYS_REMEMBERED];
    unsigned keys_listed;
    /* (address, key) pairs seen, by hash: a ring, the oldest replaced first. */
    uint64_t keys_seen[TL_LOGIN_TALLY_KEYS_REMEMBERED];
    size_t keys_seen_count, keys_seen_next;
};

static uint64_t hash_pair(const char *address, const char *fingerprint)
{
    uint64_t hash = 14695981039346656037ull; /* FNV-1a, 64 bits */
    for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++)
        hash = (hash ^ *p) * 1099511628211ull;
    hash = (hash ^ 0xffu) * 1099511628211ull; /* a byte no address holds: a separator */
    for (const unsigned char *p = (const unsigned char *)(fingerprint ? fingerprint : "");
         *p != '\0'; p++)
        hash = (hash ^ *p) * 1099511628211ull;
    return hash | 1; /* never 0, which marks a free place */
}

static size_t kind_of(const char *reason)
{
    for (size_t i = 0; i + 1 < TL_LOGIN_TALLY_KINDS; i++)
        if (reason != NULL && strcmp(reason, KIND_NAMES[i]) == 0)
            return i;
    return TL_LOGIN_TALLY_KINDS - 1;
}

static int64_t minute_of(int64_t ms)
{
    int64_t minute = ms - ms % TL_LOGIN_TALLY_MINUTE_MS;
    return ms < 0 && ms % TL_LOGIN_TALLY_MINUTE_MS != 0 ? minute - TL_LOGIN_TALLY_MINUTE_MS
                                                        : minute;
}

tl_login_tally_t *tl_login_tally_new(tl_login_summary_fn emit, void *ctx)
{
    if (emit == NULL)
        return NULL;
    tl_login_tally_t *tally = calloc(1, sizeof *tally);
    if (tally == NULL)
        return NULL;
    tally->emit = emit;
    tally->ctx = ctx;
    snprintf(tally->other.address, sizeof tally->other.address, "%s", TL_LOGIN_TALLY_OTHER);
    return tally;
}

void tl_login_tally_free(tl_login_tally_t *tally)
{
    free(tally);
}

static void emit_one(tl_login_tally_t *tally, const struct address_count *counted,
                     uint32_t addresses)
{
    tl_login_summary_t summary = {
        .address = counted->address,
        .addresses = addresses,
        .minute_ms = tally->minute_ms,
        .count = counted->count,
        .kinds = counted->kinds,
    };
    tally->emit(tally->ctx, &summary);
}

void tl_login_tally_flush(tl_login_tally_t *tally, int64_t now_ms)
{
    if (tally == NULL || !tally->counting)
        return;
    if (now_ms != INT64_MAX && minute_of(now_ms) == tally->minute_ms)
        return;
    for (size_t i = 0; i < tally->address_count; i++)
        emit_one(tally, &tally->addresses[i], 1);
    if (tally->other.count > 0)
        emit_one(tally, &tally->other, tally->other_addresses);
    tally->counting = false;
    tally->address_count = 0;
    memset(tally->addresses, 0, sizeof tally->addresses);
    memset(tally->other.kinds, 0, sizeof tally->other.kinds);
    tally->other.count = 0;
    tally->other_addresses = 0;
    memset(tally->other_seen, 0, sizeof tally->other_seen);
    tally->keys_listed = 0;
}

static struct address_count *find_address(tl_login_tally_t *tally, const char *address)
{
    for (size_t i = 0; i < tally->address_count; i++)
        if (strcmp(tally->addresses[i].address, address) == 0)
            return &tally->addresses[i];
    if (tally->address_count == TL_LOGIN_TALLY_ADDRESSES)
        return NULL;
    struct address_count *counted = &tally->addresses[tally->address_count++];
    snprintf(counted->address, sizeof counted->address, "%s", address);
    return counted;
}

/* Counts address among the folded ones once per minute (as far as the bounded set can tell). */
static void fold_address(tl_login_tally_t *tally, const char *address)
{
    uint64_t hash = hash_pair(address, "");
    size_t start = hash % TL_LOGIN_TALLY_KEYS_REMEMBERED;
    for (size_t probe = 0; probe < TL_LOGIN_TALLY_KEYS_REMEMBERED; probe++) {
        uint64_t *slot = &tally->other_seen[(start + probe) % TL_LOGIN_TALLY_KEYS_REMEMBERED];
        if (*slot == hash)
            return;
        if (*slot == 0) {
            *slot = hash;
            tally->other_addresses++;
            return;
        }
    }
    /* The set is full: this one may be new or not; it is not counted (count and kinds are). */
}

/*
 * 1 the first time this (address, key) pair is seen, remembering it; 0 after. A key refused
 * because its account expired is remembered apart: that the key was refused before, when the
 * relay did not know it yet, does not hide the expiry from the audit log.
 */
static int key_first_seen(tl_login_tally_t *tally, const char *address, const char *fingerprint,
                          int expired)
{
    uint64_t hash = hash_pair(address, fingerprint) ^ (expired ? 0x6578706972656400ull : 0);
    for (size_t i = 0; i < tally->keys_seen_count; i++)
        if (tally->keys_seen[i] == hash)
            return 0;
    tally->keys_seen[tally->keys_seen_next] = hash;
    tally->keys_seen_next = (tally->keys_seen_next + 1) % TL_LOGIN_TALLY_KEYS_REMEMBERED;
    if (tally->keys_seen_count < TL_LOGIN_TALLY_KEYS_REMEMBERED)
        tally->keys_seen_count++;
    return 1;
}

int tl_login_tally_add(tl_login_tally_t *tally, int64_t now_ms, const char *address,
                       const char *reason, const char *fingerprint)
{
    if (tally == NULL)
        return 0;
    if (address == NULL)
        address = "";
    int64_t minute = minute_of(now_ms);
    if (tally->counting && minute != tally->minute_ms)
        tl_login_tally_flush(tally, INT64_MAX);
    if (!tally->counting) {
        tally->counting = true;
        tally->minute_ms = minute;
    }
    size_t kind = kind_of(reason);
    struct address_count *counted = find_address(tally, address);
    if (counted == NULL) {
        fold_address(tally, address);
        tally->other.kinds[kind]++;
        tally->other.count++;
        return 0; /* no room to bound its own entries by address: counted only */
    }
    counted->kinds[kind]++;
    counted->count++;
    if (fingerprint == NULL || fingerprint[0] == '\0')
        return 0;
    if (counted->keys_listed >= TL_LOGIN_TALLY_KEYS_PER_ADDRESS ||
        tally->keys_listed >= TL_LOGIN_TALLY_KEY_ENTRIES)
        return 0;
    if (!key_first_seen(tally, address, fingerprint, strcmp(KIND_NAMES[kind], "expired") == 0))
        return 0;
    counted->keys_listed++;
    tally->keys_listed++;
    return 1;
}

const char *tl_login_tally_kind_name(size_t kind)
{
    return kind < TL_LOGIN_TALLY_KINDS ? KIND_NAMES[kind] : NULL;
}
