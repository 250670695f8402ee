/*
 * The web view's server (relay/web.h): libmicrohttpd, one thread per connection, bounded in
 * connections, connections per address, request size and idle time. A request that needs the
 * desk becomes a call handed to the loop and answered there; the connection's thread waits for
 * it. Routes, in docs/web.md "Pages".
 */
#include "relay/web.h"

#include "proto/addr.h"
#include "proto/clock.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/hash.h"
#include "proto/ids.h"
#include "proto/log.h"
#include "relay/metrics_serve.h"
#include "relay/web_pages.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define COOKIE "tl_session"
/* A call's words: at most this many, in this many bytes. */
#define CALL_WORDS 16
#define CALL_WORDS_BYTES 2048
/* The files served under /static/: ours, and the player's as npm installs it. */
#define ASSET_MAX (4u * 1024 * 1024)

static const struct {
    const char *url, *path, *type;
} asset_files[] = {
    {"/static/tierline.css", "tierline.css", "text/css; charset=utf-8"},
    {"/static/tierline.js", "tierline.js", "text/javascript; charset=utf-8"},
    {"/static/asciinema-player.css",
     "node_modules/asciinema-player/dist/bundle/asciinema-player.css", "text/css; charset=utf-8"},
    {"/static/asciinema-player.min.js",
     "node_modules/asciinema-player/dist/bundle/asciinema-player.min.js",
     "text/javascript; charset=utf-8"},
};
#define ASSET_COUNT (sizeof asset_files / sizeof asset_files[0])

enum call_kind { CALL_COMMAND, CALL_SIGNIN };

/* One request's work on the loop. Held by the waiting thread and by the loop (refs). */
struct call {
    tl_job_t job; /* CALL_SIGNIN: the audit entry's job */
    struct tl_web *web;
    struct call *next;
    enum call_kind kind;
    int refs;
    int done;
    tl_technician_t technician;
    int argc;
    char *argv[CALL_WORDS + 1];
    char words[CALL_WORDS_BYTES];
    size_t words_used;
    /* the answer */
    int status; /* CALL_SIGNIN: the job's; CALL_COMMAND: 0, or a code when it did not run */
    int exit_status;
    char *out, *err;
    size_t out_len, err_len;
};

struct tl_web {
    uv_loop_t *loop;
    tl_commands_ctx_t *commands;
    tl_web_auth_t *auth;
    struct MHD_Daemon *daemon;
    uv_async_t async;
    int async_open;
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* a call is done, or the server stops */
    struct call *queue;  /* calls for the loop, under mutex */
    int stopping;        /* under mutex */
    int https;
    int failed; /* did not start: freed when its handle closes */
    char url[512];
    char *cert, *key; /* PEM, for MHD */
    struct {
        char *bytes;
        size_t len;
    } assets[ASSET_COUNT];
};

/* ---- calls: from a server thread to the loop and back ---------------------------------------- */

static void call_release_locked(struct call *call)
{
    if (--call->refs > 0)
        return;
    free(call->out);
    free(call->err);
    free(call);
}

static void call_release(struct tl_web *web, struct call *call)
{
    pthread_mutex_lock(&web->mutex);
    call_release_locked(call);
    pthread_mutex_unlock(&web->mutex);
}

/* On the loop: the answer is in; the waiting thread may go on. */
static void call_finish(struct call *call)
{
    struct tl_web *web = call->web;
    pthread_mutex_lock(&web->mutex);
    call->done = 1;
    pthread_cond_broadcast(&web->cond);
    call_release_locked(call);
    pthread_mutex_unlock(&web->mutex);
}

static struct call *call_new(struct tl_web *web, enum call_kind kind,
                             const tl_technician_t *technician)
{
    struct call *call = calloc(1, sizeof *call);
    if (call == NULL)
        return NULL;
    call->web = web;
    call->kind = kind;
    call->refs = 2; /* the thread's and the loop's */
    call->technician = *technician;
    return call;
}

