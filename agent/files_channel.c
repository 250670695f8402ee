/*
 * `file` channels (agent/files_channel.h).
 *
 * A transfer lives from its open until both CLOSEs (tl_file_channels_closed)
 * and, for a push being committed, until its worker is back. Reading goes in
 * turns: one idle handle reads at most TL_FILE_CHANNEL_CHUNK of each pull
 * that has window per loop turn, and stops while none has.
 */
#include "agent/files_channel.h"

#include "agent/files.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/msg.h"
#include "proto/sftp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Grants whose files are counted at once; the oldest count is forgotten past it. */
#define COUNTED_GRANTS 64

struct transfer {
    struct transfer *next;
    tl_file_channels_t *owner;
    tl_mux_t *mux; /* NULL once the channel is gone */
    uint32_t channel;
    char grant[40];
    int push;
    int fd;                  /* pull: the file; -1 once read or dropped */
    uint64_t sent;           /* pull: bytes sent */
    tl_files_write_t *write; /* push: NULL once committed or dropped */
    uv_work_t work;
    int working;   /* push: the commit runs on a worker */
    int commit_rc; /* its result */
    int close_sent;
};

struct grant_count {
    char grant[40];
    uint32_t files;
};

struct tl_file_channels {
    uv_loop_t *loop;
    uv_idle_t turn;
    int turning;
    int freeing;
    tl_file_limits_t limits;
    struct transfer *list;
    struct grant_count counts[COUNTED_GRANTS];
    unsigned next_count;
    uint8_t chunk[TL_FILE_CHANNEL_CHUNK];
};

static struct transfer *find(const tl_file_channels_t *files, uint32_t channel)
{
    for (struct transfer *t = files->list; t != NULL; t = t->next)
        if (t->mux != NULL && t->channel == channel)
            return t;
    return NULL;
}

int tl_file_channels_has(const tl_file_channels_t *files, uint32_t channel)
{
    return files != NULL && find(files, channel) != NULL;
}

/* Drops what the transfer holds: the file read, the file being written (removed). */
static void release_file(struct transfer *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    if (t->write != NULL && !t->working) {
        tl_files_write_abort(t->write);
        t->write = NULL;
    }
}

static void maybe_free_owner(tl_file_channels_t *files);

/* Frees t once its channel is gone and no worker holds it. */
static void maybe_free(struct transfer *t)
{
    if (t->mux != NULL || t->working)
        return;
    tl_file_channels_t *files = t->owner;
    struct transfer **at = &files->list;
    while (*at != t)
        at = &(*at)->next;
    *at = t->next;
    release_file(t);
    free(t);
    maybe_free_owner(files);
}

/* The end of the transfer: EOF and CLOSE with status 0 or the error's code. */
static void finish(struct transfer *t, int rc)
{
    release_file(t);
    if (t->mux == NULL || t->close_sent)
        return;
    t->close_sent = 1;
    if (rc != 0)
        tl_log_warn("file transfer failed channel=%u grant=%s direction=%s reason=%s", t->channel,
                    t->grant, t->push ? "push" : "pull", tl_err_name(rc));
    struct tl_msg_channel_close status = {.flags = TL_CLOSE_HAS_EXIT_STATUS,
                                          .exit_status = rc == 0 ? 0 : -rc};
    tl_mux_eof(t->mux, t->channel);
    if (tl_mux_close(t->mux, t->channel, &status) != 0)
        tl_log_warn("file channel close failed channel=%u", t->channel);
}

/* ---- reading, in turns -------------------------------------------------------------------- */

/* One turn of a pull: at most a chunk within the window. 1 when it has more to do. */
static int pull_turn(tl_file_channels_t *files, struct transfer *t)
{
    if (t->push || t->fd < 0 || t->close_sent || t->mux == NULL)
        return 0;
    size_t window = tl_mux_send_window(t->mux, t->channel);
    if (window == 0)
        return 0;
    size_t want = window < sizeof files->chunk ? window : sizeof files->chunk;
    ssize_t n;
    do
        n = read(t->fd, files->chunk, want);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        finish(t, TL_EIO);
        return 0;
    }
    if (n == 0) {
        tl_log_info("file pulled channel=%u grant=%s size=%llu", t->channel, t->grant,
                    (unsigned long long)t->sent);
        finish(t, 0);
        return 0;
    }
    size_t len = (size_t)n;
    int over = t->sent + len > files->limits.max_bytes;
    if (over)
        len = (size_t)(files->limits.max_bytes - t->sent); /* nothing past the limit */
    size_t written = 0;
    if (len > 0 && tl_mux_write(t->mux, t->channel, 0, files->chunk, len, &written) != 0) {
        finish(t, TL_EIO);
        return 0;
    }
    t->sent += written;
    if (over) {
        finish(t, TL_EFULL);
        return 0;
    }
    if (written < len) { /* cannot happen within the window; go back to where it stopped */
        if (lseek(t->fd, -(off_t)(len - written), SEEK_CUR) < 0) {
            finish(t, TL_EIO);
            return 0;
        }
    }
    return 1;
}

