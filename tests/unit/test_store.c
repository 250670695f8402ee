/* The relay store on real SQLite files: migrations, enrollment, tickets, evidence. */
#include "tl_test.h"

#include "proto/ids.h"
#include "relay/store/store.h"
#include "relay/store/store_sqlite.h" /* the first schema, to migrate from */

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define FP_1 "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define FP_2 "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

struct fixture {
    char dir[64];
    char path[96];
    tl_store_t *store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/tl-store-XXXXXX");
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

static int64_t enroll_device(tl_store_t *store, const char *hash, const char *fp)
{
    int64_t device_id = 0;
    TL_ASSERT_OK(tl_store_code_add(store, hash, 1000, 100000, "laptop", NULL));
    tl_device_info_t info = {fp, "laptop-7", "Debian GNU/Linux 12"};
    TL_ASSERT_OK(tl_store_enroll(store, hash, 2000, &info, &device_id));
    return device_id;
}

static void test_create_is_private_and_refuses_existing(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(tl_store_schema_version(f->store), TL_STORE_SCHEMA_VERSION);
    tl_store_t *other = NULL;
    TL_ASSERT_RC(TL_EEXIST, tl_store_open(f->path, TL_STORE_CREATE_NEW, &other));
    assert_null(other);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.db", f->dir);
    TL_ASSERT_RC(-ENOENT, tl_store_open(missing, TL_STORE_OPEN_EXISTING, &other));
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_store_close(f->store);
    TL_ASSERT_OK(tl_store_open(f->path, TL_STORE_OPEN_EXISTING, &f->store));
    int64_t found = 0;
    TL_ASSERT_OK(tl_store_device_find(f->store, FP_1, &found));
    assert_int_equal(found, device);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    tl_store_close(f->store);
    f->store = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    TL_ASSERT_RC(TL_ESCHEMA, tl_store_open(f->path, TL_STORE_OPEN_EXISTING, &f->store));
    assert_null(f->store);
}

static void test_enroll_code_rules(void **state)
{
    struct fixture *f = *state;
    tl_device_info_t info = {FP_1, "host", "os"};
    int64_t device = 0;
    /* Unknown code. */
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_enroll(f->store, HASH_A, 10, &info, &device));
    /* Expired code. */
    TL_ASSERT_OK(tl_store_code_add(f->store, HASH_A, 0, 500, "", NULL));
    TL_ASSERT_RC(TL_EEXPIRED, tl_store_enroll(f->store, HASH_A, 500, &info, &device));
    /* A good code works once. */
    TL_ASSERT_OK(tl_store_code_add(f->store, HASH_B, 0, 5000, "", NULL));
    TL_ASSERT_OK(tl_store_enroll(f->store, HASH_B, 100, &info, &device));
    assert_true(device > 0);
    info.fingerprint = FP_2;
    TL_ASSERT_RC(TL_EUSED, tl_store_enroll(f->store, HASH_B, 101, &info, &device));
    /* Only one device exists. */
    tl_device_rows_t devices;
    char id[TL_ID_TEXT];
    TL_ASSERT_OK(tl_store_devices_read(f->store, &devices));
    assert_int_equal(devices.count, 1);
    assert_string_equal(tl_id_format(id, TL_ID_DEVICE, devices.rows[0].id), "D-1");
    assert_string_equal(devices.rows[0].fingerprint, FP_1);
    tl_device_rows_free(&devices);
}

static void test_duplicate_key_does_not_spend_code(void **state)
{
    struct fixture *f = *state;
    enroll_device(f->store, HASH_A, FP_1);
    TL_ASSERT_OK(tl_store_code_add(f->store, HASH_B, 0, 5000, "", NULL));
    tl_device_info_t info = {FP_1, "again", "os"};
    int64_t device = 0;
    TL_ASSERT_RC(TL_EEXIST, tl_store_enroll(f->store, HASH_B, 100, &info, &device));
    /* The failed attempt rolled back: the code still works for a new key. */
    info.fingerprint = FP_2;
    TL_ASSERT_OK(tl_store_enroll(f->store, HASH_B, 100, &info, &device));
    assert_int_equal(device, 2);
}