/* Adds a word; TL_EFULL past the bounds. */
static int call_word(struct call *call, const char *word)
{
    size_t len = strlen(word) + 1;
    if (call->argc >= CALL_WORDS || call->words_used + len > sizeof call->words)
        return TL_EFULL;
    char *at = call->words + call->words_used;
    memcpy(at, word, len);
    call->words_used += len;
    call->argv[call->argc++] = at;
    call->argv[call->argc] = NULL;
    return 0;
}

static void captured(void *data, int exit_status, const tl_buf_t *out, const tl_buf_t *err)
{
    struct call *call = data;
    call->exit_status = exit_status;
    call->out = malloc(tl_buf_len(out) + 1);
    call->err = malloc(tl_buf_len(err) + 1);
    if (call->out == NULL || call->err == NULL) {
        call->status = TL_ENOMEM;
    } else {
        memcpy(call->out, tl_buf_data(out), tl_buf_len(out));
        memcpy(call->err, tl_buf_data(err), tl_buf_len(err));
        call->out[tl_buf_len(out)] = call->err[tl_buf_len(err)] = '\0';
        call->out_len = tl_buf_len(out);
        call->err_len = tl_buf_len(err);
    }
    call_finish(call);
}

/* On the worker: the sign-in on the record before the session exists (fail closed). */
static int run_signin(tl_job_t *job, tl_job_ctx_t *ctx)
{
    struct call *call = (struct call *)job;
    char actor[96];
    snprintf(actor, sizeof actor, "tech:%s", call->technician.name);
    json_t *details =
        json_pack("{s:s, s:s}", "role", call->technician.role, "address", call->technician.address);
    int rc = details != NULL ? tl_worker_audit(ctx, actor, "web.signin", "", details) : TL_ENOMEM;
    json_decref(details);
    return rc;
}

static void signin_done(tl_job_t *job, int status)
{
    struct call *call = (struct call *)job;
    call->status = status;
    call_finish(call);
}

static void start_call(struct tl_web *web, struct call *call)
{
    if (call->kind == CALL_SIGNIN) {
        call->job.run = run_signin;
        call->job.done = signin_done;
        tl_worker_submit(web->commands->worker, &call->job);
        return;
    }
    tl_exec_t *exec = tl_exec_capture_new(&call->technician, TL_WEB_MAX_OUTPUT, captured, call);
    if (exec == NULL) {
        call->status = TL_ENOMEM;
        call_finish(call);
        return;
    }
    tl_commands_dispatch(web->commands, exec, call->argc, call->argv);
}

static void on_async(uv_async_t *handle)
{
    struct tl_web *web = handle->data;
    pthread_mutex_lock(&web->mutex);
    struct call *calls = web->queue;
    web->queue = NULL;
    pthread_mutex_unlock(&web->mutex);
    /* In the order they came. */
    struct call *ordered = NULL;
    while (calls != NULL) {
        struct call *next = calls->next;
        calls->next = ordered;
        ordered = calls;
        calls = next;
    }
    while (ordered != NULL) {
        struct call *next = ordered->next;
        start_call(web, ordered);
        ordered = next;
    }
}

/* On a server thread: hands call to the loop and waits for it; 0 when it was answered. The
 * thread's reference is let go here. */
static int call_run(struct tl_web *web, struct call *call)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += TL_WEB_CALL_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&web->mutex);
    if (web->stopping) {
        call->refs = 1; /* the loop never sees it: the caller's reference is the last */
        pthread_mutex_unlock(&web->mutex);
        return TL_ECLOSED;
    }
    call->next = web->queue;
    web->queue = call;
    pthread_mutex_unlock(&web->mutex);
    uv_async_send(&web->async);
    pthread_mutex_lock(&web->mutex);
    int rc = 0;
    while (!call->done && !web->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&web->cond, &web->mutex, &deadline);
    rc = call->done ? 0 : web->stopping ? TL_ECLOSED : TL_ETIMEOUT;
    pthread_mutex_unlock(&web->mutex);
    return rc;
}

/* ---- responses ----------------------------------------------------------------------------- */

