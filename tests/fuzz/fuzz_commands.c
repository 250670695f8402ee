/*
 * Fuzz target for the relay's command list as the console reads it
 * (console/command_list.c, console/command_cache.c, docs/console.md): the
 * relay's `help --json` answer, and the cache file that keeps it.
 *
 * Input: the first byte picks the reader: even, the rest is a `help --json`
 * document (tl_command_list_parse); odd, the rest is a cache file
 * (tl_command_cache_parse) of relay "r", port 2222, user "alice".
 *
 * A refused input gives TL_EINVAL or TL_EFULL, no list and a reason. An
 * accepted one holds 1..128 commands with one- or two-word lowercase names
 * that find themselves; every text it shows is free of control characters
 * (the options and examples keep only their own tabs and newlines); and its
 * document, dumped and read again, gives the same commands.
 */
#include "console/command_cache.h"
#include "console/command_list.h"
#include "proto/err.h"
#include "proto/text.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_line(const char *text, size_t len)
{
    if (!tl_text_printable(text, len, TL_TEXT_LINE))
        abort();
}

/* Lines of "HEAD<TAB>HELP" (tab != 0) or of text, each ended by a newline. */
static void check_lines(const char *text, int tab)
{
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            abort();
        const char *sep = tab ? memchr(line, '\t', (size_t)(end - line)) : NULL;
        if (tab && sep == NULL)
            abort();
        if (sep != NULL) {
            check_line(line, (size_t)(sep - line));
            check_line(sep + 1, (size_t)(end - sep - 1));
        } else {
            check_line(line, (size_t)(end - line));
        }
        line = end + 1;
    }
}

static void check_list(const tl_command_list_t *list)
{
    size_t count = tl_command_list_count(list);
    if (count == 0 || count > TL_COMMAND_LIST_MAX_COMMANDS)
        abort();
    check_line(tl_command_list_user(list), strlen(tl_command_list_user(list)));
    check_line(tl_command_list_role(list), strlen(tl_command_list_role(list)));
    for (size_t i = 0; i < count; i++) {
        const tl_command_info_t *info = tl_command_list_at(list, i);
        char name[80], *argv[2];
        if (strlen(info->name) >= sizeof name)
            abort();
        strcpy(name, info->name);
        char *space = strchr(name, ' ');
        argv[0] = name;
        argv[1] = space != NULL ? space + 1 : NULL;
        if (space != NULL)
            *space = '\0';
        int words = 0;
        if (tl_command_list_find(list, space != NULL ? 2 : 1, argv, &words) != info ||
            words != (space != NULL ? 2 : 1))
            abort();
        check_line(info->usage, strlen(info->usage));
        check_line(info->summary, strlen(info->summary));
        check_line(info->capability, strlen(info->capability));
        check_lines(info->options, 1);
        check_lines(info->example, 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    tl_command_list_t *list = NULL, *again = NULL;
    int64_t fetched = -1;
    char why[1024] = "";
    int rc = data[0] % 2 == 0 ? tl_command_list_parse(data + 1, size - 1, &list, why, sizeof why)
                              : tl_command_cache_parse(data + 1, size - 1, "r", 2222, "alice",
                                                       &list, &fetched, why, sizeof why);
    if (rc != 0) {
        if ((rc != TL_EINVAL && rc != TL_EFULL) || list != NULL || why[0] == '\0')
            abort();
        return 0;
    }
    if (data[0] % 2 == 1 && fetched < 0)
        abort();
    check_list(list);
    /* Read again as a document, whatever its size: a cache may hold a little more than the
     * relay's answer may be. */
    char *text = json_dumps(tl_command_list_json(list), JSON_COMPACT);
    json_t *doc = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (doc == NULL || tl_command_list_from_json(doc, &again, why, sizeof why) != 0 ||
        tl_command_list_count(again) != tl_command_list_count(list))
        abort();
    json_decref(doc);
    for (size_t i = 0; i < tl_command_list_count(list); i++)
        if (strcmp(tl_command_list_at(again, i)->usage, tl_command_list_at(list, i)->usage) != 0 ||
            strcmp(tl_command_list_at(again, i)->options, tl_command_list_at(list, i)->options) !=
                0)
            abort();
    free(text);
    tl_command_list_free(again);
    tl_command_list_free(list);
    return 0;
}
