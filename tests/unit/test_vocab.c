/*
 * The names both programs say to each other: each is in the table once, with
 * who sends it, and the specs list exactly the names the table holds.
 */
#include "tl_test.h"

#include "proto/vocab.h"

#include <signal.h>
#include <stdlib.h>

static void test_every_control_name_looks_up_to_its_type(void **state)
{
    (void)state;
    for (int type = TL_CONTROL_UNKNOWN + 1; type < TL_CONTROL_COUNT; type++) {
        const char *name = tl_control_type_name((enum tl_control_type)type);
        assert_string_not_equal(name, "unknown");
        assert_int_equal(tl_control_type_lookup(name), type);
    }
    assert_int_equal(tl_control_type_lookup("session.request"), TL_CONTROL_SESSION_REQUEST);
    assert_int_equal(tl_control_type_lookup("Session.Request"), TL_CONTROL_UNKNOWN);
    assert_int_equal(tl_control_type_lookup("session.request "), TL_CONTROL_UNKNOWN);
    assert_int_equal(tl_control_type_lookup(""), TL_CONTROL_UNKNOWN);
    assert_int_equal(tl_control_type_lookup("unknown"), TL_CONTROL_UNKNOWN);
    assert_int_equal(tl_control_type_lookup(NULL), TL_CONTROL_UNKNOWN);
    assert_string_equal(tl_control_type_name(TL_CONTROL_COUNT), "unknown");
    assert_string_equal(tl_control_type_name((enum tl_control_type) - 1), "unknown");
}

/* docs/protocol.md §7: who sends each message, and whether it is answered. */
static void test_each_control_message_says_who_sends_it(void **state)
{
    (void)state;
    assert_int_equal(tl_control_type_route(TL_CONTROL_RESULT), TL_ROUTE_ANSWER);
    assert_int_equal(tl_control_type_route(TL_CONTROL_WELCOME), TL_ROUTE_RELAY_NOTICE);
    assert_int_equal(tl_control_type_route(TL_CONTROL_ENROLL_REQUIRED), TL_ROUTE_RELAY_NOTICE);
    assert_int_equal(tl_control_type_route(TL_CONTROL_TICKET_CREATE), TL_ROUTE_AGENT_REQUEST);
    assert_int_equal(tl_control_type_route(TL_CONTROL_SESSION_REQUEST), TL_ROUTE_RELAY_REQUEST);
    assert_int_equal(tl_control_type_route(TL_CONTROL_SESSION_CANCEL), TL_ROUTE_RELAY_NOTICE);
    assert_int_equal(tl_control_type_route(TL_CONTROL_SESSION_RESIZE), TL_ROUTE_RELAY_NOTICE);
    assert_int_equal(tl_control_type_route(TL_CONTROL_SESSION_ENDED), TL_ROUTE_AGENT_NOTICE);
    assert_int_equal(tl_control_type_route(TL_CONTROL_RUNBOOKS_LIST), TL_ROUTE_RELAY_REQUEST);
    assert_int_equal(tl_control_type_route(TL_CONTROL_APPROVE), TL_ROUTE_LOCAL_COMMAND);
    assert_int_equal(tl_control_type_route(TL_CONTROL_EVENT_SET_ASIDE), TL_ROUTE_LOCAL_EVENT);
}

