/*
 * The relay's knowledge base, for admins on the relay host (docs/kb.md "The relay's knowledge
 * base"): kb add reads article files, checks each whole (it parses, its runbook is in the
 * runbook catalogue and its parameters pass that runbook's rules) and stores them all or none;
 * kb list and kb show read them; kb remove takes one out. Every add, replacement and removal is
 * committed with its audit entry (kb.add, kb.replace, kb.remove).
 */
#include "relay/cmd/admin_int.h"

#include "proto/article.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/names.h"
#include "proto/runbooks.h"
#include "proto/text.h"
#include "proto/vocab.h"
#include "relay/cmd/kb.h"
#include "relay/store/audit_chain.h"
#include "relay/store/datadir.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM TL_ADMIN_PROGRAM
#define ACTOR "admin"

/* The words of a `kb` command, as parsed. */
struct kb_args {
    const char *data, *runbooks, *category, *file;
    int verb, replace, json, drafts;
    tl_cli_words_t words; /* add: the files; show, remove: the id */
};

static const char *const verbs[] = {"add", "list", "show", "remove", "publish", NULL};
enum { VERB_ADD, VERB_LIST, VERB_SHOW, VERB_REMOVE, VERB_PUBLISH };

/* ---- add: reading and checking the files ---------------------------------------------------- */

/* One file of a kb add, read and checked. */
struct kb_file {
    const char *path;
    char *text;
    size_t len;
    tl_article_t *article;
    char sha256[TL_SHA256_HEX_LEN];
};

/*
 * The line of the header where key is given (for param, the one naming param): for messages
 * about what only the catalogue can check. 0 when it is not there.
 */
