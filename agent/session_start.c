/*
 * What each session type runs (docs/protocol.md §7.7, docs/consent.md
 * "Runbooks"): its parameters checked, then the command, its environment
 * and its pipes or pseudo-terminal made ready for session_spawn.c.
 *
 *   exec     argv as given, found on a fixed PATH; stdin, stdout, stderr on pipes,
 *            or, with "pty" (ssh -t), all three on a new pseudo-terminal
 *   shell    the user's login shell on a new pseudo-terminal
 *   diag     this program's `diag --json`, stopped after DIAG_TIMEOUT_MS
 *   runbook  a runbook of the catalogue, checked against the grant's role,
 *            with only its parameters in the environment, stopped after its
 *            timeout
 *
 * Everything runs as the agent's own user, in its home folder, with an
 * environment made here (common_env, user_env), not the agent's own.
 */
#include "agent/session_int.h"

#include "agent/diag.h"
#include "proto/err.h"
#include "proto/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* A diagnostics run that takes longer is stopped. */
#define DIAG_TIMEOUT_MS (5u * 60u * 1000u)

#define FIXED_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ARGV 64
#define MAX_ARG_BYTES 4096
#define MAX_TERM 64

/* "cmd arg 'two words'", for the activity display. */
static char *describe_argv(json_t *argv)
{
    char buf[MAX_WHAT + 8];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(argv) && len < MAX_WHAT; i++) {
        const char *arg = json_string_value(json_array_get(argv, i));
        bool quote = arg[0] == '\0' || strpbrk(arg, " \t\n'\"\\$`;&|<>*?()") != NULL;
        if (i > 0)
            tl__session_append_shown(buf, sizeof buf, &len, " ", 1);
        if (quote)
            tl__session_append_shown(buf, sizeof buf, &len, "'", 1);
        tl__session_append_shown(buf, MAX_WHAT, &len, arg, MAX_WHAT);
        if (quote)
            tl__session_append_shown(buf, sizeof buf, &len, "'", 1);
    }
    return strdup(buf);
}

/* The agent's own user: home, login shell and name, looked up once. */
int tl__session_load_user(tl_sessions_t *owner, const char *shell_override)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found);
    const char *home = found != NULL && found->pw_dir[0] == '/' ? found->pw_dir : getenv("HOME");
    if (home == NULL || home[0] != '/')
        home = "/";
    const char *shell =
        found != NULL && found->pw_shell[0] == '/' && access(found->pw_shell, X_OK) == 0
            ? found->pw_shell
            : "/bin/sh";
    if (shell_override != NULL)
        shell = shell_override;
    char uid_text[32];
    snprintf(uid_text, sizeof uid_text, "%u", (unsigned)geteuid());
    const char *lang = getenv("LANG");
    if (lang == NULL || lang[0] == '\0' || strlen(lang) > 64 || strpbrk(lang, "\n=") != NULL)
        lang = "C.UTF-8";
    owner->home = strdup(home);
    owner->shell = strdup(shell);
    owner->user = strdup(found != NULL ? found->pw_name : uid_text);
    owner->lang = strdup(lang);
    return owner->home && owner->shell && owner->user && owner->lang ? 0 : TL_ENOMEM;
}

/* ---- pipes and the environment --------------------------------------------------------------- */

/* Wraps fd (ours, non-blocking from here on) in pipe, one more of s's
 * handles; *open is set once the handle must be closed. Closes fd on failure. */
static int wrap_fd(struct session *s, uv_pipe_t *pipe, void *data, bool *open, int fd)
{
    int rc = uv_pipe_init(s->owner->loop, pipe, 0);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    pipe->data = data;
    s->handles++;
    *open = true;
    rc = uv_pipe_open(pipe, fd);
    if (rc != 0)
        close(fd);
    return rc;
}

