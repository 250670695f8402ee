#include "console/command_list.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/text.h"

#include <stdlib.h>
#include <string.h>

#define WORD_MAX 32
#define SHORT_TEXT_MAX 64
/* What one command's shown texts may grow to once escaped (six bytes for two at worst). */
#define SHOWN_MAX (1024u * 1024u)

struct tl_command_list {
    json_t *doc;
    char *user, *role;
    size_t count;
    tl_command_info_t *commands;
};

/* ---- checking ------------------------------------------------------------------------------ */

static int is_lower_word(const char *text, size_t len)
{
    if (len == 0 || len > WORD_MAX || text[0] < 'a' || text[0] > 'z')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= '0' && text[i] <= '9') ||
              text[i] == '-'))
            return 0;
    return 1;
}

/* One word, or two separated by one space: what argv can match. */
static int name_valid(const char *name)
{
    const char *space = strchr(name, ' ');
    if (space == NULL)
        return is_lower_word(name, strlen(name));
    return is_lower_word(name, (size_t)(space - name)) &&
           is_lower_word(space + 1, strlen(space + 1));
}

/* "--" or "--word". */
static int option_name_valid(const char *name)
{
    return strncmp(name, "--", 2) == 0 &&
           (name[2] == '\0' || is_lower_word(name + 2, strlen(name + 2)));
}

/*
 * The string member key of object: 0 with *out (NULL when absent and optional), or TL_EINVAL
 * with why. Strings hold no NUL (JSON strings could): what is shown must be what was sent.
 */
static int string_member(const json_t *object, const char *key, int required, size_t max,
                         const char *where, const char **out, char *why, size_t why_size)
{
    const json_t *value = json_object_get(object, key);
    *out = NULL;
    if (value == NULL || (json_is_null(value) && !required)) {
        if (!required)
            return 0;
        tl_format(why, why_size, "%s has no \"%s\"", where, key);
        return TL_EINVAL;
    }
    if (!json_is_string(value)) {
        tl_format(why, why_size, "%s: \"%s\" is not a string", where, key);
        return TL_EINVAL;
    }
    size_t len = json_string_length(value);
    if (len > max || strlen(json_string_value(value)) != len) {
        tl_format(why, why_size, "%s: \"%s\" is longer than %zu bytes or holds a NUL", where, key,
                  max);
        return TL_EINVAL;
    }
    *out = json_string_value(value);
    return 0;
}

