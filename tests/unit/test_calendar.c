/*
 * Business calendars and their time zones (relay/desk/calendar.h, relay/desk/zone.h): due times
 * across evenings, weekends, holidays, lunch breaks and changes of daylight saving time, zones
 * read from the system's tz database and checked against the C library, and calendars that do
 * not parse, each with the message that names the problem.
 *
 * Times in the cases are written in UTC with the local time beside them: Berlin is UTC+1 in
 * winter (CET) and UTC+2 in summer (CEST); in 2026 the clocks go forward on 29 March at 02:00
 * and back on 25 October at 03:00.
 */
#include "tl_test.h"

#include "relay/desk/calendar.h"
#include "relay/desk/zone.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MINUTE 60000LL
#define HOUR 3600000LL

/* An instant, from UTC date and time (the C library's timegm, not the code under test). */
static int64_t utc(int year, int month, int day, int hour, int minute)
{
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = minute};
    return (int64_t)timegm(&tm) * 1000;
}

static void print_instant(const char *label, int64_t ms)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    char text[40];
    gmtime_r(&seconds, &tm);
    strftime(text, sizeof text, "%a %Y-%m-%d %H:%M:%SZ", &tm);
    print_message("%s %s (%lld ms)\n", label, text, (long long)ms);
}

#define ASSERT_INSTANT(expected, actual)                                                           \
    do {                                                                                           \
        int64_t tl_expected_ = (expected), tl_actual_ = (actual);                                  \
        if (tl_expected_ != tl_actual_) {                                                          \
            print_instant("expected", tl_expected_);                                               \
            print_instant("actual  ", tl_actual_);                                                 \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define OFFICE_WEEK                                                                                \
    "\"mon\": \"09:00-17:00\", \"tue\": \"09:00-17:00\", \"wed\": \"09:00-17:00\", "               \
    "\"thu\": \"09:00-17:00\", \"fri\": \"09:00-17:00\""

/* A calendar from JSON text, on the system's zones; fails the test if it does not parse. */
static tl_calendar_t *calendar_of(const char *text)
{
    char why[256] = "";
    json_error_t error;
    json_t *config = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    if (config == NULL)
        fail_msg("fixture JSON: %s", error.text);
    tl_calendar_t *calendar = NULL;
    int rc = tl_calendar_parse(config, "calendar", tl_zone_lookup_files, NULL, &calendar, why,
                               sizeof why);
    json_decref(config);
    if (rc != 0)
        fail_msg("calendar does not parse: %s (%s)", why, tl_strerror(rc));
    return calendar;
}

static int64_t due(const tl_calendar_t *calendar, int64_t start, int64_t duration)
{
    int64_t result = -1;
    TL_ASSERT_OK(tl_calendar_add(calendar, start, duration, &result));
    return result;
}

static int64_t elapsed(const tl_calendar_t *calendar, int64_t from, int64_t to)
{
    int64_t result = -1;
    TL_ASSERT_OK(tl_calendar_elapsed(calendar, from, to, &result));
    return result;
}

static void test_friday_afternoon_plus_four_hours_is_monday_noon(void **state)
{
    (void)state;
    tl_calendar_t *office =
        calendar_of("{\"zone\": \"Europe/Berlin\", \"hours\": {" OFFICE_WEEK "}}");
    int64_t friday = utc(2026, 3, 13, 15, 30);                               /* Fri 16:30 CET */
    ASSERT_INSTANT(utc(2026, 3, 16, 11, 30), due(office, friday, 4 * HOUR)); /* Mon 12:30 */
    assert_int_equal(4 * HOUR, elapsed(office, friday, utc(2026, 3, 16, 11, 30)));
    /* The half hour left on Friday runs out at 17:00 that day, not on Monday morning. */
    ASSERT_INSTANT(utc(2026, 3, 13, 16, 0), due(office, friday, 30 * MINUTE));
    /* A start on Saturday counts from Monday 09:00. */
    ASSERT_INSTANT(utc(2026, 3, 16, 9, 0), due(office, utc(2026, 3, 14, 10, 0), HOUR));
    /* Nothing counts over the weekend. */
    assert_int_equal(0, elapsed(office, utc(2026, 3, 13, 16, 0), utc(2026, 3, 16, 8, 0)));
    tl_calendar_free(office);
}

static void test_several_intervals_a_day_skip_the_gaps(void **state)
{
    (void)state;
    tl_calendar_t *office = calendar_of(
        "{\"zone\": \"Europe/Berlin\", \"hours\": {\"mon\": [\"13:00-17:00\", \"09:00-12:00\"], "
        "\"tue\": [\"09:00-12:00\", \"13:00-17:00\"]}}");
    int64_t monday = utc(2026, 3, 9, 10, 30);                           /* Mon 11:30 CET */
    ASSERT_INSTANT(utc(2026, 3, 9, 12, 30), due(office, monday, HOUR)); /* 13:30 */
    assert_int_equal(2 * HOUR, elapsed(office, utc(2026, 3, 9, 10, 0), utc(2026, 3, 9, 13, 0)));
    /* 5h30 from Monday 11:30: 0h30 + 4h on Monday, the last hour on Tuesday. */
    ASSERT_INSTANT(utc(2026, 3, 10, 9, 0), due(office, monday, 5 * HOUR + 30 * MINUTE));
    assert_int_equal(7 * HOUR, tl_calendar_week_ms(office) / 2);
    tl_calendar_free(office);
}

static void test_holidays_and_half_days_are_skipped(void **state)
{
    (void)state;
    tl_calendar_t *office = calendar_of(
        "{\"zone\": \"Europe/Berlin\", \"hours\": {" OFFICE_WEEK "}, "
        "\"holidays\": [\"2026-12-25\", {\"date\": \"2026-12-24\", \"hours\": \"09:00-12:00\"}, "
        "\"2027-01-01\"]}");
    int64_t wednesday = utc(2026, 12, 23, 15, 0); /* Wed 16:00 CET */
    /* One hour on Wednesday, three on Christmas Eve's morning. */
    ASSERT_INSTANT(utc(2026, 12, 24, 11, 0), due(office, wednesday, 4 * HOUR));
    /* The fifth hour: not on the 24th's afternoon, not on the 25th (Friday), not the weekend. */
    ASSERT_INSTANT(utc(2026, 12, 28, 9, 0), due(office, wednesday, 5 * HOUR));
    assert_int_equal(4 * HOUR, elapsed(office, wednesday, utc(2026, 12, 28, 8, 0)));
    /* New Year's Day (a Friday) too. */
    ASSERT_INSTANT(utc(2027, 1, 4, 9, 0), due(office, utc(2026, 12, 31, 15, 0), 2 * HOUR));
    tl_calendar_free(office);
}

static void test_daylight_saving_days_have_23_and_25_hours(void **state)
{
    (void)state;
    tl_calendar_t *sundays =
        calendar_of("{\"zone\": \"Europe/Berlin\", \"hours\": {\"sun\": \"00:00-24:00\"}}");
    /* Sunday 29 March 2026 is 23 hours long in Berlin, Sunday 25 October 25 hours. */
    assert_int_equal(23 * HOUR, elapsed(sundays, utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0)));
    assert_int_equal(25 * HOUR, elapsed(sundays, utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0)));
    /* 12 hours from Sunday 00:00 (Sat 23:00Z) end at 13:00 CEST (11:00Z), not at noon. */
    ASSERT_INSTANT(utc(2026, 3, 29, 11, 0), due(sundays, utc(2026, 3, 28, 23, 0), 12 * HOUR));
    /* In October, at 11:00 CET (10:00Z): the repeated hour counts once more. */
    ASSERT_INSTANT(utc(2026, 10, 25, 10, 0), due(sundays, utc(2026, 10, 24, 22, 0), 12 * HOUR));
    tl_calendar_free(sundays);
}

