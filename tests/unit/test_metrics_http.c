/*
 * The metrics endpoint's reader and server (relay/net/metrics_http.h): what each request gets,
 * read from the bytes alone, then over real loopback sockets: the answer, a request far over the
 * bound, a peer that never finishes, and one address's connections not stopping another's.
 */
#include "tl_test.h"

#include "relay/net/metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GOOD "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9465\r\nAccept: */*\r\n\r\n"

static int parse(const char *text)
{
    return tl_metrics_http_parse(text, strlen(text));
}

/* ---- the reader ---- */

static void test_get_metrics_is_answered(void **state)
{
    (void)state;
    assert_int_equal(parse(GOOD), 200);
    assert_int_equal(parse("GET /metrics HTTP/1.0\r\n\r\n"), 200);
}

static void test_a_request_not_yet_ended_waits_for_more(void **state)
{
    (void)state;
    assert_int_equal(parse(""), 0);
    assert_int_equal(parse("GET"), 0);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
}

static void test_other_methods_get_405_and_other_paths_404(void **state)
{
    (void)state;
    assert_int_equal(parse("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    assert_int_equal(parse("HEAD /metrics HTTP/1.1\r\n\r\n"), 405);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(parse("GET /metrics/ HTTP/1.1\r\n\r\n"), 404);
    assert_int_equal(parse("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), 404);
}

static void test_garbage_gets_400_as_soon_as_it_shows(void **state)
{
    (void)state;
    /* A TLS ClientHello, before any line end. */
    assert_int_equal(tl_metrics_http_parse("\x16\x03\x01\x02\x00\x01", 6), 400);
    assert_int_equal(parse("get /metrics HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n"), 400);
    assert_int_equal(parse("GET /metrics\r\n\r\n"), 400);
    assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n"), 400);
    assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    assert_int_equal(parse("GET /metrics HTTP/1.1\nHost: x\n\n"), 400);
    assert_int_equal(tl_metrics_http_parse("GET /metrics HTTP/1.1\r\nA: \0\r\n\r\n", 29), 400);
}

static void test_a_request_over_the_bound_gets_431(void **state)
{
    (void)state;
    size_t len = TL_METRICS_HTTP_MAX_REQUEST + 100;
    char *big = malloc(len);
    assert_non_null(big);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(big + 26, 'a', len - 26);
    assert_int_equal(tl_metrics_http_parse(big, TL_METRICS_HTTP_MAX_REQUEST - 1), 0);
    assert_int_equal(tl_metrics_http_parse(big, TL_METRICS_HTTP_MAX_REQUEST), 431);
    assert_int_equal(tl_metrics_http_parse(big, len), 431);
    free(big);
}

/* ---- the server, over loopback ---- */

struct fixture {
    uv_loop_t loop;
    tl_metrics_http_t *server;
    uint16_t port;
    unsigned renders;
};

static int render_body(void *ctx, tl_buf_t *out)
{
    struct fixture *f = ctx;
    f->renders++;
    return tl_buf_put(out, "tierline_test 1\n", 16);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof address;
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &len), 0);
    close(fd);
    return ntohs(address.sin_port);
}

static void start(struct fixture *f, uint32_t per_address, uint32_t connections,
                  uint32_t deadline_ms)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", f->port);
    tl_metrics_http_config_t config = {.listen = listen,
                                       .max_per_address = per_address,
                                       .max_connections = connections,
                                       .deadline_ms = deadline_ms,
                                       .render = render_body,
                                       .ctx = f};
    int rc = 0;
    f->server = tl_metrics_http_start(&f->loop, &config, &rc);
    TL_ASSERT_OK(rc);
    assert_non_null(f->server);
}

static void finish(struct fixture *f)
{
    tl_metrics_http_stop(f->server);
    for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A non-blocking client from source ("127.0.0.2", ...) to the server; connected when it returns. */
static int client(struct fixture *f, const char *source)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &from.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof from), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Let the server accept it. */
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    return fd;
}

/*
 * Sends request (as much as the peer takes) and reads until the server closes, running the loop
 * meanwhile, for at most 20 s: the response (malloc'd), or NULL if the connection is still open
 * then. *sent gets how many bytes of the request went out.
 */
