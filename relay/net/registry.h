/*
 * The loop's view of enrolled devices: agent key fingerprint -> device id.
 *
 * The store is the truth; this is its in-memory index so that deciding who
 * a connecting agent is never waits on the disk. Loaded at start, updated
 * when an enrollment commits. Loop thread only.
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

#endif
