/*
 * The diagnostics' half of the classifier: reads a document as `tierline-agent diag --json`
 * writes it (docs/diagnostics.md §3, §5) and runs the diagnostics rules over it
 * (docs/desk.md "Classification and severity"). Each finding keeps the normalized fact the
 * diagnostic fingerprint needs (relay/desk/fingerprint.h) and a readable, escaped line.
 */
#include "relay/desk/classify_int.h"

#include "proto/err.h"
#include "proto/text.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The rules, in the table's order: among findings of one severity the earlier rule decides
 * the category, so a cause (a failing drive) comes before its effects (a read-only mount). */
enum {
    R_CRYPTOMINER,
    R_FAILED_LOGINS_MANY,
    R_DISK_IO_ERRORS,
    R_HARDWARE_ERRORS,
    R_READ_ONLY,
    R_FS_ERRORS,
    R_DISK_FULL,
    R_INODES_FULL,
    R_SERVICE_STORAGE,
    R_OOM_KILLS,
    R_MEMORY_EXHAUSTED,
    R_NO_INTERFACE_UP,
    R_NO_DEFAULT_ROUTE,
    R_NO_DNS,
    R_SERVICE_NETWORK,
    R_SERVICE_LOGIN,
    R_BOOT_FULL,
    R_DISK_NEARLY_FULL,
    R_MOUNT_UNREADABLE,
    R_DISKS_TIMED_OUT,
    R_FAILED_LOGINS,
    R_SERVICE_PRINTING,
    R_SERVICE_SECURITY,
    R_SERVICE_OTHER,
    R_SEGFAULT,
    R_USB_ERRORS,
    R_OVERHEATING,
    R_MEMORY_HIGH,
    R_CPU_HOG,
    R_CPU_BUSY,
    R_LOAD_HIGH,
    R_IO_WAIT,
    R_CLOCK_UNSYNCED,
    R_COUNT
};

/* Thresholds (docs/desk.md): percentages of df's used_percent and /proc's counters. */
#define FULL_PERCENT 95.0
#define NEARLY_FULL_PERCENT 90.0
#define MEMORY_EXHAUSTED_PERCENT 95.0
#define MEMORY_HIGH_PERCENT 90.0
#define SWAP_FULL_PERCENT 80.0
#define CPU_HOG_PERCENT 90.0
#define CPU_BUSY_PERCENT 90.0
#define IO_WAIT_PERCENT 25.0
#define LOAD_PER_CPU 2.0
#define MANY_FAILED_LOGINS 10

