/*
 * Fuzz target for the triage probes' parsers (agent/probe_*.c, docs/diagnostics.md
 * §5.11-5.18): the output of lpstat, /proc/net/wireless, iw, nmcli, dpkg-query, apt, rpm and
 * dmesg, /dev/kmsg records, /proc/PID/stat and login records. The tools print what their
 * users and the machine's devices put there: printer messages, network names, package names,
 * kernel messages.
 *
 * The first input byte picks the parser (modulo 12), the rest is its input: for printers the
 * `lpstat -p -d` text, a NUL byte, the `lpstat -o` text; for dmesg, bit 4 of the first byte
 * says the text starts inside a line; for kmsg, its bits 4-7 pick the line buffer's size; for
 * login records, the bytes are struct utmpx records, whole ones only. Whatever a parser keeps
 * must dump as JSON (valid UTF-8) within its bounds: at most 64 queues, 16 interfaces, 100
 * package names, 256 sessions, 50 lines of at most 1 KiB plus "...", counts never negative.
 */
#include "agent/diag.h"
#include "proto/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utmpx.h>

static void check_dumps(const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        abort();
    free(text);
}

static void check_size(const json_t *object, const char *key, size_t max)
{
    const json_t *value = json_object_get(object, key);
    if (value != NULL && (!json_is_array(value) || json_array_size(value) > max))
        abort();
}

static void check_count(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);
    if (value != NULL && (!json_is_integer(value) || json_integer_value(value) < 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t which = data[0];
    data++;
    size--;
    char *text = malloc(size + 1);
    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    const char *second = text + strlen(text) + (strlen(text) < size ? 1 : 0);
    json_t *out = json_object();
    json_t *list = json_array();
    if (out == NULL || list == NULL)
        abort();
    int rc = 0;
    switch (which % 12) {
    case 0:
        rc = tl__probe_printers_parse(text, (which & 16) ? NULL : second, out);
        check_size(out, "queues", 64);
        check_count(out, "jobs_waiting");
        break;
    case 1:
        rc = tl__probe_wifi_parse_proc(text, list);
        break;
    case 2:
        rc = tl__probe_wifi_parse_iw_dev(text, list);
        break;
    case 3:
        rc = tl__probe_wifi_parse_iw_link(text, out);
        break;
    case 4:
        rc = tl__probe_wifi_parse_nmcli(text, list);
        break;
    case 5:
        rc = tl__probe_packages_parse_dpkg(text, out);
        check_count(out, "installed_count");
        check_count(out, "broken_count");
        break;
    case 6:
        rc = tl__probe_packages_parse_apt(text, out);
        check_size(out, "upgradable", 100);
        if (rc == 0 && json_integer_value(json_object_get(out, "security_upgradable_count")) >
                           json_integer_value(json_object_get(out, "upgradable_count")))
            abort();
        break;
    case 7:
        rc = tl__probe_packages_parse_rpm(text, out);
        check_count(out, "installed_count");
        break;
    case 8: {
        /* The exact bytes, not NUL-terminated: the parser must not read past them. */
        char *exact = malloc(size ? size : 1);
        if (exact == NULL)
            abort();
        memcpy(exact, data, size);
        rc = tl__probe_kernel_parse_dmesg(exact, size, (which & 16) != 0, out);
        free(exact);
        check_size(out, "lines", 50);
        check_count(out, "error_count");
        check_count(out, "warning_count");
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(out, "lines"), i, line) {
            if (!json_is_string(line) || json_string_length(line) > 1024 + 3)
                abort();
        }
        break;
    }
    case 9: {
        size_t line_size = (size_t)(which >> 4) * 16 + 2;
        char *record = malloc(size ? size : 1), *line = malloc(line_size);
        if (record == NULL || line == NULL)
            abort();
        memcpy(record, data, size);
        size_t n = tl__probe_kernel_kmsg_line(record, size, line, line_size);
        if (n >= line_size || (n > 0 && strlen(line) != n))
            abort();
        free(record);
        free(line);
        break;
    }
    case 10: {
        long long ticks = -1;
        rc = tl__probe_agent_parse_stat(text, &ticks);
        if (rc == 0 && ticks < 0)
            abort();
        break;
    }
    case 11: {
        size_t count = size / sizeof(struct utmpx);
        struct utmpx *records = calloc(count ? count : 1, sizeof *records);
        if (records == NULL)
            abort();
        memcpy(records, data, count * sizeof *records);
        rc = tl__probe_users_parse(records, count, out);
        free(records);
        check_size(out, "sessions", 256);
        check_count(out, "session_count");
        break;
    }
    }
    if (json_array_size(list) > TL__WIFI_MAX_INTERFACES)
        abort();
    if (rc != 0 && rc != TL_EINVAL && rc != TL_ENOMEM)
        abort();
    check_dumps(out);
    check_dumps(list);
    json_decref(out);
    json_decref(list);
    free(text);
    return 0;
}