static char *exchange(struct fixture *f, int fd, const char *request, size_t len, size_t *sent)
{
    size_t got = 0, cap = 1 << 16, out = 0;
    char *response = calloc(1, cap + 1);
    int64_t until = now_ms() + 20000;
    int closed = 0;
    while (!closed && now_ms() < until) {
        if (out < len) {
            ssize_t n = send(fd, request + out, len - out, MSG_NOSIGNAL);
            if (n > 0)
                out += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                len = out; /* the server stopped reading and closed: nothing more goes */
        }
        uv_run(&f->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, response + got, cap - got, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed = 1;
        else if (n > 0)
            got += (size_t)n;
        else
            usleep(1000);
        assert_true(got < cap);
    }
    if (sent != NULL)
        *sent = out;
    if (!closed) {
        free(response);
        return NULL;
    }
    return response;
}

static void test_server_answers_get_metrics_once_then_closes(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 0, 0, 0);
    int fd = client(&f, "127.0.0.1");
    char *response = exchange(&f, fd, GOOD, strlen(GOOD), NULL);
    assert_non_null(response);
    assert_true(strncmp(response, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(response, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(strstr(response, "Content-Length: 16\r\n"));
    assert_non_null(strstr(response, "Connection: close\r\n\r\ntierline_test 1\n"));
    assert_int_equal(f.renders, 1);
    free(response);
    close(fd);
    finish(&f);
}

static void test_server_answers_errors_with_their_status(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 0, 0, 0);
    const struct {
        const char *request, *status;
    } cases[] = {
        {"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n"},
        {"GET /admin HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n"},
        {"\x16\x03\x01garbage", "HTTP/1.1 400 Bad Request\r\n"},
    };
    for (size_t i = 0; i < 3; i++) {
        int fd = client(&f, "127.0.0.1");
        char *response = exchange(&f, fd, cases[i].request, strlen(cases[i].request), NULL);
        assert_non_null(response);
        if (strncmp(response, cases[i].status, strlen(cases[i].status)) != 0)
            fail_msg("expected %s, got %s", cases[i].status, response);
        free(response);
        close(fd);
    }
    assert_int_equal(f.renders, 0);
    finish(&f);
}

static void test_a_megabyte_request_line_is_refused_after_the_bound(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 0, 0, 0);
    size_t len = 1024 * 1024;
    char *big = malloc(len);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', len - 5);
    int fd = client(&f, "127.0.0.1");
    size_t sent = 0;
    char *response = exchange(&f, fd, big, len, &sent);
    assert_non_null(response);
    if (strncmp(response, "HTTP/1.1 431 ", 13) != 0)
        fail_msg("expected a 431 after %zu bytes sent, got: %.80s", sent, response);
    free(response);
    free(big);
    close(fd);
    finish(&f);
}

static void test_a_peer_that_never_finishes_is_ended_by_the_deadline(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 0, 0, 300);
    int fd = client(&f, "127.0.0.1");
    const char *partial = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    char *response = exchange(&f, fd, partial, strlen(partial), NULL);
    assert_non_null(response); /* closed by the server, not by the test's own deadline */
    assert_true(strncmp(response, "HTTP/1.1 408 ", 13) == 0);
    free(response);
    close(fd);
    /* Nothing is left of it once the peer is gone. */
    int64_t until = now_ms() + 10000;
    while (tl_metrics_http_connections(f.server) != 0 && now_ms() < until) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(tl_metrics_http_connections(f.server), 0);
    finish(&f);
}

static void test_one_address_at_its_cap_does_not_stop_another(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 3, 8, 0);
    int idle[4];
    for (int i = 0; i < 3; i++)
        idle[i] = client(&f, "127.0.0.1");
    assert_int_equal(tl_metrics_http_connections(f.server), 3);
    /* A fourth from the same address is closed at once, unanswered. */
    idle[3] = client(&f, "127.0.0.1");
    char *response = exchange(&f, idle[3], GOOD, strlen(GOOD), NULL);
    assert_non_null(response);
    assert_string_equal(response, "");
    free(response);
    assert_int_equal(tl_metrics_http_refused(f.server), 1);
    /* Another address is still served. */
    int other = client(&f, "127.0.0.2");
    response = exchange(&f, other, GOOD, strlen(GOOD), NULL);
    assert_non_null(response);
    assert_true(strncmp(response, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(response);
    close(other);
    for (int i = 0; i < 4; i++)
        close(idle[i]);
    finish(&f);
}

static void test_the_global_cap_bounds_every_address_together(void **state)
{
    (void)state;
    struct fixture f;
    start(&f, 2, 3, 0);
    int fds[3] = {client(&f, "127.0.0.1"), client(&f, "127.0.0.2"), client(&f, "127.0.0.3")};
    assert_int_equal(tl_metrics_http_connections(f.server), 3);
    int late = client(&f, "127.0.0.4");
    char *response = exchange(&f, late, GOOD, strlen(GOOD), NULL);
    assert_non_null(response);
    assert_string_equal(response, "");
    assert_int_equal(tl_metrics_http_refused(f.server), 1);
    free(response);
    close(late);
    /* Once one goes, a newcomer is served. */
    close(fds[0]);
    for (int i = 0; i < 50 && tl_metrics_http_connections(f.server) == 3; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    int next = client(&f, "127.0.0.4");
    response = exchange(&f, next, GOOD, strlen(GOOD), NULL);
    assert_non_null(response);
    assert_true(strncmp(response, "HTTP/1.1 200 OK\r\n", 17) == 0);
    free(response);
    close(next);
    close(fds[1]);
    close(fds[2]);
    finish(&f);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_metrics_is_answered),
        cmocka_unit_test(test_a_request_not_yet_ended_waits_for_more),
        cmocka_unit_test(test_other_methods_get_405_and_other_paths_404),
        cmocka_unit_test(test_garbage_gets_400_as_soon_as_it_shows),
        cmocka_unit_test(test_a_request_over_the_bound_gets_431),
        cmocka_unit_test(test_server_answers_get_metrics_once_then_closes),
        cmocka_unit_test(test_server_answers_errors_with_their_status),
        cmocka_unit_test(test_a_megabyte_request_line_is_refused_after_the_bound),
        cmocka_unit_test(test_a_peer_that_never_finishes_is_ended_by_the_deadline),
        cmocka_unit_test(test_one_address_at_its_cap_does_not_stop_another),
        cmocka_unit_test(test_the_global_cap_bounds_every_address_together),
    };
    return tl_test_run("metrics_http", tests, sizeof tests / sizeof tests[0], argc, argv);
}
