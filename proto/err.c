#include "proto/err.h"

#include <uv.h>

const char *tl_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define TL_ERR_TEXT(name, value, text)                                                             \
    case value:                                                                                    \
        return text;
        TL_ERR_MAP(TL_ERR_TEXT)
#undef TL_ERR_TEXT
    default:
        break;
    }
    if (code <= TL_ERR_FIRST && code >= TL_ERR_LAST)
        return "unknown Tierline error";
    /* uv_strerror covers negated errno values and libuv's own codes. */
    return uv_strerror(code);
}

const char *tl_err_name(int code)
{
    switch (code) {
#define TL_ERR_NAME(name, value, text)                                                             \
    case value:                                                                                    \
        return #name;
        TL_ERR_MAP(TL_ERR_NAME)
#undef TL_ERR_NAME
    default:
        return "UNKNOWN";
    }
}

int tl_err_compat(int code)
{
    switch (code) {
    case TL_ERATELIMITED:
        return TL_ETIMEOUT;
    default:
        return code;
    }
}
