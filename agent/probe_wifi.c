/*
 * Probe "wifi": the wireless interfaces (those with wireless/ or phy80211
 * under /sys/class/net), their link quality and level from
 * /proc/net/wireless, and the network each is joined to with its signal,
 * from `iw dev` and `iw dev NAME link` where iw is installed, else from
 * NetworkManager's `nmcli -t ... device wifi list --rescan no` (what it
 * already knows: no scan is started). A machine without wireless says so in
 * "status" and nothing else.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COMMAND_TIMEOUT_MS 2000
#define MAX_OUTPUT (64 * 1024)
#define MAX_NAME 64

/* The interface named name (first len bytes), made when absent and create; NULL if full. */
static json_t *interface_named(json_t *interfaces, const char *name, size_t len, bool create,
                               int *rc)
{
    size_t index;
    json_t *entry;
    *rc = 0;
    if (len == 0 || len >= MAX_NAME)
        return NULL;
    json_array_foreach(interfaces, index, entry) {
        const char *entry_name = json_string_value(json_object_get(entry, "name"));
        if (entry_name && strlen(entry_name) == len && memcmp(entry_name, name, len) == 0)
            return entry;
    }
    if (!create || json_array_size(interfaces) >= TL__WIFI_MAX_INTERFACES)
        return NULL;
    char copy[MAX_NAME];
    memcpy(copy, name, len);
    copy[len] = '\0';
    entry = json_object();
    if (!entry || json_array_append_new(interfaces, entry) != 0 ||
        tl__diag_put_text(entry, "name", copy) < 0) {
        *rc = TL_ENOMEM;
        return NULL;
    }
    return entry;
}

/* A number at text, as strtod reads it; false when there is none. */
static bool read_number(const char *text, double *value)
{
    char *end;
    *value = strtod(text, &end);
    return end != text && *value == *value && *value > -1e9 && *value < 1e9;
}

int tl__probe_wifi_list(const char *sys_class_net, json_t *interfaces)
{
    int rc = 0;
    DIR *dir = opendir(sys_class_net);
    if (!dir)
        return 0; /* no such directory: no wireless to list */
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/wireless", sys_class_net, entry->d_name);
        bool wireless = stat(path, &st) == 0;
        snprintf(path, sizeof path, "%s/%s/phy80211", sys_class_net, entry->d_name);
        wireless = wireless || stat(path, &st) == 0;
        if (wireless) {
            interface_named(interfaces, entry->d_name, strlen(entry->d_name), true, &rc);
            if (rc < 0)
                break;
        }
    }
    closedir(dir);
    return rc;
}

/*
 * /proc/net/wireless: two heading lines, then per interface
 *   " wlan0: 0000   54.  -56.  -256        0      0      0      0    157        0"
 * (status, link quality, level in dBm, noise, ...).
 */
int tl__probe_wifi_parse_proc(const char *text, json_t *interfaces)
{
    int rc = 0;
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *name = line + strspn(line, " ");
        char *colon = strchr(name, ':');
        if (!colon || colon == name || strchr(name, '|') ||
            strcspn(name, " ") < (size_t)(colon - name))
            continue;
        json_t *entry = interface_named(interfaces, name, (size_t)(colon - name), true, &rc);
        if (rc < 0)
            break;
        if (!entry)
            continue;
        char *status_end;
        strtoul(colon + 1, &status_end, 16);
        double link, level;
        if (status_end == colon + 1 || !read_number(status_end, &link))
            continue;
        char *after_link = status_end + strspn(status_end, " ");
        after_link += strcspn(after_link, " ");
        if ((rc = tl__diag_put_real(entry, "link_quality", link)) < 0)
            break;
        /* Drivers that report no level print 0 or a positive raw value: only dBm is kept. */
        if (read_number(after_link, &level) && level < 0 && !json_object_get(entry, "signal_dbm") &&
            (rc = tl__diag_put_int(entry, "signal_dbm", (long long)level)) < 0)
            break;
    }
    free(copy);
    return rc;
}

/* The number in "(2437 MHz)" or "2437.0" at text, in whole MHz; false when there is none. */
static bool read_frequency(const char *text, long long *mhz)
{
    const char *paren = strchr(text, '(');
    double value;
    if (!read_number(paren ? paren + 1 : text, &value) || value <= 0)
        return false;
    *mhz = (long long)(value + 0.5);
    return true;
}

/*
 * `iw dev`:
 *   phy#0
 *   	Interface wlan0
 *   		ssid MyNetwork
 *   		type managed
 *   		channel 6 (2437 MHz), width: 20 MHz, center1: 2437 MHz
 */
