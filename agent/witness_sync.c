/* The running agent's side of witnessing the audit log (agent/witness_sync.h). */
#include "agent/witness_sync.h"

#include "agent/state.h"
#include "agent/witness.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "proto/vocab.h"
#include "proto/witness.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_TIMEOUT_MS 30000

enum step { STEP_LOAD, STEP_JUDGE, STEP_MARK };

struct tl_witness_sync {
    uv_loop_t *loop;
    char state_dir[TL_STATE_PATH_MAX];
    tl_tunnel_t *tunnel;
    uv_timer_t hourly, soon;
    int handles_open;
    int busy, again, working, answers, freeing;
    uint64_t kept_size; /* loop only: the size kept after the last judgement */
    /* The round's; the job's while working. */
    uv_work_t work;
    enum step step;
    json_t *witness, *answer;
    int result, conflict;
    const char *verdict;
    char why[320];
};

static void start_round(tl_witness_sync_t *sync);
static void step_report(tl_witness_sync_t *sync);

static void release(tl_witness_sync_t *sync)
{
    if (!sync->freeing || sync->working || sync->answers > 0 || sync->handles_open > 0)
        return;
    json_decref(sync->witness);
    json_decref(sync->answer);
    free(sync);
}

static void handle_closed(uv_handle_t *handle)
{
    tl_witness_sync_t *sync = handle->data;
    sync->handles_open--;
    release(sync);
}

static void round_end(tl_witness_sync_t *sync)
{
    sync->busy = 0;
    json_decref(sync->witness);
    json_decref(sync->answer);
    sync->witness = sync->answer = NULL;
    if (sync->freeing) {
        release(sync);
        return;
    }
    if (sync->again) {
        sync->again = 0;
        start_round(sync);
    }
}

/* ---- off the loop ---------------------------------------------------------------------- */

static void run_step(uv_work_t *work)
{
    tl_witness_sync_t *sync = work->data;
    switch (sync->step) {
    case STEP_LOAD:
        sync->witness = tl_agent_witness_load(sync->state_dir, &sync->result);
        break;
    case STEP_JUDGE:
        sync->result =
            tl_agent_witness_judge(sync->witness, sync->answer, tl_wall_ms(), &sync->verdict,
                                   &sync->conflict, sync->why, sizeof sync->why);
        if (sync->result == 0)
            sync->result = tl_agent_witness_save(sync->state_dir, sync->witness);
        break;
    case STEP_MARK:
        sync->result = tl_agent_witness_save(sync->state_dir, sync->witness);
        break;
    }
}

static void step_done(uv_work_t *work, int status);

static void queue_step(tl_witness_sync_t *sync, enum step step)
{
    sync->step = step;
    sync->working = 1;
    sync->work.data = sync;
    if (uv_queue_work(sync->loop, &sync->work, run_step, step_done) != 0) {
        sync->working = 0;
        round_end(sync);
    }
}

/* ---- the conversation ------------------------------------------------------------------- */

static void conflict_answered(void *data, int status, json_t *result)
{
    tl_witness_sync_t *sync = data;
    sync->answers--;
    json_t *conflict = sync->witness != NULL ? tl_agent_witness_unreported(sync->witness) : NULL;
    if (sync->freeing || conflict == NULL) {
        round_end(sync);
        return;
    }
    if (status != 0 || !json_is_true(json_object_get(result, "ok"))) {
        /* Kept, and told again on the next round. */
        tl_log_warn("audit conflict not taken by the relay reason=%s",
                    status != 0 ? tl_strerror(status) : "refused");
        round_end(sync);
        return;
    }
    json_object_set_new(conflict, "reported", json_true());
    queue_step(sync, STEP_MARK);
}

static void step_report(tl_witness_sync_t *sync)
{
    json_t *conflict = tl_agent_witness_unreported(sync->witness);
    if (conflict == NULL || sync->tunnel == NULL) {
        round_end(sync);
        return;
    }
    json_t *body = json_pack(
        "{s:s, s:O, s:O, s:O, s:O, s:O}", "type", tl_control_type_name(TL_CONTROL_AUDIT_CONFLICT),
        "kind", json_object_get(conflict, "kind"), "reason", json_object_get(conflict, "reason"),
        "kept", json_object_get(conflict, "kept"), "shown", json_object_get(conflict, "shown"),
        "time", json_object_get(conflict, "time"));
    int rc = body != NULL
                 ? tl_tunnel_request(sync->tunnel, body, ANSWER_TIMEOUT_MS, conflict_answered, sync)
                 : TL_ENOMEM;
    json_decref(body);
    if (rc == 0)
        sync->answers++;
    else
        round_end(sync);
}

static void witness_answered(void *data, int status, json_t *result)
{
    tl_witness_sync_t *sync = data;
    sync->answers--;
    if (sync->freeing || status != 0 || !json_is_true(json_object_get(result, "ok"))) {
        if (!sync->freeing)
            tl_log_warn("audit witness not answered reason=%s",
                        status != 0 ? tl_strerror(status) : "refused by the relay");
        round_end(sync);
        return;
    }
    sync->answer = json_deep_copy(result);
    if (sync->answer == NULL) {
        round_end(sync);
        return;
    }
    json_object_del(sync->answer, "type");
    json_object_del(sync->answer, "ok");
    queue_step(sync, STEP_JUDGE);
}

