/* Ticket and device ids' text form (proto/ids.h): what is printed parses back to the same id. */
#include "tl_test.h"

#include "proto/ids.h"

#include <inttypes.h>

static void test_format_is_prefix_dash_number(void **state)
{
    (void)state;
    char text[TL_ID_TEXT];
    assert_string_equal(tl_id_format(text, TL_ID_TICKET, 42), "T-42");
    assert_string_equal(tl_id_format(text, TL_ID_DEVICE, 7), "D-7");
    /* The largest id the store can make still fits. */
    assert_string_equal(tl_id_format(text, TL_ID_TICKET, INT64_MAX), "T-9223372036854775807");
}

static void test_formatted_ids_parse_back(void **state)
{
    (void)state;
    const int64_t ids[] = {1, 9, 10, 42, 1000000, 9999999999999999};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char text[TL_ID_TEXT];
        int64_t back = 0;
        TL_ASSERT_OK(tl_id_parse(tl_id_format(text, TL_ID_DEVICE, ids[i]), TL_ID_DEVICE, &back));
        if (back != ids[i])
            fail_msg("%s parsed as %" PRId64 ", expected %" PRId64, text, back, ids[i]);
        TL_ASSERT_RC(TL_EINVAL, tl_id_parse(text, TL_ID_TICKET, &back));
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_format_is_prefix_dash_number),
    cmocka_unit_test(test_formatted_ids_parse_back),
};

TL_TEST_MAIN(tests)
