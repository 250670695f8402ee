#include "agent/tunnel.h"
#include "agent/outbox.h"
#include "agent/files_requests.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/hash.h"
#include "proto/log.h"
#include "proto/peer.h"
#include "proto/vocab.h"
#include "tl_version.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TL_TUNNEL_MAX_EVIDENCE (64u * 1024 * 1024)
/* Channels the relay may have open at once: the mux's own limit. */
#define TL_TUNNEL_MAX_SESSIONS TL_MUX_DEFAULT_MAX_CHANNELS
/* session.ended notices kept while the relay is unreachable. */
#define TL_TUNNEL_MAX_ENDED 64

/* One outbox request being delivered on the current connection. */
struct delivery {
    char request[TL_OUTBOX_ID_LEN];
    uint32_t serial;    /* tells a storage job's answer for this delivery from older ones */
    json_t *body;       /* request.json */
    size_t evidence_at; /* index of the item being uploaded */
    uint8_t *content;   /* that item's bytes */
    size_t content_len;
    size_t sent;
    uint32_t channel;
    uint32_t request_id; /* of the ticket.create, once sent */
    char missing[64];    /* an evidence file that is gone, for confirm_only */
    unsigned uploading : 1;
    unsigned eof_sent : 1;
    unsigned confirm_only : 1; /* evidence missing here: ask the relay without uploading */
};

/* One of the agent's own requests waiting for the relay's answer (tl_tunnel_request). */
struct own_request {
    uint32_t id; /* 0: a free slot */
    uint32_t generation;
    uint64_t deadline;
    tl_tunnel_answer_fn answer;
    void *data;
};

struct tl_tunnel {
    uv_loop_t *loop;
    tl_tunnel_options_t options;
    const tl_tunnel_events_t *events;
    void *data;
    tl_tls_ctx_t *tls;
    tl_peer_t *peer;
    uv_timer_t retry;
    uv_timer_t next;     /* runs deliver_next from the loop, never recursively */
    uv_timer_t requests; /* the earliest deadline of the agent's own requests */
    struct own_request own[TL_TUNNEL_MAX_REQUESTS];
    uv_getaddrinfo_t resolver;
    struct delivery *delivery;
    json_t *skipped; /* requests that failed on this connection */
    char software[64];
    char device[32];
    unsigned attempt;
    int last_error; /* why the last connection attempt failed or ended */
    uint32_t next_request_id;
    uint32_t generation; /* of the current connection: answers to older ones are dropped */
    uint32_t next_serial;
    /* Outbox work runs on a storage lane (agent/storage.h), never on the loop. */
    tl_storage_t *storage;
    tl_storage_t *own_storage;
    size_t jobs; /* storage jobs in flight: the tunnel is freed only when none are */
    /* Channels the relay opened that the sessions module owns (agent/session.h). */
    uint32_t session_channels[TL_TUNNEL_MAX_SESSIONS];
    size_t session_count;
    /* The grant of each, and whether it is a shell (a grant may end with its last shell). */
    char session_grants[TL_TUNNEL_MAX_SESSIONS][24];
    unsigned char session_shells[TL_TUNNEL_MAX_SESSIONS];
    /* Channels held until the user answers for their command (docs/consent.md). */
    struct held_command {
        uint32_t channel;
        char type[16];
        char grant[24];
        json_t *params;
    } held[TL_TUNNEL_MAX_SESSIONS];
    size_t held_count;
    json_t *ended_queue; /* session.ended bodies waiting for a connection */
    unsigned welcomed : 1;
    unsigned resolving : 1;
    unsigned stopping : 1;
    unsigned finished : 1;
    unsigned picking : 1; /* a storage job looks for the next request */
    unsigned closed : 1;  /* handles closing: release started */
    tl_peer_config_t peer_config;
};

