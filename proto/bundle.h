/*
 * A ticket's evidence bundle (docs/desk.md "Vendor hand-off and evidence bundles"): what the
 * relay writes for `ticket export` and what `tierline verify-bundle` checks, so both sides
 * share one vocabulary. Pure: bytes in, bytes out, no I/O.
 *
 * A bundle is a ustar archive (proto/tar.h) whose first entry is the ticket's folder, "T-4/",
 * and whose files are all in it:
 *
 *   MANIFEST        one line per file below, as `sha256sum` writes and `sha256sum -c` reads:
 *                   64 lowercase hex digits, two spaces, the path within the folder, a newline
 *   MANIFEST.sig    the Ed25519 signature of MANIFEST's bytes by the relay's key (64 bytes)
 *   relay.pem       the public half of that key, PEM (what `openssl pkeyutl -pubin` reads)
 *   timeline.json   the ticket, its timeline, its history of changes and its evidence list
 *   evidence/NNNN-NAME, recordings/NNNN-NAME
 *                   each evidence item, as stored, under its own SHA-256 in MANIFEST
 *   audit/entries.log, audit/proofs.json, audit/checkpoint, audit/audit.vkey, verify_bundle.py
 *                   the audit part (docs/audit-format.md §19): the log's entries about the
 *                   ticket, an inclusion proof of each against one signed checkpoint, the audit
 *                   verifier key, and the reference verifier that checks them
 *
 * The signature makes MANIFEST the relay's word; MANIFEST makes every file's content the one
 * the relay kept. Whether relay.pem is the relay's key is for the reader to settle with a copy
 * they trust (its fingerprint is the relay's SSH host key fingerprint).
 *
 * tl_bundle_check_* reads an archive as it arrives, with bounded memory whatever its size:
 * the three small files are kept, every other file is hashed as it passes.
 */
#ifndef TL_BUNDLE_H
#define TL_BUNDLE_H

#include "proto/buf.h"
#include "proto/keys.h"

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#define TL_BUNDLE_MANIFEST "MANIFEST"
#define TL_BUNDLE_SIGNATURE "MANIFEST.sig"
#define TL_BUNDLE_KEY "relay.pem"
#define TL_BUNDLE_TIMELINE "timeline.json"
/* The audit part (docs/audit-format.md §19). */
#define TL_BUNDLE_AUDIT_ENTRIES "audit/entries.log"
#define TL_BUNDLE_AUDIT_PROOFS "audit/proofs.json"
#define TL_BUNDLE_AUDIT_CHECKPOINT "audit/checkpoint"
#define TL_BUNDLE_AUDIT_KEY "audit/audit.vkey"
#define TL_BUNDLE_VERIFIER "verify_bundle.py"
/* timeline.json's "format". */
#define TL_BUNDLE_FORMAT "tierline-bundle 1"

/* Evidence items in one bundle at most. */
#define TL_BUNDLE_MAX_ITEMS 9999
/* Files other than the items (timeline.json, the audit part): lines of MANIFEST at most are
 * TL_BUNDLE_MAX_FILES. */
#define TL_BUNDLE_MAX_EXTRA 15
#define TL_BUNDLE_MAX_FILES (TL_BUNDLE_MAX_ITEMS + TL_BUNDLE_MAX_EXTRA)
/* A path within the folder: the folder ("T-" and up to 19 digits, "/") and it fit a tar name. */
#define TL_BUNDLE_PATH_MAX 72
#define TL_BUNDLE_MANIFEST_MAX (TL_BUNDLE_MAX_FILES * (64 + 2 + TL_BUNDLE_PATH_MAX + 1))
#define TL_BUNDLE_SIGNATURE_LEN 64
#define TL_BUNDLE_KEY_MAX 4096

/*
 * 1 if path may name a file in a bundle: at most TL_BUNDLE_PATH_MAX bytes, components of
 * A-Z a-z 0-9 . _ - separated by single '/', none starting with '.' (so `sha256sum -c` reads
 * it as written, and it stays inside the folder).
 */
int tl_bundle_path_valid(const char *path);

