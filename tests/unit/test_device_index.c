/*
 * Live connections by device id: what was set is found, what was removed is
 * not, and removals in the middle of a probe run lose nothing else.
 */
#include "tl_test.h"

#include "proto/err.h"
#include "relay/net/device_index.h"

#include <stdint.h>
#include <stdlib.h>

#define IDS 5000

static void test_set_get_replace_remove(void **state)
{
    (void)state;
    tl_device_index_t *index = tl_device_index_new();
    int a, b;
    assert_int_equal(0, tl_device_index_set(index, 7, &a));
    assert_ptr_equal(&a, tl_device_index_get(index, 7));
    assert_int_equal(0, tl_device_index_set(index, 7, &b)); /* a newer connection */
    assert_ptr_equal(&b, tl_device_index_get(index, 7));
    assert_int_equal(1, tl_device_index_count(index));
    assert_null(tl_device_index_get(index, 8));
    tl_device_index_remove(index, 8); /* absent: nothing happens */
    tl_device_index_remove(index, 7);
    assert_null(tl_device_index_get(index, 7));
    assert_int_equal(0, tl_device_index_count(index));
    assert_int_equal(TL_EINVAL, tl_device_index_set(index, 0, &a));
    assert_int_equal(TL_EINVAL, tl_device_index_set(index, -3, &a));
    assert_int_equal(TL_EINVAL, tl_device_index_set(index, 3, NULL));
    assert_null(tl_device_index_get(index, 0));
    tl_device_index_free(index);
    tl_device_index_free(NULL);
}

/* Many ids set and removed in a scrambled order agree with a plain array throughout. */
static void test_agrees_with_an_array_through_churn(void **state)
{
    (void)state;
    static char values[IDS + 1];
    static int present[IDS + 1];
    tl_device_index_t *index = tl_device_index_new();
    uint64_t seed = 12345;
    size_t count = 0;
    for (int round = 0; round < 20 * IDS; round++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int64_t id = (int64_t)((seed >> 33) % IDS) + 1;
        if (present[id] && (seed & 1)) {
            tl_device_index_remove(index, id);
            present[id] = 0;
            count--;
        } else {
            assert_int_equal(0, tl_device_index_set(index, id, &values[id]));
            count += !present[id];
            present[id] = 1;
        }
        if (round % 997 == 0) {
            for (int64_t check = 1; check <= IDS; check++)
                assert_ptr_equal(present[check] ? &values[check] : NULL,
                                 tl_device_index_get(index, check));
        }
    }
    assert_int_equal(count, tl_device_index_count(index));
    for (int64_t check = 1; check <= IDS; check++)
        assert_ptr_equal(present[check] ? &values[check] : NULL, tl_device_index_get(index, check));
    tl_device_index_free(index);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_set_get_replace_remove),
    cmocka_unit_test(test_agrees_with_an_array_through_churn),
};

TL_TEST_MAIN(tests)
