#include "agent/commands.h"
#include "agent/control.h"
#include "agent/diag.h"
#include "agent/outbox.h"
#include "agent/state.h"
#include "agent/tunnel.h"
#include "proto/cli.h"
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "tl_version.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PROGRAM "tierline-agent"

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
                   run.device);
        else
            printf("Enrolled as %s with relay %s:%u\n", run.device, enrollment.host,
                   enrollment.port);
        printf("  relay key: %s\n  state:     %s\n", enrollment.fingerprint, state.dir);
        printf("Next: " PROGRAM " run --state %s\n", state.dir);
        status = TL_EXIT_OK;
    } else if (run.answered) {
        fprintf(stderr, PROGRAM " enroll: the relay refused: %s (%s)\n", run.message,
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

static const tl_tunnel_events_t run_events = {
    .on_delivered = run_delivered,
    .on_rejected = run_rejected,
};

static void run_signal(uv_signal_t *handle, int signum)
{
    struct agent_run *run = handle->data;
    tl_log_info("agent stopping signal=%d", signum);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
    uv_close((uv_handle_t *)&run->sigint, NULL);
    tl_control_stop(run->control);
    run->control = NULL;
    tl_tunnel_stop(run->tunnel);
}

int tl_agent_cmd_run(int argc, char **argv)
{
    const char *dir = NULL, *backoff = NULL, *level = NULL, *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", &dir, NULL},
                                 {"backoff-max-ms", &backoff, NULL},
                                 {"log-level", &level, NULL},
                                 {0}};
    const char *usage = "run [--state DIR] [--backoff-max-ms N] [--log-level LEVEL]";
    int status = tl_cli_parse(PROGRAM, "run", usage, argc, argv, 1, options, positional, 0, &count);
    if (status != 0)
        return status;
    uint64_t backoff_max = 0;
    if (backoff != NULL && tl_cli_parse_uint(backoff, 100, 3600000, &backoff_max) != 0) {
        fprintf(stderr, PROGRAM " run: --backoff-max-ms wants 100..3600000\n");
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

    /* One running agent per state directory, decided by a lock the kernel drops on exit. */
    char lock_path[TL_STATE_FILE_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/agent.lock", state.dir);
    int lock_fd = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, PROGRAM " run: an agent is already running on %s\n", state.dir);
        if (lock_fd >= 0)
            close(lock_fd);
        return TL_EXIT_FAILURE;
    }

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct agent_run run = {0};
    tl_tunnel_options_t tunnel_options = {.state = &state, .backoff_max_ms = (uint32_t)backoff_max};
    int rc;
    run.tunnel = tl_tunnel_start(loop, &tunnel_options, &run_events, &run, &rc);
    if (run.tunnel == NULL)
        return fail("run", "starting the tunnel", rc);
    char socket_path[TL_STATE_PATH_MAX];
    tl_state_path(state.dir, TL_STATE_SOCKET, socket_path, sizeof socket_path);
    run.control = tl_control_start(loop, socket_path, run.tunnel, &state, &rc);
    if (run.control == NULL) {
        tl_tunnel_stop(run.tunnel);
        uv_run(loop, UV_RUN_DEFAULT);
        if (rc == TL_EEXIST) {
            fprintf(stderr, PROGRAM " run: an agent is already running on %s\n", state.dir);
            return TL_EXIT_FAILURE;
        }
        return fail("run", "control socket", rc);
    }
    uv_signal_init(loop, &run.sigterm);
    uv_signal_init(loop, &run.sigint);
    run.sigterm.data = run.sigint.data = &run;
    uv_signal_start(&run.sigterm, run_signal, SIGTERM);
    uv_signal_start(&run.sigint, run_signal, SIGINT);
    tl_log_info("agent running device=%s relay=%s:%u state=%s", state.device, state.relay_host,
                state.relay_port, state.dir);
    uv_run(loop, UV_RUN_DEFAULT);
    tl_log_info("agent stopped");
    return TL_EXIT_OK;
}

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
    int count;
    tl_cli_option_t options[] = {
        {"state", &dir, NULL}, {"title", &title_option, NULL}, {"wait-ms", &wait, NULL}, {0}};
    const char *usage = "help \"DESCRIPTION\" [--title TEXT] [--state DIR] [--wait-ms N]";
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
    const char *description = positional[0];
    if (strlen(description) > 8192 || (title_option && strlen(title_option) > 200)) {
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
        snprintf(title, sizeof title, "%s", title_option);
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
    if (rc == 0) {
        if (json_is_true(json_object_get(answer, "ok")))
            snprintf(run.ticket, sizeof run.ticket, "%s",
                     json_string_value(json_object_get(answer, "ticket")));
        else
            run.status = TL_EINVAL;
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

    if (run.ticket[0] != '\0') {
        printf("%s\n", run.ticket);
        fprintf(stderr, "Ticket %s opened with this machine's diagnostics attached.\n", run.ticket);
        return TL_EXIT_OK;
    }
    if (run.status == TL_EINVAL) {
        fprintf(stderr, PROGRAM " help: the relay refused the request (kept in %s/%s)\n", state.dir,
                TL_STATE_OUTBOX);
        return TL_EXIT_FAILURE;
    }
    if (run.status == TL_EPIN)
        fprintf(stderr, PROGRAM " help: the relay does not recognise this agent's key; ask your "
                                "help desk to enroll it again\n");
    fprintf(stderr,
            "The relay could not be reached (%s). Your request %s is saved in %s/%s\n"
            "and will be sent when the agent reconnects (" PROGRAM " run).\n",
            tl_strerror(run.status), request, state.dir, TL_STATE_OUTBOX);
    return TL_EXIT_QUEUED;
}

/* ---- status ------------------------------------------------------------------------------ */

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
    json_t *queued = NULL;
    tl_outbox_list(state.dir, &queued);
    int connected = running && json_is_true(json_object_get(answer, "connected"));
    if (json_out) {
        json_t *out = json_pack("{s:b, s:s, s:s, s:b, s:b, s:O}", "enrolled", state.enrolled,
                                "device", state.device, "state", state.dir, "running", running,
                                "connected", connected, "queued", queued);
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
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
        printf("agent:     %s\n", running ? (connected ? "running, connected"
                                                       : "running, "
                                                         "reconnecting")
                                          : "not running");
        printf("queued:    %zu request(s)\n", json_array_size(queued));
    }
    json_decref(answer);
    json_decref(queued);
    return TL_EXIT_OK;
}
