/*
 * Fuzz target for the desk's SLA configuration (relay/desk/sla.c, calendar.c, zone.c;
 * docs/desk.md "SLA clocks"): the text of DATA/desk.json, and TZif files.
 *
 * Input: an input starting with "TZif" is a zone file for tl_zone_from_tzif; any other is the
 * text of desk.json for tl_sla_config_parse_text. Zones are named from a fixed table of POSIX
 * rules (no file is read), so a run depends on nothing outside the input.
 *
 * A configuration that does not parse returns TL_EINVAL, nothing, and a message that names
 * where ("sla..." or "desk.json...") on one line. One that parses holds targets of 1 minute to
 * 8760 hours, first response no later than resolution, and a calendar with working hours on
 * which business time adds up: the due time of a target is the earliest instant with that much
 * business time since the start. Clocks of a fixed ticket history then evaluate, agree with the
 * calendar, and their states agree with their due times. A zone file that reads gives offsets
 * within a day of UTC.
 */
#include "proto/err.h"
#include "relay/desk/sla.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE 60000LL
#define HOUR 3600000LL
#define DAY (24 * HOUR)
/* Friday 2026-03-27 15:00Z: the weekend Europe's clocks go forward. */
#define CREATED 1774623600000LL

static const struct {
    const char *name, *rule;
} zones[] = {
    {"UTC", "UTC0"},
    {"Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"},
    {"America/New_York", "EST5EDT,M3.2.0,M11.1.0"},
    {"Australia/Lord_Howe", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"},
    {"America/Nuuk", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"},
    {"Asia/Kolkata", "IST-5:30"},
};

static int lookup(void *arg, const char *name, tl_zone_t **zone, char *why, size_t why_size)
{
    (void)arg;
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++)
        if (strcmp(name, zones[i].name) == 0)
            return tl_zone_from_rule(zones[i].rule, zone, why, why_size);
    snprintf(why, why_size, "unknown time zone");
    return TL_ENOTFOUND;
}

static void check_message(const char *why)
{
    if (strncmp(why, "sla", 3) != 0 && strncmp(why, "desk.json", 9) != 0)
        abort();
    for (const char *c = why; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
}

/* due is the earliest instant at which duration of business time has passed since start. */
static void check_due(const tl_calendar_t *calendar, int64_t start, int64_t duration)
{
    int64_t due, elapsed, before;
    if (tl_calendar_add(calendar, start, duration, &due) != 0 ||
        tl_calendar_elapsed(calendar, start, due, &elapsed) != 0 ||
        tl_calendar_elapsed(calendar, start, due - 1, &before) != 0 || elapsed != duration ||
        before >= duration)
        abort();
}

static void check_targets(const tl_sla_config_t *config)
{
    for (int severity = 1; severity <= TL_SLA_SEVERITIES; severity++)
        for (int tier = 0; tier <= TL_SLA_TIERS; tier++) {
            int64_t first = tl_sla_config_target(config, TL_SLA_FIRST_RESPONSE, severity, tier);
            int64_t resolution = tl_sla_config_target(config, TL_SLA_RESOLUTION, severity, tier);
            if (first < MINUTE || first > resolution || resolution > TL_SLA_TARGET_MAX_MS ||
                first % MINUTE != 0 || resolution % MINUTE != 0)
                abort();
        }
    int64_t vendor = tl_sla_config_target(config, TL_SLA_VENDOR, 1, 1);
    if (vendor < 0 || vendor > TL_SLA_TARGET_MAX_MS || vendor % MINUTE != 0)
        abort();
}

static void check_clocks(const tl_sla_config_t *config, const tl_sla_ticket_t *ticket, int64_t now)
{
    const tl_calendar_t *calendar = tl_sla_config_calendar(config);
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    char why[256];
    if (tl_sla_evaluate(config, ticket, now, clocks, why, sizeof why) != 0)
        abort();
    for (int i = 0; i < TL_SLA_CLOCKS; i++) {
        const tl_sla_clock_t *clock = &clocks[i];
        int64_t end = clock->stopped ? clock->stopped_ms : now;
        if (clock->elapsed_ms < 0 || (clock->target_ms > 0 && clock->due_ms <= 0))
            abort();
        switch (clock->state) {
        case TL_SLA_BREACHED:
            if (clock->target_ms == 0 || end <= clock->due_ms ||
                clock->elapsed_ms < clock->target_ms)
                abort();
            break;
        case TL_SLA_MET:
            if (!clock->stopped || (clock->target_ms > 0 && end > clock->due_ms))
                abort();
            break;
        case TL_SLA_RUNNING:
        case TL_SLA_PAUSED:
            if (clock->stopped || (clock->target_ms > 0 && end > clock->due_ms))
                abort();
            break;
        case TL_SLA_IDLE:
            if (i != TL_SLA_VENDOR || clock->elapsed_ms != 0)
                abort();
            break;
        default:
            abort();
        }
        if (clock->warning != (!clock->stopped && clock->target_ms > 0 &&
                               clock->elapsed_ms * 4 >= clock->target_ms * 3))
            abort();
    }
    /* The resolution clock of a ticket never resolved: counted plus paused is all of it. */
    const tl_sla_clock_t *resolution = &clocks[TL_SLA_RESOLUTION];
    int64_t all;
    if (tl_calendar_elapsed(calendar, ticket->created_ms, now, &all) != 0 ||
        resolution->elapsed_ms + resolution->paused_ms[TL_SLA_PAUSE_WAITING_USER] +
                resolution->paused_ms[TL_SLA_PAUSE_WAITING_VENDOR] !=
            all)
        abort();
}

static void fuzz_config(const uint8_t *data, size_t size)
{
    char why[512];
    why[0] = '\0';
    tl_sla_config_t *config = (tl_sla_config_t *)why;
    int rc =
        tl_sla_config_parse_text((const char *)data, size, lookup, NULL, &config, why, sizeof why);
    if (rc != 0) {
        if (rc != TL_EINVAL || config != NULL)
            abort();
        check_message(why);
        return;
    }
    const tl_calendar_t *calendar = tl_sla_config_calendar(config);
    if (tl_calendar_week_ms(calendar) <= 0)
        abort();
    check_targets(config);
    int64_t s1 = tl_sla_config_target(config, TL_SLA_FIRST_RESPONSE, 1, 1);
    int64_t s4 = tl_sla_config_target(config, TL_SLA_RESOLUTION, 4, 4);
    check_due(calendar, CREATED, s1);
    check_due(calendar, CREATED + 2 * DAY + 90 * MINUTE, s4);
    check_due(calendar, CREATED + 211 * DAY + 7 * HOUR, s1);

    tl_sla_event_t events[] = {
        {.time_ms = CREATED + 10 * MINUTE,
         .kind = TL_SLA_EVENT_STATUS,
         .status = TL_SLA_STATUS_OPEN},
        {.time_ms = CREATED + HOUR,
         .kind = TL_SLA_EVENT_STATUS,
         .status = TL_SLA_STATUS_WAITING_USER},
        {.time_ms = CREATED + 3 * HOUR, .kind = TL_SLA_EVENT_STATUS, .status = TL_SLA_STATUS_OPEN},
        {.time_ms = CREATED + DAY, .kind = TL_SLA_EVENT_SEVERITY, .severity = 1},
        {.time_ms = CREATED + 2 * DAY,
         .kind = TL_SLA_EVENT_STATUS,
         .status = TL_SLA_STATUS_WAITING_VENDOR},
        {.time_ms = CREATED + 4 * DAY, .kind = TL_SLA_EVENT_TIER, .tier = 3},
        {.time_ms = CREATED + 4 * DAY, .kind = TL_SLA_EVENT_STATUS, .status = TL_SLA_STATUS_OPEN},
        {.time_ms = CREATED + 5 * DAY, .kind = TL_SLA_EVENT_ACTIVITY, .is_response = 1},
    };
    tl_sla_ticket_t ticket = {CREATED, 3, 1, events, sizeof events / sizeof events[0]};
    check_clocks(config, &ticket, CREATED + 6 * DAY);
    ticket.event_count = 2;
    check_clocks(config, &ticket, CREATED + 2 * HOUR);
    tl_sla_config_free(config);
}

static void fuzz_zone(const uint8_t *data, size_t size)
{
    char why[256];
    why[0] = '\0';
    tl_zone_t *zone = (tl_zone_t *)why;
    int rc = tl_zone_from_tzif("fuzz", data, size, &zone, why, sizeof why);
    if (rc != 0) {
        if (rc != TL_EINVAL || zone != NULL || why[0] == '\0')
            abort();
        return;
    }
    for (int64_t t = 0; t < 4102444800000LL; t += 397 * DAY + 5 * HOUR) {
        int64_t offset = tl_zone_offset(zone, t);
        if (offset <= -26 * HOUR || offset >= 26 * HOUR)
            abort();
        (void)tl_zone_to_utc(zone, t + offset);
    }
    tl_zone_free(zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "TZif", 4) == 0)
        fuzz_zone(data, size);
    else
        fuzz_config(data, size);
    return 0;
}
