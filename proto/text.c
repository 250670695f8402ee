/*
 * Text from another party, made safe to show (proto/text.h).
 *
 * Everything is built on one step, render_unit(): how one unit of input (a
 * UTF-8 character, or a byte that does not start a valid one) is shown, how
 * many bytes that takes and how many columns. Escaping, the printable check,
 * clipping, widths and the stream all walk the input with it, so they can
 * never disagree about where a unit starts or ends.
 */
#include "proto/text.h"
#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at p (1..4) and its code point, or 0
 * when the bytes there are not one (overlong forms, surrogates and values
 * past U+10FFFF are not valid). *need gets the length the lead byte asks
 * for (0 for a byte that cannot lead), so a caller can tell a sequence cut
 * short by the end of its input from a broken one.
 */
static size_t utf8_decode(const uint8_t *p, size_t left, uint32_t *code, size_t *need)
{
    uint8_t c = p[0];
    uint8_t low = 0x80, high = 0xbf;
    size_t n;
    *need = 0;
    if (c < 0x80) {
        *code = c;
        *need = 1;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        *code = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        *code = c & 0x0f;
        if (c == 0xe0)
            low = 0xa0;
        else if (c == 0xed)
            high = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        *code = c & 0x07;
        if (c == 0xf0)
            low = 0x90;
        else if (c == 0xf4)
            high = 0x8f;
    } else {
        return 0;
    }
    *need = n;
    for (size_t i = 1; i < n; i++) {
        if (i >= left)
            return 0;
        uint8_t lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xbf;
        if (p[i] < lo || p[i] > hi)
            return 0;
        *code = (*code << 6) | (p[i] & 0x3f);
    }
    return n;
}

/*
 * True when all of the left bytes at p are a valid start of a sequence that
 * needs more bytes than there are: the rest may come in the next piece.
 */
static bool utf8_cut_short(const uint8_t *p, size_t left)
{
    uint32_t code;
    size_t need;
    if (utf8_decode(p, left, &code, &need) != 0 || need <= left)
        return false;
    /* Check the bytes that are there as utf8_decode would, by completing them. */
    uint8_t probe[4];
    memcpy(probe, p, left);
    for (size_t i = left; i < need; i++)
        probe[i] = 0x80;
    if (left == 1) {
        /* The lead byte alone: any valid second byte will do for the check. */
        if (p[0] == 0xe0)
            probe[1] = 0xa0;
        else if (p[0] == 0xf0)
            probe[1] = 0x90;
    }
    return utf8_decode(probe, need, &code, &need) != 0;
}

/* ---- what a character is ------------------------------------------------------------------ */

struct range {
    uint32_t first, last;
};

static bool in_ranges(uint32_t code, const struct range *ranges, size_t count)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (code < ranges[mid].first)
            hi = mid;
        else if (code > ranges[mid].last)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* Characters that are valid but change how a terminal shows what follows them. */
static const struct range escaped_ranges[] = {
    {0x0080, 0x009f}, /* C1 controls: CSI (U+009B), OSC (U+009D), ... */
    {0x061c, 0x061c}, /* Arabic letter mark */
    {0x200e, 0x200f}, /* left-to-right and right-to-left marks */
    {0x2028, 0x2029}, /* line and paragraph separators */
    {0x202a, 0x202e}, /* bidirectional embeddings and overrides */
    {0x2066, 0x2069}, /* bidirectional isolates */
    {0xfeff, 0xfeff}, /* zero-width no-break space (byte order mark) */
};

/* Combining marks and zero-width characters: no column of their own. */
static const struct range zero_width[] = {
    {0x0300, 0x036f},   {0x0483, 0x0489}, {0x0591, 0x05bd}, {0x05bf, 0x05bf}, {0x05c1, 0x05c2},
    {0x05c4, 0x05c5},   {0x05c7, 0x05c7}, {0x0610, 0x061a}, {0x064b, 0x065f}, {0x0670, 0x0670},
    {0x06d6, 0x06dc},   {0x06df, 0x06e4}, {0x06e7, 0x06e8}, {0x06ea, 0x06ed}, {0x0711, 0x0711},
    {0x0730, 0x074a},   {0x07a6, 0x07b0}, {0x0900, 0x0902}, {0x093a, 0x093a}, {0x093c, 0x093c},
    {0x0941, 0x0948},   {0x094d, 0x094d}, {0x0951, 0x0957}, {0x0962, 0x0963}, {0x0981, 0x0981},
    {0x09bc, 0x09bc},   {0x09c1, 0x09c4}, {0x09cd, 0x09cd}, {0x0e31, 0x0e31}, {0x0e34, 0x0e3a},
    {0x0e47, 0x0e4e},   {0x0eb1, 0x0eb1}, {0x0eb4, 0x0ebc}, {0x0ec8, 0x0ecd}, {0x1ab0, 0x1aff},
    {0x1dc0, 0x1dff},   {0x200b, 0x200d}, {0x20d0, 0x20ff}, {0xfe00, 0xfe0f}, {0xfe20, 0xfe2f},
    {0xe0100, 0xe01ef},
};