static const char CSP[] =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'";

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status, const char *type,
                               const void *body, size_t len, int cache, const char *extra_name,
                               const char *extra_value)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(response, "Content-Security-Policy", CSP);
    MHD_add_response_header(response, "X-Frame-Options", "DENY");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL,
                            cache ? "private, max-age=3600" : "no-store");
    if (extra_name != NULL)
        MHD_add_response_header(response, extra_name, extra_value);
    enum MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result respond_html(struct MHD_Connection *connection, unsigned status,
                                    tl_buf_t *page)
{
    return respond(connection, status, "text/html; charset=utf-8", tl_buf_data(page),
                   tl_buf_len(page), 0, NULL, NULL);
}

/* A page saying what went wrong; who may be NULL (not signed in). */
static enum MHD_Result respond_message(struct MHD_Connection *connection, unsigned status,
                                       const tl_technician_t *who, const char *title,
                                       const char *text)
{
    tl_buf_t *page = tl_buf_new(TL_WEB_PAGE_MAX);
    enum MHD_Result result = MHD_NO;
    if (page != NULL && tl_web_page_message(page, who, title, text) == 0)
        result = respond_html(connection, status, page);
    else
        result = respond(connection, 500, "text/plain; charset=utf-8", "error\n", 6, 0, NULL, NULL);
    tl_buf_free(page);
    return result;
}

/* A command that did not succeed, as the technician would have read it on stderr. */
static enum MHD_Result respond_refused(struct MHD_Connection *connection,
                                       const tl_technician_t *who, const struct call *call)
{
    unsigned status = call->exit_status == TL_EXIT_DENIED ? 403
                      : call->exit_status == 2            ? 400
                      : strstr(call->err, "no ticket") != NULL || strstr(call->err, "not found")
                          ? 404
                          : 500;
    return respond_message(connection, status, who,
                           status == 403   ? "Not permitted"
                           : status == 404 ? "Not found"
                                           : "Refused",
                           call->err_len > 0 ? call->err : "the command failed");
}

/* ---- routes --------------------------------------------------------------------------------- */

/* A query value usable as one word of a command: present, bounded, not taken for an option. */
static const char *query_word(struct MHD_Connection *connection, const char *name, int *bad)
{
    const char *value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, name);
    if (value == NULL || value[0] == '\0')
        return NULL;
    if (value[0] == '-' || strlen(value) > 256)
        *bad = 1;
    return value;
}

typedef int (*render_fn)(tl_buf_t *out, const tl_technician_t *who, json_t *answer,
                         const void *arg);

/* Runs the command in call as who, and renders its --json answer with render. */
static enum MHD_Result command_page(struct tl_web *web, struct MHD_Connection *connection,
                                    const tl_technician_t *who, struct call *call, render_fn render,
                                    const void *arg)
{
    enum MHD_Result result;
    int rc = call_run(web, call);
    if (rc != 0) {
        call_release(web, call);
        return respond_message(connection, rc == TL_ETIMEOUT ? 504 : 503, who, "Unavailable",
                               tl_strerror(rc));
    }
    if (call->status != 0 || call->exit_status != 0) {
        result = respond_refused(connection, who, call);
        call_release(web, call);
        return result;
    }
    json_error_t error;
    json_t *answer = json_loadb(call->out, call->out_len, 0, &error);
    call_release(web, call);
    tl_buf_t *page = tl_buf_new(TL_WEB_PAGE_MAX);
    rc = answer == NULL || page == NULL ? TL_EINVAL : render(page, who, answer, arg);
    result = rc == 0 ? respond_html(connection, 200, page)
                     : respond_message(connection, 500, who, "Error", tl_strerror(rc));
    tl_buf_free(page);
    json_decref(answer);
    return result;
}

static struct call *command_call(struct tl_web *web, const tl_technician_t *who,
                                 const char *const *words)
{
    struct call *call = call_new(web, CALL_COMMAND, who);
    if (call == NULL)
        return NULL;
    for (size_t i = 0; words[i] != NULL; i++)
        if (call_word(call, words[i]) != 0) {
            free(call);
            return NULL;
        }
    return call;
}

/* Adds "--NAME VALUE" when the query has NAME. */
static int add_filter(struct call *call, struct MHD_Connection *connection, const char *name,
                      int *bad)
{
    const char *value = query_word(connection, name, bad);
    char option[32];
    snprintf(option, sizeof option, "--%s", name);
    if (value == NULL || *bad)
        return 0;
    return call_word(call, option) != 0 || call_word(call, value) != 0 ? TL_EFULL : 0;
}

