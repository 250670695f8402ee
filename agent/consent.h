/*
 * Consent on the agent: grants, questions to the user, and the unattended
 * policy (docs/consent.md; docs/protocol.md §7.6-7.8).
 *
 * The agent, not the relay, decides what a technician may do here. This
 * module holds that decision:
 *
 *   - a session.request (tl_consent_request) is refused for the roles that
 *     never get a session, answered from a live grant that already covers it
 *     ("existing"), granted by the unattended policy ("policy"), or becomes a
 *     question (Q-N) that waits for the user (tl_consent_approve / _deny)
 *     until the consent timeout;
 *   - every channel the relay opens is checked against its grant
 *     (tl_consent_check): exists, live, same technician, scope granted;
 *   - a grant ends at its expiry (a timer here) or when the user ends it
 *     (tl_consent_end); the owner is told through on_ended so it can stop the
 *     grant's sessions and tell the relay.
 *
 * Grants are kept in STATE/grants.json (mode 0600): written to a temporary
 * file, fsynced, renamed, and the directory fsynced, like the enrollment.
 * The write runs on a storage lane (agent/storage.h), never on the loop: the
 * file always receives the latest state, one write at a time. A new grant
 * is answered only from that write's completion, so the relay and the user
 * hear "granted" only once the grant is on disk; until then the grant does
 * not count (no channel may use it, it is not listed), and if the write
 * fails it is dropped and the request answered EIO. An end takes effect in
 * memory at once and is written the same way. Nothing else in this module
 * touches the disk after start-up.
 *
 * The owner (the `run` command) wires the callbacks: answers go to the
 * tunnel, which sends them to the relay; events go to the control socket's
 * watchers (`tierline-agent attend`).
 */
#ifndef TL_CONSENT_H
#define TL_CONSENT_H

#include "agent/storage.h"
#include "proto/vocab.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#define TL_CONSENT_GRANTS_FILE "grants.json"
#define TL_CONSENT_POLICY_FILE "policy.json"

#define TL_CONSENT_DEFAULT_TIMEOUT_MS (120u * 1000u)
#define TL_CONSENT_MIN_TIMEOUT_MS 1000u
#define TL_CONSENT_MAX_TIMEOUT_MS (86400u * 1000u)
/* Questions waiting at once; more requests are refused with TL_EFULL. */
#define TL_CONSENT_MAX_PENDING 16
/* Live grants at once; more are refused with TL_EFULL. */
#define TL_CONSENT_MAX_LIVE 64
/* Records kept in grants.json (live and ended); the oldest ended go first. */
#define TL_CONSENT_MAX_RECORDS 256
/* Ended and expired grants are kept this long as a local record. */
#define TL_CONSENT_KEEP_MS (7LL * 86400 * 1000)
/* session.request limits (docs/protocol.md §7.6). */
#define TL_CONSENT_MIN_DURATION_S 60u
#define TL_CONSENT_MAX_DURATION_S 86400u
#define TL_CONSENT_DEFAULT_MAX_DURATION_S 3600u
#define TL_CONSENT_MAX_NAME 64
#define TL_CONSENT_MAX_REASON 1024
/* Rules in a policy file. */
#define TL_POLICY_MAX_RULES 64
/* Entries of one rule's "commands" allow-list, and bytes of each. */
#define TL_POLICY_MAX_COMMANDS 64
#define TL_POLICY_MAX_COMMAND_BYTES 256
/* Bytes of a command line as a question shows it (escaped); longer ones end with "…". */
#define TL_CONSENT_MAX_COMMAND_TEXT 4096

/* Scopes, as bits, and their names: enum tl_scope, tl_scope_bit, tl_scope_name (proto/vocab.h). */
/* The scopes in a set as a JSON array of names, in a fixed order; new reference. */
json_t *tl_scope_names(unsigned scopes);
/* The scopes as "diag, exec" into out. */
void tl_scope_text(unsigned scopes, char *out, size_t size);
/* The scope a channel type needs (exec, shell, observe, diag; runbook needs fix); 0 if unknown. */
unsigned tl_scope_for_channel(const char *type);

