/*
 * Diagnostics runner, report and text output (docs/diagnostics.md).
 *
 * Isolation is by process: each probe runs in a forked child that is the
 * leader of its own process group, so a probe that hangs (a dead NFS mount
 * in statvfs, a stuck NSS lookup, an external command) is killed together
 * with anything it started, and a probe that crashes takes only its own
 * section with it. The parent never blocks: it polls the children's pipes
 * against the nearest deadline and reaps with WNOHANG.
 */
#include "agent/diag.h"

#include "agent/redact.h"
#include "proto/array.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/text.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The built-in probes, in report order; docs/diagnostics.md describes each. */
static const struct tl_diag_probe builtin_probes[] = {
    {"system", "Host name, OS release, kernel, architecture, uptime and load", tl__probe_system_run,
     3000},
    {"cpu", "Processor model, count and a usage sample", tl__probe_cpu_run, 3000},
    {"memory", "Memory and swap totals and availability", tl__probe_memory_run, 2000},
    {"disks", "Space and inodes per mounted file system", tl__probe_disks_run, 5000},
    {"network", "Interfaces, addresses, counters, default routes, DNS and relay reachability",
     tl__probe_network_run, 10000},
    {"processes", "Top processes by CPU and by resident memory", tl__probe_processes_run, 5000},
    {"services", "Failed systemd units", tl__probe_services_run, 6000},
    {"sockets", "Listening TCP and UDP sockets and their processes", tl__probe_sockets_run, 5000},
    {"time", "Clock synchronisation state", tl__probe_time_run, 5000},
    {"logs", "Recent system log lines", tl__probe_logs_run, 6000},
    {"printers", "Print queues, their state, the default printer and jobs waiting",
     tl__probe_printers_run, 8000},
    {"wifi", "Wi-Fi link, network name and signal", tl__probe_wifi_run, 6000},
    {"packages", "Installed packages and pending updates, from the local package cache",
     tl__probe_packages_run, 12000},
    {"users", "Users logged in and their sessions", tl__probe_users_run, 2000},
    {"internet", "Name lookups and connections beyond the relay", tl__probe_internet_run, 8000},
    {"kernel_messages", "Recent kernel errors and warnings", tl__probe_kernel_messages_run, 5000},
    {"agent", "This agent: version, enrollment, and whether it runs", tl__probe_agent_run, 4000},
    {"hardware", "Machine vendor, model and serial number", tl__probe_hardware_run, 2000},
};

struct tl_diag {
    const struct tl_diag_probe *probes;
    size_t probe_count;
    int timeout_override_ms;
    size_t max_section_bytes;
    bool relay_set;
    char relay_host[256];
    char relay_port[6];
    /* The internet probe's checks; "off" or why the environment's value was refused in *_why. */
    bool lookup_set;
    char lookup_name[256];
    char lookup_why[160];
    bool connect_set;
    char connect_host[256];
    char connect_port[6];
    char connect_why[160];
    /* Probes left out: ",name,name," (so ",name," finds one); skip_why: a refused list. */
    char skip[260];
    char skip_why[96];
    char *state_dir;
    long long deadline_ms; /* inside a probe's child: when the parent kills it */
};

const struct tl_diag_probe *tl_diag_probes(size_t *count)
{
    *count = sizeof builtin_probes / sizeof builtin_probes[0];
    return builtin_probes;
}

/* The environment's value for a check, else its default; a bad value is kept as the reason. */
static void internet_from_environment(tl_diag_t *diag)
{
    const char *lookup = getenv(TL_DIAG_LOOKUP_ENV);
    const char *connect = getenv(TL_DIAG_CONNECT_ENV);
    if (tl_diag_set_lookup(diag, lookup && lookup[0] ? lookup : TL_DIAG_DEFAULT_LOOKUP) < 0)
        snprintf(diag->lookup_why, sizeof diag->lookup_why,
                 "%s is not a host name (" TL_DIAG_LOOKUP_ENV ")", lookup);
    if (tl_diag_set_connect(diag, connect && connect[0] ? connect : TL_DIAG_DEFAULT_CONNECT) < 0)
        snprintf(diag->connect_why, sizeof diag->connect_why,
                 "%s is not HOST:PORT (" TL_DIAG_CONNECT_ENV ")", connect);
    const char *skip = getenv(TL_DIAG_SKIP_ENV);
    if (skip && tl_diag_set_skip(diag, skip) < 0)
        snprintf(diag->skip_why, sizeof diag->skip_why,
                 TL_DIAG_SKIP_ENV " is not a list of probe names: every probe runs");
}

tl_diag_t *tl_diag_new(void)
{
    tl_diag_t *diag = calloc(1, sizeof *diag);
    if (!diag)
        return NULL;
    diag->probes = builtin_probes;
    diag->probe_count = sizeof builtin_probes / sizeof builtin_probes[0];
    diag->max_section_bytes = TL_DIAG_MAX_SECTION_BYTES;
    internet_from_environment(diag);
    return diag;
}

