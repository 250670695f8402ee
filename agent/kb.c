/* The knowledge base on the agent (agent/kb.h, docs/diagnostics.md §7). */
#include "agent/kb.h"

#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/kbmatch.h"
#include "proto/log.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* More files than this in the directory are not looked at: a bound on the work. */
#define MAX_FILES (4 * TL_KB_MAX_ARTICLES)
#define WHY_MAX 400

struct skipped {
    char *file;   /* escaped */
    char *reason; /* escaped, one line */
};

struct tl_kb {
    tl_article_t **articles;
    size_t count;
    struct skipped *skipped;
    size_t skipped_count;
};

void tl_kb_free(tl_kb_t *kb)
{
    if (!kb)
        return;
    for (size_t i = 0; i < kb->count; i++)
        tl_article_free(kb->articles[i]);
    for (size_t i = 0; i < kb->skipped_count; i++) {
        free(kb->skipped[i].file);
        free(kb->skipped[i].reason);
    }
    free(kb->articles);
    free(kb->skipped);
    free(kb);
}

const tl_article_t *const *tl_kb_articles(const tl_kb_t *kb, size_t *count)
{
    *count = kb->count;
    return (const tl_article_t *const *)kb->articles;
}

const char *tl_kb_skipped(const tl_kb_t *kb, size_t index, const char **file)
{
    if (index >= kb->skipped_count)
        return NULL;
    if (file)
        *file = kb->skipped[index].file;
    return kb->skipped[index].reason;
}

/* Records a skipped file (reason already escaped, or plain words) and logs it. */
static int skip(tl_kb_t *kb, const char *dir, const char *name, const char *reason)
{
    char *file = tl_text_escape_dup(name, TL_TEXT_LINE);
    char *line = tl_text_escape_dup(reason, TL_TEXT_LINE);
    if (!file || !line) {
        free(file);
        free(line);
        return TL_ENOMEM;
    }
    tl_log_warn("knowledge-base article skipped dir=%s file=%s reason=\"%s\"", dir, file, line);
    kb->skipped[kb->skipped_count].file = file;
    kb->skipped[kb->skipped_count].reason = line;
    kb->skipped_count++;
    return 0;
}

