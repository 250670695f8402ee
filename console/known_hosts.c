#include "console/known_hosts.h"
#include "proto/keys.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Longer lines are skipped: an RSA-16384 key line is under 3 KiB. */
#define LINE_MAX_BYTES 16384
#define BLOB_MAX 8192

/* ---- host patterns ---------------------------------------------------------------------- */

/* Glob with * and ?, no character classes ("[host]:port" is literal), case-insensitive. */
static int glob_match(const char *pattern, size_t pattern_len, const char *name)
{
    size_t p = 0, n = 0, star = (size_t)-1, resume = 0, name_len = strlen(name);
    while (n < name_len) {
        if (p < pattern_len && (pattern[p] == '?' || tolower((unsigned char)pattern[p]) ==
                                                         tolower((unsigned char)name[n]))) {
            p++;
            n++;
        } else if (p < pattern_len && pattern[p] == '*') {
            star = p++;
            resume = n;
        } else if (star != (size_t)-1) {
            p = star + 1;
            n = ++resume;
        } else {
            return 0;
        }
    }
    while (p < pattern_len && pattern[p] == '*')
        p++;
    return p == pattern_len;
}

/* A comma-separated list with ! negation, as ssh's match_hostname: 1 match, 0 none, -1 negated. */
static int list_match(const char *list, size_t len, const char *name)
{
    int matched = 0;
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && list[end] != ',')
            end++;
        int negated = end > start && list[start] == '!';
        size_t from = start + (size_t)negated;
        if (end > from && glob_match(list + from, end - from, name)) {
            if (negated)
                return -1;
            matched = 1;
        }
        start = end + 1;
    }
    return matched;
}

static int b64_decode(const char *text, size_t len, uint8_t *out, size_t out_max, size_t *out_len)
{
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > out_max)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0)
        return -1;
    size_t pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
    *out_len = (size_t)n - pad;
    return 0;
}

/* "|1|SALT|HASH": HMAC-SHA1 of name keyed with the salt (ssh's HashKnownHosts). */
static int hashed_match(const char *field, size_t len, const char *name)
{
    const char *salt = field + 3, *end = field + len;
    const char *bar = memchr(salt, '|', (size_t)(end - salt));
    uint8_t salt_bytes[64], hash[64], mac[EVP_MAX_MD_SIZE];
    size_t salt_len, hash_len;
    unsigned mac_len = 0;
    if (bar == NULL ||
        b64_decode(salt, (size_t)(bar - salt), salt_bytes, sizeof salt_bytes, &salt_len) != 0 ||
        b64_decode(bar + 1, (size_t)(end - bar - 1), hash, sizeof hash, &hash_len) != 0)
        return 0;
    if (HMAC(EVP_sha1(), salt_bytes, (int)salt_len, (const unsigned char *)name, strlen(name), mac,
             &mac_len) == NULL)
        return 0;
    return mac_len == hash_len && memcmp(mac, hash, hash_len) == 0;
}

/* The fingerprint of a base64 key blob, as ssh-keygen -l prints it. */
static int blob_fingerprint(const char *text, size_t len, char out[TL_FINGERPRINT_LEN])
{
    uint8_t blob[BLOB_MAX];
    size_t blob_len;
    if (b64_decode(text, len, blob, sizeof blob, &blob_len) != 0 ||
        tl_fingerprint_of_blob(blob, blob_len, out) != 0)
        return -1;
    return 0;
}

/* The next whitespace-separated field of line from *at; its length, 0 at the end. */
static size_t next_field(const char *line, size_t len, size_t *at, const char **field)
{
    size_t i = *at;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t start = i;
    while (i < len && line[i] != ' ' && line[i] != '\t')
        i++;
    *field = line + start;
    *at = i;
    return i - start;
}

/* ---- one file --------------------------------------------------------------------------- */