uint64_t tl_tunnel_backoff_ms(uint32_t min_ms, uint32_t max_ms, unsigned attempt, uint32_t random)
{
    uint64_t delay = min_ms;
    for (unsigned i = 0; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    /* Full jitter over the upper half: never 0, never in lockstep. */
    uint64_t half = delay / 2;
    uint64_t jittered = half + random % (delay - half + 1);
    return jittered > 0 ? jittered : 1;
}

static void connect_now(tl_tunnel_t *tunnel);
static void deliver_next(tl_tunnel_t *tunnel);

static void on_retry(uv_timer_t *timer)
{
    connect_now(timer->data);
}

static void delivery_free(struct delivery *delivery)
{
    if (delivery == NULL)
        return;
    json_decref(delivery->body);
    free(delivery->content);
    free(delivery);
}

static void handles_closed(uv_handle_t *handle)
{
    tl_tunnel_t *tunnel = handle->data;
    tl_tls_ctx_free(tunnel->tls);
    json_decref(tunnel->skipped);
    json_decref(tunnel->ended_queue);
    tl_storage_free(tunnel->own_storage);
    free(tunnel);
}

static void next_closed(uv_handle_t *handle)
{
    tl_tunnel_t *tunnel = handle->data;
    uv_close((uv_handle_t *)&tunnel->requests, handles_closed);
}

static void retry_closed(uv_handle_t *handle)
{
    tl_tunnel_t *tunnel = handle->data;
    uv_close((uv_handle_t *)&tunnel->next, next_closed);
}

/* Frees the tunnel once nothing of it is in flight (storage jobs included). */
static void maybe_release(tl_tunnel_t *tunnel)
{
    if (!tunnel->stopping || tunnel->peer != NULL || tunnel->resolving || tunnel->jobs > 0 ||
        tunnel->closed)
        return;
    tunnel->closed = 1;
    uv_close((uv_handle_t *)&tunnel->retry, retry_closed);
}

static void on_next(uv_timer_t *timer)
{
    deliver_next(timer->data);
}

/* The next request goes from a fresh loop turn, however many fail in a row. */
static void schedule_next(tl_tunnel_t *tunnel)
{
    if (!tunnel->stopping)
        uv_timer_start(&tunnel->next, on_next, 0, 0);
}

static void finish_once(tl_tunnel_t *tunnel, int status)
{
    if (!tunnel->options.once || tunnel->finished)
        return;
    tunnel->finished = 1;
    if (tunnel->events->on_stopped != NULL)
        tunnel->events->on_stopped(tunnel, status);
}

/* What is queued stays queued for now (request NULL: all of it): tell whoever waits. */
static void still_queued(tl_tunnel_t *tunnel, const char *request, int reason)
{
    if (tunnel->events->on_queued != NULL && !tunnel->stopping)
        tunnel->events->on_queued(tunnel, request, reason);
}

static void schedule_retry(tl_tunnel_t *tunnel)
{
    if (tunnel->stopping)
        return;
    uint32_t random = 0;
    RAND_bytes((unsigned char *)&random, sizeof random);
    uint64_t delay = tl_tunnel_backoff_ms(tunnel->options.backoff_min_ms,
                                          tunnel->options.backoff_max_ms, tunnel->attempt, random);
    tunnel->attempt++;
    tl_log_info("relay unreachable, retrying in_ms=%llu attempt=%u", (unsigned long long)delay,
                tunnel->attempt);
    uv_timer_start(&tunnel->retry, on_retry, delay, 0);
    still_queued(tunnel, NULL, tunnel->last_error);
}

/* ---- storage jobs --------------------------------------------------------------- */

/*
 * Every outbox touch is a job on the storage lane: they run in order, so a
 * removal is done before the next request is picked. A job's answer is
 * dropped when its connection or delivery is gone by the time it arrives.
 */
struct job {
    tl_tunnel_t *tunnel;
    const char *state_dir;
    uint32_t generation;
    uint32_t serial;
    char request[TL_OUTBOX_ID_LEN];
    int rc;
    /* pick */
    json_t *skipped; /* a copy the thread may read */
    char only[TL_OUTBOX_ID_LEN];
    json_t *body;
    int missing;
    char missing_name[64];
    /* evidence */
    char path[64];
    char sha256[TL_SHA256_HEX_LEN];
    uint8_t *content;
    size_t content_len;
    /* finish, set aside */
    char ticket[64];
    char title[256];
    char why[16];
    char detail[256];
    int error;
};

static struct job *job_new(tl_tunnel_t *tunnel)
{
    struct job *job = calloc(1, sizeof *job);
    if (job != NULL) {
        job->tunnel = tunnel;
        job->state_dir = tunnel->options.state->dir;
        job->generation = tunnel->generation;
        job->serial = tunnel->delivery != NULL ? tunnel->delivery->serial : 0;
    }
    return job;
}

static void job_free(struct job *job)
{
    json_decref(job->skipped);
    json_decref(job->body);
    free(job->content);
    free(job);
}

static int job_submit(tl_tunnel_t *tunnel, tl_storage_work_fn work, tl_storage_done_fn done,
                      struct job *job)
{
    int rc = tl_storage_submit(tunnel->storage, work, done, job);
    if (rc == 0)
        tunnel->jobs++;
    return rc;
}

/* A job's answer: 1 if the tunnel should act on it, 0 if it is stopping (then it may go). */
static int job_back(struct job *job)
{
    tl_tunnel_t *tunnel = job->tunnel;
    tunnel->jobs--;
    if (!tunnel->stopping)
        return 1;
    maybe_release(tunnel);
    return 0;
}

/* The delivery a job was for, if it is still the current one. */
static struct delivery *job_delivery(struct job *job)
{
    tl_tunnel_t *tunnel = job->tunnel;
    struct delivery *delivery = tunnel->delivery;
    if (delivery == NULL || job->generation != tunnel->generation ||
        delivery->serial != job->serial)
        return NULL;
    return delivery;
}

static int recover_work(void *data)
{
    struct job *job = data;
    job->rc = tl_outbox_recover(job->state_dir, &job->body);
    return job->rc;
}

static void recover_done(void *data, int result)
{
    struct job *job = data;
    size_t i;
    json_t *action;
    if (result != 0)
        tl_log_warn("outbox recovery incomplete reason=\"%s\"", tl_strerror(result));
    json_array_foreach(job->body, i, action) {
        const char *what = json_string_value(json_object_get(action, "action"));
        const char *request = json_string_value(json_object_get(action, "request"));
        const char *detail = json_string_value(json_object_get(action, "detail"));
        if (strcmp(what, "set-aside") == 0)
            tl_log_error("queued request damaged, set aside request=%s detail=\"%s\" kept=%s/%s/"
                         "damaged-%s",
                         request, detail, job->state_dir, TL_STATE_OUTBOX, request);
        else if (strcmp(what, "incomplete") == 0)
            tl_log_warn("queued request incomplete, the relay will be asked whether it has it "
                        "request=%s detail=\"%s\"",
                        request, detail);
        else
            tl_log_info("outbox recovered request=%s action=%s detail=\"%s\"", request, what,
                        detail);
    }
    if (job_back(job))
        deliver_next(job->tunnel);
    job_free(job);
}

/* ---- delivery ---------------------------------------------------------------- */

static int is_skipped(json_t *skipped, const char *request)
{
    size_t i;
    json_t *value;
    json_array_foreach(skipped, i, value) {
        if (strcmp(json_string_value(value), request) == 0)
            return 1;
    }
    return 0;
}

/* This request cannot go now; try the others, and it again on the next connection. */
static void delivery_failed(tl_tunnel_t *tunnel, int error)
{
    struct delivery *delivery = tunnel->delivery;
    char request[TL_OUTBOX_ID_LEN];
    snprintf(request, sizeof request, "%s", delivery->request);
    tl_log_warn("request not delivered request=%s reason=%s", request, tl_err_name(error));
    json_array_append_new(tunnel->skipped, json_string(request));
    tunnel->delivery = NULL;
    delivery_free(delivery);
    still_queued(tunnel, request, error);
    schedule_next(tunnel);
}

static int set_aside_work(void *data)
{
    struct job *job = data;
    job->rc = tl_outbox_set_aside(job->state_dir, job->request, job->why, job->detail);
    return job->rc;
}

static void set_aside_done(void *data, int result)
{
    struct job *job = data;
    tl_tunnel_t *tunnel = job->tunnel;
    if (result != 0)
        tl_log_error("cannot set aside request=%s reason=\"%s\"", job->request,
                     tl_strerror(result));
    else
        tl_log_error("request set aside request=%s why=%s detail=\"%s\" kept=%s/%s/%s-%s",
                     job->request, job->why, job->detail, job->state_dir, TL_STATE_OUTBOX, job->why,
                     job->request);
    if (job_back(job)) {
        if (tunnel->events->on_rejected != NULL)
            tunnel->events->on_rejected(tunnel, job->request, job->error);
        schedule_next(tunnel);
    }
    job_free(job);
}

/*
 * The request is never sent again: the relay refused it ("rejected"), or it
 * is damaged here ("damaged"). Its folder is kept under a name that says so.
 */
static void set_aside(tl_tunnel_t *tunnel, int error, const char *why, const char *detail)
{
    struct delivery *delivery = tunnel->delivery;
    struct job *job = job_new(tunnel);
    /* Even if the rename fails it is not picked again on this connection. */
    json_array_append_new(tunnel->skipped, json_string(delivery->request));
    tunnel->delivery = NULL;
    if (job != NULL) {
        snprintf(job->request, sizeof job->request, "%s", delivery->request);
        snprintf(job->why, sizeof job->why, "%s", why);
        snprintf(job->detail, sizeof job->detail, "%s", detail);
        job->error = error;
        if (job_submit(tunnel, set_aside_work, set_aside_done, job) == 0) {
            delivery_free(delivery);
            return;
        }
        job_free(job);
    }
    tl_log_error("cannot set aside request=%s reason=\"%s\"", delivery->request,
                 tl_strerror(TL_ENOMEM));
    delivery_free(delivery);
    schedule_next(tunnel);
}

static void reject(tl_tunnel_t *tunnel, int error)
{
    char detail[128];
    snprintf(detail, sizeof detail, "the relay refused it: %s", tl_strerror(error));
    set_aside(tunnel, error, "rejected", detail);
}

/* Reads one evidence file and checks it against its hash; runs on the storage lane. */
static int evidence_work(void *data)
{
    struct job *job = data;
    char path[TL_STATE_FILE_MAX];
    snprintf(path, sizeof path, "%s/%s/%s/%s", job->state_dir, TL_STATE_OUTBOX, job->request,
             job->path);
    char *content = NULL;
    int rc =
        tl_fs_read_file(path, TL_TUNNEL_MAX_EVIDENCE, 0, NULL, NULL, &content, &job->content_len);
    job->content = (uint8_t *)content;
    char actual[TL_SHA256_HEX_LEN];
    if (rc == 0 && (rc = tl_sha256_hex(job->content, job->content_len, actual)) == 0 &&
        strcmp(actual, job->sha256) != 0)
        rc = TL_EMISMATCH; /* the queued file changed: never send something else */
    return rc;
}

static void send_ticket_request(tl_tunnel_t *tunnel)
{
    struct delivery *delivery = tunnel->delivery;
    json_t *body = json_deep_copy(delivery->body);
    json_t *evidence = json_object_get(body, "evidence");
    size_t i;
    json_t *item;
    json_array_foreach(evidence, i, item) {
        json_object_del(item, "path"); /* local detail */
    }
    /* A deflection (self-help solved it) goes as its own message, without a ticket. */
    enum tl_control_type type = tl_outbox_kind_of(body) == TL_OUTBOX_DEFLECTION
                                    ? TL_CONTROL_SELFHELP_DEFLECTED
                                    : TL_CONTROL_TICKET_CREATE;
    json_object_set_new(body, "type", json_string(tl_control_type_name(type)));
    json_object_del(body, "created");
    json_object_del(body, "kind");
    delivery->request_id = ++tunnel->next_request_id;
    int rc = tl_peer_send_control(tunnel->peer, delivery->request_id, body);
    json_decref(body);
    if (rc != 0)
        delivery_failed(tunnel, rc);
}

/*
 * An evidence file named by the request is gone (an older agent could lose
 * it when a removal was interrupted after delivery). The relay may already
 * hold the ticket: the request is sent again without uploading, and the
 * relay answers the ticket if it holds every piece of evidence, ENOTFOUND
 * otherwise (docs/protocol.md §7.5). Never retried on every connection.
 */
static void confirm_only(tl_tunnel_t *tunnel, const char *missing)
{
    struct delivery *delivery = tunnel->delivery;
    delivery->confirm_only = 1;
    snprintf(delivery->missing, sizeof delivery->missing, "%s", missing);
    tl_log_warn("queued request lacks its evidence file, asking the relay whether it has it "
                "request=%s missing=%s",
                delivery->request, missing);
    send_ticket_request(tunnel);
}

static void upload_pump(tl_tunnel_t *tunnel)
{
    struct delivery *delivery = tunnel->delivery;
    tl_mux_t *mux = tl_peer_mux(tunnel->peer);
    while (delivery->sent < delivery->content_len) {
        size_t written = 0;
        int rc =
            tl_mux_write(mux, delivery->channel, TL_STREAM_MAIN, delivery->content + delivery->sent,
                         delivery->content_len - delivery->sent, &written);
        if (rc != 0) {
            delivery_failed(tunnel, rc);
            return;
        }
        if (written == 0)
            return; /* window shut: on_writable resumes */
        delivery->sent += written;
    }
    if (!delivery->eof_sent) {
        delivery->eof_sent = 1;
        tl_mux_eof(mux, delivery->channel);
    }
}

static void evidence_done(void *data, int result)
{
    struct job *job = data;
    tl_tunnel_t *tunnel = job->tunnel;
    struct delivery *delivery = job_back(job) ? job_delivery(job) : NULL;
    if (delivery == NULL) {
        job_free(job);
        return;
    }
    char detail[200];
    json_t *item =
        json_array_get(json_object_get(delivery->body, "evidence"), delivery->evidence_at);
    if (result == -ENOENT) {
        confirm_only(tunnel, job->path);
    } else if (result == TL_EMISMATCH || result == TL_EFULL) {
        /* The queued file changed or grew past what may be sent: never send it. */
        snprintf(detail, sizeof detail, "its evidence file %s %s", job->path,
                 result == TL_EFULL ? "is larger than an upload may be"
                                    : "no longer matches its hash");
        set_aside(tunnel, result, "damaged", detail);
    } else if (result != 0) {
        /* Out of memory, descriptors, a read error: try again later. */
        delivery_failed(tunnel, result);
    } else {
        delivery->content = job->content;
        delivery->content_len = job->content_len;
        job->content = NULL;
        json_t *params =
            json_pack("{s:O, s:O, s:O, s:O}", "sha256", json_object_get(item, "sha256"), "size",
                      json_object_get(item, "size"), "kind", json_object_get(item, "kind"), "name",
                      json_object_get(item, "name"));
        int rc = tl_mux_open(tl_peer_mux(tunnel->peer), tl_channel_type_name(TL_CHANNEL_UPLOAD),
                             params, &delivery->channel);
        json_decref(params);
        if (rc != 0)
            delivery_failed(tunnel, rc);
        else
            delivery->uploading = 1;
    }
    job_free(job);
}

/* Starts the next evidence upload of the current delivery, or the ticket request. */
static void delivery_step(tl_tunnel_t *tunnel)
{
    struct delivery *delivery = tunnel->delivery;
    json_t *evidence = json_object_get(delivery->body, "evidence");
    free(delivery->content);
    delivery->content = NULL;
    delivery->sent = 0;
    delivery->eof_sent = 0;
    if (delivery->evidence_at >= json_array_size(evidence)) {
        send_ticket_request(tunnel);
        return;
    }
    json_t *item = json_array_get(evidence, delivery->evidence_at);
    struct job *job = job_new(tunnel);
    if (job == NULL) {
        delivery_failed(tunnel, TL_ENOMEM);
        return;
    }
    /* tl_outbox_load checked both. */
    snprintf(job->request, sizeof job->request, "%s", delivery->request);
    snprintf(job->path, sizeof job->path, "%s", json_string_value(json_object_get(item, "path")));
    snprintf(job->sha256, sizeof job->sha256, "%s",
             json_string_value(json_object_get(item, "sha256")));
    int rc = job_submit(tunnel, evidence_work, evidence_done, job);
    if (rc != 0) {
        job_free(job);
        delivery_failed(tunnel, rc);
        return;
    }
}

/* Looks for the next request to send, on the storage lane. */
static int pick_work(void *data)
{
    struct job *job = data;
    json_t *ids = NULL;
    int rc = tl_outbox_list(job->state_dir, &ids);
    size_t i;
    json_t *value;
    json_array_foreach(ids, i, value) {
        const char *id = json_string_value(value);
        if (is_skipped(job->skipped, id) || (job->only[0] != '\0' && strcmp(id, job->only) != 0))
            continue;
        snprintf(job->request, sizeof job->request, "%s", id);
        job->rc = tl_outbox_load(job->state_dir, id, &job->body);
        if (job->rc == 0)
            job->missing = tl_outbox_missing(job->state_dir, id, job->body, job->missing_name,
                                             sizeof job->missing_name) == 1;
        break;
    }
    json_decref(ids);
    return rc;
}

static void pick_done(void *data, int result)
{
    struct job *job = data;
    tl_tunnel_t *tunnel = job->tunnel;
    if (!job_back(job)) {
        job_free(job);
        return;
    }
    tunnel->picking = 0;
    if (job->generation != tunnel->generation || tunnel->delivery != NULL || tunnel->peer == NULL ||
        !tunnel->welcomed) {
        /* Its connection is gone; a newer one picks afresh. */
        job_free(job);
        deliver_next(tunnel);
        return;
    }
    if (result != 0 || job->request[0] == '\0') {
        if (result != 0)
            tl_log_warn("cannot read the outbox reason=\"%s\"", tl_strerror(result));
        job_free(job);
        if (tunnel->options.once) {
            int status = result != 0 || json_array_size(tunnel->skipped) > 0 ? TL_EIO : 0;
            finish_once(tunnel, status);
        }
        return;
    }
    struct delivery *delivery = calloc(1, sizeof *delivery);
    if (delivery == NULL) {
        job_free(job);
        return;
    }
    snprintf(delivery->request, sizeof delivery->request, "%s", job->request);
    delivery->serial = ++tunnel->next_serial;
    delivery->body = job->body;
    job->body = NULL;
    tunnel->delivery = delivery;
    if (job->rc != 0) {
        set_aside(tunnel, job->rc, "damaged",
                  job->rc == TL_ENOTFOUND ? "it has no request.json"
                                          : "its request.json is not a readable request");
    } else if (job->missing) {
        confirm_only(tunnel, job->missing_name);
    } else {
        tl_log_info("delivering request=%s", delivery->request);
        delivery_step(tunnel);
    }
    job_free(job);
}

static void deliver_next(tl_tunnel_t *tunnel)
{
    if (tunnel->delivery != NULL || tunnel->picking || tunnel->peer == NULL || !tunnel->welcomed ||
        tunnel->stopping || tunnel->options.requests_only)
        return;
    struct job *job = job_new(tunnel);
    if (job == NULL || (job->skipped = json_deep_copy(tunnel->skipped)) == NULL) {
        if (job != NULL)
            job_free(job);
        tl_log_warn("cannot look at the outbox reason=\"%s\"", tl_strerror(TL_ENOMEM));
        return;
    }
    if (tunnel->options.only_request != NULL)
        snprintf(job->only, sizeof job->only, "%s", tunnel->options.only_request);
    if (job_submit(tunnel, pick_work, pick_done, job) != 0) {
        job_free(job);
        return;
    }
    tunnel->picking = 1;
}

/* ---- channel events ------------------------------------------------------------ */

static struct delivery *channel_delivery(tl_tunnel_t *tunnel, uint32_t channel)
{
    struct delivery *delivery = tunnel->delivery;
    return delivery != NULL && delivery->uploading && delivery->channel == channel ? delivery
                                                                                   : NULL;
}

static int is_session(const tl_tunnel_t *tunnel, uint32_t channel)
{
    for (size_t i = 0; i < tunnel->session_count; i++)
        if (tunnel->session_channels[i] == channel)
            return 1;
    return 0;
}

static void forget_session(tl_tunnel_t *tunnel, uint32_t channel)
{
    for (size_t i = 0; i < tunnel->session_count; i++) {
        if (tunnel->session_channels[i] == channel) {
            size_t last = --tunnel->session_count;
            tunnel->session_channels[i] = tunnel->session_channels[last];
            memcpy(tunnel->session_grants[i], tunnel->session_grants[last],
                   sizeof tunnel->session_grants[i]);
            tunnel->session_shells[i] = tunnel->session_shells[last];
            return;
        }
    }
}

/*
 * A shell channel closed. A grant the user gave for a shell ends with the
 * last shell opened under it, unless the user kept it (docs/consent.md).
 */
static void shell_closed(tl_tunnel_t *tunnel, const char *grant_id)
{
    for (size_t i = 0; i < tunnel->session_count; i++)
        if (tunnel->session_shells[i] && strcmp(tunnel->session_grants[i], grant_id) == 0)
            return;
    const tl_grant_t *grant = tl_consent_find(tunnel->options.consent, grant_id);
    if (grant == NULL || !grant->ends_with_shell)
        return;
    char message[128];
    tl_consent_end(tunnel->options.consent, grant_id, "shell ended", NULL, message, sizeof message);
}

static void held_drop(tl_tunnel_t *tunnel, size_t at)
{
    json_decref(tunnel->held[at].params);
    tunnel->held[at] = tunnel->held[--tunnel->held_count];
}

static void held_clear(tl_tunnel_t *tunnel)
{
    while (tunnel->held_count > 0)
        held_drop(tunnel, tunnel->held_count - 1);
}

static void on_channel_confirm(void *ctx, uint32_t channel)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (channel_delivery(tunnel, channel) != NULL)
        upload_pump(tunnel);
}

