/*
 * Inside relay/sessions/: what the files of the sessions module share. Not
 * for use outside this folder (relay/sessions/sessions.h is the interface).
 * Names shared between these files start with tl__, as libuv's uv__ do.
 *
 *   sessions.c    the table of sessions, start, lookup, the phase machine's
 *                 end (conclude, final answer), the agent going away
 *   jobs.c        storage jobs of a session and the timeline and audit
 *                 entries they write; what those entries say
 *   catalogue.c   runbooks.list: the catalogue printed, fix arguments checked
 *   consent.c     session.request and its answer; session.ended (grant ended)
 *   bridge.c      the session channel and the technician's exec bridged, flow
 *                 control both ways, join and observe
 *   control.c     join --take: hand-over of control of a shell between technicians
 *   transcript.c  command and runbook transcripts, the diagnostics report
 *   evidence.c    naming and adding evidence, the terminal recording of a join
 *   files.c       the "sftp" subsystem: the SFTP server (sftp_server.c) on the
 *                 technician's exec, the machines it reaches and their grants
 *   files_transfer.c  each file moved: a `file` channel, hashed, kept, audited
 *                 (files_int.h is what the two share)
 *
 * Everything here runs on the loop except what the comments mark "worker".
 */
#ifndef TL_SESSIONS_INT_H
#define TL_SESSIONS_INT_H

#include "proto/buf.h"
#include "proto/hash.h"
#include "proto/vocab.h"
#include "relay/sessions/recording.h"
#include "relay/sessions/sessions.h"
#include "relay/store/evidence.h"
#include "relay/store/worker.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum phase {
    PHASE_LOOKUP,
    PHASE_CATALOGUE,
    PHASE_ASK,
    PHASE_CONSENT,
    PHASE_GRANTED,
    PHASE_CHANNEL,
    PHASE_FINAL,
    PHASE_DONE,
};

enum channel_state {
    CHANNEL_NONE,    /* never opened */
    CHANNEL_OPENING, /* OPEN sent, no CONFIRM yet */
    CHANNEL_OPEN,
    CHANNEL_CLOSING, /* our CLOSE sent, waiting for the agent's */
    CHANNEL_GONE,    /* both CLOSEs, refused, or the connection ended */
};

/* One output stream kept for a transcript: the first bytes, and the hash and size of all. */
struct capture {
    tl_buf_t *kept; /* at most TL_SESSIONS_TRANSCRIPT_KEEP bytes; NULL until the first */
    uint64_t total;
    tl_sha256_t *hash;
};

/*
 * What owns a channel on an agent's mux (tl_mux_set_data): the first member of each owner, so
 * that bridge.c routes the channel's events to a session or to a file being moved.
 */
enum tl__owner_kind { TL__OWNER_SESSION = 0, TL__OWNER_FILE };

struct files;

struct tl_sessions {
    uv_loop_t *loop;
    tl_worker_t *worker;
    char recordings_dir[4096];
    tl_sessions_find_agent_fn find_agent;
    void *find_ctx;
    uv_async_t keepalive;                /* referenced while sessions exist */
    tl_audit_checkpoints_t *checkpoints; /* NULL: no checkpoint at a session's end */
    struct session *head;
    uint32_t count;
    uint32_t recording_serial;
    unsigned grant_jobs;
    uint32_t take_wait_ms;   /* join --take: how long the one in control has to answer */
    struct files *files;     /* SFTP sessions (files.c) */
    uint64_t file_max_bytes; /* per file moved; 0: TL_SESSIONS_FILE_MAX_BYTES */
    uint32_t file_max_count; /* files opened per SFTP session; 0: TL_SESSIONS_FILE_MAX_COUNT */
};

