/*
 * Probe "printers": the CUPS print queues, from `lpstat -p -d` (each queue's
 * state, whether it is enabled, its message, the default destination) and
 * `lpstat -o` (jobs waiting, counted per queue; who printed what is not
 * reported). A machine without lpstat, or whose scheduler is not running,
 * says so in "status": that is an answer, not an error.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

#define COMMAND_TIMEOUT_MS 3000
#define MAX_OUTPUT (64 * 1024)
#define MAX_QUEUES 64
#define MAX_NAME 128

/* The queue named name in queues, or NULL. */
static json_t *queue_named(json_t *queues, const char *name)
{
    size_t index;
    json_t *queue;
    json_array_foreach(queues, index, queue) {
        const char *queue_name = json_string_value(json_object_get(queue, "name"));
        if (queue_name && strcmp(queue_name, name) == 0)
            return queue;
    }
    return NULL;
}

/* The word after "printer " up to the next blank, into name. */
static const char *printer_name(const char *line, char *name, size_t size)
{
    const char *start = line + strlen("printer ");
    size_t len = strcspn(start, " \t");
    if (len == 0 || len >= size)
        return NULL;
    memcpy(name, start, len);
    name[len] = '\0';
    return start + len;
}

/*
 * One "printer NAME ..." line, as lpstat prints it in the C locale:
 *   printer NAME is idle.  enabled since DATE
 *   printer NAME is holding new jobs.  enabled since DATE
 *   printer NAME now printing NAME-7.  enabled since DATE
 *   printer NAME disabled since DATE -
 * Returns the new queue, NULL for a line that is none of these (or past the bound).
 */
static json_t *parse_printer_line(const char *line, json_t *queues, bool *truncated, int *rc)
{
    char name[MAX_NAME];
    const char *rest = printer_name(line, name, sizeof name);
    *rc = 0;
    if (!rest)
        return NULL;
    const char *state;
    bool enabled;
    if (strncmp(rest, " is idle.", 9) == 0) {
        state = "idle";
        enabled = true;
    } else if (strncmp(rest, " is holding new jobs.", 21) == 0) {
        state = "holding new jobs";
        enabled = true;
    } else if (strncmp(rest, " now printing ", 14) == 0) {
        state = "printing";
        enabled = true;
    } else if (strncmp(rest, " disabled since ", 16) == 0) {
        state = "disabled";
        enabled = false;
    } else {
        return NULL;
    }
    if (queue_named(queues, name))
        return NULL;
    if (json_array_size(queues) >= MAX_QUEUES) {
        *truncated = true;
        return NULL;
    }
    json_t *queue = json_object();
    if (!queue || json_array_append_new(queues, queue) != 0 ||
        (*rc = tl__diag_put_text(queue, "name", name)) < 0 ||
        (*rc = tl__diag_put_text(queue, "state", state)) < 0 ||
        (*rc = tl__diag_put_bool(queue, "enabled", enabled)) < 0 ||
        (*rc = tl__diag_put_bool(queue, "default", false)) < 0 ||
        (*rc = tl__diag_put_int(queue, "jobs_waiting", 0)) < 0) {
        *rc = *rc < 0 ? *rc : TL_ENOMEM;
        return NULL;
    }
    return queue;
}

static int parse_status(const char *text, json_t *section, json_t *queues, bool *truncated)
{
    int rc = 0;
    char *copy = strdup(text);
    char *save = NULL;
    json_t *last = NULL; /* the queue the indented lines that follow belong to */
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (line[0] == '\t' || line[0] == ' ') {
            /* The queue's state message comes first; other indented lines are left out. */
            const char *message = line + strspn(line, " \t");
            if (last && message[0] && !json_object_get(last, "message") &&
                (rc = tl__diag_put_text(last, "message", message)) < 0)
                break;
            continue;
        }
        last = NULL;
        if (strncmp(line, "printer ", 8) == 0) {
            last = parse_printer_line(line, queues, truncated, &rc);
            if (rc < 0)
                break;
        } else if (strncmp(line, "system default destination: ", 28) == 0) {
            const char *name = line + 28;
            if (name[0] && (rc = tl__diag_put_text(section, "default_printer", name)) < 0)
                break;
        } else if (strcmp(line, "no system default destination") == 0) {
            if ((rc = tl__diag_put_text(section, "default_printer", NULL)) < 0)
                break;
        }
    }
    free(copy);
    return rc;
}

/* `lpstat -o`: "QUEUE-ID USER SIZE DATE" per job; counted per queue and in all. */
static int parse_jobs(const char *text, json_t *queues, long long *total)
{
    char *copy = strdup(text);
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == ' ' || line[0] == '\t')
            continue; /* the details -l adds */
        line[strcspn(line, " \t\r")] = '\0';
        char *dash = strrchr(line, '-');
        if (!dash || dash == line || dash[1] == '\0' ||
            strspn(dash + 1, "0123456789") != strlen(dash + 1))
            continue;
        *dash = '\0';
        (*total)++;
        json_t *queue = queue_named(queues, line);
        long long waiting = json_integer_value(json_object_get(queue, "jobs_waiting"));
        if (queue && tl__diag_put_int(queue, "jobs_waiting", waiting + 1) < 0) {
            free(copy);
            return TL_ENOMEM;
        }
    }
    free(copy);
    return 0;
}

