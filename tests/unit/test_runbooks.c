/*
 * The runbook catalogue: loading validates every entry and skips the bad
 * ones (the others still load); run requests are checked parameter by
 * parameter and role by role, each refusal with its own message; the
 * shipped catalogue loads whole.
 */
#include "tl_test.h"

#include "proto/runbooks.h"
#include "proto/roles.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a temporary catalogue ---------------------------------------------------------------- */

static char catalogue_dir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", catalogue_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static const char *const good_metadata =
    "{\"name\":\"%s\",\"description\":\"Restart a service\",\"min_role\":\"tier1\","
    "\"privileged\":false,\"timeout\":\"2m\",\"params\":["
    "{\"name\":\"SERVICE\",\"pattern\":\"^[a-z]{1,8}$\",\"required\":true,"
    "\"description\":\"unit name\"},"
    "{\"name\":\"MODE\",\"pattern\":\"^(fast|slow)$\",\"required\":false,"
    "\"description\":\"how\"}]}";

/* The template with each "%s" replaced by name (no printf: templates are data). */
static void fill_template(char *out, size_t size, const char *template_text, const char *name)
{
    size_t len = 0;
    for (const char *p = template_text; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 's') {
            size_t n = strlen(name);
            assert_true(len + n < size);
            memcpy(out + len, name, n);
            len += n;
            p++;
            continue;
        }
        assert_true(len + 1 < size);
        out[len++] = *p;
    }
    out[len] = '\0';
}

/* NAME.json from a template with %s for the name, and the executable NAME. */
static void add_runbook(const char *name, const char *metadata_template, mode_t exec_mode)
{
    char metadata[4096];
    fill_template(metadata, sizeof metadata, metadata_template, name);
    char json_name[128];
    snprintf(json_name, sizeof json_name, "%s.json", name);
    write_file(json_name, metadata, 0644);
    write_file(name, "#!/bin/sh\necho ran\n", exec_mode);
}

static int setup_catalogue(void **state)
{
    (void)state;
    snprintf(catalogue_dir, sizeof catalogue_dir, "/tmp/tl-runbooks-XXXXXX");
    assert_non_null(mkdtemp(catalogue_dir));
    return 0;
}

static int teardown_catalogue(void **state)
{
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", catalogue_dir);
    assert_int_equal(system(command), 0);
    return 0;
}

static tl_runbooks_t *load_ok(size_t expected_count)
{
    int err = 1;
    tl_runbooks_t *catalogue = tl_runbooks_load(catalogue_dir, &err);
    assert_non_null(catalogue);
    TL_ASSERT_OK(err);
    if (tl_runbooks_count(catalogue) != expected_count)
        fail_msg("catalogue holds %zu runbooks, expected %zu", tl_runbooks_count(catalogue),
                 expected_count);
    return catalogue;
}

/*
 * One good runbook and one bad one: the bad one is skipped, the good one
 * loads. Used for every rule of the metadata and the files.
 */
static void assert_skipped(const char *bad_template, mode_t exec_mode, const char *what)
{
    add_runbook("good", good_metadata, 0755);
    add_runbook("bad", bad_template, exec_mode);
    tl_runbooks_t *catalogue = load_ok(1);
    if (tl_runbooks_find(catalogue, "bad") != NULL)
        fail_msg("a runbook with %s was loaded", what);
    assert_non_null(tl_runbooks_find(catalogue, "good"));
    tl_runbooks_free(catalogue);
}

/* ---- loading ------------------------------------------------------------------------------ */

