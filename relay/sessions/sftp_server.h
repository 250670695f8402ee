/*
 * The relay's SFTP server, one per technician's `sftp` subsystem channel
 * (docs/protocol.md §7.16): bytes in, bytes out, no I/O, so it is tested
 * and fuzzed without a network.
 *
 * It owns the protocol: packets (proto/sftp.h), the virtual tree ("/" lists
 * the tickets, "/T-42/..." is that machine), handles, the order of reads,
 * the per-session limits, and which operations exist at all (the rest are
 * OP_UNSUPPORTED). What touches a machine goes to a backend — the caller —
 * as one call per request; the backend answers each call exactly once, at
 * once or later, with one of the tl_sftp_server_answer_*() functions and
 * the op it was given.
 *
 * Memory is bounded: input is taken one packet at a time, and only while
 * fewer than TL_SFTP_SERVER_MAX_PENDING requests wait on the backend and
 * the output queued for the client is under TL_SFTP_SERVER_HIGH_WATER, so a
 * client that stops reading stops being read (the SSH window does the rest).
 */
#ifndef TL_SFTP_SERVER_H
#define TL_SFTP_SERVER_H

#include "proto/sftp.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tl_sftp_server tl_sftp_server_t;

/* Requests waiting on the backend at once; handles open at once; entries of one directory. */
#define TL_SFTP_SERVER_MAX_PENDING 64u
#define TL_SFTP_SERVER_MAX_HANDLES 16u
#define TL_SFTP_SERVER_MAX_ENTRIES 4096u
/* Output queued for the client above which no more input is taken; hard cap. */
#define TL_SFTP_SERVER_HIGH_WATER (1024u * 1024u)
/* Room for every waiting request's largest answer on top of the high-water mark. */
#define TL_SFTP_SERVER_MAX_OUTPUT (8u * 1024u * 1024u)

typedef struct tl_sftp_server_limits {
    uint64_t max_file_bytes; /* a file pulled or pushed; 0: none */
    uint32_t max_files;      /* files opened in the session; 0: none */
} tl_sftp_server_limits_t;

/* One entry of a directory, as the backend answers a listing. */
typedef struct tl_sftp_entry {
    const char *name; /* one component: no "/", no control character */
    tl_sftp_attrs_t attrs;
} tl_sftp_entry_t;

/*
 * file numbers a file for the backend from its open to its close. Paths are
 * resolved (tl_sftp_resolve) and never the root. open_read and open_write
 * are answered with answer_status (TL_SFTP_OK: open). A read gives the next
 * len bytes of the file, all of them unless the file ends (a shorter answer
 * is its end), since reads are asked for in order. close is told whether
 * the transfer failed (aborted: the backend drops a written file).
 */
typedef struct tl_sftp_backend {
    void (*list_tickets)(void *ctx, uint32_t op); /* answer_entries */
    void (*stat)(void *ctx, uint32_t op, const tl_sftp_vpath_t *path,
                 int follow);                                          /* answer_attrs */
    void (*list)(void *ctx, uint32_t op, const tl_sftp_vpath_t *path); /* answer_entries */
    void (*open_read)(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path);
    void (*open_write)(void *ctx, uint32_t op, uint32_t file, const tl_sftp_vpath_t *path,
                       uint32_t mode);                                 /* answer_status */
    void (*read)(void *ctx, uint32_t op, uint32_t file, uint32_t len); /* answer_data */
    void (*write)(void *ctx, uint32_t op, uint32_t file, const uint8_t *data,
                  size_t len);                                         /* answer_status */
    void (*close)(void *ctx, uint32_t op, uint32_t file, int aborted); /* answer_status */
    /* Optional: a path refused before any call above (it climbs out of the tree, holds a
     * control character, ...), or a file over the byte limit, with the sentence the client is
     * answered; nothing to answer. */
    void (*refused)(void *ctx, const char *why);
} tl_sftp_backend_t;

tl_sftp_server_t *tl_sftp_server_new(const tl_sftp_backend_t *backend, void *ctx,
                                     const tl_sftp_server_limits_t *limits);
/* NULL is a no-op. Files still open are not closed here: the owner ends them. */
void tl_sftp_server_free(tl_sftp_server_t *server);

/*
 * Offers the client's bytes; returns how many were taken (0..len). The rest
 * is offered again after an answer or once output has drained. After a
 * fatal error (tl_sftp_server_failed) nothing more is taken.
 */
size_t tl_sftp_server_input(tl_sftp_server_t *server, const uint8_t *bytes, size_t len);
/* Why the session must end (a length out of bounds, a malformed packet), or NULL. */
const char *tl_sftp_server_failed(const tl_sftp_server_t *server);

/* What is queued for the client; the caller sends some and consumes it. */
const uint8_t *tl_sftp_server_output(const tl_sftp_server_t *server, size_t *len);
void tl_sftp_server_consume(tl_sftp_server_t *server, size_t len);
/* 1 while input is held back (waiting requests or queued output at their bounds). */
int tl_sftp_server_blocked(const tl_sftp_server_t *server);

/* Answers. status is TL_SFTP_*; message is for the technician (escaped by the caller). */
void tl_sftp_server_answer_status(tl_sftp_server_t *server, uint32_t op, uint32_t status,
                                  const char *message);
void tl_sftp_server_answer_attrs(tl_sftp_server_t *server, uint32_t op,
                                 const tl_sftp_attrs_t *attrs);
/* A whole directory (or the tickets); over TL_SFTP_SERVER_MAX_ENTRIES is a FAILURE. */
void tl_sftp_server_answer_entries(tl_sftp_server_t *server, uint32_t op,
                                   const tl_sftp_entry_t *entries, size_t count);
/* A read: len 0 is the end of the file. */
void tl_sftp_server_answer_data(tl_sftp_server_t *server, uint32_t op, const uint8_t *data,
                                size_t len);

#endif
