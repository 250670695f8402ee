/*
 * A test client that sends SSH "signal" requests (RFC 4254 §6.9), which the
 * stock OpenSSH client cannot: tests/integ/signals.py drives it.
 *
 *   ssh_signal_client [--pty] PORT USER KEY FINGERPRINT COMMAND
 *
 * Connects to 127.0.0.1:PORT, checks the relay's host key against
 * FINGERPRINT ("SHA256:..."), logs in as USER with the private key file KEY,
 * runs COMMAND without a terminal (with --pty: on an 80x24 "vt100" one, and
 * stdin left open) and copies its stdout and stderr to ours.
 * Each line on our stdin is a signal name, sent as a "signal" request as it
 * is (so unknown names reach the relay too). When the channel closes it
 * prints "exit-status N" or "exit-signal NAME" on stderr and exits 0; 1 on
 * any failure, and after 120 s whatever happens.
 */
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_S 120

/* What the channel ended with: an exit status, or the name of the signal. */
static int exit_status = -1;
static char exit_signal[64];

static void on_exit_status(ssh_session session, ssh_channel channel, int status, void *data)
{
    exit_status = status;
}

static void on_exit_signal(ssh_session session, ssh_channel channel, const char *signal, int core,
                           const char *errmsg, const char *lang, void *data)
{
    snprintf(exit_signal, sizeof exit_signal, "%s", signal != NULL ? signal : "?");
}

static int copy_output(ssh_channel channel, int is_stderr)
{
    char buf[4096];
    int n = ssh_channel_read_timeout(channel, buf, sizeof buf, is_stderr, 50);
    if (n > 0) {
        FILE *out = is_stderr ? stderr : stdout;
        fwrite(buf, 1, (size_t)n, out);
        fflush(out);
    }
    return n;
}

/* Whatever output libssh holds already, without waiting. */
static void drain_output(ssh_channel channel)
{
    char buf[4096];
    for (int is_stderr = 0; is_stderr <= 1; is_stderr++) {
        int n;
        while ((n = ssh_channel_read_nonblocking(channel, buf, sizeof buf, is_stderr)) > 0) {
            FILE *out = is_stderr ? stderr : stdout;
            fwrite(buf, 1, (size_t)n, out);
            fflush(out);
        }
    }
}

/* Signal names from our stdin, one a line, sent as they come. */
static int send_signals(ssh_channel channel, char *line, size_t *used, size_t size)
{
    struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&in, 1, 0) <= 0)
        return 0;
    ssize_t n = read(STDIN_FILENO, line + *used, size - 1 - *used);
    if (n <= 0)
        return 0;
    *used += (size_t)n;
    line[*used] = '\0';
    char *newline;
    while ((newline = strchr(line, '\n')) != NULL) {
        *newline = '\0';
        if (ssh_channel_request_send_signal(channel, line) != SSH_OK) {
            fprintf(stderr, "signal %s not sent: %s\n", line, ssh_get_error(channel));
            return -1;
        }
        fprintf(stderr, "sent-signal %s\n", line);
        size_t rest = *used - (size_t)(newline + 1 - line);
        memmove(line, newline + 1, rest + 1);
        *used = rest;
    }
    if (*used == size - 1)
        *used = 0; /* a line longer than any signal name: dropped */
    return 0;
}

