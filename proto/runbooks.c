/*
 * The runbook catalogue (docs/consent.md "Runbooks").
 *
 * Loading reads every NAME.json in the directory, checks the metadata field
 * by field and the executable beside it, and keeps only entries that pass.
 * A bad entry costs only itself: it is logged with the reason and skipped.
 * Parameter patterns are compiled once here; a run request is matched
 * against them with the pattern wrapped as ^(...)$, so an alternation in a
 * pattern ("^a|b$") can never let a value through half-anchored.
 */
#include "proto/runbooks.h"

#include "proto/cli.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/log.h"
#include "proto/roles.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 48
#define PARAM_NAME_MAX_LEN 32
#define TEXT_MAX 1024
#define PATTERN_MAX 1024
/* What a pattern may cost the C library's regex engine (docs/consent.md). */
#define PATTERN_MAX_POSITIONS 512
#define PATTERN_MAX_GROUP_REPEAT 16
#define TIMEOUT_MIN_MS 1000u
#define TIMEOUT_MAX_MS (24u * 3600u * 1000u)

struct param {
    char *name;
    char *pattern;
    char *description;
    bool required;
    bool compiled;
    regex_t re;
};

struct tl_runbook {
    char *name;
    char *description;
    char *path;
    int min_role; /* TL_ROLE_TIER1, TIER2 or TIER3 (proto/roles.h) */
    bool privileged;
    uint64_t timeout_ms;
    struct param params[TL_RUNBOOKS_MAX_PARAMS];
    size_t param_count;
};

struct tl_runbooks {
    tl_runbook_t **entries; /* sorted by name */
    size_t count;
};

/* ---- names and roles ------------------------------------------------------------------ */

