/*
 * audit-verify: the audit log's hash chain checked from its first entry to
 * its last (relay/store/audit.h, docs/audit-format.md).
 */
#include "relay/cmd/admin_int.h"

#include "proto/err.h"
#include "relay/store/audit.h"
#include "relay/store/datadir.h"

static int cmd_audit_verify(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct tl__admin_data_json args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data;
    int json_out = args.json;
    char path[4096];
    if (tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path) != 0)
        return tl_admin_fail("audit-verify", TL_EINVAL);
    tl_audit_report_t report;
    int rc = tl_audit_verify(path, &report);
    if (json_out) {
        /* The verdict on stdout either way; the exit status says it too. */
        json_t *verdict = json_pack(
            "{s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:s?}", "ok", rc == 0, "verdict",
            rc == 0           ? "ok"
            : rc == TL_EPROTO ? "broken"
                              : "unreadable",
            "entries", (json_int_t)report.entries, "last_hash", report.last_hash, "bad_line",
            (json_int_t)report.bad_line, "bad_seq", (json_int_t)report.bad_seq,
            "partial_tail_bytes", (json_int_t)report.partial_tail_bytes, "reason",
            report.reason[0] != '\0' ? report.reason : NULL);
        status = verdict != NULL ? tl__admin_print_json(verdict)
                                 : tl_admin_fail("audit-verify", TL_ENOMEM);
        json_decref(verdict);
        if (status != TL_EXIT_OK)
            return status;
    } else {
        tl_audit_report_print(&report, rc, rc == 0 ? stdout : stderr);
    }
    return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

const tl_admin_command_t tl_admin_audit_verify = {
    .name = "audit-verify",
    .usage = "audit-verify --data DIR [--json]",
    .summary = "verify the audit log's hash chain",
    .args =
        TL__ADMIN_DATA_JSON("the verdict, an object: ok, verdict, entries, last_hash, bad_line, "
                            "bad_seq, partial_tail_bytes, reason (null if it verified)"),
    .run = cmd_audit_verify,
    .example = "tierline-relay audit-verify --data /var/lib/tierline\n",
};
