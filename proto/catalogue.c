/* Signed catalogue packages (proto/catalogue.h, docs/catalogue.md). */
#include "proto/catalogue.h"

#include "proto/article.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/runbooks.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tl_catalogue {
    uint64_t version;
    int64_t created;
    char signer[TL_FINGERPRINT_LEN];
    tl_catalogue_file_t *files;
    char (*paths)[TL_CATALOGUE_PATH_MAX + 1];
    size_t count;
    size_t runbooks, articles;
};

static void say(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t size, const char *fmt, ...)
{
    if (why == NULL || size == 0)
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, size, fmt, args);
    va_end(args);
}

int tl_catalogue_path_valid(const char *path)
{
    if (path == NULL)
        return 0;
    const char *name;
    if (strncmp(path, "runbooks/", 9) == 0)
        name = path + 9;
    else if (strncmp(path, "kb/", 3) == 0)
        name = path + 3;
    else
        return 0;
    size_t len = strlen(name);
    if (len == 0 || len > 100 || strstr(name, "..") != NULL)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    if (name == path + 3 && (len < 4 || strcmp(name + len - 3, ".md") != 0))
        return 0;
    return 1;
}

void tl_catalogue_free(tl_catalogue_t *catalogue)
{
    if (catalogue == NULL)
        return;
    free(catalogue->files);
    free(catalogue->paths);
    free(catalogue);
}

uint64_t tl_catalogue_version(const tl_catalogue_t *catalogue)
{
    return catalogue->version;
}
int64_t tl_catalogue_created(const tl_catalogue_t *catalogue)
{
    return catalogue->created;
}
const char *tl_catalogue_signer(const tl_catalogue_t *catalogue)
{
    return catalogue->signer;
}
size_t tl_catalogue_file_count(const tl_catalogue_t *catalogue)
{
    return catalogue->count;
}
size_t tl_catalogue_runbook_count(const tl_catalogue_t *catalogue)
{
    return catalogue->runbooks;
}
size_t tl_catalogue_article_count(const tl_catalogue_t *catalogue)
{
    return catalogue->articles;
}

const tl_catalogue_file_t *tl_catalogue_file(const tl_catalogue_t *catalogue, size_t index)
{
    return index < catalogue->count ? &catalogue->files[index] : NULL;
}

static const tl_catalogue_file_t *find(const tl_catalogue_file_t *files, size_t count,
                                       const char *path)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(files[i].path, path) == 0)
            return &files[i];
    return NULL;
}

static bool has_suffix(const char *text, const char *suffix)
{
    size_t len = strlen(text), suffix_len = strlen(suffix);
    return len > suffix_len && strcmp(text + len - suffix_len, suffix) == 0;
}

static int check_article_runbook(const tl_article_t *article, const tl_catalogue_file_t *files,
                                 size_t count, char *why, size_t why_size)
{
    if (article->runbook[0] == '\0')
        return 0;
    char meta[TL_CATALOGUE_PATH_MAX + 64], reason[512];
    snprintf(meta, sizeof meta, "runbooks/%s.json", article->runbook);
    const tl_catalogue_file_t *file = find(files, count, meta);
    if (file == NULL) {
        say(why, why_size,
            "the catalogue does not parse: article %s suggests runbook %s, which the package "
            "does not hold",
            article->id, article->runbook);
        return TL_EINVAL;
    }
    int err = 0, rc = TL_ENOMEM;
    tl_runbooks_t *one = tl_runbooks_from_metadata(article->runbook, (const char *)file->data,
                                                   file->size, &err, reason, sizeof reason);
    json_t *args = json_object();
    for (size_t i = 0; one != NULL && args != NULL && i < article->param_count; i++) {
        const char *equals = strchr(article->params[i], '=');
        char name[64];
        size_t len = equals != NULL ? (size_t)(equals - article->params[i]) : 0;
        if (len == 0 || len >= sizeof name)
            continue; /* the article's parser admits no such parameter */
        memcpy(name, article->params[i], len);
        name[len] = '\0';
        json_object_set_new(args, name, json_string(equals + 1));
    }
    if (one != NULL && args != NULL) {
        /* Who may run it is decided when someone does; here only the values are checked. */
        tl_runbook_run_t run;
        rc = tl_runbooks_check(one, article->runbook, args, "tier3", true, &run, reason,
                               sizeof reason);
        if (rc == 0)
            tl_runbooks_run_release(&run);
        else if (rc != TL_ENOMEM) {
            say(why, why_size, "the catalogue does not parse: article %s: runbook %s: %s",
                article->id, article->runbook, reason);
            rc = TL_EINVAL;
        }
    } else if (one == NULL && err != TL_ENOMEM) {
        rc = 0; /* its metadata's own check names it */
    }
    json_decref(args);
    tl_runbooks_free(one);
    return rc;
}

