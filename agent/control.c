#include "agent/control.h"
#include "proto/err.h"
#include "proto/msg_tickets.h"
#include "proto/log.h"
#include "proto/text.h"
#include "proto/vocab.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Delivered requests remembered for watchers that arrive just after the delivery. */
#define RECENT_DELIVERIES 32

struct client {
    uv_pipe_t pipe;
    tl_control_t *control;
    struct client *next;
    uint64_t serial; /* names the client to answers that come later (approvals) */
    char line[TL_CONTROL_MAX_LINE];
    size_t line_len;
    char waiting_for[64]; /* a request id whose delivery this client awaits */
    unsigned closing : 1;
    unsigned watching : 1;
};

struct tl_control {
    uv_pipe_t listener;
    uv_loop_t *loop;
    tl_tunnel_t *tunnel;
    const tl_agent_state_t *state;
    tl_consent_t *consent;
    tl_sessions_t *sessions;
    tl_notify_t *notify;
    struct client *clients;
    uint64_t next_serial;
    json_t *recent; /* [{"request","ticket"}], newest last */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* An answer that comes later: an approval waiting for its grant to be on disk
 * (agent/consent.h), or the relay's list of tickets. */
struct approval {
    tl_control_t *control;
    uint64_t client;
};

/* How long the relay has to list the tickets. */
#define TICKETS_TIMEOUT_MS 30000

static void client_closed(uv_handle_t *handle)
{
    struct client *client = handle->data;
    tl_control_t *control = client->control;
    for (struct client **at = &control->clients; *at != NULL; at = &(*at)->next) {
        if (*at == client) {
            *at = client->next;
            break;
        }
    }
    free(client);
}

static void client_close(struct client *client)
{
    if (client->closing)
        return;
    client->closing = 1;
    uv_close((uv_handle_t *)&client->pipe, client_closed);
}

static void write_done(uv_write_t *req, int status)
{
    free(req->data);
    free(req);
}

static void reply(struct client *client, json_t *answer)
{
    if (client->closing)
        return;
    size_t len = 0;
    char *line = tl_text_json_line(answer, JSON_COMPACT, &len);
    if (line == NULL)
        return;
    uv_write_t *req = malloc(sizeof *req);
    if (req == NULL) {
        free(line);
        return;
    }
    req->data = line;
    uv_buf_t buf = uv_buf_init(line, (unsigned)len);
    if (uv_write(req, (uv_stream_t *)&client->pipe, &buf, 1, write_done) != 0) {
        free(line);
        free(req);
        client_close(client);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&client->pipe) > TL_CONTROL_MAX_QUEUED) {
        tl_log_warn("control socket: a client stopped reading, closing it");
        client_close(client);
    }
}

static void reply_error(struct client *client, const char *error, const char *message)
{
    json_t *answer = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", error, "message", message);
    reply(client, answer);
    json_decref(answer);
}

static void reply_rc(struct client *client, int rc, const char *message)
{
    reply_error(client, tl_err_name(rc), message[0] ? message : tl_strerror(rc));
}

static void reply_ok(struct client *client, json_t *answer)
{
    if (answer == NULL) {
        reply_error(client, "ENOMEM", tl_strerror(TL_ENOMEM));
        return;
    }
    json_object_set_new(answer, "ok", json_true());
    reply(client, answer);
    json_decref(answer);
}

static struct client *client_by_serial(tl_control_t *control, uint64_t serial)
{
    for (struct client *client = control->clients; client != NULL; client = client->next)
        if (client->serial == serial && !client->closing)
            return client;
    return NULL;
}

static void approval_done(void *data, int error, const tl_grant_t *grant, const char *message)
{
    struct approval *approval = data;
    struct client *client = client_by_serial(approval->control, approval->client);
    if (client != NULL) {
        if (error != 0)
            reply_rc(client, error, message ? message : "");
        else
            reply_ok(client, json_pack("{s:o}", "grant", tl_grant_json(grant, grant->granted_ms)));
    }
    free(approval);
}

