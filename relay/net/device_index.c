/* Live connections by device id (relay/net/device_index.h). */
#include "relay/net/device_index.h"
#include "proto/err.h"

#include <stdlib.h>

struct slot {
    int64_t device_id; /* 0: empty */
    void *value;
};

struct tl_device_index {
    struct slot *slots;
    size_t capacity; /* a power of two */
    size_t count;
};

static size_t home(const tl_device_index_t *index, int64_t device_id)
{
    /* Fibonacci hashing: consecutive ids land far apart. */
    return (size_t)(((uint64_t)device_id * 0x9E3779B97F4A7C15ull) >> 32) & (index->capacity - 1);
}

static size_t find(const tl_device_index_t *index, int64_t device_id)
{
    size_t i = home(index, device_id);
    while (index->slots[i].device_id != 0 && index->slots[i].device_id != device_id)
        i = (i + 1) & (index->capacity - 1);
    return i;
}

tl_device_index_t *tl_device_index_new(void)
{
    tl_device_index_t *index = calloc(1, sizeof *index);
    if (index == NULL)
        return NULL;
    index->capacity = 64;
    if ((index->slots = calloc(index->capacity, sizeof *index->slots)) == NULL) {
        free(index);
        return NULL;
    }
    return index;
}

void tl_device_index_free(tl_device_index_t *index)
{
    if (index == NULL)
        return;
    free(index->slots);
    free(index);
}

static int grow(tl_device_index_t *index)
{
    tl_device_index_t bigger = {calloc(index->capacity * 2, sizeof *index->slots),
                                index->capacity * 2, index->count};
    if (bigger.slots == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < index->capacity; i++)
        if (index->slots[i].device_id != 0)
            bigger.slots[find(&bigger, index->slots[i].device_id)] = index->slots[i];
    free(index->slots);
    *index = bigger;
    return 0;
}

int tl_device_index_set(tl_device_index_t *index, int64_t device_id, void *value)
{
    if (device_id <= 0 || value == NULL)
        return TL_EINVAL;
    if ((index->count + 1) * 2 > index->capacity && grow(index) != 0)
        return TL_ENOMEM;
    struct slot *slot = &index->slots[find(index, device_id)];
    if (slot->device_id == 0)
        index->count++;
    *slot = (struct slot){device_id, value};
    return 0;
}

void *tl_device_index_get(const tl_device_index_t *index, int64_t device_id)
{
    if (device_id <= 0)
        return NULL;
    return index->slots[find(index, device_id)].value;
}

void tl_device_index_remove(tl_device_index_t *index, int64_t device_id)
{
    if (device_id <= 0)
        return;
    size_t mask = index->capacity - 1;
    size_t hole = find(index, device_id);
    if (index->slots[hole].device_id == 0)
        return;
    index->count--;
    /* Move back every later entry of the run that may not stay behind the hole. */
    for (size_t next = (hole + 1) & mask; index->slots[next].device_id != 0;
         next = (next + 1) & mask) {
        size_t want = home(index, index->slots[next].device_id);
        /* It stays if its home lies cyclically in (hole, next]. */
        int stays = hole <= next ? (want > hole && want <= next) : (want > hole || want <= next);
        if (!stays) {
            index->slots[hole] = index->slots[next];
            hole = next;
        }
    }
    index->slots[hole] = (struct slot){0, NULL};
}

size_t tl_device_index_count(const tl_device_index_t *index)
{
    return index->count;
}
