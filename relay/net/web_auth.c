/*
 * The web view's one-time links and sessions (relay/net/web_auth.h).
 */
#include "relay/net/web_auth.h"

#include "proto/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_LEN 32

struct entry {
    uint8_t digest[DIGEST_LEN];
    int64_t created_ms;
    tl_technician_t technician;
};

struct table {
    struct entry *entries;
    size_t count, max;
    uint32_t lifetime_ms;
};

struct tl_web_auth {
    pthread_mutex_t mutex;
    struct table links, sessions;
};

static int table_init(struct table *table, size_t max, uint32_t lifetime_ms)
{
    table->entries = calloc(max, sizeof *table->entries);
    table->max = max;
    table->lifetime_ms = lifetime_ms;
    return table->entries != NULL ? 0 : TL_ENOMEM;
}

tl_web_auth_t *tl_web_auth_new(uint32_t link_ms, uint32_t session_ms)
{
    tl_web_auth_t *auth = calloc(1, sizeof *auth);
    if (auth == NULL)
        return NULL;
    if (table_init(&auth->links, TL_WEB_MAX_LINKS, link_ms ? link_ms : TL_WEB_DEFAULT_LINK_MS) !=
            0 ||
        table_init(&auth->sessions, TL_WEB_MAX_SESSIONS,
                   session_ms ? session_ms : TL_WEB_DEFAULT_SESSION_MS) != 0 ||
        pthread_mutex_init(&auth->mutex, NULL) != 0) {
        free(auth->links.entries);
        free(auth->sessions.entries);
        free(auth);
        return NULL;
    }
    return auth;
}

void tl_web_auth_free(tl_web_auth_t *auth)
{
    if (auth == NULL)
        return;
    OPENSSL_cleanse(auth->links.entries, auth->links.max * sizeof *auth->links.entries);
    OPENSSL_cleanse(auth->sessions.entries, auth->sessions.max * sizeof *auth->sessions.entries);
    free(auth->links.entries);
    free(auth->sessions.entries);
    pthread_mutex_destroy(&auth->mutex);
    free(auth);
}

uint32_t tl_web_auth_link_ms(const tl_web_auth_t *auth)
{
    return auth->links.lifetime_ms;
}

int tl_web_auth_token(char token[TL_WEB_TOKEN_TEXT])
{
    uint8_t bytes[TL_WEB_TOKEN_BYTES];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return TL_EIO;
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(token + 2 * i, 3, "%02x", bytes[i]);
    OPENSSL_cleanse(bytes, sizeof bytes);
    return 0;
}

