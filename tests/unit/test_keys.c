/*
 * Key files, certificates and fingerprints, checked against OpenSSH's own
 * ssh-keygen where the formats must agree.
 */
#include "tl_test.h"

#include "proto/keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct tmp {
    char dir[64];
    char path[128];
};

static void tmp_init(struct tmp *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/tl-keys-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
}

static const char *tmp_file(struct tmp *t, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

static void tmp_cleanup(struct tmp *t)
{
    DIR *d = opendir(t->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(t->dir);
}

static void write_text(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, mode);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal((ssize_t)len, write(fd, text, len));
    assert_int_equal(0, close(fd));
}

/* Writes any OpenSSL key as PEM PKCS#8, mode 0600, so only its type is wrong. */
static void write_foreign_key(const char *path, EVP_PKEY *key, const EVP_CIPHER *cipher)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    BIO *bio = BIO_new_fd(fd, BIO_CLOSE);
    assert_non_null(bio);
    assert_int_equal(1, PEM_write_bio_PKCS8PrivateKey(bio, key, cipher, cipher ? "secret" : NULL,
                                                      cipher ? 6 : 0, NULL, NULL));
    BIO_free(bio);
}

/* Runs a shell command and returns its first output line (without newline). */
static void run_capture(const char *command, char *out, size_t out_size)
{
    FILE *p = popen(command, "r");
    assert_non_null(p);
    out[0] = '\0';
    char *line = fgets(out, (int)out_size, p);
    int status = pclose(p);
    if (line == NULL || status != 0)
        fail_msg("command failed (status %d): %s", status, command);
    out[strcspn(out, "\n")] = '\0';
}

/* The second field of `ssh-keygen -lf path`: "256 SHA256:... comment (ED25519)". */
static void ssh_keygen_fingerprint(const char *path, char out[TL_FINGERPRINT_LEN])
{
    char command[256];
    char line[512];
    snprintf(command, sizeof command, "ssh-keygen -lf '%s' 2>&1", path);
    run_capture(command, line, sizeof line);
    char *start = strchr(line, ' ');
    assert_non_null(start);
    start++;
    size_t len = strcspn(start, " ");
    if (len != TL_FINGERPRINT_LEN - 1)
        fail_msg("unexpected ssh-keygen output: %s", line);
    memcpy(out, start, len);
    out[len] = '\0';
}

static void test_key_round_trip_keeps_fingerprint(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *key = NULL;
    EVP_PKEY *loaded = NULL;
    char fp[TL_FINGERPRINT_LEN];
    char fp_again[TL_FINGERPRINT_LEN];
    char fp_loaded[TL_FINGERPRINT_LEN];

    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_fingerprint(key, fp));
    TL_ASSERT_OK(tl_fingerprint(key, fp_again));
    TL_ASSERT_OK(tl_key_save(tmp_file(&t, "id"), key));
    TL_ASSERT_OK(tl_key_load(tmp_file(&t, "id"), &loaded));
    TL_ASSERT_OK(tl_fingerprint(loaded, fp_loaded));

    assert_true(tl_fingerprint_valid(fp));
    assert_string_equal(fp, fp_again);
    assert_string_equal(fp, fp_loaded);
    assert_int_equal(1, EVP_PKEY_eq(key, loaded));

    EVP_PKEY_free(key);
    EVP_PKEY_free(loaded);
    tmp_cleanup(&t);
}

static void test_key_file_is_private_pkcs8(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *key = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_key_save(tmp_file(&t, "id"), key));

    struct stat st;
    assert_int_equal(0, stat(t.path, &st));
    assert_int_equal(0600, st.st_mode & 07777);
    char first[64];
    FILE *f = fopen(t.path, "r");
    assert_non_null(f);
    assert_non_null(fgets(first, sizeof first, f));
    fclose(f);
    assert_string_equal("-----BEGIN PRIVATE KEY-----\n", first);

    EVP_PKEY_free(key);
    tmp_cleanup(&t);
}

