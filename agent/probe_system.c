/*
 * Probe "system": host name, OS release, kernel, architecture, uptime, load.
 * Sources: gethostname(2), /etc/os-release (or /usr/lib/os-release), uname(2),
 * /proc/uptime, /proc/loadavg. docs/diagnostics.md lists the fields.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* The os-release keys we report, and the JSON names they get. */
static const struct {
    const char *key;
    const char *field;
} os_keys[] = {
    {"PRETTY_NAME", "pretty_name"},
    {"ID", "id"},
    {"VERSION_ID", "version_id"},
    {"VERSION_CODENAME", "version_codename"},
};

/* Unquotes an os-release value in place ("..." or '...' with backslash escapes). */
static void unquote(char *value)
{
    size_t len = strlen(value);
    if (len < 2 || (value[0] != '"' && value[0] != '\'') || value[len - 1] != value[0])
        return;
    char *out = value;
    for (size_t i = 1; i + 1 < len; i++) {
        if (value[i] == '\\' && i + 2 < len)
            i++;
        *out++ = value[i];
    }
    *out = '\0';
}

int tl__probe_system_parse_os_release(const char *text, json_t *os)
{
    int rc = 0;
    char *copy = strdup(text ? text : "");
    if (!copy)
        return TL_ENOMEM;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *equals = strchr(line, '=');
        if (line[0] == '#' || !equals)
            continue;
        *equals = '\0';
        char *value = equals + 1;
        size_t value_len = strlen(value);
        while (value_len > 0 && (value[value_len - 1] == '\r' || value[value_len - 1] == ' '))
            value[--value_len] = '\0';
        unquote(value);
        for (size_t k = 0; k < sizeof os_keys / sizeof os_keys[0]; k++) {
            if (strcmp(line, os_keys[k].key) == 0) {
                rc = tl__diag_put_text(os, os_keys[k].field, value);
                if (rc < 0)
                    goto out;
            }
        }
    }
out:
    free(copy);
    return rc;
}

static int put_os(json_t *section)
{
    int rc;
    char *text = NULL;
    json_t *os = json_object();
    if (!os)
        return TL_ENOMEM;
    rc = tl__diag_read_file("/etc/os-release", 64 * 1024, &text, NULL);
    if (rc < 0)
        rc = tl__diag_read_file("/usr/lib/os-release", 64 * 1024, &text, NULL);
    if (rc < 0)
        rc = tl__diag_put_text(os, "error", tl_strerror(rc));
    else
        rc = tl__probe_system_parse_os_release(text, os);
    free(text);
    if (rc == 0 && json_object_set(section, "os", os) != 0)
        rc = TL_ENOMEM;
    json_decref(os);
    return rc;
}

static int put_uptime_and_load(json_t *section)
{
    int rc = 0;
    char line[256];
    double uptime = 0;
    if (tl__diag_read_line("/proc/uptime", line, sizeof line) == 0 &&
        sscanf(line, "%lf", &uptime) == 1) {
        long long seconds = (long long)uptime;
        char boot[32];
        tl__diag_format_time((long long)time(NULL) - seconds, boot);
        if ((rc = tl__diag_put_int(section, "uptime_seconds", seconds)) < 0 ||
            (rc = tl__diag_put_text(section, "boot_time", boot)) < 0)
            return rc;
    }
    double load[3];
    int running = 0, total = 0;
    if (tl__diag_read_line("/proc/loadavg", line, sizeof line) == 0 &&
        sscanf(line, "%lf %lf %lf %d/%d", &load[0], &load[1], &load[2], &running, &total) >= 3) {
        json_t *averages = json_object();
        if (!averages)
            return TL_ENOMEM;
        if (tl__diag_put_real(averages, "1m", load[0]) < 0 ||
            tl__diag_put_real(averages, "5m", load[1]) < 0 ||
            tl__diag_put_real(averages, "15m", load[2]) < 0 ||
            json_object_set_new(section, "load_average", averages) != 0)
            return TL_ENOMEM;
        if (total > 0 && (rc = tl__diag_put_int(section, "tasks_total", total)) < 0)
            return rc;
    }
    return 0;
}

int tl__probe_system_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char host[256] = "";
    struct utsname uts;
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    if ((rc = tl__diag_put_text(section, "hostname", host)) < 0)
        return rc;
    if ((rc = put_os(section)) < 0)
        return rc;
    if (uname(&uts) == 0) {
        json_t *kernel = json_object();
        if (!kernel || json_object_set_new(section, "kernel", kernel) != 0)
            return TL_ENOMEM;
        if ((rc = tl__diag_put_text(kernel, "name", uts.sysname)) < 0 ||
            (rc = tl__diag_put_text(kernel, "release", uts.release)) < 0 ||
            (rc = tl__diag_put_text(kernel, "version", uts.version)) < 0 ||
            (rc = tl__diag_put_text(section, "arch", uts.machine)) < 0)
            return rc;
    }
    return put_uptime_and_load(section);
}
