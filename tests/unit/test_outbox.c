/*
 * The outbox (agent/outbox.h): an entry is whole or absent, removal renames
 * it out first, and start-up recovery finishes every partial state a crash
 * can leave on disk, losing nothing that was queued.
 */
#include "tl_test.h"

#include "agent/outbox.h"
#include "agent/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
    char dir[64];
    char outbox[128];
};

static struct fixture *fixture_new(void)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/tl-outbox-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    TL_ASSERT_OK(tl_state_prepare(f->dir));
    snprintf(f->outbox, sizeof f->outbox, "%s/outbox", f->dir);
    return f;
}

static void fixture_free(struct fixture *f)
{
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal(system(command), 0);
    free(f);
}

static int exists(const struct fixture *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->outbox, name);
    return access(path, F_OK) == 0;
}

static void make_dir(const struct fixture *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->outbox, name);
    assert_int_equal(mkdir(path, 0700), 0);
}

static void put_file(const struct fixture *f, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->outbox, name);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static void drop_file(const struct fixture *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->outbox, name);
    assert_int_equal(unlink(path), 0);
}

/* Queues one request the way `help` does; its id goes to id. */
static void queue(const struct fixture *f, const char *title, char id[TL_OUTBOX_ID_LEN])
{
    static const char evidence[] = "{\"sections\":{}}";
    TL_ASSERT_OK(tl_outbox_add(f->dir, title, "described", "diagnostics.json", "diagnostics",
                               evidence, sizeof evidence - 1, id));
}

static json_t *recover(const struct fixture *f)
{
    json_t *actions = NULL;
    TL_ASSERT_OK(tl_outbox_recover(f->dir, &actions));
    return actions;
}

/* The action recovery reports for request, or NULL. */
static const char *action_for(json_t *actions, const char *request)
{
    size_t i;
    json_t *action;
    json_array_foreach(actions, i, action)
    {
        if (strcmp(json_string_value(json_object_get(action, "request")), request) == 0)
            return json_string_value(json_object_get(action, "action"));
    }
    return NULL;
}

static json_t *queued(const struct fixture *f)
{
    json_t *ids = NULL;
    TL_ASSERT_OK(tl_outbox_list(f->dir, &ids));
    return ids;
}

static void assert_queued(const struct fixture *f, const char *const *want, size_t count)
{
    json_t *ids = queued(f);
    int same = json_array_size(ids) == count;
    for (size_t i = 0; same && i < count; i++)
        same = strcmp(json_string_value(json_array_get(ids, i)), want[i]) == 0;
    if (!same) {
        char *text = json_dumps(ids, JSON_COMPACT);
        fail_msg("queued %s, expected %zu request(s) starting %s", text, count,
                 count ? want[0] : "-");
    }
    json_decref(ids);
}

static const char fake_id[] = "R-0123456789abcdef0123456789abcdef";

/* ---- writing and removing ----------------------------------------------------------- */

static void test_added_request_is_whole_and_listed(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], missing[64];
    queue(f, "printer", id);
    const char *want[] = {id};
    assert_queued(f, want, 1);
    json_t *request = NULL;
    TL_ASSERT_OK(tl_outbox_load(f->dir, id, &request));
    assert_string_equal(json_string_value(json_object_get(request, "title")), "printer");
    assert_int_equal(tl_outbox_missing(f->dir, id, request, missing, sizeof missing), 0);
    json_decref(request);
    /* Nothing temporary is left behind. */
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".tmp-%s", id);
    assert_false(exists(f, tmp));
    fixture_free(f);
}

static void test_finish_records_the_ticket_and_leaves_nothing(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], trash[64];
    queue(f, "vpn drops", id);
    TL_ASSERT_OK(tl_outbox_finish(f->dir, id, "T-7", "vpn drops"));
    assert_queued(f, NULL, 0);
    snprintf(trash, sizeof trash, ".trash-%s", id);
    assert_false(exists(f, id));
    assert_false(exists(f, trash));
    json_t *delivered = NULL;
    TL_ASSERT_OK(tl_outbox_delivered(f->dir, &delivered));
    assert_int_equal(json_array_size(delivered), 1);
    json_t *record = json_array_get(delivered, 0);
    assert_string_equal(json_string_value(json_object_get(record, "request")), id);
    assert_string_equal(json_string_value(json_object_get(record, "ticket")), "T-7");
    assert_string_equal(json_string_value(json_object_get(record, "title")), "vpn drops");
    json_decref(delivered);
    /* A second finish (another process got there first) is harmless. */
    TL_ASSERT_OK(tl_outbox_remove(f->dir, id));
    fixture_free(f);
}

