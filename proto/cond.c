/* Conditions over a diagnostics report (proto/cond.h, docs/kb.md "Conditions"). */
#include "proto/cond.h"
#include "proto/array.h"
#include "proto/err.h"
#include "proto/format.h"
#include "proto/names.h"
#include "proto/text.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fields a report can have (docs/diagnostics.md §5) -------------------------------- */

enum ftype { F_NUM, F_STR, F_BOOL, F_LIST, F_STRS };

struct field {
    const char *path;
    enum ftype type;
    const char *key; /* lists of objects: the member that names an element in evidence */
};

#define PROCESS_ROW(list)                                                                          \
    {list "[].pid", F_NUM, NULL}, {list "[].user", F_STR, NULL}, {list "[].name", F_STR, NULL},    \
        {list "[].state", F_STR, NULL}, {list "[].cpu_percent", F_NUM, NULL},                      \
        {list "[].rss_bytes", F_NUM, NULL},                                                        \
    {                                                                                              \
        list "[].command", F_STR, NULL                                                             \
    }

static const struct field fields[] = {
    {"system.hostname", F_STR, NULL},
    {"system.os.pretty_name", F_STR, NULL},
    {"system.os.id", F_STR, NULL},
    {"system.os.version_id", F_STR, NULL},
    {"system.os.version_codename", F_STR, NULL},
    {"system.os.error", F_STR, NULL},
    {"system.kernel.name", F_STR, NULL},
    {"system.kernel.release", F_STR, NULL},
    {"system.kernel.version", F_STR, NULL},
    {"system.arch", F_STR, NULL},
    {"system.uptime_seconds", F_NUM, NULL},
    {"system.boot_time", F_STR, NULL},
    {"system.load_average.1m", F_NUM, NULL},
    {"system.load_average.5m", F_NUM, NULL},
    {"system.load_average.15m", F_NUM, NULL},
    {"system.tasks_total", F_NUM, NULL},
    {"cpu.model", F_STR, NULL},
    {"cpu.online_cpus", F_NUM, NULL},
    {"cpu.configured_cpus", F_NUM, NULL},
    {"cpu.usable_cpus", F_NUM, NULL},
    {"cpu.cpuinfo_processors", F_NUM, NULL},
    {"cpu.usage.sample_ms", F_NUM, NULL},
    {"cpu.usage.busy_percent", F_NUM, NULL},
    {"cpu.usage.user_percent", F_NUM, NULL},
    {"cpu.usage.system_percent", F_NUM, NULL},
    {"cpu.usage.iowait_percent", F_NUM, NULL},
    {"cpu.usage.steal_percent", F_NUM, NULL},
    {"cpu.usage.idle_percent", F_NUM, NULL},
    {"cpu.usage_error", F_STR, NULL},
    {"memory.total_bytes", F_NUM, NULL},
    {"memory.free_bytes", F_NUM, NULL},
    {"memory.available_bytes", F_NUM, NULL},
    {"memory.buffers_bytes", F_NUM, NULL},
    {"memory.cached_bytes", F_NUM, NULL},
    {"memory.shared_bytes", F_NUM, NULL},
    {"memory.swap_total_bytes", F_NUM, NULL},
    {"memory.swap_free_bytes", F_NUM, NULL},
    {"memory.used_bytes", F_NUM, NULL},
    {"memory.used_percent", F_NUM, NULL},
    {"memory.swap_used_bytes", F_NUM, NULL},
    {"memory.swap_used_percent", F_NUM, NULL},
    {"disks.mounts", F_LIST, "mount"},
    {"disks.mounts[].mount", F_STR, NULL},
    {"disks.mounts[].device", F_STR, NULL},
    {"disks.mounts[].fstype", F_STR, NULL},
    {"disks.mounts[].size_bytes", F_NUM, NULL},
    {"disks.mounts[].used_bytes", F_NUM, NULL},
    {"disks.mounts[].available_bytes", F_NUM, NULL},
    {"disks.mounts[].used_percent", F_NUM, NULL},
    {"disks.mounts[].inodes_total", F_NUM, NULL},
    {"disks.mounts[].inodes_used", F_NUM, NULL},
    {"disks.mounts[].inodes_used_percent", F_NUM, NULL},
    {"disks.mounts[].read_only", F_BOOL, NULL},
    {"disks.unreadable", F_LIST, "mount"},
    {"disks.unreadable[].mount", F_STR, NULL},
    {"disks.unreadable[].error", F_STR, NULL},
    {"disks.skipped_pseudo", F_NUM, NULL},
    {"disks.truncated", F_BOOL, NULL},
    {"network.interfaces", F_LIST, "name"},
    {"network.interfaces[].name", F_STR, NULL},
    {"network.interfaces[].up", F_BOOL, NULL},
    {"network.interfaces[].running", F_BOOL, NULL},
    {"network.interfaces[].loopback", F_BOOL, NULL},
    {"network.interfaces[].addresses", F_STRS, NULL},
    {"network.interfaces[].mac", F_STR, NULL},
    {"network.interfaces[].operstate", F_STR, NULL},
    {"network.interfaces[].mtu", F_NUM, NULL},
    {"network.interfaces[].rx_bytes", F_NUM, NULL},
    {"network.interfaces[].tx_bytes", F_NUM, NULL},
    {"network.interfaces[].rx_errors", F_NUM, NULL},
    {"network.interfaces[].tx_errors", F_NUM, NULL},
    {"network.interfaces[].rx_dropped", F_NUM, NULL},
    {"network.interfaces[].tx_dropped", F_NUM, NULL},
    {"network.interfaces_truncated", F_BOOL, NULL},
    {"network.default_routes", F_LIST, "interface"},
    {"network.default_routes[].family", F_STR, NULL},
    {"network.default_routes[].gateway", F_STR, NULL},
    {"network.default_routes[].interface", F_STR, NULL},
    {"network.default_routes[].metric", F_NUM, NULL},
    {"network.dns.nameservers", F_STRS, NULL},
    {"network.dns.search", F_STRS, NULL},
    {"network.dns.options", F_STRS, NULL},
    {"network.dns.error", F_STR, NULL},
    {"network.relay.configured", F_BOOL, NULL},
    {"network.relay.source", F_STR, NULL},
    {"network.relay.error", F_STR, NULL},
    {"network.relay.address", F_STR, NULL},
    {"network.relay.reachable", F_BOOL, NULL},
    {"network.relay.status", F_STR, NULL},
    {"network.relay.reason", F_STR, NULL},
    {"network.relay.connected_to", F_STR, NULL},
    {"network.relay.connect_ms", F_NUM, NULL},
    {"processes.method", F_STR, NULL},
    {"processes.sample_ms", F_NUM, NULL},
    {"processes.process_count", F_NUM, NULL},
    {"processes.top_cpu", F_LIST, "name"},
    PROCESS_ROW("processes.top_cpu"),
    {"processes.top_memory", F_LIST, "name"},
    PROCESS_ROW("processes.top_memory"),
    {"services.status", F_STR, NULL},
    {"services.failed_count", F_NUM, NULL},
    {"services.failed_units", F_LIST, "unit"},
    {"services.failed_units[].unit", F_STR, NULL},
    {"services.failed_units[].load", F_STR, NULL},
    {"services.failed_units[].active", F_STR, NULL},
    {"services.failed_units[].sub", F_STR, NULL},
    {"services.failed_units[].description", F_STR, NULL},
    {"services.truncated", F_BOOL, NULL},
    {"sockets.listening", F_LIST, "port"},
    {"sockets.listening[].protocol", F_STR, NULL},
    {"sockets.listening[].address", F_STR, NULL},
    {"sockets.listening[].port", F_NUM, NULL},
    {"sockets.listening[].uid", F_NUM, NULL},
    {"sockets.listening[].user", F_STR, NULL},
    {"sockets.listening[].inode", F_NUM, NULL},
    {"sockets.listening[].pid", F_NUM, NULL},
    {"sockets.listening[].process", F_STR, NULL},
    {"sockets.listening_count", F_NUM, NULL},
    {"sockets.truncated", F_BOOL, NULL},
    {"sockets.unreadable", F_STRS, NULL},
    {"time.source", F_STR, NULL},
    {"time.synchronised", F_BOOL, NULL},
    {"time.utc_time", F_STR, NULL},
    {"time.timezone", F_STR, NULL},
    {"time.ntp_service_enabled", F_BOOL, NULL},
    {"time.ntp_service_available", F_BOOL, NULL},
    {"time.rtc_in_local_time", F_BOOL, NULL},
    {"time.kernel.synchronised", F_BOOL, NULL},
    {"time.kernel.clock_state", F_STR, NULL},
    {"time.kernel.offset_us", F_NUM, NULL},
    {"time.kernel.estimated_error_us", F_NUM, NULL},
    {"time.kernel.maximum_error_us", F_NUM, NULL},
    {"time.kernel_error", F_STR, NULL},
    {"time.note", F_STR, NULL},
    {"logs.source", F_STR, NULL},
    {"logs.lines", F_STRS, NULL},
    {"logs.line_count", F_NUM, NULL},
    {"logs.truncated", F_BOOL, NULL},
    {"logs.note", F_STR, NULL},
    {"printers.status", F_STR, NULL},
    {"printers.reason", F_STR, NULL},
    {"printers.default_printer", F_STR, NULL},
    {"printers.queue_count", F_NUM, NULL},
    {"printers.jobs_waiting", F_NUM, NULL},
    {"printers.jobs_error", F_STR, NULL},
    {"printers.queues", F_LIST, "name"},
    {"printers.queues[].name", F_STR, NULL},
    {"printers.queues[].state", F_STR, NULL},
    {"printers.queues[].enabled", F_BOOL, NULL},
    {"printers.queues[].message", F_STR, NULL},
    {"printers.queues[].default", F_BOOL, NULL},
    {"printers.queues[].jobs_waiting", F_NUM, NULL},
    {"printers.queues_truncated", F_BOOL, NULL},
    {"printers.truncated", F_BOOL, NULL},
    {"wifi.status", F_STR, NULL},
    {"wifi.connected_count", F_NUM, NULL},
    {"wifi.sources", F_STRS, NULL},
    {"wifi.interfaces", F_LIST, "name"},
    {"wifi.interfaces[].name", F_STR, NULL},
    {"wifi.interfaces[].connected", F_BOOL, NULL},
    {"wifi.interfaces[].ssid", F_STR, NULL},
    {"wifi.interfaces[].mode", F_STR, NULL},
    {"wifi.interfaces[].frequency_mhz", F_NUM, NULL},
    {"wifi.interfaces[].channel", F_NUM, NULL},
    {"wifi.interfaces[].signal_dbm", F_NUM, NULL},
    {"wifi.interfaces[].signal_percent", F_NUM, NULL},
    {"wifi.interfaces[].link_quality", F_NUM, NULL},
    {"wifi.interfaces[].bitrate_mbps", F_NUM, NULL},
    {"packages.manager", F_STR, NULL},
    {"packages.installed_count", F_NUM, NULL},
    {"packages.broken_count", F_NUM, NULL},
    {"packages.reboot_required", F_BOOL, NULL},
    {"packages.upgradable_count", F_NUM, NULL},
    {"packages.security_upgradable_count", F_NUM, NULL},
    {"packages.upgradable", F_STRS, NULL},
    {"packages.upgradable_truncated", F_BOOL, NULL},
    {"packages.lists_updated", F_STR, NULL},
    {"packages.updates_note", F_STR, NULL},
    {"users.session_count", F_NUM, NULL},
    {"users.user_count", F_NUM, NULL},
    {"users.sessions", F_LIST, "user"},
    {"users.sessions[].user", F_STR, NULL},
    {"users.sessions[].terminal", F_STR, NULL},
    {"users.sessions[].host", F_STR, NULL},
    {"users.sessions[].since", F_STR, NULL},
    {"users.sessions[].pid", F_NUM, NULL},
    {"users.users", F_STRS, NULL},
    {"users.truncated", F_BOOL, NULL},
    {"internet.status", F_STR, NULL},
    {"internet.dns.checked", F_BOOL, NULL},
    {"internet.dns.name", F_STR, NULL},
    {"internet.dns.resolved", F_BOOL, NULL},
    {"internet.dns.addresses", F_STRS, NULL},
    {"internet.dns.lookup_ms", F_NUM, NULL},
    {"internet.dns.reason", F_STR, NULL},
    {"internet.connect.checked", F_BOOL, NULL},
    {"internet.connect.address", F_STR, NULL},
    {"internet.connect.reachable", F_BOOL, NULL},
    {"internet.connect.connected_to", F_STR, NULL},
    {"internet.connect.connect_ms", F_NUM, NULL},
    {"internet.connect.reason", F_STR, NULL},
    {"kernel_messages.source", F_STR, NULL},
    {"kernel_messages.note", F_STR, NULL},
    {"kernel_messages.lines", F_STRS, NULL},
    {"kernel_messages.line_count", F_NUM, NULL},
    {"kernel_messages.error_count", F_NUM, NULL},
    {"kernel_messages.warning_count", F_NUM, NULL},
    {"kernel_messages.truncated", F_BOOL, NULL},
    {"agent.version", F_STR, NULL},
    {"agent.state_dir", F_STR, NULL},
    {"agent.state_error", F_STR, NULL},
    {"agent.enrolled", F_BOOL, NULL},
    {"agent.device", F_STR, NULL},
    {"agent.relay", F_STR, NULL},
    {"agent.running", F_BOOL, NULL},
    {"agent.status", F_STR, NULL},
    {"agent.pid", F_NUM, NULL},
    {"agent.user", F_STR, NULL},
    {"agent.uptime_seconds", F_NUM, NULL},
    {"agent.started_at", F_STR, NULL},
    {"agent.link", F_STR, NULL},
    {"agent.link_error", F_STR, NULL},
    {"hardware.source", F_STR, NULL},
    {"hardware.note", F_STR, NULL},
    {"hardware.vendor", F_STR, NULL},
    {"hardware.product", F_STR, NULL},
    {"hardware.version", F_STR, NULL},
    {"hardware.family", F_STR, NULL},
    {"hardware.serial", F_STR, NULL},
    {"hardware.serial_note", F_STR, NULL},
    {"hardware.chassis.vendor", F_STR, NULL},
    {"hardware.board.vendor", F_STR, NULL},
    {"hardware.board.name", F_STR, NULL},
    {"hardware.board.version", F_STR, NULL},
    {"hardware.bios.vendor", F_STR, NULL},
    {"hardware.bios.version", F_STR, NULL},
    {"hardware.bios.date", F_STR, NULL},
};

