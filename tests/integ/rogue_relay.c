/*
 * rogue_relay: a scriptable relay, for testing what the agent allows a relay
 * to do (docs/consent.md, docs/protocol.md §7.6-7.9).
 *
 *   rogue_relay --data DIR --listen 127.0.0.1:PORT [--device D-1] [--heartbeat-ms N]
 *               [--welcome-heartbeat JSON]
 *
 * It holds a real relay's key (DIR/relay.key and relay.crt, made by
 * `tierline-relay init`), so an agent enrolled with that relay connects to it
 * as to the real one. It accepts one agent at a time (a new connection
 * replaces the old), welcomes it as relay/net/agent_server.c does (or with the JSON
 * value of --welcome-heartbeat as heartbeat_ms; "none" leaves it out), and then does what
 * it is told: one JSON command per line on stdin, one JSON event per line on
 * stdout. Unlike the real relay it asks for anything, in any order, for
 * anyone: it is the relay a compromised host would run.
 *
 * Commands:
 *   {"request":{...body...}[, "request_id":N]}   CONTROL request; event "sent"
 *   {"notify":{...body...}}                      CONTROL notification (request id 0)
 *   {"open":"exec","params":{...},"id":"x"}      open a channel tagged "x"
 *   {"open_raw":"exec","same_id_as":"x","params":{...},"id":"y"}
 *                                                another CHANNEL_OPEN naming x's id,
 *                                                which a relay must never send while
 *                                                x is open; the answer is tagged "y"
 *   {"send_data":{"id":"x","text":"..."|"base64":"...","stream":0}}
 *   {"eof":"x"}  {"close":"x"}                   half-close, close
 *   {"disconnect":true}                          close the agent's connection
 *   {"quit":true}                                (also: end of stdin)
 * Events:
 *   {"event":"listening","port":N}  {"event":"connected","fingerprint":"SHA256:..."}
 *   {"event":"disconnected","reason":"ECLOSED"}
 *   {"event":"sent","request_id":N}
 *   {"event":"result","request_id":N,"body":{...}}
 *   {"event":"control","request_id":N,"body":{...}}   anything else the agent sends
 *   {"event":"confirm","id":"x","agent_channel":N}
 *   {"event":"refuse","id":"x","reason":30030,"message":"..."}
 *   {"event":"data","id":"x","stream":0,"base64":"...","text":"..."}  (text if UTF-8)
 *   {"event":"eof","id":"x"}
 *   {"event":"close","id":"x","exit_status":N,"exit_signal":"HUP"}
 *   {"event":"error","message":"..."}             a command it could not carry out
 * Requests from the agent (ticket.create...) are answered with an error.
 */
#include "proto/addr.h"
#include "proto/err.h"
#include "proto/keys.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "proto/tls.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_LINE (1024 * 1024)
#define MAX_TAGS 256
#define MAX_TAG 64

struct tag {
    char name[MAX_TAG + 1];
    uint32_t channel;
    unsigned used : 1;
};

static struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_pipe_t input;
    tl_tls_ctx_t *tls;
    tl_peer_t *peer;
    char device[80];
    uint32_t heartbeat_ms;
    json_t *welcome_heartbeat; /* what the welcome says; NULL: heartbeat_ms, or left out */
    unsigned welcome_without_heartbeat : 1;
    uint32_t next_request_id;
    struct tag tags[MAX_TAGS];
    /* An open_raw waiting for the agent's answer, kept away from the mux. */
    char raw_name[MAX_TAG + 1];
    uint32_t raw_channel;
    unsigned raw_waiting : 1;
    char *line;
    size_t line_len;
    unsigned quitting : 1;
} rogue;

