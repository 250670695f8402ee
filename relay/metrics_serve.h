/*
 * The relay's metrics (docs/metrics.md): the endpoint of relay/net/metrics_http.h rendering the
 * counters of relay/store/metrics.h, and the desk's gauges (open tickets and SLA breaches per
 * tier) gathered on the storage worker every TL_METRICS_DESK_INTERVAL_MS, one job at a time, and
 * cached: a scrape never waits for the store. Loop thread only.
 */
#ifndef TL_METRICS_SERVE_H
#define TL_METRICS_SERVE_H

#include "relay/desk/sla.h"
#include "relay/store/worker.h"

#include <uv.h>

typedef struct tl_metrics_serve tl_metrics_serve_t;

/* Listens on listen ("ADDR:PORT"); sla may be NULL (no breaches counted). NULL and *err. */
tl_metrics_serve_t *tl_metrics_serve_start(uv_loop_t *loop, tl_worker_t *worker,
                                           const tl_sla_config_t *sla, const char *listen,
                                           int *err);
/* Stops the endpoint and the gathering; a gathering job in flight is let go when it is done.
 * NULL is a no-op. */
void tl_metrics_serve_stop(tl_metrics_serve_t *metrics);

/* 1 when the address is a loopback one (127.0.0.0/8, ::1), where the endpoint belongs. */
int tl_metrics_serve_loopback(const char *listen);

#endif
