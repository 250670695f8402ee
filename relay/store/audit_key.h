/*
 * The audit key (docs/audit-format.md §13): the Ed25519 key that signs the audit log's
 * checkpoints. It is DATA/audit_key (PEM PKCS#8, 0600), made with the data directory, and is
 * not the relay's TLS and SSH host key (DATA/relay.key): that one is used online for every
 * handshake, this one only signs what the log holds, so the two can be kept and replaced apart.
 *
 * Its checkpoints and signatures are named "tierline.relay/" and the relay key's fingerprint in
 * base64url (RFC 4648 §5: '+' and '/' of the fingerprint become '-' and '_', since a C2SP key
 * name holds no '+'): the checkpoints' origin line and the key name of the note signatures. An
 * auditor keeps the verifier key string, NAME+KEY_ID+BASE64(0x01 || public key).
 */
#ifndef TL_AUDIT_KEY_H
#define TL_AUDIT_KEY_H

#include "proto/note.h"
#include "relay/store/audit_chain.h"
#include "relay/store/store.h"

#include <openssl/types.h>
#include <stddef.h>

#define TL_AUDIT_KEY_ORIGIN_PREFIX "tierline.relay/"

/* The origin and key name of the checkpoints of the relay whose key has this fingerprint
 * ("SHA256:..."). */
int tl_audit_key_name(const char *relay_fingerprint, char out[TL_NOTE_NAME_MAX + 1]);
/* The verifier of the audit key at key_path under name, and its verifier key string (vkey may be
 * NULL). -ENOENT when there is no key; TL_EKEY_PERMS, TL_EKEY (proto/keys.h). */
int tl_audit_key_verifier(const char *key_path, const char *name, tl_note_verifier_t *out,
                          char vkey[TL_NOTE_VKEY_MAX]);
/* The public key as PEM ("-----BEGIN PUBLIC KEY-----"), for openssl pkeyutl -pubin; malloc'd. */
int tl_audit_key_public_pem(EVP_PKEY *key, char **out);

/*
 * A new audit key saved at key_path (0600); vkey gets its verifier key string under name.
 * TL_EEXIST if there is one already. For a new data directory, whose first entry records vkey.
 */
int tl_audit_key_create(const char *key_path, const char *name, char vkey[TL_NOTE_VKEY_MAX]);
/*
 * At the start of a relay: a data directory from before audit keys gets one. The new key's
 * "audit.key" entry (its verifier key) is staged and written through chain first, then the key is
 * saved at key_path; *created says whether it was. 0 when there is a key, or one was made;
 * otherwise problem says why (the relay does not serve without it).
 */
int tl_audit_key_ensure(const char *key_path, const char *name, tl_store_t *store,
                        tl_audit_chain_t *chain, int *created, char *problem, size_t problem_size);

#endif