static void emit(json_t *event)
{
    if (event == NULL)
        return;
    char *text = json_dumps(event, JSON_COMPACT);
    if (text != NULL) {
        fputs(text, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    free(text);
    json_decref(event);
}

static void emit_error(const char *message)
{
    emit(json_pack("{s:s, s:s}", "event", "error", "message", message));
}

static struct tag *tag_by_channel(uint32_t channel)
{
    for (size_t i = 0; i < MAX_TAGS; i++)
        if (rogue.tags[i].used && rogue.tags[i].channel == channel)
            return &rogue.tags[i];
    return NULL;
}

static struct tag *tag_by_name(const char *name)
{
    for (size_t i = 0; name != NULL && i < MAX_TAGS; i++)
        if (rogue.tags[i].used && strcmp(rogue.tags[i].name, name) == 0)
            return &rogue.tags[i];
    return NULL;
}

static const char *tag_name(uint32_t channel)
{
    struct tag *tag = tag_by_channel(channel);
    return tag != NULL ? tag->name : "?";
}

static int utf8_text(const uint8_t *data, size_t len)
{
    if (memchr(data, 0, len) != NULL)
        return 0;
    json_t *probe = json_stringn((const char *)data, len); /* NULL unless valid UTF-8 */
    json_decref(probe);
    return probe != NULL;
}

/* ---- the agent's channel events -------------------------------------------------- */

static void on_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    emit(json_pack("{s:s, s:s#}", "event", "agent_open", "type",
                   (const char *)request->channel_type.ptr, (int)request->channel_type.len));
    tl_mux_refuse(tl_peer_mux(ctx), channel, (uint32_t)-TL_EINVAL, "this relay takes nothing");
}

static void on_confirm(void *ctx, uint32_t channel)
{
    uint32_t agent_channel = 0;
    tl_mux_peer_channel(tl_peer_mux(ctx), channel, &agent_channel);
    emit(json_pack("{s:s, s:s, s:I}", "event", "confirm", "id", tag_name(channel), "agent_channel",
                   (json_int_t)agent_channel));
}

static void on_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    struct tag *tag = tag_by_channel(channel);
    emit(json_pack("{s:s, s:s, s:I, s:s#}", "event", "refuse", "id", tag_name(channel), "reason",
                   (json_int_t)reason, "message", (const char *)message.ptr, (int)message.len));
    if (tag != NULL)
        tag->used = 0;
}

static void on_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data, size_t len)
{
    size_t encoded_len = 4 * ((len + 2) / 3) + 1;
    char *encoded = malloc(encoded_len);
    if (encoded != NULL) {
        EVP_EncodeBlock((unsigned char *)encoded, data, (int)len);
        json_t *event = json_pack("{s:s, s:s, s:i, s:s}", "event", "data", "id", tag_name(channel),
                                  "stream", stream, "base64", encoded);
        if (utf8_text(data, len))
            json_object_set_new(event, "text", json_stringn((const char *)data, len));
        emit(event);
    }
    free(encoded);
    tl_mux_consumed(tl_peer_mux(ctx), channel, len);
}

static void on_eof(void *ctx, uint32_t channel)
{
    emit(json_pack("{s:s, s:s}", "event", "eof", "id", tag_name(channel)));
}

static void on_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    struct tag *tag = tag_by_channel(channel);
    json_t *event = json_pack("{s:s, s:s}", "event", "close", "id", tag_name(channel));
    if (close->flags & TL_CLOSE_HAS_EXIT_STATUS)
        json_object_set_new(event, "exit_status", json_integer(close->exit_status));
    if (close->flags & TL_CLOSE_HAS_EXIT_SIGNAL)
        json_object_set_new(
            event, "exit_signal",
            json_stringn((const char *)close->exit_signal.ptr, close->exit_signal.len));
    emit(event);
    if (tag != NULL)
        tag->used = 0;
}

static const tl_mux_callbacks_t channel_callbacks = {
    .on_open = on_open,
    .on_confirm = on_confirm,
    .on_refuse = on_refuse,
    .on_data = on_data,
    .on_eof = on_eof,
    .on_close = on_close,
};

/* ---- the agent's connection ---------------------------------------------------------- */

