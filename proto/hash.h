/*
 * SHA-256 in the one printable form the project uses for content: 64
 * lowercase hex digits. (Key fingerprints have their own form: proto/keys.h.)
 */
#ifndef TL_HASH_H
#define TL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define TL_SHA256_HEX_LEN 65 /* 64 digits and the NUL */

typedef struct tl_sha256 tl_sha256_t;

tl_sha256_t *tl_sha256_new(void);
int tl_sha256_update(tl_sha256_t *hash, const void *data, size_t len);
/* Writes the digest as hex; the object can be used again after tl_sha256_reset. */
int tl_sha256_final(tl_sha256_t *hash, char hex[TL_SHA256_HEX_LEN]);
int tl_sha256_reset(tl_sha256_t *hash);
void tl_sha256_free(tl_sha256_t *hash);

/* One-shot digest of a buffer. */
int tl_sha256_hex(const void *data, size_t len, char hex[TL_SHA256_HEX_LEN]);

/* 1 if text is exactly 64 lowercase hex digits: safe to use in a path. */
int tl_sha256_hex_valid(const char *text);

#endif
