#include "proto/hash.h"
#include "proto/err.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct tl_sha256 {
    EVP_MD_CTX *ctx;
};

static void to_hex(const uint8_t *digest, char hex[TL_SHA256_HEX_LEN])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
}

tl_sha256_t *tl_sha256_new(void)
{
    tl_sha256_t *hash = calloc(1, sizeof *hash);
    if (hash == NULL)
        return NULL;
    hash->ctx = EVP_MD_CTX_new();
    if (hash->ctx == NULL || EVP_DigestInit_ex(hash->ctx, EVP_sha256(), NULL) != 1) {
        tl_sha256_free(hash);
        return NULL;
    }
    return hash;
}

int tl_sha256_update(tl_sha256_t *hash, const void *data, size_t len)
{
    return EVP_DigestUpdate(hash->ctx, data, len) == 1 ? 0 : TL_ENOMEM;
}

int tl_sha256_final(tl_sha256_t *hash, char hex[TL_SHA256_HEX_LEN])
{
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_DigestFinal_ex(hash->ctx, digest, &digest_len) != 1 || digest_len != 32)
        return TL_ENOMEM;
    to_hex(digest, hex);
    return 0;
}

int tl_sha256_reset(tl_sha256_t *hash)
{
    return EVP_DigestInit_ex(hash->ctx, EVP_sha256(), NULL) == 1 ? 0 : TL_ENOMEM;
}

void tl_sha256_free(tl_sha256_t *hash)
{
    if (hash == NULL)
        return;
    EVP_MD_CTX_free(hash->ctx);
    free(hash);
}

int tl_sha256_hex(const void *data, size_t len, char hex[TL_SHA256_HEX_LEN])
{
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        return TL_ENOMEM;
    to_hex(digest, hex);
    return 0;
}

int tl_sha256_hex_valid(const char *text)
{
    if (text == NULL)
        return 0;
    for (int i = 0; i < 64; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0; /* also stops at the NUL of a short string */
    }
    return text[64] == '\0';
}
