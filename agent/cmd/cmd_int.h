/*
 * What the agent's command files share, and nothing else: the program's
 * name in messages, the state directory and control socket every command
 * opens, and the way consent texts from the relay and technicians are shown
 * to the user (docs/consent.md "Asking the user"). Internal to agent/cmd/;
 * agent/main.c sees only agent/cmd/commands.h.
 *
 * Where each command lives:
 *   enroll.c    enroll
 *   run.c       run: the running agent's assembly (tunnel, control socket,
 *               consent, sessions, storage lanes)
 *   help.c      help: a ticket request with diagnostics, delivered by the
 *               running agent or once by this process
 *   status.c    status
 *   tickets.c   tickets: the user's tickets, asked of the relay through the
 *               running agent or once by this process
 *   grants.c    pending, approve, deny, sessions, end
 *   attend.c    attend, and the attended mode `help` stays in
 *   diag.c      diag
 *   common.c    the helpers below
 */
#ifndef TL_AGENT_CMD_INT_H
#define TL_AGENT_CMD_INT_H

#include "agent/consent.h"
#include "agent/state.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define PROGRAM "tierline-agent"
/* Buffers for text shown escaped: texts of up to TL_CONSENT_MAX_REASON bytes fit, at most
 * four bytes shown per byte. */
#define SHOWN_MAX (4 * TL_CONSENT_MAX_REASON + 8)

/* "tierline-agent COMMAND: WHAT: reason" on stderr; returns TL_EXIT_FAILURE. */
int tl__cmd_fail(const char *command, const char *what, int rc);

/* Resolves the state directory and loads it; prints why not on failure. */
int tl__cmd_open_state(const char *command, const char *dir, int must_be_enrolled,
                       tl_agent_state_t *state);

/* The running agent's control socket; prints why not and returns non-zero when there is none. */
int tl__cmd_control_socket(const char *command, const char *dir, char *path, size_t size);

/* A string member, or "?" when there is none. */
const char *tl__cmd_member(json_t *object, const char *key);

/*
 * A member as the user is shown it: escaped as one line (docs/consent.md
 * "Asking the user"). The texts come from the relay and from technicians;
 * buf holds the escaped form, clipped with "…" only if it would not fit.
 */
const char *tl__cmd_shown(char *buf, size_t size, json_t *object, const char *key);

/* An integer member, or 0. */
int64_t tl__cmd_int_of(json_t *object, const char *key);

/* Milliseconds since the epoch as local "YYYY-MM-DD HH:MM:SS", or "?". */
void tl__cmd_local_time_text(int64_t ms, char *out, size_t size);

/* A JSON array of scope names as the user reads them. */
void tl__cmd_scopes_text(json_t *scopes, char *out, size_t size);

/* The question as the user sees it (docs/consent.md "Asking the user"). */
void tl__cmd_print_question(json_t *question);

/*
 * Attended mode (attend.c): shows questions and activity from the running
 * agent, and asks the user about each question on the terminal. Until Ctrl-C
 * (0) or the agent stops (1). With follow, the queued request whose ticket
 * id is printed once delivered, into ticket.
 */
int tl__cmd_attend_loop(const char *command, const char *path, const char *follow, char *ticket,
                        size_t ticket_size);

#endif
