/* The relay store on real SQLite files: migrations, enrollment, tickets, evidence. */
#include "tl_test.h"

#include "relay/store/store.h"

#include <errno.h>
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
    json_t *devices = NULL;
    TL_ASSERT_OK(tl_store_devices_list(f->store, &devices));
    assert_int_equal(json_array_size(devices), 1);
    json_t *first = json_array_get(devices, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), "D-1");
    assert_string_equal(json_string_value(json_object_get(first, "fingerprint")), FP_1);
    json_decref(devices);
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
    json_t *devices = NULL;
    TL_ASSERT_OK(tl_store_devices_list(f->store, &devices));
    json_t *first = json_array_get(devices, 0);
    assert_true(json_is_true(json_object_get(first, "online")));
    assert_int_equal(json_integer_value(json_object_get(first, "last_seen")), 9000);
    json_decref(devices);
    TL_ASSERT_OK(tl_store_devices_all_offline(f->store));
    TL_ASSERT_OK(tl_store_devices_list(f->store, &devices));
    assert_true(json_is_false(json_object_get(json_array_get(devices, 0), "online")));
    json_decref(devices);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_device_seen(f->store, 999, 1, 1));
    int64_t found;
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_device_find(f->store, FP_2, &found));
}

static void test_ticket_request_id_is_idempotent(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {device, "printer won't print", "it says offline", 1, "req-1"};
    int64_t first = 0, second = 0;
    int created = 0;
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &ticket, 3000, &first, &created));
    assert_int_equal(created, 1);
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &ticket, 4000, &second, &created));
    assert_int_equal(created, 0);
    assert_int_equal(second, first);
    ticket.request_id = "req-2";
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &ticket, 5000, &second, &created));
    assert_int_equal(created, 1);
    assert_int_not_equal(second, first);
    json_t *tickets = NULL;
    TL_ASSERT_OK(tl_store_tickets_list(f->store, &tickets));
    assert_int_equal(json_array_size(tickets), 2);
    json_t *t1 = json_array_get(tickets, 0);
    assert_string_equal(json_string_value(json_object_get(t1, "id")), "T-1");
    assert_string_equal(json_string_value(json_object_get(t1, "device")), "D-1");
    assert_string_equal(json_string_value(json_object_get(t1, "status")), "new");
    assert_int_equal(json_integer_value(json_object_get(t1, "tier")), 1);
    json_decref(tickets);
}

static void test_ticket_timeline_and_evidence(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {device, "slow disk", "", 1, NULL};
    int64_t id = 0;
    int created = 0, added = 0;
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &ticket, 3000, &id, &created));
    json_t *details = json_pack("{s:s}", "hash", HASH_B);
    TL_ASSERT_OK(tl_store_begin(f->store));
    TL_ASSERT_OK(tl_store_evidence_add(f->store, id, HASH_B, "diagnostics", "diag.json", 1234, 3100,
                                       &added));
    assert_int_equal(added, 1);
    TL_ASSERT_OK(tl_store_ticket_event(f->store, id, 3100, "agent:D-1", "evidence.added", details));
    TL_ASSERT_OK(tl_store_commit(f->store));
    TL_ASSERT_OK(tl_store_evidence_add(f->store, id, HASH_B, "diagnostics", "diag.json", 1234, 3200,
                                       &added));
    assert_int_equal(added, 0);

    json_t *got = NULL;
    TL_ASSERT_OK(tl_store_ticket_get(f->store, id, &got));
    assert_string_equal(json_string_value(json_object_get(got, "title")), "slow disk");
    assert_int_equal(json_integer_value(json_object_get(got, "updated")), 3200);
    json_t *evidence = json_object_get(got, "evidence");
    assert_int_equal(json_array_size(evidence), 1);
    json_t *item = json_array_get(evidence, 0);
    assert_string_equal(json_string_value(json_object_get(item, "hash")), HASH_B);
    assert_int_equal(json_integer_value(json_object_get(item, "size")), 1234);
    json_t *events = json_object_get(got, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_true(json_equal(json_object_get(json_array_get(events, 0), "details"), details));
    json_decref(got);
    json_decref(details);

    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_get(f->store, 77, &got));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_evidence_add(f->store, 77, HASH_A, "x", "y", 1, 1, &added));
}

