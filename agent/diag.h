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
 * What the internet probe tries beyond the relay (docs/diagnostics.md §5.15): a name to look
 * up and a HOST:PORT to connect to. A new runner takes them from the environment variables
 * below, else the defaults; "off" skips the check.
 */
#define TL_DIAG_DEFAULT_LOOKUP "example.com"
#define TL_DIAG_DEFAULT_CONNECT "1.1.1.1:443"
#define TL_DIAG_LOOKUP_ENV "TIERLINE_DIAG_LOOKUP"
#define TL_DIAG_CONNECT_ENV "TIERLINE_DIAG_CONNECT"
/* A host name or address to look up, or "off". TL_EINVAL for anything else. */
int tl_diag_set_lookup(tl_diag_t *diag, const char *name);
/* "HOST:PORT", "[IPV6]:PORT" or "off". TL_EINVAL for anything else. */
int tl_diag_set_connect(tl_diag_t *diag, const char *host_port);
/*
 * Probes left out (docs/diagnostics.md §2 "Leaving probes out"): a list of probe names
 * separated by commas or spaces, from TL_DIAG_SKIP_ENV in a new runner. A left-out probe
 * is not started; its section is {"skipped": true, "note": ...}. TL_EINVAL for a name that
 * is no built-in probe (or a list over 255 bytes): nothing is left out then, and
 * tl_diag_skip_why() says why.
 */
#define TL_DIAG_SKIP_ENV "TIERLINE_DIAG_SKIP"
int tl_diag_set_skip(tl_diag_t *diag, const char *names);
/* Why the environment's list of probes to leave out was refused, or NULL. */
const char *tl_diag_skip_why(const tl_diag_t *diag);
/* The agent's state directory, for the agent probe; NULL: the default (agent/state.h). */
int tl_diag_set_state_dir(tl_diag_t *diag, const char *dir);

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
 * The name to look up: true with *name, or false with *why ("off", or why the environment's
 * value was refused).
 */
bool tl_diag_lookup(const tl_diag_t *diag, const char **name, const char **why);
/* Where to connect: true with *host and *port, or false with *why, as tl_diag_lookup. */
bool tl_diag_connect(const tl_diag_t *diag, const char **host, const char **port, const char **why);
/* The agent's state directory as set, or NULL for the default. */
const char *tl_diag_state_dir(const tl_diag_t *diag);

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
/* The same, keeping the last max_output bytes; output_truncated says earlier ones were dropped. */
int tl__diag_command_run_tail(const char *const argv[], int timeout_ms, size_t max_output,
                              struct tl__diag_command *result);
/* A short description of a command that failed: "exit status 1: <first stderr line>". */
void tl__diag_command_describe(const struct tl__diag_command *result, char *out, size_t size);
/* A command's timeout: own_ms, or less when the probe has less time left (with a margin). */
int tl__diag_command_budget(const tl_diag_t *diag, int own_ms);
/* The monotonic clock in milliseconds. */
long long tl__diag_now_ms(void);

struct addrinfo;
/*
 * Name resolution (getaddrinfo_a, TCP) that gives up at deadline_ms: 0 and *out (release it
 * with freeaddrinfo), or an EAI_* code (EAI_AGAIN when the time ran out).
 */
int tl__diag_resolve(const char *host, const char *port, int flags, long long deadline_ms,
                     struct addrinfo **out);
/* A TCP connect that gives up at deadline_ms; nothing is sent. 0, or a negated errno. */
int tl__diag_connect(const struct addrinfo *ai, long long deadline_ms);

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
int tl__probe_printers_run(const tl_diag_t *diag, json_t *section);
int tl__probe_wifi_run(const tl_diag_t *diag, json_t *section);
int tl__probe_packages_run(const tl_diag_t *diag, json_t *section);
int tl__probe_users_run(const tl_diag_t *diag, json_t *section);
int tl__probe_internet_run(const tl_diag_t *diag, json_t *section);
int tl__probe_kernel_messages_run(const tl_diag_t *diag, json_t *section);
int tl__probe_agent_run(const tl_diag_t *diag, json_t *section);
int tl__probe_hardware_run(const tl_diag_t *diag, json_t *section);

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
/*
 * `lpstat -p -d` and `lpstat -o` output (either may be NULL) into section: "queues" (name,
 * state, enabled, message, default, jobs_waiting), "queue_count", "default_printer",
 * "jobs_waiting", "queues_truncated".
 */
int tl__probe_printers_parse(const char *status_text, const char *jobs_text, json_t *section);
/*
 * Wi-Fi: each adds to or completes interfaces, a list of objects named by "name" (at most
 * TL__WIFI_MAX_INTERFACES). The wireless interfaces under a /sys/class/net directory;
 * /proc/net/wireless; `iw dev`; `iw dev NAME link` (for that one interface); `nmcli -t -f
 * IN-USE,SSID,SIGNAL,CHAN,DEVICE device wifi list --rescan no`.
 */
#define TL__WIFI_MAX_INTERFACES 16
int tl__probe_wifi_list(const char *sys_class_net, json_t *interfaces);
int tl__probe_wifi_parse_proc(const char *text, json_t *interfaces);
int tl__probe_wifi_parse_iw_dev(const char *text, json_t *interfaces);
int tl__probe_wifi_parse_iw_link(const char *text, json_t *interface);
int tl__probe_wifi_parse_nmcli(const char *text, json_t *interfaces);
/*
 * Packages: `dpkg-query -W -f '${db:Status-Abbrev}\n'` (installed_count, broken_count),
 * `apt list --upgradable` (upgradable_count, security_upgradable_count, upgradable[],
 * upgradable_truncated), `rpm -qa` (installed_count).
 */
int tl__probe_packages_parse_dpkg(const char *text, json_t *section);
int tl__probe_packages_parse_apt(const char *text, json_t *section);
int tl__probe_packages_parse_rpm(const char *text, json_t *section);
/* Login records (getutxent) into section: sessions[], session_count, users[], user_count. */
struct utmpx;
int tl__probe_users_parse(const struct utmpx *records, size_t count, json_t *section);
/*
 * Kernel messages as `dmesg --decode` prints them into section: the last lines (as
 * tl__probe_logs_parse keeps them), error_count and warning_count; started_mid says the text
 * starts inside a line.
 */
int tl__probe_kernel_parse_dmesg(const char *text, size_t len, bool started_mid, json_t *section);
/*
 * One /dev/kmsg record ("PRIORITY,SEQ,USEC,FLAGS;TEXT\n KEY=VALUE...") as the line `dmesg
 * --decode` prints for it, into line (NUL-terminated, cut to size). Returns its length, 0 for
 * a record below warning level or one that does not read as a record.
 */
size_t tl__probe_kernel_kmsg_line(const char *record, size_t len, char *line, size_t size);
/* The start time (field 22, clock ticks after boot) of a /proc/PID/stat text. */
int tl__probe_agent_parse_stat(const char *text, long long *start_ticks);
/*
 * The internet probe's verdict on its two checks: "online", "name lookups fail", "no
 * connection", "offline" (both failed) or "not checked"; a check not made does not count.
 */
const char *tl__probe_internet_status(bool dns_checked, bool resolved, bool connect_checked,
                                      bool reachable);
/* DMI facts from a directory laid out as /sys/class/dmi/id. TL_ENOTFOUND when it has none. */
int tl__probe_hardware_read_dmi(const char *dir, json_t *section);

#endif
