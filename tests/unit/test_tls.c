/*
 * TLS over real loopback TCP, client and server on one uv loop. Every loop
 * run is bounded by a guard timer that fails the test when it fires. Data is
 * a seeded pattern, so each received byte is checked, not just counted.
 */
#include "tl_test.h"

#include "proto/keys.h"
#include "proto/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#define GUARD_MS 20000
#define MIB (1024u * 1024u)
#define CHUNK (64u * 1024u)
#define MAX_SERVERS 4
#define MAX_RAWS 2
#define CLIENT_SEED 0x11u
#define SERVER_SEED 0x22u

struct world;

/* One end of a TLS connection, and everything the test saw happen to it. */
struct side {
    struct world *w;
    tl_tls_t *conn;
    int handshake_calls;
    int handshake_status;
    int error_calls;
    int error_status;
    int drain_calls;
    int read_calls;
    int late_callbacks; /* callbacks after tl_tls_close: must stay 0 */
    int write_error;
    size_t received;
    size_t corrupt; /* received bytes that broke the pattern */
    uint32_t rx_seed;
    uint32_t tx_seed;
    size_t sent;
    size_t send_on_handshake;
    int close_on_first_read;
    char peer_fp[TL_FINGERPRINT_LEN];
    int peer_address_rc;
    struct sockaddr_storage peer_address;
    int close_requested;
    int closed;
};

/* A plain TCP peer that does not speak TLS, or speaks it by hand. */
struct raw {
    struct world *w;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    const uint8_t *tx;
    size_t tx_len;
    uint8_t rx[64 * 1024];
    size_t rx_len;
    int read_status; /* what ended reading (UV_EOF...), 0 while open */
    int replied;
    int in_use;
    int closing;
};

struct world {
    uv_loop_t loop;
    uv_tcp_t listener;
    int listener_open;
    struct sockaddr_in addr;
    tl_tls_ctx_t *server_ctx;
    tl_tls_ctx_t *client_ctx;
    tl_tls_callbacks_t callbacks;
    struct side client;
    struct side servers[MAX_SERVERS];
    int accepted;
    struct raw raws[MAX_RAWS];
    EVP_PKEY *server_key;
    EVP_PKEY *client_key;
    EVP_PKEY *stranger_key;
    char server_fp[TL_FINGERPRINT_LEN];
    char client_fp[TL_FINGERPRINT_LEN];
    char stranger_fp[TL_FINGERPRINT_LEN];
    /* check_peer accepts this fingerprint and refuses others with refuse_code. */
    const char *allowed_peer;
    int refuse_code;
    int check_peer_calls;
    char check_peer_seen[TL_FINGERPRINT_LEN];
    /* Both sides close once each has received this many bytes (0: off). */
    size_t expect_each;
    int open_handles;
    int timed_out;
    void (*on_handshake_hook)(struct side *s);
    void (*on_read_hook)(struct side *s);
    void (*on_raw_read_hook)(struct raw *r);
    /* Backpressure bookkeeping. */
    int phase;
    size_t peak_queue;
    int read_while_congested;
    int drains_before_first_read;
};

static struct world world;

static uint8_t pattern(uint32_t seed, size_t offset)
{
    uint32_t x = (uint32_t)offset * 2654435761u ^ (seed * 0x9e3779b9u);
    x ^= x >> 16;
    x *= 0x45d9f3bu;
    x ^= x >> 16;
    return (uint8_t)x;
}

static int send_pattern(struct side *s, size_t len)
{
    static uint8_t chunk[CHUNK];
    while (len > 0) {
        size_t n = len < CHUNK ? len : CHUNK;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(s->tx_seed, s->sent + i);
        int rc = tl_tls_write(s->conn, chunk, n);
        if (rc != 0)
            return rc;
        s->sent += n;
        len -= n;
    }
    return 0;
}

/* ---- Loop control ------------------------------------------------------ */

static void on_guard(uv_timer_t *timer)
{
    struct world *w = timer->data;
    w->timed_out = 1;
}

static void run_until(struct world *w, int (*done)(struct world *w), const char *what)
{
    uv_timer_t guard;
    w->timed_out = 0;
    uv_timer_init(&w->loop, &guard);
    guard.data = w;
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    while (!done(w) && !w->timed_out)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (w->timed_out)
        fail_msg("loop timed out after %d ms waiting for %s", GUARD_MS, what);
}

#define RUN_UNTIL(w, pred) run_until((w), (pred), #pred)

/* ---- TLS sides --------------------------------------------------------- */

static void on_side_closed(tl_tls_t *conn)
{
    struct side *s = tl_tls_get_data(conn);
    s->closed++;
    s->conn = NULL;
    s->w->open_handles--;
}

static void side_close(struct side *s)
{
    if (s->conn != NULL && !s->close_requested) {
        s->close_requested = 1;
        tl_tls_close(s->conn, on_side_closed);
    }
}

static void close_when_all_received(struct world *w)
{
    if (w->expect_each > 0 && w->client.received >= w->expect_each &&
        w->servers[0].received >= w->expect_each) {
        side_close(&w->client);
        side_close(&w->servers[0]);
    }
}

static void cb_handshake(tl_tls_t *conn, int status)
{
    struct side *s = tl_tls_get_data(conn);
    if (s->close_requested) {
        s->late_callbacks++;
        return;
    }
    s->handshake_calls++;
    s->handshake_status = status;
    const char *fp = tl_tls_peer_fingerprint(conn);
    snprintf(s->peer_fp, sizeof s->peer_fp, "%s", fp != NULL ? fp : "");
    s->peer_address_rc = tl_tls_peer_address(conn, &s->peer_address);
    if (status != 0) {
        side_close(s);
        return;
    }
    if (s->send_on_handshake > 0) {
        int rc = send_pattern(s, s->send_on_handshake);
        if (rc != 0 && s->write_error == 0)
            s->write_error = rc;
    }
    if (s->w->on_handshake_hook != NULL)
        s->w->on_handshake_hook(s);
}

