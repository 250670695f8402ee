#include "agent/outbox.h"
#include "proto/fsutil.h"
#include "agent/state.h"
#include "proto/err.h"
#include "proto/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    int n = snprintf(out, size, "%s/%s/%s", state_dir, TL_STATE_OUTBOX, name);
    return n > 0 && (size_t)n < size ? 0 : TL_EINVAL;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[TL_STATE_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
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

static int remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *entry;
    char path[TL_STATE_PATH_MAX];
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, entry->d_name) < (int)sizeof path)
            unlink(path);
    }
    closedir(d);
    return rmdir(dir) == 0 ? 0 : -errno;
}

int tl_outbox_add(const char *state_dir, const char *title, const char *description,
                  const char *evidence_name, const char *evidence_kind, const void *evidence,
                  size_t evidence_len, char id[TL_OUTBOX_ID_LEN])
{
    uint8_t random[16];
    if (RAND_bytes(random, sizeof random) != 1)
        return TL_ENOMEM;
    strcpy(id, "R-");
    for (int i = 0; i < 16; i++)
        snprintf(id + 2 + 2 * i, 3, "%02x", random[i]);

    json_t *ids = NULL;
    int rc = tl_outbox_list(state_dir, &ids);
    if (rc != 0)
        return rc;
    size_t waiting = json_array_size(ids);
    json_decref(ids);
    if (waiting >= TL_OUTBOX_MAX_ITEMS)
        return TL_EFULL;

    char hash[TL_SHA256_HEX_LEN], tmp[TL_STATE_PATH_MAX], final[TL_STATE_PATH_MAX],
        outbox[TL_STATE_PATH_MAX], tmp_name[64];
    snprintf(tmp_name, sizeof tmp_name, ".tmp-%s", id);
    if ((rc = tl_sha256_hex(evidence, evidence_len, hash)) != 0 ||
        (rc = outbox_path(state_dir, tmp_name, tmp, sizeof tmp)) != 0 ||
        (rc = outbox_path(state_dir, id, final, sizeof final)) != 0 ||
        (rc = tl_state_path(state_dir, TL_STATE_OUTBOX, outbox, sizeof outbox)) != 0)
        return rc;
    if (mkdir(tmp, 0700) != 0)
        return -errno;

    json_t *request = json_pack(
        "{s:s, s:s, s:s, s:i, s:I, s:[{s:s, s:s, s:s, s:I, s:s}]}", "request", id, "title", title,
        "description", description ? description : "", "tier", 1, "created", (json_int_t)time(NULL),
        "evidence", "name", evidence_name, "kind", evidence_kind, "sha256", hash, "size",
        (json_int_t)evidence_len, "path", "evidence-0");
    char *text = request ? json_dumps(request, JSON_INDENT(2)) : NULL;
    json_decref(request);
    if (text == NULL) {
        rc = TL_EINVAL;
        goto out;
    }
    if ((rc = write_file(tmp, "evidence-0", evidence, evidence_len)) != 0 ||
        (rc = write_file(tmp, "request.json", text, strlen(text))) != 0 ||
        (rc = tl_fsync_dir(tmp)) != 0)
        goto out;
    if (rename(tmp, final) != 0) {
        rc = -errno;
        goto out;
    }
    rc = tl_fsync_dir(outbox);
out:
    free(text);
    if (rc != 0)
        remove_tree(tmp);
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
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL && count < TL_OUTBOX_MAX_ITEMS * 2) {
        if (!tl_outbox_id_valid(entry->d_name))
            continue; /* temporary and foreign entries are not requests */
        if (count == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            struct item *grown = realloc(items, alloc * sizeof *items);
            if (grown == NULL) {
                rc = TL_ENOMEM;
                break;
            }
            items = grown;
        }
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

int tl_outbox_load(const char *state_dir, const char *id, json_t **request)
{
    if (!tl_outbox_id_valid(id))
        return TL_EINVAL;
    char path[TL_STATE_PATH_MAX], name[TL_OUTBOX_ID_LEN + 16];
    snprintf(name, sizeof name, "%s/request.json", id);
    int rc = outbox_path(state_dir, name, path, sizeof path);
    if (rc != 0)
        return rc;
    json_error_t error;
    *request = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (*request == NULL)
        return access(path, F_OK) == 0 ? TL_EINVAL : TL_ENOTFOUND;
    return 0;
}

int tl_outbox_remove(const char *state_dir, const char *id)
{
    if (!tl_outbox_id_valid(id))
        return TL_EINVAL;
    char dir[TL_STATE_PATH_MAX], outbox[TL_STATE_PATH_MAX];
    int rc = outbox_path(state_dir, id, dir, sizeof dir);
    if (rc == 0)
        rc = remove_tree(dir);
    if (rc == 0 && tl_state_path(state_dir, TL_STATE_OUTBOX, outbox, sizeof outbox) == 0)
        rc = tl_fsync_dir(outbox);
    return rc;
}
