/*
 * Fuzz target for conditions over a diagnostics report (proto/cond.h, docs/kb.md
 * "Conditions"): what a knowledge-base article says it matches.
 *
 * The input is a condition, a NUL byte, and a report as JSON (no NUL: the condition alone,
 * evaluated on an empty report). A condition that parses is evaluated on the report: the
 * result must be true, false or unknown; the evidence must be a NUL-terminated line within its
 * buffer with no control character, and empty unless the result is true. Parsing the same text
 * twice gives the same result.
 */
#include "proto/cond.h"
#include "proto/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t cond_len = nul != NULL ? (size_t)(nul - data) : size;
    tl_cond_t *cond = NULL;
    char why[300];
    int rc = tl_cond_parse((const char *)data, cond_len, &cond, why, sizeof why);
    if (rc != 0) {
        if (rc != TL_EINVAL || cond != NULL || why[0] == '\0' || strlen(why) >= sizeof why)
            abort();
        return 0;
    }
    tl_cond_t *again = NULL;
    if (tl_cond_parse((const char *)data, cond_len, &again, why, sizeof why) != 0)
        abort();
    tl_cond_free(again);

    json_t *report = NULL;
    if (nul != NULL)
        report = json_loadb((const char *)nul + 1, size - cond_len - 1, JSON_REJECT_DUPLICATES,
                            NULL);
    else
        report = json_pack("{s:i, s:{}}", "schema", 1, "sections");
    static const size_t sizes[] = {1, 17, 400};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        char evidence[400];
        memset(evidence, 'Z', sizeof evidence);
        tl_cond_result_t r = tl_cond_eval(cond, report, evidence, sizes[s]);
        if (r != TL_COND_TRUE && r != TL_COND_FALSE && r != TL_COND_UNKNOWN)
            abort();
        size_t len = strnlen(evidence, sizes[s]);
        if (len >= sizes[s] || (r != TL_COND_TRUE && len != 0))
            abort();
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)evidence[i] < 0x20 || evidence[i] == 0x7f)
                abort();
    }
    if (tl_cond_eval(cond, report, NULL, 0) > TL_COND_UNKNOWN)
        abort();
    json_decref(report);
    tl_cond_free(cond);
    return 0;
}
