/*
 * Test helper for the audit cross-check (tests/integ/audit_verify.py): writes
 * a log with the relay's own code and runs the relay's verifier, printing one
 * machine-readable line the Python side compares with its own verdict.
 *
 *   audit_tool write PATH COUNT   appends COUNT entries (batches, reopens)
 *   audit_tool verify PATH        "ok entries=N last_hash=H partial=P" or
 *                                 "bad line=L seq=S category=C"; exit 0 or 1
 */
#include "proto/err.h"
#include "relay/store/audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_log(const char *path, unsigned long count)
{
    int rc = 0;
    tl_audit_t *audit = NULL;
    tl_audit_entry_t batch[7];
    unsigned long written = 0;
    unsigned batch_size = 1;

    while (written < count) {
        /* Reopening now and then exercises chain recovery from the file. */
        if (!audit || written % 50 < batch_size) {
            tl_audit_close(audit);
            rc = tl_audit_open(path, &audit);
            if (rc < 0)
                goto out;
        }
        size_t n = 0;
        for (; n < batch_size && written + n < count; n++) {
            unsigned long i = written + n;
            /* "note" first: the cross-check edits bytes just inside details. */
            batch[n] = (tl_audit_entry_t){
                .actor = i % 3 == 0 ? "relay" : "tech:zo\xc3\xab",
                .action = i % 2 ? "agent.connect" : "evidence.store",
                .subject = i % 5 ? "T-42" : "",
                .details =
                    json_pack("{s:s,s:I,s:{s:[i,f,b,n]},s:s}", "note",
                              "caf\xc3\xa9 \"quoted\" back\\slash /\t\x7f \xf0\x9f\x96\xa8", "i",
                              (json_int_t)i, "nested", "list", 1, 2.5, 1, "device", "D-7"),
            };
        }
        rc = tl_audit_append_batch(audit, batch, n);
        for (size_t j = 0; j < n; j++)
            json_decref(batch[j].details);
        if (rc < 0)
            goto out;
        written += n;
        batch_size = batch_size % 7 + 1;
    }
out:
    if (rc < 0)
        fprintf(stderr, "audit_tool: write failed: %s\n", tl_strerror(rc));
    tl_audit_close(audit);
    return rc < 0 ? 2 : 0;
}

static int verify_log(const char *path)
{
    tl_audit_report_t report;
    int rc = tl_audit_verify(path, &report);
    if (rc == 0) {
        printf("ok entries=%" PRIu64 " last_hash=%s partial=%" PRIu64 "\n", report.entries,
               report.last_hash, report.partial_tail_bytes);
        return 0;
    }
    if (rc != TL_EPROTO) {
        fprintf(stderr, "audit_tool: %s\n", report.reason);
        return 2;
    }
    /* The category is the reason's first word (docs/audit-format.md §6). */
    size_t category_len = strcspn(report.reason, ":");
    printf("bad line=%" PRIu64 " seq=%" PRIu64 " category=%.*s\n", report.bad_line, report.bad_seq,
           (int)category_len, report.reason);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "write") == 0)
        return write_log(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "verify") == 0)
        return verify_log(argv[2]);
    fprintf(stderr, "usage: audit_tool write PATH COUNT | verify PATH\n");
    return 2;
}
