/*
 * Starting a session's process: fork, then execve (docs/protocol.md §7.7).
 *
 * Everything the child needs (the paths to try, argv, the environment, the
 * descriptors to close when close_range(2) is missing) is prepared before
 * the fork, in struct spawn. Between fork and execve the child makes only
 * async-signal-safe calls: the agent has libuv's threadpool, so another
 * thread may hold a lock (malloc's, stdio's) at the fork, and the child must
 * take none. Keep it that way: no malloc, no stdio, no opendir, no logging
 * in child_run() or anything it calls. Every signal is blocked across the
 * fork so no handler of the agent's runs in the child; the child resets
 * every disposition to the default and unblocks them just before execve.
 *
 * Each child is the leader of a new session, so its process group is its
 * pid and it has no controlling terminal but its own pseudo-terminal
 * (shell). It keeps only its stdio: every other descriptor is closed.
 */
#include "agent/session_int.h"

#include "proto/array.h"
#include "proto/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- in the agent, before the fork ----------------------------------------------------------- */

void tl__strvec_add(struct strvec *v, const char *fmt, ...)
{
    if (v->failed)
        return;
    /* Room for the item and the NULL after it. */
    if (tl_array_grow(&v->items, &v->cap, v->count + 2, sizeof *v->items, 16, SIZE_MAX) != 0) {
        v->failed = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *item = NULL;
    if (vasprintf(&item, fmt, ap) < 0)
        item = NULL;
    va_end(ap);
    if (item == NULL) {
        v->failed = true;
        return;
    }
    v->items[v->count++] = item;
    v->items[v->count] = NULL;
}

void tl__strvec_free(struct strvec *v)
{
    for (size_t i = 0; i < v->count; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

/* Collects the open descriptors now: the child may not read directories. */
static int collect_fds(struct spawn *sp)
{
    int rc = 0;
    size_t cap = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -errno;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        rc = tl_array_grow(&sp->fds, &cap, sp->fd_count + 1, sizeof *sp->fds, 64, SIZE_MAX);
        if (rc != 0)
            break;
        sp->fds[sp->fd_count++] = atoi(entry->d_name);
    }
    closedir(dir);
    return rc;
}

/* ---- in the child: async-signal-safe calls only ---------------------------------------------- */

static void child_write(const char *text)
{
    size_t len = 0;
    while (text[len] != '\0')
        len++;
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

/* In the child: async-signal-safe calls only, then execve. Never returns. */
static void child_run(const struct spawn *sp, bool use_close_range)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    setsid();
    if (sp->terminal)
        ioctl(sp->stdio[0], TIOCSCTTY, 0);
    /* Move the sources above 2 first, so no dup2 lands on a source still needed. */
    int source[3];
    for (int i = 0; i < 3; i++) {
        source[i] = sp->stdio[i];
        if (source[i] < 3)
            source[i] = fcntl(source[i], F_DUPFD_CLOEXEC, 3);
    }
    for (int i = 0; i < 3; i++)
        if (source[i] < 0 || dup2(source[i], i) < 0)
            _exit(126);
    bool closed = false;
#ifdef SYS_close_range
    if (use_close_range)
        closed = syscall(SYS_close_range, 3u, ~0u, 0u) == 0;
#endif
    if (!closed)
        for (size_t i = 0; i < sp->fd_count; i++)
            if (sp->fds[i] >= 3)
                close(sp->fds[i]);
    if (sp->cwd == NULL || chdir(sp->cwd) != 0)
        (void)!chdir("/");
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int error = ENOENT;
    for (size_t i = 0; i < sp->candidates.count; i++) {
        execve(sp->candidates.items[i], sp->argv.items, sp->env.items);
        if (errno != ENOENT && errno != ENOTDIR)
            error = errno;
    }
    child_write("tierline-agent: cannot run ");
    child_write(sp->shown);
    child_write(error == ENOENT    ? ": command not found\n"
                : error == EACCES  ? ": permission denied\n"
                : error == ENOEXEC ? ": not an executable format\n"
                                   : ": cannot be executed\n");
    _exit(error == ENOENT ? 127 : 126);
}

/* ---- in the agent again ---------------------------------------------------------------------- */

bool tl__spawn_close_range_works(void)
{
    bool works = false;
#ifdef SYS_close_range
    /* Closing an empty range succeeds exactly when the kernel knows the call. */
    works = syscall(SYS_close_range, ~0u - 1, ~0u - 1, 0u) == 0;
#endif
    return works;
}

/* Forks and execs; the child's ends in sp->stdio stay open for the caller to close. */
int tl__spawn_process(struct spawn *sp, bool use_close_range, pid_t *pid_out)
{
    if (!use_close_range) {
        int rc = collect_fds(sp);
        if (rc != 0)
            return rc;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_run(sp, use_close_range);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return -saved;
    *pid_out = pid;
    return 0;
}

void tl__spawn_clear(struct spawn *sp)
{
    tl__strvec_free(&sp->candidates);
    tl__strvec_free(&sp->argv);
    tl__strvec_free(&sp->env);
    free(sp->fds);
}