#define FIELD_COUNT (sizeof fields / sizeof fields[0])
#define PATH_MAX_LEN 96

const char *tl_cond_field(size_t index)
{
    return index < FIELD_COUNT ? fields[index].path : NULL;
}

static const char *const type_names[] = {
    [F_NUM] = "a number",        [F_STR] = "a string",           [F_BOOL] = "true or false",
    [F_LIST] = "a list of rows", [F_STRS] = "a list of strings",
};

/* ---- the parsed form ------------------------------------------------------------------------ */

enum kind { N_OR, N_AND, N_NOT, N_ANY, N_ALL, N_NONE, N_CMP, N_EXISTS, N_MISSING };
enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_CONTAINS, OP_STARTSWITH };
enum operand { O_FIELD, O_COUNT, O_VALUE };

struct node {
    enum kind kind;
    int a, b; /* children: OR, AND (a, b); NOT, quantifiers (a: the body) */
    /* CMP, EXISTS, MISSING, quantifiers: the path as written (offset and length in text) */
    unsigned path_at, path_len;
    const struct field *field;
    enum operand operand;
    enum op op;
    enum ftype literal; /* F_NUM, F_STR or F_BOOL */
    double number;
    unsigned string_at; /* in strings, NUL-terminated */
    bool boolean;
};

