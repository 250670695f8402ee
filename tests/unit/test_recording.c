/*
 * Terminal recordings (relay/sessions/recording.c) on a real loop in a temporary
 * directory: what lands on disk is read back with zlib and jansson, as a
 * player would read it.
 */
#include "tl_test.h"

#include "proto/hash.h"
#include "relay/sessions/recording.h"

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct fixture {
    char dir[64];
    char path[128];
    char part[160];
    uv_loop_t loop;
};

struct outcome {
    int calls;
    int status;
    char sha256[TL_SHA256_HEX_LEN];
    uint64_t size;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tl-recording-XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/T-42.cast.gz", fx->dir);
    snprintf(fx->part, sizeof fx->part, "%s.part", fx->path);
    if (uv_loop_init(&fx->loop) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void close_walk(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    uv_walk(&fx->loop, close_walk, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&fx->loop);
    nftw(fx->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return rc == 0 ? 0 : -1;
}

/* ---- running the loop, bounded ------------------------------------------------------------ */

static void on_deadline(uv_timer_t *timer)
{
    *(bool *)timer->data = true;
}

/* Runs the loop until done(arg) or timeout_ms of loop time; returns done(arg). */
static bool run_until(uv_loop_t *loop, bool (*done)(void *), void *arg, uint64_t timeout_ms)
{
    bool timed_out = false;
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    deadline.data = &timed_out;
    uv_timer_start(&deadline, on_deadline, timeout_ms, 0);
    while (!done(arg) && !timed_out)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return done(arg);
}

static void on_done(void *data, int status, const char *sha256, uint64_t size)
{
    struct outcome *outcome = data;
    outcome->calls++;
    outcome->status = status;
    outcome->size = size;
    if (sha256 != NULL)
        snprintf(outcome->sha256, sizeof outcome->sha256, "%s", sha256);
}

static bool outcome_in(void *arg)
{
    return ((struct outcome *)arg)->calls > 0;
}

static struct outcome finish(struct fixture *fx, tl_recording_t *rec)
{
    struct outcome outcome = {0};
    tl_recording_finish(rec, on_done, &outcome);
    assert_true(run_until(&fx->loop, outcome_in, &outcome, 30000));
    assert_int_equal(outcome.calls, 1);
    return outcome;
}

static tl_recording_t *open_recording(struct fixture *fx, const char *term, const char *title)
{
    tl_recording_info_t info = {
        .cols = 100, .rows = 30, .term = term, .title = title, .start_ms = 1764582000123};
    int err = 1;
    tl_recording_t *rec = tl_recording_open(&fx->loop, fx->path, &info, &err);
    if (rec == NULL)
        fail_msg("open failed: %s", tl_strerror(err));
    TL_ASSERT_OK(err);
    return rec;
}

/* ---- reading a recording back ------------------------------------------------------------- */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t size = 0, used = 0;
    uint8_t *data = NULL;
    for (;;) {
        if (used == size) {
            size = size ? size * 2 : 65536;
            data = realloc(data, size);
            assert_non_null(data);
        }
        size_t n = fread(data + used, 1, size - used, f);
        if (n == 0)
            break;
        used += n;
    }
    fclose(f);
    *len = used;
    return data;
}

/*
 * Gunzips what the file holds so far. *complete says whether the gzip
 * stream ended (a finished recording) or the bytes simply ran out (a
 * sync-flushed prefix). The text is NUL-terminated.
 */
static char *gunzip_file(const char *path, size_t *out_len, bool *complete)
{
    size_t len = 0;
    uint8_t *gz = read_file(path, &len);
    if (gz == NULL)
        return NULL;
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    size_t size = 1 << 20, used = 0;
    char *text = malloc(size);
    assert_non_null(text);
    zs.next_in = gz;
    zs.avail_in = (uInt)len;
    int rc;
    do {
        if (size - used < 65536) {
            size *= 2;
            text = realloc(text, size);
            assert_non_null(text);
        }
        zs.next_out = (Bytef *)text + used;
        zs.avail_out = (uInt)(size - used - 1);
        rc = inflate(&zs, Z_NO_FLUSH);
        used = size - 1 - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            fail_msg("%s: inflate failed (%d) after %zu bytes", path, rc, used);
    } while (rc == Z_OK && (zs.avail_in > 0 || zs.avail_out == 0));
    if (complete != NULL)
        *complete = rc == Z_STREAM_END && zs.avail_in == 0;
    inflateEnd(&zs);
    free(gz);
    text[used] = '\0';
    *out_len = used;
    return text;
}

struct cast {
    json_t *header;
    json_t *events; /* array of [time, code, text] */
    char *text;     /* the raw lines */
};

/* Parses every complete line; each must be JSON, the first the header, the rest events. */
static struct cast parse_cast(char *text)
{
    struct cast cast = {NULL, json_array(), text};
    char *line = text;
    double last_time = 0;
    while (*line != '\0') {
        char *end = strchr(line, '\n');
        if (end == NULL)
            break; /* a line still being written */
        json_error_t error;
        json_t *value = json_loadb(line, (size_t)(end - line), 0, &error);
        if (value == NULL)
            fail_msg("line is not JSON (%s): %.*s", error.text, (int)(end - line), line);
        if (cast.header == NULL) {
            assert_true(json_is_object(value));
            cast.header = value;
        } else {
            assert_true(json_is_array(value) && json_array_size(value) == 3);
            assert_true(json_is_number(json_array_get(value, 0)));
            assert_true(json_is_string(json_array_get(value, 1)));
            assert_true(json_is_string(json_array_get(value, 2)));
            double time = json_number_value(json_array_get(value, 0));
            if (time < last_time)
                fail_msg("event time %f before %f", time, last_time);
            last_time = time;
            /* Printed as seconds with six decimals, as asciinema writes them. */
            char *digits = line + 1;
            size_t whole = strspn(digits, "0123456789");
            if (whole == 0 || digits[whole] != '.' || strspn(digits + whole + 1, "0123456789") != 6)
                fail_msg("time not printed as N.NNNNNN: %.*s", (int)(end - line), line);
            json_array_append_new(cast.events, value);
        }
        line = end + 1;
    }
    return cast;
}

static void cast_free(struct cast *cast)
{
    json_decref(cast->header);
    json_decref(cast->events);
    free(cast->text);
}

static struct cast read_cast(const char *path, bool expect_complete)
{
    size_t len;
    bool complete;
    char *text = gunzip_file(path, &len, &complete);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    if (expect_complete && !complete)
        fail_msg("%s: the gzip stream does not end", path);
    return parse_cast(text);
}

static const char *event_code(const struct cast *cast, size_t i)
{
    return json_string_value(json_array_get(json_array_get(cast->events, i), 1));
}

static const char *event_text(const struct cast *cast, size_t i)
{
    return json_string_value(json_array_get(json_array_get(cast->events, i), 2));
}

static double event_time(const struct cast *cast, size_t i)
{
    return json_number_value(json_array_get(json_array_get(cast->events, i), 0));
}

#define ASSERT_EVENT(cast, i, code, text)                                                          \
    do {                                                                                           \
        if ((i) >= json_array_size((cast)->events))                                                \
            fail_msg("event %zu missing; there are %zu", (size_t)(i),                              \
                     json_array_size((cast)->events));                                             \
        assert_string_equal(event_code((cast), (i)), (code));                                      \
        assert_string_equal(event_text((cast), (i)), (text));                                      \
    } while (0)

static void assert_end_marker(const struct cast *cast, const char *text)
{
    size_t count = json_array_size(cast->events);
    assert_true(count > 0);
    ASSERT_EVENT(cast, count - 1, "m", text);
}

/* ---- cases -------------------------------------------------------------------------------- */

static void test_header_and_events_round_trip(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, "xterm-256color", "T-42 alice shell G-3");
    assert_true(exists(fx->part));
    TL_ASSERT_OK(tl_recording_output(rec, "hello\r\n", 7));
    TL_ASSERT_OK(tl_recording_input(rec, "ls -l \"x\"\r", 10));
    TL_ASSERT_OK(tl_recording_resize(rec, 132, 43));
    static const char colored[] = "\x1b[31mred\x1b[0m\tbye\\";
    TL_ASSERT_OK(tl_recording_output(rec, colored, sizeof colored - 1));
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);