/* East Asian wide and fullwidth characters, and emoji: two columns. */
static const struct range double_width[] = {
    {0x1100, 0x115f},   {0x231a, 0x231b},   {0x2329, 0x232a},   {0x23e9, 0x23ec},
    {0x23f0, 0x23f0},   {0x23f3, 0x23f3},   {0x25fd, 0x25fe},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267f, 0x267f},   {0x2693, 0x2693},   {0x26a1, 0x26a1},
    {0x26aa, 0x26ab},   {0x26bd, 0x26be},   {0x26c4, 0x26c5},   {0x26ce, 0x26ce},
    {0x26d4, 0x26d4},   {0x26ea, 0x26ea},   {0x26f2, 0x26f3},   {0x26f5, 0x26f5},
    {0x26fa, 0x26fa},   {0x26fd, 0x26fd},   {0x2705, 0x2705},   {0x270a, 0x270b},
    {0x2728, 0x2728},   {0x274c, 0x274c},   {0x274e, 0x274e},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27b0, 0x27b0},   {0x27bf, 0x27bf},
    {0x2b1b, 0x2b1c},   {0x2b50, 0x2b50},   {0x2b55, 0x2b55},   {0x2e80, 0x303e},
    {0x3041, 0x33ff},   {0x3400, 0x4dbf},   {0x4e00, 0x9fff},   {0xa000, 0xa4cf},
    {0xa960, 0xa97f},   {0xac00, 0xd7a3},   {0xf900, 0xfaff},   {0xfe10, 0xfe19},
    {0xfe30, 0xfe6f},   {0xff00, 0xff60},   {0xffe0, 0xffe6},   {0x16fe0, 0x16fe4},
    {0x17000, 0x18aff}, {0x1b000, 0x1b2ff}, {0x1f004, 0x1f004}, {0x1f0cf, 0x1f0cf},
    {0x1f18e, 0x1f18e}, {0x1f191, 0x1f19a}, {0x1f200, 0x1f251}, {0x1f300, 0x1f64f},
    {0x1f680, 0x1f6ff}, {0x1f7e0, 0x1f7eb}, {0x1f90c, 0x1f9ff}, {0x1fa70, 0x1faff},
    {0x20000, 0x2fffd}, {0x30000, 0x3fffd},
};

#define COUNT(table) (sizeof(table) / sizeof((table)[0]))

static size_t columns_of(uint32_t code)
{
    if (in_ranges(code, zero_width, COUNT(zero_width)))
        return 0;
    if (in_ranges(code, double_width, COUNT(double_width)))
        return 2;
    return 1;
}

/* ---- one unit ---------------------------------------------------------------------------- */

struct unit {
    size_t consumed;     /* input bytes the unit covers */
    const uint8_t *show; /* what is shown: the input itself, or escape */
    size_t len;          /* bytes shown */
    size_t columns;
    bool changed; /* shown differently from the input */
    char escape[8];
};

static void set_escape(struct unit *unit, const char *text)
{
    size_t len = strlen(text);
    memcpy(unit->escape, text, len + 1);
    unit->show = (const uint8_t *)unit->escape;
    unit->len = len;
    unit->columns = len;
    unit->changed = true;
}

/* How the unit at p (left > 0 bytes) is shown in mode. */
static void render_unit(const uint8_t *p, size_t left, enum tl_text_mode mode, struct unit *unit)
{
    uint32_t code;
    size_t need;
    size_t n = utf8_decode(p, left, &code, &need);
    char text[8];
    unit->changed = false;
    if (n == 0) {
        snprintf(text, sizeof text, "\\x%02x", p[0]);
        set_escape(unit, text);
        unit->consumed = 1;
        return;
    }
    unit->consumed = n;
    unit->show = p;
    unit->len = n;
    if (code < 0x20 || code == 0x7f) {
        if (mode == TL_TEXT_BODY && (code == '\n' || code == '\t')) {
            unit->columns = code == '\t' ? 1 : 0;
            return;
        }
        if (mode == TL_TEXT_BODY && code == '\r' && left >= 2 && p[1] == '\n') {
            /* A CRLF line end: shown as the newline it means. */
            unit->consumed = 2;
            unit->show = p + 1;
            unit->len = 1;
            unit->columns = 0;
            unit->changed = true;
            return;
        }
        if (code == '\n')
            set_escape(unit, "\\n");
        else if (code == '\t')
            set_escape(unit, "\\t");
        else if (code == '\r')
            set_escape(unit, "\\r");
        else {
            snprintf(text, sizeof text, "\\x%02x", (unsigned)(code & 0xff));
            set_escape(unit, text);
        }
        return;
    }
    if (code >= 0x80 && in_ranges(code, escaped_ranges, COUNT(escaped_ranges))) {
        snprintf(text, sizeof text, "\\u%04x", (unsigned)(code & 0xffff));
        set_escape(unit, text);
        return;
    }
    unit->columns = code < 0x80 ? 1 : columns_of(code);
}

