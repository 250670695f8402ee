/*
 * The knowledge base on the agent (agent/kb.h, docs/diagnostics.md §7): reading a directory of
 * articles where some are bad, and the "problems found" summary `tierline-agent diag` puts at
 * the top of its report, in JSON and in text, with the machine's values escaped.
 */
#include "tl_test.h"

#include "agent/diag.h"
#include "agent/kb.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char kb_dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(kb_dir, sizeof kb_dir, "/tmp/tl-kb-XXXXXX");
    assert_non_null(mkdtemp(kb_dir));
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_dir(void **state)
{
    (void)state;
    nftw(kb_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void write_article(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", kb_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* An article with this id, title and condition. */
static void add_article(const char *file, const char *id, const char *title, const char *when)
{
    char text[1024];
    snprintf(text, sizeof text,
             "---\nid: %s\ntitle: %s\ncategory: performance\nwhen: %s\n---\nWhat to do.\n", id,
             title, when);
    write_article(file, text);
}

/* A report as `diag --json` prints it, with the sections given as JSON text. */
static json_t *report_with(const char *sections_json)
{
    char text[4096];
    snprintf(text, sizeof text,
             "{\"schema\":1,\"collected_at\":\"2026-12-01T09:00:00Z\",\"host\":\"box\","
             "\"sections\":%s}",
             sections_json);
    json_error_t error;
    json_t *report = json_loads(text, 0, &error);
    if (!report)
        fail_msg("bad test report: %s", error.text);
    return report;
}

static char *dump(const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_REAL_PRECISION(10));
    assert_non_null(text);
    return text;
}

static char *text_report(const json_t *report)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    TL_ASSERT_OK(tl_diag_write_text(report, out));
    fclose(out);
    return text;
}

static const char sections[] = "{\"memory\":{\"used_percent\":95.5,\"total_bytes\":1000},"
                               "\"disks\":{\"mounts\":[{\"mount\":\"/\",\"used_percent\":40.0}]},"
                               "\"logs\":{\"error\":\"timed out after 6000 ms\"}}";

static void test_articles_of_a_directory_are_read_and_bad_ones_skipped(void **state)
{
    (void)state;
    add_article("a-memory.md", "memory-high", "Memory is nearly full", "memory.used_percent > 90");
    add_article("b-copy.md", "memory-high", "The same id again", "memory.used_percent > 10");
    write_article("c-bad.md", "---\nid: bad\ncolour: blue\n---\nx\n");
    char *big = malloc(70 * 1024);
    assert_non_null(big);
    memset(big, 'x', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    write_article("d-big.md", big);
    free(big);
    write_article("notes.txt", "not an article");
    write_article(".hidden.md", "not read either");
    char path[256], target[256];
    snprintf(path, sizeof path, "%s/e-link.md", kb_dir);
    snprintf(target, sizeof target, "%s/a-memory.md", kb_dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/f-dir.md", kb_dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/g-fifo.md", kb_dir);
    assert_int_equal(mkfifo(path, 0644), 0);

    int err = 0;
    tl_kb_t *kb = tl_kb_load(kb_dir, &err);
    TL_ASSERT_OK(err);
    size_t count;
    const tl_article_t *const *articles = tl_kb_articles(kb, &count);
    assert_int_equal(count, 1);
    assert_string_equal(articles[0]->id, "memory-high");
    static const char *const expected[][2] = {
        {"b-copy.md", "b-copy.md: id memory-high is also the id of a-memory.md"},
        {"c-bad.md", "c-bad.md:3: unknown key 'colour'"},
        {"d-big.md", "d-big.md: longer than 65536 bytes"},
        {"e-link.md", "e-link.md: cannot read it: "},
        {"f-dir.md", "f-dir.md: not a regular file"},
        {"g-fifo.md", "g-fifo.md: not a regular file"},
    };
    const char *file, *reason;
    size_t skipped = 0;
    for (; (reason = tl_kb_skipped(kb, skipped, &file)) != NULL; skipped++) {
        assert_true(skipped < sizeof expected / sizeof expected[0]);
        assert_string_equal(file, expected[skipped][0]);
        if (strncmp(reason, expected[skipped][1], strlen(expected[skipped][1])) != 0)
            fail_msg("%s: expected a reason starting \"%s\", got \"%s\"", file,
                     expected[skipped][1], reason);
    }
    assert_int_equal(skipped, sizeof expected / sizeof expected[0]);
    tl_kb_free(kb);

    /* A directory that cannot be read is the caller's to report. */
    kb = tl_kb_load("/nonexistent/tierline/kb", &err);
    assert_null(kb);
    TL_ASSERT_RC(-ENOENT, err);
}

static void test_problems_are_the_articles_that_hold(void **state)
{
    (void)state;
    add_article("memory.md", "memory-high", "Memory is nearly full", "memory.used_percent > 90");
    add_article("disk.md", "disk-full", "The disk is full",
                "any disks.mounts where used_percent > 90");
    /* Unknown where the logs section failed: not a problem found. */
    add_article("logs.md", "many-logs", "Many log lines", "logs.line_count > 3");
    write_article("broken.md", "no header at all\n");
    json_t *report = report_with(sections);
    TL_ASSERT_OK(tl_kb_add_problems(report, kb_dir));
    char *problems = dump(json_object_get(report, "problems"));
    assert_string_equal(problems, "[{\"id\":\"memory-high\",\"title\":\"Memory is nearly full\","
                                  "\"category\":\"performance\",\"evidence\":"
                                  "\"memory.used_percent = 95.50\"}]");
    free(problems);
    json_t *kb = json_object_get(report, "knowledge_base");
    assert_string_equal(json_string_value(json_object_get(kb, "directory")), kb_dir);
    assert_int_equal(json_integer_value(json_object_get(kb, "articles")), 3);
    json_t *skipped = json_object_get(kb, "skipped");
    assert_int_equal(json_array_size(skipped), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(skipped, 0), "file")),
                        "broken.md");
    /* The summary comes before the sections, which are unchanged. */
    const char *order[4];
    size_t n = 0;
    const char *key;
    json_t *member;
    json_object_foreach(report, key, member) {
        if (n < 4 && (strcmp(key, "problems") == 0 || strcmp(key, "knowledge_base") == 0 ||
                      strcmp(key, "sections") == 0 || strcmp(key, "host") == 0))
            order[n++] = key;
    }
    assert_int_equal(n, 4);
    assert_string_equal(order[1], "problems");
    assert_string_equal(order[2], "knowledge_base");
    assert_string_equal(order[3], "sections");
    json_t *expected = report_with(sections);
    assert_true(
        json_equal(json_object_get(report, "sections"), json_object_get(expected, "sections")));
    json_decref(expected);

    char *text = text_report(report);
    const char *summary = strstr(text, "Problems found: 1 (3 articles checked)\n"
                                       "  1. Memory is nearly full [memory-high]\n"
                                       "     evidence: memory.used_percent = 95.50\n"
                                       "Skipped knowledge-base articles: 1\n"
                                       "  - broken.md:");
    const char *first_section = strstr(text, "\n== ");
    if (!summary || !first_section || summary > first_section)
        fail_msg("the summary is not at the top:\n%s", text);
    free(text);
    json_decref(report);
}