    struct cast cast = read_cast(fx->path, true);
    json_t *h = cast.header;
    assert_int_equal(json_integer_value(json_object_get(h, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(h, "width")), 100);
    assert_int_equal(json_integer_value(json_object_get(h, "height")), 30);
    assert_int_equal(json_integer_value(json_object_get(h, "timestamp")), 1764582000);
    assert_string_equal(json_string_value(json_object_get(h, "title")), "T-42 alice shell G-3");
    assert_string_equal(json_string_value(json_object_get(json_object_get(h, "env"), "TERM")),
                        "xterm-256color");
    assert_int_equal(json_array_size(cast.events), 5);
    ASSERT_EVENT(&cast, 0, "o", "hello\r\n");
    ASSERT_EVENT(&cast, 1, "i", "ls -l \"x\"\r");
    ASSERT_EVENT(&cast, 2, "r", "132x43");
    ASSERT_EVENT(&cast, 3, "o", "\x1b[31mred\x1b[0m\tbye\\");
    assert_end_marker(&cast, "end dropped_events=0 dropped_bytes=0");
    /* Every event on its own line: control characters are escaped, not raw. */
    assert_null(strchr(cast.text, '\x1b'));
    assert_false(exists(fx->part));
    cast_free(&cast);
}

static void test_header_without_size_term_or_title(void **state)
{
    struct fixture *fx = *state;
    tl_recording_info_t info = {0};
    int err;
    tl_recording_t *rec = tl_recording_open(&fx->loop, fx->path, &info, &err);
    assert_non_null(rec);
    TL_ASSERT_OK(finish(fx, rec).status);
    struct cast cast = read_cast(fx->path, true);
    /* A player needs a size: a terminal that did not say gets 80x24. */
    assert_int_equal(json_integer_value(json_object_get(cast.header, "width")), 80);
    assert_int_equal(json_integer_value(json_object_get(cast.header, "height")), 24);
    assert_null(json_object_get(cast.header, "title"));
    assert_null(json_object_get(cast.header, "env"));
    assert_int_equal(json_array_size(cast.events), 1);
    cast_free(&cast);
}

static void test_finish_reports_hash_and_size_of_file(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, "vt100", "hash");
    for (int i = 0; i < 2000; i++) {
        char text[64];
        int len = snprintf(text, sizeof text, "line %d of some output\r\n", i);
        TL_ASSERT_OK(tl_recording_output(rec, text, (size_t)len));
    }
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);
    size_t len;
    uint8_t *data = read_file(fx->path, &len);
    assert_non_null(data);
    char hex[TL_SHA256_HEX_LEN];
    TL_ASSERT_OK(tl_sha256_hex(data, len, hex));
    assert_string_equal(outcome.sha256, hex);
    assert_int_equal(outcome.size, len);
    assert_true(len > 18 && data[0] == 0x1f && data[1] == 0x8b); /* gzip */
    free(data);
    assert_false(exists(fx->part));
    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 2001);
    ASSERT_EVENT(&cast, 1999, "o", "line 1999 of some output\r\n");
    cast_free(&cast);
}

