#include "proto/keys.h"
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ED25519_KEY_LEN 32
#define SSH_KEY_TYPE "ssh-ed25519"
#define SSH_KEY_TYPE_LEN 11
/* u32 11, "ssh-ed25519", u32 32, 32 key bytes. */
#define SSH_BLOB_LEN (4 + SSH_KEY_TYPE_LEN + 4 + ED25519_KEY_LEN)
#define SSH_BLOB_B64_LEN (4 * ((SSH_BLOB_LEN + 2) / 3))

/* A key file is a few hundred bytes; anything much larger is not one. */
#define KEY_FILE_MAX (16 * 1024)
#define CERT_FILE_MAX (64 * 1024)
#define CN_MAX 64

/* Every failure path leaves the thread's OpenSSL error queue empty. */
static int ossl_fail(int code)
{
    ERR_clear_error();
    return code;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict standard base64: length a multiple of 4, padding only at the end,
 * unused bits zero, so each byte string has exactly one accepted encoding.
 */
static int b64_decode_strict(const char *text, size_t len, uint8_t *out, size_t out_max,
                             size_t *out_len)
{
    if (len == 0 || len % 4 != 0)
        return TL_EKEY;
    size_t pad = 0;
    if (text[len - 1] == '=')
        pad = text[len - 2] == '=' ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    if (n > out_max)
        return TL_EKEY;

    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (size_t j = 0; j < 4; j++) {
            v[j] = i + j >= len - pad ? 0 : b64_value(text[i + j]);
            if (v[j] < 0)
                return TL_EKEY;
        }
        uint32_t group = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) |
                         (uint32_t)v[3];
        uint8_t bytes[3] = {(uint8_t)(group >> 16), (uint8_t)(group >> 8), (uint8_t)group};
        size_t take = i + 4 == len ? 3 - pad : 3;
        /* Bits beyond the last whole byte must be zero (canonical form). */
        if (take < 3 && bytes[take] != 0)
            return TL_EKEY;
        if (take == 1 && bytes[2] != 0)
            return TL_EKEY;
        memcpy(out + o, bytes, take);
        o += take;
    }
    *out_len = o;
    return 0;
}

static int ed25519_raw_public(EVP_PKEY *key, uint8_t raw[ED25519_KEY_LEN])
{
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
        return TL_EKEY;
    size_t len = ED25519_KEY_LEN;
    if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != ED25519_KEY_LEN)
        return ossl_fail(TL_EKEY);
    return 0;
}

static void ssh_blob(const uint8_t raw[ED25519_KEY_LEN], uint8_t blob[SSH_BLOB_LEN])
{
    tl_store_u32(blob, SSH_KEY_TYPE_LEN);
    memcpy(blob + 4, SSH_KEY_TYPE, SSH_KEY_TYPE_LEN);
    tl_store_u32(blob + 4 + SSH_KEY_TYPE_LEN, ED25519_KEY_LEN);
    memcpy(blob + 8 + SSH_KEY_TYPE_LEN, raw, ED25519_KEY_LEN);
}

struct key_file_rules {
    size_t max_size;
    int private_key;
};

/* What a key or certificate file must be, checked in this order before it is read. */
static int check_key_file(const struct stat *st, void *arg)
{
    const struct key_file_rules *rules = arg;
    if (!S_ISREG(st->st_mode) || (size_t)st->st_size > rules->max_size)
        return TL_EKEY;
    if (rules->private_key && (st->st_mode & (S_IRWXG | S_IRWXO)) != 0)
        return TL_EKEY_PERMS;
    return 0;
}

/* A key or certificate file's contents, NUL-terminated (free with free_file_contents). */
static int read_small_file(const char *path, size_t max_size, int private_key, char **out,
                           size_t *out_len)
{
    struct key_file_rules rules = {max_size, private_key};
    int rc = tl_fs_read_file(path, max_size, 0, check_key_file, &rules, out, out_len);
    return rc == TL_EFULL ? TL_EKEY : rc; /* it grew while we read it */
}

static void free_file_contents(char *data, size_t len)
{
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
}

typedef int (*pem_writer_fn)(BIO *bio, void *object);

static int write_private_key_pem(BIO *bio, void *object)
{
    return PEM_write_bio_PKCS8PrivateKey(bio, object, NULL, NULL, 0, NULL, NULL);
}

static int write_cert_pem(BIO *bio, void *object)
{
    return PEM_write_bio_X509(bio, object);
}

