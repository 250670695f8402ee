/*
 * The running agent's side of witnessing the audit log (docs/protocol.md §7.15): on every
 * connection, at each audit.checkpoint notice from the relay (after a short random delay, so the
 * relay's agents do not all ask at once) and every TL_WITNESS_SYNC_MS while connected, it asks
 * for the latest checkpoint with a proof that it extends the one kept (audit.witness), judges it
 * off the loop (agent/witness.h), and tells the relay of each conflict it has not taken yet
 * (audit.conflict). One round at a time; a notice during a round asks for one more.
 */
#ifndef TL_AGENT_WITNESS_SYNC_H
#define TL_AGENT_WITNESS_SYNC_H

#include "agent/tunnel.h"

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define TL_WITNESS_SYNC_MS (60u * 60u * 1000u)
/* The most a notice waits before its round: a delay drawn from 0 to this. */
#define TL_WITNESS_SPREAD_MS 2000u

typedef struct tl_witness_sync tl_witness_sync_t;

tl_witness_sync_t *tl_witness_sync_new(uv_loop_t *loop, const char *state_dir);
/* The tunnel is connected: a round, unless one is under way. */
void tl_witness_sync_connected(tl_witness_sync_t *sync, tl_tunnel_t *tunnel);
/* The relay's audit.checkpoint notice (body borrowed, unchecked). */
void tl_witness_sync_notice(tl_witness_sync_t *sync, json_t *body);
/* After the tunnel is stopped; the rest goes once work in flight is done. NULL: no-op. */
void tl_witness_sync_free(tl_witness_sync_t *sync);

#endif
