/*
 * Shared between the two halves of the classifier: classify.c (the user's words, the proposal,
 * the docs table) and classify_diag.c (the diagnostics and their rules). Not for other modules.
 */
#ifndef TL_CLASSIFY_INT_H
#define TL_CLASSIFY_INT_H

#include "relay/desk/classify.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- words (docs/desk.md "Words") ----------------------------------------------------------- */

/* One word of a text: the source bytes it came from, and its form when it is not just the
 * source lowercased ("can't" gives "can" and "not"; "won't" gives "will" and "not"). */
struct tl__word {
    const char *text; /* the source bytes (compared without regard to ASCII case) */
    size_t len;
    const char *alias; /* non-NULL: the word is this (lowercase), not text */
    size_t start, end; /* where in its field's source the word came from */
    int field;         /* which text (title 0, description 1; a log line 0) */
    bool breaks;       /* a sentence ends before it: no phrase runs across */
};

struct tl__words {
    struct tl__word *items;
    size_t count, cap;
};

/* Appends the words of len bytes of text, tagged with field; TL_ENOMEM. */
int tl__words_add(struct tl__words *words, const char *text, size_t len, int field);
void tl__words_reset(struct tl__words *words);
void tl__words_free(struct tl__words *words);

/* A match of a phrase: the words [first, first + count) of words. */
struct tl__match {
    size_t first, count;
};

/*
 * The first match (in word order) of any of the phrases, separated by '|', each words separated
 * by one space, a word ending in '*' matching any word it begins. True if there is one.
 */
bool tl__phrases_find(const struct tl__words *words, const char *phrases, struct tl__match *match);

/* --- rules ---------------------------------------------------------------------------------- */

/* A diagnostics rule as docs/desk.md lists it. */
struct tl__diag_rule {
    const char *id;
    enum tl_category category;
    int severity;
    bool fingerprint;
    const char *key;       /* what the fingerprint keeps of it ("the mount point"); NULL: nothing */
    const char *condition; /* when it fires, in words */
    const char *cites;     /* an example of its fact */
};

extern const struct tl__diag_rule tl__diag_rules[];
extern const size_t tl__diag_rule_count;

/* The finding's position in tl__diag_rules (for ranking: the table's order). */
size_t tl__finding_rule_index(const tl_classify_finding_t *finding);

#endif
