/* Tier 4: hand-offs to vendors and the vendors' accounts (relay/desk/vendor.h). */
#include "relay/desk/vendor.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "proto/text.h"

#include <string.h>

#define MINUTE_MS 60000LL
#define DAY_MS 86400000LL

/* Days from 1970-01-01 to the civil date (proleptic Gregorian); the date is valid. */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static int month_days(int64_t year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

/* count digits at text as a number; -1 if any is not a digit. */
static int64_t digits(const char *text, int count)
{
    int64_t value = 0;
    for (int i = 0; i < count; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

/* "YYYY-MM-DD", "YYYY-MM-DDTHH:MMZ" or "YYYY-MM-DDTHH:MM:SSZ": 0 and *ms, or TL_EINVAL. */
static int parse_date(const char *text, enum tl_vendor_day day_rule, int64_t *ms)
{
    size_t len = strlen(text);
    if (len != 10 && len != 17 && len != 20)
        return TL_EINVAL;
    int64_t year = digits(text, 4), month = digits(text + 5, 2), day = digits(text + 8, 2);
    if (text[4] != '-' || text[7] != '-' || year < 1970 || year > 9999 || month < 1 || month > 12 ||
        day < 1 || day > month_days(year, (int)month))
        return TL_EINVAL;
    int64_t start = days_from_civil(year, (int)month, (int)day) * DAY_MS;
    if (len == 10) {
        *ms = day_rule == TL_VENDOR_DAY_END ? start + DAY_MS : start;
        return 0;
    }
    int64_t hour = digits(text + 11, 2), minute = digits(text + 14, 2), second = 0;
    if (text[10] != 'T' || text[13] != ':' || text[len - 1] != 'Z')
        return TL_EINVAL;
    if (len == 20 && (text[16] != ':' || (second = digits(text + 17, 2)) < 0))
        return TL_EINVAL;
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second > 59)
        return TL_EINVAL;
    *ms = start + ((hour * 60 + minute) * 60 + second) * 1000;
    return 0;
}

/* "2d", "36h", "90m", "1w", "1d12h": 0 and *ms, or TL_EINVAL. */
static int parse_duration(const char *text, int64_t *ms)
{
    int64_t total = 0, number = 0;
    int count = 0;
    if (*text == '\0')
        return TL_EINVAL;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++count > 6)
                return TL_EINVAL;
            number = number * 10 + (*p - '0');
            continue;
        }
        int64_t unit = *p == 'm'   ? MINUTE_MS
                       : *p == 'h' ? 60 * MINUTE_MS
                       : *p == 'd' ? DAY_MS
                       : *p == 'w' ? 7 * DAY_MS
                                   : 0;
        if (unit == 0 || count == 0)
            return TL_EINVAL;
        total += number * unit;
        number = 0;
        count = 0;
    }
    if (count != 0) /* a number without its unit */
        return TL_EINVAL;
    *ms = total;
    return 0;
}

int tl_vendor_date_parse(const char *text, enum tl_vendor_day day, int64_t *out_ms)
{
    if (text == NULL || strlen(text) < 5 || text[4] != '-')
        return TL_EINVAL;
    return parse_date(text, day, out_ms);
}

int tl_vendor_when_parse(const char *text, int64_t now_ms, enum tl_vendor_day day, int64_t *out_ms,
                         const char **problem)
{
    int64_t when = 0, duration = 0;
    if (text != NULL && strlen(text) >= 5 && text[4] == '-') {
        if (parse_date(text, day, &when) != 0) {
            *problem = "'%s' is not a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MMZ (UTC)";
            return TL_EINVAL;
        }
    } else if (text != NULL && parse_duration(text, &duration) == 0) {
        if (duration < MINUTE_MS) {
            *problem = "'%s' is less than a minute";
            return TL_EINVAL;
        }
        if (duration > TL_VENDOR_AHEAD_MAX_MS) {
            *problem = "'%s' is more than ten years ahead";
            return TL_EINVAL;
        }
        when = now_ms + duration;
    } else {
        *problem = "'%s' is not a duration like 2d, 36h or 90m, nor a date YYYY-MM-DD";
        return TL_EINVAL;
    }
    if (when <= now_ms) {
        *problem = "'%s' is in the past";
        return TL_EINVAL;
    }
    if (when - now_ms > TL_VENDOR_AHEAD_MAX_MS) {
        *problem = "'%s' is more than ten years ahead";
        return TL_EINVAL;
    }
    *out_ms = when;
    return 0;
}

int tl_vendor_text_valid(const char *text)
{
    size_t len = text != NULL ? strlen(text) : 0;
    if (len == 0 || len > TL_VENDOR_TEXT_MAX || !tl_text_utf8_valid(text, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        /* C0 controls and DEL; C1 controls are U+0080..U+009F, 0xC2 0x80..0x9F in UTF-8. */
        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] < 0xa0))
            return 0;
    }
    return 1;
}

int tl_vendor_ticket_access(tl_store_t *store, int role, const char *user, int64_t ticket_id,
                            int64_t now_ms, int64_t *until_ms)
{
    int64_t expires = 0;
    if (until_ms != NULL)
        *until_ms = 0;
    if (!tl_role_ticket_bound(role))
        return 0;
    int rc = tl_store_grant_find(store, user, ticket_id, &expires);
    if (rc == 0 && expires <= now_ms)
        rc = TL_ENOTFOUND; /* the binding has run out */
    if (rc == 0 && until_ms != NULL)
        *until_ms = expires;
    return rc;
}
