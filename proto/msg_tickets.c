/* The user's side of tickets on the wire (proto/msg_tickets.h, docs/protocol.md §7.11-7.12). */
#include "proto/msg_tickets.h"
#include "proto/err.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <string.h>

enum { UPPER = 1, DIGITS = 2 };

/* 1 if text is 1..max bytes, each a lower-case letter, one of extra, or (by flags) an
 * upper-case letter or a digit. */
static int token_ok(const char *text, size_t max, int flags, const char *extra)
{
    size_t len = text != NULL ? strlen(text) : 0;
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || ((flags & UPPER) && c >= 'A' && c <= 'Z') ||
              ((flags & DIGITS) && c >= '0' && c <= '9') || strchr(extra, c) != NULL))
            return 0;
    }
    return 1;
}

static int ticket_id_ok(const char *text)
{
    return token_ok(text, TL_TICKET_ID_MAX, UPPER | DIGITS, "._-");
}

static int status_ok(const char *text)
{
    return token_ok(text, TL_TICKET_STATUS_MAX, 0, "-");
}

static int by_ok(const char *text)
{
    return token_ok(text, TL_TICKET_BY_MAX, UPPER | DIGITS, "._-");
}

static int event_ok(const char *text)
{
    return token_ok(text, TL_TICKET_EVENT_MAX, DIGITS, "._-");
}

/* Text without NUL of at most max bytes (empty_ok: may be ""), valid UTF-8. */
static int text_ok(const char *text, size_t max, int empty_ok)
{
    if (text == NULL)
        return 0;
    size_t len = strlen(text);
    return len <= max && (empty_ok || len > 0) && tl_text_utf8_valid(text, len);
}

static int time_ok(int64_t ms)
{
    return ms >= 0 && ms <= TL_TICKET_TIME_MAX;
}

void tl_msg_tickets_clip(char *out, size_t size, size_t max, const char *text)
{
    static const char mark[] = TL_TEXT_ELLIPSIS;
    size_t mark_len = sizeof mark - 1;
    if (size == 0)
        return;
    if (text == NULL)
        text = "";
    if (max > size - 1)
        max = size - 1;
    size_t len = strlen(text);
    if (len <= max) {
        memcpy(out, text, len + 1);
        return;
    }
    /* Room for the mark; back up to the start of a UTF-8 character (never a continuation). */
    size_t keep = max >= mark_len ? max - mark_len : 0;
    while (keep > 0 && ((unsigned char)text[keep] & 0xc0) == 0x80)
        keep--;
    memcpy(out, text, keep);
    if (max >= mark_len) {
        memcpy(out + keep, mark, mark_len);
        keep += mark_len;
    }
    out[keep] = '\0';
}

static int summary_valid(const tl_ticket_summary_t *s)
{
    if (!ticket_id_ok(s->ticket) || !text_ok(s->title, TL_TICKET_TITLE_MAX, 1) ||
        !status_ok(s->status) || !time_ok(s->updated_ms))
        return 0;
    return !s->has_note ||
           (text_ok(s->note, TL_TICKET_NOTE_MAX, 1) && by_ok(s->note_by) && time_ok(s->note_ms));
}

static json_t *summary_json(const tl_ticket_summary_t *s)
{
    json_t *out = json_pack("{s:s, s:s, s:s, s:I}", "ticket", s->ticket, "title", s->title,
                            "status", s->status, "updated", (json_int_t)s->updated_ms);
    if (out != NULL && s->has_note &&
        json_object_set_new(out, "note",
                            json_pack("{s:s, s:s, s:I}", "text", s->note, "by", s->note_by, "time",
                                      (json_int_t)s->note_ms)) != 0) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

int tl_msg_tickets_encode(const tl_ticket_summary_t *items, size_t count, int more, json_t **out)
{
    *out = NULL;
    if (count > TL_TICKETS_LIST_MAX)
        return TL_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!summary_valid(&items[i]))
            return TL_EINVAL;
    json_t *list = json_array(), *result = NULL;
    int rc = list != NULL ? 0 : TL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (json_array_append_new(list, summary_json(&items[i])) != 0)
            rc = TL_ENOMEM;
    if (rc == 0 && (result = json_pack("{s:O, s:b}", "tickets", list, "more", more)) == NULL)
        rc = TL_ENOMEM;
    json_decref(list);
    *out = result;
    return rc;
}