static void test_hours_in_the_skipped_hour_do_not_count(void **state)
{
    (void)state;
    tl_calendar_t *night =
        calendar_of("{\"zone\": \"Europe/Berlin\", \"hours\": {\"sun\": \"02:00-04:00\"}}");
    /* On 29 March 02:00-03:00 does not exist: one hour, from 03:00 CEST (01:00Z). */
    assert_int_equal(HOUR, elapsed(night, utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0)));
    ASSERT_INSTANT(utc(2026, 3, 29, 1, 30), due(night, utc(2026, 3, 28, 0, 0), 30 * MINUTE));
    /* On 25 October 02:00-03:00 happens twice: three hours, from 02:00 CEST (00:00Z). */
    assert_int_equal(3 * HOUR, elapsed(night, utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0)));
    ASSERT_INSTANT(utc(2026, 10, 25, 0, 30), due(night, utc(2026, 10, 24, 0, 0), 30 * MINUTE));
    ASSERT_INSTANT(utc(2026, 10, 25, 2, 30), due(night, utc(2026, 10, 24, 0, 0), 150 * MINUTE));
    tl_calendar_free(night);
}

static void test_24x7_counts_real_time_across_a_clock_change(void **state)
{
    (void)state;
    tl_calendar_t *always = calendar_of("{\"24x7\": true, \"zone\": \"Europe/Berlin\"}");
    assert_true(tl_calendar_always(always));
    /* Saturday 12:00 CET plus 24 hours: Sunday 13:00 CEST on the wall, 24 real hours later. */
    int64_t saturday = utc(2026, 3, 28, 11, 0);
    int64_t result = due(always, saturday, 24 * HOUR);
    ASSERT_INSTANT(saturday + 24 * HOUR, result);
    int64_t wall = result + tl_zone_offset(tl_calendar_zone(always), result);
    assert_int_equal(13 * HOUR, wall % (24 * HOUR));
    assert_int_equal(36 * HOUR, elapsed(always, saturday, saturday + 36 * HOUR));
    tl_calendar_free(always);

    tl_calendar_t *utc_always = calendar_of("{\"24x7\": true}");
    assert_null(tl_calendar_zone(utc_always));
    ASSERT_INSTANT(saturday + 5 * HOUR, due(utc_always, saturday, 5 * HOUR));
    tl_calendar_free(utc_always);
}