static void cb_read(tl_tls_t *conn, const uint8_t *data, size_t len)
{
    struct side *s = tl_tls_get_data(conn);
    if (s->close_requested) {
        s->late_callbacks++;
        return;
    }
    s->read_calls++;
    for (size_t i = 0; i < len; i++)
        s->corrupt += data[i] != pattern(s->rx_seed, s->received + i);
    s->received += len;
    if (s->close_on_first_read)
        side_close(s);
    if (s->w->on_read_hook != NULL)
        s->w->on_read_hook(s);
    close_when_all_received(s->w);
}

static void cb_error(tl_tls_t *conn, int status)
{
    struct side *s = tl_tls_get_data(conn);
    if (s->close_requested) {
        s->late_callbacks++;
        return;
    }
    s->error_calls++;
    s->error_status = status;
    side_close(s);
}

static void cb_drain(tl_tls_t *conn)
{
    struct side *s = tl_tls_get_data(conn);
    if (s->close_requested) {
        s->late_callbacks++;
        return;
    }
    s->drain_calls++;
}

static int check_peer(void *data, const char *peer_fingerprint)
{
    struct world *w = data;
    w->check_peer_calls++;
    snprintf(w->check_peer_seen, sizeof w->check_peer_seen, "%s", peer_fingerprint);
    if (w->allowed_peer != NULL && tl_fingerprint_equal(w->allowed_peer, peer_fingerprint))
        return 0;
    return w->refuse_code;
}

static void init_side(struct world *w, struct side *s, uint32_t rx_seed, uint32_t tx_seed)
{
    s->w = w;
    s->rx_seed = rx_seed;
    s->tx_seed = tx_seed;
}

static struct world *world_setup(void)
{
    struct world *w = &world;
    memset(w, 0, sizeof *w);
    /* Peers reset connections in these tests; see tls.h on SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(0, uv_loop_init(&w->loop));
    TL_ASSERT_OK(tl_key_generate(&w->server_key));
    TL_ASSERT_OK(tl_key_generate(&w->client_key));
    TL_ASSERT_OK(tl_key_generate(&w->stranger_key));
    TL_ASSERT_OK(tl_fingerprint(w->server_key, w->server_fp));
    TL_ASSERT_OK(tl_fingerprint(w->client_key, w->client_fp));
    TL_ASSERT_OK(tl_fingerprint(w->stranger_key, w->stranger_fp));
    w->callbacks = (tl_tls_callbacks_t){
        .on_handshake = cb_handshake,
        .on_read = cb_read,
        .on_error = cb_error,
        .on_drain = cb_drain,
    };
    w->refuse_code = TL_EPIN;
    init_side(w, &w->client, SERVER_SEED, CLIENT_SEED);
    for (int i = 0; i < MAX_SERVERS; i++)
        init_side(w, &w->servers[i], CLIENT_SEED, SERVER_SEED);
    return w;
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct world *w = handle->data;
    w->open_handles--;
}

static void listen_any(struct world *w, uv_connection_cb on_connection)
{
    struct sockaddr_in any;
    int len = sizeof w->addr;
    assert_int_equal(0, uv_tcp_init(&w->loop, &w->listener));
    w->listener.data = w;
    w->listener_open = 1;
    w->open_handles++;
    assert_int_equal(0, uv_ip4_addr("127.0.0.1", 0, &any));
    assert_int_equal(0, uv_tcp_bind(&w->listener, (const struct sockaddr *)&any, 0));
    assert_int_equal(0, uv_listen((uv_stream_t *)&w->listener, 16, on_connection));
    assert_int_equal(0, uv_tcp_getsockname(&w->listener, (struct sockaddr *)&w->addr, &len));
}

static void on_tls_connection(uv_stream_t *listener, int status)
{
    struct world *w = listener->data;
    assert_int_equal(0, status);
    assert_true(w->accepted < MAX_SERVERS);
    struct side *s = &w->servers[w->accepted++];
    int err = -1;
    s->conn = tl_tls_accept(listener, w->server_ctx, &w->callbacks, s, &err);
    TL_ASSERT_OK(err);
    assert_non_null(s->conn);
    w->open_handles++;
}

static void start_server(struct world *w, tl_tls_config_t config)
{
    int err = -1;
    config.role = TL_TLS_SERVER;
    if (config.key == NULL)
        config.key = w->server_key;
    w->server_ctx = tl_tls_ctx_new(&config, &err);
    TL_ASSERT_OK(err);
    assert_non_null(w->server_ctx);
    listen_any(w, on_tls_connection);
}

static void start_client(struct world *w, tl_tls_config_t config)
{
    int err = -1;
    config.role = TL_TLS_CLIENT;
    if (config.key == NULL)
        config.key = w->client_key;
    w->client_ctx = tl_tls_ctx_new(&config, &err);
    TL_ASSERT_OK(err);
    w->client.conn = tl_tls_connect(&w->loop, w->client_ctx, (const struct sockaddr *)&w->addr,
                                    &w->callbacks, &w->client, &err);
    TL_ASSERT_OK(err);
    assert_non_null(w->client.conn);
    w->open_handles++;
    /* Nothing may be written before the handshake has succeeded. */
    TL_ASSERT_RC(TL_EINVAL, tl_tls_write(w->client.conn, "x", 1));
}

static void on_raw_closed(uv_handle_t *handle)
{
    struct raw *r = handle->data;
    r->w->open_handles--;
}

static void raw_close(struct raw *r)
{
    if (r->in_use && !r->closing) {
        r->closing = 1;
        uv_close((uv_handle_t *)&r->tcp, on_raw_closed);
    }
}

