/*
 * tierline-relay: the command table and its dispatcher.
 *
 * Each command is one entry { name, usage, summary, run }; --help is built
 * from the same table. Admin views read the store directly (SQLite allows
 * them while `serve` runs).
 */
#include "proto/clock.h"
#include "proto/addr.h"
#include "proto/cli.h"
#include "proto/enrollment.h"
#include "proto/keys.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/audit.h"
#include "relay/audit_chain.h"
#include "relay/datadir.h"
#include "relay/integrity.h"
#include "relay/roles.h"
#include "relay/users.h"
#include "relay/server.h"
#include "relay/status.h"
#include "relay/store.h"
#include "tl_version.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROGRAM "tierline-relay"

struct command {
    const char *name;
    const char *usage;
    const char *summary;
    int (*run)(const struct command *cmd, int argc, char **argv);
};

static int fail(const char *what, int rc)
{
    fprintf(stderr, PROGRAM ": %s: %s\n", what, tl_strerror(rc));
    return TL_EXIT_FAILURE;
}

static int need_data(const struct command *cmd, const char *data)
{
    if (data != NULL)
        return 0;
    fprintf(stderr, PROGRAM " %s: --data DIR is required\nusage: " PROGRAM " %s\n", cmd->name,
            cmd->usage);
    return TL_EXIT_USAGE;
}

static int open_store(const char *data, tl_store_t **store)
{
    char path[4096];
    int rc = tl_datadir_path(data, TL_DATADIR_DB, path, sizeof path);
    if (rc == 0)
        rc = tl_store_open(path, TL_STORE_OPEN_EXISTING, store);
    return rc;
}

static int print_json(json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return TL_EXIT_FAILURE;
    printf("%s\n", text);
    free(text);
    return TL_EXIT_OK;
}

/* ---- init ------------------------------------------------------------------ */

