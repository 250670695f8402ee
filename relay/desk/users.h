/*
 * Technicians and auditors: the store's users, and the loop's copy of them
 * for authentication (answered from memory, on the loop).
 *
 * Admins add users with `tierline-relay user add` while the relay runs; the
 * relay reloads its copy every TL_USERS_RELOAD_MS when the store changed,
 * so a new or disabled account takes effect within that time.
 */
#ifndef TL_USERS_H
#define TL_USERS_H

#include "relay/store/store.h"

#include <stdint.h>
#include <libssh/libssh.h>

#define TL_USERS_RELOAD_MS 1000
#define TL_USERS_MAX_KEY_FILE 8192

/* Who is asking: the SSH front end fills it after public-key authentication. */
typedef struct tl_technician {
    int64_t user_id;
    char name[65];
    char role[16]; /* "tier1".."tier4", "auditor", "admin" */
    char key_fingerprint[64];
    char address[64]; /* the client's IP address */
    int64_t expires;  /* when the account stops working (ms); 0: never */
} tl_technician_t;

typedef struct tl_users tl_users_t;

tl_users_t *tl_users_new(void);
void tl_users_free(tl_users_t *users);
/* Replaces the table with the store's users (tl_store_users_read). */
int tl_users_load_rows(tl_users_t *users, const tl_user_rows_t *rows);
size_t tl_users_count(const tl_users_t *users);
/*
 * 0 and *out filled if name is an enabled user whose key is key and whose account has not
 * expired by the wall clock; TL_ENOTFOUND (no such user, or another key), TL_EDISABLED (a
 * disabled account) or TL_EEXPIRED (an account past its expiry, docs/desk.md "Vendor
 * accounts") otherwise.
 */
int tl_users_authorize(const tl_users_t *users, const char *name, ssh_key key,
                       tl_technician_t *out);

/*
 * Reads an OpenSSH public key file ("ssh-ed25519 AAAA... comment"); gives the
 * normalised key line ("TYPE BASE64", malloc'd) and its fingerprint in
 * OpenSSH's SHA256: form. TL_EKEY if it is not a public key.
 */
/* A key's fingerprint in OpenSSH's SHA256: form (proto/keys.h), which fits in 64 bytes; out is
 * "" and TL_EKEY if it cannot be hashed. */
int tl_users_key_fingerprint(ssh_key key, char out[64]);
/*
 * Whether who (as tl_users_authorize gave it) may still act, by the table as it now is: 0 when
 * the account is there with the same key and role, enabled and not expired at now_ms;
 * TL_ENOTFOUND when it was removed or its key changed, TL_EDISABLED, TL_EEXPIRED, or TL_EDENIED
 * when its role changed (the capabilities it signed in with are no longer its own).
 */
int tl_users_recheck(const tl_users_t *users, const tl_technician_t *who, int64_t now_ms);
/* Why tl_users_recheck refused, for logs and the client: "account disabled" and the like. */
const char *tl_users_recheck_reason(int rc);

int tl_users_read_key_file(const char *path, char **key_line, char fingerprint[64]);

#endif
