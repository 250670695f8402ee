/* Tier-0 self-help on the machine (agent/selfhelp.h, docs/kb.md "Self-help"). */
#include "agent/selfhelp.h"

#include "proto/err.h"
#include "proto/format.h"
#include "proto/text.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIXED_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* After SIGTERM at the timeout, SIGKILL follows this much later. */
#define KILL_GRACE_MS 2000
/* The runbook's environment: the fixed entries and one per parameter. */
#define ENV_MAX (8 + TL_SELFHELP_ARGS_MAX)

int tl_selfhelp_rank(const tl_kb_t *kb, const json_t *report, const char *description,
                     tl_kb_match_t out[TL_SELFHELP_SHOWN_MAX], size_t *found)
{
    size_t count = 0;
    const tl_article_t *const *articles = kb != NULL ? tl_kb_articles(kb, &count) : NULL;
    *found = 0;
    if (count == 0)
        return 0;
    return tl_kb_rank(articles, count, report, description, out, TL_SELFHELP_SHOWN_MAX, found);
}

/* Appends text escaped as one line. */
static int put_line(tl_buf_t *out, const char *text)
{
    return tl_text_escape(out, text, strlen(text), TL_TEXT_LINE);
}

static int put(tl_buf_t *out, const char *text)
{
    return tl_buf_put(out, text, strlen(text));
}

void tl_selfhelp_fix_text(const tl_selfhelp_fix_t *fix, char *out, size_t size)
{
    char text[TL_ARTICLE_ID_MAX +
              TL_SELFHELP_ARGS_MAX * (TL_SELFHELP_ARG_NAME_MAX + TL_SELFHELP_ARG_VALUE_MAX + 4) +
              8];
    size_t at = (size_t)snprintf(text, sizeof text, "%s", fix->runbook);
    for (size_t i = 0; i < fix->arg_count && at < sizeof text; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "%s%s=%s", i == 0 ? " (" : ", ",
                               fix->args[i].name, fix->args[i].value);
    if (fix->arg_count > 0 && at < sizeof text)
        snprintf(text + at, sizeof text - at, ")");
    tl_text_clip(out, size, text, 0, TL_TEXT_LINE);
}

int tl_selfhelp_describe(const tl_kb_match_t *match, size_t number, const char *note, tl_buf_t *out)
{
    const tl_article_t *a = match->article;
    char head[32], fix_text[512];
    tl_selfhelp_fix_t fix;
    snprintf(head, sizeof head, "%zu. ", number);
    int rc = put(out, head);
    if (rc == 0)
        rc = put_line(out, a->title);
    if (rc == 0)
        rc = put(out, " (article ");
    if (rc == 0)
        rc = put_line(out, a->id);
    if (rc == 0)
        rc = put(out, ")\n   evidence: ");
    if (rc == 0)
        rc = put_line(out, match->applies == TL_COND_TRUE
                               ? match->evidence
                               : "none on this machine; it matches the words you used");
    if (rc == 0)
        rc = put(out, "\n   suggested fix: ");
    if (rc == 0) {
        if (a->runbook[0] == '\0') {
            rc = put(out, "none to run here; the article says what to do");
        } else if (tl_selfhelp_fix_from_article(a, &fix) != 0) {
            rc = put_line(out, a->runbook);
            if (rc == 0)
                rc = put(out, " (its parameters cannot be used)");
        } else {
            tl_selfhelp_fix_text(&fix, fix_text, sizeof fix_text);
            rc = put(out, fix_text);
        }
    }
    if (rc == 0 && note != NULL && note[0] != '\0') {
        rc = put(out, "\n   ");
        if (rc == 0)
            rc = put_line(out, note);
    }
    if (rc == 0)
        rc = put(out, "\n");
    return rc;
}

