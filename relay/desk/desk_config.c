/* DATA/desk.json, read once at the relay's start (relay/desk/desk_config.h). */
#include "relay/desk/desk_config.h"

#include "proto/err.h"
#include "proto/text.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char tl_desk_config_default[] =
    "{\n"
    "  \"sla\": {\n"
    "    \"calendar\": {\"24x7\": true},\n"
    "    \"targets\": {\n"
    "      \"S1\": {\"first_response\": \"30m\", \"resolution\": \"4h\"},\n"
    "      \"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\"},\n"
    "      \"S3\": {\"first_response\": \"4h\", \"resolution\": \"24h\"},\n"
    "      \"S4\": {\"first_response\": \"6h\", \"resolution\": \"72h\"}\n"
    "    }\n"
    "  }\n"
    "}\n";

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

int tl_desk_config_load(const char *path, tl_zone_lookup_fn lookup, void *lookup_arg,
                        tl_sla_config_t **sla, int *from_file, char *why, size_t why_size)
{
    char *text = NULL;
    size_t length = 0;
    *sla = NULL;
    *from_file = 0;
    int rc = read_file(path, &text, &length);
    if (rc == -ENOENT)
        return tl_sla_config_parse_text(tl_desk_config_default, strlen(tl_desk_config_default),
                                        lookup, lookup_arg, sla, why, why_size);
    if (rc != 0) {
        snprintf(why, why_size, "cannot read %s: %s", path, tl_strerror(rc));
        return rc;
    }
    /* The parser says "larger than N bytes" for the byte more than it takes. */
    rc = tl_sla_config_parse_text(text, length, lookup, lookup_arg, sla, why, why_size);
    free(text);
    if (rc == 0) {
        /* A retention the prune would refuse stops the relay too, at its start. */
        tl_retention_t retention;
        rc = tl_desk_config_retention(path, &retention, why, why_size);
        if (rc != 0) {
            tl_sla_config_free(*sla);
            *sla = NULL;
            return rc;
        }
        *from_file = 1;
    }
    return rc;
}

int tl_desk_config_retention(const char *path, tl_retention_t *out, char *why, size_t why_size)
{
    char *text = NULL;
    size_t length = 0;
    int rc = read_file(path, &text, &length);
    if (rc == -ENOENT) {
        tl_retention_default(out);
        return 0;
    }
    if (rc != 0) {
        snprintf(why, why_size, "cannot read %s: %s", path, tl_strerror(rc));
        return rc;
    }
    json_error_t error;
    json_t *document = length <= TL_SLA_CONFIG_TEXT_MAX
                           ? json_loadb(text, length, JSON_REJECT_DUPLICATES, &error)
                           : NULL;
    free(text);
    char reason[256];
    if (document == NULL) {
        if (length > TL_SLA_CONFIG_TEXT_MAX)
            snprintf(reason, sizeof reason, "larger than %d bytes", TL_SLA_CONFIG_TEXT_MAX);
        else
            tl_text_clip(reason, sizeof reason, error.text, 0, TL_TEXT_LINE);
        snprintf(why, why_size, "%s: %s", path, reason);
        return TL_EINVAL;
    }
    rc =
        json_is_object(document)
            ? tl_retention_parse(json_object_get(document, "retention"), out, reason, sizeof reason)
            : (snprintf(reason, sizeof reason, "not a JSON object"), TL_EINVAL);
    json_decref(document);
    if (rc != 0)
        snprintf(why, why_size, "%s: %s", path, reason);
    return rc;
}