/* "1h0m", "5m0s", "45s": how questions and listings show a duration. */
void tl_consent_duration_text(uint64_t seconds, char *out, size_t size);

/* ---- session.request -------------------------------------------------------- */

typedef struct tl_consent_request {
    char ticket[TL_CONSENT_MAX_NAME + 1];
    char technician[TL_CONSENT_MAX_NAME + 1];
    char role[16];
    unsigned scopes;
    char reason[TL_CONSENT_MAX_REASON + 1];
    uint32_t duration_s;
    /*
     * A fix that names its runbook: {"name":..., "args":{...}} as asked, and
     * once checked against the catalogue what the question shows (the
     * tunnel replaces it: tl_sessions_runbook_preview). NULL otherwise. The
     * request holds a reference (tl_consent_request_clear); a question takes
     * its own.
     */
    json_t *runbook;
    /* files: copying to the machine is asked too ("push":true; docs/consent.md "Files"). */
    bool push;
} tl_consent_request_t;

/*
 * Validates a session.request body (protocol.md §7.6) into out. TL_EINVAL
 * with a one-line message naming the bad member. The names (ticket,
 * technician) may hold no control characters; the reason may hold any text
 * but NUL: it is kept as it came and shown escaped (proto/text.h). A
 * "runbook" member needs the fix scope. Release with tl_consent_request_clear.
 */
int tl_consent_request_parse(json_t *body, tl_consent_request_t *out, char *message, size_t size);
/* Drops the request's reference to its runbook; the rest needs no release. */
void tl_consent_request_clear(tl_consent_request_t *request);

/* ---- unattended policy --------------------------------------------------------- */

typedef struct tl_policy tl_policy_t;

/*
 * Parses a policy document (docs/consent.md "Unattended policy"). NULL with
 * TL_EINVAL in *err and the problem in problem ("unattended[0].days[2]:
 * unknown day 'fr'") when it does not parse or names an unknown role, scope,
 * day or member.
 */
tl_policy_t *tl_policy_parse(const char *text, size_t len, int *err, char *problem, size_t size);
/* Reads and parses path; -ENOENT in *err when there is no such file. */
tl_policy_t *tl_policy_load(const char *path, int *err, char *problem, size_t size);
void tl_policy_free(tl_policy_t *policy);
/*
 * 0 and the duration to grant (asked, at most the rule's max_duration) when
 * a rule lists role and every scope and local is inside its window;
 * TL_EDENIED otherwise.
 */
int tl_policy_match(const tl_policy_t *policy, const char *role, unsigned scopes,
                    const struct tm *local, uint32_t asked_s, uint32_t *granted_s);
/*
 * As tl_policy_match, and *each is 1 when the rule that matched allows
 * commands one by one (it has a "commands" list), 0 otherwise.
 */
int tl_policy_decide(const tl_policy_t *policy, const char *role, unsigned scopes,
                     const struct tm *local, uint32_t asked_s, uint32_t *granted_s, int *each);
/*
 * Under a grant the policy gave command by command: 0 when the rule that
 * matches role and scopes at local lists command ("df", "/usr/bin/journalctl"
 * or "runbook:NAME"), exactly; TL_EDENIED otherwise (no rule matches now, the
 * rule has no list, or the command is not in it).
 */
int tl_policy_command_allowed(const tl_policy_t *policy, const char *role, unsigned scopes,
                              const struct tm *local, const char *command);
/* The file's consent_timeout, 0 when it sets none. */
uint64_t tl_policy_consent_timeout_ms(const tl_policy_t *policy);

/* ---- grants and questions ------------------------------------------------------- */

typedef struct tl_grant {
    char id[24]; /* "G-3" */
    char ticket[TL_CONSENT_MAX_NAME + 1];
    char technician[TL_CONSENT_MAX_NAME + 1];
    char role[16];
    unsigned scopes;
    char reason[TL_CONSENT_MAX_REASON + 1];
    char by[8]; /* "user" or "policy" */
    int64_t granted_ms;
    int64_t expires_ms;
    int64_t ended_ms; /* 0 unless ended early */
    char end_reason[128];
    /* Every exec and runbook channel under it waits for its own yes (docs/consent.md). */
    bool each_command;
    /* Ends when the last shell opened under it ends (a user's shell grant, unless kept). */
    bool ends_with_shell;
    /* files: copying to the machine is allowed too, not only from it (the user said so). */
    bool push;
} tl_grant_t;

