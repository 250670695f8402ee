#include "console/quote.h"
#include "proto/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_@%+=:,./-", c) != NULL;
}

static int is_refused(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f;
}

int tl_quote_words(int argc, char *const *argv, char **out, int *bad_word)
{
    *out = NULL;
    if (bad_word != NULL)
        *bad_word = -1;
    if (argc < 1)
        return TL_EINVAL;
    /* Worst case per byte: a quote becomes 4 bytes ('\''); plus 2 quotes and a space per word. */
    size_t size = 1;
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        if (len > (SIZE_MAX - size) / 4 - 3)
            return TL_ENOMEM;
        size += len * 4 + 3;
    }
    char *line = malloc(size);
    if (line == NULL)
        return TL_ENOMEM;
    char *p = line;
    for (int i = 0; i < argc; i++) {
        const unsigned char *word = (const unsigned char *)argv[i];
        int plain = word[0] != '\0';
        for (const unsigned char *c = word; *c; c++) {
            if (is_refused(*c)) {
                free(line);
                if (bad_word != NULL)
                    *bad_word = i;
                return TL_EINVAL;
            }
            plain &= is_plain(*c);
        }
        if (i > 0)
            *p++ = ' ';
        if (plain) {
            size_t len = strlen((const char *)word);
            memcpy(p, word, len);
            p += len;
            continue;
        }
        *p++ = '\'';
        for (const unsigned char *c = word; *c; c++) {
            if (*c == '\'') {
                memcpy(p, "'\\''", 4);
                p += 4;
            } else {
                *p++ = (char)*c;
            }
        }
        *p++ = '\'';
    }
    *p = '\0';
    *out = line;
    return 0;
}
