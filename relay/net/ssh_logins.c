/*
 * The technicians' logins (relay/net/ssh_logins.h): the users' table kept
 * fresh, and every login outcome audited.
 */
#include "relay/net/ssh_logins.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/log.h"
#include "relay/desk/users.h"
#include "relay/net/login_tally.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tl_ssh_logins {
    uv_loop_t *loop;
    tl_worker_t *worker;
    tl_ssh_front_t *front; /* NULL until started, and once stopping */
    tl_users_t *users;
    uv_timer_t users_timer;
    int64_t users_version;
    int users_loading;
    int users_loaded; /* a first table is in */
    void (*on_change)(void *data, tl_ssh_logins_t *logins);
    void *on_change_data;
    /* Refused logins, counted per address and minute (relay/net/login_tally.h). */
    tl_login_tally_t *login_tally;
    uv_timer_t login_tally_timer;
    int stopping;
};

/* ---- the users ---------------------------------------------------------------------------- */

struct users_job {
    tl_job_t job;
    tl_ssh_logins_t *logins;
    int64_t seen_version;
    tl_user_rows_t list;
    int loaded; /* 0 when nothing changed */
};

static int run_users_load(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct users_job *job = (struct users_job *)base;
    int64_t version = tl_store_change_counter(ctx->store);
    /* Our own connection's commits do not move data_version; users are only
     * ever changed by the admin commands, on their own connections. */
    if (version == job->seen_version && job->seen_version != -2)
        return 0;
    job->seen_version = version;
    int rc = tl_store_users_read(ctx->store, &job->list);
    job->loaded = rc == 0;
    return rc;
}

static void users_load_done(tl_job_t *base, int status)
{
    struct users_job *job = (struct users_job *)base;
    tl_ssh_logins_t *logins = job->logins;
    logins->users_loading = 0;
    if (status == 0 && job->loaded) {
        int loaded_before = logins->users_loaded;
        if (tl_users_load_rows(logins->users, &job->list) == 0)
            logins->users_loaded = 1;
        logins->users_version = job->seen_version;
        tl_log_debug("technicians loaded count=%zu", tl_users_count(logins->users));
        /* Who signed in under the old table is held to the new one. */
        if (loaded_before && !logins->stopping) {
            if (logins->front != NULL)
                tl_ssh_front_recheck(logins->front, tl_ssh_logins_recheck, tl_users_recheck_reason,
                                     logins);
            if (logins->on_change != NULL)
                logins->on_change(logins->on_change_data, logins);
        }
    }
    if (job->loaded)
        tl_user_rows_free(&job->list);
    free(job);
}

static void reload_users(tl_ssh_logins_t *logins)
{
    if (logins->users_loading || logins->stopping)
        return;
    struct users_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    job->job.run = run_users_load;
    job->job.done = users_load_done;
    job->logins = logins;
    job->seen_version = logins->users_version;
    logins->users_loading = 1;
    tl_worker_submit(logins->worker, &job->job);
}

static void on_users_timer(uv_timer_t *timer)
{
    reload_users(timer->data);
}

int tl_ssh_logins_authorize(tl_ssh_logins_t *logins, const char *user, ssh_key key,
                            tl_technician_t *out)
{
    return tl_users_authorize(logins->users, user, key, out);
}

struct login_job {
    tl_job_t job;
    tl_ssh_logins_t *logins;
    uint64_t login_id; /* a successful login whose commands wait for this job */
    char user[65], address[64], fingerprint[64], reason[32];
    int ok;
};

static int run_login_audit(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct login_job *job = (struct login_job *)base;
    char actor[96];
    snprintf(actor, sizeof actor, "tech:%s", job->user[0] ? job->user : "-");
    json_t *details = json_pack("{s:s, s:s, s:s}", "address", job->address, "key", job->fingerprint,
                                "reason", job->reason);
    int rc = tl_worker_audit(ctx, actor, job->ok ? "login.ok" : "login.failed", "", details);
    json_decref(details);
    return rc;
}

