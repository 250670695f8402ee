/*
 * The relay's command tables (relay/cmd): the technicians' SSH commands and
 * the admins' tierline-relay commands, read by their declarative specs with
 * the shared parser (proto/cli.h). The tables must agree with their usage
 * lines, and command lines must give what docs/technicians.md promises,
 * word for word in the errors.
 */
#include "tl_test.h"

#include "proto/roles.h"
#include "relay/cmd/admin.h"
#include "relay/cmd/cmd_int.h"

#include <stdlib.h>

static const tl_admin_command_t *const admin_commands[] = {
    &tl_admin_init,         &tl_admin_enroll_code, &tl_admin_host_key,      &tl_admin_devices,
    &tl_admin_tickets,      &tl_admin_ticket,      &tl_admin_user,          &tl_admin_roles,
    &tl_admin_audit_verify, &tl_admin_status,      &tl_admin_audit_recover, &tl_admin_evidence,
};

#define ADMIN_COUNT (sizeof admin_commands / sizeof admin_commands[0])

/* Whether the usage line names --option (as a word of its own). */
static int usage_names(const char *usage, const char *option)
{
    size_t len = strlen(option);
    for (const char *at = strstr(usage, option); at != NULL; at = strstr(at + 1, option)) {
        char before = at == usage ? ' ' : at[-1];
        char after = at[len];
        if ((before == ' ' || before == '[' || before == '|') &&
            (after == '\0' || after == ' ' || after == ']' || after == '|'))
            return 1;
    }
    return 0;
}

/* How many "--word" options the usage line names (each once). */
static int usage_option_count(const char *usage)
{
    int count = 0;
    char seen[16][40];
    for (const char *at = strstr(usage, "--"); at != NULL; at = strstr(at + 2, "--")) {
        size_t len = 2;
        while ((at[len] >= 'a' && at[len] <= 'z') || at[len] == '-')
            len++;
        if (len == 2 || (at != usage && at[-1] != ' ' && at[-1] != '['))
            continue;
        int repeat = 0;
        for (int i = 0; i < count; i++)
            repeat |= strlen(seen[i]) == len && strncmp(seen[i], at, len) == 0;
        if (!repeat && count < 16)
            snprintf(seen[count++], sizeof seen[0], "%.*s", (int)len, at);
    }
    return count;
}

/* The options of spec that --help lists are exactly those of the usage line. */
static void assert_usage_matches_spec(const char *name, const char *usage,
                                      const tl_cli_spec_t *spec)
{
    int listed = 0;
    char option[64];
    for (const tl_cli_arg_t *arg = spec->options; arg != NULL && arg->name != NULL; arg++) {
        if (arg->help == NULL)
            continue;
        snprintf(option, sizeof option, "--%s", arg->name);
        if (!usage_names(usage, option))
            fail_msg("%s: --help lists %s, its usage line does not: %s", name, option, usage);
        listed++;
    }
    if (listed != usage_option_count(usage))
        fail_msg("%s: the usage line names %d options, --help lists %d: %s", name,
                 usage_option_count(usage), listed, usage);
}

static void test_usage_lines_name_the_options_help_lists(void **state)
{
    (void)state;
    for (size_t i = 0; i < tl__command_count; i++)
        assert_usage_matches_spec(tl__commands[i]->name, tl__commands[i]->usage,
                                  &tl__commands[i]->args);
    for (size_t i = 0; i < ADMIN_COUNT; i++)
        assert_usage_matches_spec(admin_commands[i]->name, admin_commands[i]->usage,
                                  admin_commands[i]->args);
}

/* A value the parser checks is always refused in words, never by the usage line alone. */
static void assert_checked_values_are_named(const char *name, const tl_cli_spec_t *spec)
{
    for (const tl_cli_arg_t *arg = spec->options; arg != NULL && arg->name != NULL; arg++) {
        int checked = arg->kind != TL_CLI_TEXT || arg->max > 0;
        if (arg->metavar != NULL && checked && arg->problem == NULL)
            fail_msg("%s: --%s refuses values without saying why", name, arg->name);
    }
    /* The parser can hold every spec. */
    tl_cli_error_t error;
    char *none[1] = {NULL};
    if (tl_cli_args_parse(spec, 0, none, NULL, &error) != 0 && error.code == TL_CLI_SPEC)
        fail_msg("%s: the spec is beyond the parser's limits", name);
}

