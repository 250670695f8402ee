/*
 * A program's settings as a table: /etc/tierline/relay.conf and
 * /etc/tierline/agent.conf (docs/configuration.md), read with
 * proto/conffile.h and overridden by the command line.
 *
 * Each setting is one entry { key, command-line option, kind, range,
 * default, whether it can change while the program runs, help }. Values are
 * checked the same way wherever they come from, and each remembers where it
 * came from (built-in default, FILE:LINE or the command line), so `config
 * show` can say so and a reload can tell what changed. The file is parsed
 * into a copy: a file with a fault changes nothing.
 */
#ifndef TL_SETTINGS_H
#define TL_SETTINGS_H

#include "proto/cli.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TL_SETTINGS_MAX 48
#define TL_SETTING_VALUE_MAX 1024
#define TL_SETTINGS_PATH_MAX 4096
/* A configuration file is small; anything bigger is not ours. */
#define TL_SETTINGS_FILE_MAX (64 * 1024)

typedef enum tl_setting_kind {
    TL_SETTING_TEXT = 0, /* printable text, min..max bytes (max 0: up to the value's room) */
    TL_SETTING_PATH,     /* a path; from a file it must be absolute */
    TL_SETTING_UINT,     /* a decimal number in min..max */
    TL_SETTING_DURATION, /* "90s", "15m", "2h", "1d" or seconds (0 allowed if min is 0): ms */
    TL_SETTING_ADDRESS,  /* ADDR:PORT, [V6]:PORT */
    TL_SETTING_LEVEL,    /* debug, info, warn or error */
    TL_SETTING_BOOL,     /* yes or no (true/false, on/off too) */
} tl_setting_kind_t;

/* Entry flags. */
#define TL_SETTING_RELOAD 0x01 /* takes effect at run time when the file is read again */
#define TL_SETTING_OFF 0x02    /* "off" unsets it (an address that is not served) */

typedef struct tl_setting_def {
    const char *key;    /* in the file: "ssh_listen" */
    const char *option; /* on the command line, without dashes; NULL: the file only */
    tl_setting_kind_t kind;
    uint64_t min, max;        /* UINT, DURATION (ms), TEXT (bytes) */
    const char *default_text; /* as it would be written; NULL: unset */
    unsigned flags;
    const char *help;       /* one line for `config show` and the example files */
    const char *unset_text; /* what an unset value means, for `config show`; NULL: "off" */
} tl_setting_def_t;

typedef enum tl_setting_source {
    TL_SETTING_FROM_DEFAULT = 0,
    TL_SETTING_FROM_FILE,
    TL_SETTING_FROM_COMMAND_LINE,
} tl_setting_source_t;

typedef struct tl_setting_value {
    int set; /* 0: unset (no default, or "off") */
    char text[TL_SETTING_VALUE_MAX];
    uint64_t number; /* UINT, DURATION (ms), LEVEL (enum tl_log_level), BOOL */
    tl_setting_source_t from;
    int line; /* FROM_FILE: the line */
} tl_setting_value_t;

typedef struct tl_settings {
    const tl_setting_def_t *defs; /* ended by an entry without a key */
    size_t count;
    char path[TL_SETTINGS_PATH_MAX]; /* the file read, whether or not it existed */
    int file_read;                   /* the file existed and was read */
    tl_setting_value_t value[TL_SETTINGS_MAX];
} tl_settings_t;

/* defs' defaults, no file. 0, or TL_EINVAL if defs is beyond TL_SETTINGS_MAX or a default is bad
 * (a bug). */
int tl_settings_init(tl_settings_t *settings, const tl_setting_def_t *defs);

/* The index of key in the table, or -1. */
int tl_settings_index(const tl_settings_t *settings, const char *key);

/* Checks and sets one value; the reason in why (without FILE:LINE) when it is bad. */
int tl_settings_set(tl_settings_t *settings, int index, const char *value, tl_setting_source_t from,
                    int line, char *why, size_t why_size);

/* Parses a file's text (len bytes) into settings; nothing changes unless all of it is good. */
int tl_settings_parse(tl_settings_t *settings, const char *path, const char *data, size_t len,
                      char *why, size_t why_size);

/*
 * Reads and parses path. A missing file is fine unless must_exist (then
 * "PATH: No such file or directory"). Errors in why as "PATH: reason" or
 * "PATH:LINE: reason".
 */
int tl_settings_load(tl_settings_t *settings, const char *path, int must_exist, char *why,
                     size_t why_size);

/*
 * The options of a command line parsed by spec into result
 * (tl_cli_args_parse) that name a setting and were given: a word left NULL,
 * a number or flag left 0 was not given (the caller zeroes result first).
 */
int tl_settings_from_args(tl_settings_t *settings, const tl_cli_spec_t *spec, const void *result,
                          char *why, size_t why_size);

/* The value's text, or NULL when unset. */
const char *tl_settings_text(const tl_settings_t *settings, const char *key);
/* The value's number, 0 when unset. */
uint64_t tl_settings_number(const tl_settings_t *settings, const char *key);

/* "default", "FILE:LINE" or "command line": where value index came from. */
void tl_settings_origin(const tl_settings_t *settings, int index, char *out, size_t size);

/*
 * A reload: the values of fresh that differ from running's and may change at
 * run time (TL_SETTING_RELOAD) go into running, each logged "setting changed";
 * the others keep their running value and are logged as needing a restart.
 * Returns how many changed; *kept: how many need a restart.
 */
unsigned tl_settings_take(tl_settings_t *running, const tl_settings_t *fresh, unsigned *kept);

/* Makes a program's settings: the defaults, the file, the command line. */
typedef int (*tl_settings_make_fn)(void *ctx, tl_settings_t *settings, char *why, size_t why_size);

/*
 * On SIGHUP: makes the settings again with make and takes them into running
 * (tl_settings_take), logging the outcome. 0 when they were taken (the
 * caller then applies running); non-zero when the file has a fault or memory
 * ran out: nothing changed, and the log says why with FILE:LINE.
 */
int tl_settings_reload(tl_settings_t *running, tl_settings_make_fn make, void *ctx);

/*
 * What `config check` prints for a file that parsed ("FILE: ok"), or with show
 * what `config show` prints: "# FILE", then tl_settings_show().
 */
void tl_settings_report(const tl_settings_t *settings, int show, FILE *out);

/* Every setting as "key = value  # origin" lines ("off" when unset). */
void tl_settings_show(const tl_settings_t *settings, FILE *out);

/*
 * A program's settings made from defs and its file: the defaults, then the
 * file chosen as tl_settings_file() does, loaded (a missing default file is
 * fine). Errors in why as tl_settings_load() puts them.
 */
int tl_settings_read(tl_settings_t *settings, const tl_setting_def_t *defs,
                     const char *explicit_path, const char *env_name, const char *default_path,
                     char *why, size_t why_size);

/*
 * The file to read: explicit if given, else $env_name if set and not empty,
 * else default_path. *must_exist: 1 for an explicit file or the variable's.
 */
int tl_settings_file(const char *explicit_path, const char *env_name, const char *default_path,
                     char *out, size_t size, int *must_exist);

#endif
