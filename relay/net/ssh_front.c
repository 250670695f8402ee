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
 * here (per command, capped) and handed to libssh only while the client's
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
 * consumes nothing, and conn_service() moves it out and offers it to
 * on_input. libssh grows the client's window only as that buffer is read,
 * so a command that stops taking input stops its client within two windows
 * (about 1.2 MB each in libssh 0.10: what libssh holds, and what was moved
 * out of it). With a PTY, output "\n" becomes "\r\n" (a terminal's ONLCR)
 * unless the command asked for raw output.
 *
 * libssh gets a dup() of the socket and the uv_poll_t watches the original:
 * libssh closes its descriptor by itself when the client sends DISCONNECT,
 * and the poll must never watch a number the kernel may hand out again.
 */
#include "relay/net/ssh_front.h"
#include "proto/addr.h"
#include "proto/err.h"
#include "proto/keys.h"
#include "proto/log.h"
#include "relay/net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Bytes handed to libssh per connection per wake-up (STYLE.md: ~256 KiB costs no throughput). */
#define SEND_BUDGET (256u * 1024u)
/* Output is queued in chunks of at least this size. */
#define CHUNK_MIN (64u * 1024u)
/* Session channels open at once on one connection (OpenSSH multiplexing opens several). */
#define MAX_CHANNELS 8
/* Refused keys on one connection before it is closed, as sshd's MaxAuthTries. */
#define MAX_AUTH_ATTEMPTS 6
/* Client addresses whose failed logins are remembered. */
#define LIMIT_SLOTS 512
/* Hash buckets for the addresses holding pre-auth connections (at most max_sessions of them). */
#define SOURCE_BUCKETS 256
/* An input buffer larger than this is freed once the command has taken all of it. */
#define INPUT_KEEP (64u * 1024u)
/*
 * libssh keeps data a client sends past its window; more than this held for
 * one channel (two windows and then some) means a client that ignores flow
 * control, and ends its connection.
 */
#define INPUT_HARD_CAP (4u * 1024u * 1024u)
/* Input offered to one command per wake-up, so a fast typist of 10 MiB cannot starve the loop. */
#define INPUT_BUDGET (256u * 1024u)
/* Terminal sizes are clamped to this (docs/protocol.md §7.7 takes 1..1000 columns and rows). */
#define MAX_TERMINAL_SIZE 1000

/* A login the audit log could not record lets nothing run (fail closed). */
static const char LOGIN_NOT_RECORDED[] =
    "refused: your login could not be written to the audit log, so the relay runs nothing for it "
    "(an administrator sees why with `tierline-relay status`)";

static const char USAGE[] = "usage: ssh [-p PORT] NAME@RELAY COMMAND [ARGS...]; the relay has "
                            "no shell of its own: for a shell on a machine use "
                            "`ssh -t NAME@RELAY join T-N` (try: help)";

struct conn;

/* Queued output: bytes [start, end) of data, all on one stream. */
struct chunk {
    struct chunk *next;
    size_t start, end, size;
    int stream;
    uint8_t data[];
};

enum exec_state {
    EXEC_IDLE,      /* channel open, no exec or shell request yet */
    EXEC_PENDING,   /* request accepted; dispatched (or refused) on the next service */
    EXEC_RUNNING,   /* the command owns it */
    EXEC_FINISHING, /* tl_exec_finish(): flushing, then EOF, exit-status, CLOSE */
    EXEC_CLOSING,   /* our CLOSE is sent; waiting for the client's */
};

/* One session channel; the tl_exec_t of relay/net/exec.h. */
struct tl_exec {
    struct conn *conn;
    struct tl_exec *next;
    ssh_channel channel;
    struct ssh_channel_callbacks_struct channel_callbacks; /* libssh keeps a pointer */
    enum exec_state state;
    tl_technician_t technician;
    const tl_exec_callbacks_t *callbacks;
    void *callbacks_data;
    struct chunk *head, *tail, *spare;
    size_t buffered;
    uint64_t bytes_sent;
    int exit_status;
    const char *refusal; /* static text sent on stderr instead of dispatching */
    int argc;
    char *argv[TL_EXEC_MAX_WORDS + 1];
    char *words;       /* storage behind argv */
    tl_exec_pty_t pty; /* pty-req and window-change */
    /*
     * The client's stdin. Bytes stay in libssh's channel buffer until the
     * command can take them, then all of them move into input[] and are
     * offered from there; only once the command has taken all of input[] is
     * libssh's buffer read again. (Reading part of it would be wrong: libssh
     * tops the client's window up on every read, whatever it still holds, so
     * a slow reader would let a fast client grow that buffer without end.)
     * in_libssh is what libssh holds: its data callback always sees the
     * whole buffer, so the count is exact.
     */
    uint8_t *input;
    size_t input_start, input_end, input_size;
    uint32_t in_libssh;
    uint64_t bytes_received;
    unsigned raw : 1;           /* tl_exec_set_raw(): no ONLCR */
    unsigned input_paused : 1;  /* on_input took less than offered; waits for resume */
    unsigned input_resumed : 1; /* tl_exec_resume_input() ran during on_input */
    unsigned eof_received : 1;  /* the client's EOF on stdin */
    unsigned eof_delivered : 1;
    unsigned resize_pending : 1; /* a window-change not yet passed to on_resize */
    unsigned channel_gone : 1;   /* the client closed it, or it failed */
    unsigned dispatched : 1;
    unsigned finished : 1;
    unsigned aborted : 1;
    unsigned above_high_water : 1;
};

/* One technician's TCP connection and its libssh session. */
struct conn {
    tl_ssh_front_t *front;
    struct conn *prev, *next;                 /* front->conns */
    struct conn *service_prev, *service_next; /* front->service_* while queued */
    ssh_session session;
    ssh_event event;
    struct ssh_server_callbacks_struct server_callbacks; /* libssh keeps a pointer */
    uv_poll_t poll;
    uv_timer_t auth_timer;
    int fd; /* ours; libssh has a dup */
    int poll_events;
    int handles_open;
    struct tl_exec *execs;
    unsigned exec_count;
    unsigned auth_attempts;
    /* Failures this connection counted against its address, taken back if it logs in. */
    uint64_t counted_at[MAX_AUTH_ATTEMPTS];
    unsigned counted;
    struct preauth_source *source; /* while not authenticated */
    tl_technician_t technician;
    uint64_t login_id;        /* with on_login_ok: which login the audit outcome is for */
    const char *close_reason; /* a login outcome still to report, if any */
    char address[TL_ADDR_TEXT_MAX];
    char user[65];        /* last user name offered, printable */
    char fingerprint[64]; /* last key offered */
    unsigned queued : 1;
    unsigned kex_done : 1;
    unsigned authenticated : 1;
    unsigned login_held : 1;    /* commands wait until the login is on the record */
    unsigned login_refused : 1; /* ... which failed: every command is refused */
    unsigned outcome_reported : 1;
    unsigned closing : 1;
    unsigned torn_down : 1;
};

/* The last TL_SSH_LOGIN_FAILURES failures from one address: when (uv_now) each happened. */
struct login_limit {
    char address[TL_ADDR_TEXT_MAX];
    uint64_t at[TL_SSH_LOGIN_FAILURES];
    uint8_t used[TL_SSH_LOGIN_FAILURES];
    uint64_t last;
};

/* An address with connections not yet authenticated, and how many. */
struct preauth_source {
    struct preauth_source *next; /* in its hash bucket */
    char address[TL_ADDR_TEXT_MAX];
    unsigned count;
};

struct tl_ssh_front {
    uv_loop_t *loop;
    tl_exec_dispatch_fn dispatch;
    int (*authorize)(void *ctx, const char *user, ssh_key key, tl_technician_t *out);
    void (*on_login)(void *ctx, const char *user, const char *address, const char *fingerprint,
                     int ok, const char *reason);
    void (*on_login_ok)(void *ctx, uint64_t login_id, const tl_technician_t *technician);
    uint64_t next_login_id;
    void *ctx;
    uint32_t max_sessions;
    uint32_t max_preauth_per_address;
    uint32_t auth_timeout_ms;
    ssh_bind bind;
    tl_listener_t *listener;
    uv_idle_t idle;
    struct conn *conns;
    struct conn *service_head, *service_tail;
    uint32_t live; /* connections not yet torn down */
    int open;      /* handles and connections still to be closed before the free */
    unsigned stopping : 1;
    unsigned idle_closed : 1;
    struct login_limit limits[LIMIT_SLOTS];
    struct preauth_source *sources[SOURCE_BUCKETS];
};

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static void conn_service(struct conn *conn);
static void queue_service(struct conn *conn);
static void on_conn_poll(uv_poll_t *handle, int status, int events);
static void on_idle(uv_idle_t *idle);
static void front_maybe_done(tl_ssh_front_t *front);

/* ---- small helpers ------------------------------------------------------------------------ */

/* Network text made safe for logs and the audit log: printable ASCII, bounded. */
static void printable(char *out, size_t size, const char *text)
{
    size_t i = 0;
    for (; text != NULL && text[i] != '\0' && i + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    out[i] = '\0';
}

static void key_fingerprint(ssh_key key, char out[64])
{
    unsigned char *hash = NULL;
    size_t hash_len = 0;
    out[0] = '\0';
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) != 0)
        return;
    char *text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);
    if (text != NULL)
        snprintf(out, 64, "%s", text);
    ssh_string_free_char(text);
    ssh_clean_pubkey_hash(&hash);
}