static void test_key_save_refuses_to_overwrite(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *first = NULL;
    EVP_PKEY *second = NULL;
    EVP_PKEY *loaded = NULL;
    TL_ASSERT_OK(tl_key_generate(&first));
    TL_ASSERT_OK(tl_key_generate(&second));

    TL_ASSERT_OK(tl_key_save(tmp_file(&t, "id"), first));
    TL_ASSERT_RC(TL_EEXIST, tl_key_save(t.path, second));
    TL_ASSERT_OK(tl_key_load(t.path, &loaded));
    assert_int_equal(1, EVP_PKEY_eq(first, loaded));

    /* A missing directory is the system's error, not ours. */
    TL_ASSERT_RC(-ENOENT, tl_key_save(tmp_file(&t, "missing/id"), first));

    EVP_PKEY_free(first);
    EVP_PKEY_free(second);
    EVP_PKEY_free(loaded);
    tmp_cleanup(&t);
}

static void test_key_load_refuses_loose_permissions(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *key = NULL;
    EVP_PKEY *loaded = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_key_save(tmp_file(&t, "id"), key));

    static const mode_t refused[] = {0644, 0640, 0604, 0660, 0601, 0610};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(0, chmod(t.path, refused[i]));
        TL_ASSERT_RC(TL_EKEY_PERMS, tl_key_load(t.path, &loaded));
        assert_null(loaded);
    }
    assert_int_equal(0, chmod(t.path, 0400));
    TL_ASSERT_OK(tl_key_load(t.path, &loaded));
    assert_non_null(loaded);

    EVP_PKEY_free(key);
    EVP_PKEY_free(loaded);
    tmp_cleanup(&t);
}

static void test_key_load_refuses_non_ed25519_keys(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(p256);
    assert_non_null(ed448);
    assert_non_null(rsa);
    write_foreign_key(tmp_file(&t, "p256"), p256, NULL);
    write_foreign_key(tmp_file(&t, "ed448"), ed448, NULL);
    write_foreign_key(tmp_file(&t, "rsa"), rsa, NULL);

    EVP_PKEY *loaded = NULL;
    TL_ASSERT_RC(TL_EKEY, tl_key_load(tmp_file(&t, "p256"), &loaded));
    assert_null(loaded);
    TL_ASSERT_RC(TL_EKEY, tl_key_load(tmp_file(&t, "ed448"), &loaded));
    assert_null(loaded);
    TL_ASSERT_RC(TL_EKEY, tl_key_load(tmp_file(&t, "rsa"), &loaded));
    assert_null(loaded);
    assert_int_equal(0, ERR_peek_error());

    /* Nor will they be saved, fingerprinted or exported as if they were. */
    char fp[TL_FINGERPRINT_LEN];
    char *line = NULL;
    TL_ASSERT_RC(TL_EKEY, tl_key_save(tmp_file(&t, "copy"), p256));
    TL_ASSERT_RC(TL_EKEY, tl_fingerprint(p256, fp));
    assert_string_equal("", fp);
    TL_ASSERT_RC(TL_EKEY, tl_key_ssh_public(rsa, NULL, &line));
    assert_null(line);

    EVP_PKEY_free(p256);
    EVP_PKEY_free(ed448);
    EVP_PKEY_free(rsa);
    tmp_cleanup(&t);
}

static void test_key_load_refuses_unusable_files(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *loaded = NULL;

    TL_ASSERT_RC(-ENOENT, tl_key_load(tmp_file(&t, "absent"), &loaded));
    assert_null(loaded);

    write_text(tmp_file(&t, "garbage"), 0600, "-----BEGIN PRIVATE KEY-----\nnot base64\n");
    TL_ASSERT_RC(TL_EKEY, tl_key_load(t.path, &loaded));

    write_text(tmp_file(&t, "empty"), 0600, "");
    TL_ASSERT_RC(TL_EKEY, tl_key_load(t.path, &loaded));

    /* An encrypted key is refused without prompting for a passphrase. */
    EVP_PKEY *key = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    write_foreign_key(tmp_file(&t, "encrypted"), key, EVP_aes_256_cbc());
    TL_ASSERT_RC(TL_EKEY, tl_key_load(t.path, &loaded));

    /* A directory or a FIFO is not a key file (and must not block us). */
    assert_int_equal(0, mkdir(tmp_file(&t, "dir"), 0700));
    TL_ASSERT_RC(TL_EKEY, tl_key_load(t.path, &loaded));
    assert_int_equal(0, mkfifo(tmp_file(&t, "fifo"), 0600));
    TL_ASSERT_RC(TL_EKEY, tl_key_load(t.path, &loaded));
    rmdir(tmp_file(&t, "dir"));

    assert_null(loaded);
    assert_int_equal(0, ERR_peek_error());
    EVP_PKEY_free(key);
    tmp_cleanup(&t);
}

