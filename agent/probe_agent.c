/*
 * Probe "agent": this program's version, its state directory and
 * enrollment (agent/state.h), and whether the agent runs: something listens
 * on STATE/agent.sock. When it does, the process that listens is found with
 * SO_PEERCRED, its uptime from its start time in /proc/PID/stat, and its
 * link to the relay by asking it for its status (agent/control.h).
 */
#include "agent/diag.h"

#include "agent/control.h"
#include "agent/state.h"
#include "proto/err.h"
#include "tl_version.h"
#include "proto/vocab.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STATUS_TIMEOUT_MS 2000

int tl__probe_agent_parse_stat(const char *text, long long *start_ticks)
{
    /* "PID (COMM) STATE PPID ...": COMM may hold anything, ')' included: the last one ends it. */
    const char *comm_end = text ? strrchr(text, ')') : NULL;
    if (!comm_end)
        return TL_EINVAL;
    const char *p = comm_end + 1;
    /* Field 22 is the start time; the state is field 3, the first after COMM. */
    for (int field = 3; field < 22; field++) {
        p += strspn(p, " ");
        if (*p == '\0')
            return TL_EINVAL;
        p += strcspn(p, " ");
    }
    p += strspn(p, " ");
    if (*p < '0' || *p > '9')
        return TL_EINVAL;
    char *end;
    unsigned long long value = strtoull(p, &end, 10);
    if ((*end != ' ' && *end != '\n' && *end != '\0') || value > LLONG_MAX)
        return TL_EINVAL;
    *start_ticks = (long long)value;
    return 0;
}

/* How long process pid has run, from its start time and the time since boot. */
static int process_uptime(pid_t pid, long long *seconds)
{
    char path[64], *text = NULL, line[128];
    long long start_ticks;
    double since_boot;
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int rc = tl__diag_read_file(path, 4096, &text, NULL);
    if (rc == 0)
        rc = tl__probe_agent_parse_stat(text, &start_ticks);
    free(text);
    if (rc < 0)
        return rc;
    if (ticks_per_second <= 0 || tl__diag_read_line("/proc/uptime", line, sizeof line) < 0 ||
        sscanf(line, "%lf", &since_boot) != 1)
        return TL_EIO;
    long long up = (long long)since_boot - start_ticks / ticks_per_second;
    *seconds = up < 0 ? 0 : up;
    return 0;
}

static int put_enrollment(json_t *section, const char *dir)
{
    int rc;
    tl_agent_state_t state;
    int load = tl_state_load(dir, &state);
    if (load < 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot read %s: %s", TL_STATE_RELAY, tl_strerror(load));
        return tl__diag_put_text(section, "state_error", why);
    }
    if ((rc = tl__diag_put_bool(section, "enrolled", state.enrolled != 0)) < 0 || !state.enrolled)
        return rc;
    char relay[300];
    snprintf(relay, sizeof relay, strchr(state.relay_host, ':') ? "[%s]:%u" : "%s:%u",
             state.relay_host, state.relay_port);
    if ((rc = tl__diag_put_text(section, "device", state.device)) < 0 ||
        (rc = tl__diag_put_text(section, "relay", relay)) < 0)
        return rc;
    return 0;
}

/* The running agent: who listens on the socket, since when, and its link to the relay. */
static int put_running(const tl_diag_t *diag, json_t *section, const char *socket_path)
{
    int rc;
    int fd = tl_control_connect(socket_path);
    if (fd < 0) {
        if ((rc = tl__diag_put_bool(section, "running", false)) < 0)
            return rc;
        return tl__diag_put_text(section, "status", "not running");
    }
    struct ucred peer;
    socklen_t peer_len = sizeof peer;
    bool have_peer = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) == 0 &&
                     peer_len == sizeof peer && peer.pid > 0;
    close(fd);
    if ((rc = tl__diag_put_bool(section, "running", true)) < 0 ||
        (rc = tl__diag_put_text(section, "status", "running")) < 0)
        return rc;
    long long uptime;
    if (have_peer) {
        char user[64];
        tl__diag_user_name(peer.uid, user, sizeof user);
        if ((rc = tl__diag_put_int(section, "pid", (long long)peer.pid)) < 0 ||
            (rc = tl__diag_put_text(section, "user", user)) < 0)
            return rc;
        if (process_uptime(peer.pid, &uptime) == 0) {
            char started[32];
            tl__diag_format_time((long long)time(NULL) - uptime, started);
            if ((rc = tl__diag_put_int(section, "uptime_seconds", uptime)) < 0 ||
                (rc = tl__diag_put_text(section, "started_at", started)) < 0)
                return rc;
        }
    }
    json_t *call = json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_STATUS));
    json_t *answer = NULL;
    if (!call)
        return TL_ENOMEM;
    int called = tl_control_call(socket_path, call,
                                 tl__diag_command_budget(diag, STATUS_TIMEOUT_MS), &answer);
    json_decref(call);
    const char *link_state = json_string_value(json_object_get(answer, "link"));
    if (called == 0 && link_state)
        rc = tl__diag_put_text(section, "link", link_state);
    else if (called < 0)
        rc = tl__diag_put_text(section, "link_error", tl_strerror(called));
    json_decref(answer);
    return rc;
}

int tl__probe_agent_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char dir[TL_STATE_PATH_MAX], socket_path[TL_STATE_FILE_MAX];
    if ((rc = tl__diag_put_text(section, "version", TL_VERSION_STRING)) < 0)
        return rc;
    if (tl_state_dir(tl_diag_state_dir(diag), dir, sizeof dir) < 0) {
        if ((rc = tl__diag_put_text(section, "state_error",
                                    "no state directory (set TIERLINE_AGENT_STATE or HOME)")) < 0 ||
            (rc = tl__diag_put_bool(section, "running", false)) < 0)
            return rc;
        return tl__diag_put_text(section, "status", "not running");
    }
    if ((rc = tl__diag_put_text(section, "state_dir", dir)) < 0 ||
        (rc = put_enrollment(section, dir)) < 0)
        return rc;
    if (tl_state_path(dir, TL_STATE_SOCKET, socket_path, sizeof socket_path) < 0) {
        if ((rc = tl__diag_put_bool(section, "running", false)) < 0)
            return rc;
        return tl__diag_put_text(section, "status", "not running");
    }
    return put_running(diag, section, socket_path);
}