static void test_a_valid_catalogue_loads_sorted(void **state)
{
    (void)state;
    add_runbook("zeta", good_metadata, 0755);
    add_runbook("alpha-1", good_metadata, 0700);
    write_file("README", "not a runbook\n", 0644);
    tl_runbooks_t *catalogue = load_ok(2);
    assert_non_null(tl_runbooks_find(catalogue, "alpha-1"));
    assert_non_null(tl_runbooks_find(catalogue, "zeta"));
    assert_null(tl_runbooks_find(catalogue, "README"));
    assert_null(tl_runbooks_find(catalogue, NULL));

    json_t *list = tl_runbooks_list(catalogue);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(first, "name")), "alpha-1");
    assert_string_equal(json_string_value(json_object_get(first, "description")),
                        "Restart a service");
    assert_string_equal(json_string_value(json_object_get(first, "min_role")), "tier1");
    assert_true(json_is_false(json_object_get(first, "privileged")));
    json_t *params = json_object_get(first, "params");
    assert_int_equal(json_array_size(params), 2);
    json_t *service = json_array_get(params, 0);
    assert_string_equal(json_string_value(json_object_get(service, "name")), "SERVICE");
    assert_string_equal(json_string_value(json_object_get(service, "pattern")), "^[a-z]{1,8}$");
    assert_true(json_is_true(json_object_get(service, "required")));
    assert_string_equal(json_string_value(json_object_get(service, "description")), "unit name");
    assert_true(json_is_false(json_object_get(json_array_get(params, 1), "required")));
    /* Exactly the members protocol.md §7.9 names. */
    assert_int_equal(json_object_size(first), 5);
    assert_int_equal(json_object_size(service), 4);
    json_decref(list);
    tl_runbooks_free(catalogue);
}

static void test_an_unreadable_directory_is_an_error(void **state)
{
    (void)state;
    int err = 0;
    char missing[128];
    snprintf(missing, sizeof missing, "%s/nowhere", catalogue_dir);
    assert_null(tl_runbooks_load(missing, &err));
    TL_ASSERT_RC(-ENOENT, err);
    assert_null(tl_runbooks_load(NULL, &err));
    TL_ASSERT_RC(TL_EINVAL, err);
}

static void test_an_empty_directory_is_an_empty_catalogue(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = load_ok(0);
    json_t *list = tl_runbooks_list(catalogue);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    tl_runbooks_free(catalogue);
    tl_runbooks_free(NULL);
}

static void test_malformed_metadata_is_skipped(void **state)
{
    (void)state;
    assert_skipped("{\"name\":\"%s\", not json", 0755, "invalid JSON");
}

static void test_metadata_that_is_not_an_object_is_skipped(void **state)
{
    (void)state;
    assert_skipped("[\"%s\"]", 0755, "an array as metadata");
}

static void test_a_name_that_differs_from_the_file_is_skipped(void **state)
{
    (void)state;
    assert_skipped("{\"name\":\"other\",\"description\":\"%s\",\"min_role\":\"tier1\","
                   "\"privileged\":false}",
                   0755, "a name other than its file's");
}

static void test_a_file_name_outside_the_pattern_is_skipped(void **state)
{
    (void)state;
    add_runbook("good", good_metadata, 0755);
    add_runbook("Bad_Name", good_metadata, 0755);
    add_runbook("-dash", good_metadata, 0755);
    char long_name[64];
    memset(long_name, 'a', 49);
    long_name[49] = '\0';
    add_runbook(long_name, good_metadata, 0755);
    /* 48 characters is the longest name allowed. */
    long_name[48] = '\0';
    add_runbook(long_name, good_metadata, 0755);
    tl_runbooks_t *catalogue = load_ok(2);
    assert_non_null(tl_runbooks_find(catalogue, long_name));
    tl_runbooks_free(catalogue);
}

static void test_a_bad_min_role_is_skipped(void **state)
{
    (void)state;
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier4\","
                   "\"privileged\":false}",
                   0755, "min_role tier4");
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"privileged\":false}", 0755,
                   "no min_role");
}

static void test_privileged_must_be_a_boolean(void **state)
{
    (void)state;
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":\"yes\"}",
                   0755, "privileged as a string");
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\"}", 0755,
                   "no privileged");
}

static void test_a_bad_timeout_is_skipped(void **state)
{
    (void)state;
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":false,\"timeout\":\"2x\"}",
                   0755, "timeout 2x");
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":false,\"timeout\":120}",
                   0755, "a number as timeout");
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":false,\"timeout\":\"2d\"}",
                   0755, "a timeout over a day");
}

