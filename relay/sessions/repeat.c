/*
 * diag that would repeat an earlier, identical run (relay/sessions/sessions_int.h; the rule is
 * relay/desk/repeats.h, docs/desk.md "Repeated diagnostics"): found while the session is looked
 * up, told to the technician before the user is asked, and named in diag --json.
 */
#include "relay/sessions/sessions_int.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "relay/desk/repeats.h"
#include "relay/store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Who added an item: the actor of its evidence.added event on its ticket ("" if none). */
static int evidence_adder(tl_job_ctx_t *ctx, int64_t ticket_id, const char *hash, char *out,
                          size_t size)
{
    tl_ticket_event_rows_t events;
    int rc = tl_store_ticket_events_read(ctx->store, ticket_id, &events);
    if (rc != 0)
        return rc;
    out[0] = '\0';
    for (size_t i = 0; i < events.count; i++) {
        const tl_ticket_event_row_t *event = &events.rows[i];
        if (strcmp(event->kind, "evidence.added") != 0)
            continue;
        json_t *details = json_loads(event->details, 0, NULL);
        const char *added = json_string_value(json_object_get(details, "sha256"));
        int found = added != NULL && strcmp(added, hash) == 0;
        if (found)
            snprintf(out, size, "%s", event->actor);
        json_decref(details);
        if (found)
            break;
    }
    tl_ticket_event_rows_free(&events);
    return 0;
}

int tl__session_find_repeat(struct session *s, tl_job_ctx_t *ctx, int64_t device_id)
{
    int64_t now = tl_wall_ms();
    tl_evidence_rows_t rows;
    int rc = tl_store_device_evidence_read(ctx->store, device_id, "diagnostics",
                                           now - TL_REPEAT_WINDOW_MS, &rows);
    if (rc != 0)
        return rc;
    tl_repeat_item_t *items = calloc(rows.count + 1, sizeof *items);
    long found = -1;
    if (items == NULL)
        rc = TL_ENOMEM;
    for (size_t i = 0; items != NULL && i < rows.count; i++) {
        /* Neither diag nor an agent's upload chooses probes: every item is the whole set. */
        items[i].evidence = &rows.rows[i];
        items[i].probes = TL_REPEAT_PROBES_ALL;
    }
    if (rc == 0)
        found = tl_repeat_find(items, rows.count, TL_REPEAT_PROBES_ALL, now);
    if (found >= 0) {
        const tl_evidence_row_t *item = &rows.rows[found];
        s->repeat_found = 1;
        s->repeat_ms = item->created;
        snprintf(s->repeat_hash, sizeof s->repeat_hash, "%s", item->hash);
        snprintf(s->repeat_name, sizeof s->repeat_name, "%s", item->name);
        tl_id_format(s->repeat_ticket, TL_ID_TICKET, item->ticket_id);
        rc = evidence_adder(ctx, item->ticket_id, item->hash, s->repeat_by, sizeof s->repeat_by);
    }
    free(items);
    tl_evidence_rows_free(&rows);
    return rc;
}

/* Who took them, as the technician reads it. */
static void taken_by(const struct session *s, char *out, size_t size)
{
    if (strncmp(s->repeat_by, "tech:", 5) == 0)
        tl__sessions_clean_text(out, size, s->repeat_by + 5);
    else if (strncmp(s->repeat_by, "agent:", 6) == 0)
        snprintf(out, size, "the machine, sent with the ticket");
    else
        snprintf(out, size, "unknown");
}

void tl__session_warn_repeat(struct session *s)
{
    if (!s->repeat_found)
        return;
    char when[TL_UTC_TEXT], by[200], name[300];
    int64_t ago_min = (tl_wall_ms() - s->repeat_ms) / 60000;
    tl_format_utc(s->repeat_ms, when);
    taken_by(s, by, sizeof by);
    tl__sessions_clean_text(name, sizeof name, s->repeat_name);
    tl__session_say(s,
                    "warning: the same diagnostics of %s were taken %" PRId64 " min ago, at %s "
                    "by %s: evidence %.12s %s on %s",
                    s->device, ago_min, when, by, s->repeat_hash, name, s->repeat_ticket);
    tl__session_say(s, "read them with: evidence get %s %.12s (Ctrl-C withdraws this request)",
                    s->repeat_ticket, s->repeat_hash);
}

json_t *tl__session_repeat_json(const struct session *s)
{
    if (!s->repeat_found)
        return json_null();
    return json_pack("{s:s, s:s, s:s, s:I, s:s?}", "ticket", s->repeat_ticket, "sha256",
                     s->repeat_hash, "name", s->repeat_name, "time", (json_int_t)s->repeat_ms, "by",
                     s->repeat_by[0] != '\0' ? s->repeat_by : NULL);
}