static int session_gone(const struct conn *conn)
{
    return (ssh_get_status(conn->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
           !ssh_is_connected(conn->session);
}

/* ---- failed logins per address ------------------------------------------------------------ */

static struct login_limit *limit_find(tl_ssh_front_t *front, const char *address)
{
    for (size_t i = 0; i < LIMIT_SLOTS; i++)
        if (front->limits[i].address[0] != '\0' && strcmp(front->limits[i].address, address) == 0)
            return &front->limits[i];
    return NULL;
}

static int limit_blocked(tl_ssh_front_t *front, const char *address)
{
    struct login_limit *entry = limit_find(front, address);
    if (entry == NULL)
        return 0;
    uint64_t now = uv_now(front->loop);
    unsigned recent = 0;
    for (size_t i = 0; i < TL_SSH_LOGIN_FAILURES; i++)
        if (entry->used[i] && now - entry->at[i] < TL_SSH_LOGIN_WINDOW_MS)
            recent++;
    return recent >= TL_SSH_LOGIN_FAILURES;
}

/* Records a failure from address; returns when it happened (uv_now), for limit_forgive(). */
static uint64_t limit_record(tl_ssh_front_t *front, const char *address)
{
    uint64_t now = uv_now(front->loop);
    struct login_limit *entry = limit_find(front, address);
    if (entry == NULL) {
        /* A free or stale slot, else the one that failed longest ago. */
        entry = &front->limits[0];
        for (size_t i = 0; i < LIMIT_SLOTS; i++) {
            struct login_limit *slot = &front->limits[i];
            if (slot->address[0] == '\0' || now - slot->last >= TL_SSH_LOGIN_WINDOW_MS) {
                entry = slot;
                break;
            }
            if (slot->last < entry->last)
                entry = slot;
        }
        memset(entry, 0, sizeof *entry);
        snprintf(entry->address, sizeof entry->address, "%s", address);
    }
    /* A free place, else the oldest failure's. */
    size_t at = 0;
    for (size_t i = 0; i < TL_SSH_LOGIN_FAILURES; i++) {
        if (!entry->used[i]) {
            at = i;
            break;
        }
        if (entry->at[i] < entry->at[at])
            at = i;
    }
    entry->at[at] = now;
    entry->used[at] = 1;
    entry->last = now;
    return now;
}

/* Takes back failures recorded at the given times (a connection that then logged in). */
static void limit_forgive(tl_ssh_front_t *front, const char *address, const uint64_t *times,
                          unsigned count)
{
    struct login_limit *entry = limit_find(front, address);
    for (unsigned k = 0; entry != NULL && k < count; k++) {
        for (size_t i = 0; i < TL_SSH_LOGIN_FAILURES; i++) {
            if (entry->used[i] && entry->at[i] == times[k]) {
                entry->used[i] = 0;
                break;
            }
        }
    }
}

/* ---- connections before authentication, per address --------------------------------------- */

static size_t source_bucket(const char *address)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++)
        hash = (hash ^ *p) * 16777619u;
    return hash % SOURCE_BUCKETS;
}

static struct preauth_source *source_find(tl_ssh_front_t *front, const char *address)
{
    for (struct preauth_source *source = front->sources[source_bucket(address)]; source != NULL;
         source = source->next)
        if (strcmp(source->address, address) == 0)
            return source;
    return NULL;
}

static unsigned source_held(tl_ssh_front_t *front, const char *address)
{
    struct preauth_source *source = source_find(front, address);
    return source != NULL ? source->count : 0;
}

