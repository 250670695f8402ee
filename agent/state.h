/*
 * The agent's state directory: everything the agent keeps between runs.
 *
 *   STATE/agent.key     the agent's Ed25519 key (0600), made at enrollment
 *   STATE/agent.crt     its self-signed certificate
 *   STATE/relay.json    the enrolled relay: host, port, pinned fingerprint,
 *                       device id, and the pinned catalogue signing key's
 *                       fingerprint when the enrollment string had one
 *                       (written only after enrollment succeeded)
 *   STATE/catalogue/    the installed signed catalogue (agent/catalogue.h)
 *   STATE/outbox/       requests waiting for the relay (agent/outbox.h)
 *   STATE/delivered/    the requests delivered lately, with their tickets
 *   STATE/agent.sock    the local control socket while `run` is up
 *
 * The default directory is $TIERLINE_AGENT_STATE, else
 * $XDG_STATE_HOME/tierline-agent, else ~/.local/state/tierline-agent.
 */
#ifndef TL_AGENT_STATE_H
#define TL_AGENT_STATE_H

#include "proto/keys.h"

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#define TL_STATE_KEY "agent.key"
#define TL_STATE_CERT "agent.crt"
#define TL_STATE_RELAY "relay.json"
#define TL_STATE_OUTBOX "outbox"
#define TL_STATE_DELIVERED "delivered"
#define TL_STATE_SOCKET "agent.sock"
#define TL_STATE_PATH_MAX 4096
/* Room for a path inside the state directory (directory + a few names). */
#define TL_STATE_FILE_MAX (TL_STATE_PATH_MAX + 512)

typedef struct tl_agent_state {
    char dir[TL_STATE_PATH_MAX];
    int enrolled;
    char relay_host[256];
    uint16_t relay_port;
    char relay_fingerprint[TL_FINGERPRINT_LEN];
    char device[80];                        /* "D-7"; room for any id the relay may send */
    char catalogue_key[TL_FINGERPRINT_LEN]; /* "" when enrolled without one */
} tl_agent_state_t;

/*
 * The directory to use: dir if given (--state), else $TIERLINE_AGENT_STATE,
 * else the configured one (agent.conf's state_dir), else the default above.
 */
int tl_state_dir(const char *dir, char *out, size_t size);
/* agent.conf's state_dir (NULL or "": none), for tl_state_dir. */
void tl_state_set_configured_dir(const char *dir);
/* Creates the directory (0700, parents too) and the outbox. */
int tl_state_prepare(const char *dir);
/* Reads relay.json; enrolled = 0 when there is none. TL_EINVAL if damaged. */
int tl_state_load(const char *dir, tl_agent_state_t *out);
/* Records a successful enrollment (write, fsync, rename). */
int tl_state_save(const tl_agent_state_t *state);
int tl_state_path(const char *dir, const char *name, char *out, size_t size);
/*
 * The agent's key and certificate; with create, made if missing. TL_ENOTFOUND
 * without create when there is no key.
 */
int tl_state_identity(const char *dir, int create, EVP_PKEY **key, X509 **cert);

#endif