const struct tl__diag_rule tl__diag_rules[R_COUNT] = {
    [R_CRYPTOMINER] = {"cryptominer", TL_CATEGORY_SECURITY, 1, true, "the program's name",
                       "a process in `processes.top_cpu` or `top_memory` is named as a known "
                       "cryptominer (xmrig, xmr-stak, minerd, cpuminer, kdevtmpfsi, kinsing, "
                       "ccminer, nbminer, ethminer, lolminer, t-rex, phoenixminer)",
                       "known cryptominer \"xmrig\" running"},
    [R_FAILED_LOGINS_MANY] = {"failed-logins-many", TL_CATEGORY_SECURITY, 2, true, NULL,
                              "10 or more `logs.lines` tell of a failed login (\"failed "
                              "password\", \"authentication failure\", \"invalid user\", "
                              "\"login failures\", \"failed login\", \"failed logon\")",
                              "24 failed logins in the log"},
    [R_DISK_IO_ERRORS] = {"disk-io-errors", TL_CATEGORY_HARDWARE, 2, true, NULL,
                          "a log line has \"i o error\", \"medium error\", \"uncorrectable "
                          "error\", \"unrecovered read error\", \"failed command\" or \"bad "
                          "sector(s)\"",
                          "disk errors in the log (2): \"I/O error, dev sdb, sector 118813184…\""},
    [R_HARDWARE_ERRORS] = {"hardware-errors", TL_CATEGORY_HARDWARE, 2, true, NULL,
                           "a log line has \"hardware error\" or \"machine check\"",
                           "hardware errors in the log (1): \"Hardware Error]: Machine check…\""},
    [R_READ_ONLY] = {"read-only-system", TL_CATEGORY_DISK, 2, true, "the mount point",
                     "`/`, `/home`, `/var`, `/tmp`, `/usr`, `/srv` or `/opt` is mounted "
                     "`read_only`",
                     "/home is read-only"},
    [R_FS_ERRORS] = {"fs-errors", TL_CATEGORY_DISK, 2, true, NULL,
                     "a log line has \"ext4 fs error\" (ext2, ext3), \"btrfs error\", \"btrfs "
                     "critical\", \"metadata corruption\", \"corruption detected\", "
                     "\"remounting filesystem read only\", \"forced readonly\" or \"filesystem "
                     "has errors\"",
                     "file system errors in the log (2): \"BTRFS error (device nvme0n1p3)…\""},
    [R_DISK_FULL] = {"disk-full", TL_CATEGORY_DISK, 2, true, "the mount point",
                     "a writable mount, not `/boot` or below it, has `used_percent` ≥ 95",
                     "/var 97% full"},
    [R_INODES_FULL] = {"inodes-full", TL_CATEGORY_DISK, 2, true, "the mount point",
                       "a writable mount has `inodes_used_percent` ≥ 95",
                       "/var: 96% of inodes used"},
    [R_SERVICE_STORAGE] = {"service-failed-storage", TL_CATEGORY_DISK, 2, true, "the unit",
                           "a failed unit is a `.mount`, `.automount` or `.swap` unit, "
                           "`systemd-fsck*`, lvm2-monitor, mdmonitor, smartd, udisks2 or zfs-*",
                           "\"home.mount\" failed"},
    [R_OOM_KILLS] = {"oom-kills", TL_CATEGORY_PERFORMANCE, 2, true, NULL,
                     "a log line has \"out of memory\" (the kernel killed a program)",
                     "out-of-memory kills in the log (2): \"Out of memory: Killed process 5893…\""},
    [R_MEMORY_EXHAUSTED] = {"memory-exhausted", TL_CATEGORY_PERFORMANCE, 2, true, NULL,
                            "`memory.used_percent` ≥ 95 (worked out from `available_bytes` and "
                            "`total_bytes` when absent), and the swap none, unknown or "
                            "`swap_used_percent` ≥ 80",
                            "memory 98% used, swap 96% used"},
    [R_NO_INTERFACE_UP] = {"no-interface-up", TL_CATEGORY_NETWORK, 2, true, NULL,
                           "no interface in `network.interfaces` but loopback ones is `up` and "
                           "`running`",
                           "no network interface is up"},
    [R_NO_DEFAULT_ROUTE] = {"no-default-route", TL_CATEGORY_NETWORK, 2, true, NULL,
                            "`network.default_routes` is empty", "no default route"},
    [R_NO_DNS] = {"no-dns", TL_CATEGORY_NETWORK, 2, true, NULL,
                  "`network.dns.nameservers` is empty, or `dns.error` says why it is unknown",
                  "no DNS server configured"},
    [R_SERVICE_NETWORK] = {"service-failed-network", TL_CATEGORY_NETWORK, 2, true, "the unit",
                           "a failed unit is NetworkManager, NetworkManager-wait-online, "
                           "systemd-networkd, systemd-resolved, wpa_supplicant, networking, "
                           "dhcpcd, iwd or connman",
                           "\"NetworkManager.service\" failed"},
    [R_SERVICE_LOGIN] = {"service-failed-login", TL_CATEGORY_ACCOUNT, 2, true, "the unit",
                         "a failed unit is sssd, systemd-logind, gdm, gdm3, sddm, lightdm, "
                         "display-manager, accounts-daemon, winbind, nslcd or realmd",
                         "\"sssd.service\" failed"},
    [R_BOOT_FULL] = {"boot-full", TL_CATEGORY_DISK, 3, true, "the mount point",
                     "a writable mount at `/boot` or below it has `used_percent` ≥ 95 (updates "
                     "fail; the rest works)",
                     "/boot 98% full"},
    [R_DISK_NEARLY_FULL] = {"disk-nearly-full", TL_CATEGORY_DISK, 3, false, NULL,
                            "a writable mount has `used_percent` ≥ 90 and < 95", "/home 91% full"},
    [R_MOUNT_UNREADABLE] = {"mount-unreadable", TL_CATEGORY_DISK, 3, true, "the mount point",
                            "`disks.unreadable` names a mount",
                            "/mnt/share could not be read: Stale file handle"},
    [R_DISKS_TIMED_OUT] = {"disks-timed-out", TL_CATEGORY_DISK, 3, true, NULL,
                           "the `disks` section is an error that starts with \"timed out\" (a "
                           "hung network mount)",
                           "the disks probe timed out after 5000 ms"},
    [R_FAILED_LOGINS] = {"failed-logins", TL_CATEGORY_ACCOUNT, 3, false, NULL,
                         "1 to 9 `logs.lines` tell of a failed login (as `failed-logins-many`)",
                         "3 failed logins in the log"},
    [R_SERVICE_PRINTING] = {"service-failed-printing", TL_CATEGORY_PRINTING, 3, true, "the unit",
                            "a failed unit is cups, cups-browsed or saned",
                            "\"cups.service\" failed"},
    [R_SERVICE_SECURITY] = {"service-failed-security", TL_CATEGORY_SECURITY, 3, true, "the unit",
                            "a failed unit is apparmor, auditd, ufw, firewalld, fail2ban, "
                            "clamav-daemon or clamav-freshclam",
                            "\"apparmor.service\" failed"},
    [R_SERVICE_OTHER] = {"service-failed", TL_CATEGORY_APPLICATION, 3, true, "the unit",
                         "any other unit in `services.failed_units`", "\"snapd.service\" failed"},
    [R_SEGFAULT] = {"segfault", TL_CATEGORY_APPLICATION, 3, true, "the program's name",
                    "a log line has \"segfault at\"; the program is the word before `[PID]:`",
                    "\"thunderbird\" crashed (segfault)"},
    [R_USB_ERRORS] = {"usb-errors", TL_CATEGORY_HARDWARE, 3, true, NULL,
                      "a log line has \"device descriptor read\", \"unable to enumerate usb "
                      "device\", \"over current change\" or \"can not enable\"",
                      "USB errors in the log (2): \"device descriptor read/64, error -71\""},
    [R_OVERHEATING] =
        {"overheating", TL_CATEGORY_HARDWARE, 3, true, NULL,
         "a log line has \"temperature above threshold\", \"critical "
         "temperature\", \"cpu clock throttled\" or \"thermal shutdown\"",
         "overheating messages in the log (3): \"temperature above threshold, cpu clock…\""},
    [R_MEMORY_HIGH] = {"memory-high", TL_CATEGORY_PERFORMANCE, 3, false, NULL,
                       "`memory.used_percent` ≥ 90 (and not `memory-exhausted`)",
                       "memory 92% used"},
    [R_CPU_HOG] = {"cpu-hog", TL_CATEGORY_PERFORMANCE, 3, false, NULL,
                   "the busiest process in `processes.top_cpu` (not a cryptominer) has "
                   "`cpu_percent` ≥ 90",
                   "\"tracker-miner-f\" uses 98% CPU"},
    [R_CPU_BUSY] = {"cpu-busy", TL_CATEGORY_PERFORMANCE, 3, false, NULL,
                    "`cpu.usage.busy_percent` ≥ 90", "CPU 97% busy"},
    [R_LOAD_HIGH] = {"load-high", TL_CATEGORY_PERFORMANCE, 3, false, NULL,
                     "`system.load_average.5m` ≥ 2 × `cpu.online_cpus`", "load 12.1 on 4 CPUs"},
    [R_IO_WAIT] = {"io-wait", TL_CATEGORY_PERFORMANCE, 3, false, NULL,
                   "`cpu.usage.iowait_percent` ≥ 25", "CPU waiting for disks 38% of the time"},
    [R_CLOCK_UNSYNCED] = {"clock-unsynced", TL_CATEGORY_OTHER, 3, true, NULL,
                          "`time.synchronised` is false (certificates and logins that check "
                          "the time fail)",
                          "the clock is not synchronised"},
};

