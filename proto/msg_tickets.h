/*
 * The user's side of tickets on the wire (docs/protocol.md §7.11, §7.12): the agent's
 * tickets.list request and its answer, and the relay's ticket.update notice. Both carry
 * ticket summaries — an id, a title, a status and the latest note a technician wrote to the
 * user — with every field bounded, so one answer always fits one frame and the agent's
 * control socket.
 *
 * The texts (title, note) are what other parties typed. They travel and are kept as they
 * came (JSON strings: valid UTF-8 without NUL); whoever shows them escapes them
 * (proto/text.h). The relay clips a longer note to TL_TICKET_NOTE_MAX bytes with
 * tl_msg_tickets_clip before it encodes; a decoder refuses anything out of bounds, so an
 * agent never holds more than the limits say whatever a relay sends.
 *
 * Pure: JSON objects in, fixed-size structs out, no I/O, no allocation but the JSON the
 * encoders return.
 */
#ifndef TL_MSG_TICKETS_H
#define TL_MSG_TICKETS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Tickets in one tickets.list answer: the device's most recently updated ones. */
#define TL_TICKETS_LIST_MAX 20
/* Field limits, in bytes. */
#define TL_TICKET_ID_MAX 32     /* "T-42": 1..32 of A-Z a-z 0-9 . _ - */
#define TL_TICKET_TITLE_MAX 200 /* any text but NUL */
#define TL_TICKET_STATUS_MAX 32 /* "waiting-user": 1..32 of a-z - */
#define TL_TICKET_NOTE_MAX 1024 /* any text but NUL, clipped by the relay */
#define TL_TICKET_BY_MAX 64     /* an account name: 1..64 of A-Z a-z 0-9 . _ - */
#define TL_TICKET_EVENT_MAX 64  /* a timeline event's kind: 1..64 of a-z 0-9 . _ - */
/* Times are milliseconds since 1970, up to 9999-12-31T23:59:59.999Z. */
#define TL_TICKET_TIME_MAX 253402300799999LL

/* One ticket as its user sees it. */
typedef struct tl_ticket_summary {
    char ticket[TL_TICKET_ID_MAX + 1];
    char title[TL_TICKET_TITLE_MAX + 1];
    char status[TL_TICKET_STATUS_MAX + 1];
    int64_t updated_ms;
    /* The latest note a technician wrote to the user (a note or the resolution); has_note 0:
     * none yet, and the three below are empty. */
    int has_note;
    char note[TL_TICKET_NOTE_MAX + 1];
    char note_by[TL_TICKET_BY_MAX + 1];
    int64_t note_ms;
} tl_ticket_summary_t;

/* A ticket.update notice: what happened on the ticket, and its summary now. */
typedef struct tl_ticket_update {
    char event[TL_TICKET_EVENT_MAX + 1]; /* the timeline event's kind: "note", "ticket.resolved" */
    tl_ticket_summary_t summary;
} tl_ticket_update_t;

/*
 * Copies text into out, cut at a UTF-8 character boundary so that it fits in max bytes (at most
 * size - 1), ending with "…" when anything was cut. size must be at least 4; NULL is "".
 */
void tl_msg_tickets_clip(char *out, size_t size, size_t max, const char *text);

/*
 * The members a tickets.list result adds to {"type":"result","ok":true}: {"tickets":[...],
 * "more":B}, a new object in *out. TL_EINVAL when count is over TL_TICKETS_LIST_MAX or a
 * field breaks its limits (nothing is clipped here), TL_ENOMEM.
 */
int tl_msg_tickets_encode(const tl_ticket_summary_t *items, size_t count, int more, json_t **out);
/*
 * A tickets.list result (its "tickets" and "more" members; others are ignored) into items, which
 * has room for TL_TICKETS_LIST_MAX. TL_EMSG_MALFORMED, and *count 0, when a member is missing,
 * of the wrong type or out of its limits: the whole answer is refused.
 */
int tl_msg_tickets_decode(json_t *result, tl_ticket_summary_t *items, size_t *count, int *more);

/* One ticket as the lists and notices carry it: a new object, NULL when a field breaks its
 * limits or without memory; and back, TL_EMSG_MALFORMED as the decoders below. */
json_t *tl_msg_ticket_summary_json(const tl_ticket_summary_t *summary);
int tl_msg_ticket_summary_decode(json_t *object, tl_ticket_summary_t *out);

/* A whole ticket.update notice body, {"type":"ticket.update",...}, in *out; as the encoder above.
 */
int tl_msg_ticket_update_encode(const tl_ticket_update_t *update, json_t **out);
/* A ticket.update notice body into out; TL_EMSG_MALFORMED as the decoder above. */
int tl_msg_ticket_update_decode(json_t *body, tl_ticket_update_t *out);

#endif
