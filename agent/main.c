/* tierline-agent: entry point. Commands are added here as they land. */
#include "proto/cli.h"

#include <stdio.h>

static const char help_text[] =
    "usage: tierline-agent --help | --version\n"
    "\n"
    "The Tierline agent: runs on the user's machine, gathers diagnostics and keeps "
    "an\nauthenticated outbound tunnel to the relay, within what the user consents to.\n"
    "\n"
    "This release provides only --help and --version; its commands come in later\n"
    "releases (see README.md).\n";

int main(int argc, char **argv)
{
    int status = tl_cli_common(argc, argv, "tierline-agent", help_text);
    if (status >= 0)
        return status;
    return tl_cli_unknown("tierline-agent", argv[1]);
}