/* ---- checks, widths, escaping -------------------------------------------------------------- */

bool tl_text_printable(const void *text, size_t len, enum tl_text_mode mode)
{
    const uint8_t *p = text;
    struct unit unit;
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        if (unit.changed)
            return false;
    }
    return true;
}

size_t tl_text_width(const void *text, size_t len, enum tl_text_mode mode)
{
    const uint8_t *p = text;
    struct unit unit;
    size_t columns = 0;
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        columns += unit.columns;
    }
    return columns;
}

/* Bytes the escaped form of text takes. */
static size_t escaped_len(const uint8_t *p, size_t len, enum tl_text_mode mode)
{
    struct unit unit;
    size_t total = 0;
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        total += unit.len;
    }
    return total;
}

/* What HTML gives a meaning to, as the entity shown instead; NULL for any other byte. */
static const char *html_entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

static size_t html_entity_len(char c)
{
    const char *entity = html_entity(c);
    return entity != NULL ? strlen(entity) : 1;
}

int tl_text_escape(tl_buf_t *out, const void *text, size_t len, enum tl_text_mode mode)
{
    const uint8_t *p = text;
    size_t total = escaped_len(p, len, mode);
    uint8_t *dst;
    int rc = tl_buf_reserve(out, total, &dst);
    if (rc != 0)
        return rc;
    struct unit unit;
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        memcpy(dst, unit.show, unit.len);
        dst += unit.len;
    }
    return 0;
}

int tl_text_html(tl_buf_t *out, const void *text, size_t len, enum tl_text_mode mode)
{
    const uint8_t *p = text;
    size_t total = 0;
    struct unit unit;
    /* The size first, so the append is all or nothing. */
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        for (size_t i = 0; i < unit.len; i++)
            total += html_entity_len((char)unit.show[i]);
    }
    uint8_t *dst;
    int rc = tl_buf_reserve(out, total, &dst);
    if (rc != 0)
        return rc;
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        for (size_t i = 0; i < unit.len; i++) {
            const char *entity = html_entity((char)unit.show[i]);
            if (entity == NULL) {
                *dst++ = unit.show[i];
            } else {
                size_t n = strlen(entity);
                memcpy(dst, entity, n);
                dst += n;
            }
        }
    }
    return 0;
}