static void test_every_checked_value_has_its_problem(void **state)
{
    (void)state;
    for (size_t i = 0; i < tl__command_count; i++)
        assert_checked_values_are_named(tl__commands[i]->name, &tl__commands[i]->args);
    for (size_t i = 0; i < ADMIN_COUNT; i++)
        assert_checked_values_are_named(admin_commands[i]->name, admin_commands[i]->args);
}

static void test_every_command_is_found_by_its_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < tl__command_count; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", tl__commands[i]->name);
        char *words[3] = {name, NULL, "T-1"};
        char *space = strchr(name, ' ');
        int count = 1, used = 0;
        if (space != NULL) {
            *space = '\0';
            words[1] = space + 1;
            count = 2;
        } else {
            words[1] = "T-1";
        }
        assert_ptr_equal(tl__command_lookup(count + 1, words, &used), tl__commands[i]);
        assert_int_equal(used, count);
        /* Its example is a line of itself. */
        assert_int_equal(
            strncmp(tl__commands[i]->example, tl__commands[i]->name, strlen(tl__commands[i]->name)),
            0);
    }
}

/* ---- the technicians' command lines ----------------------------------------------------- */

/* Parses line (words separated by single spaces) as the dispatcher does, for tech as tier3. */
static int ssh_parse(const char *line, struct cmd **out, char **error_text)
{
    static char buffer[8192];
    char *words[TL_EXEC_MAX_WORDS];
    int argc = 0;
    snprintf(buffer, sizeof buffer, "%s", line);
    for (char *word = strtok(buffer, " "); word != NULL; word = strtok(NULL, " "))
        words[argc++] = strcmp(word, "''") == 0 ? "" : word;
    int used = 0;
    const struct tl__command *command = tl__command_lookup(argc, words, &used);
    assert_non_null(command);
    struct cmd *cmd = calloc(1, sizeof *cmd);
    cmd->command = command;
    snprintf(cmd->tech.name, sizeof cmd->tech.name, "carol");
    cmd->role = tl_role_parse("tier3");
    cmd->filter.tier = -1;
    tl_cli_error_t error;
    int rc = tl_cli_args_parse(&command->args, argc - used, words + used, cmd, &error);
    if (rc == 0 && command->prepare != NULL && command->session_kind != TL_SESSION_JOIN)
        rc = command->prepare(cmd);
    *error_text = NULL;
    if (rc != 0 && error.code != 0) {
        size_t len = 0;
        FILE *text = open_memstream(error_text, &len);
        tl__cmd_write_usage_error(text, command, &error);
        fclose(text);
    }
    *out = cmd;
    return rc;
}

static void assert_ssh_refused(const char *line, const char *expected)
{
    struct cmd *cmd;
    char *text;
    if (ssh_parse(line, &cmd, &text) == 0)
        fail_msg("'%s' parsed; expected:\n%s", line, expected);
    if (text == NULL || strcmp(text, expected) != 0)
        fail_msg("'%s': expected\n%s\ngot\n%s", line, expected, text ? text : "(nothing)");
    free(text);
    free(cmd);
}

static struct cmd *ssh_parsed(const char *line)
{
    struct cmd *cmd;
    char *text;
    if (ssh_parse(line, &cmd, &text) != 0)
        fail_msg("'%s' was refused:\n%s", line, text ? text : "(by prepare)");
    return cmd;
}

#define TICKETS_USAGE                                                                              \
    "usage: tickets [--tier N] [--status S] [--assignee NAME] [--mine] [--unassigned] "            \
    "[--breaching] [--follow-up-due] [--json]\n"
#define TAKE_USAGE "usage: ticket take T-N [--steal REASON]\n"
#define ASSIGN_USAGE "usage: ticket assign T-N USER [--reason TEXT]\n"
#define CLASSIFY_USAGE                                                                             \
    "usage: ticket classify T-N [--severity S1..S4] [--category C] --reason TEXT\n"
#define RUN_USAGE "usage: run T-N [--reason TEXT] [--for DURATION] -- COMMAND [ARGS...]\n"
#define FIX_USAGE "usage: fix T-N RUNBOOK [NAME=VALUE...] [--reason TEXT] [--for DURATION]\n"

