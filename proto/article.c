/* Knowledge-base articles (proto/article.h, docs/kb.md "Articles"). */
#include "proto/article.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/names.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum key { K_ID, K_TITLE, K_CATEGORY, K_WHEN, K_RECHECK, K_RUNBOOK, K_PARAM, K_WORDS, KEYS };

static const char *const key_names[KEYS] = {
    [K_ID] = "id",       [K_TITLE] = "title",     [K_CATEGORY] = "category",
    [K_WHEN] = "when",   [K_RECHECK] = "recheck", [K_RUNBOOK] = "runbook",
    [K_PARAM] = "param", [K_WORDS] = "words",
};

struct parser {
    const char *file;
    char *why;
    size_t why_size;
    tl_article_t *a;
    size_t seen_line[KEYS]; /* the line a key was given on; 0: not given */
};

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, size_t line,
                                                      const char *fmt, ...)
{
    char what[400];
    va_list args;
    va_start(args, fmt);
    tl_format_v(what, sizeof what, fmt, args);
    va_end(args);
    char file[80];
    tl_text_clip(file, sizeof file, p->file != NULL ? p->file : "article", 60, TL_TEXT_LINE);
    if (line > 0)
        tl_format(p->why, p->why_size, "%s:%zu: %s", file, line, what);
    else
        tl_format(p->why, p->why_size, "%s: %s", file, what);
    return TL_EINVAL;
}

void tl_article_free(tl_article_t *article)
{
    if (article == NULL)
        return;
    free(article->when_text);
    free(article->recheck_text);
    tl_cond_free(article->when);
    tl_cond_free(article->recheck);
    for (size_t i = 0; i < article->param_count; i++)
        free(article->params[i]);
    free(article->body);
    free(article);
}

static size_t characters(const char *text)
{
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)text; *s != '\0'; s++)
        n += (*s & 0xc0) != 0x80;
    return n;
}

static int parse_words(struct parser *p, size_t line, const char *value)
{
    tl_article_t *a = p->a;
    const char *s = value;
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, ",");
        size_t end = n;
        while (end > 0 && s[end - 1] == ' ')
            end--;
        if (end == 0 || end > TL_ARTICLE_WORD_MAX ||
            strspn(s, "abcdefghijklmnopqrstuvwxyz"
                      "0123456789-") < end)
            return fail(p, line,
                        "words: '%.*s' is not a word (1 to %d of a-z, 0-9 and '-', separated "
                        "by commas)",
                        (int)(end > 40 ? 40 : end), s, TL_ARTICLE_WORD_MAX);
        if (a->word_count == TL_ARTICLE_WORDS_MAX)
            return fail(p, line, "words: more than %d", TL_ARTICLE_WORDS_MAX);
        memcpy(a->words[a->word_count], s, end);
        a->words[a->word_count][end] = '\0';
        for (size_t i = 0; i < a->word_count; i++)
            if (strcmp(a->words[i], a->words[a->word_count]) == 0)
                return fail(p, line, "words: '%s' is given twice", a->words[i]);
        a->word_count++;
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

static int parse_param(struct parser *p, size_t line, const char *value)
{
    tl_article_t *a = p->a;
    const char *eq = strchr(value, '=');
    if (eq == NULL || !tl_runbook_param_name_valid(value, (size_t)(eq - value)))
        return fail(p, line,
                    "param: '%s' is not NAME=VALUE with a NAME of A-Z, 0-9 and '_' (at most %d)",
                    value, TL_RUNBOOK_PARAM_NAME_MAX);
    if (strlen(eq + 1) > TL_ARTICLE_PARAM_VALUE_MAX)
        return fail(p, line, "param: the value of %.*s is longer than %d bytes", (int)(eq - value),
                    value, TL_ARTICLE_PARAM_VALUE_MAX);
    for (size_t i = 0; i < a->param_count; i++)
        if (strncmp(a->params[i], value, (size_t)(eq - value) + 1) == 0)
            return fail(p, line, "param: %.*s is given twice", (int)(eq - value), value);
    if (a->param_count == TL_ARTICLE_PARAMS_MAX)
        return fail(p, line, "param: more than %d", TL_ARTICLE_PARAMS_MAX);
    if ((a->params[a->param_count] = strdup(value)) == NULL)
        return TL_ENOMEM;
    a->param_count++;
    return 0;
}

