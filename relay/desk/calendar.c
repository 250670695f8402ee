/*
 * Business calendars (calendar.h, docs/desk.md "SLA clocks").
 *
 * Working hours are written in wall-clock time and turned into instants one local day at a
 * time, through the zone (tl_zone_to_utc): so a day on which the clocks change has the length
 * it really has (a Sunday worked 00:00-24:00 in Berlin is 23 hours in March and 25 in
 * October), and hours that fall in the skipped hour are not counted.
 */
#include "relay/desk/calendar.h"

#include "proto/err.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000LL
#define DAY_MS 86400000LL
#define DAY_MINUTES 1440
/* Holiday dates the configuration may name. */
#define YEAR_MIN 1970
#define YEAR_MAX 2199

/* Working intervals of one day, in minutes after local midnight, sorted and disjoint. */
struct hours {
    int count;
    int start[TL_CALENDAR_INTERVALS_MAX];
    int end[TL_CALENDAR_INTERVALS_MAX];
};

struct holiday {
    int64_t day; /* days since 1970-01-01 */
    struct hours hours;
};

struct tl_calendar {
    int always;
    tl_zone_t *zone;
    struct hours week[7];     /* by weekday, 0 Sunday */
    struct holiday *holidays; /* sorted by day */
    size_t holiday_count;
};

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

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

int tl_zone_lookup_files(void *dir, const char *name, tl_zone_t **zone, char *why, size_t why_size)
{
    return tl_zone_load(dir, name, zone, why, why_size);
}

/* ---- parsing ---- */

static int two_digits(const char *text)
{
    if (text[0] < '0' || text[0] > '9' || text[1] < '0' || text[1] > '9')
        return -1;
    return (text[0] - '0') * 10 + (text[1] - '0');
}

/* "HH:MM", 00:00..24:00, in minutes; -1 if it is not one. */
static int parse_clock(const char *text)
{
    int hours = two_digits(text), minutes = two_digits(text + 3);
    if (hours < 0 || text[2] != ':' || minutes < 0 || minutes > 59 || hours > 24 ||
        (hours == 24 && minutes != 0))
        return -1;
    return hours * 60 + minutes;
}

/* One "HH:MM-HH:MM" into hours, kept sorted; where names it in messages. */
static int parse_interval(const json_t *value, const char *where, struct hours *hours, char *why,
                          size_t why_size)
{
    const char *text = json_string_value(value);
    if (text == NULL || strlen(text) != 11 || text[5] != '-') {
        say(why, why_size, "%s: not hours like \"09:00-17:00\"", where);
        return TL_EINVAL;
    }
    int start = parse_clock(text), end = parse_clock(text + 6);
    if (start < 0 || end < 0) {
        say(why, why_size, "%s: '%s' holds an impossible time (times are 00:00..24:00)", where,
            SHOWN_TEXT(text));
        return TL_EINVAL;
    }
    if (start == DAY_MINUTES) {
        say(why, why_size, "%s: '%s' starts at the end of the day", where, SHOWN_TEXT(text));
        return TL_EINVAL;
    }
    if (end <= start) {
        say(why, why_size,
            "%s: '%s' ends %s it starts (hours stay within one day: split them at 24:00)", where,
            SHOWN_TEXT(text), end == start ? "when" : "before");
        return TL_EINVAL;
    }
    if (hours->count == TL_CALENDAR_INTERVALS_MAX) {
        say(why, why_size, "%s: more than %d intervals in a day", where, TL_CALENDAR_INTERVALS_MAX);
        return TL_EINVAL;
    }
    int at = hours->count;
    while (at > 0 && hours->start[at - 1] > start) {
        hours->start[at] = hours->start[at - 1];
        hours->end[at] = hours->end[at - 1];
        at--;
    }
    hours->start[at] = start;
    hours->end[at] = end;
    hours->count++;
    if ((at > 0 && hours->end[at - 1] > start) ||
        (at + 1 < hours->count && end > hours->start[at + 1])) {
        say(why, why_size, "%s: '%s' overlaps other hours of the same day", where,
            SHOWN_TEXT(text));
        return TL_EINVAL;
    }
    return 0;
}

