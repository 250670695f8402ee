/* Redaction: one story per rule (docs/diagnostics.md, "Redaction"), then hostile input. */
#include "tl_test.h"

#include "agent/redact.h"

#include <stdlib.h>

/* Redacts text and checks the result and how many secrets were counted. */
static void expect_redacted(const char *input, const char *expected, size_t expected_count)
{
    size_t count = 99;
    char *got = tl_redact_text(input, &count);
    assert_non_null(got);
    if (strcmp(got, expected) != 0)
        fail_msg("redacting \"%s\"\n  expected \"%s\"\n  got      \"%s\"", input, expected, got);
    if (count != expected_count)
        fail_msg("redacting \"%s\": expected %zu redactions, got %zu", input, expected_count,
                 count);
    free(got);
}

static void expect_unchanged(const char *input)
{
    expect_redacted(input, input, 0);
}

static void test_empty_string_gives_empty_copy(void **state)
{
    (void)state;
    expect_unchanged("");
    size_t len = 99;
    char *got = tl_redact_bytes("", 0, &len, NULL);
    assert_non_null(got);
    assert_string_equal(got, "");
    assert_int_equal(len, 0);
    free(got);
    assert_null(tl_redact_text(NULL, NULL));
}

static void test_ordinary_text_is_kept(void **state)
{
    (void)state;
    expect_unchanged("2026-11-23T19:04:05+0000 vm systemd[1]: Started session-c1.scope.");
    expect_unchanged("Failed password for invalid user admin from 203.0.113.9 port 52144 ssh2");
    expect_unchanged("/usr/lib/x86_64-linux-gnu/libQt5WebEngineCore.so.5 loaded");
    expect_unchanged("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    expect_unchanged("uuid 3f2504e0-4f89-11d3-9a0c-0305e82c3301 mounted at /srv/data");
    expect_unchanged("org/freedesktop/NetworkManager1/Settings/Connection12 activated");
    expect_unchanged("GDBus.Error:org.freedesktop.DBus.Error.ServiceUnknown: name not found");
    expect_unchanged("password_file=/etc/app/secret.txt tokens=5 passwordless=true");
    expect_unchanged("ssh -p 2222 tech@relay.example.com tickets");
    expect_unchanged("https://relay.example.com:8443/path?q=1");
    expect_unchanged("--password-file /run/keys/db");
}

static void test_pem_private_key_blocks_become_one_marker(void **state)
{
    (void)state;
    expect_redacted("before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nabc+/=\n"
                    "-----END RSA PRIVATE KEY-----\nafter",
                    "before\n[REDACTED PRIVATE KEY]\nafter", 1);
    expect_redacted("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"
                    "-----END OPENSSH PRIVATE KEY-----",
                    "[REDACTED PRIVATE KEY]", 1);
    expect_redacted("a -----BEGIN PRIVATE KEY-----xyz-----END PRIVATE KEY----- b "
                    "-----BEGIN ENCRYPTED PRIVATE KEY-----q-----END ENCRYPTED PRIVATE KEY-----",
                    "a [REDACTED PRIVATE KEY] b [REDACTED PRIVATE KEY]", 2);
    /* Certificates and public keys are not secrets. */
    expect_unchanged("-----BEGIN CERTIFICATE-----\nMIIBszCCAV\n-----END CERTIFICATE-----");
    expect_unchanged("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----");
}

static void test_pem_block_without_end_is_redacted_to_the_end(void **state)
{
    (void)state;
    expect_redacted("key follows\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\nstill secret",
                    "key follows\n[REDACTED PRIVATE KEY]", 1);
    /* An END for another label does not end the block. */
    expect_redacted("-----BEGIN PRIVATE KEY-----\nx\n-----END CERTIFICATE-----\ny",
                    "[REDACTED PRIVATE KEY]", 1);
    expect_redacted("-----BEGIN PRIVATE KEY-----", "[REDACTED PRIVATE KEY]", 1);
    /* A BEGIN line cut before its dashes is no key header. */
    expect_unchanged("-----BEGIN PRIVATE KEY");
    expect_unchanged("-----BEGIN ");
}

static void test_secret_keys_with_equals_or_colon(void **state)
{
    (void)state;
    expect_redacted("password=hunter2", "password=[REDACTED]", 1);
    expect_redacted("PASSWD: hunter2 next", "PASSWD: [REDACTED] next", 1);
    expect_redacted("pwd=abc", "pwd=[REDACTED]", 1);
    expect_redacted("Secret = s3", "Secret = [REDACTED]", 1);
    expect_redacted("token:abc,user=bob", "token:[REDACTED],user=bob", 1);
    expect_redacted("api_key=1 apikey=2 API-KEY=3",
                    "api_key=[REDACTED] apikey=[REDACTED] "
                    "API-KEY=[REDACTED]",
                    3);
    expect_redacted("aws_access_key=AB client_secret=CD",
                    "aws_access_key=[REDACTED] "
                    "client_secret=[REDACTED]",
                    2);
    expect_redacted("MYSQL_ROOT_PASSWORD=toor", "MYSQL_ROOT_PASSWORD=[REDACTED]", 1);
    expect_redacted("passphrase=x", "passphrase=[REDACTED]", 1);
}

static void test_secret_keys_with_quotes(void **state)
{
    (void)state;
    expect_redacted("{\"password\": \"hunter 2\", \"user\": \"bob\"}",
                    "{\"password\": \"[REDACTED]\", \"user\": \"bob\"}", 1);
    expect_redacted("{'token':'abc'}", "{'token':'[REDACTED]'}", 1);
    expect_redacted("secret=\"a b c\" rest", "secret=\"[REDACTED]\" rest", 1);
    expect_redacted("GET /login?user=bob&password=pw&next=/",
                    "GET /login?user=bob&password="
                    "[REDACTED]&next=/",
                    1);
    /* Empty values have nothing to hide. */
    expect_unchanged("password= user=bob");
    expect_unchanged("password=\"\"");
}

static void test_secret_flags_with_separate_values(void **state)
{
    (void)state;
    expect_redacted("mysql --password hunter2 -u root", "mysql --password [REDACTED] -u root", 1);
    expect_redacted("app --db-password 'a b' --verbose", "app --db-password '[REDACTED]' --verbose",
                    1);
    expect_redacted("tool -token abc", "tool -token [REDACTED]", 1);
    expect_redacted("cli --api-key=xyz --client-secret s",
                    "cli --api-key=[REDACTED] "
                    "--client-secret [REDACTED]",
                    2);
    /* The next flag is not a value. */
    expect_unchanged("tool --password --verbose");
}

static void test_authorization_headers(void **state)
{
    (void)state;
    expect_redacted("Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]", 1);
    expect_redacted("authorization: Basic dXNlcjpwYXNz\nnext line",
                    "authorization: Basic [REDACTED]\nnext line", 1);
    expect_redacted("curl -H \"Authorization: Bearer tok\" https://x",
                    "curl -H \"Authorization: Bearer [REDACTED]\" https://x", 1);
    expect_redacted("Proxy-Authorization: Digest username=\"a\", response=\"b\"",
                    "Proxy-Authorization: Digest [REDACTED]", 1);
    expect_redacted("Authorization: rawtoken", "Authorization: [REDACTED]", 1);
    expect_redacted("{\"Authorization\": \"Token abc\"}",
                    "{\"Authorization\": \"Token [REDACTED]\"}", 1);
    /* The word alone is prose. */
    expect_unchanged("temporary authorization for action org.example.run");
}

static void test_credentials_in_urls(void **state)
{
    (void)state;
    expect_redacted("git clone https://alice:s3cr3t@git.example.com/repo.git",
                    "git clone https://alice:[REDACTED]@git.example.com/repo.git", 1);
    expect_redacted("postgres://app:pw@db:5432/x", "postgres://app:[REDACTED]@db:5432/x", 1);
    expect_redacted("ftp://u:p@h ftp://v:q@i", "ftp://u:[REDACTED]@h ftp://v:[REDACTED]@i", 2);
    /* A user name alone, or a port, is kept. */
    expect_unchanged("ssh://git@example.com:22/repo");
    expect_unchanged("http://[::1]:8080/status");
}

/*
 * A URL straight after another one's host, as in a comma-separated list, is
 * still looked at: the scan used to resume past its "://" and keep the
 * password, so redacting a second time changed the text (found with
 * fuzz_redact).
 */
static void test_credentials_in_a_url_right_after_another(void **state)
{
    (void)state;
    expect_redacted("mirrors=ftp://mirror.example,https://bob:hunter2@repo.example/x",
                    "mirrors=ftp://mirror.example,https://bob:[REDACTED]@repo.example/x", 1);
    expect_redacted("a://b://u:p@h", "a://b://u:[REDACTED]@h", 1);
    expect_redacted("x://y,z://u:p@h,w://v:q@i", "x://y,z://u:[REDACTED]@h,w://v:[REDACTED]@i", 2);
}

/*
 * A later rule can remove what ended a match of an earlier one: the value
 * "://x" of password= held the "://" that closed the authority of
 * "https://u:", so only after it was redacted did that URL show credentials,
 * and redacting a second time changed the text (found with fuzz_redact). The
 * rules now run again over their own result until nothing changes.
 */
static void test_a_secret_value_that_hid_url_credentials(void **state)
{
    (void)state;
    expect_redacted("https://u:password=://x,y@host/r", "https://u:[REDACTED]@host/r", 2);
    /* The two inputs the fuzzer found, each stable after one call. */
    static const char *const found[] = {
        "password=://he{,orss@e=\x8c\xbd\"://he{,:password=://he{,orss@e=\x8c\xbd\"://he{,"
        "://%://\x7f@e//%://\x7f@e,o",
        "password=://hes,or\x9cpasswor\x01" "d=hers://:serpassword=://hes,@r\x9cpasswor\x01"
        "d=hers://:ser:p%99ss@e\xf8" "ap%://s@examMI:p%99ss@/exap%://s@examMI$I",
    };
    for (size_t i = 0; i < sizeof found / sizeof found[0]; i++) {
        char *once = tl_redact_text(found[i], NULL);
        size_t count = 99;
        char *twice = tl_redact_text(once, &count);
        assert_non_null(once);
        assert_non_null(twice);
        assert_string_equal(once, twice);
        assert_int_equal(count, 0);
        /* Whatever the credential part of a URL became, it holds no "password=" now. */
        assert_null(strstr(once, "password=://"));
        free(once);
        free(twice);
    }
    /* Many such links in a row still settle (each call is linear and bounded). */
    char *many = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&many, &len);
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fprintf(f, "https://u%d:password=://x%d,y@h%d/ ", i, i, i);
    fclose(f);
    size_t count = 0;
    char *once = tl_redact_text(many, &count);
    assert_non_null(once);
    assert_int_equal(count, 400);
    assert_null(strstr(once, "password"));
    size_t again = 99;
    char *twice = tl_redact_text(once, &again);
    assert_string_equal(once, twice);
    assert_int_equal(again, 0);
    free(many);
    free(once);
    free(twice);
}

