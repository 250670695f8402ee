/*
 * The console's settings: where the relay is, who the technician is, which
 * key signs in, and the relay's pinned host key (docs/technicians.md, "The
 * console").
 *
 * Settings come from four layers, each overriding the one before: built-in
 * defaults, the config file (~/.config/tierline/config, or under
 * $XDG_CONFIG_HOME), the environment (TIERLINE_RELAY, TIERLINE_PORT,
 * TIERLINE_USER, TIERLINE_IDENTITY, TIERLINE_HOST_KEY) and the command line.
 * Every layer goes through tl_config_set(), so a value is validated the same
 * way wherever it came from, and the record remembers where each value came
 * from so messages can say so.
 *
 * The file holds "key = value" lines; blank lines and lines starting with '#'
 * are ignored. Anything else - a line without '=', an unknown key, a bad
 * value, a key given twice, an over-long line - is an error naming FILE:LINE.
 * tl_config_update_file() rewrites the file in place (0600, directory 0700),
 * keeping comments and the other keys, so `tierline setup` and saving a
 * trusted host key never lose what the user wrote.
 */
#ifndef TL_CONSOLE_CONFIG_H
#define TL_CONSOLE_CONFIG_H

#include "proto/conffile.h"
#include "proto/keys.h"

#include <stddef.h>

#define TL_CONFIG_DEFAULT_PORT 2222
/* Seconds between keepalives to the relay while a command runs; 0 turns them off. */
#define TL_CONFIG_DEFAULT_KEEPALIVE 15
#define TL_CONFIG_KEEPALIVE_MAX 3600
#define TL_CONFIG_HOST_MAX 253
#define TL_CONFIG_USER_MAX 64
#define TL_CONFIG_PATH_MAX 4096
/* The config file is small; anything bigger is not ours. */
#define TL_CONFIG_FILE_MAX (64 * 1024)
#define TL_CONFIG_LINE_MAX TL_CONFFILE_LINE_MAX

/* Where a setting came from, weakest first. */
typedef enum tl_config_source {
    TL_CONFIG_FROM_DEFAULT = 0,
    TL_CONFIG_FROM_FILE,
    TL_CONFIG_FROM_ENV,
    TL_CONFIG_FROM_COMMAND_LINE,
} tl_config_source_t;

typedef struct tl_config {
    char path[TL_CONFIG_PATH_MAX]; /* the config file, whether or not it exists */
    char relay[TL_CONFIG_HOST_MAX + 1];
    unsigned port;
    char user[TL_CONFIG_USER_MAX + 1];
    char identity[TL_CONFIG_PATH_MAX];
    char host_key[TL_FINGERPRINT_LEN]; /* "" when nothing is pinned */
    unsigned keepalive;                /* seconds; 0: none */
    tl_config_source_t keepalive_from;
    tl_config_source_t relay_from, port_from, user_from, identity_from, host_key_from;
    char host_key_origin[64]; /* "TIERLINE_HOST_KEY", "--host-key" or "FILE:LINE" */
} tl_config_t;

/*
 * The config file's path: $XDG_CONFIG_HOME/tierline/config when that is an
 * absolute path, else $HOME/.config/tierline/config. TL_EINVAL if neither
 * variable (nor the password database) gives a home, TL_EFULL if too long.
 */
int tl_config_default_path(char *out, size_t size);

/* The home directory: $HOME when it is absolute, else the password database's; NULL if none. */
const char *tl_config_home(void);

/* Built-in defaults: port 2222, user $USER, identity ~/.ssh/id_ed25519, no relay, no pin. */
void tl_config_defaults(tl_config_t *config);

/*
 * One setting by its file key (relay, port, user, identity, host_key),
 * validated. "relay" takes HOST or HOST:PORT ("[::1]:2222" for IPv6) and sets
 * the port too when one is given. identity expands a leading "~/". origin
 * names the place for host_key_origin. On a bad value returns TL_EINVAL and
 * writes what is wrong (without the place) to why.
 */
int tl_config_set(tl_config_t *config, const char *key, const char *value,
                  tl_config_source_t source, const char *origin, char *why, size_t why_size);

/*
 * Reads the file at path (config->path is set to it). A missing file is not
 * an error: *exists is set to 0 and nothing changes. TL_EINVAL for a
 * malformed file, with "PATH:LINE: what" in why; negated errno if it cannot be
 * read; TL_EFULL if it is larger than TL_CONFIG_FILE_MAX.
 */
int tl_config_load_file(tl_config_t *config, const char *path, int *exists, char *why,
                        size_t why_size);

/*
 * The file's text, bytes in: what tl_config_load_file does once it has read
 * the file (path only names it in messages). For tests and fuzzing.
 */
int tl_config_parse(tl_config_t *config, const char *path, const char *data, size_t len, char *why,
                    size_t why_size);
/*
 * Applies the TIERLINE_* variables; empty ones are ignored. TL_EINVAL with
 * "VARIABLE: what" in why for a bad value.
 */
int tl_config_apply_env(tl_config_t *config, char *why, size_t why_size);

/*
 * Sets keys[i] to values[i] in the file at path (a NULL value removes the
 * key), keeping every other line; creates the file (0600) and its directory
 * (0700) if needed. The new file is written beside the old one, fsynced and
 * renamed over it. Values are validated as tl_config_set does. Errors as for
 * tl_config_load_file (a malformed existing file is not rewritten).
 */
int tl_config_update_file(const char *path, const char *const *keys, const char *const *values,
                          size_t count, char *why, size_t why_size);

/*
 * mkdir -p for the directory that holds path; the last directory, when it is
 * "tierline" (ours), is made 0700. 0, or negated errno with "DIR: what" in why.
 */
int tl_config_make_parent_dirs(const char *path, char *why, size_t why_size);

/* "HOST:PORT", with brackets around an IPv6 host. */
void tl_config_format_address(const char *host, unsigned port, char *out, size_t size);

#endif
