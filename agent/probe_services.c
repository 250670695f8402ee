/*
 * Probe "services": failed systemd units, from
 * `systemctl --failed --no-legend --plain --no-pager`. Where systemd does not
 * manage the machine, or systemctl is not installed, the section says so
 * ("status") and that is not an error.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

#define COMMAND_TIMEOUT_MS 5000
#define MAX_OUTPUT (128 * 1024)
#define MAX_UNITS 200

/* One line: UNIT LOAD ACTIVE SUB DESCRIPTION... (a leading status glyph is skipped). */
static int parse_unit_line(char *line, json_t *units)
{
    char *save = NULL;
    char *fields[4];
    char *word = strtok_r(line, " \t", &save);
    /* Without --plain, or on some versions, a "●" or "*" marks the unit. */
    if (word && (strcmp(word, "*") == 0 || strcmp(word, "\xe2\x97\x8f") == 0))
        word = strtok_r(NULL, " \t", &save);
    for (int i = 0; i < 4; i++) {
        if (!word)
            return 0;
        fields[i] = word;
        word = i < 3 ? strtok_r(NULL, " \t", &save) : NULL;
    }
    const char *description = save ? save : "";
    while (*description == ' ' || *description == '\t')
        description++;
    json_t *unit = json_object();
    if (!unit || json_array_append_new(units, unit) != 0)
        return TL_ENOMEM;
    int rc;
    if ((rc = tl__diag_put_text(unit, "unit", fields[0])) < 0 ||
        (rc = tl__diag_put_text(unit, "load", fields[1])) < 0 ||
        (rc = tl__diag_put_text(unit, "active", fields[2])) < 0 ||
        (rc = tl__diag_put_text(unit, "sub", fields[3])) < 0 ||
        (rc = tl__diag_put_text(unit, "description", description)) < 0)
        return rc;
    return 0;
}

int tl__probe_services_parse_failed(const char *text, json_t *units)
{
    int rc = 0;
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (json_array_size(units) >= MAX_UNITS)
            break;
        if ((rc = parse_unit_line(line, units)) < 0)
            break;
    }
    free(copy);
    return rc;
}

int tl__probe_services_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char path[512];
    if (!tl__diag_systemd_running())
        return tl__diag_put_text(section, "status", "systemd not running");
    if (tl__diag_find_program("systemctl", path, sizeof path) < 0)
        return tl__diag_put_text(section, "status", "systemctl not installed");

    int timeout = tl_diag_time_left_ms(diag) - 500;
    if (timeout > COMMAND_TIMEOUT_MS)
        timeout = COMMAND_TIMEOUT_MS;
    if (timeout < 1)
        timeout = 1;
    static const char *const argv[] = {"systemctl", "--failed",   "--no-legend",
                                       "--plain",   "--no-pager", NULL};
    struct tl__diag_command command;
    rc = tl__diag_command_run(argv, timeout, MAX_OUTPUT, &command);
    if (rc < 0)
        return tl__diag_fail(section, rc, "cannot run systemctl: %s", tl_strerror(rc));
    json_t *units = json_array();
    if (!units) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (command.timed_out || command.exit_status != 0) {
        char why[300];
        tl__diag_command_describe(&command, why, sizeof why);
        rc = tl__diag_fail(section, TL_EIO, "systemctl --failed: %s", why);
        goto out;
    }
    if ((rc = tl__probe_services_parse_failed(command.output, units)) < 0)
        goto out;
    if ((rc = tl__diag_put_text(section, "status", "systemd running")) < 0 ||
        (rc = tl__diag_put_int(section, "failed_count", (long long)json_array_size(units))) < 0)
        goto out;
    if (json_object_set(section, "failed_units", units) != 0 ||
        (command.output_truncated && tl__diag_put_bool(section, "truncated", true) < 0))
        rc = TL_ENOMEM;
out:
    json_decref(units);
    tl__diag_command_clear(&command);
    return rc;
}
