#include "proto/format.h"
#include "proto/err.h"

#include <stdio.h>

int tl_format_v(char *out, size_t size, const char *fmt, va_list args)
{
    if (out == NULL)
        size = 0;
    int n = vsnprintf(out, size, fmt, args);
    if (n < 0) {
        if (size > 0)
            out[0] = '\0';
        return TL_EINVAL;
    }
    return (size_t)n < size ? 0 : TL_EFULL;
}

int tl_format(char *out, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int rc = tl_format_v(out, size, fmt, args);
    va_end(args);
    return rc;
}

int tl_format_append(char *out, size_t size, size_t *used, const char *fmt, ...)
{
    if (out == NULL || *used >= size)
        return TL_EFULL;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(out + *used, size - *used, fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n >= size - *used) {
        out[*used] = '\0';
        return n < 0 ? TL_EINVAL : TL_EFULL;
    }
    *used += (size_t)n;
    return 0;
}
