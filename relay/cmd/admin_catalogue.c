/*
 * `tierline-relay catalogue`: signed catalogue updates for agents (docs/catalogue.md).
 *
 *   key      makes the catalogue signing key (keep it off the relay host: sign runs anywhere)
 *   trust    stores its public key in DATA/catalogue/admin.pub; enroll-code then pins it
 *   sign     builds and signs a package of runbooks and articles (no relay needed with --kb)
 *   publish  checks a package against the trusted key and makes it the one agents get
 *   show     what is trusted and published
 *
 * trust and publish are committed with their audit entries (catalogue.trust,
 * catalogue.publish), and fail closed when the audit log cannot be written.
 */
#include "relay/cmd/admin_int.h"

#include "proto/catalogue.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/runbook_script.h"
#include "proto/text.h"
#include "relay/store/audit_chain.h"
#include "relay/store/catalogue_files.h"
#include "relay/store/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROGRAM TL_ADMIN_PROGRAM
#define ACTOR "admin"
#define DEFAULT_KEY "catalogue-signing.key"

struct catalogue_args {
    const char *data, *out, *key, *runbooks, *kb, *file;
    uint64_t version;
    int verb, kb_from_data, runbooks_from_data, replace, json;
};

static const char *const verbs[] = {"key", "trust", "sign", "publish", "show", NULL};
enum { VERB_KEY, VERB_TRUST, VERB_SIGN, VERB_PUBLISH, VERB_SHOW };

/* ---- key ------------------------------------------------------------------------------------ */

static int catalogue_key(const struct catalogue_args *args)
{
    const char *out = args->out != NULL ? args->out : DEFAULT_KEY;
    char pub[4096], fingerprint[TL_FINGERPRINT_LEN];
    EVP_PKEY *key = NULL;
    char *line = NULL;
    int status = TL_EXIT_FAILURE;
    if (tl_format(pub, sizeof pub, "%s.pub", out) != 0) {
        fprintf(stderr, PROGRAM " catalogue key: the path is too long\n");
        return TL_EXIT_USAGE;
    }
    int rc = tl_key_generate(&key);
    if (rc == 0)
        rc = tl_key_save(out, key);
    if (rc == TL_EEXIST) {
        fprintf(stderr, PROGRAM " catalogue key: %s already exists; it is never overwritten\n",
                out);
        goto out;
    }
    if (rc == 0)
        rc = tl_key_ssh_public(key, "tierline-catalogue", &line);
    if (rc == 0) {
        size_t len = strlen(line);
        char *text = malloc(len + 2);
        rc = text != NULL ? 0 : TL_ENOMEM;
        if (rc == 0) {
            memcpy(text, line, len);
            text[len] = '\n';
            rc = tl_fs_write_atomic(pub, text, len + 1, TL_FS_SYNC | TL_FS_SYNC_DIR, NULL);
            free(text);
        }
    }
    if (rc == 0)
        rc = tl_fingerprint(key, fingerprint);
    if (rc != 0) {
        status = tl_admin_fail("catalogue key", rc);
        goto out;
    }
    chmod(pub, 0644);
    printf("Catalogue signing key: %s (private, 0600)\nPublic key:            %s\n"
           "Fingerprint:           %s\n",
           out, pub, fingerprint);
    fprintf(stderr,
            "Keep %s off the relay host: a relay that holds it could sign what agents run.\n"
            "On the relay: " PROGRAM " catalogue trust %s --data DIR\n",
            out, pub);
    status = TL_EXIT_OK;
out:
    free(line);
    EVP_PKEY_free(key);
    return status;
}

/* ---- audited changes ------------------------------------------------------------------------ */

struct change {
    const char *action, *subject;
    json_t *details;
    /* The file change that goes with the entry, undone if the entry is not written. */
    const char *path;
    const char *text;
    int staged; /* the entry and the file change were made in the unit of work */
};

static int stage_change(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    (void)store;
    struct change *change = arg;
    tl_audit_entry_t entry = {ACTOR, change->action, change->subject, change->details, 0};
    int rc = tl_audit_chain_stage(chain, &entry, NULL);
    if (rc == 0)
        rc = tl_fs_write_atomic(change->path, change->text, strlen(change->text),
                                TL_FS_SYNC | TL_FS_SYNC_DIR | TL_FS_NOFOLLOW, NULL);
    change->staged = rc == 0;
    return rc;
}

