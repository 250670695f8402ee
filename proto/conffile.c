/*
 * "key = value" lines (proto/conffile.h): split in place, checked against the
 * caller's keys, each handed to the caller.
 */
#include "proto/conffile.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SECTION_MAX 64

/* Text from the file, escaped for a terminal or a log and clipped to width columns. */
static const char *shown(char *out, size_t size, const char *text, size_t width)
{
    tl_text_clip(out, size, text, width, TL_TEXT_LINE);
    return out;
}

int tl_conffile_key_index(const tl_conffile_t *file, const char *key)
{
    for (int i = 0; file->keys[i] != NULL && i < TL_CONFFILE_KEYS_MAX; i++)
        if (strcmp(file->keys[i], key) == 0)
            return i;
    return -1;
}

static char *trim(char *start, char *end)
{
    while (start < end && (*start == ' ' || *start == '\t' || *start == '\r'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *end = '\0';
    return start;
}

static int known_section(const tl_conffile_t *file, const char *name)
{
    for (size_t i = 0; file->sections != NULL && file->sections[i] != NULL; i++)
        if (strcmp(file->sections[i], name) == 0)
            return 1;
    return 0;
}

/* "[name]": the new section in section (SECTION_MAX bytes), or TL_EINVAL and why. */
static int read_section(const tl_conffile_t *file, char *text, char *section, char *why,
                        size_t why_size)
{
    size_t len = strlen(text);
    char escaped[1024];
    if (len < 2 || text[len - 1] != ']') {
        tl_format(why, why_size, "expected '[section]', got '%s'",
                  shown(escaped, sizeof escaped, text, 200));
        return TL_EINVAL;
    }
    char *name = trim(text + 1, text + len - 1);
    if (!known_section(file, name)) {
        tl_format(why, why_size, "unknown section '[%s]'",
                  shown(escaped, sizeof escaped, name, 64));
        return TL_EINVAL;
    }
    snprintf(section, SECTION_MAX, "%s", name);
    return 0;
}

/*
 * One line split in place: key NULL for a blank or comment line (or a
 * section header, which moves section on), else key and value. TL_EINVAL and
 * why for anything else.
 */
static int split_line(const tl_conffile_t *file, char *line, size_t len, char *section,
                      char *qualified, size_t qualified_size, tl_conffile_line_t *out, char *why,
                      size_t why_size)
{
    if (memchr(line, '\0', len) != NULL) {
        tl_format(why, why_size, "NUL byte in the line");
        return TL_EINVAL;
    }
    char escaped[1024];
    char *text = trim(line, line + len);
    if (text[0] == '\0' || text[0] == '#')
        return 0;
    if (text[0] == '[' && (file->flags & TL_CONFFILE_SECTIONS))
        return read_section(file, text, section, why, why_size);
    char *equals = strchr(text, '=');
    if (equals == NULL) {
        tl_format(why, why_size, "expected 'key = value', got '%s'",
                  shown(escaped, sizeof escaped, text, 200));
        return TL_EINVAL;
    }
    char *name = trim(text, equals);
    char *rest = trim(equals + 1, equals + 1 + strlen(equals + 1));
    if (name[0] == '\0') {
        tl_format(why, why_size, "expected 'key = value': the key is missing");
        return TL_EINVAL;
    }
    if (section[0] != '\0') {
        if (tl_format(qualified, qualified_size, "%s.%s", section, name) != 0) {
            tl_format(why, why_size, "unknown setting '%s' in [%s]",
                      shown(escaped, sizeof escaped, name, 64), section);
            return TL_EINVAL;
        }
        name = qualified;
    }
    int index = tl_conffile_key_index(file, name);
    if (index < 0) {
        shown(escaped, sizeof escaped, name, 64);
        if (file->known_text != NULL)
            tl_format(why, why_size, "unknown setting '%s' (known: %s)", escaped, file->known_text);
        else
            tl_format(why, why_size, "unknown setting '%s'", escaped);
        return TL_EINVAL;
    }
    if (rest[0] == '\0') {
        tl_format(why, why_size, "no value for '%s'", name);
        return TL_EINVAL;
    }
    out->key = name;
    out->value = rest;
    out->key_index = index;
    return 0;
}

int tl_conffile_walk(const tl_conffile_t *file, const char *path, const char *data, size_t len,
                     tl_conffile_line_fn fn, void *ctx, char *why, size_t why_size)
{
    char line[TL_CONFFILE_LINE_MAX + 2];
    char qualified[TL_CONFFILE_LINE_MAX + SECTION_MAX + 2];
    char section[SECTION_MAX] = "";
    char detail[512];
    size_t start = 0;
    int number = 0;
    uint64_t seen = 0;
    while (start < len) {
        const char *newline = memchr(data + start, '\n', len - start);
        size_t end = newline != NULL ? (size_t)(newline - data) : len;
        size_t line_len = end - start;
        tl_conffile_line_t current = {
            .number = ++number, .raw = data + start, .raw_len = line_len, .key_index = -1};
        int rc;
        detail[0] = '\0';
        if (line_len > TL_CONFFILE_LINE_MAX) {
            snprintf(detail, sizeof detail, "line longer than %d bytes", TL_CONFFILE_LINE_MAX);
            rc = TL_EINVAL;
        } else {
            memcpy(line, data + start, line_len);
            line[line_len] = '\0';
            rc = split_line(file, line, line_len, section, qualified, sizeof qualified, &current,
                            detail, sizeof detail);
        }
        if (rc == 0)
            rc = fn(ctx, &current, detail, sizeof detail);
        if (rc == 0 && current.key != NULL) {
            uint64_t bit = UINT64_C(1) << current.key_index;
            if (seen & bit) {
                snprintf(detail, sizeof detail, "'%.64s' is set twice", current.key);
                rc = TL_EINVAL;
            }
            seen |= bit;
        }
        if (rc != 0) {
            tl_format(why, why_size, "%s:%d: %s", path, number, detail);
            return rc;
        }
        start = end + 1;
    }
    return 0;
}
