/*
 * The technicians' command lines split into words, without a shell
 * (docs/technicians.md "Command lines"): tl__exec_split_line() of
 * relay/net/exec.h, bytes in and words out. The SSH front end splits every
 * exec request with it (relay/net/ssh_exec.c); tests/fuzz/fuzz_cmdline.c
 * fuzzes it.
 */
#include "relay/net/exec.h"

#include <string.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

static int is_control(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f;
}

/*
 * Splits an exec request's command line into words, without a shell
 * (docs/technicians.md "Command lines"):
 *   - spaces, tabs and newlines outside quotes separate words;
 *   - '...' keeps everything up to the next single quote literally;
 *   - "..." keeps everything literally except \" and \\, which stand for " and \
 *     (a backslash before any other character is kept with it);
 *   - outside quotes, a backslash makes the next character literal;
 *   - quotes may be joined to other text (a'b c'd is one word) and '' is an
 *     empty word; nothing is expanded ($, *, ~ and the like are ordinary);
 *   - control characters other than tab and newline are refused anywhere;
 *   - at most TL_EXEC_MAX_LINE bytes and TL_EXEC_MAX_WORDS words.
 * words must hold strlen(line) + 1 bytes (the words never take more room than
 * the line). Returns NULL, or a static message saying what is wrong.
 */
const char *tl__exec_split_line(const char *line, char *words, char **argv, int *argc)
{
    const unsigned char *p = (const unsigned char *)line;
    char *out = words;
    int count = 0;
    *argc = 0;
    argv[0] = NULL;
    if (strlen(line) > TL_EXEC_MAX_LINE)
        return "command line longer than " STRINGIFY(TL_EXEC_MAX_LINE) " bytes";
    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == '\0')
            break;
        if (count == TL_EXEC_MAX_WORDS)
            return "more than " STRINGIFY(TL_EXEC_MAX_WORDS) " words";
        argv[count++] = out;
        while (*p != '\0' && !is_blank(*p)) {
            if (*p == '\'') {
                for (p++; *p != '\'' && *p != '\0'; p++) {
                    if (is_control(*p))
                        return "control character in the command line";
                    *out++ = (char)*p;
                }
                if (*p == '\0')
                    return "unterminated single quote";
                p++;
            } else if (*p == '"') {
                for (p++; *p != '"' && *p != '\0'; p++) {
                    if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    if (is_control(*p))
                        return "control character in the command line";
                    *out++ = (char)*p;
                }
                if (*p == '\0')
                    return "unterminated double quote";
                p++;
            } else if (*p == '\\') {
                p++;
                if (*p == '\0')
                    return "backslash at the end of the command line";
                if (is_control(*p))
                    return "control character in the command line";
                *out++ = (char)*p++;
            } else {
                if (is_control(*p))
                    return "control character in the command line";
                *out++ = (char)*p++;
            }
        }
        *out++ = '\0';
    }
    argv[count] = NULL;
    *argc = count;
    return NULL;
}
