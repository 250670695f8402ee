#include "agent/commands.h"
#include "agent/consent.h"
#include "agent/control.h"
#include "agent/diag.h"
#include "agent/outbox.h"
#include "agent/runbooks.h"
#include "agent/session.h"
#include "agent/state.h"
#include "agent/tunnel.h"
#include "proto/cli.h"
#include "proto/clock.h"
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "proto/text.h"
#include "tl_version.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define PROGRAM "tierline-agent"
/* Buffers for text shown escaped: texts of up to TL_CONSENT_MAX_REASON bytes fit, at most
 * four bytes shown per byte. */
#define SHOWN_MAX (4 * TL_CONSENT_MAX_REASON + 8)

static int fail(const char *command, const char *what, int rc)
{
    fprintf(stderr, PROGRAM " %s: %s: %s\n", command, what, tl_strerror(rc));
    return TL_EXIT_FAILURE;
}

/* Resolves the state directory and loads it; prints why not on failure. */
static int open_state(const char *command, const char *dir, int must_be_enrolled,
                      tl_agent_state_t *state)
{
    char path[TL_STATE_PATH_MAX];
    int rc = tl_state_dir(dir, path, sizeof path);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " %s: no state directory: give --state DIR (or set HOME)\n",
                command);
        return TL_EXIT_USAGE;
    }
    if ((rc = tl_state_prepare(path)) != 0)
        return fail(command, path, rc);
    if ((rc = tl_state_load(path, state)) != 0)
        return fail(command, "reading the agent state (relay.json is damaged)", rc);
    if (must_be_enrolled && !state->enrolled) {
        fprintf(stderr,
                PROGRAM " %s: this agent is not enrolled yet (state %s)\n"
                        "Ask your help desk for an enrollment string, then run: " PROGRAM
                        " enroll 'tl1:…'\n",
                command, path);
        return TL_EXIT_FAILURE;
    }
    return 0;
}

static void os_description(char *out, size_t size)
{
    FILE *f = fopen("/etc/os-release", "r");
    char line[512];
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
                char *value = line + 12;
                value[strcspn(value, "\n")] = '\0';
                size_t len = strlen(value);
                if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
                    value[len - 1] = '\0';
                    value++;
                }
                size_t n = strlen(value) < size - 1 ? strlen(value) : size - 1;
                memcpy(out, value, n);
                out[n] = '\0';
                fclose(f);
                return;
            }
        }
        fclose(f);
    }
    struct utsname uts;
    if (uname(&uts) == 0)
        snprintf(out, size, "%s %s", uts.sysname, uts.release);
    else
        snprintf(out, size, "unknown");
}

/* ---- enroll ------------------------------------------------------------------ */

struct enrollment_run {
    const tl_enrollment_t *enrollment;
    char hostname[256];
    char os[256];
    int status; /* what the relay said, or why we never heard */
    int answered;
    char device[TL_MSG_MAX_ID + 1];
    char message[TL_MSG_MAX_TEXT + 1];
    uv_timer_t deadline;
    tl_peer_t *peer;
};

static void enroll_ready(tl_peer_t *peer)
{
    struct enrollment_run *run = tl_peer_get_data(peer);
    tl_msg_t msg = {.type = TL_MSG_ENROLL};
    msg.u.enroll.code = tl_str_from(run->enrollment->code);
    msg.u.enroll.hostname = tl_str_from(run->hostname);
    msg.u.enroll.os = tl_str_from(run->os);
    int rc = tl_peer_send(peer, &msg);
    if (rc != 0) {
        run->status = rc;
        tl_peer_close(peer, 0, NULL);
    }
}

static int enroll_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    struct enrollment_run *run = tl_peer_get_data(peer);
    if (msg->type == TL_MSG_CONTROL)
        return 0; /* the relay's "enroll-required" notice: expected while enrolling */
    if (msg->type != TL_MSG_ENROLL_RESULT)
        return TL_EPROTO;
    const struct tl_msg_enroll_result *result = &msg->u.enroll_result;
    run->answered = 1;
    run->status = result->status == 0 || result->status > 30099 ? (result->status ? TL_EPROTO : 0)
                                                                : -(int)result->status;
    snprintf(run->device, sizeof run->device, "%.*s", (int)result->device_id.len,
             (const char *)result->device_id.ptr);
    snprintf(run->message, sizeof run->message, "%.*s", (int)result->message.len,
             (const char *)result->message.ptr);
    tl_peer_close(peer, 0, NULL);
    return 0;
}

static void enroll_closed(tl_peer_t *peer, int reason)
{
    struct enrollment_run *run = tl_peer_get_data(peer);
    run->peer = NULL;
    if (!run->answered && run->status == 0)
        run->status = reason != 0 ? reason : TL_ECLOSED;
    uv_timer_stop(&run->deadline);
    uv_close((uv_handle_t *)&run->deadline, NULL);
}

static void enroll_timeout(uv_timer_t *timer)
{
    struct enrollment_run *run = timer->data;
    run->status = TL_ETIMEOUT;
    if (run->peer != NULL)
        tl_peer_close(run->peer, 0, NULL);
}

static const tl_peer_callbacks_t enroll_callbacks = {
    .on_ready = enroll_ready,
    .on_message = enroll_message,
    .on_closed = enroll_closed,
};

