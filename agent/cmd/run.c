/*
 * `tierline-agent run`: the running agent. One libuv loop holds the tunnel
 * to the relay (agent/tunnel.c), the control socket for the user's commands
 * (agent/control.c), consent (agent/consent.c), the technicians' sessions
 * (agent/session.c), desktop notifications (agent/notify.c) of questions and
 * of the user's tickets (agent/ticket_news.c) and two storage lanes
 * (agent/storage.c); this file wires their events together and stops them on
 * SIGTERM or SIGINT.
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "agent/control.h"
#include "agent/notify.h"
#include "proto/runbooks.h"
#include "agent/session.h"
#include "agent/storage.h"
#include "agent/ticket_news.h"
#include "agent/catalogue.h"
#include "agent/conf.h"
#include "agent/catalogue_sync.h"
#include "agent/witness_sync.h"
#include "agent/tunnel.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/settings.h"
#include "proto/msg_tickets.h"
#include "proto/sdnotify.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct agent_run {
    tl_tunnel_t *tunnel;
    tl_control_t *control;
    tl_consent_t *consent;
    tl_sessions_t *sessions;
    tl_notify_t *notify;
    tl_ticket_news_t *news;
    tl_catalogue_sync_t *catalogue;
    tl_witness_sync_t *witness; /* the audit log witnessed (docs/protocol.md §7.15) */
    int runbooks_given;         /* --runbooks: an installed catalogue does not replace it */
    /* Disk work off the loop: one lane for grants.json, one for the outbox. */
    tl_storage_t *grants_lane;
    tl_storage_t *outbox_lane;
    uv_signal_t sigterm, sigint, sighup;
    tl_settings_t *settings;           /* agent.conf and the command line, in force */
    const struct run_options *options; /* the command line, laid over the file on reload */
};

static void run_delivered(tl_tunnel_t *tunnel, const char *request, const char *ticket)
{
    struct agent_run *run = tl_tunnel_data(tunnel);
    if (run->control != NULL)
        tl_control_delivered(run->control, request, ticket);
}

static void run_rejected(tl_tunnel_t *tunnel, const char *request, int error)
{
    struct agent_run *run = tl_tunnel_data(tunnel);
    if (run->control != NULL)
        tl_control_rejected(run->control, request, error);
}

static void run_queued(tl_tunnel_t *tunnel, const char *request, int reason)
{
    struct agent_run *run = tl_tunnel_data(tunnel);
    if (run->control != NULL)
        tl_control_queued(run->control, request, reason);
}

/* ---- the user's tickets: news to the desktop and the watchers ---------------------------- */

/* News of one ticket: a desktop notification and an event for `attend`. */
static void run_ticket_news(struct agent_run *run, const tl_ticket_summary_t *ticket, unsigned what)
{
    if (what == 0)
        return;
    char summary[TL_NOTIFY_MAX_SUMMARY], body[TL_NOTIFY_MAX_BODY], hint[128];
    tl_ticket_news_text(ticket, what, summary, sizeof summary, body, sizeof body, hint,
                        sizeof hint);
    tl_log_info("ticket news ticket=%s status=%s note=%s", ticket->ticket, ticket->status,
                what & TL_NEWS_NOTE ? "new" : "-");
    tl_notify_post(run->notify, summary, body, hint, 0);
    json_t *event =
        json_pack("{s:s, s:[], s:o*}", "event", tl_control_type_name(TL_CONTROL_EVENT_TICKET),
                  "what", "ticket", tl_msg_ticket_summary_json(ticket));
    json_t *list = json_object_get(event, "what");
    if (what & TL_NEWS_NOTE)
        json_array_append_new(list, json_string("note"));
    if (what & TL_NEWS_STATUS)
        json_array_append_new(list, json_string("status"));
    tl_control_event(run->control, event);
    json_decref(event);
}

/* The relay's ticket.update (docs/protocol.md §7.12): a hint, checked, compared with what was
 * known. */
static void run_ticket_update(tl_tunnel_t *tunnel, json_t *body)
{
    struct agent_run *run = tl_tunnel_data(tunnel);
    tl_ticket_update_t update;
    if (tl_msg_ticket_update_decode(body, &update) != 0) {
        tl_log_warn("ticket.update ignored: a member is missing or out of its limits");
        return;
    }
    run_ticket_news(run, &update.summary, tl_ticket_news_update(run->news, &update.summary));
}

