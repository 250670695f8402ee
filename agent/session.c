/*
 * Session executors: exec, shell, observe, diag and runbook channels
 * (docs/protocol.md §7.7, docs/consent.md).
 *
 * One struct session per channel handed over by the tunnel. Its life:
 *
 *   started   the process runs; its output is read only while the channel
 *             has send window, at most one read chunk per stream is held
 *             back when the window runs short, and channel data is written
 *             to the process and reported consumed only once written.
 *   finished  the process was reaped and its output drained (or abandoned
 *             LINGER_MS after the exit, when something else keeps the pipe
 *             or terminal open): EOF, then CLOSE with the exit status or
 *             signal. The session waits for the relay's CLOSE.
 *   stopped   the relay closed the channel, the grant ended or the
 *             connection went: the process group gets SIGHUP and, if it is
 *             still there STOP_GRACE_MS later, SIGKILL.
 *   released  the channel is gone and the process reaped: every handle is
 *             closed and the memory freed in the last close callback.
 *
 * Processes are started by session_start.c (what each type runs) and
 * session_spawn.c (fork and execve, async-signal-safe in between). Each child
 * leads its own process group, which is what the stop signals go to.
 * Children are reaped on SIGCHLD with waitpid on each known pid, never
 * waitpid(-1), so other modules' children are left alone. The bytes between
 * process and channel are session_pump.c's; observers are session_observe.c's.
 */
#include "agent/session_int.h"

#include "proto/clock.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"
#include "proto/vocab.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Before SIGKILL follows SIGHUP (or a runbook's SIGTERM). */
#define STOP_GRACE_MS 2000
/* After the process exits, how long its output may stay open without news. */
#define LINGER_MS 2000

/* The channel type each kind is opened as (proto/vocab.h), in enum kind's order. */
static const enum tl_channel_type kind_channels[] = {
    TL_CHANNEL_EXEC, TL_CHANNEL_SHELL, TL_CHANNEL_OBSERVE, TL_CHANNEL_DIAG, TL_CHANNEL_RUNBOOK,
};

static const char *kind_name(enum kind kind)
{
    return tl_channel_type_name(kind_channels[kind]);
}

/* ---- small helpers --------------------------------------------------------------------------- */

static const struct {
    int number;
    const char *name;
} signal_names[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},   {SIGQUIT, "QUIT"}, {SIGILL, "ILL"},   {SIGTRAP, "TRAP"},
    {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},   {SIGFPE, "FPE"},   {SIGKILL, "KILL"}, {SIGUSR1, "USR1"},
    {SIGSEGV, "SEGV"}, {SIGUSR2, "USR2"}, {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"}, {SIGTERM, "TERM"},
    {SIGXCPU, "XCPU"}, {SIGXFSZ, "XFSZ"}, {SIGSYS, "SYS"},
};

static const char *signal_name(int number)
{
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
        if (signal_names[i].number == number)
            return signal_names[i].name;
    return "UNKNOWN";
}

