/* The desk's configuration, read once at the relay's start (relay/desk/desk_config.h). */
#include "relay/desk/desk_config.h"

#include "proto/err.h"
#include "proto/text.h"
#include "relay/desk/desk_settings.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The whole file, at most TL_SLA_CONFIG_TEXT_MAX + 1 bytes (one more says it is too long). */
static int read_file(const char *path, char **text, size_t *length)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = TL_SLA_CONFIG_TEXT_MAX + 1, used = 0;
    char *buffer = malloc(cap + 1);
    int rc = buffer != NULL ? 0 : TL_ENOMEM;
    while (rc == 0 && used < cap) {
        ssize_t got = read(fd, buffer + used, cap - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        else if (got == 0)
            break;
        else
            used += (size_t)got;
    }
    close(fd);
    if (rc != 0) {
        free(buffer);
        return rc;
    }
    buffer[used] = '\0';
    *text = buffer;
    *length = used;
    return 0;
}

/* DATA/desk.json as a JSON object, or NULL when there is no such file; why as the file says it. */
static int read_document(const char *path, json_t **document, char *why, size_t why_size)
{
    char *text = NULL;
    size_t length = 0;
    *document = NULL;
    int rc = read_file(path, &text, &length);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0) {
        snprintf(why, why_size, "cannot read %s: %s", path, tl_strerror(rc));
        return rc;
    }
    rc = TL_EINVAL;
    json_error_t error;
    if (length > TL_SLA_CONFIG_TEXT_MAX) {
        snprintf(why, why_size, "%s: desk.json: larger than %d bytes", path,
                 TL_SLA_CONFIG_TEXT_MAX);
    } else if ((*document = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error)) == NULL) {
        /* Jansson's reason quotes the text near the error, control bytes too. */
        char reason[4 * JSON_ERROR_TEXT_LENGTH];
        tl_text_clip(reason, sizeof reason, error.text, 0, TL_TEXT_LINE);
        snprintf(why, why_size, "%s: desk.json:%d:%d: %s", path, error.line, error.column, reason);
    } else if (!json_is_object(*document)) {
        snprintf(why, why_size, "%s: desk.json: not a JSON object", path);
        json_decref(*document);
        *document = NULL;
    } else {
        rc = 0;
    }
    free(text);
    return rc;
}

/*
 * The member name ("sla", "retention") from the keys or from the file, never both; why names
 * both places. *from_keys says which one it came from.
 */
static int pick(const char *name, json_t *from_settings, const char *settings_at,
                const json_t *document, const char *path, const json_t **member, int *from_keys,
                char *why, size_t why_size)
{
    const json_t *in_file = document != NULL ? json_object_get(document, name) : NULL;
    *from_keys = from_settings != NULL;
    *member = from_settings != NULL ? from_settings : in_file;
    if (from_settings != NULL && in_file != NULL) {
        snprintf(why, why_size,
                 "the %s is set twice, by %s_ keys (first at %s) and by %s's \"%s\": keep one",
                 strcmp(name, "sla") == 0 ? "SLA" : "retention", name, settings_at, path, name);
        return TL_EINVAL;
    }
    return 0;
}

/* A parser's message on a member: from the keys, as the line that said it; else the file's. */
static void member_why(const tl_settings_t *settings, int from_keys, const char *path,
                       const char *message, char *why, size_t why_size)
{
    if (from_keys)
        tl_desk_settings_why(settings, message, why, why_size);
    else
        snprintf(why, why_size, "%s: %s", path, message);
}

/* Both members, each from one place; *sla NULL when sla is not wanted. */
static int load(const char *path, const tl_settings_t *settings, tl_zone_lookup_fn lookup,
                void *lookup_arg, tl_sla_config_t **sla, const char **source,
                tl_retention_t *retention, char *why, size_t why_size)
{
    json_t *document = NULL, *fallback = NULL;
    tl_desk_settings_t keys = {0};
    char message[1024] = "";
    const json_t *member;
    int from_keys = 0;
    if (sla != NULL)
        *sla = NULL;
    int rc = read_document(path, &document, why, why_size);
    if (rc == 0)
        rc = tl_desk_settings_build(settings, &keys, why, why_size);
    if (rc != 0)
        goto out;
    if (sla != NULL) {
        rc = pick("sla", keys.sla, keys.sla_at, document, path, &member, &from_keys, why, why_size);
        if (rc != 0)
            goto out;
        if (member == NULL && document != NULL) {
            snprintf(why, why_size, "%s: desk.json: no \"sla\" section", path);
            rc = TL_EINVAL;
            goto out;
        }
        if (member == NULL) {
            json_t *plain = json_loads(tl_desk_config_default, 0, NULL);
            member = fallback = plain != NULL ? json_incref(json_object_get(plain, "sla")) : NULL;
            json_decref(plain);
            if (member == NULL) {
                rc = TL_ENOMEM;
                snprintf(why, why_size, "out of memory");
                goto out;
            }
        }
        *source = from_keys ? "relay.conf" : document != NULL ? "desk.json" : "default";
        rc = tl_sla_config_parse(member, lookup, lookup_arg, sla, message, sizeof message);
        if (rc != 0) {
            member_why(settings, from_keys, path, message, why, why_size);
            goto out;
        }
    }
    rc = pick("retention", keys.retention, keys.retention_at, document, path, &member, &from_keys,
              why, why_size);
    if (rc == 0)
        rc = tl_retention_parse(member, retention, message, sizeof message);
    if (rc != 0 && message[0] != '\0')
        member_why(settings, from_keys, path, message, why, why_size);
    if (rc == 0 && sla == NULL)
        *source = from_keys                            ? "relay.conf"
                  : document != NULL && member != NULL ? "desk.json"
                                                       : "default";
out:
    if (rc != 0 && sla != NULL) {
        tl_sla_config_free(*sla);
        *sla = NULL;
    }
    json_decref(fallback);
    json_decref(document);
    tl_desk_settings_free(&keys);
    return rc;
}

int tl_desk_config_load(const char *path, const tl_settings_t *settings, tl_zone_lookup_fn lookup,
                        void *lookup_arg, tl_sla_config_t **sla, const char **source, char *why,
                        size_t why_size)
{
    /* A retention the prune would refuse stops the relay too, at its start. */
    tl_retention_t retention;
    return load(path, settings, lookup, lookup_arg, sla, source, &retention, why, why_size);
}

int tl_desk_config_retention(const char *path, const tl_settings_t *settings, tl_retention_t *out,
                             const char **source, char *why, size_t why_size)
{
    return load(path, settings, NULL, NULL, NULL, source, out, why, why_size);
}
