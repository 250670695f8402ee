/*
 * Probe "processes": the top processes by CPU and by resident memory.
 *
 * CPU is sampled: /proc/[pid]/stat is read twice, 200 ms apart, and each
 * process's share is the CPU time it used in between over the wall time
 * elapsed (100% = one CPU busy). Processes that started in between count all
 * their CPU time; ones that ended are not listed. Command lines are redacted.
 */
#include "agent/diag.h"

#include "proto/array.h"
#include "proto/err.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_MS 200
#define TOP_COUNT 10
#define MAX_PROCESSES 65536
#define MAX_COMMAND_BYTES 256

struct process {
    pid_t pid;
    char state;
    char name[64];
    unsigned long long ticks; /* utime + stime */
    unsigned long long start_ticks;
    long long rss_pages;
    uid_t uid;
    double cpu_percent;
};

struct process_list {
    struct process *items;
    size_t count;
    size_t cap;
};

/* Parses /proc/[pid]/stat; the command name is in parentheses and may hold any byte. */
static bool parse_stat(const char *text, struct process *p)
{
    const char *open = strchr(text, '(');
    const char *close = strrchr(text, ')');
    if (!open || !close || close < open)
        return false;
    size_t name_len = (size_t)(close - open - 1);
    if (name_len >= sizeof p->name)
        name_len = sizeof p->name - 1;
    memcpy(p->name, open + 1, name_len);
    p->name[name_len] = '\0';
    /* Fields after the name, counted from 3 (state) as in proc(5); %*s skips one. */
    unsigned long long utime, stime, start;
    long long rss;
    char state;
    if (sscanf(close + 1,
               " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu %*s %*s %*s %*s %*s %*s "
               "%llu %*s %lld",
               &state, &utime, &stime, &start, &rss) != 5)
        return false;
    p->state = state;
    p->ticks = utime + stime;
    p->start_ticks = start;
    p->rss_pages = rss;
    return true;
}

static int sample(struct process_list *list)
{
    int rc = 0;
    list->count = 0;
    DIR *dir = opendir("/proc");
    if (!dir)
        return -errno;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        if (list->count >= MAX_PROCESSES)
            break;
        char path[64];
        char *text = NULL;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        if (tl__diag_read_file(path, 4096, &text, NULL) < 0)
            continue; /* gone since readdir */
        struct process p = {.pid = (pid_t)pid};
        bool ok = parse_stat(text, &p);
        free(text);
        struct stat st;
        snprintf(path, sizeof path, "/proc/%ld", pid);
        if (!ok || stat(path, &st) != 0)
            continue;
        p.uid = st.st_uid;
        rc = tl_array_grow(&list->items, &list->cap, list->count + 1, sizeof *list->items, 256,
                           MAX_PROCESSES);
        if (rc != 0)
            break;
        list->items[list->count++] = p;
    }
    closedir(dir);
    return rc;
}

static int by_pid(const void *a, const void *b)
{
    pid_t x = ((const struct process *)a)->pid, y = ((const struct process *)b)->pid;
    return (x > y) - (x < y);
}

static int by_cpu(const void *a, const void *b)
{
    const struct process *x = a, *y = b;
    if (x->cpu_percent != y->cpu_percent)
        return x->cpu_percent < y->cpu_percent ? 1 : -1;
    return by_pid(a, b);
}