/* Counts conn against its address until it authenticates or ends; TL_ENOMEM if it cannot. */
static int source_hold(struct conn *conn)
{
    tl_ssh_front_t *front = conn->front;
    struct preauth_source *source = source_find(front, conn->address);
    if (source == NULL) {
        source = calloc(1, sizeof *source);
        if (source == NULL)
            return TL_ENOMEM;
        snprintf(source->address, sizeof source->address, "%s", conn->address);
        size_t bucket = source_bucket(conn->address);
        source->next = front->sources[bucket];
        front->sources[bucket] = source;
    }
    source->count++;
    conn->source = source;
    return 0;
}

static void source_release(struct conn *conn)
{
    struct preauth_source *source = conn->source;
    if (source == NULL)
        return;
    conn->source = NULL;
    if (--source->count > 0)
        return;
    tl_ssh_front_t *front = conn->front;
    struct preauth_source **link = &front->sources[source_bucket(source->address)];
    while (*link != source)
        link = &(*link)->next;
    *link = source->next;
    free(source);
}

/* The address holding the most pre-auth connections (the first found among equals). */
static struct preauth_source *source_busiest(tl_ssh_front_t *front)
{
    struct preauth_source *busiest = NULL;
    for (size_t i = 0; i < SOURCE_BUCKETS; i++)
        for (struct preauth_source *source = front->sources[i]; source != NULL;
             source = source->next)
            if (busiest == NULL || source->count > busiest->count)
                busiest = source;
    return busiest;
}

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
        conn->counted_at[conn->counted++] = limit_record(conn->front, conn->address);
    report_login(conn, 0, reason);
}

/* ---- command lines ------------------------------------------------------------------------ */

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

static int is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f;
}

/*
 * Splits an exec request's command line into words, without a shell
 * (docs/technicians.md "Command lines"):
 *   - spaces, tabs and newlines outside quotes separate words;
 *   - '...' keeps everything up to the next single quote literally;
 *   - "..." keeps everything literally except \" and \\, which stand for " and \
 *     (a backslash before any other character is kept with it);
 *   - outside quotes, a backslash makes the next character literal;
 *   - quotes may be joined to other text (a'b c'd is one word) and '' is an
 *     empty word; nothing is expanded ($, *, ~ and the like are ordinary);
 *   - control characters other than tab and newline are refused anywhere;
 *   - at most TL_EXEC_MAX_LINE bytes and TL_EXEC_MAX_WORDS words.
 * words must hold strlen(line) + 1 bytes (the words never take more room than
 * the line). Returns NULL, or a static message saying what is wrong.
 */
static const char *split_line(const char *line, char *words, char **argv, int *argc)
{
    const unsigned char *p = (const unsigned char *)line;
    char *out = words;
    int count = 0;
    *argc = 0;
    argv[0] = NULL;
    if (strlen(line) > TL_EXEC_MAX_LINE)
        return "command line longer than " STRINGIFY(TL_EXEC_MAX_LINE) " bytes";
    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == '\0')
            break;
        if (count == TL_EXEC_MAX_WORDS)
            return "more than " STRINGIFY(TL_EXEC_MAX_WORDS) " words";
        argv[count++] = out;
        while (*p != '\0' && !is_blank(*p)) {
            if (*p == '\'') {
                for (p++; *p != '\'' && *p != '\0'; p++) {
                    if (is_control(*p))
                        return "control character in the command line";
                    *out++ = (char)*p;
                }
                if (*p == '\0')
                    return "unterminated single quote";
                p++;
            } else if (*p == '"') {
                for (p++; *p != '"' && *p != '\0'; p++) {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    if (is_control(*p))
                        return "control character in the command line";
                    *out++ = (char)*p;
                }
                if (*p == '\0')
                    return "unterminated double quote";
                p++;
            } else if (*p == '\\') {
                p++;
                if (*p == '\0')
                    return "backslash at the end of the command line";
                if (is_control(*p))
                    return "control character in the command line";
                *out++ = (char)*p++;
            } else {
                if (is_control(*p))
                    return "control character in the command line";
                *out++ = (char)*p++;
            }
        }
        *out++ = '\0';
    }
    argv[count] = NULL;
    *argc = count;
    return NULL;
}

const char *tl__exec_split_line(const char *line, char *words, char **argv, int *argc)
{
    return split_line(line, words, argv, argc);
}

/* ---- output queue ------------------------------------------------------------------------- */

static int queue_output(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    if (len > TL_EXEC_MAX_BUFFERED - exec->buffered)
        return TL_EFULL;
    struct chunk *tail = exec->tail;
    size_t into_tail = 0;
    if (tail != NULL && tail->stream == stream)
        into_tail = len < tail->size - tail->end ? len : tail->size - tail->end;
    size_t rest = len - into_tail;
    struct chunk *fresh = NULL;
    if (rest > 0) {
        size_t size = rest > CHUNK_MIN ? rest : CHUNK_MIN;
        if (exec->spare != NULL && exec->spare->size >= size) {
            fresh = exec->spare;
            exec->spare = NULL;
        } else {
            fresh = malloc(sizeof *fresh + size);
            if (fresh == NULL)
                return TL_ENOMEM;
            fresh->size = size;
        }
        fresh->next = NULL;
        fresh->start = 0;
        fresh->end = rest;
        fresh->stream = stream;
        memcpy(fresh->data, bytes + into_tail, rest);
    }
    if (into_tail > 0) {
        memcpy(tail->data + tail->end, bytes, into_tail);
        tail->end += into_tail;
    }
    if (fresh != NULL) {
        if (exec->tail != NULL)
            exec->tail->next = fresh;
        else
            exec->head = fresh;
        exec->tail = fresh;
    }
    exec->buffered += len;
    if (exec->buffered >= TL_EXEC_HIGH_WATER)
        exec->above_high_water = 1;
    return 0;
}

/*
 * What a terminal's ONLCR does, for commands that print lines to a client
 * that asked for a PTY: every "\n" goes out as "\r\n". All or nothing, like
 * queue_output: the cap applies to the bytes as sent.
 */
static int queue_output_onlcr(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    size_t newlines = 0;
    for (const uint8_t *p = bytes; (p = memchr(p, '\n', len - (size_t)(p - bytes))) != NULL; p++)
        newlines++;
    if (newlines == 0)
        return queue_output(exec, stream, data, len);
    size_t expanded = len + newlines;
    if (expanded > TL_EXEC_MAX_BUFFERED - exec->buffered)
        return TL_EFULL;
    uint8_t *out = malloc(expanded);
    if (out == NULL)
        return TL_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        if (bytes[i] == '\n')
            out[used++] = '\r';
        out[used++] = bytes[i];
    }
    int rc = queue_output(exec, stream, out, used);
    free(out);
    return rc;
}