/* Text from the network made safe for the user's terminal: no control bytes, bounded. */
void tl__session_append_shown(char *out, size_t out_size, size_t *len, const char *text, size_t max)
{
    size_t i = 0;
    for (; text[i] != '\0' && i < max && *len + 1 < out_size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[(*len)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (text[i] != '\0')
        for (int k = 0; k < 3 && *len + 1 < out_size; k++)
            out[(*len)++] = '.';
    out[*len] = '\0';
}

static char *shown_copy(const char *text, size_t max)
{
    char buf[MAX_WHAT + 8];
    size_t len = 0;
    buf[0] = '\0';
    tl__session_append_shown(buf, sizeof buf, &len, text, max);
    return strdup(buf);
}

static void activity(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void activity(struct session *s, const char *fmt, ...)
{
    tl_sessions_t *owner = s->owner;
    if (owner->events.on_activity == NULL)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    owner->events.on_activity(owner->data, s->grant, text);
}

/* "exit 0", "signal KILL", "timed out, signal TERM". */
static void outcome_text(const struct session *s, char *out, size_t size)
{
    if (WIFSIGNALED(s->wait_status))
        snprintf(out, size, "%ssignal %s", s->timed_out ? "timed out, " : "",
                 signal_name(WTERMSIG(s->wait_status)));
    else
        snprintf(out, size, "%sexit %d", s->timed_out ? "timed out, " : "",
                 WEXITSTATUS(s->wait_status));
}

/* The line the user sees when a session starts. */
static void tell_started(struct session *s)
{
    switch (s->kind) {
    case KIND_EXEC:
        activity(s, "%s is running: %s", s->technician, s->what);
        break;
    case KIND_SHELL:
        activity(s, "%s opened a shell", s->technician);
        break;
    case KIND_OBSERVE:
        activity(s, "%s is observing", s->technician);
        break;
    case KIND_DIAG:
        activity(s, "%s is fetching diagnostics", s->technician);
        break;
    case KIND_RUNBOOK:
        activity(s, "%s is running runbook %s", s->technician, s->what);
        break;
    }
}

/* The line the user sees when a session ends; why is the outcome or the reason it stopped. */
static void tell_ended(struct session *s, const char *why)
{
    if (s->ended_told)
        return;
    s->ended_told = true;
    switch (s->kind) {
    case KIND_EXEC:
        activity(s, "%s ran: %s (%s)", s->technician, s->what, why);
        break;
    case KIND_SHELL:
        activity(s, "%s's shell ended (%s)", s->technician, why);
        break;
    case KIND_OBSERVE:
        activity(s, "%s stopped observing (%s)", s->technician, why);
        break;
    case KIND_DIAG:
        activity(s, "%s fetched diagnostics (%s)", s->technician, why);
        break;
    case KIND_RUNBOOK:
        activity(s, "%s ran runbook %s (%s)", s->technician, s->what, why);
        break;
    }
}

static struct session *find_session(const tl_sessions_t *owner, uint32_t channel)
{
    for (struct session *s = owner->list; s != NULL; s = s->next)
        if (s->mux != NULL && s->channel == channel)
            return s;
    return NULL;
}

/* Bytes the channel takes now; 0 once it is closing or gone. */
size_t tl__session_window(const struct session *s)
{
    if (s->mux == NULL || s->close_sent)
        return 0;
    return tl_mux_send_window(s->mux, s->channel);
}

/* ---- processes ------------------------------------------------------------------------------- */

/* Signals the process group, or the process itself before it made its group. */
static void signal_process(struct session *s, int sig)
{
    if (!s->running || s->pid <= 0)
        return; /* once reaped, the pid may belong to someone else */
    if (kill(-s->pid, sig) != 0 && errno == ESRCH)
        kill(s->pid, sig);
}

static void on_kill_timer(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (s->running)
        tl_log_info("session process killed channel=%u pid=%d", s->channel, (int)s->pid);
    signal_process(s, SIGKILL);
}

/* SIGHUP (or TERM) now, SIGKILL after the grace period. */
void tl__session_stop_process(struct session *s, int sig)
{
    if (!s->running || s->stopping)
        return;
    s->stopping = true;
    signal_process(s, sig);
    uv_timer_start(&s->kill_timer, on_kill_timer, STOP_GRACE_MS, 0);
}

/* ---- releasing ------------------------------------------------------------------------------- */

static void on_owner_closed(uv_handle_t *handle);

static void session_destroy(struct session *s)
{
    tl_sessions_t *owner = s->owner;
    for (struct session **p = &owner->list; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    for (int i = 0; i < 2; i++)
        free(s->out[i].held);
    free(s->grant);
    free(s->ticket);
    free(s->technician);
    free(s->what);
    free(s);
    if (owner->freeing && owner->list == NULL)
        uv_close((uv_handle_t *)&owner->sigchld, on_owner_closed);
}

static void handle_closed(struct session *s)
{
    if (--s->handles == 0 && s->releasing)
        session_destroy(s);
}

/* Timers and the input pipe carry the session; output pipes carry their output. */
static void on_handle_closed(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void on_output_closed(uv_handle_t *handle)
{
    struct output *o = handle->data;
    handle_closed(o->session);
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_handle_closed);
}

void tl__output_close(struct output *o)
{
    o->done = true;
    o->reading = false;
    if (o->open) {
        o->open = false;
        if (!uv_is_closing((uv_handle_t *)&o->pipe))
            uv_close((uv_handle_t *)&o->pipe, on_output_closed);
    }
}

void tl__output_drop_held(struct output *o)
{
    free(o->held);
    o->held = NULL;
    o->held_len = 0;
    o->held_off = 0;
}

void tl__input_close(struct session *s)
{
    if (s->input_open) {
        s->input_open = false;
        close_handle((uv_handle_t *)&s->input);
    }
}

/* Closes the process's pipes and drops output not yet sent. */
static void close_streams(struct session *s)
{
    for (int i = 0; i < 2; i++) {
        tl__output_close(&s->out[i]);
        tl__output_drop_held(&s->out[i]);
    }
    tl__input_close(s);
}

/* Frees the session once its channel is gone and its process reaped. */
static void maybe_release(struct session *s)
{
    if (s->releasing || s->mux != NULL || s->running)
        return;
    s->releasing = true;
    close_streams(s);
    close_handle((uv_handle_t *)&s->kill_timer);
    close_handle((uv_handle_t *)&s->deadline_timer);
    close_handle((uv_handle_t *)&s->linger_timer);
}

/* The channel is no longer ours to use: stop the process and drop its pipes. */
static void forget_channel(struct session *s, const char *why)
{
    tell_ended(s, why);
    s->mux = NULL;
    close_streams(s);
    tl__session_stop_process(s, SIGHUP);
    maybe_release(s);
}

/* ---- the end of a session -------------------------------------------------------------------- */

static void on_linger_timer(uv_timer_t *timer);

/* The process is gone and its output drained: EOF and CLOSE with the outcome. */
void tl__session_maybe_finish(struct session *s)
{
    if (s->mux == NULL || s->close_sent || s->kind == KIND_OBSERVE || s->running)
        return;
    if (!s->out[0].done || !s->out[1].done) {
        /* Something else (a background job) may hold the output open: give it a while. */
        if (!uv_is_active((uv_handle_t *)&s->linger_timer))
            uv_timer_start(&s->linger_timer, on_linger_timer, LINGER_MS, 0);
        return;
    }
    if (!tl__pump_flush_held(s))
        return; /* on writable */
    uv_timer_stop(&s->linger_timer);
    struct tl_msg_channel_close status = {0};
    if (WIFSIGNALED(s->wait_status)) {
        status.flags = TL_CLOSE_HAS_EXIT_SIGNAL;
        status.exit_signal = tl_str_from(signal_name(WTERMSIG(s->wait_status)));
    } else {
        status.flags = TL_CLOSE_HAS_EXIT_STATUS;
        status.exit_status = WEXITSTATUS(s->wait_status);
    }
    s->close_sent = true;
    tl__input_close(s);
    tl_mux_eof(s->mux, s->channel);
    int rc = tl_mux_close(s->mux, s->channel, &status);
    if (rc != 0)
        tl_log_warn("session close failed channel=%u reason=%s", s->channel, tl_strerror(rc));
    char outcome[64];
    outcome_text(s, outcome, sizeof outcome);
    tl_log_info("session ended channel=%u type=%s outcome=\"%s\"", s->channel, kind_name(s->kind),
                outcome);
    tell_ended(s, outcome);
}

static void on_linger_timer(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (tl__pump_holding(s) || (tl__session_window(s) == 0 && s->mux != NULL && !s->close_sent)) {
        /* The relay is still taking what was there: wait for it, not for the pipe. */
        uv_timer_start(&s->linger_timer, on_linger_timer, LINGER_MS, 0);
        return;
    }
    for (int i = 0; i < 2; i++)
        tl__output_close(&s->out[i]);
    tl__session_maybe_finish(s);
}

static void on_deadline(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (!s->running || s->stopping)
        return;
    s->timed_out = true;
    unsigned seconds = (unsigned)(s->timeout_ms / 1000);
    tl_format(s->notice, sizeof s->notice,
              "tierline-agent: %s %s timed out after %um%02us; stopping it\n",
              s->kind == KIND_RUNBOOK ? "runbook" : "session", s->what, seconds / 60, seconds % 60);
    s->notice_len = strlen(s->notice); /* cut short if it did not fit */
    tl_log_warn("session timed out channel=%u type=%s", s->channel, kind_name(s->kind));
    if (s->mux != NULL && !s->close_sent)
        tl__pump_flush_held(s);
    tl__session_stop_process(s, SIGTERM);
}

/* ---- the session table ----------------------------------------------------------------------- */

static struct session *session_new(tl_sessions_t *owner, enum kind kind, tl_mux_t *mux,
                                   uint32_t channel, const tl_session_grant_t *grant)
{
    struct session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->owner = owner;
    s->kind = kind;
    s->mux = mux;
    s->channel = channel;
    s->started_ms = tl_wall_ms();
    s->grant = strdup(grant->id);
    s->ticket = strdup(grant->ticket);
    s->technician = shown_copy(grant->technician, 64);
    if (s->grant == NULL || s->ticket == NULL || s->technician == NULL) {
        free(s->grant);
        free(s->ticket);
        free(s->technician);
        free(s);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        s->out[i].session = s;
        s->out[i].stream = (uint8_t)i;
        s->out[i].done = true; /* until a pipe is attached */
    }
    uv_timer_t *timers[] = {&s->kill_timer, &s->deadline_timer, &s->linger_timer};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(owner->loop, timers[i]);
        timers[i]->data = s;
        s->handles++;
    }
    s->next = owner->list;
    owner->list = s;
    return s;
}

static void on_sigchld(uv_signal_t *handle, int signum)
{
    tl_sessions_t *owner = handle->data;
    struct session *next;
    for (struct session *s = owner->list; s != NULL; s = next) {
        next = s->next;
        if (!s->running)
            continue;
        int status;
        pid_t got = waitpid(s->pid, &status, WNOHANG);
        if (got != s->pid)
            continue;
        s->running = false;
        s->wait_status = status;
        uv_timer_stop(&s->kill_timer);
        uv_timer_stop(&s->deadline_timer);
        if (tl__pump_input_stream(s) == (uv_stream_t *)&s->input)
            tl__input_close(s);
        if (s->terminal && s->out[0].done)
            tl__output_close(&s->out[0]); /* the terminal's end, kept open until now */
        tl__session_maybe_finish(s);
        maybe_release(s);
    }
}

static char *dup_or_null(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

static void owner_free(tl_sessions_t *owner)
{
    tl_file_channels_free(owner->files);
    tl_runbooks_free(owner->catalogue);
    for (size_t i = 0; i < owner->retired_count; i++)
        tl_runbooks_free(owner->retired[i]);
    free(owner->retired);
    free(owner->self_exe);
    free(owner->relay);
    free(owner->home);
    free(owner->shell);
    free(owner->user);
    free(owner->lang);
    free(owner);
}

void tl_sessions_replace_runbooks(tl_sessions_t *owner, tl_runbooks_t *catalogue)
{
    tl_runbooks_t **retired =
        realloc(owner->retired, (owner->retired_count + 1) * sizeof *owner->retired);
    if (retired == NULL) {
        tl_log_warn("runbooks not replaced reason=%s", tl_strerror(TL_ENOMEM));
        tl_runbooks_free(catalogue);
        return;
    }
    owner->retired = retired;
    if (owner->catalogue != NULL)
        owner->retired[owner->retired_count++] = owner->catalogue;
    owner->catalogue = catalogue;
}

/* The runbook catalogue: the one configured, or the default one, or none. */
static int load_catalogue(tl_sessions_t *owner, const tl_sessions_config_t *config)
{
    int rc = 0;
    const char *runbooks_dir = config != NULL ? config->runbooks_dir : NULL;
    char found_dir[PATH_MAX];
    if (runbooks_dir == NULL && tl_runbooks_default_dir(found_dir, sizeof found_dir) == 0)
        runbooks_dir = found_dir;
    if (runbooks_dir != NULL)
        owner->catalogue = tl_runbooks_load(runbooks_dir, &rc);
    else
        tl_log_warn("no runbook catalogue found; runbooks are unavailable");
    return rc;
}

/* This program, for diag channels: as configured, or /proc/self/exe (NULL if neither). */
static void find_self_exe(tl_sessions_t *owner, const tl_sessions_config_t *config)
{
    if (config != NULL && config->self_exe != NULL) {
        owner->self_exe = strdup(config->self_exe);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            owner->self_exe = strdup(exe);
        }
    }
}

tl_sessions_t *tl_sessions_new(uv_loop_t *loop, const tl_sessions_config_t *config,
                               const tl_sessions_events_t *events, void *data, int *err)
{
    int rc = 0;
    tl_sessions_t *owner = NULL;
    if (loop == NULL) {
        rc = TL_EINVAL;
        goto out;
    }
    owner = calloc(1, sizeof *owner);
    if (owner == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    owner->loop = loop;
    owner->data = data;
    if (events != NULL)
        owner->events = *events;
    rc = tl__session_load_user(owner, config != NULL ? config->shell : NULL);
    if (rc != 0)
        goto out;
    if ((rc = load_catalogue(owner, config)) != 0)
        goto out;
    find_self_exe(owner, config);
    owner->relay = dup_or_null(config != NULL ? config->relay : NULL);
    if ((config != NULL && config->relay != NULL && owner->relay == NULL)) {
        rc = TL_ENOMEM;
        goto out;
    }
    owner->close_range_works = tl__spawn_close_range_works();
    owner->files = tl_file_channels_new(loop, config != NULL ? &config->files : NULL);
    if (owner->files == NULL) {
        rc = TL_ENOMEM;
        goto out;
    }
    rc = uv_signal_init(loop, &owner->sigchld);
    if (rc != 0)
        goto out;
    owner->sigchld.data = owner;
    rc = uv_signal_start(&owner->sigchld, on_sigchld, SIGCHLD);
    if (rc != 0) {
        /* The handle's memory is the owner's: it goes in the close callback. */
        uv_close((uv_handle_t *)&owner->sigchld, on_owner_closed);
        owner = NULL;
        goto out;
    }
    uv_unref((uv_handle_t *)&owner->sigchld);
out:
    if (rc != 0 && owner != NULL) {
        owner_free(owner);
        owner = NULL;
    }
    if (err != NULL)
        *err = rc;
    return owner;
}

static void on_owner_closed(uv_handle_t *handle)
{
    owner_free(handle->data);
}

void tl_sessions_free(tl_sessions_t *owner)
{
    if (owner == NULL || owner->freeing)
        return;
    owner->freeing = true;
    tl_file_channels_free(owner->files);
    owner->files = NULL;
    /* Reaping still needs SIGCHLD: keep the loop running until every child is gone. */
    uv_ref((uv_handle_t *)&owner->sigchld);
    struct session *next;
    for (struct session *s = owner->list; s != NULL; s = next) {
        next = s->next;
        s->mux = NULL;
        signal_process(s, SIGKILL);
        s->stopping = true;
        close_streams(s);
        maybe_release(s);
    }
    /* Otherwise the last session_destroy closes it. */
    if (owner->list == NULL)
        uv_close((uv_handle_t *)&owner->sigchld, on_owner_closed);
}

/* The request is one a session can be made of; its kind in *kind. TL_EINVAL with message. */
static int check_request(tl_sessions_t *owner, tl_mux_t *mux, uint32_t channel, const char *type,
                         json_t *params, const tl_session_grant_t *grant, enum kind *kind,
                         char *message, size_t message_size)
{
    if (owner == NULL || owner->freeing || mux == NULL || type == NULL || grant == NULL ||
        grant->id == NULL || grant->ticket == NULL || grant->technician == NULL ||
        grant->role == NULL || (params != NULL && !json_is_object(params))) {
        tl_format(message, message_size, "bad session request");
        return TL_EINVAL;
    }
    enum tl_channel_type channel_type = tl_channel_type_lookup(type);
    size_t k = 0;
    while (k < sizeof kind_channels / sizeof kind_channels[0] && kind_channels[k] != channel_type)
        k++;
    if (k == sizeof kind_channels / sizeof kind_channels[0]) {
        char shown[80];
        size_t len = 0;
        shown[0] = '\0';
        tl__session_append_shown(shown, sizeof shown, &len, type, 32);
        tl_format(message, message_size, "unknown session type '%s'", shown);
        return TL_EINVAL;
    }
    *kind = (enum kind)k;
    if (find_session(owner, channel) != NULL) {
        tl_format(message, message_size, "channel %u already has a session", channel);
        return TL_EINVAL;
    }
    return 0;
}

/* Starts what the session's kind runs (session_start.c, session_observe.c). */
static int start_kind(struct session *s, json_t *params, const tl_session_grant_t *grant,
                      char *message, size_t message_size)
{
    int rc;
    switch (s->kind) {
    case KIND_SHELL:
        s->what = strdup("shell");
        rc = s->what == NULL ? TL_ENOMEM : tl__start_shell(s, params, message, message_size);
        break;
    case KIND_OBSERVE:
        rc = tl__observe_start(s);
        break;
    default:
        rc = tl__start_piped(s, params, grant, message, message_size);
        break;
    }
    return rc;
}

int tl_sessions_open(tl_sessions_t *owner, tl_mux_t *mux, uint32_t channel, const char *type,
                     json_t *params, const tl_session_grant_t *grant, char *message,
                     size_t message_size)
{
    enum kind kind;
    struct session *s = NULL;
    tl_format(message, message_size, "%s", "");
    if (owner != NULL && !owner->freeing && mux != NULL && grant != NULL && grant->id != NULL &&
        type != NULL && tl_channel_type_lookup(type) == TL_CHANNEL_FILE)
        return tl_file_channels_open(owner->files, mux, channel, params, grant->id, grant->push,
                                     message, message_size);
    int rc = check_request(owner, mux, channel, type, params, grant, &kind, message, message_size);
    if (rc != 0)
        goto out;
    s = session_new(owner, kind, mux, channel, grant);
    if (s == NULL) {
        rc = TL_ENOMEM;
        tl_format(message, message_size, "%s", tl_strerror(rc));
        goto out;
    }
    rc = start_kind(s, params, grant, message, message_size);
    s->ack_input = s->terminal && (tl_mux_features(mux) & TL_FEATURE_INPUT_ACK) != 0;
    if (rc == 0) {
        rc = tl_mux_confirm(mux, channel);
        if (rc != 0) {
            tl_format(message, message_size, "the channel could not be confirmed: %s",
                      tl_strerror(rc));
            tl__session_stop_process(s, SIGKILL);
        }
    }
    if (rc != 0)
        goto out;
    tl_log_info("session started channel=%u type=%s grant=%s pid=%d", channel, type, s->grant,
                (int)s->pid);
    tell_started(s);
    if (s->timeout_ms > 0)
        uv_timer_start(&s->deadline_timer, on_deadline, s->timeout_ms, 0);
    tl__pump_resume_reading(s);
out:
    if (rc != 0 && s != NULL) {
        if (rc == TL_ENOMEM && message != NULL && message_size > 0 && message[0] == '\0')
            tl_format(message, message_size, "%s", tl_strerror(rc));
        /* Refused: the caller answers; nothing of this session may touch the channel. */
        s->ended_told = true;
        s->mux = NULL;
        maybe_release(s);
    }
    return rc;
}

/* ---- channel events -------------------------------------------------------------------------- */

void tl_sessions_data(tl_sessions_t *owner, uint32_t channel, uint8_t stream, const uint8_t *data,
                      size_t len)
{
    if (tl_file_channels_has(owner->files, channel)) {
        tl_file_channels_data(owner->files, channel, data, len);
        return;
    }
    struct session *s = find_session(owner, channel);
    if (s == NULL || len == 0)
        return;
    tl__pump_input(s, stream, data, len);
}

void tl_sessions_eof(tl_sessions_t *owner, uint32_t channel)
{
    if (tl_file_channels_has(owner->files, channel)) {
        tl_file_channels_eof(owner->files, channel);
        return;
    }
    struct session *s = find_session(owner, channel);
    if (s == NULL || s->kind != KIND_EXEC || s->terminal)
        return; /* a terminal has no end of input; what runs on it ends by itself */
    s->input_eof = true;
    if (s->input_writes == 0)
        tl__input_close(s);
}

void tl_sessions_writable(tl_sessions_t *owner, uint32_t channel)
{
    if (tl_file_channels_has(owner->files, channel)) {
        tl_file_channels_writable(owner->files, channel);
        return;
    }
    struct session *s = find_session(owner, channel);
    if (s == NULL || s->close_sent)
        return;
    if (tl__pump_flush_held(s))
        tl__pump_resume_reading(s);
    tl__session_maybe_finish(s);
}

void tl_sessions_closed(tl_sessions_t *owner, uint32_t channel)
{
    if (tl_file_channels_has(owner->files, channel)) {
        tl_file_channels_closed(owner->files, channel);
        return;
    }
    struct session *s = find_session(owner, channel);
    if (s == NULL)
        return;
    if (!s->close_sent)
        tl_log_info("session closed by the relay channel=%u type=%s", channel, kind_name(s->kind));
    forget_channel(s, "closed by the technician");
}

void tl_sessions_resize(tl_sessions_t *owner, uint32_t channel, unsigned cols, unsigned rows)
{
    struct session *s = find_session(owner, channel);
    if (s == NULL || !s->terminal || !s->out[0].open || cols < 1 || cols > 1000 || rows < 1 ||
        rows > 1000)
        return;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->out[0].pipe, &fd) != 0)
        return;
    struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (ioctl(fd, TIOCSWINSZ, &size) != 0)
        tl_log_warn("terminal resize failed channel=%u reason=\"%s\"", channel, strerror(errno));
}

int tl_sessions_signal(tl_sessions_t *owner, uint32_t channel, int sig)
{
    const char *name = tl_session_signal_name(sig);
    if (name == NULL)
        return TL_EINVAL;
    struct session *s = find_session(owner, channel);
    if (s == NULL || s->close_sent || !s->running ||
        (s->kind != KIND_EXEC && s->kind != KIND_SHELL && s->kind != KIND_RUNBOOK))
        return TL_ENOTFOUND;
    tl_log_info("session signal channel=%u type=%s signal=%s pid=%d", channel, kind_name(s->kind),
                name, (int)s->pid);
    activity(s, "%s sent signal %s to: %s", s->technician, name, s->what);
    /* On a terminal, as its Ctrl-C would: the foreground job (a shell's command), which
     * tcgetpgrp on the master reports; it is always one of this session's groups. */
    uv_os_fd_t fd;
    pid_t group = -1;
    if (s->terminal && s->out[0].open && uv_fileno((uv_handle_t *)&s->out[0].pipe, &fd) == 0)
        group = tcgetpgrp(fd);
    if (group > 1 && kill(-group, sig) == 0)
        return 0;
    signal_process(s, sig);
    return 0;
}

size_t tl_sessions_end_grant(tl_sessions_t *owner, const char *grant)
{
    if (owner == NULL || grant == NULL)
        return 0;
    size_t ended = owner->files != NULL ? tl_file_channels_end_grant(owner->files, grant) : 0;
    for (struct session *s = owner->list; s != NULL; s = s->next) {
        if (s->mux == NULL || s->close_sent || strcmp(s->grant, grant) != 0)
            continue;
        tl__session_stop_process(s, SIGHUP);
        close_streams(s);
        s->notice_len = 0;
        s->close_sent = true;
        tl_mux_eof(s->mux, s->channel);
        struct tl_msg_channel_close status = {.flags = TL_CLOSE_HAS_EXIT_SIGNAL,
                                              .exit_signal = TL_STR("HUP")};
        int rc = tl_mux_close(s->mux, s->channel, &status);
        if (rc != 0)
            tl_log_warn("session close failed channel=%u reason=%s", s->channel, tl_strerror(rc));
        tell_ended(s, "the grant ended");
        ended++;
    }
    return ended;
}

void tl_sessions_disconnected(tl_sessions_t *owner)
{
    if (owner == NULL)
        return;
    if (owner->files != NULL)
        tl_file_channels_disconnected(owner->files);
    struct session *next;
    for (struct session *s = owner->list; s != NULL; s = next) {
        next = s->next;
        if (s->mux != NULL)
            forget_channel(s, "the connection to the relay was lost");
    }
}

json_t *tl_sessions_list(const tl_sessions_t *owner, const char *grant)
{
    json_t *list = json_array();
    if (list == NULL || owner == NULL)
        return list;
    for (const struct session *s = owner->list; s != NULL; s = s->next) {
        if (s->mux == NULL || (grant != NULL && strcmp(s->grant, grant) != 0))
            continue;
        json_t *item =
            json_pack("{s:I, s:s, s:I, s:s}", "channel", (json_int_t)s->channel, "type",
                      kind_name(s->kind), "started_ms", (json_int_t)s->started_ms, "what", s->what);
        if (item == NULL || json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

size_t tl_sessions_count(const tl_sessions_t *owner)
{
    size_t count = 0;
    for (const struct session *s = owner != NULL ? owner->list : NULL; s != NULL; s = s->next)
        count++;
    return count;
}

size_t tl_sessions_held_bytes(const tl_sessions_t *owner)
{
    size_t bytes = 0;
    for (const struct session *s = owner != NULL ? owner->list : NULL; s != NULL; s = s->next)
        bytes += s->out[0].held_len + s->out[1].held_len + s->notice_len;
    return bytes;
}
