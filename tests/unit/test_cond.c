/*
 * Conditions over a diagnostics report (proto/cond.h): what each form means on real-shaped
 * reports, the three-valued outcome when a probe failed, the evidence a true condition
 * gives, and conditions refused with the column and reason.
 */
#include "tl_test.h"

#include "proto/cond.h"

#include <stdlib.h>
#include <string.h>

/* A report as `tierline-agent diag --json` writes it, with the sections a case needs. */
#define REPORT(sections) "{\"schema\": 1, \"host\": \"pc\", \"sections\": {" sections "}}"

#define DISKS(var_percent)                                                                         \
    "\"disks\": {\"mounts\": ["                                                                    \
    "{\"mount\": \"/\", \"fstype\": \"ext4\", \"used_percent\": 41.5, \"read_only\": false},"      \
    "{\"mount\": \"/var\", \"fstype\": \"ext4\", \"used_percent\": " var_percent                   \
    ", \"read_only\": false}], \"skipped_pseudo\": 12, \"truncated\": false}"

#define MEMORY "\"memory\": {\"available_bytes\": 104857600, \"swap_used_percent\": 80.5}"

#define ROUTES                                                                                     \
    "\"network\": {\"default_routes\": [], \"dns\": {\"nameservers\": "                            \
    "[\"127.0.0.53\"]}}"

#define LOGS                                                                                       \
    "\"logs\": {\"source\": \"journalctl\", \"lines\": [\"boot ok\", "                             \
    "\"kernel: Out of memory: Killed process 4242 (firefox)\"]}"

static json_t *report(const char *text)
{
    json_error_t error;
    json_t *r = json_loads(text, 0, &error);
    if (r == NULL)
        fail_msg("fixture does not parse: %s", error.text);
    return r;
}

static tl_cond_t *parse(const char *text)
{
    tl_cond_t *c = NULL;
    char why[300] = "";
    int rc = tl_cond_parse(text, strlen(text), &c, why, sizeof why);
    if (rc != 0)
        fail_msg("'%s' does not parse: %s", text, why);
    return c;
}

/* The outcome of condition on the report text, and its evidence in evidence. */
static tl_cond_result_t check(const char *condition, const char *report_text, char *evidence,
                              size_t size)
{
    tl_cond_t *c = parse(condition);
    json_t *r = report(report_text);
    tl_cond_result_t result = tl_cond_eval(c, r, evidence, size);
    json_decref(r);
    tl_cond_free(c);
    return result;
}