static void test_delivered_records_are_capped(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN];
    for (int i = 0; i < TL_OUTBOX_KEEP_DELIVERED + 5; i++) {
        queue(f, "again", id);
        TL_ASSERT_OK(tl_outbox_finish(f->dir, id, "T-1", "again"));
    }
    json_t *delivered = NULL;
    TL_ASSERT_OK(tl_outbox_delivered(f->dir, &delivered));
    assert_int_equal(json_array_size(delivered), TL_OUTBOX_KEEP_DELIVERED);
    json_decref(delivered);
    fixture_free(f);
}

/* ---- recovery at start ------------------------------------------------------------------ */

static void test_recovery_removes_an_interrupted_write(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], tmp[64], file[96];
    queue(f, "kept", id);
    /* `help` killed before its rename: a temporary folder with a part of a request. */
    snprintf(tmp, sizeof tmp, ".tmp-%s", fake_id);
    make_dir(f, tmp);
    snprintf(file, sizeof file, "%s/evidence-0", tmp);
    put_file(f, file, "half");
    json_t *actions = recover(f);
    assert_false(exists(f, tmp));
    assert_string_equal(action_for(actions, fake_id), "removed");
    json_decref(actions);
    const char *want[] = {id};
    assert_queued(f, want, 1);
    fixture_free(f);
}

static void test_recovery_leaves_a_write_in_progress_alone(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char tmp[64], lock_path[160];
    snprintf(tmp, sizeof tmp, ".tmp-%s", fake_id);
    make_dir(f, tmp);
    /* A writer holds the outbox lock while it writes (another `help` now). */
    snprintf(lock_path, sizeof lock_path, "%s/.lock", f->outbox);
    int lock = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    assert_true(lock >= 0);
    assert_int_equal(flock(lock, LOCK_SH), 0);
    json_t *actions = recover(f);
    assert_true(exists(f, tmp));
    assert_string_equal(action_for(actions, fake_id), "skipped");
    json_decref(actions);
    close(lock);
    /* Once the writer is gone (it died: the kernel dropped its lock), it is stale. */
    actions = recover(f);
    assert_false(exists(f, tmp));
    json_decref(actions);
    fixture_free(f);
}

static void test_recovery_finishes_a_removal_renamed_out(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], trash[64], from[256], to[256], other[TL_OUTBOX_ID_LEN];
    queue(f, "delivered", id);
    queue(f, "still queued", other);
    /* Killed after the rename out, before the delete. */
    snprintf(trash, sizeof trash, ".trash-%s", id);
    snprintf(from, sizeof from, "%s/%s", f->outbox, id);
    snprintf(to, sizeof to, "%s/%s", f->outbox, trash);
    assert_int_equal(rename(from, to), 0);
    const char *want[] = {other};
    assert_queued(f, want, 1); /* already out of the queue */
    json_t *actions = recover(f);
    assert_false(exists(f, trash));
    assert_string_equal(action_for(actions, id), "finished");
    json_decref(actions);
    assert_queued(f, want, 1);
    fixture_free(f);
}

static void test_recovery_keeps_an_entry_missing_its_evidence_queued_and_says_so(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], name[96], missing[64];
    queue(f, "half removed", id);
    /* What an older agent's removal left when killed: request.json, no evidence. */
    snprintf(name, sizeof name, "%s/evidence-0", id);
    drop_file(f, name);
    json_t *actions = recover(f);
    assert_string_equal(action_for(actions, id), "incomplete");
    json_t *action = json_array_get(actions, 0);
    assert_non_null(strstr(json_string_value(json_object_get(action, "detail")), "evidence-0"));
    json_decref(actions);
    /* Still queued, and the tunnel can tell what is missing (it asks the relay). */
    const char *want[] = {id};
    assert_queued(f, want, 1);
    json_t *request = NULL;
    TL_ASSERT_OK(tl_outbox_load(f->dir, id, &request));
    assert_int_equal(tl_outbox_missing(f->dir, id, request, missing, sizeof missing), 1);
    assert_string_equal(missing, "evidence-0");
    json_decref(request);
    fixture_free(f);
}

static void test_recovery_removes_an_empty_entry(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    make_dir(f, fake_id);
    json_t *actions = recover(f);
    assert_false(exists(f, fake_id));
    assert_string_equal(action_for(actions, fake_id), "removed");
    json_decref(actions);
    assert_queued(f, NULL, 0);
    fixture_free(f);
}

