/*
 * The relay's configuration file, /etc/tierline/relay.conf
 * (docs/configuration.md): its settings table, how the admin commands find
 * their data directory in it, and `tierline-relay config check|show`.
 *
 * relay.conf also holds the desk's SLA calendar and targets and the
 * retention of evidence (the sla_ and retention_ keys, read by
 * relay/desk/desk_settings.h), or they stay in DATA/desk.json (docs/desk.md):
 * each in one of the two places, never both.
 */
#include "relay/cmd/admin_int.h"

#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "relay/desk/desk_config.h"
#include "relay/desk/desk_settings.h"
#include "relay/store/datadir.h"

#include <stdlib.h>
#include <string.h>

/* The defaults are those of serve's options; test_relay_settings checks them against the code. */
const tl_setting_def_t tl_admin_relay_settings[] = {
    {"data_dir", "data", TL_SETTING_PATH, 0, 0, TL_ADMIN_DATA_DEFAULT, 0,
     "the relay's folder, made by init", NULL},
    {"listen", "listen", TL_SETTING_ADDRESS, 0, 0, NULL, 0,
     "agents' TLS address; unset: the one chosen at init", "the address chosen at init"},
    {"ssh_listen", "ssh-listen", TL_SETTING_ADDRESS, 0, 0, NULL, 0,
     "technicians' SSH address; unset: the one chosen at init", "the address chosen at init"},
    {"heartbeat_ms", "heartbeat-ms", TL_SETTING_UINT, 50, 3600000, "20000", 0,
     "how often agents ping the relay, 50..3600000", NULL},
    {"handshake_timeout_ms", "handshake-timeout-ms", TL_SETTING_UINT, 50, 600000, "10000", 0,
     "how long a TLS handshake may take, 50..600000", NULL},
    {"agent_max_connections", "agent-max-connections", TL_SETTING_UINT, 1, 1000000, "20000", 0,
     "agent connections at most, 1..1000000", NULL},
    {"agent_accept_rate", "agent-accept-rate", TL_SETTING_UINT, 1, 1000000, "2000", 0,
     "new agent connections accepted a second at most, 1..1000000", NULL},
    {"ssh_max_connections", "ssh-max-connections", TL_SETTING_UINT, 1, 65536, "256",
     TL_SETTING_RELOAD, "SSH connections at most, 1..65536", NULL},
    {"ssh_preauth_per_address", "ssh-preauth-per-address", TL_SETTING_UINT, 1, 1024, "32",
     TL_SETTING_RELOAD, "connections one address may hold before logging in, 1..1024", NULL},
    {"ssh_auth_timeout_ms", "ssh-auth-timeout-ms", TL_SETTING_UINT, 1000, 600000, "20000",
     TL_SETTING_RELOAD, "how long an SSH client has to log in, 1000..600000", NULL},
    {"ssh_keepalive_ms", "ssh-keepalive-ms", TL_SETTING_UINT, 1000, 3600000, "15000",
     TL_SETTING_RELOAD, "keepalive to a logged-in SSH client, 1000..3600000", NULL},
    {"ssh_idle_timeout_ms", "ssh-idle-timeout-ms", TL_SETTING_UINT, 1000, 86400000, "1800000",
     TL_SETTING_RELOAD, "an SSH connection idle this long is closed, 1000..86400000", NULL},
    {"take_wait_ms", "take-wait-ms", TL_SETTING_UINT, 100, 600000, "30000", TL_SETTING_RELOAD,
     "how long join --take waits for the technician in control, 100..600000", NULL},
    {"files_max_bytes", "files-max-bytes", TL_SETTING_UINT, 1, 67108864, "67108864",
     TL_SETTING_RELOAD,
     "the largest file copied from or to a machine with scp or sftp, 1..67108864", NULL},
    {"files_max_count", "files-max-count", TL_SETTING_UINT, 1, 100000, "1000", TL_SETTING_RELOAD,
     "files one scp or sftp session may open on machines, 1..100000", NULL},
    {"metrics_listen", "metrics-listen", TL_SETTING_ADDRESS, 0, 0, NULL, TL_SETTING_OFF,
     "Prometheus metrics at GET /metrics on this loopback address; off: none", NULL},
    {"metrics_public", "metrics-public", TL_SETTING_BOOL, 0, 0, "no", 0,
     "allow metrics_listen on an address that is not loopback", NULL},
    {"web_listen", "web-listen", TL_SETTING_ADDRESS, 0, 0, NULL, TL_SETTING_OFF,
     "the read-only web view on this address (loopback unless HTTPS or web_behind_proxy); off: "
     "none",
     NULL},
    {"web_cert", "web-cert", TL_SETTING_PATH, 0, 0, NULL, 0,
     "the web view's certificate chain (PEM): HTTPS, with web_key", "none: plain HTTP"},
    {"web_key", "web-key", TL_SETTING_PATH, 0, 0, NULL, 0, "the web view's private key (PEM)",
     "none"},
    {"web_behind_proxy", "web-behind-proxy", TL_SETTING_BOOL, 0, 0, "no", 0,
     "allow plain HTTP on an address that is not loopback, for a reverse proxy", NULL},
    {"web_url", "web-url", TL_SETTING_TEXT, 1, 512, NULL, 0,
     "what the web view's links start with, behind a proxy", "from web_listen"},
    {"web_assets", "web-assets", TL_SETTING_PATH, 0, 0, NULL, 0,
     "where the web view's style, script and player are", "share/tierline/web beside bin/"},
    {"web_link_ms", "web-link-ms", TL_SETTING_UINT, 1000, 600000, "60000", 0,
     "how long a sign-in link works, 1000..600000", NULL},
    {"log_level", "log-level", TL_SETTING_LEVEL, 0, 0, "info", TL_SETTING_RELOAD,
     "debug, info, warn or error", NULL},
    /* The desk's (relay/desk/desk_settings.h): read at the start, each checked by its parser. */
    {"sla_zone", NULL, TL_SETTING_TEXT, 1, 128, NULL, 0,
     "the SLA calendar's time zone, an IANA name like Europe/Berlin", "UTC"},
    {"sla_hours", NULL, TL_SETTING_TEXT, 1, 0, NULL, 0,
     "business hours: 24x7, or days and hours like mon-fri 09:00-17:00; sat 10:00-14:00",
     "24x7, or DATA/desk.json's"},
    {"sla_holidays", NULL, TL_SETTING_TEXT, 1, 0, NULL, 0,
     "dates not worked, or worked other hours: 2026-12-25, 2026-12-24 09:00-12:00", "none"},
    {"sla_s1", NULL, TL_SETTING_TEXT, 1, 256, NULL, 0,
     "S1's first response and resolution targets, then tiers: 30m 4h, tier3 - 8h", "30m 4h"},
    {"sla_s2", NULL, TL_SETTING_TEXT, 1, 256, NULL, 0, "S2's targets, as sla_s1", "1h 8h"},
    {"sla_s3", NULL, TL_SETTING_TEXT, 1, 256, NULL, 0, "S3's targets, as sla_s1", "4h 24h"},
    {"sla_s4", NULL, TL_SETTING_TEXT, 1, 256, NULL, 0, "S4's targets, as sla_s1", "6h 72h"},
    {"sla_vendor", NULL, TL_SETTING_TEXT, 1, 32, NULL, 0, "the vendor clock's target, like 24h",
     "no target"},
    {"retention_recordings", NULL, TL_SETTING_TEXT, 1, 16, NULL, 0,
     "days terminal recordings are kept, 1..36500 or forever", "forever"},
    {"retention_transcripts", NULL, TL_SETTING_TEXT, 1, 16, NULL, 0,
     "days the output of run and fix is kept, 1..36500 or forever", "forever"},
    {"retention_events", NULL, TL_SETTING_TEXT, 1, 16, NULL, 0,
     "days other evidence is kept, 1..36500 or forever", "forever"},
    {0},
};