static void on_channel_writable(void *ctx, uint32_t channel)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (channel_delivery(tunnel, channel) != NULL)
        upload_pump(tunnel);
    else if (is_session(tunnel, channel))
        tl_sessions_writable(tunnel->options.sessions, channel);
}

static void on_channel_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    struct delivery *delivery = channel_delivery(tunnel, channel);
    if (delivery == NULL)
        return;
    delivery->uploading = 0;
    int error = reason > 0 && reason < 30100 ? -(int)reason : TL_EPROTO;
    if (error == TL_EINVAL || error == TL_EFULL)
        reject(tunnel, error);
    else
        delivery_failed(tunnel, error);
}

static void on_channel_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (is_session(tunnel, channel)) {
        char grant[24] = "";
        int shell = 0;
        for (size_t i = 0; i < tunnel->session_count; i++) {
            if (tunnel->session_channels[i] == channel) {
                memcpy(grant, tunnel->session_grants[i], sizeof grant);
                shell = tunnel->session_shells[i];
            }
        }
        forget_session(tunnel, channel);
        tl_sessions_closed(tunnel->options.sessions, channel);
        if (shell && tunnel->options.consent != NULL)
            shell_closed(tunnel, grant);
        return;
    }
    struct delivery *delivery = channel_delivery(tunnel, channel);
    if (delivery == NULL)
        return;
    delivery->uploading = 0;
    int ok = (close->flags & TL_CLOSE_HAS_EXIT_STATUS) && close->exit_status == 0 &&
             delivery->sent == delivery->content_len;
    if (!ok) {
        int error = (close->flags & TL_CLOSE_HAS_EXIT_STATUS) && close->exit_status > 0
                        ? -close->exit_status
                        : TL_ECLOSED;
        delivery_failed(tunnel, error);
        return;
    }
    delivery->evidence_at++;
    delivery_step(tunnel);
}

