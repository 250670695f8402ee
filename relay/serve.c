/*
 * `tierline-relay serve` (relay/serve.h): the relay's parts created, wired
 * and stopped in order. What each part does is in its own module; this file
 * only decides the order, the defaults and the wiring.
 */
#include "relay/serve.h"
#include "proto/addr.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/fsutil.h"
#include "proto/keys.h"
#include "proto/log.h"
#include "proto/sdnotify.h"
#include "relay/cmd/commands.h"
#include "relay/desk/clocks.h"
#include "relay/desk/desk_config.h"
#include "relay/metrics_serve.h"
#include "relay/net/agent_server.h"
#include "relay/net/log_limit.h"
#include "relay/net/registry.h"
#include "relay/net/ssh_front.h"
#include "relay/net/ssh_logins.h"
#include "relay/sessions/sessions.h"
#include "relay/store/audit_chain.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/audit_key.h"
#include "relay/store/datadir.h"
#include "relay/store/metrics.h"
#include "relay/store/status.h"
#include "relay/store/worker.h"
#include "relay/web.h"
#include "tl_version.h"

#include <openssl/evp.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct relay {
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint, sighup;
    tl_settings_t *settings; /* what is in force: applied at start and by reloads */
    tl_store_t *store;
    tl_audit_chain_t *chain;
    tl_evidence_store_t *evidence;
    tl_worker_t *worker;
    tl_audit_checkpoints_t *checkpoints; /* the log's signed checkpoints, made on the worker */
    int lock_fd; /* DATA/relay.lock, held while serving (relay/store/status.h) */
    tl_registry_t *registry;
    tl_agent_server_t *agents;
    tl_relay_config_t config;
    /* technicians */
    tl_ssh_front_t *ssh;
    tl_ssh_logins_t *logins;
    tl_commands_ctx_t commands;
    tl_sessions_t *sessions;
    tl_sla_config_t *sla;        /* DATA/desk.json, or the default */
    tl_metrics_serve_t *metrics; /* with --metrics-listen */
    tl_web_t *web;               /* with --web-listen */
    int stopping;
};

/* ---- the agents' side and the sessions (relay/net/agent_link.h) ---------------------------- */

/* Without an SSH front end there are no sessions, and nothing to tell. */
static void agent_closed(void *ctx, tl_agent_link_t *agent)
{
    struct relay *relay = ctx;
    if (relay->sessions != NULL)
        tl_sessions_agent_closed(relay->sessions, agent);
}

static void grant_ended(void *ctx, tl_agent_link_t *agent, json_t *body)
{
    struct relay *relay = ctx;
    if (relay->sessions != NULL)
        tl_sessions_grant_ended(relay->sessions, agent, body);
}

static tl_agent_link_t *find_agent(void *ctx, int64_t device_id)
{
    struct relay *relay = ctx;
    return tl_agent_server_find(relay->agents, device_id);
}

static int start_agents(struct relay *relay, const char *listen)
{
    struct sockaddr_storage address;
    int rc = tl_addr_parse(listen, &address);
    if (rc != 0) {
        fprintf(stderr, "tierline-relay: bad listen address '%s' (want ADDR:PORT)\n", listen);
        return rc;
    }
    if ((rc = tl_agent_server_listen(relay->agents, relay->worker, listen)) != 0) {
        fprintf(stderr, "tierline-relay: cannot listen on %s: %s\n", listen, tl_strerror(rc));
        return rc;
    }
    return 0;
}

/* ---- technicians ------------------------------------------------------------------ */

static void relay_dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv)
{
    struct relay *relay = ctx;
    tl_commands_dispatch(&relay->commands, exec, argc, argv);
}

static int ssh_authorize(void *ctx, const char *user, ssh_key key, tl_technician_t *out)
{
    struct relay *relay = ctx;
    return tl_ssh_logins_authorize(relay->logins, user, key, out);
}

