/* The audit key: checkpoints' signer (relay/store/audit_key.h). */
#include "relay/store/audit_key.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/keys.h"
#include "proto/log.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tl_audit_key_name(const char *relay_fingerprint, char out[TL_NOTE_NAME_MAX + 1])
{
    char b64[TL_FINGERPRINT_LEN];
    if (!tl_fingerprint_valid(relay_fingerprint))
        return TL_EINVAL;
    snprintf(b64, sizeof b64, "%s", relay_fingerprint + TL_FINGERPRINT_PREFIX_LEN);
    for (char *c = b64; *c != '\0'; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
    }
    int rc = tl_format(out, TL_NOTE_NAME_MAX + 1, "%s%s", TL_AUDIT_KEY_ORIGIN_PREFIX, b64);
    return rc == 0 && tl_note_name_valid(out) ? 0 : TL_EINVAL;
}

int tl_audit_key_verifier(const char *key_path, const char *name, tl_note_verifier_t *out,
                          char vkey[TL_NOTE_VKEY_MAX])
{
    char text[TL_NOTE_VKEY_MAX];
    EVP_PKEY *key = NULL;
    int rc = tl_key_load(key_path, &key);
    if (rc == 0)
        rc = tl_note_vkey_format(name, key, text);
    if (rc == 0)
        rc = tl_note_vkey_parse(text, out);
    if (rc == 0 && vkey != NULL)
        memcpy(vkey, text, TL_NOTE_VKEY_MAX);
    EVP_PKEY_free(key);
    return rc;
}

int tl_audit_key_public_pem(EVP_PKEY *key, char **out)
{
    *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    int rc = TL_EKEY;
    if (bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1) {
        long len = BIO_get_mem_data(bio, &data);
        *out = len > 0 ? malloc((size_t)len + 1) : NULL;
        if (*out != NULL) {
            memcpy(*out, data, (size_t)len);
            (*out)[len] = '\0';
            rc = 0;
        } else {
            rc = TL_ENOMEM;
        }
    }
    BIO_free(bio);
    return rc;
}

/* A new key and its verifier key string under name; not saved. */
static int new_key(const char *name, EVP_PKEY **key, char vkey[TL_NOTE_VKEY_MAX])
{
    int rc = tl_key_generate(key);
    if (rc == 0)
        rc = tl_note_vkey_format(name, *key, vkey);
    return rc;
}

int tl_audit_key_create(const char *key_path, const char *name, char vkey[TL_NOTE_VKEY_MAX])
{
    EVP_PKEY *key = NULL;
    int rc = new_key(name, &key, vkey);
    if (rc == 0)
        rc = tl_key_save(key_path, key);
    EVP_PKEY_free(key);
    return rc;
}

struct key_entry {
    tl_audit_chain_t *chain;
    const char *vkey;
};

/* The new key's entry, in a unit of work of its own. */
static int stage_key_entry(tl_store_t *store, void *arg)
{
    const struct key_entry *made = arg;
    (void)store;
    json_t *details = json_pack("{s:s, s:s}", "vkey", made->vkey, "reason",
                                "the data directory had no audit key");
    tl_audit_entry_t entry = {
        .actor = "relay", .action = "audit.key", .subject = "", .details = details};
    int rc = details != NULL ? tl_audit_chain_stage(made->chain, &entry, NULL) : TL_ENOMEM;
    json_decref(details);
    return rc;
}

int tl_audit_key_ensure(const char *key_path, const char *name, tl_store_t *store,
                        tl_audit_chain_t *chain, int *created, char *problem, size_t problem_size)
{
    const char *path = key_path;
    char vkey[TL_NOTE_VKEY_MAX];
    EVP_PKEY *key = NULL;
    *created = 0;
    problem[0] = '\0';
    int rc = tl_key_load(path, &key);
    if (rc == 0)
        goto out; /* there is one */
    if (rc != -ENOENT) {
        snprintf(problem, problem_size, "the audit key %s cannot be used: %s", path,
                 tl_strerror(rc));
        goto out;
    }
    if ((rc = new_key(name, &key, vkey)) != 0) {
        snprintf(problem, problem_size, "cannot make an audit key: %s", tl_strerror(rc));
        goto out;
    }
    /* On the record first: a key that exists is one the log names. */
    struct key_entry made = {chain, vkey};
    if ((rc = tl_store_unit_run(store, stage_key_entry, &made)) != 0) {
        snprintf(problem, problem_size, "cannot record the new audit key: %s", tl_strerror(rc));
        goto out;
    }
    if ((rc = tl_audit_chain_flush(chain)) != 0) {
        snprintf(problem, problem_size, "cannot record the new audit key: %s",
                 tl_audit_chain_problem(chain));
        goto out;
    }
    if ((rc = tl_key_save(path, key)) != 0) {
        snprintf(problem, problem_size, "cannot save the audit key %s: %s", path, tl_strerror(rc));
        goto out;
    }
    *created = 1;
    tl_log_info("audit key created path=%s vkey=%s", path, vkey);
out:
    EVP_PKEY_free(key);
    return rc;
}