static void test_channel_types_say_who_opens_them_and_under_which_scope(void **state)
{
    (void)state;
    for (int type = TL_CHANNEL_UNKNOWN + 1; type < TL_CHANNEL_COUNT; type++) {
        const char *name = tl_channel_type_name((enum tl_channel_type)type);
        assert_int_equal(tl_channel_type_lookup(name), type);
        /* Every session channel needs a grant's scope; the upload needs none. */
        int from_relay = tl_channel_type_opener((enum tl_channel_type)type) == TL_SIDE_RELAY;
        assert_int_equal(from_relay,
                         tl_channel_type_grant_scope((enum tl_channel_type)type) != NULL);
    }
    assert_int_equal(tl_channel_type_opener(TL_CHANNEL_UPLOAD), TL_SIDE_AGENT);
    assert_string_equal(tl_channel_type_grant_scope(TL_CHANNEL_RUNBOOK), "fix");
    assert_string_equal(tl_channel_type_grant_scope(TL_CHANNEL_SHELL), "shell");
    assert_null(tl_channel_type_grant_scope(TL_CHANNEL_UNKNOWN));
    /* The name in a CHANNEL_OPEN is not NUL-terminated: only its len bytes count. */
    assert_int_equal(tl_channel_type_lookup_n("shellfish", 5), TL_CHANNEL_SHELL);
    assert_int_equal(tl_channel_type_lookup_n("shell", 4), TL_CHANNEL_UNKNOWN);
    assert_int_equal(tl_channel_type_lookup_n("shell", 0), TL_CHANNEL_UNKNOWN);
    assert_int_equal(tl_channel_type_lookup("Shell"), TL_CHANNEL_UNKNOWN);
    assert_int_equal(tl_channel_type_lookup(NULL), TL_CHANNEL_UNKNOWN);
}

/* The consent scopes: one name per bit, both ways; a set of bits has no one name. */
static void test_scopes_have_one_name_per_bit(void **state)
{
    (void)state;
    static const char *const names[] = {"diag", "fix", "exec", "shell", "files", "observe"};
    assert_int_equal(sizeof names / sizeof names[0], TL_SCOPE_COUNT);
    for (unsigned i = 0; i < TL_SCOPE_COUNT; i++) {
        assert_string_equal(tl_scope_name(1u << i), names[i]);
        assert_int_equal(tl_scope_bit(names[i]), 1u << i);
    }
    assert_int_equal(tl_scope_bit("Exec"), 0);
    assert_int_equal(tl_scope_bit("runbook"), 0);
    assert_int_equal(tl_scope_bit(""), 0);
    assert_int_equal(tl_scope_bit(NULL), 0);
    assert_null(tl_scope_name(0));
    assert_null(tl_scope_name(TL_SCOPE_EXEC | TL_SCOPE_SHELL));
    assert_null(tl_scope_name(1u << TL_SCOPE_COUNT));
    /* The channel table names its scopes with the same bits. */
    assert_int_equal(tl_channel_type_scope(TL_CHANNEL_RUNBOOK), TL_SCOPE_FIX);
    assert_int_equal(tl_channel_type_scope(TL_CHANNEL_OBSERVE), TL_SCOPE_OBSERVE);
    assert_int_equal(tl_channel_type_scope(TL_CHANNEL_UPLOAD), 0);
}

static char *read_source(const char *relative)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", TL_SOURCE_DIR, relative);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *text = calloc(1, 1024 * 1024);
    assert_non_null(text);
    size_t len = fread(text, 1, 1024 * 1024 - 1, f);
    fclose(f);
    text[len] = '\0';
    return text;
}

/* Every `"KEY":"NAME"` in text names a table entry of route(s) in want. */
static void check_quoted_names(const char *text, const char *key, unsigned want, const char *where)
{
    const char *at = text;
    while ((at = strstr(at, key)) != NULL) {
        at += strlen(key);
        const char *end = strchr(at, '"');
        assert_non_null(end);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(end - at), at);
        enum tl_control_type type = tl_control_type_lookup(name);
        if (type == TL_CONTROL_UNKNOWN || !(want & (1u << tl_control_type_route(type))))
            fail_msg("%s names \"%s\", which the table does not hold as such", where, name);
    }
}

