/*
 * tierline setup: writes the console's settings to its config file
 * (console/config.h), validated first as the running console would read
 * them, and says what the file now holds (docs/technicians.md "The console").
 */
#include "console/setup.h"
#include "console/config.h"
#include "proto/cli.h"
#include "proto/err.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRAM "tierline"

const char tl_setup_usage[] = "setup --relay HOST[:PORT] --user NAME [--identity FILE] "
                              "[--host-key SHA256:...] [--json]";

int tl_setup_run(const char *config_path, int argc, char **argv)
{
    const char *relay = NULL, *user = NULL, *identity = NULL, *host_key = NULL, *positional[1];
    int json_out = 0, count;
    tl_cli_option_t options[] = {{"relay", &relay, NULL},       {"user", &user, NULL},
                                 {"identity", &identity, NULL}, {"host-key", &host_key, NULL},
                                 {"json", NULL, &json_out},     {0}};
    /* tl_cli_parse counts from argv[first]; our argv[0] is the command. */
    int status = tl_cli_parse(PROGRAM, "setup", tl_setup_usage, argc, argv, 1, options, positional,
                              0, &count);
    if (status != 0)
        return status;
    if (relay == NULL || user == NULL) {
        fprintf(stderr, PROGRAM " setup: --relay and --user are required\nusage: " PROGRAM " %s\n",
                tl_setup_usage);
        return TL_EXIT_USAGE;
    }
    if (config_path[0] == '\0') {
        fprintf(stderr, PROGRAM " setup: no home directory to keep the config file in\n");
        return TL_EXIT_FAILURE;
    }
    /* Validate everything first, as the running console would read it. */
    tl_config_t wanted;
    char why[1024];
    tl_config_defaults(&wanted);
    const char *keys[] = {"relay", "user", "identity", "host_key"};
    const char *values[] = {relay, user, identity, host_key};
    const char *flags[] = {"--relay", "--user", "--identity", "--host-key"};
    for (int i = 0; i < 4; i++) {
        if (values[i] != NULL &&
            tl_config_set(&wanted, keys[i], values[i], TL_CONFIG_FROM_COMMAND_LINE, flags[i], why,
                          sizeof why) != 0) {
            fprintf(stderr, PROGRAM " setup: %s: %s\n", flags[i], why);
            return TL_EXIT_USAGE;
        }
    }
    /* The pin belongs to the relay it was made for: a new relay drops the old pin. */
    tl_config_t file_config;
    int exists = 0;
    tl_config_defaults(&file_config);
    if (tl_config_load_file(&file_config, config_path, &exists, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM " setup: %s\n", why);
        return TL_EXIT_USAGE;
    }
    const tl_config_t *previous = &file_config;
    int same_relay = previous->relay_from == TL_CONFIG_FROM_FILE &&
                     strcmp(previous->relay, wanted.relay) == 0 && previous->port == wanted.port;
    int drop_pin =
        host_key == NULL && !same_relay && previous->host_key_from == TL_CONFIG_FROM_FILE;
    char port[16];
    snprintf(port, sizeof port, "%u", wanted.port);
    const char *update_keys[5] = {"relay", "port", "user"};
    const char *update_values[5] = {wanted.relay, port, wanted.user};
    size_t n = 3;
    if (identity != NULL) {
        update_keys[n] = "identity";
        update_values[n++] = wanted.identity;
    }
    if (host_key != NULL || drop_pin) {
        update_keys[n] = "host_key";
        update_values[n++] = host_key != NULL ? wanted.host_key : NULL;
    }
    int rc = tl_config_update_file(config_path, update_keys, update_values, n, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, PROGRAM " setup: %s\n", why);
        return rc == TL_EINVAL ? TL_EXIT_USAGE : TL_EXIT_FAILURE;
    }
    /* What the file now says, read back as any later command will read it. */
    tl_config_t saved;
    tl_config_defaults(&saved);
    if (tl_config_load_file(&saved, config_path, &exists, why, sizeof why) != 0) {
        fprintf(stderr, PROGRAM " setup: %s\n", why);
        return TL_EXIT_FAILURE;
    }
    char address[300];
    tl_config_format_address(saved.relay, saved.port, address, sizeof address);
    int identity_readable = access(saved.identity, R_OK) == 0;
    int identity_errno = identity_readable ? 0 : errno;
    if (json_out) {
        json_t *report =
            json_pack("{s:s, s:s, s:i, s:s, s:s, s:b, s:s?, s:b}", "path", saved.path, "relay",
                      saved.relay, "port", (int)saved.port, "user", saved.user, "identity",
                      saved.identity, "identity_readable", identity_readable, "host_key",
                      saved.host_key[0] != '\0' ? saved.host_key : NULL, "dropped_pin", drop_pin);
        char *text =
            report != NULL ? json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(report);
        if (text == NULL) {
            fprintf(stderr, PROGRAM " setup: out of memory\n");
            return TL_EXIT_FAILURE;
        }
        printf("%s\n", text);
        free(text);
        return TL_EXIT_OK;
    }
    printf("Wrote %s\n  relay:    %s\n  user:     %s\n  identity: %s\n  host key: %s\n", saved.path,
           address, saved.user, saved.identity,
           saved.host_key[0] != '\0'
               ? saved.host_key
               : "not pinned (~/.ssh/known_hosts, or the first connection shows it and asks)");
    if (drop_pin)
        printf("The key pinned for the previous relay was removed.\n");
    if (!identity_readable)
        printf("Note: %s cannot be read yet (%s); create it with ssh-keygen -t ed25519 -f %s\n",
               saved.identity, strerror(identity_errno), saved.identity);
    return TL_EXIT_OK;
}