/* Creates path (never replacing anything), writes the PEM through an fd BIO, fsyncs. */
static int write_pem_file(const char *path, mode_t mode, pem_writer_fn writer, void *object)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, mode);
    if (fd < 0)
        return errno == EEXIST ? TL_EEXIST : -errno;

    int rc = 0;
    /* The key goes straight to the file: no copy of it is left in a heap buffer. */
    BIO *bio = BIO_new_fd(fd, BIO_NOCLOSE);
    if (bio == NULL) {
        rc = ossl_fail(TL_ENOMEM);
        goto out;
    }
    if (writer(bio, object) != 1 || BIO_flush(bio) != 1) {
        rc = ossl_fail(TL_EIO);
        goto out;
    }
    if (fsync(fd) < 0)
        rc = -errno;
out:
    BIO_free(bio);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(path);
    return rc;
}

/* Never prompt on a terminal for a passphrase: an encrypted key is simply unusable. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int tl_key_generate(EVP_PKEY **out)
{
    if (out == NULL)
        return TL_EINVAL;
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (*out == NULL)
        return ossl_fail(TL_EKEY);
    return 0;
}

int tl_key_save(const char *path, EVP_PKEY *key)
{
    if (path == NULL || key == NULL)
        return TL_EINVAL;
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
        return TL_EKEY;
    return write_pem_file(path, 0600, write_private_key_pem, key);
}

int tl_key_load(const char *path, EVP_PKEY **out)
{
    if (path == NULL || out == NULL)
        return TL_EINVAL;
    *out = NULL;

    char *text = NULL;
    size_t len = 0;
    int rc = read_small_file(path, KEY_FILE_MAX, 1, &text, &len);
    if (rc != 0)
        return rc;

    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (bio == NULL) {
        rc = ossl_fail(TL_ENOMEM);
        goto out;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        rc = ossl_fail(TL_EKEY);
        goto out;
    }
    *out = key;
    key = NULL;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    free_file_contents(text, len);
    return rc;
}

static int add_extension(X509 *cert, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (ext == NULL)
        return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

int tl_cert_self_signed(EVP_PKEY *key, const char *common_name, int days, X509 **out)
{
    if (out == NULL)
        return TL_EINVAL;
    *out = NULL;
    if (key == NULL || common_name == NULL || days < 1 || days > 36500)
        return TL_EINVAL;
    size_t cn_len = strnlen(common_name, CN_MAX + 1);
    if (cn_len == 0 || cn_len > CN_MAX)
        return TL_EINVAL;
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
        return TL_EKEY;

    int rc = TL_EKEY;
    BIGNUM *serial = NULL;
    X509 *cert = X509_new();
    if (cert == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }

    uint8_t serial_bytes[16];
    if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1)
        goto out;
    /* BN_bin2bn reads unsigned bytes: the serial is positive, 17 DER bytes at most. */
    serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, NULL);
    if (serial == NULL || (BN_is_zero(serial) && BN_set_word(serial, 1) != 1) ||
        BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL)
        goto out;

    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL) == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name,
                                   (int)cn_len, -1, 0) != 1 ||
        X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, key) != 1)
        goto out;

    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    if (!add_extension(cert, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_extension(cert, &v3, NID_key_usage, "critical,digitalSignature") ||
        !add_extension(cert, &v3, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_extension(cert, &v3, NID_subject_key_identifier, "hash"))
        goto out;

    /* Ed25519 signs the message itself: the digest must be NULL. */
    if (X509_sign(cert, key, NULL) <= 0)
        goto out;

    *out = cert;
    cert = NULL;
    rc = 0;
out:
    BN_free(serial);
    X509_free(cert);
    if (rc != 0)
        ERR_clear_error();
    return rc;
}

int tl_cert_save(const char *path, X509 *cert)
{
    if (path == NULL || cert == NULL)
        return TL_EINVAL;
    return write_pem_file(path, 0644, write_cert_pem, cert);
}

int tl_cert_load(const char *path, X509 **out)
{
    if (path == NULL || out == NULL)
        return TL_EINVAL;
    *out = NULL;

    char *text = NULL;
    size_t len = 0;
    int rc = read_small_file(path, CERT_FILE_MAX, 0, &text, &len);
    if (rc != 0)
        return rc;

    X509 *cert = NULL;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (bio == NULL) {
        rc = ossl_fail(TL_ENOMEM);
        goto out;
    }
    cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    EVP_PKEY *key = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
        rc = ossl_fail(TL_EKEY);
        goto out;
    }
    *out = cert;
    cert = NULL;
out:
    X509_free(cert);
    BIO_free(bio);
    free_file_contents(text, len);
    return rc;
}

