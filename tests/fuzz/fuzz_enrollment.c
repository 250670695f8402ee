/*
 * Fuzz target for enrollment strings and codes (proto/enrollment.c,
 * docs/protocol.md §7.2): what a user pastes into `tierline-agent enroll`.
 *
 * The input (up to its first NUL) is parsed as an enrollment string and as a
 * typed code. A string that parses must format again, and the formatted
 * string must parse to the same fields (canonical code, host without
 * brackets, port 1..65535, a valid fingerprint). A code that normalizes must
 * normalize to itself again, hash like its canonical form, and be 16 Crockford
 * symbols in groups of four.
 */
#include "proto/enrollment.h"
#include "proto/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_code(const char *code)
{
    if (strlen(code) != TL_ENROLL_CODE_LEN - 1)
        abort();
    for (int i = 0; i < TL_ENROLL_CODE_LEN - 1; i++) {
        char c = code[i];
        int dash = i % 5 == 4;
        if (dash ? c != '-' : strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) == NULL || c == '\0')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';

    tl_enrollment_t parsed;
    int rc = tl_enrollment_parse(text, &parsed);
    if (rc == 0) {
        check_code(parsed.code);
        if (parsed.port == 0 || parsed.host[0] == '\0' || !tl_fingerprint_valid(parsed.fingerprint))
            abort();
        char formatted[TL_ENROLLMENT_MAX];
        if (tl_enrollment_format(&parsed, formatted, sizeof formatted) != 0)
            abort();
        tl_enrollment_t again;
        if (tl_enrollment_parse(formatted, &again) != 0 || memcmp(&again, &parsed, sizeof again))
            abort();
    } else if (rc != TL_EINVAL) {
        abort();
    }

    char code[TL_ENROLL_CODE_LEN];
    rc = tl_enroll_code_normalize(text, code);
    if (rc == 0) {
        check_code(code);
        char twice[TL_ENROLL_CODE_LEN];
        char typed_hash[TL_SHA256_HEX_LEN], canonical_hash[TL_SHA256_HEX_LEN];
        if (tl_enroll_code_normalize(code, twice) != 0 || strcmp(code, twice) != 0 ||
            tl_enroll_code_hash(text, typed_hash) != 0 ||
            tl_enroll_code_hash(code, canonical_hash) != 0 ||
            strcmp(typed_hash, canonical_hash) != 0)
            abort();
    } else if (rc != TL_EINVAL) {
        abort();
    }
    free(text);
    return 0;
}