static void test_ssh_bad_lines_are_refused_in_their_words(void **state)
{
    (void)state;
    assert_ssh_refused("tickets --tier 9",
                       "tierline: --tier wants 0, 1, 2, 3 or 4, or all\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --tier 04",
                       "tierline: --tier wants 0, 1, 2, 3 or 4, or all\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --tier",
                       "tierline: --tier wants 0, 1, 2, 3 or 4, or all\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --tier ALL",
                       "tierline: --tier wants 0, 1, 2, 3 or 4, or all\n" TICKETS_USAGE);
    assert_ssh_refused(
        "tickets --status pending",
        "tierline: --status wants new, open, waiting-user, waiting-vendor, resolved, "
        "closed or reopened, or all\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --assignee Bob",
                       "tierline: --assignee wants an account name (1-64 of a-z 0-9 . _ -, "
                       "starting with a letter)\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --bogus", "tierline: unknown option '--bogus'\n" TICKETS_USAGE);
    assert_ssh_refused("tickets -x", "tierline: unknown option '-x'\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --", "tierline: unknown option '--'\n" TICKETS_USAGE);
    assert_ssh_refused("tickets extra", "tierline: unexpected argument 'extra'\n" TICKETS_USAGE);
    /* The first bad word on the line is the one named. */
    assert_ssh_refused("tickets --bogus --tier 9",
                       "tierline: unknown option '--bogus'\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --tier 9 --bogus",
                       "tierline: --tier wants 0, 1, 2, 3 or 4, or all\n" TICKETS_USAGE);
    assert_ssh_refused("tickets --breaching=yes",
                       "tierline: unknown option '--breaching=yes'\n" TICKETS_USAGE);
    /* Taking over, assigning and classifying: a reason where one is owed, values named. */
    assert_ssh_refused(
        "ticket take T-1 --steal",
        "tierline: --steal needs a reason: a reason is 1 to 4000 bytes of text\n" TAKE_USAGE);
    assert_ssh_refused(
        "ticket take T-1 --steal ''",
        "tierline: --steal needs a reason: a reason is 1 to 4000 bytes of text\n" TAKE_USAGE);
    assert_ssh_refused("ticket take T-1 --steal \xff",
                       "tierline: the reason is not valid UTF-8\n" TAKE_USAGE);
    assert_ssh_refused("ticket take T-1 bob", TAKE_USAGE);
    assert_ssh_refused("ticket assign T-1",
                       "tierline: USER wants an account name (1-64 of a-z 0-9 . _ -, starting "
                       "with a letter)\n" ASSIGN_USAGE);
    assert_ssh_refused("ticket assign T-1 Bob",
                       "tierline: USER wants an account name (1-64 of a-z 0-9 . _ -, starting "
                       "with a letter)\n" ASSIGN_USAGE);
    assert_ssh_refused("ticket assign T-1 bob --reason ''",
                       "tierline: --reason needs a text of 1 to 4000 bytes\n" ASSIGN_USAGE);
    assert_ssh_refused(
        "ticket classify T-1 --reason why",
        "tierline: say what changes: --severity, --category or both\n" CLASSIFY_USAGE);
    assert_ssh_refused("ticket classify T-1 --severity S2",
                       "tierline: --reason TEXT is required: say why\n" CLASSIFY_USAGE);
    assert_ssh_refused("ticket classify T-1 --severity S5 --reason why",
                       "tierline: --severity wants S1, S2, S3 or S4\n" CLASSIFY_USAGE);
    assert_ssh_refused("ticket classify T-1 --severity 2 --reason why",
                       "tierline: --severity wants S1, S2, S3 or S4\n" CLASSIFY_USAGE);
    assert_ssh_refused("ticket classify T-1 --category floppy --reason why",
                       "tierline: --category wants account, network, printing, disk, "
                       "performance, application, hardware, security or other\n" CLASSIFY_USAGE);
    assert_ssh_refused("devices --all", "usage: devices [--json]\n");
    /* A long word is named by its first 60 bytes. */
    assert_ssh_refused(
        "tickets "
        "--xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxx",
        "tierline: unknown option "
        "'--xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n" TICKETS_USAGE);
    /* Elsewhere a word out of place gets the usage line alone. */
    assert_ssh_refused("ticket show T-1 --bogus", "usage: ticket show T-N [--json]\n");
    assert_ssh_refused("ticket show T-1x", "usage: ticket show T-N [--json]\n");
    assert_ssh_refused("ticket show", "usage: ticket show T-N [--json]\n");
    assert_ssh_refused("whoami x", "usage: whoami [--json]\n");
    assert_ssh_refused("evidence get T-1 ABCDEF12", "usage: evidence get T-N SHA256-OR-PREFIX\n");
    assert_ssh_refused("evidence get T-1 abc", "usage: evidence get T-N SHA256-OR-PREFIX\n");
    assert_ssh_refused("runbooks T-1 --reason x", "usage: runbooks T-N [--json]\n");
    assert_ssh_refused("diag T-1 --",
                       "usage: diag T-N [--reason TEXT] [--for DURATION] [--json]\n");
    assert_ssh_refused("diag --reason x T-1",
                       "usage: diag T-N [--reason TEXT] [--for DURATION] [--json]\n");
    assert_ssh_refused("diag T-1 --for 5s",
                       "tierline: --for needs a duration from 1m to 24h, e.g. 15m, 1h, 1h30m\n"
                       "usage: diag T-N [--reason TEXT] [--for DURATION] [--json]\n");
    assert_ssh_refused("diag T-1 --reason ''",
                       "tierline: --reason needs a text of 1 to 1024 bytes\n"
                       "usage: diag T-N [--reason TEXT] [--for DURATION] [--json]\n");
    assert_ssh_refused("run T-1", "tierline: run needs a command after the ticket: run T-N -- "
                                  "COMMAND [ARGS...]\n" RUN_USAGE);
    assert_ssh_refused("run T-1 --reason",
                       "tierline: --reason needs a text of 1 to 1024 bytes\n" RUN_USAGE);
    assert_ssh_refused("run --reason x T-1 ls", RUN_USAGE);
    assert_ssh_refused("fix T-1", FIX_USAGE);
    assert_ssh_refused("fix T-1 Bad_Name",
                       "tierline: a runbook name is 1 to 48 of a-z, 0-9 and -\n" FIX_USAGE);
    assert_ssh_refused(
        "fix T-1 x lower=1",
        "tierline: runbook arguments are NAME=VALUE, NAME in A-Z, 0-9 and _\n" FIX_USAGE);
    assert_ssh_refused(
        "fix T-1 x --bogus",
        "tierline: runbook arguments are NAME=VALUE, NAME in A-Z, 0-9 and _\n" FIX_USAGE);
    assert_ssh_refused("fix T-1 x A=1 A=2",
                       "tierline: a runbook argument is given twice\n" FIX_USAGE);
    assert_ssh_refused("ticket note T-1", "usage: ticket note T-N [--from-vendor] TEXT...\n");
    assert_ssh_refused("ticket note T-1 ''", "usage: ticket note T-N [--from-vendor] TEXT...\n");
    assert_ssh_refused(
        "ticket note T-1 ok \xff",
        "tierline: the text is not valid UTF-8\nusage: ticket note T-N [--from-vendor] TEXT...\n");
    char line[4100];
    snprintf(line, sizeof line, "ticket note T-1 %04000d", 1);
    assert_ssh_refused(line, "usage: ticket note T-N [--from-vendor] TEXT...\n");
}

