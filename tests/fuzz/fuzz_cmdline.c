/*
 * Fuzz target for the technicians' command lines: the relay's splitter
 * (relay/net/exec_split.c, docs/technicians.md "Command lines") and the console's
 * quoting (console/quote.c), which promises that the split gives back
 * exactly the words it joined.
 *
 * The input is split as a command line. A line that splits must give at
 * most TL_EXEC_MAX_WORDS words, no word with a control character other than
 * tab and newline, and words that, quoted by the console and split again,
 * come back byte for byte. The input is also read as words separated by NUL
 * bytes: what the console accepts to quote, the relay must split back into
 * the same words (unless the line is over the relay's length or word limit).
 */
#include "console/quote.h"
#include "proto/err.h"
#include "relay/net/exec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_refused(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f;
}

/* Quotes argv, splits the result and checks the words come back. */
static void round_trip(int argc, char **argv)
{
    char *line = NULL;
    int bad_word = -2;
    int rc = tl_quote_words(argc, argv, &line, &bad_word);
    if (rc == TL_EINVAL) {
        /* Only a word with a refused byte may be refused, and it is named. */
        if (bad_word < 0 || bad_word >= argc)
            abort();
        const unsigned char *w = (const unsigned char *)argv[bad_word];
        int refused = 0;
        for (; *w != '\0'; w++)
            refused |= is_refused(*w);
        if (!refused)
            abort();
        return;
    }
    if (rc != 0)
        abort();
    size_t len = strlen(line);
    char *words = malloc(len + 1);
    char *again[TL_EXEC_MAX_WORDS + 1];
    int count = -1;
    if (words == NULL)
        abort();
    const char *problem = tl__exec_split_line(line, words, again, &count);
    if (problem == NULL) {
        if (count != argc)
            abort();
        for (int i = 0; i < argc; i++)
            if (strcmp(again[i], argv[i]) != 0)
                abort();
    } else if (len <= TL_EXEC_MAX_LINE && argc <= TL_EXEC_MAX_WORDS) {
        abort(); /* the console quoted something the relay cannot split */
    }
    free(words);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char *words = malloc(size + 1);
    char *argv[TL_EXEC_MAX_WORDS + 1];
    if (text == NULL || words == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';

    /* 1. The input as a command line (up to its first NUL, as SSH gives it). */
    int argc = -1;
    const char *problem = tl__exec_split_line(text, words, argv, &argc);
    if (problem == NULL) {
        if (argc < 0 || argc > TL_EXEC_MAX_WORDS || argv[argc] != NULL)
            abort();
        size_t total = 0;
        for (int i = 0; i < argc; i++) {
            for (const unsigned char *c = (const unsigned char *)argv[i]; *c != '\0'; c++)
                if (is_refused(*c))
                    abort();
            total += strlen(argv[i]) + 1;
        }
        if (total > strlen(text) + 1)
            abort();
        if (argc > 0)
            round_trip(argc, argv);
    } else if (argc != 0 || problem[0] == '\0') {
        abort();
    }

    /* 2. The input as words separated by NUL bytes, quoted and split back. */
    char *word_args[TL_EXEC_MAX_WORDS + 1];
    int word_count = 0;
    size_t start = 0;
    while (start <= size && word_count < TL_EXEC_MAX_WORDS + 1) {
        const uint8_t *nul = start < size ? memchr(data + start, '\0', size - start) : NULL;
        size_t end = nul != NULL ? (size_t)(nul - data) : size;
        memcpy(words + start, data + start, end - start);
        words[end] = '\0';
        word_args[word_count++] = words + start;
        start = end + 1;
    }
    round_trip(word_count, word_args);

    free(words);
    free(text);
    return 0;
}