static int render_tickets(tl_buf_t *out, const tl_technician_t *who, json_t *answer,
                          const void *arg)
{
    return tl_web_page_tickets(out, who, answer, arg);
}

static int render_ticket(tl_buf_t *out, const tl_technician_t *who, json_t *answer, const void *arg)
{
    (void)arg;
    return tl_web_page_ticket(out, who, answer);
}

static int render_report(tl_buf_t *out, const tl_technician_t *who, json_t *answer, const void *arg)
{
    (void)arg;
    return tl_web_page_report(out, who, answer);
}

static int render_audit(tl_buf_t *out, const tl_technician_t *who, json_t *answer, const void *arg)
{
    return tl_web_page_audit(out, who, answer, (json_t *)arg);
}

static enum MHD_Result page_tickets(struct tl_web *web, struct MHD_Connection *connection,
                                    const tl_technician_t *who)
{
    int bad = 0;
    const char *tier = query_word(connection, "tier", &bad);
    struct call *call = command_call(web, who, (const char *[]){"tickets", "--json", NULL});
    if (call == NULL)
        return respond_message(connection, 500, who, "Error", tl_strerror(TL_ENOMEM));
    if ((tier != NULL && !bad && (call_word(call, "--tier") || call_word(call, tier))) || bad) {
        free(call);
        return respond_message(connection, 400, who, "Bad request", "a bad tier");
    }
    return command_page(web, connection, who, call, render_tickets, tier);
}

static enum MHD_Result page_ticket(struct tl_web *web, struct MHD_Connection *connection,
                                   const tl_technician_t *who, const char *ticket)
{
    struct call *call =
        command_call(web, who, (const char *[]){"ticket", "show", ticket, "--json", NULL});
    if (call == NULL)
        return respond_message(connection, 500, who, "Error", tl_strerror(TL_ENOMEM));
    return command_page(web, connection, who, call, render_ticket, NULL);
}

/* The evidence item's bytes, checked against the SHA-256 they are named by before they go. */
static enum MHD_Result download(struct tl_web *web, struct MHD_Connection *connection,
                                const tl_technician_t *who, const char *ticket, const char *hash)
{
    if (tl_sha256_hex_valid(hash) != 1)
        return respond_message(connection, 400, who, "Bad request", "not a SHA-256");
    struct call *call =
        command_call(web, who, (const char *[]){"evidence", "get", ticket, hash, NULL});
    if (call == NULL)
        return respond_message(connection, 500, who, "Error", tl_strerror(TL_ENOMEM));
    int rc = call_run(web, call);
    enum MHD_Result result;
    if (rc != 0) {
        call_release(web, call);
        return respond_message(connection, 503, who, "Unavailable", tl_strerror(rc));
    }
    if (call->status != 0 || call->exit_status != 0) {
        result = respond_refused(connection, who, call);
        call_release(web, call);
        return result;
    }
    char actual[TL_SHA256_HEX_LEN];
    if (tl_sha256_hex(call->out, call->out_len, actual) != 0 || strcmp(actual, hash) != 0) {
        call_release(web, call);
        return respond_message(connection, 500, who, "Damaged",
                               "the item's content does not match its SHA-256");
    }
    char disposition[128];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%.16s-%.12s.bin\"", ticket,
             hash);
    struct MHD_Response *response =
        MHD_create_response_from_buffer(call->out_len, call->out, MHD_RESPMEM_MUST_COPY);
    call_release(web, call);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(response, "Content-Disposition", disposition);
    MHD_add_response_header(response, "X-Content-SHA256", hash);
    MHD_add_response_header(response, "Content-Security-Policy", CSP);
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    result = MHD_queue_response(connection, 200, response);
    MHD_destroy_response(response);
    return result;
}

