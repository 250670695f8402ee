/*
 * A ticket's SLA clocks as the desk shows them (docs/desk.md "Queues, assignment and SLA
 * wiring"): the ticket's typed history of changes (the store's ticket_changes rows, first
 * responses included) made into the events tl_sla_evaluate replays (relay/desk/sla.h), and
 * evaluated at "now"; the next due time the queues sort by; the clocks that warn or breach;
 * times shown in the calendar's zone.
 *
 * tl_clocks_events and the formatting are pure. tl_clocks_evaluate reads the ticket's history
 * from the store, so it runs where the store may be used (the storage worker, an admin command).
 */
#ifndef TL_CLOCKS_H
#define TL_CLOCKS_H

#include "relay/desk/sla.h"
#include "relay/store/store.h"

#include <stddef.h>
#include <stdint.h>

/* "2026-11-23 20:44+01:00" (or "...Z" on a calendar without a zone) and its NUL. */
#define TL_CLOCKS_TIME_SIZE 80
/* "1234h05m" and its NUL. */
#define TL_CLOCKS_DURATION_SIZE 32

/*
 * A ticket's history as the clocks see it. rows are its ticket_changes, oldest first;
 * created_ms its creation; severity and tier what it has now (they stand for its start when the
 * history does not say: a history always starts with them, tl_store_ticket_insert writes it so).
 * Fills ticket (its events in *events, malloc'd, the caller frees them) so that tl_sla_evaluate
 * can replay it at now_ms:
 *   status    -> TL_SLA_EVENT_STATUS      severity "1".."4" -> TL_SLA_EVENT_SEVERITY
 *   tier "0".."4" -> TL_SLA_EVENT_TIER    assignee -> TL_SLA_EVENT_ASSIGNEE
 *   response  -> TL_SLA_EVENT_ACTIVITY with is_response (the first response)
 * Other fields (category) change no clock and are left out. The ticket starts with the value of
 * its first severity and tier rows (the creation's). Times are kept in order and within the
 * ticket's life: a row stamped before the one before it (a clock set back) counts at that one's
 * time, one before the creation at the creation, one after now at now. TL_EINVAL and why (naming
 * the row) for a value that is not one of the field's; TL_ENOMEM.
 */
int tl_clocks_events(const tl_ticket_change_row_t *rows, size_t count, int64_t created_ms,
                     int severity, int tier, int64_t now_ms, tl_sla_ticket_t *ticket,
                     tl_sla_event_t **events, char *why, size_t why_size);

/* The ticket's clocks at now_ms, from its history in the store: tl_clocks_events, then
 * tl_sla_evaluate. Its errors, or the store's. */
int tl_clocks_evaluate(tl_store_t *store, const tl_sla_config_t *config, const tl_ticket_row_t *row,
                       int64_t now_ms, tl_sla_clock_t clocks[TL_SLA_CLOCKS], char *why,
                       size_t why_size);

/* The earliest due time of the clocks still counting or paused (not stopped, with a target):
 * what the queues sort by after the severity. 0 when there is none. */
int64_t tl_clocks_next_due(const tl_sla_clock_t clocks[TL_SLA_CLOCKS]);
/* A bit (1 << clock) for each clock that warns (75% of its target used, not stopped) or has
 * breached; 0 for none. */
unsigned tl_clocks_breaching(const tl_sla_clock_t clocks[TL_SLA_CLOCKS]);
/* "warning" for a clock that warns and has not breached, else its state's name. */
const char *tl_clocks_state_word(const tl_sla_clock_t *clock);

/* An instant as the calendar's zone shows it: "2026-11-23 20:44+01:00"; "...Z" for a calendar
 * without a zone; "-" for 0. */
void tl_clocks_format_time(const tl_sla_config_t *config, int64_t ms,
                           char out[TL_CLOCKS_TIME_SIZE]);
/* Business time as the configuration writes it, to the minute: "45m", "4h", "2h10m". */
void tl_clocks_format_duration(int64_t ms, char out[TL_CLOCKS_DURATION_SIZE]);
/* The zone times are shown in: its name, or "UTC". */
const char *tl_clocks_zone_name(const tl_sla_config_t *config);

#endif
