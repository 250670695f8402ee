/*
 * The runbook catalogue: the only fixes a technician can run on this machine
 * (docs/consent.md "Runbooks"). A catalogue is a directory of NAME.json
 * metadata files, each beside its executable NAME. Loading validates every
 * entry and skips (with a log line) the ones that are malformed or unsafe;
 * checking a run request validates the technician's role and every argument
 * against the metadata, so what reaches the executable is only values the
 * catalogue allows.
 *
 * The agent loads it to run fixes; the relay loads the same catalogue to
 * check the runbooks its knowledge-base articles suggest (docs/kb.md "The
 * relay's knowledge base"), so both apply one set of rules.
 */
#ifndef TL_RUNBOOKS_H
#define TL_RUNBOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tl_runbooks tl_runbooks_t;
typedef struct tl_runbook tl_runbook_t;

/* Bounds of a catalogue and of a run request. */
#define TL_RUNBOOKS_MAX_ENTRIES 256
#define TL_RUNBOOKS_MAX_PARAMS 16
#define TL_RUNBOOKS_MAX_VALUE 1024
#define TL_RUNBOOKS_MAX_METADATA (64 * 1024)
#define TL_RUNBOOKS_DEFAULT_TIMEOUT_MS (5u * 60u * 1000u)

/*
 * Loads the catalogue in dir. Entries that fail validation are skipped and
 * logged; an empty or partly bad directory still loads. NULL with *err set
 * when dir cannot be read (a negated errno) or on TL_ENOMEM.
 */
tl_runbooks_t *tl_runbooks_load(const char *dir, int *err);
/*
 * A catalogue of the one runbook `name` from its metadata text, bytes in:
 * the checks tl_runbooks_load makes on NAME.json, none of those on the files
 * (the executable's path is the name alone). NULL with *err (TL_EINVAL,
 * TL_ENOMEM) and a one-line reason when it would be skipped. For tests and
 * fuzzing.
 */
tl_runbooks_t *tl_runbooks_from_metadata(const char *name, const char *text, size_t len, int *err,
                                         char *reason, size_t reason_size);
void tl_runbooks_free(tl_runbooks_t *catalogue);

size_t tl_runbooks_count(const tl_runbooks_t *catalogue);
/* NULL when the catalogue holds no runbook of that name. */
const tl_runbook_t *tl_runbooks_find(const tl_runbooks_t *catalogue, const char *name);
/* What the runbook does: its metadata's one-line description. */
const char *tl_runbook_description(const tl_runbook_t *runbook);
/* Whether it needs root (its metadata's "privileged"). */
bool tl_runbook_privileged(const tl_runbook_t *runbook);

/* A checked run request: what to execute, with which parameters. */
typedef struct tl_runbook_run {
    const tl_runbook_t *runbook;
    const char *name;    /* the runbook's name */
    const char *path;    /* its executable */
    uint64_t timeout_ms; /* kill it after this long */
    bool privileged;
    char **env;       /* "TL_PARAM_NAME=VALUE", one per argument given, NULL-terminated */
    size_t env_count; /* entries in env */
    char *summary;    /* "restart-service SERVICE=cups", for the activity display */
} tl_runbook_run_t;

/*
 * Checks a request to run runbook `name` with `args` (a JSON object of
 * "NAME":"VALUE" strings; NULL counts as {}) for a technician of `role`, on
 * an agent running as root or not. On success fills *run (release it with
 * tl_runbooks_run_release) and returns 0. Otherwise returns TL_ENOTFOUND
 * (no such runbook), TL_EDENIED (role below min_role, a privileged runbook
 * for a role under tier3, or a privileged runbook while the agent is not
 * root) or TL_EINVAL (args not an object, an unknown parameter, a missing
 * required one, a value that is not a string, is over
 * TL_RUNBOOKS_MAX_VALUE bytes or does not match its pattern), with a
 * one-line reason in message.
 */
int tl_runbooks_check(const tl_runbooks_t *catalogue, const char *name, json_t *args,
                      const char *role, bool as_root, tl_runbook_run_t *run, char *message,
                      size_t message_size);
void tl_runbooks_run_release(tl_runbook_run_t *run);

/* The catalogue as the runbooks.list answer's "runbooks" array (protocol.md §7.9); new reference.
 */
json_t *tl_runbooks_list(const tl_runbooks_t *catalogue);

/*
 * The catalogue to use without --runbooks: share/tierline/runbooks beside
 * the directory of this executable when it exists, else the build's staged
 * copy of agent/runbooks. Copies it into out; TL_EFULL if it does not fit.
 */
int tl_runbooks_default_dir(char *out, size_t out_size);

#endif
