/* The relay's data directory: its layout, creation and settings (relay/store/datadir.h). */
#include "relay/store/datadir.h"
#include "proto/fsutil.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/keys.h"
#include "relay/store/audit_chain.h"
#include "relay/store/audit_key.h"
#include "relay/store/evidence.h"
#include "relay/store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tl_datadir_path(const char *root, const char *name, char *out, size_t size)
{
    return tl_format(out, size, "%s/%s", root, name) == 0 ? 0 : TL_EINVAL;
}

/* 1 if path is missing or an empty directory. */
static int absent_or_empty(const char *root)
{
    DIR *dir = opendir(root);
    if (dir == NULL)
        return errno == ENOENT;
    struct dirent *entry;
    int empty = 1;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(dir);
    return empty;
}

static int write_settings(const char *root, const char *listen, const char *ssh_listen)
{
    char path[4096];
    int rc = tl_datadir_path(root, TL_DATADIR_SETTINGS, path, sizeof path);
    if (rc != 0)
        return rc;
    json_t *settings = json_pack("{s:i, s:s}", "version", 1, "listen", listen);
    if (settings != NULL && ssh_listen != NULL &&
        json_object_set_new(settings, "ssh_listen", json_string(ssh_listen)) != 0) {
        json_decref(settings);
        settings = NULL;
    }
    if (settings == NULL)
        return TL_ENOMEM;
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        json_decref(settings);
        return -errno;
    }
    rc = json_dumpfd(settings, fd, JSON_INDENT(2)) == 0 && write(fd, "\n", 1) == 1 ? 0 : TL_EIO;
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    json_decref(settings);
    return rc;
}

struct first_entry {
    tl_audit_chain_t *chain;
    const tl_audit_entry_t *entry;
};

static int stage_first(tl_store_t *store, void *arg)
{
    const struct first_entry *first = arg;
    (void)store;
    return tl_audit_chain_stage(first->chain, first->entry, NULL);
}

int tl_datadir_init(const char *root, const char *listen, const char *ssh_listen,
                    char *fingerprint_out)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    tl_store_t *store = NULL;
    tl_audit_chain_t *chain = NULL;
    tl_evidence_store_t *evidence = NULL;
    json_t *details = NULL;
    int rc;

    if (!absent_or_empty(root))
        return TL_EEXIST;
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        return -errno;
    if (chmod(root, 0700) != 0)
        return -errno;

    if ((rc = tl_key_generate(&key)) != 0 ||
        (rc = tl_datadir_path(root, TL_DATADIR_KEY, path, sizeof path)) != 0 ||
        (rc = tl_key_save(path, key)) != 0)
        goto out;
    if ((rc = tl_cert_self_signed(key, "tierline-relay", 3650, &cert)) != 0 ||
        (rc = tl_datadir_path(root, TL_DATADIR_CERT, path, sizeof path)) != 0 ||
        (rc = tl_cert_save(path, cert)) != 0)
        goto out;
    if ((rc = tl_fingerprint(key, fingerprint_out)) != 0)
        goto out;
    /* The checkpoints' signer, apart from the relay key (relay/store/audit_key.h). */
    char audit_vkey[TL_NOTE_VKEY_MAX], audit_name[TL_NOTE_NAME_MAX + 1];
    if ((rc = tl_datadir_path(root, TL_DATADIR_AUDIT_KEY, path, sizeof path)) != 0 ||
        (rc = tl_audit_key_name(fingerprint_out, audit_name)) != 0 ||
        (rc = tl_audit_key_create(path, audit_name, audit_vkey)) != 0)
        goto out;
    if ((rc = tl_datadir_path(root, TL_DATADIR_DB, path, sizeof path)) != 0 ||
        (rc = tl_store_open(path, TL_STORE_CREATE_NEW, &store)) != 0)
        goto out;
    if ((rc = tl_datadir_path(root, TL_DATADIR_EVIDENCE, path, sizeof path)) != 0 ||
        (rc = tl_evidence_store_open(path, NULL, &evidence)) != 0)
        goto out;
    if ((rc = write_settings(root, listen, ssh_listen)) != 0)
        goto out;
    /* The chain starts here, with its head in the store (relay/store/audit_chain.h). */
    if ((rc = tl_datadir_path(root, TL_DATADIR_AUDIT, path, sizeof path)) != 0 ||
        (rc = tl_audit_chain_open(store, path, TL_AUDIT_CHAIN_CREATE, &chain, NULL, 0)) != 0)
        goto out;
    details = json_pack("{s:s, s:s, s:s}", "fingerprint", fingerprint_out, "listen", listen,
                        "audit_key", audit_vkey);
    if (details != NULL && ssh_listen != NULL &&
        json_object_set_new(details, "ssh_listen", json_string(ssh_listen)) != 0) {
        json_decref(details);
        details = NULL;
    }
    if (details == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    tl_audit_entry_t entry = {
        .actor = "admin", .action = "relay.init", .subject = "", .details = details};
    struct first_entry first = {chain, &entry};
    if ((rc = tl_store_unit_run(store, stage_first, &first)) != 0)
        goto out;
    if ((rc = tl_audit_chain_flush(chain)) != 0)
        goto out;
    rc = tl_fsync_dir(root);
out:
    json_decref(details);
    tl_audit_chain_close(chain);
    tl_evidence_store_close(evidence);
    tl_store_close(store);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* The string setting key of DATA/relay.json into out; TL_ENOTFOUND if it is not there. */
static int read_setting(const char *root, const char *key, char *out, size_t size)
{
    char path[4096];
    int rc = tl_datadir_path(root, TL_DATADIR_SETTINGS, path, sizeof path);
    if (rc != 0)
        return rc;
    json_error_t error;
    json_t *settings = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (settings == NULL)
        return access(path, F_OK) == 0 ? TL_EINVAL : -ENOENT;
    json_t *value = json_object_get(settings, key);
    const char *text = json_string_value(value);
    if (value == NULL)
        rc = TL_ENOTFOUND;
    else
        rc = text != NULL && strlen(text) < size ? 0 : TL_EINVAL;
    if (rc == 0)
        strcpy(out, text);
    json_decref(settings);
    return rc;
}

int tl_datadir_listen(const char *root, char *out, size_t size)
{
    int rc = read_setting(root, "listen", out, size);
    return rc == TL_ENOTFOUND ? TL_EINVAL : rc;
}

int tl_datadir_ssh_listen(const char *root, char *out, size_t size)
{
    return read_setting(root, "ssh_listen", out, size);
}

int tl_datadir_fingerprint(const char *root, char *out)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    int rc = tl_datadir_path(root, TL_DATADIR_KEY, path, sizeof path);
    if (rc == 0)
        rc = tl_key_load(path, &key);
    if (rc == 0)
        rc = tl_fingerprint(key, out);
    EVP_PKEY_free(key);
    return rc;
}
