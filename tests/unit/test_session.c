/*
 * Session executors, driven the way the tunnel drives them: two muxes
 * connected in memory on a real libuv loop. One plays the relay (opens
 * channels, writes stdin, reads output, grants window); the other is the
 * agent's, and hands each channel to tl_sessions_*. Every session runs a
 * real child process. Every wait is bounded by a deadline; no assertion
 * depends on how long anything took.
 */
#include "tl_test.h"

#include "agent/session.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/mux.h"
#include "proto/runbooks.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CH 16
#define PIPE_MAX (64u * 1024u * 1024u)
#define WAIT_MS 60000
#define MAX_ACTIVITY 32
#define MAX_ACK_RUNS 16

struct relay_channel {
    bool confirmed, refused, eof, closed;
    uint32_t refuse_reason;
    char refuse_message[TL_MSG_MAX_TEXT + 1];
    uint8_t close_flags;
    int32_t exit_status;
    char exit_signal[TL_MSG_MAX_NAME + 1];
    tl_buf_t *rx[2];
    bool manual_consume; /* the test grants window itself */
    uint32_t agent_channel;
    const uint8_t *pending; /* stdin still to send, as the window allows */
    size_t pending_len;
    bool eof_after_pending;
    /* CHANNEL_INPUT_ACK from the agent, as runs of hidden or visible bytes. */
    struct {
        bool hidden;
        uint32_t bytes;
    } ack_runs[MAX_ACK_RUNS];
    size_t ack_run_count;
    uint64_t acked;
};

struct end {
    tl_mux_t *mux;
    tl_buf_t *out; /* frames sent, not yet delivered */
    tl_frame_decoder_t *dec;
};

static struct harness {
    uv_loop_t loop;
    uv_idle_t pump;
    uv_timer_t deadline;
    bool expired;
    uv_check_t sampler;
    size_t held_max;
    uv_timer_t drip;
    uint32_t drip_channel;
    struct end relay, agent;
    tl_sessions_t *sessions;
    struct relay_channel ch[MAX_CH];
    uint32_t last_agent_channel;
    char activity[MAX_ACTIVITY][512];
    size_t activity_count;
    char dir[64];
    char home[4096];
} H;

/* ---- the wire between the two muxes --------------------------------------------------- */

static void on_pump(uv_idle_t *idle);

static int end_send(void *ctx, const uint8_t *head, size_t head_len, const uint8_t *body,
                    size_t body_len)
{
    struct end *e = ctx;
    TL_ASSERT_OK(tl_buf_put(e->out, head, head_len));
    TL_ASSERT_OK(tl_buf_put(e->out, body, body_len));
    uv_idle_start(&H.pump, on_pump);
    return 0;
}

/* Delivers every frame `from` sent to `to`; a protocol error fails the test. */
static bool deliver(struct end *from, struct end *to)
{
    bool any = false;
    while (from->mux != NULL && to->mux != NULL && tl_buf_len(from->out) > 0) {
        size_t frame_len = 4 + tl_load_u32(tl_buf_data(from->out));
        assert_true(frame_len <= tl_buf_len(from->out));
        uint8_t *copy = malloc(frame_len);
        assert_non_null(copy);
        memcpy(copy, tl_buf_data(from->out), frame_len);
        TL_ASSERT_OK(tl_buf_consume(from->out, frame_len));
        const uint8_t *cursor = copy;
        size_t left = frame_len;
        tl_frame_t frame;
        assert_int_equal(tl_frame_decoder_next(to->dec, &cursor, &left, &frame), 1);
        tl_msg_t msg;
        TL_ASSERT_OK(tl_msg_decode(&frame, &msg));
        int rc = tl_mux_input(to->mux, &msg);
        tl_msg_clear(&msg);
        free(copy);
        if (rc != 0)
            fail_msg("the %s mux rejected a message: %s", to == &H.agent ? "agent" : "relay",
                     tl_strerror(rc));
        any = true;
    }
    return any;
}

static void on_pump(uv_idle_t *idle)
{
    while (deliver(&H.agent, &H.relay) | deliver(&H.relay, &H.agent))
        ;
    uv_idle_stop(idle);
}

/* ---- the agent's side: what the tunnel does ----------------------------------------------- */

static const char *param_text(json_t *params, const char *key, const char *fallback)
{
    json_t *value = json_object_get(params, key);
    return json_is_string(value) ? json_string_value(value) : fallback;
}

static void agent_on_open(void *ctx, uint32_t channel, const struct tl_msg_channel_open *request)
{
    char type[TL_MSG_MAX_NAME + 1];
    memcpy(type, request->channel_type.ptr, request->channel_type.len);
    type[request->channel_type.len] = '\0';
    tl_session_grant_t grant = {
        .id = param_text(request->params, "grant", "G-1"),
        .ticket = param_text(request->params, "ticket", "T-1"),
        .technician = param_text(request->params, "technician", "alice"),
        .role = param_text(request->params, "role", "tier2"),
        /* Stands in for a files grant the user allowed pushing under. */
        .push = json_is_true(json_object_get(request->params, "push_allowed")),
    };
    H.last_agent_channel = channel;
    char message[TL_MSG_MAX_TEXT];
    int rc = tl_sessions_open(H.sessions, H.agent.mux, channel, type, request->params, &grant,
                              message, sizeof message);
    if (rc != 0) {
        assert_true(message[0] != '\0'); /* every refusal says why */
        TL_ASSERT_OK(tl_mux_refuse(H.agent.mux, channel, (uint32_t)-rc, message));
    }
}

static void agent_on_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                          size_t len)
{
    tl_sessions_data(H.sessions, channel, stream, data, len);
}

static void agent_on_eof(void *ctx, uint32_t channel)
{
    tl_sessions_eof(H.sessions, channel);
}

static void agent_on_writable(void *ctx, uint32_t channel)
{
    tl_sessions_writable(H.sessions, channel);
}

static void agent_on_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    tl_sessions_closed(H.sessions, channel);
}

static const tl_mux_callbacks_t agent_callbacks = {
    .send = end_send,
    .on_open = agent_on_open,
    .on_data = agent_on_data,
    .on_eof = agent_on_eof,
    .on_writable = agent_on_writable,
    .on_close = agent_on_close,
};

/* ---- the relay's side --------------------------------------------------------------------- */

static struct relay_channel *rch(uint32_t channel)
{
    assert_true(channel < MAX_CH);
    return &H.ch[channel];
}

static void relay_on_confirm(void *ctx, uint32_t channel)
{
    rch(channel)->confirmed = true;
    rch(channel)->agent_channel = H.last_agent_channel;
}

static void relay_on_refuse(void *ctx, uint32_t channel, uint32_t reason, tl_str_t message)
{
    struct relay_channel *c = rch(channel);
    c->refused = true;
    c->refuse_reason = reason;
    memcpy(c->refuse_message, message.ptr, message.len);
    c->refuse_message[message.len] = '\0';
}

static void relay_on_data(void *ctx, uint32_t channel, uint8_t stream, const uint8_t *data,
                          size_t len)
{
    struct relay_channel *c = rch(channel);
    assert_true(stream <= 1);
    TL_ASSERT_OK(tl_buf_put(c->rx[stream], data, len));
    if (!c->manual_consume)
        TL_ASSERT_OK(tl_mux_consumed(H.relay.mux, channel, len));
}

