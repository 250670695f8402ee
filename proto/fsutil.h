/*
 * Small file helpers shared by everything that must survive a crash (relay
 * store files, audit log, evidence, the agent's outbox and state) or reads
 * a whole small file (keys, settings, policies, catalogues): one copy of
 * each, here.
 */
#ifndef TL_FSUTIL_H
#define TL_FSUTIL_H

#include <stddef.h>
#include <sys/stat.h>

/* Writes all of data, retrying short writes and EINTR; 0 or -errno. */
int tl_write_all(int fd, const void *data, size_t len);
/* Reads fd to its end into buf, which holds max + 1 bytes, and sets *len;
 * retries EINTR. 0, TL_EFULL if there is more than max bytes (buf then holds
 * max + 1 of them), or -errno. */
int tl_read_capped(int fd, char *buf, size_t max, size_t *len);
/* fsyncs a directory, so a rename or create inside it is durable; 0 or -errno. */
int tl_fsync_dir(const char *path);
/* The directory that holds path: "." for a bare name, "/" at the root. TL_EINVAL if it does not
 * fit. */
int tl_fs_parent_dir(const char *path, char *out, size_t size);

/*
 * A folder Tierline ships, found as the programs find it (docs/architecture.md): NAME under
 * share/tierline beside the running program's bin/ (installed, or a build's staged copy), else
 * staged, a build's own folder compiled in (may be NULL). The resolved path goes to out.
 * 0, TL_ENOTFOUND if neither is a directory, or TL_EINVAL if it does not fit.
 */
int tl_fs_shared_dir(const char *name, const char *staged, char *out, size_t size);

/* tl_fs_write_atomic flags. */
#define TL_FS_SYNC 0x1     /* fsync the file before the rename: its bytes survive a crash */
#define TL_FS_SYNC_DIR 0x2 /* fsync the directory after the rename: so does the rename */
#define TL_FS_NOFOLLOW 0x4 /* refuse a symbolic link where the temporary file goes */

/* Which step of tl_fs_write_atomic failed, for a message that names the right file. */
enum tl_fs_step {
    TL_FS_STEP_TEMP,   /* creating, writing or syncing PATH.tmp */
    TL_FS_STEP_RENAME, /* renaming it over PATH */
    TL_FS_STEP_DIR,    /* syncing the directory: PATH is already the new file */
};

/*
 * Replaces the file at path with len bytes of data so that a reader sees the
 * old file or the new one, never a part: the bytes go to PATH.tmp beside it
 * (created or truncated, mode 0600), which is then renamed over path. With
 * TL_FS_SYNC | TL_FS_SYNC_DIR the new file survives a crash once this returns
 * 0 (docs/architecture.md "Durability"). On failure before the rename, path
 * is untouched and PATH.tmp removed. 0, -errno, or TL_EINVAL for a path too
 * long; *failed_step (may be NULL) says which step failed.
 */
int tl_fs_write_atomic(const char *path, const void *data, size_t len, unsigned flags,
                       enum tl_fs_step *failed_step);

/* tl_fs_read_file flags. */
#define TL_FS_READ_NOFOLLOW 0x1 /* refuse a symbolic link at path */
#define TL_FS_READ_ANY_TYPE 0x2 /* read what is there to its end: /dev/null, a pipe... */

/* A caller's own check of the opened file (owner, mode): 0 to read it, or a code to refuse. */
typedef int (*tl_fs_check_fn)(const struct stat *st, void *arg);

/*
 * Reads the whole file at path, at most max bytes, into *out (malloc'd and
 * NUL-terminated; *out_len bytes before the NUL; the caller frees it). The
 * file is opened with O_NONBLOCK, so a FIFO planted at path cannot hang the
 * caller. check (may be NULL) sees the open file's stat first and may refuse
 * it with its own code. Then a file that is not regular is TL_EINVAL (unless
 * TL_FS_READ_ANY_TYPE), and one over max bytes, when opened or by the end of
 * the read, is TL_EFULL: a file is read whole or not at all. -errno when it
 * cannot be opened or read. On failure *out is NULL and the bytes read are
 * wiped (key files pass through here).
 */
int tl_fs_read_file(const char *path, size_t max, unsigned flags, tl_fs_check_fn check, void *arg,
                    char **out, size_t *out_len);

/*
 * Raises the open-file limit so that want descriptors fit: the soft limit
 * up to want, and the hard limit too when it is lower and the process may
 * (CAP_SYS_RESOURCE, up to /proc/sys/fs/nr_open). Returns the soft limit
 * now in force (UINT64_MAX: unlimited); below want when it could not.
 */
unsigned long long tl_fs_raise_fd_limit(unsigned long long want);

#endif