static void test_fingerprint_matches_ssh_keygen(void **state)
{
    struct tmp t;
    tmp_init(&t);
    for (int round = 0; round < 3; round++) {
        EVP_PKEY *key = NULL;
        char *line = NULL;
        char ours[TL_FINGERPRINT_LEN];
        char theirs[TL_FINGERPRINT_LEN];
        char name[32];
        TL_ASSERT_OK(tl_key_generate(&key));
        TL_ASSERT_OK(tl_fingerprint(key, ours));
        TL_ASSERT_OK(tl_key_ssh_public(key, "relay@tierline", &line));
        snprintf(name, sizeof name, "key%d.pub", round);
        char text[512];
        snprintf(text, sizeof text, "%s\n", line);
        write_text(tmp_file(&t, name), 0644, text);

        ssh_keygen_fingerprint(t.path, theirs);
        assert_string_equal(theirs, ours);
        assert_true(tl_fingerprint_equal(ours, theirs));

        free(line);
        EVP_PKEY_free(key);
    }
    tmp_cleanup(&t);
}

static void test_ssh_public_parses_ssh_keygen_key(void **state)
{
    struct tmp t;
    tmp_init(&t);
    char command[256];
    char ignored[256];
    snprintf(command, sizeof command,
             "ssh-keygen -q -t ed25519 -N '' -C 'made by ssh-keygen' -f '%s/id' && echo ok", t.dir);
    run_capture(command, ignored, sizeof ignored);

    char line[512];
    FILE *f = fopen(tmp_file(&t, "id.pub"), "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);

    EVP_PKEY *key = NULL;
    char ours[TL_FINGERPRINT_LEN];
    char theirs[TL_FINGERPRINT_LEN];
    TL_ASSERT_OK(tl_key_parse_ssh_public(line, &key));
    TL_ASSERT_OK(tl_fingerprint(key, ours));
    ssh_keygen_fingerprint(t.path, theirs);
    assert_string_equal(theirs, ours);

    /* And exporting it again gives back ssh-keygen's own line. */
    char *again = NULL;
    TL_ASSERT_OK(tl_key_ssh_public(key, "made by ssh-keygen", &again));
    line[strcspn(line, "\n")] = '\0';
    assert_string_equal(line, again);

    free(again);
    EVP_PKEY_free(key);
    tmp_cleanup(&t);
}

static void test_ssh_public_round_trip(void **state)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY *parsed = NULL;
    char *line = NULL;
    char with_newline[256];
    TL_ASSERT_OK(tl_key_generate(&key));

    TL_ASSERT_OK(tl_key_ssh_public(key, NULL, &line));
    assert_int_equal(11 + 1 + 68, strlen(line));
    assert_int_equal(0, strncmp(line, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37));
    TL_ASSERT_OK(tl_key_parse_ssh_public(line, &parsed));
    assert_int_equal(1, EVP_PKEY_eq(key, parsed));
    EVP_PKEY_free(parsed);

    snprintf(with_newline, sizeof with_newline, "%s\ttab separated comment\r\n", line);
    TL_ASSERT_OK(tl_key_parse_ssh_public(with_newline, &parsed));
    assert_int_equal(1, EVP_PKEY_eq(key, parsed));
    EVP_PKEY_free(parsed);
    free(line);

    /* A comment that would break the one-line format is refused. */
    TL_ASSERT_RC(TL_EINVAL, tl_key_ssh_public(key, "two\nlines", &line));
    assert_null(line);

    EVP_PKEY_free(key);
}

/* Encodes an arbitrary blob as "ssh-ed25519 <base64>" for the parser to judge. */
static void forge_line(char *out, size_t out_size, const uint8_t *blob, size_t blob_len)
{
    unsigned char b64[256];
    EVP_EncodeBlock(b64, blob, (int)blob_len);
    snprintf(out, out_size, "ssh-ed25519 %s", b64);
}

