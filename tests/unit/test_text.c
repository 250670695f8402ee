/* Text from others, shown safely (proto/text.h): escaping, clipping, names, JSON, streams. */
#include "tl_test.h"

#include "proto/text.h"

#include <stdlib.h>

/* What a terminal must never receive from someone else's text: true if out is clean. */
static int terminal_safe(const char *out, size_t len, enum tl_text_mode mode)
{
    const uint8_t *p = (const uint8_t *)out;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == 0x7f || (c < 0x20 && !(mode == TL_TEXT_BODY && (c == '\n' || c == '\t'))))
            return 0;
        if (c >= 0x80) {
            /* Must be valid UTF-8 and no C1 control, bidi control or line separator. */
            if (c < 0xc2 || c > 0xf4)
                return 0;
            size_t need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            if (i + need > len)
                return 0;
            uint32_t code = c & (c < 0xe0 ? 0x1f : c < 0xf0 ? 0x0f : 0x07);
            for (size_t k = 1; k < need; k++) {
                if ((p[i + k] & 0xc0) != 0x80)
                    return 0;
                code = (code << 6) | (p[i + k] & 0x3f);
            }
            if (code < 0xa0 || (code >= 0x202a && code <= 0x202e) || code == 0x2028 ||
                code == 0x2029 || (code >= 0x2066 && code <= 0x2069) || code == 0x200e ||
                code == 0x200f || code == 0xfeff || (code >= 0xd800 && code <= 0xdfff))
                return 0;
            i += need - 1;
        }
    }
    return 1;
}

static char *escaped(const char *text, size_t len, enum tl_text_mode mode)
{
    tl_buf_t *buf = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_text_escape(buf, text, len, mode));
    TL_ASSERT_OK(tl_buf_put_u8(buf, 0));
    char *out = strdup((const char *)tl_buf_data(buf));
    tl_buf_free(buf);
    return out;
}

static void test_printable_text_is_kept_as_it_is(void **state)
{
    (void)state;
    const char *texts[] = {"printer won't print", "héllo wörld ✓ 日本語 \\x1b stays",
                           "e\xcc\x81 (combining)", "🙂 emoji", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        assert_true(tl_text_printable(texts[i], strlen(texts[i]), TL_TEXT_LINE));
        char *out = tl_text_escape_dup(texts[i], TL_TEXT_LINE);
        assert_string_equal(out, texts[i]);
        free(out);
    }
}

static void test_hostile_title_is_escaped_visibly(void **state)
{
    (void)state;
    /* OSC title change, BEL, clear screen, a raw 8-bit CSI, a UTF-8 CSI, DEL. */
    const char hostile[] = "\x1b]0;PWNED\a\x1b[2J\x9b"
                           "31mred\xc2\x9b"
                           "1m\x7fX";
    assert_false(tl_text_printable(hostile, strlen(hostile), TL_TEXT_LINE));
    char *out = tl_text_escape_dup(hostile, TL_TEXT_LINE);
    assert_string_equal(out, "\\x1b]0;PWNED\\x07\\x1b[2J\\x9b31mred\\u009b1m\\x7fX");
    assert_true(terminal_safe(out, strlen(out), TL_TEXT_LINE));
    assert_true(tl_text_printable(out, strlen(out), TL_TEXT_LINE));
    free(out);
}

static void test_tab_and_newline_by_mode(void **state)
{
    (void)state;
    const char text[] = "a\tb\nc\r\nd\re";
    char *line = escaped(text, sizeof text - 1, TL_TEXT_LINE);
    assert_string_equal(line, "a\\tb\\nc\\r\\nd\\re");
    char *body = escaped(text, sizeof text - 1, TL_TEXT_BODY);
    /* Lines stay lines; a lone carriage return could overwrite one, so it is shown. */
    assert_string_equal(body, "a\tb\nc\nd\\re");
    assert_true(tl_text_printable("two\nlines\tok", 12, TL_TEXT_BODY));
    assert_false(tl_text_printable("two\nlines", 9, TL_TEXT_LINE));
    assert_false(tl_text_printable("over\rwrite", 10, TL_TEXT_BODY));
    free(line);
    free(body);
}

