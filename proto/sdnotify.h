/*
 * Readiness and state notifications to the service manager (systemd's
 * sd_notify protocol, without libsystemd): one datagram of "KEY=VALUE"
 * lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET, a path
 * ("/run/systemd/notify") or an abstract name ("@name"). Outside a
 * Type=notify unit the variable is unset and every call does nothing.
 *
 * The relay says READY=1 once its listeners are up, the agent once it runs;
 * both say STOPPING=1 when a signal stops them; a configuration reload is
 * framed by tl_sdnotify_reloading() ... tl_sdnotify_ready().
 */
#ifndef TL_SDNOTIFY_H
#define TL_SDNOTIFY_H

#include <stddef.h>

/*
 * Sends message to the socket named socket_name (as $NOTIFY_SOCKET spells it).
 * Returns 0 once sent; TL_EINVAL for a name that is neither an absolute path
 * nor "@abstract", or too long for a socket address, or an empty message;
 * a negated errno when the socket cannot be reached.
 */
int tl_sdnotify_to(const char *socket_name, const char *message);

/*
 * Sends message to $NOTIFY_SOCKET; 0 without doing anything when it is unset
 * or empty (not started by a service manager that listens).
 */
int tl_sdnotify(const char *message);

/* READY=1 with MAINPID, after start-up or at the end of a reload. */
int tl_sdnotify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC (systemd 253 and later want it), before a reload. */
int tl_sdnotify_reloading(void);
/* STOPPING=1, as the shutdown begins. */
int tl_sdnotify_stopping(void);

/*
 * A configuration reload as the service manager follows it: RELOADING=1, then
 * reread(ctx), then READY=1 whatever reread returned (a configuration that
 * does not parse leaves the program serving with the one it had, so it is
 * ready again), so `systemctl reload` returns once the new configuration is
 * in use. Returns what reread returned. Call it from the SIGHUP handler.
 */
int tl_sdnotify_reload(int (*reread)(void *ctx), void *ctx);

#endif