int tl_selfhelp_check_fix(const tl_runbooks_t *catalogue, const tl_selfhelp_fix_t *fix,
                          bool as_root, tl_runbook_run_t *run, char *message, size_t size)
{
    char why[512] = "";
    memset(run, 0, sizeof *run);
    if (fix->runbook[0] == '\0') {
        tl_format(message, size, "the article suggests no runbook to run");
        return TL_ENOTFOUND;
    }
    const tl_runbook_t *runbook = tl_runbooks_find(catalogue, fix->runbook);
    if (runbook != NULL && tl_runbook_privileged(runbook)) {
        tl_format(message, size,
                  "runbook %s is privileged: self-help never runs it; a technician can, on "
                  "your ticket",
                  fix->runbook);
        return TL_EDENIED;
    }
    json_t *args = tl_selfhelp_fix_args(fix);
    if (args == NULL)
        return TL_ENOMEM;
    int rc =
        tl_runbooks_check(catalogue, fix->runbook, args, "tier1", as_root, run, why, sizeof why);
    json_decref(args);
    if (rc == TL_EDENIED)
        tl_format(message, size, "self-help runs only what a tier-1 technician may: %s", why);
    else if (rc != 0)
        tl_format(message, size, "%s", why);
    return rc;
}

/* ---- running a runbook ------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* In the child: only async-signal-safe calls, then execve. Never returns. */
static void child_exec(const char *path, char *const argv[], char *const env[], int output,
                       const char *home)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(output, 1) < 0 || dup2(output, 2) < 0)
        _exit(126);
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        close((int)fd);
    if (home == NULL || chdir(home) != 0)
        (void)!chdir("/");
    execve(path, argv, env);
    static const char text[] = "tierline-agent: cannot run the runbook\n";
    (void)!write(2, text, sizeof text - 1);
    _exit(errno == ENOENT ? 127 : 126);
}

/* Shows what arrived, escaped, within the limit. */
static void show(FILE *to, tl_text_stream_t *stream, tl_buf_t *shown, const char *bytes, size_t len,
                 size_t *total)
{
    size_t room = *total < TL_SELFHELP_OUTPUT_MAX ? TL_SELFHELP_OUTPUT_MAX - *total : 0;
    size_t take = len < room ? len : room;
    *total += len;
    tl_buf_reset(shown);
    if (take > 0 && tl_text_stream_put(stream, shown, bytes, take) == 0 && to != NULL)
        fwrite(tl_buf_data(shown), 1, tl_buf_len(shown), to);
}

/* Waits for pid until deadline (monotonic ms, 0: none); 1 when it ended, with *status. */
static int wait_until(pid_t pid, uint64_t deadline, int *status)
{
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR))
            return 1;
        if (deadline != 0 && now_ms() >= deadline)
            return 0;
        struct timespec pause = {0, 20 * 1000000};
        nanosleep(&pause, NULL);
    }
}

