/*
 * Signed notes and checkpoints in the C2SP formats (signed-note, tlog-checkpoint), so that the
 * audit log's checkpoints (docs/audit-format.md) can be checked by any tool that reads them.
 *
 * A signed note is UTF-8 text ending in a newline, a blank line, and signature lines
 *
 *     — NAME BASE64(KEY_ID || SIGNATURE)
 *
 * (an em dash, U+2014, and a space). KEY_ID is the first 4 bytes of
 * SHA-256(NAME || 0x0A || 0x01 || Ed25519 public key); the signature is Ed25519 over the text,
 * its final newline included. A verifier key is "NAME+HEX(KEY_ID)+BASE64(0x01 || public key)".
 *
 * A checkpoint is a note whose text is
 *
 *     ORIGIN
 *     TREE SIZE (decimal)
 *     BASE64(ROOT HASH)
 *     [extension lines]
 *
 * Opening a note fails closed: malformed text, more than TL_NOTE_SIGS_MAX signatures, no
 * signature by the trusted key, or a bad one by it are refused (signatures by other keys are
 * ignored, as the format asks).
 */
#ifndef TL_NOTE_H
#define TL_NOTE_H

#include "proto/keys.h"
#include "proto/merkle.h"

#include <stddef.h>
#include <stdint.h>

#define TL_SIGNED_NOTE_MAX (16 * 1024)
#define TL_NOTE_SIGS_MAX 100
#define TL_NOTE_NAME_MAX 128
/* "NAME+8 hex+base64 of 33 bytes" */
#define TL_NOTE_VKEY_MAX (TL_NOTE_NAME_MAX + 1 + 8 + 1 + 44 + 1)

typedef struct tl_note_verifier {
    char name[TL_NOTE_NAME_MAX + 1];
    uint8_t key_id[4];
    uint8_t public_key[TL_ED25519_KEY_LEN];
} tl_note_verifier_t;

/* A key name: 1..TL_NOTE_NAME_MAX bytes of UTF-8 with no space, '+' or control character. */
int tl_note_name_valid(const char *name);
/* The verifier key of a private or public Ed25519 key under name; TL_EINVAL, TL_EKEY. */
int tl_note_vkey_format(const char *name, EVP_PKEY *key, char out[TL_NOTE_VKEY_MAX]);
/* Reads a verifier key; TL_EINVAL when it is malformed or its key id does not match. */
int tl_note_vkey_parse(const char *vkey, tl_note_verifier_t *out);

/*
 * Signs len bytes of text (valid UTF-8, ending in a newline, no blank line, no control
 * character but newline) under name with key: *out is the signed note, malloc'd, *out_len its
 * length. TL_EINVAL for text or a name the format does not allow; TL_EKEY.
 */
int tl_note_sign(const char *text, size_t len, const char *name, EVP_PKEY *key, char **out,
                 size_t *out_len);
/*
 * Checks a signed note against a trusted verifier key: 0 and the text's length in *text_len
 * (the text is the first *text_len bytes of note) when it carries a good signature by that
 * key; TL_EVERIFY when it has none, or a bad one; TL_EINVAL when it is not a signed note.
 */
int tl_note_open(const char *note, size_t len, const tl_note_verifier_t *verifier,
                 size_t *text_len);

typedef struct tl_checkpoint {
    char origin[TL_NOTE_NAME_MAX + 1];
    uint64_t size;
    tl_merkle_hash_t root;
} tl_checkpoint_t;

/* A checkpoint's text (three lines); TL_EINVAL for an origin the format does not allow. */
int tl_checkpoint_format(const tl_checkpoint_t *checkpoint, char *out, size_t out_size);
/* Reads a checkpoint's text (extension lines are allowed and skipped); TL_EINVAL. */
int tl_checkpoint_parse(const char *text, size_t len, tl_checkpoint_t *out);

#endif
