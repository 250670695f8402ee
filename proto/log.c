#include "proto/log.h"
#include "proto/err.h"
#include "proto/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum tl_log_level current_level = TL_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

/* syslog priorities of the levels: debug 7, info 6, warning 4, err 3. */
static const char *const level_priorities[] = {"<7>", "<6>", "<4>", "<3>", ""};
/* -1: not looked at yet; 0: plain lines; 1: the journal, lines carry priorities. */
static int journal_stream = -1;

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

int tl_log_detect_journal(void)
{
    /* systemd sets JOURNAL_STREAM=DEVICE:INODE of the stream it connected to stdout and stderr;
     * a stderr redirected elsewhere since (a child, a shell) has another device or inode. */
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long device = 0, inode = 0;
    struct stat st;
    char extra;
    journal_stream = stream != NULL &&
                     sscanf(stream, "%llu:%llu%c", &device, &inode, &extra) == 2 &&
                     fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == device &&
                     (unsigned long long)st.st_ino == inode;
    return journal_stream;
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
    if (journal_stream < 0)
        tl_log_detect_journal();
    size_t prefix = journal_stream ? strlen(level_priorities[level]) : 0;
    memcpy(shown, level_priorities[level], prefix);
    tl_text_clip(shown + prefix, sizeof shown - 1 - prefix, line, 0, TL_TEXT_LINE);
    used = prefix + strlen(shown + prefix);
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