static void test_bad_code_input_rejected(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_RC(TL_EINVAL, tl_store_code_add(f->store, "short", 0, 10, "", NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_store_code_add(f->store, HASH_A, 10, 10, "", NULL));
    char upper[65];
    memset(upper, 'A', 64);
    upper[64] = 0;
    TL_ASSERT_RC(TL_EINVAL, tl_store_code_add(f->store, upper, 0, 10, "", NULL));
    char note[TL_STORE_MAX_NOTE + 2];
    memset(note, 'n', sizeof note - 1);
    note[sizeof note - 1] = 0;
    TL_ASSERT_RC(TL_EINVAL, tl_store_code_add(f->store, HASH_A, 0, 10, note, NULL));
}

static void test_device_online_state(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    TL_ASSERT_OK(tl_store_device_seen(f->store, device, 9000, 1));
    tl_device_rows_t devices;
    TL_ASSERT_OK(tl_store_devices_read(f->store, &devices));
    assert_int_equal(devices.count, 1);
    assert_true(devices.rows[0].online);
    assert_int_equal(devices.rows[0].last_seen, 9000);
    tl_device_rows_free(&devices);
    TL_ASSERT_OK(tl_store_devices_all_offline(f->store));
    TL_ASSERT_OK(tl_store_devices_read(f->store, &devices));
    assert_int_equal(devices.count, 1);
    assert_false(devices.rows[0].online);
    tl_device_rows_free(&devices);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_device_seen(f->store, 999, 1, 1));
    int64_t found;
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_device_find(f->store, FP_2, &found));
}

static void test_ticket_request_id_is_idempotent(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {
        device, "printer won't print", "it says offline", 1, "req-1", "new", 0, NULL};
    int64_t first = 0, second = 0;
    int created = 0;
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &ticket, 3000, &first, &created));
    assert_int_equal(created, 1);
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &ticket, 4000, &second, &created));
    assert_int_equal(created, 0);
    assert_int_equal(second, first);
    ticket.request_id = "req-2";
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &ticket, 5000, &second, &created));
    assert_int_equal(created, 1);
    assert_int_not_equal(second, first);
    tl_ticket_rows_t tickets;
    char id[TL_ID_TEXT];
    TL_ASSERT_OK(tl_store_tickets_read(f->store, NULL, &tickets));
    assert_int_equal(tickets.count, 2);
    const tl_ticket_row_t *t1 = &tickets.rows[0];
    assert_string_equal(tl_id_format(id, TL_ID_TICKET, t1->id), "T-1");
    assert_string_equal(tl_id_format(id, TL_ID_DEVICE, t1->device_id), "D-1");
    assert_string_equal(t1->status, "new");
    assert_int_equal(t1->tier, 1);
    tl_ticket_rows_free(&tickets);
}

/* An evidence item and its timeline event, in one unit of work. */
struct evidence_with_event {
    int64_t ticket_id;
    char *details;
    int added;
};

static int add_evidence_with_event(tl_store_t *store, void *arg)
{
    struct evidence_with_event *unit = arg;
    int rc = tl_store_evidence_add(store, unit->ticket_id, HASH_B, "diagnostics", "diag.json", 1234,
                                   3100, &unit->added);
    tl_ticket_event_row_t event = {unit->ticket_id, 3100, "agent:D-1", "evidence.added",
                                   unit->details};
    if (rc == 0)
        rc = tl_store_ticket_event_add(store, &event);
    return rc;
}

