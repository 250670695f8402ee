/* Signed notes and checkpoints (proto/note.h). */
#include "proto/note.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/text.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EM_DASH "\xe2\x80\x94"
#define ALG_ED25519 0x01

int tl_note_name_valid(const char *name)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > TL_NOTE_NAME_MAX || !tl_text_utf8_valid(name, len))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch == '+' || ch == 0x7f)
            return 0;
    }
    return 1;
}

static int key_id(const char *name, const uint8_t pub[TL_ED25519_KEY_LEN], uint8_t id[4])
{
    size_t n = strlen(name);
    uint8_t buf[TL_NOTE_NAME_MAX + 2 + TL_ED25519_KEY_LEN], digest[32];
    memcpy(buf, name, n);
    buf[n] = '\n';
    buf[n + 1] = ALG_ED25519;
    memcpy(buf + n + 2, pub, TL_ED25519_KEY_LEN);
    if (EVP_Digest(buf, n + 2 + TL_ED25519_KEY_LEN, digest, NULL, EVP_sha256(), NULL) != 1)
        return TL_ENOMEM;
    memcpy(id, digest, 4);
    return 0;
}

int tl_note_vkey_format(const char *name, EVP_PKEY *key, char out[TL_NOTE_VKEY_MAX])
{
    out[0] = '\0';
    if (!tl_note_name_valid(name))
        return TL_EINVAL;
    uint8_t typed[1 + TL_ED25519_KEY_LEN], id[4];
    typed[0] = ALG_ED25519;
    int rc = tl_key_raw_public(key, typed + 1);
    if (rc == 0)
        rc = key_id(name, typed + 1, id);
    if (rc != 0)
        return rc;
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, typed, sizeof typed);
    return tl_format(out, TL_NOTE_VKEY_MAX, "%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2],
                     id[3], b64);
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int tl_note_vkey_parse(const char *vkey, tl_note_verifier_t *out)
{
    memset(out, 0, sizeof *out);
    const char *plus1 = vkey != NULL ? strchr(vkey, '+') : NULL;
    const char *plus2 = plus1 != NULL ? strchr(plus1 + 1, '+') : NULL;
    if (plus2 == NULL || plus2 - plus1 != 9 || (size_t)(plus1 - vkey) > TL_NOTE_NAME_MAX)
        return TL_EINVAL;
    memcpy(out->name, vkey, (size_t)(plus1 - vkey));
    if (!tl_note_name_valid(out->name))
        return TL_EINVAL;
    uint8_t id[4];
    for (int i = 0; i < 4; i++) {
        int hi = hex_value(plus1[1 + 2 * i]), lo = hex_value(plus1[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return TL_EINVAL;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    uint8_t typed[1 + TL_ED25519_KEY_LEN + 1];
    size_t n;
    if (tl_base64_decode(plus2 + 1, strlen(plus2 + 1), typed, sizeof typed, &n) != 0 ||
        n != 1 + TL_ED25519_KEY_LEN || typed[0] != ALG_ED25519)
        return TL_EINVAL;
    memcpy(out->public_key, typed + 1, TL_ED25519_KEY_LEN);
    int rc = key_id(out->name, out->public_key, out->key_id);
    if (rc != 0)
        return rc;
    return memcmp(id, out->key_id, 4) == 0 ? 0 : TL_EINVAL;
}

/* Text a note may sign: valid UTF-8, non-empty, ending in a newline, no blank line, no
 * control character but newline. */
static bool text_valid(const char *text, size_t len)
{
    if (len == 0 || len > TL_SIGNED_NOTE_MAX || text[len - 1] != '\n' ||
        !tl_text_utf8_valid(text, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if ((ch < 0x20 && ch != '\n') || ch == 0x7f)
            return false;
        if (ch == '\n' && (i == 0 || text[i - 1] == '\n'))
            return false;
    }
    return true;
}

int tl_note_sign(const char *text, size_t len, const char *name, EVP_PKEY *key, char **out,
                 size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!text_valid(text, len) || !tl_note_name_valid(name))
        return TL_EINVAL;
    uint8_t blob[4 + TL_ED25519_SIG_LEN], pub[TL_ED25519_KEY_LEN];
    int rc = tl_key_raw_public(key, pub);
    if (rc == 0)
        rc = key_id(name, pub, blob);
    if (rc == 0)
        rc = tl_key_sign(key, text, len, blob + 4);
    if (rc != 0)
        return rc;
    char b64[96];
    EVP_EncodeBlock((unsigned char *)b64, blob, sizeof blob);
    size_t size = len + 1 + strlen(EM_DASH) + 1 + strlen(name) + 1 + strlen(b64) + 2;
    char *note = malloc(size);
    if (note == NULL)
        return TL_ENOMEM;
    memcpy(note, text, len);
    int n = snprintf(note + len, size - len, "\n" EM_DASH " %s %s\n", name, b64);
    if (n < 0 || (size_t)n >= size - len) {
        free(note);
        return TL_EFULL;
    }
    *out = note;
    *out_len = len + (size_t)n;
    return 0;
}

int tl_note_open(const char *note, size_t len, const tl_note_verifier_t *verifier, size_t *text_len)
{
    *text_len = 0;
    if (len == 0 || len > TL_SIGNED_NOTE_MAX || note[len - 1] != '\n' ||
        !tl_text_utf8_valid(note, len))
        return TL_EINVAL;
    /* The text ends at the last blank line; what follows is signature lines. */
    size_t split = 0;
    for (size_t i = len - 1; i > 0; i--) {
        if (note[i] == '\n' && note[i - 1] == '\n') {
            split = i;
            break;
        }
    }
    if (split == 0 || !text_valid(note, split))
        return TL_EINVAL;
    size_t pos = split + 1, count = 0;
    int result = TL_EVERIFY;
    bool decided = false;
    while (pos < len) {
        const char *line = note + pos, *end = memchr(line, '\n', len - pos);
        size_t n = (size_t)(end - line);
        pos += n + 1;
        if (++count > TL_NOTE_SIGS_MAX)
            return TL_EINVAL;
        size_t dash = strlen(EM_DASH);
        const char *space = n > dash + 1 ? memchr(line + dash + 1, ' ', n - dash - 1) : NULL;
        if (n < dash + 1 || memcmp(line, EM_DASH " ", dash + 1) != 0 || space == NULL)
            return TL_EINVAL;
        size_t name_len = (size_t)(space - line) - dash - 1;
        for (size_t i = 0; i < (size_t)(end - space - 1); i++)
            if (space[1 + i] == ' ')
                return TL_EINVAL;
        uint8_t blob[4 + TL_ED25519_SIG_LEN + 8];
        size_t blob_len;
        if (name_len == 0 || name_len > TL_NOTE_NAME_MAX ||
            tl_base64_decode(space + 1, (size_t)(end - space - 1), blob, sizeof blob, &blob_len) !=
                0 ||
            blob_len < 4)
            return TL_EINVAL;
        /* The first signature by the trusted key decides; others are not ours to check. */
        if (decided || name_len != strlen(verifier->name) ||
            memcmp(line + dash + 1, verifier->name, name_len) != 0 ||
            memcmp(blob, verifier->key_id, 4) != 0)
            continue;
        decided = true;
        EVP_PKEY *key = NULL;
        if (blob_len == 4 + TL_ED25519_SIG_LEN &&
            tl_key_from_raw_public(verifier->public_key, &key) == 0 &&
            tl_key_verify(key, note, split, blob + 4) == 0)
            result = 0;
        EVP_PKEY_free(key);
    }
    if (count == 0)
        return TL_EINVAL;
    if (result == 0)
        *text_len = split;
    return result;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

int tl_checkpoint_format(const tl_checkpoint_t *checkpoint, char *out, size_t out_size)
{
    if (!tl_note_name_valid(checkpoint->origin))
        return TL_EINVAL;
    char b64[48];
    EVP_EncodeBlock((unsigned char *)b64, checkpoint->root, TL_MERKLE_HASH_LEN);
    return tl_format(out, out_size, "%s\n%llu\n%s\n", checkpoint->origin,
                     (unsigned long long)checkpoint->size, b64);
}

int tl_checkpoint_parse(const char *text, size_t len, tl_checkpoint_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text_valid(text, len))
        return TL_EINVAL;
    const char *lines[3];
    size_t lens[3], pos = 0;
    for (int i = 0; i < 3; i++) {
        if (pos >= len)
            return TL_EINVAL;
        const char *end = memchr(text + pos, '\n', len - pos);
        lines[i] = text + pos;
        lens[i] = (size_t)(end - lines[i]);
        pos += lens[i] + 1;
    }
    if (lens[0] == 0 || lens[0] > TL_NOTE_NAME_MAX)
        return TL_EINVAL;
    memcpy(out->origin, lines[0], lens[0]);
    /* The origin is a line: unlike a key name it may hold spaces, not control characters. */
    if (lens[1] == 0 || lens[1] > 20 || (lens[1] > 1 && lines[1][0] == '0'))
        return TL_EINVAL;
    uint64_t size = 0;
    for (size_t i = 0; i < lens[1]; i++) {
        char c = lines[1][i];
        if (c < '0' || c > '9' || size > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
            return TL_EINVAL;
        size = size * 10 + (uint64_t)(c - '0');
    }
    out->size = size;
    size_t n;
    if (tl_base64_decode(lines[2], lens[2], out->root, TL_MERKLE_HASH_LEN, &n) != 0 ||
        n != TL_MERKLE_HASH_LEN)
        return TL_EINVAL;
    return 0;
}