static void on_ready(tl_peer_t *peer)
{
    json_t *welcome = json_pack("{s:s, s:s}", "type", "welcome", "device", rogue.device);
    if (rogue.welcome_heartbeat != NULL)
        json_object_set(welcome, "heartbeat_ms", rogue.welcome_heartbeat);
    else if (!rogue.welcome_without_heartbeat)
        json_object_set_new(welcome, "heartbeat_ms", json_integer(rogue.heartbeat_ms));
    tl_peer_send_control(peer, 0, welcome);
    json_decref(welcome);
    tl_peer_set_heartbeat(peer, rogue.heartbeat_ms);
    const char *fingerprint = tl_peer_fingerprint(peer);
    emit(json_pack("{s:s, s:s}", "event", "connected", "fingerprint",
                   fingerprint ? fingerprint : ""));
}

static int on_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    if (msg->type != TL_MSG_CONTROL)
        return TL_EPROTO;
    uint32_t request_id = msg->u.control.request_id;
    json_t *body = msg->u.control.body;
    const char *type = json_string_value(json_object_get(body, "type"));
    int is_result = request_id != 0 && type != NULL && strcmp(type, "result") == 0;
    emit(json_pack("{s:s, s:I, s:O}", "event", is_result ? "result" : "control", "request_id",
                   (json_int_t)request_id, "body", body));
    if (request_id != 0 && !is_result) {
        /* Retryable, so the agent keeps what it asked for. */
        json_t *answer = json_pack("{s:s, s:b, s:s, s:s}", "type", "result", "ok", 0, "error",
                                   "ESTORE", "message", "this relay stores nothing");
        tl_peer_send_control(peer, request_id, answer);
        json_decref(answer);
    }
    return 0;
}

static void on_closed(tl_peer_t *peer, int reason)
{
    if (peer == rogue.peer) {
        rogue.peer = NULL;
        memset(rogue.tags, 0, sizeof rogue.tags);
        rogue.raw_waiting = 0;
    }
    emit(json_pack("{s:s, s:s}", "event", "disconnected", "reason",
                   reason ? tl_err_name(reason) : "closed"));
}

/* The agent's answer to an open_raw: the mux never opened that channel. */
static int on_channel_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    (void)peer;
    if (!rogue.raw_waiting)
        return 0;
    if (msg->type == TL_MSG_CHANNEL_CONFIRM &&
        msg->u.confirm.recipient_channel == rogue.raw_channel) {
        rogue.raw_waiting = 0;
        emit(json_pack("{s:s, s:s, s:I}", "event", "confirm", "id", rogue.raw_name, "agent_channel",
                       (json_int_t)msg->u.confirm.sender_channel));
        return 1;
    }
    if (msg->type == TL_MSG_CHANNEL_REFUSE &&
        msg->u.refuse.recipient_channel == rogue.raw_channel) {
        rogue.raw_waiting = 0;
        emit(json_pack("{s:s, s:s, s:I, s:s#}", "event", "refuse", "id", rogue.raw_name, "reason",
                       (json_int_t)msg->u.refuse.reason, "message",
                       (const char *)msg->u.refuse.message.ptr, (int)msg->u.refuse.message.len));
        return 1;
    }
    return 0;
}

static const tl_peer_callbacks_t peer_callbacks = {
    .on_ready = on_ready,
    .on_message = on_message,
    .on_closed = on_closed,
    .on_channel_message = on_channel_message,
};

static int accept_any(void *data, const char *fingerprint)
{
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status != 0)
        return;
    if (rogue.peer != NULL) {
        tl_peer_close(rogue.peer, 0, "replaced by a newer connection");
        rogue.peer = NULL;
        memset(rogue.tags, 0, sizeof rogue.tags);
        rogue.raw_waiting = 0;
    }
    tl_peer_config_t config = {"tierline-relay/rogue", TL_PEER_DEFAULT_HELLO_TIMEOUT_MS, 0, NULL,
                               NULL};
    int err = 0;
    rogue.peer =
        tl_peer_accept(server, rogue.tls, &config, &peer_callbacks, &channel_callbacks, NULL, &err);
    if (rogue.peer == NULL)
        emit_error(tl_strerror(err));
}

