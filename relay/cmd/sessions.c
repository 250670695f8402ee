/*
 * The technicians' session commands: diag, run, join, fix, runbooks. Here
 * only their arguments are read; relay/sessions/sessions.c does the rest
 * (consent, the channel to the machine, what is kept).
 */
#include "relay/cmd/cmd_int.h"

#include "proto/err.h"
#include "proto/roles.h"

#include <stdio.h>

/* What every session command hands to the session module. */
static int session_prepare(struct cmd *cmd)
{
    cmd->session.kind = cmd->command->session_kind;
    cmd->session.ticket_id = cmd->ticket.id;
    snprintf(cmd->session.ticket, sizeof cmd->session.ticket, "%s", cmd->ticket.text);
    cmd->session.json = cmd->json;
    cmd->session.argc = cmd->words.count;
    cmd->session.argv = cmd->words.word;
    return 0;
}

static int join_prepare(struct cmd *cmd)
{
    session_prepare(cmd);
    if (!tl_exec_pty(cmd->exec)->requested) {
        cmd->usage_error = "join needs a terminal: use ssh -t";
        cmd->usage_error_only = 1;
        return TL_EINVAL;
    }
    if (cmd->session.take && cmd->session.observe) {
        cmd->usage_error = "--take and --observe exclude each other: an observer never types";
        cmd->usage_error_only = 1;
        return TL_EINVAL;
    }
    return 0;
}

/* The ticket first: options count only after it. */
#define TICKET_ARG                                                                                 \
    {                                                                                              \
        .name = "T-N", .kind = TL_CLI_CHECK, .check = tl__kind_ticket,                             \
        .out = TL_CLI_AT(struct cmd, ticket)                                                       \
    }

/* Options every session command takes, but runbooks. */
#define REASON_OPTION                                                                              \
    {                                                                                              \
        .name = "reason", .metavar = "TEXT",                                                       \
        .help = "what the user is shown as the reason (default: the command itself)",              \
        .kind = TL_CLI_TEXT, .min = 1, .max = TL_SESSIONS_MAX_REASON,                              \
        .out = TL_CLI_AT(struct cmd, session.reason),                                              \
        .problem = "--reason needs a text of 1 to 1024 bytes"                                      \
    }
#define FOR_OPTION                                                                                 \
    {                                                                                              \
        .name = "for", .metavar = "DURATION",                                                      \
        .help = "how long the grant should last, 1m..24h: 90s, 15m, 1h30m", .kind = TL_CLI_CHECK,  \
        .check = tl__kind_grant_duration, .out = TL_CLI_AT(struct cmd, session.duration_s),        \
        .problem = "--for needs a duration from 1m to 24h, e.g. 15m, 1h, 1h30m"                    \
    }

/* Sessions on the ticket's machine, with the user's consent (relay/sessions/sessions.h). */

