/*
 * What a technician may do, and how: `whoami`, `help` (and `help --json`,
 * which the console caches for its usage lines and completion), each
 * command's --help and a group's listing ("ticket --help"). All of it is
 * printed from the command table, so it cannot drift from what runs.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/err.h"
#include "proto/roles.h"
#include "relay/cmd/show.h"

#include <stdlib.h>
#include <string.h>

int tl__command_may_use(const struct tl__command *command, int role)
{
    return tl_role_can(role, command->capability) ||
           (command->observe_flag && tl_role_can(role, TL_CAP_OBSERVE)) ||
           (command->capability_flag != NULL && tl_role_can(role, command->flag_capability));
}

static int work_whoami(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *caps = json_array();
    for (int c = 0; c < TL_CAP_COUNT; c++)
        if (tl_role_can(cmd->role, c))
            json_array_append_new(caps, json_string(tl_capability_name(c)));
    if (cmd->json) {
        json_t *me =
            json_pack("{s:s, s:s, s:s, s:O}", "name", cmd->tech.name, "role", cmd->tech.role, "key",
                      cmd->tech.key_fingerprint, "capabilities", caps);
        tl__cmd_print_json(out, me);
        json_decref(me);
    } else {
        fprintf(out, "%s (%s)\nkey: %s\nmay:", cmd->tech.name, cmd->tech.role,
                cmd->tech.key_fingerprint);
        size_t i;
        json_t *c;
        json_array_foreach(caps, i, c)
            fprintf(out, " %s", json_string_value(c));
        fprintf(out, "\n");
    }
    json_decref(caps);
    return 0;
}

const struct tl__command tl__cmd_whoami = {
    .name = "whoami",
    .usage = "whoami [--json]",
    .summary = "who you are and what your role allows",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("an object: name, role, key, "
                                                            "capabilities"),
                                               {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_whoami,
    .example = "whoami\n",
};

/* ---- help ------------------------------------------------------------------------------ */

/* An option as help --json shows it: {name, value, help}. */
static int append_option(json_t *options, const char *name, const char *value, const char *help)
{
    json_t *option = json_pack("{s:s, s:s?, s:s}", "name", name, "value", value, "help", help);
    return option != NULL && json_array_append_new(options, option) == 0 ? 0 : TL_ENOMEM;
}

/* The options a command's --help lists, the same lines as data. */
static json_t *options_json(const struct tl__command *command)
{
    json_t *options = json_array();
    char name[64];
    int rc = options != NULL ? 0 : TL_ENOMEM;
    for (const tl_cli_arg_t *option = command->args.options;
         rc == 0 && option != NULL && option->name != NULL; option++) {
        if (option->help == NULL)
            continue;
        snprintf(name, sizeof name, "--%s", option->name);
        rc = append_option(options, name, option->metavar, option->help);
    }
    if (rc == 0 && (command->args.flags & TL_CLI_DOUBLE_DASH) && command->args.dashes_help)
        rc = append_option(options, "--", NULL, command->args.dashes_help);
    if (rc != 0) {
        json_decref(options);
        options = NULL;
    }
    return options;
}

/* One command as help --json lists it. */
static json_t *command_json(const struct tl__command *command)
{
    size_t example_len = strlen(command->example);
    while (example_len > 0 && command->example[example_len - 1] == '\n')
        example_len--;
    return json_pack("{s:s, s:s, s:s, s:o?, s:s%, s:s}", "name", command->name, "usage",
                     command->usage, "summary", command->summary, "options", options_json(command),
                     "example", command->example, example_len, "capability",
                     tl_capability_name(command->capability));
}

json_t *tl_commands_help_listing(int role)
{
    json_t *listing = json_array();
    for (size_t i = 0; listing != NULL && i < tl__command_count; i++)
        if (role < 0 || tl__command_may_use(tl__commands[i], role))
            json_array_append_new(listing, command_json(tl__commands[i]));
    return listing;
}

static int work_help(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    if (cmd->json) {
        json_t *listing = tl_commands_help_listing(cmd->role);
        json_t *help = json_pack("{s:s, s:s, s:o?}", "name", cmd->tech.name, "role", cmd->tech.role,
                                 "commands", listing);
        int rc = help != NULL ? tl__cmd_print_json(out, help) : TL_ENOMEM;
        json_decref(help);
        return rc;
    }
    fprintf(out, "Commands for %s (%s):\n", cmd->tech.name, cmd->tech.role);
    for (size_t i = 0; i < tl__command_count; i++) {
        if (tl__command_may_use(tl__commands[i], cmd->role))
            fprintf(out, "  %-44s %s\n", tl__commands[i]->usage, tl__commands[i]->summary);
    }
    fprintf(out, "'COMMAND --help' explains one.\n");
    return 0;
}

const struct tl__command tl__cmd_help = {
    .name = "help",
    .usage = "help [--json]",
    .summary = "the commands your role may use",
    .capability = TL_CAP_TICKETS_READ,
    .args = {.options = (const tl_cli_arg_t[]){TL__CMD_JSON("an object: name, role, commands "
                                                            "(each: name, usage, summary, "
                                                            "options, example, capability)"),
                                               {0}},
             .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE},
    .work = work_help,
    .example = "help\n",
};

/* ---- COMMAND --help ---------------------------------------------------------------------- */

/*
 * COMMAND --help: the command's help from the table, and nothing else happens:
 * no storage job, no audit entry, nothing reaches the machine. A command the
 * role may not use still has its help, with a line saying so.
 */
void tl__cmd_answer_help(tl_exec_t *exec, const struct tl__command *command, int role)
{
    char *bytes = NULL;
    size_t len = 0;
    FILE *text = open_memstream(&bytes, &len);
    if (text != NULL) {
        tl_cli_spec_help_write(text, NULL, command->usage, command->summary, &command->args,
                               command->example);
        int capability = command->capability;
        if (!tl__command_may_use(command, role))
            fprintf(text, "\nYour role (%s) may not use it: it needs %s.\n", tl_role_name(role),
                    tl_capability_name(capability));
    }
    tl__cmd_finish_with(exec, text, &bytes, &len, 0);
}

/* "ticket" alone, or "ticket --help": the group's commands. */
int tl__cmd_answer_group(tl_exec_t *exec, int argc, char **argv)
{
    size_t prefix = strlen(argv[0]);
    int members = 0;
    for (size_t i = 0; i < tl__command_count; i++)
        if (strncmp(tl__commands[i]->name, argv[0], prefix) == 0 &&
            tl__commands[i]->name[prefix] == ' ')
            members++;
    if (members == 0)
        return 0;
    int help = tl_cli_wants_help(argc, argv, 1, -1, NULL);
    if (!help && argc > 1)
        return 0; /* "ticket bogus": an unknown command */
    char *bytes = NULL;
    size_t len = 0;
    FILE *text = open_memstream(&bytes, &len);
    if (text != NULL) {
        if (!help)
            fprintf(text, "tierline: '%s' needs one of its commands:\n", argv[0]);
        for (size_t i = 0; i < tl__command_count; i++)
            if (strncmp(tl__commands[i]->name, argv[0], prefix) == 0 &&
                tl__commands[i]->name[prefix] == ' ')
                fprintf(text, "usage: %-40s %s\n", tl__commands[i]->usage,
                        tl__commands[i]->summary);
        fprintf(text, "'%s COMMAND --help' explains one.\n", argv[0]);
    }
    tl__cmd_finish_with(exec, text, &bytes, &len, help ? 0 : 2);
    return 1;
}
