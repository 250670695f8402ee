/*
 * The desk's settings in relay.conf (docs/configuration.md "The desk's settings"): the SLA
 * calendar and targets and the retention of evidence, written as keys of the relay's
 * configuration file and turned here into the members DATA/desk.json would hold ("sla" and
 * "retention"), so that one parser (relay/desk/sla.h, relay/desk/retention.h) checks both.
 *
 *   sla_zone      = Europe/Berlin
 *   sla_hours     = mon-tue,thu-fri 09:00-17:00; wed 09:00-12:00 13:00-17:00   (or 24x7)
 *   sla_holidays  = 2026-12-25, 2026-12-26, 2026-12-24 09:00-12:00
 *   sla_s1 .. sla_s4 = FIRST_RESPONSE RESOLUTION[, tierN FIRST|- RESOLUTION|-]...
 *   sla_vendor    = 24h
 *   retention_recordings | retention_transcripts | retention_events = DAYS | forever
 *
 * An sla_ key not set keeps the built-in default's part (relay/desk/desk_config.h: 24x7 in
 * UTC, its targets); a class without its retention_ key is kept forever. The SLA and the
 * retention are each said in one place: a relay.conf with an sla_ key and a desk.json with an "sla"
 * member (or a retention_ key and a "retention" member) is refused, naming both.
 */
#ifndef TL_DESK_SETTINGS_H
#define TL_DESK_SETTINGS_H

#include "proto/settings.h"

#include <jansson.h>
#include <stddef.h>

/*
 * What a relay without desk keys or DATA/desk.json uses: every hour counts (24x7, shown in UTC),
 * first response / resolution S1 30m / 4h, S2 1h / 8h, S3 4h / 24h, S4 6h / 72h, the same in every
 * tier, and no vendor target. The text of a desk.json that says so.
 */
extern const char tl_desk_config_default[];

typedef struct tl_desk_settings {
    json_t *sla;       /* the "sla" member the sla_ keys make; NULL when none is set */
    json_t *retention; /* the "retention" member the retention_ keys make; NULL when none */
    char sla_at[TL_SETTINGS_PATH_MAX + 16];       /* "FILE:LINE" of the first sla_ key */
    char retention_at[TL_SETTINGS_PATH_MAX + 16]; /* "FILE:LINE" of the first retention_ key */
} tl_desk_settings_t;

/*
 * Builds the members from settings (which may be NULL: nothing set). The sla member starts from
 * the built-in default's and each key replaces its part. TL_EINVAL and why, "FILE:LINE: KEY:
 * reason", for a value that does not read (a day that is not one, a day given twice, a target
 * without its two durations); what the values mean (times, durations, zones) is checked by the
 * parsers, and tl_desk_settings_why() names the key of their messages. Nothing is kept on error.
 */
int tl_desk_settings_build(const tl_settings_t *settings, tl_desk_settings_t *out, char *why,
                           size_t why_size);

/*
 * A parser's message about a member the keys made ("sla.calendar.hours.wed[1]: '11:00-17:00'
 * overlaps ...", "retention.events: wants ...") as the line of relay.conf that said it:
 * "FILE:LINE: sla_hours: wed: '11:00-17:00' overlaps ...".
 */
void tl_desk_settings_why(const tl_settings_t *settings, const char *message, char *why,
                          size_t why_size);

/*
 * Builds the members and runs the parsers over them (zones found with the system's tz database):
 * 0 when every desk key set in settings is good, else TL_EINVAL and why as the line that said it.
 * What DATA/desk.json says is not read here (tl_desk_config_load reads both).
 */
int tl_desk_settings_check(const tl_settings_t *settings, char *why, size_t why_size);

void tl_desk_settings_free(tl_desk_settings_t *desk);

#endif
