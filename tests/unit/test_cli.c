/*
 * The shared command-line parser (proto/cli.c): a declarative spec in, the
 * command's result struct or one named usage error out, and the help lines
 * written from the same spec. Every bad-input rule has a case here; the
 * relay's own specs are checked in test_commands.c.
 */
#include "tl_test.h"

#include "proto/buf.h"
#include "proto/cli.h"

#include <stdlib.h>
#include <unistd.h>

/* What the example command's spec fills. */
struct result {
    const char *data;
    const char *name;
    uint64_t count;
    const char *count_word;
    uint64_t ttl_ms;
    int colour;
    int even;
    int json;
    int verbose;
    tl_cli_words_t rest;
    const char *first;
    const char *second;
};

static const char *const colours[] = {"red", "green", "blue", NULL};

/* An even number of letters; says so itself when the word is empty. */
static int check_even(const char *word, void *out, const char **problem)
{
    size_t len = strlen(word);
    if (len == 0) {
        *problem = "an empty word is not even";
        return TL_EINVAL;
    }
    if (len % 2 != 0)
        return TL_EINVAL;
    if (out != NULL)
        *(int *)out = (int)len;
    return 0;
}

static const tl_cli_arg_t options[] = {
    {.name = "data",
     .metavar = "DIR",
     .help = "the folder",
     .flags = TL_CLI_REQUIRED,
     .out = TL_CLI_AT(struct result, data)},
    {.name = "name",
     .letter = 'n',
     .metavar = "TEXT",
     .help = "a name of 2 to 4 bytes",
     .kind = TL_CLI_TEXT,
     .min = 2,
     .max = 4,
     .out = TL_CLI_AT(struct result, name),
     .problem = "--name wants 2 to 4 bytes, not '%s'"},
    {.name = "count",
     .metavar = "N",
     .help = "how many, 1..10",
     .flags = TL_CLI_ALONE,
     .kind = TL_CLI_UINT,
     .min = 1,
     .max = 10,
     .out = TL_CLI_AT(struct result, count),
     .word = TL_CLI_AT(struct result, count_word),
     .problem = "bad --count '%s' (1 to 10)"},
    {.name = "ttl",
     .metavar = "DURATION",
     .help = "how long, at most 1h",
     .kind = TL_CLI_DURATION,
     .max = 3600 * 1000,
     .out = TL_CLI_AT(struct result, ttl_ms),
     .problem = "--ttl wants 1s..1h"},
    {.name = "colour",
     .metavar = "C",
     .help = "red, green or blue",
     .kind = TL_CLI_WORD,
     .words = colours,
     .out = TL_CLI_AT(struct result, colour),
     .problem = "--colour wants red, green or blue"},
    {.name = "even",
     .metavar = "WORD",
     .kind = TL_CLI_CHECK,
     .check = check_even,
     .out = TL_CLI_AT(struct result, even),
     .problem = "--even wants an even number of letters"},
    {.name = "json", .help = "as JSON", .out = TL_CLI_AT(struct result, json)},
    {.name = "verbose", .letter = 'v', .out = TL_CLI_AT(struct result, verbose)},
    {0}};

static const tl_cli_arg_t two_words[] = {
    {.name = "FIRST", .kind = TL_CLI_TEXT, .out = TL_CLI_AT(struct result, first)},
    {.name = "SECOND",
     .flags = TL_CLI_OPTIONAL,
     .kind = TL_CLI_CHECK,
     .check = check_even,
     .word = TL_CLI_AT(struct result, second),
     .problem = "SECOND has an odd number of letters"},
    {0}};

/* Admin style: checks after the whole line. */
static const tl_cli_spec_t after_spec = {
    .options = options, .positionals = two_words, .flags = TL_CLI_DOUBLE_DASH};
/* SSH style: checks as the words come. */
static const tl_cli_spec_t in_order_spec = {
    .options = options, .positionals = two_words, .flags = TL_CLI_IN_ORDER | TL_CLI_DOUBLE_DASH};

