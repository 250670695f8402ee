/*
 * `tierline-relay serve`: the relay assembled and run.
 *
 * relay/serve.c opens the data directory (lock, store, audit chain,
 * evidence, the registry of enrolled keys), starts the storage worker
 * (relay/store/worker.h), the agents' side (relay/net/agent_server.h) and,
 * with an SSH address, the technicians' side: sessions
 * (relay/sessions/sessions.h), the command table (relay/cmd/commands.h), the
 * logins (relay/net/ssh_logins.h) and the SSH front end
 * (relay/net/ssh_front.h); with a metrics address, the metrics endpoint
 * (relay/metrics_serve.h, docs/metrics.md). It wires the agents' side to the sessions through
 * the hooks of relay/net/agent_link.h, so nothing in relay/net knows the
 * layers above it; and it stops everything in order on SIGTERM or SIGINT.
 * docs/architecture.md explains the threads.
 */
#ifndef TL_SERVE_H
#define TL_SERVE_H

#include "proto/settings.h"

#include <stdint.h>

typedef struct tl_relay_config {
    const char *data_dir;
    const char *listen;            /* "ADDR:PORT"; NULL: the address chosen at init */
    uint32_t heartbeat_ms;         /* announced to agents; 0: default */
    uint32_t handshake_timeout_ms; /* TLS handshake and HELLO; 0: default */
    uint32_t max_agents;           /* connections at once; 0: default */
    uint32_t agent_accept_rate;    /* new agent connections a second at most; 0: default */
    uint64_t max_upload_bytes;     /* one evidence item; 0: default */
    const char *ssh_listen;        /* technicians' SSH "ADDR:PORT"; NULL: no SSH front end */
    /* The SSH front end's limits (relay/net/ssh_front.h); 0: its defaults. */
    uint32_t ssh_max_connections;
    uint32_t ssh_preauth_per_address;
    uint32_t ssh_auth_timeout_ms;
    uint32_t ssh_keepalive_ms;    /* 0: TL_SSH_DEFAULT_KEEPALIVE_MS */
    uint32_t ssh_idle_timeout_ms; /* 0: TL_SSH_DEFAULT_IDLE_TIMEOUT_MS */
    uint32_t take_wait_ms;        /* 0: TL_SESSIONS_TAKE_WAIT_MS */
    uint64_t files_max_bytes;     /* 0: TL_SESSIONS_FILE_MAX_BYTES */
    uint32_t files_max_count;     /* 0: TL_SESSIONS_FILE_MAX_COUNT */
    /* The Prometheus endpoint (relay/metrics_serve.h) "ADDR:PORT"; NULL: none. A loopback
     * address unless metrics_public. */
    const char *metrics_listen;
    int metrics_public;
    /*
     * The settings these came from (relay.conf and the command line, proto/settings.h), and how
     * to make them again: on SIGHUP the relay calls reload, applies what can change at run time
     * (TL_SETTING_RELOAD) and logs the rest as needing a restart; a file that no longer parses
     * changes nothing. NULL: SIGHUP is logged and ignored.
     */
    const tl_settings_t *settings;
    int (*reload)(void *ctx, tl_settings_t *settings, char *why, size_t why_size);
    void *reload_ctx;
    /* The web view (relay/web.h, docs/web.md) "ADDR:PORT"; NULL: none. Needs ssh_listen (its
     * links come from the `web` command). HTTPS with web_cert and web_key; plain HTTP only on
     * loopback unless web_behind_proxy. */
    const char *web_listen;
    const char *web_cert, *web_key;
    int web_behind_proxy;
    const char *web_url;    /* what links start with; NULL: from web_listen */
    const char *web_assets; /* the player's and our files; NULL: the build's default */
    uint32_t web_link_ms;   /* a link's lifetime; 0: 60 s */
} tl_relay_config_t;

#define TL_RELAY_DEFAULT_HEARTBEAT_MS 20000u
#define TL_RELAY_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define TL_RELAY_DEFAULT_MAX_AGENTS 20000u
/* 100,000 agents back in 50 s after a restart; docs/benchmarks.md "Reconnect storm". */
#define TL_RELAY_DEFAULT_ACCEPT_RATE 2000u
#define TL_RELAY_DEFAULT_MAX_UPLOAD (64ull * 1024 * 1024)

/* Runs until SIGTERM or SIGINT (SIGHUP reloads the settings); 0 after a clean shutdown. */
int tl_relay_serve(const tl_relay_config_t *config);

#endif
