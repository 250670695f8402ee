/*
 * The relay's agent side: `tierline-relay serve`.
 *
 * One libuv loop accepts agents over mutual TLS 1.3 (proto/peer.h), enrolls
 * new ones, keeps a heartbeat on each, and turns their requests (evidence
 * uploads, new tickets) into storage jobs for the worker (relay/worker.h),
 * answering only once the worker reports them durable. The loop itself never
 * touches the disk after start-up. docs/protocol.md §7 is the conversation
 * this implements; docs/architecture.md explains the threads.
 */
#ifndef TL_SERVER_H
#define TL_SERVER_H

#include "proto/mux.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tl_relay_config {
    const char *data_dir;
    const char *listen;            /* "ADDR:PORT"; NULL: the address chosen at init */
    uint32_t heartbeat_ms;         /* announced to agents; 0: default */
    uint32_t handshake_timeout_ms; /* TLS handshake and HELLO; 0: default */
    uint32_t max_agents;           /* connections at once; 0: default */
    uint64_t max_upload_bytes;     /* one evidence item; 0: default */
    const char *ssh_listen;        /* technicians' SSH "ADDR:PORT"; NULL: no SSH front end */
    /* The SSH front end's limits (relay/ssh_front.h); 0: its defaults. */
    uint32_t ssh_max_connections;
    uint32_t ssh_preauth_per_address;
    uint32_t ssh_auth_timeout_ms;
} tl_relay_config_t;

#define TL_RELAY_DEFAULT_HEARTBEAT_MS 20000u
#define TL_RELAY_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define TL_RELAY_DEFAULT_MAX_AGENTS 20000u
#define TL_RELAY_DEFAULT_MAX_UPLOAD (64ull * 1024 * 1024)
/* Failed enrollments from one address allowed per window before refusals. */
#define TL_RELAY_ENROLL_FAILURES 5
#define TL_RELAY_ENROLL_WINDOW_MS 60000u
/* Per agent connection: evidence uploads at once, and requests awaiting the disk. */
#define TL_RELAY_MAX_UPLOADS 4
#define TL_RELAY_MAX_REQUESTS 16

/* Runs until SIGTERM or SIGINT; 0 after a clean shutdown. */
int tl_relay_serve(const tl_relay_config_t *config);

/*
 * One live agent connection, as relay/sessions.c sees it: it sends control
 * requests and notifications over it and opens channels on its mux. The
 * link is valid until tl_sessions_agent_closed() names it; after that it
 * must not be used. Loop thread only.
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

#endif