struct tl_cond {
    char *text;    /* the condition as written */
    char *strings; /* its string literals, unescaped */
    struct node *nodes;
    size_t count, cap;
    int root;
};

/* ---- parsing -------------------------------------------------------------------------------- */

enum tok { T_END, T_PATH, T_NUMBER, T_STRING, T_OP, T_LPAREN, T_RPAREN, T_WORD };

struct parser {
    tl_cond_t *c;
    size_t len, pos;
    size_t strings_used;
    /* the current token */
    enum tok tok;
    size_t at, tok_len;
    enum op op;
    double number;
    size_t string_at; /* a string's literal, in c->strings */
    int depth;
    /* the list a quantifier's body reads rows of ("disks.mounts[]."), or "" */
    char scope[PATH_MAX_LEN + 4];
    enum ftype scope_type;
    char *why;
    size_t why_size;
    int failed;
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *p, size_t at,
                                                         const char *fmt, ...)
{
    if (p->failed)
        return TL_EINVAL;
    p->failed = 1;
    char what[240];
    va_list args;
    va_start(args, fmt);
    tl_format_v(what, sizeof what, fmt, args);
    va_end(args);
    tl_format(p->why, p->why_size, "column %zu: %s", at + 1, what);
    return TL_EINVAL;
}

static const char *const words[] = {"and",        "or",    "not",    "any",     "all",
                                    "none",       "where", "exists", "missing", "contains",
                                    "startswith", "true",  "false",  "count",   "value"};