static void test_split_utf8_is_joined(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, NULL);
    TL_ASSERT_OK(tl_recording_output(rec, "caf\xc3", 4));
    TL_ASSERT_OK(tl_recording_output(rec, "\xa9!", 2));
    /* U+1F600 in three chunks: the first two hold no whole character, so no event. */
    TL_ASSERT_OK(tl_recording_output(rec, "\xf0", 1));
    TL_ASSERT_OK(tl_recording_output(rec, "\x9f\x98", 2));
    TL_ASSERT_OK(tl_recording_output(rec, "\x80 ok", 4));
    /* Each stream keeps its own unfinished character. */
    TL_ASSERT_OK(tl_recording_output(rec, "\xe2\x82", 2));
    TL_ASSERT_OK(tl_recording_input(rec, "\xc3", 1));
    TL_ASSERT_OK(tl_recording_input(rec, "\xb1", 1));
    TL_ASSERT_OK(tl_recording_output(rec, "\xac", 1));
    TL_ASSERT_OK(finish(fx, rec).status);
    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 6);
    ASSERT_EVENT(&cast, 0, "o", "caf");
    ASSERT_EVENT(&cast, 1, "o", "\xc3\xa9!");
    ASSERT_EVENT(&cast, 2, "o", "\xf0\x9f\x98\x80 ok");
    ASSERT_EVENT(&cast, 3, "i", "\xc3\xb1");
    ASSERT_EVENT(&cast, 4, "o", "\xe2\x82\xac");
    cast_free(&cast);
}

