/*
 * Who may use the relay: user (technicians' and auditors' accounts, each
 * change committed with its audit entry) and roles (the capabilities table,
 * docs/roles.md).
 */
#include "relay/cmd/admin_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/roles.h"
#include "relay/cmd/rows.h"
#include "relay/desk/users.h"
#include "relay/store/audit_chain.h"
#include "relay/store/datadir.h"

#include <stdlib.h>
#include <string.h>

#define PROGRAM TL_ADMIN_PROGRAM

/* ---- user -------------------------------------------------------------------------- */

/* One admin change and its audit entry, committed together (relay/store/audit_chain.h). */
struct admin_change {
    int (*apply)(tl_store_t *store, const struct admin_change *change);
    const char *name, *role, *key_line, *fingerprint;
    const char *action;
    json_t *details;
};

static int stage_admin_change(tl_store_t *store, tl_audit_chain_t *chain, void *arg)
{
    const struct admin_change *change = arg;
    int rc = change->apply(store, change);
    tl_audit_entry_t entry = {"admin", change->action, change->name, change->details, 0};
    if (rc == 0)
        rc = tl_audit_chain_stage(chain, &entry, NULL);
    return rc;
}

/* TL_EAUDIT with a line on stderr when the audit log refuses it. */
static int audit_admin(const char *data, const char *what, const struct admin_change *change)
{
    char path[4096], problem[768] = "";
    tl_store_t *store = NULL;
    int rc = tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path);
    if (rc == 0)
        rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_audit_chain_record(store, path, stage_admin_change, (void *)change, problem,
                                   sizeof problem);
    tl_store_close(store);
    if (rc == TL_EAUDIT)
        fprintf(stderr, PROGRAM " %s: the audit log cannot be written: %s\n", what, problem);
    return rc;
}

static int apply_user_add(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_user_add(store, change->name, change->role, change->key_line,
                             change->fingerprint, tl_wall_ms());
}

static int apply_user_disable(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_user_disable(store, change->name);
}

static int apply_user_remove(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_user_remove(store, change->name);
}

/* The audit entry's details say what it is: {"lead": true} or false. */
static int apply_user_lead(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_user_set_lead(store, change->name,
                                  json_is_true(json_object_get(change->details, "lead")));
}

/* user lead NAME on|off: a lead may assign tickets to others (docs/desk.md). */
static int user_lead(const char *data, const char *name, const char *value)
{
    int lead = value != NULL && strcmp(value, "on") == 0;
    if (value == NULL || (!lead && strcmp(value, "off") != 0)) {
        fprintf(stderr, PROGRAM " user lead: say on or off: user lead NAME on|off\n");
        return TL_EXIT_USAGE;
    }
    json_t *details = json_pack("{s:b}", "lead", lead);
    struct admin_change change = {apply_user_lead, name, NULL, NULL, NULL, "user.lead", details};
    int rc = details != NULL ? audit_admin(data, "user lead", &change) : TL_ENOMEM;
    json_decref(details);
    if (rc == TL_ENOTFOUND || rc == TL_EINVAL) {
        fprintf(stderr, PROGRAM " user lead: no user named '%s'\n", name);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EAUDIT)
        return TL_EXIT_FAILURE;
    if (rc != 0)
        return tl_admin_fail("user lead", rc);
    printf("User %s: %s\n", name, lead ? "a lead" : "not a lead");
    return TL_EXIT_OK;
}

