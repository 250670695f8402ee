/* The metrics endpoint: a strict HTTP/1.1 reader and one response per connection
 * (relay/net/metrics_http.h). */
#include "relay/net/metrics_http.h"
#include "proto/addr.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/net/listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the reader ------------------------------------------------------------------------------ */

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Bytes no request may hold anywhere: controls other than CR, LF and HTAB, and DEL. */
static int is_forbidden(unsigned char c)
{
    return (c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f;
}

/* What the bytes so far already show to be garbage, before the request's end has come. */
static int early_garbage(const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && data[i] >= 'A' && data[i] <= 'Z')
        i++;
    if (i < len && (i == 0 || data[i] != ' '))
        return 1;
    for (size_t j = 0; j < len; j++)
        if (is_forbidden((unsigned char)data[j]) ||
            (data[j] == '\n' && (j == 0 || data[j - 1] != '\r')))
            return 1;
    return 0;
}

/* One header line [p, end): "name: value". */
static int header_ok(const char *p, const char *end)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon == NULL || colon == p)
        return 0;
    for (const char *q = p; q < colon; q++)
        if (!is_tchar((unsigned char)*q))
            return 0;
    for (const char *q = colon + 1; q < end; q++)
        if ((unsigned char)*q < 0x20 && *q != '\t')
            return 0;
    return 1;
}

int tl_metrics_http_parse(const char *data, size_t len)
{
    size_t limit = len < TL_METRICS_HTTP_MAX_REQUEST ? len : TL_METRICS_HTTP_MAX_REQUEST;
    const char *end = NULL;
    for (size_t i = 3; i < limit && end == NULL; i++)
        if (memcmp(data + i - 3, "\r\n\r\n", 4) == 0)
            end = data + i - 3; /* the last header line's CRLF starts here */
    if (early_garbage(data, end != NULL ? (size_t)(end - data) + 2 : limit))
        return 400;
    if (end == NULL)
        return len >= TL_METRICS_HTTP_MAX_REQUEST ? 431 : 0;
    /* The request line: METHOD SP TARGET SP HTTP/1.x */
    const char *line_end = strstr(data, "\r\n");
    if (line_end == NULL || line_end > end)
        return 400;
    const char *sp1 = memchr(data, ' ', (size_t)(line_end - data));
    const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1 || sp1 - data > 16 ||
        memchr(sp2 + 1, ' ', (size_t)(line_end - sp2 - 1)) != NULL)
        return 400;
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return 400;
    size_t version_len = (size_t)(line_end - sp2 - 1);
    if (version_len != 8 ||
        (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
        return 400;
    /* The headers, each "name: value" CRLF; no folded lines. */
    for (const char *p = line_end + 2; p < end + 2;) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol > end || !header_ok(p, eol))
            return 400;
        p = eol + 2;
    }
    if ((size_t)(sp1 - data) != 3 || memcmp(data, "GET", 3) != 0)
        return 405;
    if ((size_t)(sp2 - sp1 - 1) != strlen("/metrics") || memcmp(sp1 + 1, "/metrics", 8) != 0)
        return 404;
    return 200;
}

/* ---- the server ------------------------------------------------------------------------------ */

struct conn {
    tl_metrics_http_t *server;
    struct conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t deadline;
    uv_write_t write;
    uv_shutdown_t shutdown;
    int closing, handles_open, answered;
    char address[TL_ADDR_TEXT_MAX];
    size_t used;
    char request[TL_METRICS_HTTP_MAX_REQUEST + 1]; /* + 1: strstr needs an end */
    tl_buf_t *response;
};

struct tl_metrics_http {
    uv_loop_t *loop;
    tl_listener_t *listener;
    tl_metrics_http_config_t config;
    struct conn *conns;
    unsigned count;
    uint64_t refused;
    int stopping;
};

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct conn *conn = handle->data;
    if (--conn->handles_open == 0) {
        tl_buf_free(conn->response);
        free(conn);
    }
}

static void conn_close(struct conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = 1;
    tl_metrics_http_t *server = conn->server;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        server->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    server->count--;
    uv_close((uv_handle_t *)&conn->deadline, conn_handle_closed);
    uv_close((uv_handle_t *)&conn->tcp, conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the peer's end of the stream, or the deadline, closes it */
}

/*
 * The answer is out: our side of the stream ends, and what the peer still sends is read and
 * dropped until it ends its side or the deadline passes. Closing with unread bytes would reset
 * the connection, and the peer could lose the answer (a 431 most of all).
 */
static void on_written(uv_write_t *req, int status)
{
    struct conn *conn = req->data;
    conn->shutdown.data = conn;
    if (status != 0 || conn->closing ||
        uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown) != 0)
        conn_close(conn);
}

