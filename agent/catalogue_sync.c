/* The running agent's side of catalogue delivery (agent/catalogue_sync.h). */
#include "agent/catalogue_sync.h"

#include "agent/catalogue.h"
#include "proto/catalogue.h"
#include "proto/err.h"
#include "proto/hash.h"
#include "proto/keys.h"
#include "proto/log.h"
#include "proto/vocab.h"

#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_TIMEOUT_MS 30000
#define MAX_RESTARTS 3

struct tl_catalogue_sync {
    uv_loop_t *loop;
    tl_agent_state_t state;
    tl_catalogue_installed_fn installed;
    void *data;
    tl_tunnel_t *tunnel;
    uv_timer_t timer;
    uv_fs_event_t watch; /* STATE/catalogue: an install or a rollback by the command */
    int watching, handles_open;
    uint64_t loaded;  /* the version whose runbooks the owner has */
    uint64_t highest; /* the newest version ever installed here (loop only) */
    uint64_t result_highest;
    int reloading, reload_again;
    uv_work_t reload_work;
    uint64_t reload_version, reload_highest;
    tl_runbooks_t *reload_runbooks;
    int busy;                        /* a round is under way */
    int working;                     /* a job is on the thread pool */
    int freeing;                     /* freed by the owner: go once nothing is in flight */
    int answers;                     /* tunnel requests in flight */
    int fetched;                     /* this round fetched already */
    char refused[TL_SHA256_HEX_LEN]; /* the package refused last: not fetched again */
    /* The package being fetched. */
    uint8_t *package;
    uint64_t version, size, received;
    char sha256[TL_SHA256_HEX_LEN];
    unsigned restarts;
    /* The job's. */
    uv_work_t work;
    json_t *reports;
    int result;
    uint64_t result_version;
    tl_runbooks_t *result_runbooks;
    char why[TL_AGENT_CATALOGUE_WHY];
};

static void step_reports(tl_catalogue_sync_t *sync);
static void step_fetch(tl_catalogue_sync_t *sync, uint64_t offset);

static void release(tl_catalogue_sync_t *sync)
{
    if (!sync->freeing || sync->working || sync->answers > 0 || sync->reloading ||
        sync->handles_open > 0)
        return;
    tl_runbooks_free(sync->reload_runbooks);
    free(sync->package);
    json_decref(sync->reports);
    tl_runbooks_free(sync->result_runbooks);
    free(sync);
}

static void handle_closed(uv_handle_t *handle)
{
    tl_catalogue_sync_t *sync = handle->data;
    sync->handles_open--;
    release(sync);
}

/* ---- the catalogue in use changed on disk: the runbooks follow -------------------------- */

static void reload_read(uv_work_t *work)
{
    tl_catalogue_sync_t *sync = work->data;
    char runbooks[4096];
    int err = 0;
    sync->reload_version = 0;
    sync->reload_runbooks = NULL;
    tl_agent_catalogue_state_t installed;
    sync->reload_highest =
        tl_agent_catalogue_state(sync->state.dir, &installed) == 0 ? installed.highest : 0;
    int rc = tl_agent_catalogue_dirs(sync->state.dir, runbooks, sizeof runbooks, NULL, 0,
                                     &sync->reload_version);
    if (rc != 0) {
        sync->reload_version = 0;
        rc = tl_runbooks_default_dir(runbooks, sizeof runbooks);
    }
    if (rc == 0)
        sync->reload_runbooks = tl_runbooks_load(runbooks, &err);
}

static void start_reload(tl_catalogue_sync_t *sync);

static void reload_done(uv_work_t *work, int status)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->reloading = 0;
    if (status == 0 && sync->reload_highest > sync->highest)
        sync->highest = sync->reload_highest; /* an install by hand */
    if (sync->reload_runbooks != NULL && sync->reload_version == sync->loaded) {
        tl_runbooks_free(sync->reload_runbooks); /* the owner has these already */
        sync->reload_runbooks = NULL;
    }
    if (status == 0 && !sync->freeing && sync->reload_runbooks != NULL) {
        sync->loaded = sync->reload_version;
        if (sync->installed != NULL)
            sync->installed(sync->data, sync->reload_version, sync->reload_runbooks);
        else
            tl_runbooks_free(sync->reload_runbooks);
        sync->reload_runbooks = NULL;
    }
    if (sync->freeing) {
        release(sync);
        return;
    }
    if (sync->reload_again) {
        sync->reload_again = 0;
        start_reload(sync);
    }
}