int tl_agent_cmd_enroll(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    int status = tl_cli_parse(PROGRAM, "enroll", "enroll ENROLLMENT-STRING [--state DIR]", argc,
                              argv, 1, options, positional, 1, &count);
    if (status != 0)
        return status;
    if (count != 1) {
        fprintf(stderr, PROGRAM " enroll: give the enrollment string from your help desk\n"
                                "usage: " PROGRAM " enroll ENROLLMENT-STRING [--state DIR]\n");
        return TL_EXIT_USAGE;
    }
    tl_enrollment_t enrollment;
    if (tl_enrollment_parse(positional[0], &enrollment) != 0) {
        fprintf(stderr, PROGRAM " enroll: that is not a valid enrollment string (it looks like "
                                "tl1:CODE@HOST:PORT#SHA256:...); check it was copied whole\n");
        return TL_EXIT_USAGE;
    }
    tl_agent_state_t state;
    if ((status = open_state("enroll", dir, 0, &state)) != 0)
        return status;
    if (state.enrolled) {
        fprintf(stderr,
                PROGRAM " enroll: already enrolled as %s with relay %s:%u (state %s)\n"
                        "To enroll again, remove that directory first.\n",
                state.device, state.relay_host, state.relay_port, state.dir);
        return TL_EXIT_FAILURE;
    }

    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    tl_tls_ctx_t *tls = NULL;
    struct addrinfo *addresses = NULL;
    int rc = tl_state_identity(state.dir, 1, &key, &cert);
    if (rc != 0) {
        status = fail("enroll", "making the agent key", rc);
        goto out;
    }
    tl_tls_config_t tls_config = {
        .role = TL_TLS_CLIENT, .key = key, .cert = cert, .pin = enrollment.fingerprint};
    tls = tl_tls_ctx_new(&tls_config, &rc);
    if (tls == NULL) {
        status = fail("enroll", "TLS setup", rc);
        goto out;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", enrollment.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(enrollment.host, port, &hints, &addresses);
    if (gai != 0) {
        fprintf(stderr, PROGRAM " enroll: cannot resolve %s: %s\n", enrollment.host,
                gai_strerror(gai));
        status = TL_EXIT_FAILURE;
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct enrollment_run run = {.enrollment = &enrollment};
    if (gethostname(run.hostname, sizeof run.hostname - 1) != 0)
        snprintf(run.hostname, sizeof run.hostname, "unknown");
    os_description(run.os, sizeof run.os);
    char software[64];
    snprintf(software, sizeof software, "tierline-agent/%s", TL_VERSION_STRING);
    tl_peer_config_t peer_config = {software, 0, 0, NULL};
    uv_timer_init(loop, &run.deadline);
    run.deadline.data = &run;
    uv_timer_start(&run.deadline, enroll_timeout, 30000, 0);
    run.peer = tl_peer_connect(loop, tls, addresses->ai_addr, &peer_config, &enroll_callbacks, NULL,
                               &run, &rc);
    if (run.peer == NULL) {
        uv_close((uv_handle_t *)&run.deadline, NULL);
        run.status = rc;
    }
    uv_run(loop, UV_RUN_DEFAULT);

    /* A key the relay already knows: its enrollment state was lost here; restore it. */
    int restored = run.answered && run.status == TL_EEXIST && run.device[0] != '\0';
    /* What the relay says is shown escaped (docs/technicians.md "Text from others"). */
    char device_shown[4 * sizeof run.device], message_shown[4 * sizeof run.message];
    tl_text_clip(device_shown, sizeof device_shown, run.device, 0, TL_TEXT_LINE);
    tl_text_clip(message_shown, sizeof message_shown, run.message, 0, TL_TEXT_LINE);
    if (run.answered && (run.status == 0 || restored)) {
        snprintf(state.relay_host, sizeof state.relay_host, "%s", enrollment.host);
        state.relay_port = enrollment.port;
        snprintf(state.relay_fingerprint, sizeof state.relay_fingerprint, "%s",
                 enrollment.fingerprint);
        snprintf(state.device, sizeof state.device, "%s", run.device);
        if ((rc = tl_state_save(&state)) != 0) {
            status = fail("enroll", "saving the enrollment", rc);
            goto out;
        }
        if (restored)
            printf("This agent's key was already enrolled as %s; its state is restored.\n",
                   device_shown);
        else
            printf("Enrolled as %s with relay %s:%u\n", device_shown, enrollment.host,
                   enrollment.port);
        printf("  relay key: %s\n  state:     %s\n", enrollment.fingerprint, state.dir);
        printf("Next: " PROGRAM " run --state %s\n", state.dir);
        status = TL_EXIT_OK;
    } else if (run.answered) {
        fprintf(stderr, PROGRAM " enroll: the relay refused: %s (%s)\n", message_shown,
                tl_err_name(run.status));
        status = TL_EXIT_FAILURE;
    } else if (run.status == TL_EPIN) {
        fprintf(stderr,
                PROGRAM " enroll: the server at %s:%u is not the relay in the enrollment string "
                        "(its key is not %s); refusing to enroll\n",
                enrollment.host, enrollment.port, enrollment.fingerprint);
        status = TL_EXIT_FAILURE;
    } else {
        fprintf(stderr, PROGRAM " enroll: could not reach the relay at %s:%u: %s\n",
                enrollment.host, enrollment.port, tl_strerror(run.status));
        status = TL_EXIT_FAILURE;
    }
out:
    if (addresses != NULL)
        freeaddrinfo(addresses);
    tl_tls_ctx_free(tls);
    X509_free(cert);
    EVP_PKEY_free(key);
    return status;
}

/* ---- run ---------------------------------------------------------------------------- */

struct agent_run {
    tl_tunnel_t *tunnel;
    tl_control_t *control;
    tl_consent_t *consent;
    tl_sessions_t *sessions;
    /* Disk work off the loop: one lane for grants.json, one for the outbox. */
    tl_storage_t *grants_lane;
    tl_storage_t *outbox_lane;
    uv_signal_t sigterm, sigint;
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

static const tl_tunnel_events_t run_events = {
    .on_delivered = run_delivered,
    .on_rejected = run_rejected,
    .on_queued = run_queued,
};

/* The consent module's decisions go to the relay (through the tunnel) and to the watchers. */
static void run_consent_answer(void *data, uint64_t token, const tl_consent_answer_t *answer)
{
    struct agent_run *run = data;
    if (run->tunnel != NULL)
        tl_tunnel_consent_answer(run->tunnel, token, answer);
}

static void run_grant_ended(void *data, const tl_grant_t *grant, const char *reason)
{
    struct agent_run *run = data;
    if (run->tunnel != NULL)
        tl_tunnel_grant_ended(run->tunnel, grant, reason);
}

static void run_consent_event(void *data, json_t *event)
{
    struct agent_run *run = data;
    tl_control_event(run->control, event);
}

static const tl_consent_events_t run_consent_events = {
    .on_answer = run_consent_answer,
    .on_ended = run_grant_ended,
    .on_event = run_consent_event,
};

static void run_activity(void *data, const char *grant, const char *text)
{
    struct agent_run *run = data;
    tl_log_info("session activity grant=%s what=\"%s\"", grant, text);
    json_t *event = json_pack("{s:s, s:s, s:s}", "event", "activity", "grant", grant, "text", text);
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
    tl_consent_free(run->consent);
    run->consent = NULL;
    tl_sessions_free(run->sessions);
    run->sessions = NULL;
    /* Released once the writes already asked for are done. */
    tl_storage_free(run->grants_lane);
    run->grants_lane = NULL;
    tl_storage_free(run->outbox_lane);
    run->outbox_lane = NULL;
}

static void run_signal(uv_signal_t *handle, int signum)
{
    struct agent_run *run = handle->data;
    tl_log_info("agent stopping signal=%d", signum);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
    uv_close((uv_handle_t *)&run->sigint, NULL);
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

int tl_agent_cmd_run(int argc, char **argv)
{
    const char *dir = NULL, *backoff = NULL, *level = NULL, *policy_option = NULL,
               *timeout_option = NULL, *runbooks_option = NULL, *shell_option = NULL,
               *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL},
                                 {"backoff-max-ms", &backoff, NULL},
                                 {"log-level", &level, NULL},
                                 {"policy", &policy_option, NULL},
                                 {"consent-timeout", &timeout_option, NULL},
                                 {"runbooks", &runbooks_option, NULL},
                                 {"shell", &shell_option, NULL},
                                 {0}};
    const char *usage = "run [--state DIR] [--policy FILE] [--consent-timeout DURATION] "
                        "[--runbooks DIR] [--shell PATH] [--backoff-max-ms N] [--log-level LEVEL]";
    int status = tl_cli_parse(PROGRAM, "run", usage, argc, argv, 1, options, positional, 0, &count);
    if (status != 0)
        return status;
    uint64_t backoff_max = 0;
    if (backoff != NULL && tl_cli_parse_uint(backoff, 100, 3600000, &backoff_max) != 0) {
        fprintf(stderr, PROGRAM " run: --backoff-max-ms wants 100..3600000\n");
        return TL_EXIT_USAGE;
    }
    uint64_t consent_timeout_ms = 0;
    if (timeout_option != NULL &&
        (tl_cli_parse_duration(timeout_option, &consent_timeout_ms) != 0 ||
         consent_timeout_ms < TL_CONSENT_MIN_TIMEOUT_MS ||
         consent_timeout_ms > TL_CONSENT_MAX_TIMEOUT_MS)) {
        fprintf(stderr, PROGRAM " run: --consent-timeout wants a duration from 1s to 1d, like "
                                "90s or 2m\n");
        return TL_EXIT_USAGE;
    }
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
    tl_agent_state_t state;
    if ((status = open_state("run", dir, 1, &state)) != 0)
        return status;
    tl_policy_t *policy = NULL;
    if ((status = load_policy(policy_option, state.dir, &policy)) != 0)
        return status;
    char runbooks_dir[PATH_MAX], self_exe[PATH_MAX];
    int rc = 0;
    if (runbooks_option != NULL)
        snprintf(runbooks_dir, sizeof runbooks_dir, "%s", runbooks_option);
    else if ((rc = tl_runbooks_default_dir(runbooks_dir, sizeof runbooks_dir)) != 0) {
        tl_policy_free(policy);
        fprintf(stderr, PROGRAM " run: no runbook catalogue found (%s); give --runbooks DIR\n",
                tl_strerror(rc));
        return TL_EXIT_FAILURE;
    }
    if (realpath("/proc/self/exe", self_exe) == NULL) {
        tl_policy_free(policy);
        return fail("run", "finding this program (/proc/self/exe)", -errno);
    }

    /* One running agent per state directory, decided by a lock the kernel drops on exit. */
    char lock_path[TL_STATE_FILE_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/agent.lock", state.dir);
    int lock_fd = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, PROGRAM " run: an agent is already running on %s\n", state.dir);
        if (lock_fd >= 0)
            close(lock_fd);
        tl_policy_free(policy);
        return TL_EXIT_FAILURE;
    }

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct agent_run run = {0};
    char problem[1024];
    run.grants_lane = tl_storage_new(loop, NULL, &rc);
    run.outbox_lane = run.grants_lane != NULL ? tl_storage_new(loop, NULL, &rc) : NULL;
    if (run.outbox_lane == NULL) {
        tl_storage_free(run.grants_lane);
        tl_policy_free(policy);
        return fail("run", "starting the storage worker", rc);
    }
    tl_consent_config_t consent_config = {.state_dir = state.dir,
                                          .policy = policy,
                                          .timeout_ms = consent_timeout_ms,
                                          .storage = run.grants_lane};
    run.consent = tl_consent_new(loop, &consent_config, &run_consent_events, &run, &rc, problem,
                                 sizeof problem);
    if (run.consent == NULL) {
        fprintf(stderr, PROGRAM " run: %s\n", problem);
        run_shutdown(&run);
        uv_run(loop, UV_RUN_DEFAULT);
        return TL_EXIT_FAILURE;
    }
    char relay_address[300];
    snprintf(relay_address, sizeof relay_address,
             strchr(state.relay_host, ':') != NULL ? "[%s]:%u" : "%s:%u", state.relay_host,
             state.relay_port);
    tl_sessions_config_t sessions_config = {.runbooks_dir = runbooks_dir,
                                            .self_exe = self_exe,
                                            .relay = relay_address,
                                            .shell = shell_option};
    run.sessions = tl_sessions_new(loop, &sessions_config, &run_session_events, &run, &rc);
    if (run.sessions == NULL) {
        fprintf(stderr, PROGRAM " run: runbook catalogue %s: %s\n", runbooks_dir, tl_strerror(rc));
        run_shutdown(&run);
        uv_run(loop, UV_RUN_DEFAULT);
        return TL_EXIT_FAILURE;
    }
    tl_tunnel_options_t tunnel_options = {.state = &state,
                                          .backoff_max_ms = (uint32_t)backoff_max,
                                          .consent = run.consent,
                                          .sessions = run.sessions,
                                          .storage = run.outbox_lane};
    run.tunnel = tl_tunnel_start(loop, &tunnel_options, &run_events, &run, &rc);
    if (run.tunnel == NULL) {
        run_shutdown(&run);
        uv_run(loop, UV_RUN_DEFAULT);
        return fail("run", "starting the tunnel", rc);
    }
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    run.control = tl_control_start(loop, socket_path, run.tunnel, &state, &rc);
    if (run.control == NULL) {
        run_shutdown(&run);
        uv_run(loop, UV_RUN_DEFAULT);
        if (rc == TL_EEXIST) {
            fprintf(stderr, PROGRAM " run: an agent is already running on %s\n", state.dir);
            return TL_EXIT_FAILURE;
        }
        return fail("run", "control socket", rc);
    }
    tl_control_set_consent(run.control, run.consent, run.sessions);
    uv_signal_init(loop, &run.sigterm);
    uv_signal_init(loop, &run.sigint);
    run.sigterm.data = run.sigint.data = &run;
    uv_signal_start(&run.sigterm, run_signal, SIGTERM);
    uv_signal_start(&run.sigint, run_signal, SIGINT);
    char timeout_text[32];
    tl_consent_duration_text(tl_consent_timeout_ms(run.consent) / 1000, timeout_text,
                             sizeof timeout_text);
    tl_log_info("agent running device=%s relay=%s:%u state=%s policy=%s consent_timeout=%s "
                "runbooks=%s",
                state.device, state.relay_host, state.relay_port, state.dir,
                policy != NULL ? "yes" : "none", timeout_text, runbooks_dir);
    uv_run(loop, UV_RUN_DEFAULT);
    tl_log_info("agent stopped");
    return TL_EXIT_OK;
}

static int attend_loop(const char *command, const char *path, const char *follow, char *ticket,
                       size_t ticket_size);
static const char *member(json_t *object, const char *key);
static int64_t int_of(json_t *object, const char *key);
static void local_time_text(int64_t ms, char *out, size_t size);

/* ---- help ------------------------------------------------------------------------------- */

struct help_run {
    int status;
    char ticket[64];
    tl_tunnel_t *tunnel;
    uv_timer_t deadline;
};

static void help_deadline(uv_timer_t *timer)
{
    struct help_run *run = timer->data;
    if (run->status == 0)
        run->status = TL_ETIMEOUT;
    if (run->tunnel != NULL)
        tl_tunnel_stop(run->tunnel);
    run->tunnel = NULL;
    uv_close((uv_handle_t *)timer, NULL);
}

static void help_delivered(tl_tunnel_t *tunnel, const char *request, const char *ticket)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    snprintf(run->ticket, sizeof run->ticket, "%s", ticket);
}

