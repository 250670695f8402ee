/*
 * Inside the technicians' commands (relay/cmd/commands.h): what the files
 * of relay/cmd share. Each command is one table entry (struct tl__command)
 * in the file of its group: tickets.c, evidence.c, sessions.c (diag, run,
 * join, fix, runbooks) and help.c (help, whoami, and every --help); table.c
 * lists them in the order `help` shows; dispatch.c finds the entry, checks
 * the role, parses the words with the entry's spec (proto/cli.h) into a
 * struct cmd and runs the command: its work on the storage thread, or the
 * session module (relay/sessions/sessions.h) for the session commands.
 */
#ifndef TL_CMD_INT_H
#define TL_CMD_INT_H

#include "proto/cli.h"
#include "relay/cmd/commands.h"
#include "relay/cmd/kinds.h"
#include "relay/store/evidence.h"
#include "relay/store/store.h"

#include <stdio.h>

/* Evidence is streamed to the technician in pieces of this size. */
#define TL_EVIDENCE_CHUNK (256u * 1024u)
/* ... after it was read through and checked, this much of it per storage job. */
#define TL_EVIDENCE_VERIFY_STEP (8u * 1024u * 1024u)

struct tl__command;

/* audit prove ENTRY: a leaf index ("41"), or a seq ("seq:42"). */
typedef struct tl__audit_entry_arg {
    uint64_t which;
    int by_seq;
    int given; /* ENTRY was given (audit prove --session takes none) */
} tl__audit_entry_arg_t;

/* One command's state across its storage jobs. */
struct cmd {
    tl_job_t job;
    const struct tl__command *command;
    tl_commands_ctx_t *ctx;
    tl_exec_t *exec; /* NULL once the client went away */
    tl_technician_t tech;
    int role;
    int exit_status;
    /* arguments, where the command's spec puts them */
    int json;
    tl__ticket_arg_t ticket;
    tl_ticket_filter_t filter;
    char status[16];
    tl__assignee_arg_t assignee;
    tl__text_arg_t text;
    char hash[65];
    /* ticket escalate and the problem commands (escalate.c, problems.c) */
    int to_tier;              /* --to: 1..4 */
    const char *reason;       /* --reason */
    tl__ticket_arg_t problem; /* P-N: its number, as typed */
    const char *workaround;   /* --workaround */
    const char *fix;          /* --fix */
    char problem_state[16];   /* problems --state, problem state P-N STATE */
    int denied;               /* worker writes: refused with access.denied kept (exit 77) */
    int hold_off;             /* ticket hold T-N on|off: 1 for off (hold.c) */
    /* ticket vendor, and ticket note --from-vendor (vendor.c) */
    const char *vendor_name, *vendor_case;
    int64_t follow_up_ms; /* 0: none */
    int from_vendor;
    /* the queues (tickets), assignment and classification */
    int unassigned, breaching, follow_up_due;
    char account[65];           /* ticket assign: whom to */
    int64_t since_ms, until_ms; /* report: the period, 0 until given or defaulted */
    int csv;                    /* report --csv */
    int severity;               /* ticket classify --severity: 1..4, 0 if not given */
    const char *category;       /* ticket classify --category, kb --category */
    const char *article_id;     /* kb show ID */
    int kb_draft;               /* ticket resolve --kb */
    int drafts;                 /* kb --drafts */
    /* runbook proposals --state, runbook proposal ID (runbook.c) */
    const char *proposal_state_word; /* as typed; NULL: not given (pending) */
    const char *proposal_state;      /* the store's state; NULL: all */
    int proposal_state_given;
    int64_t proposal_id;
    /* the audit commands (audit.c) */
    const char *audit_session, *audit_actor, *audit_device, *audit_action;
    const char *audit_pattern;         /* audit search --command REGEX */
    uint64_t audit_limit;              /* audit search --limit; 0 until given */
    tl__audit_entry_arg_t audit_entry; /* audit prove ENTRY */
    const char *audit_from;            /* audit verify --from-checkpoint: "-" */
    /* replay SESSION (replay.c) */
    const char *replay_session;
    double replay_speed, replay_idle; /* --speed (1 unless given), --idle-limit (0: none) */
    const char *replay_from, *replay_search;
    int replay_cast, replay_force;
    struct tl_buf *input;      /* what the client sent on stdin, for commands that read it */
    const char *input_too_big; /* the usage error when stdin passes input's bound */
    /* session commands (relay/sessions/sessions.h) */
    tl_session_request_t session;
    tl_cli_words_t words;    /* run: the command; fix: its NAME=VALUE words */
    int capability;          /* what the command needs, with its flags (join --observe) */
    const char *usage_error; /* a line to print before the usage line */
    int usage_error_only;    /* ... and no usage line after it */
    /* output built on the worker */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
    /* evidence streaming */
    tl_evidence_reader_t *reader; /* worker thread only */
    uint8_t *chunk;
    size_t chunk_len;
    int reading_done;  /* worker writes, loop reads after the job */
    int close_reader;  /* loop writes before submitting; worker reads */
    int verifying;     /* worker writes: the item is not checked through yet */
    int refused;       /* worker writes: refused, with its audit entry kept: the exit status (1, or
                          TL_EXIT_DENIED for an authorization matter) */
    int expired;       /* the account expired: refused before anything runs (exit 77) */
    int job_in_flight; /* loop only */
};

