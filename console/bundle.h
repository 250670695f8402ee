/*
 * Evidence bundles in the console (docs/technicians.md "The console"; the format is
 * proto/bundle.h):
 *
 *   tierline verify-bundle FILE    checks a bundle file: the archive whole, MANIFEST signed by
 *                                  relay.pem, every file's SHA-256, and relay.pem against a key
 *                                  the user trusts (--fingerprint, --key, or the relay pin the
 *                                  console is set up with);
 *   tierline ticket export T-N -o FILE
 *                                  downloads the relay's bundle as FILE.part, checks it as it
 *                                  arrives and against the host key of the relay it came from,
 *                                  and renames it FILE only then.
 *
 * Both read with bounded memory whatever the bundle's size (proto/bundle.h's check).
 */
#ifndef TL_CONSOLE_BUNDLE_H
#define TL_CONSOLE_BUNDLE_H

#include "console/client.h"

/* verify-bundle's exit statuses: 0 verified, 1 the bundle fails a check (or cannot be read),
 * 2 usage, 3 intact and signed, but there was no trusted key to compare the signer with. */
#define TL_BUNDLE_EXIT_UNTRUSTED 3

/*
 * Checks the bundle in the file at path. trusted is the fingerprint ("SHA256:...") of the key it
 * must be signed with, and trusted_source says where it came from ("--fingerprint"); NULL:
 * none. The outcome on stdout (OK) or stderr (what failed, naming the file), or as one JSON
 * object on stdout with json_out. Returns the exit status.
 */
int tl_bundle_verify_file(const char *path, const char *trusted, const char *trusted_source,
                          int json_out);

/*
 * `ticket export T-N -o output`, or with audit `audit export --ticket T-N -o output` (the same
 * bundle, recorded as an auditor's export). base supplies err_fd and the wake hook. Returns an exit
 * status, or a negative code from tl_client_exec() for the caller to report; a partial
 * output.part is removed either way.
 */
int tl_download_bundle(tl_client_t *client, const tl_exec_io_t *base, int audit, const char *ticket,
                       const char *output, int show_progress);

#endif
