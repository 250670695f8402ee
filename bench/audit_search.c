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
#include "relay/store/audit.h"
#include "relay/store/audit_query.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *const people[] = {"alice", "bob", "carol", "dave", "erin", "frank"};

static int write_log(const char *path, long entries)
{
    FILE *log = fopen(path, "w");
    if (log == NULL)
        return -1;
    const char *prev = "0000000000000000000000000000000000000000000000000000000000000000";
    char last[TL_AUDIT_HASH_HEX];
    int rc = 0;
    for (long i = 0; i < entries && rc == 0; i++) {
        char time[32], actor[64], subject[32], grant[32];
        long day = i / 40000, second = (i % 40000) * 2;
        snprintf(time, sizeof time, "2026-%02ld-%02ldT%02ld:%02ld:%02ld.000Z", 1 + day / 28 % 12,
                 1 + day % 28, second / 3600 % 24, second / 60 % 60, second % 60);
        snprintf(actor, sizeof actor, "tech:%s", people[i % 6]);
        snprintf(subject, sizeof subject, "T-%ld", 1 + i / 12);
        snprintf(grant, sizeof grant, "G-%ld", 1 + i / 12);
        json_t *details;
        const char *action;
        switch (i % 6) {
        case 0:
            action = "login.ok";
            details = json_pack("{s:s, s:s}", "address", "10.1.2.3", "key", "SHA256:abc");
            subject[0] = '\0';
            break;
        case 1:
            action = "ticket.note";
            details = json_pack("{s:s, s:i}", "ticket", subject, "length", 120);
            break;
        case 2:
            action = "session.start";
            details = json_pack("{s:s, s:s, s:s, s:[s, s, s]}", "type", "run", "device", "D-17",
                                "grant", grant, "argv", "journalctl", "-u",
                                i % 600 == 2 ? "cups; rm -rf /tmp/spool" : "cups");
            break;
        case 3:
            action = "evidence.store";
            details = json_pack("{s:s, s:I, s:s}", "sha256",
                                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                                "size", (json_int_t)4096, "kind", "diagnostics");
            break;
        case 4:
            action = "session.end";
            details = json_pack("{s:s, s:s, s:s}", "type", "run", "device", "D-17", "grant", grant);
            break;
        default:
            action = "ticket.resolve";
            details = json_pack("{s:s}", "ticket", subject);
            break;
        }
        char *line = NULL;
        size_t len = 0;
        rc = details != NULL ? tl_audit_format_line((uint64_t)i + 1, time, actor, action, subject,
                                                    details, prev, &line, &len)
                             : -1;
        json_decref(details);
        if (rc == 0 && fwrite(line, 1, len, log) != len)
            rc = -1;
        if (rc == 0 &&
            (rc = tl_audit_line_links(line, len, last, (char[TL_AUDIT_HASH_HEX]){0})) == 0)
            prev = last;
        free(line);
    }
    if (fclose(log) != 0)
        rc = -1;
    return rc;
}

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
    double start = now_ms();
    if (write_log(path, entries) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        return 1;
    }
    double written = now_ms() - start;
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
        double t0 = now_ms();
        int rc = tl_audit_search(path, &searches[i].query, &hits, &report);
        double took = now_ms() - t0;
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
