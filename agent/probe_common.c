/*
 * Helpers the probes share: free text into JSON (redacted, bounded, valid
 * UTF-8), bounded file reads, and external commands run with no shell, a
 * bounded read of their output and a timeout.
 *
 * Everything here runs inside a probe's child process (agent/diag.c), which
 * the runner kills at its deadline; the waits below are bounded on their own
 * as well so that one slow command cannot use up the whole probe.
 */
#include "agent/diag.h"

#include "agent/redact.h"
#include "proto/err.h"
#include "proto/format.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define COMMAND_MAX_ERRORS 4096

/* ---- Text --------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (at most left bytes), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            low = 0xA0;
        if (c == 0xED)
            high = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            low = 0x90;
        if (c == 0xF4)
            high = 0x8F; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (left < need + 1)
        return 0;
    if (p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i <= need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need + 1;
}

json_t *tl__diag_text(const char *data, size_t len, size_t max_bytes)
{
    json_t *result = NULL;
    size_t redacted_len = 0;
    char *redacted = tl_redact_bytes(data ? data : "", data ? len : 0, &redacted_len, NULL);
    char *clean = NULL;
    if (!redacted || max_bytes > SIZE_MAX - 4)
        goto out;
    size_t cap = (redacted_len < max_bytes ? redacted_len : max_bytes) + 4;
    clean = malloc(cap);
    if (!clean)
        goto out;
    size_t used = 0, i = 0;
    const unsigned char *p = (const unsigned char *)redacted;
    while (i < redacted_len) {
        size_t n = utf8_sequence(p + i, redacted_len - i);
        if (used + (n ? n : 1) > max_bytes) {
            memcpy(clean + used, "...", 3);
            used += 3;
            break;
        }
        if (n == 0 || p[i] == 0x7f) {
            clean[used++] = '?';
            i++;
        } else if (p[i] < 0x20) {
            clean[used++] = (p[i] == '\t' || p[i] == '\n' || p[i] == '\r') ? ' ' : '?';
            i++;
        } else {
            memcpy(clean + used, p + i, n);
            used += n;
            i += n;
        }
    }
    result = json_stringn(clean, used);
out:
    free(clean);
    free(redacted);
    return result;
}

int tl__diag_put_text(json_t *obj, const char *key, const char *text)
{
    json_t *value = text ? tl__diag_text(text, strlen(text), 4096) : json_null();
    if (!value || json_object_set_new(obj, key, value) != 0)
        return TL_ENOMEM;
    return 0;
}

int tl__diag_put_int(json_t *obj, const char *key, long long value)
{
    return json_object_set_new(obj, key, json_integer(value)) == 0 ? 0 : TL_ENOMEM;
}

int tl__diag_put_real(json_t *obj, const char *key, double value)
{
    /* Two decimals are plenty for percentages and loads, and keep the JSON short. */
    double rounded = (double)(long long)(value * 100 + (value < 0 ? -0.5 : 0.5)) / 100;
    return json_object_set_new(obj, key, json_real(rounded)) == 0 ? 0 : TL_ENOMEM;
}

int tl__diag_put_bool(json_t *obj, const char *key, bool value)
{
    return json_object_set_new(obj, key, json_boolean(value)) == 0 ? 0 : TL_ENOMEM;
}

int tl__diag_fail(json_t *section, int code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    tl_format_v(message, sizeof message, fmt, ap);
    va_end(ap);
    tl__diag_put_text(section, "error", message);
    return code < 0 ? code : TL_EIO;
}

/* ---- Files ------------------------------------------------------------------------------- */

