/* Addresses as users write them (proto/addr.c): HOST:PORT, [IPV6]:PORT. */
#include "tl_test.h"

#include "proto/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static void assert_splits(const char *text, const char *host, uint16_t port)
{
    char got[TL_ADDR_HOST_MAX + 1];
    uint16_t got_port = 0;
    int rc = tl_addr_split(text, got, &got_port);
    if (rc != 0)
        fail_msg("'%s' did not split: %s", text, tl_strerror(rc));
    assert_string_equal(got, host);
    assert_int_equal(got_port, port);
}

static void test_names_and_literals_split(void **state)
{
    (void)state;
    assert_splits("relay.example.com:7443", "relay.example.com", 7443);
    assert_splits("127.0.0.1:0", "127.0.0.1", 0);
    assert_splits("my_host-2:22", "my_host-2", 22);
    assert_splits("[::1]:2222", "::1", 2222);
    assert_splits("[fe80::1%eth0]:65535", "fe80::1%eth0", 65535);
}

static void test_malformed_addresses_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "relay.example.com", "relay:", ":80", "relay:65536", "relay:8o", "::1:80", "[::1]", "[]:80",
        "[::1:80", "relay:123456",
        /* Brackets belong around the host, never inside it (found by fuzz_fields). */
        "[[1]:8", "a]:80", "[a[b]:80", "[a]]:80",
        /* A host is a name or a literal: no blanks, quotes or control characters. */
        "a b:22", "a\tb:22", "a\x1b[2J:22", "a\x7f:22", "\"a\":22", "a/b:22", "caf\xc3\xa9:22",
        "%eth0:22"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[TL_ADDR_HOST_MAX + 1];
        uint16_t port = 0;
        int rc = tl_addr_split(bad[i], host, &port);
        if (rc != TL_EINVAL)
            fail_msg("'%s' gave %s, expected EINVAL", bad[i], tl_strerror(rc));
    }
}

static void test_numeric_addresses_parse(void **state)
{
    (void)state;
    struct sockaddr_storage addr;
    TL_ASSERT_OK(tl_addr_parse("192.0.2.7:7443", &addr));
    assert_int_equal(addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&addr)->sin_port), 7443);
    TL_ASSERT_OK(tl_addr_parse("[2001:db8::7]:22", &addr));
    assert_int_equal(addr.ss_family, AF_INET6);
    char shown[TL_ADDR_TEXT_MAX];
    tl_addr_format((struct sockaddr *)&addr, 1, shown);
    assert_string_equal(shown, "[2001:db8::7]:22");
    TL_ASSERT_RC(TL_EINVAL, tl_addr_parse("relay.example.com:22", &addr));
    TL_ASSERT_RC(TL_EINVAL, tl_addr_parse("[[1]:8", &addr));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_names_and_literals_split),
    cmocka_unit_test(test_malformed_addresses_are_refused),
    cmocka_unit_test(test_numeric_addresses_parse),
};

TL_TEST_MAIN(tests)