static int cmd_init(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *listen = TL_RELAY_DEFAULT_LISTEN, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {"listen", &listen, NULL}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    struct sockaddr_storage address;
    if (tl_addr_parse(listen, &address) != 0) {
        fprintf(stderr, PROGRAM " init: bad --listen '%s' (want ADDR:PORT)\n", listen);
        return TL_EXIT_USAGE;
    }
    char fingerprint[TL_FINGERPRINT_LEN];
    int rc = tl_datadir_init(data, listen, fingerprint);
    if (rc == TL_EEXIST) {
        fprintf(stderr,
                PROGRAM " init: %s already holds a relay (or other files); refusing to "
                        "overwrite it\n",
                data);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return fail("init", rc);
    printf("Relay initialised in %s\n", data);
    printf("  key fingerprint: %s\n", fingerprint);
    printf("  agent listener:  %s\n", listen);
    printf("Next: " PROGRAM " serve --data %s\n", data);
    return TL_EXIT_OK;
}

/* ---- serve ------------------------------------------------------------------- */

static int cmd_serve(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *listen = NULL, *heartbeat = NULL, *handshake = NULL, *level = NULL,
               *ssh_listen = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"data", &data, NULL},
                                 {"listen", &listen, NULL},
                                 {"heartbeat-ms", &heartbeat, NULL},
                                 {"handshake-timeout-ms", &handshake, NULL},
                                 {"log-level", &level, NULL},
                                 {"ssh-listen", &ssh_listen, NULL},
                                 {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    tl_relay_config_t config = {.data_dir = data, .listen = listen, .ssh_listen = ssh_listen};
    uint64_t value;
    if (heartbeat != NULL) {
        if (tl_cli_parse_uint(heartbeat, 50, 3600000, &value) != 0) {
            fprintf(stderr, PROGRAM " serve: --heartbeat-ms wants 50..3600000\n");
            return TL_EXIT_USAGE;
        }
        config.heartbeat_ms = (uint32_t)value;
    }
    if (handshake != NULL) {
        if (tl_cli_parse_uint(handshake, 50, 600000, &value) != 0) {
            fprintf(stderr, PROGRAM " serve: --handshake-timeout-ms wants 50..600000\n");
            return TL_EXIT_USAGE;
        }
        config.handshake_timeout_ms = (uint32_t)value;
    }
    enum tl_log_level log_level;
    if (level != NULL) {
        if (tl_log_parse_level(level, &log_level) != 0) {
            fprintf(stderr, PROGRAM " serve: --log-level wants debug, info, warn or error\n");
            return TL_EXIT_USAGE;
        }
        tl_log_set_level(log_level);
    }
    int rc = tl_relay_serve(&config);
    return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

/* ---- enroll-code ------------------------------------------------------------- */

#define TL_ENROLL_CODES_MAX 10000

static int cmd_enroll_code(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *ttl = "15m", *note = "", *address = NULL, *count_text = "1",
               *positional[1];
    int count;
    tl_cli_option_t options[] = {{"data", &data, NULL},        {"ttl", &ttl, NULL},
                                 {"note", &note, NULL},        {"address", &address, NULL},
                                 {"count", &count_text, NULL}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    uint64_t ttl_ms, codes;
    if (tl_cli_parse_duration(ttl, &ttl_ms) != 0 || ttl_ms > 30ull * 86400 * 1000) {
        fprintf(stderr, PROGRAM " enroll-code: bad --ttl '%s' (like 90s, 15m, 2h; at most 30d)\n",
                ttl);
        return TL_EXIT_USAGE;
    }
    if (tl_cli_parse_uint(count_text, 1, TL_ENROLL_CODES_MAX, &codes) != 0) {
        fprintf(stderr, PROGRAM " enroll-code: bad --count '%s' (1 to %d codes)\n", count_text,
                TL_ENROLL_CODES_MAX);
        return TL_EXIT_USAGE;
    }
    if (strlen(note) > TL_STORE_MAX_NOTE) {
        fprintf(stderr, PROGRAM " enroll-code: --note is longer than %d bytes\n",
                TL_STORE_MAX_NOTE);
        return TL_EXIT_USAGE;
    }
    char listen[128];
    int rc = address ? 0 : tl_datadir_listen(data, listen, sizeof listen);
    if (rc != 0)
        return fail("reading the relay settings", rc);
    tl_enrollment_t enrollment = {0};
    if (tl_addr_split(address ? address : listen, enrollment.host, &enrollment.port) != 0 ||
        enrollment.port == 0) {
        fprintf(stderr, PROGRAM " enroll-code: bad --address (want HOST:PORT)\n");
        return TL_EXIT_USAGE;
    }
    if (strcmp(enrollment.host, "0.0.0.0") == 0 || strcmp(enrollment.host, "::") == 0) {
        fprintf(stderr, PROGRAM " enroll-code: the relay listens on all addresses; give the one "
                                "agents reach with --address HOST:PORT\n");
        return TL_EXIT_USAGE;
    }
    if ((rc = tl_datadir_fingerprint(data, enrollment.fingerprint)) != 0)
        return fail("reading the relay key", rc);

    /* All codes in one transaction, each with its audit entry: all or none. No code is shown
     * unless its entry is in the audit log (relay/audit_chain.h). */
    char(*made)[TL_ENROLL_CODE_LEN] = calloc(codes, sizeof *made);
    tl_store_t *store = NULL;
    tl_audit_chain_t *chain = NULL;
    char path[4096], problem[768] = "";
    int64_t now = tl_wall_ms();
    int in_transaction = 0;
    if (made == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    if ((rc = tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path)) != 0 ||
        (rc = open_store(data, &store)) != 0 ||
        (rc = tl_audit_chain_open(store, path, 0, &chain, problem, sizeof problem)) != 0 ||
        (rc = tl_store_begin(store)) != 0)
        goto out;
    in_transaction = 1;
    for (size_t done = 0; done < codes; done++) {
        char hash[TL_SHA256_HEX_LEN];
        int64_t code_id = 0;
        if ((rc = tl_enroll_code_generate(made[done])) != 0 ||
            (rc = tl_enroll_code_hash(made[done], hash)) != 0 ||
            (rc = tl_store_code_add(store, hash, now, now + (int64_t)ttl_ms, note, &code_id)) != 0)
            goto out;
        /* The code itself never reaches the audit log: only its id and expiry. */
        json_t *details = json_pack("{s:I, s:I, s:s}", "code_id", (json_int_t)code_id, "expires",
                                    (json_int_t)(now + (int64_t)ttl_ms), "note", note);
        tl_audit_entry_t entry = {.actor = "admin", .action = "enroll.code", .details = details};
        rc = details != NULL ? tl_audit_chain_stage(chain, &entry, NULL) : TL_ENOMEM;
        json_decref(details);
        if (rc != 0)
            goto out;
    }
    if ((rc = tl_store_commit(store)) != 0)
        goto out;
    in_transaction = 0;
    if ((rc = tl_audit_chain_flush(chain)) != 0)
        snprintf(problem, sizeof problem, "%s", tl_audit_chain_problem(chain));
out:
    if (in_transaction)
        tl_store_rollback(store);
    tl_audit_chain_close(chain);
    tl_store_close(store);
    if (rc == 0) {
        for (size_t i = 0; i < codes && rc == 0; i++) {
            char text[TL_ENROLLMENT_MAX];
            memcpy(enrollment.code, made[i], sizeof enrollment.code);
            if ((rc = tl_enrollment_format(&enrollment, text, sizeof text)) != 0)
                break;
            printf("%s\n", text);
            if (codes == 1)
                fprintf(stderr,
                        "Single use; expires in %s. On the user's machine: tierline-agent enroll "
                        "'%s'\n",
                        ttl, text);
        }
    }
    free(made);
    if (rc != 0 && problem[0] != '\0') {
        fprintf(stderr, PROGRAM " enroll-code: %s\nNo enrollment code was issued.\n", problem);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return fail("enroll-code", rc);
    if (codes > 1)
        fprintf(stderr, "%llu codes, one per line, each single use; they expire in %s.\n",
                (unsigned long long)codes, ttl);
    return TL_EXIT_OK;
}

/* ---- devices, tickets ------------------------------------------------------------ */

static int cmd_devices(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[1];
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {"json", NULL, &json_out}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    tl_store_t *store = NULL;
    json_t *devices = NULL;
    int rc = open_store(data, &store);
    if (rc == 0)
        rc = tl_store_devices_list(store, &devices);
    tl_store_close(store);
    if (rc != 0)
        return fail("devices", rc);
    if (json_out) {
        status = print_json(devices);
    } else {
        printf("%-6s %-7s %-20s %-28s %-20s %s\n", "ID", "ONLINE", "HOSTNAME", "OS", "LAST SEEN",
               "FINGERPRINT");
        size_t i;
        json_t *d;
        json_array_foreach(devices, i, d)
        {
            char seen[32];
            tl_format_utc(json_integer_value(json_object_get(d, "last_seen")), seen);
            printf("%-6s %-7s %-20.20s %-28.28s %-20s %s\n",
                   json_string_value(json_object_get(d, "id")),
                   json_is_true(json_object_get(d, "online")) ? "yes" : "no",
                   json_string_value(json_object_get(d, "hostname")),
                   json_string_value(json_object_get(d, "os")), seen,
                   json_string_value(json_object_get(d, "fingerprint")));
        }
        if (json_array_size(devices) == 0)
            printf("(no devices enrolled)\n");
    }
    json_decref(devices);
    return status;
}

static int cmd_tickets(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[1];
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {"json", NULL, &json_out}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    tl_store_t *store = NULL;
    json_t *tickets = NULL;
    int rc = open_store(data, &store);
    if (rc == 0)
        rc = tl_store_tickets_list(store, &tickets);
    tl_store_close(store);
    if (rc != 0)
        return fail("tickets", rc);
    if (json_out) {
        status = print_json(tickets);
    } else {
        printf("%-7s %-4s %-13s %-6s %-16s %-20s %s\n", "ID", "TIER", "STATUS", "DEVICE",
               "HOSTNAME", "UPDATED", "TITLE");
        size_t i;
        json_t *t;
        json_array_foreach(tickets, i, t)
        {
            char updated[32];
            tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
            printf("%-7s %-4" JSON_INTEGER_FORMAT " %-13s %-6s %-16.16s %-20s %s\n",
                   json_string_value(json_object_get(t, "id")),
                   json_integer_value(json_object_get(t, "tier")),
                   json_string_value(json_object_get(t, "status")),
                   json_string_value(json_object_get(t, "device")),
                   json_string_value(json_object_get(t, "hostname")), updated,
                   json_string_value(json_object_get(t, "title")));
        }
        if (json_array_size(tickets) == 0)
            printf("(no tickets)\n");
    }
    json_decref(tickets);
    return status;
}

static void print_ticket(json_t *t)
{
    char created[32], updated[32];
    tl_format_utc(json_integer_value(json_object_get(t, "created")), created);
    tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
    json_t *assignee = json_object_get(t, "assignee");
    printf("%s  %s\n", json_string_value(json_object_get(t, "id")),
           json_string_value(json_object_get(t, "title")));
    printf("  device:   %s (%s)\n", json_string_value(json_object_get(t, "device")),
           json_string_value(json_object_get(t, "hostname")));
    printf("  tier:     %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(t, "tier")));
    printf("  status:   %s\n", json_string_value(json_object_get(t, "status")));
    printf("  assignee: %s\n", json_is_string(assignee) ? json_string_value(assignee) : "-");
    printf("  created:  %s\n  updated:  %s\n", created, updated);
    const char *description = json_string_value(json_object_get(t, "description"));
    if (description != NULL && description[0] != '\0')
        printf("\n  %s\n", description);
    printf("\nEvidence:\n");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(t, "evidence"), i, item)
    {
        printf("  %-12s %-24s %10" JSON_INTEGER_FORMAT " bytes  sha256:%s\n",
               json_string_value(json_object_get(item, "kind")),
               json_string_value(json_object_get(item, "name")),
               json_integer_value(json_object_get(item, "size")),
               json_string_value(json_object_get(item, "hash")));
    }
    printf("\nTimeline:\n");
    json_array_foreach(json_object_get(t, "events"), i, item)
    {
        char when[32];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        char *details = json_dumps(json_object_get(item, "details"), JSON_COMPACT);
        printf("  %s  %-16s %-18s %s\n", when, json_string_value(json_object_get(item, "actor")),
               json_string_value(json_object_get(item, "kind")), details ? details : "");
        free(details);
    }
}

static int cmd_ticket(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[2];
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {"json", NULL, &json_out}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 2, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    int64_t id;
    if (count != 2 || strcmp(positional[0], "show") != 0 ||
        tl_store_parse_id(positional[1], 'T', &id) != 0) {
        fprintf(stderr, PROGRAM " ticket: want 'show T-N'\nusage: " PROGRAM " %s\n", cmd->usage);
        return TL_EXIT_USAGE;
    }
    tl_store_t *store = NULL;
    json_t *ticket = NULL;
    int rc = open_store(data, &store);
    if (rc == 0)
        rc = tl_store_ticket_get(store, id, &ticket);
    tl_store_close(store);
    if (rc == TL_ENOTFOUND) {
        fprintf(stderr, PROGRAM " ticket: no ticket %s\n", positional[1]);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return fail("ticket", rc);
    if (json_out)
        status = print_json(ticket);
    else
        print_ticket(ticket);
    json_decref(ticket);
    return status;
}

/* ---- audit-verify ----------------------------------------------------------------- */

static int cmd_audit_verify(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    char path[4096];
    if (tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path) != 0)
        return fail("audit-verify", TL_EINVAL);
    tl_audit_report_t report;
    int rc = tl_audit_verify(path, &report);
    tl_audit_report_print(&report, rc, rc == 0 ? stdout : stderr);
    return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

/* ---- users and roles ---------------------------------------------------------------- */

/* One admin change and its audit entry, committed together (relay/audit_chain.h). */
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
        rc = open_store(data, &store);
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
        return fail("user add", rc);
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
        return fail("user", rc);
    printf("User %s: %s\n", name, strcmp(verb, "disable") == 0 ? "disabled" : "removed");
    return TL_EXIT_OK;
}

static int user_list(const char *data, int json_out)
{
    tl_store_t *store = NULL;
    json_t *users = NULL;
    int rc = open_store(data, &store);
    if (rc == 0)
        rc = tl_store_users_list(store, &users);
    tl_store_close(store);
    if (rc != 0)
        return fail("user list", rc);
    int status = TL_EXIT_OK;
    if (json_out) {
        status = print_json(users);
    } else {
        printf("%-20s %-8s %-9s %s\n", "NAME", "ROLE", "STATE", "KEY");
        size_t i;
        json_t *u;
        json_array_foreach(users, i, u)
        {
            printf("%-20s %-8s %-9s %s\n", json_string_value(json_object_get(u, "name")),
                   json_string_value(json_object_get(u, "role")),
                   json_is_true(json_object_get(u, "disabled")) ? "disabled" : "active",
                   json_string_value(json_object_get(u, "fingerprint")));
        }
        if (json_array_size(users) == 0)
            printf("(no users)\n");
    }
    json_decref(users);
    return status;
}

static int cmd_user(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *role = NULL, *key = NULL, *positional[2];
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL},
                                 {"role", &role, NULL},
                                 {"key", &key, NULL},
                                 {"json", NULL, &json_out},
                                 {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 2, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    const char *verb = count > 0 ? positional[0] : "";
    if (strcmp(verb, "list") == 0 && count == 1)
        return user_list(data, json_out);
    if (strcmp(verb, "add") == 0 && count == 2)
        return user_add(data, positional[1], role, key);
    if ((strcmp(verb, "disable") == 0 || strcmp(verb, "remove") == 0) && count == 2)
        return user_change(data, verb, positional[1]);
    fprintf(stderr, "usage: " PROGRAM " %s\n", cmd->usage);
    return TL_EXIT_USAGE;
}

static int cmd_roles(const struct command *cmd, int argc, char **argv)
{
    const char *positional[1];
    int markdown = 0, count;
    tl_cli_option_t options[] = {{"markdown", NULL, &markdown}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0)
        return status;
    tl_roles_write_markdown(stdout);
    return TL_EXIT_OK;
}

static int cmd_host_key(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *known_hosts = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {"known-hosts", &known_hosts, NULL}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    char path[4096], host[TL_ADDR_HOST_MAX + 1];
    uint16_t port = 0;
    EVP_PKEY *key = NULL;
    char *line = NULL;
    int rc = 0;
    if (known_hosts != NULL && tl_addr_split(known_hosts, host, &port) != 0) {
        fprintf(stderr,
                PROGRAM " %s: --known-hosts wants HOST:PORT, got '%s'\nusage: " PROGRAM " %s\n",
                cmd->name, known_hosts, cmd->usage);
        return TL_EXIT_USAGE;
    }
    if ((rc = tl_datadir_path(data, TL_DATADIR_KEY, path, sizeof path)) == 0 &&
        (rc = tl_key_load(path, &key)) == 0)
        rc = tl_key_ssh_public(key, "tierline-relay", &line);
    EVP_PKEY_free(key);
    if (rc != 0)
        return fail("host-key", rc);
    if (known_hosts == NULL)
        printf("%s\n", line);
    else if (port == 22)
        printf("%s %s\n", host, line);
    else
        printf("[%s]:%u %s\n", host, (unsigned)port, line);
    free(line);
    return TL_EXIT_OK;
}

/* ---- status, audit-recover, evidence verify (relay/status.h, relay/integrity.h) -------- */

/* The options these three share: --data DIR and --json; positional words up to max. */
static int parse_data_json(const struct command *cmd, int argc, char **argv, const char **data,
                           int *json_out, const char **positional, int max_positional, int *count)
{
    tl_cli_option_t options[] = {{"data", data, NULL}, {"json", NULL, json_out}, {0}};
    int status = tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional,
                              max_positional, count);
    if (status == 0)
        status = need_data(cmd, *data);
    return status;
}

static int cmd_status(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[1];
    int json_out = 0, count;
    int status = parse_data_json(cmd, argc, argv, &data, &json_out, positional, 0, &count);
    return status != 0 ? status : tl_status_report(data, json_out, stdout, stderr);
}

static int cmd_audit_recover(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[1];
    int json_out = 0, count;
    int status = parse_data_json(cmd, argc, argv, &data, &json_out, positional, 0, &count);
    return status != 0 ? status : tl_integrity_audit_recover(data, json_out, stdout, stderr);
}

static int cmd_evidence(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *positional[1];
    int json_out = 0, count;
    int status = parse_data_json(cmd, argc, argv, &data, &json_out, positional, 1, &count);
    if (status != 0)
        return status;
    if (count != 1 || strcmp(positional[0], "verify") != 0) {
        fprintf(stderr, "usage: " PROGRAM " %s\n", cmd->usage);
        return TL_EXIT_USAGE;
    }
    return tl_integrity_evidence_verify(data, json_out, stdout, stderr);
}

/* ---- the table ----------------------------------------------------------------------- */

static const struct command commands[] = {
    {"init", "init --data DIR [--listen ADDR:PORT]",
     "create a relay: key, certificate, store, audit log", cmd_init},
    {"serve",
     "serve --data DIR [--listen ADDR:PORT] [--ssh-listen ADDR:PORT] [--heartbeat-ms N] "
     "[--handshake-timeout-ms N] [--log-level LEVEL]",
     "accept agents over mutual TLS 1.3, and technicians over SSH with --ssh-listen", cmd_serve},
    {"enroll-code",
     "enroll-code --data DIR [--ttl 15m] [--note TEXT] [--address HOST:PORT] [--count N]",
     "print a one-time enrollment string for a new agent (--count N: N of them, one per line, "
     "up to 10000)",
     cmd_enroll_code},
    {"devices", "devices --data DIR [--json]", "list enrolled devices", cmd_devices},
    {"tickets", "tickets --data DIR [--json]", "list tickets", cmd_tickets},
    {"ticket", "ticket show T-N --data DIR [--json]",
     "show a ticket with its evidence and timeline", cmd_ticket},
    {"audit-verify", "audit-verify --data DIR", "verify the audit log's hash chain",
     cmd_audit_verify},
    {"status", "status --data DIR [--json]",
     "is a relay serving, is its audit log written (chain head, entries waiting)", cmd_status},
    {"audit-recover", "audit-recover --data DIR [--json]",
     "start a new audit segment that records a lost or damaged log, so serve can start again",
     cmd_audit_recover},
    {"evidence", "evidence verify --data DIR [--json]",
     "re-hash every evidence item; list the damaged ones and their tickets (exit 1 if any)",
     cmd_evidence},
    {"user",
     "user add NAME --role tier1|tier2|tier3|tier4|auditor|admin --key PUBKEY-FILE --data DIR | "
     "user list [--json] --data DIR | user disable NAME --data DIR | user remove NAME --data DIR",
     "manage technicians and auditors (SSH public keys)", cmd_user},
    {"roles", "roles [--markdown]", "print the capabilities table (docs/roles.md)", cmd_roles},
    {"host-key", "host-key --data DIR [--known-hosts HOST:PORT]",
     "print the relay's SSH host key (as a known_hosts line with --known-hosts)", cmd_host_key},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static char *help_text(void)
{
    static char text[4096];
    size_t used = (size_t)snprintf(text, sizeof text,
                                   "usage: " PROGRAM " COMMAND [OPTIONS]\n\n"
                                   "The Tierline relay: accepts agents over mutual TLS 1.3 and "
                                   "technicians over SSH;\nkeeps devices, tickets, evidence, "
                                   "session recordings and the audit log.\n\nCommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT && used < sizeof text; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "  %-13s %s\n      %s %s\n",
                                 commands[i].name, commands[i].summary, PROGRAM, commands[i].usage);
    if (used < sizeof text)
        snprintf(text + used, sizeof text - used,
                 "\n--help and --version print this text and the version.\n");
    return text;
}

int main(int argc, char **argv)
{
    int status = tl_cli_common(argc, argv, PROGRAM, help_text());
    if (status >= 0)
        return status;
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(&commands[i], argc, argv);
    return tl_cli_unknown(PROGRAM, argv[1]);
}