/*
 * The catalogue the files make parses as the agent reads it: every runbook's metadata beside
 * its executable and valid, every article valid with an id of its own. Counts them.
 */
static int check_content(const tl_catalogue_file_t *files, size_t count, size_t *runbooks,
                         size_t *articles, char *why, size_t why_size)
{
    int rc = 0;
    char reason[512], name[TL_CATALOGUE_PATH_MAX + 16];
    tl_article_t **parsed = calloc(count + 1, sizeof *parsed);
    size_t parsed_count = 0;
    *runbooks = *articles = 0;
    if (parsed == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const tl_catalogue_file_t *file = &files[i];
        if (strncmp(file->path, "kb/", 3) == 0) {
            tl_article_t *article = NULL;
            rc = tl_article_parse(file->path, (const char *)file->data, file->size, &article,
                                  reason, sizeof reason);
            if (rc == TL_EINVAL)
                say(why, why_size, "the catalogue does not parse: %s", reason);
            if (file->executable && rc == 0) {
                say(why, why_size, "the catalogue does not parse: %s: an article is not executable",
                    file->path);
                rc = TL_EINVAL;
            }
            for (size_t k = 0; rc == 0 && k < parsed_count; k++) {
                if (strcmp(parsed[k]->id, article->id) == 0) {
                    say(why, why_size, "the catalogue does not parse: %s: id %s is taken twice",
                        file->path, article->id);
                    rc = TL_EINVAL;
                }
            }
            if (article != NULL)
                parsed[parsed_count++] = article;
            if (rc == 0)
                (*articles)++;
            continue;
        }
        const char *base = file->path + 9; /* after "runbooks/" */
        if (has_suffix(base, ".json")) {
            size_t len = strlen(base) - 5;
            memcpy(name, base, len);
            name[len] = '\0';
            char exe[TL_CATALOGUE_PATH_MAX + 32];
            snprintf(exe, sizeof exe, "runbooks/%s", name);
            const tl_catalogue_file_t *program = find(files, count, exe);
            int err = 0;
            tl_runbooks_t *one =
                file->executable
                    ? NULL
                    : tl_runbooks_from_metadata(name, (const char *)file->data, file->size, &err,
                                                reason, sizeof reason);
            if (file->executable) {
                say(why, why_size, "the catalogue does not parse: %s: metadata is not executable",
                    file->path);
                rc = TL_EINVAL;
            } else if (one == NULL) {
                say(why, why_size, "the catalogue does not parse: %s: %s", file->path,
                    err == TL_ENOMEM ? "out of memory" : reason);
                rc = err == TL_ENOMEM ? TL_ENOMEM : TL_EINVAL;
            } else if (program == NULL || !program->executable) {
                say(why, why_size,
                    "the catalogue does not parse: %s has no executable %s beside it", file->path,
                    exe);
                rc = TL_EINVAL;
            }
            tl_runbooks_free(one);
            if (rc == 0)
                (*runbooks)++;
        } else {
            char meta[TL_CATALOGUE_PATH_MAX + 8];
            snprintf(meta, sizeof meta, "%s.json", file->path);
            if (find(files, count, meta) == NULL) {
                say(why, why_size, "the catalogue does not parse: %s has no metadata %s",
                    file->path, meta);
                rc = TL_EINVAL;
            } else if (!file->executable) {
                say(why, why_size, "the catalogue does not parse: %s is not executable",
                    file->path);
                rc = TL_EINVAL;
            }
        }
    }
    /* Each article's runbook is in the package and its parameters pass that runbook's rules. */
    for (size_t k = 0; rc == 0 && k < parsed_count; k++)
        rc = check_article_runbook(parsed[k], files, count, why, why_size);
    for (size_t k = 0; k < parsed_count; k++)
        tl_article_free(parsed[k]);
    free(parsed);
    return rc;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const tl_catalogue_file_t *)a)->path, ((const tl_catalogue_file_t *)b)->path);
}

