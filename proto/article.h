/*
 * Knowledge-base articles (docs/kb.md "Articles"): Markdown with a header that says what the
 * article is, when it applies (a condition over the diagnostics report, proto/cond.h), the
 * runbook it suggests with its parameters, and how the fix is checked.
 *
 *     ---
 *     id: var-nearly-full
 *     title: /var is nearly full
 *     category: disk
 *     when: any disks.mounts where (mount == "/var" and used_percent > 90)
 *     runbook: clean-journal
 *     param: KEEP=200M
 *     recheck: any disks.mounts where (mount == "/var" and used_percent > 90)
 *     words: full, space, var, logs
 *     ---
 *     The system's logs and caches live under /var ...
 *
 * The relay reads them when an admin adds one, the agent from the catalogue it was sent; both
 * parse with this, so an article means the same on both sides. Whether the runbook exists and
 * its parameters follow its rules is checked against the catalogue, by whoever holds it.
 */
#ifndef TL_ARTICLE_H
#define TL_ARTICLE_H

#include "proto/cond.h"

#include <stddef.h>

#define TL_ARTICLE_ID_MAX 48
#define TL_ARTICLE_TITLE_MAX 120
#define TL_ARTICLE_TEXT_MAX (64 * 1024)
#define TL_ARTICLE_PARAMS_MAX 16
#define TL_ARTICLE_PARAM_VALUE_MAX 256
#define TL_ARTICLE_WORDS_MAX 16
#define TL_ARTICLE_WORD_MAX 32

typedef struct tl_article {
    char id[TL_ARTICLE_ID_MAX + 1];
    char title[TL_ARTICLE_TITLE_MAX * 4 + 1]; /* UTF-8, at most TL_ARTICLE_TITLE_MAX characters */
    int category;                             /* proto/vocab.h tl_category_name() */
    char *when_text;                          /* the conditions as written */
    char *recheck_text;                       /* the re-check; when_text if none was given */
    tl_cond_t *when;
    tl_cond_t *recheck;
    char runbook[TL_ARTICLE_ID_MAX + 1]; /* "" when it suggests none */
    char *params[TL_ARTICLE_PARAMS_MAX]; /* "NAME=VALUE" */
    size_t param_count;
    char words[TL_ARTICLE_WORDS_MAX][TL_ARTICLE_WORD_MAX + 1];
    size_t word_count;
    char *body; /* the Markdown after the header */
} tl_article_t;

/*
 * Parses len bytes of an article. file names it in messages: TL_EINVAL and why as
 * "FILE:LINE: reason" ("disk.md:4: when: column 12: disks.mount is not a field of the report
 * (did you mean disks.mounts?)"); TL_ENOMEM. Nothing is returned on error.
 */
int tl_article_parse(const char *file, const char *text, size_t len, tl_article_t **out, char *why,
                     size_t why_size);
void tl_article_free(tl_article_t *article);

#endif