static void send_pending(uint32_t channel)
{
    struct relay_channel *c = rch(channel);
    size_t written = 0;
    if (c->pending_len > 0)
        TL_ASSERT_OK(tl_mux_write(H.relay.mux, channel, TL_STREAM_MAIN, c->pending, c->pending_len,
                                  &written));
    c->pending += written;
    c->pending_len -= written;
    if (c->pending_len == 0 && c->eof_after_pending) {
        c->eof_after_pending = false;
        TL_ASSERT_OK(tl_mux_eof(H.relay.mux, channel));
    }
}

static void relay_on_writable(void *ctx, uint32_t channel)
{
    send_pending(channel);
}

static void relay_on_eof(void *ctx, uint32_t channel)
{
    rch(channel)->eof = true;
}

static void relay_on_close(void *ctx, uint32_t channel, const struct tl_msg_channel_close *close)
{
    struct relay_channel *c = rch(channel);
    c->closed = true;
    c->close_flags = close->flags;
    c->exit_status = close->exit_status;
    memcpy(c->exit_signal, close->exit_signal.ptr, close->exit_signal.len);
    c->exit_signal[close->exit_signal.len] = '\0';
}

static void relay_on_input_ack(void *ctx, uint32_t channel, uint32_t bytes, int hidden)
{
    struct relay_channel *c = rch(channel);
    size_t n = c->ack_run_count;
    if (n > 0 && c->ack_runs[n - 1].hidden == (hidden != 0)) {
        c->ack_runs[n - 1].bytes += bytes;
    } else {
        assert_true(n < MAX_ACK_RUNS);
        c->ack_runs[n].hidden = hidden != 0;
        c->ack_runs[n].bytes = bytes;
        c->ack_run_count++;
    }
    c->acked += bytes;
}

static const tl_mux_callbacks_t relay_callbacks = {
    .send = end_send,
    .on_confirm = relay_on_confirm,
    .on_refuse = relay_on_refuse,
    .on_data = relay_on_data,
    .on_writable = relay_on_writable,
    .on_eof = relay_on_eof,
    .on_close = relay_on_close,
    .on_input_ack = relay_on_input_ack,
};

/* ---- waiting ------------------------------------------------------------------------------ */

static void on_deadline(uv_timer_t *timer)
{
    H.expired = true;
}

/* Runs the loop until cond holds; fails after WAIT_MS (a hang, not a slow run). */
#define WAIT_FOR(cond, what)                                                                       \
    do {                                                                                           \
        H.expired = false;                                                                         \
        uv_timer_start(&H.deadline, on_deadline, WAIT_MS, 0);                                      \
        while (!(cond)) {                                                                          \
            if (H.expired)                                                                         \
                fail_msg("no %s within %d ms", what, WAIT_MS);                                     \
            uv_run(&H.loop, UV_RUN_ONCE);                                                          \
        }                                                                                          \
        uv_timer_stop(&H.deadline);                                                                \
    } while (0)

static void on_sample(uv_check_t *check)
{
    size_t held = tl_sessions_held_bytes(H.sessions);
    if (held > H.held_max)
        H.held_max = held;
}

static bool rx_has(uint32_t channel, uint8_t stream, const char *needle)
{
    tl_buf_t *rx = rch(channel)->rx[stream];
    return memmem(tl_buf_data(rx), tl_buf_len(rx), needle, strlen(needle)) != NULL;
}

/* The received bytes as a string (for messages and parsing); valid until the next read. */
static const char *rx_text(uint32_t channel, uint8_t stream)
{
    static char text[65536];
    tl_buf_t *rx = rch(channel)->rx[stream];
    size_t len = tl_buf_len(rx) < sizeof text - 1 ? tl_buf_len(rx) : sizeof text - 1;
    memcpy(text, tl_buf_data(rx), len);
    text[len] = '\0';
    return text;
}

static bool has_activity(const char *text)
{
    for (size_t i = 0; i < H.activity_count; i++)
        if (strcmp(H.activity[i], text) == 0)
            return true;
    return false;
}

static void assert_activity(const char *text)
{
    if (has_activity(text))
        return;
    for (size_t i = 0; i < H.activity_count; i++)
        print_message("activity: %s\n", H.activity[i]);
    fail_msg("no activity \"%s\"", text);
}

/* ---- setting up --------------------------------------------------------------------------- */

