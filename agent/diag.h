/*
 * Diagnostics: a table of probes, each run in its own child process.
 *
 * A probe is an entry { name, description, run_fn, timeout_ms }. tl_diag_run
 * forks one child per probe (all at once); the child fills a JSON object for
 * its section, redacts every string in it (agent/redact.h), and writes it to
 * the parent through a pipe. The parent collects every section against its
 * deadline: a child that runs past its timeout is killed with its process
 * group and its section becomes {"error":"timed out after N ms"}; a child
 * that crashes, exits non-zero, writes too much or writes something that is
 * not a JSON object gets an error section of its own. Other sections are
 * unaffected. The report format and every probe's fields are specified in
 * docs/diagnostics.md.
 *
 * The runner (tl_diag_t) is owned by its caller; the report it returns is a
 * new Jansson reference the caller releases with json_decref.
 */
#ifndef TL_DIAG_H
#define TL_DIAG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define TL_DIAG_SCHEMA 1
/* Bounds on what one section may hold once serialised, and on timeouts. */
#define TL_DIAG_MAX_SECTION_BYTES (256 * 1024)
#define TL_DIAG_MAX_TIMEOUT_MS 600000
#define TL_DIAG_MAX_PROBES 64

typedef struct tl_diag tl_diag_t;

/*
 * Fills section (an empty JSON object) and returns 0, or returns a negative
 * TL_E* code, after putting a string "error" into section if it has more to
 * say than tl_strerror(code). Runs in a child process: it may block, crash or
 * leak without harming the caller, but must not write to stdout.
 */
typedef int (*tl_diag_probe_fn)(const tl_diag_t *diag, json_t *section);

struct tl_diag_probe {
    const char *name;        /* section key: lower case, unique in its table */
    const char *description; /* one line, shown as the heading in text output */
    tl_diag_probe_fn run_fn;
    int timeout_ms;
};

/* The built-in probes, in report order. */
const struct tl_diag_probe *tl_diag_probes(size_t *count);

/* A runner with the built-in probes, their own timeouts and no relay; NULL if out of memory. */
tl_diag_t *tl_diag_new(void);
void tl_diag_free(tl_diag_t *diag);

/*
 * Replaces the probe table (tests use fakes). The table is not copied and must
 * outlive the runner. TL_EINVAL for an empty or oversized table, a missing
 * name or function, a duplicate name or a timeout outside 1..TL_DIAG_MAX_TIMEOUT_MS.
 */
int tl_diag_set_probes(tl_diag_t *diag, const struct tl_diag_probe *probes, size_t count);
/* Gives every probe this timeout instead of its own; 0 restores the table's. */
int tl_diag_set_timeout_ms(tl_diag_t *diag, int timeout_ms);
/* The relay the network probe tries to reach: "HOST:PORT" or "[IPV6]:PORT"; NULL clears it. */
int tl_diag_set_relay(tl_diag_t *diag, const char *host_port);
/* Largest serialised section accepted from a child (default TL_DIAG_MAX_SECTION_BYTES). */
int tl_diag_set_max_section_bytes(tl_diag_t *diag, size_t max_bytes);

/*
 * Runs every probe and builds the report:
 * {"schema":1,"collected_at":"RFC 3339 UTC","host":"...","sections":{"name":{...},...}}.
 * Returns 0 with *report set even when some sections hold errors; a negative
 * code only when no report could be built at all (out of memory).
 */
int tl_diag_run(tl_diag_t *diag, json_t **report);

/* Writes the report as aligned, readable text: a heading per section, key: value lines, tables. */
int tl_diag_write_text(const json_t *report, FILE *out);

/* ---- For probes (called inside the probe's child) ------------------------------------ */

/* Milliseconds left before the running probe is killed (0 when past). */
int tl_diag_time_left_ms(const tl_diag_t *diag);
/* The relay to test, or false when none was configured. */
bool tl_diag_relay(const tl_diag_t *diag, const char **host, const char **port);

/*
 * Internal helpers shared by agent/diag.c and the agent/probe_*.c files.
 * Not for other modules.
 */

/*
 * Free text as a JSON string: redacted first, then cut to at most max_bytes
 * (marked with "...") and made valid UTF-8 with control characters replaced.
 * NULL only when memory runs out.
 */
