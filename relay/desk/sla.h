/*
 * SLA clocks (docs/desk.md "SLA clocks"): a ticket's targets, from the desk's configuration,
 * and its three clocks worked out from its history: first response, resolution, and the
 * vendor clock that counts the time the ticket waits on a vendor.
 *
 * Pure: the configuration is parsed once (tl_sla_config_parse, which reads the calendar's
 * zone); tl_sla_evaluate then replays a ticket's typed history up to a "now" the caller gives.
 * It reads no clock, store or file and keeps no state between calls, so any number of threads
 * may evaluate tickets against one configuration at once. The caller turns the timeline into
 * events and decides which of them count as a first response (tl_sla_counts_as_response says
 * which the desk counts).
 *
 * The rules, which the desk's predecessors got wrong: the clocks pause while the ticket waits
 * on the user or a vendor; a change of severity or tier changes the target, and the due time is
 * worked out again from the creation plus every pause so far, never restarted; reassignment
 * changes nothing; the resolution clock counts from the creation of the ticket.
 */
#ifndef TL_SLA_H
#define TL_SLA_H

#include "relay/desk/calendar.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Severities S1 (most urgent) .. S4, and tiers 1..4 (a ticket in tier 0 has tier 1's targets). */
#define TL_SLA_SEVERITIES 4
#define TL_SLA_TIERS 4
/* A target is at most a year of hours (8760h). */
#define TL_SLA_TARGET_MAX_MS (8760LL * 3600000)
/* Events a ticket's history may hold, and the bytes of desk.json. */
#define TL_SLA_EVENTS_MAX 100000
#define TL_SLA_CONFIG_TEXT_MAX (256 * 1024)

typedef struct tl_sla_config tl_sla_config_t;

/*
 * Parses the "sla" section of desk.json (docs/desk.md "SLA clocks"):
 *   {"calendar": {...tl_calendar_parse...},
 *    "targets": {"S1": {"first_response": "30m", "resolution": "4h",
 *                       "tier3": {"resolution": "8h"}}, "S2": ..., "S3": ..., "S4": ...},
 *    "vendor": "40h"}
 * TL_EINVAL and why naming the member and the problem ("sla.targets.S5: unknown severity ...");
 * nothing is returned on error. lookup finds the calendar's zone (tl_zone_lookup_files).
 */
int tl_sla_config_parse(const json_t *section, tl_zone_lookup_fn lookup, void *lookup_arg,
                        tl_sla_config_t **out, char *why, size_t why_size);
/* The same from the text of desk.json (its "sla" member), at most TL_SLA_CONFIG_TEXT_MAX bytes;
 * why names the line and column of JSON that does not parse. */
int tl_sla_config_parse_text(const char *text, size_t length, tl_zone_lookup_fn lookup,
                             void *lookup_arg, tl_sla_config_t **out, char *why, size_t why_size);
void tl_sla_config_free(tl_sla_config_t *config);

typedef enum tl_sla_clock_kind {
    TL_SLA_FIRST_RESPONSE,
    TL_SLA_RESOLUTION,
    TL_SLA_VENDOR,
    TL_SLA_CLOCKS
} tl_sla_clock_kind_t;

const tl_calendar_t *tl_sla_config_calendar(const tl_sla_config_t *config);
/*
 * The target of a clock for a severity (1..4) and tier (0..4), in milliseconds of business
 * time; 0 when there is none (the vendor clock without "vendor", or values out of range).
 */
int64_t tl_sla_config_target(const tl_sla_config_t *config, tl_sla_clock_kind_t clock, int severity,
                             int tier);

/* A ticket's statuses (DESIGN.md §6); tickets start "new". */
typedef enum tl_sla_status {
    TL_SLA_STATUS_NEW,
    TL_SLA_STATUS_OPEN,
    TL_SLA_STATUS_WAITING_USER,
    TL_SLA_STATUS_WAITING_VENDOR,
    TL_SLA_STATUS_RESOLVED,
    TL_SLA_STATUS_CLOSED,
    TL_SLA_STATUS_REOPENED,
    TL_SLA_STATUSES
} tl_sla_status_t;

/* "waiting-user" -> TL_SLA_STATUS_WAITING_USER; TL_EINVAL for another word. */
int tl_sla_status_from_name(const char *name, tl_sla_status_t *status);
const char *tl_sla_status_name(tl_sla_status_t status);

