#include "proto/cli.h"

#include "proto/buf.h"
#include "proto/err.h"
#include "proto/format.h"
#include "tl_version.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int tl_cli_common(int argc, char **argv, const char *program, const char *help_text)
{
    if (argc < 2) {
        fputs(help_text, stderr);
        return TL_EXIT_USAGE;
    }
    const char *arg = argv[1];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        fputs(help_text, stdout);
        return TL_EXIT_OK;
    }
    if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
        printf("%s %s\n", program, TL_VERSION_STRING);
        return TL_EXIT_OK;
    }
    return -1;
}

int tl_cli_unknown(const char *program, const char *what)
{
    fprintf(stderr, "%s: unknown command '%s'\nTry '%s --help'.\n", program, what, program);
    return TL_EXIT_USAGE;
}

/* ---- the parser ----------------------------------------------------------------------- */

struct parse {
    const tl_cli_spec_t *spec;
    int argc;
    char **argv;
    char *result;
    tl_cli_error_t *error;
    int dashes_at; /* the first "--" word: TL_CLI_ANYWHERE options count only before it */
    const char *given[TL_CLI_OPTIONS_MAX]; /* each option's last word (a flag: its own) */
    char *waiting[TL_CLI_POSITIONALS_MAX]; /* a positional's word, checked after the line */
    int taken[TL_CLI_POSITIONALS_MAX];     /* words each positional took */
};

static int count_args(const tl_cli_arg_t *args)
{
    int count = 0;
    while (args != NULL && args[count].name != NULL)
        count++;
    return count;
}

static int most_words(const tl_cli_arg_t *positional)
{
    return positional->most > 0 ? positional->most : 1;
}

static void *field(const struct parse *p, size_t at)
{
    return at != 0 && p->result != NULL ? p->result + at - 1 : NULL;
}

static int fail(struct parse *p, int code, const tl_cli_arg_t *arg, const char *word,
                const char *problem, int usage)
{
    *p->error = (tl_cli_error_t){code, arg, word, problem, usage};
    return TL_EINVAL;
}

/* The option word names; TL_CLI_ANYWHERE options only when anywhere is set. */
static const tl_cli_arg_t *find_option(const tl_cli_spec_t *spec, const char *word, int anywhere)
{
    if (word[0] != '-')
        return NULL;
    for (const tl_cli_arg_t *option = spec->options; option != NULL && option->name != NULL;
         option++) {
        if (((option->flags & TL_CLI_ANYWHERE) != 0) != anywhere)
            continue;
        if (word[1] == '-' && strcmp(word + 2, option->name) == 0)
            return option;
        if (option->letter != 0 && word[1] == option->letter && word[2] == '\0')
            return option;
    }
    return NULL;
}

static int anywhere_at(const struct parse *p, int i)
{
    return i < p->dashes_at && find_option(p->spec, p->argv[i], 1) != NULL;
}

/* The next word after i that is not a TL_CLI_ANYWHERE option (those are taken first). */
static int next_word(const struct parse *p, int i)
{
    for (i++; i < p->argc && anywhere_at(p, i); i++)
        ;
    return i;
}

static int take_value(struct parse *p, const tl_cli_arg_t *arg, char *word)
{
    void *out = field(p, arg->out);
    const char *problem = NULL;
    uint64_t number = 0;
    int rc = 0;
    switch (arg->kind) {
    case TL_CLI_TEXT: {
        size_t len = strlen(word);
        if (arg->max > 0 && (len < arg->min || len > arg->max))
            rc = TL_EINVAL;
        else if (out != NULL)
            *(const char **)out = word;
        break;
    }
    case TL_CLI_UINT:
        rc = tl_cli_parse_uint(word, arg->min, arg->max, &number);
        if (rc == 0 && out != NULL)
            *(uint64_t *)out = number;
        break;
    case TL_CLI_DURATION:
        rc = tl_cli_parse_duration(word, &number);
        if (rc == 0 && (number < arg->min || (arg->max > 0 && number > arg->max)))
            rc = TL_EINVAL;
        if (rc == 0 && out != NULL)
            *(uint64_t *)out = number;
        break;
    case TL_CLI_WORD:
        rc = TL_EINVAL;
        for (int i = 0; arg->words != NULL && arg->words[i] != NULL; i++) {
            if (strcmp(arg->words[i], word) == 0) {
                if (out != NULL)
                    *(int *)out = i;
                rc = 0;
                break;
            }
        }
        break;
    case TL_CLI_CHECK:
        rc = arg->check != NULL ? arg->check(word, out, &problem) : TL_EINVAL;
        break;
    case TL_CLI_LIST: {
        tl_cli_words_t *list = out;
        if (list != NULL && list->count < TL_CLI_WORDS_MAX)
            list->word[list->count++] = word;
        break;
    }
    }
    if (rc != 0)
        return fail(p, TL_CLI_BAD_VALUE, arg, word, problem != NULL ? problem : arg->problem,
                    (arg->flags & TL_CLI_ALONE) == 0);
    if (arg->word != 0 && field(p, arg->word) != NULL)
        *(const char **)field(p, arg->word) = word;
    return 0;
}