static void on_activity(void *data, const char *grant, const char *text)
{
    assert_ptr_equal(data, &H);
    assert_non_null(grant);
    if (H.activity_count < MAX_ACTIVITY)
        snprintf(H.activity[H.activity_count++], sizeof H.activity[0], "%s: %s", grant, text);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", H.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void make_test_catalogue(void)
{
    char text[1024];
    char path[128];
    snprintf(path, sizeof path, "%s/runbooks", H.dir);
    assert_int_equal(mkdir(path, 0755), 0);
    write_file("runbooks/print-env.json",
               "{\"name\":\"print-env\",\"description\":\"Print the environment\","
               "\"min_role\":\"tier1\",\"privileged\":false,\"params\":["
               "{\"name\":\"GREETING\",\"pattern\":\"^[a-z ]{1,20}$\",\"required\":true,"
               "\"description\":\"words\"},"
               "{\"name\":\"UNUSED\",\"pattern\":\"^x$\",\"description\":\"never given\"}]}",
               0644);
    snprintf(text, sizeof text, "#!/bin/sh\ntouch '%s/print-env-ran'\nexec env\n", H.dir);
    write_file("runbooks/print-env", text, 0755);
    write_file("runbooks/sleeper.json",
               "{\"name\":\"sleeper\",\"description\":\"Sleeps past its timeout\","
               "\"min_role\":\"tier1\",\"privileged\":false,\"timeout\":\"1s\"}",
               0644);
    write_file("runbooks/sleeper", "#!/bin/sh\necho sleeping\nexec sleep 1000\n", 0755);
    write_file("runbooks/fails.json",
               "{\"name\":\"fails\",\"description\":\"Fails with a message\","
               "\"min_role\":\"tier2\",\"privileged\":false}",
               0644);
    write_file("runbooks/fails", "#!/bin/sh\necho 'result: FAILED: it broke' >&2\nexit 4\n", 0755);
    /* Stands in for the agent itself in diag channels: shows how it was called. */
    write_file("fake-agent", "#!/bin/sh\nprintf '{\"argv\":\"%s\"}\\n' \"$*\"\n", 0755);
}

static void harness_start(uint32_t relay_window)
{
    memset(&H, 0, sizeof H);
    snprintf(H.dir, sizeof H.dir, "/tmp/tl-session-XXXXXX");
    assert_non_null(mkdtemp(H.dir));
    make_test_catalogue();
    struct passwd *pw = getpwuid(geteuid());
    assert_non_null(pw);
    snprintf(H.home, sizeof H.home, "%s", pw->pw_dir);

    TL_ASSERT_OK(uv_loop_init(&H.loop));
    TL_ASSERT_OK(uv_idle_init(&H.loop, &H.pump));
    TL_ASSERT_OK(uv_timer_init(&H.loop, &H.deadline));
    TL_ASSERT_OK(uv_timer_init(&H.loop, &H.drip));
    TL_ASSERT_OK(uv_check_init(&H.loop, &H.sampler));
    TL_ASSERT_OK(uv_check_start(&H.sampler, on_sample));
    uv_unref((uv_handle_t *)&H.sampler);

    tl_mux_config_t relay_config = {
        .max_channels = MAX_CH, .window = relay_window, .max_packet = TL_MUX_DEFAULT_MAX_PACKET};
    H.relay.mux = tl_mux_new(&relay_config, &relay_callbacks, &H.relay);
    H.agent.mux = tl_mux_new(NULL, &agent_callbacks, &H.agent);
    assert_non_null(H.relay.mux);
    assert_non_null(H.agent.mux);
    struct end *ends[] = {&H.relay, &H.agent};
    for (int i = 0; i < 2; i++) {
        ends[i]->out = tl_buf_new(PIPE_MAX);
        ends[i]->dec = tl_frame_decoder_new(TL_FRAME_MAX_PAYLOAD);
        assert_non_null(ends[i]->out);
        assert_non_null(ends[i]->dec);
    }
    for (int i = 0; i < MAX_CH; i++)
        for (int s = 0; s < 2; s++)
            H.ch[i].rx[s] = tl_buf_new(PIPE_MAX);

    char runbooks[128], self_exe[128];
    snprintf(runbooks, sizeof runbooks, "%s/runbooks", H.dir);
    snprintf(self_exe, sizeof self_exe, "%s/fake-agent", H.dir);
    tl_sessions_config_t config = {
        .runbooks_dir = runbooks,
        .self_exe = self_exe,
        .relay = "127.0.0.1:7000",
        /* Not the user's own login shell: its start-up files are not the test's business. */
        .shell = "/bin/sh",
    };
    tl_sessions_events_t events = {.on_activity = on_activity};
    int err = 1;
    H.sessions = tl_sessions_new(&H.loop, &config, &events, &H, &err);
    assert_non_null(H.sessions);
    TL_ASSERT_OK(err);
}

static int setup(void **state)
{
    (void)state;
    harness_start(TL_MUX_DEFAULT_WINDOW);
    return 0;
}

static void close_own(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static int teardown(void **state)
{
    (void)state;
    tl_sessions_free(H.sessions);
    H.sessions = NULL;
    close_own((uv_handle_t *)&H.pump);
    close_own((uv_handle_t *)&H.deadline);
    close_own((uv_handle_t *)&H.drip);
    close_own((uv_handle_t *)&H.sampler);
    /* Returns once every child is reaped and every handle closed. */
    uv_run(&H.loop, UV_RUN_DEFAULT);
    TL_ASSERT_OK(uv_loop_close(&H.loop));
    tl_mux_free(H.relay.mux);
    tl_mux_free(H.agent.mux);
    struct end *ends[] = {&H.relay, &H.agent};
    for (int i = 0; i < 2; i++) {
        tl_buf_free(ends[i]->out);
        tl_frame_decoder_free(ends[i]->dec);
    }
    for (int i = 0; i < MAX_CH; i++)
        for (int s = 0; s < 2; s++)
            tl_buf_free(H.ch[i].rx[s]);
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", H.dir);
    assert_int_equal(system(command), 0);
    return 0;
}

/* ---- acting as the relay ------------------------------------------------------------------ */

/* Opens a channel; params is JSON (grant fields default to G-1/T-1/alice/tier2). */
static uint32_t open_channel(const char *type, const char *params_json)
{
    json_error_t error;
    json_t *params = json_loads(params_json, 0, &error);
    if (params == NULL)
        fail_msg("bad test params %s: %s", params_json, error.text);
    uint32_t channel;
    TL_ASSERT_OK(tl_mux_open(H.relay.mux, type, params, &channel));
    json_decref(params);
    struct relay_channel *c = rch(channel);
    tl_buf_t *rx0 = c->rx[0], *rx1 = c->rx[1];
    tl_buf_reset(rx0);
    tl_buf_reset(rx1);
    memset(c, 0, sizeof *c);
    c->rx[0] = rx0;
    c->rx[1] = rx1;
    WAIT_FOR(c->confirmed || c->refused, "answer to the channel open");
    return channel;
}

static uint32_t open_confirmed(const char *type, const char *params_json)
{
    uint32_t channel = open_channel(type, params_json);
    if (!rch(channel)->confirmed)
        fail_msg("%s %s refused: %s", type, params_json, rch(channel)->refuse_message);
    return channel;
}

static void assert_refused(const char *type, const char *params_json, int expected,
                           const char *needle)
{
    uint32_t channel = open_channel(type, params_json);
    struct relay_channel *c = rch(channel);
    if (!c->refused)
        fail_msg("%s %s was accepted", type, params_json);
    assert_int_equal(c->refuse_reason, (uint32_t)-expected);
    if (strstr(c->refuse_message, needle) == NULL)
        fail_msg("refusal \"%s\" does not say \"%s\"", c->refuse_message, needle);
    /* Nothing is left running or held for it. */
    WAIT_FOR(tl_sessions_count(H.sessions) == 0, "release of the refused session");
}

static void type_text(uint32_t channel, const char *text)
{
    size_t written;
    TL_ASSERT_OK(tl_mux_write(H.relay.mux, channel, TL_STREAM_MAIN, text, strlen(text), &written));
    assert_int_equal(written, strlen(text));
    uv_idle_start(&H.pump, on_pump);
}

static void wait_closed(uint32_t channel)
{
    WAIT_FOR(rch(channel)->closed, "CHANNEL_CLOSE");
}

static void assert_exit_status(uint32_t channel, int status)
{
    struct relay_channel *c = rch(channel);
    if (c->close_flags != TL_CLOSE_HAS_EXIT_STATUS || c->exit_status != status)
        fail_msg("close flags %u status %d signal '%s', expected exit status %d; stderr: %s",
                 c->close_flags, c->exit_status, c->exit_signal, status, rx_text(channel, 1));
    /* EOF comes before CLOSE, as in SSH. */
    assert_true(c->eof);
}

static void assert_exit_signal(uint32_t channel, const char *signal)
{
    struct relay_channel *c = rch(channel);
    if (c->close_flags != TL_CLOSE_HAS_EXIT_SIGNAL || strcmp(c->exit_signal, signal) != 0)
        fail_msg("close flags %u status %d signal '%s', expected signal %s", c->close_flags,
                 c->exit_status, c->exit_signal, signal);
}

/* Reads "pid=N" from the channel's output. */
static pid_t wait_pid(uint32_t channel)
{
    WAIT_FOR(rx_has(channel, 0, "pid=") && strchr(strstr(rx_text(channel, 0), "pid="), '\n'),
             "the process id");
    pid_t pid = (pid_t)atoi(strstr(rx_text(channel, 0), "pid=") + 4);
    assert_true(pid > 1);
    return pid;
}

static void assert_gone(pid_t pid)
{
    errno = 0;
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
}

/* ---- exec ----------------------------------------------------------------------------- */

static void test_exec_sends_output_and_exit_status(void **state)
{
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"echo\",\"hello world\"]}");
    wait_closed(ch);
    assert_exit_status(ch, 0);
    assert_string_equal(rx_text(ch, 0), "hello world\n");
    assert_int_equal(tl_buf_len(rch(ch)->rx[1]), 0);
    assert_activity("G-1: alice is running: echo 'hello world'");
    assert_activity("G-1: alice ran: echo 'hello world' (exit 0)");
    WAIT_FOR(tl_sessions_count(H.sessions) == 0, "release of the session");
}

static void test_exec_reports_a_failing_status(void **state)
{
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"exit 3\"]}");
    wait_closed(ch);
    assert_exit_status(ch, 3);
    assert_activity("G-1: alice ran: sh -c 'exit 3' (exit 3)");
}