/* The recording as asciicast v2 (replay --cast), for the player. */
static enum MHD_Result cast(struct tl_web *web, struct MHD_Connection *connection,
                            const tl_technician_t *who, const char *session)
{
    struct call *call = command_call(web, who, (const char *[]){"replay", session, "--cast", NULL});
    if (call == NULL)
        return respond_message(connection, 500, who, "Error", tl_strerror(TL_ENOMEM));
    int rc = call_run(web, call);
    enum MHD_Result result;
    if (rc != 0)
        result = respond_message(connection, 503, who, "Unavailable", tl_strerror(rc));
    else if (call->status != 0 || call->exit_status != 0)
        result = respond_refused(connection, who, call);
    else
        result = respond(connection, 200, "application/x-asciicast", call->out, call->out_len, 0,
                         NULL, NULL);
    call_release(web, call);
    return result;
}

static enum MHD_Result page_audit(struct tl_web *web, struct MHD_Connection *connection,
                                  const tl_technician_t *who)
{
    static const char *const filters[] = {"ticket", "session", "actor", "device", "action"};
    int bad = 0, rc = 0;
    /* The log's state first: audit verify, as the auditor would run it. */
    struct call *call = command_call(web, who, (const char *[]){"audit", "verify", "--json", NULL});
    if (call == NULL)
        return respond_message(connection, 500, who, "Error", tl_strerror(TL_ENOMEM));
    rc = call_run(web, call);
    json_t *verify = NULL;
    if (rc == 0 && call->status == 0 && (call->exit_status == 0 || call->exit_status == 1))
        verify = json_loadb(call->out, call->out_len, 0, NULL);
    if (rc == 0 && call->exit_status == TL_EXIT_DENIED) {
        enum MHD_Result result = respond_refused(connection, who, call);
        call_release(web, call);
        return result;
    }
    call_release(web, call);
    call = command_call(web, who,
                        (const char *[]){"audit", "search", "--json", "--limit", "200", NULL});
    for (size_t i = 0; call != NULL && rc == 0 && i < sizeof filters / sizeof filters[0]; i++)
        rc = add_filter(call, connection, filters[i], &bad);
    if (call == NULL || rc != 0 || bad) {
        free(call);
        json_decref(verify);
        return respond_message(connection, bad ? 400 : 500, who, "Bad request",
                               "a search term may not start with '-' or pass 256 bytes");
    }
    enum MHD_Result result = command_page(web, connection, who, call, render_audit, verify);
    json_decref(verify);
    return result;
}

static enum MHD_Result page_report(struct tl_web *web, struct MHD_Connection *connection,
                                   const tl_technician_t *who)
{
    int bad = 0;
    struct call *call = command_call(web, who, (const char *[]){"report", "--json", NULL});
    if (call == NULL)
        return respond_message(connection, 500, who, "Error", tl_strerror(TL_ENOMEM));
    if (add_filter(call, connection, "since", &bad) != 0 ||
        add_filter(call, connection, "until", &bad) != 0 || bad) {
        free(call);
        return respond_message(connection, 400, who, "Bad request", "a bad period");
    }
    return command_page(web, connection, who, call, render_report, NULL);
}

