/*
 * Small durable-file helpers shared by everything that must survive a crash
 * (relay store files, audit log, evidence, the agent's outbox).
 */
#ifndef TL_FSUTIL_H
#define TL_FSUTIL_H

#include <stddef.h>

/* Writes all of data, retrying short writes and EINTR; 0 or -errno. */
int tl_write_all(int fd, const void *data, size_t len);
/* Reads fd to its end into buf, which holds max + 1 bytes, and sets *len;
 * retries EINTR. 0, TL_EFULL if there is more than max bytes (buf then holds
 * max + 1 of them), or -errno. */
int tl_read_capped(int fd, char *buf, size_t max, size_t *len);
/* fsyncs a directory, so a rename or create inside it is durable; 0 or -errno. */
int tl_fsync_dir(const char *path);

#endif
