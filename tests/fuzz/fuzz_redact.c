/*
 * Fuzz target for the redaction of gathered text (agent/redact.c,
 * docs/diagnostics.md "Redaction"): log lines, command lines and files of
 * the user's machine, which anyone on it may have written.
 *
 * Redaction must read only the bytes it is given, return a result for any
 * input, keep valid UTF-8 valid, and be idempotent: redacting its own output
 * again changes nothing and counts no secret.
 */
#include "agent/redact.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= len)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte past it is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    size_t once_len = 0, count = 0;
    char *once = tl_redact_bytes(copy, size, &once_len, &count);
    if (once == NULL || once[once_len] != '\0')
        abort();
    if (valid_utf8(copy, size) && !valid_utf8((const unsigned char *)once, once_len))
        abort();
    size_t twice_len = 0, again = 99;
    char *twice = tl_redact_bytes(once, once_len, &twice_len, &again);
    if (twice == NULL || twice_len != once_len || memcmp(once, twice, once_len) != 0 || again != 0)
        abort();
    /* The text form stops at the first NUL and agrees with the bytes form there. */
    if (memchr(copy, '\0', size) == NULL) {
        char *text = malloc(size + 1);
        if (text == NULL)
            abort();
        memcpy(text, copy, size);
        text[size] = '\0';
        char *as_text = tl_redact_text(text, NULL);
        if (as_text == NULL || strcmp(as_text, once) != 0)
            abort();
        free(as_text);
        free(text);
    }
    free(twice);
    free(once);
    free(copy);
    return 0;
}