static void test_rollback_discards_group(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_ticket_new_t ticket = {device, "t", "", 1, NULL};
    int64_t id;
    int created;
    TL_ASSERT_OK(tl_store_begin(f->store));
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &ticket, 1, &id, &created));
    tl_store_rollback(f->store);
    json_t *tickets = NULL;
    TL_ASSERT_OK(tl_store_tickets_list(f->store, &tickets));
    assert_int_equal(json_array_size(tickets), 0);
    json_decref(tickets);
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
    tl_ticket_new_t bad[] = {
        {device, "", "", 1, NULL},
        {device, long_title, "", 1, NULL},
        {device, "ok", "", 5, NULL},
        {device, "ok", "", -1, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_create(f->store, &bad[i], 1, &id, &created));
    tl_ticket_new_t orphan = {999, "ok", "", 1, NULL};
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_create(f->store, &orphan, 1, &id, &created));
    int added;
    TL_ASSERT_RC(TL_EINVAL,
                 tl_store_evidence_add(f->store, 1, "../../etc/passwd", "k", "n", 1, 1, &added));
    json_t *tickets = NULL;
    TL_ASSERT_OK(tl_store_tickets_list(f->store, &tickets));
    assert_int_equal(json_array_size(tickets), 0);
    json_decref(tickets);
}

static void test_parse_id_is_strict(void **state)
{
    (void)state;
    int64_t id = 0;
    TL_ASSERT_OK(tl_store_parse_id("T-42", 'T', &id));
    assert_int_equal(id, 42);
    const char *bad[] = {
        "T-", "T-0", "T-042", "D-4", "T42", "T-4x", "t-4", "T--4", "T-99999999999999999999", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_store_parse_id(bad[i], 'T', &id));
}

