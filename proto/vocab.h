/*
 * The names both programs say to each other: control-message types and
 * channel types, one table each.
 *
 * A CONTROL message's JSON body names its type in "type" (docs/protocol.md
 * §7); a CHANNEL_OPEN names its channel type (§4.2, §7.4, §7.7). The
 * agent's control socket speaks the same way between a user's command
 * ("cmd") and the running agent ("event" lines to a watcher; agent/control.h).
 * Each name is listed once here with who sends it, so neither program types
 * it again and a newcomer finds every message in one place. The table says
 * what a name is; what is done with it stays with the module that handles it.
 */
#ifndef TL_VOCAB_H
#define TL_VOCAB_H

#include <stddef.h>

/* Who sends a control message to whom, and whether it is answered. */
enum tl_control_route {
    TL_ROUTE_ANSWER,        /* either side: the answer to a request, with the request's id */
    TL_ROUTE_AGENT_REQUEST, /* agent -> relay, a non-zero request id; answered with "result" */
    TL_ROUTE_RELAY_REQUEST, /* relay -> agent, a non-zero request id; answered with "result" */
    TL_ROUTE_AGENT_NOTICE,  /* agent -> relay, request id 0, never answered */
    TL_ROUTE_RELAY_NOTICE,  /* relay -> agent, request id 0, never answered */
    TL_ROUTE_LOCAL_COMMAND, /* a user's command -> the running agent, on its control socket */
    TL_ROUTE_LOCAL_EVENT,   /* the running agent -> a command watching its control socket */
};

enum tl_control_type {
    TL_CONTROL_UNKNOWN = 0,
    /* agent <-> relay (docs/protocol.md §7) */
    TL_CONTROL_RESULT,             /* "result" §7.3 */
    TL_CONTROL_WELCOME,            /* "welcome" §7.1 */
    TL_CONTROL_ENROLL_REQUIRED,    /* "enroll-required" §7.2 */
    TL_CONTROL_TICKET_CREATE,      /* "ticket.create" §7.5 */
    TL_CONTROL_SESSION_REQUEST,    /* "session.request" §7.6 */
    TL_CONTROL_SESSION_CANCEL,     /* "session.cancel" §7.6 */
    TL_CONTROL_SESSION_RESIZE,     /* "session.resize" §7.7 */
    TL_CONTROL_SESSION_SIGNAL,     /* "session.signal" §7.7 */
    TL_CONTROL_SESSION_ENDED,      /* "session.ended" §7.8 */
    TL_CONTROL_RUNBOOKS_LIST,      /* "runbooks.list" §7.9 */
    TL_CONTROL_TICKETS_LIST,       /* "tickets.list" §7.11 */
    TL_CONTROL_TICKET_UPDATE,      /* "ticket.update" §7.12 */
    TL_CONTROL_SELFHELP_DEFLECTED, /* "selfhelp.deflected" §7.13 */
    TL_CONTROL_CATALOGUE_GET,      /* "catalogue.get" §7.14 */
    TL_CONTROL_CATALOGUE_REPORT,   /* "catalogue.report" §7.14 */
    TL_CONTROL_AUDIT_WITNESS,      /* "audit.witness" §7.15 */
    TL_CONTROL_AUDIT_CONFLICT,     /* "audit.conflict" §7.15 */
    TL_CONTROL_AUDIT_CHECKPOINT,   /* "audit.checkpoint" §7.15 */
    TL_CONTROL_SESSION_COMMAND,    /* "session.command" §7.7 */
    TL_CONTROL_FILES_STAT,         /* "files.stat" §7.16 */
    TL_CONTROL_FILES_LIST,         /* "files.list" §7.16 */
    /* the agent's control socket: commands ("cmd", agent/control.h) */
    TL_CONTROL_STATUS,
    TL_CONTROL_DELIVER,
    TL_CONTROL_PENDING,
    TL_CONTROL_APPROVE,
    TL_CONTROL_DENY,
    TL_CONTROL_SESSIONS,
    TL_CONTROL_END,
    TL_CONTROL_WATCH,
    TL_CONTROL_TICKETS,
    /* the agent's control socket: events to a watcher ("event") */
    TL_CONTROL_EVENT_QUESTION,
    TL_CONTROL_EVENT_GRANTED,
    TL_CONTROL_EVENT_DENIED,
    TL_CONTROL_EVENT_ACTIVITY,
    TL_CONTROL_EVENT_ENDED,
    TL_CONTROL_EVENT_DELIVERED,
    TL_CONTROL_EVENT_SET_ASIDE,
    TL_CONTROL_EVENT_TICKET,
    TL_CONTROL_EVENT_COMMAND,
    TL_CONTROL_COUNT
};