static int by_rss(const void *a, const void *b)
{
    const struct process *x = a, *y = b;
    if (x->rss_pages != y->rss_pages)
        return x->rss_pages < y->rss_pages ? 1 : -1;
    return by_pid(a, b);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int put_process(json_t *list, const struct process *p, long page_size)
{
    int rc;
    char user[64], path[64];
    json_t *row = json_object();
    if (!row || json_array_append_new(list, row) != 0)
        return TL_ENOMEM;
    tl__diag_user_name(p->uid, user, sizeof user);
    char state[2] = {p->state, '\0'};
    if ((rc = tl__diag_put_int(row, "pid", p->pid)) < 0 ||
        (rc = tl__diag_put_text(row, "user", user)) < 0 ||
        (rc = tl__diag_put_text(row, "name", p->name)) < 0 ||
        (rc = tl__diag_put_text(row, "state", state)) < 0 ||
        (rc = tl__diag_put_real(row, "cpu_percent", p->cpu_percent)) < 0 ||
        (rc = tl__diag_put_int(row, "rss_bytes", p->rss_pages * page_size)) < 0)
        return rc;
    /* The command line: arguments separated by NULs; kernel threads have none. */
    char *args = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)p->pid);
    if (tl__diag_read_file(path, 4096, &args, &len) == 0 && len > 0) {
        for (size_t i = 0; i < len; i++)
            if (args[i] == '\0')
                args[i] = ' ';
        while (len > 0 && args[len - 1] == ' ')
            len--;
        /* Redacted whole, then cut: cutting first could split a secret past recognition. */
        json_t *command = tl__diag_text(args, len, MAX_COMMAND_BYTES);
        if (!command || json_object_set_new(row, "command", command) != 0)
            rc = TL_ENOMEM;
    }
    free(args);
    return rc;
}

int tl__probe_processes_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    struct process_list before = {0}, after = {0};
    json_t *top_cpu = json_array(), *top_memory = json_array();
    if (!top_cpu || !top_memory) {
        rc = TL_ENOMEM;
        goto out;
    }
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    long page_size = sysconf(_SC_PAGESIZE);
    if (ticks_per_second <= 0)
        ticks_per_second = 100;
    if (page_size <= 0)
        page_size = 4096;
    long long start = now_ms();
    if ((rc = sample(&before)) < 0) {
        rc = tl__diag_fail(section, rc, "cannot list /proc: %s", tl_strerror(rc));
        goto out;
    }
    qsort(before.items, before.count, sizeof *before.items, by_pid);
    int pause_ms = SAMPLE_MS;
    if (tl_diag_time_left_ms(diag) < 4 * SAMPLE_MS)
        pause_ms = tl_diag_time_left_ms(diag) / 8;
    struct timespec pause = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
    if ((rc = sample(&after)) < 0) {
        rc = tl__diag_fail(section, rc, "cannot list /proc: %s", tl_strerror(rc));
        goto out;
    }
    double elapsed = (double)(now_ms() - start) / 1000.0;
    if (elapsed <= 0)
        elapsed = 0.001;
    for (size_t i = 0; i < after.count; i++) {
        struct process *p = &after.items[i];
        const struct process *old = bsearch(p, before.items, before.count, sizeof *p, by_pid);
        unsigned long long used = p->ticks;
        if (old && old->start_ticks == p->start_ticks)
            used = p->ticks >= old->ticks ? p->ticks - old->ticks : 0;
        p->cpu_percent = 100.0 * (double)used / (double)ticks_per_second / elapsed;
    }
    if ((rc = tl__diag_put_text(section, "method", "sampled")) < 0 ||
        (rc = tl__diag_put_int(section, "sample_ms", (long long)(elapsed * 1000))) < 0 ||
        (rc = tl__diag_put_int(section, "process_count", (long long)after.count)) < 0)
        goto out;
    qsort(after.items, after.count, sizeof *after.items, by_cpu);
    /* Only processes that ran during the sample: an idle one is not "top". */
    for (size_t i = 0; i < after.count && i < TOP_COUNT && after.items[i].cpu_percent > 0; i++)
        if ((rc = put_process(top_cpu, &after.items[i], page_size)) < 0)
            goto out;
    qsort(after.items, after.count, sizeof *after.items, by_rss);
    for (size_t i = 0; i < after.count && i < TOP_COUNT; i++)
        if ((rc = put_process(top_memory, &after.items[i], page_size)) < 0)
            goto out;
    if (json_object_set(section, "top_cpu", top_cpu) != 0 ||
        json_object_set(section, "top_memory", top_memory) != 0)
        rc = TL_ENOMEM;
out:
    free(before.items);
    free(after.items);
    json_decref(top_cpu);
    json_decref(top_memory);
    return rc;
}