static int all_closed(struct world *w)
{
    return w->open_handles == 0;
}

static void world_teardown(struct world *w)
{
    side_close(&w->client);
    for (int i = 0; i < MAX_SERVERS; i++)
        side_close(&w->servers[i]);
    for (int i = 0; i < MAX_RAWS; i++)
        raw_close(&w->raws[i]);
    if (w->listener_open) {
        w->listener_open = 0;
        uv_close((uv_handle_t *)&w->listener, on_handle_closed);
    }
    RUN_UNTIL(w, all_closed);
    tl_tls_ctx_free(w->server_ctx);
    tl_tls_ctx_free(w->client_ctx);
    assert_int_equal(0, uv_loop_close(&w->loop));

    assert_int_equal(0, w->client.late_callbacks);
    for (int i = 0; i < MAX_SERVERS; i++)
        assert_int_equal(0, w->servers[i].late_callbacks);
    EVP_PKEY_free(w->server_key);
    EVP_PKEY_free(w->client_key);
    EVP_PKEY_free(w->stranger_key);
}

/* ---- Raw TCP peers ----------------------------------------------------- */

static void raw_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static char overflow[4096];
    struct raw *r = handle->data;
    if (r->rx_len < sizeof r->rx)
        *buf = uv_buf_init((char *)r->rx + r->rx_len, (unsigned)(sizeof r->rx - r->rx_len));
    else
        *buf = uv_buf_init(overflow, sizeof overflow);
}

static void raw_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct raw *r = stream->data;
    if (nread < 0) {
        r->read_status = (int)nread;
        uv_read_stop(stream);
        return;
    }
    if (buf->base == (char *)r->rx + r->rx_len)
        r->rx_len += (size_t)nread;
    if (r->w->on_raw_read_hook != NULL)
        r->w->on_raw_read_hook(r);
}

static void raw_on_write(uv_write_t *req, int status)
{
    /* The server may hang up before taking everything; that is its right. */
    (void)req;
    (void)status;
}

static void raw_send(struct raw *r, const void *data, size_t len)
{
    r->tx = data;
    r->tx_len = len;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    assert_int_equal(0, uv_write(&r->write, (uv_stream_t *)&r->tcp, &buf, 1, raw_on_write));
}

static void raw_on_connect(uv_connect_t *req, int status)
{
    struct raw *r = req->handle->data;
    assert_int_equal(0, status);
    if (r->tx_len > 0)
        raw_send(r, r->tx, r->tx_len);
    assert_int_equal(0, uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_on_read));
}

static void raw_connect(struct world *w, struct raw *r, const void *data, size_t len)
{
    r->w = w;
    r->tx = data;
    r->tx_len = len;
    assert_int_equal(0, uv_tcp_init(&w->loop, &r->tcp));
    r->tcp.data = r;
    r->in_use = 1;
    w->open_handles++;
    assert_int_equal(
        0, uv_tcp_connect(&r->connect, &r->tcp, (const struct sockaddr *)&w->addr, raw_on_connect));
}

/* ---- Plain OpenSSL peers limited to TLS 1.2, in a thread ---------------- */

struct tls12_peer {
    struct sockaddr_in addr;
    int listen_fd; /* server mode */
    EVP_PKEY *key;
    X509 *cert;
    int result;
    int reason;
};

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static SSL_CTX *tls12_only_ctx(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx != NULL) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

