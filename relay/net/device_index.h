/*
 * Live connections by device id: which connection is a device's, in constant
 * time, so that a reconnect storm of N agents costs N lookups rather than N
 * walks of every connection (N² at 100,000 agents).
 *
 * Keys are device ids (> 0); values are the owner's pointers, never freed
 * here. Open addressing with linear probing, kept under half full, and
 * removal by shifting the run back, so no tombstones pile up. Loop thread
 * only.
 */
#ifndef TL_DEVICE_INDEX_H
#define TL_DEVICE_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_device_index tl_device_index_t;

tl_device_index_t *tl_device_index_new(void);
/* NULL is a no-op. */
void tl_device_index_free(tl_device_index_t *index);
/* Adds or replaces; TL_EINVAL for an id <= 0 or a NULL value, TL_ENOMEM. */
int tl_device_index_set(tl_device_index_t *index, int64_t device_id, void *value);
/* The value, or NULL. */
void *tl_device_index_get(const tl_device_index_t *index, int64_t device_id);
/* Removes the id if present. */
void tl_device_index_remove(tl_device_index_t *index, int64_t device_id);
size_t tl_device_index_count(const tl_device_index_t *index);

#endif
