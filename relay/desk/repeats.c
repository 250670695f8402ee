/* Diagnostics that would repeat an earlier, identical run (relay/desk/repeats.h). */
#include "relay/desk/repeats.h"

#include <string.h>

long tl_repeat_find(const tl_repeat_item_t *items, size_t count, const char *probes, int64_t now_ms)
{
    long found = -1;
    for (size_t i = 0; probes != NULL && i < count; i++) {
        const tl_evidence_row_t *item = items[i].evidence;
        if (item == NULL || items[i].probes == NULL || strcmp(items[i].probes, probes) != 0 ||
            item->kind == NULL || strcmp(item->kind, "diagnostics") != 0)
            continue;
        if (item->created > now_ms || item->created < now_ms - TL_REPEAT_WINDOW_MS)
            continue;
        if (found < 0 || item->created >= items[found].evidence->created)
            found = (long)i;
    }
    return found;
}
