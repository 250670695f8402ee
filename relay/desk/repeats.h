/*
 * Diagnostics that would repeat an earlier, identical run (docs/desk.md "Repeated diagnostics").
 * Before `diag` asks the user for consent, the relay looks for diagnostics taken on the same
 * machine within the last 24 hours with the same probes; when it finds one it warns the
 * technician and shows that earlier result (when, its evidence hash, who took it), so the next
 * tier reads what is there instead of asking the user again.
 *
 * Identical means: the same device (so the same ticket, and also the device's other tickets),
 * the same probe set, and taken at most TL_REPEAT_WINDOW_MS before now. Every diagnostics item
 * the relay holds today was made with the agent's whole probe set (neither `diag` nor
 * `tierline-agent help` chooses probes), written TL_REPEAT_PROBES_ALL; a request for other
 * probes would be compared by its own set.
 *
 * Pure: no I/O, no store, no clock.
 */
#ifndef TL_REPEATS_H
#define TL_REPEATS_H

#include "relay/store/store.h"

#include <stddef.h>
#include <stdint.h>

#define TL_REPEAT_WINDOW_MS (24LL * 60 * 60 * 1000)
#define TL_REPEAT_PROBES_ALL "all"

/* An earlier diagnostics item of the device and the probes it was made with. */
typedef struct tl_repeat_item {
    const tl_evidence_row_t *evidence; /* kind "diagnostics", on one of the device's tickets */
    const char *probes;                /* TL_REPEAT_PROBES_ALL today */
} tl_repeat_item_t;

/*
 * The index of the latest item identical to a new run of probes at now_ms: the same probe set,
 * created within [now_ms - TL_REPEAT_WINDOW_MS, now_ms]; -1 when there is none (a later item
 * wins; at the same time, the one given later).
 */
long tl_repeat_find(const tl_repeat_item_t *items, size_t count, const char *probes,
                    int64_t now_ms);

#endif
