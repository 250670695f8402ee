/*
 * The agent's tunnel: its one outbound connection to the relay.
 *
 * Connects (resolving the relay's name without blocking the loop), proves
 * the agent's key and checks the relay's pin (proto/peer.h), waits for the
 * relay's welcome, then delivers the outbox (agent/outbox.h): each request's
 * evidence is uploaded on an "upload" channel, then the ticket is asked for;
 * a request leaves the outbox only when the relay has answered (docs/
 * protocol.md §7.4, §7.5). A lost connection is retried with exponential
 * backoff and full jitter, so many agents that lost one relay do not come
 * back in lockstep.
 *
 * Every touch of the outbox (recovery at start, picking the next request,
 * reading evidence, removing a delivered request, setting one aside) is a
 * job on a storage lane (agent/storage.h), in order, never on the loop.
 * A request whose evidence file is missing is sent without uploading: the
 * relay answers its ticket if it holds every piece of evidence already (an
 * earlier delivery went through), ENOTFOUND otherwise, and the request is
 * then set aside as damaged, never retried.
 *
 * Sessions (docs/protocol.md §7.6-7.9). With a consent module and a
 * sessions module in its options (the `run` command), the tunnel also
 * serves the relay's requests: a session.request goes to the consent module
 * (agent/consent.h), whose answer comes back through
 * tl_tunnel_consent_answer(); session.cancel withdraws the question;
 * runbooks.list is answered from the catalogue. Every channel the relay
 * opens is checked against its grant by the consent module before it is
 * handed to the sessions module (agent/session.h), and refused with
 * EDENIED and the failed check otherwise; the tunnel then forwards that
 * channel's events to the sessions module. When the connection drops, the
 * sessions' processes stop and open questions are dropped; grants stay.
 * When a grant ends, tl_tunnel_grant_ended() stops its sessions and tells
 * the relay (at once, or as soon as it is connected again).
 *
 * The user's tickets (docs/protocol.md §7.11-7.12): tl_tunnel_request() asks
 * the relay on the agent's behalf, and the relay's ticket.update notices go
 * to the owner's on_ticket_update.
 */
#ifndef TL_TUNNEL_H
#define TL_TUNNEL_H

#include "agent/consent.h"
#include "agent/session.h"
#include "agent/state.h"
#include "agent/storage.h"

#include <stdint.h>
#include <uv.h>

typedef struct tl_tunnel tl_tunnel_t;

typedef struct tl_tunnel_options {
    const tl_agent_state_t *state;
    /* Deliver what is queued (only this request if set), then stop; no retries. */
    int once;
    const char *only_request;
    uint32_t backoff_min_ms; /* first retry delay; 0: 500 ms */
    uint32_t backoff_max_ms; /* cap; 0: 60 s */
    /* Both or neither; NULL: the relay's session requests and channels are refused. */
    tl_consent_t *consent;
    tl_sessions_t *sessions;
    /* The lane outbox work runs on (not taken over); NULL: a lane of its own. */
    tl_storage_t *storage;
    /* Connect only to ask (tl_tunnel_request): the outbox is left alone. */
    int requests_only;
    /* The local address to connect from (must outlive the tunnel); NULL: any. */
    const struct sockaddr *source;
} tl_tunnel_options_t;

typedef struct tl_tunnel_events {
    void (*on_connected)(tl_tunnel_t *tunnel, const char *device);
    void (*on_disconnected)(tl_tunnel_t *tunnel, int reason);
    /* A request left the outbox: ticket is the relay's answer ("T-42"). */
    void (*on_delivered)(tl_tunnel_t *tunnel, const char *request, const char *ticket);
    /* A request was set aside for good: refused by the relay, or damaged here. */
    void (*on_rejected)(tl_tunnel_t *tunnel, const char *request, int error);
    /*
     * What is queued stays queued for now, because of reason: one request
     * that failed on this connection, or (request NULL) everything, since a
     * connection attempt failed or the connection dropped.
     */
    void (*on_queued)(tl_tunnel_t *tunnel, const char *request, int reason);
    /* Once mode: finished (0: all delivered) or gave up. */
    void (*on_stopped)(tl_tunnel_t *tunnel, int status);
    /* The relay's ticket.update notice (docs/protocol.md §7.12), unchecked; body is borrowed. */
    void (*on_ticket_update)(tl_tunnel_t *tunnel, json_t *body);
    /* The relay's audit.checkpoint notice (docs/protocol.md §7.15), unchecked; body borrowed. */
    void (*on_audit_checkpoint)(tl_tunnel_t *tunnel, json_t *body);
} tl_tunnel_events_t;

