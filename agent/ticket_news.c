/* The user's tickets as the running agent knows them (agent/ticket_news.h). */
#include "agent/ticket_news.h"
#include "proto/format.h"
#include "proto/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *status;
    const char *words;
    int news; /* the user hears of a change to it */
} statuses[] = {
    {"new", "new: waiting for a technician", 0},
    {"open", "open: a technician is on it", 0},
    {"waiting-user", "waiting for you", 1},
    {"waiting-vendor", "waiting for an outside vendor", 1},
    {"resolved", "resolved", 1},
    {"closed", "closed", 1},
    {"reopened", "reopened: a technician will look at it again", 1},
};
#define STATUSES (sizeof statuses / sizeof statuses[0])

const char *tl_ticket_status_words(const char *status)
{
    for (size_t i = 0; status != NULL && i < STATUSES; i++)
        if (strcmp(statuses[i].status, status) == 0)
            return statuses[i].words;
    return NULL;
}

/* A status the user hears of: the desk's (but new and open), or one the agent does not know. */
static int status_is_news(const char *status)
{
    for (size_t i = 0; i < STATUSES; i++)
        if (strcmp(statuses[i].status, status) == 0)
            return statuses[i].news;
    return 1;
}

struct known {
    char ticket[TL_TICKET_ID_MAX + 1];
    char status[TL_TICKET_STATUS_MAX + 1];
    int has_note;
    int64_t note_ms;
    uint64_t note_hash; /* of the note's author and text */
    uint64_t touched;   /* when it last changed, in calls */
};

struct tl_ticket_news {
    struct known known[TL_TICKET_NEWS_KNOWN];
    size_t count;
    uint64_t clock;
    int learned; /* a first list came */
};

tl_ticket_news_t *tl_ticket_news_new(void)
{
    return calloc(1, sizeof(tl_ticket_news_t));
}

void tl_ticket_news_free(tl_ticket_news_t *news)
{
    free(news);
}

/* FNV-1a over the note's author and text: tells one note from another. */
static uint64_t note_hash(const tl_ticket_summary_t *ticket)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    const char *parts[] = {ticket->note_by, "\n", ticket->note};
    for (size_t p = 0; p < 3; p++)
        for (const unsigned char *at = (const unsigned char *)parts[p]; *at != '\0'; at++)
            hash = (hash ^ *at) * 0x100000001b3ull;
    return hash;
}

static struct known *find(tl_ticket_news_t *news, const char *ticket)
{
    for (size_t i = 0; i < news->count; i++)
        if (strcmp(news->known[i].ticket, ticket) == 0)
            return &news->known[i];
    return NULL;
}

/* A place for a ticket not known yet: a free one, or the longest unchanged. */
static struct known *make_room(tl_ticket_news_t *news)
{
    if (news->count < TL_TICKET_NEWS_KNOWN)
        return &news->known[news->count++];
    struct known *oldest = &news->known[0];
    for (size_t i = 1; i < news->count; i++)
        if (news->known[i].touched < oldest->touched)
            oldest = &news->known[i];
    return oldest;
}

/* Compares ticket with what was known, remembers it, and says what is news (announce 0: none). */
static unsigned learn(tl_ticket_news_t *news, const tl_ticket_summary_t *ticket, int announce)
{
    struct known *known = find(news, ticket->ticket);
    uint64_t hash = ticket->has_note ? note_hash(ticket) : 0;
    unsigned what = 0;
    if (known == NULL) {
        if (ticket->has_note)
            what |= TL_NEWS_NOTE;
        if (status_is_news(ticket->status))
            what |= TL_NEWS_STATUS;
        known = make_room(news);
        memset(known, 0, sizeof *known);
        strcpy(known->ticket, ticket->ticket);
    } else {
        if (ticket->has_note &&
            (!known->has_note || known->note_ms != ticket->note_ms || known->note_hash != hash))
            what |= TL_NEWS_NOTE;
        if (strcmp(known->status, ticket->status) != 0 && status_is_news(ticket->status))
            what |= TL_NEWS_STATUS;
    }
    if (what != 0 || strcmp(known->status, ticket->status) != 0)
        known->touched = ++news->clock;
    strcpy(known->status, ticket->status);
    known->has_note = ticket->has_note;
    known->note_ms = ticket->note_ms;
    known->note_hash = hash;
    return announce ? what : 0;
}

void tl_ticket_news_list(tl_ticket_news_t *news, const tl_ticket_summary_t *items, size_t count,
                         unsigned *what)
{
    int announce = news->learned;
    for (size_t i = 0; i < count; i++)
        what[i] = learn(news, &items[i], announce);
    news->learned = 1;
}

unsigned tl_ticket_news_update(tl_ticket_news_t *news, const tl_ticket_summary_t *ticket)
{
    return learn(news, ticket, 1);
}

void tl_ticket_news_text(const tl_ticket_summary_t *ticket, unsigned what, char *summary,
                         size_t summary_size, char *body, size_t body_size, char *hint,
                         size_t hint_size)
{
    char id[4 * TL_TICKET_ID_MAX + 8], title[4 * 80 + 8], by[4 * TL_TICKET_BY_MAX + 8];
    char status[4 * TL_TICKET_STATUS_MAX + 8];
    tl_text_clip(id, sizeof id, ticket->ticket, 0, TL_TEXT_LINE);
    tl_text_clip(title, sizeof title, ticket->title, 80, TL_TEXT_LINE);
    tl_text_clip(by, sizeof by, ticket->note_by, 0, TL_TEXT_LINE);
    const char *words = tl_ticket_status_words(ticket->status);
    if (words == NULL) {
        tl_text_clip(status, sizeof status, ticket->status, 0, TL_TEXT_LINE);
        words = status;
    }
    /* "waiting for you", not "waiting for you: ...": the summary is one short line. */
    char first[64];
    tl_format(first, sizeof first, "%.*s", (int)strcspn(words, ":"), words);
    if (what & TL_NEWS_STATUS)
        tl_format(summary, summary_size, "%s is %s", id, first);
    else
        tl_format(summary, summary_size, "new note on %s", id);
    size_t used = 0;
    body[0] = '\0';
    tl_format_append(body, body_size, &used, "\"%s\"", title);
    if (ticket->has_note) {
        /* The note as the user reads it in a listing: its lines kept, no control character. */
        size_t room = body_size > used + 64 ? body_size - used - 64 : 4;
        char *note = malloc(room);
        if (note != NULL) {
            tl_text_clip(note, room, ticket->note, 0, TL_TEXT_BODY);
            tl_format_append(body, body_size, &used, "\n%s: %s", by, note);
            free(note);
        }
    }
    tl_format(hint, hint_size, "See: tierline-agent tickets");
}
