/*
 * Text from another party, made safe to show (docs/technicians.md "Text from
 * others"). Ticket titles and descriptions, notes, host names, runbook
 * output, the reason a technician gives: whoever typed them may have put
 * terminal escapes in them (`\e]0;...\a`, `\e[2J`, a C1 CSI). They are
 * stored as they came; only what is printed is escaped, here, in one way
 * for the whole project.
 *
 * What escaping does, unit by unit (a unit is one UTF-8 character, or one
 * byte that does not start a valid one):
 *
 *   valid, printable UTF-8            kept as it is
 *   a byte that is not valid UTF-8    \xHH (two lowercase hex digits)
 *   C0 controls (0x00-0x1f), DEL      \t \n \r for those three, else \xHH
 *   C1 controls U+0080..U+009F        \u0080 .. \u009f
 *   U+2028, U+2029 (line breaks), the bidirectional controls U+061C,
 *   U+200E, U+200F, U+202A..U+202E, U+2066..U+2069, and U+FEFF
 *                                     \uXXXX
 *
 * in one of two modes:
 *
 *   TL_TEXT_LINE  one line (a table cell, a title, a name, a field of a
 *                 question): tab, newline and carriage return are escaped
 *                 too, so the text stays on its line and in its column.
 *   TL_TEXT_BODY  several lines (a description, a note, a report): newline
 *                 and tab are kept; "\r\n" is shown as a newline and a lone
 *                 carriage return as \r, so no line can be overwritten.
 *
 * A backslash is shown as it is. The exact bytes are always available as
 * JSON (--json), where strings keep every character.
 *
 * Clipping works on display columns (wide East Asian characters take two,
 * combining marks none) and on whole units: a UTF-8 sequence or an escape
 * is never split, and clipped text ends with "…" (U+2026, one column).
 *
 * Nothing here does I/O or keeps global state.
 */
#ifndef TL_TEXT_H
#define TL_TEXT_H

#include "proto/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tl_text_mode {
    TL_TEXT_LINE = 0,
    TL_TEXT_BODY = 1,
};

/* The mark clipped text ends with: U+2026, three bytes, one column. */
#define TL_TEXT_ELLIPSIS "\xe2\x80\xa6"

/* True when len bytes of text would be shown unchanged in mode: nothing to escape. */
bool tl_text_printable(const void *text, size_t len, enum tl_text_mode mode);

/* Appends text, escaped, to out; TL_EFULL (and out unchanged) when it does not fit under its cap.
 */
int tl_text_escape(tl_buf_t *out, const void *text, size_t len, enum tl_text_mode mode);

/*
 * Appends text to out as it goes into an HTML page (docs/web.md "Text from others"): escaped as
 * above first, so control bytes and bidirectional controls show as \xHH or \uXXXX, then the five
 * characters HTML gives a meaning to become &amp; &lt; &gt; &quot; &#39;. The result is safe both
 * as element text and inside a quoted attribute value. All or nothing: TL_EFULL (out unchanged)
 * when it does not fit under out's cap, TL_ENOMEM.
 */
int tl_text_html(tl_buf_t *out, const void *text, size_t len, enum tl_text_mode mode);

/* The escaped form of a NUL-terminated text (NULL counts as ""), malloc'd; NULL without memory. */
char *tl_text_escape_dup(const char *text, enum tl_text_mode mode);

/*
 * Escapes text into out (always NUL-terminated when size > 0), keeping at
 * most width display columns (0: no limit but the buffer's) and what fits
 * in size bytes. When anything is left out, the result ends with "…" within
 * those bounds (size must then be at least 4). Returns the display columns
 * written.
 */
size_t tl_text_clip(char *out, size_t size, const char *text, size_t width, enum tl_text_mode mode);

/*
 * A table cell: text escaped as one line, clipped to width columns as
 * tl_text_clip does, then padded with spaces to exactly width columns (as
 * far as size allows; size >= 3 * width + 1 always does). printf's "%-20s"
 * counts bytes, not columns, so it misaligns any text that is not ASCII.
 */
void tl_text_cell(char *out, size_t size, const char *text, size_t width);

/*
 * A table cell that is never clipped (an id, the last column): text escaped
 * as one line, padded with spaces to at least width columns. Only the
 * buffer clips it, as tl_text_clip does.
 */
void tl_text_pad(char *out, size_t size, const char *text, size_t width);

/* True when len bytes of text are valid UTF-8 (NUL included); nothing about controls. */
bool tl_text_utf8_valid(const void *text, size_t len);

/* Display columns of len bytes of text as it would be shown (after escaping) in mode. */
size_t tl_text_width(const void *text, size_t len, enum tl_text_mode mode);

/*
 * Valid UTF-8 for len bytes of text, for a JSON string (which can hold
 * nothing else): each byte that is not part of a valid sequence, and each
 * NUL, becomes the four characters \xHH, as it would be shown. Everything
 * else (controls included) is kept. malloc'd; NULL without memory.
 */
char *tl_text_utf8_dup(const void *text, size_t len);

/*
 * A part of a file-like name (an evidence item's name): the characters of
 * text from A-Z a-z 0-9 . _ - kept, every run of others one '-', no '-' or
 * '.' at either end, at most max bytes (cut at a '-' where one is close).
 * When nothing of text is left: fallback treated the same way, or "" when
 * fallback is NULL. Returns the length written (out is NUL-terminated).
 */
size_t tl_text_name_part(char *out, size_t size, const char *text, size_t max,
                         const char *fallback);

/*
 * json_dumps(value, flags) that is also safe on a terminal: Jansson writes
 * C0 controls as \u00XX but leaves DEL, C1 controls and the other
 * characters escaped above raw inside strings; they are written as \uXXXX
 * here, which means the same to every JSON reader. malloc'd; NULL on error.
 */
char *tl_text_json_dumps(const json_t *value, size_t flags);

/*
 * json_dumps(value, flags) and a newline: a line of a JSON-lines stream, or
 * a JSON file as the programs write them. malloc'd, with its length in *len
 * (newline included); NULL on error.
 */
char *tl_text_json_line(const json_t *value, size_t flags, size_t *len);

/*
 * Escaping a stream that arrives in pieces (the console passing the relay's
 * output through): a UTF-8 sequence, or a "\r\n", split between two pieces
 * is held until the rest arrives. Zero-initialise, set mode.
 */
typedef struct tl_text_stream {
    enum tl_text_mode mode;
    uint8_t held[4];
    size_t held_len;
} tl_text_stream_t;

/* Appends the escaped form of what can be decided so far to out; TL_EFULL as tl_text_escape. */
int tl_text_stream_put(tl_text_stream_t *stream, tl_buf_t *out, const void *bytes, size_t len);
/* The end of the stream: whatever is held is escaped as it is. */
int tl_text_stream_finish(tl_text_stream_t *stream, tl_buf_t *out);

#endif
