/* The relay's metrics endpoint and its cached desk gauges (relay/metrics_serve.h). */
#include "relay/metrics_serve.h"
#include "proto/addr.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/desk/clocks.h"
#include "relay/desk/tickets.h"
#include "relay/net/metrics_http.h"
#include "relay/store/metrics.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct gather_job {
    tl_job_t job;              /* first */
    tl_metrics_serve_t *owner; /* NULL once the owner stopped */
    const tl_sla_config_t *sla;
    uint64_t queued[TL_METRICS_TIERS], breached[TL_METRICS_TIERS];
    int64_t at_ms;
};

struct tl_metrics_serve {
    tl_worker_t *worker;
    const tl_sla_config_t *sla;
    tl_metrics_http_t *http;
    uv_timer_t timer;
    struct gather_job *in_flight;
};

static int render(void *ctx, tl_buf_t *out)
{
    (void)ctx;
    return tl_metrics_render(out, tl_wall_ms());
}

/* On the worker: the open tickets by tier, and those with a breached clock. */
static int gather_run(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct gather_job *job = (struct gather_job *)base;
    tl_ticket_filter_t filter = {.tier = -1};
    tl_ticket_rows_t rows = {0};
    job->at_ms = tl_wall_ms();
    int rc = tl_store_tickets_read(ctx->store, &filter, &rows);
    for (size_t i = 0; rc == 0 && i < rows.count; i++) {
        const tl_ticket_row_t *row = &rows.rows[i];
        if (row->tier < 0 || row->tier >= TL_METRICS_TIERS || !tl_ticket_status_active(row->status))
            continue;
        job->queued[row->tier]++;
        tl_sla_clock_t clocks[TL_SLA_CLOCKS];
        char why[256];
        if (job->sla == NULL ||
            tl_clocks_evaluate(ctx->store, job->sla, row, job->at_ms, clocks, why, sizeof why) != 0)
            continue;
        for (int c = 0; c < TL_SLA_CLOCKS; c++)
            if (clocks[c].state == TL_SLA_BREACHED) {
                job->breached[row->tier]++;
                break;
            }
    }
    tl_ticket_rows_free(&rows);
    return rc;
}

static void gather_done(tl_job_t *base, int status)
{
    struct gather_job *job = (struct gather_job *)base;
    if (job->owner != NULL) {
        job->owner->in_flight = NULL;
        if (status == 0)
            tl_metrics_set_desk(job->queued, job->breached, job->at_ms);
        else
            tl_log_warn("metrics: ticket gauges not gathered reason=%s", tl_strerror(status));
    }
    free(job);
}

static void on_timer(uv_timer_t *timer)
{
    tl_metrics_serve_t *metrics = timer->data;
    if (metrics->in_flight != NULL)
        return; /* one at a time, whatever the store's pace */
    struct gather_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    job->job.run = gather_run;
    job->job.done = gather_done;
    job->owner = metrics;
    job->sla = metrics->sla;
    metrics->in_flight = job;
    tl_worker_submit(metrics->worker, &job->job);
}

int tl_metrics_serve_loopback(const char *listen)
{
    struct sockaddr_storage address;
    if (tl_addr_parse(listen, &address) != 0)
        return 0;
    if (address.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&address;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (address.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

static void timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

tl_metrics_serve_t *tl_metrics_serve_start(uv_loop_t *loop, tl_worker_t *worker,
                                           const tl_sla_config_t *sla, const char *listen, int *err)
{
    tl_metrics_serve_t *metrics = calloc(1, sizeof *metrics);
    if (metrics == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    metrics->worker = worker;
    metrics->sla = sla;
    tl_metrics_http_config_t config = {.listen = listen, .render = render, .ctx = metrics};
    metrics->http = tl_metrics_http_start(loop, &config, err);
    if (metrics->http == NULL) {
        free(metrics);
        return NULL;
    }
    uv_timer_init(loop, &metrics->timer);
    metrics->timer.data = metrics;
    uv_timer_start(&metrics->timer, on_timer, 0, TL_METRICS_DESK_INTERVAL_MS);
    uv_unref((uv_handle_t *)&metrics->timer); /* the gauges alone keep nothing running */
    return metrics;
}

void tl_metrics_serve_stop(tl_metrics_serve_t *metrics)
{
    if (metrics == NULL)
        return;
    tl_metrics_http_stop(metrics->http);
    if (metrics->in_flight != NULL)
        metrics->in_flight->owner = NULL;
    uv_timer_stop(&metrics->timer);
    uv_close((uv_handle_t *)&metrics->timer, timer_closed);
}
