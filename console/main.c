/* tierline: entry point. Commands are added here as they land. */
#include "proto/cli.h"

#include <stdio.h>

static const char help_text[] =
    "usage: tierline --help | --version\n"
    "\n"
    "The Tierline console: the technician's and auditor's client for the relay.\n"
    "\n"
    "This release provides only --help and --version; its commands come in later\n"
    "releases (see README.md).\n";

int main(int argc, char **argv)
{
    int status = tl_cli_common(argc, argv, "tierline", help_text);
    if (status >= 0)
        return status;
    return tl_cli_unknown("tierline", argv[1]);
}
