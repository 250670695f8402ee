/* Which knowledge-base articles fit a problem (proto/kbmatch.h, docs/kb.md "Matching"). */
#include "proto/kbmatch.h"
#include "proto/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define APPLIES_SCORE 1000
#define WORD_SCORE 10
#define TITLE_WORD_SCORE 2
#define WORD_LEN_MAX 32

struct words {
    char list[TL_KBMATCH_WORDS_MAX][WORD_LEN_MAX + 1];
    size_t count;
};

static bool word_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch >= 0x80;
}

/* The words of text: lower-cased runs of letters, digits, '-' and non-ASCII bytes, each once;
 * ASCII only is folded, a word longer than WORD_LEN_MAX is cut. */
static void split(const char *text, size_t max_len, struct words *out)
{
    out->count = 0;
    size_t len = text != NULL ? strnlen(text, max_len) : 0;
    size_t i = 0;
    while (i < len && out->count < TL_KBMATCH_WORDS_MAX) {
        char word[WORD_LEN_MAX + 1];
        size_t n = 0;
        while (i < len) {
            unsigned char ch = (unsigned char)text[i];
            if (ch >= 'A' && ch <= 'Z')
                ch = (unsigned char)(ch - 'A' + 'a');
            if (!word_char(ch))
                break;
            if (n < WORD_LEN_MAX)
                word[n++] = (char)ch;
            i++;
        }
        i++;
        if (n == 0)
            continue;
        word[n] = '\0';
        bool seen = false;
        for (size_t w = 0; w < out->count && !seen; w++)
            seen = strcmp(out->list[w], word) == 0;
        if (!seen)
            memcpy(out->list[out->count++], word, n + 1);
    }
}

/* Whether the description has word: the same word, or one it begins (of four letters or more:
 * "print" is in "printer" and "printing", "log" is not in "login"). */
static bool has_word(const struct words *description, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i < description->count; i++) {
        const char *d = description->list[i];
        if (strcmp(d, word) == 0 || (n >= 4 && strncmp(d, word, n) == 0))
            return true;
    }
    return false;
}

static int order(const void *a, const void *b)
{
    const tl_kb_match_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(x->article->id, y->article->id);
}

int tl_kb_rank(const tl_article_t *const *articles, size_t count, const json_t *report,
               const char *description, tl_kb_match_t *out, size_t max, size_t *found_out)
{
    *found_out = 0;
    if (max == 0)
        return 0;
    struct words *said = malloc(sizeof *said);
    struct words *title = malloc(sizeof *title);
    tl_kb_match_t *all = count > 0 ? calloc(count, sizeof *all) : NULL;
    size_t found = 0;
    int rc = TL_ENOMEM;
    if (said == NULL || title == NULL || (count > 0 && all == NULL))
        goto out;
    split(description, TL_KBMATCH_TEXT_MAX, said);
    for (size_t i = 0; i < count; i++) {
        const tl_article_t *a = articles[i];
        tl_kb_match_t *m = &all[found];
        m->article = a;
        m->applies = report != NULL ? tl_cond_eval(a->when, report, m->evidence, sizeof m->evidence)
                                    : TL_COND_UNKNOWN;
        if (m->applies == TL_COND_FALSE)
            continue;
        m->words_matched = 0;
        for (size_t w = 0; w < a->word_count; w++)
            m->words_matched += has_word(said, a->words[w]);
        if (m->applies != TL_COND_TRUE && m->words_matched == 0)
            continue;
        split(a->title, sizeof a->title, title);
        size_t title_hits = 0;
        for (size_t w = 0; w < title->count; w++)
            title_hits += strlen(title->list[w]) >= 4 && has_word(said, title->list[w]);
        m->score = (m->applies == TL_COND_TRUE ? APPLIES_SCORE : 0) +
                   (int)m->words_matched * WORD_SCORE + (int)title_hits * TITLE_WORD_SCORE;
        if (m->applies != TL_COND_TRUE)
            m->evidence[0] = '\0';
        found++;
    }
    if (found > 1)
        qsort(all, found, sizeof *all, order);
    if (found > max)
        found = max;
    memcpy(out, all, found * sizeof *all);
    *found_out = found;
    rc = 0;
out:
    free(said);
    free(title);
    free(all);
    return rc;
}
