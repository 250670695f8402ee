/*
 * Time zones for the desk's business calendars (docs/desk.md "SLA clocks"): a zone's rules held
 * in memory, so that turning an instant into local time and back reads no file, no environment
 * and no global state (localtime_r and mktime depend on TZ and tzset, which are process-wide).
 *
 * A zone is read once, when the configuration is loaded: from a TZif file (RFC 8536) of the
 * system's time zone database, or from a POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"). After
 * that it is immutable: any number of threads may use one zone at once. The caller owns it.
 *
 * Instants are UTC milliseconds since 1970 (leap seconds are not counted, as in POSIX time);
 * "local" milliseconds are the same count on the zone's wall clock.
 */
#ifndef TL_ZONE_H
#define TL_ZONE_H

#include <stddef.h>
#include <stdint.h>

/* Where the system keeps its zones (Debian's tzdata package). */
#define TL_ZONE_DIR "/usr/share/zoneinfo"
/* A zone name: "Europe/Berlin", "America/Argentina/Buenos_Aires", "UTC". */
#define TL_ZONE_NAME_MAX 64
/* TZif files are a few KiB; anything larger is not one. */
#define TL_ZONE_FILE_MAX (64 * 1024)
/* A POSIX TZ rule, as TZif footers and tests give it. */
#define TL_ZONE_RULE_MAX 64

typedef struct tl_zone tl_zone_t;

/*
 * 1 if name can be a zone's name: 1..TL_ZONE_NAME_MAX bytes of letters, digits and "._+-" in
 * parts separated by single "/", no part "." or "..", not starting with "/", so it names a file
 * under the zone directory and nothing outside it.
 */
int tl_zone_name_valid(const char *name);

/*
 * Reads the zone's rules from a TZif file of versions 1 to 4 (its 64-bit data and, after the
 * last transition, its footer's POSIX rule). TL_EINVAL and why (a sentence) if it is not one,
 * uses leap seconds, or gives offsets beyond a day. The zone is called name.
 */
int tl_zone_from_tzif(const char *name, const uint8_t *data, size_t size, tl_zone_t **out,
                      char *why, size_t why_size);
/* The zone of a POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0", "<+0530>-5:30"). TL_EINVAL and why. */
int tl_zone_from_rule(const char *rule, tl_zone_t **out, char *why, size_t why_size);
/*
 * Reads DIR/NAME (dir NULL: TL_ZONE_DIR) with tl_zone_from_tzif. TL_ENOTFOUND and "unknown time
 * zone 'NAME'" when there is no such zone (or the name is not a zone's name); TL_EINVAL for a
 * file that is not a zone. The only function here that reads a file.
 */
int tl_zone_load(const char *dir, const char *name, tl_zone_t **out, char *why, size_t why_size);
void tl_zone_free(tl_zone_t *zone);

/* The name given when it was read ("Europe/Berlin"; the rule itself for tl_zone_from_rule). */
const char *tl_zone_name(const tl_zone_t *zone);
/* Local time minus UTC at that instant, in milliseconds (+3600000 for CET). */
int64_t tl_zone_offset(const tl_zone_t *zone, int64_t utc_ms);
/*
 * The instant a wall-clock time names. A time that occurs twice (clocks turned back) is its
 * first occurrence; one that does not occur (clocks turned forward) is the instant the gap
 * ends: 02:30 on the day Berlin goes from 02:00 to 03:00 is 03:00 CEST. So later wall-clock
 * times never give earlier instants, wherever the offset changes at most once within a day
 * either side of the time asked.
 */
int64_t tl_zone_to_utc(const tl_zone_t *zone, int64_t local_ms);

/* Days since 1970-01-01 of a date of the proleptic Gregorian calendar (month 1..12), and back. */
int64_t tl_zone_days_from_date(int64_t year, int month, int day);
void tl_zone_date_from_days(int64_t days, int64_t *year, int *month, int *day);
/* 0 for Sunday .. 6 for Saturday. */
int tl_zone_weekday(int64_t days);

#endif