static int user_add(const char *data, const char *name, const char *role, const char *key_file)
{
    if (!tl_store_user_name_valid(name)) {
        fprintf(stderr,
                PROGRAM " user add: '%s' is not a valid name (1-64 of a-z 0-9 . _ -, "
                        "starting with a letter)\n",
                name);
        return TL_EXIT_USAGE;
    }
    if (role == NULL || tl_role_parse(role) < 0) {
        fprintf(stderr, PROGRAM " user add: --role wants tier1, tier2, tier3, tier4, auditor or "
                                "admin\n");
        return TL_EXIT_USAGE;
    }
    if (key_file == NULL) {
        fprintf(stderr, PROGRAM " user add: --key PUBKEY-FILE is required\n");
        return TL_EXIT_USAGE;
    }
    char *key_line = NULL, fingerprint[64];
    int rc = tl_users_read_key_file(key_file, &key_line, fingerprint);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " user add: %s is not an OpenSSH public key file: %s\n", key_file,
                tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    json_t *details = json_pack("{s:s, s:s}", "role", role, "fingerprint", fingerprint);
    struct admin_change change = {apply_user_add, name,       role,   key_line,
                                  fingerprint,    "user.add", details};
    rc = details != NULL ? audit_admin(data, "user add", &change) : TL_ENOMEM;
    json_decref(details);
    free(key_line);
    if (rc == TL_EEXIST) {
        fprintf(stderr, PROGRAM " user add: the name %s or this key is already registered\n", name);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EAUDIT)
        return TL_EXIT_FAILURE;
    if (rc != 0)
        return tl_admin_fail("user add", rc);
    printf("Added %s (%s), key %s\n", name, role, fingerprint);
    return TL_EXIT_OK;
}

static int user_change(const char *data, const char *verb, const char *name)
{
    int disable = strcmp(verb, "disable") == 0;
    struct admin_change change = {
        disable ? apply_user_disable : apply_user_remove, name, NULL, NULL, NULL,
        disable ? "user.disable" : "user.remove",         NULL};
    int rc = audit_admin(data, disable ? "user disable" : "user remove", &change);
    if (rc == TL_ENOTFOUND || rc == TL_EINVAL) {
        fprintf(stderr, PROGRAM " user %s: no user named '%s'\n", verb, name);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EAUDIT)
        return TL_EXIT_FAILURE;
    if (rc != 0)
        return tl_admin_fail("user", rc);
    printf("User %s: %s\n", name, strcmp(verb, "disable") == 0 ? "disabled" : "removed");
    return TL_EXIT_OK;
}

static int user_list(const char *data, int json_out)
{
    tl_store_t *store = NULL;
    json_t *users = NULL;
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_rows_users(store, &users);
    tl_store_close(store);
    if (rc != 0)
        return tl_admin_fail("user list", rc);
    int status = TL_EXIT_OK;
    if (json_out) {
        status = tl__admin_print_json(users);
    } else {
        printf("%-20s %-8s %-9s %-4s %s\n", "NAME", "ROLE", "STATE", "LEAD", "KEY");
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u) {
            printf("%-20s %-8s %-9s %-4s %s\n", json_string_value(json_object_get(u, "name")),
                   json_string_value(json_object_get(u, "role")),
                   json_is_true(json_object_get(u, "disabled")) ? "disabled" : "active",
                   json_is_true(json_object_get(u, "lead")) ? "yes" : "-",
                   json_string_value(json_object_get(u, "fingerprint")));
        }
        if (json_array_size(users) == 0)
            printf("(no users)\n");
    }
    json_decref(users);
    return status;
}

struct user_args {
    const char *data, *role, *key;
    int verb;
    const char *name;
    const char *value; /* user lead NAME on|off */
    int json;
};

static const char *const verbs[] = {"list", "add", "disable", "remove", "lead", NULL};

static int cmd_user(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct user_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *verb = verbs[args.verb], *name = args.name;
    if (strcmp(verb, "lead") == 0 && name != NULL)
        return user_lead(args.data, name, args.value);
    if (args.value != NULL) {
        fprintf(stderr, "usage: " PROGRAM " %s\n", cmd->usage);
        return TL_EXIT_USAGE;
    }
    if (strcmp(verb, "list") == 0 && name == NULL)
        return user_list(args.data, args.json);
    if (strcmp(verb, "add") == 0 && name != NULL)
        return user_add(args.data, name, args.role, args.key);
    if ((strcmp(verb, "disable") == 0 || strcmp(verb, "remove") == 0) && name != NULL)
        return user_change(args.data, verb, name);
    fprintf(stderr, "usage: " PROGRAM " %s\n", cmd->usage);
    return TL_EXIT_USAGE;
}