/* The list asked for on connecting: the first learns, later ones announce what changed. */
static void run_tickets_listed(void *data, int status, json_t *result)
{
    struct agent_run *run = data;
    tl_ticket_summary_t *items = calloc(TL_TICKETS_LIST_MAX, sizeof *items);
    unsigned what[TL_TICKETS_LIST_MAX];
    size_t count = 0;
    int more = 0, rc = status;
    if (rc == 0 && !json_is_true(json_object_get(result, "ok")))
        rc = TL_EIO;
    if (rc == 0)
        rc = items != NULL ? tl_msg_tickets_decode(result, items, &count, &more) : TL_ENOMEM;
    if (rc != 0)
        tl_log_info("tickets not listed on connecting reason=%s", tl_err_name(rc));
    if (rc == 0 && run->news != NULL) {
        tl_ticket_news_list(run->news, items, count, what);
        for (size_t i = 0; i < count; i++)
            run_ticket_news(run, &items[i], what[i]);
    }
    free(items);
}

static void run_connected(tl_tunnel_t *tunnel, const char *device)
{
    struct agent_run *run = tl_tunnel_data(tunnel);
    json_t *body = json_pack("{s:s}", "type", tl_control_type_name(TL_CONTROL_TICKETS_LIST));
    int rc =
        body != NULL ? tl_tunnel_request(tunnel, body, 30000, run_tickets_listed, run) : TL_ENOMEM;
    if (rc != 0)
        tl_log_info("tickets not listed on connecting reason=%s", tl_err_name(rc));
    json_decref(body);
    /* What the catalogue did here goes to the relay, and a newer one comes (docs/catalogue.md). */
    if (run->catalogue != NULL)
        tl_catalogue_sync_connected(run->catalogue, tunnel);
    /* The relay's audit log as it stands now must extend what this machine saw before. */
    if (run->witness != NULL)
        tl_witness_sync_connected(run->witness, tunnel);
}

static void run_audit_checkpoint(tl_tunnel_t *tunnel, json_t *body)
{
    struct agent_run *run = tl_tunnel_data(tunnel);
    if (run->witness != NULL)
        tl_witness_sync_notice(run->witness, body);
}

/* A signed catalogue was installed: its runbooks serve the next runs (docs/catalogue.md). */
static void run_catalogue_installed(void *data, uint64_t version, tl_runbooks_t *runbooks)
{
    struct agent_run *run = data;
    if (run->sessions == NULL || run->runbooks_given || runbooks == NULL) {
        tl_runbooks_free(runbooks);
        return;
    }
    tl_sessions_replace_runbooks(run->sessions, runbooks);
    tl_log_info("runbooks now from the installed catalogue version=%llu runbooks=%zu",
                (unsigned long long)version, tl_runbooks_count(runbooks));
}

static const tl_tunnel_events_t run_events = {
    .on_connected = run_connected,
    .on_delivered = run_delivered,
    .on_rejected = run_rejected,
    .on_queued = run_queued,
    .on_ticket_update = run_ticket_update,
    .on_audit_checkpoint = run_audit_checkpoint,
};

/* The consent module's decisions go to the relay (through the tunnel) and to the watchers. */
static void run_consent_answer(void *data, uint64_t token, const tl_consent_answer_t *answer)
{
    struct agent_run *run = data;
    if (run->tunnel != NULL)
        tl_tunnel_consent_answer(run->tunnel, token, answer);
}

static void run_command_answer(void *data, uint64_t token, const tl_consent_answer_t *answer)
{
    struct agent_run *run = data;
    if (run->tunnel != NULL)
        tl_tunnel_command_answer(run->tunnel, token, answer);
}

static void run_grant_ended(void *data, const tl_grant_t *grant, const char *reason)
{
    struct agent_run *run = data;
    if (run->tunnel != NULL)
        tl_tunnel_grant_ended(run->tunnel, grant, reason);
}