static void test_ssh_good_lines_fill_the_command(void **state)
{
    (void)state;
    struct cmd *cmd = ssh_parsed("tickets --tier 2 --status open --assignee alice --json");
    assert_int_equal(cmd->filter.tier, 2);
    assert_string_equal(cmd->filter.status, "open");
    assert_string_equal(cmd->filter.assignee, "alice");
    assert_int_equal(cmd->json, 1);
    free(cmd);
    /* --assignee and --mine: the last one wins. */
    cmd = ssh_parsed("tickets --assignee alice --mine");
    assert_string_equal(cmd->filter.assignee, "carol");
    free(cmd);
    cmd = ssh_parsed("tickets --mine --assignee alice");
    assert_string_equal(cmd->filter.assignee, "alice");
    free(cmd);
    cmd = ssh_parsed("tickets");
    assert_int_equal(cmd->filter.tier, -1);
    assert_null(cmd->filter.status);
    assert_null(cmd->filter.assignee);
    free(cmd);
    /* Every tier and status, and the queue's own filters. */
    cmd = ssh_parsed("tickets --tier all --status all --unassigned --breaching --follow-up-due");
    assert_int_equal(cmd->filter.tier, -2);
    assert_string_equal(cmd->status, "all");
    assert_null(cmd->filter.status);
    assert_int_equal(cmd->unassigned + cmd->breaching + cmd->follow_up_due, 3);
    free(cmd);
    cmd = ssh_parsed("tickets --status reopened");
    assert_string_equal(cmd->filter.status, "reopened");
    free(cmd);
    /* Nobody's tickets and someone's cannot both be asked for. */
    char *text = NULL;
    assert_int_not_equal(ssh_parse("tickets --mine --unassigned", &cmd, &text), 0);
    assert_string_equal(cmd->usage_error,
                        "--unassigned and --mine or --assignee exclude each other");
    free(cmd);
    cmd = ssh_parsed("ticket take T-4 --steal bob-is-away");
    assert_int_equal(cmd->ticket.id, 4);
    assert_string_equal(cmd->reason, "bob-is-away");
    free(cmd);
    cmd = ssh_parsed("ticket assign T-2 bob --reason printers");
    assert_string_equal(cmd->account, "bob");
    assert_string_equal(cmd->reason, "printers");
    free(cmd);
    cmd = ssh_parsed("ticket classify T-3 --severity s1 --category disk --reason x");
    assert_int_equal(cmd->severity, 1);
    assert_string_equal(cmd->category, "disk");
    assert_string_equal(cmd->reason, "x");
    free(cmd);
    /* --json anywhere before a "--", also among the words of a note. */
    cmd = ssh_parsed("ticket note T-12 the --json queue -- --json");
    assert_int_equal(cmd->ticket.id, 12);
    assert_string_equal(cmd->ticket.text, "T-12");
    assert_string_equal(cmd->text.text, "the queue -- --json");
    assert_int_equal(cmd->json, 1);
    free(cmd);
    cmd = ssh_parsed("evidence get T-3 0123abcd");
    assert_string_equal(cmd->hash, "0123abcd");
    free(cmd);
    cmd = ssh_parsed("run T-1 --reason why --for 1h30m -- ls -l --reason");
    assert_string_equal(cmd->session.reason, "why");
    assert_int_equal(cmd->session.duration_s, 5400);
    assert_int_equal(cmd->session.kind, TL_SESSION_RUN);
    assert_string_equal(cmd->session.ticket, "T-1");
    assert_int_equal(cmd->session.argc, 3);
    assert_string_equal(cmd->session.argv[0], "ls");
    assert_string_equal(cmd->session.argv[2], "--reason");
    free(cmd);
    /* The command starts at the first word that is not ours. */
    cmd = ssh_parsed("run T-1 --version --for 2m");
    assert_int_equal(cmd->session.argc, 3);
    assert_string_equal(cmd->session.argv[0], "--version");
    assert_int_equal(cmd->session.duration_s, 0);
    free(cmd);
    cmd = ssh_parsed("fix T-1 flush-dns B=2 --reason r C=3");
    assert_string_equal(cmd->session.runbook, "flush-dns");
    assert_string_equal(cmd->session.reason, "r");
    assert_int_equal(cmd->session.argc, 2);
    assert_string_equal(cmd->session.argv[1], "C=3");
    free(cmd);
    cmd = ssh_parsed("join T-1 --observe --for 90");
    assert_int_equal(cmd->session.observe, 1);
    assert_int_equal(cmd->session.duration_s, 90);
    free(cmd);
}

