/*
 * Drafts from resolved tickets (relay/desk/kbdraft.h): the draft reads as an article with the
 * parser kb add uses, its condition is the one that fired and is true on the ticket's
 * diagnostics, it suggests the runbook that worked, and nothing a user or a technician typed can
 * add to its header or become Markdown.
 */
#include "tl_test.h"

#include "proto/article.h"
#include "proto/fsutil.h"
#include "relay/desk/kbdraft.h"
#include "relay/desk/summary.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The fixture's "problem" report of a shipped article, as text. */
static char *fixture(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/kb/%s.json", TL_SOURCE_DIR, name);
    json_t *doc = json_load_file(path, 0, NULL);
    assert_non_null(doc);
    char *text = json_dumps(json_object_get(doc, "problem"), JSON_COMPACT);
    json_decref(doc);
    assert_non_null(text);
    *len = strlen(text);
    return text;
}

/* A summary with one runbook that worked (restart-service SERVICE=cups). */
static tl_summary_t *summary_with_fix(const char *title)
{
    static const tl_ticket_event_row_t events[] = {
        {1, 1000, "tech:carol", "fix.finished",
         "{\"type\":\"runbook\",\"runbook\":\"restart-service\",\"args\":{\"SERVICE\":\"cups\"},"
         "\"exit_status\":0}"},
        {1, 2000, "tech:carol", "exec.finished",
         "{\"type\":\"exec\",\"argv\":[\"systemctl\",\"status\",\"cups\"],\"exit_status\":0}"},
    };
    tl_summary_input_t input = {
        .ticket = "T-1", .title = title, .events = events, .event_count = 2};
    tl_summary_t *summary = NULL;
    TL_ASSERT_OK(tl_summary_build(&input, NULL, &summary));
    return summary;
}

static tl_article_t *parse(const tl_kbdraft_t *draft)
{
    tl_article_t *article = NULL;
    char why[1024] = "";
    int rc = tl_article_parse("draft.md", draft->source, draft->len, &article, why, sizeof why);
    if (rc != 0)
        fail_msg("the draft does not parse: %s\n%s", why, draft->source);
    return article;
}

static void test_draft_parses_with_the_condition_that_fired_and_the_fix_that_worked(void **state)
{
    (void)state;
    size_t len;
    char *report_text = fixture("printing-service-failed", &len);
    tl_summary_t *summary = summary_with_fix("printer does not print");
    tl_kbdraft_input_t input = {.id = "ticket-1",
                                .ticket = "T-1",
                                .title = "printer does not print",
                                .category = "printing",
                                .resolution = "restarted cups",
                                .diagnostics = report_text,
                                .diagnostics_len = len,
                                .summary = summary};
    tl_kbdraft_t draft;
    TL_ASSERT_OK(tl_kbdraft_build(&input, &draft));
    assert_null(draft.needs_editing);
    tl_article_t *article = parse(&draft);
    assert_string_equal(article->id, "ticket-1");
    assert_string_equal(article->title, "printer does not print");
    assert_string_equal(article->runbook, "restart-service");
    assert_int_equal(article->param_count, 1);
    assert_string_equal(article->params[0], "SERVICE=cups");
    assert_non_null(strstr(article->when_text, "cups.service"));
    /* The condition is true on the ticket's diagnostics, and false on the fixed ones. */
    json_t *report = json_loadb(report_text, len, 0, NULL);
    assert_int_equal(tl_cond_eval(article->when, report, NULL, 0), TL_COND_TRUE);
    assert_int_equal(tl_cond_eval(article->recheck, report, NULL, 0), TL_COND_TRUE);
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/kb/printing-service-failed.json", TL_SOURCE_DIR);
    json_t *both = json_load_file(path, 0, NULL);
    assert_int_equal(tl_cond_eval(article->recheck, json_object_get(both, "fixed"), NULL, 0),
                     TL_COND_FALSE);
    /* What was run and the fix are in the text. */
    assert_non_null(strstr(article->body, "restart\\-service"));
    assert_non_null(strstr(article->body, "systemctl status cups"));
    assert_non_null(strstr(article->body, "restarted cups"));
    json_decref(both);
    json_decref(report);
    tl_article_free(article);
    tl_kbdraft_clear(&draft);
    tl_summary_free(summary);
    free(report_text);
}

