/*
 * tierline-relay: the command table and its dispatcher.
 *
 * Each command is one entry { name, usage, summary, run, options, example };
 * the program's --help and each command's --help are built from the same
 * table, and the dispatcher answers a command's --help before running it.
 * Admin views read the store directly (SQLite allows them while `serve`
 * runs); every listing and report takes --json.
 */
#include "proto/clock.h"
#include "proto/addr.h"
#include "proto/cli.h"
#include "proto/enrollment.h"
#include "proto/keys.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/text.h"
#include "relay/store/audit.h"
#include "relay/store/audit_chain.h"
#include "relay/store/datadir.h"
#include "relay/store/integrity.h"
#include "proto/roles.h"
#include "relay/desk/users.h"
#include "relay/serve.h"
#include "relay/store/status.h"
#include "relay/store/store.h"
#include "tl_version.h"

#include <errno.h>
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
    const char *options; /* for --help: "--name VALUE<TAB>what it does\n" lines */
    const char *example; /* for --help: whole command lines */
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
    char *text = tl_text_json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return TL_EXIT_FAILURE;
    printf("%s\n", text);
    free(text);
    return TL_EXIT_OK;
}

/* ---- init ------------------------------------------------------------------ */

static int cmd_init(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *listen = TL_RELAY_DEFAULT_LISTEN, *ssh_listen = NULL, *positional[1];
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL},
                                 {"listen", &listen, NULL},
                                 {"ssh-listen", &ssh_listen, NULL},
                                 {"json", NULL, &json_out},
                                 {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    struct sockaddr_storage address;
    if (tl_addr_parse(listen, &address) != 0) {
        fprintf(stderr, PROGRAM " init: bad --listen '%s' (want ADDR:PORT)\n", listen);
        return TL_EXIT_USAGE;
    }
    if (ssh_listen != NULL && tl_addr_parse(ssh_listen, &address) != 0) {
        fprintf(stderr, PROGRAM " init: bad --ssh-listen '%s' (want ADDR:PORT)\n", ssh_listen);
        return TL_EXIT_USAGE;
    }
    if (ssh_listen != NULL && strcmp(ssh_listen, listen) == 0) {
        fprintf(stderr, PROGRAM " init: --ssh-listen must differ from --listen (%s)\n", listen);
        return TL_EXIT_USAGE;
    }
    char fingerprint[TL_FINGERPRINT_LEN];
    int rc = tl_datadir_init(data, listen, ssh_listen, fingerprint);
    if (rc == TL_EEXIST) {
        fprintf(stderr,
                PROGRAM " init: %s already holds a relay (or other files); refusing to "
                        "overwrite it\n",
                data);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return fail("init", rc);
    if (json_out) {
        json_t *report = json_pack("{s:s, s:s, s:s, s:s?}", "data", data, "fingerprint",
                                   fingerprint, "listen", listen, "ssh_listen", ssh_listen);
        status = report != NULL ? print_json(report) : fail("init", TL_ENOMEM);
        json_decref(report);
        return status;
    }
    printf("Relay initialised in %s\n", data);
    printf("  key fingerprint: %s\n", fingerprint);
    printf("  agent listener:  %s\n", listen);
    if (ssh_listen != NULL)
        printf("  SSH listener:    %s (technicians)\n", ssh_listen);
    printf("Next: " PROGRAM " serve --data %s\n", data);
    return TL_EXIT_OK;
}

/* ---- serve ------------------------------------------------------------------- */

static int cmd_serve(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *listen = NULL, *heartbeat = NULL, *handshake = NULL, *level = NULL,
               *ssh_listen = NULL, *ssh_max = NULL, *ssh_per_address = NULL,
               *ssh_auth_timeout = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"data", &data, NULL},
                                 {"listen", &listen, NULL},
                                 {"heartbeat-ms", &heartbeat, NULL},
                                 {"handshake-timeout-ms", &handshake, NULL},
                                 {"log-level", &level, NULL},
                                 {"ssh-listen", &ssh_listen, NULL},
                                 {"ssh-max-connections", &ssh_max, NULL},
                                 {"ssh-preauth-per-address", &ssh_per_address, NULL},
                                 {"ssh-auth-timeout-ms", &ssh_auth_timeout, NULL},
                                 {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    /* The SSH address chosen at init serves technicians unless --ssh-listen says otherwise. */
    char stored_ssh_listen[128];
    if (ssh_listen == NULL) {
        int rc = tl_datadir_ssh_listen(data, stored_ssh_listen, sizeof stored_ssh_listen);
        if (rc == 0)
            ssh_listen = stored_ssh_listen;
        else if (rc != TL_ENOTFOUND && rc != -ENOENT)
            return fail("reading the relay settings", rc);
    }
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
    /* The SSH front end's limits (docs/technicians.md "Limits"). */
    const struct {
        const char *text, *name;
        uint64_t min, max;
        uint32_t *out;
    } ssh_limits[] = {
        {ssh_max, "--ssh-max-connections", 1, 65536, &config.ssh_max_connections},
        {ssh_per_address, "--ssh-preauth-per-address", 1, 1024, &config.ssh_preauth_per_address},
        {ssh_auth_timeout, "--ssh-auth-timeout-ms", 1000, 600000, &config.ssh_auth_timeout_ms},
    };
    for (size_t i = 0; i < sizeof ssh_limits / sizeof ssh_limits[0]; i++) {
        if (ssh_limits[i].text == NULL)
            continue;
        if (tl_cli_parse_uint(ssh_limits[i].text, ssh_limits[i].min, ssh_limits[i].max, &value) !=
            0) {
            fprintf(stderr, PROGRAM " serve: %s wants %llu..%llu\n", ssh_limits[i].name,
                    (unsigned long long)ssh_limits[i].min, (unsigned long long)ssh_limits[i].max);
            return TL_EXIT_USAGE;
        }
        *ssh_limits[i].out = (uint32_t)value;
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
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL},
                                 {"ttl", &ttl, NULL},
                                 {"note", &note, NULL},
                                 {"address", &address, NULL},
                                 {"count", &count_text, NULL},
                                 {"json", NULL, &json_out},
                                 {0}};
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
     * unless its entry is in the audit log (relay/store/audit_chain.h). */
    char(*made)[TL_ENROLL_CODE_LEN] = calloc(codes, sizeof *made);
    int64_t *code_ids = calloc(codes, sizeof *code_ids);
    json_t *listing = json_out ? json_array() : NULL;
    tl_store_t *store = NULL;
    tl_audit_chain_t *chain = NULL;
    char path[4096], problem[768] = "";
    int64_t now = tl_wall_ms();
    int in_transaction = 0;
    if (made == NULL || code_ids == NULL || (json_out && listing == NULL)) {
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
        code_ids[done] = code_id;
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
            if (json_out) {
                json_t *item = json_pack("{s:s, s:I, s:I, s:s}", "enrollment", text, "code_id",
                                         (json_int_t)code_ids[i], "expires",
                                         (json_int_t)(now + (int64_t)ttl_ms), "note", note);
                if (item == NULL || json_array_append_new(listing, item) != 0)
                    rc = TL_ENOMEM;
                continue;
            }
            printf("%s\n", text);
            if (codes == 1)
                fprintf(stderr,
                        "Single use; expires in %s. On the user's machine: tierline-agent enroll "
                        "'%s'\n",
                        ttl, text);
        }
    }
    free(made);
    free(code_ids);
    if (rc == 0 && json_out)
        rc = print_json(listing) == TL_EXIT_OK ? 0 : TL_ENOMEM;
    json_decref(listing);
    if (rc != 0 && problem[0] != '\0') {
        fprintf(stderr, PROGRAM " enroll-code: %s\nNo enrollment code was issued.\n", problem);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return fail("enroll-code", rc);
    if (codes > 1 && !json_out)
        fprintf(stderr, "%llu codes, one per line, each single use; they expire in %s.\n",
                (unsigned long long)codes, ttl);
    return TL_EXIT_OK;
}