/* Every file moved is kept as evidence: no larger than one evidence item. */
static uint64_t file_max_bytes(const struct relay *relay, uint64_t wanted)
{
    uint64_t limit = wanted != 0 ? wanted : TL_SESSIONS_FILE_MAX_BYTES;
    return limit < relay->config.max_upload_bytes ? limit : relay->config.max_upload_bytes;
}

static void ssh_on_login(void *ctx, const char *user, const char *address, const char *fingerprint,
                         int ok, const char *reason)
{
    struct relay *relay = ctx;
    tl_ssh_logins_report(relay->logins, user, address, fingerprint, ok, reason);
}

static void ssh_on_login_ok(void *ctx, uint64_t login_id, const tl_technician_t *technician)
{
    struct relay *relay = ctx;
    tl_ssh_logins_report_ok(relay->logins, login_id, technician);
}

/* The users' table changed: the web view's links and sessions are held to it too. */
static void on_users_change(void *data, tl_ssh_logins_t *logins)
{
    struct relay *relay = data;
    tl_web_recheck(relay->web, tl_ssh_logins_recheck, tl_users_recheck_reason, logins);
}

static int start_technicians(struct relay *relay)
{
    char key_path[4096];
    int rc = tl_datadir_path(relay->config.data_dir, TL_DATADIR_KEY, key_path, sizeof key_path);
    if (rc != 0)
        return rc;
    relay->sessions =
        tl_sessions_new(relay->loop, relay->worker, relay->config.data_dir, find_agent, relay, &rc);
    if (relay->sessions == NULL) {
        fprintf(stderr, "tierline-relay: cannot prepare sessions: %s\n", tl_strerror(rc));
        return rc;
    }
    tl_sessions_set_take_wait(relay->sessions, relay->config.take_wait_ms);
    tl_sessions_set_file_limits(relay->sessions,
                                file_max_bytes(relay, relay->config.files_max_bytes),
                                relay->config.files_max_count);
    relay->commands.worker = relay->worker;
    relay->commands.sessions = relay->sessions;
    /* The relay's own key signs evidence bundles (ticket export): the one technicians pin. */
    if ((rc = tl_key_load(key_path, &relay->commands.bundle_key)) != 0) {
        fprintf(stderr, "tierline-relay: cannot load the relay key: %s\n", tl_strerror(rc));
        return rc;
    }
    relay->commands.sla = relay->sla;
    /* A ticket's close and a session's end each get a checkpoint of the audit log. */
    relay->commands.checkpoints = relay->checkpoints;
    tl_sessions_set_checkpoints(relay->sessions, relay->checkpoints);
    relay->commands.data_dir = relay->config.data_dir;
    relay->commands.loop = relay->loop;
    relay->logins = tl_ssh_logins_start(relay->loop, relay->worker, &rc);
    if (relay->logins == NULL)
        return rc;
    tl_ssh_front_config_t config = {
        .listen = relay->config.ssh_listen,
        .host_key_path = key_path,
        .dispatch = relay_dispatch,
        .authorize = ssh_authorize,
        .on_login = ssh_on_login,
        .on_login_ok = ssh_on_login_ok,
        .ctx = relay,
        .max_sessions = relay->config.ssh_max_connections,
        .max_preauth_per_address = relay->config.ssh_preauth_per_address,
        .auth_timeout_ms = relay->config.ssh_auth_timeout_ms,
        .keepalive_ms = relay->config.ssh_keepalive_ms,
        .idle_timeout_ms = relay->config.ssh_idle_timeout_ms,
    };
    relay->ssh = tl_ssh_front_start(relay->loop, &config, &rc);
    if (relay->ssh == NULL) {
        tl_ssh_logins_stop(relay->logins); /* no more reloads */
        fprintf(stderr, "tierline-relay: cannot start the SSH front end on %s: %s\n",
                relay->config.ssh_listen, tl_strerror(rc));
        return rc;
    }
    tl_ssh_logins_set_front(relay->logins, relay->ssh);
    tl_ssh_logins_on_change(relay->logins, on_users_change, relay);
    tl_log_info("technicians' SSH listening addr=%s", relay->config.ssh_listen);
    return 0;
}

