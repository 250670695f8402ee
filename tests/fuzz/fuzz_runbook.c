/*
 * Fuzz target for runbook metadata and run requests (agent/runbooks.c,
 * docs/consent.md "Runbooks").
 *
 * The input is NAME.json's text, a NUL byte, one byte choosing the
 * technician's role and whether the agent runs as root, then the run's
 * arguments as JSON (what the relay sends). The runbook's name is the one the
 * metadata gives when it gives a string, else "fuzz".
 *
 * Metadata that loads must list as it was declared; a run it accepts must
 * respect the role rules and pass each argument only as a TL_PARAM_NAME=VALUE
 * entry of a declared parameter, with a value that is a string without NUL,
 * at most TL_RUNBOOKS_MAX_VALUE bytes and matching the parameter's pattern
 * as a whole; every required parameter must be there. A refusal says why.
 */
#include "proto/runbooks.h"
#include "proto/roles.h"
#include "proto/err.h"

#include <jansson.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const roles[] = {"tier1", "tier2", "tier3", "tier4", "auditor", "admin", ""};

static const json_t *declared_param(const json_t *params, const char *name)
{
    size_t i;
    json_t *param;
    json_array_foreach(params, i, param) {
        if (strcmp(json_string_value(json_object_get(param, "name")), name) == 0)
            return param;
    }
    return NULL;
}

static int matches_whole(const char *pattern, const char *value)
{
    char wrapped[1100];
    snprintf(wrapped, sizeof wrapped, "^(%s)$", pattern);
    regex_t re;
    if (regcomp(&re, wrapped, REG_EXTENDED | REG_NOSUB) != 0)
        abort(); /* the catalogue compiled it */
    int ok = regexec(&re, value, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void check_run(const tl_runbooks_t *catalogue, const char *name, const uint8_t *data,
                      size_t size)
{
    uint8_t choice = size > 0 ? data[0] : 0;
    const char *role = roles[(choice & 0x7f) % (sizeof roles / sizeof roles[0])];
    bool as_root = (choice & 0x80) != 0;
    json_t *args = NULL;
    if (size > 1)
        args = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    json_t *list = tl_runbooks_list(catalogue);
    json_t *item = json_array_get(list, 0);
    const json_t *params = json_object_get(item, "params");
    if (list == NULL || json_array_size(list) != 1 ||
        strcmp(json_string_value(json_object_get(item, "name")), name) != 0 ||
        !json_is_array(params))
        abort();

    tl_runbook_run_t run;
    char message[256];
    message[0] = '\0';
    int rc = tl_runbooks_check(catalogue, name, args, role, as_root, &run, message, sizeof message);
    if (rc != 0) {
        if ((rc != TL_EINVAL && rc != TL_EDENIED && rc != TL_ENOMEM) || message[0] == '\0')
            abort();
        goto out;
    }
    int rank = tl_role_runbook_rank(tl_role_parse(role));
    const char *min_role = json_string_value(json_object_get(item, "min_role"));
    if (rank == 0 || rank < tl_role_runbook_rank(tl_role_parse(min_role)) ||
        (run.privileged && (rank < 3 || !as_root)) || run.summary == NULL ||
        strncmp(run.summary, name, strlen(name)) != 0)
        abort();
    for (const char *c = run.summary; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
    if (args != NULL && !json_is_object(args))
        abort();
    if (run.env_count != json_object_size(args) || run.env[run.env_count] != NULL)
        abort();
    for (size_t i = 0; i < run.env_count; i++) {
        const char *entry = run.env[i];
        const char *equals = strchr(entry, '=');
        if (strncmp(entry, "TL_PARAM_", 9) != 0 || equals == NULL)
            abort();
        char param_name[64];
        size_t name_len = (size_t)(equals - entry) - 9;
        if (name_len >= sizeof param_name)
            abort();
        memcpy(param_name, entry + 9, name_len);
        param_name[name_len] = '\0';
        const json_t *param = declared_param(params, param_name);
        json_t *given = json_object_get(args, param_name);
        if (param == NULL || !json_is_string(given) ||
            strcmp(json_string_value(given), equals + 1) != 0 ||
            strlen(equals + 1) != json_string_length(given) ||
            json_string_length(given) > TL_RUNBOOKS_MAX_VALUE ||
            !matches_whole(json_string_value(json_object_get(param, "pattern")), equals + 1))
            abort();
    }
    size_t i;
    json_t *param;
    json_array_foreach(params, i, param) {
        if (json_is_true(json_object_get(param, "required")) &&
            json_object_get(args, json_string_value(json_object_get(param, "name"))) == NULL)
            abort();
    }
    tl_runbooks_run_release(&run);
out:
    json_decref(list);
    json_decref(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t meta_len = nul != NULL ? (size_t)(nul - data) : size;
    const uint8_t *rest = nul != NULL ? nul + 1 : data + size;
    size_t rest_len = size - (size_t)(rest - data);

    char name[64] = "fuzz";
    json_t *doc = json_loadb((const char *)data, meta_len, 0, NULL);
    const char *given = json_string_value(json_object_get(doc, "name"));
    if (given != NULL && strlen(given) < sizeof name)
        snprintf(name, sizeof name, "%s", given);
    json_decref(doc);

    int err = 1;
    char reason[512];
    reason[0] = '\0';
    tl_runbooks_t *catalogue =
        tl_runbooks_from_metadata(name, (const char *)data, meta_len, &err, reason, sizeof reason);
    if (catalogue == NULL) {
        if ((err != TL_EINVAL && err != TL_ENOMEM) || (err == TL_EINVAL && reason[0] == '\0'))
            abort();
        return 0;
    }
    if (err != 0 || tl_runbooks_count(catalogue) != 1)
        abort();
    check_run(catalogue, name, rest, rest_len);
    tl_runbooks_free(catalogue);
    return 0;
}
