/* Known problems' rules and the offers a ticket is shown (relay/desk/problems.h). */
#include "relay/desk/problems.h"

#include "proto/err.h"
#include "proto/names.h"
#include "proto/text.h"

#include <stdlib.h>
#include <string.h>

enum state { INVESTIGATING, KNOWN_ERROR, FIXED, STATES };

static const char *const state_names[STATES] = {
    [INVESTIGATING] = TL_PROBLEM_INVESTIGATING,
    [KNOWN_ERROR] = TL_PROBLEM_KNOWN_ERROR,
    [FIXED] = TL_PROBLEM_FIXED,
};

static int state_index(const char *state)
{
    for (int i = 0; state != NULL && i < STATES; i++)
        if (strcmp(state, state_names[i]) == 0)
            return i;
    return -1;
}

int tl_problem_state_valid(const char *state)
{
    return state_index(state) >= 0;
}

int tl_problem_state_open(const char *state)
{
    int i = state_index(state);
    return i == INVESTIGATING || i == KNOWN_ERROR;
}

int tl_problem_transition_allowed(const char *from, const char *to)
{
    int a = state_index(from), b = state_index(to);
    return a >= 0 && b >= 0 && b > a;
}

static int kb_ref_valid(const char *ref)
{
    size_t len = strlen(ref);
    if (len == 0 || len > TL_PROBLEM_KB_REF_MAX)
        return 0;
    for (const char *p = ref; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("._-/#:", *p) != NULL))
            return 0;
    return 1;
}

int tl_problem_fix_valid(const char *fix, const char **problem)
{
    static const char *const usage =
        "--fix names the fix: note:TEXT, kb:REF (an article) or runbook:NAME";
    *problem = usage;
    if (fix == NULL)
        return TL_EINVAL;
    if (strncmp(fix, "note:", 5) == 0) {
        size_t len = strlen(fix + 5);
        if (len == 0 || len > TL_PROBLEM_TEXT_MAX) {
            *problem = "--fix note:TEXT needs a text of 1 to 4000 bytes";
            return TL_EINVAL;
        }
        if (!tl_text_utf8_valid(fix + 5, len)) {
            *problem = "the text is not valid UTF-8";
            return TL_EINVAL;
        }
        return 0;
    }
    if (strncmp(fix, "kb:", 3) == 0) {
        if (!kb_ref_valid(fix + 3)) {
            *problem = "--fix kb:REF wants 1 to 128 of A-Z a-z 0-9 . _ - / # :";
            return TL_EINVAL;
        }
        return 0;
    }
    if (strncmp(fix, "runbook:", 8) == 0) {
        if (!tl_runbook_name_valid(fix + 8)) {
            *problem = "--fix runbook:NAME wants a runbook's name: 1 to 48 of a-z, 0-9 and -";
            return TL_EINVAL;
        }
        return 0;
    }
    return TL_EINVAL;
}

/* Better first: a fingerprint match, a larger share of the title, more words, older. */
static int offer_before(const tl_problem_offer_t *a, const tl_problem_offer_t *b)
{
    if (a->by_fingerprint != b->by_fingerprint)
        return a->by_fingerprint > b->by_fingerprint;
    if (a->words.per_mille != b->words.per_mille)
        return a->words.per_mille > b->words.per_mille;
    if (a->words.shared_words != b->words.shared_words)
        return a->words.shared_words > b->words.shared_words;
    return a->problem_id < b->problem_id;
}

int tl_problem_match(const tl_problem_ticket_t *ticket, const tl_problem_row_t *candidates,
                     size_t candidate_count, tl_problem_offer_t *offers, size_t max_offers,
                     size_t *offer_count, char *why, size_t why_size)
{
    size_t kept = 0;
    const char *fingerprint =
        ticket->fingerprint != NULL && ticket->fingerprint[0] != '\0' ? ticket->fingerprint : NULL;
    for (size_t i = 0; i < candidate_count && max_offers > 0; i++) {
        const tl_problem_row_t *problem = &candidates[i];
        if (!tl_problem_state_open(problem->state))
            continue;
        tl_problem_offer_t offer = {.problem_id = problem->id, .index = i};
        offer.by_fingerprint = fingerprint != NULL && problem->fingerprint != NULL &&
                               strcmp(problem->fingerprint, fingerprint) == 0;
        int rc = tl_fingerprint_text_match(ticket->title, ticket->description, problem->title,
                                           &offer.words, why, why_size);
        if (rc != 0)
            return rc;
        if (!offer.by_fingerprint && !offer.words.matches)
            continue;
        /* Insertion into the best max_offers so far. */
        size_t at = kept;
        while (at > 0 && offer_before(&offer, &offers[at - 1]))
            at--;
        if (at >= max_offers)
            continue;
        size_t moving = (kept < max_offers ? kept : max_offers - 1) - at;
        memmove(&offers[at + 1], &offers[at], moving * sizeof offers[0]);
        offers[at] = offer;
        if (kept < max_offers)
            kept++;
    }
    *offer_count = kept;
    return 0;
}
