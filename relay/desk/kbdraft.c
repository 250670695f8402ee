/* A knowledge-base draft from a resolved ticket (relay/desk/kbdraft.h). */
#include "relay/desk/kbdraft.h"

#include "proto/article.h"
#include "proto/buf.h"
#include "proto/cond.h"
#include "proto/err.h"
#include "relay/desk/classify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAFT_MAX TL_ARTICLE_TEXT_MAX
#define CONDITIONS_MAX 8
#define ROWS_MAX 20      /* runbooks and commands listed */
#define TEXT_MAX 8192    /* of the resolution */
#define ROW_TEXT_MAX 300 /* of one row of what was run, or one finding */
#define WORDS_MAX 8

/*
 * A diagnostics rule (docs/desk.md "On the diagnostics") as conditions of the article language:
 * the first that parses and is true on the ticket's diagnostics is taken. "%s" is the finding's
 * key (a mount point, a unit), quoted. Rules on log lines are left out: their wording varies
 * in case and form, which `contains` (exact) cannot follow; an admin writes those.
 */
static const struct {
    const char *rule;
    const char *conditions[2];
} rule_conditions[] = {
    {"disk-full", {"any disks.mounts where (mount == %s and used_percent >= 95)", NULL}},
    {"boot-full", {"any disks.mounts where (mount == %s and used_percent >= 95)", NULL}},
    {"disk-nearly-full",
     {"any disks.mounts where (used_percent >= 90 and used_percent < 95)", NULL}},
    {"inodes-full", {"any disks.mounts where (mount == %s and inodes_used_percent >= 95)", NULL}},
    {"read-only-system", {"any disks.mounts where (mount == %s and read_only == true)", NULL}},
    {"mount-unreadable", {"any disks.unreadable where mount == %s", NULL}},
    {"service-failed-storage",
     {"any services.failed_units where unit == %s", "any services.failed_units where unit "
                                                    "startswith %s"}},
    {"service-failed-network",
     {"any services.failed_units where unit == %s", "any services.failed_units where unit "
                                                    "startswith %s"}},
    {"service-failed-login",
     {"any services.failed_units where unit == %s", "any services.failed_units where unit "
                                                    "startswith %s"}},
    {"service-failed-printing",
     {"any services.failed_units where unit == %s", "any services.failed_units where unit "
                                                    "startswith %s"}},
    {"service-failed-security",
     {"any services.failed_units where unit == %s", "any services.failed_units where unit "
                                                    "startswith %s"}},
    {"service-failed",
     {"any services.failed_units where unit == %s", "any services.failed_units where unit "
                                                    "startswith %s"}},
    {"no-default-route", {"count(network.default_routes) == 0", NULL}},
    {"no-dns", {"count(network.dns.nameservers) == 0", NULL}},
    {"no-interface-up",
     {"none network.interfaces where (loopback == false and up == true and running == true)",
      NULL}},
    {"memory-exhausted", {"memory.used_percent >= 95", NULL}},
    {"memory-high", {"memory.used_percent >= 90", NULL}},
    {"cpu-hog", {"any processes.top_cpu where cpu_percent >= 90", NULL}},
    {"cpu-busy", {"cpu.usage.busy_percent >= 90", NULL}},
    {"io-wait", {"cpu.usage.iowait_percent >= 25", NULL}},
    {"clock-unsynced", {"time.synchronised == false", NULL}},
};

const char *tl_kbdraft_rule_condition(const char *rule)
{
    for (size_t i = 0; rule != NULL && i < sizeof rule_conditions / sizeof rule_conditions[0]; i++)
        if (strcmp(rule_conditions[i].rule, rule) == 0)
            return rule_conditions[i].conditions[0];
    return NULL;
}

/* ---- text made safe ------------------------------------------------------------------------- */

static int put(tl_buf_t *out, const char *text)
{
    return tl_buf_put(out, text, strlen(text));
}