/* The consent commands; 1 if cmd was one of them. */
static int handle_consent(struct client *client, enum tl_control_type cmd, json_t *request)
{
    tl_control_t *control = client->control;
    switch (cmd) {
    case TL_CONTROL_PENDING:
    case TL_CONTROL_APPROVE:
    case TL_CONTROL_DENY:
    case TL_CONTROL_SESSIONS:
    case TL_CONTROL_END:
    case TL_CONTROL_WATCH:
        break;
    default:
        return 0;
    }
    char message[1024] = "";
    if (control->consent == NULL) {
        reply_error(client, "EINVAL", "consent is not served by this agent");
        return 1;
    }
    const char *id = json_string_value(json_object_get(request, "id"));
    if (cmd == TL_CONTROL_PENDING) {
        reply_ok(client, json_pack("{s:o}", "questions", tl_consent_pending(control->consent)));
    } else if (cmd == TL_CONTROL_APPROVE) {
        json_t *duration = json_object_get(request, "duration_s");
        if (id == NULL ||
            (duration != NULL && (!json_is_integer(duration) || json_integer_value(duration) < 1 ||
                                  json_integer_value(duration) > 86400))) {
            reply_error(client, "EINVAL",
                        "approve needs \"id\" and an optional "
                        "\"duration_s\" of 1..86400");
            return 1;
        }
        struct approval *approval = malloc(sizeof *approval);
        if (approval == NULL) {
            reply_rc(client, TL_ENOMEM, "");
            return 1;
        }
        approval->control = control;
        approval->client = client->serial;
        /* The answer waits until the grant is on disk: approved means recorded. */
        unsigned how =
            (json_is_true(json_object_get(request, "each")) ? TL_CONSENT_EACH : 0) |
            (json_is_true(json_object_get(request, "keep")) ? TL_CONSENT_KEEP : 0) |
            (json_is_true(json_object_get(request, "pull_only")) ? TL_CONSENT_PULL_ONLY : 0);
        int rc = tl_consent_approve(control->consent, id,
                                    duration ? (uint32_t)json_integer_value(duration) : 0, how,
                                    approval_done, approval, message, sizeof message);
        if (rc != 0) {
            free(approval);
            reply_rc(client, rc, message);
        }
    } else if (cmd == TL_CONTROL_DENY) {
        int rc =
            id == NULL ? TL_EINVAL : tl_consent_deny(control->consent, id, message, sizeof message);
        if (rc != 0)
            reply_rc(client, rc, id == NULL ? "deny needs \"id\"" : message);
        else
            reply_ok(client, json_object());
    } else if (cmd == TL_CONTROL_SESSIONS) {
        json_t *grants = tl_consent_grants(control->consent);
        size_t i;
        json_t *grant;
        json_array_foreach(grants, i, grant) {
            const char *grant_id = json_string_value(json_object_get(grant, "id"));
            json_object_set_new(grant, "channels",
                                control->sessions != NULL
                                    ? tl_sessions_list(control->sessions, grant_id)
                                    : json_array());
        }
        reply_ok(client, json_pack("{s:o}", "grants", grants));
    } else if (cmd == TL_CONTROL_END) {
        json_t *grant = json_object_get(request, "grant");
        size_t count = 0;
        if (grant != NULL && !json_is_string(grant)) {
            reply_error(client, "EINVAL", "\"grant\" must be a grant id like \"G-3\"");
            return 1;
        }
        int rc = tl_consent_end(control->consent, json_string_value(grant), "ended by the user",
                                &count, message, sizeof message);
        if (rc != 0)
            reply_rc(client, rc, message);
        else
            reply_ok(client, json_pack("{s:I}", "ended", (json_int_t)count));
    } else {
        client->watching = 1;
        reply_ok(client, json_pack("{s:b}", "watching", 1));
        json_t *questions = tl_consent_pending(control->consent);
        size_t i;
        json_t *question;
        json_array_foreach(questions, i, question) {
            json_object_set_new(question, "event",
                                json_string(tl_control_type_name(TL_CONTROL_EVENT_QUESTION)));
            reply(client, question);
        }
        json_decref(questions);
        /* A request delivered just before the watcher came: it hears of it all the same. */
        const char *followed = json_string_value(json_object_get(request, "request"));
        json_t *recent;
        json_array_foreach(control->recent, i, recent) {
            if (followed != NULL &&
                strcmp(json_string_value(json_object_get(recent, "request")), followed) == 0) {
                json_t *event = json_deep_copy(recent);
                json_object_set_new(event, "event",
                                    json_string(tl_control_type_name(TL_CONTROL_EVENT_DELIVERED)));
                reply(client, event);
                json_decref(event);
            }
        }
    }
    return 1;
}

