/*
 * How the relay shows its knowledge base (docs/kb.md "The relay's knowledge base"): a listing
 * and one article, as text and as JSON, for the technicians' `kb` and `kb show` (relay/cmd/kb.c)
 * and the admins' `tierline-relay kb list|show` (relay/cmd/admin_kb.c) alike. Titles, conditions,
 * parameters and bodies are text from another party: escaped when printed (proto/text.h).
 * Internal to relay/cmd.
 */
#ifndef TL_CMD_KB_H
#define TL_CMD_KB_H

#include "proto/article.h"
#include "relay/store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* 1 for an article id: 1..48 of a-z, 0-9, -, not starting with - (docs/kb.md "Articles"). */
int tl__kb_id_valid(const char *id);

/* A listing row: id, title, category, state, runbook (null), revision, sha256, added, added_by,
 * updated, ticket (null), published, published_by (null), suggested, applied, recheck_passed. */
json_t *tl__kb_row_json(const tl_kb_article_row_t *row);
/* The listing as a table, "(no articles)" when empty. */
void tl__kb_list_print(FILE *out, const tl_kb_article_rows_t *list);

/* "73%" of passed over applied; "-" when nothing was applied. */
void tl__kb_rate(int64_t applied, int64_t passed, char out[8]);
/* The runbooks' success rates as a table, and as a JSON array. */
void tl__kb_runbooks_print(FILE *out, const tl_kb_runbook_rates_t *rates);
json_t *tl__kb_runbooks_json(const tl_kb_runbook_rates_t *rates);
/* A listing as JSON: the articles' array, or with rates {"articles": [...], "runbooks": [...]}. */
json_t *tl__kb_listing_json(const tl_kb_article_rows_t *list, const tl_kb_runbook_rates_t *rates);
/* A draft that needs editing (its source does not parse): what it is, why, and its source,
 * escaped; as JSON, the listing's fields and "source". */
int tl__kb_draft_print(FILE *out, const tl_kb_article_row_t *row, int json);

/* The stored source parsed again; TL_EINVAL with why when it no longer parses. */
int tl__kb_article_parse(const tl_kb_article_row_t *row, tl_article_t **article, char *why,
                         size_t why_size);
/* One article: the listing's fields and when, recheck, params ({NAME: VALUE}), words, body. */
json_t *tl__kb_article_json(const tl_kb_article_row_t *row, const tl_article_t *article);
/* One article as text: its header fields, then its body. */
void tl__kb_article_print(FILE *out, const tl_kb_article_row_t *row, const tl_article_t *article);

#endif
