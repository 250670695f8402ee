#include "proto/cli.h"

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
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0) {
        fputs(help_text, stdout);
        return TL_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0 || strcmp(arg, "version") == 0) {
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
