/*
 * The relay's requests about files (agent/files_requests.h).
 */
#include "agent/files_requests.h"

#include "agent/files.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/msg.h"
#include "proto/sftp.h"

#include <string.h>
#include <sys/stat.h>

static json_t *refusal(int error, const char *message)
{
    return json_pack("{s:s, s:b, s:s, s:s}", "type", tl_control_type_name(TL_CONTROL_RESULT), "ok",
                     0, "error", tl_err_name(error), "message", message);
}

/* Why an operation on path failed, for the technician. */
static json_t *failure(int error, const char *path, int listing)
{
    const char *why = error == TL_ENOTFOUND ? "no such file or directory"
                      : error == TL_EDENIED ? "refused: a symbolic link on the path, or the "
                                              "machine's permissions"
                      : error == TL_EINVAL  ? (listing ? "not a directory" : "not a path served")
                                            : "the machine could not read it";
    char message[TL_SFTP_MAX_PATH + 128];
    tl_format(message, sizeof message, "%s: %s", path, why);
    return refusal(error, message);
}

static json_t *attrs_json(const struct stat *st)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "size", (json_int_t)st->st_size, "mode",
                     (json_int_t)st->st_mode, "mtime",
                     (json_int_t)(st->st_mtime > 0 ? st->st_mtime : 0), "uid",
                     (json_int_t)st->st_uid, "gid", (json_int_t)st->st_gid);
}

struct listing {
    json_t *entries;
    size_t bytes;
    int more;
};

static int add_entry(void *data, const char *name, const struct stat *st)
{
    struct listing *listing = data;
    /* Each entry's worst case: every byte of its name escaped, and its numbers. */
    size_t cost = strlen(name) * 6 + 128;
    if (json_array_size(listing->entries) == TL_FILES_LIST_MAX ||
        listing->bytes + cost > TL_FILES_LIST_MAX_BYTES) {
        listing->more = 1;
        return 1;
    }
    json_t *entry = attrs_json(st);
    if (entry == NULL || json_object_set_new(entry, "name", json_string(name)) != 0 ||
        json_array_append_new(listing->entries, entry) != 0)
        return TL_ENOMEM;
    listing->bytes += cost;
    return 0;
}

json_t *tl_files_request_check(const tl_consent_t *consent, json_t *body)
{
    char message[TL_MSG_MAX_TEXT + 1];
    const char *grant = json_string_value(json_object_get(body, "grant"));
    const char *technician = json_string_value(json_object_get(body, "technician"));
    const char *path = json_string_value(json_object_get(body, "path"));
    if (consent == NULL)
        return refusal(TL_EDENIED, "this agent takes no sessions now (it is not running)");
    if (grant == NULL || technician == NULL || path == NULL ||
        tl_sftp_machine_path_check(path) != 0)
        return refusal(TL_EINVAL, "files requests need \"grant\", \"technician\" and an "
                                  "absolute, normalised \"path\" without control characters");
    int rc = tl_consent_check_scope(consent, grant, technician, TL_SCOPE_FILES, NULL, message,
                                    sizeof message);
    return rc != 0 ? refusal(rc, message) : NULL;
}

json_t *tl_files_request_answer(const tl_consent_t *consent, enum tl_control_type type,
                                json_t *body)
{
    json_t *refused = tl_files_request_check(consent, body);
    if (refused != NULL)
        return refused;
    return tl_files_request_serve(type, json_string_value(json_object_get(body, "path")));
}

json_t *tl_files_request_serve(enum tl_control_type type, const char *path)
{
    int rc;
    if (type == TL_CONTROL_FILES_STAT) {
        struct stat st;
        rc = tl_files_stat(path, &st);
        if (rc != 0)
            return failure(rc, path, 0);
        return json_pack("{s:s, s:b, s:o}", "type", tl_control_type_name(TL_CONTROL_RESULT), "ok",
                         1, "attrs", attrs_json(&st));
    }
    struct listing listing = {.entries = json_array()};
    if (listing.entries == NULL)
        return NULL;
    rc = tl_files_list(path, add_entry, &listing);
    if (rc != 0) {
        json_decref(listing.entries);
        return failure(rc, path, 1);
    }
    if (listing.more)
        tl_log_info("files listing cut path_bytes=%zu entries=%zu", strlen(path),
                    json_array_size(listing.entries));
    return json_pack("{s:s, s:b, s:o, s:b}", "type", tl_control_type_name(TL_CONTROL_RESULT), "ok",
                     1, "entries", listing.entries, "more", listing.more);
}