static int parse(const tl_cli_spec_t *spec, struct result *result, tl_cli_error_t *error, int argc,
                 const char *const *words)
{
    char *argv[64];
    for (int i = 0; i < argc; i++)
        argv[i] = (char *)words[i];
    *result = (struct result){.count = 3, .count_word = "3"};
    return tl_cli_args_parse(spec, argc, argv, result, error);
}

#define WORDS(...)                                                                                 \
    (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), (const char *const[])     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

/* The error as the admin programs print it. */
static char *written(const tl_cli_spec_t *spec, const tl_cli_error_t *error)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(tl_cli_error_write(out, "prog", "cmd", "cmd --data DIR [FIRST]", spec, error),
                     TL_EXIT_USAGE);
    fclose(out);
    return text;
}

static void assert_error(const tl_cli_spec_t *spec, int argc, const char *const *words,
                         const char *expected)
{
    struct result result;
    tl_cli_error_t error;
    int rc = parse(spec, &result, &error, argc, words);
    if (rc != TL_EINVAL)
        fail_msg("parsed, expected: %s", expected);
    char *text = written(spec, &error);
    if (strcmp(text, expected) != 0)
        fail_msg("expected:\n%s\ngot:\n%s", expected, text);
    free(text);
}

static void test_a_good_line_fills_the_result(void **state)
{
    (void)state;
    struct result r;
    tl_cli_error_t error;
    TL_ASSERT_OK(parse(&after_spec, &r, &error,
                       WORDS("one", "--data", "/d", "--count", "7", "--ttl", "2m", "--colour",
                             "blue", "-n", "ab", "--even", "four", "--json", "-v", "xy")));
    assert_int_equal(error.code, 0);
    assert_string_equal(r.data, "/d");
    assert_string_equal(r.name, "ab");
    assert_int_equal(r.count, 7);
    assert_string_equal(r.count_word, "7");
    assert_int_equal(r.ttl_ms, 120000);
    assert_int_equal(r.colour, 2);
    assert_int_equal(r.even, 4);
    assert_int_equal(r.json, 1);
    assert_int_equal(r.verbose, 1);
    assert_string_equal(r.first, "one");
    assert_string_equal(r.second, "xy");
}

static void test_options_not_given_keep_their_defaults(void **state)
{
    (void)state;
    struct result r;
    tl_cli_error_t error;
    TL_ASSERT_OK(parse(&after_spec, &r, &error, WORDS("--data", "/d", "one")));
    assert_int_equal(r.count, 3);
    assert_string_equal(r.count_word, "3");
    assert_null(r.name);
    assert_null(r.second);
    assert_int_equal(r.json, 0);
    /* The last of a repeated option wins. */
    TL_ASSERT_OK(parse(&after_spec, &r, &error,
                       WORDS("--data", "/a", "one", "--data", "/b", "--count", "1")));
    assert_string_equal(r.data, "/b");
    assert_int_equal(r.count, 1);
}

static void test_unknown_options_are_named(void **state)
{
    (void)state;
    assert_error(&after_spec, WORDS("--data", "/d", "--bogus"),
                 "prog cmd: unknown option '--bogus'\nusage: prog cmd --data DIR [FIRST]\n");
    /* "--name=ab" is not how values are given. */
    assert_error(&after_spec, WORDS("--data", "/d", "--name=ab"),
                 "prog cmd: unknown option '--name=ab'\nusage: prog cmd --data DIR [FIRST]\n");
}

static void test_a_value_missing_at_the_end_is_named(void **state)
{
    (void)state;
    assert_error(&after_spec, WORDS("--data", "/d", "one", "--count"),
                 "prog cmd: missing value for '--count'\nusage: prog cmd --data DIR [FIRST]\n");
    assert_error(&after_spec, WORDS("--data", "/d", "-n"),
                 "prog cmd: missing value for '-n'\nusage: prog cmd --data DIR [FIRST]\n");
    /* A value is the next word, whatever it looks like. */
    struct result r;
    tl_cli_error_t error;
    TL_ASSERT_OK(parse(&after_spec, &r, &error, WORDS("--data", "--json", "one")));
    assert_string_equal(r.data, "--json");
    assert_int_equal(r.json, 0);
}

