/* Self-help on the wire (proto/selfhelp.h, docs/protocol.md §7.5, §7.13). */
#include "proto/selfhelp.h"
#include "proto/err.h"
#include "proto/text.h"

#include <stdio.h>
#include <string.h>

/* ^[a-z0-9][a-z0-9-]{0,47}$: an article's id and a runbook's name alike. */
static int name_ok(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > TL_ARTICLE_ID_MAX || text[0] == '-')
        return 0;
    return strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

/* ^[A-Z][A-Z0-9_]{0,31}$ */
static int arg_name_ok(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > TL_SELFHELP_ARG_NAME_MAX || !(text[0] >= 'A' && text[0] <= 'Z'))
        return 0;
    return strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == len;
}

/* 1..64 of A-Z a-z 0-9 . _ - */
static int request_ok(const char *text)
{
    size_t len = strlen(text);
    return len > 0 && len <= TL_SELFHELP_REQUEST_MAX &&
           strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* One line of valid UTF-8 of at most max bytes (at least one unless empty_ok). */
static int line_ok(const char *text, size_t max, int empty_ok)
{
    size_t len = strlen(text);
    if (len > max || (len == 0 && !empty_ok) || !tl_text_utf8_valid(text, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static int time_ok(int64_t ms)
{
    return ms >= 0 && ms <= TL_SELFHELP_TIME_MAX;
}

static int fix_ok(const tl_selfhelp_fix_t *fix, int required)
{
    if (fix->runbook[0] == '\0')
        return !required && fix->arg_count == 0;
    if (!name_ok(fix->runbook) || fix->arg_count > TL_SELFHELP_ARGS_MAX)
        return 0;
    for (size_t i = 0; i < fix->arg_count; i++) {
        if (!arg_name_ok(fix->args[i].name) ||
            !line_ok(fix->args[i].value, TL_SELFHELP_ARG_VALUE_MAX, 1))
            return 0;
        for (size_t k = 0; k < i; k++)
            if (strcmp(fix->args[k].name, fix->args[i].name) == 0)
                return 0;
    }
    return 1;
}

static int row_ok(const tl_selfhelp_row_t *row)
{
    return (row->applied == 0 || row->applied == 1) && name_ok(row->article) &&
           line_ok(row->title, TL_SELFHELP_TITLE_MAX, 0) &&
           line_ok(row->outcome, TL_SELFHELP_OUTCOME_MAX, 1) && fix_ok(&row->fix, row->applied);
}

static int deflection_ok(const tl_selfhelp_deflection_t *d)
{
    return request_ok(d->request) && name_ok(d->article) &&
           line_ok(d->title, TL_SELFHELP_TITLE_MAX, 0) && fix_ok(&d->fix, 1) &&
           time_ok(d->shown_ms) && time_ok(d->applied_ms) && time_ok(d->rechecked_ms) &&
           d->shown_ms <= d->applied_ms && d->applied_ms <= d->rechecked_ms &&
           strcmp(d->outcome, TL_SELFHELP_SOLVED) == 0;
}

int tl_selfhelp_fix_from_article(const tl_article_t *article, tl_selfhelp_fix_t *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(article->runbook) > TL_ARTICLE_ID_MAX || article->param_count > TL_SELFHELP_ARGS_MAX)
        return TL_EINVAL;
    strcpy(out->runbook, article->runbook);
    for (size_t i = 0; i < article->param_count; i++) {
        const char *param = article->params[i];
        const char *equals = strchr(param, '=');
        size_t name_len = equals != NULL ? (size_t)(equals - param) : 0;
        if (equals == NULL || name_len == 0 || name_len > TL_SELFHELP_ARG_NAME_MAX ||
            strlen(equals + 1) > TL_SELFHELP_ARG_VALUE_MAX) {
            memset(out, 0, sizeof *out);
            return TL_EINVAL;
        }
        memcpy(out->args[i].name, param, name_len);
        out->args[i].name[name_len] = '\0';
        strcpy(out->args[i].value, equals + 1);
        out->arg_count++;
    }
    if (!fix_ok(out, 0)) {
        memset(out, 0, sizeof *out);
        return TL_EINVAL;
    }
    return 0;
}

json_t *tl_selfhelp_fix_args(const tl_selfhelp_fix_t *fix)
{
    json_t *args = json_object();
    for (size_t i = 0; args != NULL && i < fix->arg_count; i++) {
        if (json_object_set_new(args, fix->args[i].name, json_string(fix->args[i].value)) != 0) {
            json_decref(args);
            args = NULL;
        }
    }
    return args;
}

/* ---- encoding ------------------------------------------------------------------------------ */

/* runbook and args of a fix into object, when it has a runbook. */
static int put_fix(json_t *object, const tl_selfhelp_fix_t *fix)
{
    if (fix->runbook[0] == '\0')
        return 0;
    json_t *args = tl_selfhelp_fix_args(fix);
    if (args == NULL || json_object_set_new(object, "runbook", json_string(fix->runbook)) != 0 ||
        json_object_set_new(object, "args", args) != 0)
        return TL_ENOMEM;
    return 0;
}

static json_t *row_json(const tl_selfhelp_row_t *row)
{
    json_t *out = json_pack("{s:s, s:s, s:s}", "event", row->applied ? "applied" : "shown",
                            "article", row->article, "title", row->title);
    if (out != NULL && row->outcome[0] != '\0' &&
        json_object_set_new(out, "outcome", json_string(row->outcome)) != 0) {
        json_decref(out);
        return NULL;
    }
    if (out != NULL && put_fix(out, &row->fix) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

int tl_selfhelp_rows_encode(const tl_selfhelp_row_t *rows, size_t count, json_t **out)
{
    *out = NULL;
    if (count > TL_SELFHELP_ROWS_MAX)
        return TL_EINVAL;
    for (size_t i = 0; i < count; i++)
        if (!row_ok(&rows[i]))
            return TL_EINVAL;
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++) {
        if (json_array_append_new(array, row_json(&rows[i])) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    *out = array;
    return array != NULL ? 0 : TL_ENOMEM;
}

int tl_selfhelp_deflection_encode(const tl_selfhelp_deflection_t *d, json_t **out)
{
    *out = NULL;
    if (!deflection_ok(d))
        return TL_EINVAL;
    json_t *object = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "request", d->request,
                               "article", d->article, "title", d->title, "shown",
                               (json_int_t)d->shown_ms, "applied", (json_int_t)d->applied_ms,
                               "rechecked", (json_int_t)d->rechecked_ms, "outcome", d->outcome);
    if (object != NULL && put_fix(object, &d->fix) != 0) {
        json_decref(object);
        object = NULL;
    }
    *out = object;
    return object != NULL ? 0 : TL_ENOMEM;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* A string member of object into out (size bytes, no NUL inside); absent: fails unless
 * optional (then ""). */
static int copy_text(json_t *object, const char *key, char *out, size_t size, int optional)
{
    json_t *value = json_object_get(object, key);
    out[0] = '\0';
    if (value == NULL)
        return optional;
    if (!json_is_string(value))
        return 0;
    size_t len = json_string_length(value);
    const char *text = json_string_value(value);
    if (len >= size || strlen(text) != len)
        return 0;
    memcpy(out, text, len + 1);
    return 1;
}

static int copy_time(json_t *object, const char *key, int64_t *out)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value) || !time_ok(json_integer_value(value)))
        return 0;
    *out = json_integer_value(value);
    return 1;
}

/* "runbook" and "args" of object into fix; args only with a runbook. */
static int copy_fix(json_t *object, tl_selfhelp_fix_t *fix)
{
    memset(fix, 0, sizeof *fix);
    json_t *args = json_object_get(object, "args");
    if (!copy_text(object, "runbook", fix->runbook, sizeof fix->runbook, 1))
        return 0;
    if (args == NULL)
        return 1;
    if (fix->runbook[0] == '\0' || !json_is_object(args) ||
        json_object_size(args) > TL_SELFHELP_ARGS_MAX)
        return 0;
    const char *key;
    json_t *value;
    json_object_foreach(args, key, value) {
        tl_selfhelp_arg_t *arg = &fix->args[fix->arg_count];
        if (strlen(key) > TL_SELFHELP_ARG_NAME_MAX || !json_is_string(value) ||
            json_string_length(value) > TL_SELFHELP_ARG_VALUE_MAX ||
            strlen(json_string_value(value)) != json_string_length(value))
            return 0;
        strcpy(arg->name, key);
        strcpy(arg->value, json_string_value(value));
        fix->arg_count++;
    }
    return 1;
}

static int row_decode(json_t *object, tl_selfhelp_row_t *row)
{
    char event[16];
    memset(row, 0, sizeof *row);
    if (!json_is_object(object) || !copy_text(object, "event", event, sizeof event, 0) ||
        !copy_text(object, "article", row->article, sizeof row->article, 0) ||
        !copy_text(object, "title", row->title, sizeof row->title, 0) ||
        !copy_text(object, "outcome", row->outcome, sizeof row->outcome, 1) ||
        !copy_fix(object, &row->fix))
        return TL_EMSG_MALFORMED;
    if (strcmp(event, "applied") == 0)
        row->applied = 1;
    else if (strcmp(event, "shown") != 0)
        return TL_EMSG_MALFORMED;
    return row_ok(row) ? 0 : TL_EMSG_MALFORMED;
}

int tl_selfhelp_rows_decode(json_t *array, tl_selfhelp_row_t *rows, size_t *count)
{
    *count = 0;
    if (array == NULL)
        return 0;
    if (!json_is_array(array) || json_array_size(array) > TL_SELFHELP_ROWS_MAX)
        return TL_EMSG_MALFORMED;
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item) {
        if (row_decode(item, &rows[i]) != 0)
            return TL_EMSG_MALFORMED;
    }
    *count = json_array_size(array);
    return 0;
}

int tl_selfhelp_deflection_decode(json_t *body, tl_selfhelp_deflection_t *out)
{
    memset(out, 0, sizeof *out);
    int ok =
        json_is_object(body) && copy_text(body, "request", out->request, sizeof out->request, 0) &&
        copy_text(body, "article", out->article, sizeof out->article, 0) &&
        copy_text(body, "title", out->title, sizeof out->title, 0) && copy_fix(body, &out->fix) &&
        copy_time(body, "shown", &out->shown_ms) && copy_time(body, "applied", &out->applied_ms) &&
        copy_time(body, "rechecked", &out->rechecked_ms) &&
        copy_text(body, "outcome", out->outcome, sizeof out->outcome, 0) && deflection_ok(out);
    if (!ok)
        memset(out, 0, sizeof *out);
    return ok ? 0 : TL_EMSG_MALFORMED;
}

/* ---- timeline events ----------------------------------------------------------------------- */

const char *tl_selfhelp_event_kind(const tl_selfhelp_row_t *row)
{
    return row->applied ? "selfhelp.applied" : "selfhelp.shown";
}

json_t *tl_selfhelp_event_details(const tl_selfhelp_row_t *row)
{
    char article[sizeof TL_SELFHELP_ARTICLE_PREFIX + TL_ARTICLE_ID_MAX];
    snprintf(article, sizeof article, "%s%s", TL_SELFHELP_ARTICLE_PREFIX, row->article);
    json_t *details = json_pack("{s:s, s:s}", "article", article, "title", row->title);
    if (details != NULL && row->outcome[0] != '\0' &&
        json_object_set_new(details, "outcome", json_string(row->outcome)) != 0) {
        json_decref(details);
        return NULL;
    }
    if (details != NULL && put_fix(details, &row->fix) != 0) {
        json_decref(details);
        return NULL;
    }
    return details;
}
