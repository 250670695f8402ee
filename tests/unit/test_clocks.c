/*
 * A ticket's clocks as the desk shows them (relay/desk/clocks.h), pure: a ticket's history of
 * changes, as the store keeps it, made into the events the SLA clocks replay, and what the
 * queues read from the clocks (the next due time, the clocks that warn or breach), and times
 * shown in the calendar's zone. Also the desk configuration a relay uses without a desk.json
 * (relay/desk/desk_config.h), and the status words that help texts list (relay/desk/tickets.h).
 */
#include "tl_test.h"

#include "relay/desk/clocks.h"
#include "relay/desk/desk_config.h"
#include "relay/desk/tickets.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MINUTE 60000LL
#define HOUR 3600000LL

static int64_t utc(int year, int month, int day, int hour, int minute)
{
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = minute};
    return (int64_t)timegm(&tm) * 1000;
}

static tl_sla_config_t *config_of(const char *text)
{
    char why[256] = "";
    tl_sla_config_t *config = NULL;
    int rc = tl_sla_config_parse_text(text, strlen(text), tl_zone_lookup_files, NULL, &config, why,
                                      sizeof why);
    if (rc != 0)
        fail_msg("configuration does not parse: %s (%s)", why, tl_strerror(rc));
    return config;
}

#define OFFICE                                                                                     \
    "{\"sla\": {\"calendar\": {\"zone\": \"Europe/Berlin\", \"hours\": {\"mon\": "                 \
    "\"09:00-17:00\", "                                                                            \
    "\"tue\": \"09:00-17:00\", \"wed\": \"09:00-17:00\", \"thu\": \"09:00-17:00\", "               \
    "\"fri\": \"09:00-17:00\"}}, \"targets\": {"                                                   \
    "\"S1\": {\"first_response\": \"30m\", \"resolution\": \"4h\"}, "                              \
    "\"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\"}, "                               \
    "\"S3\": {\"first_response\": \"4h\", \"resolution\": \"16h\"}, "                              \
    "\"S4\": {\"first_response\": \"6h\", \"resolution\": \"40h\"}}}}"

/* A change row as the store gives it. */
#define CHANGE(time, field, value)                                                                 \
    {                                                                                              \
        1, (time), (field), (value), "relay", ""                                                   \
    }

/* The events of a history, replayed at now; the caller frees *events. */
static void events_of(const tl_ticket_change_row_t *rows, size_t count, int64_t created,
                      int64_t now, tl_sla_ticket_t *ticket, tl_sla_event_t **events)
{
    char why[256] = "";
    int rc = tl_clocks_events(rows, count, created, 3, 1, now, ticket, events, why, sizeof why);
    if (rc != 0)
        fail_msg("history refused: %s (%s)", why, tl_strerror(rc));
}

/* Each field becomes its event; the category changes no clock and is left out. */
static void test_changes_become_the_events_the_clocks_replay(void **state)
{
    (void)state;
    int64_t t0 = utc(2026, 3, 2, 9, 0);
    tl_ticket_change_row_t rows[] = {
        CHANGE(t0, "tier", "1"),
        CHANGE(t0, "severity", "2"),
        CHANGE(t0, "category", "disk"),
        CHANGE(t0 + MINUTE, "assignee", "alice"),
        CHANGE(t0 + MINUTE, "status", "open"),
        CHANGE(t0 + 2 * MINUTE, "response", "note"),
        CHANGE(t0 + 3 * MINUTE, "status", "waiting-user"),
        CHANGE(t0 + 4 * MINUTE, "severity", "1"),
        CHANGE(t0 + 5 * MINUTE, "tier", "3"),
    };
    tl_sla_ticket_t ticket;
    tl_sla_event_t *events = NULL;
    events_of(rows, 9, t0, t0 + HOUR, &ticket, &events);
    /* It starts as the history's first rows say, not as the ticket is now (S3, tier 1). */
    assert_int_equal(ticket.created_ms, t0);
    assert_int_equal(ticket.severity, 2);
    assert_int_equal(ticket.tier, 1);
    assert_int_equal(ticket.event_count, 8);
    assert_int_equal(events[0].kind, TL_SLA_EVENT_TIER);
    assert_int_equal(events[1].kind, TL_SLA_EVENT_SEVERITY);
    assert_int_equal(events[2].kind, TL_SLA_EVENT_ASSIGNEE);
    assert_int_equal(events[3].kind, TL_SLA_EVENT_STATUS);
    assert_int_equal(events[3].status, TL_SLA_STATUS_OPEN);
    assert_int_equal(events[4].kind, TL_SLA_EVENT_ACTIVITY);
    assert_int_equal(events[4].is_response, 1);
    assert_int_equal(events[4].time_ms, t0 + 2 * MINUTE);
    assert_int_equal(events[5].status, TL_SLA_STATUS_WAITING_USER);
    assert_int_equal(events[6].severity, 1);
    assert_int_equal(events[7].tier, 3);
    free(events);
}

