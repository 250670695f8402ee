/*
 * Fuzz target for the technicians' and admins' arguments: the shared parser
 * (proto/cli.c, tl_cli_args_parse) with the relay's real command specs and
 * value checks (relay/cmd/, docs/technicians.md).
 *
 * The input is a command line, split as the relay splits SSH exec requests
 * (tl__exec_split_line, up to the first NUL). A line that splits is looked
 * up in the technicians' table and parsed with that command's spec, as the
 * dispatcher does; its words after the first are also parsed with every
 * admin command's spec. Either the parse succeeds with every value within
 * the bounds the specs promise (a note of at most TL_NOTE_MAX bytes of
 * UTF-8, at most 64 command or runbook words, a reason of 1..1024 bytes, a
 * grant of 1m..24h, a tier 0..4, an evidence id of 8..64 hex digits; an
 * escalation with its tier and reason, a problem fixed only with its fix), or it
 * fails with one known error whose text names the command's usage.
 */
#include "proto/err.h"
#include "proto/text.h"
#include "relay/cmd/admin.h"
#include "relay/cmd/cmd_int.h"
#include "relay/net/exec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tl_admin_command_t *const admin_commands[] = {
    &tl_admin_init,         &tl_admin_enroll_code, &tl_admin_host_key,      &tl_admin_devices,
    &tl_admin_tickets,      &tl_admin_ticket,      &tl_admin_user,          &tl_admin_roles,
    &tl_admin_audit_verify, &tl_admin_status,      &tl_admin_audit_recover, &tl_admin_evidence,
};

static void check_error(const tl_cli_error_t *error)
{
    if (error->code < TL_CLI_UNKNOWN_OPTION || error->code > TL_CLI_BAD_VALUE)
        abort();
    if ((error->code == TL_CLI_UNKNOWN_OPTION || error->code == TL_CLI_UNEXPECTED ||
         error->code == TL_CLI_MISSING_VALUE) &&
        error->word == NULL)
        abort();
    if ((error->code == TL_CLI_MISSING_OPTION || error->code == TL_CLI_MISSING_VALUE) &&
        error->arg == NULL)
        abort();
}

static void check_parsed(const struct cmd *cmd)
{
    if (cmd->text.len > TL_NOTE_MAX || strlen(cmd->text.text) != cmd->text.len)
        abort();
    if (cmd->text.len > 0 && !tl_text_utf8_valid(cmd->text.text, cmd->text.len))
        abort();
    if (cmd->words.count < 0 || cmd->words.count > TL_SESSIONS_MAX_ARGS)
        abort();
    for (int i = 0; i < cmd->words.count; i++)
        if (cmd->words.word[i] == NULL || strlen(cmd->words.word[i]) > 4096)
            abort();
    if (cmd->session.reason != NULL &&
        (cmd->session.reason[0] == '\0' || strlen(cmd->session.reason) > TL_SESSIONS_MAX_REASON))
        abort();
    if (cmd->session.duration_s != 0 &&
        (cmd->session.duration_s < 60 || cmd->session.duration_s > 86400))
        abort();
    if (cmd->filter.tier < -1 || cmd->filter.tier > 4)
        abort();
    size_t hash_len = strlen(cmd->hash);
    if (hash_len != 0 &&
        (hash_len < 8 || hash_len > 64 || strspn(cmd->hash, "0123456789abcdef") != hash_len))
        abort();
    if (cmd->ticket.text[0] != '\0' && cmd->ticket.id <= 0)
        abort();
    /* ticket escalate and the problem commands (relay/cmd/escalate.c, problems.c) */
    if (cmd->to_tier < 0 || cmd->to_tier > 4 ||
        (cmd->command == &tl__cmd_ticket_escalate && (cmd->to_tier < 1 || cmd->reason == NULL)))
        abort();
    if (cmd->reason != NULL && (cmd->reason[0] == '\0' || strlen(cmd->reason) > 1024 ||
                                !tl_text_utf8_valid(cmd->reason, strlen(cmd->reason))))
        abort();
    if (cmd->problem.text[0] != '\0' && cmd->problem.id <= 0)
        abort();
    if (cmd->command == &tl__cmd_problem_state && strcmp(cmd->problem_state, "fixed") == 0 &&
        cmd->fix == NULL)
        abort();
}

static void technician_line(int argc, char **argv)
{
    int used = 0;
    const struct tl__command *command = tl__command_lookup(argc, argv, &used);
    if (command == NULL)
        return;
    (void)tl_cli_spec_wants_help(&command->args, argc, argv, used);
    struct cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL)
        abort();
    cmd->command = command;
    cmd->filter.tier = -1;
    tl_cli_error_t error;
    int rc = tl_cli_args_parse(&command->args, argc - used, argv + used, cmd, &error);
    if (rc == 0) {
        check_parsed(cmd);
    } else {
        if (rc != TL_EINVAL)
            abort();
        check_error(&error);
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (out == NULL)
            abort();
        tl__cmd_write_usage_error(out, command, &error);
        fclose(out);
        /* The last line is the usage line. */
        char tail[512];
        int tail_len = snprintf(tail, sizeof tail, "usage: %s\n", command->usage);
        if (tail_len <= 0 || (size_t)tail_len >= sizeof tail || len < (size_t)tail_len ||
            strcmp(text + len - (size_t)tail_len, tail) != 0)
            abort();
        free(text);
    }
    free(cmd);
}

static void admin_line(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof admin_commands / sizeof admin_commands[0]; i++) {
        union {
            char bytes[2048];
            void *align;
        } result = {{0}};
        tl_cli_error_t error;
        int rc = tl_cli_args_parse(admin_commands[i]->args, argc, argv, &result, &error);
        if (rc != 0 && rc != TL_EINVAL)
            abort();
        if (rc != 0)
            check_error(&error);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *words = malloc(size + 1);
    char *argv[TL_EXEC_MAX_WORDS + 1];
    int argc = -1;
    if (text == NULL || words == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    if (tl__exec_split_line(text, words, argv, &argc) == NULL && argc > 0) {
        technician_line(argc, argv);
        admin_line(argc - 1, argv + 1);
    }
    free(words);
    free(text);
    return 0;
}
