/*
 * Known problems (docs/desk.md "Known problems"): what a problem may be, how its state moves,
 * how its fix is named, and which open problems a ticket is offered — by its diagnostic
 * fingerprint (relay/desk/fingerprint.h) or by its words matching a problem's title — so that
 * tier 2 does not investigate again what is already known.
 *
 * Pure: no I/O, no store, no clock. The rows come from the store (relay/store/store.h).
 */
#ifndef TL_PROBLEMS_H
#define TL_PROBLEMS_H

#include "relay/desk/fingerprint.h"
#include "relay/store/store.h"

#include <stddef.h>
#include <stdint.h>

/* The states, in the order a problem goes through them. */
#define TL_PROBLEM_INVESTIGATING "investigating"
#define TL_PROBLEM_KNOWN_ERROR "known-error"
#define TL_PROBLEM_FIXED "fixed"

/* A problem's title and workaround, and a named fix, in bytes. */
#define TL_PROBLEM_TITLE_MAX TL_STORE_MAX_TITLE
#define TL_PROBLEM_TEXT_MAX 4000
/* A kb:REF reference: 1..128 of A-Z a-z 0-9 . _ - / # : */
#define TL_PROBLEM_KB_REF_MAX 128
/* Offers a ticket is shown at most, and the open problems a ticket is compared with at most (the
 * most recently opened ones). */
#define TL_PROBLEM_OFFERS_MAX 3
#define TL_PROBLEM_MATCH_CANDIDATES_MAX 2000

/* investigating, known-error, fixed. */
int tl_problem_state_valid(const char *state);
/* Open: investigating or known-error; only open problems are offered to tickets. */
int tl_problem_state_open(const char *state);
/*
 * Whether a problem may go from state from to state to: forward only, investigating ->
 * known-error -> fixed (investigating -> fixed too); a fixed problem stays fixed.
 */
int tl_problem_transition_allowed(const char *from, const char *to);

/*
 * A fix as `problem state P fixed --fix` names it: "note:TEXT" (1..4000 bytes of UTF-8 text),
 * "kb:REF" (a knowledge-base article) or "runbook:NAME" (a runbook's name, proto/names.h).
 * 0, or TL_EINVAL with *problem saying what is wrong.
 */
int tl_problem_fix_valid(const char *fix, const char **problem);

/* Why a ticket is offered a problem. */
typedef struct tl_problem_offer {
    int64_t problem_id;
    size_t index;                      /* of the problem in the candidates given */
    int by_fingerprint;                /* the ticket's diagnostic fingerprint is the problem's */
    tl_fingerprint_text_match_t words; /* how the ticket's words cover the problem's title */
} tl_problem_offer_t;

/* What a ticket is matched by. */
typedef struct tl_problem_ticket {
    const char *title;
    const char *description; /* NULL: "" */
    const char *fingerprint; /* NULL or "": none */
} tl_problem_ticket_t;

/*
 * The open problems among candidates that ticket should be offered, best first, at most
 * max_offers (docs/desk.md "Offering a known problem"): a problem whose fingerprint is the
 * ticket's, or whose title the ticket's words match (tl_fingerprint_text_match); fingerprint
 * matches first, then by the share of the title's words found, then by more words found, then
 * the older problem. Fixed problems are never offered. TL_EINVAL (why says what) for a text
 * longer than a match reads; TL_ENOMEM.
 */
int tl_problem_match(const tl_problem_ticket_t *ticket, const tl_problem_row_t *candidates,
                     size_t candidate_count, tl_problem_offer_t *offers, size_t max_offers,
                     size_t *offer_count, char *why, size_t why_size);

#endif