/* Deterministic pseudo-random numbers for the property cases. */
static uint64_t next_random(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return *seed >> 33;
}

static void test_due_is_the_earliest_instant_the_time_has_passed(void **state)
{
    (void)state;
    tl_calendar_t *calendar = calendar_of(
        "{\"zone\": \"Europe/Berlin\", \"hours\": {\"mon\": [\"08:00-12:00\", \"13:00-18:30\"], "
        "\"wed\": \"00:00-24:00\", \"fri\": \"09:15-17:45\", \"sun\": \"01:30-03:30\"}, "
        "\"holidays\": [\"2026-03-27\", {\"date\": \"2026-10-24\", \"hours\": \"02:00-03:00\"}]}");
    uint64_t seed = 13;
    int64_t from = utc(2026, 1, 1, 0, 0), span = utc(2027, 1, 1, 0, 0) - from;
    for (int i = 0; i < 2000; i++) {
        int64_t start = from + (int64_t)(next_random(&seed) % (uint64_t)span);
        int64_t duration = 1 + (int64_t)(next_random(&seed) % (uint64_t)(60 * HOUR));
        int64_t result = due(calendar, start, duration);
        if (elapsed(calendar, start, result) != duration ||
            elapsed(calendar, start, result - 1) >= duration) {
            print_instant("start", start);
            print_instant("due", result);
            fail_msg("duration %lld ms: elapsed to due %lld, to due - 1 ms %lld",
                     (long long)duration, (long long)elapsed(calendar, start, result),
                     (long long)elapsed(calendar, start, result - 1));
        }
        /* Elapsed time adds up over any point between. */
        int64_t middle = start + (result - start) / 3;
        assert_int_equal(duration,
                         elapsed(calendar, start, middle) + elapsed(calendar, middle, result));
    }
    tl_calendar_free(calendar);
}

static void test_instants_outside_the_range_are_refused(void **state)
{
    (void)state;
    tl_calendar_t *office =
        calendar_of("{\"zone\": \"Europe/Berlin\", \"hours\": {" OFFICE_WEEK "}}");
    int64_t result = 42;
    TL_ASSERT_RC(TL_EINVAL, tl_calendar_add(office, -1, HOUR, &result));
    TL_ASSERT_RC(TL_EINVAL, tl_calendar_add(office, 0, -HOUR, &result));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_calendar_add(office, TL_CALENDAR_TIME_MAX - HOUR, 8 * HOUR, &result));
    TL_ASSERT_RC(TL_EINVAL, tl_calendar_elapsed(office, 0, TL_CALENDAR_TIME_MAX + 1, &result));
    assert_int_equal(42, result);
    assert_int_equal(0, elapsed(office, utc(2026, 3, 16, 12, 0), utc(2026, 3, 16, 10, 0)));
    tl_calendar_free(office);
}

/* ---- zones ---- */

