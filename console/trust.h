/*
 * Whether to trust the relay's host key (docs/technicians.md, "The
 * console"). The key is never accepted silently:
 *   - the user's known_hosts files, read as ssh reads them
 *     (console/known_hosts.h), are honoured with ssh's strictness: a key
 *     listed for the relay's address is trusted; a different key listed for
 *     it, or a revoked one, is refused loudly, naming the file and line;
 *   - a pinned fingerprint (config file, TIERLINE_HOST_KEY or --host-key)
 *     must match exactly; a mismatch is refused loudly, showing both;
 *   - with neither, a person at a terminal is shown the fingerprint and
 *     asked; yes saves it (with the relay's address) to the config file;
 *   - with neither and no terminal, the connection is refused with the
 *     fingerprint and how to pin it.
 * Messages go to stderr; the caller exits 255 on refusal, as ssh does.
 */
#ifndef TL_CONSOLE_TRUST_H
#define TL_CONSOLE_TRUST_H

#include "console/config.h"

/*
 * 0 to go on; TL_EPIN for a mismatch; TL_EDENIED when there is no pin and
 * the key was not accepted. ask is nonzero when stdin is a terminal.
 */
int tl_trust_host_key(tl_config_t *config, const char *presented, int ask);

#endif
