/*
 * The relay's requests to an agent (relay/net/agent_link.h): control
 * requests with relay-chosen ids (docs/protocol.md §7.3), each waiting in a
 * slot of its connection (TL_AGENT_MAX_PENDING) until the answer comes, its
 * deadline passes or the connection ends; and notifications. Sessions
 * (relay/sessions/) are its users. Also the ticket updates the desk publishes
 * (docs/protocol.md §7.12), sent to the device's live connection.
 */
#include "proto/err.h"
#include "proto/log.h"
#include "proto/vocab.h"
#include "relay/desk/user_tickets.h"
#include "relay/net/agent_server_int.h"
#include "relay/store/audit_checkpoint.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int64_t tl_agent_device(const tl_agent_link_t *agent)
{
    return agent->device_id;
}

tl_mux_t *tl_agent_mux(tl_agent_link_t *agent)
{
    return agent->closed ? NULL : tl_peer_mux(agent->peer);
}

int tl_agent_notify(tl_agent_link_t *agent, json_t *body)
{
    if (agent->closed)
        return TL_ECLOSED;
    return tl_peer_send_control(agent->peer, 0, body);
}

void tl__agent_ticket_update(void *data, const char *channel, json_t *message)
{
    tl_agent_server_t *server = data;
    json_t *device = json_object_get(message, "device");
    json_t *body = json_object_get(message, "body");
    if (strcmp(channel, TL_USER_TICKETS_CHANNEL) != 0 || !json_is_integer(device) ||
        !json_is_object(body))
        return;
    /* Offline: nothing is queued; the agent lists its tickets when it connects (§7.12). */
    tl_agent_link_t *agent = tl_agent_server_find(server, json_integer_value(device));
    if (agent == NULL)
        return;
    int rc = tl_agent_notify(agent, body);
    tl_log_debug("ticket update sent device=D-%" PRId64 " result=%s", agent->device_id,
                 rc == 0 ? "ok" : tl_err_name(rc));
}

void tl__agent_checkpoint_news(void *data, const char *channel, json_t *message)
{
    tl_agent_server_t *server = data;
    json_t *size = json_object_get(message, "size");
    if (strcmp(channel, TL_AUDIT_CHECKPOINT_CHANNEL) != 0 || !json_is_integer(size))
        return;
    json_t *body = json_pack("{s:s, s:O}", "type",
                             tl_control_type_name(TL_CONTROL_AUDIT_CHECKPOINT), "size", size);
    if (body == NULL)
        return;
    /* Every device online hears of it; each asks for its proof when it is ready (§7.15). */
    unsigned sent = 0;
    for (struct tl_agent_link *agent = server->agents; agent != NULL; agent = agent->next)
        if (agent->counted_online && !agent->closed && tl_agent_notify(agent, body) == 0)
            sent++;
    json_decref(body);
    tl_log_debug("audit checkpoint announced size=%lld agents=%u",
                 (long long)json_integer_value(size), sent);
}

static void arm_request_timer(struct tl_agent_link *agent);

static void request_timer_closed(uv_handle_t *handle)
{
    struct tl_agent_link *agent = handle->data;
    free(handle);
    tl__agent_unref(agent);
}

static void on_request_timer(uv_timer_t *timer)
{
    struct tl_agent_link *agent = timer->data;
    uint64_t now = uv_now(agent->server->loop);
    /* A callback may send or cancel requests: take one expired slot at a time. */
    for (unsigned i = 0; i < TL_AGENT_MAX_PENDING && !agent->closed; i++) {
        struct pending_request *slot = &agent->pending[i];
        if (slot->id == 0 || slot->deadline > now)
            continue;
        struct pending_request expired = *slot;
        slot->id = 0;
        agent->pending_count--;
        tl_log_info("agent request timed out device=D-%" PRId64 " request=%" PRIu32,
                    agent->device_id, expired.id);
        expired.answer(expired.data, TL_ETIMEOUT, NULL);
    }
    if (!agent->closed)
        arm_request_timer(agent);
}