#define FFFD "\xef\xbf\xbd"

static void test_invalid_bytes_become_replacement_characters(void **state)
{
    struct fixture *fx = *state;
    /* The title is network text too. */
    tl_recording_t *rec = open_recording(fx, "x\xfft", "bad \xff \"title\"\n");
    static const char bad[] = "a\xff"
                              "b\xc0\xaf"
                              "c\xed\xa0\x80"
                              "d\x80"
                              "e\xe2\x82"
                              "Af\xf4\x90\x80\x80"
                              "g\xf8";
    TL_ASSERT_OK(tl_recording_output(rec, bad, sizeof bad - 1));
    TL_ASSERT_OK(tl_recording_input(rec, "\xfe", 1));
    /* A character cut off by the end of the session is replaced, not lost. */
    TL_ASSERT_OK(tl_recording_output(rec, "end\xe2\x82", 5));
    TL_ASSERT_OK(finish(fx, rec).status);
    struct cast cast = read_cast(fx->path, true);
    assert_string_equal(json_string_value(json_object_get(cast.header, "title")),
                        "bad " FFFD " \"title\"\n");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(cast.header, "env"), "TERM")),
        "x" FFFD "t");
    assert_int_equal(json_array_size(cast.events), 5);
    /* One U+FFFD per maximal invalid subpart, as Unicode (and Python's "replace") do it. */
    ASSERT_EVENT(&cast, 0, "o",
                 "a" FFFD "b" FFFD FFFD "c" FFFD FFFD FFFD "d" FFFD "e" FFFD
                 "Af" FFFD FFFD FFFD FFFD "g" FFFD);
    ASSERT_EVENT(&cast, 1, "i", FFFD);
    ASSERT_EVENT(&cast, 2, "o", "end");
    ASSERT_EVENT(&cast, 3, "o", FFFD);
    assert_end_marker(&cast, "end dropped_events=0 dropped_bytes=0");
    cast_free(&cast);
}

struct part_watch {
    const char *part;
    const char *needle;
};

static bool part_shows(void *arg)
{
    struct part_watch *watch = arg;
    size_t len;
    char *text = gunzip_file(watch->part, &len, NULL);
    bool found = text != NULL && strstr(text, watch->needle) != NULL;
    free(text);
    return found;
}

static void test_part_file_readable_mid_session(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, "xterm", "live");
    TL_ASSERT_OK(tl_recording_output(rec, "first screen\r\n", 14));
    /* No more events: the once-a-second flush alone must make it readable. */
    struct part_watch watch = {fx->part, "first screen"};
    assert_true(run_until(&fx->loop, part_shows, &watch, 10000));
    assert_false(exists(fx->path));
    struct cast partial = read_cast(fx->part, false);
    assert_non_null(partial.header);
    assert_int_equal(json_array_size(partial.events), 1);
    ASSERT_EVENT(&partial, 0, "o", "first screen\r\n");
    cast_free(&partial);

    /* And again for what comes later in the same session. */
    TL_ASSERT_OK(tl_recording_input(rec, "q", 1));
    watch.needle = "\"i\", \"q\"";
    assert_true(run_until(&fx->loop, part_shows, &watch, 10000));

    TL_ASSERT_OK(finish(fx, rec).status);
    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 3);
    ASSERT_EVENT(&cast, 1, "i", "q");
    cast_free(&cast);
}