static size_t header_line(const char *text, const char *key, const char *param)
{
    size_t line = 1, key_len = strlen(key), param_len = param != NULL ? strlen(param) : 0;
    int dashes = 0;
    for (const char *p = text; *p != '\0' && dashes < 2; line++) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len >= 3 && strncmp(p, "---", 3) == 0 && (len == 3 || p[3] == '\r'))
            dashes++;
        else if (len > key_len && strncmp(p, key, key_len) == 0 && p[key_len] == ':') {
            const char *value = p + key_len + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            if (param == NULL || (strncmp(value, param, param_len) == 0 && value[param_len] == '='))
                return line;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

/* "FILE:LINE: " (or "FILE: " with no line) and the reason, on stderr. */
static void refuse(const struct kb_file *file, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(const struct kb_file *file, size_t line, const char *fmt, ...)
{
    va_list args;
    if (line > 0)
        fprintf(stderr, "%s:%zu: ", file->path, line);
    else
        fprintf(stderr, "%s: ", file->path);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}

/* The catalogue's runbooks as "a, b, c" (near ones only when near is set), for a message. */
static void runbook_names(const tl_runbooks_t *catalogue, const char *wanted, int near, char *out,
                          size_t size)
{
    json_t *list = tl_runbooks_list(catalogue);
    size_t used = 0, i;
    json_t *entry;
    out[0] = '\0';
    json_array_foreach(list, i, entry) {
        const char *name = json_string_value(json_object_get(entry, "name"));
        if (name == NULL || (near && tl_name_distance(name, wanted) > 3 &&
                             strstr(name, wanted) == NULL && strstr(wanted, name) == NULL))
            continue;
        tl_format_append(out, size, &used, "%s%s", used ? ", " : "", name);
    }
    json_decref(list);
}

/* The runbook the article suggests is in the catalogue and its parameters pass its rules. */
static int check_runbook(const struct kb_file *file, const tl_runbooks_t *catalogue,
                         const char *catalogue_dir)
{
    const tl_article_t *a = file->article;
    size_t line = header_line(file->text, "runbook", NULL);
    if (catalogue == NULL) {
        refuse(file, line,
               "runbook: no runbook catalogue to check '%s' against (give --runbooks DIR)",
               a->runbook);
        return TL_EINVAL;
    }
    if (tl_runbooks_find(catalogue, a->runbook) == NULL) {
        char names[512];
        runbook_names(catalogue, a->runbook, 1, names, sizeof names);
        int near = names[0] != '\0';
        if (!near)
            runbook_names(catalogue, a->runbook, 0, names, sizeof names);
        fprintf(stderr, "%s:%zu: runbook: the catalogue (%s) has no runbook '%s'; %s%s\n",
                file->path, line, catalogue_dir, a->runbook,
                near       ? "did you mean: "
                : names[0] ? "it has: "
                           : "it has none",
                names);
        return TL_EINVAL;
    }
    json_t *args = json_object();
    for (size_t i = 0; args != NULL && i < a->param_count; i++) {
        const char *equals = strchr(a->params[i], '=');
        char name[TL_RUNBOOK_PARAM_NAME_MAX + 1];
        size_t len = equals != NULL ? (size_t)(equals - a->params[i]) : 0;
        if (len == 0 || len >= sizeof name)
            continue; /* the article's parser admits no such parameter */
        memcpy(name, a->params[i], len);
        name[len] = '\0';
        json_object_set_new(args, name, json_string(equals + 1));
    }
    if (args == NULL)
        return TL_ENOMEM;
    /* The article only suggests it: who may run it is decided when someone does. */
    tl_runbook_run_t run;
    char message[512];
    int rc = tl_runbooks_check(catalogue, a->runbook, args, "tier3", true, &run, message,
                               sizeof message);
    if (rc == 0) {
        tl_runbooks_run_release(&run);
    } else {
        /* Point at the parameter the rules name, if the article gives it. */
        size_t at = line;
        const char *key;
        json_t *value;
        json_object_foreach(args, key, value) {
            size_t param_line = header_line(file->text, "param", key);
            if (strstr(message, key) != NULL && param_line > 0) {
                at = param_line;
                break;
            }
        }
        refuse(file, at, "%s%s", at == line ? "runbook: " : "param: ", message);
    }
    json_decref(args);
    return rc != 0 ? TL_EINVAL : 0;
}

/* Reads and checks one file; TL_EINVAL (refused, said why), or another code (said too). */
static int read_article(struct kb_file *file, const tl_runbooks_t *catalogue,
                        const char *catalogue_dir)
{
    char why[1024];
    int rc =
        tl_fs_read_file(file->path, TL_ARTICLE_TEXT_MAX, 0, NULL, NULL, &file->text, &file->len);
    if (rc == TL_EFULL) {
        refuse(file, 0, "larger than %d bytes: an article is at most 64 KiB", TL_ARTICLE_TEXT_MAX);
        return TL_EINVAL;
    }
    if (rc != 0) {
        fprintf(stderr, PROGRAM " kb add: %s cannot be read: %s\n", file->path, tl_strerror(rc));
        return rc;
    }
    rc = tl_article_parse(file->path, file->text, file->len, &file->article, why, sizeof why);
    if (rc == TL_EINVAL) {
        fprintf(stderr, "%s\n", why);
        return rc;
    }
    if (rc != 0) {
        tl_admin_fail("kb add", rc);
        return rc;
    }
    if (file->article->runbook[0] != '\0' &&
        (rc = check_runbook(file, catalogue, catalogue_dir)) != 0)
        return rc;
    return tl_sha256_hex(file->text, file->len, file->sha256);
}

/* ---- add: storing them, with their audit entries -------------------------------------------- */

struct kb_change {
    struct kb_file *files;
    size_t count;
    int replace;
    size_t failed;  /* the file the store refused */
    int *replaced;  /* per file: 1 if it replaced an article */
    const char *id; /* remove: the id */
};

static int stage_add(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    struct kb_change *change = arg;
    int64_t now = tl_wall_ms();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < change->count; i++) {
        const struct kb_file *file = &change->files[i];
        const tl_article_t *a = file->article;
        tl_kb_article_row_t previous = {0};
        int had = change->replace && tl_store_kb_article_read(store, a->id, &previous) == 0;
        tl_kb_article_row_t row = {
            .id = a->id,
            .title = a->title,
            .category = tl_category_name(a->category),
            .runbook = a->runbook[0] != '\0' ? a->runbook : NULL,
            .source = file->text,
            .sha256 = file->sha256,
            .state = TL_KB_PUBLISHED,
            .added_by = ACTOR,
        };
        rc = tl_store_kb_article_add(store, &row, change->replace, now, &change->replaced[i]);
        json_t *details = rc == 0 ? json_pack("{s:s, s:s, s:s?, s:s, s:s}", "title", a->title,
                                              "category", row.category, "runbook", row.runbook,
                                              "sha256", file->sha256, "file", file->path)
                                  : NULL;
        if (rc == 0 && details == NULL)
            rc = TL_ENOMEM;
        if (rc == 0 && had) {
            json_object_set_new(details, "previous_sha256", json_string(previous.sha256));
            json_object_set_new(details, "revision", json_integer(previous.revision + 1));
        }
        tl_audit_entry_t entry = {ACTOR, change->replaced[i] ? "kb.replace" : "kb.add", a->id,
                                  details, 0};
        if (rc == 0)
            rc = tl_audit_chain_stage(chain, &entry, NULL);
        json_decref(details);
        tl_kb_article_row_clear(&previous);
        if (rc != 0)
            change->failed = i;
    }
    return rc;
}

static int stage_remove(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    struct kb_change *change = arg;
    tl_kb_article_row_t row;
    int rc = tl_store_kb_article_read(store, change->id, &row);
    if (rc != 0)
        return rc;
    json_t *details =
        json_pack("{s:s, s:s, s:I, s:I}", "title", row.title, "sha256", row.sha256, "applied",
                  (json_int_t)row.applied, "recheck_passed", (json_int_t)row.recheck_passed);
    rc = details != NULL ? tl_store_kb_article_remove(store, change->id) : TL_ENOMEM;
    tl_audit_entry_t entry = {ACTOR, "kb.remove", change->id, details, 0};
    if (rc == 0)
        rc = tl_audit_chain_stage(chain, &entry, NULL);
    json_decref(details);
    tl_kb_article_row_clear(&row);
    return rc;
}

/* The change and its audit entries, committed together; TL_EAUDIT said on stderr. */
static int record(const char *data, const char *verb,
                  int (*stage)(tl_store_t *, tl_audit_chain_t *, void *), struct kb_change *change)
{
    char path[4096], problem[768] = "";
    tl_store_t *store = NULL;
    int rc = tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path);
    if (rc == 0)
        rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_audit_chain_record(store, path, stage, change, problem, sizeof problem);
    tl_store_close(store);
    if (rc == TL_EAUDIT)
        fprintf(stderr, PROGRAM " kb %s: the audit log cannot be written: %s\n", verb, problem);
    return rc;
}