static enum MHD_Result signin(struct tl_web *web, struct MHD_Connection *connection,
                              const char *address)
{
    const char *token = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "token");
    tl_technician_t who;
    int rc = tl_web_auth_link_take(web->auth, token, tl_wall_ms(), &who);
    if (rc != 0)
        return respond_message(connection, 403, NULL, "Link refused",
                               rc == TL_EEXPIRED
                                   ? "This link has expired. Run `web` over SSH for a new one."
                                   : "This link is not valid or was already used. Run `web` "
                                     "over SSH for a new one.");
    snprintf(who.address, sizeof who.address, "%s", address);
    struct call *call = call_new(web, CALL_SIGNIN, &who);
    if (call == NULL)
        return respond_message(connection, 500, NULL, "Error", tl_strerror(TL_ENOMEM));
    rc = call_run(web, call);
    if (rc == 0)
        rc = call->status;
    call_release(web, call);
    char session[TL_WEB_TOKEN_TEXT];
    if (rc == 0)
        rc = tl_web_auth_session_open(web->auth, &who, tl_wall_ms(), session);
    if (rc != 0)
        return respond_message(connection, 503, NULL, "Not signed in",
                               rc == TL_EAUDIT ? tl_strerror(rc)
                                               : "the sign-in could not be recorded");
    char cookie[256];
    snprintf(cookie, sizeof cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%u%s",
             session, TL_WEB_DEFAULT_SESSION_MS / 1000, web->https ? "; Secure" : "");
    OPENSSL_cleanse(session, sizeof session);
    struct MHD_Response *response = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, "/");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    OPENSSL_cleanse(cookie, sizeof cookie);
    enum MHD_Result result = MHD_queue_response(connection, 303, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result signout(struct tl_web *web, struct MHD_Connection *connection)
{
    const char *token = MHD_lookup_connection_value(connection, MHD_COOKIE_KIND, COOKIE);
    tl_web_auth_session_end(web->auth, token);
    return respond_message(connection, 200, NULL, "Signed out",
                           "Run `web` over SSH to sign in again.");
}

static enum MHD_Result asset(struct tl_web *web, struct MHD_Connection *connection, size_t i)
{
    if (web->assets[i].bytes == NULL)
        return respond_message(connection, 404, NULL, "Not found",
                               "this file was not installed with the relay");
    return respond(connection, 200, asset_files[i].type, web->assets[i].bytes, web->assets[i].len,
                   1, NULL, NULL);
}

/* "/PREFIX/REST" -> REST (one path segment, bounded) or NULL. */
static const char *segment(const char *url, const char *prefix, char *out, size_t size)
{
    size_t n = strlen(prefix);
    if (strncmp(url, prefix, n) != 0)
        return NULL;
    const char *rest = url + n;
    size_t len = strcspn(rest, "/");
    /* One word of a command: never empty, never taken for an option. */
    if (len == 0 || len >= size || rest[0] == '-')
        return NULL;
    memcpy(out, rest, len);
    out[len] = '\0';
    return rest + len;
}

static enum MHD_Result route(struct tl_web *web, struct MHD_Connection *connection, const char *url,
                             const tl_technician_t *who)
{
    char ticket[32], hash[80], session[80];
    const char *rest;
    if (strcmp(url, "/") == 0)
        return page_tickets(web, connection, who);
    if (strcmp(url, "/audit") == 0)
        return page_audit(web, connection, who);
    if (strcmp(url, "/report") == 0)
        return page_report(web, connection, who);
    if ((rest = segment(url, "/ticket/", ticket, sizeof ticket)) != NULL) {
        int64_t id;
        if (tl_id_parse(ticket, 'T', &id) != 0)
            return respond_message(connection, 404, who, "Not found", "not a ticket id");
        if (*rest == '\0')
            return page_ticket(web, connection, who, ticket);
        if (segment(rest, "/evidence/", hash, sizeof hash) != NULL &&
            strchr(rest + strlen("/evidence/"), '/') == NULL)
            return download(web, connection, who, ticket, hash);
    }
    if ((rest = segment(url, "/replay/", session, sizeof session)) != NULL && *rest == '\0') {
        tl_buf_t *page = tl_buf_new(TL_WEB_PAGE_MAX);
        enum MHD_Result result = MHD_NO;
        if (page != NULL && tl_web_page_replay(page, who, session) == 0)
            result = respond_html(connection, 200, page);
        tl_buf_free(page);
        return result;
    }
    if ((rest = segment(url, "/cast/", session, sizeof session)) != NULL && *rest == '\0')
        return cast(web, connection, who, session);
    return respond_message(connection, 404, who, "Not found", "no such page");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct tl_web *web = cls;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = web; /* the headers are in; a body, if any, is refused below */
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return respond(connection, 405, "text/plain; charset=utf-8", "read-only\n", 10, 0,
                           MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return MHD_YES;
    }
    if (*upload_data_size != 0)
        return respond(connection, 413, "text/plain; charset=utf-8", "no body\n", 8, 0, NULL, NULL);
    for (size_t i = 0; i < ASSET_COUNT; i++)
        if (strcmp(url, asset_files[i].url) == 0)
            return asset(web, connection, i);
    char address[TL_ADDR_TEXT_MAX] = "-";
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info != NULL && info->client_addr != NULL)
        tl_addr_format(info->client_addr, 0, address);
    if (strcmp(url, "/signin") == 0)
        return signin(web, connection, address);
    if (strcmp(url, "/signout") == 0)
        return signout(web, connection);
    /* Everything else is for a signed-in technician only. */
    const char *token = MHD_lookup_connection_value(connection, MHD_COOKIE_KIND, COOKIE);
    tl_technician_t who;
    if (token == NULL || tl_web_auth_session_find(web->auth, token, tl_wall_ms(), &who) != 0)
        return respond_message(connection, 401, NULL, "Not signed in",
                               "Sign in with the link the `web` command prints over SSH.");
    return route(web, connection, url, &who);
}

