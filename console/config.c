#include "console/config.h"
#include "proto/cli.h"
#include "proto/conffile.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const KEYS[] = {"relay", "port", "user", "identity", "host_key", "keepalive"};
#define KNOWN_KEYS "relay, port, user, identity, host_key, keepalive"
#define KEY_COUNT (sizeof KEYS / sizeof KEYS[0])

const char *tl_config_home(void)
{
    const char *home = getenv("HOME");
    if (home != NULL && home[0] == '/')
        return home;
    struct passwd *entry = getpwuid(getuid());
    return entry != NULL && entry->pw_dir != NULL && entry->pw_dir[0] == '/' ? entry->pw_dir : NULL;
}

static int key_index(const char *key)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(KEYS[i], key) == 0)
            return (int)i;
    return -1;
}

/* Printable ASCII without spaces: what a host, user or fingerprint may hold. */
static int is_word(const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f)
            return 0;
    return 1;
}

static int host_valid(const char *host)
{
    if (!is_word(host, TL_CONFIG_HOST_MAX))
        return 0;
    for (const char *p = host; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':' || c == '%'))
            return 0;
    }
    return 1;
}

static int parse_port(const char *text, unsigned *port)
{
    uint64_t value;
    if (tl_cli_parse_uint(text, 1, 65535, &value) != 0)
        return TL_EINVAL;
    *port = (unsigned)value;
    return 0;
}

/* HOST, HOST:PORT, [V6] or [V6]:PORT; a bare IPv6 address (two colons or more) is a host. */
static int parse_relay(const char *text, char host[TL_CONFIG_HOST_MAX + 1], unsigned *port,
                       int *has_port)
{
    const char *port_text = NULL;
    size_t host_len;
    *has_port = 0;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL)
            return TL_EINVAL;
        host_len = (size_t)(close - text - 1);
        if (close[1] == ':')
            port_text = close + 2;
        else if (close[1] != '\0')
            return TL_EINVAL;
        text++;
    } else {
        const char *colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            host_len = (size_t)(colon - text);
            port_text = colon + 1;
        } else {
            host_len = strlen(text);
        }
    }
    if (host_len == 0 || host_len > TL_CONFIG_HOST_MAX)
        return TL_EINVAL;
    char candidate[TL_CONFIG_HOST_MAX + 1];
    memcpy(candidate, text, host_len);
    candidate[host_len] = '\0';
    if (!host_valid(candidate))
        return TL_EINVAL;
    if (port_text != NULL) {
        if (parse_port(port_text, port) != 0)
            return TL_EINVAL;
        *has_port = 1;
    }
    memcpy(host, candidate, host_len + 1);
    return 0;
}

int tl_config_default_path(char *out, size_t size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg != NULL && xdg[0] == '/')
        return tl_format(out, size, "%s/tierline/config", xdg) == 0 ? 0 : TL_EFULL;
    const char *home = tl_config_home();
    if (home == NULL)
        return TL_EINVAL;
    return tl_format(out, size, "%s/.config/tierline/config", home) == 0 ? 0 : TL_EFULL;
}

void tl_config_defaults(tl_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->port = TL_CONFIG_DEFAULT_PORT;
    config->keepalive = TL_CONFIG_DEFAULT_KEEPALIVE;
    const char *user = getenv("USER");
    if (user == NULL || !is_word(user, TL_CONFIG_USER_MAX)) {
        struct passwd *entry = getpwuid(getuid());
        user = entry != NULL ? entry->pw_name : NULL;
    }
    if (user != NULL && is_word(user, TL_CONFIG_USER_MAX))
        snprintf(config->user, sizeof config->user, "%s", user);
    const char *home = tl_config_home();
    if (home != NULL) {
        if (tl_format(config->identity, sizeof config->identity, "%s/.ssh/id_ed25519", home) != 0)
            config->identity[0] = '\0';
    }
    if (tl_config_default_path(config->path, sizeof config->path) != 0)
        config->path[0] = '\0';
}