/* A question reaches a user who is not at a terminal: a desktop notification. */
static void run_notify_question(struct agent_run *run, json_t *question)
{
    char technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX], reason[SHOWN_MAX],
        id[SHOWN_MAX], scopes[128], duration[32];
    char summary[TL_NOTIFY_MAX_SUMMARY], body[TL_NOTIFY_MAX_BODY], hint[160];
    tl__cmd_scopes_text(json_object_get(question, "scopes"), scopes, sizeof scopes);
    tl_consent_duration_text((uint64_t)tl__cmd_int_of(question, "duration_s"), duration,
                             sizeof duration);
    tl_text_clip(technician, 64, tl__cmd_member(question, "technician"), 32, TL_TEXT_LINE);
    tl__cmd_shown(role, sizeof role, question, "role");
    tl__cmd_shown(ticket, sizeof ticket, question, "ticket");
    tl__cmd_shown(id, sizeof id, question, "id");
    tl_text_clip(reason, sizeof reason, tl__cmd_member(question, "reason"), 300, TL_TEXT_LINE);
    const char *command_line = json_string_value(json_object_get(question, "command_line"));
    if (command_line != NULL) {
        /* One command under a grant that asks for each: the command line, escaped. */
        char line[512];
        tl_text_clip(line, sizeof line, command_line, 160, TL_TEXT_LINE);
        tl_format(summary, sizeof summary, "%s (%s) asks to run a command on %s", technician, role,
                  ticket);
        tl_format(body, sizeof body, "Command: %s\nReason: %s\nQuestion %s waits for your answer.",
                  line, reason, id);
    } else {
        tl_format(summary, sizeof summary, "%s (%s) asks for %s on %s", technician, role, scopes,
                  ticket);
        tl_format(body, sizeof body, "Reason: %s\nFor %s; question %s waits for your answer.",
                  reason, duration, id);
    }
    tl_format(hint, sizeof hint, "Answer with: tierline-agent attend (or approve %s, deny %s)", id,
              id);
    tl_notify_post(run->notify, summary, body, hint, 1);
}

static void run_consent_event(void *data, json_t *event)
{
    struct agent_run *run = data;
    tl_control_event(run->control, event);
    if (tl_control_type_lookup(json_string_value(json_object_get(event, "event"))) ==
        TL_CONTROL_EVENT_QUESTION)
        run_notify_question(run, event);
}

static const tl_consent_events_t run_consent_events = {
    .on_answer = run_consent_answer,
    .on_ended = run_grant_ended,
    .on_event = run_consent_event,
    .on_command = run_command_answer,
};

static void run_activity(void *data, const char *grant, const char *text)
{
    struct agent_run *run = data;
    tl_log_info("session activity grant=%s what=\"%s\"", grant, text);
    json_t *event =
        json_pack("{s:s, s:s, s:s}", "event", tl_control_type_name(TL_CONTROL_EVENT_ACTIVITY),
                  "grant", grant, "text", text);
    tl_control_event(run->control, event);
    json_decref(event);
}

static const tl_sessions_events_t run_session_events = {
    .on_activity = run_activity,
};

/* Stops everything the run holds; the memory is released as the loop winds down. */
static void run_shutdown(struct agent_run *run)
{
    tl_control_stop(run->control);
    run->control = NULL;
    if (run->tunnel != NULL)
        tl_tunnel_stop(run->tunnel);
    run->tunnel = NULL;
    tl_catalogue_sync_free(run->catalogue);
    run->catalogue = NULL;
    tl_witness_sync_free(run->witness);
    run->witness = NULL;
    tl_consent_free(run->consent);
    run->consent = NULL;
    tl_sessions_free(run->sessions);
    run->sessions = NULL;
    tl_notify_free(run->notify);
    run->notify = NULL;
    tl_ticket_news_free(run->news);
    run->news = NULL;
    /* Released once the writes already asked for are done. */
    tl_storage_free(run->grants_lane);
    run->grants_lane = NULL;
    tl_storage_free(run->outbox_lane);
    run->outbox_lane = NULL;
}

static void run_signal(uv_signal_t *handle, int signum)
{
    struct agent_run *run = handle->data;
    tl_sdnotify_stopping();
    tl_log_info("agent stopping signal=%d", signum);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
    uv_close((uv_handle_t *)&run->sigint, NULL);
    uv_close((uv_handle_t *)&run->sighup, NULL);
    run_shutdown(run);
}