static void test_a_full_mount_is_found_with_its_evidence(void **state)
{
    (void)state;
    char evidence[400];
    const char *cond = "any disks.mounts where (mount == \"/var\" and used_percent > 90)";
    assert_int_equal(check(cond, REPORT(DISKS("97.31")), evidence, sizeof evidence), TL_COND_TRUE);
    assert_string_equal(evidence, "disks.mounts[/var].mount = \"/var\"; "
                                  "disks.mounts[/var].used_percent = 97.31");
    assert_int_equal(check(cond, REPORT(DISKS("50.00")), evidence, sizeof evidence), TL_COND_FALSE);
    assert_string_equal(evidence, "");
    /* all and none, and the number of rows they looked at */
    assert_int_equal(check("all disks.mounts where read_only == false", REPORT(DISKS("50.00")),
                           evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence, "all of the 2 in disks.mounts");
    assert_int_equal(check("none disks.mounts where used_percent >= 90", REPORT(DISKS("97.31")),
                           evidence, sizeof evidence),
                     TL_COND_FALSE);
}

static void test_numbers_take_units_and_counts(void **state)
{
    (void)state;
    char evidence[400];
    assert_int_equal(check("memory.available_bytes < 200MiB and memory.swap_used_percent > 50%",
                           REPORT(MEMORY), evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence, "memory.available_bytes = 104857600; "
                                  "memory.swap_used_percent = 80.50");
    assert_int_equal(
        check("memory.available_bytes < 0.05GiB", REPORT(MEMORY), evidence, sizeof evidence),
        TL_COND_FALSE);
    assert_int_equal(
        check("count(network.default_routes) == 0", REPORT(ROUTES), evidence, sizeof evidence),
        TL_COND_TRUE);
    assert_string_equal(evidence, "count(network.default_routes) = 0");
    assert_int_equal(check("network.dns.nameservers contains \"127.0.0.53\"", REPORT(ROUTES),
                           evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_int_equal(check("network.dns.nameservers contains \"127.0.0\"", REPORT(ROUTES), evidence,
                           sizeof evidence),
                     TL_COND_FALSE);
}

static void test_lists_of_strings_are_read_with_value(void **state)
{
    (void)state;
    char evidence[400];
    assert_int_equal(check("any logs.lines where value contains \"Out of memory\"", REPORT(LOGS),
                           evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence,
                        "logs.lines[1] = \"kernel: Out of memory: Killed process 4242 (firefox)\"");
    assert_int_equal(check("any network.interfaces where (up == true and any addresses where "
                           "value startswith \"169.254.\")",
                           REPORT("\"network\": {\"interfaces\": [{\"name\": \"eth0\", \"up\": "
                                  "true, \"addresses\": [\"169.254.3.4/16\"]}]}"),
                           evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence, "network.interfaces[eth0].up = true; "
                                  "network.interfaces[eth0].addresses[0] = \"169.254.3.4/16\"");
}

static void test_a_failed_probe_makes_it_unknown_never_true(void **state)
{
    (void)state;
    char evidence[400];
    const char *failed = REPORT("\"time\": {\"error\": \"timed out after 5000 ms\"}, "
                                "\"network\": {\"error\": \"timed out\"}");
    const char *unknown[] = {
        "time.synchronised == false",
        "not (time.synchronised == true)",
        "count(network.default_routes) == 0",
        "any network.default_routes where metric > 0",
        "none network.default_routes where metric > 0",
        "time.synchronised == false or count(network.default_routes) == 0",
        "time.synchronised == true and time.synchronised == true",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        tl_cond_result_t r = check(unknown[i], failed, evidence, sizeof evidence);
        if (r != TL_COND_UNKNOWN)
            fail_msg("'%s' gave %d, not unknown", unknown[i], r);
        assert_string_equal(evidence, "");
    }
    /* Kleene: a known false decides an and, a known true an or. */
    const char *mixed =
        REPORT("\"time\": {\"error\": \"x\"}, \"memory\": {\"used_percent\": 20.0}");
    assert_int_equal(check("time.synchronised == false and memory.used_percent > 90", mixed,
                           evidence, sizeof evidence),
                     TL_COND_FALSE);
    assert_int_equal(check("time.synchronised == false or memory.used_percent < 90", mixed,
                           evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence, "memory.used_percent = 20.00");
    /* exists and missing are always known; a report that is not one has no fields. */
    assert_int_equal(check("missing time.synchronised", failed, evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence, "time.synchronised is missing");
    assert_int_equal(check("exists time.synchronised", failed, evidence, sizeof evidence),
                     TL_COND_FALSE);
    tl_cond_t *c = parse("memory.used_percent > 1");
    json_t *not_a_report = json_string("x");
    assert_int_equal(tl_cond_eval(c, not_a_report, NULL, 0), TL_COND_UNKNOWN);
    assert_int_equal(tl_cond_eval(c, NULL, NULL, 0), TL_COND_UNKNOWN);
    json_decref(not_a_report);
    tl_cond_free(c);
}

static void test_evidence_is_escaped_and_bounded(void **state)
{
    (void)state;
    char evidence[400], small[24];
    const char *hostile = REPORT("\"services\": {\"failed_units\": [{\"unit\": "
                                 "\"evil\\u001b]0;x\\u0007.service\", \"active\": \"failed\"}]}");
    assert_int_equal(check("any services.failed_units where active == \"failed\"", hostile,
                           evidence, sizeof evidence),
                     TL_COND_TRUE);
    assert_string_equal(evidence,
                        "services.failed_units[evil\\x1b]0;x\\x07.service].active = \"failed\"");
    /* A buffer too small keeps whole notes or none, and the result stands. */
    assert_int_equal(
        check("any services.failed_units where active == \"failed\"", hostile, small, sizeof small),
        TL_COND_TRUE);
    assert_true(strlen(small) < sizeof small);
}

static void test_bad_conditions_name_the_column_and_the_problem(void **state)
{
    (void)state;
    char deep[200] = "", many[4096] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "not ");
    strcat(deep, "memory.used_percent > 1");
    for (int i = 0; i < 130; i++)
        strcat(many, i ? " or exists cpu.model" : "exists cpu.model");
    char long_text[TL_COND_TEXT_MAX + 2];
    memset(long_text, ' ', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"", "column 1: an empty condition"},
        {"disks.mount == 1", "column 1: disks.mount is not a field of the report (did you mean "
                             "disks.mounts?)"},
        {"memory.used_procent > 90", "did you mean memory.used_percent?"},
        {"printers.queue == 1", "column 1: printers.queue is not a field of the report"},
        {"any disks.mounts where mountpoint == \"/\"",
         "column 24: mountpoint is not a field of the rows of disks.mounts (did you mean mount?)"},
        {"memory.used_percent == \"high\"",
         "column 21: the two sides are of different kinds (memory.used_percent is a number)"},
        {"system.hostname > \"a\"", "only numbers are ordered"},
        {"disks.mounts == 1", "a list is compared with any, all, none, count() or contains"},
        {"memory.used_percent = 90", "column 21: '=' compares nothing: write '=='"},
        {"system.hostname == \"pc", "column 20: a string that does not end"},
        {"system.hostname == \"a\\nb\"", "only \\\" and \\\\ may follow a backslash"},
        {"memory.used_percent > 90 memory", "column 26: 'memory' where the condition should end"},
        {"(memory.used_percent > 90", "')' expected here"},
        {"memory.used_percent > 90MB", "column 25: a number followed by 'M'"},
        {"memory.used_percent > 9.0.1", "'9.0.1' is not a number"},
        {"value == \"x\"", "'value' names a string of a list"},
        {"any memory.used_percent where value == \"x\"",
         "memory.used_percent is a number, not a list"},
        {"count(memory.used_percent) > 1", "count() counts a list"},
        {"any disks.mounts mount == \"/\"", "'where' expected after the list"},
        {"memory.used_percent >", "a number, a \"string\", true or false expected here"},
        {"memory..used_percent > 1", "is not a field name"},
        {"Memory.used > 1", "column 1: 'M' is not part of the language"},
        {deep, "nested more than 16 deep"},
        /* a field name of 96 bytes inside a quantifier: the full path is longer than either */
        {"any disks.mounts where "
         "mnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
         "nnnount == \"/var\"",
         "column 24: "
         "mnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
         "nnnount is not a field of the rows of disks.mounts"},
        {"any disks.mounts where "
         "mnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
         "nnnnount == \"/var\"",
         "column 24: "
         "'mnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
         "nnnnnount' is not a field name"},
        {many, "more than 256 terms"},
        {long_text, "a condition longer than 4096 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_cond_t *c = (tl_cond_t *)1;
        char why[300] = "";
        TL_ASSERT_RC(TL_EINVAL,
                     tl_cond_parse(cases[i].text, strlen(cases[i].text), &c, why, sizeof why));
        assert_null(c);
        if (strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].why);
    }
    tl_cond_t *c = (tl_cond_t *)1;
    char why[100];
    TL_ASSERT_RC(TL_EINVAL, tl_cond_parse("cpu.online_cpus > 1\0 or x", 25, &c, why, sizeof why));
    assert_string_equal(why, "a NUL byte in the condition");
}

static void test_every_field_is_named_once_and_reachable(void **state)
{
    (void)state;
    size_t n = 0;
    for (; tl_cond_field(n) != NULL; n++) {
        for (size_t j = 0; j < n; j++)
            assert_string_not_equal(tl_cond_field(n), tl_cond_field(j));
        /* A field outside a list can be named in a condition of its own. */
        const char *f = tl_cond_field(n);
        if (strstr(f, "[]") == NULL) {
            char text[200];
            snprintf(text, sizeof text, "exists %s", f);
            tl_cond_free(parse(text));
        }
    }
    assert_true(n > 100);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_mount_is_found_with_its_evidence),
        cmocka_unit_test(test_numbers_take_units_and_counts),
        cmocka_unit_test(test_lists_of_strings_are_read_with_value),
        cmocka_unit_test(test_a_failed_probe_makes_it_unknown_never_true),
        cmocka_unit_test(test_evidence_is_escaped_and_bounded),
        cmocka_unit_test(test_bad_conditions_name_the_column_and_the_problem),
        cmocka_unit_test(test_every_field_is_named_once_and_reachable),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