/* ---- devices, tickets ------------------------------------------------------------ */

/*
 * Text from agents and users as printed here (docs/technicians.md "Text from
 * others"): escaped, in columns clipped by display width with "…".
 */
static const char *member(json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text != NULL ? text : "-";
}

static const char *shown(char *buf, size_t size, json_t *object, const char *key)
{
    tl_text_clip(buf, size, member(object, key), 0, TL_TEXT_LINE);
    return buf;
}

static const char *cell(char *buf, size_t size, json_t *object, const char *key, size_t width)
{
    tl_text_cell(buf, size, member(object, key), width);
    return buf;
}

static const char *padded(char *buf, size_t size, json_t *object, const char *key, size_t width)
{
    tl_text_pad(buf, size, member(object, key), width);
    return buf;
}

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
            char seen[32], hostname[64], os[88];
            tl_format_utc(json_integer_value(json_object_get(d, "last_seen")), seen);
            printf("%-6s %-7s %s %s %-20s %s\n", member(d, "id"),
                   json_is_true(json_object_get(d, "online")) ? "yes" : "no",
                   cell(hostname, sizeof hostname, d, "hostname", 20),
                   cell(os, sizeof os, d, "os", 28), seen, member(d, "fingerprint"));
        }
        if (json_array_size(devices) == 0)
            printf("(no devices enrolled)\n");
    }
    json_decref(devices);
    return status;
}

