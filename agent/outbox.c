#include "agent/outbox.h"
#include "agent/state.h"
#include "agent/storage.h"
#include "proto/array.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_PREFIX ".tmp-"
#define TRASH_PREFIX ".trash-"
#define LOCK_NAME ".lock"
#define REQUEST_FILE "request.json"
#define SET_ASIDE_FILE "set-aside.json"
/* A writer waits at most this long for a start-up recovery to let go of the lock. */
#define LOCK_TRIES 500
#define LOCK_PAUSE_US 10000

int tl_outbox_id_valid(const char *id)
{
    if (id == NULL || strncmp(id, "R-", 2) != 0 || strlen(id) != 34)
        return 0;
    for (int i = 2; i < 34; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static int outbox_path(const char *state_dir, const char *name, char *out, size_t size)
{
    return tl_format(out, size, "%s/%s/%s", state_dir, TL_STATE_OUTBOX, name) == 0 ? 0 : TL_EINVAL;
}

/* STATE/outbox/<prefix><id> */
static int entry_path(const char *state_dir, const char *prefix, const char *id, char *out,
                      size_t size)
{
    return tl_format(out, size, "%s/%s/%s%s", state_dir, TL_STATE_OUTBOX, prefix, id) == 0
               ? 0
               : TL_EINVAL;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[TL_STATE_FILE_MAX];
    if (tl_format(path, sizeof path, "%s/%s", dir, name) != 0)
        return TL_EINVAL;
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = tl_write_all(fd, data, len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Deletes a folder of plain files; a missing folder is already gone. */
static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *entry;
    char path[TL_STATE_FILE_MAX];
    int rc = 0;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (tl_format(path, sizeof path, "%s/%s", dir, entry->d_name) != 0)
            rc = TL_EINVAL;
        else if (unlink(path) != 0 && errno != ENOENT)
            rc = -errno;
    }
    closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

/* The outbox's lock file, held shared by writers and exclusively by recovery. */
static int lock_open(const char *state_dir)
{
    char path[TL_STATE_FILE_MAX];
    int rc = outbox_path(state_dir, LOCK_NAME, path, sizeof path);
    if (rc != 0)
        return rc;
    int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    return fd >= 0 ? fd : -errno;
}

static int lock_shared(const char *state_dir)
{
    int fd = lock_open(state_dir);
    for (int i = 0; fd >= 0 && i < LOCK_TRIES; i++) {
        if (flock(fd, LOCK_SH | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int rc = -errno;
            close(fd);
            return rc;
        }
        usleep(LOCK_PAUSE_US);
    }
    if (fd >= 0)
        close(fd);
    return fd >= 0 ? TL_ETIMEOUT : fd;
}

static const char *const kind_names[] = {
    [TL_OUTBOX_TICKET] = "ticket", [TL_OUTBOX_DEFLECTION] = "deflection"};

enum tl_outbox_kind tl_outbox_kind_of(json_t *request)
{
    const char *kind = json_string_value(json_object_get(request, "kind"));
    return kind != NULL && strcmp(kind, kind_names[TL_OUTBOX_DEFLECTION]) == 0
               ? TL_OUTBOX_DEFLECTION
               : TL_OUTBOX_TICKET;
}

/* request.json of a new entry: the outbox's own members, then those of fields it does not own. */
static json_t *request_document(const char *id, enum tl_outbox_kind kind, const char *title,
                                const char *description, json_t *fields, const char *evidence_name,
                                const char *evidence_kind, const char *hash, size_t evidence_len)
{
    static const char *const own[] = {"request", "title",    "description", "tier",
                                      "created", "evidence", "kind"};
    json_t *request = json_pack(
        "{s:s, s:s, s:s, s:i, s:I, s:[{s:s, s:s, s:s, s:I, s:s}]}", "request", id, "title", title,
        "description", description ? description : "", "tier", 1, "created", (json_int_t)time(NULL),
        "evidence", "name", evidence_name, "kind", evidence_kind, "sha256", hash, "size",
        (json_int_t)evidence_len, "path", "evidence-0");
    if (request != NULL && kind == TL_OUTBOX_DEFLECTION &&
        json_object_set_new(request, "kind", json_string(kind_names[kind])) != 0) {
        json_decref(request);
        return NULL;
    }
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value) {
        int owned = 0;
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            owned |= strcmp(key, own[i]) == 0;
        if (request != NULL && !owned && json_object_set(request, key, value) != 0) {
            json_decref(request);
            return NULL;
        }
    }
    return request;
}

int tl_outbox_add(const char *state_dir, const char *title, const char *description,
                  const char *evidence_name, const char *evidence_kind, const void *evidence,
                  size_t evidence_len, char id[TL_OUTBOX_ID_LEN])
{
    return tl_outbox_add_request(state_dir, TL_OUTBOX_TICKET, title, description, NULL,
                                 evidence_name, evidence_kind, evidence, evidence_len, id);
}

int tl_outbox_add_request(const char *state_dir, enum tl_outbox_kind kind, const char *title,
                          const char *description, json_t *fields, const char *evidence_name,
                          const char *evidence_kind, const void *evidence, size_t evidence_len,
                          char id[TL_OUTBOX_ID_LEN])
{
    uint8_t random[16];
    if (RAND_bytes(random, sizeof random) != 1)
        return TL_ENOMEM;
    strcpy(id, "R-");
    for (int i = 0; i < 16; i++)
        snprintf(id + 2 + 2 * i, 3, "%02x", random[i]);

    json_t *ids = NULL;
    int rc = tl_outbox_list(state_dir, &ids);
    size_t waiting = json_array_size(ids);
    json_decref(ids);
    if (rc != 0)
        return rc;
    if (waiting >= TL_OUTBOX_MAX_ITEMS)
        return TL_EFULL;

    char hash[TL_SHA256_HEX_LEN], tmp[TL_STATE_PATH_MAX], final[TL_STATE_PATH_MAX],
        outbox[TL_STATE_PATH_MAX];
    if ((rc = tl_sha256_hex(evidence, evidence_len, hash)) != 0 ||
        (rc = entry_path(state_dir, TMP_PREFIX, id, tmp, sizeof tmp)) != 0 ||
        (rc = entry_path(state_dir, "", id, final, sizeof final)) != 0 ||
        (rc = tl_state_path(state_dir, TL_STATE_OUTBOX, outbox, sizeof outbox)) != 0)
        return rc;
    /* Held until the request is in place: recovery removes no folder while a writer holds it. */
    int lock = lock_shared(state_dir);
    if (lock < 0)
        return lock;
    char *text = NULL;
    int made = 0;
    if (mkdir(tmp, 0700) != 0) {
        rc = -errno;
        goto out;
    }
    made = 1;
    json_t *request = request_document(id, kind, title, description, fields, evidence_name,
                                       evidence_kind, hash, evidence_len);
    text = request ? json_dumps(request, JSON_INDENT(2)) : NULL;
    json_decref(request);
    if (text == NULL) {
        rc = TL_EINVAL;
        goto out;
    }
    if ((rc = write_file(tmp, "evidence-0", evidence, evidence_len)) != 0 ||
        (rc = write_file(tmp, REQUEST_FILE, text, strlen(text))) != 0 ||
        (rc = tl_fsync_dir(tmp)) != 0)
        goto out;
    if (rename(tmp, final) != 0) {
        rc = -errno;
        goto out;
    }
    made = 0;
    rc = tl_fsync_dir(outbox);
out:
    free(text);
    if (made)
        remove_tree(tmp);
    close(lock);
    return rc;
}

static int by_creation(const void *a, const void *b)
{
    const struct {
        long long created;
        char id[TL_OUTBOX_ID_LEN];
    } *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

int tl_outbox_list(const char *state_dir, json_t **ids)
{
    char dir[TL_STATE_PATH_MAX];
    int rc = tl_state_path(state_dir, TL_STATE_OUTBOX, dir, sizeof dir);
    *ids = NULL;
    if (rc != 0)
        return rc;
    *ids = json_array();
    if (*ids == NULL)
        return TL_ENOMEM;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    struct item {
        long long created;
        char id[TL_OUTBOX_ID_LEN];
    } *items = NULL;
    size_t count = 0, alloc = 0;
    const size_t max_items = TL_OUTBOX_MAX_ITEMS * 2;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL && count < max_items) {
        if (!tl_outbox_id_valid(entry->d_name))
            continue; /* temporary, set-aside and foreign entries are not queued */
        if ((rc = tl_array_grow(&items, &alloc, count + 1, sizeof *items, 16, max_items)) != 0)
            break;
        struct stat st;
        char path[TL_STATE_FILE_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        items[count].created = stat(path, &st) == 0 ? (long long)st.st_mtime : 0;
        strcpy(items[count].id, entry->d_name);
        count++;
    }
    closedir(d);
    if (rc == 0) {
        if (count > 1)
            qsort(items, count, sizeof *items, by_creation);
        for (size_t i = 0; i < count; i++)
            json_array_append_new(*ids, json_string(items[i].id));
    }
    free(items);
    return rc;
}

/* An evidence file name as the request gives it: one plain name inside the entry. */
static int evidence_name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
           strlen(name) < 64;
}

/* The members delivery relies on, each of the right kind. */
static int request_ok(json_t *request, const char *id)
{
    json_t *evidence = json_object_get(request, "evidence");
    if (!json_is_object(request) || !json_is_string(json_object_get(request, "request")) ||
        strcmp(json_string_value(json_object_get(request, "request")), id) != 0 ||
        !json_is_string(json_object_get(request, "title")) || !json_is_array(evidence))
        return 0;
    json_t *kind = json_object_get(request, "kind");
    if (kind != NULL && (!json_is_string(kind) ||
                         (strcmp(json_string_value(kind), kind_names[TL_OUTBOX_TICKET]) != 0 &&
                          strcmp(json_string_value(kind), kind_names[TL_OUTBOX_DEFLECTION]) != 0)))
        return 0; /* a newer agent's request this one cannot send */
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item) {
        json_t *size = json_object_get(item, "size");
        if (!evidence_name_ok(json_string_value(json_object_get(item, "path"))) ||
            !tl_sha256_hex_valid(json_string_value(json_object_get(item, "sha256"))) ||
            !json_is_integer(size) || json_integer_value(size) < 0 ||
            !json_is_string(json_object_get(item, "name")) ||
            !json_is_string(json_object_get(item, "kind")))
            return 0;
    }
    return 1;
}

int tl_outbox_load(const char *state_dir, const char *id, json_t **request)
{
    *request = NULL;
    if (!tl_outbox_id_valid(id))
        return TL_EINVAL;
    char path[TL_STATE_PATH_MAX], name[TL_OUTBOX_ID_LEN + 16];
    snprintf(name, sizeof name, "%s/" REQUEST_FILE, id);
    int rc = outbox_path(state_dir, name, path, sizeof path);
    if (rc != 0)
        return rc;
    json_error_t error;
    *request = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (*request == NULL)
        return access(path, F_OK) == 0 ? TL_EINVAL : TL_ENOTFOUND;
    if (!request_ok(*request, id)) {
        json_decref(*request);
        *request = NULL;
        return TL_EINVAL;
    }
    return 0;
}

int tl_outbox_missing(const char *state_dir, const char *id, json_t *request, char *missing,
                      size_t size)
{
    json_t *evidence = json_object_get(request, "evidence");
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item) {
        const char *name = json_string_value(json_object_get(item, "path"));
        char path[TL_STATE_FILE_MAX];
        if (!evidence_name_ok(name))
            return TL_EINVAL;
        snprintf(path, sizeof path, "%s/%s/%s/%s", state_dir, TL_STATE_OUTBOX, id, name);
        if (access(path, F_OK) == 0)
            continue;
        if (errno != ENOENT)
            return -errno;
        snprintf(missing, size, "%s", name);
        return 1;
    }
    return 0;
}

int tl_outbox_remove(const char *state_dir, const char *id)
{
    if (!tl_outbox_id_valid(id))
        return TL_EINVAL;
    char dir[TL_STATE_PATH_MAX], trash[TL_STATE_PATH_MAX], outbox[TL_STATE_PATH_MAX];
    int rc;
    if ((rc = entry_path(state_dir, "", id, dir, sizeof dir)) != 0 ||
        (rc = entry_path(state_dir, TRASH_PREFIX, id, trash, sizeof trash)) != 0 ||
        (rc = tl_state_path(state_dir, TL_STATE_OUTBOX, outbox, sizeof outbox)) != 0)
        return rc;
    if ((rc = remove_tree(trash)) != 0) /* a leftover of the same id: never merge into it */
        return rc;
    if (rename(dir, trash) != 0)
        return errno == ENOENT ? 0 : -errno; /* already gone (another process finished it) */
    /* Once this is durable the request is out of the queue, whatever happens to its files. */
    if ((rc = tl_fsync_dir(outbox)) != 0)
        return rc;
    return remove_tree(trash);
}

static int delivered_dir(const char *state_dir, char *out, size_t size)
{
    return tl_state_path(state_dir, TL_STATE_DELIVERED, out, size);
}

/* Keeps the newest TL_OUTBOX_KEEP_DELIVERED records of the last week. */
static void prune_delivered(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct record {
        time_t when;
        char name[TL_OUTBOX_ID_LEN + 16];
    } records[TL_OUTBOX_KEEP_DELIVERED * 4];
    size_t count = 0;
    struct dirent *entry;
    time_t now = time(NULL);
    char path[TL_STATE_FILE_MAX];
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        int tmp = len > 4 && strcmp(entry->d_name + len - 4, ".tmp") == 0;
        if (entry->d_name[0] == '.' || (!tmp && (len < 6 || len >= sizeof records[0].name ||
                                                 strcmp(entry->d_name + len - 5, ".json") != 0)))
            continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        if (stat(path, &st) != 0)
            continue;
        /* Old records and leftovers of an interrupted write go at once. */
        if (tmp || now - st.st_mtime > TL_OUTBOX_KEEP_DELIVERED_S) {
            unlink(path);
            continue;
        }
        if (count == sizeof records / sizeof records[0]) {
            /* Too many to sort in one pass: drop the oldest seen so far, find more next time. */
            size_t oldest = 0;
            for (size_t i = 1; i < count; i++)
                if (records[i].when < records[oldest].when)
                    oldest = i;
            snprintf(path, sizeof path, "%s/%s", dir, records[oldest].name);
            unlink(path);
            records[oldest] = records[--count];
        }
        records[count].when = st.st_mtime;
        memcpy(records[count].name, entry->d_name, len + 1); /* len was checked above */
        count++;
    }
    closedir(d);
    while (count > TL_OUTBOX_KEEP_DELIVERED) {
        size_t oldest = 0;
        for (size_t i = 1; i < count; i++)
            if (records[i].when < records[oldest].when)
                oldest = i;
        snprintf(path, sizeof path, "%s/%s", dir, records[oldest].name);
        unlink(path);
        records[oldest] = records[--count];
    }
}

