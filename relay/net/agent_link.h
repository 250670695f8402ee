/*
 * What the layers above the network see of one live agent connection: the
 * request/answer RPC to the agent, notifications, and the mux to open
 * channels on; and, the other way, the hooks through which the agents' side
 * tells them what happens on a connection. relay/net/agent_link.c implements
 * the link, relay/net/agent_server.c calls the hooks; relay/sessions/ uses
 * the link and provides the hooks (relay/serve.c wires them), and never
 * sees the server itself.
 */
#ifndef TL_AGENT_LINK_H
#define TL_AGENT_LINK_H

#include "proto/mux.h"

#include <jansson.h>
#include <stdint.h>

/*
 * One live agent connection, as relay/sessions/sessions.c sees it: it sends control
 * requests and notifications over it and opens channels on its mux. The
 * link is valid until the agent_closed hook names it; after that it must not
 * be used. Loop thread only.
 */
typedef struct tl_agent_link tl_agent_link_t;

/* Relay-originated control requests waiting for an answer, per connection. */
#define TL_AGENT_MAX_PENDING 32

int64_t tl_agent_device(const tl_agent_link_t *agent);
tl_mux_t *tl_agent_mux(tl_agent_link_t *agent);
/* A notification (request id 0). */
int tl_agent_notify(tl_agent_link_t *agent, json_t *body);

/*
 * The answer to a request: status 0 and the agent's result body ({"type":
 * "result","ok":...}, borrowed for the call), or TL_ETIMEOUT (no answer
 * within the timeout) or TL_ECLOSED (the connection ended first) and NULL.
 * Runs exactly once per request unless the request was cancelled; never
 * from inside tl_agent_request().
 */
typedef void (*tl_agent_answer_fn)(void *data, int status, json_t *result);

/*
 * Sends body as a control request with a relay-chosen id (docs/protocol.md
 * §7.3; the ids are per direction, so they never meet the agent's own).
 * TL_EFULL with TL_AGENT_MAX_PENDING requests outstanding, TL_ECLOSED once
 * the connection is ending.
 */
int tl_agent_request(tl_agent_link_t *agent, json_t *body, uint32_t timeout_ms,
                     tl_agent_answer_fn answer, void *data, uint32_t *request_id);
/* Forgets a request: its answer, if one comes, is dropped; no callback runs. */
void tl_agent_request_cancel(tl_agent_link_t *agent, uint32_t request_id);

/*
 * What the agents' side calls in the layer above, given to it at creation
 * (relay/net/agent_server.h); every function is required. All run on the
 * loop, from the connection's own callbacks.
 */
typedef struct tl_agent_hooks {
    void *ctx; /* passed to agent_closed and grant_ended */
    /* The connection is going: after this the link must not be used. */
    void (*agent_closed)(void *ctx, tl_agent_link_t *agent);
    /* The agent's session.ended notification (docs/protocol.md §7.8), unchecked. */
    void (*grant_ended)(void *ctx, tl_agent_link_t *agent, json_t *body);
    /*
     * Events of a channel the layer above opened on the link's mux and
     * marked with tl_mux_set_data(): owner is that mark. Channels without a
     * mark are the agents' side's own (evidence uploads).
     */
    void (*channel_confirm)(void *owner);
    void (*channel_refuse)(void *owner, uint32_t reason, tl_str_t message);
    void (*channel_data)(void *owner, uint8_t stream, const uint8_t *data, size_t len);
    void (*channel_writable)(void *owner);
    void (*channel_eof)(void *owner);
    /* CHANNEL_INPUT_ACK: the agent's terminal took the next `bytes` of input, hidden or not. */
    void (*channel_input_ack)(void *owner, uint32_t bytes, int hidden);
    void (*channel_close)(void *owner, const struct tl_msg_channel_close *close);
} tl_agent_hooks_t;

#endif