int tl_admin_settings_load(const char *config_path, tl_settings_t *settings, char *why,
                           size_t why_size)
{
    return tl_settings_read(settings, tl_admin_relay_settings, config_path, TL_ADMIN_CONFIG_ENV,
                            TL_ADMIN_CONFIG_DEFAULT, why, why_size);
}

/* Whether the words hold --data (or --data=DIR) before a "--". */
static int data_given(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "--data") == 0 || strncmp(argv[i], "--data=", 7) == 0)
            return 1;
    }
    return 0;
}

int tl_admin_parse(const tl_admin_command_t *cmd, int argc, char **argv, void *result)
{
    tl_cli_arg_t options[TL_CLI_OPTIONS_MAX + 1];
    tl_cli_spec_t spec = *cmd->args;
    const tl_cli_arg_t *data = NULL;
    int reads_config = 0; /* a command with --config (serve) reads the file itself */
    size_t count = 0;
    for (; spec.options != NULL && spec.options[count].name != NULL; count++) {
        if (count >= TL_CLI_OPTIONS_MAX)
            return tl_admin_fail("reading the command line", TL_EINVAL);
        options[count] = spec.options[count];
        if (strcmp(options[count].name, "data") == 0) {
            data = &spec.options[count];
            /* Without --data, the configured folder: the option is never required. */
            options[count].flags &= ~(unsigned)TL_CLI_REQUIRED;
        }
        reads_config |= strcmp(options[count].name, "config") == 0;
    }
    options[count] = (tl_cli_arg_t){0};
    if (data != NULL && !reads_config && !data_given(argc, argv)) {
        static tl_settings_t settings;
        char why[1024];
        if (tl_admin_settings_load(NULL, &settings, why, sizeof why) != 0) {
            fprintf(stderr, TL_ADMIN_PROGRAM " %s: %s\n", cmd->name, why);
            return TL_EXIT_USAGE;
        }
        const char *dir = tl_settings_text(&settings, "data_dir");
        size_t at = data->word != 0 ? data->word : data->out;
        if (at != 0)
            memcpy((char *)result + at - 1, &dir, sizeof dir);
    }
    spec.options = spec.options != NULL ? options : NULL;
    tl_cli_error_t error;
    if (tl_cli_args_parse(&spec, argc - 2, argv + 2, result, &error) == 0)
        return 0;
    return tl_cli_error_write(stderr, TL_ADMIN_PROGRAM, cmd->name, cmd->usage, &spec, &error);
}

