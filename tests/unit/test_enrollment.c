/* Enrollment codes and strings: forgiving where users type, strict elsewhere. */
#include "tl_test.h"

#include "proto/enrollment.h"

#define FP "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"

static void test_generated_codes_normalize_to_themselves(void **state)
{
    (void)state;
    char a[TL_ENROLL_CODE_LEN], b[TL_ENROLL_CODE_LEN], again[TL_ENROLL_CODE_LEN];
    TL_ASSERT_OK(tl_enroll_code_generate(a));
    TL_ASSERT_OK(tl_enroll_code_generate(b));
    assert_int_equal(strlen(a), 19);
    assert_string_not_equal(a, b);
    TL_ASSERT_OK(tl_enroll_code_normalize(a, again));
    assert_string_equal(a, again);
}

static void test_typed_codes_are_forgiven(void **state)
{
    (void)state;
    char out[TL_ENROLL_CODE_LEN];
    TL_ASSERT_OK(tl_enroll_code_normalize("k7qx 2m9p-4rtw 8hjc", out));
    assert_string_equal(out, "K7QX-2M9P-4RTW-8HJC");
    TL_ASSERT_OK(tl_enroll_code_normalize("IOLO-0000-1111-2222", out));
    assert_string_equal(out, "1010-0000-1111-2222");
    char h1[TL_SHA256_HEX_LEN], h2[TL_SHA256_HEX_LEN];
    TL_ASSERT_OK(tl_enroll_code_hash("k7qx2m9p4rtw8hjc", h1));
    TL_ASSERT_OK(tl_enroll_code_hash("K7QX-2M9P-4RTW-8HJC", h2));
    assert_string_equal(h1, h2);
    assert_true(tl_sha256_hex_valid(h1));
}

static void test_malformed_codes_rejected(void **state)
{
    (void)state;
    char out[TL_ENROLL_CODE_LEN];
    const char *bad[] = {"",
                         "K7QX-2M9P-4RTW",
                         "K7QX-2M9P-4RTW-8HJC-A",
                         "K7QX-2M9P-4RTW-8HJU",
                         "K7QX/2M9P/4RTW/8HJC",
                         "K7QX-2M9P-4RTW-8HJ\xc3\xa9",
                         "----------------------------------------------------------------------"
                         "K7QX2M9P4RTW8HJC"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_enroll_code_normalize(bad[i], out));
}

static void test_string_round_trip(void **state)
{
    (void)state;
    tl_enrollment_t in = {.port = 7443}, out;
    strcpy(in.code, "K7QX-2M9P-4RTW-8HJC");
    strcpy(in.host, "relay.example.com");
    strcpy(in.fingerprint, FP);
    char text[TL_ENROLLMENT_MAX];
    TL_ASSERT_OK(tl_enrollment_format(&in, text, sizeof text));
    assert_string_equal(text, "tl1:K7QX-2M9P-4RTW-8HJC@relay.example.com:7443#" FP);
    TL_ASSERT_OK(tl_enrollment_parse(text, &out));
    assert_string_equal(out.code, in.code);
    assert_string_equal(out.host, in.host);
    assert_int_equal(out.port, 7443);
    assert_string_equal(out.fingerprint, FP);

    strcpy(in.host, "::1");
    TL_ASSERT_OK(tl_enrollment_format(&in, text, sizeof text));
    assert_string_equal(text, "tl1:K7QX-2M9P-4RTW-8HJC@[::1]:7443#" FP);
    TL_ASSERT_OK(tl_enrollment_parse(text, &out));
    assert_string_equal(out.host, "::1");
}

#define FP2 "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"

/* The catalogue signing key's fingerprint rides after '!'; strings without it still parse. */
static void test_catalogue_key_is_an_optional_field(void **state)
{
    (void)state;
    tl_enrollment_t in = {.port = 7443}, out;
    strcpy(in.code, "K7QX-2M9P-4RTW-8HJC");
    strcpy(in.host, "relay.example.com");
    strcpy(in.fingerprint, FP);
    strcpy(in.catalogue_key, FP2);
    char text[TL_ENROLLMENT_MAX];
    TL_ASSERT_OK(tl_enrollment_format(&in, text, sizeof text));
    assert_string_equal(text, "tl1:K7QX-2M9P-4RTW-8HJC@relay.example.com:7443#" FP "!" FP2);
    TL_ASSERT_OK(tl_enrollment_parse(text, &out));
    assert_string_equal(out.fingerprint, FP);
    assert_string_equal(out.catalogue_key, FP2);
    TL_ASSERT_OK(tl_enrollment_parse("tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#" FP, &out));
    assert_string_equal(out.catalogue_key, "");
    const char *bad[] = {
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#" FP "!",
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#" FP "!SHA256:short",
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#" FP "!" FP2 "!" FP2,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#!" FP2,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tl_enrollment_parse(bad[i], &out) != TL_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    strcpy(in.catalogue_key, "SHA256:nope");
    TL_ASSERT_RC(TL_EINVAL, tl_enrollment_format(&in, text, sizeof text));
}

static void test_malformed_strings_rejected(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "tl2:K7QX-2M9P-4RTW-8HJC@relay:7443#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:0#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:65536#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:123456#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:74x3#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@:7443#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@rel;ay:7443#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@[relay]:7443#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@::1:7443#" FP,
        "tl1:K7QX-2M9P-4RTW@relay:7443#" FP,
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#SHA256:short",
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443#" FP "x",
        "tl1:K7QX-2M9P-4RTW-8HJC#" FP "@relay:7443",
        "tl1:K7QX-2M9P-4RTW-8HJC@relay:7443",
    };
    tl_enrollment_t out;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tl_enrollment_parse(bad[i], &out);
        if (rc != TL_EINVAL)
            fail_msg("accepted or wrong error for \"%s\": %s", bad[i], tl_err_name(rc));
    }
    char huge[1024];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    memcpy(huge, "tl1:", 4);
    TL_ASSERT_RC(TL_EINVAL, tl_enrollment_parse(huge, &out));
}

static void test_sha256_hex_known_answer(void **state)
{
    (void)state;
    char hex[TL_SHA256_HEX_LEN];
    TL_ASSERT_OK(tl_sha256_hex("abc", 3, hex));
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    tl_sha256_t *hash = tl_sha256_new();
    TL_ASSERT_OK(tl_sha256_update(hash, "a", 1));
    TL_ASSERT_OK(tl_sha256_update(hash, "bc", 2));
    char streamed[TL_SHA256_HEX_LEN];
    TL_ASSERT_OK(tl_sha256_final(hash, streamed));
    assert_string_equal(streamed, hex);
    tl_sha256_free(hash);
    assert_false(
        tl_sha256_hex_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(tl_sha256_hex_valid("../etc"));
    assert_false(tl_sha256_hex_valid(NULL));
    char longer[66];
    memcpy(longer, hex, 64);
    longer[64] = 'a';
    longer[65] = 0;
    assert_false(tl_sha256_hex_valid(longer));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_generated_codes_normalize_to_themselves),
    cmocka_unit_test(test_typed_codes_are_forgiven),
    cmocka_unit_test(test_malformed_codes_rejected),
    cmocka_unit_test(test_string_round_trip),
    cmocka_unit_test(test_malformed_strings_rejected),
    cmocka_unit_test(test_catalogue_key_is_an_optional_field),
    cmocka_unit_test(test_sha256_hex_known_answer),
};

TL_TEST_MAIN(tests)
