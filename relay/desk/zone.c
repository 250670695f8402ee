/*
 * Time zones read once into memory (zone.h). A zone is a table of transitions (the instants its
 * offset changes, from a TZif file) followed by a POSIX TZ rule for the years after the table,
 * the way RFC 8536 lays them out. A zone made from a rule alone has an empty table.
 */
#include "relay/desk/zone.h"

#include "proto/err.h"
#include "proto/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRANSITIONS_MAX 4096
#define TYPES_MAX 256
#define CHARS_MAX 4096
/* An offset from UTC stays within a day (RFC 8536 allows -25:59:59..+25:59:59). */
#define OFFSET_MAX_S (26 * 3600 - 1)
/* A rule's change time may be -167..167 hours (RFC 8536 §3.3.1). */
#define RULE_HOURS_MAX 167
#define DAY_S 86400
#define HOUR_MS 3600000LL

enum change_kind { CHANGE_JULIAN, CHANGE_ZERO_BASED, CHANGE_MONTH };

/* When a rule changes to or from daylight time, in local time of the offset then in force. */
struct change {
    enum change_kind kind;
    int day;     /* Jn: 1..365; n: 0..365 */
    int month;   /* Mm.w.d */
    int week;    /* 1..5, 5 for the last */
    int weekday; /* 0 Sunday .. 6 */
    int32_t time_s;
};

struct rule {
    int32_t std_offset_s; /* local minus UTC */
    int32_t dst_offset_s;
    int has_dst;
    struct change start, end;
};

