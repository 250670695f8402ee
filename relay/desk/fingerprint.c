/*
 * Diagnostic fingerprints and the title match (docs/desk.md "Diagnostic fingerprints").
 */
#include "relay/desk/fingerprint.h"

#include "proto/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the fingerprint ------------------------------------------------------------------------ */

static int put_key(tl_buf_t *line, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0' && rc == 0; p++) {
        if (*p >= '!' && *p <= '~' && *p != '%') {
            rc = tl_buf_put_u8(line, *p);
        } else {
            char escaped[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = tl_buf_put(line, escaped, sizeof escaped);
        }
    }
    return rc;
}

static int compare_lines(const void *a_ptr, const void *b_ptr)
{
    const char *a = *(const char *const *)a_ptr, *b = *(const char *const *)b_ptr;
    return strcmp(a, b);
}

/* The distinct condition lines of findings, sorted; *lines malloc'd, each line too. */
static int condition_lines(const tl_classify_findings_t *findings, char ***lines, size_t *count)
{
    int rc = 0;
    size_t total = tl_classify_findings_count(findings);
    char **items = calloc(total ? total : 1, sizeof *items);
    tl_buf_t *line = tl_buf_new((size_t)TL_CLASSIFY_DIAGNOSTICS_MAX * 3 + 256);
    size_t n = 0;
    if (items == NULL || line == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < total; i++) {
        const tl_classify_finding_t *finding = tl_classify_findings_get(findings, i);
        if (!finding->fingerprint)
            continue;
        tl_buf_reset(line);
        size_t line_len;
        if ((rc = tl_buf_put(line, finding->rule, strlen(finding->rule))) < 0 ||
            (finding->key[0] != '\0' &&
             ((rc = tl_buf_put_u8(line, ' ')) < 0 || (rc = put_key(line, finding->key)) < 0)) ||
            (rc = tl_buf_put_u8(line, '\n')) < 0 ||
            (rc = tl_buf_take_string(line, &items[n], &line_len)) < 0)
            goto out;
        n++;
    }
    qsort(items, n, sizeof *items, compare_lines);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept > 0 && strcmp(items[kept - 1], items[i]) == 0) {
            free(items[i]);
            continue;
        }
        items[kept++] = items[i];
    }
    n = kept;
    *lines = items;
    *count = n;
    items = NULL;
out:
    if (items != NULL) {
        for (size_t i = 0; i < n; i++)
            free(items[i]);
        free(items);
    }
    tl_buf_free(line);
    return rc;
}

static void free_lines(char **lines, size_t count)
{
    for (size_t i = 0; lines != NULL && i < count; i++)
        free(lines[i]);
    free(lines);
}

int tl_fingerprint_conditions(const tl_classify_findings_t *findings, tl_buf_t *out)
{
    char **lines = NULL;
    size_t count = 0;
    size_t before = tl_buf_len(out);
    int rc = condition_lines(findings, &lines, &count);
    if (rc == 0 && count > 0)
        rc = tl_buf_put(out, TL_FINGERPRINT_HEADER, strlen(TL_FINGERPRINT_HEADER));
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = tl_buf_put(out, lines[i], strlen(lines[i]));
    if (rc < 0 && tl_buf_len(out) > before)
        tl_buf_unreserve(out, tl_buf_len(out) - before);
    free_lines(lines, count);
    return rc;
}

int tl_fingerprint_compute(const tl_classify_findings_t *findings, tl_fingerprint_t *out)
{
    char **lines = NULL;
    size_t count = 0;
    tl_sha256_t *hash = NULL;
    tl_fingerprint_t result = {{0}, 0};
    int rc = condition_lines(findings, &lines, &count);
    if (rc < 0 || count == 0)
        goto done;
    if ((hash = tl_sha256_new()) == NULL) {
        rc = TL_ENOMEM;
        goto done;
    }
    if ((rc = tl_sha256_update(hash, TL_FINGERPRINT_HEADER, strlen(TL_FINGERPRINT_HEADER))) < 0)
        goto done;
    for (size_t i = 0; i < count; i++)
        if ((rc = tl_sha256_update(hash, lines[i], strlen(lines[i]))) < 0)
            goto done;
    if ((rc = tl_sha256_final(hash, result.hex)) < 0)
        goto done;
    result.condition_count = count;
done:
    if (rc == 0)
        *out = result;
    tl_sha256_free(hash);
    free_lines(lines, count);
    return rc;
}

/* --- the title match ------------------------------------------------------------------------ */

