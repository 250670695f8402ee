/*
 * Fuzz target for the console's config file (console/config.c,
 * docs/technicians.md "The console"): "key = value" lines.
 *
 * A file that does not parse must change nothing and name FILE:LINE. One that
 * parses must hold only valid values, and writing its settings back as
 * "key = value" lines must parse again to the same settings.
 */
#include "console/config.h"
#include "proto/err.h"
#include "proto/keys.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_word(const char *text, size_t max)
{
    size_t len = strlen(text);
    if (len == 0 || len > max)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f)
            abort();
}

/* The settings that came from the file, written back as a file. */
static size_t write_back(const tl_config_t *config, char *out, size_t size)
{
    int n = 0;
    if (config->relay_from == TL_CONFIG_FROM_FILE)
        n += snprintf(out + n, size - (size_t)n, "relay = %s%s%s\n",
                      strchr(config->relay, ':') ? "[" : "", config->relay,
                      strchr(config->relay, ':') ? "]" : "");
    if (config->port_from == TL_CONFIG_FROM_FILE)
        n += snprintf(out + n, size - (size_t)n, "port = %u\n", config->port);
    if (config->user_from == TL_CONFIG_FROM_FILE)
        n += snprintf(out + n, size - (size_t)n, "user = %s\n", config->user);
    if (config->identity_from == TL_CONFIG_FROM_FILE)
        n += snprintf(out + n, size - (size_t)n, "identity = %s\n", config->identity);
    if (config->host_key_from == TL_CONFIG_FROM_FILE)
        n += snprintf(out + n, size - (size_t)n, "host_key = %s\n", config->host_key);
    if (n < 0 || (size_t)n >= size)
        abort();
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TL_CONFIG_FILE_MAX)
        return 0; /* the reader refuses those before parsing */
    /* A fixed home, so "~/" expands the same way in every run. */
    setenv("HOME", "/home/fuzz", 1);
    unsetenv("XDG_CONFIG_HOME");

    tl_config_t config;
    tl_config_defaults(&config);
    snprintf(config.path, sizeof config.path, "/etc/fuzz/config");
    tl_config_t before = config;
    char why[1024];
    why[0] = '\0';
    int rc =
        tl_config_parse(&config, "/etc/fuzz/config", (const char *)data, size, why, sizeof why);
    if (rc != 0) {
        if (rc != TL_EINVAL || memcmp(&config, &before, sizeof config) != 0 ||
            strncmp(why, "/etc/fuzz/config:", 17) != 0 || why[17] < '1' || why[17] > '9')
            abort();
        return 0;
    }
    if (config.relay_from == TL_CONFIG_FROM_FILE)
        check_word(config.relay, TL_CONFIG_HOST_MAX);
    if (config.port < 1 || config.port > 65535)
        abort();
    if (config.user_from == TL_CONFIG_FROM_FILE)
        check_word(config.user, TL_CONFIG_USER_MAX);
    if (config.host_key_from == TL_CONFIG_FROM_FILE && !tl_fingerprint_valid(config.host_key))
        abort();
    if (config.identity_from == TL_CONFIG_FROM_FILE) {
        if (config.identity[0] == '\0')
            abort();
        for (const char *c = config.identity; *c != '\0'; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                abort();
    }

    static char text[TL_CONFIG_FILE_MAX];
    size_t len = write_back(&config, text, sizeof text);
    tl_config_t again;
    tl_config_defaults(&again);
    snprintf(again.path, sizeof again.path, "/etc/fuzz/config");
    if (tl_config_parse(&again, "/etc/fuzz/config", text, len, why, sizeof why) != 0 ||
        strcmp(again.relay, config.relay) != 0 || again.port != config.port ||
        strcmp(again.user, config.user) != 0 || strcmp(again.identity, config.identity) != 0 ||
        strcmp(again.host_key, config.host_key) != 0)
        abort();
    return 0;
}