struct tl_zone {
    char name[TL_ZONE_RULE_MAX + 1];
    size_t transition_count;
    int64_t *transitions_s;   /* strictly ascending */
    int32_t *offsets_after_s; /* in force from transitions_s[i] */
    int32_t offset_before_s;  /* before the first transition */
    int has_rule;             /* after the last transition: rule; otherwise the last offset */
    struct rule rule;
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

/* A name or rule as a message shows it: one line, escaped, clipped. */
#define SHOWN 64
#define SHOWN_SIZE (SHOWN * 4 + 8)
#define SHOWN_TEXT(text) shown((char[SHOWN_SIZE]){0}, (text))

static const char *shown(char *out, const char *text)
{
    tl_text_clip(out, SHOWN_SIZE, text != NULL ? text : "", SHOWN, TL_TEXT_LINE);
    return out;
}

/* ---- civil dates (H. Hinnant's algorithms, proleptic Gregorian) ---- */

int64_t tl_zone_days_from_date(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

void tl_zone_date_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t mp = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = year_of_era + era * 400 + (*month <= 2);
}

int tl_zone_weekday(int64_t days)
{
    /* 1970-01-01 was a Thursday. */
    int64_t weekday = (days + 4) % 7;
    return (int)(weekday < 0 ? weekday + 7 : weekday);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* ---- POSIX TZ rules ---- */

struct cursor {
    const char *at;
};

static int read_number(struct cursor *c, int max, int *out)
{
    if (*c->at < '0' || *c->at > '9')
        return -1;
    int value = 0;
    while (*c->at >= '0' && *c->at <= '9') {
        value = value * 10 + (*c->at - '0');
        if (value > max)
            return -1;
        c->at++;
    }
    *out = value;
    return 0;
}

/* A zone abbreviation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static int read_abbreviation(struct cursor *c)
{
    size_t length = 0;
    if (*c->at == '<') {
        c->at++;
        while ((*c->at >= 'A' && *c->at <= 'Z') || (*c->at >= 'a' && *c->at <= 'z') ||
               (*c->at >= '0' && *c->at <= '9') || *c->at == '+' || *c->at == '-') {
            c->at++;
            length++;
        }
        if (*c->at != '>')
            return -1;
        c->at++;
    } else {
        while ((*c->at >= 'A' && *c->at <= 'Z') || (*c->at >= 'a' && *c->at <= 'z')) {
            c->at++;
            length++;
        }
    }
    return length >= 3 ? 0 : -1;
}

/* [+-]hh[:mm[:ss]] with hh at most max_hours, in seconds. */
static int read_time(struct cursor *c, int max_hours, int32_t *out)
{
    int sign = 1, hours = 0, minutes = 0, seconds = 0;
    if (*c->at == '+' || *c->at == '-')
        sign = *c->at++ == '-' ? -1 : 1;
    if (read_number(c, max_hours, &hours) != 0)
        return -1;
    if (*c->at == ':') {
        c->at++;
        if (read_number(c, 59, &minutes) != 0)
            return -1;
        if (*c->at == ':') {
            c->at++;
            if (read_number(c, 59, &seconds) != 0)
                return -1;
        }
    }
    *out = sign * (hours * 3600 + minutes * 60 + seconds);
    return 0;
}

static int read_change(struct cursor *c, struct change *change)
{
    memset(change, 0, sizeof *change);
    change->time_s = 2 * 3600;
    if (*c->at == 'J') {
        c->at++;
        change->kind = CHANGE_JULIAN;
        if (read_number(c, 365, &change->day) != 0 || change->day < 1)
            return -1;
    } else if (*c->at == 'M') {
        c->at++;
        change->kind = CHANGE_MONTH;
        if (read_number(c, 12, &change->month) != 0 || change->month < 1 || *c->at++ != '.' ||
            read_number(c, 5, &change->week) != 0 || change->week < 1 || *c->at++ != '.' ||
            read_number(c, 6, &change->weekday) != 0)
            return -1;
    } else {
        change->kind = CHANGE_ZERO_BASED;
        if (read_number(c, 365, &change->day) != 0)
            return -1;
    }
    if (*c->at == '/') {
        c->at++;
        if (read_time(c, RULE_HOURS_MAX, &change->time_s) != 0)
            return -1;
    }
    return 0;
}

/* rule is NUL-terminated; an empty rule is refused here (TZif footers may be empty). */
static int parse_rule(const char *text, struct rule *rule)
{
    struct cursor c = {text};
    int32_t posix_offset;
    memset(rule, 0, sizeof *rule);
    if (read_abbreviation(&c) != 0 || read_time(&c, 24, &posix_offset) != 0)
        return -1;
    /* POSIX counts hours west of Greenwich: "CET-1" is one hour ahead of UTC. */
    rule->std_offset_s = -posix_offset;
    if (*c.at == '\0')
        return 0;
    if (read_abbreviation(&c) != 0)
        return -1;
    rule->has_dst = 1;
    rule->dst_offset_s = rule->std_offset_s + 3600;
    if (*c.at != ',' && *c.at != '\0') {
        if (read_time(&c, 24, &posix_offset) != 0)
            return -1;
        rule->dst_offset_s = -posix_offset;
    }
    /* Without change rules POSIX leaves the dates to the implementation: refuse rather than
     * guess them. */
    if (*c.at++ != ',' || read_change(&c, &rule->start) != 0 || *c.at++ != ',' ||
        read_change(&c, &rule->end) != 0 || *c.at != '\0')
        return -1;
    return 0;
}

/* The local day (days since 1970) a change falls on in year. */
static int64_t change_day(const struct change *change, int64_t year)
{
    int64_t january_first = tl_zone_days_from_date(year, 1, 1);
    switch (change->kind) {
    case CHANGE_JULIAN:
        /* 1..365, February 29 never counted. */
        return january_first + change->day - 1 + (is_leap(year) && change->day >= 60);
    case CHANGE_ZERO_BASED:
        return january_first + change->day;
    case CHANGE_MONTH:
    default: {
        int64_t first = tl_zone_days_from_date(year, change->month, 1);
        int64_t day = first + (change->weekday - tl_zone_weekday(first) + 7) % 7;
        day += 7 * (change->week - 1);
        int64_t next_month = change->month == 12
                                 ? tl_zone_days_from_date(year + 1, 1, 1)
                                 : tl_zone_days_from_date(year, change->month + 1, 1);
        while (day >= next_month)
            day -= 7;
        return day;
    }
    }
}

static int32_t rule_offset(const struct rule *rule, int64_t utc_s)
{
    if (!rule->has_dst)
        return rule->std_offset_s;
    int64_t year;
    int month, day;
    tl_zone_date_from_days(floor_div(utc_s + rule->std_offset_s, DAY_S), &year, &month, &day);
    /* The start is given in standard time, the end in daylight time. */
    int64_t start =
        change_day(&rule->start, year) * DAY_S + rule->start.time_s - rule->std_offset_s;
    int64_t end = change_day(&rule->end, year) * DAY_S + rule->end.time_s - rule->dst_offset_s;
    int in_daylight =
        start < end ? (utc_s >= start && utc_s < end) : !(utc_s >= end && utc_s < start);
    return in_daylight ? rule->dst_offset_s : rule->std_offset_s;
}

/* ---- TZif (RFC 8536) ---- */

struct header {
    uint32_t isut_count, isstd_count, leap_count, time_count, type_count, char_count;
};

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t get_i64(const uint8_t *p)
{
    return (int64_t)((uint64_t)get_u32(p) << 32 | get_u32(p + 4));
}

static int read_header(const uint8_t *data, size_t size, struct header *h, int *version)
{
    if (size < 44 || memcmp(data, "TZif", 4) != 0)
        return -1;
    *version = data[4] == 0 ? 1 : data[4] - '0';
    if (data[4] != 0 && (data[4] < '2' || data[4] > '9'))
        return -1;
    h->isut_count = get_u32(data + 20);
    h->isstd_count = get_u32(data + 24);
    h->leap_count = get_u32(data + 28);
    h->time_count = get_u32(data + 32);
    h->type_count = get_u32(data + 36);
    h->char_count = get_u32(data + 40);
    return 0;
}

/* Bytes of the data block after a header, or 0 if the counts are beyond what we take. */
static size_t block_size(const struct header *h, size_t time_size)
{
    if (h->time_count > TRANSITIONS_MAX || h->type_count < 1 || h->type_count > TYPES_MAX ||
        h->char_count > CHARS_MAX || h->leap_count > TRANSITIONS_MAX ||
        (h->isut_count != 0 && h->isut_count != h->type_count) ||
        (h->isstd_count != 0 && h->isstd_count != h->type_count))
        return 0;
    return h->time_count * (time_size + 1) + h->type_count * 6 + h->char_count +
           h->leap_count * (time_size + 4) + h->isstd_count + h->isut_count;
}

static void zone_reset(tl_zone_t *zone)
{
    free(zone->transitions_s);
    free(zone->offsets_after_s);
    zone->transitions_s = NULL;
    zone->offsets_after_s = NULL;
    zone->transition_count = 0;
}

/* Fills zone's table from one data block; TL_EINVAL and why if it does not hold together. */
static int read_block(tl_zone_t *zone, const struct header *h, const uint8_t *block,
                      size_t time_size, char *why, size_t why_size)
{
    int rc = TL_EINVAL;
    const uint8_t *indices = block + h->time_count * time_size;
    const uint8_t *types = indices + h->time_count;
    int32_t offsets[TYPES_MAX];
    for (uint32_t i = 0; i < h->type_count; i++) {
        int32_t offset = (int32_t)get_u32(types + i * 6);
        if (offset < -OFFSET_MAX_S || offset > OFFSET_MAX_S || types[i * 6 + 4] > 1 ||
            types[i * 6 + 5] >= h->char_count) {
            say(why, why_size, "time type %u is out of range", (unsigned)i);
            goto out;
        }
        offsets[i] = offset;
    }
    if (h->leap_count != 0) {
        say(why, why_size, "it counts leap seconds (a \"right/\" zone): use the zone without them");
        goto out;
    }
    zone->transition_count = h->time_count;
    zone->transitions_s = calloc(h->time_count + 1, sizeof *zone->transitions_s);
    zone->offsets_after_s = calloc(h->time_count + 1, sizeof *zone->offsets_after_s);
    if (zone->transitions_s == NULL || zone->offsets_after_s == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < h->time_count; i++) {
        const uint8_t *at = block + i * time_size;
        int64_t when = time_size == 8 ? get_i64(at) : (int64_t)(int32_t)get_u32(at);
        if (i > 0 && when <= zone->transitions_s[i - 1]) {
            say(why, why_size, "its transition %u is not after the one before", (unsigned)i);
            goto out;
        }
        if (indices[i] >= h->type_count) {
            say(why, why_size, "its transition %u names no time type", (unsigned)i);
            goto out;
        }
        zone->transitions_s[i] = when;
        zone->offsets_after_s[i] = offsets[indices[i]];
    }
    zone->offset_before_s = offsets[0];
    rc = 0;
out:
    if (rc != 0)
        zone_reset(zone);
    return rc;
}

static int read_footer(tl_zone_t *zone, const uint8_t *footer, size_t size, char *why,
                       size_t why_size)
{
    char text[TL_ZONE_RULE_MAX + 1];
    const uint8_t *end = size > 1 ? memchr(footer + 1, '\n', size - 1) : NULL;
    if (size < 2 || footer[0] != '\n' || end == NULL || end + 1 != footer + size) {
        say(why, why_size, "its footer is not one line");
        return TL_EINVAL;
    }
    size_t length = (size_t)(end - footer - 1);
    if (length == 0)
        return 0;
    if (length > TL_ZONE_RULE_MAX || memchr(footer + 1, '\0', length) != NULL) {
        say(why, why_size, "its footer is not a TZ rule");
        return TL_EINVAL;
    }
    memcpy(text, footer + 1, length);
    text[length] = '\0';
    if (parse_rule(text, &zone->rule) != 0) {
        say(why, why_size, "its footer '%s' is not a TZ rule", SHOWN_TEXT(text));
        return TL_EINVAL;
    }
    zone->has_rule = 1;
    return 0;
}

static tl_zone_t *zone_new(const char *name)
{
    tl_zone_t *zone = calloc(1, sizeof *zone);
    if (zone != NULL)
        snprintf(zone->name, sizeof zone->name, "%s", name);
    return zone;
}

int tl_zone_from_tzif(const char *name, const uint8_t *data, size_t size, tl_zone_t **out,
                      char *why, size_t why_size)
{
    int rc = TL_EINVAL, version;
    struct header h;
    tl_zone_t *zone = NULL;
    *out = NULL;
    if (size > TL_ZONE_FILE_MAX || read_header(data, size, &h, &version) != 0) {
        say(why, why_size, "not a TZif file");
        goto out;
    }
    size_t v1_size = block_size(&h, 4);
    if (v1_size == 0 || v1_size > size - 44) {
        say(why, why_size, "its version 1 data is cut short or too large");
        goto out;
    }
    const uint8_t *block = data + 44;
    size_t time_size = 4, data_size = v1_size;
    if (version >= 2) {
        const uint8_t *second = block + v1_size;
        size_t left = size - 44 - v1_size;
        int second_version;
        if (read_header(second, left, &h, &second_version) != 0 || second_version != version) {
            say(why, why_size, "its second header is missing");
            goto out;
        }
        data_size = block_size(&h, 8);
        if (data_size == 0 || data_size > left - 44) {
            say(why, why_size, "its 64-bit data is cut short or too large");
            goto out;
        }
        block = second + 44;
        time_size = 8;
    }
    zone = zone_new(name);
    if (zone == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    rc = read_block(zone, &h, block, time_size, why, why_size);
    if (rc != 0)
        goto out;
    if (version >= 2) {
        const uint8_t *footer = block + data_size;
        rc = read_footer(zone, footer, (size_t)(data + size - footer), why, why_size);
    } else if (block + data_size != data + size) {
        say(why, why_size, "bytes follow its data");
        rc = TL_EINVAL;
    }
out:
    if (rc != 0)
        tl_zone_free(zone);
    else
        *out = zone;
    return rc;
}

int tl_zone_from_rule(const char *rule, tl_zone_t **out, char *why, size_t why_size)
{
    int rc = TL_EINVAL;
    tl_zone_t *zone = NULL;
    *out = NULL;
    if (rule == NULL || strlen(rule) > TL_ZONE_RULE_MAX) {
        say(why, why_size, "a TZ rule is at most %d bytes", TL_ZONE_RULE_MAX);
        goto out;
    }
    zone = zone_new(rule);
    if (zone == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (parse_rule(rule, &zone->rule) != 0) {
        say(why, why_size, "'%s' is not a TZ rule", SHOWN_TEXT(rule));
        goto out;
    }
    zone->has_rule = 1;
    zone->offset_before_s = zone->rule.std_offset_s;
    rc = 0;
out:
    if (rc != 0)
        tl_zone_free(zone);
    else
        *out = zone;
    return rc;
}

int tl_zone_name_valid(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;
    if (length == 0 || length > TL_ZONE_NAME_MAX)
        return 0;
    const char *part = name;
    for (const char *c = name;; c++) {
        if (*c == '/' || *c == '\0') {
            size_t part_length = (size_t)(c - part);
            if (part_length == 0 || (part_length == 1 && part[0] == '.') ||
                (part_length == 2 && part[0] == '.' && part[1] == '.'))
                return 0;
            if (*c == '\0')
                return 1;
            part = c + 1;
            continue;
        }
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '+' || *c == '-'))
            return 0;
    }
}

int tl_zone_load(const char *dir, const char *name, tl_zone_t **out, char *why, size_t why_size)
{
    int rc = TL_ENOTFOUND, fd = -1;
    char path[4096];
    uint8_t *data = NULL;
    size_t size = 0;
    *out = NULL;
    if (!tl_zone_name_valid(name)) {
        say(why, why_size, "unknown time zone '%s'", SHOWN_TEXT(name));
        goto out;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir ? dir : TL_ZONE_DIR, name) >=
        sizeof path) {
        rc = TL_EINVAL;
        say(why, why_size, "the zone directory's name is too long");
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT || errno == ENOTDIR || errno == EISDIR ? TL_ENOTFOUND : -errno;
        say(why, why_size, rc == TL_ENOTFOUND ? "unknown time zone '%s'" : "cannot read zone '%s'",
            name);
        goto out;
    }
    data = malloc(TL_ZONE_FILE_MAX + 1);
    if (data == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (int reads = 0; size <= TL_ZONE_FILE_MAX && reads < 1024; reads++) {
        ssize_t n = read(fd, data + size, TL_ZONE_FILE_MAX + 1 - size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno == EISDIR ? TL_ENOTFOUND : -errno;
            say(why, why_size,
                rc == TL_ENOTFOUND ? "unknown time zone '%s'" : "cannot read zone '%s'", name);
            goto out;
        }
        if (n == 0)
            break;
        size += (size_t)n;
    }
    char problem[160] = "";
    rc = tl_zone_from_tzif(name, data, size, out, problem, sizeof problem);
    if (rc == TL_EINVAL)
        say(why, why_size, "time zone '%s' cannot be used: %s", name, problem);
out:
    if (fd >= 0)
        close(fd);
    free(data);
    return rc;
}

void tl_zone_free(tl_zone_t *zone)
{
    if (zone == NULL)
        return;
    zone_reset(zone);
    free(zone);
}

const char *tl_zone_name(const tl_zone_t *zone)
{
    return zone->name;
}

static int32_t offset_s(const tl_zone_t *zone, int64_t utc_s)
{
    size_t count = zone->transition_count;
    if (count == 0 || utc_s < zone->transitions_s[0])
        return count == 0 && zone->has_rule ? rule_offset(&zone->rule, utc_s)
                                            : zone->offset_before_s;
    if (utc_s >= zone->transitions_s[count - 1])
        return zone->has_rule ? rule_offset(&zone->rule, utc_s) : zone->offsets_after_s[count - 1];
    /* The last transition at or before utc_s: transitions_s[low] <= utc_s < [high]. */
    size_t low = 0, high = count - 1;
    while (high - low > 1) {
        size_t middle = low + (high - low) / 2;
        if (zone->transitions_s[middle] <= utc_s)
            low = middle;
        else
            high = middle;
    }
    return zone->offsets_after_s[low];
}

int64_t tl_zone_offset(const tl_zone_t *zone, int64_t utc_ms)
{
    return (int64_t)offset_s(zone, floor_div(utc_ms, 1000)) * 1000;
}

int64_t tl_zone_to_utc(const tl_zone_t *zone, int64_t local_ms)
{
    /* Every instant that can show local_ms lies within a day and two hours of it; with one
     * change of offset there, the offsets in force are the ones at either end. */
    int64_t before = tl_zone_offset(zone, local_ms - 26 * HOUR_MS);
    int64_t after = tl_zone_offset(zone, local_ms + 26 * HOUR_MS);
    int64_t with_before = local_ms - before, with_after = local_ms - after;
    int before_fits = tl_zone_offset(zone, with_before) == before;
    int after_fits = tl_zone_offset(zone, with_after) == after;
    if (before_fits && after_fits)
        return with_before < with_after ? with_before : with_after;
    if (before_fits)
        return with_before;
    if (after_fits)
        return with_after;
    /* A gap: the clocks went forward over local_ms. Its end is the change, which lies in
     * (with_after, with_before]: find it (changes fall on whole seconds). */
    int64_t low = with_after, high = with_before;
    if (high <= low || tl_zone_offset(zone, high) != after)
        return local_ms - tl_zone_offset(zone, local_ms);
    for (int steps = 0; high - low > 1 && steps < 64; steps++) {
        int64_t middle = low + (high - low) / 2;
        if (tl_zone_offset(zone, middle) == after)
            high = middle;
        else
            low = middle;
    }
    return high;
}
