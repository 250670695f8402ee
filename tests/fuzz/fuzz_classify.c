/*
 * Fuzz target for the desk's classifier and fingerprint (relay/desk/classify.h,
 * relay/desk/fingerprint.h, docs/desk.md): the diagnostics document comes from an agent, the
 * words from a user, and both end up in lines a technician reads.
 *
 * Input: the ticket's text, a NUL byte, then the diagnostics document (no NUL: text only, no
 * document). Checked:
 *   - a refused document names its reason and leaves the findings untouched;
 *   - each finding's fact is valid UTF-8 with nothing to escape;
 *   - the fingerprint is "" or 64 hex digits, is the SHA-256 of the canonical text, and does
 *     not change when the document's keys are written in another order;
 *   - a proposal has a category and an S1..S4, and every line it holds is safe to show and
 *     under the line size;
 *   - a text matches itself as a problem's title whenever it has a significant word.
 */
#include "proto/hash.h"
#include "proto/text.h"
#include "relay/desk/classify.h"
#include "relay/desk/fingerprint.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_line(const char *line, size_t size)
{
    size_t len = strnlen(line, size);
    if (len == size || !tl_text_utf8_valid(line, len) ||
        !tl_text_printable(line, len, TL_TEXT_LINE))
        abort();
}

static void check_fingerprint(const tl_classify_findings_t *findings, tl_fingerprint_t *out)
{
    tl_fingerprint_t again;
    if (tl_fingerprint_compute(findings, out) != 0 || tl_fingerprint_compute(findings, &again) != 0)
        abort();
    if (strcmp(out->hex, again.hex) != 0)
        abort();
    tl_buf_t *text = tl_buf_new((size_t)64 << 20);
    if (text == NULL || tl_fingerprint_conditions(findings, text) != 0)
        abort();
    if (out->condition_count == 0) {
        if (out->hex[0] != '\0' || tl_buf_len(text) != 0)
            abort();
    } else {
        char hex[TL_SHA256_HEX_LEN];
        if (tl_sha256_hex(tl_buf_data(text), tl_buf_len(text), hex) != 0 ||
            strcmp(hex, out->hex) != 0)
            abort();
    }
    tl_buf_free(text);
}

/* The document with its keys sorted: another order, the same conditions. */
static void check_key_order(const char *doc, size_t len, const tl_fingerprint_t *fingerprint)
{
    json_t *value = json_loadb(doc, len, JSON_DECODE_ANY, NULL);
    if (value == NULL)
        abort(); /* it was read once already */
    char *sorted = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(value);
    if (sorted == NULL)
        abort();
    char why[256];
    tl_classify_findings_t *findings = NULL;
    if (tl_classify_findings_read(sorted, strlen(sorted), &findings, why, sizeof why) == 0) {
        tl_fingerprint_t again;
        check_fingerprint(findings, &again);
        if (strcmp(again.hex, fingerprint->hex) != 0)
            abort();
        tl_classify_findings_free(findings);
    } else if (strlen(sorted) <= TL_CLASSIFY_DIAGNOSTICS_MAX) {
        abort();
    }
    free(sorted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul ? (size_t)(nul - data) : size;
    char *text = malloc(text_len + 1);
    if (text == NULL)
        abort();
    memcpy(text, data, text_len);
    text[text_len] = '\0';
    const char *doc = nul ? (const char *)nul + 1 : NULL;
    size_t doc_len = nul ? size - text_len - 1 : 0;

    char why[256] = "";
    char hash[TL_SHA256_HEX_LEN];
    tl_classify_findings_t *sentinel = (tl_classify_findings_t *)why;
    tl_classify_findings_t *findings = sentinel;
    if (doc != NULL) {
        if (tl_sha256_hex(doc, doc_len, hash) != 0)
            abort();
        int rc = tl_classify_findings_read(doc, doc_len, &findings, why, sizeof why);
        if (rc != 0) {
            if (findings != sentinel || why[0] == '\0')
                abort();
        } else {
            for (size_t i = 0; i < tl_classify_findings_count(findings); i++) {
                const tl_classify_finding_t *finding = tl_classify_findings_get(findings, i);
                if (finding->severity < TL_SEVERITY_MIN || finding->severity > TL_SEVERITY_MAX ||
                    tl_classify_category_name(finding->category) == NULL)
                    abort();
                check_line(finding->fact, 320);
            }
            tl_fingerprint_t fingerprint;
            check_fingerprint(findings, &fingerprint);
            check_key_order(doc, doc_len, &fingerprint);
        }
    }
    if (findings == sentinel)
        findings = NULL;

    tl_classify_ticket_t ticket = {text, text, findings, hash};
    tl_classification_t result;
    int rc = tl_classify_propose(&ticket, &result, why, sizeof why);
    if (rc != 0) {
        if (text_len <= TL_CLASSIFY_TEXT_MAX)
            abort();
    } else {
        if (tl_classify_category_name(result.category) == NULL ||
            result.severity < TL_SEVERITY_MIN || result.severity > TL_SEVERITY_MAX ||
            result.reason_count > TL_CLASSIFY_REASONS_MAX)
            abort();
        check_line(result.category_line, TL_CLASSIFY_LINE_SIZE);
        check_line(result.severity_line, TL_CLASSIFY_LINE_SIZE);
        for (size_t i = 0; i < result.reason_count; i++)
            check_line(result.reasons[i].evidence, TL_CLASSIFY_LINE_SIZE);
    }

    tl_fingerprint_text_match_t match;
    if (tl_fingerprint_text_match(text, NULL, text, &match, why, sizeof why) == 0) {
        if (match.per_mille > 1000 || match.shared_words > match.title_words)
            abort();
        if (match.title_words > 0 && match.title_words < 64 && !match.matches)
            abort();
    } else if (text_len <= TL_CLASSIFY_TEXT_MAX) {
        abort();
    }
    tl_classify_findings_free(findings);
    free(text);
    return 0;
}
