/*
 * The knowledge base on the agent (docs/kb.md; docs/diagnostics.md §7): the articles of a
 * directory of ARTICLE.md files, read once, and the problems they find on a diagnostics
 * report. `tierline-agent diag` puts those at the top of its report.
 *
 * An article that cannot be read or does not parse costs only itself: it is logged, skipped
 * and named in the summary. The caller owns the tl_kb_t; the articles belong to it.
 */
#ifndef TL_AGENT_KB_H
#define TL_AGENT_KB_H

#include "proto/article.h"

#include <jansson.h>
#include <stddef.h>

/* The most articles one directory may hold; the rest are skipped. */
#define TL_KB_MAX_ARTICLES 512

typedef struct tl_kb tl_kb_t;

/*
 * Reads the *.md files of dir in name order. A file that is not a regular file, is larger than
 * an article may be, does not parse (proto/article.h), repeats an id another file has or is
 * past TL_KB_MAX_ARTICLES is skipped with a log line and listed (tl_kb_skipped). NULL with *err
 * when dir cannot be read (a negated errno) or on TL_ENOMEM.
 */
tl_kb_t *tl_kb_load(const char *dir, int *err);
void tl_kb_free(tl_kb_t *kb);

/* The articles read, in file name order, and their number. */
const tl_article_t *const *tl_kb_articles(const tl_kb_t *kb, size_t *count);
/*
 * The files skipped: their names and why, one line each, escaped as text from another party
 * (proto/text.h), "bad.md:3: unknown key 'colour' ...". NULL past the end.
 */
const char *tl_kb_skipped(const tl_kb_t *kb, size_t index, const char **file);

/* Where the knowledge base is: share/tierline/kb beside the program, else the build's copy. */
int tl_kb_default_dir(char *out, size_t size);

/*
 * The articles this agent matches against: the one source of them for `diag` and `help`, so
 * that published catalogues can take its place. Today: the directory dir, or tl_kb_default_dir
 * when dir is NULL; the directory read goes to dir_used (when not NULL). NULL with *err as
 * tl_kb_load, or TL_ENOTFOUND when there is no default directory.
 */
tl_kb_t *tl_kb_open(const char *dir, char *dir_used, size_t dir_used_size, int *err);

/*
 * Adds to report (as `diag --json` prints it), before its "sections":
 *   "problems": [{"id", "title", "category", "evidence", "runbook"?}], the articles whose
 *               condition holds on the report (tl_kb_rank with no description), in id order;
 *   "knowledge_base": {"directory", "articles", "skipped": [{"file", "reason"}]}, or
 *               {"directory", "error"} when the directory cannot be read.
 * dir NULL: tl_kb_default_dir. 0 (a directory that cannot be read is said in "error"), TL_EINVAL
 * when report is not an object, or TL_ENOMEM.
 */
int tl_kb_add_problems(json_t *report, const char *dir);

#endif