char *tl_text_escape_dup(const char *text, enum tl_text_mode mode)
{
    const uint8_t *p = (const uint8_t *)(text != NULL ? text : "");
    size_t len = strlen((const char *)p);
    char *out = malloc(escaped_len(p, len, mode) + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    struct unit unit;
    for (size_t at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        memcpy(out + used, unit.show, unit.len);
        used += unit.len;
    }
    out[used] = '\0';
    return out;
}

/* ---- clipping ------------------------------------------------------------------------------ */

#define ELLIPSIS_LEN 3

size_t tl_text_clip(char *out, size_t size, const char *text, size_t width, enum tl_text_mode mode)
{
    const uint8_t *p = (const uint8_t *)(text != NULL ? text : "");
    size_t len = strlen((const char *)p);
    if (size == 0)
        return 0;
    size_t room = size - 1; /* bytes, without the NUL */
    size_t limit = width > 0 ? width : (size_t)-1;
    /* Does the whole of it fit? */
    struct unit unit;
    size_t bytes = 0, columns = 0, at = 0;
    bool fits = true;
    for (; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        if (bytes + unit.len > room || columns + unit.columns > limit) {
            fits = false;
            break;
        }
        bytes += unit.len;
        columns += unit.columns;
    }
    if (!fits) {
        /* Again, leaving room for the ellipsis: one column, three bytes. */
        if (room < ELLIPSIS_LEN || limit < 1) {
            out[0] = '\0';
            return 0;
        }
        room -= ELLIPSIS_LEN;
        limit -= 1;
    }
    size_t used = 0;
    columns = 0;
    for (at = 0; at < len; at += unit.consumed) {
        render_unit(p + at, len - at, mode, &unit);
        if (used + unit.len > room || columns + unit.columns > limit)
            break;
        memcpy(out + used, unit.show, unit.len);
        used += unit.len;
        columns += unit.columns;
    }
    if (!fits) {
        memcpy(out + used, TL_TEXT_ELLIPSIS, ELLIPSIS_LEN);
        used += ELLIPSIS_LEN;
        columns += 1;
    }
    out[used] = '\0';
    return columns;
}

void tl_text_cell(char *out, size_t size, const char *text, size_t width)
{
    if (size == 0)
        return;
    size_t columns = tl_text_clip(out, size, text, width, TL_TEXT_LINE);
    size_t used = strlen(out);
    while (columns < width && used + 1 < size) {
        out[used++] = ' ';
        columns++;
    }
    out[used] = '\0';
}

void tl_text_pad(char *out, size_t size, const char *text, size_t width)
{
    if (size == 0)
        return;
    size_t columns = tl_text_clip(out, size, text, 0, TL_TEXT_LINE);
    size_t used = strlen(out);
    while (columns < width && used + 1 < size) {
        out[used++] = ' ';
        columns++;
    }
    out[used] = '\0';
}

/* ---- valid UTF-8 for JSON -------------------------------------------------------------------- */

bool tl_text_utf8_valid(const void *text, size_t len)
{
    const uint8_t *p = text;
    uint32_t code;
    size_t need;
    for (size_t at = 0; at < len;) {
        size_t n = utf8_decode(p + at, len - at, &code, &need);
        if (n == 0)
            return false;
        at += n;
    }
    return true;
}

char *tl_text_utf8_dup(const void *text, size_t len)
{
    const uint8_t *p = text;
    uint32_t code;
    size_t need, total = 0;
    for (size_t at = 0; at < len;) {
        size_t n = utf8_decode(p + at, len - at, &code, &need);
        total += n == 0 || p[at] == 0 ? 4 : n;
        at += n == 0 ? 1 : n;
    }
    char *out = malloc(total + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (size_t at = 0; at < len;) {
        size_t n = utf8_decode(p + at, len - at, &code, &need);
        if (n == 0 || p[at] == 0) {
            snprintf(out + used, 5, "\\x%02x", p[at]);
            used += 4;
            at++;
        } else {
            memcpy(out + used, p + at, n);
            used += n;
            at += n;
        }
    }
    out[used] = '\0';
    return out;
}

/* ---- names ----------------------------------------------------------------------------------- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static size_t trim_name(char *out, size_t used)
{
    while (used > 0 && (out[used - 1] == '-' || out[used - 1] == '.'))
        used--;
    out[used] = '\0';
    return used;
}

size_t tl_text_name_part(char *out, size_t size, const char *text, size_t max, const char *fallback)
{
    if (size == 0)
        return 0;
    if (max >= size)
        max = size - 1;
    size_t used = 0;
    bool cut = false;
    for (const char *c = text != NULL ? text : ""; *c != '\0'; c++) {
        char next = name_char(*c) ? *c : '-';
        if (used == 0 && (next == '-' || next == '.'))
            continue;
        if (next == '-' && out[used - 1] == '-')
            continue;
        if (used == max) {
            cut = true;
            break;
        }
        out[used++] = next;
    }
    if (cut) {
        /* End at a word boundary when one is in the last quarter. */
        size_t keep = used;
        while (keep > max - max / 4 && out[keep - 1] != '-')
            keep--;
        if (keep > max - max / 4)
            used = keep;
    }
    used = trim_name(out, used);
    if (used == 0 && fallback != NULL && fallback != text)
        return tl_text_name_part(out, size, fallback, max, NULL);
    return used;
}

/* ---- JSON -------------------------------------------------------------------------------------
 */

/* Code point at p for JSON output: U+FFFD for a byte that is not valid UTF-8. */
static uint32_t json_code(const uint8_t *p, size_t left, size_t *consumed)
{
    uint32_t code;
    size_t need;
    size_t n = utf8_decode(p, left, &code, &need);
    *consumed = n > 0 ? n : 1;
    return n > 0 ? code : 0xfffd;
}

/* Written as \uXXXX: what Jansson leaves raw and a terminal would act on. */
static bool json_escaped(const uint8_t *p, uint32_t code, size_t consumed)
{
    return code == 0x7f || (consumed == 1 && p[0] >= 0x80) ||
           (code >= 0x80 && in_ranges(code, escaped_ranges, COUNT(escaped_ranges)));
}