static void start_reload(tl_catalogue_sync_t *sync)
{
    if (sync->reloading) {
        sync->reload_again = 1;
        return;
    }
    sync->reloading = 1;
    sync->reload_work.data = sync;
    if (uv_queue_work(sync->loop, &sync->reload_work, reload_read, reload_done) != 0)
        sync->reloading = 0;
}

static void on_change(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    (void)events;
    tl_catalogue_sync_t *sync = handle->data;
    if (status == 0 && !sync->freeing &&
        (filename == NULL || strcmp(filename, "installed.json") == 0))
        start_reload(sync);
}

static void round_end(tl_catalogue_sync_t *sync)
{
    sync->busy = 0;
    free(sync->package);
    sync->package = NULL;
    sync->received = sync->size = sync->version = 0;
}

static void on_timer(uv_timer_t *timer)
{
    tl_catalogue_sync_t *sync = timer->data;
    if (sync->tunnel != NULL && tl_tunnel_connected(sync->tunnel))
        tl_catalogue_sync_connected(sync, sync->tunnel);
}

tl_catalogue_sync_t *tl_catalogue_sync_new(uv_loop_t *loop, const tl_agent_state_t *state,
                                           tl_catalogue_installed_fn installed, void *data)
{
    tl_catalogue_sync_t *sync = calloc(1, sizeof *sync);
    if (sync == NULL)
        return NULL;
    sync->loop = loop;
    sync->state = *state;
    sync->installed = installed;
    sync->data = data;
    uv_timer_init(loop, &sync->timer);
    sync->timer.data = sync;
    uv_timer_start(&sync->timer, on_timer, TL_CATALOGUE_SYNC_MS, TL_CATALOGUE_SYNC_MS);
    uv_unref((uv_handle_t *)&sync->timer); /* it never keeps the loop alive alone */
    sync->handles_open = 1;
    /* The runbooks the owner loaded at start; a rollback by the command is seen here. */
    tl_agent_catalogue_state_t in_use;
    if (tl_agent_catalogue_state(state->dir, &in_use) == 0) {
        sync->loaded = in_use.current;
        sync->highest = in_use.highest;
    }
    char dir[TL_STATE_FILE_MAX];
    if (tl_state_path(state->dir, TL_STATE_CATALOGUE, dir, sizeof dir) == 0 &&
        (mkdir(dir, 0700) == 0 || errno == EEXIST) && uv_fs_event_init(loop, &sync->watch) == 0) {
        sync->watch.data = sync;
        sync->handles_open++;
        sync->watching = uv_fs_event_start(&sync->watch, on_change, dir, 0) == 0;
        if (!sync->watching)
            tl_log_warn("catalogue changes not watched dir=%s", dir);
        uv_unref((uv_handle_t *)&sync->watch);
    }
    return sync;
}

void tl_catalogue_sync_free(tl_catalogue_sync_t *sync)
{
    if (sync == NULL)
        return;
    sync->tunnel = NULL;
    sync->freeing = 1;
    uv_close((uv_handle_t *)&sync->timer, handle_closed);
    if (sync->handles_open > 1)
        uv_close((uv_handle_t *)&sync->watch, handle_closed);
}

void tl_catalogue_sync_connected(tl_catalogue_sync_t *sync, tl_tunnel_t *tunnel)
{
    sync->tunnel = tunnel;
    if (sync->busy || sync->freeing)
        return;
    sync->busy = 1;
    sync->fetched = 0;
    sync->restarts = 0;
    step_reports(sync);
}

/* ---- reports: what happened here, told to the relay ---------------------------------------- */