static void ask(tl_witness_sync_t *sync)
{
    json_t *body = json_pack("{s:s, s:I}", "type", tl_control_type_name(TL_CONTROL_AUDIT_WITNESS),
                             "have", (json_int_t)tl_agent_witness_size(sync->witness));
    int rc = body != NULL && sync->tunnel != NULL
                 ? tl_tunnel_request(sync->tunnel, body, ANSWER_TIMEOUT_MS, witness_answered, sync)
                 : TL_ECLOSED;
    json_decref(body);
    if (rc == 0)
        sync->answers++;
    else
        round_end(sync);
}

static void step_done(uv_work_t *work, int status)
{
    tl_witness_sync_t *sync = work->data;
    sync->working = 0;
    if (sync->freeing || status != 0) {
        round_end(sync);
        return;
    }
    switch (sync->step) {
    case STEP_LOAD:
        if (sync->result != 0) {
            tl_log_error("audit witness state unreadable file=%s reason=%s", TL_STATE_WITNESS,
                         tl_strerror(sync->result));
            round_end(sync);
            return;
        }
        ask(sync);
        return;
    case STEP_JUDGE:
        if (sync->result != 0) {
            tl_log_warn("audit witness answer refused reason=%s", tl_strerror(sync->result));
            round_end(sync);
            return;
        }
        sync->kept_size = tl_agent_witness_size(sync->witness);
        if (sync->conflict)
            tl_log_error("audit log conflict: the relay shows another history kind=%s "
                         "reason=\"%s\"",
                         sync->verdict, sync->why);
        else
            tl_log_info("audit checkpoint witnessed verdict=%s size=%" PRIu64, sync->verdict,
                        sync->kept_size);
        step_report(sync);
        return;
    case STEP_MARK:
        if (sync->result != 0) {
            round_end(sync);
            return;
        }
        step_report(sync);
        return;
    }
}

static void start_round(tl_witness_sync_t *sync)
{
    if (sync->freeing || sync->tunnel == NULL || !tl_tunnel_connected(sync->tunnel))
        return;
    if (sync->busy) {
        sync->again = 1;
        return;
    }
    sync->busy = 1;
    queue_step(sync, STEP_LOAD);
}

/* ---- timers and the owner's calls -------------------------------------------------------- */

static void on_timer(uv_timer_t *timer)
{
    start_round(timer->data);
}

tl_witness_sync_t *tl_witness_sync_new(uv_loop_t *loop, const char *state_dir)
{
    tl_witness_sync_t *sync = calloc(1, sizeof *sync);
    if (sync == NULL || strlen(state_dir) >= sizeof sync->state_dir) {
        free(sync);
        return NULL;
    }
    sync->loop = loop;
    memcpy(sync->state_dir, state_dir, strlen(state_dir) + 1);
    uv_timer_init(loop, &sync->hourly);
    uv_timer_init(loop, &sync->soon);
    sync->hourly.data = sync->soon.data = sync;
    sync->handles_open = 2;
    uv_timer_start(&sync->hourly, on_timer, TL_WITNESS_SYNC_MS, TL_WITNESS_SYNC_MS);
    uv_unref((uv_handle_t *)&sync->hourly); /* never keeps the loop alive alone */
    uv_unref((uv_handle_t *)&sync->soon);
    /* What is kept already: a notice of that size asks nothing. */
    json_t *witness = tl_agent_witness_load(state_dir, NULL);
    sync->kept_size = tl_agent_witness_size(witness);
    json_decref(witness);
    return sync;
}

void tl_witness_sync_connected(tl_witness_sync_t *sync, tl_tunnel_t *tunnel)
{
    sync->tunnel = tunnel;
    start_round(sync);
}

void tl_witness_sync_notice(tl_witness_sync_t *sync, json_t *body)
{
    json_t *size = json_object_get(body, "size");
    if (!json_is_integer(size) || json_integer_value(size) <= 0 ||
        (uint64_t)json_integer_value(size) > TL_AUDIT_WITNESS_SIZE_MAX) {
        tl_log_debug("audit.checkpoint notice ignored: no size");
        return;
    }
    if ((uint64_t)json_integer_value(size) == sync->kept_size ||
        uv_is_active((uv_handle_t *)&sync->soon))
        return;
    uint16_t spread = 0;
    if (RAND_bytes((unsigned char *)&spread, sizeof spread) != 1)
        spread = 0;
    uv_timer_start(&sync->soon, on_timer, spread % (TL_WITNESS_SPREAD_MS + 1), 0);
}

void tl_witness_sync_free(tl_witness_sync_t *sync)
{
    if (sync == NULL)
        return;
    sync->tunnel = NULL;
    sync->freeing = 1;
    uv_close((uv_handle_t *)&sync->hourly, handle_closed);
    uv_close((uv_handle_t *)&sync->soon, handle_closed);
}