static void test_exec_reports_death_by_signal(void **state)
{
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"kill -KILL $$\"]}");
    wait_closed(ch);
    assert_exit_signal(ch, "KILL");
    assert_activity("G-1: alice ran: sh -c 'kill -KILL $$' (signal KILL)");
}

static void test_exec_sends_stderr_on_stream_1(void **state)
{
    uint32_t ch =
        open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"echo out; echo err >&2; exit 0\"]}");
    wait_closed(ch);
    assert_exit_status(ch, 0);
    assert_string_equal(rx_text(ch, 0), "out\n");
    assert_string_equal(rx_text(ch, 1), "err\n");
}

static void test_exec_stdin_round_trips_through_cat(void **state)
{
    /* Larger than the agent's receive window: stdin itself is flow-controlled. */
    size_t len = 3u * 1024u * 1024u + 17u;
    uint8_t *input = malloc(len);
    assert_non_null(input);
    for (size_t i = 0; i < len; i++)
        input[i] = (uint8_t)(i * 7 + i / 251);
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"cat\"]}");
    struct relay_channel *c = rch(ch);
    c->pending = input;
    c->pending_len = len;
    c->eof_after_pending = true;
    send_pending(ch);
    wait_closed(ch);
    assert_exit_status(ch, 0);
    assert_int_equal(tl_buf_len(c->rx[0]), len);
    assert_memory_equal(tl_buf_data(c->rx[0]), input, len);
    free(input);
}

static void test_exec_runs_in_home_with_a_clean_environment(void **state)
{
    assert_int_equal(setenv("TL_TEST_CANARY", "must-not-leak", 1), 0);
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"pwd; env\"]}");
    wait_closed(ch);
    assert_exit_status(ch, 0);
    char expected[4200];
    snprintf(expected, sizeof expected, "%s\n", H.home);
    assert_true(strncmp(rx_text(ch, 0), expected, strlen(expected)) == 0);
    assert_false(rx_has(ch, 0, "CANARY"));
    assert_true(
        rx_has(ch, 0, "\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"));
}

static void test_exec_children_inherit_only_their_stdio(void **state)
{
    /* The agent's own descriptors (its loop, its connection) stay out of the child. */
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"ls /proc/$$/fd\"]}");
    wait_closed(ch);
    assert_exit_status(ch, 0);
    assert_string_equal(rx_text(ch, 0), "0\n1\n2\n");
}

static void test_exec_of_an_unknown_command_says_so(void **state)
{
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"tl-no-such-command\",\"x\"]}");
    wait_closed(ch);
    assert_exit_status(ch, 127);
    assert_true(rx_has(ch, 1, "tl-no-such-command: command not found"));
}

static void test_exec_refuses_bad_argv(void **state)
{
    assert_refused("exec", "{}", TL_EINVAL, "argv");
    assert_refused("exec", "{\"argv\":[]}", TL_EINVAL, "1..64 strings");
    assert_refused("exec", "{\"argv\":\"ls -l\"}", TL_EINVAL, "argv");
    assert_refused("exec", "{\"argv\":[\"ls\",7]}", TL_EINVAL, "argv[1] must be a string");
    assert_refused("exec", "{\"argv\":[\"\"]}", TL_EINVAL, "argv[0] is empty");
    char params[2048];
    size_t len = (size_t)snprintf(params, sizeof params, "{\"argv\":[\"true\"");
    for (int i = 0; i < 64; i++)
        len += (size_t)snprintf(params + len, sizeof params - len, ",\"x\"");
    snprintf(params + len, sizeof params - len, "]}");
    assert_refused("exec", params, TL_EINVAL, "1..64 strings");
    char *long_arg = malloc(4097 + 64);
    assert_non_null(long_arg);
    len = (size_t)snprintf(long_arg, 64, "{\"argv\":[\"echo\",\"");
    memset(long_arg + len, 'a', 4097);
    snprintf(long_arg + len + 4097, 64, "\"]}");
    assert_refused("exec", long_arg, TL_EINVAL, "at most 4096 bytes");
    free(long_arg);
    assert_refused("telnet", "{}", TL_EINVAL, "unknown session type 'telnet'");
}

static void on_drip(uv_timer_t *timer)
{
    /* The relay's reader takes a little at a time. */
    size_t waiting = tl_mux_unconsumed(H.relay.mux, H.drip_channel);
    size_t take = waiting < 16384 ? waiting : 16384;
    if (take > 0)
        TL_ASSERT_OK(tl_mux_consumed(H.relay.mux, H.drip_channel, take));
    uv_idle_start(&H.pump, on_pump);
}

static void test_large_output_arrives_whole_through_a_slow_window(void **state)
{
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"seq\",\"1\",\"1200000\"]}");
    rch(ch)->manual_consume = true;
    H.drip_channel = ch;
    TL_ASSERT_OK(uv_timer_start(&H.drip, on_drip, 1, 1));
    wait_closed(ch);
    uv_timer_stop(&H.drip);
    assert_exit_status(ch, 0);
    /* Everything, in order: the same text seq prints. */
    tl_buf_t *expected = tl_buf_new(PIPE_MAX);
    char line[16];
    for (int i = 1; i <= 1200000; i++) {
        int n = snprintf(line, sizeof line, "%d\n", i);
        TL_ASSERT_OK(tl_buf_put(expected, line, (size_t)n));
    }
    assert_true(tl_buf_len(expected) > 8u * 1024u * 1024u);
    assert_int_equal(tl_buf_len(rch(ch)->rx[0]), tl_buf_len(expected));
    assert_memory_equal(tl_buf_data(rch(ch)->rx[0]), tl_buf_data(expected), tl_buf_len(expected));
    tl_buf_free(expected);
    /* The agent never held more than one read per stream. */
    if (H.held_max > 2 * TL_SESSION_CHUNK)
        fail_msg("held %zu bytes, bound %u", H.held_max, 2 * TL_SESSION_CHUNK);
}

static int setup_small_relay_window(void **state)
{
    (void)state;
    harness_start(256u * 1024u);
    return 0;
}