void tl_diag_free(tl_diag_t *diag)
{
    if (!diag)
        return;
    free(diag->state_dir);
    free(diag);
}

int tl_diag_set_probes(tl_diag_t *diag, const struct tl_diag_probe *probes, size_t count)
{
    if (!diag || !probes || count == 0 || count > TL_DIAG_MAX_PROBES)
        return TL_EINVAL;
    for (size_t i = 0; i < count; i++) {
        const struct tl_diag_probe *p = &probes[i];
        if (!p->name || !p->name[0] || !p->run_fn || p->timeout_ms < 1 ||
            p->timeout_ms > TL_DIAG_MAX_TIMEOUT_MS)
            return TL_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(probes[j].name, p->name) == 0)
                return TL_EINVAL;
    }
    diag->probes = probes;
    diag->probe_count = count;
    return 0;
}

int tl_diag_set_timeout_ms(tl_diag_t *diag, int timeout_ms)
{
    if (!diag || timeout_ms < 0 || timeout_ms > TL_DIAG_MAX_TIMEOUT_MS)
        return TL_EINVAL;
    diag->timeout_override_ms = timeout_ms;
    return 0;
}

static bool valid_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == ':';
}

/* "HOST:PORT" or "[IPV6]:PORT" into host (at most 255 bytes) and port (1..65535, as text). */
static int split_host_port(const char *host_port, char host_out[256], char port_out[6])
{
    const char *host = host_port, *host_end, *port;
    if (host_port[0] == '[') {
        host = host_port + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return TL_EINVAL;
        port = host_end + 2;
    } else {
        host_end = strrchr(host_port, ':');
        if (!host_end || memchr(host_port, ':', (size_t)(host_end - host_port)))
            return TL_EINVAL; /* a bare IPv6 address needs brackets */
        port = host_end + 1;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= 256)
        return TL_EINVAL;
    for (size_t i = 0; i < host_len; i++)
        if (!valid_host_char(host[i]) || (host[i] == ':' && host_port[0] != '['))
            return TL_EINVAL;
    size_t port_len = strlen(port);
    if (port_len == 0 || port_len > 5)
        return TL_EINVAL;
    long value = 0;
    for (size_t i = 0; i < port_len; i++) {
        if (port[i] < '0' || port[i] > '9')
            return TL_EINVAL;
        value = value * 10 + (port[i] - '0');
    }
    if (value < 1 || value > 65535)
        return TL_EINVAL;
    memcpy(host_out, host, host_len);
    host_out[host_len] = '\0';
    snprintf(port_out, 6, "%ld", value);
    return 0;
}

int tl_diag_set_relay(tl_diag_t *diag, const char *host_port)
{
    if (!diag)
        return TL_EINVAL;
    if (!host_port) {
        diag->relay_set = false;
        return 0;
    }
    if (split_host_port(host_port, diag->relay_host, diag->relay_port) < 0)
        return TL_EINVAL;
    diag->relay_set = true;
    return 0;
}

int tl_diag_set_lookup(tl_diag_t *diag, const char *name)
{
    if (!diag || !name)
        return TL_EINVAL;
    size_t len = strlen(name);
    if (strcmp(name, "off") == 0) {
        diag->lookup_set = false;
        snprintf(diag->lookup_why, sizeof diag->lookup_why, "off");
        return 0;
    }
    if (len == 0 || len >= sizeof diag->lookup_name || name[0] == '-')
        return TL_EINVAL;
    for (size_t i = 0; i < len; i++)
        if (!valid_host_char(name[i]))
            return TL_EINVAL;
    memcpy(diag->lookup_name, name, len + 1);
    diag->lookup_set = true;
    diag->lookup_why[0] = '\0';
    return 0;
}

int tl_diag_set_connect(tl_diag_t *diag, const char *host_port)
{
    if (!diag || !host_port)
        return TL_EINVAL;
    if (strcmp(host_port, "off") == 0) {
        diag->connect_set = false;
        snprintf(diag->connect_why, sizeof diag->connect_why, "off");
        return 0;
    }
    char host[256], port[6];
    if (split_host_port(host_port, host, port) < 0)
        return TL_EINVAL;
    memcpy(diag->connect_host, host, sizeof host);
    memcpy(diag->connect_port, port, sizeof port);
    diag->connect_set = true;
    diag->connect_why[0] = '\0';
    return 0;
}

static bool builtin_probe(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof builtin_probes / sizeof builtin_probes[0]; i++)
        if (strlen(builtin_probes[i].name) == len && memcmp(builtin_probes[i].name, name, len) == 0)
            return true;
    return false;
}

