/*
 * The technicians' commands: finding the entry, the role check, parsing and
 * running (relay/cmd/commands.h). What each command does is in the file of
 * its group (relay/cmd/cmd_int.h).
 */
#include "relay/cmd/cmd_int.h"

#include "proto/buf.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/roles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tl__cmd_actor(const struct cmd *cmd, char out[96])
{
    snprintf(out, 96, "tech:%s", cmd->tech.name);
}

void tl__cmd_free(struct cmd *cmd)
{
    free(cmd->out);
    free(cmd->err);
    free(cmd->chunk);
    tl_buf_free(cmd->input);
    free(cmd);
}

void tl__cmd_write_usage_error(FILE *out, const struct tl__command *command,
                               const tl_cli_error_t *error)
{
    switch (error->code) {
    case TL_CLI_UNKNOWN_OPTION:
    case TL_CLI_UNEXPECTED:
        if (!(command->args.flags & TL_CLI_TERSE))
            fprintf(out, "tierline: %s '%.60s'\n",
                    error->word[0] == '-' ? "unknown option" : "unexpected argument", error->word);
        break;
    case TL_CLI_SPEC:
        fprintf(out, "tierline: %s\n", tl_strerror(TL_EINVAL));
        break;
    default:
        /* A bad or missing value, in the words of the spec or of the value's check. */
        if (error->problem != NULL) {
            fputs("tierline: ", out);
            tl_cli_problem_write(out, error->problem, error->word);
            fputc('\n', out);
        }
        break;
    }
    if (error->usage)
        fprintf(out, "usage: %s\n", command->usage);
}

void tl__cmd_finish_with(tl_exec_t *exec, FILE *text, char **bytes, size_t *len, int status)
{
    if (text != NULL && fclose(text) == 0 && *len > 0)
        tl_exec_write(exec, status == 0 ? TL_EXEC_STDOUT : TL_EXEC_STDERR, *bytes, *len);
    free(*bytes);
    tl_exec_finish(exec, status);
}

/* ---- running commands ---------------------------------------------------------------- */

static void on_drain(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    if (!cmd->job_in_flight && cmd->reader != NULL && !cmd->reading_done)
        tl__cmd_stream_next(cmd);
}

static void on_abort(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    cmd->exec = NULL;
    if (cmd->job_in_flight)
        return; /* its done callback sees the exec is gone */
    if (cmd->reader != NULL)
        tl__cmd_stream_next(cmd); /* closes the reader on the worker */
    else
        tl__cmd_free(cmd);
}

static const tl_exec_callbacks_t exec_callbacks = {.on_drain = on_drain, .on_abort = on_abort};

static int run_work(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = (struct cmd *)job;
    FILE *out = open_memstream(&cmd->out, &cmd->out_len);
    FILE *err = open_memstream(&cmd->err, &cmd->err_len);
    int rc = TL_ENOMEM;
    if (out != NULL && err != NULL)
        rc = cmd->command->work(cmd, ctx, out, err);
    if (out != NULL)
        fclose(out);
    if (err != NULL)
        fclose(err);
    cmd->exit_status = rc == 0 && !cmd->refused ? 0
                       : rc == 0 && cmd->denied ? TL_EXIT_DENIED
                       : cmd->refused > 1       ? cmd->refused
                                                : 1;
    /* A failed command is answered, not retried: its store changes are undone; but a refusal
     * keeps its audit entry (it changed nothing else). */
    if (rc == TL_ENOMEM || rc == TL_ESTORE)
        return rc;
    return rc == 0 || cmd->refused ? 0 : TL_EINVAL;
}