static void *tls12_client_thread(void *arg)
{
    struct tls12_peer *p = arg;
    SSL_CTX *ctx = tls12_only_ctx(TLS_client_method());
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    p->result = 99;
    if (ctx != NULL && fd >= 0) {
        set_timeouts(fd);
        if (connect(fd, (struct sockaddr *)&p->addr, sizeof p->addr) == 0) {
            SSL *ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            p->result = SSL_connect(ssl);
            p->reason = ERR_GET_REASON(ERR_peek_error());
            SSL_free(ssl);
        }
    }
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static void *tls12_server_thread(void *arg)
{
    struct tls12_peer *p = arg;
    SSL_CTX *ctx = tls12_only_ctx(TLS_server_method());
    struct pollfd pfd = {.fd = p->listen_fd, .events = POLLIN};
    p->result = 99;
    if (ctx != NULL && SSL_CTX_use_certificate(ctx, p->cert) == 1 &&
        SSL_CTX_use_PrivateKey(ctx, p->key) == 1 && poll(&pfd, 1, 5000) == 1) {
        int fd = accept(p->listen_fd, NULL, NULL);
        if (fd >= 0) {
            set_timeouts(fd);
            SSL *ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            p->result = SSL_accept(ssl);
            p->reason = ERR_GET_REASON(ERR_peek_error());
            SSL_free(ssl);
            close(fd);
        }
    }
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

/*
 * A plain OpenSSL TLS 1.3 client (blocking, in a thread) holding the
 * client's key. It either asks for a KeyUpdate and expects a 4-byte answer
 * under the new keys, or slips a forged record onto the socket and expects
 * the server's alert for it.
 */
enum peer13_mode { PEER13_KEY_UPDATE, PEER13_FORGED_RECORD };

struct tls13_peer {
    enum peer13_mode mode;
    struct sockaddr_in addr;
    EVP_PKEY *key;
    X509 *cert;
    int handshake;
    int update_requested;
    int read_result;
    int reason;
    uint8_t answer[4];
};

static void *tls13_client_thread(void *arg)
{
    struct tls13_peer *p = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ctx != NULL && fd >= 0 && SSL_CTX_use_certificate(ctx, p->cert) == 1 &&
        SSL_CTX_use_PrivateKey(ctx, p->key) == 1 &&
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1) {
        set_timeouts(fd);
        if (connect(fd, (struct sockaddr *)&p->addr, sizeof p->addr) == 0) {
            SSL *ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            p->handshake = SSL_connect(ssl);
            if (p->handshake == 1 && p->mode == PEER13_KEY_UPDATE) {
                uint8_t ping[4];
                for (size_t i = 0; i < sizeof ping; i++)
                    ping[i] = pattern(CLIENT_SEED, i);
                p->update_requested = SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED);
                if (SSL_write(ssl, ping, sizeof ping) == (int)sizeof ping)
                    p->read_result = SSL_read(ssl, p->answer, sizeof p->answer);
            } else if (p->handshake == 1) {
                /* Application data under keys nobody has: fails authentication. */
                uint8_t forged[5 + 32] = {0x17, 0x03, 0x03, 0x00, 0x20};
                memset(forged + 5, 0x5a, 32);
                if (send(fd, forged, sizeof forged, MSG_NOSIGNAL) == (ssize_t)sizeof forged)
                    p->read_result = SSL_read(ssl, p->answer, sizeof p->answer);
            }
            p->reason = ERR_GET_REASON(ERR_peek_error());
            SSL_free(ssl);
        }
    }
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static void run_tls13_peer(struct world *w, struct tls13_peer *peer, int (*done)(struct world *))
{
    peer->addr = w->addr;
    peer->key = w->client_key;
    TL_ASSERT_OK(tl_cert_self_signed(w->client_key, "agent", 1, &peer->cert));
    pthread_t thread;
    assert_int_equal(0, pthread_create(&thread, NULL, tls13_client_thread, peer));
    run_until(w, done, "the TLS 1.3 peer");
    assert_int_equal(0, pthread_join(thread, NULL));
    X509_free(peer->cert);
}

/* ---- Predicates -------------------------------------------------------- */

static int client_and_first_server_closed(struct world *w)
{
    return w->client.closed == 1 && w->servers[0].closed == 1;
}

static int client_closed(struct world *w)
{
    return w->client.closed == 1;
}

static int first_server_closed(struct world *w)
{
    return w->servers[0].closed == 1;
}

/* ---- Tests ------------------------------------------------------------- */

/* The load generator's many agents: a connection from a given loopback source address. */
static void test_client_connects_from_given_source_address(void **state)
{
    struct world *w = world_setup();
    int err = -1;
    w->allowed_peer = w->client_fp;
    start_server(w, (tl_tls_config_t){.check_peer = check_peer, .check_peer_data = w});
    w->client_ctx = tl_tls_ctx_new(
        &(tl_tls_config_t){.role = TL_TLS_CLIENT, .key = w->client_key, .pin = w->server_fp}, &err);
    TL_ASSERT_OK(err);
    struct sockaddr_in source;
    assert_int_equal(0, uv_ip4_addr("127.0.0.2", 0, &source));
    w->client.conn =
        tl_tls_connect_from(&w->loop, w->client_ctx, (const struct sockaddr *)&w->addr,
                            (const struct sockaddr *)&source, &w->callbacks, &w->client, &err);
    TL_ASSERT_OK(err);
    assert_non_null(w->client.conn);
    w->open_handles++;
    w->client.send_on_handshake = 1000;
    w->servers[0].send_on_handshake = 1000;
    w->expect_each = 1000;
    RUN_UNTIL(w, client_and_first_server_closed);
    TL_ASSERT_OK(w->client.handshake_status);
    TL_ASSERT_OK(w->servers[0].handshake_status);
    assert_int_equal(1000, w->client.received);
    assert_int_equal(1000, w->servers[0].received);
    TL_ASSERT_OK(w->servers[0].peer_address_rc);
    const struct sockaddr_in *seen = (const struct sockaddr_in *)&w->servers[0].peer_address;
    assert_int_equal(AF_INET, seen->sin_family);
    assert_int_equal(0x7f000002u, ntohl(seen->sin_addr.s_addr));
    world_teardown(w);
}

/* A source address that is not this machine's: the connect fails at once, nothing is left open. */
static void test_client_refuses_foreign_source_address(void **state)
{
    struct world *w = world_setup();
    int err = 0;
    start_server(w, (tl_tls_config_t){.check_peer = check_peer, .check_peer_data = w});
    w->client_ctx = tl_tls_ctx_new(
        &(tl_tls_config_t){.role = TL_TLS_CLIENT, .key = w->client_key, .pin = w->server_fp}, &err);
    TL_ASSERT_OK(err);
    struct sockaddr_in source;
    assert_int_equal(0, uv_ip4_addr("192.0.2.1", 0, &source)); /* TEST-NET-1 */
    tl_tls_t *conn =
        tl_tls_connect_from(&w->loop, w->client_ctx, (const struct sockaddr *)&w->addr,
                            (const struct sockaddr *)&source, &w->callbacks, &w->client, &err);
    assert_null(conn);
    assert_int_equal(UV_EADDRNOTAVAIL, err);
    world_teardown(w);
}

static void test_pinned_peers_exchange_data_both_ways(void **state)
{
    struct world *w = world_setup();
    w->allowed_peer = w->client_fp;
    start_server(w, (tl_tls_config_t){.check_peer = check_peer, .check_peer_data = w});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->client.send_on_handshake = MIB;
    w->servers[0].send_on_handshake = MIB;
    w->expect_each = MIB;

    RUN_UNTIL(w, client_and_first_server_closed);

    struct side *client = &w->client;
    struct side *server = &w->servers[0];
    TL_ASSERT_OK(client->handshake_status);
    TL_ASSERT_OK(server->handshake_status);
    assert_int_equal(1, w->accepted);
    assert_int_equal(MIB, client->sent);
    assert_int_equal(MIB, server->sent);
    assert_int_equal(MIB, client->received);
    assert_int_equal(MIB, server->received);
    assert_int_equal(0, client->corrupt);
    assert_int_equal(0, server->corrupt);
    TL_ASSERT_OK(client->write_error);
    TL_ASSERT_OK(server->write_error);
    assert_int_equal(0, client->error_calls);
    assert_int_equal(0, server->error_calls);
    /* Each side reports the key the other one holds. */
    assert_string_equal(w->server_fp, client->peer_fp);
    assert_string_equal(w->client_fp, server->peer_fp);
    assert_int_equal(1, w->check_peer_calls);
    assert_string_equal(w->client_fp, w->check_peer_seen);
    /* And where it is: the client sees the listener's port, both see loopback. */
    TL_ASSERT_OK(client->peer_address_rc);
    TL_ASSERT_OK(server->peer_address_rc);
    const struct sockaddr_in *at_client = (const struct sockaddr_in *)&client->peer_address;
    const struct sockaddr_in *at_server = (const struct sockaddr_in *)&server->peer_address;
    assert_int_equal(AF_INET, at_client->sin_family);
    assert_int_equal(AF_INET, at_server->sin_family);
    assert_int_equal(w->addr.sin_port, at_client->sin_port);
    assert_int_equal(htonl(INADDR_LOOPBACK), at_server->sin_addr.s_addr);

    world_teardown(w);
}

static void test_client_refuses_server_with_wrong_pin(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    /* The client expects the stranger's key; the server holds its own. */
    start_client(w, (tl_tls_config_t){.pin = w->stranger_fp});
    w->client.send_on_handshake = 1024;
    w->servers[0].send_on_handshake = 1024;

    RUN_UNTIL(w, client_and_first_server_closed);

    TL_ASSERT_RC(TL_EPIN, w->client.handshake_status);
    assert_int_equal(1, w->client.handshake_calls);
    /* What the server presented is known, so it can be logged. */
    assert_string_equal(w->server_fp, w->client.peer_fp);
    /* The server hears the client's bad_certificate alert. */
    TL_ASSERT_RC(TL_ETLS, w->servers[0].handshake_status);
    assert_int_equal(0, w->client.read_calls);
    assert_int_equal(0, w->servers[0].read_calls);
    assert_int_equal(0, w->client.sent);
    assert_int_equal(0, w->servers[0].sent);

    world_teardown(w);
}

static void test_server_refuses_client_rejected_by_check_peer(void **state)
{
    struct world *w = world_setup();
    w->allowed_peer = w->stranger_fp; /* the registry knows someone else */
    w->refuse_code = TL_ENOTFOUND;
    start_server(w, (tl_tls_config_t){.check_peer = check_peer, .check_peer_data = w});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->client.send_on_handshake = 1024;

    RUN_UNTIL(w, client_and_first_server_closed);

    struct side *server = &w->servers[0];
    /* The owner's own code comes back as the handshake status. */
    TL_ASSERT_RC(TL_ENOTFOUND, server->handshake_status);
    assert_int_equal(1, w->check_peer_calls);
    assert_string_equal(w->client_fp, w->check_peer_seen);
    assert_string_equal(w->client_fp, server->peer_fp);
    assert_int_equal(0, server->read_calls);
    /*
     * A TLS 1.3 client is done before the server judges its key: it reports
     * success, then the server's alert as an error.
     */
    TL_ASSERT_OK(w->client.handshake_status);
    assert_int_equal(1, w->client.error_calls);
    TL_ASSERT_RC(TL_ETLS, w->client.error_status);
    assert_int_equal(0, w->client.read_calls);

    world_teardown(w);
}

static void test_server_refuses_client_with_wrong_pin(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->stranger_fp});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->client.send_on_handshake = 1024;

    RUN_UNTIL(w, client_and_first_server_closed);

    TL_ASSERT_RC(TL_EPIN, w->servers[0].handshake_status);
    assert_string_equal(w->client_fp, w->servers[0].peer_fp);
    assert_int_equal(0, w->servers[0].read_calls);
    TL_ASSERT_OK(w->client.handshake_status);
    TL_ASSERT_RC(TL_ETLS, w->client.error_status);
    assert_int_equal(0, w->client.read_calls);

    world_teardown(w);
}

