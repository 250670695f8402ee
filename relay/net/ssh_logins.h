/*
 * The technicians' logins, as the relay decides and records them: who may
 * log in (the users' table, relay/desk/users.h, answered from memory and
 * reloaded from the store every TL_USERS_RELOAD_MS when it changed), and
 * every outcome in the audit log through the worker (relay/store/worker.h):
 * a successful login before its commands run (the SSH front end holds them
 * until then, and refuses them if it cannot be recorded), a refusal once per
 * new key, and all refusals counted per address and minute
 * (relay/net/login_tally.h, docs/audit-format.md §11). It answers the SSH
 * front end's (relay/net/ssh_front.h) authorize and login callbacks.
 * Loop thread only.
 */
#ifndef TL_SSH_LOGINS_H
#define TL_SSH_LOGINS_H

#include "relay/net/ssh_front.h"
#include "relay/store/worker.h"

#include <stdint.h>
#include <uv.h>

typedef struct tl_ssh_logins tl_ssh_logins_t;

/* Loads the users now and keeps them fresh. NULL and *err on failure. */
tl_ssh_logins_t *tl_ssh_logins_start(uv_loop_t *loop, tl_worker_t *worker, int *err);
/*
 * The front end's authorize, on_login and on_login_ok (relay/net/ssh_front.h
 * says when each runs); the relay's own callbacks pass them on.
 */
int tl_ssh_logins_authorize(tl_ssh_logins_t *logins, const char *user, ssh_key key,
                            tl_technician_t *out);
void tl_ssh_logins_report(tl_ssh_logins_t *logins, const char *user, const char *address,
                          const char *fingerprint, int ok, const char *reason);
void tl_ssh_logins_report_ok(tl_ssh_logins_t *logins, uint64_t login_id,
                             const tl_technician_t *technician);
/* The front end they serve, told when a login is on the record. */
void tl_ssh_logins_set_front(tl_ssh_logins_t *logins, tl_ssh_front_t *front);
/*
 * After every reload that changed the users' table (an account added, disabled, removed, its
 * key or role changed): the front end's signed-in connections are checked against it
 * (tl_users_recheck; those that fail are closed) and then on_change is called, for the owner's
 * other holders of signed-in technicians (the web view's sessions). check is
 * tl_ssh_logins_recheck with logins as data.
 */
void tl_ssh_logins_on_change(tl_ssh_logins_t *logins,
                             void (*on_change)(void *data, tl_ssh_logins_t *logins), void *data);
/* tl_users_recheck against the current table, now: 0 when technician may still act. */
int tl_ssh_logins_recheck(void *logins, const tl_technician_t *technician);
/* No more reloads, and the front end is no longer told (it is stopping). Again: no-op. */
void tl_ssh_logins_stop(tl_ssh_logins_t *logins);
/*
 * At the end, before the worker is freed: stops as above, and submits the
 * last minute's refused logins (the shutdown's included). Memory goes with
 * tl_ssh_logins_free(), after the loop has run and the worker is freed.
 */
void tl_ssh_logins_close(tl_ssh_logins_t *logins);
/* NULL is a no-op. */
void tl_ssh_logins_free(tl_ssh_logins_t *logins);

#endif