int main(int argc, char **argv)
{
    int with_pty = argc > 1 && strcmp(argv[1], "--pty") == 0;
    argv += with_pty;
    argc -= with_pty;
    if (argc != 6) {
        fprintf(stderr, "usage: ssh_signal_client [--pty] PORT USER KEY FINGERPRINT COMMAND\n");
        return 2;
    }
    int status = 1;
    int port = atoi(argv[1]);
    ssh_key key = NULL, server_key = NULL;
    ssh_channel channel = NULL;
    char *fingerprint = NULL;
    unsigned char *hash = NULL;
    size_t hash_len = 0;
    ssh_session session = ssh_new();
    if (session == NULL)
        goto out;
    ssh_options_set(session, SSH_OPTIONS_HOST, "127.0.0.1");
    ssh_options_set(session, SSH_OPTIONS_PORT, &port);
    ssh_options_set(session, SSH_OPTIONS_USER, argv[2]);
    if (ssh_connect(session) != SSH_OK) {
        fprintf(stderr, "connect: %s\n", ssh_get_error(session));
        goto out;
    }
    if (ssh_get_server_publickey(session, &server_key) != SSH_OK ||
        ssh_get_publickey_hash(server_key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) != 0 ||
        (fingerprint = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hash_len)) ==
            NULL ||
        strcmp(fingerprint, argv[4]) != 0) {
        fprintf(stderr, "host key %s is not %s\n", fingerprint ? fingerprint : "?", argv[4]);
        goto out;
    }
    if (ssh_pki_import_privkey_file(argv[3], NULL, NULL, NULL, &key) != SSH_OK ||
        ssh_userauth_publickey(session, NULL, key) != SSH_AUTH_SUCCESS) {
        fprintf(stderr, "login: %s\n", ssh_get_error(session));
        goto out;
    }
    channel = ssh_channel_new(session);
    static struct ssh_channel_callbacks_struct callbacks = {
        .channel_exit_status_function = on_exit_status,
        .channel_exit_signal_function = on_exit_signal,
    };
    ssh_callbacks_init(&callbacks);
    if (channel == NULL || ssh_set_channel_callbacks(channel, &callbacks) != SSH_OK ||
        ssh_channel_open_session(channel) != SSH_OK ||
        (with_pty && ssh_channel_request_pty_size(channel, "vt100", 80, 24) != SSH_OK) ||
        ssh_channel_request_exec(channel, argv[5]) != SSH_OK) {
        fprintf(stderr, "exec: %s\n", ssh_get_error(session));
        goto out;
    }
    if (!with_pty)
        ssh_channel_send_eof(channel); /* no input: only signals */
    char line[256];
    size_t used = 0;
    time_t deadline = time(NULL) + DEADLINE_S;
    while (!ssh_channel_is_closed(channel) && !ssh_channel_is_eof(channel)) {
        if (time(NULL) > deadline) {
            fprintf(stderr, "timed out\n");
            goto out;
        }
        if (copy_output(channel, 0) < 0 || copy_output(channel, 1) < 0 ||
            send_signals(channel, line, &used, sizeof line) != 0)
            break;
    }
    /*
     * What is left, and the exit status, which follows the EOF; the CLOSE comes last. Once the
     * channel has seen its EOF, libssh's channel reads return at once without reading the
     * socket, so the packets after it are taken in through an event of the session.
     */
    ssh_event event = ssh_event_new();
    if (event == NULL || ssh_event_add_session(event, session) != SSH_OK) {
        fprintf(stderr, "event: %s\n", ssh_get_error(session));
        ssh_event_free(event);
        goto out;
    }
    while (!ssh_channel_is_closed(channel) && exit_status < 0 && exit_signal[0] == '\0' &&
           time(NULL) <= deadline) {
        drain_output(channel);
        if (ssh_event_dopoll(event, 100) == SSH_ERROR)
            break;
    }
    drain_output(channel);
    ssh_event_remove_session(event, session);
    ssh_event_free(event);
    if (exit_signal[0] != '\0')
        fprintf(stderr, "exit-signal %s\n", exit_signal);
    else if (exit_status >= 0)
        fprintf(stderr, "exit-status %d\n", exit_status);
    else
        fprintf(stderr, "no exit status\n");
    status = exit_signal[0] != '\0' || exit_status >= 0 ? 0 : 1;
out:
    if (channel != NULL) {
        ssh_channel_close(channel);
        ssh_channel_free(channel);
    }
    ssh_string_free_char(fingerprint);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(server_key);
    ssh_key_free(key);
    if (session != NULL) {
        ssh_disconnect(session);
        ssh_free(session);
    }
    return status;
}