/* ^[a-z0-9][a-z0-9-]{0,47}$ */
static bool valid_runbook_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* ^[A-Z][A-Z0-9_]{0,31}$ */
static bool valid_param_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > PARAM_NAME_MAX_LEN || !(name[0] >= 'A' && name[0] <= 'Z'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/*
 * Copies untrusted text for a message or the activity display: at most max
 * bytes, control characters and quotes replaced, "..." when cut.
 */
static void excerpt(char *out, size_t out_size, const char *text, size_t max)
{
    size_t n = 0;
    size_t i = 0;
    if (out_size == 0)
        return;
    for (; text[i] != '\0' && i < max && n + 1 < out_size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = (c < 0x20 || c == 0x7f || c == '\'' || c == '"') ? '?' : (char)c;
    }
    if (text[i] != '\0') {
        for (int k = 0; k < 3 && n + 1 < out_size; k++)
            out[n++] = '.';
    }
    out[n] = '\0';
}

/* A description is one line of printable text, shown to technicians. */
static bool valid_text(const char *text, size_t len)
{
    if (len == 0 || len > TEXT_MAX || strlen(text) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* Ends with a '$' that is an anchor, not an escaped dollar sign. */
static bool ends_with_anchor(const char *pattern, size_t len)
{
    if (len < 2 || pattern[len - 1] != '$')
        return false;
    size_t backslashes = 0;
    for (size_t i = len - 1; i > 0 && pattern[i - 1] == '\\'; i--)
        backslashes++;
    return backslashes % 2 == 0;
}

/*
 * The C library compiles and matches a pattern in time that grows very fast
 * with stacked and nested repetition ("^a*****...$", "^((a*)*)*$",
 * "^(a*a*){0,128}$" each took from seconds to minutes), so a pattern is held
 * to a size and shape where both stay small. The scan follows POSIX ERE
 * syntax only as far as these counts need; regcomp() judges the rest.
 * Returns NULL, or what is wrong.
 */
struct pattern_frame {
    uint64_t positions; /* characters, '.' and bracket expressions, times their copies */
    int depth;          /* deepest repetition nesting inside */
};

static size_t skip_bracket(const char *p, size_t i, size_t len)
{
    i++; /* '[' */
    if (i < len && p[i] == '^')
        i++;
    if (i < len && p[i] == ']')
        i++;
    while (i < len && p[i] != ']') {
        if (p[i] == '[' && i + 1 < len && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
            char close = p[i + 1];
            i += 2;
            while (i + 1 < len && !(p[i] == close && p[i + 1] == ']'))
                i++;
            i += 2;
        } else {
            i++;
        }
    }
    return i < len ? i + 1 : len;
}

/* Digits at p[*at] as a number, saturating; how many there were. */
static size_t read_count(const char *p, size_t len, size_t *at, uint64_t *value)
{
    size_t digits = 0;
    *value = 0;
    for (; *at < len && p[*at] >= '0' && p[*at] <= '9'; (*at)++, digits++)
        if (*value < 1000000)
            *value = *value * 10 + (uint64_t)(p[*at] - '0');
    return digits;
}

/*
 * An interval at p[i] as glibc reads it: "{m}", "{m,}", "{,n}", "{m,n}" or
 * "{,}". Its length, and the copies it makes of what it repeats; 0 if there
 * is no interval there.
 */
static size_t interval(const char *p, size_t i, size_t len, uint64_t *copies)
{
    size_t at = i + 1;
    uint64_t m = 0, n = 0;
    size_t m_digits = read_count(p, len, &at, &m);
    if (at < len && p[at] == ',') {
        at++;
        if (read_count(p, len, &at, &n) == 0)
            n = m + 1; /* no upper bound: m copies and a star */
    } else if (m_digits == 0) {
        return 0;
    } else {
        n = m;
    }
    if (at >= len || p[at] != '}')
        return 0;
    *copies = n > 0 ? n : 1;
    return at + 1 - i;
}

static const char *pattern_too_costly(const char *p, size_t len)
{
    struct pattern_frame frames[PATTERN_MAX + 1];
    size_t open = 0; /* frames[0] is the whole pattern */
    frames[0] = (struct pattern_frame){0, 0};
    enum { NOTHING, ITEM, REPEATED } last = NOTHING;
    struct pattern_frame item = {0, 0};
    for (size_t i = 0; i < len;) {
        char c = p[i];
        uint64_t copies = 0;
        size_t step = 1;
        bool repetition = false;
        if (c == '*' || c == '?') {
            copies = 1;
            repetition = true;
        } else if (c == '+') {
            copies = 2;
            repetition = true;
        } else if (c == '{' && (step = interval(p, i, len, &copies)) > 0) {
            repetition = true;
        } else {
            step = 1;
        }
        if (repetition && last == REPEATED)
            return "repeats a repetition (as in a** or a{2}+)";
        if (repetition && last == ITEM) {
            if (item.depth >= 2)
                return "nests repetitions more than two deep";
            if (item.depth == 1 && copies > PATTERN_MAX_GROUP_REPEAT)
                return "repeats a group that holds a repetition more than 16 times";
            frames[open].positions += item.positions * (copies - 1);
            if (item.depth + 1 > frames[open].depth)
                frames[open].depth = item.depth + 1;
            last = REPEATED;
        } else if (c == '(' && open < PATTERN_MAX) {
            frames[++open] = (struct pattern_frame){0, 0};
            last = NOTHING;
        } else if (c == ')' && open > 0) {
            item = frames[open--];
            frames[open].positions += item.positions;
            if (item.depth > frames[open].depth)
                frames[open].depth = item.depth;
            last = ITEM;
        } else if (c == '|' || c == '^' || c == '$') {
            last = NOTHING;
        } else {
            /* A character, '.', an escaped character or a bracket expression: one position. */
            if (c == '[')
                step = skip_bracket(p, i, len) - i;
            else if (c == '\\' && i + 1 < len)
                step = 2;
            else if (repetition)
                step = 1; /* a repetition with nothing before it: regcomp decides */
            item = (struct pattern_frame){1, 0};
            frames[open].positions += 1;
            last = ITEM;
        }
        if (frames[open].positions > PATTERN_MAX_POSITIONS)
            return "expands to more than 512 positions";
        i += step;
    }
    while (open > 0) {
        frames[open - 1].positions += frames[open].positions;
        open--;
    }
    return frames[0].positions > PATTERN_MAX_POSITIONS ? "expands to more than 512 positions"
                                                       : NULL;
}

/* ---- one entry -------------------------------------------------------------------------- */

static void runbook_free(tl_runbook_t *rb)
{
    if (rb == NULL)
        return;
    for (size_t i = 0; i < rb->param_count; i++) {
        free(rb->params[i].name);
        free(rb->params[i].pattern);
        free(rb->params[i].description);
        if (rb->params[i].compiled)
            regfree(&rb->params[i].re);
    }
    free(rb->name);
    free(rb->description);
    free(rb->path);
    free(rb);
}

/* Checks that object is a JSON object with no key outside allowed; on error
 * the reason is not_object, or "unknown FIELD 'key'". */
static int check_fields(json_t *object, const char *const *allowed, size_t count,
                        const char *not_object, const char *field, char *reason, size_t reason_size)
{
    if (!json_is_object(object)) {
        snprintf(reason, reason_size, "%s", not_object);
        return TL_EINVAL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(object, key, value) {
        bool known = false;
        for (size_t i = 0; i < count && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            char shown[80];
            excerpt(shown, sizeof shown, key, 32);
            snprintf(reason, reason_size, "unknown %s '%s'", field, shown);
            return TL_EINVAL;
        }
    }
    return 0;
}

static int parse_param(json_t *item, struct param *param, char *reason, size_t reason_size)
{
    static const char *const keys[] = {"name", "pattern", "required", "description"};
    int rc = check_fields(item, keys, sizeof keys / sizeof keys[0], "a parameter is not an object",
                          "parameter field", reason, reason_size);
    if (rc != 0)
        return rc;
    json_t *name = json_object_get(item, "name");
    if (!json_is_string(name) || !valid_param_name(json_string_value(name))) {
        snprintf(reason, reason_size, "a parameter name does not match ^[A-Z][A-Z0-9_]{0,31}$");
        return TL_EINVAL;
    }
    const char *pname = json_string_value(name);
    json_t *pattern = json_object_get(item, "pattern");
    if (!json_is_string(pattern)) {
        snprintf(reason, reason_size, "parameter %s has no pattern", pname);
        return TL_EINVAL;
    }
    const char *ptext = json_string_value(pattern);
    size_t plen = json_string_length(pattern);
    if (plen > PATTERN_MAX || strlen(ptext) != plen || ptext[0] != '^' ||
        !ends_with_anchor(ptext, plen)) {
        snprintf(reason, reason_size,
                 "the pattern of parameter %s must start with ^ and end with $ (at most %d bytes)",
                 pname, PATTERN_MAX);
        return TL_EINVAL;
    }
    json_t *required = json_object_get(item, "required");
    if (required != NULL && !json_is_boolean(required)) {
        snprintf(reason, reason_size, "'required' of parameter %s is not true or false", pname);
        return TL_EINVAL;
    }
    json_t *description = json_object_get(item, "description");
    if (!json_is_string(description) ||
        !valid_text(json_string_value(description), json_string_length(description))) {
        snprintf(reason, reason_size, "parameter %s needs a description (one line, 1..%d bytes)",
                 pname, TEXT_MAX);
        return TL_EINVAL;
    }
    const char *costly = pattern_too_costly(ptext, plen);
    if (costly != NULL) {
        snprintf(reason, reason_size, "the pattern of parameter %s %s", pname, costly);
        return TL_EINVAL;
    }
    /* Matched as a whole: ^(pattern)$, so alternations stay inside the anchors. */
    char wrapped[PATTERN_MAX + 8];
    snprintf(wrapped, sizeof wrapped, "^(%s)$", ptext);
    rc = regcomp(&param->re, wrapped, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, NULL, why, sizeof why);
        snprintf(reason, reason_size, "the pattern of parameter %s does not compile: %s", pname,
                 why);
        return TL_EINVAL;
    }
    param->compiled = true;
    param->name = strdup(pname);
    param->pattern = strdup(ptext);
    param->description = strdup(json_string_value(description));
    param->required = json_is_true(required);
    if (param->name == NULL || param->pattern == NULL || param->description == NULL)
        return TL_ENOMEM;
    return 0;
}

/* Validates parsed metadata into rb; on error a one-line reason. */
static int parse_metadata(json_t *doc, const char *expected_name, tl_runbook_t *rb, char *reason,
                          size_t reason_size)
{
    static const char *const keys[] = {"name",       "description", "min_role",
                                       "privileged", "timeout",     "params"};
    int rc = check_fields(doc, keys, sizeof keys / sizeof keys[0],
                          "the metadata is not a JSON object", "field", reason, reason_size);
    if (rc != 0)
        return rc;
    json_t *name = json_object_get(doc, "name");
    if (!json_is_string(name) || strcmp(json_string_value(name), expected_name) != 0) {
        snprintf(reason, reason_size, "'name' must be '%s', as the file is named", expected_name);
        return TL_EINVAL;
    }
    json_t *description = json_object_get(doc, "description");
    if (!json_is_string(description) ||
        !valid_text(json_string_value(description), json_string_length(description))) {
        snprintf(reason, reason_size, "'description' must be one line of 1..%d bytes", TEXT_MAX);
        return TL_EINVAL;
    }
    rb->min_role = tl_role_parse(json_string_value(json_object_get(doc, "min_role")));
    if (!tl_role_is_min_role(rb->min_role)) {
        snprintf(reason, reason_size, "'min_role' must be tier1, tier2 or tier3");
        return TL_EINVAL;
    }
    json_t *privileged = json_object_get(doc, "privileged");
    if (!json_is_boolean(privileged)) {
        snprintf(reason, reason_size, "'privileged' must be true or false");
        return TL_EINVAL;
    }
    rb->privileged = json_is_true(privileged);
    json_t *timeout = json_object_get(doc, "timeout");
    rb->timeout_ms = TL_RUNBOOKS_DEFAULT_TIMEOUT_MS;
    if (timeout != NULL) {
        uint64_t ms = 0;
        if (!json_is_string(timeout) ||
            tl_cli_parse_duration(json_string_value(timeout), &ms) != 0 || ms < TIMEOUT_MIN_MS ||
            ms > TIMEOUT_MAX_MS) {
            snprintf(reason, reason_size,
                     "'timeout' must be a duration such as 90s or 2m, from 1s to 24h");
            return TL_EINVAL;
        }
        rb->timeout_ms = ms;
    }
    json_t *params = json_object_get(doc, "params");
    if (params == NULL)
        return 0;
    if (!json_is_array(params) || json_array_size(params) > TL_RUNBOOKS_MAX_PARAMS) {
        snprintf(reason, reason_size, "'params' must be an array of at most %d parameters",
                 TL_RUNBOOKS_MAX_PARAMS);
        return TL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(params); i++) {
        struct param *param = &rb->params[rb->param_count];
        rc = parse_param(json_array_get(params, i), param, reason, reason_size);
        if (param->compiled || param->name != NULL)
            rb->param_count++; /* runbook_free releases what was built */
        if (rc != 0)
            return rc;
        for (size_t k = 0; k + 1 < rb->param_count; k++) {
            if (strcmp(rb->params[k].name, param->name) == 0) {
                snprintf(reason, reason_size, "parameter %s is declared twice", param->name);
                return TL_EINVAL;
            }
        }
    }
    return 0;
}

/*
 * A catalogue file must be a regular file (not a link) that nobody but its
 * owner can change, owned by root or by the user the agent runs as.
 */
static const char *unsafe_file(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "is writable by group or others";
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return "is owned by neither root nor the agent's user";
    return NULL;
}

static int parse_json(const char *text, size_t size, json_t **out, char *reason, size_t reason_size)
{
    json_error_t error;
    *out = json_loadb(text, size, JSON_REJECT_DUPLICATES, &error);
    if (*out == NULL) {
        snprintf(reason, reason_size, "metadata is not valid JSON (line %d: %s)", error.line,
                 error.text);
        return TL_EINVAL;
    }
    return 0;
}

struct metadata_check {
    int opened;
    char *reason;
    size_t reason_size;
};

static int check_metadata_file(const struct stat *st, void *arg)
{
    struct metadata_check *check = arg;
    check->opened = 1;
    const char *unsafe = unsafe_file(st);
    if (unsafe != NULL) {
        snprintf(check->reason, check->reason_size, "metadata %s", unsafe);
        return TL_EDENIED;
    }
    return 0;
}

static int read_metadata(const char *path, json_t **out, char *reason, size_t reason_size)
{
    char *text = NULL;
    size_t size = 0;
    struct metadata_check check = {0, reason, reason_size};
    int rc = tl_fs_read_file(path, TL_RUNBOOKS_MAX_METADATA, TL_FS_READ_NOFOLLOW,
                             check_metadata_file, &check, &text, &size);
    if (rc == 0) {
        rc = parse_json(text, size, out, reason, reason_size);
    } else if (rc == TL_EFULL) {
        snprintf(reason, reason_size, "metadata is larger than %d bytes", TL_RUNBOOKS_MAX_METADATA);
        rc = TL_EINVAL;
    } else if (rc != TL_EDENIED && rc != TL_ENOMEM) {
        snprintf(reason, reason_size, "metadata cannot be %s: %s", check.opened ? "read" : "opened",
                 strerror(rc < 0 ? -rc : EIO));
        rc = TL_EIO;
    }
    free(text);
    return rc;
}

static int check_executable(const char *path, char *reason, size_t reason_size)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        snprintf(reason, reason_size, "executable is missing: %s", strerror(errno));
        return TL_ENOTFOUND;
    }
    const char *unsafe = unsafe_file(&st);
    if (unsafe != NULL) {
        snprintf(reason, reason_size, "executable %s", unsafe);
        return TL_EDENIED;
    }
    if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0 || access(path, X_OK) != 0) {
        snprintf(reason, reason_size, "executable lacks execute permission");
        return TL_EDENIED;
    }
    return 0;
}