int tl_config_set(tl_config_t *config, const char *key, const char *value,
                  tl_config_source_t source, const char *origin, char *why, size_t why_size)
{
    switch (key_index(key)) {
    case 0: { /* relay */
        char host[TL_CONFIG_HOST_MAX + 1];
        unsigned port = 0;
        int has_port = 0;
        if (parse_relay(value, host, &port, &has_port) != 0) {
            tl_format(why, why_size, "'%.300s' is not HOST or HOST:PORT", value);
            return TL_EINVAL;
        }
        snprintf(config->relay, sizeof config->relay, "%s", host);
        config->relay_from = source;
        if (has_port) {
            config->port = port;
            config->port_from = source;
        }
        return 0;
    }
    case 1: /* port */
        if (parse_port(value, &config->port) != 0) {
            tl_format(why, why_size, "'%.300s' is not a port (1-65535)", value);
            return TL_EINVAL;
        }
        config->port_from = source;
        return 0;
    case 2: /* user */
        if (!is_word(value, TL_CONFIG_USER_MAX)) {
            tl_format(why, why_size, "'%.300s' is not a user name (1-%d characters, no spaces)",
                      value, TL_CONFIG_USER_MAX);
            return TL_EINVAL;
        }
        snprintf(config->user, sizeof config->user, "%s", value);
        config->user_from = source;
        return 0;
    case 3: { /* identity */
        char path[TL_CONFIG_PATH_MAX];
        int fitted = TL_EFULL;
        for (const char *p = value; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                tl_format(why, why_size, "the identity path holds a control character");
                return TL_EINVAL;
            }
        }
        if (value[0] == '\0') {
            tl_format(why, why_size, "the identity path is empty");
            return TL_EINVAL;
        }
        if (value[0] == '~' && value[1] == '/') {
            const char *home = tl_config_home();
            if (home == NULL) {
                tl_format(why, why_size, "'%.300s' starts with ~/ but there is no home directory",
                          value);
                return TL_EINVAL;
            }
            fitted = tl_format(path, sizeof path, "%s/%s", home, value + 2);
        } else {
            fitted = tl_format(path, sizeof path, "%s", value);
        }
        if (fitted != 0) {
            tl_format(why, why_size, "the identity path is longer than %d bytes",
                      TL_CONFIG_PATH_MAX - 1);
            return TL_EINVAL;
        }
        memcpy(config->identity, path, strlen(path) + 1);
        config->identity_from = source;
        return 0;
    }
    case 4: /* host_key */
        if (!tl_fingerprint_valid(value)) {
            tl_format(
                why, why_size,
                "'%.300s' is not a host key fingerprint (SHA256: and 43 base64 characters, as "
                "tierline-relay init prints it)",
                value);
            return TL_EINVAL;
        }
        snprintf(config->host_key, sizeof config->host_key, "%s", value);
        config->host_key_from = source;
        snprintf(config->host_key_origin, sizeof config->host_key_origin, "%s",
                 origin != NULL ? origin : "");
        return 0;
    case 5: { /* keepalive */
        uint64_t seconds = 0;
        if (tl_cli_parse_uint(value, 0, TL_CONFIG_KEEPALIVE_MAX, &seconds) != 0) {
            tl_format(why, why_size, "'%.300s' is not a number of seconds, 0..%d (0: none)", value,
                      TL_CONFIG_KEEPALIVE_MAX);
            return TL_EINVAL;
        }
        config->keepalive = (unsigned)seconds;
        config->keepalive_from = source;
        return 0;
    }
    default:
        tl_format(why, why_size, "unknown setting '%.64s' (known: " KNOWN_KEYS ")", key);
        return TL_EINVAL;
    }
}

/* ---- the file ------------------------------------------------------------------------ */

/* The whole file, whatever it is (/dev/null is an empty one), as the console has always read it. */
static int read_small_file(const char *path, char **out, size_t *out_len)
{
    return tl_fs_read_file(path, TL_CONFIG_FILE_MAX, TL_FS_READ_ANY_TYPE, NULL, NULL, out, out_len);
}

/* The console's file: its keys, no sections (proto/conffile.h). */
static const char *const FILE_KEYS[] = {"relay",    "port",      "user", "identity",
                                        "host_key", "keepalive", NULL};
