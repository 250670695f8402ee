/* Printing what others wrote, escaped and in columns by display width (relay/cmd/show.h). */
#include "relay/cmd/show.h"

#include "proto/clock.h"
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

void tl__cmd_print_tickets(FILE *out, json_t *tickets)
{
    fprintf(out, "%-7s %-4s %-14s %-12s %-6s %-16s %-20s %s\n", "ID", "TIER", "STATUS", "ASSIGNEE",
            "DEVICE", "HOSTNAME", "UPDATED", "TITLE");
    size_t i;
    json_t *t;
    json_array_foreach(tickets, i, t)
    {
        char updated[32], assignee[52], hostname[52], title[1024];
        tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
        fprintf(
            out, "%-7s %-4" JSON_INTEGER_FORMAT " %-14s %s %-6s %s %-20s %s\n",
            tl__cmd_member(t, "id"), json_integer_value(json_object_get(t, "tier")),
            tl__cmd_member(t, "status"), tl__cmd_cell(assignee, sizeof assignee, t, "assignee", 12),
            tl__cmd_member(t, "device"), tl__cmd_cell(hostname, sizeof hostname, t, "hostname", 16),
            updated, tl__cmd_shown(title, sizeof title, t, "title"));
    }
    if (json_array_size(tickets) == 0)
        fprintf(out, "(no tickets)\n");
}
