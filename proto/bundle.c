/* Evidence bundles: their names, MANIFEST, the signature and the check (proto/bundle.h). */
#include "proto/bundle.h"
#include "proto/array.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/hash.h"
#include "proto/ids.h"
#include "proto/tar.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int tl_bundle_path_valid(const char *path)
{
    size_t len = path != NULL ? strlen(path) : 0;
    if (len == 0 || len > TL_BUNDLE_PATH_MAX)
        return 0;
    size_t component = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = path[i];
        if (c == '/' || c == '\0') {
            if (component == 0)
                return 0;
            component = 0;
            continue;
        }
        if (!path_char(c) || (component == 0 && c == '.'))
            return 0;
        component++;
    }
    return 1;
}

int tl_bundle_evidence_path(size_t index, const char *kind, const char *name, char *out,
                            size_t size)
{
    /* The name's own characters, every run of others one '-' (a store's names are at most
     * 255 bytes; a longer one keeps its first 1023). */
    char clean[1024];
    size_t len = 0;
    for (const char *p = name != NULL ? name : ""; *p != '\0' && len < sizeof clean - 1; p++) {
        if (path_char(*p))
            clean[len++] = *p;
        else if (len == 0 || clean[len - 1] != '-')
            clean[len++] = '-';
    }
    clean[len] = '\0';
    if (len == 0)
        snprintf(clean, sizeof clean, "item");
    /* "recordings/" and "NNNN-" leave 56 bytes; a long name keeps its start and its end,
     * where evidence names hold the time, the hash's first digits and the extension. */
    enum { KEEP = 56, HEAD = 36, TAIL = KEEP - HEAD - 1 };
    if (len > KEEP) {
        memmove(clean + HEAD + 1, clean + len - TAIL, TAIL + 1);
        clean[HEAD] = '-';
    }
    if (index == 0 || index > TL_BUNDLE_MAX_ITEMS)
        return TL_EINVAL;
    int recording = kind != NULL && strcmp(kind, "recording") == 0;
    return tl_format(out, size, "%s/%04zu-%s", recording ? "recordings" : "evidence", index, clean);
}

int tl_bundle_manifest_add(tl_buf_t *manifest, const char *hash, const char *path)
{
    if (!tl_sha256_hex_valid(hash) || !tl_bundle_path_valid(path))
        return TL_EINVAL;
    int rc = tl_buf_put(manifest, hash, 64);
    if (rc == 0)
        rc = tl_buf_put(manifest, "  ", 2);
    if (rc == 0)
        rc = tl_buf_put(manifest, path, strlen(path));
    if (rc == 0)
        rc = tl_buf_put_u8(manifest, '\n');
    return rc;
}

/* The three files a bundle holds beside the ones MANIFEST lists. */
static int own_file(const char *path)
{
    return strcmp(path, TL_BUNDLE_MANIFEST) == 0 || strcmp(path, TL_BUNDLE_SIGNATURE) == 0 ||
           strcmp(path, TL_BUNDLE_KEY) == 0;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const tl_bundle_file_t *)a)->path, ((const tl_bundle_file_t *)b)->path);
}

int tl_bundle_manifest_parse(const char *text, size_t len, tl_bundle_file_t **files, size_t *count,
                             char *problem, size_t problem_size)
{
    tl_bundle_file_t *list = NULL;
    size_t used = 0, line = 0, cap = 0;
    int rc = TL_EINVAL;
    *files = NULL;
    *count = 0;
    if (len > 0 && text[len - 1] != '\n') {
        tl_format(problem, problem_size, "the last line does not end with a newline");
        goto out;
    }
    for (size_t at = 0; at < len; line++) {
        const char *start = text + at, *end = memchr(start, '\n', len - at);
        size_t line_len = (size_t)(end - start), path_len = line_len > 66 ? line_len - 66 : 0;
        at += line_len + 1;
        rc = tl_array_grow(&list, &cap, used + 1, sizeof *list, 64, TL_BUNDLE_MAX_FILES);
        if (rc == TL_EFULL)
            tl_format(problem, problem_size, "more than %d lines", TL_BUNDLE_MAX_FILES);
        if (rc != 0)
            goto out;
        rc = TL_EINVAL;
        tl_bundle_file_t *file = &list[used];
        if (line_len < 67 || start[64] != ' ' || start[65] != ' ' ||
            path_len > TL_BUNDLE_PATH_MAX) {
            tl_format(problem, problem_size, "line %zu is not \"SHA256  PATH\"", line + 1);
            goto out;
        }
        memcpy(file->hash, start, 64);
        file->hash[64] = '\0';
        memcpy(file->path, start + 66, path_len);
        file->path[path_len] = '\0';
        if (!tl_sha256_hex_valid(file->hash) || memchr(start + 66, '\0', path_len) != NULL) {
            tl_format(problem, problem_size, "line %zu: not 64 lowercase hex digits of a SHA-256",
                      line + 1);
            goto out;
        }
        if (!tl_bundle_path_valid(file->path) || own_file(file->path)) {
            tl_format(problem, problem_size, "line %zu: '%s' cannot be a file of a bundle",
                      line + 1, file->path);
            goto out;
        }
        used++;
    }
    if (used > 1)
        qsort(list, used, sizeof *list, by_path);
    for (size_t i = 1; i < used; i++) {
        if (strcmp(list[i - 1].path, list[i].path) == 0) {
            tl_format(problem, problem_size, "%s is listed twice", list[i].path);
            goto out;
        }
    }
    *files = list;
    *count = used;
    list = NULL;
    rc = 0;
out:
    free(list);
    return rc;
}

