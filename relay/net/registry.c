/* Enrolled devices as the loop sees them: key fingerprint -> device id (relay/net/registry.h). */
#include "relay/net/registry.h"
#include "proto/err.h"
#include "proto/keys.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    char fingerprint[TL_FINGERPRINT_LEN];
    int64_t device_id; /* 0: empty slot */
};

/* Open addressing with linear probing; kept under half full. */
struct tl_registry {
    struct entry *slots;
    size_t capacity; /* a power of two */
    size_t count;
};

static size_t hash_text(const char *text)
{
    size_t h = 1469598103934665603ull;
    for (; *text; text++)
        h = (h ^ (unsigned char)*text) * 1099511628211ull;
    return h;
}

tl_registry_t *tl_registry_new(void)
{
    tl_registry_t *registry = calloc(1, sizeof *registry);
    if (registry == NULL)
        return NULL;
    registry->capacity = 64;
    registry->slots = calloc(registry->capacity, sizeof *registry->slots);
    if (registry->slots == NULL) {
        free(registry);
        return NULL;
    }
    return registry;
}

void tl_registry_free(tl_registry_t *registry)
{
    if (registry == NULL)
        return;
    free(registry->slots);
    free(registry);
}

static struct entry *probe(struct entry *slots, size_t capacity, const char *fingerprint)
{
    size_t i = hash_text(fingerprint) & (capacity - 1);
    while (slots[i].device_id != 0 && strcmp(slots[i].fingerprint, fingerprint) != 0)
        i = (i + 1) & (capacity - 1);
    return &slots[i];
}

static int grow(tl_registry_t *registry)
{
    size_t capacity = registry->capacity * 2;
    struct entry *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < registry->capacity; i++) {
        if (registry->slots[i].device_id != 0)
            *probe(slots, capacity, registry->slots[i].fingerprint) = registry->slots[i];
    }
    free(registry->slots);
    registry->slots = slots;
    registry->capacity = capacity;
    return 0;
}

int tl_registry_add(tl_registry_t *registry, const char *fingerprint, int64_t device_id)
{
    if (fingerprint == NULL || !tl_fingerprint_valid(fingerprint) || device_id <= 0)
        return TL_EINVAL;
    if ((registry->count + 1) * 2 > registry->capacity) {
        int rc = grow(registry);
        if (rc != 0)
            return rc;
    }
    struct entry *slot = probe(registry->slots, registry->capacity, fingerprint);
    if (slot->device_id == 0)
        registry->count++;
    strcpy(slot->fingerprint, fingerprint);
    slot->device_id = device_id;
    return 0;
}

int64_t tl_registry_find(const tl_registry_t *registry, const char *fingerprint)
{
    if (fingerprint == NULL || !tl_fingerprint_valid(fingerprint))
        return 0;
    return probe(registry->slots, registry->capacity, fingerprint)->device_id;
}

size_t tl_registry_count(const tl_registry_t *registry)
{
    return registry->count;
}

int tl_registry_adopt(tl_registry_t *registry, tl_registry_t *loaded)
{
    /* Registry's entries go into loaded (usually the few, into the many), then the tables swap. */
    for (size_t i = 0; i < registry->capacity; i++) {
        const struct entry *own = &registry->slots[i];
        if (own->device_id == 0)
            continue;
        if ((loaded->count + 1) * 2 > loaded->capacity && grow(loaded) != 0)
            return TL_ENOMEM;
        struct entry *slot = probe(loaded->slots, loaded->capacity, own->fingerprint);
        if (slot->device_id == 0)
            loaded->count++;
        *slot = *own;
    }
    struct entry *slots = registry->slots;
    size_t capacity = registry->capacity;
    registry->slots = loaded->slots;
    registry->capacity = loaded->capacity;
    registry->count = loaded->count;
    loaded->slots = slots;
    loaded->capacity = capacity;
    tl_registry_free(loaded);
    return 0;
}