/* A clock set back while the relay ran, or rows from another relay's clock ahead of ours: the
 * history still replays, each row no earlier than the one before and within the ticket's life. */
static void test_times_out_of_order_are_kept_in_order(void **state)
{
    (void)state;
    int64_t t0 = utc(2026, 3, 2, 9, 0), now = t0 + HOUR;
    tl_ticket_change_row_t rows[] = {
        CHANGE(t0 - MINUTE, "severity", "3"),          /* before the creation */
        CHANGE(t0 + 10 * MINUTE, "status", "open"),    /* ... */
        CHANGE(t0 + 5 * MINUTE, "status", "resolved"), /* the clock went back */
        CHANGE(now + HOUR, "status", "reopened"),      /* after now */
    };
    tl_sla_ticket_t ticket;
    tl_sla_event_t *events = NULL;
    events_of(rows, 4, t0, now, &ticket, &events);
    assert_int_equal(events[0].time_ms, t0);
    assert_int_equal(events[1].time_ms, t0 + 10 * MINUTE);
    assert_int_equal(events[2].time_ms, t0 + 10 * MINUTE);
    assert_int_equal(events[3].time_ms, now);
    /* And the engine takes it. */
    tl_sla_config_t *config = config_of(OFFICE);
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    char why[256] = "";
    TL_ASSERT_OK(tl_sla_evaluate(config, &ticket, now, clocks, why, sizeof why));
    tl_sla_config_free(config);
    free(events);
}

static void test_values_that_are_not_a_fields_are_refused_by_row(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value, *why;
    } bad[] = {
        {"status", "pending", "change 1: 'pending' is not a status"},
        {"severity", "5", "change 1: '5' is not a severity"},
        {"severity", "S2", "change 1: 'S2' is not a severity"},
        {"tier", "7", "change 1: '7' is not a tier"},
        {"tier", "", "change 1: '' is not a tier"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tl_ticket_change_row_t rows[] = {CHANGE(1000, "severity", "3"),
                                         CHANGE(2000, bad[i].field, bad[i].value)};
        tl_sla_ticket_t ticket;
        tl_sla_event_t *events = (tl_sla_event_t *)&ticket; /* must come back NULL */
        char why[256] = "";
        TL_ASSERT_RC(TL_EINVAL, tl_clocks_events(rows, 2, 1000, 3, 1, 5000, &ticket, &events, why,
                                                 sizeof why));
        assert_null(events);
        assert_string_equal(why, bad[i].why);
    }
    /* A field no clock follows is no error: a later desk may add some. */
    tl_ticket_change_row_t rows[] = {CHANGE(1000, "vendor_note", "x")};
    tl_sla_ticket_t ticket;
    tl_sla_event_t *events = NULL;
    events_of(rows, 1, 1000, 5000, &ticket, &events);
    assert_int_equal(ticket.event_count, 0);
    assert_int_equal(ticket.severity, 3); /* the ticket's own, with no row to say */
    free(events);
}

