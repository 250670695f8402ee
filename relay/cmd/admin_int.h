/*
 * What the admin commands' files share (relay/cmd/admin.h); internal to
 * relay/cmd.
 */
#ifndef TL_ADMIN_INT_H
#define TL_ADMIN_INT_H

#include "relay/cmd/admin.h"
#include "relay/store/store.h"

#include <jansson.h>

/* --data DIR, which nearly every admin command needs; type names the result struct. Without it,
 * tl_admin_parse() gives the configured data_dir (relay.conf). */
#define TL__ADMIN_DATA(type, help_text)                                                            \
    {                                                                                              \
        .name = "data", .metavar = "DIR", .help = help_text " (default: relay.conf's data_dir)",   \
        .out = TL_CLI_AT(type, data)                                                               \
    }
#define TL__ADMIN_JSON(type, help_text)                                                            \
    {                                                                                              \
        .name = "json", .help = (help_text), .out = TL_CLI_AT(type, json)                          \
    }

/* What the commands with only --data DIR and --json fill. */
struct tl__admin_data_json {
    const char *data;
    int json;
};

/* The spec of a command that takes --data DIR and --json only; json_help: what --json prints. */
#define TL__ADMIN_DATA_JSON(json_help)                                                             \
    &(const tl_cli_spec_t)                                                                         \
    {                                                                                              \
        .options = (const tl_cli_arg_t[]){TL__ADMIN_DATA(struct tl__admin_data_json,               \
                                                         "the relay's folder"),                    \
                                          TL__ADMIN_JSON(struct tl__admin_data_json, json_help),   \
                                          {0}},                                                    \
        .flags = TL_CLI_DOUBLE_DASH                                                                \
    }

/* The relay's store in data, for reading or for an admin change. */
int tl__admin_open_store(const char *data, tl_store_t **store);
/* value as indented JSON on stdout: TL_EXIT_OK, or TL_EXIT_FAILURE without memory. */
int tl__admin_print_json(json_t *value);

#endif
