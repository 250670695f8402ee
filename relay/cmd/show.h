/*
 * How the commands print what others wrote (docs/technicians.md "Text from
 * others"): escaped, and in columns padded and clipped by display width.
 * Shared by the technicians' commands and the admin commands; internal to
 * relay/cmd. Each helper writes into the caller's buffer and returns it, for
 * printf.
 */
#ifndef TL_CMD_SHOW_H
#define TL_CMD_SHOW_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The member's string, or "-" when it is missing or not a string. */
const char *tl__cmd_member(json_t *object, const char *key);
/* The member escaped, on one line. */
const char *tl__cmd_shown(char *buf, size_t size, json_t *object, const char *key);
/* The member escaped, clipped or padded to exactly width columns. */
const char *tl__cmd_cell(char *buf, size_t size, json_t *object, const char *key, size_t width);
/* The member escaped, padded to at least width columns. */
const char *tl__cmd_padded(char *buf, size_t size, json_t *object, const char *key, size_t width);
/* An event's details as one line: compact JSON (control characters already \u escaped),
 * with what JSON leaves raw escaped too. The caller frees it; NULL without memory. */
char *tl__cmd_details_line(json_t *event);
/* A listing of tickets as both programs print it: a header, a row each, "(no tickets)". */
void tl__cmd_print_tickets(FILE *out, json_t *tickets);
/* value as indented JSON and a newline; 0 or TL_ENOMEM. */
int tl__cmd_print_json(FILE *out, json_t *value);

#endif
