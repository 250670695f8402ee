/*
 * Which knowledge-base articles fit a problem (docs/kb.md "Matching"): the user's description
 * and a fresh diagnostics report against the articles, best first. The agent ranks them on the
 * machine for `tierline-agent help`, offline if need be; the relay may rank them for a ticket.
 *
 * Pure and deterministic: the same articles, report and words give the same ranking.
 */
#ifndef TL_KBMATCH_H
#define TL_KBMATCH_H

#include "proto/article.h"

#include <jansson.h>
#include <stddef.h>

/* The longest description that is read, and the most words taken from it. */
#define TL_KBMATCH_TEXT_MAX 4096
#define TL_KBMATCH_WORDS_MAX 128

typedef struct tl_kb_match {
    const tl_article_t *article;
    tl_cond_result_t applies; /* its condition on the report: true or unknown (false is left out) */
    int score;
    size_t words_matched; /* of the article's words, those the description has */
    char evidence[512];   /* tl_cond_eval's, when it applies */
} tl_kb_match_t;

/*
 * Ranks count articles for report (NULL: none; every condition is then unknown) and the
 * user's description (NULL or ""), writing at most max matches to out, best first, and their
 * number to *found; 0, or TL_ENOMEM (and *found 0). An article is a match when its condition holds
 * on the report, or when it is unknown there and the description has some of the article's words;
 * one whose condition is false is not (the diagnostics say it is not that). Those that hold come
 * first; then more of the article's words, then of its title's, then the id decide.
 */
int tl_kb_rank(const tl_article_t *const *articles, size_t count, const json_t *report,
               const char *description, tl_kb_match_t *out, size_t max, size_t *found);

#endif