/* ---- metrics ---------------------------------------------------------------------- */

/* The endpoint belongs on loopback (docs/metrics.md): anyone who reaches it reads the counters. */
static int check_metrics_address(const tl_relay_config_t *config)
{
    struct sockaddr_storage address;
    if (config->metrics_listen == NULL)
        return 0;
    if (tl_addr_parse(config->metrics_listen, &address) != 0) {
        fprintf(stderr, "tierline-relay: bad metrics address '%s' (want ADDR:PORT)\n",
                config->metrics_listen);
        return TL_EINVAL;
    }
    if (!config->metrics_public && !tl_metrics_serve_loopback(config->metrics_listen)) {
        fprintf(stderr,
                "tierline-relay: refusing to serve metrics on %s: not a loopback address (use "
                "--metrics-public to allow it)\n",
                config->metrics_listen);
        return TL_EINVAL;
    }
    return 0;
}

static int start_metrics(struct relay *relay)
{
    int rc = 0;
    relay->metrics = tl_metrics_serve_start(relay->loop, relay->worker, relay->sla,
                                            relay->config.metrics_listen, &rc);
    if (relay->metrics == NULL) {
        fprintf(stderr, "tierline-relay: cannot serve metrics on %s: %s\n",
                relay->config.metrics_listen, tl_strerror(rc));
        return rc;
    }
    tl_log_info("metrics listening addr=%s", relay->config.metrics_listen);
    return 0;
}

/* ---- the web view ------------------------------------------------------------------ */

/* The web view's settings; its files, unless --web-assets names them, are share/tierline/web
 * beside bin/ (installed or staged by the build), found into assets. */
static tl_web_config_t web_config(const tl_relay_config_t *config, char *assets, size_t size)
{
    const char *assets_dir = config->web_assets;
    if (assets_dir == NULL)
        assets_dir = tl_fs_shared_dir("web", TL_WEB_ASSETS_DIR, assets, size) == 0
                         ? assets
                         : TL_WEB_ASSETS_DIR; /* missing: the pages say the player is */
    tl_web_config_t web = {
        .listen = config->web_listen,
        .cert_path = config->web_cert,
        .key_path = config->web_key,
        .behind_proxy = config->web_behind_proxy,
        .url = config->web_url,
        .assets_dir = assets_dir,
        .link_ms = config->web_link_ms,
    };
    return web;
}

/* Before anything opens: a web address that may not be served stops the relay at once. */
static int check_web(const tl_relay_config_t *config)
{
    char problem[512];
    if (config->web_listen == NULL)
        return 0;
    char assets[PATH_MAX];
    tl_web_config_t web = web_config(config, assets, sizeof assets);
    int rc = tl_web_check(&web, problem, sizeof problem);
    if (rc == 0 && config->ssh_listen == NULL) {
        snprintf(problem, sizeof problem,
                 "the web view needs the SSH front end (its links come from `web` over SSH)");
        rc = TL_EINVAL;
    }
    if (rc != 0)
        fprintf(stderr, "tierline-relay: %s\n", problem);
    return rc;
}

static int start_web(struct relay *relay)
{
    char problem[512];
    int rc = 0;
    char assets[PATH_MAX];
    tl_web_config_t web = web_config(&relay->config, assets, sizeof assets);
    relay->web = tl_web_start(relay->loop, &relay->commands, &web, &rc, problem, sizeof problem);
    if (relay->web == NULL) {
        fprintf(stderr, "tierline-relay: %s\n", problem);
        return rc;
    }
    tl_log_info("web view listening addr=%s url=%s https=%d", relay->config.web_listen,
                relay->commands.web_url, relay->config.web_cert != NULL);
    return 0;
}

/* ---- start and stop ------------------------------------------------------------- */