/* ---- config check | show ------------------------------------------------------------ */

static const char *const config_verbs[] = {"check", "show", NULL};

struct config_args {
    int verb; /* 0 check, 1 show */
    const char *config;
};

/* The desk's keys, with DATA/desk.json when the data directory has one (relay/desk/desk_config.h).
 */
static int check_desk(const tl_settings_t *settings, char *why, size_t why_size)
{
    char path[4096];
    const char *source;
    tl_sla_config_t *sla = NULL;
    int rc = tl_desk_settings_check(settings, why, why_size);
    if (rc == 0 && tl_datadir_path(tl_settings_text(settings, "data_dir"), TL_DESK_CONFIG_FILE,
                                   path, sizeof path) == 0)
        rc = tl_desk_config_load(path, settings, tl_zone_lookup_files, NULL, &sla, &source, why,
                                 why_size);
    tl_sla_config_free(sla);
    return rc;
}

static int cmd_config(const tl_admin_command_t *cmd, int argc, char **argv)
{
    struct config_args args = {0};
    char why[1024];
    int status = tl_admin_parse(cmd, argc, argv, &args);
    if (status != 0)
        return status;
    tl_settings_t *settings = malloc(sizeof *settings);
    if (settings == NULL)
        return tl_admin_fail("reading the configuration", TL_ENOMEM);
    if (tl_admin_settings_load(args.config, settings, why, sizeof why) != 0 ||
        check_desk(settings, why, sizeof why) != 0) {
        fprintf(stderr, "%s\n", why);
        status = TL_EXIT_USAGE;
    } else {
        tl_settings_report(settings, args.verb == 1, stdout);
        status = TL_EXIT_OK;
    }
    free(settings);
    return status;
}

const tl_admin_command_t tl_admin_config = {
    .name = "config",
    .usage = "config check|show [--config FILE]",
    .summary = "check the configuration file (FILE:LINE: reason, exit 2), or show the settings it "
               "makes and where each comes from",
    .args =
        &(const tl_cli_spec_t){
            .options = (const tl_cli_arg_t[]){{.name = "config",
                                               .metavar = "FILE",
                                               .help = "the file (default $" TL_ADMIN_CONFIG_ENV
                                                       " or " TL_ADMIN_CONFIG_DEFAULT ")",
                                               .out = TL_CLI_AT(struct config_args, config)},
                                              {0}},
            .positionals = (const tl_cli_arg_t[]){{.name = "check|show",
                                                   .kind = TL_CLI_WORD,
                                                   .words = config_verbs,
                                                   .out = TL_CLI_AT(struct config_args, verb)},
                                                  {0}},
            .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_config,
    .example = "tierline-relay config check\n"
               "tierline-relay config show --config /etc/tierline/relay.conf\n",
};