static void on_timer_fired(uv_timer_t *timer)
{
    *(bool *)timer->data = true;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

static void test_times_follow_the_loop_clock(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, NULL);
    TL_ASSERT_OK(tl_recording_output(rec, "a", 1));
    bool fired = false;
    uv_timer_t timer;
    uv_timer_init(&fx->loop, &timer);
    timer.data = &fired;
    uv_timer_start(&timer, on_timer_fired, 1200, 0);
    assert_true(run_until(&fx->loop, flag_set, &fired, 10000));
    uv_close((uv_handle_t *)&timer, NULL);
    TL_ASSERT_OK(tl_recording_output(rec, "b", 1));
    TL_ASSERT_OK(finish(fx, rec).status);
    struct cast cast = read_cast(fx->path, true);
    assert_true(event_time(&cast, 0) >= 0.0);
    /* At least the timer's 1.2 s of loop time lies between them. */
    assert_true(event_time(&cast, 1) - event_time(&cast, 0) >= 1.2 - 1e-9);
    cast_free(&cast);
}

static void test_pending_cap_drops_and_counts(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, "flood");
    /*
     * 16 MiB of text that compresses poorly (random letters), with no turn
     * of the loop: no write can complete, so compressed bytes pile up to
     * the cap and the rest is dropped, without blocking and without growing.
     */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    enum { CHUNK = 65536, CHUNKS = 256 };
    char *chunk = malloc(CHUNK);
    assert_non_null(chunk);
    srand(42);
    for (int i = 0; i < CHUNKS; i++) {
        for (int j = 0; j < CHUNK; j++)
            chunk[j] = alphabet[rand() % 64];
        TL_ASSERT_OK(tl_recording_output(rec, chunk, CHUNK));
    }
    free(chunk);
    /* Once the disk has caught up, events are taken again. */
    bool fired = false;
    uv_timer_t timer;
    uv_timer_init(&fx->loop, &timer);
    timer.data = &fired;
    uv_timer_start(&timer, on_timer_fired, 2500, 0);
    assert_true(run_until(&fx->loop, flag_set, &fired, 20000));
    uv_close((uv_handle_t *)&timer, NULL);
    TL_ASSERT_OK(tl_recording_output(rec, "after the flood", 15));
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);

    struct cast cast = read_cast(fx->path, true);
    size_t count = json_array_size(cast.events);
    uint64_t kept = 0;
    for (size_t i = 0; i + 2 < count; i++) {
        ASSERT_EVENT(&cast, i, "o", event_text(&cast, i)); /* whole events only */
        assert_int_equal(strlen(event_text(&cast, i)), CHUNK);
        kept += CHUNK;
    }
    ASSERT_EVENT(&cast, count - 2, "o", "after the flood");
    unsigned long long dropped_events, dropped_bytes;
    assert_int_equal(sscanf(event_text(&cast, count - 1),
                            "end dropped_events=%llu dropped_bytes=%llu", &dropped_events,
                            &dropped_bytes),
                     2);
    print_message("kept %llu bytes in %zu events, dropped %llu bytes in %llu events, file %llu\n",
                  (unsigned long long)kept, count - 2, dropped_bytes, dropped_events,
                  (unsigned long long)outcome.size);
    assert_true(dropped_events > 0);
    assert_int_equal(kept + dropped_bytes, (uint64_t)CHUNK * CHUNKS);
    assert_int_equal(dropped_bytes, dropped_events * CHUNK);
    /* What was kept fitted under the cap (plus the small tail written after the flood). */
    assert_true(outcome.size <= TL_RECORDING_MAX_PENDING + 4096);
    cast_free(&cast);
}