static void test_relay_closing_stops_the_process(void **state)
{
    uint32_t ch =
        open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"echo pid=$$; exec sleep 1000\"]}");
    pid_t pid = wait_pid(ch);
    TL_ASSERT_OK(tl_mux_close(H.relay.mux, ch, NULL));
    uv_idle_start(&H.pump, on_pump);
    wait_closed(ch);
    WAIT_FOR(tl_sessions_count(H.sessions) == 0, "the process to be stopped and reaped");
    assert_gone(pid);
    assert_activity(
        "G-1: alice ran: sh -c 'echo pid=$$; exec sleep 1000' (closed by the technician)");
}

static void test_sessions_are_listed_by_grant(void **state)
{
    uint32_t ch =
        open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"echo pid=$$; exec sleep 1000\"]}");
    wait_pid(ch);
    json_t *list = tl_sessions_list(H.sessions, "G-1");
    assert_int_equal(json_array_size(list), 1);
    json_t *item = json_array_get(list, 0);
    assert_int_equal(json_integer_value(json_object_get(item, "channel")), rch(ch)->agent_channel);
    assert_string_equal(json_string_value(json_object_get(item, "type")), "exec");
    assert_string_equal(json_string_value(json_object_get(item, "what")),
                        "sh -c 'echo pid=$$; exec sleep 1000'");
    assert_true(json_integer_value(json_object_get(item, "started_ms")) > 0);
    json_decref(list);
    list = tl_sessions_list(H.sessions, "G-2");
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    list = tl_sessions_runbooks(H.sessions);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                        "fails");
    json_decref(list);
}

/* ---- grants and connections --------------------------------------------------------------- */

static void test_end_grant_stops_the_process_and_closes_with_hup(void **state)
{
    uint32_t ch =
        open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"echo pid=$$; exec sleep 1000\"]}");
    uint32_t other = open_confirmed(
        "exec", "{\"grant\":\"G-2\",\"argv\":[\"sh\",\"-c\",\"echo pid=$$; exec sleep 1000\"]}");
    pid_t pid = wait_pid(ch);
    pid_t other_pid = wait_pid(other);
    assert_int_equal(tl_sessions_end_grant(H.sessions, "G-1"), 1);
    assert_int_equal(tl_sessions_end_grant(H.sessions, "G-9"), 0);
    wait_closed(ch);
    assert_exit_signal(ch, "HUP");
    assert_true(rch(ch)->eof);
    WAIT_FOR(tl_sessions_count(H.sessions) == 1, "the process to be stopped and reaped");
    assert_gone(pid);
    /* The other grant's session runs on. */
    assert_false(rch(other)->closed);
    assert_int_equal(kill(other_pid, 0), 0);
    assert_activity("G-1: alice ran: sh -c 'echo pid=$$; exec sleep 1000' (the grant ended)");
    assert_int_equal(tl_sessions_end_grant(H.sessions, "G-1"), 0);
}

static void test_disconnect_stops_every_process(void **state)
{
    uint32_t exec =
        open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"echo pid=$$; exec sleep 1000\"]}");
    uint32_t shell = open_confirmed("shell", "{\"cols\":80,\"rows\":24}");
    pid_t exec_pid = wait_pid(exec);
    type_text(shell, "echo pi''d=$$\n"); /* the echoed line must not match */
    pid_t shell_pid = wait_pid(shell);
    uv_idle_stop(&H.pump);
    tl_sessions_disconnected(H.sessions);
    /* The connection is gone: its muxes are freed at once and never touched again. */
    tl_mux_free(H.agent.mux);
    tl_mux_free(H.relay.mux);
    H.agent.mux = H.relay.mux = NULL;
    WAIT_FOR(tl_sessions_count(H.sessions) == 0, "every process to be stopped and reaped");
    assert_gone(exec_pid);
    assert_gone(shell_pid);
    assert_activity("G-1: alice's shell ended (the connection to the relay was lost)");
}

/* ---- shell and observe -------------------------------------------------------------------- */

static void test_shell_echoes_what_is_typed(void **state)
{
    uint32_t ch = open_confirmed("shell", "{\"term\":\"xterm-256color\",\"cols\":80,\"rows\":24}");
    assert_activity("G-1: alice opened a shell");
    type_text(ch, "echo \"$TERM\" $((6*7))hi; tty\n");
    WAIT_FOR(rx_has(ch, 0, "xterm-256color 42hi"), "the shell's answer");
    WAIT_FOR(rx_has(ch, 0, "/dev/pts/"), "the shell's terminal");
    type_text(ch, "exit 5\n");
    wait_closed(ch);
    assert_exit_status(ch, 5);
    assert_activity("G-1: alice's shell ended (exit 5)");
}

static void test_shell_resize_reaches_the_terminal(void **state)
{
    uint32_t ch = open_confirmed("shell", "{\"cols\":80,\"rows\":24}");
    type_text(ch, "stty size\n");
    WAIT_FOR(rx_has(ch, 0, "24 80"), "the first size");
    tl_sessions_resize(H.sessions, rch(ch)->agent_channel, 132, 43);
    tl_buf_reset(rch(ch)->rx[0]);
    type_text(ch, "stty size\n");
    WAIT_FOR(rx_has(ch, 0, "43 132"), "the new size");
    /* Out-of-range sizes and other channels are ignored. */
    tl_sessions_resize(H.sessions, rch(ch)->agent_channel, 0, 50);
    tl_sessions_resize(H.sessions, rch(ch)->agent_channel, 1001, 50);
    tl_sessions_resize(H.sessions, rch(ch)->agent_channel + 5, 10, 10);
    tl_buf_reset(rch(ch)->rx[0]);
    type_text(ch, "stty size; echo done$((1+1))\n");
    WAIT_FOR(rx_has(ch, 0, "done2"), "the size again");
    assert_true(rx_has(ch, 0, "43 132"));
}

/* session.signal: only a live session's process group, only a signal of the list. */
static void test_signal_reaches_only_its_own_process(void **state)
{
    (void)state;
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"echo up; exec sleep 100\"]}");
    WAIT_FOR(rx_has(ch, 0, "up"), "the command to start");
    uint32_t theirs = rch(ch)->agent_channel;
    assert_int_equal(tl_sessions_signal(H.sessions, theirs + 5, SIGTERM), TL_ENOTFOUND);
    assert_int_equal(tl_sessions_signal(H.sessions, theirs, SIGSEGV), TL_EINVAL);
    assert_int_equal(tl_sessions_signal(H.sessions, theirs, 0), TL_EINVAL);
    assert_false(rch(ch)->closed);
    assert_int_equal(tl_sessions_signal(H.sessions, theirs, SIGTERM), 0);
    wait_closed(ch);
    assert_exit_signal(ch, "TERM");
    /* Gone: nothing left to signal. */
    assert_int_equal(tl_sessions_signal(H.sessions, theirs, SIGTERM), TL_ENOTFOUND);
}

