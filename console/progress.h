/*
 * A one-line progress bar for downloads, drawn on a terminal (stderr):
 * bytes so far, the total, percent, a bar and the average rate. Redrawn at
 * most every TL_PROGRESS_INTERVAL_MS (the first update always draws), and
 * erased by tl_progress_clear() before anything else is written to the same
 * terminal and by tl_progress_free() at the end, so it never mixes with
 * other output and leaves nothing behind.
 */
#ifndef TL_CONSOLE_PROGRESS_H
#define TL_CONSOLE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define TL_PROGRESS_INTERVAL_MS 100

typedef struct tl_progress tl_progress_t;

/* A bar on fd for a transfer of total bytes (0: unknown); NULL when out of memory. */
tl_progress_t *tl_progress_new(int fd, uint64_t total);
/* done bytes have arrived; redraws if the interval has passed. */
void tl_progress_update(tl_progress_t *progress, uint64_t done);
/* Erases the bar (the next update draws it again). */
void tl_progress_clear(tl_progress_t *progress);
/* Erases the bar and frees it; NULL is a no-op. */
void tl_progress_free(tl_progress_t *progress);

/*
 * The bar's text for width columns, without the leading "\r" and erase:
 * e.g. "  1.5 MiB / 4.0 MiB  37% [=======>            ]  12.0 MiB/s".
 * elapsed_ms 0 shows no rate. Always NUL-terminated.
 */
void tl_progress_format(char *out, size_t size, uint64_t done, uint64_t total, uint64_t elapsed_ms,
                        int width);

#endif
