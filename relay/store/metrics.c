/* The relay's counters and their Prometheus text rendering (relay/store/metrics.h). */
#include "relay/store/metrics.h"
#include "proto/clock.h"
#include "proto/err.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The session kinds counted, by the channel's name and the label shown. */
static const struct {
    const char *channel;
    const char *label;
} kinds[] = {
    {"exec", "run"},        {"shell", "shell"}, {"runbook", "runbook"},
    {"observe", "observe"}, {"diag", "diag"},
};
#define KINDS (sizeof kinds / sizeof kinds[0])

static const struct {
    int code;
    const char *label;
} enroll_results[] = {
    {0, "enrolled"},
    {TL_ENOTFOUND, "unknown_code"},
    {TL_EEXPIRED, "expired"},
    {TL_EUSED, "used"},
    {TL_EEXIST, "already_enrolled"},
    {TL_ETIMEOUT, "rate_limited"},
    {TL_EINVAL, "malformed"},
    {1, "error"}, /* anything else; 1 is no code */
};
#define ENROLL_RESULTS (sizeof enroll_results / sizeof enroll_results[0])

enum answer { ANSWER_GRANTED, ANSWER_DENIED, ANSWER_TIMEOUT, ANSWER_REFUSED, ANSWER_OFFLINE };
static const char *const answer_labels[] = {"granted", "denied", "timeout", "refused", "offline"};
#define ANSWERS (sizeof answer_labels / sizeof answer_labels[0])

/* Upper bounds of the store job latency buckets, in seconds and in nanoseconds. */
static const char *const bucket_labels[] = {"0.001", "0.005", "0.025", "0.1", "0.5", "2.5"};
static const uint64_t bucket_ns[] = {1000000ull,   5000000ull,   25000000ull,
                                     100000000ull, 500000000ull, 2500000000ull};
#define BUCKETS (sizeof bucket_ns / sizeof bucket_ns[0])

static struct {
    int64_t start_ms;
    /* Loop thread only. */
    int64_t agents_online;
    uint64_t enrollments[ENROLL_RESULTS];
    uint64_t sessions[KINDS], sessions_live[KINDS];
    uint64_t bytes_to_agent, bytes_to_technician;
    uint64_t consent_questions, consent_answers[ANSWERS];
    uint64_t queued[TL_METRICS_TIERS], breached[TL_METRICS_TIERS];
    int64_t desk_at_ms; /* 0: not gathered yet */
    /* Any thread: __atomic, relaxed. */
    uint64_t audit_entries, checkpoint_lag;
    int64_t checkpoint_at_ms; /* 0: none made by this process yet */
    uint64_t jobs_submitted, jobs_done, job_ns_sum, job_buckets[BUCKETS];
} m;

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

void tl_metrics_reset(void)
{
    memset(&m, 0, sizeof m);
    m.start_ms = tl_wall_ms();
}

void tl_metrics_agent_online(int delta)
{
    m.agents_online += delta;
}

void tl_metrics_enrollment(int result)
{
    size_t i = 0;
    while (i + 1 < ENROLL_RESULTS && enroll_results[i].code != result)
        i++;
    m.enrollments[i]++;
}

static int kind_index(const char *kind)
{
    for (size_t i = 0; kind != NULL && i < KINDS; i++)
        if (strcmp(kinds[i].channel, kind) == 0)
            return (int)i;
    return -1;
}

void tl_metrics_session_started(const char *kind)
{
    int i = kind_index(kind);
    if (i >= 0) {
        m.sessions[i]++;
        m.sessions_live[i]++;
    }
}

void tl_metrics_session_ended(const char *kind)
{
    int i = kind_index(kind);
    if (i >= 0 && m.sessions_live[i] > 0)
        m.sessions_live[i]--;
}

void tl_metrics_bytes_to_agent(uint64_t bytes)
{
    m.bytes_to_agent += bytes;
}

void tl_metrics_bytes_to_technician(uint64_t bytes)
{
    m.bytes_to_technician += bytes;
}

void tl_metrics_consent_asked(void)
{
    m.consent_questions++;
}

void tl_metrics_consent_answer(int status, const json_t *result)
{
    enum answer answer = ANSWER_REFUSED;
    const char *error = json_string_value(json_object_get(result, "error"));
    if (status == TL_ETIMEOUT)
        answer = ANSWER_TIMEOUT;
    else if (status != 0)
        answer = ANSWER_OFFLINE;
    else if (json_is_true(json_object_get(result, "ok")))
        answer = ANSWER_GRANTED;
    else if (error != NULL && strcmp(error, "EDENIED") == 0)
        answer = ANSWER_DENIED;
    else if (error != NULL && strcmp(error, "ETIMEOUT") == 0)
        answer = ANSWER_TIMEOUT;
    m.consent_answers[answer]++;
}