/* ---- start and stop ------------------------------------------------------------------------- */

int tl_web_check(const tl_web_config_t *config, char *problem, size_t size)
{
    struct sockaddr_storage address;
    if (config->listen == NULL || tl_addr_parse(config->listen, &address) != 0) {
        snprintf(problem, size, "bad web address '%s' (want ADDR:PORT)",
                 config->listen ? config->listen : "");
        return TL_EINVAL;
    }
    if ((config->cert_path == NULL) != (config->key_path == NULL)) {
        snprintf(problem, size, "--web-cert and --web-key go together");
        return TL_EINVAL;
    }
    if (config->cert_path == NULL && !config->behind_proxy &&
        !tl_metrics_serve_loopback(config->listen)) {
        snprintf(problem, size,
                 "refusing plain HTTP on %s: not a loopback address (give --web-cert and "
                 "--web-key, or --web-behind-proxy for a reverse proxy that adds TLS)",
                 config->listen);
        return TL_EINVAL;
    }
    return 0;
}

static void load_assets(struct tl_web *web, const char *dir)
{
    for (size_t i = 0; dir != NULL && i < ASSET_COUNT; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, asset_files[i].path) >= (int)sizeof path)
            continue;
        int rc = tl_fs_read_file(path, ASSET_MAX, 0, NULL, NULL, &web->assets[i].bytes,
                                 &web->assets[i].len);
        if (rc != 0)
            tl_log_warn("web file missing path=%s error=\"%s\"", path, tl_strerror(rc));
    }
}

static void release_web(struct tl_web *web)
{
    tl_web_auth_free(web->auth);
    for (size_t i = 0; i < ASSET_COUNT; i++)
        free(web->assets[i].bytes);
    if (web->key != NULL)
        OPENSSL_cleanse(web->key, strlen(web->key));
    free(web->key);
    free(web->cert);
    pthread_cond_destroy(&web->cond);
    pthread_mutex_destroy(&web->mutex);
    free(web);
}

/* A server that failed to start goes once its handle is closed; a running one in
 * tl_web_free(). */
static void async_closed(uv_handle_t *handle)
{
    struct tl_web *web = handle->data;
    if (web->failed)
        release_web(web);
}

