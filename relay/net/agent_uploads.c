/*
 * Evidence uploads (docs/protocol.md §7.4): an enrolled agent opens an
 * "upload" channel announcing the item's hash, kind, name and size, and
 * streams it. Each data frame becomes a storage job appending to the
 * evidence writer, and the channel's window is granted back only when that
 * job is done, so a slow disk slows that upload alone; at EOF a commit job
 * checks hash and size against what was announced, records the item and
 * audits it, and the channel closes with the outcome. At most
 * TL_RELAY_MAX_UPLOADS at once per connection.
 */
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/net/agent_server_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum upload_step { UPLOAD_WRITE, UPLOAD_COMMIT, UPLOAD_ABORT };

static int run_upload(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct agent_job *job = (struct agent_job *)base;
    struct upload *up = job->upload;
    int step = job->online; /* reused as the step */
    if (up->worker_finished)
        return TL_ECLOSED;
    if (step == UPLOAD_ABORT) {
        tl_evidence_writer_abort(up->writer);
        up->writer = NULL;
        up->worker_finished = 1;
        return 0;
    }
    if (up->writer == NULL) {
        int rc = tl_evidence_writer_new(ctx->evidence, &up->writer);
        if (rc != 0) {
            up->worker_finished = 1;
            return rc;
        }
    }
    if (step == UPLOAD_WRITE) {
        int rc = tl_evidence_writer_write(up->writer, job->data, job->len);
        if (rc != 0) {
            tl_evidence_writer_abort(up->writer);
            up->writer = NULL;
            up->worker_finished = 1;
        }
        return rc;
    }
    char hash[TL_EVIDENCE_HASH_HEX];
    uint64_t size = up->expect_size;
    int rc = tl_evidence_writer_commit_expected(up->writer, up->expect_hash, up->expect_size, hash);
    up->writer = NULL;
    up->worker_finished = 1;
    if (rc != 0)
        return rc; /* TL_EMISMATCH: not what the agent announced, and nothing stored */
    rc = tl_store_upload_record(ctx->store, job->agent->device_id, hash, size, tl_wall_ms());
    if (rc != 0)
        return rc;
    char actor[96];
    tl__agent_actor(job->agent, actor);
    json_t *details = json_pack("{s:s, s:I, s:s, s:s}", "sha256", hash, "size", (json_int_t)size,
                                "kind", up->kind, "name", up->name);
    rc = tl_worker_audit(ctx, actor, "evidence.store", hash, details);
    json_decref(details);
    return rc;
}

/* An upload whose channel is gone and whose jobs are done leaves the agent. */
static void upload_release_if_done(struct upload *up)
{
    if (up->channel_open || up->jobs > 0 || up->agent->closed)
        return; /* a closed agent frees its list itself */
    struct tl_agent_link *agent = up->agent;
    for (struct upload **at = &agent->uploads; *at != NULL; at = &(*at)->next) {
        if (*at == up) {
            *at = up->next;
            break;
        }
    }
    free(up);
}

static void upload_close_channel(struct upload *up, int status)
{
    if (!up->channel_open || up->agent->closed)
        return;
    struct tl_msg_channel_close close = {0};
    close.flags = TL_CLOSE_HAS_EXIT_STATUS;
    close.exit_status = -status;
    tl_mux_close(tl_peer_mux(up->agent->peer), up->channel, &close);
}

static void upload_done(tl_job_t *base, int status)
{
    struct agent_job *job = (struct agent_job *)base;
    struct upload *up = job->upload;
    int step = job->online;
    up->jobs--;
    if (step == UPLOAD_WRITE) {
        if (status == 0 && up->channel_open && !job->agent->closed)
            tl_mux_consumed(tl_peer_mux(job->agent->peer), up->channel, job->len);
        else if (status != 0 && !up->stopped) {
            up->stopped = 1;
            upload_close_channel(up, status);
        }
    } else if (step == UPLOAD_COMMIT) {
        if (status == 0)
            tl_log_info("evidence stored device=D-%" PRId64 " sha256=%s size=%" PRIu64,
                        job->agent->device_id, up->expect_hash, up->expect_size);
        else
            tl_log_warn("evidence refused device=D-%" PRId64 " reason=%s", job->agent->device_id,
                        tl_err_name(status));
        upload_close_channel(up, status);
    }
    /* tl__agent_job_free may drop the last reference to the agent, which frees its uploads. */
    if (!job->agent->closed)
        upload_release_if_done(up);
    tl__agent_job_free(job);
}