json_t *tl__diag_text(const char *data, size_t len, size_t max_bytes);
/* Sets obj[key] to tl__diag_text(text) (NULL text sets null). 0 or TL_ENOMEM. */
int tl__diag_put_text(json_t *obj, const char *key, const char *text);
/* Sets obj[key] to a JSON integer / real / boolean. 0 or TL_ENOMEM. */
int tl__diag_put_int(json_t *obj, const char *key, long long value);
int tl__diag_put_real(json_t *obj, const char *key, double value);
int tl__diag_put_bool(json_t *obj, const char *key, bool value);
/* Puts the string "error" into section and returns code. */
int tl__diag_fail(json_t *section, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads at most max_bytes of a file (regular or /proc); *data is NUL-terminated, caller frees. */
int tl__diag_read_file(const char *path, size_t max_bytes, char **data, size_t *len);
/* Reads the last max_bytes of a file; *started_mid_file says whether earlier bytes exist. */
int tl__diag_read_tail(const char *path, size_t max_bytes, char **data, size_t *len,
                       bool *started_mid_file);
/* Reads a one-line file (sysfs) into out without its newline. */
int tl__diag_read_line(const char *path, char *out, size_t size);
/* The login name of uid, or its number as text. */
void tl__diag_user_name(uid_t uid, char *out, size_t size);
/* "2026-11-23T19:04:05Z" */
void tl__diag_format_time(long long epoch_seconds, char out[32]);
/* Whether systemd manages this machine (the test sd_booted() makes). */
bool tl__diag_systemd_running(void);

/* An external command: found on PATH (and the usual sbin/bin directories). */
int tl__diag_find_program(const char *name, char *path, size_t size);

struct tl__diag_command {
    char *output; /* stdout, NUL-terminated, at most the bound asked for */
    size_t output_len;
    bool output_truncated;
    char *errors; /* stderr, NUL-terminated, bounded to a few KiB */
    size_t errors_len;
    bool timed_out;
    int exit_status; /* when it exited, else -1 */
    int signal;      /* when a signal ended it, else 0 */
};

/*
 * Runs argv (argv[0] looked up on PATH) with no shell, stdin from /dev/null,
 * LC_ALL=C and no pager, reading at most max_output bytes of its output; it
 * is killed after timeout_ms. 0 when it ran (whatever its status; see
 * result), a negative code when it could not be started.
 */
int tl__diag_command_run(const char *const argv[], int timeout_ms, size_t max_output,
                         struct tl__diag_command *result);
void tl__diag_command_clear(struct tl__diag_command *result);
/* A short description of a command that failed: "exit status 1: <first stderr line>". */
void tl__diag_command_describe(const struct tl__diag_command *result, char *out, size_t size);

/* Run functions of the built-in probes (agent/probe_*.c). */
int tl__probe_system_run(const tl_diag_t *diag, json_t *section);
int tl__probe_cpu_run(const tl_diag_t *diag, json_t *section);
int tl__probe_memory_run(const tl_diag_t *diag, json_t *section);
int tl__probe_disks_run(const tl_diag_t *diag, json_t *section);
int tl__probe_network_run(const tl_diag_t *diag, json_t *section);
int tl__probe_processes_run(const tl_diag_t *diag, json_t *section);
int tl__probe_services_run(const tl_diag_t *diag, json_t *section);
int tl__probe_sockets_run(const tl_diag_t *diag, json_t *section);
int tl__probe_time_run(const tl_diag_t *diag, json_t *section);
int tl__probe_logs_run(const tl_diag_t *diag, json_t *section);

/* Parsers the probes use, exposed so tests can feed them fixed text. */
int tl__probe_system_parse_os_release(const char *text, json_t *os);
int tl__probe_network_parse_routes(const char *ipv4_text, const char *ipv6_text, json_t *routes);
int tl__probe_network_parse_resolv_conf(const char *text, json_t *dns);
int tl__probe_services_parse_failed(const char *text, json_t *units);
/*
 * Puts the last 50 lines of log text into section["lines"], redacting the
 * text whole first and cutting each line to 1 KiB (setting *truncated when
 * anything was left out). skip_first_line drops a partial first line;
 * skip_markers drops journalctl's "-- ... --" lines. Returns the number of
 * lines kept, or a negative code.
 */
int tl__probe_logs_parse(const char *text, size_t len, bool skip_first_line, bool skip_markers,
                         json_t *section, bool *truncated);
/*
 * Appends the listening sockets of one /proc/net file ("tcp", "tcp6", "udp",
 * "udp6"); TL_EFULL when the list reached max_entries before the file's end.
 */
int tl__probe_sockets_parse(const char *text, const char *protocol, json_t *sockets,
                            size_t max_entries);

#endif