void tl_metrics_set_desk(const uint64_t queued[TL_METRICS_TIERS],
                         const uint64_t breached[TL_METRICS_TIERS], int64_t at_ms)
{
    memcpy(m.queued, queued, sizeof m.queued);
    memcpy(m.breached, breached, sizeof m.breached);
    m.desk_at_ms = at_ms;
}

uint64_t tl_metrics_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

void tl_metrics_audit_written(uint64_t entries)
{
    ADD(m.audit_entries, entries);
}

void tl_metrics_checkpoint_lag(uint64_t entries)
{
    STORE(m.checkpoint_lag, entries);
}

void tl_metrics_checkpoint_made(int64_t at_ms)
{
    STORE(m.checkpoint_lag, 0);
    STORE(m.checkpoint_at_ms, at_ms);
}

void tl_metrics_job_submitted(void)
{
    ADD(m.jobs_submitted, 1);
}

void tl_metrics_job_done(uint64_t submitted_ns)
{
    uint64_t now = tl_metrics_now_ns();
    uint64_t took = submitted_ns != 0 && now > submitted_ns ? now - submitted_ns : 0;
    ADD(m.job_ns_sum, took);
    /* Buckets hold only their own range; rendering sums them (le is cumulative). */
    size_t i = 0;
    while (i < BUCKETS && took > bucket_ns[i])
        i++;
    if (i < BUCKETS)
        ADD(m.job_buckets[i], 1);
    ADD(m.jobs_done, 1);
}

/* ---- rendering ---- */

static int put_format(tl_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put_format(tl_buf_t *out, const char *fmt, ...)
{
    char line[512];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n >= sizeof line)
        return TL_EINVAL;
    return tl_buf_put(out, line, (size_t)n);
}

int tl_metrics_put_label_value(tl_buf_t *out, const char *value)
{
    int rc = 0;
    for (const char *p = value; rc == 0 && *p != '\0'; p++) {
        if (*p == '\\')
            rc = tl_buf_put(out, "\\\\", 2);
        else if (*p == '"')
            rc = tl_buf_put(out, "\\\"", 2);
        else if (*p == '\n')
            rc = tl_buf_put(out, "\\n", 2);
        else
            rc = tl_buf_put(out, p, 1);
    }
    return rc;
}

static int put_header(tl_buf_t *out, const char *name, const char *type, const char *help)
{
    return put_format(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"} number */
static int put_labelled(tl_buf_t *out, const char *name, const char *label, const char *value,
                        uint64_t number)
{
    int rc = put_format(out, "%s{%s=\"", name, label);
    if (rc == 0)
        rc = tl_metrics_put_label_value(out, value);
    if (rc == 0)
        rc = put_format(out, "\"} %" PRIu64 "\n", number);
    return rc;
}

static int put_family(tl_buf_t *out, const char *name, const char *type, const char *help,
                      const char *label, const char *const values[], const uint64_t numbers[],
                      size_t count)
{
    int rc = put_header(out, name, type, help);
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = put_labelled(out, name, label, values[i], numbers[i]);
    return rc;
}

static int put_single(tl_buf_t *out, const char *name, const char *type, const char *help,
                      const char *value_text)
{
    int rc = put_header(out, name, type, help);
    if (rc == 0)
        rc = put_format(out, "%s %s\n", name, value_text);
    return rc;
}

static int put_number(tl_buf_t *out, const char *name, const char *type, const char *help,
                      int64_t value)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, value);
    return put_single(out, name, type, help, text);
}