/* ---- commands ------------------------------------------------------------------------ */

static tl_mux_t *mux_or_complain(void)
{
    if (rogue.peer == NULL) {
        emit_error("no agent is connected");
        return NULL;
    }
    return tl_peer_mux(rogue.peer);
}

static void command_open(json_t *command)
{
    const char *type = json_string_value(json_object_get(command, "open"));
    const char *name = json_string_value(json_object_get(command, "id"));
    json_t *params = json_object_get(command, "params");
    tl_mux_t *mux = mux_or_complain();
    if (mux == NULL)
        return;
    if (type == NULL || name == NULL || strlen(name) > MAX_TAG || tag_by_name(name) != NULL ||
        (params != NULL && !json_is_object(params))) {
        emit_error("open wants \"open\":TYPE, a new \"id\" and optional \"params\":{}");
        return;
    }
    struct tag *tag = NULL;
    for (size_t i = 0; i < MAX_TAGS && tag == NULL; i++)
        if (!rogue.tags[i].used)
            tag = &rogue.tags[i];
    if (tag == NULL) {
        emit_error("too many channels");
        return;
    }
    int rc = tl_mux_open(mux, type, params, &tag->channel);
    if (rc != 0) {
        emit_error(tl_strerror(rc));
        return;
    }
    snprintf(tag->name, sizeof tag->name, "%s", name);
    tag->used = 1;
}

static void command_open_raw(json_t *command)
{
    const char *type = json_string_value(json_object_get(command, "open_raw"));
    const char *name = json_string_value(json_object_get(command, "id"));
    struct tag *same = tag_by_name(json_string_value(json_object_get(command, "same_id_as")));
    json_t *params = json_object_get(command, "params");
    if (mux_or_complain() == NULL)
        return;
    if (type == NULL || name == NULL || strlen(name) > MAX_TAG || same == NULL ||
        rogue.raw_waiting || (params != NULL && !json_is_object(params))) {
        emit_error("open_raw wants \"open_raw\":TYPE, \"same_id_as\":an open channel's id, "
                   "\"id\" and optional \"params\":{}");
        return;
    }
    tl_msg_t msg = {.type = TL_MSG_CHANNEL_OPEN};
    msg.u.open.sender_channel = same->channel;
    msg.u.open.initial_window = TL_MUX_DEFAULT_WINDOW;
    msg.u.open.max_packet = TL_MUX_DEFAULT_MAX_PACKET;
    msg.u.open.channel_type = tl_str_from(type);
    msg.u.open.params = params;
    int rc = tl_peer_send(rogue.peer, &msg);
    if (rc != 0) {
        emit_error(tl_strerror(rc));
        return;
    }
    snprintf(rogue.raw_name, sizeof rogue.raw_name, "%s", name);
    rogue.raw_channel = same->channel;
    rogue.raw_waiting = 1;
}

static void command_send(json_t *spec)
{
    tl_mux_t *mux = mux_or_complain();
    struct tag *tag = tag_by_name(json_string_value(json_object_get(spec, "id")));
    if (mux == NULL)
        return;
    if (tag == NULL) {
        emit_error("send_data: no such channel id");
        return;
    }
    const char *text = json_string_value(json_object_get(spec, "text"));
    const char *encoded = json_string_value(json_object_get(spec, "base64"));
    json_int_t stream = json_integer_value(json_object_get(spec, "stream"));
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (text != NULL) {
        len = json_string_length(json_object_get(spec, "text"));
        bytes = malloc(len + 1);
        if (bytes != NULL)
            memcpy(bytes, text, len);
    } else if (encoded != NULL) {
        size_t encoded_len = strlen(encoded);
        bytes = malloc(encoded_len / 4 * 3 + 3);
        int n = bytes != NULL && encoded_len % 4 == 0
                    ? EVP_DecodeBlock(bytes, (const unsigned char *)encoded, (int)encoded_len)
                    : -1;
        if (n < 0) {
            free(bytes);
            emit_error("send_data: bad base64");
            return;
        }
        len = (size_t)n;
        while (len > 0 && encoded_len >= 1 && encoded[--encoded_len] == '=')
            len--;
    }
    if (bytes == NULL) {
        emit_error("send_data wants \"text\" or \"base64\"");
        return;
    }
    size_t written = 0;
    int rc = tl_mux_write(mux, tag->channel, (uint8_t)stream, bytes, len, &written);
    free(bytes);
    if (rc != 0)
        emit_error(tl_strerror(rc));
    else if (written < len)
        emit_error("send_data: the agent's window is full");
}

