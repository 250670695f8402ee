/*
 * Whether to trust the relay's host key (docs/technicians.md, "The
 * console"). The key is never accepted silently:
 *   - a pinned fingerprint (config file, TIERLINE_HOST_KEY or --host-key)
 *     must match exactly; a mismatch is refused loudly, showing both;
 *   - with no pin, a person at a terminal is shown the fingerprint and asked;
 *     yes saves it (with the relay's address) to the config file;
 *   - with no pin and no terminal, the connection is refused with the
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