typedef struct tl_consent tl_consent_t;

typedef struct tl_consent_answer {
    int error;               /* 0 granted; TL_EDENIED, TL_ETIMEOUT, TL_EINVAL, TL_EFULL, TL_EIO */
    const char *message;     /* why, for an error */
    const tl_grant_t *grant; /* when granted; valid during the call */
    const char *by;          /* "user", "policy" or "existing" when granted */
} tl_consent_answer_t;

typedef struct tl_consent_events {
    /*
     * The answer to the request made with token. It may run before
     * tl_consent_request returns (refused, existing); a new grant (policy,
     * user) is answered once it is on disk. A request dropped with
     * tl_consent_cancel before it was granted gets no answer.
     */
    void (*on_answer)(void *data, uint64_t token, const tl_consent_answer_t *answer);
    /* A grant ended (reason "expired", "ended by the user"): stop its sessions, tell the relay. */
    void (*on_ended)(void *data, const tl_grant_t *grant, const char *reason);
    /*
     * Something the user may watch: {"event":"question"|"granted"|"denied"|
     * "ended"|"command", ...}; borrowed for the call.
     */
    void (*on_event)(void *data, json_t *event);
    /*
     * The decision on one command asked with tl_consent_ask_command: error 0
     * (run it), TL_EDENIED (declined) or TL_ETIMEOUT (nobody answered); by is
     * "user" or "policy". Not called for a command dropped with
     * tl_consent_cancel_command.
     */
    void (*on_command)(void *data, uint64_t token, const tl_consent_answer_t *answer);
} tl_consent_events_t;

typedef struct tl_consent_config {
    const char *state_dir;
    tl_policy_t *policy;     /* taken over (freed with the consent); NULL: no unattended grants */
    uint64_t timeout_ms;     /* 0: the policy's consent_timeout, else 120 s */
    int64_t (*now_ms)(void); /* wall clock; NULL: tl_wall_ms (tests set their own) */
    /* The lane grants.json is written on (not taken over); NULL: a lane of its own. */
    tl_storage_t *storage;
} tl_consent_config_t;

/*
 * Loads STATE/grants.json (a missing file is an empty one) and arms the
 * expiry timer. NULL with *err and the problem (naming the file) in problem
 * when the file is damaged; config->policy is freed then too.
 */
tl_consent_t *tl_consent_new(uv_loop_t *loop, const tl_consent_config_t *config,
                             const tl_consent_events_t *events, void *data, int *err, char *problem,
                             size_t size);
/*
 * Drops every question unanswered; grants.json writes already asked for
 * still finish (without answers), then the memory is released from the
 * loop. NULL is a no-op.
 */
void tl_consent_free(tl_consent_t *consent);

uint64_t tl_consent_timeout_ms(const tl_consent_t *consent);
/* 1 while a write of grants.json is due or in flight (an end is on disk once this is 0). */
int tl_consent_writing(const tl_consent_t *consent);

/* Decides a validated request; the answer comes through on_answer with token. */
void tl_consent_request(tl_consent_t *consent, const tl_consent_request_t *request, uint64_t token);
/* Drops the question asked with token, without an answer; TL_ENOTFOUND if none. */
int tl_consent_cancel(tl_consent_t *consent, uint64_t token, const char *why);
/* Drops every question (the connection that asked them is gone). */
void tl_consent_cancel_all(tl_consent_t *consent, const char *why);

/* How an approval ended: 0 and the grant (valid during the call), or an error and why. */
typedef void (*tl_consent_approved_fn)(void *data, int error, const tl_grant_t *grant,
                                       const char *message);