static void test_ssh_help_is_written_from_the_spec(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    tl_cli_spec_help_write(out, NULL, tl__cmd_run.usage, tl__cmd_run.summary, &tl__cmd_run.args,
                           tl__cmd_run.example);
    fclose(out);
    assert_string_equal(
        text, "usage: run T-N [--reason TEXT] [--for DURATION] -- COMMAND [ARGS...]\n"
              "\n"
              "run a command on the machine\n"
              "\n"
              "Options:\n"
              "  --reason TEXT   what the user is shown as the reason (default: the command "
              "itself)\n"
              "  --for DURATION  how long the grant should last, 1m..24h: 90s, 15m, 1h30m\n"
              "  --              the end of run's options: what follows is the command\n"
              "  -h, --help      show this help and do nothing else\n"
              "\n"
              "Example:\n"
              "  run T-1 -- systemctl status cups\n");
    free(text);
}

/* ---- the admins' command lines ---------------------------------------------------------- */

static void assert_admin_refused(const tl_admin_command_t *cmd, const char *line,
                                 const char *expected)
{
    static char buffer[1024];
    char *words[32];
    int argc = 0;
    snprintf(buffer, sizeof buffer, "%s", line);
    for (char *word = strtok(buffer, " "); word != NULL; word = strtok(NULL, " "))
        words[argc++] = word;
    union {
        char bytes[1024];
        void *align;
    } result = {{0}};
    tl_cli_error_t error;
    if (tl_cli_args_parse(cmd->args, argc, words, &result, &error) == 0)
        fail_msg("%s %s parsed; expected:\n%s", cmd->name, line, expected);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    tl_cli_error_write(out, TL_ADMIN_PROGRAM, cmd->name, cmd->usage, cmd->args, &error);
    fclose(out);
    if (strcmp(text, expected) != 0)
        fail_msg("%s %s: expected\n%s\ngot\n%s", cmd->name, line, expected, text);
    free(text);
}

