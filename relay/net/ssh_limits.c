/*
 * The SSH front end's limits per client address (relay/net/ssh_front.h,
 * docs/technicians.md "Limits"): failed logins remembered for
 * TL_SSH_LOGIN_WINDOW_MS, connections not yet authenticated counted, and
 * who gets in, is refused or is evicted when a new connection arrives.
 * Memory is fixed for the failures (LIMIT_SLOTS addresses) and bounded by
 * max_sessions for the pre-auth counts.
 */
#include "proto/err.h"
#include "proto/log.h"
#include "relay/net/ssh_front_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- failed logins per address ------------------------------------------------------------ */

static struct login_limit *limit_find(tl_ssh_front_t *front, const char *address)
{
    for (size_t i = 0; i < LIMIT_SLOTS; i++)
        if (front->limits[i].address[0] != '\0' && strcmp(front->limits[i].address, address) == 0)
            return &front->limits[i];
    return NULL;
}

int tl__ssh_limit_blocked(tl_ssh_front_t *front, const char *address)
{
    struct login_limit *entry = limit_find(front, address);
    if (entry == NULL)
        return 0;
    uint64_t now = uv_now(front->loop);
    unsigned recent = 0;
    for (size_t i = 0; i < TL_SSH_LOGIN_FAILURES; i++)
        if (entry->used[i] && now - entry->at[i] < TL_SSH_LOGIN_WINDOW_MS)
            recent++;
    return recent >= TL_SSH_LOGIN_FAILURES;
}

/* Records a failure from address; returns when it happened (uv_now), for tl__ssh_limit_forgive().
 */
uint64_t tl__ssh_limit_record(tl_ssh_front_t *front, const char *address)
{
    uint64_t now = uv_now(front->loop);
    struct login_limit *entry = limit_find(front, address);
    if (entry == NULL) {
        /* A free or stale slot, else the one that failed longest ago. */
        entry = &front->limits[0];
        for (size_t i = 0; i < LIMIT_SLOTS; i++) {
            struct login_limit *slot = &front->limits[i];
            if (slot->address[0] == '\0' || now - slot->last >= TL_SSH_LOGIN_WINDOW_MS) {
                entry = slot;
                break;
            }
            if (slot->last < entry->last)
                entry = slot;
        }
        memset(entry, 0, sizeof *entry);
        snprintf(entry->address, sizeof entry->address, "%s", address);
    }
    /* A free place, else the oldest failure's. */
    size_t at = 0;
    for (size_t i = 0; i < TL_SSH_LOGIN_FAILURES; i++) {
        if (!entry->used[i]) {
            at = i;
            break;
        }
        if (entry->at[i] < entry->at[at])
            at = i;
    }
    entry->at[at] = now;
    entry->used[at] = 1;
    entry->last = now;
    return now;
}

/* Takes back failures recorded at the given times (a connection that then logged in). */
void tl__ssh_limit_forgive(tl_ssh_front_t *front, const char *address, const uint64_t *times,
                           unsigned count)
{
    struct login_limit *entry = limit_find(front, address);
    for (unsigned k = 0; entry != NULL && k < count; k++) {
        for (size_t i = 0; i < TL_SSH_LOGIN_FAILURES; i++) {
            if (entry->used[i] && entry->at[i] == times[k]) {
                entry->used[i] = 0;
                break;
            }
        }
    }
}

/* ---- connections before authentication, per address --------------------------------------- */

static size_t source_bucket(const char *address)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash % SOURCE_BUCKETS;
}

static struct preauth_source *source_find(tl_ssh_front_t *front, const char *address)
{
    for (struct preauth_source *source = front->sources[source_bucket(address)]; source != NULL;
         source = source->next)
        if (strcmp(source->address, address) == 0)
            return source;
    return NULL;
}

static unsigned source_held(tl_ssh_front_t *front, const char *address)
{
    struct preauth_source *source = source_find(front, address);
    return source != NULL ? source->count : 0;
}

/* Counts conn against its address until it authenticates or ends; TL_ENOMEM if it cannot. */
int tl__ssh_source_hold(struct conn *conn)
{
    tl_ssh_front_t *front = conn->front;
    struct preauth_source *source = source_find(front, conn->address);
    if (source == NULL) {
        source = calloc(1, sizeof *source);
        if (source == NULL)
            return TL_ENOMEM;
        snprintf(source->address, sizeof source->address, "%s", conn->address);
        size_t bucket = source_bucket(conn->address);
        source->next = front->sources[bucket];
        front->sources[bucket] = source;
    }
    source->count++;
    conn->source = source;
    return 0;
}

void tl__ssh_source_release(struct conn *conn)
{
    struct preauth_source *source = conn->source;
    if (source == NULL)
        return;
    conn->source = NULL;
    if (--source->count > 0)
        return;
    tl_ssh_front_t *front = conn->front;
    struct preauth_source **link = &front->sources[source_bucket(source->address)];
    while (*link != source)
        link = &(*link)->next;
    *link = source->next;
    free(source);
}

/* The address holding the most pre-auth connections (the first found among equals). */
static struct preauth_source *source_busiest(tl_ssh_front_t *front)
{
    struct preauth_source *busiest = NULL;
    for (size_t i = 0; i < SOURCE_BUCKETS; i++)
        for (struct preauth_source *source = front->sources[i]; source != NULL;
             source = source->next)
            if (busiest == NULL || source->count > busiest->count)
                busiest = source;
    return busiest;
}

/* ---- admission ---------------------------------------------------------------------------- */

/*
 * At max_sessions: closes the oldest pre-auth connection of the address
 * holding the most of them, if it holds more than the newcomer's address
 * (held). 1 if a connection was closed, 0 if every connection is
 * authenticated or no address holds more than the newcomer's.
 */
static int make_room(tl_ssh_front_t *front, unsigned held)
{
    struct preauth_source *busiest = source_busiest(front);
    if (busiest == NULL || busiest->count <= held)
        return 0;
    struct conn *oldest = NULL; /* front->conns is newest first */
    for (struct conn *conn = front->conns; conn != NULL; conn = conn->next)
        if (conn->source == busiest && !conn->torn_down)
            oldest = conn;
    if (oldest == NULL)
        return 0;
    tl_log_peer_info(oldest->address, "ssh connection evicted addr=%s held=%u sessions=%u",
                     oldest->address, busiest->count, front->live);
    /* Not inside any of its libssh callbacks here: it can go at once, freeing its place. */
    oldest->close_reason = "evicted";
    tl__ssh_conn_teardown(oldest);
    return 1;
}

const char *tl__ssh_admission(tl_ssh_front_t *front, const char *address)
{
    const char *refusal = NULL;
    unsigned held = source_held(front, address);
    if (tl__ssh_limit_blocked(front, address))
        refusal = "rate-limited";
    else if (held >= front->max_preauth_per_address)
        refusal = "address-limit";
    else if (front->live >= front->max_sessions && !make_room(front, held))
        refusal = "busy";
    return refusal;
}
