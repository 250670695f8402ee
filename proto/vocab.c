#include "proto/vocab.h"

#include <signal.h>
#include <string.h>

static const struct {
    const char *name;
    enum tl_control_route route;
} controls[TL_CONTROL_COUNT] = {
    [TL_CONTROL_UNKNOWN] = {"unknown", TL_ROUTE_ANSWER},
    [TL_CONTROL_RESULT] = {"result", TL_ROUTE_ANSWER},
    [TL_CONTROL_WELCOME] = {"welcome", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_ENROLL_REQUIRED] = {"enroll-required", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_TICKET_CREATE] = {"ticket.create", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_SESSION_REQUEST] = {"session.request", TL_ROUTE_RELAY_REQUEST},
    [TL_CONTROL_SESSION_CANCEL] = {"session.cancel", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_SESSION_RESIZE] = {"session.resize", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_SESSION_SIGNAL] = {"session.signal", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_SESSION_ENDED] = {"session.ended", TL_ROUTE_AGENT_NOTICE},
    [TL_CONTROL_RUNBOOKS_LIST] = {"runbooks.list", TL_ROUTE_RELAY_REQUEST},
    [TL_CONTROL_TICKETS_LIST] = {"tickets.list", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_TICKET_UPDATE] = {"ticket.update", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_SELFHELP_DEFLECTED] = {"selfhelp.deflected", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_CATALOGUE_GET] = {"catalogue.get", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_CATALOGUE_REPORT] = {"catalogue.report", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_AUDIT_WITNESS] = {"audit.witness", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_AUDIT_CONFLICT] = {"audit.conflict", TL_ROUTE_AGENT_REQUEST},
    [TL_CONTROL_AUDIT_CHECKPOINT] = {"audit.checkpoint", TL_ROUTE_RELAY_NOTICE},
    [TL_CONTROL_SESSION_COMMAND] = {"session.command", TL_ROUTE_AGENT_NOTICE},
    [TL_CONTROL_FILES_STAT] = {"files.stat", TL_ROUTE_RELAY_REQUEST},
    [TL_CONTROL_FILES_LIST] = {"files.list", TL_ROUTE_RELAY_REQUEST},
    [TL_CONTROL_STATUS] = {"status", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_DELIVER] = {"deliver", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_PENDING] = {"pending", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_APPROVE] = {"approve", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_DENY] = {"deny", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_SESSIONS] = {"sessions", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_END] = {"end", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_WATCH] = {"watch", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_TICKETS] = {"tickets", TL_ROUTE_LOCAL_COMMAND},
    [TL_CONTROL_EVENT_QUESTION] = {"question", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_GRANTED] = {"granted", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_DENIED] = {"denied", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_ACTIVITY] = {"activity", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_ENDED] = {"ended", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_DELIVERED] = {"delivered", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_SET_ASIDE] = {"set-aside", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_TICKET] = {"ticket", TL_ROUTE_LOCAL_EVENT},
    [TL_CONTROL_EVENT_COMMAND] = {"command", TL_ROUTE_LOCAL_EVENT},
};

static const char *const scope_names[TL_SCOPE_COUNT] = {
    "diag", "fix", "exec", "shell", "files", "observe",
};

static const struct {
    const char *name;
    enum tl_side opener;
    unsigned scope; /* what a grant must hold for it; 0: no grant involved */
} channels[TL_CHANNEL_COUNT] = {
    [TL_CHANNEL_UNKNOWN] = {"unknown", TL_SIDE_RELAY, 0},
    [TL_CHANNEL_UPLOAD] = {"upload", TL_SIDE_AGENT, 0},
    [TL_CHANNEL_EXEC] = {"exec", TL_SIDE_RELAY, TL_SCOPE_EXEC},
    [TL_CHANNEL_SHELL] = {"shell", TL_SIDE_RELAY, TL_SCOPE_SHELL},
    [TL_CHANNEL_OBSERVE] = {"observe", TL_SIDE_RELAY, TL_SCOPE_OBSERVE},
    [TL_CHANNEL_DIAG] = {"diag", TL_SIDE_RELAY, TL_SCOPE_DIAG},
    [TL_CHANNEL_RUNBOOK] = {"runbook", TL_SIDE_RELAY, TL_SCOPE_FIX},
    [TL_CHANNEL_FILE] = {"file", TL_SIDE_RELAY, TL_SCOPE_FILES},
};

