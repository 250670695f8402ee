#include "console/download.h"
#include "console/progress.h"
#include "console/quote.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The evidence list as the relay prints it, at most TL_DOWNLOAD_LIST_MAX bytes. */
struct capture {
    tl_buf_t *bytes;
    int error;
};

static int capture_bytes(void *data, const void *bytes, size_t len)
{
    struct capture *capture = data;
    int rc = tl_buf_put(capture->bytes, bytes, len);
    return rc != 0 ? (capture->error = rc) : 0;
}

struct sink {
    int fd; /* FILE.part, or -1 when the bytes go to stdout through the pump */
    tl_sha256_t *hash;
    tl_progress_t *progress;
    uint64_t received;
    int error; /* why the sink stopped the download */
};

static int sink_bytes(void *data, const void *bytes, size_t len)
{
    struct sink *sink = data;
    int rc = tl_sha256_update(sink->hash, bytes, len);
    if (rc == 0 && sink->fd >= 0)
        rc = tl_write_all(sink->fd, bytes, len);
    if (rc != 0) {
        sink->error = rc;
        return rc;
    }
    sink->received += len;
    tl_progress_update(sink->progress, sink->received);
    return 0;
}

static void sink_before_stderr(void *data)
{
    struct sink *sink = data;
    tl_progress_clear(sink->progress);
}

