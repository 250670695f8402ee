/*
 * One technician command in progress: the seam between the SSH front end
 * (relay/net/ssh_front.h; relay/net/ssh_exec.c implements this), which owns
 * the connection, and the command table
 * (relay/cmd/commands.h), which decides what a command does.
 *
 * The front end authenticates the technician, receives an SSH "exec"
 * request, splits the command line into words (docs/technicians.md gives the
 * quoting rules) and calls the dispatcher. The command answers through the
 * functions below, on the loop thread, now or later (after a storage job):
 * output on stdout or stderr, then exactly one tl_exec_finish(). Output is
 * buffered by the front end and sent within the client's SSH window; a
 * command that streams a lot (an evidence blob) keeps tl_exec_buffered()
 * under TL_EXEC_HIGH_WATER and continues from its on_drain callback, so a
 * technician who stops reading holds back only their own command.
 *
 * Lifetime. The exec belongs to the front end. If the client goes away
 * first, the command's on_abort callback runs once; after it returns, or
 * after tl_exec_finish(), the command must not touch the exec again.
 *
 * Re-entrancy. The front end never sends from inside these functions: they
 * queue and return, and the bytes go out from the loop after the caller has
 * returned. So no callback (on_drain, on_abort) ever runs from inside
 * tl_exec_write(), tl_exec_printf() or tl_exec_finish(), and the dispatcher
 * and both callbacks run on the loop, never from inside libssh.
 */
#ifndef TL_EXEC_H
#define TL_EXEC_H

#include "proto/buf.h"
#include "relay/desk/users.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tl_exec tl_exec_t;

/* Exit statuses of technicians' commands: 0 success, 1 failure, 2 usage, 77 denied. */
#define TL_EXIT_DENIED 77

#define TL_EXEC_STDOUT 0
#define TL_EXEC_STDERR 1

/* Above this much buffered output, a producer waits for on_drain. */
#define TL_EXEC_HIGH_WATER (1024u * 1024u)
/* Hard cap: writes past it fail with TL_EFULL (a producer that ignored the above). */
#define TL_EXEC_MAX_BUFFERED (8u * 1024u * 1024u)
/* Longest command line the front end accepts, and most words. */
#define TL_EXEC_MAX_LINE 8192
#define TL_EXEC_MAX_WORDS 64

const tl_technician_t *tl_exec_technician(const tl_exec_t *exec);

/*
 * Queues output, all of it or nothing: TL_EFULL past TL_EXEC_MAX_BUFFERED,
 * TL_ECLOSED once the client has gone (before or during on_abort), TL_EINVAL
 * after tl_exec_finish() or for another stream, TL_ENOMEM.
 */