static void read_reports(uv_work_t *work)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->reports = tl_agent_catalogue_reports(sync->state.dir);
}

static void drop_report(uv_work_t *work)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->result = tl_agent_catalogue_reports_done(sync->state.dir, 1);
}

static void report_dropped(uv_work_t *work, int status)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->working = 0;
    if (sync->freeing || status != 0 || sync->result != 0) {
        round_end(sync);
        release(sync);
        return;
    }
    step_reports(sync);
}

static void report_answered(void *data, int status, json_t *result)
{
    tl_catalogue_sync_t *sync = data;
    sync->answers--;
    if (sync->freeing) {
        round_end(sync);
        release(sync);
        return;
    }
    if (status == 0 && json_is_true(json_object_get(result, "ok"))) {
        sync->working = 1;
        sync->work.data = sync;
        if (uv_queue_work(sync->loop, &sync->work, drop_report, report_dropped) != 0) {
            sync->working = 0;
            round_end(sync);
        }
        return;
    }
    /* Kept for the next connection; the fetch goes on. */
    tl_log_warn("catalogue report not taken by the relay reason=%s",
                status != 0 ? tl_strerror(status)
                : json_string_value(json_object_get(result, "error"))
                    ? json_string_value(json_object_get(result, "error"))
                    : "?");
    if (status == 0 && !sync->fetched)
        step_fetch(sync, 0);
    else
        round_end(sync);
}

static void reports_read(uv_work_t *work, int status)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->working = 0;
    json_t *first = json_array_get(sync->reports, 0);
    if (sync->freeing || status != 0 || sync->tunnel == NULL) {
        round_end(sync);
        release(sync);
        return;
    }
    if (first == NULL) {
        if (!sync->fetched)
            step_fetch(sync, 0);
        else
            round_end(sync);
        return;
    }
    json_t *body = json_deep_copy(first);
    json_object_set_new(body, "type",
                        json_string(tl_control_type_name(TL_CONTROL_CATALOGUE_REPORT)));
    int rc = tl_tunnel_request(sync->tunnel, body, ANSWER_TIMEOUT_MS, report_answered, sync);
    json_decref(body);
    if (rc == 0)
        sync->answers++;
    else
        round_end(sync);
}

static void step_reports(tl_catalogue_sync_t *sync)
{
    json_decref(sync->reports);
    sync->reports = NULL;
    sync->working = 1;
    sync->work.data = sync;
    if (uv_queue_work(sync->loop, &sync->work, read_reports, reports_read) != 0) {
        sync->working = 0;
        round_end(sync);
    }
}

/* ---- fetch and install --------------------------------------------------------------------- */

static void install_package(uv_work_t *work)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->result_version = 0;
    sync->result =
        tl_agent_catalogue_install(sync->state.dir, sync->state.catalogue_key, sync->package,
                                   sync->size, &sync->result_version, sync->why, sizeof sync->why);
    tl_agent_catalogue_state_t installed;
    sync->result_highest =
        tl_agent_catalogue_state(sync->state.dir, &installed) == 0 ? installed.highest : 0;
    if (sync->result == 0) {
        char runbooks[4096];
        int err = 0;
        if (tl_agent_catalogue_dirs(sync->state.dir, runbooks, sizeof runbooks, NULL, 0, NULL) == 0)
            sync->result_runbooks = tl_runbooks_load(runbooks, &err);
    }
}

static void package_installed(uv_work_t *work, int status)
{
    tl_catalogue_sync_t *sync = work->data;
    sync->working = 0;
    if (status == 0 && sync->result_highest > sync->highest)
        sync->highest = sync->result_highest;
    if (status == 0 && sync->result != 0)
        memcpy(sync->refused, sync->sha256, sizeof sync->refused);
    if (status == 0 && sync->result == 0 && sync->installed != NULL && !sync->freeing &&
        sync->result_runbooks != NULL) {
        sync->loaded = sync->result_version;
        sync->installed(sync->data, sync->result_version, sync->result_runbooks);
        sync->result_runbooks = NULL;
    }
    free(sync->package);
    sync->package = NULL;
    if (sync->freeing || sync->tunnel == NULL) {
        round_end(sync);
        release(sync);
        return;
    }
    step_reports(sync); /* the relay hears of it now */
}

