/*
 * What `tierline-relay status` reports, and how it learns it from a live relay.
 *
 * A serving relay holds an exclusive flock on DATA/relay.lock for as long as it runs (the kernel
 * drops it when the process ends, however it ends), so "is a relay serving this directory?" is
 * a lock probe, never a stale pid. It also keeps DATA/relay.state, a small JSON file its storage
 * worker rewrites atomically (temporary file, rename) at start and whenever the audit log's
 * health changes: {"pid", "started", "updated", "audit": {"failing", "problem", "since"}}.
 * Everything else status shows is read from where it is kept: the chain head and the lines
 * waiting for the log from the store, the log's last entry from the log. Without a serving
 * relay, status judges the log itself, as `serve` would at start.
 */
#ifndef TL_STATUS_H
#define TL_STATUS_H

#include <jansson.h>
#include <stdio.h>

/* serve: takes DATA/relay.lock; TL_EEXIST if another relay serves data_dir. The descriptor stays
 * open (close-on-exec) until the process ends. */
int tl_status_lock(const char *data_dir, int *fd_out);
/* 1 if a relay serves data_dir now, 0 if not, negative on error. */
int tl_status_serving(const char *data_dir);
/* Writes state to path atomically: a temporary file beside it, then rename. */
int tl_status_write(const char *path, json_t *state);
/*
 * The status command: what the relay at data_dir is doing and whether its audit log is healthy,
 * as text or (json) one JSON object, on out; errors on err. Returns the exit status: 0 when the
 * audit log is healthy, 1 when it is failing (or would be refused at start), 2 when the data
 * directory cannot be read.
 */
int tl_status_report(const char *data_dir, int json, FILE *out, FILE *err);

#endif
