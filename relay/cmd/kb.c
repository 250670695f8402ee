/*
 * The knowledge base for technicians (docs/technicians.md "The knowledge base"): kb lists the
 * articles the relay has, kb show prints one. Reading only: articles are added, replaced and
 * removed by an admin on the relay host (relay/cmd/admin_kb.c). How both show them: relay/cmd/kb.h.
 */
#include "relay/cmd/kb.h"
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "proto/vocab.h"
#include "relay/cmd/show.h"

#include <stdlib.h>
#include <string.h>

/* ---- showing articles (relay/cmd/kb.h) ------------------------------------------------------ */

int tl__kb_id_valid(const char *id)
{
    size_t len = id != NULL ? strnlen(id, TL_ARTICLE_ID_MAX + 1) : 0;
    if (len == 0 || len > TL_ARTICLE_ID_MAX || id[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return 0;
    return 1;
}

json_t *tl__kb_row_json(const tl_kb_article_row_t *row)
{
    char ticket[TL_ID_TEXT];
    if (row->ticket_id > 0)
        tl_id_format(ticket, TL_ID_TICKET, row->ticket_id);
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:I, s:s, s:I, s:s, s:I, s:s?, s:o, s:s?, s:I, "
        "s:I, s:I}",
        "id", row->id, "title", row->title, "category", row->category, "state", row->state,
        "runbook", row->runbook, "revision", (json_int_t)row->revision, "sha256", row->sha256,
        "added", (json_int_t)row->added, "added_by", row->added_by, "updated",
        (json_int_t)row->updated, "ticket", row->ticket_id > 0 ? ticket : NULL, "published",
        row->published > 0 ? json_integer(row->published) : json_null(), "published_by",
        row->published_by, "suggested", (json_int_t)row->suggested, "applied",
        (json_int_t)row->applied, "recheck_passed", (json_int_t)row->recheck_passed);
    if (doc != NULL) {
        json_object_set_new(doc, "rate",
                            row->applied > 0
                                ? json_real((double)row->recheck_passed / (double)row->applied)
                                : json_null());
        json_object_set_new(doc, "needs_editing",
                            row->needs_editing != NULL ? json_string(row->needs_editing)
                                                       : json_null());
    }
    return doc;
}

void tl__kb_rate(int64_t applied, int64_t passed, char out[8])
{
    if (applied <= 0)
        snprintf(out, 8, "-");
    else
        snprintf(out, 8, "%lld%%", (long long)(passed * 100 / applied));
}

void tl__kb_list_print(FILE *out, const tl_kb_article_rows_t *list)
{
    fprintf(out, "%-28s %-11s %-9s %-16s %7s %6s %5s  %s\n", "ID", "CATEGORY", "STATE", "RUNBOOK",
            "APPLIED", "PASSED", "RATE", "TITLE");
    for (size_t i = 0; i < list->count; i++) {
        const tl_kb_article_row_t *a = &list->rows[i];
        char title[1024], rate[8];
        tl_text_clip(title, sizeof title, a->title, 0, TL_TEXT_LINE);
        tl__kb_rate(a->applied, a->recheck_passed, rate);
        fprintf(out, "%-28s %-11s %-9s %-16s %7lld %6lld %5s  %s\n", a->id, a->category, a->state,
                a->runbook != NULL ? a->runbook : "-", (long long)a->applied,
                (long long)a->recheck_passed, rate, title);
    }
    if (list->count == 0)
        fprintf(out, "(no articles)\n");
}

void tl__kb_runbooks_print(FILE *out, const tl_kb_runbook_rates_t *rates)
{
    fprintf(out, "\n%-28s %7s %6s %5s\n", "RUNBOOK", "APPLIED", "PASSED", "RATE");
    for (size_t i = 0; i < rates->count; i++) {
        char rate[8];
        tl__kb_rate(rates->rows[i].applied, rates->rows[i].recheck_passed, rate);
        fprintf(out, "%-28s %7lld %6lld %5s\n", rates->rows[i].runbook,
                (long long)rates->rows[i].applied, (long long)rates->rows[i].recheck_passed, rate);
    }
    if (rates->count == 0)
        fprintf(out, "(no runbook applied by self-help yet)\n");
}

json_t *tl__kb_runbooks_json(const tl_kb_runbook_rates_t *rates)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < rates->count; i++) {
        const tl_kb_runbook_rate_t *r = &rates->rows[i];
        json_t *rate = r->applied > 0 ? json_real((double)r->recheck_passed / (double)r->applied)
                                      : json_null();
        if (json_array_append_new(list,
                                  json_pack("{s:s, s:I, s:I, s:o}", "runbook", r->runbook,
                                            "applied", (json_int_t)r->applied, "recheck_passed",
                                            (json_int_t)r->recheck_passed, "rate", rate)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* The rows as JSON, and the runbooks' rates too when rates is not NULL ({"articles","runbooks"}).
 */
json_t *tl__kb_listing_json(const tl_kb_article_rows_t *list, const tl_kb_runbook_rates_t *rates)
{
    json_t *articles = json_array();
    for (size_t i = 0; articles != NULL && i < list->count; i++)
        if (json_array_append_new(articles, tl__kb_row_json(&list->rows[i])) != 0) {
            json_decref(articles);
            return NULL;
        }
    if (articles == NULL || rates == NULL)
        return articles;
    return json_pack("{s:o, s:o?}", "articles", articles, "runbooks", tl__kb_runbooks_json(rates));
}

int tl__kb_article_parse(const tl_kb_article_row_t *row, tl_article_t **article, char *why,
                         size_t why_size)
{
    return tl_article_parse(row->id, row->source, strlen(row->source), article, why, why_size);
}

json_t *tl__kb_article_json(const tl_kb_article_row_t *row, const tl_article_t *article)
{
    json_t *doc = tl__kb_row_json(row), *params = json_object(), *words = json_array();
    int rc = doc != NULL && params != NULL && words != NULL ? 0 : TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < article->param_count; i++) {
        const char *equals = strchr(article->params[i], '=');
        size_t name_len = equals != NULL ? (size_t)(equals - article->params[i]) : 0;
        char name[TL_ARTICLE_ID_MAX + 1];
        if (equals == NULL || name_len >= sizeof name)
            continue;
        memcpy(name, article->params[i], name_len);
        name[name_len] = '\0';
        if (json_object_set_new(params, name, json_string(equals + 1)) != 0)
            rc = TL_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < article->word_count; i++)
        if (json_array_append_new(words, json_string(article->words[i])) != 0)
            rc = TL_ENOMEM;
    if (rc == 0 && (json_object_set_new(doc, "when", json_string(article->when_text)) != 0 ||
                    json_object_set_new(doc, "recheck", json_string(article->recheck_text)) != 0 ||
                    json_object_set_new(doc, "params", params) != 0 ||
                    json_object_set_new(doc, "words", words) != 0 ||
                    json_object_set_new(doc, "body", json_string(article->body)) != 0))
        rc = TL_ENOMEM;
    else if (rc == 0)
        return doc; /* it holds params and words now */
    json_decref(doc);
    json_decref(params);
    json_decref(words);
    return NULL;
}

/* "  label  text" with text escaped on one line; "-" for none. */
static void print_line(FILE *out, const char *label, const char *text)
{
    char *shown = text != NULL && text[0] != '\0' ? tl_text_escape_dup(text, TL_TEXT_LINE) : NULL;
    fprintf(out, "  %-10s %s\n", label, shown != NULL ? shown : "-");
    free(shown);
}

void tl__kb_article_print(FILE *out, const tl_kb_article_row_t *row, const tl_article_t *article)
{
    char title[1024], when[TL_UTC_TEXT], by[300], ticket[TL_ID_TEXT];
    tl_text_clip(title, sizeof title, row->title, 0, TL_TEXT_LINE);
    tl_text_clip(by, sizeof by, row->added_by, 0, TL_TEXT_LINE);
    fprintf(out, "%s  %s\n", row->id, title);
    fprintf(out, "  %-10s %s\n", "category:", row->category);
    tl_format_utc(row->updated, when);
    fprintf(out, "  %-10s %s, revision %lld, %s by %s", "state:", row->state,
            (long long)row->revision, when, by);
    if (row->ticket_id > 0)
        fprintf(out, ", from %s", tl_id_format(ticket, TL_ID_TICKET, row->ticket_id));
    fprintf(out, "\n");
    print_line(out, "when:", article->when_text);
    /* The runbook with its parameters, as a technician would type them after `fix`. */
    char runbook[TL_ARTICLE_PARAMS_MAX * (TL_ARTICLE_PARAM_VALUE_MAX + 40) + 64] = "";
    char words[TL_ARTICLE_WORDS_MAX * (TL_ARTICLE_WORD_MAX + 2) + 1] = "";
    size_t used = 0;
    tl_format_append(runbook, sizeof runbook, &used, "%s", row->runbook ? row->runbook : "");
    for (size_t i = 0; i < article->param_count; i++)
        tl_format_append(runbook, sizeof runbook, &used, " %s", article->params[i]);
    print_line(out, "runbook:", runbook);
    print_line(out, "re-check:", article->recheck_text);
    used = 0;
    for (size_t i = 0; i < article->word_count; i++)
        tl_format_append(words, sizeof words, &used, "%s%s", i > 0 ? ", " : "", article->words[i]);
    print_line(out, "words:", words);
    char rate[8];
    tl__kb_rate(row->applied, row->recheck_passed, rate);
    fprintf(out, "  %-10s suggested %lld, applied %lld, re-check passed %lld (rate %s)\n",
            "outcomes:", (long long)row->suggested, (long long)row->applied,
            (long long)row->recheck_passed, rate);
    fprintf(out, "  %-10s %s\n\n", "sha256:", row->sha256);
    char *body = tl_text_escape_dup(article->body, TL_TEXT_BODY);
    size_t len = body != NULL ? strlen(body) : 0;
    fprintf(out, "%s%s", body != NULL ? body : "", len > 0 && body[len - 1] != '\n' ? "\n" : "");
    free(body);
}

int tl__kb_draft_print(FILE *out, const tl_kb_article_row_t *row, int json)
{
    if (json) {
        json_t *doc = tl__kb_row_json(row);
        if (doc == NULL || json_object_set_new(doc, "source", json_string(row->source)) != 0) {
            json_decref(doc);
            return TL_ENOMEM;
        }
        char *text = tl_text_json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(doc);
        if (text == NULL)
            return TL_ENOMEM;
        fprintf(out, "%s\n", text);
        free(text);
        return 0;
    }
    char title[1024], ticket[TL_ID_TEXT];
    tl_text_clip(title, sizeof title, row->title, 0, TL_TEXT_LINE);
    fprintf(out, "%s  %s\n", row->id, title);
    fprintf(out, "  %-10s %s\n", "category:", row->category);
    fprintf(out, "  %-10s draft, revision %lld", "state:", (long long)row->revision);
    if (row->ticket_id > 0)
        fprintf(out, ", from %s", tl_id_format(ticket, TL_ID_TICKET, row->ticket_id));
    fprintf(out, "\n");
    print_line(out, "needs editing:", row->needs_editing);
    fprintf(out, "  %-10s %s\n\n", "sha256:", row->sha256);
    char *source = tl_text_escape_dup(row->source, TL_TEXT_BODY);
    size_t len = source != NULL ? strlen(source) : 0;
    fprintf(out, "%s%s", source != NULL ? source : "",
            len > 0 && source[len - 1] != '\n' ? "\n" : "");
    free(source);
    return 0;
}

/* ---- reading arguments ---------------------------------------------------------------------- */

static int kind_category(const char *word, void *out, const char **problem)
{
    int index = tl_category_index(word);
    if (index < 0)
        return TL_EINVAL;
    if (out != NULL)
        *(const char **)out = tl_category_name(index);
    return 0;
}

static int kind_article(const char *word, void *out, const char **problem)
{
    if (!tl__kb_id_valid(word))
        return TL_EINVAL;
    if (out != NULL)
        *(const char **)out = word;
    return 0;
}

/* ---- kb ------------------------------------------------------------------------------------- */

static int work_kb(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_kb_article_rows_t list = {0};
    tl_kb_runbook_rates_t rates = {0};
    int rc = tl_store_kb_articles_read(ctx->store, cmd->category,
                                       cmd->drafts ? TL_KB_DRAFT : TL_KB_PUBLISHED, &list);
    if (rc == 0 && !cmd->drafts)
        rc = tl_store_kb_runbook_rates(ctx->store, &rates);
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        goto out;
    }
    if (cmd->json) {
        /* An array of articles, as before; the runbooks' rates are in report --json. */
        json_t *doc = tl__kb_listing_json(&list, NULL);
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
    } else {
        tl__kb_list_print(out, &list);
        if (!cmd->drafts)
            tl__kb_runbooks_print(out, &rates);
    }
out:
    tl_kb_runbook_rates_free(&rates);
    tl_kb_article_rows_free(&list);
    return rc;
}

#define CATEGORY_PROBLEM                                                                           \
    "--category wants account, network, printing, disk, performance, application, hardware, "      \
    "security or other"

const struct tl__command tl__cmd_kb = {
    .name = "kb",
    .usage = "kb [--drafts] [--category C] [--json]",
    .summary = "list the knowledge base's articles and runbooks, with how often their fix worked",
    .capability = TL_CAP_KB_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "drafts",
                      .help = "the drafts from resolved tickets instead of the published articles",
                      .out = TL_CLI_AT(struct cmd, drafts)},
                     {.name = "category",
                      .metavar = "C",
                      .help = "only articles of category C (docs/desk.md)",
                      .kind = TL_CLI_CHECK,
                      .check = kind_category,
                      .out = TL_CLI_AT(struct cmd, category),
                      .problem = CATEGORY_PROBLEM},
                     TL__CMD_JSON("a JSON array of objects: id, title, category, state, runbook "
                                  "(null if none), revision, sha256, added, added_by, updated, "
                                  "ticket (null), published (null), published_by (null), "
                                  "suggested, applied, recheck_passed, rate (null), "
                                  "needs_editing (null)"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .work = work_kb,
    .example = "kb --category disk\n",
};

/* ---- kb show -------------------------------------------------------------------------------- */

static int work_kb_show(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_kb_article_row_t row;
    tl_article_t *article = NULL;
    char why[512];
    int rc = tl_store_kb_article_read(ctx->store, cmd->article_id, &row);
    if (rc == TL_ENOTFOUND) {
        fprintf(err, "tierline: no article %s in the knowledge base (kb lists them)\n",
                cmd->article_id);
        return rc;
    }
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        return rc;
    }
    if ((rc = tl__kb_article_parse(&row, &article, why, sizeof why)) != 0 &&
        row.needs_editing != NULL) {
        rc = tl__kb_draft_print(out, &row, cmd->json);
        goto out;
    }
    if (rc != 0) {
        char shown[600];
        tl_text_clip(shown, sizeof shown, why, 0, TL_TEXT_LINE);
        fprintf(err, "tierline: article %s no longer reads: %s\n", row.id, shown);
        goto out;
    }
    if (cmd->json) {
        json_t *doc = tl__kb_article_json(&row, article);
        rc = doc != NULL ? tl__cmd_print_json(out, doc) : TL_ENOMEM;
        json_decref(doc);
    } else {
        tl__kb_article_print(out, &row, article);
    }
out:
    tl_article_free(article);
    tl_kb_article_row_clear(&row);
    return rc;
}

const struct tl__command tl__cmd_kb_show = {
    .name = "kb show",
    .usage = "kb show ID [--json]",
    .summary = "a knowledge-base article: when it applies, its fix and re-check, its text",
    .capability = TL_CAP_KB_READ,
    .args = {.options =
                 (const tl_cli_arg_t[]){TL__CMD_JSON("the article as kb --json lists it, with "
                                                     "when, recheck, params (an object NAME: "
                                                     "VALUE), words and body"),
                                        {0}},
             .positionals =
                 (const tl_cli_arg_t[]){{.name = "ID",
                                         .kind = TL_CLI_CHECK,
                                         .check = kind_article,
                                         .out = TL_CLI_AT(struct cmd, article_id),
                                         .problem = "an article id is 1 to 48 of a-z, 0-9 and -"},
                                        {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_kb_show,
    .example = "kb show var-log-full\n",
};
