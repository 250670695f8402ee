/*
 * The agent's installed catalogue (docs/catalogue.md "On the agent"): the signed package the
 * relay carries, checked here before anything is written, and installed into the state
 * directory:
 *
 *   STATE/catalogue/N/             version N: runbooks/, kb/ and package.tlcat as received
 *   STATE/catalogue/installed.json {"current":N,"previous":M,"highest":H}, replaced atomically:
 *                                  switching it is the install (or the rollback)
 *   STATE/catalogue/reports.json   what was installed, refused or rolled back and not yet told
 *                                  to the relay (at most TL_AGENT_CATALOGUE_REPORTS)
 *   STATE/catalogue/lock           held while one of the above changes
 *
 * Only the current and the previous version are kept (after a rollback, the version left
 * too, until the next install). A package is taken only when signed by
 * the catalogue signing key pinned at enrollment and newer than every version installed
 * before (highest), so neither a downgrade nor a replay gets in, and a rollback sticks until a
 * newer package comes. Once a catalogue is installed, the agent's runbooks and articles come
 * from it alone; the shipped ones are used only while none is.
 */
#ifndef TL_AGENT_CATALOGUE_H
#define TL_AGENT_CATALOGUE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TL_STATE_CATALOGUE "catalogue"
#define TL_AGENT_CATALOGUE_REPORTS 64
#define TL_AGENT_CATALOGUE_WHY 512

typedef struct tl_agent_catalogue_state {
    uint64_t current;  /* 0: none installed, the shipped catalogue is used */
    uint64_t previous; /* 0: nothing to roll back to */
    uint64_t highest;  /* the newest version ever installed: a package must be newer */
} tl_agent_catalogue_state_t;

/* installed.json; all zeros when there is none. TL_EINVAL when it is damaged. */
int tl_agent_catalogue_state(const char *state_dir, tl_agent_catalogue_state_t *out);

/*
 * The runbooks and kb directories of the installed catalogue, and its version. TL_ENOTFOUND
 * when none is installed (use the shipped ones), another code when the state is damaged.
 */
int tl_agent_catalogue_dirs(const char *state_dir, char *runbooks, size_t runbooks_size, char *kb,
                            size_t kb_size, uint64_t *version);

/*
 * Checks the package (proto/catalogue.h, against trusted and the highest version installed)
 * and installs it; on success *version is its version. On refusal nothing changes and why says
 * why. Either way the outcome is logged and queued for the relay (reports.json) with the
 * package's sha256. Blocking: not on the loop.
 */
int tl_agent_catalogue_install(const char *state_dir, const char *trusted, const uint8_t *data,
                               size_t len, uint64_t *version, char *why, size_t why_size);

/* Back to the previous version: TL_ENOTFOUND when there is none. Logged and queued the same. */
int tl_agent_catalogue_rollback(const char *state_dir, uint64_t *from, uint64_t *to, char *why,
                                size_t why_size);

/* The reports not yet told to the relay (a new array, possibly empty). */
json_t *tl_agent_catalogue_reports(const char *state_dir);
/* The first count of them were told: they go. */
int tl_agent_catalogue_reports_done(const char *state_dir, size_t count);

#endif
