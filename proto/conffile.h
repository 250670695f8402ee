/*
 * The lines of a Tierline configuration file, as the console's config
 * (console/config.h), /etc/tierline/relay.conf and /etc/tierline/agent.conf
 * write them: "key = value", blank lines, comments from a '#' at a line's
 * start, and (where the caller allows them) "[section]" headers. This module
 * only splits lines and names their faults; what a key means and whether its
 * value is good is the caller's, through a callback per line.
 *
 * Errors name "FILE:LINE: reason": a line without '=', an empty key or
 * value, a key the caller does not know, a key given twice (in the same
 * section), a line longer than TL_CONFFILE_LINE_MAX bytes, a NUL byte, an
 * unknown or malformed section header. The walk stops at the first one.
 * Pure: bytes in, callbacks out; reading the file is the caller's.
 */
#ifndef TL_CONFFILE_H
#define TL_CONFFILE_H

#include <stddef.h>

#define TL_CONFFILE_LINE_MAX 4096
/* Most keys one file may know (duplicates are tracked with one bit each). */
#define TL_CONFFILE_KEYS_MAX 64

/* Flags of tl_conffile_walk. */
#define TL_CONFFILE_SECTIONS 0x01 /* "[name]" lines start a section; keys are "name.key" */

typedef struct tl_conffile_line {
    int number;      /* from 1 */
    const char *raw; /* the line as written, without its '\n'; raw_len bytes */
    size_t raw_len;
    const char *key;   /* NULL on a blank or comment line; "section.key" within a section */
    const char *value; /* trimmed; never empty when key is set */
    int key_index;     /* in the known keys; -1 with key NULL */
} tl_conffile_line_t;

/*
 * Called for every line, blank and comment ones too (key NULL), so a caller
 * that rewrites the file can keep them. Returns 0, or an error code with a
 * reason (without FILE:LINE, which the walk adds) in why.
 */
typedef int (*tl_conffile_line_fn)(void *ctx, const tl_conffile_line_t *line, char *why,
                                   size_t why_size);

typedef struct tl_conffile {
    const char *const *keys;     /* the known keys, NULL-terminated; at most TL_CONFFILE_KEYS_MAX */
    const char *known_text;      /* for "unknown setting": "relay, port, ..."; NULL: not listed */
    const char *const *sections; /* with TL_CONFFILE_SECTIONS: the known sections, NULL-ended */
    unsigned flags;
} tl_conffile_t;

/*
 * Walks data (len bytes) line by line, calling fn for each; stops at the
 * first fault. 0, or TL_EINVAL (or fn's code) with "PATH:LINE: reason" in why.
 */
int tl_conffile_walk(const tl_conffile_t *file, const char *path, const char *data, size_t len,
                     tl_conffile_line_fn fn, void *ctx, char *why, size_t why_size);

/* The index of key among file's keys, or -1. */
int tl_conffile_key_index(const tl_conffile_t *file, const char *key);

#endif
