#include "proto/tls.h"
#include "proto/err.h"
#include "proto/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* One socket read; OpenSSL copies it at once, so every connection shares it. */
#define READ_BUFFER_SIZE (256u * 1024u)
/* Plaintext handed to on_read in one call. */
#define PLAIN_BUFFER_SIZE (256u * 1024u)
/* Records are gathered here and written with one syscall per flush. */
#define STAGE_BUFFER_SIZE (256u * 1024u)

/* A TLS 1.3 record carries up to 16 KiB and adds header, content type and tag. */
#define TLS_RECORD_PAYLOAD 16384u
#define TLS_RECORD_OVERHEAD 32u

#define SELF_SIGNED_NAME "tierline"
#define SELF_SIGNED_DAYS 3650

struct tl_tls_ctx {
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method;
    enum tl_tls_role role;
    int has_pin;
    char pin[TL_FINGERPRINT_LEN];
    tl_tls_check_peer_fn check_peer;
    void *check_peer_data;
    size_t high_water;
    size_t low_water;
    size_t queue_limit;
    uint32_t handshake_timeout_ms;
    uint32_t close_timeout_ms;
    unsigned refs; /* the owner's, and one per connection */

    /*
     * Ciphertext OpenSSL wrote during the current SSL_* call of stage_owner.
     * Every such call is followed by a flush, so it is empty whenever the
     * owner's code runs; a write for another connection flushes it first.
     */
    tl_tls_t *stage_owner;
    size_t stage_len;
    uint8_t read_buffer[READ_BUFFER_SIZE];
    uint8_t plain_buffer[PLAIN_BUFFER_SIZE];
    uint8_t stage_buffer[STAGE_BUFFER_SIZE];
};

struct tl_tls {
    uv_tcp_t tcp;
    /* Handshake deadline, then deferred error reports, then the close linger. */
    uv_timer_t timer;
    tl_tls_ctx_t *ctx;
    SSL *ssl;
    const tl_tls_callbacks_t *callbacks;
    void *data;
    tl_tls_close_cb close_cb;

    /* Socket bytes OpenSSL has not consumed yet; set only inside a read callback. */
    const uint8_t *input;
    size_t input_len;

    size_t queued_bytes;
    int failed;        /* the first error; the connection is dead once set */
    int io_error;      /* a socket write error, noticed inside an OpenSSL call */
    int verify_status; /* what the certificate check decided */
    unsigned pending_closes;

    unsigned connected : 1;
    unsigned handshake_done : 1;
    unsigned reading : 1;
    unsigned paused_by_owner : 1;
    unsigned congested : 1;
    unsigned ssl_fatal : 1; /* OpenSSL forbids SSL_shutdown after a fatal error */
    unsigned reported : 1;
    unsigned closing : 1;
    unsigned handles_closing : 1;

    char peer_fingerprint[TL_FINGERPRINT_LEN];
    const char *log_address; /* the owner's; NULL: lines not bounded */
};

struct write_req {
    uv_write_t req;
    tl_tls_t *conn;
    size_t len;
    uint8_t data[];
};

struct connect_req {
    uv_connect_t req;
    tl_tls_t *conn;
};

static void close_handles(tl_tls_t *conn);
static tl_tls_t *accept_started(tl_tls_t *conn, int *err);
static void fail(tl_tls_t *conn, int code);
static void fail_later(tl_tls_t *conn, int code);

/* ---- Context ---------------------------------------------------------- */