/* How the user answered yes (tl_consent_approve): plain yes, or with one of these. */
#define TL_CONSENT_EACH 1u      /* ask again for every command (exec, fix) */
#define TL_CONSENT_KEEP 2u      /* a shell grant stays for its time after its shell ends */
#define TL_CONSENT_PULL_ONLY 4u /* files asked with push: copying from the machine only */

/*
 * The user answers question id ("Q-7"). approve: duration_s 0 grants what
 * was asked; a shorter one shortens it; a longer one is TL_EINVAL. Both:
 * TL_ENOTFOUND for no such question; a message says why on error.
 * approve returns 0 once the question is settled in favour; the grant is
 * then being recorded, and done (may be NULL) runs exactly once: when it is
 * on disk (error 0) or could not be recorded (TL_EIO), just after the
 * relay's answer went out, or with TL_ECLOSED from tl_consent_free.
 */
int tl_consent_approve(tl_consent_t *consent, const char *id, uint32_t duration_s, unsigned how,
                       tl_consent_approved_fn done, void *done_data, char *message, size_t size);
int tl_consent_deny(tl_consent_t *consent, const char *id, char *message, size_t size);

/*
 * Ends grant id, or every live grant when id is NULL, with reason; each
 * ended grant goes through on_ended. *count gets how many. TL_ENOTFOUND
 * when id names no live grant.
 */
int tl_consent_end(tl_consent_t *consent, const char *id, const char *reason, size_t *count,
                   char *message, size_t size);

/*
 * May a channel of type be opened under grant id for technician? 0 and
 * *grant when the grant exists, is live, is the technician's and holds the
 * type's scope; otherwise TL_EDENIED (TL_EINVAL for an unknown type) with a
 * message naming the check that failed.
 */
int tl_consent_check(const tl_consent_t *consent, const char *id, const char *technician,
                     const char *type, const tl_grant_t **grant, char *message, size_t size);

/* The same checks for what needs one scope (a bit of enum tl_scope) without a channel: files. */
int tl_consent_check_scope(const tl_consent_t *consent, const char *id, const char *technician,
                           unsigned scope, const tl_grant_t **grant, char *message, size_t size);

/*
 * A channel of type (exec or runbook) under grant, which asks for every
 * command: what (the exec's argv, or the runbook's {"name","args"}) is put
 * to the user as a question with the exact command line, or decided by the
 * policy's "commands" list for a policy grant. 0 with *asked 0 and *allowed
 * when decided at once (a policy grant: 1 allowed, 0 not, with message);
 * 0 with *asked 1 when a question waits and on_command will answer token;
 * TL_EFULL (too many questions) or TL_ENOMEM with message otherwise.
 */
int tl_consent_ask_command(tl_consent_t *consent, const tl_grant_t *grant, const char *type,
                           json_t *what, uint64_t token, int *asked, int *allowed, char *message,
                           size_t size);
/* Drops the command question asked with token, without an answer; TL_ENOTFOUND if none. */
int tl_consent_cancel_command(tl_consent_t *consent, uint64_t token, const char *why);

/*
 * A command line as a question shows it: each argument in double quotes,
 * with a backslash or quote inside it shown as \\ or \", and control
 * characters and everything else proto/text.h escapes shown escaped (\x1b,
 * \n), so spaces, quotes and terminal escapes in the technician's words are
 * visible and cannot act on the user's terminal. argv is a JSON array of
 * strings; at most size bytes, cut with "…".
 */
void tl_consent_command_text(json_t *argv, char *out, size_t size);

/* A live grant by id (recorded on disk), else NULL. */
const tl_grant_t *tl_consent_find(const tl_consent_t *consent, const char *id);

/*
 * The open questions: [{"id":"Q-7","ticket":...,"deadline_ms":...}], with
 * "runbook" for a fix that names one; new reference.
 */
json_t *tl_consent_pending(const tl_consent_t *consent);
/* Every grant kept (on disk), live ones first (newest first in each part); new reference. */
json_t *tl_consent_grants(const tl_consent_t *consent);
/* One grant as JSON, with "live" and "state" (live, ended, expired) at now_ms; new reference. */
json_t *tl_grant_json(const tl_grant_t *grant, int64_t now_ms);

#endif