static void on_turn(uv_idle_t *idle)
{
    tl_file_channels_t *files = idle->data;
    int more = 0;
    for (struct transfer *t = files->list; t != NULL; t = t->next)
        more |= pull_turn(files, t);
    if (!more) {
        uv_idle_stop(&files->turn);
        files->turning = 0;
    }
}

static void start_turns(tl_file_channels_t *files)
{
    if (!files->turning && !files->freeing) {
        files->turning = 1;
        uv_idle_start(&files->turn, on_turn);
    }
}

/* ---- the module ------------------------------------------------------------------------------ */

tl_file_channels_t *tl_file_channels_new(uv_loop_t *loop, const tl_file_limits_t *limits)
{
    tl_file_channels_t *files = calloc(1, sizeof *files);
    if (files == NULL)
        return NULL;
    files->loop = loop;
    if (limits != NULL)
        files->limits = *limits;
    if (files->limits.max_bytes == 0)
        files->limits.max_bytes = TL_FILE_CHANNEL_MAX_BYTES;
    if (files->limits.max_files == 0)
        files->limits.max_files = TL_FILE_CHANNEL_MAX_FILES;
    uv_idle_init(loop, &files->turn);
    files->turn.data = files;
    return files;
}

static void on_turn_closed(uv_handle_t *handle)
{
    tl_file_channels_t *files = handle->data;
    files->turning = -1; /* closed */
    maybe_free_owner(files);
}

static void maybe_free_owner(tl_file_channels_t *files)
{
    if (files->freeing && files->list == NULL && files->turning == -1)
        free(files);
}

void tl_file_channels_free(tl_file_channels_t *files)
{
    if (files == NULL)
        return;
    tl_file_channels_disconnected(files);
    files->freeing = 1;
    files->turning = 0;
    uv_close((uv_handle_t *)&files->turn, on_turn_closed);
}

/* Counts one more file of grant; 0 when it is over the limit. */
static int count_file(tl_file_channels_t *files, const char *grant)
{
    struct grant_count *c = NULL;
    for (unsigned i = 0; i < COUNTED_GRANTS && c == NULL; i++)
        if (strcmp(files->counts[i].grant, grant) == 0)
            c = &files->counts[i];
    if (c == NULL) {
        c = &files->counts[files->next_count++ % COUNTED_GRANTS];
        tl_format(c->grant, sizeof c->grant, "%s", grant);
        c->files = 0;
    }
    if (c->files >= files->limits.max_files)
        return 0;
    c->files++;
    return 1;
}

/* Why an open of path failed, for the technician. */
static void open_failure(char *message, size_t size, int rc, const char *path, int push)
{
    const char *why = rc == TL_ENOTFOUND ? "no such file or directory"
                      : rc == TL_EDENIED ? "refused: a symbolic link on the path, or the "
                                           "machine's permissions"
                      : rc == TL_EINVAL  ? (push ? "not a regular file (a directory, a link, a "
                                                   "device or a FIFO is not written)"
                                                 : "not a regular file (a directory, a device or "
                                                   "a FIFO is not read)")
                                         : "the machine could not open it";
    tl_format(message, size, "%s: %s", path, why);
}