static tl_zone_t *system_zone(const char *name)
{
    char why[256] = "";
    tl_zone_t *zone = NULL;
    int rc = tl_zone_load(NULL, name, &zone, why, sizeof why);
    if (rc != 0)
        fail_msg("zone %s: %s (%s)", name, why, tl_strerror(rc));
    return zone;
}

static const char *const zones[] = {
    "Europe/Berlin",    "America/New_York",  "Australia/Sydney",  "Australia/Lord_Howe",
    "America/Santiago", "Asia/Jerusalem",    "America/Nuuk",      "Pacific/Chatham",
    "Asia/Kolkata",     "America/Sao_Paulo", "Africa/Casablanca", "UTC",
};

/* The C library reads the same files: its offsets are the oracle, 1970 to 2100. */
static void test_offsets_agree_with_the_c_library(void **state)
{
    (void)state;
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        char tz[80];
        snprintf(tz, sizeof tz, ":%s", zones[z]);
        setenv("TZ", tz, 1);
        tzset();
        tl_zone_t *zone = system_zone(zones[z]);
        for (int64_t t = 0; t < utc(2100, 1, 1, 0, 0); t += 11 * HOUR + 13 * MINUTE + 1000) {
            time_t seconds = (time_t)(t / 1000);
            struct tm local;
            localtime_r(&seconds, &local);
            if (tl_zone_offset(zone, t) != (int64_t)local.tm_gmtoff * 1000) {
                print_instant(zones[z], t);
                fail_msg("offset %lld s, the C library says %ld s",
                         (long long)(tl_zone_offset(zone, t) / 1000), local.tm_gmtoff);
            }
            /* Back from the wall clock: the same instant, or the first of a repeated time. */
            int64_t wall = t + tl_zone_offset(zone, t);
            int64_t back = tl_zone_to_utc(zone, wall);
            if (back > t || back + tl_zone_offset(zone, back) != wall) {
                print_instant(zones[z], t);
                print_instant("back", back);
                fail();
            }
        }
        tl_zone_free(zone);
    }
}

/* A zone from its POSIX rule alone gives what its TZif file gives, in the years the rule is
 * all the file says (from 2038) and in the years the file lists (to 2037). */
static void test_rules_agree_with_the_files(void **state)
{
    (void)state;
    static const struct {
        const char *name, *rule;
    } pairs[] = {
        {"Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"},
        {"Australia/Lord_Howe", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"},
        {"America/Santiago", "<-04>4<-03>,M9.1.6/24,M4.1.6/24"},
        {"Asia/Jerusalem", "IST-2IDT,M3.4.4/26,M10.5.0"},
        {"America/Nuuk", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0"},
        {"Pacific/Chatham", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45"},
    };
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        char why[256] = "";
        tl_zone_t *rule = NULL, *file = system_zone(pairs[p].name);
        TL_ASSERT_OK(tl_zone_from_rule(pairs[p].rule, &rule, why, sizeof why));
        for (int64_t t = utc(2030, 1, 1, 0, 0); t < utc(2060, 1, 1, 0, 0); t += 29 * MINUTE) {
            if (tl_zone_offset(rule, t) != tl_zone_offset(file, t)) {
                print_instant(pairs[p].name, t);
                fail_msg("rule says %lld s, file says %lld s",
                         (long long)tl_zone_offset(rule, t) / 1000,
                         (long long)tl_zone_offset(file, t) / 1000);
            }
        }
        tl_zone_free(rule);
        tl_zone_free(file);
    }
}

static void test_wall_times_in_gaps_and_repeats(void **state)
{
    (void)state;
    tl_zone_t *berlin = system_zone("Europe/Berlin");
    int64_t day = utc(2026, 3, 29, 0, 0);
    /* 02:30 on 29 March does not exist: the gap ends at 03:00 CEST, 01:00Z. */
    ASSERT_INSTANT(utc(2026, 3, 29, 1, 0), tl_zone_to_utc(berlin, day + 2 * HOUR + 30 * MINUTE));
    ASSERT_INSTANT(utc(2026, 3, 29, 0, 59), tl_zone_to_utc(berlin, day + HOUR + 59 * MINUTE));
    ASSERT_INSTANT(utc(2026, 3, 29, 1, 0), tl_zone_to_utc(berlin, day + 3 * HOUR));
    /* 02:30 on 25 October happens twice: its first time is 02:30 CEST, 00:30Z. */
    day = utc(2026, 10, 25, 0, 0);
    ASSERT_INSTANT(utc(2026, 10, 25, 0, 30), tl_zone_to_utc(berlin, day + 2 * HOUR + 30 * MINUTE));
    ASSERT_INSTANT(utc(2026, 10, 25, 2, 0), tl_zone_to_utc(berlin, day + 3 * HOUR));
    assert_string_equal("Europe/Berlin", tl_zone_name(berlin));
    tl_zone_free(berlin);
}

static void test_zone_names_stay_inside_the_zone_directory(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../../etc/passwd",
        "Europe/../../etc/passwd",
        "Europe//Berlin",
        "Europe/Berlin/",
        "./UTC",
        "Europe/Ber lin",
        "Europe/Berlin\n",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256] = "";
        tl_zone_t *zone = (tl_zone_t *)&why;
        assert_false(tl_zone_name_valid(bad[i]));
        TL_ASSERT_RC(TL_ENOTFOUND, tl_zone_load(NULL, bad[i], &zone, why, sizeof why));
        assert_null(zone);
        assert_non_null(strstr(why, "unknown time zone"));
    }
    assert_true(tl_zone_name_valid("America/Argentina/Buenos_Aires"));
    assert_true(tl_zone_name_valid("Etc/GMT+5"));
    char why[256] = "";
    tl_zone_t *zone = NULL;
    TL_ASSERT_RC(TL_ENOTFOUND, tl_zone_load(NULL, "Mars/Olympus_Mons", &zone, why, sizeof why));
    assert_string_equal("unknown time zone 'Mars/Olympus_Mons'", why);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_zone_load(NULL, "Europe", &zone, why, sizeof why));
    assert_null(zone);
}