static void help_rejected(tl_tunnel_t *tunnel, const char *request, int error)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    run->status = error;
}

static void help_stopped(tl_tunnel_t *tunnel, int status)
{
    struct help_run *run = tl_tunnel_data(tunnel);
    if (run->status == 0)
        run->status = status;
    run->tunnel = NULL;
    uv_timer_stop(&run->deadline);
    uv_close((uv_handle_t *)&run->deadline, NULL);
    tl_tunnel_stop(tunnel);
}

static const tl_tunnel_events_t help_events = {
    .on_delivered = help_delivered,
    .on_rejected = help_rejected,
    .on_stopped = help_stopped,
};

static void title_from(const char *description, char *title, size_t size)
{
    size_t len = strcspn(description, "\r\n");
    if (len >= size)
        len = size - 1;
    memcpy(title, description, len);
    title[len] = '\0';
    if (strlen(description) > len && len > 3 && len == size - 1)
        memcpy(title + len - 3, "...", 3);
}

static int collect_diagnostics(const tl_agent_state_t *state, char **text)
{
    tl_diag_t *diag = tl_diag_new();
    json_t *report = NULL;
    if (diag == NULL)
        return TL_ENOMEM;
    char relay[300];
    snprintf(relay, sizeof relay, "%s:%u", state->relay_host, state->relay_port);
    tl_diag_set_relay(diag, relay);
    int rc = tl_diag_run(diag, &report);
    tl_diag_free(diag);
    if (rc != 0)
        return rc;
    *text = json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(report);
    return *text != NULL ? 0 : TL_ENOMEM;
}