static void consume_output(tl_exec_t *exec, size_t len)
{
    struct chunk *head = exec->head;
    head->start += len;
    exec->buffered -= len;
    exec->bytes_sent += len;
    if (head->start < head->end)
        return;
    exec->head = head->next;
    if (exec->head == NULL)
        exec->tail = NULL;
    if (exec->spare == NULL && head->size == CHUNK_MIN)
        exec->spare = head; /* a streaming command reuses it: no malloc per chunk */
    else
        free(head);
}

static void free_output(tl_exec_t *exec)
{
    while (exec->head != NULL) {
        struct chunk *next = exec->head->next;
        free(exec->head);
        exec->head = next;
    }
    exec->tail = NULL;
    free(exec->spare);
    exec->spare = NULL;
    exec->buffered = 0;
}

/* ---- the exec API (relay/net/exec.h) ---------------------------------------------------------- */

const tl_technician_t *tl_exec_technician(const tl_exec_t *exec)
{
    return &exec->technician;
}

int tl_exec_write(tl_exec_t *exec, int stream, const void *data, size_t len)
{
    if (stream != TL_EXEC_STDOUT && stream != TL_EXEC_STDERR)
        return TL_EINVAL;
    if (exec->aborted || exec->channel_gone || exec->conn->closing)
        return TL_ECLOSED;
    if (exec->finished)
        return TL_EINVAL;
    if (len == 0)
        return 0;
    int rc = exec->pty.requested && !exec->raw ? queue_output_onlcr(exec, stream, data, len)
                                               : queue_output(exec, stream, data, len);
    if (rc == 0)
        queue_service(exec->conn);
    return rc;
}

int tl_exec_printf(tl_exec_t *exec, int stream, const char *fmt, ...)
{
    char small[512];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (len < 0)
        return TL_EINVAL;
    if ((size_t)len < sizeof small)
        return tl_exec_write(exec, stream, small, (size_t)len);
    char *big = malloc((size_t)len + 1);
    if (big == NULL)
        return TL_ENOMEM;
    va_start(args, fmt);
    vsnprintf(big, (size_t)len + 1, fmt, args);
    va_end(args);
    int rc = tl_exec_write(exec, stream, big, (size_t)len);
    free(big);
    return rc;
}

size_t tl_exec_buffered(const tl_exec_t *exec)
{
    return exec->buffered;
}

void tl_exec_finish(tl_exec_t *exec, int exit_status)
{
    if (exec->aborted)
        return;
    if (exec->finished) {
        tl_log_warn("ssh exec finished twice user=%s command=%.64s", exec->technician.name,
                    exec->argv[0] ? exec->argv[0] : "-");
        return;
    }
    exec->finished = 1;
    exec->exit_status = exit_status;
    if (exec->state == EXEC_RUNNING)
        exec->state = EXEC_FINISHING;
    queue_service(exec->conn);
}

void tl_exec_resume_input(tl_exec_t *exec)
{
    exec->input_paused = 0;
    exec->input_resumed = 1;
    queue_service(exec->conn);
}

const tl_exec_pty_t *tl_exec_pty(const tl_exec_t *exec)
{
    return &exec->pty;
}

void tl_exec_set_raw(tl_exec_t *exec)
{
    exec->raw = 1;
}

void tl_exec_set_callbacks(tl_exec_t *exec, const tl_exec_callbacks_t *callbacks, void *data)
{
    exec->callbacks = callbacks;
    exec->callbacks_data = data;
}

/* ---- channel callbacks (libssh; record and queue only) ------------------------------------ */

/* 1 while client input must be kept for the command (or until we know whether it reads). */
static int exec_keeps_input(const tl_exec_t *exec)
{
    if (exec->channel_gone || exec->aborted || exec->finished)
        return 0;
    if (exec->state == EXEC_IDLE || exec->state == EXEC_PENDING)
        return 1; /* not dispatched yet: the command may want it */
    return exec->state == EXEC_RUNNING && exec->callbacks != NULL &&
           exec->callbacks->on_input != NULL;
}

/*
 * libssh hands over the whole channel buffer each time data arrives and
 * drops from it what the return value says was consumed; the client's
 * window grows only for consumed bytes. Input for a command is left there
 * (return 0) and taken out from conn_service(), so on_input never runs
 * inside libssh and held input costs at most one window. Input nobody
 * reads (and stderr, which clients do not send) is consumed and dropped.
 */
static int on_channel_data(ssh_session session, ssh_channel channel, void *data, uint32_t len,
                           int is_stderr, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (is_stderr)
        return (int)len;
    if (!exec_keeps_input(exec)) {
        exec->in_libssh = 0;
        return (int)len;
    }
    if (len > INPUT_HARD_CAP) {
        tl_log_warn("ssh client ignored flow control user=%s addr=%s held=%u",
                    exec->technician.name, exec->conn->address, len);
        exec->in_libssh = 0;
        exec->conn->closing = 1;
        queue_service(exec->conn);
        return (int)len;
    }
    exec->in_libssh = len;
    queue_service(exec->conn);
    return 0;
}

static void on_channel_eof(ssh_session session, ssh_channel channel, void *userdata)
{
    tl_exec_t *exec = userdata;
    exec->eof_received = 1;
    queue_service(exec->conn);
}

static void on_channel_close(ssh_session session, ssh_channel channel, void *userdata)
{
    tl_exec_t *exec = userdata;
    exec->channel_gone = 1;
    queue_service(exec->conn);
}

static int on_channel_writable(ssh_session session, ssh_channel channel, uint32_t bytes,
                               void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->head != NULL)
        queue_service(exec->conn);
    return 0;
}

/* A terminal size from the wire (a u32 that libssh passes as int), clamped to 0..1000. */
static unsigned terminal_size(int value)
{
    if (value < 0 || value > (int)MAX_TERMINAL_SIZE)
        return MAX_TERMINAL_SIZE; /* u32 values past INT_MAX arrive negative: huge too */
    return (unsigned)value;
}

/* Only before the exec, once. A size of 0 is what OpenSSH sends when it has no terminal itself. */
static int on_pty_request(ssh_session session, ssh_channel channel, const char *term, int width,
                          int height, int pxwidth, int pxheight, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->state != EXEC_IDLE || exec->pty.requested)
        return -1;
    exec->pty.requested = 1;
    printable(exec->pty.term, sizeof exec->pty.term, term);
    exec->pty.cols = terminal_size(width);
    exec->pty.rows = terminal_size(height);
    return 0;
}

