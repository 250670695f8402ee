/* The service manager's notifications: the datagram a Type=notify unit's manager receives. */
#include "tl_test.h"

#include "proto/sdnotify.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A datagram socket bound where the test says: a path in a fresh folder, or an abstract name. */
struct listener {
    int fd;
    char folder[64];
    char name[108]; /* as $NOTIFY_SOCKET spells it */
};

static void listen_at(struct listener *listener, int abstract)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    socklen_t length;
    listener->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(listener->fd >= 0);
    listener->folder[0] = '\0';
    if (abstract) {
        snprintf(listener->name, sizeof listener->name, "@tierline-test-%ld", (long)getpid());
        memcpy(address.sun_path + 1, listener->name + 1, strlen(listener->name) - 1);
        length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(listener->name));
    } else {
        snprintf(listener->folder, sizeof listener->folder, "/tmp/tl-sdnotify.XXXXXX");
        assert_non_null(mkdtemp(listener->folder));
        snprintf(listener->name, sizeof listener->name, "%s/notify", listener->folder);
        snprintf(address.sun_path, sizeof address.sun_path, "%s", listener->name);
        length = sizeof address;
    }
    assert_int_equal(0, bind(listener->fd, (struct sockaddr *)&address, length));
}

/* The next datagram, NUL-terminated; the test fails rather than wait for one never sent. */
static void receive(struct listener *listener, char *out, size_t size)
{
    ssize_t n = recv(listener->fd, out, size - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    out[n] = '\0';
}

static void listener_close(struct listener *listener)
{
    close(listener->fd);
    if (listener->folder[0] != '\0') {
        unlink(listener->name);
        rmdir(listener->folder);
    }
}

static void test_ready_reaches_a_path_socket_with_the_main_pid(void **state)
{
    (void)state;
    struct listener listener;
    listen_at(&listener, 0);
    setenv("NOTIFY_SOCKET", listener.name, 1);
    TL_ASSERT_OK(tl_sdnotify_ready());
    char got[256], want[64];
    receive(&listener, got, sizeof got);
    snprintf(want, sizeof want, "READY=1\nMAINPID=%ld", (long)getpid());
    assert_string_equal(want, got);
    listener_close(&listener);
}

static void test_reloading_then_ready_and_stopping_reach_an_abstract_socket(void **state)
{
    (void)state;
    struct listener listener;
    listen_at(&listener, 1);
    setenv("NOTIFY_SOCKET", listener.name, 1);
    TL_ASSERT_OK(tl_sdnotify_reloading());
    TL_ASSERT_OK(tl_sdnotify_ready());
    TL_ASSERT_OK(tl_sdnotify_stopping());
    char got[256];
    receive(&listener, got, sizeof got);
    assert_memory_equal("RELOADING=1\nMONOTONIC_USEC=", got, 27);
    assert_true(strtoull(got + 27, NULL, 10) > 0);
    receive(&listener, got, sizeof got);
    assert_memory_equal("READY=1\n", got, 8);
    receive(&listener, got, sizeof got);
    assert_string_equal("STOPPING=1", got);
    listener_close(&listener);
}

static int reread_counting(void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    return *calls == 1 ? 0 : TL_EINVAL;
}

static void test_a_reload_is_framed_by_reloading_and_ready_even_when_it_fails(void **state)
{
    (void)state;
    struct listener listener;
    listen_at(&listener, 1);
    setenv("NOTIFY_SOCKET", listener.name, 1);
    int calls = 0;
    char got[256];
    TL_ASSERT_OK(tl_sdnotify_reload(reread_counting, &calls));
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_reload(reread_counting, &calls));
    assert_int_equal(2, calls);
    for (int i = 0; i < 2; i++) {
        receive(&listener, got, sizeof got);
        assert_memory_equal("RELOADING=1\n", got, 12);
        receive(&listener, got, sizeof got);
        assert_memory_equal("READY=1\n", got, 8);
    }
    listener_close(&listener);
}

static void test_without_a_service_manager_nothing_is_sent(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    TL_ASSERT_OK(tl_sdnotify_ready());
    setenv("NOTIFY_SOCKET", "", 1);
    TL_ASSERT_OK(tl_sdnotify_stopping());
}

static void test_bad_socket_names_are_refused(void **state)
{
    (void)state;
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[0] = '/';
    long_name[sizeof long_name - 1] = '\0';
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_to("relative/notify", "READY=1"));
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_to("@", "READY=1"));
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_to("", "READY=1"));
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_to(long_name, "READY=1"));
    long_name[0] = '@';
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_to(long_name, "READY=1"));
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_to("/run/notify", ""));
    /* Through the environment too: a bad $NOTIFY_SOCKET is an error, not a silent success. */
    setenv("NOTIFY_SOCKET", "notify", 1);
    TL_ASSERT_RC(TL_EINVAL, tl_sdnotify_ready());
}

static void test_a_socket_nobody_listens_on_is_an_error(void **state)
{
    (void)state;
    char folder[] = "/tmp/tl-sdnotify.XXXXXX", name[96];
    assert_non_null(mkdtemp(folder));
    snprintf(name, sizeof name, "%s/nobody", folder);
    int rc = tl_sdnotify_to(name, "READY=1");
    assert_true(rc < 0);
    rmdir(folder);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ready_reaches_a_path_socket_with_the_main_pid),
    cmocka_unit_test(test_reloading_then_ready_and_stopping_reach_an_abstract_socket),
    cmocka_unit_test(test_a_reload_is_framed_by_reloading_and_ready_even_when_it_fails),
    cmocka_unit_test(test_without_a_service_manager_nothing_is_sent),
    cmocka_unit_test(test_bad_socket_names_are_refused),
    cmocka_unit_test(test_a_socket_nobody_listens_on_is_an_error),
};

TL_TEST_MAIN(tests)
