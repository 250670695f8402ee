/*
 * Command-line conventions shared by the three executables: --help and
 * --version answer on stdout and exit 0; an unknown command or option is a
 * usage error on stderr with exit status 2.
 *
 * Every command answers --help (or -h) itself, before it reads a file or
 * touches the network: its usage, summary, options and an example, all kept
 * in the program's command table (tl_cli_help_t) so help and commands cannot
 * drift apart.
 *
 * Commands as data. A command's arguments can be declared (tl_cli_spec_t):
 * each option's name, the value it takes, what kind of value and where it
 * goes, and its line of help; each positional word's kind and how many. One
 * parser, tl_cli_args_parse(), reads a command line against that spec into
 * the command's own result struct, or names one usage error; the same spec
 * writes the Options lines of --help (tl_cli_spec_help_write). The relay's
 * SSH commands and its admin commands are parsed by it; tl_cli_parse() below
 * is the same parser behind the older, pointer-based option list.
 */
#ifndef TL_CLI_H
#define TL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tl_buf;

#define TL_EXIT_OK 0
#define TL_EXIT_FAILURE 1
#define TL_EXIT_USAGE 2

/*
 * Handles the options every program has. Returns -1 if argv[1] is something
 * else (the caller goes on), otherwise the exit status to return from main.
 */
int tl_cli_common(int argc, char **argv, const char *program, const char *help_text);

/* Prints "PROGRAM: unknown command 'X'" and the hint to --help; returns TL_EXIT_USAGE. */
int tl_cli_unknown(const char *program, const char *what);

/* One option of a command: "--name VALUE" (value != NULL) or "--name" (flag != NULL). */
typedef struct tl_cli_option {
    const char *name; /* without the dashes */
    const char **value;
    int *flag;
} tl_cli_option_t;

/*
 * Parses argv[first..] against options; other words are positional, at most
 * max_positional of them (stored in positional, count in *count). "--" ends
 * the options. On a bad word prints "PROGRAM COMMAND: ..." and the usage to
 * stderr and returns TL_EXIT_USAGE; 0 otherwise. It is tl_cli_args_parse()
 * with a spec made from options (at most TL_CLI_OPTIONS_MAX of them).
 */
int tl_cli_parse(const char *program, const char *command, const char *usage, int argc, char **argv,
                 int first, const tl_cli_option_t *options, const char **positional,
                 int max_positional, int *count);

/* One command's help, as table data. */
typedef struct tl_cli_help {
    const char *usage;   /* "tickets --data DIR [--json]": without the program name */
    const char *summary; /* one line */
    /* One option a line, "--name VALUE<TAB>what it does\n"; NULL when there are none. */
    const char *options;
    const char *example; /* one or more whole command lines, each ending in '\n' */
} tl_cli_help_t;

/*
 * Whether the words argv[first..] ask for help: "--help" or "-h" among the
 * command's own words. Nothing after "--" is the command's own. For a command
 * that ends in another program's command line (run T-N [OPTIONS] COMMAND...),
 * give positional_max (how many positional words come before that command
 * line) and the options that take a value: the scan stops where the command
 * line starts, so "run T-1 ls --help" is ls's own --help. -1 and NULL
 * otherwise: then an option's value that reads "--help" asks for help too,
 * which at worst shows help where a command was meant.
 */
int tl_cli_wants_help(int argc, char **argv, int first, int positional_max,
                      const char *const *value_options);

/*
 * Writes help for a command: "usage: PROGRAM USAGE", the summary, the
 * options (and -h, --help) aligned, and the example. program may be NULL
 * (the relay's SSH commands have no program name).
 */
void tl_cli_help_write(FILE *out, const char *program, const tl_cli_help_t *help);

/* ---- commands as data -------------------------------------------------------------------- */

/* Where a parsed value goes in the caller's result struct; 0 means it is not kept. */
#define TL_CLI_AT(type, member) (offsetof(type, member) + 1)

