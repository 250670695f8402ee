/*
 * The relay's metrics endpoint (docs/metrics.md "The endpoint"): a tiny, strict HTTP/1.1 server
 * on the loop that answers GET /metrics with what a render callback writes, and nothing else.
 *
 * Anyone who can reach the address may connect without authenticating, so everything such a
 * peer can cause is bounded: a request (request line and headers) of at most
 * TL_METRICS_HTTP_MAX_REQUEST bytes, held in the connection's own fixed buffer; one deadline per
 * connection for reading the request and sending the answer; at most max_per_address connections
 * from one address and max_connections in all (connections over either are closed at once, so a
 * full address does not stop another from being served); one response, then close. Errors: 400
 * for garbage, 404 for another path, 405 (Allow: GET) for another method, 431 for a request over
 * the bound, 408 when the deadline passes first; the response body is rendered per request from
 * counters in memory (relay/store/metrics.h) and never touches the store.
 *
 * tl_metrics_http_parse() is the reader alone, bytes in and a status out, for tests.
 * Loop thread only. The server is its own; tl_metrics_http_stop() ends it and its memory goes
 * once the loop has run the close callbacks.
 */
#ifndef TL_METRICS_HTTP_H
#define TL_METRICS_HTTP_H

#include "proto/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TL_METRICS_HTTP_MAX_REQUEST 8192u
#define TL_METRICS_HTTP_DEFAULT_CONNECTIONS 64u
#define TL_METRICS_HTTP_DEFAULT_PER_ADDRESS 4u
#define TL_METRICS_HTTP_DEFAULT_DEADLINE_MS 5000u
/* A response body over this is not sent (500). */
#define TL_METRICS_HTTP_MAX_BODY (4u * 1024 * 1024)

/*
 * Reads a request from data[0..len): 0 when more bytes are needed, else the HTTP status to
 * answer (200 for GET /metrics). A request whose end is not within
 * TL_METRICS_HTTP_MAX_REQUEST bytes gets 431.
 */
int tl_metrics_http_parse(const char *data, size_t len);

/* Appends the body for a 200; a negative code gives a 500. */
typedef int (*tl_metrics_http_render_fn)(void *ctx, tl_buf_t *out);

typedef struct tl_metrics_http_config {
    const char *listen;       /* "ADDR:PORT" */
    uint32_t max_connections; /* 0: TL_METRICS_HTTP_DEFAULT_CONNECTIONS */
    uint32_t max_per_address; /* 0: TL_METRICS_HTTP_DEFAULT_PER_ADDRESS */
    uint32_t deadline_ms;     /* 0: TL_METRICS_HTTP_DEFAULT_DEADLINE_MS */
    tl_metrics_http_render_fn render;
    void *ctx;
} tl_metrics_http_config_t;

typedef struct tl_metrics_http tl_metrics_http_t;

/* Listens; NULL and *err if the address cannot be had. */
tl_metrics_http_t *tl_metrics_http_start(uv_loop_t *loop, const tl_metrics_http_config_t *config,
                                         int *err);
/* Closes the listener and every connection. NULL is a no-op. */
void tl_metrics_http_stop(tl_metrics_http_t *server);
/* Connections open now; connections closed at once for a limit since start (tests, logs). */
unsigned tl_metrics_http_connections(const tl_metrics_http_t *server);
uint64_t tl_metrics_http_refused(const tl_metrics_http_t *server);

#endif
