/*
 * The "already tried" summary of a ticket (docs/desk.md "Escalation"): what the earlier tiers
 * and the user did about it, so that the next tier never asks again. It is built from what the
 * relay recorded — the ticket's timeline, which is written with the audit log in one unit
 * (relay/desk/timeline.h), and its evidence rows — never typed by anyone: the diagnostics taken,
 * every command and runbook run with its exit status and transcript, every shell session with
 * its recording, the self-help articles the user was shown and applied, the technicians' notes
 * and the user's own words.
 *
 * `ticket escalate` freezes one at each move between tiers: its canonical JSON and that text's
 * SHA-256 are kept with the escalation (relay/store/store.h), and `ticket show` renders the
 * latest as readable, escaped text.
 *
 * Pure: rows in, a summary out; no I/O, no store, no clock. The same rows give the same
 * canonical text, byte for byte.
 */
#ifndef TL_SUMMARY_H
#define TL_SUMMARY_H

#include "proto/buf.h"
#include "proto/hash.h"
#include "relay/store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The form of the canonical JSON ("version"); a change to it is a new number. */
#define TL_SUMMARY_VERSION 1
/* Rows kept per section: the latest ones; the others are counted in "omitted". */
#define TL_SUMMARY_SECTION_MAX 500
/* The longest stored summary tl_summary_from_text reads. */
#define TL_SUMMARY_TEXT_MAX (16u * 1024u * 1024u)

/* The sections, in the order the readable text shows them. */
typedef enum tl_summary_section {
    /* First: what the user saw and tried on the machine before anyone else (docs/kb.md). */
    TL_SUMMARY_SELF_HELP,   /* selfhelp.shown and selfhelp.applied events: "self_help" */
    TL_SUMMARY_DIAGNOSTICS, /* evidence of kind "diagnostics": "diagnostics" */
    TL_SUMMARY_COMMANDS,    /* exec.finished events: "commands" */
    TL_SUMMARY_RUNBOOKS,    /* fix.finished events: "runbooks" */
    TL_SUMMARY_SHELLS,      /* session.ended events of type "shell": "shells" */
    TL_SUMMARY_NOTES,       /* note events: "notes" */
    TL_SUMMARY_USER_NOTES,  /* user.note events: "user_notes", beside the title and description */
    TL_SUMMARY_SECTIONS
} tl_summary_section_t;

/* What a ticket's summary is built from; every row is borrowed for the call. */
typedef struct tl_summary_input {
    const char *ticket; /* "T-4" */
    const char *title;
    const char *description; /* NULL: "" */
    const tl_ticket_event_row_t *events;
    size_t event_count; /* oldest first, as the store reads them */
    const tl_evidence_row_t *evidence;
    size_t evidence_count; /* in the order added */
} tl_summary_input_t;

/* The move the summary is frozen for. */
typedef struct tl_summary_move {
    int64_t time_ms;
    const char *by; /* "tech:alice" */
    int from_tier;
    int to_tier;
    const char *reason;
} tl_summary_move_t;

/*
 * One row of a section, pointing into the summary (valid while it lives). A member a section
 * does not have is NULL, 0 or -1 (has_exit_status).
 */
typedef struct tl_summary_row {
    int64_t time_ms;
    const char *by;            /* the actor: "tech:alice", "agent:D-3" */
    const char *via;           /* diagnostics: "diag" or "ticket"; self-help: "shown", "applied" */
    json_t *argv;              /* commands: the words run (a JSON array of strings) */
    const char *runbook;       /* runbooks: its name */
    json_t *args;              /* runbooks: {NAME: VALUE} */
    int has_exit_status;       /* 1: exit_status holds the exit status */
    int exit_status;           /* commands, runbooks, shells */
    const char *exit_signal;   /* "TERM" when a signal ended it */
    const char *ended_by;      /* "technician", "machine", "offline", ... when it ended early */
    const char *sha256;        /* the evidence: diagnostics, transcript or recording */
    const char *evidence_name; /* its name on the ticket */
    int64_t duration_ms;       /* shells */
    const char *article;       /* self-help: the article's reference */
    const char *title;         /* self-help: the article's title */
    const char *outcome;       /* self-help: what the user reported after applying it */
    const char *text;          /* notes, user notes */
} tl_summary_row_t;

typedef struct tl_summary tl_summary_t;

/*
 * Builds the summary of input, frozen for move (NULL: none, for a summary that is only shown).
 * TL_EINVAL for input without a ticket or title; TL_ENOMEM. Event details that do not parse are
 * read as {}; a value of the wrong type as absent.
 */
int tl_summary_build(const tl_summary_input_t *input, const tl_summary_move_t *move,
                     tl_summary_t **out);
/* The summary of a stored canonical text; TL_EINVAL (why says what) for text that is not one. */
int tl_summary_from_text(const char *text, size_t len, tl_summary_t **out, char *why,
                         size_t why_size);
void tl_summary_free(tl_summary_t *summary);

/* Rows kept in a section, and one of them (0 .. count-1, oldest first); TL_EINVAL past them. */
size_t tl_summary_count(const tl_summary_t *summary, tl_summary_section_t section);
int tl_summary_row(const tl_summary_t *summary, tl_summary_section_t section, size_t index,
                   tl_summary_row_t *row);
/* Rows a section had but did not keep (past TL_SUMMARY_SECTION_MAX). */
size_t tl_summary_omitted(const tl_summary_t *summary, tl_summary_section_t section);
/* What was tried, with the omitted: diagnostics, commands, runbooks, shells and self-help. */
size_t tl_summary_tried(const tl_summary_t *summary);
/* The section's member name in the JSON ("commands"). */
const char *tl_summary_section_name(tl_summary_section_t section);

/* The summary as a JSON object (borrowed): what `ticket show --json` gives. */
const json_t *tl_summary_json(const tl_summary_t *summary);
/*
 * The canonical text (docs/desk.md "The summary's canonical form"): compact JSON, members sorted
 * by name, only ASCII (\uXXXX escapes with upper-case hex digits), no newline; and its SHA-256.
 * *text is malloc'd.
 */
int tl_summary_canonical(const tl_summary_t *summary, char **text, size_t *len,
                         char sha256[TL_SHA256_HEX_LEN]);
/*
 * The summary as a technician reads it: the move, then each section with its rows, the user's
 * words last; every text from others escaped on one line (proto/text.h). sha256 (the canonical
 * text's, or NULL) is named in the heading. TL_EFULL, TL_ENOMEM from out.
 */
int tl_summary_render(const tl_summary_t *summary, const char *sha256, tl_buf_t *out);

#endif
