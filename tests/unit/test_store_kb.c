/* The knowledge base in the relay store, on real SQLite files: articles added, replaced with
 * their counts kept, listed, removed; self-help outcomes counted; a schema-5 file migrated. */
#include "tl_test.h"

#include "proto/hash.h"
#include "relay/store/store.h"
#include "relay/store/store_sqlite.h" /* the older schemas, to migrate from */

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char path[96];
    tl_store_t *store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/tl-store-kb-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    if (tl_store_open(f->path, TL_STORE_CREATE_NEW, &f->store) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* An article's row as `kb add` makes it, its hash computed from source. */
struct article {
    tl_kb_article_row_t row;
    char sha256[TL_SHA256_HEX_LEN];
};

static void article(struct article *a, const char *id, const char *title, const char *source)
{
    memset(a, 0, sizeof *a);
    TL_ASSERT_OK(tl_sha256_hex(source, strlen(source), a->sha256));
    a->row = (tl_kb_article_row_t){.id = id,
                                   .title = title,
                                   .category = "disk",
                                   .runbook = "clean-temp",
                                   .source = source,
                                   .sha256 = a->sha256,
                                   .added_by = "admin"};
}

static void outcome(tl_store_t *store, const char *id, tl_kb_stage_t stage, int64_t time)
{
    tl_kb_outcome_row_t row = {.article_id = id, .time = time, .stage = stage};
    TL_ASSERT_OK(tl_store_kb_outcome_add(store, &row));
}

static void test_article_added_read_back_whole(void **state)
{
    struct fixture *f = *state;
    struct article a;
    article(&a, "tmp-full", "The disk that holds /tmp is nearly full", "---\nid: tmp-full\n...");
    int replaced = -1;
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &a.row, 0, 5000, &replaced));
    assert_int_equal(replaced, 0);
    /* Reopened: the file holds it, source and hash byte for byte. */
    tl_store_close(f->store);
    TL_ASSERT_OK(tl_store_open(f->path, TL_STORE_OPEN_EXISTING, &f->store));
    tl_kb_article_row_t row;
    TL_ASSERT_OK(tl_store_kb_article_read(f->store, "tmp-full", &row));
    assert_string_equal(row.title, "The disk that holds /tmp is nearly full");
    assert_string_equal(row.category, "disk");
    assert_string_equal(row.runbook, "clean-temp");
    assert_string_equal(row.source, a.row.source);
    assert_string_equal(row.sha256, a.sha256);
    assert_string_equal(row.state, TL_KB_PUBLISHED);
    assert_string_equal(row.published_by, "admin");
    assert_int_equal(row.published, 5000);
    assert_int_equal(row.revision, 1);
    assert_int_equal(row.added, 5000);
    assert_int_equal(row.updated, 5000);
    assert_int_equal(row.ticket_id, 0);
    assert_int_equal(row.applied + row.recheck_passed + row.suggested, 0);
    tl_kb_article_row_clear(&row);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_kb_article_read(f->store, "tmp-ful", &row));
    assert_null(row.id);
}

static void test_duplicate_refused_unless_replaced_and_counts_kept(void **state)
{
    struct fixture *f = *state;
    struct article first, second;
    article(&first, "var-log-full", "Logs are filling /var", "first text");
    article(&second, "var-log-full", "Logs fill /var", "second text");
    second.row.runbook = NULL;
    second.row.added_by = "tech:carol";
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &first.row, 0, 1000, NULL));
    outcome(f->store, "var-log-full", TL_KB_SUGGESTED, 1100);
    outcome(f->store, "var-log-full", TL_KB_APPLIED, 1200);
    outcome(f->store, "var-log-full", TL_KB_RECHECK_PASSED, 1300);
    outcome(f->store, "var-log-full", TL_KB_APPLIED, 1400);
    outcome(f->store, "var-log-full", TL_KB_RECHECK_FAILED, 1500);

    /* A duplicate id changes nothing. */
    int replaced = -1;
    TL_ASSERT_RC(TL_EEXIST, tl_store_kb_article_add(f->store, &second.row, 0, 2000, &replaced));
    assert_int_equal(replaced, 0);
    tl_kb_article_row_t row;
    TL_ASSERT_OK(tl_store_kb_article_read(f->store, "var-log-full", &row));
    assert_string_equal(row.source, "first text");
    assert_int_equal(row.updated, 1000);
    tl_kb_article_row_clear(&row);

    /* Replaced: the new text, the counts and the first addition kept, one revision more. */
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &second.row, 1, 3000, &replaced));
    assert_int_equal(replaced, 1);
    TL_ASSERT_OK(tl_store_kb_article_read(f->store, "var-log-full", &row));
    assert_string_equal(row.source, "second text");
    assert_string_equal(row.sha256, second.sha256);
    assert_string_equal(row.title, "Logs fill /var");
    assert_null(row.runbook);
    assert_int_equal(row.revision, 2);
    assert_int_equal(row.added, 1000);
    assert_string_equal(row.added_by, "admin");
    assert_int_equal(row.updated, 3000);
    assert_int_equal(row.suggested, 1);
    assert_int_equal(row.applied, 2);
    assert_int_equal(row.recheck_passed, 1);
    tl_kb_article_row_clear(&row);
}

