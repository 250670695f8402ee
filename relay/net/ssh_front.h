/*
 * The relay's SSH front end for technicians (libssh server), driven from the
 * relay's libuv loop: non-blocking sessions, a uv_poll_t per socket, one
 * ssh_event per session polled with timeout 0, deadlines on uv timers. It
 * authenticates technicians by public key only, accepts "exec" requests on
 * session channels and hands each to the dispatcher (relay/net/exec.h), and
 * sends the output within each client's SSH window. docs/architecture.md
 * explains why it runs inside the loop.
 */
#ifndef TL_SSH_FRONT_H
#define TL_SSH_FRONT_H

#include "relay/net/exec.h"

#include <libssh/libssh.h>
#include <stdint.h>
#include <uv.h>

typedef struct tl_ssh_front tl_ssh_front_t;

typedef struct tl_ssh_front_config {
    const char *listen; /* "ADDR:PORT", a numeric address (proto/addr.h) */
    /*
     * The relay's Ed25519 private key, PEM PKCS#8 as proto/keys.h writes it
     * (and checks it: mode 0600). Read with OpenSSL, not by libssh: libssh
     * 0.10.6 imports such a file but then fails every key exchange with it.
     */
    const char *host_key_path;
    tl_exec_dispatch_fn dispatch;
    /*
     * Decides whether key may log in as user: 0 and *out filled for an
     * active technician, a negative code otherwise. Synchronous, on the loop
     * (from inside libssh's processing): answer from memory. Called for the
     * client's probe and again for its signature. The front end sets
     * out->address, and out->key_fingerprint when authorize leaves it empty.
     */
    int (*authorize)(void *ctx, const char *user, ssh_key key, tl_technician_t *out);
    /*
     * Every login outcome, for the audit log; may run from inside libssh's
     * processing, so it must not block (tl_ssh_front_stop() is safe). user is
     * the name the client gave, made printable, or "" before one was given;
     * fingerprint is the key's "SHA256:..." or "". ok is 1 only with reason
     * "publickey". Refusals: "unknown-key" (authorize said no: unknown user,
     * unknown or disabled key), "bad-signature", "method-refused" (a password
     * or keyboard-interactive attempt), "rate-limited", "timeout" (not
     * authenticated within auth_timeout_ms), "handshake-failed" (not SSH, or
     * the key exchange failed), "disconnected" (left before authenticating
     * without trying a key), "address-limit" (its address already holds
     * max_preauth_per_address connections not yet authenticated), "busy"
     * (max_sessions reached and no connection could make room), "evicted"
     * (closed before authenticating to make room for another address),
     * "shutdown". Each refused key is one report; a connection that tried
     * nothing gets one report when it ends.
     */
    void (*on_login)(void *ctx, const char *user, const char *address, const char *fingerprint,
                     int ok, const char *reason);
    /*
     * Optional: with it, a successful login is reported here (not to on_login) and is not
     * complete until tl_ssh_front_login_recorded(): the connection's commands wait for it, and
     * are refused with a message if the login could not be recorded (fail closed: a login the
     * audit log cannot hold lets nothing run). Called on the loop; must not block.
     */
    void (*on_login_ok)(void *ctx, uint64_t login_id, const tl_technician_t *technician);
    void *ctx;                        /* passed to the functions above */
    uint32_t max_sessions;            /* connections at once; 0: TL_SSH_DEFAULT_MAX_SESSIONS */
    uint32_t max_preauth_per_address; /* 0: TL_SSH_DEFAULT_PREAUTH_PER_ADDRESS */
    uint32_t auth_timeout_ms; /* connect to authenticated; 0: TL_SSH_DEFAULT_AUTH_TIMEOUT_MS */
    /*
     * After login: a keepalive every keepalive_ms (0: TL_SSH_DEFAULT_KEEPALIVE_MS); a client
     * from which not a byte came for TL_SSH_KEEPALIVE_MISSES of them is gone ("keepalive"). A
     * connection whose channels carried no data either way for idle_timeout_ms is closed
     * ("idle"; 0: TL_SSH_DEFAULT_IDLE_TIMEOUT_MS). docs/technicians.md "Limits".
     */
    uint32_t keepalive_ms;
    uint32_t idle_timeout_ms;
} tl_ssh_front_config_t;