/* Ignored without a PTY and for a size of 0; the command hears of it from conn_service(). */
static int on_window_change(ssh_session session, ssh_channel channel, int width, int height,
                            int pxwidth, int pxheight, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (!exec->pty.requested || width == 0 || height == 0) {
        tl_log_debug("ssh window-change ignored user=%s addr=%s cols=%d rows=%d pty=%d",
                     exec->technician.name, exec->conn->address, width, height,
                     exec->pty.requested);
        return -1;
    }
    exec->pty.cols = terminal_size(width);
    exec->pty.rows = terminal_size(height);
    exec->resize_pending = 1;
    queue_service(exec->conn);
    return 0;
}

static int on_shell_request(ssh_session session, ssh_channel channel, void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->state != EXEC_IDLE)
        return -1;
    /* Interactive sessions come later; the reply must still be success so the usage arrives. */
    exec->refusal = USAGE;
    exec->state = EXEC_PENDING;
    queue_service(exec->conn);
    return 0;
}

static int on_exec_request(ssh_session session, ssh_channel channel, const char *command,
                           void *userdata)
{
    tl_exec_t *exec = userdata;
    if (exec->state != EXEC_IDLE)
        return -1;
    exec->state = EXEC_PENDING;
    queue_service(exec->conn);
    size_t len = strlen(command);
    if (len > TL_EXEC_MAX_LINE) {
        exec->refusal = "command line longer than " STRINGIFY(TL_EXEC_MAX_LINE) " bytes";
        return 0;
    }
    exec->words = malloc(len + 1);
    if (exec->words == NULL) {
        exec->refusal = "out of memory";
        return 0;
    }
    exec->refusal = split_line(command, exec->words, exec->argv, &exec->argc);
    if (exec->refusal == NULL && exec->argc == 0)
        exec->refusal = USAGE;
    return 0;
}

static int on_env_request(ssh_session session, ssh_channel channel, const char *name,
                          const char *value, void *userdata)
{
    return -1; /* ignored: commands take no environment */
}

static int on_subsystem_request(ssh_session session, ssh_channel channel, const char *subsystem,
                                void *userdata)
{
    tl_exec_t *exec = userdata;
    char name[33];
    printable(name, sizeof name, subsystem);
    tl_log_info("ssh request refused user=%s addr=%s request=subsystem name=%s",
                exec->technician.name, exec->conn->address, name);
    return -1;
}

/* ---- server callbacks (libssh) ------------------------------------------------------------ */

static ssh_channel on_channel_open(ssh_session session, void *userdata)
{
    struct conn *conn = userdata;
    if (!conn->authenticated || conn->closing)
        return NULL;
    if (conn->exec_count >= MAX_CHANNELS) {
        tl_log_warn("ssh channel refused user=%s addr=%s reason=too-many-channels",
                    conn->technician.name, conn->address);
        return NULL;
    }
    tl_exec_t *exec = calloc(1, sizeof *exec);
    if (exec == NULL)
        return NULL;
    exec->channel = ssh_channel_new(session);
    if (exec->channel == NULL) {
        free(exec);
        return NULL;
    }
    exec->conn = conn;
    exec->technician = conn->technician;
    struct ssh_channel_callbacks_struct *cb = &exec->channel_callbacks;
    ssh_callbacks_init(cb);
    cb->userdata = exec;
    cb->channel_data_function = on_channel_data;
    cb->channel_close_function = on_channel_close;
    cb->channel_eof_function = on_channel_eof;
    cb->channel_write_wontblock_function = on_channel_writable;
    cb->channel_pty_request_function = on_pty_request;
    cb->channel_pty_window_change_function = on_window_change;
    cb->channel_shell_request_function = on_shell_request;
    cb->channel_exec_request_function = on_exec_request;
    cb->channel_env_request_function = on_env_request;
    cb->channel_subsystem_request_function = on_subsystem_request;
    /* No x11 or agent callbacks: libssh refuses (or ignores) those requests. */
    if (ssh_set_channel_callbacks(exec->channel, cb) != SSH_OK) {
        ssh_channel_free(exec->channel);
        free(exec);
        return NULL;
    }
    exec->next = conn->execs;
    conn->execs = exec;
    conn->exec_count++;
    return exec->channel;
}

