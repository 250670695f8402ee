/*
 * Growing arrays of structs or pointers: the one place that doubles a
 * capacity, checks the size arithmetic and keeps under a cap.
 *
 * Bytes and text grow in a tl_buf (proto/buf.h). An array of items that its
 * owner indexes (a channel table, a list of processes, an argv) grows here:
 * the owner keeps the pointer and the capacity, and asks for room before it
 * stores an item.
 */
#ifndef TL_ARRAY_H
#define TL_ARRAY_H

#include <stddef.h>

/*
 * Makes room for at least need items of item_size bytes in the array whose
 * pointer is at items (a T **, passed as it is) and which has *cap items
 * allocated. Nothing happens when need <= *cap. Otherwise the array is
 * reallocated to twice *cap (first_cap when it has none yet), or need if
 * that is more, but never more than max_items; the new items are zeroed.
 * 0 when there is room; TL_EFULL when need is over max_items; TL_ENOMEM
 * when the size does not fit a size_t or there is no memory. On failure
 * the array and *cap are as they were.
 */
int tl_array_grow(void *items, size_t *cap, size_t need, size_t item_size, size_t first_cap,
                  size_t max_items);

#endif
