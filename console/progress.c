#include "console/progress.h"
#include "console/term.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ERASE_LINE "\r\033[K"

struct tl_progress {
    int fd;
    uint64_t total;
    uint64_t done;
    uint64_t started_ms;
    uint64_t drawn_ms;
    int drawn; /* the bar is on screen */
    int ever_drawn;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n <= 0)
            return; /* a progress bar is not worth failing for */
        text += n;
        len -= (size_t)n;
    }
}

static void human(char *out, size_t size, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024.0 && unit < 4) {
        bytes /= 1024.0;
        unit++;
    }
    if (unit == 0)
        snprintf(out, size, "%.0f %s", bytes, units[unit]);
    else
        snprintf(out, size, "%.1f %s", bytes, units[unit]);
}

void tl_progress_format(char *out, size_t size, uint64_t done, uint64_t total, uint64_t elapsed_ms,
                        int width)
{
    char done_text[32], total_text[32], rate_text[40] = "";
    human(done_text, sizeof done_text, (double)done);
    if (elapsed_ms > 0) {
        char rate[32];
        human(rate, sizeof rate, (double)done * 1000.0 / (double)elapsed_ms);
        snprintf(rate_text, sizeof rate_text, "  %s/s", rate);
    }
    if (total == 0) {
        snprintf(out, size, "  %s%s", done_text, rate_text);
        return;
    }
    human(total_text, sizeof total_text, (double)total);
    uint64_t shown = done > total ? total : done;
    int percent = (int)(shown * 100 / total);
    char head[96];
    int head_len = snprintf(head, sizeof head, "  %s / %s %3d%% ", done_text, total_text, percent);
    int bar = width - head_len - (int)strlen(rate_text) - 3;
    if (bar > 50)
        bar = 50;
    if (bar < 10) {
        snprintf(out, size, "%s%s", head, rate_text);
        return;
    }
    char cells[64];
    int filled = (int)(shown * (uint64_t)bar / total);
    for (int i = 0; i < bar; i++)
        cells[i] = i < filled ? '=' : ' ';
    if (filled < bar)
        cells[filled] = '>';
    cells[bar] = '\0';
    snprintf(out, size, "%s[%s]%s", head, cells, rate_text);
}

tl_progress_t *tl_progress_new(int fd, uint64_t total)
{
    tl_progress_t *progress = calloc(1, sizeof *progress);
    if (progress == NULL)
        return NULL;
    progress->fd = fd;
    progress->total = total;
    progress->started_ms = now_ms();
    return progress;
}

static void draw(tl_progress_t *progress, uint64_t now)
{
    int cols = 80, rows = 24;
    tl_term_size(progress->fd, &cols, &rows);
    char line[256];
    size_t used = (size_t)snprintf(line, sizeof line, "%s", ERASE_LINE);
    /* One column short of the width: writing the last column would wrap on some terminals. */
    tl_progress_format(line + used, sizeof line - used, progress->done, progress->total,
                       now - progress->started_ms, cols - 1);
    put(progress->fd, line, strlen(line));
    progress->drawn = 1;
    progress->ever_drawn = 1;
    progress->drawn_ms = now;
}

void tl_progress_update(tl_progress_t *progress, uint64_t done)
{
    if (progress == NULL)
        return;
    progress->done = done;
    uint64_t now = now_ms();
    if (!progress->ever_drawn || now - progress->drawn_ms >= TL_PROGRESS_INTERVAL_MS)
        draw(progress, now);
}

void tl_progress_clear(tl_progress_t *progress)
{
    if (progress == NULL || !progress->drawn)
        return;
    put(progress->fd, ERASE_LINE, sizeof ERASE_LINE - 1);
    progress->drawn = 0;
}

void tl_progress_free(tl_progress_t *progress)
{
    tl_progress_clear(progress);
    free(progress);
}