static void test_a_word_too_many_is_unexpected(void **state)
{
    (void)state;
    assert_error(&after_spec, WORDS("--data", "/d", "one", "xy", "three"),
                 "prog cmd: unexpected argument 'three'\nusage: prog cmd --data DIR [FIRST]\n");
    /* A single dash is no option here: a word. */
    assert_error(&after_spec, WORDS("--data", "/d", "one", "xy", "-x"),
                 "prog cmd: unexpected argument '-x'\nusage: prog cmd --data DIR [FIRST]\n");
}

static void test_a_required_option_left_out_is_named(void **state)
{
    (void)state;
    assert_error(&after_spec, WORDS("one"),
                 "prog cmd: --data DIR is required\nusage: prog cmd --data DIR [FIRST]\n");
}

static void test_a_positional_left_out_is_missing(void **state)
{
    (void)state;
    struct result r;
    tl_cli_error_t error;
    assert_int_equal(parse(&after_spec, &r, &error, WORDS("--data", "/d")), TL_EINVAL);
    assert_int_equal(error.code, TL_CLI_MISSING_WORD);
    assert_string_equal(error.arg->name, "FIRST");
    /* Without a problem of its own, only the usage line says it. */
    assert_error(&after_spec, WORDS("--data", "/d"), "usage: prog cmd --data DIR [FIRST]\n");
}

static void test_bad_values_of_every_kind_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *option, *value, *expected;
    } bad[] = {
        {"--name", "a",
         "prog cmd: --name wants 2 to 4 bytes, not 'a'\n"
         "usage: prog cmd --data DIR [FIRST]\n"},
        {"--name", "abcde",
         "prog cmd: --name wants 2 to 4 bytes, not 'abcde'\n"
         "usage: prog cmd --data DIR [FIRST]\n"},
        /* TL_CLI_ALONE: no usage line after it. */
        {"--count", "0", "prog cmd: bad --count '0' (1 to 10)\n"},
        {"--count", "11", "prog cmd: bad --count '11' (1 to 10)\n"},
        {"--count", "1x", "prog cmd: bad --count '1x' (1 to 10)\n"},
        {"--count", "-1", "prog cmd: bad --count '-1' (1 to 10)\n"},
        {"--count", "", "prog cmd: bad --count '' (1 to 10)\n"},
        {"--ttl", "2h", "prog cmd: --ttl wants 1s..1h\nusage: prog cmd --data DIR [FIRST]\n"},
        {"--ttl", "soon", "prog cmd: --ttl wants 1s..1h\nusage: prog cmd --data DIR [FIRST]\n"},
        {"--ttl", "0s", "prog cmd: --ttl wants 1s..1h\nusage: prog cmd --data DIR [FIRST]\n"},
        {"--colour", "Red",
         "prog cmd: --colour wants red, green or blue\n"
         "usage: prog cmd --data DIR [FIRST]\n"},
        {"--even", "odd",
         "prog cmd: --even wants an even number of letters\n"
         "usage: prog cmd --data DIR [FIRST]\n"},
        /* The check's own, more precise problem wins over the option's. */
        {"--even", "", "prog cmd: an empty word is not even\nusage: prog cmd --data DIR [FIRST]\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct result r;
        tl_cli_error_t error;
        assert_int_equal(parse(&after_spec, &r, &error,
                               WORDS("--data", "/d", "one", bad[i].option, bad[i].value)),
                         TL_EINVAL);
        assert_int_equal(error.code, TL_CLI_BAD_VALUE);
        assert_string_equal(error.word, bad[i].value);
        char *text = written(&after_spec, &error);
        if (strcmp(text, bad[i].expected) != 0)
            fail_msg("%s '%s': expected\n%s\ngot\n%s", bad[i].option, bad[i].value, bad[i].expected,
                     text);
        free(text);
    }
    assert_error(&after_spec, WORDS("--data", "/d", "one", "odd"),
                 "prog cmd: SECOND has an odd number of letters\n"
                 "usage: prog cmd --data DIR [FIRST]\n");
}

