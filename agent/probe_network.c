/*
 * Probe "network": interfaces (getifaddrs(3), /sys/class/net/NAME/operstate,
 * mtu and statistics/, or /proc/net/dev), default routes (/proc/net/route,
 * /proc/net/ipv6_route), DNS resolvers (/etc/resolv.conf) and whether the
 * relay answers a TCP connect within a short timeout: the one given (--relay), else the one
 * the agent is enrolled with (STATE/relay.json, agent/state.h).
 */
#include "agent/diag.h"
#include "agent/state.h"

#include "proto/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/route.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INTERFACES 64
#define MAX_ADDRESSES 32
#define MAX_RESOLV_ENTRIES 16
#define RELAY_TIMEOUT_MS 3000

/* ---- Interfaces ------------------------------------------------------------------------- */

/* The entry for an interface, made on first sight with its name and flags. */
static json_t *interface_entry(json_t *interfaces, const struct ifaddrs *ifa, bool *full, int *rc)
{
    size_t index;
    json_t *entry;
    json_t *name = tl__diag_text(ifa->ifa_name, strlen(ifa->ifa_name), IFNAMSIZ * 4);
    *rc = 0;
    if (!name) {
        *rc = TL_ENOMEM;
        return NULL;
    }
    json_array_foreach(interfaces, index, entry) {
        if (json_equal(json_object_get(entry, "name"), name)) {
            json_decref(name);
            return entry;
        }
    }
    if (json_array_size(interfaces) >= MAX_INTERFACES) {
        json_decref(name);
        *full = true;
        return NULL;
    }
    entry = json_object();
    if (!entry || json_array_append_new(interfaces, entry) != 0 ||
        json_object_set_new(entry, "name", name) != 0) {
        *rc = TL_ENOMEM;
        return NULL;
    }
    unsigned flags = ifa->ifa_flags;
    if ((*rc = tl__diag_put_bool(entry, "up", (flags & IFF_UP) != 0)) < 0 ||
        (*rc = tl__diag_put_bool(entry, "running", (flags & IFF_RUNNING) != 0)) < 0 ||
        (*rc = tl__diag_put_bool(entry, "loopback", (flags & IFF_LOOPBACK) != 0)) < 0)
        return NULL;
    json_t *addresses = json_array();
    if (!addresses || json_object_set_new(entry, "addresses", addresses) != 0) {
        *rc = TL_ENOMEM;
        return NULL;
    }
    return entry;
}

static int prefix_length(const struct sockaddr *mask)
{
    const unsigned char *bytes;
    size_t len;
    if (!mask)
        return -1;
    if (mask->sa_family == AF_INET) {
        bytes = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
        len = 4;
    } else if (mask->sa_family == AF_INET6) {
        bytes = (const unsigned char *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
        len = 16;
    } else {
        return -1;
    }
    int bits = 0;
    for (size_t i = 0; i < len; i++)
        bits += __builtin_popcount(bytes[i]);
    return bits;
}

static int add_address(json_t *entry, const struct ifaddrs *ifa)
{
    char address[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 16];
    const void *raw = ifa->ifa_addr->sa_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
    if (!inet_ntop(ifa->ifa_addr->sa_family, raw, address, sizeof address))
        return 0;
    int prefix = prefix_length(ifa->ifa_netmask);
    if (prefix >= 0)
        snprintf(text, sizeof text, "%s/%d", address, prefix);
    else
        snprintf(text, sizeof text, "%s", address);
    json_t *addresses = json_object_get(entry, "addresses");
    if (json_array_size(addresses) >= MAX_ADDRESSES)
        return 0;
    json_t *value = tl__diag_text(text, strlen(text), sizeof text);
    return value && json_array_append_new(addresses, value) == 0 ? 0 : TL_ENOMEM;
}

static int add_mac(json_t *entry, const struct ifaddrs *ifa)
{
    const struct sockaddr_ll *link = (const struct sockaddr_ll *)ifa->ifa_addr;
    if (link->sll_halen != 6)
        return 0;
    unsigned any = 0;
    for (int i = 0; i < 6; i++)
        any |= link->sll_addr[i];
    if (!any)
        return 0;
    char mac[18];
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", link->sll_addr[0], link->sll_addr[1],
             link->sll_addr[2], link->sll_addr[3], link->sll_addr[4], link->sll_addr[5]);
    return tl__diag_put_text(entry, "mac", mac);
}