/* A day's hours: one "HH:MM-HH:MM" or an array of them ([] for none). */
static int parse_hours(const json_t *value, const char *where, struct hours *hours, char *why,
                       size_t why_size)
{
    char place[160];
    memset(hours, 0, sizeof *hours);
    if (!json_is_array(value))
        return parse_interval(value, where, hours, why, why_size);
    size_t index;
    const json_t *item;
    json_array_foreach(value, index, item) {
        say(place, sizeof place, "%s[%zu]", where, index);
        int rc = parse_interval(item, place, hours, why, why_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parse_week(const json_t *value, const char *where, tl_calendar_t *calendar, char *why,
                      size_t why_size)
{
    char place[160];
    const char *key;
    const json_t *day_hours;
    if (!json_is_object(value)) {
        say(why, why_size, "%s.hours: not an object of days", where);
        return TL_EINVAL;
    }
    json_object_foreach((json_t *)value, key, day_hours) {
        int day = 0;
        while (day < 7 && strcmp(key, day_names[day]) != 0)
            day++;
        if (day == 7) {
            say(why, why_size,
                "%s.hours: unknown day '%s' (days are mon, tue, wed, thu, fri, sat, sun)", where,
                SHOWN_TEXT(key));
            return TL_EINVAL;
        }
        say(place, sizeof place, "%s.hours.%s", where, key);
        int rc = parse_hours(day_hours, place, &calendar->week[day], why, why_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* "YYYY-MM-DD" in YEAR_MIN..YEAR_MAX, as days since 1970; -1 if it is not a date. */
static int64_t parse_date(const char *text)
{
    if (text == NULL || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return -1;
    int century = two_digits(text), year_in_century = two_digits(text + 2);
    int month = two_digits(text + 5), day = two_digits(text + 8);
    if (century < 0 || year_in_century < 0 || month < 1 || month > 12 || day < 1)
        return -1;
    int year = century * 100 + year_in_century;
    int64_t days = tl_zone_days_from_date(year, month, day);
    int64_t check_year;
    int check_month, check_day;
    tl_zone_date_from_days(days, &check_year, &check_month, &check_day);
    if (year < YEAR_MIN || year > YEAR_MAX || check_month != month || check_day != day)
        return -1;
    return days;
}

static int parse_holiday(const json_t *value, const char *where, struct holiday *holiday, char *why,
                         size_t why_size)
{
    char place[160];
    const json_t *date = value;
    memset(holiday, 0, sizeof *holiday);
    if (json_is_object(value)) {
        const char *key;
        const json_t *member;
        json_object_foreach((json_t *)value, key, member) {
            if (strcmp(key, "date") != 0 && strcmp(key, "hours") != 0) {
                say(why, why_size, "%s: unknown member '%s' (a holiday has date and hours)", where,
                    SHOWN_TEXT(key));
                return TL_EINVAL;
            }
        }
        date = json_object_get(value, "date");
        const json_t *hours = json_object_get(value, "hours");
        if (hours != NULL) {
            say(place, sizeof place, "%s.hours", where);
            int rc = parse_hours(hours, place, &holiday->hours, why, why_size);
            if (rc != 0)
                return rc;
        }
    }
    holiday->day = parse_date(json_string_value(date));
    if (holiday->day < 0) {
        const char *text = json_string_value(date);
        if (text != NULL)
            say(why, why_size, "%s: '%s' is not a date YYYY-MM-DD (years %d..%d)", where,
                SHOWN_TEXT(text), YEAR_MIN, YEAR_MAX);
        else
            say(why, why_size, "%s: not a date \"YYYY-MM-DD\" or {\"date\": ..., \"hours\": ...}",
                where);
        return TL_EINVAL;
    }
    return 0;
}

static int compare_holidays(const void *a, const void *b)
{
    const struct holiday *x = a, *y = b;
    return (x->day > y->day) - (x->day < y->day);
}

static int parse_holidays(const json_t *value, const char *where, tl_calendar_t *calendar,
                          char *why, size_t why_size)
{
    char place[160];
    if (!json_is_array(value)) {
        say(why, why_size, "%s.holidays: not an array of dates", where);
        return TL_EINVAL;
    }
    size_t count = json_array_size(value);
    if (count > TL_CALENDAR_HOLIDAYS_MAX) {
        say(why, why_size, "%s.holidays: more than %d holidays", where, TL_CALENDAR_HOLIDAYS_MAX);
        return TL_EINVAL;
    }
    if (count == 0)
        return 0;
    calendar->holidays = calloc(count, sizeof *calendar->holidays);
    if (calendar->holidays == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        say(place, sizeof place, "%s.holidays[%zu]", where, i);
        int rc =
            parse_holiday(json_array_get(value, i), place, &calendar->holidays[i], why, why_size);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (calendar->holidays[j].day == calendar->holidays[i].day) {
                int64_t year;
                int month, day;
                tl_zone_date_from_days(calendar->holidays[i].day, &year, &month, &day);
                say(why, why_size, "%s: %04d-%02d-%02d is given twice (also holidays[%zu])", place,
                    (int)year, month, day, j);
                return TL_EINVAL;
            }
        calendar->holiday_count++;
    }
    qsort(calendar->holidays, count, sizeof *calendar->holidays, compare_holidays);
    return 0;
}

static int check_members(const json_t *config, const char *where, char *why, size_t why_size)
{
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)config, key, value) {
        if (strcmp(key, "zone") != 0 && strcmp(key, "hours") != 0 && strcmp(key, "holidays") != 0 &&
            strcmp(key, "24x7") != 0) {
            say(why, why_size,
                "%s: unknown member '%s' (a calendar has zone, hours, holidays or 24x7)", where,
                SHOWN_TEXT(key));
            return TL_EINVAL;
        }
    }
    const json_t *always = json_object_get(config, "24x7");
    if (always != NULL && !json_is_boolean(always)) {
        say(why, why_size, "%s.24x7: not true or false", where);
        return TL_EINVAL;
    }
    if (json_is_true(always) &&
        (json_object_get(config, "hours") != NULL || json_object_get(config, "holidays") != NULL)) {
        say(why, why_size, "%s: a 24x7 calendar has no hours or holidays", where);
        return TL_EINVAL;
    }
    return 0;
}

static int parse_zone(const json_t *config, const char *where, tl_zone_lookup_fn lookup,
                      void *lookup_arg, tl_calendar_t *calendar, char *why, size_t why_size)
{
    char problem[200] = "";
    const json_t *zone = json_object_get(config, "zone");
    if (zone == NULL && calendar->always)
        return 0;
    if (zone == NULL || !json_is_string(zone)) {
        say(why, why_size, "%s.zone: %s (an IANA name such as \"Europe/Berlin\")", where,
            zone == NULL ? "missing" : "not a string");
        return TL_EINVAL;
    }
    int rc = lookup(lookup_arg, json_string_value(zone), &calendar->zone, problem, sizeof problem);
    if (rc != 0) {
        calendar->zone = NULL;
        say(why, why_size, "%s.zone: %s", where, problem[0] ? problem : tl_strerror(rc));
        return rc == TL_ENOTFOUND ? TL_EINVAL : rc;
    }
    return 0;
}

int64_t tl_calendar_week_ms(const tl_calendar_t *calendar)
{
    if (calendar->always)
        return 7 * DAY_MS;
    int64_t minutes = 0;
    for (int day = 0; day < 7; day++)
        for (int i = 0; i < calendar->week[day].count; i++)
            minutes += calendar->week[day].end[i] - calendar->week[day].start[i];
    return minutes * MINUTE_MS;
}

int tl_calendar_parse(const json_t *config, const char *where, tl_zone_lookup_fn lookup,
                      void *lookup_arg, tl_calendar_t **out, char *why, size_t why_size)
{
    int rc = TL_EINVAL;
    tl_calendar_t *calendar = NULL;
    *out = NULL;
    if (!json_is_object(config)) {
        say(why, why_size, "%s: not an object (zone, hours, holidays, or 24x7)", where);
        goto out;
    }
    rc = check_members(config, where, why, why_size);
    if (rc != 0)
        goto out;
    calendar = calloc(1, sizeof *calendar);
    if (calendar == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    calendar->always = json_is_true(json_object_get(config, "24x7"));
    rc = parse_zone(config, where, lookup, lookup_arg, calendar, why, why_size);
    if (rc != 0 || calendar->always)
        goto out;
    const json_t *hours = json_object_get(config, "hours");
    const json_t *holidays = json_object_get(config, "holidays");
    rc = hours != NULL ? parse_week(hours, where, calendar, why, why_size) : 0;
    if (rc == 0 && holidays != NULL)
        rc = parse_holidays(holidays, where, calendar, why, why_size);
    if (rc == 0 && tl_calendar_week_ms(calendar) == 0) {
        say(why, why_size, "%s: no working hours in the week (give \"hours\", or \"24x7\": true)",
            where);
        rc = TL_EINVAL;
    }
out:
    if (rc != 0)
        tl_calendar_free(calendar);
    else
        *out = calendar;
    return rc;
}

void tl_calendar_free(tl_calendar_t *calendar)
{
    if (calendar == NULL)
        return;
    tl_zone_free(calendar->zone);
    free(calendar->holidays);
    free(calendar);
}

int tl_calendar_always(const tl_calendar_t *calendar)
{
    return calendar->always;
}

const tl_zone_t *tl_calendar_zone(const tl_calendar_t *calendar)
{
    return calendar->zone;
}

/* ---- business time ---- */

static const struct hours *hours_of(const tl_calendar_t *calendar, int64_t day)
{
    size_t low = 0, high = calendar->holiday_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (calendar->holidays[middle].day < day)
            low = middle + 1;
        else
            high = middle;
    }
    if (low < calendar->holiday_count && calendar->holidays[low].day == day)
        return &calendar->holidays[low].hours;
    return &calendar->week[tl_zone_weekday(day)];
}

/*
 * A local day's working intervals as instants, from the day before the one holding the first
 * instant asked, up to last_day. Instants never go backwards from one interval to the next
 * (floor keeps them ordered where a zone's offset changes twice in a day).
 */
struct walk {
    const tl_calendar_t *calendar;
    int64_t day;
    int64_t last_day;
    int index;
    int64_t floor;
};

static int64_t local_day(const tl_calendar_t *calendar, int64_t utc_ms)
{
    int64_t local = utc_ms + tl_zone_offset(calendar->zone, utc_ms);
    return local / DAY_MS - (local % DAY_MS < 0);
}

static void walk_start(struct walk *walk, const tl_calendar_t *calendar, int64_t from_ms,
                       int64_t days)
{
    walk->calendar = calendar;
    walk->day = local_day(calendar, from_ms) - 1;
    walk->last_day = walk->day + 2 + days;
    walk->index = 0;
    walk->floor = 0;
}

/* The next working interval [*start, *end); 0 once past the last day. */
static int walk_next(struct walk *walk, int64_t *start, int64_t *end)
{
    const struct hours *hours = hours_of(walk->calendar, walk->day);
    while (walk->index >= hours->count) {
        if (walk->day >= walk->last_day)
            return 0;
        walk->day++;
        walk->index = 0;
        hours = hours_of(walk->calendar, walk->day);
    }
    int64_t midnight = walk->day * DAY_MS;
    *start = tl_zone_to_utc(walk->calendar->zone, midnight + hours->start[walk->index] * MINUTE_MS);
    *end = tl_zone_to_utc(walk->calendar->zone, midnight + hours->end[walk->index] * MINUTE_MS);
    walk->index++;
    if (*start < walk->floor)
        *start = walk->floor;
    if (*end < *start)
        *end = *start;
    walk->floor = *end;
    return 1;
}

static int in_range(int64_t utc_ms)
{
    return utc_ms >= 0 && utc_ms <= TL_CALENDAR_TIME_MAX;
}

int tl_calendar_add(const tl_calendar_t *calendar, int64_t start_ms, int64_t duration_ms,
                    int64_t *due_ms)
{
    int64_t result = -1;
    if (!in_range(start_ms) || duration_ms < 0 || duration_ms > TL_CALENDAR_TIME_MAX)
        return TL_EINVAL;
    if (duration_ms == 0 || calendar->always) {
        result = start_ms + duration_ms;
    } else {
        struct walk walk;
        int64_t start, end, left = duration_ms;
        walk_start(&walk, calendar, start_ms, TL_CALENDAR_SCAN_DAYS);
        while (result < 0 && walk_next(&walk, &start, &end) && start <= TL_CALENDAR_TIME_MAX) {
            if (end <= start_ms)
                continue;
            if (start < start_ms)
                start = start_ms;
            if (end - start >= left)
                result = start + left;
            else
                left -= end - start;
        }
    }
    if (!in_range(result))
        return TL_EINVAL;
    *due_ms = result;
    return 0;
}

int tl_calendar_elapsed(const tl_calendar_t *calendar, int64_t from_ms, int64_t to_ms,
                        int64_t *elapsed_ms)
{
    if (!in_range(from_ms) || !in_range(to_ms))
        return TL_EINVAL;
    int64_t sum = 0;
    if (to_ms <= from_ms) {
        sum = 0;
    } else if (calendar->always) {
        sum = to_ms - from_ms;
    } else {
        struct walk walk;
        int64_t start, end;
        /* Both instants are within TL_CALENDAR_TIME_MAX: some 84,000 days at most. */
        walk_start(&walk, calendar, from_ms,
                   local_day(calendar, to_ms) - local_day(calendar, from_ms));
        while (walk_next(&walk, &start, &end) && start < to_ms) {
            if (start < from_ms)
                start = from_ms;
            if (end > to_ms)
                end = to_ms;
            if (end > start)
                sum += end - start;
        }
    }
    *elapsed_ms = sum;
    return 0;
}
