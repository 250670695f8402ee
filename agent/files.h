/*
 * Files on this machine as a technician's grant with scope `files` may touch
 * them (docs/protocol.md §7.16 "On the machine"): the agent's own checks,
 * whatever the relay asked.
 *
 * A path must pass tl_sftp_machine_path_check (absolute, normalised, no
 * control characters). It is then walked one component at a time from "/",
 * each directory opened with O_NOFOLLOW, so a symbolic link anywhere on the
 * path is refused (TL_EDENIED), as openat2's RESOLVE_NO_SYMLINKS would: a
 * link cannot lead a read or a write out of the place the path names.
 * Reads take regular files only. A write never touches the named file until
 * it is complete: the bytes go to a new temporary file beside it (created
 * with O_EXCL, never through a link), which replaces the name only at
 * tl_files_write_commit(); an abandoned or refused write leaves nothing.
 *
 * Errors: TL_EINVAL (a path the check refuses, or not a regular file),
 * TL_EDENIED (a symbolic link on the path, or the system's permissions),
 * TL_ENOTFOUND (no such file or directory), TL_EFULL (over the byte limit),
 * TL_EIO (anything else, logged).
 */
#ifndef TL_AGENT_FILES_H
#define TL_AGENT_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A regular file opened for reading, O_CLOEXEC; *st describes it. */
int tl_files_open_read(const char *path, int *fd, struct stat *st);

/* The longest name a listing shows (NAME_MAX). */
#define TL_FILES_MAX_NAME 255

/* What path is, without following it: a link is described as a link. "/" is allowed. */
int tl_files_stat(const char *path, struct stat *st);

/*
 * Calls each for every entry of the directory path (opened as above), but
 * "." and "..", names with a control character, longer than
 * TL_FILES_MAX_NAME or not UTF-8; *st describes the entry without
 * following it. each returns 0 to go on, 1 to stop (a success), or an error,
 * which is returned.
 */
typedef int (*tl_files_entry_fn)(void *data, const char *name, const struct stat *st);
int tl_files_list(const char *path, tl_files_entry_fn each, void *data);

/* A file being written. */
typedef struct tl_files_write tl_files_write_t;

/*
 * Starts writing path (its directory must exist; the file may or may not),
 * at most max_bytes in all. An existing path that is not a regular file
 * (a directory, a link, a device) is refused now.
 */
int tl_files_write_begin(const char *path, uint32_t mode, uint64_t max_bytes,
                         tl_files_write_t **out);
/* Appends; TL_EFULL (and nothing more written) past max_bytes. */
int tl_files_write_data(tl_files_write_t *write, const void *data, size_t len);
uint64_t tl_files_write_size(const tl_files_write_t *write);
/* Syncs the bytes and puts them under the path; the writer is freed either way. */
int tl_files_write_commit(tl_files_write_t *write);
/* Drops what was written; NULL is a no-op. */
void tl_files_write_abort(tl_files_write_t *write);

#endif
