/* A large audit log for the benchmarks (bench/audit_log.h). */
#include "audit_log.h"
#include "relay/store/audit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

double tl_bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *const people[] = {"alice", "bob", "carol", "dave", "erin", "frank"};

int tl_bench_audit_log_write(const char *path, long entries)
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