/*
 * The file change and its audit entry, together. A failure puts back what the file held, but
 * for a log that failed at the write itself: the entry then waits in the store's outbox for the
 * next writer (docs/audit-format.md §7), so the change stands, and the command still fails.
 * *kept says which.
 */
static int record(const char *data, const char *verb, struct change *change, int *kept)
{
    char audit[4096], problem[768] = "", *before = NULL;
    size_t before_len = 0;
    tl_store_t *store = NULL;
    int had = tl_fs_read_file(change->path, 1024 * 1024, TL_FS_READ_NOFOLLOW, NULL, NULL, &before,
                              &before_len) == 0;
    int rc = tl_datadir_path(data, TL_DATADIR_AUDIT, audit, sizeof audit);
    if (rc == 0)
        rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_audit_chain_record(store, audit, stage_change, change, problem, sizeof problem);
    tl_store_close(store);
    *kept = rc == TL_EAUDIT && change->staged;
    if (rc != 0 && !*kept) {
        if (had)
            tl_fs_write_atomic(change->path, before, before_len, TL_FS_SYNC | TL_FS_SYNC_DIR, NULL);
        else
            unlink(change->path);
    }
    if (rc == TL_EAUDIT)
        fprintf(stderr,
                PROGRAM " catalogue %s: the audit log cannot be written: %s; nothing "
                        "changed\n",
                verb, problem);
    free(before);
    return rc;
}

static int make_catalogue_dir(const char *data)
{
    char dir[4096];
    if (tl_format(dir, sizeof dir, "%s/" TL_DATADIR_CATALOGUE, data) != 0)
        return TL_EINVAL;
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* ---- trust ---------------------------------------------------------------------------------- */

static int catalogue_trust(const struct catalogue_args *args)
{
    char *text = NULL, path[4096], fingerprint[TL_FINGERPRINT_LEN], current[TL_FINGERPRINT_LEN];
    size_t len = 0;
    EVP_PKEY *key = NULL;
    int status = TL_EXIT_FAILURE;
    int rc = tl_fs_read_file(args->file, TL_SSH_PUBLIC_MAX_LINE, 0, NULL, NULL, &text, &len);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue trust: %s cannot be read: %s\n", args->file,
                tl_strerror(rc));
        goto out;
    }
    if (tl_key_parse_ssh_public(text, &key) != 0 || tl_fingerprint(key, fingerprint) != 0) {
        fprintf(stderr,
                PROGRAM " catalogue trust: %s is not one ssh-ed25519 public key line (the .pub "
                        "file catalogue key wrote)\n",
                args->file);
        goto out;
    }
    int had = tl_catalogue_files_trusted(args->data, current) == 0;
    if (had && tl_fingerprint_equal(current, fingerprint)) {
        printf("Already trusted: %s\n", fingerprint);
        status = TL_EXIT_OK;
        goto out;
    }
    if (had && !args->replace) {
        fprintf(stderr,
                PROGRAM " catalogue trust: %s is trusted already; agents enrolled since pin it "
                        "and refuse packages signed by another key. --replace replaces it for "
                        "agents enrolled from now on\n",
                current);
        goto out;
    }
    char *line = NULL;
    if ((rc = make_catalogue_dir(args->data)) != 0 ||
        (rc = tl_catalogue_files_path(args->data, "admin.pub", path, sizeof path)) != 0 ||
        (rc = tl_key_ssh_public(key, "tierline-catalogue", &line)) != 0) {
        status = tl_admin_fail("catalogue trust", rc);
        goto out;
    }
    size_t line_len = strlen(line);
    char *stored = malloc(line_len + 2);
    if (stored != NULL) {
        memcpy(stored, line, line_len);
        stored[line_len] = '\n';
        stored[line_len + 1] = '\0';
    }
    free(line);
    json_t *details = json_pack("{s:s}", "fingerprint", fingerprint);
    if (had && details != NULL)
        json_object_set_new(details, "replaced", json_string(current));
    struct change change = {"catalogue.trust", fingerprint, details, path, stored, 0};
    int kept = 0;
    rc =
        stored != NULL && details != NULL ? record(args->data, "trust", &change, &kept) : TL_ENOMEM;
    json_decref(details);
    free(stored);
    if (rc == TL_EAUDIT)
        goto out;
    if (rc != 0) {
        status = tl_admin_fail("catalogue trust", rc);
        goto out;
    }
    printf("Trusted catalogue signing key %s\nEnrollment strings made from now on pin it "
           "(enroll-code).\n",
           fingerprint);
    status = TL_EXIT_OK;
