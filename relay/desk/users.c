/* Technicians and auditors: the store's users, and the loop's copy for logins (desk/users.h). */
#include "relay/desk/users.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/keys.h"
#include "proto/roles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct user {
    char name[65];
    int role;
    int disabled;
    int64_t id;
    int64_t expires; /* ms; 0: never */
    ssh_key key;
    char fingerprint[64];
};

struct tl_users {
    struct user *list;
    size_t count;
};

tl_users_t *tl_users_new(void)
{
    return calloc(1, sizeof(tl_users_t));
}

static void clear(tl_users_t *users)
{
    for (size_t i = 0; i < users->count; i++)
        ssh_key_free(users->list[i].key);
    free(users->list);
    users->list = NULL;
    users->count = 0;
}

void tl_users_free(tl_users_t *users)
{
    if (users == NULL)
        return;
    clear(users);
    free(users);
}

static int parse_key_line(const char *line, ssh_key *key)
{
    /* "TYPE BASE64 [comment]" */
    char type[64], blob[8192];
    if (strlen(line) >= sizeof blob || sscanf(line, "%63s %8191s", type, blob) != 2)
        return TL_EKEY;
    enum ssh_keytypes_e key_type = ssh_key_type_from_name(type);
    if (key_type == SSH_KEYTYPE_UNKNOWN)
        return TL_EKEY;
    return ssh_pki_import_pubkey_base64(blob, key_type, key) == SSH_OK ? 0 : TL_EKEY;
}

int tl_users_key_fingerprint(ssh_key key, char out[64])
{
    unsigned char *hash = NULL;
    size_t hash_len = 0;
    out[0] = '\0';
    int rc = ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == SSH_OK
                 ? tl_fingerprint_of_sha256(hash, hash_len, out)
                 : TL_EKEY;
    ssh_clean_pubkey_hash(&hash);
    return rc == 0 ? 0 : TL_EKEY;
}

/* One stored user into u: 0, or -1 for a damaged row (it cannot log in; the others still can). */
static int load_user(struct user *u, const char *name, const char *line, const char *role_name,
                     int disabled, int64_t id, int64_t expires)
{
    int role = tl_role_parse(role_name);
    if (name == NULL || line == NULL || role < 0 || strlen(name) >= sizeof u->name ||
        parse_key_line(line, &u->key) != 0)
        return -1;
    strcpy(u->name, name);
    u->role = role;
    u->disabled = disabled;
    u->id = id;
    u->expires = expires;
    tl_users_key_fingerprint(u->key, u->fingerprint);
    return 0;
}

int tl_users_load_rows(tl_users_t *users, const tl_user_rows_t *rows)
{
    struct user *fresh = calloc(rows->count ? rows->count : 1, sizeof *fresh);
    if (fresh == NULL)
        return TL_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < rows->count; i++) {
        const tl_user_row_t *row = &rows->rows[i];
        if (load_user(&fresh[used], row->name, row->public_key, row->role, row->disabled, row->id,
                      row->expires) == 0)
            used++;
    }
    clear(users);
    users->list = fresh;
    users->count = used;
    return 0;
}

size_t tl_users_count(const tl_users_t *users)
{
    return users->count;
}

static const struct user *find_user(const tl_users_t *users, const char *name)
{
    for (size_t i = 0; i < users->count; i++)
        if (strcmp(users->list[i].name, name) == 0)
            return &users->list[i];
    return NULL;
}

int tl_users_authorize(const tl_users_t *users, const char *name, ssh_key key, tl_technician_t *out)
{
    const struct user *u = find_user(users, name);
    if (u == NULL || ssh_key_cmp(key, u->key, SSH_KEY_CMP_PUBLIC) != 0)
        return TL_ENOTFOUND;
    if (u->disabled)
        return TL_EDISABLED;
    if (u->expires != 0 && tl_wall_ms() >= u->expires)
        return TL_EEXPIRED;
    memset(out, 0, sizeof *out);
    out->user_id = u->id;
    snprintf(out->name, sizeof out->name, "%s", u->name);
    snprintf(out->role, sizeof out->role, "%s", tl_role_name(u->role));
    snprintf(out->key_fingerprint, sizeof out->key_fingerprint, "%s", u->fingerprint);
    out->expires = u->expires;
    return 0;
}

int tl_users_recheck(const tl_users_t *users, const tl_technician_t *who, int64_t now_ms)
{
    const struct user *u = find_user(users, who->name);
    if (u == NULL || u->id != who->user_id || strcmp(u->fingerprint, who->key_fingerprint) != 0)
        return TL_ENOTFOUND;
    if (u->disabled)
        return TL_EDISABLED;
    if (u->expires != 0 && now_ms >= u->expires)
        return TL_EEXPIRED;
    if (strcmp(tl_role_name(u->role), who->role) != 0)
        return TL_EDENIED;
    return 0;
}

const char *tl_users_recheck_reason(int rc)
{
    switch (rc) {
    case 0:
        return "account active";
    case TL_EDISABLED:
        return "account disabled";
    case TL_EEXPIRED:
        return "account expired";
    case TL_EDENIED:
        return "account's role changed";
    default:
        return "account removed or its key changed";
    }
}

int tl_users_read_key_file(const char *path, char **key_line, char fingerprint[64])
{
    *key_line = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[TL_USERS_MAX_KEY_FILE];
    int rc = TL_EKEY;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        ssh_key key = NULL;
        rc = parse_key_line(line, &key);
        if (rc == 0) {
            char *blob = NULL;
            rc = tl_users_key_fingerprint(key, fingerprint);
            if (rc == 0 && ssh_pki_export_pubkey_base64(key, &blob) == SSH_OK) {
                size_t len = strlen(ssh_key_type_to_char(ssh_key_type(key))) + strlen(blob) + 2;
                *key_line = malloc(len);
                if (*key_line != NULL)
                    snprintf(*key_line, len, "%s %s", ssh_key_type_to_char(ssh_key_type(key)),
                             blob);
                else
                    rc = TL_ENOMEM;
            } else if (rc == 0) {
                rc = TL_EKEY;
            }
            ssh_string_free_char(blob);
        }
        ssh_key_free(key);
        break; /* the first key line is the key */
    }
    fclose(f);
    return rc;
}
