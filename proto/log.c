#include "proto/log.h"
#include "proto/err.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum tl_log_level current_level = TL_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

static tl_log_gate_fn gate_fn;
static void *gate_ctx;

void tl_log_set_level(enum tl_log_level level)
{
    current_level = level;
}

enum tl_log_level tl_log_get_level(void)
{
    return current_level;
}

int tl_log_parse_level(const char *name, enum tl_log_level *out)
{
    for (int i = TL_LOG_DEBUG; i <= TL_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum tl_log_level)i;
            return 0;
        }
    }
    return TL_EINVAL;
}

void tl_log_set_gate(tl_log_gate_fn gate, void *ctx)
{
    gate_fn = gate;
    gate_ctx = ctx;
}

static int level_written(enum tl_log_level level)
{
    return level >= current_level && level < TL_LOG_OFF;
}

__attribute__((format(printf, 2, 0))) static void write_line(enum tl_log_level level,
                                                             const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    size_t used = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &utc);
    used += (size_t)snprintf(line + used, sizeof line - used, ".%03ldZ %s ", now.tv_nsec / 1000000,
                             level_names[level]);

    int n = vsnprintf(line + used, sizeof line - used, fmt, ap);
    if (n < 0)
        return;
    /*
     * One event, one line, and nothing raw from the network or a user reaches whoever
     * reads the log on a terminal: the line is escaped as text from others is shown
     * (proto/text.h; a newline becomes \n).
     */
    char shown[4 * sizeof line + 8];
    tl_text_clip(shown, sizeof shown - 1, line, 0, TL_TEXT_LINE);
    used = strlen(shown);
    shown[used++] = '\n';
    fwrite(shown, 1, used, stderr);
}

void tl_log_write(enum tl_log_level level, const char *fmt, ...)
{
    if (!level_written(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, fmt, ap);
    va_end(ap);
}

void tl_log_peer_write(enum tl_log_level level, const char *address, const char *fmt, ...)
{
    /* Only a line that would be written spends the address's budget. */
    if (!level_written(level))
        return;
    if (address != NULL && gate_fn != NULL && !gate_fn(gate_ctx, level, address))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, fmt, ap);
    va_end(ap);
}
