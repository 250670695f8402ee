/*
 * The agent's configuration file, /etc/tierline/agent.conf
 * (docs/configuration.md): the settings of `run` and where the state
 * directory is, as a table (proto/settings.h). --config FILE (run, config),
 * else $TIERLINE_AGENT_CONFIG, else the default file, which may be missing.
 * The command line overrides the file, which overrides the built-in
 * defaults.
 *
 * The relay's address and its pinned key are not settings: they come from
 * the enrollment string, which the relay's own key vouches for, and live in
 * the state directory (relay.json); a file must not send the agent elsewhere.
 */
#ifndef TL_AGENT_CONF_H
#define TL_AGENT_CONF_H

#include "proto/settings.h"

#define TL_AGENT_CONFIG_DEFAULT "/etc/tierline/agent.conf"
#define TL_AGENT_CONFIG_ENV "TIERLINE_AGENT_CONFIG"

extern const tl_setting_def_t tl_agent_settings[];

/* The built-in defaults, then the file (config_path NULL: the usual one); why names FILE:LINE. */
int tl_agent_settings_load(const char *config_path, tl_settings_t *settings, char *why,
                           size_t why_size);

#endif
