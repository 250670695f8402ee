/*
 * The field catalogue of knowledge-base conditions (proto/cond.c, docs/kb.md "Fields") against
 * what the probes really report: `tierline-agent diag --json` is run on this machine (its
 * relay check pointed at a loopback listener, its internet check at loopback), and every
 * field of every section that is not an error is named in a condition that must parse:
 * `exists PATH`, and within lists `any LIST where exists FIELD`. A probe that reports a field
 * the catalogue lacks, or a catalogue entry of the wrong shape, fails here with the field's
 * path; so does a catalogue field whose section no probe has.
 */
#include "tl_test.h"

#include "agent/diag.h"
#include "proto/cond.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPORT (16 * 1024 * 1024)
#define RUN_LIMIT_MS 120000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs argv and returns its standard output, within RUN_LIMIT_MS and MAX_REPORT bytes. */
static char *run_program(char *const argv[], int *status)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    char *out = malloc(MAX_REPORT + 1);
    assert_non_null(out);
    size_t used = 0;
    long long deadline = now_ms() + RUN_LIMIT_MS;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("%s did not finish within %d ms", argv[0], RUN_LIMIT_MS);
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(fds[0], out + used, MAX_REPORT - used);
        if (n == 0)
            break;
        if (n > 0)
            used += (size_t)n;
        if (used == MAX_REPORT)
            fail_msg("%s wrote more than %d bytes", argv[0], MAX_REPORT);
    }
    close(fds[0]);
    out[used] = '\0';
    assert_int_equal(waitpid(pid, status, 0), pid);
    return out;
}

struct walk {
    char **seen; /* the conditions tried, each once */
    size_t seen_count;
    char refused[8192]; /* the reasons, one line each */
    size_t refused_count;
    size_t tried;
};

static void try_condition(struct walk *w, const char *condition)
{
    for (size_t i = 0; i < w->seen_count; i++)
        if (strcmp(w->seen[i], condition) == 0)
            return;
    w->seen = realloc(w->seen, (w->seen_count + 1) * sizeof *w->seen);
    assert_non_null(w->seen);
    w->seen[w->seen_count++] = strdup(condition);
    w->tried++;
    tl_cond_t *cond = NULL;
    char why[300] = "";
    if (tl_cond_parse(condition, strlen(condition), &cond, why, sizeof why) != 0) {
        size_t used = strlen(w->refused);
        snprintf(w->refused + used, sizeof w->refused - used, "  %s  ->  %s\n", condition, why);
        w->refused_count++;
    }
    tl_cond_free(cond);
}

/*
 * Names every field of value: prefix is the condition so far ("any network.interfaces where "),
 * path the field's path within the current list's rows (or the report's sections).
 */
static void walk_value(struct walk *w, const char *prefix, const char *path, const json_t *value)
{
    char condition[1024], inner[1024];
    if (json_is_object(value)) {
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member) {
            char child[512];
            snprintf(child, sizeof child, "%s%s%s", path, path[0] ? "." : "", key);
            walk_value(w, prefix, child, member);
        }
        return;
    }
    snprintf(condition, sizeof condition, "%sexists %s", prefix, path);
    try_condition(w, condition);
    if (!json_is_array(value))
        return;
    size_t index;
    json_t *row;
    json_array_foreach(value, index, row) {
        if (!json_is_object(row))
            continue;
        snprintf(inner, sizeof inner, "%sany %s where ", prefix, path);
        walk_value(w, inner, "", row);
    }
}

static int listen_on_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof address;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&address, &len), 0);
    *port = ntohs(address.sin_port);
    return fd;
}

static void test_every_field_of_a_real_report_is_in_the_catalogue(void **state)
{
    (void)state;
    /* The relay check connects (connected_to, connect_ms) and the internet check stays here. */
    int port;
    int listener = listen_on_loopback(&port);
    char relay[64], target[64];
    snprintf(relay, sizeof relay, "127.0.0.1:%d", port);
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    char *const argv[] = {TL_AGENT_PROGRAM, "diag",      "--json",    "--relay", relay,
                          "--lookup",       "localhost", "--connect", target,    NULL};
    int status = 0;
    char *out = run_program(argv, &status);
    close(listener);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    json_error_t error;
    json_t *report = json_loads(out, 0, &error);
    if (!report)
        fail_msg("diag --json is not JSON: %s at %d", error.text, error.position);
    free(out);

    struct walk w = {0};
    size_t sections_walked = 0;
    const char *name;
    json_t *section;
    json_object_foreach(json_object_get(report, "sections"), name, section) {
        if (json_object_size(section) == 1 && json_is_string(json_object_get(section, "error"))) {
            print_message("section %s is an error here (%s): its fields are not checked\n", name,
                          json_string_value(json_object_get(section, "error")));
            continue;
        }
        walk_value(&w, "", name, section);
        sections_walked++;
    }
    print_message("%zu sections, %zu fields and lists named in conditions\n", sections_walked,
                  w.tried);
    assert_true(sections_walked >= 10);
    if (w.refused_count > 0)
        fail_msg("%zu field(s) of the report are not in the catalogue (proto/cond.c fields[]):\n%s",
                 w.refused_count, w.refused);
    for (size_t i = 0; i < w.seen_count; i++)
        free(w.seen[i]);
    free(w.seen);
    json_decref(report);
}

static void test_every_catalogue_field_belongs_to_a_probe(void **state)
{
    (void)state;
    size_t count;
    const struct tl_diag_probe *probes = tl_diag_probes(&count);
    const char *field;
    for (size_t i = 0; (field = tl_cond_field(i)) != NULL; i++) {
        size_t len = strcspn(field, ".");
        bool found = false;
        for (size_t p = 0; p < count && !found; p++)
            found = strlen(probes[p].name) == len && strncmp(field, probes[p].name, len) == 0;
        if (!found)
            fail_msg("catalogue field %s: no probe reports a section '%.*s'", field, (int)len,
                     field);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_field_of_a_real_report_is_in_the_catalogue),
    cmocka_unit_test(test_every_catalogue_field_belongs_to_a_probe),
};

TL_TEST_MAIN(tests)