static const char *const counters[] = {"rx_bytes",  "tx_bytes",   "rx_errors",
                                       "tx_errors", "rx_dropped", "tx_dropped"};

/* Counters from /proc/net/dev, for kernels without sysfs statistics. */
static int add_proc_net_dev_counters(json_t *entry, const char *name)
{
    char *text = NULL;
    int rc = tl__diag_read_file("/proc/net/dev", 256 * 1024, &text, NULL);
    if (rc < 0)
        return 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        while (*line == ' ')
            line++;
        if (strcmp(line, name) != 0)
            continue;
        /* Receive: bytes packets errs drop ...(8 fields); transmit: bytes packets errs drop. */
        unsigned long long v[16];
        if (sscanf(
                colon + 1,
                "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                &v[11], &v[12], &v[13], &v[14], &v[15]) >= 12) {
            unsigned long long values[6] = {v[0], v[8], v[2], v[10], v[3], v[11]};
            for (size_t c = 0; c < 6 && rc == 0; c++)
                rc = tl__diag_put_int(entry, counters[c], (long long)values[c]);
        }
        break;
    }
    free(text);
    return rc;
}

static int add_sysfs_details(json_t *entry)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    char path[256], value[128];
    int rc;
    if (!name || strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
        return 0;
    snprintf(path, sizeof path, "/sys/class/net/%s/operstate", name);
    if (tl__diag_read_line(path, value, sizeof value) == 0 &&
        (rc = tl__diag_put_text(entry, "operstate", value)) < 0)
        return rc;
    snprintf(path, sizeof path, "/sys/class/net/%s/mtu", name);
    if (tl__diag_read_line(path, value, sizeof value) == 0 &&
        (rc = tl__diag_put_int(entry, "mtu", strtoll(value, NULL, 10))) < 0)
        return rc;
    bool from_sysfs = false;
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        snprintf(path, sizeof path, "/sys/class/net/%s/statistics/%s", name, counters[c]);
        if (tl__diag_read_line(path, value, sizeof value) == 0) {
            from_sysfs = true;
            if ((rc = tl__diag_put_int(entry, counters[c], strtoll(value, NULL, 10))) < 0)
                return rc;
        }
    }
    return from_sysfs ? 0 : add_proc_net_dev_counters(entry, name);
}

static int put_interfaces(json_t *section)
{
    int rc = 0;
    struct ifaddrs *list = NULL;
    json_t *interfaces = json_array();
    bool full = false;
    if (!interfaces)
        return TL_ENOMEM;
    if (getifaddrs(&list) != 0) {
        rc = tl__diag_put_text(section, "interfaces_error", strerror(errno));
        goto out;
    }
    for (const struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_name)
            continue;
        json_t *entry = interface_entry(interfaces, ifa, &full, &rc);
        if (rc < 0)
            goto out;
        if (!entry || !ifa->ifa_addr)
            continue;
        if (ifa->ifa_addr->sa_family == AF_INET || ifa->ifa_addr->sa_family == AF_INET6)
            rc = add_address(entry, ifa);
        else if (ifa->ifa_addr->sa_family == AF_PACKET)
            rc = add_mac(entry, ifa);
        if (rc < 0)
            goto out;
    }
    size_t index;
    json_t *entry;
    json_array_foreach(interfaces, index, entry) {
        if ((rc = add_sysfs_details(entry)) < 0)
            goto out;
    }
    if (json_object_set(section, "interfaces", interfaces) != 0 ||
        (full && tl__diag_put_bool(section, "interfaces_truncated", true) < 0))
        rc = TL_ENOMEM;