/* Two problems on one line: which is told depends on the spec's order of checking. */
static void test_checks_come_in_argv_order_or_after_the_line(void **state)
{
    (void)state;
    /* After the line: words out of place first, then required options, then values in the
     * spec's order (--name before --count), then positionals. */
    assert_error(&after_spec, WORDS("--count", "0", "--bogus"),
                 "prog cmd: unknown option '--bogus'\nusage: prog cmd --data DIR [FIRST]\n");
    assert_error(&after_spec, WORDS("--count", "0", "one"),
                 "prog cmd: --data DIR is required\nusage: prog cmd --data DIR [FIRST]\n");
    assert_error(&after_spec, WORDS("--data", "/d", "--count", "0", "--name", "x", "one"),
                 "prog cmd: --name wants 2 to 4 bytes, not 'x'\n"
                 "usage: prog cmd --data DIR [FIRST]\n");
    assert_error(&after_spec, WORDS("--data", "/d", "one", "odd", "--count", "0"),
                 "prog cmd: bad --count '0' (1 to 10)\n");
    /* In order: the first bad word on the line. */
    assert_error(&in_order_spec, WORDS("--count", "0", "--bogus"),
                 "prog cmd: bad --count '0' (1 to 10)\n");
    assert_error(&in_order_spec, WORDS("--data", "/d", "--count", "0", "--name", "x", "one"),
                 "prog cmd: bad --count '0' (1 to 10)\n");
    assert_error(&in_order_spec, WORDS("one", "odd", "--bogus"),
                 "prog cmd: SECOND has an odd number of letters\n"
                 "usage: prog cmd --data DIR [FIRST]\n");
    /* Required options are checked once the line is read, in order or not. */
    assert_error(&in_order_spec, WORDS("one"),
                 "prog cmd: --data DIR is required\nusage: prog cmd --data DIR [FIRST]\n");
}

/* ---- the SSH side's rules ----------------------------------------------------------------- */

struct ssh_result {
    int json;
    const char *reason;
    const char *ticket;
    tl_cli_words_t command;
};

static const tl_cli_arg_t ssh_options[] = {
    {.name = "reason",
     .metavar = "TEXT",
     .help = "why",
     .kind = TL_CLI_TEXT,
     .min = 1,
     .max = 8,
     .out = TL_CLI_AT(struct ssh_result, reason),
     .problem = "--reason needs 1 to 8 bytes"},
    {.name = "json", .flags = TL_CLI_ANYWHERE, .out = TL_CLI_AT(struct ssh_result, json)},
    {0}};

/* run T-N [--reason TEXT] [--] COMMAND... */
static const tl_cli_spec_t run_spec = {
    .options = ssh_options,
    .positionals =
        (const tl_cli_arg_t[]){
            {.name = "T-N", .kind = TL_CLI_TEXT, .out = TL_CLI_AT(struct ssh_result, ticket)},
            {.name = "COMMAND",
             .flags = TL_CLI_REST,
             .most = 4,
             .kind = TL_CLI_LIST,
             .out = TL_CLI_AT(struct ssh_result, command),
             .problem = "run needs a command"},
            {0}},
    .flags = TL_CLI_IN_ORDER | TL_CLI_TERSE | TL_CLI_DASH_WORDS | TL_CLI_DOUBLE_DASH,
    .options_after = 1,
    .dashes_help = "the end of the options"};

/* note T-N [--reason TEXT]: a word out of place is named. */
static const tl_cli_spec_t note_spec = {
    .options = ssh_options,
    .positionals =
        (const tl_cli_arg_t[]){
            {.name = "T-N", .kind = TL_CLI_TEXT, .out = TL_CLI_AT(struct ssh_result, ticket)}, {0}},
    .flags = TL_CLI_IN_ORDER};