static void ctx_unref(tl_tls_ctx_t *ctx)
{
    if (ctx == NULL || --ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    BIO_meth_free(ctx->bio_method);
    free(ctx);
}

void tl_tls_ctx_free(tl_tls_ctx_t *ctx)
{
    ctx_unref(ctx);
}

/*
 * Replaces chain verification: a self-signed certificate proves nothing, but
 * TLS 1.3's CertificateVerify proves the peer holds the certificate's key,
 * and that key is what we pin.
 */
static int verify_peer(X509_STORE_CTX *store, void *arg)
{
    tl_tls_ctx_t *ctx = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    tl_tls_t *conn = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    if (conn == NULL || leaf == NULL) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
        return 0;
    }

    int status = 0;
    if (tl_fingerprint_of_cert(leaf, conn->peer_fingerprint) != 0)
        status = TL_EPIN; /* not Ed25519: it cannot match any pin */
    else if (ctx->has_pin && !tl_fingerprint_equal(ctx->pin, conn->peer_fingerprint))
        status = TL_EPIN;
    if (status == 0 && ctx->check_peer != NULL) {
        int verdict = ctx->check_peer(ctx->check_peer_data, conn->peer_fingerprint);
        if (verdict != 0)
            status = verdict < 0 ? verdict : TL_EPIN;
    }
    conn->verify_status = status;
    if (status != 0) {
        /* Sent to the peer as a bad_certificate alert. */
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
}

/* ---- The BIO between OpenSSL and libuv -------------------------------- */

static void send_bytes(tl_tls_t *conn, const uint8_t *data, size_t len);

static void stage_flush(tl_tls_ctx_t *ctx)
{
    tl_tls_t *conn = ctx->stage_owner;
    size_t len = ctx->stage_len;
    ctx->stage_owner = NULL;
    ctx->stage_len = 0;
    if (conn != NULL && len > 0)
        send_bytes(conn, ctx->stage_buffer, len);
}

static void stage(tl_tls_t *conn, const uint8_t *data, size_t len)
{
    tl_tls_ctx_t *ctx = conn->ctx;
    while (len > 0) {
        if (ctx->stage_owner != conn || ctx->stage_len == STAGE_BUFFER_SIZE) {
            stage_flush(ctx);
            ctx->stage_owner = conn;
        }
        size_t n = STAGE_BUFFER_SIZE - ctx->stage_len;
        if (n > len)
            n = len;
        memcpy(ctx->stage_buffer + ctx->stage_len, data, n);
        ctx->stage_len += n;
        data += n;
        len -= n;
    }
}

/* After every SSL_* call: what OpenSSL wrote goes to the socket. */
static void flush(tl_tls_t *conn)
{
    if (conn->ctx->stage_owner == conn)
        stage_flush(conn->ctx);
}

static int bio_write_ex(BIO *bio, const char *data, size_t len, size_t *written)
{
    BIO_clear_retry_flags(bio);
    stage(BIO_get_data(bio), (const uint8_t *)data, len);
    *written = len;
    return 1;
}

static int bio_read_ex(BIO *bio, char *out, size_t size, size_t *read_len)
{
    tl_tls_t *conn = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (conn->input_len == 0) {
        BIO_set_retry_read(bio);
        *read_len = 0;
        return 0;
    }
    size_t n = size < conn->input_len ? size : conn->input_len;
    memcpy(out, conn->input, n);
    conn->input += n;
    conn->input_len -= n;
    *read_len = n;
    return 1;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tl_tls_t *conn = BIO_get_data(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return conn != NULL ? (long)conn->input_len : 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static BIO_METHOD *bio_method_new(void)
{
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tierline-uv");
    if (method == NULL)
        return NULL;
    if (BIO_meth_set_write_ex(method, bio_write_ex) != 1 ||
        BIO_meth_set_read_ex(method, bio_read_ex) != 1 ||
        BIO_meth_set_ctrl(method, bio_ctrl) != 1 || BIO_meth_set_create(method, bio_create) != 1) {
        BIO_meth_free(method);
        return NULL;
    }
    return method;
}

tl_tls_ctx_t *tl_tls_ctx_new(const tl_tls_config_t *config, int *err)
{
    int rc = TL_EINVAL;
    int dummy;
    X509 *own_cert = NULL;
    tl_tls_ctx_t *ctx = NULL;
    if (err == NULL)
        err = &dummy;

    if (config == NULL || config->key == NULL ||
        (config->role != TL_TLS_CLIENT && config->role != TL_TLS_SERVER) ||
        (config->pin == NULL && config->check_peer == NULL) ||
        (config->pin != NULL && !tl_fingerprint_valid(config->pin)))
        goto out;
    size_t high_water = config->high_water ? config->high_water : TL_TLS_DEFAULT_HIGH_WATER;
    size_t low_water = config->low_water    ? config->low_water
                       : config->high_water ? config->high_water / 4
                                            : TL_TLS_DEFAULT_LOW_WATER;
    size_t queue_limit = config->queue_limit ? config->queue_limit : TL_TLS_DEFAULT_QUEUE_LIMIT;
    if (low_water >= high_water || queue_limit < high_water)
        goto out;
    rc = TL_EKEY;
    if (EVP_PKEY_get_id(config->key) != EVP_PKEY_ED25519)
        goto out;

    rc = TL_ENOMEM;
    ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        goto out;
    ctx->refs = 1;
    ctx->role = config->role;
    ctx->has_pin = config->pin != NULL;
    if (ctx->has_pin)
        memcpy(ctx->pin, config->pin, TL_FINGERPRINT_LEN);
    ctx->check_peer = config->check_peer;
    ctx->check_peer_data = config->check_peer_data;
    ctx->high_water = high_water;
    ctx->low_water = low_water;
    ctx->queue_limit = queue_limit;
    ctx->handshake_timeout_ms = config->handshake_timeout_ms ? config->handshake_timeout_ms
                                                             : TL_TLS_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    ctx->close_timeout_ms =
        config->close_timeout_ms ? config->close_timeout_ms : TL_TLS_DEFAULT_CLOSE_TIMEOUT_MS;

    ctx->bio_method = bio_method_new();
    ctx->ssl_ctx =
        SSL_CTX_new(config->role == TL_TLS_SERVER ? TLS_server_method() : TLS_client_method());
    if (ctx->bio_method == NULL || ctx->ssl_ctx == NULL)
        goto out;

    rc = TL_ETLS;
    SSL_CTX *ssl_ctx = ctx->ssl_ctx;
    if (SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ssl_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(ssl_ctx, 0) != 1 ||
        /* Both sides sign with Ed25519 and accept nothing else. */
        SSL_CTX_set1_sigalgs_list(ssl_ctx, "ed25519") != 1)
        goto out;
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);

    X509 *cert = config->cert;
    if (cert == NULL) {
        rc = tl_cert_self_signed(config->key, SELF_SIGNED_NAME, SELF_SIGNED_DAYS, &own_cert);
        if (rc != 0)
            goto out;
        cert = own_cert;
    }
    rc = TL_EKEY;
    if (SSL_CTX_use_certificate(ssl_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ssl_ctx, config->key) != 1 ||
        SSL_CTX_check_private_key(ssl_ctx) != 1)
        goto out;

    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ssl_ctx, verify_peer, ctx);
    rc = 0;
out:
    X509_free(own_cert);
    if (rc != 0) {
        ERR_clear_error();
        ctx_unref(ctx);
        ctx = NULL;
    }
    *err = rc;
    return ctx;
}

/* ---- Socket output ---------------------------------------------------- */

static void update_reading(tl_tls_t *conn);

static void on_write_done(uv_write_t *req, int status)
{
    struct write_req *wr = (struct write_req *)req;
    tl_tls_t *conn = wr->conn;
    conn->queued_bytes -= wr->len;
    free(wr);

    if (conn->handles_closing)
        return; /* cancelled by uv_close: nothing left to do */
    if (status < 0) {
        if (conn->io_error == 0)
            conn->io_error = status;
        if (conn->closing)
            close_handles(conn);
        else
            fail(conn, status);
        return;
    }
    if (conn->closing) {
        if (conn->queued_bytes == 0)
            close_handles(conn);
        return;
    }
    if (conn->congested && conn->queued_bytes < conn->ctx->low_water) {
        conn->congested = 0;
        update_reading(conn);
        if (!conn->failed && conn->callbacks->on_drain != NULL)
            conn->callbacks->on_drain(conn);
    }
}

/*
 * Writes what the kernel takes now and queues the rest. Runs inside OpenSSL
 * calls, so it never calls the owner: errors are left in io_error.
 */
static void send_bytes(tl_tls_t *conn, const uint8_t *data, size_t len)
{
    if (conn->handles_closing || conn->io_error != 0)
        return;
    uv_stream_t *stream = (uv_stream_t *)&conn->tcp;
    size_t done = 0;
    if (conn->queued_bytes == 0) {
        uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(stream, &buf, 1);
        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            conn->io_error = n;
            return;
        }
        done = (size_t)n;
        if (done == len)
            return;
    }

    size_t rest = len - done;
    struct write_req *wr = malloc(sizeof *wr + rest);
    if (wr == NULL) {
        conn->io_error = TL_ENOMEM;
        return;
    }
    wr->conn = conn;
    wr->len = rest;
    memcpy(wr->data, data + done, rest);
    uv_buf_t buf = uv_buf_init((char *)wr->data, (unsigned)rest);
    int rc = uv_write(&wr->req, stream, &buf, 1, on_write_done);
    if (rc != 0) {
        free(wr);
        conn->io_error = rc;
        return;
    }
    conn->queued_bytes += rest;
    if (!conn->congested && conn->queued_bytes >= conn->ctx->high_water) {
        conn->congested = 1;
        update_reading(conn);
    }
}