static int parse_condition(struct parser *p, size_t line, const char *key, const char *value,
                           char **text, tl_cond_t **cond)
{
    char why[300];
    int rc = tl_cond_parse(value, strlen(value), cond, why, sizeof why);
    if (rc == TL_EINVAL)
        return fail(p, line, "%s: %s", key, why);
    if (rc != 0)
        return rc;
    return (*text = strdup(value)) == NULL ? TL_ENOMEM : 0;
}

static int set_key(struct parser *p, enum key key, size_t line, const char *value)
{
    tl_article_t *a = p->a;
    if (value[0] == '\0')
        return fail(p, line, "%s: no value", key_names[key]);
    if (!tl_text_printable(value, strlen(value), TL_TEXT_LINE))
        return fail(p, line, "%s: a control character or a byte that is not UTF-8", key_names[key]);
    switch (key) {
    case K_ID:
    case K_RUNBOOK:
        if (!tl_runbook_name_valid(value))
            return fail(p, line,
                        "%s: '%s' is not a name (1 to %d of a-z, 0-9 and '-', not "
                        "starting with '-')",
                        key_names[key], value, TL_ARTICLE_ID_MAX);
        tl_format(key == K_ID ? a->id : a->runbook, sizeof a->id, "%s", value);
        return 0;
    case K_TITLE:
        if (characters(value) > TL_ARTICLE_TITLE_MAX || strlen(value) >= sizeof a->title)
            return fail(p, line, "title: longer than %d characters", TL_ARTICLE_TITLE_MAX);
        tl_format(a->title, sizeof a->title, "%s", value);
        return 0;
    case K_CATEGORY:
        if ((a->category = tl_category_index(value)) < 0) {
            char known[200] = "";
            size_t used = 0;
            for (int i = 0; tl_category_name(i) != NULL; i++)
                tl_format_append(known, sizeof known, &used, "%s%s", i ? ", " : "",
                                 tl_category_name(i));
            return fail(p, line, "category: '%s' is not one of %s", value, known);
        }
        return 0;
    case K_WHEN:
        return parse_condition(p, line, "when", value, &a->when_text, &a->when);
    case K_RECHECK:
        return parse_condition(p, line, "recheck", value, &a->recheck_text, &a->recheck);
    case K_PARAM:
        return parse_param(p, line, value);
    case K_WORDS:
        return parse_words(p, line, value);
    case KEYS:
        break;
    }
    return TL_EINVAL;
}

/* One header line, "key: value", with its continuation lines already joined. */
static int header_line(struct parser *p, size_t line, char *text)
{
    char *colon = strchr(text, ':');
    size_t name_len = colon != NULL ? (size_t)(colon - text) : strlen(text);
    enum key key = KEYS;
    for (int k = 0; k < KEYS; k++)
        if (strlen(key_names[k]) == name_len && memcmp(text, key_names[k], name_len) == 0)
            key = (enum key)k;
    if (colon == NULL || key == KEYS) {
        char shown[64];
        tl_format(shown, sizeof shown, "%.*s", (int)(name_len > 40 ? 40 : name_len), text);
        char *escaped = tl_text_escape_dup(shown, TL_TEXT_LINE);
        int rc = fail(p, line,
                      colon == NULL ? "'%s' is not 'key: value'"
                                    : "unknown key '%s' (keys: id, title, category, when, "
                                      "recheck, runbook, param, words)",
                      escaped != NULL ? escaped : "?");
        free(escaped);
        return rc;
    }
    if (key != K_PARAM && p->seen_line[key] != 0)
        return fail(p, line, "%s is given twice (also on line %zu)", key_names[key],
                    p->seen_line[key]);
    if (p->seen_line[key] == 0)
        p->seen_line[key] = line;
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t end = strlen(value);
    while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        value[--end] = '\0';
    return set_key(p, key, line, value);
}

/* The next line of text at *pos: its bytes without the line end (a "\r\n" or "\n"). */
static bool next_line(const char *text, size_t len, size_t *pos, const char **line,
                      size_t *line_len)
{
    if (*pos >= len)
        return false;
    const char *start = text + *pos, *nl = memchr(start, '\n', len - *pos);
    size_t n = nl != NULL ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl != NULL);
    if (n > 0 && start[n - 1] == '\r')
        n--;
    *line = start;
    *line_len = n;
    return true;
}