const tl_admin_command_t tl_admin_user = {
    .name = "user",
    .usage = "user add NAME --role tier1|tier2|tier3|tier4|auditor|admin --key PUBKEY-FILE --data "
             "DIR | user list [--json] --data DIR | user disable NAME --data DIR | user remove "
             "NAME --data DIR | user lead NAME on|off --data DIR",
    .summary = "manage technicians and auditors (SSH public keys)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct user_args, "the relay's folder"),
                    {.name = "role",
                     .metavar = "ROLE",
                     .help = "add: tier1, tier2, tier3, tier4, auditor or admin (docs/roles.md)",
                     .word = TL_CLI_AT(struct user_args, role)},
                    {.name = "key",
                     .metavar = "PUBKEY-FILE",
                     .help = "add: the person's OpenSSH public key (ssh-keygen -t ed25519)",
                     .word = TL_CLI_AT(struct user_args, key)},
                    TL__ADMIN_JSON(struct user_args,
                                   "list: a JSON array of objects: id, name, role, "
                                   "public_key, fingerprint, disabled, created, lead"),
                    {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "add|list|disable|remove|lead",
                                                   .kind = TL_CLI_WORD,
                                                   .words = verbs,
                                                   .out = TL_CLI_AT(struct user_args, verb)},
                                                  {.name = "NAME",
                                                   .flags = TL_CLI_OPTIONAL,
                                                   .word = TL_CLI_AT(struct user_args, name)},
                                                  {.name = "on|off",
                                                   .flags = TL_CLI_OPTIONAL,
                                                   .word = TL_CLI_AT(struct user_args, value)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_user,
    .example = "tierline-relay user add bob --role tier2 --key bob.pub --data /var/lib/tierline\n"
               "tierline-relay user lead bob on --data /var/lib/tierline\n"
               "tierline-relay user list --data /var/lib/tierline\n",
};

/* ---- roles ------------------------------------------------------------------------- */

struct roles_args {
    int markdown, json;
};

static int cmd_roles(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct roles_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    int json_out = args.json;
    if (args.markdown && json_out) {
        fprintf(stderr, PROGRAM " roles: --markdown or --json, not both\nusage: " PROGRAM " %s\n",
                cmd->usage);
        return TL_EXIT_USAGE;
    }
    if (!json_out) {
        tl_roles_write_markdown(stdout);
        return TL_EXIT_OK;
    }
    json_t *table = json_pack("{s:[], s:[]}", "roles", "capabilities");
    json_t *roles = json_object_get(table, "roles");
    json_t *capabilities = json_object_get(table, "capabilities");
    int rc = table != NULL ? 0 : TL_ENOMEM;
    for (int r = 0; rc == 0 && r < TL_ROLE_COUNT; r++)
        rc = json_array_append_new(roles, json_string(tl_role_name(r))) == 0 ? 0 : TL_ENOMEM;
    for (int c = 0; rc == 0 && c < TL_CAP_COUNT; c++) {
        json_t *allowed = json_array();
        for (int r = 0; allowed != NULL && r < TL_ROLE_COUNT; r++)
            if (tl_role_can(r, c))
                json_array_append_new(allowed, json_string(tl_role_name(r)));
        json_t *entry = json_pack("{s:s, s:s, s:o?}", "name", tl_capability_name(c), "summary",
                                  tl_capability_summary(c), "roles", allowed);
        rc = entry != NULL && json_array_append_new(capabilities, entry) == 0 ? 0 : TL_ENOMEM;
    }
    status = rc == 0 ? tl__admin_print_json(table) : tl_admin_fail("roles", rc);
    json_decref(table);
    return status;
}

const tl_admin_command_t tl_admin_roles = {
    .name = "roles",
    .usage = "roles [--markdown] [--json]",
    .summary = "print the capabilities table (docs/roles.md)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    {.name = "markdown",
                     .help = "the table as Markdown (the default)",
                     .out = TL_CLI_AT(struct roles_args, markdown)},
                    TL__ADMIN_JSON(struct roles_args,
                                   "an object: roles, capabilities (each: name, summary, roles)"),
                    {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_roles,
    .example = "tierline-relay roles --json\n",
};