static void on_signal(uv_signal_t *handle, int signum)
{
    struct relay *relay = handle->data;
    if (relay->stopping)
        return;
    relay->stopping = 1;
    tl_sdnotify_stopping();
    tl_log_info("shutting down signal=%d agents=%u", signum, tl_agent_server_count(relay->agents));
    uv_close((uv_handle_t *)&relay->sigterm, NULL);
    uv_close((uv_handle_t *)&relay->sigint, NULL);
    uv_close((uv_handle_t *)&relay->sighup, NULL);
    tl_agent_server_stop(relay->agents);
    tl_metrics_serve_stop(relay->metrics);
    relay->metrics = NULL;
    tl_web_stop(relay->web);
    if (relay->ssh != NULL) {
        tl_ssh_front_stop(relay->ssh);
        relay->ssh = NULL;
    }
    tl_ssh_logins_stop(relay->logins);
}

/* ---- reload (SIGHUP) ---------------------------------------------------------------- */

/* The settings that can change at run time, put in force. */
static void apply_runtime(struct relay *relay, const tl_settings_t *settings)
{
    tl_log_set_level((enum tl_log_level)tl_settings_number(settings, "log_level"));
    if (relay->sessions != NULL) {
        tl_sessions_set_take_wait(relay->sessions,
                                  (uint32_t)tl_settings_number(settings, "take_wait_ms"));
        tl_sessions_set_file_limits(
            relay->sessions, file_max_bytes(relay, tl_settings_number(settings, "files_max_bytes")),
            (uint32_t)tl_settings_number(settings, "files_max_count"));
    }
    if (relay->ssh == NULL)
        return;
    tl_ssh_front_config_t limits = {
        .max_sessions = (uint32_t)tl_settings_number(settings, "ssh_max_connections"),
        .max_preauth_per_address =
            (uint32_t)tl_settings_number(settings, "ssh_preauth_per_address"),
        .auth_timeout_ms = (uint32_t)tl_settings_number(settings, "ssh_auth_timeout_ms"),
        .keepalive_ms = (uint32_t)tl_settings_number(settings, "ssh_keepalive_ms"),
        .idle_timeout_ms = (uint32_t)tl_settings_number(settings, "ssh_idle_timeout_ms"),
    };
    tl_ssh_front_set_limits(relay->ssh, &limits);
}

/* The reload itself, framed for the service manager by tl_sdnotify_reload(). */
static int reread(void *ctx)
{
    struct relay *relay = ctx;
    int rc = tl_settings_reload(relay->settings, relay->config.reload, relay->config.reload_ctx);
    if (rc == 0)
        apply_runtime(relay, relay->settings);
    return rc;
}

/*
 * Reads the file again (the command line still overrides it). What may change at run time
 * changes; what needs a restart keeps its value and is named in the log; a file with a fault
 * changes nothing.
 */
static void on_reload(uv_signal_t *handle, int signum)
{
    struct relay *relay = handle->data;
    (void)signum;
    if (relay->settings == NULL || relay->config.reload == NULL) {
        tl_log_warn("reload ignored: no configuration to read");
        return;
    }
    tl_sdnotify_reload(reread, relay);
}

