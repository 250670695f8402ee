/* The web view's one-time links and sessions (relay/net/web_auth.h). */
#include "tl_test.h"

#include "relay/net/web_auth.h"

#include <stdlib.h>

static tl_technician_t technician(const char *name, const char *role)
{
    tl_technician_t tech = {0};
    snprintf(tech.name, sizeof tech.name, "%s", name);
    snprintf(tech.role, sizeof tech.role, "%s", role);
    return tech;
}

static void test_tokens_are_random_hex(void **state)
{
    (void)state;
    char a[TL_WEB_TOKEN_TEXT], b[TL_WEB_TOKEN_TEXT];
    TL_ASSERT_OK(tl_web_auth_token(a));
    TL_ASSERT_OK(tl_web_auth_token(b));
    assert_int_equal(strlen(a), 2 * TL_WEB_TOKEN_BYTES);
    assert_int_equal(strspn(a, "0123456789abcdef"), 2 * TL_WEB_TOKEN_BYTES);
    assert_string_not_equal(a, b);
}

static void test_a_link_works_once_and_for_its_lifetime_only(void **state)
{
    (void)state;
    tl_web_auth_t *auth = tl_web_auth_new(60000, 0);
    tl_technician_t alice = technician("alice", "tier1"), got;
    char token[TL_WEB_TOKEN_TEXT], late[TL_WEB_TOKEN_TEXT];
    TL_ASSERT_OK(tl_web_auth_token(token));
    TL_ASSERT_OK(tl_web_auth_link_add(auth, token, &alice, 1000000));
    TL_ASSERT_OK(tl_web_auth_link_take(auth, token, 1059999, &got));
    assert_string_equal(got.name, "alice");
    assert_string_equal(got.role, "tier1");
    /* Once only. */
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_link_take(auth, token, 1000001, &got));
    /* At 60 s it is too late, and taken all the same. */
    TL_ASSERT_OK(tl_web_auth_token(late));
    TL_ASSERT_OK(tl_web_auth_link_add(auth, late, &alice, 1000000));
    TL_ASSERT_RC(TL_EEXPIRED, tl_web_auth_link_take(auth, late, 1060000, &got));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_link_take(auth, late, 1000001, &got));
    tl_web_auth_free(auth);
}

static void test_what_is_not_a_token_finds_nothing(void **state)
{
    (void)state;
    tl_web_auth_t *auth = tl_web_auth_new(0, 0);
    tl_technician_t alice = technician("alice", "tier1"), got;
    char token[TL_WEB_TOKEN_TEXT];
    TL_ASSERT_OK(tl_web_auth_token(token));
    TL_ASSERT_OK(tl_web_auth_link_add(auth, token, &alice, 1000));
    char upper[TL_WEB_TOKEN_TEXT];
    memcpy(upper, token, sizeof upper);
    upper[0] = upper[0] >= 'a' ? (char)(upper[0] - 32) : 'G';
    const char *bad[] = {NULL, "", "abc", upper, "zz"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_link_take(auth, bad[i], 1001, &got));
    TL_ASSERT_RC(TL_EINVAL, tl_web_auth_link_add(auth, "not hex", &alice, 1000));
    /* The real one is still there. */
    TL_ASSERT_OK(tl_web_auth_link_take(auth, token, 1001, &got));
    tl_web_auth_free(auth);
}

static void test_sessions_expire_and_end(void **state)
{
    (void)state;
    tl_web_auth_t *auth = tl_web_auth_new(0, 3600000);
    tl_technician_t audrey = technician("audrey", "auditor"), got;
    char session[TL_WEB_TOKEN_TEXT], other[TL_WEB_TOKEN_TEXT];
    TL_ASSERT_OK(tl_web_auth_session_open(auth, &audrey, 0 + 5000, session));
    TL_ASSERT_OK(tl_web_auth_session_find(auth, session, 3604999, &got));
    assert_string_equal(got.role, "auditor");
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_session_find(auth, session, 3605000, &got));
    TL_ASSERT_OK(tl_web_auth_session_open(auth, &audrey, 10000, other));
    tl_web_auth_session_end(auth, other);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_session_find(auth, other, 10001, &got));
    /* A link's token is no session, nor the other way round. */
    TL_ASSERT_OK(tl_web_auth_session_open(auth, &audrey, 10000, other));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_link_take(auth, other, 10001, &got));
    tl_web_auth_free(auth);
}

