/*
 * The relay's data directory: one place for everything the relay keeps.
 *
 *   DATA/relay.key      Ed25519 private key (0600): the TLS key agents pin
 *                       and the SSH host key technicians see (libssh reads
 *                       the same PKCS#8 PEM file)
 *   DATA/relay.crt      self-signed certificate for that key
 *   DATA/relay.db       SQLite store (WAL): devices, codes, tickets
 *   DATA/audit.log      hash-chained audit log (docs/audit-format.md)
 *   DATA/audit_key      Ed25519 key that signs the log's checkpoints (0600;
 *                       not the relay key: relay/store/audit_key.h)
 *   DATA/audit.checkpoints  the signed checkpoints, append-only
 *                       (relay/store/audit_checkpoint.h)
 *   DATA/audit.leaves   the log's Merkle leaf hashes, a cache rebuilt from
 *                       the log (relay/store/audit_tree.h)
 *   DATA/evidence/      content-addressed evidence objects
 *   DATA/relay.json     settings chosen at init (listen addresses)
 *   DATA/desk.json      the desk's calendar and SLA targets, if any
 *                       (relay/desk/desk_config.h; read by serve at start)
 *   DATA/relay.lock     held (flock) by the serving relay; DATA/relay.state
 *                       what it tells `status` (relay/store/status.h)
 */
#ifndef TL_DATADIR_H
#define TL_DATADIR_H

#include <stddef.h>

#define TL_DATADIR_KEY "relay.key"
#define TL_DATADIR_CERT "relay.crt"
#define TL_DATADIR_DB "relay.db"
#define TL_DATADIR_AUDIT "audit.log"
#define TL_DATADIR_AUDIT_KEY "audit_key"
#define TL_DATADIR_AUDIT_CHECKPOINTS "audit.checkpoints"
#define TL_DATADIR_AUDIT_LEAVES "audit.leaves"
#define TL_DATADIR_EVIDENCE "evidence"
#define TL_DATADIR_SETTINGS "relay.json"
#define TL_DATADIR_LOCK "relay.lock"
#define TL_DATADIR_STATE "relay.state"

#define TL_RELAY_DEFAULT_LISTEN "127.0.0.1:7443"

/* DATA/name into out; TL_EINVAL if it does not fit. */
int tl_datadir_path(const char *root, const char *name, char *out, size_t size);

/*
 * Creates a new data directory (0700) with key, certificate, audit key, store,
 * audit log (first entry: relay.init, which names the audit key) and evidence
 * directory. TL_EEXIST if root exists
 * and is not empty: an existing relay is never overwritten. ssh_listen is the
 * technicians' SSH address `serve` uses when given none (NULL: no SSH unless
 * `serve --ssh-listen`). fingerprint_out (TL_FINGERPRINT_LEN bytes) receives
 * the relay key's fingerprint.
 */
int tl_datadir_init(const char *root, const char *listen, const char *ssh_listen,
                    char *fingerprint_out);

/* The listen address recorded at init, into out. */
int tl_datadir_listen(const char *root, char *out, size_t size);

/* The SSH listen address recorded at init, into out; TL_ENOTFOUND if none was. */
int tl_datadir_ssh_listen(const char *root, char *out, size_t size);

/* The relay key's fingerprint. */
int tl_datadir_fingerprint(const char *root, char *out);

#endif