/* The length of the UTF-8 character at text (1 for a byte that starts none: it is replaced). */
static size_t utf8_char(const unsigned char *text, size_t left, int *valid)
{
    size_t need = text[0] < 0x80             ? 1
                  : (text[0] & 0xe0) == 0xc0 ? 2
                  : (text[0] & 0xf0) == 0xe0 ? 3
                  : (text[0] & 0xf8) == 0xf0 ? 4
                                             : 0;
    *valid = need > 0 && need <= left;
    for (size_t i = 1; *valid && i < need; i++)
        if ((text[i] & 0xc0) != 0x80)
            *valid = 0;
    return *valid ? need : 1;
}

/*
 * Appends at most max bytes of text made safe for Markdown: ASCII punctuation escaped with a
 * backslash (so nothing becomes a heading, a list, a link, emphasis, code or HTML), control
 * characters (tabs too) as spaces, bytes that are not UTF-8 as '?'. With lines, a line break
 * stays one (its line escaped the same way); without, it is a space.
 */
static int put_safe(tl_buf_t *out, const char *text, size_t max, int lines)
{
    const unsigned char *p = (const unsigned char *)(text != NULL ? text : "");
    size_t left = strlen((const char *)p), used = 0;
    int rc = 0;
    while (rc == 0 && left > 0 && used < max) {
        int valid;
        size_t n = utf8_char(p, left, &valid);
        if (!valid) {
            rc = tl_buf_put(out, "?", 1);
        } else if (n > 1) {
            rc = tl_buf_put(out, p, n);
        } else if (*p == '\n' && lines) {
            rc = tl_buf_put(out, "\n", 1);
        } else if (*p < 0x20 || *p == 0x7f) {
            rc = tl_buf_put(out, " ", 1);
        } else if (strchr("\\`*_{}[]()<>#+-.!|~\"'&:;=$%^,/?@", *p) != NULL) {
            char escaped[2] = {'\\', (char)*p};
            rc = tl_buf_put(out, escaped, 2);
        } else {
            rc = tl_buf_put(out, p, 1);
        }
        used += n;
        p += n;
        left -= n;
    }
    if (rc == 0 && left > 0)
        rc = put(out, "\xe2\x80\xa6");
    return rc;
}

/* The title for the header: one line, no control characters, at most TL_ARTICLE_TITLE_MAX
 * characters, spaces collapsed; "" when nothing printable is left. */
static void header_title(const char *text, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t left = strlen(text), used = 0, chars = 0;
    int space = 1;
    while (left > 0 && chars < TL_ARTICLE_TITLE_MAX && used + 5 < size) {
        int valid;
        size_t n = utf8_char(p, left, &valid);
        if (valid && n > 1) {
            memcpy(out + used, p, n);
            used += n;
            space = 0;
            chars++;
        } else if (!valid || *p <= 0x20 || *p == 0x7f) {
            if (!space && valid) {
                out[used++] = ' ';
                chars++;
            } else if (!valid) {
                out[used++] = '?';
                chars++;
            }
            space = valid;
        } else {
            out[used++] = (char)*p;
            space = 0;
            chars++;
        }
        p += n;
        left -= n;
    }
    while (used > 0 && out[used - 1] == ' ')
        used--;
    out[used] = '\0';
}

/* A condition's string literal: "TEXT" with \" and \\; 0 when text cannot be one. */
static int quote(const char *text, char *out, size_t size)
{
    size_t used = 0;
    if (text == NULL || text[0] == '\0' || strlen(text) > TL_COND_STRING_MAX)
        return 0;
    out[used++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f || used + 4 >= size)
            return 0;
        if (*p == '"' || *p == '\\')
            out[used++] = '\\';
        out[used++] = (char)*p;
    }
    out[used++] = '"';
    out[used] = '\0';
    return 1;
}

/* ---- the parts ------------------------------------------------------------------------------ */

struct parts {
    char *conditions[CONDITIONS_MAX];
    size_t condition_count;
    char facts[CONDITIONS_MAX * 2][ROW_TEXT_MAX];
    size_t fact_count;
    char left_out[512]; /* rules that fired with no condition written for them */
    char runbook[TL_ARTICLE_ID_MAX + 1];
    char params[TL_ARTICLE_PARAMS_MAX][TL_ARTICLE_PARAM_VALUE_MAX + 40];
    size_t param_count;
};

