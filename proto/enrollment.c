#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/format.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; /* Crockford */

static int symbol_value(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    if (c == 'I' || c == 'L')
        c = '1';
    if (c == 'O')
        c = '0';
    const char *at = c ? strchr(alphabet, c) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

static void group(const char symbols[TL_ENROLL_CODE_SYMBOLS], char out[TL_ENROLL_CODE_LEN])
{
    size_t o = 0;
    for (int i = 0; i < TL_ENROLL_CODE_SYMBOLS; i++) {
        if (i > 0 && i % 4 == 0)
            out[o++] = '-';
        out[o++] = symbols[i];
    }
    out[o] = '\0';
}

int tl_enroll_code_generate(char out[TL_ENROLL_CODE_LEN])
{
    uint8_t random[TL_ENROLL_CODE_SYMBOLS];
    if (RAND_bytes(random, sizeof random) != 1)
        return TL_ENOMEM;
    char symbols[TL_ENROLL_CODE_SYMBOLS];
    for (int i = 0; i < TL_ENROLL_CODE_SYMBOLS; i++)
        symbols[i] = alphabet[random[i] & 31]; /* 32 symbols: no modulo bias */
    group(symbols, out);
    return 0;
}

int tl_enroll_code_normalize(const char *typed, char out[TL_ENROLL_CODE_LEN])
{
    char symbols[TL_ENROLL_CODE_SYMBOLS];
    int count = 0;
    for (size_t i = 0; typed[i] != '\0'; i++) {
        if (i > 64)
            return TL_EINVAL;
        if (typed[i] == '-' || typed[i] == ' ')
            continue;
        int value = symbol_value(typed[i]);
        if (value < 0 || count == TL_ENROLL_CODE_SYMBOLS)
            return TL_EINVAL;
        symbols[count++] = alphabet[value];
    }
    if (count != TL_ENROLL_CODE_SYMBOLS)
        return TL_EINVAL;
    group(symbols, out);
    return 0;
}

int tl_enroll_code_hash(const char *typed, char hex[TL_SHA256_HEX_LEN])
{
    char canonical[TL_ENROLL_CODE_LEN];
    int rc = tl_enroll_code_normalize(typed, canonical);
    if (rc != 0)
        return rc;
    return tl_sha256_hex(canonical, strlen(canonical), hex);
}

static int host_valid(const char *host, int bracketed)
{
    size_t len = strlen(host);
    if (len == 0 || len > TL_ENROLL_HOST_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || (bracketed && c == ':');
        if (!ok)
            return 0;
    }
    return !bracketed || strchr(host, ':') != NULL;
}

int tl_enrollment_format(const tl_enrollment_t *enrollment, char *out, size_t size)
{
    char code[TL_ENROLL_CODE_LEN];
    int bracketed = strchr(enrollment->host, ':') != NULL;
    if (tl_enroll_code_normalize(enrollment->code, code) != 0 ||
        !host_valid(enrollment->host, bracketed) || enrollment->port == 0 ||
        !tl_fingerprint_valid(enrollment->fingerprint) ||
        (enrollment->catalogue_key[0] != '\0' && !tl_fingerprint_valid(enrollment->catalogue_key)))
        return TL_EINVAL;
    int with_key = enrollment->catalogue_key[0] != '\0';
    return tl_format(out, size, "tl1:%s@%s%s%s:%u#%s%s%s", code, bracketed ? "[" : "",
                     enrollment->host, bracketed ? "]" : "", enrollment->port,
                     enrollment->fingerprint, with_key ? "!" : "",
                     with_key ? enrollment->catalogue_key : "") == 0
               ? 0
               : TL_EFULL;
}

int tl_enrollment_parse(const char *text, tl_enrollment_t *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL || strlen(text) >= TL_ENROLLMENT_MAX || strncmp(text, "tl1:", 4) != 0)
        return TL_EINVAL;
    const char *code = text + 4;
    const char *at = strchr(code, '@');
    const char *hash = strchr(code, '#');
    if (at == NULL || hash == NULL || hash < at)
        return TL_EINVAL;

    char typed[TL_ENROLLMENT_MAX];
    memcpy(typed, code, (size_t)(at - code));
    typed[at - code] = '\0';
    if (tl_enroll_code_normalize(typed, out->code) != 0)
        return TL_EINVAL;

    /* HOST:PORT between '@' and '#'; the port follows the last ':'. */
    const char *addr = at + 1;
    const char *colon = NULL;
    for (const char *p = addr; p < hash; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL || colon == addr)
        return TL_EINVAL;
    const char *host = addr, *host_end = colon;
    int bracketed = 0;
    if (*host == '[') {
        if (host_end[-1] != ']' || host_end - host < 3)
            return TL_EINVAL;
        host++;
        host_end--;
        bracketed = 1;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len > TL_ENROLL_HOST_MAX)
        return TL_EINVAL;
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    if (!host_valid(out->host, bracketed))
        return TL_EINVAL;

    unsigned long port = 0;
    const char *p = colon + 1;
    if (p == hash || hash - p > 5)
        return TL_EINVAL;
    for (; p < hash; p++) {
        if (*p < '0' || *p > '9')
            return TL_EINVAL;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return TL_EINVAL;
    out->port = (uint16_t)port;

    /* FINGERPRINT, then optionally '!' and the catalogue signing key's (base64 has no '!'). */
    char pinned[TL_ENROLLMENT_MAX];
    snprintf(pinned, sizeof pinned, "%s", hash + 1);
    char *bang = strchr(pinned, '!');
    if (bang != NULL)
        *bang = '\0';
    if (!tl_fingerprint_valid(pinned) || (bang != NULL && !tl_fingerprint_valid(bang + 1)))
        return TL_EINVAL;
    memcpy(out->fingerprint, pinned, TL_FINGERPRINT_LEN);
    if (bang != NULL)
        memcpy(out->catalogue_key, bang + 1, TL_FINGERPRINT_LEN);
    return 0;
}