int tl_diag_set_skip(tl_diag_t *diag, const char *names)
{
    if (!diag || !names)
        return TL_EINVAL;
    char list[sizeof diag->skip] = ",";
    size_t used = 1;
    diag->skip[0] = '\0';
    diag->skip_why[0] = '\0';
    for (const char *p = names; *p;) {
        p += strspn(p, ", ");
        size_t len = strcspn(p, ", ");
        if (len == 0)
            break;
        if (!builtin_probe(p, len) || used + len + 2 > sizeof list)
            return TL_EINVAL;
        memcpy(list + used, p, len);
        used += len;
        list[used++] = ',';
        list[used] = '\0';
        p += len;
    }
    if (used > 1)
        memcpy(diag->skip, list, used + 1);
    return 0;
}

const char *tl_diag_skip_why(const tl_diag_t *diag)
{
    return diag && diag->skip_why[0] ? diag->skip_why : NULL;
}

static bool skipped(const tl_diag_t *diag, const char *name)
{
    char key[72];
    if (!diag->skip[0] || tl_format(key, sizeof key, ",%s,", name) < 0)
        return false;
    return strstr(diag->skip, key) != NULL;
}

int tl_diag_set_state_dir(tl_diag_t *diag, const char *dir)
{
    if (!diag || (dir && !dir[0]))
        return TL_EINVAL;
    char *copy = dir ? strdup(dir) : NULL;
    if (dir && !copy)
        return TL_ENOMEM;
    free(diag->state_dir);
    diag->state_dir = copy;
    return 0;
}

bool tl_diag_lookup(const tl_diag_t *diag, const char **name, const char **why)
{
    *name = diag->lookup_set ? diag->lookup_name : NULL;
    *why = diag->lookup_set ? NULL : diag->lookup_why;
    return diag->lookup_set;
}

bool tl_diag_connect(const tl_diag_t *diag, const char **host, const char **port, const char **why)
{
    *host = diag->connect_set ? diag->connect_host : NULL;
    *port = diag->connect_set ? diag->connect_port : NULL;
    *why = diag->connect_set ? NULL : diag->connect_why;
    return diag->connect_set;
}

const char *tl_diag_state_dir(const tl_diag_t *diag)
{
    return diag->state_dir;
}

int tl_diag_set_max_section_bytes(tl_diag_t *diag, size_t max_bytes)
{
    if (!diag || max_bytes < 64 || max_bytes > 64 * 1024 * 1024)
        return TL_EINVAL;
    diag->max_section_bytes = max_bytes;
    return 0;
}

bool tl_diag_relay(const tl_diag_t *diag, const char **host, const char **port)
{
    if (!diag->relay_set)
        return false;
    *host = diag->relay_host;
    *port = diag->relay_port;
    return true;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tl_diag_time_left_ms(const tl_diag_t *diag)
{
    long long left = diag->deadline_ms - now_ms();
    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- The probe's side: runs in the child ---------------------------------------------- */

/* Redacts every string in a section: the one gate free text passes before it leaves. */
static int redact_strings(json_t *value)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach(value, key, member) {
            int rc = redact_strings(member);
            if (rc < 0)
                return rc;
        }
    } else if (json_is_array(value)) {
        size_t index;
        json_t *member;
        json_array_foreach(value, index, member) {
            int rc = redact_strings(member);
            if (rc < 0)
                return rc;
        }
    } else if (json_is_string(value)) {
        size_t count = 0, len = 0;
        char *redacted =
            tl_redact_bytes(json_string_value(value), json_string_length(value), &len, &count);
        if (!redacted)
            return TL_ENOMEM;
        int rc = 0;
        if (count > 0 && json_string_setn(value, redacted, len) != 0) {
            json_t *clean = tl__diag_text(redacted, len, len);
            rc = clean && json_string_setn(value, json_string_value(clean),
                                           json_string_length(clean)) == 0
                     ? 0
                     : TL_ENOMEM;
            json_decref(clean);
        }
        free(redacted);
        return rc;
    }
    return 0;
}

