/*
 * Who may use the relay: user (technicians' and auditors' accounts, each
 * change committed with its audit entry) and roles (the capabilities table,
 * docs/roles.md).
 */
#include "relay/cmd/admin_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/ids.h"
#include "proto/roles.h"
#include "relay/cmd/rows.h"
#include "relay/desk/users.h"
#include "relay/desk/vendor.h"
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
    /* vendor accounts (docs/desk.md "Vendor accounts"): the account's expiry (0: none) and
     * the tickets it is bound to, each until ticket_expires_ms */
    int64_t expires_ms, ticket_expires_ms;
    const int64_t *tickets;
    size_t ticket_count;
    int64_t *failed_ticket; /* the ticket a binding failed on, for the message */
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

/* Binds the account to each of the change's tickets; the first that fails is named. */
static int bind_tickets(tl_store_t *store, const struct admin_change *change)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < change->ticket_count; i++) {
        rc = tl_store_grant_set(store, change->name, change->tickets[i], change->ticket_expires_ms);
        if (rc != 0 && change->failed_ticket != NULL)
            *change->failed_ticket = change->tickets[i];
    }
    return rc;
}

static int apply_user_add(tl_store_t *store, const struct admin_change *change)
{
    int rc = tl_store_user_add(store, change->name, change->role, change->key_line,
                               change->fingerprint, tl_wall_ms());
    if (rc == 0 && change->expires_ms != 0)
        rc = tl_store_user_set_expires(store, change->name, change->expires_ms);
    if (rc == 0)
        rc = bind_tickets(store, change);
    return rc;
}

static int apply_user_disable(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_user_disable(store, change->name);
}

static int apply_user_remove(tl_store_t *store, const struct admin_change *change)
{
    int rc = tl_store_user_remove(store, change->name);
    if (rc == 0)
        rc = tl_store_grants_remove_user(store, change->name);
    return rc;
}

static int apply_user_expires(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_user_set_expires(store, change->name, change->expires_ms);
}

static int apply_user_grant(tl_store_t *store, const struct admin_change *change)
{
    return bind_tickets(store, change);
}