out:
    EVP_PKEY_free(key);
    free(text);
    return status;
}

/* ---- sign ----------------------------------------------------------------------------------- */

struct files {
    tl_catalogue_file_t *items;
    char **paths;
    char **contents;
    size_t count;
};

static void files_free(struct files *files)
{
    for (size_t i = 0; i < files->count; i++) {
        free(files->paths[i]);
        free(files->contents[i]);
    }
    free(files->items);
    free(files->paths);
    free(files->contents);
}

static int files_add(struct files *files, const char *path, char *content, size_t size,
                     int executable)
{
    if (files->count >= TL_CATALOGUE_MAX_FILES) {
        free(content);
        return TL_EFULL;
    }
    if (files->items == NULL) {
        files->items = calloc(TL_CATALOGUE_MAX_FILES, sizeof *files->items);
        files->paths = calloc(TL_CATALOGUE_MAX_FILES, sizeof *files->paths);
        files->contents = calloc(TL_CATALOGUE_MAX_FILES, sizeof *files->contents);
        if (files->items == NULL || files->paths == NULL || files->contents == NULL) {
            free(content);
            return TL_ENOMEM;
        }
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        free(content);
        return TL_ENOMEM;
    }
    size_t i = files->count++;
    files->paths[i] = copy;
    files->contents[i] = content;
    files->items[i] = (tl_catalogue_file_t){copy, (const uint8_t *)content, size, executable};
    return 0;
}

static int read_into(struct files *files, const char *dir, const char *name, const char *prefix,
                     int *executable)
{
    char path[4096], in_package[TL_CATALOGUE_PATH_MAX + 16], *content = NULL;
    size_t len = 0;
    struct stat st;
    if (tl_format(path, sizeof path, "%s/%s", dir, name) != 0 ||
        tl_format(in_package, sizeof in_package, "%s/%s", prefix, name) != 0)
        return TL_EINVAL;
    int rc = tl_fs_read_file(path, TL_CATALOGUE_FILE_MAX, TL_FS_READ_NOFOLLOW, NULL, NULL, &content,
                             &len);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue sign: %s: %s\n", path,
                rc == TL_EFULL ? "larger than 1 MiB" : tl_strerror(rc));
        return TL_EINVAL;
    }
    int exe = executable != NULL ? *executable : 0;
    if (executable != NULL && stat(path, &st) == 0)
        exe = (st.st_mode & S_IXUSR) != 0;
    return files_add(files, in_package, content, len, exe);
}

static int ends_with(const char *name, const char *suffix)
{
    size_t len = strlen(name), suffix_len = strlen(suffix);
    return len > suffix_len && strcmp(name + len - suffix_len, suffix) == 0;
}

/* Every file of a runbooks directory; or every *.md of an articles one. */
static int read_dir(struct files *files, const char *dir, int runbooks)
{
    DIR *handle = opendir(dir);
    if (handle == NULL) {
        fprintf(stderr, PROGRAM " catalogue sign: %s cannot be read: %s\n", dir, strerror(errno));
        return TL_EINVAL;
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(handle)) != NULL) {
        const char *name = entry->d_name;
        if (name[0] == '.')
            continue;
        if (!runbooks && ends_with(name, ".md")) {
            rc = read_into(files, dir, name, "kb", NULL);
        } else if (runbooks) {
            /* Every file: an executable without its NAME.json is named by the checks. */
            int exe = !ends_with(name, ".json");
            rc = read_into(files, dir, name, "runbooks", &exe);
            if (rc == 0 && ends_with(name, ".json"))
                files->items[files->count - 1].executable = 0;
        }
    }
    closedir(handle);
    return rc;
}

