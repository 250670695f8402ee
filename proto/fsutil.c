#include "proto/fsutil.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A read of a file that turned out longer than its size said. */
#define READ_CHUNK 65536

int tl_write_all(int fd, const void *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

int tl_read_capped(int fd, char *buf, size_t max, size_t *len)
{
    *len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + *len, max + 1 - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        *len += (size_t)n;
        if (*len > max)
            return TL_EFULL;
    }
}

int tl_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int tl_fs_parent_dir(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    int rc;
    if (slash == NULL)
        rc = tl_format(out, size, ".");
    else if (slash == path)
        rc = tl_format(out, size, "/");
    else
        rc = tl_format(out, size, "%.*s", (int)(slash - path), path);
    return rc == 0 ? 0 : TL_EINVAL;
}

static int write_temp(const char *temp, const void *data, size_t len, unsigned flags)
{
    int open_flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    if (flags & TL_FS_NOFOLLOW)
        open_flags |= O_NOFOLLOW;
    int fd = open(temp, open_flags, 0600);
    if (fd < 0)
        return -errno;
    /* A temporary file left by a crash keeps its mode through O_TRUNC: make it ours again. */
    int rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = tl_write_all(fd, data, len);
    if (rc == 0 && (flags & TL_FS_SYNC) && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int tl_fs_write_atomic(const char *path, const void *data, size_t len, unsigned flags,
                       enum tl_fs_step *failed_step)
{
    char temp[PATH_MAX + 8], dir[PATH_MAX];
    enum tl_fs_step step = TL_FS_STEP_TEMP;
    int rc = 0;
    if (tl_format(temp, sizeof temp, "%s.tmp", path) != 0 ||
        ((flags & TL_FS_SYNC_DIR) && tl_fs_parent_dir(path, dir, sizeof dir) != 0)) {
        rc = TL_EINVAL;
        goto out;
    }
    if ((rc = write_temp(temp, data, len, flags)) != 0) {
        unlink(temp);
        goto out;
    }
    step = TL_FS_STEP_RENAME;
    if (rename(temp, path) != 0) {
        rc = -errno;
        unlink(temp);
        goto out;
    }
    step = TL_FS_STEP_DIR;
    if (flags & TL_FS_SYNC_DIR)
        rc = tl_fsync_dir(dir);
out:
    if (failed_step != NULL)
        *failed_step = step;
    return rc;
}

/* Reads fd to its end into buf (at most max bytes); expect is what its size said. */
static int read_to_end(int fd, tl_buf_t *buf, size_t expect, size_t max)
{
    /* Exactly the size the file said, and a byte to find its end: no copy on the way. */
    int rc = tl_buf_allocate(buf, expect + 1);
    while (rc == 0) {
        size_t have = tl_buf_len(buf);
        size_t room = have < expect ? expect - have : have == expect ? 1 : READ_CHUNK;
        if (room > max + 1 - have)
            room = max + 1 - have;
        uint8_t *dst = NULL;
        if ((rc = tl_buf_reserve(buf, room, &dst)) != 0)
            break;
        ssize_t n = read(fd, dst, room);
        int error = errno;
        tl_buf_unreserve(buf, n > 0 ? room - (size_t)n : room);
        if (n < 0 && error == EINTR)
            continue;
        if (n < 0)
            rc = -error;
        else if (n == 0)
            break;
        else if (tl_buf_len(buf) > max)
            rc = TL_EFULL;
    }
    return rc;
}

int tl_fs_read_file(const char *path, size_t max, unsigned flags, tl_fs_check_fn check, void *arg,
                    char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (max >= SIZE_MAX - 1)
        return TL_EINVAL;
    int open_flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    if (flags & TL_FS_READ_NOFOLLOW)
        open_flags |= O_NOFOLLOW;
    int fd = open(path, open_flags);
    if (fd < 0)
        return -errno;
    tl_buf_t *buf = NULL;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && check != NULL)
        rc = check(&st, arg);
    if (rc == 0 && !S_ISREG(st.st_mode) && !(flags & TL_FS_READ_ANY_TYPE))
        rc = TL_EINVAL;
    size_t expect = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size : 0;
    if (rc == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        rc = TL_EFULL;
    if (rc == 0 && (buf = tl_buf_new(max + 1)) == NULL)
        rc = TL_ENOMEM;
    if (rc == 0)
        rc = read_to_end(fd, buf, expect, max);
    if (rc == 0)
        rc = tl_buf_take_string(buf, out, out_len);
    close(fd);
    if (buf != NULL)
        tl_buf_wipe(buf); /* what was read may be a key */
    tl_buf_free(buf);
    return rc;
}

static int is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tl_fs_shared_dir(const char *name, const char *staged, char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            char installed[PATH_MAX + 64], resolved[PATH_MAX];
            if (tl_format(installed, sizeof installed, "%s/../share/tierline/%s", exe, name) == 0 &&
                is_directory(installed) && realpath(installed, resolved) != NULL)
                return tl_format(out, size, "%s", resolved);
        }
    }
    if (staged != NULL && is_directory(staged))
        return tl_format(out, size, "%s", staged);
    return TL_ENOTFOUND;
}

unsigned long long tl_fs_raise_fd_limit(unsigned long long want)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 0;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < want) {
        unsigned long long nr_open = 0;
        FILE *f = fopen("/proc/sys/fs/nr_open", "r");
        if (f != NULL) {
            if (fscanf(f, "%llu", &nr_open) != 1)
                nr_open = 0;
            fclose(f);
        }
        struct rlimit higher = {(rlim_t)want, (rlim_t)want};
        if (nr_open >= want && setrlimit(RLIMIT_NOFILE, &higher) == 0)
            limit = higher;
    }
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < want) {
        limit.rlim_cur = limit.rlim_max == RLIM_INFINITY || limit.rlim_max > want ? (rlim_t)want
                                                                                  : limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
            return 0;
    }
    return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (unsigned long long)limit.rlim_cur;
}
