/*
 * Command-line conventions shared by the three executables: --help and
 * --version answer on stdout and exit 0; an unknown command or option is a
 * usage error on stderr with exit status 2.
 */
#ifndef TL_CLI_H
#define TL_CLI_H

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

#endif
