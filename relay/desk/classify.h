/*
 * Classification of a ticket (docs/desk.md "Classification and severity"): from the user's
 * words (title and description) and the diagnostics the agent's `diag` produced on the machine
 * (docs/diagnostics.md §3), a proposed category and severity S1..S4, each citing the evidence
 * that triggered it in one readable line ("S2: /var 97% full, diagnostics sha256:…").
 *
 * The rules are two tables in classify.c (rules on the user's words, rules on the diagnostics);
 * docs/desk.md holds them as tl_classify_rules_markdown writes them, and a unit test keeps the
 * two equal. Matching words needs no regular expression: text is cut into words, and rules list
 * words and phrases (docs/desk.md "Words").
 *
 * Reading the diagnostics gives findings (tl_classify_findings_read): what each diagnostics
 * rule saw, with a normalized key fact. The same findings feed the proposal here and the
 * diagnostic fingerprint (relay/desk/fingerprint.h), so a document is parsed once.
 *
 * Pure: no I/O, no store, no clock, no global state. Text from the user or the machine reaches
 * a citation only escaped and clipped (proto/text.h). Bad input gives a negative TL_E* code and
 * a message naming the problem in the caller's buffer, and leaves every output as it was.
 */
#ifndef TL_CLASSIFY_H
#define TL_CLASSIFY_H

#include "proto/buf.h"

#include <stdbool.h>
#include <stddef.h>

enum tl_category {
    TL_CATEGORY_NONE = -1, /* a rule that sets only a severity */
    TL_CATEGORY_ACCOUNT = 0,
    TL_CATEGORY_NETWORK,
    TL_CATEGORY_PRINTING,
    TL_CATEGORY_DISK,
    TL_CATEGORY_PERFORMANCE,
    TL_CATEGORY_APPLICATION,
    TL_CATEGORY_HARDWARE,
    TL_CATEGORY_SECURITY,
    TL_CATEGORY_OTHER,
};
#define TL_CATEGORY_COUNT 9

/* Severities are 1 (S1, the most severe) to 4 (S4); 0 means "sets none". */
#define TL_SEVERITY_MIN 1
#define TL_SEVERITY_MAX 4

/* A title or a description longer than this is refused (the store keeps far less). */
#define TL_CLASSIFY_TEXT_MAX 65536
/* A diagnostics document larger than this is refused (ten sections of at most 256 KiB). */
#define TL_CLASSIFY_DIAGNOSTICS_MAX (4 * 1024 * 1024)
/* More findings than this in one document is refused: the agent's own bounds give far fewer. */
#define TL_CLASSIFY_FINDINGS_MAX 1024
/* A citation line with its NUL; what it quotes is clipped so that it always fits. */
#define TL_CLASSIFY_LINE_SIZE 512
/* Reasons kept in a classification; the rest are counted in reasons_left_out. */
#define TL_CLASSIFY_REASONS_MAX 32

/* "account", "network", "printing", "disk", "performance", "application", "hardware",
 * "security", "other"; NULL for anything else. */
const char *tl_classify_category_name(enum tl_category category);
/* The category a name gives (as tl_classify_category_name writes it); TL_EINVAL otherwise. */
int tl_classify_category_parse(const char *name, enum tl_category *category);
/* "S1".."S4" (also "s1".."s4") to 1..4; TL_EINVAL otherwise. */
int tl_classify_severity_parse(const char *text, int *severity);

/* --- the diagnostics ------------------------------------------------------------------------ */

typedef struct tl_classify_findings tl_classify_findings_t;

/* One thing a diagnostics rule saw in one document. The strings live as long as the findings. */
typedef struct tl_classify_finding {
    const char *rule;          /* the rule's id ("disk-full") */
    enum tl_category category; /* the rule's */
    int severity;              /* the rule's */
    bool fingerprint;          /* the rule counts for the diagnostic fingerprint */
    const char *key;  /* the normalized fact that matters ("/var", "cups.service"), "" if none */
    const char *fact; /* readable, escaped and clipped: "/var 97% full" */
} tl_classify_finding_t;