/* ---- Failure and reading ---------------------------------------------- */

static void report(tl_tls_t *conn)
{
    if (conn->closing || conn->reported)
        return;
    conn->reported = 1;
    if (conn->handshake_done)
        conn->callbacks->on_error(conn, conn->failed);
    else
        conn->callbacks->on_handshake(conn, conn->failed);
}

static const char *status_name(int code)
{
    /* uv_err_name() leaks on codes it does not know, so ours never reach it. */
    if (code <= TL_ERR_FIRST && code >= TL_ERR_LAST)
        return tl_err_name(code);
    return uv_err_name(code);
}

/* Marks the connection dead; right after an SSL_* call, logs OpenSSL's reason. */
static void mark_failed(tl_tls_t *conn, int code)
{
    unsigned long ssl_error = ERR_peek_last_error();
    const char *reason = ssl_error != 0 ? ERR_reason_error_string(ssl_error) : NULL;
    tl_log_peer_debug(
        conn->log_address, "tls %s failed role=%s status=%s peer=%s reason=\"%s\"%s%s",
        conn->handshake_done ? "connection" : "handshake",
        conn->ctx->role == TL_TLS_SERVER ? "server" : "client", status_name(code),
        conn->peer_fingerprint[0] ? conn->peer_fingerprint : "-",
        reason != NULL ? reason : tl_strerror(code), conn->log_address ? " address=" : "",
        conn->log_address ? conn->log_address : "");
    ERR_clear_error();
    conn->failed = code;
    uv_timer_stop(&conn->timer);
    update_reading(conn);
}

