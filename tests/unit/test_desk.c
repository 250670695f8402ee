/* The desk on a real SQLite file: tickets' own rules (relay/desk/tickets.h). */
#include "tl_test.h"

#include "relay/desk/tickets.h"

#include <stdlib.h>

#define CODE_HASH "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define FP "SHA256:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
#define OPENED_MS 3000

struct fixture {
    char dir[64];
    char db[96];
    tl_store_t *store;
    tl_store_t *reader; /* a second connection, as an admin command has */
    int64_t device_id;
    int64_t ticket_id; /* T-1, opened at OPENED_MS */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/tl-desk-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/relay.db", f->dir);
    tl_device_info_t device = {FP, "laptop-7", "Debian GNU/Linux 12"};
    tl_ticket_new_t ticket = {.title = "printer offline", .description = "since Monday", .tier = 1};
    int created = 0;
    if (tl_store_open(f->db, TL_STORE_CREATE_NEW, &f->store) != 0 ||
        tl_store_open(f->db, TL_STORE_OPEN_EXISTING, &f->reader) != 0 ||
        tl_store_code_add(f->store, CODE_HASH, 1000, 100000, "", NULL) != 0 ||
        tl_store_enroll(f->store, CODE_HASH, 2000, &device, &f->device_id) != 0)
        return -1;
    ticket.device_id = f->device_id;
    if (tl_ticket_create(f->store, &ticket, OPENED_MS, &f->ticket_id, &created) != 0 ||
        created != 1)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_store_close(f->reader);
    tl_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* ---- tickets' own rules -------------------------------------------------------------------- */

static void test_ticket_starts_new_whatever_it_asks(void **state)
{
    struct fixture *f = *state;
    tl_ticket_new_t ticket = {f->device_id, "disk full", "", 2, "req-9", "resolved"};
    int64_t id = 0, again = 0;
    int created = 0;
    TL_ASSERT_OK(tl_ticket_create(f->reader, &ticket, 5000, &id, &created));
    assert_int_equal(created, 1);
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, id, &row));
    assert_string_equal(row.status, "new");
    assert_int_equal(row.tier, 2);
    tl_ticket_row_clear(&row);
    /* The same request names the same ticket. */
    TL_ASSERT_OK(tl_ticket_create(f->reader, &ticket, 6000, &again, &created));
    assert_int_equal(created, 0);
    assert_int_equal(again, id);
}

static void test_bad_ticket_input_rejected(void **state)
{
    struct fixture *f = *state;
    int64_t id;
    int created;
    char long_title[TL_STORE_MAX_TITLE + 2];
    memset(long_title, 't', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = 0;
    tl_ticket_new_t bad[] = {
        {f->device_id, "", "", 1, NULL, NULL},         {f->device_id, NULL, "", 1, NULL, NULL},
        {f->device_id, long_title, "", 1, NULL, NULL}, {f->device_id, "ok", "", 5, NULL, NULL},
        {f->device_id, "ok", "", -1, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TL_ASSERT_RC(TL_EINVAL, tl_ticket_create(f->reader, &bad[i], 1, &id, &created));
    tl_ticket_new_t orphan = {999, "ok", "", 1, NULL, NULL};
    TL_ASSERT_RC(TL_ENOTFOUND, tl_ticket_create(f->reader, &orphan, 1, &id, &created));
    /* Nothing was added: only the fixture's ticket is there. */
    tl_ticket_rows_t tickets;
    TL_ASSERT_OK(tl_store_tickets_read(f->reader, NULL, &tickets));
    assert_int_equal(tickets.count, 1);
    tl_ticket_rows_free(&tickets);
}

static void test_ticket_status_is_one_of_the_desk_words(void **state)
{
    struct fixture *f = *state;
    const char *words[] = {"new", "open", "waiting-user", "waiting-vendor", "resolved", "closed"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (!tl_ticket_status_valid(words[i]))
            fail_msg("status '%s' refused", words[i]);
        TL_ASSERT_OK(tl_ticket_update(f->reader, f->ticket_id, NULL, words[i], 4000));
    }
    const char *not_words[] = {"done", "", "Open", "open ", "closed\n"};
    for (size_t i = 0; i < sizeof not_words / sizeof not_words[0]; i++) {
        if (tl_ticket_status_valid(not_words[i]))
            fail_msg("status '%s' accepted", not_words[i]);
        TL_ASSERT_RC(TL_EINVAL,
                     tl_ticket_update(f->reader, f->ticket_id, "alice", not_words[i], 5000));
    }
    assert_false(tl_ticket_status_valid(NULL));
    TL_ASSERT_RC(TL_EINVAL, tl_ticket_update(f->reader, f->ticket_id, "Bad Name", NULL, 5000));
    TL_ASSERT_RC(TL_ENOTFOUND, tl_ticket_update(f->reader, 99, "alice", "open", 5000));
    /* The refused changes left the ticket as the last good one made it. */
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->reader, f->ticket_id, &row));
    assert_string_equal(row.status, "closed");
    assert_null(row.assignee);
    assert_int_equal(row.updated, 4000);
    tl_ticket_row_clear(&row);
}

#define DESK_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static const struct CMUnitTest tests[] = {
    DESK_TEST(test_ticket_starts_new_whatever_it_asks),
    DESK_TEST(test_bad_ticket_input_rejected),
    DESK_TEST(test_ticket_status_is_one_of_the_desk_words),
};

TL_TEST_MAIN(tests)
