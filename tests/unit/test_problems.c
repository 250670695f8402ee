/*
 * Known problems and escalations: the desk's rules (relay/desk/problems.h: states, named fixes,
 * which open problems a ticket is offered; relay/desk/repeats.h: which diagnostics a new run
 * would repeat) and what the store keeps of them on a real SQLite file (relay/store/store.h,
 * "escalations and known problems").
 */
#include "tl_test.h"

#include "relay/desk/problems.h"
#include "relay/desk/repeats.h"
#include "relay/desk/tickets.h"
#include "relay/store/store.h"

#include <stdlib.h>

#define FP_CUPS "a45f806ff4710e57c4f687b14bc5ad7bbe83f3a21d81c899f14fbcb672c617ba"
#define FP_VAR "5f1d2c3b5f1d2c3b5f1d2c3b5f1d2c3b5f1d2c3b5f1d2c3b5f1d2c3b5f1d2c3b"
#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HASH_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* ---- states and fixes --------------------------------------------------------------------- */

static void test_states_only_move_forward(void **state)
{
    (void)state;
    assert_true(tl_problem_state_valid("investigating"));
    assert_true(tl_problem_state_valid("known-error"));
    assert_true(tl_problem_state_valid("fixed"));
    assert_false(tl_problem_state_valid("known error"));
    assert_false(tl_problem_state_valid(NULL));
    assert_true(tl_problem_transition_allowed("investigating", "known-error"));
    assert_true(tl_problem_transition_allowed("investigating", "fixed"));
    assert_true(tl_problem_transition_allowed("known-error", "fixed"));
    assert_false(tl_problem_transition_allowed("known-error", "investigating"));
    assert_false(tl_problem_transition_allowed("known-error", "known-error"));
    assert_false(tl_problem_transition_allowed("fixed", "known-error"));
    assert_false(tl_problem_transition_allowed("fixed", "fixed"));
    assert_true(tl_problem_state_open("investigating") && tl_problem_state_open("known-error"));
    assert_false(tl_problem_state_open("fixed"));
}

