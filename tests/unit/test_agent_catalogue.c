/* The agent's installed catalogue (agent/catalogue.h): installs, refusals that change nothing,
 * rollback, and what is queued for the relay. */
#include "tl_test.h"

#include "agent/catalogue.h"
#include "proto/catalogue.h"
#include "proto/keys.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char metadata[] = "{\"name\":\"say\",\"description\":\"Say\",\"min_role\":\"tier1\","
                               "\"privileged\":false}";

struct fixture {
    char dir[64];
    EVP_PKEY *key;
    char fingerprint[TL_FINGERPRINT_LEN];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/tl-agent-catalogue-XXXXXX");
    if (mkdtemp(f->dir) == NULL || tl_key_generate(&f->key) != 0 ||
        tl_fingerprint(f->key, f->fingerprint) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", f->dir);
    if (system(command) != 0)
        return -1;
    EVP_PKEY_free(f->key);
    free(f);
    return 0;
}

/* A package of one runbook whose script says word. */
static uint8_t *make(EVP_PKEY *key, uint64_t version, const char *word, size_t *len)
{
    char script[64], why[256];
    snprintf(script, sizeof script, "#!/bin/sh\necho %s\n", word);
    tl_catalogue_file_t files[] = {
        {"runbooks/say", (const uint8_t *)script, strlen(script), 1},
        {"runbooks/say.json", (const uint8_t *)metadata, strlen(metadata), 0},
    };
    uint8_t *out = NULL;
    assert_int_equal(tl_catalogue_build(files, 2, version, 0, key, &out, len, why, sizeof why), 0);
    return out;
}

static void install(struct fixture *f, uint64_t version, const char *word, int expect)
{
    size_t len;
    uint8_t *data = make(f->key, version, word, &len);
    uint64_t installed = 99;
    char why[TL_AGENT_CATALOGUE_WHY];
    TL_ASSERT_RC(expect, tl_agent_catalogue_install(f->dir, f->fingerprint, data, len, &installed,
                                                    why, sizeof why));
    free(data);
}

/* The say script of the catalogue in use, and its mode. */
static void expect_current(struct fixture *f, uint64_t version, const char *word)
{
    char runbooks[4096], path[4200], text[64] = "";
    uint64_t current = 0;
    TL_ASSERT_OK(tl_agent_catalogue_dirs(f->dir, runbooks, sizeof runbooks, NULL, 0, &current));
    assert_int_equal(current, version);
    snprintf(path, sizeof path, "%s/say", runbooks);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    size_t n = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[n] = '\0';
    assert_non_null(strstr(text, word));
    struct stat st;
    TL_ASSERT_OK(stat(path, &st));
    assert_int_equal(st.st_mode & 07777, 0755);
}

static void test_installs_keep_one_previous_and_refusals_change_nothing(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_RC(TL_ENOTFOUND, tl_agent_catalogue_dirs(f->dir, NULL, 0, NULL, 0, NULL));
    install(f, 1, "one", 0);
    install(f, 2, "two", 0);
    install(f, 3, "three", 0);
    expect_current(f, 3, "three");
    tl_agent_catalogue_state_t installed;
    TL_ASSERT_OK(tl_agent_catalogue_state(f->dir, &installed));
    assert_int_equal(installed.previous, 2);
    assert_int_equal(installed.highest, 3);
    char old[128];
    snprintf(old, sizeof old, "%s/catalogue/1", f->dir);
    assert_int_not_equal(access(old, F_OK), 0); /* only current and previous are kept */
    /* Replays, older ones and another key's: refused, nothing changed. */
    install(f, 3, "again", TL_EOLDER);
    install(f, 2, "older", TL_EOLDER);
    EVP_PKEY *mine = f->key;
    TL_ASSERT_OK(tl_key_generate(&f->key));
    install(f, 4, "evil", TL_EUNTRUSTED);
    EVP_PKEY_free(f->key);
    f->key = mine;
    expect_current(f, 3, "three");
    json_t *reports = tl_agent_catalogue_reports(f->dir);
    assert_int_equal(json_array_size(reports), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(reports, 5), "event")),
                        "refused");
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(reports, 5), "reason")),
                           "not by the"));
    json_decref(reports);
    TL_ASSERT_OK(tl_agent_catalogue_reports_done(f->dir, 5));
    reports = tl_agent_catalogue_reports(f->dir);
    assert_int_equal(json_array_size(reports), 1);
    json_decref(reports);
}

static void test_rollback_goes_back_one_and_sticks(void **state)
{
    struct fixture *f = *state;
    uint64_t from, to;
    char why[TL_AGENT_CATALOGUE_WHY];
    TL_ASSERT_RC(TL_ENOTFOUND, tl_agent_catalogue_rollback(f->dir, &from, &to, why, sizeof why));
    assert_non_null(strstr(why, "no catalogue is installed"));
    install(f, 1, "one", 0);
    install(f, 2, "two", 0);
    TL_ASSERT_OK(tl_agent_catalogue_rollback(f->dir, &from, &to, why, sizeof why));
    assert_int_equal(from, 2);
    assert_int_equal(to, 1);
    expect_current(f, 1, "one");
    TL_ASSERT_RC(TL_ENOTFOUND, tl_agent_catalogue_rollback(f->dir, &from, &to, why, sizeof why));
    assert_non_null(strstr(why, "no previous catalogue"));
    /* Version 2 does not come back; 3 does. */
    install(f, 2, "two", TL_EOLDER);
    expect_current(f, 1, "one");
    install(f, 3, "three", 0);
    tl_agent_catalogue_state_t installed;
    TL_ASSERT_OK(tl_agent_catalogue_state(f->dir, &installed));
    assert_int_equal(installed.current, 3);
    assert_int_equal(installed.previous, 1);
}

static void test_without_a_pinned_key_nothing_installs(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *data = make(f->key, 1, "one", &len);
    uint64_t version;
    char why[TL_AGENT_CATALOGUE_WHY];
    TL_ASSERT_RC(TL_ENOTRUST,
                 tl_agent_catalogue_install(f->dir, "", data, len, &version, why, sizeof why));
    assert_non_null(strstr(why, "enrolled without one"));
    free(data);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_agent_catalogue_dirs(f->dir, NULL, 0, NULL, 0, NULL));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_installs_keep_one_previous_and_refusals_change_nothing,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_rollback_goes_back_one_and_sticks, setup, teardown),
    cmocka_unit_test_setup_teardown(test_without_a_pinned_key_nothing_installs, setup, teardown),
};

TL_TEST_MAIN(tests)
