/*
 * Tier-0 self-help on the machine (docs/kb.md "Self-help"): the articles that fit the user's
 * problem, shown best first, and the fix an article suggests, applied by the user's own
 * consent under the rules a tier-1 technician's `fix` has, then checked again.
 *
 * `tierline-agent help` drives it (agent/cmd/help.c): it ranks, shows, asks, applies and
 * re-checks through these calls, and sends either a deflection (solved) or a ticket request
 * carrying what was shown and tried. Everything shown comes from articles and from the
 * machine: it is escaped here (proto/text.h).
 *
 * Blocking: the runbook runs in this process's own child, waited for with its timeout.
 */
#ifndef TL_AGENT_SELFHELP_H
#define TL_AGENT_SELFHELP_H

#include "agent/kb.h"
#include "proto/runbooks.h"
#include "proto/buf.h"
#include "proto/kbmatch.h"
#include "proto/selfhelp.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The most matches shown to the user, best first. */
#define TL_SELFHELP_SHOWN_MAX 3
/* The output of a runbook shown to the user; the rest is read and left out. */
#define TL_SELFHELP_OUTPUT_MAX (64 * 1024)

/*
 * The best matches for report (NULL: none; the conditions are then unknown) and the user's
 * description, at most TL_SELFHELP_SHOWN_MAX, into out; their number in *found. tl_kb_rank's
 * errors.
 */
int tl_selfhelp_rank(const tl_kb_t *kb, const json_t *report, const char *description,
                     tl_kb_match_t out[TL_SELFHELP_SHOWN_MAX], size_t *found);

/*
 * Match number (1-based) as the user reads it, appended to out, escaped: its title and
 * article id, the evidence, the suggested fix ("clean-temp (OLDER_THAN_DAYS=7)") or that
 * there is none, and note (NULL: none) on a line of its own under it: who may apply the fix
 * ("needs a technician: ..."). TL_EFULL or TL_ENOMEM from out.
 */
int tl_selfhelp_describe(const tl_kb_match_t *match, size_t number, const char *note,
                         tl_buf_t *out);

/* "RUNBOOK (NAME=VALUE, ...)" or "RUNBOOK" of fix into out, escaped for one line. */
void tl_selfhelp_fix_text(const tl_selfhelp_fix_t *fix, char *out, size_t size);

/*
 * Whether fix may run as self-help, from catalogue, on an agent running as root or not: the
 * checks of a tier-1 technician's `fix` (tl_runbooks_check, role tier1), and never a
 * privileged runbook. On success *run is filled (tl_runbooks_run_release it). TL_ENOTFOUND (no
 * runbook suggested, or none of that name in the catalogue), TL_EDENIED (privileged, or above
 * tier 1), TL_EINVAL (parameters that break the runbook's rules), with a one-line reason.
 */
int tl_selfhelp_check_fix(const tl_runbooks_t *catalogue, const tl_selfhelp_fix_t *fix,
                          bool as_root, tl_runbook_run_t *run, char *message, size_t size);

/* How a runbook run ended. */
typedef struct tl_selfhelp_ran {
    int exit_status; /* -1 when it ended by a signal or did not start */
    int signal;      /* the signal that ended it, 0 if none */
    bool timed_out;  /* stopped at its timeout */
    size_t output_bytes;
} tl_selfhelp_ran_t;

/*
 * Runs a checked runbook as this process's child: its own session, the fixed environment of
 * the agent's runbooks (docs/protocol.md §7.7: PATH, HOME, LANG, TL_AGENT_PID and the
 * parameters), stdin from /dev/null, stdout and stderr shown to shown_to escaped as they come
 * (at most TL_SELFHELP_OUTPUT_MAX bytes), stopped with SIGTERM then SIGKILL at its timeout.
 * 0 with *ran filled, or a negated errno when it could not be started.
 */
int tl_selfhelp_run_fix(const tl_runbook_run_t *run, FILE *shown_to, tl_selfhelp_ran_t *ran);

/* What a re-check said: TL_COND_FALSE is solved; evidence as tl_cond_eval gives it. */
tl_cond_result_t tl_selfhelp_recheck(const tl_article_t *article, const json_t *report,
                                     char *evidence, size_t size);

/*
 * The outcome of an applied fix as its row says it, from how the runbook ended and what the
 * re-check said: "solved", "not solved: the problem is still there (EVIDENCE)", "not solved:
 * the check could not be made again", with "; the runbook exited with status N" (or "was
 * stopped by signal N", "timed out") when it failed. At most TL_SELFHELP_OUTCOME_MAX bytes,
 * one line, valid UTF-8.
 */
void tl_selfhelp_outcome(const tl_selfhelp_ran_t *ran, tl_cond_result_t recheck,
                         const char *evidence, char out[TL_SELFHELP_OUTCOME_MAX + 1]);

#endif
