/*
 * Fuzz target for self-help on the wire (proto/selfhelp.c, docs/protocol.md §7.5, §7.13): the
 * "selfhelp" rows of a ticket.create and the selfhelp.deflected body, as the relay reads them.
 *
 * The input is a JSON text (a CONTROL body). Its "selfhelp" member is read as rows and the whole
 * body as a deflection. What decodes must hold only what the limits allow (at most 16 rows,
 * ids and names of their characters, one-line UTF-8 texts within their sizes, times in order)
 * and must encode again and decode to the same values; a refusal keeps nothing.
 */
#include "proto/err.h"
#include "proto/selfhelp.h"
#include "proto/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_line(const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len > max || !tl_text_utf8_valid(text, len))
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            abort();
}

static void check_fix(const tl_selfhelp_fix_t *fix)
{
    if (fix->arg_count > TL_SELFHELP_ARGS_MAX || (fix->runbook[0] == '\0' && fix->arg_count > 0))
        abort();
    for (size_t i = 0; i < fix->arg_count; i++)
        check_line(fix->args[i].value, TL_SELFHELP_ARG_VALUE_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t error;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &error);
    if (body == NULL)
        return 0;
    tl_selfhelp_row_t *rows = calloc(TL_SELFHELP_ROWS_MAX, sizeof *rows);
    tl_selfhelp_row_t *back = calloc(TL_SELFHELP_ROWS_MAX, sizeof *back);
    if (rows == NULL || back == NULL)
        abort();
    size_t count = 0, back_count = 0;
    int rc = tl_selfhelp_rows_decode(json_object_get(body, "selfhelp"), rows, &count);
    if (rc != 0 && (rc != TL_EMSG_MALFORMED || count != 0))
        abort();
    if (rc == 0) {
        if (count > TL_SELFHELP_ROWS_MAX)
            abort();
        for (size_t i = 0; i < count; i++) {
            check_line(rows[i].title, TL_SELFHELP_TITLE_MAX);
            check_line(rows[i].outcome, TL_SELFHELP_OUTCOME_MAX);
            check_fix(&rows[i].fix);
            if (rows[i].applied && rows[i].fix.runbook[0] == '\0')
                abort();
            json_t *details = tl_selfhelp_event_details(&rows[i]);
            if (details == NULL)
                abort();
            json_decref(details);
        }
        json_t *again = NULL;
        if (tl_selfhelp_rows_encode(rows, count, &again) != 0 ||
            tl_selfhelp_rows_decode(again, back, &back_count) != 0 || back_count != count ||
            memcmp(rows, back, count * sizeof *rows) != 0)
            abort();
        json_decref(again);
    }
    tl_selfhelp_deflection_t d, d_back;
    rc = tl_selfhelp_deflection_decode(body, &d);
    if (rc == 0) {
        check_line(d.title, TL_SELFHELP_TITLE_MAX);
        check_fix(&d.fix);
        if (d.fix.runbook[0] == '\0' || d.shown_ms > d.applied_ms ||
            d.applied_ms > d.rechecked_ms || strcmp(d.outcome, TL_SELFHELP_SOLVED) != 0)
            abort();
        json_t *again = NULL;
        if (tl_selfhelp_deflection_encode(&d, &again) != 0 ||
            tl_selfhelp_deflection_decode(again, &d_back) != 0 ||
            memcmp(&d, &d_back, sizeof d) != 0)
            abort();
        json_decref(again);
    } else if (rc != TL_EMSG_MALFORMED) {
        abort();
    }
    free(rows);
    free(back);
    json_decref(body);
    return 0;
}
