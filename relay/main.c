/*
 * tierline-relay: the admins' command table and its dispatcher.
 *
 * Each command is one entry { name, usage, summary, argument spec, run,
 * example }, in the file of its group under relay/cmd/ (relay/cmd/admin.h);
 * serve, which runs the relay, is here. The program's --help and each
 * command's --help are built from the same table and specs, and the
 * dispatcher answers a command's --help before running it.
 */
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "relay/cmd/admin.h"
#include "relay/desk/desk_settings.h"
#include "relay/serve.h"
#include "relay/store/datadir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PROGRAM TL_ADMIN_PROGRAM

/* ---- serve ------------------------------------------------------------------- */

struct serve_args {
    const char *config, *data, *listen, *ssh_listen, *log_level_word, *metrics_listen;
    int metrics_public;
    const char *web_listen, *web_cert, *web_key, *web_url, *web_assets;
    int web_behind_proxy;
    uint64_t web_link_ms;
    uint64_t heartbeat_ms, handshake_timeout_ms, agent_max_connections, agent_accept_rate;
    uint64_t ssh_max_connections, ssh_preauth_per_address, ssh_auth_timeout_ms; /* 0: not given */
    uint64_t ssh_keepalive_ms, ssh_idle_timeout_ms;                             /* 0: not given */
    uint64_t take_wait_ms;                                                      /* 0: not given */
    uint64_t files_max_bytes, files_max_count;                                  /* 0: not given */
    enum tl_log_level log_level;
};

static const tl_admin_command_t serve;
static struct serve_args serve_given; /* the command line, laid over the file at each reload */

/* Built-in defaults, then the file, then the command line (docs/configuration.md). */
static int serve_settings(void *ctx, tl_settings_t *settings, char *why, size_t why_size)
{
    const struct serve_args *args = ctx;
    int rc = tl_admin_settings_load(args->config, settings, why, why_size);
    if (rc == 0)
        rc = tl_settings_from_args(settings, serve.args, args, why, why_size);
    /* The desk's keys are read at the start; a reload with a bad one changes nothing. */
    if (rc == 0)
        rc = tl_desk_settings_check(settings, why, why_size);
    return rc;
}

