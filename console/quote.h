/*
 * Command lines for the relay's exec requests. SSH carries a command as one
 * string and the relay splits it back into words by the rules in
 * docs/technicians.md ("Command lines", relay/net/exec_split.c); this
 * module joins words so that the split gives back exactly the same words,
 * whatever bytes they hold.
 */
#ifndef TL_CONSOLE_QUOTE_H
#define TL_CONSOLE_QUOTE_H

#include <stddef.h>

/*
 * Joins argv[0..argc) with single spaces. A word made only of letters,
 * digits and _ @ % + = : , . / - goes as it is; any other word (the empty
 * word too) goes in single quotes, a single quote inside it written as '\''.
 * *out is malloc'd; the caller frees it. TL_EINVAL for argc < 1 or a word
 * holding a control character other than tab and newline (the relay refuses
 * those; *bad_word then says which word), TL_ENOMEM.
 */
int tl_quote_words(int argc, char *const *argv, char **out, int *bad_word);

#endif