static void test_ticket_timeline_and_evidence(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {device, "slow disk", "", 1, NULL, "new", 0, NULL};
    struct evidence_with_event unit = {.added = 0};
    int created = 0, added = 0;
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &ticket, 3000, &unit.ticket_id, &created));
    int64_t id = unit.ticket_id;
    json_t *details = json_pack("{s:s}", "hash", HASH_B);
    unit.details = json_dumps(details, JSON_COMPACT);
    TL_ASSERT_OK(tl_store_unit_run(f->store, add_evidence_with_event, &unit));
    assert_int_equal(unit.added, 1);
    free(unit.details);
    TL_ASSERT_OK(tl_store_evidence_add(f->store, id, HASH_B, "diagnostics", "diag.json", 1234, 3200,
                                       &added));
    assert_int_equal(added, 0);

    tl_ticket_row_t got;
    TL_ASSERT_OK(tl_store_ticket_read(f->store, id, &got));
    assert_string_equal(got.title, "slow disk");
    assert_int_equal(got.updated, 3200);
    tl_ticket_row_clear(&got);
    tl_evidence_rows_t evidence;
    TL_ASSERT_OK(tl_store_ticket_evidence_read(f->store, id, &evidence));
    assert_int_equal(evidence.count, 1);
    assert_string_equal(evidence.rows[0].hash, HASH_B);
    assert_int_equal(evidence.rows[0].size, 1234);
    tl_evidence_rows_free(&evidence);
    tl_ticket_event_rows_t events;
    TL_ASSERT_OK(tl_store_ticket_events_read(f->store, id, &events));
    assert_int_equal(events.count, 1);
    json_t *stored = json_loads(events.rows[0].details, 0, NULL);
    assert_true(json_equal(stored, details));
    json_decref(stored);
    tl_ticket_event_rows_free(&events);
    json_decref(details);

    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_read(f->store, 77, &got));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_evidence_add(f->store, 77, HASH_A, "x", "y", 1, 1, &added));
}

static int create_then_fail(tl_store_t *store, void *arg)
{
    int64_t id;
    int created;
    TL_ASSERT_OK(tl_store_ticket_insert(store, arg, 1, &id, &created));
    assert_int_equal(created, 1);
    return TL_EIO;
}

static void test_rollback_discards_group(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {device, "t", "", 1, NULL, "new", 0, NULL};
    /* The unit's work creates the ticket, then fails: the unit is undone whole. */
    TL_ASSERT_RC(TL_EIO, tl_store_unit_run(f->store, create_then_fail, &ticket));
    tl_ticket_rows_t tickets;
    TL_ASSERT_OK(tl_store_tickets_read(f->store, NULL, &tickets));
    assert_int_equal(tickets.count, 0);
    tl_ticket_rows_free(&tickets);
}

static void test_bad_ticket_input_rejected(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    int64_t id;
    int created;
    char long_title[TL_STORE_MAX_TITLE + 2];
    memset(long_title, 't', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = 0;
    /* What storage refuses; an empty title and tiers outside 0..4 are the desk's rules
     * (tests/unit/test_desk.c). */
    tl_ticket_new_t bad[] = {
        {device, long_title, "", 1, NULL, "new", 0, NULL},
        {device, NULL, "", 1, NULL, "new", 0, NULL},
        {device, "ok", "", 1, NULL, NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_insert(f->store, &bad[i], 1, &id, &created));
    tl_ticket_new_t orphan = {999, "ok", "", 1, NULL, "new", 0, NULL};
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_insert(f->store, &orphan, 1, &id, &created));
    int added;
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_evidence_add(f->store, 1, "../../etc/passwd", "k", "n", 1, 1, &added));
    tl_ticket_rows_t tickets;
    TL_ASSERT_OK(tl_store_tickets_read(f->store, NULL, &tickets));
    assert_int_equal(tickets.count, 0);
    tl_ticket_rows_free(&tickets);
}