static void work_done(tl_job_t *job, int status)
{
    struct cmd *cmd = (struct cmd *)job;
    cmd->job_in_flight = 0;
    /* Done and on the record: a checkpoint covers it (docs/audit-format.md §14). */
    if (status == 0 && cmd->exit_status == 0 && cmd->command->checkpoint_after &&
        cmd->ctx->checkpoints != NULL) {
        /* A ticket's close: the ticket records the checkpoint that covers it. */
        int asked = tl_audit_checkpoints_request_for_ticket(cmd->ctx->checkpoints, cmd->ticket.id,
                                                            tl_audit_checkpoint_logged,
                                                            (void *)"after a command");
        if (asked != 0 && asked != TL_ECLOSED)
            tl_log_error("audit checkpoint after a command not asked for error=\"%s\"",
                         tl_strerror(asked));
    }
    if (cmd->exec == NULL) {
        /* The client is gone; an open reader is closed by one more job. */
        if (cmd->reader != NULL) {
            tl__cmd_stream_next(cmd);
            return;
        }
        tl__cmd_free(cmd);
        return;
    }
    /* Refused because the audit log cannot be written: whatever the command produced is
     * withheld, as what it did was undone (or is not acknowledged). */
    if (status == TL_EAUDIT)
        cmd->out_len = cmd->err_len = 0;
    if (cmd->out_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDOUT, cmd->out, cmd->out_len);
    if (cmd->err_len > 0)
        tl_exec_write(cmd->exec, TL_EXEC_STDERR, cmd->err, cmd->err_len);
    if (status != 0 && cmd->err_len == 0)
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", tl_strerror(status));
    if (status == 0 && cmd->reader != NULL && cmd->verifying) {
        /* Checked a step at a time, so a large item does not hold the storage thread. */
        free(cmd->out);
        free(cmd->err);
        cmd->out = cmd->err = NULL;
        cmd->out_len = cmd->err_len = 0;
        tl__cmd_submit_work(cmd);
        return;
    }
    if (status == 0 && cmd->reader != NULL) {
        tl__cmd_stream_next(cmd);
        return;
    }
    tl_exec_finish(cmd->exec, status == 0 ? cmd->exit_status : 1);
    if (cmd->reader != NULL) {
        /* Failed with an item open: the reader is closed on the worker, then cmd is freed. */
        cmd->exec = NULL;
        tl__cmd_stream_next(cmd);
        return;
    }
    tl__cmd_free(cmd);
}

void tl__cmd_submit_work(struct cmd *cmd)
{
    cmd->job.run = run_work;
    cmd->job.done = work_done;
    cmd->job_in_flight = 1;
    tl_worker_submit(cmd->ctx->worker, &cmd->job);
}

/* A command's stdin, kept whole up to its bound (tl__cmd_read_stdin). */
static size_t stdin_input(tl_exec_t *exec, const uint8_t *bytes, size_t len, void *data)
{
    struct cmd *cmd = data;
    (void)exec;
    if (cmd->usage_error == NULL && tl_buf_put(cmd->input, bytes, len) != 0)
        cmd->usage_error = cmd->input_too_big;
    return len;
}

static void stdin_eof(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    if (cmd->job_in_flight)
        return;
    if (cmd->usage_error != NULL) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: %s\n", cmd->usage_error);
        tl_exec_finish(exec, TL_EXIT_USAGE);
        tl__cmd_free(cmd);
        return;
    }
    tl__cmd_submit_work(cmd);
}

static void stdin_abort(tl_exec_t *exec, void *data)
{
    struct cmd *cmd = data;
    (void)exec;
    cmd->exec = NULL;
    if (!cmd->job_in_flight)
        tl__cmd_free(cmd); /* still reading stdin */
}

static const tl_exec_callbacks_t stdin_callbacks = {
    .on_abort = stdin_abort,
    .on_input = stdin_input,
    .on_input_eof = stdin_eof,
};

void tl__cmd_read_stdin(struct cmd *cmd, size_t max, const char *too_big)
{
    cmd->input = tl_buf_new(max);
    if (cmd->input == NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", tl_strerror(TL_ENOMEM));
        tl_exec_finish(cmd->exec, 1);
        tl__cmd_free(cmd);
        return;
    }
    cmd->input_too_big = too_big;
    tl_exec_set_callbacks(cmd->exec, &stdin_callbacks, cmd);
}

static int run_denial(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct cmd *cmd = (struct cmd *)job;
    char actor[96];
    tl__cmd_actor(cmd, actor);
    json_t *details = cmd->expired
                          ? json_pack("{s:s, s:s, s:s, s:I}", "command", cmd->command->name, "role",
                                      cmd->tech.role, "reason", "account expired", "expires",
                                      (json_int_t)cmd->tech.expires)
                          : json_pack("{s:s, s:s, s:s}", "command", cmd->command->name, "role",
                                      cmd->tech.role, "needs", tl_capability_name(cmd->capability));
    int rc = tl_worker_audit(ctx, actor, "access.denied", cmd->ticket.text, details);
    json_decref(details);
    return rc;
}

static void denial_done(tl_job_t *job, int status)
{
    struct cmd *cmd = (struct cmd *)job;
    if (cmd->exec != NULL && cmd->expired) {
        char when[TL_UTC_TEXT];
        tl_format_utc(cmd->tech.expires, when);
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR,
                       "tierline: permission denied: your account expired at %s\n", when);
        tl_exec_finish(cmd->exec, TL_EXIT_DENIED);
    } else if (cmd->exec != NULL) {
        tl_exec_printf(cmd->exec, TL_EXEC_STDERR,
                       "tierline: permission denied: role %s may not use '%s' (needs %s)\n",
                       cmd->tech.role, cmd->command->name, tl_capability_name(cmd->capability));
        tl_exec_finish(cmd->exec, TL_EXIT_DENIED);
    }
    tl__cmd_free(cmd);
}