static void test_well_known_token_shapes(void **state)
{
    (void)state;
    expect_redacted("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used", 1);
    expect_redacted("ASIAY34FZKBOKMUTVV7A", "[REDACTED]", 1);
    expect_redacted("push with ghp_16C7e42F292c6912E7710c838347Ae178B4a ok",
                    "push with [REDACTED] ok", 1);
    expect_redacted("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "[REDACTED]", 1);
    expect_redacted("slack xoxb-1234567890-abcdefghij end", "slack [REDACTED] end", 1);
    expect_redacted("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x", "jwt=[REDACTED]", 1);
    expect_redacted("cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc; path=/",
                    "cookie [REDACTED]; path=/", 1);
    /* Shapes inside longer words, or too short, are not tokens. */
    expect_unchanged("XAKIAIOSFODNN7EXAMPLE AKIA123 ghp_short xoxb-1 eyJonly");
}

static void test_long_random_base64_blobs(void **state)
{
    (void)state;
    expect_redacted("aws_secret wJalrXUtnFEMI/K7MDENGbPxRfiCY1x2EXAMPLEKEYq9z0",
                    "aws_secret [REDACTED]", 1);
    expect_redacted("blob dXNlcjpwYXNzd29yZDEyMzQ1Njc4OTBhYmNkZWZn== end", "blob [REDACTED] end",
                    1);
    /* Hex digests and identifiers stay: they name things, they do not unlock them. */
    expect_unchanged("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    expect_unchanged("SomeVeryLongCamelCaseIdentifierName2024Version");
}

static void test_redacting_twice_changes_nothing(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "password=hunter2 token: abc --secret x",
        "Authorization: Bearer abc\nAuthorization: abc",
        "https://a:b@c/ -----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
        "AKIAIOSFODNN7EXAMPLE ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char *once = tl_redact_text(inputs[i], NULL);
        size_t count = 99;
        char *twice = tl_redact_text(once, &count);
        assert_non_null(once);
        assert_non_null(twice);
        assert_string_equal(once, twice);
        assert_int_equal(count, 0);
        free(once);
        free(twice);
    }
}

/* The bytes API reads exactly len bytes: the buffer below has no terminator (ASan watches). */
static void test_bytes_are_read_within_their_length(void **state)
{
    (void)state;
    static const char text[] = "password=hunter2";
    size_t len = sizeof text - 1;
    char *exact = malloc(len);
    assert_non_null(exact);
    memcpy(exact, text, len);
    for (size_t cut = 0; cut <= len; cut++) {
        size_t out_len = 0;
        char *got = tl_redact_bytes(exact, cut, &out_len, NULL);
        assert_non_null(got);
        assert_int_equal(strlen(got), out_len);
        if (cut > 9) /* any part of the value is still a value */
            assert_string_equal(got, "password=[REDACTED]");
        free(got);
    }
    free(exact);
}

static void test_nul_bytes_are_copied_with_their_length(void **state)
{
    (void)state;
    static const char data[] = {'a', '\0', 'b', 'p', 'w', 'd', '=', 'x'};
    size_t out_len = 0, count = 0;
    char *got = tl_redact_bytes(data, sizeof data, &out_len, &count);
    assert_non_null(got);
    assert_int_equal(out_len, 3 + 4 + 10);
    assert_memory_equal(got, "a\0bpwd=[REDACTED]", out_len);
    assert_int_equal(count, 1);
    free(got);
}

static void test_unterminated_quotes_and_values_end_at_the_line(void **state)
{
    (void)state;
    expect_redacted("password=\"never closed\nnext", "password=\"[REDACTED]\nnext", 1);
    expect_redacted("Authorization: \"Bearer abc", "Authorization: \"Bearer [REDACTED]", 1);
    expect_redacted("token=", "token=", 0);
    expect_redacted("token", "token", 0);
    expect_redacted("https://user:pass", "https://user:pass", 0);
    expect_redacted("--password", "--password", 0);
    expect_redacted("--password ", "--password ", 0);
}

/* Many megabytes on one line, and inputs built to make a naive scanner quadratic. */
static void test_huge_and_pathological_input(void **state)
{
    (void)state;
    size_t len = 8 * 1024 * 1024;
    char *line = malloc(len + 64);
    assert_non_null(line);
    memset(line, 'a', len);
    strcpy(line + len, " password=hunter2");
    char *got = tl_redact_text(line, NULL);
    assert_non_null(got);
    assert_int_equal(strlen(got), len + strlen(" password=[REDACTED]"));
    assert_string_equal(got + len, " password=[REDACTED]");
    free(got);

    static const char *const units[] = {
        "-----BEGIN ", "://", "eyJaaaaaaaaaaa.", "password", "Authorization:", "-", "ghp_",
        "AKIA",        "x:y"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t unit_len = strlen(units[u]), n = len / 8 / unit_len;
        for (size_t i = 0; i < n; i++)
            memcpy(line + i * unit_len, units[u], unit_len);
        line[n * unit_len] = '\0';
        got = tl_redact_text(line, NULL);
        assert_non_null(got);
        free(got);
    }
    free(line);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_empty_string_gives_empty_copy),
    cmocka_unit_test(test_ordinary_text_is_kept),
    cmocka_unit_test(test_pem_private_key_blocks_become_one_marker),
    cmocka_unit_test(test_pem_block_without_end_is_redacted_to_the_end),
    cmocka_unit_test(test_secret_keys_with_equals_or_colon),
    cmocka_unit_test(test_secret_keys_with_quotes),
    cmocka_unit_test(test_secret_flags_with_separate_values),
    cmocka_unit_test(test_authorization_headers),
    cmocka_unit_test(test_credentials_in_urls),
    cmocka_unit_test(test_credentials_in_a_url_right_after_another),
    cmocka_unit_test(test_a_secret_value_that_hid_url_credentials),
    cmocka_unit_test(test_well_known_token_shapes),
    cmocka_unit_test(test_long_random_base64_blobs),
    cmocka_unit_test(test_redacting_twice_changes_nothing),
    cmocka_unit_test(test_bytes_are_read_within_their_length),
    cmocka_unit_test(test_nul_bytes_are_copied_with_their_length),
    cmocka_unit_test(test_unterminated_quotes_and_values_end_at_the_line),
    cmocka_unit_test(test_huge_and_pathological_input),
};

TL_TEST_MAIN(tests)
