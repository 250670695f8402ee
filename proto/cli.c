#include "proto/cli.h"

#include "proto/err.h"
#include "tl_version.h"

#include <stdio.h>
#include <string.h>

int tl_cli_common(int argc, char **argv, const char *program, const char *help_text)
{
    if (argc < 2) {
        fputs(help_text, stderr);
        return TL_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(help_text, stdout);
        return TL_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
        printf("%s %s\n", program, TL_VERSION_STRING);
        return TL_EXIT_OK;
    }
    return -1;
}

int tl_cli_unknown(const char *program, const char *what)
{
    fprintf(stderr, "%s: unknown command '%s'\nTry '%s --help'.\n", program, what, program);
    return TL_EXIT_USAGE;
}

static const tl_cli_option_t *find_option(const tl_cli_option_t *options, const char *name)
{
    for (; options != NULL && options->name != NULL; options++)
        if (strcmp(options->name, name) == 0)
            return options;
    return NULL;
}

static int usage_error(const char *program, const char *command, const char *usage,
                       const char *what, const char *word)
{
    fprintf(stderr, "%s %s: %s '%s'\nusage: %s %s\n", program, command, what, word, program, usage);
    return TL_EXIT_USAGE;
}

int tl_cli_parse(const char *program, const char *command, const char *usage, int argc, char **argv,
                 int first, const tl_cli_option_t *options, const char **positional,
                 int max_positional, int *count)
{
    int only_positional = 0;
    *count = 0;
    for (int i = first; i < argc; i++) {
        const char *word = argv[i];
        if (!only_positional && strcmp(word, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (!only_positional && word[0] == '-' && word[1] == '-') {
            const tl_cli_option_t *option = find_option(options, word + 2);
            if (option == NULL)
                return usage_error(program, command, usage, "unknown option", word);
            if (option->value != NULL) {
                if (i + 1 >= argc)
                    return usage_error(program, command, usage, "missing value for", word);
                *option->value = argv[++i];
            } else {
                *option->flag = 1;
            }
            continue;
        }
        if (*count >= max_positional)
            return usage_error(program, command, usage, "unexpected argument", word);
        positional[(*count)++] = word;
    }
    return 0;
}

static int is_help_word(const char *word)
{
    return strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0;
}

static int takes_value(const char *const *value_options, const char *word)
{
    for (; value_options != NULL && *value_options != NULL; value_options++)
        if (strcmp(*value_options, word) == 0)
            return 1;
    return 0;
}

int tl_cli_wants_help(int argc, char **argv, int first, int positional_max,
                      const char *const *value_options)
{
    int positional = 0;
    for (int i = first; i < argc; i++) {
        const char *word = argv[i];
        if (strcmp(word, "--") == 0)
            return 0;
        if (is_help_word(word))
            return 1;
        if (takes_value(value_options, word)) {
            i++;
            continue;
        }
        if (word[0] == '-' && word[1] == '-')
            continue;
        if (positional_max >= 0 && ++positional > positional_max)
            return 0; /* another program's command line starts here */
    }
    return 0;
}

/* The width of the option column: the longest "--name VALUE", within reason. */
static int option_width(const char *options)
{
    int width = (int)strlen("-h, --help");
    for (const char *line = options; line != NULL && *line != '\0';) {
        const char *tab = strchr(line, '\t'), *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        if (tab != NULL && tab < end && tab - line > width && tab - line <= 30)
            width = (int)(tab - line);
        line = *end != '\0' ? end + 1 : end;
    }
    return width;
}

void tl_cli_help_write(FILE *out, const char *program, const tl_cli_help_t *help)
{
    fprintf(out, "usage: %s%s%s\n\n%s\n", program != NULL ? program : "",
            program != NULL ? " " : "", help->usage, help->summary);
    int width = option_width(help->options);
    fprintf(out, "\nOptions:\n");
    for (const char *line = help->options; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        const char *tab = memchr(line, '\t', (size_t)(end - line));
        if (tab == NULL)
            fprintf(out, "  %.*s\n", (int)(end - line), line);
        else
            fprintf(out, "  %-*.*s  %.*s\n", width, (int)(tab - line), line, (int)(end - tab - 1),
                    tab + 1);
        line = *end != '\0' ? end + 1 : end;
    }
    fprintf(out, "  %-*s  %s\n", width, "-h, --help", "show this help and do nothing else");
    if (help->example != NULL && help->example[0] != '\0') {
        fprintf(out, "\nExample:\n");
        for (const char *line = help->example; *line != '\0';) {
            const char *end = strchr(line, '\n');
            if (end == NULL)
                end = line + strlen(line);
            fprintf(out, "  %.*s\n", (int)(end - line), line);
            line = *end != '\0' ? end + 1 : end;
        }
    }
}

int tl_cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || *text == '\0' || strlen(text) > 19)
        return TL_EINVAL;
    uint64_t value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return TL_EINVAL;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    if (value < min || value > max)
        return TL_EINVAL;
    *out = value;
    return 0;
}

int tl_cli_parse_duration(const char *text, uint64_t *ms)
{
    if (text == NULL)
        return TL_EINVAL;
    size_t len = strlen(text);
    if (len == 0 || len > 12)
        return TL_EINVAL;
    char digits[16];
    uint64_t unit = 1000;
    memcpy(digits, text, len + 1);
    switch (text[len - 1]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    default:
        len++;
        break;
    }
    digits[len - 1] = '\0';
    uint64_t value;
    if (tl_cli_parse_uint(digits, 1, 1000000000, &value) != 0)
        return TL_EINVAL;
    *ms = value * unit;
    return 0;
}
