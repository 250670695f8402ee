/*
 * The relay's command list, kept on disk per relay and user (docs/console.md
 * "The relay's commands"): what the relay's `help --json` answered, with
 * whom it answered and when, so that help, usage lines and a command's
 * --help need no connection.
 *
 * One file per relay and user, $XDG_CACHE_HOME/tierline/commands-USER@HOST-
 * PORT.json (~/.cache/tierline/... without XDG_CACHE_HOME), a JSON object:
 *
 *     {"version": 1, "relay": HOST, "port": PORT, "user": USER,
 *      "fetched_ms": MS, "help": <the relay's help --json, as it came>}
 *
 * written whole or not at all (proto/fsutil.h, tl_fs_write_atomic) in a
 * directory of mode 0700. Reading trusts nothing: the file is read only if
 * it is a regular file of ours, not a symbolic link, at most
 * TL_COMMAND_CACHE_MAX_BYTES, and used only if it is that object for the same
 * relay, port and user and its "help" passes console/command_list.h's
 * checks; anything else is refused with the reason, and the caller asks the
 * relay again.
 */
#ifndef TL_CONSOLE_COMMAND_CACHE_H
#define TL_CONSOLE_COMMAND_CACHE_H

#include "console/command_list.h"

#include <stddef.h>
#include <stdint.h>

/* The relay's document and what the cache adds around it. */
#define TL_COMMAND_CACHE_MAX_BYTES (TL_COMMAND_LIST_MAX_BYTES + 4096u)
/* A list younger than this answers `tierline help` without asking the relay. */
#define TL_COMMAND_CACHE_FRESH_MS (60 * 60 * 1000)
#define TL_COMMAND_CACHE_VERSION 1

/*
 * The cache file for user at host:port. In the name, every byte of user and
 * host other than A-Z a-z 0-9 . _ - is written %XX, so no two relays or users
 * share a file and none can name a path; a name that would be too long for a
 * file system is commands-SHA256.json instead (of "USER@HOST:PORT").
 * TL_EINVAL if there is no home directory, TL_EFULL if size is too small.
 */
int tl_command_cache_path(const char *host, unsigned port, const char *user, char *out,
                          size_t size);

/*
 * The cache file's text, bytes in: 0 with *list and *fetched_ms when it is
 * a cache of host:port for user; TL_EINVAL (or TL_EFULL) with the reason in
 * why otherwise.
 */
int tl_command_cache_parse(const void *data, size_t len, const char *host, unsigned port,
                           const char *user, tl_command_list_t **list, int64_t *fetched_ms,
                           char *why, size_t why_size);

/*
 * Reads the cache file at path and parses it as above. -ENOENT when there is
 * none (why untouched); otherwise 0, or a code with the reason in why: a
 * link, not a regular file, someone else's, too large, unreadable, not valid.
 */
int tl_command_cache_load(const char *path, const char *host, unsigned port, const char *user,
                          tl_command_list_t **list, int64_t *fetched_ms, char *why,
                          size_t why_size);

/*
 * Replaces the cache file at path with list's document, fetched at
 * fetched_ms for user at host:port, making its directory if needed. 0, or a
 * code with "PATH: what" in why.
 */
int tl_command_cache_store(const char *path, const char *host, unsigned port, const char *user,
                           const tl_command_list_t *list, int64_t fetched_ms, char *why,
                           size_t why_size);

#endif
