/*
 * Network addresses as users write them: "HOST:PORT", with IPv6 hosts in
 * brackets ("[::1]:7443"). Parsing here is numeric only; names are resolved
 * by the caller (uv_getaddrinfo) so nothing blocks the loop.
 */
#ifndef TL_ADDR_H
#define TL_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TL_ADDR_HOST_MAX 253
#define TL_ADDR_TEXT_MAX 64 /* longest formatted numeric address, NUL included */

/*
 * Splits "HOST:PORT" (brackets removed from the host); TL_EINVAL if malformed.
 * A host holds letters, digits, '.', '-' and '_'; in brackets also ':' and '%'.
 */
int tl_addr_split(const char *text, char host[TL_ADDR_HOST_MAX + 1], uint16_t *port);
/* A numeric address into out; TL_EINVAL if the host is not an IP literal. */
int tl_addr_parse(const char *text, struct sockaddr_storage *out);
/* "1.2.3.4:80" or "[::1]:80"; the host part alone if port_too is 0. */
void tl_addr_format(const struct sockaddr *addr, int port_too, char out[TL_ADDR_TEXT_MAX]);

#endif