static void fail(tl_tls_t *conn, int code)
{
    if (conn->failed != 0 || conn->closing)
        return;
    mark_failed(conn, code);
    report(conn);
}

static void on_report_timer(uv_timer_t *timer)
{
    report(timer->data);
}

/* For failures found during a call the owner made: reported from the loop. */
static void fail_later(tl_tls_t *conn, int code)
{
    if (conn->failed != 0 || conn->closing)
        return;
    mark_failed(conn, code);
    uv_timer_start(&conn->timer, on_report_timer, 0, 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tl_tls_t *conn = handle->data;
    *buf = uv_buf_init((char *)conn->ctx->read_buffer, READ_BUFFER_SIZE);
}

static void on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void update_reading(tl_tls_t *conn)
{
    int want = conn->connected && !conn->failed && !conn->closing && !conn->congested &&
               !conn->paused_by_owner;
    if (want && !conn->reading) {
        int rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_tcp_read);
        if (rc != 0) {
            fail_later(conn, rc);
            return;
        }
        conn->reading = 1;
    } else if (!want && conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = 0;
    }
}

/* ---- Handshake and decryption ----------------------------------------- */

static int handshake_error(tl_tls_t *conn, int ssl_error)
{
    if (ssl_error == SSL_ERROR_SSL || ssl_error == SSL_ERROR_SYSCALL)
        conn->ssl_fatal = 1;
    return conn->verify_status != 0 ? conn->verify_status : TL_ETLS;
}

static void deliver(tl_tls_t *conn, size_t len)
{
    if (len > 0)
        conn->callbacks->on_read(conn, conn->ctx->plain_buffer, len);
}

static int gone(const tl_tls_t *conn)
{
    return conn->failed != 0 || conn->closing;
}