static const tl_conffile_t console_file = {.keys = FILE_KEYS, .known_text = KNOWN_KEYS};

struct load_ctx {
    tl_config_t *config;
    const char *path;
};

static int load_line(void *ctx, const tl_conffile_line_t *line, char *why, size_t why_size)
{
    struct load_ctx *load = ctx;
    if (line->key == NULL)
        return 0;
    char origin[64];
    const char *base = strrchr(load->path, '/');
    snprintf(origin, sizeof origin, "%.50s:%d", base != NULL ? base + 1 : load->path, line->number);
    return tl_config_set(load->config, line->key, line->value, TL_CONFIG_FROM_FILE, origin, why,
                         why_size);
}

int tl_config_load_file(tl_config_t *config, const char *path, int *exists, char *why,
                        size_t why_size)
{
    char *data = NULL;
    size_t len = 0;
    *exists = 0;
    if (path != config->path)
        snprintf(config->path, sizeof config->path, "%s", path);
    int rc = read_small_file(path, &data, &len);
    if (rc == -ENOENT)
        return 0;
    if (rc != 0) {
        if (rc == TL_EFULL)
            tl_format(why, why_size, "%s: larger than %d bytes; not a Tierline config file", path,
                      TL_CONFIG_FILE_MAX);
        else
            tl_format(why, why_size, "%s: %s", path, tl_strerror(rc));
        return rc;
    }
    *exists = 1;
    rc = tl_config_parse(config, path, data, len, why, why_size);
    free(data);
    return rc;
}

int tl_config_parse(tl_config_t *config, const char *path, const char *data, size_t len, char *why,
                    size_t why_size)
{
    /* Parse into a copy: a malformed file changes nothing. */
    tl_config_t parsed = *config;
    struct load_ctx ctx = {.config = &parsed, .path = path};
    int rc = tl_conffile_walk(&console_file, path, data, len, load_line, &ctx, why, why_size);
    if (rc == 0)
        *config = parsed;
    return rc;
}

int tl_config_apply_env(tl_config_t *config, char *why, size_t why_size)
{
    static const struct {
        const char *variable, *key;
    } vars[] = {
        {"TIERLINE_RELAY", "relay"},       {"TIERLINE_PORT", "port"},
        {"TIERLINE_USER", "user"},         {"TIERLINE_IDENTITY", "identity"},
        {"TIERLINE_HOST_KEY", "host_key"}, {"TIERLINE_KEEPALIVE", "keepalive"},
    };
    char detail[512];
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *value = getenv(vars[i].variable);
        if (value == NULL || value[0] == '\0')
            continue;
        int rc = tl_config_set(config, vars[i].key, value, TL_CONFIG_FROM_ENV, vars[i].variable,
                               detail, sizeof detail);
        if (rc != 0) {
            tl_format(why, why_size, "%s: %s", vars[i].variable, detail);
            return rc;
        }
    }
    return 0;
}

void tl_config_format_address(const char *host, unsigned port, char *out, size_t size)
{
    if (strchr(host, ':') != NULL)
        snprintf(out, size, "[%s]:%u", host, port);
    else
        snprintf(out, size, "%s:%u", host, port);
}

/* ---- rewriting the file ------------------------------------------------------------------ */

struct update_ctx {
    FILE *out;
    const char *const *keys;
    const char *const *values;
    size_t count;
    unsigned done; /* bit i: keys[i] written */
};

static int update_line(void *ctx, const tl_conffile_line_t *line, char *why, size_t why_size)
{
    struct update_ctx *update = ctx;
    const char *key = line->key;
    (void)why;
    (void)why_size;
    if (key != NULL) {
        for (size_t i = 0; i < update->count; i++) {
            if (strcmp(update->keys[i], key) != 0)
                continue;
            if (update->values[i] != NULL)
                fprintf(update->out, "%s = %s\n", key, update->values[i]);
            update->done |= 1u << i;
            return 0;
        }
    }
    fwrite(line->raw, 1, line->raw_len, update->out);
    fputc('\n', update->out);
    return 0;
}