/* The condition for a finding that is true on the report; NULL when none is. */
static char *finding_condition(const tl_classify_finding_t *finding, const json_t *report)
{
    for (size_t i = 0; i < sizeof rule_conditions / sizeof rule_conditions[0]; i++) {
        if (strcmp(rule_conditions[i].rule, finding->rule) != 0)
            continue;
        for (size_t c = 0; c < 2 && rule_conditions[i].conditions[c] != NULL; c++) {
            const char *form = rule_conditions[i].conditions[c];
            char quoted[TL_COND_STRING_MAX * 2 + 3], text[TL_COND_TEXT_MAX];
            const char *at = strstr(form, "%s");
            if (at != NULL) {
                if (!quote(finding->key, quoted, sizeof quoted))
                    continue;
                snprintf(text, sizeof text, "%.*s%s%s", (int)(at - form), form, quoted, at + 2);
            } else {
                snprintf(text, sizeof text, "%s", form);
            }
            tl_cond_t *cond = NULL;
            char why[256];
            if (tl_cond_parse(text, strlen(text), &cond, why, sizeof why) != 0)
                continue;
            tl_cond_result_t result = tl_cond_eval(cond, report, NULL, 0);
            tl_cond_free(cond);
            if (result == TL_COND_TRUE)
                return strdup(text);
        }
    }
    return NULL;
}

/*
 * Whether finding a ranks before b as the primary finding: the more severe (S1 first; a rule
 * that sets no severity last), then the earlier in the rules table (the findings' order).
 */
static int ranks_before(const tl_classify_finding_t *a, const tl_classify_finding_t *b)
{
    int sa = a->severity > 0 ? a->severity : 5, sb = b->severity > 0 ? b->severity : 5;
    return sa < sb;
}

/*
 * The conditions of the diagnostics' findings. The primary finding is the one that decides the
 * ticket's diagnostic fingerprint first (of the rules the fingerprint counts, the most severe,
 * then the first in the rules table; of all rules when none of those fired) and has a condition
 * true on the diagnostics: its condition is conditions[0], when and recheck. The other fired
 * rules' conditions follow it, for the text's "Also seen": independent problems that one
 * conjunction would describe on no real machine.
 */