/* ---- the signature and the key ------------------------------------------------------------ */

static int ed25519(EVP_PKEY *key)
{
    return key != NULL && EVP_PKEY_get_id(key) == EVP_PKEY_ED25519;
}

int tl_bundle_sign(EVP_PKEY *key, const void *data, size_t len,
                   uint8_t sig[TL_BUNDLE_SIGNATURE_LEN])
{
    if (!ed25519(key))
        return TL_EKEY;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = TL_BUNDLE_SIGNATURE_LEN;
    int rc = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
                     EVP_DigestSign(ctx, sig, &sig_len, data, len) == 1 &&
                     sig_len == TL_BUNDLE_SIGNATURE_LEN
                 ? 0
                 : TL_EKEY;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int tl_bundle_signature_check(EVP_PKEY *public_key, const void *data, size_t len,
                              const uint8_t *sig, size_t sig_len)
{
    if (!ed25519(public_key))
        return TL_EKEY;
    if (sig_len != TL_BUNDLE_SIGNATURE_LEN)
        return TL_ESIGNATURE;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = TL_ENOMEM;
    if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, public_key) == 1)
        rc = EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1 ? 0 : TL_ESIGNATURE;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int tl_bundle_key_pem(EVP_PKEY *key, char **pem, size_t *len)
{
    *pem = NULL;
    *len = 0;
    if (!ed25519(key))
        return TL_EKEY;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long data_len = 0;
    int rc = TL_ENOMEM;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1 &&
        (data_len = BIO_get_mem_data(bio, &data)) > 0 && (*pem = malloc((size_t)data_len + 1))) {
        memcpy(*pem, data, (size_t)data_len);
        (*pem)[data_len] = '\0';
        *len = (size_t)data_len;
        rc = 0;
    }
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int tl_bundle_key_read(const void *pem, size_t len, EVP_PKEY **out)
{
    *out = NULL;
    if (len == 0 || len > TL_BUNDLE_KEY_MAX)
        return TL_EKEY;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!ed25519(key)) {
        EVP_PKEY_free(key);
        return TL_EKEY;
    }
    *out = key;
    return 0;
}

/* ---- the check ------------------------------------------------------------------------------ */

enum state { HEADER, CONTENT, PADDING, END, DONE, FAILED };
enum kind { OTHER, MANIFEST, SIGNATURE, KEY };

struct tl_bundle_check {
    enum state state;
    int failure; /* the code of the first problem */
    uint8_t block[TL_TAR_BLOCK];
    size_t block_len;
    uint64_t offset; /* bytes of the archive read */
    /* the entry being read */
    tl_tar_entry_t entry;
    enum kind kind;
    char path[TL_TAR_NAME_MAX + 1]; /* within the folder */
    uint64_t left;
    size_t padding_left;
    tl_sha256_t *hash;
    /* what was found */
    char folder[TL_ID_TEXT + 1]; /* "T-4/" */
    char ticket[TL_ID_TEXT];
    tl_buf_t *kept[KEY + 1]; /* MANIFEST, MANIFEST.sig, relay.pem; NULL until found */
    tl_bundle_file_t *files; /* every other file, with the SHA-256 of its content */
    size_t file_count, file_cap;
    size_t manifest_count;
    char key_fingerprint[TL_FINGERPRINT_LEN];
    char problem[512];
    char problem_path[TL_TAR_NAME_MAX + 1];
};

