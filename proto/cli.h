/*
 * Command-line conventions shared by the three executables: --help and
 * --version answer on stdout and exit 0; an unknown command or option is a
 * usage error on stderr with exit status 2.
 *
 * Every command answers --help (or -h) itself, before it reads a file or
 * touches the network: its usage, summary, options and an example, all kept
 * in the program's command table (tl_cli_help_t) so help and commands cannot
 * drift apart.
 */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <stdint.h>
#include <stdio.h>

#define TL_EXIT_OK 0
#define TL_EXIT_FAILURE 1
#define TL_EXIT_USAGE 2

/*
 * Handles the options every program has. Returns -1 if argv[1] is something
 * else (the caller goes on), otherwise the exit status to return from main.
 */
int tl_cli_common(int argc, char **argv, const char *program, const char *help_text);

/* Prints "PROGRAM: unknown command 'X'" and the hint to --help; returns TL_EXIT_USAGE. */
int tl_cli_unknown(const char *program, const char *what);

/* One option of a command: "--name VALUE" (value != NULL) or "--name" (flag != NULL). */
typedef struct tl_cli_option {
    const char *name; /* without the dashes */
    const char **value;
    int *flag;
} tl_cli_option_t;

/*
 * Parses argv[first..] against options; other words are positional, at most
 * max_positional of them (stored in positional, count in *count). "--" ends
 * the options. On a bad word prints "PROGRAM COMMAND: ..." and the usage to
 * stderr and returns TL_EXIT_USAGE; 0 otherwise.
 */
int tl_cli_parse(const char *program, const char *command, const char *usage, int argc, char **argv,
                 int first, const tl_cli_option_t *options, const char **positional,
                 int max_positional, int *count);

/* One command's help, as table data. */
typedef struct tl_cli_help {
    const char *usage;   /* "tickets --data DIR [--json]": without the program name */
    const char *summary; /* one line */
    /* One option a line, "--name VALUE<TAB>what it does\n"; NULL when there are none. */
    const char *options;
    const char *example; /* one or more whole command lines, each ending in '\n' */
} tl_cli_help_t;

/*
 * Whether the words argv[first..] ask for help: "--help" or "-h" among the
 * command's own words. Nothing after "--" is the command's own. For a command
 * that ends in another program's command line (run T-N [OPTIONS] COMMAND...),
 * give positional_max (how many positional words come before that command
 * line) and the options that take a value: the scan stops where the command
 * line starts, so "run T-1 ls --help" is ls's own --help. -1 and NULL
 * otherwise: then an option's value that reads "--help" asks for help too,
 * which at worst shows help where a command was meant.
 */
int tl_cli_wants_help(int argc, char **argv, int first, int positional_max,
                      const char *const *value_options);

/*
 * Writes help for a command: "usage: PROGRAM USAGE", the summary, the
 * options (and -h, --help) aligned, and the example. program may be NULL
 * (the relay's SSH commands have no program name).
 */
void tl_cli_help_write(FILE *out, const char *program, const tl_cli_help_t *help);

/* "90s", "15m", "2h", "7d" or plain seconds, into milliseconds; TL_EINVAL otherwise. */
int tl_cli_parse_duration(const char *text, uint64_t *ms);
/* A decimal number within [min, max]; TL_EINVAL otherwise. */
int tl_cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

#endif
