/*
 * printf into a fixed buffer, saying when the text did not fit.
 *
 * For the many fixed buffers that hold a path, a message or a short listing:
 * one place that formats, NUL-terminates and reports truncation, instead of
 * an snprintf and its length check at every call. Growing text belongs in a
 * tl_buf (proto/buf.h); these are for buffers whose size is the limit.
 */
#ifndef TL_FORMAT_H
#define TL_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Formats into out, which holds size bytes (NUL-terminated whenever size >
 * 0; out may be NULL when size is 0). 0 if the whole text fitted;
 * TL_EFULL if it did not (out then holds as much as fitted) or size is 0;
 * TL_EINVAL for an encoding error.
 */
int tl_format(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tl_format_v(char *out, size_t size, const char *fmt, va_list args)
    __attribute__((format(printf, 3, 0)));

/*
 * Appends to the text of *used bytes in out (size bytes in all). 0 and *used
 * grown if the addition fitted whole; otherwise TL_EFULL (or TL_EINVAL), and
 * out and *used are as they were: a listing cut short ends at its last whole
 * item, never inside one.
 */
int tl_format_append(char *out, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