out:
    if (list)
        freeifaddrs(list);
    json_decref(interfaces);
    return rc;
}

/* ---- Routes and DNS --------------------------------------------------------------------- */

static int add_route(json_t *routes, const char *family, const char *gateway, const char *interface,
                     long long metric)
{
    json_t *route = json_object();
    if (!route || json_array_append_new(routes, route) != 0)
        return TL_ENOMEM;
    int rc;
    if ((rc = tl__diag_put_text(route, "family", family)) < 0 ||
        (rc = tl__diag_put_text(route, "gateway", gateway)) < 0 ||
        (rc = tl__diag_put_text(route, "interface", interface)) < 0 ||
        (rc = tl__diag_put_int(route, "metric", metric)) < 0)
        return rc;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* 32 hex digits, in address byte order, into an IPv6 address. */
static bool parse_ipv6_bytes(const char *hex, struct in6_addr *address)
{
    if (strlen(hex) != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
        if (high < 0 || low < 0)
            return false;
        address->s6_addr[i] = (unsigned char)(high << 4 | low);
    }
    return true;
}

int tl__probe_network_parse_routes(const char *ipv4_text, const char *ipv6_text, json_t *routes)
{
    int rc = 0;
    char *copy = strdup(ipv4_text ? ipv4_text : "");
    char *save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char interface[64];
        unsigned destination, gateway, flags, mask;
        int metric;
        /* Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses are raw words. */
        if (sscanf(line, "%63s %x %x %x %*d %*d %d %x", interface, &destination, &gateway, &flags,
                   &metric, &mask) != 6)
            continue;
        if (destination != 0 || mask != 0 || !(flags & RTF_UP) || (flags & RTF_REJECT))
            continue;
        char text[INET_ADDRSTRLEN] = "";
        struct in_addr address = {.s_addr = gateway};
        if ((flags & RTF_GATEWAY) && !inet_ntop(AF_INET, &address, text, sizeof text))
            continue;
        if ((rc = add_route(routes, "ipv4", text[0] ? text : NULL, interface, metric)) < 0)
            goto out;
    }
    free(copy);
    copy = strdup(ipv6_text ? ipv6_text : "");
    save = NULL;
    if (!copy)
        return TL_ENOMEM;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char destination[33], source[33], next_hop[33], interface[64];
        unsigned destination_len, source_len, metric, refcount, use, flags;
        if (sscanf(line, "%32s %x %32s %x %32s %x %x %x %x %63s", destination, &destination_len,
                   source, &source_len, next_hop, &metric, &refcount, &use, &flags,
                   interface) != 10)
            continue;
        struct in6_addr any, gateway;
        if (!parse_ipv6_bytes(destination, &any) || !parse_ipv6_bytes(next_hop, &gateway) ||
            !IN6_IS_ADDR_UNSPECIFIED(&any) || destination_len != 0 || !(flags & RTF_UP) ||
            (flags & RTF_REJECT))
            continue;
        char text[INET6_ADDRSTRLEN] = "";
        if (!IN6_IS_ADDR_UNSPECIFIED(&gateway) && !inet_ntop(AF_INET6, &gateway, text, sizeof text))
            continue;
        if ((rc = add_route(routes, "ipv6", text[0] ? text : NULL, interface, metric)) < 0)
            goto out;
    }
out:
    free(copy);
    return rc;
}

static int append_text(json_t *list, const char *text)
{
    if (json_array_size(list) >= MAX_RESOLV_ENTRIES)
        return 0;
    json_t *value = tl__diag_text(text, strlen(text), 256);
    return value && json_array_append_new(list, value) == 0 ? 0 : TL_ENOMEM;
}