static void test_server_refuses_tls12_client(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    struct tls12_peer peer = {.addr = w->addr};
    pthread_t thread;
    assert_int_equal(0, pthread_create(&thread, NULL, tls12_client_thread, &peer));

    RUN_UNTIL(w, first_server_closed);
    assert_int_equal(0, pthread_join(thread, NULL));

    TL_ASSERT_RC(TL_ETLS, w->servers[0].handshake_status);
    assert_int_equal(0, w->servers[0].read_calls);
    assert_true(peer.result <= 0);
    assert_int_equal(SSL_R_TLSV1_ALERT_PROTOCOL_VERSION, peer.reason);

    world_teardown(w);
}

static void test_client_and_tls12_server_refuse_each_other(void **state)
{
    struct world *w = world_setup();
    struct tls12_peer peer = {.key = w->server_key};
    TL_ASSERT_OK(tl_cert_self_signed(w->server_key, "old-server", 1, &peer.cert));
    peer.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(peer.listen_fd >= 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof w->addr;
    assert_int_equal(0, bind(peer.listen_fd, (struct sockaddr *)&any, sizeof any));
    assert_int_equal(0, listen(peer.listen_fd, 1));
    assert_int_equal(0, getsockname(peer.listen_fd, (struct sockaddr *)&w->addr, &len));
    pthread_t thread;
    assert_int_equal(0, pthread_create(&thread, NULL, tls12_server_thread, &peer));

    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    RUN_UNTIL(w, client_closed);
    assert_int_equal(0, pthread_join(thread, NULL));
    close(peer.listen_fd);
    X509_free(peer.cert);

    TL_ASSERT_RC(TL_ETLS, w->client.handshake_status);
    assert_int_equal(0, w->client.read_calls);
    assert_true(peer.result <= 0);
    assert_int_equal(SSL_R_UNSUPPORTED_PROTOCOL, peer.reason);

    world_teardown(w);
}

/*
 * A server that answers any ClientHello with a TLS 1.2 ServerHello (no
 * supported_versions extension), as an old or downgrading server would.
 */
static const uint8_t tls12_server_hello[] = {
    0x16, 0x03, 0x03, 0x00, 0x2a, /* handshake record, 42 bytes */
    0x02, 0x00, 0x00, 0x26,       /* ServerHello, 38 bytes */
    0x03, 0x03,                   /* TLS 1.2 */
    /* 32 bytes of server random */
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x00,       /* no session id */
    0xc0, 0x2b, /* ECDHE-ECDSA-AES128-GCM-SHA256 */
    0x00,       /* no compression, and no extensions */
};
_Static_assert(sizeof tls12_server_hello == 5 + 42, "ServerHello length");

static void answer_with_tls12_hello(struct raw *r)
{
    /* Wait for the whole first record (the ClientHello), then answer it. */
    if (r->replied || r->rx_len < 5 || r->rx_len < 5 + (size_t)((r->rx[3] << 8) | r->rx[4]))
        return;
    r->replied = 1;
    raw_send(r, tls12_server_hello, sizeof tls12_server_hello);
}

static void on_raw_connection(uv_stream_t *listener, int status)
{
    struct world *w = listener->data;
    struct raw *r = &w->raws[0];
    assert_int_equal(0, status);
    assert_false(r->in_use);
    r->w = w;
    assert_int_equal(0, uv_tcp_init(&w->loop, &r->tcp));
    r->tcp.data = r;
    r->in_use = 1;
    w->open_handles++;
    assert_int_equal(0, uv_accept(listener, (uv_stream_t *)&r->tcp));
    assert_int_equal(0, uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_on_read));
}

