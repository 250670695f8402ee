/*
 * The relay's counters as Prometheus text (relay/store/metrics.h): label values escaped, every
 * family with its HELP and TYPE, counters moving as the relay counts, and the output bounded.
 */
#include "tl_test.h"

#include "relay/store/metrics.h"

#include <stdlib.h>

/* The rendering, as a string the test owns. */
static char *render(void)
{
    tl_buf_t *buf = tl_buf_new(1 << 20);
    assert_non_null(buf);
    TL_ASSERT_OK(tl_metrics_render(buf, 1000000));
    char *text = calloc(1, tl_buf_len(buf) + 1);
    assert_non_null(text);
    memcpy(text, tl_buf_data(buf), tl_buf_len(buf));
    tl_buf_free(buf);
    return text;
}

/* The value of the sample line starting with "series " (name and labels as rendered). */
static double sample(const char *text, const char *series)
{
    char key[256];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *at = strstr(text, key);
    if (at == NULL)
        fail_msg("no sample %s in:\n%s", series, text);
    return strtod(at + strlen(key), NULL);
}

static void assert_value(const char *text, const char *series, double expected)
{
    double actual = sample(text, series);
    if (actual != expected)
        fail_msg("%s: expected %g, got %g", series, expected, actual);
}

static void test_label_values_escape_backslash_quote_and_newline(void **state)
{
    (void)state;
    tl_buf_t *buf = tl_buf_new(256);
    TL_ASSERT_OK(tl_metrics_put_label_value(buf, "a\\b\"c\nd"));
    const char *expected = "a\\\\b\\\"c\\nd";
    assert_int_equal(tl_buf_len(buf), strlen(expected));
    assert_memory_equal(tl_buf_data(buf), expected, strlen(expected));
    tl_buf_reset(buf);
    TL_ASSERT_OK(tl_metrics_put_label_value(buf, "plain text, tab\tand é"));
    assert_memory_equal(tl_buf_data(buf), "plain text, tab\tand é", tl_buf_len(buf));
    tl_buf_free(buf);
}

static void test_every_family_has_help_and_type_before_its_samples(void **state)
{
    (void)state;
    tl_metrics_reset();
    uint64_t queued[TL_METRICS_TIERS] = {0, 1, 0, 0, 0}, breached[TL_METRICS_TIERS] = {0};
    tl_metrics_set_desk(queued, breached, 999000);
    char *text = render();
    const char *families[] = {
        "tierline_relay_start_time_seconds gauge",
        "tierline_agents_connected gauge",
        "tierline_enrollments_total counter",
        "tierline_sessions_total counter",
        "tierline_sessions_active gauge",
        "tierline_relayed_bytes_total counter",
        "tierline_consent_questions_total counter",
        "tierline_consent_answers_total counter",
        "tierline_tickets_queued gauge",
        "tierline_sla_breached_tickets gauge",
        "tierline_desk_gathered_age_seconds gauge",
        "tierline_audit_entries_total counter",
        "tierline_audit_checkpoint_lag_entries gauge",
        "tierline_audit_checkpoint_age_seconds gauge",
        "tierline_store_queue_jobs gauge",
        "tierline_store_job_duration_seconds histogram",
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char type[128], help[128], name[96];
        snprintf(name, sizeof name, "%.*s", (int)(strchr(families[i], ' ') - families[i]),
                 families[i]);
        snprintf(type, sizeof type, "# TYPE %s\n", families[i]);
        snprintf(help, sizeof help, "# HELP %s ", name);
        const char *type_at = strstr(text, type), *help_at = strstr(text, help);
        if (type_at == NULL || help_at == NULL || help_at > type_at)
            fail_msg("%s: HELP then TYPE expected in:\n%s", name, text);
    }
    /* Every line is a comment or "name[{labels}] value", and the text ends with a newline. */
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        if (line[0] != '#' && strncmp(line, "tierline_", 9) != 0)
            fail_msg("not a sample or a comment: %s", line);
    free(text);
}

