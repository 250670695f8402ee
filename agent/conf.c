/*
 * The agent's settings table (agent/conf.h). The ranges are those of run's
 * options; their defaults live with the code that uses them, so most
 * entries have none here: unset means "that default".
 */
#include "agent/conf.h"

const tl_setting_def_t tl_agent_settings[] = {
    {"state_dir", "state", TL_SETTING_PATH, 0, 0, NULL, 0,
     "the agent's state folder; unset: $TIERLINE_AGENT_STATE, $XDG_STATE_HOME/tierline-agent or "
     "~/.local/state/tierline-agent",
     "per user"},
    {"log_level", "log-level", TL_SETTING_LEVEL, 0, 0, "info", TL_SETTING_RELOAD,
     "debug, info, warn or error", NULL},
    {"policy", "policy", TL_SETTING_PATH, 0, 0, NULL, 0,
     "the unattended policy; unset: STATE/policy.json (docs/consent.md)", "STATE/policy.json"},
    {"consent_timeout", "consent-timeout", TL_SETTING_DURATION, 1000, 86400000, NULL, 0,
     "how long a question waits for the user, 1s..1d; unset: the policy's, or 2m",
     "the policy's, or 2m"},
    {"runbooks", "runbooks", TL_SETTING_PATH, 0, 0, NULL, 0,
     "the runbook catalogue; unset: the installed signed one, or share/tierline/runbooks",
     "the installed or shipped catalogue"},
    {"shell", "shell", TL_SETTING_PATH, 0, 0, NULL, 0,
     "what technicians' shells run; unset: the agent user's login shell", "the login shell"},
    {"notify_interval", "notify-interval", TL_SETTING_DURATION, 0, 3600000, "10s", 0,
     "least time between two desktop notifications, 0s..1h", NULL},
    {"backoff_max_ms", "backoff-max-ms", TL_SETTING_UINT, 100, 3600000, "60000", 0,
     "longest wait between reconnection attempts, 100..3600000", NULL},
    {"files_max_bytes", "files-max-bytes", TL_SETTING_UINT, 1, 67108864, "67108864", 0,
     "largest file a technician may copy from or to this machine, in bytes, 1..67108864", NULL},
    {"files_max_count", "files-max-count", TL_SETTING_UINT, 1, 100000, "1000", 0,
     "most files copied under one grant, 1..100000", NULL},
    {0},
};

int tl_agent_settings_load(const char *config_path, tl_settings_t *settings, char *why,
                           size_t why_size)
{
    return tl_settings_read(settings, tl_agent_settings, config_path, TL_AGENT_CONFIG_ENV,
                            TL_AGENT_CONFIG_DEFAULT, why, why_size);
}