static int client_closed_and_raw_done(struct world *w)
{
    return w->client.closed == 1 && w->raws[0].read_status != 0;
}

/* The alert description of the first alert record after the first record, or -1. */
static int first_alert(const struct raw *r)
{
    size_t off = 0;
    while (off + 5 <= r->rx_len) {
        size_t len = (size_t)((r->rx[off + 3] << 8) | r->rx[off + 4]);
        if (off + 5 + len > r->rx_len)
            break;
        if (r->rx[off] == 0x15 && len == 2)
            return r->rx[off + 6];
        off += 5 + len;
    }
    return -1;
}

static void test_client_refuses_tls12_server_hello(void **state)
{
    struct world *w = world_setup();
    listen_any(w, on_raw_connection);
    w->on_raw_read_hook = answer_with_tls12_hello;
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});

    RUN_UNTIL(w, client_closed_and_raw_done);

    assert_true(w->raws[0].replied);
    TL_ASSERT_RC(TL_ETLS, w->client.handshake_status);
    assert_int_equal(0, w->client.read_calls);
    /* The client itself refused, with a protocol_version (70) alert. */
    assert_int_equal(70, first_alert(&w->raws[0]));

    world_teardown(w);
}

static void answer_four_bytes(struct side *s)
{
    if (s != &s->w->client && s->received == 4)
        s->write_error = send_pattern(s, 4);
}

static void test_peer_key_update_keeps_data_flowing(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    w->on_read_hook = answer_four_bytes;
    struct tls13_peer peer = {.mode = PEER13_KEY_UPDATE};

    run_tls13_peer(w, &peer, first_server_closed);

    assert_int_equal(1, peer.handshake);
    assert_int_equal(1, peer.update_requested);
    TL_ASSERT_OK(w->servers[0].handshake_status);
    assert_int_equal(4, w->servers[0].received);
    assert_int_equal(0, w->servers[0].corrupt);
    TL_ASSERT_OK(w->servers[0].write_error);
    /* The answer went out after our own KeyUpdate, and the peer could read it. */
    assert_int_equal(4, peer.read_result);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pattern(SERVER_SEED, i), peer.answer[i]);
    /* The peer closed without close_notify. */
    TL_ASSERT_RC(UV_EOF, w->servers[0].error_status);

    world_teardown(w);
}

static void test_forged_record_gets_alert(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    struct tls13_peer peer = {.mode = PEER13_FORGED_RECORD};

    run_tls13_peer(w, &peer, first_server_closed);

    assert_int_equal(1, peer.handshake);
    TL_ASSERT_OK(w->servers[0].handshake_status);
    TL_ASSERT_RC(TL_ETLS, w->servers[0].error_status);
    assert_int_equal(0, w->servers[0].read_calls);
    /* The alert OpenSSL wrote inside SSL_read reached the peer before the socket closed. */
    assert_true(peer.read_result <= 0);
    assert_int_equal(SSL_R_SSLV3_ALERT_BAD_RECORD_MAC, peer.reason);

    world_teardown(w);
}

static int garbage_handled(struct world *w)
{
    return w->accepted == 2 && w->servers[0].closed == 1 && w->servers[1].closed == 1 &&
           w->raws[0].read_status != 0 && w->raws[1].read_status != 0;
}

static void test_server_survives_garbage(void **state)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: relay.example\r\n\r\n";
    static uint8_t junk[4096];
    memset(junk, 0xff, sizeof junk);
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    raw_connect(w, &w->raws[0], http, sizeof http - 1);
    raw_connect(w, &w->raws[1], junk, sizeof junk);

    RUN_UNTIL(w, garbage_handled);

    for (int i = 0; i < 2; i++) {
        TL_ASSERT_RC(TL_ETLS, w->servers[i].handshake_status);
        assert_int_equal(1, w->servers[i].handshake_calls);
        assert_int_equal(0, w->servers[i].read_calls);
        assert_string_equal("", w->servers[i].peer_fp);
        int status = w->raws[i].read_status;
        if (status != UV_EOF && status != UV_ECONNRESET)
            fail_msg("raw client %d: expected EOF or reset, got %s", i, uv_err_name(status));
    }

    world_teardown(w);
}