/* Milliseconds as seconds, exactly: "1733300000.123". */
static void seconds_text(int64_t ms, char text[32])
{
    if (ms < 0)
        ms = 0;
    snprintf(text, 32, "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000));
}

static int render_sessions(tl_buf_t *out)
{
    const char *labels[KINDS];
    for (size_t i = 0; i < KINDS; i++)
        labels[i] = kinds[i].label;
    int rc = put_family(out, "tierline_sessions_total", "counter",
                        "Technicians' sessions on a machine begun, by kind.", "kind", labels,
                        m.sessions, KINDS);
    if (rc == 0)
        rc = put_family(out, "tierline_sessions_active", "gauge",
                        "Technicians' sessions on a machine now, by kind.", "kind", labels,
                        m.sessions_live, KINDS);
    return rc;
}

static int render_desk(tl_buf_t *out, int64_t now_ms)
{
    const char *tiers[TL_METRICS_TIERS] = {"0", "1", "2", "3", "4"};
    char text[32];
    int rc = 0;
    if (m.desk_at_ms == 0) /* nothing gathered yet: no value rather than a false zero */
        return 0;
    rc = put_family(out, "tierline_tickets_queued", "gauge",
                    "Open tickets (not resolved or closed) by tier, as last gathered.", "tier",
                    tiers, m.queued, TL_METRICS_TIERS);
    if (rc == 0)
        rc = put_family(out, "tierline_sla_breached_tickets", "gauge",
                        "Open tickets with at least one breached SLA clock, by tier, as last "
                        "gathered.",
                        "tier", tiers, m.breached, TL_METRICS_TIERS);
    seconds_text(now_ms - m.desk_at_ms, text);
    if (rc == 0)
        rc = put_single(out, "tierline_desk_gathered_age_seconds", "gauge",
                        "Seconds since the ticket gauges were gathered from the store.", text);
    return rc;
}

static int render_store(tl_buf_t *out, int64_t now_ms)
{
    char text[32];
    int64_t checkpoint_at = LOAD(m.checkpoint_at_ms);
    uint64_t submitted = LOAD(m.jobs_submitted), done = LOAD(m.jobs_done);
    int rc = put_number(out, "tierline_audit_entries_total", "counter",
                        "Audit entries written durably to the audit log by this process.",
                        (int64_t)LOAD(m.audit_entries));
    if (rc == 0)
        rc = put_number(out, "tierline_audit_checkpoint_lag_entries", "gauge",
                        "Audit entries written since the last signed checkpoint.",
                        (int64_t)LOAD(m.checkpoint_lag));
    seconds_text(now_ms - (checkpoint_at != 0 ? checkpoint_at : m.start_ms), text);
    if (rc == 0)
        rc = put_single(out, "tierline_audit_checkpoint_age_seconds", "gauge",
                        "Seconds since this process made its last signed checkpoint (since it "
                        "started, if it made none).",
                        text);
    if (rc == 0)
        rc = put_number(out, "tierline_store_queue_jobs", "gauge",
                        "Jobs submitted to the storage worker and not yet acknowledged.",
                        (int64_t)(submitted > done ? submitted - done : 0));
    if (rc == 0)
        rc = put_header(out, "tierline_store_job_duration_seconds", "histogram",
                        "Storage worker jobs, from submission to acknowledgement on the loop.");
    uint64_t cumulative = 0;
    for (size_t i = 0; rc == 0 && i < BUCKETS; i++) {
        cumulative += LOAD(m.job_buckets[i]);
        rc = put_format(out, "tierline_store_job_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
                        bucket_labels[i], cumulative);
    }
    uint64_t sum_ns = LOAD(m.job_ns_sum);
    if (rc == 0)
        rc = put_format(out,
                        "tierline_store_job_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                        "tierline_store_job_duration_seconds_sum %" PRIu64 ".%09" PRIu64 "\n"
                        "tierline_store_job_duration_seconds_count %" PRIu64 "\n",
                        done, (uint64_t)(sum_ns / 1000000000u), (uint64_t)(sum_ns % 1000000000u),
                        done);
    return rc;
}

int tl_metrics_render(tl_buf_t *out, int64_t now_ms)
{
    const char *enroll_labels[ENROLL_RESULTS];
    for (size_t i = 0; i < ENROLL_RESULTS; i++)
        enroll_labels[i] = enroll_results[i].label;
    const char *directions[2] = {"to_agent", "to_technician"};
    const uint64_t bytes[2] = {m.bytes_to_agent, m.bytes_to_technician};
    char text[32];
    seconds_text(m.start_ms, text);
    int rc = put_single(out, "tierline_relay_start_time_seconds", "gauge",
                        "When the relay process started, in seconds since the Unix epoch.", text);
    if (rc == 0)
        rc = put_number(out, "tierline_agents_connected", "gauge",
                        "Enrolled agents connected and authenticated now.", m.agents_online);
    if (rc == 0)
        rc = put_family(out, "tierline_enrollments_total", "counter",
                        "Enrollment attempts, by result.", "result", enroll_labels, m.enrollments,
                        ENROLL_RESULTS);
    if (rc == 0)
        rc = render_sessions(out);
    if (rc == 0)
        rc = put_family(out, "tierline_relayed_bytes_total", "counter",
                        "Session bytes carried between technicians and machines, by direction.",
                        "direction", directions, bytes, 2);
    if (rc == 0)
        rc = put_number(out, "tierline_consent_questions_total", "counter",
                        "Consent questions sent to machines.", (int64_t)m.consent_questions);
    if (rc == 0)
        rc = put_family(out, "tierline_consent_answers_total", "counter",
                        "Answers to consent questions, by answer.", "answer", answer_labels,
                        m.consent_answers, ANSWERS);
    if (rc == 0)
        rc = render_desk(out, now_ms);
    if (rc == 0)
        rc = render_store(out, now_ms);
    return rc;
}