static void test_bad_arguments_rejected(void **state)
{
    struct fixture *fx = *state;
    tl_recording_info_t info = {.cols = 80, .rows = 24};
    int err = 0;
    assert_null(tl_recording_open(&fx->loop, NULL, &info, &err));
    TL_ASSERT_RC(TL_EINVAL, err);
    assert_null(tl_recording_open(&fx->loop, "", &info, &err));
    TL_ASSERT_RC(TL_EINVAL, err);
    assert_null(tl_recording_open(&fx->loop, fx->path, NULL, &err));
    TL_ASSERT_RC(TL_EINVAL, err);
    assert_null(tl_recording_open(NULL, fx->path, &info, &err));
    TL_ASSERT_RC(TL_EINVAL, err);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no-such-dir/x.cast.gz", fx->dir);
    assert_null(tl_recording_open(&fx->loop, missing, &info, &err));
    TL_ASSERT_RC(UV_ENOENT, err);

    TL_ASSERT_RC(TL_EINVAL, tl_recording_output(NULL, "x", 1));
    TL_ASSERT_RC(TL_EINVAL, tl_recording_input(NULL, "x", 1));
    TL_ASSERT_RC(TL_EINVAL, tl_recording_resize(NULL, 80, 24));
    tl_recording_finish(NULL, on_done, NULL); /* a no-op */

    tl_recording_t *rec = tl_recording_open(&fx->loop, fx->path, &info, &err);
    assert_non_null(rec);
    /* A second recording on the same path, while the first runs: refused, the first unharmed. */
    assert_null(tl_recording_open(&fx->loop, fx->path, &info, &err));
    TL_ASSERT_RC(UV_EEXIST, err);
    TL_ASSERT_RC(TL_EINVAL, tl_recording_output(rec, NULL, 3));
    TL_ASSERT_OK(tl_recording_output(rec, NULL, 0));
    TL_ASSERT_OK(tl_recording_output(rec, "", 0)); /* no event */
    TL_ASSERT_OK(tl_recording_output(rec, "kept", 4));
    struct outcome outcome = {0};
    tl_recording_finish(rec, on_done, &outcome);
    /* Until done runs the recording still exists, but takes nothing more. */
    TL_ASSERT_RC(TL_EINVAL, tl_recording_output(rec, "late", 4));
    TL_ASSERT_RC(TL_EINVAL, tl_recording_resize(rec, 1, 1));
    tl_recording_finish(rec, on_done, &outcome); /* logged and ignored */
    assert_true(run_until(&fx->loop, outcome_in, &outcome, 30000));
    assert_int_equal(outcome.calls, 1);
    TL_ASSERT_OK(outcome.status);
    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 2);
    ASSERT_EVENT(&cast, 0, "o", "kept");
    cast_free(&cast);

    /* A finished recording is never overwritten. */
    assert_null(tl_recording_open(&fx->loop, fx->path, &info, &err));
    TL_ASSERT_RC(TL_EEXIST, err);
    assert_false(exists(fx->part));
}

static void test_disk_error_reported_and_part_kept(void **state)
{
    struct fixture *fx = *state;
    struct rlimit old, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    tl_recording_t *rec = open_recording(fx, NULL, "disk full");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char *noise = malloc(256 * 1024);
    assert_non_null(noise);
    for (size_t i = 0; i < 256 * 1024; i++)
        noise[i] = (char)('!' + (unsigned)rand() % 90);
    TL_ASSERT_OK(tl_recording_output(rec, noise, 256 * 1024));
    free(noise);
    struct outcome outcome = finish(fx, rec);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(outcome.status < 0);
    print_message("finish reported: %s\n", tl_strerror(outcome.status));
    assert_string_equal(outcome.sha256, "");
    /* Not renamed: nothing claims to be a complete recording; what reached the disk stays. */
    assert_false(exists(fx->path));
    assert_true(exists(fx->part));
}

/* ---- hidden input (input typed while the terminal does not echo) -------------------------- */

