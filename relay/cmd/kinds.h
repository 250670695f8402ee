/*
 * The relay's kinds of command-line values, as checks for the shared parser
 * (proto/cli.h, TL_CLI_CHECK): each takes one word, says whether it is good
 * and, given somewhere to put it, stores what the command needs. The command
 * specs of relay/cmd name them; their problem texts are the ones the
 * technicians and admins see (docs/technicians.md). Internal to relay/cmd.
 */
#ifndef TL_CMD_KINDS_H
#define TL_CMD_KINDS_H

#include "proto/addr.h"
#include "proto/cli.h"

#include <stddef.h>
#include <stdint.h>

/* Longest note or resolution text (ticket note, ticket resolve). */
#define TL_NOTE_MAX 4000

/* A ticket named on the command line: its number, and the text as typed ("T-42"). */
typedef struct tl__ticket_arg {
    int64_t id;
    char text[32];
} tl__ticket_arg_t;

/* The tickets' --assignee NAME and --mine: whichever came last wins. */
typedef struct tl__assignee_arg {
    char name[65];
    int mine;
} tl__assignee_arg_t;

/* Words joined by single spaces, as a note's TEXT... */
typedef struct tl__text_arg {
    char text[TL_NOTE_MAX + 1];
    size_t len;
    int words;
} tl__text_arg_t;

/* HOST:PORT, split. */
typedef struct tl__host_port {
    char host[TL_ADDR_HOST_MAX + 1];
    uint16_t port;
} tl__host_port_t;

/* T-N: tl__ticket_arg_t. */
int tl__kind_ticket(const char *word, void *out, const char **problem);
/* A tier as one digit, 0..4: int. */
int tl__kind_tier(const char *word, void *out, const char **problem);
/* A ticket status (new, open, ...): char[16]. */
int tl__kind_status(const char *word, void *out, const char **problem);
/* An account name: char[65]. */
int tl__kind_account(const char *word, void *out, const char **problem);
/* --assignee NAME: tl__assignee_arg_t (and --mine no longer holds). */
int tl__kind_assignee(const char *word, void *out, const char **problem);
/* One more word of a text: tl__text_arg_t, at most TL_NOTE_MAX bytes in all. */
int tl__kind_text_word(const char *word, void *out, const char **problem);
/* An evidence item's SHA-256, or a prefix of 8 or more of its lowercase hex digits: char[65]. */
int tl__kind_evidence_id(const char *word, void *out, const char **problem);
/* How long a session's grant should last: "90s", "15m", "1h30m", 1m..24h: uint32_t seconds. */
int tl__kind_grant_duration(const char *word, void *out, const char **problem);
/* A runbook's name: const char *. */
int tl__kind_runbook(const char *word, void *out, const char **problem);
/* One more NAME=VALUE of a runbook: tl_cli_words_t, no NAME twice. */
int tl__kind_runbook_arg(const char *word, void *out, const char **problem);
/* One more word of the command run runs: tl_cli_words_t. */
int tl__kind_command_word(const char *word, void *out, const char **problem);
/* ADDR:PORT as a listener takes it; nothing stored. */
int tl__kind_listen_address(const char *word, void *out, const char **problem);
/* HOST:PORT: tl__host_port_t. */
int tl__kind_host_port(const char *word, void *out, const char **problem);

#endif