/* A refusal's reason on the wire: our code, or EIO for anything else. */
static uint32_t wire_code(int rc)
{
    return rc <= TL_ERR_FIRST && rc >= TL_ERR_LAST ? (uint32_t)-rc : (uint32_t)-TL_EIO;
}

/* The grant allows it: the sessions module starts it, or it is refused with why. */
static void start_session(tl_tunnel_t *tunnel, tl_mux_t *mux, uint32_t channel, const char *type,
                          json_t *params, const tl_grant_t *grant)
{
    char message[TL_MSG_MAX_TEXT + 1] = "";
    tl_session_grant_t session_grant = {grant->id, grant->ticket, grant->technician, grant->role,
                                        grant->push};
    int rc = tl_sessions_open(tunnel->options.sessions, mux, channel, type, params, &session_grant,
                              message, sizeof message);
    if (rc != 0) {
        tl_log_warn("session not started type=%s grant=%s reason=%s detail=\"%s\"", type,
                    session_grant.id, tl_err_name(rc), message);
        tl_mux_refuse(mux, channel, wire_code(rc), message[0] ? message : tl_strerror(rc));
        return;
    }
    size_t at = tunnel->session_count++;
    tunnel->session_channels[at] = channel;
    snprintf(tunnel->session_grants[at], sizeof tunnel->session_grants[at], "%s", grant->id);
    tunnel->session_shells[at] = strcmp(type, "shell") == 0;
    tl_log_info("session opened channel=%u type=%s grant=%s technician=%s", channel, type,
                session_grant.id, session_grant.technician);
}

/* The relay hears of each decision on a command (docs/protocol.md §7.7): audited there. */
static void tell_command(tl_tunnel_t *tunnel, tl_mux_t *mux, uint32_t channel, const char *type,
                         json_t *params, const char *grant, const char *ticket,
                         const char *decision, const char *by)
{
    uint32_t relay_channel = 0;
    if (tunnel->peer == NULL || !tunnel->welcomed ||
        tl_mux_peer_channel(mux, channel, &relay_channel) != 0)
        return;
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "type",
                  tl_control_type_name(TL_CONTROL_SESSION_COMMAND), "grant", grant, "ticket",
                  ticket, "channel", (json_int_t)relay_channel, "decision", decision, "by", by);
    if (body == NULL)
        return;
    if (strcmp(type, "exec") == 0)
        json_object_set(body, "argv", json_object_get(params, "argv"));
    else
        json_object_set_new(body, "runbook",
                            json_pack("{s:O?, s:O?}", "name", json_object_get(params, "name"),
                                      "args", json_object_get(params, "args")));
    tl_peer_send_control(tunnel->peer, 0, body);
    json_decref(body);
}

/*
 * A command under a grant that asks for each one: the channel waits,
 * unconfirmed, for the user's answer (or the policy's list decides now).
 */
static void hold_command(tl_tunnel_t *tunnel, tl_mux_t *mux, uint32_t channel, const char *type,
                         json_t *params, const tl_grant_t *grant)
{
    char message[TL_MSG_MAX_TEXT + 1] = "";
    json_t *what = strcmp(type, "exec") == 0 ? json_object_get(params, "argv") : params;
    if (strcmp(type, "exec") == 0 && (!json_is_array(what) || json_array_size(what) == 0 ||
                                      !json_is_string(json_array_get(what, 0)))) {
        tl_mux_refuse(mux, channel, wire_code(TL_EINVAL),
                      "exec needs \"argv\": an array of strings");
        return;
    }
    if (tunnel->held_count >= TL_TUNNEL_MAX_SESSIONS) {
        tl_mux_refuse(mux, channel, wire_code(TL_ECHANNEL_LIMIT), "too many session channels open");
        return;
    }
    uint64_t token = (uint64_t)tunnel->generation << 32 | channel;
    int asked = 0, allowed = 0;
    int rc = tl_consent_ask_command(tunnel->options.consent, grant, type, what, token, &asked,
                                    &allowed, message, sizeof message);
    if (rc != 0) {
        tl_mux_refuse(mux, channel, wire_code(rc), message);
        return;
    }
    if (asked) {
        struct held_command *held = &tunnel->held[tunnel->held_count++];
        held->channel = channel;
        snprintf(held->type, sizeof held->type, "%.15s", type);
        snprintf(held->grant, sizeof held->grant, "%s", grant->id);
        held->params = json_incref(params);
        return;
    }
    tell_command(tunnel, mux, channel, type, params, grant->id, grant->ticket,
                 allowed ? "allowed" : "declined", "policy");
    if (allowed)
        start_session(tunnel, mux, channel, type, params, grant);
    else
        tl_mux_refuse(mux, channel, wire_code(TL_EDENIED), message);
}

/*
 * The technician left while the user was asked about their command (the
 * relay names its own id of the channel): the question goes, and the
 * channel is refused, so the command can no longer be allowed.
 */
static void withdraw_command(tl_tunnel_t *tunnel, uint32_t relay_channel)
{
    tl_mux_t *mux = tunnel->peer != NULL ? tl_peer_mux(tunnel->peer) : NULL;
    for (size_t i = 0; mux != NULL && i < tunnel->held_count; i++) {
        uint32_t peer = 0;
        if (tl_mux_peer_channel(mux, tunnel->held[i].channel, &peer) != 0 || peer != relay_channel)
            continue;
        uint32_t channel = tunnel->held[i].channel;
        tl_consent_cancel_command(tunnel->options.consent,
                                  (uint64_t)tunnel->generation << 32 | channel,
                                  "the technician left");
        held_drop(tunnel, i);
        tl_mux_refuse(mux, channel, wire_code(TL_EDENIED), "withdrawn: the technician left");
        return;
    }
}

