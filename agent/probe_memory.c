/*
 * Probe "memory": totals, availability and swap from /proc/meminfo, in bytes.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>

/* /proc/meminfo keys we report (values in kB there), in report order, and their JSON names. */
enum { TOTAL, FREE, AVAILABLE, BUFFERS, CACHED, SHARED, SWAP_TOTAL, SWAP_FREE, KEY_COUNT };

static const struct {
    const char *key;
    const char *field;
} meminfo_keys[KEY_COUNT] = {
    [TOTAL] = {"MemTotal", "total_bytes"},
    [FREE] = {"MemFree", "free_bytes"},
    [AVAILABLE] = {"MemAvailable", "available_bytes"},
    [BUFFERS] = {"Buffers", "buffers_bytes"},
    [CACHED] = {"Cached", "cached_bytes"},
    [SHARED] = {"Shmem", "shared_bytes"},
    [SWAP_TOTAL] = {"SwapTotal", "swap_total_bytes"},
    [SWAP_FREE] = {"SwapFree", "swap_free_bytes"},
};

int tl__probe_memory_run(const tl_diag_t *diag, json_t *section)
{
    char *text = NULL;
    long long values[KEY_COUNT] = {0};
    bool found[KEY_COUNT] = {false};
    int rc = tl__diag_read_file("/proc/meminfo", 64 * 1024, &text, NULL);
    if (rc < 0)
        return tl__diag_fail(section, rc, "cannot read /proc/meminfo: %s", tl_strerror(rc));
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char key[64];
        long long kib;
        if (sscanf(line, "%63[^:]: %lld", key, &kib) != 2)
            continue;
        for (size_t k = 0; k < KEY_COUNT; k++) {
            if (strcmp(key, meminfo_keys[k].key) == 0) {
                values[k] = kib * 1024;
                found[k] = true;
            }
        }
    }
    free(text);
    if (!found[TOTAL] || values[TOTAL] <= 0)
        return tl__diag_fail(section, TL_EMSG_MALFORMED, "/proc/meminfo has no MemTotal line");
    for (size_t k = 0; k < KEY_COUNT; k++)
        if (found[k] && (rc = tl__diag_put_int(section, meminfo_keys[k].field, values[k])) < 0)
            return rc;
    if (found[AVAILABLE]) {
        long long used = values[TOTAL] - values[AVAILABLE];
        if ((rc = tl__diag_put_int(section, "used_bytes", used)) < 0 ||
            (rc = tl__diag_put_real(section, "used_percent",
                                    100.0 * (double)used / (double)values[TOTAL])) < 0)
            return rc;
    }
    if (found[SWAP_TOTAL] && found[SWAP_FREE]) {
        long long used = values[SWAP_TOTAL] - values[SWAP_FREE];
        if ((rc = tl__diag_put_int(section, "swap_used_bytes", used)) < 0)
            return rc;
        if (values[SWAP_TOTAL] > 0 &&
            (rc = tl__diag_put_real(section, "swap_used_percent",
                                    100.0 * (double)used / (double)values[SWAP_TOTAL])) < 0)
            return rc;
    }
    return 0;
}
