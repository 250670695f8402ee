/*
 * Enrolled keys as the loop sees them: lookups, and a registry loaded off the
 * loop taken over without losing enrollments that committed meanwhile.
 */
#include "tl_test.h"

#include "proto/err.h"
#include "relay/net/registry.h"

#include <stdio.h>
#include <string.h>

/* A well-formed fingerprint, distinct for each n. */
static void key(int n, char out[64])
{
    snprintf(out, 64, "SHA256:%043d", n);
}

static void test_finds_what_was_added_and_nothing_else(void **state)
{
    (void)state;
    tl_registry_t *registry = tl_registry_new();
    char fingerprint[64];
    for (int i = 1; i <= 1000; i++) {
        key(i, fingerprint);
        assert_int_equal(0, tl_registry_add(registry, fingerprint, i));
    }
    assert_int_equal(1000, tl_registry_count(registry));
    key(777, fingerprint);
    assert_int_equal(777, tl_registry_find(registry, fingerprint));
    key(1001, fingerprint);
    assert_int_equal(0, tl_registry_find(registry, fingerprint));
    assert_int_equal(0, tl_registry_find(registry, "SHA256:short"));
    assert_int_equal(TL_EINVAL, tl_registry_add(registry, "not a fingerprint", 5));
    tl_registry_free(registry);
}

static void test_adopting_a_loaded_registry_keeps_later_enrollments(void **state)
{
    (void)state;
    tl_registry_t *registry = tl_registry_new(); /* the loop's: enrollments since start */
    tl_registry_t *loaded = tl_registry_new();   /* read from the store meanwhile */
    char fingerprint[64];
    for (int i = 1; i <= 5000; i++) {
        key(i, fingerprint);
        assert_int_equal(0, tl_registry_add(loaded, fingerprint, i));
    }
    key(5001, fingerprint); /* enrolled after the store was read */
    assert_int_equal(0, tl_registry_add(registry, fingerprint, 5001));
    key(42, fingerprint); /* enrolled again under a new device meanwhile: the later one wins */
    assert_int_equal(0, tl_registry_add(registry, fingerprint, 6000));

    assert_int_equal(0, tl_registry_adopt(registry, loaded));

    assert_int_equal(5001, tl_registry_count(registry));
    key(1, fingerprint);
    assert_int_equal(1, tl_registry_find(registry, fingerprint));
    key(5000, fingerprint);
    assert_int_equal(5000, tl_registry_find(registry, fingerprint));
    key(5001, fingerprint);
    assert_int_equal(5001, tl_registry_find(registry, fingerprint));
    key(42, fingerprint);
    assert_int_equal(6000, tl_registry_find(registry, fingerprint));
    key(5002, fingerprint);
    assert_int_equal(0, tl_registry_find(registry, fingerprint));
    tl_registry_free(registry);
}

static void test_adopting_an_empty_registry_keeps_what_there_was(void **state)
{
    (void)state;
    tl_registry_t *registry = tl_registry_new();
    char fingerprint[64];
    key(9, fingerprint);
    assert_int_equal(0, tl_registry_add(registry, fingerprint, 9));
    assert_int_equal(0, tl_registry_adopt(registry, tl_registry_new()));
    assert_int_equal(1, tl_registry_count(registry));
    assert_int_equal(9, tl_registry_find(registry, fingerprint));
    tl_registry_free(registry);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_finds_what_was_added_and_nothing_else),
    cmocka_unit_test(test_adopting_a_loaded_registry_keeps_later_enrollments),
    cmocka_unit_test(test_adopting_an_empty_registry_keeps_what_there_was),
};

TL_TEST_MAIN(tests)
