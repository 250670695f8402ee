/*
 * Terminal recordings of shell and observe sessions: asciicast v2 (the
 * format `asciinema play` reads), gzip-compressed, streamed to disk while the
 * session runs.
 *
 * File: a header line {"version":2,"width":W,"height":H,"timestamp":T,
 * "title":"...","env":{"TERM":"..."}} then one event per line,
 * [seconds_since_start, "o"|"i"|"r"|"m", "text"]: "o" terminal output, "i"
 * what the technician typed, "r" a resize ("COLSxROWS"), "m" a marker. Event
 * text is UTF-8: a multi-byte character split across two chunks is joined,
 * bytes that are not UTF-8 become U+FFFD.
 *
 * Hidden input. What the technician types while the terminal does not echo
 * (a password prompt) is never recorded: the agent says, for every byte of
 * input, whether its terminal took it with echo off (CHANNEL_INPUT_ACK,
 * docs/protocol.md §4.7). Input for such an agent is held here until it has
 * said (tl_recording_input_hold, tl_recording_input_settle); visible bytes
 * become "i" events, hidden ones only a count: one marker
 * [t, "m", "input hidden: N bytes"] for each run of hidden input, written
 * before the next event, t the time of the run's first byte. Bytes the agent
 * never settled are counted as hidden at the end. Held bytes are wiped from
 * memory once settled.
 *
 * The loop never waits on the disk: events are compressed in memory on the
 * loop and the compressed bytes are written with uv_fs_write (the libuv
 * threadpool), one write at a time, in order. A timer flushes the deflate
 * stream (Z_SYNC_FLUSH) and writes what it has at least once a second, so a
 * recording on disk is at most about a second behind even if the relay
 * dies. Memory is bounded: compressed bytes waiting for the disk are capped
 * at TL_RECORDING_MAX_PENDING; past it events are dropped and counted (the
 * closing marker says how many bytes were lost), never blocking the session.
 *
 * The file is written as PATH.part and renamed to PATH (then the directory
 * fsynced) by tl_recording_finish(), which reports its SHA-256 and size so
 * the caller can store it as evidence.
 */
#ifndef TL_RECORDING_H
#define TL_RECORDING_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TL_RECORDING_MAX_PENDING (4u * 1024u * 1024u)
/* Input held for the agent's word at most; the caller stops reading past it. */
#define TL_RECORDING_MAX_HELD (256u * 1024u)

typedef struct tl_recording tl_recording_t;

typedef struct tl_recording_info {
    unsigned cols, rows;
    const char *term;  /* may be NULL */
    const char *title; /* e.g. "T-42 alice shell G-3" */
    int64_t start_ms;  /* wall clock, for the header's timestamp */
} tl_recording_info_t;

/* Creates PATH.part (0600) and queues the header. NULL with *err on failure. */
tl_recording_t *tl_recording_open(uv_loop_t *loop, const char *path,
                                  const tl_recording_info_t *info, int *err);

/* Events; the time is taken from the loop's clock at the call. */
int tl_recording_output(tl_recording_t *rec, const void *bytes, size_t len);
int tl_recording_input(tl_recording_t *rec, const void *bytes, size_t len);
int tl_recording_resize(tl_recording_t *rec, unsigned cols, unsigned rows);
/* A marker event [t, "m", text]: a signal the technician sent ("signal INT"), a change of
 * control of the shell. text is valid UTF-8 (names and reasons in it escaped with proto/text.h
 * by the caller); it is written as a JSON string. */
int tl_recording_marker(tl_recording_t *rec, const char *text);

/*
 * Input sent to an agent that acknowledges what its terminal took: kept
 * until settled. TL_EFULL (nothing kept) if it would take the held bytes past
 * TL_RECORDING_MAX_HELD.
 */
int tl_recording_input_hold(tl_recording_t *rec, const void *bytes, size_t len);
/*
 * The oldest len held bytes reached the terminal: recorded as input, or,
 * hidden, counted into the "input hidden" marker and wiped. TL_EINVAL (and
 * nothing changes) if fewer than len bytes are held, or len is 0.
 */
int tl_recording_input_settle(tl_recording_t *rec, size_t len, int hidden);
/* Bytes held and not yet settled. */
size_t tl_recording_input_held(const tl_recording_t *rec);

/*
 * Ends the recording: finishes the gzip stream, writes, fsyncs, renames to
 * PATH, fsyncs the directory, then calls done (on the loop) with status 0
 * and the SHA-256 (64 lowercase hex) and size in bytes of the .gz file, or a
 * negative error. The recording frees itself after done returns.
 */
typedef void (*tl_recording_done_fn)(void *data, int status, const char *sha256, uint64_t size);
void tl_recording_finish(tl_recording_t *rec, tl_recording_done_fn done, void *data);

#endif
