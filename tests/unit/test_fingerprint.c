/*
 * Diagnostic fingerprints and the title match (relay/desk/fingerprint.h, docs/desk.md
 * "Diagnostic fingerprints"): the same conditions on two machines give the same fingerprint,
 * cosmetic differences change nothing, a different condition gives another, and the digest is
 * the documented one.
 */
#include "diag_doc.h"

#include "proto/buf.h"
#include "relay/desk/fingerprint.h"

#include <jansson.h>
#include <stdlib.h>

static char why[256];

static tl_fingerprint_t fingerprint_of(const json_t *doc)
{
    tl_fingerprint_t out;
    tl_classify_findings_t *findings = diag_doc_findings(doc);
    TL_ASSERT_OK(tl_fingerprint_compute(findings, &out));
    tl_classify_findings_free(findings);
    return out;
}

static char *conditions_of(const json_t *doc)
{
    tl_buf_t *text = tl_buf_new(1 << 20);
    tl_classify_findings_t *findings = diag_doc_findings(doc);
    TL_ASSERT_OK(tl_fingerprint_conditions(findings, text));
    tl_classify_findings_free(findings);
    char *out;
    size_t len;
    TL_ASSERT_OK(tl_buf_take_string(text, &out, &len));
    tl_buf_free(text);
    return out;
}

/* The documented example: /var full and CUPS failed. */
static json_t *cups_and_var(void)
{
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.disks.mounts.2",
                 "{\"mount\":\"/var\",\"used_percent\":97.4,\"read_only\":false}");
    diag_doc_set(doc, "sections.services.failed_units.0",
                 "{\"unit\":\"cups.service\",\"load\":\"loaded\",\"active\":\"failed\","
                 "\"sub\":\"failed\",\"description\":\"CUPS Scheduler\"}");
    diag_doc_set(doc, "sections.services.failed_count", "1");
    return doc;
}

/* The same machine state seen on another machine, on another day. */
static json_t *cups_and_var_elsewhere(void)
{
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "host", "\"ws-accounts-03\"");
    diag_doc_set(doc, "collected_at", "\"2026-12-24T17:02:44Z\"");
    diag_doc_set(doc, "sections.system.hostname", "\"ws-accounts-03\"");
    diag_doc_set(doc, "sections.system.uptime_seconds", "912");
    diag_doc_set(doc, "sections.time.utc_time", "\"2026-12-24T17:02:44Z\"");
    diag_doc_set(doc, "sections.processes.top_cpu.0.pid", "31337");
    diag_doc_set(doc, "sections.processes.top_cpu.0.cpu_percent", "41.2");
    diag_doc_set(doc, "sections.memory.used_percent", "71.5");
    diag_doc_set(doc, "sections.network.interfaces.1.name", "\"enp5s0\"");
    diag_doc_set(doc, "sections.network.interfaces.1.addresses", "[\"10.1.7.33/16\"]");
    diag_doc_set(doc, "sections.logs.lines.0", "\"2026-12-24T17:00:00+0100 ws-accounts-03 x\"");
    /* Other mounts, in another order; /var fuller, but still past the line. */
    diag_doc_set(doc, "sections.disks.mounts.0",
                 "{\"mount\":\"/var\",\"used_percent\":99.9,\"read_only\":false}");
    diag_doc_set(doc, "sections.disks.mounts.2",
                 "{\"mount\":\"/\",\"used_percent\":12,\"read_only\":false}");
    diag_doc_set(doc, "sections.services.failed_units.0", "{\"unit\":\"cups.service\"}");
    return doc;
}

/* A copy of value with every object's keys in reverse order. */
static json_t *reversed(const json_t *value)
{
    if (json_is_array(value)) {
        json_t *copy = json_array();
        for (size_t i = 0; i < json_array_size(value); i++)
            json_array_append_new(copy, reversed(json_array_get(value, i)));
        return copy;
    }
    if (!json_is_object(value))
        return json_deep_copy(value);
    const char *keys[64];
    size_t count = 0;
    const char *key;
    json_t *member;
    json_object_foreach((json_t *)value, key, member) {
        if (count < 64)
            keys[count++] = key;
    }
    json_t *copy = json_object();
    while (count > 0) {
        count--;
        json_object_set_new(copy, keys[count], reversed(json_object_get(value, keys[count])));
    }
    return copy;
}

