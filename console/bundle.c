/* Evidence bundles in the console: verify-bundle and ticket export -o (console/bundle.h). */
#include "console/bundle.h"
#include "console/progress.h"
#include "console/quote.h"
#include "proto/buf.h"
#include "proto/bundle.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/ids.h"
#include "proto/keys.h"
#include "proto/text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_PIECE (64u * 1024u)
/* The --json answer of `ticket export` the console reads, at most. */
#define SUMMARY_MAX (4u * 1024u * 1024u)

/* ---- verify-bundle -------------------------------------------------------------------------- */

/* Text for a person: one line, escaped (a file name is the user's, a path in a problem the
 * archive's). */
static const char *shown(char *buf, size_t size, const char *text)
{
    tl_text_clip(buf, size, text, 0, TL_TEXT_LINE);
    return buf;
}

int tl_bundle_verify_file(const char *path, const char *trusted, const char *trusted_source,
                          int json_out)
{
    tl_bundle_check_t *check = tl_bundle_check_new();
    uint8_t *piece = malloc(READ_PIECE);
    char file[1100], what[1100], problem[600] = "";
    int fd = -1, rc = 0, status = TL_EXIT_FAILURE, trusted_ok = -1;
    shown(file, sizeof file, path);
    if (check == NULL || piece == NULL) {
        snprintf(problem, sizeof problem, "out of memory");
        goto out;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(problem, sizeof problem, "cannot read it: %s", strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, piece, READ_PIECE);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(problem, sizeof problem, "cannot read it: %s", strerror(errno));
            goto out;
        }
        if (got == 0 || (rc = tl_bundle_check_feed(check, piece, (size_t)got)) != 0)
            break;
    }
    if (rc == 0)
        rc = tl_bundle_check_finish(check);
    if (rc != 0) {
        shown(problem, sizeof problem, tl_bundle_check_problem(check));
        goto out;
    }
    /* Intact and signed by relay.pem: is that the relay's key? */
    if (trusted == NULL) {
        status = TL_BUNDLE_EXIT_UNTRUSTED;
        goto out;
    }
    trusted_ok = tl_fingerprint_equal(tl_bundle_check_key(check), trusted);
    if (!trusted_ok) {
        snprintf(problem, sizeof problem,
                 "%s: signed by %s, not by the trusted key %s (from %s): this bundle is not the "
                 "relay's",
                 TL_BUNDLE_KEY, tl_bundle_check_key(check), trusted, trusted_source);
        goto out;
    }
    status = TL_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    const char *ticket = check != NULL ? tl_bundle_check_ticket(check) : "";
    const char *key = check != NULL ? tl_bundle_check_key(check) : "";
    if (json_out) {
        json_t *report = json_pack(
            "{s:s, s:b, s:s?, s:I, s:s?, s:s?, s:o, s:s?, s:s?}", "file", file, "ok",
            status == TL_EXIT_OK, "ticket", ticket[0] ? ticket : NULL, "files",
            (json_int_t)(check != NULL && status != TL_EXIT_FAILURE ? tl_bundle_check_files(check)
                                                                    : 0),
            "key", key[0] ? key : NULL, "trusted_key", trusted, "trusted",
            trusted_ok < 0 ? json_null() : json_boolean(trusted_ok), "problem",
            problem[0] ? problem : NULL, "path",
            check != NULL && tl_bundle_check_path(check)[0] ? tl_bundle_check_path(check) : NULL);
        char *text = report != NULL
                         ? tl_text_json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                         : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(report);
    } else if (status == TL_EXIT_OK) {
        printf("%s: OK: %s, %zu files, signed by %s (the trusted key, from %s)\n", file, ticket,
               tl_bundle_check_files(check), key, trusted_source);
    } else if (status == TL_BUNDLE_EXIT_UNTRUSTED) {
        fprintf(stderr,
                "tierline verify-bundle: %s: intact and signed by %s, but there is no trusted key "
                "to compare it with: give --fingerprint SHA256:... (the relay's host key, as "
                "tierline-relay init printed it) or --key FILE (tierline-relay host-key --pem)\n",
                file, key);
    } else {
        fprintf(stderr, "tierline verify-bundle: %s: %s\n", file,
                shown(what, sizeof what, problem));
    }
    free(piece);
    tl_bundle_check_free(check);
    return status;
}