/* The published articles of the relay's knowledge base, as kb/ID.md. */
static int read_published(struct files *files, const char *data)
{
    tl_store_t *store = NULL;
    tl_kb_article_rows_t list = {0};
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_store_kb_articles_read(store, NULL, TL_KB_PUBLISHED, &list);
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        tl_kb_article_row_t row = {0};
        char name[TL_CATALOGUE_PATH_MAX + 16];
        rc = tl_store_kb_article_read(store, list.rows[i].id, &row);
        char *content = rc == 0 ? strdup(row.source) : NULL;
        if (rc == 0 && content == NULL)
            rc = TL_ENOMEM;
        if (rc == 0) {
            snprintf(name, sizeof name, "kb/%s.md", row.id);
            rc = files_add(files, name, content, strlen(content), 0);
        }
        tl_kb_article_row_clear(&row);
    }
    tl_kb_article_rows_free(&list);
    tl_store_close(store);
    return rc;
}

/* Whether the package holds path already. */
static int files_hold(const struct files *files, const char *path)
{
    for (size_t i = 0; i < files->count; i++)
        if (strcmp(files->paths[i], path) == 0)
            return 1;
    return 0;
}

/*
 * The runbooks admins accepted from proposals (docs/kb.md "Runbook proposals"), as runbooks/NAME
 * (the script, executable) and runbooks/NAME.json (its metadata header), each checked again with
 * the catalogue's parser. A name the --runbooks folder holds too is refused: one of the two must
 * go, and which is the admin's choice.
 */
static int read_accepted(struct files *files, const char *data, const char *runbooks_dir)
{
    tl_store_t *store = NULL;
    tl_runbook_proposal_rows_t list = {0};
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_store_runbook_proposals_read(store, TL_RUNBOOK_ACCEPTED, &list);
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        tl_runbook_proposal_row_t row = {0};
        tl_runbook_script_t script = {0};
        char reason[1024] = "", exe[TL_CATALOGUE_PATH_MAX + 16], meta[TL_CATALOGUE_PATH_MAX + 16];
        char *content = NULL, *metadata = NULL;
        rc = tl_store_runbook_proposal_read(store, list.rows[i].id, &row);
        if (rc == 0 && tl_runbook_script_parse(row.script, strlen(row.script), &script, reason,
                                               sizeof reason) != 0) {
            char shown[1200];
            tl_text_clip(shown, sizeof shown, reason, 0, TL_TEXT_LINE);
            fprintf(stderr,
                    PROGRAM " catalogue sign: accepted proposal %lld (%s) no longer reads: %s; "
                            "no package was written\n",
                    (long long)row.id, row.name, shown);
            rc = TL_EINVAL;
        }
        snprintf(exe, sizeof exe, "runbooks/%s", row.name != NULL ? row.name : "");
        snprintf(meta, sizeof meta, "runbooks/%s.json", row.name != NULL ? row.name : "");
        if (rc == 0 && (files_hold(files, exe) || files_hold(files, meta))) {
            fprintf(stderr,
                    PROGRAM " catalogue sign: runbook %s is both in %s and accepted proposal "
                            "%lld: keep one (rename or remove the folder's, or sign without "
                            "--runbooks-from-data); no package was written\n",
                    row.name, runbooks_dir, (long long)row.id);
            rc = TL_EINVAL;
        }
        if (rc == 0 && ((content = strdup(row.script)) == NULL ||
                        (metadata = strndup(script.metadata, script.metadata_len)) == NULL)) {
            free(content);
            rc = TL_ENOMEM;
        }
        if (rc == 0 && (rc = files_add(files, exe, content, strlen(content), 1)) != 0)
            free(metadata);
        if (rc == 0)
            rc = files_add(files, meta, metadata, script.metadata_len, 0);
        tl_runbook_script_clear(&script);
        tl_runbook_proposal_row_clear(&row);
    }
    tl_runbook_proposal_rows_free(&list);
    tl_store_close(store);
    return rc;
}