static int parse_ssh(const tl_cli_spec_t *spec, struct ssh_result *r, tl_cli_error_t *error,
                     int argc, const char *const *words)
{
    char *argv[64];
    for (int i = 0; i < argc; i++)
        argv[i] = (char *)words[i];
    *r = (struct ssh_result){0};
    return tl_cli_args_parse(spec, argc, argv, r, error);
}

static void assert_command(const struct ssh_result *r, int count, const char *const *words)
{
    assert_int_equal(r->command.count, count);
    for (int i = 0; i < count; i++)
        assert_string_equal(r->command.word[i], words[i]);
}

static void test_the_rest_of_the_line_is_the_command(void **state)
{
    (void)state;
    struct ssh_result r;
    tl_cli_error_t error;
    TL_ASSERT_OK(
        parse_ssh(&run_spec, &r, &error, WORDS("T-1", "--reason", "why", "ls", "--reason")));
    assert_string_equal(r.ticket, "T-1");
    assert_string_equal(r.reason, "why");
    assert_command(&r, WORDS("ls", "--reason"));
    /* "--" ends the options; after it, even an option's name is the command's. */
    TL_ASSERT_OK(parse_ssh(&run_spec, &r, &error, WORDS("T-1", "--", "--reason", "x")));
    assert_null(r.reason);
    assert_command(&r, WORDS("--reason", "x"));
    /* A "--word" that is not ours starts the command. */
    TL_ASSERT_OK(parse_ssh(&run_spec, &r, &error, WORDS("T-1", "--version")));
    assert_command(&r, WORDS("--version"));
    /* Options count only after the ticket. */
    TL_ASSERT_OK(parse_ssh(&run_spec, &r, &error, WORDS("--reason", "x", "ls")));
    assert_string_equal(r.ticket, "--reason");
    assert_command(&r, WORDS("x", "ls"));
}

static void test_anywhere_flags_are_taken_before_a_double_dash(void **state)
{
    (void)state;
    struct ssh_result r;
    tl_cli_error_t error;
    TL_ASSERT_OK(parse_ssh(&run_spec, &r, &error, WORDS("--json", "T-1", "ls", "--json", "-l")));
    assert_int_equal(r.json, 1);
    assert_string_equal(r.ticket, "T-1");
    assert_command(&r, WORDS("ls", "-l"));
    /* After "--" it is the command's own word. */
    TL_ASSERT_OK(parse_ssh(&run_spec, &r, &error, WORDS("T-1", "--", "ls", "--json")));
    assert_int_equal(r.json, 0);
    assert_command(&r, WORDS("ls", "--json"));
    /* Nobody's value: taken first, so the option before it has none. */
    assert_int_equal(parse_ssh(&run_spec, &r, &error, WORDS("T-1", "--reason", "--json")),
                     TL_EINVAL);
    assert_int_equal(error.code, TL_CLI_MISSING_VALUE);
    assert_string_equal(error.problem, "--reason needs 1 to 8 bytes");
}

