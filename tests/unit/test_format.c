/* Formatting into fixed buffers: truncation is said, and an append never leaves half an item. */
#include "tl_test.h"

#include "proto/format.h"

static void test_text_that_fits_is_written_whole(void **state)
{
    (void)state;
    char out[17];
    TL_ASSERT_OK(tl_format(out, sizeof out, "%s/%s", "state", "relay.json"));
    assert_string_equal(out, "state/relay.json");
    /* Exactly size - 1 characters still fit. */
    char exact[6];
    TL_ASSERT_OK(tl_format(exact, sizeof exact, "%d", 12345));
    assert_string_equal(exact, "12345");
}

static void test_text_that_does_not_fit_is_cut_and_said(void **state)
{
    (void)state;
    char out[6];
    TL_ASSERT_RC(TL_EFULL, tl_format(out, sizeof out, "%s", "123456"));
    assert_string_equal(out, "12345");
    TL_ASSERT_RC(TL_EFULL, tl_format(NULL, 0, "%s", "x"));
    /* An empty text fits even where nothing else does. */
    char one[1];
    TL_ASSERT_OK(tl_format(one, sizeof one, "%s", ""));
    assert_string_equal(one, "");
}

static void test_appends_stop_at_the_last_whole_item(void **state)
{
    (void)state;
    char out[12];
    size_t used = 0;
    TL_ASSERT_OK(tl_format_append(out, sizeof out, &used, "%s", "tier1"));
    TL_ASSERT_RC(TL_EFULL, tl_format_append(out, sizeof out, &used, ", %s", "tier2"));
    assert_string_equal(out, "tier1");
    assert_int_equal(used, 5);
    TL_ASSERT_OK(tl_format_append(out, sizeof out, &used, ", %s", "t2"));
    assert_string_equal(out, "tier1, t2");
    assert_int_equal(used, 9);
    /* A full buffer refuses more and stays as it is. */
    TL_ASSERT_OK(tl_format_append(out, sizeof out, &used, "%s", "ab"));
    TL_ASSERT_RC(TL_EFULL, tl_format_append(out, sizeof out, &used, "%s", "c"));
    assert_string_equal(out, "tier1, t2ab");
    assert_int_equal(used, 11);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_text_that_fits_is_written_whole),
    cmocka_unit_test(test_text_that_does_not_fit_is_cut_and_said),
    cmocka_unit_test(test_appends_stop_at_the_last_whole_item),
};

TL_TEST_MAIN(tests)
