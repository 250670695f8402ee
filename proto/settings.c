/*
 * Settings as a table (proto/settings.h): checked, layered, shown.
 */
#include "proto/settings.h"
#include "proto/addr.h"
#include "proto/conffile.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/log.h"
#include "proto/text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int tl_settings_init(tl_settings_t *settings, const tl_setting_def_t *defs)
{
    char why[256];
    memset(settings, 0, sizeof *settings);
    settings->defs = defs;
    while (defs[settings->count].key != NULL) {
        if (settings->count >= TL_SETTINGS_MAX)
            return TL_EINVAL;
        settings->count++;
    }
    for (size_t i = 0; i < settings->count; i++)
        if (defs[i].default_text != NULL &&
            tl_settings_set(settings, (int)i, defs[i].default_text, TL_SETTING_FROM_DEFAULT, 0, why,
                            sizeof why) != 0)
            return TL_EINVAL;
    return 0;
}

int tl_settings_index(const tl_settings_t *settings, const char *key)
{
    for (size_t i = 0; i < settings->count; i++)
        if (strcmp(settings->defs[i].key, key) == 0)
            return (int)i;
    return -1;
}

/* Valid UTF-8 with nothing to escape: a value is shown as it is in logs and `config show`. */
static int printable(const char *text)
{
    return tl_text_printable(text, strlen(text), TL_TEXT_LINE);
}

static int parse_bool(const char *text, uint64_t *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return TL_EINVAL;
}

/* The value checked by kind; *number as the kind defines it. */
static int check_value(const tl_setting_def_t *def, const char *value, tl_setting_source_t from,
                       uint64_t *number, char *why, size_t why_size)
{
    *number = 0;
    if (!printable(value)) {
        tl_format(why, why_size, "the value of '%s' holds a control character or is not UTF-8 text",
                  def->key);
        return TL_EINVAL;
    }
    switch (def->kind) {
    case TL_SETTING_TEXT: {
        size_t len = strlen(value);
        size_t most = def->max ? def->max : TL_SETTING_VALUE_MAX - 1;
        if (len < def->min || len > most) {
            tl_format(why, why_size, "'%s' wants %llu..%llu bytes", def->key,
                      (unsigned long long)def->min, (unsigned long long)most);
            return TL_EINVAL;
        }
        return 0;
    }
    case TL_SETTING_PATH:
        if (value[0] == '\0' || (from == TL_SETTING_FROM_FILE && value[0] != '/')) {
            tl_format(why, why_size, "'%s' wants an absolute path, got '%.300s'", def->key, value);
            return TL_EINVAL;
        }
        return 0;
    case TL_SETTING_UINT:
        if (tl_cli_parse_uint(value, def->min, def->max, number) != 0) {
            tl_format(why, why_size, "'%s' wants a number %llu..%llu, got '%.300s'", def->key,
                      (unsigned long long)def->min, (unsigned long long)def->max, value);
            return TL_EINVAL;
        }
        return 0;
    case TL_SETTING_DURATION:
        if (def->min == 0 && (strcmp(value, "0") == 0 || strcmp(value, "0s") == 0))
            return 0;
        if (tl_cli_parse_duration(value, number) != 0 || *number < def->min || *number > def->max) {
            tl_format(why, why_size,
                      "'%s' wants a duration from %llus to %llus, like 90s, 15m or 2h; got "
                      "'%.300s'",
                      def->key, (unsigned long long)(def->min / 1000),
                      (unsigned long long)(def->max / 1000), value);
            return TL_EINVAL;
        }
        return 0;
    case TL_SETTING_ADDRESS: {
        struct sockaddr_storage address;
        if (tl_addr_parse(value, &address) != 0) {
            tl_format(why, why_size,
                      "'%s' wants ADDR:PORT (an IP address and a port%s), got "
                      "'%.300s'",
                      def->key, (def->flags & TL_SETTING_OFF) ? ", or off" : "", value);
            return TL_EINVAL;
        }
        return 0;
    }
    case TL_SETTING_LEVEL: {
        enum tl_log_level level;
        if (tl_log_parse_level(value, &level) != 0 || level == TL_LOG_OFF) {
            tl_format(why, why_size, "'%s' wants debug, info, warn or error, got '%.300s'",
                      def->key, value);
            return TL_EINVAL;
        }
        *number = (uint64_t)level;
        return 0;
    }
    case TL_SETTING_BOOL:
        if (parse_bool(value, number) != 0) {
            tl_format(why, why_size, "'%s' wants yes or no, got '%.300s'", def->key, value);
            return TL_EINVAL;
        }
        return 0;
    }
    return TL_EINVAL;
}