typedef int (*tl__cmd_work_fn)(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err);

/* One command. */
struct tl__command {
    const char *name; /* one word, or two for a group's command ("ticket show") */
    const char *usage;
    const char *summary;
    int capability;
    int observe_flag; /* --observe asks for the observe capability instead (join) */
    /* This option, when given, asks for flag_capability instead (ticket resolve --kb). */
    const char *capability_flag;
    int flag_capability;
    /* Its words after the name: options, positionals, their help (proto/cli.h). The result
     * is the struct cmd. */
    tl_cli_spec_t args;
    /* After a good parse, what the arguments make (a filter, a session request); non-zero
     * with usage_error for a usage error. NULL: nothing to do. */
    int (*prepare)(struct cmd *cmd);
    tl__cmd_work_fn work; /* on the storage thread; NULL for session commands */
    /* Takes the command over after a good parse, with its own jobs and answer (ticket export,
     * which streams an archive); NULL: work, or a session. */
    void (*start)(struct cmd *cmd);
    int session_kind;     /* session commands: what relay/sessions/sessions.c runs */
    int checkpoint_after; /* once it succeeded, the audit log gets a checkpoint (ticket close) */
    const char *example;  /* for COMMAND --help: whole command lines */
};

/* --json, which every command takes wherever it stands before a "--"; help NULL: not listed. */
#define TL__CMD_JSON(help_text)                                                                    \
    {                                                                                              \
        .name = "json", .help = (help_text), .flags = TL_CLI_ANYWHERE,                             \
        .out = TL_CLI_AT(struct cmd, json)                                                         \
    }

/* The entries, by group (tickets.c, assign.c, classify.c, devices.c, evidence.c, help.c,
 * sessions.c) ... */
extern const struct tl__command tl__cmd_tickets, tl__cmd_ticket_show, tl__cmd_ticket_note,
    tl__cmd_ticket_resolve, tl__cmd_ticket_reopen, tl__cmd_ticket_close;
extern const struct tl__command tl__cmd_ticket_take, tl__cmd_ticket_assign;
extern const struct tl__command tl__cmd_ticket_classify;
extern const struct tl__command tl__cmd_devices;
/* ask.c */
extern const struct tl__command tl__cmd_ticket_ask;
extern const struct tl__command tl__cmd_evidence, tl__cmd_evidence_get;
extern const struct tl__command tl__cmd_ticket_vendor, tl__cmd_ticket_export;
/* hold.c */
extern const struct tl__command tl__cmd_ticket_hold;
/* ticket show's hold: "hold" added to ticket (null, or since, by, reason) and, when held and out
 * is not NULL, its line ("  hold:     on legal hold since ..."). hold.c. */
void tl__cmd_show_hold(json_t *ticket, FILE *out);
extern const struct tl__command tl__cmd_whoami, tl__cmd_help;
extern const struct tl__command tl__cmd_diag, tl__cmd_run, tl__cmd_join, tl__cmd_fix,
    tl__cmd_runbooks;
extern const struct tl__command tl__cmd_ticket_escalate;
/* report.c */
extern const struct tl__command tl__cmd_report;
extern const struct tl__command tl__cmd_problems, tl__cmd_problem_open, tl__cmd_problem_link,
    tl__cmd_problem_show, tl__cmd_problem_workaround, tl__cmd_problem_state;
/* kb.c */
extern const struct tl__command tl__cmd_kb, tl__cmd_kb_show;
/* audit.c */
extern const struct tl__command tl__cmd_audit_verify, tl__cmd_audit_checkpoint,
    tl__cmd_audit_search, tl__cmd_audit_prove, tl__cmd_audit_export;
