/*
 * The relay's commands as the console knows them (docs/console.md): the
 * document the relay's `help --json` prints (docs/technicians.md), read and
 * checked here, bytes in. It comes from the cache of one relay's answer
 * (console/command_cache.h) or from the copy the console was built with
 * (tl_command_list_built_in); either way it is text from another party, so
 * it is checked before anything of it is used: a document that is not
 * exactly what the relay writes (a member of the wrong type, a name that is
 * not one or two lowercase words, more commands, options or bytes than the
 * limits below) is refused whole, with a reason.
 *
 * What the console shows of it is escaped here, once (proto/text.h, one
 * line per field): the texts of tl_command_info_t can be printed as they
 * are. The document itself stays as it came, for `help --json`.
 *
 * The list owns every string it hands out; they live until it is freed.
 */
#ifndef TL_CONSOLE_COMMAND_LIST_H
#define TL_CONSOLE_COMMAND_LIST_H

#include <jansson.h>
#include <stddef.h>

/* Bounds on what is accepted: the relay's own list is far inside them. */
#define TL_COMMAND_LIST_MAX_BYTES (256u * 1024u)
#define TL_COMMAND_LIST_MAX_COMMANDS 128
#define TL_COMMAND_LIST_MAX_OPTIONS 32
#define TL_COMMAND_LIST_MAX_TEXT 2048 /* bytes of one usage, summary, option or name */
#define TL_COMMAND_LIST_MAX_EXAMPLE 4096

typedef struct tl_command_list tl_command_list_t;

/* One command, escaped for showing. */
typedef struct tl_command_info {
    const char *name;       /* one or two words of [a-z0-9-], as typed: "ticket show" */
    const char *usage;      /* "ticket show T-N [--json]": without the program's name */
    const char *summary;    /* one line */
    const char *options;    /* tl_cli_help_t form, "--name VALUE<TAB>what it does\n" lines */
    const char *example;    /* whole command lines without the program's name, each ended by \n */
    const char *capability; /* what the relay says it needs; "" if it did not say */
    /* The options that take a value ("--reason"), NULL-terminated: for tl_cli_wants_help. */
    const char *const *value_options;
    /*
     * A command whose last words are another program's command line (its
     * options list "--", as run's do): how many positional words come before
     * that line, so "run T-1 ls --help" is ls's --help. -1 for the others.
     */
    int positionals_before_rest;
} tl_command_info_t;

/*
 * The copy of the relay's `help --json` (its "commands" only) that the
 * console was built with: written at build time from the relay's command
 * table by relay/gen_commands.c, NUL-terminated. Only the tierline
 * executable holds it.
 */
extern const char tl_command_list_built_in[];

/*
 * Reads and checks a `help --json` document of len bytes. 0 and *list, or
 * TL_EINVAL (TL_EFULL over TL_COMMAND_LIST_MAX_BYTES, TL_ENOMEM) with what is
 * wrong in why; *list is then NULL.
 */
int tl_command_list_parse(const void *data, size_t len, tl_command_list_t **list, char *why,
                          size_t why_size);

/* As tl_command_list_parse, from a document already read; help is not kept (it is copied). */
int tl_command_list_from_json(const json_t *help, tl_command_list_t **list, char *why,
                              size_t why_size);

void tl_command_list_free(tl_command_list_t *list);

/* The document as it came (for `help --json`); valid while the list is. */
const json_t *tl_command_list_json(const tl_command_list_t *list);

/* Whom the relay answered: "name" and "role", escaped; "" when the document has none. */
const char *tl_command_list_user(const tl_command_list_t *list);
const char *tl_command_list_role(const tl_command_list_t *list);

size_t tl_command_list_count(const tl_command_list_t *list);
/* The i-th command in the relay's order; NULL past the end. */
const tl_command_info_t *tl_command_list_at(const tl_command_list_t *list, size_t i);

/* The command named name exactly; NULL if none (or list is NULL). */
const tl_command_info_t *tl_command_list_get(const tl_command_list_t *list, const char *name);

/*
 * The command that argv starts with, two-word names first as the relay
 * looks them up; *words says how many words its name took. NULL if none.
 */
const tl_command_info_t *tl_command_list_find(const tl_command_list_t *list, int argc, char **argv,
                                              int *words);

/* Nonzero if some command's name is word followed by a second word ("ticket"). */
int tl_command_list_is_group(const tl_command_list_t *list, const char *word);

#endif