static int catalogue_sign(const struct catalogue_args *args)
{
    EVP_PKEY *key = NULL;
    struct files files = {0};
    uint8_t *package = NULL;
    size_t len = 0;
    char why[1024] = "", sha256[TL_SHA256_HEX_LEN], fingerprint[TL_FINGERPRINT_LEN];
    int status = TL_EXIT_FAILURE;
    int rc = tl_key_load(args->key, &key);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue sign: the key %s cannot be used: %s\n", args->key,
                tl_strerror(rc));
        goto out;
    }
    if ((rc = read_dir(&files, args->runbooks, 1)) != 0 ||
        (rc = args->kb != NULL ? read_dir(&files, args->kb, 0)
                               : read_published(&files, args->data)) != 0 ||
        (args->runbooks_from_data &&
         (rc = read_accepted(&files, args->data, args->runbooks)) != 0)) {
        if (rc != TL_EINVAL)
            status = tl_admin_fail("catalogue sign", rc);
        goto out;
    }
    rc = tl_catalogue_build(files.items, files.count, args->version, tl_wall_ms(), key, &package,
                            &len, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue sign: %s; no package was written\n", why);
        goto out;
    }
    rc = tl_fs_write_atomic(args->out, package, len, TL_FS_SYNC | TL_FS_SYNC_DIR, NULL);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue sign: %s cannot be written: %s\n", args->out,
                tl_strerror(rc));
        goto out;
    }
    chmod(args->out, 0644);
    tl_sha256_hex(package, len, sha256);
    tl_fingerprint(key, fingerprint);
    tl_catalogue_t *check = NULL;
    tl_catalogue_parse(package, len, &check, why, sizeof why);
    printf("Signed catalogue version %" PRIu64 ": %zu runbook(s), %zu article(s), %zu bytes\n"
           "  file:   %s\n  sha256: %s\n  signer: %s\n",
           args->version, check ? tl_catalogue_runbook_count(check) : 0,
           check ? tl_catalogue_article_count(check) : 0, len, args->out, sha256, fingerprint);
    tl_catalogue_free(check);
    status = TL_EXIT_OK;
out:
    free(package);
    files_free(&files);
    EVP_PKEY_free(key);
    return status;
}

/* ---- publish, show -------------------------------------------------------------------------- */

static int catalogue_publish(const struct catalogue_args *args)
{
    char *data = NULL, why[1024] = "", trusted[TL_FINGERPRINT_LEN], sha256[TL_SHA256_HEX_LEN];
    char name[64], stored[4096], published_path[4096], text[256];
    size_t len = 0;
    tl_catalogue_t *catalogue = NULL;
    tl_published_catalogue_t published;
    int status = TL_EXIT_FAILURE, wrote = 0;
    int rc = tl_catalogue_files_trusted(args->data, trusted);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " catalogue publish: no catalogue signing key is trusted; "
                                "first: " PROGRAM " catalogue trust PUBKEYFILE --data DIR\n");
        goto out;
    }
    if (rc == 0)
        rc = tl_catalogue_files_published(args->data, &published);
    if (rc != 0) {
        status = tl_admin_fail("catalogue publish", rc);
        goto out;
    }
    rc = tl_fs_read_file(args->file, TL_CATALOGUE_MAX, 0, NULL, NULL, &data, &len);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue publish: %s cannot be read: %s\n", args->file,
                rc == TL_EFULL ? "larger than a package may be" : tl_strerror(rc));
        goto out;
    }
    rc = tl_catalogue_verify((const uint8_t *)data, len, trusted, published.version, &catalogue,
                             why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue publish: %s refused (%s): %s; nothing was published\n",
                args->file, tl_err_name(rc), why);
        goto out;
    }
    uint64_t version = tl_catalogue_version(catalogue);
    tl_sha256_hex(data, len, sha256);
    snprintf(name, sizeof name, "%" PRIu64 ".tlcat", version);
    if ((rc = make_catalogue_dir(args->data)) != 0 ||
        (rc = tl_catalogue_files_path(args->data, name, stored, sizeof stored)) != 0 ||
        (rc = tl_catalogue_files_path(args->data, "published.json", published_path,
                                      sizeof published_path)) != 0 ||
        (rc = tl_fs_write_atomic(stored, data, len, TL_FS_SYNC | TL_FS_SYNC_DIR | TL_FS_NOFOLLOW,
                                 NULL)) != 0) {
        status = tl_admin_fail("catalogue publish", rc);
        goto out;
    }
    wrote = 1;
    snprintf(text, sizeof text, "{\"version\": %" PRIu64 ", \"size\": %zu, \"sha256\": \"%s\"}\n",
             version, len, sha256);
    char subject[32];
    snprintf(subject, sizeof subject, "v%" PRIu64, version);
    json_t *details =
        json_pack("{s:I, s:I, s:s, s:I, s:s, s:I, s:I}", "version", (json_int_t)version, "previous",
                  (json_int_t)published.version, "sha256", sha256, "size", (json_int_t)len,
                  "signer", tl_catalogue_signer(catalogue), "runbooks",
                  (json_int_t)tl_catalogue_runbook_count(catalogue), "articles",
                  (json_int_t)tl_catalogue_article_count(catalogue));
    struct change change = {"catalogue.publish", subject, details, published_path, text, 0};
    int kept = 0;
    rc = details != NULL ? record(args->data, "publish", &change, &kept) : TL_ENOMEM;
    json_decref(details);
    if (kept)
        wrote = 0; /* published.json names it */
    if (rc == TL_EAUDIT)
        goto out;
    if (rc != 0) {
        status = tl_admin_fail("catalogue publish", rc);
        goto out;
    }
    wrote = 0;
    printf("Published catalogue version %" PRIu64 " (%zu runbook(s), %zu article(s)); agents "
           "install it when they next connect\n",
           version, tl_catalogue_runbook_count(catalogue), tl_catalogue_article_count(catalogue));
    status = TL_EXIT_OK;
