/*
 * Fuzz target for the user's tickets on the wire (proto/msg_tickets.c, docs/protocol.md
 * §7.11-7.12): the relay's tickets.list answer and ticket.update notice as the agent reads them.
 *
 * The input is a JSON text (a CONTROL body). It is read as a tickets.list result and as a
 * ticket.update. What decodes must hold only what the limits allow (ids and statuses of their
 * characters, texts valid UTF-8 without NUL and within their sizes, times within range, at most
 * 20 distinct tickets), and must encode again and decode to the same values. The raw input is
 * also clipped as a note is: the result fits and, from valid UTF-8, stays valid UTF-8.
 */
#include "proto/err.h"
#include "proto/msg_tickets.h"
#include "proto/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_summary(const tl_ticket_summary_t *t)
{
    if (strlen(t->ticket) == 0 || strlen(t->ticket) > TL_TICKET_ID_MAX ||
        strspn(t->ticket, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            strlen(t->ticket))
        abort();
    if (strlen(t->status) == 0 ||
        strspn(t->status, "abcdefghijklmnopqrstuvwxyz-") != strlen(t->status))
        abort();
    if (!tl_text_utf8_valid(t->title, strlen(t->title)) || strlen(t->title) > TL_TICKET_TITLE_MAX)
        abort();
    if (t->updated_ms < 0 || t->updated_ms > TL_TICKET_TIME_MAX)
        abort();
    if (t->has_note &&
        (!tl_text_utf8_valid(t->note, strlen(t->note)) || strlen(t->note) > TL_TICKET_NOTE_MAX ||
         strlen(t->note_by) == 0 || t->note_ms < 0 || t->note_ms > TL_TICKET_TIME_MAX))
        abort();
}

static void same_summary(const tl_ticket_summary_t *a, const tl_ticket_summary_t *b)
{
    if (strcmp(a->ticket, b->ticket) != 0 || strcmp(a->title, b->title) != 0 ||
        strcmp(a->status, b->status) != 0 || a->updated_ms != b->updated_ms ||
        a->has_note != b->has_note || strcmp(a->note, b->note) != 0 ||
        strcmp(a->note_by, b->note_by) != 0 || a->note_ms != b->note_ms)
        abort();
}

static void fuzz_list(json_t *body)
{
    static tl_ticket_summary_t items[TL_TICKETS_LIST_MAX], again[TL_TICKETS_LIST_MAX];
    size_t count = 0, count_again = 0;
    int more = 0, more_again = 0;
    int rc = tl_msg_tickets_decode(body, items, &count, &more);
    if (rc != 0) {
        if (rc != TL_EMSG_MALFORMED || count != 0)
            abort();
        return;
    }
    if (count > TL_TICKETS_LIST_MAX)
        abort();
    for (size_t i = 0; i < count; i++) {
        check_summary(&items[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[i].ticket, items[j].ticket) == 0)
                abort();
    }
    json_t *encoded = NULL;
    if (tl_msg_tickets_encode(items, count, more, &encoded) != 0)
        abort();
    if (tl_msg_tickets_decode(encoded, again, &count_again, &more_again) != 0 ||
        count_again != count || more_again != more)
        abort();
    for (size_t i = 0; i < count; i++)
        same_summary(&items[i], &again[i]);
    json_decref(encoded);
}

static void fuzz_update(json_t *body)
{
    tl_ticket_update_t update, again;
    if (tl_msg_ticket_update_decode(body, &update) != 0)
        return;
    check_summary(&update.summary);
    json_t *encoded = NULL;
    if (tl_msg_ticket_update_encode(&update, &encoded) != 0 ||
        tl_msg_ticket_update_decode(encoded, &again) != 0 || strcmp(update.event, again.event) != 0)
        abort();
    same_summary(&update.summary, &again.summary);
    json_decref(encoded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t error;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &error);
    if (body != NULL) {
        fuzz_list(body);
        fuzz_update(body);
        json_decref(body);
    }
    /* The raw bytes, clipped as the relay clips a note. */
    char *text = malloc(size + 1), clipped[TL_TICKET_NOTE_MAX + 1];
    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    size_t max = size > 0 ? data[0] % (TL_TICKET_NOTE_MAX + 1) : 0;
    tl_msg_tickets_clip(clipped, sizeof clipped, max, text);
    if (strlen(clipped) > max && strlen(clipped) > 0)
        abort();
    if (tl_text_utf8_valid(text, strlen(text)) && !tl_text_utf8_valid(clipped, strlen(clipped)))
        abort();
    free(text);
    return 0;
}