static void test_counters_move_as_the_relay_counts(void **state)
{
    (void)state;
    tl_metrics_reset();
    tl_metrics_agent_online(1);
    tl_metrics_agent_online(1);
    tl_metrics_agent_online(-1);
    tl_metrics_session_started("exec");
    tl_metrics_session_started("shell");
    tl_metrics_session_ended("shell");
    tl_metrics_session_started("runbooks"); /* the catalogue listing: no session on a machine */
    tl_metrics_bytes_to_agent(5);
    tl_metrics_bytes_to_technician(1000);
    tl_metrics_enrollment(0);
    tl_metrics_enrollment(TL_EUSED);
    tl_metrics_enrollment(TL_EPROTO);
    tl_metrics_consent_asked();
    json_t *granted = json_pack("{s:b}", "ok", 1);
    json_t *denied = json_pack("{s:b, s:s}", "ok", 0, "error", "EDENIED");
    tl_metrics_consent_answer(0, granted);
    tl_metrics_consent_answer(0, denied);
    tl_metrics_consent_answer(TL_ETIMEOUT, NULL);
    tl_metrics_consent_answer(TL_ECLOSED, NULL);
    json_decref(granted);
    json_decref(denied);
    tl_metrics_audit_written(3);
    tl_metrics_audit_written(4);
    tl_metrics_checkpoint_lag(7);
    tl_metrics_job_submitted();
    tl_metrics_job_submitted();
    tl_metrics_job_done(tl_metrics_now_ns());
    char *text = render();
    assert_value(text, "tierline_agents_connected", 1);
    assert_value(text, "tierline_sessions_total{kind=\"run\"}", 1);
    assert_value(text, "tierline_sessions_active{kind=\"run\"}", 1);
    assert_value(text, "tierline_sessions_total{kind=\"shell\"}", 1);
    assert_value(text, "tierline_sessions_active{kind=\"shell\"}", 0);
    assert_null(strstr(text, "runbooks"));
    assert_value(text, "tierline_relayed_bytes_total{direction=\"to_agent\"}", 5);
    assert_value(text, "tierline_relayed_bytes_total{direction=\"to_technician\"}", 1000);
    assert_value(text, "tierline_enrollments_total{result=\"enrolled\"}", 1);
    assert_value(text, "tierline_enrollments_total{result=\"used\"}", 1);
    assert_value(text, "tierline_enrollments_total{result=\"error\"}", 1);
    assert_value(text, "tierline_consent_questions_total", 1);
    assert_value(text, "tierline_consent_answers_total{answer=\"granted\"}", 1);
    assert_value(text, "tierline_consent_answers_total{answer=\"denied\"}", 1);
    assert_value(text, "tierline_consent_answers_total{answer=\"timeout\"}", 1);
    assert_value(text, "tierline_consent_answers_total{answer=\"offline\"}", 1);
    assert_value(text, "tierline_audit_entries_total", 7);
    assert_value(text, "tierline_audit_checkpoint_lag_entries", 7);
    assert_value(text, "tierline_store_queue_jobs", 1);
    free(text);
    tl_metrics_checkpoint_made(999000);
    text = render();
    assert_value(text, "tierline_audit_checkpoint_lag_entries", 0);
    assert_value(text, "tierline_audit_checkpoint_age_seconds", 1);
    free(text);
}

static void test_store_latency_buckets_are_cumulative(void **state)
{
    (void)state;
    tl_metrics_reset();
    uint64_t now = tl_metrics_now_ns();
    tl_metrics_job_submitted();
    tl_metrics_job_submitted();
    tl_metrics_job_done(now - 10ull * 1000000000ull); /* ten seconds: over every bound */
    tl_metrics_job_done(now);
    char *text = render();
    assert_value(text, "tierline_store_job_duration_seconds_count", 2);
    assert_value(text, "tierline_store_job_duration_seconds_bucket{le=\"+Inf\"}", 2);
    assert_true(sample(text, "tierline_store_job_duration_seconds_sum") >= 10.0);
    const char *bounds[] = {"0.001", "0.005", "0.025", "0.1", "0.5", "2.5"};
    double previous = 0;
    for (size_t i = 0; i < 6; i++) {
        char series[96];
        snprintf(series, sizeof series, "tierline_store_job_duration_seconds_bucket{le=\"%s\"}",
                 bounds[i]);
        double value = sample(text, series);
        assert_true(value >= previous);
        assert_true(value <= 1); /* the ten-second job is in none of them */
        previous = value;
    }
    free(text);
}

static void test_desk_gauges_absent_until_gathered(void **state)
{
    (void)state;
    tl_metrics_reset();
    char *text = render();
    assert_null(strstr(text, "tierline_tickets_queued"));
    free(text);
    uint64_t queued[TL_METRICS_TIERS] = {0, 3, 2, 0, 1}, breached[TL_METRICS_TIERS] = {0, 1};
    tl_metrics_set_desk(queued, breached, 990000);
    text = render();
    assert_value(text, "tierline_tickets_queued{tier=\"1\"}", 3);
    assert_value(text, "tierline_tickets_queued{tier=\"4\"}", 1);
    assert_value(text, "tierline_sla_breached_tickets{tier=\"1\"}", 1);
    assert_value(text, "tierline_desk_gathered_age_seconds", 10);
    free(text);
}

static void test_output_over_the_buffer_cap_is_refused(void **state)
{
    (void)state;
    tl_metrics_reset();
    tl_buf_t *buf = tl_buf_new(200);
    TL_ASSERT_RC(TL_EFULL, tl_metrics_render(buf, 1000000));
    assert_true(tl_buf_len(buf) <= 200);
    tl_buf_free(buf);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_escape_backslash_quote_and_newline),
        cmocka_unit_test(test_every_family_has_help_and_type_before_its_samples),
        cmocka_unit_test(test_counters_move_as_the_relay_counts),
        cmocka_unit_test(test_store_latency_buckets_are_cumulative),
        cmocka_unit_test(test_desk_gauges_absent_until_gathered),
        cmocka_unit_test(test_output_over_the_buffer_cap_is_refused),
    };
    return tl_test_run("metrics", tests, sizeof tests / sizeof tests[0], argc, argv);
}