static bool is_word(const struct parser *p, const char *word)
{
    return p->tok == T_WORD && strlen(word) == p->tok_len &&
           memcmp(p->c->text + p->at, word, p->tok_len) == 0;
}

static bool path_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.';
}

static int lex_string(struct parser *p)
{
    const char *t = p->c->text;
    size_t start = p->strings_used, i = p->pos + 1;
    for (;;) {
        if (i >= p->len)
            return fail_at(p, p->pos, "a string that does not end (a \" is missing)");
        unsigned char ch = (unsigned char)t[i];
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (i + 1 >= p->len || (t[i + 1] != '"' && t[i + 1] != '\\'))
                return fail_at(p, i, "only \\\" and \\\\ may follow a backslash in a string");
            ch = (unsigned char)t[++i];
        } else if (ch < 0x20 || ch == 0x7f) {
            return fail_at(p, i, "a control character in a string");
        }
        if (p->strings_used - start >= TL_COND_STRING_MAX)
            return fail_at(p, p->pos, "a string longer than %d bytes", TL_COND_STRING_MAX);
        p->c->strings[p->strings_used++] = (char)ch;
        i++;
    }
    p->c->strings[p->strings_used++] = '\0';
    if (!tl_text_utf8_valid(p->c->strings + start, p->strings_used - start - 1))
        return fail_at(p, p->pos, "a string that is not valid UTF-8");
    p->tok = T_STRING;
    p->string_at = start;
    p->tok_len = i + 1 - p->pos;
    return 0;
}

/* A number, then an optional unit: KiB, MiB, GiB, TiB (powers of 1024) or %, which is only a
 * reminder that the field is a percentage. */
static int lex_number(struct parser *p)
{
    const char *t = p->c->text;
    size_t i = p->pos, digits = 0;
    char copy[48];
    if (t[i] == '-')
        i++;
    while (i < p->len && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.')) {
        i++;
        digits++;
    }
    if (digits == 0 || i - p->pos >= sizeof copy)
        return fail_at(p, p->pos, "a number that cannot be read");
    memcpy(copy, t + p->pos, i - p->pos);
    copy[i - p->pos] = '\0';
    char *end;
    double value = strtod(copy, &end);
    if (*end != '\0' || !isfinite(value) || strchr(copy, '.') != strrchr(copy, '.'))
        return fail_at(p, p->pos, "'%s' is not a number", copy);
    static const struct {
        const char *name;
        double scale;
    } units[] = {{"KiB", 1024.0},
                 {"MiB", 1048576.0},
                 {"GiB", 1073741824.0},
                 {"TiB", 1099511627776.0},
                 {"%", 1.0}};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t n = strlen(units[u].name);
        if (p->len - i >= n && memcmp(t + i, units[u].name, n) == 0) {
            value *= units[u].scale;
            i += n;
            break;
        }
    }
    if (i < p->len && (path_char(t[i]) || (t[i] >= 'A' && t[i] <= 'Z')))
        return fail_at(p, i, "a number followed by '%c' (units are KiB, MiB, GiB, TiB and %%)",
                       t[i]);
    p->tok = T_NUMBER;
    p->number = value;
    p->tok_len = i - p->pos;
    return 0;
}

static int next(struct parser *p)
{
    const char *t = p->c->text;
    p->pos += p->tok_len;
    while (p->pos < p->len &&
           (t[p->pos] == ' ' || t[p->pos] == '\t' || t[p->pos] == '\n' || t[p->pos] == '\r'))
        p->pos++;
    p->at = p->pos;
    p->tok_len = 0;
    if (p->pos >= p->len) {
        p->tok = T_END;
        return 0;
    }
    char ch = t[p->pos];
    if (ch == '"')
        return lex_string(p);
    if ((ch >= '0' && ch <= '9') ||
        (ch == '-' && p->pos + 1 < p->len && t[p->pos + 1] >= '0' && t[p->pos + 1] <= '9'))
        return lex_number(p);
    if (ch == '(' || ch == ')') {
        p->tok = ch == '(' ? T_LPAREN : T_RPAREN;
        p->tok_len = 1;
        return 0;
    }
    static const struct {
        const char *text;
        enum op op;
    } ops[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE},
               {">=", OP_GE}, {"<", OP_LT},  {">", OP_GT}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (p->len - p->pos >= n && memcmp(t + p->pos, ops[i].text, n) == 0) {
            p->tok = T_OP;
            p->op = ops[i].op;
            p->tok_len = n;
            return 0;
        }
    }
    if (ch >= 'a' && ch <= 'z') {
        size_t i = p->pos;
        while (i < p->len && path_char(t[i]))
            i++;
        p->tok_len = i - p->pos;
        p->tok = T_PATH;
        for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
            if (strlen(words[w]) == p->tok_len && memcmp(t + p->pos, words[w], p->tok_len) == 0)
                p->tok = T_WORD;
        return 0;
    }
    if (ch == '=')
        return fail_at(p, p->pos, "'=' compares nothing: write '=='");
    return fail_at(p, p->pos, "'%c' is not part of the language",
                   ch >= 0x20 && ch < 0x7f ? ch : '?');
}