/* Feeds conn->input to OpenSSL: handshake first, then records to plaintext. */
static void drive(tl_tls_t *conn)
{
    SSL *ssl = conn->ssl;
    if (!conn->handshake_done) {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl);
        int ssl_error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
        flush(conn); /* our flight, or the alert that ends it */
        if (r != 1 && ssl_error == SSL_ERROR_WANT_READ && conn->io_error == 0)
            return;
        if (r != 1) {
            fail(conn, conn->io_error != 0 ? conn->io_error : handshake_error(conn, ssl_error));
            return;
        }
        if (conn->io_error != 0) {
            fail(conn, conn->io_error);
            return;
        }
        /* The verify callback must have run and accepted; never trust a skipped check. */
        if (conn->verify_status != 0 || conn->peer_fingerprint[0] == '\0' ||
            SSL_get_verify_result(ssl) != X509_V_OK) {
            fail(conn, TL_EPIN);
            return;
        }
        conn->handshake_done = 1;
        uv_timer_stop(&conn->timer);
        tl_log_peer_debug(conn->log_address, "tls handshake done role=%s peer=%s%s%s",
                          conn->ctx->role == TL_TLS_SERVER ? "server" : "client",
                          conn->peer_fingerprint, conn->log_address ? " address=" : "",
                          conn->log_address ? conn->log_address : "");
        conn->callbacks->on_handshake(conn, 0);
        if (gone(conn))
            return;
    }

    uint8_t *plain = conn->ctx->plain_buffer;
    size_t fill = 0;
    for (;;) {
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_ex(ssl, plain + fill, PLAIN_BUFFER_SIZE - fill, &n);
        int ssl_error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
        /*
         * What SSL_read writes goes out now: above all the alert for a bad
         * record, which would be lost with the connection otherwise.
         * (OpenSSL 3.0 holds its answer to a KeyUpdate until our next write.)
         */
        flush(conn);
        if (r == 1) {
            fill += n;
            if (fill == PLAIN_BUFFER_SIZE) {
                deliver(conn, fill);
                fill = 0;
                if (gone(conn))
                    return;
            }
            if (conn->io_error == 0)
                continue;
        }
        deliver(conn, fill);
        if (gone(conn))
            return;
        if (conn->io_error != 0) {
            fail(conn, conn->io_error);
        } else if (ssl_error == SSL_ERROR_WANT_READ) {
            ERR_clear_error();
        } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
            fail(conn, TL_ECLOSED);
        } else {
            conn->ssl_fatal = 1;
            fail(conn, TL_ETLS);
        }
        return;
    }
}

static void on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tl_tls_t *conn = stream->data;
    if (nread == 0 || gone(conn))
        return;
    if (nread < 0) {
        fail(conn, (int)nread);
        return;
    }
    conn->input = (const uint8_t *)buf->base;
    conn->input_len = (size_t)nread;
    drive(conn);
    /* Left over only if the connection failed or closed on the way: dropped. */
    conn->input = NULL;
    conn->input_len = 0;
}

/* ---- Connections ------------------------------------------------------ */

static void on_handshake_timeout(uv_timer_t *timer)
{
    tl_tls_t *conn = timer->data;
    if (!conn->handshake_done)
        fail(conn, TL_ETIMEOUT);
}

static void on_handle_closed(uv_handle_t *handle)
{
    tl_tls_t *conn = handle->data;
    if (--conn->pending_closes > 0)
        return;
    if (conn->close_cb != NULL)
        conn->close_cb(conn);
    SSL_free(conn->ssl);
    ctx_unref(conn->ctx);
    free(conn);
}

static void close_handles(tl_tls_t *conn)
{
    if (conn->handles_closing)
        return;
    conn->handles_closing = 1;
    conn->closing = 1;
    if (conn->ctx->stage_owner == conn) {
        conn->ctx->stage_owner = NULL;
        conn->ctx->stage_len = 0;
    }
    conn->pending_closes = 2;
    uv_close((uv_handle_t *)&conn->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&conn->timer, on_handle_closed);
}

