/*
 * Ed25519 keys, self-signed certificates and fingerprints (OpenSSL 3).
 *
 * Tierline identifies every party by an Ed25519 key and nothing else: the
 * certificate around it is self-signed and only carries the key into TLS;
 * peers are trusted by pinning the key's fingerprint. The relay's one key is
 * both its TLS key and its SSH host key, so the fingerprint is computed
 * exactly as OpenSSH does ("SHA256:" and unpadded base64 of SHA-256 over the
 * SSH wire encoding of the public key) and matches `ssh-keygen -lf`.
 *
 * Key files are PEM PKCS#8, unencrypted, created 0600 and never overwritten;
 * a key file that group or others may read or write is refused, as OpenSSH
 * refuses one. Callers own the EVP_PKEY and X509 objects they are given and
 * free them with EVP_PKEY_free() and X509_free().
 *
 * Errors: 0 or a negative code (proto/err.h); the OpenSSL error queue is
 * left empty on failure.
 */
#ifndef TL_KEYS_H
#define TL_KEYS_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

/* "SHA256:" + 43 base64 characters + NUL. */
#define TL_FINGERPRINT_PREFIX "SHA256:"
#define TL_FINGERPRINT_PREFIX_LEN 7
#define TL_FINGERPRINT_B64_LEN 43
#define TL_FINGERPRINT_LEN (TL_FINGERPRINT_PREFIX_LEN + TL_FINGERPRINT_B64_LEN + 1)

/* Longest authorized_keys line tl_key_parse_ssh_public() looks at. */
#define TL_SSH_PUBLIC_MAX_LINE 4096
/* Longest comment tl_key_ssh_public() writes. */
#define TL_SSH_PUBLIC_MAX_COMMENT 1024

/* A new Ed25519 key pair. */
int tl_key_generate(EVP_PKEY **out);

/*
 * Writes the private key as PEM PKCS#8 to a new file with mode 0600 and
 * fsyncs it. TL_EEXIST if path exists (it is never overwritten); negated
 * errno for other file errors; a partly written file is removed.
 */
int tl_key_save(const char *path, EVP_PKEY *key);

/*
 * Reads a private key. Negated errno if the file cannot be opened
 * (-ENOENT...), TL_EKEY_PERMS if group or others have any access to it,
 * TL_EKEY if it is not a regular file, not an unencrypted PEM private key,
 * or not Ed25519.
 */
int tl_key_load(const char *path, EVP_PKEY **out);

/*
 * An X509v3 certificate for key, signed by key, with subject and issuer
 * CN=common_name, a random 128-bit serial, valid from an hour ago for days
 * days. TL_EINVAL for an empty or over-long (64) name or days outside
 * 1..36500; TL_EKEY if key is not Ed25519.
 */
int tl_cert_self_signed(EVP_PKEY *key, const char *common_name, int days, X509 **out);

/* As tl_key_save, mode 0644. */
int tl_cert_save(const char *path, X509 *cert);
/* Negated errno if unreadable; TL_EKEY unless a PEM certificate with an Ed25519 key. */
int tl_cert_load(const char *path, X509 **out);

/*
 * "SHA256:" and the unpadded base64 of a SHA-256 digest of a key, as
 * ssh-keygen -l prints it: the one place that formats a fingerprint, for
 * callers that hash a key themselves (libssh's keys of any type). TL_EINVAL
 * unless len is 32.
 */
int tl_fingerprint_of_sha256(const unsigned char *digest, size_t len, char out[TL_FINGERPRINT_LEN]);
/* The fingerprint of a public key in its SSH wire encoding (a known_hosts blob, any type). */
int tl_fingerprint_of_blob(const unsigned char *blob, size_t len, char out[TL_FINGERPRINT_LEN]);

/* Fingerprint of an Ed25519 key (public or private); TL_EKEY for other keys. */
int tl_fingerprint(EVP_PKEY *key, char out[TL_FINGERPRINT_LEN]);
int tl_fingerprint_of_cert(X509 *cert, char out[TL_FINGERPRINT_LEN]);

/* 1 if text is "SHA256:" and exactly 43 base64 characters, else 0. */
int tl_fingerprint_valid(const char *text);

/*
 * 1 if both are valid fingerprints and equal, else 0. The comparison of the
 * characters takes the same time wherever they differ.
 */
int tl_fingerprint_equal(const char *a, const char *b);

/*
 * The public key as one authorized_keys line without a newline:
 * "ssh-ed25519 AAAA... comment". comment may be NULL or empty (no comment);
 * TL_EINVAL if it holds control characters or is longer than
 * TL_SSH_PUBLIC_MAX_COMMENT. *out is malloc'd; the caller frees it.
 */
int tl_key_ssh_public(EVP_PKEY *key, const char *comment, char **out);

/*
 * Parses one "ssh-ed25519 BASE64 [comment]" line (one trailing newline
 * allowed) into a public key. Untrusted input: at most
 * TL_SSH_PUBLIC_MAX_LINE bytes are examined, the base64 must be canonical and
 * the decoded blob exactly one Ed25519 key. Options before the key type and
 * other key types are refused. TL_EKEY for anything it refuses.
 */
int tl_key_parse_ssh_public(const char *line, EVP_PKEY **out);

/* ---- raw Ed25519 keys and signatures ---- */

#define TL_ED25519_KEY_LEN 32
#define TL_ED25519_SIG_LEN 64

/* The 32 bytes of an Ed25519 public key; TL_EKEY for another kind of key. */
int tl_key_raw_public(EVP_PKEY *key, uint8_t raw[TL_ED25519_KEY_LEN]);
/* A public key from its 32 bytes, or a private key from its 32-byte seed; TL_EKEY. */
int tl_key_from_raw_public(const uint8_t raw[TL_ED25519_KEY_LEN], EVP_PKEY **out);
int tl_key_from_raw_private(const uint8_t seed[TL_ED25519_KEY_LEN], EVP_PKEY **out);
/* The Ed25519 signature of len bytes by a private key; TL_EKEY. */
int tl_key_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t sig[TL_ED25519_SIG_LEN]);
/* 0 when sig is key's signature of the len bytes at data; TL_EVERIFY otherwise. */
int tl_key_verify(EVP_PKEY *key, const void *data, size_t len,
                  const uint8_t sig[TL_ED25519_SIG_LEN]);
/*
 * Strict standard base64 (RFC 4648 §4): a length that is a multiple of 4, padding only at the
 * end, unused bits zero, so every byte string has one accepted form. TL_EINVAL otherwise or
 * when it decodes to more than out_max bytes.
 */
int tl_base64_decode(const char *text, size_t len, uint8_t *out, size_t out_max, size_t *out_len);

#endif