static void test_a_fix_is_named_by_note_article_or_runbook(void **state)
{
    (void)state;
    const char *problem = NULL;
    TL_ASSERT_OK(tl_problem_fix_valid("note:firmware 2.1 installed on every printer", &problem));
    TL_ASSERT_OK(tl_problem_fix_valid("kb:KB-1042", &problem));
    TL_ASSERT_OK(tl_problem_fix_valid("kb:printers/offline#cups", &problem));
    TL_ASSERT_OK(tl_problem_fix_valid("runbook:restart-cups", &problem));
    const char *bad[][2] = {
        {"restarted cups", "--fix names the fix: note:TEXT, kb:REF (an article) or runbook:NAME"},
        {"note:", "--fix note:TEXT needs a text of 1 to 4000 bytes"},
        {"note:\xff", "the text is not valid UTF-8"},
        {"kb:", "--fix kb:REF wants 1 to 128 of A-Z a-z 0-9 . _ - / # :"},
        {"kb:two words", "--fix kb:REF wants 1 to 128 of A-Z a-z 0-9 . _ - / # :"},
        {"runbook:Restart_Cups", "--fix runbook:NAME wants a runbook's name: 1 to 48 of a-z, "
                                 "0-9 and -"},
        {"Runbook:restart-cups", "--fix names the fix: note:TEXT, kb:REF (an article) or "
                                 "runbook:NAME"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        problem = NULL;
        assert_int_equal(tl_problem_fix_valid(bad[i][0], &problem), TL_EINVAL);
        if (problem == NULL || strcmp(problem, bad[i][1]) != 0)
            fail_msg("%s: expected \"%s\", got \"%s\"", bad[i][0], bad[i][1],
                     problem ? problem : "(none)");
    }
}

/* ---- offers ------------------------------------------------------------------------------- */

static tl_problem_row_t candidate(int64_t id, const char *title, const char *fingerprint,
                                  const char *state)
{
    return (tl_problem_row_t){.id = id, .title = title, .fingerprint = fingerprint, .state = state};
}

static void test_a_ticket_is_offered_the_open_problem_of_its_fingerprint(void **state)
{
    (void)state;
    tl_problem_row_t problems[] = {
        candidate(1, "Disk full on /var", FP_VAR, "known-error"),
        candidate(2, "Printers offline after CUPS update", FP_CUPS, "known-error"),
        candidate(3, "Scanner driver crash", NULL, "investigating"),
    };
    /* Its words say nothing of printers: the fingerprint alone finds it. */
    tl_problem_ticket_t ticket = {"Cannot work", "nothing happens when I click", FP_CUPS};
    tl_problem_offer_t offers[TL_PROBLEM_OFFERS_MAX];
    size_t count = 99;
    char why[128];
    TL_ASSERT_OK(tl_problem_match(&ticket, problems, 3, offers, TL_PROBLEM_OFFERS_MAX, &count, why,
                                  sizeof why));
    assert_int_equal(count, 1);
    assert_int_equal(offers[0].problem_id, 2);
    assert_int_equal(offers[0].index, 1);
    assert_true(offers[0].by_fingerprint);
    assert_false(offers[0].words.matches);

    /* Fixed, it is offered no more. */
    problems[1].state = "fixed";
    TL_ASSERT_OK(tl_problem_match(&ticket, problems, 3, offers, TL_PROBLEM_OFFERS_MAX, &count, why,
                                  sizeof why));
    assert_int_equal(count, 0);

    /* No fingerprint on either side is no match by fingerprint. */
    tl_problem_ticket_t bare = {"Cannot work", NULL, ""};
    problems[2].fingerprint = NULL;
    TL_ASSERT_OK(tl_problem_match(&bare, problems, 3, offers, TL_PROBLEM_OFFERS_MAX, &count, why,
                                  sizeof why));
    assert_int_equal(count, 0);
}

static void test_words_match_a_title_and_offers_are_ranked(void **state)
{
    (void)state;
    tl_problem_row_t problems[] = {
        candidate(1, "VPN drops every hour on Wi-Fi", NULL, "known-error"),
        candidate(2, "Printer offline", NULL, "investigating"),
        candidate(3, "Printers offline after CUPS update", NULL, "known-error"),
        candidate(4, "Printer jams", FP_VAR, "known-error"),
        candidate(5, "Offline printer queue", NULL, "known-error"),
    };
    tl_problem_ticket_t ticket = {"My printer shows offline", "since the CUPS update this morning",
                                  FP_VAR};
    tl_problem_offer_t offers[TL_PROBLEM_OFFERS_MAX];
    size_t count = 0;
    char why[128];
    TL_ASSERT_OK(tl_problem_match(&ticket, problems, 5, offers, TL_PROBLEM_OFFERS_MAX, &count, why,
                                  sizeof why));
    /* The fingerprint first, then whole titles (more words first); 2 of 3 words come last and
     * are left out. */
    assert_int_equal(count, 3);
    assert_int_equal(offers[0].problem_id, 4);
    assert_int_equal(offers[1].problem_id, 3);
    assert_int_equal(offers[1].words.per_mille, 1000);
    assert_int_equal(offers[1].words.shared_words, 4);
    assert_int_equal(offers[2].problem_id, 2);
    assert_int_equal(offers[2].words.shared_words, 2);
    /* With room for all, the 2 of 3 comes after them. */
    tl_problem_offer_t more[5];
    TL_ASSERT_OK(tl_problem_match(&ticket, problems, 5, more, 5, &count, why, sizeof why));
    assert_int_equal(count, 4);
    assert_int_equal(more[3].problem_id, 5);
    assert_int_equal(more[3].words.per_mille, 666);
    /* At an equal score the older problem comes first. */
    tl_problem_row_t twins[] = {candidate(8, "Printer offline", NULL, "known-error"),
                                candidate(7, "Offline printer", NULL, "known-error")};
    TL_ASSERT_OK(tl_problem_match(&ticket, twins, 2, more, 5, &count, why, sizeof why));
    assert_int_equal(count, 2);
    assert_int_equal(more[0].problem_id, 7);
    /* Fewer offers asked, the best ones kept. */
    TL_ASSERT_OK(tl_problem_match(&ticket, problems, 5, offers, 1, &count, why, sizeof why));
    assert_int_equal(count, 1);
    assert_int_equal(offers[0].problem_id, 4);
    /* Two words of five are not enough. */
    tl_problem_ticket_t vpn = {"VPN drops", NULL, NULL};
    TL_ASSERT_OK(tl_problem_match(&vpn, problems, 1, offers, TL_PROBLEM_OFFERS_MAX, &count, why,
                                  sizeof why));
    assert_int_equal(count, 0);
}

static void test_an_overlong_text_is_refused_by_the_match(void **state)
{
    (void)state;
    size_t len = TL_CLASSIFY_TEXT_MAX + 1;
    char *long_text = malloc(len + 1);
    memset(long_text, 'a', len);
    long_text[len] = '\0';
    tl_problem_row_t problems[] = {candidate(1, "Printer offline", NULL, "known-error")};
    tl_problem_ticket_t ticket = {"printer", long_text, NULL};
    tl_problem_offer_t offers[1];
    size_t count = 0;
    char why[160] = "";
    assert_int_equal(tl_problem_match(&ticket, problems, 1, offers, 1, &count, why, sizeof why),
                     TL_EINVAL);
    assert_non_null(strstr(why, "the ticket's description is 65537 bytes"));
    free(long_text);
}

/* ---- repeated diagnostics ----------------------------------------------------------------- */

#define HOUR_MS (3600LL * 1000)

static void test_identical_diagnostics_within_the_day_are_found(void **state)
{
    (void)state;
    int64_t now = 1764763200000;
    tl_evidence_row_t rows[] = {
        {1, HASH_A, "diagnostics", "diagnostics.json", 10, now - 25 * HOUR_MS},
        {1, HASH_B, "diagnostics", "diagnostics-1.json", 10, now - 24 * HOUR_MS},
        {2, HASH_C, "diagnostics", "diagnostics-2.json", 10, now - 3 * HOUR_MS},
        {2, HASH_A, "command", "command-x.json", 10, now - 1 * HOUR_MS},
    };
    tl_repeat_item_t items[] = {
        {&rows[0], TL_REPEAT_PROBES_ALL},
        {&rows[1], TL_REPEAT_PROBES_ALL},
        {&rows[2], TL_REPEAT_PROBES_ALL},
        {&rows[3], TL_REPEAT_PROBES_ALL},
    };
    /* The latest wins; a command is no diagnostics. */
    assert_int_equal(tl_repeat_find(items, 4, TL_REPEAT_PROBES_ALL, now), 2);
    /* Exactly 24 hours ago is within the day; a minute more is not. */
    assert_int_equal(tl_repeat_find(items, 2, TL_REPEAT_PROBES_ALL, now), 1);
    assert_int_equal(tl_repeat_find(items, 2, TL_REPEAT_PROBES_ALL, now + 60000), -1);
    /* Other probes are another run. */
    items[2].probes = "disks,network";
    assert_int_equal(tl_repeat_find(items, 4, TL_REPEAT_PROBES_ALL, now), 1);
    assert_int_equal(tl_repeat_find(items, 4, "disks,network", now), 2);
    /* Nothing before: nothing to repeat. */
    assert_int_equal(tl_repeat_find(items, 0, TL_REPEAT_PROBES_ALL, now), -1);
    /* A clock that went back does not make the future a repeat. */
    assert_int_equal(tl_repeat_find(items + 2, 1, "disks,network", now - 4 * HOUR_MS), -1);
}

/* ---- the store ---------------------------------------------------------------------------- */

struct fixture {
    char dir[64];
    char path[96];
    tl_store_t *store;
    int64_t device[2];
};

static int64_t enroll(tl_store_t *store, const char *code, const char *fingerprint)
{
    int64_t device_id = 0;
    tl_device_info_t info = {fingerprint, "laptop", "Debian GNU/Linux 12"};
    if (tl_store_code_add(store, code, 1000, 100000, "", NULL) != 0 ||
        tl_store_enroll(store, code, 2000, &info, &device_id) != 0)
        return 0;
    return device_id;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/tl-problems-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/relay.db", f->dir);
    if (tl_store_open(f->path, TL_STORE_CREATE_NEW, &f->store) != 0)
        return -1;
    f->device[0] = enroll(f->store, HASH_A, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    f->device[1] = enroll(f->store, HASH_B, "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
    *state = f;
    return f->device[0] > 0 && f->device[1] > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static int64_t ticket_on(struct fixture *f, int device, const char *title, int64_t now)
{
    tl_ticket_new_t ticket = {.device_id = f->device[device], .title = title, .tier = 1};
    int64_t id = 0;
    int created = 0;
    TL_ASSERT_OK(tl_ticket_create(f->store, &ticket, now, &id, &created));
    return id;
}

static void test_problems_count_linked_tickets_and_distinct_devices(void **state)
{
    struct fixture *f = *state;
    int64_t t1 = ticket_on(f, 0, "printer offline", 3000);
    ticket_on(f, 0, "printer offline again", 4000);
    int64_t t3 = ticket_on(f, 1, "printer offline here too", 5000);
    tl_problem_row_t opened = {.title = "Printers offline after CUPS update",
                               .fingerprint = FP_CUPS,
                               .workaround = "restart cups",
                               .state = "investigating",
                               .opened_by = "tech:bob"};
    int64_t p1 = 0, p2 = 0;
    TL_ASSERT_OK(tl_store_problem_add(f->store, &opened, 6000, &p1));
    tl_problem_row_t other = {
        .title = "VPN drops", .state = "known-error", .opened_by = "tech:carol"};
    TL_ASSERT_OK(tl_store_problem_add(f->store, &other, 6500, &p2));
    for (int64_t t = t1; t <= t3; t++)
        TL_ASSERT_OK(tl_store_ticket_column_set(f->store, t, TL_TICKET_PROBLEM, NULL, p1, 7000));

    tl_problem_row_t row;
    TL_ASSERT_OK(tl_store_problem_read(f->store, p1, &row));
    assert_string_equal(row.title, "Printers offline after CUPS update");
    assert_string_equal(row.fingerprint, FP_CUPS);
    assert_string_equal(row.workaround, "restart cups");
    assert_string_equal(row.state, "investigating");
    assert_null(row.fix);
    assert_string_equal(row.opened_by, "tech:bob");
    assert_int_equal(row.tickets, 3);
    assert_int_equal(row.devices, 2);
    tl_problem_row_clear(&row);

    tl_problem_ticket_rows_t linked;
    TL_ASSERT_OK(tl_store_problem_tickets_read(f->store, p1, &linked));
    assert_int_equal(linked.count, 3);
    assert_int_equal(linked.rows[0].ticket_id, t1);
    assert_int_equal(linked.rows[2].device_id, f->device[1]);
    assert_string_equal(linked.rows[2].status, "new");
    assert_string_equal(linked.rows[2].title, "printer offline here too");
    tl_problem_ticket_rows_free(&linked);

    /* The workaround, then the state with its fix; NULL leaves a field as it was. */
    TL_ASSERT_OK(tl_store_problem_set(f->store, p1, "print to the other queue", NULL, NULL, 8000));
    TL_ASSERT_OK(tl_store_problem_set(f->store, p1, NULL, "fixed", "runbook:restart-cups", 9000));
    TL_ASSERT_OK(tl_store_problem_read(f->store, p1, &row));
    assert_string_equal(row.workaround, "print to the other queue");
    assert_string_equal(row.state, "fixed");
    assert_string_equal(row.fix, "runbook:restart-cups");
    assert_int_equal(row.updated, 9000);
    assert_int_equal(row.created, 6000);
    tl_problem_row_clear(&row);

    tl_problem_rows_t list;
    TL_ASSERT_OK(tl_store_problems_read(f->store, NULL, &list));
    assert_int_equal(list.count, 2);
    assert_int_equal(list.rows[1].tickets, 0);
    assert_null(list.rows[1].fingerprint);
    assert_string_equal(list.rows[1].workaround, "");
    tl_problem_rows_free(&list);
    TL_ASSERT_OK(tl_store_problems_read(f->store, "known-error", &list));
    assert_int_equal(list.count, 1);
    assert_int_equal(list.rows[0].id, p2);
    tl_problem_rows_free(&list);
}

static void test_bad_problem_input_changes_nothing(void **state)
{
    struct fixture *f = *state;
    int64_t id = 0;
    char long_title[TL_STORE_MAX_TITLE + 2];
    memset(long_title, 'x', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = '\0';
    tl_problem_row_t bad[] = {
        {.title = "", .state = "investigating", .opened_by = "tech:bob"},
        {.title = long_title, .state = "investigating", .opened_by = "tech:bob"},
        {.title = "x", .state = "", .opened_by = "tech:bob"},
        {.title = "x", .state = "investigating", .opened_by = NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tl_store_problem_add(f->store, &bad[i], 1000, &id), TL_EINVAL);
    tl_problem_rows_t list;
    TL_ASSERT_OK(tl_store_problems_read(f->store, NULL, &list));
    assert_int_equal(list.count, 0);
    tl_problem_rows_free(&list);
    tl_problem_row_t row;
    assert_int_equal(tl_store_problem_read(f->store, 42, &row), TL_ENOTFOUND);
    assert_int_equal(tl_store_problem_set(f->store, 42, "x", NULL, NULL, 1000), TL_ENOTFOUND);
    /* A ticket cannot name a problem that is not there. */
    int64_t t1 = ticket_on(f, 0, "printer offline", 3000);
    assert_int_equal(tl_store_ticket_column_set(f->store, t1, TL_TICKET_PROBLEM, NULL, 42, 4000),
                     TL_ENOTFOUND);
}

static void test_escalations_keep_each_move_and_the_latest_is_read(void **state)
{
    struct fixture *f = *state;
    int64_t t1 = ticket_on(f, 0, "printer offline", 3000);
    tl_escalation_row_t up = {.ticket_id = t1,
                              .time = 5000,
                              .actor = "tech:alice",
                              .from_tier = 1,
                              .to_tier = 2,
                              .reason = "needs a shell",
                              .summary = "{\"version\":1}",
                              .summary_hash = HASH_A};
    tl_escalation_row_t latest;
    int64_t count = 0, id = 0;
    assert_int_equal(tl_store_escalation_latest(f->store, t1, &latest, &count), TL_ENOTFOUND);
    TL_ASSERT_OK(tl_store_escalation_add(f->store, &up, &id));
    tl_escalation_row_t down = up;
    down.time = 6000;
    down.actor = "tech:carol";
    down.from_tier = 2;
    down.to_tier = 1;
    down.reason = "a tier-1 fix";
    down.summary_hash = HASH_B;
    TL_ASSERT_OK(tl_store_escalation_add(f->store, &down, NULL));
    TL_ASSERT_OK(tl_store_escalation_latest(f->store, t1, &latest, &count));
    assert_int_equal(count, 2);
    assert_int_equal(latest.from_tier, 2);
    assert_int_equal(latest.to_tier, 1);
    assert_int_equal(latest.time, 6000);
    assert_string_equal(latest.actor, "tech:carol");
    assert_string_equal(latest.reason, "a tier-1 fix");
    assert_string_equal(latest.summary, "{\"version\":1}");
    assert_string_equal(latest.summary_hash, HASH_B);
    tl_escalation_row_clear(&latest);

    /* Bad rows are refused whole. */
    tl_escalation_row_t bad = up;
    bad.to_tier = 5;
    assert_int_equal(tl_store_escalation_add(f->store, &bad, NULL), TL_EINVAL);
    bad = up;
    bad.reason = "";
    assert_int_equal(tl_store_escalation_add(f->store, &bad, NULL), TL_EINVAL);
    bad = up;
    bad.summary_hash = "abc";
    assert_int_equal(tl_store_escalation_add(f->store, &bad, NULL), TL_EINVAL);
    bad = up;
    bad.ticket_id = 999;
    assert_int_equal(tl_store_escalation_add(f->store, &bad, NULL), TL_ENOTFOUND);
    TL_ASSERT_OK(tl_store_escalation_latest(f->store, t1, &latest, &count));
    assert_int_equal(count, 2);
    tl_escalation_row_clear(&latest);
}

static void test_unassigning_records_the_change(void **state)
{
    struct fixture *f = *state;
    int64_t t1 = ticket_on(f, 0, "printer offline", 3000);
    TL_ASSERT_OK(tl_store_ticket_set(f->store, t1, "alice", "open", "tech:alice", 4000));
    TL_ASSERT_OK(tl_store_ticket_unassign(f->store, t1, "tech:alice", "to tier 2", 5000));
    tl_ticket_row_t row;
    TL_ASSERT_OK(tl_store_ticket_read(f->store, t1, &row));
    assert_null(row.assignee);
    assert_int_equal(row.updated, 5000);
    tl_ticket_row_clear(&row);
    tl_ticket_change_rows_t changes;
    TL_ASSERT_OK(tl_store_ticket_changes_read(f->store, t1, &changes));
    const tl_ticket_change_row_t *last = &changes.rows[changes.count - 1];
    assert_string_equal(last->field, "assignee");
    assert_string_equal(last->value, "");
    assert_string_equal(last->reason, "to tier 2");
    size_t count = changes.count;
    tl_ticket_change_rows_free(&changes);
    /* Nobody holds it now: nothing more happens. */
    TL_ASSERT_OK(tl_store_ticket_unassign(f->store, t1, "tech:alice", "again", 6000));
    TL_ASSERT_OK(tl_store_ticket_changes_read(f->store, t1, &changes));
    assert_int_equal(changes.count, count);
    tl_ticket_change_rows_free(&changes);
    assert_int_equal(tl_store_ticket_unassign(f->store, 999, "tech:alice", "x", 6000),
                     TL_ENOTFOUND);
}

static void test_a_devices_diagnostics_are_read_across_its_tickets(void **state)
{
    struct fixture *f = *state;
    int64_t t1 = ticket_on(f, 0, "printer offline", 3000);
    int64_t t2 = ticket_on(f, 0, "still offline", 4000);
    int64_t t3 = ticket_on(f, 1, "other machine", 5000);
    int added = 0;
    TL_ASSERT_OK(
        tl_store_evidence_add(f->store, t1, HASH_A, "diagnostics", "d1.json", 10, 10000, &added));
    TL_ASSERT_OK(
        tl_store_evidence_add(f->store, t2, HASH_B, "diagnostics", "d2.json", 10, 20000, &added));
    TL_ASSERT_OK(
        tl_store_evidence_add(f->store, t2, HASH_C, "command", "c.json", 10, 30000, &added));
    TL_ASSERT_OK(
        tl_store_evidence_add(f->store, t3, HASH_C, "diagnostics", "d3.json", 10, 40000, &added));
    tl_evidence_rows_t rows;
    TL_ASSERT_OK(tl_store_device_evidence_read(f->store, f->device[0], "diagnostics", 0, &rows));
    assert_int_equal(rows.count, 2);
    assert_int_equal(rows.rows[0].ticket_id, t1);
    assert_string_equal(rows.rows[1].hash, HASH_B);
    assert_int_equal(rows.rows[1].created, 20000);
    tl_evidence_rows_free(&rows);
    TL_ASSERT_OK(
        tl_store_device_evidence_read(f->store, f->device[0], "diagnostics", 20000, &rows));
    assert_int_equal(rows.count, 1);
    assert_string_equal(rows.rows[0].name, "d2.json");
    tl_evidence_rows_free(&rows);
    TL_ASSERT_OK(
        tl_store_device_evidence_read(f->store, f->device[0], "diagnostics", 20001, &rows));
    assert_int_equal(rows.count, 0);
    tl_evidence_rows_free(&rows);
}

#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_only_move_forward),
        cmocka_unit_test(test_a_fix_is_named_by_note_article_or_runbook),
        cmocka_unit_test(test_a_ticket_is_offered_the_open_problem_of_its_fingerprint),
        cmocka_unit_test(test_words_match_a_title_and_offers_are_ranked),
        cmocka_unit_test(test_an_overlong_text_is_refused_by_the_match),
        cmocka_unit_test(test_identical_diagnostics_within_the_day_are_found),
        STORE_TEST(test_problems_count_linked_tickets_and_distinct_devices),
        STORE_TEST(test_bad_problem_input_changes_nothing),
        STORE_TEST(test_escalations_keep_each_move_and_the_latest_is_read),
        STORE_TEST(test_unassigning_records_the_change),
        STORE_TEST(test_a_devices_diagnostics_are_read_across_its_tickets),
    };
    return tl_test_run("problems", tests, sizeof tests / sizeof tests[0], argc, argv);
}