tl_known_hosts_verdict_t tl_known_hosts_check(const char *text, size_t len, const char *host,
                                              unsigned port, const char *fingerprint, int *line_out)
{
    char name[300];
    if (port == 22)
        snprintf(name, sizeof name, "%s", host);
    else
        snprintf(name, sizeof name, "[%s]:%u", host, port);
    tl_known_hosts_verdict_t verdict = TL_KNOWN_HOSTS_NONE;
    int decided_line = 0, line_number = 0;
    for (size_t start = 0; start < len;) {
        const char *newline = memchr(text + start, '\n', len - start);
        size_t end = newline != NULL ? (size_t)(newline - text) : len;
        const char *line = text + start;
        size_t line_len = end - start;
        start = end + 1;
        line_number++;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        if (line_len > LINE_MAX_BYTES)
            continue;
        size_t at = 0;
        const char *field;
        size_t field_len = next_field(line, line_len, &at, &field);
        if (field_len == 0 || field[0] == '#')
            continue;
        int revoked = 0;
        if (field[0] == '@') {
            if (field_len != 8 || strncmp(field, "@revoked", 8) != 0)
                continue; /* @cert-authority and unknown markers: not a host key */
            revoked = 1;
            field_len = next_field(line, line_len, &at, &field);
        }
        const char *hosts = field, *type, *key;
        size_t hosts_len = field_len;
        size_t type_len = next_field(line, line_len, &at, &type);
        size_t key_len = next_field(line, line_len, &at, &key);
        if (hosts_len == 0 || type_len == 0 || key_len == 0)
            continue;
        int names_host = hosts_len > 3 && strncmp(hosts, "|1|", 3) == 0
                             ? hashed_match(hosts, hosts_len, name)
                             : list_match(hosts, hosts_len, name) == 1;
        char listed[TL_FINGERPRINT_LEN];
        if (!names_host || blob_fingerprint(key, key_len, listed) != 0)
            continue;
        int same = tl_fingerprint_equal(listed, fingerprint);
        if (revoked) {
            if (same) {
                *line_out = line_number;
                return TL_KNOWN_HOSTS_REVOKED;
            }
            continue;
        }
        if (same && verdict != TL_KNOWN_HOSTS_MATCH) {
            verdict = TL_KNOWN_HOSTS_MATCH;
            decided_line = line_number;
        } else if (!same && verdict == TL_KNOWN_HOSTS_NONE) {
            verdict = TL_KNOWN_HOSTS_MISMATCH;
            decided_line = line_number;
        }
    }
    *line_out = decided_line;
    return verdict;
}

tl_known_hosts_verdict_t tl_known_hosts_combine(tl_known_hosts_verdict_t a,
                                                tl_known_hosts_verdict_t b)
{
    static const tl_known_hosts_verdict_t order[] = {TL_KNOWN_HOSTS_REVOKED, TL_KNOWN_HOSTS_MATCH,
                                                     TL_KNOWN_HOSTS_MISMATCH};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (a == order[i] || b == order[i])
            return order[i];
    return TL_KNOWN_HOSTS_NONE;
}

/* ---- which files ------------------------------------------------------------------------ */

/* One path word with ~/, %d, %u and %% expanded into out; -1 if it cannot be. */
static int expand_path(const char *word, size_t len, const char *home, const char *user,
                       char out[TL_KNOWN_HOSTS_PATH_MAX])
{
    size_t used = 0;
    size_t i = 0;
    if (len >= 1 && word[0] == '~' && (len == 1 || word[1] == '/')) {
        if (home == NULL)
            return -1;
        used = strlen(home);
        if (used >= TL_KNOWN_HOSTS_PATH_MAX)
            return -1;
        memcpy(out, home, used);
        i = 1;
    }
    for (; i < len && used < TL_KNOWN_HOSTS_PATH_MAX - 1; i++) {
        const char *insert = NULL;
        char single[2] = {word[i], '\0'};
        if (word[i] == '%' && i + 1 < len) {
            char token = word[++i];
            insert = token == 'd' ? home : token == 'u' ? user : token == '%' ? "%" : NULL;
            if (insert == NULL)
                return -1;
        } else {
            insert = single;
        }
        size_t add = strlen(insert);
        if (used + add >= TL_KNOWN_HOSTS_PATH_MAX)
            return -1;
        memcpy(out + used, insert, add);
        used += add;
    }
    if (i < len || used == 0)
        return -1;
    out[used] = '\0';
    return out[0] == '/' ? 0 : -1; /* ssh reads a relative name from elsewhere: left out */
}

