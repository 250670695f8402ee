/*
 * report: the desk's report over SSH (docs/desk.md "Report"): per tier and severity, the
 * tickets opened, resolved and escalated in a period, their first responses and resolutions
 * against the SLA, the time their clocks stood paused and the breaches; then the known problems
 * by how many tickets they explain. As text, JSON or CSV (relay/desk/report.h).
 */
#include "relay/cmd/cmd_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "relay/desk/report_collect.h"
#include "relay/desk/vendor.h"

#include <stdint.h>
#include <stdio.h>

/* The period when none is given: the week up to now. */
#define DEFAULT_PERIOD_MS (7LL * 86400000)

/* --since DATE: a UTC date (from the start of that day) or time. */
static int kind_since(const char *word, void *out, const char **problem)
{
    (void)problem;
    return tl_vendor_date_parse(word, TL_VENDOR_DAY_START, out);
}

/* --until DATE: a UTC date (through the end of that day) or time. */
static int kind_until(const char *word, void *out, const char **problem)
{
    (void)problem;
    return tl_vendor_date_parse(word, TL_VENDOR_DAY_END, out);
}

static int report_prepare(struct cmd *cmd)
{
    if (cmd->json && cmd->csv) {
        cmd->usage_error = "--json and --csv: choose one";
        return TL_EINVAL;
    }
    if (cmd->until_ms == 0)
        cmd->until_ms = tl_wall_ms();
    if (cmd->since_ms == 0)
        cmd->since_ms = cmd->until_ms - DEFAULT_PERIOD_MS;
    if (cmd->since_ms >= cmd->until_ms) {
        cmd->usage_error = "--since must be before --until";
        return TL_EINVAL;
    }
    return 0;
}

static int work_report(struct cmd *cmd, tl_job_ctx_t *ctx, FILE *out, FILE *err)
{
    tl_report_data_t data;
    json_t *report = NULL;
    char why[256] = "";
    int rc = tl_report_collect(ctx->store, cmd->ctx->sla, cmd->since_ms, cmd->until_ms, &data, why,
                               sizeof why);
    if (rc == 0) {
        rc = tl_report_build(&data.input, &report, why, sizeof why);
        tl_report_data_free(&data);
    }
    if (rc == 0)
        rc = cmd->json  ? tl_report_write_json(report, out)
             : cmd->csv ? tl_report_write_csv(report, out)
                        : tl_report_write_text(report, out);
    if (rc != 0)
        fprintf(err, "tierline: report: %s%s%s\n", tl_strerror(rc), why[0] != '\0' ? ": " : "",
                why);
    json_decref(report);
    return rc;
}

const struct tl__command tl__cmd_report = {
    .name = "report",
    .usage = "report [--since DATE] [--until DATE] [--json | --csv]",
    .summary = "the desk's report: tickets, SLA and escalations by tier, known problems",
    .capability = TL_CAP_REPORT,
    .args = {.options =
                 (const tl_cli_arg_t[]){
                     {.name = "since",
                      .metavar = "DATE",
                      .help = "from this UTC date (its start) or time YYYY-MM-DDTHH:MMZ; "
                              "default: 7 days before --until",
                      .kind = TL_CLI_CHECK,
                      .check = kind_since,
                      .out = TL_CLI_AT(struct cmd, since_ms),
                      .problem = "--since: '%s' is not a date YYYY-MM-DD or a time "
                                 "YYYY-MM-DDTHH:MMZ (UTC)"},
                     {.name = "until",
                      .metavar = "DATE",
                      .help = "up to this UTC date (through its end) or time; default: now",
                      .kind = TL_CLI_CHECK,
                      .check = kind_until,
                      .out = TL_CLI_AT(struct cmd, until_ms),
                      .problem = "--until: '%s' is not a date YYYY-MM-DD or a time "
                                 "YYYY-MM-DDTHH:MMZ (UTC)"},
                     {.name = "csv",
                      .help = "CSV (RFC 4180): one line per tier and severity, then the "
                              "problems",
                      .out = TL_CLI_AT(struct cmd, csv)},
                     TL__CMD_JSON("an object: period, rows, total, problems (docs/desk.md "
                                  "\"Report\")"),
                     {0}},
             .flags = TL_CLI_IN_ORDER},
    .prepare = report_prepare,
    .work = work_report,
    .example = "report --since 2026-11-01 --until 2026-11-30 --csv > november.csv\n",
};
