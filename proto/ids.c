/* Ticket and device ids' text form (proto/ids.h). */
#include "proto/ids.h"
#include "proto/err.h"

#include <inttypes.h>
#include <stdio.h>

int tl_id_parse(const char *text, char prefix, int64_t *out)
{
    if (text == NULL || text[0] != prefix || text[1] != '-' || text[2] < '1' || text[2] > '9')
        return TL_EINVAL;
    int64_t value = 0;
    for (const char *p = text + 2; *p; p++) {
        if (*p < '0' || *p > '9' || p - text > 17)
            return TL_EINVAL;
        value = value * 10 + (*p - '0');
    }
    *out = value;
    return 0;
}

char *tl_id_format(char out[TL_ID_TEXT], char prefix, int64_t id)
{
    snprintf(out, TL_ID_TEXT, "%c-%" PRId64, prefix, id);
    return out;
}