/* The queues' order and --breaching, from the clocks. */
static void test_next_due_and_breaching_come_from_the_running_clocks(void **state)
{
    (void)state;
    tl_sla_config_t *config = config_of(OFFICE);
    int64_t monday_9 = utc(2026, 3, 2, 8, 0); /* 09:00 CET */
    tl_ticket_change_row_t rows[] = {CHANGE(monday_9, "tier", "1"),
                                     CHANGE(monday_9, "severity", "2")};
    tl_sla_ticket_t ticket;
    tl_sla_event_t *events = NULL;
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    char why[256];
    /* 30 minutes in: nothing warns; the first response (1h) is due first, at 10:00 CET. */
    events_of(rows, 2, monday_9, monday_9 + 30 * MINUTE, &ticket, &events);
    TL_ASSERT_OK(tl_sla_evaluate(config, &ticket, monday_9 + 30 * MINUTE, clocks, why, sizeof why));
    assert_int_equal(tl_clocks_next_due(clocks), monday_9 + HOUR);
    assert_int_equal(tl_clocks_breaching(clocks), 0);
    assert_string_equal(tl_clocks_state_word(&clocks[TL_SLA_FIRST_RESPONSE]), "running");
    /* 50 minutes in: the first response has used 83% of its hour. */
    TL_ASSERT_OK(tl_sla_evaluate(config, &ticket, monday_9 + 50 * MINUTE, clocks, why, sizeof why));
    assert_int_equal(tl_clocks_breaching(clocks), 1u << TL_SLA_FIRST_RESPONSE);
    assert_string_equal(tl_clocks_state_word(&clocks[TL_SLA_FIRST_RESPONSE]), "warning");
    /* Two hours in: breached, and still the next due (it has not stopped). */
    TL_ASSERT_OK(tl_sla_evaluate(config, &ticket, monday_9 + 2 * HOUR, clocks, why, sizeof why));
    assert_int_equal(tl_clocks_breaching(clocks), 1u << TL_SLA_FIRST_RESPONSE);
    assert_string_equal(tl_clocks_state_word(&clocks[TL_SLA_FIRST_RESPONSE]), "breached");
    assert_int_equal(tl_clocks_next_due(clocks), monday_9 + HOUR);
    free(events);
    /* Answered: the resolution clock (8h) is what is due next, at 17:00 CET. */
    tl_ticket_change_row_t answered[] = {CHANGE(monday_9, "tier", "1"),
                                         CHANGE(monday_9, "severity", "2"),
                                         CHANGE(monday_9 + 20 * MINUTE, "response", "note")};
    events_of(answered, 3, monday_9, monday_9 + 2 * HOUR, &ticket, &events);
    TL_ASSERT_OK(tl_sla_evaluate(config, &ticket, monday_9 + 2 * HOUR, clocks, why, sizeof why));
    assert_int_equal(tl_clocks_breaching(clocks), 0);
    assert_int_equal(tl_clocks_next_due(clocks), monday_9 + 8 * HOUR);
    free(events);
    /* Resolved: nothing is due. */
    tl_ticket_change_row_t resolved[] = {CHANGE(monday_9, "severity", "2"),
                                         CHANGE(monday_9 + HOUR / 2, "status", "resolved")};
    events_of(resolved, 2, monday_9, monday_9 + 2 * HOUR, &ticket, &events);
    TL_ASSERT_OK(tl_sla_evaluate(config, &ticket, monday_9 + 2 * HOUR, clocks, why, sizeof why));
    assert_int_equal(tl_clocks_next_due(clocks), 0);
    free(events);
    tl_sla_config_free(config);
}

static void test_times_are_shown_in_the_calendars_zone(void **state)
{
    (void)state;
    char text[TL_CLOCKS_TIME_SIZE];
    tl_sla_config_t *office = config_of(OFFICE);
    /* Friday 16:30 CET plus 4 business hours: Monday 12:30, shown as Berlin has it. */
    int64_t friday = utc(2025, 1, 10, 15, 30), due = 0;
    TL_ASSERT_OK(tl_calendar_add(tl_sla_config_calendar(office), friday, 4 * HOUR, &due));
    tl_clocks_format_time(office, due, text);
    assert_string_equal(text, "2025-01-13 12:30+01:00");
    tl_clocks_format_time(office, utc(2026, 7, 1, 10, 5), text);
    assert_string_equal(text, "2026-07-01 12:05+02:00");
    assert_string_equal(tl_clocks_zone_name(office), "Europe/Berlin");
    tl_clocks_format_time(office, 0, text);
    assert_string_equal(text, "-");
    tl_sla_config_free(office);
    /* A 24x7 calendar with no zone shows UTC. */
    tl_sla_config_t *plain = NULL;
    char why[256] = "";
    const char *source = NULL;
    TL_ASSERT_OK(tl_desk_config_load("/nonexistent/desk.json", NULL, tl_zone_lookup_files, NULL,
                                     &plain, &source, why, sizeof why));
    tl_clocks_format_time(plain, utc(2026, 7, 1, 10, 5), text);
    assert_string_equal(text, "2026-07-01 10:05Z");
    assert_string_equal(tl_clocks_zone_name(plain), "UTC");
    tl_sla_config_free(plain);
    char duration[TL_CLOCKS_DURATION_SIZE];
    tl_clocks_format_duration(45 * MINUTE + 59999, duration);
    assert_string_equal(duration, "45m");
    tl_clocks_format_duration(4 * HOUR, duration);
    assert_string_equal(duration, "4h");
    tl_clocks_format_duration(26 * HOUR + 5 * MINUTE, duration);
    assert_string_equal(duration, "26h05m");
    tl_clocks_format_duration(-5, duration);
    assert_string_equal(duration, "0m");
}