/* Reads the command's words into cmd; on a usage error, says so and ends the command. */
static int parse_words(struct cmd *cmd, int argc, char **argv)
{
    const struct tl__command *command = cmd->command;
    tl_cli_error_t error;
    char *bytes = NULL;
    size_t len = 0;
    cmd->filter.tier = -1;
    if (tl_cli_args_parse(&command->args, argc, argv, cmd, &error) == 0) {
        if (command->prepare == NULL || command->prepare(cmd) == 0)
            return 0;
        if (cmd->usage_error != NULL)
            tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "tierline: %s\n", cmd->usage_error);
        if (!cmd->usage_error_only)
            tl_exec_printf(cmd->exec, TL_EXEC_STDERR, "usage: %s\n", command->usage);
        tl_exec_finish(cmd->exec, 2);
        return TL_EINVAL;
    }
    FILE *text = open_memstream(&bytes, &len);
    if (text != NULL)
        tl__cmd_write_usage_error(text, command, &error);
    tl__cmd_finish_with(cmd->exec, text, &bytes, &len, 2);
    return TL_EINVAL;
}

void tl_commands_dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv)
{
    const tl_technician_t *tech = tl_exec_technician(exec);
    if (tl_exec_subsystem(exec)) {
        /* Not a command: the front end accepted "sftp" for a role with files.pull. */
        tl_sessions_files_start(((tl_commands_ctx_t *)ctx)->sessions, exec);
        return;
    }
    int words = 0;
    const struct tl__command *command = argc > 0 ? tl__command_lookup(argc, argv, &words) : NULL;
    if (command == NULL && argc > 0 && tl__cmd_answer_group(exec, argc, argv))
        return;
    if (command != NULL && tl_cli_spec_wants_help(&command->args, argc, argv, words)) {
        tl__cmd_answer_help(exec, command, tl_role_parse(tech->role));
        return;
    }
    if (command == NULL) {
        tl_exec_printf(exec, TL_EXEC_STDERR,
                       "tierline: unknown command '%s'\nusage: COMMAND [ARGS]; 'help' lists the "
                       "commands your role may use\n",
                       argc > 0 ? argv[0] : "");
        tl_exec_finish(exec, 2);
        return;
    }
    struct cmd *cmd = calloc(1, sizeof *cmd);
    if (cmd == NULL) {
        tl_exec_printf(exec, TL_EXEC_STDERR, "tierline: out of memory\n");
        tl_exec_finish(exec, 1);
        return;
    }
    cmd->command = command;
    cmd->ctx = ctx;
    cmd->exec = exec;
    cmd->tech = *tech;
    cmd->role = tl_role_parse(tech->role);
    tl_exec_set_callbacks(exec, &exec_callbacks, cmd);
    tl_log_info("command tech=%s role=%s command=\"%s\"", tech->name, tech->role, command->name);

    /* join --observe needs only the observe capability. */
    cmd->capability = command->capability;
    for (int i = words; command->observe_flag && i < argc; i++)
        if (strcmp(argv[i], "--observe") == 0)
            cmd->capability = TL_CAP_OBSERVE;
    for (int i = words; command->capability_flag != NULL && i < argc; i++)
        if (strcmp(argv[i], command->capability_flag) == 0)
            cmd->capability = command->flag_capability;
    /* An account that expired while its connection stayed open runs nothing more. */
    cmd->expired = tech->expires != 0 && tl_wall_ms() >= tech->expires;
    if (cmd->expired || !tl_role_can(cmd->role, cmd->capability)) {
        /* The ticket, when the words name one, is the denial's subject. */
        const char *unused;
        if (argc > words)
            tl__kind_ticket(argv[words], &cmd->ticket, &unused);
        cmd->job.run = run_denial;
        cmd->job.done = denial_done;
        cmd->job_in_flight = 1;
        tl_worker_submit(cmd->ctx->worker, &cmd->job);
        return;
    }
    if (parse_words(cmd, argc - words, argv + words) != 0) {
        tl__cmd_free(cmd);
        return;
    }
    if (command->start != NULL) {
        command->start(cmd); /* it owns cmd from here */
        return;
    }
    if (command->work == NULL) {
        /* The session module takes the exec over, callbacks included. */
        tl_sessions_start(cmd->ctx->sessions, exec, &cmd->session);
        tl__cmd_free(cmd);
        return;
    }
    tl__cmd_submit_work(cmd);
}