static void test_the_canonical_text_and_digest_are_the_documented_ones(void **state)
{
    (void)state;
    json_t *doc = cups_and_var();
    char *text = conditions_of(doc);
    assert_string_equal(text, "tierline-fingerprint 1\n"
                              "disk-full /var\n"
                              "service-failed-printing cups.service\n");
    char hex[TL_SHA256_HEX_LEN];
    TL_ASSERT_OK(tl_sha256_hex(text, strlen(text), hex));
    tl_fingerprint_t fingerprint = fingerprint_of(doc);
    assert_string_equal(fingerprint.hex, hex);
    assert_int_equal(fingerprint.condition_count, 2);
    /* docs/desk.md shows this digest, checked there with printf and sha256sum. */
    assert_string_equal(fingerprint.hex,
                        "a45f806ff4710e57c4f687b14bc5ad7bbe83f3a21d81c899f14fbcb672c617ba");
    free(text);
    json_decref(doc);
}

static void test_the_same_conditions_on_two_machines_give_the_same_fingerprint(void **state)
{
    (void)state;
    json_t *one = cups_and_var();
    json_t *other = cups_and_var_elsewhere();
    tl_fingerprint_t a = fingerprint_of(one);
    tl_fingerprint_t b = fingerprint_of(other);
    assert_int_equal(a.condition_count, 2);
    assert_string_equal(a.hex, b.hex);
    json_decref(one);
    json_decref(other);
}

static void test_key_order_and_row_order_change_nothing(void **state)
{
    (void)state;
    json_t *doc = cups_and_var();
    diag_doc_set(doc, "sections.services.failed_units.1", "{\"unit\":\"snapd.service\"}");
    diag_doc_set(doc, "sections.services.failed_units.2", "{\"unit\":\"bluetooth.service\"}");
    diag_doc_set(doc, "sections.disks.mounts.3",
                 "{\"mount\":\"/home\",\"used_percent\":99,\"read_only\":false}");
    json_t *shuffled = reversed(doc);
    /* The failed units and the mounts the other way round too. */
    static const char *const lists[][2] = {{"services", "failed_units"}, {"disks", "mounts"}};
    for (size_t l = 0; l < 2; l++) {
        json_t *section = json_object_get(json_object_get(shuffled, "sections"), lists[l][0]);
        json_t *rows = json_object_get(section, lists[l][1]);
        json_t *backwards = json_array();
        for (size_t i = json_array_size(rows); i > 0; i--)
            json_array_append(backwards, json_array_get(rows, i - 1));
        json_object_set_new(section, lists[l][1], backwards);
    }
    char *a_text = json_dumps(doc, JSON_COMPACT);
    char *b_text = json_dumps(shuffled, JSON_COMPACT);
    assert_string_not_equal(a_text, b_text);
    tl_fingerprint_t a = fingerprint_of(doc);
    tl_fingerprint_t b = fingerprint_of(shuffled);
    assert_int_equal(a.condition_count, 5);
    assert_string_equal(a.hex, b.hex);
    free(a_text);
    free(b_text);
    json_decref(doc);
    json_decref(shuffled);
}

static void test_a_different_failing_service_gives_another_fingerprint(void **state)
{
    (void)state;
    json_t *cups = cups_and_var();
    json_t *sssd = cups_and_var();
    diag_doc_set(sssd, "sections.services.failed_units.0", "{\"unit\":\"sssd.service\"}");
    json_t *none = cups_and_var();
    diag_doc_set(none, "sections.services.failed_units", "[]");
    tl_fingerprint_t a = fingerprint_of(cups);
    tl_fingerprint_t b = fingerprint_of(sssd);
    tl_fingerprint_t c = fingerprint_of(none);
    assert_string_not_equal(a.hex, b.hex);
    assert_string_not_equal(a.hex, c.hex);
    assert_string_not_equal(b.hex, c.hex);
    json_decref(cups);
    json_decref(sssd);
    json_decref(none);
}

