/*
 * The technicians' commands, as SSH exec requests (docs/technicians.md).
 *
 * One table of entries { name, usage, summary, capability, argument spec,
 * work } (relay/cmd/table.c; each entry in the file of its group): the
 * dispatcher checks the capability against the technician's role
 * (proto/roles.h) before anything runs, reads the words with the entry's
 * declarative spec and the one shared parser (proto/cli.h), and `help`,
 * `help --json` and each COMMAND --help are printed from the same table, so
 * the commands, their help and the roles table cannot drift apart. Work
 * that reads or changes the store runs as a storage job
 * (relay/store/worker.h); its output goes back through the exec
 * (relay/net/exec.h).
 *
 * Exit statuses: 0 success, 1 failure (not found, refused), 2 usage,
 * 77 permission denied.
 */
#ifndef TL_COMMANDS_H
#define TL_COMMANDS_H

#include "relay/desk/sla.h"
#include "relay/net/exec.h"
#include "relay/net/web_auth.h"
#include "relay/sessions/sessions.h"
#include "relay/store/audit_checkpoint.h"
#include "relay/store/worker.h"

#include <jansson.h>
#include <openssl/types.h>
#include <uv.h>

typedef struct tl_commands_ctx {
    tl_worker_t *worker;
    tl_sessions_t *sessions; /* diag, run, join, fix, runbooks */
    /* The relay's key, which signs evidence bundles (ticket export); NULL: none can be made. */
    EVP_PKEY *bundle_key;
    /* The SLA targets and calendar (DATA/desk.json, relay/desk/desk_config.h): the clocks of
     * tickets, ticket show and the queues' order. Read-only while the relay runs. */
    const tl_sla_config_t *sla;
    /* The audit log's signed checkpoints (relay/store/audit_checkpoint.h): a ticket's close asks
     * for one. NULL: none is asked for. */
    tl_audit_checkpoints_t *checkpoints;
    /* The relay's folder: the audit commands read its log, checkpoints and audit key on the
     * storage worker (relay/store/audit_query.h). */
    const char *data_dir;
    /* The relay's loop: replay paces a recording on its timers. NULL: replay plays at once. */
    uv_loop_t *loop;
    /* The web view's links (relay/net/web_auth.h) and the address its links start with
     * ("https://host:port", no trailing slash); NULL: the web view is off, `web` says so. */
    tl_web_auth_t *web;
    const char *web_url;
} tl_commands_ctx_t;

/* A tl_exec_dispatch_fn; ctx is a tl_commands_ctx_t. */
void tl_commands_dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv);

/*
 * The commands as `help --json` lists them (its "commands" array): those
 * role may use, or every command when role is negative (relay/gen_commands.c
 * writes that list for the console's build). NULL without memory.
 */
json_t *tl_commands_help_listing(int role);

#endif