static void test_invalid_utf8_is_escaped_byte_by_byte(void **state)
{
    (void)state;
    /* Overlong NUL, a surrogate, a byte that never leads, a lone continuation byte,
     * a sequence cut short, and NUL inside the length. */
    const char text[] = "\xc0\x80|\xed\xa0\x80|\xf5|\x80|\xe2\x82|\x00|\xe2\x82";
    char *out = escaped(text, sizeof text - 1, TL_TEXT_LINE);
    assert_string_equal(out, "\\xc0\\x80|\\xed\\xa0\\x80|\\xf5|\\x80|\\xe2\\x82|\\x00|\\xe2\\x82");
    assert_true(terminal_safe(out, strlen(out), TL_TEXT_LINE));
    free(out);
}

static void test_bidi_controls_and_line_separators_are_escaped(void **state)
{
    (void)state;
    const char text[] = "evil\xe2\x80\xae"
                        "txt.exe\xe2\x80\xa8next\xef\xbb\xbf";
    char *out = tl_text_escape_dup(text, TL_TEXT_BODY);
    assert_string_equal(out, "evil\\u202etxt.exe\\u2028next\\ufeff");
    free(out);
}

static void test_every_byte_pair_and_triple_comes_out_safe(void **state)
{
    (void)state;
    char out[64];
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (int mode = TL_TEXT_LINE; mode <= TL_TEXT_BODY; mode++) {
                char text[4] = {(char)a, (char)b, (char)0xa9, 0};
                for (size_t len = 2; len <= 3; len++) {
                    char *shown = escaped(text, len, (enum tl_text_mode)mode);
                    size_t shown_len = strlen(shown);
                    if (!terminal_safe(shown, shown_len, (enum tl_text_mode)mode))
                        fail_msg("bytes %02x %02x (len %zu, mode %d) shown unsafely", a, b, len,
                                 mode);
                    /* What was escaped once needs nothing more. */
                    assert_true(tl_text_printable(shown, shown_len, (enum tl_text_mode)mode));
                    free(shown);
                }
            }
            char text[3] = {(char)a, (char)b, 0};
            if (a != 0 && b != 0) {
                tl_text_clip(out, sizeof out, text, 5, TL_TEXT_LINE);
                assert_true(terminal_safe(out, strlen(out), TL_TEXT_LINE));
            }
        }
    }
}

static void test_clip_ends_with_ellipsis_and_never_splits(void **state)
{
    (void)state;
    char out[64];
    /* Fits: nothing added. */
    assert_int_equal(tl_text_clip(out, sizeof out, "abcde", 5, TL_TEXT_LINE), 5);
    assert_string_equal(out, "abcde");
    /* Wide characters: two columns each, cut between them. */
    assert_int_equal(tl_text_clip(out, sizeof out, "日本語テキスト", 5, TL_TEXT_LINE), 5);
    assert_string_equal(out, "日本…");
    assert_int_equal(tl_text_clip(out, sizeof out, "日本語テキスト", 6, TL_TEXT_LINE), 5);
    assert_string_equal(out, "日本…");
    /* An escape is one unit: all of it or none. */
    assert_int_equal(tl_text_clip(out, sizeof out,
                                  "abc\x1b"
                                  "def",
                                  5, TL_TEXT_LINE),
                     4);
    assert_string_equal(out, "abc…");
    assert_int_equal(tl_text_clip(out, sizeof out,
                                  "abc\x1b"
                                  "def",
                                  8, TL_TEXT_LINE),
                     8);
    assert_string_equal(out, "abc\\x1b…");
    /* The buffer bounds too, with room for the mark: 2-byte characters never split. */
    char small[8];
    tl_text_clip(small, sizeof small, "ééééé", 0, TL_TEXT_LINE);
    assert_string_equal(small, "éé…");
    /* Combining marks take no column. */
    assert_int_equal(tl_text_width("e\xcc\x81"
                                   "e\xcc\x81",
                                   6, TL_TEXT_LINE),
                     2);
    assert_int_equal(tl_text_clip(out, sizeof out,
                                  "e\xcc\x81"
                                  "e\xcc\x81",
                                  2, TL_TEXT_LINE),
                     2);
    assert_string_equal(out, "e\xcc\x81"
                             "e\xcc\x81");
    /* Too small for even the mark: empty, terminated. */
    char tiny[3];
    tl_text_clip(tiny, sizeof tiny, "abcdef", 0, TL_TEXT_LINE);
    assert_string_equal(tiny, "");
    assert_int_equal(tl_text_clip(out, sizeof out, NULL, 5, TL_TEXT_LINE), 0);
    assert_string_equal(out, "");
}

