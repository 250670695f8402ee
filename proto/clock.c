#include "proto/clock.h"

#include <time.h>

int64_t tl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tl_format_utc(int64_t ms, char out[TL_UTC_TEXT])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm utc;
    out[0] = '\0';
    if (gmtime_r(&seconds, &utc) == NULL ||
        strftime(out, TL_UTC_TEXT, "%Y-%m-%d %H:%M:%SZ", &utc) == 0)
        out[0] = '\0';
}
