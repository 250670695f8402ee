/*
 * The running agent's side of catalogue delivery (docs/protocol.md §7.14, docs/catalogue.md):
 * on every connection, and every TL_CATALOGUE_SYNC_MS while connected, it tells the relay what
 * it installed, refused or rolled back (catalogue.report, from STATE/catalogue/reports.json),
 * then asks for the published package (catalogue.get, in chunks) when its version is newer
 * than any installed here, and installs it (agent/catalogue.h) off the loop. A package refused
 * once is not fetched again by this process.
 */
#ifndef TL_AGENT_CATALOGUE_SYNC_H
#define TL_AGENT_CATALOGUE_SYNC_H

#include "agent/state.h"
#include "agent/tunnel.h"
#include "proto/runbooks.h"

#include <stdint.h>
#include <uv.h>

#define TL_CATALOGUE_SYNC_MS (60u * 60u * 1000u)
/* Raw bytes per catalogue.get answer: base64 of it fits a frame with room to spare. */
#define TL_CATALOGUE_CHUNK (96u * 1024u)

typedef struct tl_catalogue_sync tl_catalogue_sync_t;

/* A version was installed; runbooks is its catalogue, loaded (the receiver owns it; may be NULL).
 */
typedef void (*tl_catalogue_installed_fn)(void *data, uint64_t version, tl_runbooks_t *runbooks);

tl_catalogue_sync_t *tl_catalogue_sync_new(uv_loop_t *loop, const tl_agent_state_t *state,
                                           tl_catalogue_installed_fn installed, void *data);
/* The tunnel is connected: report, then fetch. A round under way is not started twice. */
void tl_catalogue_sync_connected(tl_catalogue_sync_t *sync, tl_tunnel_t *tunnel);
/* After the tunnel is stopped; the rest goes once work in flight is done. NULL: no-op. */
void tl_catalogue_sync_free(tl_catalogue_sync_t *sync);

#endif
