#include "relay/cmd/show.h"

#include "proto/err.h"
#include "proto/text.h"

#include <stdlib.h>

const char *tl__cmd_member(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value ? value : "-";
}

const char *tl__cmd_shown(char *buf, size_t size, json_t *object, const char *key)
{
    tl_text_clip(buf, size, tl__cmd_member(object, key), 0, TL_TEXT_LINE);
    return buf;
}

const char *tl__cmd_cell(char *buf, size_t size, json_t *object, const char *key, size_t width)
{
    tl_text_cell(buf, size, tl__cmd_member(object, key), width);
    return buf;
}

const char *tl__cmd_padded(char *buf, size_t size, json_t *object, const char *key, size_t width)
{
    tl_text_pad(buf, size, tl__cmd_member(object, key), width);
    return buf;
}

char *tl__cmd_details_line(json_t *event)
{
    char *json = json_dumps(json_object_get(event, "details"), JSON_COMPACT);
    char *line = tl_text_escape_dup(json != NULL ? json : "", TL_TEXT_LINE);
    free(json);
    return line;
}

int tl__cmd_print_json(FILE *out, json_t *value)
{
    char *text = tl_text_json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return TL_ENOMEM;
    fprintf(out, "%s\n", text);
    free(text);
    return 0;
}
