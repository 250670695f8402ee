/*
 * The report's view of a ticket at the end of a period (relay/desk/report_collect.h), pure: its
 * tier, severity, first response, resolution and clocks replayed from its history up to that
 * instant, whatever happened later; and the severity a ticket had when it was escalated.
 */
#include "tl_test.h"

#include "relay/desk/desk_config.h"
#include "relay/desk/report_collect.h"

#include <stdlib.h>

#define MINUTE 60000LL
#define HOUR 3600000LL
#define T0 1796000000000LL

#define CHANGE(time, field, value)                                                                 \
    {                                                                                              \
        7, (time), (field), (value), "tech:alice", ""                                              \
    }

static tl_sla_config_t *config_24x7(void)
{
    char why[256] = "";
    tl_sla_config_t *config = NULL;
    int rc = tl_sla_config_parse_text(tl_desk_config_default, strlen(tl_desk_config_default),
                                      tl_zone_lookup_files, NULL, &config, why, sizeof why);
    if (rc != 0)
        fail_msg("default desk does not parse: %s", why);
    return config;
}

static const tl_ticket_row_t TICKET = {
    .id = 7, .device_id = 3, .created = T0, .tier = 2, .severity = 2, .status = "resolved"};

/* A life: opened S3 in tier 1, answered, raised to S2, escalated, resolved, reopened, closed. */
static const tl_ticket_change_row_t LIFE[] = {
    CHANGE(T0, "severity", "3"),
    CHANGE(T0, "tier", "1"),
    CHANGE(T0, "status", "new"),
    CHANGE(T0 + 30 * MINUTE, "response", "note"),
    CHANGE(T0 + 30 * MINUTE, "status", "open"),
    CHANGE(T0 + 1 * HOUR, "severity", "2"),
    CHANGE(T0 + 2 * HOUR, "tier", "2"),
    CHANGE(T0 + 3 * HOUR, "status", "resolved"),
    CHANGE(T0 + 4 * HOUR, "status", "closed"),
    CHANGE(T0 + 5 * HOUR, "status", "reopened"),
    CHANGE(T0 + 6 * HOUR, "status", "resolved"),
    CHANGE(T0 + 7 * HOUR, "status", "closed"),
};
#define LIFE_COUNT (sizeof LIFE / sizeof LIFE[0])

static tl_report_ticket_t at(const tl_sla_config_t *config, int64_t until)
{
    tl_report_ticket_t t;
    char why[256] = "";
    int rc = tl_report_ticket_from(&TICKET, LIFE, LIFE_COUNT, config, until, &t, why, sizeof why);
    if (rc != 0)
        fail_msg("ticket_from: %s (%s)", tl_strerror(rc), why);
    return t;
}

static void test_a_ticket_is_counted_as_it_stood_when_the_period_ended(void **state)
{
    (void)state;
    tl_sla_config_t *config = config_24x7();
    /* Before the answer: tier 1, S3, no response, open; its first response clock running. */
    tl_report_ticket_t t = at(config, T0 + 10 * MINUTE);
    assert_int_equal(t.id, 7);
    assert_int_equal(t.device_id, 3);
    assert_int_equal(t.created_ms, T0);
    assert_int_equal(t.tier, 1);
    assert_int_equal(t.severity, 3);
    assert_int_equal(t.first_response_ms, 0);
    assert_int_equal(t.resolved_ms, 0);
    assert_int_equal(t.clocks[TL_SLA_FIRST_RESPONSE].state, TL_SLA_RUNNING);
    assert_int_equal(t.clocks[TL_SLA_FIRST_RESPONSE].elapsed_ms, 10 * MINUTE);
    /* Answered, raised, escalated: tier 2, S2; not resolved yet. */
    t = at(config, T0 + 2 * HOUR + MINUTE);
    assert_int_equal(t.tier, 2);
    assert_int_equal(t.severity, 2);
    assert_int_equal(t.first_response_ms, T0 + 30 * MINUTE);
    assert_int_equal(t.resolved_ms, 0);
    assert_int_equal(t.clocks[TL_SLA_FIRST_RESPONSE].state, TL_SLA_MET);
    assert_false(t.clocks[TL_SLA_RESOLUTION].stopped);
    /* Resolved, then closed: the resolution is when it was resolved, not when it was closed. */
    t = at(config, T0 + 4 * HOUR + MINUTE);
    assert_int_equal(t.resolved_ms, T0 + 3 * HOUR);
    assert_true(t.clocks[TL_SLA_RESOLUTION].stopped);
    /* Reopened: not resolved at the end of that period. */
    t = at(config, T0 + 5 * HOUR + MINUTE);
    assert_int_equal(t.resolved_ms, 0);
    assert_false(t.clocks[TL_SLA_RESOLUTION].stopped);
    /* Resolved again and closed: the second resolution. */
    t = at(config, T0 + 8 * HOUR);
    assert_int_equal(t.resolved_ms, T0 + 6 * HOUR);
    /* A period ending at a change's instant leaves it out: [since, until). */
    t = at(config, T0 + 2 * HOUR);
    assert_int_equal(t.tier, 1);
    tl_sla_config_free(config);
}

static void test_the_severity_of_an_escalation_is_the_one_it_had_then(void **state)
{
    (void)state;
    assert_int_equal(tl_report_severity_at(LIFE, LIFE_COUNT, 4, T0), 3);
    assert_int_equal(tl_report_severity_at(LIFE, LIFE_COUNT, 4, T0 + 59 * MINUTE), 3);
    assert_int_equal(tl_report_severity_at(LIFE, LIFE_COUNT, 4, T0 + 1 * HOUR), 2);
    assert_int_equal(tl_report_severity_at(LIFE, LIFE_COUNT, 4, T0 + 9 * HOUR), 2);
    /* Before every row: its first; no severity rows at all: the ticket's own. */
    assert_int_equal(tl_report_severity_at(LIFE, LIFE_COUNT, 4, T0 - HOUR), 3);
    assert_int_equal(tl_report_severity_at(LIFE + 1, 2, 4, T0), 4);
    assert_int_equal(tl_report_severity_at(NULL, 0, 1, T0), 1);
}

static void test_a_history_the_clocks_refuse_names_the_change(void **state)
{
    (void)state;
    tl_sla_config_t *config = config_24x7();
    static const tl_ticket_change_row_t bad[] = {
        CHANGE(T0, "severity", "3"),
        CHANGE(T0 + MINUTE, "status", "sleeping"),
    };
    tl_report_ticket_t t;
    char why[256] = "";
    assert_int_equal(tl_report_ticket_from(&TICKET, bad, 2, config, T0 + HOUR, &t, why, sizeof why),
                     TL_EINVAL);
    assert_string_equal(why, "change 1: 'sleeping' is not a status");
    /* The same change after the period's end is not read. */
    assert_int_equal(
        tl_report_ticket_from(&TICKET, bad, 2, config, T0 + MINUTE, &t, why, sizeof why), 0);
    tl_sla_config_free(config);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_a_ticket_is_counted_as_it_stood_when_the_period_ended),
    cmocka_unit_test(test_the_severity_of_an_escalation_is_the_one_it_had_then),
    cmocka_unit_test(test_a_history_the_clocks_refuse_names_the_change),
};

int main(int argc, char **argv)
{
    return tl_test_run("report_collect", tests, sizeof tests / sizeof tests[0], argc, argv);
}