static int read_fd(int fd, size_t max_bytes, char **data, size_t *len)
{
    char *buffer = malloc(max_bytes + 1);
    if (!buffer)
        return TL_ENOMEM;
    size_t used = 0;
    while (used < max_bytes) {
        ssize_t n = read(fd, buffer + used, max_bytes - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            free(buffer);
            return rc;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    buffer[used] = '\0';
    *data = buffer;
    if (len)
        *len = used;
    return 0;
}

int tl__diag_read_file(const char *path, size_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    int rc = read_fd(fd, max_bytes, data, len);
    close(fd);
    return rc;
}

int tl__diag_read_tail(const char *path, size_t max_bytes, char **data, size_t *len,
                       bool *started_mid_file)
{
    *data = NULL;
    *started_mid_file = false;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = TL_EINVAL;
        goto out;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        if (lseek(fd, st.st_size - (off_t)max_bytes, SEEK_SET) < 0) {
            rc = -errno;
            goto out;
        }
        *started_mid_file = true;
    }
    rc = read_fd(fd, max_bytes, data, len);
out:
    close(fd);
    return rc;
}

int tl__diag_read_line(const char *path, char *out, size_t size)
{
    char *data = NULL;
    size_t len = 0;
    out[0] = '\0';
    int rc = tl__diag_read_file(path, size - 1, &data, &len);
    if (rc < 0)
        return rc;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        len--;
    memcpy(out, data, len);
    out[len] = '\0';
    free(data);
    return 0;
}

void tl__diag_user_name(uid_t uid, char *out, size_t size)
{
    struct passwd pw, *found = NULL;
    char buffer[2048];
    if (getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found && found->pw_name)
        snprintf(out, size, "%s", found->pw_name);
    else
        snprintf(out, size, "%lu", (unsigned long)uid);
}

void tl__diag_format_time(long long epoch_seconds, char out[32])
{
    time_t t = (time_t)epoch_seconds;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

bool tl__diag_systemd_running(void)
{
    struct stat st;
    return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- External commands ------------------------------------------------------------------- */

int tl__diag_find_program(const char *name, char *path, size_t size)
{
    static const char fallback[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    struct stat st;
    if (!name || !name[0])
        return TL_EINVAL;
    if (strchr(name, '/')) {
        if (stat(name, &st) != 0 || !S_ISREG(st.st_mode) || access(name, X_OK) != 0)
            return TL_ENOTFOUND;
        if (tl_format(path, size, "%s", name) != 0)
            return TL_EINVAL;
        return 0;
    }
    const char *lists[2] = {getenv("PATH"), fallback};
    for (size_t l = 0; l < 2; l++) {
        const char *dirs = lists[l];
        while (dirs && *dirs) {
            const char *end = strchr(dirs, ':');
            size_t dir_len = end ? (size_t)(end - dirs) : strlen(dirs);
            if (dir_len > 0) {
                if (tl_format(path, size, "%.*s/%s", (int)dir_len, dirs, name) == 0 &&
                    stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
                    return 0;
            }
            dirs = end ? end + 1 : NULL;
        }
    }
    return TL_ENOTFOUND;
}

static bool replaced_variable(const char *entry)
{
    static const char *const names[] = {
        "LC_ALL=", "PAGER=", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=", "SYSTEMD_LESS="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* The command's environment: ours, with a fixed locale and no pager or colours. */
static char **command_environment(void)
{
    static char *const added[] = {"LC_ALL=C", "PAGER=cat", "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0"};
    size_t count = 0;
    for (char **e = environ; e && *e; e++)
        count++;
    char **env = calloc(count + sizeof added / sizeof added[0] + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        if (!replaced_variable(*e))
            env[n++] = *e;
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++)
        env[n++] = added[i];
    env[n] = NULL;
    return env;
}

long long tl__diag_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Appends what fd has to give, keeping at most max bytes: the first ones, or
 * with keep_tail the last ones; false at the end of the stream.
 */
static bool drain(int fd, char *buffer, size_t *used, size_t max, bool keep_tail, bool *truncated)
{
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        size_t keep = (size_t)n;
        const char *from = chunk;
        if (keep > max - *used) {
            *truncated = true;
            if (keep_tail) {
                /* Drop the oldest bytes: first of the buffer, then of the chunk. */
                if (keep >= max) {
                    from = chunk + (keep - max);
                    keep = max;
                    *used = 0;
                } else {
                    size_t drop = keep - (max - *used);
                    memmove(buffer, buffer + drop, *used - drop);
                    *used -= drop;
                }
            } else {
                keep = max - *used;
            }
        }
        memcpy(buffer + *used, from, keep);
        *used += keep;
        buffer[*used] = '\0';
    }
}

static int command_run(const char *const argv[], int timeout_ms, size_t max_output, bool keep_tail,
                       struct tl__diag_command *result)
{
    memset(result, 0, sizeof *result);
    result->exit_status = -1;
    int rc;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    char **env = NULL;
    char path[PATH_MAX];
    bool errors_truncated = false;
    if (!argv || !argv[0] || timeout_ms < 1 || max_output < 1 || max_output > SIZE_MAX / 2)
        return TL_EINVAL;
    rc = tl__diag_find_program(argv[0], path, sizeof path);
    if (rc < 0)
        goto out;
    result->output = malloc(max_output + 1);
    result->errors = malloc(COMMAND_MAX_ERRORS + 1);
    env = command_environment();
    if (!result->output || !result->errors || !env) {
        rc = TL_ENOMEM;
        goto out;
    }
    result->output[0] = result->errors[0] = '\0';
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        rc = -errno;
        goto out;
    }
    long long deadline = tl__diag_now_ms() + timeout_ms;
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
            dup2(out_pipe[1], STDOUT_FILENO) < 0 || dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(127);
        closefrom(STDERR_FILENO + 1);
        execve(path, (char *const *)argv, env);
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;
    fcntl(out_pipe[0], F_SETFL, fcntl(out_pipe[0], F_GETFL) | O_NONBLOCK);
    fcntl(err_pipe[0], F_SETFL, fcntl(err_pipe[0], F_GETFL) | O_NONBLOCK);

    bool out_open = true, err_open = true;
    while (out_open || err_open) {
        long long left = deadline - tl__diag_now_ms();
        if (left <= 0) {
            result->timed_out = true;
            break;
        }
        struct pollfd fds[2];
        nfds_t nfds = 0;
        if (out_open)
            fds[nfds++] = (struct pollfd){.fd = out_pipe[0], .events = POLLIN};
        if (err_open)
            fds[nfds++] = (struct pollfd){.fd = err_pipe[0], .events = POLLIN};
        int n = poll(fds, nfds, (int)left);
        if (n < 0 && errno != EINTR) {
            result->timed_out = true;
            break;
        }
        for (nfds_t k = 0; n > 0 && k < nfds; k++) {
            if (!fds[k].revents)
                continue;
            if (fds[k].fd == out_pipe[0])
                out_open = drain(out_pipe[0], result->output, &result->output_len, max_output,
                                 keep_tail, &result->output_truncated);
            else
                err_open = drain(err_pipe[0], result->errors, &result->errors_len,
                                 COMMAND_MAX_ERRORS, false, &errors_truncated);
        }
    }
    /* Its output has ended; give it until the deadline to exit, then kill it. */
    int status = 0;
    pid_t waited = 0;
    while (!result->timed_out) {
        do
            waited = waitpid(pid, &status, WNOHANG);
        while (waited < 0 && errno == EINTR);
        if (waited != 0)
            break;
        long long left = deadline - tl__diag_now_ms();
        if (left <= 0) {
            result->timed_out = true;
            break;
        }
        poll(NULL, 0, left < 5 ? (int)left : 5);
    }
    if (result->timed_out) {
        kill(pid, SIGKILL);
        do
            waited = waitpid(pid, &status, 0);
        while (waited < 0 && errno == EINTR);
    }
    if (waited == pid && WIFEXITED(status))
        result->exit_status = WEXITSTATUS(status);
    if (waited == pid && WIFSIGNALED(status))
        result->signal = WTERMSIG(status);
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    free(env);
    if (rc < 0)
        tl__diag_command_clear(result);
    return rc;
}

int tl__diag_command_run(const char *const argv[], int timeout_ms, size_t max_output,
                         struct tl__diag_command *result)
{
    return command_run(argv, timeout_ms, max_output, false, result);
}

int tl__diag_command_run_tail(const char *const argv[], int timeout_ms, size_t max_output,
                              struct tl__diag_command *result)
{
    return command_run(argv, timeout_ms, max_output, true, result);
}

int tl__diag_command_budget(const tl_diag_t *diag, int own_ms)
{
    int budget = tl_diag_time_left_ms(diag) - 500;
    if (budget > own_ms)
        budget = own_ms;
    return budget < 1 ? 1 : budget;
}

void tl__diag_command_clear(struct tl__diag_command *result)
{
    free(result->output);
    free(result->errors);
    memset(result, 0, sizeof *result);
    result->exit_status = -1;
}

void tl__diag_command_describe(const struct tl__diag_command *result, char *out, size_t size)
{
    if (result->timed_out) {
        snprintf(out, size, "timed out");
        return;
    }
    if (result->signal) {
        snprintf(out, size, "killed by signal %d (%s)", result->signal, strsignal(result->signal));
        return;
    }
    /* The first non-empty line of its error output says most. */
    const char *line = result->errors ? result->errors : "";
    while (*line == '\n' || *line == ' ')
        line++;
    size_t line_len = strcspn(line, "\n");
    if (line_len > 200)
        line_len = 200;
    if (line_len > 0)
        snprintf(out, size, "exit status %d: %.*s", result->exit_status, (int)line_len, line);
    else
        snprintf(out, size, "exit status %d", result->exit_status);
}

/* ---- Network ----------------------------------------------------------------------------- */

/* A lookup in flight: glibc's resolver thread writes into it until it ends. */
struct lookup {
    struct addrinfo hints;
    struct gaicb request;
    struct gaicb *list[1];
    char host[256];
    char port[8];
};

int tl__diag_resolve(const char *host, const char *port, int flags, long long deadline_ms,
                     struct addrinfo **out)
{
    *out = NULL;
    if (!host || strlen(host) >= sizeof((struct lookup *)0)->host || !port ||
        strlen(port) >= sizeof((struct lookup *)0)->port)
        return EAI_NONAME;
    struct lookup *lookup = calloc(1, sizeof *lookup);
    if (!lookup)
        return EAI_MEMORY;
    snprintf(lookup->host, sizeof lookup->host, "%s", host);
    snprintf(lookup->port, sizeof lookup->port, "%s", port);
    lookup->hints.ai_family = AF_UNSPEC;
    lookup->hints.ai_socktype = SOCK_STREAM;
    lookup->hints.ai_flags = flags;
    lookup->request = (struct gaicb){
        .ar_name = lookup->host, .ar_service = lookup->port, .ar_request = &lookup->hints};
    lookup->list[0] = &lookup->request;
    int rc = getaddrinfo_a(GAI_NOWAIT, lookup->list, 1, NULL);
    if (rc != 0) {
        free(lookup);
        return rc;
    }
    for (;;) {
        long long left = deadline_ms - tl__diag_now_ms();
        if (left <= 0)
            break;
        struct timespec wait = {left / 1000, (long)(left % 1000) * 1000000L};
        rc = gai_suspend((const struct gaicb *const *)lookup->list, 1, &wait);
        if (rc != EAI_INTR)
            break;
    }
    rc = gai_error(&lookup->request);
    if (rc == EAI_INPROGRESS) {
        int cancel = gai_cancel(&lookup->request);
        /*
         * A lookup that cannot be cancelled may still write into its request:
         * it is left to the probe's process, which ends soon.
         */
        if (cancel == EAI_NOTCANCELED)
            return EAI_AGAIN;
        if (cancel == EAI_CANCELED) {
            free(lookup);
            return EAI_AGAIN;
        }
        rc = gai_error(&lookup->request); /* it ended in the meantime */
    }
    if (rc == 0)
        *out = lookup->request.ar_result;
    free(lookup);
    return rc;
}

int tl__diag_connect(const struct addrinfo *ai, long long deadline_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out;
        }
        for (;;) {
            long long left = deadline_ms - tl__diag_now_ms();
            if (left <= 0) {
                rc = -ETIMEDOUT;
                goto out;
            }
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = poll(&p, 1, (int)left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = -errno;
                goto out;
            }
            if (n > 0)
                break;
        }
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
            rc = -errno;
        else if (error != 0)
            rc = -error;
    }
out:
    close(fd);
    return rc;
}