/*
 * Reads len bytes of a diagnostics document (the JSON `tierline-agent diag --json` prints) and
 * runs every diagnostics rule over it. A section the document lacks, or that holds an error, is
 * unknown: its rules see nothing (but "disks-timed-out"); a field a rule reads that is missing
 * is unknown too. Refused, with a message in why naming the problem and *findings untouched:
 * more than TL_CLASSIFY_DIAGNOSTICS_MAX bytes, not JSON, not an object, a schema other than 1,
 * no "sections" object, a section or row of the wrong type, a field of the wrong type or out
 * of its range (a percentage outside 0..100) — all TL_EINVAL — or TL_ENOMEM.
 */
int tl_classify_findings_read(const void *json, size_t len, tl_classify_findings_t **findings,
                              char *why, size_t why_size);
void tl_classify_findings_free(tl_classify_findings_t *findings);
/* In the order of the rules table, then of the document. */
size_t tl_classify_findings_count(const tl_classify_findings_t *findings);
/* NULL past the end. */
const tl_classify_finding_t *tl_classify_findings_get(const tl_classify_findings_t *findings,
                                                      size_t index);

/* --- the proposal --------------------------------------------------------------------------- */

typedef struct tl_classify_ticket {
    const char *title;       /* the user's words, any bytes, NUL-terminated; NULL counts as "" */
    const char *description; /* the same */
    const tl_classify_findings_t *findings; /* NULL: the ticket came without diagnostics */
    const char *evidence_hash; /* the diagnostics' SHA-256 (64 lowercase hex digits), cited;
                                  needed with findings, not used without */
} tl_classify_ticket_t;

/* A rule that fired, and what it saw. */
typedef struct tl_classify_reason {
    const char *rule;          /* the rule's id ("disk-full", "words-login-blocked") */
    enum tl_category category; /* TL_CATEGORY_NONE for a rule that names none */
    int severity;              /* 0 for a rule that sets none (or lowers it: words-workaround) */
    char evidence[TL_CLASSIFY_LINE_SIZE]; /* "/var 97% full, diagnostics sha256:…",
                                             "the user wrote \"locked out\"" */
} tl_classify_reason_t;

typedef struct tl_classification {
    enum tl_category category;
    int severity;
    char category_line[TL_CLASSIFY_LINE_SIZE]; /* "disk: /var 97% full, diagnostics sha256:…" */
    char severity_line[TL_CLASSIFY_LINE_SIZE]; /* "S2: /var 97% full, diagnostics sha256:…" */
    const char *category_rule;                 /* the rule each came from; "default" if none */
    const char *severity_rule;
    size_t reason_count;     /* the rules that fired, most decisive first (docs/desk.md) */
    size_t reasons_left_out; /* beyond TL_CLASSIFY_REASONS_MAX */
    tl_classify_reason_t reasons[TL_CLASSIFY_REASONS_MAX];
} tl_classification_t;

/*
 * Proposes a category and a severity for ticket by the rules and precedence of docs/desk.md.
 * Refused, with why naming the problem and *out untouched: a title or description longer than
 * TL_CLASSIFY_TEXT_MAX, findings without a valid evidence hash (TL_EINVAL), or TL_ENOMEM.
 */
int tl_classify_propose(const tl_classify_ticket_t *ticket, tl_classification_t *out, char *why,
                        size_t why_size);

/* --- the words and the rules, for the other desk modules and the docs ----------------------- */

/*
 * Calls fn for each word of len bytes of text as the rules see them (docs/desk.md "Words"):
 * lowercase ASCII letters and digits and any other non-ASCII bytes, contractions spelled out
 * ("can't" gives "can", "not"). fn returning non-zero stops the walk and is returned.
 */
typedef int (*tl_classify_word_fn)(const char *word, size_t len, void *arg);
int tl_classify_words(const char *text, size_t len, tl_classify_word_fn fn, void *arg);

/* Appends the rules tables as docs/desk.md shows them (Markdown); TL_EFULL, TL_ENOMEM. */
int tl_classify_rules_markdown(tl_buf_t *out);

#endif