static int check_options(const json_t *options, const char *where, char *why, size_t why_size)
{
    if (options == NULL || json_is_null(options))
        return 0;
    if (!json_is_array(options) || json_array_size(options) > TL_COMMAND_LIST_MAX_OPTIONS) {
        tl_format(why, why_size, "%s: \"options\" is not an array of at most %d", where,
                  TL_COMMAND_LIST_MAX_OPTIONS);
        return TL_EINVAL;
    }
    size_t i;
    const json_t *option;
    json_array_foreach(options, i, option) {
        const char *name, *value, *help;
        char at[160];
        tl_format(at, sizeof at, "%s, option %zu", where, i + 1);
        int rc = json_is_object(option) ? 0 : TL_EINVAL;
        if (rc != 0)
            tl_format(why, why_size, "%s is not an object", at);
        if (rc == 0)
            rc = string_member(option, "name", 1, SHORT_TEXT_MAX, at, &name, why, why_size);
        if (rc == 0 && !option_name_valid(name)) {
            tl_format(why, why_size, "%s: \"name\" is not --WORD", at);
            rc = TL_EINVAL;
        }
        if (rc == 0)
            rc = string_member(option, "value", 0, SHORT_TEXT_MAX, at, &value, why, why_size);
        if (rc == 0)
            rc = string_member(option, "help", 1, TL_COMMAND_LIST_MAX_TEXT, at, &help, why,
                               why_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Checks one command of the document; where names it in why. */
static int check_command(const json_t *command, const char *where, char *why, size_t why_size)
{
    const char *text;
    if (!json_is_object(command)) {
        tl_format(why, why_size, "%s is not an object", where);
        return TL_EINVAL;
    }
    int rc = string_member(command, "name", 1, 2 * WORD_MAX + 1, where, &text, why, why_size);
    if (rc == 0 && !name_valid(text)) {
        tl_format(why, why_size, "%s: \"name\" is not one or two lowercase words", where);
        rc = TL_EINVAL;
    }
    if (rc == 0)
        rc = string_member(command, "usage", 1, TL_COMMAND_LIST_MAX_TEXT, where, &text, why,
                           why_size);
    if (rc == 0)
        rc = string_member(command, "summary", 1, TL_COMMAND_LIST_MAX_TEXT, where, &text, why,
                           why_size);
    if (rc == 0)
        rc = string_member(command, "example", 0, TL_COMMAND_LIST_MAX_EXAMPLE, where, &text, why,
                           why_size);
    if (rc == 0)
        rc = string_member(command, "capability", 0, SHORT_TEXT_MAX, where, &text, why, why_size);
    if (rc == 0)
        rc = check_options(json_object_get(command, "options"), where, why, why_size);
    return rc;
}

static int check_document(const json_t *help, char *why, size_t why_size)
{
    const char *text;
    if (!json_is_object(help)) {
        tl_format(why, why_size, "it is not a JSON object");
        return TL_EINVAL;
    }
    int rc = string_member(help, "name", 0, SHORT_TEXT_MAX, "the list", &text, why, why_size);
    if (rc == 0)
        rc = string_member(help, "role", 0, SHORT_TEXT_MAX, "the list", &text, why, why_size);
    if (rc != 0)
        return rc;
    const json_t *commands = json_object_get(help, "commands");
    if (!json_is_array(commands) || json_array_size(commands) == 0 ||
        json_array_size(commands) > TL_COMMAND_LIST_MAX_COMMANDS) {
        tl_format(why, why_size, "\"commands\" is not an array of 1 to %d commands",
                  TL_COMMAND_LIST_MAX_COMMANDS);
        return TL_EINVAL;
    }
    size_t i;
    const json_t *command;
    json_array_foreach(commands, i, command) {
        char where[64];
        tl_format(where, sizeof where, "command %zu", i + 1);
        if ((rc = check_command(command, where, why, why_size)) != 0)
            return rc;
        const char *name = json_string_value(json_object_get(command, "name"));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_object_get(json_array_get(commands, j), "name")),
                       name) == 0) {
                tl_format(why, why_size, "%s: \"%s\" is listed twice", where, name);
                return TL_EINVAL;
            }
        }
    }
    return 0;
}

/* ---- what is shown ------------------------------------------------------------------------- */

static int put_escaped(tl_buf_t *out, const char *text, size_t len)
{
    return tl_text_escape(out, text, len, TL_TEXT_LINE);
}

/* The option lines, each part escaped on its own so no tab or newline of theirs can count. */
static int options_text(const json_t *options, tl_buf_t *out)
{
    size_t i;
    const json_t *option;
    int rc = 0;
    json_array_foreach(options, i, option) {
        const char *name = json_string_value(json_object_get(option, "name"));
        const char *value = json_string_value(json_object_get(option, "value"));
        const char *help = json_string_value(json_object_get(option, "help"));
        rc = tl_buf_put(out, name, strlen(name));
        if (rc == 0 && value != NULL && (rc = tl_buf_put_u8(out, ' ')) == 0)
            rc = put_escaped(out, value, strlen(value));
        if (rc == 0 && (rc = tl_buf_put_u8(out, '\t')) == 0)
            rc = put_escaped(out, help, strlen(help));
        if (rc == 0)
            rc = tl_buf_put_u8(out, '\n');
        if (rc != 0)
            break;
    }
    return rc;
}

