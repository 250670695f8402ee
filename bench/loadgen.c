/*
 * tierline-loadgen: many agents in one process, for the idle-agent and
 * reconnect-storm benchmarks (bench/agents).
 *
 *   tierline-loadgen run --agents DIR --count N [--first I] [--connect HOST:PORT]
 *                        [--sources S] [--ramp PER-SECOND] [--report-ms MS]
 *                        [--duration SECONDS] [--log-level LEVEL]
 *   tierline-loadgen enroll --agents DIR --first I [--sources S]
 *                        [--parallel P] < ENROLLMENT-STRINGS
 *
 * run: DIR holds enrolled agent state directories named a00000, a00001, ...
 * Each of the N from aI on (--first, default 0) gets the agent's own tunnel (agent/tunnel.h): the
 * real protocol library, TLS 1.3 with the agent's enrolled key and the relay's pinned fingerprint,
 * heartbeats, and the agent's reconnect backoff with jitter. Sessions are refused, as by an agent
 * that has no consent module.
 * --connect replaces the relay address the agents enrolled with (the port
 * may change between runs). --ramp spreads the first connections (default
 * 2000 a second); reconnections follow the agents' own backoff. The process
 * stops by itself after --duration seconds (default 3600).
 *
 * One source address has about 28,000 ephemeral ports (net.ipv4.
 * ip_local_port_range) for connections to one relay port, so agent aI
 * connects from 127.0.0.(2 + I mod S); the default S gives each address at
 * most 16,000 agents of the first I + N (one address, 127.0.0.2, up to
 * 16,000). The relay must listen on 127.0.0.1 then. The descriptor limit is
 * raised for the count, its hard limit too when the process may (with
 * CAP_SYS_RESOURCE, up to /proc/sys/fs/nr_open); where it may not, several
 * processes with --first and the same --sources share the agents.
 *
 * enroll: enrolls one agent per enrollment string on stdin (from
 * `tierline-relay enroll-code --count`), into DIR/aI, DIR/aI+1, ...: a key
 * made as `tierline-agent enroll` makes it (agent/state.h), one ENROLL
 * exchange pinned to the relay's key, relay.json saved as the agent saves
 * it; P exchanges at a time (default 32), all in this process, exchange k
 * of them from 127.0.0.(2 + k mod S) (default S 16): the relay counts
 * enrollments under way against the address's failure budget (five a
 * minute, docs/protocol.md §7.2), so P/S stays below five. Stops at the
 * first failure, or after --timeout seconds (default 3600). Prints
 * "enrolled=N" and exits 0 when every one succeeded.
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
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "tl_version.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define PROGRAM "tierline-loadgen"
#define MAX_AGENTS 100000u
/* Agents per source address by default (about 28,000 ports are there). */
#define PER_SOURCE 16000u
#define MAX_SOURCES 250u

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
    struct sockaddr_in *sources; /* NULL: any */
    uint32_t source_count;
    uint32_t first, count, started, ramp;
    uint32_t connected;
    int stopping;
    uint64_t connects, disconnects;
    uint64_t start_ms;
    uv_timer_t ramp_timer, report_timer, duration_timer;
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
        options.source = lg->sources != NULL
                             ? (const struct sockaddr *)&lg
                                   ->sources[(lg->first + lg->started) % lg->source_count]
                             : NULL;
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

static void stop_all(struct loadgen *lg)
{
    if (lg->stopping)
        return;
    lg->stopping = 1;
    report(lg);
    for (uint32_t i = 0; i < lg->started; i++)
        tl_tunnel_stop(lg->agents[i].tunnel);
    uv_close((uv_handle_t *)&lg->ramp_timer, NULL);
    uv_close((uv_handle_t *)&lg->report_timer, NULL);
    uv_close((uv_handle_t *)&lg->duration_timer, NULL);
    uv_close((uv_handle_t *)&lg->sigterm, NULL);
    uv_close((uv_handle_t *)&lg->sigint, NULL);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    stop_all(handle->data);
}

static void on_duration(uv_timer_t *timer)
{
    fprintf(stderr, PROGRAM ": --duration is over; stopping\n");
    stop_all(timer->data);
}

/*
 * Each agent holds one socket: raise the soft limit to what count needs, and
 * the hard limit too when it is lower and the process may (up to
 * /proc/sys/fs/nr_open).
 */
static void raise_fd_limit(uint32_t count)
{
    unsigned long long got = tl_fs_raise_fd_limit((unsigned long long)count + 256);
    if (got < (unsigned long long)count + 256)
        fprintf(stderr, PROGRAM ": warning: %u agents but only %llu file descriptors\n", count,
                got);
}

