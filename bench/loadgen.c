/*
 * tierline-loadgen: many agents in one process, for the idle-agent and
 * reconnect-storm benchmarks (bench/agents).
 *
 *   tierline-loadgen run --agents DIR --count N [--connect HOST:PORT]
 *                        [--ramp PER-SECOND] [--report-ms MS] [--log-level LEVEL]
 *
 * DIR holds enrolled agent state directories named a00000, a00001, ... (made
 * by `tierline-agent enroll`, see bench/agents). Each of the first N gets the
 * agent's own tunnel (agent/tunnel.h): the real protocol library, TLS 1.3
 * with the agent's enrolled key and the relay's pinned fingerprint,
 * heartbeats, and the agent's reconnect backoff with jitter. Sessions are
 * refused, as by an agent that has no consent module. --connect replaces the
 * relay address the agents enrolled with (the port may change between runs).
 * --ramp spreads the first connections (default 2000 a second); reconnections
 * follow the agents' own backoff.
 *
 * Every --report-ms (default 100) one line goes to stdout:
 *   t_ms=T connected=C connects=K disconnects=D
 * T is milliseconds since start, C the agents connected now (welcomed by the
 * relay), K and D the connections made and lost so far. The driver reads
 * these lines. SIGTERM or SIGINT stops every tunnel and exits 0.
 */
#include "agent/state.h"
#include "agent/tunnel.h"
#include "proto/addr.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/log.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#define PROGRAM "tierline-loadgen"
#define MAX_AGENTS 100000u

struct loadgen;

struct agent {
    struct loadgen *lg;
    tl_agent_state_t state;
    tl_tunnel_t *tunnel;
    int up;
};

struct loadgen {
    uv_loop_t *loop;
    struct agent *agents;
    uint32_t count, started, ramp;
    uint32_t connected;
    uint64_t connects, disconnects;
    uint64_t start_ms;
    uv_timer_t ramp_timer, report_timer;
    uv_signal_t sigterm, sigint;
};

static void on_connected(tl_tunnel_t *tunnel, const char *device)
{
    struct agent *agent = tl_tunnel_data(tunnel);
    if (!agent->up) {
        agent->up = 1;
        agent->lg->connected++;
    }
    agent->lg->connects++;
}

static void on_disconnected(tl_tunnel_t *tunnel, int reason)
{
    struct agent *agent = tl_tunnel_data(tunnel);
    if (agent->up) {
        agent->up = 0;
        agent->lg->connected--;
    }
    agent->lg->disconnects++;
}

static const tl_tunnel_events_t events = {
    .on_connected = on_connected,
    .on_disconnected = on_disconnected,
};

static void report(struct loadgen *lg)
{
    printf("t_ms=%" PRIu64 " connected=%u connects=%" PRIu64 " disconnects=%" PRIu64 "\n",
           uv_now(lg->loop) - lg->start_ms, lg->connected, lg->connects, lg->disconnects);
    fflush(stdout);
}

static void on_report(uv_timer_t *timer)
{
    report(timer->data);
}

/* Starts the next slice of tunnels: ramp per second, in 10 ms steps. */
static void on_ramp(uv_timer_t *timer)
{
    struct loadgen *lg = timer->data;
    uint32_t step = lg->ramp / 100 > 0 ? lg->ramp / 100 : 1;
    tl_tunnel_options_t options = {0};
    for (uint32_t n = 0; n < step && lg->started < lg->count; n++) {
        struct agent *agent = &lg->agents[lg->started];
        options.state = &agent->state;
        int err = 0;
        agent->lg = lg;
        agent->tunnel = tl_tunnel_start(lg->loop, &options, &events, agent, &err);
        if (agent->tunnel == NULL) {
            fprintf(stderr, PROGRAM ": agent %s: %s\n", agent->state.dir, tl_strerror(err));
            exit(TL_EXIT_FAILURE);
        }
        lg->started++;
    }
    if (lg->started == lg->count)
        uv_timer_stop(timer);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    struct loadgen *lg = handle->data;
    report(lg);
    for (uint32_t i = 0; i < lg->started; i++)
        tl_tunnel_stop(lg->agents[i].tunnel);
    uv_close((uv_handle_t *)&lg->ramp_timer, NULL);
    uv_close((uv_handle_t *)&lg->report_timer, NULL);
    uv_close((uv_handle_t *)&lg->sigterm, NULL);
    uv_close((uv_handle_t *)&lg->sigint, NULL);
}