/* fd as output stream i of s. */
static int attach_output(struct session *s, int i, int fd)
{
    struct output *o = &s->out[i];
    int rc = wrap_fd(s, &o->pipe, o, &o->open, fd);
    if (rc != 0) {
        tl__output_close(o);
        return rc;
    }
    o->done = false;
    return 0;
}

static int attach_input(struct session *s, int fd)
{
    int rc = wrap_fd(s, &s->input, s, &s->input_open, fd);
    if (rc != 0)
        tl__input_close(s);
    return rc;
}

static void common_env(tl_sessions_t *owner, struct strvec *env, const char *lang)
{
    tl__strvec_add(env, "PATH=%s", FIXED_PATH);
    tl__strvec_add(env, "HOME=%s", owner->home);
    tl__strvec_add(env, "LANG=%s", lang);
}

static void user_env(tl_sessions_t *owner, struct strvec *env)
{
    common_env(owner, env, owner->lang);
    tl__strvec_add(env, "USER=%s", owner->user);
    tl__strvec_add(env, "LOGNAME=%s", owner->user);
    tl__strvec_add(env, "SHELL=%s", owner->shell);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/*
 * Starts sp with pipes (exec: stdin too; others read /dev/null) and attaches
 * our ends to s. TL_EIO with a message when the process cannot start.
 */
static int start_with_pipes(struct session *s, struct spawn *sp, bool with_stdin, char *message,
                            size_t message_size)
{
    int rc = 0;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (with_stdin) {
        if (pipe2(in, O_CLOEXEC) != 0) {
            rc = -errno;
            goto out;
        }
    } else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        rc = -errno;
        goto out;
    }
    sp->stdio[0] = in[0];
    sp->stdio[1] = out[1];
    sp->stdio[2] = err[1];
    rc = tl__spawn_process(sp, s->owner->close_range_works, &s->pid);
    if (rc != 0)
        goto out;
    s->running = true;
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    int fd = out[0];
    out[0] = -1;
    int attach = attach_output(s, 0, fd);
    fd = err[0];
    err[0] = -1;
    if (attach == 0)
        attach = attach_output(s, 1, fd);
    else
        close(fd);
    if (with_stdin) {
        fd = in[1];
        in[1] = -1;
        if (attach == 0)
            attach = attach_input(s, fd);
        else
            close(fd);
    }
    if (attach != 0) {
        rc = attach;
        tl__session_stop_process(s, SIGKILL);
    }
out:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    if (rc != 0) {
        tl_format(message, message_size, "the process could not start: %s", tl_strerror(rc));
        rc = rc == TL_ENOMEM ? rc : TL_EIO; /* the reason is in the message */
    }
    return rc;
}

/* ---- the session types ----------------------------------------------------------------------- */

static int prepare_exec(tl_sessions_t *owner, json_t *params, struct spawn *sp, char **what,
                        char *message, size_t message_size)
{
    json_t *argv = json_object_get(params, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > MAX_ARGV) {
        tl_format(message, message_size, "exec needs \"argv\": an array of 1..%d strings",
                  MAX_ARGV);
        return TL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(argv); i++) {
        json_t *arg = json_array_get(argv, i);
        if (!json_is_string(arg) || json_string_length(arg) > MAX_ARG_BYTES ||
            strlen(json_string_value(arg)) != json_string_length(arg)) {
            tl_format(message, message_size,
                      "argv[%zu] must be a string of at most %d bytes without NUL", i,
                      MAX_ARG_BYTES);
            return TL_EINVAL;
        }
    }
    const char *command = json_string_value(json_array_get(argv, 0));
    if (command[0] == '\0') {
        tl_format(message, message_size, "argv[0] is empty");
        return TL_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(argv); i++)
        tl__strvec_add(&sp->argv, "%s", json_string_value(json_array_get(argv, i)));
    /* The PATH search happens in the child, with execve over these candidates. */
    if (strchr(command, '/') != NULL) {
        tl__strvec_add(&sp->candidates, "%s", command);
    } else {
        const char *dir = FIXED_PATH;
        while (*dir != '\0') {
            size_t len = strcspn(dir, ":");
            tl__strvec_add(&sp->candidates, "%.*s/%s", (int)len, dir, command);
            dir += len + (dir[len] == ':');
        }
    }
    user_env(owner, &sp->env);
    sp->cwd = owner->home;
    *what = describe_argv(argv);
    return *what == NULL ? TL_ENOMEM : 0;
}