static void command_tagged(json_t *value, int close)
{
    tl_mux_t *mux = mux_or_complain();
    struct tag *tag = tag_by_name(json_string_value(value));
    if (mux == NULL)
        return;
    if (tag == NULL) {
        emit_error("no such channel id");
        return;
    }
    int rc = close ? tl_mux_close(mux, tag->channel, NULL) : tl_mux_eof(mux, tag->channel);
    if (rc != 0)
        emit_error(tl_strerror(rc));
}

static void stop_everything(void);

static void handle_command(const char *line, size_t len)
{
    json_error_t error;
    json_t *command = json_loadb(line, len, 0, &error);
    json_t *value;
    if (!json_is_object(command)) {
        emit_error("each line must be one JSON object");
    } else if ((value = json_object_get(command, "request")) != NULL) {
        json_t *id = json_object_get(command, "request_id");
        uint32_t request_id =
            json_is_integer(id) ? (uint32_t)json_integer_value(id) : ++rogue.next_request_id;
        if (json_is_object(value) && request_id != 0 && rogue.peer != NULL &&
            tl_peer_send_control(rogue.peer, request_id, value) == 0)
            emit(json_pack("{s:s, s:I}", "event", "sent", "request_id", (json_int_t)request_id));
        else
            emit_error("request: not sent (no agent, or not an object)");
    } else if ((value = json_object_get(command, "notify")) != NULL) {
        if (!json_is_object(value) || rogue.peer == NULL ||
            tl_peer_send_control(rogue.peer, 0, value) != 0)
            emit_error("notify: not sent (no agent, or not an object)");
    } else if (json_object_get(command, "open") != NULL) {
        command_open(command);
    } else if (json_object_get(command, "open_raw") != NULL) {
        command_open_raw(command);
    } else if ((value = json_object_get(command, "send_data")) != NULL) {
        command_send(value);
    } else if ((value = json_object_get(command, "eof")) != NULL) {
        command_tagged(value, 0);
    } else if ((value = json_object_get(command, "close")) != NULL) {
        command_tagged(value, 1);
    } else if (json_object_get(command, "disconnect") != NULL) {
        if (rogue.peer != NULL)
            tl_peer_close(rogue.peer, 0, "the relay hangs up");
    } else if (json_object_get(command, "quit") != NULL) {
        stop_everything();
    } else {
        emit_error("unknown command");
    }
    json_decref(command);
}

static void alloc_input(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(rogue.line + rogue.line_len, (unsigned)(MAX_LINE - rogue.line_len));
}

static void on_input(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) {
        stop_everything();
        return;
    }
    rogue.line_len += (size_t)nread;
    char *newline;
    while (!rogue.quitting && (newline = memchr(rogue.line, '\n', rogue.line_len)) != NULL) {
        size_t len = (size_t)(newline - rogue.line);
        handle_command(rogue.line, len);
        memmove(rogue.line, newline + 1, rogue.line_len - len - 1);
        rogue.line_len -= len + 1;
    }
    if (rogue.line_len == MAX_LINE) {
        emit_error("command line too long; dropped");
        rogue.line_len = 0;
    }
}