static void test_no_problems_and_no_knowledge_base_are_said(void **state)
{
    (void)state;
    add_article("memory.md", "memory-high", "Memory is nearly full", "memory.used_percent > 99");
    json_t *report = report_with(sections);
    TL_ASSERT_OK(tl_kb_add_problems(report, kb_dir));
    assert_int_equal(json_array_size(json_object_get(report, "problems")), 0);
    char *text = text_report(report);
    if (!strstr(text, "\nNo known problems found (1 article checked).\n"))
        fail_msg("no 'No known problems found' line:\n%s", text);
    free(text);
    json_decref(report);

    /* A knowledge base that cannot be read does not stop the report. */
    report = report_with(sections);
    TL_ASSERT_OK(tl_kb_add_problems(report, "/nonexistent/tierline/kb"));
    assert_int_equal(json_array_size(json_object_get(report, "problems")), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(report, "knowledge_base"), "error")),
        "cannot read the knowledge base: no such file or directory");
    text = text_report(report);
    if (!strstr(text, "\nKnown problems were not checked: cannot read the knowledge base: no such "
                      "file or directory\n"))
        fail_msg("no 'not checked' line:\n%s", text);
    free(text);
    json_decref(report);
    json_t *not_a_report = json_array();
    TL_ASSERT_RC(TL_EINVAL, tl_kb_add_problems(not_a_report, kb_dir));
    json_decref(not_a_report);
}

static void test_evidence_from_the_machine_is_escaped(void **state)
{
    (void)state;
    add_article("host.md", "odd-host", "The host name is odd",
                "system.hostname startswith \"box\"");
    /* A value with a terminal escape in it, as another party could have put there. */
    json_t *report = report_with("{\"system\":{\"hostname\":\"box\\u001b]0;pwned\\u0007\"}}");
    TL_ASSERT_OK(tl_kb_add_problems(report, kb_dir));
    const char *evidence = json_string_value(
        json_object_get(json_array_get(json_object_get(report, "problems"), 0), "evidence"));
    assert_string_equal(evidence, "system.hostname = \"box\\x1b]0;pwned\\x07\"");
    char *text = text_report(report);
    assert_null(strchr(text, '\x1b'));
    assert_null(strchr(text, '\x07'));
    if (!strstr(text, "evidence: system.hostname = \"box\\x1b]0;pwned\\x07\""))
        fail_msg("the evidence is not shown escaped:\n%s", text);
    free(text);
    json_decref(report);
}

static void test_default_knowledge_base_is_the_shipped_one(void **state)
{
    (void)state;
    char dir[4096];
    TL_ASSERT_OK(tl_kb_default_dir(dir, sizeof dir));
    /* The build's copy holds every article of kb/, and each reads. */
    size_t shipped = 0;
    DIR *source = opendir(TL_SOURCE_DIR "/kb");
    assert_non_null(source);
    struct dirent *entry;
    while ((entry = readdir(source)) != NULL) {
        size_t len = strlen(entry->d_name);
        shipped += len > 3 && strcmp(entry->d_name + len - 3, ".md") == 0;
    }
    closedir(source);
    int err = 0;
    tl_kb_t *kb = tl_kb_load(dir, &err);
    TL_ASSERT_OK(err);
    size_t count;
    tl_kb_articles(kb, &count);
    const char *file = NULL;
    const char *reason = tl_kb_skipped(kb, 0, &file);
    if (reason)
        fail_msg("%s skipped: %s", file, reason);
    assert_int_equal(count, shipped);
    tl_kb_free(kb);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_articles_of_a_directory_are_read_and_bad_ones_skipped,
                                    make_dir, remove_dir),
    cmocka_unit_test_setup_teardown(test_problems_are_the_articles_that_hold, make_dir, remove_dir),
    cmocka_unit_test_setup_teardown(test_no_problems_and_no_knowledge_base_are_said, make_dir,
                                    remove_dir),
    cmocka_unit_test_setup_teardown(test_evidence_from_the_machine_is_escaped, make_dir,
                                    remove_dir),
    cmocka_unit_test(test_default_knowledge_base_is_the_shipped_one),
};

TL_TEST_MAIN(tests)
