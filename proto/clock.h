/*
 * Wall-clock time in the forms the programs show and store: milliseconds
 * since the Unix epoch, and "YYYY-MM-DD HH:MM:SSZ" for people.
 */
#ifndef TL_CLOCK_H
#define TL_CLOCK_H

#include <stdint.h>

#define TL_UTC_TEXT 32

/* Milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME). */
int64_t tl_wall_ms(void);
/* ms as "2026-11-23 19:44:56Z" in out (always terminated). */
void tl_format_utc(int64_t ms, char out[TL_UTC_TEXT]);

#endif
