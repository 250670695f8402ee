/*
 * Fuzz target for knowledge-base articles (proto/article.h, docs/kb.md "Articles"): what an
 * admin adds with `tierline-relay kb add` and what the agent reads from its catalogue.
 *
 * The input is the article's text. One that is refused gives a "FILE..." reason within its
 * buffer; one that parses has a valid id, a title, a category, both conditions, parameters
 * only with a runbook, and a body that is not blank; it parses again to the same fields.
 */
#include "proto/article.h"
#include "proto/err.h"
#include "proto/names.h"
#include "proto/vocab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tl_article_t *a = NULL;
    char why[400];
    int rc = tl_article_parse("fuzz.md", (const char *)data, size, &a, why, sizeof why);
    if (rc != 0) {
        if (rc != TL_EINVAL || a != NULL || strncmp(why, "fuzz.md", 7) != 0)
            abort();
        return 0;
    }
    if (!tl_runbook_name_valid(a->id) || a->title[0] == '\0' ||
        tl_category_name(a->category) == NULL || a->when == NULL || a->recheck == NULL ||
        a->when_text == NULL || a->recheck_text == NULL || a->body == NULL ||
        strspn(a->body, " \t\r\n") == strlen(a->body) ||
        (a->param_count > 0 && a->runbook[0] == '\0') ||
        (a->runbook[0] != '\0' && !tl_runbook_name_valid(a->runbook)))
        abort();
    tl_article_t *b = NULL;
    if (tl_article_parse("fuzz.md", (const char *)data, size, &b, why, sizeof why) != 0 ||
        strcmp(a->id, b->id) != 0 || strcmp(a->when_text, b->when_text) != 0 ||
        strcmp(a->body, b->body) != 0 || a->param_count != b->param_count)
        abort();
    tl_article_free(b);
    tl_article_free(a);
    return 0;
}
