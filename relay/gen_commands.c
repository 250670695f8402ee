/*
 * A build tool, not installed: writes the technicians' commands as `help
 * --json` lists them (relay/cmd/help.c), every command whatever the role, as
 * a C array of bytes. The console is built with that array
 * (console/CMakeLists.txt), so before it has asked any relay it knows the
 * commands of the relay from the same source tree, printed from the one
 * table rather than typed a second time (docs/console.md).
 *
 *     tierline-gen-commands NAME FILE
 *
 * writes `const char NAME[] = { ... };` (the JSON text, NUL-terminated) to
 * FILE, replacing it whole.
 */
#include "proto/buf.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/text.h"
#include "relay/cmd/commands.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCE_MAX (4u * 1024u * 1024u)

/* The C source of the array NAME holding text and a NUL. */
static int c_array(tl_buf_t *out, const char *name, const char *text)
{
    char line[128];
    int len = snprintf(line, sizeof line,
                       "/* Written by relay/gen_commands.c from the relay's command table. */\n"
                       "const char %s[] = {",
                       name);
    int rc = len > 0 && (size_t)len < sizeof line ? tl_buf_put(out, line, (size_t)len) : TL_EINVAL;
    size_t count = strlen(text) + 1;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        len = snprintf(line, sizeof line, "%s0x%02x,", i % 16 == 0 ? "\n    " : " ",
                       (unsigned char)text[i]);
        rc = tl_buf_put(out, line, (size_t)len);
    }
    if (rc == 0)
        rc = tl_buf_put(out, "\n};\n", 4);
    return rc;
}

int main(int argc, char **argv)
{
    int status = 1, rc;
    json_t *doc = NULL;
    char *text = NULL;
    tl_buf_t *source = NULL;
    if (argc != 3 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: tierline-gen-commands NAME FILE\n");
        return 2;
    }
    doc = json_pack("{s:o?}", "commands", tl_commands_help_listing(-1));
    text = doc != NULL ? tl_text_json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    source = tl_buf_new(SOURCE_MAX);
    if (text == NULL || source == NULL) {
        fprintf(stderr, "tierline-gen-commands: out of memory\n");
        goto out;
    }
    rc = c_array(source, argv[1], text);
    if (rc == 0)
        rc = tl_fs_write_atomic(argv[2], tl_buf_data(source), tl_buf_len(source), 0, NULL);
    if (rc != 0) {
        fprintf(stderr, "tierline-gen-commands: %s: %s\n", argv[2], tl_strerror(rc));
        goto out;
    }
    status = 0;
out:
    tl_buf_free(source);
    free(text);
    json_decref(doc);
    return status;
}