/* The change of kb publish and its audit entry, committed together; TL_EAUDIT said. */
static int record_publish(const char *data, int (*stage)(tl_store_t *, tl_audit_chain_t *, void *),
                          void *arg)
{
    char path[4096], problem[768] = "";
    tl_store_t *store = NULL;
    int rc = tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path);
    if (rc == 0)
        rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_audit_chain_record(store, path, stage, arg, problem, sizeof problem);
    tl_store_close(store);
    if (rc == TL_EAUDIT)
        fprintf(stderr, PROGRAM " kb publish: the audit log cannot be written: %s\n", problem);
    return rc;
}

static int kb_add(const struct kb_args *args)
{
    size_t count = (size_t)args->words.count;
    struct kb_file *files = calloc(count, sizeof *files);
    int *replaced = calloc(count, sizeof *replaced);
    tl_runbooks_t *catalogue = NULL;
    char catalogue_dir[4096] = "";
    int status = TL_EXIT_FAILURE, refused = 0, rc = 0;
    if (files == NULL || replaced == NULL) {
        status = tl_admin_fail("kb add", TL_ENOMEM);
        goto out;
    }
    /* The relay's catalogue: the one given, or the shipped one beside the program. */
    if (args->runbooks != NULL)
        snprintf(catalogue_dir, sizeof catalogue_dir, "%s", args->runbooks);
    else if (tl_runbooks_default_dir(catalogue_dir, sizeof catalogue_dir) != 0)
        catalogue_dir[0] = '\0';
    /* Entries it skips are worth a line (warn); that it loaded is not, at the admin's prompt. */
    enum tl_log_level level = tl_log_get_level();
    if (level < TL_LOG_WARN)
        tl_log_set_level(TL_LOG_WARN);
    if (catalogue_dir[0] != '\0')
        catalogue = tl_runbooks_load(catalogue_dir, &rc);
    tl_log_set_level(level);
    if (catalogue_dir[0] != '\0' && catalogue == NULL) {
        fprintf(stderr, PROGRAM " kb add: the runbook catalogue %s cannot be read: %s\n",
                catalogue_dir, tl_strerror(rc));
        goto out;
    }
    /* Every file is read and checked before anything is stored. */
    for (size_t i = 0; i < count; i++) {
        files[i].path = args->words.word[i];
        rc = read_article(&files[i], catalogue, catalogue_dir);
        if (rc == TL_EINVAL) {
            refused++;
            continue;
        }
        if (rc != 0)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (files[j].article != NULL &&
                strcmp(files[j].article->id, files[i].article->id) == 0) {
                refuse(&files[i], header_line(files[i].text, "id", NULL),
                       "id %s is also the id of %s", files[i].article->id, files[j].path);
                refused++;
                break;
            }
        }
    }
    if (refused > 0) {
        fprintf(stderr, PROGRAM " kb add: %d of %zu file%s refused; nothing was added\n", refused,
                count, count == 1 ? "" : "s");
        status = TL_EXIT_USAGE;
        goto out;
    }
    struct kb_change change = {
        .files = files, .count = count, .replace = args->replace, .replaced = replaced};
    rc = record(args->data, "add", stage_add, &change);
    if (rc == TL_EEXIST) {
        const struct kb_file *file = &files[change.failed];
        fprintf(stderr,
                PROGRAM " kb add: %s: an article with id %s is already in the knowledge base "
                        "(kb show %s; --replace replaces it); nothing was added\n",
                file->path, file->article->id, file->article->id);
        goto out;
    }
    if (rc == TL_EAUDIT)
        goto out;
    if (rc != 0) {
        status = tl_admin_fail("kb add", rc);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        char title[1024];
        tl_text_clip(title, sizeof title, files[i].article->title, 0, TL_TEXT_LINE);
        printf("%s %s (%s): %s\n", replaced[i] ? "Replaced" : "Added", files[i].article->id,
               tl_category_name(files[i].article->category), title);
    }
    status = TL_EXIT_OK;