static int take_option(struct parse *p, const tl_cli_arg_t *option, int *i)
{
    int index = (int)(option - p->spec->options);
    if (option->metavar == NULL) {
        int *flag = field(p, option->out);
        if (flag != NULL)
            *flag = 1;
        p->given[index] = p->argv[*i];
        return 0;
    }
    int at = next_word(p, *i);
    if (at >= p->argc)
        return fail(p, TL_CLI_MISSING_VALUE, option, p->argv[*i], option->problem, 1);
    *i = at;
    p->given[index] = p->argv[at];
    return p->spec->flags & TL_CLI_IN_ORDER ? take_value(p, option, p->argv[at]) : 0;
}

static int take_positional(struct parse *p, char *word, int *rest)
{
    const tl_cli_arg_t *positionals = p->spec->positionals;
    int index = 0;
    while (positionals != NULL && positionals[index].name != NULL &&
           p->taken[index] >= most_words(&positionals[index]))
        index++;
    if (positionals == NULL || positionals[index].name == NULL)
        return fail(p, TL_CLI_UNEXPECTED, NULL, word, NULL, 1);
    const tl_cli_arg_t *positional = &positionals[index];
    if (positional->flags & TL_CLI_REST)
        *rest = 1;
    p->taken[index]++;
    /* A positional of several words is checked as it is read, whatever the spec says. */
    if ((p->spec->flags & TL_CLI_IN_ORDER) || most_words(positional) > 1)
        return take_value(p, positional, word);
    p->waiting[index] = word;
    return 0;
}

static int scan(struct parse *p)
{
    const tl_cli_spec_t *spec = p->spec;
    int only_positional = 0, rest = 0, words = 0, rc = 0;
    for (int i = next_word(p, -1); rc == 0 && i < p->argc; i = next_word(p, i)) {
        char *word = p->argv[i];
        if (!rest && !only_positional && words >= spec->options_after) {
            if ((spec->flags & TL_CLI_DOUBLE_DASH) && strcmp(word, "--") == 0) {
                only_positional = 1;
                continue;
            }
            const tl_cli_arg_t *option = find_option(spec, word, 0);
            if (option != NULL) {
                rc = take_option(p, option, &i);
                continue;
            }
            if (word[0] == '-' && word[1] == '-' && !(spec->flags & TL_CLI_DASH_WORDS))
                return fail(p, TL_CLI_UNKNOWN_OPTION, NULL, word, NULL, 1);
        }
        words++;
        rc = take_positional(p, word, &rest);
    }
    return rc;
}

/* What is checked once the whole line is read. */
static int check_after(struct parse *p)
{
    const tl_cli_spec_t *spec = p->spec;
    int in_order = (spec->flags & TL_CLI_IN_ORDER) != 0, rc = 0;
    for (int i = 0; spec->options != NULL && spec->options[i].name != NULL; i++)
        if ((spec->options[i].flags & TL_CLI_REQUIRED) && p->given[i] == NULL)
            return fail(p, TL_CLI_MISSING_OPTION, &spec->options[i], NULL, NULL, 1);
    for (int i = 0; !in_order && rc == 0 && spec->options != NULL && spec->options[i].name != NULL;
         i++)
        if (spec->options[i].metavar != NULL && p->given[i] != NULL)
            rc = take_value(p, &spec->options[i], (char *)p->given[i]);
    for (int i = 0; rc == 0 && spec->positionals != NULL && spec->positionals[i].name != NULL;
         i++) {
        const tl_cli_arg_t *positional = &spec->positionals[i];
        if (p->taken[i] == 0 && !(positional->flags & TL_CLI_OPTIONAL))
            return fail(p, TL_CLI_MISSING_WORD, positional, NULL, positional->problem, 1);
        if (p->waiting[i] != NULL)
            rc = take_value(p, positional, p->waiting[i]);
    }
    if (rc == 0 && spec->finish != NULL) {
        const char *problem = NULL;
        if (spec->finish(p->result, &problem) != 0)
            rc = fail(p, TL_CLI_BAD_VALUE, NULL, NULL, problem, 1);
    }
    return rc;
}