static void test_a_bad_description_is_skipped(void **state)
{
    (void)state;
    assert_skipped("{\"name\":\"%s\",\"description\":\"two\\nlines\",\"min_role\":\"tier1\","
                   "\"privileged\":false}",
                   0755, "a description with a newline");
    assert_skipped("{\"name\":\"%s\",\"description\":\"\",\"min_role\":\"tier1\","
                   "\"privileged\":false}",
                   0755, "an empty description");
}

static void test_an_unknown_field_is_skipped(void **state)
{
    (void)state;
    /* A misspelt field ("requried") must not silently change what is enforced. */
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":false,\"shell\":\"bash\"}",
                   0755, "an unknown field");
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":false,\"params\":[{\"name\":\"A\",\"pattern\":\"^a$\","
                   "\"requried\":true,\"description\":\"d\"}]}",
                   0755, "an unknown parameter field");
}

static void test_bad_parameter_names_are_skipped(void **state)
{
    (void)state;
    static const char *const names[] = {"service", "1ABC", "A-B", "",
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char metadata[1024];
        snprintf(metadata, sizeof metadata,
                 "{\"name\":\"%%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                 "\"privileged\":false,\"params\":[{\"name\":\"%s\",\"pattern\":\"^a$\","
                 "\"description\":\"d\"}]}",
                 names[i]);
        assert_skipped(metadata, 0755, names[i]);
    }
    assert_skipped("{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                   "\"privileged\":false,\"params\":[{\"name\":\"A\",\"pattern\":\"^a$\","
                   "\"description\":\"d\"},{\"name\":\"A\",\"pattern\":\"^b$\","
                   "\"description\":\"d\"}]}",
                   0755, "a parameter declared twice");
}

static void test_unanchored_or_broken_patterns_are_skipped(void **state)
{
    (void)state;
    static const char *const patterns[] = {
        "[a-z]+$", /* no ^ */
        "^[a-z]+", /* no $ */
        "^a\\\\$", /* JSON for ^a\$: an escaped dollar is not an anchor */
        "^[a-$",   /* does not compile */
    };
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        char metadata[1024];
        snprintf(metadata, sizeof metadata,
                 "{\"name\":\"%%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                 "\"privileged\":false,\"params\":[{\"name\":\"A\",\"pattern\":\"%s\","
                 "\"description\":\"d\"}]}",
                 patterns[i]);
        assert_skipped(metadata, 0755, patterns[i]);
    }
}

/* Loads NAME.json text for runbook "rb" with one parameter A of the given pattern. */
static tl_runbooks_t *with_pattern(const char *pattern, char *reason, size_t reason_size)
{
    json_t *meta = json_pack("{s:s, s:s, s:s, s:b, s:[{s:s, s:s, s:s}]}", "name", "rb",
                             "description", "d", "min_role", "tier1", "privileged", 0, "params",
                             "name", "A", "pattern", pattern, "description", "d");
    assert_non_null(meta);
    char *text = json_dumps(meta, 0);
    assert_non_null(text);
    int err = 1;
    tl_runbooks_t *catalogue =
        tl_runbooks_from_metadata("rb", text, strlen(text), &err, reason, reason_size);
    if (catalogue == NULL)
        TL_ASSERT_RC(TL_EINVAL, err);
    free(text);
    json_decref(meta);
    return catalogue;
}

/*
 * Patterns the C library would take seconds to minutes to compile or match
 * are skipped at once, saying why (the first found with fuzz_runbook).
 */