/* Each line of the example escaped, each ended by a newline. */
static int example_text(const char *example, tl_buf_t *out)
{
    int rc = 0;
    for (const char *line = example; rc == 0 && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if ((rc = put_escaped(out, line, len)) == 0)
            rc = tl_buf_put_u8(out, '\n');
        line += len + (end != NULL);
    }
    return rc;
}

/*
 * For a command ending in another command line: the positional words its
 * usage names before " -- ", outside brackets ("run T-N [--reason TEXT] --
 * COMMAND": 1). -1 when the usage has no "--".
 */
static int positionals_before_rest(const char *name, const char *usage)
{
    size_t name_len = strlen(name);
    if (strncmp(usage, name, name_len) != 0 || (usage[name_len] != ' ' && usage[name_len] != '\0'))
        return -1;
    int count = 0, depth = 0;
    for (const char *p = usage + name_len; *p != '\0';) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ' ')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0)
            break;
        if (depth == 0 && len == 2 && strncmp(start, "--", 2) == 0)
            return count;
        if (depth == 0 && start[0] != '[' && start[0] != '-')
            count++;
        for (const char *c = start; c < p; c++)
            depth += *c == '[' ? 1 : *c == ']' ? -1 : 0;
        if (depth < 0)
            return -1;
    }
    return -1;
}

static char *take_text(tl_buf_t *buf, int *rc)
{
    char *text = NULL;
    size_t len;
    if (*rc == 0)
        *rc = tl_buf_take_string(buf, &text, &len);
    tl_buf_reset(buf);
    return text;
}

static void info_free(tl_command_info_t *info)
{
    free((char *)info->name);
    free((char *)info->usage);
    free((char *)info->summary);
    free((char *)info->options);
    free((char *)info->example);
    free((char *)info->capability);
    if (info->value_options != NULL)
        for (size_t i = 0; info->value_options[i] != NULL; i++)
            free((char *)info->value_options[i]);
    free((void *)info->value_options);
}

static int info_make(const json_t *command, tl_buf_t *buf, tl_command_info_t *info)
{
    const char *name = json_string_value(json_object_get(command, "name"));
    const char *usage = json_string_value(json_object_get(command, "usage"));
    const char *example = json_string_value(json_object_get(command, "example"));
    const char *capability = json_string_value(json_object_get(command, "capability"));
    const json_t *options = json_object_get(command, "options");
    int rc = 0;
    info->positionals_before_rest = -1;
    info->name = strdup(name);
    info->usage = tl_text_escape_dup(usage, TL_TEXT_LINE);
    info->summary =
        tl_text_escape_dup(json_string_value(json_object_get(command, "summary")), TL_TEXT_LINE);
    info->capability = tl_text_escape_dup(capability, TL_TEXT_LINE);
    if (info->name == NULL || info->usage == NULL || info->summary == NULL ||
        info->capability == NULL)
        return TL_ENOMEM;
    rc = example_text(example != NULL ? example : "", buf);
    info->example = take_text(buf, &rc);
    if (rc == 0)
        rc = options_text(options, buf);
    info->options = take_text(buf, &rc);
    size_t count = json_array_size(options), values = 0;
    const char **value_options = calloc(count + 1, sizeof *value_options);
    info->value_options = value_options;
    if (rc != 0 || value_options == NULL)
        return rc != 0 ? rc : TL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const json_t *option = json_array_get(options, i);
        const char *option_name = json_string_value(json_object_get(option, "name"));
        if (strcmp(option_name, "--") == 0)
            info->positionals_before_rest = positionals_before_rest(name, usage);
        else if (json_string_value(json_object_get(option, "value")) != NULL &&
                 (value_options[values++] = strdup(option_name)) == NULL)
            return TL_ENOMEM;
    }
    return 0;
}

/* ---- the list -------------------------------------------------------------------------------- */