out:
    if (wrote)
        unlink(stored);
    tl_catalogue_free(catalogue);
    free(data);
    return status;
}

static int catalogue_show(const struct catalogue_args *args)
{
    char trusted[TL_FINGERPRINT_LEN] = "";
    tl_published_catalogue_t published;
    int trust_rc = tl_catalogue_files_trusted(args->data, trusted);
    int rc = tl_catalogue_files_published(args->data, &published);
    if ((trust_rc != 0 && trust_rc != TL_ENOTFOUND) || rc != 0)
        return tl_admin_fail("catalogue show", rc != 0 ? rc : trust_rc);
    if (args->json) {
        json_t *doc = json_pack(
            "{s:o, s:I, s:I, s:o}", "trusted", trust_rc == 0 ? json_string(trusted) : json_null(),
            "version", (json_int_t)published.version, "size", (json_int_t)published.size, "sha256",
            published.version ? json_string(published.sha256) : json_null());
        int status = doc != NULL ? tl__admin_print_json(doc) : tl_admin_fail("show", TL_ENOMEM);
        json_decref(doc);
        return status;
    }
    printf("trusted signing key: %s\n", trust_rc == 0 ? trusted : "none");
    if (published.version == 0)
        printf("published:           none\n");
    else
        printf("published:           version %" PRIu64 ", %" PRIu64 " bytes, sha256 %s\n",
               published.version, published.size, published.sha256);
    return TL_EXIT_OK;
}

static int cmd_catalogue(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct catalogue_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *problem = NULL;
    int needs_file = args.verb == VERB_TRUST || args.verb == VERB_PUBLISH;
    int needs_data = args.verb == VERB_TRUST || args.verb == VERB_PUBLISH ||
                     args.verb == VERB_SHOW ||
                     (args.verb == VERB_SIGN && (args.kb_from_data || args.runbooks_from_data));
    if (needs_file != (args.file != NULL))
        problem = needs_file ? "give the file" : "this takes no file";
    else if (needs_data && args.data == NULL)
        problem = "--data DIR is required here";
    else if (args.verb == VERB_SIGN &&
             (args.key == NULL || args.runbooks == NULL || args.out == NULL || args.version == 0))
        problem = "sign needs --key KEY, --runbooks DIR, --version N and -o FILE";
    else if (args.verb == VERB_SIGN && (args.kb != NULL) == (args.kb_from_data != 0))
        problem = "sign takes the articles from --kb DIR or --kb-from-data (with --data DIR)";
    else if (args.verb != VERB_SIGN && (args.key || args.runbooks || args.kb || args.kb_from_data ||
                                        args.runbooks_from_data || args.version))
        problem = "--key, --runbooks, --runbooks-from-data, --kb, --kb-from-data and --version "
                  "are for sign";
    else if (args.out != NULL && args.verb != VERB_SIGN && args.verb != VERB_KEY)
        problem = "-o is for key and sign";
    else if (args.replace && args.verb != VERB_TRUST)
        problem = "--replace is for trust";
    if (problem != NULL) {
        fprintf(stderr, PROGRAM " catalogue: %s\nusage: " PROGRAM " %s\n", problem, cmd->usage);
        return TL_EXIT_USAGE;
    }
    switch (args.verb) {
    case VERB_KEY:
        return catalogue_key(&args);
    case VERB_TRUST:
        return catalogue_trust(&args);
    case VERB_SIGN:
        return catalogue_sign(&args);
    case VERB_PUBLISH:
        return catalogue_publish(&args);
    default:
        return catalogue_show(&args);
    }
}

