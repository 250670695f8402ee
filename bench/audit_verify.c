/*
 * audit verify over a large log (docs/audit-format.md §5, §15; docs/benchmarks.md "Audit
 * verify"): the entries per second of the relay's own checks of a log of ENTRIES entries and a
 * signed checkpoint of all of them, as `audit verify` and `tierline-relay audit-verify` run them:
 * the hash chain (every line parsed and hashed), then the checkpoint (its signature, and the
 * Merkle root of the log read again from the first byte). The anchor, measured in the same run
 * over the same file: `sha256sum` and `openssl dgst -sha256`, which hash the bytes once and check
 * nothing.
 *
 *     tierline-bench-audit-verify [--entries N] [--dir DIR]
 *
 * Prints a Markdown section.
 */
#include "audit_log.h"
#include "proto/keys.h"
#include "proto/note.h"
#include "relay/store/audit.h"
#include "relay/store/audit_anchors.h"
#include "relay/store/audit_tree.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME "tierline.relay/bench"

/* A checkpoint of the whole log, signed by a new key, at path; the key's verifier in out. */
static int write_checkpoint(const char *log, uint64_t size, const char *path,
                            tl_note_verifier_t *out)
{
    tl_checkpoint_t checkpoint = {.size = size};
    char text[512], vkey[TL_NOTE_VKEY_MAX], *note = NULL;
    size_t note_len = 0;
    uint64_t lines = 0;
    EVP_PKEY *key = NULL;
    snprintf(checkpoint.origin, sizeof checkpoint.origin, "%s", NAME);
    int rc = tl_audit_tree_roots_of_log(log, &size, 1, &checkpoint.root, &lines);
    if (rc == 0)
        rc = tl_key_generate(&key);
    if (rc == 0)
        rc = tl_checkpoint_format(&checkpoint, text, sizeof text);
    if (rc == 0)
        rc = tl_note_sign(text, strlen(text), NAME, key, &note, &note_len);
    if (rc == 0)
        rc = tl_note_vkey_format(NAME, key, vkey);
    if (rc == 0)
        rc = tl_note_vkey_parse(vkey, out);
    FILE *file = rc == 0 ? fopen(path, "w") : NULL;
    if (file != NULL) {
        if (fwrite(note, 1, note_len, file) != note_len || fputc('\n', file) == EOF)
            rc = -1;
        if (fclose(file) != 0)
            rc = -1;
    } else if (rc == 0) {
        rc = -1;
    }
    free(note);
    EVP_PKEY_free(key);
    return rc;
}

/* Wall time of one shell command, in ms; negative if it fails. */
static double timed(const char *command)
{
    double start = tl_bench_now_ms();
    int status = system(command);
    return status == 0 ? tl_bench_now_ms() - start : -1;
}

int main(int argc, char **argv)
{
    long entries = 1000000;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--entries") == 0)
            entries = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
    }
    if (entries < 1 || entries > 100000000) {
        fprintf(stderr, "usage: tierline-bench-audit-verify [--entries N] [--dir DIR]\n");
        return 2;
    }
    char log[4096], notes[4096], command[9000];
    snprintf(log, sizeof log, "%s/tl-bench-verify-%d.log", dir, (int)getpid());
    snprintf(notes, sizeof notes, "%s/tl-bench-verify-%d.checkpoints", dir, (int)getpid());
    tl_note_verifier_t verifier;
    int status = 1;
    if (tl_bench_audit_log_write(log, entries) != 0 ||
        write_checkpoint(log, (uint64_t)entries, notes, &verifier) != 0) {
        fprintf(stderr, "cannot write %s or its checkpoint\n", log);
        goto out;
    }
    struct stat st;
    if (stat(log, &st) != 0)
        goto out;
    /* Once through first, so every run below reads the file from the page cache alike. */
    snprintf(command, sizeof command, "cat '%s' > /dev/null", log);
    timed(command);

    tl_audit_report_t report;
    double t0 = tl_bench_now_ms();
    int rc = tl_audit_verify(log, &report);
    double chain = tl_bench_now_ms() - t0;
    const char *files[] = {notes};
    const int optional[] = {0};
    tl_audit_anchor_report_t anchors;
    t0 = tl_bench_now_ms();
    int anchors_rc = tl_audit_anchors_verify(log, files, optional, 1, &verifier, &anchors);
    double roots = tl_bench_now_ms() - t0;
    if (rc != 0 || anchors_rc != 0 || report.entries != (uint64_t)entries) {
        fprintf(stderr, "the log does not verify: %s %s\n", report.reason, anchors.reason);
        goto out;
    }
    snprintf(command, sizeof command, "sha256sum '%s' > /dev/null", log);
    double sha256sum = timed(command);
    snprintf(command, sizeof command, "openssl dgst -sha256 '%s' > /dev/null", log);
    double dgst = timed(command);
    double total = chain + roots;
    printf("## Audit verify\n\n`tierline-bench-audit-verify`: `audit verify` of a log of %ld "
           "entries (%.0f MB) and one signed checkpoint of all of them, on one core, the file in "
           "the page cache. Target: 50,000 entries/s.\n\n"
           "| check | time | entries/s | MB/s |\n|---|---:|---:|---:|\n",
           entries, st.st_size / 1e6);
    const struct {
        const char *label;
        double ms;
    } rows[] = {
        {"hash chain (§5: every line parsed, checked, hashed)", chain},
        {"checkpoint (§15: signature, Merkle root of the log read again)", roots},
        {"**audit verify, both**", total},
        {"anchor: `sha256sum` over the same bytes (no parsing)", sha256sum},
        {"anchor: `openssl dgst -sha256` over the same bytes", dgst},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].ms < 0) {
            printf("| %s | failed | | |\n", rows[i].label);
            continue;
        }
        printf("| %s | %.0f ms | %.0f | %.0f |\n", rows[i].label, rows[i].ms,
               entries / (rows[i].ms / 1e3), st.st_size / 1e6 / (rows[i].ms / 1e3));
    }
    status = 0;
out:
    unlink(log);
    unlink(notes);
    return status;
}
