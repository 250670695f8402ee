#include "console/command_cache.h"
#include "console/config.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/hash.h"
#include "proto/text.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest file name made readable; longer ones are hashed (file systems allow 255 bytes). */
#define READABLE_NAME_MAX 200

/* $XDG_CACHE_HOME/tierline when that is absolute, else HOME/.cache/tierline. */
static int cache_dir(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg != NULL && xdg[0] == '/')
        return tl_format(out, size, "%s/tierline", xdg) == 0 ? 0 : TL_EFULL;
    const char *home = tl_config_home();
    if (home == NULL)
        return TL_EINVAL;
    return tl_format(out, size, "%s/.cache/tierline", home) == 0 ? 0 : TL_EFULL;
}

/* Appends text with every byte outside A-Z a-z 0-9 . _ - as %XX; 0, or TL_EFULL. */
static int put_encoded(char *out, size_t size, size_t *used, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
        int rc = plain ? tl_format_append(out, size, used, "%c", *p)
                       : tl_format_append(out, size, used, "%%%02X", *p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int tl_command_cache_path(const char *host, unsigned port, const char *user, char *out, size_t size)
{
    char dir[TL_CONFIG_PATH_MAX], name[READABLE_NAME_MAX + 1];
    size_t used = 0;
    int rc = cache_dir(dir, sizeof dir);
    if (rc != 0)
        return rc;
    int readable = tl_format_append(name, sizeof name, &used, "commands-") == 0 &&
                   put_encoded(name, sizeof name, &used, user) == 0 &&
                   tl_format_append(name, sizeof name, &used, "@") == 0 &&
                   put_encoded(name, sizeof name, &used, host) == 0 &&
                   tl_format_append(name, sizeof name, &used, "-%u.json", port) == 0;
    if (!readable) {
        char key[TL_CONFIG_USER_MAX + TL_CONFIG_HOST_MAX + 16], hex[TL_SHA256_HEX_LEN];
        if (tl_format(key, sizeof key, "%s@%s:%u", user, host, port) != 0)
            return TL_EFULL;
        if ((rc = tl_sha256_hex(key, strlen(key), hex)) != 0)
            return rc;
        tl_format(name, sizeof name, "commands-%s.json", hex);
    }
    return tl_format(out, size, "%s/%s", dir, name) == 0 ? 0 : TL_EFULL;
}

int tl_command_cache_parse(const void *data, size_t len, const char *host, unsigned port,
                           const char *user, tl_command_list_t **list, int64_t *fetched_ms,
                           char *why, size_t why_size)
{
    *list = NULL;
    if (len > TL_COMMAND_CACHE_MAX_BYTES) {
        tl_format(why, why_size, "it is larger than %u KiB", TL_COMMAND_CACHE_MAX_BYTES / 1024);
        return TL_EFULL;
    }
    json_error_t error;
    json_t *cache = json_loadb(data, len, JSON_REJECT_DUPLICATES, &error);
    int rc = TL_EINVAL;
    if (cache == NULL) {
        tl_format(why, why_size, "it is not JSON (line %d: %s)", error.line, error.text);
        goto out;
    }
    json_t *version = json_object_get(cache, "version");
    json_t *fetched = json_object_get(cache, "fetched_ms");
    const char *cached_host = json_string_value(json_object_get(cache, "relay"));
    const char *cached_user = json_string_value(json_object_get(cache, "user"));
    json_t *cached_port = json_object_get(cache, "port");
    if (!json_is_object(cache) || !json_is_integer(version) ||
        json_integer_value(version) != TL_COMMAND_CACHE_VERSION) {
        tl_format(why, why_size, "it is not a version %d command cache", TL_COMMAND_CACHE_VERSION);
        goto out;
    }
    if (cached_host == NULL || strcmp(cached_host, host) != 0 || !json_is_integer(cached_port) ||
        json_integer_value(cached_port) != (json_int_t)port || cached_user == NULL ||
        strcmp(cached_user, user) != 0) {
        tl_format(why, why_size, "it is not the list of %s at this relay", user);
        goto out;
    }
    if (!json_is_integer(fetched) || json_integer_value(fetched) < 0) {
        tl_format(why, why_size, "it does not say when it was fetched");
        goto out;
    }
    char detail[512];
    rc = tl_command_list_from_json(json_object_get(cache, "help"), list, detail, sizeof detail);
    if (rc != 0) {
        tl_format(why, why_size, "the relay's list in it is not valid: %s", detail);
        goto out;
    }
    *fetched_ms = (int64_t)json_integer_value(fetched);
out:
    json_decref(cache);
    return rc;
}

/* Only a file of our own is read: another user's could say anything. */
static int check_owner(const struct stat *st, void *arg)
{
    return st->st_uid == geteuid() ? 0 : TL_EDENIED;
}

int tl_command_cache_load(const char *path, const char *host, unsigned port, const char *user,
                          tl_command_list_t **list, int64_t *fetched_ms, char *why, size_t why_size)
{
    char *data = NULL;
    size_t len = 0;
    *list = NULL;
    int rc = tl_fs_read_file(path, TL_COMMAND_CACHE_MAX_BYTES, TL_FS_READ_NOFOLLOW, check_owner,
                             NULL, &data, &len);
    if (rc == -ENOENT)
        return rc;
    if (rc == 0)
        rc = tl_command_cache_parse(data, len, host, port, user, list, fetched_ms, why, why_size);
    else if (rc == TL_EFULL)
        tl_format(why, why_size, "it is larger than %u KiB", TL_COMMAND_CACHE_MAX_BYTES / 1024);
    else if (rc == TL_EDENIED)
        tl_format(why, why_size, "it belongs to another user");
    else if (rc == -ELOOP)
        tl_format(why, why_size, "it is a symbolic link");
    else if (rc == TL_EINVAL)
        tl_format(why, why_size, "it is not a regular file");
    else
        tl_format(why, why_size, "%s", tl_strerror(rc));
    free(data);
    return rc;
}

int tl_command_cache_store(const char *path, const char *host, unsigned port, const char *user,
                           const tl_command_list_t *list, int64_t fetched_ms, char *why,
                           size_t why_size)
{
    size_t len = 0;
    char *text = NULL;
    json_t *cache = json_pack("{s:i, s:s, s:i, s:s, s:I, s:O}", "version", TL_COMMAND_CACHE_VERSION,
                              "relay", host, "port", (int)port, "user", user, "fetched_ms",
                              (json_int_t)fetched_ms, "help", tl_command_list_json(list));
    int rc = TL_ENOMEM;
    if (cache != NULL)
        text = tl_text_json_line(cache, JSON_INDENT(2) | JSON_PRESERVE_ORDER, &len);
    if (text == NULL) {
        tl_format(why, why_size, "%s", tl_strerror(rc));
        goto out;
    }
    if ((rc = tl_config_make_parent_dirs(path, why, why_size)) != 0)
        goto out;
    if ((rc = tl_fs_write_atomic(path, text, len, TL_FS_NOFOLLOW, NULL)) != 0)
        tl_format(why, why_size, "%s: %s", path, tl_strerror(rc));
out:
    free(text);
    json_decref(cache);
    return rc;
}
