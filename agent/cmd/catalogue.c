/*
 * `tierline-agent catalogue`: the signed catalogue installed on this machine
 * (docs/catalogue.md): status, rollback to the previous version, and install FILE, a
 * package checked exactly as one the relay delivers.
 */
#include "agent/catalogue.h"
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"

#include "proto/catalogue.h"
#include "proto/cli.h"
#include "proto/err.h"
#include "proto/fsutil.h"
#include "proto/text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATALOGUE_USAGE "catalogue [status [--json] | rollback | install FILE] [--state DIR]"

static int catalogue_status(const tl_agent_state_t *state, int json_out)
{
    tl_agent_catalogue_state_t installed;
    int rc = tl_agent_catalogue_state(state->dir, &installed);
    json_t *reports = tl_agent_catalogue_reports(state->dir);
    size_t unreported = json_array_size(reports);
    json_decref(reports);
    if (json_out) {
        json_t *out = json_pack(
            "{s:o, s:s, s:I, s:I, s:I, s:I}", "catalogue_key",
            state->catalogue_key[0] ? json_string(state->catalogue_key) : json_null(), "source",
            rc != 0                 ? "damaged"
            : installed.current > 0 ? "installed"
                                    : "shipped",
            "version", (json_int_t)installed.current, "previous", (json_int_t)installed.previous,
            "highest", (json_int_t)installed.highest, "unreported", (json_int_t)unreported);
        char *text = out ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
        return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
    }
    printf("signing key: %s\n", state->catalogue_key[0]
                                    ? state->catalogue_key
                                    : "none (enrolled without one: every package is refused)");
    if (rc != 0)
        printf("catalogue:   its state is damaged (%s); the shipped one is used\n",
               tl_strerror(rc));
    else if (installed.current == 0)
        printf("catalogue:   the shipped one (no signed catalogue installed)\n");
    else
        printf("catalogue:   version %" PRIu64 " installed%s\n", installed.current,
               installed.previous ? "" : "; nothing to roll back to");
    if (installed.previous > 0)
        printf("previous:    version %" PRIu64 " (catalogue rollback goes back to it)\n",
               installed.previous);
    if (unreported > 0)
        printf("unreported:  %zu change(s) the relay has not heard of yet\n", unreported);
    return rc == 0 ? TL_EXIT_OK : TL_EXIT_FAILURE;
}

static int catalogue_install(const tl_agent_state_t *state, const char *file)
{
    char *data = NULL, why[TL_AGENT_CATALOGUE_WHY];
    size_t len = 0;
    uint64_t version = 0;
    int rc = tl_fs_read_file(file, TL_CATALOGUE_MAX, 0, NULL, NULL, &data, &len);
    if (rc == TL_EFULL) {
        fprintf(stderr, PROGRAM " catalogue install: %s is larger than a package may be\n", file);
        return TL_EXIT_FAILURE;
    }
    if (rc != 0)
        return tl__cmd_fail("catalogue install", file, rc);
    rc = tl_agent_catalogue_install(state->dir, state->catalogue_key, (const uint8_t *)data, len,
                                    &version, why, sizeof why);
    free(data);
    char shown[4 * sizeof why];
    tl_text_clip(shown, sizeof shown, why, 0, TL_TEXT_LINE);
    if (rc != 0) {
        fprintf(stderr,
                PROGRAM " catalogue install: refused (%s): %s; the installed catalogue is "
                        "unchanged\n",
                tl_err_name(rc), shown);
        return TL_EXIT_FAILURE;
    }
    printf("Installed catalogue version %" PRIu64 "\n", version);
    return TL_EXIT_OK;
}

static int catalogue_rollback(const tl_agent_state_t *state)
{
    char why[TL_AGENT_CATALOGUE_WHY];
    uint64_t from = 0, to = 0;
    int rc = tl_agent_catalogue_rollback(state->dir, &from, &to, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " catalogue rollback: %s\n", why);
        return TL_EXIT_FAILURE;
    }
    printf("Rolled back from catalogue version %" PRIu64 " to %" PRIu64
           "; runbooks and articles come from it now, and the relay hears of it when the agent "
           "next connects\n",
           from, to);
    return TL_EXIT_OK;
}

int tl_agent_cmd_catalogue(int argc, char **argv)
{
    const char *dir = NULL, *positional[2] = {0};
    int count = 0, json_out = 0;
    tl_cli_option_t options[] = {{"state", &dir, NULL}, {"json", NULL, &json_out}, {0}};
    int status = tl_cli_parse(PROGRAM, "catalogue", CATALOGUE_USAGE, argc, argv, 1, options,
                              positional, 2, &count);
    if (status != 0)
        return status;
    const char *verb = count > 0 ? positional[0] : "status";
    int known = strcmp(verb, "status") == 0 || strcmp(verb, "rollback") == 0 ||
                strcmp(verb, "install") == 0;
    if (!known || (strcmp(verb, "install") == 0) != (count == 2) ||
        (json_out && strcmp(verb, "status") != 0)) {
        fprintf(stderr, PROGRAM " catalogue: usage: " PROGRAM " " CATALOGUE_USAGE "\n");
        return TL_EXIT_USAGE;
    }
    tl_agent_state_t state;
    if ((status = tl__cmd_open_state("catalogue", dir, 1, &state)) != 0)
        return status;
    if (strcmp(verb, "status") == 0)
        return catalogue_status(&state, json_out);
    if (strcmp(verb, "rollback") == 0)
        return catalogue_rollback(&state);
    return catalogue_install(&state, positional[1]);
}