static void test_ssh_public_rejects_garbage(void **state)
{
    EVP_PKEY *key = NULL;
    char *good = NULL;
    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_key_ssh_public(key, "c", &good));
    const char *b64 = good + 12;

    char bad[8192];
    const char *fixed[] = {
        "",
        "ssh-ed25519",
        "ssh-ed25519 ",
        "ssh-ed25519 AAAA",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI",
        "\xff\xfe garbage",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        EVP_PKEY *parsed = (EVP_PKEY *)1;
        TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(fixed[i], &parsed));
        assert_null(parsed);
    }

    struct {
        const char *what;
        int len;
        const char *text;
        const char *suffix;
    } edits[] = {
        {"truncated base64", 64, b64, ""},        {"one base64 character short", 67, b64, ""},
        {"one character too many", 68, b64, "A"}, {"padding added", 68, b64, "===="},
        {"embedded newline", 40, b64, "\nAAAA"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        EVP_PKEY *parsed = NULL;
        snprintf(bad, sizeof bad, "ssh-ed25519 %.*s%s", edits[i].len, edits[i].text,
                 edits[i].suffix);
        int rc = tl_key_parse_ssh_public(bad, &parsed);
        if (rc != TL_EKEY)
            fail_msg("%s: expected TL_EKEY, got %d", edits[i].what, rc);
        assert_null(parsed);
    }

    EVP_PKEY *parsed = NULL;
    /* Options before the key type (authorized_keys style) are not accepted here. */
    snprintf(bad, sizeof bad, "from=\"10.0.0.1\" %s", good);
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    snprintf(bad, sizeof bad, " %s", good);
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    /* A non-base64 character in the middle. */
    snprintf(bad, sizeof bad, "%s", good);
    bad[40] = '!';
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    /* A line longer than the limit, even if it starts well. */
    snprintf(bad, sizeof bad, "%s ", good);
    memset(bad + strlen(bad), 'x', sizeof bad - strlen(bad) - 1);
    bad[sizeof bad - 1] = '\0';
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));

    /* Blobs of the right size whose contents lie. */
    uint8_t blob[51] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                        '2', '5', '5', '1', '9', 0,   0,   0,   32};
    blob[14] = '8'; /* "ssh-ed25518" */
    forge_line(bad, sizeof bad, blob, sizeof blob);
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    blob[14] = '9';
    blob[18] = 31; /* key length 31, one trailing byte */
    forge_line(bad, sizeof bad, blob, sizeof blob);
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    blob[18] = 33; /* key length past the end */
    forge_line(bad, sizeof bad, blob, sizeof blob);
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    blob[3] = 0xff; /* type length past the end */
    blob[18] = 32;
    forge_line(bad, sizeof bad, blob, sizeof blob);
    TL_ASSERT_RC(TL_EKEY, tl_key_parse_ssh_public(bad, &parsed));
    assert_null(parsed);
    assert_int_equal(0, ERR_peek_error());
    free(good);
    EVP_PKEY_free(key);
}

static void test_cert_self_signed_round_trip(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    X509 *loaded = NULL;
    char key_fp[TL_FINGERPRINT_LEN];
    char cert_fp[TL_FINGERPRINT_LEN];
    char loaded_fp[TL_FINGERPRINT_LEN];

    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_fingerprint(key, key_fp));
    TL_ASSERT_OK(tl_cert_self_signed(key, "relay.example", 365, &cert));
    TL_ASSERT_OK(tl_fingerprint_of_cert(cert, cert_fp));
    assert_string_equal(key_fp, cert_fp);

    assert_int_equal(X509_VERSION_3, X509_get_version(cert));
    assert_int_equal(1, X509_verify(cert, key));
    assert_int_equal(0, X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)));
    char cn[64];
    assert_int_equal(
        13, X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn));
    assert_string_equal("relay.example", cn);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    assert_non_null(serial);
    assert_true(BN_num_bits(serial) > 64); /* 128 random bits: < 2^-64 chance to fail */
    assert_true(BN_num_bits(serial) <= 128);
    BN_free(serial);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(cert)) < 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(cert), NULL) > 0);

    TL_ASSERT_OK(tl_cert_save(tmp_file(&t, "cert.pem"), cert));
    TL_ASSERT_RC(TL_EEXIST, tl_cert_save(t.path, cert));
    TL_ASSERT_OK(tl_cert_load(t.path, &loaded));
    TL_ASSERT_OK(tl_fingerprint_of_cert(loaded, loaded_fp));
    assert_string_equal(key_fp, loaded_fp);
    assert_int_equal(0, X509_cmp(cert, loaded));

    /* Two certificates for one key differ in serial but not in fingerprint. */
    X509 *other = NULL;
    TL_ASSERT_OK(tl_cert_self_signed(key, "relay.example", 365, &other));
    assert_int_not_equal(
        0, ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(other)));
    TL_ASSERT_OK(tl_fingerprint_of_cert(other, loaded_fp));
    assert_string_equal(key_fp, loaded_fp);

    X509_free(other);
    X509_free(cert);
    X509_free(loaded);
    EVP_PKEY_free(key);
    tmp_cleanup(&t);
}