static json_t *error_section(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *error_section(const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    tl_format_v(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *section = json_object();
    json_t *text = tl__diag_text(message, strlen(message), sizeof message);
    if (!section || !text || json_object_set_new(section, "error", text) != 0) {
        json_decref(section);
        return NULL;
    }
    return section;
}

/* The serialised section the child writes: its data, or {"error": ...}. */
static char *finish_section(const tl_diag_t *diag, json_t *section, int rc)
{
    char *dump = NULL;
    json_t *error = NULL;
    if (rc < 0) {
        const char *message = json_string_value(json_object_get(section, "error"));
        error = error_section("%s", message ? message : tl_strerror(rc));
        section = error;
    }
    if (!section || redact_strings(section) < 0)
        goto out;
    dump = json_dumps(section, JSON_COMPACT);
    if (dump && strlen(dump) > diag->max_section_bytes) {
        size_t size = strlen(dump);
        free(dump);
        dump = NULL;
        json_decref(error);
        error =
            error_section("section too large: %zu bytes, limit %zu", size, diag->max_section_bytes);
        if (error)
            dump = json_dumps(error, JSON_COMPACT);
    }
out:
    json_decref(error);
    return dump;
}

static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Never returns: the child ends with _exit so it runs none of the parent's atexit handlers. */
static void run_child(tl_diag_t *diag, const struct tl_diag_probe *probe, int out_fd,
                      long long deadline)
{
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM};
    setpgid(0, 0);
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        signal(reset[i], SIG_DFL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    /* The section travels on stdout, so a stray printf in a probe spoils only its own section. */
    if (dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(1);
    if (out_fd != STDOUT_FILENO)
        close(out_fd);
    diag->deadline_ms = deadline;

    json_t *section = json_object();
    int rc = section ? probe->run_fn(diag, section) : TL_ENOMEM;
    char *text = finish_section(diag, section, rc);
    fflush(stdout);
    bool ok = text && write_all(STDOUT_FILENO, text, strlen(text));
    _exit(ok ? 0 : 1);
}

/* ---- The parent's side ------------------------------------------------------------------ */

enum slot_state { SLOT_RUNNING, SLOT_EXITING, SLOT_KILLED, SLOT_DONE };

struct slot {
    const struct tl_diag_probe *probe;
    int timeout_ms;
    enum slot_state state;
    pid_t pid;
    int fd;
    long long deadline_ms;
    long long reap_deadline_ms;
    char *output;
    size_t output_len;
    bool exited; /* reaped while its pipe was still open (a leftover held it) */
    bool reaped;
    int wait_status;
    json_t *section; /* the finished section: data or {"error": ...} */
};

static void set_error(struct slot *slot, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct slot *slot, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    tl_format_v(message, sizeof message, fmt, ap);
    va_end(ap);
    json_decref(slot->section);
    slot->section = error_section("%s", message);
}

static void start_probe(tl_diag_t *diag, struct slot *slots, size_t index, long long now)
{
    struct slot *slot = &slots[index];
    int fds[2];
    slot->deadline_ms = now + slot->timeout_ms;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        set_error(slot, "could not start probe: %s", strerror(errno));
        slot->state = SLOT_DONE;
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        set_error(slot, "could not start probe: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        slot->state = SLOT_DONE;
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        for (size_t i = 0; i < index; i++)
            if (slots[i].fd >= 0)
                close(slots[i].fd);
        run_child(diag, slot->probe, fds[1], slot->deadline_ms);
    }
    setpgid(pid, pid); /* also done by the child; whichever runs first wins the race */
    close(fds[1]);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    slot->pid = pid;
    slot->fd = fds[0];
    slot->state = SLOT_RUNNING;
}

static void close_fd(struct slot *slot)
{
    if (slot->fd >= 0) {
        close(slot->fd);
        slot->fd = -1;
    }
}

/*
 * Reaps the child if it has exited. Before reaping, anything it left behind
 * in its process group is killed: while the exited leader is unreaped its pid
 * (and so the group id) cannot be reused, so the signal cannot hit a stranger.
 */
static bool try_reap(struct slot *slot)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc;
    do
        rc = waitid(P_PID, (id_t)slot->pid, &info, WEXITED | WNOHANG | WNOWAIT);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        slot->reaped = false; /* someone else reaped it (ECHILD): status unknown */
        return true;
    }
    if (info.si_pid == 0)
        return false;
    kill(-slot->pid, SIGKILL);
    int status = 0;
    pid_t pid;
    do
        pid = waitpid(slot->pid, &status, 0);
    while (pid < 0 && errno == EINTR);
    slot->reaped = pid == slot->pid;
    slot->wait_status = status;
    return true;
}

static void kill_probe(struct slot *slot, long long now)
{
    kill(-slot->pid, SIGKILL);
    kill(slot->pid, SIGKILL);
    close_fd(slot);
    slot->state = SLOT_KILLED;
    slot->reap_deadline_ms = now + 2000;
}

/* The child has exited: turn its status and output into the section. */
static void finish_probe(struct slot *slot)
{
    slot->state = SLOT_DONE;
    if (slot->reaped && WIFSIGNALED(slot->wait_status)) {
        int sig = WTERMSIG(slot->wait_status);
        set_error(slot, "probe crashed with signal %d (%s)", sig, strsignal(sig));
        return;
    }
    if (slot->reaped && WIFEXITED(slot->wait_status) && WEXITSTATUS(slot->wait_status) != 0) {
        set_error(slot, "probe exited with status %d", WEXITSTATUS(slot->wait_status));
        return;
    }
    json_error_t error;
    json_t *value = json_loadb(slot->output ? slot->output : "", slot->output_len,
                               JSON_REJECT_DUPLICATES, &error);
    if (!value) {
        set_error(slot, "probe wrote invalid JSON: %s at byte %d", error.text, error.position);
        return;
    }
    if (!json_is_object(value)) {
        json_decref(value);
        set_error(slot, "probe output is not a JSON object");
        return;
    }
    json_decref(slot->section);
    slot->section = value;
}

/* Drains what the child has written so far; at the end of the pipe, waits for its exit. */
static void read_probe(struct slot *slot, size_t max_bytes, long long now)
{
    for (;;) {
        if (!slot->output) {
            slot->output = malloc(max_bytes + 1);
            if (!slot->output) {
                set_error(slot, "out of memory reading probe output");
                kill_probe(slot, now);
                return;
            }
        }
        size_t room = max_bytes + 1 - slot->output_len;
        ssize_t n = read(slot->fd, slot->output + slot->output_len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* nothing more for now */
        if (n <= 0) {
            close_fd(slot);
            slot->state = SLOT_EXITING;
            if (slot->exited || try_reap(slot))
                finish_probe(slot);
            return;
        }
        slot->output_len += (size_t)n;
        if (slot->output_len > max_bytes) {
            set_error(slot, "probe output exceeded %zu bytes", max_bytes);
            kill_probe(slot, now);
            return;
        }
    }
}

static void collect(tl_diag_t *diag, struct slot *slots, size_t count)
{
    for (;;) {
        long long now = now_ms();
        long long wake = now + 1000;
        struct pollfd fds[TL_DIAG_MAX_PROBES];
        size_t owners[TL_DIAG_MAX_PROBES];
        nfds_t nfds = 0;
        bool active = false;
        for (size_t i = 0; i < count; i++) {
            struct slot *slot = &slots[i];
            if ((slot->state == SLOT_RUNNING || slot->state == SLOT_EXITING) &&
                now >= slot->deadline_ms) {
                set_error(slot, "timed out after %d ms", slot->timeout_ms);
                kill_probe(slot, now);
            }
            if (slot->state == SLOT_EXITING && try_reap(slot))
                finish_probe(slot);
            /*
             * A probe that exits while something it started still holds its
             * pipe: reaping it kills the group, and then the pipe ends.
             */
            if (slot->state == SLOT_RUNNING && !slot->exited && try_reap(slot))
                slot->exited = true;
            if (slot->state == SLOT_KILLED && try_reap(slot))
                slot->state = SLOT_DONE;
            if (slot->state == SLOT_KILLED && now >= slot->reap_deadline_ms) {
                tl_log_warn("diagnostics probe not reaped probe=%s pid=%ld", slot->probe->name,
                            (long)slot->pid);
                slot->state = SLOT_DONE;
            }
            switch (slot->state) {
            case SLOT_RUNNING:
                fds[nfds].fd = slot->fd;
                fds[nfds].events = POLLIN;
                fds[nfds].revents = 0;
                owners[nfds++] = i;
                if (slot->deadline_ms < wake)
                    wake = slot->deadline_ms;
                if (!slot->exited && now + 50 < wake)
                    wake = now + 50;
                active = true;
                break;
            case SLOT_EXITING:
            case SLOT_KILLED:
                /* Exit is not on any descriptor we poll; look again shortly. */
                if (now + 2 < wake)
                    wake = now + 2;
                active = true;
                break;
            case SLOT_DONE:
                break;
            }
        }
        if (!active)
            break;
        long long wait = wake - now;
        int n = poll(fds, nfds, wait < 0 ? 0 : (int)wait);
        if (n < 0 && errno != EINTR) {
            tl_log_error("diagnostics poll failed reason=%s", strerror(errno));
            for (size_t i = 0; i < count; i++) {
                if (slots[i].state == SLOT_RUNNING || slots[i].state == SLOT_EXITING) {
                    set_error(&slots[i], "collection failed: %s", strerror(errno));
                    kill_probe(&slots[i], now);
                }
            }
            continue;
        }
        for (nfds_t k = 0; n > 0 && k < nfds; k++)
            if (fds[k].revents)
                read_probe(&slots[owners[k]], diag->max_section_bytes, now_ms());
    }
}

static int build_report(const struct slot *slots, size_t count, time_t collected_at,
                        json_t **report)
{
    int rc = TL_ENOMEM;
    json_t *root = json_object();
    json_t *sections = json_object();
    char when[32], host[256] = "";
    tl__diag_format_time((long long)collected_at, when);
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    if (!root || !sections)
        goto out;
    if (json_object_set_new(root, "schema", json_integer(TL_DIAG_SCHEMA)) != 0 ||
        json_object_set_new(root, "collected_at", json_string(when)) != 0 ||
        tl__diag_put_text(root, "host", host) != 0)
        goto out;
    for (size_t i = 0; i < count; i++) {
        json_t *section = slots[i].section;
        if (!section)
            section = error_section("probe produced no section");
        else
            json_incref(section);
        if (!section || json_object_set_new(sections, slots[i].probe->name, section) != 0)
            goto out;
    }
    if (json_object_set(root, "sections", sections) != 0)
        goto out;
    *report = root;
    root = NULL;
    rc = 0;
out:
    json_decref(sections);
    json_decref(root);
    return rc;
}

int tl_diag_run(tl_diag_t *diag, json_t **report)
{
    if (!diag || !report)
        return TL_EINVAL;
    *report = NULL;
    int rc = TL_ENOMEM;
    size_t count = diag->probe_count;
    struct slot *slots = calloc(count, sizeof *slots);
    if (!slots)
        goto out;
    time_t collected_at = time(NULL);
    /* Unflushed stdio would otherwise be written once more by every child. */
    fflush(NULL);
    long long start = now_ms();
    for (size_t i = 0; i < count; i++) {
        slots[i].probe = &diag->probes[i];
        slots[i].fd = -1;
        slots[i].pid = -1;
        slots[i].timeout_ms =
            diag->timeout_override_ms > 0 ? diag->timeout_override_ms : diag->probes[i].timeout_ms;
    }
    for (size_t i = 0; i < count; i++) {
        if (skipped(diag, slots[i].probe->name)) {
            slots[i].state = SLOT_DONE;
            slots[i].section =
                json_pack("{s:b,s:s}", "skipped", 1, "note", "left out (" TL_DIAG_SKIP_ENV ")");
            continue;
        }
        start_probe(diag, slots, i, start);
    }
    collect(diag, slots, count);
    rc = build_report(slots, count, collected_at, report);
out:
    for (size_t i = 0; slots && i < count; i++) {
        close_fd(&slots[i]);
        free(slots[i].output);
        json_decref(slots[i].section);
    }
    free(slots);
    return rc;
}

/* ---- Text output ------------------------------------------------------------------------ */

/* A growable list of malloc'd strings. */
struct strings {
    char **items;
    size_t count;
    size_t cap;
    bool failed;
};

static void strings_add(struct strings *list, char *item)
{
    if (!item) {
        list->failed = true;
        return;
    }
    if (tl_array_grow(&list->items, &list->cap, list->count + 1, sizeof *list->items, 16,
                      SIZE_MAX) != 0) {
        free(item);
        list->failed = true;
        return;
    }
    list->items[list->count++] = item;
}

static void strings_clear(struct strings *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

/* Terminal-safe copy: control characters become '?'. */
static char *printable(const char *text)
{
    char *copy = strdup(text);
    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return copy;
}

static char *format_scalar(const char *key, const json_t *value)
{
    char buffer[64];
    switch (json_typeof(value)) {
    case JSON_STRING:
        return printable(json_string_value(value));
    case JSON_INTEGER: {
        long long n = json_integer_value(value);
        if (ends_with(key, "_bytes") && n >= 1024) {
            static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
            double scaled = (double)n / 1024;
            size_t unit = 0;
            while (scaled >= 1024 && unit + 1 < sizeof units / sizeof units[0]) {
                scaled /= 1024;
                unit++;
            }
            snprintf(buffer, sizeof buffer, "%.1f %s", scaled, units[unit]);
        } else if (ends_with(key, "_bytes")) {
            snprintf(buffer, sizeof buffer, "%lld B", n);
        } else {
            snprintf(buffer, sizeof buffer, "%lld", n);
        }
        return strdup(buffer);
    }
    case JSON_REAL:
        snprintf(buffer, sizeof buffer, ends_with(key, "_percent") ? "%.1f%%" : "%.2f",
                 json_real_value(value));
        return strdup(buffer);
    case JSON_TRUE:
        return strdup("yes");
    case JSON_FALSE:
        return strdup("no");
    case JSON_NULL:
        return strdup("-");
    case JSON_ARRAY: {
        size_t total = 1, index;
        json_t *member;
        if (json_array_size(value) == 0)
            return strdup("(none)");
        json_array_foreach(value, index, member) {
            if (json_is_object(member) || json_is_array(member)) {
                snprintf(buffer, sizeof buffer, "[%zu items]", json_array_size(value));
                return strdup(buffer);
            }
        }
        struct strings parts = {0};
        json_array_foreach(value, index, member) {
            strings_add(&parts, format_scalar(key, member));
            if (!parts.failed)
                total += strlen(parts.items[parts.count - 1]) + 2;
        }
        char *joined = parts.failed ? NULL : malloc(total);
        if (joined) {
            joined[0] = '\0';
            for (size_t i = 0; i < parts.count; i++) {
                if (i > 0)
                    strcat(joined, ", ");
                strcat(joined, parts.items[i]);
            }
        }
        strings_clear(&parts);
        return joined;
    }
    case JSON_OBJECT:
        return strdup("{...}");
    }
    return strdup("?");
}

/* Display width of UTF-8 text, counting each character as one column. */
static size_t display_width(const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        width += (*p & 0xC0) != 0x80;
    return width;
}

static void pad(FILE *out, size_t n)
{
    while (n-- > 0)
        fputc(' ', out);
}

static bool is_table(const json_t *value);

/*
 * Flattens an object into key/value pairs ("a.b": "v"). With skip_tables,
 * top-level arrays of objects are left out for the caller to print as tables.
 */
static void flatten(const char *prefix, const json_t *object, struct strings *keys,
                    struct strings *values, bool skip_tables)
{
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)object, key, member) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", key);
        if (json_is_object(member)) {
            flatten(name, member, keys, values, false);
            continue;
        }
        if (skip_tables && is_table(member))
            continue;
        strings_add(keys, strdup(name));
        strings_add(values, format_scalar(key, member));
    }
}