const struct tl__command tl__cmd_diag = {
    .name = "diag",
    .usage = "diag T-N [--reason TEXT] [--for DURATION] [--json]",
    .summary = "fresh diagnostics from the machine, kept as evidence",
    .capability = TL_CAP_DIAG,
    .args = {.options = (const tl_cli_arg_t[]){REASON_OPTION,
                                               FOR_OPTION,
                                               TL__CMD_JSON("what was stored, as a JSON object"),
                                               {0}},
             .positionals = (const tl_cli_arg_t[]){TICKET_ARG, {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .options_after = 1},
    .prepare = session_prepare,
    .session_kind = TL_SESSION_DIAG,
    .example = "diag T-1 --reason \"checking the network\"\n",
};

/* run T-N [options] [--] COMMAND [ARGS...]: the command starts after "--", or at the first
 * word that is not one of ours. */
const struct tl__command tl__cmd_run = {
    .name = "run",
    .usage = "run T-N [--reason TEXT] [--for DURATION] -- COMMAND [ARGS...]",
    .summary = "run a command on the machine",
    .capability = TL_CAP_RUN,
    .args = {.options = (const tl_cli_arg_t[]){REASON_OPTION, FOR_OPTION, TL__CMD_JSON(NULL), {0}},
             .positionals =
                 (const tl_cli_arg_t[]){
                     TICKET_ARG,
                     {.name = "COMMAND",
                      .flags = TL_CLI_REST,
                      .most = TL_CLI_MANY,
                      .kind = TL_CLI_CHECK,
                      .check = tl__kind_command_word,
                      .out = TL_CLI_AT(struct cmd, words),
                      .problem =
                          "run needs a command after the ticket: run T-N -- COMMAND [ARGS...]"},
                     {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE | TL_CLI_DASH_WORDS | TL_CLI_DOUBLE_DASH,
             .options_after = 1,
             .dashes_help = "the end of run's options: what follows is the command"},
    .prepare = session_prepare,
    .session_kind = TL_SESSION_RUN,
    .example = "run T-1 -- systemctl status cups\n",
};

const struct tl__command tl__cmd_join = {
    .name = "join",
    .usage = "join T-N [--observe | --take] [--reason TEXT] [--for DURATION]",
    .summary = "a shell on the machine (ssh -t), or watch its shells",
    .capability = TL_CAP_SHELL,
    .observe_flag = 1,
    .args = {.options =
                 (const tl_cli_arg_t[]){{.name = "observe",
                                         .help = "only watch the machine's shells (needs observe)",
                                         .out = TL_CLI_AT(struct cmd, session.observe)},
                                        {.name = "take",
                                         .help = "ask the technician typing in the ticket's shell "
                                                 "for control; with --reason, take it when no "
                                                 "answer comes in time",
                                         .out = TL_CLI_AT(struct cmd, session.take)},
                                        REASON_OPTION,
                                        FOR_OPTION,
                                        TL__CMD_JSON(NULL),
                                        {0}},
             .positionals = (const tl_cli_arg_t[]){TICKET_ARG, {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .options_after = 1},
    .prepare = join_prepare,
    .session_kind = TL_SESSION_JOIN,
    .example = "join T-1\n",
};

/* fix T-N RUNBOOK [NAME=VALUE...], options anywhere after the ticket. */
const struct tl__command tl__cmd_fix = {
    .name = "fix",
    .usage = "fix T-N RUNBOOK [NAME=VALUE...] [--reason TEXT] [--for DURATION]",
    .summary = "run a runbook from the machine's catalogue",
    .capability = TL_CAP_FIX,
    .args = {.options = (const tl_cli_arg_t[]){REASON_OPTION, FOR_OPTION, TL__CMD_JSON(NULL), {0}},
             .positionals = (const tl_cli_arg_t[]){TICKET_ARG,
                                                   {.name = "RUNBOOK",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_runbook,
                                                    .out = TL_CLI_AT(struct cmd, session.runbook)},
                                                   {.name = "NAME=VALUE",
                                                    .flags = TL_CLI_OPTIONAL,
                                                    .most = TL_CLI_MANY,
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_runbook_arg,
                                                    .out = TL_CLI_AT(struct cmd, words)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE | TL_CLI_DASH_WORDS,
             .options_after = 1},
    .prepare = session_prepare,
    .session_kind = TL_SESSION_FIX,
    .example = "fix T-1 flush-dns\n",
};

const struct tl__command tl__cmd_runbooks = {
    .name = "runbooks",
    .usage = "runbooks T-N [--json]",
    .summary = "the runbooks the machine offers",
    .capability = TL_CAP_FIX,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("a JSON array of objects: name, "
                                                            "description, min_role, privileged, "
                                                            "params"),
                                               {0}},
             .positionals = (const tl_cli_arg_t[]){TICKET_ARG, {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE,
             .options_after = 1},
    .prepare = session_prepare,
    .session_kind = TL_SESSION_RUNBOOKS,
    .example = "runbooks T-1\n",
};