/* Whether the bytes occur anywhere in the file, compressed or as text. */
static bool file_holds(const char *path, const char *needle)
{
    size_t len = 0;
    uint8_t *bytes = read_file(path, &len);
    assert_non_null(bytes);
    bool found = memmem(bytes, len, needle, strlen(needle)) != NULL;
    free(bytes);
    return found;
}

static void test_hidden_input_is_a_count_never_the_bytes(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, NULL);
    TL_ASSERT_OK(tl_recording_input_hold(rec, "sudo -v\r", 8));
    assert_int_equal(tl_recording_input_held(rec), 8);
    TL_ASSERT_OK(tl_recording_input_settle(rec, 8, 0));
    static const char prompt[] = "sudo -v\r\n[sudo] password: ";
    TL_ASSERT_OK(tl_recording_output(rec, prompt, sizeof prompt - 1));
    /* The password arrives in three chunks, settled in other pieces. */
    TL_ASSERT_OK(tl_recording_input_hold(rec, "Xy7#", 4));
    TL_ASSERT_OK(tl_recording_input_hold(rec, "qW9", 3));
    TL_ASSERT_OK(tl_recording_input_hold(rec, "!\r", 2));
    assert_int_equal(tl_recording_input_held(rec), 9);
    TL_ASSERT_OK(tl_recording_input_settle(rec, 5, 1));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 4, 1));
    assert_int_equal(tl_recording_input_held(rec), 0);
    TL_ASSERT_OK(tl_recording_output(rec, "\r\n$ ", 4));
    /* A second run, ended by a resize, then visible typing again. */
    TL_ASSERT_OK(tl_recording_input_hold(rec, "again\r", 6));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 6, 1));
    TL_ASSERT_OK(tl_recording_resize(rec, 90, 20));
    TL_ASSERT_OK(tl_recording_input_hold(rec, "ls\r", 3));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 3, 0));
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);

    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 8);
    ASSERT_EVENT(&cast, 0, "i", "sudo -v\r");
    ASSERT_EVENT(&cast, 1, "o", "sudo -v\r\n[sudo] password: ");
    ASSERT_EVENT(&cast, 2, "m", "input hidden: 9 bytes");
    ASSERT_EVENT(&cast, 3, "o", "\r\n$ ");
    ASSERT_EVENT(&cast, 4, "m", "input hidden: 6 bytes");
    ASSERT_EVENT(&cast, 5, "r", "90x20");
    ASSERT_EVENT(&cast, 6, "i", "ls\r");
    assert_end_marker(&cast, "end dropped_events=0 dropped_bytes=0");
    /* No trace of the hidden bytes, in the text or in the file as stored. */
    const char *pieces[] = {"Xy7#", "qW9", "Xy7#qW9!", "again"};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        if (strstr(cast.text, pieces[i]) != NULL || file_holds(fx->path, pieces[i]))
            fail_msg("the recording holds the hidden bytes \"%s\"", pieces[i]);
    }
    cast_free(&cast);
}

static void test_input_never_settled_is_counted_hidden_at_the_end(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, NULL);
    TL_ASSERT_OK(tl_recording_input_hold(rec, "visible\r", 8));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 8, 0));
    /* The session ends before the agent said how its terminal took these. */
    TL_ASSERT_OK(tl_recording_input_hold(rec, "s3cr3t-unsettled", 16));
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);
    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 3);
    ASSERT_EVENT(&cast, 0, "i", "visible\r");
    ASSERT_EVENT(&cast, 1, "m", "input hidden: 16 bytes");
    assert_end_marker(&cast, "end dropped_events=0 dropped_bytes=0");
    assert_null(strstr(cast.text, "s3cr3t"));
    assert_false(file_holds(fx->path, "s3cr3t"));
    cast_free(&cast);
}

