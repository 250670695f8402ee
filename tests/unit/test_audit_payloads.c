/*
 * The payloads the audit log names against the evidence store (relay/store/audit_payloads.h), the
 * verifier rule of docs/audit-format.md §22: present and whole passes; missing passes only with a
 * tombstone, and is counted; missing without one fails naming the entry; a tombstone does not
 * excuse a damaged payload; a tombstoned payload still present is counted as such.
 */
#include "tl_test.h"

#include "relay/store/audit.h"
#include "relay/store/audit_payloads.h"
#include "relay/store/evidence.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char tmp[64], log[128], store_dir[128];
    tl_evidence_store_t *store;
    char recording[TL_EVIDENCE_HASH_HEX], transcript[TL_EVIDENCE_HASH_HEX],
        diagnostics[TL_EVIDENCE_HASH_HEX];
    FILE *text;
    char *said;
    size_t said_len;
};

/* One line naming hash in details.sha256, with kind; prev is not chained (not checked here). */
static void append(FILE *log, uint64_t seq, const char *action, const char *kind, const char *hash)
{
    json_t *details = json_pack("{s:s, s:s, s:s}", "ticket", "T-1", "sha256", hash, "kind", kind);
    char *line = NULL;
    size_t len = 0;
    assert_non_null(details);
    TL_ASSERT_OK(tl_audit_format_line(seq, "2026-11-01T10:00:00.000Z", "relay", action, "T-1",
                                      details,
                                      "0000000000000000000000000000000000000000000000000000000000"
                                      "000000",
                                      &line, &len));
    assert_int_equal(fwrite(line, 1, len, log), len);
    free(line);
    json_decref(details);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->tmp, "/tmp/tl-payloads-XXXXXX");
    if (mkdtemp(f->tmp) == NULL)
        return -1;
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->tmp);
    snprintf(f->store_dir, sizeof f->store_dir, "%s/evidence", f->tmp);
    if (tl_evidence_store_open(f->store_dir, NULL, &f->store) != 0 ||
        tl_evidence_put(f->store, "a recording", 11, f->recording) != 0 ||
        tl_evidence_put(f->store, "a transcript", 12, f->transcript) != 0 ||
        tl_evidence_put(f->store, "a report", 8, f->diagnostics) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->text != NULL)
        fclose(f->text);
    free(f->said);
    tl_evidence_store_close(f->store);
    char command[256];
    snprintf(command, sizeof command, "chmod -R u+w %s && rm -rf %s", f->tmp, f->tmp);
    if (system(command) != 0)
        return -1;
    free(f);
    return 0;
}

/* The log: a recording, a transcript and a diagnostics report, each named by its entry; then
 * the tombstones given (hashes, NULL-terminated). */
static void write_log(struct fixture *f, const char *const *tombstones)
{
    FILE *log = fopen(f->log, "w");
    assert_non_null(log);
    uint64_t seq = 1;
    append(log, seq++, "session.recorded", "recording", f->recording);
    append(log, seq++, "evidence.add", "command", f->transcript);
    append(log, seq++, "evidence.store", "diagnostics", f->diagnostics);
    for (size_t i = 0; tombstones[i] != NULL; i++)
        append(log, seq++, "evidence.prune", "recording", tombstones[i]);
    fclose(log);
}

static void remove_payload(struct fixture *f, const char *hash)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%.2s", f->store_dir, hash);
    chmod(path, 0700);
    TL_ASSERT_OK(tl_evidence_remove(f->store, hash));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_evidence_remove(f->store, hash));
}

/* Runs the check: its result, with the verdict's "payloads" in *payloads and the words said. */
static int run(struct fixture *f, json_t **verdict)
{
    *verdict = json_pack("{s:b, s:s}", "ok", 1, "verdict", "ok");
    f->text = open_memstream(&f->said, &f->said_len);
    int rc = tl_audit_payloads_verify(f->log, f->store, *verdict, f->text);
    fclose(f->text);
    f->text = NULL;
    return rc;
}

static json_int_t member(json_t *verdict, const char *part, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(verdict, part), name));
}

static void test_every_payload_present_passes(void **state)
{
    struct fixture *f = *state;
    write_log(f, (const char *const[]){NULL});
    json_t *verdict;
    TL_ASSERT_OK(run(f, &verdict));
    assert_int_equal(member(verdict, "payloads", "checked"), 3);
    assert_int_equal(member(verdict, "payloads", "pruned"), 0);
    assert_int_equal(member(verdict, "recordings", "checked"), 1);
    assert_non_null(strstr(f->said, "payloads OK: 3 checked against their entries (1 recordings), "
                                    "0 payloads pruned by retention"));
    json_decref(verdict);
}

