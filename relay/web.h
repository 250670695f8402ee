/*
 * The web view (docs/web.md): a read-only HTML view of the desk for technicians, desk leads and
 * auditors, served by libmicrohttpd on threads of its own, so nothing it does blocks the loop.
 *
 * Every page is a technician's command (relay/cmd/commands.h) run with --json through the one
 * dispatcher, as the signed-in technician, through an exec that keeps its output
 * (tl_exec_capture_new, relay/net/exec.h): the role's capabilities, a vendor's binding to its
 * tickets, the audit entries an auditor's reads leave and the fail-closed rules are those of the
 * SSH commands, not a second copy of them. The server's threads hand each call to the loop
 * (uv_async_t) and wait for its answer, at most TL_WEB_CALL_TIMEOUT_MS; relay/web_pages.h turns
 * the JSON into HTML, every text from another party escaped (tl_text_html, proto/text.h).
 *
 * Sign-in (relay/net/web_auth.h): GET /signin?token=... takes a one-time link the `web` command
 * made, writes web.signin to the audit log through the storage worker and, only once that entry
 * is durable, opens a session and sets its cookie.
 *
 * Lifetime: tl_web_start() and tl_web_stop() on the loop; tl_web_stop() stops the server's
 * threads (waiting requests are answered 503) and tl_web_free(), after the storage worker has
 * finished (its last jobs may still answer a call) and the loop has run its close callbacks,
 * releases the rest.
 */
#ifndef TL_WEB_H
#define TL_WEB_H

#include "relay/cmd/commands.h"
#include "relay/net/web_auth.h"

#include <stdint.h>
#include <uv.h>

/* What a server thread waits for one call at most before it answers 504. */
#define TL_WEB_CALL_TIMEOUT_MS 60000
/* One command's output at most (an evidence item is downloaded whole). */
#define TL_WEB_MAX_OUTPUT (80u * 1024 * 1024)
#define TL_WEB_MAX_CONNECTIONS 64
#define TL_WEB_MAX_PER_ADDRESS 8
/* Bytes a connection may use for its request line and headers (431/413 past it). */
#define TL_WEB_MAX_REQUEST (32u * 1024)
#define TL_WEB_IDLE_TIMEOUT_S 30

typedef struct tl_web_config {
    const char *listen;     /* "ADDR:PORT" */
    const char *cert_path;  /* PEM certificate chain; with key_path, HTTPS */
    const char *key_path;   /* PEM private key */
    int behind_proxy;       /* plain HTTP on an address that is not loopback is allowed */
    const char *url;        /* what links start with; NULL: scheme://listen */
    const char *assets_dir; /* the player's files (npm ci at build time) and ours */
    uint32_t link_ms;       /* 0: TL_WEB_DEFAULT_LINK_MS */
    uint32_t session_ms;    /* 0: TL_WEB_DEFAULT_SESSION_MS */
} tl_web_config_t;

typedef struct tl_web tl_web_t;

/* Checks config without starting anything: 0, or TL_EINVAL with problem set (a plain listen off
 * loopback without behind_proxy, a certificate without its key, a bad address). */
int tl_web_check(const tl_web_config_t *config, char *problem, size_t size);

/* commands must outlive the server; its web and web_url are set here. NULL and *err, with
 * problem set. */
tl_web_t *tl_web_start(uv_loop_t *loop, tl_commands_ctx_t *commands, const tl_web_config_t *config,
                       int *err, char *problem, size_t size);
/*
 * Ends every link and session whose technician check answers nonzero for (the users' table
 * changed: an account disabled, removed, given another key or role), logging each with
 * reason(answer). Loop thread; NULL is a no-op.
 */
void tl_web_recheck(tl_web_t *web, int (*check)(void *data, const tl_technician_t *technician),
                    const char *(*reason)(int answer), void *data);
/* NULL is a no-op; a second call too. */
void tl_web_stop(tl_web_t *web);
/* After tl_web_stop(), the worker freed and the loop run. NULL is a no-op. */
void tl_web_free(tl_web_t *web);

#endif
