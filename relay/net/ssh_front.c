/*
 * The relay's SSH front end for technicians (DESIGN.md §5; docs/technicians.md):
 * libssh's server side, driven from the relay's libuv loop.
 *
 * Design: in the loop, not on a thread. Each connection is a non-blocking
 * libssh session with its own ssh_event; a uv_poll_t watches the socket and
 * its callback runs ssh_event_dopoll(event, 0), which reads what is there,
 * runs libssh's callbacks and returns at once. Deadlines are uv timers. The
 * front end owns nothing that blocks: authorization is answered from memory,
 * commands answer through relay/net/exec.h on the loop, and output is buffered
 * per command (capped, relay/net/ssh_exec.c) and handed to libssh only while the client's
 * SSH window is open and libssh's own socket buffer is empty, at most
 * SEND_BUDGET bytes per connection per wake-up. That keeps libssh's buffers
 * small, so a technician who stops reading holds back only their own
 * command, and many technicians share one thread without a lock anywhere: a
 * thread per connection (or one libssh thread bridged to the loop) would
 * need a queue and a wake-up for every output chunk and a lock around the
 * store and the agents' tunnels the commands touch, for no gain - the work
 * per connection is crypto and copying, which libssh does as fast as sshd.
 *
 * Rules that keep libssh's callbacks safe: a callback only records what
 * happened (flags, the parsed command) and queues the connection for
 * service; commands are dispatched, aborted and drained, and sessions and
 * channels are freed, only from conn_service(), which runs after
 * ssh_event_dopoll() has returned (or from an idle handle). libssh may run
 * callbacks again from inside ssh_channel_write() (it polls while it
 * flushes), so after every libssh call the state is read again rather than
 * remembered. A channel ends as sshd ends one: the buffered output, EOF,
 * exit-status, CLOSE, and the channel is freed only when the client's CLOSE
 * has arrived.
 *
 * Client input (keystrokes, piped stdin) stays in libssh's channel buffer
 * until the command takes it: for a command that reads, the data callback
 * consumes nothing, and conn_service() moves it out (through ssh_exec.c) and offers it to
 * on_input. libssh grows the client's window only as that buffer is read,
 * so a command that stops taking input stops its client within two windows
 * (about 1.2 MB each in libssh 0.10: what libssh holds, and what was moved
 * out of it). With a PTY, output "\n" becomes "\r\n" (a terminal's ONLCR)
 * unless the command asked for raw output.
 *
 * libssh gets a dup() of the socket and the uv_poll_t watches the original:
 * libssh closes its descriptor by itself when the client sends DISCONNECT,
 * and the poll must never watch a number the kernel may hand out again.
 *
 * Files, one concern each: ssh_front.c (connections and authentication: accept, key exchange,
 * public keys, login outcomes, the service queue, start and stop), ssh_limits.c (failed logins
 * and pre-auth connections per address: who is let in, refused or evicted), ssh_exec.c (session
 * channels and relay/net/exec.h: dispatch, input, output, the channel's end), exec_split.c (the
 * command-line splitter), ssh_host_key.c (the relay's key as libssh's host key); what they share
 * is in ssh_front_int.h.
 */
#include "relay/net/ssh_front_int.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/desk/users.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes handed to libssh per connection per wake-up (STYLE.md: ~256 KiB costs no throughput). */
#define SEND_BUDGET (256u * 1024u)

static void conn_service(struct conn *conn);
static void on_conn_poll(uv_poll_t *handle, int status, int events);
static void on_keepalive(uv_timer_t *timer);
static void on_idle(uv_idle_t *idle);
static void front_maybe_done(tl_ssh_front_t *front);

/* ---- small helpers ------------------------------------------------------------------------ */