/* The article in file name, or NULL with why (a negative code only for TL_ENOMEM). */
static int read_article(const char *dir, const char *name, tl_article_t **out, char *why,
                        size_t why_size)
{
    char path[PATH_MAX], shown[80];
    char *text = NULL;
    int rc = 0, fd = -1;
    *out = NULL;
    tl_text_clip(shown, sizeof shown, name, 60, TL_TEXT_LINE);
    if (tl_format(path, sizeof path, "%s/%s", dir, name) != 0) {
        tl_format(why, why_size, "%s: the path is too long", shown);
        goto out;
    }
    /* Not a link, not a FIFO that would block the read: a regular file of an article's size. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        tl_format(why, why_size, "%s: cannot read it: %s", shown, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        tl_format(why, why_size, "%s: not a regular file", shown);
        goto out;
    }
    if (st.st_size > TL_ARTICLE_TEXT_MAX) {
        tl_format(why, why_size, "%s: longer than %d bytes", shown, TL_ARTICLE_TEXT_MAX);
        goto out;
    }
    text = malloc(TL_ARTICLE_TEXT_MAX + 1);
    if (!text) {
        rc = TL_ENOMEM;
        goto out;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, text + len, TL_ARTICLE_TEXT_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tl_format(why, why_size, "%s: cannot read it: %s", shown, strerror(errno));
            goto out;
        }
        if (n == 0 || (len += (size_t)n) > TL_ARTICLE_TEXT_MAX)
            break;
    }
    rc = tl_article_parse(name, text, len, out, why, why_size);
    if (rc == TL_EINVAL)
        rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_article_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 3 && strcmp(name + len - 3, ".md") == 0;
}

tl_kb_t *tl_kb_load(const char *dir, int *err)
{
    int rc = 0;
    tl_kb_t *kb = NULL;
    char **names = NULL;
    size_t name_count = 0, *file_of = NULL; /* an article's index in names */
    bool too_many = false;
    DIR *handle = dir ? opendir(dir) : NULL;
    if (!handle) {
        rc = dir ? -errno : TL_EINVAL;
        goto out;
    }
    kb = calloc(1, sizeof *kb);
    names = calloc(MAX_FILES, sizeof *names);
    file_of = calloc(TL_KB_MAX_ARTICLES, sizeof *file_of);
    if (!kb || !names || !file_of ||
        !(kb->articles = calloc(TL_KB_MAX_ARTICLES, sizeof *kb->articles)) ||
        !(kb->skipped = calloc(MAX_FILES + 1, sizeof *kb->skipped))) {
        rc = TL_ENOMEM;
        goto out;
    }
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        if (!is_article_name(entry->d_name))
            continue;
        if (name_count == MAX_FILES) {
            too_many = true;
            break;
        }
        if (!(names[name_count++] = strdup(entry->d_name))) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    qsort(names, name_count, sizeof *names, compare_names);
    for (size_t i = 0; i < name_count; i++) {
        char why[WHY_MAX] = "";
        tl_article_t *article = NULL;
        if (kb->count == TL_KB_MAX_ARTICLES) {
            tl_format(why, sizeof why, "the knowledge base holds at most %d articles",
                      TL_KB_MAX_ARTICLES);
        } else if ((rc = read_article(dir, names[i], &article, why, sizeof why)) < 0) {
            goto out;
        }
        for (size_t k = 0; article && k < kb->count; k++) {
            if (strcmp(kb->articles[k]->id, article->id) == 0) {
                char shown[80], other[80];
                tl_text_clip(shown, sizeof shown, names[i], 60, TL_TEXT_LINE);
                tl_text_clip(other, sizeof other, names[file_of[k]], 60, TL_TEXT_LINE);
                tl_format(why, sizeof why, "%s: id %s is also the id of %s", shown, article->id,
                          other);
                tl_article_free(article);
                article = NULL;
            }
        }
        if (article) {
            file_of[kb->count] = i;
            kb->articles[kb->count++] = article;
        } else if ((rc = skip(kb, dir, names[i], why)) < 0) {
            goto out;
        }
    }
    if (too_many)
        tl_log_warn("knowledge base has more files than are read dir=%s read=%d", dir, MAX_FILES);
out:
    if (handle)
        closedir(handle);
    for (size_t i = 0; names && i < name_count; i++)
        free(names[i]);
    free(names);
    free(file_of);
    if (rc != 0) {
        tl_kb_free(kb);
        kb = NULL;
    }
    if (err)
        *err = rc;
    return kb;
}

int tl_kb_default_dir(char *out, size_t size)
{
#ifdef TL_BUILD_KB_DIR
    /* A build's staged copy of the repository's kb/ (agent/CMakeLists.txt). */
    return tl_fs_shared_dir("kb", TL_BUILD_KB_DIR, out, size);
#else
    return tl_fs_shared_dir("kb", NULL, out, size);
#endif
}

tl_kb_t *tl_kb_open(const char *dir, char *dir_used, size_t dir_used_size, int *err)
{
    char default_dir[PATH_MAX];
    if (dir == NULL) {
        int rc = tl_kb_default_dir(default_dir, sizeof default_dir);
        if (rc != 0) {
            if (err)
                *err = rc;
            return NULL;
        }
        dir = default_dir;
    }
    if (dir_used != NULL && tl_format(dir_used, dir_used_size, "%s", dir) != 0) {
        if (err)
            *err = TL_EINVAL;
        return NULL;
    }
    return tl_kb_load(dir, err);
}