int tl_config_make_parent_dirs(const char *path, char *why, size_t why_size)
{
    char dir[TL_CONFIG_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            int rc = -errno;
            tl_format(why, why_size, "%s: %s", dir, tl_strerror(rc));
            return rc;
        }
        *p = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int rc = -errno;
        tl_format(why, why_size, "%s: %s", dir, tl_strerror(rc));
        return rc;
    }
    /* Only our own directory is tightened; the parents may be shared. */
    const char *base = strrchr(dir, '/');
    if (base != NULL && strcmp(base, "/tierline") == 0)
        chmod(dir, 0700);
    return 0;
}

int tl_config_update_file(const char *path, const char *const *keys, const char *const *values,
                          size_t count, char *why, size_t why_size)
{
    char *data = NULL, *text = NULL;
    size_t len = 0, text_len = 0;
    char tmp[TL_CONFIG_PATH_MAX + 16];
    int rc;
    FILE *out = NULL;
    tl_config_t scratch;

    if (count > KEY_COUNT) {
        tl_format(why, why_size, "too many settings");
        return TL_EINVAL;
    }
    tl_config_defaults(&scratch);
    for (size_t i = 0; i < count; i++) {
        char detail[512];
        if (key_index(keys[i]) < 0 ||
            (values[i] != NULL &&
             tl_config_set(&scratch, keys[i], values[i], TL_CONFIG_FROM_COMMAND_LINE, NULL, detail,
                           sizeof detail) != 0)) {
            tl_format(why, why_size, "%s: %s", keys[i],
                      key_index(keys[i]) < 0 ? "unknown" : detail);
            return TL_EINVAL;
        }
    }
    if (tl_format(tmp, sizeof tmp, "%s.tmp", path) != 0) {
        tl_format(why, why_size, "%s: path too long", path);
        return TL_EFULL;
    }
    rc = read_small_file(path, &data, &len);
    if (rc == -ENOENT) {
        rc = 0;
    } else if (rc != 0) {
        tl_format(why, why_size, "%s: %s", path, tl_strerror(rc));
        return rc;
    }
    if ((rc = tl_config_make_parent_dirs(path, why, why_size)) != 0)
        goto out;

    out = open_memstream(&text, &text_len);
    if (out == NULL) {
        rc = TL_ENOMEM;
        tl_format(why, why_size, "%s", tl_strerror(rc));
        goto out;
    }
    if (data == NULL)
        fprintf(out, "# Tierline console settings (tierline --help; docs/technicians.md)\n");
    struct update_ctx ctx = {.out = out, .keys = keys, .values = values, .count = count};
    if (data != NULL) {
        /* A file that ends without a newline gets one, so appended keys stand on their own line. */
        size_t walk_len = len > 0 && data[len - 1] == '\n' ? len - 1 : len;
        if (len > 0 && (rc = tl_conffile_walk(&console_file, path, data, walk_len, update_line,
                                              &ctx, why, why_size)) != 0)
            goto out;
    }
    for (size_t i = 0; i < count; i++)
        if (!(ctx.done & (1u << i)) && values[i] != NULL)
            fprintf(out, "%s = %s\n", keys[i], values[i]);
    if (fclose(out) != 0) {
        out = NULL;
        rc = TL_ENOMEM;
        tl_format(why, why_size, "%s", tl_strerror(rc));
        goto out;
    }
    out = NULL;

    enum tl_fs_step step;
    rc = tl_fs_write_atomic(path, text, text_len, TL_FS_SYNC | TL_FS_NOFOLLOW, &step);
    if (rc != 0) {
        tl_format(why, why_size, "%s: %s", step == TL_FS_STEP_TEMP ? tmp : path, tl_strerror(rc));
        goto out;
    }
    /* The settings are saved; their directory's own sync is a bonus, not a condition. */
    char dir[TL_CONFIG_PATH_MAX];
    if (tl_fs_parent_dir(path, dir, sizeof dir) == 0)
        tl_fsync_dir(dir);
out:
    if (out != NULL)
        fclose(out);
    free(text);
    free(data);
    return rc;
}
