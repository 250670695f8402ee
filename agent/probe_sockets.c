/*
 * Probe "sockets": listening TCP sockets and bound, unconnected UDP sockets,
 * from /proc/net/{tcp,tcp6,udp,udp6}, with the process that owns each one
 * found through /proc/[pid]/fd where this user may read it.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SOCKETS 512
#define TCP_LISTEN 0x0A
#define UDP_UNCONNECTED 0x07 /* TCP_CLOSE: bound, no peer */

/*
 * /proc/net addresses are the kernel's in-memory words printed as hex: one
 * 32-bit word for IPv4, four for IPv6, each in host byte order. Reading each
 * word back as a host integer restores the original bytes on any endianness.
 */
static bool parse_address(const char *hex, int *family, char *text, size_t size)
{
    size_t len = strlen(hex);
    unsigned char bytes[16];
    if (len != 8 && len != 32)
        return false;
    for (size_t word = 0; word < len / 8; word++) {
        char part[9];
        memcpy(part, hex + word * 8, 8);
        part[8] = '\0';
        char *end;
        uint32_t value = (uint32_t)strtoul(part, &end, 16);
        if (*end != '\0')
            return false;
        memcpy(bytes + word * 4, &value, 4);
    }
    *family = len == 8 ? AF_INET : AF_INET6;
    return inet_ntop(*family, bytes, text, (socklen_t)size) != NULL;
}

int tl__probe_sockets_parse(const char *text, const char *protocol, json_t *sockets,
                            size_t max_entries)
{
    int rc = 0;
    bool is_udp = strncmp(protocol, "udp", 3) == 0;
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char local[65], remote[65];
        unsigned local_port, remote_port, state, uid;
        unsigned long inode;
        if (sscanf(line,
                   " %*u: %64[0-9A-Fa-f]:%x %64[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %u %*d %lu",
                   local, &local_port, remote, &remote_port, &state, &uid, &inode) != 7)
            continue; /* the header, or a line we do not understand */
        if (is_udp ? (state != UDP_UNCONNECTED || remote_port != 0) : state != TCP_LISTEN)
            continue;
        char address[INET6_ADDRSTRLEN];
        int family;
        if (!parse_address(local, &family, address, sizeof address))
            continue;
        if (json_array_size(sockets) >= max_entries) {
            rc = TL_EFULL;
            break;
        }
        json_t *entry = json_object();
        if (!entry || json_array_append_new(sockets, entry) != 0) {
            rc = TL_ENOMEM;
            break;
        }
        if ((rc = tl__diag_put_text(entry, "protocol", protocol)) < 0 ||
            (rc = tl__diag_put_text(entry, "address", address)) < 0 ||
            (rc = tl__diag_put_int(entry, "port", local_port)) < 0 ||
            (rc = tl__diag_put_int(entry, "uid", uid)) < 0 ||
            (rc = tl__diag_put_int(entry, "inode", (long long)inode)) < 0)
            break;
    }
    free(copy);
    return rc;
}

struct owner {
    unsigned long inode;
    long pid;
};

static int by_inode(const void *a, const void *b)
{
    unsigned long x = ((const struct owner *)a)->inode, y = ((const struct owner *)b)->inode;
    return (x > y) - (x < y);
}

/* Fills in the owning pid of each socket inode, reading every /proc/[pid]/fd we may. */
static void find_owners(struct owner *owners, size_t count)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *de;
    while ((de = readdir(proc)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/fd", pid);
        DIR *fds = opendir(path);
        if (!fds)
            continue;
        struct dirent *fe;
        while ((fe = readdir(fds)) != NULL) {
            char link_path[320], target[64];
            snprintf(link_path, sizeof link_path, "%s/%s", path, fe->d_name);
            ssize_t n = readlink(link_path, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            struct owner key;
            if (sscanf(target, "socket:[%lu]", &key.inode) != 1)
                continue;
            struct owner *hit = bsearch(&key, owners, count, sizeof *owners, by_inode);
            if (hit && hit->pid == 0)
                hit->pid = pid;
        }
        closedir(fds);
    }
    closedir(proc);
}

static int add_owners(json_t *sockets)
{
    int rc = 0;
    size_t count = json_array_size(sockets);
    if (count == 0)
        return 0;
    struct owner *owners = calloc(count, sizeof *owners);
    if (!owners)
        return TL_ENOMEM;
    for (size_t i = 0; i < count; i++)
        owners[i].inode =
            (unsigned long)json_integer_value(json_object_get(json_array_get(sockets, i), "inode"));
    qsort(owners, count, sizeof *owners, by_inode);
    find_owners(owners, count);
    size_t index;
    json_t *entry;
    json_array_foreach(sockets, index, entry)
    {
        char user[64];
        tl__diag_user_name((uid_t)json_integer_value(json_object_get(entry, "uid")), user,
                           sizeof user);
        if ((rc = tl__diag_put_text(entry, "user", user)) < 0)
            break;
        struct owner key = {.inode =
                                (unsigned long)json_integer_value(json_object_get(entry, "inode"))};
        struct owner *hit =
            key.inode ? bsearch(&key, owners, count, sizeof *owners, by_inode) : NULL;
        if (!hit || hit->pid == 0)
            continue;
        char path[64], name[64];
        snprintf(path, sizeof path, "/proc/%ld/comm", hit->pid);
        if ((rc = tl__diag_put_int(entry, "pid", hit->pid)) < 0)
            break;
        if (tl__diag_read_line(path, name, sizeof name) == 0 &&
            (rc = tl__diag_put_text(entry, "process", name)) < 0)
            break;
    }
    free(owners);
    return rc;
}

int tl__probe_sockets_run(const tl_diag_t *diag, json_t *section)
{
    static const char *const protocols[] = {"tcp", "tcp6", "udp", "udp6"};
    int rc = 0;
    bool truncated = false;
    json_t *sockets = json_array();
    json_t *unreadable = json_array();
    if (!sockets || !unreadable) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < sizeof protocols / sizeof protocols[0] && !truncated; i++) {
        char path[64], *text = NULL;
        snprintf(path, sizeof path, "/proc/net/%s", protocols[i]);
        int read_rc = tl__diag_read_file(path, 4 * 1024 * 1024, &text, NULL);
        if (read_rc < 0) {
            /* No IPv6 in this kernel, for instance: note it and go on. */
            json_t *name = tl__diag_text(protocols[i], strlen(protocols[i]), 16);
            if (!name || json_array_append_new(unreadable, name) != 0) {
                rc = TL_ENOMEM;
                goto out;
            }
            continue;
        }
        rc = tl__probe_sockets_parse(text, protocols[i], sockets, MAX_SOCKETS);
        free(text);
        truncated = rc == TL_EFULL;
        if (rc < 0 && !truncated)
            goto out;
        rc = 0;
    }
    if ((rc = add_owners(sockets)) < 0)
        goto out;
    if ((rc = tl__diag_put_int(section, "listening_count", (long long)json_array_size(sockets))) <
            0 ||
        (rc = tl__diag_put_bool(section, "truncated", truncated)) < 0)
        goto out;
    if (json_object_set(section, "listening", sockets) != 0 ||
        (json_array_size(unreadable) > 0 &&
         json_object_set(section, "unreadable", unreadable) != 0))
        rc = TL_ENOMEM;
out:
    json_decref(sockets);
    json_decref(unreadable);
    return rc;
}