int tl_selfhelp_run_fix(const tl_runbook_run_t *run, FILE *shown_to, tl_selfhelp_ran_t *ran)
{
    char *env[ENV_MAX + 1] = {0};
    char home_entry[4200], pid_entry[64];
    int pipe_fds[2] = {-1, -1}, rc = 0;
    memset(ran, 0, sizeof *ran);
    ran->exit_status = -1;
    struct passwd *user = getpwuid(geteuid());
    const char *home = user != NULL && user->pw_dir != NULL ? user->pw_dir : "/";
    size_t count = 0;
    env[count++] = "PATH=" FIXED_PATH;
    snprintf(home_entry, sizeof home_entry, "HOME=%s", home);
    env[count++] = home_entry;
    env[count++] = "LANG=C.UTF-8";
    snprintf(pid_entry, sizeof pid_entry, "TL_AGENT_PID=%d", (int)getpid());
    env[count++] = pid_entry;
    for (size_t i = 0; i < run->env_count && count < ENV_MAX; i++)
        env[count++] = run->env[i];
    char *argv[] = {(char *)run->path, NULL};
    if (pipe2(pipe_fds, O_CLOEXEC) != 0)
        return -errno;
    fflush(shown_to);
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return rc;
    }
    if (pid == 0)
        child_exec(run->path, argv, env, pipe_fds[1], home);
    close(pipe_fds[1]);

    tl_buf_t *shown = tl_buf_new(8 * 8192);
    tl_text_stream_t stream = {.mode = TL_TEXT_BODY};
    uint64_t deadline = now_ms() + run->timeout_ms, kill_at = 0;
    int status = 0, open_output = 1;
    char bytes[8192];
    /* Output until its end or the timeout; then the process itself. */
    while (open_output) {
        uint64_t now = now_ms();
        if (!ran->timed_out && now >= deadline) {
            ran->timed_out = true;
            kill(-pid, SIGTERM);
            kill_at = now + KILL_GRACE_MS;
        }
        if (ran->timed_out && now >= kill_at) {
            kill(-pid, SIGKILL);
            break; /* whatever still holds the output is not waited for */
        }
        uint64_t until = ran->timed_out ? kill_at : deadline;
        struct pollfd poll_fd = {pipe_fds[0], POLLIN, 0};
        int wait_ms = until > now ? (int)(until - now < 1000 ? until - now : 1000) : 0;
        int ready = poll(&poll_fd, 1, wait_ms);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        ssize_t n = read(pipe_fds[0], bytes, sizeof bytes);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            open_output = 0;
        else if (shown != NULL)
            show(shown_to, &stream, shown, bytes, (size_t)n, &ran->output_bytes);
    }
    close(pipe_fds[0]);
    if (!wait_until(pid, ran->timed_out ? kill_at : deadline, &status)) {
        if (!ran->timed_out) {
            ran->timed_out = true;
            kill(-pid, SIGTERM);
            if (!wait_until(pid, now_ms() + KILL_GRACE_MS, &status)) {
                kill(-pid, SIGKILL);
                wait_until(pid, 0, &status);
            }
        } else {
            kill(-pid, SIGKILL);
            wait_until(pid, 0, &status);
        }
    }
    if (shown != NULL) {
        tl_buf_reset(shown);
        if (tl_text_stream_finish(&stream, shown) == 0 && shown_to != NULL)
            fwrite(tl_buf_data(shown), 1, tl_buf_len(shown), shown_to);
    }
    if (shown_to != NULL && ran->output_bytes > TL_SELFHELP_OUTPUT_MAX)
        fprintf(shown_to, "\n(%zu more bytes of output not shown)\n",
                ran->output_bytes - TL_SELFHELP_OUTPUT_MAX);
    tl_buf_free(shown);
    if (WIFEXITED(status))
        ran->exit_status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        ran->signal = WTERMSIG(status);
    return 0;
}

tl_cond_result_t tl_selfhelp_recheck(const tl_article_t *article, const json_t *report,
                                     char *evidence, size_t size)
{
    if (size > 0)
        evidence[0] = '\0';
    return tl_cond_eval(article->recheck, report, evidence, size);
}

void tl_selfhelp_outcome(const tl_selfhelp_ran_t *ran, tl_cond_result_t recheck,
                         const char *evidence, char out[TL_SELFHELP_OUTCOME_MAX + 1])
{
    char text[1024], ending[96] = "";
    if (ran->timed_out)
        snprintf(ending, sizeof ending, "; the runbook timed out");
    else if (ran->signal != 0)
        snprintf(ending, sizeof ending, "; the runbook was stopped by signal %d", ran->signal);
    else if (ran->exit_status != 0)
        snprintf(ending, sizeof ending, "; the runbook exited with status %d", ran->exit_status);
    if (recheck == TL_COND_FALSE)
        snprintf(text, sizeof text, "%s%s", TL_SELFHELP_SOLVED, ending);
    else if (recheck == TL_COND_TRUE)
        snprintf(text, sizeof text, "not solved: the problem is still there (%s)%s", evidence,
                 ending);
    else
        snprintf(text, sizeof text, "not solved: the check could not be made again%s", ending);
    /* One line of valid UTF-8 within the limit: escaped, then clipped on a character. */
    tl_text_clip(out, TL_SELFHELP_OUTCOME_MAX + 1, text, 0, TL_TEXT_LINE);
}