static int read_conditions(const tl_kbdraft_input_t *input, struct parts *parts, char *problem,
                           size_t problem_size)
{
    tl_classify_findings_t *findings = NULL;
    json_t *report = NULL;
    char why[256], *conditions[CONDITIONS_MAX * 4] = {0};
    int rc = tl_classify_findings_read(input->diagnostics, input->diagnostics_len, &findings, why,
                                       sizeof why);
    if (rc == TL_ENOMEM)
        return rc;
    if (rc != 0) {
        snprintf(problem, problem_size, "the ticket's diagnostics cannot be read (%s)", why);
        return 0;
    }
    report = json_loadb(input->diagnostics, input->diagnostics_len, 0, NULL);
    size_t count = tl_classify_findings_count(findings), used = 0;
    if (count > sizeof conditions / sizeof conditions[0])
        count = sizeof conditions / sizeof conditions[0];
    /* The primary: of the fingerprint's findings with a condition, else of any with one. */
    size_t primary = count;
    for (int pass = 0; pass < 2 && primary == count; pass++) {
        for (size_t i = 0; i < count; i++) {
            const tl_classify_finding_t *finding = tl_classify_findings_get(findings, i);
            if (pass == 0 && !finding->fingerprint)
                continue;
            if (conditions[i] == NULL &&
                (conditions[i] = finding_condition(finding, report)) == NULL)
                continue;
            if (primary == count ||
                ranks_before(finding, tl_classify_findings_get(findings, primary)))
                primary = i;
        }
    }
    /* The primary first, then the others in the rules' order: facts, conditions, left out. */
    for (size_t n = 0; n <= count; n++) {
        size_t i = n == 0 ? primary : n - 1;
        if (i >= count || (n > 0 && i == primary))
            continue;
        const tl_classify_finding_t *finding = tl_classify_findings_get(findings, i);
        if (parts->fact_count < sizeof parts->facts / sizeof parts->facts[0])
            snprintf(parts->facts[parts->fact_count++], ROW_TEXT_MAX, "%s: %s", finding->rule,
                     finding->fact);
        char *condition = conditions[i];
        conditions[i] = NULL;
        if (condition == NULL)
            condition = finding_condition(finding, report);
        int duplicate = 0;
        for (size_t c = 0; condition != NULL && c < parts->condition_count; c++)
            duplicate |= strcmp(parts->conditions[c], condition) == 0;
        if (condition != NULL && !duplicate && parts->condition_count < CONDITIONS_MAX) {
            parts->conditions[parts->condition_count++] = condition;
        } else {
            if (condition == NULL && strstr(parts->left_out, finding->rule) == NULL &&
                used + strlen(finding->rule) + 3 < sizeof parts->left_out)
                used += (size_t)snprintf(parts->left_out + used, sizeof parts->left_out - used,
                                         "%s%s", used ? ", " : "", finding->rule);
            free(condition);
        }
    }
    for (size_t i = 0; i < sizeof conditions / sizeof conditions[0]; i++)
        free(conditions[i]);
    if (parts->condition_count == 0)
        snprintf(problem, problem_size, "%s",
                 count == 0 ? "no diagnostics rule fired on the ticket's diagnostics: write when "
                              "and recheck"
                            : "no condition is known for the rules that fired on the ticket's "
                              "diagnostics: write when and recheck");
    json_decref(report);
    tl_classify_findings_free(findings);
    return 0;
}

/* A parameter's NAME=VALUE as an article can hold it; 0 when it cannot. */
static int param_ok(const char *name, const char *value)
{
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > 32 || strlen(value) > TL_ARTICLE_PARAM_VALUE_MAX)
        return 0;
    for (const char *p = name; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return value[0] != ' ' && (value[0] == '\0' || value[strlen(value) - 1] != ' ');
}

static int id_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TL_ARTICLE_ID_MAX || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '-'))
            return 0;
    return 1;
}

/* The last runbook that exited 0, with its parameters. */
static void read_runbook(const tl_summary_t *summary, struct parts *parts)
{
    size_t count = summary != NULL ? tl_summary_count(summary, TL_SUMMARY_RUNBOOKS) : 0;
    for (size_t i = count; i-- > 0;) {
        tl_summary_row_t row;
        if (tl_summary_row(summary, TL_SUMMARY_RUNBOOKS, i, &row) != 0 || !row.has_exit_status ||
            row.exit_status != 0 || row.runbook == NULL || !id_ok(row.runbook))
            continue;
        const char *name;
        json_t *value;
        size_t params = 0;
        int ok = 1;
        json_object_foreach(row.args, name, value) {
            const char *text = json_string_value(value);
            if (text == NULL || !param_ok(name, text) || params >= TL_ARTICLE_PARAMS_MAX) {
                ok = 0;
                break;
            }
            snprintf(parts->params[params++], sizeof parts->params[0], "%s=%s", name, text);
        }
        if (!ok)
            continue;
        snprintf(parts->runbook, sizeof parts->runbook, "%s", row.runbook);
        parts->param_count = params;
        return;
    }
}