static void test_cell_pads_by_columns_not_bytes(void **state)
{
    (void)state;
    char out[64];
    tl_text_cell(out, sizeof out, "日本", 6);
    assert_string_equal(out, "日本  ");
    tl_text_cell(out, sizeof out, "日本語テ", 6);
    assert_string_equal(out, "日本… ");
    assert_int_equal(tl_text_width(out, strlen(out), TL_TEXT_LINE), 6);
    tl_text_cell(out, sizeof out, "a\nb", 6);
    assert_string_equal(out, "a\\nb  ");
    tl_text_cell(out, sizeof out, "laptop-of-someone-long", 12);
    assert_string_equal(out, "laptop-of-s…");
}

static void test_pad_never_clips_short_of_the_buffer(void **state)
{
    (void)state;
    char out[64];
    tl_text_pad(out, sizeof out, "T-1", 7);
    assert_string_equal(out, "T-1    ");
    tl_text_pad(out, sizeof out, "T-123456789", 7);
    assert_string_equal(out, "T-123456789");
    tl_text_pad(out, sizeof out, "ü\x1b", 7);
    assert_string_equal(out, "ü\\x1b  ");
    char small[8];
    tl_text_pad(small, sizeof small, "abcdefghijk", 3);
    assert_string_equal(small, "abcd…");
}

static void test_utf8_dup_makes_json_text(void **state)
{
    (void)state;
    assert_true(tl_text_utf8_valid("é\x1b\xc2\x9b", 5));
    assert_false(tl_text_utf8_valid("a\x9b", 2));
    assert_false(tl_text_utf8_valid("\xe2\x82", 2));
    const char text[] = "ok\x9b\xc2\x9b\x1b\x00z\xff";
    char *out = tl_text_utf8_dup(text, sizeof text - 1);
    assert_string_equal(out, "ok\\x9b\xc2\x9b\x1b\\x00z\\xff");
    json_t *value = json_string(out);
    assert_non_null(value); /* valid UTF-8 now */
    json_decref(value);
    free(out);
}

static void test_name_part_is_safe_and_says_what_it_is(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(
        tl_text_name_part(out, sizeof out, "/usr/bin/systemctl status cups", 40, "command"),
        strlen("usr-bin-systemctl-status-cups"));
    assert_string_equal(out, "usr-bin-systemctl-status-cups");
    tl_text_name_part(out, sizeof out, "../../etc/passwd", 40, "x");
    assert_string_equal(out, "etc-passwd");
    tl_text_name_part(out, sizeof out, "\x1b]0;PWNED\a", 40, "x");
    assert_string_equal(out, "0-PWNED");
    tl_text_name_part(out, sizeof out, "日本語", 40, "command");
    assert_string_equal(out, "command");
    tl_text_name_part(out, sizeof out, "restart-service SERVICE=cups", 40, "x");
    assert_string_equal(out, "restart-service-SERVICE-cups");
    /* Cut at a word boundary near the end, never past max. */
    tl_text_name_part(out, sizeof out, "alpha beta gamma delta epsilon", 20, "x");
    assert_string_equal(out, "alpha-beta-gamma");
    tl_text_name_part(out, sizeof out, "abcdefghijklmnopqrstuvwxyz", 10, "x");
    assert_string_equal(out, "abcdefghij");
    assert_int_equal(tl_text_name_part(out, sizeof out, "...", 10, NULL), 0);
    assert_string_equal(out, "");
    for (const char *c = out; *c; c++)
        assert_true(strchr("/ \\", *c) == NULL);
}

static void test_json_dumps_escapes_what_jansson_leaves_raw(void **state)
{
    (void)state;
    const char text[] = "a\x1b\x7f\xc2\x9b\xe2\x80\xae"
                        "b é";
    json_t *value = json_pack("{s:s, s:[s]}", "title", text, "list", text);
    char *out = tl_text_json_dumps(value, JSON_COMPACT);
    assert_non_null(out);
    assert_true(terminal_safe(out, strlen(out), TL_TEXT_LINE));
    assert_non_null(strstr(out, "\\u001B\\u007F\\u009B\\u202Eb é"));
    /* Still JSON, meaning the same. */
    json_error_t error;
    json_t *back = json_loads(out, 0, &error);
    assert_non_null(back);
    assert_true(json_equal(back, value));
    json_decref(back);
    free(out);
    /* Pretty output keeps its newlines. */
    out = tl_text_json_dumps(value, JSON_INDENT(2));
    assert_true(terminal_safe(out, strlen(out), TL_TEXT_BODY));
    free(out);
    json_decref(value);
}

