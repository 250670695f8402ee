/*
 * The relay's listening sockets (relay/net/listener.h says why it accepts by
 * itself and what it does when descriptors run out).
 */
#include "relay/net/listener.h"
#include "proto/addr.h"
#include "proto/err.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 128

struct tl_listener {
    uv_loop_t *loop;
    char name[32];
    tl_listener_accept_fn on_accept;
    void *ctx;
    int fd;       /* the listening socket; closed with the poll handle */
    int spare_fd; /* held so that a full descriptor table can still refuse a connection */
    uv_poll_t poll;
    uv_timer_t pause;     /* accepting resumes when it fires */
    uv_timer_t log_timer; /* writes the count of failures that had no line of their own */
    int handles_open;
    uint32_t rate;        /* per second; 0: no limit */
    uint64_t credit;      /* thousandths of a connection that may be accepted now */
    uint64_t refilled_at; /* loop time of the last refill */
    unsigned held : 1;    /* the owner's hold */
    unsigned stopping : 1;
    unsigned logged : 1; /* a line was written at logged_at */
    uint64_t failures;
    uint64_t unlogged; /* failures since the last line, without a line of their own */
    uint64_t logged_at;
    int last_error;
};

static void on_poll(uv_poll_t *handle, int status, int events);

static int open_spare(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static const char *error_name(int error)
{
    return error < 0 && error > TL_ERR_FIRST ? uv_err_name(error) : tl_err_name(error);
}

static void write_suppressed(tl_listener_t *listener)
{
    if (listener->unlogged == 0)
        return;
    tl_log_warn("accept failed listener=%s error=%s suppressed=%llu", listener->name,
                error_name(listener->last_error), (unsigned long long)listener->unlogged);
    listener->unlogged = 0;
    listener->logged = 1;
    listener->logged_at = uv_now(listener->loop);
}

static void on_log_timer(uv_timer_t *timer)
{
    write_suppressed(timer->data);
}

/*
 * One connection turned away. The first after a quiet spell gets its own
 * line; the others within TL_LISTENER_LOG_INTERVAL_MS of the last line are
 * counted and written as one line when that interval is over.
 */
static void note_failure(tl_listener_t *listener, int error)
{
    uint64_t now = uv_now(listener->loop);
    listener->failures++;
    listener->last_error = error;
    if (!listener->logged || now - listener->logged_at >= TL_LISTENER_LOG_INTERVAL_MS) {
        write_suppressed(listener); /* an interval's count, if its timer has not run yet */
        tl_log_warn("accept failed listener=%s error=%s", listener->name, error_name(error));
        listener->logged = 1;
        listener->logged_at = now;
        return;
    }
    if (listener->unlogged++ == 0 && !listener->stopping)
        uv_timer_start(&listener->log_timer, on_log_timer,
                       listener->logged_at + TL_LISTENER_LOG_INTERVAL_MS - now, 0);
}

/* The bucket holds a tenth of a second's connections, at least one. */
static uint64_t credit_max(const tl_listener_t *listener)
{
    return (listener->rate / 10 > 0 ? listener->rate / 10 : 1) * 1000ull;
}

static void refill(tl_listener_t *listener)
{
    uint64_t now = uv_now(listener->loop);
    uint64_t elapsed = now - listener->refilled_at;
    uint64_t max = credit_max(listener);
    listener->refilled_at = now;
    /* rate connections a second are rate thousandths a millisecond. */
    listener->credit = elapsed >= max ? max : listener->credit + elapsed * listener->rate;
    if (listener->credit > max)
        listener->credit = max;
}

static void on_pause_over(uv_timer_t *timer)
{
    tl_listener_t *listener = timer->data;
    if (listener->stopping || listener->held)
        return;
    if (listener->spare_fd < 0)
        listener->spare_fd = open_spare();
    uv_poll_start(&listener->poll, UV_READABLE, on_poll);
}

static void pause_accepting(tl_listener_t *listener)
{
    uv_poll_stop(&listener->poll);
    uv_timer_start(&listener->pause, on_pause_over, TL_LISTENER_PAUSE_MS, 0);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    tl_listener_t *listener = handle->data;
    (void)events;
    if (status < 0) {
        note_failure(listener, status);
        pause_accepting(listener);
        return;
    }
    for (int i = 0; i < TL_LISTENER_BATCH && !listener->stopping && !listener->held; i++) {
        if (listener->rate > 0) {
            uv_update_time(listener->loop);
            refill(listener);
            if (listener->credit < 1000) {
                /* Over the rate: wait, in the backlog, until a batch's worth may come in. */
                uint64_t want = credit_max(listener);
                if (want > TL_LISTENER_BATCH * 1000ull)
                    want = TL_LISTENER_BATCH * 1000ull;
                uint64_t wait_ms = (want - listener->credit + listener->rate - 1) / listener->rate;
                uv_poll_stop(&listener->poll);
                uv_timer_start(&listener->pause, on_pause_over, wait_ms > 0 ? wait_ms : 1, 0);
                return;
            }
        }
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(listener->fd, (struct sockaddr *)&peer, &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (listener->rate > 0)
                listener->credit -= 1000;
            listener->on_accept(listener->ctx, fd, (struct sockaddr *)&peer);
            continue;
        }
        int error = errno;
        if (error == EINTR || error == ECONNABORTED)
            continue;
        if (error == EAGAIN || error == EWOULDBLOCK)
            return;
        if ((error == EMFILE || error == ENFILE) && listener->spare_fd >= 0) {
            /*
             * Room for one descriptor: take the pending connection and close it at once.
             * (accept() fails with EMFILE before it looks for a connection, so there
             * may be none: then the backlog is empty and this wake-up is over.)
             */
            close(listener->spare_fd);
            int dropped = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC);
            int drop_error = errno;
            if (dropped >= 0) {
                close(dropped);
                note_failure(listener, -error);
            }
            listener->spare_fd = open_spare();
            if (listener->spare_fd < 0) {
                pause_accepting(listener); /* another thread took the descriptor */
                return;
            }
            if (dropped < 0 && drop_error != EINTR && drop_error != ECONNABORTED)
                return;
            continue;
        }
        note_failure(listener, -error);
        pause_accepting(listener);
        return;
    }
}