static void arm_request_timer(struct tl_agent_link *agent)
{
    uint64_t earliest = UINT64_MAX;
    for (unsigned i = 0; i < TL_AGENT_MAX_PENDING; i++)
        if (agent->pending[i].id != 0 && agent->pending[i].deadline < earliest)
            earliest = agent->pending[i].deadline;
    if (earliest == UINT64_MAX) {
        uv_timer_stop(agent->request_timer);
        return;
    }
    uint64_t now = uv_now(agent->server->loop);
    uv_timer_start(agent->request_timer, on_request_timer, earliest > now ? earliest - now : 0, 0);
}

int tl_agent_request(tl_agent_link_t *agent, json_t *body, uint32_t timeout_ms,
                     tl_agent_answer_fn answer, void *data, uint32_t *request_id)
{
    if (agent->closed)
        return TL_ECLOSED;
    if (agent->pending_count >= TL_AGENT_MAX_PENDING)
        return TL_EFULL;
    if (agent->pending == NULL &&
        (agent->pending = calloc(TL_AGENT_MAX_PENDING, sizeof *agent->pending)) == NULL)
        return TL_ENOMEM;
    if (agent->request_timer == NULL) {
        agent->request_timer = malloc(sizeof *agent->request_timer);
        if (agent->request_timer == NULL)
            return TL_ENOMEM;
        uv_timer_init(agent->server->loop, agent->request_timer);
        agent->request_timer->data = agent;
        agent->refs++;
    }
    struct pending_request *slot = NULL;
    for (unsigned i = 0; i < TL_AGENT_MAX_PENDING && slot == NULL; i++)
        if (agent->pending[i].id == 0)
            slot = &agent->pending[i];
    /* Ids count up per connection and skip 0 and any still waiting. */
    uint32_t id;
    int taken;
    do {
        id = ++agent->next_request_id;
        taken = id == 0;
        for (unsigned i = 0; i < TL_AGENT_MAX_PENDING && !taken; i++)
            taken = agent->pending[i].id == id;
    } while (taken);
    int rc = tl_peer_send_control(agent->peer, id, body);
    if (rc != 0)
        return rc;
    *slot = (struct pending_request){id, uv_now(agent->server->loop) + timeout_ms, answer, data};
    agent->pending_count++;
    arm_request_timer(agent);
    *request_id = id;
    return 0;
}

void tl_agent_request_cancel(tl_agent_link_t *agent, uint32_t request_id)
{
    for (unsigned i = 0; agent->pending != NULL && i < TL_AGENT_MAX_PENDING; i++) {
        if (request_id != 0 && agent->pending[i].id == request_id) {
            agent->pending[i].id = 0;
            agent->pending_count--;
            if (!agent->closed)
                arm_request_timer(agent);
            return;
        }
    }
}

/* An answer to one of our requests: its slot is freed before the callback runs. */
void tl__agent_link_answer(struct tl_agent_link *agent, const struct tl_msg_control *control)
{
    for (unsigned i = 0; agent->pending != NULL && i < TL_AGENT_MAX_PENDING; i++) {
        struct pending_request *slot = &agent->pending[i];
        if (slot->id != control->request_id)
            continue;
        struct pending_request answered = *slot;
        slot->id = 0;
        agent->pending_count--;
        arm_request_timer(agent);
        answered.answer(answered.data, 0, control->body);
        return;
    }
    /* Late (timed out or cancelled) or invented: nobody waits for it. */
    tl_log_debug("answer to no pending request device=D-%" PRId64 " request=%" PRIu32,
                 agent->device_id, control->request_id);
}

/* The connection is gone: every request still waiting fails. */
void tl__agent_link_fail_pending(struct tl_agent_link *agent)
{
    for (unsigned i = 0; agent->pending != NULL && i < TL_AGENT_MAX_PENDING; i++) {
        struct pending_request *slot = &agent->pending[i];
        if (slot->id == 0)
            continue;
        struct pending_request failed = *slot;
        slot->id = 0;
        agent->pending_count--;
        failed.answer(failed.data, TL_ECLOSED, NULL);
    }
    if (agent->request_timer != NULL && !uv_is_closing((uv_handle_t *)agent->request_timer))
        uv_close((uv_handle_t *)agent->request_timer, request_timer_closed);
}