int tl_agent_cmd_help(int argc, char **argv)
{
    const char *dir = NULL, *title_option = NULL, *wait = NULL, *positional[1];
    int count, no_wait = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL},
                                 {"title", &title_option, NULL},
                                 {"wait-ms", &wait, NULL},
                                 {"no-wait", NULL, &no_wait},
                                 {0}};
    const char *usage =
        "help \"DESCRIPTION\" [--title TEXT] [--state DIR] [--wait-ms N] [--no-wait]";
    int status =
        tl_cli_parse(PROGRAM, "help", usage, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        return status;
    if (count != 1 || positional[0][0] == '\0') {
        fprintf(stderr,
                PROGRAM " help: describe the problem in a few words\nusage: " PROGRAM " %s\n",
                usage);
        return TL_EXIT_USAGE;
    }
    /*
     * Kept as typed, but as text: a byte that is not UTF-8 cannot travel in JSON, so it
     * becomes the four characters \xHH, as it would be shown anyway (docs/technicians.md
     * "Text from others"). Control characters stay; whoever shows the text escapes them.
     */
    char description[8193], title_typed[201];
    char *converted = tl_text_utf8_dup(positional[0], strlen(positional[0]));
    char *converted_title =
        title_option ? tl_text_utf8_dup(title_option, strlen(title_option)) : NULL;
    int too_long = converted == NULL || strlen(converted) >= sizeof description ||
                   (title_option != NULL &&
                    (converted_title == NULL || strlen(converted_title) >= sizeof title_typed));
    if (!too_long) {
        snprintf(description, sizeof description, "%s", converted);
        if (converted_title != NULL)
            snprintf(title_typed, sizeof title_typed, "%s", converted_title);
    }
    free(converted);
    free(converted_title);
    if (too_long) {
        fprintf(stderr, PROGRAM " help: the description is limited to 8192 bytes and the title "
                                "to 200\n");
        return TL_EXIT_USAGE;
    }
    uint64_t wait_ms = 30000;
    if (wait != NULL && tl_cli_parse_uint(wait, 100, 600000, &wait_ms) != 0) {
        fprintf(stderr, PROGRAM " help: --wait-ms wants 100..600000\n");
        return TL_EXIT_USAGE;
    }
    tl_agent_state_t state;
    if ((status = open_state("help", dir, 1, &state)) != 0)
        return status;

    fprintf(stderr, "Gathering diagnostics...\n");
    char *diagnostics = NULL;
    int rc = collect_diagnostics(&state, &diagnostics);
    if (rc != 0)
        return fail("help", "gathering diagnostics", rc);
    char title[201];
    if (title_option != NULL)
        snprintf(title, sizeof title, "%s", title_typed);
    else
        title_from(description, title, 81);
    char request[TL_OUTBOX_ID_LEN], hash[TL_SHA256_HEX_LEN];
    size_t diagnostics_len = strlen(diagnostics);
    rc = tl_sha256_hex(diagnostics, diagnostics_len, hash);
    if (rc == 0)
        rc = tl_outbox_add(state.dir, title, description, "diagnostics.json", "diagnostics",
                           diagnostics, diagnostics_len, request);
    free(diagnostics);
    if (rc != 0)
        return fail("help", "saving the request", rc);
    fprintf(stderr, "Attached diagnostics.json (%zu bytes, sha256 %s) as request %s\n",
            diagnostics_len, hash, request);

    /* A running agent delivers it; otherwise this process does, once. */
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    json_t *call = json_pack("{s:s, s:s}", "cmd", "deliver", "request", request);
    json_t *answer = NULL;
    rc = tl_control_call(socket_path, call, (int)wait_ms, &answer);
    json_decref(call);
    struct help_run run = {0};
    char why[256] = "";
    int through_agent = rc == 0;
    /* An agent that did not answer in time is running all the same: it keeps the request. */
    int agent_running = rc == 0 || rc == TL_ETIMEOUT;
    if (rc == 0) {
        const char *error = json_string_value(json_object_get(answer, "error"));
        const char *message = json_string_value(json_object_get(answer, "message"));
        if (json_is_true(json_object_get(answer, "ok")))
            snprintf(run.ticket, sizeof run.ticket, "%s",
                     json_string_value(json_object_get(answer, "ticket")));
        else if (json_is_true(json_object_get(answer, "queued")))
            run.status = error != NULL && strcmp(error, "EPIN") == 0 ? TL_EPIN : TL_ECLOSED;
        else
            run.status = TL_EINVAL;
        /* The agent's own words: "the relay is unreachable (connection refused)". */
        if (run.status == TL_ECLOSED && message != NULL)
            snprintf(why, sizeof why, "%s", message);
        json_decref(answer);
    } else if (rc == -ENOENT || rc == -ECONNREFUSED) {
        signal(SIGPIPE, SIG_IGN);
        uv_loop_t *loop = uv_default_loop();
        tl_tunnel_options_t tunnel_options = {.state = &state, .once = 1, .only_request = request};
        /* --wait-ms bounds this path too: a stuck relay leaves the request queued. */
        uv_timer_init(loop, &run.deadline);
        run.deadline.data = &run;
        run.tunnel = tl_tunnel_start(loop, &tunnel_options, &help_events, &run, &rc);
        if (run.tunnel == NULL) {
            run.status = rc;
            uv_close((uv_handle_t *)&run.deadline, NULL);
            uv_run(loop, UV_RUN_DEFAULT);
        } else {
            if (!uv_is_closing((uv_handle_t *)&run.deadline))
                uv_timer_start(&run.deadline, help_deadline, wait_ms, 0);
            uv_run(loop, UV_RUN_DEFAULT);
        }
    } else {
        run.status = rc;
    }

    int interactive = !no_wait && isatty(STDIN_FILENO);
    if (run.ticket[0] != '\0') {
        char ticket_shown[4 * sizeof run.ticket];
        tl_text_clip(ticket_shown, sizeof ticket_shown, run.ticket, 0, TL_TEXT_LINE);
        printf("%s\n", ticket_shown);
        fprintf(stderr, "Ticket %s opened with this machine's diagnostics attached.\n",
                ticket_shown);
        fflush(stdout);
        /* From a terminal, stay to answer the technician's requests (docs/consent.md). */
        if (!interactive)
            return TL_EXIT_OK;
        if (!through_agent) {
            fprintf(stderr, "No agent is running, so no technician can connect yet; start one "
                            "with: " PROGRAM " run\n");
            return TL_EXIT_OK;
        }
        attend_loop("help", socket_path, NULL, NULL, 0);
        return TL_EXIT_OK;
    }
    if (run.status == TL_EINVAL) {
        fprintf(stderr, PROGRAM " help: the relay refused the request (kept in %s/%s)\n", state.dir,
                TL_STATE_OUTBOX);
        return TL_EXIT_FAILURE;
    }
    if (run.status == TL_ENOT_ENROLLED)
        fprintf(stderr, PROGRAM " help: the relay does not recognise this agent's key; ask your "
                                "help desk to enroll it again\n");
    else if (run.status == TL_EPIN)
        fprintf(stderr, PROGRAM " help: %s; tell your help desk before trusting it\n",
                tl_tunnel_error_text(TL_EPIN));
    if (why[0] == '\0')
        snprintf(why, sizeof why, "the relay is unreachable (%s)", tl_strerror(run.status));
    fprintf(stderr, "queued: %s\n", why);
    if (!agent_running) {
        fprintf(stderr,
                "Your request %s is saved in %s/%s\n"
                "and will be sent when the agent reconnects (" PROGRAM " run).\n",
                request, state.dir, TL_STATE_OUTBOX);
        return TL_EXIT_QUEUED;
    }
    fprintf(stderr,
            "Your request %s is saved in %s/%s;\n"
            "the running agent sends it as soon as the relay answers (" PROGRAM
            " status shows its ticket then).\n",
            request, state.dir, TL_STATE_OUTBOX);
    if (!interactive || !through_agent)
        return TL_EXIT_QUEUED;
    /* Stay: print the ticket id when it is delivered, and ask the technician's requests. */
    fprintf(stderr,
            "Waiting here for the ticket id (Ctrl-C to leave; the request stays queued).\n");
    attend_loop("help", socket_path, request, run.ticket, sizeof run.ticket);
    return run.ticket[0] != '\0' ? TL_EXIT_OK : TL_EXIT_QUEUED;
}