static int open_storage(struct relay *relay)
{
    char path[4096];
    const char *dir = relay->config.data_dir;
    /* Level 1: a transcript of binary output (1 MiB kept, about 2.5 MB of JSON) deflates
     * in about a quarter of the storage thread's time at level 6, about 25% larger
     * (docs/benchmarks.md, "Profiles"). Text compresses nearly as well either way. */
    tl_evidence_options_t evidence_options = {.max_item_bytes = relay->config.max_upload_bytes,
                                              .compression_level = 1};
    int rc;
    if ((rc = tl_datadir_path(dir, TL_DATADIR_DB, path, sizeof path)) != 0 ||
        (rc = tl_store_open(path, TL_STORE_OPEN_EXISTING, &relay->store)) != 0)
        return rc;
    /* The log must hold the chain the store records: a missing, shortened or different log
     * stops the relay here (docs/audit-format.md §7); lines a crash left unwritten go in now. */
    char problem[768];
    if ((rc = tl_datadir_path(dir, TL_DATADIR_AUDIT, path, sizeof path)) != 0)
        return rc;
    if ((rc = tl_audit_chain_open(relay->store, path, 0, &relay->chain, problem, sizeof problem)) !=
        0) {
        fprintf(stderr, "tierline-relay: refusing to serve: %s\n", problem);
        tl_log_error("refusing to serve: the audit log does not match the database problem=\"%s\"",
                     problem);
        return rc;
    }
    /* A data directory from before audit keys gets one now, on the record. */
    int created = 0;
    char key_name[TL_NOTE_NAME_MAX + 1];
    if ((rc = tl_audit_checkpoints_signer(dir, path, sizeof path, key_name)) != 0)
        return rc;
    if ((rc = tl_audit_key_ensure(path, key_name, relay->store, relay->chain, &created, problem,
                                  sizeof problem)) != 0) {
        fprintf(stderr, "tierline-relay: refusing to serve: %s\n", problem);
        tl_log_error("refusing to serve: no audit key problem=\"%s\"", problem);
        return rc;
    }
    if ((rc = tl_datadir_path(dir, TL_DATADIR_EVIDENCE, path, sizeof path)) != 0 ||
        (rc = tl_evidence_store_open(path, &evidence_options, &relay->evidence)) != 0)
        return rc;
    /* The registry of enrolled devices is read by the worker once the relay listens
     * (relay/net/agent_server.c): 11 s of the loop at 100,000 devices under load. */
    return tl_store_devices_all_offline(relay->store);
}

static void apply_defaults(tl_relay_config_t *config)
{
    if (config->heartbeat_ms == 0)
        config->heartbeat_ms = TL_RELAY_DEFAULT_HEARTBEAT_MS;
    if (config->handshake_timeout_ms == 0)
        config->handshake_timeout_ms = TL_RELAY_DEFAULT_HANDSHAKE_TIMEOUT_MS;
    if (config->max_agents == 0)
        config->max_agents = TL_RELAY_DEFAULT_MAX_AGENTS;
    if (config->agent_accept_rate == 0)
        config->agent_accept_rate = TL_RELAY_DEFAULT_ACCEPT_RATE;
    if (config->max_upload_bytes == 0)
        config->max_upload_bytes = TL_RELAY_DEFAULT_MAX_UPLOAD;
}

/*
 * Every agent and SSH connection holds a descriptor: the soft limit goes up
 * to what the configured maximums need, the hard limit too when the process
 * may (root, up to /proc/sys/fs/nr_open); a warning says when it cannot.
 */
static void raise_fd_limit(const tl_relay_config_t *config)
{
    unsigned long long want =
        (unsigned long long)config->max_agents + config->ssh_max_connections + 256;
    unsigned long long got = tl_fs_raise_fd_limit(want);
    if (got < want)
        tl_log_warn("open-file limit below the connection limits limit=%llu "
                    "agent_max_connections=%u ssh_max_connections=%u",
                    got, config->max_agents, config->ssh_max_connections);
}

/* relay.conf's desk keys or DATA/desk.json (relay/desk/desk_config.h): what does not parse stops
 * the relay. */
static int load_desk(struct relay *relay)
{
    char path[4096], why[1024] = "";
    const char *source = "default";
    int rc = tl_datadir_path(relay->config.data_dir, TL_DESK_CONFIG_FILE, path, sizeof path);
    if (rc != 0)
        tl_format(why, sizeof why, "%s: %s", path, tl_strerror(rc));
    else
        rc = tl_desk_config_load(path, relay->config.settings, tl_zone_lookup_files, NULL,
                                 &relay->sla, &source, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "tierline-relay: refusing to serve: %s\n", why);
        tl_log_error("refusing to serve: the desk configuration does not parse problem=\"%s\"",
                     why);
        return rc;
    }
    tl_log_info("desk configuration source=%s zone=%s",
                strcmp(source, "desk.json") == 0 ? path : source, tl_clocks_zone_name(relay->sla));
    return 0;
}