int tl__probe_wifi_parse_iw_dev(const char *text, json_t *interfaces)
{
    int rc = 0;
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    json_t *current = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        char *word = line + strspn(line, " \t");
        long long mhz;
        if (strncmp(word, "Interface ", 10) == 0) {
            const char *name = word + 10;
            current = interface_named(interfaces, name, strcspn(name, " \t"), true, &rc);
        } else if (!current) {
            continue;
        } else if (strncmp(word, "ssid ", 5) == 0) {
            rc = tl__diag_put_text(current, "ssid", word + 5);
        } else if (strncmp(word, "type ", 5) == 0) {
            word[5 + strcspn(word + 5, " \t")] = '\0';
            rc = tl__diag_put_text(current, "mode", word + 5);
        } else if (strncmp(word, "channel ", 8) == 0 && read_frequency(word + 8, &mhz) &&
                   strchr(word, '(')) {
            rc = tl__diag_put_int(current, "frequency_mhz", mhz);
        }
        if (rc < 0)
            break;
    }
    free(copy);
    return rc;
}

/*
 * `iw dev NAME link`:
 *   Connected to 00:11:22:33:44:55 (on wlan0)
 *   	SSID: MyNetwork
 *   	freq: 2437
 *   	signal: -42 dBm
 *   	tx bitrate: 72.2 MBit/s MCS 7 short GI
 * or "Not connected.".
 */
int tl__probe_wifi_parse_iw_link(const char *text, json_t *interface)
{
    int rc = 0;
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    bool connected = false, known = false;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        char *word = line + strspn(line, " \t");
        double value;
        long long mhz;
        if (strncmp(word, "Connected to ", 13) == 0) {
            connected = known = true;
        } else if (strncmp(word, "Not connected", 13) == 0) {
            known = true;
        } else if (!connected) {
            continue;
        } else if (strncmp(word, "SSID: ", 6) == 0) {
            rc = tl__diag_put_text(interface, "ssid", word + 6);
        } else if (strncmp(word, "freq: ", 6) == 0 && read_frequency(word + 6, &mhz)) {
            rc = tl__diag_put_int(interface, "frequency_mhz", mhz);
        } else if (strncmp(word, "signal: ", 8) == 0 && read_number(word + 8, &value) &&
                   value < 0) {
            rc = tl__diag_put_int(interface, "signal_dbm", (long long)value);
        } else if (strncmp(word, "tx bitrate: ", 12) == 0 && read_number(word + 12, &value) &&
                   value >= 0) {
            rc = tl__diag_put_real(interface, "bitrate_mbps", value);
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && known) {
        rc = tl__diag_put_bool(interface, "connected", connected);
        if (rc == 0 && !connected)
            json_object_del(interface, "ssid");
    }
    free(copy);
    return rc;
}

/*
 * One terse field of nmcli -t: up to an unescaped ':', with "\:" and "\\" unescaped. Moves
 * *cursor past the field and its ':'.
 */
static void nmcli_field(char **cursor, char *out, size_t size)
{
    char *p = *cursor;
    size_t used = 0;
    while (*p && *p != ':') {
        if (*p == '\\' && (p[1] == ':' || p[1] == '\\'))
            p++;
        if (used + 1 < size)
            out[used++] = *p;
        p++;
    }
    out[used] = '\0';
    *cursor = *p == ':' ? p + 1 : p;
}

/*
 * `nmcli -t -f IN-USE,SSID,SIGNAL,CHAN,DEVICE device wifi list --rescan no`: one network a
 * line, "*" first on the one each device is joined to; the others are left out.
 */
int tl__probe_wifi_parse_nmcli(const char *text, json_t *interfaces)
{
    int rc = 0;
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        char in_use[8], ssid[256], signal[16], channel[16], device[MAX_NAME];
        char *cursor = line;
        nmcli_field(&cursor, in_use, sizeof in_use);
        nmcli_field(&cursor, ssid, sizeof ssid);
        nmcli_field(&cursor, signal, sizeof signal);
        nmcli_field(&cursor, channel, sizeof channel);
        nmcli_field(&cursor, device, sizeof device);
        if (strcmp(in_use, "*") != 0 || device[0] == '\0')
            continue;
        json_t *entry = interface_named(interfaces, device, strlen(device), true, &rc);
        if (rc < 0)
            break;
        if (!entry)
            continue;
        double value;
        if ((rc = tl__diag_put_bool(entry, "connected", true)) < 0 ||
            (ssid[0] && (rc = tl__diag_put_text(entry, "ssid", ssid)) < 0))
            break;
        if (read_number(signal, &value) && value >= 0 && value <= 100 &&
            (rc = tl__diag_put_int(entry, "signal_percent", (long long)value)) < 0)
            break;
        if (read_number(channel, &value) && value > 0 &&
            (rc = tl__diag_put_int(entry, "channel", (long long)value)) < 0)
            break;
    }
    free(copy);
    return rc;
}