const tl_admin_command_t tl_admin_catalogue = {
    .name = "catalogue",
    .usage =
        "catalogue key [-o FILE] | catalogue trust PUBKEYFILE [--replace] [--data DIR] | "
        "catalogue sign --key KEY --runbooks DIR [--runbooks-from-data] (--kb DIR | "
        "--kb-from-data) [--data DIR] --version N -o FILE | catalogue publish FILE [--data DIR] "
        "| catalogue show [--json] "
        "[--data DIR]",
    .summary = "signed catalogue updates of runbooks and articles for agents (docs/catalogue.md)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    {.name = "data",
                     .metavar = "DIR",
                     .help = "the relay's folder (trust, publish, show, sign --kb-from-data or "
                             "--runbooks-from-data)",
                     .out = TL_CLI_AT(struct catalogue_args, data)},
                    {.name = "out",
                     .letter = 'o',
                     .metavar = "FILE",
                     .help =
                         "key: where the private key goes (FILE.pub beside it; default " DEFAULT_KEY
                         "); sign: the package",
                     .out = TL_CLI_AT(struct catalogue_args, out)},
                    {.name = "key",
                     .metavar = "KEY",
                     .help = "sign: the catalogue signing key (catalogue key made it)",
                     .out = TL_CLI_AT(struct catalogue_args, key)},
                    {.name = "runbooks",
                     .metavar = "DIR",
                     .help = "sign: the runbooks (NAME.json beside each executable NAME)",
                     .out = TL_CLI_AT(struct catalogue_args, runbooks)},
                    {.name = "runbooks-from-data",
                     .help = "sign: also the runbooks admins accepted from proposals (runbook "
                             "proposals accept), beside those of --runbooks",
                     .out = TL_CLI_AT(struct catalogue_args, runbooks_from_data)},
                    {.name = "kb",
                     .metavar = "DIR",
                     .help = "sign: the articles (*.md)",
                     .out = TL_CLI_AT(struct catalogue_args, kb)},
                    {.name = "kb-from-data",
                     .help = "sign: the relay knowledge base's published articles",
                     .out = TL_CLI_AT(struct catalogue_args, kb_from_data)},
                    {.name = "version",
                     .metavar = "N",
                     .kind = TL_CLI_UINT,
                     .min = 1,
                     .max = TL_CATALOGUE_VERSION_MAX,
                     .help = "sign: the package's version, higher than any published before",
                     .out = TL_CLI_AT(struct catalogue_args, version)},
                    {.name = "replace",
                     .help = "trust: replace the key trusted now",
                     .out = TL_CLI_AT(struct catalogue_args, replace)},
                    TL__ADMIN_JSON(struct catalogue_args, "show: as JSON"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "key|trust|sign|publish|show",
                                                   .kind = TL_CLI_WORD,
                                                   .words = verbs,
                                                   .out = TL_CLI_AT(struct catalogue_args, verb)},
                                                  {.name = "FILE",
                                                   .flags = TL_CLI_OPTIONAL,
                                                   .out = TL_CLI_AT(struct catalogue_args, file)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_catalogue,
    .example = "tierline-relay catalogue key -o ~/catalogue-signing.key\n"
               "tierline-relay catalogue trust catalogue-signing.key.pub --data /var/lib/tierline\n"
               "tierline-relay catalogue sign --key ~/catalogue-signing.key --runbooks runbooks "
               "--kb kb --version 3 -o catalogue-3.tlcat\n"
               "tierline-relay catalogue publish catalogue-3.tlcat --data /var/lib/tierline\n",
};