static int apply_user_revoke(tl_store_t *store, const struct admin_change *change)
{
    return tl_store_grant_remove(store, change->name, change->tickets[0]);
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
    struct admin_change change = {
        .apply = apply_user_lead, .name = name, .action = "user.lead", .details = details};
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

/* The words of a `user` command, as parsed. */
struct user_args {
    const char *data, *role, *key, *tickets, *expires;
    int verb;
    const char *name, *ticket;
    int json;
};

/* --expires WHEN: into *ms, or a usage error named for the verb. "never" is 0 when allowed. */
static int read_expires(const char *verb, const char *text, int never_allowed, int64_t *ms)
{
    const char *problem = NULL;
    if (never_allowed && strcmp(text, "never") == 0) {
        *ms = 0;
        return 0;
    }
    if (tl_vendor_when_parse(text, tl_wall_ms(), TL_VENDOR_DAY_END, ms, &problem) == 0)
        return 0;
    fprintf(stderr, PROGRAM " user %s: --expires: ", verb);
    tl_cli_problem_write(stderr, problem, text);
    fputc('\n', stderr);
    return TL_EXIT_USAGE;
}

/* --tickets T-4,T-9: the ticket ids, at most max of them. */
static int read_tickets(const char *text, int64_t *ids, size_t max, size_t *count)
{
    char word[TL_ID_TEXT];
    *count = 0;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof word || *count == max)
            return TL_EINVAL;
        memcpy(word, p, len);
        word[len] = '\0';
        if (tl_id_parse(word, TL_ID_TICKET, &ids[*count]) != 0)
            return TL_EINVAL;
        for (size_t i = 0; i < *count; i++)
            if (ids[i] == ids[*count])
                return TL_EINVAL;
        (*count)++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

/* The account name's row (a copy the caller clears with tl_user_rows_free), or TL_ENOTFOUND. */
static int find_user(const char *data, const char *name, tl_user_rows_t *list, size_t *index)
{
    tl_store_t *store = NULL;
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_store_users_read(store, list);
    tl_store_close(store);
    for (size_t i = 0; rc == 0 && i < list->count; i++) {
        if (strcmp(list->rows[i].name, name) == 0) {
            *index = i;
            return 0;
        }
    }
    return rc == 0 ? TL_ENOTFOUND : rc;
}

#define USER_MAX_TICKETS 64

static json_t *ticket_list(const int64_t *ids, size_t count)
{
    json_t *list = json_array();
    char text[TL_ID_TEXT];
    for (size_t i = 0; list != NULL && i < count; i++)
        json_array_append_new(list, json_string(tl_id_format(text, TL_ID_TICKET, ids[i])));
    return list;
}

static int user_add(const struct user_args *args)
{
    const char *name = args->name, *role = args->role;
    int64_t tickets[USER_MAX_TICKETS], expires = 0, failed = 0;
    size_t ticket_count = 0;
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
    if (args->key == NULL) {
        fprintf(stderr, PROGRAM " user add: --key PUBKEY-FILE is required\n");
        return TL_EXIT_USAGE;
    }
    int bound = tl_role_ticket_bound(tl_role_parse(role));
    if (bound && args->expires == NULL) {
        fprintf(stderr,
                PROGRAM " user add: a %s account needs --expires WHEN (a vendor's access "
                        "ends)\n",
                role);
        return TL_EXIT_USAGE;
    }
    if (!bound && args->tickets != NULL) {
        fprintf(stderr,
                PROGRAM " user add: --tickets is for tier4 accounts only (a %s sees every "
                        "ticket)\n",
                role);
        return TL_EXIT_USAGE;
    }
    if (args->tickets != NULL &&
        read_tickets(args->tickets, tickets, USER_MAX_TICKETS, &ticket_count) != 0) {
        fprintf(stderr,
                PROGRAM " user add: --tickets wants ticket ids separated by commas, each once, at "
                        "most %d: T-4,T-9\n",
                USER_MAX_TICKETS);
        return TL_EXIT_USAGE;
    }
    if (args->expires != NULL && read_expires("add", args->expires, 0, &expires) != 0)
        return TL_EXIT_USAGE;
    char *key_line = NULL, fingerprint[64];
    int rc = tl_users_read_key_file(args->key, &key_line, fingerprint);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " user add: %s is not an OpenSSH public key file: %s\n", args->key,
                tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    json_t *details = json_pack("{s:s, s:s}", "role", role, "fingerprint", fingerprint);
    if (details != NULL && expires != 0)
        json_object_set_new(details, "expires", json_integer(expires));
    if (details != NULL && bound)
        json_object_set_new(details, "tickets", ticket_list(tickets, ticket_count));
    struct admin_change change = {.apply = apply_user_add,
                                  .name = name,
                                  .role = role,
                                  .key_line = key_line,
                                  .fingerprint = fingerprint,
                                  .action = "user.add",
                                  .details = details,
                                  .expires_ms = expires,
                                  .ticket_expires_ms = expires,
                                  .tickets = tickets,
                                  .ticket_count = ticket_count,
                                  .failed_ticket = &failed};
    rc = details != NULL ? audit_admin(args->data, "user add", &change) : TL_ENOMEM;
    json_decref(details);
    free(key_line);
    char text[TL_ID_TEXT];
    if (rc == TL_EEXIST) {
        fprintf(stderr, PROGRAM " user add: the name %s or this key is already registered\n", name);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " user add: no ticket %s; nothing was added\n",
                tl_id_format(text, TL_ID_TICKET, failed));
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EAUDIT)
        return TL_EXIT_FAILURE;
    if (rc != 0)
        return tl_admin_fail("user add", rc);
    printf("Added %s (%s), key %s\n", name, role, fingerprint);
    if (expires != 0) {
        char when[TL_UTC_TEXT];
        tl_format_utc(expires, when);
        printf("  expires %s%s", when, ticket_count > 0 ? "; tickets" : "\n");
        for (size_t i = 0; i < ticket_count; i++)
            printf("%s%s", i > 0 ? "," : " ", tl_id_format(text, TL_ID_TICKET, tickets[i]));
        if (ticket_count > 0)
            printf("\n");
    }
    return TL_EXIT_OK;
}

