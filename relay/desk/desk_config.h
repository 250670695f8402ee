/*
 * The desk's configuration file, DATA/desk.json (docs/desk.md "SLA clocks" and "Queues,
 * assignment and SLA wiring"): read once when the relay starts. Its "sla" member gives the
 * calendar and the targets (relay/desk/sla.h); a relay without the file uses the default below,
 * and a file that does not parse stops the relay with the parser's message.
 */
#ifndef TL_DESK_CONFIG_H
#define TL_DESK_CONFIG_H

#include "relay/desk/retention.h"
#include "relay/desk/sla.h"

#include <stddef.h>

/* Its name in the data directory. */
#define TL_DESK_CONFIG_FILE "desk.json"

/*
 * What a relay without DATA/desk.json uses: every hour counts (24x7, shown in UTC), first
 * response / resolution S1 30m / 4h, S2 1h / 8h, S3 4h / 24h, S4 6h / 72h, the same in every
 * tier, and no vendor target. The text of a desk.json that says so.
 */
extern const char tl_desk_config_default[];

/*
 * Reads the file at path (at most TL_SLA_CONFIG_TEXT_MAX bytes) and parses its "sla" member,
 * finding zones with lookup (tl_zone_lookup_files, NULL dir for the system's). A file that is
 * not there gives the default and *from_file 0. TL_EINVAL and why, the parser's message ("sla.
 * calendar.zone: unknown time zone 'Mars/Olympus_Mons'", "desk.json:3:7: ..."), for a file that
 * does not parse, or whose "retention" member is wrong (tl_desk_config_retention, without the
 * file's name); a negated errno and why for one that cannot be read. Nothing is returned on
 * error.
 */
int tl_desk_config_load(const char *path, tl_zone_lookup_fn lookup, void *lookup_arg,
                        tl_sla_config_t **sla, int *from_file, char *why, size_t why_size);

/*
 * The file's "retention" member (relay/desk/retention.h; docs/desk.md "Retention"): a file that
 * is not there, or has no such member, keeps everything forever. TL_EINVAL and why, naming the
 * file and the member ("/data/desk.json: retention.recordings: wants ..."), for a file that does
 * not parse or a member that is wrong; a negated errno for one that cannot be read. The relay's
 * start checks it too (tl_desk_config_load refuses a file whose retention is wrong).
 */
int tl_desk_config_retention(const char *path, tl_retention_t *out, char *why, size_t why_size);

#endif
