/*
 * The admins' commands of tierline-relay, run on the relay host: one entry
 * each { name, usage, summary, argument spec, run, example }, in the file
 * of its group: admin_setup.c (init, enroll-code, host-key),
 * admin_listings.c (devices, tickets, ticket), admin_users.c (user, roles),
 * admin_audit.c (audit-verify, audit pubkey|checkpoint), admin_integrity.c (status,
 * audit-recover, evidence verify), admin_kb.c (kb) and admin_runbook.c (runbook proposals).
 * relay/main.c lists them, with serve, which it runs itself, and dispatches; each command's --help
 * is written from its entry and spec (proto/cli.h), and its words are parsed by the same spec, so
 * help and parsing cannot drift apart.
 *
 * Admin views read the store directly (SQLite allows them while `serve`
 * runs); every listing and report takes --json. Exit statuses: 0 success,
 * 1 failure, 2 usage.
 */
#ifndef TL_ADMIN_H
#define TL_ADMIN_H

#include "proto/cli.h"
#include "proto/settings.h"

#include <stdio.h>

#define TL_ADMIN_PROGRAM "tierline-relay"

typedef struct tl_admin_command tl_admin_command_t;

struct tl_admin_command {
    const char *name;
    const char *usage; /* without the program's name */
    const char *summary;
    const tl_cli_spec_t *args; /* the words after the command's name */
    /* argv as main() has it: argv[1] is the command's name. Returns the exit status. */
    int (*run)(const tl_admin_command_t *cmd, int argc, char **argv);
    const char *example; /* for --help: whole command lines */
};

extern const tl_admin_command_t tl_admin_init, tl_admin_enroll_code, tl_admin_host_key;
extern const tl_admin_command_t tl_admin_devices, tl_admin_tickets, tl_admin_ticket;
extern const tl_admin_command_t tl_admin_user, tl_admin_roles;
extern const tl_admin_command_t tl_admin_audit_verify, tl_admin_audit;
extern const tl_admin_command_t tl_admin_status, tl_admin_audit_recover, tl_admin_evidence;
extern const tl_admin_command_t tl_admin_kb;
extern const tl_admin_command_t tl_admin_catalogue;
extern const tl_admin_command_t tl_admin_runbook;
extern const tl_admin_command_t tl_admin_retention;
extern const tl_admin_command_t tl_admin_config;

/*
 * The configuration file (relay/cmd/admin_config.c, docs/configuration.md):
 * --config FILE, else $TIERLINE_RELAY_CONFIG, else /etc/tierline/relay.conf,
 * which may be missing (the defaults then). Its data_dir is the --data of
 * every admin command that is not given one.
 */
#define TL_ADMIN_CONFIG_DEFAULT "/etc/tierline/relay.conf"
#define TL_ADMIN_CONFIG_ENV "TIERLINE_RELAY_CONFIG"
#define TL_ADMIN_DATA_DEFAULT "/var/lib/tierline"
extern const tl_setting_def_t tl_admin_relay_settings[];

/* The built-in defaults, then the file (config_path NULL: the usual one); why names FILE:LINE. */
int tl_admin_settings_load(const char *config_path, tl_settings_t *settings, char *why,
                           size_t why_size);

/*
 * Reads argv[2..] into result with cmd's spec (fields not given keep what
 * result held); a command that takes --data and is not given it gets the
 * configured data_dir. 0; or TL_EXIT_USAGE with the usage error on stderr:
 * "tierline-relay COMMAND: what", then the usage line unless it stands alone.
 */
int tl_admin_parse(const tl_admin_command_t *cmd, int argc, char **argv, void *result);

/* "tierline-relay: what: reason" on stderr; returns TL_EXIT_FAILURE. */
int tl_admin_fail(const char *what, int rc);

/* serve's --log-level, as a TL_CLI_CHECK: a level's name into an enum tl_log_level. */
int tl_admin_log_level(const char *word, void *out, const char **problem);

/* cmd's --help: usage, summary, the options of its spec, the example. */
void tl_admin_help_write(FILE *out, const tl_admin_command_t *cmd);

#endif