static int new_node(struct parser *p, enum kind kind, int *index)
{
    tl_cond_t *c = p->c;
    if (c->count >= TL_COND_NODES_MAX)
        return fail_at(p, p->at, "more than %d terms", TL_COND_NODES_MAX);
    int rc =
        tl_array_grow(&c->nodes, &c->cap, c->count + 1, sizeof *c->nodes, 16, TL_COND_NODES_MAX);
    if (rc != 0)
        return rc;
    memset(&c->nodes[c->count], 0, sizeof c->nodes[c->count]);
    c->nodes[c->count].kind = kind;
    *index = (int)c->count++;
    return 0;
}

/* The field the current path token names in the current scope, or an error naming the
 * closest field there is. */
static int resolve(struct parser *p, const struct field **out)
{
    char full[sizeof p->scope + PATH_MAX_LEN + 1];
    const char *t = p->c->text + p->at;
    size_t scope_len = strlen(p->scope);
    if (p->tok_len == 0 || p->tok_len > PATH_MAX_LEN || t[0] == '.' || t[p->tok_len - 1] == '.' ||
        memmem(t, p->tok_len, "..", 2) != NULL)
        return fail_at(p, p->at, "'%.*s' is not a field name", (int)p->tok_len, t);
    memcpy(full, p->scope, scope_len);
    memcpy(full + scope_len, t, p->tok_len);
    full[scope_len + p->tok_len] = '\0';
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strcmp(fields[i].path, full) == 0) {
            *out = &fields[i];
            return 0;
        }
    }
    /* Not a field: the closest in the same scope, for the message. */
    const char *closest = NULL;
    size_t best = 3;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strncmp(fields[i].path, p->scope, scope_len) == 0) {
            const char *name = fields[i].path + scope_len, *typed = full + scope_len;
            size_t shorter = strlen(name) < strlen(typed) ? strlen(name) : strlen(typed);
            /* a near miss, or one name cut short of the other ("mount", "mountpoint") */
            size_t d =
                shorter >= 4 && strncmp(name, typed, shorter) == 0 && strchr(name, '.') == NULL
                    ? 2
                    : tl_name_distance(name, typed);
            if (d < best) {
                best = d;
                closest = fields[i].path + scope_len;
            }
        }
    }
    if (closest != NULL && scope_len > 0)
        return fail_at(p, p->at, "%s is not a field of the rows of %.*s (did you mean %s?)",
                       full + scope_len, (int)(scope_len - 3), p->scope, closest);
    if (closest != NULL)
        return fail_at(p, p->at, "%s is not a field of the report (did you mean %s?)", full,
                       closest);
    if (scope_len > 0)
        return fail_at(p, p->at, "%s is not a field of the rows of %.*s", full + scope_len,
                       (int)(scope_len - 3), p->scope);
    return fail_at(p, p->at, "%s is not a field of the report (docs/diagnostics.md lists them)",
                   full);
}

static int parse_or(struct parser *p, int *out);
static int parse_unary(struct parser *p, int *out);

static int expect(struct parser *p, enum tok tok, const char *what)
{
    if (p->tok != tok)
        return fail_at(p, p->at, "%s expected here", what);
    return next(p);
}

/* any|all|none LIST where UNARY */
static int parse_quantifier(struct parser *p, enum kind kind, int *out)
{
    int rc = next(p);
    if (rc == 0 && p->tok != T_PATH)
        rc = fail_at(p, p->at, "a list expected after the quantifier");
    const struct field *list = NULL;
    if (rc == 0)
        rc = resolve(p, &list);
    if (rc == 0 && list->type != F_LIST && list->type != F_STRS)
        rc = fail_at(p, p->at, "%s is %s, not a list", list->path, type_names[list->type]);
    if (rc != 0)
        return rc;
    int node = 0;
    if ((rc = new_node(p, kind, &node)) != 0)
        return rc;
    p->c->nodes[node].path_at = (unsigned)p->at;
    p->c->nodes[node].path_len = (unsigned)p->tok_len;
    p->c->nodes[node].field = list;
    if ((rc = next(p)) != 0)
        return rc;
    if (!is_word(p, "where"))
        return fail_at(p, p->at, "'where' expected after the list");
    if ((rc = next(p)) != 0)
        return rc;
    char saved[sizeof p->scope];
    enum ftype saved_type = p->scope_type;
    memcpy(saved, p->scope, sizeof saved);
    tl_format(p->scope, sizeof p->scope, "%s[].", list->path);
    p->scope_type = list->type;
    int body = 0;
    rc = parse_unary(p, &body);
    memcpy(p->scope, saved, sizeof saved);
    p->scope_type = saved_type;
    if (rc != 0)
        return rc;
    p->c->nodes[node].a = body;
    *out = node;
    return 0;
}

static int literal(struct parser *p, struct node *n)
{
    if (p->tok == T_NUMBER) {
        n->literal = F_NUM;
        n->number = p->number;
    } else if (p->tok == T_STRING) {
        n->literal = F_STR;
        n->string_at = (unsigned)p->string_at;
    } else if (is_word(p, "true") || is_word(p, "false")) {
        n->literal = F_BOOL;
        n->boolean = is_word(p, "true");
    } else {
        return fail_at(p, p->at, "a number, a \"string\", true or false expected here");
    }
    return next(p);
}

/* Whether op may compare a value of type left with a literal of type right. */
static const char *type_error(enum op op, enum ftype left, enum ftype right)
{
    if (op == OP_CONTAINS)
        return (left == F_STR || left == F_STRS) && right == F_STR
                   ? NULL
                   : "'contains' takes a string or a list of strings, and a string";
    if (op == OP_STARTSWITH)
        return left == F_STR && right == F_STR ? NULL : "'startswith' takes a string and a string";
    if (left == F_LIST || left == F_STRS)
        return "a list is compared with any, all, none, count() or contains";
    if (left != right)
        return "the two sides are of different kinds";
    if (left != F_NUM && op != OP_EQ && op != OP_NE)
        return "only numbers are ordered: use == or !=";
    return NULL;
}