static void test_hidden_bytes_never_complete_a_visible_character(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, NULL);
    /* The first byte of "é" typed visibly, then hidden input, then its second byte. */
    TL_ASSERT_OK(tl_recording_input_hold(rec, "\xc3", 1));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 1, 0));
    TL_ASSERT_OK(tl_recording_input_hold(rec, "\xa9pw", 3));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 3, 1));
    TL_ASSERT_OK(tl_recording_input_hold(rec, "\xa9", 1));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 1, 0));
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);
    struct cast cast = read_cast(fx->path, true);
    assert_int_equal(json_array_size(cast.events), 4);
    ASSERT_EVENT(&cast, 0, "i", "\xef\xbf\xbd");
    ASSERT_EVENT(&cast, 1, "m", "input hidden: 3 bytes");
    ASSERT_EVENT(&cast, 2, "i", "\xef\xbf\xbd");
    cast_free(&cast);
}

static void test_held_input_is_bounded_and_settled_only_as_held(void **state)
{
    struct fixture *fx = *state;
    tl_recording_t *rec = open_recording(fx, NULL, NULL);
    TL_ASSERT_RC(TL_EINVAL, tl_recording_input_settle(rec, 1, 0)); /* nothing held */
    TL_ASSERT_OK(tl_recording_input_hold(rec, "abc", 3));
    TL_ASSERT_RC(TL_EINVAL, tl_recording_input_settle(rec, 4, 1));
    TL_ASSERT_RC(TL_EINVAL, tl_recording_input_settle(rec, 0, 1));
    assert_int_equal(tl_recording_input_held(rec), 3);
    /* Up to the cap and not a byte past it. */
    size_t room = TL_RECORDING_MAX_HELD - 3;
    uint8_t *fill = calloc(1, room + 1);
    assert_non_null(fill);
    memset(fill, 'f', room + 1);
    TL_ASSERT_RC(TL_EFULL, tl_recording_input_hold(rec, fill, room + 1));
    assert_int_equal(tl_recording_input_held(rec), 3);
    TL_ASSERT_OK(tl_recording_input_hold(rec, fill, room));
    assert_int_equal(tl_recording_input_held(rec), TL_RECORDING_MAX_HELD);
    TL_ASSERT_RC(TL_EFULL, tl_recording_input_hold(rec, "x", 1));
    TL_ASSERT_OK(tl_recording_input_settle(rec, 3, 0));
    TL_ASSERT_OK(tl_recording_input_hold(rec, "x", 1));
    free(fill);
    TL_ASSERT_RC(TL_EINVAL, tl_recording_input_hold(NULL, "x", 1));
    TL_ASSERT_RC(TL_EINVAL, tl_recording_input_settle(NULL, 1, 0));
    assert_int_equal(tl_recording_input_held(NULL), 0);
    struct outcome outcome = finish(fx, rec);
    TL_ASSERT_OK(outcome.status);
    struct cast cast = read_cast(fx->path, true);
    ASSERT_EVENT(&cast, 0, "i", "abc");
    char expected[64];
    snprintf(expected, sizeof expected, "input hidden: %u bytes", TL_RECORDING_MAX_HELD - 3 + 1);
    ASSERT_EVENT(&cast, 1, "m", expected);
    cast_free(&cast);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_header_and_events_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(test_header_without_size_term_or_title, setup, teardown),
    cmocka_unit_test_setup_teardown(test_finish_reports_hash_and_size_of_file, setup, teardown),
    cmocka_unit_test_setup_teardown(test_split_utf8_is_joined, setup, teardown),
    cmocka_unit_test_setup_teardown(test_invalid_bytes_become_replacement_characters, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_part_file_readable_mid_session, setup, teardown),
    cmocka_unit_test_setup_teardown(test_times_follow_the_loop_clock, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pending_cap_drops_and_counts, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bad_arguments_rejected, setup, teardown),
    cmocka_unit_test_setup_teardown(test_disk_error_reported_and_part_kept, setup, teardown),
    cmocka_unit_test_setup_teardown(test_hidden_input_is_a_count_never_the_bytes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_input_never_settled_is_counted_hidden_at_the_end, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_hidden_bytes_never_complete_a_visible_character, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_held_input_is_bounded_and_settled_only_as_held, setup,
                                    teardown),
};

TL_TEST_MAIN(tests)
