/* proto/selfhelp.c: self-help rows and deflections on the wire, bounded (docs/protocol.md). */
#include "tl_test.h"
#include "proto/err.h"
#include "proto/selfhelp.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY, &error);
    if (value == NULL)
        fail_msg("not JSON: %s (%s)", text, error.text);
    return value;
}

/* Decodes text as a "selfhelp" member: the result, and the rows in rows. */
static int decode_rows(const char *text, tl_selfhelp_row_t *rows, size_t *count)
{
    json_t *value = parse(text);
    int rc = tl_selfhelp_rows_decode(value, rows, count);
    json_decref(value);
    return rc;
}

static void test_rows_round_trip_and_become_timeline_events(void **state)
{
    (void)state;
    tl_selfhelp_row_t *rows = calloc(TL_SELFHELP_ROWS_MAX, sizeof *rows);
    size_t count = 0;
    assert_int_equal(
        decode_rows("[{\"event\":\"shown\",\"article\":\"tmp-full\",\"title\":\"/tmp is full\"},"
                    "{\"event\":\"applied\",\"article\":\"tmp-full\",\"title\":\"/tmp is full\","
                    "\"outcome\":\"not solved\",\"runbook\":\"clean-temp\","
                    "\"args\":{\"OLDER_THAN_DAYS\":\"7\"},\"future\":1}]",
                    rows, &count),
        0);
    assert_int_equal(count, 2);
    assert_int_equal(rows[1].applied, 1);
    assert_string_equal(rows[1].fix.args[0].value, "7");
    json_t *again = NULL;
    assert_int_equal(tl_selfhelp_rows_encode(rows, count, &again), 0);
    tl_selfhelp_row_t *back = calloc(TL_SELFHELP_ROWS_MAX, sizeof *back);
    size_t back_count = 0;
    assert_int_equal(tl_selfhelp_rows_decode(again, back, &back_count), 0);
    assert_int_equal(back_count, 2);
    assert_memory_equal(rows, back, 2 * sizeof *rows);
    assert_string_equal(tl_selfhelp_event_kind(&rows[1]), "selfhelp.applied");
    json_t *details = tl_selfhelp_event_details(&rows[1]);
    assert_string_equal(json_string_value(json_object_get(details, "article")), "kb:tmp-full");
    assert_string_equal(json_string_value(json_object_get(details, "outcome")), "not solved");
    json_decref(details);
    json_decref(again);
    free(back);
    free(rows);
}

static void test_rows_out_of_bounds_are_refused_whole(void **state)
{
    (void)state;
    tl_selfhelp_row_t *rows = calloc(TL_SELFHELP_ROWS_MAX, sizeof *rows);
    size_t count = 7;
    static const char *const bad[] = {
        "{}",                                                                  /* not an array */
        "[{\"event\":\"seen\",\"article\":\"a\",\"title\":\"t\"}]",            /* unknown event */
        "[{\"event\":\"shown\",\"article\":\"A\",\"title\":\"t\"}]",           /* id's characters */
        "[{\"event\":\"shown\",\"article\":\"a\",\"title\":\"\"}]",            /* empty title */
        "[{\"event\":\"shown\",\"article\":\"a\",\"title\":\"t\\u001b[2J\"}]", /* control */
        "[{\"event\":\"applied\",\"article\":\"a\",\"title\":\"t\"}]", /* applied, no runbook */
        "[{\"event\":\"shown\",\"article\":\"a\",\"title\":\"t\",\"args\":{}}]", /* args alone */
        "[{\"event\":\"applied\",\"article\":\"a\",\"title\":\"t\",\"runbook\":\"r\","
        "\"args\":{\"lower\":\"x\"}}]", /* parameter name */
        "[{\"event\":\"applied\",\"article\":\"a\",\"title\":\"t\",\"runbook\":\"r\","
        "\"args\":{\"N\":1}}]", /* value not a string */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        count = 7;
        if (decode_rows(bad[i], rows, &count) != TL_EMSG_MALFORMED || count != 0)
            fail_msg("accepted: %s", bad[i]);
    }
    /* 17 rows: one over the limit; 16 are taken. */
    static const char row[] = "{\"event\":\"shown\",\"article\":\"a\",\"title\":\"t\"}";
    char text[17 * sizeof row + 8];
    for (int rows_in = 17; rows_in >= 16; rows_in--) {
        strcpy(text, "[");
        for (int i = 0; i < rows_in; i++) {
            strcat(text, i ? "," : "");
            strcat(text, row);
        }
        strcat(text, "]");
        assert_int_equal(decode_rows(text, rows, &count), rows_in == 17 ? TL_EMSG_MALFORMED : 0);
    }
    assert_int_equal(count, 16);
    free(rows);
}

static void test_a_deflection_needs_a_fix_and_times_in_order(void **state)
{
    (void)state;
    tl_selfhelp_deflection_t d;
    json_t *body = parse("{\"type\":\"selfhelp.deflected\",\"request\":\"R-1\",\"article\":\"a\","
                         "\"title\":\"t\",\"runbook\":\"r\",\"args\":{\"N\":\"v\"},\"shown\":1,"
                         "\"applied\":2,\"rechecked\":3,\"outcome\":\"solved\",\"evidence\":[]}");
    assert_int_equal(tl_selfhelp_deflection_decode(body, &d), 0);
    assert_string_equal(d.fix.runbook, "r");
    json_t *again = NULL;
    assert_int_equal(tl_selfhelp_deflection_encode(&d, &again), 0);
    tl_selfhelp_deflection_t back;
    assert_int_equal(tl_selfhelp_deflection_decode(again, &back), 0);
    assert_memory_equal(&d, &back, sizeof d);
    json_decref(again);
    json_object_set_new(body, "applied", json_integer(4)); /* after the re-check */
    assert_int_equal(tl_selfhelp_deflection_decode(body, &d), TL_EMSG_MALFORMED);
    json_object_set_new(body, "applied", json_integer(2));
    json_object_set_new(body, "outcome", json_string("not solved"));
    assert_int_equal(tl_selfhelp_deflection_decode(body, &d), TL_EMSG_MALFORMED);
    json_object_set_new(body, "outcome", json_string("solved"));
    json_object_del(body, "runbook");
    assert_int_equal(tl_selfhelp_deflection_decode(body, &d), TL_EMSG_MALFORMED);
    json_decref(body);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_rows_round_trip_and_become_timeline_events),
    cmocka_unit_test(test_rows_out_of_bounds_are_refused_whole),
    cmocka_unit_test(test_a_deflection_needs_a_fix_and_times_in_order),
};

TL_TEST_MAIN(tests)