/* exists PATH | missing PATH | OPERAND OP LITERAL */
static int parse_test(struct parser *p, int *out)
{
    int rc, node = 0;
    if (is_word(p, "exists") || is_word(p, "missing")) {
        enum kind kind = is_word(p, "exists") ? N_EXISTS : N_MISSING;
        if ((rc = next(p)) != 0)
            return rc;
        if (p->tok != T_PATH)
            return fail_at(p, p->at, "a field expected after exists or missing");
        const struct field *f;
        if ((rc = resolve(p, &f)) != 0 || (rc = new_node(p, kind, &node)) != 0)
            return rc;
        p->c->nodes[node].field = f;
        p->c->nodes[node].path_at = (unsigned)p->at;
        p->c->nodes[node].path_len = (unsigned)p->tok_len;
        *out = node;
        return next(p);
    }
    if ((rc = new_node(p, N_CMP, &node)) != 0)
        return rc;
    struct node n;
    memset(&n, 0, sizeof n);
    n.kind = N_CMP;
    enum ftype left;
    if (is_word(p, "value")) {
        if (p->scope[0] == '\0' || p->scope_type != F_STRS)
            return fail_at(p, p->at,
                           "'value' names a string of a list: use it in 'any LIST "
                           "where' over a list of strings");
        n.operand = O_VALUE;
        left = F_STR;
        if ((rc = next(p)) != 0)
            return rc;
    } else if (is_word(p, "count")) {
        if ((rc = next(p)) != 0 || (rc = expect(p, T_LPAREN, "'(' after count")) != 0)
            return rc;
        if (p->tok != T_PATH)
            return fail_at(p, p->at, "a list expected in count()");
        if ((rc = resolve(p, &n.field)) != 0)
            return rc;
        if (n.field->type != F_LIST && n.field->type != F_STRS)
            return fail_at(p, p->at, "%s is %s, and count() counts a list", n.field->path,
                           type_names[n.field->type]);
        n.operand = O_COUNT;
        n.path_at = (unsigned)p->at;
        n.path_len = (unsigned)p->tok_len;
        left = F_NUM;
        if ((rc = next(p)) != 0 || (rc = expect(p, T_RPAREN, "')' after the list")) != 0)
            return rc;
    } else if (p->tok == T_PATH) {
        if ((rc = resolve(p, &n.field)) != 0)
            return rc;
        n.operand = O_FIELD;
        n.path_at = (unsigned)p->at;
        n.path_len = (unsigned)p->tok_len;
        left = n.field->type;
        if ((rc = next(p)) != 0)
            return rc;
    } else if (p->tok == T_END) {
        return fail_at(p, p->at, "the condition ends where a test was expected");
    } else {
        return fail_at(p, p->at, "a field, count(LIST), exists or missing expected here");
    }
    size_t op_at = p->at;
    if (p->tok == T_OP)
        n.op = p->op;
    else if (is_word(p, "contains"))
        n.op = OP_CONTAINS;
    else if (is_word(p, "startswith"))
        n.op = OP_STARTSWITH;
    else
        return fail_at(p, p->at, "a comparison (== != < <= > >= contains startswith) expected");
    if ((rc = next(p)) != 0 || (rc = literal(p, &n)) != 0)
        return rc;
    const char *error = type_error(n.op, left, n.literal);
    if (error != NULL) {
        return fail_at(p, op_at, "%s (%s is %s)", error,
                       n.operand == O_FIELD   ? n.field->path
                       : n.operand == O_COUNT ? "count()"
                                              : "value",
                       type_names[left]);
    }
    p->c->nodes[node] = n;
    *out = node;
    return 0;
}

static int parse_unary(struct parser *p, int *out)
{
    if (++p->depth > TL_COND_DEPTH_MAX)
        return fail_at(p, p->at, "nested more than %d deep", TL_COND_DEPTH_MAX);
    int rc;
    if (is_word(p, "not")) {
        int node = 0, child = 0;
        if ((rc = next(p)) != 0 || (rc = parse_unary(p, &child)) != 0 ||
            (rc = new_node(p, N_NOT, &node)) != 0)
            return rc;
        p->c->nodes[node].a = child;
        *out = node;
    } else if (p->tok == T_LPAREN) {
        if ((rc = next(p)) != 0 || (rc = parse_or(p, out)) != 0)
            return rc;
        if ((rc = expect(p, T_RPAREN, "')'")) != 0)
            return rc;
    } else if (is_word(p, "any") || is_word(p, "all") || is_word(p, "none")) {
        enum kind kind = is_word(p, "any") ? N_ANY : is_word(p, "all") ? N_ALL : N_NONE;
        rc = parse_quantifier(p, kind, out);
    } else {
        rc = parse_test(p, out);
    }
    p->depth--;
    return rc;
}

static int parse_chain(struct parser *p, const char *word, enum kind kind,
                       int (*operand)(struct parser *, int *), int *out)
{
    int rc = operand(p, out);
    while (rc == 0 && is_word(p, word)) {
        int right = 0, node = 0;
        if ((rc = next(p)) != 0 || (rc = operand(p, &right)) != 0 ||
            (rc = new_node(p, kind, &node)) != 0)
            return rc;
        p->c->nodes[node].a = *out;
        p->c->nodes[node].b = right;
        *out = node;
    }
    return rc;
}

static int parse_and(struct parser *p, int *out)
{
    return parse_chain(p, "and", N_AND, parse_unary, out);
}

static int parse_or(struct parser *p, int *out)
{
    return parse_chain(p, "or", N_OR, parse_and, out);
}