/* 127.0.0.2 ... 127.0.0.(1 + count); count 0: none (connect from any address). */
static struct sockaddr_in *make_sources(uint32_t count)
{
    if (count == 0)
        return NULL;
    struct sockaddr_in *sources = calloc(count, sizeof *sources);
    for (uint32_t i = 0; sources != NULL && i < count; i++) {
        sources[i].sin_family = AF_INET;
        sources[i].sin_addr.s_addr = htonl(0x7f000002u + i);
    }
    return sources;
}

/* --sources: given, or enough addresses for count agents at PER_SOURCE each. */
static int parse_sources(const char *text, uint64_t count, uint64_t *sources)
{
    if (text == NULL) {
        *sources = (count + PER_SOURCE - 1) / PER_SOURCE;
        return 0;
    }
    return tl_cli_parse_uint(text, 0, MAX_SOURCES, sources);
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
        snprintf(path, sizeof path, "%s/a%05u", dir, lg->first + i);
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

/* ---- enroll ------------------------------------------------------------------ */

struct enrollee {
    struct enroller *en;
    tl_enrollment_t enrollment;
    tl_agent_state_t state;
    tl_tls_ctx_t *tls;
    uint32_t slot; /* which of the parallel exchanges: picks the source address */
    int answered, status;
    char device[TL_MSG_MAX_ID + 1];
};

struct enroller {
    uv_loop_t *loop;
    const char *dir;
    struct sockaddr_in *sources;
    uint32_t source_count;
    uint32_t next_index; /* the next state directory's number */
    uint32_t running, parallel, done, failed;
    unsigned char *busy; /* parallel slots */
    char software[64];
    tl_peer_config_t peer_config;
    uv_timer_t deadline;
};

static void enroll_next(struct enroller *en);

static void enrollee_ready(tl_peer_t *peer)
{
    struct enrollee *one = tl_peer_get_data(peer);
    tl_msg_t msg = {.type = TL_MSG_ENROLL};
    msg.u.enroll.code = tl_str_from(one->enrollment.code);
    msg.u.enroll.hostname = tl_str_from("loadgen");
    msg.u.enroll.os = tl_str_from("tierline-loadgen");
    if ((one->status = tl_peer_send(peer, &msg)) != 0)
        tl_peer_close(peer, 0, NULL);
}

static int enrollee_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    struct enrollee *one = tl_peer_get_data(peer);
    if (msg->type == TL_MSG_CONTROL)
        return 0; /* the relay's "enroll-required" notice */
    if (msg->type != TL_MSG_ENROLL_RESULT)
        return TL_EPROTO;
    one->answered = 1;
    one->status = msg->u.enroll_result.status == 0 ? 0 : TL_EPROTO;
    snprintf(one->device, sizeof one->device, "%.*s", (int)msg->u.enroll_result.device_id.len,
             (const char *)msg->u.enroll_result.device_id.ptr);
    tl_peer_close(peer, 0, NULL);
    return 0;
}

static void enrollee_closed(tl_peer_t *peer, int reason)
{
    struct enrollee *one = tl_peer_get_data(peer);
    struct enroller *en = one->en;
    int rc = one->answered ? one->status : (reason != 0 ? reason : TL_ECLOSED);
    if (rc == 0) {
        snprintf(one->state.relay_host, sizeof one->state.relay_host, "%s", one->enrollment.host);
        one->state.relay_port = one->enrollment.port;
        snprintf(one->state.relay_fingerprint, sizeof one->state.relay_fingerprint, "%s",
                 one->enrollment.fingerprint);
        snprintf(one->state.device, sizeof one->state.device, "%s", one->device);
        snprintf(one->state.catalogue_key, sizeof one->state.catalogue_key, "%s",
                 one->enrollment.catalogue_key);
        rc = tl_state_save(&one->state);
    }
    if (rc != 0) {
        fprintf(stderr, PROGRAM " enroll: %s: %s\n", one->state.dir, tl_strerror(rc));
        en->failed++;
    } else {
        en->done++;
    }
    tl_tls_ctx_free(one->tls);
    en->busy[one->slot] = 0;
    free(one);
    en->running--;
    enroll_next(en);
}

static const tl_peer_callbacks_t enrollee_callbacks = {
    .on_ready = enrollee_ready,
    .on_message = enrollee_message,
    .on_closed = enrollee_closed,
};