const size_t tl__diag_rule_count = R_COUNT;

/* --- findings ------------------------------------------------------------------------------- */

struct entry {
    tl_classify_finding_t finding; /* first: a finding's address is its entry's */
    size_t rule_index;
    size_t order;
};

struct tl_classify_findings {
    struct entry *items;
    size_t count, cap;
};

size_t tl_classify_findings_count(const tl_classify_findings_t *findings)
{
    return findings ? findings->count : 0;
}

const tl_classify_finding_t *tl_classify_findings_get(const tl_classify_findings_t *findings,
                                                      size_t index)
{
    if (findings == NULL || index >= findings->count)
        return NULL;
    return &findings->items[index].finding;
}

size_t tl__finding_rule_index(const tl_classify_finding_t *finding)
{
    return ((const struct entry *)finding)->rule_index;
}

void tl_classify_findings_free(tl_classify_findings_t *findings)
{
    if (findings == NULL)
        return;
    for (size_t i = 0; i < findings->count; i++) {
        free((char *)findings->items[i].finding.key);
        free((char *)findings->items[i].finding.fact);
    }
    free(findings->items);
    free(findings);
}

/* --- reading -------------------------------------------------------------------------------- */

/* Text of the machine's in a fact: escaped and clipped. */
#define CLIP_COLUMNS 40
#define CLIP_SIZE 168
#define SHORT_CLIP_COLUMNS 24
#define SHORT_CLIP_SIZE 104
#define FACT_SIZE 320

struct reader {
    tl_classify_findings_t *findings;
    struct tl__words words; /* a log line's */
    char *why;
    size_t why_size;
};

static int bad(struct reader *r, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct reader *r, const char *format, ...)
{
    if (r->why != NULL && r->why_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(r->why, r->why_size, format, args);
        va_end(args);
    }
    return TL_EINVAL;
}

static void clip(char *out, size_t size, const char *text, size_t len, size_t columns)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        snprintf(out, size, "...");
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    tl_text_clip(out, size, copy, columns, TL_TEXT_LINE);
    free(copy);
}

static int add(struct reader *r, int rule, const char *key, size_t key_len, const char *fact)
{
    tl_classify_findings_t *findings = r->findings;
    if (findings->count == TL_CLASSIFY_FINDINGS_MAX)
        return bad(r, "the diagnostics hold more than %d findings", TL_CLASSIFY_FINDINGS_MAX);
    if (findings->count == findings->cap) {
        size_t cap = findings->cap ? findings->cap * 2 : 16;
        struct entry *items = realloc(findings->items, cap * sizeof *items);
        if (items == NULL)
            goto nomem;
        findings->items = items;
        findings->cap = cap;
    }
    char *key_copy = malloc(key_len + 1);
    char *fact_copy = strdup(fact);
    if (key_copy == NULL || fact_copy == NULL) {
        free(key_copy);
        free(fact_copy);
        goto nomem;
    }
    if (key_len > 0)
        memcpy(key_copy, key, key_len);
    key_copy[key_len] = '\0';
    const struct tl__diag_rule *info = &tl__diag_rules[rule];
    struct entry *entry = &findings->items[findings->count];
    entry->finding = (tl_classify_finding_t){info->id,          info->category, info->severity,
                                             info->fingerprint, key_copy,       fact_copy};
    entry->rule_index = (size_t)rule;
    entry->order = findings->count;
    findings->count++;
    return 0;
nomem:
    return bad(r, "out of memory"), TL_ENOMEM;
}

/* Members: absent (or null) is unknown; present with another type is an error naming it. */
static int number(struct reader *r, const json_t *object, const char *name, const char *path,
                  double min, double max, double *value, bool *found)
{
    json_t *member = json_object_get(object, name);
    *found = false;
    if (member == NULL || json_is_null(member))
        return 0;
    if (!json_is_number(member))
        return bad(r, "diagnostics %s.%s is not a number", path, name);
    double x = json_number_value(member);
    if (!(x >= min && x <= max))
        return bad(r, "diagnostics %s.%s is %g, outside %g..%g", path, name, x, min, max);
    *value = x;
    *found = true;
    return 0;
}

static int boolean(struct reader *r, const json_t *object, const char *name, const char *path,
                   bool *value, bool *found)
{
    json_t *member = json_object_get(object, name);
    *found = false;
    if (member == NULL || json_is_null(member))
        return 0;
    if (!json_is_boolean(member))
        return bad(r, "diagnostics %s.%s is not true or false", path, name);
    *value = json_is_true(member);
    *found = true;
    return 0;
}

static int string(struct reader *r, const json_t *object, const char *name, const char *path,
                  const char **value, size_t *len)
{
    json_t *member = json_object_get(object, name);
    *value = NULL;
    *len = 0;
    if (member == NULL || json_is_null(member))
        return 0;
    if (!json_is_string(member))
        return bad(r, "diagnostics %s.%s is not a string", path, name);
    *value = json_string_value(member);
    *len = json_string_length(member);
    return 0;
}

static int array(struct reader *r, const json_t *object, const char *name, const char *path,
                 json_t **value)
{
    json_t *member = json_object_get(object, name);
    *value = NULL;
    if (member == NULL || json_is_null(member))
        return 0;
    if (!json_is_array(member))
        return bad(r, "diagnostics %s.%s is not a list", path, name);
    *value = member;
    return 0;
}

static int object(struct reader *r, const json_t *parent, const char *name, const char *path,
                  json_t **value)
{
    json_t *member = json_object_get(parent, name);
    *value = NULL;
    if (member == NULL || json_is_null(member))
        return 0;
    if (!json_is_object(member))
        return bad(r, "diagnostics %s.%s is not an object", path, name);
    *value = member;
    return 0;
}

/* Row i of a list must be an object. */
static int row(struct reader *r, json_t *list, size_t i, const char *path, const char *name,
               json_t **value, char *row_path, size_t row_path_size)
{
    *value = json_array_get(list, i);
    snprintf(row_path, row_path_size, "%s.%s[%zu]", path, name, i);
    if (!json_is_object(*value))
        return bad(r, "diagnostics %s is not an object", row_path);
    return 0;
}