/*
 * Room for technicians (docs/technicians.md "Limits"). A connection is
 * "pre-auth" from accept until it authenticates. One address holds at most
 * max_preauth_per_address pre-auth connections; more are refused at accept
 * ("address-limit"). With max_sessions connections open, a new one gets in
 * by closing the oldest pre-auth connection of the address holding the most
 * of them ("evicted"), provided that address holds more than the newcomer's;
 * otherwise it is refused ("busy"). So no address can keep another out, and
 * only authenticated connections can fill the relay. Every pre-auth
 * connection ends after auth_timeout_ms.
 */
#define TL_SSH_DEFAULT_MAX_SESSIONS 256u
#define TL_SSH_DEFAULT_PREAUTH_PER_ADDRESS 32u
#define TL_SSH_DEFAULT_AUTH_TIMEOUT_MS 20000u
/* After login: keepalives, how many may go unanswered, and the idle limit (30 minutes). */
#define TL_SSH_DEFAULT_KEEPALIVE_MS 15000u
#define TL_SSH_KEEPALIVE_MISSES 3u
#define TL_SSH_DEFAULT_IDLE_TIMEOUT_MS 1800000u

/*
 * Failed logins allowed per client address: once TL_SSH_LOGIN_FAILURES fall
 * within TL_SSH_LOGIN_WINDOW_MS, the address is refused (at accept, before
 * any key exchange; reason "rate-limited") until the oldest of them is
 * TL_SSH_LOGIN_WINDOW_MS old. Only real authentication attempts count:
 * "unknown-key", "bad-signature" and "method-refused". What is not SSH or
 * never tries a key ("handshake-failed", "disconnected", "timeout") does not,
 * so garbage from one host cannot lock out a neighbour behind the same NAT;
 * nor do the refusals above; and a connection that logs in after refused
 * keys (a client trying the keys of its agent in turn) has those failures
 * taken back. Refusals do not extend the window.
 */
#define TL_SSH_LOGIN_FAILURES 10
#define TL_SSH_LOGIN_WINDOW_MS 60000u

tl_ssh_front_t *tl_ssh_front_start(uv_loop_t *loop, const tl_ssh_front_config_t *config, int *err);
/*
 * Closes the listener and every session (running commands get on_abort);
 * memory goes when the loop has run. Safe from any callback, libssh's
 * included: connections are torn down from an idle handle.
 */
void tl_ssh_front_stop(tl_ssh_front_t *front);
/*
 * The outcome of recording login_id (from on_login_ok): 0 lets the connection's commands run,
 * anything else refuses them. A login whose connection is gone is ignored.
 */
void tl_ssh_front_login_recorded(tl_ssh_front_t *front, uint64_t login_id, int status);
/*
 * New limits from config's max_sessions, max_preauth_per_address,
 * auth_timeout_ms, keepalive_ms and idle_timeout_ms (0: the default), on a
 * configuration reload. Accepting and the idle check use them at once;
 * connections already open keep the keepalive period and login deadline
 * they started with.
 */
void tl_ssh_front_set_limits(tl_ssh_front_t *front, const tl_ssh_front_config_t *config);
/*
 * Asks check about every signed-in connection's technician (after the users' table changed): a
 * nonzero answer closes that connection, its running commands aborted as when the client
 * leaves, and the client is told reason(answer) in the disconnect message; the closing is
 * logged. Loop thread.
 */
void tl_ssh_front_recheck(tl_ssh_front_t *front,
                          int (*check)(void *data, const tl_technician_t *technician),
                          const char *(*reason)(int answer), void *data);
/* Sessions currently open, for logs and tests. */
uint32_t tl_ssh_front_sessions(const tl_ssh_front_t *front);

#endif