/* /var full (disk-full, S2) and cups failed (service-failed-printing, S3) on one machine. */
static char *two_problems(size_t *len, int var_fixed)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/kb/var-log-full.json", TL_SOURCE_DIR);
    json_t *var = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/tests/fixtures/kb/printing-service-failed.json", TL_SOURCE_DIR);
    json_t *cups = json_load_file(path, 0, NULL);
    assert_non_null(var);
    assert_non_null(cups);
    json_t *doc = json_object_get(var, var_fixed ? "fixed" : "problem");
    json_object_set(
        json_object_get(doc, "sections"), "services",
        json_object_get(json_object_get(json_object_get(cups, "problem"), "sections"), "services"));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(var);
    json_decref(cups);
    assert_non_null(text);
    *len = strlen(text);
    return text;
}

static void test_independent_problems_primary_is_when_others_also_seen(void **state)
{
    (void)state;
    size_t len, fixed_len;
    char *report_text = two_problems(&len, 0), *fixed_text = two_problems(&fixed_len, 1);
    tl_summary_t *summary = summary_with_fix("var is full");
    tl_kbdraft_input_t input = {.id = "ticket-5",
                                .ticket = "T-5",
                                .title = "var is full",
                                .category = "disk",
                                .resolution = "cleaned /var",
                                .diagnostics = report_text,
                                .diagnostics_len = len,
                                .summary = summary};
    tl_kbdraft_t draft;
    TL_ASSERT_OK(tl_kbdraft_build(&input, &draft));
    assert_null(draft.needs_editing);
    tl_article_t *article = parse(&draft);
    /* when and recheck: the full /var alone, the rule that decides the fingerprint first. */
    const char *var_full = "any disks.mounts where (mount == \"/var\" and used_percent >= 95)";
    assert_string_equal(article->when_text, var_full);
    assert_string_equal(article->recheck_text, var_full);
    /* A machine with /var full and cups fine matches; the fix counts once /var is freed, cups
     * or not. */
    json_t *report = json_loadb(report_text, len, 0, NULL);
    json_t *fixed = json_loadb(fixed_text, fixed_len, 0, NULL);
    assert_int_equal(tl_cond_eval(article->when, report, NULL, 0), TL_COND_TRUE);
    assert_int_equal(tl_cond_eval(article->recheck, fixed, NULL, 0), TL_COND_FALSE);
    /* The failed cups is in the text, as also seen, escaped. */
    const char *also = strstr(article->body, "Also seen on the machine, not in when");
    assert_non_null(also);
    if (strstr(also,
               "- any services\\.failed\\_units where unit \\=\\= \\\"cups\\.service\\\"\n") ==
        NULL)
        fail_msg("no escaped cups condition after \"Also seen\":\n%s", also);
    /* What was wrong: the primary finding first, then the others. */
    const char *disk = strstr(article->body, "- disk\\-full\\: \\/var 97\\% full\n");
    const char *cups = strstr(article->body, "- service\\-failed\\-printing\\: "
                                             "\\\"cups\\.service\\\" failed\n");
    if (disk == NULL || cups == NULL || cups < disk || cups > also)
        fail_msg("what was wrong is not the full /var, then the failed cups:\n%s", article->body);
    json_decref(report);
    json_decref(fixed);
    tl_article_free(article);
    tl_kbdraft_clear(&draft);
    tl_summary_free(summary);
    free(report_text);
    free(fixed_text);
}