static bool valid_term(const char *term)
{
    size_t len = strlen(term);
    if (len == 0 || len > MAX_TERM)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = term[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '+'))
            return false;
    }
    return true;
}

static int size_param(json_t *params, const char *key, unsigned fallback, unsigned *out,
                      char *message, size_t message_size)
{
    json_t *value = json_object_get(params, key);
    *out = fallback;
    if (value == NULL)
        return 0;
    if (!json_is_integer(value) || json_integer_value(value) < 1 ||
        json_integer_value(value) > 1000) {
        tl_format(message, message_size, "\"%s\" must be a whole number from 1 to 1000", key);
        return TL_EINVAL;
    }
    *out = (unsigned)json_integer_value(value);
    return 0;
}

/* A shell's terminal name and size: "term", "cols", "rows", each optional. */
static int shell_params(json_t *params, const char **term_name, unsigned *cols, unsigned *rows,
                        char *message, size_t message_size)
{
    int rc;
    json_t *term = json_object_get(params, "term");
    *term_name = "xterm-256color";
    if (term != NULL) {
        if (!json_is_string(term) || !valid_term(json_string_value(term))) {
            tl_format(message, message_size,
                      "\"term\" must be a terminal name of 1..%d letters, digits or -_.+",
                      MAX_TERM);
            return TL_EINVAL;
        }
        *term_name = json_string_value(term);
    }
    if ((rc = size_param(params, "cols", 80, cols, message, message_size)) != 0 ||
        (rc = size_param(params, "rows", 24, rows, message, message_size)) != 0)
        return rc;
    return 0;
}

/* A new pseudo-terminal of that size: its master and slave ends, ours to close. */
static int open_terminal(unsigned cols, unsigned rows, int *master, int *slave, char *message,
                         size_t message_size)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    char slave_name[128];
    if (*master < 0 || grantpt(*master) != 0 || unlockpt(*master) != 0 ||
        ptsname_r(*master, slave_name, sizeof slave_name) != 0 ||
        (*slave = open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
        int rc = -errno;
        tl_format(message, message_size, "no pseudo-terminal: %s", tl_strerror(rc));
        return rc;
    }
    struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    ioctl(*master, TIOCSWINSZ, &size);
    return 0;
}

/*
 * Starts sp on a new pseudo-terminal of that kind and size, as its
 * controlling terminal, and attaches the master to s as out[0] (input goes
 * there too). TL_EIO (or TL_ENOMEM) with message when it cannot start.
 */
static int start_on_terminal(struct session *s, struct spawn *sp, const char *term_name,
                             unsigned cols, unsigned rows, char *message, size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    int master = -1, slave = -1;
    int rc = open_terminal(cols, rows, &master, &slave, message, message_size);
    if (rc != 0)
        goto out;
    tl__strvec_add(&sp->env, "TERM=%s", term_name);
    if (sp->candidates.failed || sp->argv.failed || sp->env.failed) {
        rc = TL_ENOMEM;
        goto out;
    }
    sp->stdio[0] = sp->stdio[1] = sp->stdio[2] = slave;
    sp->terminal = true;
    s->terminal = true;
    rc = tl__spawn_process(sp, owner->close_range_works, &s->pid);
    if (rc != 0) {
        tl_format(message, message_size, "the process could not start: %s", tl_strerror(rc));
        goto out;
    }
    s->running = true;
    close_fd(&slave);
    int fd = master;
    master = -1;
    rc = attach_output(s, 0, fd);
    if (rc != 0) {
        tl_format(message, message_size, "the process could not start: %s", tl_strerror(rc));
        tl__session_stop_process(s, SIGKILL);
    }
out:
    close_fd(&master);
    close_fd(&slave);
    if (rc == TL_ENOMEM)
        tl_format(message, message_size, "%s", tl_strerror(rc));
    if (rc != 0 && rc != TL_ENOMEM)
        rc = TL_EIO; /* the reason is in the message */
    return rc;
}