static void test_parse_id_is_strict(void **state)
{
    (void)state;
    int64_t id = 0;
    TL_ASSERT_OK(tl_id_parse("T-42", 'T', &id));
    assert_int_equal(id, 42);
    const char *bad[] = {
        "T-", "T-0", "T-042", "D-4", "T42", "T-4x", "t-4", "T--4", "T-99999999999999999999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_id_parse(bad[i], 'T', &id));
}

static void test_version_one_file_is_migrated(void **state)
{
    struct fixture *f = *state;
    tl_store_close(f->store);
    f->store = NULL;
    /* A file as the first release wrote it: schema 1, a device and a ticket being worked on. */
    assert_int_equal(unlink(f->path), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, tl__sqlite_migrations[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO devices (fingerprint, hostname, os, first_seen, last_seen) "
                     "VALUES ('" FP_1 "', 'laptop', 'linux', 1, 1);"
                     "INSERT INTO tickets (device_id, title, description, tier, status, assignee, "
                     "created, updated) VALUES (1, 'vpn', '', 2, 'open', 'alice', 1000, 2000);"
                     "PRAGMA user_version = 1",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    TL_ASSERT_OK(tl_store_open(f->path, TL_STORE_OPEN_EXISTING, &f->store));
    assert_int_equal(tl_store_schema_version(f->store), TL_STORE_SCHEMA_VERSION);
    int64_t found = 0;
    TL_ASSERT_OK(tl_store_device_find(f->store, FP_1, &found));
    assert_int_equal(found, 1);
    TL_ASSERT_OK(tl_store_user_add(f->store, "alice", "tier1", "ssh-ed25519 AAAA", FP_2, 1));
    /* The desk's columns have their defaults, and the history what the clocks need. */
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->store, 1, &row));
    assert_int_equal(row.severity, 3);
    assert_string_equal(row.category, "other");
    assert_int_equal(row.problem_id, 0);
    assert_null(row.vendor);
    tl_ticket_row_clear(&row);
    tl_ticket_change_rows_t changes;
    TL_ASSERT_OK(tl_store_ticket_changes_read(f->store, 1, &changes));
    assert_int_equal(changes.count, 3);
    const char *want[][2] = {{"tier", "2"}, {"severity", "3"}, {"status", "open"}};
    const int64_t when[] = {1000, 1000, 2000};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(changes.rows[i].field, want[i][0]);
        assert_string_equal(changes.rows[i].value, want[i][1]);
        assert_int_equal(changes.rows[i].time, when[i]);
    }
    tl_ticket_change_rows_free(&changes);
    /* The knowledge base's tables are there too (tests/unit/test_store_kb.c has the rest). */
    tl_kb_article_row_t article = {.id = "tmp-full",
                                   .title = "tmp",
                                   .category = "disk",
                                   .source = "text",
                                   .sha256 = HASH_A,
                                   .added_by = "admin"};
    TL_ASSERT_OK(tl_store_kb_article_add(f->store, &article, 0, 3000, NULL));
    tl_kb_article_rows_t articles;
    TL_ASSERT_OK(tl_store_kb_articles_read(f->store, NULL, NULL, &articles));
    assert_int_equal(articles.count, 1);
    tl_kb_article_rows_free(&articles);
}

