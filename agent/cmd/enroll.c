/*
 * `tierline-agent enroll`: one exchange with the relay named in the
 * enrollment string (docs/protocol.md §5), pinned to its key; the answer is
 * saved in the state directory (agent/state.h).
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "proto/cli.h"
#include "proto/enrollment.h"
#include "proto/err.h"
#include "proto/peer.h"
#include "proto/text.h"
#include "tl_version.h"

#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

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

#define ENROLL_USAGE "enroll ENROLLMENT-STRING [--state DIR]"

/* The enrollment string and --state; non-zero: the exit status, the reason printed. */
static int enroll_parse(int argc, char **argv, tl_enrollment_t *enrollment, const char **dir)
{
    const char *positional[1];
    int count;
    tl_cli_option_t options[] = {{"state", dir, NULL}, {0}};
    int status = tl_cli_parse(PROGRAM, "enroll", ENROLL_USAGE, argc, argv, 1, options, positional,
                              1, &count);
    if (status != 0)
        return status;
    if (count != 1) {
        fprintf(stderr, PROGRAM " enroll: give the enrollment string from your help desk\n"
                                "usage: " PROGRAM " " ENROLL_USAGE "\n");
        return TL_EXIT_USAGE;
    }
    if (tl_enrollment_parse(positional[0], enrollment) != 0) {
        fprintf(stderr, PROGRAM " enroll: that is not a valid enrollment string (it looks like "
                                "tl1:CODE@HOST:PORT#SHA256:...); check it was copied whole\n");
        return TL_EXIT_USAGE;
    }
    return 0;
}

/* Connects to the relay, asks once and waits for the answer, at most 30 s. */
static void enroll_exchange(struct enrollment_run *run, tl_tls_ctx_t *tls,
                            const struct sockaddr *address)
{
    int rc;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    if (gethostname(run->hostname, sizeof run->hostname - 1) != 0)
        snprintf(run->hostname, sizeof run->hostname, "unknown");
    os_description(run->os, sizeof run->os);
    char software[64];
    snprintf(software, sizeof software, "tierline-agent/%s", TL_VERSION_STRING);
    tl_peer_config_t peer_config = {software, 0, 0, NULL, NULL};
    uv_timer_init(loop, &run->deadline);
    run->deadline.data = run;
    uv_timer_start(&run->deadline, enroll_timeout, 30000, 0);
    run->peer =
        tl_peer_connect(loop, tls, address, &peer_config, &enroll_callbacks, NULL, run, &rc);
    if (run->peer == NULL) {
        uv_close((uv_handle_t *)&run->deadline, NULL);
        run->status = rc;
    }
    uv_run(loop, UV_RUN_DEFAULT);
}

/* What came of the exchange: saved and told on stdout, or why not on stderr; the exit status. */
static int enroll_report(const struct enrollment_run *run, tl_agent_state_t *state)
{
    const tl_enrollment_t *enrollment = run->enrollment;
    int rc;
    /* A key the relay already knows: its enrollment state was lost here; restore it. */
    int restored = run->answered && run->status == TL_EEXIST && run->device[0] != '\0';
    /* What the relay says is shown escaped (docs/technicians.md "Text from others"). */
    char device_shown[4 * sizeof run->device], message_shown[4 * sizeof run->message];
    tl_text_clip(device_shown, sizeof device_shown, run->device, 0, TL_TEXT_LINE);
    tl_text_clip(message_shown, sizeof message_shown, run->message, 0, TL_TEXT_LINE);
    if (run->answered && (run->status == 0 || restored)) {
        snprintf(state->relay_host, sizeof state->relay_host, "%s", enrollment->host);
        state->relay_port = enrollment->port;
        snprintf(state->relay_fingerprint, sizeof state->relay_fingerprint, "%s",
                 enrollment->fingerprint);
        snprintf(state->device, sizeof state->device, "%s", run->device);
        snprintf(state->catalogue_key, sizeof state->catalogue_key, "%s",
                 enrollment->catalogue_key);
        if ((rc = tl_state_save(state)) != 0)
            return tl__cmd_fail("enroll", "saving the enrollment", rc);
        if (restored)
            printf("This agent's key was already enrolled as %s; its state is restored.\n",
                   device_shown);
        else
            printf("Enrolled as %s with relay %s:%u\n", device_shown, enrollment->host,
                   enrollment->port);
        printf("  relay key: %s\n", enrollment->fingerprint);
        if (enrollment->catalogue_key[0] != '\0')
            printf("  catalogue signing key: %s\n", enrollment->catalogue_key);
        else
            printf("  catalogue signing key: none (catalogue updates will be refused)\n");
        printf("  state:     %s\n", state->dir);
        printf("Next: " PROGRAM " run --state %s\n", state->dir);
        return TL_EXIT_OK;
    }
    if (run->answered)
        fprintf(stderr, PROGRAM " enroll: the relay refused: %s (%s)\n", message_shown,
                tl_err_name(run->status));
    else if (run->status == TL_EPIN)
        fprintf(stderr,
                PROGRAM " enroll: the server at %s:%u is not the relay in the enrollment string "
                        "(its key is not %s); refusing to enroll\n",
                enrollment->host, enrollment->port, enrollment->fingerprint);
    else
        fprintf(stderr, PROGRAM " enroll: could not reach the relay at %s:%u: %s\n",
                enrollment->host, enrollment->port, tl_strerror(run->status));
    return TL_EXIT_FAILURE;
}

int tl_agent_cmd_enroll(int argc, char **argv)
{
    const char *dir = NULL;
    tl_enrollment_t enrollment;
    tl_agent_state_t state;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    tl_tls_ctx_t *tls = NULL;
    struct addrinfo *addresses = NULL;
    int rc, status = enroll_parse(argc, argv, &enrollment, &dir);
    if (status != 0 || (status = tl__cmd_open_state("enroll", dir, 0, &state)) != 0)
        goto out;
    if (state.enrolled) {
        fprintf(stderr,
                PROGRAM " enroll: already enrolled as %s with relay %s:%u (state %s)\n"
                        "To enroll again, remove that directory first.\n",
                state.device, state.relay_host, state.relay_port, state.dir);
        status = TL_EXIT_FAILURE;
        goto out;
    }
    rc = tl_state_identity(state.dir, 1, &key, &cert);
    if (rc != 0) {
        status = tl__cmd_fail("enroll", "making the agent key", rc);
        goto out;
    }
    tl_tls_config_t tls_config = {
        .role = TL_TLS_CLIENT, .key = key, .cert = cert, .pin = enrollment.fingerprint};
    tls = tl_tls_ctx_new(&tls_config, &rc);
    if (tls == NULL) {
        status = tl__cmd_fail("enroll", "TLS setup", rc);
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
    struct enrollment_run run = {.enrollment = &enrollment};
    enroll_exchange(&run, tls, addresses->ai_addr);
    status = enroll_report(&run, &state);
out:
    if (addresses != NULL)
        freeaddrinfo(addresses);
    tl_tls_ctx_free(tls);
    X509_free(cert);
    EVP_PKEY_free(key);
    return status;
}