static int user_change(const char *data, const char *verb, const char *name)
{
    int disable = strcmp(verb, "disable") == 0;
    struct admin_change change = {.apply = disable ? apply_user_disable : apply_user_remove,
                                  .name = name,
                                  .action = disable ? "user.disable" : "user.remove"};
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

/* user grant NAME T-N [--expires WHEN], user revoke NAME T-N: a vendor account's tickets. */
static int user_binding(const struct user_args *args, int grant)
{
    const char *verb = grant ? "grant" : "revoke";
    int64_t ticket = 0, expires = 0, failed = 0;
    tl_user_rows_t users = {0};
    size_t index = 0;
    char text[TL_ID_TEXT], when[TL_UTC_TEXT];
    int status = TL_EXIT_FAILURE;
    if (tl_id_parse(args->ticket, TL_ID_TICKET, &ticket) != 0) {
        fprintf(stderr, PROGRAM " user %s: '%s' is not a ticket id (T-N)\n", verb, args->ticket);
        return TL_EXIT_USAGE;
    }
    if (!grant && args->expires != NULL) {
        fprintf(stderr, PROGRAM " user revoke: --expires is for grant\n");
        return TL_EXIT_USAGE;
    }
    if (args->expires != NULL && read_expires(verb, args->expires, 0, &expires) != 0)
        return TL_EXIT_USAGE;
    int rc = find_user(args->data, args->name, &users, &index);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " user %s: no user named '%s'\n", verb, args->name);
        goto out;
    }
    if (rc != 0) {
        status = tl_admin_fail("user", rc);
        goto out;
    }
    const tl_user_row_t *user = &users.rows[index];
    if (grant && !tl_role_ticket_bound(tl_role_parse(user->role))) {
        fprintf(stderr,
                PROGRAM " user grant: %s is %s; tickets are bound to tier4 accounts only (others "
                        "see every ticket)\n",
                user->name, user->role);
        goto out;
    }
    /* A binding lasts as long as the account, unless it is to end sooner. */
    if (grant && expires == 0)
        expires = user->expires;
    if (grant && expires == 0) {
        fprintf(stderr, PROGRAM " user grant: %s has no expiry; give --expires WHEN\n", user->name);
        goto out;
    }
    if (grant && user->expires != 0 && expires > user->expires) {
        tl_format_utc(user->expires, when);
        fprintf(stderr,
                PROGRAM " user grant: the binding would outlast the account, which expires %s "
                        "(user expires %s --expires WHEN first)\n",
                when, user->name);
        goto out;
    }
    json_t *details = json_pack("{s:s}", "ticket", tl_id_format(text, TL_ID_TICKET, ticket));
    if (details != NULL && grant)
        json_object_set_new(details, "expires", json_integer(expires));
    struct admin_change change = {.apply = grant ? apply_user_grant : apply_user_revoke,
                                  .name = user->name,
                                  .action = grant ? "user.grant" : "user.revoke",
                                  .details = details,
                                  .ticket_expires_ms = expires,
                                  .tickets = &ticket,
                                  .ticket_count = 1,
                                  .failed_ticket = &failed};
    rc = details != NULL ? audit_admin(args->data, grant ? "user grant" : "user revoke", &change)
                         : TL_ENOMEM;
    json_decref(details);
    if (rc == TL_ENOTFOUND && grant)
        fprintf(stderr, PROGRAM " user grant: no ticket %s\n", text);
    else if (rc == TL_ENOTFOUND)
        fprintf(stderr, PROGRAM " user revoke: %s is not bound to %s\n", user->name, text);
    else if (rc == TL_EAUDIT)
        status = TL_EXIT_FAILURE;
    else if (rc != 0)
        status = tl_admin_fail("user", rc);
    else {
        tl_format_utc(expires, when);
        if (grant)
            printf("%s may see %s until %s\n", user->name, text, when);
        else
            printf("%s may no longer see %s\n", user->name, text);
        status = TL_EXIT_OK;
    }
out:
    tl_user_rows_free(&users);
    return status;
}

