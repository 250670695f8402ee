/*
 * A knowledge-base draft from a resolved ticket (docs/kb.md "Drafts from resolved tickets"):
 * `ticket resolve T-N --kb` turns what the desk learned on the ticket into an article an admin
 * can publish, pre-filled from the record, never typed again:
 *
 * - when: the condition of the primary finding on the ticket's latest diagnostics (relay/desk/
 *   classify.h): of the rules the diagnostic fingerprint counts (of all, when none of those
 *   fired), the most severe, then the first in the rules table, whose condition (a small table
 *   from rule id to a condition of the article language, proto/cond.h) parses and is true on
 *   those very diagnostics. The other rules that fired are listed in the text as "also seen":
 *   independent problems joined with "and" would describe no real machine;
 * - recheck: the same condition: the fix worked when it no longer holds;
 * - runbook and param: the last runbook that ran on the ticket and exited 0, with its parameters;
 * - the text: what was wrong (the rules' findings), what was run (runbooks and commands of the
 *   ticket's "already tried" summary, relay/desk/summary.h) and the fix (the resolution).
 *
 * Text from the user, the machine and the technicians reaches the article only made safe: the
 * title on one line without control characters, everything in the Markdown body with its ASCII
 * punctuation escaped, so that no text can add a header key, a heading, a link or HTML.
 *
 * A draft that cannot be filled (no diagnostics, no rule with a condition) is still made, with
 * the parts it has, and says why it needs editing: it does not parse until an admin edits it.
 *
 * Pure: no I/O, no store, no clock.
 */
#ifndef TL_KBDRAFT_H
#define TL_KBDRAFT_H

#include "relay/desk/summary.h"

#include <stddef.h>
#include <stdint.h>

/* What a draft is made from; everything borrowed for the call. */
typedef struct tl_kbdraft_input {
    const char *id;          /* the article's id ("ticket-12") */
    const char *ticket;      /* "T-12" */
    const char *title;       /* the ticket's title */
    const char *category;    /* the ticket's category (proto/vocab.h) */
    const char *resolution;  /* the resolution text */
    const char *diagnostics; /* the ticket's latest diagnostics document; NULL: none */
    size_t diagnostics_len;
    const tl_summary_t *summary; /* what was tried; NULL: nothing */
} tl_kbdraft_input_t;

typedef struct tl_kbdraft {
    char *source; /* the article's text (malloc'd) */
    size_t len;
    char *needs_editing; /* NULL: it parses as an article; else why not (malloc'd, one line) */
    char runbook[49];    /* the runbook it suggests, "" for none */
    char title[481];     /* its title, as written in the header */
} tl_kbdraft_t;

/* Builds the draft; TL_EINVAL for input without id, ticket or title; TL_ENOMEM. */
int tl_kbdraft_build(const tl_kbdraft_input_t *input, tl_kbdraft_t *out);
void tl_kbdraft_clear(tl_kbdraft_t *draft);

/* The condition a diagnostics rule's finding is written as ("%s": the finding's key, quoted);
 * NULL for a rule the table does not have. For docs and tests. */
const char *tl_kbdraft_rule_condition(const char *rule);

#endif
