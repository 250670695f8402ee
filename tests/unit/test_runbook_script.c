/*
 * A runbook as one file with its metadata header (proto/runbook_script.h), as tier 3 proposes
 * it: a good script gives its name and NAME.json; each bad one is refused with the line and the
 * reason, from the same metadata rules the agent applies.
 */
#include "tl_test.h"

#include "proto/err.h"
#include "proto/runbook_script.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define GOOD_HEADER                                                                                \
    "#!/bin/sh\n"                                                                                  \
    "# tierline-runbook\n"                                                                         \
    "# {\"name\": \"say-hello\", \"description\": \"Print a greeting\",\n"                         \
    "#  \"min_role\": \"tier1\", \"privileged\": false, \"timeout\": \"30s\",\n"                   \
    "#  \"params\": [{\"name\": \"WHO\", \"pattern\": \"^[a-z]{1,8}$\",\n"                         \
    "#              \"description\": \"whom to greet\"}]}\n"                                       \
    "# end tierline-runbook\n"

/* The reason a script is refused with; fails the test when it is taken. */
static void refused(const char *text, size_t len, const char *want)
{
    tl_runbook_script_t script;
    char reason[1024];
    int rc = tl_runbook_script_parse(text, len, &script, reason, sizeof reason);
    if (rc != TL_EINVAL)
        fail_msg("expected TL_EINVAL with \"%s\", got %d (%s)", want, rc, reason);
    if (strstr(reason, want) == NULL)
        fail_msg("expected a reason with \"%s\", got \"%s\"", want, reason);
    assert_null(script.metadata);
}

static void test_a_good_script_gives_its_name_and_metadata(void **state)
{
    (void)state;
    const char *text = GOOD_HEADER "printf 'hello %s\\n' \"$TL_PARAM_WHO\"\n";
    tl_runbook_script_t script;
    char reason[512] = "";
    TL_ASSERT_OK(tl_runbook_script_parse(text, strlen(text), &script, reason, sizeof reason));
    assert_string_equal(script.name, "say-hello");
    json_t *doc = json_loadb(script.metadata, script.metadata_len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "description")), "Print a greeting");
    assert_int_equal(json_array_size(json_object_get(doc, "params")), 1);
    json_decref(doc);
    tl_runbook_script_clear(&script);
}

static void test_a_bad_header_is_refused_with_its_line(void **state)
{
    (void)state;
    const char *no_shebang = "# tierline-runbook\n# {}\n# end tierline-runbook\n";
    refused(no_shebang, strlen(no_shebang), "1: the script must start with #!");
    const char *no_header = "#!/bin/sh\necho hi\n";
    refused(no_header, strlen(no_header), "2: the metadata header must follow the #! line");
    const char *unclosed = "#!/bin/sh\n# tierline-runbook\n# {\"name\": \"x\"}\n";
    refused(unclosed, strlen(unclosed), "3: the metadata header has no end line");
    const char *code_inside = "#!/bin/sh\n# tierline-runbook\n# {\"name\":\n\"x\"}\n"
                              "# end tierline-runbook\n";
    refused(code_inside, strlen(code_inside), "4: a line of the metadata header must start with #");
    const char *bad_json = "#!/bin/sh\n# tierline-runbook\n# {\"name\": \"x\",\n# \"min_role\" "
                           "tier1}\n# end tierline-runbook\n";
    refused(bad_json, strlen(bad_json), "4: the metadata is not valid JSON");
    const char *no_name = "#!/bin/sh\n# tierline-runbook\n# {}\n# end tierline-runbook\n";
    refused(no_name, strlen(no_name), "3: the metadata has no 'name'");
    /* The agent's own rules: a misspelt member, a bad role, a pattern that is not anchored. */
    const char *misspelt = "#!/bin/sh\n# tierline-runbook\n# {\"name\": \"x\",\n"
                           "#  \"description\": \"d\", \"min_role\": \"tier1\",\n"
                           "#  \"privileged\": false,\n#  \"requried\": true}\n"
                           "# end tierline-runbook\n";
    refused(misspelt, strlen(misspelt), "6: unknown field 'requried'");
    const char *role = "#!/bin/sh\n# tierline-runbook\n# {\"name\": \"x\",\n"
                       "#  \"description\": \"d\",\n#  \"min_role\": \"tier9\",\n"
                       "#  \"privileged\": false}\n# end tierline-runbook\n";
    refused(role, strlen(role), "5: 'min_role' must be tier1, tier2 or tier3");
    const char *pattern = "#!/bin/sh\n# tierline-runbook\n# {\"name\": \"x\",\n"
                          "#  \"description\": \"d\", \"min_role\": \"tier1\",\n"
                          "#  \"privileged\": false, \"params\": [\n"
                          "#   {\"name\": \"WHO\", \"pattern\": \"[a-z]+\", \"description\": "
                          "\"w\"}]}\n# end tierline-runbook\n";
    refused(pattern, strlen(pattern), "6: the pattern of parameter WHO");
    const char *name = "#!/bin/sh\n# tierline-runbook\n# {\"name\": \"Bad_Name\",\n"
                       "#  \"description\": \"d\", \"min_role\": \"tier1\",\n"
                       "#  \"privileged\": false}\n# end tierline-runbook\n";
    refused(name, strlen(name), "3: the name does not match");
}

static void test_empty_oversize_and_binary_scripts_are_refused(void **state)
{
    (void)state;
    refused("", 0, "1: the script is empty");
    size_t big = TL_RUNBOOK_SCRIPT_MAX + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, '#', big);
    refused(text, big, "larger than 65536 bytes");
    free(text);
    const char nul[] = GOOD_HEADER "echo a\necho \0b\n";
    refused(nul, sizeof nul - 1, "9: the script holds a NUL byte");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_good_script_gives_its_name_and_metadata),
        cmocka_unit_test(test_a_bad_header_is_refused_with_its_line),
        cmocka_unit_test(test_empty_oversize_and_binary_scripts_are_refused),
    };
    return tl_test_run("runbook_script", tests, sizeof tests / sizeof tests[0], argc, argv);
}
