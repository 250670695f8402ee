/*
 * Probe "users": who is logged in, from the login records (getutxent(3),
 * /run/utmp): one row per login session (user, terminal, remote host, since
 * when, its process) and the distinct user names. The records are written by
 * login programs; their fixed-size fields need not end in a NUL, so each is
 * read only within its size.
 */
#include "agent/diag.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>
#include <utmpx.h>

#define MAX_RECORDS 4096
#define MAX_SESSIONS 256

/* A fixed-size record field as text: at most size bytes, up to the first NUL. */
static json_t *field_text(const char *field, size_t size)
{
    return tl__diag_text(field, strnlen(field, size), size * 4);
}

static int put_field(json_t *row, const char *key, const char *field, size_t size)
{
    json_t *value = strnlen(field, size) > 0 ? field_text(field, size) : json_null();
    return value && json_object_set_new(row, key, value) == 0 ? 0 : TL_ENOMEM;
}

int tl__probe_users_parse(const struct utmpx *records, size_t count, json_t *section)
{
    int rc = 0;
    bool truncated = false;
    json_t *sessions = json_array(), *users = json_array();
    if (!sessions || !users) {
        rc = TL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        const struct utmpx *record = &records[i];
        if (record->ut_type != USER_PROCESS ||
            strnlen(record->ut_user, sizeof record->ut_user) == 0)
            continue;
        if (json_array_size(sessions) >= MAX_SESSIONS) {
            truncated = true;
            break;
        }
        json_t *row = json_object();
        if (!row || json_array_append_new(sessions, row) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
        char since[32];
        tl__diag_format_time((long long)record->ut_tv.tv_sec, since);
        if ((rc = put_field(row, "user", record->ut_user, sizeof record->ut_user)) < 0 ||
            (rc = put_field(row, "terminal", record->ut_line, sizeof record->ut_line)) < 0 ||
            (rc = put_field(row, "host", record->ut_host, sizeof record->ut_host)) < 0 ||
            (rc = tl__diag_put_text(row, "since", since)) < 0 ||
            (rc = tl__diag_put_int(row, "pid", (long long)record->ut_pid)) < 0)
            goto out;
        json_t *user = json_object_get(row, "user");
        bool seen = false;
        size_t index;
        json_t *name;
        json_array_foreach(users, index, name) {
            seen = seen || json_equal(name, user);
        }
        if (!seen && json_array_append(users, user) != 0) {
            rc = TL_ENOMEM;
            goto out;
        }
    }
    if ((rc = tl__diag_put_int(section, "session_count", (long long)json_array_size(sessions))) <
            0 ||
        (rc = tl__diag_put_int(section, "user_count", (long long)json_array_size(users))) < 0 ||
        (truncated && (rc = tl__diag_put_bool(section, "truncated", true)) < 0))
        goto out;
    if (json_object_set(section, "sessions", sessions) != 0 ||
        json_object_set(section, "users", users) != 0)
        rc = TL_ENOMEM;
out:
    json_decref(sessions);
    json_decref(users);
    return rc;
}

int tl__probe_users_run(const tl_diag_t *diag, json_t *section)
{
    (void)diag;
    size_t count = 0;
    struct utmpx *records = calloc(MAX_RECORDS, sizeof *records);
    if (!records)
        return TL_ENOMEM;
    bool more = false;
    setutxent();
    struct utmpx *record;
    while ((record = getutxent()) != NULL) {
        if (count >= MAX_RECORDS) {
            more = true;
            break;
        }
        records[count++] = *record;
    }
    endutxent();
    int rc = tl__probe_users_parse(records, count, section);
    if (rc == 0 && more)
        rc = tl__diag_put_bool(section, "truncated", true);
    free(records);
    return rc;
}
