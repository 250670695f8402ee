/*
 * Files a grant may touch, opened without following links (agent/files.h).
 */
#include "agent/files.h"

#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/sftp.h"

#include "proto/text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tl_files_write {
    int dir_fd, fd;
    char name[256];      /* the file's name in its directory */
    char temporary[256]; /* where the bytes go until the commit */
    uint64_t size, max_bytes;
};

static int from_errno(int error)
{
    switch (error) {
    case ENOENT:
        return TL_ENOTFOUND;
    case EACCES:
    case EPERM:
    case ELOOP:
        return TL_EDENIED;
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
        return TL_EINVAL;
    case ENOSPC:
    case EDQUOT:
        return TL_EFULL;
    default:
        return TL_EIO;
    }
}

/* Why name in dir_fd could not be opened as asked: a link is TL_EDENIED whatever errno said. */
static int open_failure(int dir_fd, const char *name, int error)
{
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return TL_EDENIED;
    return from_errno(error);
}

/*
 * Opens the directory that holds path's last component, walking from "/"
 * without following links, and points *name at that component inside
 * copy (which the caller provides, TL_SFTP_MAX_PATH + 1 bytes). "/" has no
 * last component: TL_EINVAL.
 */
static int open_parent(const char *path, char *copy, int *dir_fd, const char **name)
{
    *dir_fd = -1;
    if (tl_sftp_machine_path_check(path) != 0 || strcmp(path, "/") == 0)
        return TL_EINVAL;
    strcpy(copy, path);
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return from_errno(errno);
    char *component = copy + 1;
    for (;;) {
        char *slash = strchr(component, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        int next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int rc = next < 0 ? open_failure(fd, component, errno) : 0;
        close(fd);
        if (rc != 0)
            return rc;
        fd = next;
        component = slash + 1;
    }
    *dir_fd = fd;
    *name = component;
    return 0;
}

int tl_files_open_read(const char *path, int *fd_out, struct stat *st)
{
    char copy[TL_SFTP_MAX_PATH + 1];
    const char *name;
    int dir_fd;
    *fd_out = -1;
    int rc = open_parent(path, copy, &dir_fd, &name);
    if (rc != 0)
        return rc;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway. */
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        rc = open_failure(dir_fd, name, errno);
    } else if (fstat(fd, st) != 0) {
        rc = from_errno(errno);
    } else if (!S_ISREG(st->st_mode)) {
        rc = TL_EINVAL;
    } else {
        *fd_out = fd;
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    close(dir_fd);
    return rc;
}

int tl_files_stat(const char *path, struct stat *st)
{
    char copy[TL_SFTP_MAX_PATH + 1];
    const char *name;
    int dir_fd, rc;
    if (path != NULL && strcmp(path, "/") == 0)
        return stat("/", st) == 0 ? 0 : from_errno(errno);
    if ((rc = open_parent(path, copy, &dir_fd, &name)) != 0)
        return rc;
    if (fstatat(dir_fd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        rc = from_errno(errno);
    close(dir_fd);
    return rc;
}

/* A name a listing shows: nobody could name back one with a control character or not UTF-8. */
static int name_shown(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TL_FILES_MAX_NAME || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        !tl_text_utf8_valid(name, len))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}

int tl_files_list(const char *path, tl_files_entry_fn each, void *data)
{
    char copy[TL_SFTP_MAX_PATH + 1];
    const char *name;
    int dir_fd = -1, fd, rc;
    if (path != NULL && strcmp(path, "/") == 0) {
        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = fd < 0 ? from_errno(errno) : 0;
    } else if ((rc = open_parent(path, copy, &dir_fd, &name)) == 0) {
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = fd < 0 ? open_failure(dir_fd, name, errno) : 0;
        close(dir_fd);
    }
    if (rc != 0)
        return rc;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        rc = from_errno(errno);
        close(fd);
        return rc;
    }
    struct dirent *entry;
    errno = 0;
    while (rc == 0 && (entry = readdir(dir)) != NULL) {
        struct stat st;
        if (!name_shown(entry->d_name) ||
            fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone meanwhile, or not to be shown */
        rc = each(data, entry->d_name, &st);
    }
    closedir(dir);
    return rc > 0 ? 0 : rc;
}

int tl_files_write_begin(const char *path, uint32_t mode, uint64_t max_bytes,
                         tl_files_write_t **out)
{
    *out = NULL;
    char copy[TL_SFTP_MAX_PATH + 1];
    const char *name;
    tl_files_write_t *write = calloc(1, sizeof *write);
    if (write == NULL)
        return TL_ENOMEM;
    write->fd = -1;
    write->max_bytes = max_bytes;
    int rc = open_parent(path, copy, &write->dir_fd, &name);
    if (rc != 0)
        goto out;
    if (strlen(name) >= sizeof write->name) {
        rc = TL_EINVAL;
        goto out;
    }
    strcpy(write->name, name);
    struct stat st;
    if (fstatat(write->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
            rc = TL_EDENIED;
        else if (!S_ISREG(st.st_mode))
            rc = TL_EINVAL;
        if (rc != 0)
            goto out;
    } else if (errno != ENOENT) {
        rc = from_errno(errno);
        goto out;
    }
    /* A fresh name beside the file: O_EXCL never opens what is there, a link least of all. */
    static unsigned serial;
    rc = TL_EEXIST;
    for (int attempt = 0; attempt < 16 && rc == TL_EEXIST; attempt++) {
        tl_format(write->temporary, sizeof write->temporary, ".tierline-push-%ld-%u-%d",
                  (long)getpid(), ++serial, rand());
        write->fd = openat(write->dir_fd, write->temporary,
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777u);
        rc = write->fd >= 0 ? 0 : errno == EEXIST ? TL_EEXIST : from_errno(errno);
    }
out:
    if (rc != 0) {
        write->temporary[0] = '\0';
        tl_files_write_abort(write);
        return rc;
    }
    *out = write;
    return 0;
}

int tl_files_write_data(tl_files_write_t *write, const void *data, size_t len)
{
    if (len > write->max_bytes - write->size)
        return TL_EFULL;
    const uint8_t *bytes = data;
    while (len > 0) {
        ssize_t done = pwrite(write->fd, bytes, len, (off_t)write->size);
        if (done < 0 && errno == EINTR)
            continue;
        if (done <= 0)
            return done < 0 ? from_errno(errno) : TL_EIO;
        bytes += done;
        len -= (size_t)done;
        write->size += (uint64_t)done;
    }
    return 0;
}

uint64_t tl_files_write_size(const tl_files_write_t *write)
{
    return write->size;
}

int tl_files_write_commit(tl_files_write_t *write)
{
    int rc = 0;
    if (fsync(write->fd) != 0)
        rc = from_errno(errno);
    if (rc == 0 && close(write->fd) != 0)
        rc = from_errno(errno);
    write->fd = -1;
    /* renameat replaces a name, never what a link there points to. */
    if (rc == 0 && renameat(write->dir_fd, write->temporary, write->dir_fd, write->name) != 0)
        rc = from_errno(errno);
    if (rc == 0) {
        write->temporary[0] = '\0';
        if (fsync(write->dir_fd) != 0)
            tl_log_warn("files directory sync failed name=%s error=%s", write->name,
                        strerror(errno));
    }
    tl_files_write_abort(write);
    return rc;
}

void tl_files_write_abort(tl_files_write_t *write)
{
    if (write == NULL)
        return;
    if (write->fd >= 0)
        close(write->fd);
    if (write->temporary[0] != '\0' && write->dir_fd >= 0)
        unlinkat(write->dir_fd, write->temporary, 0);
    if (write->dir_fd >= 0)
        close(write->dir_fd);
    free(write);
}