static void login_audit_done(tl_job_t *base, int status)
{
    struct login_job *job = (struct login_job *)base;
    if (status != 0)
        tl_log_error("login not audited reason=%s", tl_strerror(status));
    /* Fail closed: a login the audit log does not hold runs nothing. */
    if (job->login_id != 0 && job->logins->front != NULL)
        tl_ssh_front_login_recorded(job->logins->front, job->login_id, status);
    free(base);
}

/* ---- refused logins: one audit entry per address and minute (docs/audit-format.md §11) ---- */

struct login_summary_job {
    tl_job_t job;
    json_t *details;
};

static int run_login_summary(tl_job_t *base, tl_job_ctx_t *ctx)
{
    struct login_summary_job *job = (struct login_summary_job *)base;
    return tl_worker_audit(ctx, "relay", "login.failures", "", job->details);
}

static void login_summary_done(tl_job_t *base, int status)
{
    struct login_summary_job *job = (struct login_summary_job *)base;
    if (status != 0)
        tl_log_error("login failures not audited address=%s count=%" PRId64 " reason=%s",
                     json_string_value(json_object_get(job->details, "address")),
                     (int64_t)json_integer_value(json_object_get(job->details, "count")),
                     tl_strerror(status));
    json_decref(job->details);
    free(job);
}

