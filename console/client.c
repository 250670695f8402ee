#include "console/client.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/text.h"

#include <errno.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h> /* ssh_send_keepalive, which clients may send too */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <time.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* The socket is read only while the queued output is under these. */
#define STDOUT_HIGH_WATER (256u * 1024u)
#define STDERR_HIGH_WATER (64u * 1024u)
/* Never more than this queued per stream: the relay would have to ignore the SSH window. */
#define QUEUE_HARD_CAP (4u * 1024u * 1024u)
/* Local input is read this much at a time, and the next piece only once this one is sent. */
#define INPUT_PIECE (32u * 1024u)
/*
 * Bytes written per poll() wake-up: PIPE_BUF to pipes, terminals and
 * sockets, so a write after POLLOUT does not block on a blocking descriptor;
 * more to regular files, which do not make a writer wait.
 */
#define WRITE_PIECE_STREAM 4096u
#define WRITE_PIECE_FILE (256u * 1024u)
/* Dead-peer detection by the kernel while nothing else is said: ~60 s. */
#define KEEPALIVE_IDLE_S 30
#define KEEPALIVE_INTERVAL_S 10
#define KEEPALIVE_COUNT 3
/* With escaping, channel data is escaped this much at a time. */
#define ESCAPE_PIECE (64u * 1024u)
/* libssh calls per wake-up of the socket (4 KiB each). */
#define DOPOLL_BATCH 64

/* One exec channel while it runs. */
struct run {
    tl_client_t *client;
    ssh_channel channel;
    struct ssh_channel_callbacks_struct callbacks; /* libssh keeps a pointer */
    const tl_exec_io_t *io;
    tl_buf_t *out[2];          /* stdout, stderr: what waits to be written */
    tl_text_stream_t shown[2]; /* with io->escape: what each stream holds back (a split UTF-8) */
    tl_buf_t *escaped;         /* with io->escape: one piece, escaped */
    size_t write_piece[2];
    uint8_t *input;
    size_t input_start, input_end;
    int input_eof;
    int eof_sent;
    int remote_closed;
    int stop; /* a code that ends the pump: a hook's, or TL_EFULL */
    int exit_status;
    char exit_signal[32];
};

struct tl_client {
    ssh_session session;
    ssh_event event;
    char host[256];
    unsigned port;
    char user[128];
    char address[300];
    char host_key[TL_FINGERPRINT_LEN];
    char host_key_line[TL_CLIENT_HOST_KEY_LINE_MAX]; /* "TYPE BASE64" */
    char key_fingerprint[TL_FINGERPRINT_LEN];
    char error[768];
    int connected;
    unsigned keepalive_ms;             /* 0: none */
    struct ssh_counter_struct counter; /* bytes through the socket, libssh counting */
    struct run *run;
};

/* Keepalives that may go unanswered before the relay counts as gone, as ssh's
 * ServerAliveCountMax. */