/* replay.c */
extern const struct tl__command tl__cmd_replay;
/* web.c */
extern const struct tl__command tl__cmd_web;
/* runbook.c */
extern const struct tl__command tl__cmd_runbook_propose, tl__cmd_runbook_proposals,
    tl__cmd_runbook_proposal;
/* ... and the table of them all, in the order help lists them (table.c). */
extern const struct tl__command *const tl__commands[];
extern const size_t tl__command_count;

/* The entry for argv, two-word names ("ticket show") first; *words says how many it used. */
const struct tl__command *tl__command_lookup(int argc, char **argv, int *words);
/* Whether the role may use the command (join with --observe needs only observe). */
int tl__command_may_use(const struct tl__command *command, int role);

/* A usage error as the technician reads it: "tierline: what", then the usage line. */
void tl__cmd_write_usage_error(FILE *out, const struct tl__command *command,
                               const tl_cli_error_t *error);

/* "tech:NAME", the actor of the command's timeline events and audit entries. */
void tl__cmd_actor(const struct cmd *cmd, char out[96]);
/*
 * Whether the technician may see cmd->ticket (relay/desk/vendor.h): 0, or TL_ENOTFOUND for a
 * vendor's ticket not bound to it, audited as access.denied and kept (cmd->refused) when the
 * work fails with it. relay/cmd/vendor.c.
 */
int tl__cmd_ticket_access(struct cmd *cmd, tl_job_ctx_t *ctx);
/* ticket show's line on the vendor's case, if the ticket has one ("  vendor:   ..."). vendor.c. */
void tl__cmd_print_vendor(FILE *out, json_t *ticket);
/* Leaves out of tickets (a listing's array) those the technician may not see. vendor.c. */
int tl__cmd_ticket_list_access(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *tickets);
/* The command's ticket's own fields, if the technician may see it; "no ticket T-N" (or the
 * store's error) on err otherwise. escalate.c; problems.c uses it too. */
int tl__cmd_load_ticket_row(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, tl_ticket_row_t *ticket);
/* Records a change on the command's ticket: its timeline event and audit entry, as the
 * technician (their role decides whether it is the ticket's first response). */
int tl__cmd_record(struct cmd *cmd, tl_job_ctx_t *ctx, const char *event_kind,
                   const char *audit_action, json_t *details);
/* 0 if the ticket's status takes changes (not resolved or closed); else TL_ESTATE and why on
 * err ("T-1 is resolved; reopen it first (ticket reopen T-1)"). */
int tl__cmd_still_active(struct cmd *cmd, json_t *ticket, FILE *err);
/* Loads a ticket the technician may see; "no ticket T-N" on err otherwise, either way. */
int tl__cmd_load_visible_ticket(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *err, json_t **ticket);
/* ticket resolve --kb: the draft article from the ticket just resolved, stored with its audit
 * entry in the same job; what it did on out. kb_draft.c. */
int tl__cmd_kb_draft(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err);
/* Ends exec with what text holds (open_memstream over *bytes): on stdout if status is 0. */
void tl__cmd_finish_with(tl_exec_t *exec, FILE *text, char **bytes, size_t *len, int status);
void tl__cmd_free(struct cmd *cmd);

/*
 * ticket show's first lines (escalate.c): the ticket's known problem, or the open problems it
 * is offered, and its latest escalation summary, added to ticket as "problem",
 * "problem_offers" and "escalation"; printed on first as readable text unless it is NULL.
 */
int tl__cmd_show_desk(struct cmd *cmd, tl_job_ctx_t *ctx, json_t *ticket, FILE *first, FILE *err);

/* The work of a job (run_work's caller resubmits for each verification step). */
void tl__cmd_submit_work(struct cmd *cmd);
/* For a command that takes a document on stdin: keeps up to max bytes in cmd->input, then
 * submits the work at the client's EOF; more than max is the usage error too_big, and nothing
 * runs. On failure here, the exec is finished and cmd freed. */
void tl__cmd_read_stdin(struct cmd *cmd, size_t max, const char *too_big);
/* Evidence streaming (evidence.c): the next chunk, or closing the reader on the worker. */
void tl__cmd_stream_next(struct cmd *cmd);

/* COMMAND --help, and a group's listing ("ticket", "ticket --help"): help.c. The group
 * answer returns 0 when argv names no group (nothing written). */
void tl__cmd_answer_help(tl_exec_t *exec, const struct tl__command *command, int role);
int tl__cmd_answer_group(tl_exec_t *exec, int argc, char **argv);

#endif