int tl_outbox_finish(const char *state_dir, const char *id, const char *ticket, const char *title)
{
    if (!tl_outbox_id_valid(id))
        return TL_EINVAL;
    char dir[TL_STATE_PATH_MAX], path[TL_STATE_FILE_MAX];
    int rc = delivered_dir(state_dir, dir, sizeof dir);
    if (rc != 0)
        return rc;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    json_t *record = json_pack("{s:s, s:s, s:s, s:I}", "request", id, "ticket", ticket, "title",
                               title ? title : "", "delivered_ms",
                               (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    char *text = record != NULL ? json_dumps(record, JSON_COMPACT) : NULL;
    json_decref(record);
    if (text == NULL)
        return TL_ENOMEM;
    /* The record first: a crash after it leaves the request queued, and a repeat is harmless. */
    rc = tl_storage_write_file(path, text, strlen(text));
    free(text);
    if (rc != 0)
        return rc;
    prune_delivered(dir);
    return tl_outbox_remove(state_dir, id);
}

int tl_outbox_set_aside(const char *state_dir, const char *id, const char *why, const char *detail)
{
    if (!tl_outbox_id_valid(id) || (strcmp(why, "rejected") != 0 && strcmp(why, "damaged") != 0))
        return TL_EINVAL;
    char from[TL_STATE_PATH_MAX], to[TL_STATE_PATH_MAX], prefix[16], outbox[TL_STATE_PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s-", why);
    int rc;
    if ((rc = entry_path(state_dir, "", id, from, sizeof from)) != 0 ||
        (rc = entry_path(state_dir, prefix, id, to, sizeof to)) != 0 ||
        (rc = tl_state_path(state_dir, TL_STATE_OUTBOX, outbox, sizeof outbox)) != 0)
        return rc;
    /* The note goes in first, so the folder arrives at its new name with it. */
    json_t *note = json_pack("{s:s, s:s, s:I}", "why", why, "detail", detail ? detail : "", "when",
                             (json_int_t)time(NULL));
    char *text = note != NULL ? json_dumps(note, JSON_INDENT(2)) : NULL;
    json_decref(note);
    char note_path[TL_STATE_FILE_MAX];
    snprintf(note_path, sizeof note_path, "%s/" SET_ASIDE_FILE, from);
    if (text != NULL) {
        unlink(note_path);
        write_file(from, SET_ASIDE_FILE, text, strlen(text)); /* best effort: the name says it */
        free(text);
    }
    if (access(to, F_OK) == 0)
        return TL_EEXIST;
    if (rename(from, to) != 0)
        return -errno;
    return tl_fsync_dir(outbox);
}

static int folder_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    struct dirent *entry;
    int empty = 1;
    while ((entry = readdir(d)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

static void note(json_t *actions, const char *request, const char *action, const char *detail)
{
    json_array_append_new(actions, json_pack("{s:s, s:s, s:s}", "request", request, "action",
                                             action, "detail", detail));
}

/* One R-… entry at start: complete, incomplete (asked of the relay later), empty or damaged. */
static void recover_entry(const char *state_dir, const char *id, json_t *actions)
{
    char dir[TL_STATE_PATH_MAX], detail[256], missing[64];
    if (entry_path(state_dir, "", id, dir, sizeof dir) != 0)
        return;
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return; /* not ours to judge */
    json_t *request = NULL;
    int rc = tl_outbox_load(state_dir, id, &request);
    if (rc == TL_ENOTFOUND && folder_empty(dir) == 1) {
        /* Nothing in it to send or to keep: the tail of an older removal. */
        if (rmdir(dir) == 0)
            note(actions, id, "removed", "an empty request folder");
        return;
    }
    if (rc != 0) {
        snprintf(detail, sizeof detail, "%s",
                 rc == TL_ENOTFOUND ? "it has no request.json"
                                    : "its request.json is not a readable request");
        int moved = tl_outbox_set_aside(state_dir, id, "damaged", detail);
        note(actions, id, moved == 0 ? "set-aside" : "skipped", detail);
        return;
    }
    rc = tl_outbox_missing(state_dir, id, request, missing, sizeof missing);
    json_decref(request);
    if (rc == 1) {
        snprintf(detail, sizeof detail, "its evidence file %s is missing", missing);
        note(actions, id, "incomplete", detail);
    }
}

int tl_outbox_recover(const char *state_dir, json_t **actions)
{
    char dir[TL_STATE_PATH_MAX], path[TL_STATE_FILE_MAX];
    *actions = json_array();
    if (*actions == NULL)
        return TL_ENOMEM;
    int rc = tl_state_path(state_dir, TL_STATE_OUTBOX, dir, sizeof dir);
    if (rc != 0)
        return rc;
    int lock = lock_open(state_dir);
    if (lock == -ENOENT)
        return 0; /* no outbox yet */
    if (lock < 0)
        return lock;
    /* Temporary folders are stale only while no writer holds the lock. */
    int writers_idle = flock(lock, LOCK_EX | LOCK_NB) == 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        rc = errno == ENOENT ? 0 : -errno;
        close(lock);
        return rc;
    }
    struct dirent *entry;
    size_t seen = 0;
    /* Names first: entries are renamed while we go. */
    json_t *names = json_array();
    while ((entry = readdir(d)) != NULL && seen++ < TL_OUTBOX_MAX_ITEMS * 4)
        json_array_append_new(names, json_string(entry->d_name));
    closedir(d);
    size_t i;
    json_t *value;
    json_array_foreach(names, i, value) {
        const char *name = json_string_value(value);
        if (name == NULL)
            continue;
        if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 &&
            tl_outbox_id_valid(name + strlen(TMP_PREFIX))) {
            const char *id = name + strlen(TMP_PREFIX);
            if (!writers_idle) {
                note(*actions, id, "skipped", "a request is being written now");
                continue;
            }
            snprintf(path, sizeof path, "%s/%s", dir, name);
            int removed = remove_tree(path);
            note(*actions, id, removed == 0 ? "removed" : "skipped",
                 "an unfinished write (the writer stopped before it was whole)");
        } else if (strncmp(name, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0 &&
                   tl_outbox_id_valid(name + strlen(TRASH_PREFIX))) {
            snprintf(path, sizeof path, "%s/%s", dir, name);
            int removed = remove_tree(path);
            note(*actions, name + strlen(TRASH_PREFIX), removed == 0 ? "finished" : "skipped",
                 "a removal after delivery");
        } else if (tl_outbox_id_valid(name)) {
            recover_entry(state_dir, name, *actions);
        }
    }
    json_decref(names);
    rc = tl_fsync_dir(dir);
    char delivered[TL_STATE_PATH_MAX];
    if (delivered_dir(state_dir, delivered, sizeof delivered) == 0)
        prune_delivered(delivered);
    close(lock); /* drops the lock */
    return rc;
}

static int newest_first(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "delivered_ms"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "delivered_ms"));
    return x < y ? 1 : x > y ? -1 : 0;
}

int tl_outbox_delivered(const char *state_dir, json_t **list)
{
    char dir[TL_STATE_PATH_MAX], path[TL_STATE_FILE_MAX];
    *list = json_array();
    if (*list == NULL)
        return TL_ENOMEM;
    int rc = delivered_dir(state_dir, dir, sizeof dir);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    json_t *found[TL_OUTBOX_KEEP_DELIVERED * 4];
    size_t count = 0;
    struct dirent *entry;
    json_int_t horizon = ((json_int_t)time(NULL) - TL_OUTBOX_KEEP_DELIVERED_S) * 1000;
    while ((entry = readdir(d)) != NULL && count < sizeof found / sizeof found[0]) {
        char id[TL_OUTBOX_ID_LEN];
        size_t len = strlen(entry->d_name);
        if (len != 34 + 5 || strcmp(entry->d_name + 34, ".json") != 0)
            continue;
        memcpy(id, entry->d_name, 34);
        id[34] = '\0';
        if (!tl_outbox_id_valid(id))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        json_error_t error;
        json_t *record = json_load_file(path, 0, &error);
        json_t *when = json_object_get(record, "delivered_ms");
        if (!json_is_string(json_object_get(record, "ticket")) || !json_is_integer(when) ||
            json_integer_value(when) < horizon) {
            json_decref(record);
            continue;
        }
        json_object_set_new(record, "request", json_string(id));
        found[count++] = record;
    }
    closedir(d);
    if (count > 1)
        qsort(found, count, sizeof found[0], newest_first);
    for (size_t i = 0; i < count; i++) {
        if (i < TL_OUTBOX_KEEP_DELIVERED)
            json_array_append(*list, found[i]);
        json_decref(found[i]);
    }
    return 0;
}

int tl_outbox_set_aside_list(const char *state_dir, json_t **list)
{
    char dir[TL_STATE_PATH_MAX], path[TL_STATE_FILE_MAX];
    *list = json_array();
    if (*list == NULL)
        return TL_ENOMEM;
    int rc = tl_state_path(state_dir, TL_STATE_OUTBOX, dir, sizeof dir);
    if (rc != 0)
        return rc;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *entry;
    size_t count = 0;
    while ((entry = readdir(d)) != NULL && count < TL_OUTBOX_MAX_ITEMS) {
        const char *why = NULL, *id = NULL;
        if (strncmp(entry->d_name, "rejected-", 9) == 0) {
            why = "rejected";
            id = entry->d_name + 9;
        } else if (strncmp(entry->d_name, "damaged-", 8) == 0) {
            why = "damaged";
            id = entry->d_name + 8;
        }
        if (why == NULL || !tl_outbox_id_valid(id))
            continue;
        snprintf(path, sizeof path, "%s/%s/" SET_ASIDE_FILE, dir, entry->d_name);
        json_error_t error;
        json_t *note = json_load_file(path, 0, &error);
        const char *detail = json_string_value(json_object_get(note, "detail"));
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        json_array_append_new(*list, json_pack("{s:s, s:s, s:s, s:s}", "request", id, "why", why,
                                               "detail", detail ? detail : "", "path", path));
        json_decref(note);
        count++;
    }
    closedir(d);
    return 0;
}
