/*
 * SLA targets and clocks (sla.h, docs/desk.md "SLA clocks").
 *
 * A ticket's history becomes a list of segments, each a span of time with one status, severity
 * and tier. Every clock gives each segment a mode (counting, paused for a reason, stopped, or
 * not started), and is evaluated from the modes alone: the business time of the counting
 * segments is what it used, the target is the one in force when it stopped (or now), and the
 * due time is where that target runs out when the counting segments are laid end to end from
 * the creation. So changing severity, tier or assignee never loses a pause.
 */
#include "relay/desk/sla.h"

#include "proto/err.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000LL
#define HOUR_MS 3600000LL
/* A target must run out within this many weeks of the calendar's working time. */
#define TARGET_WEEKS_MAX 520

enum target_kind { TARGET_FIRST_RESPONSE, TARGET_RESOLUTION, TARGET_KINDS };

struct tl_sla_config {
    tl_calendar_t *calendar;
    int64_t targets[TL_SLA_SEVERITIES][TL_SLA_TIERS][TARGET_KINDS];
    int64_t vendor_ms; /* 0: no target for the vendor clock */
};

static void say(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_size, const char *fmt, ...)
{
    if (why == NULL || why_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

/* Text from the configuration as a message shows it: one line, escaped, clipped. */
#define SHOWN 40
#define SHOWN_SIZE (SHOWN * 4 + 8)
#define SHOWN_TEXT(text) shown((char[SHOWN_SIZE]){0}, (text))

static const char *shown(char *out, const char *text)
{
    tl_text_clip(out, SHOWN_SIZE, text != NULL ? text : "", SHOWN, TL_TEXT_LINE);
    return out;
}

static const char *const target_names[TARGET_KINDS] = {"first_response", "resolution"};

/* ---- configuration ---- */

/* "30m", "4h", "1h30m": 1 minute .. TL_SLA_TARGET_MAX_MS. */
static int parse_duration(const json_t *value, const char *where, int64_t *ms, char *why,
                          size_t why_size)
{
    const char *text = json_string_value(value), *at = text;
    int64_t total = 0;
    int parts = 0, last_unit = 0;
    if (text == NULL) {
        say(why, why_size, "%s: not a duration like \"30m\", \"4h\" or \"1h30m\"", where);
        return TL_EINVAL;
    }
    while (*at != '\0') {
        int64_t number = 0;
        int digits = 0;
        while (*at >= '0' && *at <= '9' && digits < 7) {
            number = number * 10 + (*at++ - '0');
            digits++;
        }
        int unit = *at == 'h' ? 1 : *at == 'm' ? 2 : 0;
        if (digits == 0 || unit == 0 || unit <= last_unit || parts == 2) {
            if (text[0] == '-')
                say(why, why_size, "%s: '%s' is negative: a target is more than zero", where,
                    SHOWN_TEXT(text));
            else if (digits > 0 && *at == 'd')
                say(why, why_size,
                    "%s: '%s': a business day's length depends on the calendar, give hours "
                    "(\"16h\")",
                    where, SHOWN_TEXT(text));
            else
                say(why, why_size, "%s: '%s' is not a duration like \"30m\", \"4h\" or \"1h30m\"",
                    where, SHOWN_TEXT(text));
            return TL_EINVAL;
        }
        total += number * (unit == 1 ? HOUR_MS : MINUTE_MS);
        last_unit = unit;
        parts++;
        at++;
    }
    if (parts == 0 || total == 0) {
        say(why, why_size, "%s: '%s' is %s: a target is more than zero", where, SHOWN_TEXT(text),
            parts == 0 ? "empty" : "zero");
        return TL_EINVAL;
    }
    if (total > TL_SLA_TARGET_MAX_MS) {
        say(why, why_size, "%s: '%s' is longer than a year (8760h)", where, SHOWN_TEXT(text));
        return TL_EINVAL;
    }
    *ms = total;
    return 0;
}

/* Prints a duration as the configuration writes it, for messages. */
static void format_duration(int64_t ms, char *out, size_t size)
{
    int64_t minutes = ms / MINUTE_MS;
    if (minutes % 60 == 0)
        snprintf(out, size, "%lldh", (long long)(minutes / 60));
    else if (minutes < 60)
        snprintf(out, size, "%lldm", (long long)minutes);
    else
        snprintf(out, size, "%lldh%lldm", (long long)(minutes / 60), (long long)(minutes % 60));
}

static int target_kind_of(const char *key)
{
    for (int kind = 0; kind < TARGET_KINDS; kind++)
        if (strcmp(key, target_names[kind]) == 0)
            return kind;
    return -1;
}

/* "tier1".."tier4" -> 0..3; -1 otherwise. */
static int tier_index_of(const char *key)
{
    if (strncmp(key, "tier", 4) != 0 || key[4] < '1' || key[4] > '0' + TL_SLA_TIERS ||
        key[5] != '\0')
        return -1;
    return key[4] - '1';
}

/* {"first_response": D, "resolution": D} into out[kind]; given[kind] set for each one found. */
static int parse_pair(const json_t *value, const char *where, int allow_tiers,
                      int64_t out[TARGET_KINDS], int given[TARGET_KINDS], char *why,
                      size_t why_size)
{
    char place[160];
    const char *key;
    const json_t *member;
    if (!json_is_object(value)) {
        say(why, why_size, "%s: not an object of first_response and resolution", where);
        return TL_EINVAL;
    }
    json_object_foreach((json_t *)value, key, member) {
        int kind = target_kind_of(key);
        if (kind < 0 && allow_tiers && tier_index_of(key) >= 0)
            continue;
        if (kind < 0) {
            say(why, why_size, "%s: unknown member '%s' (%s)", where, SHOWN_TEXT(key),
                allow_tiers ? "first_response, resolution, tier1..tier4"
                            : "first_response, resolution");
            return TL_EINVAL;
        }
        say(place, sizeof place, "%s.%s", where, key);
        int rc = parse_duration(member, place, &out[kind], why, why_size);
        if (rc != 0)
            return rc;
        given[kind] = 1;
    }
    return 0;
}

static int parse_severity(const json_t *value, const char *where, tl_sla_config_t *config,
                          int severity, char *why, size_t why_size)
{
    char place[160];
    int64_t base[TARGET_KINDS] = {0, 0};
    int given[TARGET_KINDS] = {0, 0};
    int rc = parse_pair(value, where, 1, base, given, why, why_size);
    if (rc != 0)
        return rc;
    for (int kind = 0; kind < TARGET_KINDS; kind++)
        if (!given[kind]) {
            say(why, why_size, "%s: no %s target", where, target_names[kind]);
            return TL_EINVAL;
        }
    for (int tier = 0; tier < TL_SLA_TIERS; tier++) {
        int64_t *targets = config->targets[severity][tier];
        memcpy(targets, base, sizeof base);
        say(place, sizeof place, "%s.tier%d", where, tier + 1);
        const json_t *override = json_object_get(value, place + strlen(where) + 1);
        int override_given[TARGET_KINDS] = {0, 0};
        if (override != NULL) {
            rc = parse_pair(override, place, 0, targets, override_given, why, why_size);
            if (rc != 0)
                return rc;
            if (!override_given[0] && !override_given[1]) {
                say(why, why_size, "%s: empty (give first_response or resolution)", place);
                return TL_EINVAL;
            }
        }
        if (targets[TARGET_FIRST_RESPONSE] > targets[TARGET_RESOLUTION]) {
            char first[24], resolution[24];
            format_duration(targets[TARGET_FIRST_RESPONSE], first, sizeof first);
            format_duration(targets[TARGET_RESOLUTION], resolution, sizeof resolution);
            say(why, why_size,
                "%s: in tier %d the first response (%s) is due after the "
                "resolution (%s)",
                where, tier + 1, first, resolution);
            return TL_EINVAL;
        }
    }
    return 0;
}

/* "S1".."S4" -> 0..3; -1 otherwise. */
static int severity_index_of(const char *key)
{
    if (key[0] != 'S' || key[1] < '1' || key[1] > '0' + TL_SLA_SEVERITIES || key[2] != '\0')
        return -1;
    return key[1] - '1';
}

static int parse_targets(const json_t *value, tl_sla_config_t *config, char *why, size_t why_size)
{
    char place[64];
    int given[TL_SLA_SEVERITIES] = {0};
    const char *key;
    const json_t *member;
    if (!json_is_object(value)) {
        say(why, why_size, "sla.targets: %s (an object of severities S1..S4)",
            value == NULL ? "missing" : "not an object");
        return TL_EINVAL;
    }
    json_object_foreach((json_t *)value, key, member) {
        int severity = severity_index_of(key);
        if (severity < 0) {
            say(why, why_size, "sla.targets: unknown severity '%s' (S1, S2, S3, S4)",
                SHOWN_TEXT(key));
            return TL_EINVAL;
        }
        say(place, sizeof place, "sla.targets.%s", key);
        int rc = parse_severity(member, place, config, severity, why, why_size);
        if (rc != 0)
            return rc;
        given[severity] = 1;
    }
    for (int severity = 0; severity < TL_SLA_SEVERITIES; severity++)
        if (!given[severity]) {
            say(why, why_size, "sla.targets: no targets for S%d (every severity S1..S4 needs them)",
                severity + 1);
            return TL_EINVAL;
        }
    return 0;
}

/* Every target must run out within TARGET_WEEKS_MAX weeks of the calendar's working time. */
static int check_reachable(const tl_sla_config_t *config, char *why, size_t why_size)
{
    int64_t limit = tl_calendar_week_ms(config->calendar) * TARGET_WEEKS_MAX;
    char text[24];
    for (int severity = 0; severity < TL_SLA_SEVERITIES; severity++)
        for (int tier = 0; tier < TL_SLA_TIERS; tier++)
            for (int kind = 0; kind < TARGET_KINDS; kind++)
                if (config->targets[severity][tier][kind] > limit) {
                    format_duration(config->targets[severity][tier][kind], text, sizeof text);
                    say(why, why_size,
                        "sla.targets.S%d: the tier %d %s target %s is more than %d weeks of the "
                        "calendar's working hours",
                        severity + 1, tier + 1, target_names[kind], text, TARGET_WEEKS_MAX);
                    return TL_EINVAL;
                }
    if (config->vendor_ms > limit) {
        say(why, why_size, "sla.vendor: more than %d weeks of the calendar's working hours",
            TARGET_WEEKS_MAX);
        return TL_EINVAL;
    }
    return 0;
}

static int check_section(const json_t *section, char *why, size_t why_size)
{
    const char *key;
    const json_t *member;
    if (!json_is_object(section)) {
        say(why, why_size, "sla: not an object (calendar, targets, vendor)");
        return TL_EINVAL;
    }
    json_object_foreach((json_t *)section, key, member) {
        if (strcmp(key, "calendar") != 0 && strcmp(key, "targets") != 0 &&
            strcmp(key, "vendor") != 0) {
            say(why, why_size, "sla: unknown member '%s' (calendar, targets, vendor)",
                SHOWN_TEXT(key));
            return TL_EINVAL;
        }
    }
    if (json_object_get(section, "calendar") == NULL) {
        say(why, why_size, "sla.calendar: missing (working hours and zone, or {\"24x7\": true})");
        return TL_EINVAL;
    }
    return 0;
}

int tl_sla_config_parse(const json_t *section, tl_zone_lookup_fn lookup, void *lookup_arg,
                        tl_sla_config_t **out, char *why, size_t why_size)
{
    tl_sla_config_t *config = NULL;
    *out = NULL;
    int rc = check_section(section, why, why_size);
    if (rc != 0)
        goto out;
    config = calloc(1, sizeof *config);
    if (config == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    rc = parse_targets(json_object_get(section, "targets"), config, why, why_size);
    const json_t *vendor = json_object_get(section, "vendor");
    if (rc == 0 && vendor != NULL)
        rc = parse_duration(vendor, "sla.vendor", &config->vendor_ms, why, why_size);
    if (rc == 0)
        rc = tl_calendar_parse(json_object_get(section, "calendar"), "sla.calendar", lookup,
                               lookup_arg, &config->calendar, why, why_size);
    if (rc == 0)
        rc = check_reachable(config, why, why_size);
out:
    if (rc != 0)
        tl_sla_config_free(config);
    else
        *out = config;
    return rc;
}

int tl_sla_config_parse_text(const char *text, size_t length, tl_zone_lookup_fn lookup,
                             void *lookup_arg, tl_sla_config_t **out, char *why, size_t why_size)
{
    json_error_t error;
    json_t *document = NULL;
    int rc = TL_EINVAL;
    *out = NULL;
    if (length > TL_SLA_CONFIG_TEXT_MAX) {
        say(why, why_size, "desk.json: larger than %d bytes", TL_SLA_CONFIG_TEXT_MAX);
        goto out;
    }
    document = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error);
    if (document == NULL) {
        /* Jansson's reason quotes the text near the error, control bytes too. */
        char reason[4 * JSON_ERROR_TEXT_LENGTH];
        tl_text_clip(reason, sizeof reason, error.text, 0, TL_TEXT_LINE);
        say(why, why_size, "desk.json:%d:%d: %s", error.line, error.column, reason);
        goto out;
    }
    if (!json_is_object(document)) {
        say(why, why_size, "desk.json: not a JSON object");
        goto out;
    }
    const json_t *section = json_object_get(document, "sla");
    if (section == NULL) {
        say(why, why_size, "desk.json: no \"sla\" section");
        goto out;
    }
    rc = tl_sla_config_parse(section, lookup, lookup_arg, out, why, why_size);
out:
    json_decref(document);
    return rc;
}

void tl_sla_config_free(tl_sla_config_t *config)
{
    if (config == NULL)
        return;
    tl_calendar_free(config->calendar);
    free(config);
}

const tl_calendar_t *tl_sla_config_calendar(const tl_sla_config_t *config)
{
    return config->calendar;
}

int64_t tl_sla_config_target(const tl_sla_config_t *config, tl_sla_clock_kind_t clock, int severity,
                             int tier)
{
    if (severity < 1 || severity > TL_SLA_SEVERITIES || tier < 0 || tier > TL_SLA_TIERS)
        return 0;
    int tier_index = tier == 0 ? 0 : tier - 1;
    switch (clock) {
    case TL_SLA_FIRST_RESPONSE:
        return config->targets[severity - 1][tier_index][TARGET_FIRST_RESPONSE];
    case TL_SLA_RESOLUTION:
        return config->targets[severity - 1][tier_index][TARGET_RESOLUTION];
    case TL_SLA_VENDOR:
        return config->vendor_ms;
    default:
        return 0;
    }
}

/* ---- vocabulary ---- */

static const char *const status_names[TL_SLA_STATUSES] = {
    "new", "open", "waiting-user", "waiting-vendor", "resolved", "closed", "reopened"};

int tl_sla_status_from_name(const char *name, tl_sla_status_t *status)
{
    for (int i = 0; name != NULL && i < TL_SLA_STATUSES; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *status = (tl_sla_status_t)i;
            return 0;
        }
    return TL_EINVAL;
}

const char *tl_sla_status_name(tl_sla_status_t status)
{
    return (unsigned)status < TL_SLA_STATUSES ? status_names[status] : "unknown";
}

const char *tl_sla_state_name(tl_sla_state_t state)
{
    static const char *const names[] = {"idle", "running", "paused", "met", "breached"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}

const char *tl_sla_clock_name(tl_sla_clock_kind_t clock)
{
    static const char *const names[TL_SLA_CLOCKS] = {"first_response", "resolution", "vendor"};
    return (unsigned)clock < TL_SLA_CLOCKS ? names[clock] : "unknown";
}

/* Timeline events that answer the user (docs/desk.md "What counts as a first response"). */
static const char *const response_events[] = {
    "note",            /* a technician's note: the user reads it (tierline-agent tickets) */
    "session.started", /* a session the user consented to: a shell, a command, a fix */
    "fix.finished",    /* a runbook run on the user's machine */
    "ticket.resolved", /* the resolution, which the user is told */
};

size_t tl_sla_response_event_count(void)
{
    return sizeof response_events / sizeof response_events[0];
}

const char *tl_sla_response_event(size_t index)
{
    return index < tl_sla_response_event_count() ? response_events[index] : NULL;
}

int tl_sla_counts_as_response(const char *event, const char *role)
{
    static const char *const desk_roles[] = {"tier1", "tier2", "tier3", "admin"};
    int by_desk = 0;
    for (size_t i = 0; role != NULL && i < sizeof desk_roles / sizeof desk_roles[0]; i++)
        by_desk |= strcmp(role, desk_roles[i]) == 0;
    for (size_t i = 0; by_desk && event != NULL && i < tl_sla_response_event_count(); i++)
        if (strcmp(event, response_events[i]) == 0)
            return 1;
    return 0;
}

/* ---- clocks ---- */

/* A span of a ticket's life with one status, severity and tier. */
struct segment {
    int64_t start, end;
    tl_sla_status_t status;
    int severity, tier;
    int answered;       /* a first response came, or the ticket was resolved, by start */
    int vendor_started; /* the ticket waited on a vendor by start */
};

enum mode { MODE_COUNT, MODE_PAUSE, MODE_STOP, MODE_IDLE };

static int check_event(const tl_sla_event_t *event, size_t index, int64_t after, int64_t now_ms,
                       char *why, size_t why_size)
{
    if (event->time_ms < after || event->time_ms > now_ms) {
        say(why, why_size, "event %zu: its time %lld is %s", index, (long long)event->time_ms,
            event->time_ms > now_ms ? "after now"
                                    : "before the ticket's creation or the event "
                                      "before it");
        return TL_EINVAL;
    }
    int bad = 0;
    switch (event->kind) {
    case TL_SLA_EVENT_STATUS:
        bad = (unsigned)event->status >= TL_SLA_STATUSES;
        break;
    case TL_SLA_EVENT_SEVERITY:
        bad = event->severity < 1 || event->severity > TL_SLA_SEVERITIES;
        break;
    case TL_SLA_EVENT_TIER:
        bad = event->tier < 0 || event->tier > TL_SLA_TIERS;
        break;
    case TL_SLA_EVENT_ASSIGNEE:
    case TL_SLA_EVENT_ACTIVITY:
        break;
    default:
        say(why, why_size, "event %zu: unknown kind %d", index, (int)event->kind);
        return TL_EINVAL;
    }
    if (bad) {
        say(why, why_size, "event %zu: its %s is out of range", index,
            event->kind == TL_SLA_EVENT_STATUS     ? "status"
            : event->kind == TL_SLA_EVENT_SEVERITY ? "severity"
                                                   : "tier");
        return TL_EINVAL;
    }
    return 0;
}

static void apply_event(struct segment *state, const tl_sla_event_t *event)
{
    switch (event->kind) {
    case TL_SLA_EVENT_STATUS:
        state->status = event->status;
        if (event->status == TL_SLA_STATUS_RESOLVED || event->status == TL_SLA_STATUS_CLOSED)
            state->answered = 1;
        if (event->status == TL_SLA_STATUS_WAITING_VENDOR)
            state->vendor_started = 1;
        break;
    case TL_SLA_EVENT_SEVERITY:
        state->severity = event->severity;
        break;
    case TL_SLA_EVENT_TIER:
        state->tier = event->tier;
        break;
    case TL_SLA_EVENT_ACTIVITY:
        state->answered |= event->is_response != 0;
        break;
    default:
        break;
    }
}

/*
 * The ticket's life from its creation to now as segments (malloc'd, *count of them; the last
 * ends at now and may be empty). TL_EINVAL and why for a history that does not hold together.
 */
static int build_segments(const tl_sla_ticket_t *ticket, int64_t now_ms, struct segment **out,
                          size_t *count, char *why, size_t why_size)
{
    struct segment state = {.start = ticket->created_ms,
                            .status = TL_SLA_STATUS_NEW,
                            .severity = ticket->severity,
                            .tier = ticket->tier};
    struct segment *segments = NULL;
    size_t used = 0;
    int rc = TL_EINVAL;
    if (ticket->severity < 1 || ticket->severity > TL_SLA_SEVERITIES || ticket->tier < 0 ||
        ticket->tier > TL_SLA_TIERS || ticket->created_ms < 0 || ticket->created_ms > now_ms ||
        now_ms > TL_CALENDAR_TIME_MAX) {
        say(why, why_size, "the ticket's severity, tier, creation or now is out of range");
        goto out;
    }
    if (ticket->event_count > TL_SLA_EVENTS_MAX) {
        say(why, why_size, "more than %d events", TL_SLA_EVENTS_MAX);
        goto out;
    }
    if (ticket->event_count > 0 && ticket->events == NULL) {
        say(why, why_size, "%zu events and no array of them", ticket->event_count);
        goto out;
    }
    segments = calloc(ticket->event_count + 1, sizeof *segments);
    if (segments == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < ticket->event_count; i++) {
        const tl_sla_event_t *event = &ticket->events[i];
        rc = check_event(event, i, state.start, now_ms, why, why_size);
        if (rc != 0)
            goto out;
        if (event->time_ms > state.start) {
            state.end = event->time_ms;
            segments[used++] = state;
            state.start = event->time_ms;
        }
        apply_event(&state, event);
    }
    state.end = now_ms;
    segments[used++] = state;
    rc = 0;
out:
    if (rc != 0) {
        free(segments);
        segments = NULL;
        used = 0;
    }
    *out = segments;
    *count = used;
    return rc;
}

/* What a clock does in a segment, and why it pauses (a tl_sla_pause_t, or -1). */
static enum mode mode_of(tl_sla_clock_kind_t clock, const struct segment *segment, int *reason)
{
    *reason = -1;
    if (clock == TL_SLA_FIRST_RESPONSE && segment->answered)
        return MODE_STOP;
    if (clock == TL_SLA_VENDOR && !segment->vendor_started)
        return MODE_IDLE;
    switch (segment->status) {
    case TL_SLA_STATUS_WAITING_USER:
        *reason = clock == TL_SLA_VENDOR ? -1 : TL_SLA_PAUSE_WAITING_USER;
        return MODE_PAUSE;
    case TL_SLA_STATUS_WAITING_VENDOR:
        if (clock == TL_SLA_VENDOR)
            return MODE_COUNT;
        *reason = TL_SLA_PAUSE_WAITING_VENDOR;
        return MODE_PAUSE;
    case TL_SLA_STATUS_RESOLVED:
    case TL_SLA_STATUS_CLOSED:
        return MODE_STOP;
    default:
        return clock == TL_SLA_VENDOR ? MODE_PAUSE : MODE_COUNT;
    }
}

/* Where a threshold of business time runs out: found while counting, or projected at the end. */
struct threshold {
    int64_t amount;
    int crossed;
    int64_t at_ms;
};

static int cross(const tl_calendar_t *calendar, struct threshold *threshold, int64_t from_ms,
                 int64_t counted_before, int64_t counted_in_segment)
{
    if (threshold->crossed || counted_before + counted_in_segment < threshold->amount)
        return 0;
    threshold->crossed = 1;
    return tl_calendar_add(calendar, from_ms, threshold->amount - counted_before,
                           &threshold->at_ms);
}

static int project(const tl_calendar_t *calendar, struct threshold *threshold, int64_t end_ms,
                   int64_t counted)
{
    if (threshold->crossed)
        return 0;
    return tl_calendar_add(calendar, end_ms, threshold->amount - counted, &threshold->at_ms);
}

/* The clock's view of segments: where it stopped for good (count if it did not), and when. */
static size_t find_stop(tl_sla_clock_kind_t clock, const struct segment *segments, size_t count)
{
    int reason;
    size_t stop = count;
    while (stop > 0 && mode_of(clock, &segments[stop - 1], &reason) == MODE_STOP)
        stop--;
    return stop;
}

static int evaluate_clock(const tl_sla_config_t *config, tl_sla_clock_kind_t clock,
                          const struct segment *segments, size_t count, tl_sla_clock_t *out)
{
    const tl_calendar_t *calendar = config->calendar;
    int reason, now_reason, rc = 0;
    memset(out, 0, sizeof *out);
    out->paused_by = -1;
    enum mode now_mode = mode_of(clock, &segments[count - 1], &now_reason);
    if (now_mode == MODE_IDLE)
        return 0; /* state TL_SLA_IDLE */
    size_t stop = find_stop(clock, segments, count);
    out->stopped = stop < count;
    int64_t end_ms = out->stopped ? segments[stop].start : segments[count - 1].end;
    out->stopped_ms = out->stopped ? end_ms : 0;
    /* The target in force when the clock stopped, or now: the segment that holds the instant
     * before its end (the first one if it ended at the creation). */
    size_t last = 0;
    while (last + 1 < count && segments[last + 1].start < end_ms)
        last++;
    out->target_ms =
        tl_sla_config_target(config, clock, segments[last].severity, segments[last].tier);
    /* It started in the first segment it was not idle in (the vendor clock: the first wait). */
    for (size_t i = 0; i < count; i++)
        if (mode_of(clock, &segments[i], &reason) != MODE_IDLE) {
            out->started_ms = segments[i].start;
            break;
        }
    struct threshold due = {.amount = out->target_ms};
    struct threshold warn = {.amount = (out->target_ms * 3 + 3) / 4};
    for (size_t i = 0; i < count && segments[i].start < end_ms && rc == 0; i++) {
        enum mode mode = mode_of(clock, &segments[i], &reason);
        int64_t until = segments[i].end < end_ms ? segments[i].end : end_ms, business;
        if (mode == MODE_IDLE)
            continue;
        rc = tl_calendar_elapsed(calendar, segments[i].start, until, &business);
        if (rc == 0 && mode == MODE_COUNT && out->target_ms > 0) {
            rc = cross(calendar, &due, segments[i].start, out->elapsed_ms, business);
            if (rc == 0)
                rc = cross(calendar, &warn, segments[i].start, out->elapsed_ms, business);
        }
        if (mode == MODE_COUNT)
            out->elapsed_ms += business;
        else if (mode == MODE_PAUSE && reason >= 0)
            out->paused_ms[reason] += business;
        else if (mode == MODE_STOP && clock == TL_SLA_RESOLUTION)
            out->paused_ms[TL_SLA_PAUSE_RESOLVED] += business;
    }
    if (rc == 0 && out->target_ms > 0) {
        rc = project(calendar, &due, end_ms, out->elapsed_ms);
        if (rc == 0)
            rc = project(calendar, &warn, end_ms, out->elapsed_ms);
        out->due_ms = due.at_ms;
        out->warn_ms = warn.at_ms;
    }
    if (out->target_ms > 0 && due.crossed && end_ms > due.at_ms)
        out->state = TL_SLA_BREACHED;
    else if (out->stopped)
        out->state = TL_SLA_MET;
    else
        out->state = now_mode == MODE_COUNT ? TL_SLA_RUNNING : TL_SLA_PAUSED;
    if (!out->stopped && now_mode == MODE_PAUSE)
        out->paused_by = now_reason;
    out->warning = !out->stopped && out->target_ms > 0 && out->elapsed_ms >= warn.amount;
    return rc;
}

int tl_sla_evaluate(const tl_sla_config_t *config, const tl_sla_ticket_t *ticket, int64_t now_ms,
                    tl_sla_clock_t clocks[TL_SLA_CLOCKS], char *why, size_t why_size)
{
    struct segment *segments = NULL;
    size_t count = 0;
    tl_sla_clock_t result[TL_SLA_CLOCKS];
    int rc = build_segments(ticket, now_ms, &segments, &count, why, why_size);
    for (int clock = 0; rc == 0 && clock < TL_SLA_CLOCKS; clock++)
        rc = evaluate_clock(config, (tl_sla_clock_kind_t)clock, segments, count, &result[clock]);
    if (rc == 0)
        memcpy(clocks, result, sizeof result);
    else if (rc == TL_EINVAL && segments != NULL)
        say(why, why_size, "a due time falls outside the calendar's years (1970..2199)");
    free(segments);
    return rc;
}
