/*
 * A large audit log for the benchmarks (bench/audit_search.c, bench/audit_verify.c), written with
 * the relay's own line format (relay/store/audit.h): a desk's mix of logins, notes, sessions with
 * commands, evidence and resolutions, chained as the relay chains them.
 */
#ifndef TL_BENCH_AUDIT_LOG_H
#define TL_BENCH_AUDIT_LOG_H

/* Writes entries lines at path; 0, or -1 when it cannot. */
int tl_bench_audit_log_write(const char *path, long entries);
/* A monotonic clock, in milliseconds. */
double tl_bench_now_ms(void);

#endif