/* Whether this parser can hold what spec declares. */
static int spec_fits(const tl_cli_spec_t *spec)
{
    if (count_args(spec->options) > TL_CLI_OPTIONS_MAX ||
        count_args(spec->positionals) > TL_CLI_POSITIONALS_MAX)
        return 0;
    for (const tl_cli_arg_t *option = spec->options; option != NULL && option->name != NULL;
         option++)
        if ((option->flags & TL_CLI_ANYWHERE) && option->metavar != NULL)
            return 0;
    for (const tl_cli_arg_t *positional = spec->positionals;
         positional != NULL && positional->name != NULL; positional++)
        if (positional->kind == TL_CLI_LIST && most_words(positional) > TL_CLI_WORDS_MAX)
            return 0;
    return 1;
}

int tl_cli_args_parse(const tl_cli_spec_t *spec, int argc, char **argv, void *result,
                      tl_cli_error_t *error)
{
    struct parse p = {.spec = spec, .argc = argc, .argv = argv, .result = result, .error = error};
    *error = (tl_cli_error_t){0};
    if (!spec_fits(spec))
        return fail(&p, TL_CLI_SPEC, NULL, NULL, NULL, 0);
    p.dashes_at = argc;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            p.dashes_at = i;
            break;
        }
    }
    /* --json and its like first, wherever they stand, so they are nobody's value. */
    for (int i = 0; i < p.dashes_at; i++) {
        const tl_cli_arg_t *option = find_option(spec, argv[i], 1);
        if (option != NULL)
            take_option(&p, option, &i);
    }
    int rc = scan(&p);
    return rc != 0 ? rc : check_after(&p);
}

void tl_cli_problem_write(FILE *out, const char *problem, const char *word)
{
    const char *at = strstr(problem, "%s");
    if (at == NULL || word == NULL) {
        fputs(problem, out);
        return;
    }
    fprintf(out, "%.*s%s%s", (int)(at - problem), problem, word, at + 2);
}

int tl_cli_error_write(FILE *out, const char *program, const char *command, const char *usage,
                       const tl_cli_spec_t *spec, const tl_cli_error_t *error)
{
    int terse = spec != NULL && (spec->flags & TL_CLI_TERSE);
    int usage_line = error->usage;
    const tl_cli_arg_t *arg = error->arg;
    switch (error->code) {
    case TL_CLI_UNKNOWN_OPTION:
    case TL_CLI_UNEXPECTED:
        if (!terse)
            fprintf(out, "%s %s: %s '%s'\n", program, command,
                    error->code == TL_CLI_UNKNOWN_OPTION ? "unknown option" : "unexpected argument",
                    error->word);
        break;
    case TL_CLI_MISSING_VALUE:
        fprintf(out, "%s %s: missing value for '%s'\n", program, command, error->word);
        break;
    case TL_CLI_MISSING_OPTION:
        fprintf(out, "%s %s: --%s%s%s is required\n", program, command, arg->name,
                arg->metavar != NULL ? " " : "", arg->metavar != NULL ? arg->metavar : "");
        break;
    case TL_CLI_SPEC:
        fprintf(out, "%s %s: the command's arguments are beyond the parser's limits\n", program,
                command);
        usage_line = 0;
        break;
    default:
        if (error->problem != NULL) {
            fprintf(out, "%s %s: ", program, command);
            tl_cli_problem_write(out, error->problem, error->word);
            fputc('\n', out);
        }
        break;
    }
    if (usage_line)
        fprintf(out, "usage: %s %s\n", program, usage);
    return TL_EXIT_USAGE;
}

/* The pointer-based option list: each option's word (or flag) lands in a slot of its own. */
struct legacy_result {
    tl_cli_words_t positional;
    const char *value[TL_CLI_OPTIONS_MAX];
    int flag[TL_CLI_OPTIONS_MAX];
};

