/*
 * The relay's counters and gauges for monitoring, and their Prometheus text rendering
 * (text format 0.0.4; docs/metrics.md lists every one).
 *
 * One table per process, like the log's gate (proto/log.h): the counters are touched by many
 * modules of every layer (net, sessions, the storage worker), so the module sits in the lowest
 * layer and holds no pointer to any of them; each place that counts calls one function here.
 *
 * Threads. Most counters are plain integers touched only on the loop thread (agents, enrollments,
 * sessions, bytes, consent, the desk's cached gauges). What the storage worker's thread touches
 * (audit entries written, checkpoint lag, jobs submitted, jobs done and their latency — a job may
 * be submitted from the worker thread too) is updated with relaxed atomic operations, and
 * rendering reads it the same way: each value is exact, the set is not a snapshot. Rendering
 * runs on the loop.
 *
 * What needs the store (tickets in queue and SLA breaches per tier) is never read per scrape:
 * the relay gathers it on the storage worker every TL_METRICS_DESK_INTERVAL_MS and hands the
 * result to tl_metrics_set_desk() on the loop; a scrape shows the last result and its time.
 */
#ifndef TL_METRICS_H
#define TL_METRICS_H

#include "proto/buf.h"

#include <jansson.h>
#include <stdint.h>

/* Ticket tiers 0..4 (relay/desk/tickets.h). */
#define TL_METRICS_TIERS 5
/* How often the desk's gauges are gathered on the storage worker. */
#define TL_METRICS_DESK_INTERVAL_MS 15000u

/* Forgets every value and sets the process start time to now (tests, and serve's start). */
void tl_metrics_reset(void);

/* ---- loop thread ---- */
/* An agent connection authenticated as an enrolled device (+1), or one such ended (-1). */
void tl_metrics_agent_online(int delta);
/* An enrollment's outcome: 0 or the TL_E* code it was refused with. */
void tl_metrics_enrollment(int result);
/* A technician's session began or ended; kind is the channel's name (proto/vocab.h: "exec",
 * "shell", "observe", "diag", "runbook"); other names (the catalogue listing) are not counted. */
void tl_metrics_session_started(const char *kind);
void tl_metrics_session_ended(const char *kind);
/* Bytes carried between a technician and an agent. */
void tl_metrics_bytes_to_agent(uint64_t bytes);
void tl_metrics_bytes_to_technician(uint64_t bytes);
/* A consent question sent to a machine, and its answer as the relay got it (status 0 and the
 * agent's result, or the failure; result may be NULL). */
void tl_metrics_consent_asked(void);
void tl_metrics_consent_answer(int status, const json_t *result);
/* The desk's gauges as gathered at at_ms. */
void tl_metrics_set_desk(const uint64_t queued[TL_METRICS_TIERS],
                         const uint64_t breached[TL_METRICS_TIERS], int64_t at_ms);

/* ---- any thread ---- */
/* A monotonic clock in nanoseconds, for job latency. */
uint64_t tl_metrics_now_ns(void);
/* Audit entries made durable in the log (the storage worker, after each batch). */
void tl_metrics_audit_written(uint64_t entries);
/* Entries written since the last checkpoint; and a checkpoint made at at_ms. */
void tl_metrics_checkpoint_lag(uint64_t entries);
void tl_metrics_checkpoint_made(int64_t at_ms);
/* A job submitted to the storage worker; a job's done callback about to run (submitted_ns: from
 * tl_metrics_now_ns() at its submission). */
void tl_metrics_job_submitted(void);
void tl_metrics_job_done(uint64_t submitted_ns);

/* ---- rendering (loop thread) ---- */
/* Every metric with its HELP and TYPE lines, appended to out; TL_EFULL if out's cap is reached. */
int tl_metrics_render(tl_buf_t *out, int64_t now_ms);
/* value as a label value of the text format: backslash, double quote and newline escaped. */
int tl_metrics_put_label_value(tl_buf_t *out, const char *value);

#endif