/* The words of a config value: blanks separate them, double quotes keep blanks. */
static void add_value_files(const char *value, size_t len, const char *home, const char *user,
                            char files[][TL_KNOWN_HOSTS_PATH_MAX], size_t *count)
{
    for (size_t i = 0; i < len;) {
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        if (i >= len)
            break;
        size_t start = i, end;
        if (value[i] == '"') {
            start = ++i;
            while (i < len && value[i] != '"')
                i++;
            end = i++;
        } else {
            while (i < len && value[i] != ' ' && value[i] != '\t')
                i++;
            end = i;
        }
        if (end - start == 4 && strncasecmp(value + start, "none", 4) == 0)
            continue;
        if (*count < TL_KNOWN_HOSTS_FILES_MAX &&
            expand_path(value + start, end - start, home, user, files[*count]) == 0)
            (*count)++;
    }
}

/* "Host a b !c": 1 if host matches a pattern and no negated one. */
static int host_line_applies(const char *value, size_t len, const char *host)
{
    int matched = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && value[i] != ' ' && value[i] != '\t')
            i++;
        if (i == start)
            break;
        int negated = value[start] == '!';
        size_t from = start + (size_t)negated;
        if (i > from && glob_match(value + from, i - from, host)) {
            if (negated)
                return 0;
            matched = 1;
        }
    }
    return matched;
}

/* ssh's defaults (ssh_config(5)). */
static const char default_user_files[] = "~/.ssh/known_hosts ~/.ssh/known_hosts2";
static const char default_global_files[] = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2";

void tl_known_hosts_files(const char *ssh_config, size_t len, const char *host, const char *home,
                          const char *user, char files[][TL_KNOWN_HOSTS_PATH_MAX], size_t *count)
{
    /* ssh takes the first value it meets for each keyword. */
    const char *user_value = NULL, *global_value = NULL;
    size_t user_len = 0, global_len = 0;
    int applies = 1;
    for (size_t start = 0; ssh_config != NULL && start < len;) {
        const char *newline = memchr(ssh_config + start, '\n', len - start);
        size_t end = newline != NULL ? (size_t)(newline - ssh_config) : len;
        const char *line = ssh_config + start;
        size_t line_len = end - start;
        start = end + 1;
        while (line_len > 0 && (line[line_len - 1] == '\r' || line[line_len - 1] == ' ' ||
                                line[line_len - 1] == '\t'))
            line_len--;
        size_t i = 0;
        while (i < line_len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i >= line_len || line[i] == '#')
            continue;
        size_t keyword = i;
        while (i < line_len && line[i] != ' ' && line[i] != '\t' && line[i] != '=')
            i++;
        size_t keyword_len = i - keyword;
        while (i < line_len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i < line_len && line[i] == '=')
            i++;
        while (i < line_len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        const char *value = line + i, *word = line + keyword;
        size_t value_len = line_len - i;
        if (keyword_len == 4 && strncasecmp(word, "Host", 4) == 0) {
            applies = host_line_applies(value, value_len, host);
        } else if (keyword_len == 5 && strncasecmp(word, "Match", 5) == 0) {
            applies = value_len == 3 && strncasecmp(value, "all", 3) == 0;
        } else if (applies && user_value == NULL && keyword_len == 18 &&
                   strncasecmp(word, "UserKnownHostsFile", 18) == 0) {
            user_value = value;
            user_len = value_len;
        } else if (applies && global_value == NULL && keyword_len == 20 &&
                   strncasecmp(word, "GlobalKnownHostsFile", 20) == 0) {
            global_value = value;
            global_len = value_len;
        }
    }
    *count = 0;
    if (user_value != NULL)
        add_value_files(user_value, user_len, home, user, files, count);
    else
        add_value_files(default_user_files, strlen(default_user_files), home, user, files, count);
    if (global_value != NULL)
        add_value_files(global_value, global_len, home, user, files, count);
    else
        add_value_files(default_global_files, strlen(default_global_files), home, user, files,
                        count);
}