out:
    for (size_t i = 0; files != NULL && i < count; i++) {
        tl_article_free(files[i].article);
        free(files[i].text);
    }
    free(files);
    free(replaced);
    tl_runbooks_free(catalogue);
    return status;
}

/* ---- list, show, remove --------------------------------------------------------------------- */

static int kb_list(const struct kb_args *args)
{
    tl_store_t *store = NULL;
    tl_kb_article_rows_t list = {0};
    int rc = tl__admin_open_store(args->data, &store);
    if (rc == 0)
        rc = tl_store_kb_articles_read(store, args->category,
                                       args->drafts ? TL_KB_DRAFT : TL_KB_PUBLISHED, &list);
    tl_kb_runbook_rates_t rates = {0};
    if (rc == 0 && !args->drafts)
        rc = tl_store_kb_runbook_rates(store, &rates);
    tl_store_close(store);
    if (rc != 0) {
        tl_kb_article_rows_free(&list);
        return tl_admin_fail("kb list", rc);
    }
    int status = TL_EXIT_OK;
    if (args->json) {
        json_t *doc = tl__kb_listing_json(&list, NULL);
        status = doc != NULL ? tl__admin_print_json(doc) : tl_admin_fail("kb list", TL_ENOMEM);
        json_decref(doc);
    } else {
        tl__kb_list_print(stdout, &list);
        if (!args->drafts)
            tl__kb_runbooks_print(stdout, &rates);
    }
    tl_kb_runbook_rates_free(&rates);
    tl_kb_article_rows_free(&list);
    return status;
}