/* {"id","title","category","evidence","runbook"?} of a match. */
static json_t *problem_of(const tl_kb_match_t *match)
{
    const tl_article_t *a = match->article;
    const char *category = tl_category_name(a->category);
    /* The evidence quotes the report, escaped by tl_cond_eval; this keeps it valid UTF-8 too. */
    char *evidence = tl_text_utf8_dup(match->evidence, strlen(match->evidence));
    json_t *problem =
        evidence ? json_pack("{s:s, s:s, s:s, s:s}", "id", a->id, "title", a->title, "category",
                             category ? category : "other", "evidence", evidence)
                 : NULL;
    free(evidence);
    if (problem && a->runbook[0] &&
        json_object_set_new(problem, "runbook", json_string(a->runbook)) != 0) {
        json_decref(problem);
        return NULL;
    }
    return problem;
}

/* "problems" and "knowledge_base" for report, from the articles of dir. */
static int build(const json_t *report, const char *dir, json_t *problems, json_t *summary)
{
    int err = 0, rc = TL_ENOMEM;
    tl_kb_match_t *matches = NULL;
    tl_kb_t *kb = tl_kb_open(dir, NULL, 0, &err);
    if (!kb) {
        if (err == TL_ENOMEM)
            return TL_ENOMEM;
        char why[WHY_MAX];
        tl_format(why, sizeof why, "cannot read the knowledge base: %s", tl_strerror(err));
        return json_object_set_new(summary, "error", json_string(why)) == 0 ? 0 : TL_ENOMEM;
    }
    size_t count = 0, found = 0;
    const tl_article_t *const *articles = tl_kb_articles(kb, &count);
    if (count > 0 && !(matches = calloc(count, sizeof *matches)))
        goto out;
    if (count > 0 && tl_kb_rank(articles, count, report, NULL, matches, count, &found) != 0)
        goto out;
    for (size_t i = 0; i < found; i++) {
        if (matches[i].applies != TL_COND_TRUE)
            continue; /* cannot happen without a description; kept exact all the same */
        json_t *problem = problem_of(&matches[i]);
        if (!problem || json_array_append_new(problems, problem) != 0)
            goto out;
    }
    json_t *skipped = json_array();
    if (!skipped || json_object_set_new(summary, "skipped", skipped) != 0 ||
        json_object_set_new(summary, "articles", json_integer((json_int_t)count)) != 0)
        goto out;
    const char *file, *reason;
    for (size_t i = 0; (reason = tl_kb_skipped(kb, i, &file)) != NULL; i++) {
        json_t *entry = json_pack("{s:s, s:s}", "file", file, "reason", reason);
        if (!entry || json_array_append_new(skipped, entry) != 0)
            goto out;
    }
    rc = 0;
out:
    free(matches);
    tl_kb_free(kb);
    return rc;
}

int tl_kb_add_problems(json_t *report, const char *dir)
{
    char default_dir[PATH_MAX];
    int rc = TL_ENOMEM;
    json_t *problems = json_array(), *summary = json_object();
    json_t *sections = json_incref(json_object_get(report, "sections"));
    if (!json_is_object(report))
        rc = TL_EINVAL;
    if (!problems || !summary || !json_is_object(report))
        goto out;
    if (!dir && tl_kb_default_dir(default_dir, sizeof default_dir) == 0)
        dir = default_dir;
    if (!dir) {
        rc = json_object_set_new(summary, "error",
                                 json_string("no knowledge base found (share/tierline/kb)")) == 0
                 ? 0
                 : TL_ENOMEM;
    } else {
        char *shown = tl_text_utf8_dup(dir, strlen(dir));
        rc = shown && json_object_set_new(summary, "directory", json_string(shown)) == 0
                 ? build(report, dir, problems, summary)
                 : TL_ENOMEM;
        free(shown);
    }
    if (rc < 0)
        goto out;
    /* The summary comes before the sections, as it does in the text. */
    rc = TL_ENOMEM;
    if (sections && json_object_del(report, "sections") != 0)
        goto out;
    if (json_object_set(report, "problems", problems) != 0 ||
        json_object_set(report, "knowledge_base", summary) != 0 ||
        (sections && json_object_set(report, "sections", sections) != 0))
        goto out;
    rc = 0;
out:
    json_decref(problems);
    json_decref(summary);
    json_decref(sections);
    return rc;
}