#define KEEPALIVE_MISSES 3

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void set_error(tl_client_t *client, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(tl_client_t *client, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    tl_format_v(client->error, sizeof client->error, fmt, args);
    va_end(args);
}

/* libssh's own words, made printable and bounded. */
static const char *ssh_reason(tl_client_t *client)
{
    static char text[256];
    const char *error = client->session != NULL ? ssh_get_error(client->session) : NULL;
    size_t i = 0;
    for (; error != NULL && error[i] != '\0' && i + 1 < sizeof text; i++) {
        unsigned char c = (unsigned char)error[i];
        text[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    text[i] = '\0';
    return i > 0 ? text : "no reason given";
}

/*
 * Bytes libssh holds for the socket. (ssh_get_poll_flags() is no guide: libssh asks for
 * POLLOUT after every write it makes, whether anything is left or not.)
 */
static int write_pending(tl_client_t *client)
{
    return (ssh_get_status(client->session) & SSH_WRITE_PENDING) != 0;
}

static int session_broken(tl_client_t *client)
{
    return (ssh_get_status(client->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
           !ssh_is_connected(client->session);
}

/* "SHA256:" and the unpadded base64 of the key's SHA-256, as ssh-keygen -l prints it. */
static int fingerprint_of(ssh_key key, char out[TL_FINGERPRINT_LEN])
{
    unsigned char *hash = NULL;
    size_t hash_len = 0;
    out[0] = '\0';
    int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == 0
                 ? tl_fingerprint_of_sha256(hash, hash_len, out)
                 : TL_EKEY;
    ssh_clean_pubkey_hash(&hash);
    return rc == 0 ? 0 : TL_EKEY;
}

tl_client_t *tl_client_new(const char *host, unsigned port, const char *user)
{
    tl_client_t *client = calloc(1, sizeof *client);
    if (client == NULL)
        return NULL;
    snprintf(client->host, sizeof client->host, "%s", host);
    snprintf(client->user, sizeof client->user, "%s", user);
    client->port = port;
    if (strchr(host, ':') != NULL)
        snprintf(client->address, sizeof client->address, "[%s]:%u", host, port);
    else
        snprintf(client->address, sizeof client->address, "%s:%u", host, port);
    return client;
}

int tl_client_connect(tl_client_t *client)
{
    long timeout = TL_CLIENT_TIMEOUT_S;
    int port = (int)client->port;
    int verbosity = SSH_LOG_NOLOG;
    int nodelay = 1;             /* keystrokes go out at once, not behind Nagle */
    bool process_config = false; /* ~/.ssh/config is for ssh; our settings are our own */
    client->session = ssh_new();
    client->event = ssh_event_new();
    if (client->session == NULL || client->event == NULL) {
        set_error(client, "out of memory");
        return TL_ENOMEM;
    }
    ssh_set_counters(client->session, &client->counter, NULL);
    if (ssh_options_set(client->session, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) != SSH_OK ||
        ssh_options_set(client->session, SSH_OPTIONS_PROCESS_CONFIG, &process_config) != SSH_OK ||
        ssh_options_set(client->session, SSH_OPTIONS_HOST, client->host) != SSH_OK ||
        ssh_options_set(client->session, SSH_OPTIONS_PORT, &port) != SSH_OK ||
        ssh_options_set(client->session, SSH_OPTIONS_USER, client->user) != SSH_OK ||
        ssh_options_set(client->session, SSH_OPTIONS_TIMEOUT, &timeout) != SSH_OK ||
        ssh_options_set(client->session, SSH_OPTIONS_NODELAY, &nodelay) != SSH_OK) {
        set_error(client, "bad connection settings for %s: %s", client->address,
                  ssh_reason(client));
        return TL_EINVAL;
    }
    if (ssh_connect(client->session) != SSH_OK) {
        set_error(client, "cannot connect to the relay at %s: %s", client->address,
                  ssh_reason(client));
        return TL_ECLOSED;
    }
    client->connected = 1;

    int fd = ssh_get_fd(client->session);
    int on = 1, idle = KEEPALIVE_IDLE_S, interval = KEEPALIVE_INTERVAL_S, count = KEEPALIVE_COUNT;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    }

    ssh_key server_key = NULL;
    int rc = 0;
    if (ssh_get_server_publickey(client->session, &server_key) != SSH_OK ||
        fingerprint_of(server_key, client->host_key) != 0) {
        set_error(client, "the relay at %s offered no usable host key: %s", client->address,
                  ssh_reason(client));
        rc = TL_EKEY;
    } else {
        char *base64 = NULL;
        const char *type = ssh_key_type_to_char(ssh_key_type(server_key));
        if (type != NULL && ssh_pki_export_pubkey_base64(server_key, &base64) == SSH_OK &&
            (size_t)snprintf(client->host_key_line, sizeof client->host_key_line, "%s %s", type,
                             base64) >= sizeof client->host_key_line)
            client->host_key_line[0] = '\0';
        ssh_string_free_char(base64);
    }
    ssh_key_free(server_key);
    return rc;
}

const char *tl_client_host_key(const tl_client_t *client)
{
    return client->host_key;
}

const char *tl_client_host_key_line(const tl_client_t *client)
{
    return client->host_key_line;
}

const char *tl_client_key_fingerprint(const tl_client_t *client)
{
    return client->key_fingerprint;
}

const char *tl_client_error(const tl_client_t *client)
{
    return client != NULL && client->error[0] != '\0' ? client->error : "unknown error";
}

/* ---- authentication ------------------------------------------------------------------- */

struct passphrase_ask {
    const char *path;
    int may_prompt;
    int asked;
};

/* Reads a line from the terminal on stdin without echo; the prompt goes to stderr. */
static int read_secret(const char *prompt, char *buf, size_t len)
{
    struct termios saved, quiet;
    int rc = -1;
    if (len == 0 || tcgetattr(STDIN_FILENO, &saved) != 0)
        return -1;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
        return -1;
    ssize_t ignored = write(STDERR_FILENO, prompt, strlen(prompt));
    (void)ignored;
    size_t used = 0;
    for (;;) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            break; /* a signal: give up; main reports it */
        if (n <= 0)
            break;
        if (c == '\n' || c == '\r') {
            rc = 0;
            break;
        }
        if (used + 1 < len)
            buf[used++] = c;
    }
    buf[used] = '\0';
    while (tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) != 0 && errno == EINTR)
        ;
    ignored = write(STDERR_FILENO, "\n", 1);
    if (rc != 0)
        OPENSSL_cleanse(buf, len);
    return rc;
}

static int ask_passphrase(const char *prompt, char *buf, size_t len, int echo, int verify,
                          void *userdata)
{
    struct passphrase_ask *ask = userdata;
    ask->asked = 1;
    if (!ask->may_prompt)
        return -1;
    char text[512];
    snprintf(text, sizeof text, "Passphrase for %.400s: ", ask->path);
    return read_secret(text, buf, len);
}

int tl_client_authenticate(tl_client_t *client, const char *identity_path, int may_prompt)
{
    struct stat st;
    if (stat(identity_path, &st) != 0 || access(identity_path, R_OK) != 0) {
        int rc = -errno;
        set_error(client,
                  "cannot read the identity %s: %s (choose one with --identity, "
                  "TIERLINE_IDENTITY or tierline setup --identity)",
                  identity_path, tl_strerror(rc));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        set_error(client, "the identity %s is not a regular file", identity_path);
        return TL_EKEY;
    }
    struct passphrase_ask ask = {.path = identity_path, .may_prompt = may_prompt};
    ssh_key key = NULL;
    if (ssh_pki_import_privkey_file(identity_path, NULL, ask_passphrase, &ask, &key) != SSH_OK) {
        if (ask.asked && !may_prompt)
            set_error(client,
                      "the identity %s is protected by a passphrase and there is no terminal to "
                      "ask for it",
                      identity_path);
        else if (ask.asked)
            set_error(client, "cannot unlock the identity %s (wrong passphrase?)", identity_path);
        else
            set_error(client,
                      "%s is not a private key the console can use (an OpenSSH private key, "
                      "e.g. from ssh-keygen -t ed25519)",
                      identity_path);
        ssh_key_free(key);
        return TL_EKEY;
    }
    ssh_key public_key = NULL;
    if (ssh_pki_export_privkey_to_pubkey(key, &public_key) != SSH_OK ||
        fingerprint_of(public_key, client->key_fingerprint) != 0)
        snprintf(client->key_fingerprint, sizeof client->key_fingerprint, "(unknown)");
    ssh_key_free(public_key);

    ssh_set_blocking(client->session, 1);
    int auth = ssh_userauth_publickey(client->session, NULL, key);
    ssh_key_free(key);
    switch (auth) {
    case SSH_AUTH_SUCCESS:
        return 0;
    case SSH_AUTH_DENIED:
    case SSH_AUTH_PARTIAL:
        set_error(client,
                  "the relay at %s refused user '%s' with the key %s (%s): the account does "
                  "not exist, is disabled, or has another key (an admin registers keys with "
                  "tierline-relay user add)",
                  client->address, client->user, client->key_fingerprint, identity_path);
        return TL_EDENIED;
    default:
        set_error(client, "authentication with the relay at %s failed: %s", client->address,
                  ssh_reason(client));
        return TL_ECLOSED;
    }
}

/* ---- queues ------------------------------------------------------------------------------ */

/* ---- channel callbacks (libssh): record and queue only ------------------------------------ */

static int on_channel_data(ssh_session session, ssh_channel channel, void *data, uint32_t len,
                           int is_stderr, void *userdata)
{
    struct run *run = userdata;
    const tl_exec_io_t *io = run->io;
    int stream = is_stderr ? 1 : 0;
    if (run->stop != 0 || len == 0)
        return (int)len; /* stopping: whatever still comes is dropped */
    if (stream == 0 && io->on_stdout != NULL) {
        int rc = io->on_stdout(io->data, data, len);
        if (rc != 0) {
            run->stop = rc;
            return (int)len;
        }
    }
    int fd = stream == 0 ? io->out_fd : io->err_fd;
    if (fd < 0)
        return (int)len;
    int rc;
    if (io->escape) {
        rc = 0;
        for (uint32_t at = 0; at < len && rc == 0; at += ESCAPE_PIECE) {
            uint32_t piece = len - at < ESCAPE_PIECE ? len - at : ESCAPE_PIECE;
            tl_buf_reset(run->escaped);
            rc = tl_text_stream_put(&run->shown[stream], run->escaped, (uint8_t *)data + at, piece);
            if (rc == 0)
                rc = tl_buf_put(run->out[stream], tl_buf_data(run->escaped),
                                tl_buf_len(run->escaped));
        }
    } else {
        rc = tl_buf_put(run->out[stream], data, len);
    }
    if (rc != 0) {
        set_error(run->client, "the relay sent more %s than the console can hold (%s)",
                  stream == 0 ? "output" : "error output", tl_strerror(rc));
        run->stop = rc;
    }
    return (int)len;
}

static void on_channel_close(ssh_session session, ssh_channel channel, void *userdata)
{
    struct run *run = userdata;
    run->remote_closed = 1;
    /* The end: a sequence still held back is shown as the bytes it is. */
    for (int stream = 0; run->io->escape && stream < 2 && run->stop == 0; stream++) {
        int fd = stream == 0 ? run->io->out_fd : run->io->err_fd;
        tl_buf_reset(run->escaped);
        if (fd >= 0 && tl_text_stream_finish(&run->shown[stream], run->escaped) == 0)
            tl_buf_put(run->out[stream], tl_buf_data(run->escaped), tl_buf_len(run->escaped));
    }
}

static void on_exit_status(ssh_session session, ssh_channel channel, int exit_status,
                           void *userdata)
{
    struct run *run = userdata;
    run->exit_status = exit_status;
}

static void on_exit_signal(ssh_session session, ssh_channel channel, const char *signal, int core,
                           const char *errmsg, const char *lang, void *userdata)
{
    struct run *run = userdata;
    size_t i = 0;
    for (; signal != NULL && signal[i] != '\0' && i + 1 < sizeof run->exit_signal; i++) {
        char c = signal[i];
        run->exit_signal[i] = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '?';
    }
    run->exit_signal[i] = '\0';
}

/* ---- the pump ---------------------------------------------------------------------------- */

static size_t write_piece_for(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? WRITE_PIECE_FILE
                                                                 : WRITE_PIECE_STREAM;
}

/* Hands buffered input to libssh while the relay's window is open. */
static int push_input(struct run *run)
{
    tl_client_t *client = run->client;
    while (run->input_start < run->input_end && !run->remote_closed) {
        if (write_pending(client))
            return 0; /* POLLOUT on the socket brings us back */
        uint32_t window = ssh_channel_window_size(run->channel);
        if (window == 0)
            return 0; /* the relay's WINDOW_ADJUST arrives as readable */
        size_t len = run->input_end - run->input_start;
        if (len > window)
            len = window;
        int n = ssh_channel_write(run->channel, run->input + run->input_start, (uint32_t)len);
        if (n == SSH_ERROR) {
            set_error(client, "sending input to the relay failed: %s", ssh_reason(client));
            return TL_ECLOSED;
        }
        if (n <= 0)
            return 0;
        run->input_start += (size_t)n;
    }
    if (run->input_start == run->input_end)
        run->input_start = run->input_end = 0;
    if (run->input_eof && run->input_end == 0 && !run->eof_sent && !run->remote_closed) {
        ssh_channel_send_eof(run->channel);
        run->eof_sent = 1;
    }
    return 0;
}

static void read_input(struct run *run)
{
    ssize_t n = read(run->io->in_fd, run->input, INPUT_PIECE);
    if (n > 0) {
        run->input_start = 0;
        run->input_end = (size_t)n;
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
        /* The end of input, or input that cannot be read (a hung-up terminal): both an EOF. */
        run->input_eof = 1;
    }
}

static int flush_output(struct run *run, int stream)
{
    const tl_exec_io_t *io = run->io;
    tl_buf_t *queued = run->out[stream];
    int fd = stream == 0 ? io->out_fd : io->err_fd;
    size_t len = tl_buf_len(queued);
    if (len > run->write_piece[stream])
        len = run->write_piece[stream];
    if (stream == 1 && io->before_stderr != NULL)
        io->before_stderr(io->data);
    ssize_t n = write(fd, tl_buf_data(queued), len);
    if (n > 0) {
        tl_buf_consume(queued, (size_t)n);
        return 0;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    int rc = n < 0 ? -errno : TL_EIO;
    if (stream == 1) {
        tl_buf_reset(queued); /* nowhere to say more */
        return 0;
    }
    set_error(run->client, "writing the output failed: %s", tl_strerror(rc));
    return rc;
}

/*
 * Keepalives while a command runs: with nothing from the relay for a while, a keepalive asks for
 * an answer; with nothing for KEEPALIVE_MISSES of them, the relay is gone (a dead network, a
 * relay that stopped) and the command ends with TL_ETIMEOUT instead of waiting for TCP. *heard is
 * when the relay last sent a byte (libssh's count of them moved: *seen), or when the console last
 * left its socket unread on purpose.
 */
static int keep_alive(struct run *run, int64_t *heard, uint64_t *seen, int64_t *asked)
{
    tl_client_t *client = run->client;
    int64_t now = monotonic_ms(), every = client->keepalive_ms;
    /* Whoever read them (our poll, or libssh inside another call), bytes came. */
    if (client->counter.in_bytes != *seen) {
        *seen = client->counter.in_bytes;
        *heard = now;
    }
    if (every == 0 || run->remote_closed)
        return 0;
    if (now - *heard >= every * KEEPALIVE_MISSES) {
        set_error(client, "the relay at %s stopped answering: nothing for %lld s (keepalive %u s)",
                  client->address, (long long)(now - *heard) / 1000, client->keepalive_ms / 1000);
        return TL_ETIMEOUT;
    }
    if (now - *heard >= every && now - *asked >= every) {
        *asked = now;
        /* libssh sends a keepalive only once the answer to the one before was taken in (the
         * first call may just take it): the second call sends if the first did not. */
        if (ssh_send_keepalive(client->session) == SSH_ERROR ||
            ssh_send_keepalive(client->session) == SSH_ERROR) {
            set_error(client, "the connection to the relay at %s was lost: %s", client->address,
                      ssh_reason(client));
            return TL_ECLOSED;
        }
    }
    return 0;
}

static int pump(struct run *run)
{
    tl_client_t *client = run->client;
    const tl_exec_io_t *io = run->io;
    int ssh_fd = ssh_get_fd(client->session);
    int64_t heard = monotonic_ms(), asked = heard;
    uint64_t seen = client->counter.in_bytes;
    for (;;) {
        if (run->stop != 0)
            return run->stop;
        if (!run->remote_closed && session_broken(client)) {
            set_error(client, "the connection to the relay at %s was lost: %s", client->address,
                      ssh_reason(client));
            return TL_ECLOSED;
        }
        if (run->remote_closed && tl_buf_len(run->out[0]) == 0 && tl_buf_len(run->out[1]) == 0)
            return 0;
        int rc = push_input(run);
        if (rc != 0)
            return rc;

        struct pollfd fds[5];
        int n = 0, ssh_at = -1, in_at = -1, out_at = -1, err_at = -1, wake_at = -1;
        /*
         * Any call into libssh's event loop reads the socket too, and every byte read
         * makes libssh grant the relay more window: above a high-water mark the socket
         * is left alone altogether (our own writes to the relay wait as well) until the
         * local outputs have taken the queued bytes.
         */
        if (!run->remote_closed && tl_buf_len(run->out[0]) < STDOUT_HIGH_WATER &&
            tl_buf_len(run->out[1]) < STDERR_HIGH_WATER) {
            short events = POLLIN | (write_pending(client) ? POLLOUT : 0);
            fds[n] = (struct pollfd){.fd = ssh_fd, .events = events};
            ssh_at = n++;
        }
        if (io->in_fd >= 0 && !run->input_eof && run->input_end == 0 && !run->remote_closed) {
            fds[n] = (struct pollfd){.fd = io->in_fd, .events = POLLIN};
            in_at = n++;
        }
        if (tl_buf_len(run->out[0]) > 0) {
            fds[n] = (struct pollfd){.fd = io->out_fd, .events = POLLOUT};
            out_at = n++;
        }
        if (tl_buf_len(run->out[1]) > 0) {
            fds[n] = (struct pollfd){.fd = io->err_fd, .events = POLLOUT};
            err_at = n++;
        }
        if (io->wake_fd >= 0 && io->on_wake != NULL) {
            fds[n] = (struct pollfd){.fd = io->wake_fd, .events = POLLIN};
            wake_at = n++;
        }
        if (ssh_at < 0)
            heard = monotonic_ms(); /* not listening: silence is ours, not the relay's */
        int wait = client->keepalive_ms > 0 ? (int)client->keepalive_ms : -1;
        int ready = poll(fds, (nfds_t)n, wait);
        if (ready < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            rc = -errno;
            set_error(client, "poll failed: %s", tl_strerror(rc));
            return rc;
        }
        if ((rc = keep_alive(run, &heard, &seen, &asked)) != 0)
            return rc;
        if (ready == 0)
            continue;
        if (wake_at >= 0 && fds[wake_at].revents != 0 &&
            (rc = io->on_wake(io->wake_data, client)) != 0)
            return rc;
        if (out_at >= 0 && fds[out_at].revents != 0 && (rc = flush_output(run, 0)) != 0)
            return rc;
        if (err_at >= 0 && fds[err_at].revents != 0)
            flush_output(run, 1);
        if (in_at >= 0 && fds[in_at].revents != 0)
            read_input(run);
        if (ssh_at >= 0 && fds[ssh_at].revents != 0) {
            /* libssh reads 4 KiB per call: take what is there, up to the high-water marks. */
            for (int i = 0; i < DOPOLL_BATCH && run->stop == 0; i++) {
                if (ssh_event_dopoll(client->event, 0) != SSH_OK || run->remote_closed ||
                    tl_buf_len(run->out[0]) >= STDOUT_HIGH_WATER ||
                    tl_buf_len(run->out[1]) >= STDERR_HIGH_WATER)
                    break;
            }
        }
    }
}

void tl_client_set_keepalive(tl_client_t *client, unsigned seconds)
{
    client->keepalive_ms = seconds * 1000u;
}

int tl_client_exec(tl_client_t *client, const char *command, const tl_exec_io_t *io,
                   tl_exec_result_t *result)
{
    int rc = 0, in_event = 0;
    result->exit_status = -1;
    result->exit_signal[0] = '\0';
    if (client->session == NULL || !client->connected || client->run != NULL) {
        set_error(client, "not connected");
        return TL_EINVAL;
    }
    struct run *run = calloc(1, sizeof *run);
    if (run == NULL || (io->in_fd >= 0 && (run->input = malloc(INPUT_PIECE)) == NULL) ||
        (run->out[0] = tl_buf_new(QUEUE_HARD_CAP)) == NULL ||
        (run->out[1] = tl_buf_new(QUEUE_HARD_CAP)) == NULL) {
        if (run != NULL) {
            tl_buf_free(run->out[0]);
            free(run->input);
        }
        free(run);
        set_error(client, "out of memory");
        return TL_ENOMEM;
    }
    run->client = client;
    run->io = io;
    run->exit_status = -1;
    run->shown[0].mode = run->shown[1].mode = TL_TEXT_BODY;
    /* One piece of channel data escaped: at most six bytes shown per byte received. */
    if (io->escape && (run->escaped = tl_buf_new(6u * ESCAPE_PIECE + 64u)) == NULL) {
        tl_buf_free(run->out[0]);
        tl_buf_free(run->out[1]);
        free(run->input);
        free(run);
        set_error(client, "out of memory");
        return TL_ENOMEM;
    }
    run->write_piece[0] = write_piece_for(io->out_fd);
    run->write_piece[1] = write_piece_for(io->err_fd);
    client->run = run;

    ssh_set_blocking(client->session, 1);
    run->channel = ssh_channel_new(client->session);
    if (run->channel == NULL) {
        set_error(client, "out of memory");
        rc = TL_ENOMEM;
        goto out;
    }
    ssh_callbacks_init(&run->callbacks);
    run->callbacks.userdata = run;
    run->callbacks.channel_data_function = on_channel_data;
    run->callbacks.channel_close_function = on_channel_close;
    run->callbacks.channel_exit_status_function = on_exit_status;
    run->callbacks.channel_exit_signal_function = on_exit_signal;
    ssh_set_channel_callbacks(run->channel, &run->callbacks);
    if (ssh_channel_open_session(run->channel) != SSH_OK) {
        set_error(client, "the relay at %s refused a session: %s", client->address,
                  ssh_reason(client));
        rc = TL_ECLOSED;
        goto out;
    }
    if (io->pty_term != NULL &&
        ssh_channel_request_pty_size(run->channel, io->pty_term, io->pty_cols, io->pty_rows) !=
            SSH_OK) {
        set_error(client, "the relay at %s refused a terminal: %s", client->address,
                  ssh_reason(client));
        rc = TL_ECLOSED;
        goto out;
    }
    if (ssh_channel_request_exec(run->channel, command) != SSH_OK) {
        set_error(client, "the relay at %s refused the command: %s", client->address,
                  ssh_reason(client));
        rc = TL_ECLOSED;
        goto out;
    }
    ssh_set_blocking(client->session, 0);
    if (ssh_event_add_session(client->event, client->session) != SSH_OK) {
        set_error(client, "out of memory");
        rc = TL_ENOMEM;
        goto out;
    }
    in_event = 1;
    if (io->in_fd < 0) {
        run->input_eof = 1;
        push_input(run); /* sends the EOF */
    }
    rc = pump(run);

out:
    if (in_event)
        ssh_event_remove_session(client->event, client->session);
    result->exit_status = run->exit_status;
    snprintf(result->exit_signal, sizeof result->exit_signal, "%s", run->exit_signal);
    if (run->channel != NULL) {
        ssh_remove_channel_callbacks(run->channel, &run->callbacks);
        ssh_set_blocking(client->session, 1);
        if (!session_broken(client))
            ssh_channel_close(run->channel); /* EOF and CLOSE, flushed within the timeout */
        ssh_channel_free(run->channel);
    }
    client->run = NULL;
    tl_buf_free(run->out[0]);
    tl_buf_free(run->out[1]);
    tl_buf_free(run->escaped);
    free(run->input);
    free(run);
    return rc;
}

int tl_client_resize(tl_client_t *client, int cols, int rows)
{
    if (client->run == NULL || client->run->channel == NULL)
        return TL_EINVAL;
    return ssh_channel_change_pty_size(client->run->channel, cols, rows) == SSH_OK ? 0 : TL_ECLOSED;
}

void tl_client_free(tl_client_t *client)
{
    if (client == NULL)
        return;
    if (client->session != NULL) {
        if (client->connected && !session_broken(client)) {
            ssh_set_blocking(client->session, 1);
            ssh_disconnect(client->session);
        }
        ssh_free(client->session);
    }
    if (client->event != NULL)
        ssh_event_free(client->event);
    free(client);
}