static int kb_show(const struct kb_args *args, const char *id)
{
    tl_store_t *store = NULL;
    tl_kb_article_row_t row = {0};
    tl_article_t *article = NULL;
    char why[1024];
    int status = TL_EXIT_FAILURE;
    int rc = tl__admin_open_store(args->data, &store);
    if (rc == 0)
        rc = tl_store_kb_article_read(store, id, &row);
    tl_store_close(store);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " kb show: no article %s in the knowledge base\n", id);
        goto out;
    }
    if (rc != 0) {
        status = tl_admin_fail("kb show", rc);
        goto out;
    }
    if (tl__kb_article_parse(&row, &article, why, sizeof why) != 0) {
        if (row.needs_editing != NULL) {
            rc = tl__kb_draft_print(stdout, &row, args->json);
            status = rc == 0 ? TL_EXIT_OK : tl_admin_fail("kb show", rc);
            goto out;
        }
        fprintf(stderr, PROGRAM " kb show: article %s no longer reads: %s\n", id, why);
        goto out;
    }
    if (args->json) {
        json_t *doc = tl__kb_article_json(&row, article);
        status = doc != NULL ? tl__admin_print_json(doc) : tl_admin_fail("kb show", TL_ENOMEM);
        json_decref(doc);
    } else {
        tl__kb_article_print(stdout, &row, article);
        status = TL_EXIT_OK;
    }
out:
    tl_article_free(article);
    tl_kb_article_row_clear(&row);
    return status;
}

static int kb_remove(const struct kb_args *args, const char *id)
{
    struct kb_change change = {.id = id};
    int rc = record(args->data, "remove", stage_remove, &change);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " kb remove: no article %s in the knowledge base\n", id);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EAUDIT)
        return TL_EXIT_FAILURE;
    if (rc != 0)
        return tl_admin_fail("kb remove", rc);
    printf("Removed %s\n", id);
    return TL_EXIT_OK;
}

/* ---- publish -------------------------------------------------------------------------------- */

struct kb_publish {
    const char *id;
    const struct kb_file *edited; /* NULL: the draft as it is */
    int state;                    /* what the store said of the article: 0, TL_ENOTFOUND, ... */
    char title[1024];
};

static int stage_publish(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    struct kb_publish *publish = arg;
    tl_kb_article_row_t row = {0}, edited = {0};
    json_t *details = NULL;
    int rc = tl_store_kb_article_read(store, publish->id, &row);
    if (rc != 0)
        goto out;
    if (strcmp(row.state, TL_KB_PUBLISHED) == 0) {
        rc = TL_ESTATE;
        goto out;
    }
    const char *sha256 = row.sha256;
    if (publish->edited != NULL) {
        const tl_article_t *a = publish->edited->article;
        edited = (tl_kb_article_row_t){
            .title = a->title,
            .category = tl_category_name(a->category),
            .runbook = a->runbook[0] != '\0' ? a->runbook : NULL,
            .source = publish->edited->text,
            .sha256 = publish->edited->sha256,
        };
        sha256 = publish->edited->sha256;
    } else if (row.needs_editing != NULL) {
        rc = TL_EINVAL; /* said by the caller, which read the draft first */
        goto out;
    }
    snprintf(publish->title, sizeof publish->title, "%s",
             publish->edited != NULL ? edited.title : row.title);
    rc = tl_store_kb_article_publish(store, publish->id, publish->edited != NULL ? &edited : NULL,
                                     ACTOR, tl_wall_ms());
    char ticket[32] = "";
    if (row.ticket_id > 0)
        snprintf(ticket, sizeof ticket, "T-%lld", (long long)row.ticket_id);
    if (rc == 0)
        details =
            json_pack("{s:s, s:s, s:s?, s:s, s:s, s:b}", "title", publish->title, "drafted_by",
                      row.added_by, "ticket", ticket[0] != '\0' ? ticket : NULL, "sha256", sha256,
                      "draft_sha256", row.sha256, "edited", publish->edited != NULL);
    if (rc == 0 && details == NULL)
        rc = TL_ENOMEM;
    if (rc == 0 && publish->edited != NULL)
        json_object_set_new(details, "file", json_string(publish->edited->path));
    tl_audit_entry_t entry = {ACTOR, "kb.publish", publish->id, details, 0};
    if (rc == 0)
        rc = tl_audit_chain_stage(chain, &entry, NULL);
out:
    json_decref(details);
    tl_kb_article_row_clear(&row);
    return rc;
}