int tl_cli_parse(const char *program, const char *command, const char *usage, int argc, char **argv,
                 int first, const tl_cli_option_t *options, const char **positional,
                 int max_positional, int *count)
{
    tl_cli_arg_t args[TL_CLI_OPTIONS_MAX + 1] = {{0}};
    struct legacy_result result = {0};
    int n = 0;
    for (; options != NULL && options[n].name != NULL && n < TL_CLI_OPTIONS_MAX; n++) {
        args[n].name = options[n].name;
        args[n].metavar = options[n].value != NULL ? "VALUE" : NULL;
        args[n].out = options[n].value != NULL
                          ? TL_CLI_AT(struct legacy_result, value) + (size_t)n * sizeof(char *)
                          : TL_CLI_AT(struct legacy_result, flag) + (size_t)n * sizeof(int);
    }
    tl_cli_arg_t words[2] = {{.name = "ARG",
                              .flags = TL_CLI_OPTIONAL,
                              .most = max_positional,
                              .kind = TL_CLI_LIST,
                              .out = TL_CLI_AT(struct legacy_result, positional)}};
    tl_cli_spec_t spec = {.options = args,
                          .positionals = max_positional > 0 ? words : NULL,
                          .flags = TL_CLI_DOUBLE_DASH};
    tl_cli_error_t error;
    *count = 0;
    if (options != NULL && options[n].name != NULL) {
        error = (tl_cli_error_t){.code = TL_CLI_SPEC};
        return tl_cli_error_write(stderr, program, command, usage, NULL, &error);
    }
    if (tl_cli_args_parse(&spec, argc - first, argv + first, &result, &error) != 0)
        return tl_cli_error_write(stderr, program, command, usage, &spec, &error);
    for (int i = 0; i < n; i++) {
        if (options[i].value != NULL && result.value[i] != NULL)
            *options[i].value = result.value[i];
        if (options[i].flag != NULL && result.flag[i])
            *options[i].flag = 1;
    }
    for (int i = 0; i < result.positional.count; i++)
        positional[i] = result.positional.word[i];
    *count = result.positional.count;
    return 0;
}

static int is_help_word(const char *word)
{
    return strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0;
}

static int takes_value(const char *const *value_options, const tl_cli_spec_t *spec,
                       const char *word)
{
    for (; value_options != NULL && *value_options != NULL; value_options++)
        if (strcmp(*value_options, word) == 0)
            return 1;
    const tl_cli_arg_t *option = spec != NULL ? find_option(spec, word, 0) : NULL;
    return option != NULL && option->metavar != NULL;
}

static int wants_help(int argc, char **argv, int first, int positional_max,
                      const char *const *value_options, const tl_cli_spec_t *spec)
{
    int positional = 0;
    for (int i = first; i < argc; i++) {
        const char *word = argv[i];
        if (strcmp(word, "--") == 0)
            return 0;
        if (is_help_word(word))
            return 1;
        if (takes_value(value_options, spec, word)) {
            i++;
            continue;
        }
        if (word[0] == '-' && word[1] == '-')
            continue;
        if (positional_max >= 0 && ++positional > positional_max)
            return 0; /* another program's command line starts here */
    }
    return 0;
}

int tl_cli_wants_help(int argc, char **argv, int first, int positional_max,
                      const char *const *value_options)
{
    return wants_help(argc, argv, first, positional_max, value_options, NULL);
}

int tl_cli_spec_wants_help(const tl_cli_spec_t *spec, int argc, char **argv, int first)
{
    int before_rest = 0;
    for (const tl_cli_arg_t *positional = spec->positionals;
         positional != NULL && positional->name != NULL; positional++) {
        if (positional->flags & TL_CLI_REST)
            return wants_help(argc, argv, first, before_rest, NULL, spec);
        /* TL_CLI_MANY words before the rest: as many as there are. */
        int most = most_words(positional);
        before_rest = most > INT_MAX - before_rest ? INT_MAX : before_rest + most;
    }
    return wants_help(argc, argv, first, -1, NULL, NULL);
}

/* The width of the option column: the longest "--name VALUE", within reason. */
static int option_width(const char *options)
{
    int width = (int)strlen("-h, --help");
    for (const char *line = options; line != NULL && *line != '\0';) {
        const char *tab = strchr(line, '\t'), *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        if (tab != NULL && tab < end && tab - line > width && tab - line <= 30)
            width = (int)(tab - line);
        line = *end != '\0' ? end + 1 : end;
    }
    return width;
}

