/*
 * Probe "disks": space and inodes of each mounted file system, from
 * /proc/self/mounts and statvfs(3). Pseudo and memory-backed file systems
 * are skipped. statvfs on a dead network mount can hang; the runner's
 * timeout covers that.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#define MAX_MOUNTS 64

/* File systems with no disk behind them. */
static const char *const pseudo_types[] = {
    "autofs",      "binfmt_misc", "bpf",      "cgroup",   "cgroup2", "configfs",
    "debugfs",     "devpts",      "devtmpfs", "efivarfs", "fusectl", "hugetlbfs",
    "mqueue",      "nsfs",        "proc",     "pstore",   "ramfs",   "rpc_pipefs",
    "securityfs",  "selinuxfs",   "sysfs",    "tmpfs",    "tracefs", "fuse.gvfsd-fuse",
    "fuse.portal", "squashfs",
};

static bool is_pseudo(const char *type)
{
    for (size_t i = 0; i < sizeof pseudo_types / sizeof pseudo_types[0]; i++)
        if (strcmp(type, pseudo_types[i]) == 0)
            return true;
    return false;
}

static double percent(unsigned long long part, unsigned long long whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

static int put_mount(json_t *mounts, const struct mntent *entry, const struct statvfs *st)
{
    int rc;
    json_t *row = json_object();
    if (!row || json_array_append_new(mounts, row) != 0)
        return TL_ENOMEM;
    unsigned long long unit = st->f_frsize ? st->f_frsize : st->f_bsize;
    unsigned long long size = (unsigned long long)st->f_blocks * unit;
    unsigned long long free_bytes = (unsigned long long)st->f_bfree * unit;
    unsigned long long available = (unsigned long long)st->f_bavail * unit;
    unsigned long long used = size - free_bytes;
    unsigned long long inodes = st->f_files, inodes_free = st->f_ffree;
    if ((rc = tl__diag_put_text(row, "mount", entry->mnt_dir)) < 0 ||
        (rc = tl__diag_put_text(row, "device", entry->mnt_fsname)) < 0 ||
        (rc = tl__diag_put_text(row, "fstype", entry->mnt_type)) < 0 ||
        (rc = tl__diag_put_int(row, "size_bytes", (long long)size)) < 0 ||
        (rc = tl__diag_put_int(row, "used_bytes", (long long)used)) < 0 ||
        (rc = tl__diag_put_int(row, "available_bytes", (long long)available)) < 0 ||
        /* As df(1) counts it: used against what non-root users can have. */
        (rc = tl__diag_put_real(row, "used_percent", percent(used, used + available))) < 0 ||
        (rc = tl__diag_put_int(row, "inodes_total", (long long)inodes)) < 0 ||
        (rc = tl__diag_put_int(row, "inodes_used", (long long)(inodes - inodes_free))) < 0 ||
        (rc = tl__diag_put_real(row, "inodes_used_percent",
                                percent(inodes - inodes_free, inodes))) < 0 ||
        (rc = tl__diag_put_bool(row, "read_only", (st->f_flag & ST_RDONLY) != 0)) < 0)
        return rc;
    return 0;
}

int tl__probe_disks_run(const tl_diag_t *diag, json_t *section)
{
    int rc = 0;
    json_t *mounts = json_array();
    json_t *failures = json_array();
    size_t skipped = 0;
    bool truncated = false;
    FILE *table = setmntent("/proc/self/mounts", "re");
    if (!mounts || !failures) {
        rc = TL_ENOMEM;
        goto out;
    }
    if (!table) {
        rc = tl__diag_fail(section, -errno, "cannot read /proc/self/mounts: %s", strerror(errno));
        goto out;
    }
    struct mntent entry;
    char buffer[4096];
    while (getmntent_r(table, &entry, buffer, sizeof buffer)) {
        if (is_pseudo(entry.mnt_type)) {
            skipped++;
            continue;
        }
        if (json_array_size(mounts) + json_array_size(failures) >= MAX_MOUNTS) {
            truncated = true;
            break;
        }
        struct statvfs st;
        if (statvfs(entry.mnt_dir, &st) != 0) {
            json_t *failure = json_object();
            if (!failure || json_array_append_new(failures, failure) != 0 ||
                tl__diag_put_text(failure, "mount", entry.mnt_dir) < 0 ||
                tl__diag_put_text(failure, "error", strerror(errno)) < 0) {
                rc = TL_ENOMEM;
                goto out;
            }
            continue;
        }
        if (st.f_blocks == 0) {
            skipped++; /* reports no size: a pseudo file system we did not know by name */
            continue;
        }
        if ((rc = put_mount(mounts, &entry, &st)) < 0)
            goto out;
    }
    if (json_object_set(section, "mounts", mounts) != 0 ||
        (json_array_size(failures) > 0 && json_object_set(section, "unreadable", failures) != 0)) {
        rc = TL_ENOMEM;
        goto out;
    }
    if ((rc = tl__diag_put_int(section, "skipped_pseudo", (long long)skipped)) < 0 ||
        (rc = tl__diag_put_bool(section, "truncated", truncated)) < 0)
        goto out;
out:
    if (table)
        endmntent(table);
    json_decref(mounts);
    json_decref(failures);
    return rc;
}
