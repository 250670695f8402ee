/*
 * Unauthenticated peers' log lines, bounded per address (relay/net/log_limit.h).
 */
#include "relay/net/log_limit.h"
#include "proto/addr.h"
#include "proto/err.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hash buckets for the addresses with windows of their own (a power of two). */
#define BUCKETS 512
#define NONE (-1)

struct window {
    char address[TL_ADDR_TEXT_MAX]; /* cut to fit: longer ones are told apart by this much */
    bool running;
    int next; /* in its bucket's chain, or the free list */
    int64_t start_ms;
    uint32_t written;
    uint64_t suppressed;
    enum tl_log_level level; /* the highest held back */
};

struct tl_log_limit {
    tl_log_limit_summary_fn emit;
    void *ctx;
    struct window windows[TL_LOG_LIMIT_ADDRESSES];
    int buckets[BUCKETS];
    int free_head;       /* windows not running, chained by next */
    int64_t oldest_ms;   /* no running window started before this: a window may be over only
                            once now_ms - oldest_ms >= TL_LOG_LIMIT_WINDOW_MS */
    int64_t due_ms;      /* no summary is due before this (a lower bound; INT64_MAX: none) */
    struct window other; /* shared by the addresses that found no window of their own */
    /* tl_log_limit_start()'s only: */
    uv_loop_t *loop;
    uv_timer_t timer;
    int64_t timer_due; /* when the armed timer fires */
};

tl_log_limit_t *tl_log_limit_new(tl_log_limit_summary_fn emit, void *ctx)
{
    if (emit == NULL)
        return NULL;
    tl_log_limit_t *limit = calloc(1, sizeof *limit);
    if (limit == NULL)
        return NULL;
    limit->emit = emit;
    limit->ctx = ctx;
    for (int i = 0; i < BUCKETS; i++)
        limit->buckets[i] = NONE;
    for (int i = 0; i < TL_LOG_LIMIT_ADDRESSES; i++)
        limit->windows[i].next = i + 1 < TL_LOG_LIMIT_ADDRESSES ? i + 1 : NONE;
    limit->free_head = 0;
    limit->oldest_ms = INT64_MAX;
    limit->due_ms = INT64_MAX;
    snprintf(limit->other.address, sizeof limit->other.address, "%s", TL_LOG_LIMIT_OTHER);
    return limit;
}

void tl_log_limit_free(tl_log_limit_t *limit)
{
    free(limit);
}

/* Addresses are kept, hashed and compared cut to what a window holds. */
static size_t bucket_of(const char *address)
{
    uint64_t hash = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < TL_ADDR_TEXT_MAX - 1 && address[i] != '\0'; i++)
        hash = (hash ^ (unsigned char)address[i]) * 1099511628211ull;
    return (size_t)(hash & (BUCKETS - 1));
}

static bool same_address(const struct window *window, const char *address)
{
    return strncmp(window->address, address, sizeof window->address - 1) == 0;
}

static bool window_over(const struct window *window, int64_t now_ms)
{
    return now_ms == INT64_MAX || now_ms - window->start_ms >= TL_LOG_LIMIT_WINDOW_MS;
}

/* Emits the window's summary if it held anything back, and starts it afresh at now_ms. */
static void end_window(tl_log_limit_t *limit, struct window *window, int64_t now_ms)
{
    if (window->suppressed > 0) {
        tl_log_limit_summary_t summary = {
            .address = window->address,
            .suppressed = window->suppressed,
            .level = window->level,
        };
        limit->emit(limit->ctx, &summary);
    }
    window->start_ms = now_ms;
    window->written = 0;
    window->suppressed = 0;
    window->level = TL_LOG_DEBUG;
}

/* Ends an address's window and gives its place back. */
static void release(tl_log_limit_t *limit, int index, int64_t now_ms)
{
    struct window *window = &limit->windows[index];
    end_window(limit, window, now_ms);
    int *link = &limit->buckets[bucket_of(window->address)];
    while (*link != index)
        link = &limit->windows[*link].next;
    *link = window->next;
    window->running = false;
    window->next = limit->free_head;
    limit->free_head = index;
}

/* Gives back the places of the windows over at now_ms; their summaries come out. */
static void release_over(tl_log_limit_t *limit, int64_t now_ms)
{
    int64_t oldest = INT64_MAX;
    for (int i = 0; i < TL_LOG_LIMIT_ADDRESSES; i++) {
        struct window *window = &limit->windows[i];
        if (!window->running)
            continue;
        if (window_over(window, now_ms))
            release(limit, i, now_ms);
        else if (window->start_ms < oldest)
            oldest = window->start_ms;
    }
    limit->oldest_ms = oldest;
}

/*
 * address's window: its own if it has one or a place is free (or frees when
 * a window is over), else the shared one. A window that is over is ended
 * (its summary emitted) and started again.
 */