int tl__start_shell(struct session *s, json_t *params, char *message, size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    struct spawn sp = {.stdio = {-1, -1, -1}};
    const char *term_name;
    unsigned cols, rows;
    int rc = shell_params(params, &term_name, &cols, &rows, message, message_size);
    if (rc != 0)
        goto out;
    const char *base = strrchr(owner->shell, '/');
    base = base != NULL ? base + 1 : owner->shell;
    tl__strvec_add(&sp.candidates, "%s", owner->shell);
    tl__strvec_add(&sp.argv, "-%s", base); /* a login shell, as login(1) starts it */
    user_env(owner, &sp.env);
    sp.cwd = owner->home;
    sp.shown = owner->shell;
    rc = start_on_terminal(s, &sp, term_name, cols, rows, message, message_size);
out:
    tl__spawn_clear(&sp);
    return rc;
}

/* diag: this program's `diag --json`, checking the relay too when it knows one. */
static int prepare_diag(struct session *s, struct spawn *sp, char *message, size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    if (owner->self_exe == NULL) {
        tl_format(message, message_size, "the agent does not know its own program");
        return TL_EIO;
    }
    tl__strvec_add(&sp->candidates, "%s", owner->self_exe);
    tl__strvec_add(&sp->argv, "%s", owner->self_exe);
    tl__strvec_add(&sp->argv, "diag");
    tl__strvec_add(&sp->argv, "--json");
    if (owner->relay != NULL) {
        tl__strvec_add(&sp->argv, "--relay");
        tl__strvec_add(&sp->argv, "%s", owner->relay);
    }
    user_env(owner, &sp->env);
    /* What the agent was started with for the internet and agent probes (diagnostics.md §5) and
     * the probes left out (§2). */
    static const char *const passed[] = {TL_DIAG_LOOKUP_ENV, TL_DIAG_CONNECT_ENV, TL_DIAG_SKIP_ENV,
                                         "TIERLINE_AGENT_STATE"};
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
        if (getenv(passed[i]) != NULL)
            tl__strvec_add(&sp->env, "%s=%s", passed[i], getenv(passed[i]));
    sp->cwd = owner->home;
    s->timeout_ms = DIAG_TIMEOUT_MS;
    s->what = strdup("diagnostics");
    return s->what == NULL ? TL_ENOMEM : 0;
}

/* runbook: the catalogue's checks for the grant's role, then its program and parameters. */
static int prepare_runbook(struct session *s, json_t *params, const tl_session_grant_t *grant,
                           struct spawn *sp, tl_runbook_run_t *run, char *message,
                           size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    json_t *name = json_object_get(params, "name");
    if (!json_is_string(name)) {
        tl_format(message, message_size, "runbook needs \"name\": a runbook's name");
        return TL_EINVAL;
    }
    int rc = tl_runbooks_check(owner->catalogue, json_string_value(name),
                               json_object_get(params, "args"), grant->role, geteuid() == 0, run,
                               message, message_size);
    if (rc != 0)
        return rc;
    tl__strvec_add(&sp->candidates, "%s", run->path);
    tl__strvec_add(&sp->argv, "%s", run->path);
    /* Nothing from the agent's environment: the fixed four, then the parameters. */
    common_env(owner, &sp->env, "C.UTF-8");
    tl__strvec_add(&sp->env, "TL_AGENT_PID=%d", (int)getpid());
    for (size_t i = 0; i < run->env_count; i++)
        tl__strvec_add(&sp->env, "%s", run->env[i]);
    sp->cwd = owner->home;
    s->timeout_ms = run->timeout_ms;
    s->what = strdup(run->summary);
    return s->what == NULL ? TL_ENOMEM : 0;
}