/* The unattended policy: --policy FILE must exist; STATE/policy.json may not. */
static int load_policy(const char *option, const char *state_dir, tl_policy_t **policy)
{
    char path[TL_STATE_FILE_MAX], problem[512];
    int rc;
    *policy = NULL;
    if (option != NULL)
        snprintf(path, sizeof path, "%s", option);
    else
        tl_state_path(state_dir, TL_CONSENT_POLICY_FILE, path, sizeof path);
    *policy = tl_policy_load(path, &rc, problem, sizeof problem);
    if (*policy != NULL)
        return 0;
    if (rc == -ENOENT && option == NULL)
        return 0; /* no file: no unattended grants */
    fprintf(stderr, PROGRAM " run: policy %s: %s\n", path, problem);
    return TL_EXIT_FAILURE;
}

struct run_options {
    const char *config_option; /* --config FILE */
    /* The words of the options that are settings (agent/conf.h), NULL when not given. */
    const char *dir, *policy_option, *runbooks_option, *shell_option, *backoff_word, *level_word,
        *timeout_word, *interval_word, *files_bytes_word, *files_count_word;
    uint64_t backoff_max;        /* 0: the tunnel's default */
    uint64_t consent_timeout_ms; /* 0: the policy's, or the default */
    uint64_t notify_interval_ms;
    tl_file_limits_t files; /* file channels' limits (agent/files_channel.h) */
};

#define RUN_USAGE                                                                                  \
    "run [--config FILE] [--state DIR] [--policy FILE] [--consent-timeout DURATION] "              \
    "[--runbooks DIR] [--shell PATH] [--notify-interval DURATION] [--backoff-max-ms N] "           \
    "[--files-max-bytes N] [--files-max-count N] [--log-level LEVEL]"

/* The options, checked; sets the log level. Non-zero: the exit status, the reason printed. */
static int run_parse(int argc, char **argv, struct run_options *run_options)
{
    const char *positional[1];
    int count;
    tl_cli_option_t options[] = {{"config", &run_options->config_option, NULL},
                                 {"state", &run_options->dir, NULL},
                                 {"backoff-max-ms", &run_options->backoff_word, NULL},
                                 {"log-level", &run_options->level_word, NULL},
                                 {"policy", &run_options->policy_option, NULL},
                                 {"consent-timeout", &run_options->timeout_word, NULL},
                                 {"runbooks", &run_options->runbooks_option, NULL},
                                 {"shell", &run_options->shell_option, NULL},
                                 {"notify-interval", &run_options->interval_word, NULL},
                                 {"files-max-bytes", &run_options->files_bytes_word, NULL},
                                 {"files-max-count", &run_options->files_count_word, NULL},
                                 {0}};
    const char *backoff = run_options->backoff_word, *level = NULL, *timeout_option = NULL,
               *interval = NULL;
    int status =
        tl_cli_parse(PROGRAM, "run", RUN_USAGE, argc, argv, 1, options, positional, 0, &count);
    if (status != 0)
        return status;
    backoff = run_options->backoff_word;
    level = run_options->level_word;
    timeout_option = run_options->timeout_word;
    interval = run_options->interval_word;
    if (backoff != NULL &&
        tl_cli_parse_uint(backoff, 100, 3600000, &run_options->backoff_max) != 0) {
        fprintf(stderr, PROGRAM " run: --backoff-max-ms wants 100..3600000\n");
        return TL_EXIT_USAGE;
    }
    uint64_t *consent_timeout_ms = &run_options->consent_timeout_ms;
    if (timeout_option != NULL && (tl_cli_parse_duration(timeout_option, consent_timeout_ms) != 0 ||
                                   *consent_timeout_ms < TL_CONSENT_MIN_TIMEOUT_MS ||
                                   *consent_timeout_ms > TL_CONSENT_MAX_TIMEOUT_MS)) {
        fprintf(stderr, PROGRAM " run: --consent-timeout wants a duration from 1s to 1d, like "
                                "90s or 2m\n");
        return TL_EXIT_USAGE;
    }
    run_options->notify_interval_ms = TL_NOTIFY_DEFAULT_INTERVAL_MS;
    /* 0 is a duration here: every notification as soon as the last one is done. */
    int zero = interval != NULL && (strcmp(interval, "0") == 0 || strcmp(interval, "0s") == 0);
    if (zero)
        run_options->notify_interval_ms = 0;
    else if (interval != NULL &&
             (tl_cli_parse_duration(interval, &run_options->notify_interval_ms) != 0 ||
              run_options->notify_interval_ms > TL_NOTIFY_MAX_INTERVAL_MS)) {
        fprintf(stderr, PROGRAM " run: --notify-interval wants a duration from 0s to 1h, like "
                                "10s or 2m\n");
        return TL_EXIT_USAGE;
    }
    const char *shell_option = run_options->shell_option;
    if (shell_option != NULL && (shell_option[0] != '/' || access(shell_option, X_OK) != 0)) {
        fprintf(stderr, PROGRAM " run: --shell wants the absolute path of a program, got '%s'\n",
                shell_option);
        return TL_EXIT_USAGE;
    }
    enum tl_log_level log_level;
    if (level != NULL) {
        if (tl_log_parse_level(level, &log_level) != 0) {
            fprintf(stderr, PROGRAM " run: --log-level wants debug, info, warn or error\n");
            return TL_EXIT_USAGE;
        }
        tl_log_set_level(log_level);
    }
    return 0;
}

