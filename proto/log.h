/*
 * Leveled, line-oriented logging to stderr with key=value context.
 *
 * One line per event: "2026-11-23T19:04:05.123Z warn frame rejected peer=... reason=...".
 * Never log secrets, keys or enrollment codes. The audit log is a separate,
 * durable record (relay/audit.c); this is for operators only.
 */
#ifndef TL_LOG_H
#define TL_LOG_H

enum tl_log_level { TL_LOG_DEBUG = 0, TL_LOG_INFO, TL_LOG_WARN, TL_LOG_ERROR, TL_LOG_OFF };

void tl_log_set_level(enum tl_log_level level);
enum tl_log_level tl_log_get_level(void);
/* Parses "debug", "info", "warn", "error" or "off"; returns 0 or TL_EINVAL. */
int tl_log_parse_level(const char *name, enum tl_log_level *out);

void tl_log_write(enum tl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tl_log_debug(...) tl_log_write(TL_LOG_DEBUG, __VA_ARGS__)
#define tl_log_info(...) tl_log_write(TL_LOG_INFO, __VA_ARGS__)
#define tl_log_warn(...) tl_log_write(TL_LOG_WARN, __VA_ARGS__)
#define tl_log_error(...) tl_log_write(TL_LOG_ERROR, __VA_ARGS__)

#endif