static void test_list_by_category_and_state_without_source(void **state)
{
    struct fixture *f = *state;
    struct article a, b, c;
    article(&a, "tmp-full", "tmp", "a");
    article(&b, "dns-resolver-failed", "dns", "b");
    b.row.category = "network";
    article(&c, "home-full", "home", "c");
    c.row.state = TL_KB_DRAFT;
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &b.row, 0, 2, NULL));
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &c.row, 0, 3, NULL));
    tl_kb_article_rows_t list;
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, NULL, NULL, &list));
    assert_int_equal(list.count, 3);
    const char *ids[] = {"dns-resolver-failed", "home-full", "tmp-full"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(list.rows[i].id, ids[i]);
        assert_null(list.rows[i].source);
    }
    assert_string_equal(list.rows[1].state, TL_KB_DRAFT);
    assert_null(list.rows[1].published_by);
    tl_kb_article_rows_free(&list);
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, "disk", NULL, &list));
    assert_int_equal(list.count, 2);
    tl_kb_article_rows_free(&list);
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, "disk", TL_KB_PUBLISHED, &list));
    assert_int_equal(list.count, 1);
    assert_string_equal(list.rows[0].id, "tmp-full");
    tl_kb_article_rows_free(&list);
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, "printing", NULL, &list));
    assert_int_equal(list.count, 0);
    tl_kb_article_rows_free(&list);
}

static void test_remove_keeps_outcomes_and_unknown_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct article a;
    article(&a, "tmp-full", "tmp", "a");
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    outcome(f->store, "tmp-full", TL_KB_APPLIED, 10);
    TL_ASSERT_OK(tl_store_kb_article_remove(f->store, "tmp-full"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_kb_article_remove(f->store, "tmp-full"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_kb_article_remove(f->store, "no-such"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_kb_article_remove(f->store, "Not An Id"));
    tl_kb_article_rows_t list;
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, NULL, NULL, &list));
    assert_int_equal(list.count, 0);
    tl_kb_article_rows_free(&list);
    /* The report still has what happened while it was there. */
    sqlite3 *db;
    sqlite3_stmt *stmt;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT article_id, stage FROM kb_outcomes", -1, &stmt, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "tmp-full");
    assert_string_equal((const char *)sqlite3_column_text(stmt, 1), "applied");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_bad_rows_refused_and_nothing_stored(void **state)
{
    struct fixture *f = *state;
    struct article a;
    const char *bad_ids[] = {"",         "-tmp",
                             "Tmp",      "tmp full",
                             "tmp/full", "a23456789012345678901234567890123456789012345678x"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        article(&a, bad_ids[i], "t", "s");
        TL_ASSERT_RC(TL_EINVAL, tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    }
    article(&a, "ok", "", "s");
    TL_ASSERT_RC(TL_EINVAL, tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    article(&a, "ok", "t", "s");
    a.row.sha256 = "not a hash";
    TL_ASSERT_RC(TL_EINVAL, tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    article(&a, "ok", "t", "s");
    a.row.state = "public";
    TL_ASSERT_RC(TL_EINVAL, tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    article(&a, "ok", "t", "s");
    a.row.ticket_id = 42; /* no such ticket */
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    char *big = malloc(TL_STORE_MAX_ARTICLE + 2);
    memset(big, 'x', TL_STORE_MAX_ARTICLE + 1);
    big[TL_STORE_MAX_ARTICLE + 1] = '\0';
    article(&a, "ok", "t", big);
    TL_ASSERT_RC(TL_EINVAL, tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    free(big);
    tl_kb_article_rows_t list;
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, NULL, NULL, &list));
    assert_int_equal(list.count, 0);
    tl_kb_article_rows_free(&list);
    tl_kb_outcome_row_t bad = {.article_id = "ok", .stage = (tl_kb_stage_t)9};
    TL_ASSERT_RC(TL_EINVAL, tl_store_kb_outcome_add(f->store, &bad));
    bad.stage = TL_KB_APPLIED;
    bad.device_id = 7; /* no such device */
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_kb_outcome_add(f->store, &bad));
}

static int add_batch(tl_store_t *store, void *arg)
{
    struct article *items = arg;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = tl_store_kb_article_add(store, &items[i].row, 0, 2, NULL);
    return rc;
}

static void test_unit_rolls_back_every_article(void **state)
{
    struct fixture *f = *state;
    struct article a, items[3];
    article(&a, "tmp-full", "tmp", "a");
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &a.row, 0, 1, NULL));
    article(&items[0], "home-full", "home", "b");
    article(&items[1], "cpu-hog", "cpu", "c");
    article(&items[2], "tmp-full", "tmp again", "d");
    TL_ASSERT_RC(TL_EEXIST, tl_store_unit_run(f->store, add_batch, items));
    tl_kb_article_rows_t list;
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, NULL, NULL, &list));
    assert_int_equal(list.count, 1);
    assert_string_equal(list.rows[0].id, "tmp-full");
    assert_string_equal(list.rows[0].title, "tmp");
    tl_kb_article_rows_free(&list);
}

