#include "console/term.h"
#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t pending_signal;
static volatile sig_atomic_t pending_resize;

static struct termios saved;
static int saved_fd = -1;
static int atexit_registered;

static void wake(void)
{
    int saved_errno = errno;
    if (wake_pipe[1] >= 0) {
        char byte = 1;
        /* Non-blocking: when the pipe is full a wake-up is already pending. */
        ssize_t ignored = write(wake_pipe[1], &byte, 1);
        (void)ignored;
    }
    errno = saved_errno;
}

static void on_stop_signal(int signo)
{
    pending_signal = signo;
    wake();
}

static void on_resize_signal(int signo)
{
    (void)signo;
    pending_resize = 1;
    wake();
}

int tl_term_signals_install(void)
{
    if (wake_pipe[0] >= 0)
        return 0;
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        wake_pipe[0] = wake_pipe[1] = -1;
        return -errno;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    /* No SA_RESTART: a blocking call returns EINTR and the caller looks at the flags. */
    action.sa_handler = on_stop_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    action.sa_handler = on_resize_signal;
    sigaction(SIGWINCH, &action, NULL);
    action.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &action, NULL);
    return 0;
}

int tl_term_wake_fd(void)
{
    return wake_pipe[0];
}

static void drain(void)
{
    char bytes[64];
    while (wake_pipe[0] >= 0 && read(wake_pipe[0], bytes, sizeof bytes) > 0)
        ;
}

int tl_term_take_signal(void)
{
    drain();
    int signo = pending_signal;
    pending_signal = 0;
    return signo;
}

int tl_term_pending_signal(void)
{
    return pending_signal;
}

int tl_term_take_resize(void)
{
    drain();
    int resized = pending_resize;
    pending_resize = 0;
    return resized;
}

int tl_term_size(int fd, int *cols, int *rows)
{
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0)
        return -errno;
    *cols = size.ws_col > 0 ? size.ws_col : 80;
    *rows = size.ws_row > 0 ? size.ws_row : 24;
    return 0;
}

int tl_term_raw_enter(int fd)
{
    if (saved_fd >= 0)
        return TL_EINVAL;
    struct termios raw;
    if (tcgetattr(fd, &saved) != 0)
        return -errno;
    if (!atexit_registered) {
        atexit(tl_term_restore);
        atexit_registered = 1;
    }
    raw = saved;
    cfmakeraw(&raw);
    saved_fd = fd;
    for (;;) {
        if (tcsetattr(fd, TCSADRAIN, &raw) == 0)
            return 0;
        if (errno != EINTR)
            break;
    }
    int rc = -errno;
    saved_fd = -1;
    return rc;
}

void tl_term_restore(void)
{
    if (saved_fd < 0)
        return;
    while (tcsetattr(saved_fd, TCSADRAIN, &saved) != 0 && errno == EINTR)
        ;
    saved_fd = -1;
}