/* Title words the description of a user with the same problem may have. */
static int put_words(tl_buf_t *out, const char *title)
{
    char words[WORDS_MAX][TL_ARTICLE_WORD_MAX + 1];
    size_t count = 0;
    const char *p = title;
    while (*p != '\0' && count < WORDS_MAX) {
        char word[TL_ARTICLE_WORD_MAX + 1];
        size_t len = 0;
        while (*p != '\0' &&
               !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            p++;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) {
            if (len < TL_ARTICLE_WORD_MAX)
                word[len++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            p++;
        }
        word[len] = '\0';
        int seen = len < 4;
        for (size_t i = 0; !seen && i < count; i++)
            seen = strcmp(words[i], word) == 0;
        if (!seen)
            memcpy(words[count++], word, len + 1);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = tl_buf_printf(out, "%s%s", i == 0 ? "words: " : ", ", words[i]);
    if (rc == 0 && count > 0)
        rc = put(out, "\n");
    return rc;
}

/* What was run on the ticket: its runbooks and commands, newest last. */
static int put_what_was_run(tl_buf_t *out, const tl_summary_t *summary)
{
    size_t runbooks = summary != NULL ? tl_summary_count(summary, TL_SUMMARY_RUNBOOKS) : 0;
    size_t commands = summary != NULL ? tl_summary_count(summary, TL_SUMMARY_COMMANDS) : 0;
    int rc = put(out, "\n## What was run\n\n");
    for (size_t i = runbooks > ROWS_MAX ? runbooks - ROWS_MAX : 0; rc == 0 && i < runbooks; i++) {
        tl_summary_row_t row;
        if (tl_summary_row(summary, TL_SUMMARY_RUNBOOKS, i, &row) != 0)
            continue;
        char *args = row.args != NULL ? json_dumps(row.args, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        rc = put(out, "- runbook ");
        if (rc == 0)
            rc = put_safe(out, row.runbook, ROW_TEXT_MAX, 0);
        if (rc == 0 && args != NULL && strcmp(args, "{}") != 0) {
            rc = put(out, " ");
            if (rc == 0)
                rc = put_safe(out, args, ROW_TEXT_MAX, 0);
        }
        free(args);
        if (rc == 0)
            rc = row.has_exit_status ? tl_buf_printf(out, ": exit status %d\n", row.exit_status)
                                     : put(out, ": did not finish\n");
    }
    for (size_t i = commands > ROWS_MAX ? commands - ROWS_MAX : 0; rc == 0 && i < commands; i++) {
        tl_summary_row_t row;
        if (tl_summary_row(summary, TL_SUMMARY_COMMANDS, i, &row) != 0)
            continue;
        rc = put(out, "- command");
        size_t index;
        json_t *word;
        json_array_foreach(row.argv, index, word) {
            if (rc == 0)
                rc = put(out, " ");
            if (rc == 0)
                rc = put_safe(out, json_string_value(word), ROW_TEXT_MAX, 0);
        }
        if (rc == 0)
            rc = row.has_exit_status ? tl_buf_printf(out, ": exit status %d\n", row.exit_status)
                                     : put(out, ": did not finish\n");
    }
    if (rc == 0 && runbooks + commands == 0)
        rc = put(out, "Nothing was run on the machine from the desk.\n");
    return rc;
}

/* ---- the draft ------------------------------------------------------------------------------ */

int tl_kbdraft_build(const tl_kbdraft_input_t *input, tl_kbdraft_t *out)
{
    struct parts parts;
    char problem[1200] = "";
    tl_buf_t *buf = NULL;
    int rc = 0;
    memset(out, 0, sizeof *out);
    memset(&parts, 0, sizeof parts);
    if (input->id == NULL || !id_ok(input->id) || input->ticket == NULL || input->title == NULL)
        return TL_EINVAL;
    header_title(input->title, out->title, sizeof out->title);
    if (out->title[0] == '\0')
        snprintf(out->title, sizeof out->title, "Fix from %.20s", input->ticket);
    if (input->diagnostics == NULL || input->diagnostics_len == 0)
        snprintf(problem, sizeof problem,
                 "the ticket has no diagnostics: write when and recheck (docs/kb.md "
                 "\"Conditions\")");
    else if ((rc = read_conditions(input, &parts, problem, sizeof problem)) != 0)
        goto out;
    read_runbook(input->summary, &parts);
    if ((buf = tl_buf_new(DRAFT_MAX * 2)) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    /* The header: only what the record gives; when and recheck only when known. */
    rc = tl_buf_printf(buf, "---\nid: %s\ntitle: %s\ncategory: %s\n", input->id, out->title,
                       input->category != NULL ? input->category : "other");
    /* when and recheck: the primary finding's condition alone (read_conditions). */
    if (rc == 0 && parts.condition_count > 0)
        rc =
            tl_buf_printf(buf, "when: %s\nrecheck: %s\n", parts.conditions[0], parts.conditions[0]);
    if (rc == 0 && parts.runbook[0] != '\0') {
        rc = tl_buf_printf(buf, "runbook: %s\n", parts.runbook);
        snprintf(out->runbook, sizeof out->runbook, "%s", parts.runbook);
    }
    for (size_t i = 0; rc == 0 && i < parts.param_count; i++)
        rc = tl_buf_printf(buf, "param: %s\n", parts.params[i]);
    if (rc == 0)
        rc = put_words(buf, out->title);
    if (rc == 0)
        rc = put(buf, "---\n# ");
    if (rc == 0)
        rc = put_safe(buf, out->title, TL_ARTICLE_TITLE_MAX * 4, 0);
    if (rc == 0)
        rc =
            tl_buf_printf(buf, "\n\nDrafted from %s when it was resolved.\n\n## What was wrong\n\n",
                          input->ticket);
    for (size_t i = 0; rc == 0 && i < parts.fact_count; i++) {
        rc = put(buf, "- ");
        if (rc == 0)
            rc = put_safe(buf, parts.facts[i], ROW_TEXT_MAX, 0);
        if (rc == 0)
            rc = put(buf, "\n");
    }
    if (rc == 0 && parts.fact_count == 0)
        rc = put(buf, "The diagnostics showed nothing a rule knows.\n");
    if (rc == 0 && parts.condition_count > 1)
        rc = put(buf, "\nAlso seen on the machine, not in when (each may be a problem of its own; "
                      "an article of its own may fit it better):\n\n");
    for (size_t i = 1; rc == 0 && i < parts.condition_count; i++) {
        rc = put(buf, "- ");
        if (rc == 0)
            rc = put_safe(buf, parts.conditions[i], TL_COND_TEXT_MAX, 0);
        if (rc == 0)
            rc = put(buf, "\n");
    }
    if (rc == 0 && parts.left_out[0] != '\0')
        rc = tl_buf_printf(buf, "\nNot in the conditions (no condition is known for them): %s.\n",
                           parts.left_out);
    if (rc == 0)
        rc = put_what_was_run(buf, input->summary);
    if (rc == 0)
        rc = put(buf, "\n## The fix\n\n");
    if (rc == 0)
        rc = put_safe(buf, input->resolution, TEXT_MAX, 1);
    if (rc == 0)
        rc = put(buf, "\n");
    if (rc == 0 && tl_buf_len(buf) > DRAFT_MAX)
        rc = TL_EFULL; /* the bounds above keep it far below */
    if (rc == 0)
        rc = tl_buf_take_string(buf, &out->source, &out->len);
    if (rc != 0)
        goto out;
    /* The draft must read as every article does; what it lacks says why it does not. */
    tl_article_t *article = NULL;
    char why[1024];
    int parsed = tl_article_parse(input->id, out->source, out->len, &article, why, sizeof why);
    tl_article_free(article);
    if (parsed == TL_ENOMEM) {
        rc = parsed;
        goto out;
    }
    if (problem[0] == '\0' && parsed != 0)
        snprintf(problem, sizeof problem, "%s", why);
    if (problem[0] != '\0' && (out->needs_editing = strdup(problem)) == NULL)
        rc = TL_ENOMEM;
out:
    for (size_t i = 0; i < parts.condition_count; i++)
        free(parts.conditions[i]);
    tl_buf_free(buf);
    if (rc != 0)
        tl_kbdraft_clear(out);
    return rc;
}

void tl_kbdraft_clear(tl_kbdraft_t *draft)
{
    free(draft->source);
    free(draft->needs_editing);
    memset(draft, 0, sizeof *draft);
}