static void test_costly_patterns_are_skipped(void **state)
{
    (void)state;
    char stars[200] = "^a";
    memset(stars + 2, '*', 130);
    strcpy(stars + 132, "$");
    static const struct {
        const char *pattern;
        const char *why;
    } costly[] = {
        {"^a++$", "repeats a repetition"},
        {"^a{2}{3}$", "repeats a repetition"},
        {"^a*?$", "repeats a repetition"},
        {"^((((a*)*)*)*)$", "more than two deep"},
        {"^((a*a*)*a*){0,16}$", "more than two deep"},
        {"^(a*a*){0,128}$", "more than 16 times"},
        {"^(a?a?){,17}$", "more than 16 times"},
        {"^(a*a*){00000000128}$", "more than 16 times"},
        {"^a{0,255}a{0,255}a{0,255}$", "expands to more than 512"},
        {"^(a|a|a|a|a|a|a|a){1,255}$", "expands to more than 512"},
        {"^[a-z]{1,32767}$", "expands to more than 512"},
        {NULL, "repeats a repetition"}, /* 130 stars: minutes to compile */
    };
    for (size_t i = 0; i < sizeof costly / sizeof costly[0]; i++) {
        const char *pattern = costly[i].pattern != NULL ? costly[i].pattern : stars;
        char reason[512] = "";
        tl_runbooks_t *catalogue = with_pattern(pattern, reason, sizeof reason);
        if (catalogue != NULL || strstr(reason, costly[i].why) == NULL)
            fail_msg("%s: %s, reason '%s', expected one saying '%s'", pattern,
                     catalogue ? "accepted" : "refused", reason, costly[i].why);
    }
    /* What real parameters look like still loads. */
    static const char *const fine[] = {
        "^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$",
        "^/[A-Za-z0-9._/-]{0,255}$",
        "^[a-z]{1,64}(,[a-z]{1,64}){0,6}$",
        "^(TERM|KILL|INT|HUP)$",
        "^([0-9]{1,3}\\.){3}[0-9]{1,3}$",
        "^[[:alnum:]_]+(-[[:alnum:]_]+)*$",
        "^a\\{2\\}$",
        "^([a-z]+){2,}$",
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        char reason[512] = "";
        tl_runbooks_t *catalogue = with_pattern(fine[i], reason, sizeof reason);
        if (catalogue == NULL)
            fail_msg("%s refused: %s", fine[i], reason);
        tl_runbooks_free(catalogue);
    }
}

static void test_too_many_parameters_are_skipped(void **state)
{
    (void)state;
    char metadata[8192];
    size_t len = (size_t)snprintf(metadata, sizeof metadata,
                                  "{\"name\":\"%%s\",\"description\":\"d\",\"min_role\":"
                                  "\"tier1\",\"privileged\":false,\"params\":[");
    for (int i = 0; i <= TL_RUNBOOKS_MAX_PARAMS; i++)
        len += (size_t)snprintf(metadata + len, sizeof metadata - len,
                                "%s{\"name\":\"P%d\",\"pattern\":\"^a$\",\"description\":\"d\"}",
                                i > 0 ? "," : "", i);
    snprintf(metadata + len, sizeof metadata - len, "]}");
    assert_skipped(metadata, 0755, "17 parameters");
}

static void test_missing_or_unsafe_executables_are_skipped(void **state)
{
    (void)state;
    assert_skipped(good_metadata, 0644, "a file that is not executable");
    assert_skipped(good_metadata, 0775, "a group-writable executable");
    assert_skipped(good_metadata, 0757, "a world-writable executable");

    /* No executable at all. */
    char path[256];
    snprintf(path, sizeof path, "%s/bad", catalogue_dir);
    assert_int_equal(unlink(path), 0);
    tl_runbooks_t *catalogue = load_ok(1);
    assert_null(tl_runbooks_find(catalogue, "bad"));
    tl_runbooks_free(catalogue);
    /* A symbolic link, even to a root-owned program. */
    assert_int_equal(symlink("/bin/true", path), 0);
    catalogue = load_ok(1);
    assert_null(tl_runbooks_find(catalogue, "bad"));
    tl_runbooks_free(catalogue);
}