static int timeout_handled(struct world *w)
{
    return w->servers[0].closed == 1 && w->raws[0].read_status != 0;
}

static void test_silent_peer_times_out_in_handshake(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp, .handshake_timeout_ms = 100});
    raw_connect(w, &w->raws[0], NULL, 0);

    uint64_t start = uv_now(&w->loop);
    RUN_UNTIL(w, timeout_handled);

    TL_ASSERT_RC(TL_ETIMEOUT, w->servers[0].handshake_status);
    assert_true(uv_now(&w->loop) - start >= 100);
    TL_ASSERT_RC(UV_EOF, w->raws[0].read_status);
    assert_int_equal(0, w->raws[0].rx_len);

    world_teardown(w);
}

static void backpressure_on_handshake(struct side *s)
{
    struct world *w = s->w;
    if (s == &w->client) {
        tl_tls_read_stop(s->conn); /* a peer that stops reading */
        return;
    }
    /* Kernel buffers fill first, then our queue, until it passes high water. */
    while (!tl_tls_congested(s->conn) && s->sent < 256 * MIB) {
        int rc = send_pattern(s, CHUNK);
        if (rc != 0) {
            s->write_error = rc;
            return;
        }
    }
    w->peak_queue = tl_tls_write_queue_size(s->conn);
    /* The silent peer still talks: this must wait until the server reads again. */
    s->w->client.write_error = send_pattern(&w->client, 4);
    w->phase = 1;
}

static void backpressure_on_read(struct side *s)
{
    struct world *w = s->w;
    if (s != &w->servers[0])
        return;
    if (tl_tls_congested(s->conn))
        w->read_while_congested++;
    if (s->read_calls == 1)
        w->drains_before_first_read = s->drain_calls;
}

static int backpressure_phase_one(struct world *w)
{
    return w->phase == 1 || w->client.closed || w->servers[0].closed;
}

static int everything_arrived(struct world *w)
{
    struct side *server = &w->servers[0];
    if (w->client.closed || server->closed)
        return 1;
    return w->client.received == server->sent && server->received == 4 &&
           tl_tls_write_queue_size(server->conn) == 0;
}

static void test_backpressure_stops_reading_until_drained(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->on_handshake_hook = backpressure_on_handshake;
    w->on_read_hook = backpressure_on_read;

    RUN_UNTIL(w, backpressure_phase_one);
    struct side *server = &w->servers[0];
    assert_int_equal(1, w->phase);
    TL_ASSERT_OK(server->write_error);
    TL_ASSERT_OK(w->client.write_error);
    assert_true(w->peak_queue >= TL_TLS_DEFAULT_HIGH_WATER);
    assert_true(tl_tls_congested(server->conn));

    /* Let the ping reach the server's socket: a server still reading would take it. */
    for (int i = 0; i < 50; i++)
        uv_run(&w->loop, UV_RUN_NOWAIT);
    assert_int_equal(0, server->read_calls);
    assert_int_equal(0, server->drain_calls);
    assert_true(tl_tls_congested(server->conn));
    assert_int_equal(0, w->client.received);

    tl_tls_read_start(w->client.conn);
    RUN_UNTIL(w, everything_arrived);

    assert_int_equal(0, server->error_calls);
    assert_int_equal(0, w->client.error_calls);
    assert_int_equal(server->sent, w->client.received);
    assert_int_equal(0, w->client.corrupt);
    assert_int_equal(4, server->received);
    assert_int_equal(0, server->corrupt);
    assert_int_equal(1, server->drain_calls);
    assert_int_equal(1, w->drains_before_first_read);
    assert_int_equal(0, w->read_while_congested);
    assert_false(tl_tls_congested(server->conn));
    assert_int_equal(0, tl_tls_write_queue_size(server->conn));

    world_teardown(w);
}

#define SMALL_LIMIT (512u * 1024u)

static void hard_limit_on_handshake(struct side *s)
{
    struct world *w = s->w;
    if (s == &w->client) {
        tl_tls_read_stop(s->conn);
        return;
    }
    int rc = 0;
    while (rc == 0 && s->sent < 256 * MIB)
        rc = send_pattern(s, CHUNK);
    s->write_error = rc;
    w->peak_queue = tl_tls_write_queue_size(s->conn);
    w->phase = 1;
}

static int client_caught_up(struct world *w)
{
    return w->client.received == w->servers[0].sent || w->client.closed || w->servers[0].closed;
}

static void test_write_queue_hard_limit(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp,
                                      .high_water = 128 * 1024,
                                      .low_water = 32 * 1024,
                                      .queue_limit = SMALL_LIMIT});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->on_handshake_hook = hard_limit_on_handshake;

    RUN_UNTIL(w, backpressure_phase_one);
    struct side *server = &w->servers[0];
    TL_ASSERT_RC(TL_EFULL, server->write_error);
    assert_true(w->peak_queue <= SMALL_LIMIT);
    assert_true(w->peak_queue + CHUNK + 1024 > SMALL_LIMIT); /* + TLS overhead */

    /* Refused writes took nothing: the connection carries on intact. */
    tl_tls_read_start(w->client.conn);
    RUN_UNTIL(w, client_caught_up);
    TL_ASSERT_OK(send_pattern(server, CHUNK));
    RUN_UNTIL(w, client_caught_up);

    assert_int_equal(server->sent, w->client.received);
    assert_int_equal(0, w->client.corrupt);
    assert_int_equal(0, server->error_calls);
    assert_int_equal(0, w->client.error_calls);

    world_teardown(w);
}