static void test_a_different_mount_or_bucket_gives_another_fingerprint(void **state)
{
    (void)state;
    json_t *var = cups_and_var();
    json_t *home = cups_and_var();
    diag_doc_set(home, "sections.disks.mounts.2.mount", "\"/home\"");
    json_t *nearly = cups_and_var();
    diag_doc_set(nearly, "sections.disks.mounts.2.used_percent", "93");
    json_t *fuller = cups_and_var();
    diag_doc_set(fuller, "sections.disks.mounts.2.used_percent", "100");
    tl_fingerprint_t a = fingerprint_of(var);
    assert_string_not_equal(a.hex, fingerprint_of(home).hex);
    /* 93% is not "full": that condition is gone, only CUPS is left. */
    tl_fingerprint_t b = fingerprint_of(nearly);
    assert_string_not_equal(a.hex, b.hex);
    assert_int_equal(b.condition_count, 1);
    /* 97% and 100% are the same bucket. */
    assert_string_equal(a.hex, fingerprint_of(fuller).hex);
    json_decref(var);
    json_decref(home);
    json_decref(nearly);
    json_decref(fuller);
}

static void test_a_template_units_instance_is_left_out(void **state)
{
    (void)state;
    json_t *one = diag_doc_new();
    diag_doc_set(one, "sections.services.failed_units.0",
                 "{\"unit\":\"openvpn-client@work.service\"}");
    json_t *other = diag_doc_new();
    diag_doc_set(other, "sections.services.failed_units.0",
                 "{\"unit\":\"openvpn-client@home-office.service\"}");
    char *text = conditions_of(one);
    assert_string_equal(text, "tierline-fingerprint 1\nservice-failed openvpn-client@.service\n");
    assert_string_equal(fingerprint_of(one).hex, fingerprint_of(other).hex);
    free(text);
    json_decref(one);
    json_decref(other);
}

static void test_volatile_findings_do_not_count(void **state)
{
    (void)state;
    json_t *busy = diag_doc_new();
    diag_doc_set(busy, "sections.cpu.usage.busy_percent", "99");
    diag_doc_set(busy, "sections.memory.used_percent", "92");
    diag_doc_set(busy, "sections.processes.top_cpu.0.cpu_percent", "99");
    diag_doc_set(busy, "sections.disks.mounts.0.used_percent", "91");
    tl_classify_findings_t *findings = diag_doc_findings(busy);
    assert_int_equal(tl_classify_findings_count(findings), 4);
    tl_fingerprint_t out;
    TL_ASSERT_OK(tl_fingerprint_compute(findings, &out));
    assert_string_equal(out.hex, "");
    assert_int_equal(out.condition_count, 0);
    tl_classify_findings_free(findings);
    json_decref(busy);
}

static void test_no_condition_and_no_diagnostics_have_no_fingerprint(void **state)
{
    (void)state;
    json_t *healthy = diag_doc_new();
    tl_fingerprint_t out = fingerprint_of(healthy);
    assert_string_equal(out.hex, "");
    char *text = conditions_of(healthy);
    assert_string_equal(text, "");
    free(text);
    memset(&out, 0x5a, sizeof out);
    TL_ASSERT_OK(tl_fingerprint_compute(NULL, &out));
    assert_string_equal(out.hex, "");
    assert_int_equal(out.condition_count, 0);
    json_decref(healthy);
}

static void test_keys_are_written_unambiguously(void **state)
{
    (void)state;
    json_t *doc = diag_doc_new();
    diag_doc_set(doc, "sections.disks.mounts.2",
                 "{\"mount\":\"/mnt/my share%20\\n\\u00e9\",\"used_percent\":99}");
    char *text = conditions_of(doc);
    assert_string_equal(text, "tierline-fingerprint 1\ndisk-full /mnt/my%20share%2520%0A%C3%A9\n");
    free(text);
    /* The same condition twice (a hostile document) is one condition. */
    diag_doc_set(doc, "sections.services.failed_units.0", "{\"unit\":\"cups.service\"}");
    diag_doc_set(doc, "sections.services.failed_units.1", "{\"unit\":\"cups.service\"}");
    assert_int_equal(fingerprint_of(doc).condition_count, 2);
    json_decref(doc);
}

/* --- the title match ------------------------------------------------------------------------ */

static tl_fingerprint_text_match_t match(const char *title, const char *description,
                                         const char *problem)
{
    tl_fingerprint_text_match_t out;
    TL_ASSERT_OK(tl_fingerprint_text_match(title, description, problem, &out, why, sizeof why));
    return out;
}