static void put_u32(uint8_t *at, uint32_t value)
{
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

int tl_catalogue_build(const tl_catalogue_file_t *files, size_t count, uint64_t version,
                       int64_t created, EVP_PKEY *key, uint8_t **out, size_t *out_len, char *why,
                       size_t why_size)
{
    int rc = TL_EINVAL;
    tl_catalogue_file_t *sorted = NULL;
    json_t *manifest = NULL, *list = NULL;
    char *text = NULL;
    *out = NULL;
    *out_len = 0;
    if (version == 0 || version > TL_CATALOGUE_VERSION_MAX) {
        say(why, why_size, "the version must be 1..%llu", TL_CATALOGUE_VERSION_MAX);
        goto out;
    }
    if (created < 0 || created > TL_CATALOGUE_CREATED_MAX || count > TL_CATALOGUE_MAX_FILES) {
        say(why, why_size, count > TL_CATALOGUE_MAX_FILES ? "more than %d files" : "a bad time",
            TL_CATALOGUE_MAX_FILES);
        goto out;
    }
    rc = TL_ENOMEM;
    sorted = calloc(count + 1, sizeof *sorted);
    list = json_array();
    if (sorted == NULL || list == NULL)
        goto out;
    if (count > 0)
        memcpy(sorted, files, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, compare_files);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        rc = TL_EINVAL;
        if (!tl_catalogue_path_valid(sorted[i].path)) {
            say(why, why_size, "%s: not a path a catalogue may hold", sorted[i].path);
            goto out;
        }
        if (i > 0 && strcmp(sorted[i - 1].path, sorted[i].path) == 0) {
            say(why, why_size, "%s: given twice", sorted[i].path);
            goto out;
        }
        if (sorted[i].size > TL_CATALOGUE_FILE_MAX) {
            say(why, why_size, "%s: larger than %d bytes", sorted[i].path, TL_CATALOGUE_FILE_MAX);
            goto out;
        }
        total += sorted[i].size;
        char hex[TL_SHA256_HEX_LEN];
        rc = tl_sha256_hex(sorted[i].data, sorted[i].size, hex);
        json_t *entry = rc == 0 ? json_pack("{s:s, s:I, s:s, s:s}", "path", sorted[i].path, "size",
                                            (json_int_t)sorted[i].size, "sha256", hex, "mode",
                                            sorted[i].executable ? "0755" : "0644")
                                : NULL;
        if (entry == NULL || json_array_append_new(list, entry) != 0) {
            rc = rc != 0 ? rc : TL_ENOMEM;
            goto out;
        }
    }
    size_t runbooks, articles;
    if ((rc = check_content(sorted, count, &runbooks, &articles, why, why_size)) != 0)
        goto out;
    rc = TL_ENOMEM;
    manifest = json_pack("{s:s, s:I, s:I, s:O}", "format", TL_CATALOGUE_FORMAT, "version",
                         (json_int_t)version, "created", (json_int_t)created, "files", list);
    if (manifest == NULL || (text = json_dumps(manifest, JSON_COMPACT)) == NULL)
        goto out;
    size_t manifest_len = strlen(text);
    size_t len = TL_CATALOGUE_HEADER_LEN + manifest_len + total;
    if (manifest_len > TL_CATALOGUE_MANIFEST_MAX || len > TL_CATALOGUE_MAX) {
        say(why, why_size, "the package would be larger than %d bytes", TL_CATALOGUE_MAX);
        rc = TL_EINVAL;
        goto out;
    }
    uint8_t *package = malloc(len);
    if (package == NULL)
        goto out;
    memcpy(package, TL_CATALOGUE_MAGIC, TL_CATALOGUE_MAGIC_LEN);
    put_u32(package + 104, (uint32_t)manifest_len);
    memcpy(package + TL_CATALOGUE_HEADER_LEN, text, manifest_len);
    size_t at = TL_CATALOGUE_HEADER_LEN + manifest_len;
    for (size_t i = 0; i < count; i++) {
        if (sorted[i].size > 0)
            memcpy(package + at, sorted[i].data, sorted[i].size);
        at += sorted[i].size;
    }
    if ((rc = tl_key_raw_public(key, package + 8)) != 0 ||
        (rc = tl_key_sign(key, text, manifest_len, package + 40)) != 0) {
        say(why, why_size, "the key cannot sign: %s", tl_strerror(rc));
        free(package);
        goto out;
    }
    *out = package;
    *out_len = len;
    rc = 0;
out:
    if (rc == TL_ENOMEM)
        say(why, why_size, "out of memory");
    free(sorted);
    free(text);
    json_decref(list);
    json_decref(manifest);
    return rc;
}