static void test_schema_five_file_is_migrated(void **state)
{
    struct fixture *f = *state;
    tl_store_close(f->store);
    f->store = NULL;
    /* A file as the previous release left it: schema 5, a device with a ticket. */
    assert_int_equal(unlink(f->path), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(sqlite3_exec(db, tl__sqlite_migrations[i], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO devices (fingerprint, hostname, os, first_seen, last_seen) "
                     "VALUES ('SHA256:x', 'laptop', 'linux', 1, 1);"
                     "INSERT INTO tickets (device_id, title, description, tier, status, created, "
                     "updated) VALUES (1, 'full disk', '', 1, 'resolved', 1000, 2000);"
                     "PRAGMA user_version = 5",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    TL_ASSERT_OK(tl_store_open(f->path, TL_STORE_OPEN_EXISTING, &f->store));
    assert_int_equal(tl_store_schema_version(f->store), TL_STORE_SCHEMA_VERSION);
    /* A draft from the resolved ticket, and an outcome on the device, fit the new tables. */
    struct article a;
    article(&a, "tmp-full", "tmp", "a");
    a.row.state = TL_KB_DRAFT;
    a.row.ticket_id = 1;
    a.row.added_by = "tech:carol";
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &a.row, 0, 3000, NULL));
    tl_kb_outcome_row_t done = {.article_id = "tmp-full",
                                .device_id = 1,
                                .time = 3100,
                                .stage = TL_KB_RECHECK_PASSED,
                                .runbook = "clean-temp",
                                .fingerprint = "abc",
                                .ticket_id = 0};
    TL_ASSERT_OK(tl_store_kb_outcome_add(f->store, &done));
    tl_kb_article_row_t row;
    TL_ASSERT_OK(tl_store_kb_article_read(f->store, "tmp-full", &row));
    assert_int_equal(row.ticket_id, 1);
    assert_string_equal(row.state, TL_KB_DRAFT);
    assert_null(row.published_by);
    assert_int_equal(row.published, 0);
    assert_int_equal(row.recheck_passed, 1);
    tl_kb_article_row_clear(&row);
}

#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
    STORE_TEST(test_article_added_read_back_whole),
    STORE_TEST(test_duplicate_refused_unless_replaced_and_counts_kept),
    STORE_TEST(test_list_by_category_and_state_without_source),
    STORE_TEST(test_remove_keeps_outcomes_and_unknown_is_not_found),
    STORE_TEST(test_bad_rows_refused_and_nothing_stored),
    STORE_TEST(test_unit_rolls_back_every_article),
    STORE_TEST(test_schema_five_file_is_migrated),
};

TL_TEST_MAIN(tests)