tl_web_t *tl_web_start(uv_loop_t *loop, tl_commands_ctx_t *commands, const tl_web_config_t *config,
                       int *err, char *problem, size_t size)
{
    struct sockaddr_storage address;
    size_t pem_len;
    struct tl_web *web = calloc(1, sizeof *web);
    int rc = TL_ENOMEM;
    snprintf(problem, size, "out of memory");
    if (web == NULL)
        goto fail;
    pthread_mutex_init(&web->mutex, NULL);
    pthread_cond_init(&web->cond, NULL);
    web->loop = loop;
    web->commands = commands;
    if ((rc = tl_web_check(config, problem, size)) != 0)
        goto fail;
    tl_addr_parse(config->listen, &address);
    if ((web->auth = tl_web_auth_new(config->link_ms, config->session_ms)) == NULL)
        goto fail;
    web->https = config->cert_path != NULL;
    if (web->https &&
        ((rc = tl_fs_read_file(config->cert_path, 1u << 20, 0, NULL, NULL, &web->cert, &pem_len)) !=
             0 ||
         (rc = tl_fs_read_file(config->key_path, 1u << 20, 0, NULL, NULL, &web->key, &pem_len)) !=
             0)) {
        snprintf(problem, size, "cannot read the web certificate or key: %s", tl_strerror(rc));
        goto fail;
    }
    load_assets(web, config->assets_dir);
    if ((rc = uv_async_init(loop, &web->async, on_async)) != 0)
        goto fail;
    web->async.data = web;
    web->async_open = 1;
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (web->https)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_options[] = {
        {web->https ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, web->cert},
        {web->https ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, web->key},
        {MHD_OPTION_END, 0, NULL},
    };
    web->daemon =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, web, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&address, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)TL_WEB_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                         (unsigned)TL_WEB_MAX_PER_ADDRESS, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)TL_WEB_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)TL_WEB_MAX_REQUEST, MHD_OPTION_ARRAY, tls_options, MHD_OPTION_END);
    if (web->daemon == NULL) {
        rc = TL_EIO;
        snprintf(problem, size, "cannot serve the web view on %s", config->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *port = MHD_get_daemon_info(web->daemon, MHD_DAEMON_INFO_BIND_PORT);
    char host[TL_ADDR_HOST_MAX + 1];
    uint16_t unused;
    tl_addr_split(config->listen, host, &unused);
    if (config->url != NULL)
        snprintf(web->url, sizeof web->url, "%s", config->url);
    else
        snprintf(web->url, sizeof web->url, "%s://%s%s%s:%u", web->https ? "https" : "http",
                 address.ss_family == AF_INET6 ? "[" : "", host,
                 address.ss_family == AF_INET6 ? "]" : "", port != NULL ? port->port : 0);
    size_t len = strlen(web->url);
    while (len > 0 && web->url[len - 1] == '/')
        web->url[--len] = '\0';
    commands->web = web->auth;
    commands->web_url = web->url;
    return web;
fail:
    *err = rc;
    if (web != NULL) {
        web->failed = 1;
        web->commands = NULL;
        tl_web_stop(web);
        if (!web->async_open)
            release_web(web);
    }
    return NULL;
}

struct recheck {
    int (*check)(void *data, const tl_technician_t *technician);
    const char *(*reason)(int answer);
    void *data;
};

static int recheck_one(void *data, const tl_technician_t *technician)
{
    struct recheck *r = data;
    return r->check(r->data, technician);
}

static void recheck_ended(void *data, const tl_technician_t *technician, int session, int answer)
{
    struct recheck *r = data;
    tl_log_info("web %s ended user=%s reason=\"%s\"", session ? "session" : "link",
                technician->name, r->reason(answer));
}

void tl_web_recheck(tl_web_t *web, int (*check)(void *data, const tl_technician_t *technician),
                    const char *(*reason)(int answer), void *data)
{
    if (web == NULL || web->auth == NULL)
        return;
    struct recheck r = {.check = check, .reason = reason, .data = data};
    tl_web_auth_recheck(web->auth, recheck_one, recheck_ended, &r);
}

void tl_web_stop(tl_web_t *web)
{
    if (web == NULL)
        return;
    pthread_mutex_lock(&web->mutex);
    int already = web->stopping;
    web->stopping = 1;
    pthread_cond_broadcast(&web->cond);
    struct call *queued = web->queue;
    web->queue = NULL;
    pthread_mutex_unlock(&web->mutex);
    if (already)
        return;
    if (web->commands != NULL) {
        web->commands->web = NULL; /* `web` says the view is off */
        web->commands->web_url = NULL;
    }
    if (web->daemon != NULL) {
        MHD_stop_daemon(web->daemon);
        web->daemon = NULL;
    }
    /* Calls the loop never started: their threads have gone. */
    while (queued != NULL) {
        struct call *next = queued->next;
        call_release(web, queued);
        queued = next;
    }
    /* Calls that came in while the daemon stopped. */
    pthread_mutex_lock(&web->mutex);
    queued = web->queue;
    web->queue = NULL;
    pthread_mutex_unlock(&web->mutex);
    while (queued != NULL) {
        struct call *next = queued->next;
        call_release(web, queued);
        queued = next;
    }
    if (web->async_open)
        uv_close((uv_handle_t *)&web->async, async_closed);
}

void tl_web_free(tl_web_t *web)
{
    if (web == NULL)
        return;
    tl_web_stop(web);
    release_web(web);
}
