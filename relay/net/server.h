/*
 * The relay's agent side: `tierline-relay serve`.
 *
 * One libuv loop accepts agents over mutual TLS 1.3 (proto/peer.h), enrolls
 * new ones, keeps a heartbeat on each, and turns their requests (evidence
 * uploads, new tickets) into storage jobs for the worker (relay/store/worker.h),
 * answering only once the worker reports them durable. The loop itself never
 * touches the disk after start-up. docs/protocol.md §7 is the conversation
 * this implements; docs/architecture.md explains the threads.
 */
#ifndef TL_SERVER_H
#define TL_SERVER_H

#include "relay/net/agent_link.h"

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
    /* The SSH front end's limits (relay/net/ssh_front.h); 0: its defaults. */
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

#endif