int tl__probe_network_parse_resolv_conf(const char *text, json_t *dns)
{
    int rc = TL_ENOMEM;
    json_t *nameservers = json_array(), *search = json_array(), *options = json_array();
    char *copy = strdup(text ? text : "");
    char *save = NULL;
    if (!nameservers || !search || !options || !copy)
        goto out;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *word_save = NULL;
        char *keyword = strtok_r(line, " \t\r", &word_save);
        if (!keyword || keyword[0] == '#' || keyword[0] == ';')
            continue;
        json_t *list = strcmp(keyword, "nameserver") == 0 ? nameservers
                       : (strcmp(keyword, "search") == 0 || strcmp(keyword, "domain") == 0) ? search
                       : strcmp(keyword, "options") == 0 ? options
                                                         : NULL;
        if (!list)
            continue;
        for (char *word = strtok_r(NULL, " \t\r", &word_save); word;
             word = strtok_r(NULL, " \t\r", &word_save)) {
            if (word[0] == '#' || word[0] == ';')
                break;
            if (append_text(list, word) < 0)
                goto out;
            if (list == nameservers)
                break; /* one address per nameserver line */
        }
    }
    if (json_object_set(dns, "nameservers", nameservers) != 0 ||
        json_object_set(dns, "search", search) != 0 ||
        json_object_set(dns, "options", options) != 0)
        goto out;
    rc = 0;
out:
    free(copy);
    json_decref(nameservers);
    json_decref(search);
    json_decref(options);
    return rc;
}

static int put_routes_and_dns(json_t *section)
{
    int rc;
    char *ipv4 = NULL, *ipv6 = NULL, *resolv = NULL;
    json_t *routes = json_array(), *dns = json_object();
    if (!routes || !dns) {
        rc = TL_ENOMEM;
        goto out;
    }
    tl__diag_read_file("/proc/net/route", 256 * 1024, &ipv4, NULL);
    tl__diag_read_file("/proc/net/ipv6_route", 1024 * 1024, &ipv6, NULL);
    if ((rc = tl__probe_network_parse_routes(ipv4, ipv6, routes)) < 0)
        goto out;
    if (json_object_set(section, "default_routes", routes) != 0) {
        rc = TL_ENOMEM;
        goto out;
    }
    int read_rc = tl__diag_read_file("/etc/resolv.conf", 64 * 1024, &resolv, NULL);
    if (read_rc < 0)
        rc = tl__diag_put_text(dns, "error", tl_strerror(read_rc));
    else
        rc = tl__probe_network_parse_resolv_conf(resolv, dns);
    if (rc == 0 && json_object_set(section, "dns", dns) != 0)
        rc = TL_ENOMEM;
out:
    free(ipv4);
    free(ipv6);
    free(resolv);
    json_decref(routes);
    json_decref(dns);
    return rc;
}

/* ---- Relay reachability ------------------------------------------------------------------- */

/*
 * The relay to try when none was given: the enrolled one. 0 with host and port filled, 1 when
 * there is none (not enrolled, no state directory), or TL_E* when relay.json cannot be read
 * (its reason in why).
 */
static int enrolled_relay(const tl_diag_t *diag, char *host, size_t host_size, char *port,
                          size_t port_size, char *why, size_t why_size)
{
    char dir[TL_STATE_PATH_MAX];
    tl_agent_state_t state;
    if (tl_state_dir(tl_diag_state_dir(diag), dir, sizeof dir) != 0)
        return 1;
    int rc = tl_state_load(dir, &state);
    if (rc != 0) {
        snprintf(why, why_size, "%s/%s cannot be read: %s", dir, TL_STATE_RELAY,
                 rc == TL_EINVAL ? "it is damaged" : tl_strerror(rc));
        return rc;
    }
    if (!state.enrolled)
        return 1;
    snprintf(host, host_size, "%s", state.relay_host);
    snprintf(port, port_size, "%u", (unsigned)state.relay_port);
    return 0;
}

