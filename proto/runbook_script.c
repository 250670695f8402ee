/*
 * A runbook as one file with its metadata header (proto/runbook_script.h; docs/kb.md "Runbook
 * proposals"). The header is cut out line by line, and the metadata is then checked by
 * proto/runbooks.c, so a proposal and a catalogue entry obey one set of rules.
 */
#include "proto/runbook_script.h"

#include "proto/err.h"
#include "proto/runbooks.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static void say(char *reason, size_t size, size_t line,
                                                      const char *fmt, ...)
{
    va_list ap;
    int used = snprintf(reason, size, "%zu: ", line);
    if (used < 0 || (size_t)used >= size)
        return;
    va_start(ap, fmt);
    vsnprintf(reason + used, size - (size_t)used, fmt, ap);
    va_end(ap);
}

/* The length of the line at p (without its "\n", nor a "\r" before it). */
static size_t line_length(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)((nl != NULL ? nl : end) - p);
    if (len > 0 && p[len - 1] == '\r')
        len--;
    return len;
}

static const char *next_line(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl != NULL ? nl + 1 : end;
}

static int line_is(const char *p, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(p, want, len) == 0;
}

/*
 * The line of the header where what a reason names is given: the first `'member'` or the
 * word after "parameter ", found as "member" in the metadata; first (the header's first line of
 * metadata) when it is not found.
 */
static size_t reason_line(const char *metadata, const char *reason, size_t first)
{
    char member[64] = "";
    const char *quote = strchr(reason, '\''), *param = strstr(reason, "parameter ");
    if (quote != NULL && strchr(quote + 1, '\'') != NULL) {
        size_t len = (size_t)(strchr(quote + 1, '\'') - quote - 1);
        if (len > 0 && len < sizeof member - 2)
            snprintf(member, sizeof member, "\"%.*s\"", (int)len, quote + 1);
    } else if (param != NULL) {
        param += strlen("parameter ");
        size_t len = strspn(param, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        if (len > 0 && len < sizeof member - 2)
            snprintf(member, sizeof member, "\"%.*s\"", (int)len, param);
    }
    const char *at = member[0] != '\0' ? strstr(metadata, member) : NULL;
    if (at == NULL)
        return first;
    size_t line = first;
    for (const char *p = metadata; p < at; p++)
        if (*p == '\n')
            line++;
    return line;
}

int tl_runbook_script_parse(const char *text, size_t len, tl_runbook_script_t *out, char *reason,
                            size_t reason_size)
{
    json_t *doc = NULL;
    tl_runbooks_t *one = NULL;
    char *metadata = NULL, why[512] = "";
    size_t used = 0, line = 1, first = 0;
    int rc = TL_EINVAL;
    memset(out, 0, sizeof *out);
    if (reason_size > 0)
        reason[0] = '\0';
    const char *p = text, *end = text + len;
    if (len == 0) {
        say(reason, reason_size, 1,
            "the script is empty: give it on stdin, its metadata header "
            "after the #! line");
        goto out;
    }
    if (len > TL_RUNBOOK_SCRIPT_MAX) {
        say(reason, reason_size, 1, "the script is larger than %d bytes", TL_RUNBOOK_SCRIPT_MAX);
        goto out;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL) {
        for (const char *q = text; q < nul; q++)
            line += *q == '\n';
        say(reason, reason_size, line, "the script holds a NUL byte");
        goto out;
    }
    if (len < 2 || text[0] != '#' || text[1] != '!') {
        say(reason, reason_size, 1, "the script must start with #! and its interpreter");
        goto out;
    }
    p = next_line(p, end);
    line = 2;
    if (p >= end || !line_is(p, line_length(p, end), TL_RUNBOOK_SCRIPT_BEGIN)) {
        say(reason, reason_size, 2,
            "the metadata header must follow the #! line, starting with \"%s\"",
            TL_RUNBOOK_SCRIPT_BEGIN);
        goto out;
    }
    metadata = malloc(len + 1);
    if (metadata == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    first = 3;
    int closed = 0;
    for (p = next_line(p, end), line = 3; p < end; p = next_line(p, end), line++) {
        size_t n = line_length(p, end);
        if (line_is(p, n, TL_RUNBOOK_SCRIPT_END)) {
            closed = 1;
            break;
        }
        if (n == 0 || p[0] != '#') {
            say(reason, reason_size, line,
                "a line of the metadata header must start with #; the header ends with \"%s\"",
                TL_RUNBOOK_SCRIPT_END);
            goto out;
        }
        size_t skip = n > 1 && p[1] == ' ' ? 2 : 1;
        memcpy(metadata + used, p + skip, n - skip);
        used += n - skip;
        metadata[used++] = '\n';
    }
    metadata[used] = '\0';
    if (!closed) {
        say(reason, reason_size, line - 1, "the metadata header has no end line \"%s\"",
            TL_RUNBOOK_SCRIPT_END);
        goto out;
    }
    if (used > TL_RUNBOOKS_MAX_METADATA) {
        say(reason, reason_size, first, "the metadata is larger than %d bytes",
            TL_RUNBOOKS_MAX_METADATA);
        goto out;
    }
    json_error_t error;
    doc = json_loadb(metadata, used, JSON_REJECT_DUPLICATES, &error);
    if (doc == NULL) {
        say(reason, reason_size, first + (size_t)(error.line > 0 ? error.line - 1 : 0),
            "the metadata is not valid JSON: %s", error.text);
        goto out;
    }
    const char *name = json_string_value(json_object_get(doc, "name"));
    if (name == NULL) {
        say(reason, reason_size, first, "the metadata has no 'name' (a string)");
        goto out;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    int err = 0;
    one = tl_runbooks_from_metadata(name, metadata, used, &err, why, sizeof why);
    if (one == NULL) {
        if (err == TL_ENOMEM) {
            rc = TL_ENOMEM;
            goto out;
        }
        say(reason, reason_size, reason_line(metadata, why, first), "%s", why);
        goto out;
    }
    out->metadata = metadata;
    out->metadata_len = used;
    metadata = NULL;
    rc = 0;
out:
    if (rc != 0)
        out->name[0] = '\0';
    tl_runbooks_free(one);
    json_decref(doc);
    free(metadata);
    return rc;
}

void tl_runbook_script_clear(tl_runbook_script_t *script)
{
    if (script == NULL)
        return;
    free(script->metadata);
    memset(script, 0, sizeof *script);
}