int tl_fingerprint_of_sha256(const unsigned char *digest, size_t len, char out[TL_FINGERPRINT_LEN])
{
    if (out == NULL)
        return TL_EINVAL;
    out[0] = '\0';
    if (digest == NULL || len != 32)
        return TL_EINVAL;
    /* 32 bytes encode to 44 characters, the last one '=' padding, which OpenSSH drops. */
    unsigned char encoded[45];
    EVP_EncodeBlock(encoded, digest, 32);
    memcpy(out, TL_FINGERPRINT_PREFIX, TL_FINGERPRINT_PREFIX_LEN);
    memcpy(out + TL_FINGERPRINT_PREFIX_LEN, encoded, TL_FINGERPRINT_B64_LEN);
    out[TL_FINGERPRINT_LEN - 1] = '\0';
    return 0;
}

int tl_fingerprint_of_blob(const unsigned char *blob, size_t len, char out[TL_FINGERPRINT_LEN])
{
    if (out == NULL)
        return TL_EINVAL;
    out[0] = '\0';
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (blob == NULL || len == 0)
        return TL_EKEY;
    if (EVP_Digest(blob, len, digest, &digest_len, EVP_sha256(), NULL) != 1 ||
        digest_len != sizeof digest)
        return ossl_fail(TL_EKEY);
    return tl_fingerprint_of_sha256(digest, sizeof digest, out);
}

int tl_fingerprint(EVP_PKEY *key, char out[TL_FINGERPRINT_LEN])
{
    if (out == NULL)
        return TL_EINVAL;
    out[0] = '\0';

    uint8_t raw[ED25519_KEY_LEN];
    int rc = ed25519_raw_public(key, raw);
    if (rc != 0)
        return rc;

    uint8_t blob[SSH_BLOB_LEN];
    ssh_blob(raw, blob);
    return tl_fingerprint_of_blob(blob, sizeof blob, out);
}

int tl_fingerprint_of_cert(X509 *cert, char out[TL_FINGERPRINT_LEN])
{
    if (cert == NULL || out == NULL)
        return TL_EINVAL;
    EVP_PKEY *key = X509_get0_pubkey(cert);
    if (key == NULL) {
        out[0] = '\0';
        return ossl_fail(TL_EKEY);
    }
    return tl_fingerprint(key, out);
}

int tl_fingerprint_valid(const char *text)
{
    if (text == NULL || strncmp(text, TL_FINGERPRINT_PREFIX, TL_FINGERPRINT_PREFIX_LEN) != 0)
        return 0;
    const char *b64 = text + TL_FINGERPRINT_PREFIX_LEN;
    for (size_t i = 0; i < TL_FINGERPRINT_B64_LEN; i++) {
        if (b64_value(b64[i]) < 0) /* also stops at the NUL of a short string */
            return 0;
    }
    return b64[TL_FINGERPRINT_B64_LEN] == '\0';
}

int tl_fingerprint_equal(const char *a, const char *b)
{
    if (!tl_fingerprint_valid(a) || !tl_fingerprint_valid(b))
        return 0;
    return CRYPTO_memcmp(a, b, TL_FINGERPRINT_LEN - 1) == 0;
}