static void test_files_that_are_not_zones_are_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/tl-zones-XXXXXX", path[64], why[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/Not_A_Zone", dir);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("Europe/Berlin\n", file);
    fclose(file);
    tl_zone_t *zone = NULL;
    TL_ASSERT_RC(TL_EINVAL, tl_zone_load(dir, "Not_A_Zone", &zone, why, sizeof why));
    assert_null(zone);
    assert_string_equal("time zone 'Not_A_Zone' cannot be used: not a TZif file", why);
    unlink(path);
    rmdir(dir);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *read_whole(const char *path, size_t *size)
{
    static uint8_t data[TL_ZONE_FILE_MAX];
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    *size = fread(data, 1, sizeof data, file);
    fclose(file);
    return data;
}

static void test_damaged_zone_files_are_refused(void **state)
{
    (void)state;
    size_t size;
    uint8_t *data = read_whole(TL_ZONE_DIR "/Europe/Berlin", &size);
    uint8_t copy[TL_ZONE_FILE_MAX];
    char why[256];
    tl_zone_t *zone = NULL;
    /* Every cut short copy is refused with a reason, and nothing read past its end. */
    for (size_t length = 0; length < size; length++) {
        uint8_t *cut = malloc(length ? length : 1);
        assert_non_null(cut);
        memcpy(cut, data, length);
        why[0] = '\0';
        TL_ASSERT_RC(TL_EINVAL, tl_zone_from_tzif("cut", cut, length, &zone, why, sizeof why));
        assert_null(zone);
        assert_true(why[0] != '\0');
        free(cut);
    }
    TL_ASSERT_OK(tl_zone_from_tzif("whole", data, size, &zone, why, sizeof why));
    tl_zone_free(zone);
    uint32_t v1_times = get_u32(data + 32), v1_types = get_u32(data + 36);
    size_t second = 44 + v1_times * 5 + v1_types * 6 + get_u32(data + 40) + get_u32(data + 28) * 8 +
                    get_u32(data + 24) + get_u32(data + 20);
    uint32_t times = get_u32(data + second + 32);
    assert_true(times > 0);
    /* Leap seconds ("right/" zones): POSIX instants do not count them. */
    memcpy(copy, data, size);
    copy[second + 31] = 1; /* leapcnt of the 64-bit header */
    TL_ASSERT_RC(TL_EINVAL, tl_zone_from_tzif("right", copy, size, &zone, why, sizeof why));
    assert_non_null(strstr(why, "leap seconds"));
    /* A transition naming a time type that does not exist (in the 64-bit data). */
    memcpy(copy, data, size);
    copy[second + 44 + times * 8] = 0xff;
    TL_ASSERT_RC(TL_EINVAL, tl_zone_from_tzif("index", copy, size, &zone, why, sizeof why));
    assert_string_equal("its transition 0 names no time type", why);
    /* A footer that is not a rule. */
    memcpy(copy, data, size);
    memcpy(copy + size - 3, "??", 2);
    TL_ASSERT_RC(TL_EINVAL, tl_zone_from_tzif("footer", copy, size, &zone, why, sizeof why));
    assert_non_null(strstr(why, "is not a TZ rule"));
    assert_null(zone);
}