int tl_settings_set(tl_settings_t *settings, int index, const char *value, tl_setting_source_t from,
                    int line, char *why, size_t why_size)
{
    if (index < 0 || (size_t)index >= settings->count) {
        tl_format(why, why_size, "unknown setting");
        return TL_EINVAL;
    }
    const tl_setting_def_t *def = &settings->defs[index];
    tl_setting_value_t *slot = &settings->value[index];
    uint64_t number = 0;
    if (strlen(value) >= TL_SETTING_VALUE_MAX) {
        tl_format(why, why_size, "the value of '%s' is longer than %d bytes", def->key,
                  TL_SETTING_VALUE_MAX - 1);
        return TL_EINVAL;
    }
    int off = (def->flags & TL_SETTING_OFF) && strcmp(value, "off") == 0;
    if (!off && check_value(def, value, from, &number, why, why_size) != 0)
        return TL_EINVAL;
    slot->set = !off;
    snprintf(slot->text, sizeof slot->text, "%s", off ? "" : value);
    slot->number = number;
    slot->from = from;
    slot->line = line;
    return 0;
}

struct parse_ctx {
    tl_settings_t *settings;
    const tl_conffile_t *file;
};

static int parse_line(void *ctx, const tl_conffile_line_t *line, char *why, size_t why_size)
{
    struct parse_ctx *parse = ctx;
    if (line->key == NULL)
        return 0;
    return tl_settings_set(parse->settings, tl_settings_index(parse->settings, line->key),
                           line->value, TL_SETTING_FROM_FILE, line->number, why, why_size);
}

int tl_settings_parse(tl_settings_t *settings, const char *path, const char *data, size_t len,
                      char *why, size_t why_size)
{
    const char *keys[TL_SETTINGS_MAX + 1];
    char known[1024];
    size_t used = 0;
    known[0] = '\0';
    for (size_t i = 0; i < settings->count; i++) {
        keys[i] = settings->defs[i].key;
        tl_format_append(known, sizeof known, &used, "%s%s", i ? ", " : "", keys[i]);
    }
    keys[settings->count] = NULL;
    /* No sections are known yet: "[web]" and the like are refused by name until they are. */
    static const char *const no_sections[] = {NULL};
    tl_conffile_t file = {
        .keys = keys, .known_text = known, .sections = no_sections, .flags = TL_CONFFILE_SECTIONS};
    tl_settings_t *parsed = malloc(sizeof *parsed);
    if (parsed == NULL) {
        tl_format(why, why_size, "%s: %s", path, tl_strerror(TL_ENOMEM));
        return TL_ENOMEM;
    }
    *parsed = *settings;
    snprintf(parsed->path, sizeof parsed->path, "%s", path);
    struct parse_ctx ctx = {.settings = parsed, .file = &file};
    int rc = tl_conffile_walk(&file, path, data, len, parse_line, &ctx, why, why_size);
    if (rc == 0)
        *settings = *parsed;
    free(parsed);
    return rc;
}