void tl_cli_help_write(FILE *out, const char *program, const tl_cli_help_t *help)
{
    fprintf(out, "usage: %s%s%s\n\n%s\n", program != NULL ? program : "",
            program != NULL ? " " : "", help->usage, help->summary);
    int width = option_width(help->options);
    fprintf(out, "\nOptions:\n");
    for (const char *line = help->options; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        const char *tab = memchr(line, '\t', (size_t)(end - line));
        if (tab == NULL)
            fprintf(out, "  %.*s\n", (int)(end - line), line);
        else
            fprintf(out, "  %-*.*s  %.*s\n", width, (int)(tab - line), line, (int)(end - tab - 1),
                    tab + 1);
        line = *end != '\0' ? end + 1 : end;
    }
    fprintf(out, "  %-*s  %s\n", width, "-h, --help", "show this help and do nothing else");
    if (help->example != NULL && help->example[0] != '\0') {
        fprintf(out, "\nExample:\n");
        for (const char *line = help->example; *line != '\0';) {
            const char *end = strchr(line, '\n');
            if (end == NULL)
                end = line + strlen(line);
            fprintf(out, "  %.*s\n", (int)(end - line), line);
            line = *end != '\0' ? end + 1 : end;
        }
    }
}

int tl_cli_spec_options(const tl_cli_spec_t *spec, tl_buf_t *out)
{
    char head[128];
    int rc = 0;
    for (const tl_cli_arg_t *option = spec->options;
         rc == 0 && option != NULL && option->name != NULL; option++) {
        if (option->help == NULL)
            continue;
        char letter[8] = "";
        if (option->letter != 0)
            snprintf(letter, sizeof letter, "-%c, ", option->letter);
        if (tl_format(head, sizeof head, "%s--%s%s%s\t", letter, option->name,
                      option->metavar != NULL ? " " : "",
                      option->metavar != NULL ? option->metavar : "") != 0)
            return TL_EINVAL;
        if ((rc = tl_buf_put(out, head, strlen(head))) == 0 &&
            (rc = tl_buf_put(out, option->help, strlen(option->help))) == 0)
            rc = tl_buf_put_u8(out, '\n');
    }
    if (rc == 0 && (spec->flags & TL_CLI_DOUBLE_DASH) && spec->dashes_help != NULL &&
        (rc = tl_buf_put(out, "--\t", 3)) == 0 &&
        (rc = tl_buf_put(out, spec->dashes_help, strlen(spec->dashes_help))) == 0)
        rc = tl_buf_put_u8(out, '\n');
    return rc;
}

void tl_cli_spec_help_write(FILE *out, const char *program, const char *usage, const char *summary,
                            const tl_cli_spec_t *spec, const char *example)
{
    tl_buf_t *options = tl_buf_new(64 * 1024);
    int rc = options != NULL ? tl_cli_spec_options(spec, options) : TL_ENOMEM;
    if (rc == 0)
        rc = tl_buf_put_u8(options, '\0');
    tl_cli_help_t help = {usage, summary, rc == 0 ? (const char *)tl_buf_data(options) : NULL,
                          example};
    tl_cli_help_write(out, program, &help);
    tl_buf_free(options);
}

int tl_cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || *text == '\0' || strlen(text) > 19)
        return TL_EINVAL;
    uint64_t value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return TL_EINVAL;
        value = value * 10 + (uint64_t)(*p - '0');
    }
    if (value < min || value > max)
        return TL_EINVAL;
    *out = value;
    return 0;
}

int tl_cli_parse_duration(const char *text, uint64_t *ms)
{
    if (text == NULL)
        return TL_EINVAL;
    size_t len = strlen(text);
    if (len == 0 || len > 12)
        return TL_EINVAL;
    char digits[16];
    uint64_t unit = 1000;
    memcpy(digits, text, len + 1);
    switch (text[len - 1]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    default:
        len++;
        break;
    }
    digits[len - 1] = '\0';
    uint64_t value;
    if (tl_cli_parse_uint(digits, 1, 1000000000, &value) != 0)
        return TL_EINVAL;
    *ms = value * unit;
    return 0;
}
