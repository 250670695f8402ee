/*
 * `tierline evidence get T-N ID [-o FILE]` (docs/technicians.md, "The
 * console"): asks the relay for the ticket's evidence list (`evidence T-N
 * --json`) to find the item and its size, then streams it (`evidence get
 * T-N SHA256`) to stdout or to FILE, with a progress bar on stderr when that
 * is a terminal. FILE is written as FILE.part and renamed only when every
 * byte has arrived and the SHA-256 of what arrived is the item's hash; a
 * failed or interrupted download leaves no FILE and no FILE.part.
 */
#ifndef TL_CONSOLE_DOWNLOAD_H
#define TL_CONSOLE_DOWNLOAD_H

#include "console/client.h"

/* Longest `evidence --json` answer the console reads. */
#define TL_DOWNLOAD_LIST_MAX (16u * 1024u * 1024u)

/*
 * The download. base supplies err_fd and the wake hook; the rest is set here.
 * Returns an exit status (0 done, 1 refused or damaged, or the relay's
 * status), or a negative code from tl_client_exec() (connection lost,
 * stopped by the wake hook) for the caller to report; either way a partial
 * FILE.part is removed.
 */
int tl_download_evidence(tl_client_t *client, const tl_exec_io_t *base, const char *ticket,
                         const char *id, const char *output, int show_progress);

#endif
