/*
 * The desk's settings in relay.conf (relay/desk/desk_settings.h, relay/desk/desk_config.h): the
 * sla_ and retention_ keys make the same SLA and retention DATA/desk.json would; a bad value is
 * named FILE:LINE with its key and reason and nothing is made; each is said in one place only.
 */
#include "tl_test.h"

#include "proto/settings.h"
#include "relay/cmd/admin.h"
#include "relay/desk/calendar.h"
#include "relay/desk/clocks.h"
#include "relay/desk/desk_config.h"
#include "relay/desk/desk_settings.h"
#include "relay/desk/sla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MINUTE 60000LL
#define HOUR (60 * MINUTE)

/* The relay's own table with text as relay.conf; NULL when the file itself is refused. */
static tl_settings_t *settings_from(const char *text)
{
    tl_settings_t *settings = malloc(sizeof *settings);
    assert_non_null(settings);
    char why[512] = "";
    TL_ASSERT_OK(tl_settings_init(settings, tl_admin_relay_settings));
    if (tl_settings_parse(settings, "/etc/tierline/relay.conf", text, strlen(text), why,
                          sizeof why) != 0)
        fail_msg("relay.conf refused: %s", why);
    return settings;
}

/* The SLA the keys make, or the failure's message in why. */
static int load(const char *conf, const char *desk_json, tl_sla_config_t **sla, const char **source,
                char *why, size_t why_size)
{
    char dir[] = "/tmp/tl-desk-settings-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/desk.json", dir);
    if (desk_json != NULL) {
        FILE *file = fopen(path, "w");
        assert_non_null(file);
        fputs(desk_json, file);
        fclose(file);
    }
    tl_settings_t *settings = settings_from(conf);
    int rc =
        tl_desk_config_load(path, settings, tl_zone_lookup_files, NULL, sla, source, why, why_size);
    unlink(path);
    rmdir(dir);
    free(settings);
    return rc;
}

static void test_keys_make_the_calendar_and_targets(void **state)
{
    (void)state;
    static const char conf[] =
        "sla_zone = Europe/Berlin\n"
        "sla_hours = mon-tue,thu-fri 09:00-17:00; wed 09:00-12:00 13:00-17:00\n"
        "sla_holidays = 2026-12-25, 2026-12-26, 2026-12-24 09:00-12:00\n"
        "sla_s2 = 1h 8h, tier3 - 16h\n"
        "sla_vendor = 24h\n";
    tl_sla_config_t *sla = NULL;
    const char *source = NULL;
    char why[512] = "";
    if (load(conf, NULL, &sla, &source, why, sizeof why) != 0)
        fail_msg("refused: %s", why);
    assert_string_equal(source, "relay.conf");
    assert_string_equal(tl_clocks_zone_name(sla), "Europe/Berlin");
    assert_false(tl_calendar_always(tl_sla_config_calendar(sla)));
    /* S2 from the key, tier 3's resolution replaced and its first response kept. */
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_FIRST_RESPONSE, 2, 1), HOUR);
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_RESOLUTION, 2, 1), 8 * HOUR);
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_FIRST_RESPONSE, 2, 3), HOUR);
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_RESOLUTION, 2, 3), 16 * HOUR);
    /* S1 without a key keeps the built-in default's. */
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_FIRST_RESPONSE, 1, 1), 30 * MINUTE);
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_RESOLUTION, 1, 1), 4 * HOUR);
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_VENDOR, 2, 4), 24 * HOUR);
    tl_sla_config_free(sla);

    /* The same desk written as desk.json gives the same answers: one parser for both. */
    static const char json[] =
        "{\"sla\": {\"calendar\": {\"zone\": \"Europe/Berlin\", \"hours\": {"
        "\"mon\": \"09:00-17:00\", \"tue\": \"09:00-17:00\", \"wed\": [\"09:00-12:00\", "
        "\"13:00-17:00\"], \"thu\": \"09:00-17:00\", \"fri\": \"09:00-17:00\"}, \"holidays\": "
        "[\"2026-12-25\", \"2026-12-26\", {\"date\": \"2026-12-24\", \"hours\": \"09:00-12:00\"}]},"
        "\"targets\": {\"S1\": {\"first_response\": \"30m\", \"resolution\": \"4h\"}, "
        "\"S2\": {\"first_response\": \"1h\", \"resolution\": \"8h\", \"tier3\": {\"resolution\": "
        "\"16h\"}}, \"S3\": {\"first_response\": \"4h\", \"resolution\": \"24h\"}, "
        "\"S4\": {\"first_response\": \"6h\", \"resolution\": \"72h\"}}, \"vendor\": \"24h\"}}";
    tl_sla_config_t *from_json = NULL;
    TL_ASSERT_OK(load("", json, &from_json, &source, why, sizeof why));
    assert_string_equal(source, "desk.json");
    TL_ASSERT_OK(load(conf, NULL, &sla, &source, why, sizeof why));
    const tl_calendar_t *a = tl_sla_config_calendar(sla), *b = tl_sla_config_calendar(from_json);
    /* Due times agree over two weeks of starts, holidays included. */
    int64_t start = 1798070400000LL; /* 2026-12-24 00:00Z */
    for (int64_t t = start; t < start + 14 * 24 * HOUR; t += 97 * MINUTE) {
        int64_t due_a = 0, due_b = 0;
        TL_ASSERT_OK(tl_calendar_add(a, t, 5 * HOUR, &due_a));
        TL_ASSERT_OK(tl_calendar_add(b, t, 5 * HOUR, &due_b));
        assert_int_equal(due_a, due_b);
    }
    /* 2026-12-24 is a half day: 09:00-12:00 in Berlin (08:00-11:00Z), so one hour from 10:00Z
     * ends at 08:00Z on the next working day, 2026-12-28 (25th, 26th holidays; 27th Sunday). */
    int64_t due = 0;
    TL_ASSERT_OK(tl_calendar_add(a, start + 10 * HOUR, 2 * HOUR, &due));
    assert_int_equal(due, start + 4 * 24 * HOUR + 9 * HOUR);
    tl_sla_config_free(sla);
    tl_sla_config_free(from_json);
}

