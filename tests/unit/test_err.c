/* Error codes: distinct from errno and libuv codes, and all named. */
#include "tl_test.h"

#include <errno.h>
#include <uv.h>

static void test_codes_are_named_and_distinct(void **state)
{
    (void)state;
    static const int codes[] = {
#define TL_ERR_VALUE(name, value, text) value,
        TL_ERR_MAP(TL_ERR_VALUE)
#undef TL_ERR_VALUE
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] <= TL_ERR_FIRST && codes[i] >= TL_ERR_LAST);
        assert_string_not_equal(tl_err_name(codes[i]), "UNKNOWN");
        assert_string_not_equal(tl_strerror(codes[i]), "unknown Tierline error");
        for (size_t j = i + 1; j < n; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
}

static void test_foreign_codes_fall_back_to_libuv(void **state)
{
    (void)state;
    assert_string_equal(tl_strerror(-ENOENT), uv_strerror(UV_ENOENT));
    assert_string_equal(tl_strerror(UV_EOF), uv_strerror(UV_EOF));
    assert_string_equal(tl_strerror(0), "success");
    assert_string_equal(tl_err_name(-ENOENT), "UNKNOWN");
    assert_string_equal(tl_strerror(-30098), "unknown Tierline error");
}

static void test_rate_limited_and_disabled_have_codes_of_their_own(void **state)
{
    (void)state;
    assert_int_not_equal(TL_ERATELIMITED, TL_ETIMEOUT);
    assert_int_not_equal(TL_EDISABLED, TL_EPIN);
    assert_string_equal(tl_strerror(TL_ERATELIMITED), "rate limited");
    assert_string_equal(tl_err_name(TL_ERATELIMITED), "ERATELIMITED");
    assert_string_equal(tl_strerror(TL_EDISABLED), "account disabled");
    assert_string_equal(tl_err_name(TL_EDISABLED), "EDISABLED");
}

/* Version 1 agents and audit readers know rate limiting as ETIMEOUT (docs/protocol.md §7.2). */
static void test_compat_gives_rate_limiting_its_version_1_code(void **state)
{
    (void)state;
    TL_ASSERT_RC(TL_ETIMEOUT, tl_err_compat(TL_ERATELIMITED));
    TL_ASSERT_RC(TL_EDISABLED, tl_err_compat(TL_EDISABLED));
    TL_ASSERT_RC(TL_ETIMEOUT, tl_err_compat(TL_ETIMEOUT));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_err_compat(TL_ENOTFOUND));
    TL_ASSERT_RC(-ENOENT, tl_err_compat(-ENOENT));
    TL_ASSERT_RC(0, tl_err_compat(0));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_codes_are_named_and_distinct),
    cmocka_unit_test(test_foreign_codes_fall_back_to_libuv),
    cmocka_unit_test(test_rate_limited_and_disabled_have_codes_of_their_own),
    cmocka_unit_test(test_compat_gives_rate_limiting_its_version_1_code),
};

TL_TEST_MAIN(tests)
