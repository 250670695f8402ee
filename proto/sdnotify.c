#include "proto/sdnotify.h"
#include "proto/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The socket's address from its name: a path, or "@name" for the abstract namespace. */
static int notify_address(const char *name, struct sockaddr_un *address, socklen_t *length)
{
    size_t name_length = strlen(name);
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    if (name_length < 2 || (name[0] != '/' && name[0] != '@'))
        return TL_EINVAL;
    if (name[0] == '/') {
        /* A path needs its terminating NUL inside sun_path. */
        if (name_length >= sizeof address->sun_path)
            return TL_EINVAL;
        memcpy(address->sun_path, name, name_length);
    } else {
        /* Abstract: a leading NUL, then the name without its '@', no terminator. */
        if (name_length > sizeof address->sun_path)
            return TL_EINVAL;
        memcpy(address->sun_path + 1, name + 1, name_length - 1);
    }
    *length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_length +
                          (name[0] == '/' ? 1 : 0));
    return 0;
}

int tl_sdnotify_to(const char *socket_name, const char *message)
{
    struct sockaddr_un address;
    socklen_t length;
    int rc = 0;
    if (socket_name == NULL || message == NULL || message[0] == '\0')
        return TL_EINVAL;
    if ((rc = notify_address(socket_name, &address, &length)) != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    size_t message_length = strlen(message);
    ssize_t sent = sendto(fd, message, message_length, MSG_NOSIGNAL,
                          (const struct sockaddr *)&address, length);
    if (sent < 0)
        rc = -errno;
    else if ((size_t)sent != message_length)
        rc = TL_EIO;
    close(fd);
    return rc;
}

int tl_sdnotify(const char *message)
{
    const char *socket_name = getenv("NOTIFY_SOCKET");
    if (socket_name == NULL || socket_name[0] == '\0')
        return 0;
    return tl_sdnotify_to(socket_name, message);
}

int tl_sdnotify_ready(void)
{
    char message[64];
    snprintf(message, sizeof message, "READY=1\nMAINPID=%ld", (long)getpid());
    return tl_sdnotify(message);
}

int tl_sdnotify_reloading(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char message[96];
    snprintf(message, sizeof message, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL +
                 (unsigned long long)now.tv_nsec / 1000ULL);
    return tl_sdnotify(message);
}

int tl_sdnotify_stopping(void)
{
    return tl_sdnotify("STOPPING=1");
}

int tl_sdnotify_reload(int (*reread)(void *ctx), void *ctx)
{
    /* Notifications are best effort: a manager that does not listen stops no reload. */
    (void)tl_sdnotify_reloading();
    int rc = reread(ctx);
    (void)tl_sdnotify_ready();
    return rc;
}