/* The technicians' filters (docs/technicians.md): --tier, --status, --assignee. */
static int cmd_tickets(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *tier = NULL, *status_filter = NULL, *assignee = NULL, *positional[1];
    int json_out = 0, count;
    tl_cli_option_t options[] = {
        {"data", &data, NULL},         {"tier", &tier, NULL},     {"status", &status_filter, NULL},
        {"assignee", &assignee, NULL}, {"json", NULL, &json_out}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    tl_ticket_filter_t filter = {.tier = -1, .status = status_filter, .assignee = assignee};
    uint64_t value;
    if (tier != NULL) {
        if (tl_cli_parse_uint(tier, 0, 4, &value) != 0) {
            fprintf(stderr, PROGRAM " tickets: --tier wants 0, 1, 2, 3 or 4, not '%s'\n", tier);
            return TL_EXIT_USAGE;
        }
        filter.tier = (int)value;
    }
    if (status_filter != NULL && !tl_store_status_valid(status_filter)) {
        fprintf(stderr,
                PROGRAM " tickets: --status wants new, open, waiting-user, waiting-vendor, "
                        "resolved or closed, not '%s'\n",
                status_filter);
        return TL_EXIT_USAGE;
    }
    if (assignee != NULL && !tl_store_user_name_valid(assignee)) {
        fprintf(stderr,
                PROGRAM " tickets: --assignee wants an account name (1-64 of a-z 0-9 . _ -, "
                        "starting with a letter), not '%s'\n",
                assignee);
        return TL_EXIT_USAGE;
    }
    tl_store_t *store = NULL;
    json_t *tickets = NULL;
    int rc = open_store(data, &store);
    if (rc == 0)
        rc = tl_store_tickets_query(store, &filter, &tickets);
    tl_store_close(store);
    if (rc != 0)
        return fail("tickets", rc);
    if (json_out) {
        status = print_json(tickets);
    } else {
        printf("%-7s %-4s %-14s %-12s %-6s %-16s %-20s %s\n", "ID", "TIER", "STATUS", "ASSIGNEE",
               "DEVICE", "HOSTNAME", "UPDATED", "TITLE");
        size_t i;
        json_t *t;
        json_array_foreach(tickets, i, t)
        {
            char updated[32], hostname[52], assignee_cell[52], title[1024];
            tl_format_utc(json_integer_value(json_object_get(t, "updated")), updated);
            printf("%-7s %-4" JSON_INTEGER_FORMAT " %-14s %s %-6s %s %-20s %s\n", member(t, "id"),
                   json_integer_value(json_object_get(t, "tier")), member(t, "status"),
                   cell(assignee_cell, sizeof assignee_cell, t, "assignee", 12),
                   member(t, "device"), cell(hostname, sizeof hostname, t, "hostname", 16), updated,
                   shown(title, sizeof title, t, "title"));
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
    char title[1024], hostname[1100], assignee[300];
    printf("%s  %s\n", member(t, "id"), shown(title, sizeof title, t, "title"));
    printf("  device:   %s (%s)\n", member(t, "device"),
           shown(hostname, sizeof hostname, t, "hostname"));
    printf("  tier:     %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(t, "tier")));
    printf("  status:   %s\n", member(t, "status"));
    printf("  assignee: %s\n", shown(assignee, sizeof assignee, t, "assignee"));
    printf("  created:  %s\n  updated:  %s\n", created, updated);
    const char *description = json_string_value(json_object_get(t, "description"));
    if (description != NULL && description[0] != '\0') {
        char *body = tl_text_escape_dup(description, TL_TEXT_BODY);
        printf("\n  %s\n", body != NULL ? body : "");
        free(body);
    }
    printf("\nEvidence:\n");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(t, "evidence"), i, item)
    {
        char kind[80], name[1100];
        printf("  %s %s %10" JSON_INTEGER_FORMAT " bytes  sha256:%s\n",
               padded(kind, sizeof kind, item, "kind", 12),
               padded(name, sizeof name, item, "name", 24),
               json_integer_value(json_object_get(item, "size")), member(item, "hash"));
    }
    printf("\nTimeline:\n");
    json_array_foreach(json_object_get(t, "events"), i, item)
    {
        char when[32], actor[300], kind[80];
        tl_format_utc(json_integer_value(json_object_get(item, "time")), when);
        /* Compact JSON escapes control characters; what it leaves raw is escaped here. */
        char *json = json_dumps(json_object_get(item, "details"), JSON_COMPACT);
        char *details = tl_text_escape_dup(json != NULL ? json : "", TL_TEXT_LINE);
        free(json);
        printf("  %s  %s %s %s\n", when, padded(actor, sizeof actor, item, "actor", 16),
               padded(kind, sizeof kind, item, "kind", 18), details != NULL ? details : "");
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
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"data", &data, NULL}, {"json", NULL, &json_out}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0 || (status = need_data(cmd, data)) != 0)
        return status;
    char path[4096];
    if (tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path) != 0)
        return fail("audit-verify", TL_EINVAL);
    tl_audit_report_t report;
    int rc = tl_audit_verify(path, &report);
    if (json_out) {
        /* The verdict on stdout either way; the exit status says it too. */
        json_t *verdict = json_pack(
            "{s:b, s:s, s:I, s:s, s:I, s:I, s:I, s:s?}", "ok", rc == 0, "verdict",
            rc == 0           ? "ok"
            : rc == TL_EPROTO ? "broken"
                              : "unreadable",
            "entries", (json_int_t)report.entries, "last_hash", report.last_hash, "bad_line",
            (json_int_t)report.bad_line, "bad_seq", (json_int_t)report.bad_seq,
            "partial_tail_bytes", (json_int_t)report.partial_tail_bytes, "reason",
            report.reason[0] != '\0' ? report.reason : NULL);
        status = verdict != NULL ? print_json(verdict) : fail("audit-verify", TL_ENOMEM);
        json_decref(verdict);
        if (status != TL_EXIT_OK)
            return status;
    } else {
        tl_audit_report_print(&report, rc, rc == 0 ? stdout : stderr);
    }
    return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

/* ---- users and roles ---------------------------------------------------------------- */

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
    int markdown = 0, json_out = 0, count;
    tl_cli_option_t options[] = {{"markdown", NULL, &markdown}, {"json", NULL, &json_out}, {0}};
    int status =
        tl_cli_parse(PROGRAM, cmd->name, cmd->usage, argc, argv, 2, options, positional, 0, &count);
    if (status != 0)
        return status;
    if (markdown && json_out) {
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
    status = rc == 0 ? print_json(table) : fail("roles", rc);
    json_decref(table);
    return status;
}

static int cmd_host_key(const struct command *cmd, int argc, char **argv)
{
    const char *data = NULL, *known_hosts = NULL, *positional[1];
    int json_out = 0, count;
    tl_cli_option_t options[] = {
        {"data", &data, NULL}, {"known-hosts", &known_hosts, NULL}, {"json", NULL, &json_out}, {0}};
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
    char fingerprint[TL_FINGERPRINT_LEN], known_line[TL_ADDR_HOST_MAX + 16];
    if (rc == 0)
        rc = tl_fingerprint(key, fingerprint);
    EVP_PKEY_free(key);
    if (rc != 0) {
        free(line);
        return fail("host-key", rc);
    }
    if (known_hosts == NULL)
        known_line[0] = '\0';
    else if (port == 22)
        snprintf(known_line, sizeof known_line, "%s ", host);
    else
        snprintf(known_line, sizeof known_line, "[%s]:%u ", host, (unsigned)port);
    if (json_out) {
        json_t *report = json_pack("{s:s, s:s}", "key", line, "fingerprint", fingerprint);
        size_t entry_size = strlen(known_line) + strlen(line) + 1;
        char *entry = known_hosts != NULL ? malloc(entry_size) : NULL;
        if (entry != NULL)
            snprintf(entry, entry_size, "%s%s", known_line, line);
        if (report != NULL && known_hosts != NULL &&
            (entry == NULL ||
             json_object_set_new(report, "known_hosts", json_string(entry)) != 0)) {
            json_decref(report);
            report = NULL;
        }
        free(entry);
        status = report != NULL ? print_json(report) : fail("host-key", TL_ENOMEM);
        json_decref(report);
    } else {
        printf("%s%s\n", known_line, line);
    }
    free(line);
    return status;
}

/* ---- status, audit-recover, evidence verify (relay/store/status.h, relay/store/integrity.h) -------- */

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
    {"init", "init --data DIR [--listen ADDR:PORT] [--ssh-listen ADDR:PORT] [--json]",
     "create a relay: key, certificate, store, audit log", cmd_init,
     "--data DIR\tthe new relay's folder (created; must be missing or empty)\n"
     "--listen ADDR:PORT\twhere agents connect (default " TL_RELAY_DEFAULT_LISTEN ")\n"
     "--ssh-listen ADDR:PORT\twhere technicians connect over SSH; serve uses it from then on\n"
     "--json\tan object: data, fingerprint, listen, ssh_listen (null if none)\n",
     "tierline-relay init --data /var/lib/tierline --listen 0.0.0.0:7443 --ssh-listen "
     "0.0.0.0:2222\n"},
    {"serve",
     "serve --data DIR [--listen ADDR:PORT] [--ssh-listen ADDR:PORT] [--heartbeat-ms N] "
     "[--handshake-timeout-ms N] [--ssh-max-connections N] [--ssh-preauth-per-address N] "
     "[--ssh-auth-timeout-ms N] [--log-level LEVEL]",
     "accept agents over mutual TLS 1.3, and technicians over SSH (the address chosen at init, "
     "or --ssh-listen)",
     cmd_serve,
     "--data DIR\tthe relay's folder (from init)\n"
     "--listen ADDR:PORT\tagents' address instead of the one chosen at init\n"
     "--ssh-listen ADDR:PORT\ttechnicians' SSH address instead of the one chosen at init\n"
     "--heartbeat-ms N\thow often agents are pinged, 50..3600000\n"
     "--handshake-timeout-ms N\thow long a TLS handshake may take, 50..600000\n"
     "--ssh-max-connections N\tSSH connections at most, 1..65536 (default 256)\n"
     "--ssh-preauth-per-address N\tconnections one address may hold before logging in, "
     "1..1024 (default 32)\n"
     "--ssh-auth-timeout-ms N\thow long an SSH client has to log in, 1000..600000 "
     "(default 20000)\n"
     "--log-level LEVEL\tdebug, info, warn or error\n",
     "tierline-relay serve --data /var/lib/tierline &\n"},
    {"enroll-code",
     "enroll-code --data DIR [--ttl 15m] [--note TEXT] [--address HOST:PORT] [--count N] [--json]",
     "print a one-time enrollment string for a new agent (--count N: N of them, one per line, "
     "up to 10000)",
     cmd_enroll_code,
     "--data DIR\tthe relay's folder\n"
     "--ttl DURATION\thow long the strings stay valid: 90s, 15m, 2h, at most 30d (default 15m)\n"
     "--note TEXT\ta note kept with each code (who it is for)\n"
     "--address HOST:PORT\tthe address agents reach (default: the one chosen at init)\n"
     "--count N\thow many strings, 1..10000 (default 1)\n"
     "--json\ta JSON array of objects: enrollment, code_id, expires (ms since 1970), note\n",
     "tierline-relay enroll-code --data /var/lib/tierline --address relay.example.com:7443 "
     "--ttl 15m\n"},
    {"devices", "devices --data DIR [--json]", "list enrolled devices", cmd_devices,
     "--data DIR\tthe relay's folder\n"
     "--json\ta JSON array of objects: id, fingerprint, hostname, os, first_seen, last_seen, "
     "online\n",
     "tierline-relay devices --data /var/lib/tierline\n"},
    {"tickets", "tickets --data DIR [--tier N] [--status S] [--assignee NAME] [--json]",
     "list tickets with their assignees, optionally only some", cmd_tickets,
     "--data DIR\tthe relay's folder\n"
     "--tier N\tonly tickets at tier N, 0..4\n"
     "--status S\tonly tickets with status S: new, open, waiting-user, waiting-vendor, "
     "resolved, closed\n"
     "--assignee NAME\tonly tickets assigned to the account NAME\n"
     "--json\ta JSON array of objects: id, device, hostname, title, description, tier, status, "
     "assignee (null if none), created, updated\n",
     "tierline-relay tickets --data /var/lib/tierline --status open --assignee bob\n"},
    {"ticket", "ticket show T-N --data DIR [--json]",
     "show a ticket with its evidence and timeline", cmd_ticket,
     "--data DIR\tthe relay's folder\n"
     "--json\tthe ticket as a JSON object, with its evidence and events\n",
     "tierline-relay ticket show T-1 --data /var/lib/tierline\n"},
    {"audit-verify", "audit-verify --data DIR [--json]", "verify the audit log's hash chain",
     cmd_audit_verify,
     "--data DIR\tthe relay's folder\n"
     "--json\tthe verdict, an object: ok, verdict, entries, last_hash, bad_line, bad_seq, "
     "partial_tail_bytes, reason (null if it verified)\n",
     "tierline-relay audit-verify --data /var/lib/tierline\n"},
    {"status", "status --data DIR [--json]",
     "is a relay serving, is its audit log written (chain head, entries waiting)", cmd_status,
     "--data DIR\tthe relay's folder\n"
     "--json\tan object: serving, audit (healthy, problem, source, since), head (seq, hash), "
     "log (seq, hash, tail_bytes, or error), pending (outbox, oldest, legacy), and pid, started "
     "while serving\n",
     "tierline-relay status --data /var/lib/tierline\n"},
    {"audit-recover", "audit-recover --data DIR [--json]",
     "start a new audit segment that records a lost or damaged log, so serve can start again",
     cmd_audit_recover,
     "--data DIR\tthe relay's folder\n"
     "--json\tan object: recovered, and entry (what the audit.recover entry records) or found\n",
     "tierline-relay audit-recover --data /var/lib/tierline\n"},
    {"evidence", "evidence verify --data DIR [--json]",
     "re-hash every evidence item; list the damaged ones and their tickets (exit 1 if any)",
     cmd_evidence,
     "--data DIR\tthe relay's folder\n"
     "--json\tan object: checked, damaged, missing (each item: sha256, tickets, reason)\n",
     "tierline-relay evidence verify --data /var/lib/tierline\n"},
    {"user",
     "user add NAME --role tier1|tier2|tier3|tier4|auditor|admin --key PUBKEY-FILE --data DIR | "
     "user list [--json] --data DIR | user disable NAME --data DIR | user remove NAME --data DIR",
     "manage technicians and auditors (SSH public keys)", cmd_user,
     "--data DIR\tthe relay's folder\n"
     "--role ROLE\tadd: tier1, tier2, tier3, tier4, auditor or admin (docs/roles.md)\n"
     "--key PUBKEY-FILE\tadd: the person's OpenSSH public key (ssh-keygen -t ed25519)\n"
     "--json\tlist: a JSON array of objects: id, name, role, public_key, fingerprint, disabled, "
     "created\n",
     "tierline-relay user add bob --role tier2 --key bob.pub --data /var/lib/tierline\n"
     "tierline-relay user list --data /var/lib/tierline\n"},
    {"roles", "roles [--markdown] [--json]", "print the capabilities table (docs/roles.md)",
     cmd_roles,
     "--markdown\tthe table as Markdown (the default)\n"
     "--json\tan object: roles, capabilities (each: name, summary, roles)\n",
     "tierline-relay roles --json\n"},
    {"host-key", "host-key --data DIR [--known-hosts HOST:PORT] [--json]",
     "print the relay's SSH host key (as a known_hosts line with --known-hosts)", cmd_host_key,
     "--data DIR\tthe relay's folder\n"
     "--known-hosts HOST:PORT\tprint a known_hosts line for technicians who reach it there\n"
     "--json\tan object: key, fingerprint, known_hosts (with --known-hosts)\n",
     "tierline-relay host-key --data /var/lib/tierline --known-hosts relay.example.com:2222 > "
     "relay.known_hosts\n"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static char *help_text(void)
{
    static char text[8192];
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
                 "\n--help and --version print this text and the version; "
                 "'" PROGRAM " COMMAND --help'\nexplains one command.\n");
    return text;
}

int main(int argc, char **argv)
{
    int status = tl_cli_common(argc, argv, PROGRAM, help_text());
    if (status >= 0)
        return status;
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        const struct command *cmd = &commands[i];
        if (strcmp(argv[1], cmd->name) != 0)
            continue;
        /* Help is answered here, before the command reads or changes anything. */
        if (tl_cli_wants_help(argc, argv, 2, -1, NULL)) {
            tl_cli_help_t help = {cmd->usage, cmd->summary, cmd->options, cmd->example};
            tl_cli_help_write(stdout, PROGRAM, &help);
            return TL_EXIT_OK;
        }
        return cmd->run(cmd, argc, argv);
    }
    return tl_cli_unknown(PROGRAM, argv[1]);
}