/* A string member of object into out (size bytes); NULL object member: fails. */
static int copy_text(json_t *object, const char *key, char *out, size_t size)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_string(value))
        return 0;
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len >= size || strlen(text) != len) /* no NUL inside */
        return 0;
    memcpy(out, text, len + 1);
    return 1;
}

static int copy_time(json_t *object, const char *key, int64_t *out)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value) || !time_ok(json_integer_value(value)))
        return 0;
    *out = json_integer_value(value);
    return 1;
}

static int summary_decode(json_t *object, tl_ticket_summary_t *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(object) || !copy_text(object, "ticket", out->ticket, sizeof out->ticket) ||
        !copy_text(object, "title", out->title, sizeof out->title) ||
        !copy_text(object, "status", out->status, sizeof out->status) ||
        !copy_time(object, "updated", &out->updated_ms))
        return TL_EMSG_MALFORMED;
    json_t *note = json_object_get(object, "note");
    if (note != NULL && !json_is_null(note)) {
        out->has_note = 1;
        if (!json_is_object(note) || !copy_text(note, "text", out->note, sizeof out->note) ||
            !copy_text(note, "by", out->note_by, sizeof out->note_by) ||
            !copy_time(note, "time", &out->note_ms))
            return TL_EMSG_MALFORMED;
    }
    return summary_valid(out) ? 0 : TL_EMSG_MALFORMED;
}

json_t *tl_msg_ticket_summary_json(const tl_ticket_summary_t *summary)
{
    return summary_valid(summary) ? summary_json(summary) : NULL;
}

int tl_msg_ticket_summary_decode(json_t *object, tl_ticket_summary_t *out)
{
    return summary_decode(object, out);
}

int tl_msg_tickets_decode(json_t *result, tl_ticket_summary_t *items, size_t *count, int *more)
{
    *count = 0;
    *more = 0;
    json_t *list = json_object_get(result, "tickets");
    json_t *more_value = json_object_get(result, "more");
    if (!json_is_array(list) || json_array_size(list) > TL_TICKETS_LIST_MAX ||
        !json_is_boolean(more_value))
        return TL_EMSG_MALFORMED;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        int rc = summary_decode(item, &items[i]);
        if (rc != 0)
            return rc;
        /* A ticket listed twice would be shown twice: the answer is wrong. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[j].ticket, items[i].ticket) == 0)
                return TL_EMSG_MALFORMED;
    }
    *count = json_array_size(list);
    *more = json_is_true(more_value);
    return 0;
}

int tl_msg_ticket_update_encode(const tl_ticket_update_t *update, json_t **out)
{
    *out = NULL;
    if (!event_ok(update->event) || !summary_valid(&update->summary))
        return TL_EINVAL;
    json_t *summary = summary_json(&update->summary);
    *out = summary != NULL ? json_pack("{s:s, s:s, s:o}", "type",
                                       tl_control_type_name(TL_CONTROL_TICKET_UPDATE), "event",
                                       update->event, "ticket", summary)
                           : NULL;
    return *out != NULL ? 0 : TL_ENOMEM;
}

int tl_msg_ticket_update_decode(json_t *body, tl_ticket_update_t *out)
{
    memset(out, 0, sizeof *out);
    const char *type = json_string_value(json_object_get(body, "type"));
    if (tl_control_type_lookup(type) != TL_CONTROL_TICKET_UPDATE ||
        !copy_text(body, "event", out->event, sizeof out->event) || !event_ok(out->event))
        return TL_EMSG_MALFORMED;
    return summary_decode(json_object_get(body, "ticket"), &out->summary);
}