int tl_settings_load(tl_settings_t *settings, const char *path, int must_exist, char *why,
                     size_t why_size)
{
    char *data = NULL;
    size_t len = 0;
    snprintf(settings->path, sizeof settings->path, "%s", path);
    settings->file_read = 0;
    int rc =
        tl_fs_read_file(path, TL_SETTINGS_FILE_MAX, TL_FS_READ_ANY_TYPE, NULL, NULL, &data, &len);
    if (rc == -ENOENT && !must_exist)
        return 0;
    if (rc != 0) {
        if (rc == TL_EFULL)
            tl_format(why, why_size, "%s: larger than %d bytes; not a Tierline configuration file",
                      path, TL_SETTINGS_FILE_MAX);
        else
            tl_format(why, why_size, "%s: %s", path, tl_strerror(rc));
        return rc;
    }
    rc = tl_settings_parse(settings, path, data, len, why, why_size);
    if (rc == 0)
        settings->file_read = 1;
    free(data);
    return rc;
}

/* The option of spec called name, or NULL. */
static const tl_cli_arg_t *find_option(const tl_cli_spec_t *spec, const char *name)
{
    for (const tl_cli_arg_t *arg = spec->options; arg != NULL && arg->name != NULL; arg++)
        if (strcmp(arg->name, name) == 0)
            return arg;
    return NULL;
}

int tl_settings_from_args(tl_settings_t *settings, const tl_cli_spec_t *spec, const void *result,
                          char *why, size_t why_size)
{
    const char *base = result;
    for (size_t i = 0; i < settings->count; i++) {
        const tl_setting_def_t *def = &settings->defs[i];
        const tl_cli_arg_t *arg = def->option != NULL ? find_option(spec, def->option) : NULL;
        char number[32];
        const char *given = NULL;
        if (arg == NULL)
            continue;
        if (arg->word != 0) {
            memcpy(&given, base + arg->word - 1, sizeof given);
        } else if (arg->metavar == NULL && arg->out != 0) {
            int flag;
            memcpy(&flag, base + arg->out - 1, sizeof flag);
            given = flag ? "yes" : NULL;
        } else if (arg->kind == TL_CLI_TEXT && arg->out != 0) {
            memcpy(&given, base + arg->out - 1, sizeof given);
        } else if ((arg->kind == TL_CLI_UINT || arg->kind == TL_CLI_DURATION) && arg->out != 0) {
            uint64_t value;
            memcpy(&value, base + arg->out - 1, sizeof value);
            if (value != 0) {
                snprintf(number, sizeof number, "%llu", (unsigned long long)value);
                given = number;
            }
        }
        if (given == NULL)
            continue;
        char detail[512];
        if (tl_settings_set(settings, (int)i, given, TL_SETTING_FROM_COMMAND_LINE, 0, detail,
                            sizeof detail) != 0) {
            tl_format(why, why_size, "--%s: %s", def->option, detail);
            return TL_EINVAL;
        }
    }
    return 0;
}

const char *tl_settings_text(const tl_settings_t *settings, const char *key)
{
    int index = tl_settings_index(settings, key);
    return index >= 0 && settings->value[index].set ? settings->value[index].text : NULL;
}

uint64_t tl_settings_number(const tl_settings_t *settings, const char *key)
{
    int index = tl_settings_index(settings, key);
    return index >= 0 && settings->value[index].set ? settings->value[index].number : 0;
}

void tl_settings_origin(const tl_settings_t *settings, int index, char *out, size_t size)
{
    const tl_setting_value_t *value = &settings->value[index];
    switch (value->from) {
    case TL_SETTING_FROM_FILE:
        tl_format(out, size, "%s:%d", settings->path, value->line);
        break;
    case TL_SETTING_FROM_COMMAND_LINE:
        tl_format(out, size, "command line");
        break;
    default:
        tl_format(out, size, "default");
        break;
    }
}

static int same_value(const tl_setting_value_t *a, const tl_setting_value_t *b)
{
    return a->set == b->set && strcmp(a->text, b->text) == 0;
}

