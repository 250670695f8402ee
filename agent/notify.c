/* Desktop notifications through a notifier program (agent/notify.h, docs/desk.md). */
#include "agent/notify.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

#define APP_NAME "Tierline"
#define MAX_HINT 128
/* A notification's own body: a notice's body and hint, or the merged list of several. */
#define COMPOSED_MAX                                                                               \
    (TL_NOTIFY_MAX_BODY + TL_NOTIFY_MAX_PENDING * (TL_NOTIFY_MAX_SUMMARY + MAX_HINT))

static const char *const notifier_names[TL_NOTIFIERS] = {"notify-send", "gdbus"};

/* ---- the graphical session --------------------------------------------------------------- */

static int set(const char *value)
{
    return value != NULL && value[0] != '\0';
}

void tl_notify_session_detect(const tl_notify_env_t *env, tl_notify_session_t *out)
{
    memset(out, 0, sizeof *out);
    if (!set(env->display) && !set(env->wayland_display)) {
        snprintf(out->why, sizeof out->why,
                 "no graphical session: neither DISPLAY nor WAYLAND_DISPLAY is set");
        return;
    }
    if (set(env->dbus_address)) {
        out->graphical = 1;
        return;
    }
    if (set(env->runtime_dir) && env->runtime_bus &&
        (size_t)snprintf(out->bus, sizeof out->bus, "unix:path=%s/bus", env->runtime_dir) <
            sizeof out->bus) {
        out->graphical = 1;
        return;
    }
    out->bus[0] = '\0';
    snprintf(out->why, sizeof out->why,
             "no session bus: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus "
             "is not there");
}

