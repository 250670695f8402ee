/*
 * OpenSSH's known_hosts files, read as ssh reads them, so the console trusts
 * the relay a technician already trusts with ssh (docs/technicians.md, "The
 * host key"), with the same strictness: a listed key that differs is refused.
 *
 * Pure: the caller reads the files and hands their bytes in. What is
 * understood: "HOSTS KEYTYPE BASE64 [COMMENT]" lines, comments and blank
 * lines; host patterns separated by commas with * and ? wildcards and !
 * negation; "[host]:port" for ports other than 22; hashed names
 * ("|1|SALT|HASH", HashKnownHosts); the @revoked marker. @cert-authority
 * lines and anything unreadable are skipped, as ssh skips them.
 *
 * Which files: those the user's ssh would read for the host. From
 * ~/.ssh/config only UserKnownHostsFile and GlobalKnownHostsFile in simple
 * form are taken (at the top, or in a "Host" block whose patterns match the
 * host; "Match" blocks and Include are not followed); otherwise ssh's
 * defaults: ~/.ssh/known_hosts, ~/.ssh/known_hosts2,
 * /etc/ssh/ssh_known_hosts, /etc/ssh/ssh_known_hosts2.
 */
#ifndef TL_CONSOLE_KNOWN_HOSTS_H
#define TL_CONSOLE_KNOWN_HOSTS_H

#include <stddef.h>

#define TL_KNOWN_HOSTS_FILES_MAX 8
#define TL_KNOWN_HOSTS_PATH_MAX 4096
/* A known_hosts file larger than this is not read (ssh's are kilobytes). */
#define TL_KNOWN_HOSTS_FILE_MAX (16 * 1024 * 1024)

typedef enum tl_known_hosts_verdict {
    TL_KNOWN_HOSTS_NONE = 0, /* no entry names the host */
    TL_KNOWN_HOSTS_MATCH,    /* an entry for the host holds the presented key */
    TL_KNOWN_HOSTS_MISMATCH, /* entries for the host exist, none holds the key */
    TL_KNOWN_HOSTS_REVOKED,  /* the key is marked @revoked for the host */
} tl_known_hosts_verdict_t;

/*
 * Judges the key with fingerprint ("SHA256:...") presented by host at port
 * against one file's text (len bytes, need not end in NUL). *line_out is the
 * 1-based line that decided it: the matching, revoked or first differing
 * entry; 0 for NONE.
 */
tl_known_hosts_verdict_t tl_known_hosts_check(const char *text, size_t len, const char *host,
                                              unsigned port, const char *fingerprint,
                                              int *line_out);

/* Several files' verdicts as ssh combines them: REVOKED, then MATCH, then MISMATCH. */
tl_known_hosts_verdict_t tl_known_hosts_combine(tl_known_hosts_verdict_t a,
                                                tl_known_hosts_verdict_t b);

/*
 * The files ssh would read for host, from the text of the user's ssh config
 * (NULL or empty: none), with "~/" and "%d" as home and "%u" as user. Writes
 * up to TL_KNOWN_HOSTS_FILES_MAX paths to files (each TL_KNOWN_HOSTS_PATH_MAX
 * bytes) and their number to *count. A value this cannot expand is left out.
 */
void tl_known_hosts_files(const char *ssh_config, size_t len, const char *host, const char *home,
                          const char *user, char files[][TL_KNOWN_HOSTS_PATH_MAX], size_t *count);

#endif