/* exec with "pty": a terminal of that size, output merged on stream 0, Ctrl-C is SIGINT. */
static void test_exec_with_pty_runs_on_a_terminal(void **state)
{
    (void)state;
    uint32_t ch = open_confirmed("exec", "{\"argv\":[\"sh\",\"-c\",\"tty; stty size; echo "
                                         "oops >&2; echo term=$TERM; exec sleep 100\"],"
                                         "\"pty\":{\"term\":\"vt100\",\"cols\":100,\"rows\":30}}");
    WAIT_FOR(rx_has(ch, 0, "term=vt100"), "the command's output");
    assert_true(rx_has(ch, 0, "/dev/pts/"));
    assert_true(rx_has(ch, 0, "30 100"));
    assert_true(rx_has(ch, 0, "oops"));
    assert_int_equal(tl_buf_len(rch(ch)->rx[1]), 0);
    tl_sessions_resize(H.sessions, rch(ch)->agent_channel, 132, 43);
    type_text(ch, "\x03");
    wait_closed(ch);
    assert_exit_signal(ch, "INT");
}

static void test_exec_refuses_a_bad_pty(void **state)
{
    (void)state;
    assert_refused("exec", "{\"argv\":[\"tty\"],\"pty\":\"xterm\"}", TL_EINVAL, "\"pty\"");
    assert_refused("exec", "{\"argv\":[\"tty\"],\"pty\":{\"term\":\"x;y\"}}", TL_EINVAL,
                   "\"term\"");
    assert_refused("exec", "{\"argv\":[\"tty\"],\"pty\":{\"term\":\"\"}}", TL_EINVAL, "\"term\"");
    assert_refused("exec", "{\"argv\":[\"tty\"],\"pty\":{\"cols\":0}}", TL_EINVAL, "\"cols\"");
    assert_refused("exec", "{\"argv\":[\"tty\"],\"pty\":{\"rows\":1001}}", TL_EINVAL, "\"rows\"");
    assert_refused("exec", "{\"argv\":[\"tty\"],\"pty\":{\"cols\":\"80\"}}", TL_EINVAL, "\"cols\"");
}

/* Both ends announced CHANNEL_INPUT_ACK in their HELLOs. */
static int setup_with_input_acks(void **state)
{
    (void)state;
    harness_start(TL_MUX_DEFAULT_WINDOW);
    tl_mux_set_features(H.relay.mux, TL_FEATURE_INPUT_ACK);
    tl_mux_set_features(H.agent.mux, TL_FEATURE_INPUT_ACK);
    return 0;
}

static void assert_ack_run(uint32_t channel, size_t i, bool hidden, size_t bytes)
{
    struct relay_channel *c = rch(channel);
    for (size_t k = 0; k < c->ack_run_count; k++)
        print_message("ack run %zu: %s %u\n", k, c->ack_runs[k].hidden ? "hidden" : "visible",
                      c->ack_runs[k].bytes);
    assert_true(i < c->ack_run_count);
    assert_int_equal(c->ack_runs[i].hidden, hidden);
    assert_int_equal(c->ack_runs[i].bytes, bytes);
}

static void test_shell_says_which_input_the_terminal_hid(void **state)
{
    uint32_t ch = open_confirmed("shell", "{\"cols\":80,\"rows\":24}");
    /* A line typed at the prompt, echoed: visible. */
    static const char first[] = "stty -echo; echo ready-$((1+1)); read secret; stty echo; "
                                "echo got-${#secret}\n";
    type_text(ch, first);
    WAIT_FOR(rx_has(ch, 0, "ready-2"), "the terminal without echo");
    /* Now the shell reads a line with echo off, as a password prompt does. */
    static const char secret[] = "s3cr3t-pw\n";
    type_text(ch, secret);
    WAIT_FOR(rx_has(ch, 0, "got-9"), "the secret read");
    static const char after[] = "echo after-$((2+2))\n";
    type_text(ch, after);
    WAIT_FOR(rx_has(ch, 0, "after-4"), "the command after");
    WAIT_FOR(rch(ch)->acked == strlen(first) + strlen(secret) + strlen(after),
             "every byte of input acknowledged");
    assert_int_equal(rch(ch)->ack_run_count, 3);
    assert_ack_run(ch, 0, false, strlen(first));
    assert_ack_run(ch, 1, true, strlen(secret));
    assert_ack_run(ch, 2, false, strlen(after));
    assert_false(rx_has(ch, 0, "s3cr3t"));
    type_text(ch, "exit\n");
    wait_closed(ch);

    /* An exec channel has no terminal: its input is never acknowledged. */
    uint32_t cat = open_confirmed("exec", "{\"argv\":[\"cat\"]}");
    type_text(cat, "plain\n");
    WAIT_FOR(rx_has(cat, 0, "plain"), "cat's copy");
    TL_ASSERT_OK(tl_mux_eof(H.relay.mux, cat));
    wait_closed(cat);
    assert_int_equal(rch(cat)->acked, 0);
}

static void test_shell_refuses_bad_parameters(void **state)
{
    assert_refused("shell", "{\"cols\":0}", TL_EINVAL, "\"cols\" must be a whole number");
    assert_refused("shell", "{\"rows\":1001}", TL_EINVAL, "\"rows\"");
    assert_refused("shell", "{\"rows\":\"24\"}", TL_EINVAL, "\"rows\"");
    assert_refused("shell", "{\"term\":\"xterm; rm\"}", TL_EINVAL, "\"term\"");
    assert_refused("shell", "{\"term\":7}", TL_EINVAL, "\"term\"");
}

static void test_observers_see_the_shells_of_their_ticket(void **state)
{
    uint32_t shell = open_confirmed("shell", "{\"cols\":80,\"rows\":24}");
    uint32_t watcher =
        open_confirmed("observe", "{\"grant\":\"G-2\",\"technician\":\"bob\",\"role\":\"tier1\"}");
    uint32_t stranger = open_confirmed(
        "observe", "{\"grant\":\"G-3\",\"ticket\":\"T-9\",\"technician\":\"carol\"}");
    assert_activity("G-2: bob is observing");
    type_text(shell, "echo $((6*7))seen\n");
    WAIT_FOR(rx_has(watcher, 0, "42seen"), "the observer's copy");
    assert_true(rx_has(shell, 0, "42seen"));
    assert_int_equal(tl_buf_len(rch(stranger)->rx[0]), 0);
    /* Keystrokes from an observer go nowhere. */
    type_text(watcher, "echo $((5*5))nope\n");
    type_text(shell, "echo $((3*3))after\n");
    WAIT_FOR(rx_has(shell, 0, "9after"), "the shell's answer");
    assert_false(rx_has(shell, 0, "25nope"));
    /* The shell ends; the observer stays until its grant ends. */
    type_text(shell, "exit\n");
    wait_closed(shell);
    assert_false(rch(watcher)->closed);
    assert_int_equal(tl_sessions_end_grant(H.sessions, "G-2"), 1);
    wait_closed(watcher);
    assert_exit_signal(watcher, "HUP");
    assert_activity("G-2: bob stopped observing (the grant ended)");
}

static int setup_tiny_relay_window(void **state)
{
    (void)state;
    harness_start(64u * 1024u);
    return 0;
}