static void test_the_ssh_rules_refuse_what_they_should(void **state)
{
    (void)state;
    struct ssh_result r;
    tl_cli_error_t error;
    const struct {
        const tl_cli_spec_t *spec;
        int argc;
        const char *const *words;
        int code;
        const char *word;
        const char *problem;
    } bad[] = {
        {&run_spec, WORDS("T-1"), TL_CLI_MISSING_WORD, NULL, "run needs a command"},
        {&run_spec, WORDS("T-1", "--"), TL_CLI_MISSING_WORD, NULL, "run needs a command"},
        {&run_spec, WORDS("T-1", "--reason", ""), TL_CLI_BAD_VALUE, "",
         "--reason needs 1 to 8 bytes"},
        {&run_spec, WORDS("T-1", "--reason", "123456789", "ls"), TL_CLI_BAD_VALUE, "123456789",
         "--reason needs 1 to 8 bytes"},
        {&run_spec, WORDS("T-1", "a", "b", "c", "d", "e"), TL_CLI_UNEXPECTED, "e", NULL},
        {&note_spec, WORDS("T-1", "--bogus"), TL_CLI_UNKNOWN_OPTION, "--bogus", NULL},
        /* Without TL_CLI_DOUBLE_DASH, "--" is a word like any other. */
        {&note_spec, WORDS("T-1", "--"), TL_CLI_UNKNOWN_OPTION, "--", NULL},
        {&note_spec, WORDS("T-1", "x"), TL_CLI_UNEXPECTED, "x", NULL},
        {&note_spec, WORDS("--reason", "r"), TL_CLI_MISSING_WORD, NULL, NULL},
        {&note_spec, 0, NULL, TL_CLI_MISSING_WORD, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_ssh(bad[i].spec, &r, &error, bad[i].argc, bad[i].words), TL_EINVAL);
        if (error.code != bad[i].code)
            fail_msg("case %zu: code %d, expected %d", i, error.code, bad[i].code);
        if (bad[i].word == NULL)
            assert_null(error.word);
        else
            assert_string_equal(error.word, bad[i].word);
        if (bad[i].problem == NULL)
            assert_null(error.problem);
        else
            assert_string_equal(error.problem, bad[i].problem);
        assert_int_equal(error.usage, 1);
    }
    /* TL_CLI_TERSE: a word out of place gets the usage line alone. */
    assert_int_equal(parse_ssh(&run_spec, &r, &error, WORDS("T-1", "a", "b", "c", "d", "e")),
                     TL_EINVAL);
    char *text = written(&run_spec, &error);
    assert_string_equal(text, "usage: prog cmd --data DIR [FIRST]\n");
    free(text);
}

static int first_before_second(void *result, const char **problem)
{
    const struct result *r = result;
    if (r->second != NULL && strcmp(r->first, r->second) > 0) {
        *problem = "FIRST must sort before SECOND";
        return TL_EINVAL;
    }
    return 0;
}

static void test_finish_checks_across_values(void **state)
{
    (void)state;
    tl_cli_spec_t spec = after_spec;
    spec.finish = first_before_second;
    assert_error(&spec, WORDS("--data", "/d", "zz", "ab"),
                 "prog cmd: FIRST must sort before SECOND\nusage: prog cmd --data DIR [FIRST]\n");
    struct result r;
    tl_cli_error_t error;
    TL_ASSERT_OK(parse(&spec, &r, &error, WORDS("--data", "/d", "ab", "zz")));
    /* Only after every value is good. */
    assert_error(&spec, WORDS("--data", "/d", "zz", "abc"),
                 "prog cmd: SECOND has an odd number of letters\n"
                 "usage: prog cmd --data DIR [FIRST]\n");
}

static void test_a_spec_beyond_the_limits_is_refused(void **state)
{
    (void)state;
    tl_cli_arg_t many[TL_CLI_OPTIONS_MAX + 2] = {{0}};
    char names[TL_CLI_OPTIONS_MAX + 1][8];
    for (int i = 0; i <= TL_CLI_OPTIONS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "o%d", i);
        many[i].name = names[i];
    }
    tl_cli_spec_t spec = {.options = many};
    tl_cli_error_t error;
    char *argv[] = {"--o1"};
    assert_int_equal(tl_cli_args_parse(&spec, 1, argv, NULL, &error), TL_EINVAL);
    assert_int_equal(error.code, TL_CLI_SPEC);
    /* A flag taken anywhere cannot take a value. */
    tl_cli_arg_t valued[] = {{.name = "x", .metavar = "V", .flags = TL_CLI_ANYWHERE}, {0}};
    spec.options = valued;
    assert_int_equal(tl_cli_args_parse(&spec, 0, argv, NULL, &error), TL_EINVAL);
    assert_int_equal(error.code, TL_CLI_SPEC);
}