static void test_writable_metadata_is_skipped(void **state)
{
    (void)state;
    add_runbook("good", good_metadata, 0755);
    add_runbook("bad", good_metadata, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/bad.json", catalogue_dir);
    assert_int_equal(chmod(path, 0666), 0);
    tl_runbooks_t *catalogue = load_ok(1);
    assert_null(tl_runbooks_find(catalogue, "bad"));
    tl_runbooks_free(catalogue);
}

static void test_files_owned_by_another_user_are_skipped(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* only root can give a file away */
    add_runbook("good", good_metadata, 0755);
    add_runbook("bad", good_metadata, 0755);
    char path[256];
    snprintf(path, sizeof path, "%s/bad", catalogue_dir);
    assert_int_equal(chown(path, 65534, 65534), 0);
    tl_runbooks_t *catalogue = load_ok(1);
    assert_null(tl_runbooks_find(catalogue, "bad"));
    tl_runbooks_free(catalogue);
}

/* ---- run requests ------------------------------------------------------------------------- */

static const char *const privileged_metadata =
    "{\"name\":\"%s\",\"description\":\"Needs root\",\"min_role\":\"tier1\","
    "\"privileged\":true,\"params\":[]}";
static const char *const tier2_metadata =
    "{\"name\":\"%s\",\"description\":\"Tier 2 work\",\"min_role\":\"tier2\","
    "\"privileged\":false,\"timeout\":\"90s\"}";
static const char *const alternation_metadata =
    "{\"name\":\"%s\",\"description\":\"Alternation\",\"min_role\":\"tier1\","
    "\"privileged\":false,\"params\":[{\"name\":\"WORD\",\"pattern\":\"^a|b$\","
    "\"required\":true,\"description\":\"a or b\"}]}";

static tl_runbooks_t *request_catalogue(void)
{
    add_runbook("restart", good_metadata, 0755);
    add_runbook("rooty", privileged_metadata, 0755);
    add_runbook("second", tier2_metadata, 0755);
    add_runbook("either", alternation_metadata, 0755);
    return load_ok(4);
}

/* Checks a request expected to fail; the message must contain needle. */
static void assert_refused(tl_runbooks_t *catalogue, const char *name, const char *args_json,
                           const char *role, bool as_root, int expected, const char *needle)
{
    json_t *args =
        args_json != NULL ? json_loads(args_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    if (args_json != NULL)
        assert_non_null(args);
    tl_runbook_run_t run;
    char message[512];
    int rc = tl_runbooks_check(catalogue, name, args, role, as_root, &run, message, sizeof message);
    json_decref(args);
    TL_ASSERT_RC(expected, rc);
    if (strstr(message, needle) == NULL)
        fail_msg("message \"%s\" does not say \"%s\"", message, needle);
    assert_null(run.env);
    assert_null(run.summary);
}

static void test_a_valid_request_gives_the_environment(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = request_catalogue();
    json_t *args = json_pack("{s:s, s:s}", "MODE", "fast", "SERVICE", "cups");
    tl_runbook_run_t run;
    char message[256];
    TL_ASSERT_OK(tl_runbooks_check(catalogue, "restart", args, "tier1", false, &run, message,
                                   sizeof message));
    assert_string_equal(run.name, "restart");
    char expected_path[256];
    snprintf(expected_path, sizeof expected_path, "%s/restart", catalogue_dir);
    assert_string_equal(run.path, expected_path);
    assert_int_equal(run.timeout_ms, 120000);
    assert_false(run.privileged);
    /* Catalogue order, whatever order the arguments came in. */
    assert_int_equal(run.env_count, 2);
    assert_string_equal(run.env[0], "TL_PARAM_SERVICE=cups");
    assert_string_equal(run.env[1], "TL_PARAM_MODE=fast");
    assert_null(run.env[2]);
    assert_string_equal(run.summary, "restart SERVICE=cups MODE=fast");
    tl_runbooks_run_release(&run);
    json_decref(args);

    /* An optional parameter may be left out; the default timeout is 5 minutes. */
    args = json_pack("{s:s}", "SERVICE", "cups");
    TL_ASSERT_OK(tl_runbooks_check(catalogue, "restart", args, "tier3", true, &run, message,
                                   sizeof message));
    assert_int_equal(run.env_count, 1);
    tl_runbooks_run_release(&run);
    json_decref(args);
    TL_ASSERT_OK(
        tl_runbooks_check(catalogue, "rooty", NULL, "tier3", true, &run, message, sizeof message));
    assert_int_equal(run.timeout_ms, TL_RUNBOOKS_DEFAULT_TIMEOUT_MS);
    assert_true(run.privileged);
    assert_int_equal(run.env_count, 0);
    assert_string_equal(run.summary, "rooty");
    tl_runbooks_run_release(&run);
    tl_runbooks_run_release(NULL);
    tl_runbooks_free(catalogue);
}

static void test_an_unknown_runbook_is_not_found(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = request_catalogue();
    assert_refused(catalogue, "format-disk", "{}", "tier3", true, TL_ENOTFOUND,
                   "no runbook named 'format-disk'");
    assert_refused(catalogue, NULL, "{}", "tier3", true, TL_ENOTFOUND, "no runbook");
    tl_runbooks_free(catalogue);
}

static void test_unknown_and_missing_parameters_are_refused(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = request_catalogue();
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"cups\",\"EXTRA\":\"1\"}", "tier1", false,
                   TL_EINVAL, "has no parameter 'EXTRA'");
    assert_refused(catalogue, "restart", "{\"MODE\":\"fast\"}", "tier1", false, TL_EINVAL,
                   "needs parameter SERVICE");
    assert_refused(catalogue, "restart", NULL, "tier1", false, TL_EINVAL,
                   "needs parameter SERVICE");
    assert_refused(catalogue, "restart", "[\"SERVICE\"]", "tier1", false, TL_EINVAL,
                   "must be an object");
    assert_refused(catalogue, "restart", "{\"SERVICE\":7}", "tier1", false, TL_EINVAL,
                   "SERVICE must be a string");
    tl_runbooks_free(catalogue);
}

static void test_values_are_bounded_and_matched(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = request_catalogue();
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"Cups\"}", "tier1", false, TL_EINVAL,
                   "SERVICE='Cups' does not match ^[a-z]{1,8}$");
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"cups; rm -rf /\"}", "tier1", false,
                   TL_EINVAL, "does not match");
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"cups\\u0000x\"}", "tier1", false,
                   TL_EINVAL, "NUL");
    /* The anchors hold around an alternation: "^a|b$" takes a or b, nothing else. */
    assert_refused(catalogue, "either", "{\"WORD\":\"a; reboot\"}", "tier1", false, TL_EINVAL,
                   "does not match");
    assert_refused(catalogue, "either", "{\"WORD\":\"reboot; b\"}", "tier1", false, TL_EINVAL,
                   "does not match");
    tl_runbook_run_t run;
    char message[256];
    json_t *args = json_pack("{s:s}", "WORD", "b");
    TL_ASSERT_OK(tl_runbooks_check(catalogue, "either", args, "tier1", false, &run, message,
                                   sizeof message));
    tl_runbooks_run_release(&run);
    json_decref(args);
    tl_runbooks_free(catalogue);

    /* 1024 bytes is the most a value may hold. */
    add_runbook("long",
                "{\"name\":\"%s\",\"description\":\"d\",\"min_role\":\"tier1\","
                "\"privileged\":false,\"params\":[{\"name\":\"TEXT\","
                "\"pattern\":\"^x*$\",\"description\":\"d\"}]}",
                0755);
    catalogue = load_ok(5);
    char value[1026];
    memset(value, 'x', sizeof value - 1);
    value[1024] = '\0';
    args = json_pack("{s:s}", "TEXT", value);
    TL_ASSERT_OK(
        tl_runbooks_check(catalogue, "long", args, "tier1", false, &run, message, sizeof message));
    tl_runbooks_run_release(&run);
    json_decref(args);
    value[1024] = 'x';
    value[1025] = '\0';
    char *args_json = NULL;
    assert_true(asprintf(&args_json, "{\"TEXT\":\"%s\"}", value) > 0);
    assert_refused(catalogue, "long", args_json, "tier1", false, TL_EINVAL,
                   "TEXT is longer than 1024 bytes");
    free(args_json);
    tl_runbooks_free(catalogue);
}