static void test_retention_keys_make_the_policy(void **state)
{
    (void)state;
    tl_settings_t *settings = settings_from("retention_recordings = 90\n"
                                            "retention_events = forever\n");
    tl_retention_t policy;
    const char *source = NULL;
    char why[512] = "";
    TL_ASSERT_OK(tl_desk_config_retention("/nonexistent/desk.json", settings, &policy, &source, why,
                                          sizeof why));
    assert_string_equal(source, "relay.conf");
    assert_int_equal(policy.days[TL_RETENTION_RECORDINGS], 90);
    assert_int_equal(policy.days[TL_RETENTION_TRANSCRIPTS], TL_RETENTION_FOREVER);
    assert_int_equal(policy.days[TL_RETENTION_EVENTS], TL_RETENTION_FOREVER);
    free(settings);
    /* Without keys or file: everything kept. */
    settings = settings_from("");
    TL_ASSERT_OK(tl_desk_config_retention("/nonexistent/desk.json", settings, &policy, &source, why,
                                          sizeof why));
    assert_string_equal(source, "default");
    assert_int_equal(policy.days[TL_RETENTION_RECORDINGS], TL_RETENTION_FOREVER);
    free(settings);
}

/* Each bad value: refused at its line, with its key and the reason, and nothing made. */
static void test_bad_values_name_line_key_and_reason(void **state)
{
    (void)state;
    static const struct {
        const char *line, *why, *after;
    } bad[] = {
        {"sla_hours = mon-fri 09:00-17:00; wed 10:00-12:00",
         "sla_hours: wed is given twice (group 1 and group 2): give each day once", NULL},
        {"sla_hours = monday 09:00-17:00", "sla_hours: 'monday' is not a day or a range of days",
         NULL},
        {"sla_hours = fri-mon 09:00-17:00", "sla_hours: 'fri-mon' runs backwards", NULL},
        {"sla_hours = mon-fri", "sla_hours: group 1 ('mon-fri') wants days then hours", NULL},
        {"sla_hours = mon 25:00-26:00", "sla_hours: mon: '25:00-26:00' holds an impossible time",
         NULL},
        {"sla_hours = tue 09:00-12:00 11:00-17:00",
         "sla_hours: tue: '11:00-17:00' overlaps other hours of the same day", NULL},
        {"sla_zone = Mars/Olympus_Mons", "sla_zone: unknown time zone 'Mars/Olympus_Mons'", NULL},
        {"sla_s1 = 4h", "sla_s1: '4h' wants the first response and resolution targets", NULL},
        {"sla_s1 = 8h 4h", "sla_s1: in tier 1 the first response (8h) is due after the", NULL},
        {"sla_s1 = 30m 2d", "sla_s1: resolution: '2d': a business day's length depends", NULL},
        {"sla_s2 = 1h 8h, tier3 - -", "sla_s2: 'tier3 - -' changes nothing", NULL},
        {"sla_s2 = 1h 8h, third - 4h", "sla_s2: 'third - 4h' wants a tier and its two targets",
         NULL},
        {"sla_holidays = 2026-02-29", "sla_holidays: '2026-02-29' is not a date YYYY-MM-DD",
         "sla_hours = mon-fri 09:00-17:00\n"},
        {"sla_holidays = 2026-12-25", "sla_holidays: holidays need working hours", NULL},
        {"sla_holidays = 2026-12-25, 2026-12-25", "sla_holidays: 2026-12-25 is given twice",
         "sla_hours = mon-fri 09:00-17:00\n"},
        {"retention_events = 0", "retention_events: wants a whole number of days 1..36500", NULL},
        {"retention_events = ten days", "retention_events: wants a whole number of days", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char conf[512], expected[512], why[1024] = "";
        snprintf(conf, sizeof conf, "# the desk\nsla_vendor = 24h\n%s\n%s", bad[i].line,
                 bad[i].after != NULL ? bad[i].after : "");
        snprintf(expected, sizeof expected, "/etc/tierline/relay.conf:3: %s", bad[i].why);
        tl_sla_config_t *sla = (tl_sla_config_t *)conf; /* must come back NULL */
        const char *source = NULL;
        int rc = load(conf, NULL, &sla, &source, why, sizeof why);
        if (rc != TL_EINVAL || strncmp(why, expected, strlen(expected)) != 0)
            fail_msg("'%s': rc %d, says '%s', expected '%s'", bad[i].line, rc, why, expected);
        assert_null(sla);
        /* The check serve and config check run says the same. */
        tl_settings_t *settings = settings_from(conf);
        char check_why[1024] = "";
        assert_int_equal(tl_desk_settings_check(settings, check_why, sizeof check_why), TL_EINVAL);
        assert_string_equal(check_why, why);
        free(settings);
    }
}

/* The SLA (or the retention) in both places is refused, naming both. */
static void test_one_place_only(void **state)
{
    (void)state;
    static const char json[] = "{\"sla\": {\"calendar\": {\"24x7\": true}, \"targets\": {"
                               "\"S1\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}, "
                               "\"S2\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}, "
                               "\"S3\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}, "
                               "\"S4\": {\"first_response\": \"1h\", \"resolution\": \"2h\"}}},"
                               " \"retention\": {\"events\": 30}}";
    tl_sla_config_t *sla = NULL;
    const char *source = NULL;
    char why[1024] = "";
    assert_int_equal(load("sla_s1 = 30m 4h\n", json, &sla, &source, why, sizeof why), TL_EINVAL);
    if (strstr(why, "the SLA is set twice, by sla_ keys (first at /etc/tierline/relay.conf:1)") ==
            NULL ||
        strstr(why, "desk.json's \"sla\": keep one") == NULL)
        fail_msg("says '%s'", why);
    assert_null(sla);
    assert_int_equal(load("retention_events = 10\n", json, &sla, &source, why, sizeof why),
                     TL_EINVAL);
    if (strstr(why, "the retention is set twice, by retention_ keys") == NULL)
        fail_msg("says '%s'", why);
    /* The SLA from relay.conf beside a desk.json with only a retention is fine. */
    static const char only_retention[] = "{\"retention\": {\"events\": 30}}";
    TL_ASSERT_OK(load("sla_s1 = 1h 2h\n", only_retention, &sla, &source, why, sizeof why));
    assert_string_equal(source, "relay.conf");
    assert_int_equal(tl_sla_config_target(sla, TL_SLA_RESOLUTION, 1, 2), 2 * HOUR);
    tl_sla_config_free(sla);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_make_the_calendar_and_targets),
        cmocka_unit_test(test_retention_keys_make_the_policy),
        cmocka_unit_test(test_bad_values_name_line_key_and_reason),
        cmocka_unit_test(test_one_place_only),
    };
    return tl_test_run("desk_settings", tests, sizeof tests / sizeof tests[0], argc, argv);
}
