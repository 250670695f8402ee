/*
 * Command-line conventions shared by the three executables: --help and
 * --version answer on stdout and exit 0; an unknown command or option is a
 * usage error on stderr with exit status 2.
 */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <stdint.h>

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

/* "90s", "15m", "2h", "7d" or plain seconds, into milliseconds; TL_EINVAL otherwise. */
int tl_cli_parse_duration(const char *text, uint64_t *ms);
/* A decimal number within [min, max]; TL_EINVAL otherwise. */
int tl_cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

#endif
