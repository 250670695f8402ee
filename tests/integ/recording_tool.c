/*
 * Writes a short scripted terminal recording with relay/sessions/recording.c, for
 * tests/integ/recording_play.py to play with the stock asciinema player.
 *
 *   recording_tool PATH
 *
 * Prints "sha256=HEX size=N" (what tl_recording_finish reported) and exits
 * 0, or says what failed and exits 1.
 */
#include "proto/err.h"
#include "relay/sessions/recording.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int finished = -1;

static void on_done(void *data, int status, const char *sha256, uint64_t size)
{
    finished = status;
    if (status == 0)
        printf("sha256=%s size=%" PRIu64 "\n", sha256, size);
    else
        fprintf(stderr, "recording_tool: finish failed: %s\n", tl_strerror(status));
}

struct step {
    char kind; /* o output, i input, r resize */
    const char *bytes;
    size_t len;
};

#define TEXT(kind, s)                                                                              \
    {                                                                                              \
        kind, s, sizeof s - 1                                                                      \
    }

static const struct step script[] = {
    TEXT('o', "Tierline recording\r\n"),
    /* "café €" with both characters split across chunks */
    TEXT('o', "caf\xc3"),
    TEXT('o', "\xa9 \xe2\x82"),
    TEXT('o', "\xac\r\n"),
    TEXT('i', "ls\r"),
    {'r', NULL, 0},
    TEXT('o', "bad \xff byte\r\n"),
    TEXT('o', "\x1b[1mbold\x1b[0m \"quoted\" back\\slash\ttab\r\n"),
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: recording_tool PATH\n");
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    tl_recording_info_t info = {.cols = 100,
                                .rows = 30,
                                .term = "xterm-256color",
                                .title = "T-1 alice shell G-1",
                                .start_ms = 1764582000000};
    int rc;
    tl_recording_t *rec = tl_recording_open(loop, argv[1], &info, &rc);
    if (rec == NULL) {
        fprintf(stderr, "recording_tool: cannot open %s: %s\n", argv[1], tl_strerror(rc));
        return 1;
    }
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        const struct step *step = &script[i];
        if (step->kind == 'o')
            rc = tl_recording_output(rec, step->bytes, step->len);
        else if (step->kind == 'i')
            rc = tl_recording_input(rec, step->bytes, step->len);
        else
            rc = tl_recording_resize(rec, 120, 40);
        if (rc != 0) {
            fprintf(stderr, "recording_tool: step %zu failed: %s\n", i, tl_strerror(rc));
            return 1;
        }
    }
    tl_recording_finish(rec, on_done, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0) {
        fprintf(stderr, "recording_tool: loop not empty at exit\n");
        return 1;
    }
    return finished == 0 ? 0 : 1;
}