static char *join_path(const char *dir, const char *name, const char *suffix)
{
    size_t len = strlen(dir) + 1 + strlen(name) + strlen(suffix) + 1;
    char *path = malloc(len);
    if (path != NULL)
        snprintf(path, len, "%s/%s%s", dir, name, suffix);
    return path;
}

/* The metadata's checks, and the description kept. */
static int parse_entry(json_t *doc, const char *name, tl_runbook_t *rb, char *reason,
                       size_t reason_size)
{
    int rc = parse_metadata(doc, name, rb, reason, reason_size);
    if (rc == 0 &&
        (rb->description = strdup(json_string_value(json_object_get(doc, "description")))) == NULL)
        rc = TL_ENOMEM;
    return rc;
}

/* Loads one entry; NULL (with the reason logged) when it is skipped. */
static tl_runbook_t *load_entry(const char *dir, const char *name, int *err)
{
    char reason[512] = "";
    json_t *doc = NULL;
    char *meta_path = join_path(dir, name, ".json");
    tl_runbook_t *rb = calloc(1, sizeof *rb);
    int rc = TL_ENOMEM;
    if (meta_path == NULL || rb == NULL)
        goto out;
    rb->name = strdup(name);
    rb->path = join_path(dir, name, "");
    if (rb->name == NULL || rb->path == NULL)
        goto out;
    rc = read_metadata(meta_path, &doc, reason, sizeof reason);
    if (rc == 0)
        rc = parse_entry(doc, name, rb, reason, sizeof reason);
    if (rc == 0)
        rc = check_executable(rb->path, reason, sizeof reason);
out:
    if (rc != 0) {
        if (rc == TL_ENOMEM)
            *err = TL_ENOMEM;
        else
            tl_log_warn("runbook skipped dir=%s name=%s reason=\"%s\"", dir, name, reason);
        runbook_free(rb);
        rb = NULL;
    }
    json_decref(doc);
    free(meta_path);
    return rb;
}

