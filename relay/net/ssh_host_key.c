/*
 * The SSH front end's host key: the relay's own Ed25519 key file
 * (DATA/relay.key, proto/keys.h), the same key agents pin, handed to libssh.
 */
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/keys.h"
#include "relay/net/ssh_front_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
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

/* The key in OpenSSH's format is about 250 bytes; this bounds its buffers. */
#define BLOB_MAX 512

int tl__ssh_load_host_key(const char *path, ssh_key *out)
{
    static const char type[] = "ssh-ed25519";
    EVP_PKEY *pkey = NULL;
    uint8_t seed_and_public[64];
    uint8_t public_key[32];
    tl_buf_t *blob = NULL, *public_blob = NULL;
    char text[1024];
    size_t seed_len = 32, public_len = 32;
    int rc = tl_key_load(path, &pkey);
    if (rc != 0)
        return rc;
    rc = TL_ENOMEM;
    blob = tl_buf_new_secret(BLOB_MAX);
    public_blob = tl_buf_new(BLOB_MAX);
    if (blob == NULL || public_blob == NULL)
        goto out;
    rc = TL_EKEY;
    if (EVP_PKEY_get_raw_private_key(pkey, seed_and_public, &seed_len) != 1 || seed_len != 32 ||
        EVP_PKEY_get_raw_public_key(pkey, public_key, &public_len) != 1 || public_len != 32)
        goto out;
    memcpy(seed_and_public + 32, public_key, 32);

    if (tl_buf_put_string(public_blob, type, sizeof type - 1) != 0 ||
        tl_buf_put_string(public_blob, public_key, 32) != 0 ||
        tl_buf_put(blob, "openssh-key-v1", sizeof "openssh-key-v1") != 0 || /* the NUL too */
        tl_buf_put_string(blob, "none", 4) != 0 ||                          /* cipher */
        tl_buf_put_string(blob, "none", 4) != 0 ||                          /* kdf */
        tl_buf_put_string(blob, "", 0) != 0 ||                              /* kdf options */
        tl_buf_put_u32(blob, 1) != 0 ||                                     /* keys */
        tl_buf_put_string(blob, tl_buf_data(public_blob), tl_buf_len(public_blob)) != 0)
        goto out;
    size_t private_start = tl_buf_len(blob);
    uint32_t check = 0x746c7373u;       /* any value, twice: "decrypted correctly" */
    if (tl_buf_put_u32(blob, 0) != 0 || /* private section length, below */
        tl_buf_put_u32(blob, check) != 0 || tl_buf_put_u32(blob, check) != 0 ||
        tl_buf_put_string(blob, type, sizeof type - 1) != 0 ||
        tl_buf_put_string(blob, public_key, 32) != 0 ||
        tl_buf_put_string(blob, seed_and_public, 64) != 0 ||
        tl_buf_put_string(blob, "", 0) != 0) /* comment */
        goto out;
    for (uint8_t pad = 1; (tl_buf_len(blob) - private_start - 4) % 8 != 0; pad++)
        if (tl_buf_put_u8(blob, pad) != 0)
            goto out;
    if (tl_buf_poke_u32(blob, private_start, (uint32_t)(tl_buf_len(blob) - private_start - 4)) != 0)
        goto out;

    unsigned char encoded[((BLOB_MAX + 2) / 3) * 4 + 1];
    int encoded_len = EVP_EncodeBlock(encoded, tl_buf_data(blob), (int)tl_buf_len(blob));
    size_t used = 0;
    int fit = tl_format_append(text, sizeof text, &used, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for (int i = 0; fit == 0 && i < encoded_len; i += 70)
        fit = tl_format_append(text, sizeof text, &used, "%.70s\n", encoded + i);
    if (fit == 0)
        fit = tl_format_append(text, sizeof text, &used, "-----END OPENSSH PRIVATE KEY-----\n");
    OPENSSL_cleanse(encoded, sizeof encoded);
    if (fit != 0)
        goto out;
    if (ssh_pki_import_privkey_base64(text, NULL, NULL, NULL, out) == SSH_OK)
        rc = 0;
out:
    OPENSSL_cleanse(seed_and_public, sizeof seed_and_public);
    tl_buf_free(blob); /* zeroed first: a secret buffer */
    tl_buf_free(public_blob);
    OPENSSL_cleanse(text, sizeof text);
    EVP_PKEY_free(pkey);
    return rc;
}
