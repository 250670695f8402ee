/*
 * tierline-agent: entry point and command table. Each command is one entry
 * { name, usage, summary, run_fn, options, example }; the program's help and
 * each command's --help are built from the table so they cannot drift apart,
 * and a command's --help is answered here, before it touches its state, the
 * relay or the user.
 */
#include "agent/cmd/commands.h"
#include "agent/conf.h"
#include "agent/diag.h"
#include "proto/cli.h"
#include "proto/format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "tierline-agent"

struct command {
    const char *name;
    const char *usage;
    const char *summary;
    int (*run_fn)(int argc, char **argv); /* argv[0] is the command name */
    const char *options;                  /* for --help: "--name VALUE<TAB>what it does\n" lines */
    const char *example;                  /* for --help: whole command lines */
};

#define STATE_OPTION                                                                               \
    "--state DIR\tthe agent's state folder (default $TIERLINE_AGENT_STATE, agent.conf's "          \
    "state_dir, $XDG_STATE_HOME/tierline-agent or ~/.local/state/tierline-agent)\n"

#define CONFIG_OPTION                                                                              \
    "--config FILE\tthe configuration file (default $" TL_AGENT_CONFIG_ENV                         \
    " or " TL_AGENT_CONFIG_DEFAULT ")\n"

static const struct command commands[] = {
    {"enroll", "enroll ENROLLMENT-STRING [--state DIR]",
     "Enroll this machine with a relay, using the string from your help desk.", tl_agent_cmd_enroll,
     STATE_OPTION,
     "tierline-agent enroll 'tl1:K7QX-2M9P-4RTW-8HJC@relay.example.com:7443#SHA256:...'\n"},
    {"run",
     "run [--config FILE] [--state DIR] [--policy FILE] [--consent-timeout DURATION] [--runbooks "
     "DIR] [--shell "
     "PATH] [--notify-interval DURATION] "
     "[--backoff-max-ms N] [--files-max-bytes N] [--files-max-count N] [--log-level LEVEL]",
     "Keep the tunnel up, deliver queued requests, serve the sessions the user allows.",
     tl_agent_cmd_run,
     CONFIG_OPTION STATE_OPTION
     "--policy FILE\tthe unattended policy (default STATE/policy.json; "
     "docs/consent.md)\n"
     "--consent-timeout DURATION\thow long a question waits for the user, 1s..1d "
     "(default 2m)\n"
     "--runbooks DIR\tthe runbook catalogue (default share/tierline/runbooks)\n"
     "--shell PATH\twhat technicians' shells run (default: the agent user's login shell)\n"
     "--notify-interval DURATION\tleast time between two desktop notifications, 0s..1h "
     "(default 10s; docs/desk.md)\n"
     "--backoff-max-ms N\tlongest wait between reconnection attempts, "
     "100..3600000\n"
     "--files-max-bytes N\tlargest file a technician may copy from or to this machine, "
     "1..67108864 bytes (default 64 MiB)\n"
     "--files-max-count N\tmost files copied under one grant, 1..100000 (default 1000)\n"
     "--log-level LEVEL\tdebug, info, warn or error\n",
     "tierline-agent run &\n"},
    {"help",
     "help \"DESCRIPTION\" [--title TEXT] [--state DIR] [--wait-ms N] [--no-wait] [--kb DIR] "
     "[--runbooks DIR] [--fix N | --no-self-help]",
     "Self-help first: show known problems that fit and apply a fix; else open a ticket with "
     "diagnostics attached, print its id, then (on a terminal) attend.",
     tl_agent_cmd_help,
     "--title TEXT\tthe ticket's title (default: the description's first line)\n" STATE_OPTION
     "--wait-ms N\thow long to wait for the relay, 100..600000 (default 30000)\n"
     "--no-wait\tdo not stay to answer technicians' requests\n"
     "--kb DIR\tthe knowledge base's articles (default share/tierline/kb)\n"
     "--runbooks DIR\tthe runbook catalogue (default share/tierline/runbooks)\n"
     "--fix N\tapply the fix of match N, 1..3, without asking (your consent, for scripts)\n"
     "--no-self-help\tshow no matches: open the ticket at once\n",
     "tierline-agent help \"the printer says it is offline\"\n"
     "tierline-agent help \"the disk is full\" --fix 1\n"},
    {"status", "status [--state DIR] [--json]",
     "Show enrollment, whether the agent runs and is connected, and queued requests.",
     tl_agent_cmd_status, STATE_OPTION "--json\ta JSON object instead of text\n",
     "tierline-agent status --json\n"},
    {"tickets", "tickets [--state DIR] [--json] [--wait-ms N]",
     "List this machine's tickets: status, and the latest note from a technician.",
     tl_agent_cmd_tickets,
     STATE_OPTION "--json\ta JSON object instead of text\n"
                  "--wait-ms N\thow long to wait for the relay, 100..600000 (default 30000)\n",
     "tierline-agent tickets\n"},
    {"attend", "attend [--state DIR]",
     "Ask yes or no for each technician's request; show what they do (Ctrl-C leaves).",
     tl_agent_cmd_attend, STATE_OPTION, "tierline-agent attend\n"},
    {"pending", "pending [--state DIR] [--json]", "List the requests waiting for an answer.",
     tl_agent_cmd_pending, STATE_OPTION "--json\ta JSON object instead of text\n",
     "tierline-agent pending\n"},
    {"approve", "approve QUESTION [--for DURATION] [--state DIR]",
     "Allow a waiting request (Q-N), optionally for less time than asked.", tl_agent_cmd_approve,
     "--for DURATION\tallow it for this long only: 90s, 15m, 2h\n" STATE_OPTION,
     "tierline-agent approve Q-1 --for 15m\n"},
    {"deny", "deny QUESTION [--state DIR]", "Decline a waiting request (Q-N).", tl_agent_cmd_deny,
     STATE_OPTION, "tierline-agent deny Q-1\n"},
    {"sessions", "sessions [--state DIR] [--json]",
     "List the grants (live ones first), their scopes, expiry and open channels.",
     tl_agent_cmd_sessions, STATE_OPTION "--json\ta JSON object instead of text\n",
     "tierline-agent sessions\n"},
    {"end", "end [GRANT] [--state DIR]",
     "End one grant (G-N), or every live grant, closing its sessions at once.", tl_agent_cmd_end,
     STATE_OPTION, "tierline-agent end G-3\n"},
    {"diag",
     "diag [--json] [--timeout-ms N] [--relay HOST:PORT] [--lookup NAME] [--connect HOST:PORT] "
     "[--state DIR] [--kb DIR]",
     "Gather diagnostics of this machine and the known problems they show; JSON with --json.",
     tl_agent_cmd_diag,
     "--json\tthe report as JSON (docs/diagnostics.md)\n"
     "--timeout-ms N\teach probe's time limit, 1..600000\n"
     "--relay HOST:PORT\talso check that this relay can be reached\n"
     "--lookup NAME\tthe name the internet check looks up, or off (default " TL_DIAG_DEFAULT_LOOKUP
     ")\n"
     "--connect HOST:PORT\twhere the internet check connects, or off "
     "(default " TL_DIAG_DEFAULT_CONNECT ")\n"
     "--state DIR\tthe agent's state directory, to tell whether it runs\n"
     "--kb DIR\tthe knowledge-base articles to check (default share/tierline/kb)\n",
     "tierline-agent diag --json > diagnostics.json\n"},
    {"catalogue", "catalogue [status [--json] | rollback | install FILE] [--state DIR]",
     "The signed catalogue of runbooks and articles installed here: show it, go back to the "
     "previous version, or install a package by hand (checked as the relay's are).",
     tl_agent_cmd_catalogue, STATE_OPTION "--json\tstatus as JSON\n",
     "tierline-agent catalogue\ntierline-agent catalogue rollback\n"},
    {"config", "config check|show [--config FILE]",
     "Check the configuration file (FILE:LINE: reason, exit 2), or show the settings it makes and "
     "where each comes from.",
     tl_agent_cmd_config, CONFIG_OPTION,
     "tierline-agent config check\ntierline-agent config show --config /etc/tierline/agent.conf\n"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const char help_intro[] =
    "usage: " PROGRAM " --help | --version | COMMAND [OPTIONS]\n"
    "\n"
    "The Tierline agent: runs on the user's machine, gathers diagnostics and keeps an\n"
    "authenticated outbound tunnel to the relay, within what the user consents to.\n"
    "\n"
    "Commands ('" PROGRAM " COMMAND --help' explains one):\n";

/* The help text: the introduction, then each command's usage and summary. */
static char *build_help(void)
{
    size_t size = sizeof help_intro;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        size += strlen(commands[i].usage) + strlen(commands[i].summary) + 16;
    char *text = malloc(size);
    if (!text)
        return NULL;
    size_t used = 0;
    text[0] = '\0';
    int rc = tl_format_append(text, size, &used, "%s", help_intro);
    for (size_t i = 0; rc == 0 && i < COMMAND_COUNT; i++)
        rc = tl_format_append(text, size, &used, "  %s\n      %s\n", commands[i].usage,
                              commands[i].summary);
    return text;
}

int main(int argc, char **argv)
{
    char *help_text = build_help();
    int status = tl_cli_common(argc, argv, PROGRAM, help_text ? help_text : help_intro);
    free(help_text);
    if (status >= 0)
        return status;
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const struct command *cmd = &commands[i];
        if (strcmp(argv[1], cmd->name) != 0)
            continue;
        if (tl_cli_wants_help(argc, argv, 2, -1, NULL)) {
            tl_cli_help_t help = {cmd->usage, cmd->summary, cmd->options, cmd->example};
            tl_cli_help_write(stdout, PROGRAM, &help);
            return TL_EXIT_OK;
        }
        /* run and config read the file themselves (they take --config); the others start from
         * its state_dir. */
        if (strcmp(cmd->name, "run") != 0 && strcmp(cmd->name, "config") != 0) {
            static tl_settings_t settings;
            status = tl_agent_configure(cmd->name, NULL, &settings);
            if (status != 0)
                return status;
        }
        return cmd->run_fn(argc - 1, argv + 1);
    }
    return tl_cli_unknown(PROGRAM, argv[1]);
}