/* The registry, the agents' address, the lock and the storage, in that order. */
static int open_data_dir(struct relay *relay, char *listen, size_t listen_size)
{
    const tl_relay_config_t *config = &relay->config;
    int rc;
    relay->registry = tl_registry_new();
    if (relay->registry == NULL)
        return TL_ENOMEM;
    if (config->listen != NULL)
        snprintf(listen, listen_size, "%s", config->listen);
    else if ((rc = tl_datadir_listen(config->data_dir, listen, listen_size)) != 0)
        return rc;
    if ((rc = tl_status_lock(config->data_dir, &relay->lock_fd)) != 0) {
        if (rc == TL_EEXIST)
            fprintf(stderr, "tierline-relay: another tierline-relay is serving %s\n",
                    config->data_dir);
        else
            fprintf(stderr, "tierline-relay: cannot lock the data directory %s: %s\n",
                    config->data_dir, tl_strerror(rc));
        return rc;
    }
    if ((rc = open_storage(relay)) != 0) {
        if (rc != TL_EAUDIT)
            fprintf(stderr, "tierline-relay: cannot open the data directory %s: %s\n",
                    config->data_dir, tl_strerror(rc));
        return rc;
    }
    return 0;
}

/* The agents' side, its TLS key loaded; sessions hear of it through the hooks. */
static int new_agents(struct relay *relay)
{
    tl_agent_server_config_t agents = {
        .data_dir = relay->config.data_dir,
        .heartbeat_ms = relay->config.heartbeat_ms,
        .handshake_timeout_ms = relay->config.handshake_timeout_ms,
        .max_agents = relay->config.max_agents,
        .accept_rate = relay->config.agent_accept_rate,
        .max_upload_bytes = relay->config.max_upload_bytes,
        .registry = relay->registry,
        .hooks =
            {
                .ctx = relay,
                .agent_closed = agent_closed,
                .grant_ended = grant_ended,
                .channel_confirm = tl_sessions_channel_confirm,
                .channel_refuse = tl_sessions_channel_refuse,
                .channel_data = tl_sessions_channel_data,
                .channel_writable = tl_sessions_channel_writable,
                .channel_eof = tl_sessions_channel_eof,
                .channel_input_ack = tl_sessions_channel_input_ack,
                .channel_close = tl_sessions_channel_close,
            },
    };
    int rc = 0;
    relay->agents = tl_agent_server_new(relay->loop, &agents, &rc);
    if (relay->agents == NULL)
        fprintf(stderr, "tierline-relay: cannot load the relay key: %s\n", tl_strerror(rc));
    return rc;
}

static void install_signals(struct relay *relay)
{
    uv_signal_init(relay->loop, &relay->sigterm);
    uv_signal_init(relay->loop, &relay->sigint);
    relay->sigterm.data = relay->sigint.data = relay;
    uv_signal_start(&relay->sigterm, on_signal, SIGTERM);
    uv_signal_start(&relay->sigint, on_signal, SIGINT);
    uv_signal_init(relay->loop, &relay->sighup);
    relay->sighup.data = relay;
    uv_signal_start(&relay->sighup, on_reload, SIGHUP);
}

/*
 * The order matters: the last minute's refused logins (those of the
 * shutdown too) go to the worker before it ends; the worker's last
 * acknowledgements run before the sessions and connections go; memory goes
 * once the loop has run the close callbacks.
 */
static void close_relay(struct relay *relay)
{
    tl_metrics_serve_stop(relay->metrics);
    tl_web_stop(relay->web); /* no new calls; those in flight end with the worker */
    tl_ssh_logins_close(relay->logins);
    tl_audit_checkpoints_stop(relay->checkpoints);
    tl_worker_free(relay->worker); /* runs the last acknowledgements */
    /* The shutdown checkpoint covers every entry the worker wrote. */
    tl_audit_checkpoints_final(relay->checkpoints, relay->store, relay->chain);
    tl_sessions_free(relay->sessions);
    if (relay->loop != NULL) {
        tl_agent_server_stop(relay->agents);
        uv_run(relay->loop, UV_RUN_DEFAULT);
    }
    tl_web_free(relay->web);
    tl_audit_checkpoints_free(relay->checkpoints);
    tl_agent_server_free(relay->agents);
    tl_evidence_store_close(relay->evidence);
    tl_audit_chain_close(relay->chain);
    if (relay->lock_fd >= 0)
        close(relay->lock_fd);
    tl_store_close(relay->store);
    tl_registry_free(relay->registry);
    tl_ssh_logins_free(relay->logins);
    EVP_PKEY_free(relay->commands.bundle_key);
    tl_sla_config_free(relay->sla);
    free(relay->settings);
    free(relay);
}