static void fetch_answered(void *data, int status, json_t *result)
{
    tl_catalogue_sync_t *sync = data;
    sync->answers--;
    if (sync->freeing) {
        round_end(sync);
        release(sync);
        return;
    }
    json_t *version = json_object_get(result, "version"), *size = json_object_get(result, "size");
    json_t *offset = json_object_get(result, "offset");
    const char *hash = json_string_value(json_object_get(result, "sha256"));
    const char *chunk = json_string_value(json_object_get(result, "data"));
    if (status != 0 || !json_is_true(json_object_get(result, "ok")) || !json_is_integer(version) ||
        json_integer_value(version) < 0) {
        tl_log_warn("catalogue fetch failed reason=%s",
                    status != 0 ? tl_strerror(status) : "the relay refused or answered badly");
        round_end(sync);
        return;
    }
    uint64_t announced = (uint64_t)json_integer_value(version);
    if (announced == 0 || announced <= sync->highest ||
        (hash != NULL && strcmp(hash, sync->refused) == 0)) {
        round_end(sync); /* nothing newer published */
        return;
    }
    if (!json_is_integer(size) || json_integer_value(size) <= 0 ||
        json_integer_value(size) > TL_CATALOGUE_MAX || !tl_sha256_hex_valid(hash) ||
        !json_is_integer(offset) || chunk == NULL) {
        tl_log_warn("catalogue fetch failed reason=\"a malformed answer\"");
        round_end(sync);
        return;
    }
    if (sync->package == NULL || sync->version != announced || strcmp(sync->sha256, hash) != 0 ||
        sync->size != (uint64_t)json_integer_value(size)) {
        /* A new package, or the relay's changed under us: from the start. */
        int restart = sync->package != NULL;
        free(sync->package);
        sync->package = malloc((size_t)json_integer_value(size));
        if (sync->package == NULL || (restart && ++sync->restarts > MAX_RESTARTS)) {
            round_end(sync);
            return;
        }
        sync->version = announced;
        sync->size = (uint64_t)json_integer_value(size);
        sync->received = 0;
        memcpy(sync->sha256, hash, sizeof sync->sha256);
        if (restart || json_integer_value(offset) != 0) {
            step_fetch(sync, 0);
            return;
        }
    }
    size_t got = 0;
    if ((uint64_t)json_integer_value(offset) != sync->received ||
        tl_base64_decode(chunk, strlen(chunk), sync->package + sync->received,
                         (size_t)(sync->size - sync->received), &got) != 0 ||
        (got == 0 && sync->received < sync->size)) {
        tl_log_warn("catalogue fetch failed reason=\"a chunk out of place\"");
        round_end(sync);
        return;
    }
    sync->received += got;
    if (sync->received < sync->size) {
        step_fetch(sync, sync->received);
        return;
    }
    sync->fetched = 1;
    tl_log_info("catalogue fetched version=%" PRIu64 " size=%" PRIu64, sync->version, sync->size);
    sync->working = 1;
    sync->work.data = sync;
    if (uv_queue_work(sync->loop, &sync->work, install_package, package_installed) != 0) {
        sync->working = 0;
        round_end(sync);
    }
}

static void step_fetch(tl_catalogue_sync_t *sync, uint64_t offset)
{
    sync->fetched = 1;
    json_t *body = json_pack("{s:s, s:I}", "type", tl_control_type_name(TL_CONTROL_CATALOGUE_GET),
                             "offset", (json_int_t)offset);
    if (body != NULL && sync->version > 0)
        json_object_set_new(body, "version", json_integer((json_int_t)sync->version));
    int rc = body != NULL && sync->tunnel != NULL
                 ? tl_tunnel_request(sync->tunnel, body, ANSWER_TIMEOUT_MS, fetch_answered, sync)
                 : TL_ENOMEM;
    json_decref(body);
    if (rc == 0)
        sync->answers++;
    else
        round_end(sync);
}