typedef enum tl_sla_event_kind {
    TL_SLA_EVENT_STATUS,   /* status: the new status */
    TL_SLA_EVENT_SEVERITY, /* severity: the new severity, 1..4 */
    TL_SLA_EVENT_TIER,     /* tier: the new tier, 0..4 (escalation, de-escalation) */
    TL_SLA_EVENT_ASSIGNEE, /* a new assignee: no clock changes, given so a history is whole */
    TL_SLA_EVENT_ACTIVITY, /* anything else a technician did; is_response says if it counts */
    TL_SLA_EVENT_KINDS
} tl_sla_event_kind_t;

typedef struct tl_sla_event {
    int64_t time_ms;
    tl_sla_event_kind_t kind;
    tl_sla_status_t status;
    int severity;
    int tier;
    int is_response; /* ACTIVITY: 1 if it is a first response (tl_sla_counts_as_response) */
} tl_sla_event_t;

/* A ticket as the clocks see it: how it started and what happened since, oldest first. */
typedef struct tl_sla_ticket {
    int64_t created_ms;
    int severity; /* 1..4 at creation */
    int tier;     /* 0..4 at creation */
    const tl_sla_event_t *events;
    size_t event_count;
} tl_sla_ticket_t;

/*
 * 1 if a timeline event of that kind ("note", "session.started", ...) by a technician of that
 * role ("tier1".."tier4", "admin"; NULL for the agent or the relay) counts as the ticket's
 * first response: a note to the user, a session or a fix by the desk, or the resolution. A take,
 * an assignment, a consent request or a vendor's (tier4) note does not.
 */
int tl_sla_counts_as_response(const char *event, const char *role);
/* The kinds that count, in order, and how many (for docs and tests). */
const char *tl_sla_response_event(size_t index);
size_t tl_sla_response_event_count(void);

typedef enum tl_sla_state {
    TL_SLA_IDLE,     /* not started: the vendor clock of a ticket never handed to a vendor */
    TL_SLA_RUNNING,  /* counting now, due time not passed */
    TL_SLA_PAUSED,   /* not counting now (waiting on the user or a vendor), due not passed */
    TL_SLA_MET,      /* stopped by its due time */
    TL_SLA_BREACHED, /* its due time passed before it stopped, or by now */
} tl_sla_state_t;

const char *tl_sla_state_name(tl_sla_state_t state);      /* "running", ... */
const char *tl_sla_clock_name(tl_sla_clock_kind_t clock); /* "first_response", ... */

typedef enum tl_sla_pause {
    TL_SLA_PAUSE_WAITING_USER,
    TL_SLA_PAUSE_WAITING_VENDOR,
    TL_SLA_PAUSE_RESOLVED, /* from a resolution to the reopening */
    TL_SLA_PAUSES
} tl_sla_pause_t;

typedef struct tl_sla_clock {
    tl_sla_state_t state;
    int stopped;   /* it stopped (a response; the ticket resolved or closed) and was not reopened */
    int warning;   /* not stopped, and 75% of its target or more used */
    int paused_by; /* the tl_sla_pause_t in force now, or -1 */
    int64_t target_ms;  /* business time allowed; 0: no target (no due, warning or breach) */
    int64_t elapsed_ms; /* business time counted */
    int64_t paused_ms[TL_SLA_PAUSES]; /* business time not counted, by reason */
    int64_t started_ms;               /* the creation (vendor: the first hand-off); 0 while idle */
    int64_t stopped_ms;               /* when it stopped; 0 if it has not */
    int64_t due_ms;  /* when the target runs out (or ran out); 0 without a target */
    int64_t warn_ms; /* when 75% of the target is (or was) used; 0 without a target */
} tl_sla_clock_t;

/*
 * Replays ticket up to now_ms and fills clocks[TL_SLA_FIRST_RESPONSE .. TL_SLA_VENDOR].
 * TL_EINVAL and why (naming the event) for events out of order, before the creation or after
 * now, or holding values out of range; more than TL_SLA_EVENTS_MAX events; instants outside
 * the calendar's range. Nothing is filled on error.
 */
int tl_sla_evaluate(const tl_sla_config_t *config, const tl_sla_ticket_t *ticket, int64_t now_ms,
                    tl_sla_clock_t clocks[TL_SLA_CLOCKS], char *why, size_t why_size);

#endif
