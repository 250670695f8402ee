/*
 * Technicians' sessions on users' machines: the relay's half of
 * docs/protocol.md §7.6-7.9.
 *
 * A session command (diag, run, join, fix, runbooks; docs/technicians.md)
 * arrives here from the command table with its arguments parsed. From then
 * on this module owns it: it finds the live connection of the ticket's
 * device (the find_agent function given to tl_sessions_new; the connection
 * as relay/net/agent_link.h shows it), asks the agent for consent, opens the session
 * channel on that connection and bridges it to the technician's SSH channel
 * (relay/net/exec.h) with flow control both ways, records what happens (ticket
 * timeline and audit log first, then the technician is told), keeps command
 * transcripts, diagnostics and terminal recordings (relay/sessions/recording.h) as
 * evidence on the ticket, and ends the session when the command ends, the
 * technician leaves, the user ends the grant or the agent goes away.
 *
 * Ownership. The exec belongs to the SSH front end, the connection and its
 * mux to relay/net/agent_server.c; a session holds the link only while the connection
 * lives (the agents' side calls tl_sessions_agent_closed() before it goes, through the
 * hooks relay/serve.c gives it), and marks the channels it opened with tl_mux_set_data()
 * so that agent_server.c can route their events here. Everything runs on the loop; disk work goes
 * to the storage worker.
 *
 * The module is one concern per file; relay/sessions/sessions_int.h lists
 * them and holds what they share.
 */
#ifndef TL_SESSIONS_H
#define TL_SESSIONS_H

#include "proto/msg.h"
#include "relay/net/exec.h"
#include "relay/net/agent_link.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/worker.h"

#include <stdint.h>
#include <uv.h>

typedef struct tl_sessions tl_sessions_t;

/* Bounds: sessions at once per agent connection, per technician, on the relay. */
#define TL_SESSIONS_PER_AGENT 16
#define TL_SESSIONS_PER_TECHNICIAN 8
#define TL_SESSIONS_MAX 4096
/* A diagnostics report larger than this is refused. */
#define TL_SESSIONS_MAX_DIAG (64u * 1024u * 1024u)
/* Transcripts keep this much of each of stdout and stderr as text. */
#define TL_SESSIONS_TRANSCRIPT_KEEP (1024u * 1024u)
/* How long the relay waits for a consent answer (the agent's own timeout is shorter). */
#define TL_SESSIONS_CONSENT_WAIT_MS (10u * 60u * 1000u)
/* How long it waits for runbooks.list, and for the agent's CLOSE after its own. */
#define TL_SESSIONS_REQUEST_WAIT_MS 30000u
#define TL_SESSIONS_CLOSE_WAIT_MS 30000u
#define TL_SESSIONS_MAX_REASON 1024
#define TL_SESSIONS_MAX_ARGS 64

enum tl_session_kind {
    TL_SESSION_DIAG,
    TL_SESSION_RUN,
    TL_SESSION_JOIN,
    TL_SESSION_FIX,
    TL_SESSION_RUNBOOKS, /* the catalogue only: no consent, no channel */
};

/* A parsed session command (relay/cmd/sessions.c fills it). */
typedef struct tl_session_request {
    enum tl_session_kind kind;
    int64_t ticket_id;
    char ticket[32]; /* "T-42" */
    int json;
    int observe;         /* join --observe */
    int take;            /* join --take: control of the ticket's live shell (docs/technicians.md) */
    uint32_t duration_s; /* --for; 0: the command's default */
    const char *reason;  /* --reason; NULL: "<command> T-42..." */
    const char *runbook; /* fix */
    /* run: the command and its arguments; fix: NAME=VALUE words. Copied. */
    int argc;
    char **argv;
} tl_session_request_t;

/* The live connection of a device, or NULL when it is offline. */
typedef tl_agent_link_t *(*tl_sessions_find_agent_fn)(void *ctx, int64_t device_id);

/*
 * At relay start (it creates DATA/recordings/). NULL with *err on failure.
 * While sessions exist the module keeps the loop alive, so a shutdown lets
 * them finish recording what they did.
 */
tl_sessions_t *tl_sessions_new(uv_loop_t *loop, tl_worker_t *worker, const char *data_dir,
                               tl_sessions_find_agent_fn find_agent, void *find_ctx, int *err);
/* The audit log's signed checkpoints: each session's end, once on the record, asks for one
 * (relay/store/audit_checkpoint.h). NULL (the default): none is asked for. */
void tl_sessions_set_checkpoints(tl_sessions_t *sessions, tl_audit_checkpoints_t *checkpoints);
/* How long join --take waits for the technician in control to answer before it takes
 * over (with a --reason) or gives up; 0 sets the default. */
#define TL_SESSIONS_TAKE_WAIT_MS 30000u
void tl_sessions_set_take_wait(tl_sessions_t *sessions, uint32_t wait_ms);
/* After the loop has run dry (no session is left then). NULL is a no-op. */
void tl_sessions_free(tl_sessions_t *sessions);
/* Sessions in progress, for logs and tests. */
uint32_t tl_sessions_count(const tl_sessions_t *sessions);

/*
 * Takes over exec (callbacks included) for one session command; the
 * capability of the command itself was checked by the caller. Always
 * answers the technician, now or later, and finishes the exec.
 */
void tl_sessions_start(tl_sessions_t *sessions, tl_exec_t *exec,
                       const tl_session_request_t *request);

/*
 * Takes over exec, an "sftp" subsystem channel (tl_exec_subsystem(); the
 * front end checked files.pull), and serves SFTP on it (docs/protocol.md
 * §7.16) until the client ends it.
 */
void tl_sessions_files_start(tl_sessions_t *sessions, tl_exec_t *exec);
/* Limits on files moved (docs/protocol.md §5): bytes per file (every file is kept as evidence, so
 * at most the evidence store's item limit), files opened per SFTP session; 0 sets the default.
 * Sessions started afterwards use them. */
#define TL_SESSIONS_FILE_MAX_BYTES (64ull * 1024u * 1024u)
#define TL_SESSIONS_FILE_MAX_COUNT 1000u
void tl_sessions_set_file_limits(tl_sessions_t *sessions, uint64_t max_bytes, uint32_t max_count);

/* ---- from relay/net/agent_server.c, through its hooks (relay/net/agent_link.h) ---- */

/* The connection is going: its sessions end ("the machine went offline"). */
void tl_sessions_agent_closed(tl_sessions_t *sessions, tl_agent_link_t *agent);
/* The agent's session.ended notification (docs/protocol.md §7.8); texts are checked here. */
void tl_sessions_grant_ended(tl_sessions_t *sessions, tl_agent_link_t *agent, json_t *body);

/* Events of a channel this module opened; owner is its tl_mux_get_data(). */
void tl_sessions_channel_confirm(void *owner);
void tl_sessions_channel_refuse(void *owner, uint32_t reason, tl_str_t message);
void tl_sessions_channel_data(void *owner, uint8_t stream, const uint8_t *data, size_t len);
void tl_sessions_channel_writable(void *owner);
void tl_sessions_channel_eof(void *owner);
/* CHANNEL_INPUT_ACK: the agent's terminal took the next `bytes` of input, hidden or not. */
void tl_sessions_channel_input_ack(void *owner, uint32_t bytes, int hidden);
void tl_sessions_channel_close(void *owner, const struct tl_msg_channel_close *close);

#endif