int tl_exec_write(tl_exec_t *exec, int stream, const void *data, size_t len);
/* printf-style convenience on top of tl_exec_write. */
int tl_exec_printf(tl_exec_t *exec, int stream, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t tl_exec_buffered(const tl_exec_t *exec);

/*
 * Ends the command: the front end sends what is buffered, then EOF, the exit
 * status and CLOSE, in that order (as sshd does). A no-op once aborted (so
 * on_abort may call it); a second call is logged and ignored.
 */
void tl_exec_finish(tl_exec_t *exec, int exit_status);

/*
 * on_drain runs once each time tl_exec_buffered() falls below
 * TL_EXEC_HIGH_WATER after a write took it to TL_EXEC_HIGH_WATER or more. So
 * a producer writes while tl_exec_buffered() < TL_EXEC_HIGH_WATER (its last
 * write takes it over) and then waits for on_drain; a producer that stops
 * short of the mark gets no on_drain and must carry on by itself.
 * on_abort runs only for a command that was dispatched and has not called
 * tl_exec_finish(): when the client closes the channel or the connection,
 * or the front end stops.
 */
typedef struct tl_exec_callbacks {
    void (*on_drain)(tl_exec_t *exec, void *data); /* buffered fell below high water */
    void (*on_abort)(tl_exec_t *exec, void *data); /* the client went away */
    /*
     * The client's stdin (keystrokes for join). Returns how many bytes the
     * command took, 0..len; the front end keeps the rest, stops crediting
     * the client's SSH window, and offers it again after
     * tl_exec_resume_input(). NULL: input is read and discarded.
     */
    size_t (*on_input)(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data);
    /* The client sent EOF on stdin. */
    void (*on_input_eof)(tl_exec_t *exec, void *data);
    /* The client's terminal changed size (window-change); only with a PTY. */
    void (*on_resize)(tl_exec_t *exec, unsigned cols, unsigned rows, void *data);
    /*
     * The client sent a "signal" request (RFC 4254 §6.9) naming one of
     * tl_session_signal_number()'s signals ("INT", "TERM", ...); other names
     * are logged and dropped by the front end. At most TL_EXEC_MAX_SIGNALS
     * per command reach it; later ones are dropped too.
     */
    void (*on_signal)(tl_exec_t *exec, const char *name, void *data);
} tl_exec_callbacks_t;

/* Signal requests passed to one command at most, and waiting at once at most. */
#define TL_EXEC_MAX_SIGNALS 64
#define TL_EXEC_PENDING_SIGNALS 8

/* The command can take input again: held bytes are offered to on_input (from the loop). */
void tl_exec_resume_input(tl_exec_t *exec);

/*
 * The terminal the client asked for with pty-req, if any. Commands other
 * than join simply print: the front end turns "\n" into "\r\n" on output
 * when a PTY was requested (as a terminal's ONLCR would), unless the command
 * calls tl_exec_set_raw() first (join passes the agent's terminal through).
 */
typedef struct tl_exec_pty {
    int requested;
    char term[64];
    unsigned cols, rows;
} tl_exec_pty_t;

const tl_exec_pty_t *tl_exec_pty(const tl_exec_t *exec);
void tl_exec_set_raw(tl_exec_t *exec);

/*
 * 1 for the "sftp" subsystem (docs/protocol.md §7.16): the front end accepts it only for a
 * technician whose role has files.pull, and dispatches it with argv {"sftp"}; the client's
 * bytes are the SFTP stream (on_input) and stdout carries the replies, unchanged.
 */
int tl_exec_subsystem(const tl_exec_t *exec);

/* The command's own callbacks and state; callbacks must outlive the exec. */
void tl_exec_set_callbacks(tl_exec_t *exec, const tl_exec_callbacks_t *callbacks, void *data);

/*
 * An exec that is no SSH channel (docs/web.md): the web view runs a technician's command through
 * the same dispatcher, as technician, and gets what it printed. Output is kept whole, up to
 * max_output bytes on both streams together (writes past it fail with TL_EFULL, as on a channel
 * past TL_EXEC_MAX_BUFFERED; a producer never waits for on_drain). tl_exec_finish() calls done
 * with the exit status and both streams (borrowed for the call) and then frees the exec; the
 * command's on_abort never runs. No PTY, no input. Loop thread, as any exec. NULL without memory.
 */
typedef void (*tl_exec_captured_fn)(void *data, int exit_status, const tl_buf_t *out,
                                    const tl_buf_t *err);
tl_exec_t *tl_exec_capture_new(const tl_technician_t *technician, size_t max_output,
                               tl_exec_captured_fn done, void *data);

/*
 * The dispatcher the front end calls for each exec request (relay/cmd/commands.h).
 * argc >= 1 and argv[0] is the command name; argv[argc] is NULL; the words
 * live until the command finishes. ctx is what the front end was given at
 * start (the relay). Lines that do not split (docs/technicians.md "Command
 * lines"; tl__exec_split_line() in relay/net/exec_split.c), empty commands and shells
 * (a session without a command) never reach it: the front end answers those
 * with a line on stderr and exit status 2. A PTY request before the exec is
 * allowed (tl_exec_pty()).
 */
typedef void (*tl_exec_dispatch_fn)(void *ctx, tl_exec_t *exec, int argc, char **argv);

/*
 * The front end's command-line splitter, bytes in and words out, for tests
 * and fuzzing: words needs strlen(line) + 1 bytes and argv TL_EXEC_MAX_WORDS
 * + 1 slots. NULL when the line splits, else what is wrong with it.
 */
const char *tl__exec_split_line(const char *line, char *words, char **argv, int *argc);

#endif
