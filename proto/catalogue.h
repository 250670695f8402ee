/*
 * Signed catalogue packages (docs/catalogue.md): the runbooks and the published articles an
 * admin signs with the catalogue signing key, which is not the relay's key, so a relay that
 * is not trusted can carry a package but cannot make one. Pure: bytes in, bytes out.
 *
 * A package is
 *
 *   8 bytes   magic "TLCAT01\n"
 *   32 bytes  the signer's Ed25519 public key (raw)
 *   64 bytes  the Ed25519 signature of the manifest's exact bytes
 *   4 bytes   the manifest's length, big-endian, 2..TL_CATALOGUE_MANIFEST_MAX
 *   manifest  JSON: {"format":"tierline-catalogue-1","version":N,"created":MS,
 *                    "files":[{"path":"kb/x.md","size":N,"sha256":"hex","mode":"0644"},...]}
 *   contents  each file's bytes, in the manifest's order, with nothing between or after them
 *
 * tl_catalogue_verify() takes a package only when the signer is the trusted key, the
 * signature holds, the manifest is well formed (paths "runbooks/NAME" or "kb/NAME", sorted,
 * no "..", bounded counts and sizes), the version is newer than the one given, every file
 * matches its SHA-256, and the catalogue parses (each runbook's NAME.json beside NAME, each
 * article a valid article with its own id). A tl_catalogue_t points into the caller's bytes,
 * which must outlive it.
 */
#ifndef TL_CATALOGUE_H
#define TL_CATALOGUE_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#define TL_CATALOGUE_MAGIC "TLCAT01\n"
#define TL_CATALOGUE_MAGIC_LEN 8
#define TL_CATALOGUE_HEADER_LEN (8 + 32 + 64 + 4)
#define TL_CATALOGUE_FORMAT "tierline-catalogue-1"
#define TL_CATALOGUE_MANIFEST_MAX (256 * 1024)
#define TL_CATALOGUE_MAX_FILES 1024
#define TL_CATALOGUE_FILE_MAX (1024 * 1024)
#define TL_CATALOGUE_MAX (16 * 1024 * 1024)          /* a whole package */
#define TL_CATALOGUE_VERSION_MAX 9007199254740991ull /* 2^53 - 1 */
#define TL_CATALOGUE_CREATED_MAX 253402300799999ll
#define TL_CATALOGUE_PATH_MAX 110

typedef struct tl_catalogue_file {
    const char *path; /* "runbooks/clean-temp", "runbooks/clean-temp.json", "kb/var-full.md" */
    const uint8_t *data;
    size_t size;
    int executable; /* mode 0755, else 0644 */
} tl_catalogue_file_t;

typedef struct tl_catalogue tl_catalogue_t;

/* 1 if path may stand in a package: "runbooks/NAME" or "kb/NAME.md", NAME as docs say. */
int tl_catalogue_path_valid(const char *path);

/*
 * A package of count files (in any order; they are sorted by path), version and created (ms
 * since 1970), signed by key. *out is malloc'd. TL_EINVAL with why for files that break the
 * rules (a path, a size, a duplicate, a catalogue that does not parse), TL_EKEY, TL_ENOMEM.
 */
int tl_catalogue_build(const tl_catalogue_file_t *files, size_t count, uint64_t version,
                       int64_t created, EVP_PKEY *key, uint8_t **out, size_t *out_len, char *why,
                       size_t why_size);

/*
 * Checks a package as the agent does before installing it (see above). trusted: the pinned
 * fingerprint of the catalogue signing key; newer_than: the highest version installed (0:
 * none). Errors, each with a one-line reason in why:
 *   TL_ENOTRUST    trusted is NULL or empty: nothing can be accepted
 *   TL_EINVAL      not a package, a malformed manifest, or a catalogue that does not parse
 *   TL_EUNTRUSTED  signed by another key than the trusted one
 *   TL_ESIGNATURE  the signature does not verify (the manifest was changed)
 *   TL_EOLDER      its version is not newer than newer_than
 *   TL_EMISMATCH   a file does not match its size or SHA-256
 *   TL_ENOMEM
 */
int tl_catalogue_verify(const uint8_t *data, size_t len, const char *trusted, uint64_t newer_than,
                        tl_catalogue_t **out, char *why, size_t why_size);
/* The same checks but the signer's and the version: for inspecting and fuzzing. */
int tl_catalogue_parse(const uint8_t *data, size_t len, tl_catalogue_t **out, char *why,
                       size_t why_size);
void tl_catalogue_free(tl_catalogue_t *catalogue);

uint64_t tl_catalogue_version(const tl_catalogue_t *catalogue);
int64_t tl_catalogue_created(const tl_catalogue_t *catalogue);
/* "SHA256:..." of the key that signed it (checked only by tl_catalogue_verify). */
const char *tl_catalogue_signer(const tl_catalogue_t *catalogue);
size_t tl_catalogue_file_count(const tl_catalogue_t *catalogue);
const tl_catalogue_file_t *tl_catalogue_file(const tl_catalogue_t *catalogue, size_t index);
/* Runbooks (executables) and articles it holds. */
size_t tl_catalogue_runbook_count(const tl_catalogue_t *catalogue);
size_t tl_catalogue_article_count(const tl_catalogue_t *catalogue);

#endif
