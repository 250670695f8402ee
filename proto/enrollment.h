/*
 * Enrollment codes and enrollment strings (docs/protocol.md §7.2).
 *
 * A code is 16 symbols of Crockford base32 (80 random bits), shown in groups
 * of four: "K7QX-2M9P-4RTW-8HJC". Users retype codes, so parsing forgives
 * case, dashes and spaces and reads I/L as 1 and O as 0. The relay stores
 * only the SHA-256 of the canonical 16-symbol form.
 *
 * An enrollment string carries everything an agent needs, in one line that
 * survives copy and paste: "tl1:CODE@HOST:PORT#FINGERPRINT", e.g.
 * "tl1:K7QX-2M9P-4RTW-8HJC@relay.example.com:7443#SHA256:abc...". HOST is a
 * DNS name, an IPv4 address, or an IPv6 address in brackets.
 *
 * When the relay knows the admins' catalogue signing key (docs/catalogue.md), its fingerprint
 * follows after a '!': "tl1:CODE@HOST:PORT#FINGERPRINT!CATALOGUE-FINGERPRINT". The agent pins
 * it and takes catalogue packages signed by that key alone. A string without it still parses
 * (catalogue_key empty): such an agent refuses every package.
 */
#ifndef TL_ENROLLMENT_H
#define TL_ENROLLMENT_H

#include "proto/hash.h"
#include "proto/keys.h"

#include <stdint.h>

#define TL_ENROLL_CODE_SYMBOLS 16
#define TL_ENROLL_CODE_LEN 20 /* "XXXX-XXXX-XXXX-XXXX" and the NUL */
#define TL_ENROLL_HOST_MAX 253
#define TL_ENROLLMENT_MAX 400 /* longest enrollment string, NUL included */

/* A fresh random code, formatted in groups. */
int tl_enroll_code_generate(char out[TL_ENROLL_CODE_LEN]);
/* The grouped canonical form of a typed code; TL_EINVAL if it is not one. */
int tl_enroll_code_normalize(const char *typed, char out[TL_ENROLL_CODE_LEN]);
/* SHA-256 hex of the canonical form; TL_EINVAL for a malformed code. */
int tl_enroll_code_hash(const char *typed, char hex[TL_SHA256_HEX_LEN]);

typedef struct tl_enrollment {
    char code[TL_ENROLL_CODE_LEN];
    char host[TL_ENROLL_HOST_MAX + 1]; /* without brackets */
    uint16_t port;
    char fingerprint[TL_FINGERPRINT_LEN];
    char catalogue_key[TL_FINGERPRINT_LEN]; /* "" when the string carries none */
} tl_enrollment_t;

int tl_enrollment_format(const tl_enrollment_t *enrollment, char *out, size_t size);
/* Strict: TL_EINVAL for anything that is not a well-formed string. */
int tl_enrollment_parse(const char *text, tl_enrollment_t *out);

#endif