void tl_cond_free(tl_cond_t *cond)
{
    if (cond == NULL)
        return;
    free(cond->text);
    free(cond->strings);
    free(cond->nodes);
    free(cond);
}

int tl_cond_parse(const char *text, size_t len, tl_cond_t **out, char *why, size_t why_size)
{
    *out = NULL;
    if (why_size > 0)
        why[0] = '\0';
    if (len > TL_COND_TEXT_MAX) {
        tl_format(why, why_size, "a condition longer than %d bytes", TL_COND_TEXT_MAX);
        return TL_EINVAL;
    }
    if (memchr(text, '\0', len) != NULL) {
        tl_format(why, why_size, "a NUL byte in the condition");
        return TL_EINVAL;
    }
    tl_cond_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->text = malloc(len + 1)) == NULL ||
        (c->strings = malloc(len + 1)) == NULL) {
        tl_cond_free(c);
        return TL_ENOMEM;
    }
    memcpy(c->text, text, len);
    c->text[len] = '\0';
    struct parser p = {.c = c, .len = len, .why = why, .why_size = why_size};
    int rc = next(&p);
    if (rc == 0 && p.tok == T_END)
        rc = fail_at(&p, p.at, "an empty condition");
    if (rc == 0)
        rc = parse_or(&p, &c->root);
    if (rc == 0 && p.tok != T_END)
        rc = fail_at(&p, p.at, "'%.*s' where the condition should end (and, or, or ')' missing?)",
                     (int)(p.tok_len > 20 ? 20 : p.tok_len), c->text + p.at);
    if (rc != 0) {
        tl_cond_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

struct eval {
    const tl_cond_t *c;
    char *out;
    size_t size, used;
};

/* The member a path (parts separated by dots, as written) names under scope, or NULL. */
static const json_t *lookup(const json_t *scope, const char *path, size_t len)
{
    const json_t *v = scope;
    size_t i = 0;
    while (v != NULL && i <= len) {
        size_t end = i;
        while (end < len && path[end] != '.')
            end++;
        char part[PATH_MAX_LEN + 1];
        if (end - i > PATH_MAX_LEN)
            return NULL;
        memcpy(part, path + i, end - i);
        part[end - i] = '\0';
        v = json_is_object(v) ? json_object_get(v, part) : NULL;
        i = end + 1;
    }
    return json_is_null(v) ? NULL : v;
}

/* Drops the evidence noted after mark (a branch that did not hold). */
static void rewind_to(struct eval *ev, size_t mark)
{
    ev->used = mark;
    if (ev->out != NULL && ev->size > 0)
        ev->out[mark < ev->size ? mark : ev->size - 1] = '\0';
}

__attribute__((format(printf, 2, 3))) static void note(struct eval *ev, const char *fmt, ...)
{
    if (ev->out == NULL || ev->size == 0)
        return;
    char raw[320], shown[480];
    va_list args;
    va_start(args, fmt);
    tl_format_v(raw, sizeof raw, fmt, args);
    va_end(args);
    tl_text_clip(shown, sizeof shown, raw, 160, TL_TEXT_LINE);
    tl_format_append(ev->out, ev->size, &ev->used, "%s%s", ev->used > 0 ? "; " : "", shown);
}

static void value_text(char *out, size_t size, const json_t *v)
{
    if (json_is_string(v))
        tl_format(out, size, "\"%s\"", json_string_value(v));
    else if (json_is_integer(v))
        tl_format(out, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        tl_format(out, size, "%.2f", json_real_value(v));
    else if (json_is_boolean(v))
        tl_format(out, size, "%s", json_is_true(v) ? "true" : "false");
    else
        tl_format(out, size, "?");
}

static tl_cond_result_t compare(const struct eval *ev, const struct node *n, const json_t *v)
{
    double x;
    switch (n->literal) {
    case F_NUM:
        if (!json_is_number(v))
            return TL_COND_UNKNOWN;
        x = json_number_value(v);
        switch (n->op) {
        case OP_EQ:
            return x == n->number;
        case OP_NE:
            return x != n->number;
        case OP_LT:
            return x < n->number;
        case OP_LE:
            return x <= n->number;
        case OP_GT:
            return x > n->number;
        case OP_GE:
            return x >= n->number;
        default:
            return TL_COND_UNKNOWN;
        }
    case F_BOOL:
        if (!json_is_boolean(v))
            return TL_COND_UNKNOWN;
        return (json_is_true(v) == n->boolean) == (n->op == OP_EQ);
    case F_STR: {
        const char *want = ev->c->strings + n->string_at;
        if (n->op == OP_CONTAINS && json_is_array(v)) {
            size_t i;
            const json_t *item;
            json_array_foreach(v, i, item) {
                if (json_is_string(item) && strcmp(json_string_value(item), want) == 0)
                    return TL_COND_TRUE;
            }
            return TL_COND_FALSE;
        }
        if (!json_is_string(v))
            return TL_COND_UNKNOWN;
        const char *s = json_string_value(v);
        switch (n->op) {
        case OP_EQ:
            return strcmp(s, want) == 0;
        case OP_NE:
            return strcmp(s, want) != 0;
        case OP_CONTAINS:
            return strstr(s, want) != NULL;
        case OP_STARTSWITH:
            return strncmp(s, want, strlen(want)) == 0;
        default:
            return TL_COND_UNKNOWN;
        }
    }
    default:
        return TL_COND_UNKNOWN;
    }
}

static tl_cond_result_t eval(struct eval *ev, int index, const json_t *scope, const char *where,
                             const json_t *value);

/* A row of a list as evidence names it: its key member, or its place. */
static void row_name(char *out, size_t size, const struct field *list, const json_t *row,
                     size_t index)
{
    const json_t *key = list->key != NULL ? json_object_get(row, list->key) : NULL;
    if (json_is_string(key))
        tl_format(out, size, "%s", json_string_value(key));
    else if (json_is_integer(key))
        tl_format(out, size, "%lld", (long long)json_integer_value(key));
    else
        tl_format(out, size, "%zu", index);
}

static tl_cond_result_t quantify(struct eval *ev, const struct node *n, const json_t *scope,
                                 const char *where)
{
    const json_t *list = lookup(scope, ev->c->text + n->path_at, n->path_len);
    if (!json_is_array(list))
        return TL_COND_UNKNOWN;
    bool unknown = false;
    size_t i;
    const json_t *row;
    json_array_foreach(list, i, row) {
        char name[96], inner[256];
        row_name(name, sizeof name, n->field, row, i);
        tl_format(inner, sizeof inner, "%s%.*s[%s].", where, (int)n->path_len,
                  ev->c->text + n->path_at, name);
        size_t mark = ev->used;
        tl_cond_result_t r = n->field->type == F_STRS ? eval(ev, n->a, NULL, inner, row)
                                                      : eval(ev, n->a, row, inner, NULL);
        if (r != TL_COND_TRUE || n->kind != N_ANY)
            rewind_to(ev, mark); /* all and none say how many rows they read instead */
        if (n->kind == N_ANY && r == TL_COND_TRUE)
            return TL_COND_TRUE;
        if (n->kind == N_ALL && r == TL_COND_FALSE)
            return TL_COND_FALSE;
        if (n->kind == N_NONE && r == TL_COND_TRUE)
            return TL_COND_FALSE;
        unknown |= r == TL_COND_UNKNOWN;
    }
    if (unknown)
        return TL_COND_UNKNOWN;
    if (n->kind == N_ANY)
        return TL_COND_FALSE;
    note(ev, "%s of the %zu in %s%.*s", n->kind == N_ALL ? "all" : "none", json_array_size(list),
         where, (int)n->path_len, ev->c->text + n->path_at);
    return TL_COND_TRUE;
}

static tl_cond_result_t eval(struct eval *ev, int index, const json_t *scope, const char *where,
                             const json_t *value)
{
    const struct node *n = &ev->c->nodes[index];
    const char *path = ev->c->text + n->path_at;
    size_t mark = ev->used;
    tl_cond_result_t r, l;
    switch (n->kind) {
    case N_OR:
        l = eval(ev, n->a, scope, where, value);
        if (l == TL_COND_TRUE)
            return l;
        rewind_to(ev, mark);
        r = eval(ev, n->b, scope, where, value);
        if (r == TL_COND_TRUE)
            return r;
        rewind_to(ev, mark);
        return l == TL_COND_UNKNOWN || r == TL_COND_UNKNOWN ? TL_COND_UNKNOWN : TL_COND_FALSE;
    case N_AND:
        l = eval(ev, n->a, scope, where, value);
        if (l == TL_COND_FALSE) {
            rewind_to(ev, mark);
            return l;
        }
        r = eval(ev, n->b, scope, where, value);
        if (r == TL_COND_FALSE || l == TL_COND_UNKNOWN || r == TL_COND_UNKNOWN) {
            rewind_to(ev, mark);
            return r == TL_COND_FALSE ? TL_COND_FALSE : TL_COND_UNKNOWN;
        }
        return TL_COND_TRUE;
    case N_NOT:
        r = eval(ev, n->a, scope, where, value);
        rewind_to(ev, mark);
        return r == TL_COND_UNKNOWN ? r : r == TL_COND_TRUE ? TL_COND_FALSE : TL_COND_TRUE;
    case N_ANY:
    case N_ALL:
    case N_NONE:
        return quantify(ev, n, scope, where);
    case N_EXISTS:
    case N_MISSING: {
        int found = lookup(scope, path, n->path_len) != NULL;
        if (found == (n->kind == N_EXISTS)) {
            note(ev, "%s%.*s %s", where, (int)n->path_len, path, found ? "is there" : "is missing");
            return TL_COND_TRUE;
        }
        return TL_COND_FALSE;
    }
    case N_CMP:
        break;
    }
    const json_t *v;
    json_t *counted = NULL;
    if (n->operand == O_VALUE) {
        v = value;
    } else if (n->operand == O_COUNT) {
        const json_t *list = lookup(scope, path, n->path_len);
        v = counted = json_is_array(list) ? json_integer((json_int_t)json_array_size(list)) : NULL;
    } else {
        v = lookup(scope, path, n->path_len);
    }
    r = v != NULL ? compare(ev, n, v) : TL_COND_UNKNOWN;
    if (r == TL_COND_TRUE) {
        char shown[300];
        value_text(shown, sizeof shown, v);
        if (n->operand == O_VALUE)
            note(ev, "%.*s = %s", (int)(strlen(where) > 0 ? strlen(where) - 1 : 0), where, shown);
        else
            note(ev, "%s%s%.*s%s = %s", n->operand == O_COUNT ? "count(" : "", where,
                 (int)n->path_len, path, n->operand == O_COUNT ? ")" : "", shown);
    }
    json_decref(counted);
    return r;
}

tl_cond_result_t tl_cond_eval(const tl_cond_t *cond, const json_t *report, char *evidence,
                              size_t evidence_size)
{
    struct eval ev = {cond, evidence, evidence_size, 0};
    if (evidence != NULL && evidence_size > 0)
        evidence[0] = '\0';
    const json_t *sections = json_is_object(report) ? json_object_get(report, "sections") : NULL;
    tl_cond_result_t r =
        eval(&ev, cond->root, json_is_object(sections) ? sections : NULL, "", NULL);
    if (r != TL_COND_TRUE && evidence != NULL && evidence_size > 0)
        evidence[0] = '\0';
    return r;
}