struct session {
    enum tl__owner_kind owner_kind; /* TL__OWNER_SESSION (calloc): first, see above */
    tl_sessions_t *sessions;
    struct session *prev, *next;
    uv_timer_t timer; /* the agent's CLOSE deadline; the session is freed in its close callback */
    tl_exec_t *exec;  /* NULL once the technician has left or been answered */
    tl_agent_link_t *agent; /* NULL until found, and once the connection is gone */
    enum tl_session_kind kind;
    enum phase phase;
    int observe, json, role;
    tl_technician_t tech;
    char actor[96];
    int64_t ticket_id, device_id;
    char ticket[32], device[32];
    char reason[TL_SESSIONS_MAX_REASON + 1];
    uint32_t duration_s;
    json_t *argv;         /* run: the command */
    char runbook[64];     /* fix */
    json_t *runbook_args; /* fix: {NAME: VALUE} */
    unsigned jobs;        /* storage jobs in flight */
    /* consent */
    uint32_t request_id; /* a request waiting on the agent, 0 if none */
    char grant[40];
    int64_t expires_ms;
    char granted_by[16];
    /* channel */
    enum channel_state channel_state;
    uint32_t channel;
    uint32_t agent_channel;
    size_t held; /* agent bytes handed to the exec and not yet reported consumed */
    unsigned input_blocked : 1;
    unsigned input_eof : 1;
    unsigned eof_sent : 1;
    unsigned raw : 1;
    unsigned started : 1; /* session.start recorded */
    unsigned recording_pending : 1;
    unsigned resize_pending : 1;
    unsigned terminal : 1; /* the agent runs it on a terminal: a shell, or run with ssh -t */
    /* The agent acknowledges what its terminal took (CHANNEL_INPUT_ACK): the
     * technician's input is held by the recording until it says, hidden or not. */
    unsigned hold_input : 1;
    /*
     * The outcome. The final job reads these on the worker thread, so from
     * tl__session_conclude() on the loop leaves them alone (and they are no bit-fields,
     * which would share memory with fields the loop still writes).
     */
    int finished; /* the agent's CLOSE carried an exit status or signal */
    int left_by_technician;
    int exit_status;
    char exit_signal[65];
    char end_message[1200]; /* why it ended early, for the technician; "" if it did not */
    char end_cause[32];     /* the same, for the record: "machine", "offline", ... */
    /* The grant ended while the final job ran: told, not recorded (loop only). */
    char late_end_message[1200];
    int late_unfinished;
    int64_t started_ms, ended_ms;
    /* run, fix */
    struct capture out, err;
    json_t *signals; /* [{"at_ms":..., "signal":"INT"}] the technician sent; NULL if none */
    /* diag */
    tl_evidence_writer_t *writer; /* worker thread only */
    int writer_failed;            /* worker thread only until the final job is done */
    uint64_t diag_bytes;
    int diag_error; /* why the report was not kept; 0 if it is fine */
    /* join */
    tl_recording_t *recording;
    char recording_name[160];
    char recording_path[4400];
    int recording_status;
    char recording_hash[TL_SHA256_HEX_LEN];
    uint64_t recording_size;
    /* diag: identical diagnostics taken within the day (repeat.c); the lookup job writes */
    int repeat_found;
    int64_t repeat_ms;
    char repeat_hash[TL_SHA256_HEX_LEN];
    char repeat_name[256];
    char repeat_by[96];
    char repeat_ticket[32];
    /* asked command by command (docs/consent.md): "allowed", "declined", "unanswered"; "" if not */
    char command_decision[16];
    char command_by[16];
    int each_command; /* the grant said it asks for each command */
    /*
     * join --take and the hand-over of control (control.c). A taker is attached
     * to the session that owns the shell's channel (its owner): it sees the
     * shell's output, and its keystrokes reach the shell while it is in control.
     */
    int take;                      /* join --take */
    int reason_given;              /* --reason was given: a take-over may be forced */
    struct session *owner;         /* attached: the session whose shell it joined */
    struct session *attached;      /* owner: the sessions attached to its shell, newest first */
    struct session *attached_next; /* attached: the next one of its owner's */
    struct session *control;       /* owner: the attached session in control; NULL: the owner */
    struct session *asking;        /* owner: the take-over waiting for an answer; NULL: none */
    int line_start;                /* owner: the last byte typed into the shell ended a line */
    int escape_held;               /* owner: a '~' typed at a line's start is held */
    int handing;                   /* attached: its take-over is being recorded */
    uint64_t dropped;              /* attached, or an owner not in control: output not shown */
    /* the evidence the session produced */
    char evidence_hash[TL_SHA256_HEX_LEN];
    char evidence_name[160];
    uint64_t evidence_size;
};

/* A storage job for a session: its own work, then the entries it records. */
struct sjob {
    tl_job_t job;
    struct session *session;
    int (*work)(struct sjob *job, tl_job_ctx_t *ctx); /* may be NULL */
    void (*then)(struct session *session, struct sjob *job, int status);
    json_t *records; /* [{"event":..., "audit":..., "actor":..., "details":{...}}] */
    /* lookup */
    int64_t device_id;
    int64_t access_until; /* a vendor's binding to the ticket ends then (ms); 0: no end */
    char message[256];
    /* diag chunks */
    uint8_t *data;
    size_t len;
    int keep; /* diag final: commit (1) or drop (0) */
    /* grant ended, a command's consent (no session) */
    tl_sessions_t *sessions;
    int64_t agent_device;
    int64_t ticket_id;
    char ticket[32];
    char grant[40];
    int command;      /* a command's consent, not a grant's end */
    uint32_t channel; /* a command's: the relay's id of its channel */
    int allowed;      /* a command's: the agent let it run */
    int forced;       /* session.control: taken without an answer */
};

