/* A ticket's SLA clocks from its history of changes (relay/desk/clocks.h). */
#include "relay/desk/clocks.h"

#include "proto/err.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000LL
#define DAY_MS 86400000LL

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

/* One digit from low to high, as the history writes numbers; -1 otherwise. */
static int digit_value(const char *text, int low, int high)
{
    if (text == NULL || text[0] < '0' + low || text[0] > '0' + high || text[1] != '\0')
        return -1;
    return text[0] - '0';
}

/* What a row is to the clocks: 1 and *event filled, 0 for a field no clock follows, or
 * TL_EINVAL. */
static int event_of(const tl_ticket_change_row_t *row, size_t index, tl_sla_event_t *event,
                    char *why, size_t why_size)
{
    const char *field = row->field != NULL ? row->field : "";
    char value[48];
    memset(event, 0, sizeof *event);
    if (strcmp(field, "status") == 0) {
        event->kind = TL_SLA_EVENT_STATUS;
        if (tl_sla_status_from_name(row->value, &event->status) == 0)
            return 1;
    } else if (strcmp(field, "severity") == 0) {
        event->kind = TL_SLA_EVENT_SEVERITY;
        if ((event->severity = digit_value(row->value, 1, TL_SLA_SEVERITIES)) > 0)
            return 1;
    } else if (strcmp(field, "tier") == 0) {
        event->kind = TL_SLA_EVENT_TIER;
        if ((event->tier = digit_value(row->value, 0, TL_SLA_TIERS)) >= 0)
            return 1;
    } else if (strcmp(field, "assignee") == 0) {
        event->kind = TL_SLA_EVENT_ASSIGNEE;
        return 1;
    } else if (strcmp(field, "response") == 0) {
        event->kind = TL_SLA_EVENT_ACTIVITY;
        event->is_response = 1;
        return 1;
    } else {
        return 0;
    }
    tl_text_clip(value, sizeof value, row->value != NULL ? row->value : "", 16, TL_TEXT_LINE);
    say(why, why_size, "change %zu: '%s' is not a %s", index, value, field);
    return TL_EINVAL;
}

int tl_clocks_events(const tl_ticket_change_row_t *rows, size_t count, int64_t created_ms,
                     int severity, int tier, int64_t now_ms, tl_sla_ticket_t *ticket,
                     tl_sla_event_t **events, char *why, size_t why_size)
{
    tl_sla_event_t *list = NULL;
    size_t used = 0;
    int rc = 0, start_severity = 0, start_tier = -1;
    int64_t at = created_ms;
    *events = NULL;
    if (count > TL_SLA_EVENTS_MAX) {
        say(why, why_size, "more than %d changes", TL_SLA_EVENTS_MAX);
        return TL_EINVAL;
    }
    if (count > 0 && (list = calloc(count, sizeof *list)) == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        tl_sla_event_t event;
        int is_event = event_of(&rows[i], i, &event, why, why_size);
        if (is_event < 0) {
            rc = is_event;
            goto out;
        }
        if (!is_event)
            continue;
        if (event.kind == TL_SLA_EVENT_SEVERITY && start_severity == 0)
            start_severity = event.severity;
        if (event.kind == TL_SLA_EVENT_TIER && start_tier < 0)
            start_tier = event.tier;
        /* In order and within the ticket's life, whatever the clock said when it was written. */
        if (rows[i].time > at)
            at = rows[i].time;
        if (at > now_ms)
            at = now_ms;
        event.time_ms = at;
        list[used++] = event;
    }
    memset(ticket, 0, sizeof *ticket);
    ticket->created_ms = created_ms;
    ticket->severity = start_severity > 0 ? start_severity : severity;
    ticket->tier = start_tier >= 0 ? start_tier : tier;
    ticket->events = list;
    ticket->event_count = used;
    *events = list;
    list = NULL;
out:
    free(list);
    return rc;
}