void tl_notify_env_read(tl_notify_env_t *env)
{
    memset(env, 0, sizeof *env);
    env->display = getenv("DISPLAY");
    env->wayland_display = getenv("WAYLAND_DISPLAY");
    env->dbus_address = getenv("DBUS_SESSION_BUS_ADDRESS");
    env->runtime_dir = getenv("XDG_RUNTIME_DIR");
    char path[4200];
    struct stat st;
    if (set(env->runtime_dir) &&
        (size_t)snprintf(path, sizeof path, "%s/bus", env->runtime_dir) < sizeof path &&
        stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        env->runtime_bus = 1;
}

/* ---- texts and argv ----------------------------------------------------------------------- */

/* Appends piece (len bytes) to out at *used if it fits whole; 0 if not. */
static int append(char *out, size_t size, size_t *used, const char *piece, size_t len)
{
    if (*used + len >= size)
        return 0;
    memcpy(out + *used, piece, len);
    *used += len;
    out[*used] = '\0';
    return 1;
}

/* Bytes of the UTF-8 character starting at text (1 for anything else). */
static size_t char_len(const char *text)
{
    unsigned char c = (unsigned char)text[0];
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    for (size_t i = 1; i < len; i++)
        if (((unsigned char)text[i] & 0xc0) != 0x80)
            return 1;
    return len;
}

void tl_notify_markup_escape(char *out, size_t size, const char *text)
{
    size_t used = 0;
    if (size == 0)
        return;
    out[0] = '\0';
    for (const char *at = text != NULL ? text : ""; *at != '\0';) {
        const char *entity = *at == '&'   ? "&amp;"
                             : *at == '<' ? "&lt;"
                             : *at == '>' ? "&gt;"
                                          : NULL;
        size_t len = entity != NULL ? strlen(entity) : char_len(at);
        if (!append(out, size, &used, entity != NULL ? entity : at, len))
            return;
        at += entity != NULL ? 1 : len;
    }
}

/* text as a GVariant string literal ('...'), for gdbus. */
static int gvariant_quote(char *out, size_t size, const char *text)
{
    size_t used = 0;
    out[0] = '\0';
    if (!append(out, size, &used, "'", 1))
        return TL_EFULL;
    for (const char *at = text; *at != '\0'; at++) {
        unsigned char c = (unsigned char)*at;
        char piece[8];
        if (c == '\\' || c == '\'')
            snprintf(piece, sizeof piece, "\\%c", c);
        else if (c == '\n')
            snprintf(piece, sizeof piece, "\\n");
        else if (c == '\t')
            snprintf(piece, sizeof piece, "\\t");
        else if (c < 0x20 || c == 0x7f)
            snprintf(piece, sizeof piece, "\\u%04x", c);
        else
            snprintf(piece, sizeof piece, "%c", c);
        if (!append(out, size, &used, piece, strlen(piece)))
            return TL_EFULL;
    }
    return append(out, size, &used, "'", 1) ? 0 : TL_EFULL;
}

/* Copies text into storage at *used; the copy, or NULL when it does not fit. */
static char *store(char *storage, size_t size, size_t *used, const char *text)
{
    size_t len = strlen(text);
    if (*used + len + 1 > size)
        return NULL;
    char *copy = storage + *used;
    memcpy(copy, text, len + 1);
    *used += len + 1;
    return copy;
}

int tl_notify_argv(enum tl_notifier notifier, const char *summary, const char *body, int urgent,
                   char **argv, char *storage, size_t size)
{
    size_t used = 0, argc = 0;
    char *markup = malloc(TL_NOTIFY_ARGV_STORAGE);
    char *quoted_summary = malloc(TL_NOTIFY_ARGV_STORAGE);
    char *quoted_body = malloc(TL_NOTIFY_ARGV_STORAGE);
    const char *words[TL_NOTIFY_MAX_ARGS];
    int rc = markup != NULL && quoted_summary != NULL && quoted_body != NULL ? 0 : TL_ENOMEM;
    if (rc != 0)
        goto out;
    /* Servers that read markup in bodies would take "<a href=...>" from a note as theirs. */
    tl_notify_markup_escape(markup, TL_NOTIFY_ARGV_STORAGE, body);
    if (notifier == TL_NOTIFIER_NOTIFY_SEND) {
        const char *fixed[] = {"notify-send", "--app-name=" APP_NAME,
                               urgent ? "--urgency=critical" : "--urgency=normal",
                               urgent ? "--icon=dialog-question" : "--icon=dialog-information",
                               /* whatever the texts start with, they are not options */
                               "--", summary, markup};
        memcpy(words, fixed, sizeof fixed);
        argc = sizeof fixed / sizeof fixed[0];
    } else if (notifier == TL_NOTIFIER_GDBUS) {
        /* Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout)
         * as GVariant text; no argument starts with '-', so gdbus takes none as an option. */
        if ((rc = gvariant_quote(quoted_summary, TL_NOTIFY_ARGV_STORAGE, summary)) != 0 ||
            (rc = gvariant_quote(quoted_body, TL_NOTIFY_ARGV_STORAGE, markup)) != 0)
            goto out;
        const char *fixed[] = {"gdbus",
                               "call",
                               "--session",
                               "--dest",
                               "org.freedesktop.Notifications",
                               "--object-path",
                               "/org/freedesktop/Notifications",
                               "--method",
                               "org.freedesktop.Notifications.Notify",
                               "'" APP_NAME "'",
                               "uint32 0",
                               urgent ? "'dialog-question'" : "'dialog-information'",
                               quoted_summary,
                               quoted_body,
                               "@as []",
                               urgent ? "{'urgency': <byte 2>}" : "{'urgency': <byte 1>}",
                               "int32 -1"};
        memcpy(words, fixed, sizeof fixed);
        argc = sizeof fixed / sizeof fixed[0];
    } else {
        rc = TL_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < argc && rc == 0; i++)
        if ((argv[i] = store(storage, size, &used, words[i])) == NULL)
            rc = TL_EFULL;
    if (rc == 0)
        argv[argc] = NULL;
out:
    free(markup);
    free(quoted_summary);
    free(quoted_body);
    return rc;
}

/* ---- the notifier ----------------------------------------------------------------------- */

struct notice {
    char summary[TL_NOTIFY_MAX_SUMMARY];
    char body[TL_NOTIFY_MAX_BODY];
    char hint[MAX_HINT];
    int urgent;
};

/* One notifier process; freed in its close callback. */
struct child {
    uv_process_t process;
    tl_notify_t *notify;
    enum tl_notifier notifier;
};

struct tl_notify {
    uv_loop_t *loop;
    tl_notify_config_t config;
    tl_notify_env_t env; /* config.env's copy, when given */
    int fixed_env;
    uv_timer_t due;  /* the next notification */
    uv_timer_t kill; /* a notifier that does not exit */
    struct child *running;
    struct notice pending[TL_NOTIFY_MAX_PENDING];
    size_t kept, count; /* notices kept, and all notices since the last notification */
    uint64_t last_start;
    int started;
    uint64_t shown, merged, skipped, failed;
    int session_state; /* -1 unknown, 0 none, 1 there: logged when it changes */
    char why[200];
    int notifier;     /* the last one that ran, -1 none yet */
    unsigned handles; /* open: the two timers and a running child */
    int freeing;
};

static void release(tl_notify_t *notify)
{
    if (notify->freeing && notify->handles == 0)
        free(notify);
}

static void handle_closed(uv_handle_t *handle)
{
    tl_notify_t *notify = handle->data;
    notify->handles--;
    release(notify);
}

static void child_closed(uv_handle_t *handle)
{
    struct child *child = handle->data;
    tl_notify_t *notify = child->notify;
    free(child);
    notify->handles--;
    release(notify);
}

static void schedule(tl_notify_t *notify, uint64_t at_least_ms);

static void on_notifier_exit(uv_process_t *process, int64_t exit_status, int term_signal)
{
    struct child *child = process->data;
    tl_notify_t *notify = child->notify;
    notify->running = NULL;
    if (!notify->freeing)
        uv_timer_stop(&notify->kill);
    if (exit_status != 0 || term_signal != 0) {
        notify->failed++;
        tl_log_warn("desktop notification failed notifier=%s exit=%lld signal=%d",
                    notifier_names[child->notifier], (long long)exit_status, term_signal);
    }
    uv_close((uv_handle_t *)process, child_closed);
    if (!notify->freeing && notify->count > 0)
        schedule(notify, 0);
}

static void on_kill(uv_timer_t *timer)
{
    tl_notify_t *notify = timer->data;
    if (notify->running != NULL) {
        tl_log_warn("desktop notifier did not exit in time, stopping it notifier=%s timeout_ms=%u",
                    notifier_names[notify->running->notifier], TL_NOTIFY_TIMEOUT_MS);
        uv_process_kill(&notify->running->process, SIGKILL);
    }
}

/* The notification the pending notices make: one as it is, several as a list. */
static void compose(tl_notify_t *notify, char *summary, size_t summary_size, char *body,
                    size_t body_size, int *urgent)
{
    size_t used = 0;
    *urgent = 0;
    for (size_t i = 0; i < notify->kept; i++)
        *urgent |= notify->pending[i].urgent;
    body[0] = '\0';
    if (notify->count == 1) {
        const struct notice *one = &notify->pending[0];
        tl_format(summary, summary_size, APP_NAME ": %s", one->summary);
        append(body, body_size, &used, one->body, strlen(one->body));
        if (one->body[0] != '\0' && one->hint[0] != '\0')
            append(body, body_size, &used, "\n", 1);
        append(body, body_size, &used, one->hint, strlen(one->hint));
        return;
    }
    tl_format(summary, summary_size, APP_NAME ": %zu notices%s", notify->count,
              *urgent ? ", a technician waits for your answer" : "");
    char line[TL_NOTIFY_MAX_SUMMARY + 8];
    for (size_t i = 0; i < notify->kept; i++) {
        snprintf(line, sizeof line, "%s- %s", used > 0 ? "\n" : "", notify->pending[i].summary);
        append(body, body_size, &used, line, strlen(line));
    }
    if (notify->count > notify->kept) {
        snprintf(line, sizeof line, "\n- and %zu more", notify->count - notify->kept);
        append(body, body_size, &used, line, strlen(line));
    }
    /* Each way to answer or see more, once. */
    for (size_t i = 0; i < notify->kept; i++) {
        int seen = notify->pending[i].hint[0] == '\0';
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(notify->pending[j].hint, notify->pending[i].hint) == 0;
        if (!seen) {
            snprintf(line, sizeof line, "\n%s", notify->pending[i].hint);
            append(body, body_size, &used, line, strlen(line));
        }
    }
}

/* DBUS_SESSION_BUS_ADDRESS added to the agent's environment, for the notifier; NULL: no memory. */
static char **environment_with(const char *bus, char *entry, size_t entry_size)
{
    size_t count = 0;
    while (environ[count] != NULL)
        count++;
    char **env = calloc(count + 2, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp(environ[i], "DBUS_SESSION_BUS_ADDRESS=", 25) != 0)
            env[at++] = environ[i];
    snprintf(entry, entry_size, "DBUS_SESSION_BUS_ADDRESS=%s", bus);
    env[at] = entry;
    return env;
}

/* Starts the first notifier program that exists; 0, or why none ran. */
static int spawn(tl_notify_t *notify, const tl_notify_session_t *session, const char *summary,
                 const char *body, int urgent)
{
    char *storage = malloc(TL_NOTIFY_ARGV_STORAGE);
    char *argv[TL_NOTIFY_MAX_ARGS], bus_entry[sizeof session->bus + 32];
    char **env = NULL;
    int rc = storage != NULL ? 0 : TL_ENOMEM;
    if (rc == 0 && session->bus[0] != '\0' &&
        (env = environment_with(session->bus, bus_entry, sizeof bus_entry)) == NULL)
        rc = TL_ENOMEM;
    for (int which = 0; rc == 0 && which < TL_NOTIFIERS; which++) {
        struct child *child = calloc(1, sizeof *child);
        if (child == NULL) {
            rc = TL_ENOMEM;
            break;
        }
        rc = tl_notify_argv((enum tl_notifier)which, summary, body, urgent, argv, storage,
                            TL_NOTIFY_ARGV_STORAGE);
        if (rc != 0) {
            free(child);
            break;
        }
        uv_stdio_container_t stdio[3] = {
            {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_IGNORE}};
        uv_process_options_t options = {
            .exit_cb = on_notifier_exit,
            .file = argv[0],
            .args = argv,
            .env = env,
            .stdio_count = 3,
            .stdio = stdio,
        };
        child->notify = notify;
        child->notifier = (enum tl_notifier)which;
        child->process.data = child;
        rc = uv_spawn(notify->loop, &child->process, &options);
        /* Started or not, the handle is closed through the loop. */
        notify->handles++;
        if (rc == 0) {
            notify->running = child;
            notify->notifier = which;
            break;
        }
        uv_close((uv_handle_t *)&child->process, child_closed);
        if (rc == UV_ENOENT && which + 1 < TL_NOTIFIERS)
            rc = 0; /* not installed: the next one */
    }
    free(env);
    free(storage);
    return rc;
}

/* The pending notices become one notification now, or are dropped with the reason. */
static void flush(tl_notify_t *notify)
{
    tl_notify_env_t env;
    tl_notify_session_t session;
    if (notify->fixed_env)
        env = notify->env;
    else
        tl_notify_env_read(&env);
    tl_notify_session_detect(&env, &session);
    if (session.graphical != notify->session_state ||
        (!session.graphical && strcmp(session.why, notify->why) != 0)) {
        if (session.graphical)
            tl_log_info("desktop notifications on: a graphical session is there");
        else
            tl_log_warn("desktop notifications off: %s; questions wait for tierline-agent attend "
                        "and the tickets for tierline-agent tickets",
                        session.why);
        notify->session_state = session.graphical;
        snprintf(notify->why, sizeof notify->why, "%s", session.why);
    }
    size_t count = notify->count;
    if (!session.graphical) {
        notify->skipped += count;
        tl_log_info("desktop notification not shown notices=%zu reason=no-graphical-session",
                    count);
    } else {
        char *summary = malloc(TL_NOTIFY_MAX_SUMMARY + 64), *body = malloc(COMPOSED_MAX);
        int urgent = 0, rc = summary != NULL && body != NULL ? 0 : TL_ENOMEM;
        if (rc == 0) {
            compose(notify, summary, TL_NOTIFY_MAX_SUMMARY + 64, body, COMPOSED_MAX, &urgent);
            rc = spawn(notify, &session, summary, body, urgent);
        }
        if (rc == 0) {
            notify->last_start = uv_now(notify->loop);
            notify->started = 1;
            notify->shown++;
            notify->merged += count - 1;
            uv_timer_start(&notify->kill, on_kill, TL_NOTIFY_TIMEOUT_MS, 0);
            tl_log_info("desktop notification shown notifier=%s notices=%zu",
                        notifier_names[notify->notifier], count);
        } else {
            notify->failed++;
            notify->skipped += count;
            tl_log_warn("desktop notification not shown notices=%zu reason=\"%s\"%s", count,
                        tl_strerror(rc),
                        rc == UV_ENOENT ? " (install notify-send, Debian's libnotify-bin, or gdbus)"
                                        : "");
        }
        free(summary);
        free(body);
    }
    notify->kept = notify->count = 0;
}

static void on_due(uv_timer_t *timer)
{
    tl_notify_t *notify = timer->data;
    if (notify->running == NULL && notify->count > 0)
        flush(notify);
}

/* The next notification: no sooner than at_least_ms from now, nor within the interval. */
static void schedule(tl_notify_t *notify, uint64_t at_least_ms)
{
    if (notify->running != NULL || uv_is_active((uv_handle_t *)&notify->due))
        return;
    uint64_t now = uv_now(notify->loop), delay = at_least_ms;
    if (notify->started && notify->last_start + notify->config.interval_ms > now + delay)
        delay = notify->last_start + notify->config.interval_ms - now;
    uv_timer_start(&notify->due, on_due, delay, 0);
}

tl_notify_t *tl_notify_new(uv_loop_t *loop, const tl_notify_config_t *config, int *err)
{
    tl_notify_t *notify = calloc(1, sizeof *notify);
    if (notify == NULL) {
        *err = TL_ENOMEM;
        return NULL;
    }
    if (config->interval_ms > TL_NOTIFY_MAX_INTERVAL_MS) {
        free(notify);
        *err = TL_EINVAL;
        return NULL;
    }
    notify->loop = loop;
    notify->config = *config;
    if (config->env != NULL) {
        notify->env = *config->env;
        notify->fixed_env = 1;
    }
    notify->session_state = -1;
    notify->notifier = -1;
    uv_timer_init(loop, &notify->due);
    uv_timer_init(loop, &notify->kill);
    notify->due.data = notify->kill.data = notify;
    notify->handles = 2;
    return notify;
}

void tl_notify_post(tl_notify_t *notify, const char *summary, const char *body, const char *hint,
                    int urgent)
{
    if (notify == NULL || notify->freeing)
        return;
    if (notify->kept < TL_NOTIFY_MAX_PENDING) {
        struct notice *notice = &notify->pending[notify->kept++];
        snprintf(notice->summary, sizeof notice->summary, "%s", summary ? summary : "");
        snprintf(notice->body, sizeof notice->body, "%s", body ? body : "");
        snprintf(notice->hint, sizeof notice->hint, "%s", hint ? hint : "");
        notice->urgent = urgent;
    } else if (urgent) {
        /* A question is never the one left out: it takes the last kept place. */
        struct notice *notice = &notify->pending[TL_NOTIFY_MAX_PENDING - 1];
        snprintf(notice->summary, sizeof notice->summary, "%s", summary ? summary : "");
        snprintf(notice->body, sizeof notice->body, "%s", body ? body : "");
        snprintf(notice->hint, sizeof notice->hint, "%s", hint ? hint : "");
        notice->urgent = 1;
    }
    notify->count++;
    schedule(notify, TL_NOTIFY_GATHER_MS);
}

json_t *tl_notify_state(tl_notify_t *notify)
{
    tl_notify_env_t env;
    tl_notify_session_t session;
    if (notify->fixed_env)
        env = notify->env;
    else
        tl_notify_env_read(&env);
    tl_notify_session_detect(&env, &session);
    json_t *state =
        json_pack("{s:b, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:b}", "session", session.graphical,
                  "why", session.graphical ? NULL : session.why, "notifier",
                  notify->notifier >= 0 ? notifier_names[notify->notifier] : NULL, "shown",
                  (json_int_t)notify->shown, "merged", (json_int_t)notify->merged, "skipped",
                  (json_int_t)notify->skipped, "failed", (json_int_t)notify->failed, "pending",
                  (json_int_t)notify->count, "running", notify->running != NULL);
    return state;
}

void tl_notify_free(tl_notify_t *notify)
{
    if (notify == NULL || notify->freeing)
        return;
    notify->freeing = 1;
    notify->kept = notify->count = 0;
    uv_close((uv_handle_t *)&notify->due, handle_closed);
    uv_close((uv_handle_t *)&notify->kill, handle_closed);
    if (notify->running != NULL)
        uv_process_kill(&notify->running->process, SIGTERM);
}
