/*
 * What the files of the relay's agent side (relay/net/agent_server.h) share:
 * a connection, its uploads and the requests it waits on, the server, and
 * the storage jobs bound to a connection. Only relay/net/agent_*.c include
 * it; tl__ names are theirs alone.
 */
#ifndef TL_AGENT_SERVER_INT_H
#define TL_AGENT_SERVER_INT_H

#include "proto/addr.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/peer.h"
#include "proto/vocab.h"
#include "relay/net/agent_server.h"
#include "relay/net/device_index.h"
#include "relay/net/listener.h"

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

/* docs/protocol.md §7. */

/* One connected agent (or a key that came to enroll). */
struct tl_agent_link {
    tl_agent_server_t *server;
    tl_peer_t *peer;
    struct tl_agent_link *prev, *next;
    struct upload *uploads;
    int64_t device_id; /* 0 while unknown: enrollment only */
    char fingerprint[TL_FINGERPRINT_LEN];
    char address[TL_ADDR_TEXT_MAX];
    uv_timer_t *enroll_deadline; /* unknown keys only: enroll in time or go */
    int refs;                    /* the connection itself, plus each job in flight */
    unsigned uploads_open;       /* upload channels open now */
    unsigned requests_in_flight;
    /* Requests the relay sent (sessions), allocated on first use. */
    struct pending_request *pending;
    uv_timer_t *request_timer;
    uint32_t next_request_id;
    unsigned pending_count;
    unsigned closed : 1;
    unsigned enrolling : 1;
    unsigned counted_online : 1;
    unsigned parked : 1;      /* ready before the registry was loaded: waits for it */
    unsigned handshaking : 1; /* counted in the server's handshakes until HELLO or close */
};

/* An evidence item arriving on an "upload" channel (docs/protocol.md §7.4). */
struct upload {
    struct tl_agent_link *agent;
    struct upload *next;
    uint32_t channel;
    tl_evidence_writer_t *writer; /* worker thread only */
    char expect_hash[TL_SHA256_HEX_LEN];
    char kind[33];
    char name[256];
    uint64_t expect_size;
    uint64_t received;
    /* Worker thread only: the item is committed, failed or aborted. */
    int worker_finished;
    /* Loop only (never in the same memory as the worker's field). */
    unsigned jobs; /* in flight */
    unsigned channel_open : 1;
    unsigned stopped : 1; /* no more jobs will be queued */
};

/* A control request the relay sent and the agent has not answered yet. */
struct pending_request {
    uint32_t id; /* 0: a free slot */
    uint64_t deadline;
    tl_agent_answer_fn answer;
    void *data;
};

struct enroll_limit {
    char address[TL_ADDR_TEXT_MAX];
    uint64_t window_start;
    unsigned failures;
};

#define ENROLL_LIMIT_SLOTS 256

struct tl_agent_server {
    uv_loop_t *loop;
    tl_listener_t *listener; /* NULL until listening, and once stopped */
    tl_tls_ctx_t *tls;
    tl_worker_t *worker;
    tl_registry_t *registry;
    uv_timer_t *load_retry; /* the registry's load failed: tried again when it fires */
    uv_timer_t *sweep;      /* each heartbeat interval: silent agents are closed */
    int registry_loaded;    /* every enrolled device is in the registry */
    struct tl_agent_link *agents;
    tl_device_index_t *live; /* device id -> its welcomed connection, the newest */
    uint32_t agent_count;
    uint32_t handshakes; /* connections before HELLO: at TL_RELAY_MAX_HANDSHAKES, none accepted */
    tl_agent_server_config_t config;
    tl_peer_config_t peer_config;
    tl_mux_config_t mux_config;
    struct enroll_limit limits[ENROLL_LIMIT_SLOTS];
    char software[64];
    int stopping;
};

/* A job bound to an agent: holds a reference so the agent outlives it. */
struct agent_job {
    tl_job_t job;
    struct tl_agent_link *agent;
    int result;            /* the outcome the agent is told */
    uint32_t request_id;   /* for control requests */
    json_t *request;       /* the request body (owned) */
    json_t *reply;         /* extra members for the result (owned) */
    struct upload *upload; /* for upload jobs */
    uint8_t *data;         /* for upload writes */
    size_t len;
    tl_device_info_t device; /* for enrollment (strings owned) */
    char code_hash[TL_SHA256_HEX_LEN];
    int64_t device_id;
    int online;
};

/* ---- agent_server.c: connections ---------------------------------------------------------- */

/* The audit log's actor for the connection: agent:D-N, or agent:FINGERPRINT before enrolling. */
void tl__agent_actor(const struct tl_agent_link *agent, char out[96]);
/* Drops a reference; the last one frees the connection, its uploads and pending requests. */
void tl__agent_unref(struct tl_agent_link *agent);
/* An unknown key came to enroll: it no longer has to within the handshake timeout. */
void tl__agent_stop_enroll_deadline(struct tl_agent_link *agent);
struct agent_job *tl__agent_job_new(struct tl_agent_link *agent,
                                    int (*run)(tl_job_t *, tl_job_ctx_t *),
                                    void (*done)(tl_job_t *, int));
void tl__agent_job_free(struct agent_job *job);
/* Text member of at most max bytes, non-empty unless empty_ok; NULL if not such a string. */
const char *tl__json_text(json_t *object, const char *key, size_t max, int empty_ok);

/* ---- agent_enroll.c ----------------------------------------------------------------------- */

/* ENROLL from an unknown key (or a known one that lost its state); TL_EPROTO twice. */
int tl__enroll_handle(struct tl_agent_link *agent, const struct tl_msg_enroll *enroll);

/* ---- agent_requests.c --------------------------------------------------------------------- */

/* A control request from an enrolled agent (type may be NULL); answered now or once durable. */
int tl__request_handle(struct tl_agent_link *agent, const char *type,
                       const struct tl_msg_control *control);

/* ---- agent_uploads.c ---------------------------------------------------------------------- */

/* An "upload" channel the agent opens: 0 to confirm it, else why it is refused. */
int tl__upload_open(struct tl_agent_link *agent, uint32_t channel, json_t *params);
/* Data, EOF and CLOSE of channels that are not the layer above's: uploads, or nothing. */
void tl__upload_data(struct tl_agent_link *agent, uint32_t channel, uint8_t stream,
                     const uint8_t *data, size_t len);
void tl__upload_eof(struct tl_agent_link *agent, uint32_t channel);
void tl__upload_closed(struct tl_agent_link *agent, uint32_t channel);
/* The connection is gone: every upload still open is dropped. */
void tl__uploads_abort(struct tl_agent_link *agent);

/* ---- agent_link.c: the relay's requests to the agent -------------------------------------- */

/* A "result" from the agent: the answer to one of the relay's requests, or to none. */
void tl__agent_link_answer(struct tl_agent_link *agent, const struct tl_msg_control *control);
/* The connection is gone: every request still waiting fails with TL_ECLOSED. */
void tl__agent_link_fail_pending(struct tl_agent_link *agent);
/* A ticket update the desk published (a tl_worker_listen_fn; data is the server): to the
 * device's live connection, if it has one (docs/protocol.md §7.12). */
void tl__agent_ticket_update(void *data, const char *channel, json_t *message);
/* A tl_worker_listen_fn: a new audit checkpoint, told to every device online (§7.15). */
void tl__agent_checkpoint_news(void *data, const char *channel, json_t *message);

#endif
