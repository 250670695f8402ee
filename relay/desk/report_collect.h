/*
 * What the desk's report counts (relay/desk/report.h), read from the store as it stood at the
 * end of the period (docs/desk.md "Report"): each ticket's tier, severity, first response,
 * resolution and SLA clocks replayed from its history of changes up to that instant, the
 * escalations of the period with the severity the ticket had then, and the known problems.
 *
 * tl_report_ticket_from and tl_report_severity_at are pure; tl_report_collect reads the store,
 * so it runs where the store may be used (the storage worker, an admin command).
 */
#ifndef TL_REPORT_COLLECT_H
#define TL_REPORT_COLLECT_H

#include "relay/desk/report.h"
#include "relay/desk/sla.h"
#include "relay/store/store.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The ticket as the report counts it at until_ms, from its row (id, device, creation; its
 * severity and tier stand for its start when the history names none) and its history (changes,
 * in the order they were written). Only changes stamped before until_ms count:
 *   tier, severity   the last value written before until_ms;
 *   first response  the first "response" change;
 *   resolved        when it last went from an active status to resolved or closed (closing a
 *                   resolved ticket does not move it), 0 if it is active at until_ms;
 *   clocks          tl_sla_evaluate at until_ms.
 * The clocks' errors (TL_EINVAL and why naming the change) or TL_ENOMEM.
 */
int tl_report_ticket_from(const tl_ticket_row_t *row, const tl_ticket_change_row_t *changes,
                          size_t count, const tl_sla_config_t *config, int64_t until_ms,
                          tl_report_ticket_t *out, char *why, size_t why_size);

/* The severity the history says the ticket had at time_ms (the last severity change stamped at
 * or before it; the first one written if all are later); current when it names none. */
int tl_report_severity_at(const tl_ticket_change_row_t *changes, size_t count, int current,
                          int64_t time_ms);

/* Whether a ticket of tickets came back after a re-check that passed at time_ms on device_id
 * with fingerprint (NULL: none): the rule of tl_report_collect. */
int tl_report_came_back(const tl_ticket_rows_t *tickets, int64_t device_id, const char *fingerprint,
                        int64_t time_ms, int64_t until_ms);

/* A report's input and the rows it points into; tl_report_data_free releases both. */
typedef struct tl_report_data {
    tl_report_input_t input;
    tl_report_ticket_t *tickets;
    tl_report_escalation_t *escalations;
    tl_report_problem_t *problems;
    tl_report_selfhelp_t *selfhelp;
    tl_ticket_rows_t ticket_rows;
    tl_problem_rows_t problem_rows;
    tl_escalation_rows_t escalation_rows;
    tl_kb_outcome_rows_t outcome_rows;
} tl_report_data_t;

/*
 * The report's input for [since_ms, until_ms): every ticket created before until_ms, the
 * escalations stamped in the period, the known problems opened before until_ms with the
 * tickets linked to them now, and the self-help outcomes stamped in the period, a passed
 * re-check marked came_back when a ticket from its device for the same problem (the same
 * fingerprint; any ticket when it had none) was created within TL_REPORT_COME_BACK_MS after it
 * and before until_ms. TL_EINVAL and why for an empty period or a ticket whose history
 * the clocks refuse (naming it), TL_EFULL and why beyond TL_REPORT_ITEMS_MAX items, or the
 * store's errors. Nothing is left to free on error.
 */
int tl_report_collect(tl_store_t *store, const tl_sla_config_t *config, int64_t since_ms,
                      int64_t until_ms, tl_report_data_t *data, char *why, size_t why_size);
void tl_report_data_free(tl_report_data_t *data);

#endif