int tl_command_list_from_json(const json_t *help, tl_command_list_t **list, char *why,
                              size_t why_size)
{
    *list = NULL;
    int rc = check_document(help, why, why_size);
    if (rc != 0)
        return rc;
    tl_command_list_t *made = calloc(1, sizeof *made);
    tl_buf_t *buf = tl_buf_new(SHOWN_MAX);
    const json_t *commands = json_object_get(help, "commands");
    size_t count = json_array_size(commands);
    rc = TL_ENOMEM;
    if (made == NULL || buf == NULL || (made->doc = json_deep_copy(help)) == NULL ||
        (made->commands = calloc(count, sizeof *made->commands)) == NULL)
        goto out;
    made->user = tl_text_escape_dup(json_string_value(json_object_get(help, "name")), TL_TEXT_LINE);
    made->role = tl_text_escape_dup(json_string_value(json_object_get(help, "role")), TL_TEXT_LINE);
    if (made->user == NULL || made->role == NULL)
        goto out;
    rc = 0;
    for (; rc == 0 && made->count < count; made->count++)
        rc = info_make(json_array_get(commands, made->count), buf, &made->commands[made->count]);
out:
    tl_buf_free(buf);
    if (rc != 0) {
        tl_format(why, why_size, "%s", tl_strerror(rc));
        tl_command_list_free(made);
        return rc;
    }
    *list = made;
    return 0;
}

int tl_command_list_parse(const void *data, size_t len, tl_command_list_t **list, char *why,
                          size_t why_size)
{
    *list = NULL;
    if (len > TL_COMMAND_LIST_MAX_BYTES) {
        tl_format(why, why_size, "it is larger than %u KiB", TL_COMMAND_LIST_MAX_BYTES / 1024);
        return TL_EFULL;
    }
    json_error_t error;
    json_t *help = json_loadb(data, len, JSON_REJECT_DUPLICATES, &error);
    if (help == NULL) {
        tl_format(why, why_size, "it is not JSON (line %d: %s)", error.line, error.text);
        return TL_EINVAL;
    }
    int rc = tl_command_list_from_json(help, list, why, why_size);
    json_decref(help);
    return rc;
}

void tl_command_list_free(tl_command_list_t *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; list->commands != NULL && i < list->count; i++)
        info_free(&list->commands[i]);
    free(list->commands);
    free(list->user);
    free(list->role);
    json_decref(list->doc);
    free(list);
}

const json_t *tl_command_list_json(const tl_command_list_t *list)
{
    return list->doc;
}

const char *tl_command_list_user(const tl_command_list_t *list)
{
    return list->user;
}

const char *tl_command_list_role(const tl_command_list_t *list)
{
    return list->role;
}

size_t tl_command_list_count(const tl_command_list_t *list)
{
    return list != NULL ? list->count : 0;
}

const tl_command_info_t *tl_command_list_at(const tl_command_list_t *list, size_t i)
{
    return list != NULL && i < list->count ? &list->commands[i] : NULL;
}

const tl_command_info_t *tl_command_list_get(const tl_command_list_t *list, const char *name)
{
    for (size_t i = 0; i < tl_command_list_count(list); i++)
        if (strcmp(list->commands[i].name, name) == 0)
            return &list->commands[i];
    return NULL;
}

const tl_command_info_t *tl_command_list_find(const tl_command_list_t *list, int argc, char **argv,
                                              int *words)
{
    for (size_t i = 0; argc >= 2 && i < tl_command_list_count(list); i++) {
        const char *name = list->commands[i].name;
        size_t len = strlen(argv[0]);
        if (strncmp(name, argv[0], len) == 0 && name[len] == ' ' &&
            strcmp(name + len + 1, argv[1]) == 0) {
            *words = 2;
            return &list->commands[i];
        }
    }
    const tl_command_info_t *info = argc >= 1 ? tl_command_list_get(list, argv[0]) : NULL;
    if (info != NULL)
        *words = 1;
    return info;
}

int tl_command_list_is_group(const tl_command_list_t *list, const char *word)
{
    size_t len = strlen(word);
    for (size_t i = 0; i < tl_command_list_count(list); i++)
        if (strncmp(list->commands[i].name, word, len) == 0 && list->commands[i].name[len] == ' ')
            return 1;
    return 0;
}