static int compare_entries(const void *a, const void *b)
{
    const tl_runbook_t *const *x = a;
    const tl_runbook_t *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

tl_runbooks_t *tl_runbooks_load(const char *dir, int *err)
{
    int rc = 0;
    tl_runbooks_t *catalogue = NULL;
    DIR *handle = NULL;
    if (dir == NULL) {
        rc = TL_EINVAL;
        goto out;
    }
    handle = opendir(dir);
    if (handle == NULL) {
        rc = -errno;
        tl_log_warn("runbook catalogue unreadable dir=%s reason=\"%s\"", dir, strerror(errno));
        goto out;
    }
    catalogue = calloc(1, sizeof *catalogue);
    if (catalogue == NULL || (catalogue->entries = calloc(TL_RUNBOOKS_MAX_ENTRIES,
                                                          sizeof *catalogue->entries)) == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len <= 5 || strcmp(entry->d_name + len - 5, ".json") != 0)
            continue;
        char name[NAME_MAX + 1];
        memcpy(name, entry->d_name, len - 5);
        name[len - 5] = '\0';
        if (!valid_runbook_name(name)) {
            char shown[80];
            excerpt(shown, sizeof shown, name, 64);
            tl_log_warn("runbook skipped dir=%s name=%s reason=\"the name does not match "
                        "^[a-z0-9][a-z0-9-]{0,47}$\"",
                        dir, shown);
            continue;
        }
        if (catalogue->count == TL_RUNBOOKS_MAX_ENTRIES) {
            tl_log_warn("runbook skipped dir=%s name=%s reason=\"the catalogue holds at most %d "
                        "runbooks\"",
                        dir, name, TL_RUNBOOKS_MAX_ENTRIES);
            continue;
        }
        int entry_err = 0;
        tl_runbook_t *rb = load_entry(dir, name, &entry_err);
        if (entry_err != 0) {
            rc = entry_err;
            goto out;
        }
        if (rb != NULL)
            catalogue->entries[catalogue->count++] = rb;
    }
    qsort(catalogue->entries, catalogue->count, sizeof *catalogue->entries, compare_entries);
    tl_log_info("runbook catalogue loaded dir=%s runbooks=%zu", dir, catalogue->count);
out:
    if (handle != NULL)
        closedir(handle);
    if (rc != 0) {
        tl_runbooks_free(catalogue);
        catalogue = NULL;
    }
    if (err != NULL)
        *err = rc;
    return catalogue;
}