/* The command line's words over the settings: they beat the file, at start and on each reload. */
static int run_overrides(const struct run_options *options, tl_settings_t *settings, char *why,
                         size_t why_size)
{
    const struct {
        const char *key, *option, *word;
    } given[] = {
        {"state_dir", "state", options->dir},
        {"policy", "policy", options->policy_option},
        {"runbooks", "runbooks", options->runbooks_option},
        {"shell", "shell", options->shell_option},
        {"backoff_max_ms", "backoff-max-ms", options->backoff_word},
        {"log_level", "log-level", options->level_word},
        {"consent_timeout", "consent-timeout", options->timeout_word},
        {"notify_interval", "notify-interval", options->interval_word},
        {"files_max_bytes", "files-max-bytes", options->files_bytes_word},
        {"files_max_count", "files-max-count", options->files_count_word},
    };
    char detail[512];
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        if (given[i].word == NULL)
            continue;
        if (tl_settings_set(settings, tl_settings_index(settings, given[i].key), given[i].word,
                            TL_SETTING_FROM_COMMAND_LINE, 0, detail, sizeof detail) != 0) {
            tl_format(why, why_size, "--%s: %s", given[i].option, detail);
            return TL_EINVAL;
        }
    }
    return 0;
}

/* agent.conf, then the command line (a tl_settings_make_fn). */
static int run_make_settings(void *ctx, tl_settings_t *settings, char *why, size_t why_size)
{
    const struct run_options *options = ctx;
    int rc = tl_agent_settings_load(options->config_option, settings, why, why_size);
    return rc == 0 ? run_overrides(options, settings, why, why_size) : rc;
}

/*
 * The settings in force, made and put into options (the command line's words become the
 * values in force); sets the log level. Non-zero: the exit status, the reason printed.
 */
static int run_configure(struct run_options *options, tl_settings_t *settings)
{
    char why[1024];
    if (run_make_settings(options, settings, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM " run: %s\n", why);
        return TL_EXIT_USAGE;
    }
    tl_state_set_configured_dir(tl_settings_text(settings, "state_dir"));
    options->policy_option = tl_settings_text(settings, "policy");
    options->runbooks_option = tl_settings_text(settings, "runbooks");
    options->shell_option = tl_settings_text(settings, "shell");
    options->backoff_max = tl_settings_number(settings, "backoff_max_ms");
    options->consent_timeout_ms = tl_settings_number(settings, "consent_timeout");
    options->notify_interval_ms = tl_settings_number(settings, "notify_interval");
    options->files.max_bytes = tl_settings_number(settings, "files_max_bytes");
    options->files.max_files = (uint32_t)tl_settings_number(settings, "files_max_count");
    tl_log_set_level((enum tl_log_level)tl_settings_number(settings, "log_level"));
    const char *shell = options->shell_option;
    if (shell != NULL && access(shell, X_OK) != 0) {
        char origin[TL_SETTINGS_PATH_MAX + 32];
        tl_settings_origin(settings, tl_settings_index(settings, "shell"), origin, sizeof origin);
        fprintf(stderr, PROGRAM " run: %s: shell '%s' is not a program this user can run\n", origin,
                shell);
        return TL_EXIT_USAGE;
    }
    return 0;
}

/* SIGHUP: agent.conf read again; the log level changes at once, the rest at the next start. */
static void run_reload(uv_signal_t *handle, int signum)
{
    struct agent_run *run = handle->data;
    (void)signum;
    if (tl_settings_reload(run->settings, run_make_settings, (void *)run->options) == 0)
        tl_log_set_level((enum tl_log_level)tl_settings_number(run->settings, "log_level"));
}

