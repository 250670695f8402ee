/* The agent's installed catalogue (agent/catalogue.h, docs/catalogue.md). */
#include "agent/catalogue.h"

#include "proto/catalogue.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/text.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_SIZE (PATH_MAX + 64)

static int path_of(char *out, const char *state_dir, const char *name)
{
    return tl_format(out, PATH_SIZE, "%s/" TL_STATE_CATALOGUE "%s%s", state_dir, name ? "/" : "",
                     name ? name : "") == 0
               ? 0
               : TL_EINVAL;
}

static int version_dir(char *out, const char *state_dir, uint64_t version)
{
    return tl_format(out, PATH_SIZE, "%s/" TL_STATE_CATALOGUE "/%" PRIu64, state_dir, version) == 0
               ? 0
               : TL_EINVAL;
}

static int read_version(json_t *doc, const char *key, uint64_t *out)
{
    json_t *value = json_object_get(doc, key);
    if (!json_is_integer(value) || json_integer_value(value) < 0 ||
        (uint64_t)json_integer_value(value) > TL_CATALOGUE_VERSION_MAX)
        return TL_EINVAL;
    *out = (uint64_t)json_integer_value(value);
    return 0;
}

int tl_agent_catalogue_state(const char *state_dir, tl_agent_catalogue_state_t *out)
{
    char path[PATH_SIZE], *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    int rc = path_of(path, state_dir, "installed.json");
    if (rc == 0)
        rc = tl_fs_read_file(path, 4096, TL_FS_READ_NOFOLLOW, NULL, NULL, &text, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    rc = doc != NULL && read_version(doc, "current", &out->current) == 0 &&
                 read_version(doc, "previous", &out->previous) == 0 &&
                 read_version(doc, "highest", &out->highest) == 0 && out->current <= out->highest &&
                 out->previous < out->current + (out->current == 0)
             ? 0
             : TL_EINVAL;
    if (rc != 0)
        memset(out, 0, sizeof *out);
    json_decref(doc);
    free(text);
    return rc;
}

static int write_state(const char *state_dir, const tl_agent_catalogue_state_t *state)
{
    char path[PATH_SIZE], text[256];
    int rc = path_of(path, state_dir, "installed.json");
    if (rc != 0)
        return rc;
    int n = snprintf(text, sizeof text,
                     "{\"current\": %" PRIu64 ", \"previous\": %" PRIu64 ", \"highest\": %" PRIu64
                     "}\n",
                     state->current, state->previous, state->highest);
    return tl_fs_write_atomic(path, text, (size_t)n, TL_FS_SYNC | TL_FS_SYNC_DIR | TL_FS_NOFOLLOW,
                              NULL);
}

int tl_agent_catalogue_dirs(const char *state_dir, char *runbooks, size_t runbooks_size, char *kb,
                            size_t kb_size, uint64_t *version)
{
    tl_agent_catalogue_state_t state;
    char dir[PATH_SIZE];
    int rc = tl_agent_catalogue_state(state_dir, &state);
    if (rc != 0)
        return rc;
    if (state.current == 0)
        return TL_ENOTFOUND;
    if ((rc = version_dir(dir, state_dir, state.current)) != 0)
        return rc;
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return TL_EINVAL; /* installed.json names a version that is not there */
    if ((runbooks && tl_format(runbooks, runbooks_size, "%s/runbooks", dir) != 0) ||
        (kb && tl_format(kb, kb_size, "%s/kb", dir) != 0))
        return TL_EINVAL;
    if (version)
        *version = state.current;
    return 0;
}

/* Removes a directory this module made (runbooks/, kb/ and files), never following a link. */
static int remove_tree(const char *path, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -errno;
    if (depth > 3)
        return TL_EINVAL;
    DIR *handle = opendir(path);
    if (handle == NULL)
        return -errno;
    int rc = 0;
    struct dirent *entry;
    for (unsigned seen = 0; rc == 0 && (entry = readdir(handle)) != NULL; seen++) {
        if (seen > 4 * TL_CATALOGUE_MAX_FILES) {
            rc = TL_EFULL;
            break;
        }
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char child[PATH_SIZE];
        rc = tl_format(child, sizeof child, "%s/%s", path, entry->d_name) == 0
                 ? remove_tree(child, depth + 1)
                 : TL_EINVAL;
    }
    closedir(handle);
    if (rc == 0 && rmdir(path) != 0)
        rc = -errno;
    return rc;
}

static int write_file(const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t done = 0; rc == 0 && done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        else
            done += (size_t)n;
    }
    if (rc == 0 && fchmod(fd, mode) != 0) /* whatever the umask */
        rc = -errno;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* An exclusive lock on STATE/catalogue/lock (made with the directory); fd or a code. */
static int lock_catalogue(const char *state_dir)
{
    char dir[PATH_SIZE], path[PATH_SIZE];
    if (path_of(dir, state_dir, NULL) != 0 || path_of(path, state_dir, "lock") != 0)
        return TL_EINVAL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    for (int tries = 0; flock(fd, LOCK_EX) != 0; tries++) {
        if (errno != EINTR || tries > 100) {
            int rc = -errno;
            close(fd);
            return rc;
        }
    }
    return fd;
}

static void unlock_catalogue(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Appends a report for the relay (under the lock); the oldest go past the bound. */
static int queue_report(const char *state_dir, json_t *report)
{
    char path[PATH_SIZE];
    int rc = path_of(path, state_dir, "reports.json");
    json_t *list = rc == 0 ? tl_agent_catalogue_reports(state_dir) : NULL;
    char *text = NULL;
    if (list == NULL)
        return rc != 0 ? rc : TL_ENOMEM;
    json_array_append(list, report);
    while (json_array_size(list) > TL_AGENT_CATALOGUE_REPORTS)
        json_array_remove(list, 0);
    text = json_dumps(list, JSON_COMPACT);
    rc = text != NULL ? tl_fs_write_atomic(path, text, strlen(text),
                                           TL_FS_SYNC | TL_FS_SYNC_DIR | TL_FS_NOFOLLOW, NULL)
                      : TL_ENOMEM;
    free(text);
    json_decref(list);
    return rc;
}

json_t *tl_agent_catalogue_reports(const char *state_dir)
{
    char path[PATH_SIZE], *text = NULL;
    size_t len = 0;
    json_t *list = NULL;
    if (path_of(path, state_dir, "reports.json") == 0 &&
        tl_fs_read_file(path, 1024 * 1024, TL_FS_READ_NOFOLLOW, NULL, NULL, &text, &len) == 0)
        list = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    if (!json_is_array(list)) {
        json_decref(list);
        list = json_array();
    }
    return list;
}

int tl_agent_catalogue_reports_done(const char *state_dir, size_t count)
{
    int fd = lock_catalogue(state_dir);
    if (fd < 0)
        return fd;
    char path[PATH_SIZE];
    int rc = path_of(path, state_dir, "reports.json");
    json_t *list = rc == 0 ? tl_agent_catalogue_reports(state_dir) : NULL;
    char *text = NULL;
    for (size_t i = 0; list != NULL && i < count && json_array_size(list) > 0; i++)
        json_array_remove(list, 0);
    if (rc == 0)
        rc = list != NULL && (text = json_dumps(list, JSON_COMPACT)) != NULL
                 ? tl_fs_write_atomic(path, text, strlen(text),
                                      TL_FS_SYNC | TL_FS_SYNC_DIR | TL_FS_NOFOLLOW, NULL)
                 : TL_ENOMEM;
    free(text);
    json_decref(list);
    unlock_catalogue(fd);
    return rc;
}

/* Writes the package's files into dir (new), then the package itself. */
static int unpack(const char *dir, const tl_catalogue_t *catalogue, const uint8_t *data, size_t len)
{
    char path[PATH_SIZE];
    int rc = mkdir(dir, 0700) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = tl_format(path, sizeof path, "%s/runbooks", dir) == 0
                 ? (mkdir(path, 0700) == 0 ? 0 : -errno)
                 : TL_EINVAL;
    if (rc == 0)
        rc = tl_format(path, sizeof path, "%s/kb", dir) == 0 ? (mkdir(path, 0700) == 0 ? 0 : -errno)
                                                             : TL_EINVAL;
    for (size_t i = 0; rc == 0 && i < tl_catalogue_file_count(catalogue); i++) {
        const tl_catalogue_file_t *file = tl_catalogue_file(catalogue, i);
        /* The path was checked (proto/catalogue.h): runbooks/NAME or kb/NAME.md, no "..". */
        rc = tl_format(path, sizeof path, "%s/%s", dir, file->path) == 0
                 ? write_file(path, file->data, file->size, file->executable ? 0755 : 0644)
                 : TL_EINVAL;
    }
    if (rc == 0)
        rc = tl_format(path, sizeof path, "%s/package.tlcat", dir) == 0
                 ? write_file(path, data, len, 0600)
                 : TL_EINVAL;
    for (const char *sub = "runbooks"; rc == 0 && sub != NULL;
         sub = strcmp(sub, "runbooks") == 0 ? "kb" : NULL)
        rc = tl_format(path, sizeof path, "%s/%s", dir, sub) == 0 ? tl_fsync_dir(path) : TL_EINVAL;
    if (rc == 0)
        rc = tl_fsync_dir(dir);
    return rc;
}

/* Version directories other than keep_a and keep_b go (old ones, and leftovers). */
static void prune(const char *state_dir, uint64_t keep_a, uint64_t keep_b)
{
    char dir[PATH_SIZE];
    if (path_of(dir, state_dir, NULL) != 0)
        return;
    DIR *handle = opendir(dir);
    if (handle == NULL)
        return;
    struct dirent *entry;
    for (unsigned seen = 0; (entry = readdir(handle)) != NULL && seen < 1024; seen++) {
        const char *name = entry->d_name;
        int numeric =
            name[0] >= '1' && name[0] <= '9' && strspn(name, "0123456789") == strlen(name);
        int temporary = strncmp(name, ".new-", 5) == 0;
        if (!numeric && !temporary)
            continue;
        uint64_t version = numeric ? strtoull(name, NULL, 10) : 0;
        if (numeric && (version == keep_a || version == keep_b))
            continue;
        char path[PATH_SIZE];
        if (tl_format(path, sizeof path, "%s/%s", dir, name) == 0)
            remove_tree(path, 0);
    }
    closedir(handle);
}

static void report_event(const char *state_dir, const char *event, uint64_t version, uint64_t from,
                         const char *sha256, const char *reason)
{
    json_t *report = json_pack("{s:s, s:I, s:I}", "event", event, "version", (json_int_t)version,
                               "time", (json_int_t)tl_wall_ms());
    if (report == NULL)
        return;
    if (from > 0)
        json_object_set_new(report, "from", json_integer((json_int_t)from));
    if (sha256 != NULL)
        json_object_set_new(report, "sha256", json_string(sha256));
    if (reason != NULL) {
        char *shown = tl_text_utf8_dup(reason, strlen(reason));
        json_object_set_new(report, "reason", json_string(shown ? shown : "?"));
        free(shown);
    }
    int rc = queue_report(state_dir, report);
    if (rc != 0)
        tl_log_warn("catalogue report not queued event=%s reason=%s", event, tl_strerror(rc));
    json_decref(report);
}

int tl_agent_catalogue_install(const char *state_dir, const char *trusted, const uint8_t *data,
                               size_t len, uint64_t *version, char *why, size_t why_size)
{
    tl_agent_catalogue_state_t state;
    tl_catalogue_t *catalogue = NULL;
    char sha256[TL_SHA256_HEX_LEN] = "", temp[PATH_SIZE], final[PATH_SIZE];
    int refused = 0;
    *version = 0;
    why[0] = '\0';
    tl_sha256_hex(data, len, sha256);
    int fd = lock_catalogue(state_dir);
    int rc = fd < 0 ? fd : tl_agent_catalogue_state(state_dir, &state);
    if (rc != 0) {
        tl_format(why, why_size, "the installed catalogue's state cannot be read: %s",
                  tl_strerror(rc));
        goto out;
    }
    rc = tl_catalogue_verify(data, len, trusted, state.highest, &catalogue, why, why_size);
    if (rc != 0) {
        refused = 1;
        goto out;
    }
    *version = tl_catalogue_version(catalogue);
    if ((rc = path_of(temp, state_dir, ".new-package")) != 0 ||
        (rc = version_dir(final, state_dir, *version)) != 0)
        goto out;
    remove_tree(temp, 0);  /* a leftover of an install that did not finish */
    remove_tree(final, 0); /* newer than highest: only a crash before the switch left it */
    if ((rc = unpack(temp, catalogue, data, len)) != 0 ||
        (rc = rename(temp, final) != 0 ? -errno : 0)) {
        tl_format(why, why_size, "the catalogue cannot be written: %s", tl_strerror(rc));
        remove_tree(temp, 0);
        goto out;
    }
    tl_agent_catalogue_state_t next = {*version, state.current, *version};
    if ((rc = write_state(state_dir, &next)) != 0) {
        tl_format(why, why_size, "the catalogue cannot be switched: %s", tl_strerror(rc));
        remove_tree(final, 0);
        goto out;
    }
    prune(state_dir, next.current, next.previous);
    tl_log_info("catalogue installed version=%" PRIu64 " previous=%" PRIu64
                " runbooks=%zu articles=%zu sha256=%s signer=%s",
                *version, state.current, tl_catalogue_runbook_count(catalogue),
                tl_catalogue_article_count(catalogue), sha256, tl_catalogue_signer(catalogue));
    report_event(state_dir, "installed", *version, state.current, sha256, NULL);
out:
    if (rc != 0) {
        tl_log_warn("catalogue refused sha256=%s reason=\"%s\"", sha256, why);
        if (refused || fd >= 0)
            report_event(state_dir, "refused", *version, 0, sha256, why);
    }
    tl_catalogue_free(catalogue);
    unlock_catalogue(fd);
    return rc;
}

int tl_agent_catalogue_rollback(const char *state_dir, uint64_t *from, uint64_t *to, char *why,
                                size_t why_size)
{
    tl_agent_catalogue_state_t state;
    char dir[PATH_SIZE];
    *from = *to = 0;
    why[0] = '\0';
    int fd = lock_catalogue(state_dir);
    int rc = fd < 0 ? fd : tl_agent_catalogue_state(state_dir, &state);
    if (rc != 0) {
        tl_format(why, why_size, "the installed catalogue's state cannot be read: %s",
                  tl_strerror(rc));
        goto out;
    }
    struct stat st;
    if (state.previous == 0 || version_dir(dir, state_dir, state.previous) != 0 ||
        lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        tl_format(why, why_size,
                  state.current == 0
                      ? "no catalogue is installed: the shipped one is in use"
                      : "there is no previous catalogue to go back to (version %" PRIu64
                        " is the only one kept)",
                  state.current);
        rc = TL_ENOTFOUND;
        goto out;
    }
    tl_agent_catalogue_state_t next = {state.previous, 0, state.highest};
    if ((rc = write_state(state_dir, &next)) != 0) {
        tl_format(why, why_size, "the catalogue cannot be switched: %s", tl_strerror(rc));
        goto out;
    }
    *from = state.current;
    *to = state.previous;
    /* The version left stays until the next install: a run started from it may still read it. */
    prune(state_dir, next.current, state.current);
    tl_log_info("catalogue rolled back from=%" PRIu64 " to=%" PRIu64, *from, *to);
    report_event(state_dir, "rollback", *to, *from, NULL, NULL);
out:
    unlock_catalogue(fd);
    return rc;
}
