/*
 * The local terminal and the signals the console cares about.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP only record that they came and wake
 * the pump through a self-pipe (tl_term_wake_fd()); the pump stops and main
 * restores and cleans up on its normal path. SIGWINCH records a size change
 * the same way. SIGPIPE is ignored: a closed stdout is a write error.
 *
 * Raw mode: tl_term_raw_enter() saves the terminal's settings and applies
 * cfmakeraw(); tl_term_restore() puts the saved settings back. Restoring is
 * idempotent and is also registered with atexit(), so every way out of the
 * program - normal end, an error, a signal seen by the pump - leaves the
 * terminal as it was found.
 */
#ifndef TL_CONSOLE_TERM_H
#define TL_CONSOLE_TERM_H

/* Installs the handlers (once); 0 or negated errno. */
int tl_term_signals_install(void);

/* The read end of the self-pipe: readable after any of the signals above; -1 before install. */
int tl_term_wake_fd(void);

/* Empties the self-pipe; returns the last of SIGINT/SIGTERM/SIGHUP seen, 0 if none. */
int tl_term_take_signal(void);
/* The last of SIGINT/SIGTERM/SIGHUP seen, 0 if none; nothing is cleared. */
int tl_term_pending_signal(void);
/* 1 if SIGWINCH came since the last call. */
int tl_term_take_resize(void);

/* The terminal's size in columns and rows; negated errno if fd is not a terminal. */
int tl_term_size(int fd, int *cols, int *rows);

/* Saves fd's settings and puts it in raw mode; 0, TL_EINVAL if already raw, or negated errno. */
int tl_term_raw_enter(int fd);
/* Puts the saved settings back, if any are saved; safe to call any number of times. */
void tl_term_restore(void);

#endif