/* The type a name stands for; TL_CONTROL_UNKNOWN for NULL or a name not in the table. */
enum tl_control_type tl_control_type_lookup(const char *name);
/* The name on the wire or the socket ("session.request"); "unknown" outside the table. */
const char *tl_control_type_name(enum tl_control_type type);
/* Who sends it; TL_ROUTE_ANSWER for TL_CONTROL_UNKNOWN. */
enum tl_control_route tl_control_type_route(enum tl_control_type type);

/*
 * Consent scopes (docs/consent.md): what a grant lets a technician do, as bits of a set. The
 * names are what session.request asks for and grants carry ("diag", "fix", ...).
 */
enum tl_scope {
    TL_SCOPE_DIAG = 1u << 0,
    TL_SCOPE_FIX = 1u << 1,
    TL_SCOPE_EXEC = 1u << 2,
    TL_SCOPE_SHELL = 1u << 3,
    TL_SCOPE_FILES = 1u << 4,
    TL_SCOPE_OBSERVE = 1u << 5,
};
/* How many scopes there are: the bits above are 1u << 0 .. 1u << (TL_SCOPE_COUNT - 1). */
#define TL_SCOPE_COUNT 6

/* The bit of a scope name; 0 for NULL or a name that is not a scope. */
unsigned tl_scope_bit(const char *name);
/* The name of one scope bit ("diag"); NULL for anything but exactly one known bit. */
const char *tl_scope_name(unsigned bit);

/* The side that opens a channel of a type. */
enum tl_side { TL_SIDE_AGENT, TL_SIDE_RELAY };

enum tl_channel_type {
    TL_CHANNEL_UNKNOWN = 0,
    TL_CHANNEL_UPLOAD,  /* "upload": evidence, agent -> relay (§7.4) */
    TL_CHANNEL_EXEC,    /* "exec": a command, under the exec scope (§7.7) */
    TL_CHANNEL_SHELL,   /* "shell": a terminal, under the shell scope */
    TL_CHANNEL_OBSERVE, /* "observe": a copy of the ticket's shells, under observe */
    TL_CHANNEL_DIAG,    /* "diag": fresh diagnostics, under diag */
    TL_CHANNEL_RUNBOOK, /* "runbook": a catalogue runbook, under fix */
    TL_CHANNEL_FILE,    /* "file": one file read or written, under files (§7.16) */
    TL_CHANNEL_COUNT
};

/* The type a name stands for; TL_CHANNEL_UNKNOWN for NULL or a name not in the table. */
enum tl_channel_type tl_channel_type_lookup(const char *name);
/* As tl_channel_type_lookup, for the len bytes at name (not NUL-terminated). */
enum tl_channel_type tl_channel_type_lookup_n(const char *name, size_t len);
/* The name in CHANNEL_OPEN ("shell"); "unknown" outside the table. */
const char *tl_channel_type_name(enum tl_channel_type type);
/* The side that opens it: the relay for sessions, the agent for uploads. */
enum tl_side tl_channel_type_opener(enum tl_channel_type type);
/* The consent scope a grant must hold for it (TL_SCOPE_EXEC, ...); 0 if none applies. */
unsigned tl_channel_type_scope(enum tl_channel_type type);
/* The same scope's name ("exec", "fix", ...); NULL if none applies. */
const char *tl_channel_type_grant_scope(enum tl_channel_type type);

/*
 * The signals a technician may send to a session's process group (SSH "signal" requests,
 * RFC 4254 §6.9; session.signal, docs/protocol.md §7.7): HUP INT QUIT KILL USR1 USR2 TERM,
 * named without "SIG" as SSH names them.
 */
/* The signal's number on this system; 0 for NULL or a name not in that list (case matters). */
int tl_session_signal_number(const char *name);
/* The name of one of those signals ("INT"); NULL for any other number. */
const char *tl_session_signal_name(int number);

/*
 * The help desk's ticket categories (docs/desk.md "Categories and severities"), which tickets,
 * the classifier and knowledge-base articles share, in this order.
 */
#define TL_CATEGORY_NAMES 9
/* The i-th name ("account", ..., "other"); NULL outside 0..TL_CATEGORY_NAMES - 1. */
const char *tl_category_name(int index);
/* The index of a name, or -1 for NULL or a name not in the list. */
int tl_category_index(const char *name);

#endif