static bool equals(const char *text, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(text, word, len) == 0;
}

/* --- disks ---------------------------------------------------------------------------------- */

static bool system_mount(const char *mount, size_t len)
{
    static const char *const system_mounts[] = {"/",    "/home", "/var", "/tmp",
                                                "/usr", "/srv",  "/opt"};
    for (size_t i = 0; i < sizeof system_mounts / sizeof system_mounts[0]; i++)
        if (equals(mount, len, system_mounts[i]))
            return true;
    return false;
}

static bool boot_mount(const char *mount, size_t len)
{
    return equals(mount, len, "/boot") || (len > 6 && memcmp(mount, "/boot/", 6) == 0);
}

static int read_disks(struct reader *r, const json_t *section)
{
    int rc;
    json_t *mounts, *unreadable;
    char path[64], fact[FACT_SIZE], name[CLIP_SIZE], reason[SHORT_CLIP_SIZE];
    if ((rc = array(r, section, "mounts", "disks", &mounts)) < 0 ||
        (rc = array(r, section, "unreadable", "disks", &unreadable)) < 0)
        return rc;
    for (size_t i = 0; i < json_array_size(mounts); i++) {
        json_t *mount;
        const char *mount_name;
        size_t mount_len;
        double used = 0, inodes = 0;
        bool used_found, inodes_found, read_only = false, read_only_found;
        if ((rc = row(r, mounts, i, "disks", "mounts", &mount, path, sizeof path)) < 0 ||
            (rc = string(r, mount, "mount", path, &mount_name, &mount_len)) < 0 ||
            (rc = number(r, mount, "used_percent", path, 0, 100, &used, &used_found)) < 0 ||
            (rc = number(r, mount, "inodes_used_percent", path, 0, 100, &inodes, &inodes_found)) <
                0 ||
            (rc = boolean(r, mount, "read_only", path, &read_only, &read_only_found)) < 0)
            return rc;
        if (mount_name == NULL)
            continue;
        clip(name, sizeof name, mount_name, mount_len, CLIP_COLUMNS);
        bool writable = !(read_only_found && read_only);
        if (writable && used_found && used >= NEARLY_FULL_PERCENT) {
            int rule = used < FULL_PERCENT                 ? R_DISK_NEARLY_FULL
                       : boot_mount(mount_name, mount_len) ? R_BOOT_FULL
                                                           : R_DISK_FULL;
            snprintf(fact, sizeof fact, "%s %d%% full", name, (int)(used));
            if ((rc = add(r, rule, mount_name, mount_len, fact)) < 0)
                return rc;
        }
        if (writable && inodes_found && inodes >= FULL_PERCENT) {
            snprintf(fact, sizeof fact, "%s: %d%% of inodes used", name, (int)(inodes));
            if ((rc = add(r, R_INODES_FULL, mount_name, mount_len, fact)) < 0)
                return rc;
        }
        if (!writable && system_mount(mount_name, mount_len)) {
            snprintf(fact, sizeof fact, "%s is read-only", name);
            if ((rc = add(r, R_READ_ONLY, mount_name, mount_len, fact)) < 0)
                return rc;
        }
    }
    for (size_t i = 0; i < json_array_size(unreadable); i++) {
        json_t *failure;
        const char *mount_name, *error;
        size_t mount_len, error_len;
        if ((rc = row(r, unreadable, i, "disks", "unreadable", &failure, path, sizeof path)) < 0 ||
            (rc = string(r, failure, "mount", path, &mount_name, &mount_len)) < 0 ||
            (rc = string(r, failure, "error", path, &error, &error_len)) < 0)
            return rc;
        if (mount_name == NULL)
            continue;
        clip(name, sizeof name, mount_name, mount_len, CLIP_COLUMNS);
        clip(reason, sizeof reason, error ? error : "", error_len, SHORT_CLIP_COLUMNS);
        snprintf(fact, sizeof fact, "%s could not be read: %s", name, reason);
        if ((rc = add(r, R_MOUNT_UNREADABLE, mount_name, mount_len, fact)) < 0)
            return rc;
    }
    return 0;
}

static int read_disks_error(struct reader *r, const char *error)
{
    char fact[FACT_SIZE], reason[CLIP_SIZE];
    if (strncmp(error, "timed out", 9) != 0)
        return 0;
    clip(reason, sizeof reason, error, strlen(error), CLIP_COLUMNS);
    snprintf(fact, sizeof fact, "the disks probe %s", reason);
    return add(r, R_DISKS_TIMED_OUT, "", 0, fact);
}

/* --- memory, CPU, load ---------------------------------------------------------------------- */

#define BYTES_MAX 9e18

static int read_memory(struct reader *r, const json_t *section)
{
    int rc;
    double total = 0, available = 0, used = 0, swap_total = 0, swap_used = 0;
    bool total_found, available_found, used_found, swap_total_found, swap_used_found;
    char fact[FACT_SIZE];
    if ((rc = number(r, section, "total_bytes", "memory", 0, BYTES_MAX, &total, &total_found)) <
            0 ||
        (rc = number(r, section, "available_bytes", "memory", 0, BYTES_MAX, &available,
                     &available_found)) < 0 ||
        (rc = number(r, section, "used_percent", "memory", 0, 100, &used, &used_found)) < 0 ||
        (rc = number(r, section, "swap_total_bytes", "memory", 0, BYTES_MAX, &swap_total,
                     &swap_total_found)) < 0 ||
        (rc = number(r, section, "swap_used_percent", "memory", 0, 100, &swap_used,
                     &swap_used_found)) < 0)
        return rc;
    if (!used_found && total_found && available_found && total > 0 && available <= total) {
        used = 100.0 - available * 100.0 / total;
        used_found = true;
    }
    if (!used_found)
        return 0;
    bool no_swap = swap_total_found && swap_total == 0;
    bool swap_full = no_swap || (swap_used_found && swap_used >= SWAP_FULL_PERCENT) ||
                     (!swap_total_found && !swap_used_found);
    if (used >= MEMORY_EXHAUSTED_PERCENT && swap_full) {
        if (swap_used_found && !no_swap)
            snprintf(fact, sizeof fact, "memory %d%% used, swap %d%% used", (int)(used),
                     (int)(swap_used));
        else
            snprintf(fact, sizeof fact, "memory %d%% used, no swap", (int)(used));
        return add(r, R_MEMORY_EXHAUSTED, "", 0, fact);
    }
    if (used >= MEMORY_HIGH_PERCENT) {
        snprintf(fact, sizeof fact, "memory %d%% used", (int)(used));
        return add(r, R_MEMORY_HIGH, "", 0, fact);
    }
    return 0;
}