unsigned tl_scope_bit(const char *name)
{
    for (unsigned i = 0; name != NULL && i < TL_SCOPE_COUNT; i++)
        if (strcmp(scope_names[i], name) == 0)
            return 1u << i;
    return 0;
}

const char *tl_scope_name(unsigned bit)
{
    for (unsigned i = 0; i < TL_SCOPE_COUNT; i++)
        if (bit == 1u << i)
            return scope_names[i];
    return NULL;
}

enum tl_control_type tl_control_type_lookup(const char *name)
{
    for (int i = TL_CONTROL_UNKNOWN + 1; name != NULL && i < TL_CONTROL_COUNT; i++)
        if (strcmp(controls[i].name, name) == 0)
            return (enum tl_control_type)i;
    return TL_CONTROL_UNKNOWN;
}

static int control_valid(enum tl_control_type type)
{
    return (int)type > TL_CONTROL_UNKNOWN && (int)type < TL_CONTROL_COUNT;
}

const char *tl_control_type_name(enum tl_control_type type)
{
    return controls[control_valid(type) ? type : TL_CONTROL_UNKNOWN].name;
}

enum tl_control_route tl_control_type_route(enum tl_control_type type)
{
    return controls[control_valid(type) ? type : TL_CONTROL_UNKNOWN].route;
}

enum tl_channel_type tl_channel_type_lookup_n(const char *name, size_t len)
{
    for (int i = TL_CHANNEL_UNKNOWN + 1; name != NULL && i < TL_CHANNEL_COUNT; i++)
        if (strlen(channels[i].name) == len && memcmp(channels[i].name, name, len) == 0)
            return (enum tl_channel_type)i;
    return TL_CHANNEL_UNKNOWN;
}

enum tl_channel_type tl_channel_type_lookup(const char *name)
{
    return name != NULL ? tl_channel_type_lookup_n(name, strlen(name)) : TL_CHANNEL_UNKNOWN;
}

static int channel_valid(enum tl_channel_type type)
{
    return (int)type > TL_CHANNEL_UNKNOWN && (int)type < TL_CHANNEL_COUNT;
}

const char *tl_channel_type_name(enum tl_channel_type type)
{
    return channels[channel_valid(type) ? type : TL_CHANNEL_UNKNOWN].name;
}

enum tl_side tl_channel_type_opener(enum tl_channel_type type)
{
    return channels[channel_valid(type) ? type : TL_CHANNEL_UNKNOWN].opener;
}

unsigned tl_channel_type_scope(enum tl_channel_type type)
{
    return channels[channel_valid(type) ? type : TL_CHANNEL_UNKNOWN].scope;
}

const char *tl_channel_type_grant_scope(enum tl_channel_type type)
{
    return tl_scope_name(tl_channel_type_scope(type));
}

static const char *const category_names[TL_CATEGORY_NAMES] = {
    "account",     "network",  "printing", "disk",  "performance",
    "application", "hardware", "security", "other",
};

const char *tl_category_name(int index)
{
    return index >= 0 && index < TL_CATEGORY_NAMES ? category_names[index] : NULL;
}

int tl_category_index(const char *name)
{
    for (int i = 0; name != NULL && i < TL_CATEGORY_NAMES; i++)
        if (strcmp(name, category_names[i]) == 0)
            return i;
    return -1;
}

static const struct {
    const char *name;
    int number;
} session_signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM},
};

int tl_session_signal_number(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof session_signals / sizeof session_signals[0]; i++)
        if (strcmp(session_signals[i].name, name) == 0)
            return session_signals[i].number;
    return 0;
}

const char *tl_session_signal_name(int number)
{
    for (size_t i = 0; i < sizeof session_signals / sizeof session_signals[0]; i++)
        if (session_signals[i].number == number)
            return session_signals[i].name;
    return NULL;
}
