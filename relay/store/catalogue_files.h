/*
 * The relay's catalogue files (docs/catalogue.md "On the relay"), under DATA/catalogue/:
 *
 *   admin.pub       the trusted catalogue signing key, one "ssh-ed25519 ..." line
 *                   (`catalogue trust`); enroll-code pins its fingerprint in new agents
 *   N.tlcat         published package version N, as signed
 *   published.json  {"version":N,"size":S,"sha256":H}: the package agents are given,
 *                   replaced atomically by `catalogue publish`
 *
 * The relay never signs: it only carries what an admin signed elsewhere.
 */
#ifndef TL_RELAY_CATALOGUE_FILES_H
#define TL_RELAY_CATALOGUE_FILES_H

#include "proto/hash.h"
#include "proto/keys.h"

#include <stddef.h>
#include <stdint.h>

#define TL_DATADIR_CATALOGUE "catalogue"

typedef struct tl_published_catalogue {
    uint64_t version; /* 0: none published */
    uint64_t size;
    char sha256[TL_SHA256_HEX_LEN];
} tl_published_catalogue_t;

/* DATA/catalogue/NAME. */
int tl_catalogue_files_path(const char *data, const char *name, char *out, size_t size);
/* The trusted key's fingerprint; TL_ENOTFOUND when none is trusted, TL_EKEY when damaged. */
int tl_catalogue_files_trusted(const char *data, char out[TL_FINGERPRINT_LEN]);
/* What is published; version 0 when nothing is. TL_EINVAL when published.json is damaged. */
int tl_catalogue_files_published(const char *data, tl_published_catalogue_t *out);
/*
 * Up to max bytes of package version from offset into buf. TL_ENOTFOUND when that version's
 * file is gone. Blocking: worker thread only.
 */
int tl_catalogue_files_read(const char *data, uint64_t version, uint64_t offset, uint8_t *buf,
                            size_t max, size_t *got);

#endif
