/*
 * The relay's command list as the console reads it (console/command_list.h)
 * and keeps it (console/command_cache.h): a document like the relay's `help
 * --json` is read with every field, anything else is refused whole with a
 * reason, text from the relay comes out escaped, and the cache file is
 * written, found and refused as docs/console.md says.
 */
#include "tl_test.h"

#include "console/command_cache.h"
#include "console/command_list.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The shape of the relay's help --json (relay/cmd/help.c), two commands of it. */
static const char RELAY_DOC[] =
    "{\"name\": \"alice\", \"role\": \"tier2\", \"commands\": ["
    "{\"name\": \"ticket show\", \"usage\": \"ticket show T-N [--json]\", \"summary\": \"a "
    "ticket\", \"options\": [{\"name\": \"--json\", \"value\": null, \"help\": \"the ticket as "
    "an object\"}], \"example\": \"ticket show T-1\", \"capability\": \"tickets.read\"},"
    "{\"name\": \"run\", \"usage\": \"run T-N [--reason TEXT] [--for DURATION] -- COMMAND "
    "[ARGS...]\", \"summary\": \"run a command\", \"options\": ["
    "{\"name\": \"--reason\", \"value\": \"TEXT\", \"help\": \"why\"},"
    "{\"name\": \"--for\", \"value\": \"DURATION\", \"help\": \"how long\"},"
    "{\"name\": \"--\", \"value\": null, \"help\": \"the end of run's options\"}],"
    "\"example\": \"run T-1 -- ls\\nrun T-1 --for 5m -- sh\", \"capability\": \"run\"}]}";

static tl_command_list_t *parse_ok(const char *text)
{
    tl_command_list_t *list = NULL;
    char why[512] = "";
    int rc = tl_command_list_parse(text, strlen(text), &list, why, sizeof why);
    if (rc != 0)
        fail_msg("refused (%s): %s\n%s", tl_strerror(rc), why, text);
    return list;
}

static void test_relay_document_is_read_with_every_field(void **state)
{
    tl_command_list_t *list = parse_ok(RELAY_DOC);
    assert_int_equal(tl_command_list_count(list), 2);
    assert_string_equal(tl_command_list_user(list), "alice");
    assert_string_equal(tl_command_list_role(list), "tier2");

    char *show[] = {"ticket", "show", "T-1"};
    int words = 0;
    const tl_command_info_t *info = tl_command_list_find(list, 3, show, &words);
    assert_non_null(info);
    assert_int_equal(words, 2);
    assert_string_equal(info->usage, "ticket show T-N [--json]");
    assert_string_equal(info->options, "--json\tthe ticket as an object\n");
    assert_string_equal(info->example, "ticket show T-1\n");
    assert_string_equal(info->capability, "tickets.read");
    assert_null(info->value_options[0]);
    assert_int_equal(info->positionals_before_rest, -1);

    info = tl_command_list_get(list, "run");
    assert_non_null(info);
    assert_string_equal(info->options, "--reason TEXT\twhy\n--for DURATION\thow long\n"
                                       "--\tthe end of run's options\n");
    assert_string_equal(info->example, "run T-1 -- ls\nrun T-1 --for 5m -- sh\n");
    assert_string_equal(info->value_options[0], "--reason");
    assert_string_equal(info->value_options[1], "--for");
    assert_null(info->value_options[2]);
    /* run T-N ... -- COMMAND: one word (T-N) before the machine's command line. */
    assert_int_equal(info->positionals_before_rest, 1);
    tl_command_list_free(list);
}

static void test_lookup_takes_two_words_first_and_knows_groups(void **state)
{
    tl_command_list_t *list = parse_ok(RELAY_DOC);
    int words = 0;
    char *alone[] = {"ticket"}, *other[] = {"ticket", "frobnicate"}, *run[] = {"run", "T-1"};
    assert_null(tl_command_list_find(list, 1, alone, &words));
    assert_null(tl_command_list_find(list, 2, other, &words));
    assert_string_equal(tl_command_list_find(list, 2, run, &words)->name, "run");
    assert_int_equal(words, 1);
    assert_true(tl_command_list_is_group(list, "ticket"));
    assert_false(tl_command_list_is_group(list, "tick"));
    assert_false(tl_command_list_is_group(list, "run"));
    assert_null(tl_command_list_find(NULL, 1, alone, &words));
    tl_command_list_free(list);
}