int tl_clocks_evaluate(tl_store_t *store, const tl_sla_config_t *config, const tl_ticket_row_t *row,
                       int64_t now_ms, tl_sla_clock_t clocks[TL_SLA_CLOCKS], char *why,
                       size_t why_size)
{
    tl_ticket_change_rows_t changes = {0};
    tl_sla_event_t *events = NULL;
    tl_sla_ticket_t ticket;
    /* A ticket made after now (another relay's clock ahead of ours) is evaluated at its start. */
    if (now_ms < row->created)
        now_ms = row->created;
    int rc = tl_store_ticket_changes_read(store, row->id, &changes);
    if (rc == 0)
        rc = tl_clocks_events(changes.rows, changes.count, row->created, row->severity, row->tier,
                              now_ms, &ticket, &events, why, why_size);
    if (rc == 0)
        rc = tl_sla_evaluate(config, &ticket, now_ms, clocks, why, why_size);
    free(events);
    tl_ticket_change_rows_free(&changes);
    return rc;
}

int64_t tl_clocks_next_due(const tl_sla_clock_t clocks[TL_SLA_CLOCKS])
{
    int64_t next = 0;
    for (int i = 0; i < TL_SLA_CLOCKS; i++) {
        const tl_sla_clock_t *clock = &clocks[i];
        if (clock->state == TL_SLA_IDLE || clock->stopped || clock->due_ms <= 0)
            continue;
        if (next == 0 || clock->due_ms < next)
            next = clock->due_ms;
    }
    return next;
}

unsigned tl_clocks_breaching(const tl_sla_clock_t clocks[TL_SLA_CLOCKS])
{
    unsigned which = 0;
    for (int i = 0; i < TL_SLA_CLOCKS; i++)
        if (clocks[i].warning || clocks[i].state == TL_SLA_BREACHED)
            which |= 1u << i;
    return which;
}

const char *tl_clocks_state_word(const tl_sla_clock_t *clock)
{
    if (clock->warning && clock->state != TL_SLA_BREACHED)
        return "warning";
    return tl_sla_state_name(clock->state);
}

const char *tl_clocks_zone_name(const tl_sla_config_t *config)
{
    const tl_zone_t *zone =
        config != NULL ? tl_calendar_zone(tl_sla_config_calendar(config)) : NULL;
    return zone != NULL ? tl_zone_name(zone) : "UTC";
}

void tl_clocks_format_time(const tl_sla_config_t *config, int64_t ms, char out[TL_CLOCKS_TIME_SIZE])
{
    const tl_zone_t *zone =
        config != NULL ? tl_calendar_zone(tl_sla_config_calendar(config)) : NULL;
    if (ms <= 0) {
        snprintf(out, TL_CLOCKS_TIME_SIZE, "-");
        return;
    }
    int64_t offset = zone != NULL ? tl_zone_offset(zone, ms) : 0;
    int64_t local = ms + offset;
    int64_t days = local >= 0 ? local / DAY_MS : (local - DAY_MS + 1) / DAY_MS;
    int64_t minute_of_day = (local - days * DAY_MS) / MINUTE_MS, year;
    int month, day;
    tl_zone_date_from_days(days, &year, &month, &day);
    char suffix[16] = "Z";
    if (zone != NULL) {
        int64_t minutes = (offset < 0 ? -offset : offset) / MINUTE_MS;
        int hours = (int)(minutes / 60 % 100), rest = (int)(minutes % 60);
        snprintf(suffix, sizeof suffix, "%c%02d:%02d", offset < 0 ? '-' : '+', hours, rest);
    }
    snprintf(out, TL_CLOCKS_TIME_SIZE, "%04lld-%02d-%02d %02lld:%02lld%s", (long long)year, month,
             day, (long long)(minute_of_day / 60), (long long)(minute_of_day % 60), suffix);
}

void tl_clocks_format_duration(int64_t ms, char out[TL_CLOCKS_DURATION_SIZE])
{
    int64_t minutes = ms > 0 ? ms / MINUTE_MS : 0;
    if (minutes < 60)
        snprintf(out, TL_CLOCKS_DURATION_SIZE, "%lldm", (long long)minutes);
    else if (minutes % 60 == 0)
        snprintf(out, TL_CLOCKS_DURATION_SIZE, "%lldh", (long long)(minutes / 60));
    else
        snprintf(out, TL_CLOCKS_DURATION_SIZE, "%lldh%02lldm", (long long)(minutes / 60),
                 (long long)(minutes % 60));
}
