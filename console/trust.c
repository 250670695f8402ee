#include "console/trust.h"
#include "proto/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *origin_of(const tl_config_t *config)
{
    switch (config->host_key_from) {
    case TL_CONFIG_FROM_FILE:
        return config->path;
    case TL_CONFIG_FROM_ENV:
        return "TIERLINE_HOST_KEY";
    case TL_CONFIG_FROM_COMMAND_LINE:
        return "--host-key";
    default:
        return "?";
    }
}

static void refuse_mismatch(const tl_config_t *config, const char *address, const char *presented)
{
    fprintf(stderr,
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@   WARNING: THE RELAY'S HOST KEY IS NOT THE ONE PINNED FOR IT!    @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "Someone could be intercepting this connection, or the relay's key was replaced.\n"
            "  relay:          %s\n"
            "  it presented:   %s\n"
            "  pinned (%s): %s\n"
            "Nothing was sent to it. If the relay's key really changed, confirm the new\n"
            "fingerprint with the relay's admin (tierline-relay init prints it) and pin it:\n"
            "  tierline setup --relay %s --user %s --host-key NEW-FINGERPRINT\n"
            "tierline: host key verification failed\n",
            address, presented, origin_of(config), config->host_key, address, config->user);
}

/* A short answer line from the terminal on stdin. 1 for yes. */
static int read_yes(void)
{
    char answer[16];
    size_t used = 0;
    int overlong = 0;
    for (;;) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            return 0; /* a signal: no */
        if (n <= 0 || c == '\n')
            break;
        if (used + 1 < sizeof answer)
            answer[used++] = c;
        else
            overlong = 1;
    }
    answer[used] = '\0';
    while (used > 0 && (answer[used - 1] == ' ' || answer[used - 1] == '\r'))
        answer[--used] = '\0';
    return !overlong && (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0);
}

int tl_trust_host_key(tl_config_t *config, const char *presented, int ask)
{
    char address[300];
    tl_config_format_address(config->relay, config->port, address, sizeof address);
    if (config->host_key[0] != '\0') {
        if (tl_fingerprint_equal(config->host_key, presented))
            return 0;
        refuse_mismatch(config, address, presented);
        return TL_EPIN;
    }
    if (!ask) {
        fprintf(stderr,
                "tierline: no host key is pinned for the relay at %s, and there is no terminal "
                "to ask.\n"
                "It presented %s.\n"
                "Confirm that fingerprint with the relay's admin (tierline-relay init prints it), "
                "then pin it\n"
                "for one command with --host-key %s (or TIERLINE_HOST_KEY), or for good with:\n"
                "  tierline setup --relay %s --user %s --host-key %s\n",
                address, presented, presented, address, config->user, presented);
        return TL_EDENIED;
    }
    fprintf(stderr,
            "The relay at %s is not known to this console.\n"
            "Its host key fingerprint is %s.\n"
            "Compare it with the one the relay's admin has (tierline-relay init prints it).\n"
            "Trust this relay and save its key? [y/N] ",
            address, presented);
    fflush(stderr);
    if (!read_yes()) {
        fprintf(stderr, "tierline: host key not trusted; nothing was sent to the relay\n");
        return TL_EDENIED;
    }
    char port[16];
    snprintf(port, sizeof port, "%u", config->port);
    const char *keys[] = {"relay", "port", "host_key"};
    const char *values[] = {config->relay, port, presented};
    char why[1024];
    int rc = tl_config_update_file(config->path, keys, values, 3, why, sizeof why);
    if (rc != 0)
        fprintf(stderr,
                "tierline: could not save the key (%s); trusting it for this command only\n", why);
    else
        fprintf(stderr, "Saved the relay %s and its key to %s.\n", address, config->path);
    snprintf(config->host_key, sizeof config->host_key, "%s", presented);
    config->host_key_from = TL_CONFIG_FROM_FILE;
    return 0;
}
