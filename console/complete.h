/*
 * Shell completion for the console (docs/console.md "Completion"): the words that may come
 * next on a `tierline` command line, from the commands the console knows without asking the
 * relay (its cached list, else the built-in one) and its own commands. Bash calls
 * `tierline __complete CWORD WORD...` through the function `tierline completion bash` prints;
 * nothing here connects anywhere, so completing is instant and works offline.
 */
#ifndef TL_CONSOLE_COMPLETE_H
#define TL_CONSOLE_COMPLETE_H

#include "console/command_list.h"

#include <stddef.h>
#include <stdio.h>

/* The most candidates written for one word. */
#define TL_COMPLETE_MAX 512

/* One of the console's own commands, as completion sees it. */
typedef struct tl_complete_own {
    const char *name;    /* one or two words: "evidence get" */
    const char *options; /* "--name VALUE<TAB>what it does\n" lines; NULL: none */
} tl_complete_own_t;

/*
 * Writes to out, one per line and sorted, the candidates for words[cword] among words[0..count)
 * (words[0] is the program, as bash's COMP_WORDS has it): the global options and the command
 * names for the first word, a group's second words ("ticket" -> "show", "take", ...), and a
 * command's options once it is named and the word starts with '-'. Only candidates starting
 * with the word as typed so far; nothing for a word that is an option's value or a positional
 * (the shell then completes file names). list may be NULL. 0, or TL_EINVAL for a cword outside
 * the words, TL_ENOMEM, TL_EIO.
 */
int tl_complete_write(FILE *out, const tl_command_list_t *list, const tl_complete_own_t *own,
                      size_t own_count, int cword, int count, char **words);

/* The bash function and `complete` line for program, as `completion bash` prints it. */
int tl_complete_bash_script(FILE *out, const char *program);

#endif