static void stop_everything(void)
{
    if (rogue.quitting)
        return;
    rogue.quitting = 1;
    uv_close((uv_handle_t *)&rogue.input, NULL);
    uv_close((uv_handle_t *)&rogue.listener, NULL);
    if (rogue.peer != NULL)
        tl_peer_close(rogue.peer, 0, "the relay stops");
}

static int load_tls(const char *data_dir)
{
    char path[4096];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int rc;
    snprintf(path, sizeof path, "%s/relay.key", data_dir);
    if ((rc = tl_key_load(path, &key)) != 0)
        goto out;
    snprintf(path, sizeof path, "%s/relay.crt", data_dir);
    if ((rc = tl_cert_load(path, &cert)) != 0)
        goto out;
    tl_tls_config_t config = {
        .role = TL_TLS_SERVER, .key = key, .cert = cert, .check_peer = accept_any};
    rogue.tls = tl_tls_ctx_new(&config, &rc);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return rogue.tls != NULL ? 0 : rc;
}

int main(int argc, char **argv)
{
    const char *data_dir = NULL, *listen = NULL;
    int bad_option = 0;
    snprintf(rogue.device, sizeof rogue.device, "D-1");
    rogue.heartbeat_ms = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            data_dir = argv[i + 1];
        else if (strcmp(argv[i], "--listen") == 0)
            listen = argv[i + 1];
        else if (strcmp(argv[i], "--device") == 0)
            snprintf(rogue.device, sizeof rogue.device, "%s", argv[i + 1]);
        else if (strcmp(argv[i], "--heartbeat-ms") == 0)
            rogue.heartbeat_ms = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--welcome-heartbeat") == 0 && strcmp(argv[i + 1], "none") == 0)
            rogue.welcome_without_heartbeat = 1;
        else if (strcmp(argv[i], "--welcome-heartbeat") == 0 &&
                 (rogue.welcome_heartbeat = json_loads(argv[i + 1], JSON_DECODE_ANY, NULL)) == NULL)
            bad_option = 1;
    }
    if (data_dir == NULL || listen == NULL || rogue.heartbeat_ms < 50 || bad_option) {
        fprintf(stderr, "usage: rogue_relay --data DIR --listen 127.0.0.1:PORT [--device D-N] "
                        "[--heartbeat-ms N] [--welcome-heartbeat JSON|none]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    tl_log_set_level(TL_LOG_WARN);
    int rc = load_tls(data_dir);
    if (rc != 0) {
        fprintf(stderr, "rogue_relay: cannot load the relay key from %s: %s\n", data_dir,
                tl_strerror(rc));
        return 1;
    }
    rogue.line = malloc(MAX_LINE);
    struct sockaddr_storage address;
    if (rogue.line == NULL || tl_addr_parse(listen, &address) != 0) {
        fprintf(stderr, "rogue_relay: bad listen address '%s'\n", listen);
        return 2;
    }
    rogue.loop = uv_default_loop();
    uv_tcp_init(rogue.loop, &rogue.listener);
    if ((rc = uv_tcp_bind(&rogue.listener, (struct sockaddr *)&address, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&rogue.listener, 16, on_connection)) != 0) {
        fprintf(stderr, "rogue_relay: cannot listen on %s: %s\n", listen, uv_strerror(rc));
        return 1;
    }
    struct sockaddr_storage bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&rogue.listener, (struct sockaddr *)&bound, &bound_len);
    emit(json_pack("{s:s, s:i}", "event", "listening", "port",
                   ntohs(((struct sockaddr_in *)&bound)->sin_port)));
    uv_pipe_init(rogue.loop, &rogue.input, 0);
    if (uv_pipe_open(&rogue.input, 0) != 0 ||
        uv_read_start((uv_stream_t *)&rogue.input, alloc_input, on_input) != 0) {
        fprintf(stderr, "rogue_relay: stdin must be a pipe\n");
        return 1;
    }
    uv_run(rogue.loop, UV_RUN_DEFAULT);
    tl_tls_ctx_free(rogue.tls);
    json_decref(rogue.welcome_heartbeat);
    free(rogue.line);
    return 0;
}
