#include "proto/array.h"
#include "proto/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tl_array_grow(void *items, size_t *cap, size_t need, size_t item_size, size_t first_cap,
                  size_t max_items)
{
    if (need <= *cap)
        return 0;
    if (need > max_items)
        return TL_EFULL;
    if (item_size == 0)
        return TL_EINVAL;
    /* The most items whose size a size_t can hold, or the cap if that is less. */
    size_t limit = SIZE_MAX / item_size < max_items ? SIZE_MAX / item_size : max_items;
    if (need > limit)
        return TL_ENOMEM;
    size_t grown_cap = *cap == 0 ? first_cap : *cap > limit / 2 ? limit : *cap * 2;
    if (grown_cap < need)
        grown_cap = need;
    if (grown_cap > limit)
        grown_cap = limit;
    /* items is a T **; every object pointer has the same representation here. */
    void *old;
    memcpy(&old, items, sizeof old);
    unsigned char *grown = realloc(old, grown_cap * item_size);
    if (grown == NULL)
        return TL_ENOMEM;
    memset(grown + *cap * item_size, 0, (grown_cap - *cap) * item_size);
    memcpy(items, &grown, sizeof grown);
    *cap = grown_cap;
    return 0;
}