/*
 * The runbook catalogue's folder and this program's path (both PATH_MAX bytes): --runbooks, else
 * the installed signed catalogue's, else the shipped one (docs/catalogue.md).
 */
static int run_paths(const char *runbooks_option, const char *state_dir, char *runbooks_dir,
                     char *self_exe)
{
    int rc = 0;
    if (runbooks_option != NULL) {
        snprintf(runbooks_dir, PATH_MAX, "%s", runbooks_option);
    } else if ((rc = tl_agent_catalogue_dirs(state_dir, runbooks_dir, PATH_MAX, NULL, 0, NULL)) !=
               0) {
        if (rc != TL_ENOTFOUND)
            tl_log_warn("installed catalogue unusable reason=%s; the shipped runbooks are used",
                        tl_strerror(rc));
        if ((rc = tl_runbooks_default_dir(runbooks_dir, PATH_MAX)) != 0) {
            fprintf(stderr, PROGRAM " run: no runbook catalogue found (%s); give --runbooks DIR\n",
                    tl_strerror(rc));
            return TL_EXIT_FAILURE;
        }
    }
    if (realpath("/proc/self/exe", self_exe) == NULL)
        return tl__cmd_fail("run", "finding this program (/proc/self/exe)", -errno);
    return 0;
}

/*
 * One running agent per state directory, decided by a lock the kernel drops
 * on exit: the descriptor stays open for the life of the process.
 */
static int run_lock(const tl_agent_state_t *state)
{
    char lock_path[TL_STATE_FILE_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/agent.lock", state->dir);
    int lock_fd = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, PROGRAM " run: an agent is already running on %s\n", state->dir);
        if (lock_fd >= 0)
            close(lock_fd);
        return TL_EXIT_FAILURE;
    }
    return 0;
}

/* Stops what started and lets the loop release it. */
static void run_wind_down(struct agent_run *run, uv_loop_t *loop)
{
    run_shutdown(run);
    uv_run(loop, UV_RUN_DEFAULT);
}

/*
 * Consent (which takes policy over, started or not), sessions, the tunnel
 * and the control socket, on the storage lanes already in run. Non-zero: the
 * exit status, the reason printed, and what had started is wound down.
 */
static int run_start(struct agent_run *run, uv_loop_t *loop, tl_agent_state_t *state,
                     const struct run_options *options, tl_policy_t *policy,
                     const char *runbooks_dir, const char *self_exe)
{
    char problem[1024];
    int rc;
    tl_consent_config_t consent_config = {.state_dir = state->dir,
                                          .policy = policy,
                                          .timeout_ms = options->consent_timeout_ms,
                                          .storage = run->grants_lane};
    run->consent = tl_consent_new(loop, &consent_config, &run_consent_events, run, &rc, problem,
                                  sizeof problem);
    if (run->consent == NULL) {
        fprintf(stderr, PROGRAM " run: %s\n", problem);
        run_wind_down(run, loop);
        return TL_EXIT_FAILURE;
    }
    char relay_address[300];
    snprintf(relay_address, sizeof relay_address,
             strchr(state->relay_host, ':') != NULL ? "[%s]:%u" : "%s:%u", state->relay_host,
             state->relay_port);
    tl_sessions_config_t sessions_config = {.runbooks_dir = runbooks_dir,
                                            .self_exe = self_exe,
                                            .relay = relay_address,
                                            .shell = options->shell_option,
                                            .files = options->files};
    run->sessions = tl_sessions_new(loop, &sessions_config, &run_session_events, run, &rc);
    if (run->sessions == NULL) {
        fprintf(stderr, PROGRAM " run: runbook catalogue %s: %s\n", runbooks_dir, tl_strerror(rc));
        run_wind_down(run, loop);
        return TL_EXIT_FAILURE;
    }
    tl_notify_config_t notify_config = {.interval_ms = options->notify_interval_ms};
    run->notify = tl_notify_new(loop, &notify_config, &rc);
    run->news = tl_ticket_news_new();
    if (run->notify == NULL || run->news == NULL) {
        run_wind_down(run, loop);
        return tl__cmd_fail("run", "starting desktop notifications", rc ? rc : TL_ENOMEM);
    }
    tl_tunnel_options_t tunnel_options = {.state = state,
                                          .backoff_max_ms = (uint32_t)options->backoff_max,
                                          .consent = run->consent,
                                          .sessions = run->sessions,
                                          .storage = run->outbox_lane};
    run->runbooks_given = options->runbooks_option != NULL;
    run->catalogue = tl_catalogue_sync_new(loop, state, run_catalogue_installed, run);
    if (run->catalogue == NULL) {
        run_wind_down(run, loop);
        return tl__cmd_fail("run", "starting catalogue updates", TL_ENOMEM);
    }
    run->witness = tl_witness_sync_new(loop, state->dir);
    if (run->witness == NULL) {
        run_wind_down(run, loop);
        return tl__cmd_fail("run", "starting the audit witness", TL_ENOMEM);
    }
    run->tunnel = tl_tunnel_start(loop, &tunnel_options, &run_events, run, &rc);
    if (run->tunnel == NULL) {
        run_wind_down(run, loop);
        return tl__cmd_fail("run", "starting the tunnel", rc);
    }
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state->dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    run->control = tl_control_start(loop, socket_path, run->tunnel, state, &rc);
    if (run->control == NULL) {
        run_wind_down(run, loop);
        if (rc == TL_EEXIST) {
            fprintf(stderr, PROGRAM " run: an agent is already running on %s\n", state->dir);
            return TL_EXIT_FAILURE;
        }
        return tl__cmd_fail("run", "control socket", rc);
    }
    tl_control_set_consent(run->control, run->consent, run->sessions);
    tl_control_set_notify(run->control, run->notify);
    return 0;
}

