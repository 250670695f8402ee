#include "agent/state.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/format.h"
#include "proto/text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tl_state_path(const char *dir, const char *name, char *out, size_t size)
{
    return tl_format(out, size, "%s/%s", dir, name) == 0 ? 0 : TL_EINVAL;
}

static char configured_dir[TL_STATE_PATH_MAX];

void tl_state_set_configured_dir(const char *dir)
{
    snprintf(configured_dir, sizeof configured_dir, "%s", dir != NULL ? dir : "");
}

int tl_state_dir(const char *dir, char *out, size_t size)
{
    int rc;
    const char *env = getenv("TIERLINE_AGENT_STATE");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (dir != NULL)
        rc = tl_format(out, size, "%s", dir);
    else if (env != NULL && env[0] != '\0')
        rc = tl_format(out, size, "%s", env);
    else if (configured_dir[0] != '\0')
        rc = tl_format(out, size, "%s", configured_dir);
    else if (xdg != NULL && xdg[0] == '/')
        rc = tl_format(out, size, "%s/tierline-agent", xdg);
    else if (home != NULL && home[0] == '/')
        rc = tl_format(out, size, "%s/.local/state/tierline-agent", home);
    else
        return TL_EINVAL;
    return rc == 0 && out[0] != '\0' ? 0 : TL_EINVAL; /* an empty --state is none */
}

static int make_dirs(const char *path)
{
    char partial[TL_STATE_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof partial)
        return TL_EINVAL;
    memcpy(partial, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (partial[i] != '/' && partial[i] != '\0')
            continue;
        char saved = partial[i];
        partial[i] = '\0';
        if (mkdir(partial, 0700) != 0 && errno != EEXIST)
            return -errno;
        partial[i] = saved;
    }
    return 0;
}

int tl_state_prepare(const char *dir)
{
    char outbox[TL_STATE_PATH_MAX];
    int rc = make_dirs(dir);
    if (rc == 0)
        rc = chmod(dir, 0700) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = tl_state_path(dir, TL_STATE_OUTBOX, outbox, sizeof outbox);
    if (rc == 0 && mkdir(outbox, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    return rc;
}

int tl_state_load(const char *dir, tl_agent_state_t *out)
{
    memset(out, 0, sizeof *out);
    if (tl_format(out->dir, sizeof out->dir, "%s", dir) != 0)
        return TL_EINVAL;
    char path[TL_STATE_PATH_MAX];
    int rc = tl_state_path(dir, TL_STATE_RELAY, path, sizeof path);
    if (rc != 0)
        return rc;
    if (access(path, F_OK) != 0)
        return 0;
    json_error_t error;
    json_t *relay = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    if (relay == NULL)
        return TL_EINVAL;
    const char *host = json_string_value(json_object_get(relay, "host"));
    const char *fingerprint = json_string_value(json_object_get(relay, "fingerprint"));
    const char *device = json_string_value(json_object_get(relay, "device"));
    json_t *port = json_object_get(relay, "port");
    json_t *catalogue_key = json_object_get(relay, "catalogue_key");
    rc = TL_EINVAL;
    if (catalogue_key != NULL &&
        !(json_is_string(catalogue_key) && tl_fingerprint_valid(json_string_value(catalogue_key))))
        host = NULL; /* damaged */
    if (host != NULL && strlen(host) < sizeof out->relay_host && fingerprint != NULL &&
        tl_fingerprint_valid(fingerprint) && device != NULL &&
        strlen(device) < sizeof out->device && json_is_integer(port) &&
        json_integer_value(port) > 0 && json_integer_value(port) <= 65535) {
        strcpy(out->relay_host, host);
        strcpy(out->relay_fingerprint, fingerprint);
        strcpy(out->device, device);
        out->relay_port = (uint16_t)json_integer_value(port);
        if (catalogue_key != NULL)
            strcpy(out->catalogue_key, json_string_value(catalogue_key));
        out->enrolled = 1;
        rc = 0;
    }
    json_decref(relay);
    return rc;
}

int tl_state_save(const tl_agent_state_t *state)
{
    char path[TL_STATE_PATH_MAX], temp[TL_STATE_PATH_MAX];
    int rc = tl_state_path(state->dir, TL_STATE_RELAY, path, sizeof path);
    /* The name of the temporary file beside it must fit as well. */
    if (rc == 0)
        rc = tl_state_path(state->dir, TL_STATE_RELAY ".tmp", temp, sizeof temp);
    if (rc != 0)
        return rc;
    json_t *relay = json_pack("{s:i, s:s, s:i, s:s, s:s}", "version", 1, "host", state->relay_host,
                              "port", (json_int_t)state->relay_port, "fingerprint",
                              state->relay_fingerprint, "device", state->device);
    if (relay != NULL && state->catalogue_key[0] != '\0' &&
        json_object_set_new(relay, "catalogue_key", json_string(state->catalogue_key)) != 0) {
        json_decref(relay);
        relay = NULL;
    }
    size_t len = 0;
    char *text = relay != NULL ? tl_text_json_line(relay, JSON_INDENT(2), &len) : NULL;
    json_decref(relay);
    if (text == NULL)
        return TL_ENOMEM;
    /* The enrollment survives a crash. */
    rc = tl_fs_write_atomic(path, text, len, TL_FS_SYNC | TL_FS_SYNC_DIR, NULL);
    free(text);
    return rc;
}

int tl_state_identity(const char *dir, int create, EVP_PKEY **key, X509 **cert)
{
    char key_path[TL_STATE_PATH_MAX], cert_path[TL_STATE_PATH_MAX];
    *key = NULL;
    *cert = NULL;
    int rc = tl_state_path(dir, TL_STATE_KEY, key_path, sizeof key_path);
    if (rc == 0)
        rc = tl_state_path(dir, TL_STATE_CERT, cert_path, sizeof cert_path);
    if (rc != 0)
        return rc;
    rc = tl_key_load(key_path, key);
    if (rc == -ENOENT) {
        if (!create)
            return TL_ENOTFOUND;
        unlink(cert_path); /* a certificate without its key is useless */
        if ((rc = tl_key_generate(key)) != 0 || (rc = tl_key_save(key_path, *key)) != 0)
            goto out;
    } else if (rc != 0) {
        goto out;
    }
    rc = tl_cert_load(cert_path, cert);
    if (rc == -ENOENT) {
        if ((rc = tl_cert_self_signed(*key, "tierline-agent", 3650, cert)) != 0 ||
            (rc = tl_cert_save(cert_path, *cert)) != 0)
            goto out;
    }
out:
    if (rc != 0) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        *key = NULL;
        *cert = NULL;
    }
    return rc;
}