int tl__start_piped(struct session *s, json_t *params, const tl_session_grant_t *grant,
                    char *message, size_t message_size)
{
    tl_sessions_t *owner = s->owner;
    struct spawn sp = {.stdio = {-1, -1, -1}};
    tl_runbook_run_t run = {0};
    int rc = 0;
    bool with_stdin = false;
    switch (s->kind) {
    case KIND_EXEC:
        rc = prepare_exec(owner, params, &sp, &s->what, message, message_size);
        with_stdin = true;
        break;
    case KIND_DIAG:
        rc = prepare_diag(s, &sp, message, message_size);
        break;
    case KIND_RUNBOOK:
        rc = prepare_runbook(s, params, grant, &sp, &run, message, message_size);
        break;
    default:
        rc = TL_EINVAL;
        break;
    }
    if (rc == 0 && (sp.candidates.failed || sp.argv.failed || sp.env.failed))
        rc = TL_ENOMEM;
    if (rc == TL_ENOMEM)
        tl_format(message, message_size, "%s", tl_strerror(rc));
    if (rc != 0)
        goto out;
    sp.shown = sp.argv.items[0];
    json_t *pty = s->kind == KIND_EXEC ? json_object_get(params, "pty") : NULL;
    if (pty != NULL) {
        /* ssh -t: the command on a terminal of its own, as a shell is (§7.7 "pty"). */
        const char *term_name;
        unsigned cols, rows;
        if (!json_is_object(pty)) {
            tl_format(message, message_size, "\"pty\" must be an object {term, cols, rows}");
            rc = TL_EINVAL;
            goto out;
        }
        rc = shell_params(pty, &term_name, &cols, &rows, message, message_size);
        if (rc == 0)
            rc = start_on_terminal(s, &sp, term_name, cols, rows, message, message_size);
        goto out;
    }
    rc = start_with_pipes(s, &sp, with_stdin, message, message_size);
out:
    tl_runbooks_run_release(&run);
    tl__spawn_clear(&sp);
    return rc;
}

/* ---- the runbook catalogue, asked before anyone is ------------------------------------------- */

json_t *tl_sessions_runbooks(const tl_sessions_t *owner)
{
    return tl_runbooks_list(owner != NULL ? owner->catalogue : NULL);
}

int tl_sessions_runbook_preview(const tl_sessions_t *owner, json_t **runbook, const char *role,
                                char *message, size_t message_size)
{
    tl_runbook_run_t run = {0};
    json_t *shown = NULL, *args = NULL;
    int rc = tl_runbooks_check(owner != NULL ? owner->catalogue : NULL,
                               json_string_value(json_object_get(*runbook, "name")),
                               json_object_get(*runbook, "args"), role, geteuid() == 0, &run,
                               message, message_size);
    if (rc != 0)
        goto out;
    /* The values as they will be passed: TL_PARAM_NAME=VALUE, in the catalogue's order. */
    args = json_object();
    for (size_t i = 0; args != NULL && i < run.env_count; i++) {
        const char *entry = run.env[i] + strlen("TL_PARAM_");
        const char *equals = strchr(entry, '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(equals - entry), entry);
        if (json_object_set_new(args, name, json_string(equals + 1)) != 0) {
            json_decref(args);
            args = NULL;
        }
    }
    shown = args == NULL ? NULL
                         : json_pack("{s:s, s:s, s:b, s:o}", "name", run.name, "description",
                                     tl_runbook_description(run.runbook), "privileged",
                                     run.privileged, "args", args);
    if (shown == NULL) {
        rc = TL_ENOMEM;
        tl_format(message, message_size, "%s", tl_strerror(rc));
        goto out;
    }
    json_decref(*runbook);
    *runbook = shown;
out:
    tl_runbooks_run_release(&run);
    return rc;
}
