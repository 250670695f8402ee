/* The relay's catalogue files (relay/store/catalogue_files.h, docs/catalogue.md). */
#include "relay/store/catalogue_files.h"

#include "proto/catalogue.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tl_catalogue_files_path(const char *data, const char *name, char *out, size_t size)
{
    return tl_format(out, size, "%s/" TL_DATADIR_CATALOGUE "/%s", data, name) == 0 ? 0 : TL_EINVAL;
}

int tl_catalogue_files_trusted(const char *data, char out[TL_FINGERPRINT_LEN])
{
    char path[4096], *text = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    int rc = tl_catalogue_files_path(data, "admin.pub", path, sizeof path);
    if (rc == 0)
        rc = tl_fs_read_file(path, TL_SSH_PUBLIC_MAX_LINE, TL_FS_READ_NOFOLLOW, NULL, NULL, &text,
                             &len);
    if (rc == -ENOENT)
        return TL_ENOTFOUND;
    if (rc == 0)
        rc = tl_key_parse_ssh_public(text, &key);
    if (rc == 0)
        rc = tl_fingerprint(key, out);
    EVP_PKEY_free(key);
    free(text);
    return rc;
}

int tl_catalogue_files_published(const char *data, tl_published_catalogue_t *out)
{
    char path[4096], *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = tl_catalogue_files_path(data, "published.json", path, sizeof path);
    if (rc == 0)
        rc = tl_fs_read_file(path, 4096, TL_FS_READ_NOFOLLOW, NULL, NULL, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *version = json_object_get(doc, "version"), *size = json_object_get(doc, "size");
    const char *sha256 = json_string_value(json_object_get(doc, "sha256"));
    rc = TL_EINVAL;
    if (json_is_integer(version) && json_integer_value(version) > 0 &&
        (uint64_t)json_integer_value(version) <= TL_CATALOGUE_VERSION_MAX &&
        json_is_integer(size) && json_integer_value(size) > 0 &&
        json_integer_value(size) <= TL_CATALOGUE_MAX && tl_sha256_hex_valid(sha256)) {
        out->version = (uint64_t)json_integer_value(version);
        out->size = (uint64_t)json_integer_value(size);
        memcpy(out->sha256, sha256, TL_SHA256_HEX_LEN);
        rc = 0;
    }
    json_decref(doc);
    free(text);
    return rc;
}

int tl_catalogue_files_read(const char *data, uint64_t version, uint64_t offset, uint8_t *buf,
                            size_t max, size_t *got)
{
    char name[64], path[4096];
    *got = 0;
    snprintf(name, sizeof name, "%" PRIu64 ".tlcat", version);
    int rc = tl_catalogue_files_path(data, name, path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TL_ENOTFOUND : -errno;
    while (*got < max) {
        ssize_t n = pread(fd, buf + *got, max - *got, (off_t)(offset + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    close(fd);
    return rc;
}