/* ---- status ------------------------------------------------------------------------------ */

/* Text the user typed, shown with control bytes made visible. */
static void print_visible(const char *text, size_t max)
{
    for (size_t i = 0; text[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

/* The queued requests with what each waits for; [{"request","title","missing"?}]. */
static json_t *queued_details(const char *state_dir, json_t *ids)
{
    json_t *list = json_array();
    size_t i;
    json_t *value;
    json_array_foreach(ids, i, value)
    {
        const char *id = json_string_value(value);
        json_t *request = NULL, *item = json_pack("{s:s}", "request", id);
        char missing[64];
        if (tl_outbox_load(state_dir, id, &request) == 0) {
            json_object_set(item, "title", json_object_get(request, "title"));
            if (tl_outbox_missing(state_dir, id, request, missing, sizeof missing) == 1)
                json_object_set_new(item, "missing", json_string(missing));
        }
        json_decref(request);
        json_array_append_new(list, item);
    }
    return list;
}

int tl_agent_cmd_status(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    int status = tl_cli_parse(PROGRAM, "status", "status [--state DIR] [--json]", argc, argv, 1,
                              options, positional, 0, &count);
    if (status != 0)
        return status;
    tl_agent_state_t state;
    if ((status = open_state("status", dir, 0, &state)) != 0)
        return status;
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    json_t *call = json_pack("{s:s}", "cmd", "status"), *answer = NULL;
    int running = tl_control_call(socket_path, call, 2000, &answer) == 0;
    json_decref(call);
    json_t *queued = NULL, *delivered = NULL, *set_aside = NULL;
    tl_outbox_list(state.dir, &queued);
    tl_outbox_delivered(state.dir, &delivered);
    tl_outbox_set_aside_list(state.dir, &set_aside);
    json_t *details = queued_details(state.dir, queued);
    int connected = running && json_is_true(json_object_get(answer, "connected"));
    const char *link = json_string_value(json_object_get(answer, "link"));
    const char *last_error = json_string_value(json_object_get(answer, "last_error"));
    /* Why the running agent is not connected, when it says (a pin mismatch...). */
    const char *relay_error = json_string_value(json_object_get(answer, "relay_error"));
    const char *relay_error_text = json_string_value(json_object_get(answer, "relay_error_text"));
    if (json_out) {
        json_t *out = json_pack(
            "{s:b, s:s, s:s, s:b, s:b, s:O, s:O, s:O, s:O}", "enrolled", state.enrolled, "device",
            state.device, "state", state.dir, "running", running, "connected", connected, "queued",
            queued, "queued_details", details, "delivered", delivered, "set_aside", set_aside);
        if (out != NULL && running && link != NULL)
            json_object_set_new(out, "link", json_string(link));
        if (out != NULL && running && last_error != NULL)
            json_object_set_new(out, "last_error", json_string(last_error));
        if (out != NULL && !connected && relay_error != NULL) {
            json_object_set_new(out, "relay_error", json_string(relay_error));
            json_object_set_new(out, "relay_error_text",
                                json_string(relay_error_text ? relay_error_text : ""));
        }
        char *text = tl_text_json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        printf("state:     %s\n", state.dir);
        if (state.enrolled)
            printf("enrolled:  %s with relay %s:%u\n", state.device, state.relay_host,
                   state.relay_port);
        else
            printf("enrolled:  no\n");
        if (!running)
            printf("agent:     not running\n");
        else if (connected)
            printf("agent:     running, connected\n");
        else if (link != NULL && strcmp(link, "unreachable") == 0)
            printf("agent:     running, the relay is unreachable (%s); retrying\n",
                   last_error != NULL ? last_error : "no answer");
        else
            printf("agent:     running, connecting\n");
        if (running && !connected && relay_error_text != NULL)
            printf("relay:     %s\n", relay_error_text);
        printf("queued:    %zu request(s)\n", json_array_size(details));
        size_t i;
        json_t *item;
        json_array_foreach(details, i, item)
        {
            printf("  %s \"", member(item, "request"));
            print_visible(member(item, "title"), 80);
            if (json_object_get(item, "missing") != NULL)
                printf("\": its evidence file %s is missing here; the relay will be asked "
                       "whether it has it\n",
                       member(item, "missing"));
            else
                printf("\": waiting for the relay\n");
        }
        if (json_array_size(delivered) > 0)
            printf("delivered: %zu request(s) lately\n", json_array_size(delivered));
        json_array_foreach(delivered, i, item)
        {
            char when[64];
            local_time_text(int_of(item, "delivered_ms"), when, sizeof when);
            printf("  %s -> ticket ", member(item, "request"));
            print_visible(member(item, "ticket"), 32);
            printf(" \"");
            print_visible(member(item, "title"), 80);
            printf("\" (%s)\n", when);
        }
        if (json_array_size(set_aside) > 0)
            printf("set aside: %zu request(s), never sent again\n", json_array_size(set_aside));
        json_array_foreach(set_aside, i, item)
        {
            printf("  %s %s: %s (kept in %s)\n", member(item, "request"), member(item, "why"),
                   member(item, "detail"), member(item, "path"));
        }
    }
    json_decref(answer);
    json_decref(queued);
    json_decref(details);
    json_decref(delivered);
    json_decref(set_aside);
    return TL_EXIT_OK;
}

/* ---- consent: attend, pending, approve, deny, sessions, end --------------------------------- */

/* The running agent's control socket; prints why not and returns non-zero when there is none. */
static int consent_socket(const char *command, const char *dir, char *path, size_t size)
{
    tl_agent_state_t state;
    int status = open_state(command, dir, 0, &state);
    if (status != 0)
        return status;
    tl_state_path(state.dir, TL_STATE_SOCKET, path, size);
    return 0;
}

/* One request to the running agent; prints the failure and returns non-zero on one. */
static int consent_call(const char *command, const char *path, json_t *request, json_t **answer)
{
    int rc = tl_control_call(path, request, 10000, answer);
    json_decref(request);
    if (rc == -ENOENT || rc == -ECONNREFUSED) {
        fprintf(stderr, PROGRAM " %s: the agent is not running (start it with: " PROGRAM " run)\n",
                command);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return fail(command, "talking to the agent", rc);
    if (!json_is_true(json_object_get(*answer, "ok"))) {
        const char *message = json_string_value(json_object_get(*answer, "message"));
        char why[SHOWN_MAX], error[64];
        tl_text_clip(why, sizeof why, message ? message : "refused", 0, TL_TEXT_LINE);
        tl_text_clip(error, sizeof error, json_string_value(json_object_get(*answer, "error")), 0,
                     TL_TEXT_LINE);
        fprintf(stderr, PROGRAM " %s: %s (%s)\n", command, why, error[0] ? error : "?");
        json_decref(*answer);
        *answer = NULL;
        return TL_EXIT_FAILURE;
    }
    return 0;
}

static void print_json(json_t *value)
{
    char *text = tl_text_json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "null");
    free(text);
}

static void local_time_text(int64_t ms, char *out, size_t size)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm local;
    if (localtime_r(&seconds, &local) == NULL ||
        strftime(out, size, "%Y-%m-%d %H:%M:%S", &local) == 0)
        snprintf(out, size, "?");
}

static void scopes_text(json_t *scopes, char *out, size_t size)
{
    unsigned bits = 0;
    size_t i;
    json_t *scope;
    json_array_foreach(scopes, i, scope)
    {
        bits |= tl_scope_bit(json_string_value(scope));
    }
    tl_scope_text(bits, out, size);
}

static const char *member(json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text != NULL ? text : "?";
}

/*
 * A member as the user is shown it: escaped as one line (docs/consent.md
 * "Asking the user"). The texts come from the relay and from technicians;
 * buf holds the escaped form, clipped with "…" only if it would not fit.
 */
static const char *shown(char *buf, size_t size, json_t *object, const char *key)
{
    tl_text_clip(buf, size, member(object, key), 0, TL_TEXT_LINE);
    return buf;
}

static int64_t int_of(json_t *object, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(object, key));
}

/* The question as the user sees it (docs/consent.md "Asking the user"). */
static void print_question(json_t *question)
{
    char scopes[128], duration[32];
    scopes_text(json_object_get(question, "scopes"), scopes, sizeof scopes);
    tl_consent_duration_text((uint64_t)int_of(question, "duration_s"), duration, sizeof duration);
    char technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX], reason[SHOWN_MAX],
        id[SHOWN_MAX];
    printf("Technician %s (%s) asks for: %s\n",
           shown(technician, sizeof technician, question, "technician"),
           shown(role, sizeof role, question, "role"), scopes);
    printf("  ticket %s, for %s: %s\n", shown(ticket, sizeof ticket, question, "ticket"), duration,
           shown(reason, sizeof reason, question, "reason"));
    json_t *runbook = json_object_get(question, "runbook");
    if (json_is_object(runbook)) {
        /* A fix: which runbook, what it does (this machine's catalogue) and every value. */
        char name[SHOWN_MAX], what[SHOWN_MAX], value[SHOWN_MAX];
        printf("  runbook %s%s: %s\n", shown(name, sizeof name, runbook, "name"),
               json_is_true(json_object_get(runbook, "privileged")) ? " (privileged, as root)" : "",
               shown(what, sizeof what, runbook, "description"));
        const char *key;
        json_t *arg;
        json_object_foreach(json_object_get(runbook, "args"), key, arg)
        {
            tl_text_clip(name, sizeof name, key, 0, TL_TEXT_LINE);
            tl_text_clip(value, sizeof value, json_string_value(arg), 0, TL_TEXT_LINE);
            printf("    %s=%s\n", name, value);
        }
    }
    int64_t left = (int_of(question, "deadline_ms") - tl_wall_ms()) / 1000;
    tl_consent_duration_text(left > 0 ? (uint64_t)left : 0, duration, sizeof duration);
    printf("  question %s, open for %s\n", shown(id, sizeof id, question, "id"), duration);
}

