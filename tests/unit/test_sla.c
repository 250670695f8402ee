/*
 * SLA clocks (relay/desk/sla.h) on a fixed clock: every "now" is an argument. The desk's office
 * works Monday to Friday 09:00-17:00 in Berlin (UTC+1 in winter, UTC+2 from 29 March 2026), so
 * the cases write instants in UTC with the local time beside them. Also: configurations that
 * do not parse, each with the message that names the problem, and the list of what counts as a
 * first response, which docs/desk.md must give as the code does.
 */
#include "tl_test.h"

#include "relay/desk/sla.h"

#include <stdlib.h>
#include <time.h>

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

static void print_instant(const char *label, int64_t ms)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    char text[40];
    gmtime_r(&seconds, &tm);
    strftime(text, sizeof text, "%a %Y-%m-%d %H:%M:%SZ", &tm);
    print_message("%s %s (%lld ms)\n", label, text, (long long)ms);
}

#define ASSERT_INSTANT(expected, actual)                                                           \
    do {                                                                                           \
        int64_t tl_expected_ = (expected), tl_actual_ = (actual);                                  \
        if (tl_expected_ != tl_actual_) {                                                          \
            print_instant("expected", tl_expected_);                                               \
            print_instant("actual  ", tl_actual_);                                                 \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

#define ASSERT_STATE(expected, clock)                                                              \
    do {                                                                                           \
        if ((expected) != (clock).state)                                                           \
            fail_msg("state %s, expected %s", tl_sla_state_name((clock).state),                    \
                     tl_sla_state_name(expected));                                                 \
    } while (0)

#define OFFICE_CALENDAR                                                                            \
    "{\"zone\": \"Europe/Berlin\", \"hours\": {\"mon\": \"09:00-17:00\", "                         \
    "\"tue\": \"09:00-17:00\", \"wed\": \"09:00-17:00\", \"thu\": \"09:00-17:00\", "               \
    "\"fri\": \"09:00-17:00\"}}"

#define TARGETS                                                                                    \
    "\"targets\": {"                                                                               \
    "\"S1\": {\"first_response\": \"30m\", \"resolution\": \"4h\"}, "                              \
    "\"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\", "                                \
    "\"tier3\": {\"resolution\": \"16h\"}}, "                                                      \
    "\"S3\": {\"first_response\": \"4h\", \"resolution\": \"16h\"}, "                              \
    "\"S4\": {\"first_response\": \"8h\", \"resolution\": \"40h\"}}"

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

static tl_sla_config_t *office(void)
{
    return config_of("{\"sla\": {\"calendar\": " OFFICE_CALENDAR ", " TARGETS
                     ", \"vendor\": \"24h\"}}");
}

static void evaluate(const tl_sla_config_t *config, const tl_sla_ticket_t *ticket, int64_t now,
                     tl_sla_clock_t clocks[TL_SLA_CLOCKS])
{
    char why[256] = "";
    int rc = tl_sla_evaluate(config, ticket, now, clocks, why, sizeof why);
    if (rc != 0)
        fail_msg("evaluate: %s (%s)", why, tl_strerror(rc));
}

static tl_sla_event_t status(int64_t time, tl_sla_status_t new_status)
{
    return (tl_sla_event_t){.time_ms = time, .kind = TL_SLA_EVENT_STATUS, .status = new_status};
}

static tl_sla_event_t severity(int64_t time, int new_severity)
{
    return (tl_sla_event_t){
        .time_ms = time, .kind = TL_SLA_EVENT_SEVERITY, .severity = new_severity};
}

static tl_sla_event_t tier(int64_t time, int new_tier)
{
    return (tl_sla_event_t){.time_ms = time, .kind = TL_SLA_EVENT_TIER, .tier = new_tier};
}

static tl_sla_event_t activity(int64_t time, int is_response)
{
    return (tl_sla_event_t){
        .time_ms = time, .kind = TL_SLA_EVENT_ACTIVITY, .is_response = is_response};
}

#define TICKET(created, sev, tier_, events_)                                                       \
    ((tl_sla_ticket_t){created, sev, tier_, events_, sizeof(events_) / sizeof((events_)[0])})

/* The issue's first case: opened Friday 16:30, 4 business hours, due Monday 12:30. */
static void test_friday_ticket_is_due_monday_at_half_past_twelve(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t friday = utc(2026, 3, 13, 15, 30); /* Fri 16:30 CET */
    tl_sla_ticket_t ticket = {.created_ms = friday, .severity = 3, .tier = 1};
    evaluate(config, &ticket, utc(2026, 3, 14, 12, 0), clocks); /* Saturday */
    tl_sla_clock_t *first = &clocks[TL_SLA_FIRST_RESPONSE];
    assert_int_equal(4 * HOUR, first->target_ms);
    ASSERT_INSTANT(utc(2026, 3, 16, 11, 30), first->due_ms); /* Mon 12:30 CET */
    ASSERT_STATE(TL_SLA_RUNNING, *first);
    assert_int_equal(30 * MINUTE, first->elapsed_ms);
    assert_false(first->warning);
    ASSERT_INSTANT(friday, first->started_ms);
    /* Monday 11:31: three hours used, the warning is on; 12:30 is due, 12:31 breached. */
    evaluate(config, &ticket, utc(2026, 3, 16, 10, 31), clocks);
    assert_true(clocks[TL_SLA_FIRST_RESPONSE].warning);
    ASSERT_INSTANT(utc(2026, 3, 16, 10, 30), clocks[TL_SLA_FIRST_RESPONSE].warn_ms);
    evaluate(config, &ticket, utc(2026, 3, 16, 11, 30), clocks);
    ASSERT_STATE(TL_SLA_RUNNING, clocks[TL_SLA_FIRST_RESPONSE]);
    evaluate(config, &ticket, utc(2026, 3, 16, 11, 31), clocks);
    ASSERT_STATE(TL_SLA_BREACHED, clocks[TL_SLA_FIRST_RESPONSE]);
    assert_true(clocks[TL_SLA_FIRST_RESPONSE].warning);
    ASSERT_INSTANT(utc(2026, 3, 16, 11, 30), clocks[TL_SLA_FIRST_RESPONSE].due_ms);
    /* A note at 12:00 on Monday met it; the clock has stopped and says when. */
    tl_sla_event_t note[] = {activity(utc(2026, 3, 16, 11, 0), 1)};
    ticket = TICKET(friday, 3, 1, note);
    evaluate(config, &ticket, utc(2026, 3, 17, 12, 0), clocks);
    ASSERT_STATE(TL_SLA_MET, clocks[TL_SLA_FIRST_RESPONSE]);
    assert_true(clocks[TL_SLA_FIRST_RESPONSE].stopped);
    assert_false(clocks[TL_SLA_FIRST_RESPONSE].warning);
    ASSERT_INSTANT(utc(2026, 3, 16, 11, 0), clocks[TL_SLA_FIRST_RESPONSE].stopped_ms);
    assert_int_equal(3 * HOUR + 30 * MINUTE, clocks[TL_SLA_FIRST_RESPONSE].elapsed_ms);
    ASSERT_INSTANT(utc(2026, 3, 16, 11, 30), clocks[TL_SLA_FIRST_RESPONSE].due_ms);
    tl_sla_config_free(config);
}

/* The issue's second case: a 2-hour wait on the user is kept when the severity changes. */
static void test_two_hour_pause_survives_a_severity_change(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t monday = utc(2026, 3, 9, 8, 0); /* Mon 09:00 CET */
    tl_sla_event_t events[] = {
        status(utc(2026, 3, 9, 8, 10), TL_SLA_STATUS_OPEN),
        activity(utc(2026, 3, 9, 8, 20), 1),                       /* a note: first response */
        status(utc(2026, 3, 9, 9, 0), TL_SLA_STATUS_WAITING_USER), /* 10:00 */
        status(utc(2026, 3, 9, 11, 0), TL_SLA_STATUS_OPEN),        /* 12:00 */
        severity(utc(2026, 3, 9, 12, 0), 2),                       /* 13:00: S3 -> S2 */
    };
    tl_sla_ticket_t ticket = TICKET(monday, 3, 1, events);
    evaluate(config, &ticket, utc(2026, 3, 9, 13, 0), clocks); /* 14:00 */
    tl_sla_clock_t *resolution = &clocks[TL_SLA_RESOLUTION];
    assert_int_equal(8 * HOUR, resolution->target_ms); /* S2's */
    assert_int_equal(2 * HOUR, resolution->paused_ms[TL_SLA_PAUSE_WAITING_USER]);
    assert_int_equal(3 * HOUR, resolution->elapsed_ms);
    /* From the creation: 8 hours of target plus the 2 paused: Tuesday 11:00 CET. */
    ASSERT_INSTANT(utc(2026, 3, 10, 10, 0), resolution->due_ms);
    ASSERT_INSTANT(monday, resolution->started_ms);
    ASSERT_STATE(TL_SLA_RUNNING, *resolution);
    assert_int_equal(-1, resolution->paused_by);
    /* And while it waits again, the earlier pause is still there. */
    tl_sla_event_t more[] = {
        events[0],
        events[1],
        events[2],
        events[3],
        events[4],
        status(utc(2026, 3, 9, 14, 0), TL_SLA_STATUS_WAITING_USER), /* 15:00 */
        severity(utc(2026, 3, 9, 14, 30), 1),
    };
    ticket = TICKET(monday, 3, 1, more);
    evaluate(config, &ticket, utc(2026, 3, 9, 15, 0), clocks); /* 16:00 */
    assert_int_equal(TL_SLA_PAUSE_WAITING_USER, resolution->paused_by);
    assert_int_equal(3 * HOUR, resolution->paused_ms[TL_SLA_PAUSE_WAITING_USER]);
    assert_int_equal(4 * HOUR, resolution->elapsed_ms);
    /* Raised to S1 while it waits: S1's 4 hours were used up at 15:00, so it is breached. */
    assert_int_equal(4 * HOUR, resolution->target_ms);
    ASSERT_INSTANT(utc(2026, 3, 9, 14, 0), resolution->due_ms);
    ASSERT_STATE(TL_SLA_BREACHED, *resolution);
    assert_false(resolution->stopped);
    /* A wait that starts at the very instant asked about is in force. */
    tl_sla_event_t just_now[] = {status(utc(2026, 3, 9, 15, 0), TL_SLA_STATUS_WAITING_VENDOR)};
    ticket = TICKET(monday, 3, 1, just_now);
    evaluate(config, &ticket, utc(2026, 3, 9, 15, 0), clocks);
    ASSERT_STATE(TL_SLA_PAUSED, *resolution);
    assert_int_equal(TL_SLA_PAUSE_WAITING_VENDOR, resolution->paused_by);
    assert_int_equal(TL_SLA_PAUSE_WAITING_VENDOR, clocks[TL_SLA_FIRST_RESPONSE].paused_by);
    ASSERT_STATE(TL_SLA_RUNNING, clocks[TL_SLA_VENDOR]);
    ASSERT_INSTANT(utc(2026, 3, 9, 15, 0), clocks[TL_SLA_VENDOR].started_ms);
    assert_int_equal(0, clocks[TL_SLA_VENDOR].elapsed_ms);
    tl_sla_config_free(config);
}

/* Escalation and reassignment keep the creation as the start and every pause. */
static void test_escalation_keeps_the_start_and_the_pauses(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t monday = utc(2026, 3, 9, 8, 0); /* Mon 09:00 CET */
    tl_sla_event_t events[] = {
        status(utc(2026, 3, 9, 9, 0), TL_SLA_STATUS_WAITING_USER), /* 10:00 */
        status(utc(2026, 3, 9, 11, 0), TL_SLA_STATUS_OPEN),        /* 12:00 */
        {.time_ms = utc(2026, 3, 9, 13, 0), .kind = TL_SLA_EVENT_ASSIGNEE},
        tier(utc(2026, 3, 9, 13, 0), 3),
        {.time_ms = utc(2026, 3, 9, 13, 5), .kind = TL_SLA_EVENT_ASSIGNEE},
    };
    tl_sla_ticket_t ticket = TICKET(monday, 2, 1, events);
    evaluate(config, &ticket, utc(2026, 3, 9, 14, 0), clocks); /* 15:00 */
    tl_sla_clock_t *resolution = &clocks[TL_SLA_RESOLUTION];
    assert_int_equal(16 * HOUR, resolution->target_ms); /* S2 in tier 3 */
    ASSERT_INSTANT(monday, resolution->started_ms);
    assert_int_equal(4 * HOUR, resolution->elapsed_ms);
    assert_int_equal(2 * HOUR, resolution->paused_ms[TL_SLA_PAUSE_WAITING_USER]);
    /* 16 + 2 hours from Monday 09:00: Monday 8, Tuesday 8, Wednesday 11:00 CET. */
    ASSERT_INSTANT(utc(2026, 3, 11, 10, 0), resolution->due_ms);
    /* The first response clock was paused too, and is past its hour: breached. */
    ASSERT_STATE(TL_SLA_BREACHED, clocks[TL_SLA_FIRST_RESPONSE]);
    ASSERT_INSTANT(utc(2026, 3, 9, 9, 0), clocks[TL_SLA_FIRST_RESPONSE].due_ms);
    tl_sla_config_free(config);
}

/* The issue's third case, on business hours: the clocks go forward over the weekend. */
static void test_due_time_across_the_change_to_summer_time(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t friday = utc(2026, 3, 27, 15, 0); /* Fri 16:00 CET */
    tl_sla_ticket_t ticket = {.created_ms = friday, .severity = 1, .tier = 1};
    evaluate(config, &ticket, friday, clocks);
    /* 1 hour on Friday, 3 on Monday from 09:00 CEST (07:00Z): 12:00 CEST, 10:00Z. */
    ASSERT_INSTANT(utc(2026, 3, 30, 10, 0), clocks[TL_SLA_RESOLUTION].due_ms);
    /* And back in October: Friday 16:00 CEST + 4h is Monday 12:00 CET, 11:00Z. */
    ticket.created_ms = utc(2026, 10, 23, 14, 0);
    evaluate(config, &ticket, ticket.created_ms, clocks);
    ASSERT_INSTANT(utc(2026, 10, 26, 11, 0), clocks[TL_SLA_RESOLUTION].due_ms);
    tl_sla_config_free(config);
}

/* The third case on a 24x7 desk: 4 real hours over the night the clocks go forward. */
static void test_24x7_due_time_across_the_change_to_summer_time(void **state)
{
    (void)state;
    tl_sla_config_t *config = config_of(
        "{\"sla\": {\"calendar\": {\"24x7\": true, \"zone\": \"Europe/Berlin\"}, " TARGETS "}}");
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t created = utc(2026, 3, 28, 23, 30); /* Sun 00:30 CET */
    tl_sla_ticket_t ticket = {.created_ms = created, .severity = 1, .tier = 1};
    evaluate(config, &ticket, created + HOUR, clocks);
    int64_t due = clocks[TL_SLA_RESOLUTION].due_ms;
    ASSERT_INSTANT(created + 4 * HOUR, due);
    /* On the wall that is 05:30 CEST, five wall-clock hours after 00:30. */
    const tl_zone_t *berlin = tl_calendar_zone(tl_sla_config_calendar(config));
    assert_int_equal(5 * HOUR + 30 * MINUTE, (due + tl_zone_offset(berlin, due)) % (24 * HOUR));
    assert_int_equal(HOUR, clocks[TL_SLA_RESOLUTION].elapsed_ms);
    tl_sla_config_free(config);
}

static void test_a_take_is_not_a_first_response(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t monday = utc(2026, 3, 9, 8, 0);
    tl_sla_event_t events[] = {
        {.time_ms = monday + 5 * MINUTE, .kind = TL_SLA_EVENT_ASSIGNEE},
        activity(monday + 5 * MINUTE, tl_sla_counts_as_response("ticket.taken", "tier1")),
        activity(monday + 10 * MINUTE, tl_sla_counts_as_response("note", "tier4")),
        status(monday + 15 * MINUTE, TL_SLA_STATUS_OPEN),
    };
    tl_sla_ticket_t ticket = TICKET(monday, 3, 1, events);
    evaluate(config, &ticket, monday + HOUR, clocks);
    ASSERT_STATE(TL_SLA_RUNNING, clocks[TL_SLA_FIRST_RESPONSE]);
    assert_int_equal(HOUR, clocks[TL_SLA_FIRST_RESPONSE].elapsed_ms);
    assert_false(tl_sla_counts_as_response("consent.requested", "tier2"));
    assert_false(tl_sla_counts_as_response("note", NULL));
    assert_false(tl_sla_counts_as_response("note", "auditor"));
    assert_true(tl_sla_counts_as_response("note", "tier1"));
    assert_true(tl_sla_counts_as_response("session.started", "tier2"));
    assert_true(tl_sla_counts_as_response("fix.finished", "tier3"));
    assert_true(tl_sla_counts_as_response("ticket.resolved", "admin"));
    tl_sla_config_free(config);
}

static void test_resolved_then_reopened_continues_where_it_stopped(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t monday = utc(2026, 3, 9, 8, 0); /* Mon 09:00 CET */
    tl_sla_event_t events[] = {
        status(utc(2026, 3, 9, 10, 0), TL_SLA_STATUS_RESOLVED),  /* Mon 11:00 */
        status(utc(2026, 3, 10, 10, 0), TL_SLA_STATUS_REOPENED), /* Tue 11:00 */
    };
    tl_sla_ticket_t resolved = {monday, 3, 1, events, 1};
    evaluate(config, &resolved, utc(2026, 3, 10, 9, 0), clocks);
    ASSERT_STATE(TL_SLA_MET, clocks[TL_SLA_RESOLUTION]);
    assert_true(clocks[TL_SLA_RESOLUTION].stopped);
    assert_int_equal(2 * HOUR, clocks[TL_SLA_RESOLUTION].elapsed_ms);
    ASSERT_INSTANT(utc(2026, 3, 9, 10, 0), clocks[TL_SLA_RESOLUTION].stopped_ms);
    /* Resolving answered the user: the first response clock stopped there. */
    ASSERT_STATE(TL_SLA_MET, clocks[TL_SLA_FIRST_RESPONSE]);
    tl_sla_ticket_t reopened = TICKET(monday, 3, 1, events);
    evaluate(config, &reopened, utc(2026, 3, 10, 12, 0), clocks); /* Tue 13:00 */
    tl_sla_clock_t *resolution = &clocks[TL_SLA_RESOLUTION];
    ASSERT_STATE(TL_SLA_RUNNING, *resolution);
    assert_false(resolution->stopped);
    assert_int_equal(0, resolution->stopped_ms);
    assert_int_equal(4 * HOUR, resolution->elapsed_ms); /* 2 before, 2 since */
    /* Resolved from Monday 11:00 to Tuesday 11:00: 6 + 2 business hours. */
    assert_int_equal(8 * HOUR, resolution->paused_ms[TL_SLA_PAUSE_RESOLVED]);
    /* 16 + 8 hours from Monday 09:00: Wednesday 17:00 CET. */
    ASSERT_INSTANT(utc(2026, 3, 11, 16, 0), resolution->due_ms);
    ASSERT_STATE(TL_SLA_MET, clocks[TL_SLA_FIRST_RESPONSE]);
    ASSERT_INSTANT(utc(2026, 3, 9, 10, 0), clocks[TL_SLA_FIRST_RESPONSE].stopped_ms);
    tl_sla_config_free(config);
}

static void test_the_vendor_clock_counts_only_the_wait_on_the_vendor(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t monday = utc(2026, 3, 9, 8, 0); /* Mon 09:00 CET */
    tl_sla_ticket_t fresh = {.created_ms = monday, .severity = 2, .tier = 3};
    evaluate(config, &fresh, monday + HOUR, clocks);
    ASSERT_STATE(TL_SLA_IDLE, clocks[TL_SLA_VENDOR]);
    assert_int_equal(0, clocks[TL_SLA_VENDOR].started_ms);
    assert_int_equal(0, clocks[TL_SLA_VENDOR].due_ms);
    tl_sla_event_t events[] = {
        activity(utc(2026, 3, 9, 8, 30), 1), tier(utc(2026, 3, 9, 9, 0), 4),
        status(utc(2026, 3, 9, 9, 0), TL_SLA_STATUS_WAITING_VENDOR), /* Mon 10:00 */
        status(utc(2026, 3, 10, 9, 0), TL_SLA_STATUS_OPEN),          /* Tue 10:00 */
    };
    tl_sla_ticket_t ticket = TICKET(monday, 2, 3, events);
    evaluate(config, &ticket, utc(2026, 3, 10, 11, 0), clocks); /* Tue 12:00 */
    tl_sla_clock_t *vendor = &clocks[TL_SLA_VENDOR];
    ASSERT_STATE(TL_SLA_PAUSED, *vendor);
    assert_int_equal(24 * HOUR, vendor->target_ms);
    assert_int_equal(8 * HOUR, vendor->elapsed_ms); /* Mon 10-17, Tue 09-10 */
    ASSERT_INSTANT(utc(2026, 3, 9, 9, 0), vendor->started_ms);
    /* The desk's clock did not count that wait. */
    assert_int_equal(8 * HOUR, clocks[TL_SLA_RESOLUTION].paused_ms[TL_SLA_PAUSE_WAITING_VENDOR]);
    assert_int_equal(3 * HOUR, clocks[TL_SLA_RESOLUTION].elapsed_ms);
    /* Without a vendor target, the clock still counts but has no due time. */
    tl_sla_config_t *plain =
        config_of("{\"sla\": {\"calendar\": " OFFICE_CALENDAR ", " TARGETS "}}");
    evaluate(plain, &ticket, utc(2026, 3, 10, 11, 0), clocks);
    assert_int_equal(8 * HOUR, vendor->elapsed_ms);
    assert_int_equal(0, vendor->target_ms);
    assert_int_equal(0, vendor->due_ms);
    ASSERT_STATE(TL_SLA_PAUSED, *vendor);
    tl_sla_config_free(plain);
    tl_sla_config_free(config);
}

static void test_a_met_clock_keeps_the_target_it_stopped_under(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    tl_sla_clock_t clocks[TL_SLA_CLOCKS];
    int64_t monday = utc(2026, 3, 9, 8, 0);
    tl_sla_event_t events[] = {
        activity(monday + 2 * HOUR, 1), /* S3: 4 hours to answer */
        severity(monday + 3 * HOUR, 1), /* S1 afterwards: 30 minutes */
    };
    tl_sla_ticket_t ticket = TICKET(monday, 3, 1, events);
    evaluate(config, &ticket, monday + 4 * HOUR, clocks);
    ASSERT_STATE(TL_SLA_MET, clocks[TL_SLA_FIRST_RESPONSE]);
    assert_int_equal(4 * HOUR, clocks[TL_SLA_FIRST_RESPONSE].target_ms);
    assert_int_equal(4 * HOUR, clocks[TL_SLA_RESOLUTION].target_ms); /* S1, running */
    ASSERT_STATE(TL_SLA_RUNNING, clocks[TL_SLA_RESOLUTION]);
    assert_true(clocks[TL_SLA_RESOLUTION].warning);
    tl_sla_config_free(config);
}

static void test_histories_that_do_not_hold_together_are_refused(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    int64_t monday = utc(2026, 3, 9, 8, 0);
    tl_sla_event_t backwards[] = {status(monday + HOUR, TL_SLA_STATUS_OPEN),
                                  status(monday + 30 * MINUTE, TL_SLA_STATUS_WAITING_USER)};
    tl_sla_event_t early[] = {status(monday - 1, TL_SLA_STATUS_OPEN)};
    tl_sla_event_t late[] = {status(monday + 2 * HOUR, TL_SLA_STATUS_OPEN)};
    tl_sla_event_t bad_severity[] = {severity(monday, 5)};
    tl_sla_event_t bad_tier[] = {tier(monday, -1)};
    tl_sla_event_t bad_status[] = {status(monday, (tl_sla_status_t)42)};
    struct {
        tl_sla_ticket_t ticket;
        const char *message;
    } cases[] = {
        {TICKET(monday, 3, 1, backwards), "event 1: its time"},
        {TICKET(monday, 3, 1, early), "event 0: its time"},
        {TICKET(monday, 3, 1, late), "event 0: its time"},
        {TICKET(monday, 3, 1, bad_severity), "event 0: its severity is out of range"},
        {TICKET(monday, 3, 1, bad_tier), "event 0: its tier is out of range"},
        {TICKET(monday, 3, 1, bad_status), "event 0: its status is out of range"},
        {{monday, 0, 1, NULL, 0}, "the ticket's severity"},
        {{monday, 1, 5, NULL, 0}, "the ticket's severity, tier"},
        {{monday + 2 * HOUR, 1, 1, NULL, 0}, "the ticket's severity, tier, creation"},
        {{monday, 1, 1, NULL, 3}, "3 events and no array of them"},
        {{monday, 1, 1, backwards, TL_SLA_EVENTS_MAX + 1}, "more than 100000 events"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_sla_clock_t clocks[TL_SLA_CLOCKS], untouched[TL_SLA_CLOCKS];
        memset(clocks, 0x5a, sizeof clocks);
        memcpy(untouched, clocks, sizeof clocks);
        char why[256] = "";
        int rc = tl_sla_evaluate(config, &cases[i].ticket, monday + HOUR, clocks, why, sizeof why);
        if (rc != TL_EINVAL || strncmp(why, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: rc %d, message '%s', expected '%s...'", i, rc, why,
                     cases[i].message);
        assert_memory_equal(untouched, clocks, sizeof clocks);
    }
    tl_sla_config_free(config);
}

static void test_targets_per_severity_and_tier(void **state)
{
    (void)state;
    tl_sla_config_t *config = office();
    assert_int_equal(30 * MINUTE, tl_sla_config_target(config, TL_SLA_FIRST_RESPONSE, 1, 1));
    assert_int_equal(8 * HOUR, tl_sla_config_target(config, TL_SLA_RESOLUTION, 2, 2));
    assert_int_equal(16 * HOUR, tl_sla_config_target(config, TL_SLA_RESOLUTION, 2, 3));
    assert_int_equal(1 * HOUR, tl_sla_config_target(config, TL_SLA_FIRST_RESPONSE, 2, 3));
    /* Tier 0 (self-help) has tier 1's targets. */
    assert_int_equal(40 * HOUR, tl_sla_config_target(config, TL_SLA_RESOLUTION, 4, 0));
    assert_int_equal(24 * HOUR, tl_sla_config_target(config, TL_SLA_VENDOR, 4, 2));
    assert_int_equal(0, tl_sla_config_target(config, TL_SLA_RESOLUTION, 5, 1));
    assert_int_equal(0, tl_sla_config_target(config, TL_SLA_RESOLUTION, 1, 5));
    tl_sla_config_free(config);
}

static void test_status_and_state_names(void **state)
{
    (void)state;
    for (int i = 0; i < TL_SLA_STATUSES; i++) {
        tl_sla_status_t back = TL_SLA_STATUSES;
        TL_ASSERT_OK(tl_sla_status_from_name(tl_sla_status_name((tl_sla_status_t)i), &back));
        assert_int_equal(i, back);
    }
    tl_sla_status_t status_value = TL_SLA_STATUS_OPEN;
    TL_ASSERT_OK(tl_sla_status_from_name("waiting-vendor", &status_value));
    assert_int_equal(TL_SLA_STATUS_WAITING_VENDOR, status_value);
    TL_ASSERT_RC(TL_EINVAL, tl_sla_status_from_name("waiting", &status_value));
    TL_ASSERT_RC(TL_EINVAL, tl_sla_status_from_name(NULL, &status_value));
    assert_string_equal("breached", tl_sla_state_name(TL_SLA_BREACHED));
    assert_string_equal("first_response", tl_sla_clock_name(TL_SLA_FIRST_RESPONSE));
}

/* ---- configurations that do not parse ---- */

#define CAL "\"calendar\": " OFFICE_CALENDAR

static const struct {
    const char *json;
    const char *message;
} bad_configs[] = {
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30m\", \"resolution\": "
     "\"4h\"}, \"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\"}, \"S3\": "
     "{\"first_response\": \"4h\", \"resolution\": \"16h\"}, \"S4\": {\"first_response\": "
     "\"8h\", \"resolution\": \"40h\"}, \"S5\": {\"first_response\": \"8h\", \"resolution\": "
     "\"40h\"}}}}",
     "sla.targets: unknown severity 'S5' (S1, S2, S3, S4)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30m\", \"resolution\": "
     "\"4h\"}, \"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\"}, \"S4\": "
     "{\"first_response\": \"8h\", \"resolution\": \"40h\"}}}}",
     "sla.targets: no targets for S3"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"-30m\", \"resolution\": "
     "\"4h\"}}}}",
     "sla.targets.S1.first_response: '-30m' is negative: a target is more than zero"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"0m\", \"resolution\": "
     "\"4h\"}}}}",
     "sla.targets.S1.first_response: '0m' is zero: a target is more than zero"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"\", \"resolution\": "
     "\"4h\"}}}}",
     "sla.targets.S1.first_response: '' is empty"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30m\", \"resolution\": "
     "\"2d\"}}}}",
     "sla.targets.S1.resolution: '2d': a business day's length depends on the calendar, give "
     "hours"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30 minutes\", "
     "\"resolution\": \"4h\"}}}}",
     "sla.targets.S1.first_response: '30 minutes' is not a duration like \"30m\", \"4h\" or "
     "\"1h30m\""},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30m1h\", "
     "\"resolution\": \"4h\"}}}}",
     "sla.targets.S1.first_response: '30m1h' is not a duration"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": 30, \"resolution\": "
     "\"4h\"}}}}",
     "sla.targets.S1.first_response: not a duration like"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30m\", \"resolution\": "
     "\"9000h\"}}}}",
     "sla.targets.S1.resolution: '9000h' is longer than a year (8760h)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"30m\"}}}}",
     "sla.targets.S1: no resolution target"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"8h\", \"resolution\": "
     "\"4h\"}}}}",
     "sla.targets.S1: in tier 1 the first response (8h) is due after the resolution (4h)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"1h\", \"resolution\": "
     "\"4h\", \"tier2\": {\"resolution\": \"30m\"}}}}}",
     "sla.targets.S1: in tier 2 the first response (1h) is due after the resolution (30m)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"1h\", \"resolution\": "
     "\"4h\", \"tier5\": {\"resolution\": \"8h\"}}}}}",
     "sla.targets.S1: unknown member 'tier5' (first_response, resolution, tier1..tier4)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"1h\", \"resolution\": "
     "\"4h\", \"tier2\": {}}}}}",
     "sla.targets.S1.tier2: empty (give first_response or resolution)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"1h\", \"resolution\": "
     "\"4h\", \"tier2\": {\"tier3\": {}}}}}}",
     "sla.targets.S1.tier2: unknown member 'tier3' (first_response, resolution)"},
    {"{\"sla\": {" CAL ", \"targets\": {\"S1\": {\"first_response\": \"1h\", \"response\": "
     "\"4h\"}}}}",
     "sla.targets.S1: unknown member 'response'"},
    {"{\"sla\": {" CAL ", \"targets\": [\"S1\"]}}", "sla.targets: not an object"},
    {"{\"sla\": {" CAL "}}", "sla.targets: missing"},
    {"{\"sla\": {\"calendar\": {\"zone\": \"Mars/Olympus_Mons\", \"hours\": {\"mon\": "
     "\"09:00-17:00\"}}, " TARGETS "}}",
     "sla.calendar.zone: unknown time zone 'Mars/Olympus_Mons'"},
    {"{\"sla\": {\"calendar\": {\"zone\": \"UTC\", \"hours\": {\"mon\": \"25:00-26:00\"}}, " TARGETS
     "}}",
     "sla.calendar.hours.mon: '25:00-26:00' holds an impossible time"},
    {"{\"sla\": {\"calendar\": {\"zone\": \"UTC\", \"hours\": {\"mon\": \"17:00-09:00\"}}, " TARGETS
     "}}",
     "sla.calendar.hours.mon: '17:00-09:00' ends before it starts"},
    {"{\"sla\": {\"calendar\": {\"zone\": \"UTC\", \"hours\": {\"lundi\": "
     "\"09:00-17:00\"}}, " TARGETS "}}",
     "sla.calendar.hours: unknown day 'lundi'"},
    {"{\"sla\": {\"calendar\": {\"zone\": \"UTC\", \"hours\": {\"mon\": \"09:00-17:00\"}, "
     "\"holidays\": [\"2026-12-25\", \"2026-12-25\"]}, " TARGETS "}}",
     "sla.calendar.holidays[1]: 2026-12-25 is given twice (also holidays[0])"},
    {"{\"sla\": {\"calendar\": {\"zone\": \"UTC\", \"hours\": {\"sun\": \"09:00-09:01\"}}, " TARGETS
     "}}",
     "sla.targets.S2: the tier 3 resolution target 16h is more than 520 weeks of the calendar's "
     "working hours"},
    {"{\"sla\": {" TARGETS "}}", "sla.calendar: missing"},
    {"{\"sla\": {" CAL ", " TARGETS ", \"vendor\": \"0h\"}}",
     "sla.vendor: '0h' is zero: a target is more than zero"},
    {"{\"sla\": {" CAL ", " TARGETS ", \"escalation\": \"1h\"}}",
     "sla: unknown member 'escalation' (calendar, targets, vendor)"},
    {"{\"sla\": []}", "sla: not an object"},
    {"{\"queues\": {}}", "desk.json: no \"sla\" section"},
    {"[1]", "desk.json: not a JSON object"},
    {"{\"sla\": {" CAL ",\n \"targets\": {\"S1\": }}}", "desk.json:2:"},
    {"{\"sla\": {" CAL ", " TARGETS ", \"vendor\": \"1h\", \"vendor\": \"2h\"}}", "desk.json:1:"},
    /* The parser's reason quotes the bad byte: shown escaped, not raw. */
    {"{\"sla\": {\n\"calendar\": {\x13}}}", "desk.json:2:14: string or '}' expected near '\\x13'"},
};

static void test_bad_configurations_name_the_problem(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        char why[512] = "";
        tl_sla_config_t *config = (tl_sla_config_t *)&why; /* must come back NULL */
        const char *text = bad_configs[i].json;
        int rc = tl_sla_config_parse_text(text, strlen(text), tl_zone_lookup_files, NULL, &config,
                                          why, sizeof why);
        if (rc != TL_EINVAL || config != NULL ||
            strncmp(why, bad_configs[i].message, strlen(bad_configs[i].message)) != 0)
            fail_msg("%s\n  rc %d (%s), message '%s'\n  expected '%s...'", text, rc,
                     tl_strerror(rc), why, bad_configs[i].message);
    }
}

/* docs/desk.md lists what counts as a first response: exactly the code's list, in its order. */
static void test_the_documented_first_responses_are_the_code_s(void **state)
{
    (void)state;
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/docs/desk.md", TL_SOURCE_DIR);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    int in_list = 0;
    size_t found = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        if (strncmp(line, "### What counts as a first response", 35) == 0) {
            in_list = 1;
            continue;
        }
        if (in_list && strncmp(line, "#", 1) == 0)
            break;
        if (!in_list || strncmp(line, "- `", 3) != 0)
            continue;
        char *end = strchr(line + 3, '`');
        assert_non_null(end);
        *end = '\0';
        const char *expected = tl_sla_response_event(found);
        if (expected == NULL || strcmp(expected, line + 3) != 0)
            fail_msg("docs/desk.md lists '%s' as response %zu, the code '%s'", line + 3, found,
                     expected ? expected : "(none)");
        found++;
    }
    fclose(file);
    assert_int_equal(tl_sla_response_event_count(), found);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_friday_ticket_is_due_monday_at_half_past_twelve),
        cmocka_unit_test(test_two_hour_pause_survives_a_severity_change),
        cmocka_unit_test(test_escalation_keeps_the_start_and_the_pauses),
        cmocka_unit_test(test_due_time_across_the_change_to_summer_time),
        cmocka_unit_test(test_24x7_due_time_across_the_change_to_summer_time),
        cmocka_unit_test(test_a_take_is_not_a_first_response),
        cmocka_unit_test(test_resolved_then_reopened_continues_where_it_stopped),
        cmocka_unit_test(test_the_vendor_clock_counts_only_the_wait_on_the_vendor),
        cmocka_unit_test(test_a_met_clock_keeps_the_target_it_stopped_under),
        cmocka_unit_test(test_histories_that_do_not_hold_together_are_refused),
        cmocka_unit_test(test_targets_per_severity_and_tier),
        cmocka_unit_test(test_status_and_state_names),
        cmocka_unit_test(test_bad_configurations_name_the_problem),
        cmocka_unit_test(test_the_documented_first_responses_are_the_code_s),
    };
    return tl_test_run(__FILE__, tests, sizeof tests / sizeof tests[0], argc, argv);
}