/* Each agent holds one socket; ask for all the descriptors allowed. */
static void raise_fd_limit(uint32_t count)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < (rlim_t)count + 64)
        fprintf(stderr, PROGRAM ": warning: %u agents but only %llu file descriptors\n", count,
                (unsigned long long)limit.rlim_cur);
}

static int load_agents(struct loadgen *lg, const char *dir, const char *connect)
{
    char host[256] = "";
    uint16_t port = 0;
    if (connect != NULL && (tl_addr_split(connect, host, &port) != 0 || port == 0)) {
        fprintf(stderr, PROGRAM ": bad --connect '%s' (want HOST:PORT)\n", connect);
        return TL_EXIT_USAGE;
    }
    for (uint32_t i = 0; i < lg->count; i++) {
        char path[TL_STATE_PATH_MAX];
        snprintf(path, sizeof path, "%s/a%05u", dir, i);
        tl_agent_state_t *state = &lg->agents[i].state;
        int rc = tl_state_load(path, state);
        if (rc != 0 || !state->enrolled) {
            fprintf(stderr, PROGRAM ": %s: %s\n", path,
                    rc != 0 ? tl_strerror(rc) : "not an enrolled agent");
            return TL_EXIT_FAILURE;
        }
        if (connect != NULL) {
            snprintf(state->relay_host, sizeof state->relay_host, "%s", host);
            state->relay_port = port;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *count_text = NULL, *connect = NULL, *ramp_text = "2000",
               *report_text = "100", *level_text = "error";
    int positional_count;
    tl_cli_option_t options[] = {{"agents", &dir, NULL},
                                 {"count", &count_text, NULL},
                                 {"connect", &connect, NULL},
                                 {"ramp", &ramp_text, NULL},
                                 {"report-ms", &report_text, NULL},
                                 {"log-level", &level_text, NULL},
                                 {0}};
    static const char usage[] =
        "run --agents DIR --count N [--connect HOST:PORT] [--ramp PER-SECOND] "
        "[--report-ms MS] [--log-level LEVEL]";
    if (argc < 2 || strcmp(argv[1], "run") != 0) {
        fprintf(stderr, "usage: " PROGRAM " %s\n", usage);
        return TL_EXIT_USAGE;
    }
    int status =
        tl_cli_parse(PROGRAM, "run", usage, argc, argv, 2, options, NULL, 0, &positional_count);
    if (status != 0)
        return status;
    uint64_t count = 0, ramp = 0, report_ms = 0;
    enum tl_log_level level;
    if (dir == NULL || count_text == NULL ||
        tl_cli_parse_uint(count_text, 1, MAX_AGENTS, &count) != 0 ||
        tl_cli_parse_uint(ramp_text, 1, 1000000, &ramp) != 0 ||
        tl_cli_parse_uint(report_text, 10, 60000, &report_ms) != 0 ||
        tl_log_parse_level(level_text, &level) != 0) {
        fprintf(stderr,
                "usage: " PROGRAM " %s\n(--count 1..%u, --ramp 1..1000000, --report-ms "
                "10..60000)\n",
                usage, MAX_AGENTS);
        return TL_EXIT_USAGE;
    }
    tl_log_set_level(level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit((uint32_t)count);

    struct loadgen lg = {
        .loop = uv_default_loop(), .count = (uint32_t)count, .ramp = (uint32_t)ramp};
    lg.agents = calloc(lg.count, sizeof *lg.agents);
    if (lg.agents == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return TL_EXIT_FAILURE;
    }
    if ((status = load_agents(&lg, dir, connect)) != 0) {
        free(lg.agents);
        return status;
    }
    lg.start_ms = uv_now(lg.loop);
    uv_timer_init(lg.loop, &lg.ramp_timer);
    lg.ramp_timer.data = &lg;
    uv_timer_start(&lg.ramp_timer, on_ramp, 0, 10);
    uv_timer_init(lg.loop, &lg.report_timer);
    lg.report_timer.data = &lg;
    uv_timer_start(&lg.report_timer, on_report, report_ms, report_ms);
    uv_signal_init(lg.loop, &lg.sigterm);
    lg.sigterm.data = &lg;
    uv_signal_start(&lg.sigterm, on_signal, SIGTERM);
    uv_signal_init(lg.loop, &lg.sigint);
    lg.sigint.data = &lg;
    uv_signal_start(&lg.sigint, on_signal, SIGINT);
    uv_run(lg.loop, UV_RUN_DEFAULT);
    uv_loop_close(lg.loop);
    free(lg.agents);
    return TL_EXIT_OK;
}
