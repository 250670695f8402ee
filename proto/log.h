/*
 * Leveled, line-oriented logging to stderr with key=value context.
 *
 * One line per event: "2026-11-23T19:04:05.123Z warn frame rejected peer=... reason=...".
 * Never log secrets, keys or enrollment codes. The audit log is a separate,
 * durable record (relay/store/audit.c); this is for operators only.
 *
 * Under systemd, when stderr is the journal ($JOURNAL_STREAM names stderr's
 * device and inode), each line starts with its syslog priority, "<6>..." for
 * info, so the journal keeps the level (journalctl -p warning); otherwise
 * lines are unchanged.
 */
#ifndef TL_LOG_H
#define TL_LOG_H

enum tl_log_level { TL_LOG_DEBUG = 0, TL_LOG_INFO, TL_LOG_WARN, TL_LOG_ERROR, TL_LOG_OFF };

void tl_log_set_level(enum tl_log_level level);
enum tl_log_level tl_log_get_level(void);
/* Parses "debug", "info", "warn", "error" or "off"; returns 0 or TL_EINVAL. */
int tl_log_parse_level(const char *name, enum tl_log_level *out);

/*
 * Looks again at $JOURNAL_STREAM and stderr (done once, at the first line, by
 * itself); for a program that moves stderr, and for tests. Returns 1 when
 * lines now carry priorities, 0 when not.
 */
int tl_log_detect_journal(void);

void tl_log_write(enum tl_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tl_log_debug(...) tl_log_write(TL_LOG_DEBUG, __VA_ARGS__)
#define tl_log_info(...) tl_log_write(TL_LOG_INFO, __VA_ARGS__)
#define tl_log_warn(...) tl_log_write(TL_LOG_WARN, __VA_ARGS__)
#define tl_log_error(...) tl_log_write(TL_LOG_ERROR, __VA_ARGS__)

/*
 * Lines an unauthenticated peer causes (a refused login, a failed handshake,
 * garbage on a connection): anyone who can reach a port can make as many as
 * they like, so a program that serves such peers bounds them per address
 * (the relay: relay/net/log_limit.h). address is the peer's address; NULL makes
 * it an ordinary line (an authenticated peer, or the program itself). A line
 * the level lets through is first offered to the gate, if one is set, and
 * written only if the gate returns nonzero. Without a gate every line is
 * written. One gate per process; set it, and write these lines, from one
 * thread (the loop's).
 */
typedef int (*tl_log_gate_fn)(void *ctx, enum tl_log_level level, const char *address);
/* Installs gate (NULL removes it). */
void tl_log_set_gate(tl_log_gate_fn gate, void *ctx);

void tl_log_peer_write(enum tl_log_level level, const char *address, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tl_log_peer_debug(address, ...) tl_log_peer_write(TL_LOG_DEBUG, address, __VA_ARGS__)
#define tl_log_peer_info(address, ...) tl_log_peer_write(TL_LOG_INFO, address, __VA_ARGS__)
#define tl_log_peer_warn(address, ...) tl_log_peer_write(TL_LOG_WARN, address, __VA_ARGS__)
#define tl_log_peer_error(address, ...) tl_log_peer_write(TL_LOG_ERROR, address, __VA_ARGS__)

#endif
