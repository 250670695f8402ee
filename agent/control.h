/*
 * The agent's local control socket (STATE/agent.sock) while `run` is up.
 *
 * The user's commands (`tierline-agent help`, `status`) talk to the running
 * agent here instead of opening a second tunnel. The socket is a Unix stream
 * socket with mode 0600 in the 0700 state directory, and every connection's
 * peer uid is checked with SO_PEERCRED: only the agent's own user (and root)
 * may use it. The agent never listens on a network port.
 *
 * Protocol: one JSON object per line, at most 64 KiB; one request per line,
 * one answer per request (the command and event names: proto/vocab.h):
 *   {"cmd":"status"}                 -> {"ok":true,"connected":B,"link":"connected"|
 *                                        "connecting"|"unreachable","last_error":"…"?,
 *                                        "device":"D-7","relay":"h:p","pending":N,
 *                                        "notifications":{...}? (tl_notify_state)}
 *   {"cmd":"deliver","request":"R-…"} -> {"ok":true,"ticket":"T-42"} once delivered,
 *                                       {"ok":false,"error":"…"} if it was set aside, or
 *                                       {"ok":false,"queued":true,"error":"…","message":
 *                                        "the relay is unreachable (…)"} when it stays
 *                                       queued: at once if the last connection attempt
 *                                       failed, else as soon as this one fails
 * Consent (docs/consent.md), once tl_control_set_consent() was called:
 *   {"cmd":"pending"}                -> {"ok":true,"questions":[{"id":"Q-7",...}]}
 *   {"cmd":"approve","id":"Q-7","duration_s":N?,"each":B?,"keep":B?}
 *                                    -> {"ok":true,"grant":{...}} once the grant is on disk
 *                                       ("each": ask for every command; "keep": a shell
 *                                       grant outlives its shell; a command: yes, at once)
 *   {"cmd":"deny","id":"Q-7"}        -> {"ok":true}
 *   {"cmd":"sessions"}               -> {"ok":true,"grants":[{...,"channels":[...]}]}
 *   {"cmd":"end","grant":"G-3"?}     -> {"ok":true,"ended":N} (every live grant without "grant")
 *   {"cmd":"watch","request":"R-…"?} -> {"ok":true,"watching":true}, then one line per event,
 *                                       starting with the questions already open (and the
 *                                       followed request's delivery, if it just happened):
 *                                       {"event":"question"|"granted"|"denied"|"activity"|
 *                                        "ended"|"delivered"|"set-aside"|"ticket"|
 *                                        "command",...}
 *                                       ("command": the decision on one command under a
 *                                        grant that asks for each, docs/consent.md)
 *                                       ("ticket": news of one of the user's tickets,
 *                                        {"event":"ticket","what":["note","status"],
 *                                         "ticket":{...as in tickets.list...}})
 * The user's tickets (docs/protocol.md §7.11), asked of the relay on the agent's connection:
 *   {"cmd":"tickets"}                -> {"ok":true,"tickets":[...],"more":B} (checked against
 *                                       the protocol's limits), or {"ok":false,"error":
 *                                       "ECLOSED","message":"the relay is unreachable (…)"}
 * Failures are {"ok":false,"error":"ENOTFOUND","message":"…"}; anything else
 * gets {"ok":false,"error":"EINVAL"} and the connection stays. A watcher that
 * stops reading is disconnected once TL_CONTROL_MAX_QUEUED bytes wait for it.
 */
#ifndef TL_CONTROL_H
#define TL_CONTROL_H

#include "agent/consent.h"
#include "agent/notify.h"
#include "agent/session.h"
#include "agent/tunnel.h"

#include <jansson.h>
#include <uv.h>

#define TL_CONTROL_MAX_LINE (64 * 1024)
/* An answer the client reads may be longer than a request: a list of tickets is up to the
 * protocol's frame size (docs/protocol.md §7.11). */
#define TL_CONTROL_MAX_ANSWER (512 * 1024)
#define TL_CONTROL_MAX_QUEUED (1024 * 1024)

typedef struct tl_control tl_control_t;

/* Listens on path (a stale socket file is replaced); TL_EEXIST if an agent already runs. */
tl_control_t *tl_control_start(uv_loop_t *loop, const char *path, tl_tunnel_t *tunnel,
                               const tl_agent_state_t *state, int *err);
/* Tunnel events the control socket answers waiting clients with. */
void tl_control_delivered(tl_control_t *control, const char *request, const char *ticket);
void tl_control_rejected(tl_control_t *control, const char *request, int error);
/* The request (NULL: every one) stays queued: waiting `deliver` clients are told so. */
void tl_control_queued(tl_control_t *control, const char *request, int reason);
/* Serves the consent commands from consent and sessions (either may be NULL). */
void tl_control_set_consent(tl_control_t *control, tl_consent_t *consent, tl_sessions_t *sessions);
/* `status` tells how desktop notifications stand (agent/notify.h); NULL: it says nothing. */
void tl_control_set_notify(tl_control_t *control, tl_notify_t *notify);
/* Sends an event line to every watcher; event is borrowed. */
void tl_control_event(tl_control_t *control, json_t *event);
void tl_control_stop(tl_control_t *control);

/*
 * Client side, for the user's commands: sends one request line and waits up
 * to timeout_ms for the answer. -ENOENT / -ECONNREFUSED when no agent runs.
 */
int tl_control_call(const char *path, json_t *request, int timeout_ms, json_t **answer);

/* Connects to the control socket at path: a blocking fd, or a negative error. */
int tl_control_connect(const char *path);

#endif