static void test_users_add_list_disable_remove(void **state)
{
    struct fixture *f = *state;
    TL_ASSERT_OK(tl_store_user_add(f->store, "bob", "tier2", "ssh-ed25519 BBBB", FP_2, 5));
    TL_ASSERT_OK(tl_store_user_add(f->store, "alice", "tier1", "ssh-ed25519 AAAA", FP_1, 6));
    /* Names and keys are unique. */
    TL_ASSERT_RC(TL_EEXIST, tl_store_user_add(f->store, "alice", "tier3", "ssh-ed25519 CCCC",
                                              "SHA256:other", 7));
    TL_ASSERT_RC(TL_EEXIST,
                 tl_store_user_add(f->store, "carol", "tier3", "ssh-ed25519 AAAA", FP_1, 7));
    const char *bad_names[] = {"", "Alice", "1abc", "a b", "a/b", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_store_user_add(f->store, bad_names[i], "tier1", "k", "f", 1));
    TL_ASSERT_OK(tl_store_user_disable(f->store, "bob"));
    tl_user_rows_t users;
    TL_ASSERT_OK(tl_store_users_read(f->store, &users));
    assert_int_equal(users.count, 2);
    assert_string_equal(users.rows[0].name, "alice");
    assert_true(users.rows[1].disabled);
    tl_user_rows_free(&users);
    TL_ASSERT_OK(tl_store_user_remove(f->store, "alice"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_user_remove(f->store, "alice"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_user_disable(f->store, "nobody"));
    /* Leads and expiries: set, read back, cleared; unknown names and bad values refused. */
    TL_ASSERT_OK(tl_store_user_set_lead(f->store, "bob", 1));
    TL_ASSERT_OK(tl_store_user_set_expires(f->store, "bob", 7000));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_user_set_lead(f->store, "nobody", 1));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_user_set_expires(f->store, "nobody", 7000));
    TL_ASSERT_RC(TL_EINVAL, tl_store_user_set_expires(f->store, "bob", -1));
    TL_ASSERT_OK(tl_store_users_read(f->store, &users));
    assert_int_equal(users.count, 1);
    assert_true(users.rows[0].lead);
    assert_int_equal(users.rows[0].expires, 7000);
    tl_user_rows_free(&users);
    TL_ASSERT_OK(tl_store_user_set_lead(f->store, "bob", 0));
    TL_ASSERT_OK(tl_store_user_set_expires(f->store, "bob", 0));
    TL_ASSERT_OK(tl_store_users_read(f->store, &users));
    assert_false(users.rows[0].lead);
    assert_int_equal(users.rows[0].expires, 0);
    tl_user_rows_free(&users);
}

static void test_ticket_filters_and_updates(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    int64_t t1, t2, t4;
    int created;
    tl_ticket_new_t a = {device, "one", "", 1, NULL, "new", 0, NULL},
                    b = {device, "two", "", 2, NULL, "new", 0, NULL},
                    c = {device, "vendor", "", 4, NULL, "new", 0, NULL};
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &a, 1, &t1, &created));
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &b, 1, &t2, &created));
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &c, 1, &t4, &created));
    TL_ASSERT_OK(tl_store_ticket_set(f->store, t2, "alice", "open", NULL, 9));
    TL_ASSERT_OK(tl_store_ticket_set(f->store, t4, "acme", NULL, NULL, 9));
    /* A status that is no word of the desk's: tests/unit/test_desk.c. */
    TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_set(f->store, t1, "Bad Name", NULL, NULL, 9));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_set(f->store, 99, "alice", NULL, NULL, 9));

    struct {
        tl_ticket_filter_t filter;
        size_t count;
    } cases[] = {{{-1, NULL, NULL}, 3},    {{1, NULL, NULL}, 1},    {{-1, "open", NULL}, 1},
                 {{-1, NULL, "alice"}, 1}, {{-1, NULL, "acme"}, 1}, {{2, "new", NULL}, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tl_ticket_rows_t list;
        TL_ASSERT_OK(tl_store_tickets_read(f->store, &cases[i].filter, &list));
        if (list.count != cases[i].count)
            fail_msg("filter %zu: %zu tickets, expected %zu", i, list.count, cases[i].count);
        tl_ticket_rows_free(&list);
    }
    tl_ticket_row_t ticket;
    TL_ASSERT_OK(tl_store_ticket_read(f->store, t2, &ticket));
    assert_string_equal(ticket.assignee, "alice");
    assert_string_equal(ticket.status, "open");
    tl_ticket_row_clear(&ticket);
}