void tl_tunnel_command_answer(tl_tunnel_t *tunnel, uint64_t token,
                              const tl_consent_answer_t *answer)
{
    uint32_t channel = (uint32_t)token;
    size_t at = 0;
    while (at < tunnel->held_count && tunnel->held[at].channel != channel)
        at++;
    if (at == tunnel->held_count || tunnel->peer == NULL ||
        (uint32_t)(token >> 32) != tunnel->generation) {
        tl_log_info("command answer dropped: its channel is gone channel=%u", channel);
        return;
    }
    struct held_command held = tunnel->held[at];
    tunnel->held[at] = tunnel->held[--tunnel->held_count];
    tl_mux_t *mux = tl_peer_mux(tunnel->peer);
    const tl_grant_t *grant = tl_consent_find(tunnel->options.consent, held.grant);
    const char *decision = answer->error == 0             ? "allowed"
                           : answer->error == TL_ETIMEOUT ? "unanswered"
                                                          : "declined";
    if (grant != NULL)
        tell_command(tunnel, mux, channel, held.type, held.params, grant->id, grant->ticket,
                     decision, answer->by ? answer->by : "user");
    if (answer->error == 0 && grant != NULL) {
        tl_grant_t copy = *grant;
        start_session(tunnel, mux, channel, held.type, held.params, &copy);
    } else {
        tl_mux_refuse(mux, channel, wire_code(TL_EDENIED),
                      answer->message ? answer->message : "the user declined this command");
    }
    json_decref(held.params);
}

/*
 * The relay opens a session channel (docs/protocol.md §7.7). The grant is
 * checked here, for every channel, whatever the relay claims: a relay that
 * is wrong or compromised gets no more than the user allowed.
 */
static void on_channel_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    tl_mux_t *mux = tl_peer_mux(ctx);
    char type[TL_MSG_MAX_NAME + 1], message[TL_MSG_MAX_TEXT + 1];
    snprintf(type, sizeof type, "%.*s", (int)request->channel_type.len,
             (const char *)request->channel_type.ptr);
    if (tunnel->options.consent == NULL || tunnel->options.sessions == NULL) {
        tl_mux_refuse(mux, channel, (uint32_t)-TL_EDENIED,
                      "this agent takes no sessions now (it is not running)");
        return;
    }
    const char *grant_id = json_string_value(json_object_get(request->params, "grant"));
    const char *technician = json_string_value(json_object_get(request->params, "technician"));
    const tl_grant_t *checked = NULL;
    int rc = tl_consent_check(tunnel->options.consent, grant_id, technician, type, &checked,
                              message, sizeof message);
    if (rc == 0 && tunnel->session_count >= TL_TUNNEL_MAX_SESSIONS) {
        rc = TL_ECHANNEL_LIMIT;
        snprintf(message, sizeof message, "too many session channels open");
    }
    if (rc != 0) {
        tl_log_warn("channel refused type=%s grant=%.64s technician=%.64s reason=%s detail=\"%s\"",
                    type, grant_id ? grant_id : "-", technician ? technician : "-", tl_err_name(rc),
                    message);
        tl_mux_refuse(mux, channel, wire_code(rc), message);
        return;
    }
    tl_grant_t grant = *checked; /* the sessions module may outlive this record's slot */
    unsigned scope = tl_scope_for_channel(type);
    if (grant.each_command && (scope & (TL_SCOPE_EXEC | TL_SCOPE_FIX))) {
        hold_command(tunnel, mux, channel, type, request->params, &grant);
        return;
    }
    start_session(tunnel, mux, channel, type, request->params, &grant);
}

static void on_channel_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                            size_t len)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (is_session(tunnel, channel)) {
        tl_sessions_data(tunnel->options.sessions, channel, stream, data, len);
        return;
    }
    /* Upload channels carry nothing back; account for it anyway. */
    tl_mux_consumed(tl_peer_mux(ctx), channel, len);
}

static void on_channel_eof(void *ctx, uint32_t channel)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(ctx);
    if (is_session(tunnel, channel))
        tl_sessions_eof(tunnel->options.sessions, channel);
}

static const tl_mux_callbacks_t channel_callbacks = {
    .on_open = on_channel_open,
    .on_confirm = on_channel_confirm,
    .on_refuse = on_channel_refuse,
    .on_data = on_channel_data,
    .on_writable = on_channel_writable,
    .on_eof = on_channel_eof,
    .on_close = on_channel_close,
};

/* ---- connection --------------------------------------------------------------------- */

static int finish_work(void *data)
{
    struct job *job = data;
    job->rc = tl_outbox_finish(job->state_dir, job->request, job->ticket, job->title);
    return job->rc;
}

/* The delivered request is out of the outbox (or could not be removed): tell the owner. */
static void finish_done(void *data, int result)
{
    struct job *job = data;
    tl_tunnel_t *tunnel = job->tunnel;
    int acting = job_back(job);
    if (result != 0) {
        tl_log_warn("delivered request not removed request=%s reason=\"%s\"", job->request,
                    tl_strerror(result));
        if (acting)
            json_array_append_new(tunnel->skipped, json_string(job->request));
    }
    /* The ticket exists whatever happened here: whoever waits hears of it. */
    if (tunnel->events->on_delivered != NULL)
        tunnel->events->on_delivered(tunnel, job->request, job->ticket);
    if (acting)
        schedule_next(tunnel);
    job_free(job);
}

/* ---- the agent's own requests ---------------------------------------------------- */

static void on_requests_due(uv_timer_t *timer);

static void arm_requests(tl_tunnel_t *tunnel)
{
    uint64_t earliest = 0;
    for (size_t i = 0; i < TL_TUNNEL_MAX_REQUESTS; i++)
        if (tunnel->own[i].id != 0 && (earliest == 0 || tunnel->own[i].deadline < earliest))
            earliest = tunnel->own[i].deadline;
    if (earliest == 0) {
        uv_timer_stop(&tunnel->requests);
        return;
    }
    uint64_t now = uv_now(tunnel->loop);
    uv_timer_start(&tunnel->requests, on_requests_due, earliest > now ? earliest - now : 0, 0);
}

/* Answers the requests that match (all with id 0), one at a time: an answer may send another. */
static void fail_requests(tl_tunnel_t *tunnel, int status, int expired_only)
{
    uint64_t now = uv_now(tunnel->loop);
    for (size_t i = 0; i < TL_TUNNEL_MAX_REQUESTS; i++) {
        struct own_request slot = tunnel->own[i];
        if (slot.id == 0 || (expired_only && slot.deadline > now))
            continue;
        tunnel->own[i].id = 0;
        tl_log_info("request to the relay ended request_id=%u reason=%s", slot.id,
                    tl_err_name(status));
        slot.answer(slot.data, status, NULL);
    }
    if (!tunnel->closed)
        arm_requests(tunnel);
}

static void on_requests_due(uv_timer_t *timer)
{
    fail_requests(timer->data, TL_ETIMEOUT, 1);
}

int tl_tunnel_request(tl_tunnel_t *tunnel, json_t *body, uint32_t timeout_ms,
                      tl_tunnel_answer_fn answer, void *data)
{
    if (tunnel->stopping || tunnel->peer == NULL || !tunnel->welcomed)
        return TL_ECLOSED;
    struct own_request *slot = NULL;
    for (size_t i = 0; i < TL_TUNNEL_MAX_REQUESTS && slot == NULL; i++)
        if (tunnel->own[i].id == 0)
            slot = &tunnel->own[i];
    if (slot == NULL)
        return TL_EFULL;
    uint32_t id = ++tunnel->next_request_id;
    if (id == 0)
        id = ++tunnel->next_request_id;
    int rc = tl_peer_send_control(tunnel->peer, id, body);
    if (rc != 0)
        return rc;
    *slot = (struct own_request){id, tunnel->generation, uv_now(tunnel->loop) + timeout_ms, answer,
                                 data};
    arm_requests(tunnel);
    return 0;
}