static struct window *window_for(tl_log_limit_t *limit, int64_t now_ms, const char *address)
{
    size_t bucket = bucket_of(address);
    for (int i = limit->buckets[bucket]; i != NONE; i = limit->windows[i].next) {
        struct window *window = &limit->windows[i];
        if (same_address(window, address)) {
            if (window_over(window, now_ms))
                end_window(limit, window, now_ms);
            return window;
        }
    }
    if (limit->free_head == NONE && limit->oldest_ms != INT64_MAX &&
        now_ms - limit->oldest_ms >= TL_LOG_LIMIT_WINDOW_MS)
        release_over(limit, now_ms);
    if (limit->free_head != NONE) {
        int index = limit->free_head;
        struct window *window = &limit->windows[index];
        limit->free_head = window->next;
        snprintf(window->address, sizeof window->address, "%.*s", (int)sizeof window->address - 1,
                 address);
        window->running = true;
        window->start_ms = now_ms;
        window->next = limit->buckets[bucket];
        limit->buckets[bucket] = index;
        if (now_ms < limit->oldest_ms)
            limit->oldest_ms = now_ms;
        return window;
    }
    struct window *other = &limit->other;
    if (!other->running) {
        other->running = true;
        other->start_ms = now_ms;
    } else if (window_over(other, now_ms)) {
        end_window(limit, other, now_ms);
    }
    return other;
}

int tl_log_limit_admit(tl_log_limit_t *limit, int64_t now_ms, const char *address,
                       enum tl_log_level level)
{
    if (limit == NULL)
        return 1;
    struct window *window = window_for(limit, now_ms, address != NULL ? address : "");
    if (window->written < TL_LOG_LIMIT_LINES) {
        window->written++;
        return 1;
    }
    if (window->suppressed++ == 0 && window->start_ms + TL_LOG_LIMIT_WINDOW_MS < limit->due_ms)
        limit->due_ms = window->start_ms + TL_LOG_LIMIT_WINDOW_MS;
    if (level > window->level)
        window->level = level;
    return 0;
}

static int64_t due_of(const struct window *window, int64_t due)
{
    if (window->running && window->suppressed > 0 &&
        window->start_ms + TL_LOG_LIMIT_WINDOW_MS < due)
        return window->start_ms + TL_LOG_LIMIT_WINDOW_MS;
    return due;
}

void tl_log_limit_flush(tl_log_limit_t *limit, int64_t now_ms)
{
    if (limit == NULL)
        return;
    release_over(limit, now_ms);
    if (limit->other.running && window_over(&limit->other, now_ms)) {
        end_window(limit, &limit->other, now_ms);
        limit->other.running = false;
    }
    int64_t due = INT64_MAX;
    for (int i = 0; i < TL_LOG_LIMIT_ADDRESSES; i++)
        due = due_of(&limit->windows[i], due);
    limit->due_ms = due_of(&limit->other, due);
}

int64_t tl_log_limit_next_due(const tl_log_limit_t *limit)
{
    return limit != NULL ? limit->due_ms : INT64_MAX;
}

/* ---- the relay's: the log's gate, on the loop ------------------------------------------- */

static void write_summary(void *ctx, const tl_log_limit_summary_t *summary)
{
    (void)ctx;
    tl_log_write(summary->level,
                 "log lines over the per-address budget suppressed=%" PRIu64 " peer=%s",
                 summary->suppressed, summary->address);
}

static void on_timer(uv_timer_t *timer);

/* Arms the timer for the next summary due, unless it already fires by then. */
static void arm(tl_log_limit_t *limit)
{
    int64_t due = tl_log_limit_next_due(limit);
    if (due == INT64_MAX || (uv_is_active((uv_handle_t *)&limit->timer) && limit->timer_due <= due))
        return;
    int64_t now = (int64_t)uv_now(limit->loop);
    uv_timer_start(&limit->timer, on_timer, due > now ? (uint64_t)(due - now) : 0, 0);
    limit->timer_due = due;
}

static void on_timer(uv_timer_t *timer)
{
    tl_log_limit_t *limit = timer->data;
    tl_log_limit_flush(limit, (int64_t)uv_now(limit->loop));
    arm(limit);
}

static int gate(void *ctx, enum tl_log_level level, const char *address)
{
    tl_log_limit_t *limit = ctx;
    if (tl_log_limit_admit(limit, (int64_t)uv_now(limit->loop), address, level))
        return 1;
    arm(limit);
    return 0;
}

tl_log_limit_t *tl_log_limit_start(uv_loop_t *loop, int *err)
{
    tl_log_limit_t *limit = tl_log_limit_new(write_summary, NULL);
    if (limit == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    limit->loop = loop;
    uv_timer_init(loop, &limit->timer);
    limit->timer.data = limit;
    /* A summary to come does not keep the relay running. */
    uv_unref((uv_handle_t *)&limit->timer);
    tl_log_set_gate(gate, limit);
    return limit;
}

static void timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void tl_log_limit_stop(tl_log_limit_t *limit)
{
    if (limit == NULL)
        return;
    tl_log_set_gate(NULL, NULL);
    tl_log_limit_flush(limit, INT64_MAX);
    uv_close((uv_handle_t *)&limit->timer, timer_closed);
}