tl_runbooks_t *tl_runbooks_from_metadata(const char *name, const char *text, size_t len, int *err,
                                         char *reason, size_t reason_size)
{
    int rc = TL_ENOMEM;
    json_t *doc = NULL;
    tl_runbook_t *rb = NULL;
    tl_runbooks_t *catalogue = calloc(1, sizeof *catalogue);
    snprintf(reason, reason_size, "%s", "");
    if (catalogue == NULL || (catalogue->entries = calloc(1, sizeof *catalogue->entries)) == NULL ||
        (rb = calloc(1, sizeof *rb)) == NULL)
        goto out;
    rc = TL_EINVAL;
    if (name == NULL || !valid_runbook_name(name)) {
        snprintf(reason, reason_size, "the name does not match ^[a-z0-9][a-z0-9-]{0,47}$");
        goto out;
    }
    if (len > TL_RUNBOOKS_MAX_METADATA) {
        snprintf(reason, reason_size, "metadata is larger than %d bytes", TL_RUNBOOKS_MAX_METADATA);
        goto out;
    }
    rc = TL_ENOMEM;
    if ((rb->name = strdup(name)) == NULL || (rb->path = strdup(name)) == NULL)
        goto out;
    rc = parse_json(text, len, &doc, reason, reason_size);
    if (rc == 0)
        rc = parse_entry(doc, name, rb, reason, reason_size);
    if (rc == 0) {
        catalogue->entries[catalogue->count++] = rb;
        rb = NULL;
    }
out:
    json_decref(doc);
    runbook_free(rb);
    if (rc != 0) {
        tl_runbooks_free(catalogue);
        catalogue = NULL;
    }
    if (err != NULL)
        *err = rc;
    return catalogue;
}