unsigned tl_settings_take(tl_settings_t *running, const tl_settings_t *fresh, unsigned *kept)
{
    unsigned changed = 0;
    *kept = 0;
    for (size_t i = 0; i < fresh->count && i < running->count; i++) {
        const tl_setting_def_t *def = &fresh->defs[i];
        tl_setting_value_t *now = &running->value[i];
        const tl_setting_value_t *asked = &fresh->value[i];
        if (same_value(now, asked)) {
            now->from = asked->from;
            now->line = asked->line;
        } else if (def->flags & TL_SETTING_RELOAD) {
            tl_log_info("setting changed key=%s old=%s new=%s", def->key,
                        now->set ? now->text : "off", asked->set ? asked->text : "off");
            *now = *asked;
            changed++;
        } else {
            tl_log_warn("setting needs a restart key=%s running=%s file=%s", def->key,
                        now->set ? now->text : "off", asked->set ? asked->text : "off");
            (*kept)++;
        }
    }
    snprintf(running->path, sizeof running->path, "%s", fresh->path);
    running->file_read = fresh->file_read;
    return changed;
}

int tl_settings_reload(tl_settings_t *running, tl_settings_make_fn make, void *ctx)
{
    char why[1024] = "";
    tl_settings_t *fresh = malloc(sizeof *fresh);
    if (fresh == NULL) {
        tl_log_error("reload refused, the settings stay as they were reason=%s",
                     tl_strerror(TL_ENOMEM));
        return TL_ENOMEM;
    }
    int rc = make(ctx, fresh, why, sizeof why);
    if (rc != 0) {
        tl_log_error("reload refused, the settings stay as they were problem=\"%s\"", why);
    } else {
        unsigned kept = 0;
        unsigned changed = tl_settings_take(running, fresh, &kept);
        tl_log_info("configuration reloaded path=%s changed=%u needs_restart=%u", fresh->path,
                    changed, kept);
    }
    free(fresh);
    return rc;
}

void tl_settings_show(const tl_settings_t *settings, FILE *out)
{
    for (size_t i = 0; i < settings->count; i++) {
        char origin[TL_SETTINGS_PATH_MAX + 32], line[TL_SETTING_VALUE_MAX + 64];
        const tl_setting_value_t *value = &settings->value[i];
        tl_settings_origin(settings, (int)i, origin, sizeof origin);
        const char *unset = settings->defs[i].unset_text;
        if (value->set || unset == NULL) {
            tl_format(line, sizeof line, "%s = %s", settings->defs[i].key,
                      value->set ? value->text : "off");
            fprintf(out, "%-40s # %s\n", line, origin);
        } else {
            tl_format(line, sizeof line, "# %s is not set", settings->defs[i].key);
            fprintf(out, "%-40s # %s: %s\n", line, origin, unset);
        }
    }
}

void tl_settings_report(const tl_settings_t *settings, int show, FILE *out)
{
    const char *note = settings->file_read ? "" : " (no file: the defaults)";
    if (!show) {
        fprintf(out, "%s: ok%s\n", settings->path, note);
        return;
    }
    fprintf(out, "# %s%s\n", settings->path, note);
    tl_settings_show(settings, out);
}

int tl_settings_file(const char *explicit_path, const char *env_name, const char *default_path,
                     char *out, size_t size, int *must_exist)
{
    const char *env = env_name != NULL ? getenv(env_name) : NULL;
    *must_exist = 1;
    if (explicit_path != NULL)
        return tl_format(out, size, "%s", explicit_path) == 0 ? 0 : TL_EFULL;
    if (env != NULL && env[0] != '\0')
        return tl_format(out, size, "%s", env) == 0 ? 0 : TL_EFULL;
    *must_exist = 0;
    return tl_format(out, size, "%s", default_path) == 0 ? 0 : TL_EFULL;
}

int tl_settings_read(tl_settings_t *settings, const tl_setting_def_t *defs,
                     const char *explicit_path, const char *env_name, const char *default_path,
                     char *why, size_t why_size)
{
    char path[TL_SETTINGS_PATH_MAX];
    int must_exist = 0;
    int rc = tl_settings_init(settings, defs);
    if (rc == 0)
        rc =
            tl_settings_file(explicit_path, env_name, default_path, path, sizeof path, &must_exist);
    if (rc != 0) {
        tl_format(why, why_size, "the configuration file's path: %s", tl_strerror(rc));
        return rc;
    }
    return tl_settings_load(settings, path, must_exist, why, why_size);
}
