/* Growing arrays: room as asked, doubling, never past the cap, never an overflowed size. */
#include "tl_test.h"

#include "proto/array.h"

#include <stdlib.h>

struct item {
    int id;
    char name[12];
};

static void test_an_array_starts_at_its_first_size_and_doubles(void **state)
{
    (void)state;
    struct item *items = NULL;
    size_t cap = 0;
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 1, sizeof *items, 4, SIZE_MAX));
    assert_non_null(items);
    assert_int_equal(cap, 4);
    for (int i = 0; i < 4; i++)
        items[i].id = i + 1;
    /* Room that is there already: nothing moves. */
    struct item *before = items;
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 4, sizeof *items, 4, SIZE_MAX));
    assert_ptr_equal(items, before);
    assert_int_equal(cap, 4);
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 5, sizeof *items, 4, SIZE_MAX));
    assert_int_equal(cap, 8);
    for (int i = 0; i < 4; i++)
        assert_int_equal(items[i].id, i + 1);
    /* The new items are zeroed. */
    for (int i = 4; i < 8; i++) {
        assert_int_equal(items[i].id, 0);
        assert_string_equal(items[i].name, "");
    }
    /* More than twice as many: exactly what is needed. */
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 100, sizeof *items, 4, SIZE_MAX));
    assert_int_equal(cap, 100);
    assert_int_equal(items[3].id, 4);
    assert_int_equal(items[99].id, 0);
    free(items);
}

static void test_an_array_never_grows_past_its_cap(void **state)
{
    (void)state;
    int *items = NULL;
    size_t cap = 0;
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 1, sizeof *items, 8, 10));
    assert_int_equal(cap, 8);
    items[7] = 7;
    /* Doubling would make 16: the cap holds it at 10. */
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 9, sizeof *items, 8, 10));
    assert_int_equal(cap, 10);
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 10, sizeof *items, 8, 10));
    /* Past the cap: refused, and the array is as it was. */
    int *before = items;
    TL_ASSERT_RC(TL_EFULL, tl_array_grow(&items, &cap, 11, sizeof *items, 8, 10));
    assert_ptr_equal(items, before);
    assert_int_equal(cap, 10);
    assert_int_equal(items[7], 7);
    /* A first size over the cap is held to it too. */
    int *small = NULL;
    size_t small_cap = 0;
    TL_ASSERT_OK(tl_array_grow(&small, &small_cap, 1, sizeof *small, 64, 3));
    assert_int_equal(small_cap, 3);
    free(small);
    free(items);
}

static void test_a_size_that_overflows_is_refused(void **state)
{
    (void)state;
    struct item *items = NULL;
    size_t cap = 0;
    TL_ASSERT_OK(tl_array_grow(&items, &cap, 2, sizeof *items, 2, SIZE_MAX));
    struct item *before = items;
    /* need * item_size does not fit a size_t: no allocation, nothing changed. */
    TL_ASSERT_RC(TL_ENOMEM, tl_array_grow(&items, &cap, SIZE_MAX / sizeof *items + 1, sizeof *items,
                                          2, SIZE_MAX));
    assert_ptr_equal(items, before);
    assert_int_equal(cap, 2);
    /* An array already past half of what a size_t can hold cannot be given more. */
    char *huge = NULL;
    size_t huge_cap = SIZE_MAX / 2 + 1;
    TL_ASSERT_RC(TL_ENOMEM, tl_array_grow(&huge, &huge_cap, SIZE_MAX / 2 + 2, 2, 1, SIZE_MAX));
    assert_null(huge);
    assert_int_equal(huge_cap, SIZE_MAX / 2 + 1);
    /* An item of no size is a mistake, not an empty array. */
    TL_ASSERT_RC(TL_EINVAL, tl_array_grow(&items, &cap, 3, 0, 2, SIZE_MAX));
    free(items);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_an_array_starts_at_its_first_size_and_doubles),
    cmocka_unit_test(test_an_array_never_grows_past_its_cap),
    cmocka_unit_test(test_a_size_that_overflows_is_refused),
};

TL_TEST_MAIN(tests)