/* Appends code point c as UTF-8. */
static size_t put_utf8(char *out, uint32_t c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

static void test_json_dumps_of_long_mixed_text_means_the_same(void **state)
{
    (void)state;
    /* Runs of ASCII of every length between what is escaped or multi-byte, as a transcript of
     * binary output has them: DEL, C0 and C1 controls, U+FFFD, bidi controls, 4-byte forms. */
    const uint32_t others[] = {0x7f, 0x1b, 0x01, 0x9b, 0x85, 0xfffd, 0x202e, 0xe9, 0x1f600, 0x2028};
    size_t size = 64 * 1024, used = 0;
    char *text = malloc(size + 8);
    assert_non_null(text);
    uint32_t seed = 7;
    while (used < size) {
        seed = seed * 1103515245u + 12345u;
        size_t run = (seed >> 16) % 9;
        for (size_t i = 0; i < run && used < size; i++)
            text[used++] = (char)(0x20 + (seed >> (i % 8)) % 0x5f); /* printable ASCII */
        used += put_utf8(text + used, others[(seed >> 8) % (sizeof others / sizeof others[0])]);
    }
    json_t *value = json_pack("{s:s%}", "text", text, used);
    assert_non_null(value);
    for (int pretty = 0; pretty < 2; pretty++) {
        char *out = tl_text_json_dumps(value, pretty ? JSON_INDENT(2) : JSON_COMPACT);
        assert_non_null(out);
        assert_true(terminal_safe(out, strlen(out), pretty ? TL_TEXT_BODY : TL_TEXT_LINE));
        json_error_t error;
        json_t *back = json_loads(out, 0, &error);
        assert_non_null(back);
        assert_true(json_equal(back, value));
        json_decref(back);
        free(out);
    }
    json_decref(value);
    free(text);
}

static void test_stream_in_pieces_matches_whole(void **state)
{
    (void)state;
    const char text[] = "é…\r\n\x1b[2J日本\r\rend\xe2\x80\xa8\xe2\x82\r";
    size_t len = sizeof text - 1;
    for (int mode = TL_TEXT_LINE; mode <= TL_TEXT_BODY; mode++) {
        char *whole = escaped(text, len, (enum tl_text_mode)mode);
        /* Every way of cutting the text in two, and byte by byte. */
        for (size_t cut = 0; cut <= len + 1; cut++) {
            tl_text_stream_t stream = {.mode = (enum tl_text_mode)mode};
            tl_buf_t *buf = tl_buf_new(4096);
            if (cut <= len) {
                TL_ASSERT_OK(tl_text_stream_put(&stream, buf, text, cut));
                TL_ASSERT_OK(tl_text_stream_put(&stream, buf, text + cut, len - cut));
            } else {
                for (size_t i = 0; i < len; i++)
                    TL_ASSERT_OK(tl_text_stream_put(&stream, buf, text + i, 1));
            }
            TL_ASSERT_OK(tl_text_stream_finish(&stream, buf));
            TL_ASSERT_OK(tl_buf_put_u8(buf, 0));
            if (strcmp((const char *)tl_buf_data(buf), whole) != 0)
                fail_msg("mode %d cut %zu: got '%s', want '%s'", mode, cut,
                         (const char *)tl_buf_data(buf), whole);
            tl_buf_free(buf);
        }
        free(whole);
    }
}

static void test_escape_respects_the_buffer_cap(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(8);
    TL_ASSERT_RC(TL_EFULL, tl_text_escape(buf, "\x1b\x1b\x1b", 3, TL_TEXT_LINE));
    assert_int_equal(tl_buf_len(buf), 0);
    TL_ASSERT_OK(tl_text_escape(buf, "\x1b", 1, TL_TEXT_LINE));
    assert_int_equal(tl_buf_len(buf), 4);
    tl_buf_free(buf);
}

static void test_json_line_is_the_dump_and_a_newline(void **state)
{
    (void)state;
    json_t *value = json_pack("{s:s, s:i}", "device", "D-7", "port", 7443);
    size_t len = 0;
    char *line = tl_text_json_line(value, JSON_COMPACT, &len);
    assert_string_equal(line, "{\"device\":\"D-7\",\"port\":7443}\n");
    assert_int_equal(len, strlen(line));
    free(line);
    char *dump = json_dumps(value, JSON_INDENT(2));
    line = tl_text_json_line(value, JSON_INDENT(2), &len);
    assert_int_equal(len, strlen(dump) + 1);
    assert_memory_equal(line, dump, strlen(dump));
    assert_int_equal(line[len - 1], '\n');
    free(line);
    free(dump);
    json_decref(value);
}

/* ---- HTML (tl_text_html) ------------------------------------------------------------------ */

static char *html(const char *text, size_t len, enum tl_text_mode mode)
{
    tl_buf_t *buf = tl_buf_new(1 << 20);
    TL_ASSERT_OK(tl_text_html(buf, text, len, mode));
    TL_ASSERT_OK(tl_buf_put_u8(buf, 0));
    char *out = strdup((const char *)tl_buf_data(buf));
    tl_buf_free(buf);
    return out;
}

static void test_html_escapes_markup_and_control_bytes(void **state)
{
    (void)state;
    const char *title = "<script>alert('x')</script><b id=\"p\">&amp;</b>\x1b[2J\xe2\x80\xae"
                        "evil";
    char *out = html(title, strlen(title), TL_TEXT_LINE);
    assert_string_equal(out, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b id=&quot;p&quot;"
                             "&gt;&amp;amp;&lt;/b&gt;\\x1b[2J\\u202eevil");
    free(out);
    /* Nothing HTML gives a meaning to survives, in any byte sequence. */
    for (unsigned a = 0; a < 256; a++) {
        char pair[2] = {(char)a, '<'};
        out = html(pair, sizeof pair, TL_TEXT_BODY);
        assert_null(strpbrk(out, "<>\"'"));
        assert_true(terminal_safe(out, strlen(out), TL_TEXT_BODY));
        free(out);
    }
}

static void test_html_keeps_plain_text_and_lines(void **state)
{
    (void)state;
    char *out = html("héllo 日本語\nline two", strlen("héllo 日本語\nline two"), TL_TEXT_BODY);
    assert_string_equal(out, "héllo 日本語\nline two");
    free(out);
    out = html("a\nb", 3, TL_TEXT_LINE);
    assert_string_equal(out, "a\\nb");
    free(out);
}

static void test_html_is_all_or_nothing_under_the_cap(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(16);
    TL_ASSERT_OK(tl_buf_put(buf, "ab", 2));
    /* 4 characters, 16 bytes escaped: past the cap, and nothing of it is kept. */
    TL_ASSERT_RC(TL_EFULL, tl_text_html(buf, "<<<<", 4, TL_TEXT_LINE));
    assert_int_equal(tl_buf_len(buf), 2);
    TL_ASSERT_OK(tl_text_html(buf, "<&", 2, TL_TEXT_LINE));
    assert_memory_equal(tl_buf_data(buf), "ab&lt;&amp;", 11);
    tl_buf_free(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_printable_text_is_kept_as_it_is),
    cmocka_unit_test(test_hostile_title_is_escaped_visibly),
    cmocka_unit_test(test_tab_and_newline_by_mode),
    cmocka_unit_test(test_invalid_utf8_is_escaped_byte_by_byte),
    cmocka_unit_test(test_bidi_controls_and_line_separators_are_escaped),
    cmocka_unit_test(test_every_byte_pair_and_triple_comes_out_safe),
    cmocka_unit_test(test_clip_ends_with_ellipsis_and_never_splits),
    cmocka_unit_test(test_cell_pads_by_columns_not_bytes),
    cmocka_unit_test(test_pad_never_clips_short_of_the_buffer),
    cmocka_unit_test(test_utf8_dup_makes_json_text),
    cmocka_unit_test(test_name_part_is_safe_and_says_what_it_is),
    cmocka_unit_test(test_json_dumps_escapes_what_jansson_leaves_raw),
    cmocka_unit_test(test_stream_in_pieces_matches_whole),
    cmocka_unit_test(test_escape_respects_the_buffer_cap),
    cmocka_unit_test(test_json_line_is_the_dump_and_a_newline),
    cmocka_unit_test(test_json_dumps_of_long_mixed_text_means_the_same),
    cmocka_unit_test(test_html_escapes_markup_and_control_bytes),
    cmocka_unit_test(test_html_keeps_plain_text_and_lines),
    cmocka_unit_test(test_html_is_all_or_nothing_under_the_cap),
};

TL_TEST_MAIN(tests)