static tl_tls_t *conn_new(uv_loop_t *loop, tl_tls_ctx_t *ctx, const tl_tls_callbacks_t *callbacks,
                          void *data, int *err)
{
    tl_tls_t *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    int rc = uv_tcp_init(loop, &conn->tcp);
    if (rc != 0) {
        free(conn);
        *err = rc;
        return NULL;
    }
    uv_timer_init(loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->ctx = ctx;
    ctx->refs++;
    conn->callbacks = callbacks;
    conn->data = data;

    conn->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = BIO_new(ctx->bio_method);
    if (conn->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        ERR_clear_error();
        close_handles(conn);
        *err = TL_ENOMEM;
        return NULL;
    }
    BIO_set_data(bio, conn);
    SSL_set_bio(conn->ssl, bio, bio); /* one reference, used for both directions */
    SSL_set_app_data(conn->ssl, conn);
    return conn;
}

static int callbacks_valid(const tl_tls_callbacks_t *callbacks)
{
    return callbacks != NULL && callbacks->on_handshake != NULL && callbacks->on_read != NULL &&
           callbacks->on_error != NULL;
}

tl_tls_t *tl_tls_accept(uv_stream_t *server, tl_tls_ctx_t *ctx, const tl_tls_callbacks_t *callbacks,
                        void *data, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    if (server == NULL || ctx == NULL || ctx->role != TL_TLS_SERVER ||
        !callbacks_valid(callbacks)) {
        *err = TL_EINVAL;
        return NULL;
    }
    tl_tls_t *conn = conn_new(server->loop, ctx, callbacks, data, err);
    if (conn == NULL)
        return NULL;
    int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
    if (rc != 0) {
        close_handles(conn);
        *err = rc;
        return NULL;
    }
    return accept_started(conn, err);
}

tl_tls_t *tl_tls_accept_fd(uv_loop_t *loop, int fd, tl_tls_ctx_t *ctx,
                           const tl_tls_callbacks_t *callbacks, void *data, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    if (loop == NULL || fd < 0 || ctx == NULL || ctx->role != TL_TLS_SERVER ||
        !callbacks_valid(callbacks)) {
        if (fd >= 0)
            close(fd);
        *err = TL_EINVAL;
        return NULL;
    }
    tl_tls_t *conn = conn_new(loop, ctx, callbacks, data, err);
    if (conn == NULL) {
        close(fd);
        return NULL;
    }
    int rc = uv_tcp_open(&conn->tcp, fd);
    if (rc != 0) {
        close(fd); /* not the handle's: closing the handle leaves it alone */
        close_handles(conn);
        *err = rc;
        return NULL;
    }
    return accept_started(conn, err);
}

/* An accepted connection: reading, and the handshake under way with its deadline. */
static tl_tls_t *accept_started(tl_tls_t *conn, int *err)
{
    tl_tls_ctx_t *ctx = conn->ctx;
    int rc;
    uv_tcp_nodelay(&conn->tcp, 1);
    SSL_set_accept_state(conn->ssl);
    conn->connected = 1;
    rc = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_tcp_read);
    if (rc != 0) {
        close_handles(conn);
        *err = rc;
        return NULL;
    }
    conn->reading = 1;
    uv_timer_start(&conn->timer, on_handshake_timeout, ctx->handshake_timeout_ms, 0);
    *err = 0;
    return conn;
}

static void on_connected(uv_connect_t *req, int status)
{
    struct connect_req *cr = (struct connect_req *)req;
    tl_tls_t *conn = cr->conn;
    free(cr);
    if (gone(conn))
        return; /* closed meanwhile (UV_ECANCELED), or timed out */
    if (status < 0) {
        fail(conn, status);
        return;
    }
    conn->connected = 1;
    uv_tcp_nodelay(&conn->tcp, 1);
    update_reading(conn);
    if (gone(conn))
        return;
    drive(conn); /* no input yet: sends the ClientHello */
}