static void test_recovery_sets_aside_an_entry_without_a_request(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], name[96], damaged[64], bad[TL_OUTBOX_ID_LEN];
    /* Evidence but no request.json: nothing to send; the bytes are kept. */
    queue(f, "no request", id);
    snprintf(name, sizeof name, "%s/request.json", id);
    drop_file(f, name);
    /* A request.json that is not a request. */
    queue(f, "garbled", bad);
    snprintf(name, sizeof name, "%s/request.json", bad);
    drop_file(f, name);
    put_file(f, name, "{\"request\":");
    json_t *actions = recover(f);
    assert_string_equal(action_for(actions, id), "set-aside");
    assert_string_equal(action_for(actions, bad), "set-aside");
    json_decref(actions);
    assert_queued(f, NULL, 0);
    snprintf(damaged, sizeof damaged, "damaged-%s", id);
    assert_true(exists(f, damaged));
    snprintf(name, sizeof name, "%s/evidence-0", damaged);
    assert_true(exists(f, name));
    json_t *aside = NULL;
    TL_ASSERT_OK(tl_outbox_set_aside_list(f->dir, &aside));
    assert_int_equal(json_array_size(aside), 2);
    size_t i;
    json_t *item;
    json_array_foreach(aside, i, item)
    {
        assert_string_equal(json_string_value(json_object_get(item, "why")), "damaged");
        assert_non_null(strstr(json_string_value(json_object_get(item, "detail")), "request.json"));
    }
    json_decref(aside);
    /* Recovery again changes nothing: set-aside entries are never touched. */
    actions = recover(f);
    assert_int_equal(json_array_size(actions), 0);
    json_decref(actions);
    fixture_free(f);
}

static void test_recovery_of_every_state_at_once_loses_nothing_queued(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char first[TL_OUTBOX_ID_LEN], second[TL_OUTBOX_ID_LEN], tmp[64], trash[64];
    queue(f, "first", first);
    queue(f, "second", second);
    snprintf(tmp, sizeof tmp, ".tmp-%s", fake_id);
    make_dir(f, tmp);
    snprintf(trash, sizeof trash, ".trash-R-ffffffffffffffffffffffffffffffff");
    make_dir(f, trash);
    make_dir(f, "R-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    put_file(f, "stray.txt", "not ours");
    json_t *actions = recover(f);
    json_decref(actions);
    json_t *ids = queued(f);
    assert_int_equal(json_array_size(ids), 2);
    json_decref(ids);
    assert_false(exists(f, tmp));
    assert_false(exists(f, trash));
    assert_false(exists(f, "R-eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"));
    assert_true(exists(f, "stray.txt"));
    fixture_free(f);
}

static void test_set_aside_keeps_the_request_and_says_why(void **state)
{
    (void)state;
    struct fixture *f = fixture_new();
    char id[TL_OUTBOX_ID_LEN], name[96];
    queue(f, "refused", id);
    TL_ASSERT_OK(tl_outbox_set_aside(f->dir, id, "rejected", "the relay refused it"));
    TL_ASSERT_RC(TL_EINVAL, tl_outbox_set_aside(f->dir, id, "lost", "no such reason"));
    assert_queued(f, NULL, 0);
    snprintf(name, sizeof name, "rejected-%s/request.json", id);
    assert_true(exists(f, name));
    json_t *aside = NULL;
    TL_ASSERT_OK(tl_outbox_set_aside_list(f->dir, &aside));
    assert_int_equal(json_array_size(aside), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(aside, 0), "detail")),
                        "the relay refused it");
    json_decref(aside);
    fixture_free(f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_added_request_is_whole_and_listed),
    cmocka_unit_test(test_finish_records_the_ticket_and_leaves_nothing),
    cmocka_unit_test(test_delivered_records_are_capped),
    cmocka_unit_test(test_recovery_removes_an_interrupted_write),
    cmocka_unit_test(test_recovery_leaves_a_write_in_progress_alone),
    cmocka_unit_test(test_recovery_finishes_a_removal_renamed_out),
    cmocka_unit_test(test_recovery_keeps_an_entry_missing_its_evidence_queued_and_says_so),
    cmocka_unit_test(test_recovery_removes_an_empty_entry),
    cmocka_unit_test(test_recovery_sets_aside_an_entry_without_a_request),
    cmocka_unit_test(test_recovery_of_every_state_at_once_loses_nothing_queued),
    cmocka_unit_test(test_set_aside_keeps_the_request_and_says_why),
};

TL_TEST_MAIN(tests)
