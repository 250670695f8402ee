/*
 * `tierline pull T-N MACHINE_PATH [LOCAL]` and `tierline push T-N LOCAL
 * MACHINE_PATH` (docs/technicians.md, "Files"): files to and from a ticket's
 * machine through the relay's SFTP service (docs/protocol.md §7.16), moved by
 * the stock OpenSSH scp, which shows its own progress meter on a terminal and
 * the relay's lines (consent, refusals) as they come.
 *
 * The console connects first and judges the relay's host key as every
 * command does (pin or known_hosts, console/trust.h); scp is then told to
 * trust exactly that key and nothing else (a known_hosts file of one line
 * under a fixed alias, no other file, strict checking), to sign in with the
 * console's identity alone, and to read no ssh configuration, so it reaches
 * the relay the console checked and nothing else.
 */
#ifndef TL_CONSOLE_TRANSFER_H
#define TL_CONSOLE_TRANSFER_H

#include <stddef.h>

/* The name scp knows the relay by in the one-line known_hosts file. */
#define TL_TRANSFER_HOST_ALIAS "tierline-relay"
/* Longest machine path (the relay's bound, docs/protocol.md §7.16). */
#define TL_TRANSFER_PATH_MAX 4096
/* Most words of the scp command line built here. */
#define TL_TRANSFER_ARGV_MAX 40

typedef struct tl_transfer {
    int push;                 /* 0: from the machine to here; 1: from here to the machine */
    const char *ticket;       /* "T-N" */
    const char *machine_path; /* on the ticket's machine; a relative one is taken from "/" */
    const char *local_path;   /* here; NULL on a pull: the current directory */
    const char *host;         /* the relay */
    unsigned port;
    const char *user;
    const char *identity;    /* private key file */
    const char *known_hosts; /* file holding the relay's key under TL_TRANSFER_HOST_ALIAS */
    unsigned keepalive;      /* seconds; 0: none */
} tl_transfer_t;

/* The scp command line, words owned by the struct. */
typedef struct tl_transfer_argv {
    char *argv[TL_TRANSFER_ARGV_MAX + 1]; /* NULL-terminated */
    size_t count;
} tl_transfer_argv_t;

/*
 * Checks the ticket and paths: 0, or TL_EINVAL with the reason in why (a
 * ticket that is not T-N, an empty path, a machine path longer than
 * TL_TRANSFER_PATH_MAX or holding a control character).
 */
int tl_transfer_check(const tl_transfer_t *t, char *why, size_t size);

/*
 * The scp command line for t (after tl_transfer_check): 0, or TL_ENOMEM.
 * The remote side is "HOST:T-N/PATH" (the relay's tree, §7.16); a relative
 * local path gets "./" in front, so a colon in it never names a host.
 */
int tl_transfer_argv(const tl_transfer_t *t, tl_transfer_argv_t *out);
void tl_transfer_argv_free(tl_transfer_argv_t *argv);

/*
 * Writes the one-line known_hosts file for key_line ("TYPE BASE64", from
 * tl_client_host_key_line) in the temporary directory: 0 and its path in
 * path, or a negated errno.
 */
int tl_transfer_known_hosts(const char *key_line, char *path, size_t size);

/*
 * Runs argv (scp) and waits for it; a stop signal the console catches
 * (console/term.h) is passed on to it. Returns its exit status, 128+N when
 * a signal ended it, or a negated errno when it could not start (127 as a
 * shell would for "not found" is left to the caller to say).
 */
int tl_transfer_spawn(char *const argv[]);

#endif
