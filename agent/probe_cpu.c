/*
 * Probe "cpu": processor model, logical CPU counts and a usage sample taken
 * from two reads of /proc/stat 200 ms apart. Sources: /proc/cpuinfo,
 * sysconf(3), sched_getaffinity(2), /proc/stat.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_MS 200

/* Fields of the "cpu" line of /proc/stat, in clock ticks. */
struct cpu_times {
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
};

static int read_cpu_times(struct cpu_times *t)
{
    char line[512];
    int rc = tl__diag_read_line("/proc/stat", line, sizeof line);
    if (rc < 0)
        return rc;
    memset(t, 0, sizeof *t);
    /* Older kernels have fewer columns; missing ones stay zero. */
    if (sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &t->user, &t->nice, &t->system,
               &t->idle, &t->iowait, &t->irq, &t->softirq, &t->steal) < 4)
        return TL_EMSG_MALFORMED;
    return 0;
}

static unsigned long long total_of(const struct cpu_times *t)
{
    return t->user + t->nice + t->system + t->idle + t->iowait + t->irq + t->softirq + t->steal;
}

static double share(unsigned long long part, unsigned long long total)
{
    return total ? 100.0 * (double)part / (double)total : 0;
}

static int put_usage(const tl_diag_t *diag, json_t *section)
{
    struct cpu_times a, b;
    int rc = read_cpu_times(&a);
    if (rc < 0)
        return tl__diag_put_text(section, "usage_error", tl_strerror(rc));
    int sample = SAMPLE_MS;
    if (tl_diag_time_left_ms(diag) < 2 * SAMPLE_MS)
        sample = tl_diag_time_left_ms(diag) / 4;
    struct timespec pause = {sample / 1000, (long)(sample % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
    if ((rc = read_cpu_times(&b)) < 0)
        return tl__diag_put_text(section, "usage_error", tl_strerror(rc));
    unsigned long long total = total_of(&b) - total_of(&a);
    json_t *usage = json_object();
    if (!usage || json_object_set_new(section, "usage", usage) != 0)
        return TL_ENOMEM;
    unsigned long long idle = (b.idle - a.idle) + (b.iowait - a.iowait);
    if ((rc = tl__diag_put_int(usage, "sample_ms", sample)) < 0 ||
        (rc = tl__diag_put_real(usage, "busy_percent", total ? 100.0 - share(idle, total) : 0)) <
            0 ||
        (rc = tl__diag_put_real(usage, "user_percent",
                                share((b.user - a.user) + (b.nice - a.nice), total))) < 0 ||
        (rc = tl__diag_put_real(
             usage, "system_percent",
             share((b.system - a.system) + (b.irq - a.irq) + (b.softirq - a.softirq), total))) <
            0 ||
        (rc = tl__diag_put_real(usage, "iowait_percent", share(b.iowait - a.iowait, total))) < 0 ||
        (rc = tl__diag_put_real(usage, "steal_percent", share(b.steal - a.steal, total))) < 0 ||
        (rc = tl__diag_put_real(usage, "idle_percent", share(b.idle - a.idle, total))) < 0)
        return rc;
    return 0;
}

/* The first "model name"-like line of /proc/cpuinfo; architectures name it differently. */
static int put_model(json_t *section, int *processors)
{
    static const char *const keys[] = {"model name", "Model", "Hardware",
                                       "cpu model",  "cpu",   "uarch"};
    char *text = NULL;
    char model[256] = "";
    size_t best = sizeof keys / sizeof keys[0];
    *processors = 0;
    if (tl__diag_read_file("/proc/cpuinfo", 1024 * 1024, &text, NULL) == 0) {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            size_t key_len = (size_t)(colon - line);
            while (key_len > 0 && (line[key_len - 1] == ' ' || line[key_len - 1] == '\t'))
                key_len--;
            if (key_len == 9 && strncmp(line, "processor", 9) == 0)
                (*processors)++;
            for (size_t k = 0; k < best; k++) {
                if (strlen(keys[k]) == key_len && strncmp(line, keys[k], key_len) == 0) {
                    const char *value = colon + 1;
                    while (*value == ' ' || *value == '\t')
                        value++;
                    snprintf(model, sizeof model, "%s", value);
                    best = k;
                    break;
                }
            }
        }
    }
    free(text);
    return tl__diag_put_text(section, "model", model[0] ? model : NULL);
}

int tl__probe_cpu_run(const tl_diag_t *diag, json_t *section)
{
    int rc, processors;
    if ((rc = put_model(section, &processors)) < 0)
        return rc;
    long online = sysconf(_SC_NPROCESSORS_ONLN), configured = sysconf(_SC_NPROCESSORS_CONF);
    if (online > 0 && (rc = tl__diag_put_int(section, "online_cpus", online)) < 0)
        return rc;
    if (configured > 0 && (rc = tl__diag_put_int(section, "configured_cpus", configured)) < 0)
        return rc;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 &&
        (rc = tl__diag_put_int(section, "usable_cpus", CPU_COUNT(&set))) < 0)
        return rc;
    if (processors > 0 && (rc = tl__diag_put_int(section, "cpuinfo_processors", processors)) < 0)
        return rc;
    return put_usage(diag, section);
}