static void test_a_payload_missing_with_its_tombstone_passes_and_is_counted(void **state)
{
    struct fixture *f = *state;
    write_log(f, (const char *const[]){f->recording, f->transcript, NULL});
    remove_payload(f, f->recording);
    remove_payload(f, f->transcript);
    json_t *verdict;
    TL_ASSERT_OK(run(f, &verdict));
    assert_true(json_is_true(json_object_get(verdict, "ok")));
    assert_int_equal(member(verdict, "payloads", "pruned"), 2);
    assert_int_equal(member(verdict, "recordings", "pruned"), 1);
    assert_non_null(strstr(f->said, "2 payloads pruned by retention"));
    json_decref(verdict);
}

static void test_a_payload_missing_without_a_tombstone_fails_naming_it(void **state)
{
    struct fixture *f = *state;
    write_log(f, (const char *const[]){f->recording, NULL}); /* the recording's, not this one's */
    remove_payload(f, f->diagnostics);
    json_t *verdict;
    TL_ASSERT_RC(TL_EVERIFY, run(f, &verdict));
    assert_true(json_is_false(json_object_get(verdict, "ok")));
    assert_string_equal(json_string_value(json_object_get(verdict, "verdict")), "broken");
    json_t *bad = json_array_get(json_object_get(json_object_get(verdict, "payloads"), "bad"), 0);
    assert_string_equal(json_string_value(json_object_get(bad, "sha256")), f->diagnostics);
    assert_string_equal(json_string_value(json_object_get(bad, "action")), "evidence.store");
    assert_int_equal(json_integer_value(json_object_get(bad, "index")), 2);
    char line[256];
    snprintf(line, sizeof line,
             "evidence BROKEN: entry 2 (seq 3, evidence.store) names sha256 %s: missing from the "
             "evidence store, and no tombstone",
             f->diagnostics);
    assert_non_null(strstr(f->said, line));
    json_decref(verdict);
}

static void test_a_tombstone_does_not_excuse_a_damaged_payload(void **state)
{
    struct fixture *f = *state;
    write_log(f, (const char *const[]){f->recording, NULL});
    /* The recording's object replaced by another's bytes: there, but not what its name says. */
    char from[256], to[256];
    snprintf(from, sizeof from, "%s/%.2s/%s", f->store_dir, f->transcript, f->transcript);
    snprintf(to, sizeof to, "%s/%.2s/%s", f->store_dir, f->recording, f->recording);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%.2s", f->store_dir, f->recording);
    chmod(dir, 0700);
    unlink(to);
    assert_int_equal(link(from, to), 0);
    json_t *verdict;
    TL_ASSERT_RC(TL_EVERIFY, run(f, &verdict));
    assert_non_null(strstr(f->said, "recording BROKEN: entry 0 (seq 1, session.recorded)"));
    assert_int_equal(member(verdict, "payloads", "pruned"), 0);
    assert_true(json_is_false(json_object_get(verdict, "ok")));
    json_decref(verdict);
}

static void test_a_tombstoned_payload_still_present_is_said_and_checked(void **state)
{
    struct fixture *f = *state;
    write_log(f, (const char *const[]){f->transcript, NULL});
    json_t *verdict;
    TL_ASSERT_OK(run(f, &verdict));
    assert_int_equal(member(verdict, "payloads", "still_present"), 1);
    assert_int_equal(member(verdict, "payloads", "pruned"), 0);
    char line[256];
    snprintf(line, sizeof line,
             "payload %s is tombstoned at entry 3 (evidence.prune) but still "
             "present",
             f->transcript);
    assert_non_null(strstr(f->said, line));
    json_decref(verdict);
}

static void test_without_a_store_every_payload_named_is_missing(void **state)
{
    struct fixture *f = *state;
    write_log(f, (const char *const[]){f->recording, NULL});
    json_t *verdict = json_pack("{s:b, s:s}", "ok", 1, "verdict", "ok");
    TL_ASSERT_RC(TL_EVERIFY, tl_audit_payloads_verify(f->log, NULL, verdict, NULL));
    assert_int_equal(member(verdict, "payloads", "pruned"), 1);
    assert_int_equal(json_array_size(json_object_get(json_object_get(verdict, "payloads"), "bad")),
                     2);
    json_decref(verdict);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_every_payload_present_passes, setup, teardown),
    cmocka_unit_test_setup_teardown(test_a_payload_missing_with_its_tombstone_passes_and_is_counted,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_a_payload_missing_without_a_tombstone_fails_naming_it,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_a_tombstone_does_not_excuse_a_damaged_payload, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_a_tombstoned_payload_still_present_is_said_and_checked,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_without_a_store_every_payload_named_is_missing, setup,
                                    teardown),
};

TL_TEST_MAIN(tests)
