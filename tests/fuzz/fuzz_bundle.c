/*
 * Fuzz target for evidence bundles as `tierline verify-bundle` reads them (proto/bundle.c,
 * proto/tar.c; docs/desk.md "Evidence bundles"): an archive from whoever handed it over.
 *
 * The whole input is the archive. It is checked twice: fed whole, and fed in pieces whose sizes
 * come from the input's own bytes (1..1024); both must give the same verdict, the same problem
 * and the same file. A refusal names its problem; a problem names a path only if that path is
 * printable ASCII. MANIFEST is parsed too, on its own: what it accepts holds valid paths and
 * hashes, sorted, none twice.
 */
#include "proto/bundle.h"
#include "proto/err.h"
#include "proto/hash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_in_pieces(const uint8_t *data, size_t size, int whole, char *problem, char *path)
{
    tl_bundle_check_t *check = tl_bundle_check_new();
    if (check == NULL)
        abort();
    int rc = 0;
    for (size_t at = 0; at < size && rc == 0;) {
        size_t piece = whole ? size : 1 + (size_t)data[at] * 4;
        if (piece > size - at)
            piece = size - at;
        rc = tl_bundle_check_feed(check, data + at, piece);
        at += piece;
    }
    if (rc == 0)
        rc = tl_bundle_check_finish(check);
    snprintf(problem, 600, "%s", tl_bundle_check_problem(check));
    snprintf(path, 128, "%s", tl_bundle_check_path(check));
    if ((rc == 0) != (problem[0] == '\0'))
        abort();
    for (const char *p = path; *p != '\0'; p++)
        if (*p <= ' ' || *p > '~')
            abort();
    tl_bundle_check_free(check);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char problem_a[600], problem_b[600], path_a[128], path_b[128];
    int a = check_in_pieces(data, size, 1, problem_a, path_a);
    int b = check_in_pieces(data, size, 0, problem_b, path_b);
    if (a != b || strcmp(problem_a, problem_b) != 0 || strcmp(path_a, path_b) != 0)
        abort();

    tl_bundle_file_t *files = NULL;
    size_t count = 0;
    char why[300];
    int rc = tl_bundle_manifest_parse((const char *)data, size, &files, &count, why, sizeof why);
    if (rc == 0) {
        for (size_t i = 0; i < count; i++) {
            if (!tl_bundle_path_valid(files[i].path) || !tl_sha256_hex_valid(files[i].hash) ||
                (i > 0 && strcmp(files[i - 1].path, files[i].path) >= 0))
                abort();
        }
    } else if (rc != TL_EINVAL && rc != TL_ENOMEM) {
        abort();
    } else if (files != NULL || why[0] == '\0') {
        abort();
    }
    free(files);
    return 0;
}
