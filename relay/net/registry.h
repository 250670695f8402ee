/*
 * The loop's view of enrolled devices: agent key fingerprint -> device id.
 *
 * The store is the truth; this is its in-memory index so that deciding who
 * a connecting agent is never waits on the disk. Loaded by the storage
 * worker into a registry of its own while the relay already listens, then
 * adopted by the loop's (tl_registry_adopt()); updated when an enrollment
 * commits. A registry is used by one thread at a time: the loop's by the
 * loop only.
 */
#ifndef TL_REGISTRY_H
#define TL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_registry tl_registry_t;

tl_registry_t *tl_registry_new(void);
void tl_registry_free(tl_registry_t *registry);
/* Adds or replaces; TL_ENOMEM, TL_EINVAL for a malformed fingerprint. */
int tl_registry_add(tl_registry_t *registry, const char *fingerprint, int64_t device_id);
/* The device id, or 0 if the key is not enrolled. */
int64_t tl_registry_find(const tl_registry_t *registry, const char *fingerprint);
size_t tl_registry_count(const tl_registry_t *registry);
/*
 * Moves every entry of loaded into registry, keeping registry's own where both
 * name a key (they were added later: an enrollment that committed while loaded
 * was read), and frees loaded. On TL_ENOMEM registry is as it was and loaded is still the
 * caller's.
 */
int tl_registry_adopt(tl_registry_t *registry, tl_registry_t *loaded);

#endif