static void on_closed(uv_handle_t *handle)
{
    tl_listener_t *listener = handle->data;
    if (handle == (uv_handle_t *)&listener->poll) {
        close(listener->fd);
        listener->fd = -1;
    }
    if (--listener->handles_open == 0)
        free(listener);
}

static int listen_on(const char *text, int backlog, int *out)
{
    struct sockaddr_storage address;
    int rc = tl_addr_parse(text, &address);
    if (rc != 0)
        return rc;
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t length =
        address.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&address, length) != 0 || listen(fd, backlog) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

tl_listener_t *tl_listener_start(uv_loop_t *loop, const tl_listener_config_t *config, int *err)
{
    tl_listener_t *listener = NULL;
    int fd = -1;
    int rc = TL_EINVAL;
    if (loop == NULL || config == NULL || config->address == NULL || config->on_accept == NULL)
        goto out;
    rc = listen_on(config->address, config->backlog > 0 ? config->backlog : DEFAULT_BACKLOG, &fd);
    if (rc != 0)
        goto out;
    rc = TL_ENOMEM;
    listener = calloc(1, sizeof *listener);
    if (listener == NULL)
        goto out;
    listener->loop = loop;
    snprintf(listener->name, sizeof listener->name, "%s", config->name ? config->name : "-");
    listener->on_accept = config->on_accept;
    listener->ctx = config->ctx;
    listener->rate = config->rate;
    listener->credit = credit_max(listener);
    listener->refilled_at = uv_now(loop);
    listener->spare_fd = open_spare();
    rc = uv_poll_init(loop, &listener->poll, fd);
    if (rc != 0) {
        if (listener->spare_fd >= 0)
            close(listener->spare_fd);
        free(listener);
        listener = NULL;
        goto out;
    }
    listener->fd = fd;
    fd = -1; /* closed with the poll handle */
    listener->poll.data = listener;
    uv_timer_init(loop, &listener->pause);
    listener->pause.data = listener;
    uv_timer_init(loop, &listener->log_timer);
    listener->log_timer.data = listener;
    listener->handles_open = 3;
    uv_poll_start(&listener->poll, UV_READABLE, on_poll);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (err != NULL)
        *err = rc;
    return listener;
}

void tl_listener_stop(tl_listener_t *listener)
{
    if (listener == NULL || listener->stopping)
        return;
    listener->stopping = 1;
    write_suppressed(listener);
    if (listener->spare_fd >= 0)
        close(listener->spare_fd);
    listener->spare_fd = -1;
    uv_close((uv_handle_t *)&listener->poll, on_closed);
    uv_close((uv_handle_t *)&listener->pause, on_closed);
    uv_close((uv_handle_t *)&listener->log_timer, on_closed);
}

void tl_listener_hold(tl_listener_t *listener, int held)
{
    if (listener == NULL || listener->stopping || listener->held == (held != 0))
        return;
    listener->held = held != 0;
    if (listener->held)
        uv_poll_stop(&listener->poll);
    else if (!uv_is_active((uv_handle_t *)&listener->pause))
        uv_poll_start(&listener->poll, UV_READABLE, on_poll);
}

void tl_listener_dropped(tl_listener_t *listener, int error)
{
    if (listener != NULL && !listener->stopping)
        note_failure(listener, error);
}

uint64_t tl_listener_failures(const tl_listener_t *listener)
{
    return listener->failures;
}