static void test_admin_bad_lines_are_refused_in_their_words(void **state)
{
    (void)state;
    assert_admin_refused(&tl_admin_tickets, "--data /d --tier 5",
                         "tierline-relay tickets: --tier wants 0, 1, 2, 3 or 4, not '5'\n");
    assert_admin_refused(&tl_admin_tickets, "--data /d --status pending --tier 9",
                         "tierline-relay tickets: --tier wants 0, 1, 2, 3 or 4, not '9'\n");
    assert_admin_refused(&tl_admin_tickets, "--data /d --tier 9 --mine",
                         "tierline-relay tickets: unknown option '--mine'\n"
                         "usage: tierline-relay tickets [--data DIR] [--tier N] [--status S] "
                         "[--assignee NAME] [--json]\n");
    assert_admin_refused(&tl_admin_enroll_code, "--data /d --count 0 --ttl soon",
                         "tierline-relay enroll-code: bad --ttl 'soon' (like 90s, 15m, 2h; at "
                         "most 30d)\n");
    assert_admin_refused(&tl_admin_enroll_code, "--data /d --count 10001",
                         "tierline-relay enroll-code: bad --count '10001' (1 to 10000 codes)\n");
    assert_admin_refused(&tl_admin_enroll_code, "--data /d --json --count",
                         "tierline-relay enroll-code: missing value for '--count'\n"
                         "usage: tierline-relay enroll-code [--data DIR] [--ttl DURATION] [--note "
                         "TEXT] [--address HOST:PORT] [--count N] [--json]\n");
    assert_admin_refused(&tl_admin_init, "--data /d --ssh-listen nowhere",
                         "tierline-relay init: bad --ssh-listen 'nowhere' (want ADDR:PORT)\n");
    assert_admin_refused(&tl_admin_host_key, "--data /d --known-hosts nohostport",
                         "tierline-relay host-key: --known-hosts wants HOST:PORT, got "
                         "'nohostport'\nusage: tierline-relay host-key [--data DIR] [--known-hosts "
                         "HOST:PORT | --pem] [--json]\n");
    assert_admin_refused(&tl_admin_ticket, "--data /d show",
                         "tierline-relay ticket: want 'show T-N'\n"
                         "usage: tierline-relay ticket show T-N [--data DIR] [--json]\n");
    assert_admin_refused(&tl_admin_ticket, "--data /d list T-1",
                         "tierline-relay ticket: want 'show T-N'\n"
                         "usage: tierline-relay ticket show T-N [--data DIR] [--json]\n");
    assert_admin_refused(&tl_admin_ticket, "--data /d show T-1 extra",
                         "tierline-relay ticket: unexpected argument 'extra'\n"
                         "usage: tierline-relay ticket show T-N [--data DIR] [--json]\n");
    assert_admin_refused(&tl_admin_evidence, "--data /d",
                         "usage: tierline-relay evidence verify [--data DIR] [--json]\n");
    assert_admin_refused(&tl_admin_evidence, "check --data /d",
                         "usage: tierline-relay evidence verify [--data DIR] [--json]\n");
    assert_admin_refused(
        &tl_admin_audit_verify, "--json --bogus --data /d",
        "tierline-relay audit-verify: unknown option '--bogus'\n"
        "usage: tierline-relay audit-verify [--data DIR] [--checkpoint FILE] [--key "
        "VKEY] [--json]\n");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_usage_lines_name_the_options_help_lists),
    cmocka_unit_test(test_every_checked_value_has_its_problem),
    cmocka_unit_test(test_every_command_is_found_by_its_name),
    cmocka_unit_test(test_ssh_bad_lines_are_refused_in_their_words),
    cmocka_unit_test(test_ssh_good_lines_fill_the_command),
    cmocka_unit_test(test_ssh_help_is_written_from_the_spec),
    cmocka_unit_test(test_admin_bad_lines_are_refused_in_their_words),
};

TL_TEST_MAIN(tests)
