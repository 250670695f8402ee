/*
 * The desk's configuration: relay.conf's desk keys (relay/desk/desk_settings.h) or the file
 * DATA/desk.json (docs/desk.md "SLA clocks" and "Queues, assignment and SLA wiring"), read once
 * when the relay starts. Its "sla" member gives the calendar and the targets (relay/desk/sla.h);
 * a relay with neither uses the default below, and one that does not parse stops the relay with
 * the parser's message.
 */
#ifndef TL_DESK_CONFIG_H
#define TL_DESK_CONFIG_H

#include "proto/settings.h"
#include "relay/desk/desk_settings.h"
#include "relay/desk/retention.h"
#include "relay/desk/sla.h"

#include <stddef.h>

/* Its name in the data directory. */
#define TL_DESK_CONFIG_FILE "desk.json"

/* tl_desk_config_default, what a relay without either uses: relay/desk/desk_settings.h. */

/*
 * The desk's SLA configuration: from relay.conf's sla_ keys (settings, relay/desk/desk_settings.h;
 * NULL for none), else the "sla" member of the file at path (at most TL_SLA_CONFIG_TEXT_MAX
 * bytes), else the default above; *source says which ("relay.conf", "desk.json", "default").
 * Zones are found with lookup (tl_zone_lookup_files, NULL dir for the system's). The retention
 * is checked too: a retention the prune would refuse stops the relay at its start. TL_EINVAL and
 * why for anything that does not parse, naming where it was said: "PATH: sla.calendar.zone:
 * unknown time zone 'Mars/Olympus_Mons'", "PATH: desk.json:3:7: ...", "RELAY.CONF:LINE:
 * sla_hours: wed: ...", or both places when the SLA or the retention is set in both; a negated
 * errno and why for a file that cannot be read. Nothing is returned on error.
 */
int tl_desk_config_load(const char *path, const tl_settings_t *settings, tl_zone_lookup_fn lookup,
                        void *lookup_arg, tl_sla_config_t **sla, const char **source, char *why,
                        size_t why_size);

/*
 * The retention (relay/desk/retention.h; docs/desk.md "Retention"), from relay.conf's
 * retention_ keys or the file's "retention" member, never both: neither keeps everything
 * forever. *source as above; errors as above.
 */
int tl_desk_config_retention(const char *path, const tl_settings_t *settings, tl_retention_t *out,
                             const char **source, char *why, size_t why_size);

#endif