/* docs/protocol.md and agent/control.h name exactly what the table holds. */
/* SSH's names for the signals a technician may send (RFC 4254 §6.9), and nothing else. */
static void test_session_signals_are_ssh_names_of_the_list_only(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int number;
    } listed[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
                  {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}};
    for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++) {
        assert_int_equal(tl_session_signal_number(listed[i].name), listed[i].number);
        assert_string_equal(tl_session_signal_name(listed[i].number), listed[i].name);
    }
    const char *refused[] = {"SIGINT", "int",  "INT ", " INT",  "",      "SEGV", "STOP",
                             "CONT",   "ALRM", "9",    "INT\n", "KILLX", "HU"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_int_equal(tl_session_signal_number(refused[i]), 0);
    assert_int_equal(tl_session_signal_number(NULL), 0);
    assert_null(tl_session_signal_name(0));
    assert_null(tl_session_signal_name(SIGSEGV));
    assert_null(tl_session_signal_name(SIGSTOP));
    assert_null(tl_session_signal_name(-1));
    assert_int_equal(tl_control_type_lookup("session.signal"), TL_CONTROL_SESSION_SIGNAL);
    assert_int_equal(tl_control_type_route(TL_CONTROL_SESSION_SIGNAL), TL_ROUTE_RELAY_NOTICE);
}

static void test_the_specs_name_exactly_the_table(void **state)
{
    (void)state;
    char *protocol = read_source("docs/protocol.md");
    char *control = read_source("agent/control.h");
    unsigned wire = 1u << TL_ROUTE_ANSWER | 1u << TL_ROUTE_AGENT_REQUEST |
                    1u << TL_ROUTE_RELAY_REQUEST | 1u << TL_ROUTE_AGENT_NOTICE |
                    1u << TL_ROUTE_RELAY_NOTICE;
    check_quoted_names(protocol, "\"type\":\"", wire, "docs/protocol.md");
    check_quoted_names(control, "\"cmd\":\"", 1u << TL_ROUTE_LOCAL_COMMAND, "agent/control.h");
    for (int type = TL_CONTROL_UNKNOWN + 1; type < TL_CONTROL_COUNT; type++) {
        const char *name = tl_control_type_name((enum tl_control_type)type);
        char quoted[96];
        switch (tl_control_type_route((enum tl_control_type)type)) {
        case TL_ROUTE_LOCAL_COMMAND:
            snprintf(quoted, sizeof quoted, "\"cmd\":\"%s\"", name);
            if (strstr(control, quoted) == NULL)
                fail_msg("agent/control.h does not say %s", quoted);
            break;
        case TL_ROUTE_LOCAL_EVENT:
            snprintf(quoted, sizeof quoted, "\"%s\"", name);
            if (strstr(strstr(control, "\"event\":"), quoted) == NULL)
                fail_msg("agent/control.h lists no event %s", quoted);
            break;
        default:
            snprintf(quoted, sizeof quoted, "\"type\":\"%s\"", name);
            if (strstr(protocol, quoted) == NULL)
                fail_msg("docs/protocol.md does not say %s", quoted);
        }
    }
    for (int type = TL_CHANNEL_UNKNOWN + 1; type < TL_CHANNEL_COUNT; type++) {
        char quoted[64], code[64];
        const char *name = tl_channel_type_name((enum tl_channel_type)type);
        snprintf(quoted, sizeof quoted, "type `\"%s\"`", name);
        snprintf(code, sizeof code, "| `%s` |", name);
        if (strstr(protocol, quoted) == NULL && strstr(protocol, code) == NULL)
            fail_msg("docs/protocol.md does not describe the channel type %s", name);
    }
    free(protocol);
    free(control);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_control_name_looks_up_to_its_type),
    cmocka_unit_test(test_each_control_message_says_who_sends_it),
    cmocka_unit_test(test_channel_types_say_who_opens_them_and_under_which_scope),
    cmocka_unit_test(test_scopes_have_one_name_per_bit),
    cmocka_unit_test(test_session_signals_are_ssh_names_of_the_list_only),
    cmocka_unit_test(test_the_specs_name_exactly_the_table),
};

TL_TEST_MAIN(tests)