static int kb_publish(const struct kb_args *args, const char *id)
{
    struct kb_file file = {.path = args->file};
    tl_runbooks_t *catalogue = NULL;
    tl_store_t *store = NULL;
    tl_kb_article_row_t row = {0};
    char catalogue_dir[4096] = "";
    int status = TL_EXIT_FAILURE, rc;
    /* What is there now: the commands's errors before any file is read. */
    if ((rc = tl__admin_open_store(args->data, &store)) == 0)
        rc = tl_store_kb_article_read(store, id, &row);
    tl_store_close(store);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr,
                PROGRAM " kb publish: no article %s in the knowledge base (kb list "
                        "--drafts lists the drafts); nothing changed\n",
                id);
        goto out;
    }
    if (rc != 0) {
        status = tl_admin_fail("kb publish", rc);
        goto out;
    }
    if (strcmp(row.state, TL_KB_PUBLISHED) == 0) {
        fprintf(stderr, PROGRAM " kb publish: %s is published already; nothing changed\n", id);
        goto out;
    }
    if (args->file == NULL && row.needs_editing != NULL) {
        char shown[1024];
        tl_text_clip(shown, sizeof shown, row.needs_editing, 0, TL_TEXT_LINE);
        fprintf(stderr,
                PROGRAM " kb publish: draft %s needs editing: %s; edit it (kb show %s) and publish "
                        "it with --file EDITED.md; nothing changed\n",
                id, shown, id);
        goto out;
    }
    if (args->file != NULL) {
        if (args->runbooks != NULL)
            snprintf(catalogue_dir, sizeof catalogue_dir, "%s", args->runbooks);
        else if (tl_runbooks_default_dir(catalogue_dir, sizeof catalogue_dir) != 0)
            catalogue_dir[0] = '\0';
        enum tl_log_level level = tl_log_get_level();
        if (level < TL_LOG_WARN)
            tl_log_set_level(TL_LOG_WARN);
        if (catalogue_dir[0] != '\0')
            catalogue = tl_runbooks_load(catalogue_dir, &rc);
        tl_log_set_level(level);
        rc = read_article(&file, catalogue, catalogue_dir);
        if (rc == 0 && strcmp(file.article->id, id) != 0) {
            refuse(&file, header_line(file.text, "id", NULL),
                   "id %s is not the draft's (%s): the id stays", file.article->id, id);
            rc = TL_EINVAL;
        }
        if (rc == TL_EINVAL) {
            /* As kb add refuses a file: the exit status of a bad input, 2. */
            fprintf(stderr, PROGRAM " kb publish: %s refused; nothing changed\n", args->file);
            status = TL_EXIT_USAGE;
            goto out;
        }
        if (rc != 0)
            goto out;
    }
    struct kb_publish publish = {.id = id, .edited = args->file != NULL ? &file : NULL};
    rc = record_publish(args->data, stage_publish, &publish);
    if (rc == TL_EAUDIT)
        goto out;
    if (rc == TL_ESTATE) {
        fprintf(stderr, PROGRAM " kb publish: %s is published already; nothing changed\n", id);
        goto out;
    }
    if (rc != 0) {
        status = tl_admin_fail("kb publish", rc);
        goto out;
    }
    char title[1024];
    tl_text_clip(title, sizeof title, publish.title, 0, TL_TEXT_LINE);
    printf(
        "Published %s: %s\n  it goes to agents with the next catalogue: tierline-relay catalogue "
        "sign ... --kb-from-data\n",
        id, title);
    status = TL_EXIT_OK;
out:
    tl_article_free(file.article);
    free(file.text);
    tl_runbooks_free(catalogue);
    tl_kb_article_row_clear(&row);
    return status;
}