/* The answer to one of the agent's own requests: 1 if it was one. */
static int own_answer(tl_tunnel_t *tunnel, uint32_t request_id, json_t *body)
{
    for (size_t i = 0; i < TL_TUNNEL_MAX_REQUESTS; i++) {
        struct own_request slot = tunnel->own[i];
        if (slot.id != request_id || slot.generation != tunnel->generation)
            continue;
        tunnel->own[i].id = 0;
        arm_requests(tunnel);
        slot.answer(slot.data, 0, body);
        return 1;
    }
    return 0;
}

/* A ticket id as the relay sends it ("T-42"): shown on the user's terminal, so nothing else. */
static int ticket_ok(const char *ticket)
{
    size_t len = ticket != NULL ? strlen(ticket) : 0;
    if (len == 0 || len > 32)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = ticket[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static void handle_result(tl_tunnel_t *tunnel, uint32_t request_id, json_t *body)
{
    if (own_answer(tunnel, request_id, body))
        return;
    struct delivery *delivery = tunnel->delivery;
    if (delivery == NULL || delivery->request_id != request_id)
        return;
    const char *error = json_string_value(json_object_get(body, "error"));
    if (json_is_true(json_object_get(body, "ok"))) {
        /* A ticket's id, or a deflection's ("F-3") for a problem self-help solved. */
        const char *ticket = json_string_value(json_object_get(
            body,
            tl_outbox_kind_of(delivery->body) == TL_OUTBOX_DEFLECTION ? "deflection" : "ticket"));
        if (!ticket_ok(ticket)) {
            tl_log_warn("the relay answered a ticket id that is not one request=%s",
                        delivery->request);
            ticket = "?";
        }
        tl_log_info("request delivered request=%s ticket=%s", delivery->request, ticket);
        struct job *job = job_new(tunnel);
        tunnel->delivery = NULL;
        if (job != NULL) {
            snprintf(job->request, sizeof job->request, "%s", delivery->request);
            snprintf(job->ticket, sizeof job->ticket, "%s", ticket);
            snprintf(job->title, sizeof job->title, "%s",
                     json_string_value(json_object_get(delivery->body, "title")));
        }
        if (job == NULL || job_submit(tunnel, finish_work, finish_done, job) != 0) {
            /* Left queued: the next connection sends it again and gets the same ticket. */
            if (job != NULL)
                job_free(job);
            json_array_append_new(tunnel->skipped, json_string(delivery->request));
            tl_log_warn("delivered request not removed request=%s reason=\"%s\"", delivery->request,
                        tl_strerror(TL_ENOMEM));
            schedule_next(tunnel);
        }
        delivery_free(delivery);
        return;
    }
    if (delivery->confirm_only && error != NULL && strcmp(error, "ENOTFOUND") == 0) {
        char detail[200];
        snprintf(detail, sizeof detail,
                 "its evidence file %s is missing and the relay does not hold the evidence",
                 delivery->missing);
        set_aside(tunnel, TL_ENOTFOUND, "damaged", detail);
    } else if (error != NULL && strcmp(error, "EINVAL") == 0) {
        reject(tunnel, TL_EINVAL);
    } else {
        delivery_failed(tunnel, TL_EIO);
    }
}

static uint64_t token_of(const tl_tunnel_t *tunnel, uint32_t request_id)
{
    return (uint64_t)tunnel->generation << 32 | request_id;
}

static void send_error(tl_tunnel_t *tunnel, uint32_t request_id, int error, const char *message)
{
    json_t *body =
        json_pack("{s:s, s:b, s:s, s:s}", "type", tl_control_type_name(TL_CONTROL_RESULT), "ok", 0,
                  "error", tl_err_name(error), "message", message);
    if (body != NULL && tunnel->peer != NULL)
        tl_peer_send_control(tunnel->peer, request_id, body);
    json_decref(body);
}

static void send_queued_ended(tl_tunnel_t *tunnel)
{
    size_t i;
    json_t *body;
    json_array_foreach(tunnel->ended_queue, i, body) {
        tl_peer_send_control(tunnel->peer, 0, body);
    }
    json_array_clear(tunnel->ended_queue);
}

/* files.stat and files.list (agent/files_requests.h): checked against the grant here, the file
 * system read on a libuv worker, answered on the connection it came on. */
struct files_job {
    uv_work_t work;
    tl_tunnel_t *tunnel;
    uint32_t generation, request_id;
    enum tl_control_type type;
    char *path;
    json_t *answer;
};

static void files_work(uv_work_t *work)
{
    struct files_job *job = work->data;
    job->answer = tl_files_request_serve(job->type, job->path);
}

static void files_done(uv_work_t *work, int status)
{
    struct files_job *job = work->data;
    tl_tunnel_t *tunnel = job->tunnel;
    tunnel->jobs--;
    if (tunnel->stopping) {
        maybe_release(tunnel);
    } else if (tunnel->peer != NULL && job->generation == tunnel->generation) {
        if (job->answer != NULL)
            tl_peer_send_control(tunnel->peer, job->request_id, job->answer);
        else
            send_error(tunnel, job->request_id, status != 0 ? TL_EIO : TL_ENOMEM,
                       tl_strerror(status != 0 ? TL_EIO : TL_ENOMEM));
    }
    json_decref(job->answer);
    free(job->path);
    free(job);
}

static void files_request(tl_tunnel_t *tunnel, uint32_t request_id, enum tl_control_type type,
                          json_t *body)
{
    json_t *refused = tl_files_request_check(tunnel->options.consent, body);
    if (refused != NULL) {
        tl_peer_send_control(tunnel->peer, request_id, refused);
        json_decref(refused);
        return;
    }
    struct files_job *job = calloc(1, sizeof *job);
    if (job == NULL ||
        (job->path = strdup(json_string_value(json_object_get(body, "path")))) == NULL) {
        free(job);
        send_error(tunnel, request_id, TL_ENOMEM, tl_strerror(TL_ENOMEM));
        return;
    }
    job->tunnel = tunnel;
    job->generation = tunnel->generation;
    job->request_id = request_id;
    job->type = type;
    job->work.data = job;
    if (uv_queue_work(tunnel->loop, &job->work, files_work, files_done) != 0) {
        free(job->path);
        free(job);
        send_error(tunnel, request_id, TL_EIO, tl_strerror(TL_EIO));
        return;
    }
    tunnel->jobs++;
}

/* A request from the relay (docs/protocol.md §7.6, §7.9). */
static void handle_request(tl_tunnel_t *tunnel, uint32_t request_id, const char *type, json_t *body)
{
    char message[TL_MSG_MAX_TEXT + 1];
    enum tl_control_type known = tl_control_type_lookup(type);
    if (known == TL_CONTROL_SESSION_REQUEST) {
        if (tunnel->options.consent == NULL) {
            send_error(tunnel, request_id, TL_EDENIED,
                       "this agent takes no sessions now (it is not running)");
            return;
        }
        tl_consent_request_t request;
        int rc = tl_consent_request_parse(body, &request, message, sizeof message);
        /* A fix that names its runbook is checked before anyone is asked (consent.md). */
        if (rc == 0 && request.runbook != NULL)
            rc = tl_sessions_runbook_preview(tunnel->options.sessions, &request.runbook,
                                             request.role, message, sizeof message);
        if (rc != 0) {
            tl_log_warn("session.request rejected request_id=%u reason=%s detail=\"%s\"",
                        request_id, tl_err_name(rc), message);
            send_error(tunnel, request_id, rc, message);
            tl_consent_request_clear(&request);
            return;
        }
        tl_consent_request(tunnel->options.consent, &request, token_of(tunnel, request_id));
        tl_consent_request_clear(&request);
        return;
    }
    if (known == TL_CONTROL_RUNBOOKS_LIST) {
        json_t *runbooks = tunnel->options.sessions != NULL
                               ? tl_sessions_runbooks(tunnel->options.sessions)
                               : json_array();
        json_t *answer =
            json_pack("{s:s, s:b, s:o}", "type", tl_control_type_name(TL_CONTROL_RESULT), "ok", 1,
                      "runbooks", runbooks);
        if (answer != NULL)
            tl_peer_send_control(tunnel->peer, request_id, answer);
        json_decref(answer);
        return;
    }
    if (known == TL_CONTROL_FILES_STAT || known == TL_CONTROL_FILES_LIST) {
        files_request(tunnel, request_id, known, body);
        return;
    }
    snprintf(message, sizeof message, "unknown request type '%.64s'", type ? type : "");
    send_error(tunnel, request_id, TL_EINVAL, message);
}

static int int_member(json_t *body, const char *key, json_int_t min, json_int_t max,
                      json_int_t *out)
{
    json_t *value = json_object_get(body, key);
    if (!json_is_integer(value) || json_integer_value(value) < min ||
        json_integer_value(value) > max)
        return TL_EINVAL;
    *out = json_integer_value(value);
    return 0;
}

/* A notification from the relay; ones that do not apply are ignored. */
static void handle_notification(tl_tunnel_t *tunnel, const char *type, json_t *body)
{
    json_int_t id, cols, rows;
    enum tl_control_type known = tl_control_type_lookup(type);
    if (known == TL_CONTROL_SESSION_CANCEL) {
        if (tunnel->options.consent != NULL && json_object_get(body, "request_id") == NULL &&
            int_member(body, "channel", 0, UINT32_MAX, &id) == 0) {
            withdraw_command(tunnel, (uint32_t)id);
            return;
        }
        if (tunnel->options.consent == NULL ||
            int_member(body, "request_id", 1, UINT32_MAX, &id) != 0)
            return;
        tl_consent_cancel(tunnel->options.consent, token_of(tunnel, (uint32_t)id),
                          "withdrawn by the relay");
        return;
    }
    if (known == TL_CONTROL_SESSION_RESIZE) {
        if (int_member(body, "channel", 0, UINT32_MAX, &id) != 0 ||
            int_member(body, "cols", 1, 1000, &cols) != 0 ||
            int_member(body, "rows", 1, 1000, &rows) != 0 || !is_session(tunnel, (uint32_t)id)) {
            tl_log_debug("session.resize ignored");
            return;
        }
        tl_sessions_resize(tunnel->options.sessions, (uint32_t)id, (unsigned)cols, (unsigned)rows);
        return;
    }
    if (known == TL_CONTROL_SESSION_SIGNAL) {
        /* Only a live session channel of this connection, only a signal of the list. */
        int sig = tl_session_signal_number(json_string_value(json_object_get(body, "signal")));
        if (int_member(body, "channel", 0, UINT32_MAX, &id) != 0 || sig == 0 ||
            !is_session(tunnel, (uint32_t)id)) {
            tl_log_info("session.signal ignored reason=%s",
                        sig == 0 ? "unknown-signal" : "not-a-session");
            return;
        }
        int rc = tl_sessions_signal(tunnel->options.sessions, (uint32_t)id, sig);
        if (rc != 0)
            tl_log_info("session.signal ignored channel=%u reason=%s", (unsigned)id,
                        tl_strerror(rc));
        return;
    }
    if (known == TL_CONTROL_TICKET_UPDATE && tunnel->events->on_ticket_update != NULL) {
        tunnel->events->on_ticket_update(tunnel, body);
        return;
    }
    if (known == TL_CONTROL_AUDIT_CHECKPOINT && tunnel->events->on_audit_checkpoint != NULL) {
        tunnel->events->on_audit_checkpoint(tunnel, body);
        return;
    }
    tl_log_debug("notification ignored type=%.64s", type);
}

void tl_tunnel_consent_answer(tl_tunnel_t *tunnel, uint64_t token,
                              const tl_consent_answer_t *answer)
{
    uint32_t request_id = (uint32_t)token;
    if (tunnel->peer == NULL || !tunnel->welcomed ||
        (uint32_t)(token >> 32) != tunnel->generation) {
        tl_log_info("session answer dropped: its connection is gone request_id=%u", request_id);
        return;
    }
    if (answer->error != 0) {
        send_error(tunnel, request_id, answer->error,
                   answer->message ? answer->message : tl_strerror(answer->error));
        return;
    }
    json_t *body = json_pack("{s:s, s:b, s:s, s:o, s:I, s:s}", "type",
                             tl_control_type_name(TL_CONTROL_RESULT), "ok", 1, "grant",
                             answer->grant->id, "scopes", tl_scope_names(answer->grant->scopes),
                             "expires_ms", (json_int_t)answer->grant->expires_ms, "by", answer->by);
    if (body != NULL && answer->grant->each_command)
        json_object_set_new(body, "each_command", json_true());
    if (body != NULL && (answer->grant->scopes & TL_SCOPE_FILES))
        json_object_set_new(body, "push", json_boolean(answer->grant->push));
    if (body != NULL)
        tl_peer_send_control(tunnel->peer, request_id, body);
    json_decref(body);
}

void tl_tunnel_grant_ended(tl_tunnel_t *tunnel, const tl_grant_t *grant, const char *reason)
{
    size_t stopped = 0;
    if (tunnel->options.sessions != NULL)
        stopped = tl_sessions_end_grant(tunnel->options.sessions, grant->id);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s}", "type", tl_control_type_name(TL_CONTROL_SESSION_ENDED),
                  "grant", grant->id, "ticket", grant->ticket, "reason", reason);
    if (body == NULL)
        return;
    tl_log_info("grant ended, sessions stopped grant=%s sessions=%zu", grant->id, stopped);
    if (tunnel->peer != NULL && tunnel->welcomed) {
        tl_peer_send_control(tunnel->peer, 0, body);
    } else {
        if (json_array_size(tunnel->ended_queue) >= TL_TUNNEL_MAX_ENDED)
            json_array_remove(tunnel->ended_queue, 0);
        json_array_append(tunnel->ended_queue, body);
    }
    json_decref(body);
}