const char *const tl_fingerprint_stop_words[] = {
    "a",      "about", "after",  "again",  "all",  "also",   "am",    "an",     "and",     "any",
    "are",    "as",    "at",     "be",     "been", "before", "being", "both",   "but",     "by",
    "can",    "could", "did",    "do",     "does", "doing",  "each",  "every",  "for",     "from",
    "had",    "has",   "have",   "having", "he",   "hello",  "help",  "her",    "here",    "hi",
    "his",    "how",   "i",      "if",     "in",   "into",   "is",    "issue",  "it",      "its",
    "just",   "may",   "me",     "might",  "more", "most",   "much",  "must",   "my",      "no",
    "not",    "of",    "on",     "only",   "or",   "other",  "our",   "please", "problem", "same",
    "shall",  "she",   "should", "since",  "so",   "some",   "still", "such",   "than",    "thank",
    "thanks", "that",  "the",    "their",  "them", "then",   "there", "these",  "they",    "this",
    "those",  "to",    "too",    "until",  "very", "was",    "we",    "were",   "what",    "when",
    "where",  "which", "while",  "who",    "why",  "will",   "with",  "would",  "you",     "your",
    NULL,
};

/* At most this many distinct significant words of a problem's title are compared. */
#define TITLE_WORDS_MAX 64

struct word_set {
    char *words[TITLE_WORDS_MAX];
    bool seen[TITLE_WORDS_MAX];
    size_t count;
    bool collecting; /* true: the title's words are being gathered; false: the ticket's */
    int rc;
};

static bool stop_word(const char *word)
{
    for (size_t i = 0; tl_fingerprint_stop_words[i] != NULL; i++)
        if (strcmp(word, tl_fingerprint_stop_words[i]) == 0)
            return true;
    return false;
}

/* The form words are compared in: lowercase (done), no plural 's' on words of 4 or more. */
static size_t normal_length(const char *word, size_t len)
{
    if (len >= 4 && word[len - 1] == 's' && word[len - 2] != 's')
        return len - 1;
    return len;
}

static int on_word(const char *word, size_t len, void *arg)
{
    struct word_set *set = arg;
    if (len < 2 || stop_word(word))
        return 0;
    size_t normal = normal_length(word, len);
    for (size_t i = 0; i < set->count; i++) {
        if (strlen(set->words[i]) == normal && memcmp(set->words[i], word, normal) == 0) {
            if (!set->collecting)
                set->seen[i] = true;
            return 0;
        }
    }
    if (!set->collecting || set->count == TITLE_WORDS_MAX)
        return 0;
    if ((set->words[set->count] = strndup(word, normal)) == NULL) {
        set->rc = TL_ENOMEM;
        return 1;
    }
    set->count++;
    return 0;
}

static void set_why(char *why, size_t why_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_size, const char *format, ...)
{
    if (why == NULL || why_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_size, format, args);
    va_end(args);
}

int tl_fingerprint_text_match(const char *ticket_title, const char *ticket_description,
                              const char *problem_title, tl_fingerprint_text_match_t *out,
                              char *why, size_t why_size)
{
    int rc = 0;
    struct word_set set = {.collecting = true};
    const char *texts[3] = {problem_title ? problem_title : "", ticket_title ? ticket_title : "",
                            ticket_description ? ticket_description : ""};
    static const char *const names[3] = {"problem's title", "ticket's title",
                                         "ticket's description"};
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(texts[i]);
        if (len > TL_CLASSIFY_TEXT_MAX) {
            set_why(why, why_size, "the %s is %zu bytes, more than the %d a match reads", names[i],
                    len, TL_CLASSIFY_TEXT_MAX);
            rc = TL_EINVAL;
            goto out;
        }
    }
    for (int i = 0; i < 3; i++) {
        set.collecting = i == 0;
        rc = tl_classify_words(texts[i], strlen(texts[i]), on_word, &set);
        if (set.rc < 0 || rc < 0) {
            rc = set.rc < 0 ? set.rc : rc;
            set_why(why, why_size, "out of memory");
            goto out;
        }
    }
    tl_fingerprint_text_match_t result = {.title_words = set.count};
    for (size_t i = 0; i < set.count; i++)
        result.shared_words += set.seen[i];
    if (set.count > 0)
        result.per_mille = (unsigned)(result.shared_words * 1000 / set.count);
    size_t needed = set.count < 2 ? set.count : 2;
    result.matches = set.count > 0 && result.shared_words >= needed &&
                     result.per_mille >= TL_FINGERPRINT_TEXT_THRESHOLD;
    *out = result;
    rc = 0;
out:
    for (size_t i = 0; i < set.count; i++)
        free(set.words[i]);
    return rc;
}