static int put_relay(const tl_diag_t *diag, json_t *section)
{
    int rc;
    const char *host, *port, *source = "--relay";
    char enrolled_host[256], enrolled_port[8], why[TL_STATE_PATH_MAX + 64];
    json_t *relay = json_object();
    if (!relay || json_object_set_new(section, "relay", relay) != 0)
        return TL_ENOMEM;
    if (!tl_diag_relay(diag, &host, &port)) {
        int enrolled = enrolled_relay(diag, enrolled_host, sizeof enrolled_host, enrolled_port,
                                      sizeof enrolled_port, why, sizeof why);
        if (enrolled != 0) {
            if ((rc = tl__diag_put_bool(relay, "configured", false)) < 0 ||
                (rc = tl__diag_put_text(relay, "status", "not configured")) < 0 ||
                (enrolled < 0 && (rc = tl__diag_put_text(relay, "error", why)) < 0))
                return rc;
            return 0;
        }
        host = enrolled_host;
        port = enrolled_port;
        source = "enrolled";
    }
    char address[300];
    snprintf(address, sizeof address, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    if ((rc = tl__diag_put_bool(relay, "configured", true)) < 0 ||
        (rc = tl__diag_put_text(relay, "source", source)) < 0 ||
        (rc = tl__diag_put_text(relay, "address", address)) < 0)
        return rc;
    int budget = tl__diag_command_budget(diag, RELAY_TIMEOUT_MS);
    long long start = tl__diag_now_ms(), deadline = start + budget;
    struct addrinfo *addresses = NULL;
    int gai = tl__diag_resolve(host, port, AI_ADDRCONFIG, deadline, &addresses);
    if (gai != 0) {
        char message[256];
        snprintf(message, sizeof message, "cannot resolve %s: %s", host,
                 gai == EAI_AGAIN && tl__diag_now_ms() >= deadline ? "timed out"
                                                                   : gai_strerror(gai));
        if ((rc = tl__diag_put_bool(relay, "reachable", false)) < 0 ||
            (rc = tl__diag_put_text(relay, "status", "unreachable")) < 0 ||
            (rc = tl__diag_put_text(relay, "reason", message)) < 0)
            return rc;
        return 0;
    }
    int last = -ETIMEDOUT;
    const struct addrinfo *connected = NULL;
    for (const struct addrinfo *ai = addresses; ai && tl__diag_now_ms() < deadline;
         ai = ai->ai_next) {
        last = tl__diag_connect(ai, deadline);
        if (last == 0) {
            connected = ai;
            break;
        }
    }
    char text[INET6_ADDRSTRLEN] = "";
    if (connected) {
        const void *raw =
            connected->ai_family == AF_INET
                ? (const void *)&((const struct sockaddr_in *)connected->ai_addr)->sin_addr
                : (const void *)&((const struct sockaddr_in6 *)connected->ai_addr)->sin6_addr;
        inet_ntop(connected->ai_family, raw, text, sizeof text);
    }
    freeaddrinfo(addresses);
    if ((rc = tl__diag_put_bool(relay, "reachable", connected != NULL)) < 0 ||
        (rc = tl__diag_put_text(relay, "status", connected ? "reachable" : "unreachable")) < 0)
        return rc;
    if (connected) {
        if ((rc = tl__diag_put_text(relay, "connected_to", text)) < 0 ||
            (rc = tl__diag_put_int(relay, "connect_ms", tl__diag_now_ms() - start)) < 0)
            return rc;
    } else {
        char message[160];
        if (last == -ETIMEDOUT)
            snprintf(message, sizeof message, "no connection within %d ms", budget);
        else
            snprintf(message, sizeof message, "%s", strerror(-last));
        if ((rc = tl__diag_put_text(relay, "reason", message)) < 0)
            return rc;
    }
    return 0;
}

int tl__probe_network_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    if ((rc = put_interfaces(section)) < 0 || (rc = put_routes_and_dns(section)) < 0 ||
        (rc = put_relay(diag, section)) < 0)
        return rc;
    return 0;
}