/* One response, then close: the body only for a 200. */
static void answer(struct conn *conn, int status)
{
    tl_metrics_http_t *server = conn->server;
    conn->answered = 1;
    tl_buf_t *body = tl_buf_new(TL_METRICS_HTTP_MAX_BODY);
    conn->response = tl_buf_new(TL_METRICS_HTTP_MAX_BODY + 512);
    if (body == NULL || conn->response == NULL) {
        tl_buf_free(body);
        conn_close(conn);
        return;
    }
    if (status == 200 && server->config.render(server->config.ctx, body) != 0) {
        tl_log_error("metrics not rendered peer=%s", conn->address);
        status = 500;
    }
    if (status != 200) {
        tl_buf_reset(body);
        char text[64];
        int n = snprintf(text, sizeof text, "%d %s\n", status, reason_of(status));
        tl_buf_put(body, text, (size_t)n);
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, reason_of(status),
                     status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
                                   : "text/plain; charset=utf-8",
                     tl_buf_len(body), status == 405 ? "Allow: GET\r\n" : "");
    if (tl_buf_put(conn->response, head, (size_t)n) != 0 ||
        tl_buf_put(conn->response, tl_buf_data(body), tl_buf_len(body)) != 0) {
        tl_buf_free(body);
        conn_close(conn);
        return;
    }
    tl_buf_free(body);
    uv_buf_t buf =
        uv_buf_init((char *)tl_buf_data(conn->response), (unsigned)tl_buf_len(conn->response));
    conn->write.data = conn;
    if (uv_write(&conn->write, (uv_stream_t *)&conn->tcp, &buf, 1, on_written) != 0)
        conn_close(conn);
    if (status != 200)
        tl_log_peer_debug(conn->address, "metrics request refused peer=%s status=%d", conn->address,
                          status);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *conn = handle->data;
    /* Never more than the request's bound; once answered, the buffer takes what is dropped. */
    if (conn->answered)
        conn->used = 0;
    buf->base = conn->request + conn->used;
    buf->len = TL_METRICS_HTTP_MAX_REQUEST - conn->used;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *conn = stream->data;
    if (nread < 0) {
        conn_close(conn);
        return;
    }
    if (nread == 0 || conn->answered)
        return; /* dropped (see on_written) */
    conn->used += (size_t)nread;
    conn->request[conn->used] = '\0';
    int status = tl_metrics_http_parse(conn->request, conn->used);
    if (status != 0)
        answer(conn, status);
}

static void on_deadline(uv_timer_t *timer)
{
    struct conn *conn = timer->data;
    if (!conn->answered)
        answer(conn, 408); /* the same deadline still bounds this answer's write */
    else
        conn_close(conn);
    if (!conn->closing)
        uv_timer_start(&conn->deadline, on_deadline, conn->server->config.deadline_ms, 0);
}

static unsigned held_by(const tl_metrics_http_t *server, const char *address)
{
    unsigned n = 0;
    for (const struct conn *c = server->conns; c != NULL; c = c->next)
        n += strcmp(c->address, address) == 0;
    return n;
}

static void on_accept(void *ctx, int fd, const struct sockaddr *peer)
{
    tl_metrics_http_t *server = ctx;
    char address[TL_ADDR_TEXT_MAX];
    tl_addr_format(peer, 0, address);
    const char *limit = NULL;
    if (server->stopping)
        limit = "stopping";
    else if (server->count >= server->config.max_connections)
        limit = "connections";
    else if (held_by(server, address) >= server->config.max_per_address)
        limit = "per-address";
    struct conn *conn = limit == NULL ? calloc(1, sizeof *conn) : NULL;
    if (conn == NULL) {
        close(fd);
        server->refused++;
        tl_log_peer_warn(address, "metrics connection refused peer=%s limit=%s", address,
                         limit != NULL ? limit : "memory");
        return;
    }
    conn->server = server;
    snprintf(conn->address, sizeof conn->address, "%s", address);
    uv_tcp_init(server->loop, &conn->tcp);
    uv_timer_init(server->loop, &conn->deadline);
    conn->tcp.data = conn->deadline.data = conn;
    conn->handles_open = 2;
    conn->next = server->conns;
    if (server->conns != NULL)
        server->conns->prev = conn;
    server->conns = conn;
    server->count++;
    if (uv_tcp_open(&conn->tcp, fd) != 0) {
        close(fd);
        conn_close(conn);
        return;
    }
    uv_timer_start(&conn->deadline, on_deadline, server->config.deadline_ms, 0);
    if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0)
        conn_close(conn);
}

tl_metrics_http_t *tl_metrics_http_start(uv_loop_t *loop, const tl_metrics_http_config_t *config,
                                         int *err)
{
    tl_metrics_http_t *server = calloc(1, sizeof *server);
    if (server == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    server->loop = loop;
    server->config = *config;
    if (server->config.max_connections == 0)
        server->config.max_connections = TL_METRICS_HTTP_DEFAULT_CONNECTIONS;
    if (server->config.max_per_address == 0)
        server->config.max_per_address = TL_METRICS_HTTP_DEFAULT_PER_ADDRESS;
    if (server->config.deadline_ms == 0)
        server->config.deadline_ms = TL_METRICS_HTTP_DEFAULT_DEADLINE_MS;
    tl_listener_config_t listen = {
        .address = config->listen, .name = "metrics", .on_accept = on_accept, .ctx = server};
    server->listener = tl_listener_start(loop, &listen, err);
    if (server->listener == NULL) {
        free(server);
        return NULL;
    }
    return server;
}

void tl_metrics_http_stop(tl_metrics_http_t *server)
{
    if (server == NULL)
        return;
    server->stopping = 1;
    tl_listener_stop(server->listener);
    while (server->conns != NULL)
        conn_close(server->conns);
    free(server);
}

unsigned tl_metrics_http_connections(const tl_metrics_http_t *server)
{
    return server->count;
}

uint64_t tl_metrics_http_refused(const tl_metrics_http_t *server)
{
    return server->refused;
}