/* One enrollment string: a fresh key in the next state directory, and the exchange started. */
static int enroll_one(struct enroller *en, const char *line)
{
    struct enrollee *one = calloc(1, sizeof *one);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct sockaddr_storage relay;
    int rc = one == NULL ? TL_ENOMEM : tl_enrollment_parse(line, &one->enrollment);
    if (rc == 0) {
        one->en = en;
        rc =
            tl_format(one->state.dir, sizeof one->state.dir, "%s/a%05u", en->dir, en->next_index++);
    }
    if (rc == 0 && (rc = tl_state_prepare(one->state.dir)) == 0)
        rc = tl_state_identity(one->state.dir, 1, &key, &cert);
    if (rc == 0) {
        tl_tls_config_t tls = {
            .role = TL_TLS_CLIENT, .key = key, .cert = cert, .pin = one->enrollment.fingerprint};
        one->tls = tl_tls_ctx_new(&tls, &rc);
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    char relay_text[TL_ENROLL_HOST_MAX + 16];
    if (rc == 0)
        rc = tl_format(relay_text, sizeof relay_text,
                       strchr(one->enrollment.host, ':') ? "[%s]:%u" : "%s:%u",
                       one->enrollment.host, one->enrollment.port);
    if (rc == 0)
        rc = tl_addr_parse(relay_text, &relay);
    if (rc == 0) {
        tl_peer_config_t config = en->peer_config;
        if (en->sources != NULL)
            config.source =
                (const struct sockaddr *)&en->sources[en->next_index % en->source_count];
        if (tl_peer_connect(en->loop, one->tls, (const struct sockaddr *)&relay, &config,
                            &enrollee_callbacks, NULL, one, &rc) != NULL) {
            en->busy[one->slot] = 1;
            en->running++;
            return 0;
        }
    }
    fprintf(stderr, PROGRAM " enroll: %s: %s\n", one ? one->state.dir : "-", tl_strerror(rc));
    if (one != NULL)
        tl_tls_ctx_free(one->tls);
    free(one);
    return rc;
}

/* Starts exchanges until parallel are running or stdin is at its end. */
static void enroll_next(struct enroller *en)
{
    char line[TL_ENROLLMENT_MAX + 2];
    while (en->failed == 0 && en->running < en->parallel && fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            continue;
        if (enroll_one(en, line) != 0)
            en->failed++;
    }
    if (en->running == 0)
        uv_close((uv_handle_t *)&en->deadline, NULL);
}

static void on_enroll_deadline(uv_timer_t *timer)
{
    fprintf(stderr, PROGRAM " enroll: out of time\n");
    exit(TL_EXIT_FAILURE);
}

static int cmd_enroll(int argc, char **argv)
{
    const char *dir = NULL, *first_text = "0", *sources_text = "16", *parallel_text = "32",
               *timeout_text = "3600";
    int positional_count;
    tl_cli_option_t options[] = {
        {"agents", &dir, NULL},           {"first", &first_text, NULL},
        {"sources", &sources_text, NULL}, {"parallel", &parallel_text, NULL},
        {"timeout", &timeout_text, NULL}, {0}};
    static const char usage[] = "enroll --agents DIR [--first I] [--sources S] [--parallel P] "
                                "[--timeout SECONDS] < ENROLLMENT-STRINGS";
    int status =
        tl_cli_parse(PROGRAM, "enroll", usage, argc, argv, 2, options, NULL, 0, &positional_count);
    if (status != 0)
        return status;
    uint64_t first = 0, sources = 0, parallel = 0, timeout_s = 0;
    if (dir == NULL || tl_cli_parse_uint(first_text, 0, MAX_AGENTS - 1, &first) != 0 ||
        tl_cli_parse_uint(sources_text, 0, MAX_SOURCES, &sources) != 0 ||
        tl_cli_parse_uint(parallel_text, 1, 1024, &parallel) != 0 ||
        tl_cli_parse_uint(timeout_text, 1, 86400, &timeout_s) != 0) {
        fprintf(stderr,
                "usage: " PROGRAM " %s\n(--first 0..%u, --sources 0..%u, --parallel "
                "1..1024, --timeout 1..86400)\n",
                usage, MAX_AGENTS - 1, MAX_SOURCES);
        return TL_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit((uint32_t)parallel * 4);
    struct enroller en = {.loop = uv_default_loop(),
                          .dir = dir,
                          .source_count = (uint32_t)sources,
                          .next_index = (uint32_t)first,
                          .parallel = (uint32_t)parallel};
    en.sources = make_sources(en.source_count);
    en.busy = calloc(en.parallel, 1);
    if (en.busy == NULL || (en.source_count > 0 && en.sources == NULL)) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return TL_EXIT_FAILURE;
    }
    snprintf(en.software, sizeof en.software, "tierline-agent/%s", TL_VERSION_STRING);
    en.peer_config = (tl_peer_config_t){en.software, 0, 0, NULL, NULL};
    uv_timer_init(en.loop, &en.deadline);
    uv_timer_start(&en.deadline, on_enroll_deadline, timeout_s * 1000, 0);
    enroll_next(&en);
    uv_run(en.loop, UV_RUN_DEFAULT);
    uv_loop_close(en.loop);
    free(en.sources);
    free(en.busy);
    printf("enrolled=%u\n", en.done);
    return en.failed == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

/* ---- run ---------------------------------------------------------------------- */

static int cmd_run(int argc, char **argv)
{
    const char *dir = NULL, *count_text = NULL, *connect = NULL, *ramp_text = "2000",
               *report_text = "100", *level_text = "error", *sources_text = NULL,
               *duration_text = "3600", *first_text = "0";
    int positional_count;
    tl_cli_option_t options[] = {{"agents", &dir, NULL},
                                 {"count", &count_text, NULL},
                                 {"first", &first_text, NULL},
                                 {"connect", &connect, NULL},
                                 {"sources", &sources_text, NULL},
                                 {"ramp", &ramp_text, NULL},
                                 {"report-ms", &report_text, NULL},
                                 {"duration", &duration_text, NULL},
                                 {"log-level", &level_text, NULL},
                                 {0}};
    static const char usage[] =
        "run --agents DIR --count N [--first I] [--connect HOST:PORT] [--sources S] "
        "[--ramp PER-SECOND] "
        "[--report-ms MS] [--duration SECONDS] [--log-level LEVEL]";
    int status =
        tl_cli_parse(PROGRAM, "run", usage, argc, argv, 2, options, NULL, 0, &positional_count);
    if (status != 0)
        return status;
    uint64_t count = 0, first = 0, ramp = 0, report_ms = 0, sources = 0, duration_s = 0;
    enum tl_log_level level;
    if (dir == NULL || count_text == NULL ||
        tl_cli_parse_uint(count_text, 1, MAX_AGENTS, &count) != 0 ||
        tl_cli_parse_uint(first_text, 0, MAX_AGENTS - count, &first) != 0 ||
        parse_sources(sources_text, first + count, &sources) != 0 ||
        tl_cli_parse_uint(ramp_text, 1, 1000000, &ramp) != 0 ||
        tl_cli_parse_uint(report_text, 10, 60000, &report_ms) != 0 ||
        tl_cli_parse_uint(duration_text, 1, 86400, &duration_s) != 0 ||
        tl_log_parse_level(level_text, &level) != 0) {
        fprintf(stderr,
                "usage: " PROGRAM " %s\n(--count 1..%u, --first + --count at most %u, --sources "
                "0..%u, --ramp 1..1000000, "
                "--report-ms 10..60000, --duration 1..86400)\n",
                usage, MAX_AGENTS, MAX_AGENTS, MAX_SOURCES);
        return TL_EXIT_USAGE;
    }
    tl_log_set_level(level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit((uint32_t)count);

    struct loadgen lg = {.loop = uv_default_loop(),
                         .first = (uint32_t)first,
                         .count = (uint32_t)count,
                         .ramp = (uint32_t)ramp,
                         .source_count = (uint32_t)sources};
    lg.agents = calloc(lg.count, sizeof *lg.agents);
    lg.sources = make_sources(lg.source_count);
    if (lg.agents == NULL || (lg.source_count > 0 && lg.sources == NULL)) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        free(lg.agents);
        free(lg.sources);
        return TL_EXIT_FAILURE;
    }
    if ((status = load_agents(&lg, dir, connect)) != 0) {
        free(lg.agents);
        free(lg.sources);
        return status;
    }
    lg.start_ms = uv_now(lg.loop);
    uv_timer_init(lg.loop, &lg.ramp_timer);
    lg.ramp_timer.data = &lg;
    uv_timer_start(&lg.ramp_timer, on_ramp, 0, 10);
    uv_timer_init(lg.loop, &lg.report_timer);
    lg.report_timer.data = &lg;
    uv_timer_start(&lg.report_timer, on_report, report_ms, report_ms);
    uv_timer_init(lg.loop, &lg.duration_timer);
    lg.duration_timer.data = &lg;
    uv_timer_start(&lg.duration_timer, on_duration, duration_s * 1000, 0);
    uv_signal_init(lg.loop, &lg.sigterm);
    lg.sigterm.data = &lg;
    uv_signal_start(&lg.sigterm, on_signal, SIGTERM);
    uv_signal_init(lg.loop, &lg.sigint);
    lg.sigint.data = &lg;
    uv_signal_start(&lg.sigint, on_signal, SIGINT);
    uv_run(lg.loop, UV_RUN_DEFAULT);
    uv_loop_close(lg.loop);
    free(lg.agents);
    free(lg.sources);
    return TL_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "enroll") == 0)
        return cmd_enroll(argc, argv);
    fprintf(stderr, "usage: " PROGRAM " run --agents DIR --count N [OPTIONS]\n"
                    "       " PROGRAM " enroll --agents DIR [OPTIONS] < ENROLLMENT-STRINGS\n");
    return TL_EXIT_USAGE;
}