int tl_agent_cmd_run(int argc, char **argv)
{
    struct run_options options = {0};
    tl_agent_state_t state;
    tl_policy_t *policy = NULL;
    struct agent_run run = {0};
    char runbooks_dir[PATH_MAX], self_exe[PATH_MAX];
    static tl_settings_t settings;
    int rc, status = run_parse(argc, argv, &options);
    if (status == 0)
        status = run_configure(&options, &settings);
    if (status != 0 || (status = tl__cmd_open_state("run", options.dir, 1, &state)) != 0 ||
        (status = load_policy(options.policy_option, state.dir, &policy)) != 0 ||
        (status = run_paths(options.runbooks_option, state.dir, runbooks_dir, self_exe)) != 0 ||
        (status = run_lock(&state)) != 0)
        goto out;

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    run.grants_lane = tl_storage_new(loop, NULL, &rc);
    run.outbox_lane = run.grants_lane != NULL ? tl_storage_new(loop, NULL, &rc) : NULL;
    if (run.outbox_lane == NULL) {
        tl_storage_free(run.grants_lane);
        status = tl__cmd_fail("run", "starting the storage worker", rc);
        goto out;
    }
    const char *policy_shown = policy != NULL ? "yes" : "none";
    tl_policy_t *handed_over = policy;
    policy = NULL;
    if ((status = run_start(&run, loop, &state, &options, handed_over, runbooks_dir, self_exe)) !=
        0)
        goto out;
    uv_signal_init(loop, &run.sigterm);
    uv_signal_init(loop, &run.sigint);
    run.sigterm.data = run.sigint.data = &run;
    uv_signal_start(&run.sigterm, run_signal, SIGTERM);
    uv_signal_start(&run.sigint, run_signal, SIGINT);
    run.settings = &settings;
    run.options = &options;
    uv_signal_init(loop, &run.sighup);
    run.sighup.data = &run;
    uv_signal_start(&run.sighup, run_reload, SIGHUP);
    char timeout_text[32];
    tl_consent_duration_text(tl_consent_timeout_ms(run.consent) / 1000, timeout_text,
                             sizeof timeout_text);
    tl_log_info("agent running device=%s relay=%s:%u state=%s policy=%s consent_timeout=%s "
                "runbooks=%s",
                state.device, state.relay_host, state.relay_port, state.dir, policy_shown,
                timeout_text, runbooks_dir);
    /* A Type=notify unit is started once the agent runs (packaging/systemd/). */
    if ((rc = tl_sdnotify_ready()) != 0)
        tl_log_warn("the service manager was not told the agent is ready reason=%s",
                    tl_strerror(rc));
    uv_run(loop, UV_RUN_DEFAULT);
    tl_log_info("agent stopped");
    status = TL_EXIT_OK;
out:
    tl_policy_free(policy);
    return status;
}
