/*
 * audit search over a large log (docs/technicians.md "The audit log"): how long the relay's
 * storage worker spends answering one search of ENTRIES entries. The log is written here with
 * the relay's own line format (relay/store/audit.h), a mix of what a desk's log holds: logins,
 * tickets, notes, sessions with commands, evidence; the searches are the ones auditors make.
 *
 *     tierline-bench-audit-search [--entries N] [--dir DIR]
 *
 * Prints a Markdown section: each search's time and hits, against the target of 2 s for
 * 1,000,000 entries.
 */
#include "audit_log.h"
#include "relay/store/audit_query.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long entries = 1000000;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--entries") == 0)
            entries = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
    }
    if (entries < 1 || entries > 100000000) {
        fprintf(stderr, "usage: tierline-bench-audit-search [--entries N] [--dir DIR]\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tl-bench-audit-%d.log", dir, (int)getpid());
    double start = tl_bench_now_ms();
    if (tl_bench_audit_log_write(path, entries) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return 1;
    }
    double written = tl_bench_now_ms() - start;
    regex_t rm;
    char why[256];
    if (tl_audit_pattern_compile("rm -rf", &rm, why, sizeof why) != 0)
        return 1;
    char ticket[32];
    snprintf(ticket, sizeof ticket, "T-%ld", entries / 24);
    struct {
        const char *label;
        tl_audit_query_t query;
    } searches[] = {
        {"--ticket (one ticket, near the middle)", {.ticket = ticket, .limit = 100}},
        {"--actor carol --action session. (limit 10000)",
         {.actor = "carol", .action = "session.", .limit = 10000}},
        {"--command 'rm -rf' (only lines with a command parsed)", {.command = &rm, .limit = 10000}},
        {"--since 2026-01-10 --until 2026-01-10 (times compared unparsed)",
         {.since_ms = 1768003200000, .until_ms = 1768089599999, .limit = 10000}},
    };
    printf("## Audit search\n\n`tierline-bench-audit-search`: one search of a log of %ld entries "
           "(written in %.0f ms), on one core, as the storage worker runs it. Target: 1,000,000 "
           "entries in under 2 s.\n\n| search | time | hits | read |\n|---|---:|---:|---:|\n",
           entries, written);
    for (size_t i = 0; i < sizeof searches / sizeof searches[0]; i++) {
        tl_audit_search_report_t report;
        json_t *hits = NULL;
        double t0 = tl_bench_now_ms();
        int rc = tl_audit_search(path, &searches[i].query, &hits, &report);
        double took = tl_bench_now_ms() - t0;
        if (rc != 0) {
            fprintf(stderr, "search failed: %d\n", rc);
            break;
        }
        printf("| %s | %.0f ms | %llu%s | %llu |\n", searches[i].label, took,
               (unsigned long long)report.matched, report.more ? "+" : "",
               (unsigned long long)report.scanned);
        json_decref(hits);
    }
    regfree(&rm);
    unlink(path);
    return 0;
}