int tl_relay_serve(const tl_relay_config_t *config)
{
    struct relay *relay = calloc(1, sizeof *relay);
    if (relay == NULL)
        return TL_ENOMEM;
    relay->config = *config;
    relay->lock_fd = -1;
    if (config->settings != NULL) {
        if ((relay->settings = malloc(sizeof *relay->settings)) == NULL) {
            free(relay);
            return TL_ENOMEM;
        }
        *relay->settings = *config->settings;
    }
    apply_defaults(&relay->config);
    raise_fd_limit(&relay->config);

    char listen[128];
    int rc = 0;
    tl_log_limit_t *log_limit = NULL;
    relay->loop = uv_default_loop();
    tl_metrics_reset();
    if ((rc = check_metrics_address(config)) != 0 || (rc = check_web(config)) != 0)
        goto out;
    /* From here on, unauthenticated peers' lines are bounded per address (relay/net/log_limit.h).
     */
    if ((log_limit = tl_log_limit_start(relay->loop, &rc)) == NULL)
        goto out;
    signal(SIGPIPE, SIG_IGN);
    if ((rc = load_desk(relay)) != 0 || (rc = open_data_dir(relay, listen, sizeof listen)) != 0 ||
        (rc = new_agents(relay)) != 0)
        goto out;
    char state_path[4096];
    if ((rc = tl_datadir_path(config->data_dir, TL_DATADIR_STATE, state_path, sizeof state_path)) !=
        0)
        goto out;
    relay->worker =
        tl_worker_new(relay->loop, relay->store, relay->chain, relay->evidence, state_path, &rc);
    if (relay->worker == NULL)
        goto out;
    char problem[768];
    relay->checkpoints = tl_audit_checkpoints_start(relay->loop, relay->worker, config->data_dir,
                                                    &rc, problem, sizeof problem);
    if (relay->checkpoints == NULL) {
        fprintf(stderr, "tierline-relay: refusing to serve: %s\n", problem);
        tl_log_error("refusing to serve: audit checkpoints unavailable problem=\"%s\"", problem);
        goto out;
    }
    if ((rc = start_agents(relay, listen)) != 0)
        goto out;
    if (config->ssh_listen != NULL && (rc = start_technicians(relay)) != 0)
        goto out;
    if (config->metrics_listen != NULL && (rc = start_metrics(relay)) != 0)
        goto out;
    if (config->web_listen != NULL && (rc = start_web(relay)) != 0)
        goto out;
    install_signals(relay);

    char fingerprint[TL_FINGERPRINT_LEN] = "";
    tl_datadir_fingerprint(config->data_dir, fingerprint);
    tl_log_info("relay listening addr=%s fingerprint=%s version=%s", listen, fingerprint,
                TL_VERSION_STRING);
    if (relay->settings != NULL)
        tl_log_info("configuration path=%s read=%s", relay->settings->path,
                    relay->settings->file_read ? "yes" : "no (defaults)");
    /* Every listener is up: a Type=notify unit is started now (packaging/systemd/). A SIGHUP
     * reload is framed by RELOADING=1 ... READY=1 (on_reload). */
    if ((rc = tl_sdnotify_ready()) != 0)
        tl_log_warn("the service manager was not told the relay is ready reason=%s",
                    tl_strerror(rc));
    rc = 0;
    uv_run(relay->loop, UV_RUN_DEFAULT);
    tl_log_limit_stop(log_limit); /* the summaries still due */
    log_limit = NULL;
    tl_log_info("relay stopped");
out:
    tl_log_limit_stop(log_limit);
    close_relay(relay);
    return rc;
}