static void test_the_built_in_form_has_no_user(void **state)
{
    tl_command_list_t *list = parse_ok("{\"commands\": [{\"name\": \"whoami\", \"usage\": "
                                       "\"whoami\", \"summary\": \"who\"}]}");
    assert_string_equal(tl_command_list_user(list), "");
    assert_string_equal(tl_command_list_role(list), "");
    const tl_command_info_t *info = tl_command_list_get(list, "whoami");
    assert_string_equal(info->options, "");
    assert_string_equal(info->example, "");
    tl_command_list_free(list);
}

static void test_bad_documents_are_refused_with_a_reason(void **state)
{
    static const struct {
        const char *text, *reason;
    } bad[] = {
        {"not json", "not JSON"},
        {"[]", "not a JSON object"},
        {"{}", "\"commands\" is not an array"},
        {"{\"commands\": []}", "\"commands\" is not an array"},
        {"{\"commands\": [1]}", "command 1 is not an object"},
        {"{\"commands\": [{\"usage\": \"x\", \"summary\": \"x\"}]}", "command 1 has no \"name\""},
        {"{\"commands\": [{\"name\": \"Tickets\", \"usage\": \"x\", \"summary\": \"x\"}]}",
         "not one or two lowercase words"},
        {"{\"commands\": [{\"name\": \"a b c\", \"usage\": \"x\", \"summary\": \"x\"}]}",
         "not one or two lowercase words"},
        {"{\"commands\": [{\"name\": \"../x\", \"usage\": \"x\", \"summary\": \"x\"}]}",
         "not one or two lowercase words"},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": 7, \"summary\": \"x\"}]}",
         "\"usage\" is not a string"},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": \"x\"}]}", "has no \"summary\""},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": \"x\\u0000y\", \"summary\": \"x\"}]}",
         "is not allowed"},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": \"x\", \"summary\": \"x\", \"options\": "
         "{}}]}",
         "\"options\" is not an array"},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": \"x\", \"summary\": \"x\", \"options\": "
         "[{\"name\": \"-x\", \"help\": \"h\"}]}]}",
         "option 1: \"name\" is not --WORD"},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": \"x\", \"summary\": \"x\", \"options\": "
         "[{\"name\": \"--x\", \"value\": 3, \"help\": \"h\"}]}]}",
         "\"value\" is not a string"},
        {"{\"commands\": [{\"name\": \"x\", \"usage\": \"x\", \"summary\": \"x\"}, "
         "{\"name\": \"x\", \"usage\": \"y\", \"summary\": \"y\"}]}",
         "listed twice"},
        {"{\"commands\": [], \"commands\": []}", "not JSON"},
        {"{\"name\": 5, \"commands\": [{\"name\": \"x\", \"usage\": \"x\", \"summary\": \"x\"}]}",
         "\"name\" is not a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_command_list_t *list = (tl_command_list_t *)1;
        char why[512] = "";
        int rc = tl_command_list_parse(bad[i].text, strlen(bad[i].text), &list, why, sizeof why);
        if (rc != TL_EINVAL || list != NULL || strstr(why, bad[i].reason) == NULL)
            fail_msg("%s: rc %s, why '%s', want '%s'", bad[i].text, tl_strerror(rc), why,
                     bad[i].reason);
    }
}

/* Bounds: more commands, options or bytes than the relay's list could need. */
static void test_oversized_documents_are_refused(void **state)
{
    size_t size = TL_COMMAND_LIST_MAX_BYTES + 2;
    char *big = malloc(size);
    assert_non_null(big);
    memset(big, ' ', size);
    big[0] = '{';
    big[size - 1] = '}';
    tl_command_list_t *list = NULL;
    char why[512] = "";
    TL_ASSERT_RC(TL_EFULL, tl_command_list_parse(big, size, &list, why, sizeof why));
    assert_non_null(strstr(why, "larger than 256 KiB"));
    free(big);

    json_t *doc = json_pack("{s:[]}", "commands");
    json_t *commands = json_object_get(doc, "commands");
    for (int i = 0; i <= TL_COMMAND_LIST_MAX_COMMANDS; i++) {
        char name[32];
        snprintf(name, sizeof name, "c%d", i);
        json_array_append_new(
            commands, json_pack("{s:s, s:s, s:s}", "name", name, "usage", name, "summary", "x"));
    }
    TL_ASSERT_RC(TL_EINVAL, tl_command_list_from_json(doc, &list, why, sizeof why));
    assert_non_null(strstr(why, "1 to 128 commands"));
    json_array_remove(commands, 0);
    TL_ASSERT_OK(tl_command_list_from_json(doc, &list, why, sizeof why));
    tl_command_list_free(list);

    json_t *options = json_array();
    for (int i = 0; i <= TL_COMMAND_LIST_MAX_OPTIONS; i++)
        json_array_append_new(options, json_pack("{s:s, s:s}", "name", "--x", "help", "h"));
    json_object_set_new(json_array_get(commands, 0), "options", options);
    TL_ASSERT_RC(TL_EINVAL, tl_command_list_from_json(doc, &list, why, sizeof why));
    assert_non_null(strstr(why, "at most 32"));
    json_decref(doc);
}