static int on_peer_message(tl_peer_t *peer, const tl_msg_t *msg)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(peer);
    if (msg->type != TL_MSG_CONTROL)
        return TL_EPROTO;
    json_t *body = msg->u.control.body;
    const char *type = json_string_value(json_object_get(body, "type"));
    enum tl_control_type known = tl_control_type_lookup(type);
    if (msg->u.control.request_id == 0 && known == TL_CONTROL_WELCOME) {
        const char *device = json_string_value(json_object_get(body, "device"));
        json_t *heartbeat = json_object_get(body, "heartbeat_ms");
        if (!json_is_integer(heartbeat) || json_integer_value(heartbeat) < 50 ||
            json_integer_value(heartbeat) > 3600000) {
            /* Without it the agent could not tell a dead relay (protocol.md §7.1). */
            tl_log_warn("relay's welcome refused: heartbeat_ms is not a whole number 50..3600000");
            return TL_EPROTO;
        }
        snprintf(tunnel->device, sizeof tunnel->device, "%s", device ? device : "?");
        tl_peer_set_heartbeat(peer, (uint32_t)json_integer_value(heartbeat));
        tunnel->welcomed = 1;
        tunnel->attempt = 0;
        tunnel->last_error = 0;
        tl_log_info("connected to relay device=%s", tunnel->device);
        send_queued_ended(tunnel);
        if (tunnel->events->on_connected != NULL)
            tunnel->events->on_connected(tunnel, tunnel->device);
        deliver_next(tunnel);
        return 0;
    }
    if (msg->u.control.request_id == 0 && known == TL_CONTROL_ENROLL_REQUIRED)
        return TL_ENOT_ENROLLED; /* the relay does not know our key: nothing to do but say so */
    if (msg->u.control.request_id != 0 && known == TL_CONTROL_RESULT) {
        handle_result(tunnel, msg->u.control.request_id, body);
        return 0;
    }
    if (!tunnel->welcomed)
        return 0; /* nothing is served before the welcome */
    if (msg->u.control.request_id != 0)
        handle_request(tunnel, msg->u.control.request_id, type, body);
    else if (type != NULL)
        handle_notification(tunnel, type, body);
    return 0;
}

