/*
 * The technicians' commands, as SSH exec requests (docs/technicians.md).
 *
 * One table of { name, usage, summary, capability, run }: the dispatcher
 * checks the capability against the technician's role (relay/roles.h)
 * before anything runs, and `help` is printed from the same table, so the
 * commands, their help and the roles table cannot drift apart. Work that
 * reads or changes the store runs as a storage job (relay/worker.h); its
 * output goes back through the exec (relay/exec.h).
 *
 * Exit statuses: 0 success, 1 failure (not found, refused), 2 usage,
 * 77 permission denied.
 */
#ifndef TL_COMMANDS_H
#define TL_COMMANDS_H

#include "relay/exec.h"
#include "relay/sessions.h"
#include "relay/worker.h"

#define TL_EXIT_DENIED 77

typedef struct tl_commands_ctx {
    tl_worker_t *worker;
    tl_sessions_t *sessions; /* diag, run, join, fix, runbooks */
} tl_commands_ctx_t;

/* A tl_exec_dispatch_fn; ctx is a tl_commands_ctx_t. */
void tl_commands_dispatch(void *ctx, tl_exec_t *exec, int argc, char **argv);

/* Names as docs/consent.md allows them: a runbook's is 1 to 48 of a-z, 0-9
 * and '-', not starting with '-' (NULL is not one); a runbook parameter's,
 * the len bytes at name, is 1 to 32 of A-Z, 0-9 and '_', starting with A-Z. */
int tl_commands_runbook_name_valid(const char *name);
int tl_commands_param_name_valid(const char *name, size_t len);

#endif