static bool is_table(const json_t *value)
{
    return json_is_array(value) && json_array_size(value) > 0 &&
           json_is_object(json_array_get(value, 0));
}

static int column_of(struct strings *columns, const char *name)
{
    for (size_t i = 0; i < columns->count; i++)
        if (strcmp(columns->items[i], name) == 0)
            return (int)i;
    strings_add(columns, strdup(name));
    return columns->failed ? -1 : (int)columns->count - 1;
}

#define TEXT_WIDTH 120

/* How a key is shown: "size_bytes" as "size", "used_percent" as "used%". */
static char *title_of(const char *key)
{
    char *title = strdup(key);
    if (!title)
        return NULL;
    size_t len = strlen(title);
    if (ends_with(title, "_bytes"))
        title[len - 6] = '\0';
    else if (ends_with(title, "_percent"))
        strcpy(title + len - 8, "%");
    return title;
}

/* One cell padded to width; cut with "..." if wider, and not padded when last. */
static void write_cell(FILE *out, const char *text, size_t width, bool last)
{
    size_t shown = display_width(text);
    if (shown > width) {
        size_t keep = width > 3 ? width - 3 : 0, columns = 0;
        const char *p = text;
        while (*p && columns < keep) {
            p++;
            while ((*p & 0xC0) == 0x80)
                p++;
            columns++;
        }
        fwrite(text, 1, (size_t)(p - text), out);
        fputs("...", out);
        shown = columns + 3;
    } else {
        fputs(text, out);
    }
    if (!last)
        pad(out, width > shown ? width - shown + 2 : 2);
}

