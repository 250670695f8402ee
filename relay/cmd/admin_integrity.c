/*
 * How a relay is doing, and its way back: status (is it serving, is its
 * audit log written, relay/store/status.h), audit-recover (a new audit
 * segment that records a lost or damaged log) and evidence verify (every
 * evidence item re-hashed), both relay/store/integrity.h.
 */
#include "relay/cmd/admin_int.h"

#include "relay/store/integrity.h"
#include "relay/store/status.h"

/* Each of these is a report of relay/store's, after --data DIR and --json. */
typedef int (*report_fn)(const char *data, int json, FILE *out, FILE *err);

static int run_report(const tl_admin_command_t *cmd, int argc, char **argv, report_fn report)
{
    struct tl__admin_data_json args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    return status != 0 ? status : report(args.data, args.json, stdout, stderr);
}

static int cmd_status(const tl_admin_command_t *cmd, int argc, char **argv)
{
    return run_report(cmd, argc, argv, tl_status_report);
}

const tl_admin_command_t tl_admin_status = {
    .name = "status",
    .usage = "status [--data DIR] [--json]",
    .summary = "is a relay serving, is its audit log written (chain head, entries waiting)",
    .args =
        TL__ADMIN_DATA_JSON("an object: serving, audit (healthy, problem, source, since), head "
                            "(seq, hash), log (seq, hash, tail_bytes, or error), pending (outbox, "
                            "oldest, legacy), and pid, started while serving"),
    .run = cmd_status,
    .example = "tierline-relay status --data /var/lib/tierline\n",
};

static int cmd_audit_recover(const tl_admin_command_t *cmd, int argc, char **argv)
{
    return run_report(cmd, argc, argv, tl_integrity_audit_recover);
}

const tl_admin_command_t tl_admin_audit_recover = {
    .name = "audit-recover",
    .usage = "audit-recover [--data DIR] [--json]",
    .summary = "start a new audit segment that records a lost or damaged log, so serve can start "
               "again",
    .args = TL__ADMIN_DATA_JSON("an object: recovered, and entry (what the audit.recover entry "
                                "records) or found"),
    .run = cmd_audit_recover,
    .example = "tierline-relay audit-recover --data /var/lib/tierline\n",
};

static const char *const verify[] = {"verify", NULL};

static int cmd_evidence(const tl_admin_command_t *cmd, int argc, char **argv)
{
    return run_report(cmd, argc, argv, tl_integrity_evidence_verify);
}

const tl_admin_command_t tl_admin_evidence = {
    .name = "evidence",
    .usage = "evidence verify [--data DIR] [--json]",
    .summary = "re-hash every evidence item; list the damaged ones and their tickets (exit 1 if "
               "any)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct tl__admin_data_json, "the relay's folder"),
                    TL__ADMIN_JSON(
                        struct tl__admin_data_json,
                        "an object: checked, damaged, missing (each item: sha256, tickets, "
                        "reason)"),
                    {0}},
            .positionals =
                (const tl_cli_arg_t[]){{.name = "verify", .kind = TL_CLI_WORD, .words = verify},
                                       {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_evidence,
    .example = "tierline-relay evidence verify --data /var/lib/tierline\n",
};
