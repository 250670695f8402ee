/*
 * The console's SSH connection to the relay's front end (libssh client):
 * connect and key exchange, the relay's host key fingerprint, public-key
 * authentication, and exec channels with their input and output pumped
 * until the remote command ends (docs/technicians.md).
 *
 * Setting up a channel (open, pty-req, exec) uses libssh's blocking calls,
 * bounded by TL_CLIENT_TIMEOUT_S. The pump itself is non-blocking: one
 * poll() over the SSH socket, the local input, the local outputs and a wake
 * descriptor (the signal self-pipe, console/term.h). Channel data arrives
 * through libssh's channel callbacks into per-stream queues; the socket is
 * read only while those queues are under their high-water marks, so what the
 * console holds is bounded by those marks plus the SSH window libssh grants
 * (1.25 MB), and a queue that would pass its hard cap is an error. Local
 * input is read only while the previous piece has been handed to libssh,
 * and handed only while the relay's window is open and libssh has nothing
 * waiting to go out. Local outputs are written when poll() says they can
 * take bytes, a bounded piece at a time, so a slow reader of stdout holds
 * back the relay (through the SSH window) rather than growing memory.
 */
#ifndef TL_CONSOLE_CLIENT_H
#define TL_CONSOLE_CLIENT_H

#include "proto/keys.h"

#include <stddef.h>

/* Bound on each blocking step: connecting, key exchange, auth, channel set-up. */
#define TL_CLIENT_TIMEOUT_S 20
/* Longest "TYPE BASE64" form of the relay's host key kept (an RSA-16384 key fits). */
#define TL_CLIENT_HOST_KEY_LINE_MAX 4096
/* Console exit status for connection, authentication and host-key failures (as ssh). */
#define TL_CLIENT_EXIT_SSH 255

typedef struct tl_client tl_client_t;

/* What one exec does with its streams. Zero-initialise, then set what is needed. */
typedef struct tl_exec_io {
    int in_fd;            /* forwarded to the command's stdin, EOF at its end; -1: EOF at once */
    int out_fd;           /* the command's stdout goes here; -1: only to on_stdout */
    int err_fd;           /* the command's stderr goes here; -1: dropped */
    int wake_fd;          /* readable: on_wake is called; -1: none */
    const char *pty_term; /* non-NULL: ask for a PTY of this type and size first */
    int pty_cols, pty_rows;
    /* Each piece of stdout as it arrives, before it is queued for out_fd; nonzero stops. */
    int (*on_stdout)(void *data, const void *bytes, size_t len);
    /*
     * Nonzero: what the relay sends for out_fd and err_fd is shown escaped
     * (proto/text.h, lines kept), so no control byte reaches the terminal
     * whatever the relay sends. For listings; never for a session's output.
     */
    int escape;
    /* Called before stderr bytes are written (to erase a progress bar). */
    void (*before_stderr)(void *data);
    void *data; /* for on_stdout and before_stderr */
    /* The wake descriptor was readable; nonzero stops the command with that code. */
    int (*on_wake)(void *wake_data, tl_client_t *client);
    void *wake_data;
} tl_exec_io_t;

typedef struct tl_exec_result {
    int exit_status;      /* -1 when the relay sent none */
    char exit_signal[32]; /* "" or the signal that ended the command ("KILL") */
} tl_exec_result_t;

/* A client for user@host:port; NULL when out of memory. Nothing happens on the network yet. */
tl_client_t *tl_client_new(const char *host, unsigned port, const char *user);

/*
 * TCP connection and key exchange. 0, or TL_ECLOSED with the reason in
 * tl_client_error(). The host key is not yet judged: the caller compares
 * tl_client_host_key() with its pin before anything is sent in the clear or
 * signed.
 */
int tl_client_connect(tl_client_t *client);

/*
 * Keepalives while a command runs (tl_client_exec): a keepalive after seconds of silence from
 * the relay, and the command ends (TL_ETIMEOUT, the reason in tl_client_error()) after three
 * such intervals with nothing from it. 0 turns them off (the default before this is called).
 */
void tl_client_set_keepalive(tl_client_t *client, unsigned seconds);

/* The relay's host key fingerprint, "SHA256:" + 43 base64 characters, after connect. */
const char *tl_client_host_key(const tl_client_t *client);

/*
 * The relay's host key as a known_hosts line holds it, "TYPE BASE64" (e.g.
 * "ssh-ed25519 AAAA..."), after connect; "" if it could not be written.
 */
const char *tl_client_host_key_line(const tl_client_t *client);

/*
 * Public-key authentication with the private key in identity_path. A
 * passphrase is asked for on the terminal only if may_prompt. Errors (text
 * in tl_client_error()): negated errno if the file cannot be read, TL_EKEY if
 * it is not a usable private key (or is encrypted and there is no terminal),
 * TL_EDENIED if the relay refused the key, TL_ECLOSED if the connection broke.
 */
int tl_client_authenticate(tl_client_t *client, const char *identity_path, int may_prompt);

/* "SHA256:..." of the key that signed in (after tl_client_authenticate). */
const char *tl_client_key_fingerprint(const tl_client_t *client);

/*
 * Runs command (one line, quoted as console/quote.h does) on a new session
 * channel and pumps it until the relay closes the channel. 0 when the command
 * ran to its end (see result); otherwise the code a hook returned, TL_ECLOSED
 * (connection lost or channel refused), TL_EFULL (the relay sent more than its
 * window), or a negated errno for a local read or write error; the text is in
 * tl_client_error(). A stopped command's channel is closed.
 */
int tl_client_exec(tl_client_t *client, const char *command, const tl_exec_io_t *io,
                   tl_exec_result_t *result);

/* Tells the relay the running command's terminal has a new size (window-change). */
int tl_client_resize(tl_client_t *client, int cols, int rows);

/* What went wrong last, for people; never NULL. */
const char *tl_client_error(const tl_client_t *client);

/* Disconnects and frees; NULL is a no-op. */
void tl_client_free(tl_client_t *client);

#endif