tl_bundle_check_t *tl_bundle_check_new(void)
{
    tl_bundle_check_t *check = calloc(1, sizeof *check);
    if (check != NULL && (check->hash = tl_sha256_new()) == NULL) {
        free(check);
        check = NULL;
    }
    return check;
}

void tl_bundle_check_free(tl_bundle_check_t *check)
{
    if (check == NULL)
        return;
    tl_sha256_free(check->hash);
    for (int i = MANIFEST; i <= KEY; i++)
        tl_buf_free(check->kept[i]);
    free(check->files);
    free(check);
}

/* Records the first problem: about path (NULL: the archive), with code; returns code. */
static int fail(tl_bundle_check_t *check, int code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(tl_bundle_check_t *check, int code, const char *path, const char *fmt, ...)
{
    if (check->state == FAILED)
        return check->failure;
    char what[400];
    va_list args;
    va_start(args, fmt);
    tl_format_v(what, sizeof what, fmt, args);
    va_end(args);
    snprintf(check->problem_path, sizeof check->problem_path, "%s", path != NULL ? path : "");
    if (path != NULL)
        tl_format(check->problem, sizeof check->problem, "%s: %s", path, what);
    else
        tl_format(check->problem, sizeof check->problem, "%s", what);
    check->state = FAILED;
    check->failure = code;
    return code;
}

/* The folder the first entry makes: "T-N/". */
static int take_folder(tl_bundle_check_t *check, const tl_tar_entry_t *entry)
{
    size_t len = strlen(entry->name);
    int64_t id;
    char ticket[TL_ID_TEXT];
    if (entry->type != TL_TAR_DIRECTORY || len >= sizeof ticket + 1)
        return fail(check, TL_EINVAL, NULL,
                    "not a ticket's bundle: its first entry '%s' is not a folder T-N/",
                    entry->name);
    memcpy(ticket, entry->name, len - 1);
    ticket[len - 1] = '\0';
    if (tl_id_parse(ticket, TL_ID_TICKET, &id) != 0)
        return fail(check, TL_EINVAL, NULL,
                    "not a ticket's bundle: its first entry '%s' is not a folder T-N/",
                    entry->name);
    memcpy(check->ticket, ticket, len);
    memcpy(check->folder, entry->name, len + 1);
    return 0;
}

/* A header has been read: what the entry is, and where its content goes. */
static int take_entry(tl_bundle_check_t *check)
{
    const tl_tar_entry_t *entry = &check->entry;
    if (check->folder[0] == '\0')
        return take_folder(check, entry);
    size_t folder_len = strlen(check->folder);
    if (strncmp(entry->name, check->folder, folder_len) != 0)
        return fail(check, TL_EINVAL, entry->name, "outside the bundle's folder %s", check->folder);
    const char *path = entry->name + folder_len;
    snprintf(check->path, sizeof check->path, "%s", path);
    if (entry->type == TL_TAR_DIRECTORY) {
        check->state = HEADER; /* a folder of the bundle: nothing to read */
        return 0;
    }
    if (!tl_bundle_path_valid(path))
        return fail(check, TL_EINVAL, path, "not a name a bundle's file may have");
    check->kind = strcmp(path, TL_BUNDLE_MANIFEST) == 0    ? MANIFEST
                  : strcmp(path, TL_BUNDLE_SIGNATURE) == 0 ? SIGNATURE
                  : strcmp(path, TL_BUNDLE_KEY) == 0       ? KEY
                                                           : OTHER;
    if (check->kind == OTHER) {
        int rc = tl_array_grow(&check->files, &check->file_cap, check->file_count + 1,
                               sizeof *check->files, 64, TL_BUNDLE_MAX_FILES);
        if (rc == TL_EFULL)
            return fail(check, TL_EINVAL, path, "more files than a bundle holds (%d)",
                        TL_BUNDLE_MAX_FILES);
        if (rc != 0)
            return fail(check, TL_ENOMEM, NULL, "out of memory");
        tl_sha256_reset(check->hash);
    } else {
        static const size_t most[] = {[MANIFEST] = TL_BUNDLE_MANIFEST_MAX,
                                      [SIGNATURE] = TL_BUNDLE_SIGNATURE_LEN,
                                      [KEY] = TL_BUNDLE_KEY_MAX};
        if (check->kept[check->kind] != NULL)
            return fail(check, TL_EINVAL, path, "in the bundle twice");
        if (check->kind == SIGNATURE && entry->size != TL_BUNDLE_SIGNATURE_LEN)
            return fail(check, TL_EINVAL, path, "%llu bytes, not the %d of an Ed25519 signature",
                        (unsigned long long)entry->size, TL_BUNDLE_SIGNATURE_LEN);
        if (entry->size > most[check->kind])
            return fail(check, TL_EINVAL, path, "%llu bytes, more than the %zu it may have",
                        (unsigned long long)entry->size, most[check->kind]);
        if ((check->kept[check->kind] = tl_buf_new(most[check->kind])) == NULL)
            return fail(check, TL_ENOMEM, NULL, "out of memory");
    }
    check->left = entry->size;
    check->padding_left = tl_tar_padding(entry->size);
    check->state = CONTENT;
    return 0;
}

/* The content of the current file is complete. */
static int end_of_file(tl_bundle_check_t *check)
{
    if (check->kind == OTHER) {
        tl_bundle_file_t *file = &check->files[check->file_count++];
        /* take_entry checked it is a bundle's path, so it fits. */
        memcpy(file->path, check->path, strlen(check->path) + 1);
        if (tl_sha256_final(check->hash, file->hash) != 0)
            return fail(check, TL_ENOMEM, NULL, "out of memory");
    }
    check->state = check->padding_left > 0 ? PADDING : HEADER;
    return 0;
}

int tl_bundle_check_feed(tl_bundle_check_t *check, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    while (len > 0 && check->state != FAILED) {
        if (check->state == CONTENT) {
            size_t take = check->left < len ? (size_t)check->left : len;
            int rc = check->kind == OTHER ? tl_sha256_update(check->hash, bytes, take)
                                          : tl_buf_put(check->kept[check->kind], bytes, take);
            if (rc != 0)
                return fail(check, TL_ENOMEM, NULL, "out of memory");
            check->left -= take;
            check->offset += take;
            bytes += take;
            len -= take;
            if (check->left == 0)
                end_of_file(check);
            continue;
        }
        if (check->state == PADDING) {
            size_t take = check->padding_left < len ? check->padding_left : len;
            check->padding_left -= take;
            check->offset += take;
            bytes += take;
            len -= take;
            if (check->padding_left == 0)
                check->state = HEADER;
            continue;
        }
        if (check->state == DONE) {
            /* A writer may pad the archive to a whole record: zeros only. */
            for (size_t i = 0; i < len; i++)
                if (bytes[i] != 0)
                    return fail(check, TL_EINVAL, NULL,
                                "bytes after the end of the archive (at byte %llu)",
                                (unsigned long long)(check->offset + i));
            check->offset += len;
            return 0;
        }
        /* HEADER or END: a block at a time. */
        size_t take = TL_TAR_BLOCK - check->block_len < len ? TL_TAR_BLOCK - check->block_len : len;
        memcpy(check->block + check->block_len, bytes, take);
        check->block_len += take;
        bytes += take;
        len -= take;
        if (check->block_len < TL_TAR_BLOCK)
            continue;
        uint64_t at = check->offset;
        check->offset += TL_TAR_BLOCK;
        check->block_len = 0;
        const char *problem = NULL;
        int rc = tl_tar_header_read(check->block, &check->entry, &problem);
        if (rc == 1) {
            check->state = check->state == END ? DONE : END;
            continue;
        }
        if (check->state == END)
            return fail(check, TL_EINVAL, NULL,
                        "a lone zero block in the middle of the archive (at byte %llu)",
                        (unsigned long long)at);
        if (rc != 0)
            return fail(check, TL_EINVAL, NULL, "the entry at byte %llu: %s",
                        (unsigned long long)at, problem);
        if ((rc = take_entry(check)) != 0)
            return rc;
        if (check->state == CONTENT && check->left == 0)
            end_of_file(check);
    }
    return check->state == FAILED ? check->failure : 0;
}

/* The file of path among those found, or NULL. */
static const tl_bundle_file_t *found(const tl_bundle_check_t *check, const char *path)
{
    tl_bundle_file_t key;
    snprintf(key.path, sizeof key.path, "%s", path);
    return bsearch(&key, check->files, check->file_count, sizeof key, by_path);
}

/* What MANIFEST lists against what came: each file there with its hash, nothing else. */
static int compare_files(tl_bundle_check_t *check, const tl_bundle_file_t *listed, size_t count)
{
    if (check->file_count > 1)
        qsort(check->files, check->file_count, sizeof *check->files, by_path);
    for (size_t i = 1; i < check->file_count; i++)
        if (strcmp(check->files[i - 1].path, check->files[i].path) == 0)
            return fail(check, TL_EINVAL, check->files[i].path, "in the bundle twice");
    for (size_t i = 0; i < count; i++) {
        const tl_bundle_file_t *file = found(check, listed[i].path);
        if (file == NULL)
            return fail(check, TL_EINVAL, listed[i].path,
                        "listed in MANIFEST but not in the bundle");
        if (strcmp(file->hash, listed[i].hash) != 0)
            return fail(check, TL_EMISMATCH, listed[i].path,
                        "its SHA-256 is %s, MANIFEST says %s: the file was changed", file->hash,
                        listed[i].hash);
    }
    for (size_t i = 0; i < check->file_count; i++)
        if (bsearch(&check->files[i], listed, count, sizeof *listed, by_path) == NULL)
            return fail(check, TL_EINVAL, check->files[i].path,
                        "in the bundle but not in MANIFEST");
    return 0;
}

int tl_bundle_check_finish(tl_bundle_check_t *check)
{
    static const char *const names[] = {
        [MANIFEST] = TL_BUNDLE_MANIFEST, [SIGNATURE] = TL_BUNDLE_SIGNATURE, [KEY] = TL_BUNDLE_KEY};
    if (check->state == FAILED)
        return check->failure;
    if (check->folder[0] == '\0')
        return fail(check, TL_ETRUNCATED, NULL, "an empty archive: no bundle in it");
    if (check->state == CONTENT || check->state == PADDING)
        return fail(check, TL_ETRUNCATED, check->entry.type == TL_TAR_FILE ? check->path : NULL,
                    "the archive is truncated: it ends inside this file (%llu of %llu bytes)",
                    (unsigned long long)(check->entry.size - check->left),
                    (unsigned long long)check->entry.size);
    if (check->state != DONE || check->block_len != 0)
        return fail(check, TL_ETRUNCATED, NULL,
                    "the archive is truncated: it ends after %llu bytes, without its two end "
                    "blocks",
                    (unsigned long long)(check->offset + check->block_len));
    for (int i = MANIFEST; i <= KEY; i++)
        if (check->kept[i] == NULL)
            return fail(check, TL_EINVAL, names[i], "not in the bundle");
    EVP_PKEY *key = NULL;
    tl_buf_t *manifest = check->kept[MANIFEST], *sig = check->kept[SIGNATURE];
    int rc = tl_bundle_key_read(tl_buf_data(check->kept[KEY]), tl_buf_len(check->kept[KEY]), &key);
    if (rc != 0)
        return fail(check, TL_EINVAL, TL_BUNDLE_KEY, "not an Ed25519 public key in PEM form");
    tl_fingerprint(key, check->key_fingerprint);
    rc = tl_bundle_signature_check(key, tl_buf_data(manifest), tl_buf_len(manifest),
                                   tl_buf_data(sig), tl_buf_len(sig));
    EVP_PKEY_free(key);
    if (rc != 0)
        return fail(check, rc == TL_ESIGNATURE ? TL_ESIGNATURE : rc, TL_BUNDLE_SIGNATURE,
                    "the signature does not verify with %s: MANIFEST was changed, or was not "
                    "signed by this key",
                    TL_BUNDLE_KEY);
    tl_bundle_file_t *listed = NULL;
    size_t count = 0;
    char why[300];
    rc = tl_bundle_manifest_parse((const char *)tl_buf_data(manifest), tl_buf_len(manifest),
                                  &listed, &count, why, sizeof why);
    if (rc != 0)
        return fail(check, rc, TL_BUNDLE_MANIFEST, "%s", why);
    rc = compare_files(check, listed, count);
    free(listed);
    if (rc == 0)
        check->manifest_count = count;
    return rc;
}

const char *tl_bundle_check_problem(const tl_bundle_check_t *check)
{
    return check->problem;
}

const char *tl_bundle_check_path(const tl_bundle_check_t *check)
{
    return check->problem_path;
}

const char *tl_bundle_check_ticket(const tl_bundle_check_t *check)
{
    return check->ticket;
}

const char *tl_bundle_check_key(const tl_bundle_check_t *check)
{
    return check->key_fingerprint;
}

size_t tl_bundle_check_files(const tl_bundle_check_t *check)
{
    return check->manifest_count;
}
