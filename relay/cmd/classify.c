/*
 * ticket classify: a technician sets a ticket's severity and/or category, with a reason
 * (relay/desk/triage.h, docs/desk.md "Queues, assignment and SLA wiring"). The change goes into
 * the ticket's history, so the SLA clocks take the new severity's targets; later proposals from
 * diagnostics leave what a technician chose alone.
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "proto/text.h"
#include "relay/desk/classify.h"
#include "relay/desk/triage.h"

#include <stdio.h>
#include <string.h>

#define CATEGORY_WORDS                                                                             \
    "account, network, printing, disk, performance, application, hardware, security or other"

/* --severity S1..S4 (s1..s4 too): int. */
static int kind_severity(const char *word, void *out, const char **problem)
{
    int severity;
    if (strlen(word) != 2 || tl_classify_severity_parse(word, &severity) != 0)
        return TL_EINVAL;
    if (out != NULL)
        *(int *)out = severity;
    return 0;
}

/* --category NAME: const char *. */
static int kind_category(const char *word, void *out, const char **problem)
{
    enum tl_category category;
    if (tl_classify_category_parse(word, &category) != 0)
        return TL_EINVAL;
    if (out != NULL)
        *(const char **)out = tl_classify_category_name(category);
    return 0;
}

static int classify_finish(void *result, const char **problem)
{
    struct cmd *cmd = result;
    if (cmd->severity == 0 && cmd->category == NULL) {
        *problem = "say what changes: --severity, --category or both";
        return TL_EINVAL;
    }
    if (cmd->reason == NULL) {
        *problem = "--reason TEXT is required: say why";
        return TL_EINVAL;
    }
    if (!tl_text_utf8_valid(cmd->reason, strlen(cmd->reason))) {
        *problem = "the reason is not valid UTF-8";
        return TL_EINVAL;
    }
    return 0;
}

static int work_ticket_classify(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    json_t *t = NULL;
    int rc = tl__cmd_load_visible_ticket(cmd, ctx, err, &t);
    if (rc == 0)
        rc = tl__cmd_still_active(cmd, t, err);
    json_decref(t);
    if (rc != 0)
        return rc;
    char actor[96];
    tl__cmd_actor(cmd, actor);
    rc = tl_triage_set(ctx, cmd->ticket.id, cmd->severity, cmd->category, cmd->reason, actor,
                       tl_wall_ms());
    if (rc != 0) {
        fprintf(err, "tierline: %s\n", tl_strerror(rc));
        return rc;
    }
    fprintf(out, "%s classified:", cmd->ticket.text);
    if (cmd->severity != 0)
        fprintf(out, " severity S%d", cmd->severity);
    if (cmd->category != NULL)
        fprintf(out, "%s category %s", cmd->severity != 0 ? "," : "", cmd->category);
    fprintf(out, "\n");
    return 0;
}

const struct tl__command tl__cmd_ticket_classify = {
    .name = "ticket classify",
    .usage = "ticket classify T-N [--severity S1..S4] [--category C] --reason TEXT",
    .summary = "set a ticket's severity and/or category, saying why (proposals leave it then)",
    .capability = TL_CAP_TICKET_CLASSIFY,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "severity",
                      .metavar = "S1..S4",
                      .help = "S1 (most urgent) .. S4 (docs/desk.md \"Categories and "
                              "severities\")",
                      .kind = TL_CLI_CHECK,
                      .check = kind_severity,
                      .out = TL_CLI_AT(struct cmd, severity),
                      .problem = "--severity wants S1, S2, S3 or S4"},
                     {.name = "category",
                      .metavar = "C",
                      .help = CATEGORY_WORDS,
                      .kind = TL_CLI_CHECK,
                      .check = kind_category,
                      .out = TL_CLI_AT(struct cmd, category),
                      .problem = "--category wants " CATEGORY_WORDS},
                     {.name = "reason",
                      .metavar = "TEXT",
                      .help = "why (required): recorded on the timeline and in the audit log",
                      .kind = TL_CLI_TEXT,
                      .min = 1,
                      .max = TL_NOTE_MAX,
                      .out = TL_CLI_AT(struct cmd, reason),
                      .problem = "--reason needs a text of 1 to 4000 bytes"},
                     TL__CMD_JSON(NULL),
                     {0}},
             .positionals = (const tl_cli_arg_t[]){{.name = "T-N",
                                                    .kind = TL_CLI_CHECK,
                                                    .check = tl__kind_ticket,
                                                    .out = TL_CLI_AT(struct cmd, ticket)},
                                                   {0}},
             .flags = TL_CLI_IN_ORDER,
             .finish = classify_finish},
    .example = "ticket classify T-1 --severity S2 --reason \"the whole floor is affected\"\n",
    .work = work_ticket_classify,
};