static void test_help_lists_the_options_of_the_spec(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    tl_cli_spec_help_write(out, "prog", "cmd --data DIR", "does things", &after_spec,
                           "prog cmd --data /d one\n");
    fclose(out);
    /* --even and --verbose have no help line: accepted, not listed. */
    assert_string_equal(text, "usage: prog cmd --data DIR\n"
                              "\n"
                              "does things\n"
                              "\n"
                              "Options:\n"
                              "  --data DIR       the folder\n"
                              "  -n, --name TEXT  a name of 2 to 4 bytes\n"
                              "  --count N        how many, 1..10\n"
                              "  --ttl DURATION   how long, at most 1h\n"
                              "  --colour C       red, green or blue\n"
                              "  --json           as JSON\n"
                              "  -h, --help       show this help and do nothing else\n"
                              "\n"
                              "Example:\n"
                              "  prog cmd --data /d one\n");
    free(text);
    tl_buf_t *lines = tl_buf_new(4096);
    TL_ASSERT_OK(tl_cli_spec_options(&run_spec, lines));
    assert_int_equal(tl_buf_len(lines), strlen("--reason TEXT\twhy\n--\tthe end of the options\n"));
    assert_memory_equal(tl_buf_data(lines), "--reason TEXT\twhy\n--\tthe end of the options\n",
                        tl_buf_len(lines));
    tl_buf_free(lines);
}

static void test_help_stops_where_the_command_starts(void **state)
{
    (void)state;
    char *asks[] = {"run", "T-1", "--reason", "x", "--help"};
    assert_int_equal(tl_cli_spec_wants_help(&run_spec, 5, asks, 1), 1);
    /* The command's own --help, after its first word or after "--". */
    char *ls[] = {"run", "T-1", "ls", "--help"};
    assert_int_equal(tl_cli_spec_wants_help(&run_spec, 4, ls, 1), 0);
    char *dashes[] = {"run", "T-1", "--", "--help"};
    assert_int_equal(tl_cli_spec_wants_help(&run_spec, 4, dashes, 1), 0);
    /* --reason's value is skipped: it does not start the command. */
    char *value[] = {"run", "T-1", "--reason", "why", "-h"};
    assert_int_equal(tl_cli_spec_wants_help(&run_spec, 5, value, 1), 1);
    /* Without a rest of the line, any --help among the words asks for help. */
    char *note[] = {"note", "T-1", "x", "y", "--help"};
    assert_int_equal(tl_cli_spec_wants_help(&note_spec, 5, note, 1), 1);
}

/* Positionals of any length before the rest of the line, or without one (found by fuzz_cmdargs:
 * the count of words before the rest overflowed). */
static void test_help_counts_words_of_any_number(void **state)
{
    (void)state;
    tl_cli_spec_t text = {.positionals =
                              (const tl_cli_arg_t[]){{.name = "T-N"},
                                                     {.name = "TEXT", .most = TL_CLI_MANY},
                                                     {.name = "MORE", .most = TL_CLI_MANY},
                                                     {0}}};
    char *note[] = {"note", "T-1", "a", "b", "--help"};
    assert_int_equal(tl_cli_spec_wants_help(&text, 5, note, 1), 1);
    tl_cli_spec_t rest = {.positionals =
                              (const tl_cli_arg_t[]){{.name = "WORDS", .most = TL_CLI_MANY},
                                                     {.name = "A", .most = TL_CLI_MANY},
                                                     {.name = "COMMAND", .flags = TL_CLI_REST},
                                                     {0}}};
    char *line[] = {"x", "a", "b", "c", "-h"};
    assert_int_equal(tl_cli_spec_wants_help(&rest, 5, line, 1), 1);
}

/* ---- tl_cli_parse, the pointer-based form -------------------------------------------------- */

