/*
 * Observers (docs/protocol.md §7.7, "observe"): watching the shells opened
 * on this machine for the same ticket.
 *
 * An observe channel has no process: each chunk read from a shell of the
 * same ticket is offered to it, as much as its window takes at that moment;
 * the rest is dropped for that observer alone, so an observer that does not
 * read never holds the shell back. An observer stays open, watching every
 * shell the ticket opens later too, until its grant ends, the relay closes
 * it or the connection goes. Nothing it sends reaches any process.
 */
#include "agent/session_int.h"

#include "proto/err.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>

int tl__observe_start(struct session *s)
{
    s->what = strdup("observe");
    return s->what == NULL ? TL_ENOMEM : 0;
}

/* Offers a shell's output to the observers of its ticket: what fits now, or nothing. */
void tl__observe_feed(struct session *shell, const uint8_t *bytes, size_t len)
{
    for (struct session *o = shell->owner->list; o != NULL; o = o->next) {
        if (o->kind != KIND_OBSERVE || o->mux == NULL || o->close_sent ||
            strcmp(o->ticket, shell->ticket) != 0)
            continue;
        size_t room = tl_mux_send_window(o->mux, o->channel);
        size_t take = len < room ? len : room;
        size_t written = 0;
        if (take > 0)
            tl_mux_write(o->mux, o->channel, TL_STREAM_MAIN, bytes, take, &written);
        if (written < len)
            tl_log_debug("observer dropped output channel=%u bytes=%zu", o->channel, len - written);
    }
}
