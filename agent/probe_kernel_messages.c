/*
 * Probe "kernel_messages": the kernel's recent errors and warnings (levels
 * emerg to warn), from `dmesg --decode --level=emerg,alert,crit,err,warn`,
 * else straight from /dev/kmsg where this user may read it; the last 50
 * lines are kept (redacted, each cut to 1 KiB) and every error and warning
 * in the kernel's buffer is counted. Where the kernel keeps its log from
 * this user (kernel.dmesg_restrict), the section says so: that is not an
 * error of the probe.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMMAND_TIMEOUT_MS 3000
#define MAX_TEXT (256 * 1024)
#define MAX_RECORDS 100000
#define RECORD_MAX 8192

/* syslog(3) levels as `dmesg --decode` names them; the kernel reports these and below. */
static const char *const level_names[] = {"emerg", "alert", "crit", "err", "warn"};
static const char *const facility_names[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",    "res0",   "res1",   "res2",   "res3",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7"};

/*
 * The level of a `dmesg --decode` line ("kern  :err   : [    1.5] text"): 0..4 for emerg..warn,
 * -1 for a continuation line or anything else.
 */
static int decoded_level(const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line || line[0] == ' ')
        return -1;
    const char *level = colon + 1;
    size_t left = len - (size_t)(level - line);
    size_t word = 0;
    while (word < left && level[word] != ' ' && level[word] != ':')
        word++;
    for (int i = 0; i < 5; i++)
        if (strlen(level_names[i]) == word && memcmp(level, level_names[i], word) == 0)
            return i;
    return -1;
}

int tl__probe_kernel_parse_dmesg(const char *text, size_t len, bool started_mid, json_t *section)
{
    long long errors = 0, warnings = 0;
    size_t at = 0;
    if (started_mid) {
        /* The first line is cut: it is neither counted nor shown. */
        const char *newline = memchr(text, '\n', len);
        at = newline ? (size_t)(newline - text) + 1 : len;
    }
    for (size_t i = at; i < len;) {
        const char *end = memchr(text + i, '\n', len - i);
        size_t line_len = end ? (size_t)(end - (text + i)) : len - i;
        int level = decoded_level(text + i, line_len);
        errors += level >= 0 && level <= 3;
        warnings += level == 4;
        i += line_len + 1;
    }
    bool truncated = started_mid;
    int kept = tl__probe_logs_parse(text, len, started_mid, false, section, &truncated);
    if (kept < 0)
        return kept;
    int rc;
    if ((rc = tl__diag_put_int(section, "line_count", kept)) < 0 ||
        (rc = tl__diag_put_int(section, "error_count", errors)) < 0 ||
        (rc = tl__diag_put_int(section, "warning_count", warnings)) < 0 ||
        (rc = tl__diag_put_bool(section, "truncated", truncated)) < 0)
        return rc;
    return 0;
}

size_t tl__probe_kernel_kmsg_line(const char *record, size_t len, char *line, size_t size)
{
    /* "PRIORITY,SEQUENCE,MICROSECONDS,FLAGS[,...];TEXT\n" then " KEY=VALUE\n" lines. */
    const char *semicolon = memchr(record, ';', len);
    if (!semicolon || size < 2)
        return 0;
    char head[128];
    size_t head_len = (size_t)(semicolon - record);
    if (head_len >= sizeof head)
        return 0;
    memcpy(head, record, head_len);
    head[head_len] = '\0';
    unsigned long priority, microseconds;
    unsigned long long sequence;
    char comma;
    if (sscanf(head, "%lu,%llu,%lu%c", &priority, &sequence, &microseconds, &comma) != 4 ||
        comma != ',' || head[0] < '0' || head[0] > '9')
        return 0;
    unsigned long level = priority & 7, facility = priority >> 3;
    if (level > 4 || facility >= sizeof facility_names / sizeof facility_names[0])
        return 0;
    const char *text = semicolon + 1;
    size_t text_len = len - head_len - 1;
    const char *newline = memchr(text, '\n', text_len);
    if (newline)
        text_len = (size_t)(newline - text);
    int n = snprintf(line, size, "%-6s:%-6s: [%5lu.%06lu] ", facility_names[facility],
                     level_names[level], microseconds / 1000000, microseconds % 1000000);
    if (n < 0)
        return 0;
    size_t used = (size_t)n < size ? (size_t)n : size - 1;
    size_t room = size - 1 - used;
    size_t copy = text_len < room ? text_len : room;
    /* The text is the kernel's, escaped by it (\x0a): a NUL would end it early here. */
    for (size_t i = 0; i < copy; i++)
        line[used + i] = text[i] == '\0' ? '?' : text[i];
    used += copy;
    line[used] = '\0';
    return used;
}