static void test_cert_refuses_bad_arguments(void **state)
{
    struct tmp t;
    tmp_init(&t);
    EVP_PKEY *key = NULL;
    EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = NULL;
    char long_name[80];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    TL_ASSERT_OK(tl_key_generate(&key));

    TL_ASSERT_RC(TL_EINVAL, tl_cert_self_signed(key, "x", 0, &cert));
    TL_ASSERT_RC(TL_EINVAL, tl_cert_self_signed(key, "x", 36501, &cert));
    TL_ASSERT_RC(TL_EINVAL, tl_cert_self_signed(key, "", 1, &cert));
    TL_ASSERT_RC(TL_EINVAL, tl_cert_self_signed(key, long_name, 1, &cert));
    TL_ASSERT_RC(TL_EKEY, tl_cert_self_signed(p256, "x", 1, &cert));
    assert_null(cert);

    TL_ASSERT_RC(-ENOENT, tl_cert_load(tmp_file(&t, "absent.pem"), &cert));
    write_text(tmp_file(&t, "junk.pem"), 0644, "-----BEGIN CERTIFICATE-----\nAAAA\n");
    TL_ASSERT_RC(TL_EKEY, tl_cert_load(t.path, &cert));
    assert_null(cert);
    assert_int_equal(0, ERR_peek_error());

    EVP_PKEY_free(p256);
    EVP_PKEY_free(key);
    tmp_cleanup(&t);
}

static void test_fingerprint_syntax_and_comparison(void **state)
{
    EVP_PKEY *key = NULL;
    char fp[TL_FINGERPRINT_LEN];
    char other[TL_FINGERPRINT_LEN];
    TL_ASSERT_OK(tl_key_generate(&key));
    TL_ASSERT_OK(tl_fingerprint(key, fp));
    assert_int_equal(TL_FINGERPRINT_LEN - 1, strlen(fp));
    assert_int_equal(0, strncmp(fp, "SHA256:", 7));
    assert_true(tl_fingerprint_valid(fp));

    char text[80];
    snprintf(text, sizeof text, "%s", fp + 7);
    assert_false(tl_fingerprint_valid(text)); /* no prefix */
    snprintf(text, sizeof text, "sha256:%s", fp + 7);
    assert_false(tl_fingerprint_valid(text));
    snprintf(text, sizeof text, "%.49s", fp);
    assert_false(tl_fingerprint_valid(text)); /* 42 characters */
    snprintf(text, sizeof text, "%sA", fp);
    assert_false(tl_fingerprint_valid(text)); /* 44 characters */
    snprintf(text, sizeof text, "%s=", fp);
    assert_false(tl_fingerprint_valid(text)); /* padded */
    snprintf(text, sizeof text, "%s", fp);
    text[20] = '-';
    assert_false(tl_fingerprint_valid(text)); /* base64url is not the standard alphabet */
    assert_false(tl_fingerprint_valid(""));
    assert_false(tl_fingerprint_valid(NULL));

    memcpy(other, fp, sizeof other);
    assert_true(tl_fingerprint_equal(fp, other));
    other[TL_FINGERPRINT_LEN - 2] = other[TL_FINGERPRINT_LEN - 2] == 'A' ? 'B' : 'A';
    assert_false(tl_fingerprint_equal(fp, other));
    assert_false(tl_fingerprint_equal("SHA256:x", "SHA256:x")); /* equal but not fingerprints */
    assert_false(tl_fingerprint_equal(fp, NULL));

    EVP_PKEY_free(key);
}