static void test_hostile_text_is_escaped_for_showing(void **state)
{
    static const char doc[] =
        "{\"name\": \"al\\u001bice\", \"role\": \"tier2\", \"commands\": [{\"name\": \"x\", "
        "\"usage\": \"x \\u009b31m\", \"summary\": \"\\u001b]0;PWNED\\u0007 ok\", \"options\": "
        "[{\"name\": \"--y\", \"value\": \"V\\tW\", \"help\": \"line\\nbreak\"}], \"example\": "
        "\"x\\u001b[2J\\nx 2\"}]}";
    tl_command_list_t *list = parse_ok(doc);
    const tl_command_info_t *info = tl_command_list_get(list, "x");
    assert_string_equal(tl_command_list_user(list), "al\\x1bice");
    assert_string_equal(info->usage, "x \\u009b31m");
    assert_string_equal(info->summary, "\\x1b]0;PWNED\\x07 ok");
    /* A tab or newline of the relay's cannot make a column or a line of its own. */
    assert_string_equal(info->options, "--y V\\tW\tline\\nbreak\n");
    assert_string_equal(info->example, "x\\x1b[2J\nx 2\n");
    /* The document itself is kept as it came, for help --json. */
    const json_t *first =
        json_array_get(json_object_get(tl_command_list_json(list), "commands"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "summary")),
                        "\x1b]0;PWNED\x07 ok");
    tl_command_list_free(list);
}

/* ---- the cache file -------------------------------------------------------------------------- */

static char dir_template[] = "/tmp/tl-command-cache-XXXXXX";
static char *work_dir;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* A cache directory of the test's own: XDG_CACHE_HOME points into it. */
static int make_cache_home(void **state)
{
    work_dir = mkdtemp(dir_template);
    assert_non_null(work_dir);
    setenv("XDG_CACHE_HOME", work_dir, 1);
    return 0;
}