static int parse_header(struct parser *p, const char *text, size_t len, size_t *body_at,
                        size_t *body_line)
{
    size_t pos = 0, line_no = 0, value_line = 0;
    const char *line;
    size_t line_len;
    char value[TL_COND_TEXT_MAX + 256];
    size_t used = 0;
    bool have = false;
    if (!next_line(text, len, &pos, &line, &line_len) || line_len != 3 ||
        memcmp(line, "---", 3) != 0)
        return fail(p, 1, "an article starts with a header: a line '---'");
    line_no = 1;
    for (;;) {
        if (!next_line(text, len, &pos, &line, &line_len))
            return fail(p, line_no, "the header does not end (a line '---' is missing)");
        line_no++;
        bool closing = line_len == 3 && memcmp(line, "---", 3) == 0;
        bool continues = line_len > 0 && (line[0] == ' ' || line[0] == '\t');
        if (continues && !have)
            return fail(p, line_no, "a continued line with no key before it");
        if (continues) {
            while (line_len > 0 && (line[0] == ' ' || line[0] == '\t')) {
                line++;
                line_len--;
            }
            if (used + 1 + line_len >= sizeof value)
                return fail(p, value_line, "a value longer than %zu bytes", sizeof value - 1);
            value[used++] = ' ';
            memcpy(value + used, line, line_len);
            used += line_len;
            value[used] = '\0';
            continue;
        }
        if (have) {
            int rc = header_line(p, value_line, value);
            if (rc != 0)
                return rc;
            have = false;
        }
        if (closing)
            break;
        if (line_len == 0)
            continue;
        if (line_len >= sizeof value)
            return fail(p, line_no, "a line longer than %zu bytes", sizeof value - 1);
        memcpy(value, line, line_len);
        value[line_len] = '\0';
        used = line_len;
        value_line = line_no;
        have = true;
    }
    *body_at = pos;
    *body_line = line_no + 1;
    return 0;
}

static int check_whole(struct parser *p, const char *body, size_t body_line)
{
    tl_article_t *a = p->a;
    static const enum key required[] = {K_ID, K_TITLE, K_CATEGORY, K_WHEN};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (p->seen_line[required[i]] == 0)
            return fail(p, 0, "the header has no %s", key_names[required[i]]);
    if (a->param_count > 0 && a->runbook[0] == '\0')
        return fail(p, p->seen_line[K_PARAM], "param: there is no runbook to take it");
    if (strspn(body, " \t\r\n") == strlen(body))
        return fail(p, body_line, "the article has no text after its header");
    if (a->recheck == NULL) {
        /* Checked by the condition it was suggested on: after the fix it must not hold. */
        if ((a->recheck_text = strdup(a->when_text)) == NULL)
            return TL_ENOMEM;
        char why[8];
        int rc = tl_cond_parse(a->when_text, strlen(a->when_text), &a->recheck, why, sizeof why);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tl_article_parse(const char *file, const char *text, size_t len, tl_article_t **out, char *why,
                     size_t why_size)
{
    *out = NULL;
    struct parser p = {.file = file, .why = why, .why_size = why_size};
    if (len > TL_ARTICLE_TEXT_MAX)
        return fail(&p, 0, "longer than %d bytes", TL_ARTICLE_TEXT_MAX);
    if (!tl_text_utf8_valid(text, len))
        return fail(&p, 0, "not UTF-8 text");
    for (size_t i = 0, line = 1; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch == 0x7f)
            return fail(&p, line, "a control character (0x%02x)", ch);
        line += ch == '\n';
    }
    if ((p.a = calloc(1, sizeof *p.a)) == NULL)
        return TL_ENOMEM;
    size_t body_at = 0, body_line = 0;
    int rc = parse_header(&p, text, len, &body_at, &body_line);
    if (rc == 0 && (p.a->body = malloc(len - body_at + 1)) == NULL)
        rc = TL_ENOMEM;
    if (rc == 0) {
        memcpy(p.a->body, text + body_at, len - body_at);
        p.a->body[len - body_at] = '\0';
        rc = check_whole(&p, p.a->body, body_line);
    }
    if (rc != 0) {
        tl_article_free(p.a);
        return rc;
    }
    *out = p.a;
    return 0;
}