static void test_a_ticket_that_speaks_of_the_problem_matches_it(void **state)
{
    (void)state;
    tl_fingerprint_text_match_t m =
        match("Can't print", "My printer shows offline since the CUPS update this morning",
              "Printers offline after CUPS update");
    /* printer, offline, cups, update: all four, plural or not. */
    assert_int_equal(m.title_words, 4);
    assert_int_equal(m.shared_words, 4);
    assert_int_equal(m.per_mille, 1000);
    assert_true(m.matches);
    tl_fingerprint_text_match_t other =
        match("Printer jammed", "Paper stuck in tray 2", "Printers offline after CUPS update");
    assert_int_equal(other.shared_words, 1);
    assert_false(other.matches);
}

static void test_the_threshold_is_three_fifths_and_two_words(void **state)
{
    (void)state;
    const char *problem = "VPN drops every hour on Wi-Fi"; /* vpn drops hour wi fi: 5 words */
    tl_fingerprint_text_match_t three = match("VPN drops", "on the wifi, fi", problem);
    assert_int_equal(three.title_words, 5);
    assert_int_equal(three.shared_words, 3);
    assert_int_equal(three.per_mille, 600);
    assert_true(three.matches);
    tl_fingerprint_text_match_t two = match("VPN drops", NULL, problem);
    assert_int_equal(two.per_mille, 400);
    assert_false(two.matches);
    /* A one-word title needs its word; a two-word title both. */
    assert_true(match("Outlook is broken", NULL, "Outlook").matches);
    tl_fingerprint_text_match_t half = match("Outlook is broken", NULL, "Outlook calendar");
    assert_int_equal(half.per_mille, 500);
    assert_false(half.matches);
}

static void test_common_words_and_case_do_not_count(void **state)
{
    (void)state;
    tl_fingerprint_text_match_t m =
        match("THE PROBLEM IS THAT IT DOES NOT WORK", NULL, "The problem: it does not work");
    assert_int_equal(m.title_words, 1); /* only "work" */
    assert_true(m.matches);
    tl_fingerprint_text_match_t none = match("anything", NULL, "The problem is not a problem");
    assert_int_equal(none.title_words, 0);
    assert_int_equal(none.per_mille, 0);
    assert_false(none.matches);
    for (size_t i = 0; tl_fingerprint_stop_words[i] != NULL; i++)
        assert_int_equal(
            match(tl_fingerprint_stop_words[i], NULL, tl_fingerprint_stop_words[i]).title_words, 0);
}

static void test_a_huge_text_is_refused(void **state)
{
    (void)state;
    char *text = malloc(TL_CLASSIFY_TEXT_MAX + 2);
    assert_non_null(text);
    memset(text, 'w', TL_CLASSIFY_TEXT_MAX + 1);
    text[TL_CLASSIFY_TEXT_MAX + 1] = '\0';
    tl_fingerprint_text_match_t out, before;
    memset(&out, 0x5a, sizeof out);
    before = out;
    TL_ASSERT_RC(TL_EINVAL, tl_fingerprint_text_match("a", text, "b", &out, why, sizeof why));
    assert_string_equal(
        why, "the ticket's description is 65537 bytes, more than the 65536 a match reads");
    TL_ASSERT_RC(TL_EINVAL, tl_fingerprint_text_match("a", "b", text, &out, why, sizeof why));
    assert_non_null(strstr(why, "the problem's title is 65537 bytes"));
    assert_memory_equal(&out, &before, sizeof out);
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_the_canonical_text_and_digest_are_the_documented_ones),
    cmocka_unit_test(test_the_same_conditions_on_two_machines_give_the_same_fingerprint),
    cmocka_unit_test(test_key_order_and_row_order_change_nothing),
    cmocka_unit_test(test_a_different_failing_service_gives_another_fingerprint),
    cmocka_unit_test(test_a_different_mount_or_bucket_gives_another_fingerprint),
    cmocka_unit_test(test_a_template_units_instance_is_left_out),
    cmocka_unit_test(test_volatile_findings_do_not_count),
    cmocka_unit_test(test_no_condition_and_no_diagnostics_have_no_fingerprint),
    cmocka_unit_test(test_keys_are_written_unambiguously),
    cmocka_unit_test(test_a_ticket_that_speaks_of_the_problem_matches_it),
    cmocka_unit_test(test_the_threshold_is_three_fifths_and_two_words),
    cmocka_unit_test(test_common_words_and_case_do_not_count),
    cmocka_unit_test(test_a_huge_text_is_refused),
};

TL_TEST_MAIN(tests)
