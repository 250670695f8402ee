/* Shell completion for the console (console/complete.h). */
#include "console/complete.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

/* The console's global options, which take a value each (console/main.c). */
static const char *const global_options[] = {"--relay", "--user", "--identity", "--host-key", NULL};

struct candidates {
    char *word[TL_COMPLETE_MAX];
    size_t count;
    const char *prefix;
};

/* Adds the first len bytes of text if they start with the prefix and are not there yet. */
static int add(struct candidates *c, const char *text, size_t len)
{
    size_t plen = strlen(c->prefix);
    if (len < plen || strncmp(text, c->prefix, plen) != 0 || c->count >= TL_COMPLETE_MAX)
        return 0;
    for (size_t i = 0; i < c->count; i++)
        if (strlen(c->word[i]) == len && strncmp(c->word[i], text, len) == 0)
            return 0;
    char *copy = strndup(text, len);
    if (copy == NULL)
        return TL_ENOMEM;
    c->word[c->count++] = copy;
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every "--name" of an options text ("-o, --output FILE<TAB>help\n" lines), and --help. */
static int add_options(struct candidates *c, const char *options)
{
    int rc = add(c, "--help", 6);
    for (const char *line = options; rc == 0 && line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        const char *tab = memchr(line, '\t', len);
        size_t head = tab != NULL ? (size_t)(tab - line) : len;
        for (size_t i = 0; rc == 0 && i + 2 < head; i++) {
            if (line[i] != '-' || line[i + 1] != '-' || (i > 0 && line[i - 1] != ' '))
                continue;
            size_t n = 2;
            while (i + n < head && line[i + n] != ' ' && line[i + n] != ',')
                n++;
            rc = add(c, line + i, n);
            i += n;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return rc;
}

/* Whether word is a global option that takes the next word as its value. */
static int global_with_value(const char *word)
{
    for (size_t i = 0; global_options[i] != NULL; i++)
        if (strcmp(word, global_options[i]) == 0)
            return 1;
    return 0;
}

/* Each name of a command: the first word, or the second after that first. */
static int add_names(struct candidates *c, const char *name, const char *group)
{
    const char *space = strchr(name, ' ');
    if (group == NULL)
        return add(c, name, space != NULL ? (size_t)(space - name) : strlen(name));
    size_t glen = strlen(group);
    if (space == NULL || (size_t)(space - name) != glen || strncmp(name, group, glen) != 0)
        return 0;
    return add(c, space + 1, strlen(space + 1));
}

/* The options text of the command named by words (one or two of them), or NULL. */
static const char *options_of(const tl_command_list_t *list, const tl_complete_own_t *own,
                              size_t own_count, const char *first, const char *second, int *found)
{
    char two[256];
    *found = 0;
    int have_two =
        second != NULL && snprintf(two, sizeof two, "%s %s", first, second) < (int)sizeof two;
    for (int pass = have_two ? 0 : 1; pass < 2; pass++) {
        const char *name = pass == 0 ? two : first;
        for (size_t i = 0; i < own_count; i++) {
            if (strcmp(own[i].name, name) == 0) {
                *found = 1;
                return own[i].options;
            }
        }
        const tl_command_info_t *info = list != NULL ? tl_command_list_get(list, name) : NULL;
        if (info != NULL) {
            *found = 1;
            return info->options;
        }
    }
    return NULL;
}

int tl_complete_write(FILE *out, const tl_command_list_t *list, const tl_complete_own_t *own,
                      size_t own_count, int cword, int count, char **words)
{
    if (cword < 1 || cword > count || (cword == count && count > 0 && words == NULL))
        return TL_EINVAL;
    struct candidates c = {.count = 0, .prefix = cword < count ? words[cword] : ""};
    int rc = 0, first = 1;
    /* The global options before the command, with their values. */
    while (first < cword && words[first][0] == '-') {
        if (global_with_value(words[first]))
            first++;
        first++;
    }
    if (first > cword) {
        /* The word is a global option's value: a host, a name, a file. */
    } else if (first == cword) {
        if (c.prefix[0] == '-') {
            for (size_t i = 0; rc == 0 && global_options[i] != NULL; i++)
                rc = add(&c, global_options[i], strlen(global_options[i]));
            if (rc == 0)
                rc = add(&c, "--help", 6);
            if (rc == 0)
                rc = add(&c, "--version", 9);
        } else {
            for (size_t i = 0; rc == 0 && i < own_count; i++)
                rc = add_names(&c, own[i].name, NULL);
            for (size_t i = 0; rc == 0 && i < tl_command_list_count(list); i++)
                rc = add_names(&c, tl_command_list_at(list, i)->name, NULL);
        }
    } else {
        const char *name = words[first];
        if (first + 1 == cword && c.prefix[0] != '-') {
            for (size_t i = 0; rc == 0 && i < own_count; i++)
                rc = add_names(&c, own[i].name, name);
            for (size_t i = 0; rc == 0 && i < tl_command_list_count(list); i++)
                rc = add_names(&c, tl_command_list_at(list, i)->name, name);
        } else if (c.prefix[0] == '-') {
            int found = 0;
            const char *options = options_of(list, own, own_count, name,
                                             first + 1 < cword ? words[first + 1] : NULL, &found);
            if (found)
                rc = add_options(&c, options);
        }
    }
    if (c.count > 1)
        qsort(c.word, c.count, sizeof c.word[0], by_text);
    for (size_t i = 0; i < c.count; i++) {
        if (rc == 0 && (fputs(c.word[i], out) < 0 || fputc('\n', out) == EOF))
            rc = TL_EIO;
        free(c.word[i]);
    }
    return rc;
}

int tl_complete_bash_script(FILE *out, const char *program)
{
    int rc = fprintf(out,
                     "# bash completion for %s: source this, or save it as\n"
                     "# /etc/bash_completion.d/%s (%s completion bash > FILE).\n"
                     "_%s_complete() {\n"
                     "    local IFS=$'\\n'\n"
                     "    COMPREPLY=($(command %s __complete \"$COMP_CWORD\" "
                     "\"${COMP_WORDS[@]}\" 2>/dev/null))\n"
                     "}\n"
                     "complete -o default -F _%s_complete %s\n",
                     program, program, program, program, program, program, program);
    return rc < 0 ? TL_EIO : 0;
}
