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

/* The "retention" member of the file's text; why without the file's name. */
static int retention_of(const char *text, size_t length, tl_retention_t *out, char *why,
                        size_t why_size)
{
    json_error_t error;
    if (length > TL_SLA_CONFIG_TEXT_MAX) {
        snprintf(why, why_size, "larger than %d bytes", TL_SLA_CONFIG_TEXT_MAX);
        return TL_EINVAL;
    }
    json_t *document = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error);
    if (document == NULL) {
        char reason[4 * JSON_ERROR_TEXT_LENGTH];
        tl_text_clip(reason, sizeof reason, error.text, 0, TL_TEXT_LINE);
        snprintf(why, why_size, "%d:%d: %s", error.line, error.column, reason);
        return TL_EINVAL;
    }
    int rc = TL_EINVAL;
    if (json_is_object(document))
        rc = tl_retention_parse(json_object_get(document, "retention"), out, why, why_size);
    else
        snprintf(why, why_size, "not a JSON object");
    json_decref(document);
    return rc;
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
    if (rc == 0) {
        /* A retention the prune would refuse stops the relay too, at its start. */
        tl_retention_t retention;
        rc = retention_of(text, length, &retention, why, why_size);
        if (rc != 0) {
            tl_sla_config_free(*sla);
            *sla = NULL;
        }
    }
    free(text);
    if (rc == 0)
        *from_file = 1;
    return rc;
}

int tl_desk_config_retention(const char *path, tl_retention_t *out, char *why, size_t why_size)
{
    char *text = NULL, reason[512] = "";
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
    rc = retention_of(text, length, out, reason, sizeof reason);
    free(text);
    if (rc != 0)
        snprintf(why, why_size, "%s: %s", path, reason);
    return rc;
}
