/*
 * Fuzz target for the diagnostics probes' parsers (agent/probe_*.c,
 * docs/diagnostics.md): /etc/os-release, /proc/net/route and ipv6_route,
 * resolv.conf, `systemctl --failed` output, log text and /proc/net/tcp-style
 * socket tables. Anyone with write access to a log, and the programs whose
 * output is read, choose these bytes.
 *
 * The first input byte picks the parser, the rest is its text (for routes:
 * the IPv4 table, a NUL byte, the IPv6 table). Whatever the parser keeps
 * must be JSON that dumps (valid UTF-8 strings), logs at most 50 lines of at
 * most 1 KiB plus "...", sockets no more than asked for.
 */
#include "agent/diag.h"
#include "proto/err.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_dumps(json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        abort();
    free(text);
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
    json_t *out = NULL;
    int rc = 0;
    switch (which % 7) {
    case 0:
        out = json_object();
        rc = tl__probe_system_parse_os_release(text, out);
        break;
    case 1: {
        out = json_array();
        const char *ipv6 = text + strlen(text) + (strlen(text) < size ? 1 : 0);
        rc = tl__probe_network_parse_routes(text, ipv6, out);
        break;
    }
    case 2:
        out = json_object();
        rc = tl__probe_network_parse_resolv_conf(text, out);
        break;
    case 3:
        out = json_array();
        rc = tl__probe_services_parse_failed(text, out);
        break;
    case 4:
    case 5: {
        out = json_object();
        bool truncated = false;
        /* The exact bytes, not NUL-terminated: the parser must not read past them. */
        char *exact = malloc(size ? size : 1);
        if (exact == NULL)
            abort();
        memcpy(exact, data, size);
        rc =
            tl__probe_logs_parse(exact, size, (which & 8) != 0, (which & 16) != 0, out, &truncated);
        free(exact);
        if (rc >= 0) {
            json_t *lines = json_object_get(out, "lines");
            if ((size_t)rc != json_array_size(lines) || rc > 50)
                abort();
            size_t i;
            json_t *line;
            json_array_foreach(lines, i, line)
            {
                if (!json_is_string(line) || json_string_length(line) > 1024 + 3)
                    abort();
            }
            rc = 0;
        }
        break;
    }
    case 6: {
        static const char *const protocols[] = {"tcp", "tcp6", "udp", "udp6"};
        size_t max = (size_t)(which >> 3) % 8 + 1;
        out = json_array();
        rc = tl__probe_sockets_parse(text, protocols[(which >> 6) & 3], out, max);
        if (json_array_size(out) > max || (rc == TL_EFULL && json_array_size(out) != max))
            abort();
        if (rc == TL_EFULL)
            rc = 0;
        break;
    }
    }
    if (out == NULL)
        abort();
    if (rc != 0 && rc != TL_EINVAL && rc != TL_ENOMEM)
        abort();
    check_dumps(out);
    json_decref(out);
    free(text);
    return 0;
}
