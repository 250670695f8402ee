/*
 * Conditions over a diagnostics report (docs/kb.md "Conditions"): the little language
 * knowledge-base articles use to say when they apply and how their fix is checked, e.g.
 *
 *     any disks.mounts where (mount == "/var" and used_percent > 90)
 *     count(network.default_routes) == 0 or missing network.dns.nameservers
 *     time.synchronised == false and time.ntp_service_enabled == true
 *
 * A condition is parsed once and checked against the fields a report can have
 * (docs/diagnostics.md §5): a field that does not exist, or a comparison of a number with a
 * string, is refused with the column of the mistake. It is then evaluated on any number of
 * reports, by the agent (offline, to help the user) and by the relay alike.
 *
 * Evaluation has three outcomes: true, false, or unknown when a field it needs is absent (its
 * probe failed, or an older agent does not report it). `not`, `and` and `or` follow Kleene's
 * logic (not unknown is unknown; false and unknown is false; true or unknown is true), so an
 * article never applies, and a fix never counts as checked, on evidence that is not there.
 *
 * Pure: no I/O, no global state; a parsed condition may be evaluated from several threads.
 */
#ifndef TL_COND_H
#define TL_COND_H

#include <jansson.h>
#include <stddef.h>

/* The longest condition text, the deepest nesting and the most terms in one condition. */
#define TL_COND_TEXT_MAX 4096
#define TL_COND_DEPTH_MAX 16
#define TL_COND_NODES_MAX 256
/* A string literal's longest length in bytes. */
#define TL_COND_STRING_MAX 256

typedef struct tl_cond tl_cond_t;

typedef enum tl_cond_result {
    TL_COND_FALSE = 0,
    TL_COND_TRUE = 1,
    TL_COND_UNKNOWN = 2,
} tl_cond_result_t;

/*
 * Parses len bytes of text. TL_EINVAL and why ("column 12: disks.mount is not a field of the
 * report (did you mean disks.mounts?)") when it does not parse or names what a report cannot
 * hold; TL_ENOMEM. Nothing is returned on error.
 */
int tl_cond_parse(const char *text, size_t len, tl_cond_t **out, char *why, size_t why_size);
void tl_cond_free(tl_cond_t *cond);

/*
 * Evaluates cond on report (an object as `tierline-agent diag --json` prints it: the fields
 * are under its "sections"). When the result is true, evidence (if not NULL) says which values
 * made it so, escaped for one line ("disks.mounts[/var].used_percent = 97.31"); otherwise it is
 * "". A report that is not an object has no fields: the result is then unknown.
 */
tl_cond_result_t tl_cond_eval(const tl_cond_t *cond, const json_t *report, char *evidence,
                              size_t evidence_size);

/* The fields a condition may name, one per index ("disks.mounts[].used_percent"), for docs and
 * tests; NULL past the end. */
const char *tl_cond_field(size_t index);

#endif