static void test_roles_below_min_role_are_refused(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = request_catalogue();
    assert_refused(catalogue, "second", NULL, "tier1", false, TL_EDENIED,
                   "needs role tier2 or above, not tier1");
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"cups\"}", "auditor", false, TL_EDENIED,
                   "role 'auditor' may not run runbooks");
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"cups\"}", "admin", false, TL_EDENIED,
                   "may not run runbooks");
    assert_refused(catalogue, "restart", "{\"SERVICE\":\"cups\"}", NULL, false, TL_EDENIED,
                   "may not run runbooks");
    /* A vendor (tier4) observes; it runs no runbooks (docs/roles.md). */
    assert_refused(catalogue, "second", NULL, "tier4", false, TL_EDENIED,
                   "role 'tier4' may not run runbooks");
    tl_runbooks_free(catalogue);

    assert_int_equal(tl_role_runbook_rank(tl_role_parse("tier1")), 1);
    assert_int_equal(tl_role_runbook_rank(tl_role_parse("tier2")), 2);
    assert_int_equal(tl_role_runbook_rank(tl_role_parse("tier4")), 0);
    assert_int_equal(tl_role_runbook_rank(tl_role_parse("tier3")), 3);
    assert_int_equal(tl_role_runbook_rank(tl_role_parse("auditor")), 0);
    assert_int_equal(tl_role_runbook_rank(tl_role_parse("Tier3")), 0);
    assert_int_equal(tl_role_runbook_rank(tl_role_parse(NULL)), 0);
}