/* An array of objects: a table when it fits in TEXT_WIDTH columns, else one block per row. */
static void write_table(FILE *out, const char *name, const json_t *rows)
{
    struct strings columns = {0};
    size_t row_count = json_array_size(rows);
    struct strings *cells = calloc(row_count, sizeof *cells);
    if (!cells)
        return;
    for (size_t r = 0; r < row_count; r++) {
        struct strings keys = {0};
        const json_t *row = json_array_get(rows, r);
        if (json_is_object(row))
            flatten("", row, &keys, &cells[r], false);
        /* Re-index the row's values by column. */
        struct strings ordered = {0};
        for (size_t k = 0; k < keys.count && !keys.failed && !cells[r].failed; k++) {
            int column = column_of(&columns, keys.items[k]);
            if (column < 0)
                break;
            while (ordered.count <= (size_t)column && !ordered.failed)
                strings_add(&ordered, strdup(""));
            if (!ordered.failed) {
                free(ordered.items[column]);
                ordered.items[column] = cells[r].items[k];
                cells[r].items[k] = NULL;
            }
        }
        strings_clear(&keys);
        strings_clear(&cells[r]);
        cells[r] = ordered;
    }
    /* Titles replace the column names; the widest cell or title sets each width. */
    struct strings titles = {0};
    for (size_t c = 0; c < columns.count; c++)
        strings_add(&titles, title_of(columns.items[c]));
    size_t *widths = calloc(columns.count ? columns.count : 1, sizeof *widths);
    size_t total = 4;
    for (size_t c = 0; widths && !titles.failed && c < columns.count; c++) {
        widths[c] = display_width(titles.items[c]);
        for (size_t r = 0; r < row_count; r++)
            if (c < cells[r].count && display_width(cells[r].items[c]) > widths[c])
                widths[c] = display_width(cells[r].items[c]);
        total += widths[c] + 2;
    }
    fprintf(out, "  %s:\n", name);
    if (!widths || titles.failed || columns.count == 0)
        goto out;
    /* A table if it fits, cutting the last column (a command line, say) if need be. */
    size_t last = columns.count - 1;
    size_t others = total - widths[last] - 2;
    if (total > TEXT_WIDTH && others + 16 <= TEXT_WIDTH)
        widths[last] = TEXT_WIDTH - others;
    if (others + widths[last] <= TEXT_WIDTH) {
        fputs("    ", out);
        for (size_t c = 0; c < columns.count; c++)
            write_cell(out, titles.items[c], widths[c], c == last);
        fputc('\n', out);
        for (size_t r = 0; r < row_count; r++) {
            fputs("    ", out);
            for (size_t c = 0; c < columns.count; c++)
                write_cell(out, c < cells[r].count ? cells[r].items[c] : "", widths[c], c == last);
            fputc('\n', out);
        }
    } else {
        size_t key_width = 0;
        for (size_t c = 0; c < columns.count; c++)
            if (display_width(titles.items[c]) > key_width)
                key_width = display_width(titles.items[c]);
        for (size_t r = 0; r < row_count; r++) {
            for (size_t c = 0; c < columns.count && c < cells[r].count; c++) {
                fputs(c == 0 ? "    - " : "      ", out);
                fprintf(out, "%s:", titles.items[c]);
                pad(out, key_width - display_width(titles.items[c]) + 1);
                fprintf(out, "%s\n", cells[r].items[c]);
            }
        }
    }
out:
    free(widths);
    for (size_t r = 0; r < row_count; r++)
        strings_clear(&cells[r]);
    free(cells);
    strings_clear(&columns);
    strings_clear(&titles);
}