/* Appends line and a newline to text, keeping its last MAX_TEXT bytes. */
static void keep_tail(char *text, size_t *used, const char *line, size_t len, bool *dropped)
{
    if (len + 1 > MAX_TEXT)
        return;
    if (*used + len + 1 > MAX_TEXT) {
        size_t drop = *used + len + 1 - MAX_TEXT;
        memmove(text, text + drop, *used - drop);
        *used -= drop;
        *dropped = true;
    }
    memcpy(text + *used, line, len);
    *used += len;
    text[(*used)++] = '\n';
}

/* The records of /dev/kmsg, oldest first, as dmesg --decode lines. */
static int read_kmsg(char **out, size_t *out_len, bool *dropped)
{
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    int rc = 0;
    char *text = malloc(MAX_TEXT + 1);
    char *record = malloc(RECORD_MAX + 1), *line = malloc(RECORD_MAX + 64);
    size_t used = 0;
    if (!text || !record || !line) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (int count = 0; count < MAX_RECORDS; count++) {
        ssize_t n = read(fd, record, RECORD_MAX);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            continue; /* records were overwritten while we read: go on with the next */
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        size_t len = tl__probe_kernel_kmsg_line(record, (size_t)n, line, RECORD_MAX + 64);
        if (len > 0)
            keep_tail(text, &used, line, len, dropped);
    }
    text[used] = '\0';
    *out = text;
    *out_len = used;
    text = NULL;
out:
    free(text);
    free(record);
    free(line);
    close(fd);
    return rc;
}

static int from_kmsg(json_t *section, const char *dmesg_note)
{
    char *text = NULL;
    size_t len = 0;
    bool dropped = false;
    int rc = read_kmsg(&text, &len, &dropped);
    if (rc < 0) {
        char note[400];
        snprintf(note, sizeof note, "%s; /dev/kmsg: %s", dmesg_note, tl_strerror(rc));
        if ((rc = tl__diag_put_text(section, "source", "none")) < 0)
            return rc;
        return tl__diag_put_text(section, "note", note);
    }
    if ((rc = tl__diag_put_text(section, "source", "/dev/kmsg")) == 0 &&
        (rc = tl__diag_put_text(section, "note", dmesg_note)) == 0)
        rc = tl__probe_kernel_parse_dmesg(text, len, false, section);
    if (rc == 0 && dropped)
        rc = tl__diag_put_bool(section, "truncated", true);
    free(text);
    return rc;
}

int tl__probe_kernel_messages_run(const tl_diag_t *diag, json_t *section)
{
    static const char *const argv[] = {"dmesg", "--decode", "--level=emerg,alert,crit,err,warn",
                                       NULL};
    char path[512], why[300];
    if (tl__diag_find_program("dmesg", path, sizeof path) < 0)
        return from_kmsg(section, "dmesg not installed");
    struct tl__diag_command command;
    int rc = tl__diag_command_run_tail(argv, tl__diag_command_budget(diag, COMMAND_TIMEOUT_MS),
                                       MAX_TEXT, &command);
    if (rc < 0) {
        snprintf(why, sizeof why, "cannot run dmesg: %s", tl_strerror(rc));
        return from_kmsg(section, why);
    }
    if (command.timed_out || command.exit_status != 0) {
        char described[260];
        tl__diag_command_describe(&command, described, sizeof described);
        snprintf(why, sizeof why, "dmesg failed: %s", described);
        tl__diag_command_clear(&command);
        return from_kmsg(section, why);
    }
    if ((rc = tl__diag_put_text(section, "source", "dmesg")) == 0)
        rc = tl__probe_kernel_parse_dmesg(command.output, command.output_len,
                                          command.output_truncated, section);
    tl__diag_command_clear(&command);
    return rc;
}