static uint32_t get_u32(const uint8_t *at)
{
    return (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 | (uint32_t)at[2] << 8 | at[3];
}

/* Exactly these members, no others. */
static bool members_are(json_t *object, const char *const *names, size_t count)
{
    if (!json_is_object(object) || json_object_size(object) != count)
        return false;
    for (size_t i = 0; i < count; i++)
        if (json_object_get(object, names[i]) == NULL)
            return false;
    return true;
}

/* The manifest's fields into c (files pointing into data after the manifest). */
static int read_manifest(const uint8_t *data, size_t len, size_t manifest_len, tl_catalogue_t *c,
                         char *why, size_t why_size)
{
    static const char *const top[] = {"format", "version", "created", "files"};
    static const char *const fields[] = {"path", "size", "sha256", "mode"};
    json_error_t error;
    int rc = TL_EINVAL;
    json_t *manifest = json_loadb((const char *)data + TL_CATALOGUE_HEADER_LEN, manifest_len,
                                  JSON_REJECT_DUPLICATES, &error);
    if (manifest == NULL) {
        say(why, why_size, "the manifest is not JSON: %s", error.text);
        goto out;
    }
    json_t *version = json_object_get(manifest, "version");
    json_t *created = json_object_get(manifest, "created");
    json_t *files = json_object_get(manifest, "files");
    const char *format = json_string_value(json_object_get(manifest, "format"));
    if (!members_are(manifest, top, 4) || format == NULL ||
        strcmp(format, TL_CATALOGUE_FORMAT) != 0) {
        say(why, why_size,
            "the manifest is not a %s manifest (members format, version, "
            "created and files, and no others)",
            TL_CATALOGUE_FORMAT);
        goto out;
    }
    if (!json_is_integer(version) || json_integer_value(version) < 1 ||
        (uint64_t)json_integer_value(version) > TL_CATALOGUE_VERSION_MAX ||
        !json_is_integer(created) || json_integer_value(created) < 0 ||
        json_integer_value(created) > TL_CATALOGUE_CREATED_MAX) {
        say(why, why_size, "the manifest's version or created time is out of range");
        goto out;
    }
    if (!json_is_array(files) || json_array_size(files) > TL_CATALOGUE_MAX_FILES) {
        say(why, why_size, "the manifest's files are not a list of at most %d",
            TL_CATALOGUE_MAX_FILES);
        goto out;
    }
    c->version = (uint64_t)json_integer_value(version);
    c->created = (int64_t)json_integer_value(created);
    c->count = json_array_size(files);
    c->files = calloc(c->count + 1, sizeof *c->files);
    c->paths = calloc(c->count + 1, sizeof *c->paths);
    if (c->files == NULL || c->paths == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    size_t at = TL_CATALOGUE_HEADER_LEN + manifest_len;
    for (size_t i = 0; i < c->count; i++) {
        json_t *entry = json_array_get(files, i);
        const char *path = json_string_value(json_object_get(entry, "path"));
        const char *hash = json_string_value(json_object_get(entry, "sha256"));
        const char *mode = json_string_value(json_object_get(entry, "mode"));
        json_t *size = json_object_get(entry, "size");
        if (!members_are(entry, fields, 4) || path == NULL || hash == NULL || mode == NULL ||
            !json_is_integer(size)) {
            say(why, why_size, "the manifest's file %zu is not {path, size, sha256, mode}", i + 1);
            goto out;
        }
        if (strlen(path) > TL_CATALOGUE_PATH_MAX || !tl_catalogue_path_valid(path)) {
            char shown[64];
            size_t n = 0;
            for (; path[n] != '\0' && n < sizeof shown - 1; n++)
                shown[n] = path[n] >= 0x20 && path[n] < 0x7f ? path[n] : '?';
            shown[n] = '\0';
            say(why, why_size,
                "the manifest names a path a catalogue may not hold: \"%s\" (only runbooks/NAME "
                "and kb/NAME.md: no \"..\", no absolute path, no directories)",
                shown);
            goto out;
        }
        if (i > 0 && strcmp(c->paths[i - 1], path) >= 0) {
            say(why, why_size, "the manifest's paths are not in order or repeat: %s", path);
            goto out;
        }
        if (json_integer_value(size) < 0 || json_integer_value(size) > TL_CATALOGUE_FILE_MAX) {
            say(why, why_size, "%s: a size outside 0..%d bytes", path, TL_CATALOGUE_FILE_MAX);
            goto out;
        }
        if (!tl_sha256_hex_valid(hash) ||
            (strcmp(mode, "0644") != 0 && strcmp(mode, "0755") != 0)) {
            say(why, why_size, "%s: a bad sha256 or mode (0644 or 0755)", path);
            goto out;
        }
        size_t file_size = (size_t)json_integer_value(size);
        if (file_size > len - at) {
            say(why, why_size, "the package ends inside %s", path);
            goto out;
        }
        strcpy(c->paths[i], path);
        c->files[i].path = c->paths[i];
        c->files[i].data = data + at;
        c->files[i].size = file_size;
        c->files[i].executable = strcmp(mode, "0755") == 0;
        char actual[TL_SHA256_HEX_LEN];
        if ((rc = tl_sha256_hex(data + at, file_size, actual)) != 0)
            goto out;
        rc = TL_EINVAL;
        if (strcmp(actual, hash) != 0) {
            say(why, why_size, "%s does not match its SHA-256 in the manifest", path);
            rc = TL_EMISMATCH;
            goto out;
        }
        at += file_size;
    }
    if (at != len) {
        say(why, why_size, "%zu bytes follow the last file", len - at);
        goto out;
    }
    rc = 0;
out:
    json_decref(manifest);
    return rc;
}

static int open_package(const uint8_t *data, size_t len, const char *trusted, int check_trust,
                        uint64_t newer_than, tl_catalogue_t **out, char *why, size_t why_size)
{
    int rc = TL_EINVAL;
    EVP_PKEY *signer = NULL;
    tl_catalogue_t *c = NULL;
    *out = NULL;
    if (check_trust && (trusted == NULL || trusted[0] == '\0')) {
        say(why, why_size,
            "no catalogue signing key is trusted here (the agent was enrolled "
            "without one): every package is refused");
        return TL_ENOTRUST;
    }
    if (len < TL_CATALOGUE_HEADER_LEN || len > TL_CATALOGUE_MAX ||
        memcmp(data, TL_CATALOGUE_MAGIC, TL_CATALOGUE_MAGIC_LEN) != 0) {
        say(why, why_size,
            len > TL_CATALOGUE_MAX ? "larger than a package may be" : "not a catalogue package");
        return TL_EINVAL;
    }
    size_t manifest_len = get_u32(data + 104);
    if (manifest_len < 2 || manifest_len > TL_CATALOGUE_MANIFEST_MAX ||
        manifest_len > len - TL_CATALOGUE_HEADER_LEN) {
        say(why, why_size, "the manifest's length is out of bounds");
        return TL_EINVAL;
    }
    if ((c = calloc(1, sizeof *c)) == NULL)
        return TL_ENOMEM;
    if (tl_key_from_raw_public(data + 8, &signer) != 0 || tl_fingerprint(signer, c->signer) != 0) {
        say(why, why_size, "the signer's key is not an Ed25519 key");
        goto out;
    }
    if (check_trust) {
        if (!tl_fingerprint_equal(c->signer, trusted)) {
            say(why, why_size, "signed by %s, not by the trusted catalogue signing key %s",
                c->signer, trusted);
            rc = TL_EUNTRUSTED;
            goto out;
        }
        if (tl_key_verify(signer, data + TL_CATALOGUE_HEADER_LEN, manifest_len, data + 40) != 0) {
            say(why, why_size, "the signature does not verify: the manifest is not what %s signed",
                c->signer);
            rc = TL_ESIGNATURE;
            goto out;
        }
    }
    if ((rc = read_manifest(data, len, manifest_len, c, why, why_size)) != 0)
        goto out;
    if (check_trust && c->version <= newer_than) {
        say(why, why_size, "version %llu is not newer than the installed version %llu",
            (unsigned long long)c->version, (unsigned long long)newer_than);
        rc = TL_EOLDER;
        goto out;
    }
    rc = check_content(c->files, c->count, &c->runbooks, &c->articles, why, why_size);
out:
    EVP_PKEY_free(signer);
    if (rc != 0)
        tl_catalogue_free(c);
    else
        *out = c;
    return rc;
}

int tl_catalogue_verify(const uint8_t *data, size_t len, const char *trusted, uint64_t newer_than,
                        tl_catalogue_t **out, char *why, size_t why_size)
{
    return open_package(data, len, trusted, 1, newer_than, out, why, why_size);
}

int tl_catalogue_parse(const uint8_t *data, size_t len, tl_catalogue_t **out, char *why,
                       size_t why_size)
{
    return open_package(data, len, NULL, 0, 0, out, why, why_size);
}