/* ---- bad calendars ---- */

struct bad_calendar {
    const char *json;
    const char *message;
};

static const struct bad_calendar bad_calendars[] = {
    {"{\"zone\": \"Mars/Olympus_Mons\", \"hours\": {\"mon\": \"09:00-17:00\"}}",
     "calendar.zone: unknown time zone 'Mars/Olympus_Mons'"},
    {"{\"zone\": \"../../etc/passwd\", \"hours\": {\"mon\": \"09:00-17:00\"}}",
     "calendar.zone: unknown time zone '../../etc/passwd'"},
    {"{\"hours\": {\"mon\": \"09:00-17:00\"}}", "calendar.zone: missing"},
    {"{\"zone\": 1, \"hours\": {\"mon\": \"09:00-17:00\"}}", "calendar.zone: not a string"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"25:00-26:00\"}}",
     "calendar.hours.mon: '25:00-26:00' holds an impossible time (times are 00:00..24:00)"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:60-17:00\"}}",
     "calendar.hours.mon: '09:60-17:00' holds an impossible time"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-24:30\"}}",
     "calendar.hours.mon: '09:00-24:30' holds an impossible time"},
    {"{\"zone\": \"UTC\", \"hours\": {\"fri\": \"17:00-09:00\"}}",
     "calendar.hours.fri: '17:00-09:00' ends before it starts (hours stay within one day: split "
     "them at 24:00)"},
    {"{\"zone\": \"UTC\", \"hours\": {\"fri\": \"09:00-09:00\"}}",
     "calendar.hours.fri: '09:00-09:00' ends when it starts"},
    {"{\"zone\": \"UTC\", \"hours\": {\"fri\": \"24:00-24:00\"}}",
     "calendar.hours.fri: '24:00-24:00' starts at the end of the day"},
    {"{\"zone\": \"UTC\", \"hours\": {\"tue\": [\"09:00-12:00\", \"11:00-17:00\"]}}",
     "calendar.hours.tue[1]: '11:00-17:00' overlaps other hours of the same day"},
    {"{\"zone\": \"UTC\", \"hours\": {\"tue\": \"9:00-17:00\"}}",
     "calendar.hours.tue: not hours like \"09:00-17:00\""},
    {"{\"zone\": \"UTC\", \"hours\": {\"tue\": [\"09:00-17:00\", 12]}}",
     "calendar.hours.tue[1]: not hours like \"09:00-17:00\""},
    {"{\"zone\": \"UTC\", \"hours\": {\"monday\": \"09:00-17:00\"}}",
     "calendar.hours: unknown day 'monday' (days are mon, tue, wed, thu, fri, sat, sun)"},
    {"{\"zone\": \"UTC\", \"hours\": [\"09:00-17:00\"]}", "calendar.hours: not an object of days"},
    /* What the file holds is shown escaped: no terminal control reaches a log or a screen. */
    {"{\"zone\": \"UTC\", \"hours\": {\"\\u001b[2J\": \"09:00-17:00\"}}",
     "calendar.hours: unknown day '\\x1b[2J'"},
    {"{\"zone\": \"Europe/\\u001b]0;x\\u0007\", \"hours\": {\"mon\": \"09:00-17:00\"}}",
     "calendar.zone: unknown time zone 'Europe/\\x1b]0;x\\x07'"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": [\"00:00-01:00\", \"01:00-02:00\", "
     "\"02:00-03:00\", \"03:00-04:00\", \"04:00-05:00\", \"05:00-06:00\", \"06:00-07:00\", "
     "\"07:00-08:00\", \"08:00-09:00\"]}}",
     "calendar.hours.mon[8]: more than 8 intervals in a day"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, "
     "\"holidays\": [\"2026-12-25\", \"2026-12-26\", {\"date\": \"2026-12-25\"}]}",
     "calendar.holidays[2]: 2026-12-25 is given twice (also holidays[0])"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, \"holidays\": [\"2026-02-29\"]}",
     "calendar.holidays[0]: '2026-02-29' is not a date YYYY-MM-DD (years 1970..2199)"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, \"holidays\": [\"25.12.2026\"]}",
     "calendar.holidays[0]: '25.12.2026' is not a date"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, \"holidays\": [20261225]}",
     "calendar.holidays[0]: not a date \"YYYY-MM-DD\""},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, "
     "\"holidays\": [{\"date\": \"2026-12-24\", \"hours\": \"13:00-12:00\"}]}",
     "calendar.holidays[0].hours: '13:00-12:00' ends before it starts"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, "
     "\"holidays\": [{\"date\": \"2026-12-24\", \"half\": true}]}",
     "calendar.holidays[0]: unknown member 'half' (a holiday has date and hours)"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, \"holidays\": \"2026-12-25\"}",
     "calendar.holidays: not an array of dates"},
    {"{\"zone\": \"UTC\"}", "calendar: no working hours in the week"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": []}}", "calendar: no working hours in the week"},
    {"{\"24x7\": true, \"hours\": {\"mon\": \"09:00-17:00\"}}",
     "calendar: a 24x7 calendar has no hours or holidays"},
    {"{\"24x7\": \"yes\"}", "calendar.24x7: not true or false"},
    {"{\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, \"timezone\": \"UTC\"}",
     "calendar: unknown member 'timezone' (a calendar has zone, hours, holidays or 24x7)"},
    {"[]", "calendar: not an object"},
};

