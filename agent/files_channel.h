/*
 * The agent's end of `file` channels (docs/protocol.md §7.16): one file of
 * the machine read (pull) or written (push) under a grant with scope
 * `files`, through agent/files.h (no link on the path, regular files only,
 * a write to a temporary file renamed over the name only at the end).
 *
 * Pull: the file's bytes go out in order as channel data, at most
 * TL_FILE_CHANNEL_CHUNK per loop turn and only within the channel's window,
 * then EOF and CLOSE with exit status 0 (or the error's code, e.g. EFULL past
 * the byte limit, EIO). Push: channel data is written as it comes (each
 * piece is at most the channel's packet size) and reported consumed once
 * written; the relay's EOF makes the file complete: it is synced and renamed
 * on a libuv worker, and the channel closes with exit status 0 or the
 * error's code. A refused, over-limit or abandoned write (the relay closes,
 * the grant ends, the connection goes) removes the temporary file.
 *
 * The agent checks its own limits whatever the relay does: bytes per file,
 * files per grant (counted from the agent's start).
 */
#ifndef TL_AGENT_FILES_CHANNEL_H
#define TL_AGENT_FILES_CHANNEL_H

#include "proto/mux.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tl_file_channels tl_file_channels_t;

/* Bytes read from a file per loop turn. */
#define TL_FILE_CHANNEL_CHUNK (64u * 1024u)
/* The agent's own limits (docs/protocol.md §5). */
#define TL_FILE_CHANNEL_MAX_BYTES (64ull * 1024u * 1024u)
#define TL_FILE_CHANNEL_MAX_FILES 1000u

typedef struct tl_file_limits {
    uint64_t max_bytes; /* per file; 0: TL_FILE_CHANNEL_MAX_BYTES */
    uint32_t max_files; /* per grant; 0: TL_FILE_CHANNEL_MAX_FILES */
} tl_file_limits_t;

/* NULL out of memory. limits may be NULL (the defaults). */
tl_file_channels_t *tl_file_channels_new(uv_loop_t *loop, const tl_file_limits_t *limits);
/* Drops every transfer (written files removed); the memory goes from the loop. NULL: no-op. */
void tl_file_channels_free(tl_file_channels_t *files);

/*
 * A `file` channel the grant (id grant, push allowed or not) already allowed: 0 when the
 * file is open and the channel confirmed; otherwise an error (TL_EINVAL bad parameters or
 * not a regular file, TL_EDENIED a link on the path, the system's permissions or a push under
 * a pull-only grant, TL_ENOTFOUND, TL_EFULL a limit, TL_EIO) with a line in message, and the
 * caller refuses the channel.
 */
int tl_file_channels_open(tl_file_channels_t *files, tl_mux_t *mux, uint32_t channel,
                          json_t *params, const char *grant, bool push_allowed, char *message,
                          size_t message_size);
/* 1 when channel is one of ours. */
int tl_file_channels_has(const tl_file_channels_t *files, uint32_t channel);
void tl_file_channels_data(tl_file_channels_t *files, uint32_t channel, const uint8_t *data,
                           size_t len);
void tl_file_channels_eof(tl_file_channels_t *files, uint32_t channel);
void tl_file_channels_writable(tl_file_channels_t *files, uint32_t channel);
/* The channel is gone (both CLOSEs): an unfinished write is removed. */
void tl_file_channels_closed(tl_file_channels_t *files, uint32_t channel);
/* The grant ended: its transfers end (closed with ECLOSED); returns how many. */
size_t tl_file_channels_end_grant(tl_file_channels_t *files, const char *grant);
/* The connection is gone: every transfer is dropped. */
void tl_file_channels_disconnected(tl_file_channels_t *files);

#endif
