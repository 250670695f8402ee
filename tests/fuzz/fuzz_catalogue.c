/*
 * Fuzz target for signed catalogue packages as the agent reads them before installing
 * (proto/catalogue.c; docs/catalogue.md "The package"): bytes a relay hands over.
 *
 * Input: one mode byte, then the package. Mode even: the package as it is. Mode odd: its
 * signer and signature are replaced by the fuzzer's own key's (seed 32 bytes of 0x42) over the
 * manifest it carries, so mutations of the manifest get past the signature. Either way it is
 * checked with tl_catalogue_parse (no trust) and tl_catalogue_verify (the fuzzer's key
 * trusted, nothing installed): verify never takes what parse refuses, and what verify takes is
 * signed by that key; a refusal always says why. What is taken holds valid paths, sorted and
 * none twice, each file inside the input with the size and mode its manifest says, the files
 * end exactly at the end of the input, and the same files built again verify to the same
 * version and bytes.
 */
#include "proto/catalogue.h"
#include "proto/err.h"
#include "proto/keys.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *fuzz_key(char fingerprint[TL_FINGERPRINT_LEN])
{
    static EVP_PKEY *key;
    static char cached[TL_FINGERPRINT_LEN];
    if (key == NULL) {
        uint8_t seed[TL_ED25519_KEY_LEN];
        memset(seed, 0x42, sizeof seed);
        if (tl_key_from_raw_private(seed, &key) != 0 || tl_fingerprint(key, cached) != 0)
            abort();
    }
    memcpy(fingerprint, cached, TL_FINGERPRINT_LEN);
    return key;
}

static void check_taken(const tl_catalogue_t *c, const uint8_t *data, size_t size)
{
    size_t count = tl_catalogue_file_count(c), end = 0;
    if (tl_catalogue_version(c) < 1 || tl_catalogue_version(c) > TL_CATALOGUE_VERSION_MAX ||
        count > TL_CATALOGUE_MAX_FILES)
        abort();
    for (size_t i = 0; i < count; i++) {
        const tl_catalogue_file_t *file = tl_catalogue_file(c, i);
        if (!tl_catalogue_path_valid(file->path) || file->size > TL_CATALOGUE_FILE_MAX ||
            file->data < data || file->data + file->size > data + size)
            abort();
        if (i > 0 && strcmp(tl_catalogue_file(c, i - 1)->path, file->path) >= 0)
            abort();
        end = (size_t)(file->data - data) + file->size;
    }
    if (count > 0 && end != size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > TL_CATALOGUE_MAX + 1)
        return 0;
    char trusted[TL_FINGERPRINT_LEN], why[512];
    EVP_PKEY *key = fuzz_key(trusted);
    uint8_t *package = malloc(size);
    if (package == NULL)
        return 0;
    size_t len = size - 1;
    if (len > 0)
        memcpy(package, data + 1, len);
    if ((data[0] & 1) && len >= TL_CATALOGUE_HEADER_LEN) {
        size_t manifest_len = (size_t)package[104] << 24 | (size_t)package[105] << 16 |
                              (size_t)package[106] << 8 | package[107];
        if (manifest_len <= len - TL_CATALOGUE_HEADER_LEN &&
            (tl_key_raw_public(key, package + 8) != 0 ||
             tl_key_sign(key, package + TL_CATALOGUE_HEADER_LEN, manifest_len, package + 40) != 0))
            abort();
    }
    tl_catalogue_t *parsed = NULL, *verified = NULL;
    why[0] = '\0';
    int parse_rc = tl_catalogue_parse(package, len, &parsed, why, sizeof why);
    if ((parse_rc == 0) != (parsed != NULL) || (parse_rc != 0 && why[0] == '\0'))
        abort();
    why[0] = '\0';
    int verify_rc = tl_catalogue_verify(package, len, trusted, 0, &verified, why, sizeof why);
    if ((verify_rc == 0) != (verified != NULL) || (verify_rc != 0 && why[0] == '\0'))
        abort();
    if (verify_rc == 0 && (parse_rc != 0 || strcmp(tl_catalogue_signer(verified), trusted) != 0))
        abort();
    if (parsed != NULL)
        check_taken(parsed, package, len);
    if (verified != NULL) {
        check_taken(verified, package, len);
        /* Built again from what was taken, it verifies to the same. */
        size_t count = tl_catalogue_file_count(verified);
        tl_catalogue_file_t *files = calloc(count + 1, sizeof *files);
        uint8_t *again = NULL;
        size_t again_len = 0;
        if (files == NULL)
            abort();
        for (size_t i = 0; i < count; i++)
            files[i] = *tl_catalogue_file(verified, i);
        if (tl_catalogue_build(files, count, tl_catalogue_version(verified),
                               tl_catalogue_created(verified), key, &again, &again_len, why,
                               sizeof why) != 0)
            abort();
        tl_catalogue_t *rebuilt = NULL;
        if (tl_catalogue_verify(again, again_len, trusted, 0, &rebuilt, why, sizeof why) != 0 ||
            tl_catalogue_file_count(rebuilt) != count ||
            tl_catalogue_version(rebuilt) != tl_catalogue_version(verified))
            abort();
        for (size_t i = 0; i < count; i++) {
            const tl_catalogue_file_t *a = tl_catalogue_file(verified, i);
            const tl_catalogue_file_t *b = tl_catalogue_file(rebuilt, i);
            if (strcmp(a->path, b->path) != 0 || a->size != b->size ||
                a->executable != b->executable || memcmp(a->data, b->data, a->size) != 0)
                abort();
        }
        tl_catalogue_free(rebuilt);
        free(again);
        free(files);
    }
    tl_catalogue_free(parsed);
    tl_catalogue_free(verified);
    free(package);
    return 0;
}