static void test_an_observer_without_window_misses_output_but_holds_nothing_back(void **state)
{
    uint32_t shell = open_confirmed("shell", "{\"cols\":80,\"rows\":24}");
    uint32_t watcher = open_confirmed("observe", "{\"grant\":\"G-2\",\"technician\":\"bob\"}");
    /* The observer's reader never reads: its window stays at 64 KiB. */
    rch(watcher)->manual_consume = true;
    type_text(shell, "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo end$((2+2))\n");
    WAIT_FOR(rx_has(shell, 0, "end4"), "the shell's output");
    size_t xs = 0;
    tl_buf_t *rx = rch(shell)->rx[0];
    for (size_t i = 0; i < tl_buf_len(rx); i++)
        xs += tl_buf_data(rx)[i] == 'x';
    assert_true(xs >= 1000000);
    assert_true(tl_buf_len(rch(watcher)->rx[0]) <= 64u * 1024u);
    assert_true(tl_buf_len(rch(watcher)->rx[0]) > 0);
    if (H.held_max > 2 * TL_SESSION_CHUNK)
        fail_msg("held %zu bytes, bound %u", H.held_max, 2 * TL_SESSION_CHUNK);
}

/* ---- runbook and diag --------------------------------------------------------------------- */

static void test_runbook_gets_its_parameters_and_nothing_else(void **state)
{
    assert_int_equal(setenv("TL_TEST_CANARY", "must-not-leak", 1), 0);
    uint32_t ch = open_confirmed(
        "runbook",
        "{\"role\":\"tier1\",\"name\":\"print-env\",\"args\":{\"GREETING\":\"hello world\"}}");
    wait_closed(ch);
    assert_exit_status(ch, 0);
    char expected[8][4200];
    int n = 0;
    snprintf(expected[n++], sizeof expected[0], "HOME=%s", H.home);
    snprintf(expected[n++], sizeof expected[0], "LANG=C.UTF-8");
    snprintf(expected[n++], sizeof expected[0],
             "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    snprintf(expected[n++], sizeof expected[0], "TL_AGENT_PID=%d", (int)getpid());
    snprintf(expected[n++], sizeof expected[0], "TL_PARAM_GREETING=hello world");
    char *text = strdup(rx_text(ch, 0));
    int found = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        bool known = strncmp(line, "PWD=", 4) == 0; /* the shell sets its own */
        for (int i = 0; i < n; i++)
            if (strcmp(line, expected[i]) == 0) {
                known = true;
                found++;
            }
        if (!known)
            fail_msg("unexpected variable in the runbook's environment: %s", line);
    }
    free(text);
    assert_int_equal(found, n);
    assert_activity("G-1: alice is running runbook print-env GREETING=hello world");
    assert_activity("G-1: alice ran runbook print-env GREETING=hello world (exit 0)");
}

static void test_runbook_requests_are_checked_before_anything_runs(void **state)
{
    assert_refused("runbook", "{\"name\":\"print-env\",\"args\":{\"GREETING\":\"BAD!\"}}",
                   TL_EINVAL, "parameter GREETING='BAD!' does not match ^[a-z ]{1,20}$");
    assert_refused("runbook", "{\"name\":\"print-env\",\"args\":{}}", TL_EINVAL,
                   "needs parameter GREETING");
    assert_refused("runbook",
                   "{\"name\":\"print-env\",\"args\":{\"GREETING\":\"hi\",\"PATH\":\"/tmp\"}}",
                   TL_EINVAL, "has no parameter 'PATH'");
    assert_refused("runbook", "{\"name\":\"format-disk\"}", TL_ENOTFOUND,
                   "no runbook named 'format-disk'");
    assert_refused("runbook", "{\"args\":{}}", TL_EINVAL, "\"name\"");
    assert_refused("runbook", "{\"role\":\"tier1\",\"name\":\"fails\"}", TL_EDENIED,
                   "needs role tier2 or above, not tier1");
    assert_refused("runbook", "{\"role\":\"auditor\",\"name\":\"fails\"}", TL_EDENIED,
                   "may not run runbooks");
    char marker[128];
    snprintf(marker, sizeof marker, "%s/print-env-ran", H.dir);
    assert_int_equal(access(marker, F_OK), -1);
}

static void test_runbook_failure_reaches_the_technician(void **state)
{
    uint32_t ch = open_confirmed("runbook", "{\"name\":\"fails\"}");
    wait_closed(ch);
    assert_exit_status(ch, 4);
    assert_string_equal(rx_text(ch, 1), "result: FAILED: it broke\n");
    assert_activity("G-1: alice ran runbook fails (exit 4)");
}

static void test_runbook_is_stopped_at_its_timeout(void **state)
{
    uint32_t ch = open_confirmed("runbook", "{\"name\":\"sleeper\"}");
    wait_closed(ch);
    assert_exit_signal(ch, "TERM");
    assert_true(rx_has(ch, 0, "sleeping"));
    if (!rx_has(ch, 1, "runbook sleeper timed out after 0m01s; stopping it"))
        fail_msg("stderr: %s", rx_text(ch, 1));
    assert_activity("G-1: alice ran runbook sleeper (timed out, signal TERM)");
}

static void test_diag_runs_the_agent_and_streams_its_report(void **state)
{
    uint32_t ch = open_confirmed("diag", "{}");
    wait_closed(ch);
    assert_exit_status(ch, 0);
    json_error_t error;
    json_t *report = json_loads(rx_text(ch, 0), 0, &error);
    if (report == NULL)
        fail_msg("diag output is not JSON (%s): %s", error.text, rx_text(ch, 0));
    assert_string_equal(json_string_value(json_object_get(report, "argv")),
                        "diag --json --relay 127.0.0.1:7000");
    json_decref(report);
    assert_activity("G-1: alice is fetching diagnostics");
    assert_activity("G-1: alice fetched diagnostics (exit 0)");
}

/* ---- construction ------------------------------------------------------------------------- */