static void test_version_one_file_is_migrated(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    tl_store_close(f->store);
    f->store = NULL;
    /* Make the file look like schema 1: none of the later tables. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "DROP INDEX tickets_by_assignee; DROP TABLE users; DROP TABLE audit_pending; "
                     "DROP TABLE uploads; DROP TABLE audit_head; DROP TABLE audit_outbox; "
                     "PRAGMA user_version = 1",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    TL_ASSERT_OK(tl_store_open(f->path, TL_STORE_OPEN_EXISTING, &f->store));
    assert_int_equal(tl_store_schema_version(f->store), TL_STORE_SCHEMA_VERSION);
    int64_t found = 0;
    TL_ASSERT_OK(tl_store_device_find(f->store, FP_1, &found));
    assert_int_equal(found, device);
    TL_ASSERT_OK(tl_store_user_add(f->store, "alice", "tier1", "ssh-ed25519 AAAA", FP_2, 1));
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
    json_t *users = NULL;
    TL_ASSERT_OK(tl_store_users_list(f->store, &users));
    assert_int_equal(json_array_size(users), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(users, 0), "name")),
                        "alice");
    assert_true(json_is_true(json_object_get(json_array_get(users, 1), "disabled")));
    json_decref(users);
    TL_ASSERT_OK(tl_store_user_remove(f->store, "alice"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_user_remove(f->store, "alice"));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_user_disable(f->store, "nobody"));
}

static void test_ticket_filters_and_updates(void **state)
{
    struct fixture *f = *state;
    int64_t device = enroll_device(f->store, HASH_A, FP_1);
    int64_t t1, t2, t4;
    int created;
    tl_ticket_new_t a = {device, "one", "", 1, NULL}, b = {device, "two", "", 2, NULL},
                    c = {device, "vendor", "", 4, NULL};
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &a, 1, &t1, &created));
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &b, 1, &t2, &created));
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &c, 1, &t4, &created));
    TL_ASSERT_OK(tl_store_ticket_update(f->store, t2, "alice", "open", 9));
    TL_ASSERT_OK(tl_store_ticket_update(f->store, t4, "acme", NULL, 9));
    TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_update(f->store, t1, NULL, "done", 9));
    TL_ASSERT_RC(TL_EINVAL, tl_store_ticket_update(f->store, t1, "Bad Name", NULL, 9));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_update(f->store, 99, "alice", NULL, 9));

    struct {
        tl_ticket_filter_t filter;
        size_t count;
    } cases[] = {{{-1, NULL, NULL}, 3},    {{1, NULL, NULL}, 1},    {{-1, "open", NULL}, 1},
                 {{-1, NULL, "alice"}, 1}, {{-1, NULL, "acme"}, 1}, {{2, "new", NULL}, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *list = NULL;
        TL_ASSERT_OK(tl_store_tickets_query(f->store, &cases[i].filter, &list));
        if (json_array_size(list) != cases[i].count)
            fail_msg("filter %zu: %zu tickets, expected %zu", i, json_array_size(list),
                     cases[i].count);
        json_decref(list);
    }
    json_t *ticket = NULL;
    TL_ASSERT_OK(tl_store_ticket_get(f->store, t2, &ticket));
    assert_string_equal(json_string_value(json_object_get(ticket, "assignee")), "alice");
    assert_string_equal(json_string_value(json_object_get(ticket, "status")), "open");
    json_decref(ticket);
}

/* Every object Jansson makes while a call runs, counted through its allocator hooks. */
static size_t json_allocations;

static void *counting_malloc(size_t size)
{
    json_allocations++;
    return malloc(size);
}

static size_t json_allocations_of_fields(tl_store_t *store, int64_t ticket_id, json_t **out)
{
    json_allocations = 0;
    json_set_alloc_funcs(counting_malloc, free);
    int rc = tl_store_ticket_fields(store, ticket_id, out);
    json_set_alloc_funcs(malloc, free);
    TL_ASSERT_OK(rc);
    return json_allocations;
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
    tl_ticket_new_t ticket = {device, "slow disk", "since Monday", 2, NULL};
    int64_t id = 0;
    int created = 0;
    TL_ASSERT_OK(tl_store_ticket_create(f->store, &ticket, 3000, &id, &created));
    TL_ASSERT_OK(tl_store_ticket_update(f->store, id, "alice", "open", 3001));

    json_t *fresh = NULL;
    size_t fresh_allocations = json_allocations_of_fields(f->store, id, &fresh);

    /* A history as 200 sessions leave it: their events and evidence. */
    for (int i = 0; i < 200; i++) {
        char hash[65];
        snprintf(hash, sizeof hash, "%064x", i);
        json_t *details = json_pack("{s:s,s:i,s:s}", "session", "S-x", "exit", 0, "hash", hash);
        int added = 0;
        TL_ASSERT_OK(
            tl_store_ticket_event(f->store, id, 4000 + i, "tech:alice", "session.ended", details));
        TL_ASSERT_OK(tl_store_evidence_add(f->store, id, hash, "transcript", "command.json", 100,
                                           4000 + i, &added));
        json_decref(details);
    }
    json_t *full = NULL;
    TL_ASSERT_OK(tl_store_ticket_get(f->store, id, &full));
    assert_int_equal(json_array_size(json_object_get(full, "events")), 200);
    assert_int_equal(json_array_size(json_object_get(full, "evidence")), 200);
    json_decref(full);

    json_t *later = NULL;
    size_t later_allocations = json_allocations_of_fields(f->store, id, &later);
    if (later_allocations != fresh_allocations)
        fail_msg("reading the fields took %zu allocations with 200 sessions of history, %zu with "
                 "none",
                 later_allocations, fresh_allocations);
    assert_string_equal(json_string_value(json_object_get(later, "device")), "D-1");
    assert_string_equal(json_string_value(json_object_get(later, "assignee")), "alice");
    assert_string_equal(json_string_value(json_object_get(later, "status")), "open");
    assert_string_equal(json_string_value(json_object_get(later, "title")), "slow disk");
    assert_null(json_object_get(later, "events"));
    assert_null(json_object_get(later, "evidence"));
    assert_int_equal(json_integer_value(json_object_get(later, "updated")), 4199);
    assert_int_equal(json_integer_value(json_object_get(fresh, "updated")), 3001);
    json_decref(fresh);
    json_decref(later);
    TL_ASSERT_RC(TL_ENOTFOUND, tl_store_ticket_fields(f->store, 77, &later));
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
    STORE_TEST(test_users_add_list_disable_remove),
    STORE_TEST(test_ticket_filters_and_updates),
    STORE_TEST(test_ticket_fields_do_not_grow_with_history),
    cmocka_unit_test(test_parse_id_is_strict),
};

TL_TEST_MAIN(tests)