int tl__probe_printers_parse(const char *status_text, const char *jobs_text, json_t *section)
{
    int rc;
    bool truncated = false;
    long long jobs = 0;
    json_t *queues = json_array();
    if (!queues)
        return TL_ENOMEM;
    if ((rc = parse_status(status_text ? status_text : "", section, queues, &truncated)) < 0)
        goto out;
    if (jobs_text && (rc = parse_jobs(jobs_text, queues, &jobs)) < 0)
        goto out;
    const char *default_name = json_string_value(json_object_get(section, "default_printer"));
    json_t *default_queue = default_name ? queue_named(queues, default_name) : NULL;
    if (default_queue && (rc = tl__diag_put_bool(default_queue, "default", true)) < 0)
        goto out;
    if ((rc = tl__diag_put_int(section, "queue_count", (long long)json_array_size(queues))) < 0 ||
        (jobs_text && (rc = tl__diag_put_int(section, "jobs_waiting", jobs)) < 0) ||
        (truncated && (rc = tl__diag_put_bool(section, "queues_truncated", true)) < 0))
        goto out;
    if (!json_object_get(section, "default_printer") &&
        (rc = tl__diag_put_text(section, "default_printer", NULL)) < 0)
        goto out;
    rc = json_object_set(section, "queues", queues) == 0 ? 0 : TL_ENOMEM;
out:
    json_decref(queues);
    return rc;
}

/* Whether lpstat's complaint means the scheduler is not there to answer. */
static bool scheduler_down(const struct tl__diag_command *command)
{
    const char *errors = command->errors ? command->errors : "";
    return strstr(errors, "not running") || strstr(errors, "Unable to connect") ||
           strstr(errors, "Connection refused") || strstr(errors, "No such file or directory");
}

/* lpstat says so, with status 1, when there is no queue at all: that is an answer. */
static bool no_destinations(const struct tl__diag_command *command)
{
    return command->errors && strstr(command->errors, "No destinations added");
}

int tl__probe_printers_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char path[512], why[300];
    if (tl__diag_find_program("lpstat", path, sizeof path) < 0)
        return tl__diag_put_text(section, "status", "cups not installed");
    static const char *const status_argv[] = {"lpstat", "-p", "-d", NULL};
    static const char *const jobs_argv[] = {"lpstat", "-o", NULL};
    struct tl__diag_command status, jobs;
    memset(&jobs, 0, sizeof jobs);
    rc = tl__diag_command_run(status_argv, tl__diag_command_budget(diag, COMMAND_TIMEOUT_MS),
                              MAX_OUTPUT, &status);
    if (rc < 0)
        return tl__diag_fail(section, rc, "cannot run lpstat: %s", tl_strerror(rc));
    if (!status.timed_out && status.exit_status != 0 && scheduler_down(&status)) {
        tl__diag_command_describe(&status, why, sizeof why);
        if ((rc = tl__diag_put_text(section, "status", "cups not running")) == 0)
            rc = tl__diag_put_text(section, "reason", why);
        goto out;
    }
    if (status.timed_out || (status.exit_status != 0 && !no_destinations(&status))) {
        tl__diag_command_describe(&status, why, sizeof why);
        rc = tl__diag_fail(section, TL_EIO, "lpstat -p -d: %s", why);
        goto out;
    }
    rc = tl__diag_command_run(jobs_argv, tl__diag_command_budget(diag, COMMAND_TIMEOUT_MS),
                              MAX_OUTPUT, &jobs);
    bool jobs_ok = rc == 0 && !jobs.timed_out && jobs.exit_status == 0;
    if (rc == 0 && !jobs_ok) {
        tl__diag_command_describe(&jobs, why, sizeof why);
    } else if (rc < 0) {
        snprintf(why, sizeof why, "%s", tl_strerror(rc));
    }
    if ((rc = tl__diag_put_text(section, "status", "cups running")) < 0 ||
        (rc = tl__probe_printers_parse(status.output, jobs_ok ? jobs.output : NULL, section)) < 0)
        goto out;
    if (!jobs_ok && (rc = tl__diag_put_text(section, "jobs_error", why)) < 0)
        goto out;
    if ((status.output_truncated || (jobs_ok && jobs.output_truncated)) &&
        (rc = tl__diag_put_bool(section, "truncated", true)) < 0)
        goto out;
out:
    tl__diag_command_clear(&status);
    tl__diag_command_clear(&jobs);
    return rc;
}