/* user expires NAME --expires WHEN|never: when an account stops working. */
static int user_expires(const struct user_args *args)
{
    int64_t expires = 0;
    if (args->expires == NULL) {
        fprintf(stderr, PROGRAM " user expires: --expires WHEN (or never) is required\n");
        return TL_EXIT_USAGE;
    }
    if (read_expires("expires", args->expires, 1, &expires) != 0)
        return TL_EXIT_USAGE;
    json_t *details =
        json_pack("{s:o}", "expires", expires != 0 ? json_integer(expires) : json_null());
    struct admin_change change = {.apply = apply_user_expires,
                                  .name = args->name,
                                  .action = "user.expires",
                                  .details = details,
                                  .expires_ms = expires};
    int rc = details != NULL ? audit_admin(args->data, "user expires", &change) : TL_ENOMEM;
    json_decref(details);
    if (rc == TL_ENOTFOUND || rc == TL_EINVAL) {
        fprintf(stderr, PROGRAM " user expires: no user named '%s'\n", args->name);
        return TL_EXIT_FAILURE;
    }
    if (rc == TL_EAUDIT)
        return TL_EXIT_FAILURE;
    if (rc != 0)
        return tl_admin_fail("user", rc);
    char when[TL_UTC_TEXT] = "never";
    if (expires != 0)
        tl_format_utc(expires, when);
    printf("User %s expires: %s\n", args->name, when);
    return TL_EXIT_OK;
}

/* Each user's bound tickets, as "tickets": [{ticket, expires}] (empty for other roles). */
static int add_bindings(tl_store_t *store, json_t *users)
{
    tl_ticket_grant_rows_t grants;
    int rc = tl_store_grants_read(store, NULL, &grants);
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) {
        json_t *list = json_array();
        for (size_t g = 0; rc == 0 && list != NULL && g < grants.count; g++) {
            char text[TL_ID_TEXT];
            if (strcmp(grants.rows[g].user, json_string_value(json_object_get(u, "name"))) != 0)
                continue;
            json_array_append_new(
                list, json_pack("{s:s, s:I}", "ticket",
                                tl_id_format(text, TL_ID_TICKET, grants.rows[g].ticket_id),
                                "expires", (json_int_t)grants.rows[g].expires));
        }
        if (list == NULL || json_object_set_new(u, "tickets", list) != 0)
            rc = TL_ENOMEM;
    }
    if (rc == 0)
        tl_ticket_grant_rows_free(&grants);
    return rc;
}

static int user_list(const char *data, int json_out)
{
    tl_store_t *store = NULL;
    json_t *users = NULL;
    int rc = tl__admin_open_store(data, &store);
    if (rc == 0)
        rc = tl_rows_users(store, &users);
    if (rc == 0)
        rc = add_bindings(store, users);
    tl_store_close(store);
    if (rc != 0) {
        json_decref(users);
        return tl_admin_fail("user list", rc);
    }
    int status = TL_EXIT_OK;
    if (json_out) {
        status = tl__admin_print_json(users);
    } else {
        printf("%-20s %-8s %-9s %-4s %-51s %-20s %s\n", "NAME", "ROLE", "STATE", "LEAD", "KEY",
               "EXPIRES", "TICKETS");
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u) {
            char when[TL_UTC_TEXT] = "-";
            json_t *expires = json_object_get(u, "expires");
            int64_t now = tl_wall_ms();
            if (json_is_integer(expires))
                tl_format_utc(json_integer_value(expires), when);
            printf("%-20s %-8s %-9s %-4s %-51s %-20s",
                   json_string_value(json_object_get(u, "name")),
                   json_string_value(json_object_get(u, "role")),
                   json_is_true(json_object_get(u, "disabled"))                     ? "disabled"
                   : json_is_integer(expires) && json_integer_value(expires) <= now ? "expired"
                                                                                    : "active",
                   json_is_true(json_object_get(u, "lead")) ? "yes" : "-",
                   json_string_value(json_object_get(u, "fingerprint")), when);
            size_t t;
            json_t *binding;
            int shown = 0;
            json_array_foreach(json_object_get(u, "tickets"), t, binding) {
                int live = json_integer_value(json_object_get(binding, "expires")) > now;
                printf("%s%s%s", shown++ ? "," : " ",
                       json_string_value(json_object_get(binding, "ticket")),
                       live ? "" : "(expired)");
            }
            printf("%s\n", shown ? "" : " -");
        }
        if (json_array_size(users) == 0)
            printf("(no users)\n");
    }
    json_decref(users);
    return status;
}