static void test_close_inside_read_callback(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->servers[0].send_on_handshake = 4 * MIB;
    w->client.close_on_first_read = 1;

    RUN_UNTIL(w, client_and_first_server_closed);

    /* One delivery, the close from inside it, and not one callback more. */
    assert_int_equal(1, w->client.read_calls);
    assert_int_equal(1, w->client.closed);
    assert_int_equal(0, w->client.error_calls);
    assert_int_equal(0, w->client.late_callbacks);
    assert_int_equal(0, w->client.corrupt);
    assert_true(w->client.received > 0 && w->client.received < 4 * MIB);
    /* The server learns of it: close_notify, or a reset if it was still sending. */
    assert_int_equal(1, w->servers[0].error_calls);
    int status = w->servers[0].error_status;
    if (status != TL_ECLOSED && status != UV_ECONNRESET && status != UV_EPIPE)
        fail_msg("server: expected close_notify or reset, got %d (%s)", status,
                 tl_strerror(status));

    world_teardown(w);
}

static void close_after_sending(struct side *s)
{
    if (s != &s->w->client)
        side_close(s);
}

static void test_close_sends_queued_data_then_close_notify(void **state)
{
    struct world *w = world_setup();
    start_server(w, (tl_tls_config_t){.pin = w->client_fp});
    start_client(w, (tl_tls_config_t){.pin = w->server_fp});
    w->servers[0].send_on_handshake = 4 * MIB;
    w->on_handshake_hook = close_after_sending;

    RUN_UNTIL(w, client_and_first_server_closed);

    TL_ASSERT_OK(w->servers[0].write_error);
    assert_int_equal(4 * MIB, w->client.received);
    assert_int_equal(0, w->client.corrupt);
    assert_int_equal(1, w->client.error_calls);
    TL_ASSERT_RC(TL_ECLOSED, w->client.error_status);
    assert_int_equal(0, w->servers[0].error_calls);

    world_teardown(w);
}

static void test_ctx_new_refuses_bad_config(void **state)
{
    struct world *w = world_setup();
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *other_cert = NULL;
    TL_ASSERT_OK(tl_cert_self_signed(w->stranger_key, "someone", 1, &other_cert));
    struct {
        const char *what;
        int expected;
        tl_tls_config_t config;
    } cases[] = {
        {"no pin, no check_peer", TL_EINVAL, {.role = TL_TLS_SERVER, .key = w->server_key}},
        {"malformed pin",
         TL_EINVAL,
         {.role = TL_TLS_CLIENT, .key = w->client_key, .pin = "SHA256:short"}},
        {"no role", TL_EINVAL, {.key = w->client_key, .pin = w->server_fp}},
        {"no key", TL_EINVAL, {.role = TL_TLS_CLIENT, .pin = w->server_fp}},
        {"low water not below high water",
         TL_EINVAL,
         {.role = TL_TLS_CLIENT,
          .key = w->client_key,
          .pin = w->server_fp,
          .high_water = 1000,
          .low_water = 1000}},
        {"queue limit under high water",
         TL_EINVAL,
         {.role = TL_TLS_CLIENT,
          .key = w->client_key,
          .pin = w->server_fp,
          .high_water = 1000,
          .queue_limit = 999}},
        {"not Ed25519", TL_EKEY, {.role = TL_TLS_CLIENT, .key = p256, .pin = w->server_fp}},
        {"certificate for another key",
         TL_EKEY,
         {.role = TL_TLS_CLIENT, .key = w->client_key, .cert = other_cert, .pin = w->server_fp}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int err = 0;
        tl_tls_ctx_t *ctx = tl_tls_ctx_new(&cases[i].config, &err);
        if (ctx != NULL || err != cases[i].expected)
            fail_msg("%s: expected %s, got %s", cases[i].what, tl_err_name(cases[i].expected),
                     tl_err_name(err));
    }
    assert_int_equal(0, ERR_peek_error());

    /* A certificate given for the right key is used as is. */
    X509 *own_cert = NULL;
    int err = -1;
    TL_ASSERT_OK(tl_cert_self_signed(w->client_key, "agent", 30, &own_cert));
    tl_tls_config_t good = {
        .role = TL_TLS_CLIENT, .key = w->client_key, .cert = own_cert, .pin = w->server_fp};
    tl_tls_ctx_t *ctx = tl_tls_ctx_new(&good, &err);
    TL_ASSERT_OK(err);
    assert_non_null(ctx);
    tl_tls_ctx_free(ctx);
    tl_tls_ctx_free(NULL);

    X509_free(own_cert);
    X509_free(other_cert);
    EVP_PKEY_free(p256);
    world_teardown(w);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pinned_peers_exchange_data_both_ways),
    cmocka_unit_test(test_client_connects_from_given_source_address),
    cmocka_unit_test(test_client_refuses_foreign_source_address),
    cmocka_unit_test(test_client_refuses_server_with_wrong_pin),
    cmocka_unit_test(test_server_refuses_client_rejected_by_check_peer),
    cmocka_unit_test(test_server_refuses_client_with_wrong_pin),
    cmocka_unit_test(test_server_refuses_tls12_client),
    cmocka_unit_test(test_client_and_tls12_server_refuse_each_other),
    cmocka_unit_test(test_client_refuses_tls12_server_hello),
    cmocka_unit_test(test_peer_key_update_keeps_data_flowing),
    cmocka_unit_test(test_forged_record_gets_alert),
    cmocka_unit_test(test_server_survives_garbage),
    cmocka_unit_test(test_silent_peer_times_out_in_handshake),
    cmocka_unit_test(test_backpressure_stops_reading_until_drained),
    cmocka_unit_test(test_write_queue_hard_limit),
    cmocka_unit_test(test_close_inside_read_callback),
    cmocka_unit_test(test_close_sends_queued_data_then_close_notify),
    cmocka_unit_test(test_ctx_new_refuses_bad_config),
};

TL_TEST_MAIN(tests)
