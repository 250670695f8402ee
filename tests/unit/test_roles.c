/* Roles: the one table both programs take role names, sessions and runbook ranks from. */
#include "tl_test.h"

#include "proto/roles.h"

static void test_every_role_name_parses_back_to_its_role(void **state)
{
    (void)state;
    for (int role = 0; role < TL_ROLE_COUNT; role++)
        assert_int_equal(tl_role_parse(tl_role_name(role)), role);
    assert_int_equal(tl_role_parse("Tier1"), -1);
    assert_int_equal(tl_role_parse("tier5"), -1);
    assert_int_equal(tl_role_parse(""), -1);
    assert_int_equal(tl_role_parse(NULL), -1);
    assert_string_equal(tl_role_name(TL_ROLE_COUNT), "unknown");
    assert_string_equal(tl_role_name(-1), "unknown");
}

/* docs/consent.md: auditors and admins never get a session; every tier does. */
static void test_only_roles_that_act_on_the_machine_get_sessions(void **state)
{
    (void)state;
    assert_true(tl_role_has_sessions(TL_ROLE_TIER1));
    assert_true(tl_role_has_sessions(TL_ROLE_TIER2));
    assert_true(tl_role_has_sessions(TL_ROLE_TIER3));
    assert_true(tl_role_has_sessions(TL_ROLE_TIER4));
    assert_false(tl_role_has_sessions(TL_ROLE_AUDITOR));
    assert_false(tl_role_has_sessions(TL_ROLE_ADMIN));
    assert_false(tl_role_has_sessions(-1));
    assert_false(tl_role_has_sessions(TL_ROLE_COUNT));
}

/* docs/consent.md "Runbooks": a vendor (tier4) runs no runbooks at all (docs/roles.md). */
static void test_runbook_ranks_leave_out_vendors(void **state)
{
    (void)state;
    assert_int_equal(tl_role_runbook_rank(TL_ROLE_TIER1), 1);
    assert_int_equal(tl_role_runbook_rank(TL_ROLE_TIER2), 2);
    assert_int_equal(tl_role_runbook_rank(TL_ROLE_TIER3), 3);
    assert_int_equal(tl_role_runbook_rank(TL_ROLE_TIER4), 0);
    assert_int_equal(tl_role_runbook_rank(TL_ROLE_AUDITOR), 0);
    assert_int_equal(tl_role_runbook_rank(TL_ROLE_ADMIN), 0);
    assert_int_equal(tl_role_runbook_rank(-1), 0);
    /* Every role that ranks may run runbooks, and only tier3 privileged ones. */
    for (int role = 0; role < TL_ROLE_COUNT; role++) {
        assert_int_equal(tl_role_runbook_rank(role) > 0, tl_role_can(role, TL_CAP_FIX));
        assert_int_equal(tl_role_runbook_rank(role) == 3, tl_role_can(role, TL_CAP_FIX_PRIVILEGED));
    }
}

static void test_a_min_role_is_tier1_tier2_or_tier3(void **state)
{
    (void)state;
    assert_true(tl_role_is_min_role(TL_ROLE_TIER1));
    assert_true(tl_role_is_min_role(TL_ROLE_TIER2));
    assert_true(tl_role_is_min_role(TL_ROLE_TIER3));
    assert_false(tl_role_is_min_role(TL_ROLE_TIER4));
    assert_false(tl_role_is_min_role(TL_ROLE_AUDITOR));
    assert_false(tl_role_is_min_role(TL_ROLE_ADMIN));
    assert_false(tl_role_is_min_role(-1));
}

static void test_role_names_are_listed_in_table_order(void **state)
{
    (void)state;
    char names[96], short_names[12];
    tl_roles_names(names, sizeof names);
    assert_string_equal(names, "tier1, tier2, tier3, tier4, auditor, admin");
    /* What does not fit is left out, never a torn name. */
    tl_roles_names(short_names, sizeof short_names);
    assert_string_equal(short_names, "tier1");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_every_role_name_parses_back_to_its_role),
    cmocka_unit_test(test_only_roles_that_act_on_the_machine_get_sessions),
    cmocka_unit_test(test_runbook_ranks_leave_out_vendors),
    cmocka_unit_test(test_a_min_role_is_tier1_tier2_or_tier3),
    cmocka_unit_test(test_role_names_are_listed_in_table_order),
};

TL_TEST_MAIN(tests)