static void print_grant_line(json_t *grant)
{
    char scopes[128], until[64];
    scopes_text(json_object_get(grant, "scopes"), scopes, sizeof scopes);
    local_time_text(int_of(grant, "expires_ms"), until, sizeof until);
    char id[SHOWN_MAX], state[SHOWN_MAX], technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX],
        by[SHOWN_MAX], text[SHOWN_MAX];
    tl_text_pad(id, sizeof id, member(grant, "id"), 6);
    tl_text_pad(state, sizeof state, member(grant, "state"), 8);
    printf("%s %s %s (%s) for %s: %s; by %s, until %s\n", id, state,
           shown(technician, sizeof technician, grant, "technician"),
           shown(role, sizeof role, grant, "role"), shown(ticket, sizeof ticket, grant, "ticket"),
           scopes, shown(by, sizeof by, grant, "by"), until);
    if (json_object_get(grant, "end_reason") != NULL) {
        local_time_text(int_of(grant, "ended_ms"), until, sizeof until);
        printf("       ended %s: %s\n", until, shown(text, sizeof text, grant, "end_reason"));
    }
    size_t i;
    json_t *channel;
    json_array_foreach(json_object_get(grant, "channels"), i, channel)
    {
        char type[SHOWN_MAX];
        printf("       channel %lld %s: %s\n", (long long)int_of(channel, "channel"),
               shown(type, sizeof type, channel, "type"),
               shown(text, sizeof text, channel, "what"));
    }
}

int tl_agent_cmd_pending(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    int status = tl_cli_parse(PROGRAM, "pending", "pending [--state DIR] [--json]", argc, argv, 1,
                              options, positional, 0, &count);
    char path[TL_STATE_PATH_MAX];
    json_t *answer = NULL;
    if (status != 0 || (status = consent_socket("pending", dir, path, sizeof path)) != 0 ||
        (status = consent_call("pending", path, json_pack("{s:s}", "cmd", "pending"), &answer)) !=
            0)
        return status;
    json_t *questions = json_object_get(answer, "questions");
    if (json_out) {
        print_json(questions);
    } else if (json_array_size(questions) == 0) {
        printf("No questions waiting.\n");
    } else {
        size_t i;
        json_t *question;
        json_array_foreach(questions, i, question)
        {
            char id[SHOWN_MAX];
            print_question(question);
            shown(id, sizeof id, question, "id");
            printf("  answer: " PROGRAM " approve %s  |  " PROGRAM " deny %s\n", id, id);
        }
    }
    json_decref(answer);
    return TL_EXIT_OK;
}

int tl_agent_cmd_approve(int argc, char **argv)
{
    const char *dir = NULL, *duration = NULL, *positional[1];
    int count;
    const char *usage = "approve QUESTION [--for DURATION] [--state DIR]";
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"for", &duration, NULL}, {0}};
    int status =
        tl_cli_parse(PROGRAM, "approve", usage, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        return status;
    uint64_t ms = 0;
    if (count != 1) {
        fprintf(stderr,
                PROGRAM " approve: name the question (Q-N, see " PROGRAM
                        " pending)\nusage: " PROGRAM " %s\n",
                usage);
        return TL_EXIT_USAGE;
    }
    if (duration != NULL && (tl_cli_parse_duration(duration, &ms) != 0 ||
                             ms > (uint64_t)TL_CONSENT_MAX_DURATION_S * 1000)) {
        fprintf(stderr, PROGRAM " approve: --for wants a duration like 30m or 2h (at most 1d)\n");
        return TL_EXIT_USAGE;
    }
    char path[TL_STATE_PATH_MAX];
    json_t *answer = NULL;
    json_t *request = json_pack("{s:s, s:s}", "cmd", "approve", "id", positional[0]);
    if (duration != NULL)
        json_object_set_new(request, "duration_s", json_integer((json_int_t)(ms / 1000)));
    if ((status = consent_socket("approve", dir, path, sizeof path)) != 0) {
        json_decref(request);
        return status;
    }
    if ((status = consent_call("approve", path, request, &answer)) != 0)
        return status;
    json_t *grant = json_object_get(answer, "grant");
    char scopes[128], until[64];
    scopes_text(json_object_get(grant, "scopes"), scopes, sizeof scopes);
    local_time_text(int_of(grant, "expires_ms"), until, sizeof until);
    char id[SHOWN_MAX], technician[SHOWN_MAX], ticket[SHOWN_MAX];
    printf("Granted %s: %s may use %s on ticket %s until %s\n", shown(id, sizeof id, grant, "id"),
           shown(technician, sizeof technician, grant, "technician"), scopes,
           shown(ticket, sizeof ticket, grant, "ticket"), until);
    json_decref(answer);
    return TL_EXIT_OK;
}

int tl_agent_cmd_deny(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    const char *usage = "deny QUESTION [--state DIR]";
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    int status =
        tl_cli_parse(PROGRAM, "deny", usage, argc, argv, 1, options, positional, 1, &count);
    if (status != 0)
        return status;
    if (count != 1) {
        fprintf(stderr,
                PROGRAM " deny: name the question (Q-N, see " PROGRAM " pending)\nusage: " PROGRAM
                        " %s\n",
                usage);
        return TL_EXIT_USAGE;
    }
    char path[TL_STATE_PATH_MAX];
    json_t *answer = NULL;
    if ((status = consent_socket("deny", dir, path, sizeof path)) != 0 ||
        (status =
             consent_call("deny", path, json_pack("{s:s, s:s}", "cmd", "deny", "id", positional[0]),
                          &answer)) != 0)
        return status;
    printf("Declined %s.\n", positional[0]);
    json_decref(answer);
    return TL_EXIT_OK;
}

