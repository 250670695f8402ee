/*
 * Probe "time": whether the clock is synchronised. Where systemd runs,
 * `timedatectl show` answers (NTP service enabled, synchronised, time zone);
 * the kernel's own view from ntp_adjtime(3) (a read-only call) is always
 * added, and is the answer when timedatectl cannot give one.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#define COMMAND_TIMEOUT_MS 3000

static const char *clock_state_name(int state)
{
    switch (state) {
    case TIME_OK:
        return "ok";
    case TIME_INS:
        return "leap second insert pending";
    case TIME_DEL:
        return "leap second delete pending";
    case TIME_OOP:
        return "leap second in progress";
    case TIME_WAIT:
        return "leap second done";
    case TIME_ERROR:
        return "unsynchronised";
    }
    return "unknown";
}

/* The kernel's view; *synchronised is left alone when it cannot be read. */
static int put_kernel(json_t *section, int *synchronised)
{
    int rc;
    struct timex tx;
    memset(&tx, 0, sizeof tx); /* modes 0: read only, no privilege needed */
    int state = ntp_adjtime(&tx);
    if (state < 0)
        return tl__diag_put_text(section, "kernel_error", strerror(errno));
    json_t *kernel = json_object();
    if (!kernel || json_object_set_new(section, "kernel", kernel) != 0)
        return TL_ENOMEM;
    bool synced = state != TIME_ERROR && !(tx.status & STA_UNSYNC);
    long long offset_us = (tx.status & STA_NANO) ? tx.offset / 1000 : tx.offset;
    if ((rc = tl__diag_put_bool(kernel, "synchronised", synced)) < 0 ||
        (rc = tl__diag_put_text(kernel, "clock_state", clock_state_name(state))) < 0 ||
        (rc = tl__diag_put_int(kernel, "offset_us", offset_us)) < 0 ||
        (rc = tl__diag_put_int(kernel, "estimated_error_us", tx.esterror)) < 0 ||
        (rc = tl__diag_put_int(kernel, "maximum_error_us", tx.maxerror)) < 0)
        return rc;
    *synchronised = synced;
    return 0;
}

static int yes_no(const char *value)
{
    return strcmp(value, "yes") == 0 ? 1 : strcmp(value, "no") == 0 ? 0 : -1;
}

/* Parses `timedatectl show` (KEY=VALUE lines); *synchronised is -1 if it did not say. */
static int put_timedatectl(json_t *section, const char *text, int *synchronised)
{
    int rc = 0;
    char *copy = strdup(text);
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    *synchronised = -1;
    for (char *line = strtok_r(copy, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char *equals = strchr(line, '=');
        if (!equals)
            continue;
        *equals = '\0';
        const char *value = equals + 1;
        if (strcmp(line, "NTPSynchronized") == 0 && yes_no(value) >= 0)
            *synchronised = yes_no(value);
        else if (strcmp(line, "NTP") == 0 && yes_no(value) >= 0)
            rc = tl__diag_put_bool(section, "ntp_service_enabled", yes_no(value));
        else if (strcmp(line, "CanNTP") == 0 && yes_no(value) >= 0)
            rc = tl__diag_put_bool(section, "ntp_service_available", yes_no(value));
        else if (strcmp(line, "LocalRTC") == 0 && yes_no(value) >= 0)
            rc = tl__diag_put_bool(section, "rtc_in_local_time", yes_no(value));
        else if (strcmp(line, "Timezone") == 0 && value[0])
            rc = tl__diag_put_text(section, "timezone", value);
    }
    free(copy);
    return rc;
}

/* Without timedatectl: /etc/timezone, or the zone /etc/localtime links to. */
static int put_timezone_from_files(json_t *section)
{
    char zone[256];
    if (tl__diag_read_line("/etc/timezone", zone, sizeof zone) == 0 && zone[0])
        return tl__diag_put_text(section, "timezone", zone);
    char target[PATH_MAX];
    ssize_t n = readlink("/etc/localtime", target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    const char *marker = strstr(target, "zoneinfo/");
    return tl__diag_put_text(section, "timezone", marker ? marker + 9 : target);
}

int tl__probe_time_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char path[512], now[32], note[400] = "";
    int timedatectl_synced = -1, kernel_synced = -1;
    struct tl__diag_command command = {0};
    json_t *facts = json_object(), *kernel = json_object();
    tl__diag_format_time((long long)time(NULL), now);
    if (!facts || !kernel) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (!tl__diag_systemd_running()) {
        snprintf(note, sizeof note, "timedatectl not used: systemd not running");
    } else if (tl__diag_find_program("timedatectl", path, sizeof path) < 0) {
        snprintf(note, sizeof note, "timedatectl not installed");
    } else {
        static const char *const argv[] = {"timedatectl", "show", NULL};
        int timeout = tl_diag_time_left_ms(diag) - 1000;
        if (timeout > COMMAND_TIMEOUT_MS)
            timeout = COMMAND_TIMEOUT_MS;
        rc = tl__diag_command_run(argv, timeout < 1 ? 1 : timeout, 64 * 1024, &command);
        if (rc == 0 && !command.timed_out && command.exit_status == 0) {
            if ((rc = put_timedatectl(facts, command.output, &timedatectl_synced)) < 0)
                goto out;
        } else {
            char why[300];
            if (rc < 0)
                snprintf(why, sizeof why, "%s", tl_strerror(rc));
            else
                tl__diag_command_describe(&command, why, sizeof why);
            snprintf(note, sizeof note, "timedatectl failed: %s", why);
        }
    }
    if ((rc = put_kernel(kernel, &kernel_synced)) < 0)
        goto out;
    if (timedatectl_synced < 0 && kernel_synced < 0) {
        rc = tl__diag_fail(section, TL_EIO, "no source of time synchronisation state: %s",
                           json_string_value(json_object_get(kernel, "kernel_error")));
        goto out;
    }
    if (!json_object_get(facts, "timezone") && (rc = put_timezone_from_files(facts)) < 0)
        goto out;
    const char *source = timedatectl_synced >= 0 ? "timedatectl" : "adjtimex";
    int synced = timedatectl_synced >= 0 ? timedatectl_synced : kernel_synced;
    if ((rc = tl__diag_put_text(section, "source", source)) < 0 ||
        (rc = tl__diag_put_bool(section, "synchronised", synced != 0)) < 0 ||
        (rc = tl__diag_put_text(section, "utc_time", now)) < 0)
        goto out;
    if (json_object_update(section, facts) != 0 || json_object_update(section, kernel) != 0) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (note[0])
        rc = tl__diag_put_text(section, "note", note);
out:
    json_decref(facts);
    json_decref(kernel);
    tl__diag_command_clear(&command);
    return rc;
}