static void test_new_reports_a_missing_catalogue(void **state)
{
    uv_loop_t loop;
    TL_ASSERT_OK(uv_loop_init(&loop));
    tl_sessions_config_t config = {.runbooks_dir = "/nonexistent/runbooks"};
    int err = 0;
    assert_null(tl_sessions_new(&loop, &config, NULL, NULL, &err));
    TL_ASSERT_RC(-ENOENT, err);
    assert_null(tl_sessions_new(NULL, &config, NULL, NULL, &err));
    TL_ASSERT_RC(TL_EINVAL, err);
    /* Without a directory the shipped catalogue is used. */
    tl_sessions_t *sessions = tl_sessions_new(&loop, NULL, NULL, NULL, &err);
    assert_non_null(sessions);
    json_t *list = tl_sessions_runbooks(sessions);
    char shipped_dir[4096];
    TL_ASSERT_OK(tl_runbooks_default_dir(shipped_dir, sizeof shipped_dir));
    tl_runbooks_t *shipped = tl_runbooks_load(shipped_dir, &err);
    assert_non_null(shipped);
    assert_true(tl_runbooks_count(shipped) >= 7);
    assert_int_equal(json_array_size(list), tl_runbooks_count(shipped));
    tl_runbooks_free(shipped);
    json_decref(list);
    tl_sessions_free(sessions);
    tl_sessions_free(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    TL_ASSERT_OK(uv_loop_close(&loop));
}

/* ---- file channels (agent/files_channel.h) -------------------------------------------------- */

/* A file channel's params for path (under the test's folder) and direction. */
static const char *file_params(const char *name, const char *direction, bool push_allowed)
{
    static char params[512];
    snprintf(params, sizeof params, "{\"path\":\"%s/%s\",\"direction\":\"%s\",\"push_allowed\":%s}",
             H.dir, name, direction, push_allowed ? "true" : "false");
    return params;
}

static bool temporary_left(void)
{
    char command[300];
    snprintf(command, sizeof command, "ls -a '%s' | grep -q '^\\.tierline-push'", H.dir);
    return system(command) == 0;
}

static void test_file_pull_sends_the_whole_file_in_order(void **state)
{
    size_t size = 700u * 1024u + 5u; /* more than the window's first half, chunks of 64 KiB */
    uint8_t *bytes = malloc(size);
    assert_non_null(bytes);
    for (size_t i = 0; i < size; i++)
        bytes[i] = (uint8_t)(i * 7u + i / 251u);
    char path[300];
    snprintf(path, sizeof path, "%s/pulled.bin", H.dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
    uint32_t ch = open_confirmed("file", file_params("pulled.bin", "pull", false));
    wait_closed(ch);
    assert_exit_status(ch, 0);
    assert_int_equal(tl_buf_len(rch(ch)->rx[0]), size);
    assert_memory_equal(tl_buf_data(rch(ch)->rx[0]), bytes, size);
    free(bytes);
    /* An empty file is an EOF at once. */
    write_file("empty", "", 0644);
    ch = open_confirmed("file", file_params("empty", "pull", false));
    wait_closed(ch);
    assert_exit_status(ch, 0);
    assert_int_equal(tl_buf_len(rch(ch)->rx[0]), 0);
}

static void test_file_push_is_put_in_place_only_at_the_end(void **state)
{
    write_file("target.conf", "the old contents\n", 0644);
    uint32_t ch = open_confirmed("file", file_params("target.conf", "push", true));
    type_text(ch, "the new ");
    type_text(ch, "contents\n");
    WAIT_FOR(temporary_left(), "the bytes written beside the name");
    char path[300];
    snprintf(path, sizeof path, "%s/target.conf", H.dir);
    char text[64] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "the old contents\n");
    TL_ASSERT_OK(tl_mux_eof(H.relay.mux, ch));
    uv_idle_start(&H.pump, on_pump);
    wait_closed(ch);
    assert_exit_status(ch, 0);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_string_equal(text, "the new contents\n");
    assert_false(temporary_left());
}

static void test_file_push_closed_early_leaves_nothing(void **state)
{
    uint32_t ch = open_confirmed("file", file_params("never.conf", "push", true));
    type_text(ch, "half of a file");
    WAIT_FOR(temporary_left(), "the bytes written beside the name");
    TL_ASSERT_OK(tl_mux_close(H.relay.mux, ch, NULL));
    uv_idle_start(&H.pump, on_pump);
    wait_closed(ch);
    assert_false(temporary_left());
    char path[300];
    snprintf(path, sizeof path, "%s/never.conf", H.dir);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_file_channels_refuse_what_the_grant_or_the_machine_does_not_allow(void **state)
{
    write_file("plain", "text\n", 0644);
    char path[300], target[300];
    snprintf(path, sizeof path, "%s/fifo", H.dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(path, sizeof path, "%s/link", H.dir);
    snprintf(target, sizeof target, "%s/plain", H.dir);
    assert_int_equal(symlink(target, path), 0);
    assert_refused("file", file_params("fifo", "pull", false), TL_EINVAL, "not a regular file");
    assert_refused("file", file_params("link", "pull", false), TL_EDENIED, "symbolic link");
    assert_refused("file", file_params("link", "push", true), TL_EDENIED, "symbolic link");
    assert_refused("file", file_params("missing", "pull", false), TL_ENOTFOUND, "no such file");
    assert_refused("file", file_params("plain", "push", false), TL_EDENIED,
                   "copying from this machine only");
    assert_refused("file", file_params("plain", "both", true), TL_EINVAL, "\"direction\"");
    assert_refused("file", "{\"path\":\"relative/path\",\"direction\":\"pull\"}", TL_EINVAL,
                   "absolute, normalised");
    assert_refused("file", file_params("a/../plain", "pull", false), TL_EINVAL,
                   "absolute, normalised");
    assert_false(temporary_left());
}

#define SESSION_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define SMALL_WINDOW_TEST(name)                                                                    \
    cmocka_unit_test_setup_teardown(name, setup_small_relay_window, teardown)
#define TINY_WINDOW_TEST(name)                                                                     \
    cmocka_unit_test_setup_teardown(name, setup_tiny_relay_window, teardown)

static const struct CMUnitTest tests[] = {
    SESSION_TEST(test_exec_sends_output_and_exit_status),
    SESSION_TEST(test_file_pull_sends_the_whole_file_in_order),
    SESSION_TEST(test_file_push_is_put_in_place_only_at_the_end),
    SESSION_TEST(test_file_push_closed_early_leaves_nothing),
    SESSION_TEST(test_file_channels_refuse_what_the_grant_or_the_machine_does_not_allow),
    SESSION_TEST(test_exec_reports_a_failing_status),
    SESSION_TEST(test_exec_reports_death_by_signal),
    SESSION_TEST(test_exec_sends_stderr_on_stream_1),
    SESSION_TEST(test_exec_stdin_round_trips_through_cat),
    SESSION_TEST(test_exec_runs_in_home_with_a_clean_environment),
    SESSION_TEST(test_exec_children_inherit_only_their_stdio),
    SESSION_TEST(test_exec_of_an_unknown_command_says_so),
    SESSION_TEST(test_exec_refuses_bad_argv),
    SMALL_WINDOW_TEST(test_large_output_arrives_whole_through_a_slow_window),
    SESSION_TEST(test_relay_closing_stops_the_process),
    SESSION_TEST(test_sessions_are_listed_by_grant),
    SESSION_TEST(test_end_grant_stops_the_process_and_closes_with_hup),
    SESSION_TEST(test_disconnect_stops_every_process),
    SESSION_TEST(test_shell_echoes_what_is_typed),
    SESSION_TEST(test_shell_resize_reaches_the_terminal),
    SESSION_TEST(test_signal_reaches_only_its_own_process),
    SESSION_TEST(test_exec_with_pty_runs_on_a_terminal),
    SESSION_TEST(test_exec_refuses_a_bad_pty),
    SESSION_TEST(test_shell_refuses_bad_parameters),
    cmocka_unit_test_setup_teardown(test_shell_says_which_input_the_terminal_hid,
                                    setup_with_input_acks, teardown),
    SESSION_TEST(test_observers_see_the_shells_of_their_ticket),
    TINY_WINDOW_TEST(test_an_observer_without_window_misses_output_but_holds_nothing_back),
    SESSION_TEST(test_runbook_gets_its_parameters_and_nothing_else),
    SESSION_TEST(test_runbook_requests_are_checked_before_anything_runs),
    SESSION_TEST(test_runbook_failure_reaches_the_technician),
    SESSION_TEST(test_runbook_is_stopped_at_its_timeout),
    SESSION_TEST(test_diag_runs_the_agent_and_streams_its_report),
    cmocka_unit_test(test_new_reports_a_missing_catalogue),
};

TL_TEST_MAIN(tests)