/* The token's SHA-256; TL_ENOTFOUND for anything that is not a token's text. */
static int token_digest(const char *token, uint8_t digest[DIGEST_LEN])
{
    if (token == NULL || strlen(token) != TL_WEB_TOKEN_TEXT - 1)
        return TL_ENOTFOUND;
    for (const char *p = token; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return TL_ENOTFOUND;
    unsigned int len = 0;
    return EVP_Digest(token, TL_WEB_TOKEN_TEXT - 1, digest, &len, EVP_sha256(), NULL) == 1
               ? 0
               : TL_ENOMEM;
}

static int expired(const struct table *table, const struct entry *entry, int64_t now_ms)
{
    return now_ms - entry->created_ms >= (int64_t)table->lifetime_ms ||
           now_ms < entry->created_ms - 60000; /* the clock went back a lot: no longer trusted */
}

static void remove_at(struct table *table, size_t at)
{
    table->entries[at] = table->entries[table->count - 1];
    OPENSSL_cleanse(&table->entries[table->count - 1], sizeof table->entries[0]);
    table->count--;
}

/* Room for one more: expired entries go, then (still full) the oldest. */
static void make_room(struct table *table, int64_t now_ms)
{
    for (size_t i = table->count; i-- > 0;)
        if (expired(table, &table->entries[i], now_ms))
            remove_at(table, i);
    if (table->count < table->max)
        return;
    size_t oldest = 0;
    for (size_t i = 1; i < table->count; i++)
        if (table->entries[i].created_ms < table->entries[oldest].created_ms)
            oldest = i;
    remove_at(table, oldest);
}

static int find(const struct table *table, const uint8_t digest[DIGEST_LEN], size_t *at)
{
    int found = 0;
    for (size_t i = 0; i < table->count; i++)
        if (CRYPTO_memcmp(table->entries[i].digest, digest, DIGEST_LEN) == 0) {
            *at = i;
            found = 1;
        }
    return found;
}

static int add(tl_web_auth_t *auth, struct table *table, const char *token,
               const tl_technician_t *technician, int64_t now_ms)
{
    uint8_t digest[DIGEST_LEN];
    int rc = token_digest(token, digest);
    if (rc != 0)
        return rc == TL_ENOTFOUND ? TL_EINVAL : rc;
    pthread_mutex_lock(&auth->mutex);
    make_room(table, now_ms);
    struct entry *entry = &table->entries[table->count++];
    memcpy(entry->digest, digest, DIGEST_LEN);
    entry->created_ms = now_ms;
    entry->technician = *technician;
    pthread_mutex_unlock(&auth->mutex);
    return 0;
}

int tl_web_auth_link_add(tl_web_auth_t *auth, const char *token, const tl_technician_t *technician,
                         int64_t now_ms)
{
    return add(auth, &auth->links, token, technician, now_ms);
}

/*
 * The entry of token in table: 0 and *technician while it is in time; TL_EEXPIRED once it is
 * not (an expired entry goes), TL_ENOTFOUND when it is not there. take: it goes either way.
 */
static int lookup(tl_web_auth_t *auth, struct table *table, const char *token, int64_t now_ms,
                  int take, tl_technician_t *technician)
{
    uint8_t digest[DIGEST_LEN];
    int rc = token_digest(token, digest);
    if (rc != 0)
        return rc;
    size_t at = 0;
    pthread_mutex_lock(&auth->mutex);
    if (!find(table, digest, &at)) {
        rc = TL_ENOTFOUND;
    } else {
        rc = expired(table, &table->entries[at], now_ms) ? TL_EEXPIRED : 0;
        if (rc == 0)
            *technician = table->entries[at].technician;
        if (rc != 0 || take)
            remove_at(table, at);
    }
    pthread_mutex_unlock(&auth->mutex);
    return rc;
}

int tl_web_auth_link_take(tl_web_auth_t *auth, const char *token, int64_t now_ms,
                          tl_technician_t *technician)
{
    return lookup(auth, &auth->links, token, now_ms, 1, technician);
}

int tl_web_auth_session_open(tl_web_auth_t *auth, const tl_technician_t *technician, int64_t now_ms,
                             char token[TL_WEB_TOKEN_TEXT])
{
    int rc = tl_web_auth_token(token);
    return rc != 0 ? rc : add(auth, &auth->sessions, token, technician, now_ms);
}

int tl_web_auth_session_find(tl_web_auth_t *auth, const char *token, int64_t now_ms,
                             tl_technician_t *technician)
{
    int rc = lookup(auth, &auth->sessions, token, now_ms, 0, technician);
    return rc == TL_EEXPIRED ? TL_ENOTFOUND : rc;
}

void tl_web_auth_session_end(tl_web_auth_t *auth, const char *token)
{
    uint8_t digest[DIGEST_LEN];
    size_t at = 0;
    if (token_digest(token, digest) != 0)
        return;
    pthread_mutex_lock(&auth->mutex);
    if (find(&auth->sessions, digest, &at))
        remove_at(&auth->sessions, at);
    pthread_mutex_unlock(&auth->mutex);
}

size_t tl_web_auth_recheck(tl_web_auth_t *auth,
                           int (*check)(void *data, const tl_technician_t *technician),
                           void (*on_end)(void *data, const tl_technician_t *technician,
                                          int session, int answer),
                           void *data)
{
    size_t ended = 0;
    pthread_mutex_lock(&auth->mutex);
    struct table *tables[2] = {&auth->links, &auth->sessions};
    for (int t = 0; t < 2; t++)
        for (size_t i = tables[t]->count; i-- > 0;) {
            const tl_technician_t *who = &tables[t]->entries[i].technician;
            int answer = check(data, who);
            if (answer == 0)
                continue;
            if (on_end != NULL)
                on_end(data, who, t == 1, answer);
            remove_at(tables[t], i);
            ended++;
        }
    pthread_mutex_unlock(&auth->mutex);
    return ended;
}