static const char *link_name(enum tl_tunnel_link link)
{
    return link == TL_TUNNEL_CONNECTED    ? "connected"
           : link == TL_TUNNEL_CONNECTING ? "connecting"
                                          : "unreachable";
}

/*
 * The request stays in the outbox for now: {"ok":false,"queued":true,...}.
 * unreachable: the connection failed; otherwise the relay could not take
 * this request now (it is sent again on the next connection).
 */
static void reply_queued(struct client *client, const char *request, int reason, int unreachable)
{
    /* A pin mismatch or an unknown key is said in its own words (tl_tunnel_error_text). */
    const char *why = reason != 0 ? tl_tunnel_error_text(reason) : NULL;
    char message[256];
    snprintf(message, sizeof message, "%s (%s)",
             unreachable ? "the relay is unreachable" : "the relay could not take it now",
             why != NULL   ? why
             : reason != 0 ? tl_strerror(reason)
                           : "no connection yet");
    json_t *answer =
        json_pack("{s:b, s:b, s:s, s:s, s:s}", "ok", 0, "queued", 1, "request", request, "error",
                  reason != 0 ? tl_err_name(reason) : "ECLOSED", "message", message);
    reply(client, answer);
    json_decref(answer);
}

/* The relay's tickets.list answer, checked against the protocol's limits, to the client. */
static void tickets_answered(void *data, int status, json_t *result)
{
    struct approval *call = data;
    struct client *client = client_by_serial(call->control, call->client);
    free(call);
    if (client == NULL)
        return;
    if (status != 0) {
        reply_rc(client, status,
                 status == TL_ETIMEOUT ? "the relay did not answer in time"
                                       : "the connection "
                                         "to the relay "
                                         "ended");
        return;
    }
    if (!json_is_true(json_object_get(result, "ok"))) {
        /* The relay's code, if it is one: a name of capitals and '_', nothing else. */
        const char *error = json_string_value(json_object_get(result, "error"));
        int named = error != NULL && error[0] == 'E' && strlen(error) < 32 &&
                    strspn(error, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == strlen(error);
        reply_error(client, named ? error : "EIO", "the relay could not list the tickets");
        return;
    }
    tl_ticket_summary_t *items = calloc(TL_TICKETS_LIST_MAX, sizeof *items);
    size_t count = 0;
    int more = 0;
    json_t *answer = NULL;
    int rc = items != NULL ? tl_msg_tickets_decode(result, items, &count, &more) : TL_ENOMEM;
    if (rc == TL_EMSG_MALFORMED)
        tl_log_warn("tickets.list answer refused: a member is missing or out of its limits");
    if (rc == 0)
        rc = tl_msg_tickets_encode(items, count, more, &answer);
    free(items);
    if (rc != 0)
        reply_rc(client, rc == TL_EMSG_MALFORMED ? TL_EPROTO : rc,
                 rc == TL_EMSG_MALFORMED ? "the relay sent a malformed answer" : "");
    else
        reply_ok(client, answer);
}

static void handle_tickets(struct client *client)
{
    tl_control_t *control = client->control;
    int last_error = 0;
    enum tl_tunnel_link link = tl_tunnel_link(control->tunnel, &last_error);
    if (link != TL_TUNNEL_CONNECTED) {
        char message[256];
        const char *why = last_error != 0 ? tl_tunnel_error_text(last_error) : NULL;
        snprintf(message, sizeof message, "%s (%s)",
                 link == TL_TUNNEL_CONNECTING ? "the agent is connecting to the relay"
                                              : "the relay is unreachable",
                 why != NULL       ? why
                 : last_error != 0 ? tl_strerror(last_error)
                                   : "no connection yet");
        reply_error(client, "ECLOSED", message);
        tl_tunnel_kick(control->tunnel);
        return;
    }
    struct approval *call = malloc(sizeof *call);
    json_t *body = json_pack("{s:s}", "type", tl_control_type_name(TL_CONTROL_TICKETS_LIST));
    int rc = call != NULL && body != NULL ? 0 : TL_ENOMEM;
    if (rc == 0) {
        call->control = control;
        call->client = client->serial;
        rc = tl_tunnel_request(control->tunnel, body, TICKETS_TIMEOUT_MS, tickets_answered, call);
    }
    json_decref(body);
    if (rc != 0) {
        free(call);
        reply_rc(client, rc, rc == TL_EFULL ? "too many requests wait for the relay" : "");
    }
}

static void handle_line(struct client *client, const char *line, size_t len)
{
    tl_control_t *control = client->control;
    json_error_t error;
    json_t *request = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
    const char *cmd_name = json_string_value(json_object_get(request, "cmd"));
    enum tl_control_type cmd = tl_control_type_lookup(cmd_name);
    if (cmd_name == NULL) {
        reply_error(client, "EINVAL", "want one JSON object with a \"cmd\" member per line");
    } else if (cmd == TL_CONTROL_STATUS) {
        char relay[300];
        snprintf(relay, sizeof relay, "%s:%u", control->state->relay_host,
                 control->state->relay_port);
        int last_error = 0;
        enum tl_tunnel_link link = tl_tunnel_link(control->tunnel, &last_error);
        json_t *pending = control->consent ? tl_consent_pending(control->consent) : NULL;
        json_t *answer = json_pack("{s:b, s:b, s:s, s:s, s:s, s:I}", "ok", 1, "connected",
                                   link == TL_TUNNEL_CONNECTED, "link", link_name(link), "device",
                                   control->state->device, "relay", relay, "pending",
                                   (json_int_t)json_array_size(pending));
        if (answer != NULL && link == TL_TUNNEL_UNREACHABLE && last_error != 0)
            json_object_set_new(answer, "last_error", json_string(tl_strerror(last_error)));
        json_decref(pending);
        /* Why it is not connected, when the reason is worth saying (a pin mismatch). */
        int relay_error = tl_tunnel_last_error(control->tunnel);
        if (answer != NULL && relay_error != 0) {
            const char *text = tl_tunnel_error_text(relay_error);
            json_object_set_new(answer, "relay_error", json_string(tl_err_name(relay_error)));
            json_object_set_new(answer, "relay_error_text",
                                json_string(text != NULL ? text : tl_strerror(relay_error)));
        }
        if (answer != NULL && control->notify != NULL)
            json_object_set_new(answer, "notifications", tl_notify_state(control->notify));
        reply(client, answer);
        json_decref(answer);
    } else if (cmd == TL_CONTROL_DELIVER) {
        const char *id = json_string_value(json_object_get(request, "request"));
        int last_error = 0;
        if (id == NULL || strlen(id) >= sizeof client->waiting_for) {
            reply_error(client, "EINVAL", "deliver needs a \"request\" id");
        } else if (tl_tunnel_link(control->tunnel, &last_error) == TL_TUNNEL_UNREACHABLE) {
            /* Known unreachable: say so now rather than make the user wait; try again at once. */
            reply_queued(client, id, last_error, 1);
            tl_tunnel_kick(control->tunnel);
        } else {
            snprintf(client->waiting_for, sizeof client->waiting_for, "%s", id);
            tl_tunnel_kick(control->tunnel);
        }
    } else if (cmd == TL_CONTROL_TICKETS) {
        handle_tickets(client);
    } else if (!handle_consent(client, cmd, request)) {
        reply_error(client, "EINVAL", "unknown command");
    }
    json_decref(request);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct client *client = handle->data;
    size_t room = sizeof client->line - client->line_len;
    *buf = uv_buf_init(client->line + client->line_len, (unsigned)room);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct client *client = stream->data;
    if (nread < 0) {
        client_close(client);
        return;
    }
    client->line_len += (size_t)nread;
    char *newline;
    while (!client->closing && (newline = memchr(client->line, '\n', client->line_len)) != NULL) {
        size_t len = (size_t)(newline - client->line);
        handle_line(client, client->line, len);
        memmove(client->line, newline + 1, client->line_len - len - 1);
        client->line_len -= len + 1;
    }
    if (client->line_len == sizeof client->line) {
        reply_error(client, "EFULL", "line too long");
        client_close(client);
    }
}

/* Only the agent's own user, or root, may talk to it. */
static int peer_allowed(uv_pipe_t *pipe)
{
    uv_os_fd_t fd;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (uv_fileno((uv_handle_t *)pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return 0;
    return cred.uid == getuid() || cred.uid == 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    tl_control_t *control = server->data;
    if (status != 0)
        return;
    struct client *client = calloc(1, sizeof *client);
    if (client == NULL)
        return;
    client->control = control;
    client->serial = ++control->next_serial;
    uv_pipe_init(control->loop, &client->pipe, 0);
    client->pipe.data = client;
    client->next = control->clients;
    control->clients = client;
    if (uv_accept(server, (uv_stream_t *)&client->pipe) != 0) {
        client_close(client);
        return;
    }
    if (!peer_allowed(&client->pipe)) {
        tl_log_warn("control socket: refused a connection from another user");
        client_close(client);
        return;
    }
    uv_read_start((uv_stream_t *)&client->pipe, alloc_cb, read_cb);
}

static void listener_closed(uv_handle_t *handle)
{
    tl_control_t *control = handle->data;
    json_decref(control->recent);
    free(control);
}

tl_control_t *tl_control_start(uv_loop_t *loop, const char *path, tl_tunnel_t *tunnel,
                               const tl_agent_state_t *state, int *err)
{
    tl_control_t *control = calloc(1, sizeof *control);
    if (control == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    if (strlen(path) >= sizeof control->path) {
        free(control);
        *err = TL_EINVAL;
        return NULL;
    }
    strcpy(control->path, path);
    control->recent = json_array();
    if (control->recent == NULL) {
        free(control);
        *err = TL_ENOMEM;
        return NULL;
    }
    control->loop = loop;
    control->tunnel = tunnel;
    control->state = state;
    /* A socket file nobody answers on is left over from a crash. */
    json_t *answer = NULL;
    json_t *probe = json_pack("{s:s}", "cmd", tl_control_type_name(TL_CONTROL_STATUS));
    int alive = tl_control_call(path, probe, 1000, &answer) == 0;
    json_decref(probe);
    json_decref(answer);
    if (alive) {
        json_decref(control->recent);
        free(control);
        *err = TL_EEXIST;
        return NULL;
    }
    unlink(path);
    uv_pipe_init(loop, &control->listener, 0);
    control->listener.data = control;
    mode_t old = umask(0177);
    int rc = uv_pipe_bind(&control->listener, path);
    umask(old);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&control->listener, 16, on_connection);
    if (rc != 0) {
        *err = rc;
        uv_close((uv_handle_t *)&control->listener, listener_closed);
        return NULL;
    }
    return control;
}

static void answer_waiters(tl_control_t *control, const char *request, json_t *answer)
{
    for (struct client *client = control->clients; client != NULL; client = client->next) {
        if (strcmp(client->waiting_for, request) == 0) {
            client->waiting_for[0] = '\0';
            reply(client, answer);
        }
    }
}

void tl_control_delivered(tl_control_t *control, const char *request, const char *ticket)
{
    json_t *answer = json_pack("{s:b, s:s, s:s}", "ok", 1, "request", request, "ticket", ticket);
    answer_waiters(control, request, answer);
    json_decref(answer);
    json_t *recent = json_pack("{s:s, s:s}", "request", request, "ticket", ticket);
    if (recent == NULL)
        return;
    if (json_array_size(control->recent) >= RECENT_DELIVERIES)
        json_array_remove(control->recent, 0);
    json_array_append(control->recent, recent);
    json_object_set_new(recent, "event",
                        json_string(tl_control_type_name(TL_CONTROL_EVENT_DELIVERED)));
    tl_control_event(control, recent);
    json_decref(recent);
}

void tl_control_rejected(tl_control_t *control, const char *request, int error)
{
    json_t *answer = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "request", request, "error",
                               tl_err_name(error), "message", tl_strerror(error));
    answer_waiters(control, request, answer);
    json_decref(answer);
    json_t *event =
        json_pack("{s:s, s:s, s:s}", "event", tl_control_type_name(TL_CONTROL_EVENT_SET_ASIDE),
                  "request", request, "message", tl_strerror(error));
    tl_control_event(control, event);
    json_decref(event);
}

void tl_control_queued(tl_control_t *control, const char *request, int reason)
{
    for (struct client *client = control->clients; client != NULL; client = client->next) {
        if (client->waiting_for[0] == '\0' || client->closing ||
            (request != NULL && strcmp(client->waiting_for, request) != 0))
            continue;
        char waited[sizeof client->waiting_for];
        snprintf(waited, sizeof waited, "%s", client->waiting_for);
        client->waiting_for[0] = '\0';
        reply_queued(client, waited, reason, request == NULL);
    }
}

void tl_control_set_consent(tl_control_t *control, tl_consent_t *consent, tl_sessions_t *sessions)
{
    control->consent = consent;
    control->sessions = sessions;
}

void tl_control_set_notify(tl_control_t *control, tl_notify_t *notify)
{
    control->notify = notify;
}

void tl_control_event(tl_control_t *control, json_t *event)
{
    if (control == NULL)
        return;
    for (struct client *client = control->clients; client != NULL;) {
        /* reply() may start closing the client; the list changes only in its close callback. */
        struct client *next = client->next;
        if (client->watching && !client->closing)
            reply(client, event);
        client = next;
    }
}

void tl_control_stop(tl_control_t *control)
{
    if (control == NULL)
        return;
    for (struct client *client = control->clients; client != NULL; client = client->next)
        client_close(client);
    unlink(control->path);
    uv_close((uv_handle_t *)&control->listener, listener_closed);
}

/* ---- client side ----------------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tl_control_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return TL_EINVAL;
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int tl_control_call(const char *path, json_t *request, int timeout_ms, json_t **answer)
{
    *answer = NULL;
    int fd = tl_control_connect(path);
    if (fd < 0)
        return fd;
    int rc = 0;
    char *text = NULL;
    char *buf = NULL;
    text = json_dumps(request, JSON_COMPACT);
    if (text == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    size_t len = strlen(text);
    if (send(fd, text, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
        rc = -errno;
        goto out;
    }
    buf = malloc(TL_CONTROL_MAX_ANSWER);
    if (buf == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    size_t used = 0;
    int64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        char *newline = memchr(buf, '\n', used);
        if (newline != NULL) {
            json_error_t error;
            *answer = json_loadb(buf, (size_t)(newline - buf), 0, &error);
            rc = *answer ? 0 : TL_EPROTO;
            break;
        }
        int64_t left = deadline - monotonic_ms();
        if (left <= 0 || used == TL_CONTROL_MAX_ANSWER) {
            rc = left <= 0 ? TL_ETIMEOUT : TL_EFULL;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            continue;
        ssize_t n = recv(fd, buf + used, TL_CONTROL_MAX_ANSWER - used, 0);
        if (n <= 0) {
            rc = n == 0 ? TL_ECLOSED : -errno;
            break;
        }
        used += (size_t)n;
    }
out:
    free(buf);
    free(text);
    close(fd);
    return rc;
}