void tl_runbooks_free(tl_runbooks_t *catalogue)
{
    if (catalogue == NULL)
        return;
    for (size_t i = 0; i < catalogue->count; i++)
        runbook_free(catalogue->entries[i]);
    free(catalogue->entries);
    free(catalogue);
}

size_t tl_runbooks_count(const tl_runbooks_t *catalogue)
{
    return catalogue != NULL ? catalogue->count : 0;
}

const tl_runbook_t *tl_runbooks_find(const tl_runbooks_t *catalogue, const char *name)
{
    if (catalogue == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < catalogue->count; i++)
        if (strcmp(catalogue->entries[i]->name, name) == 0)
            return catalogue->entries[i];
    return NULL;
}

const char *tl_runbook_description(const tl_runbook_t *runbook)
{
    return runbook->description;
}

bool tl_runbook_privileged(const tl_runbook_t *runbook)
{
    return runbook->privileged;
}

/* ---- run requests ----------------------------------------------------------------------- */

static const struct param *find_param(const tl_runbook_t *rb, const char *name)
{
    for (size_t i = 0; i < rb->param_count; i++)
        if (strcmp(rb->params[i].name, name) == 0)
            return &rb->params[i];
    return NULL;
}

void tl_runbooks_run_release(tl_runbook_run_t *run)
{
    if (run == NULL)
        return;
    if (run->env != NULL)
        for (size_t i = 0; i < run->env_count; i++)
            free(run->env[i]);
    free(run->env);
    free(run->summary);
    memset(run, 0, sizeof *run);
}

