/*
 * Redaction rules (docs/diagnostics.md, "Redaction").
 *
 * The text goes through a fixed sequence of passes, one per rule; each pass
 * reads its input with explicit bounds and writes a new buffer. Every pass is
 * linear in its input, so hostile text costs time in proportion to its size,
 * and each pass leaves "[REDACTED" alone. The sequence runs again until it
 * replaces nothing (bounded; see tl_redact_bytes), so redacting twice changes
 * nothing.
 * Passes that rewrite only ASCII-delimited ranges keep valid UTF-8 valid.
 */
#include "agent/redact.h"
#include "proto/buf.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The output of one pass; once a put fails, every later put is a no-op. */
struct out {
    tl_buf_t *buf;
    bool failed;
};

static void out_put(struct out *o, const char *bytes, size_t n)
{
    if (o->failed || n == 0)
        return;
    if (tl_buf_put(o->buf, bytes, n) != 0)
        o->failed = true;
}

static void out_mark(struct out *o, size_t *count)
{
    out_put(o, TL_REDACT_MARK, sizeof TL_REDACT_MARK - 1);
    (*count)++;
}

/* The input of one pass: bytes and their length; nothing past len is ever read. */
struct text {
    const char *p;
    size_t len;
};

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_upper(c) || is_lower(c) || is_digit(c);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_space(char c)
{
    return is_blank(c) || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char lower(char c)
{
    return is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive match of the literal at t[at..], never reading past the end of t. */
static bool match_at(struct text t, size_t at, const char *literal)
{
    size_t n = strlen(literal);
    if (at > t.len || t.len - at < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(t.p[at + i]) != lower(literal[i]))
            return false;
    return true;
}

static bool already_redacted(struct text t, size_t at)
{
    return match_at(t, at, "[REDACTED");
}

/* First occurrence of the (case-sensitive) literal at or after from; t.len if none. */
static size_t find(struct text t, size_t from, const char *literal)
{
    size_t n = strlen(literal);
    if (from > t.len)
        return t.len;
    const char *hit = memmem(t.p + from, t.len - from, literal, n);
    return hit ? (size_t)(hit - t.p) : t.len;
}

/* ---- Rule 1: PEM private key blocks ---------------------------------------------------- */

/*
 * If a PEM label ("RSA PRIVATE KEY") followed by "-----" starts at at, returns
 * whether it names a private key and sets *end just past the dashes.
 */
static bool private_key_label(struct text t, size_t at, size_t *end)
{
    size_t i = at;
    while (i < t.len && i - at < 80 && (is_upper(t.p[i]) || is_digit(t.p[i]) || t.p[i] == ' '))
        i++;
    if (!match_at(t, i, "-----"))
        return false;
    struct text label = {t.p + at, i - at};
    *end = i + 5;
    return find(label, 0, "PRIVATE KEY") < label.len;
}

static void pass_pem(struct text t, struct out *o, size_t *count)
{
    static const char begin[] = "-----BEGIN ";
    static const char end_marker[] = "-----END ";
    size_t i = 0;
    while (i < t.len) {
        size_t b = find(t, i, begin);
        if (b == t.len)
            break;
        size_t label_end;
        if (!private_key_label(t, b + sizeof begin - 1, &label_end)) {
            out_put(o, t.p + i, b + sizeof begin - 1 - i);
            i = b + sizeof begin - 1;
            continue;
        }
        out_put(o, t.p + i, b - i);
        out_put(o, TL_REDACT_KEY_MARK, sizeof TL_REDACT_KEY_MARK - 1);
        (*count)++;
        /* Without its END line the block runs to the end of the text: fail closed. */
        size_t next = t.len;
        for (size_t e = find(t, label_end, end_marker); e < t.len;
             e = find(t, e + sizeof end_marker - 1, end_marker)) {
            size_t after;
            if (private_key_label(t, e + sizeof end_marker - 1, &after)) {
                next = after;
                break;
            }
        }
        i = next;
    }
    out_put(o, t.p + i, t.len - i);
}

/* ---- Rule 2: Authorization headers ------------------------------------------------------- */

/*
 * If the header name that ends just before at ("Authorization" or
 * "Proxy-Authorization") is itself preceded by a quote, as in
 * curl -H "Authorization: Bearer x", that quote encloses the whole header.
 */
static char enclosing_quote(struct text t, size_t at)
{
    size_t i = at;
    while (i > 0 && at - i < 32 && (is_alnum(t.p[i - 1]) || t.p[i - 1] == '-'))
        i--;
    if (i > 0 && (t.p[i - 1] == '"' || t.p[i - 1] == '\''))
        return t.p[i - 1];
    return 0;
}

static void pass_authorization(struct text t, struct out *o, size_t *count)
{
    size_t copied = 0;
    size_t i = 0;
    while (i < t.len) {
        if (lower(t.p[i]) != 'a' || !match_at(t, i, "authorization")) {
            i++;
            continue;
        }
        char quote = enclosing_quote(t, i);
        size_t j = i + 13;
        if (j < t.len && (t.p[j] == '"' || t.p[j] == '\''))
            j++; /* the closing quote of a quoted key */
        while (j < t.len && is_blank(t.p[j]))
            j++;
        if (j >= t.len || (t.p[j] != ':' && t.p[j] != '=')) {
            i = j > i + 13 ? j : i + 13;
            continue;
        }
        j++;
        while (j < t.len && is_blank(t.p[j]))
            j++;
        if (j < t.len && (t.p[j] == '"' || t.p[j] == '\''))
            quote = t.p[j++]; /* a quoted value ends at its own closing quote */
        /* A scheme word ("Bearer", "Basic") followed by a blank is kept. */
        size_t w = j;
        while (w < t.len && w - j < 32 && (is_alnum(t.p[w]) || t.p[w] == '-' || t.p[w] == '_'))
            w++;
        size_t start = j;
        if (w > j && w < t.len && is_blank(t.p[w])) {
            start = w;
            while (start < t.len && is_blank(t.p[start]))
                start++;
        }
        /* Credentials run to the end of the line, or to the quote that encloses them. */
        size_t stop = start;
        while (stop < t.len && t.p[stop] != '\n' && t.p[stop] != '\r' &&
               !(quote && t.p[stop] == quote))
            stop++;
        while (stop > start && is_blank(t.p[stop - 1]))
            stop--;
        if (stop > start && !already_redacted(t, start)) {
            out_put(o, t.p + copied, start - copied);
            out_mark(o, count);
            copied = stop;
        }
        i = stop > j ? stop : j;
    }
    out_put(o, t.p + copied, t.len - copied);
}

/* ---- Rule 3: credentials in URLs ------------------------------------------------------- */

static bool ends_authority(char c)
{
    return c == '/' || c == '?' || c == '#' || c == '@' || is_space(c) || c == '"' || c == '\'' ||
           c == '<' || c == '>' || c == '\\' || c == '`';
}

static void pass_url_credentials(struct text t, struct out *o, size_t *count)
{
    size_t copied = 0;
    size_t i = 0;
    while (i < t.len) {
        size_t s = find(t, i, "://");
        if (s == t.len)
            break;
        s += 3;
        size_t j = s;
        size_t colon = 0;
        bool have_colon = false;
        while (j < t.len && j - s < 1024 && !ends_authority(t.p[j])) {
            if (t.p[j] == ':' && !have_colon) {
                colon = j;
                have_colon = true;
            }
            j++;
        }
        if (j < t.len && t.p[j] == '@' && have_colon && colon + 1 < j &&
            !already_redacted(t, colon + 1)) {
            out_put(o, t.p + copied, colon + 1 - copied);
            out_mark(o, count);
            copied = j;
        }
        /* The authority ends at most at a '/' that may be the one of a next
         * "://" (a list: "ftp://a,https://u:p@b"), so look again from its ':'. */
        i = j > s ? j - 1 : s;
    }
    out_put(o, t.p + copied, t.len - copied);
}

/* ---- Rules 4 and 5: secret-named keys and flags ---------------------------------------- */

/* Names whose value is a secret; '-' in the text matches '_' here. */
static const char *const secret_keys[] = {
    "client_secret", "access_key", "passphrase", "password", "api_key",
    "apikey",        "passwd",     "secret",     "token",    "pwd",
};

static bool key_char_equal(char text_char, char key_char)
{
    if (key_char == '_')
        return text_char == '_' || text_char == '-';
    return lower(text_char) == key_char;
}

/* Length of the secret key that starts at at, or 0. */
static size_t secret_key_at(struct text t, size_t at)
{
    for (size_t k = 0; k < sizeof secret_keys / sizeof secret_keys[0]; k++) {
        const char *key = secret_keys[k];
        size_t n = strlen(key);
        if (t.len - at < n)
            continue;
        size_t m = 0;
        while (m < n && key_char_equal(t.p[at + m], key[m]))
            m++;
        if (m == n)
            return n;
    }
    return 0;
}

/* Whether the flag name t[from..to) ends with a secret key. */
static bool flag_names_secret(struct text t, size_t from, size_t to)
{
    for (size_t k = 0; k < sizeof secret_keys / sizeof secret_keys[0]; k++) {
        size_t n = strlen(secret_keys[k]);
        if (to - from >= n && secret_key_at(t, to - n) == n)
            return true;
    }
    return false;
}

static bool ends_value(char c)
{
    return is_space(c) || c == '"' || c == '\'' || c == '&' || c == ',' || c == ';';
}

/*
 * The value starting at at: up to the matching quote (or the end of the line)
 * if quoted, else up to a character that ends values. Sets [*from, *to).
 */
static void value_span(struct text t, size_t at, size_t *from, size_t *to)
{
    if (at < t.len && (t.p[at] == '"' || t.p[at] == '\'')) {
        char quote = t.p[at];
        size_t j = at + 1;
        while (j < t.len && t.p[j] != quote && t.p[j] != '\n' && t.p[j] != '\r')
            j++;
        *from = at + 1;
        *to = j;
        return;
    }
    size_t j = at;
    while (j < t.len && !ends_value(t.p[j]))
        j++;
    *from = at;
    *to = j;
}

/* "--password X", "-token X": a flag naming a secret, blanks, then its value. */
static void pass_secret_flags(struct text t, struct out *o, size_t *count)
{
    size_t copied = 0;
    size_t i = 0;
    while (i < t.len) {
        bool flag_start = t.p[i] == '-' && (i == 0 || is_space(t.p[i - 1]) || t.p[i - 1] == '"' ||
                                            t.p[i - 1] == '\'');
        if (!flag_start) {
            i++;
            continue;
        }
        size_t name = i + 1;
        if (name < t.len && t.p[name] == '-')
            name++;
        size_t j = name;
        while (j < t.len && j - name < 64 && (is_alnum(t.p[j]) || t.p[j] == '-' || t.p[j] == '_'))
            j++;
        if (j == name || j >= t.len || !is_blank(t.p[j]) || !flag_names_secret(t, name, j)) {
            i = j > i ? j : i + 1;
            continue;
        }
        size_t v = j;
        while (v < t.len && is_blank(t.p[v]))
            v++;
        size_t from, to;
        value_span(t, v, &from, &to);
        if (to > from && !match_at(t, from, "--") && !already_redacted(t, from)) {
            out_put(o, t.p + copied, from - copied);
            out_mark(o, count);
            copied = to;
        }
        i = to > v ? to : v;
    }
    out_put(o, t.p + copied, t.len - copied);
}

/*
 * "password=X", "Token: X", "\"api_key\": \"X\"", "password = X": a secret
 * key, a separator, its value. Blanks after '=' are skipped only when blanks
 * also came before it, so that in "password= user=bob" the user stays.
 */
static void pass_secret_values(struct text t, struct out *o, size_t *count)
{
    size_t copied = 0;
    size_t i = 0;
    while (i < t.len) {
        size_t key_len = secret_key_at(t, i);
        if (key_len == 0) {
            i++;
            continue;
        }
        size_t j = i + key_len;
        if (j < t.len && (t.p[j] == '"' || t.p[j] == '\''))
            j++;
        size_t blanks_before = 0;
        while (j < t.len && blanks_before < 8 && is_blank(t.p[j])) {
            j++;
            blanks_before++;
        }
        if (j >= t.len || (t.p[j] != '=' && t.p[j] != ':')) {
            i++;
            continue;
        }
        bool skip_blanks = t.p[j] == ':' || blanks_before > 0;
        j++;
        for (size_t blanks = 0; skip_blanks && j < t.len && blanks < 8 && is_blank(t.p[j]);
             blanks++)
            j++;
        size_t from, to;
        value_span(t, j, &from, &to);
        if (to > from && !already_redacted(t, from)) {
            out_put(o, t.p + copied, from - copied);
            out_mark(o, count);
            copied = to;
        }
        i = to > j ? to : j;
    }
    out_put(o, t.p + copied, t.len - copied);
}

/* ---- Rule 6: well-known token shapes --------------------------------------------------- */

static bool is_token_char(char c)
{
    return is_alnum(c) || c == '_' || c == '-';
}

/* Count of characters from at that satisfy ok, up to max. */
static size_t run_length(struct text t, size_t at, bool (*ok)(char), size_t max)
{
    size_t n = 0;
    while (at + n < t.len && n < max && ok(t.p[at + n]))
        n++;
    return n;
}

static bool is_upper_or_digit(char c)
{
    return is_upper(c) || is_digit(c);
}

static bool is_base64url(char c)
{
    return is_alnum(c) || c == '_' || c == '-';
}

static bool is_slack_char(char c)
{
    return is_alnum(c) || c == '-';
}

static bool is_github_pat_char(char c)
{
    return is_alnum(c) || c == '_';
}

static bool one_of(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

/* Length of a known token shape starting at at, or 0. */
static size_t token_shape_at(struct text t, size_t at)
{
    static const char *const aws[] = {"AKIA", "ASIA"};
    for (size_t k = 0; k < 2; k++) {
        if (at + 4 <= t.len && memcmp(t.p + at, aws[k], 4) == 0) {
            size_t n = run_length(t, at + 4, is_upper_or_digit, 17);
            if (n == 16)
                return 20;
        }
    }
    if (at + 4 <= t.len && t.p[at] == 'g' && t.p[at + 1] == 'h' && one_of(t.p[at + 2], "pousr") &&
        t.p[at + 3] == '_') {
        size_t n = run_length(t, at + 4, is_alnum, SIZE_MAX);
        if (n >= 20)
            return 4 + n;
    }
    if (at + 11 <= t.len && memcmp(t.p + at, "github_pat_", 11) == 0) {
        size_t n = run_length(t, at + 11, is_github_pat_char, SIZE_MAX);
        if (n >= 20)
            return 11 + n;
    }
    if (at + 5 <= t.len && memcmp(t.p + at, "xox", 3) == 0 && one_of(t.p[at + 3], "baprs") &&
        t.p[at + 4] == '-') {
        size_t n = run_length(t, at + 5, is_slack_char, SIZE_MAX);
        if (n >= 8)
            return 5 + n;
    }
    if (at + 3 <= t.len && memcmp(t.p + at, "eyJ", 3) == 0) {
        size_t header = run_length(t, at, is_base64url, SIZE_MAX);
        size_t dot1 = at + header;
        if (header >= 10 && dot1 < t.len && t.p[dot1] == '.') {
            size_t payload = run_length(t, dot1 + 1, is_base64url, SIZE_MAX);
            size_t dot2 = dot1 + 1 + payload;
            if (payload >= 2 && dot2 < t.len && t.p[dot2] == '.') {
                size_t signature = run_length(t, dot2 + 1, is_base64url, SIZE_MAX);
                return dot2 + 1 + signature - at;
            }
        }
    }
    return 0;
}

static void pass_token_shapes(struct text t, struct out *o, size_t *count)
{
    size_t copied = 0;
    size_t i = 0;
    while (i < t.len) {
        if (i > 0 && is_token_char(t.p[i - 1])) {
            i++;
            continue;
        }
        size_t n = token_shape_at(t, i);
        if (n == 0 || (i + n < t.len && is_token_char(t.p[i + n]))) {
            i++;
            continue;
        }
        out_put(o, t.p + copied, i - copied);
        out_mark(o, count);
        copied = i + n;
        i += n;
    }
    out_put(o, t.p + copied, t.len - copied);
}

/* ---- Rule 7: long high-entropy base64 blobs -------------------------------------------- */

#define BLOB_MIN_LEN 32

static bool is_base64_char(char c)
{
    return is_alnum(c) || c == '+' || c == '/' || c == '_' || c == '-';
}

static int char_class(char c)
{
    return is_upper(c) ? 1 : is_lower(c) ? 2 : is_digit(c) ? 3 : 0;
}

/*
 * Random base64 mixes upper case, lower case and digits, switches between
 * them at about two pairs in three, and has high per-character entropy;
 * words, paths and CamelCase identifiers switch at word boundaries only.
 */
static bool looks_random(struct text t, size_t from, size_t to)
{
    if (to - from < BLOB_MIN_LEN || t.p[from] == '/')
        return false;
    unsigned counts[256] = {0};
    bool classes[4] = {false};
    size_t pairs = 0, switches = 0;
    for (size_t i = from; i < to; i++) {
        counts[(unsigned char)t.p[i]]++;
        int cls = char_class(t.p[i]);
        classes[cls] = true;
        if (i > from && cls != 0) {
            int prev = char_class(t.p[i - 1]);
            if (prev != 0) {
                pairs++;
                switches += prev != cls;
            }
        }
    }
    if (!classes[1] || !classes[2] || !classes[3] || pairs == 0)
        return false;
    double n = (double)(to - from), entropy = 0;
    for (size_t c = 0; c < 256; c++) {
        if (counts[c]) {
            double p = counts[c] / n;
            entropy -= p * log2(p);
        }
    }
    return entropy >= 4.0 && (double)switches / (double)pairs >= 0.45;
}

static void pass_random_blobs(struct text t, struct out *o, size_t *count)
{
    size_t copied = 0;
    size_t i = 0;
    while (i < t.len) {
        if (!is_base64_char(t.p[i])) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < t.len && is_base64_char(t.p[end]))
            end++;
        size_t with_padding = end;
        while (with_padding < t.len && with_padding - end < 2 && t.p[with_padding] == '=')
            with_padding++;
        if (looks_random(t, i, end)) {
            out_put(o, t.p + copied, i - copied);
            out_mark(o, count);
            copied = with_padding;
        }
        i = with_padding;
    }
    out_put(o, t.p + copied, t.len - copied);
}

/* ---- The pipeline --------------------------------------------------------------------- */

static void (*const passes[])(struct text, struct out *, size_t *) = {
    pass_pem,           pass_authorization, pass_url_credentials, pass_secret_flags,
    pass_secret_values, pass_token_shapes,  pass_random_blobs,
};

/*
 * One run of every pass over text[0..len), into a new string (NULL when memory
 * runs out). *replaced counts the secrets this run replaced; 0 means the
 * result is the text itself, as every pass changes only what it counts.
 */
static char *run_passes(const char *text, size_t len, size_t *out_len, size_t *replaced)
{
    char *current = malloc(len + 1);
    /* Each pass writes a new text; only memory bounds it, as the input's size bounds the passes. */
    struct out next = {tl_buf_new(SIZE_MAX - 1), false};
    size_t current_len = len;
    if (!current || !next.buf)
        goto fail;
    if (len > 0)
        memcpy(current, text, len);
    current[len] = '\0';
    for (size_t k = 0; k < sizeof passes / sizeof passes[0]; k++) {
        char *result = NULL;
        passes[k]((struct text){current, current_len}, &next, replaced);
        if (next.failed || tl_buf_take_string(next.buf, &result, &current_len) != 0)
            goto fail;
        free(current);
        current = result;
    }
    tl_buf_free(next.buf);
    *out_len = current_len;
    return current;
fail:
    free(current);
    tl_buf_free(next.buf);
    return NULL;
}

/*
 * A later pass can remove what ended a match of an earlier one: after
 * "password=://x" became "password=[REDACTED]", the "://" that closed the
 * authority of an earlier "https://u:" is gone, and that URL now has
 * credentials. So the passes run again over their own result until a run
 * replaces nothing, which makes redacting the result again a no-op. Each run
 * is linear and the runs are bounded; text that still changes after the last
 * run is hostile, and is replaced whole (fail closed).
 */
#define MAX_RUNS 8

char *tl_redact_bytes(const void *data, size_t len, size_t *out_len, size_t *count)
{
    if ((!data && len > 0) || len == SIZE_MAX)
        return NULL;
    char *current = NULL;
    size_t current_len = len, replaced = 0;
    const char *input = len > 0 ? data : "";
    for (int run = 0; run < MAX_RUNS; run++) {
        size_t run_replaced = 0, next_len = 0;
        char *next = run_passes(current ? current : input, current_len, &next_len, &run_replaced);
        if (!next) {
            free(current);
            return NULL;
        }
        free(current);
        current = next;
        current_len = next_len;
        replaced += run_replaced;
        if (run_replaced == 0)
            goto done;
    }
    free(current);
    current = strdup(TL_REDACT_MARK);
    if (!current)
        return NULL;
    current_len = sizeof TL_REDACT_MARK - 1;
    replaced++;
done:
    if (out_len)
        *out_len = current_len;
    if (count)
        *count = replaced;
    return current;
}

char *tl_redact_text(const char *text, size_t *count)
{
    if (!text)
        return NULL;
    return tl_redact_bytes(text, strlen(text), NULL, count);
}
