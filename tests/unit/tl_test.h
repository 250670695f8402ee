/*
 * Shared scaffolding for the cmocka unit tests.
 *
 * Every test binary is registered with ctest once per test case (see
 * tests/CMakeLists.txt), so each case runs in its own process: the binary
 * takes the case name as its argument and runs only that case. Run with no
 * argument, it runs them all. A name that matches no case is an error, so a
 * typo cannot turn into a silent pass.
 */
#ifndef TL_TEST_H
#define TL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/err.h"

/* Asserts a return code, printing both codes' names on failure. */
#define TL_ASSERT_RC(expected, actual)                                                             \
    do {                                                                                           \
        int tl_expected_ = (expected);                                                             \
        int tl_actual_ = (actual);                                                                 \
        if (tl_expected_ != tl_actual_)                                                            \
            fail_msg("expected %d (%s), got %d (%s)", tl_expected_, tl_strerror(tl_expected_),     \
                     tl_actual_, tl_strerror(tl_actual_));                                         \
    } while (0)

#define TL_ASSERT_OK(expr) TL_ASSERT_RC(0, (expr))

static inline int tl_test_run(const char *group, const struct CMUnitTest *tests, size_t count,
                              int argc, char **argv)
{
    if (argc > 1) {
        size_t found = 0;
        for (size_t i = 0; i < count; i++)
            found += strcmp(tests[i].name, argv[1]) == 0;
        if (found != 1) {
            fprintf(stderr, "%s: no test case named '%s'\n", group, argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(group, tests, count, NULL, NULL);
}

#define TL_TEST_MAIN(tests)                                                                        \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return tl_test_run(__FILE__, tests, sizeof(tests) / sizeof((tests)[0]), argc, argv);       \
    }

#endif
