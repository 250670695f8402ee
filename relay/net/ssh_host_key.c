/*
 * The SSH front end's host key: the relay's own Ed25519 key file
 * (DATA/relay.key, proto/keys.h), the same key agents pin, handed to libssh.
 */
#include "proto/err.h"
#include "proto/keys.h"
#include "relay/net/ssh_front_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/*
 * libssh 0.10.6 reads a PEM PKCS#8 Ed25519 key (the relay's key file,
 * proto/keys.h) without complaint, but keeps it in a form it cannot export:
 * ssh_pki_export_pubkey_base64() fails on it and every key exchange fails
 * with "ssh_get_key_params: Out of memory" (measured: OpenSSH 9.2 gets
 * "Bye Bye"). So the key is read with OpenSSL and handed to libssh in
 * OpenSSH's own private key format ("openssh-key-v1", unencrypted), which
 * libssh parses into its native Ed25519 key. The secret bytes are wiped.
 */

struct blob {
    uint8_t bytes[512];
    size_t len;
    int overflow;
};

static void blob_put(struct blob *b, const void *data, size_t len)
{
    if (len > sizeof b->bytes - b->len) {
        b->overflow = 1;
        return;
    }
    memcpy(b->bytes + b->len, data, len);
    b->len += len;
}

static void blob_put_u32(struct blob *b, uint32_t value)
{
    uint8_t be[4] = {(uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8),
                     (uint8_t)value};
    blob_put(b, be, 4);
}

static void blob_put_string(struct blob *b, const void *data, size_t len)
{
    blob_put_u32(b, (uint32_t)len);
    blob_put(b, data, len);
}

int tl__ssh_load_host_key(const char *path, ssh_key *out)
{
    static const char type[] = "ssh-ed25519";
    EVP_PKEY *pkey = NULL;
    uint8_t seed_and_public[64];
    uint8_t public_key[32];
    struct blob blob = {.len = 0};
    struct blob public_blob = {.len = 0};
    char text[1024];
    size_t seed_len = 32, public_len = 32;
    int rc = tl_key_load(path, &pkey);
    if (rc != 0)
        return rc;
    rc = TL_EKEY;
    if (EVP_PKEY_get_raw_private_key(pkey, seed_and_public, &seed_len) != 1 || seed_len != 32 ||
        EVP_PKEY_get_raw_public_key(pkey, public_key, &public_len) != 1 || public_len != 32)
        goto out;
    memcpy(seed_and_public + 32, public_key, 32);

    blob_put_string(&public_blob, type, sizeof type - 1);
    blob_put_string(&public_blob, public_key, 32);
    blob_put(&blob, "openssh-key-v1", sizeof "openssh-key-v1"); /* the NUL too */
    blob_put_string(&blob, "none", 4);                          /* cipher */
    blob_put_string(&blob, "none", 4);                          /* kdf */
    blob_put_string(&blob, "", 0);                              /* kdf options */
    blob_put_u32(&blob, 1);                                     /* keys */
    blob_put_string(&blob, public_blob.bytes, public_blob.len);
    size_t private_start = blob.len;
    blob_put_u32(&blob, 0);       /* private section length, below */
    uint32_t check = 0x746c7373u; /* any value, twice: "decrypted correctly" */
    blob_put_u32(&blob, check);
    blob_put_u32(&blob, check);
    blob_put_string(&blob, type, sizeof type - 1);
    blob_put_string(&blob, public_key, 32);
    blob_put_string(&blob, seed_and_public, 64);
    blob_put_string(&blob, "", 0); /* comment */
    for (uint8_t pad = 1; (blob.len - private_start - 4) % 8 != 0; pad++)
        blob_put(&blob, &pad, 1);
    if (blob.overflow)
        goto out;
    uint32_t private_len = (uint32_t)(blob.len - private_start - 4);
    blob.bytes[private_start] = (uint8_t)(private_len >> 24);
    blob.bytes[private_start + 1] = (uint8_t)(private_len >> 16);
    blob.bytes[private_start + 2] = (uint8_t)(private_len >> 8);
    blob.bytes[private_start + 3] = (uint8_t)private_len;

    unsigned char encoded[((sizeof blob.bytes + 2) / 3) * 4 + 1];
    int encoded_len = EVP_EncodeBlock(encoded, blob.bytes, (int)blob.len);
    size_t used = (size_t)snprintf(text, sizeof text, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for (int i = 0; i < encoded_len && used < sizeof text; i += 70)
        used += (size_t)snprintf(text + used, sizeof text - used, "%.70s\n", encoded + i);
    if (used < sizeof text)
        used += (size_t)snprintf(text + used, sizeof text - used,
                                 "-----END OPENSSH PRIVATE KEY-----\n");
    OPENSSL_cleanse(encoded, sizeof encoded);
    if (used >= sizeof text)
        goto out;
    if (ssh_pki_import_privkey_base64(text, NULL, NULL, NULL, out) == SSH_OK)
        rc = 0;
out:
    OPENSSL_cleanse(seed_and_public, sizeof seed_and_public);
    OPENSSL_cleanse(&blob, sizeof blob);
    OPENSSL_cleanse(text, sizeof text);
    EVP_PKEY_free(pkey);
    return rc;
}