/*
 * The path of the index-th evidence item (1-based) of kind named name: "evidence/0001-NAME",
 * recordings under "recordings/"; NAME is the item's name with each run of other characters
 * than A-Z a-z 0-9 . _ - made one '-', and its middle cut out when it is long. TL_EINVAL for an
 * index of 0 or over TL_BUNDLE_MAX_ITEMS, TL_EFULL if out is too small (73 bytes will do).
 */
int tl_bundle_evidence_path(size_t index, const char *kind, const char *name, char *out,
                            size_t size);

/* Appends "HASH  PATH\n" to manifest; TL_EINVAL for a hash or path that could not be read back. */
int tl_bundle_manifest_add(tl_buf_t *manifest, const char *hash, const char *path);

/* One line of MANIFEST. */
typedef struct tl_bundle_file {
    char path[TL_BUNDLE_PATH_MAX + 1];
    char hash[65];
} tl_bundle_file_t;

/*
 * Reads MANIFEST: *files (malloc'd, freed by the caller; NULL when empty) and *count. TL_EINVAL
 * with problem ("line 3: ...") for a line not as above, a path twice, a path of one of the
 * three files that cannot be listed, text not ending in a newline, or more lines than a bundle
 * holds.
 */
int tl_bundle_manifest_parse(const char *text, size_t len, tl_bundle_file_t **files, size_t *count,
                             char *problem, size_t problem_size);

/* Ed25519 signature of data by key (a private key): sig gets TL_BUNDLE_SIGNATURE_LEN bytes. */
int tl_bundle_sign(EVP_PKEY *key, const void *data, size_t len,
                   uint8_t sig[TL_BUNDLE_SIGNATURE_LEN]);
/* 0 if sig is public_key's signature of data; TL_ESIGNATURE if not; TL_EKEY for another key. */
int tl_bundle_signature_check(EVP_PKEY *public_key, const void *data, size_t len,
                              const uint8_t *sig, size_t sig_len);
/* The public half of key as PEM text (SubjectPublicKeyInfo), malloc'd, NUL-terminated. */
int tl_bundle_key_pem(EVP_PKEY *key, char **pem, size_t *len);
/* An Ed25519 public key from PEM text; TL_EKEY for anything else. */
int tl_bundle_key_read(const void *pem, size_t len, EVP_PKEY **out);

/* ---- checking a bundle as it arrives ------------------------------------------------------ */

typedef struct tl_bundle_check tl_bundle_check_t;

tl_bundle_check_t *tl_bundle_check_new(void);
/* NULL is a no-op. */
void tl_bundle_check_free(tl_bundle_check_t *check);
/*
 * The next bytes of the archive. 0, or the first problem's code (TL_EINVAL for an archive
 * that is not a bundle, TL_ENOMEM), after which every call returns it again.
 */
int tl_bundle_check_feed(tl_bundle_check_t *check, const void *data, size_t len);
/*
 * The archive has ended: 0 if it is whole (its end blocks came), holds the three files,
 * MANIFEST.sig is relay.pem's signature of MANIFEST, every file MANIFEST lists is there with
 * that SHA-256, and nothing else is. Otherwise the first problem: TL_ETRUNCATED (the archive
 * stops early), TL_ESIGNATURE (MANIFEST changed, or signed by another key), TL_EMISMATCH (a
 * file whose content is not the one listed), TL_EINVAL (anything else).
 */
int tl_bundle_check_finish(tl_bundle_check_t *check);
/* What is wrong, one line naming the file first ("evidence/0002-x.json: ..."); "" if nothing. */
const char *tl_bundle_check_problem(const tl_bundle_check_t *check);
/* The path (within the folder) the problem is about; "" when it is the archive itself. */
const char *tl_bundle_check_path(const tl_bundle_check_t *check);
/* The ticket ("T-4", from the folder; "" before it is known). */
const char *tl_bundle_check_ticket(const tl_bundle_check_t *check);
/* relay.pem's fingerprint, "SHA256:..." as ssh-keygen -l prints it; "" before it is known. */
const char *tl_bundle_check_key(const tl_bundle_check_t *check);
/* Files MANIFEST lists (after a good finish). */
size_t tl_bundle_check_files(const tl_bundle_check_t *check);

#endif