static int on_auth_pubkey(ssh_session session, const char *user, struct ssh_key_struct *pubkey,
                          char signature_state, void *userdata)
{
    struct conn *conn = userdata;
    tl_ssh_front_t *front = conn->front;
    if (conn->authenticated || conn->closing)
        return SSH_AUTH_DENIED;
    printable(conn->user, sizeof conn->user, user);
    key_fingerprint(pubkey, conn->fingerprint);
    if (limit_blocked(front, conn->address)) {
        login_failed(conn, "rate-limited", 0);
        conn->closing = 1;
        queue_service(conn);
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
        login_failed(conn, "unknown-key", 1);
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
    uv_timer_stop(&conn->auth_timer);
    source_release(conn);
    /* Keys the client tried first (an agent holding several) were not an attack. */
    limit_forgive(front, conn->address, conn->counted_at, conn->counted);
    conn->counted = 0;
    report_login(conn, 1, "publickey");
    return SSH_AUTH_SUCCESS;

refused:
    if (++conn->auth_attempts >= MAX_AUTH_ATTEMPTS) {
        tl_log_peer_warn(conn->address, "ssh too many attempts addr=%s", conn->address);
        conn->closing = 1;
        queue_service(conn);
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
            printable(conn->user, sizeof conn->user, ssh_message_auth_user(msg));
            conn->fingerprint[0] = '\0';
            if (limit_blocked(conn->front, conn->address)) {
                login_failed(conn, "rate-limited", 0);
                conn->closing = 1;
                queue_service(conn);
            } else {
                login_failed(conn, "method-refused", 1);
                if (++conn->auth_attempts >= MAX_AUTH_ATTEMPTS) {
                    conn->closing = 1;
                    queue_service(conn);
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

/* ---- channels: service, end, free --------------------------------------------------------- */

static void exec_abort(tl_exec_t *exec)
{
    if (exec->aborted || !exec->dispatched || exec->finished)
        return;
    exec->aborted = 1;
    tl_log_info("ssh exec aborted user=%s addr=%s command=%.64s sent=%llu received=%llu",
                exec->technician.name, exec->conn->address, exec->argv[0],
                (unsigned long long)exec->bytes_sent, (unsigned long long)exec->bytes_received);
    if (exec->callbacks != NULL && exec->callbacks->on_abort != NULL)
        exec->callbacks->on_abort(exec, exec->callbacks_data);
}

/* Forgets the exec; the channel goes with it unless free_channel is 0 (ssh_free will do it). */
static void exec_free(tl_exec_t *exec, int free_channel)
{
    struct conn *conn = exec->conn;
    for (tl_exec_t **link = &conn->execs; *link != NULL; link = &(*link)->next) {
        if (*link == exec) {
            *link = exec->next;
            break;
        }
    }
    conn->exec_count--;
    /* The channel may outlive this (libssh frees it at the client's CLOSE): no callbacks into us.
     */
    ssh_remove_channel_callbacks(exec->channel, &exec->channel_callbacks);
    if (free_channel) {
        ssh_channel_close(exec->channel); /* a no-op when our CLOSE is already out */
        ssh_channel_free(exec->channel);
    }
    free_output(exec);
    free(exec->input);
    free(exec->words);
    free(exec);
}

/*
 * Hands queued output to libssh while the client's window is open, libssh's
 * socket buffer is empty and this wake-up's budget lasts. *more is set when
 * the budget ran out with output still sendable (the socket is writable, so
 * the next wake-up comes at once).
 */
static void exec_flush(tl_exec_t *exec, size_t *budget, int *more)
{
    struct conn *conn = exec->conn;
    while (exec->head != NULL && !exec->channel_gone && !conn->closing) {
        if (ssh_get_poll_flags(conn->session) & SSH_WRITE_PENDING)
            return; /* UV_WRITABLE is armed below */
        uint32_t window = ssh_channel_window_size(exec->channel);
        if (window == 0)
            return; /* the client's WINDOW_ADJUST arrives as readable */
        if (*budget == 0) {
            *more = 1;
            return;
        }
        struct chunk *head = exec->head;
        size_t len = head->end - head->start;
        if (len > window)
            len = window;
        if (len > *budget)
            len = *budget;
        const void *data = head->data + head->start;
        int rc = head->stream == TL_EXEC_STDERR ? ssh_channel_write_stderr(exec->channel, data, len)
                                                : ssh_channel_write(exec->channel, data, len);
        if (rc < 0) {
            if (session_gone(conn))
                conn->closing = 1;
            else
                exec->channel_gone = 1;
            tl_log_debug("ssh write failed addr=%s error=%s", conn->address,
                         ssh_get_error(conn->session));
            return;
        }
        if (rc == 0)
            return;
        consume_output(exec, (size_t)rc);
        *budget -= (size_t)rc;
        if (exec->above_high_water && exec->buffered < TL_EXEC_HIGH_WATER) {
            exec->above_high_water = 0;
            if (exec->state == EXEC_RUNNING && !exec->aborted && exec->callbacks != NULL &&
                exec->callbacks->on_drain != NULL)
                exec->callbacks->on_drain(exec, exec->callbacks_data);
        }
    }
}

/*
 * Offers the client's input to a running command: first what is left in
 * input[], then more out of libssh's buffer (which lets libssh grow the
 * client's window again). Stops when the command takes less than offered
 * (until tl_exec_resume_input()), when nothing is held, or when this
 * wake-up's budget is spent. Input for a command without on_input is read
 * and dropped. The client's EOF reaches the command after the last byte.
 */
static void exec_input(tl_exec_t *exec)
{
    struct conn *conn = exec->conn;
    size_t budget = INPUT_BUDGET;
    while (exec->state == EXEC_RUNNING && !exec->channel_gone && !conn->closing) {
        const tl_exec_callbacks_t *callbacks = exec->callbacks;
        int reads = callbacks != NULL && callbacks->on_input != NULL;
        if (exec->input_start < exec->input_end) {
            size_t offered = exec->input_end - exec->input_start;
            size_t took = offered;
            if (reads) {
                if (exec->input_paused)
                    return;
                if (budget == 0) {
                    queue_service(conn); /* the rest on the next turn */
                    return;
                }
                exec->input_resumed = 0;
                took = callbacks->on_input(exec, exec->input + exec->input_start, offered,
                                           exec->callbacks_data);
                if (took > offered) {
                    tl_log_warn("ssh exec input over-taken user=%s command=%.64s took=%zu "
                                "offered=%zu",
                                exec->technician.name, exec->argv[0], took, offered);
                    took = offered;
                }
                exec->bytes_received += took;
                budget = took < budget ? budget - took : 0;
            }
            exec->input_start += took;
            if (exec->input_start == exec->input_end) {
                exec->input_start = exec->input_end = 0;
                if (exec->input_size > INPUT_KEEP && exec->in_libssh == 0) {
                    /* A paste went through: its buffer is not kept while the input is idle. */
                    free(exec->input);
                    exec->input = NULL;
                    exec->input_size = 0;
                }
            }
            if (took < offered) {
                /* Held until the command resumes; a resume from inside on_input waits a turn. */
                if (exec->input_resumed)
                    queue_service(conn);
                else
                    exec->input_paused = 1;
                return;
            }
            continue;
        }
        if (exec->in_libssh == 0)
            break;
        uint32_t want = exec->in_libssh;
        if (exec->input_size < want) {
            uint8_t *grown = realloc(exec->input, want);
            if (grown == NULL) {
                tl_log_warn("ssh exec input dropped user=%s addr=%s reason=%s",
                            exec->technician.name, conn->address, tl_strerror(TL_ENOMEM));
                exec->channel_gone = 1; /* the command ends rather than lose input silently */
                return;
            }
            exec->input = grown;
            exec->input_size = want;
        }
        /*
         * libssh's buffer holds in_libssh > 0 bytes, so this copies from it
         * without reading the socket (no callbacks run from here).
         */
        int rc = ssh_channel_read_nonblocking(exec->channel, exec->input, want, 0);
        if (rc < 0) {
            tl_log_debug("ssh read failed addr=%s error=%s", conn->address,
                         ssh_get_error(conn->session));
            if (session_gone(conn))
                conn->closing = 1;
            else
                exec->channel_gone = 1;
            return;
        }
        if (rc == 0 || (uint32_t)rc > exec->in_libssh) {
            exec->in_libssh = 0; /* not what we counted: trust libssh, which has no more */
            if (rc == 0)
                break;
        } else {
            exec->in_libssh -= (uint32_t)rc;
        }
        exec->input_start = 0;
        exec->input_end = (size_t)rc;
    }
    if (exec->state == EXEC_RUNNING && exec->eof_received && !exec->eof_delivered &&
        exec->input_start == exec->input_end && exec->in_libssh == 0 && !exec->channel_gone &&
        !conn->closing) {
        exec->eof_delivered = 1;
        if (exec->callbacks != NULL && exec->callbacks->on_input_eof != NULL)
            exec->callbacks->on_input_eof(exec, exec->callbacks_data);
    }
}

static void exec_resize(tl_exec_t *exec)
{
    if (!exec->resize_pending || exec->state != EXEC_RUNNING || exec->channel_gone)
        return;
    exec->resize_pending = 0;
    if (exec->callbacks != NULL && exec->callbacks->on_resize != NULL)
        exec->callbacks->on_resize(exec, exec->pty.cols, exec->pty.rows, exec->callbacks_data);
}

static void exec_service(tl_exec_t *exec, size_t *budget, int *more)
{
    struct conn *conn = exec->conn;
    tl_ssh_front_t *front = conn->front;

    if (exec->state == EXEC_PENDING && conn->login_refused && exec->refusal == NULL)
        exec->refusal = LOGIN_NOT_RECORDED;
    /* A command waits (its input kept) while its login is not on the record yet. */
    if (exec->state == EXEC_PENDING && !(conn->login_held && exec->refusal == NULL)) {
        if (exec->refusal != NULL) {
            const char *eol = exec->pty.requested ? "\r\n" : "\n";
            const char *prefix = exec->refusal == USAGE ? "" : "tierline: ";
            char line[512];
            int len = snprintf(line, sizeof line, "%s%s%s", prefix, exec->refusal, eol);
            tl_log_info("ssh exec refused user=%s addr=%s reason=\"%s\"", exec->technician.name,
                        conn->address, exec->refusal);
            queue_output(exec, TL_EXEC_STDERR, line, (size_t)len);
            exec->finished = 1;
            exec->exit_status = exec->refusal == LOGIN_NOT_RECORDED ? 1 : 2;
            exec->state = EXEC_FINISHING;
        } else {
            exec->state = EXEC_RUNNING;
            exec->dispatched = 1;
            exec->resize_pending = 0; /* tl_exec_pty() has the size the command starts with */
            tl_log_info("ssh exec user=%s role=%s addr=%s command=%.64s words=%d",
                        exec->technician.name, exec->technician.role, conn->address, exec->argv[0],
                        exec->argc);
            if (front->dispatch != NULL) {
                front->dispatch(front->ctx, exec, exec->argc, exec->argv);
            } else {
                tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: no commands here\n");
                tl_exec_finish(exec, 1);
            }
        }
    }

    if (exec->channel_gone && exec->state != EXEC_CLOSING) {
        /* The client closed the channel (or it broke) before the end: the command stops. */
        exec_abort(exec);
        exec_free(exec, 1);
        return;
    }
    exec_resize(exec);
    exec_input(exec); /* before the flush: an echo goes out in the same wake-up */
    if (exec->state == EXEC_RUNNING || exec->state == EXEC_FINISHING)
        exec_flush(exec, budget, more);
    if (exec->state == EXEC_FINISHING && exec->buffered == 0 && !exec->channel_gone &&
        !conn->closing) {
        /* As sshd: EOF, exit-status, CLOSE; the exec stays until the client's CLOSE. */
        ssh_channel_send_eof(exec->channel);
        ssh_channel_request_send_exit_status(exec->channel, exec->exit_status);
        ssh_channel_close(exec->channel);
        exec->state = EXEC_CLOSING;
        tl_log_info("ssh exec done user=%s addr=%s command=%.64s status=%d sent=%llu received=%llu",
                    exec->technician.name, conn->address, exec->argv[0] ? exec->argv[0] : "-",
                    exec->exit_status, (unsigned long long)exec->bytes_sent,
                    (unsigned long long)exec->bytes_received);
    }
    if (exec->state == EXEC_CLOSING && exec->channel_gone)
        exec_free(exec, 1);
}

/* ---- connections -------------------------------------------------------------------------- */

static void queue_service(struct conn *conn)
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

static void conn_teardown(struct conn *conn)
{
    tl_ssh_front_t *front = conn->front;
    conn->torn_down = 1;
    conn->closing = 1;
    unqueue_service(conn);
    source_release(conn);
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
        exec_abort(exec);
    while (conn->execs != NULL)
        exec_free(conn->execs, 0);

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
        printable(why, sizeof why, ssh_get_error(conn->session));
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
    if (!conn->closing && session_gone(conn))
        conn->closing = 1;
    size_t budget = SEND_BUDGET;
    int more = 0;
    tl_exec_t *next;
    for (tl_exec_t *exec = conn->execs; exec != NULL && !conn->closing; exec = next) {
        next = exec->next;
        exec_service(exec, &budget, &more);
    }
    if (conn->closing || session_gone(conn)) {
        conn_teardown(conn);
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

static void on_auth_timeout(uv_timer_t *timer)
{
    struct conn *conn = timer->data;
    if (conn->authenticated || conn->closing)
        return;
    login_failed(conn, "timeout", 0);
    conn->closing = 1;
    queue_service(conn);
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
    conn->server_callbacks.channel_open_request_session_function = on_channel_open;
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
        printable(why, sizeof why, ssh_get_error(conn->session));
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

    if ((error = source_hold(conn)) != 0 ||
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
        queue_service(conn);
        return;
    }
    conn_watch(conn, 1); /* the banner may still be queued */
    return;

fail:
    if (conn != NULL) {
        source_release(conn);
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

/*
 * At max_sessions: closes the oldest pre-auth connection of the address
 * holding the most of them, if it holds more than the newcomer's address
 * (held). 1 if a connection was closed, 0 if every connection is
 * authenticated or no address holds more than the newcomer's.
 */
static int make_room(tl_ssh_front_t *front, unsigned held)
{
    struct preauth_source *busiest = source_busiest(front);
    if (busiest == NULL || busiest->count <= held)
        return 0;
    struct conn *oldest = NULL; /* front->conns is newest first */
    for (struct conn *conn = front->conns; conn != NULL; conn = conn->next)
        if (conn->source == busiest && !conn->torn_down)
            oldest = conn;
    if (oldest == NULL)
        return 0;
    tl_log_peer_info(oldest->address, "ssh connection evicted addr=%s held=%u sessions=%u",
                     oldest->address, busiest->count, front->live);
    /* Not inside any of its libssh callbacks here: it can go at once, freeing its place. */
    oldest->close_reason = "evicted";
    conn_teardown(oldest);
    return 1;
}

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
    const char *refusal = NULL;
    unsigned held = source_held(front, address);
    if (limit_blocked(front, address))
        refusal = "rate-limited";
    else if (held >= front->max_preauth_per_address)
        refusal = "address-limit";
    else if (front->live >= front->max_sessions && !make_room(front, held))
        refusal = "busy";
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

/* ---- the host key ------------------------------------------------------------------------- */

/*
 * libssh 0.10.6 reads a PEM PKCS#8 Ed25519 key (the relay's key file,
 * proto/keys.h) without complaint, but keeps it in a form it cannot export:
 * ssh_pki_export_pubkey_base64() fails on it and every key exchange fails
 * with "ssh_get_key_params: Out of memory" (measured: OpenSSH 9.2 gets
 * "Bye Bye"). So the key is read with OpenSSL and handed to libssh in
 * OpenSSH's own private key format ("openssh-key-v1", unencrypted), which
 * libssh parses into its native Ed25519 key. The secret bytes are wiped.
 */

struct blob {
    uint8_t bytes[512];
    size_t len;
    int overflow;
};

static void blob_put(struct blob *b, const void *data, size_t len)
{
    if (len > sizeof b->bytes - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->bytes + b->len, data, len);
    b->len += len;
}

static void blob_put_u32(struct blob *b, uint32_t value)
{
    uint8_t be[4] = {(uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8),
                     (uint8_t)value};
    blob_put(b, be, 4);
}

static void blob_put_string(struct blob *b, const void *data, size_t len)
{
    blob_put_u32(b, (uint32_t)len);
    blob_put(b, data, len);
}

static int load_host_key(const char *path, ssh_key *out)
{
    static const char type[] = "ssh-ed25519";
    EVP_PKEY *pkey = NULL;
    uint8_t seed_and_public[64];
    uint8_t public_key[32];
    struct blob blob = {.len = 0};
    struct blob public_blob = {.len = 0};
    char text[1024];
    size_t seed_len = 32, public_len = 32;
    int rc = tl_key_load(path, &pkey);
    if (rc != 0)
        return rc;
    rc = TL_EKEY;
    if (EVP_PKEY_get_raw_private_key(pkey, seed_and_public, &seed_len) != 1 || seed_len != 32 ||
        EVP_PKEY_get_raw_public_key(pkey, public_key, &public_len) != 1 || public_len != 32)
        goto out;
    memcpy(seed_and_public + 32, public_key, 32);

    blob_put_string(&public_blob, type, sizeof type - 1);
    blob_put_string(&public_blob, public_key, 32);
    blob_put(&blob, "openssh-key-v1", sizeof "openssh-key-v1"); /* the NUL too */
    blob_put_string(&blob, "none", 4);                          /* cipher */
    blob_put_string(&blob, "none", 4);                          /* kdf */
    blob_put_string(&blob, "", 0);                              /* kdf options */
    blob_put_u32(&blob, 1);                                     /* keys */
    blob_put_string(&blob, public_blob.bytes, public_blob.len);
    size_t private_start = blob.len;
    blob_put_u32(&blob, 0);       /* private section length, below */
    uint32_t check = 0x746c7373u; /* any value, twice: "decrypted correctly" */
    blob_put_u32(&blob, check);
    blob_put_u32(&blob, check);
    blob_put_string(&blob, type, sizeof type - 1);
    blob_put_string(&blob, public_key, 32);
    blob_put_string(&blob, seed_and_public, 64);
    blob_put_string(&blob, "", 0); /* comment */
    for (uint8_t pad = 1; (blob.len - private_start - 4) % 8 != 0; pad++)
        blob_put(&blob, &pad, 1);
    if (blob.overflow)
        goto out;
    uint32_t private_len = (uint32_t)(blob.len - private_start - 4);
    blob.bytes[private_start] = (uint8_t)(private_len >> 24);
    blob.bytes[private_start + 1] = (uint8_t)(private_len >> 16);
    blob.bytes[private_start + 2] = (uint8_t)(private_len >> 8);
    blob.bytes[private_start + 3] = (uint8_t)private_len;

    unsigned char encoded[((sizeof blob.bytes + 2) / 3) * 4 + 1];
    int encoded_len = EVP_EncodeBlock(encoded, blob.bytes, (int)blob.len);
    size_t used = (size_t)snprintf(text, sizeof text, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for (int i = 0; i < encoded_len && used < sizeof text; i += 70)
        used += (size_t)snprintf(text + used, sizeof text - used, "%.70s\n", encoded + i);
    if (used < sizeof text)
        used += (size_t)snprintf(text + used, sizeof text - used,
                                 "-----END OPENSSH PRIVATE KEY-----\n");
    OPENSSL_cleanse(encoded, sizeof encoded);
    if (used >= sizeof text)
        goto out;
    if (ssh_pki_import_privkey_base64(text, NULL, NULL, NULL, out) == SSH_OK)
        rc = 0;
out:
    OPENSSL_cleanse(seed_and_public, sizeof seed_and_public);
    OPENSSL_cleanse(&blob, sizeof blob);
    OPENSSL_cleanse(text, sizeof text);
    EVP_PKEY_free(pkey);
    return rc;
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

tl_ssh_front_t *tl_ssh_front_start(uv_loop_t *loop, const tl_ssh_front_config_t *config, int *err)
{
    tl_ssh_front_t *front = NULL;
    ssh_key host_key = NULL;
    int rc = TL_EINVAL;
    if (config == NULL || config->listen == NULL || config->host_key_path == NULL ||
        config->dispatch == NULL || config->authorize == NULL)
        goto out;
    rc = load_host_key(config->host_key_path, &host_key);
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
    front->max_sessions = config->max_sessions ? config->max_sessions : TL_SSH_DEFAULT_MAX_SESSIONS;
    front->max_preauth_per_address = config->max_preauth_per_address
                                         ? config->max_preauth_per_address
                                         : TL_SSH_DEFAULT_PREAUTH_PER_ADDRESS;
    front->auth_timeout_ms =
        config->auth_timeout_ms ? config->auth_timeout_ms : TL_SSH_DEFAULT_AUTH_TIMEOUT_MS;
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
            queue_service(conn);
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
        queue_service(conn);
        return;
    }
}

uint32_t tl_ssh_front_sessions(const tl_ssh_front_t *front)
{
    return front->live;
}