tl_tunnel_t *tl_tunnel_start(uv_loop_t *loop, const tl_tunnel_options_t *options,
                             const tl_tunnel_events_t *events, void *data, int *err);
/* The outbox changed: deliver now if connected. */
void tl_tunnel_kick(tl_tunnel_t *tunnel);
/*
 * Closes the connection and frees the tunnel from the loop. The sessions'
 * processes are stopped and open questions dropped first; after this
 * returns the tunnel no longer uses its consent and sessions modules.
 */
void tl_tunnel_stop(tl_tunnel_t *tunnel);
int tl_tunnel_connected(const tl_tunnel_t *tunnel);

enum tl_tunnel_link {
    TL_TUNNEL_CONNECTED,   /* welcomed by the relay */
    TL_TUNNEL_CONNECTING,  /* an attempt is under way */
    TL_TUNNEL_UNREACHABLE, /* the last attempt failed, or the link dropped: retrying */
};
/* Where the connection stands; *last_error (may be NULL): why the last attempt failed. */
enum tl_tunnel_link tl_tunnel_link(const tl_tunnel_t *tunnel, int *last_error);
/*
 * Why the last attempt to reach the relay failed, or the last connection
 * ended; 0 while connected. tl_tunnel_error_text() gives the sentence the
 * user sees for the errors that need one (a relay key that does not match
 * the pin, an agent key the relay does not know), NULL for the others.
 */
int tl_tunnel_last_error(const tl_tunnel_t *tunnel);
const char *tl_tunnel_error_text(int error);
void *tl_tunnel_data(const tl_tunnel_t *tunnel);

/* The consent module's answer to the session.request it was given with token. */
void tl_tunnel_consent_answer(tl_tunnel_t *tunnel, uint64_t token,
                              const tl_consent_answer_t *answer);
/*
 * The user's (or the timeout's) decision on the command of a channel held
 * for it: the session starts, or the channel is refused with EDENIED and
 * the answer's message; the relay gets session.command either way.
 */
void tl_tunnel_command_answer(tl_tunnel_t *tunnel, uint64_t token,
                              const tl_consent_answer_t *answer);
/*
 * A grant ended: its sessions stop and their channels close (exit signal
 * HUP), and the relay gets session.ended, now or once connected again.
 */
void tl_tunnel_grant_ended(tl_tunnel_t *tunnel, const tl_grant_t *grant, const char *reason);

/*
 * The agent's own requests to the relay (tickets.list, docs/protocol.md §7.11): body is sent
 * as a control request on the current connection and answer runs once, on the loop, with 0
 * and the relay's result body (borrowed for the call), or TL_ETIMEOUT (no answer within
 * timeout_ms), TL_ECLOSED (the connection ended or the tunnel stopped first). Returns
 * TL_ECLOSED at once when not connected (answer does not run), TL_EFULL with
 * TL_TUNNEL_MAX_REQUESTS outstanding.
 */
#define TL_TUNNEL_MAX_REQUESTS 16
typedef void (*tl_tunnel_answer_fn)(void *data, int status, json_t *result);
int tl_tunnel_request(tl_tunnel_t *tunnel, json_t *body, uint32_t timeout_ms,
                      tl_tunnel_answer_fn answer, void *data);

/* The delay before retry number attempt (0-based), jittered; exposed for tests. */
uint64_t tl_tunnel_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned attempt, uint32_t random);

#endif
