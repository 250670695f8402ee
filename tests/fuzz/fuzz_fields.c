/*
 * Fuzz target for the small parsers of typed-in and received fields:
 * addresses ("HOST:PORT", proto/addr.c), numbers and durations
 * (proto/cli.c: --port, --ttl, policy and runbook durations), ticket and
 * device ids ("T-12", proto/ids.c), and an SSH public key line
 * (proto/keys.c).
 *
 * The input, up to its first NUL, goes through each. What one accepts must
 * print back to something it accepts as the same value: the canonical form
 * of an address, a number, an id, a key.
 */
#include "proto/addr.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/keys.h"

#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Family, address and port: what the formatted text keeps (not an IPv6 zone). */
static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return a->ss_family == AF_INET6 && x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static void check_address(const char *text)
{
    char host[TL_ADDR_HOST_MAX + 1];
    uint16_t port = 0;
    int rc = tl_addr_split(text, host, &port);
    struct sockaddr_storage addr;
    int parsed = tl_addr_parse(text, &addr);
    if (rc != 0) {
        if (rc != TL_EINVAL || parsed == 0)
            abort();
        return;
    }
    if (host[0] == '\0' || strlen(host) > TL_ADDR_HOST_MAX)
        abort();
    char again[TL_ADDR_HOST_MAX + 16];
    snprintf(again, sizeof again, strpbrk(host, ":%") ? "[%s]:%u" : "%s:%u", host, port);
    char host2[TL_ADDR_HOST_MAX + 1];
    uint16_t port2 = 0;
    if (tl_addr_split(again, host2, &port2) != 0 || strcmp(host, host2) != 0 || port != port2)
        abort();
    if (parsed == 0) {
        char shown[TL_ADDR_TEXT_MAX];
        tl_addr_format((const struct sockaddr *)&addr, 1, shown);
        struct sockaddr_storage back;
        if (tl_addr_parse(shown, &back) != 0 || !same_address(&back, &addr))
            abort();
    } else if (parsed != TL_EINVAL) {
        abort();
    }
}

static void check_numbers(const char *text)
{
    uint64_t value = 0;
    if (tl_cli_parse_uint(text, 0, UINT64_MAX, &value) == 0) {
        /* Digits only, and exactly their value. */
        char shown[32];
        snprintf(shown, sizeof shown, "%" PRIu64, value);
        const char *digits = text;
        while (digits[0] == '0' && digits[1] != '\0')
            digits++;
        if (strcmp(shown, digits) != 0)
            abort();
    }
    uint64_t ms = 0;
    if (tl_cli_parse_duration(text, &ms) == 0) {
        if (ms < 1000 || ms % 1000 != 0 || ms > 1000000000ull * 86400 * 1000)
            abort();
        /* The same length in seconds reads back the same. */
        char seconds[32];
        snprintf(seconds, sizeof seconds, "%" PRIu64 "s", ms / 1000);
        uint64_t again = 0;
        if (ms / 1000 <= 1000000000 && (tl_cli_parse_duration(seconds, &again) != 0 || again != ms))
            abort();
    }
}

static void check_ids(const char *text)
{
    static const char prefixes[] = {'T', 'D'};
    for (size_t i = 0; i < sizeof prefixes; i++) {
        int64_t id = -1;
        if (tl_id_parse(text, prefixes[i], &id) != 0)
            continue;
        char shown[32];
        snprintf(shown, sizeof shown, "%c-%" PRId64, prefixes[i], id);
        if (id < 1 || strcmp(shown, text) != 0)
            abort();
    }
}

static void check_key_line(const char *text)
{
    EVP_PKEY *key = NULL;
    int rc = tl_key_parse_ssh_public(text, &key);
    if (rc != 0) {
        if (key != NULL || (rc != TL_EKEY && rc != TL_ENOMEM))
            abort();
        return;
    }
    char *line = NULL;
    EVP_PKEY *again = NULL;
    if (tl_key_ssh_public(key, "fuzz", &line) != 0 || tl_key_parse_ssh_public(line, &again) != 0 ||
        EVP_PKEY_eq(key, again) != 1)
        abort();
    char first[TL_FINGERPRINT_LEN], second[TL_FINGERPRINT_LEN];
    if (tl_fingerprint(key, first) != 0 || tl_fingerprint(again, second) != 0 ||
        strcmp(first, second) != 0 || !tl_fingerprint_valid(first))
        abort();
    free(line);
    EVP_PKEY_free(again);
    EVP_PKEY_free(key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    check_address(text);
    check_numbers(text);
    check_ids(text);
    check_key_line(text);
    (void)tl_fingerprint_valid(text);
    free(text);
    return 0;
}
