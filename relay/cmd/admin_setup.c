/*
 * Setting a relay up and letting others in: init (a relay's folder, key,
 * store and audit log), enroll-code (one-time strings for new agents) and
 * host-key (the SSH host key for technicians' known_hosts).
 */
#include "relay/cmd/admin_int.h"

#include "proto/addr.h"
#include "proto/bundle.h"
#include "proto/clock.h"
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/keys.h"
#include "relay/cmd/kinds.h"
#include "relay/store/audit_chain.h"
#include "relay/store/catalogue_files.h"
#include "relay/store/datadir.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM TL_ADMIN_PROGRAM

/* ---- init ------------------------------------------------------------------ */

struct init_args {
    const char *data, *listen, *ssh_listen;
    int json;
};

static int cmd_init(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct init_args args = {.listen = TL_RELAY_DEFAULT_LISTEN};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data, *listen = args.listen, *ssh_listen = args.ssh_listen;
    int json_out = args.json;
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
        return tl_admin_fail("init", rc);
    if (json_out) {
        json_t *report = json_pack("{s:s, s:s, s:s, s:s?}", "data", data, "fingerprint",
                                   fingerprint, "listen", listen, "ssh_listen", ssh_listen);
        status = report != NULL ? tl__admin_print_json(report) : tl_admin_fail("init", TL_ENOMEM);
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

const tl_admin_command_t tl_admin_init = {
    .name = "init",
    .usage = "init [--data DIR] [--listen ADDR:PORT] [--ssh-listen ADDR:PORT] [--json]",
    .summary = "create a relay: key, certificate, store, audit log",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct init_args,
                                   "the new relay's folder (created; must be missing or empty)"),
                    {.name = "listen",
                     .metavar = "ADDR:PORT",
                     .help = "where agents connect (default " TL_RELAY_DEFAULT_LISTEN ")",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_CHECK,
                     .check = tl__kind_listen_address,
                     .word = TL_CLI_AT(struct init_args, listen),
                     .problem = "bad --listen '%s' (want ADDR:PORT)"},
                    {.name = "ssh-listen",
                     .metavar = "ADDR:PORT",
                     .help = "where technicians connect over SSH; serve uses it from then on",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_CHECK,
                     .check = tl__kind_listen_address,
                     .word = TL_CLI_AT(struct init_args, ssh_listen),
                     .problem = "bad --ssh-listen '%s' (want ADDR:PORT)"},
                    TL__ADMIN_JSON(
                        struct init_args,
                        "an object: data, fingerprint, listen, ssh_listen (null if none)"),
                    {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_init,
    .example = "tierline-relay init --data /var/lib/tierline --listen 0.0.0.0:7443 --ssh-listen "
               "0.0.0.0:2222\n",
};

/* ---- enroll-code ------------------------------------------------------------- */

#define TL_ENROLL_CODES_MAX 10000
#define TL_STRING(x) #x
#define TL_NUMBER(x) TL_STRING(x)

struct enroll_args {
    const char *data, *ttl, *note, *address;
    uint64_t ttl_ms, codes;
    int json;
};

/* The codes of one enroll-code run, each with its audit entry, as one unit of work. */
struct code_batch {
    tl_audit_chain_t *chain;
    char (*made)[TL_ENROLL_CODE_LEN];
    int64_t *code_ids;
    size_t codes;
    int64_t now, expires;
    const char *note;
};

static int add_codes(tl_store_t *store, void *arg)
{
    struct code_batch *batch = arg;
    for (size_t done = 0; done < batch->codes; done++) {
        char hash[TL_SHA256_HEX_LEN];
        int64_t code_id = 0;
        int rc;
        if ((rc = tl_enroll_code_generate(batch->made[done])) != 0 ||
            (rc = tl_enroll_code_hash(batch->made[done], hash)) != 0 ||
            (rc = tl_store_code_add(store, hash, batch->now, batch->expires, batch->note,
                                    &code_id)) != 0)
            return rc;
        batch->code_ids[done] = code_id;
        /* The code itself never reaches the audit log: only its id and expiry. */
        json_t *details = json_pack("{s:I, s:I, s:s}", "code_id", (json_int_t)code_id, "expires",
                                    (json_int_t)batch->expires, "note", batch->note);
        tl_audit_entry_t entry = {.actor = "admin", .action = "enroll.code", .details = details};
        rc = details != NULL ? tl_audit_chain_stage(batch->chain, &entry, NULL) : TL_ENOMEM;
        json_decref(details);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int cmd_enroll_code(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct enroll_args args = {.ttl = "15m", .ttl_ms = 15 * 60 * 1000, .note = "", .codes = 1};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data, *ttl = args.ttl, *note = args.note, *address = args.address;
    uint64_t ttl_ms = args.ttl_ms, codes = args.codes;
    int json_out = args.json;
    if (strlen(note) > TL_STORE_MAX_NOTE) {
        fprintf(stderr, PROGRAM " enroll-code: --note is longer than %d bytes\n",
                TL_STORE_MAX_NOTE);
        return TL_EXIT_USAGE;
    }
    char listen[128];
    int rc = address ? 0 : tl_datadir_listen(data, listen, sizeof listen);
    if (rc != 0)
        return tl_admin_fail("reading the relay settings", rc);
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
        return tl_admin_fail("reading the relay key", rc);
    /* The catalogue signing key the agent pins, when one is trusted (docs/catalogue.md). */
    rc = tl_catalogue_files_trusted(data, enrollment.catalogue_key);
    if (rc == TL_ENOTFOUND)
        enrollment.catalogue_key[0] = '\0';
    else if (rc != 0)
        return tl_admin_fail("reading the trusted catalogue signing key", rc);

    /* All codes in one transaction, each with its audit entry: all or none. No code is shown
     * unless its entry is in the audit log (relay/store/audit_chain.h). */
    char(*made)[TL_ENROLL_CODE_LEN] = calloc(codes, sizeof *made);
    int64_t *code_ids = calloc(codes, sizeof *code_ids);
    json_t *listing = json_out ? json_array() : NULL;
    tl_store_t *store = NULL;
    tl_audit_chain_t *chain = NULL;
    char path[4096], problem[768] = "";
    int64_t now = tl_wall_ms();
    if (made == NULL || code_ids == NULL || (json_out && listing == NULL)) {
        rc = TL_ENOMEM;
        goto out;
    }
    if ((rc = tl_datadir_path(data, TL_DATADIR_AUDIT, path, sizeof path)) != 0 ||
        (rc = tl__admin_open_store(data, &store)) != 0 ||
        (rc = tl_audit_chain_open(store, path, 0, &chain, problem, sizeof problem)) != 0)
        goto out;
    struct code_batch batch = {chain, made, code_ids, codes, now, now + (int64_t)ttl_ms, note};
    if ((rc = tl_store_unit_run(store, add_codes, &batch)) != 0)
        goto out;
    if ((rc = tl_audit_chain_flush(chain)) != 0)
        snprintf(problem, sizeof problem, "%s", tl_audit_chain_problem(chain));
out:
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
        rc = tl__admin_print_json(listing) == TL_EXIT_OK ? 0 : TL_ENOMEM;
    json_decref(listing);
    if (rc != 0 && problem[0] != '\0') {
        fprintf(stderr, PROGRAM " enroll-code: %s\nNo enrollment code was issued.\n", problem);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return tl_admin_fail("enroll-code", rc);
    if (codes > 1 && !json_out)
        fprintf(stderr, "%llu codes, one per line, each single use; they expire in %s.\n",
                (unsigned long long)codes, ttl);
    return TL_EXIT_OK;
}

const tl_admin_command_t tl_admin_enroll_code = {
    .name = "enroll-code",
    .usage =
        "enroll-code [--data DIR] [--ttl DURATION] [--note TEXT] [--address HOST:PORT] [--count N] "
        "[--json]",
    .summary = "print a one-time enrollment string for a new agent (--count N: N of them, one per "
               "line, up to 10000)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct enroll_args, "the relay's folder"),
                    {.name = "ttl",
                     .metavar = "DURATION",
                     .help =
                         "how long the strings stay valid: 90s, 15m, 2h, at most 30d (default 15m)",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_DURATION,
                     .max = 30ull * 86400 * 1000,
                     .out = TL_CLI_AT(struct enroll_args, ttl_ms),
                     .word = TL_CLI_AT(struct enroll_args, ttl),
                     .problem = "bad --ttl '%s' (like 90s, 15m, 2h; at most 30d)"},
                    /* At most TL_STORE_MAX_NOTE bytes: the store's rule, checked by the command. */
                    {.name = "note",
                     .metavar = "TEXT",
                     .help = "a note kept with each code (who it is for)",
                     .word = TL_CLI_AT(struct enroll_args, note)},
                    {.name = "address",
                     .metavar = "HOST:PORT",
                     .help = "the address agents reach (default: the one chosen at init)",
                     .word = TL_CLI_AT(struct enroll_args, address)},
                    {.name = "count",
                     .metavar = "N",
                     .help = "how many strings, 1..10000 (default 1)",
                     .flags = TL_CLI_ALONE,
                     .kind = TL_CLI_UINT,
                     .min = 1,
                     .max = TL_ENROLL_CODES_MAX,
                     .out = TL_CLI_AT(struct enroll_args, codes),
                     .problem = "bad --count '%s' (1 to " TL_NUMBER(TL_ENROLL_CODES_MAX) " codes)"},
                    TL__ADMIN_JSON(struct enroll_args,
                                   "a JSON array of objects: enrollment, code_id, "
                                   "expires (ms since 1970), note"),
                    {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_enroll_code,
    .example = "tierline-relay enroll-code --data /var/lib/tierline --address "
               "relay.example.com:7443 --ttl 15m\n",
};

/* ---- host-key ------------------------------------------------------------------- */

struct host_key_args {
    const char *data, *known_hosts;
    tl__host_port_t at;
    int json, pem;
};

static int cmd_host_key(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct host_key_args args = {0};
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    const char *data = args.data, *known_hosts = args.known_hosts, *host = args.at.host;
    uint16_t port = args.at.port;
    int json_out = args.json;
    char path[4096];
    EVP_PKEY *key = NULL;
    char *line = NULL, *pem = NULL;
    size_t pem_len = 0;
    int rc = 0;
    if (args.pem && known_hosts != NULL) {
        fprintf(stderr,
                PROGRAM " host-key: --pem or --known-hosts, not both\nusage: " PROGRAM " %s\n",
                cmd->usage);
        return TL_EXIT_USAGE;
    }
    if ((rc = tl_datadir_path(data, TL_DATADIR_KEY, path, sizeof path)) == 0 &&
        (rc = tl_key_load(path, &key)) == 0)
        rc = tl_key_ssh_public(key, "tierline-relay", &line);
    char fingerprint[TL_FINGERPRINT_LEN], known_line[TL_ADDR_HOST_MAX + 16];
    if (rc == 0)
        rc = tl_fingerprint(key, fingerprint);
    /* The public key as openssl reads it: the trusted copy that checks evidence bundles. */
    if (rc == 0)
        rc = tl_bundle_key_pem(key, &pem, &pem_len);
    EVP_PKEY_free(key);
    if (rc != 0) {
        free(line);
        free(pem);
        return tl_admin_fail("host-key", rc);
    }
    if (known_hosts == NULL)
        known_line[0] = '\0';
    else if (port == 22)
        snprintf(known_line, sizeof known_line, "%s ", host);
    else
        snprintf(known_line, sizeof known_line, "[%s]:%u ", host, (unsigned)port);
    if (json_out) {
        json_t *report =
            json_pack("{s:s, s:s, s:s}", "key", line, "fingerprint", fingerprint, "pem", pem);
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
        status =
            report != NULL ? tl__admin_print_json(report) : tl_admin_fail("host-key", TL_ENOMEM);
        json_decref(report);
    } else if (args.pem) {
        fputs(pem, stdout);
    } else {
        printf("%s%s\n", known_line, line);
    }
    free(line);
    free(pem);
    return status;
}

const tl_admin_command_t tl_admin_host_key = {
    .name = "host-key",
    .usage = "host-key [--data DIR] [--known-hosts HOST:PORT | --pem] [--json]",
    .summary = "print the relay's SSH host key (as a known_hosts line with --known-hosts)",
    .args =
        &(const tl_cli_spec_t){
            .options =
                (const tl_cli_arg_t[]){
                    TL__ADMIN_DATA(struct host_key_args, "the relay's folder"),
                    {.name = "known-hosts",
                     .metavar = "HOST:PORT",
                     .help = "print a known_hosts line for technicians who reach it there",
                     .kind = TL_CLI_CHECK,
                     .check = tl__kind_host_port,
                     .out = TL_CLI_AT(struct host_key_args, at),
                     .word = TL_CLI_AT(struct host_key_args, known_hosts),
                     .problem = "--known-hosts wants HOST:PORT, got '%s'"},
                    {.name = "pem",
                     .help = "print the public key as PEM instead: the copy auditors trust to "
                             "check evidence bundles with openssl (docs/desk.md)",
                     .out = TL_CLI_AT(struct host_key_args, pem)},
                    TL__ADMIN_JSON(struct host_key_args, "an object: key, fingerprint, pem, "
                                                         "known_hosts (with --known-hosts)"),
                    {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_host_key,
    .example = "tierline-relay host-key --data /var/lib/tierline --known-hosts "
               "relay.example.com:2222 > relay.known_hosts\n",
};