/* Most words one TL_CLI_LIST positional holds. */
#define TL_CLI_WORDS_MAX 64
/* A positional that takes any number of words (its check decides how many are too many). */
#define TL_CLI_MANY 0x7fffffff
/* Most options and positionals in one spec. */
#define TL_CLI_OPTIONS_MAX 32
#define TL_CLI_POSITIONALS_MAX 8

/* Words kept as given, for a positional that takes several (TL_CLI_LIST). */
typedef struct tl_cli_words {
    int count;
    char *word[TL_CLI_WORDS_MAX];
} tl_cli_words_t;

/* What a value is, and what its field in the result struct holds. */
typedef enum tl_cli_kind {
    TL_CLI_TEXT = 0, /* const char *: the word; its length in min..max bytes when max > 0 */
    TL_CLI_UINT,     /* uint64_t: a decimal number in min..max */
    TL_CLI_DURATION, /* uint64_t: milliseconds ("90s", "15m", "2h", "7d", seconds), min..max */
    TL_CLI_WORD,     /* int: the index of the word in words[] */
    TL_CLI_CHECK,    /* whatever check() makes of the word */
    TL_CLI_LIST,     /* tl_cli_words_t: the words as given */
} tl_cli_kind_t;

/*
 * A value the program checks itself: 0 if word is good (and, if out is not
 * NULL, stored there); TL_EINVAL if not, optionally pointing *problem at a
 * text more precise than the argument's own (a printf-free template: "%s"
 * stands for the word).
 */
typedef int (*tl_cli_check_fn)(const char *word, void *out, const char **problem);

/* Argument flags. */
#define TL_CLI_REQUIRED 0x01 /* option: must be given ("--data DIR is required") */
#define TL_CLI_ANYWHERE 0x02 /* option (a flag): taken wherever it stands before a "--" word */
#define TL_CLI_ALONE 0x04    /* a bad value's problem is not followed by the usage line */
#define TL_CLI_OPTIONAL 0x08 /* positional: may be left out */
#define TL_CLI_REST 0x10     /* positional: takes every word from where it starts, options too */

/* One option or one positional argument. */
typedef struct tl_cli_arg {
    const char *name;    /* option: "tier" for --tier; positional: what help calls it, "T-N" */
    char letter;         /* option: 'o' for -o as well; 0 for none */
    const char *metavar; /* option: "N" when it takes a value; NULL for a flag (an int set to 1) */
    const char *help;    /* option: its line in --help; NULL: accepted but not listed */
    unsigned flags;      /* TL_CLI_REQUIRED ... */
    int most;            /* positional: most words it takes; 0 means one */
    tl_cli_kind_t kind;
    size_t out;               /* TL_CLI_AT() of the parsed value (a flag's int); 0: not kept */
    size_t word;              /* TL_CLI_AT() of a const char * for the word as given; 0: not kept */
    uint64_t min, max;        /* TL_CLI_UINT, TL_CLI_DURATION: the range; TL_CLI_TEXT: bytes */
    const char *const *words; /* TL_CLI_WORD: the words allowed, NULL-terminated */
    tl_cli_check_fn check;    /* TL_CLI_CHECK */
    /* What a bad or missing value is told ("%s" stands for the word); NULL: the usage line
     * alone says it. */
    const char *problem;
} tl_cli_arg_t;

/*
 * Spec flags. TL_CLI_IN_ORDER: each value is checked as it is read, so the
 * first bad word on the line is the one named (the relay's SSH commands).
 * Without it, the whole line is read first (words out of place are named
 * then), then required options are checked, then option values in the
 * spec's order, then positionals (the admin commands); a positional of
 * several words is checked as it is read either way.
 */
#define TL_CLI_IN_ORDER 0x01
#define TL_CLI_DASH_WORDS 0x02  /* a "--word" that is none of the options is a positional */
#define TL_CLI_TERSE 0x04       /* an unknown option or a word too many gets the usage alone */
#define TL_CLI_DOUBLE_DASH 0x08 /* "--" ends the options: every later word is positional */

