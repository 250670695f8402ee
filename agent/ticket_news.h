/*
 * The user's tickets as the running agent knows them, and what is news (docs/desk.md "The
 * user's side of the ticket").
 *
 * The relay's ticket.update notices and tickets.list answers (proto/msg_tickets.h) are hints;
 * the agent decides what the user is told by comparing each ticket with what it last knew: a
 * note it had not seen (NOTE), or a status the user must hear of (STATUS: anything but new and
 * open — a technician taking the ticket is not news). The first list after the agent starts only
 * learns; later lists (after a reconnection) announce what changed meanwhile.
 *
 * Also the words every listing and notice uses for a status ("waiting for you"), and the texts
 * of a notice, escaped (proto/text.h): the titles and notes are other parties' words.
 *
 * Pure: no I/O, no loop.
 */
#ifndef TL_TICKET_NEWS_H
#define TL_TICKET_NEWS_H

#include "proto/msg_tickets.h"

#include <stddef.h>

/* Tickets remembered; beyond it the longest unchanged is forgotten (and would be news again). */
#define TL_TICKET_NEWS_KNOWN 256

enum {
    TL_NEWS_NOTE = 1u << 0,   /* a note the user has not been told of */
    TL_NEWS_STATUS = 1u << 1, /* a status the user must hear of */
};

/* What a status means to its user: "waiting for you"; NULL for a status the desk does not have. */
const char *tl_ticket_status_words(const char *status);

typedef struct tl_ticket_news tl_ticket_news_t;

tl_ticket_news_t *tl_ticket_news_new(void);
void tl_ticket_news_free(tl_ticket_news_t *news);
/*
 * A full list from the relay: what[i] gets the news of items[i] (0: none). The first list
 * only learns (every what[i] is 0).
 */
void tl_ticket_news_list(tl_ticket_news_t *news, const tl_ticket_summary_t *items, size_t count,
                         unsigned *what);
/* A ticket.update's ticket: its news (0: none). */
unsigned tl_ticket_news_update(tl_ticket_news_t *news, const tl_ticket_summary_t *ticket);

/*
 * The notice for one ticket's news, escaped for the user: a summary line ("T-4 is waiting for
 * you"), a body (the title, and the note with its author) and the hint that shows more.
 */
void tl_ticket_news_text(const tl_ticket_summary_t *ticket, unsigned what, char *summary,
                         size_t summary_size, char *body, size_t body_size, char *hint,
                         size_t hint_size);

#endif
