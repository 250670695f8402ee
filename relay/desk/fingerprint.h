/*
 * Matching a ticket to a known problem (docs/desk.md "Diagnostic fingerprints").
 *
 * A diagnostic fingerprint is the SHA-256 of a canonical text listing the conditions that
 * matter in a diagnostics document: each finding of a rule the rules table marks for the
 * fingerprint, with its normalized key fact (a full mount point, a failed unit, a crashing
 * program) and nothing volatile (no time, host name, PID, exact percentage or order). The same
 * conditions on two machines give the same fingerprint; a different failing unit gives another.
 *
 * The text match says whether a ticket's words cover a problem's title: the share of the
 * title's significant words found in the ticket, against a fixed threshold.
 *
 * Pure: no I/O, no store, no clock. The findings come from tl_classify_findings_read
 * (relay/desk/classify.h), so a document is parsed once for its classification and its
 * fingerprint.
 */
#ifndef TL_FINGERPRINT_H
#define TL_FINGERPRINT_H

#include "proto/buf.h"
#include "proto/hash.h"
#include "relay/desk/classify.h"

#include <stdbool.h>
#include <stddef.h>

/* The canonical text's first line: a change to the form changes it, and so every digest. */
#define TL_FINGERPRINT_HEADER "tierline-fingerprint 1\n"

typedef struct tl_fingerprint {
    char hex[TL_SHA256_HEX_LEN]; /* "" when the document shows no condition: it matches nothing */
    size_t condition_count;      /* distinct conditions in the canonical text */
} tl_fingerprint_t;

/*
 * Appends the canonical text the fingerprint is the SHA-256 of (nothing when there is no
 * condition): TL_FINGERPRINT_HEADER, then one line per distinct condition, sorted by bytes:
 * the rule's id, and when the rule keeps a key, a space and the key with every byte outside
 * '!'..'~' and every '%' written as %XX. TL_EFULL or TL_ENOMEM from out.
 */
int tl_fingerprint_conditions(const tl_classify_findings_t *findings, tl_buf_t *out);

/* The fingerprint of findings (NULL: a ticket without diagnostics, which has none). */
int tl_fingerprint_compute(const tl_classify_findings_t *findings, tl_fingerprint_t *out);

/* A ticket's text matches a problem's title when at least this share (per mille) of the
 * title's significant words are in it, and at least two of them (one for a one-word title). */
#define TL_FINGERPRINT_TEXT_THRESHOLD 600

typedef struct tl_fingerprint_text_match {
    size_t title_words;  /* distinct significant words of the problem's title */
    size_t shared_words; /* of those, how many the ticket has */
    unsigned per_mille;  /* shared_words * 1000 / title_words (0 for no words) */
    bool matches;
} tl_fingerprint_text_match_t;

/*
 * How well a ticket (its title and description; NULL counts as "") matches an open problem's
 * title. TL_EINVAL, with why naming it, for a text longer than TL_CLASSIFY_TEXT_MAX; TL_ENOMEM.
 */
int tl_fingerprint_text_match(const char *ticket_title, const char *ticket_description,
                              const char *problem_title, tl_fingerprint_text_match_t *out,
                              char *why, size_t why_size);

/* The words a title match ignores, for the docs: "a", "an", "and", ... NULL-terminated. */
extern const char *const tl_fingerprint_stop_words[];

#endif
