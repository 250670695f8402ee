/*
 * Fuzz target for the audit log's verifier and writer (relay/store/audit.c,
 * docs/audit-format.md).
 *
 * The first input byte picks the mode, the rest is the data:
 *   - even: the data is a log. Every complete line goes through
 *     tl_audit_verify_line() in turn. With bit 2 set the whole log also goes
 *     through tl_audit_verify() (from an in-memory file; slower, so not
 *     always), and both must reach the same verdict, entry count, chain
 *     head, failing line, seq and reason. With bit 1 set, each line is first
 *     given the right "prev" (where it has a "prev":"<64 characters>") and
 *     the right hash suffix, so the fuzzer gets past the hashes to the checks
 *     behind them.
 *   - odd: the data is an entry, NUL-separated: actor, action, subject and
 *     the details as JSON text, with the seq in the next 8 bytes. Whatever
 *     the writer formats, the verifier must accept as the next entry of a
 *     chain; whatever tl_audit_check_entry() accepts, the writer formats.
 */
#include "proto/err.h"
#include "proto/hash.h"
#include "relay/store/audit.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SUFFIX_LEN (9 + 64 + 2) /* ,"hash":"<64 hex>"} */
static const char genesis[] = "0000000000000000000000000000000000000000000000000000000000000000";

static void report_init(tl_audit_report_t *report)
{
    memset(report, 0, sizeof *report);
    memcpy(report->last_hash, genesis, sizeof genesis);
}

/* Gives the line (without its newline) prev and a hash suffix that check out. */
static void fix_up(char *line, size_t len, char prev[TL_SHA256_HEX_LEN])
{
    if (len < SUFFIX_LEN + 1)
        return;
    size_t body_len = len - SUFFIX_LEN;
    static const char key[] = "\"prev\":\"";
    for (size_t at = body_len; at-- > 0;) {
        if (at + 8 + 64 <= body_len && memcmp(line + at, key, 8) == 0) {
            memcpy(line + at + 8, prev, 64);
            break;
        }
    }
    char hash[TL_SHA256_HEX_LEN];
    if (tl_sha256_hex(line, body_len, hash) < 0)
        abort();
    memcpy(line + body_len, ",\"hash\":\"", 9);
    memcpy(line + body_len + 9, hash, 64);
    memcpy(line + body_len + 9 + 64, "\"}", 2);
    memcpy(prev, hash, TL_SHA256_HEX_LEN);
}

static int verify_file(const char *data, size_t len, tl_audit_report_t *report)
{
    int fd = memfd_create("audit", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = tl_audit_verify(path, report);
    close(fd);
    return rc;
}

static void check_log(const uint8_t *data, size_t size, int fix, int whole_file)
{
    char *log = malloc(size + 1);
    if (log == NULL)
        abort();
    memcpy(log, data, size);
    char prev[TL_SHA256_HEX_LEN];
    memcpy(prev, genesis, sizeof genesis);

    tl_audit_report_t lines;
    report_init(&lines);
    int lines_rc = 0;
    size_t start = 0;
    while (start < size) {
        char *newline = memchr(log + start, '\n', size - start);
        if (newline == NULL) {
            lines.partial_tail_bytes = size - start;
            break;
        }
        size_t len = (size_t)(newline - (log + start));
        if (fix)
            fix_up(log + start, len, prev);
        lines_rc = tl_audit_verify_line(&lines, log + start, len);
        if (lines_rc < 0)
            break;
        start += len + 1;
    }
    if (lines_rc != 0 && lines_rc != TL_EPROTO)
        abort();
    if (lines_rc == 0 && lines.bad_line != 0)
        abort();

    tl_audit_report_t whole;
    int whole_rc = whole_file ? verify_file(log, size, &whole) : lines_rc;
    if (!whole_file)
        whole = lines;
    if (whole_rc != lines_rc || whole.entries != lines.entries ||
        strcmp(whole.last_hash, lines.last_hash) != 0 || whole.bad_line != lines.bad_line ||
        whole.bad_seq != lines.bad_seq || strcmp(whole.reason, lines.reason) != 0 ||
        (whole_rc == 0 && whole.partial_tail_bytes != lines.partial_tail_bytes))
        abort();
    free(log);
}

/* Splits at NUL bytes into up to count strings; the last takes the rest. */
static size_t split(const uint8_t *data, size_t size, char *copy, const char **parts, size_t count)
{
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t found = 0, start = 0;
    while (found < count) {
        parts[found++] = copy + start;
        const uint8_t *nul = start < size ? memchr(data + start, '\0', size - start) : NULL;
        if (nul == NULL)
            break;
        start = (size_t)(nul - data) + 1;
    }
    return found;
}

static void check_entry(const uint8_t *data, size_t size)
{
    uint64_t seq = 1;
    if (size >= 8) {
        memcpy(&seq, data, 8);
        data += 8;
        size -= 8;
    }
    char *copy = malloc(size + 1);
    if (copy == NULL)
        abort();
    const char *parts[4] = {"", "", "", ""};
    size_t found = split(data, size, copy, parts, 4);
    json_t *details = NULL;
    if (found == 4 && parts[3][0] != '\0') {
        size_t details_len = size - (size_t)(parts[3] - copy);
        details = json_loadb(parts[3], details_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    }

    tl_audit_report_t report;
    report_init(&report);
    /* A chain whose head is seq - 1 and a hash made from the seq. */
    uint64_t head = seq - 1;
    if (head > 0) {
        report.entries = head;
        if (tl_sha256_hex(&head, sizeof head, report.last_hash) < 0)
            abort();
    }

    char *line = NULL;
    size_t len = 0;
    int rc = tl_audit_format_line(seq, "2026-11-23T19:04:05.123Z", parts[0], parts[1], parts[2],
                                  details, report.last_hash, &line, &len);
    if (rc == 0) {
        if (len < 2 || line[len - 1] != '\n' || memchr(line, '\n', len - 1) != NULL)
            abort();
        if (tl_audit_verify_line(&report, line, len - 1) != 0 || report.entries != seq)
            abort();
    } else if (rc != TL_EINVAL && rc != TL_ENOMEM) {
        abort();
    }
    tl_audit_entry_t entry = {
        .actor = parts[0], .action = parts[1], .subject = parts[2], .details = details};
    int check = tl_audit_check_entry(&entry);
    /* The seq only decides whether the line is formatted at all. */
    if (seq >= 1 && seq <= INT64_MAX && rc != TL_ENOMEM && check != TL_ENOMEM && check != rc)
        abort();
    free(line);
    json_decref(details);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t mode = data[0];
    if (mode & 1)
        check_entry(data + 1, size - 1);
    else
        check_log(data + 1, size - 1, (mode & 2) != 0, (mode & 4) != 0);
    return 0;
}
