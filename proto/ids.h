/*
 * Ticket and device ids as people and the wire see them: "T-42", "D-7".
 *
 * Inside the relay an id is the store's int64 (relay/store/store.h); the text form exists only
 * at the edges (commands, their output, messages to agents, audit subjects), and it is made and
 * read here alone. The agent and the console treat it as an opaque string.
 */
#ifndef TL_IDS_H
#define TL_IDS_H

#include <stdint.h>

#define TL_ID_TICKET 'T'
#define TL_ID_DEVICE 'D'
#define TL_ID_PROBLEM 'P'    /* a known problem (docs/desk.md "Known problems") */
#define TL_ID_DEFLECTION 'F' /* a problem self-help solved (docs/kb.md "Self-help") */
/* Room for any id's text form with its NUL: prefix, '-', 19 digits. */
#define TL_ID_TEXT 24

/*
 * "T-42" with prefix 'T' -> 42. Strict: the prefix, '-', then 1 to 16 digits without a leading
 * zero, nothing else; TL_EINVAL otherwise (*out untouched).
 */
int tl_id_parse(const char *text, char prefix, int64_t *out);
/* 42 with prefix 'T' -> "T-42" in out; returns out. */
char *tl_id_format(char out[TL_ID_TEXT], char prefix, int64_t id);

#endif