static int cmd_kb(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct kb_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    int words = args.words.count;
    const char *id = words == 1 ? args.words.word[0] : NULL;
    const char *problem = NULL;
    if (args.verb == VERB_ADD && words == 0)
        problem = "kb add needs one or more article files";
    else if (args.verb == VERB_LIST && words > 0)
        problem = "kb list takes no words; --category C narrows it";
    else if ((args.verb == VERB_SHOW || args.verb == VERB_REMOVE || args.verb == VERB_PUBLISH) &&
             words != 1)
        problem = args.verb == VERB_SHOW      ? "kb show needs one article id"
                  : args.verb == VERB_PUBLISH ? "kb publish needs one article id"
                                              : "kb remove needs one article id";
    else if (args.file != NULL && args.verb != VERB_PUBLISH)
        problem = "--file is for kb publish";
    else if (args.drafts && args.verb != VERB_LIST)
        problem = "--drafts is for kb list";
    else if (id != NULL && args.verb != VERB_ADD && !tl__kb_id_valid(id))
        problem = "an article id is 1 to 48 of a-z, 0-9 and -, not starting with -";
    else if (args.replace && args.verb != VERB_ADD)
        problem = "--replace is for kb add";
    else if (args.runbooks != NULL && args.verb != VERB_ADD && args.verb != VERB_PUBLISH)
        problem = "--runbooks is for kb add and kb publish --file";
    else if (args.category != NULL && args.verb != VERB_LIST)
        problem = "--category is for kb list";
    else if (args.category != NULL && tl_category_index(args.category) < 0)
        problem = "--category wants account, network, printing, disk, performance, application, "
                  "hardware, security or other";
    if (problem != NULL) {
        fprintf(stderr, PROGRAM " kb: %s\nusage: " PROGRAM " %s\n", problem, cmd->usage);
        return TL_EXIT_USAGE;
    }
    switch (args.verb) {
    case VERB_ADD:
        return kb_add(&args);
    case VERB_LIST:
        return kb_list(&args);
    case VERB_SHOW:
        return kb_show(&args, id);
    case VERB_PUBLISH:
        return kb_publish(&args, id);
    default:
        return kb_remove(&args, id);
    }
}

const tl_admin_command_t tl_admin_kb = {
    .name = "kb",
    .usage =
        "kb add FILE... [--replace] [--runbooks DIR] [--data DIR] | kb list [--drafts] "
        "[--category C] [--json] [--data DIR] | kb show ID [--json] [--data DIR] | kb remove ID "
        "[--data DIR] | kb publish ID [--file EDITED.md] [--runbooks DIR] [--data DIR]",
    .summary = "manage the knowledge base's articles (docs/kb.md)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct kb_args, "the relay's folder"),
                    {.name = "replace",
                     .help = "add: an article whose id is taken replaces it (its counts stay)",
                     .out = TL_CLI_AT(struct kb_args, replace)},
                    {.name = "runbooks",
                     .metavar = "DIR",
                     .help = "add: the runbook catalogue the articles' runbooks are checked "
                             "against (default: the one installed with the relay)",
                     .word = TL_CLI_AT(struct kb_args, runbooks)},
                    {.name = "category",
                     .metavar = "C",
                     .help = "list: only articles of category C",
                     .word = TL_CLI_AT(struct kb_args, category)},
                    {.name = "drafts",
                     .help = "list: the drafts from resolved tickets instead of the published "
                             "articles",
                     .out = TL_CLI_AT(struct kb_args, drafts)},
                    {.name = "file",
                     .metavar = "EDITED.md",
                     .help = "publish: the draft as edited, which must parse as kb add checks "
                             "it (same id)",
                     .word = TL_CLI_AT(struct kb_args, file)},
                    TL__ADMIN_JSON(struct kb_args,
                                   "list: a JSON array of objects as the technicians' kb --json "
                                   "prints; show: the article as kb show --json prints it"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "add|list|show|remove|publish",
                                                   .kind = TL_CLI_WORD,
                                                   .words = verbs,
                                                   .out = TL_CLI_AT(struct kb_args, verb)},
                                                  {.name = "FILE...|ID",
                                                   .flags = TL_CLI_OPTIONAL,
                                                   .most = TL_CLI_WORDS_MAX,
                                                   .kind = TL_CLI_LIST,
                                                   .out = TL_CLI_AT(struct kb_args, words)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_kb,
    .example = "tierline-relay kb add /usr/share/tierline/kb/*.md --data /var/lib/tierline\n"
               "tierline-relay kb add var-log-full.md --replace --data /var/lib/tierline\n"
               "tierline-relay kb list --data /var/lib/tierline\n"
               "tierline-relay kb remove var-log-full --data /var/lib/tierline\n"
               "tierline-relay kb list --drafts --data /var/lib/tierline\n"
               "tierline-relay kb publish ticket-12 --file ticket-12.md --data /var/lib/tierline\n",
};
