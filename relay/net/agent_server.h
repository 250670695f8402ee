/*
 * The relay's agent side.
 *
 * One libuv loop accepts agents over mutual TLS 1.3 (proto/peer.h), enrolls
 * new ones, keeps a heartbeat on each, and turns their requests (evidence
 * uploads, new tickets) into storage jobs for the worker (relay/store/worker.h),
 * answering only once the worker reports them durable. The loop itself never
 * touches the disk after start-up. docs/protocol.md §7 is the conversation
 * this implements; docs/architecture.md explains the threads.
 *
 * The layers above see only relay/net/agent_link.h: links to live
 * connections (tl_agent_server_find()) and the hooks they give at creation,
 * through which they hear what happens on them. relay/serve.c assembles the
 * server with the rest of the relay.
 *
 * Files, one concern each: agent_server.c (connections: accept, handshake,
 * HELLO, heartbeat, who a key is, routing of messages and channels),
 * agent_enroll.c (enrollment), agent_uploads.c (evidence uploads),
 * agent_requests.c (agents' requests: new tickets), agent_link.c (the
 * relay's requests to an agent, relay/net/agent_link.h); what they share is
 * in agent_server_int.h.
 */
#ifndef TL_AGENT_SERVER_H
#define TL_AGENT_SERVER_H

#include "relay/net/agent_link.h"
#include "relay/net/registry.h"
#include "relay/store/worker.h"

#include <stdint.h>
#include <uv.h>

/* Failed enrollments from one address allowed per window before refusals. */
#define TL_RELAY_ENROLL_FAILURES 5
#define TL_RELAY_ENROLL_WINDOW_MS 60000u
/* Per agent connection: evidence uploads at once, and requests awaiting the disk. */
#define TL_RELAY_MAX_UPLOADS 4
#define TL_RELAY_MAX_REQUESTS 16
/*
 * Connections in their TLS handshake or HELLO at once: past it the relay accepts no more until
 * one is done, so a reconnect storm queues in the kernel's backlog instead of the loop.
 */
#define TL_RELAY_MAX_HANDSHAKES 256
/* Bytes of the catalogue package per catalogue.get answer (docs/protocol.md §7.14). */
#define TL_RELAY_CATALOGUE_CHUNK (96u * 1024u)

typedef struct tl_agent_server tl_agent_server_t;

/* Every value is used as given (relay/serve.h has the defaults). */
typedef struct tl_agent_server_config {
    const char *data_dir;          /* the relay's key and certificate (relay/store/datadir.h) */
    uint32_t heartbeat_ms;         /* announced to agents */
    uint32_t handshake_timeout_ms; /* TLS handshake and HELLO; an unknown key's time to enroll */
    uint32_t max_agents;           /* connections at once */
    uint32_t accept_rate;          /* new connections accepted per second at most; 0: no limit */
    uint64_t max_upload_bytes;     /* one evidence item */
    tl_registry_t *registry;       /* enrolled keys; enrollments are added to it */
    tl_agent_hooks_t hooks;        /* copied */
} tl_agent_server_config_t;

/* Loads the relay's TLS key and certificate; accepts nothing yet. NULL and *err on failure. */
tl_agent_server_t *tl_agent_server_new(uv_loop_t *loop, const tl_agent_server_config_t *config,
                                       int *err);
/* Starts accepting agents on listen ("ADDR:PORT"); their storage jobs go to worker. */
int tl_agent_server_listen(tl_agent_server_t *server, tl_worker_t *worker, const char *listen);
/* The device's live connection, or NULL when it is offline. */
tl_agent_link_t *tl_agent_server_find(tl_agent_server_t *server, int64_t device_id);
/* Connections open now, enrolling keys included. */
uint32_t tl_agent_server_count(const tl_agent_server_t *server);
/*
 * Stops accepting and closes every connection ("relay shutting down"); the
 * connections go as the loop runs. A second call does nothing.
 */
void tl_agent_server_stop(tl_agent_server_t *server);
/* After the loop has run dry and the worker is freed. NULL is a no-op. */
void tl_agent_server_free(tl_agent_server_t *server);

#endif