static void on_peer_closed(tl_peer_t *peer, int reason)
{
    tl_tunnel_t *tunnel = tl_peer_get_data(peer);
    int was_up = tunnel->welcomed;
    tunnel->peer = NULL;
    tunnel->welcomed = 0;
    delivery_free(tunnel->delivery);
    tunnel->delivery = NULL;
    json_array_clear(tunnel->skipped);
    /* The processes of this connection's channels stop; the grants stay (protocol.md §7.8). */
    if (tunnel->options.sessions != NULL)
        tl_sessions_disconnected(tunnel->options.sessions);
    tunnel->session_count = 0;
    held_clear(tunnel);
    if (tunnel->options.consent != NULL)
        tl_consent_cancel_all(tunnel->options.consent, "the connection to the relay dropped");
    tunnel->last_error = reason != 0 ? reason : TL_ECLOSED;
    fail_requests(tunnel, TL_ECLOSED, 0);
    if (reason == TL_EPIN) {
        const char *presented = tl_peer_fingerprint(peer);
        tl_log_error("%s pinned=%s presented=%s reason=EPIN", tl_tunnel_error_text(reason),
                     tunnel->options.state->relay_fingerprint, presented ? presented : "none");
    } else if (reason == TL_ENOT_ENROLLED) {
        tl_log_error("%s reason=ENOT_ENROLLED", tl_tunnel_error_text(reason));
    } else if (reason == TL_ETLS && !was_up) {
        tl_log_warn("%s reason=ETLS", tl_tunnel_error_text(reason));
    } else
        tl_log_info("relay connection ended reason=\"%s\"",
                    reason ? tl_strerror(reason) : "closed");
    if (was_up && tunnel->events->on_disconnected != NULL)
        tunnel->events->on_disconnected(tunnel, reason);
    if (tunnel->stopping) {
        maybe_release(tunnel);
        return;
    }
    if (tunnel->options.once) {
        finish_once(tunnel, tunnel->last_error);
        return;
    }
    schedule_retry(tunnel);
}

static const tl_peer_callbacks_t peer_callbacks = {
    .on_message = on_peer_message,
    .on_closed = on_peer_closed,
};

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tl_tunnel_t *tunnel = req->data;
    tunnel->resolving = 0;
    if (tunnel->stopping) {
        uv_freeaddrinfo(res);
        maybe_release(tunnel);
        return;
    }
    int err = status;
    if (status == 0) {
        tunnel->generation++;
        tunnel->peer =
            tl_peer_connect(tunnel->loop, tunnel->tls, res->ai_addr, &tunnel->peer_config,
                            &peer_callbacks, &channel_callbacks, tunnel, &err);
    }
    uv_freeaddrinfo(res);
    if (tunnel->peer == NULL) {
        tl_log_warn("cannot reach relay host=%s reason=%s", tunnel->options.state->relay_host,
                    tl_strerror(err));
        tunnel->last_error = err;
        if (tunnel->options.once)
            finish_once(tunnel, err);
        else
            schedule_retry(tunnel);
    }
}

static void connect_now(tl_tunnel_t *tunnel)
{
    if (tunnel->stopping || tunnel->peer != NULL || tunnel->resolving)
        return;
    char port[8];
    snprintf(port, sizeof port, "%u", tunnel->options.state->relay_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    tunnel->resolver.data = tunnel;
    int rc = uv_getaddrinfo(tunnel->loop, &tunnel->resolver, on_resolved,
                            tunnel->options.state->relay_host, port, &hints);
    if (rc != 0) {
        tunnel->last_error = rc;
        if (tunnel->options.once)
            finish_once(tunnel, rc);
        else
            schedule_retry(tunnel);
        return;
    }
    tunnel->resolving = 1;
}

tl_tunnel_t *tl_tunnel_start(uv_loop_t *loop, const tl_tunnel_options_t *options,
                             const tl_tunnel_events_t *events, void *data, int *err)
{
    tl_tunnel_t *tunnel = calloc(1, sizeof *tunnel);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    if (tunnel == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    tunnel->loop = loop;
    tunnel->options = *options;
    if (tunnel->options.backoff_min_ms == 0)
        tunnel->options.backoff_min_ms = 500;
    if (tunnel->options.backoff_max_ms == 0)
        tunnel->options.backoff_max_ms = 60000;
    tunnel->events = events;
    tunnel->data = data;
    tunnel->skipped = json_array();
    tunnel->ended_queue = json_array();
    snprintf(tunnel->software, sizeof tunnel->software, "tierline-agent/%s", TL_VERSION_STRING);
    tunnel->peer_config = (tl_peer_config_t){tunnel->software, 0, 0, NULL, options->source};
    *err = tl_state_identity(options->state->dir, 0, &key, &cert);
    if (*err == 0) {
        tl_tls_config_t tls = {
            .role = TL_TLS_CLIENT,
            .key = key,
            .cert = cert,
            .pin = options->state->relay_fingerprint,
        };
        tunnel->tls = tl_tls_ctx_new(&tls, err);
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    tunnel->storage = options->storage;
    if (tunnel->storage == NULL && tunnel->tls != NULL)
        tunnel->storage = tunnel->own_storage = tl_storage_new(loop, NULL, err);
    struct job *recovery = tunnel->storage != NULL ? job_new(tunnel) : NULL;
    if (tunnel->tls == NULL || tunnel->skipped == NULL || tunnel->ended_queue == NULL ||
        recovery == NULL || job_submit(tunnel, recover_work, recover_done, recovery) != 0) {
        if (recovery != NULL)
            job_free(recovery);
        tl_storage_free(tunnel->own_storage);
        json_decref(tunnel->skipped);
        json_decref(tunnel->ended_queue);
        tl_tls_ctx_free(tunnel->tls);
        free(tunnel);
        if (*err == 0)
            *err = TL_ENOMEM;
        return NULL;
    }
    /* Recovery is the lane's first job: nothing is picked before the outbox is whole. */
    uv_timer_init(loop, &tunnel->retry);
    tunnel->retry.data = tunnel;
    uv_timer_init(loop, &tunnel->next);
    tunnel->next.data = tunnel;
    uv_timer_init(loop, &tunnel->requests);
    tunnel->requests.data = tunnel;
    connect_now(tunnel);
    return tunnel;
}

void tl_tunnel_kick(tl_tunnel_t *tunnel)
{
    json_array_clear(tunnel->skipped);
    if (tunnel->peer == NULL && !tunnel->resolving && !tunnel->stopping) {
        /* Someone is waiting: try now rather than at the end of the backoff. */
        uv_timer_stop(&tunnel->retry);
        connect_now(tunnel);
        return;
    }
    deliver_next(tunnel);
}

void tl_tunnel_stop(tl_tunnel_t *tunnel)
{
    if (tunnel->stopping)
        return;
    tunnel->stopping = 1;
    /* From here on the consent and sessions modules are the caller's to free. */
    if (tunnel->options.sessions != NULL)
        tl_sessions_disconnected(tunnel->options.sessions);
    if (tunnel->options.consent != NULL)
        tl_consent_cancel_all(tunnel->options.consent, "the agent is stopping");
    tunnel->options.sessions = NULL;
    tunnel->options.consent = NULL;
    tunnel->session_count = 0;
    held_clear(tunnel);
    uv_timer_stop(&tunnel->retry);
    uv_timer_stop(&tunnel->next);
    fail_requests(tunnel, TL_ECLOSED, 0);
    uv_timer_stop(&tunnel->requests);
    if (tunnel->peer != NULL)
        tl_peer_close(tunnel->peer, 0, "agent stopping");
    if (tunnel->resolving)
        uv_cancel((uv_req_t *)&tunnel->resolver);
    maybe_release(tunnel);
}

int tl_tunnel_connected(const tl_tunnel_t *tunnel)
{
    return tunnel->welcomed;
}

enum tl_tunnel_link tl_tunnel_link(const tl_tunnel_t *tunnel, int *last_error)
{
    if (last_error != NULL)
        *last_error = tunnel->last_error;
    if (tunnel->welcomed)
        return TL_TUNNEL_CONNECTED;
    if (tunnel->resolving || tunnel->peer != NULL)
        return TL_TUNNEL_CONNECTING;
    return TL_TUNNEL_UNREACHABLE;
}

int tl_tunnel_last_error(const tl_tunnel_t *tunnel)
{
    return tunnel->welcomed ? 0 : tunnel->last_error;
}

const char *tl_tunnel_error_text(int error)
{
    switch (error) {
    case TL_EPIN:
        return "the relay's key does not match the pinned key: possible impersonation";
    case TL_ENOT_ENROLLED:
        return "the relay does not know this agent's key (enrolled elsewhere, or removed from the "
               "relay?)";
    case TL_ETLS:
        return "the TLS handshake with the relay failed: it refused this agent, or it is not a "
               "Tierline relay";
    default:
        return NULL;
    }
}

void *tl_tunnel_data(const tl_tunnel_t *tunnel)
{
    return tunnel->data;
}