static int run_command(const tl_diag_t *diag, const char *const argv[],
                       struct tl__diag_command *command)
{
    int rc = tl__diag_command_run(argv, tl__diag_command_budget(diag, COMMAND_TIMEOUT_MS),
                                  MAX_OUTPUT, command);
    if (rc < 0)
        return rc;
    if (command->timed_out || command->exit_status != 0) {
        tl__diag_command_clear(command);
        return TL_EIO;
    }
    return 0;
}

/* iw's view of every interface: its list, then each one's link. */
static int from_iw(const tl_diag_t *diag, json_t *interfaces, json_t *sources)
{
    static const char *const dev_argv[] = {"iw", "dev", NULL};
    struct tl__diag_command command;
    int rc = run_command(diag, dev_argv, &command);
    if (rc < 0)
        return 0; /* what the other sources said stands */
    rc = tl__probe_wifi_parse_iw_dev(command.output, interfaces);
    tl__diag_command_clear(&command);
    size_t index;
    json_t *entry;
    json_array_foreach(interfaces, index, entry) {
        if (rc < 0)
            break;
        const char *name = json_string_value(json_object_get(entry, "name"));
        const char *link_argv[] = {"iw", "dev", name, "link", NULL};
        if (!name || name[0] == '-' || run_command(diag, link_argv, &command) < 0)
            continue;
        rc = tl__probe_wifi_parse_iw_link(command.output, entry);
        tl__diag_command_clear(&command);
    }
    if (rc == 0 && json_array_append_new(sources, json_string("iw")) != 0)
        rc = TL_ENOMEM;
    return rc;
}

static int from_nmcli(const tl_diag_t *diag, json_t *interfaces, json_t *sources)
{
    static const char *const argv[] = {"nmcli",  "-t",   "-f",   "IN-USE,SSID,SIGNAL,CHAN,DEVICE",
                                       "device", "wifi", "list", "--rescan",
                                       "no",     NULL};
    struct tl__diag_command command;
    if (run_command(diag, argv, &command) < 0)
        return 0;
    int rc = tl__probe_wifi_parse_nmcli(command.output, interfaces);
    tl__diag_command_clear(&command);
    if (rc == 0 && json_array_append_new(sources, json_string("nmcli")) != 0)
        rc = TL_ENOMEM;
    return rc;
}

int tl__probe_wifi_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    char path[512], *text = NULL;
    json_t *interfaces = json_array(), *sources = json_array();
    if (!interfaces || !sources) {
        rc = TL_ENOMEM;
        goto out;
    }
    if ((rc = tl__probe_wifi_list("/sys/class/net", interfaces)) < 0)
        goto out;
    if (tl__diag_read_file("/proc/net/wireless", MAX_OUTPUT, &text, NULL) == 0) {
        if ((rc = tl__probe_wifi_parse_proc(text, interfaces)) < 0)
            goto out;
        if (json_array_size(interfaces) > 0 &&
            json_array_append_new(sources, json_string("/proc/net/wireless")) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    if (json_array_size(interfaces) == 0) {
        rc = tl__diag_put_text(section, "status", "no wireless interface");
        goto out;
    }
    if (tl__diag_find_program("iw", path, sizeof path) == 0)
        rc = from_iw(diag, interfaces, sources);
    else if (tl__diag_find_program("nmcli", path, sizeof path) == 0)
        rc = from_nmcli(diag, interfaces, sources);
    if (rc < 0)
        goto out;
    size_t index, connected = 0, known = 0;
    json_t *entry;
    json_array_foreach(interfaces, index, entry) {
        connected += json_is_true(json_object_get(entry, "connected"));
        known += json_object_get(entry, "connected") != NULL;
    }
    const char *status = connected > 0                          ? "connected"
                         : known == json_array_size(interfaces) ? "not connected"
                                                                : "link state unknown";
    if ((rc = tl__diag_put_text(section, "status", status)) < 0 ||
        (rc = tl__diag_put_int(section, "connected_count", (long long)connected)) < 0)
        goto out;
    if (json_object_set(section, "interfaces", interfaces) != 0 ||
        json_object_set(section, "sources", sources) != 0)
        rc = TL_ENOMEM;
out:
    free(text);
    json_decref(interfaces);
    json_decref(sources);
    return rc;
}
