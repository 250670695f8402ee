/*
 * The desk's report (docs/desk.md "Report"): per tier and severity, the tickets opened, resolved
 * and escalated in a period, how fast they were answered and resolved against their SLA
 * targets, the time their clocks stood paused and the clocks that breached; and the known
 * problems by how many tickets they explain.
 *
 * Pure: the caller reads the store and evaluates each ticket's clocks at the end of the period
 * (relay/desk/sla.h); this only counts, sorts and writes. The same input gives byte-identical
 * output in every format, whatever order the tickets come in.
 */
#ifndef TL_REPORT_H
#define TL_REPORT_H

#include "relay/desk/sla.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The line most users expect a first reply within. */
#define TL_REPORT_REPLY_LINE_MS (6LL * 3600000)
/* Tickets, escalations and problems one report may count. */
#define TL_REPORT_ITEMS_MAX 1000000

typedef struct tl_report_ticket {
    int64_t id;
    int64_t device_id;
    int64_t created_ms;
    int tier;     /* 0..4, at the end of the period */
    int severity; /* 1..4, at the end of the period */
    /* The first response, 0 if none by the end of the period. */
    int64_t first_response_ms;
    /* When it was last resolved or closed, 0 if it was not, or was reopened since. */
    int64_t resolved_ms;
    /* Its clocks as tl_sla_evaluate gives them at the end of the period. */
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
} tl_report_ticket_t;

typedef struct tl_report_escalation {
    int64_t ticket_id;
    int64_t time_ms;
    int from_tier; /* 0..4 */
    int to_tier;   /* 0..4; below from_tier for a de-escalation, which is not counted */
    int severity;  /* 1..4, when it was escalated */
} tl_report_escalation_t;

typedef struct tl_report_problem {
    int64_t id;
    const char *title;
    const char *state; /* "investigating", "known-error", "fixed" */
    size_t tickets;    /* linked tickets */
    size_t devices;    /* distinct devices among them */
} tl_report_problem_t;

/* How long after a passed re-check a new ticket from the device means the fix did not hold. */
#define TL_REPORT_COME_BACK_MS (72LL * 3600000)

/* The stages of self-help (docs/kb.md "Self-help"), in funnel order. */
typedef enum tl_report_stage {
    TL_REPORT_SUGGESTED, /* an article was shown to the user as a match */
    TL_REPORT_APPLIED,   /* its fix was run with the user's consent */
    TL_REPORT_PASSED,    /* the re-check found the problem gone */
    TL_REPORT_FAILED,    /* ... or still there */
    TL_REPORT_STAGES
} tl_report_stage_t;

/* One stage an article reached on a device. */
typedef struct tl_report_selfhelp {
    const char *article; /* its id */
    const char *runbook; /* the fix run (applied, passed, failed); NULL: none */
    tl_report_stage_t stage;
    int64_t time_ms;
    /* TL_REPORT_PASSED: a ticket came from that device for the same problem (the same
     * diagnostic fingerprint; any ticket when the re-check had none) within
     * TL_REPORT_COME_BACK_MS after, and before the end of the period. */
    int came_back;
} tl_report_selfhelp_t;

typedef struct tl_report_input {
    int64_t since_ms; /* the period is [since_ms, until_ms) */
    int64_t until_ms;
    const tl_report_ticket_t *tickets;
    size_t ticket_count;
    const tl_report_escalation_t *escalations;
    size_t escalation_count;
    const tl_report_problem_t *problems;
    size_t problem_count;
    const tl_report_selfhelp_t *selfhelp; /* the stages stamped in the period */
    size_t selfhelp_count;
} tl_report_input_t;

/*
 * The report as a JSON object (its members in docs/desk.md "Report"). TL_EINVAL and why for a
 * period that ends before it starts, more than TL_REPORT_ITEMS_MAX items, or an item whose
 * tier, severity or id is out of range; TL_ENOMEM.
 */
int tl_report_build(const tl_report_input_t *in, json_t **out, char *why, size_t why_size);

/* The report as text for a terminal (titles escaped), as JSON, or as CSV; TL_EIO. */
int tl_report_write_text(const json_t *report, FILE *out);
int tl_report_write_json(const json_t *report, FILE *out);
int tl_report_write_csv(const json_t *report, FILE *out);

#endif
