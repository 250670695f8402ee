/*
 * Probe "logs": the last system log lines, from
 * `journalctl -n 50 --no-pager -o short-iso` when it is installed and has
 * entries, else from the end of /var/log/syslog or /var/log/messages.
 *
 * Bounds: at most MAX_LINES lines, each cut to MAX_LINE_BYTES, read from at
 * most MAX_READ_BYTES of output. The text is redacted as one block before it
 * is split into lines, so a secret that spans lines (a PEM key) is caught
 * whole; each line is then redacted again on its own by the runner.
 */
#include "agent/diag.h"

#include "agent/redact.h"
#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LINES 50
#define MAX_LINE_BYTES 1024
#define MAX_READ_BYTES (64 * 1024)
#define COMMAND_TIMEOUT_MS 5000

static const char *const log_files[] = {"/var/log/syslog", "/var/log/messages"};

int tl__probe_logs_parse(const char *text, size_t len, bool skip_first_line, bool skip_markers,
                         json_t *section, bool *truncated)
{
    int rc;
    size_t redacted_len = 0;
    char *redacted = tl_redact_bytes(text, len, &redacted_len, NULL);
    json_t *lines = json_array();
    const char **starts = calloc(MAX_LINES, sizeof *starts);
    size_t *lengths = calloc(MAX_LINES, sizeof *lengths);
    if (!redacted || !lines || !starts || !lengths) {
        rc = TL_ENOMEM;
        goto out;
    }
    /* A ring of the last MAX_LINES lines, found in one pass. */
    size_t kept = 0, seen = 0, i = 0;
    if (skip_first_line) {
        while (i < redacted_len && redacted[i] != '\n')
            i++;
        i++;
    }
    while (i < redacted_len) {
        size_t start = i;
        while (i < redacted_len && redacted[i] != '\n')
            i++;
        size_t line_len = i - start;
        i++;
        if (line_len == 0 ||
            (skip_markers && line_len >= 3 && memcmp(redacted + start, "-- ", 3) == 0))
            continue;
        starts[seen % MAX_LINES] = redacted + start;
        lengths[seen % MAX_LINES] = line_len;
        seen++;
    }
    kept = seen < MAX_LINES ? seen : MAX_LINES;
    if (seen > MAX_LINES)
        *truncated = true;
    for (size_t k = seen - kept; k < seen; k++) {
        size_t slot = k % MAX_LINES;
        if (lengths[slot] > MAX_LINE_BYTES)
            *truncated = true;
        json_t *line = tl__diag_text(starts[slot], lengths[slot], MAX_LINE_BYTES);
        if (!line || json_array_append_new(lines, line) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    if (json_object_set(section, "lines", lines) != 0) {
        rc = TL_ENOMEM;
        goto out;
    }
    rc = (int)kept;
out:
    free(redacted);
    free(starts);
    free(lengths);
    json_decref(lines);
    return rc;
}

/* Tries journalctl; 1 when it produced the section's lines, 0 to fall back, or a negative code. */
static int from_journal(const tl_diag_t *diag, json_t *section, char *note, size_t note_size,
                        bool *truncated)
{
    char path[512];
    if (tl__diag_find_program("journalctl", path, sizeof path) < 0) {
        snprintf(note, note_size, "journalctl not installed");
        return 0;
    }
    static const char *const argv[] = {"journalctl", "-n",        "50", "--no-pager",
                                       "-o",         "short-iso", "-q", NULL};
    int timeout = tl_diag_time_left_ms(diag) - 1000;
    if (timeout > COMMAND_TIMEOUT_MS)
        timeout = COMMAND_TIMEOUT_MS;
    struct tl__diag_command command;
    int rc = tl__diag_command_run(argv, timeout < 1 ? 1 : timeout, MAX_READ_BYTES, &command);
    if (rc < 0) {
        snprintf(note, note_size, "journalctl could not run: %s", tl_strerror(rc));
        return 0;
    }
    if (command.timed_out || command.exit_status != 0) {
        char why[300];
        tl__diag_command_describe(&command, why, sizeof why);
        snprintf(note, note_size, "journalctl failed: %s", why);
        rc = 0;
        goto out;
    }
    json_t *attempt = json_object();
    if (!attempt) {
        rc = TL_ENOMEM;
        goto out;
    }
    bool cut = command.output_truncated;
    rc = tl__probe_logs_parse(command.output, command.output_len, false, true, attempt, &cut);
    if (rc == 0) {
        snprintf(note, note_size, "journalctl has no entries");
    } else if (rc > 0) {
        *truncated = cut;
        rc = json_object_update(section, attempt) == 0 ? 1 : TL_ENOMEM;
    }
    json_decref(attempt);
out:
    tl__diag_command_clear(&command);
    return rc;
}

int tl__probe_logs_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char note[400] = "";
    bool truncated = false;
    const char *source = "journalctl";
    json_t *lines_holder = json_object();
    if (!lines_holder)
        return TL_ENOMEM;
    rc = from_journal(diag, lines_holder, note, sizeof note, &truncated);
    if (rc < 0)
        goto out;
    for (size_t f = 0; rc == 0 && f < sizeof log_files / sizeof log_files[0]; f++) {
        char *text = NULL;
        size_t len = 0;
        bool mid_file = false;
        if (tl__diag_read_tail(log_files[f], MAX_READ_BYTES, &text, &len, &mid_file) < 0)
            continue;
        truncated = mid_file;
        rc = tl__probe_logs_parse(text, len, mid_file, false, lines_holder, &truncated);
        free(text);
        if (rc < 0)
            goto out;
        source = log_files[f];
    }
    if (rc == 0) {
        source = "none";
        json_t *empty = json_array();
        if (!empty || json_object_set_new(lines_holder, "lines", empty) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
        if (!note[0])
            snprintf(note, sizeof note, "no system log found");
    }
    if ((rc = tl__diag_put_text(section, "source", source)) < 0 ||
        (rc = tl__diag_put_int(
             section, "line_count",
             (long long)json_array_size(json_object_get(lines_holder, "lines")))) < 0 ||
        (rc = tl__diag_put_bool(section, "truncated", truncated)) < 0)
        goto out;
    if (note[0] && (rc = tl__diag_put_text(section, "note", note)) < 0)
        goto out;
    if (json_object_update(section, lines_holder) != 0)
        rc = TL_ENOMEM;
out:
    json_decref(lines_holder);
    return rc;
}