/* An authorized_keys line's blob, decoded. */
static size_t decode_blob(const char *base64, unsigned char *out, size_t size)
{
    size_t len = strlen(base64);
    assert_true(len / 4 * 3 <= size);
    int n = EVP_DecodeBlock(out, (const unsigned char *)base64, (int)len);
    assert_true(n > 0);
    return (size_t)n - (base64[len - 1] == '=' ? (base64[len - 2] == '=' ? 2 : 1) : 0);
}

/* Keys of any type, as `ssh-keygen -lf` printed their fingerprints. */
static void test_fingerprint_of_any_key_blob_is_what_ssh_keygen_prints(void **state)
{
    (void)state;
    static const struct {
        const char *blob, *fingerprint;
    } keys[] = {
        {"AAAAC3NzaC1lZDI1NTE5AAAAICyp7nh3h11fyP8z5ZC/l1igCMBm4cOOz5h0tH87HA5n",
         "SHA256:P/BM6zb/EvZtwVxboKRTgb75IfW3xTCdqENte8wCUbI"},
        {"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOhrIz1b/nubsoMQU+QLHZ3HbgXgrJ1kyF2J"
         "X2q4lvvcLjD1lzhJULNz345wwq0Na7gIoVfC7ylNQIxeVpujYlw=",
         "SHA256:e1LESVVhs0GdeX4mzLus/DkMxQphf7qJrYGYCSBK+4I"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        unsigned char blob[512], digest[32];
        size_t len = decode_blob(keys[i].blob, blob, sizeof blob);
        char fingerprint[TL_FINGERPRINT_LEN];
        TL_ASSERT_OK(tl_fingerprint_of_blob(blob, len, fingerprint));
        assert_string_equal(fingerprint, keys[i].fingerprint);
        assert_true(tl_fingerprint_valid(fingerprint));
        /* From the digest alone (libssh hands out the hash), the same text. */
        unsigned int digest_len = 0;
        assert_int_equal(EVP_Digest(blob, len, digest, &digest_len, EVP_sha256(), NULL), 1);
        TL_ASSERT_OK(tl_fingerprint_of_sha256(digest, digest_len, fingerprint));
        assert_string_equal(fingerprint, keys[i].fingerprint);
    }
    char fingerprint[TL_FINGERPRINT_LEN];
    unsigned char digest[33] = {0};
    TL_ASSERT_RC(TL_EINVAL, tl_fingerprint_of_sha256(digest, 31, fingerprint));
    assert_string_equal(fingerprint, "");
    TL_ASSERT_RC(TL_EINVAL, tl_fingerprint_of_sha256(digest, 33, fingerprint));
    TL_ASSERT_RC(TL_EKEY, tl_fingerprint_of_blob(digest, 0, fingerprint));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_key_round_trip_keeps_fingerprint),
    cmocka_unit_test(test_key_file_is_private_pkcs8),
    cmocka_unit_test(test_key_save_refuses_to_overwrite),
    cmocka_unit_test(test_key_load_refuses_loose_permissions),
    cmocka_unit_test(test_key_load_refuses_non_ed25519_keys),
    cmocka_unit_test(test_key_load_refuses_unusable_files),
    cmocka_unit_test(test_fingerprint_matches_ssh_keygen),
    cmocka_unit_test(test_ssh_public_parses_ssh_keygen_key),
    cmocka_unit_test(test_ssh_public_round_trip),
    cmocka_unit_test(test_ssh_public_rejects_garbage),
    cmocka_unit_test(test_cert_self_signed_round_trip),
    cmocka_unit_test(test_cert_refuses_bad_arguments),
    cmocka_unit_test(test_fingerprint_syntax_and_comparison),
    cmocka_unit_test(test_fingerprint_of_any_key_blob_is_what_ssh_keygen_prints),
};

TL_TEST_MAIN(tests)
