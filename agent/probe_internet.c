/*
 * Probe "internet": whether the machine can reach beyond the relay. Two
 * checks, each configurable (tl_diag_set_lookup, tl_diag_set_connect, or
 * the TIERLINE_DIAG_LOOKUP and TIERLINE_DIAG_CONNECT environment variables)
 * and each skipped when set to "off":
 *   dns      the system resolver looks up a name (getaddrinfo_a, 3000 ms);
 *   connect  a TCP connect to HOST:PORT (3000 ms); nothing is sent.
 * Apart, they tell a broken resolver from a missing route: with the
 * defaults (an IP address to connect to) the connect needs no resolver.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define CHECK_TIMEOUT_MS 3000
#define MAX_ADDRESSES 8

static void address_text(const struct addrinfo *ai, char *out, size_t size)
{
    const void *raw = ai->ai_family == AF_INET
                          ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
                          : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    if (!inet_ntop(ai->ai_family, raw, out, (socklen_t)size))
        snprintf(out, size, "?");
}

static const char *lookup_failure(int gai, long long deadline)
{
    return gai == EAI_AGAIN && tl__diag_now_ms() >= deadline ? "timed out" : gai_strerror(gai);
}

static int check_lookup(const tl_diag_t *diag, json_t *dns, bool *resolved)
{
    int rc;
    const char *name, *why;
    *resolved = false;
    if (!tl_diag_lookup(diag, &name, &why)) {
        if ((rc = tl__diag_put_bool(dns, "checked", false)) < 0)
            return rc;
        return tl__diag_put_text(dns, "reason", strcmp(why, "off") == 0 ? "turned off" : why);
    }
    if ((rc = tl__diag_put_bool(dns, "checked", true)) < 0 ||
        (rc = tl__diag_put_text(dns, "name", name)) < 0)
        return rc;
    long long start = tl__diag_now_ms();
    long long deadline = start + tl__diag_command_budget(diag, CHECK_TIMEOUT_MS);
    struct addrinfo *addresses = NULL;
    int gai = tl__diag_resolve(name, "443", 0, deadline, &addresses);
    if (gai != 0) {
        if ((rc = tl__diag_put_bool(dns, "resolved", false)) < 0)
            return rc;
        return tl__diag_put_text(dns, "reason", lookup_failure(gai, deadline));
    }
    json_t *list = json_array();
    if (!list || json_object_set_new(dns, "addresses", list) != 0) {
        freeaddrinfo(addresses);
        return TL_ENOMEM;
    }
    rc = 0;
    for (const struct addrinfo *ai = addresses; ai && rc == 0; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        address_text(ai, text, sizeof text);
        json_t *value = json_string(text);
        bool seen = false;
        size_t index;
        json_t *member;
        json_array_foreach(list, index, member) {
            seen = seen || json_equal(member, value);
        }
        if (!seen && json_array_size(list) < MAX_ADDRESSES)
            rc = value && json_array_append(list, value) == 0 ? 0 : TL_ENOMEM;
        json_decref(value);
    }
    freeaddrinfo(addresses);
    if (rc < 0 || (rc = tl__diag_put_bool(dns, "resolved", true)) < 0 ||
        (rc = tl__diag_put_int(dns, "lookup_ms", tl__diag_now_ms() - start)) < 0)
        return rc;
    *resolved = true;
    return 0;
}

static int check_connect(const tl_diag_t *diag, json_t *tcp, bool *reachable)
{
    int rc;
    const char *host, *port, *why;
    *reachable = false;
    if (!tl_diag_connect(diag, &host, &port, &why)) {
        if ((rc = tl__diag_put_bool(tcp, "checked", false)) < 0)
            return rc;
        return tl__diag_put_text(tcp, "reason", strcmp(why, "off") == 0 ? "turned off" : why);
    }
    char target[300];
    snprintf(target, sizeof target, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    if ((rc = tl__diag_put_bool(tcp, "checked", true)) < 0 ||
        (rc = tl__diag_put_text(tcp, "address", target)) < 0)
        return rc;
    int budget = tl__diag_command_budget(diag, CHECK_TIMEOUT_MS);
    long long start = tl__diag_now_ms(), deadline = start + budget;
    struct addrinfo *addresses = NULL;
    int gai = tl__diag_resolve(host, port, 0, deadline, &addresses);
    char reason[300] = "";
    if (gai != 0) {
        snprintf(reason, sizeof reason, "cannot resolve %s: %s", host,
                 lookup_failure(gai, deadline));
    } else {
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
        if (connected) {
            char text[INET6_ADDRSTRLEN];
            address_text(connected, text, sizeof text);
            *reachable = true;
            rc = tl__diag_put_text(tcp, "connected_to", text);
            if (rc == 0)
                rc = tl__diag_put_int(tcp, "connect_ms", tl__diag_now_ms() - start);
        } else if (last == -ETIMEDOUT) {
            snprintf(reason, sizeof reason, "no connection within %d ms", budget);
        } else {
            snprintf(reason, sizeof reason, "%s", strerror(-last));
        }
        freeaddrinfo(addresses);
        if (rc < 0)
            return rc;
    }
    if ((rc = tl__diag_put_bool(tcp, "reachable", *reachable)) < 0)
        return rc;
    return reason[0] ? tl__diag_put_text(tcp, "reason", reason) : 0;
}

const char *tl__probe_internet_status(bool dns_checked, bool resolved, bool connect_checked,
                                      bool reachable)
{
    bool dns_failed = dns_checked && !resolved, connect_failed = connect_checked && !reachable;
    if (!dns_checked && !connect_checked)
        return "not checked";
    if (!dns_failed && !connect_failed)
        return "online";
    if (!connect_failed)
        return "name lookups fail";
    if (!dns_failed)
        return "no connection";
    return "offline";
}

int tl__probe_internet_run(const tl_diag_t *diag, json_t *section)
{
    int rc;
    bool resolved, reachable;
    json_t *dns = json_object(), *tcp = json_object();
    if (!dns || json_object_set_new(section, "dns", dns) != 0 || !tcp ||
        json_object_set_new(section, "connect", tcp) != 0)
        return TL_ENOMEM;
    if ((rc = check_lookup(diag, dns, &resolved)) < 0 ||
        (rc = check_connect(diag, tcp, &reachable)) < 0)
        return rc;
    const char *status =
        tl__probe_internet_status(json_is_true(json_object_get(dns, "checked")), resolved,
                                  json_is_true(json_object_get(tcp, "checked")), reachable);
    return tl__diag_put_text(section, "status", status);
}
