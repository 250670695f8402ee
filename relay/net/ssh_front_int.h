/*
 * What the files of the SSH front end (relay/net/ssh_front.h) share: a
 * connection, a session channel (the tl_exec_t of relay/net/exec.h), the
 * front end itself, and the bookkeeping of its limits. Only
 * relay/net/ssh_*.c include it; tl__ names are theirs alone.
 */
#ifndef TL_SSH_FRONT_INT_H
#define TL_SSH_FRONT_INT_H

#include "proto/addr.h"
#include "proto/buf.h"
#include "relay/net/listener.h"
#include "relay/net/ssh_front.h"

#include <libssh/callbacks.h>
#include <libssh/server.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Refused keys on one connection before it is closed, as sshd's MaxAuthTries. */
#define MAX_AUTH_ATTEMPTS 6
/* Client addresses whose failed logins are remembered. */
#define LIMIT_SLOTS 512
/* Hash buckets for the addresses holding pre-auth connections (at most max_sessions of them). */
#define SOURCE_BUCKETS 256

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
    /* "signal" requests not yet passed to on_signal (names from tl_session_signal_name) */
    const char *signals[TL_EXEC_PENDING_SIGNALS];
    unsigned signals_pending;
    unsigned signals_taken;  /* requests accepted over the command's life */
    unsigned signals_logged; /* dropped requests logged; later ones are only counted */
    /*
     * The client's stdin. Bytes stay in libssh's channel buffer until the
     * command can take them, then all of them move into input and are
     * offered from there; only once the command has taken all of input is
     * libssh's buffer read again. (Reading part of it would be wrong: libssh
     * tops the client's window up on every read, whatever it still holds, so
     * a slow reader would let a fast client grow that buffer without end.)
     * in_libssh is what libssh holds: its data callback always sees the
     * whole buffer, so the count is exact.
     */
    tl_buf_t *input; /* NULL until the first input; capped at INPUT_HARD_CAP */
    uint32_t in_libssh;
    uint64_t bytes_received;
    unsigned raw : 1;           /* tl_exec_set_raw(): no ONLCR */
    unsigned subsystem : 1;     /* the "sftp" subsystem, not an exec */
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
    /* Not an SSH channel: a command whose output is kept for the web view (tl_exec_capture_new);
     * conn and channel are NULL. */
    struct tl__exec_capture *capture;
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
    uint64_t login_id;                 /* with on_login_ok: which login the audit outcome is for */
    struct ssh_counter_struct counter; /* bytes through the socket, libssh counting */
    uint64_t counted_bytes;            /* counter.in_bytes when on_keepalive last looked */
    uint64_t last_received;            /* uv_now when that count last moved */
    uint64_t last_activity;            /* ... when a channel last carried data either way */
    const char *close_reason;          /* a login outcome still to report, if any */
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
    uint32_t keepalive_ms;
    uint32_t idle_timeout_ms;
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

/* ---- ssh_front.c: connections and authentication ----------------------------------------- */

/* Network text made safe for logs and the audit log: printable ASCII, bounded. */
void tl__ssh_printable(char *out, size_t size, const char *text);
int tl__ssh_session_gone(const struct conn *conn);
/* Asks for conn_service() on the loop (from the idle handle), never from inside libssh. */
void tl__ssh_queue_service(struct conn *conn);
/* Ends the connection now: not from inside one of its libssh callbacks. */
void tl__ssh_conn_teardown(struct conn *conn);

/* ---- ssh_limits.c: failed logins and pre-auth connections per address --------------------- */

/* Why a new connection from address is refused before any SSH byte, or NULL to let it in. */
const char *tl__ssh_admission(tl_ssh_front_t *front, const char *address);
int tl__ssh_limit_blocked(tl_ssh_front_t *front, const char *address);
uint64_t tl__ssh_limit_record(tl_ssh_front_t *front, const char *address);
void tl__ssh_limit_forgive(tl_ssh_front_t *front, const char *address, const uint64_t *times,
                           unsigned count);
int tl__ssh_source_hold(struct conn *conn);
void tl__ssh_source_release(struct conn *conn);

/* ---- ssh_exec.c: session channels and the exec API ---------------------------------------- */

/* libssh's channel_open_request_session_function: a new tl_exec_t, or NULL to refuse. */
ssh_channel tl__ssh_channel_open(ssh_session session, void *userdata);
/* Dispatches, feeds and flushes one exec; may free it. */
void tl__exec_service(tl_exec_t *exec, size_t *budget, int *more);
void tl__exec_abort(tl_exec_t *exec);
void tl__exec_free(tl_exec_t *exec, int free_channel);

/* ---- ssh_host_key.c ----------------------------------------------------------------------- */

int tl__ssh_load_host_key(const char *path, ssh_key *out);

#endif