/* Appends " NAME=VALUE" (the value as an excerpt) to the summary. */
static int summary_add(tl_buf_t *summary, const char *name, const char *value)
{
    char shown[96];
    excerpt(shown, sizeof shown, value, 64);
    int rc = tl_buf_put(summary, " ", 1);
    if (rc == 0)
        rc = tl_buf_put(summary, name, strlen(name));
    if (rc == 0)
        rc = tl_buf_put(summary, "=", 1);
    if (rc == 0)
        rc = tl_buf_put(summary, shown, strlen(shown));
    return rc;
}

int tl_runbooks_check(const tl_runbooks_t *catalogue, const char *name, json_t *args,
                      const char *role, bool as_root, tl_runbook_run_t *run, char *message,
                      size_t message_size)
{
    int rc = 0;
    char shown[96];
    char dummy[1];
    tl_buf_t *summary = NULL;
    size_t summary_len = 0;
    if (message == NULL || message_size == 0) {
        message = dummy;
        message_size = sizeof dummy;
    }
    message[0] = '\0';
    if (run == NULL)
        return TL_EINVAL;
    memset(run, 0, sizeof *run);
    const tl_runbook_t *rb = NULL;
    if (name == NULL || (rb = tl_runbooks_find(catalogue, name)) == NULL) {
        excerpt(shown, sizeof shown, name != NULL ? name : "", 64);
        snprintf(message, message_size, "no runbook named '%s' in this machine's catalogue", shown);
        return TL_ENOTFOUND;
    }
    int role_id = tl_role_parse(role);
    int rank = tl_role_runbook_rank(role_id);
    excerpt(shown, sizeof shown, role != NULL ? role : "", 16);
    if (rank == 0) {
        snprintf(message, message_size, "role '%s' may not run runbooks", shown);
        return TL_EDENIED;
    }
    if (rank < tl_role_runbook_rank(rb->min_role)) {
        snprintf(message, message_size, "runbook %s needs role %s or above, not %s", rb->name,
                 tl_role_name(rb->min_role), shown);
        return TL_EDENIED;
    }
    if (rb->privileged && !tl_role_can(role_id, TL_CAP_FIX_PRIVILEGED)) {
        snprintf(message, message_size, "runbook %s is privileged: it needs role tier3, not %s",
                 rb->name, shown);
        return TL_EDENIED;
    }
    if (rb->privileged && !as_root) {
        snprintf(message, message_size,
                 "runbook %s is privileged and the agent on this machine does not run as root",
                 rb->name);
        return TL_EDENIED;
    }
    if (args != NULL && !json_is_object(args)) {
        snprintf(message, message_size, "the arguments must be an object of \"NAME\":\"VALUE\"");
        return TL_EINVAL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(args, key, value) {
        const struct param *param = find_param(rb, key);
        if (param == NULL) {
            excerpt(shown, sizeof shown, key, 32);
            snprintf(message, message_size, "runbook %s has no parameter '%s'", rb->name, shown);
            return TL_EINVAL;
        }
        if (!json_is_string(value)) {
            snprintf(message, message_size, "parameter %s must be a string", param->name);
            return TL_EINVAL;
        }
        size_t len = json_string_length(value);
        if (len > TL_RUNBOOKS_MAX_VALUE) {
            snprintf(message, message_size, "parameter %s is longer than %d bytes", param->name,
                     TL_RUNBOOKS_MAX_VALUE);
            return TL_EINVAL;
        }
        if (strlen(json_string_value(value)) != len) {
            snprintf(message, message_size, "parameter %s contains a NUL byte", param->name);
            return TL_EINVAL;
        }
        if (regexec(&param->re, json_string_value(value), 0, NULL, 0) != 0) {
            excerpt(shown, sizeof shown, json_string_value(value), 64);
            snprintf(message, message_size, "parameter %s='%s' does not match %s (%s)", param->name,
                     shown, param->pattern, param->description);
            return TL_EINVAL;
        }
    }
    for (size_t i = 0; i < rb->param_count; i++) {
        if (rb->params[i].required && json_object_get(args, rb->params[i].name) == NULL) {
            snprintf(message, message_size, "runbook %s needs parameter %s", rb->name,
                     rb->params[i].name);
            return TL_EINVAL;
        }
    }

    /* Accepted: the environment entries, in catalogue order, and the summary. */
    run->runbook = rb;
    run->name = rb->name;
    run->path = rb->path;
    run->timeout_ms = rb->timeout_ms;
    run->privileged = rb->privileged;
    run->env = calloc(rb->param_count + 1, sizeof *run->env);
    /* The summary is at most the name and each parameter's name and excerpt. */
    summary = tl_buf_new(SIZE_MAX - 1);
    if (run->env == NULL || summary == NULL ||
        (rc = tl_buf_put(summary, rb->name, strlen(rb->name))) != 0) {
        rc = rc != 0 ? rc : TL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < rb->param_count; i++) {
        json_t *given = json_object_get(args, rb->params[i].name);
        if (given == NULL)
            continue;
        const char *text = json_string_value(given);
        size_t len = strlen("TL_PARAM_") + strlen(rb->params[i].name) + 1 + strlen(text) + 1;
        char *entry = malloc(len);
        if (entry == NULL) {
            rc = TL_ENOMEM;
            goto out;
        }
        snprintf(entry, len, "TL_PARAM_%s=%s", rb->params[i].name, text);
        run->env[run->env_count++] = entry;
        rc = summary_add(summary, rb->params[i].name, text);
        if (rc != 0)
            goto out;
    }
    rc = tl_buf_take_string(summary, &run->summary, &summary_len);
out:
    tl_buf_free(summary);
    if (rc != 0) {
        tl_runbooks_run_release(run);
        snprintf(message, message_size, "%s", tl_strerror(rc));
    }
    return rc;
}

/* ---- the catalogue for the relay -------------------------------------------------------- */

json_t *tl_runbooks_list(const tl_runbooks_t *catalogue)
{
    json_t *list = json_array();
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < tl_runbooks_count(catalogue); i++) {
        const tl_runbook_t *rb = catalogue->entries[i];
        json_t *params = json_array();
        for (size_t k = 0; params != NULL && k < rb->param_count; k++) {
            const struct param *param = &rb->params[k];
            if (json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:s}", "name", param->name,
                                                        "pattern", param->pattern, "required",
                                                        param->required, "description",
                                                        param->description)) != 0) {
                json_decref(params);
                params = NULL;
            }
        }
        json_t *item = params == NULL
                           ? NULL
                           : json_pack("{s:s, s:s, s:s, s:b, s:o}", "name", rb->name, "description",
                                       rb->description, "min_role", tl_role_name(rb->min_role),
                                       "privileged", rb->privileged, "params", params);
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* ---- where the catalogue lives ---------------------------------------------------------- */

int tl_runbooks_default_dir(char *out, size_t out_size)
{
#ifdef TL_BUILD_RUNBOOKS_DIR
    /* A build's staged copy, with the installed modes (agent/CMakeLists.txt). */
    return tl_fs_shared_dir("runbooks", TL_BUILD_RUNBOOKS_DIR, out, out_size);
#else
    return tl_fs_shared_dir("runbooks", NULL, out, out_size);
#endif
}