static int read_cpu(struct reader *r, const json_t *section, const json_t *system)
{
    int rc;
    json_t *usage = NULL, *load = NULL;
    double cpus = 0, busy = 0, iowait = 0, load5 = 0;
    bool cpus_found = false, busy_found = false, iowait_found = false, load_found = false;
    char fact[FACT_SIZE];
    if (section != NULL &&
        ((rc = number(r, section, "online_cpus", "cpu", 1, 1e6, &cpus, &cpus_found)) < 0 ||
         (rc = object(r, section, "usage", "cpu", &usage)) < 0))
        return rc;
    if (usage != NULL &&
        ((rc = number(r, usage, "busy_percent", "cpu.usage", 0, 100, &busy, &busy_found)) < 0 ||
         (rc = number(r, usage, "iowait_percent", "cpu.usage", 0, 100, &iowait, &iowait_found)) <
             0))
        return rc;
    if (system != NULL && (rc = object(r, system, "load_average", "system", &load)) < 0)
        return rc;
    if (load != NULL &&
        (rc = number(r, load, "5m", "system.load_average", 0, 1e9, &load5, &load_found)) < 0)
        return rc;
    if (busy_found && busy >= CPU_BUSY_PERCENT) {
        snprintf(fact, sizeof fact, "CPU %d%% busy", (int)(busy));
        if ((rc = add(r, R_CPU_BUSY, "", 0, fact)) < 0)
            return rc;
    }
    if (load_found && cpus_found && load5 >= LOAD_PER_CPU * cpus) {
        snprintf(fact, sizeof fact, "load %.1f on %d CPUs", load5, (int)cpus);
        if ((rc = add(r, R_LOAD_HIGH, "", 0, fact)) < 0)
            return rc;
    }
    if (iowait_found && iowait >= IO_WAIT_PERCENT) {
        snprintf(fact, sizeof fact, "CPU waiting for disks %d%% of the time", (int)(iowait));
        if ((rc = add(r, R_IO_WAIT, "", 0, fact)) < 0)
            return rc;
    }
    return 0;
}

/* --- network -------------------------------------------------------------------------------- */

static int read_network(struct reader *r, const json_t *section)
{
    int rc;
    json_t *interfaces, *routes, *dns, *nameservers = NULL;
    char path[64], fact[FACT_SIZE], reason[CLIP_SIZE];
    if ((rc = array(r, section, "interfaces", "network", &interfaces)) < 0 ||
        (rc = array(r, section, "default_routes", "network", &routes)) < 0 ||
        (rc = object(r, section, "dns", "network", &dns)) < 0)
        return rc;
    if (interfaces != NULL) {
        bool any_up = false;
        for (size_t i = 0; i < json_array_size(interfaces); i++) {
            json_t *interface;
            bool loopback = false, up = false, running = true, loopback_found, up_found,
                 running_found;
            if ((rc = row(r, interfaces, i, "network", "interfaces", &interface, path,
                          sizeof path)) < 0 ||
                (rc = boolean(r, interface, "loopback", path, &loopback, &loopback_found)) < 0 ||
                (rc = boolean(r, interface, "up", path, &up, &up_found)) < 0 ||
                (rc = boolean(r, interface, "running", path, &running, &running_found)) < 0)
                return rc;
            if (!(loopback_found && loopback) && up_found && up && (!running_found || running))
                any_up = true;
        }
        if (!any_up && (rc = add(r, R_NO_INTERFACE_UP, "", 0, "no network interface is up")) < 0)
            return rc;
    }
    for (size_t i = 0; i < json_array_size(routes); i++) {
        json_t *route;
        if ((rc = row(r, routes, i, "network", "default_routes", &route, path, sizeof path)) < 0)
            return rc;
    }
    if (routes != NULL && json_array_size(routes) == 0 &&
        (rc = add(r, R_NO_DEFAULT_ROUTE, "", 0, "no default route")) < 0)
        return rc;
    if (dns == NULL)
        return 0;
    const char *error;
    size_t error_len;
    if ((rc = string(r, dns, "error", "network.dns", &error, &error_len)) < 0 ||
        (rc = array(r, dns, "nameservers", "network.dns", &nameservers)) < 0)
        return rc;
    for (size_t i = 0; i < json_array_size(nameservers); i++)
        if (!json_is_string(json_array_get(nameservers, i)))
            return bad(r, "diagnostics network.dns.nameservers[%zu] is not a string", i);
    if (error != NULL) {
        clip(reason, sizeof reason, error, error_len, CLIP_COLUMNS);
        snprintf(fact, sizeof fact, "no DNS server known: %s", reason);
        return add(r, R_NO_DNS, "", 0, fact);
    }
    if (nameservers != NULL && json_array_size(nameservers) == 0)
        return add(r, R_NO_DNS, "", 0, "no DNS server configured");
    return 0;
}

/* --- processes ------------------------------------------------------------------------------ */

static bool cryptominer(const char *name, size_t len)
{
    static const char *const miners[] = {"xmrig",      "xmr-stak", "minerd",  "cpuminer",
                                         "kdevtmpfsi", "kinsing",  "ccminer", "nbminer",
                                         "ethminer",   "lolminer", "t-rex",   "phoenixminer"};
    for (size_t i = 0; i < sizeof miners / sizeof miners[0]; i++)
        if (strlen(miners[i]) == len && strncasecmp(name, miners[i], len) == 0)
            return true;
    return false;
}