/* The grants from grants.json when no agent runs (nothing live can have channels then). */
static json_t *grants_from_file(const char *state_dir)
{
    uv_loop_t loop;
    char problem[512];
    int rc;
    json_t *grants = NULL;
    if (uv_loop_init(&loop) != 0)
        return NULL;
    tl_consent_config_t config = {.state_dir = state_dir};
    tl_consent_t *consent =
        tl_consent_new(&loop, &config, NULL, NULL, &rc, problem, sizeof problem);
    if (consent == NULL) {
        fprintf(stderr, PROGRAM " sessions: %s\n", problem);
    } else {
        grants = tl_consent_grants(consent);
        size_t i;
        json_t *grant;
        json_array_foreach(grants, i, grant)
        {
            json_object_set_new(grant, "channels", json_array());
        }
        tl_consent_free(consent);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return grants;
}

int tl_agent_cmd_sessions(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    int status = tl_cli_parse(PROGRAM, "sessions", "sessions [--state DIR] [--json]", argc, argv, 1,
                              options, positional, 0, &count);
    if (status != 0)
        return status;
    tl_agent_state_t state;
    if ((status = open_state("sessions", dir, 0, &state)) != 0)
        return status;
    char path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, path, sizeof path);
    json_t *answer = NULL, *grants = NULL;
    json_t *request = json_pack("{s:s}", "cmd", "sessions");
    int rc = tl_control_call(path, request, 10000, &answer);
    json_decref(request);
    int running = rc == 0;
    if (running && json_is_true(json_object_get(answer, "ok")))
        grants = json_incref(json_object_get(answer, "grants"));
    else if (!running && (rc == -ENOENT || rc == -ECONNREFUSED))
        grants = grants_from_file(state.dir);
    json_decref(answer);
    if (grants == NULL) {
        if (running || (rc != -ENOENT && rc != -ECONNREFUSED))
            fprintf(stderr, PROGRAM " sessions: the agent did not answer: %s\n",
                    tl_strerror(rc ? rc : TL_EPROTO));
        return TL_EXIT_FAILURE;
    }
    if (json_out) {
        json_t *out = json_pack("{s:b, s:O}", "running", running, "grants", grants);
        print_json(out);
        json_decref(out);
    } else {
        if (!running)
            printf("(the agent is not running: grants as recorded in %s/%s)\n", state.dir,
                   TL_CONSENT_GRANTS_FILE);
        if (json_array_size(grants) == 0)
            printf("No grants.\n");
        size_t i;
        json_t *grant;
        json_array_foreach(grants, i, grant)
        {
            print_grant_line(grant);
        }
    }
    json_decref(grants);
    return TL_EXIT_OK;
}

int tl_agent_cmd_end(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    int status = tl_cli_parse(PROGRAM, "end", "end [GRANT] [--state DIR]", argc, argv, 1, options,
                              positional, 1, &count);
    if (status != 0)
        return status;
    char path[TL_STATE_PATH_MAX];
    json_t *answer = NULL;
    json_t *request = json_pack("{s:s}", "cmd", "end");
    if (count == 1)
        json_object_set_new(request, "grant", json_string(positional[0]));
    if ((status = consent_socket("end", dir, path, sizeof path)) != 0) {
        json_decref(request);
        return status;
    }
    if ((status = consent_call("end", path, request, &answer)) != 0)
        return status;
    json_int_t ended = json_integer_value(json_object_get(answer, "ended"));
    if (count == 1)
        printf("Ended %s: its sessions are closed.\n", positional[0]);
    else if (ended == 0)
        printf("No live grants.\n");
    else
        printf("Ended %lld grant(s): their sessions are closed.\n", (long long)ended);
    json_decref(answer);
    return TL_EXIT_OK;
}

/* ---- attend ---------------------------------------------------------------------------------- */

static volatile sig_atomic_t attend_stop;

static void attend_signal(int signum)
{
    (void)signum;
    attend_stop = 1;
}

struct attend {
    const char *path;
    int tty;          /* /dev/tty, or -1 */
    json_t *queue;    /* questions not yet asked, oldest first */
    json_t *current;  /* the question on the terminal now */
    char answer[256]; /* what the user typed so far */
    size_t answer_len;
    const char *follow; /* `help`: the queued request whose ticket id to print */
    char *ticket;       /* where that ticket id goes */
    size_t ticket_size;
};

static void attend_prompt_next(struct attend *attend)
{
    if (attend->tty < 0 || attend->current != NULL || json_array_size(attend->queue) == 0)
        return;
    attend->current = json_incref(json_array_get(attend->queue, 0));
    json_array_remove(attend->queue, 0);
    attend->answer_len = 0;
    print_question(attend->current);
    printf("Allow? [y/N] ");
    fflush(stdout);
}

/* Someone answered (here, elsewhere, or the timeout): forget the question. */
static void attend_settled(struct attend *attend, const char *id)
{
    size_t i;
    json_t *question;
    json_array_foreach(attend->queue, i, question)
    {
        if (strcmp(member(question, "id"), id) == 0) {
            json_array_remove(attend->queue, i);
            break;
        }
    }
    if (attend->current != NULL && strcmp(member(attend->current, "id"), id) == 0) {
        printf("\n");
        json_decref(attend->current);
        attend->current = NULL;
    }
}

static void attend_answer(struct attend *attend, int yes)
{
    json_t *question = attend->current;
    const char *id = member(question, "id");
    json_t *request = json_pack("{s:s, s:s}", "cmd", yes ? "approve" : "deny", "id", id);
    json_t *answer = NULL;
    int rc = tl_control_call(attend->path, request, 10000, &answer);
    json_decref(request);
    if (rc != 0 || !json_is_true(json_object_get(answer, "ok"))) {
        const char *message = json_string_value(json_object_get(answer, "message"));
        char shown_id[SHOWN_MAX], why[SHOWN_MAX];
        tl_text_clip(shown_id, sizeof shown_id, id, 0, TL_TEXT_LINE);
        tl_text_clip(why, sizeof why, message ? message : tl_strerror(rc), 0, TL_TEXT_LINE);
        printf("Could not answer %s: %s\n", shown_id, why);
    }
    json_decref(answer);
    attend->current = NULL;
    json_decref(question);
}