static void test_privileged_runbooks_need_root_and_tier3(void **state)
{
    (void)state;
    tl_runbooks_t *catalogue = request_catalogue();
    assert_refused(catalogue, "rooty", NULL, "tier3", false, TL_EDENIED,
                   "the agent on this machine does not run as root");
    assert_refused(catalogue, "rooty", NULL, "tier2", true, TL_EDENIED,
                   "privileged: it needs role tier3, not tier2");
    assert_refused(catalogue, "rooty", NULL, "tier4", true, TL_EDENIED, "may not run runbooks");
    tl_runbooks_free(catalogue);
}

/* ---- the shipped catalogue ---------------------------------------------------------------- */

static void test_the_shipped_runbooks_all_load(void **state)
{
    (void)state;
    char dir[4096];
    TL_ASSERT_OK(tl_runbooks_default_dir(dir, sizeof dir));
    int err = 1;
    tl_runbooks_t *catalogue = tl_runbooks_load(dir, &err);
    assert_non_null(catalogue);
    TL_ASSERT_OK(err);
    static const struct {
        const char *name;
        bool privileged;
    } shipped[] = {
        {"clean-old-logs", false}, {"clean-temp", false}, {"compress-logs", true},
        {"flush-dns", false},      {"renew-dhcp", true},  {"restart-service", true},
        {"stop-process", false},
    };
    size_t count = sizeof shipped / sizeof shipped[0];
    if (tl_runbooks_count(catalogue) != count)
        fail_msg("%s: %zu runbooks loaded, expected %zu (see the log for the skipped)", dir,
                 tl_runbooks_count(catalogue), count);
    json_t *list = tl_runbooks_list(catalogue);
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(list, i);
        assert_string_equal(json_string_value(json_object_get(item, "name")), shipped[i].name);
        assert_int_equal(json_is_true(json_object_get(item, "privileged")), shipped[i].privileged);
        /* A privileged runbook is tier3 work (docs/roles.md). */
        if (shipped[i].privileged)
            assert_string_equal(json_string_value(json_object_get(item, "min_role")), "tier3");
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, shipped[i].name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if ((st.st_mode & 07777) != 0755)
            fail_msg("%s has mode %o, expected 755", path, (unsigned)(st.st_mode & 07777));
        snprintf(path, sizeof path, "%s/%s.json", dir, shipped[i].name);
        assert_int_equal(stat(path, &st), 0);
        if ((st.st_mode & 07777) != 0644)
            fail_msg("%s has mode %o, expected 644", path, (unsigned)(st.st_mode & 07777));
    }
    json_decref(list);

    /* The parameters mean what the scripts expect. */
    tl_runbook_run_t run;
    char message[256];
    json_t *args = json_pack("{s:s}", "PID", "1234");
    TL_ASSERT_OK(tl_runbooks_check(catalogue, "stop-process", args, "tier1", false, &run, message,
                                   sizeof message));
    tl_runbooks_run_release(&run);
    json_decref(args);
    args = json_pack("{s:s}", "SERVICE", "--force");
    TL_ASSERT_RC(TL_EINVAL, tl_runbooks_check(catalogue, "restart-service", args, "tier3", true,
                                              &run, message, sizeof message));
    json_decref(args);
    args = json_pack("{s:s}", "OLDER_THAN_DAYS", "0");
    TL_ASSERT_RC(TL_EINVAL, tl_runbooks_check(catalogue, "clean-temp", args, "tier1", false, &run,
                                              message, sizeof message));
    json_decref(args);
    tl_runbooks_free(catalogue);
}

