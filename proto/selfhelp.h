/*
 * Self-help on the wire (docs/protocol.md §7.5 "Self-help rows", §7.13; docs/kb.md
 * "Self-help"): what `tierline-agent help` showed the user and what the user applied, carried
 * as rows on the ticket request when self-help did not solve the problem, and the deflection
 * record sent instead of a ticket when it did.
 *
 * Every field is bounded, so a request never holds more than the limits say whatever an agent
 * sends: at most TL_SELFHELP_ROWS_MAX rows, ids and names of their characters, texts of valid
 * UTF-8 without control characters within their sizes. The texts (titles, outcomes, values)
 * come from articles and from the user's machine: whoever shows them escapes them
 * (proto/text.h).
 *
 * Pure: JSON in, fixed-size structs out and back, no I/O, no allocation but the JSON the
 * encoders return.
 */
#ifndef TL_SELFHELP_H
#define TL_SELFHELP_H

#include "proto/article.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Rows on one ticket request, and the limits of their fields in bytes. */
#define TL_SELFHELP_ROWS_MAX 16
#define TL_SELFHELP_TITLE_MAX (TL_ARTICLE_TITLE_MAX * 4)     /* UTF-8, one line */
#define TL_SELFHELP_OUTCOME_MAX 256                          /* UTF-8, one line; "" for none */
#define TL_SELFHELP_ARGS_MAX TL_ARTICLE_PARAMS_MAX           /* parameters of one fix */
#define TL_SELFHELP_ARG_NAME_MAX 32                          /* ^[A-Z][A-Z0-9_]{0,31}$ */
#define TL_SELFHELP_ARG_VALUE_MAX TL_ARTICLE_PARAM_VALUE_MAX /* UTF-8, one line */
#define TL_SELFHELP_REQUEST_MAX 64                           /* 1..64 of A-Z a-z 0-9 . _ - */
/* Times are milliseconds since 1970, up to 9999-12-31T23:59:59.999Z. */
#define TL_SELFHELP_TIME_MAX 253402300799999LL
/* The prefix an article has in timeline events (docs/desk.md "Events of tier 0"). */
#define TL_SELFHELP_ARTICLE_PREFIX "kb:"
/* The one outcome a deflection has: the re-check came out false after the fix. */
#define TL_SELFHELP_SOLVED "solved"

typedef struct tl_selfhelp_arg {
    char name[TL_SELFHELP_ARG_NAME_MAX + 1];
    char value[TL_SELFHELP_ARG_VALUE_MAX + 1];
} tl_selfhelp_arg_t;

/* A runbook and its parameters, as an article suggests it and the user applied it. */
typedef struct tl_selfhelp_fix {
    char runbook[TL_ARTICLE_ID_MAX + 1]; /* ^[a-z0-9][a-z0-9-]{0,47}$; "" for none */
    tl_selfhelp_arg_t args[TL_SELFHELP_ARGS_MAX];
    size_t arg_count;
} tl_selfhelp_fix_t;

/* One thing self-help did: an article shown, or its fix applied, with what came of it. */
typedef struct tl_selfhelp_row {
    int applied;                         /* 0: "shown", 1: "applied" */
    char article[TL_ARTICLE_ID_MAX + 1]; /* the article's id, as its header gives it */
    char title[TL_SELFHELP_TITLE_MAX + 1];
    char outcome[TL_SELFHELP_OUTCOME_MAX + 1]; /* "declined", "not solved: ...", "" */
    tl_selfhelp_fix_t fix; /* applied: the runbook run (required); shown: none */
} tl_selfhelp_row_t;

/* A problem self-help solved: no ticket, this record instead (§7.13). */
typedef struct tl_selfhelp_deflection {
    char request[TL_SELFHELP_REQUEST_MAX + 1]; /* the outbox request id: a repeat is harmless */
    char article[TL_ARTICLE_ID_MAX + 1];
    char title[TL_SELFHELP_TITLE_MAX + 1];
    tl_selfhelp_fix_t fix;                      /* the runbook applied (required) */
    int64_t shown_ms, applied_ms, rechecked_ms; /* in that order */
    char outcome[sizeof TL_SELFHELP_SOLVED];    /* TL_SELFHELP_SOLVED */
} tl_selfhelp_deflection_t;

/*
 * The fix an article suggests: its runbook and its "NAME=VALUE" parameters. TL_EINVAL when a
 * parameter is not NAME=VALUE within the limits above (an article's own parser keeps them
 * smaller); the article's runbook may be "" (none).
 */
int tl_selfhelp_fix_from_article(const tl_article_t *article, tl_selfhelp_fix_t *out);
/* The parameters as {"NAME":"VALUE",...}: a new object, NULL without memory. */
json_t *tl_selfhelp_fix_args(const tl_selfhelp_fix_t *fix);

/* The rows as the "selfhelp" member of a ticket request: a new array in *out. TL_EINVAL when
 * count is over TL_SELFHELP_ROWS_MAX or a field breaks its limits; TL_ENOMEM. */
int tl_selfhelp_rows_encode(const tl_selfhelp_row_t *rows, size_t count, json_t **out);
/* A "selfhelp" member (NULL: none, *count 0) into rows, which has room for
 * TL_SELFHELP_ROWS_MAX. TL_EMSG_MALFORMED, and *count 0, when it is not an array of at most
 * that many rows or any row breaks a limit: the whole request is refused. Unknown members of a
 * row are ignored. */
int tl_selfhelp_rows_decode(json_t *array, tl_selfhelp_row_t *rows, size_t *count);

/* The deflection's members (article, title, runbook, args, shown, applied, rechecked, outcome,
 * request) as a new object in *out; TL_EINVAL when a field breaks its limits, TL_ENOMEM. */
int tl_selfhelp_deflection_encode(const tl_selfhelp_deflection_t *deflection, json_t **out);
/* A selfhelp.deflected body into out; members it does not know ("type", "evidence") are
 * ignored. TL_EMSG_MALFORMED as the rows' decoder. */
int tl_selfhelp_deflection_decode(json_t *body, tl_selfhelp_deflection_t *out);

/* A row's timeline event: its kind ("selfhelp.shown", "selfhelp.applied") and its details
 * {"article":"kb:ID","title","outcome"?,"runbook"?,"args"?} (a new object; NULL without memory). */
const char *tl_selfhelp_event_kind(const tl_selfhelp_row_t *row);
json_t *tl_selfhelp_event_details(const tl_selfhelp_row_t *row);

#endif
