#include "proto/addr.h"
#include "proto/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* A DNS name or an IP literal; ':' and an IPv6 zone's '%' only inside brackets. */
static int host_char(char c, int bracketed)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || (bracketed && (c == ':' || c == '%'));
}

int tl_addr_split(const char *text, char host[TL_ADDR_HOST_MAX + 1], uint16_t *port)
{
    if (text == NULL)
        return TL_EINVAL;
    size_t len = strnlen(text, TL_ADDR_HOST_MAX + 10);
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ':')
            colon = text + i;
    if (colon == NULL || len > TL_ADDR_HOST_MAX + 8)
        return TL_EINVAL;
    const char *start = text, *end = colon;
    if (*start == '[') {
        if (end - start < 3 || end[-1] != ']')
            return TL_EINVAL;
        start++;
        end--;
    } else if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
        return TL_EINVAL; /* an IPv6 literal needs brackets */
    }
    size_t host_len = (size_t)(end - start);
    if (host_len == 0 || host_len > TL_ADDR_HOST_MAX)
        return TL_EINVAL;
    for (size_t i = 0; i < host_len; i++)
        if (!host_char(start[i], start != text))
            return TL_EINVAL;
    memcpy(host, start, host_len);
    host[host_len] = '\0';
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return TL_EINVAL;
    unsigned long value = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return TL_EINVAL;
        value = value * 10 + (unsigned long)(*p - '0');
    }
    if (value > 65535)
        return TL_EINVAL;
    *port = (uint16_t)value;
    return 0;
}

int tl_addr_parse(const char *text, struct sockaddr_storage *out)
{
    char host[TL_ADDR_HOST_MAX + 1];
    uint16_t port;
    int rc = tl_addr_split(text, host, &port);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return TL_EINVAL;
}

void tl_addr_format(const struct sockaddr *addr, int port_too, char out[TL_ADDR_TEXT_MAX])
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        if (port_too)
            snprintf(out, TL_ADDR_TEXT_MAX, "%s:%u", host, port);
        else
            snprintf(out, TL_ADDR_TEXT_MAX, "%s", host);
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        if (port_too)
            snprintf(out, TL_ADDR_TEXT_MAX, "[%s]:%u", host, port);
        else
            snprintf(out, TL_ADDR_TEXT_MAX, "%s", host);
    } else {
        snprintf(out, TL_ADDR_TEXT_MAX, "unknown");
    }
}