/* A socket bound to source with its port left to connect(); the TCP handle takes it over. */
static int bind_source(uv_tcp_t *tcp, const struct sockaddr *source)
{
    socklen_t len =
        source->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int fd = socket(source->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
#ifdef IP_BIND_ADDRESS_NO_PORT
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    int rc = bind(fd, source, len) == 0 ? uv_tcp_open(tcp, fd) : -errno;
    if (rc != 0)
        close(fd);
    return rc;
}

tl_tls_t *tl_tls_connect(uv_loop_t *loop, tl_tls_ctx_t *ctx, const struct sockaddr *addr,
                         const tl_tls_callbacks_t *callbacks, void *data, int *err)
{
    return tl_tls_connect_from(loop, ctx, addr, NULL, callbacks, data, err);
}

tl_tls_t *tl_tls_connect_from(uv_loop_t *loop, tl_tls_ctx_t *ctx, const struct sockaddr *addr,
                              const struct sockaddr *source, const tl_tls_callbacks_t *callbacks,
                              void *data, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    if (loop == NULL || ctx == NULL || addr == NULL || ctx->role != TL_TLS_CLIENT ||
        !callbacks_valid(callbacks)) {
        *err = TL_EINVAL;
        return NULL;
    }
    struct connect_req *cr = malloc(sizeof *cr);
    if (cr == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    tl_tls_t *conn = conn_new(loop, ctx, callbacks, data, err);
    if (conn == NULL) {
        free(cr);
        return NULL;
    }
    SSL_set_connect_state(conn->ssl);
    cr->conn = conn;
    int rc = source != NULL ? bind_source(&conn->tcp, source) : 0;
    if (rc == 0)
        rc = uv_tcp_connect(&cr->req, &conn->tcp, addr, on_connected);
    if (rc != 0) {
        free(cr);
        close_handles(conn);
        *err = rc;
        return NULL;
    }
    uv_timer_start(&conn->timer, on_handshake_timeout, ctx->handshake_timeout_ms, 0);
    *err = 0;
    return conn;
}

int tl_tls_write(tl_tls_t *conn, const void *data, size_t len)
{
    if (conn == NULL || (data == NULL && len > 0))
        return TL_EINVAL;
    if (gone(conn))
        return TL_ECLOSED;
    if (!conn->handshake_done)
        return TL_EINVAL;
    if (len == 0)
        return 0;
    /* Judged on the ciphertext it may become, so the queue never passes the limit. */
    size_t limit = conn->ctx->queue_limit;
    if (len > limit)
        return TL_EFULL;
    size_t ciphertext = len + (len / TLS_RECORD_PAYLOAD + 1) * TLS_RECORD_OVERHEAD;
    if (ciphertext > limit || conn->queued_bytes > limit - ciphertext)
        return TL_EFULL;

    size_t written = 0;
    ERR_clear_error();
    int r = SSL_write_ex(conn->ssl, data, len, &written);
    int ssl_error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(conn->ssl, r);
    flush(conn);
    int rc = 0;
    if (conn->io_error != 0) {
        rc = conn->io_error;
    } else if (r != 1 || written != len) {
        if (ssl_error == SSL_ERROR_SSL || ssl_error == SSL_ERROR_SYSCALL)
            conn->ssl_fatal = 1;
        rc = TL_ETLS;
    }
    if (rc != 0)
        fail_later(conn, rc);
    ERR_clear_error();
    return rc;
}

static void on_linger_timeout(uv_timer_t *timer)
{
    close_handles(timer->data);
}

void tl_tls_close(tl_tls_t *conn, tl_tls_close_cb close_cb)
{
    if (conn == NULL || conn->closing)
        return;
    conn->closing = 1;
    conn->close_cb = close_cb;
    uv_timer_stop(&conn->timer);
    update_reading(conn);

    if (conn->handshake_done && !conn->ssl_fatal && conn->io_error == 0) {
        ERR_clear_error();
        SSL_shutdown(conn->ssl); /* queues close_notify behind our data */
        flush(conn);
        ERR_clear_error();
    }
    if (conn->queued_bytes > 0 && conn->io_error == 0) {
        uv_timer_start(&conn->timer, on_linger_timeout, conn->ctx->close_timeout_ms, 0);
        return;
    }
    close_handles(conn);
}

void tl_tls_read_stop(tl_tls_t *conn)
{
    conn->paused_by_owner = 1;
    update_reading(conn);
}

void tl_tls_read_start(tl_tls_t *conn)
{
    conn->paused_by_owner = 0;
    update_reading(conn);
}

const char *tl_tls_peer_fingerprint(const tl_tls_t *conn)
{
    return conn->peer_fingerprint[0] != '\0' ? conn->peer_fingerprint : NULL;
}

size_t tl_tls_write_queue_size(const tl_tls_t *conn)
{
    return conn->queued_bytes;
}

int tl_tls_congested(const tl_tls_t *conn)
{
    return conn->congested;
}

size_t tl_tls_memory(const tl_tls_t *conn)
{
    return sizeof *conn + conn->queued_bytes;
}

void tl_tls_set_data(tl_tls_t *conn, void *data)
{
    conn->data = data;
}

void *tl_tls_get_data(const tl_tls_t *conn)
{
    return conn->data;
}

int tl_tls_peer_address(const tl_tls_t *conn, struct sockaddr_storage *out)
{
    int len = (int)sizeof *out;
    return uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)out, &len);
}

void tl_tls_set_log_address(tl_tls_t *conn, const char *address)
{
    conn->log_address = address;
}