static void test_a_full_table_lets_the_oldest_go(void **state)
{
    (void)state;
    tl_web_auth_t *auth = tl_web_auth_new(600000, 0);
    tl_technician_t alice = technician("alice", "tier1"), got;
    char first[TL_WEB_TOKEN_TEXT], token[TL_WEB_TOKEN_TEXT];
    TL_ASSERT_OK(tl_web_auth_token(first));
    TL_ASSERT_OK(tl_web_auth_link_add(auth, first, &alice, 1000));
    for (int i = 0; i < TL_WEB_MAX_LINKS; i++) {
        TL_ASSERT_OK(tl_web_auth_token(token));
        TL_ASSERT_OK(tl_web_auth_link_add(auth, token, &alice, 2000 + i));
    }
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_link_take(auth, first, 3000, &got));
    TL_ASSERT_OK(tl_web_auth_link_take(auth, token, 3000, &got));
    tl_web_auth_free(auth);
    tl_web_auth_free(NULL);
}

static int refuse_bob(void *data, const tl_technician_t *who)
{
    (void)data;
    return strcmp(who->name, "bob") == 0 ? TL_EDISABLED : 0;
}

static void count_ended(void *data, const tl_technician_t *who, int session, int answer)
{
    int *ended = data;
    assert_string_equal(who->name, "bob");
    assert_int_equal(answer, TL_EDISABLED);
    ended[session ? 1 : 0]++;
}

static void test_a_recheck_ends_the_refused_technicians_links_and_sessions(void **state)
{
    (void)state;
    tl_web_auth_t *auth = tl_web_auth_new(0, 0);
    tl_technician_t alice = technician("alice", "tier1"), bob = technician("bob", "tier2"), got;
    char a_link[TL_WEB_TOKEN_TEXT], b_link[TL_WEB_TOKEN_TEXT];
    char a_session[TL_WEB_TOKEN_TEXT], b_session[TL_WEB_TOKEN_TEXT], b_second[TL_WEB_TOKEN_TEXT];
    TL_ASSERT_OK(tl_web_auth_token(a_link));
    TL_ASSERT_OK(tl_web_auth_token(b_link));
    TL_ASSERT_OK(tl_web_auth_link_add(auth, a_link, &alice, 1000));
    TL_ASSERT_OK(tl_web_auth_link_add(auth, b_link, &bob, 1000));
    TL_ASSERT_OK(tl_web_auth_session_open(auth, &alice, 1000, a_session));
    TL_ASSERT_OK(tl_web_auth_session_open(auth, &bob, 1000, b_session));
    TL_ASSERT_OK(tl_web_auth_session_open(auth, &bob, 1000, b_second));
    int ended[2] = {0, 0};
    /* Under the lock; the callbacks only count. */
    int (*check)(void *, const tl_technician_t *) = refuse_bob;
    assert_int_equal(tl_web_auth_recheck(auth, check, count_ended, ended), 3);
    assert_int_equal(ended[0], 1);
    assert_int_equal(ended[1], 2);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_session_find(auth, b_session, 2000, &got));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_session_find(auth, b_second, 2000, &got));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_web_auth_link_take(auth, b_link, 2000, &got));
    TL_ASSERT_OK(tl_web_auth_session_find(auth, a_session, 2000, &got));
    assert_string_equal(got.name, "alice");
    TL_ASSERT_OK(tl_web_auth_link_take(auth, a_link, 2000, &got));
    /* Nothing more to end. */
    assert_int_equal(tl_web_auth_recheck(auth, check, count_ended, ended), 0);
    tl_web_auth_free(auth);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tokens_are_random_hex),
    cmocka_unit_test(test_a_link_works_once_and_for_its_lifetime_only),
    cmocka_unit_test(test_what_is_not_a_token_finds_nothing),
    cmocka_unit_test(test_sessions_expire_and_end),
    cmocka_unit_test(test_a_full_table_lets_the_oldest_go),
    cmocka_unit_test(test_a_recheck_ends_the_refused_technicians_links_and_sessions),
};

TL_TEST_MAIN(tests)