/* A command's arguments. */
typedef struct tl_cli_spec {
    const tl_cli_arg_t *options;     /* ended by an entry without a name; NULL: none */
    const tl_cli_arg_t *positionals; /* in order, ended likewise; NULL: none */
    unsigned flags;                  /* TL_CLI_IN_ORDER ... */
    int options_after;               /* options count only after this many positional words */
    const char *dashes_help;         /* with TL_CLI_DOUBLE_DASH: help's "--" line; NULL: none */
    /* After a good parse, checks that span values; as tl_cli_check_fn, on the whole result. */
    int (*finish)(void *result, const char **problem);
} tl_cli_spec_t;

/* What went wrong (tl_cli_error_t.code). */
enum tl_cli_failure {
    TL_CLI_UNKNOWN_OPTION = 1, /* word: "--bogus" */
    TL_CLI_MISSING_VALUE,      /* arg, and word: the option as typed, last on the line */
    TL_CLI_UNEXPECTED,         /* word: one word more than the positionals take */
    TL_CLI_MISSING_OPTION,     /* arg: a TL_CLI_REQUIRED option left out */
    TL_CLI_MISSING_WORD,       /* arg: a positional left out; problem if it has one */
    TL_CLI_BAD_VALUE,          /* arg (NULL from finish) and word: problem says what */
    TL_CLI_SPEC,               /* the spec itself is beyond this parser's limits */
};

typedef struct tl_cli_error {
    int code;                /* enum tl_cli_failure; 0 after a good parse */
    const tl_cli_arg_t *arg; /* the option or positional concerned, if any */
    const char *word;        /* the word concerned, if any */
    const char *problem;     /* the arg's or check's text ("%s": word), if any */
    int usage;               /* the usage line follows the problem */
} tl_cli_error_t;

/*
 * Reads argv[0..argc) (the words after the command's name) against spec,
 * filling the fields of result that the spec names; fields of options not
 * given keep what the caller put there (its defaults). 0, or TL_EINVAL with
 * *error saying why; result may then be partly filled.
 */
int tl_cli_args_parse(const tl_cli_spec_t *spec, int argc, char **argv, void *result,
                      tl_cli_error_t *error);

/* Writes template with its "%s" (if any) replaced by word. */
void tl_cli_problem_write(FILE *out, const char *problem, const char *word);

/*
 * Writes a usage error as the programs do: "PROGRAM COMMAND: what\n" (unknown
 * option, missing value, unexpected argument, a required option, or the
 * problem), then "usage: PROGRAM USAGE\n" unless the problem stands alone.
 * Returns TL_EXIT_USAGE.
 */
int tl_cli_error_write(FILE *out, const char *program, const char *command, const char *usage,
                       const tl_cli_spec_t *spec, const tl_cli_error_t *error);

/* The Options lines of spec, in tl_cli_help_t.options form, appended to out. */
int tl_cli_spec_options(const tl_cli_spec_t *spec, struct tl_buf *out);

/* tl_cli_help_write with the options written from spec. */
void tl_cli_spec_help_write(FILE *out, const char *program, const char *usage, const char *summary,
                            const tl_cli_spec_t *spec, const char *example);

/*
 * tl_cli_wants_help for a command declared by spec (argv[first..] its own
 * words): a command whose last positional takes the rest of the line (run's
 * COMMAND...) stops where that starts, skipping its options' values.
 */
int tl_cli_spec_wants_help(const tl_cli_spec_t *spec, int argc, char **argv, int first);

/* "90s", "15m", "2h", "7d" or plain seconds, into milliseconds; TL_EINVAL otherwise. */
int tl_cli_parse_duration(const char *text, uint64_t *ms);
/* A decimal number within [min, max]; TL_EINVAL otherwise. */
int tl_cli_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

#endif