static int hex_id_valid(const char *id)
{
    size_t len = strlen(id);
    if (len < 8 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* Runs words as one command; stdout to the hook only. Exit status, or a negative code. */
static int run_words(tl_client_t *client, const tl_exec_io_t *io, int argc, char **argv)
{
    char *line = NULL;
    int rc = tl_quote_words(argc, argv, &line, NULL);
    if (rc != 0) {
        fprintf(stderr, "tierline: %s\n", tl_strerror(rc));
        return 1;
    }
    tl_exec_result_t result;
    rc = tl_client_exec(client, line, io, &result);
    free(line);
    if (rc != 0)
        return rc;
    if (result.exit_signal[0] != '\0' || result.exit_status < 0) {
        fprintf(stderr, "tierline: the relay ended the command without an exit status\n");
        return 255;
    }
    return result.exit_status;
}

/* Finds the item: its full hash and size. 0, or an exit status after saying why. */
static int find_item(const char *json_text, const char *ticket, const char *id, char hash[65],
                     uint64_t *size)
{
    json_error_t error;
    json_t *list = json_loads(json_text, 0, &error);
    int status = 1, matches = 0;
    if (!json_is_array(list)) {
        fprintf(stderr, "tierline: the relay's evidence list for %s is not a JSON array\n", ticket);
        goto out;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        const char *item_hash = json_string_value(json_object_get(item, "hash"));
        json_t *item_size = json_object_get(item, "size");
        if (item_hash == NULL || !tl_sha256_hex_valid(item_hash) ||
            strncmp(item_hash, id, strlen(id)) != 0)
            continue;
        if (!json_is_integer(item_size) || json_integer_value(item_size) < 0) {
            fprintf(stderr, "tierline: the relay gave no size for evidence %s\n", item_hash);
            goto out;
        }
        if (matches++ == 0) {
            memcpy(hash, item_hash, 65);
            *size = (uint64_t)json_integer_value(item_size);
        }
    }
    if (matches == 0) {
        fprintf(stderr, "tierline: no evidence %s on %s (tierline evidence %s lists it)\n", id,
                ticket, ticket);
        goto out;
    }
    if (matches > 1) {
        fprintf(stderr, "tierline: %s matches %d items on %s; give more digits\n", id, matches,
                ticket);
        goto out;
    }
    status = 0;
out:
    json_decref(list);
    return status;
}

int tl_download_evidence(tl_client_t *client, const tl_exec_io_t *base, const char *ticket,
                         const char *id, const char *output, int show_progress)
{
    struct capture capture = {tl_buf_new(TL_DOWNLOAD_LIST_MAX), 0};
    struct sink sink = {.fd = -1};
    char *list = NULL;
    size_t list_len = 0;
    char part[4200] = "";
    int part_created = 0;
    char hash[65];
    uint64_t size = 0;
    int status;

    if (!hex_id_valid(id)) {
        fprintf(stderr,
                "tierline evidence get: '%s' is not an evidence id (8 to 64 lowercase "
                "hex digits of its sha256)\n",
                id);
        status = 2;
        goto out;
    }
    if (output != NULL && snprintf(part, sizeof part, "%s.part", output) >= (int)sizeof part) {
        fprintf(stderr, "tierline evidence get: the output path is too long\n");
        status = 2;
        goto out;
    }
    if (capture.bytes == NULL) {
        fprintf(stderr, "tierline: out of memory\n");
        status = 1;
        goto out;
    }

    /* 1. Which item, and how big. */
    tl_exec_io_t io = *base;
    io.in_fd = -1;
    io.out_fd = -1;
    io.pty_term = NULL;
    io.on_stdout = capture_bytes;
    io.before_stderr = NULL;
    io.data = &capture;
    char *list_words[] = {"evidence", (char *)ticket, "--json"};
    status = run_words(client, &io, 3, list_words);
    if (status < 0 && capture.error != 0) {
        fprintf(stderr, "tierline: the evidence list of %s is too big to read (%s)\n", ticket,
                tl_strerror(capture.error));
        status = 1;
    }
    if (status != 0)
        goto out;
    if (tl_buf_take_string(capture.bytes, &list, &list_len) != 0) {
        fprintf(stderr, "tierline: out of memory\n");
        status = 1;
        goto out;
    }
    status = find_item(list, ticket, id, hash, &size);
    if (status != 0)
        goto out;

    /* 2. The bytes. */
    sink.hash = tl_sha256_new();
    if (sink.hash == NULL) {
        fprintf(stderr, "tierline: out of memory\n");
        status = 1;
        goto out;
    }
    if (output != NULL) {
        sink.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (sink.fd < 0) {
            fprintf(stderr, "tierline: cannot write %s: %s\n", part, strerror(errno));
            status = 1;
            goto out;
        }
        part_created = 1;
    }
    if (show_progress)
        sink.progress = tl_progress_new(base->err_fd, size);
    io = *base;
    io.in_fd = -1;
    io.out_fd = output != NULL ? -1 : STDOUT_FILENO;
    io.pty_term = NULL;
    io.on_stdout = sink_bytes;
    io.before_stderr = sink_before_stderr;
    io.data = &sink;
    char *get_words[] = {"evidence", "get", (char *)ticket, hash};
    status = run_words(client, &io, 4, get_words);
    tl_progress_free(sink.progress);
    sink.progress = NULL;
    if (status < 0 && sink.error != 0) {
        fprintf(stderr, "tierline: writing %s failed: %s\n", output != NULL ? part : "stdout",
                tl_strerror(sink.error));
        status = 1;
    }
    if (status != 0)
        goto out;

    char received_hash[TL_SHA256_HEX_LEN];
    tl_sha256_final(sink.hash, received_hash);
    if (sink.received != size) {
        fprintf(stderr, "tierline: evidence %s: received %llu bytes, the relay listed %llu\n", hash,
                (unsigned long long)sink.received, (unsigned long long)size);
        status = 1;
        goto out;
    }
    if (strcmp(received_hash, hash) != 0) {
        fprintf(stderr, "tierline: evidence %s is damaged: what arrived has sha256 %s%s\n", hash,
                received_hash, output != NULL ? "; nothing was saved" : "");
        status = 1;
        goto out;
    }
    if (output != NULL) {
        if (fsync(sink.fd) != 0 || close(sink.fd) != 0) {
            sink.fd = -1;
            fprintf(stderr, "tierline: writing %s failed: %s\n", part, strerror(errno));
            status = 1;
            goto out;
        }
        sink.fd = -1;
        if (rename(part, output) != 0) {
            fprintf(stderr, "tierline: cannot rename %s to %s: %s\n", part, output,
                    strerror(errno));
            status = 1;
            goto out;
        }
        part_created = 0;
        fprintf(stderr, "Saved %llu bytes to %s (sha256 %s checked)\n",
                (unsigned long long)sink.received, output, hash);
    }
out:
    tl_progress_free(sink.progress);
    if (sink.fd >= 0)
        close(sink.fd);
    if (part_created)
        unlink(part);
    tl_sha256_free(sink.hash);
    tl_buf_free(capture.bytes);
    free(list);
    return status;
}