static const char *description_of(const char *name)
{
    for (size_t i = 0; i < sizeof builtin_probes / sizeof builtin_probes[0]; i++)
        if (strcmp(builtin_probes[i].name, name) == 0)
            return builtin_probes[i].description;
    return NULL;
}

static void write_section(FILE *out, const char *name, const json_t *section)
{
    const char *description = description_of(name);
    fprintf(out, "\n== %s%s%s ==\n", name, description ? ": " : "", description ? description : "");
    struct strings keys = {0}, values = {0};
    flatten("", section, &keys, &values, true);
    for (size_t i = 0; i < keys.count; i++) {
        char *title = title_of(keys.items[i]);
        if (title) {
            free(keys.items[i]);
            keys.items[i] = title;
        }
    }
    size_t width = 0;
    for (size_t i = 0; i < keys.count; i++)
        if (display_width(keys.items[i]) > width)
            width = display_width(keys.items[i]);
    for (size_t i = 0; i < keys.count && i < values.count; i++) {
        fprintf(out, "  %s:", keys.items[i]);
        pad(out, width - display_width(keys.items[i]) + 1);
        fprintf(out, "%s\n", values.items[i]);
    }
    strings_clear(&keys);
    strings_clear(&values);
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)section, key, member) {
        if (is_table(member))
            write_table(out, key, member);
    }
}