static void test_desk_columns_keep_only_what_they_may_hold(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    int64_t id;
    int created;
    char long_text[200];
    memset(long_text, 'v', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    tl_ticket_new_t t = {device, "disk full", "", 1, NULL, "new", 2, "disk"};
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &t, 100, &id, &created));
    tl_ticket_new_t bad_severity = {device, "x", "", 1, NULL, "new", 5, NULL};
    TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_insert(f->store, &bad_severity, 100, &id, &created));

    TL_ASSERT_OK(tl_store_ticket_column_set(f->store, id, TL_TICKET_SEVERITY, NULL, 1, 200));
    TL_ASSERT_OK(tl_store_ticket_column_set(f->store, id, TL_TICKET_VENDOR, "acme", 0, 200));
    TL_ASSERT_OK(tl_store_ticket_column_set(f->store, id, TL_TICKET_FOLLOW_UP, NULL, 5000, 200));
    /* Refused, each leaving the ticket as it was. */
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_SEVERITY, NULL, 0, 300));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_SEVERITY, NULL, 5, 300));
    TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_column_set(f->store, id, TL_TICKET_TIER, NULL, 5, 300));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_CATEGORY, "", 0, 300));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_CATEGORY, NULL, 0, 300));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_VENDOR, long_text, 0, 300));
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_COLUMNS, "x", 1, 300));
    TL_ASSERT_RC(TL_ENOTFOUND,
                 tl_store_ticket_column_set(f->store, id, TL_TICKET_PROBLEM, NULL, 99, 300));
    TL_ASSERT_RC(TL_ENOTFOUND,
                 tl_store_ticket_column_set(f->store, 99, TL_TICKET_SEVERITY, NULL, 2, 300));
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->store, id, &row));
    assert_int_equal(row.severity, 1);
    assert_string_equal(row.category, "disk");
    assert_string_equal(row.vendor, "acme");
    assert_null(row.vendor_case);
    assert_int_equal(row.follow_up, 5000);
    assert_int_equal(row.problem_id, 0);
    assert_int_equal(row.updated, 200);
    tl_ticket_row_clear(&row);

    /* The history: the start, then each status and assignee change with its actor. */
    TL_ASSERT_OK(tl_store_ticket_set(f->store, id, "alice", "open", "tech:alice", 400));
    tl_ticket_change_row_t bad = {id, 500, "status", long_text, "tech:alice", ""};
    TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_change_add(f->store, &bad));
    tl_ticket_change_row_t orphan = {99, 500, "status", "open", "tech:alice", ""};
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_change_add(f->store, &orphan));
    tl_ticket_change_rows_t changes;
    TL_ASSERT_OK(tl_store_ticket_changes_read(f->store, id, &changes));
    assert_int_equal(changes.count, 5);
    const char *want[][3] = {{"tier", "1", "relay"},
                             {"severity", "2", "relay"},
                             {"category", "disk", "relay"},
                             {"assignee", "alice", "tech:alice"},
                             {"status", "open", "tech:alice"}};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(changes.rows[i].field, want[i][0]);
        assert_string_equal(changes.rows[i].value, want[i][1]);
        assert_string_equal(changes.rows[i].actor, want[i][2]);
    }
    tl_ticket_change_rows_free(&changes);
}

/*
 * Every allocation the store's own code makes while a call runs: this binary is linked with
 * --wrap for the allocator's entry points (tests/CMakeLists.txt), so the store's calls to them
 * come here first.
 */
static size_t allocations;
static int counting;

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *old, size_t size);
char *__real_strdup(const char *text);
char *__real_strndup(const char *text, size_t len);

void *__wrap_malloc(size_t size)
{
    allocations += counting;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
    allocations += counting;
    return __real_calloc(count, size);
}

void *__wrap_realloc(void *old, size_t size)
{
    allocations += counting;
    return __real_realloc(old, size);
}

char *__wrap_strdup(const char *text)
{
    allocations += counting;
    return __real_strdup(text);
}

char *__wrap_strndup(const char *text, size_t len)
{
    allocations += counting;
    return __real_strndup(text, len);
}

static size_t allocations_of_fields(tl_store_t *store, int64_t ticket_id, tl_ticket_row_t *out)
{
    allocations = 0;
    counting = 1;
    int rc = tl_store_ticket_read(store, ticket_id, out);
    counting = 0;
    TL_ASSERT_OK(rc);
    return allocations;
}

