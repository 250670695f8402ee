#include "console/trust.h"
#include "console/known_hosts.h"
#include "proto/err.h"
#include "proto/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

/* A whole small file, NUL-terminated, into a malloc'd buffer; NULL if missing or unreadable. */
static char *read_small_file(const char *path, size_t max, size_t *len)
{
    char *text = NULL;
    return tl_fs_read_file(path, max, 0, NULL, NULL, &text, len) == 0 ? text : NULL;
}

/* What the user's known_hosts files say of the presented key; where, in place. */
static tl_known_hosts_verdict_t known_hosts_verdict(const tl_config_t *config,
                                                    const char *presented, char *place,
                                                    size_t place_size)
{
    const char *home = tl_config_home();
    struct passwd *entry = getpwuid(getuid());
    const char *local_user = entry != NULL ? entry->pw_name : "";
    char ssh_config[TL_KNOWN_HOSTS_PATH_MAX];
    char *config_text = NULL;
    size_t config_len = 0, count = 0;
    static char files[TL_KNOWN_HOSTS_FILES_MAX][TL_KNOWN_HOSTS_PATH_MAX];
    if (home != NULL &&
        snprintf(ssh_config, sizeof ssh_config, "%s/.ssh/config", home) < (int)sizeof ssh_config)
        config_text = read_small_file(ssh_config, 1024 * 1024, &config_len);
    tl_known_hosts_files(config_text, config_len, config->relay, home, local_user, files, &count);
    free(config_text);
    tl_known_hosts_verdict_t verdict = TL_KNOWN_HOSTS_NONE;
    place[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        size_t len = 0;
        char *text = read_small_file(files[i], TL_KNOWN_HOSTS_FILE_MAX, &len);
        if (text == NULL)
            continue;
        int line = 0;
        tl_known_hosts_verdict_t found =
            tl_known_hosts_check(text, len, config->relay, config->port, presented, &line);
        free(text);
        if (found != TL_KNOWN_HOSTS_NONE && tl_known_hosts_combine(verdict, found) == found &&
            found != verdict) {
            verdict = found;
            snprintf(place, place_size, "%s:%d", files[i], line);
        }
    }
    return verdict;
}

static void refuse_known_hosts(const tl_config_t *config, const char *address,
                               const char *presented, tl_known_hosts_verdict_t verdict,
                               const char *place)
{
    fprintf(stderr,
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@   WARNING: THE RELAY'S HOST KEY %s   @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "Someone could be intercepting this connection, or the relay's key was replaced.\n"
            "  relay:          %s\n"
            "  it presented:   %s\n"
            "  known_hosts:    %s %s\n"
            "Nothing was sent to it. If the relay's key really changed, confirm the new\n"
            "fingerprint with the relay's admin (tierline-relay init prints it) and replace the\n"
            "line (ssh-keygen -R '%s' removes the old one).\n"
            "tierline: host key verification failed\n",
            verdict == TL_KNOWN_HOSTS_REVOKED ? "IS REVOKED IN KNOWN_HOSTS!   "
                                              : "DIFFERS FROM KNOWN_HOSTS!   ",
            address, presented,
            verdict == TL_KNOWN_HOSTS_REVOKED ? "revokes it at" : "lists another key at", place,
            config->port == 22 ? config->relay : address);
}

int tl_trust_host_key(tl_config_t *config, const char *presented, int ask)
{
    char address[300], place[TL_KNOWN_HOSTS_PATH_MAX + 16];
    tl_config_format_address(config->relay, config->port, address, sizeof address);
    /* As ssh: a revoked or different key listed for this address is refused, pin or not. */
    tl_known_hosts_verdict_t known = known_hosts_verdict(config, presented, place, sizeof place);
    if (known == TL_KNOWN_HOSTS_REVOKED || known == TL_KNOWN_HOSTS_MISMATCH) {
        refuse_known_hosts(config, address, presented, known, place);
        return TL_EPIN;
    }
    if (config->host_key[0] != '\0') {
        if (tl_fingerprint_equal(config->host_key, presented))
            return 0;
        refuse_mismatch(config, address, presented);
        return TL_EPIN;
    }
    if (known == TL_KNOWN_HOSTS_MATCH)
        return 0;
    if (!ask) {
        fprintf(stderr,
                "tierline: no host key is pinned for the relay at %s, and there is no terminal "
                "to ask.\n"
                "It presented %s.\n"
                "Confirm that fingerprint with the relay's admin (tierline-relay init prints it), "
                "then pin it\n"
                "for one command with --host-key %s (or TIERLINE_HOST_KEY), or for good with:\n"
                "  tierline setup --relay %s --user %s --host-key %s\n"
                "or add the relay's line to ~/.ssh/known_hosts (tierline-relay host-key "
                "--known-hosts %s prints it).\n",
                address, presented, presented, address, config->user, presented, address);
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
