/*
 * A runbook as one file (docs/kb.md "Runbook proposals"): the executable with its metadata in a
 * comment header right after the #! line, as tier 3 proposes it over SSH. The header holds
 * exactly what the catalogue keeps as NAME.json (docs/consent.md "Runbooks"), each line behind
 * a "#", and is checked by the same parser the agent and the catalogue use
 * (tl_runbooks_from_metadata). Bytes in, bytes out: no I/O.
 *
 *     #!/bin/sh
 *     # tierline-runbook
 *     # {"name": "say-hello", "description": "Print a greeting", "min_role": "tier1",
 *     #  "privileged": false}
 *     # end tierline-runbook
 *     echo hello
 */
#ifndef TL_RUNBOOK_SCRIPT_H
#define TL_RUNBOOK_SCRIPT_H

#include <stddef.h>

/* A proposed script is at most this many bytes, header included. */
#define TL_RUNBOOK_SCRIPT_MAX (64 * 1024)
#define TL_RUNBOOK_SCRIPT_BEGIN "# tierline-runbook"
#define TL_RUNBOOK_SCRIPT_END "# end tierline-runbook"

typedef struct tl_runbook_script {
    char name[49];  /* the runbook's name, from the metadata */
    char *metadata; /* the header's JSON, as NAME.json holds it; owned */
    size_t metadata_len;
} tl_runbook_script_t;

/*
 * Checks a script with its header: text of len bytes (no NUL, at most TL_RUNBOOK_SCRIPT_MAX)
 * starts with "#!", its second line is TL_RUNBOOK_SCRIPT_BEGIN, the lines up to
 * TL_RUNBOOK_SCRIPT_END all start with "#" and, that "#" and one space after it removed, are
 * metadata tl_runbooks_from_metadata takes. 0 and *out filled (release it with
 * tl_runbook_script_clear), or TL_EINVAL with "LINE: reason" in reason (LINE counted from 1 in
 * text), or TL_ENOMEM.
 */
int tl_runbook_script_parse(const char *text, size_t len, tl_runbook_script_t *out, char *reason,
                            size_t reason_size);
void tl_runbook_script_clear(tl_runbook_script_t *script);

#endif
