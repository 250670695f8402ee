/*
 * Knowledge-base articles (proto/article.h): a whole article and what each header line gives,
 * and articles refused with the file, the line and the reason.
 */
#include "tl_test.h"

#include "proto/article.h"
#include "proto/vocab.h"

#include <stdlib.h>
#include <string.h>

#define GOOD                                                                                       \
    "---\n"                                                                                        \
    "id: var-nearly-full\n"                                                                        \
    "title: /var is nearly full\n"                                                                 \
    "category: disk\n"                                                                             \
    "when: any disks.mounts where (mount == \"/var\"\n"                                            \
    "        and used_percent > 90)\n"                                                             \
    "runbook: clean-journal\n"                                                                     \
    "param: KEEP=200M\n"                                                                           \
    "param: NOTE=keeps the last week\n"                                                            \
    "words: full, space, logs\n"                                                                   \
    "---\n"                                                                                        \
    "# /var is nearly full\n"                                                                      \
    "\n"                                                                                           \
    "Logs and caches live under /var.\n"

static tl_article_t *parse(const char *text)
{
    tl_article_t *a = NULL;
    char why[400] = "";
    int rc = tl_article_parse("var.md", text, strlen(text), &a, why, sizeof why);
    if (rc != 0)
        fail_msg("does not parse: %s", why);
    return a;
}

static void test_an_article_gives_every_field(void **state)
{
    (void)state;
    tl_article_t *a = parse(GOOD);
    assert_string_equal(a->id, "var-nearly-full");
    assert_string_equal(a->title, "/var is nearly full");
    assert_string_equal(tl_category_name(a->category), "disk");
    /* a continued line joins its value with one space */
    assert_string_equal(a->when_text,
                        "any disks.mounts where (mount == \"/var\" and used_percent > 90)");
    assert_string_equal(a->recheck_text, a->when_text);
    assert_non_null(a->when);
    assert_non_null(a->recheck);
    assert_string_equal(a->runbook, "clean-journal");
    assert_int_equal(a->param_count, 2);
    assert_string_equal(a->params[0], "KEEP=200M");
    assert_string_equal(a->params[1], "NOTE=keeps the last week");
    assert_int_equal(a->word_count, 3);
    assert_string_equal(a->words[2], "logs");
    assert_string_equal(a->body, "# /var is nearly full\n\nLogs and caches live under /var.\n");
    /* The condition works on a report. */
    json_t *report = json_loads("{\"sections\": {\"disks\": {\"mounts\": [{\"mount\": \"/var\", "
                                "\"used_percent\": 95}]}}}",
                                0, NULL);
    assert_int_equal(tl_cond_eval(a->when, report, NULL, 0), TL_COND_TRUE);
    json_decref(report);
    tl_article_free(a);

    /* CRLF line ends, a re-check of its own, no runbook, no words. */
    a = parse("---\r\nid: ntp-off\r\ntitle: The clock is not synchronised\r\ncategory: other\r\n"
              "when: time.synchronised == false\r\nrecheck: time.synchronised != true\r\n"
              "---\r\nTurn on NTP.\r\n");
    assert_string_equal(a->recheck_text, "time.synchronised != true");
    assert_string_equal(a->runbook, "");
    assert_int_equal(a->word_count, 0);
    tl_article_free(a);
}

static void test_bad_articles_name_file_line_and_reason(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"id: x\n", "var.md:1: an article starts with a header: a line '---'"},
        {"---\nid: x\n", "var.md:2: the header does not end (a line '---' is missing)"},
        {"---\nid: x\ncolour: red\n---\nx\n",
         "var.md:3: unknown key 'colour' (keys: id, title, category, when, recheck, runbook, "
         "param, words)"},
        {"---\nid: x\nno colon here\n---\nx\n", "var.md:3: 'no colon here' is not 'key: value'"},
        {"---\nid: x\ntitle: a\nid: y\n---\nx\n", "var.md:4: id is given twice (also on line 2)"},
        {"---\nid: X-1\n---\nx\n", "var.md:2: id: 'X-1' is not a name"},
        {"---\nid: x\ntitle:\n---\nx\n", "var.md:3: title: no value"},
        {"---\nid: x\ncategory: printers\n---\nx\n",
         "var.md:3: category: 'printers' is not one of account, network, printing, disk, "
         "performance, application, hardware, security, other"},
        {"---\nid: x\ntitle: t\ncategory: disk\n\nwhen: disks.mount == 1\n---\nx\n",
         "var.md:6: when: column 1: disks.mount is not a field of the report (did you mean "
         "disks.mounts?)"},
        {"---\nid: x\ntitle: t\ncategory: disk\nwhen: exists cpu.model\nrecheck: cpu.model > 1\n"
         "---\nx\n",
         "var.md:6: recheck: column 11: the two sides are of different kinds"},
        {"---\nid: x\ntitle: t\ncategory: disk\nwhen: exists cpu.model\nparam: A=1\n---\nx\n",
         "var.md:6: param: there is no runbook to take it"},
        {"---\nid: x\nparam: lower=1\n---\nx\n", "var.md:3: param: 'lower=1' is not NAME=VALUE"},
        {"---\nid: x\nparam: A=1\nparam: A=2\n---\nx\n", "var.md:4: param: A is given twice"},
        {"---\nid: x\nwords: ok, Not OK\n---\nx\n", "var.md:3: words: 'Not OK' is not a word"},
        {"---\nid: x\nwords: a, b, a\n---\nx\n", "var.md:3: words: 'a' is given twice"},
        {"---\nid: x\ntitle: t\ncategory: disk\n---\nx\n", "var.md: the header has no when"},
        {"---\nid: x\ntitle: t\ncategory: disk\nwhen: exists cpu.model\n---\n \n\t\n",
         "var.md:7: the article has no text after its header"},
        {"---\nid: x\n---\nline\nbell \a here\n", "var.md:5: a control character (0x07)"},
        {"---\nid: x\ntitle: caf\xe9\n---\nx\n", "var.md: not UTF-8 text"},
        {"---\n  id: x\n---\nx\n", "var.md:2: a continued line with no key before it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_article_t *a = (tl_article_t *)1;
        char why[400] = "";
        TL_ASSERT_RC(TL_EINVAL, tl_article_parse("var.md", cases[i].text, strlen(cases[i].text), &a,
                                                 why, sizeof why));
        assert_null(a);
        if (strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].why);
    }
    /* A file name with an escape in it is shown escaped. */
    tl_article_t *a = NULL;
    char why[400];
    TL_ASSERT_RC(TL_EINVAL, tl_article_parse("e\x1b[2J.md", "x", 1, &a, why, sizeof why));
    assert_non_null(strstr(why, "e\\x1b[2J.md:1:"));
    /* Too long. */
    size_t big = TL_ARTICLE_TEXT_MAX + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, 'x', big);
    TL_ASSERT_RC(TL_EINVAL, tl_article_parse("big.md", text, big, &a, why, sizeof why));
    assert_string_equal(why, "big.md: longer than 65536 bytes");
    free(text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_article_gives_every_field),
        cmocka_unit_test(test_bad_articles_name_file_line_and_reason),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
