/*
 * Business calendars for the SLA clocks (docs/desk.md "SLA clocks"): the hours a desk works,
 * in a time zone, less its holidays; or every hour (24x7). A calendar answers two questions:
 * when does a given amount of business time, started at an instant, run out (the due time),
 * and how much business time lies between two instants.
 *
 * A calendar is parsed once from the configuration (its zone is read then, tl_zone_load) and
 * is immutable afterwards: its functions read no clock, file or global state, and any number of
 * threads may share one. Instants are UTC milliseconds since 1970; durations are milliseconds.
 */
#ifndef TL_CALENDAR_H
#define TL_CALENDAR_H

#include "relay/desk/zone.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Working intervals a day may have ("09:00-12:00", "13:00-17:00"). */
#define TL_CALENDAR_INTERVALS_MAX 8
#define TL_CALENDAR_HOLIDAYS_MAX 1000
/* Instants the calendar answers for: 1970-01-01 to 2200-01-01 (exclusive). */
#define TL_CALENDAR_TIME_MAX 7258118400000LL
/* A due time is looked for this many days ahead at most (some 110 years). */
#define TL_CALENDAR_SCAN_DAYS 40000

typedef struct tl_calendar tl_calendar_t;

/*
 * Finds a zone's rules by name when a calendar is parsed: 0 and *zone (the caller of
 * tl_calendar_parse owns it through the calendar), or an error code and why. tl_zone_lookup_files
 * reads TZif files from the directory arg (NULL: TL_ZONE_DIR); tests and fuzzing give their own.
 */
typedef int (*tl_zone_lookup_fn)(void *arg, const char *name, tl_zone_t **zone, char *why,
                                 size_t why_size);
int tl_zone_lookup_files(void *dir, const char *name, tl_zone_t **zone, char *why, size_t why_size);

/*
 * Parses a calendar (docs/desk.md "SLA clocks"):
 *   {"zone": "Europe/Berlin",
 *    "hours": {"mon": "09:00-17:00", "tue": ["09:00-12:00", "13:00-17:00"], ...},
 *    "holidays": ["2026-12-25", {"date": "2026-12-24", "hours": "09:00-12:00"}]}
 * or {"24x7": true} (with an optional "zone", for showing times). where names the object in
 * messages ("sla.calendar"). TL_EINVAL and why naming the member and the problem (an unknown
 * zone, day or member, an impossible time, hours that overlap or end before they start, a
 * holiday given twice, no working hours at all); the lookup's code for a zone it cannot give.
 * Nothing is returned on error.
 */
int tl_calendar_parse(const json_t *config, const char *where, tl_zone_lookup_fn lookup,
                      void *lookup_arg, tl_calendar_t **out, char *why, size_t why_size);
void tl_calendar_free(tl_calendar_t *calendar);

/* 1 for a 24x7 calendar. */
int tl_calendar_always(const tl_calendar_t *calendar);
/* The calendar's zone, or NULL (a 24x7 calendar given none: times are shown in UTC). */
const tl_zone_t *tl_calendar_zone(const tl_calendar_t *calendar);
/* Business time in a usual week (no holiday), in milliseconds, as the hours are written. */
int64_t tl_calendar_week_ms(const tl_calendar_t *calendar);

/*
 * The earliest instant at which duration_ms of business time has passed since start_ms: Friday
 * 16:30 plus 4 hours on Monday..Friday 09:00-17:00 is Monday 12:30; a duration that ends
 * exactly where a working interval ends is due at that end (Friday 16:30 plus 30 minutes is
 * Friday 17:00). Duration 0 is start_ms. TL_EINVAL for an instant outside
 * 0..TL_CALENDAR_TIME_MAX, a negative duration, or one that does not run out within
 * TL_CALENDAR_SCAN_DAYS.
 */
int tl_calendar_add(const tl_calendar_t *calendar, int64_t start_ms, int64_t duration_ms,
                    int64_t *due_ms);
/* Business time in [from_ms, to_ms) (0 when to_ms <= from_ms). TL_EINVAL for instants outside
 * 0..TL_CALENDAR_TIME_MAX. */
int tl_calendar_elapsed(const tl_calendar_t *calendar, int64_t from_ms, int64_t to_ms,
                        int64_t *elapsed_ms);

#endif