int tl_file_channels_open(tl_file_channels_t *files, tl_mux_t *mux, uint32_t channel,
                          json_t *params, const char *grant, bool push_allowed, char *message,
                          size_t message_size)
{
    const char *path = json_string_value(json_object_get(params, "path"));
    const char *direction = json_string_value(json_object_get(params, "direction"));
    int push = direction != NULL && strcmp(direction, "push") == 0;
    tl_format(message, message_size, "%s", "");
    if (path == NULL || tl_sftp_machine_path_check(path) != 0 || direction == NULL ||
        (!push && strcmp(direction, "pull") != 0)) {
        tl_format(message, message_size, "%s",
                  "a file channel needs an absolute, normalised \"path\" without control "
                  "characters and \"direction\": \"pull\" or \"push\"");
        return TL_EINVAL;
    }
    if (push && !push_allowed) {
        tl_format(message, message_size, "%s: the user allowed copying from this machine only",
                  path);
        return TL_EDENIED;
    }
    struct transfer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return TL_ENOMEM;
    t->fd = -1;
    int rc;
    if (push) {
        rc = tl_files_write_begin(path, 0644, files->limits.max_bytes, &t->write);
    } else {
        struct stat st;
        rc = tl_files_open_read(path, &t->fd, &st);
        if (rc == 0 && (uint64_t)st.st_size > files->limits.max_bytes) {
            tl_format(message, message_size, "%s: larger than the limit of %llu bytes", path,
                      (unsigned long long)files->limits.max_bytes);
            rc = TL_EFULL;
        }
    }
    if (rc != 0 && message[0] == '\0')
        open_failure(message, message_size, rc, path, push);
    if (rc == 0 && !count_file(files, grant)) {
        tl_format(message, message_size, "the limit of %u files under grant %s is reached",
                  files->limits.max_files, grant);
        rc = TL_EFULL;
    }
    if (rc == 0 && (rc = tl_mux_confirm(mux, channel)) != 0)
        tl_format(message, message_size, "the channel could not be confirmed: %s", tl_strerror(rc));
    if (rc != 0) {
        release_file(t);
        free(t);
        return rc;
    }
    t->owner = files;
    t->mux = mux;
    t->channel = channel;
    t->push = push;
    tl_format(t->grant, sizeof t->grant, "%s", grant);
    t->next = files->list;
    files->list = t;
    tl_log_info("file channel opened channel=%u grant=%s direction=%s", channel, grant,
                push ? "push" : "pull");
    if (!push)
        start_turns(files);
    return 0;
}

void tl_file_channels_data(tl_file_channels_t *files, uint32_t channel, const uint8_t *data,
                           size_t len)
{
    struct transfer *t = find(files, channel);
    if (t == NULL)
        return;
    tl_mux_consumed(t->mux, channel, len);
    if (!t->push || t->write == NULL || t->working || t->close_sent)
        return; /* a pull takes nothing; a failed push drops the rest */
    int rc = tl_files_write_data(t->write, data, len);
    if (rc != 0)
        finish(t, rc == TL_EFULL ? TL_EFULL : TL_EIO);
}

static void commit_work(uv_work_t *work)
{
    struct transfer *t = work->data;
    t->commit_rc = tl_files_write_commit(t->write);
}

static void commit_done(uv_work_t *work, int status)
{
    struct transfer *t = work->data;
    t->working = 0;
    t->write = NULL; /* freed by the commit either way */
    int rc = status != 0 ? TL_EIO : t->commit_rc;
    if (rc == 0)
        tl_log_info("file pushed channel=%u grant=%s", t->channel, t->grant);
    finish(t, rc);
    maybe_free(t);
}

void tl_file_channels_eof(tl_file_channels_t *files, uint32_t channel)
{
    struct transfer *t = find(files, channel);
    if (t == NULL || !t->push || t->write == NULL || t->working || t->close_sent)
        return;
    t->working = 1;
    t->work.data = t;
    if (uv_queue_work(files->loop, &t->work, commit_work, commit_done) != 0) {
        t->working = 0;
        finish(t, TL_EIO);
    }
}

void tl_file_channels_writable(tl_file_channels_t *files, uint32_t channel)
{
    struct transfer *t = find(files, channel);
    if (t != NULL && !t->push)
        start_turns(files);
}

void tl_file_channels_closed(tl_file_channels_t *files, uint32_t channel)
{
    struct transfer *t = find(files, channel);
    if (t == NULL)
        return;
    t->mux = NULL;
    release_file(t); /* a write not committed is removed (a commit running finishes alone) */
    maybe_free(t);
}

size_t tl_file_channels_end_grant(tl_file_channels_t *files, const char *grant)
{
    size_t ended = 0;
    for (struct transfer *t = files->list; t != NULL; t = t->next) {
        if (t->mux == NULL || t->close_sent || strcmp(t->grant, grant) != 0 || t->working)
            continue;
        finish(t, TL_ECLOSED);
        ended++;
    }
    return ended;
}

void tl_file_channels_disconnected(tl_file_channels_t *files)
{
    struct transfer *t = files->list;
    while (t != NULL) {
        struct transfer *next = t->next;
        t->mux = NULL;
        release_file(t);
        maybe_free(t);
        t = next;
    }
}