static void test_the_default_dir_is_the_builds_staged_catalogue(void **state)
{
    (void)state;
    char dir[4096];
    TL_ASSERT_OK(tl_runbooks_default_dir(dir, sizeof dir));
    /*
     * A build stages the catalogue beside its bin/ as an install does, with
     * the installed modes, so a group-writable checkout still loads it.
     */
    const char *suffix = "/share/tierline/runbooks";
    size_t len = strlen(dir);
    if (len <= strlen(suffix) || strcmp(dir + len - strlen(suffix), suffix) != 0)
        fail_msg("default dir %s does not end in %s", dir, suffix);
    char tiny[4];
    TL_ASSERT_RC(TL_EFULL, tl_runbooks_default_dir(tiny, sizeof tiny));
}

#define RUNBOOK_TEST(name)                                                                         \
    cmocka_unit_test_setup_teardown(name, setup_catalogue, teardown_catalogue)

static const struct CMUnitTest tests[] = {
    RUNBOOK_TEST(test_a_valid_catalogue_loads_sorted),
    RUNBOOK_TEST(test_an_unreadable_directory_is_an_error),
    RUNBOOK_TEST(test_an_empty_directory_is_an_empty_catalogue),
    RUNBOOK_TEST(test_malformed_metadata_is_skipped),
    RUNBOOK_TEST(test_metadata_that_is_not_an_object_is_skipped),
    RUNBOOK_TEST(test_a_name_that_differs_from_the_file_is_skipped),
    RUNBOOK_TEST(test_a_file_name_outside_the_pattern_is_skipped),
    RUNBOOK_TEST(test_a_bad_min_role_is_skipped),
    RUNBOOK_TEST(test_privileged_must_be_a_boolean),
    RUNBOOK_TEST(test_a_bad_timeout_is_skipped),
    RUNBOOK_TEST(test_a_bad_description_is_skipped),
    RUNBOOK_TEST(test_an_unknown_field_is_skipped),
    RUNBOOK_TEST(test_bad_parameter_names_are_skipped),
    RUNBOOK_TEST(test_unanchored_or_broken_patterns_are_skipped),
    cmocka_unit_test(test_costly_patterns_are_skipped),
    RUNBOOK_TEST(test_too_many_parameters_are_skipped),
    RUNBOOK_TEST(test_missing_or_unsafe_executables_are_skipped),
    RUNBOOK_TEST(test_writable_metadata_is_skipped),
    RUNBOOK_TEST(test_files_owned_by_another_user_are_skipped),
    RUNBOOK_TEST(test_a_valid_request_gives_the_environment),
    RUNBOOK_TEST(test_an_unknown_runbook_is_not_found),
    RUNBOOK_TEST(test_unknown_and_missing_parameters_are_refused),
    RUNBOOK_TEST(test_values_are_bounded_and_matched),
    RUNBOOK_TEST(test_roles_below_min_role_are_refused),
    RUNBOOK_TEST(test_privileged_runbooks_need_root_and_tier3),
    cmocka_unit_test(test_the_shipped_runbooks_all_load),
    cmocka_unit_test(test_the_default_dir_is_the_builds_staged_catalogue),
};

TL_TEST_MAIN(tests)