/* Runs tl_cli_parse with stderr captured; returns what it printed (the caller frees it). */
static char *legacy(int *status, int argc, char **argv, const tl_cli_option_t *opts,
                    const char **positional, int max_positional, int *count)
{
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(fileno(stderr));
    dup2(fileno(capture), fileno(stderr));
    *status = tl_cli_parse("prog", "cmd", "cmd [--state DIR]", argc, argv, 1, opts, positional,
                           max_positional, count);
    fflush(stderr);
    dup2(saved, fileno(stderr));
    close(saved);
    long size = ftell(capture);
    char *text = calloc(1, (size_t)size + 1);
    rewind(capture);
    assert_int_equal(fread(text, 1, (size_t)size, capture), (size_t)size);
    fclose(capture);
    return text;
}

static void test_the_pointer_based_form_parses_as_before(void **state)
{
    (void)state;
    const char *dir = NULL, *positional[2] = {NULL, NULL};
    int json = 0, count = -1, status;
    tl_cli_option_t opts[] = {{"state", &dir, NULL}, {"json", NULL, &json}, {0}};
    char *good[] = {"cmd", "a", "--state", "/s", "--", "--json"};
    char *text = legacy(&status, 6, good, opts, positional, 2, &count);
    assert_int_equal(status, 0);
    assert_string_equal(text, "");
    assert_string_equal(dir, "/s");
    assert_int_equal(json, 0);
    assert_int_equal(count, 2);
    assert_string_equal(positional[0], "a");
    assert_string_equal(positional[1], "--json");
    free(text);
    static const struct {
        int argc;
        char *argv[4];
        const char *expected;
    } bad[] = {
        {2,
         {"cmd", "--bogus"},
         "prog cmd: unknown option '--bogus'\nusage: prog cmd [--state DIR]\n"},
        {2,
         {"cmd", "--state"},
         "prog cmd: missing value for '--state'\nusage: prog cmd [--state DIR]\n"},
        {4,
         {"cmd", "a", "b", "c"},
         "prog cmd: unexpected argument 'c'\nusage: prog cmd [--state DIR]\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        text = legacy(&status, bad[i].argc, (char **)bad[i].argv, opts, positional, 2, &count);
        assert_int_equal(status, TL_EXIT_USAGE);
        assert_string_equal(text, bad[i].expected);
        free(text);
    }
    /* No positionals at all: the first is one too many. */
    char *extra[] = {"cmd", "--json", "x"};
    text = legacy(&status, 3, extra, opts, NULL, 0, &count);
    assert_int_equal(status, TL_EXIT_USAGE);
    assert_string_equal(text, "prog cmd: unexpected argument 'x'\nusage: prog cmd [--state DIR]\n");
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_good_line_fills_the_result),
    cmocka_unit_test(test_options_not_given_keep_their_defaults),
    cmocka_unit_test(test_unknown_options_are_named),
    cmocka_unit_test(test_a_value_missing_at_the_end_is_named),
    cmocka_unit_test(test_a_word_too_many_is_unexpected),
    cmocka_unit_test(test_a_required_option_left_out_is_named),
    cmocka_unit_test(test_a_positional_left_out_is_missing),
    cmocka_unit_test(test_bad_values_of_every_kind_are_refused),
    cmocka_unit_test(test_checks_come_in_argv_order_or_after_the_line),
    cmocka_unit_test(test_the_rest_of_the_line_is_the_command),
    cmocka_unit_test(test_anywhere_flags_are_taken_before_a_double_dash),
    cmocka_unit_test(test_the_ssh_rules_refuse_what_they_should),
    cmocka_unit_test(test_finish_checks_across_values),
    cmocka_unit_test(test_a_spec_beyond_the_limits_is_refused),
    cmocka_unit_test(test_help_lists_the_options_of_the_spec),
    cmocka_unit_test(test_help_stops_where_the_command_starts),
    cmocka_unit_test(test_help_counts_words_of_any_number),
    cmocka_unit_test(test_the_pointer_based_form_parses_as_before),
};

TL_TEST_MAIN(tests)