int tl_key_ssh_public(EVP_PKEY *key, const char *comment, char **out)
{
    if (out == NULL)
        return TL_EINVAL;
    *out = NULL;

    size_t comment_len = comment != NULL ? strnlen(comment, TL_SSH_PUBLIC_MAX_COMMENT + 1) : 0;
    if (comment_len > TL_SSH_PUBLIC_MAX_COMMENT)
        return TL_EINVAL;
    for (size_t i = 0; i < comment_len; i++) {
        unsigned char c = (unsigned char)comment[i];
        if (c < 0x20 || c == 0x7f)
            return TL_EINVAL;
    }

    uint8_t raw[ED25519_KEY_LEN];
    int rc = ed25519_raw_public(key, raw);
    if (rc != 0)
        return rc;
    uint8_t blob[SSH_BLOB_LEN];
    ssh_blob(raw, blob);

    size_t size = SSH_KEY_TYPE_LEN + 1 + SSH_BLOB_B64_LEN + 1 + comment_len + 1;
    char *line = malloc(size);
    if (line == NULL)
        return TL_ENOMEM;
    memcpy(line, SSH_KEY_TYPE " ", SSH_KEY_TYPE_LEN + 1);
    char *p = line + SSH_KEY_TYPE_LEN + 1;
    p += EVP_EncodeBlock((unsigned char *)p, blob, (int)sizeof blob);
    if (comment_len > 0) {
        *p++ = ' ';
        memcpy(p, comment, comment_len);
        p += comment_len;
    }
    *p = '\0';
    *out = line;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int tl_key_parse_ssh_public(const char *line, EVP_PKEY **out)
{
    if (out == NULL)
        return TL_EINVAL;
    *out = NULL;
    if (line == NULL)
        return TL_EINVAL;

    size_t len = strnlen(line, TL_SSH_PUBLIC_MAX_LINE + 1);
    if (len > TL_SSH_PUBLIC_MAX_LINE)
        return TL_EKEY;
    if (len > 0 && line[len - 1] == '\n') {
        len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return TL_EKEY;
    }

    if (len <= SSH_KEY_TYPE_LEN || memcmp(line, SSH_KEY_TYPE, SSH_KEY_TYPE_LEN) != 0 ||
        !is_blank(line[SSH_KEY_TYPE_LEN]))
        return TL_EKEY;
    size_t pos = SSH_KEY_TYPE_LEN;
    while (pos < len && is_blank(line[pos]))
        pos++;
    size_t start = pos;
    while (pos < len && !is_blank(line[pos]))
        pos++;
    /* What follows the blob, if anything, is a free-form comment. */
    if (pos - start != SSH_BLOB_B64_LEN)
        return TL_EKEY;

    uint8_t blob[SSH_BLOB_LEN];
    size_t blob_len = 0;
    if (b64_decode_strict(line + start, pos - start, blob, sizeof blob, &blob_len) != 0 ||
        blob_len != SSH_BLOB_LEN)
        return TL_EKEY;

    tl_reader_t reader;
    const uint8_t *type = NULL;
    const uint8_t *raw = NULL;
    size_t type_len = 0;
    size_t raw_len = 0;
    tl_reader_init(&reader, blob, blob_len);
    if (tl_reader_string(&reader, SSH_KEY_TYPE_LEN, &type, &type_len) != 0 ||
        type_len != SSH_KEY_TYPE_LEN || memcmp(type, SSH_KEY_TYPE, SSH_KEY_TYPE_LEN) != 0 ||
        tl_reader_string(&reader, ED25519_KEY_LEN, &raw, &raw_len) != 0 ||
        raw_len != ED25519_KEY_LEN || tl_reader_left(&reader) != 0)
        return TL_EKEY;

    *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, ED25519_KEY_LEN);
    if (*out == NULL)
        return ossl_fail(TL_EKEY);
    return 0;
}

/* ---- raw Ed25519 keys and signatures ---- */

int tl_key_raw_public(EVP_PKEY *key, uint8_t raw[TL_ED25519_KEY_LEN])
{
    return ed25519_raw_public(key, raw);
}

int tl_key_from_raw_public(const uint8_t raw[TL_ED25519_KEY_LEN], EVP_PKEY **out)
{
    *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, TL_ED25519_KEY_LEN);
    return *out != NULL ? 0 : ossl_fail(TL_EKEY);
}

int tl_key_from_raw_private(const uint8_t seed[TL_ED25519_KEY_LEN], EVP_PKEY **out)
{
    *out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, TL_ED25519_KEY_LEN);
    return *out != NULL ? 0 : ossl_fail(TL_EKEY);
}

int tl_key_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t sig[TL_ED25519_SIG_LEN])
{
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
        return TL_EKEY;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sig_len = TL_ED25519_SIG_LEN;
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &sig_len, data, len) == 1 && sig_len == TL_ED25519_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : ossl_fail(TL_EKEY);
}

int tl_key_verify(EVP_PKEY *key, const void *data, size_t len,
                  const uint8_t sig[TL_ED25519_SIG_LEN])
{
    if (key == NULL || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
        return TL_EVERIFY;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, TL_ED25519_SIG_LEN, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok ? 0 : TL_EVERIFY;
}

int tl_base64_decode(const char *text, size_t len, uint8_t *out, size_t out_max, size_t *out_len)
{
    *out_len = 0;
    return b64_decode_strict(text, len, out, out_max, out_len) == 0 ? 0 : TL_EINVAL;
}
