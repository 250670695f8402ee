/*
 * The articles shipped in kb/ (docs/kb.md "Shipped articles"): each parses, is named as its
 * file, suggests a runbook the shipped catalogue has with parameters that pass its rules, and
 * has a fixture in tests/fixtures/kb/ (ID.json) with two reports: "problem", on which the
 * article applies and its re-check still fails, and "fixed", on which neither holds (false,
 * not unknown).
 */
#include "tl_test.h"

#include "proto/runbooks.h"
#include "proto/article.h"
#include "proto/kbmatch.h"
#include "proto/vocab.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB_DIR TL_SOURCE_DIR "/kb"
#define FIXTURES TL_SOURCE_DIR "/tests/fixtures/kb"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *text = malloc(TL_ARTICLE_TEXT_MAX + 2);
    assert_non_null(text);
    *len = fread(text, 1, TL_ARTICLE_TEXT_MAX + 1, f);
    fclose(f);
    text[*len] = '\0';
    return text;
}

static void check_runbook(const tl_runbooks_t *catalogue, const tl_article_t *a)
{
    if (a->runbook[0] == '\0')
        return;
    json_t *args = json_object();
    for (size_t i = 0; i < a->param_count; i++) {
        const char *eq = strchr(a->params[i], '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(eq - a->params[i]), a->params[i]);
        json_object_set_new(args, name, json_string(eq + 1));
    }
    tl_runbook_run_t run;
    char message[300] = "";
    int rc = tl_runbooks_check(catalogue, a->runbook, args, "tier3", true, &run, message,
                               sizeof message);
    json_decref(args);
    if (rc != 0)
        fail_msg("%s: runbook %s: %s", a->id, a->runbook, message);
    tl_runbooks_run_release(&run);
}

static void check_fixture(const tl_article_t *a)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", FIXTURES, a->id);
    json_error_t error;
    json_t *fixture = json_load_file(path, 0, &error);
    if (fixture == NULL)
        fail_msg("%s: no fixture %s: %s", a->id, path, error.text);
    char evidence[512];
    const json_t *problem = json_object_get(fixture, "problem");
    const json_t *fixed = json_object_get(fixture, "fixed");
    if (tl_cond_eval(a->when, problem, evidence, sizeof evidence) != TL_COND_TRUE)
        fail_msg("%s: does not apply to its problem report", a->id);
    if (evidence[0] == '\0')
        fail_msg("%s: applies without evidence", a->id);
    print_message("%s: %s\n", a->id, evidence);
    if (tl_cond_eval(a->recheck, problem, NULL, 0) != TL_COND_TRUE)
        fail_msg("%s: its re-check passes on the problem report", a->id);
    if (tl_cond_eval(a->when, fixed, NULL, 0) != TL_COND_FALSE)
        fail_msg("%s: is not false on the fixed report", a->id);
    if (tl_cond_eval(a->recheck, fixed, NULL, 0) != TL_COND_FALSE)
        fail_msg("%s: its re-check is not false on the fixed report", a->id);
    json_decref(fixture);
}

static void test_every_shipped_article_matches_its_problem_and_not_its_fix(void **state)
{
    (void)state;
    char dir[1024];
    int err = 0;
    TL_ASSERT_OK(tl_runbooks_default_dir(dir, sizeof dir));
    tl_runbooks_t *catalogue = tl_runbooks_load(dir, &err);
    assert_non_null(catalogue);
    DIR *d = opendir(KB_DIR);
    assert_non_null(d);
    char ids[64][TL_ARTICLE_ID_MAX + 1];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".md") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", KB_DIR, e->d_name);
        size_t len;
        char *text = slurp(path, &len);
        tl_article_t *a = NULL;
        char why[400];
        if (tl_article_parse(e->d_name, text, len, &a, why, sizeof why) != 0)
            fail_msg("%s", why);
        free(text);
        if (strncmp(e->d_name, a->id, n - 3) != 0 || strlen(a->id) != n - 3)
            fail_msg("%s: its id is %s", e->d_name, a->id);
        for (size_t i = 0; i < count; i++)
            assert_string_not_equal(ids[i], a->id);
        assert_true(count < 64);
        snprintf(ids[count++], sizeof ids[0], "%s", a->id);
        check_runbook(catalogue, a);
        check_fixture(a);
        tl_article_free(a);
    }
    closedir(d);
    tl_runbooks_free(catalogue);
    assert_true(count >= 12);
}

/* Every article in kb/, parsed; *count of them. */
static tl_article_t **load_articles(size_t *count)
{
    tl_article_t **list = calloc(64, sizeof *list);
    assert_non_null(list);
    *count = 0;
    DIR *d = opendir(KB_DIR);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && *count < 64) {
        size_t n = strlen(e->d_name), len;
        if (n < 4 || strcmp(e->d_name + n - 3, ".md") != 0)
            continue;
        char path[1024], why[400];
        snprintf(path, sizeof path, "%s/%s", KB_DIR, e->d_name);
        char *text = slurp(path, &len);
        TL_ASSERT_OK(tl_article_parse(e->d_name, text, len, &list[*count], why, sizeof why));
        (*count)++;
        free(text);
    }
    closedir(d);
    return list;
}