static int remove_cache_home(void **state)
{
    if (work_dir != NULL)
        nftw(work_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    work_dir = NULL;
    return 0;
}

static void cache_path(const char *host, unsigned port, const char *user, char *out, size_t size)
{
    TL_ASSERT_OK(tl_command_cache_path(host, port, user, out, size));
}

static void test_cache_path_names_relay_and_user_safely(void **state)
{
    char path[8192], want[8192];
    cache_path("relay.example.com", 2222, "alice", path, sizeof path);
    snprintf(want, sizeof want, "%s/tierline/commands-alice@relay.example.com-2222.json", work_dir);
    assert_string_equal(path, want);
    /* Nothing of user or host can name another directory, and distinct ones stay distinct. */
    cache_path("::1", 22, "../b@c", path, sizeof path);
    snprintf(want, sizeof want, "%s/tierline/commands-..%%2Fb%%40c@%%3A%%3A1-22.json", work_dir);
    assert_string_equal(path, want);
    char host[254], user[65];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    memset(user, 'u', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    cache_path(host, 2222, user, path, sizeof path);
    const char *name = strrchr(path, '/') + 1;
    assert_int_equal(strlen(name), strlen("commands-.json") + 64);
    assert_int_equal(strncmp(name, "commands-", 9), 0);
    /* Without XDG_CACHE_HOME: under HOME. */
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/someone", 1);
    cache_path("r", 2222, "u", path, sizeof path);
    assert_string_equal(path, "/home/someone/.cache/tierline/commands-u@r-2222.json");
}

static void test_cache_round_trips_for_its_relay_and_user_only(void **state)
{
    char path[8192], why[1024] = "";
    cache_path("127.0.0.1", 2222, "alice", path, sizeof path);
    tl_command_list_t *list = parse_ok(RELAY_DOC), *back = NULL;
    TL_ASSERT_OK(
        tl_command_cache_store(path, "127.0.0.1", 2222, "alice", list, 1234567, why, sizeof why));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char dir[8192];
    snprintf(dir, sizeof dir, "%s/tierline", work_dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    int64_t fetched = 0;
    TL_ASSERT_OK(
        tl_command_cache_load(path, "127.0.0.1", 2222, "alice", &back, &fetched, why, sizeof why));
    assert_int_equal(fetched, 1234567);
    assert_true(
        json_equal((json_t *)tl_command_list_json(back), (json_t *)tl_command_list_json(list)));
    tl_command_list_free(back);
    /* The same file is not another relay's, port's or user's list. */
    static const struct {
        const char *host, *user;
        unsigned port;
    } others[] = {
        {"127.0.0.2", "alice", 2222}, {"127.0.0.1", "alice", 2223}, {"127.0.0.1", "bob", 2222}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        why[0] = '\0';
        TL_ASSERT_RC(TL_EINVAL,
                     tl_command_cache_load(path, others[i].host, others[i].port, others[i].user,
                                           &back, &fetched, why, sizeof why));
        assert_null(back);
        assert_non_null(strstr(why, "not the list of"));
    }
    tl_command_list_free(list);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_bad_cache_files_are_refused_with_a_reason(void **state)
{
    char path[8192], dir[8192], why[1024];
    cache_path("r", 2222, "alice", path, sizeof path);
    snprintf(dir, sizeof dir, "%s/tierline", work_dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    tl_command_list_t *list = NULL;
    int64_t fetched = 0;
    TL_ASSERT_RC(-ENOENT,
                 tl_command_cache_load(path, "r", 2222, "alice", &list, &fetched, why, sizeof why));
    static const struct {
        const char *text, *reason;
    } bad[] = {
        {"{\"version\": 1, \"relay\": \"r\", \"port\": 2222, \"user\": \"alice\", \"fet",
         "not JSON"},
        {"{\"version\": 2, \"relay\": \"r\", \"port\": 2222, \"user\": \"alice\", \"fetched_ms\": "
         "1, \"help\": {}}",
         "not a version 1 command cache"},
        {"{\"version\": 1, \"relay\": \"r\", \"port\": 2222, \"user\": \"alice\", \"help\": {}}",
         "does not say when"},
        {"{\"version\": 1, \"relay\": \"r\", \"port\": 2222, \"user\": \"alice\", \"fetched_ms\": "
         "1, \"help\": {\"commands\": [{\"name\": \"X\"}]}}",
         "the relay's list in it is not valid: command 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text, strlen(bad[i].text));
        why[0] = '\0';
        TL_ASSERT_RC(TL_EINVAL, tl_command_cache_load(path, "r", 2222, "alice", &list, &fetched,
                                                      why, sizeof why));
        if (list != NULL || strstr(why, bad[i].reason) == NULL)
            fail_msg("%s: why '%s', want '%s'", bad[i].text, why, bad[i].reason);
    }
    /* Too big to be ours: refused before it is parsed. */
    size_t size = TL_COMMAND_CACHE_MAX_BYTES + 1;
    char *big = calloc(1, size);
    assert_non_null(big);
    memset(big, ' ', size);
    write_file(path, big, size);
    free(big);
    TL_ASSERT_RC(TL_EFULL,
                 tl_command_cache_load(path, "r", 2222, "alice", &list, &fetched, why, sizeof why));
    assert_non_null(strstr(why, "larger than"));
    /* A link is not followed, whatever it points at. */
    assert_int_equal(unlink(path), 0);
    char target[8192];
    snprintf(target, sizeof target, "%s/elsewhere.json", work_dir);
    write_file(target, "{}", 2);
    assert_int_equal(symlink(target, path), 0);
    TL_ASSERT_RC(-ELOOP,
                 tl_command_cache_load(path, "r", 2222, "alice", &list, &fetched, why, sizeof why));
    assert_non_null(strstr(why, "symbolic link"));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    TL_ASSERT_RC(TL_EINVAL,
                 tl_command_cache_load(path, "r", 2222, "alice", &list, &fetched, why, sizeof why));
    assert_non_null(strstr(why, "not a regular file"));
    assert_null(list);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_relay_document_is_read_with_every_field),
    cmocka_unit_test(test_lookup_takes_two_words_first_and_knows_groups),
    cmocka_unit_test(test_the_built_in_form_has_no_user),
    cmocka_unit_test(test_bad_documents_are_refused_with_a_reason),
    cmocka_unit_test(test_oversized_documents_are_refused),
    cmocka_unit_test(test_hostile_text_is_escaped_for_showing),
    cmocka_unit_test_setup_teardown(test_cache_path_names_relay_and_user_safely, make_cache_home,
                                    remove_cache_home),
    cmocka_unit_test_setup_teardown(test_cache_round_trips_for_its_relay_and_user_only,
                                    make_cache_home, remove_cache_home),
    cmocka_unit_test_setup_teardown(test_bad_cache_files_are_refused_with_a_reason, make_cache_home,
                                    remove_cache_home),
};

TL_TEST_MAIN(tests)