/* Without DATA/desk.json: 24x7, and an S4 first response within six hours. */
static void test_the_default_desk_is_24x7_with_an_s4_answer_in_six_hours(void **state)
{
    (void)state;
    tl_sla_config_t *config = NULL;
    char why[256] = "";
    const char *source = NULL;
    TL_ASSERT_OK(tl_desk_config_load("/nonexistent/desk.json", NULL, tl_zone_lookup_files, NULL,
                                     &config, &source, why, sizeof why));
    assert_string_equal(source, "default");
    assert_true(tl_calendar_always(tl_sla_config_calendar(config)));
    static const int64_t first[4] = {30 * MINUTE, HOUR, 4 * HOUR, 6 * HOUR};
    static const int64_t resolution[4] = {4 * HOUR, 8 * HOUR, 24 * HOUR, 72 * HOUR};
    for (int severity = 1; severity <= 4; severity++)
        for (int tier = 0; tier <= 4; tier++) {
            assert_int_equal(tl_sla_config_target(config, TL_SLA_FIRST_RESPONSE, severity, tier),
                             first[severity - 1]);
            assert_int_equal(tl_sla_config_target(config, TL_SLA_RESOLUTION, severity, tier),
                             resolution[severity - 1]);
        }
    assert_int_equal(tl_sla_config_target(config, TL_SLA_VENDOR, 4, 1), 0);
    tl_sla_config_free(config);
}

/* A desk.json that does not parse is refused whole, with the parser's message. */
static void test_a_bad_desk_file_is_refused_with_the_parsers_message(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"{\"sla\": {\"calendar\": {\"zone\": \"Mars/Olympus_Mons\", \"24x7\": true}, "
         "\"targets\": {\"S1\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}, "
         "\"S2\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}, "
         "\"S3\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}, "
         "\"S4\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}}}}",
         "sla.calendar.zone: unknown time zone 'Mars/Olympus_Mons'"},
        {"{\"sla\": {\"calendar\": {\"24x7\": true},\n \"targets\": }}", "desk.json:2:"},
        {"{\"desk\": 1}", "desk.json: no \"sla\" section"},
    };
    char path[] = "/tmp/tl-desk-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *file = fopen(path, "w");
        assert_non_null(file);
        fputs(bad[i].text, file);
        fclose(file);
        tl_sla_config_t *config = (tl_sla_config_t *)path; /* must come back NULL */
        char why[512] = "", expected[512];
        const char *source = NULL;
        TL_ASSERT_RC(TL_EINVAL, tl_desk_config_load(path, NULL, tl_zone_lookup_files, NULL, &config,
                                                    &source, why, sizeof why));
        assert_null(config);
        /* The message names the file first. */
        snprintf(expected, sizeof expected, "%s: %s", path, bad[i].why);
        if (strncmp(why, expected, strlen(expected)) != 0)
            fail_msg("'%s': says '%s', expected '%s'", bad[i].text, why, bad[i].why);
    }
    /* And a good one is read from the file. */
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(OFFICE, file);
    fclose(file);
    tl_sla_config_t *config = NULL;
    char why[256] = "";
    const char *source = NULL;
    TL_ASSERT_OK(tl_desk_config_load(path, NULL, tl_zone_lookup_files, NULL, &config, &source, why,
                                     sizeof why));
    assert_string_equal(source, "desk.json");
    assert_string_equal(tl_clocks_zone_name(config), "Europe/Berlin");
    tl_sla_config_free(config);
    unlink(path);
}

/* Help texts and errors list the statuses of the one list, every one, in its order. */
static void test_status_words_are_the_one_list(void **state)
{
    (void)state;
    char listed[256] = "", choice[256] = "";
    for (int i = 0; i < TL_SLA_STATUSES; i++) {
        const char *name = tl_sla_status_name((tl_sla_status_t)i);
        size_t used = strlen(listed);
        snprintf(listed + used, sizeof listed - used, "%s%s", i > 0 ? ", " : "", name);
        used = strlen(choice);
        snprintf(choice + used, sizeof choice - used, "%s%s",
                 i == 0                     ? ""
                 : i == TL_SLA_STATUSES - 1 ? " or "
                                            : ", ",
                 name);
        assert_true(tl_ticket_status_valid(name));
    }
    assert_string_equal(TL_TICKET_STATUS_LIST, listed);
    assert_string_equal(TL_TICKET_STATUS_CHOICE, choice);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_changes_become_the_events_the_clocks_replay),
    cmocka_unit_test(test_times_out_of_order_are_kept_in_order),
    cmocka_unit_test(test_values_that_are_not_a_fields_are_refused_by_row),
    cmocka_unit_test(test_next_due_and_breaching_come_from_the_running_clocks),
    cmocka_unit_test(test_times_are_shown_in_the_calendars_zone),
    cmocka_unit_test(test_the_default_desk_is_24x7_with_an_s4_answer_in_six_hours),
    cmocka_unit_test(test_a_bad_desk_file_is_refused_with_the_parsers_message),
    cmocka_unit_test(test_status_words_are_the_one_list),
};

int main(int argc, char **argv)
{
    return tl_test_run("clocks", tests, sizeof tests / sizeof tests[0], argc, argv);
}
