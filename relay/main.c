/* tierline-relay: entry point. Commands are added here as they land. */
#include "proto/cli.h"

#include <stdio.h>

static const char help_text[] =
    "usage: tierline-relay --help | --version\n"
    "\n"
    "The Tierline relay: accepts agents over mutual TLS 1.3 and technicians over SSH,\nand keeps "
    "tickets, evidence and the audit log.\n"
    "\n"
    "This release provides only --help and --version; its commands come in later\n"
    "releases (see README.md).\n";

int main(int argc, char **argv)
{
    int status = tl_cli_common(argc, argv, "tierline-relay", help_text);
    if (status >= 0)
        return status;
    return tl_cli_unknown("tierline-relay", argv[1]);
}
