/*
 * `tierline-agent config check|show` (agent/conf.h, docs/configuration.md),
 * and the configured state directory every other command starts from.
 */
#include "agent/cmd/cmd_int.h"
#include "agent/cmd/commands.h"
#include "agent/conf.h"
#include "agent/state.h"
#include "proto/cli.h"
#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_USAGE "config check|show [--config FILE]"

int tl_agent_cmd_config(int argc, char **argv)
{
    const char *config = NULL, *positional[1];
    int count = 0;
    char why[1024];
    tl_cli_option_t options[] = {{"config", &config, NULL}, {0}};
    int status = tl_cli_parse(PROGRAM, "config", CONFIG_USAGE, argc, argv, 1, options, positional,
                              1, &count);
    if (status != 0)
        return status;
    int show = count == 1 && strcmp(positional[0], "show") == 0;
    if (count != 1 || (!show && strcmp(positional[0], "check") != 0)) {
        fprintf(stderr,
                PROGRAM " config: say check or show\nusage: " PROGRAM " " CONFIG_USAGE "\n");
        return TL_EXIT_USAGE;
    }
    tl_settings_t *settings = malloc(sizeof *settings);
    if (settings == NULL)
        return tl__cmd_fail("config", "reading the configuration", TL_ENOMEM);
    if (tl_agent_settings_load(config, settings, why, sizeof why) != 0) {
        fprintf(stderr, "%s\n", why);
        status = TL_EXIT_USAGE;
    } else {
        tl_settings_report(settings, show, stdout);
    }
    free(settings);
    return status;
}

int tl_agent_configure(const char *command, const char *config_path, tl_settings_t *settings)
{
    char why[1024];
    if (tl_agent_settings_load(config_path, settings, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM " %s: %s\n", command, why);
        return TL_EXIT_USAGE;
    }
    tl_state_set_configured_dir(tl_settings_text(settings, "state_dir"));
    return 0;
}