static void free_articles(tl_article_t **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        tl_article_free(list[i]);
    free(list);
}

/* The labelled cases of tests/fixtures/kb/match_cases.json: the expected article among the
 * first three for at least 17 of the 20 (docs/kb.md "Matching"). */
static void test_the_right_article_is_in_the_first_three(void **state)
{
    (void)state;
    size_t count;
    tl_article_t **articles = load_articles(&count);
    json_error_t error;
    json_t *fixture = json_load_file(FIXTURES "/match_cases.json", 0, &error);
    if (fixture == NULL)
        fail_msg("match_cases.json: %s", error.text);
    const json_t *cases = json_object_get(fixture, "cases");
    assert_int_equal(json_array_size(cases), 20);
    size_t hits = 0, i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const char *expected = json_string_value(json_object_get(c, "expected"));
        const json_t *report = json_object_get(c, "report");
        tl_kb_match_t top[3];
        size_t found = 0;
        TL_ASSERT_OK(tl_kb_rank(
            (const tl_article_t *const *)articles, count, json_is_null(report) ? NULL : report,
            json_string_value(json_object_get(c, "description")), top, 3, &found));
        int hit = 0;
        char ranked[200] = "";
        for (size_t k = 0; k < found; k++) {
            hit |= strcmp(top[k].article->id, expected) == 0;
            snprintf(ranked + strlen(ranked), sizeof ranked - strlen(ranked), " %s(%d)",
                     top[k].article->id, top[k].score);
        }
        print_message("%s %s: expected %s, ranked%s\n", hit ? "hit " : "MISS",
                      json_string_value(json_object_get(c, "id")), expected, ranked);
        hits += hit;
    }
    print_message("%zu of 20 in the first three\n", hits);
    assert_true(hits >= 17);
    json_decref(fixture);
    free_articles(articles, count);
}

/* The rules of the ranking, on two articles of the kb. */
static void test_ranking_rules(void **state)
{
    (void)state;
    size_t count;
    tl_article_t **articles = load_articles(&count);
    json_t *report = json_loads(
        "{\"sections\": {\"services\": {\"failed_units\": [{\"unit\": \"cups.service\"}]}, "
        "\"time\": {\"synchronised\": true}, \"disks\": {\"mounts\": []}}}",
        0, NULL);
    assert_non_null(report);
    tl_kb_match_t m[64];
    size_t found = 0;
    /* What holds comes first, whatever the words say; a false condition is never offered,
     * however well the words fit ("clock", "time" for the synchronised clock). */
    TL_ASSERT_OK(tl_kb_rank((const tl_article_t *const *)articles, count, report,
                            "the clock shows the wrong time", m, 64, &found));
    assert_true(found >= 1);
    assert_string_equal(m[0].article->id, "printing-service-failed");
    assert_int_equal(m[0].applies, TL_COND_TRUE);
    assert_non_null(strstr(m[0].evidence, "cups.service"));
    for (size_t k = 0; k < found; k++) {
        assert_string_not_equal(m[k].article->id, "clock-not-synchronised");
        assert_true(m[k].applies != TL_COND_FALSE);
        if (m[k].applies == TL_COND_UNKNOWN)
            assert_true(m[k].words_matched > 0);
    }
    /* Without a report, words alone rank; a word is matched whole or as the start of a longer
     * one of four letters or more: "log" is not in "login", "print" is in "printing". */
    TL_ASSERT_OK(tl_kb_rank((const tl_article_t *const *)articles, count, NULL,
                            "LOGIN fails; PRINTING too", m, 64, &found));
    assert_true(found >= 1);
    /* Each match is a printing article: "printing" found each one's "print". */
    for (size_t k = 0; k < found; k++) {
        assert_string_not_equal(m[k].article->id, "var-log-full");
        assert_string_equal(tl_category_name(m[k].article->category), "printing");
    }
    /* Nothing said and nothing holding: nothing offered; max bounds what is written. */
    TL_ASSERT_OK(tl_kb_rank((const tl_article_t *const *)articles, count, NULL, "", m, 64, &found));
    assert_int_equal(found, 0);
    TL_ASSERT_OK(tl_kb_rank((const tl_article_t *const *)articles, count, NULL,
                            "internet network offline", m, 2, &found));
    assert_int_equal(found, 2);
    json_decref(report);
    free_articles(articles, count);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_shipped_article_matches_its_problem_and_not_its_fix),
        cmocka_unit_test(test_the_right_article_is_in_the_first_three),
        cmocka_unit_test(test_ranking_rules),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
