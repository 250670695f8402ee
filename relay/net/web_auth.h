/*
 * The web view's sign-in (docs/web.md "Signing in"): one-time links and the sessions they open.
 *
 * A link is made by the `web` SSH command for the technician who ran it; it holds a random
 * token of TL_WEB_TOKEN_BYTES bytes, shown once as hex in the link and kept here only as its
 * SHA-256, valid for link_ms and taken at most once (taking it removes it, expired or not). A
 * link taken in time opens a session: another random token, the session cookie's value, kept
 * hashed too, valid for session_ms from its start. Nothing is written to disk: a restart of the
 * relay ends every link and session.
 *
 * Both tables are bounded (TL_WEB_MAX_LINKS, TL_WEB_MAX_SESSIONS); expired entries are let go
 * whenever a new one is added, and when a table is still full the oldest entry goes. Tokens are
 * compared in constant time.
 *
 * Threads: the loop adds links; the web server's threads take links and find sessions. Every
 * function holds the table's mutex for its own duration only.
 */
#ifndef TL_WEB_AUTH_H
#define TL_WEB_AUTH_H

#include "relay/desk/users.h"

#include <stdint.h>

#define TL_WEB_TOKEN_BYTES 32
/* The token's text form: hex, and its NUL. */
#define TL_WEB_TOKEN_TEXT (2 * TL_WEB_TOKEN_BYTES + 1)
#define TL_WEB_MAX_LINKS 1024
#define TL_WEB_MAX_SESSIONS 4096
#define TL_WEB_DEFAULT_LINK_MS 60000u
#define TL_WEB_DEFAULT_SESSION_MS (8u * 3600u * 1000u)

typedef struct tl_web_auth tl_web_auth_t;

/* link_ms and session_ms 0: the defaults. NULL without memory. */
tl_web_auth_t *tl_web_auth_new(uint32_t link_ms, uint32_t session_ms);
/* NULL is a no-op. */
void tl_web_auth_free(tl_web_auth_t *auth);
uint32_t tl_web_auth_link_ms(const tl_web_auth_t *auth);

/* A fresh random token as text (for a link, before it is added). 0, or TL_EIO without
 * randomness. */
int tl_web_auth_token(char token[TL_WEB_TOKEN_TEXT]);

/* Keeps token's hash as a link for technician, valid from now_ms for the link lifetime. */
int tl_web_auth_link_add(tl_web_auth_t *auth, const char *token, const tl_technician_t *technician,
                         int64_t now_ms);
/*
 * Takes the link token: 0 and *technician when it was there and is in time; TL_EEXPIRED when it
 * was there but too old; TL_ENOTFOUND when it was never made or was already taken (or is not a
 * token at all). Either way the link is gone afterwards.
 */
int tl_web_auth_link_take(tl_web_auth_t *auth, const char *token, int64_t now_ms,
                          tl_technician_t *technician);

/* Opens a session for technician: its token in token (the cookie's value). */
int tl_web_auth_session_open(tl_web_auth_t *auth, const tl_technician_t *technician, int64_t now_ms,
                             char token[TL_WEB_TOKEN_TEXT]);
/* 0 and *technician for a session that is open and in time; TL_ENOTFOUND otherwise (an
 * expired session is ended). */
int tl_web_auth_session_find(tl_web_auth_t *auth, const char *token, int64_t now_ms,
                             tl_technician_t *technician);
/*
 * Asks check about the technician of every link and session (after the users' table changed):
 * those it answers nonzero for end at once, with on_end told each (for the log); check and
 * on_end run under the table's lock, so they must not call back into auth. Returns how many
 * ended.
 */
size_t tl_web_auth_recheck(tl_web_auth_t *auth,
                           int (*check)(void *data, const tl_technician_t *technician),
                           void (*on_end)(void *data, const tl_technician_t *technician,
                                          int session, int answer),
                           void *data);
/* Ends the session, if there is one. */
void tl_web_auth_session_end(tl_web_auth_t *auth, const char *token);

#endif