static const char *const verbs[] = {"list",   "add",     "disable", "remove", "grant",
                                    "revoke", "expires", "lead",    NULL};

static int cmd_user(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct user_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *verb = verbs[args.verb], *name = args.name;
    int with_ticket = strcmp(verb, "grant") == 0 || strcmp(verb, "revoke") == 0;
    /* user lead NAME on|off: the third word is on or off */
    if (strcmp(verb, "lead") == 0 && name != NULL)
        return user_lead(args.data, name, args.ticket);
    if (args.ticket != NULL && !with_ticket) {
        fprintf(stderr, "usage: " PROGRAM " %s\n", cmd->usage);
        return TL_EXIT_USAGE;
    }
    if (strcmp(verb, "list") == 0 && name == NULL)
        return user_list(args.data, args.json);
    if (strcmp(verb, "add") == 0 && name != NULL)
        return user_add(&args);
    if ((strcmp(verb, "disable") == 0 || strcmp(verb, "remove") == 0) && name != NULL)
        return user_change(args.data, verb, name);
    if (with_ticket && name != NULL && args.ticket != NULL)
        return user_binding(&args, strcmp(verb, "grant") == 0);
    if (strcmp(verb, "expires") == 0 && name != NULL)
        return user_expires(&args);
    fprintf(stderr, "usage: " PROGRAM " %s\n", cmd->usage);
    return TL_EXIT_USAGE;
}

const tl_admin_command_t tl_admin_user = {
    .name = "user",
    .usage =
        "user add NAME --role tier1|tier2|tier3|tier4|auditor|admin --key PUBKEY-FILE "
        "[--expires WHEN] [--tickets T-N,...] [--data DIR] | user list [--json] [--data DIR] | "
        "user disable NAME [--data DIR] | user remove NAME [--data DIR] | user grant NAME T-N "
        "[--expires WHEN] [--data DIR] | user revoke NAME T-N [--data DIR] | user expires NAME "
        "--expires WHEN|never [--data DIR] | user lead NAME on|off [--data DIR]",
    .summary = "manage technicians, auditors and vendor accounts (SSH public keys)",
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
                    {.name = "expires",
                     .metavar = "WHEN",
                     .help = "add, expires: when the account stops working (required for tier4); "
                             "grant: when the binding ends (default: with the account). A date "
                             "YYYY-MM-DD (through its end, UTC), a time YYYY-MM-DDTHH:MMZ, or a "
                             "duration from now: 30d, 12h; expires also takes never",
                     .word = TL_CLI_AT(struct user_args, expires)},
                    {.name = "tickets",
                     .metavar = "T-N,...",
                     .help = "add: the tickets a tier4 account may see, until it expires",
                     .word = TL_CLI_AT(struct user_args, tickets)},
                    TL__ADMIN_JSON(struct user_args,
                                   "list: a JSON array of objects: id, name, role, "
                                   "public_key, fingerprint, disabled, created, lead, expires "
                                   "(null if never), tickets (each: ticket, expires)"),
                    {0}},
            .positionals =
                (const tl_cli_arg_t[]){{.name = "add|list|disable|remove|grant|revoke|expires|lead",
                                        .kind = TL_CLI_WORD,
                                        .words = verbs,
                                        .out = TL_CLI_AT(struct user_args, verb)},
                                       {.name = "NAME",
                                        .flags = TL_CLI_OPTIONAL,
                                        .word = TL_CLI_AT(struct user_args, name)},
                                       {.name = "T-N|on|off",
                                        .flags = TL_CLI_OPTIONAL,
                                        .word = TL_CLI_AT(struct user_args, ticket)},
                                       {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_user,
    .example = "tierline-relay user add bob --role tier2 --key bob.pub --data /var/lib/tierline\n"
               "tierline-relay user add acme --role tier4 --key acme.pub --tickets T-4,T-9 "
               "--expires 2026-12-31 --data /var/lib/tierline\n"
               "tierline-relay user grant acme T-12 --data /var/lib/tierline\n"
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