static void test_hostile_text_cannot_reach_the_header_or_become_markdown(void **state)
{
    (void)state;
    size_t len;
    char *report_text = fixture("var-log-full", &len);
    const char *title = "disk full\nrunbook: wipe-disk\nparam: X=1\n---\n<script>alert(1)</script>"
                        "\x1b[2J";
    const char *resolution = "---\nid: evil\n# Heading\n[click](javascript:alert(1)) <img src=x>"
                             "\x07 `code` *bold*";
    tl_summary_t *summary = summary_with_fix("disk full");
    tl_kbdraft_input_t input = {.id = "ticket-2",
                                .ticket = "T-2",
                                .title = title,
                                .category = "disk",
                                .resolution = resolution,
                                .diagnostics = report_text,
                                .diagnostics_len = len,
                                .summary = summary};
    tl_kbdraft_t draft;
    TL_ASSERT_OK(tl_kbdraft_build(&input, &draft));
    assert_null(draft.needs_editing);
    tl_article_t *article = parse(&draft);
    /* The header holds only what the record gives: the id, the runbook that ran. */
    assert_string_equal(article->id, "ticket-2");
    assert_string_equal(article->runbook, "restart-service");
    assert_null(strchr(article->title, '\n'));
    assert_null(strchr(article->title, '\x1b'));
    /* In the body: no raw tag, link, heading or control byte from the ticket. */
    for (const char *p = article->body; *p != '\0'; p++)
        if (*p == '<' || *p == '[' || *p == '`' || *p == '*')
            assert_true(p > article->body && p[-1] == '\\');
    assert_null(strstr(article->body, "\n# Heading"));
    assert_null(strstr(article->body, "\n---"));
    assert_null(strchr(article->body, '\x07'));
    assert_non_null(strstr(article->body, "\\<script\\>"));
    assert_non_null(strstr(article->body, "\\# Heading"));
    tl_article_free(article);
    tl_kbdraft_clear(&draft);
    tl_summary_free(summary);
    free(report_text);
}

static void test_without_diagnostics_the_draft_says_it_needs_editing(void **state)
{
    (void)state;
    tl_kbdraft_input_t input = {.id = "ticket-3",
                                .ticket = "T-3",
                                .title = "slow",
                                .category = "other",
                                .resolution = "rebooted"};
    tl_kbdraft_t draft;
    TL_ASSERT_OK(tl_kbdraft_build(&input, &draft));
    assert_non_null(draft.needs_editing);
    assert_non_null(strstr(draft.needs_editing, "no diagnostics"));
    tl_article_t *article = NULL;
    char why[512];
    assert_int_equal(tl_article_parse("d.md", draft.source, draft.len, &article, why, sizeof why),
                     TL_EINVAL);
    assert_non_null(strstr(why, "no when"));
    /* Once the conditions are written in, it parses: nothing else was missing. */
    char *edited = malloc(draft.len + 64);
    const char *after_category = strstr(draft.source, "category: other\n") + 16;
    size_t head = (size_t)(after_category - draft.source);
    memcpy(edited, draft.source, head);
    strcpy(edited + head, "when: memory.used_percent > 90\n");
    strcat(edited, after_category);
    TL_ASSERT_OK(tl_article_parse("d.md", edited, strlen(edited), &article, why, sizeof why));
    tl_article_free(article);
    free(edited);
    tl_kbdraft_clear(&draft);
}

static void test_every_rule_condition_parses(void **state)
{
    (void)state;
    static const char *const rules[] = {
        "disk-full",      "inodes-full",      "read-only-system", "no-default-route", "no-dns",
        "service-failed", "memory-exhausted", "clock-unsynced",   "cpu-hog",          "io-wait"};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const char *form = tl_kbdraft_rule_condition(rules[i]);
        assert_non_null(form);
        char text[1024];
        const char *at = strstr(form, "%s");
        if (at != NULL)
            snprintf(text, sizeof text, "%.*s\"x\"%s", (int)(at - form), form, at + 2);
        else
            snprintf(text, sizeof text, "%s", form);
        tl_cond_t *cond = NULL;
        char why[256] = "";
        if (tl_cond_parse(text, strlen(text), &cond, why, sizeof why) != 0)
            fail_msg("%s: %s: %s", rules[i], text, why);
        tl_cond_free(cond);
    }
    assert_null(tl_kbdraft_rule_condition("words-login-blocked"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft_parses_with_the_condition_that_fired_and_the_fix_that_worked),
        cmocka_unit_test(test_independent_problems_primary_is_when_others_also_seen),
        cmocka_unit_test(test_hostile_text_cannot_reach_the_header_or_become_markdown),
        cmocka_unit_test(test_without_diagnostics_the_draft_says_it_needs_editing),
        cmocka_unit_test(test_every_rule_condition_parses),
    };
    return tl_test_run("kbdraft", tests, sizeof tests / sizeof tests[0], argc, argv);
}