/*
 * A session starts by reading its ticket's device and assignee. Every session
 * adds events and evidence to the ticket, so a read that loads them costs
 * more with every session, and the relay's memory grew with it (~10 KB per
 * session on one ticket). Reading the fields must cost the same with a long
 * history as with none.
 */
static void test_ticket_fields_do_not_grow_with_history(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {device, "slow disk", "since Monday", 2, NULL, "new", 0, NULL};
    int64_t id = 0;
    int created = 0;
    TL_ASSERT_OK(tl_store_ticket_insert(f->store, &ticket, 3000, &id, &created));
    TL_ASSERT_OK(tl_store_ticket_set(f->store, id, "alice", "open", NULL, 3001));

    tl_ticket_row_t fresh;
    size_t fresh_allocations = allocations_of_fields(f->store, id, &fresh);
    assert_true(fresh_allocations > 0); /* the count sees the store's own allocations */

    /* A history as 200 sessions leave it: their events and evidence. */
    for (int i = 0; i < 200; i++) {
        char hash[65], details[160];
        snprintf(hash, sizeof hash, "%064x", i);
        snprintf(details, sizeof details, "{\"session\":\"S-x\",\"exit\":0,\"hash\":\"%s\"}", hash);
        tl_ticket_event_row_t event = {id, 4000 + i, "tech:alice", "session.ended", details};
        int added = 0;
        TL_ASSERT_OK(tl_store_ticket_event_add(f->store, &event));
        TL_ASSERT_OK(tl_store_evidence_add(f->store, id, hash, "transcript", "command.json", 100,
                                           4000 + i, &added));
    }
    tl_ticket_event_rows_t events;
    tl_evidence_rows_t evidence;
    TL_ASSERT_OK(tl_store_ticket_events_read(f->store, id, &events));
    TL_ASSERT_OK(tl_store_ticket_evidence_read(f->store, id, &evidence));
    assert_int_equal(events.count, 200);
    assert_int_equal(evidence.count, 200);
    tl_ticket_event_rows_free(&events);
    tl_evidence_rows_free(&evidence);

    /* The row has no room for events or evidence; reading it must not fetch them either. */
    tl_ticket_row_t later;
    size_t later_allocations = allocations_of_fields(f->store, id, &later);
    if (later_allocations != fresh_allocations)
        fail_msg("reading the fields took %zu allocations with 200 sessions of history, %zu with "
                 "none",
                 later_allocations, fresh_allocations);
    char text[TL_ID_TEXT];
    assert_string_equal(tl_id_format(text, TL_ID_DEVICE, later.device_id), "D-1");
    assert_string_equal(later.assignee, "alice");
    assert_string_equal(later.status, "open");
    assert_string_equal(later.title, "slow disk");
    assert_int_equal(later.updated, 4199);
    assert_int_equal(fresh.updated, 3001);
    tl_ticket_row_clear(&fresh);
    tl_ticket_row_clear(&later);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_read(f->store, 77, &later));
}

#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
    STORE_TEST(test_create_is_private_and_refuses_existing),
    STORE_TEST(test_reopen_keeps_data),
    STORE_TEST(test_newer_schema_refused),
    STORE_TEST(test_enroll_code_rules),
    STORE_TEST(test_duplicate_key_does_not_spend_code),
    STORE_TEST(test_bad_code_input_rejected),
    STORE_TEST(test_device_online_state),
    STORE_TEST(test_ticket_request_id_is_idempotent),
    STORE_TEST(test_ticket_timeline_and_evidence),
    STORE_TEST(test_rollback_discards_group),
    STORE_TEST(test_bad_ticket_input_rejected),
    STORE_TEST(test_version_one_file_is_migrated),
    STORE_TEST(test_desk_columns_keep_only_what_they_may_hold),
    STORE_TEST(test_users_add_list_disable_remove),
    STORE_TEST(test_ticket_filters_and_updates),
    STORE_TEST(test_ticket_fields_do_not_grow_with_history),
    cmocka_unit_test(test_parse_id_is_strict),
};

TL_TEST_MAIN(tests)