static bool already_found(const struct reader *r, int rule, const char *key, size_t key_len)
{
    for (size_t i = 0; i < r->findings->count; i++) {
        const struct entry *entry = &r->findings->items[i];
        if (entry->rule_index == (size_t)rule && strlen(entry->finding.key) == key_len &&
            memcmp(entry->finding.key, key, key_len) == 0)
            return true;
    }
    return false;
}

static int read_processes(struct reader *r, const json_t *section)
{
    int rc;
    static const char *const lists[] = {"top_cpu", "top_memory"};
    char path[64], fact[FACT_SIZE], name_text[CLIP_SIZE];
    const char *hog = NULL;
    size_t hog_len = 0;
    double hog_cpu = 0;
    for (size_t l = 0; l < 2; l++) {
        json_t *list;
        if ((rc = array(r, section, lists[l], "processes", &list)) < 0)
            return rc;
        for (size_t i = 0; i < json_array_size(list); i++) {
            json_t *process;
            const char *name;
            size_t name_len;
            double cpu = 0;
            bool cpu_found;
            if ((rc = row(r, list, i, "processes", lists[l], &process, path, sizeof path)) < 0 ||
                (rc = string(r, process, "name", path, &name, &name_len)) < 0 ||
                (rc = number(r, process, "cpu_percent", path, 0, 1e7, &cpu, &cpu_found)) < 0)
                return rc;
            if (name == NULL)
                continue;
            if (cryptominer(name, name_len)) {
                if (already_found(r, R_CRYPTOMINER, name, name_len))
                    continue;
                clip(name_text, sizeof name_text, name, name_len, CLIP_COLUMNS);
                snprintf(fact, sizeof fact, "known cryptominer \"%s\" running", name_text);
                if ((rc = add(r, R_CRYPTOMINER, name, name_len, fact)) < 0)
                    return rc;
            } else if (l == 0 && cpu_found && cpu >= CPU_HOG_PERCENT && cpu > hog_cpu) {
                hog = name;
                hog_len = name_len;
                hog_cpu = cpu;
            }
        }
    }
    if (hog == NULL)
        return 0;
    clip(name_text, sizeof name_text, hog, hog_len, CLIP_COLUMNS);
    snprintf(fact, sizeof fact, "\"%s\" uses %d%% CPU", name_text, (int)(hog_cpu));
    return add(r, R_CPU_HOG, hog, hog_len, fact);
}

/* --- services ------------------------------------------------------------------------------- */

static const struct {
    const char *name; /* the unit's name before '@' and its type */
    int rule;
} service_kinds[] = {
    {"NetworkManager", R_SERVICE_NETWORK},
    {"NetworkManager-wait-online", R_SERVICE_NETWORK},
    {"systemd-networkd", R_SERVICE_NETWORK},
    {"systemd-resolved", R_SERVICE_NETWORK},
    {"wpa_supplicant", R_SERVICE_NETWORK},
    {"networking", R_SERVICE_NETWORK},
    {"dhcpcd", R_SERVICE_NETWORK},
    {"iwd", R_SERVICE_NETWORK},
    {"connman", R_SERVICE_NETWORK},
    {"sssd", R_SERVICE_LOGIN},
    {"systemd-logind", R_SERVICE_LOGIN},
    {"gdm", R_SERVICE_LOGIN},
    {"gdm3", R_SERVICE_LOGIN},
    {"sddm", R_SERVICE_LOGIN},
    {"lightdm", R_SERVICE_LOGIN},
    {"display-manager", R_SERVICE_LOGIN},
    {"accounts-daemon", R_SERVICE_LOGIN},
    {"winbind", R_SERVICE_LOGIN},
    {"nslcd", R_SERVICE_LOGIN},
    {"realmd", R_SERVICE_LOGIN},
    {"cups", R_SERVICE_PRINTING},
    {"cups-browsed", R_SERVICE_PRINTING},
    {"saned", R_SERVICE_PRINTING},
    {"apparmor", R_SERVICE_SECURITY},
    {"auditd", R_SERVICE_SECURITY},
    {"ufw", R_SERVICE_SECURITY},
    {"firewalld", R_SERVICE_SECURITY},
    {"fail2ban", R_SERVICE_SECURITY},
    {"clamav-daemon", R_SERVICE_SECURITY},
    {"clamav-freshclam", R_SERVICE_SECURITY},
    {"lvm2-monitor", R_SERVICE_STORAGE},
    {"mdmonitor", R_SERVICE_STORAGE},
    {"smartd", R_SERVICE_STORAGE},
    {"udisks2", R_SERVICE_STORAGE},
};

static bool ends_with(const char *text, size_t len, const char *suffix)
{
    size_t suffix_len = strlen(suffix);
    return len >= suffix_len && memcmp(text + len - suffix_len, suffix, suffix_len) == 0;
}

static bool starts_with(const char *text, size_t len, const char *prefix)
{
    size_t prefix_len = strlen(prefix);
    return len >= prefix_len && memcmp(text, prefix, prefix_len) == 0;
}

/*
 * The unit as the fingerprint keeps it: a template's instance is left out ("getty@tty1.service"
 * is "getty@.service"), since it names the machine's own things. *base_len is the length of the
 * name before '@' and the unit's type.
 */
static size_t unit_key(const char *unit, size_t len, char *key, size_t *base_len)
{
    const char *at = memchr(unit, '@', len);
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        if (unit[i - 1] == '.') {
            dot = unit + i - 1;
            break;
        }
    }
    if (at != NULL && dot != NULL && dot > at) {
        size_t head = (size_t)(at - unit) + 1;
        size_t tail = len - (size_t)(dot - unit);
        memcpy(key, unit, head);
        memcpy(key + head, dot, tail);
        *base_len = head - 1;
        return head + tail;
    }
    memcpy(key, unit, len);
    *base_len = at ? (size_t)(at - unit) : dot ? (size_t)(dot - unit) : len;
    return len;
}