static int submit_upload_step(struct upload *up, int step, const uint8_t *data, size_t len)
{
    struct agent_job *job = tl__agent_job_new(up->agent, run_upload, upload_done);
    if (job == NULL)
        return TL_ENOMEM;
    job->upload = up;
    job->online = step;
    up->jobs++;
    if (len > 0) {
        job->data = malloc(len);
        if (job->data == NULL) {
            up->jobs--;
            tl__agent_job_free(job);
            return TL_ENOMEM;
        }
        memcpy(job->data, data, len);
        job->len = len;
    }
    tl_worker_submit(up->agent->server->worker, &job->job);
    return 0;
}

static struct upload *find_upload(struct tl_agent_link *agent, uint32_t channel)
{
    for (struct upload *up = agent->uploads; up != NULL; up = up->next)
        if (up->channel_open && up->channel == channel)
            return up;
    return NULL;
}

int tl__upload_open(struct tl_agent_link *agent, uint32_t channel, json_t *params)
{
    const char *hash = tl__json_text(params, "sha256", 64, 0);
    const char *kind = tl__json_text(params, "kind", 32, 0);
    const char *name = tl__json_text(params, "name", 255, 0);
    json_t *size = json_object_get(params, "size");
    if (!tl_sha256_hex_valid(hash) || kind == NULL || name == NULL || !json_is_integer(size) ||
        json_integer_value(size) < 0)
        return TL_EINVAL;
    if ((uint64_t)json_integer_value(size) > agent->server->config.max_upload_bytes)
        return TL_EFULL;
    if (agent->uploads_open >= TL_RELAY_MAX_UPLOADS)
        return TL_ECHANNEL_LIMIT;
    struct upload *up = calloc(1, sizeof *up);
    if (up == NULL)
        return TL_ENOMEM;
    up->agent = agent;
    up->channel = channel;
    up->channel_open = 1;
    up->expect_size = (uint64_t)json_integer_value(size);
    snprintf(up->expect_hash, sizeof up->expect_hash, "%s", hash);
    snprintf(up->kind, sizeof up->kind, "%s", kind);
    snprintf(up->name, sizeof up->name, "%s", name);
    up->next = agent->uploads;
    agent->uploads = up;
    agent->uploads_open++;
    return 0;
}

void tl__upload_data(struct tl_agent_link *agent, uint32_t channel, uint8_t stream,
                     const uint8_t *data, size_t len)
{
    struct upload *up = find_upload(agent, channel);
    if (up == NULL || up->stopped)
        return;
    if (stream != TL_STREAM_MAIN || up->received + len > up->expect_size) {
        up->stopped = 1;
        submit_upload_step(up, UPLOAD_ABORT, NULL, 0);
        upload_close_channel(up, TL_EMSG_MALFORMED);
        return;
    }
    up->received += len;
    if (submit_upload_step(up, UPLOAD_WRITE, data, len) != 0)
        upload_close_channel(up, TL_ENOMEM);
}

void tl__upload_eof(struct tl_agent_link *agent, uint32_t channel)
{
    struct upload *up = find_upload(agent, channel);
    if (up != NULL && !up->stopped) {
        up->stopped = 1;
        submit_upload_step(up, UPLOAD_COMMIT, NULL, 0);
    }
}

void tl__upload_closed(struct tl_agent_link *agent, uint32_t channel)
{
    struct upload *up = find_upload(agent, channel);
    if (up == NULL)
        return;
    up->channel_open = 0;
    up->agent->uploads_open--;
    /* Ended early by the agent: whatever arrived is dropped (the worker ignores
     * this if the item was already committed). */
    up->stopped = 1;
    submit_upload_step(up, UPLOAD_ABORT, NULL, 0);
    upload_release_if_done(up);
}

void tl__uploads_abort(struct tl_agent_link *agent)
{
    for (struct upload *up = agent->uploads; up != NULL; up = up->next) {
        if (up->channel_open) {
            up->channel_open = 0;
            submit_upload_step(up, UPLOAD_ABORT, NULL, 0);
        }
    }
}
