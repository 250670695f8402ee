/*
 * Inside relay/sessions/: what files.c (the SFTP session, its machines and
 * their grants) and files_transfer.c (each file moved as a `file` channel of
 * the grant, hashed, kept and audited) share (docs/protocol.md §7.16).
 */
#ifndef TL_SESSIONS_FILES_INT_H
#define TL_SESSIONS_FILES_INT_H

#include "relay/sessions/sessions_int.h"
#include "relay/sessions/sftp_server.h"

#include <stdint.h>

/* Tickets one session reaches; the grant each is given for. */
#define FILES_MAX_MACHINES 16u
#define FILES_GRANT_S 3600u
/* Requests of one session waiting on one machine's agent at once, under the agent's own bound
 * (TL_AGENT_MAX_PENDING per connection): more wait on the relay, in order. */
#define MACHINE_MAX_ASKED 16u

enum grant_state {
    GRANT_LOOKUP, /* the ticket and the technician's access to it, on the worker */
    GRANT_ASKING, /* consent asked, answered, or its answer being recorded */
    GRANT_LIVE,
    GRANT_REFUSED, /* no access, no consent, offline: refusal says why */
};

enum request_kind { REQUEST_STAT, REQUEST_LIST, REQUEST_OPEN_READ, REQUEST_OPEN_WRITE };

/* A request on a machine: waiting for its grant, queued, or asked of the agent. */
struct waiting {
    struct waiting *next;
    struct machine *machine;
    tl_agent_link_t *agent; /* while request_id is not 0 */
    uint32_t request_id;
    uint32_t op;
    enum request_kind kind;
    int follow;    /* stat */
    uint32_t file; /* open */
    uint32_t mode; /* open to write */
    char path[TL_SFTP_MAX_PATH + 1];
};

/* A ticket's machine as this session reaches it, and the grant it was given (§7.16 "Grant"). */
struct machine {
    struct machine *next;
    struct files *files;
    int64_t ticket_id;
    char ticket[24];
    enum grant_state state;
    char refusal[1300];
    int want_push; /* the role has files.push: the question asks for pushing too */
    uint32_t duration_s;
    int64_t device_id;
    char device[32];
    tl_agent_link_t *agent; /* consent: while request_id is not 0 */
    uint32_t request_id;
    char grant[40];
    char granted_by[16];
    int64_t expires_ms;
    int push; /* the grant allows pushing */
    struct waiting *waiting, **tail;
    /* Requests asked of the agent, at most MACHINE_MAX_ASKED; the rest queue here in order. */
    struct waiting *asked;
    unsigned asked_count;
    struct waiting *queued, **queued_tail;
};

struct files {
    tl_sessions_t *sessions;
    tl_exec_t *exec;
    tl_technician_t tech;
    char actor[96];
    struct machine *machines;
    uint32_t machine_count;
    int jobs; /* storage jobs in flight: the files are freed after the last */
    int gone; /* the client went away (on_abort) or the channel finished */
    tl_sftp_server_t *server;
    int held;     /* on_input took less than offered: resume once the server takes more */
    int eof;      /* the client's EOF: the channel ends once the replies are out */
    int finished; /* tl_exec_finish() called: freed when the callback returns */
    struct transfer *transfers; /* the files open on machines (files_transfer.c) */
    struct files *next;         /* the sessions' list of SFTP sessions */
};

/* ---- files.c -------------------------------------------------------------------------------- */

/* One line on the client's stderr (ssh shows it, under scp and sftp too), "tierline: ...". */
void tl__files_say(struct files *files, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* At the end of each callback and job: flushes, resumes, ends, frees (files.c). */
void tl__files_settle(struct files *files);

/* ---- files_transfer.c ------------------------------------------------------------------------ */

/*
 * OPEN under the machine's live grant: a `file` channel is opened on the agent's connection;
 * the server's op is answered once the agent confirms or refuses it.
 */
void tl__transfer_open(struct machine *m, uint32_t op, uint32_t file, const char *path, int push);
void tl__transfer_read(struct files *files, uint32_t op, uint32_t file, uint32_t len);
void tl__transfer_write(struct files *files, uint32_t op, uint32_t file, const uint8_t *data,
                        size_t len);
void tl__transfer_close(struct files *files, uint32_t op, uint32_t file, int aborted);
/* The client went away: every transfer ends, written files are dropped on the machines. */
void tl__transfer_abandon_all(struct files *files);
/* The connection is gone: its transfers fail. */
void tl__transfer_agent_closed(struct files *files, tl_agent_link_t *agent);
#endif