/* ---- sessions.c ----------------------------------------------------------------------------- */

/* Text from the agent as the technician is shown it: one line, escaped, bounded. */
void tl__sessions_clean_line(char *out, size_t size, const uint8_t *in, size_t len);
void tl__sessions_clean_text(char *out, size_t size, const char *text);
/* "2026-11-23T19:04:05.123Z" */
void tl__sessions_iso_time(int64_t ms, char out[32]);
/* The channel type of a session kind ("exec", "shell", ...). */
/* The channel a session opens on the agent (proto/vocab.h); TL_CHANNEL_UNKNOWN for the
 * catalogue, which opens none. */
enum tl_channel_type tl__session_channel(enum tl_session_kind kind, int observe);
/* Its channel type's name, "runbooks" for the catalogue: logs and the session's kind. */
const char *tl__session_kind_name(enum tl_session_kind kind, int observe);

/* One line on the technician's stderr, "tierline: ...". */
void tl__session_say(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Who asks to act on which ticket, for tl__ticket_access. */
struct ticket_access {
    const tl_technician_t *tech;
    const char *actor; /* "tech:alice" */
    int64_t ticket_id;
    const char *ticket;  /* "T-42" */
    const char *command; /* what is asked, for an access.denied entry: "exec", "files" */
    int active;          /* the ticket must be active (every session but the catalogue) */
};
/*
 * Worker: may the technician act on the ticket, as every session checks it: a vendor only on a
 * ticket bound to the account (a refusal audited as access.denied), an active ticket. 0 with
 * *device_id and *access_until (a vendor's binding ends then; 0: no end), or 0 with a sentence in
 * message (no such ticket, not active); the storage's error otherwise.
 */
int tl__ticket_access(tl_job_ctx_t *ctx, const struct ticket_access *access, int64_t *device_id,
                      int64_t *access_until, char *message, size_t size);
/* The session is answered: the exec ends with code. */
void tl__session_finish(struct session *s, int code);
/* Told, then finished with 1. */
void tl__session_fail(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ends early, for a reason told when the session is concluded; the first reason wins. */
void tl__session_set_end(struct session *s, const char *cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Frees the session once it has answered and nothing of it is in flight. */
void tl__session_maybe_release(struct session *s);
/* The channel is gone or never opened: keep the evidence, record the end, then answer. */
void tl__session_conclude(struct session *s);
/* The final job is done: the technician is told and the exec ends. */
void tl__session_final_done(struct session *s, struct sjob *job, int status);

/* ---- files.c -------------------------------------------------------------------------------- */

/* The connection is going: the files being moved over it fail. */
void tl__files_agent_closed(tl_sessions_t *sessions, tl_agent_link_t *agent);
/* Events of a file's channel (files_transfer.c): bridge.c routes them there for an owner of
 * kind TL__OWNER_FILE. */
void tl__transfer_confirm(void *owner);
void tl__transfer_refuse(void *owner, uint32_t reason, tl_str_t message);
void tl__transfer_data(void *owner, const uint8_t *data, size_t len);
void tl__transfer_writable(void *owner);
void tl__transfer_channel_close(void *owner, const struct tl_msg_channel_close *close);

/* ---- jobs.c --------------------------------------------------------------------------------- */

struct sjob *tl__sjob_new(struct session *s, int (*work)(struct sjob *, tl_job_ctx_t *),
                          void (*then)(struct session *, struct sjob *, int));
void tl__sjob_free(struct sjob *job);
/* Adds an entry for the ticket's timeline (event) and the audit log (action). details is taken. */
void tl__sjob_record(struct sjob *job, const char *event, const char *action, json_t *details);
void tl__sjob_submit(struct session *s, struct sjob *job);
/* Worker: writes the job's entries as actor (a technician of role; NULL: not one) on ticket_id. */
int tl__sjob_write_records(struct sjob *job, tl_job_ctx_t *ctx, const char *actor, const char *role,
                           int64_t ticket_id);
/* Records entries and then continues with then (NULL: nothing but the record). */
void tl__session_record(struct session *s, const char *event, const char *action, json_t *details,
                        void (*then)(struct session *, struct sjob *, int));
/* What the session does, for session.start; with how it ended, for session.end. */
json_t *tl__session_details(const struct session *s);
json_t *tl__session_end_details(const struct session *s);
/* The timeline kind of a session's end. */
const char *tl__session_end_event(const struct session *s);

/* ---- catalogue.c, consent.c, bridge.c ------------------------------------------------------- */

/* fix, runbooks: asks the agent for runbooks.list; the answer goes on from there. */
void tl__session_request_catalogue(struct session *s);
/* Records "consent asked", then sends session.request. */
void tl__session_ask_consent(struct session *s);
/* The technician left while the user was being asked: the question is withdrawn and recorded. */
void tl__session_withdraw_consent(struct session *s);
/* The latest grant expiry the relay takes (9999-12-31T23:59:59.999Z): a date it can write. */
#define TL__EXPIRES_MS_MAX INT64_C(253402300799999)
/* Withdraws a question the agent may still be asking (docs/protocol.md §7.6). */
void tl__consent_send_cancel(tl_agent_link_t *agent, uint32_t request_id);
/* A refused session.request's answer: the error's name (cleaned) and a line for the
 * technician ("the user declined", "nobody answered on the machine", ...). */
void tl__consent_refusal(json_t *result, char *error, size_t error_size, char *line, size_t size);
/* A grant id as the agent may answer one: 1..32 of [A-Za-z0-9._-], not starting with . or -. */
int tl__grant_id_valid(const char *id);
/* A granted session.request's answer: its grant id, expiry and "by" ("?" for an unknown one);
 * TL_EPROTO when the grant or its expiry is malformed. */
int tl__grant_answer_parse(json_t *result, char *grant, size_t grant_size, int64_t *expires_ms,
                           char *by, size_t by_size);
/* Granted and recorded: opens the session channel on the agent's connection. */
void tl__session_open_channel(struct session *s);
/* Asks the agent to end the channel; its CLOSE concludes. */
void tl__session_end_channel(struct session *s);
/* What the technician's exec does to the session. */
extern const tl_exec_callbacks_t tl__session_exec_callbacks;

/* ---- control.c ------------------------------------------------------------------------------ */

/* join --take: NULL when the ticket has a live shell the taker may ask for, else why not. */
const char *tl__session_take_refusal(struct session *taker, char *why, size_t size);
/* join --take, granted and recorded: attaches to the shell and asks the one in control. */
void tl__session_take_attach(struct session *taker);
/* The session whose keystrokes reach the shell of owner. */
struct session *tl__session_controller(struct session *owner);
/* Keystrokes of the one in control (ctl) for owner's shell: the ~y / ~n answers taken out. */
size_t tl__session_control_input(struct session *owner, struct session *ctl, const uint8_t *bytes,
                                 size_t len);
/* The shell's output for the sessions attached to owner (each drops what it has no room for). */
void tl__session_control_output(struct session *owner, uint8_t stream, const uint8_t *data,
                                size_t len);
/* A session concludes: an owner ends its attached sessions, an attached one leaves its owner. */
void tl__session_control_detach(struct session *s);

/* ---- bridge.c (for control.c) ---------------------------------------------------------------- */

/* Keystrokes into owner's shell channel on behalf of writer (whose input waits when full). */
size_t tl__session_shell_write(struct session *owner, struct session *writer, const uint8_t *bytes,
                               size_t len);
/* The terminal size of owner's controller, to the agent. */
void tl__session_send_resize(struct session *owner);

/* ---- transcript.c --------------------------------------------------------------------------- */

/* One output stream into a transcript's capture. */
void tl__capture(struct capture *c, const uint8_t *data, size_t len);
void tl__capture_free(struct capture *c);
/* diag: a chunk of the report, written by the worker before the agent may send more. */
void tl__session_diag_data(struct session *s, const uint8_t *data, size_t len);
/* Worker: the run/fix transcript, the diagnostics report, stored as evidence. */
int tl__session_work_transcript(struct sjob *job, tl_job_ctx_t *ctx);
int tl__session_work_diag_final(struct sjob *job, tl_job_ctx_t *ctx);

/* ---- repeat.c ------------------------------------------------------------------------------ */

/* Worker, looking up a diag: the device's latest identical diagnostics (relay/desk/repeats.h). */
int tl__session_find_repeat(struct session *s, tl_job_ctx_t *ctx, int64_t device_id);
/* Before the user is asked: the technician is warned and shown the earlier result. */
void tl__session_warn_repeat(struct session *s);
/* diag --json: the earlier result as an object, or null. */
json_t *tl__session_repeat_json(const struct session *s);

/* ---- evidence.c ----------------------------------------------------------------------------- */

/* Worker: names the session's evidence once its hash is known, and adds it to the ticket. */
void tl__session_name_evidence(struct sjob *job, const char *kind, const char *what,
                               const char *extension);
int tl__session_add_evidence(struct sjob *job, tl_job_ctx_t *ctx, const char *kind,
                             const char *action);
/* join: opens the recording file (set_end on failure); tl_recording_finish reports here. */
void tl__session_recording_open(struct session *s);
void tl__session_recording_done(void *data, int status, const char *sha256, uint64_t size);

#endif