/* Network text made safe for logs and the audit log: printable ASCII, bounded. */
void tl__ssh_printable(char *out, size_t size, const char *text)
{
    size_t i = 0;
    for (; text != NULL && text[i] != '\0' && i + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    out[i] = '\0';
}

int tl__ssh_session_gone(const struct conn *conn)
{
    return (ssh_get_status(conn->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
           !ssh_is_connected(conn->session);
}

/* ---- authentication ----------------------------------------------------------------------- */

/* Its address while it has not logged in: its lines are then bounded (proto/log.h). */
static const char *preauth_address(const struct conn *conn)
{
    return conn->authenticated ? NULL : conn->address;
}

static void report_login(struct conn *conn, int ok, const char *reason)
{
    tl_ssh_front_t *front = conn->front;
    conn->outcome_reported = 1;
    if (ok && front->on_login_ok != NULL) {
        /* Its commands wait until the relay says the login is recorded (fail closed). */
        conn->login_id = ++front->next_login_id;
        conn->login_held = 1;
        tl_log_info("ssh login user=%s role=%s addr=%s key=%s", conn->user, conn->technician.role,
                    conn->address, conn->fingerprint);
        front->on_login_ok(front->ctx, conn->login_id, &conn->technician);
        return;
    }
    if (ok)
        tl_log_info("ssh login user=%s role=%s addr=%s key=%s", conn->user, conn->technician.role,
                    conn->address, conn->fingerprint);
    else
        tl_log_peer_warn(conn->address, "ssh login refused user=%s addr=%s key=%s reason=%s",
                         conn->user[0] ? conn->user : "-", conn->address,
                         conn->fingerprint[0] ? conn->fingerprint : "-", reason);
    if (front->on_login != NULL)
        front->on_login(front->ctx, conn->user, conn->address, conn->fingerprint, ok, reason);
}

/*
 * A refused attempt: reported, and counted against the address if counts
 * (a real authentication attempt: a key or a password, not noise).
 */
static void login_failed(struct conn *conn, const char *reason, int counts)
{
    if (counts && conn->counted < MAX_AUTH_ATTEMPTS)
        conn->counted_at[conn->counted++] = tl__ssh_limit_record(conn->front, conn->address);
    report_login(conn, 0, reason);
}

static int on_auth_pubkey(ssh_session session, const char *user, struct ssh_key_struct *pubkey,
                          char signature_state, void *userdata)
{
    struct conn *conn = userdata;
    tl_ssh_front_t *front = conn->front;
    if (conn->authenticated || conn->closing)
        return SSH_AUTH_DENIED;
    tl__ssh_printable(conn->user, sizeof conn->user, user);
    tl_users_key_fingerprint(pubkey, conn->fingerprint);
    if (tl__ssh_limit_blocked(front, conn->address)) {
        login_failed(conn, "rate-limited", 0);
        conn->closing = 1;
        tl__ssh_queue_service(conn);
        return SSH_AUTH_DENIED;
    }
    if (signature_state != SSH_PUBLICKEY_STATE_NONE &&
        signature_state != SSH_PUBLICKEY_STATE_VALID) {
        login_failed(conn, "bad-signature", 1);
        goto refused;
    }
    tl_technician_t technician;
    memset(&technician, 0, sizeof technician);
    int rc = front->authorize != NULL ? front->authorize(front->ctx, user, pubkey, &technician)
                                      : TL_ENOTFOUND;
    if (rc != 0) {
        /* An expired account is named in the audit log; a disabled one looks like a stranger. */
        login_failed(conn, rc == TL_EEXPIRED ? "expired" : "unknown-key", 1);
        goto refused;
    }
    if (signature_state == SSH_PUBLICKEY_STATE_NONE)
        return SSH_AUTH_SUCCESS; /* the probe: this key would do; the client signs next */
    /* Signed, and libssh has checked the signature: in. */
    if (technician.key_fingerprint[0] == '\0')
        snprintf(technician.key_fingerprint, sizeof technician.key_fingerprint, "%s",
                 conn->fingerprint);
    snprintf(technician.address, sizeof technician.address, "%s", conn->address);
    conn->technician = technician;
    conn->authenticated = 1;
    /* From here the timer keeps the connection honest: keepalives and the idle limit. */
    conn->last_received = conn->last_activity = uv_now(front->loop);
    uv_timer_start(&conn->auth_timer, on_keepalive, front->keepalive_ms, front->keepalive_ms);
    tl__ssh_source_release(conn);
    /* Keys the client tried first (an agent holding several) were not an attack. */
    tl__ssh_limit_forgive(front, conn->address, conn->counted_at, conn->counted);
    conn->counted = 0;
    report_login(conn, 1, "publickey");
    return SSH_AUTH_SUCCESS;

refused:
    if (++conn->auth_attempts >= MAX_AUTH_ATTEMPTS) {
        tl_log_peer_warn(conn->address, "ssh too many attempts addr=%s", conn->address);
        conn->closing = 1;
        tl__ssh_queue_service(conn);
    }
    return SSH_AUTH_DENIED;
}

static const char *conn_user(const struct conn *conn)
{
    return conn->technician.name[0] ? conn->technician.name : "-";
}

static const char *channel_type_name(int subtype)
{
    switch (subtype) {
    case SSH_CHANNEL_SESSION:
        return "session";
    case SSH_CHANNEL_DIRECT_TCPIP:
        return "direct-tcpip";
    case SSH_CHANNEL_FORWARDED_TCPIP:
        return "forwarded-tcpip";
    case SSH_CHANNEL_X11:
        return "x11";
    case SSH_CHANNEL_AUTH_AGENT:
        return "auth-agent";
    default:
        return "unknown";
    }
}

/*
 * Whatever the callbacks above do not handle arrives here: other
 * authentication methods, forwarding, x11, global requests. All get libssh's
 * default answer, a refusal (return 1); this only logs and counts them.
 */
static int on_other_message(ssh_session session, ssh_message msg, void *userdata)
{
    struct conn *conn = userdata;
    int subtype = ssh_message_subtype(msg);
    switch (ssh_message_type(msg)) {
    case SSH_REQUEST_AUTH:
        /* "none" is how every client asks for the methods; guessing passwords is a failure. */
        if (subtype == SSH_AUTH_METHOD_PASSWORD || subtype == SSH_AUTH_METHOD_INTERACTIVE) {
            tl__ssh_printable(conn->user, sizeof conn->user, ssh_message_auth_user(msg));
            conn->fingerprint[0] = '\0';
            if (tl__ssh_limit_blocked(conn->front, conn->address)) {
                login_failed(conn, "rate-limited", 0);
                conn->closing = 1;
                tl__ssh_queue_service(conn);
            } else {
                login_failed(conn, "method-refused", 1);
                if (++conn->auth_attempts >= MAX_AUTH_ATTEMPTS) {
                    conn->closing = 1;
                    tl__ssh_queue_service(conn);
                }
            }
        }
        break;
    case SSH_REQUEST_CHANNEL_OPEN:
        tl_log_peer_info(preauth_address(conn),
                         "ssh request refused user=%s addr=%s request=channel-open type=%s",
                         conn_user(conn), conn->address, channel_type_name(subtype));
        break;
    case SSH_REQUEST_CHANNEL:
        if (subtype == SSH_CHANNEL_REQUEST_X11)
            tl_log_peer_info(preauth_address(conn),
                             "ssh request refused user=%s addr=%s request=channel type=x11",
                             conn_user(conn), conn->address);
        else
            tl_log_peer_debug(preauth_address(conn),
                              "ssh request refused user=%s addr=%s request=channel type=other",
                              conn_user(conn), conn->address);
        break;
    case SSH_REQUEST_GLOBAL:
        /* Keepalives (ServerAliveInterval) land here too: those only at debug. */
        if (subtype == SSH_GLOBAL_REQUEST_TCPIP_FORWARD ||
            subtype == SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD)
            tl_log_peer_info(preauth_address(conn),
                             "ssh request refused user=%s addr=%s request=global type=%s",
                             conn_user(conn), conn->address,
                             subtype == SSH_GLOBAL_REQUEST_TCPIP_FORWARD ? "tcpip-forward"
                                                                         : "cancel-tcpip-forward");
        else
            tl_log_peer_debug(preauth_address(conn),
                              "ssh request refused user=%s addr=%s request=global type=other",
                              conn_user(conn), conn->address);
        break;
    default:
        break;
    }
    return 1;
}

/* ---- connections -------------------------------------------------------------------------- */

void tl__ssh_queue_service(struct conn *conn)
{
    tl_ssh_front_t *front = conn->front;
    if (conn->queued || conn->torn_down)
        return;
    conn->queued = 1;
    conn->service_next = NULL;
    conn->service_prev = front->service_tail;
    if (front->service_tail != NULL)
        front->service_tail->service_next = conn;
    else
        front->service_head = conn;
    front->service_tail = conn;
    if (!front->idle_closed)
        uv_idle_start(&front->idle, on_idle);
}

static void unqueue_service(struct conn *conn)
{
    tl_ssh_front_t *front = conn->front;
    if (!conn->queued)
        return;
    if (conn->service_prev != NULL)
        conn->service_prev->service_next = conn->service_next;
    else
        front->service_head = conn->service_next;
    if (conn->service_next != NULL)
        conn->service_next->service_prev = conn->service_prev;
    else
        front->service_tail = conn->service_prev;
    conn->queued = 0;
    conn->service_prev = conn->service_next = NULL;
}

static void conn_watch(struct conn *conn, int writable)
{
    int events = UV_READABLE | (writable ? UV_WRITABLE : 0);
    if (events == conn->poll_events)
        return;
    conn->poll_events = events;
    uv_poll_start(&conn->poll, events, on_conn_poll);
}

static void conn_handle_closed(uv_handle_t *handle)
{
    struct conn *conn = handle->data;
    if (--conn->handles_open > 0)
        return;
    tl_ssh_front_t *front = conn->front;
    if (conn->fd >= 0)
        close(conn->fd);
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        front->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    free(conn);
    front->open--;
    front_maybe_done(front);
}

void tl__ssh_conn_teardown(struct conn *conn)
{
    tl_ssh_front_t *front = conn->front;
    conn->torn_down = 1;
    conn->closing = 1;
    unqueue_service(conn);
    tl__ssh_source_release(conn);
    front->live--;
    uv_close((uv_handle_t *)&conn->poll, conn_handle_closed);
    uv_close((uv_handle_t *)&conn->auth_timer, conn_handle_closed);

    if (!conn->authenticated && !conn->outcome_reported) {
        const char *reason = conn->close_reason;
        if (reason == NULL)
            reason = front->stopping  ? "shutdown"
                     : conn->kex_done ? "disconnected"
                                      : "handshake-failed";
        login_failed(conn, reason, 0); /* not SSH, or never tried a key: not a failed login */
    }
    /* Commands first (they may still look at their execs from on_abort), then the memory. */
    for (tl_exec_t *exec = conn->execs; exec != NULL; exec = exec->next)
        exec->channel_gone = 1;
    for (tl_exec_t *exec = conn->execs; exec != NULL; exec = exec->next)
        tl__exec_abort(exec);
    while (conn->execs != NULL)
        tl__exec_free(conn->execs, 0);

    ssh_event_remove_session(conn->event, conn->session);
    ssh_disconnect(conn->session); /* a DISCONNECT if the socket is still ours to write */
    ssh_free(conn->session);
    ssh_event_free(conn->event);
    conn->session = NULL;
    conn->event = NULL;
    tl_log_peer_info(preauth_address(conn), "ssh connection closed addr=%s user=%s sessions=%u",
                     conn->address, conn->authenticated ? conn->technician.name : "-", front->live);
    front_maybe_done(front);
}

static void conn_progress_kex(struct conn *conn)
{
    if (conn->kex_done || conn->closing)
        return;
    int rc = ssh_handle_key_exchange(conn->session);
    if (rc == SSH_OK) {
        conn->kex_done = 1;
    } else if (rc == SSH_ERROR) {
        char why[128];
        tl__ssh_printable(why, sizeof why, ssh_get_error(conn->session));
        tl_log_peer_info(conn->address, "ssh handshake failed addr=%s error=\"%s\"", conn->address,
                         why);
        conn->close_reason = "handshake-failed";
        conn->closing = 1;
    }
}

static void conn_service(struct conn *conn)
{
    if (conn->torn_down)
        return;
    if (!conn->closing && tl__ssh_session_gone(conn))
        conn->closing = 1;
    size_t budget = SEND_BUDGET;
    int more = 0;
    tl_exec_t *next;
    for (tl_exec_t *exec = conn->execs; exec != NULL && !conn->closing; exec = next) {
        next = exec->next;
        tl__exec_service(exec, &budget, &more);
    }
    if (conn->closing || tl__ssh_session_gone(conn)) {
        tl__ssh_conn_teardown(conn);
        return;
    }
    conn_watch(conn, more || (ssh_get_poll_flags(conn->session) & SSH_WRITE_PENDING));
}

static void on_conn_poll(uv_poll_t *handle, int status, int events)
{
    struct conn *conn = handle->data;
    if (conn->torn_down)
        return;
    if (status < 0) {
        tl_log_peer_debug(preauth_address(conn), "ssh poll failed addr=%s error=%s", conn->address,
                          uv_strerror(status));
        conn->closing = 1;
    } else {
        ssh_event_dopoll(conn->event, 0);
        conn_progress_kex(conn);
    }
    conn_service(conn);
}

/* Closes an authenticated connection, telling the client why in the DISCONNECT message. */
static void close_live(struct conn *conn, const char *reason, const char *message)
{
    /* Signed in: not held to the per-address budget of what strangers may log. */
    tl_log_info("ssh connection ended addr=%s user=%s reason=%s", conn->address,
                conn->technician.name, reason);
    ssh_session_set_disconnect_message(conn->session, message);
    conn->closing = 1;
    tl__ssh_queue_service(conn);
}

static void on_keepalive(uv_timer_t *timer)
{
    struct conn *conn = timer->data;
    tl_ssh_front_t *front = conn->front;
    if (!conn->authenticated || conn->closing)
        return;
    uint64_t now = uv_now(front->loop);
    /* Whoever read them (our poll, or libssh inside another call), bytes came. */
    if (conn->counter.in_bytes != conn->counted_bytes) {
        conn->counted_bytes = conn->counter.in_bytes;
        conn->last_received = now;
    }
    /* The period this connection's timer runs at: a reload changes only later connections'. */
    uint64_t period = uv_timer_get_repeat(&conn->auth_timer);
    if (now - conn->last_received >= period * TL_SSH_KEEPALIVE_MISSES) {
        close_live(conn, "keepalive", "no answer to keepalives");
        return;
    }
    if (now - conn->last_activity >= front->idle_timeout_ms) {
        char message[96];
        snprintf(message, sizeof message, "closed after %u s with no data on its channels",
                 front->idle_timeout_ms / 1000);
        close_live(conn, "idle", message);
        return;
    }
    /* keepalive@openssh.com, wanting a reply: the answer is the byte that shows it is there.
     * libssh sends one only once the answer to the one before was taken in (which the first
     * call may do): the second call sends if the first did not. */
    if (ssh_send_keepalive(conn->session) == SSH_ERROR ||
        ssh_send_keepalive(conn->session) == SSH_ERROR)
        conn->closing = 1;
    tl__ssh_queue_service(conn);
}

static void on_auth_timeout(uv_timer_t *timer)
{
    struct conn *conn = timer->data;
    if (conn->authenticated || conn->closing)
        return;
    login_failed(conn, "timeout", 0);
    conn->closing = 1;
    tl__ssh_queue_service(conn);
}

static void conn_start(tl_ssh_front_t *front, int fd, const char *address)
{
    struct conn *conn = calloc(1, sizeof *conn);
    int libssh_fd = -1;
    int error = TL_ENOMEM;
    if (conn == NULL)
        goto fail;
    conn->front = front;
    conn->fd = fd;
    snprintf(conn->address, sizeof conn->address, "%s", address);
    libssh_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (libssh_fd < 0) {
        error = -errno; /* EMFILE, most likely: counted with the listener's own failures */
        goto fail;
    }
    conn->session = ssh_new();
    conn->event = ssh_event_new();
    if (conn->session == NULL || conn->event == NULL)
        goto fail;
    ssh_set_counters(conn->session, &conn->counter, NULL);
    if (ssh_bind_accept_fd(front->bind, conn->session, libssh_fd) != SSH_OK) {
        tl_log_peer_debug(address, "ssh accept failed addr=%s error=\"%s\"", address,
                          ssh_get_error(front->bind));
        error = TL_EIO;
        goto fail;
    }
    libssh_fd = -1; /* the session's now */
    ssh_callbacks_init(&conn->server_callbacks);
    conn->server_callbacks.userdata = conn;
    conn->server_callbacks.auth_pubkey_function = on_auth_pubkey;
    conn->server_callbacks.channel_open_request_session_function = tl__ssh_channel_open;
    ssh_set_server_callbacks(conn->session, &conn->server_callbacks);
    ssh_set_message_callback(conn->session, on_other_message, conn);
    ssh_set_auth_methods(conn->session, SSH_AUTH_METHOD_PUBLICKEY);
    ssh_set_blocking(conn->session, 0);
    /*
     * Sends our banner and sets libssh's state machine going; normally SSH_AGAIN.
     * It already reads what the client sent, so garbage can fail it here: that
     * connection is set up like any other and closed (and reported) from the
     * idle handle.
     */
    int kex = ssh_handle_key_exchange(conn->session);
    if (kex == SSH_ERROR) {
        char why[128];
        tl__ssh_printable(why, sizeof why, ssh_get_error(conn->session));
        tl_log_peer_info(address, "ssh handshake failed addr=%s error=\"%s\"", address, why);
        conn->close_reason = "handshake-failed";
        conn->closing = 1;
    } else if (ssh_event_add_session(conn->event, conn->session) != SSH_OK) {
        tl_log_peer_warn(address, "ssh session not watched addr=%s", address);
        goto fail;
    }
    conn->kex_done = kex == SSH_OK;
    /* The socket stays non-blocking whatever libssh did to the shared file. */
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);

    if ((error = tl__ssh_source_hold(conn)) != 0 ||
        (error = uv_poll_init(front->loop, &conn->poll, fd)) != 0)
        goto fail;
    conn->poll.data = conn;
    uv_timer_init(front->loop, &conn->auth_timer);
    conn->auth_timer.data = conn;
    conn->handles_open = 2;
    uv_timer_start(&conn->auth_timer, on_auth_timeout, front->auth_timeout_ms, 0);
    conn->next = front->conns;
    if (front->conns != NULL)
        front->conns->prev = conn;
    front->conns = conn;
    front->live++;
    front->open++;
    tl_log_peer_debug(address, "ssh connection addr=%s sessions=%u", address, front->live);
    if (conn->closing) {
        tl__ssh_queue_service(conn);
        return;
    }
    conn_watch(conn, 1); /* the banner may still be queued */
    return;

fail:
    if (conn != NULL) {
        tl__ssh_source_release(conn);
        if (conn->event != NULL && conn->session != NULL)
            ssh_event_remove_session(conn->event, conn->session);
        ssh_free(conn->session);
        ssh_event_free(conn->event);
        free(conn);
    }
    if (libssh_fd >= 0)
        close(libssh_fd);
    close(fd);
    tl_listener_dropped(front->listener, error);
}

/* ---- the listener ------------------------------------------------------------------------- */

/* A new connection from the listener (relay/net/listener.c logs accept failures, rate-limited). */
static void on_accept(void *ctx, int fd, const struct sockaddr *peer)
{
    tl_ssh_front_t *front = ctx;
    /* Keystrokes and their echoes are small: no Nagle delay behind a delayed ACK. */
    int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
        tl_log_debug("TCP_NODELAY not set error=%s", strerror(errno));
    char address[TL_ADDR_TEXT_MAX];
    tl_addr_format(peer, 0, address);
    const char *refusal = tl__ssh_admission(front, address); /* relay/net/ssh_limits.c */
    if (refusal != NULL) {
        /* Before any SSH byte: a refused connection costs no key exchange. */
        tl_log_peer_warn(address, "ssh login refused user=- addr=%s key=- reason=%s", address,
                         refusal);
        if (front->on_login != NULL)
            front->on_login(front->ctx, "", address, "", 0, refusal);
        close(fd);
        return;
    }
    conn_start(front, fd, address);
}

/* ---- the front end ------------------------------------------------------------------------ */

static void on_idle(uv_idle_t *idle)
{
    tl_ssh_front_t *front = idle->data;
    /* One pass over what is queued now; whatever queues itself again waits for the next turn. */
    struct conn *last = front->service_tail;
    while (front->service_head != NULL) {
        struct conn *conn = front->service_head;
        unqueue_service(conn);
        conn_service(conn);
        if (conn == last)
            break;
    }
    if (front->service_head == NULL && !front->idle_closed)
        uv_idle_stop(&front->idle);
    front_maybe_done(front);
}

static void front_handle_closed(uv_handle_t *handle)
{
    tl_ssh_front_t *front = handle->data;
    front->open--;
    front_maybe_done(front);
}

static void front_maybe_done(tl_ssh_front_t *front)
{
    if (!front->stopping)
        return;
    if (front->live == 0 && !front->idle_closed) {
        front->idle_closed = 1;
        uv_close((uv_handle_t *)&front->idle, front_handle_closed);
        return;
    }
    if (front->open == 0) {
        ssh_bind_free(front->bind);
        free(front);
    }
}

void tl_ssh_front_set_limits(tl_ssh_front_t *front, const tl_ssh_front_config_t *config)
{
    front->max_sessions = config->max_sessions ? config->max_sessions : TL_SSH_DEFAULT_MAX_SESSIONS;
    front->max_preauth_per_address = config->max_preauth_per_address
                                         ? config->max_preauth_per_address
                                         : TL_SSH_DEFAULT_PREAUTH_PER_ADDRESS;
    front->auth_timeout_ms =
        config->auth_timeout_ms ? config->auth_timeout_ms : TL_SSH_DEFAULT_AUTH_TIMEOUT_MS;
    front->keepalive_ms = config->keepalive_ms ? config->keepalive_ms : TL_SSH_DEFAULT_KEEPALIVE_MS;
    front->idle_timeout_ms =
        config->idle_timeout_ms ? config->idle_timeout_ms : TL_SSH_DEFAULT_IDLE_TIMEOUT_MS;
}

tl_ssh_front_t *tl_ssh_front_start(uv_loop_t *loop, const tl_ssh_front_config_t *config, int *err)
{
    tl_ssh_front_t *front = NULL;
    ssh_key host_key = NULL;
    int rc = TL_EINVAL;
    if (config == NULL || config->listen == NULL || config->host_key_path == NULL ||
        config->dispatch == NULL || config->authorize == NULL)
        goto out;
    rc = tl__ssh_load_host_key(config->host_key_path, &host_key);
    if (rc != 0) {
        tl_log_error("ssh host key unusable path=%s reason=%s", config->host_key_path,
                     tl_strerror(rc));
        goto out;
    }
    rc = TL_ENOMEM;
    front = calloc(1, sizeof *front);
    if (front == NULL)
        goto out;
    front->bind = ssh_bind_new();
    if (front->bind == NULL)
        goto out;
    bool no = false;
    ssh_bind_options_set(front->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no);
    if (ssh_bind_options_set(front->bind, SSH_BIND_OPTIONS_IMPORT_KEY, host_key) != SSH_OK) {
        rc = TL_EKEY;
        goto out;
    }
    host_key = NULL; /* the bind's now */
    front->loop = loop;
    front->dispatch = config->dispatch;
    front->authorize = config->authorize;
    front->on_login = config->on_login;
    front->on_login_ok = config->on_login_ok;
    front->ctx = config->ctx;
    tl_ssh_front_set_limits(front, config);
    tl_listener_config_t listen = {
        .address = config->listen, .name = "ssh", .on_accept = on_accept, .ctx = front};
    front->listener = tl_listener_start(loop, &listen, &rc);
    if (front->listener == NULL)
        goto out;
    uv_idle_init(loop, &front->idle);
    front->idle.data = front;
    front->open = 1;
    rc = 0;

out:
    if (rc != 0) {
        if (front != NULL) {
            ssh_bind_free(front->bind);
            free(front);
            front = NULL;
        }
        ssh_key_free(host_key);
    }
    if (err != NULL)
        *err = rc;
    return front;
}

void tl_ssh_front_stop(tl_ssh_front_t *front)
{
    if (front == NULL || front->stopping)
        return;
    front->stopping = 1;
    tl_listener_stop(front->listener);
    front->listener = NULL;
    /* Not torn down here: this may run inside a libssh callback of one of them. */
    for (struct conn *conn = front->conns; conn != NULL; conn = conn->next) {
        if (!conn->torn_down) {
            conn->closing = 1;
            tl__ssh_queue_service(conn);
        }
    }
    front_maybe_done(front);
}

void tl_ssh_front_login_recorded(tl_ssh_front_t *front, uint64_t login_id, int status)
{
    for (struct conn *conn = front->conns; conn != NULL; conn = conn->next) {
        if (conn->login_id != login_id || !conn->login_held)
            continue;
        conn->login_held = 0;
        if (status != 0) {
            conn->login_refused = 1;
            tl_log_warn("ssh login not recorded in the audit log, its commands are refused "
                        "user=%s addr=%s reason=%s",
                        conn->technician.name, conn->address, tl_strerror(status));
        }
        tl__ssh_queue_service(conn);
        return;
    }
}

void tl_ssh_front_recheck(tl_ssh_front_t *front,
                          int (*check)(void *data, const tl_technician_t *technician),
                          const char *(*reason)(int answer), void *data)
{
    for (struct conn *conn = front->conns; conn != NULL; conn = conn->next) {
        if (!conn->authenticated || conn->closing)
            continue;
        int answer = check(data, &conn->technician);
        if (answer != 0) {
            char message[128];
            snprintf(message, sizeof message, "closed: %s", reason(answer));
            close_live(conn, "account-changed", message);
        }
    }
}

uint32_t tl_ssh_front_sessions(const tl_ssh_front_t *front)
{
    return front->live;
}
