/*
 * Redaction of secrets in gathered free text.
 *
 * Every piece of free text the diagnostics probes gather (log lines, command
 * lines, resolv.conf, unit descriptions, ...) passes through this module
 * before it leaves the probe. The rules, in the order they run, and examples
 * of each are in docs/diagnostics.md ("Redaction"); the unit tests in
 * tests/unit/test_redact.c hold one case per rule.
 *
 * The functions work on bytes: they read exactly the bytes they are given and
 * never past them, whatever the input looks like (unterminated PEM blocks,
 * lines of many megabytes, quotes that never close). They return a new
 * malloc'd, NUL-terminated string owned by the caller, or NULL when memory
 * runs out. Redacting an already redacted text changes nothing.
 */
#ifndef TL_REDACT_H
#define TL_REDACT_H

#include <stddef.h>

/* What a secret value is replaced with. */
#define TL_REDACT_MARK "[REDACTED]"
/* What a whole PEM private key block is replaced with. */
#define TL_REDACT_KEY_MARK "[REDACTED PRIVATE KEY]"

/*
 * Redacts text (a NUL-terminated string). *count, if not NULL, receives how
 * many secrets were replaced. NULL if text is NULL or memory runs out.
 */
char *tl_redact_text(const char *text, size_t *count);

/*
 * Redacts len bytes at data, which need not be NUL-terminated; a NUL byte in
 * the range is copied like any other byte. *out_len, if not NULL, receives the
 * result's length (without its terminating NUL).
 */
char *tl_redact_bytes(const void *data, size_t len, size_t *out_len, size_t *count);

#endif