static void attend_event(struct attend *attend, json_t *event)
{
    const char *kind = member(event, "event");
    char scopes[128], until[64];
    /* Everything from the events is shown escaped: it comes from the relay and technicians. */
    char id[SHOWN_MAX], technician[SHOWN_MAX], role[SHOWN_MAX], ticket[SHOWN_MAX], text[SHOWN_MAX];
    if (strcmp(kind, "question") == 0) {
        if (attend->tty < 0) {
            print_question(event);
            shown(id, sizeof id, event, "id");
            printf("  answer: " PROGRAM " approve %s  |  " PROGRAM " deny %s\n", id, id);
        } else if (json_array_size(attend->queue) < TL_CONSENT_MAX_PENDING) {
            json_array_append(attend->queue, event);
        }
    } else if (strcmp(kind, "granted") == 0) {
        json_t *grant = json_object_get(event, "grant");
        if (json_is_string(json_object_get(event, "question")))
            attend_settled(attend, member(event, "question"));
        scopes_text(json_object_get(grant, "scopes"), scopes, sizeof scopes);
        local_time_text(int_of(grant, "expires_ms"), until, sizeof until);
        printf("Granted %s to %s (%s): %s on ticket %s until %s (%s)\n",
               shown(id, sizeof id, grant, "id"),
               shown(technician, sizeof technician, grant, "technician"),
               shown(role, sizeof role, grant, "role"), scopes,
               shown(ticket, sizeof ticket, grant, "ticket"), until,
               strcmp(member(event, "by"), "policy") == 0     ? "by the unattended policy"
               : strcmp(member(event, "by"), "existing") == 0 ? "an existing grant"
                                                              : "by you");
    } else if (strcmp(kind, "denied") == 0) {
        if (json_is_string(json_object_get(event, "question")))
            attend_settled(attend, member(event, "question"));
        printf("Not granted: %s on ticket %s: %s\n",
               shown(technician, sizeof technician, event, "technician"),
               shown(ticket, sizeof ticket, event, "ticket"),
               shown(text, sizeof text, event, "reason"));
    } else if (strcmp(kind, "activity") == 0) {
        printf("  [%s] %s\n", shown(id, sizeof id, event, "grant"),
               shown(text, sizeof text, event, "text"));
    } else if (strcmp(kind, "ended") == 0) {
        printf("Grant %s (%s, ticket %s) ended: %s\n", shown(id, sizeof id, event, "grant"),
               shown(technician, sizeof technician, event, "technician"),
               shown(ticket, sizeof ticket, event, "ticket"),
               shown(text, sizeof text, event, "reason"));
    } else if (strcmp(kind, "delivered") == 0) {
        const char *request = member(event, "request");
        shown(ticket, sizeof ticket, event, "ticket");
        if (attend->follow != NULL && strcmp(request, attend->follow) == 0) {
            /* The id alone on stdout, as when `help` is answered at once. */
            if (attend->ticket != NULL && attend->ticket[0] == '\0') {
                snprintf(attend->ticket, attend->ticket_size, "%s", ticket);
                printf("%s\n", ticket);
                fflush(stdout);
                fprintf(stderr, "Ticket %s opened with this machine's diagnostics attached.\n",
                        ticket);
            }
        } else {
            printf("Request %s delivered: ticket %s\n", shown(id, sizeof id, event, "request"),
                   ticket);
        }
    } else if (strcmp(kind, "set-aside") == 0) {
        printf("Request %s was set aside and will not be sent: %s (see " PROGRAM " status)\n",
               shown(id, sizeof id, event, "request"), shown(text, sizeof text, event, "message"));
    }
    fflush(stdout);
}

/* Reads what the user typed; answers the current question at the end of a line. */
static void attend_read_tty(struct attend *attend)
{
    char buf[256];
    ssize_t n = read(attend->tty, buf, sizeof buf);
    if (n <= 0) {
        /* The terminal is gone (Ctrl-D, hang-up): go on showing events only. */
        close(attend->tty);
        attend->tty = -1;
        printf("\nNo more answers from this terminal; use " PROGRAM " approve/deny.\n");
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (attend->answer_len < sizeof attend->answer - 1)
                attend->answer[attend->answer_len++] = buf[i];
            continue;
        }
        attend->answer[attend->answer_len] = '\0';
        if (attend->current != NULL) {
            const char *text = attend->answer;
            int yes = strcasecmp(text, "y") == 0 || strcasecmp(text, "yes") == 0;
            attend_answer(attend, yes);
        }
        attend->answer_len = 0;
        attend_prompt_next(attend);
    }
}

static int connect_watch(const char *path, const char *follow)
{
    char watch[128];
    int len = follow != NULL ? snprintf(watch, sizeof watch,
                                        "{\"cmd\":\"watch\",\"request\":\"%s\"}\n", follow)
                             : snprintf(watch, sizeof watch, "{\"cmd\":\"watch\"}\n");
    if (len <= 0 || len >= (int)sizeof watch || (follow != NULL && !tl_outbox_id_valid(follow)))
        return TL_EINVAL;
    int fd = tl_control_connect(path);
    if (fd < 0)
        return fd;
    if (send(fd, watch, (size_t)len, MSG_NOSIGNAL) != (ssize_t)len) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/*
 * Attended mode: shows questions and activity from the running agent, and
 * asks the user about each question on the terminal. Until Ctrl-C (0) or the
 * agent stops (1).
 */
static int attend_loop(const char *command, const char *path, const char *follow, char *ticket,
                       size_t ticket_size)
{
    int fd = connect_watch(path, follow);
    if (fd == -ENOENT || fd == -ECONNREFUSED) {
        fprintf(stderr, PROGRAM " %s: the agent is not running (start it with: " PROGRAM " run)\n",
                command);
        return TL_EXIT_FAILURE;
    }
    if (fd < 0)
        return fail(command, "connecting to the agent", fd);
    struct attend attend = {.path = path,
                            .queue = json_array(),
                            .follow = follow,
                            .ticket = ticket,
                            .ticket_size = ticket_size};
    attend.tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct sigaction action = {.sa_handler = attend_signal}, old_int, old_term;
    sigemptyset(&action.sa_mask);
    attend_stop = 0;
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    if (attend.tty >= 0)
        printf("Attending: technicians' requests will be asked here (Ctrl-C to leave).\n");
    else
        printf("No terminal: showing requests only; answer them with " PROGRAM
               " approve Q-N or " PROGRAM " deny Q-N.\n");
    fflush(stdout);
    char *buf = malloc(TL_CONTROL_MAX_LINE);
    size_t used = 0;
    int status = TL_EXIT_OK, first = 1;
    while (buf != NULL && !attend_stop) {
        struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = attend.tty, .events = POLLIN}};
        int ready = poll(fds, attend.tty >= 0 ? 2 : 1, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            status = fail(command, "waiting for events", -errno);
            break;
        }
        if (attend.tty >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            attend_read_tty(&attend);
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = recv(fd, buf + used, TL_CONTROL_MAX_LINE - used, 0);
        if (n <= 0) {
            printf("\nThe agent stopped.\n");
            status = TL_EXIT_FAILURE;
            break;
        }
        used += (size_t)n;
        char *newline;
        while ((newline = memchr(buf, '\n', used)) != NULL) {
            json_error_t error;
            json_t *event = json_loadb(buf, (size_t)(newline - buf), 0, &error);
            if (first) {
                first = 0;
                if (!json_is_true(json_object_get(event, "ok"))) {
                    char why[SHOWN_MAX];
                    fprintf(stderr, PROGRAM " %s: the agent refused to show events: %s\n", command,
                            shown(why, sizeof why, event, "message"));
                    status = TL_EXIT_FAILURE;
                    attend_stop = 1;
                }
            } else if (event != NULL) {
                attend_event(&attend, event);
            }
            json_decref(event);
            used -= (size_t)(newline - buf) + 1;
            memmove(buf, newline + 1, used);
        }
        if (used == TL_CONTROL_MAX_LINE)
            used = 0; /* a line too long to be ours: drop it */
        attend_prompt_next(&attend);
    }
    if (attend_stop && status == TL_EXIT_OK)
        printf("\nLeft attended mode. Open questions wait for " PROGRAM
               " approve/deny or their timeout.\n");
    fflush(stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(buf);
    json_decref(attend.current);
    json_decref(attend.queue);
    if (attend.tty >= 0)
        close(attend.tty);
    close(fd);
    return status;
}

int tl_agent_cmd_attend(int argc, char **argv)
{
    const char *dir = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {0}};
    int status = tl_cli_parse(PROGRAM, "attend", "attend [--state DIR]", argc, argv, 1, options,
                              positional, 0, &count);
    char path[TL_STATE_PATH_MAX];
    if (status != 0 || (status = consent_socket("attend", dir, path, sizeof path)) != 0)
        return status;
    return attend_loop("attend", path, NULL, NULL, 0);
}
