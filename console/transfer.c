/*
 * Files to and from a ticket's machine through the stock scp (console/transfer.h).
 */
#include "console/transfer.h"
#include "console/term.h"
#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int is_ticket(const char *text)
{
    if (strncmp(text, "T-", 2) != 0)
        return 0;
    size_t digits = strspn(text + 2, "0123456789");
    return digits > 0 && digits <= 18 && text[2 + digits] == '\0' && text[2] != '0';
}

static int has_control(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

int tl_transfer_check(const tl_transfer_t *t, char *why, size_t size)
{
    if (t->ticket == NULL || !is_ticket(t->ticket)) {
        snprintf(why, size, "'%s' is not a ticket (T-N, e.g. T-4)",
                 t->ticket != NULL ? t->ticket : "");
        return TL_EINVAL;
    }
    if (t->machine_path == NULL || t->machine_path[0] == '\0') {
        snprintf(why, size, "the path on the machine is empty");
        return TL_EINVAL;
    }
    if (strlen(t->machine_path) > TL_TRANSFER_PATH_MAX) {
        snprintf(why, size, "the path on the machine is longer than %d bytes",
                 TL_TRANSFER_PATH_MAX);
        return TL_EINVAL;
    }
    if (has_control(t->machine_path)) {
        snprintf(why, size, "the path on the machine holds a control character");
        return TL_EINVAL;
    }
    if (t->push ? t->local_path == NULL || t->local_path[0] == '\0'
                : t->local_path != NULL && t->local_path[0] == '\0') {
        snprintf(why, size, "the local path is empty");
        return TL_EINVAL;
    }
    return 0;
}

static int add(tl_transfer_argv_t *out, const char *word)
{
    if (out->count >= TL_TRANSFER_ARGV_MAX)
        return TL_ENOMEM;
    char *copy = strdup(word);
    if (copy == NULL)
        return TL_ENOMEM;
    out->argv[out->count++] = copy;
    out->argv[out->count] = NULL;
    return 0;
}

static int add_format(tl_transfer_argv_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_format(tl_transfer_argv_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *word = NULL;
    int n = vasprintf(&word, fmt, ap);
    va_end(ap);
    if (n < 0)
        return TL_ENOMEM;
    int rc = out->count < TL_TRANSFER_ARGV_MAX ? 0 : TL_ENOMEM;
    if (rc == 0) {
        out->argv[out->count++] = word;
        out->argv[out->count] = NULL;
    } else {
        free(word);
    }
    return rc;
}

int tl_transfer_argv(const tl_transfer_t *t, tl_transfer_argv_t *out)
{
    memset(out, 0, sizeof *out);
    const char *machine = t->machine_path;
    while (*machine == '/')
        machine++;
    const char *local = t->local_path != NULL ? t->local_path : ".";
    const char *local_prefix = local[0] == '/' ? "" : "./";
    const char *open = strchr(t->host, ':') != NULL ? "[" : "";
    const char *close = open[0] != '\0' ? "]" : "";
    int rc = 0;
    /* No ssh configuration, the one key, the one host key, no other way in. */
    static const char *const fixed[] = {
        "scp",
        "-F",
        "/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "CheckHostIP=no",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "PreferredAuthentications=publickey",
        "-o",
        "LogLevel=ERROR",
    };
    for (size_t i = 0; rc == 0 && i < sizeof fixed / sizeof fixed[0]; i++)
        rc = add(out, fixed[i]);
    if (rc == 0)
        rc = add_format(out, "-oHostKeyAlias=%s", TL_TRANSFER_HOST_ALIAS);
    if (rc == 0)
        rc = add_format(out, "-oUserKnownHostsFile=%s", t->known_hosts);
    if (rc == 0)
        rc = add_format(out, "-oUser=%s", t->user);
    if (rc == 0)
        rc = add(out, "-i");
    if (rc == 0)
        rc = add(out, t->identity);
    if (rc == 0)
        rc = add_format(out, "-P%u", t->port);
    if (rc == 0 && t->keepalive > 0)
        rc = add_format(out, "-oServerAliveInterval=%u", t->keepalive);
    if (rc == 0 && t->keepalive > 0)
        rc = add(out, "-oServerAliveCountMax=3");
    if (rc == 0)
        rc = add(out, "--");
    char *remote = NULL;
    if (rc == 0 && asprintf(&remote, "%s%s%s:%s/%s", open, t->host, close, t->ticket, machine) < 0)
        rc = TL_ENOMEM;
    if (rc == 0)
        rc = t->push ? add_format(out, "%s%s", local_prefix, local) : add(out, remote);
    if (rc == 0)
        rc = t->push ? add(out, remote) : add_format(out, "%s%s", local_prefix, local);
    free(remote);
    if (rc != 0)
        tl_transfer_argv_free(out);
    return rc;
}

void tl_transfer_argv_free(tl_transfer_argv_t *argv)
{
    for (size_t i = 0; i < argv->count; i++)
        free(argv->argv[i]);
    memset(argv, 0, sizeof *argv);
}

int tl_transfer_known_hosts(const char *key_line, char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] != '/')
        dir = "/tmp";
    if ((size_t)snprintf(path, size, "%s/tierline-known-hosts-XXXXXX", dir) >= size)
        return -ENAMETOOLONG;
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    char line[TL_TRANSFER_PATH_MAX + 128];
    int n = snprintf(line, sizeof line, "%s %s\n", TL_TRANSFER_HOST_ALIAS, key_line);
    int rc = 0;
    if (n < 0 || (size_t)n >= sizeof line)
        rc = -EOVERFLOW;
    else if (write(fd, line, (size_t)n) != n)
        rc = errno != 0 ? -errno : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(path);
    return rc;
}

int tl_transfer_spawn(char *const argv[])
{
    /* The console ignores SIGPIPE; scp gets the default back, as from a shell. */
    posix_spawnattr_t attr;
    sigset_t defaults;
    int rc = posix_spawnattr_init(&attr);
    if (rc != 0)
        return -rc;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    rc = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    if (rc == 0)
        rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return -rc;
    int status = 0;
    for (;;) {
        if (waitpid(pid, &status, 0) == pid)
            break;
        if (errno != EINTR)
            return -errno;
        /* A stop signal the console caught (Ctrl-C reaches scp from the terminal itself). */
        int signo = tl_term_take_signal();
        if (signo != 0)
            kill(pid, signo);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