static int cmd_serve(const tl_admin_command_t *cmd, int argc, char **argv)
{
    static tl_settings_t settings;
    char why[1024];
    int status = tl_admin_parse(cmd, argc, argv, &serve_given);
    if (status != 0)
        return status;
    if (serve_settings(&serve_given, &settings, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM " serve: %s\n", why);
        return TL_EXIT_USAGE;
    }
    const char *data = tl_settings_text(&settings, "data_dir");
    const char *ssh_listen = tl_settings_text(&settings, "ssh_listen");
    /* The SSH address chosen at init serves technicians unless the settings say otherwise. */
    char stored_ssh_listen[128];
    if (ssh_listen == NULL) {
        int rc = tl_datadir_ssh_listen(data, stored_ssh_listen, sizeof stored_ssh_listen);
        if (rc == 0)
            ssh_listen = stored_ssh_listen;
        else if (rc != TL_ENOTFOUND && rc != -ENOENT)
            return tl_admin_fail("reading the relay settings", rc);
    }
    tl_relay_config_t config = {
        .data_dir = data,
        .listen = tl_settings_text(&settings, "listen"),
        .ssh_listen = ssh_listen,
        .heartbeat_ms = (uint32_t)tl_settings_number(&settings, "heartbeat_ms"),
        .handshake_timeout_ms = (uint32_t)tl_settings_number(&settings, "handshake_timeout_ms"),
        .max_agents = (uint32_t)tl_settings_number(&settings, "agent_max_connections"),
        .agent_accept_rate = (uint32_t)tl_settings_number(&settings, "agent_accept_rate"),
        .ssh_max_connections = (uint32_t)tl_settings_number(&settings, "ssh_max_connections"),
        .ssh_preauth_per_address =
            (uint32_t)tl_settings_number(&settings, "ssh_preauth_per_address"),
        .ssh_auth_timeout_ms = (uint32_t)tl_settings_number(&settings, "ssh_auth_timeout_ms"),
        .ssh_keepalive_ms = (uint32_t)tl_settings_number(&settings, "ssh_keepalive_ms"),
        .ssh_idle_timeout_ms = (uint32_t)tl_settings_number(&settings, "ssh_idle_timeout_ms"),
        .take_wait_ms = (uint32_t)tl_settings_number(&settings, "take_wait_ms"),
        .files_max_bytes = tl_settings_number(&settings, "files_max_bytes"),
        .files_max_count = (uint32_t)tl_settings_number(&settings, "files_max_count"),
        .metrics_listen = tl_settings_text(&settings, "metrics_listen"),
        .metrics_public = (int)tl_settings_number(&settings, "metrics_public"),
        .settings = &settings,
        .reload = serve_settings,
        .reload_ctx = &serve_given,
        .web_listen = tl_settings_text(&settings, "web_listen"),
        .web_cert = tl_settings_text(&settings, "web_cert"),
        .web_key = tl_settings_text(&settings, "web_key"),
        .web_behind_proxy = (int)tl_settings_number(&settings, "web_behind_proxy"),
        .web_url = tl_settings_text(&settings, "web_url"),
        .web_assets = tl_settings_text(&settings, "web_assets"),
        .web_link_ms = (uint32_t)tl_settings_number(&settings, "web_link_ms"),
    };
    tl_log_set_level((enum tl_log_level)tl_settings_number(&settings, "log_level"));
    int rc = tl_relay_serve(&config);
    return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

/* A number option of serve's: in a range, "--NAME wants MIN..MAX" otherwise. */
#define SERVE_NUMBER(option, member, low, high, help_text)                                         \
    {                                                                                              \
        .name = option, .metavar = "N", .help = (help_text), .flags = TL_CLI_ALONE,                \
        .kind = TL_CLI_UINT, .min = (low), .max = (high),                                          \
        .out = TL_CLI_AT(struct serve_args, member),                                               \
        .problem = "--" option " wants " #low ".." #high                                           \
    }

static const tl_cli_arg_t serve_options[] = {
    {.name = "config",
     .metavar = "FILE",
     .help = "the configuration file (default $" TL_ADMIN_CONFIG_ENV " or " TL_ADMIN_CONFIG_DEFAULT
             "); options given here override it",
     .word = TL_CLI_AT(struct serve_args, config)},
    {.name = "data",
     .metavar = "DIR",
     .help = "the relay's folder, from init (default: relay.conf's "
             "data_dir, " TL_ADMIN_DATA_DEFAULT ")",
     .word = TL_CLI_AT(struct serve_args, data)},
    {.name = "listen",
     .metavar = "ADDR:PORT",
     .help = "agents' address instead of the one chosen at init",
     .word = TL_CLI_AT(struct serve_args, listen)},
    {.name = "ssh-listen",
     .metavar = "ADDR:PORT",
     .help = "technicians' SSH address instead of the one chosen at init",
     .word = TL_CLI_AT(struct serve_args, ssh_listen)},
    SERVE_NUMBER("heartbeat-ms", heartbeat_ms, 50, 3600000,
                 "how often agents ping the relay, 50..3600000"),
    SERVE_NUMBER("handshake-timeout-ms", handshake_timeout_ms, 50, 600000,
                 "how long a TLS handshake may take, 50..600000"),
    SERVE_NUMBER("agent-max-connections", agent_max_connections, 1, 1000000,
                 "agent connections at most, 1..1000000 (default 20000)"),
    SERVE_NUMBER("agent-accept-rate", agent_accept_rate, 1, 1000000,
                 "new agent connections accepted a second at most, 1..1000000 (default 2000)"),
    /* The SSH front end's limits (docs/technicians.md "Limits"). */
    SERVE_NUMBER("ssh-max-connections", ssh_max_connections, 1, 65536,
                 "SSH connections at most, 1..65536 (default 256)"),
    SERVE_NUMBER("ssh-preauth-per-address", ssh_preauth_per_address, 1, 1024,
                 "connections one address may hold before logging in, "
                 "1..1024 (default "
                 "32)"),
    SERVE_NUMBER("ssh-auth-timeout-ms", ssh_auth_timeout_ms, 1000, 600000,
                 "how long an SSH client has to log in, 1000..600000 "
                 "(default 20000)"),
    SERVE_NUMBER("ssh-keepalive-ms", ssh_keepalive_ms, 1000, 3600000,
                 "how often a logged-in SSH client is asked whether it is "
                 "still "
                 "there; three unanswered end it, 1000..3600000 (default "
                 "15000)"),
    SERVE_NUMBER("ssh-idle-timeout-ms", ssh_idle_timeout_ms, 1000, 86400000,
                 "an SSH connection whose channels carried nothing for "
                 "this long "
                 "is closed, 1000..86400000 (default 1800000: 30 minutes)"),
    SERVE_NUMBER("take-wait-ms", take_wait_ms, 100, 600000,
                 "how long join --take waits for the technician in control to answer, "
                 "100..600000 (default 30000)"),
    SERVE_NUMBER("files-max-bytes", files_max_bytes, 1, 67108864,
                 "the largest file a technician may copy from or to a machine with scp or sftp, "
                 "1..67108864 (default 67108864: 64 MiB, the largest evidence item)"),
    SERVE_NUMBER("files-max-count", files_max_count, 1, 100000,
                 "files one scp or sftp session may open on machines, 1..100000 (default 1000)"),
    {.name = "metrics-listen",
     .metavar = "ADDR:PORT",
     .help = "serve Prometheus metrics at GET /metrics on this loopback address "
             "(e.g. 127.0.0.1:9465); off without it",
     .word = TL_CLI_AT(struct serve_args, metrics_listen)},
    {.name = "metrics-public",
     .help = "allow --metrics-listen on an address that is not loopback",
     .out = TL_CLI_AT(struct serve_args, metrics_public)},
    /* The web view (docs/web.md). */
    {.name = "web-listen",
     .metavar = "ADDR:PORT",
     .help = "serve the read-only web view on this address (loopback unless "
             "HTTPS or --web-behind-proxy); off without it",
     .word = TL_CLI_AT(struct serve_args, web_listen)},
    {.name = "web-cert",
     .metavar = "FILE",
     .help = "the web view's certificate chain (PEM): HTTPS, with --web-key",
     .word = TL_CLI_AT(struct serve_args, web_cert)},
    {.name = "web-key",
     .metavar = "FILE",
     .help = "the web view's private key (PEM)",
     .word = TL_CLI_AT(struct serve_args, web_key)},
    {.name = "web-behind-proxy",
     .help = "allow plain HTTP on an address that is not loopback, for a "
             "reverse "
             "proxy that adds TLS",
     .out = TL_CLI_AT(struct serve_args, web_behind_proxy)},
    {.name = "web-url",
     .metavar = "URL",
     .help = "what sign-in links start with (the proxy's address); default "
             "from --web-listen",
     .word = TL_CLI_AT(struct serve_args, web_url)},
    {.name = "web-assets",
     .metavar = "DIR",
     .help = "where the web view's style, script and player are",
     .word = TL_CLI_AT(struct serve_args, web_assets)},
    SERVE_NUMBER("web-link-ms", web_link_ms, 1000, 600000,
                 "how long a sign-in link works, 1000..600000 (default "
                 "60000)"),
    {.name = "log-level",
     .metavar = "LEVEL",
     .help = "debug, info, warn or error",
     .flags = TL_CLI_ALONE,
     .kind = TL_CLI_CHECK,
     .check = tl_admin_log_level,
     .out = TL_CLI_AT(struct serve_args, log_level),
     .word = TL_CLI_AT(struct serve_args, log_level_word),
     .problem = "--log-level wants debug, info, warn or error"},
    {0}};

static const tl_admin_command_t serve = {
    .name = "serve",
    .usage = "serve [--config FILE] [--data DIR] [--listen ADDR:PORT] [--ssh-listen ADDR:PORT] "
             "[--heartbeat-ms N] "
             "[--handshake-timeout-ms N] [--agent-max-connections N] [--agent-accept-rate N] "
             "[--ssh-max-connections N] "
             "[--ssh-preauth-per-address N] "
             "[--ssh-auth-timeout-ms N] [--ssh-keepalive-ms N] [--ssh-idle-timeout-ms N] "
             "[--take-wait-ms N] [--files-max-bytes N] [--files-max-count N] [--metrics-listen "
             "ADDR:PORT [--metrics-public]] [--web-listen "
             "ADDR:PORT "
             "[--web-cert FILE --web-key FILE] [--web-behind-proxy] [--web-url URL] "
             "[--web-assets DIR] [--web-link-ms N]] [--log-level LEVEL]",
    .summary = "accept agents over mutual TLS 1.3, and technicians over SSH (the address chosen at "
               "init, or --ssh-listen)",
    .args = &(const tl_cli_spec_t){.options = serve_options, .flags = TL_CLI_DOUBLE_DASH},
    .run = cmd_serve,
    .example = "tierline-relay serve &\n"
               "tierline-relay serve --config /etc/tierline/relay.conf --log-level debug &\n",
};

/* ---- the table ----------------------------------------------------------------------- */

static const tl_admin_command_t *const commands[] = {
    &tl_admin_init,          &serve,
    &tl_admin_enroll_code,   &tl_admin_devices,
    &tl_admin_tickets,       &tl_admin_ticket,
    &tl_admin_audit_verify,  &tl_admin_status,
    &tl_admin_audit_recover, &tl_admin_evidence,
    &tl_admin_user,          &tl_admin_roles,
    &tl_admin_host_key,      &tl_admin_kb,
    &tl_admin_audit,         &tl_admin_catalogue,
    &tl_admin_runbook,       &tl_admin_retention,
    &tl_admin_config,
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static char *help_text(void)
{
    static char text[8192];
    size_t used = 0;
    int rc = tl_format_append(text, sizeof text, &used,
                              "usage: " PROGRAM " COMMAND [OPTIONS]\n\n"
                              "The Tierline relay: accepts agents over mutual TLS 1.3 and "
                              "technicians over SSH;\nkeeps devices, tickets, evidence, "
                              "session recordings and the audit log.\n\nCommands:\n");
    for (size_t i = 0; rc == 0 && i < COMMAND_COUNT; i++)
        rc = tl_format_append(text, sizeof text, &used, "  %-13s %s\n      %s %s\n",
                              commands[i]->name, commands[i]->summary, PROGRAM, commands[i]->usage);
    if (rc == 0)
        tl_format_append(text, sizeof text, &used,
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
        const tl_admin_command_t *cmd = commands[i];
        if (strcmp(argv[1], cmd->name) != 0)
            continue;
        /* Help is answered here, before the command reads or changes anything. */
        if (tl_cli_wants_help(argc, argv, 2, -1, NULL)) {
            tl_admin_help_write(stdout, cmd);
            return TL_EXIT_OK;
        }
        return cmd->run(cmd, argc, argv);
    }
    return tl_cli_unknown(PROGRAM, argv[1]);
}