static void test_bad_calendars_name_the_problem(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_calendars / sizeof bad_calendars[0]; i++) {
        char why[256] = "";
        json_t *config = json_loads(bad_calendars[i].json, 0, NULL);
        assert_non_null(config);
        tl_calendar_t *calendar = (tl_calendar_t *)&why; /* must come back NULL */
        int rc = tl_calendar_parse(config, "calendar", tl_zone_lookup_files, NULL, &calendar, why,
                                   sizeof why);
        json_decref(config);
        if (rc != TL_EINVAL || calendar != NULL ||
            strncmp(why, bad_calendars[i].message, strlen(bad_calendars[i].message)) != 0)
            fail_msg("%s\n  rc %d (%s), message '%s'\n  expected '%s...'", bad_calendars[i].json,
                     rc, tl_strerror(rc), why, bad_calendars[i].message);
    }
}

static void test_bad_rules_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "CET",
        "CE-1",
        "CET-1CEST",
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,J0,J365",
        "CET-1CEST,M3.5.0/168,M10.5.0",
        "CET-25",
        "CET-1CEST,M3.5.0,M10.5.0x",
        "<CET-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256] = "";
        tl_zone_t *zone = NULL;
        if (tl_zone_from_rule(bad[i], &zone, why, sizeof why) != TL_EINVAL || zone != NULL)
            fail_msg("rule '%s' was taken", bad[i]);
        assert_true(why[0] != '\0');
    }
    char why[256];
    tl_zone_t *zone = NULL;
    TL_ASSERT_OK(tl_zone_from_rule("<+0530>-5:30", &zone, why, sizeof why));
    assert_int_equal(5 * HOUR + 30 * MINUTE, tl_zone_offset(zone, utc(2026, 6, 1, 0, 0)));
    tl_zone_free(zone);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_friday_afternoon_plus_four_hours_is_monday_noon),
        cmocka_unit_test(test_several_intervals_a_day_skip_the_gaps),
        cmocka_unit_test(test_holidays_and_half_days_are_skipped),
        cmocka_unit_test(test_daylight_saving_days_have_23_and_25_hours),
        cmocka_unit_test(test_hours_in_the_skipped_hour_do_not_count),
        cmocka_unit_test(test_24x7_counts_real_time_across_a_clock_change),
        cmocka_unit_test(test_due_is_the_earliest_instant_the_time_has_passed),
        cmocka_unit_test(test_instants_outside_the_range_are_refused),
        cmocka_unit_test(test_offsets_agree_with_the_c_library),
        cmocka_unit_test(test_rules_agree_with_the_files),
        cmocka_unit_test(test_wall_times_in_gaps_and_repeats),
        cmocka_unit_test(test_zone_names_stay_inside_the_zone_directory),
        cmocka_unit_test(test_files_that_are_not_zones_are_refused),
        cmocka_unit_test(test_damaged_zone_files_are_refused),
        cmocka_unit_test(test_bad_calendars_name_the_problem),
        cmocka_unit_test(test_bad_rules_are_refused),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
