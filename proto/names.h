/*
 * Names both programs agree on, as docs/consent.md allows them.
 *
 * A runbook's name is 1 to 48 of a-z, 0-9 and '-', not starting with '-'
 * (NULL is not one); a runbook parameter's name, the len bytes at name, is
 * 1 to 32 of A-Z, 0-9 and '_', starting with A-Z.
 */
#ifndef TL_NAMES_H
#define TL_NAMES_H

#include <stddef.h>

#define TL_RUNBOOK_NAME_MAX 48
#define TL_RUNBOOK_PARAM_NAME_MAX 32

int tl_runbook_name_valid(const char *name);
int tl_runbook_param_name_valid(const char *name, size_t len);

/* The edit distance (Levenshtein) of two names, for "did you mean"; names of more than
 * TL_NAME_DISTANCE_MAX bytes are as far as can be: (size_t)-1. */
#define TL_NAME_DISTANCE_MAX 127
size_t tl_name_distance(const char *a, const char *b);

#endif