static int unit_rule(const char *unit, size_t len, size_t base_len)
{
    if (ends_with(unit, len, ".mount") || ends_with(unit, len, ".automount") ||
        ends_with(unit, len, ".swap") || starts_with(unit, len, "systemd-fsck") ||
        starts_with(unit, len, "zfs-"))
        return R_SERVICE_STORAGE;
    for (size_t i = 0; i < sizeof service_kinds / sizeof service_kinds[0]; i++)
        if (equals(unit, base_len, service_kinds[i].name))
            return service_kinds[i].rule;
    return R_SERVICE_OTHER;
}

static int read_services(struct reader *r, const json_t *section)
{
    int rc;
    json_t *units;
    char path[64], fact[FACT_SIZE], name[CLIP_SIZE];
    if ((rc = array(r, section, "failed_units", "services", &units)) < 0)
        return rc;
    for (size_t i = 0; i < json_array_size(units); i++) {
        json_t *unit;
        const char *unit_name;
        size_t unit_len, base_len;
        if ((rc = row(r, units, i, "services", "failed_units", &unit, path, sizeof path)) < 0 ||
            (rc = string(r, unit, "unit", path, &unit_name, &unit_len)) < 0)
            return rc;
        if (unit_name == NULL || unit_len == 0)
            continue;
        char *key = malloc(unit_len + 1);
        if (key == NULL)
            return bad(r, "out of memory"), TL_ENOMEM;
        size_t key_len = unit_key(unit_name, unit_len, key, &base_len);
        int rule = unit_rule(unit_name, unit_len, base_len);
        clip(name, sizeof name, unit_name, unit_len, CLIP_COLUMNS);
        snprintf(fact, sizeof fact, "\"%s\" failed", name);
        rc = already_found(r, rule, key, key_len) ? 0 : add(r, rule, key, key_len, fact);
        free(key);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- time ----------------------------------------------------------------------------------- */

static int read_time(struct reader *r, const json_t *section)
{
    int rc;
    bool synchronised = true, found;
    if ((rc = boolean(r, section, "synchronised", "time", &synchronised, &found)) < 0)
        return rc;
    if (found && !synchronised)
        return add(r, R_CLOCK_UNSYNCED, "", 0, "the clock is not synchronised");
    return 0;
}

/* --- logs ----------------------------------------------------------------------------------- */

static const struct {
    int rule;
    const char *phrases;
    const char *what; /* "%zu <what> in the log" */
} log_rules[] = {
    {R_FAILED_LOGINS,
     "failed password|authentication failure|invalid user|login failures|failed login|failed "
     "logins|failed logon",
     "failed logins"},
    {R_DISK_IO_ERRORS,
     "i o error|medium error|uncorrectable error|unrecovered read error|failed command|bad "
     "sector|bad sectors",
     "disk errors"},
    {R_FS_ERRORS,
     "ext4 fs error|ext3 fs error|ext2 fs error|btrfs error|btrfs critical|metadata "
     "corruption|corruption detected|remounting filesystem read only|forced readonly|filesystem "
     "has errors",
     "file system errors"},
    {R_HARDWARE_ERRORS, "hardware error|machine check", "hardware errors"},
    {R_OOM_KILLS, "out of memory", "out-of-memory kills"},
    {R_SEGFAULT, "segfault at", NULL},
    {R_USB_ERRORS,
     "device descriptor read|unable to enumerate usb device|over current change|can not enable",
     "USB errors"},
    {R_OVERHEATING,
     "temperature above threshold|critical temperature|cpu clock throttled|thermal shutdown",
     "overheating messages"},
};

#define LOG_RULE_COUNT (sizeof log_rules / sizeof log_rules[0])

/* The program a kernel segfault line names: "NAME[PID]: segfault at ..." */
static bool segfault_program(const char *line, size_t at, const char **name, size_t *len)
{
    size_t i = at;
    while (i > 0 && line[i - 1] == ' ')
        i--;
    if (i == 0 || line[i - 1] != ':')
        return false;
    i--;
    if (i == 0 || line[i - 1] != ']')
        return false;
    i--;
    size_t digits_end = i;
    while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
        i--;
    if (i == digits_end || i == 0 || line[i - 1] != '[')
        return false;
    size_t end = i - 1;
    size_t start = end;
    while (start > 0 && line[start - 1] != ' ' && end - start < 64)
        start--;
    if (start == end || (start > 0 && line[start - 1] != ' '))
        return false;
    *name = line + start;
    *len = end - start;
    return true;
}

static int read_logs(struct reader *r, const json_t *section)
{
    int rc;
    json_t *lines;
    size_t counts[LOG_RULE_COUNT] = {0};
    const char *first_line[LOG_RULE_COUNT] = {0};
    size_t first_len[LOG_RULE_COUNT] = {0};
    char fact[FACT_SIZE], quote[CLIP_SIZE];
    if ((rc = array(r, section, "lines", "logs", &lines)) < 0)
        return rc;
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *line = json_array_get(lines, i);
        if (!json_is_string(line))
            return bad(r, "diagnostics logs.lines[%zu] is not a string", i);
        const char *text = json_string_value(line);
        size_t len = json_string_length(line);
        tl__words_reset(&r->words);
        if ((rc = tl__words_add(&r->words, text, len, 0)) < 0)
            return bad(r, "out of memory"), rc;
        for (size_t k = 0; k < LOG_RULE_COUNT; k++) {
            struct tl__match match;
            if (!tl__phrases_find(&r->words, log_rules[k].phrases, &match))
                continue;
            size_t at = r->words.items[match.first].start;
            counts[k]++;
            if (first_line[k] == NULL) {
                first_line[k] = text + at;
                first_len[k] = len - at;
            }
            if (log_rules[k].rule != R_SEGFAULT)
                continue;
            const char *program = NULL;
            size_t program_len = 0;
            if (!segfault_program(text, at, &program, &program_len))
                program = "";
            if (already_found(r, R_SEGFAULT, program, program_len))
                continue;
            if (program_len > 0) {
                clip(quote, sizeof quote, program, program_len, CLIP_COLUMNS);
                snprintf(fact, sizeof fact, "\"%s\" crashed (segfault)", quote);
            } else {
                clip(quote, sizeof quote, text + at, len - at, CLIP_COLUMNS);
                snprintf(fact, sizeof fact, "a program crashed: \"%s\"", quote);
            }
            if ((rc = add(r, R_SEGFAULT, program, program_len, fact)) < 0)
                return rc;
        }
    }
    for (size_t k = 0; k < LOG_RULE_COUNT; k++) {
        if (counts[k] == 0 || log_rules[k].what == NULL)
            continue;
        int rule = log_rules[k].rule;
        if (rule == R_FAILED_LOGINS) {
            rule = counts[k] >= MANY_FAILED_LOGINS ? R_FAILED_LOGINS_MANY : R_FAILED_LOGINS;
            snprintf(fact, sizeof fact, "%zu failed login%s in the log", counts[k],
                     counts[k] == 1 ? "" : "s");
        } else {
            clip(quote, sizeof quote, first_line[k], first_len[k], CLIP_COLUMNS);
            snprintf(fact, sizeof fact, "%s in the log (%zu): \"%s\"", log_rules[k].what, counts[k],
                     quote);
        }
        if ((rc = add(r, rule, "", 0, fact)) < 0)
            return rc;
    }
    return 0;
}

/* --- the document --------------------------------------------------------------------------- */

/* A section: NULL if absent or an error (*error set then); an error if it is not an object. */
static int get_section(struct reader *r, const json_t *sections, const char *name, json_t **out,
                       const char **error)
{
    json_t *section = json_object_get(sections, name);
    *out = NULL;
    *error = NULL;
    if (section == NULL || json_is_null(section))
        return 0;
    if (!json_is_object(section))
        return bad(r, "diagnostics section \"%s\" is not an object", name);
    json_t *message = json_object_get(section, "error");
    if (message != NULL) {
        if (!json_is_string(message))
            return bad(r, "diagnostics section \"%s\" has an error that is not a string", name);
        *error = json_string_value(message);
        return 0;
    }
    *out = section;
    return 0;
}

static int compare_entries(const void *a_ptr, const void *b_ptr)
{
    const struct entry *a = a_ptr, *b = b_ptr;
    if (a->rule_index != b->rule_index)
        return a->rule_index < b->rule_index ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int read_document(struct reader *r, const json_t *document)
{
    int rc;
    if (!json_is_object(document))
        return bad(r, "the diagnostics are not a JSON object");
    json_t *schema = json_object_get(document, "schema");
    if (schema == NULL)
        return bad(r, "the diagnostics have no schema number");
    if (!json_is_integer(schema))
        return bad(r, "the diagnostics' schema is not a whole number");
    if (json_integer_value(schema) != 1)
        return bad(r, "the diagnostics' schema %lld is not one this relay reads (1)",
                   (long long)json_integer_value(schema));
    json_t *sections = json_object_get(document, "sections");
    if (sections == NULL)
        return bad(r, "the diagnostics have no \"sections\"");
    if (!json_is_object(sections))
        return bad(r, "the diagnostics' \"sections\" is not an object");
    json_t *system, *cpu, *memory, *disks, *network, *processes, *services, *time, *logs;
    const char *error, *disks_error;
    if ((rc = get_section(r, sections, "system", &system, &error)) < 0 ||
        (rc = get_section(r, sections, "cpu", &cpu, &error)) < 0 ||
        (rc = get_section(r, sections, "memory", &memory, &error)) < 0 ||
        (rc = get_section(r, sections, "disks", &disks, &disks_error)) < 0 ||
        (rc = get_section(r, sections, "network", &network, &error)) < 0 ||
        (rc = get_section(r, sections, "processes", &processes, &error)) < 0 ||
        (rc = get_section(r, sections, "services", &services, &error)) < 0 ||
        (rc = get_section(r, sections, "time", &time, &error)) < 0 ||
        (rc = get_section(r, sections, "logs", &logs, &error)) < 0)
        return rc;
    if ((memory != NULL && (rc = read_memory(r, memory)) < 0) ||
        ((cpu != NULL || system != NULL) && (rc = read_cpu(r, cpu, system)) < 0) ||
        (disks != NULL && (rc = read_disks(r, disks)) < 0) ||
        (disks_error != NULL && (rc = read_disks_error(r, disks_error)) < 0) ||
        (network != NULL && (rc = read_network(r, network)) < 0) ||
        (processes != NULL && (rc = read_processes(r, processes)) < 0) ||
        (services != NULL && (rc = read_services(r, services)) < 0) ||
        (time != NULL && (rc = read_time(r, time)) < 0) ||
        (logs != NULL && (rc = read_logs(r, logs)) < 0))
        return rc;
    /* A document with no finding has no list at all: qsort must not see its NULL. */
    if (r->findings->count > 1)
        qsort(r->findings->items, r->findings->count, sizeof *r->findings->items, compare_entries);
    return 0;
}

int tl_classify_findings_read(const void *json, size_t len, tl_classify_findings_t **findings,
                              char *why, size_t why_size)
{
    int rc;
    json_error_t error;
    json_t *document = NULL;
    struct reader r = {.why = why, .why_size = why_size};
    if (findings == NULL)
        return bad(&r, "no place for the findings");
    if (json == NULL || len == 0)
        return bad(&r, "the diagnostics are empty");
    if (len > TL_CLASSIFY_DIAGNOSTICS_MAX)
        return bad(&r, "the diagnostics are %zu bytes, more than the %d a classification reads",
                   len, TL_CLASSIFY_DIAGNOSTICS_MAX);
    if ((r.findings = calloc(1, sizeof *r.findings)) == NULL) {
        bad(&r, "out of memory");
        rc = TL_ENOMEM;
        goto out;
    }
    document = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (document == NULL) {
        rc = bad(&r, "the diagnostics are not JSON: %s at byte %d", error.text, error.position);
        goto out;
    }
    if ((rc = read_document(&r, document)) < 0)
        goto out;
    *findings = r.findings;
    r.findings = NULL;
out:
    tl__words_free(&r.words);
    tl_classify_findings_free(r.findings);
    json_decref(document);
    return rc;
}