static void emit_login_summary(void *ctx, const tl_login_summary_t *summary)
{
    tl_ssh_logins_t *logins = ctx;
    char minute[32];
    time_t seconds = (time_t)(summary->minute_ms / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    strftime(minute, sizeof minute, "%Y-%m-%dT%H:%M:%SZ", &utc);
    json_t *kinds = json_object();
    for (size_t i = 0; kinds != NULL && tl_login_tally_kind_name(i) != NULL; i++)
        if (summary->kinds[i] > 0)
            json_object_set_new(kinds, tl_login_tally_kind_name(i),
                                json_integer((json_int_t)summary->kinds[i]));
    json_t *details = json_pack("{s:s, s:s, s:I, s:o*}", "address", summary->address, "minute",
                                minute, "count", (json_int_t)summary->count, "kinds", kinds);
    if (details != NULL && strcmp(summary->address, TL_LOGIN_TALLY_OTHER) == 0)
        json_object_set_new(details, "addresses", json_integer(summary->addresses));
    struct login_summary_job *job = details != NULL ? calloc(1, sizeof *job) : NULL;
    if (job == NULL) {
        /* Not silently: the operator learns what the audit log lacks. */
        tl_log_error("login failures not audited address=%s count=%" PRIu64 " reason=%s",
                     summary->address, summary->count, tl_strerror(TL_ENOMEM));
        json_decref(details);
        return;
    }
    job->job.run = run_login_summary;
    job->job.done = login_summary_done;
    job->details = details;
    tl_worker_submit(logins->worker, &job->job);
}

/* Fires just after each minute ends, by the wall clock. */
static void on_login_tally_timer(uv_timer_t *timer)
{
    tl_ssh_logins_t *logins = timer->data;
    int64_t now = tl_wall_ms();
    tl_login_tally_flush(logins->login_tally, now);
    uv_timer_start(timer, on_login_tally_timer,
                   (uint64_t)(TL_LOGIN_TALLY_MINUTE_MS - now % TL_LOGIN_TALLY_MINUTE_MS + 50), 0);
}

void tl_ssh_logins_report(tl_ssh_logins_t *logins, const char *user, const char *address,
                          const char *fingerprint, int ok, const char *reason)
{
    /* A refusal is counted for its address's minute; a new key gets its own entry as well. */
    if (!ok && !tl_login_tally_add(logins->login_tally, tl_wall_ms(), address, reason, fingerprint))
        return;
    struct login_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    job->job.run = run_login_audit;
    job->job.done = login_audit_done;
    /* Names from the network are bounded and made printable before they are kept. */
    snprintf(job->user, sizeof job->user, "%s", user ? user : "");
    for (char *p = job->user; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    snprintf(job->address, sizeof job->address, "%s", address ? address : "");
    snprintf(job->fingerprint, sizeof job->fingerprint, "%s", fingerprint ? fingerprint : "");
    snprintf(job->reason, sizeof job->reason, "%s", reason ? reason : "");
    job->ok = ok;
    job->logins = logins;
    tl_worker_submit(logins->worker, &job->job);
}

void tl_ssh_logins_report_ok(tl_ssh_logins_t *logins, uint64_t login_id,
                             const tl_technician_t *technician)
{
    struct login_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        tl_ssh_front_login_recorded(logins->front, login_id, TL_ENOMEM);
        return;
    }
    job->job.run = run_login_audit;
    job->job.done = login_audit_done;
    job->logins = logins;
    job->login_id = login_id;
    job->ok = 1;
    snprintf(job->user, sizeof job->user, "%s", technician->name);
    snprintf(job->address, sizeof job->address, "%s", technician->address);
    snprintf(job->fingerprint, sizeof job->fingerprint, "%s", technician->key_fingerprint);
    snprintf(job->reason, sizeof job->reason, "publickey");
    tl_worker_submit(logins->worker, &job->job);
}

/* ---- start and stop ----------------------------------------------------------------------- */

tl_ssh_logins_t *tl_ssh_logins_start(uv_loop_t *loop, tl_worker_t *worker, int *err)
{
    int rc = TL_ENOMEM;
    tl_ssh_logins_t *logins = calloc(1, sizeof *logins);
    if (logins == NULL)
        goto out;
    logins->loop = loop;
    logins->worker = worker;
    logins->users = tl_users_new();
    logins->login_tally = tl_login_tally_new(emit_login_summary, logins);
    if (logins->users == NULL || logins->login_tally == NULL)
        goto out;
    logins->users_version = -2; /* load on the first pass whatever the counter says */
    uv_timer_init(loop, &logins->users_timer);
    logins->users_timer.data = logins;
    reload_users(logins);
    uv_timer_start(&logins->users_timer, on_users_timer, TL_USERS_RELOAD_MS, TL_USERS_RELOAD_MS);
    uv_timer_init(loop, &logins->login_tally_timer);
    logins->login_tally_timer.data = logins;
    /* It does not keep the loop running; closed by tl_ssh_logins_close(). */
    uv_unref((uv_handle_t *)&logins->login_tally_timer);
    on_login_tally_timer(&logins->login_tally_timer);
    rc = 0;
out:
    if (rc != 0 && logins != NULL) {
        tl_users_free(logins->users);
        tl_login_tally_free(logins->login_tally);
        free(logins);
        logins = NULL;
    }
    if (err != NULL)
        *err = rc;
    return logins;
}

void tl_ssh_logins_on_change(tl_ssh_logins_t *logins,
                             void (*on_change)(void *data, tl_ssh_logins_t *logins), void *data)
{
    logins->on_change = on_change;
    logins->on_change_data = data;
}

int tl_ssh_logins_recheck(void *logins, const tl_technician_t *technician)
{
    tl_ssh_logins_t *l = logins;
    return tl_users_recheck(l->users, technician, tl_wall_ms());
}

void tl_ssh_logins_set_front(tl_ssh_logins_t *logins, tl_ssh_front_t *front)
{
    logins->front = front;
}

void tl_ssh_logins_stop(tl_ssh_logins_t *logins)
{
    if (logins == NULL || logins->stopping)
        return;
    logins->stopping = 1;
    logins->front = NULL;
    uv_close((uv_handle_t *)&logins->users_timer, NULL);
}

void tl_ssh_logins_close(tl_ssh_logins_t *logins)
{
    if (logins == NULL)
        return;
    tl_ssh_logins_stop(logins);
    tl_login_tally_flush(logins->login_tally, INT64_MAX);
    uv_close((uv_handle_t *)&logins->login_tally_timer, NULL);
}

void tl_ssh_logins_free(tl_ssh_logins_t *logins)
{
    if (logins == NULL)
        return;
    tl_users_free(logins->users);
    tl_login_tally_free(logins->login_tally);
    free(logins);
}