/* One line of another party's text, escaped (proto/text.h), after a prefix. */
static void write_escaped_line(FILE *out, const char *prefix, const char *text)
{
    char *shown = tl_text_escape_dup(text ? text : "", TL_TEXT_LINE);
    fprintf(out, "%s%s\n", prefix, shown ? shown : "?");
    free(shown);
}

/*
 * The summary of known problems, when the report has one (agent/kb.h): what the knowledge
 * base's articles found on this report, and the articles that could not be read.
 */
static void write_problems(FILE *out, const json_t *report)
{
    const json_t *problems = json_object_get(report, "problems");
    const json_t *kb = json_object_get(report, "knowledge_base");
    if (!json_is_object(kb))
        return;
    const char *error = json_string_value(json_object_get(kb, "error"));
    long long checked = json_integer_value(json_object_get(kb, "articles"));
    fputc('\n', out);
    if (error) {
        write_escaped_line(out, "Known problems were not checked: ", error);
    } else if (json_array_size(problems) == 0) {
        fprintf(out, "No known problems found (%lld article%s checked).\n", checked,
                checked == 1 ? "" : "s");
    } else {
        fprintf(out, "Problems found: %zu (%lld article%s checked)\n", json_array_size(problems),
                checked, checked == 1 ? "" : "s");
        size_t index;
        const json_t *problem;
        json_array_foreach(problems, index, problem) {
            char *title = tl_text_escape_dup(json_string_value(json_object_get(problem, "title")),
                                             TL_TEXT_LINE);
            char *id =
                tl_text_escape_dup(json_string_value(json_object_get(problem, "id")), TL_TEXT_LINE);
            fprintf(out, "  %zu. %s [%s]\n", index + 1, title ? title : "?", id ? id : "?");
            free(title);
            free(id);
            write_escaped_line(
                out, "     evidence: ", json_string_value(json_object_get(problem, "evidence")));
            const char *runbook = json_string_value(json_object_get(problem, "runbook"));
            if (runbook)
                write_escaped_line(out, "     fix: runbook ", runbook);
        }
    }
    const json_t *skipped = json_object_get(kb, "skipped");
    if (json_array_size(skipped) > 0) {
        fprintf(out, "Skipped knowledge-base articles: %zu\n", json_array_size(skipped));
        size_t index;
        const json_t *entry;
        json_array_foreach(skipped, index, entry) {
            write_escaped_line(out, "  - ", json_string_value(json_object_get(entry, "reason")));
        }
    }
}

int tl_diag_write_text(const json_t *report, FILE *out)
{
    if (!json_is_object(report) || !out)
        return TL_EINVAL;
    const json_t *sections = json_object_get(report, "sections");
    const char *host = json_string_value(json_object_get(report, "host"));
    const char *when = json_string_value(json_object_get(report, "collected_at"));
    char *safe_host = printable(host ? host : "?");
    fprintf(out, "Tierline diagnostics for %s, collected %s\n", safe_host ? safe_host : "?",
            when ? when : "?");
    free(safe_host);
    write_problems(out, report);
    const char *name;
    json_t *section;
    json_object_foreach((json_t *)sections, name, section) {
        if (json_is_object(section))
            write_section(out, name, section);
    }
    fflush(out);
    return ferror(out) ? TL_EIO : 0;
}