char *tl_text_json_line(const json_t *value, size_t flags, size_t *len)
{
    size_t size = json_dumpb(value, NULL, 0, flags);
    char *line = size > 0 ? malloc(size + 2) : NULL;
    if (line == NULL || json_dumpb(value, line, size, flags) != size) {
        free(line);
        return NULL;
    }
    line[size] = '\n';
    line[size + 1] = '\0';
    *len = size + 1;
    return line;
}

char *tl_text_json_dumps(const json_t *value, size_t flags)
{
    char *text = json_dumps(value, flags);
    if (text == NULL)
        return NULL;
    const uint8_t *p = (const uint8_t *)text;
    size_t len = strlen(text), extra = 0, consumed;
    /* Outside strings JSON is ASCII without controls, so whatever is escaped is inside one.
     * ASCII below DEL is never escaped: those bytes are passed over without decoding. */
    for (size_t at = 0; at < len; at += consumed) {
        if (p[at] < 0x7f) {
            consumed = 1;
            continue;
        }
        uint32_t code = json_code(p + at, len - at, &consumed);
        if (json_escaped(p + at, code, consumed))
            extra += 6 - consumed;
    }
    if (extra == 0)
        return text;
    char *safe = malloc(len + extra + 1);
    size_t used = 0;
    for (size_t at = 0; safe != NULL && at < len; at += consumed) {
        if (p[at] < 0x7f) {
            size_t run = 1;
            while (at + run < len && p[at + run] < 0x7f)
                run++;
            memcpy(safe + used, p + at, run);
            used += run;
            consumed = run;
            continue;
        }
        uint32_t code = json_code(p + at, len - at, &consumed);
        if (json_escaped(p + at, code, consumed)) {
            snprintf(safe + used, 7, "\\u%04X", (unsigned)(code & 0xffff));
            used += 6;
        } else {
            memcpy(safe + used, p + at, consumed);
            used += consumed;
        }
    }
    if (safe != NULL)
        safe[used] = '\0';
    free(text);
    return safe;
}

/* ---- streams ----------------------------------------------------------------------------------
 */

/* How many bytes at the end of p might belong with what comes next. */
static size_t undecided_tail(const uint8_t *p, size_t len, enum tl_text_mode mode)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        const uint8_t *start = p + len - back;
        if (*start < 0x80)
            break;
        if (*start >= 0xc0) {
            if (utf8_cut_short(start, back))
                return back;
            break;
        }
    }
    if (mode == TL_TEXT_BODY && len > 0 && p[len - 1] == '\r')
        return 1;
    return 0;
}

int tl_text_stream_put(tl_text_stream_t *stream, tl_buf_t *out, const void *bytes, size_t len)
{
    const uint8_t *p = bytes;
    /* Complete what was held with the first bytes of this piece. */
    while (stream->held_len > 0 && len > 0) {
        uint8_t joined[8];
        size_t take = len < 4 ? len : 4;
        memcpy(joined, stream->held, stream->held_len);
        memcpy(joined + stream->held_len, p, take);
        size_t joined_len = stream->held_len + take;
        if (undecided_tail(joined, joined_len, stream->mode) == joined_len)
            take = 0; /* still undecided: hold more */
        else {
            struct unit unit;
            render_unit(joined, joined_len, stream->mode, &unit);
            int rc = tl_buf_put(out, unit.show, unit.len);
            if (rc != 0)
                return rc;
            size_t used = unit.consumed;
            if (used <= stream->held_len) {
                /* The unit ended inside what was held: keep the rest held. */
                memmove(stream->held, stream->held + used, stream->held_len - used);
                stream->held_len -= used;
                continue;
            }
            take = used - stream->held_len;
            stream->held_len = 0;
            p += take;
            len -= take;
            continue;
        }
        memcpy(stream->held + stream->held_len, p, len);
        stream->held_len += len;
        return 0;
    }
    if (stream->held_len > 0)
        return 0; /* this piece was all taken by what was held */
    size_t tail = undecided_tail(p, len, stream->mode);
    int rc = tl_text_escape(out, p, len - tail, stream->mode);
    if (rc != 0)
        return rc;
    memcpy(stream->held, p + len - tail, tail);
    stream->held_len = tail;
    return 0;
}

int tl_text_stream_finish(tl_text_stream_t *stream, tl_buf_t *out)
{
    int rc = tl_text_escape(out, stream->held, stream->held_len, stream->mode);
    if (rc == 0)
        stream->held_len = 0;
    return rc;
}