/* ---- ticket export -o ----------------------------------------------------------------------- */

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
    int fd;
    tl_bundle_check_t *check;
    tl_progress_t *progress;
    uint64_t received;
    int error; /* why the sink stopped the download */
};

static int sink_bytes(void *data, const void *bytes, size_t len)
{
    struct sink *sink = data;
    int rc = tl_write_all(sink->fd, bytes, len);
    /* The check's verdict waits for the end; the bytes are kept whatever it says so far. */
    if (rc == 0)
        tl_bundle_check_feed(sink->check, bytes, len);
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

/* Runs words as one command; exit status, or a negative code. */
static int run_words(tl_client_t *client, const tl_exec_io_t *io, int argc, char **argv)
{
    char *line = NULL;
    int rc = tl_quote_words(argc, argv, &line, NULL);
    if (rc != 0) {
        fprintf(stderr, "tierline: %s\n", tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    tl_exec_result_t result;
    rc = tl_client_exec(client, line, io, &result);
    free(line);
    if (rc != 0)
        return rc;
    if (result.exit_signal[0] != '\0' || result.exit_status < 0) {
        fprintf(stderr, "tierline: the relay ended the command without an exit status\n");
        return TL_CLIENT_EXIT_SSH;
    }
    return result.exit_status;
}

/* The size the relay says the bundle has (for the progress bar only); 0 if it does not say. */
static uint64_t announced_size(const char *json_text)
{
    json_t *summary = json_loads(json_text, 0, NULL);
    json_t *bytes = json_object_get(summary, "bytes");
    uint64_t size = json_is_integer(bytes) && json_integer_value(bytes) > 0
                        ? (uint64_t)json_integer_value(bytes)
                        : 0;
    json_decref(summary);
    return size;
}

int tl_download_bundle(tl_client_t *client, const tl_exec_io_t *base, int audit, const char *ticket,
                       const char *output, int show_progress)
{
    struct capture capture = {tl_buf_new(SUMMARY_MAX), 0};
    struct sink sink = {.fd = -1, .check = tl_bundle_check_new()};
    char part[4200] = "", *summary = NULL, file[1100];
    size_t summary_len = 0;
    int part_created = 0, status;
    int64_t id = 0;
    shown(file, sizeof file, output);
    if (tl_id_parse(ticket, TL_ID_TICKET, &id) != 0) {
        fprintf(stderr, "tierline %s export: '%s' is not a ticket (T-N)\n",
                audit ? "audit" : "ticket", ticket);
        status = TL_EXIT_USAGE;
        goto out;
    }
    if (snprintf(part, sizeof part, "%s.part", output) >= (int)sizeof part) {
        fprintf(stderr, "tierline %s export: the output path is too long\n",
                audit ? "audit" : "ticket");
        status = TL_EXIT_USAGE;
        goto out;
    }
    if (capture.bytes == NULL || sink.check == NULL) {
        fprintf(stderr, "tierline: out of memory\n");
        status = TL_EXIT_FAILURE;
        goto out;
    }

    /* 1. How big it will be, for the bar; the relay refuses here what it would refuse below. */
    tl_exec_io_t io = *base;
    io.in_fd = -1;
    io.out_fd = -1;
    io.pty_term = NULL;
    io.on_stdout = capture_bytes;
    io.before_stderr = NULL;
    io.data = &capture;
    /* ticket export T-N [--json], or audit export --ticket T-N [--json] */
    char *ticket_words[] = {"ticket", "export", (char *)ticket, "--json"};
    char *audit_words[] = {"audit", "export", "--ticket", (char *)ticket, "--json"};
    char **words = audit ? audit_words : ticket_words;
    int word_count = audit ? 4 : 3;
    status = run_words(client, &io, word_count + 1, words);
    if (status < 0 && capture.error != 0) {
        fprintf(stderr, "tierline: the relay's account of the bundle is too big to read (%s)\n",
                tl_strerror(capture.error));
        status = TL_EXIT_FAILURE;
    }
    if (status != 0)
        goto out;
    if (tl_buf_take_string(capture.bytes, &summary, &summary_len) != 0) {
        fprintf(stderr, "tierline: out of memory\n");
        status = TL_EXIT_FAILURE;
        goto out;
    }

    /* 2. The archive, to FILE.part, checked as it comes. */
    sink.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sink.fd < 0) {
        fprintf(stderr, "tierline: cannot write %s: %s\n", part, strerror(errno));
        status = TL_EXIT_FAILURE;
        goto out;
    }
    part_created = 1;
    if (show_progress)
        sink.progress = tl_progress_new(base->err_fd, announced_size(summary));
    io = *base;
    io.in_fd = -1;
    io.out_fd = -1;
    io.pty_term = NULL;
    io.on_stdout = sink_bytes;
    io.before_stderr = sink_before_stderr;
    io.data = &sink;
    status = run_words(client, &io, word_count, words);
    tl_progress_free(sink.progress);
    sink.progress = NULL;
    if (status < 0 && sink.error != 0) {
        fprintf(stderr, "tierline: writing %s failed: %s\n", part, tl_strerror(sink.error));
        status = TL_EXIT_FAILURE;
    }
    if (status != 0)
        goto out;

    /* 3. Whole, signed, and signed by the relay it came from. */
    status = TL_EXIT_FAILURE;
    char what[600], expected[TL_ID_TEXT];
    if (tl_bundle_check_finish(sink.check) != 0) {
        fprintf(stderr, "tierline: the bundle of %s does not check out: %s; nothing was saved\n",
                ticket, shown(what, sizeof what, tl_bundle_check_problem(sink.check)));
        goto out;
    }
    if (!tl_fingerprint_equal(tl_bundle_check_key(sink.check), tl_client_host_key(client))) {
        fprintf(stderr,
                "tierline: the bundle of %s is signed by %s, not by the relay's host key %s; "
                "nothing was saved\n",
                ticket, tl_bundle_check_key(sink.check), tl_client_host_key(client));
        goto out;
    }
    if (strcmp(tl_bundle_check_ticket(sink.check), tl_id_format(expected, TL_ID_TICKET, id)) != 0) {
        fprintf(stderr, "tierline: the relay sent the bundle of %s, not %s; nothing was saved\n",
                tl_bundle_check_ticket(sink.check), expected);
        goto out;
    }
    if (fsync(sink.fd) != 0 || close(sink.fd) != 0) {
        sink.fd = -1;
        fprintf(stderr, "tierline: writing %s failed: %s\n", part, strerror(errno));
        goto out;
    }
    sink.fd = -1;
    if (rename(part, output) != 0) {
        fprintf(stderr, "tierline: cannot rename %s to %s: %s\n", part, output, strerror(errno));
        goto out;
    }
    part_created = 0;
    fprintf(stderr,
            "Saved %llu bytes to %s: %s, %zu files, signed by the relay's key %s (checked)\n",
            (unsigned long long)sink.received, file, expected, tl_bundle_check_files(sink.check),
            tl_bundle_check_key(sink.check));
    status = TL_EXIT_OK;
out:
    tl_progress_free(sink.progress);
    if (sink.fd >= 0)
        close(sink.fd);
    if (part_created)
        unlink(part);
    tl_bundle_check_free(sink.check);
    tl_buf_free(capture.bytes);
    free(summary);
    return status;
}
